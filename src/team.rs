//! People in a rules file (`.coffer.yaml`/`.sops.yaml`), named as sops's documentation
//! names them: each key once under `keys:` with an anchor (`- &alice age1…`), rules
//! referring to it (`- *alice`). Adding and removing a person are edits of the text that
//! keep every comment and the layout; what they mean is checked by reading the result.

use std::ops::Range;

use crate::format::yaml_data::{self, Entry, Kind, Node};
use crate::format::SyntaxError;

#[derive(Debug, thiserror::Error)]
pub enum TeamError {
    #[error("{0}")]
    Syntax(SyntaxError),
    #[error("{0:?} cannot name a key: use letters, digits, - and _")]
    BadName(String),
    #[error("{name} is in the rules file already, as {key}")]
    Exists { name: String, key: String },
    #[error("{key} is in the rules file already, as {name}")]
    KeyExists { name: String, key: String },
    #[error("no one is named {0} under keys: in the rules file")]
    Unknown(String),
    #[error("no creation rule has path_regex {0:?}")]
    NoSuchRule(String),
    #[error("{0}")]
    Unsupported(String),
}

/// A person: the anchor name and the key it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub key: String,
}

/// A rules file after a change, and the creation rules (numbered from 1) it touched.
#[derive(Debug)]
pub struct Edited {
    pub text: String,
    pub rules: Vec<usize>,
}

fn parse(text: &str) -> Result<Node, TeamError> {
    yaml_data::parse(text).map_err(TeamError::Syntax)
}

/// The people under `keys:`: each anchored key.
pub fn members(text: &str) -> Result<Vec<Member>, TeamError> {
    let root = parse(text)?;
    Ok(members_of(&root))
}

fn members_of(root: &Node) -> Vec<Member> {
    let Some(Node {
        kind: Kind::Seq(items),
        ..
    }) = root.get("keys")
    else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|i| match (&i.anchor, &i.kind) {
            (Some(name), Kind::Scalar(_, key)) => Some(Member {
                name: name.clone(),
                key: key.clone(),
            }),
            _ => None,
        })
        .collect()
}

fn rules(root: &Node) -> &[Node] {
    match root.get("creation_rules") {
        Some(Node {
            kind: Kind::Seq(items),
            ..
        }) => items,
        _ => &[],
    }
}

fn line_start(text: &str, pos: usize) -> usize {
    text[..pos].rfind('\n').map_or(0, |i| i + 1)
}

fn line_end(text: &str, pos: usize) -> usize {
    crate::tree::line_end_after(text, pos)
}

/// The indentation of the line `pos` stands on, up to `pos`, as spaces (a `- ` of a
/// list item counts as indentation of the keys after it).
fn indent_at(text: &str, pos: usize) -> String {
    " ".repeat(text[line_start(text, pos)..pos].chars().count())
}

/// Text to insert as a new last item of a list.
fn append_item(text: &str, list: &Node, item: &str) -> (Range<usize>, String) {
    let Kind::Seq(items) = &list.kind else {
        unreachable!("a list")
    };
    if list.flow {
        let at = list.span.end - 1;
        let sep = if items.is_empty() { "" } else { ", " };
        return (at..at, format!("{sep}{item}"));
    }
    // Items go where the last one's `-` stands.
    let last = items.last().map_or(list.span.start, |i| i.span.start);
    let before = &text[line_start(text, last)..last];
    let dash = before.rfind('-').unwrap_or(0);
    let indent = " ".repeat(before[..dash].chars().count());
    let at = line_end(text, list.span.end);
    let newline = if text[..at].ends_with('\n') { "" } else { "\n" };
    (at..at, format!("{newline}{indent}- {item}\n"))
}

/// The edit that takes item `i` out of a list.
fn remove_item(text: &str, list: &Node, i: usize) -> (Range<usize>, String) {
    let Kind::Seq(items) = &list.kind else {
        unreachable!("a list")
    };
    let item = &items[i].span;
    if list.flow {
        let range = match (i.checked_sub(1), items.get(i + 1)) {
            (_, Some(next)) => item.start..next.span.start,
            (Some(prev), None) => items[prev].span.end..item.end,
            (None, None) => item.clone(),
        };
        return (range, String::new());
    }
    // The item's whole line (its `- ` and any comment after it).
    let start = line_start(text, item.start);
    (start..line_end(text, item.end), String::new())
}

