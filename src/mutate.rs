//! `set` and `unset` as edits of the plaintext text, so everything around the changed
//! entry stays as it was.

use zeroize::Zeroizing;

use crate::format::edit::NoEdit;
use crate::format::Format;
use crate::path::{self, Step};
use crate::tree::{splice, Document, Entry, Node, ScalarType, Value};
use crate::{Error, Result};

/// Why a value given to `set` cannot be stored. Never the value itself.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadValue {
    #[error("a number beyond the range of a 64-bit float")]
    OutOfRange,
    /// The JSON reader's reason, as for a file.
    #[error("{0}")]
    Json(String),
}

/// A value given on the command line: JSON scalars keep their type (`5432`, `true`,
/// `"text"`); anything else is taken as a string. A JSON string with half a surrogate
/// pair (`"\ud800"`) is refused: it holds no character, and no value can be kept.
pub fn parse_value(s: &str) -> std::result::Result<(ScalarType, Zeroizing<String>), BadValue> {
    let t = s.trim();
    match t {
        "true" | "false" => return Ok((ScalarType::Bool, Zeroizing::new(t.to_string()))),
        "null" => return Ok((ScalarType::Null, Zeroizing::new(String::new()))),
        _ => {}
    }
    if crate::format::json::is_json_number(t) {
        let ty = if t.contains(['.', 'e', 'E']) {
            ScalarType::Float
        } else {
            ScalarType::Int
        };
        // Go's JSON (so sops) refuses it, and no float holds it.
        if ty == ScalarType::Float && !t.parse::<f64>().is_ok_and(f64::is_finite) {
            return Err(BadValue::OutOfRange);
        }
        return Ok((ty, Zeroizing::new(t.to_string())));
    }
    if t.len() >= 2 && t.starts_with('"') && t.ends_with('"') {
        let wrapped = format!("{{\"v\": {t}}}");
        match Format::Json
            .store()
            .parse(Zeroizing::new(wrapped.into_bytes()))
        {
            Ok(doc) => {
                if let Some(l) = doc.leaves.first() {
                    return Ok((
                        ScalarType::Str,
                        Zeroizing::new(l.value_str(&doc.text).unwrap_or_default().to_string()),
                    ));
                }
            }
            Err(e) if e.what.contains("surrogate") => return Err(BadValue::Json(e.what)),
            Err(_) => {}
        }
    }
    Ok((ScalarType::Str, Zeroizing::new(s.to_string())))
}

fn find_parent<'d>(file: &str, doc: &'d Document, steps: &[Step]) -> Result<(&'d [Entry], String)> {
    let (last, parent_steps) = steps.split_last().ok_or_else(|| Error::BadPath {
        path: String::new(),
        reason: "empty path".into(),
    })?;
    let Step::Key(key) = last else {
        return Err(Error::BadPath {
            path: path::display(steps),
            reason: "the last step must be a mapping key".into(),
        });
    };
    let root = &doc
        .docs
        .first()
        .ok_or_else(|| Error::PathNotFound {
            file: file.into(),
            path: path::display(steps),
        })?
        .root;
    match path::lookup(root, parent_steps) {
        Some(Node::Map(entries)) => Ok((entries, key.clone())),
        _ => Err(Error::PathNotFound {
            file: file.into(),
            path: path::display(parent_steps),
        }),
    }
}

/// Where keys missing on the way to `steps` go: the deepest mapping that exists, the
/// first missing key, and the keys under it. `None` when only the last key is missing
/// (or the path does not lead through mappings).
fn find_nested<'d>(
    doc: &'d Document,
    steps: &[Step],
) -> Option<(&'d [Entry], String, Vec<String>)> {
    let root = &doc.docs.first()?.root;
    (0..steps.len().saturating_sub(1)).rev().find_map(|i| {
        let Some(Node::Map(entries)) = path::lookup(root, &steps[..i]) else {
            return None;
        };
        let keys: Option<Vec<String>> = steps[i..]
            .iter()
            .map(|s| match s {
                Step::Key(k) => Some(k.clone()),
                Step::Index(_) => None,
            })
            .collect();
        let mut keys = keys?;
        if entries.iter().any(|e| *e.key == *keys[0]) {
            return None;
        }
        let first = keys.remove(0);
        Some((&entries[..], first, keys))
    })
}

