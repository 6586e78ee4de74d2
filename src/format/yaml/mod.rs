//! YAML: parsed with saphyr-parser for structure and spans; comments are found by
//! scanning the text around the scalars. Values are replaced in place, so indentation,
//! comments, blank lines and key quoting survive untouched.

mod comments;
mod edit;
mod emit;
mod lenient;
mod lite;
mod parse;
mod quick;
mod scalars;
mod shrink;

use std::ops::Range;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use zeroize::Zeroizing;

pub(crate) use super::yaml_resolve::{resolve_plain, stored_form};
use super::{LeafText, Store};
use crate::tree::{
    Doc, Document, Entry, Key, KeyPath, Leaf, LeafKind, MetaValue, Node, Quote, ScalarType, Style,
    ThinVec, Value,
};
use lenient::Pads;
use shrink::Shrunk;

use comments::*;
use emit::*;
pub(crate) use emit::{render_str, yaml_entry, yaml_item, yaml_scalar_or_flow};
pub(crate) use lite::{
    read_encrypted as lite_encrypted, read_plain as lite_plain, reading as lite_reading,
    tell_comments as lite_comments, By, Stop,
};
use parse::*;

pub struct YamlStore;

fn err_at(line: usize, col: usize, msg: impl std::fmt::Display) -> super::SyntaxError {
    super::SyntaxError::at(line, col + 1, msg)
}

/// A decrypted value (not a comment, not under a block header) as a decryption writes
/// it where its ciphertext stood, quoted as `style` says.
pub(crate) fn render_value(ty: ScalarType, value: &str, style: Style, indent: usize) -> String {
    match ty {
        ScalarType::Int | ScalarType::Time => value.to_string(),
        ScalarType::Float => yaml_float(value),
        ScalarType::Bool => match value {
            "true" | "false" | "TRUE" | "FALSE" => value.to_string(),
            other => crate::scalar::parse_bool(other)
                .unwrap_or(false)
                .to_string(),
        },
        ScalarType::Null => "null".to_string(),
        ScalarType::Str | ScalarType::Bytes | ScalarType::Comment => {
            render_str(value, style, indent)
        }
    }
}

/// `value` written in place of the block scalar that stands as `region` (its header to
/// its last content line), as a decryption writes a string there under the block's own
/// header and indentation: `None` where they do not hold it and the decryption falls
/// back to another layout.
pub(crate) fn render_block(region: &str, value: &str) -> Option<String> {
    BlockHeader::in_region(region)?.render(value)
}

