//! The plainest YAML read without saphyr's scanner. saphyr reads a character at a time
//! and allocates each scalar; for the files coffer sees most (block mappings and lists
//! of one-line keys and values, an encrypted file's stand-ins, sops's metadata) that was
//! half of every parse. This reader makes the same events with the same spans from whole
//! lines, or declines the text: it knows only plain keys, one-line plain and unescaped
//! quoted scalars, empty flow collections, literal blocks, folded blocks of one line
//! (what sops writes a ciphertext in) and comments, in ASCII without tabs or carriage
//! returns. Anything else (flow collections, anchors, tags, escapes, folded blocks of
//! several lines, other multi-line scalars, odd indentation) is saphyr's, which then
//! reads the text from the start. The tests hold the two readers to the same events,
//! span for span.

use std::borrow::Cow;
use std::collections::VecDeque;

use saphyr_parser::{Event, Marker, ScalarStyle, Span};

/// A reader of `input`, unless it holds what this reader never takes (non-ASCII text,
/// tabs, carriage returns, an unended last line of blanks or a comment). It may still
/// decline part way: the caller then reads the text with saphyr.
pub(super) fn reader(input: &str) -> Option<Quick<'_>> {
    if !input.is_ascii() || memchr::memchr2(b'\t', b'\r', input.as_bytes()).is_some() {
        return None;
    }
    // A last line of blanks or a comment without a line break: saphyr ends some
    // collections on it and some after it.
    let last = input
        .rsplit('\n')
        .next()
        .unwrap_or_default()
        .trim_start_matches(' ');
    if last.is_empty() != input.ends_with('\n') || last.starts_with('#') {
        return None;
    }
    Some(Quick::new(input))
}

/// Text this reader does not know: saphyr reads it.
#[derive(Debug)]
pub(super) struct Declined;

pub(super) struct Quick<'a> {
    text: &'a str,
    /// Start of the next line to read, and its 0-based number.
    pos: usize,
    line: usize,
    open: Vec<Open>,
    /// A key read whose value is not yet known: where its `:` stands, as saphyr puts an
    /// empty value there.
    pending: Option<Marker>,
    queue: VecDeque<(Event<'a>, Span)>,
    started: bool,
    done: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Map,
    Seq,
}

#[derive(Clone, Copy)]
struct Open {
    kind: Kind,
    /// Column of the keys or dashes.
    col: usize,
    /// A list at its parent key's column (`key:` then `- item` under it).
    indentless: bool,
}

/// One line holding a token: where it starts and its column, and where it ends.
struct Line {
    start: usize,
    col: usize,
    end: usize,
}

impl<'a> Quick<'a> {
    fn new(text: &'a str) -> Self {
        Quick {
            text,
            pos: 0,
            line: 0,
            open: Vec::new(),
            pending: None,
            queue: VecDeque::new(),
            started: false,
            done: false,
        }
    }

    fn at(&self, index: usize) -> Marker {
        // Mostly on the line being read.
        let b = self.text.as_bytes();
        let at_line_start = self.pos == 0 || b[self.pos - 1] == b'\n';
        if at_line_start && index >= self.pos && !b[self.pos..index].contains(&b'\n') {
            return Marker::new(index, self.line + 1, index - self.pos);
        }
        let start = self.text[..index].rfind('\n').map_or(0, |n| n + 1);
        let line = self.line_number(index);
        Marker::new(index, line, index - start)
    }

    /// The 1-based line of `index`: counted from the line being read.
    fn line_number(&self, index: usize) -> usize {
        if index >= self.pos {
            self.line
                + 1
                + self.text.as_bytes()[self.pos..index]
                    .iter()
                    .filter(|&&c| c == b'\n')
                    .count()
        } else {
            self.line + 1
                - self.text.as_bytes()[index..self.pos]
                    .iter()
                    .filter(|&&c| c == b'\n')
                    .count()
        }
    }

    fn push(&mut self, event: Event<'a>, start: usize, end: usize) {
        let span = Span::new(self.at(start), self.at(end));
        self.queue.push_back((event, span));
    }

