//! JSON: a small span-keeping parser, so values are replaced where they stand and the
//! author's indentation (spaces, tabs or none) is kept.

use std::borrow::Cow;
use std::ops::Range;

use zeroize::Zeroizing;

use super::Store;
use crate::tree::{
    own_value, Doc, Document, Entry, Key, Leaf, LeafKind, MetaValue, Node, Quote, ScalarType,
    Style, Value,
};

pub struct JsonStore;

pub fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i == int_start || (b[int_start] == b'0' && i - int_start > 1) {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == s {
            return false;
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let s = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == s {
            return false;
        }
    }
    i == b.len()
}

/// Why a bare word is no value.
enum BadWord {
    NotJson,
    /// An integer past 64 bits.
    TooBig,
}

/// The type of a bare word (`true`, `null`, `1.5`).
fn word_type(word: &str) -> Result<ScalarType, BadWord> {
    match word {
        "true" | "false" => Ok(ScalarType::Bool),
        "null" => Ok(ScalarType::Null),
        w if is_json_number(w) => {
            if w.contains(['.', 'e', 'E']) {
                Ok(ScalarType::Float)
            } else if w.parse::<i64>().is_ok() {
                Ok(ScalarType::Int)
            } else {
                Err(BadWord::TooBig)
            }
        }
        _ => Err(BadWord::NotJson),
    }
}

/// Where a bare word starting at `at` ends.
fn word_end(b: &[u8], mut at: usize) -> usize {
    while at < b.len() && !matches!(b[at], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
        at += 1;
    }
    at
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

/// Where the JSON whitespace from `at` ends.
fn after_space(b: &[u8], mut at: usize) -> usize {
    while b.get(at).copied().is_some_and(is_space) {
        at += 1;
    }
    at
}

struct P<'t> {
    text: &'t str,
    b: &'t [u8],
    pos: usize,
    leaves: Vec<Leaf>,
    /// The entries and items of the collections open, each taken off at its end.
    entries: Vec<Entry>,
    items: Vec<Node>,
    depth: usize,
    keys: crate::tree::KeyTable,
}

enum Parsed {
    Node(Node),
    Meta(MetaValue),
}

impl<'t> P<'t> {
    fn err(&self, msg: &str) -> super::SyntaxError {
        let before = &self.text[..self.pos.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        super::SyntaxError::at(line, col, msg)
    }

    fn ws(&mut self) {
        self.pos = after_space(self.b, self.pos);
    }

    fn expect(&mut self, c: u8) -> Result<(), super::SyntaxError> {
        self.ws();
        if self.b.get(self.pos) == Some(&c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected '{}'", c as char)))
        }
    }

    /// After a member or item: `,` continues the list (false), `close` ends it (true).
    fn separator(&mut self, close: u8) -> Result<bool, super::SyntaxError> {
        self.ws();
        match self.b.get(self.pos) {
            Some(b',') => {
                self.pos += 1;
                Ok(false)
            }
            Some(&c) if c == close => {
                self.pos += 1;
                Ok(true)
            }
            _ => Err(self.err(&format!("expected ',' or '{}'", close as char))),
        }
    }

    /// A string's value: its text as it stands when it holds no escape (most do, and
    /// a million keys and values are then not copied), else decoded.
    fn string(&mut self) -> Result<Cow<'t, str>, super::SyntaxError> {
        if self.b.get(self.pos) != Some(&b'"') {
            return Err(self.err("expected a string"));
        }
        self.pos += 1;
        if let Some((plain, end)) = plain_string(self.text, self.pos) {
            self.pos = end;
            return Ok(Cow::Borrowed(plain));
        }
        let mut out = String::new();
        loop {
            let Some(&c) = self.b.get(self.pos) else {
                return Err(self.err("unterminated string"));
            };
            match c {
                b'"' => {
                    self.pos += 1;
                    return Ok(Cow::Owned(out));
                }
                b'\\' => {
                    let e = *self
                        .b
                        .get(self.pos + 1)
                        .ok_or_else(|| self.err("unterminated string"))?;
                    self.pos += 2;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let at = self.pos - 2;
                            let mut cp = self.hex4()?;
                            if (0xD800..0xDC00).contains(&cp)
                                && self.text[self.pos..].starts_with("\\u")
                            {
                                let back = self.pos;
                                self.pos += 2;
                                match self.hex4()? {
                                    lo @ 0xDC00..0xE000 => {
                                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                    }
                                    _ => self.pos = back,
                                }
                            }
                            // Half of a UTF-16 pair is no character: Go and serde would
                            // read U+FFFD, another value than the one written.
                            let ch = char::from_u32(cp).ok_or_else(|| {
                                self.pos = at;
                                self.err(&format!(
                                    "\\u{cp:04x} is half of a UTF-16 surrogate pair, no character"
                                ))
                            })?;
                            out.push(ch);
                        }
                        _ => return Err(self.err("bad escape in string")),
                    }
                }
                c if c < 0x20 => return Err(self.err("control character in string")),
                _ => {
                    // Copy the run up to the next quote, escape or control character at
                    // once: a binary file is one string of many megabytes.
                    let rest = &self.b[self.pos..];
                    let stop = memchr::memchr2(b'"', b'\\', rest).unwrap_or(rest.len());
                    let run = first_control(&rest[..stop]).unwrap_or(stop);
                    out.reserve(run);
                    out.push_str(&self.text[self.pos..self.pos + run]);
                    self.pos += run;
                }
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, super::SyntaxError> {
        let h = self
            .text
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.err("bad \\u escape"))?;
        let v = u32::from_str_radix(h, 16).map_err(|_| self.err("bad \\u escape"))?;
        self.pos += 4;
        Ok(v)
    }