/// A value given as a JSON object or array: the tree it stands for.
fn json_tree(value: &str) -> Option<Value> {
    let t = value.trim();
    if !(t.starts_with('{') || t.starts_with('[')) {
        return None;
    }
    let doc = Format::Json
        .store()
        .parse(Zeroizing::new(format!("{{\"v\": {t}}}").into_bytes()))
        .ok()?;
    let node = doc.docs.first()?.root.get("v")?;
    doc.plain_value(node)
}

/// Set a subtree (a JSON object or array given as the value) at `steps`: the entry is
/// rewritten (its key's line and what it held) or added, keys missing on the way too.
fn set_tree(
    file: &str,
    format: Format,
    doc: &Document,
    steps: &[Step],
    tree: &Value,
) -> Result<Zeroizing<Vec<u8>>> {
    let store = format.store();
    let refused = |why: NoEdit| refused(file, "set", steps, why);
    // The entry exists: replace it whole.
    if path::lookup(&doc.docs[0].root, steps).is_some() {
        let (entries, key) = find_parent(file, doc, steps)?;
        let e = entries.iter().find(|e| *e.key == *key).expect("looked up");
        let edit = store.replace_entry(doc, e, &key, tree).map_err(refused)?;
        let out = bytes(splice(&doc.text, vec![edit]));
        return checked(file, format, doc, out, steps, Meant::Tree(tree));
    }
    // Added: under the deepest mapping that exists.
    let (entries, key, rest) = match find_nested(doc, steps) {
        Some(found) => found,
        None => {
            let (entries, key) = find_parent(file, doc, steps)?;
            (entries, key, Vec::new())
        }
    };
    let last = entries.last().ok_or_else(|| empty_mapping(file))?;
    let nested = rest.iter().rev().fold(clone_value(tree), |inner, k| {
        Value::Map(vec![(k.clone(), inner)])
    });
    let edit = store
        .insert_entry(doc, last, &key, &nested)
        .map_err(refused)?;
    let out = bytes(splice(&doc.text, vec![edit]));
    checked(file, format, doc, out, steps, Meant::Tree(tree))
}

/// Why `doing` (set, remove, add an item to) cannot be done at `steps` in place.
fn refused(file: &str, doing: &str, steps: &[Step], why: NoEdit) -> Error {
    match why {
        NoEdit::Write(error) => Error::Write {
            file: file.into(),
            error,
        },
        why => Error::Unsupported {
            file: file.into(),
            what: format!(
                "cannot {doing} {}: {why}; edit the file instead",
                path::display(steps)
            ),
        },
    }
}

fn empty_mapping(file: &str) -> Error {
    Error::Unsupported {
        file: file.into(),
        what: "cannot add a key to an empty mapping; edit the file instead".into(),
    }
}

fn clone_value(v: &Value) -> Value {
    match v {
        Value::Map(e) => Value::Map(e.iter().map(|(k, v)| (k.clone(), clone_value(v))).collect()),
        Value::Seq(items) => Value::Seq(items.iter().map(clone_value).collect()),
        Value::Scalar(ty, s) => Value::Scalar(*ty, s.clone()),
    }
}