    fn push_at(&mut self, event: Event<'a>, at: Marker) {
        self.queue.push_back((event, Span::new(at, at)));
    }

    /// The next line holding a token, past blank and comment lines.
    fn next_line(&mut self) -> Option<Line> {
        let b = self.text.as_bytes();
        while self.pos < b.len() {
            let end = memchr::memchr(b'\n', &b[self.pos..]).map_or(b.len(), |n| self.pos + n);
            let col = blanks(&b[self.pos..end]);
            let first = b.get(self.pos + col).copied();
            if self.pos + col == end || first == Some(b'#') {
                self.advance_past(end);
                continue;
            }
            return Some(Line {
                start: self.pos,
                col,
                end,
            });
        }
        None
    }

    /// Go on to the line after the one ending at `end`.
    fn advance_past(&mut self, end: usize) {
        if end < self.text.len() {
            self.pos = end + 1;
            self.line += 1;
        } else {
            self.pos = end;
        }
    }

    /// Read one line's events into the queue; `false` once the text is done.
    fn step(&mut self) -> Result<bool, Declined> {
        let Some(line) = self.next_line() else {
            // An empty text, or a document of nothing but `---`: saphyr's.
            if self.open.is_empty() {
                return Err(Declined);
            }
            self.finish();
            return Ok(false);
        };
        let b = self.text.as_bytes();
        let token = line.start + line.col;
        let rest = &b[token..line.end];
        if rest.starts_with(b"---") || rest.starts_with(b"...") {
            if rest != b"---" || line.col != 0 {
                return Err(Declined);
            }
            if !self.started {
                self.started = true;
                self.push(Event::StreamStart, 0, 0);
                self.push(Event::DocumentStart(true), token, token + 3);
            } else {
                if self.open.is_empty() {
                    return Err(Declined);
                }
                let at = self.at(token);
                self.close_all(at);
                self.push(Event::DocumentEnd, token, token + 3);
                self.push(Event::DocumentStart(true), token, token + 3);
            }
            self.advance_past(line.end);
            return Ok(true);
        }
        if !self.started {
            self.started = true;
            self.push(Event::StreamStart, 0, 0);
            self.push(Event::DocumentStart(false), token, token);
        }
        let dash = rest == b"-" || rest.starts_with(b"- ");
        let at = self.at(token);
        if self.open.is_empty() {
            // The root: a mapping at the first column.
            if dash || line.col != 0 {
                return Err(Declined);
            }
            self.push_at(Event::MappingStart(0, None), at);
            self.open.push(Open {
                kind: Kind::Map,
                col: 0,
                indentless: false,
            });
        } else if let Some(colon) = self.pending.take() {
            let parent = *self.open.last().expect("a key's mapping is open");
            if line.col > parent.col {
                let kind = if dash { Kind::Seq } else { Kind::Map };
                let start = if dash {
                    Event::SequenceStart(0, None)
                } else {
                    Event::MappingStart(0, None)
                };
                self.push_at(start, at);
                self.open.push(Open {
                    kind,
                    col: line.col,
                    indentless: false,
                });
            } else if line.col == parent.col && dash {
                // saphyr puts the start of a list at its key's column on its first item.
                let item = token + 1 + blanks(&b[token + 1..line.end]);
                if item == line.end {
                    return Err(Declined);
                }
                let at = self.at(item);
                self.push_at(Event::SequenceStart(0, None), at);
                self.open.push(Open {
                    kind: Kind::Seq,
                    col: line.col,
                    indentless: true,
                });
            } else {
                self.push_at(
                    Event::Scalar(Cow::Borrowed(""), ScalarStyle::Plain, 0, None),
                    colon,
                );
                self.close_to(line.col, dash, at)?;
            }
        } else {
            self.close_to(line.col, dash, at)?;
        }
        let top = *self.open.last().expect("a collection is open");
        if (top.kind == Kind::Seq) != dash || top.col != line.col {
            return Err(Declined);
        }
        if dash {
            self.item(&line, token)?;
        } else {
            self.entry(token, line.end)?;
        }
        Ok(true)
    }

