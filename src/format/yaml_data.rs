//! YAML read as data, with anchors, aliases and merge keys resolved as go-yaml resolves
//! them: for configuration (`.sops.yaml`, `.coffer.yaml`), where people name each key
//! once (`- &alice age1…`) and refer to it (`- *alice`). Secret files go through the
//! span-keeping store instead (`yaml`), which refuses aliases.
//!
//! [`parse`] keeps where each node stands (byte spans, anchors, flow or block), for edits
//! of the text that keep its comments and layout; [`read`] resolves it into a [`Value`].

use std::collections::HashMap;
use std::ops::Range;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use zeroize::Zeroizing;

use super::yaml::resolve_plain;
use super::SyntaxError;
use crate::tree::{ScalarType, Value};

/// One node of the text as written.
pub struct Node {
    pub kind: Kind,
    /// Where it stands; a block collection's span ends where its last item ends.
    pub span: Range<usize>,
    /// `&name` on it.
    pub anchor: Option<String>,
    /// A flow collection (`[…]`, `{…}`), whose closing bracket is at `span.end - 1`.
    pub flow: bool,
}

pub enum Kind {
    Map(Vec<Entry>),
    Seq(Vec<Node>),
    Scalar(ScalarType, String),
    /// `*name`.
    Alias(String),
}

pub struct Entry {
    pub key: String,
    pub key_span: Range<usize>,
    /// The merge key `<<`.
    pub merge: bool,
    pub value: Node,
}

impl Node {
    /// The value under `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(entries) => entries
                .iter()
                .find(|e| !e.merge && e.key == key)
                .map(|e| &e.value),
            _ => None,
        }
    }
}

enum Frame {
    Map {
        entries: Vec<Entry>,
        key: Option<(String, Range<usize>, bool)>,
        start: usize,
        anchor: Option<String>,
        flow: bool,
    },
    Seq {
        items: Vec<Node>,
        start: usize,
        anchor: Option<String>,
        flow: bool,
    },
}

/// The first document of `text` as written (an empty document is an empty mapping).
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    // saphyr counts characters; edits need bytes.
    let offsets: Option<Vec<usize>> = (!text.is_ascii()).then(|| {
        text.char_indices()
            .map(|(i, _)| i)
            .chain(std::iter::once(text.len()))
            .collect()
    });
    let byte = |i: usize| offsets.as_ref().map_or(i, |o| o[i.min(o.len() - 1)]);
    let range = |s: &Span| byte(s.start.index())..byte(s.end.index());
    let anchor_at = |at: usize, id: usize| -> Option<String> {
        (id != 0).then(|| {
            text[at..]
                .strip_prefix('&')
                .map(|rest| rest.split(|c: char| c.is_whitespace()).next().unwrap_or(""))
                .unwrap_or_default()
                .to_string()
        })
    };
    let mut stack: Vec<Frame> = Vec::new();
    let mut root = None;
    for item in Parser::new_from_str(text) {
        let (ev, span) = item.map_err(|e| SyntaxError::line(e.marker().line(), e.info()))?;
        let r = range(&span);
        let at = |what: &str| SyntaxError::line(span.start.line(), what);
        let node = match ev {
            Event::DocumentEnd if root.is_some() => break,
            Event::MappingStart(id, _) | Event::SequenceStart(id, _) => {
                let anchor = anchor_at(r.start, id);
                // The bracket follows the anchor, if any.
                let flow = text[r.clone()].trim_end().ends_with(['{', '[']);
                let start = r.start;
                stack.push(if matches!(ev, Event::MappingStart(..)) {
                    Frame::Map {
                        entries: Vec::new(),
                        key: None,
                        start,
                        anchor,
                        flow,
                    }
                } else {
                    Frame::Seq {
                        items: Vec::new(),
                        start,
                        anchor,
                        flow,
                    }
                });
                continue;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let (kind, start, anchor, flow, last_end) = match stack.pop() {
                    Some(Frame::Map {
                        entries,
                        start,
                        anchor,
                        flow,
                        ..
                    }) => {
                        let last = entries.last().map(|e| e.value.span.end);
                        (Kind::Map(entries), start, anchor, flow, last)
                    }
                    Some(Frame::Seq {
                        items,
                        start,
                        anchor,
                        flow,
                    }) => {
                        let last = items.last().map(|i| i.span.end);
                        (Kind::Seq(items), start, anchor, flow, last)
                    }
                    None => continue,
                };
                let end = if flow {
                    r.end
                } else {
                    last_end.unwrap_or(r.start)
                };
                Node {
                    kind,
                    span: start..end.max(start),
                    anchor,
                    flow,
                }
            }
            Event::Scalar(value, style, id, _) => {
                let ty = if style == ScalarStyle::Plain {
                    resolve_plain(&value)
                } else {
                    ScalarType::Str
                };
                // A plain `<<` where a key goes is the merge key.
                if let Some(Frame::Map {
                    key: key @ None, ..
                }) = stack.last_mut()
                {
                    let merge = style == ScalarStyle::Plain && value == "<<";
                    *key = Some((value.into_owned(), r, merge));
                    continue;
                }
                Node {
                    kind: Kind::Scalar(ty, value.into_owned()),
                    anchor: anchor_at(r.start, id),
                    span: r,
                    flow: false,
                }
            }
            Event::Alias(_) => {
                let name = text[r.clone()].trim_start_matches('*').to_string();
                if let Some(Frame::Map {
                    key: key @ None, ..
                }) = stack.last_mut()
                {
                    // An alias as a key stands for its scalar, resolved by `read`.
                    *key = Some((format!("*{name}"), r, false));
                    continue;
                }
                Node {
                    kind: Kind::Alias(name),
                    span: r,
                    anchor: None,
                    flow: false,
                }
            }
            _ => continue,
        };
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => {
                let (key, key_span, merge) =
                    key.take().ok_or_else(|| at("a mapping or list as a key"))?;
                entries.push(Entry {
                    key,
                    key_span,
                    merge,
                    value: node,
                });
            }
        }
    }
    Ok(match root {
        Some(Node {
            kind: Kind::Scalar(ScalarType::Null, _),
            ..
        })
        | None => Node {
            kind: Kind::Map(Vec::new()),
            span: 0..0,
            anchor: None,
            flow: false,
        },
        Some(n) => n,
    })
}

