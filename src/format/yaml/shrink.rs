//! Encrypted files read cheaply. saphyr scans a plain scalar one character at a time, and
//! an encrypted file is mostly `ENC[…]` scalars of a hundred characters or more: that scan
//! was a quarter of `decrypt`. So each `ENC[…]` that stands alone at the end of a block
//! line (after `key: ` or `- `) is handed to saphyr as a three-letter stand-in, and its
//! text is taken from the file. The reading counts only if every stand-in comes back as
//! exactly one plain scalar in block context, where the two spellings scan alike (neither
//! holds `: `, ` #` or a line break, and `[`, `]`, `,` mean nothing there); otherwise the
//! file is read again as written.

use std::ops::Range;

/// What saphyr reads in place of each `ENC[…]`: no character YAML gives a meaning to.
const STAND_IN: &str = "ENC";

pub(super) struct Shrunk {
    /// The text with the stand-ins.
    pub(super) input: String,
    regions: Vec<Region>,
    /// The region last looked up: saphyr asks in order.
    last: std::cell::Cell<usize>,
}

struct Region {
    /// Char index of the stand-in in the input.
    input_start: usize,
    /// Char index of the value in the text.
    text_start: usize,
    /// The value's bytes in the text (ASCII only, so as many chars).
    bytes: Range<usize>,
}

impl Shrunk {
    /// The text with its stand-ins, or `None` when it holds no value worth one.
    /// `offsets` gives the byte of each char index when the text is not pure ASCII.
    pub(super) fn of(text: &str, offsets: Option<&[usize]>) -> Option<Shrunk> {
        const LEAD: &[u8] = b"ENC[AES256_GCM,data:";
        let b = text.as_bytes();
        let finder = memchr::memmem::Finder::new(LEAD);
        let mut regions = Vec::new();
        let mut input = String::new();
        let mut copied = 0;
        let mut removed = 0;
        for start in finder.find_iter(b) {
            if start < copied || start < 2 || !matches!(&b[start - 2..start], b": " | b"- ") {
                continue;
            }
            // To the end of its line, ending with `]`, and only printable ASCII without
            // blanks: no `: `, ` #` or line break can end it early.
            let mut end = memchr::memchr(b'\n', &b[start..]).map_or(b.len(), |n| start + n);
            if b[end - 1] == b'\r' {
                end -= 1;
            }
            let value = &b[start..end];
            let printable = value
                .iter()
                .fold(true, |ok, &c| ok & (c.wrapping_sub(0x21) < 0x5e));
            if value.len() < LEAD.len() + 20 || !value.ends_with(b"]") || !printable {
                continue;
            }
            let len = value.len();
            let text_start = match offsets {
                None => start,
                Some(o) => o.partition_point(|&x| x < start),
            };
            if input.is_empty() {
                input.reserve(text.len() / 4);
            }
            input.push_str(&text[copied..start]);
            input.push_str(STAND_IN);
            regions.push(Region {
                input_start: text_start - removed,
                text_start,
                bytes: start..end,
            });
            removed += len - STAND_IN.len();
            copied = end;
        }
        if regions.is_empty() {
            return None;
        }
        input.push_str(&text[copied..]);
        Some(Shrunk {
            input,
            regions,
            last: Default::default(),
        })
    }

    /// The char index in the text of char index `c` of the input.
    pub(super) fn original(&self, c: usize) -> usize {
        let before = |i: usize| self.regions.get(i).is_none_or(|r| c < r.input_start);
        let last = self.last.get();
        let i = if !before(last) && before(last + 1) {
            last + 1
        } else if !before(last + 1) && before(last + 2) {
            last + 2
        } else {
            self.regions.partition_point(|r| r.input_start <= c)
        };
        let Some(r) = i.checked_sub(1).map(|i| &self.regions[i]) else {
            return c;
        };
        self.last.set(i - 1);
        let inside = c - r.input_start;
        if inside < STAND_IN.len() {
            r.text_start + inside
        } else {
            r.text_start + r.bytes.len() + (inside - STAND_IN.len())
        }
    }

    pub(super) fn len(&self) -> usize {
        self.regions.len()
    }