    /// End the collections a token at `col` closes.
    fn close_to(&mut self, col: usize, dash: bool, at: Marker) -> Result<(), Declined> {
        while let Some(top) = self.open.last().copied() {
            let ends = top.col > col || (top.indentless && top.col == col && !dash);
            if !ends {
                break;
            }
            self.open.pop();
            let end = match top.kind {
                Kind::Map => Event::MappingEnd,
                Kind::Seq => Event::SequenceEnd,
            };
            self.push_at(end, at);
        }
        if self.open.is_empty() {
            return Err(Declined);
        }
        Ok(())
    }

    fn close_all(&mut self, at: Marker) {
        if let Some(colon) = self.pending.take() {
            self.push_at(
                Event::Scalar(Cow::Borrowed(""), ScalarStyle::Plain, 0, None),
                colon,
            );
        }
        while let Some(top) = self.open.pop() {
            let end = match top.kind {
                Kind::Map => Event::MappingEnd,
                Kind::Seq => Event::SequenceEnd,
            };
            self.push_at(end, at);
        }
    }

    /// saphyr ends the text as if a line break followed its last line.
    fn finish(&mut self) {
        let b = self.text.as_bytes();
        let breaks = memchr::memchr_iter(b'\n', b).count();
        let end = Marker::new(b.len(), breaks + 1 + usize::from(!b.ends_with(b"\n")), 0);
        self.close_all(end);
        self.push_at(Event::DocumentEnd, end);
        self.push_at(Event::StreamEnd, end);
    }

    /// `- item`: a scalar, or the first key of a mapping.
    fn item(&mut self, line: &Line, token: usize) -> Result<(), Declined> {
        let b = self.text.as_bytes();
        let content = token + 1 + blanks(&b[token + 1..line.end]);
        if content == line.end || matches!(b[content], b'#' | b'-' | b'|' | b'>') {
            return Err(Declined);
        }
        if key_end(&b[content..line.end]).is_some() {
            let col = content - line.start;
            let at = self.at(content);
            self.push_at(Event::MappingStart(0, None), at);
            self.open.push(Open {
                kind: Kind::Map,
                col,
                indentless: false,
            });
            return self.entry(content, line.end);
        }
        self.scalar(content, line.end)?;
        self.advance_past(line.end);
        Ok(())
    }

    /// `key: value`, or `key:` with its value on the lines below.
    fn entry(&mut self, token: usize, end: usize) -> Result<(), Declined> {
        let b = self.text.as_bytes();
        let len = key_end(&b[token..end]).ok_or(Declined)?;
        self.push(
            Event::Scalar(
                Cow::Borrowed(&self.text[token..token + len]),
                ScalarStyle::Plain,
                0,
                None,
            ),
            token,
            token + len,
        );
        let colon = token + len;
        let value = colon + 1 + blanks(&b[colon + 1..end]);
        if value == end || b[value] == b'#' {
            self.pending = Some(self.at(colon));
            self.advance_past(end);
            return Ok(());
        }
        if matches!(b[value], b'|' | b'>') {
            return self.block(value, end);
        }
        self.scalar(value, end)?;
        self.advance_past(end);
        Ok(())
    }