    fn value(&mut self, path: &mut Vec<Key>, meta: bool) -> Result<Parsed, super::SyntaxError> {
        self.depth += 1;
        let v = self.value_inner(path, meta);
        self.depth -= 1;
        v
    }

    fn value_inner(
        &mut self,
        path: &mut Vec<Key>,
        meta: bool,
    ) -> Result<Parsed, super::SyntaxError> {
        self.ws();
        if self.depth >= super::MAX_DEPTH {
            return Err(self.err(&format!(
                "nested more than {} levels deep",
                super::MAX_DEPTH
            )));
        }
        let start = self.pos;
        match self.b.get(self.pos) {
            Some(b'{') => {
                self.pos += 1;
                let base = self.entries.len();
                let mut meta_entries = Vec::new();
                self.ws();
                if self.b.get(self.pos) == Some(&b'}') {
                    self.pos += 1;
                } else {
                    loop {
                        self.ws();
                        let at = self.pos;
                        let name = self.string()?;
                        let key = self.keys.key(&name);
                        self.expect(b':')?;
                        path.push(key.clone());
                        let v = self.value(path, meta)?;
                        path.pop();
                        match v {
                            Parsed::Node(n) => self.entries.push(Entry {
                                key,
                                place: (at..self.pos).into(),
                                value: n,
                            }),
                            Parsed::Meta(m) => meta_entries.push((key.to_string(), m)),
                        }
                        if self.separator(b'}')? {
                            break;
                        }
                    }
                }
                // Made at its size: grown by doubling, a mapping of ten would keep room
                // for sixteen.
                let entries = self.entries.drain(base..).collect();
                Ok(if meta {
                    Parsed::Meta(MetaValue::Map(meta_entries))
                } else {
                    Parsed::Node(Node::Map(entries))
                })
            }
            Some(b'[') => {
                self.pos += 1;
                let base = self.items.len();
                let mut meta_items = Vec::new();
                self.ws();
                if self.b.get(self.pos) == Some(&b']') {
                    self.pos += 1;
                } else {
                    loop {
                        match self.value(path, meta)? {
                            Parsed::Node(n) => self.items.push(n),
                            Parsed::Meta(m) => meta_items.push(m),
                        }
                        if self.separator(b']')? {
                            break;
                        }
                    }
                }
                let items = self.items.drain(base..).collect();
                Ok(if meta {
                    Parsed::Meta(MetaValue::Seq(meta_items))
                } else {
                    Parsed::Node(Node::Seq(items))
                })
            }
            Some(b'"') => {
                let s = self.string()?;
                if meta {
                    return Ok(Parsed::Meta(MetaValue::Str(s.into_owned())));
                }
                Ok(Parsed::Node(self.leaf(
                    path,
                    ScalarType::Str,
                    s,
                    start..self.pos,
                    Quote::Double,
                )))
            }
            Some(_) => {
                self.pos = word_end(self.b, self.pos);
                let word = &self.text[start..self.pos];
                let ty = match word_type(word) {
                    Ok(ty) => ty,
                    Err(BadWord::TooBig) => return Err(self.err(super::BIG_INT)),
                    Err(BadWord::NotJson) => {
                        self.pos = start;
                        return Err(self.err("expected a JSON value"));
                    }
                };
                if meta {
                    return Ok(Parsed::Meta(if ty == ScalarType::Null {
                        MetaValue::Null
                    } else {
                        MetaValue::Str(word.to_string())
                    }));
                }
                Ok(Parsed::Node(self.leaf(
                    path,
                    ty,
                    Cow::Borrowed(word),
                    start..self.pos,
                    Quote::Plain,
                )))
            }
            None => Err(self.err("unexpected end of input")),
        }
    }

