//! dotenv: `KEY=VALUE` lines, `#` comments, as sops reads them (no unquoting; `\n` in a
//! value stands for a line break). Metadata is written as flattened `sops_*` lines.

use zeroize::Zeroizing;

use super::{LeafText, Store};
use crate::tree::{
    own_value, Doc, Document, Entry, KeyPath, Leaf, LeafKind, MetaValue, Node, Quote, ScalarType,
    Style, Value,
};

pub struct DotenvStore;

const PREFIX: &str = "sops_";

/// Lines of `text` with their start offsets, without the line break.
pub(crate) fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut pos = 0;
    text.split_inclusive('\n').map(move |l| {
        let start = pos;
        pos += l.len();
        (start, l.strip_suffix('\n').unwrap_or(l))
    })
}

/// A line with its line break, if it has one.
fn line_span(text: &str, start: usize, line: &str) -> std::ops::Range<usize> {
    let end = start + line.len();
    start..(end + 1).min(text.len())
}

impl Store for DotenvStore {
    fn parse(&self, source: Zeroizing<Vec<u8>>) -> Result<Document, super::SyntaxError> {
        let source = super::text(source)?;
        let text: &str = &source;
        let mut leaves = Vec::new();
        let mut entries = Vec::new();
        let mut meta_items = Vec::new();
        let mut meta_spans = Vec::new();
        for (n, (start, raw)) in lines(text).enumerate() {
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.trim().is_empty() {
                continue;
            }
            if line.starts_with('#') {
                leaves.push(Leaf {
                    kind: LeafKind::Comment,
                    path: KeyPath::default(),
                    span: start + 1..start + line.len(),
                    ty: ScalarType::Comment,
                    own: None,
                    quoted: false,
                    style: Style::default(),
                });
                continue;
            }
            let eq = line.find('=').ok_or_else(|| {
                super::SyntaxError::line(n + 1, "expected KEY=VALUE, found no '='")
            })?;
            let (key, value) = (&line[..eq], &line[eq + 1..]);
            if !meta_items.is_empty() && !key.starts_with(PREFIX) {
                return Err(super::SyntaxError::line(
                    n + 1,
                    "the sops metadata is not at the end of the file",
                ));
            }
            if let Some(meta_key) = key.strip_prefix(PREFIX) {
                meta_items.push((meta_key.to_string(), value.replace("\\n", "\n")));
                meta_spans.push(line_span(text, start, raw));
                continue;
            }
            let span = start + eq + 1..start + line.len();
            let (own, quoted) = own_value(text, &span, unescaped(value));
            // One name for the path and the entry.
            let key = crate::tree::Key::from(key);
            leaves.push(Leaf {
                kind: LeafKind::Value,
                path: [key.clone()].into_iter().collect(),
                own,
                quoted,
                span,
                ty: ScalarType::Str,
                style: Style {
                    quote: Quote::Raw,
                    ..Style::default()
                },
            });
            entries.push(Entry {
                key,
                at: start,
                end: start + line.len(),
                value: Node::Leaf(leaves.len() - 1),
            });
        }
        // Metadata lines that end the file without a final line break were written
        // after one (see `lines_at`): that break goes with them.
        let mut meta_spans = crate::tree::merge_ranges(meta_spans);
        if let Some(last) = meta_spans.last_mut() {
            if last.end == text.len() && !text.ends_with('\n') && last.start > 0 {
                last.start -= 1;
            }
        }
        let meta = match meta_items.is_empty() {
            true => None,
            false => Some((super::flatten::unflatten(&meta_items)?, meta_spans)),
        };
        let doc = Doc {
            root: Node::Map(entries),
            meta,
            end: text.len(),
            indent: 0,
            indent_char: ' ',
        };
        Ok(Document {
            text: source,
            leaves,
            docs: vec![doc],
            constructs: Vec::new(),
            foreign: None,
        })
    }

    fn render_plain(
        &self,
        _doc: &Document,
        _leaf: &Leaf,
        ty: ScalarType,
        value: &str,
    ) -> Result<String, super::WriteError> {
        Ok(match ty {
            ScalarType::Comment => value.replace('\n', " "),
            _ => value.replace('\n', "\\n"),
        })
    }

    fn enc_quotes(&self, _doc: &Document, _leaf: &Leaf) -> (String, &'static str) {
        (String::new(), "")
    }

    fn render_metadata(
        &self,
        doc: &Document,
        _doc_index: usize,
        meta: &MetaValue,
    ) -> (usize, String) {
        let mut items = super::flatten::flatten(meta);
        items.sort();
        let mut block = String::new();
        for (k, v) in items {
            block.push_str(PREFIX);
            block.push_str(&k);
            block.push('=');
            block.push_str(&v.replace('\n', "\\n"));
            block.push('\n');
        }
        let end = doc.text.len();
        (end, crate::tree::lines_at(&doc.text, end, block))
    }

    fn canonical(
        &self,
        doc: &Document,
        value: &LeafText,
    ) -> Result<Zeroizing<String>, super::WriteError> {
        let mut out = Zeroizing::new(String::new());
        let mut comments = super::CommentLines::new(doc, "#");
        if let Some(Node::Map(entries)) = doc.docs.first().map(|d| &d.root) {
            for e in entries {
                comments.before(&mut out, e.at, value)?;
                let Node::Leaf(i) = e.value else {
                    return Err(super::WriteError::NotAScalar(e.key.to_string()));
                };
                out.push_str(&e.key);
                out.push('=');
                out.push_str(&value(i)?.1.replace('\n', "\\n"));
                out.push('\n');
            }
        }
        comments.before(&mut out, usize::MAX, value)?;
        Ok(out)
    }

    fn insert_entry(
        &self,
        doc: &Document,
        last: &Entry,
        key: &str,
        value: &Value,
    ) -> Result<super::edit::Edit, super::edit::NoEdit> {
        super::edit::insert_line(doc, last, key, value, "=")
    }

    fn emit(&self, value: &Value) -> Result<Zeroizing<String>, super::WriteError> {
        let Value::Map(entries) = value else {
            return Err(super::WriteError::NotAMapping("", "dotenv"));
        };
        let mut out = Zeroizing::new(String::new());
        for (k, v) in entries {
            let Value::Scalar(ty, s) = v else {
                return Err(super::WriteError::Nested {
                    path: format!("{k:?}"),
                    format: "dotenv",
                });
            };
            out.push_str(k);
            out.push('=');
            if *ty == ScalarType::Bool {
                out.push_str(&crate::scalar::parse_bool(s).unwrap_or(false).to_string());
            } else {
                out.push_str(&s.replace('\n', "\\n"));
            }
            out.push('\n');
        }
        Ok(out)
    }
}

/// A value as sops reads it: `\n` is a line break. Borrowed when there is none.
fn unescaped(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains("\\n") {
        value.replace("\\n", "\n").into()
    } else {
        value.into()
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::check;
    use super::*;

    #[test]
    fn constructs() {
        let s = &DotenvStore;
        check(
            s,
            "A=1\n# c\n\nB=two words\nC=\n",
            &["A str 1", "# c", "B str two words", "C str "],
        );
        check(s, "A=x=y\r\nB='q'\r\n", &["A str x=y", "B str 'q'"]);
        check(s, "A=line\\nbreak", &["A str line\nbreak"]);
        assert!(DotenvStore
            .parse(Zeroizing::new(b"NOEQUALS\n".to_vec()))
            .is_err_and(|e| e.line == Some(1)));
    }
}
