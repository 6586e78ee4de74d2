//! Edits of a document's text in place (`set`, `unset`): each store says where its
//! syntax puts an entry or an item and how to write one, so the rest of the text stays
//! byte for byte. The edits are pure: text in, a range and its replacement out.

use std::ops::Range;

use crate::tree::{line_end_after, Document, Entry};

/// The bytes in the range replaced by the string.
pub type Edit = (Range<usize>, String);

/// Why a store will not make an edit in place (the user can edit the file instead).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoEdit {
    #[error("it is in a flow mapping")]
    FlowMapping,
    #[error("it is empty")]
    Empty,
    #[error("it is not in a block list")]
    NotBlockList,
    #[error("its extent is unclear")]
    Unclear,
    #[error("the format has no lists")]
    NoLists,
    #[error("the format holds no nested values")]
    NoTrees,
    #[error(transparent)]
    Write(#[from] super::WriteError),
}

/// Where the line holding `pos` starts.
pub(crate) fn line_start(text: &str, pos: usize) -> usize {
    text[..pos].rfind('\n').map_or(0, |i| i + 1)
}

/// The whole lines from the one holding `start` to the one holding `end`: what removing
/// an entry or item of a line-based layout takes. A last line without a line break takes
/// the break before it, so the text still ends as it did.
pub(crate) fn whole_lines(text: &str, start: usize, end: usize) -> Range<usize> {
    let ls = line_start(text, start);
    let end = line_end_after(text, end.max(start));
    if end == text.len() && !text.ends_with('\n') && ls > 0 {
        ls - 1..end
    } else {
        ls..end
    }
}

/// The column of a block entry starting at `at`, or `FlowMapping` when something else
/// stands before it on its line.
pub(crate) fn block_col(text: &str, at: usize) -> Result<usize, NoEdit> {
    let ls = line_start(text, at);
    if text[ls..at].trim() != "" {
        return Err(NoEdit::FlowMapping);
    }
    Ok(at - ls)
}

/// Removing entry `idx` of a mapping laid out one entry per line (its lines go).
pub(crate) fn remove_entry_lines(doc: &Document, entries: &[Entry], idx: usize) -> Edit {
    let e = &entries[idx];
    (whole_lines(&doc.text, e.at(), e.end()), String::new())
}

/// `KEY{sep}VALUE` on a line of its own after `last` (dotenv, INI: text only, a line
/// break written `\n`).
pub(crate) fn insert_line(
    doc: &Document,
    last: &Entry,
    key: &str,
    value: &crate::tree::Value,
    sep: &str,
) -> Result<Edit, NoEdit> {
    let crate::tree::Value::Scalar(_, v) = value else {
        return Err(NoEdit::NoTrees);
    };
    let line = format!("{key}{sep}{}\n", v.replace('\n', "\\n"));
    Ok(line_after(&doc.text, last.end(), line))
}