    fn leaf(
        &mut self,
        path: &[Key],
        ty: ScalarType,
        value: Cow<'t, str>,
        span: Range<usize>,
        quote: Quote,
    ) -> Node {
        let (own, quoted) = own_value(self.text, &span, value);
        self.leaves.push(Leaf {
            kind: LeafKind::Value,
            path: path.iter().cloned().collect(),
            own,
            quoted,
            place: span.into(),
            ty,
            style: Style {
                quote,
                owner_col: 0,
                flow: false,
            },
        });
        Node::Leaf(self.leaves.len() - 1)
    }
}

impl JsonStore {
    /// Parse `source`, or give it back with the error (binary files try JSON first).
    pub fn parse_text(
        &self,
        source: Zeroizing<String>,
    ) -> Result<Document, (super::SyntaxError, Zeroizing<String>)> {
        if let Err(e) = super::too_long(source.len()) {
            return Err((e, source));
        }
        match parse_parts(&source) {
            Ok((leaves, doc)) => Ok(Document {
                text: source,
                leaves,
                docs: vec![doc],
                constructs: Vec::new(),
                foreign: None,
            }),
            Err(e) => Err((e, source)),
        }
    }
}

/// The leaves and the one document of a JSON text.
fn parse_parts(text: &str) -> Result<(Vec<Leaf>, Doc), super::SyntaxError> {
    let mut p = P {
        text,
        b: text.as_bytes(),
        pos: 0,
        leaves: Vec::new(),
        entries: Vec::new(),
        items: Vec::new(),
        depth: 0,
        keys: Default::default(),
    };
    p.ws();
    if p.b.get(p.pos) != Some(&b'{') {
        return Err(p.err("the document must be a JSON object"));
    }
    let open = p.pos;
    p.pos += 1;
    // The top level is parsed here so that `sops` can be set aside with its span.
    let mut entries = Vec::new();
    let mut meta = None;
    let mut prev_end = open + 1;
    let mut path = Vec::new();
    p.ws();
    let first_key_at = p.pos;
    if p.b.get(p.pos) == Some(&b'}') {
        p.pos += 1;
    } else {
        loop {
            p.ws();
            let key_start = p.pos;
            let name = p.string()?;
            let key = p.keys.key(&name);
            p.expect(b':')?;
            let is_meta = &*key == "sops" && {
                let save = p.pos;
                p.ws();
                let obj = p.b.get(p.pos) == Some(&b'{');
                p.pos = save;
                obj
            };
            path.push(key.clone());
            let v = p.value(&mut path, is_meta)?;
            path.pop();
            let value_end = p.pos;
            if meta.is_some() {
                p.pos = key_start;
                return Err(p.err(if matches!(v, Parsed::Meta(_)) {
                    "more than one `sops` metadata key"
                } else {
                    "the `sops` metadata is not the last key of the object"
                }));
            }
            match v {
                Parsed::Node(n) => entries.push(Entry {
                    key,
                    place: (key_start..value_end).into(),
                    value: n,
                }),
                Parsed::Meta(m) => {
                    // Remove the member with the separator before it, or, when it comes
                    // first, with everything up to the next member.
                    let range = if prev_end == open + 1 {
                        key_start..value_end
                    } else {
                        prev_end..value_end
                    };
                    meta = Some((m, range));
                }
            }
            prev_end = value_end;
            if p.separator(b'}')? {
                break;
            }
        }
    }
    p.ws();
    if p.pos != p.b.len() {
        return Err(p.err("unexpected text after the JSON object"));
    }
    // A leading `sops` member also takes the comma and space that followed it.
    if let Some((_, range)) = &mut meta {
        if range.start == first_key_at && !entries.is_empty() {
            let b = text.as_bytes();
            let mut end = after_space(b, range.end);
            if b.get(end) == Some(&b',') {
                end = after_space(b, end + 1);
            }
            *range = range.start..end;
        } else if range.start == first_key_at {
            // The only member: take the whitespace after `{` too.
            *range = open + 1..range.end;
        }
    }
    // Indentation: what separates `{` from the first key.
    let lead = &text[open + 1..first_key_at];
    let (indent, indent_char) = match lead.rfind('\n') {
        Some(i) => {
            let unit = &lead[i + 1..];
            if unit.starts_with('\t') {
                (unit.len(), '\t')
            } else {
                (unit.len(), ' ')
            }
        }
        None => (0, ' '),
    };
    let doc = Doc {
        root: Node::Map(entries.into()),
        meta: meta.map(|(m, r)| (m, vec![r])),
        end: prev_end,
        indent,
        indent_char,
    };
    Ok((p.leaves, doc))
}