/// Set the value at `steps`, adding the key to its mapping when it is new.
pub fn set(
    file: &str,
    format: Format,
    plaintext: &[u8],
    steps: &[Step],
    value: &str,
) -> Result<Zeroizing<Vec<u8>>> {
    let doc = crate::format::parse(file, format, plaintext.to_vec())?;
    let store = format.store();
    let text = doc.text.as_str();
    let (ty, value) = parse_value(value).map_err(|error| Error::SetValue {
        file: file.into(),
        error,
    })?;
    let root = &doc.docs[0].root;
    // An index past the end of a list appends the value, as sops does.
    if let Some((Step::Index(i), parent)) = steps.split_last() {
        if let Some(Node::Seq(items)) = path::lookup(root, parent) {
            if *i >= items.len() {
                let v = json_tree(&value).unwrap_or_else(|| Value::Scalar(ty, value.clone()));
                return append_item(file, format, &doc, parent, items, &v);
            }
        }
    }
    if let Some(tree) = json_tree(&value).filter(|_| store.holds_trees()) {
        return set_tree(file, format, &doc, steps, &tree);
    }
    if let Some(Node::Leaf(i)) = path::lookup(root, steps) {
        let leaf = &doc.leaves[*i];
        let mut leaf_style = leaf.style;
        if ty != ScalarType::Str && leaf_style.quote != crate::tree::Quote::Raw {
            leaf_style.quote = crate::tree::Quote::Plain;
        }
        let shaped = crate::tree::Leaf {
            style: leaf_style,
            ..clone_leaf(leaf)
        };
        let rendered = store
            .render_plain(&doc, &shaped, ty, &value)
            .map_err(|error| Error::Write {
                file: file.into(),
                error,
            })?;
        let out = bytes(splice(text, vec![(leaf.span(), rendered)]));
        return checked(file, format, &doc, out, steps, Meant::Scalar(ty, &value));
    }
    let scalar = Value::Scalar(ty, value.clone());
    // A mapping or list replaced by a scalar, as sops replaces it; or keys missing on
    // the way: the deepest mapping that exists takes them as one new entry holding the
    // rest (`["db"]["new"]["port"]` adds `new: {port: …}` to db). A scalar is the
    // smallest subtree.
    if path::lookup(root, steps).is_some() || find_nested(&doc, steps).is_some() {
        return set_tree(file, format, &doc, steps, &scalar);
    }
    let (entries, key) = find_parent(file, &doc, steps)?;
    let last = entries.last().ok_or_else(|| empty_mapping(file))?;
    let edit = store
        .insert_entry(&doc, last, &key, &scalar)
        .map_err(|why| refused(file, "set", steps, why))?;
    let out = bytes(splice(text, vec![edit]));
    checked(file, format, &doc, out, steps, Meant::Scalar(ty, &value))
}

/// Remove item `i` of the list at `parent`: its lines in a YAML block list, the item
/// and a comma in JSON.
fn unset_item(
    file: &str,
    format: Format,
    doc: &Document,
    steps: &[Step],
    parent: &[Step],
    i: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    let not_found = || Error::PathNotFound {
        file: file.into(),
        path: path::display(steps),
    };
    let Some(Node::Seq(items)) = path::lookup(&doc.docs[0].root, parent) else {
        return Err(not_found());
    };
    if i >= items.len() {
        return Err(not_found());
    }
    let edit = format
        .store()
        .remove_item(doc, items, i)
        .map_err(|why| refused(file, "remove", steps, why))?;
    let out = bytes(splice(&doc.text, vec![edit]));
    checked(file, format, doc, out, steps, Meant::Removed(i))
}

/// `v` as a new last item of the non-empty list at `parent` (a YAML block list, a JSON
/// array), written in the style of the item before it.
fn append_item(
    file: &str,
    format: Format,
    doc: &Document,
    parent: &[Step],
    items: &[Node],
    v: &Value,
) -> Result<Zeroizing<Vec<u8>>> {
    let edit = format
        .store()
        .append_item(doc, items, v)
        .map_err(|why| refused(file, "add an item to", parent, why))?;
    let out = bytes(splice(&doc.text, vec![edit]));
    let mut steps = parent.to_vec();
    steps.push(Step::Index(items.len()));
    let meant = match v {
        Value::Scalar(ty, s) => Meant::Scalar(*ty, s.as_str()),
        tree => Meant::Tree(tree),
    };
    checked(file, format, doc, out, &steps, meant)
}

