//! YAML read as data, with anchors, aliases and merge keys resolved as go-yaml resolves
//! them: for configuration (`.sops.yaml`, `.coffer.yaml`), where people name each key
//! once (`- &alice age1…`) and refer to it (`- *alice`). Secret files go through the
//! span-keeping store instead (`yaml`), which refuses aliases.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle};
use zeroize::Zeroizing;

use super::yaml::resolve_plain;
use super::SyntaxError;
use crate::tree::{ScalarType, Value};

enum Frame {
    Map {
        entries: Vec<(String, Value)>,
        /// The key read, waiting for its value; `true` when it is the merge key `<<`.
        key: Option<(String, bool)>,
        /// Mappings merged in with `<<`, in order: earlier ones win, own keys win over all.
        merged: Vec<Vec<(String, Value)>>,
        anchor: usize,
    },
    Seq {
        items: Vec<Value>,
        anchor: usize,
    },
}

/// The first document of `text` as a value (an empty document is an empty mapping).
pub fn read(text: &str) -> Result<Value, SyntaxError> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Value> = HashMap::new();
    let mut root = None;
    for item in Parser::new_from_str(text) {
        let (ev, span) = item.map_err(|e| SyntaxError::line(e.marker().line(), e.info()))?;
        let at = |what: &str| SyntaxError::line(span.start.line(), what);
        let (value, anchor) = match ev {
            Event::DocumentEnd if root.is_some() => break,
            Event::MappingStart(anchor, _) => {
                stack.push(Frame::Map {
                    entries: Vec::new(),
                    key: None,
                    merged: Vec::new(),
                    anchor,
                });
                continue;
            }
            Event::SequenceStart(anchor, _) => {
                stack.push(Frame::Seq {
                    items: Vec::new(),
                    anchor,
                });
                continue;
            }
            Event::MappingEnd | Event::SequenceEnd => match stack.pop() {
                Some(Frame::Map {
                    mut entries,
                    merged,
                    anchor,
                    ..
                }) => {
                    for from in merged {
                        for (k, v) in from {
                            if !entries.iter().any(|(e, _)| *e == k) {
                                entries.push((k, v));
                            }
                        }
                    }
                    (Value::Map(entries), anchor)
                }
                Some(Frame::Seq { items, anchor }) => (Value::Seq(items), anchor),
                None => continue,
            },
            Event::Scalar(text, style, anchor, _) => {
                let ty = if style == ScalarStyle::Plain {
                    resolve_plain(&text)
                } else {
                    ScalarType::Str
                };
                // A plain `<<` where a key goes is the merge key.
                if let Some(Frame::Map {
                    key: key @ None, ..
                }) = stack.last_mut()
                {
                    let merge = style == ScalarStyle::Plain && text == "<<";
                    *key = Some((text.into_owned(), merge));
                    if anchor != 0 {
                        anchors.insert(anchor, Value::Scalar(ty, Zeroizing::new(key_text(key))));
                    }
                    continue;
                }
                (Value::Scalar(ty, Zeroizing::new(text.into_owned())), anchor)
            }
            Event::Alias(id) => {
                let value = anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| at("an alias (*name) of an anchor not defined before it"))?;
                if let Some(Frame::Map {
                    key: key @ None, ..
                }) = stack.last_mut()
                {
                    match value {
                        Value::Scalar(_, s) => *key = Some((s.to_string(), false)),
                        _ => return Err(at("a mapping or list as a key")),
                    }
                    continue;
                }
                (value, 0)
            }
            _ => continue,
        };
        if anchor != 0 {
            anchors.insert(anchor, value.clone());
        }
        match stack.last_mut() {
            None => root = Some(value),
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map {
                entries,
                key,
                merged,
                ..
            }) => match key.take() {
                None => return Err(at("a mapping or list as a key")),
                Some((_, true)) => match value {
                    Value::Map(m) => merged.push(m),
                    Value::Seq(items) => {
                        for item in items {
                            match item {
                                Value::Map(m) => merged.push(m),
                                _ => return Err(at("a merge key (<<) takes mappings")),
                            }
                        }
                    }
                    Value::Scalar(..) => return Err(at("a merge key (<<) takes mappings")),
                },
                Some((k, false)) => {
                    if entries.iter().any(|(e, _)| *e == k) {
                        return Err(at(&format!("the key {k:?} is defined twice")));
                    }
                    entries.push((k, value));
                }
            },
        }
    }
    Ok(match root {
        Some(Value::Scalar(ScalarType::Null, _)) | None => Value::Map(Vec::new()),
        Some(v) => v,
    })
}

fn key_text(key: &Option<(String, bool)>) -> String {
    key.as_ref().map(|(k, _)| k.clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value as compact JSON-like text, for comparing.
    fn show(v: &Value) -> String {
        match v {
            Value::Map(e) => format!(
                "{{{}}}",
                e.iter()
                    .map(|(k, v)| format!("{k}: {}", show(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Value::Seq(i) => format!("[{}]", i.iter().map(show).collect::<Vec<_>>().join(", ")),
            Value::Scalar(_, s) => s.to_string(),
        }
    }

    #[test]
    fn anchors_aliases_and_merge_keys_resolve_as_go_yaml_reads_them() {
        let cases = [
            // sops's documentation: keys named once, referred to in rules.
            (
                "keys:\n  - &alice age1a\n  - &bob age1b\ncreation_rules:\n  - path_regex: x\n    age: [*alice, *bob]\n",
                "{keys: [age1a, age1b], creation_rules: [{path_regex: x, age: [age1a, age1b]}]}",
            ),
            // A whole key group anchored and reused.
            (
                "g: &g\n  - age: [a]\nr:\n  key_groups: *g\n",
                "{g: [{age: [a]}], r: {key_groups: [{age: [a]}]}}",
            ),
            // Merge keys: own keys win, then earlier merges.
            (
                "base: &b {x: 1, y: 2}\nmore: &m {y: 3, z: 4}\nr:\n  <<: [*b, *m]\n  x: 0\n",
                "{base: {x: 1, y: 2}, more: {y: 3, z: 4}, r: {x: 0, y: 2, z: 4}}",
            ),
            ("r:\n  <<: {a: 1}\n  b: 2\n", "{r: {b: 2, a: 1}}"),
            // A quoted "<<" is an ordinary key.
            ("\"<<\": 1\n", "{<<: 1}"),
            ("", "{}"),
            ("# only a comment\n", "{}"),
        ];
        for (text, want) in cases {
            assert_eq!(show(&read(text).unwrap()), want, "{text}");
        }
    }

    #[test]
    fn mistakes_are_refused_with_their_line() {
        let cases = [
            ("a: *nope\n", "line 1"),
            ("a: 1\na: 2\n", "defined twice"),
            ("r:\n  <<: 1\n", "merge key"),
            ("a: [1\n", "line"),
        ];
        for (text, want) in cases {
            let Err(e) = read(text) else {
                panic!("{text}: read");
            };
            let e = e.to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