impl Store for JsonStore {
    fn parse(&self, source: Zeroizing<Vec<u8>>) -> Result<Document, super::SyntaxError> {
        self.parse_text(super::text(source)?).map_err(|(e, _)| e)
    }

    fn render_plain(
        &self,
        _doc: &Document,
        _leaf: &Leaf,
        ty: ScalarType,
        value: &str,
    ) -> Result<String, super::WriteError> {
        Ok(json_scalar(ty, value))
    }

    fn enc_quotes(&self, _doc: &Document, _leaf: &Leaf) -> (String, &'static str) {
        ("\"".into(), "\"")
    }

    fn render_metadata(
        &self,
        doc: &Document,
        doc_index: usize,
        meta: &MetaValue,
    ) -> (usize, String) {
        let d = &doc.docs[doc_index];
        let text = doc.text.as_str();
        let open = text.find('{').unwrap_or(0);
        let unit = (d.indent > 0).then(|| d.indent_char.to_string().repeat(d.indent));
        let mut value = String::new();
        json(&mut value, &Value::from_meta(meta), unit.as_deref(), 1);
        let lead = match &unit {
            Some(u) => format!("\n{u}"),
            // One-line JSON: copy the spacing between the first two members, if any.
            None => match &d.root {
                Node::Map(e) if e.len() > 1 => text[e[0].end()..e[1].at()].replace(',', ""),
                _ => {
                    let after = &text[open + 1..];
                    after[..after.len() - after.trim_start().len()].to_string()
                }
            },
        };
        let has_members = matches!(&d.root, Node::Map(e) if !e.is_empty());
        if has_members {
            (d.end, format!(",{lead}\"sops\": {value}"))
        } else {
            (open + 1, format!("{lead}\"sops\": {value}"))
        }
    }

    fn holds_trees(&self) -> bool {
        true
    }

    fn replace_entry(
        &self,
        _doc: &Document,
        e: &Entry,
        key: &str,
        tree: &Value,
    ) -> Result<super::edit::Edit, super::edit::NoEdit> {
        Ok((e.at()..e.end(), member(key, tree)))
    }

    fn insert_entry(
        &self,
        doc: &Document,
        last: &Entry,
        key: &str,
        value: &Value,
    ) -> Result<super::edit::Edit, super::edit::NoEdit> {
        let before = &doc.text[..last.at()];
        // The spacing before the last key (a line break and indentation, or a space when
        // the mapping's first key follows its `{` directly).
        let lead = match &before[before.trim_end().len()..] {
            "" => " ",
            lead => lead,
        };
        Ok((
            last.end()..last.end(),
            format!(",{lead}{}", member(key, value)),
        ))
    }

    fn remove_entry(
        &self,
        doc: &Document,
        entries: &[Entry],
        idx: usize,
    ) -> Result<super::edit::Edit, super::edit::NoEdit> {
        let e = &entries[idx];
        // The member and one comma: the one before it, else the one after it.
        let range = if idx > 0 {
            entries[idx - 1].end()..e.end()
        } else if let Some(next) = entries.get(1) {
            e.at()..next.at()
        } else {
            let before = &doc.text[..e.at()];
            before.trim_end().len()..e.end()
        };
        Ok((range, String::new()))
    }