/// Remove the entry at `steps`.
pub fn unset(
    file: &str,
    format: Format,
    plaintext: &[u8],
    steps: &[Step],
) -> Result<Zeroizing<Vec<u8>>> {
    let doc = crate::format::parse(file, format, plaintext.to_vec())?;
    if let Some((Step::Index(i), parent)) = steps.split_last() {
        return unset_item(file, format, &doc, steps, parent, *i);
    }
    let (entries, key) = find_parent(file, &doc, steps)?;
    let idx = entries
        .iter()
        .position(|e| *e.key == *key)
        .ok_or_else(|| Error::PathNotFound {
            file: file.into(),
            path: path::display(steps),
        })?;
    let edit = format
        .store()
        .remove_entry(&doc, entries, idx)
        .map_err(|why| refused(file, "remove", steps, why))?;
    let out = bytes(splice(&doc.text, vec![edit]));
    checked(file, format, &doc, out, steps, Meant::Absent)
}

/// The edited text, once it is known to hold what was meant: the value at `steps`
/// (or nothing there, for `unset`), and every other value as it was.
fn checked(
    file: &str,
    format: Format,
    before: &Document,
    out: Zeroizing<Vec<u8>>,
    steps: &[Step],
    meant: Meant,
) -> Result<Zeroizing<Vec<u8>>> {
    let wrong = |what: &str| Error::Unsupported {
        file: file.into(),
        what: format!(
            "changing {} here would {what}; edit the file instead",
            path::display(steps)
        ),
    };
    let after = crate::format::parse(file, format, out.to_vec()).map_err(|_| wrong("not parse"))?;
    // dotenv and INI hold text: only YAML and JSON keep a value's type.
    let typed = format.store().holds_trees();
    let found = path::lookup(&after.docs[0].root, steps);
    let holds = match (&meant, found) {
        (Meant::Absent, None) => true,
        (Meant::Scalar(ty, v), Some(Node::Leaf(i))) => {
            let leaf = &after.leaves[*i];
            let same_type = !typed || leaf.ty == *ty;
            same_type && (*ty == ScalarType::Null || same_text(*ty, after.value(*i), v.as_bytes()))
        }
        (Meant::Tree(v), Some(node)) => same_tree(&after, node, v),
        (Meant::Removed(_), _) => {
            let parent = &steps[..steps.len() - 1];
            let len = |d: &Document| match path::lookup(&d.docs[0].root, parent) {
                Some(Node::Seq(items)) => items.len(),
                _ => usize::MAX,
            };
            len(before) != usize::MAX && len(&after) + 1 == len(before)
        }
        _ => false,
    };
    if !holds {
        return Err(wrong("not give it the value asked for"));
    }
    // Everything else, collections (empty ones too) and comments, is as it was; a
    // removed entry may take the comment on its line with it.
    // In `after` a removed list item's place is taken by the next one, which counts.
    let removed = matches!(meant, Meant::Removed(_));
    let others = |doc: &Document, target: bool| -> Items {
        let mut out = Vec::new();
        for d in &doc.docs {
            items(doc, &d.root, &mut Vec::new(), &mut out);
        }
        // The entry itself, and the sizes of the mappings on its way (an entry added or
        // removed there, or mappings made to hold it).
        out.retain(|(p, ty, _)| {
            !((target && p.starts_with(steps))
                || (ty.is_none() && steps.starts_with(p) && p.len() < steps.len()))
        });
        out
    };
    let comments = |doc: &Document| -> Vec<Zeroizing<Vec<u8>>> {
        doc.comments()
            .iter()
            .map(|&i| Zeroizing::new(doc.value(i).to_vec()))
            .collect()
    };
    // A removed list item: the items after it are expected one place up.
    let shifted = |mut items: Items| -> Items {
        if let Meant::Removed(i) = meant {
            let parent = &steps[..steps.len() - 1];
            for (p, ..) in &mut items {
                if p.len() > parent.len() && p.starts_with(parent) {
                    if let Step::Index(j) = &mut p[parent.len()] {
                        if *j > i {
                            *j -= 1;
                        }
                    }
                }
            }
        }
        items
    };
    let set = !matches!(meant, Meant::Absent | Meant::Removed(_));
    if shifted(others(before, true)) != others(&after, !removed)
        || (set && comments(before) != comments(&after))
    {
        return Err(wrong("change other values"));
    }
    Ok(out)
}