/// Read a YAML file; `stand_ins`: an encrypted file's values may be read through
/// stand-ins (see `shrink`), which the tests turn off to compare.
fn read(source: Zeroizing<Vec<u8>>, stand_ins: bool) -> Result<Document, super::SyntaxError> {
    let source = super::text(source)?;
    let text: &str = &source;
    let offsets = if text.is_ascii() {
        None
    } else {
        let mut o: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        o.push(text.len());
        Some(o)
    };
    // go-yaml, and so sops, knows the %YAML and %TAG directives only, and reads only
    // YAML 1.1 documents when a version is named.
    let unreadable = |l: &str| {
        let mut words = l.split_whitespace();
        match words.next() {
            Some("%YAML") => words.next() != Some("1.1"),
            Some("%TAG") => false,
            Some(w) => w.starts_with('%'),
            None => false,
        }
    };
    if let Some(n) = text.lines().position(unreadable) {
        return Err(err_at(
            n + 1,
            0,
            "sops cannot read a file with this directive; remove the line",
        ));
    }
    let mut line_starts = line_starts(text);
    // An encrypted file is read with stand-ins for its values when that reads it
    // alike (see `shrink`), else as written.
    let shrunk = stand_ins
        .then(|| Shrunk::of(text, offsets.as_deref()))
        .flatten();
    let no_pads = Pads::default();
    let mut fast = None;
    if let Some(shrunk) = &shrunk {
        let starts = std::mem::take(&mut line_starts);
        let mut p = Parse::new(text, &shrunk.input, &no_pads, offsets.as_deref(), starts);
        p.shrunk = Some(shrunk);
        let (mut p, ok) = p.run_once();
        if ok.is_ok() && p.restored == shrunk.len() {
            fast = Some(p);
        } else {
            line_starts = std::mem::take(&mut p.line_starts);
        }
    }
    // go-yaml reads some lines saphyr refuses: saphyr reads them padded, up to a
    // bound, and the latest error stands.
    let mut pads = Pads::default();
    let mut padded = String::new();
    let mut p = match fast {
        Some(p) => p,
        None => loop {
            let input = if pads.is_empty() { text } else { &padded };
            let (mut p, ok) =
                Parse::new(text, input, &pads, offsets.as_deref(), line_starts).run_once();
            let Err(err) = ok else {
                break p;
            };
            let scan_error = p.scan_error.take();
            line_starts = std::mem::take(&mut p.line_starts);
            drop(p);
            let fixed = scan_error.is_some_and(|(line, col, info)| {
                pads.fixes() < lenient::MAX_FIXES && pads.fix(text, input, line, col, &info)
            });
            if !fixed {
                return Err(err);
            }
            padded = pads.apply(text);
        },
    };
    p.find_comments();
    let indent = p.indent.unwrap_or(2);
    for d in &mut p.docs {
        d.indent = indent;
    }
    let nonstring_key = p.nonstring_key;
    let (mut leaves, docs, mut constructs, foreign) = (p.leaves, p.docs, p.constructs, p.foreign);
    leaves.shrink_to_fit();
    constructs.sort_by_key(|c| c.0);
    let doc = Document {
        text: source,
        leaves,
        docs,
        constructs,
        foreign,
    };
    // An encrypted file holding one still opens (coffer wrote such files before).
    if let Some((pos, ty, key)) = nonstring_key.filter(|_| !doc.is_encrypted()) {
        let line = doc.line_of(pos);
        let col = doc.text[..pos].rfind('\n').map_or(pos, |nl| pos - nl - 1);
        let (key, quoted) = match key.as_str() {
            "" => ("(empty)", "\"\"".to_string()),
            key => (key, format!("\"{key}\"")),
        };
        let what = match ty {
            ScalarType::Null => "null",
            ScalarType::Int => "an integer",
            ScalarType::Float => "a float",
            ScalarType::Bool => "a boolean",
            _ => "a time",
        };
        return Err(err_at(
            line,
            col,
            format!("the key {key} is {what} to sops (go-yaml), which takes only string keys: quote it ({quoted}) to mean the string"),
        ));
    }
    Ok(doc)
}

impl Store for YamlStore {
    fn parse(&self, source: Zeroizing<Vec<u8>>) -> Result<Document, super::SyntaxError> {
        read(source, true)
    }

    fn render_plain(
        &self,
        doc: &Document,
        leaf: &Leaf,
        ty: ScalarType,
        value: &str,
    ) -> Result<String, super::WriteError> {
        let indent = doc.docs.first().map_or(2, |d| d.indent);
        Ok(match ty {
            ScalarType::Comment if leaf.style.quote == Quote::Item => {
                format!("#{}", value.replace('\n', " "))
            }
            ScalarType::Comment => value.replace('\n', " "),
            ScalarType::Str | ScalarType::Bytes if leaf.style.quote == Quote::Block => {
                match BlockHeader::of(doc, leaf).and_then(|b| b.render(value)) {
                    Some(block) => block,
                    None => render_str(value, leaf.style, indent),
                }
            }
            _ => render_value(ty, value, leaf.style, indent),
        })
    }

    fn enc_quotes(&self, doc: &Document, leaf: &Leaf) -> (String, &'static str) {
        match leaf.style.quote {
            Quote::Double => ("\"".into(), "\""),
            Quote::Single => ("'".into(), "'"),
            // `ENC[...]` holds commas and brackets, which end a plain scalar in flow
            // context; single quotes there stand for "was plain" (see `render_str`).
            _ if leaf.style.flow => ("'".into(), "'"),
            // A block scalar keeps its header and indentation around the ciphertext,
            // which go-yaml reads as the block's one line.
            Quote::Block => match BlockHeader::of(doc, leaf) {
                Some(b) => (format!("{}\n{}", b.header, " ".repeat(b.indent)), ""),
                None => (String::new(), ""),
            },
            _ => (String::new(), ""),
        }
    }