    /// The bytes of value `k` in the text.
    pub(super) fn bytes(&self, k: usize) -> Option<Range<usize>> {
        self.regions.get(k).map(|r| r.bytes.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: &str = "ENC[AES256_GCM,data:AAAAAAAA,iv:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB=,tag:CCCCCCCCCCCCCCCCCCCCCC==,type:str]";

    #[test]
    fn stand_ins_map_back_to_the_text() {
        let text = format!("a: {V}\nb:\n  - {V}\nc: x\n");
        let s = Shrunk::of(&text, None).expect("two values");
        assert_eq!(s.input, "a: ENC\nb:\n  - ENC\nc: x\n");
        assert_eq!(s.len(), 2);
        // Every char of the input that is not a stand-in maps to the same char.
        for (c, ch) in s.input.chars().enumerate() {
            let o = s.original(c);
            if !(3..6).contains(&c) && !(15..18).contains(&c) {
                assert_eq!(text[o..].chars().next(), Some(ch), "at {c}");
            }
        }
        assert_eq!(s.original(3), 3);
        assert_eq!(s.original(6), 3 + V.len());
        assert_eq!(&text[s.bytes(1).unwrap()], V);
        assert_eq!(s.original(s.input.len()), text.len());
    }

    #[test]
    fn only_values_alone_at_the_end_of_a_block_line() {
        for text in [
            format!("a: {V} # c\n"),
            format!("a: {V}x\n"),
            format!("a: [{V}]\n"),
            format!("a: \"{V}\"\n"),
            format!("a:{V}\n"),
            format!("a: {V}: b\n"),
            "a: ENC[AES256_GCM,data:]\n".to_string(),
        ] {
            assert!(Shrunk::of(&text, None).is_none(), "{text}");
        }
        assert!(Shrunk::of(&format!("a: {V}\r\n"), None).is_some());
        assert!(Shrunk::of(&format!("a: {V}"), None).is_some());
    }

    #[test]
    fn non_ascii_text_maps_by_char() {
        let text = format!("é: {V}\nü: y\n");
        let offsets: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .chain([text.len()])
            .collect();
        let s = Shrunk::of(&text, Some(&offsets)).expect("one value");
        assert_eq!(s.input, "é: ENC\nü: y\n");
        let u = s.input.chars().position(|c| c == 'ü').unwrap();
        assert_eq!(offsets[s.original(u)], text.find('ü').unwrap());
    }

    /// A document as the tests compare it: everything the reader found.
    fn described(text: &str, stand_ins: bool) -> String {
        let source = zeroize::Zeroizing::new(text.as_bytes().to_vec());
        match super::super::read(source, stand_ins) {
            Err(e) => format!("error {e}"),
            Ok(doc) => {
                let mut out = String::new();
                for l in &doc.leaves {
                    out += &format!(
                        "{:?} {:?} {:?} {:?} {:?} {:?}\n",
                        l.kind,
                        &*l.path,
                        l.span(),
                        l.ty,
                        String::from_utf8_lossy(l.value(&doc.text)),
                        l.style
                    );
                }
                for d in &doc.docs {
                    out += &format!("{:?} {:?} {} {}\n", d.root, d.meta, d.end, d.indent);
                }
                out + &format!("{:?} {:?}", doc.constructs, doc.foreign)
            }
        }
    }

    /// Whether saphyr read the text through its stand-ins (not falling back).
    fn read_through_stand_ins(text: &str) -> bool {
        let offsets: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .chain([text.len()])
            .collect();
        let offsets = (!text.is_ascii()).then_some(&offsets[..]);
        let Some(shrunk) = Shrunk::of(text, offsets) else {
            return false;
        };
        let pads = super::super::Pads::default();
        let starts = super::super::line_starts(text);
        let mut p = super::super::Parse::new(text, &shrunk.input, &pads, offsets, starts);
        p.shrunk = Some(&shrunk);
        let (p, ok) = p.run_once();
        ok.is_ok() && p.restored == shrunk.len()
    }

    #[test]
    fn stand_ins_read_as_the_text_or_not_at_all() {
        let meta = format!(
            "sops:\n    mac: {V}\n    lastmodified: \"2024-01-01T00:00:00Z\"\n    version: 3.11.0\n"
        );
        // (text, whether the stand-ins are used)
        let cases = [
            (format!("a: {V}\nb: {V}\n{meta}"), true),
            (
                format!("a:\n    - {V}\n    - {V}\n    - c: {V}\n{meta}"),
                true,
            ),
            (format!("a: {V}\r\nb: {V}\r\n"), true),
            (format!("é: {V}\nü:\n  ö: {V}\n"), true),
            (format!("a: {V}\n---\nb: {V}\n"), true),
            (
                format!("#ENC[AES256_GCM,data:x,type:comment]\na: {V}\n"),
                true,
            ),
            // Where a stand-in would not read alike: the text is read as written.
            (format!("a: |\n  x: {V}\nb: {V}\n"), false),
            (format!("a: >-\n  - {V}\n"), false),
            (format!("# x: {V}\na: 1\n"), false),
            (format!("a: {V}\n  more\n"), false),
            (format!("a: {{b: {V}\n}}\n"), false),
            (format!("a: [\n  - {V}\n]\n"), false),
            (format!("a: \"one\n  b: {V}\"\n"), false),
            (format!("a: 'one\n  - {V}'\n"), false),
            (format!("a: &x {V}\nb: *x\n"), false),
            (format!("a: !!str {V}\n"), false),
            (format!("a: {V}\n\tb: 1\n"), false),
            (format!("a: {V}\nb: [\n"), false),
            (format!("a:\n  b: {V}\n c: {V}\n"), false),
            (format!("a: 1\nsops: {{\n  mac: {V}\n}}\n"), false),
            (format!("a: 1\nsops:\n  x: [\n    - {V}\n  ]\n"), false),
        ];
        for (text, fast) in &cases {
            assert_eq!(described(text, true), described(text, false), "{text}");
            assert_eq!(read_through_stand_ins(text), *fast, "{text}");
        }
    }
}
