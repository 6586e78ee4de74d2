//! YAML edits in place: block entries and block list items, written at the column of
//! their neighbours; flow collections are left to the user.

use zeroize::Zeroizing;

use super::emit::{double_quoted, plain_safe, yaml_entry, yaml_item};
use crate::format::edit::{block_col, line_after, line_start, whole_lines, Edit, NoEdit};
use crate::format::Store;
use crate::tree::{line_end_after, Document, Entry, KeyPath, Leaf, LeafKind, Node, Style, Value};

/// The indentation unit of the document's nested blocks.
fn unit(doc: &Document) -> usize {
    doc.docs[0].indent.max(1)
}

pub(super) fn replace_entry(
    doc: &Document,
    e: &Entry,
    key: &str,
    tree: &Value,
) -> Result<Edit, NoEdit> {
    let text = doc.text.as_str();
    let col = block_col(text, e.at())?;
    let end = line_end_after(text, e.end().max(e.at()));
    let mut lines = String::new();
    yaml_entry(&mut lines, key, tree, col, unit(doc));
    let range = line_start(text, e.at())..end;
    // The entry's last line had no line break (the end of the file).
    if !text[range.clone()].ends_with('\n') {
        lines.pop();
    }
    Ok((range, lines))
}

pub(super) fn insert_entry(
    store: &dyn Store,
    doc: &Document,
    last: &Entry,
    key: &str,
    value: &Value,
) -> Result<Edit, NoEdit> {
    let text = doc.text.as_str();
    let col = block_col(text, last.at())?;
    let lines = match value {
        // A scalar as `set` writes one in place: quoted only where it must be.
        Value::Scalar(ty, v) => {
            let at = line_end_after(text, last.end());
            let leaf = Leaf {
                kind: LeafKind::Value,
                path: KeyPath::default(),
                place: (at..at).into(),
                ty: *ty,
                own: Some(Box::new(Zeroizing::new(Vec::new()))),
                quoted: false,
                style: Style {
                    owner_col: crate::tree::column(col),
                    ..Default::default()
                },
            };
            let v = store.render_plain(doc, &leaf, *ty, v)?;
            let k = if plain_safe(key, false) {
                key.to_string()
            } else {
                double_quoted(key)
            };
            format!("{}{k}: {v}\n", " ".repeat(col))
        }
        tree => {
            let mut lines = String::new();
            yaml_entry(&mut lines, key, tree, col, unit(doc));
            lines
        }
    };
    Ok(line_after(text, last.end(), lines))
}

pub(super) fn remove_entry(doc: &Document, entries: &[Entry], idx: usize) -> Result<Edit, NoEdit> {
    block_col(&doc.text, entries[idx].at())?;
    Ok(crate::format::edit::remove_entry_lines(doc, entries, idx))
}

/// The column of the `-` of block list item `item`, which starts at `start`.
fn dash_col(doc: &Document, item: &Node) -> Result<(usize, usize), NoEdit> {
    let text = doc.text.as_str();
    let start = doc.node_start(item).ok_or(NoEdit::Empty)?;
    let lead = &text[line_start(text, start)..start];
    match (lead.find('-'), lead.trim()) {
        (Some(col), "-") => Ok((col, start)),
        _ => Err(NoEdit::NotBlockList),
    }
}

pub(super) fn append_item(doc: &Document, items: &[Node], v: &Value) -> Result<Edit, NoEdit> {
    let text = doc.text.as_str();
    let last = items.last().ok_or(NoEdit::Empty)?;
    let (col, start) = dash_col(doc, last)?;
    let end = line_end_after(text, last.end(&doc.leaves).max(start));
    let mut item = String::new();
    yaml_item(&mut item, v, col, unit(doc));
    if !text[..end].ends_with('\n') {
        item.insert(0, '\n');
    }
    Ok((end..end, item))
}

pub(super) fn remove_item(doc: &Document, items: &[Node], i: usize) -> Result<Edit, NoEdit> {
    let item = &items[i];
    let (_, start) = dash_col(doc, item)?;
    let end = item.end(&doc.leaves);
    Ok((whole_lines(&doc.text, start, end), String::new()))
}