    fn render_metadata(
        &self,
        doc: &Document,
        doc_index: usize,
        meta: &MetaValue,
    ) -> (usize, String) {
        let d = &doc.docs[doc_index];
        let text = doc.text.as_str();
        // At the column of the document's keys: a block root mapping may be indented.
        let col = match &d.root {
            Node::Map(entries) => entries.first().map_or(0, |e| {
                let line_start = text[..e.at()].rfind('\n').map_or(0, |i| i + 1);
                let before = &text[line_start..e.at()];
                if before.bytes().all(|b| b == b' ') {
                    before.len()
                } else {
                    0
                }
            }),
            _ => 0,
        };
        let mut block = String::new();
        yaml_entry(&mut block, "sops", &Value::from_meta(meta), col, d.indent);
        let pos = d.end;
        (pos, crate::tree::lines_at(text, pos, block))
    }

    fn canonical(
        &self,
        doc: &Document,
        value: &LeafText,
    ) -> Result<Zeroizing<String>, super::WriteError> {
        let mut w = Canonical {
            doc,
            value,
            out: Zeroizing::new(String::new()),
            comments: doc.comments(),
            next: 0,
        };
        for (n, d) in doc.docs.iter().enumerate() {
            if n > 0 {
                w.out.push_str("---\n");
            }
            if let Node::Map(entries) = &d.root {
                w.map(entries, 0)?;
            }
            w.flush(d.end.max(1), 0);
        }
        w.flush(usize::MAX, 0);
        Ok(w.out)
    }

    fn holds_trees(&self) -> bool {
        true
    }

    fn replace_entry(
        &self,
        doc: &Document,
        e: &Entry,
        key: &str,
        tree: &Value,
    ) -> Result<super::edit::Edit, super::edit::NoEdit> {
        edit::replace_entry(doc, e, key, tree)
    }

    fn insert_entry(
        &self,
        doc: &Document,
        last: &Entry,
        key: &str,
        value: &Value,
    ) -> Result<super::edit::Edit, super::edit::NoEdit> {
        edit::insert_entry(self, doc, last, key, value)
    }

    fn remove_entry(
        &self,
        doc: &Document,
        entries: &[Entry],
        idx: usize,
    ) -> Result<super::edit::Edit, super::edit::NoEdit> {
        edit::remove_entry(doc, entries, idx)
    }

    fn append_item(
        &self,
        doc: &Document,
        items: &[Node],
        v: &Value,
    ) -> Result<super::edit::Edit, super::edit::NoEdit> {
        edit::append_item(doc, items, v)
    }

    fn remove_item(
        &self,
        doc: &Document,
        items: &[Node],
        i: usize,
    ) -> Result<super::edit::Edit, super::edit::NoEdit> {
        edit::remove_item(doc, items, i)
    }

    fn emit(&self, value: &Value) -> Result<Zeroizing<String>, super::WriteError> {
        let mut out = Zeroizing::new(String::new());
        match value {
            Value::Map(entries) => {
                for (k, v) in entries {
                    yaml_entry(&mut out, k, v, 0, 4);
                }
                if entries.is_empty() {
                    out.push_str("{}\n");
                }
            }
            Value::Seq(items) if !items.is_empty() => {
                for item in items {
                    yaml_item(&mut out, item, 0, 4);
                }
            }
            other => {
                out.push_str(&yaml_scalar_or_flow(other));
                out.push('\n');
            }
        }
        Ok(out)
    }
}

/// Where each line of `text` starts. Half a pointer a line (texts are under 4 GiB, see
/// `format::text`), and sized once: a million short lines would otherwise hold 8 MB,
/// and as much again spare.
fn line_starts(text: &str) -> Vec<u32> {
    let newlines = || memchr::memchr_iter(b'\n', text.as_bytes());
    let mut starts = Vec::with_capacity(newlines().count() + 1);
    starts.extend(std::iter::once(0).chain(newlines().map(|i| i as u32 + 1)));
    starts
}