    fn append_item(
        &self,
        doc: &Document,
        items: &[Node],
        v: &Value,
    ) -> Result<super::edit::Edit, super::edit::NoEdit> {
        let text = doc.text.as_str();
        let last = items.last().ok_or(super::edit::NoEdit::Empty)?;
        let (s, e) = bounds(text, doc, last).ok_or(super::edit::NoEdit::Unclear)?;
        let ls = super::edit::line_start(text, s);
        // After a comma, spaced as the item before it: on a line of its own, or not.
        let sep = if text[ls..s].trim().is_empty() {
            format!(",\n{}", &text[ls..s])
        } else {
            ", ".to_string()
        };
        let mut j = String::new();
        json(&mut j, v, None, 0);
        Ok((e..e, format!("{sep}{j}")))
    }

    fn remove_item(
        &self,
        doc: &Document,
        items: &[Node],
        i: usize,
    ) -> Result<super::edit::Edit, super::edit::NoEdit> {
        let text = doc.text.as_str();
        let at = |n: &Node| bounds(text, doc, n).ok_or(super::edit::NoEdit::Unclear);
        let (s, e) = at(&items[i])?;
        let range = if i > 0 {
            at(&items[i - 1])?.1..e
        } else if let Some(next) = items.get(1) {
            s..at(next)?.0
        } else {
            s..e
        };
        Ok((range, String::new()))
    }

    fn emit(&self, value: &Value) -> Result<Zeroizing<String>, super::WriteError> {
        let mut out = Zeroizing::new(String::new());
        json(&mut out, value, Some("    "), 0);
        out.push('\n');
        Ok(out)
    }
}

/// `"key": value` on one line.
fn member(key: &str, v: &Value) -> String {
    let mut s = String::new();
    json(&mut s, v, None, 0);
    format!("{}: {s}", json_string(key))
}

/// Where a value starts and ends in the text, brackets included.
fn bounds(text: &str, doc: &Document, node: &Node) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let back = |mut p: usize, open: u8| -> Option<usize> {
        while p > 0 && b[p - 1].is_ascii_whitespace() {
            p -= 1;
        }
        (p > 0 && b[p - 1] == open).then(|| p - 1)
    };
    let forward = |mut p: usize, close: u8| -> Option<usize> {
        while p < b.len() && b[p].is_ascii_whitespace() {
            p += 1;
        }
        (b.get(p) == Some(&close)).then_some(p + 1)
    };
    match node {
        Node::Leaf(i) => Some((doc.leaves[*i].span().start, doc.leaves[*i].span().end)),
        Node::Map(entries) => {
            let (first, last) = (entries.first()?, entries.last()?);
            Some((back(first.at(), b'{')?, forward(last.end(), b'}')?))
        }
        Node::Seq(items) => {
            let first = bounds(text, doc, items.first()?)?.0;
            let last = bounds(text, doc, items.last()?)?.1;
            Some((back(first, b'[')?, forward(last, b']')?))
        }
    }
}

pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub fn json_scalar(ty: ScalarType, s: &str) -> String {
    match ty {
        ScalarType::Null => "null".into(),
        ScalarType::Bool => crate::scalar::parse_bool(s).unwrap_or(false).to_string(),
        ScalarType::Int | ScalarType::Float if is_json_number(s) => s.to_string(),
        // A YAML float JSON cannot spell (`.5`, `1.`): the same number in Go's form.
        ScalarType::Float => match crate::scalar::parse_float(s).filter(|f| f.is_finite()) {
            Some(f) => crate::scalar::format_float(f),
            None => json_string(s),
        },
        _ => json_string(s),
    }
}

/// Pretty JSON with `unit` per level (None: on one line), starting at nesting `level`.
pub fn json(out: &mut String, v: &Value, unit: Option<&str>, level: usize) {
    let (open_nl, close_nl) = match unit {
        Some(u) => (
            format!("\n{}", u.repeat(level + 1)),
            format!("\n{}", u.repeat(level)),
        ),
        None => (String::new(), String::new()),
    };
    let sep = if unit.is_some() { "," } else { ", " };
    match v {
        Value::Map(e) if !e.is_empty() => {
            out.push('{');
            for (i, (k, v)) in e.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                out.push_str(&open_nl);
                out.push_str(&json_string(k));
                out.push_str(": ");
                json(out, v, unit, level + 1);
            }
            out.push_str(&close_nl);
            out.push('}');
        }
        Value::Seq(items) if !items.is_empty() => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                out.push_str(&open_nl);
                json(out, v, unit, level + 1);
            }
            out.push_str(&close_nl);
            out.push(']');
        }
        Value::Map(_) => out.push_str("{}"),
        Value::Seq(_) => out.push_str("[]"),
        Value::Scalar(ty, s) => out.push_str(&json_scalar(*ty, s)),
    }
}