/// A new `line` (ending in a line break) after the line holding `after`.
pub(crate) fn line_after(text: &str, after: usize, line: String) -> Edit {
    let at = line_end_after(text, after);
    (at..at, crate::tree::lines_at(text, at, line))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Format;
    use crate::tree::{Node, ScalarType, Value};
    use zeroize::Zeroizing;

    enum Op {
        Insert(&'static str, Value),
        Replace(&'static str, Value),
        RemoveEntry(&'static str),
        Append(Value),
        RemoveItem(usize),
    }

    fn s(v: &str) -> Value {
        Value::Scalar(ScalarType::Str, Zeroizing::new(v.into()))
    }

    fn int(v: &str) -> Value {
        Value::Scalar(ScalarType::Int, Zeroizing::new(v.into()))
    }

    fn map(k: &str, v: Value) -> Value {
        Value::Map(vec![(k.into(), v)])
    }

    /// `op` on the mapping or list at `at` (keys from the root) of `text`.
    fn run(format: Format, text: &str, at: &[&str], op: Op) -> Result<String, NoEdit> {
        let store = format.store();
        let doc = store
            .parse(Zeroizing::new(text.as_bytes().to_vec()))
            .expect("parses");
        let mut node = &doc.docs[0].root;
        for k in at {
            node = node.get(k).expect("path");
        }
        let edit = match (node, op) {
            (Node::Map(e), Op::Insert(k, v)) => store.insert_entry(&doc, e.last().unwrap(), k, &v),
            (Node::Map(e), Op::Replace(k, v)) => {
                store.replace_entry(&doc, e.iter().find(|x| &*x.key == k).unwrap(), k, &v)
            }
            (Node::Map(e), Op::RemoveEntry(k)) => {
                store.remove_entry(&doc, e, e.iter().position(|x| &*x.key == k).unwrap())
            }
            (Node::Seq(items), Op::Append(v)) => store.append_item(&doc, items, &v),
            (Node::Seq(items), Op::RemoveItem(i)) => store.remove_item(&doc, items, i),
            _ => panic!("{text:?}: not a collection of that kind at {at:?}"),
        }?;
        Ok(crate::tree::splice(text, vec![edit]).to_string())
    }

    /// Each store's edits, case by case: where the text changes and how it is written.
    #[test]
    fn stores_edit_their_own_syntax_in_place() {
        use Format::*;
        use Op::*;
        let ok = |t: &str| Ok(t.to_string());
        for (format, text, at, op, want) in [
            (
                Yaml,
                "a: 1\nb: 2\n",
                &[][..],
                Insert("c", s("x")),
                ok("a: 1\nb: 2\nc: x\n"),
            ),
            (
                Yaml,
                "a: 1\nb: 2",
                &[],
                Insert("c", s("x y")),
                ok("a: 1\nb: 2\nc: x y"),
            ),
            (
                Yaml,
                "db:\n  user: u\n",
                &["db"],
                Insert("port", int("5432")),
                ok("db:\n  user: u\n  port: 5432\n"),
            ),
            (
                Yaml,
                "a: 1\n",
                &[],
                Insert("b c", map("d", s("e"))),
                ok("a: 1\nb c:\n  d: e\n"),
            ),
            (
                Yaml,
                "a: {b: 1}\n",
                &["a"],
                Insert("c", s("x")),
                Err(NoEdit::FlowMapping),
            ),
            (
                Yaml,
                "a: 1\nb: 2\n",
                &[],
                Replace("a", map("x", int("1"))),
                ok("a:\n  x: 1\nb: 2\n"),
            ),
            (Yaml, "a: 1\nb: 2\n", &[], RemoveEntry("a"), ok("b: 2\n")),
            (Yaml, "a: 1\nb: 2", &[], RemoveEntry("b"), ok("a: 1")),
            (
                Yaml,
                "a: {b: 1, c: 2}\n",
                &["a"],
                RemoveEntry("b"),
                Err(NoEdit::FlowMapping),
            ),
            (
                Yaml,
                "l:\n  - a\n  - b\n",
                &["l"],
                Append(s("c")),
                ok("l:\n  - a\n  - b\n  - c\n"),
            ),
            (
                Yaml,
                "l: [a, b]\n",
                &["l"],
                Append(s("c")),
                Err(NoEdit::NotBlockList),
            ),
            (
                Yaml,
                "l:\n  - a\n  - b\n",
                &["l"],
                RemoveItem(0),
                ok("l:\n  - b\n"),
            ),
            (
                Json,
                "{\"a\": 1}",
                &[],
                Insert("b", s("x")),
                ok("{\"a\": 1, \"b\": \"x\"}"),
            ),
            (
                Json,
                "{\n  \"a\": 1\n}\n",
                &[],
                Insert("b", int("2")),
                ok("{\n  \"a\": 1,\n  \"b\": 2\n}\n"),
            ),
            (
                Json,
                "{\"a\": 1, \"b\": 2}",
                &[],
                Replace("a", map("x", s("y"))),
                ok("{\"a\": {\"x\": \"y\"}, \"b\": 2}"),
            ),
            (
                Json,
                "{\"a\": 1, \"b\": 2}",
                &[],
                RemoveEntry("a"),
                ok("{\"b\": 2}"),
            ),
            (
                Json,
                "{\"a\": 1, \"b\": 2}",
                &[],
                RemoveEntry("b"),
                ok("{\"a\": 1}"),
            ),
            (Json, "{\"a\": 1}", &[], RemoveEntry("a"), ok("{}")),
            (
                Json,
                "{\"l\": [1, 2]}",
                &["l"],
                Append(int("3")),
                ok("{\"l\": [1, 2, 3]}"),
            ),
            (
                Json,
                "{\"l\": [\n  1\n]}",
                &["l"],
                Append(int("2")),
                ok("{\"l\": [\n  1,\n  2\n]}"),
            ),
            (
                Json,
                "{\"l\": [1, 2]}",
                &["l"],
                RemoveItem(0),
                ok("{\"l\": [2]}"),
            ),
            (
                Json,
                "{\"l\": [1, 2]}",
                &["l"],
                RemoveItem(1),
                ok("{\"l\": [1]}"),
            ),
            (
                Dotenv,
                "A=1\n",
                &[],
                Insert("B", s("x\ny")),
                ok("A=1\nB=x\\ny\n"),
            ),
            (
                Dotenv,
                "A=1\n",
                &[],
                Insert("B", map("c", s("d"))),
                Err(NoEdit::NoTrees),
            ),
            (Dotenv, "A=1\nB=2", &[], RemoveEntry("B"), ok("A=1")),
            (
                Dotenv,
                "A=1\n",
                &[],
                Replace("A", map("c", s("d"))),
                Err(NoEdit::NoTrees),
            ),
            (
                Ini,
                "[s]\nk = v\n\n[t]\nx = y\n",
                &["s"],
                Insert("n", s("w")),
                ok("[s]\nk = v\nn = w\n\n[t]\nx = y\n"),
            ),
            (
                Ini,
                "[s]\nk = v\nn = w\n",
                &["s"],
                RemoveEntry("k"),
                ok("[s]\nn = w\n"),
            ),
        ] {
            assert_eq!(run(format, text, at, op), want, "{format:?} {text:?}");
        }
    }

    #[test]
    fn whole_lines_keep_the_end_of_the_text_as_it_was() {
        for (text, start, end, want) in [
            ("a: 1\nb: 2\nc: 3\n", 5, 9, "a: 1\nc: 3\n"),
            ("a: 1\nb: 2", 5, 9, "a: 1"),
            ("a: 1\n", 0, 4, ""),
            ("a: 1", 0, 4, ""),
            ("a: 1\nb: |\n  x\n  y\nc: 3\n", 5, 18, "a: 1\nc: 3\n"),
        ] {
            let r = whole_lines(text, start, end);
            let got = format!("{}{}", &text[..r.start], &text[r.end..]);
            assert_eq!(got, want, "{text:?}");
        }
    }

    #[test]
    fn a_block_entry_has_only_spaces_before_it() {
        assert_eq!(block_col("a:\n  b: 1\n", 5), Ok(2));
        assert_eq!(block_col("a: {b: 1}\n", 4), Err(NoEdit::FlowMapping));
    }
}
