//! Three-way merge by key path: a value changed on one side takes that side; keys added or
//! removed on either side merge; both sides changing the same value differently is a
//! conflict for that value alone, with markers around its lines. The result is ours'
//! text with theirs' changes applied as `set`/`unset` edits, each checked, so comments and
//! layout follow ours. Lists merge element by element when their lengths agree, else as one
//! value. `None` means "cannot merge this way" and the caller falls back to `git merge-file`.

use zeroize::Zeroizing;

use crate::format::Format;
use crate::path::Step;
use crate::tree::{Document, Node, ScalarType, Value};

/// What one side does at a key path.
enum Op {
    Set(Vec<Step>, Zeroizing<String>),
    Unset(Vec<Step>),
}

/// The merged plaintext, and whether it holds conflict markers.
pub fn merge(
    path: &str,
    format: Format,
    base: &[u8],
    ours: &[u8],
    theirs: &[u8],
    marker_size: usize,
) -> Option<(Zeroizing<Vec<u8>>, bool)> {
    if format == Format::Binary {
        return None;
    }
    let parse = |bytes: &[u8]| crate::format::parse(path, format, bytes.to_vec()).ok();
    let (base_doc, ours_doc, theirs_doc) = (parse(base)?, parse(ours)?, parse(theirs)?);
    // One document each: a multi-document YAML file merges line by line.
    let value = |doc: &Document| -> Option<Value> {
        let [d] = doc.docs.as_slice() else {
            return None;
        };
        doc.plain_value(&d.root)
    };
    let (b, o, t) = (value(&base_doc)?, value(&ours_doc)?, value(&theirs_doc)?);
    let mut ops = Vec::new();
    let mut conflicts = Vec::new();
    three_way(
        Some(&b),
        Some(&o),
        Some(&t),
        &mut Vec::new(),
        &mut ops,
        &mut conflicts,
    )?;

    let mut text = Zeroizing::new(ours.to_vec());
    for op in &ops {
        text = match op {
            Op::Set(steps, v) => crate::mutate::set(path, format, &text, steps, v).ok()?,
            Op::Unset(steps) => crate::mutate::unset(path, format, &text, steps).ok()?,
        };
    }
    if conflicts.is_empty() {
        return Some((text, false));
    }
    let merged = crate::format::parse(path, format, text.to_vec()).ok()?;
    let mut edits = Vec::new();
    for steps in &conflicts {
        let (start, end) = lines_of(&merged, steps)?;
        let theirs_lines = match lines_of(&theirs_doc, steps) {
            Some((s, e)) => &theirs_doc.text[s..e],
            None => "",
        };
        let marker = |c: char| c.to_string().repeat(marker_size);
        let block = Zeroizing::new(format!(
            "{} ours\n{}{}\n{}{} theirs\n",
            marker('<'),
            &merged.text[start..end],
            marker('='),
            theirs_lines,
            marker('>')
        ));
        edits.push((start, end, block));
    }
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut out = Zeroizing::new(merged.text.as_bytes().to_vec());
    for (start, end, block) in edits {
        out.splice(start..end, block.bytes());
    }
    Some((out, true))
}

/// Compare the three versions of one node and say what ours needs from theirs. `None`
/// when the merge cannot be expressed by key path (a conflict at the root).
fn three_way(
    base: Option<&Value>,
    ours: Option<&Value>,
    theirs: Option<&Value>,
    at: &mut Vec<Step>,
    ops: &mut Vec<Op>,
    conflicts: &mut Vec<Vec<Step>>,
) -> Option<()> {
    if theirs == base || ours == theirs {
        return Some(());
    }
    if ours == base {
        ops.push(match theirs {
            Some(v) => Op::Set(at.clone(), literal(v)?),
            None => Op::Unset(at.clone()),
        });
        return Some(());
    }
    match (base, ours, theirs) {
        (b, Some(Value::Map(o)), Some(Value::Map(t)))
            if b.is_none_or(|b| matches!(b, Value::Map(_))) =>
        {
            fn get<'v>(v: &'v [(String, Value)], k: &str) -> Option<&'v Value> {
                v.iter().find(|(key, _)| key == k).map(|(_, v)| v)
            }
            let base_entries: &[(String, Value)] = match b {
                Some(Value::Map(e)) => e,
                _ => &[],
            };
            let mut keys: Vec<&String> = o.iter().map(|(k, _)| k).collect();
            keys.extend(t.iter().map(|(k, _)| k).filter(|k| get(o, k).is_none()));
            keys.extend(
                base_entries
                    .iter()
                    .map(|(k, _)| k)
                    .filter(|k| get(o, k).is_none() && get(t, k).is_none()),
            );
            for k in keys {
                at.push(Step::Key(k.clone()));
                three_way(
                    get(base_entries, k),
                    get(o, k),
                    get(t, k),
                    at,
                    ops,
                    conflicts,
                )?;
                at.pop();
            }
            Some(())
        }
        (Some(Value::Seq(b)), Some(Value::Seq(o)), Some(Value::Seq(t)))
            if b.len() == o.len() && o.len() == t.len() =>
        {
            for i in 0..o.len() {
                at.push(Step::Index(i));
                three_way(Some(&b[i]), Some(&o[i]), Some(&t[i]), at, ops, conflicts)?;
                at.pop();
            }
            Some(())
        }
        // A value both sides changed (or one removed and one changed): this key alone
        // conflicts, when ours still has it to put markers around.
        (_, Some(_), _) if !at.is_empty() => {
            // Markers go around a mapping entry: a list item conflicts as its whole list.
            while matches!(at.last(), Some(Step::Index(_))) {
                at.pop();
            }
            if at.is_empty() {
                return None;
            }
            if !conflicts.contains(at) {
                conflicts.push(at.clone());
            }
            Some(())
        }
        _ => None,
    }
}

/// A value as `set` takes it: a JSON literal keeps a scalar's type; a subtree is JSON.
fn literal(v: &Value) -> Option<Zeroizing<String>> {
    Some(match v {
        Value::Scalar(ScalarType::Str, s) => Zeroizing::new(crate::format::json::json_string(s)),
        Value::Scalar(ScalarType::Null, _) => Zeroizing::new("null".into()),
        Value::Scalar(ScalarType::Int | ScalarType::Float | ScalarType::Bool, s) => s.clone(),
        // A time would come back a string: line by line instead.
        Value::Scalar(ScalarType::Time, _) => return None,
        tree => {
            let mut out = String::new();
            crate::format::json::json(&mut out, tree, None, 0);
            Zeroizing::new(out)
        }
    })
}

/// The whole lines of the mapping entry at `steps`.
fn lines_of(doc: &Document, steps: &[Step]) -> Option<(usize, usize)> {
    let (Step::Key(key), parent) = steps.split_last()? else {
        return None;
    };
    let Node::Map(entries) = crate::path::lookup(&doc.docs.first()?.root, parent)? else {
        return None;
    };
    let e = entries.iter().find(|e| *e.key == **key)?;
    let start = doc.text[..e.at()].rfind('\n').map_or(0, |i| i + 1);
    let end = crate::tree::line_end_after(&doc.text, e.end().max(e.at()));
    Some((start, end))
}