    /// A one-line scalar from `start` to the end of its line (a comment may follow), or
    /// an empty flow collection (`[]`, `{}`: what sops 3.7 wrote for key kinds unused).
    fn scalar(&mut self, start: usize, end: usize) -> Result<(), Declined> {
        let b = self.text.as_bytes();
        if let Some(pair @ (b"[]" | b"{}")) = b.get(start..start + 2) {
            if !blanks_or_comment(&b[start + 2..end]) {
                return Err(Declined);
            }
            let (open, close) = if pair == b"[]" {
                (Event::SequenceStart(0, None), Event::SequenceEnd)
            } else {
                (Event::MappingStart(0, None), Event::MappingEnd)
            };
            // As after a quoted scalar, saphyr's span of the bracket runs to the line's end.
            self.push(open, start, start + 1);
            self.push(close, start + 1, end);
            return Ok(());
        }
        let (style, inner, stop) = match b[start] {
            q @ (b'"' | b'\'') => {
                let close = memchr::memchr(q, &b[start + 1..end]).ok_or(Declined)? + start + 1;
                if q == b'"' && b[start + 1..close].contains(&b'\\') {
                    return Err(Declined);
                }
                if !blanks_or_comment(&b[close + 1..end]) {
                    return Err(Declined);
                }
                let style = if q == b'"' {
                    ScalarStyle::DoubleQuoted
                } else {
                    ScalarStyle::SingleQuoted
                };
                (style, start + 1..close, end)
            }
            c if !plain_start(c, b.get(start + 1).copied()) => return Err(Declined),
            _ => {
                let line = &b[start..end];
                let cut = pair(line, b' ', b'#').unwrap_or(line.len());
                let text = line[..cut].trim_ascii_end();
                if text.ends_with(b":") || pair(text, b':', b' ').is_some() {
                    return Err(Declined);
                }
                (
                    ScalarStyle::Plain,
                    start..start + text.len(),
                    start + text.len(),
                )
            }
        };
        self.push(
            Event::Scalar(Cow::Borrowed(&self.text[inner]), style, 0, None),
            start,
            stop,
        );
        Ok(())
    }

    /// `key: |` or `key: |-` and the lines under it, each indented alike, none blank
    /// between them; or `key: >`, `key: >-` and one line under it (what folds nothing,
    /// as sops writes a ciphertext in a folded block).
    fn block(&mut self, at: usize, end: usize) -> Result<(), Declined> {
        let b = self.text.as_bytes();
        let header = &b[at..end];
        let (keep_break, style) = match header.trim_ascii_end() {
            b"|" => (true, ScalarStyle::Literal),
            b"|-" => (false, ScalarStyle::Literal),
            b">" => (true, ScalarStyle::Folded),
            b">-" => (false, ScalarStyle::Folded),
            _ => return Err(Declined),
        };
        let parent = self.open.last().expect("a key's mapping is open").col;
        self.advance_past(end);
        let mut indent = None;
        let mut value = String::new();
        let mut first = None;
        while self.pos < b.len() {
            let line_end = memchr::memchr(b'\n', &b[self.pos..]).map_or(b.len(), |n| self.pos + n);
            let line = &b[self.pos..line_end];
            let col = blanks(line);
            if col == line.len() {
                // A blank line: it may end the block, never sit inside it (nor hold
                // spaces past the block's indentation, which would be text).
                if indent.is_none_or(|n| col > n) {
                    return Err(Declined);
                }
                let mut p = line_end + 1;
                while p < b.len() {
                    let e = memchr::memchr(b'\n', &b[p..]).map_or(b.len(), |n| p + n);
                    let c = blanks(&b[p..e]);
                    if c > indent.unwrap_or(0) || (c < e - p && c == indent.unwrap_or(0)) {
                        return Err(Declined);
                    }
                    if c < e - p {
                        break;
                    }
                    p = e + 1;
                }
                break;
            }
            match indent {
                None if col > parent => {
                    indent = Some(col);
                    first = Some(self.pos + col);
                }
                None => return Err(Declined),
                Some(n) if col >= n => {}
                Some(_) if col > parent => return Err(Declined),
                Some(_) => break,
            }
            if !value.is_empty() {
                if style == ScalarStyle::Folded {
                    return Err(Declined);
                }
                value.push('\n');
            }
            value.push_str(&self.text[self.pos + indent.unwrap_or(0)..line_end]);
            self.advance_past(line_end);
        }
        let (Some(first), Some(_)) = (first, indent) else {
            return Err(Declined);
        };
        if keep_break {
            value.push('\n');
        }
        // The block's span runs on over blank lines and the indentation of the line
        // that ends it, as saphyr's does.
        let mut next = self.pos;
        while next < b.len() {
            let e = memchr::memchr(b'\n', &b[next..]).map_or(b.len(), |n| next + n);
            let c = blanks(&b[next..e]);
            if next + c < e {
                next += c;
                break;
            }
            next = (e + 1).min(b.len());
        }
        let end_marker = self.at(next);
        let start_marker = self.at(first);
        self.queue.push_back((
            Event::Scalar(Cow::Owned(value), style, 0, None),
            Span::new(start_marker, end_marker),
        ));
        Ok(())
    }
}