/// Add `name` for `key` under `keys:` and to the `age` keys of the creation rules whose
/// `path_regex` is one of `path_regexes` (every rule when there are none).
pub fn add(
    text: &str,
    name: &str,
    key: &str,
    path_regexes: &[String],
) -> Result<Edited, TeamError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(TeamError::BadName(name.to_string()));
    }
    let root = parse(text)?;
    for m in members_of(&root) {
        if m.name == name {
            return Err(TeamError::Exists {
                name: m.name,
                key: m.key,
            });
        }
        if m.key == key {
            return Err(TeamError::KeyExists {
                name: m.name,
                key: m.key,
            });
        }
    }
    let mut edits = Vec::new();
    let entry = format!("&{name} {key}");
    match root.get("keys") {
        Some(
            list @ Node {
                kind: Kind::Seq(_), ..
            },
        ) => edits.push(append_item(text, list, &entry)),
        Some(_) => {
            return Err(TeamError::Unsupported(
                "keys: is not a list; make it one (keys:\\n  - &name age1…)".into(),
            ))
        }
        // A new `keys:` section before the first key of the file.
        None => {
            let at = match &root.kind {
                Kind::Map(entries) if !entries.is_empty() => {
                    line_start(text, entries[0].key_span.start)
                }
                _ => text.len(),
            };
            let newline = if at > 0 && !text[..at].ends_with('\n') {
                "\n"
            } else {
                ""
            };
            edits.push((at..at, format!("{newline}keys:\n  - {entry}\n")));
        }
    }
    let all = rules(&root);
    if all.is_empty() {
        return Err(TeamError::Unsupported(
            "the rules file has no creation_rules to add a key to".into(),
        ));
    }
    for re in path_regexes {
        if !all.iter().any(|r| path_regex(r) == Some(re.as_str())) {
            return Err(TeamError::NoSuchRule(re.clone()));
        }
    }
    let alias = format!("*{name}");
    let mut touched = Vec::new();
    for (n, rule) in all.iter().enumerate() {
        let chosen = path_regexes.is_empty()
            || path_regexes
                .iter()
                .any(|re| path_regex(rule) == Some(re.as_str()));
        if !chosen {
            continue;
        }
        if rule.get("key_groups").is_some() {
            return Err(TeamError::Unsupported(format!(
                "creation rule {} splits its data key over key_groups: add *{name} to a group by hand",
                n + 1
            )));
        }
        let Kind::Map(entries) = &rule.kind else {
            return Err(TeamError::Unsupported(format!(
                "creation rule {} is not a mapping",
                n + 1
            )));
        };
        match rule.get("age") {
            Some(
                list @ Node {
                    kind: Kind::Seq(_), ..
                },
            ) => edits.push(append_item(text, list, &alias)),
            // `age:` with nothing: the list goes after the colon.
            Some(Node {
                kind: Kind::Scalar(crate::tree::ScalarType::Null, _),
                ..
            }) => {
                let key_end = entries
                    .iter()
                    .find(|e| !e.merge && e.key == "age")
                    .map_or(rule.span.start, |e| e.key_span.end);
                let at = after_colon(text, key_end);
                edits.push((at..at, format!(" [{alias}]")));
            }
            // Keys from an anchored list shared by several rules: that list is the place.
            Some(Node {
                kind: Kind::Alias(a),
                ..
            }) if anchored(&root, a).is_some_and(|n| matches!(n.kind, Kind::Seq(_))) => {
                return Err(TeamError::Unsupported(format!(
                    "creation rule {} takes its age keys from the list &{a}: add *{name} to that list by hand",
                    n + 1
                )));
            }
            // `age: age1a,age1b` or `age: *alice`: the same keys, as a list.
            Some(node) => {
                let mut items: Vec<String> = match &node.kind {
                    Kind::Scalar(_, s) => s
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect(),
                    Kind::Alias(a) => vec![format!("*{a}")],
                    _ => {
                        return Err(TeamError::Unsupported(format!(
                            "creation rule {}: age is not a list of keys",
                            n + 1
                        )))
                    }
                };
                items.push(alias.clone());
                edits.push((node.span.clone(), format!("[{}]", items.join(", "))));
            }
            None if rule.flow => {
                let at = rule.span.end - 1;
                edits.push((at..at, format!(", age: [{alias}]")));
            }
            None => {
                let first = entries
                    .first()
                    .map_or(rule.span.start, |e| e.key_span.start);
                let at = line_end(text, rule.span.end);
                let newline = if text[..at].ends_with('\n') { "" } else { "\n" };
                edits.push((
                    at..at,
                    format!("{newline}{}age: [{alias}]\n", indent_at(text, first)),
                ));
            }
        }
        touched.push(n + 1);
    }
    Ok(Edited {
        text: apply(text, edits),
        rules: touched,
    })
}