/// The first document of `text` as a value, aliases and merge keys resolved.
pub fn read(text: &str) -> Result<Value, SyntaxError> {
    let root = parse(text)?;
    let line = |pos: usize| 1 + text[..pos].matches('\n').count();
    resolve(&root, &mut HashMap::new(), &line)
}

fn resolve(
    node: &Node,
    anchors: &mut HashMap<String, Value>,
    line: &dyn Fn(usize) -> usize,
) -> Result<Value, SyntaxError> {
    let at = |what: String| SyntaxError::line(line(node.span.start), what);
    let value = match &node.kind {
        Kind::Scalar(ty, s) => Value::Scalar(*ty, Zeroizing::new(s.clone())),
        Kind::Alias(name) => anchors.get(name).cloned().ok_or_else(|| {
            at(format!(
                "the alias *{name} names no anchor defined before it"
            ))
        })?,
        Kind::Seq(items) => Value::Seq(
            items
                .iter()
                .map(|i| resolve(i, anchors, line))
                .collect::<Result<_, _>>()?,
        ),
        Kind::Map(entries) => {
            let mut own: Vec<(String, Value)> = Vec::new();
            let mut own_at: Vec<usize> = Vec::new();
            let mut merged: Vec<(String, Value)> = Vec::new();
            for e in entries {
                let value = resolve(&e.value, anchors, line)?;
                if e.merge {
                    // Earlier merged mappings win over later ones; own keys over all.
                    let maps = match value {
                        Value::Map(m) => vec![m],
                        Value::Seq(items) => items
                            .into_iter()
                            .map(|i| match i {
                                Value::Map(m) => Ok(m),
                                _ => Err(at("a merge key (<<) takes mappings".into())),
                            })
                            .collect::<Result<_, _>>()?,
                        Value::Scalar(..) => {
                            return Err(at("a merge key (<<) takes mappings".into()))
                        }
                    };
                    for (k, v) in maps.into_iter().flatten() {
                        if !merged.iter().any(|(m, _)| *m == k) {
                            merged.push((k, v));
                        }
                    }
                    continue;
                }
                let key = match e.key.strip_prefix('*') {
                    Some(name) => match anchors.get(name) {
                        Some(Value::Scalar(_, s)) => s.to_string(),
                        _ => return Err(at(format!("the alias *{name} cannot be a key here"))),
                    },
                    None => e.key.clone(),
                };
                // go-yaml, so sops, refuses it; taking either would drop a recipient
                // or a rule without a word.
                if let Some(first) = own.iter().position(|(k, _)| *k == key) {
                    return Err(SyntaxError::line(
                        line(e.key_span.start),
                        format!(
                            "the key {key:?} is defined twice (first at line {}): keep one",
                            line(own_at[first])
                        ),
                    ));
                }
                own.push((key, value));
                own_at.push(e.key_span.start);
            }
            for (k, v) in merged {
                if !own.iter().any(|(o, _)| *o == k) {
                    own.push((k, v));
                }
            }
            Value::Map(own)
        }
    };
    if let Some(name) = &node.anchor {
        anchors.insert(name.clone(), value.clone());
    }
    Ok(value)
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
            ("k: &k name\n*k : 2\n", "{k: name, name: 2}"),
            ("", "{}"),
            ("# only a comment\n", "{}"),
            // Characters beyond ASCII before an anchor.
            ("# é\na: &x 1\nb: *x\n", "{a: 1, b: 1}"),
        ];
        for (text, want) in cases {
            assert_eq!(show(&read(text).unwrap()), want, "{text}");
        }
    }

    #[test]
    fn spans_anchors_and_flow_are_kept_for_edits() {
        let text =
            "keys:\n  - &alice age1a # a\n  - &bob 'age1b'\nr: &r\n  age: [*alice, *bob]\n  x: 1\n";
        let root = parse(text).unwrap();
        let keys = root.get("keys").unwrap();
        let Kind::Seq(items) = &keys.kind else {
            panic!("a list")
        };
        assert_eq!(items[0].anchor.as_deref(), Some("alice"));
        assert_eq!(&text[items[1].span.clone()], "&bob 'age1b'");
        assert!(!keys.flow);
        assert_eq!(
            &text[keys.span.clone()],
            "- &alice age1a # a\n  - &bob 'age1b'"
        );
        let r = root.get("r").unwrap();
        assert_eq!(r.anchor.as_deref(), Some("r"));
        let age = r.get("age").unwrap();
        assert!(age.flow);
        assert_eq!(&text[age.span.clone()], "[*alice, *bob]");
        assert!(
            matches!(&age.kind, Kind::Seq(i) if matches!(&i[1].kind, Kind::Alias(n) if n == "bob"))
        );
    }

    #[test]
    fn mistakes_are_refused_with_their_line() {
        let cases = [
            ("a: *nope\n", "line 1"),
            ("a: 1\na: 2\n", "line 2: the key \"a\" is defined twice"),
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