impl<'a> Iterator for Quick<'a> {
    type Item = Result<(Event<'a>, Span), Declined>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.queue.is_empty() {
            if self.done {
                return None;
            }
            match self.step() {
                Ok(true) => {}
                Ok(false) => self.done = true,
                Err(d) => {
                    self.done = true;
                    self.queue.clear();
                    return Some(Err(d));
                }
            }
        }
        self.queue.pop_front().map(Ok)
    }
}

/// How many spaces `bytes` start with.
fn blanks(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|&&c| c == b' ').count()
}

/// Whether what follows a token on its line is blanks, then perhaps a comment.
fn blanks_or_comment(after: &[u8]) -> bool {
    let n = blanks(after);
    n == after.len() || (n > 0 && after[n] == b'#')
}

/// Where `first` then `second` stand in `line`, found by `first` with a vectorized scan
/// (lines are short: no searcher to set up). A ciphertext is a line of a hundred bytes
/// and more, holding `:` five times and no `#`.
fn pair(line: &[u8], first: u8, second: u8) -> Option<usize> {
    memchr::memchr_iter(first, line).find(|&i| line.get(i + 1) == Some(&second))
}

/// The length of a plain key at the start of `line` followed by `:` and a blank or the
/// end of the line; `None` for anything else.
fn key_end(line: &[u8]) -> Option<usize> {
    let first = *line.first()?;
    if !(first.is_ascii_alphanumeric() || first == b'_') {
        return None;
    }
    let len = line
        .iter()
        .take_while(|&&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b'/'))
        .count();
    match line.get(len..) {
        Some([b':']) | Some([b':', b' ', ..]) => Some(len),
        _ => None,
    }
}