/// Take `name` out of `keys:` and every `age` list of the creation rules (their key
/// groups included), whether a rule names the person by alias or by the key itself.
pub fn remove(text: &str, name: &str) -> Result<(Edited, Member), TeamError> {
    let root = parse(text)?;
    let member = members_of(&root)
        .into_iter()
        .find(|m| m.name == name)
        .ok_or_else(|| TeamError::Unknown(name.to_string()))?;
    let Some(Node {
        kind: Kind::Seq(keys),
        ..
    }) = root.get("keys")
    else {
        unreachable!("a member is under keys:")
    };
    let at = keys
        .iter()
        .position(|k| k.anchor.as_deref() == Some(name))
        .expect("a member is under keys:");
    let mut edits = vec![remove_item(text, root.get("keys").expect("keys"), at)];
    let mut touched = Vec::new();
    for (n, rule) in rules(&root).iter().enumerate() {
        let before = edits.len();
        remove_from_age_lists(text, rule, &member, &mut edits);
        if edits.len() > before {
            touched.push(n + 1);
        }
    }
    Ok((
        Edited {
            text: apply(text, edits),
            rules: touched,
        },
        member,
    ))
}

/// Whether a node stands for the member: `*name` or the key itself.
fn is_member(node: &Node, m: &Member) -> bool {
    match &node.kind {
        Kind::Alias(a) => *a == m.name,
        Kind::Scalar(_, s) => *s == m.key,
        _ => false,
    }
}

fn remove_from_age_lists(
    text: &str,
    node: &Node,
    m: &Member,
    edits: &mut Vec<(Range<usize>, String)>,
) {
    let Kind::Map(entries) = &node.kind else {
        if let Kind::Seq(items) = &node.kind {
            for i in items {
                remove_from_age_lists(text, i, m, edits);
            }
        }
        return;
    };
    for Entry {
        key,
        value,
        key_span,
        ..
    } in entries
    {
        if key != "age" {
            remove_from_age_lists(text, value, m, edits);
            continue;
        }
        match &value.kind {
            Kind::Seq(items) if items.iter().any(|i| is_member(i, m)) => {
                let kept: Vec<&Node> = items.iter().filter(|i| !is_member(i, m)).collect();
                if value.flow || kept.is_empty() {
                    // The list written again: `[a, b]`, or `[]` for a block list emptied.
                    let list = kept
                        .iter()
                        .map(|i| &text[i.span.clone()])
                        .collect::<Vec<_>>()
                        .join(", ");
                    let range = if value.flow {
                        value.span.clone()
                    } else {
                        after_colon(text, key_span.end)..line_end(text, value.span.end)
                    };
                    let tail = if value.flow { "" } else { "\n" };
                    let lead = if value.flow { "" } else { " " };
                    edits.push((range, format!("{lead}[{list}]{tail}")));
                } else {
                    for (i, _) in items.iter().enumerate().filter(|(_, i)| is_member(i, m)) {
                        edits.push(remove_item(text, value, i));
                    }
                }
            }
            Kind::Alias(_) if is_member(value, m) => edits.push((value.span.clone(), "[]".into())),
            Kind::Scalar(_, s) if s.split(',').any(|k| k.trim() == m.key) => {
                let rest: Vec<&str> = s
                    .split(',')
                    .map(str::trim)
                    .filter(|k| !k.is_empty() && *k != m.key)
                    .collect();
                edits.push((value.span.clone(), format!("[{}]", rest.join(", "))));
            }
            _ => {}
        }
    }
}

