//! Key paths as sops writes them for `--extract` and `set`: `["db"]["hosts"][0]`.
//! The dotted form `db.hosts.0` is accepted too.

use crate::tree::Node;
use crate::{Error, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

pub fn parse(s: &str) -> Result<Vec<Step>> {
    let bad = |reason: &str| Error::BadPath {
        path: s.to_string(),
        reason: reason.to_string(),
    };
    let t = s.trim();
    if t.is_empty() {
        return Err(bad("empty path"));
    }
    if !t.starts_with('[') {
        return Ok(t
            .split('.')
            .map(|p| {
                p.parse::<usize>()
                    .map_or_else(|_| Step::Key(p.to_string()), Step::Index)
            })
            .collect());
    }
    let mut steps = Vec::new();
    let mut rest = t;
    while !rest.is_empty() {
        rest = rest.strip_prefix('[').ok_or_else(|| bad("expected '['"))?;
        if let Some(q) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') {
            let body = &rest[1..];
            let end = body.find(q).ok_or_else(|| bad("unterminated quote"))?;
            steps.push(Step::Key(body[..end].to_string()));
            rest = body[end + 1..]
                .strip_prefix(']')
                .ok_or_else(|| bad("expected ']'"))?;
        } else {
            let end = rest.find(']').ok_or_else(|| bad("expected ']'"))?;
            let idx = rest[..end]
                .trim()
                .parse()
                .map_err(|_| bad("an index must be a number or a quoted key"))?;
            steps.push(Step::Index(idx));
            rest = &rest[end + 1..];
        }
    }
    Ok(steps)
}

/// A tree path exactly as sops parses one (`parseTreePath`): the text is split at each
/// `[`, every piece must end with `]`, a piece that opens with a quote is a key whose
/// first and last characters are dropped (no escapes: `["d\"b"]` is the key `d\"b`),
/// anything else an index.
pub fn parse_sops(s: &str) -> Result<Vec<Step>> {
    let bad = |reason: String| Error::BadPath {
        path: s.to_string(),
        reason,
    };
    let mut steps = Vec::new();
    for piece in s.split('[').filter(|p| !p.is_empty()) {
        let inner = piece
            .strip_suffix(']')
            .ok_or_else(|| bad(format!("component {piece} doesn't end with ]")))?;
        match inner.chars().next() {
            Some(q @ ('"' | '\'')) if inner.len() >= 2 => {
                let body = &inner[q.len_utf8()..];
                let last = body.chars().next_back().map_or(0, char::len_utf8);
                steps.push(Step::Key(body[..body.len() - last].to_string()));
            }
            _ => steps.push(Step::Index(inner.parse().map_err(|_| {
                bad(format!(
                    "component {inner:?} is neither a quoted key nor an index"
                ))
            })?)),
        }
    }
    Ok(steps)
}

pub fn display(steps: &[Step]) -> String {
    steps
        .iter()
        .map(|s| match s {
            Step::Key(k) => format!("[{k:?}]"),
            Step::Index(i) => format!("[{i}]"),
        })
        .collect()
}

pub fn lookup<'n>(root: &'n Node, steps: &[Step]) -> Option<&'n Node> {
    let mut node = root;
    for step in steps {
        node = match (step, node) {
            (Step::Key(k), Node::Map(_)) => node.get(k)?,
            (Step::Index(i), Node::Seq(items)) => items.get(*i)?,
            // A numeric step may also name a mapping key such as `"0"`.
            (Step::Index(i), Node::Map(_)) => node.get(&i.to_string())?,
            _ => return None,
        };
    }
    Some(node)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sops_tree_paths_parse_as_sops_parses_them() {
        use super::Step::{Index as I, Key as K};
        let k = |s: &str| K(s.to_string());
        let table: &[(&str, Option<Vec<super::Step>>)] = &[
            (r#"["a"][0]['b']"#, Some(vec![k("a"), I(0), k("b")])),
            // No escapes: the backslash is part of the key.
            (r#"["d\"b"]"#, Some(vec![k(r#"d\"b"#)])),
            // The first and last characters go, whatever they are.
            (r#"["ab']"#, Some(vec![k("ab")])),
            // Only `[` splits: a `]` inside a key is part of it.
            (r#"["a]b"]"#, Some(vec![k("a]b")])),
            (r#"a["b"]"#, None),
            (r#"["a"]x"#, None),
            ("[x]", None),
            ("[]", None),
            ("", Some(vec![])),
            (r#"[["a"]"#, Some(vec![k("a")])),
            (r#"["é"]"#, Some(vec![k("é")])),
        ];
        for (text, want) in table {
            let got = super::parse_sops(text).ok();
            assert_eq!(&got, want, "{text}");
        }
    }

    use super::*;

    #[test]
    fn parses_sops_and_dotted_paths() {
        let want = vec![
            Step::Key("db".into()),
            Step::Key("hosts".into()),
            Step::Index(0),
        ];
        assert_eq!(parse(r#"["db"]["hosts"][0]"#).unwrap(), want);
        assert_eq!(parse("db.hosts.0").unwrap(), want);
        assert!(parse(r#"["db"#).is_err());
    }
}