/// Where sops's metadata stands in its JSON output, found from the end: the `"sops"`
/// key, and its value (an object), the last member of the root object. A guess for the
/// walk to confirm ([`walk_encrypted`]): a string cannot hold `sops":` unescaped.
pub(crate) fn metadata_member(text: &str) -> Option<(usize, Range<usize>)> {
    const KEY: &str = "\"sops\":";
    let key = text.rfind(KEY)?;
    let b = text.as_bytes();
    let start = after_space(b, key + KEY.len());
    let space = [' ', '\t', '\n', '\r'];
    // The root's `}`, then the metadata's.
    let inner = text.trim_end_matches(space).strip_suffix('}')?;
    let end = inner.trim_end_matches(space).len();
    (b.get(start) == Some(&b'{') && end > start && b[end - 1] == b'}')
        .then_some(start..end)
        .map(|value| (key, value))
}

/// sops's JSON output read as it is walked, for the check of an encryption: what it
/// holds, in order, to `seen`, as the whole reader would make it, the metadata member
/// `meta` (its key, its value) passed over. Only the plainest is taken: no escape in a
/// string, the metadata last and not first; `None` for anything else (and when `seen`
/// gives up), and the whole reader runs. Gives where the whole reader's removal of the
/// metadata starts (the end of the member before it). Keys are not told apart (a million
/// would be held again): the check compares each with its document's, which holds none
/// twice.
pub(crate) fn walk_encrypted<'t>(
    text: &'t str,
    meta: (usize, Range<usize>),
    seen: impl FnMut(super::Seen<'t>) -> Option<()>,
) -> Option<usize> {
    let mut w = Walk { text, pos: 0, seen };
    (w.seen)(super::Seen::Doc)?;
    w.ws();
    (w.byte()? == b'{').then_some(())?;
    (w.seen)(super::Seen::Opens(true))?;
    let mut keys = 0;
    let mut prev_end = None;
    w.ws();
    loop {
        w.ws();
        let at = w.pos;
        let name = w.string()?;
        w.ws();
        (w.byte()? == b':').then_some(())?;
        if name == "sops" {
            // The metadata, passed over, ends the object; it is never first.
            w.ws();
            (at == meta.0 && w.pos == meta.1.start).then_some(())?;
            w.pos = meta.1.end;
            w.ws();
            (w.byte()? == b'}').then_some(())?;
            w.ws();
            (w.pos == text.len()).then_some(())?;
            (w.seen)(super::Seen::Ends(keys))?;
            return prev_end;
        }
        keys += 1;
        (w.seen)(super::Seen::Key(name))?;
        w.value(1)?;
        prev_end = Some(w.pos);
        w.ws();
        (w.byte()? == b',').then_some(())?;
    }
}

struct Walk<'t, F> {
    text: &'t str,
    pos: usize,
    seen: F,
}

impl<'t, F: FnMut(super::Seen<'t>) -> Option<()>> Walk<'t, F> {
    fn ws(&mut self) {
        self.pos = after_space(self.text.as_bytes(), self.pos);
    }

    /// The next byte, taken.
    fn byte(&mut self) -> Option<u8> {
        let c = *self.text.as_bytes().get(self.pos)?;
        self.pos += 1;
        Some(c)
    }

    /// A string without escapes or control characters: its text inside the quotes.
    fn string(&mut self) -> Option<&'t str> {
        (self.text.as_bytes().get(self.pos) == Some(&b'"')).then_some(())?;
        let (plain, end) = plain_string(self.text, self.pos + 1)?;
        self.pos = end;
        Some(plain)
    }

    /// A value at `depth` (a member of the root's is at 1), as `P::value` reads it.
    fn value(&mut self, depth: usize) -> Option<()> {
        use super::Seen;
        (depth < super::MAX_DEPTH).then_some(())?;
        self.ws();
        let start = self.pos;
        let b = self.text.as_bytes();
        match *b.get(start)? {
            open @ (b'{' | b'[') => {
                let is_map = open == b'{';
                self.pos += 1;
                (self.seen)(Seen::Opens(is_map))?;
                let mut len = 0;
                self.ws();
                let close = if is_map { b'}' } else { b']' };
                if b.get(self.pos) == Some(&close) {
                    self.pos += 1;
                } else {
                    loop {
                        if is_map {
                            self.ws();
                            let name = self.string()?;
                            self.ws();
                            (self.byte()? == b':').then_some(())?;
                            (self.seen)(Seen::Key(name))?;
                        }
                        self.value(depth + 1)?;
                        len += 1;
                        self.ws();
                        match self.byte()? {
                            b',' => {}
                            c if c == close => break,
                            _ => return None,
                        }
                    }
                }
                (self.seen)(Seen::Ends(len))
            }
            b'"' => {
                let value = self.string()?;
                let stored = Cow::Borrowed(value.as_bytes());
                (self.seen)(Seen::Scalar(
                    ScalarType::Str,
                    stored,
                    Quote::Double.into(),
                    start..self.pos,
                ))
            }
            _ => {
                self.pos = word_end(b, start);
                let word = &self.text[start..self.pos];
                let ty = word_type(word).ok()?;
                let stored = Cow::Borrowed(word.as_bytes());
                (self.seen)(Seen::Scalar(
                    ty,
                    stored,
                    Quote::Plain.into(),
                    start..self.pos,
                ))
            }
        }
    }
}