/// Just past the `:` after a key that ends at `key_end`.
fn after_colon(text: &str, key_end: usize) -> usize {
    text[key_end..]
        .find(':')
        .map_or(key_end, |i| key_end + i + 1)
}

/// The node anchored as `name`, anywhere under `node`.
fn anchored<'n>(node: &'n Node, name: &str) -> Option<&'n Node> {
    if node.anchor.as_deref() == Some(name) {
        return Some(node);
    }
    match &node.kind {
        Kind::Map(entries) => entries.iter().find_map(|e| anchored(&e.value, name)),
        Kind::Seq(items) => items.iter().find_map(|i| anchored(i, name)),
        _ => None,
    }
}

fn path_regex(rule: &Node) -> Option<&str> {
    match &rule.get("path_regex")?.kind {
        Kind::Scalar(_, s) => Some(s),
        _ => None,
    }
}

fn apply(text: &str, mut edits: Vec<(Range<usize>, String)>) -> String {
    edits.sort_by_key(|(r, _)| std::cmp::Reverse((r.start, r.end)));
    let mut out = text.to_string();
    for (range, with) in edits {
        out.replace_range(range, &with);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn added(text: &str, regexes: &[&str]) -> String {
        let regexes: Vec<String> = regexes.iter().map(|s| s.to_string()).collect();
        add(text, "carol", "age1carol", &regexes).unwrap().text
    }

    #[test]
    fn add_keeps_every_comment_and_the_layout() {
        let cases = [
            // Block lists, comments kept.
            (
                "# team\nkeys:\n  - &alice age1alice # laptop\ncreation_rules:\n  - path_regex: ^prod/\n    age:\n      - *alice # prod\n",
                &[][..],
                "# team\nkeys:\n  - &alice age1alice # laptop\n  - &carol age1carol\ncreation_rules:\n  - path_regex: ^prod/\n    age:\n      - *alice # prod\n      - *carol\n",
            ),
            // Flow lists.
            (
                "keys: [&alice age1alice]\ncreation_rules:\n  - age: [*alice]\n",
                &[],
                "keys: [&alice age1alice, &carol age1carol]\ncreation_rules:\n  - age: [*alice, *carol]\n",
            ),
            // No keys: section; a rule with age as one string, one with none.
            (
                "creation_rules:\n  - path_regex: a\n    age: age1x,age1y\n  - path_regex: b\n    kms: arn:k\n",
                &[],
                "keys:\n  - &carol age1carol\ncreation_rules:\n  - path_regex: a\n    age: [age1x, age1y, *carol]\n  - path_regex: b\n    kms: arn:k\n    age: [*carol]\n",
            ),
            // Only the rules named.
            (
                "keys:\n- &alice age1alice\ncreation_rules:\n- path_regex: a\n  age: [*alice]\n- path_regex: b\n  age: [*alice]\n",
                &["b"],
                "keys:\n- &alice age1alice\n- &carol age1carol\ncreation_rules:\n- path_regex: a\n  age: [*alice]\n- path_regex: b\n  age: [*alice, *carol]\n",
            ),
            // No final line break.
            (
                "x: 1\nkeys:\n  - &x age1x\ncreation_rules:\n  - age: *x",
                &[],
                "x: 1\nkeys:\n  - &x age1x\n  - &carol age1carol\ncreation_rules:\n  - age: [*x, *carol]",
            ),
            (
                "creation_rules:\n  - age: [a]\nkeys:\n  - b",
                &[],
                "creation_rules:\n  - age: [a, *carol]\nkeys:\n  - b\n  - &carol age1carol\n",
            ),
        ];
        for (text, regexes, want) in cases {
            assert_eq!(added(text, regexes), want, "{text}");
        }
    }

    #[test]
    fn remove_takes_the_person_out_of_keys_and_every_age_list() {
        let text = "keys:\n  - &alice age1alice # a\n  - &bob age1bob\ncreation_rules:\n  - path_regex: a\n    age:\n      - *alice\n      - *bob\n  - path_regex: b\n    age: [*bob, *alice]\n  - path_regex: c\n    age: age1bob,age1alice\n  - path_regex: d\n    key_groups:\n      - age: [*alice]\n      - age: [*bob]\n  - path_regex: e\n    age: [*bob]\n";
        let (edited, member) = remove(text, "alice").unwrap();
        assert_eq!(member.key, "age1alice");
        assert_eq!(
            edited.text,
            "keys:\n  - &bob age1bob\ncreation_rules:\n  - path_regex: a\n    age:\n      - *bob\n  - path_regex: b\n    age: [*bob]\n  - path_regex: c\n    age: [age1bob]\n  - path_regex: d\n    key_groups:\n      - age: []\n      - age: [*bob]\n  - path_regex: e\n    age: [*bob]\n"
        );
        assert_eq!(edited.rules, [1, 2, 3, 4]);
        assert!(yaml_data::read(&edited.text).is_ok());
    }

    #[test]
    fn lists_emptied_and_null_lists_stay_valid() {
        let text = "keys:\n  - &bob age1bob\n  - &al age1al\ncreation_rules:\n  - path_regex: a\n    age:\n      - *bob # b\n    kms: k\n  - path_regex: b\n    age: [*bob, age1bob, *al]\n";
        let (edited, _) = remove(text, "bob").unwrap();
        assert_eq!(
            edited.text,
            "keys:\n  - &al age1al\ncreation_rules:\n  - path_regex: a\n    age: []\n    kms: k\n  - path_regex: b\n    age: [*al]\n"
        );
        let text =
            "keys:\n  - &al age1al\ncreation_rules:\n  - path_regex: a\n    age:\n    kms: k\n";
        assert_eq!(
            added(text, &[]),
            "keys:\n  - &al age1al\n  - &carol age1carol\ncreation_rules:\n  - path_regex: a\n    age: [*carol]\n    kms: k\n"
        );
        let shared = "keys:\n  - &al age1al\ndevs: &devs [*al]\ncreation_rules:\n  - age: *devs\n";
        let err = add(shared, "carol", "age1carol", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("takes its age keys from the list &devs"),
            "{err}"
        );
    }

    #[test]
    fn mistakes_are_refused() {
        let text =
            "keys:\n  - &alice age1alice\ncreation_rules:\n  - path_regex: a\n    age: [*alice]\n";
        let err = |r: Result<Edited, TeamError>| r.unwrap_err().to_string();
        assert_eq!(
            err(add(text, "alice", "age1new", &[])),
            "alice is in the rules file already, as age1alice"
        );
        assert_eq!(
            err(add(text, "al", "age1alice", &[])),
            "age1alice is in the rules file already, as alice"
        );
        assert_eq!(
            err(add(text, "bad name", "age1x", &[])),
            "\"bad name\" cannot name a key: use letters, digits, - and _"
        );
        assert_eq!(
            err(add(text, "bob", "age1bob", &["nope".into()])),
            "no creation rule has path_regex \"nope\""
        );
        assert_eq!(
            remove(text, "bob").unwrap_err().to_string(),
            "no one is named bob under keys: in the rules file"
        );
        assert!(err(add("keys: []\n", "bob", "age1bob", &[])).contains("no creation_rules"));
        assert!(err(add(
            "creation_rules:\n  - key_groups:\n      - age: [a]\n",
            "bob",
            "age1bob",
            &[]
        ))
        .contains("key_groups"));
    }

    #[test]
    fn members_are_the_anchored_keys() {
        let text = "keys:\n  - &alice age1alice\n  - age1unnamed\n  - &kms arn:aws:kms:eu-west-1:1:key/k\n";
        let names: Vec<String> = members(text).unwrap().into_iter().map(|m| m.name).collect();
        assert_eq!(names, ["alice", "kms"]);
    }
}