/// What an edit means to leave at its path.
enum Meant<'v> {
    Absent,
    /// Item `i` of the list at the path's parent is gone; the items after it moved up.
    Removed(usize),
    Scalar(ScalarType, &'v str),
    Tree(&'v Value),
}

/// Whether `node` of `doc` holds the tree `v` (keys in order, typed values).
fn same_tree(doc: &Document, node: &Node, v: &Value) -> bool {
    match (node, v) {
        (Node::Map(entries), Value::Map(want)) => {
            entries.len() == want.len()
                && entries
                    .iter()
                    .zip(want)
                    .all(|(e, (k, w))| *e.key == **k && same_tree(doc, &e.value, w))
        }
        (Node::Seq(items), Value::Seq(want)) => {
            items.len() == want.len() && items.iter().zip(want).all(|(n, w)| same_tree(doc, n, w))
        }
        (Node::Leaf(i), Value::Scalar(ty, s)) => {
            let l = &doc.leaves[*i];
            (l.ty == *ty || (*ty == ScalarType::Null && l.ty == ScalarType::Null))
                && (*ty == ScalarType::Null || same_text(*ty, doc.value(*i), s.as_bytes()))
        }
        _ => false,
    }
}

/// Scalars and collections with their full paths (list indices included); a
/// collection stands as its length.
type Items = Vec<(Vec<Step>, Option<ScalarType>, Zeroizing<Vec<u8>>)>;

/// Every scalar and collection under `node` with its full path.
fn items(doc: &Document, node: &Node, at: &mut Vec<Step>, out: &mut Items) {
    match node {
        Node::Map(entries) => {
            out.push((
                at.clone(),
                None,
                Zeroizing::new(entries.len().to_string().into_bytes()),
            ));
            for e in entries {
                at.push(Step::Key(e.key.to_string()));
                items(doc, &e.value, at, out);
                at.pop();
            }
        }
        Node::Seq(list) => {
            out.push((
                at.clone(),
                None,
                Zeroizing::new(list.len().to_string().into_bytes()),
            ));
            for (i, n) in list.iter().enumerate() {
                at.push(Step::Index(i));
                items(doc, n, at, out);
                at.pop();
            }
        }
        Node::Leaf(i) => {
            let l = &doc.leaves[*i];
            out.push((
                at.clone(),
                Some(l.ty),
                Zeroizing::new(doc.value(*i).to_vec()),
            ));
        }
    }
}

/// Equal as values of type `ty` (`5432.0` is the float `5432.0` however written).
fn same_text(ty: ScalarType, a: &[u8], b: &[u8]) -> bool {
    if ty == ScalarType::Null {
        return true;
    }
    let canon = |x: &[u8]| crate::scalar::canonical(ty, x).map(|c| c.as_bytes().to_vec());
    a == b || (canon(a).is_some() && canon(a) == canon(b))
}

fn clone_leaf(l: &crate::tree::Leaf) -> crate::tree::Leaf {
    crate::tree::Leaf {
        kind: l.kind,
        path: l.path.clone(),
        place: l.place,
        ty: l.ty,
        own: l.own.clone(),
        quoted: l.quoted,
        style: l.style,
    }
}

fn bytes(mut s: Zeroizing<String>) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(std::mem::take(&mut *s).into_bytes())
}