/// Whether a plain scalar may start with `c` (then `next`) here: no indicator, and a
/// `-` only before a character that keeps it from being a list item.
fn plain_start(c: u8, next: Option<u8>) -> bool {
    match c {
        b'-' => next.is_some_and(|n| n != b' ' && n != b'\n'),
        b'?' | b':' | b',' | b'[' | b']' | b'{' | b'}' | b'#' | b'&' | b'*' | b'!' | b'|'
        | b'>' | b'\'' | b'"' | b'%' | b'@' | b'`' | b' ' => false,
        _ => true,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use saphyr_parser::Parser;

    /// saphyr's events for `text`, or `None` when it refuses it.
    fn saphyr(text: &str) -> Option<Vec<(Event<'_>, Span)>> {
        Parser::new_from_str(text)
            .collect::<Result<Vec<_>, _>>()
            .ok()
    }

    /// Whether the quick reader took `text`; panics where it reads it otherwise than saphyr.
    fn check(text: &str) -> bool {
        let Some(Ok(quick)) = reader(text).map(|r| r.collect::<Result<Vec<_>, _>>()) else {
            return false;
        };
        let Some(want) = saphyr(text) else {
            panic!("saphyr refuses what the quick reader took: {text:?}\n{quick:#?}");
        };
        for (k, (q, w)) in quick.iter().zip(&want).enumerate() {
            assert_eq!(q, w, "event {k} of {text:?}");
        }
        assert_eq!(
            quick.len(),
            want.len(),
            "{text:?}\nquick: {quick:#?}\nsaphyr: {want:#?}"
        );
        true
    }

    #[test]
    fn reads_as_saphyr_or_declines() {
        let cases: &[(&str, bool)] = &[
            ("a: 1\n", true),
            ("a: 1", true),
            ("# top\nsvc_1:\n  key_0: value-1  # c\n  key_1: v2\n\n# mid\nsvc_2:\n  - a\n  - b: c\n    d: e\nlast: x\n", true),
            ("a:\n- x\n- y\nb:\nc: \"\"\n", true),
            ("sops:\n    age:\n        - recipient: age1abc\n          enc: |\n            -----BEGIN AGE-----\n            YWJj\n            -----END AGE-----\n    lastmodified: \"2026-01-01T00:00:00Z\"\n    version: 3.9.4\n", true),
            ("---\na: 1\n---\nb: 2\n", true),
            ("a: |\n  x\n  y\n\nb: 1\n", true),
            ("a: |-\n  x\n# c\nb: 1\n", true),
            ("a: |\n  x\n", true),
            ("a: |\n  x", true),
            ("a: >\n  x\n", true),
            ("a: >-\n    ENC[AES256_GCM,data:a,iv:b,tag:c,type:str]\nb: 1\n", true),
            ("a:\n  b: >\n   x\n\n  c: 1\n", true),
            ("a:\n  b:\n    c: 1\n  d: 2\ne: 3\n", true),
            ("a: 'q'  # c\nb: \"d\" # e\n", true),
            ("a:\n- b: c\n  d: e\nf: g\n", true),
            ("- a:\n  - x\n", false),
            ("a:\n  - b:\n    - x\n  - c\n", true),
            ("a: b:c\nd: -1\ne: x#y\n", true),
            ("a: # c\n  b: 1\n", true),
            ("a:\n\n  b: 1\n", true),
            ("a:\n# c\nb: 1\n", true),
            ("a:", true),
            ("a: 1\n# end", false),
            // Declined: saphyr's.
            ("", false),
            ("---\n", false),
            ("a: [1, 2]\n", false),
            ("a: &x 1\nb: *x\n", false),
            ("a: \"x\\ny\"\n", false),
            ("a: x\n  y\n", false),
            ("a: >\n  x\n  y\n", false),
            ("a: >+\n  x\n", false),
            ("a: |\n  x\n\n  y\n", false),
            ("a:\tb\n", false),
            ("a: b\r\n", false),
            ("é: 1\n", false),
            ("a: b: c\n", false),
            ("  a: 1\n", false),
            ("a: 1\n b: 2\n", false),
            ("'a': 1\n", false),
            ("a: 'it''s'\n", false),
            ("a: -\n", false),
            ("a: 1\n...\n", false),
        ];
        for (text, taken) in cases {
            assert_eq!(check(text), *taken, "{text:?}");
        }
    }

    /// A small deterministic generator (xorshift): the same texts on every run.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }

        fn pick<'x>(&mut self, from: &[&'x str]) -> &'x str {
            from[self.below(from.len())]
        }
    }

    const KEYS: &[&str] = &[
        "a", "key_1", "x.y", "b-c", "p/q", "_u", "9", "-z", "'q'", "k k",
    ];
    /// Values this reader takes first, then values it leaves to saphyr.
    const VALUES: &[&str] = &[
        "1",
        "-1",
        "x y",
        "x #c",
        "x#c",
        "'s'",
        "'s' # c",
        "\"d\"",
        "\"d\"  ",
        "",
        "# c",
        "b:c",
        "~",
        "ENC[AES256_GCM,data:abc,iv:def,tag:ghi,type:str]",
        "true",
        "0x1F",
        "x  ",
        "a,b",
        "a]b",
        "|",
        "|-",
        ">",
        ">-",
        "[]",
        "{} # c",
        "[]  ",
        "x: y",
        "[]x",
        "{}# c",
        "\"e\\n\"",
        "'it''s'",
        "[1]",
        "{a: 1}",
        "&a 1",
        "*a",
        "!t x",
        "!!str 5",
        "!!int '7'",
        "!Ref a b",
        "-",
        "x:",
        "?",
        "'",
        "\"",
        "%x",
        "@x",
        "|+",
        ">+",
        "|2",
    ];
    const TAKEN: usize = 26;

    fn value(r: &mut Rng) -> &'static str {
        if r.below(12) == 0 {
            r.pick(VALUES)
        } else {
            r.pick(&VALUES[..TAKEN])
        }
    }

    /// The lines of a block scalar, when `value` opened one under a key at `indent`.
    fn block(r: &mut Rng, value: &str, indent: usize, out: &mut String) {
        if !value.starts_with(['|', '>']) {
            return;
        }
        let inner = " ".repeat(indent + 1 + r.below(3));
        for _ in 0..1 + r.below(3) {
            out.push_str(&format!("{inner}text {}\n", r.below(9)));
            if r.below(8) == 0 {
                out.push('\n');
            }
        }
    }

    /// A mapping at `indent`, with now and then a list, a literal block, a comment or a
    /// blank line, and now and then a line put out of place.
    fn map(r: &mut Rng, indent: usize, depth: usize, out: &mut String) {
        for _ in 0..1 + r.below(4) {
            let pad = " ".repeat(indent);
            match r.below(12) {
                0 => out.push_str(&format!("{}# note\n", " ".repeat(r.below(6)))),
                1 => out.push_str(&" ".repeat(r.below(3))),
                _ => {}
            }
            if r.below(3) == 0 {
                out.push('\n');
            }
            let key = if r.below(8) == 0 {
                r.pick(KEYS)
            } else {
                r.pick(&KEYS[..6])
            };
            match r.below(if depth > 3 { 2 } else { 6 }) {
                0 | 1 => {
                    let value = value(r);
                    let sep = if r.below(10) == 0 { "  " } else { " " };
                    out.push_str(&format!("{pad}{key}:{sep}{value}\n"));
                    block(r, value, indent, out);
                }
                2 | 3 => {
                    out.push_str(&format!("{pad}{key}:\n"));
                    let at = indent + 1 + r.below(4);
                    map(r, at, depth + 1, out);
                }
                _ => {
                    out.push_str(&format!("{pad}{key}:\n"));
                    let at = indent + 2 * r.below(2);
                    seq(r, at, depth + 1, out);
                }
            }
            if r.below(15) == 0 {
                out.push_str(&format!("{}{}\n", " ".repeat(r.below(5)), value(r)));
            }
        }
    }

    fn seq(r: &mut Rng, indent: usize, depth: usize, out: &mut String) {
        for _ in 0..1 + r.below(3) {
            let pad = " ".repeat(indent);
            match r.below(4) {
                0 => {
                    let first = value(r);
                    out.push_str(&format!(
                        "{pad}- {key}: {first}\n",
                        key = r.pick(&KEYS[..6])
                    ));
                    block(r, first, indent + 2, out);
                    if r.below(2) == 0 {
                        let (key, value) = (r.pick(&KEYS[..6]), value(r));
                        out.push_str(&format!("{pad}  {key}: {value}\n"));
                        block(r, value, indent + 2, out);
                    }
                }
                1 if depth < 4 => {
                    out.push_str(&format!("{pad}- {}:\n", r.pick(&KEYS[..6])));
                    let at = indent + 2 + r.below(3);
                    if r.below(3) == 0 {
                        let at = at - 1 + r.below(2);
                        seq(r, at, depth + 1, out);
                    } else {
                        map(r, at, depth + 1, out);
                    }
                }
                _ => {
                    let value = value(r);
                    out.push_str(&format!("{pad}- {value}\n"));
                }
            }
        }
    }

    /// `n` generated texts, the same on every run: nested mappings and lists, compact
    /// mappings, literal blocks, comments, documents, values on both sides of the line.
    pub(in crate::format::yaml) fn generated(n: usize) -> impl Iterator<Item = String> {
        let mut r = Rng(0x9E37_79B9_7F4A_7C15);
        (0..n).map(move |_| {
            let mut text = String::new();
            if r.below(6) == 0 {
                text.push_str("---\n");
            }
            map(&mut r, 0, 0, &mut text);
            if r.below(6) == 0 {
                text.push_str("---\n");
                map(&mut r, 0, 0, &mut text);
            }
            if r.below(5) == 0 {
                text.pop();
            }
            text
        })
    }

    /// Of `n` generated texts, how many `reads` takes, and how many there were.
    pub(in crate::format::yaml) fn taken_of_generated(
        n: usize,
        reads: impl Fn(&str) -> bool,
    ) -> (usize, usize) {
        let taken = generated(n).filter(|text| reads(text)).count();
        (taken, n)
    }

    #[test]
    fn generated_texts_read_as_saphyr_reads_them_or_are_declined() {
        let (taken, runs) = taken_of_generated(20_000, check);
        // The generator must reach both sides of the line between the readers.
        assert!(
            taken > runs / 10 && taken < runs * 9 / 10,
            "{taken} of {runs} taken"
        );
    }

    /// Every YAML file under `testdata`: the YAML test suite, sops's own files, the
    /// corpus.
    pub(in crate::format::yaml) fn test_files() -> Vec<std::path::PathBuf> {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).expect("testdata").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                    out.push(path);
                }
            }
        }
        let mut files = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata"),
            &mut files,
        );
        files
    }

    /// Every YAML file under `testdata` (sops's own files among them), and each with
    /// its encrypted values read through stand-ins, as `read` hands them over.
    #[test]
    fn test_files_read_as_saphyr_reads_them_or_are_declined() {
        let files = test_files();
        let mut taken = 0;
        for file in &files {
            let Ok(text) = std::fs::read_to_string(file) else {
                continue;
            };
            taken += usize::from(check(&text));
            if let Some(shrunk) = super::super::shrink::Shrunk::of(&text, None) {
                taken += usize::from(check(&shrunk.input));
            }
        }
        // Most are the YAML test suite's odd corners, which saphyr reads; sops's own
        // files and the corpus are mostly this reader's.
        assert!(
            files.len() > 300 && taken > 50,
            "{taken} of {} files",
            files.len()
        );
    }

    /// The quick reader gives a first line's scalar before it sees the next line go on
    /// with it: a reading it leaves part way is saphyr's from the start, errors included
    /// (as one number, the first line alone is too large for sops).
    #[test]
    fn a_reading_left_part_way_is_saphyrs_from_the_start() {
        let text = "a: 123456789012345678901234567890\n  more\nb: 1\n";
        let doc = crate::format::parse(
            "t.yaml",
            crate::format::Format::Yaml,
            text.as_bytes().to_vec(),
        )
        .expect("saphyr reads one string");
        assert_eq!(
            doc.value_str(0),
            Some("123456789012345678901234567890 more")
        );
        assert_eq!(doc.value_str(1), Some("1"));
    }

    /// A text large enough to be read on two threads (the events made on one, the
    /// document built on the other) reads as a small one: taken whole, left part way at
    /// its end (saphyr's from the start), or refused at the line a small one is.
    #[test]
    fn a_large_text_read_on_two_threads_reads_as_a_small_one() {
        let parse = |text: &str| {
            crate::format::parse(
                "t.yaml",
                crate::format::Format::Yaml,
                text.as_bytes().to_vec(),
            )
        };
        let head: String = (0..8_000).map(|i| format!("k{i}: v{i}\n")).collect();
        assert!(head.len() >= super::super::parse::PIPED_FROM);
        for tail in [
            "a: x\n",
            "a: 123456789012345678901234567890\n  more\nb: 1\n",
            "a: [1, {b: c}]\n",
        ] {
            let small = parse(tail).expect("reads");
            let large = parse(&format!("{head}{tail}")).expect("reads");
            assert_eq!(large.leaves.len(), 8_000 + small.leaves.len(), "{tail:?}");
            assert_eq!(large.value_str(7_999), Some("v7999"), "{tail:?}");
            for i in 0..small.leaves.len() {
                assert_eq!(large.value_str(8_000 + i), small.value_str(i), "{tail:?}");
            }
        }
        let refused = parse(&format!("{head}bad: [\n")).err().expect("refused");
        assert!(refused.to_string().contains("line 8002"), "{refused}");
    }
}