#[cfg(test)]
mod tests {
    use super::super::table::check;
    use super::*;

    #[test]
    fn constructs() {
        let s = &YamlStore;
        check(s, "a: 1\nb: x\n", &["a int 1", "b str x"]);
        check(s, "a: 1\nb: x", &["a int 1", "b str x"]);
        check(
            s,
            "# head\na: x # trail\n",
            &["# head", "a str x", "# trail"],
        );
        check(s, "a:\n  b:\n    c: deep\n", &["a:b:c str deep"]);
        check(s, "l:\n  - x\n  - {k: v}\n", &["l str x", "l:k str v"]);
        check(
            s,
            "f: {x: 1, y: [a, \"b c\"]}\n",
            &["f:x int 1", "f:y str a", "f:y str b c"],
        );
        check(
            s,
            "q: 'it''s # no'\nd: \"t\\tq\"\n",
            &["q str it's # no", "d str t\tq"],
        );
        check(s, "q: 'x' # c\n", &["q str x", "# c"]);
        check(
            s,
            "lit: |\n  a\n  b\nn: 1\n",
            &["lit str a\nb\n", "n int 1"],
        );
        check(s, "lit: |-\n  a\n  b\nn: 1\n", &["lit str a\nb", "n int 1"]);
        check(s, "lit: |+\n  a\n\nn: 1\n", &["lit str a\n\n", "n int 1"]);
        check(s, "lit: |-\n  a\n  b", &["lit str a\nb"]);
        assert_eq!(
            super::super::table::read(s, "lit: |\t# c\n  a\n"),
            ["lit str a\n", "# c"]
        );
        check(
            s,
            "t: 2024-01-02T03:04:05Z\n",
            &["t time 2024-01-02T03:04:05Z"],
        );
        check(
            s,
            "f: 1.5e+10\ng: .inf\nb: true\nn: null\n",
            &[
                "f float 1.5e+10",
                "g float +Inf",
                "b bool true",
                "n null null",
            ],
        );
        check(s, "a: 1\r\nb: x\r\n", &["a int 1", "b str x"]);
        check(s, "---\na: 1\n...\n---\nb: 2\n", &["a int 1", "b int 2"]);
        check(s, "x: \"2024-01-02\"\n", &["x str 2024-01-02"]);
    }

    #[test]
    fn values_that_read_as_another_spelling() {
        // Read as the value they are; written back in the canonical spelling.
        assert_eq!(
            super::super::table::read(&YamlStore, "d: 2024-01-02\nh: 0x1F\n"),
            ["d time 2024-01-02T00:00:00Z", "h int 31"]
        );
        assert_eq!(
            super::super::table::read(&YamlStore, "m: a\n  b\nf: >\n  c\n  d\n"),
            ["m str a b", "f str c d\n"]
        );
        assert_eq!(
            super::super::table::rendered(&YamlStore, "s: !!str 12\n"),
            "s: !!str \"12\"\n"
        );
        // In a flow collection single quotes mark a value that was plain (see enc_quotes).
        assert_eq!(
            super::super::table::rendered(&YamlStore, "f: ['b c']\n"),
            "f: [b c]\n"
        );
    }

    #[test]
    fn refusals_name_the_line() {
        let err = |t: &str| super::super::table::refusal(&YamlStore, t).to_string();
        assert!(err("? [a]\n: b\n").starts_with("line 1, column 3: complex mapping keys"));
        assert!(err("a: 1\nb: 99999999999999999999\n").starts_with("line 2, column 4: an integer"));
        assert!(err("- a\n").contains("sequences are not supported"));
        assert!(err("&k a: 1\n*k : 2\n").contains("an alias (*name) as a mapping key"));
        let laughs = format!(
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n{}",
            (b'b'..=b'h')
                .map(|c| {
                    let prev = (c - 1) as char;
                    format!(
                        "{}: &{} [{}]\n",
                        c as char,
                        c as char,
                        vec![format!("*{prev}"); 10].join(", ")
                    )
                })
                .collect::<String>()
        );
        assert!(
            err(&laughs).contains("aliases expand to too many values"),
            "{}",
            err(&laughs)
        );
    }
}