/// The string whose text starts at `start` (after its `"`), when it holds no escape and
/// no control character: its text, and where it ends (past its closing `"`). Most
/// strings are so, and are their text as it stands; the reader decodes the others.
fn plain_string(text: &str, start: usize) -> Option<(&str, usize)> {
    let b = text.as_bytes();
    let len = memchr::memchr2(b'"', b'\\', b.get(start..)?)?;
    (b[start + len] == b'"' && first_control(&b[start..start + len]).is_none())
        .then(|| (&text[start..start + len], start + len + 1))
}

/// The first control character (below 0x20) of `bytes`: blocks are tested whole first,
/// which the compiler vectorizes, since a binary file's string runs to megabytes.
fn first_control(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    for block in bytes.chunks(64) {
        if block.iter().fold(false, |any, &c| any | (c < 0x20)) {
            return block.iter().position(|&c| c < 0x20).map(|i| at + i);
        }
        at += block.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::table::check;
    use super::*;

    /// The block scan finds the first control character wherever it falls, across the
    /// 64-byte blocks; a string of megabytes is scanned in blocks, not byte by byte.
    #[test]
    fn the_first_control_character_is_found_across_blocks() {
        for len in [0usize, 1, 63, 64, 65, 200] {
            let clean = vec![b'a'; len];
            assert_eq!(first_control(&clean), None, "{len}");
            for at in 0..len {
                let mut s = clean.clone();
                s[at] = b'\n';
                if at + 1 < len {
                    s[len - 1] = 0x01;
                }
                assert_eq!(first_control(&s), Some(at), "{len} {at}");
            }
        }
    }

    #[test]
    fn constructs() {
        let s = &JsonStore;
        check(s, "{\"a\": 1, \"b\": \"x\"}", &["a int 1", "b str x"]);
        check(
            s,
            "{\n\t\"a\": {\"b\": [true, null, 1.5e10]}\n}\n",
            &["a:b bool true", "a:b null null", "a:b float 1.5e10"],
        );
        check(s, "{\"e\": \"q\\\"\\\\\\n\\t\"}", &["e str q\"\\\n\t"]);
        check(s, "{}", &[]);
        assert_eq!(
            super::super::table::read(s, "{\"u\": \"\\u00e9\\ud83d\\ude00\"}"),
            ["u str é😀"]
        );
    }

    #[test]
    fn refusals_name_the_line() {
        let err = |t: &str| super::super::table::refusal(&JsonStore, t).to_string();
        assert!(err("[1]").contains("must be a JSON object"));
        assert!(err("{\"a\": 1,}").starts_with("line 1, column 9"));
        let typed = super::super::table::refusal(&JsonStore, "{\n  \"a\": tru\n}");
        assert_eq!((typed.line, typed.column), (Some(2), Some(8)));
        assert!(
            err(&format!("{{\"a\": {}}}", "[".repeat(300))).contains("nested more than 256 levels")
        );
        assert!(err("{\"sops\": {}, \"a\": 1}").contains("not the last key"));
        assert!(err("{\"n\": 18446744073709551616}").contains("64 bits"));
    }
}
