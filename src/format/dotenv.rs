//! dotenv: `KEY=VALUE` lines, `#` comments, as sops reads them (no unquoting; `\n` in a
//! value stands for a line break). Metadata is written as flattened `sops_*` lines.

use std::ops::Range;

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

/// A line of a dotenv text that holds something, as sops reads it.
pub(crate) enum Line<'t> {
    /// A comment: its text after the `#`.
    Comment(Range<usize>),
    /// `KEY=VALUE` (line `n`): the value's span, the line's without its break.
    Value {
        n: usize,
        key: &'t str,
        value: Range<usize>,
        line: Range<usize>,
    },
    /// `sops_KEY=VALUE`: the key after the prefix, the value, the line with its break.
    Meta {
        key: &'t str,
        value: &'t str,
        span: Range<usize>,
    },
}

/// The lines of `text` that hold something, in order (blank ones left out), or the
/// first that holds no `=`: what the reader reads, and the walked check walks.
pub(crate) fn read_lines(
    text: &str,
) -> impl Iterator<Item = Result<Line<'_>, super::SyntaxError>> + '_ {
    lines(text).enumerate().filter_map(|(n, (start, raw))| {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            return None;
        }
        if line.starts_with('#') {
            return Some(Ok(Line::Comment(start + 1..start + line.len())));
        }
        let Some(eq) = line.find('=') else {
            return Some(Err(super::SyntaxError::line(
                n + 1,
                "expected KEY=VALUE, found no '='",
            )));
        };
        let (key, value) = (&line[..eq], &line[eq + 1..]);
        Some(Ok(match key.strip_prefix(PREFIX) {
            Some(key) => Line::Meta {
                key,
                value,
                span: line_span(text, start, raw),
            },
            None => Line::Value {
                n: n + 1,
                key,
                value: start + eq + 1..start + line.len(),
                line: start..start + line.len(),
            },
        }))
    })
}

/// sops's dotenv output read as it is walked, for the check of an encryption: the
/// metadata lines that end it (from `meta_at`, found by [`metadata_lines`]) passed over,
/// what the rest holds (comments too) to `seen` in order, as the reader makes it.
/// `None` when `seen` gives up, or a line is not the reader's.
pub(crate) fn walk_encrypted<'t>(
    text: &'t str,
    meta_at: usize,
    mut seen: impl FnMut(super::Seen<'t>) -> Option<()>,
) -> Option<()> {
    use super::Seen;
    seen(Seen::Doc)?;
    seen(Seen::Opens(true))?;
    let mut len = 0;
    for line in read_lines(text.get(..meta_at)?) {
        let (key, value) = match line.ok()? {
            Line::Value { key, value, .. } => (key, value),
            Line::Comment(span) => {
                seen(Seen::Comment(&text[span.clone()], span))?;
                continue;
            }
            Line::Meta { .. } => return None,
        };
        seen(Seen::Key(key))?;
        let stored = match unescaped(&text[value.clone()]) {
            std::borrow::Cow::Borrowed(v) => std::borrow::Cow::Borrowed(v.as_bytes()),
            std::borrow::Cow::Owned(v) => std::borrow::Cow::Owned(v.into_bytes()),
        };
        seen(Seen::Scalar(
            ScalarType::Str,
            stored,
            Quote::Raw.into(),
            value,
        ))?;
        len += 1;
    }
    seen(Seen::Ends(len))
}

/// A value as a decryption writes it in place: `\n` for a line break (a comment's
/// becomes a space).
pub(crate) fn render(ty: ScalarType, value: &str) -> String {
    match ty {
        ScalarType::Comment => value.replace('\n', " "),
        _ => value.replace('\n', "\\n"),
    }
}

/// The metadata lines that end `text` (`sops_` lines, none blank between them): where
/// they start, and the span the reader removes with them (the line break before them
/// too when the last has none: they were written after it). `None` when there are none.
pub(crate) fn metadata_lines(text: &str) -> Option<(usize, Range<usize>)> {
    let mut at = text.len();
    while at > 0 {
        // By bytes: the last line may end in a character of several.
        let start = memchr::memrchr(b'\n', &text.as_bytes()[..at - 1]).map_or(0, |i| i + 1);
        if !text[start..].starts_with(PREFIX) {
            break;
        }
        at = start;
    }
    let from = if at > 0 && !text.ends_with('\n') {
        at - 1
    } else {
        at
    };
    (at < text.len()).then_some((at, from..text.len()))
}

impl Store for DotenvStore {
    fn parse(&self, source: Zeroizing<Vec<u8>>) -> Result<Document, super::SyntaxError> {
        let source = super::text(source)?;
        let text: &str = &source;
        let mut leaves = Vec::new();
        let mut entries = Vec::new();
        let mut meta_items = Vec::new();
        let mut meta_spans = Vec::new();
        for line in read_lines(text) {
            let (key, value, line) = match line? {
                Line::Comment(span) => {
                    leaves.push(Leaf {
                        kind: LeafKind::Comment,
                        path: KeyPath::default(),
                        place: span.into(),
                        ty: ScalarType::Comment,
                        own: None,
                        quoted: false,
                        style: Style::default(),
                    });
                    continue;
                }
                Line::Meta { key, value, span } => {
                    meta_items.push((key.to_string(), value.replace("\\n", "\n")));
                    meta_spans.push(span);
                    continue;
                }
                Line::Value {
                    n,
                    key,
                    value,
                    line,
                } => {
                    if !meta_items.is_empty() {
                        return Err(super::SyntaxError::line(
                            n,
                            "the sops metadata is not at the end of the file",
                        ));
                    }
                    (key, value, line)
                }
            };
            let (own, quoted) = own_value(text, &value, unescaped(&text[value.clone()]));
            // One name for the path and the entry.
            let key = crate::tree::Key::from(key);
            leaves.push(Leaf {
                kind: LeafKind::Value,
                path: [key.clone()].into_iter().collect(),
                own,
                quoted,
                place: value.into(),
                ty: ScalarType::Str,
                style: Style {
                    quote: Quote::Raw,
                    ..Style::default()
                },
            });
            entries.push(Entry {
                key,
                place: line.into(),
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
            root: Node::Map(entries.into()),
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
        Ok(render(ty, value))
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
                comments.before(&mut out, e.at(), value)?;
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

    /// The metadata lines that end a text are found from its end, by bytes: a text
    /// that ends in a character of several bytes is no metadata, and no panic.
    #[test]
    fn metadata_lines_are_found_from_the_end() {
        assert_eq!(metadata_lines("A=1\nsops_x=1\n"), Some((4, 4..13)));
        assert_eq!(metadata_lines("A=1\nsops_x=1"), Some((4, 3..12)));
        assert_eq!(metadata_lines("sops_x=1\nA=1\n"), None);
        assert_eq!(metadata_lines("A=é"), None);
        assert_eq!(metadata_lines("sops_x=é"), Some((0, 0..9)));
    }

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
