//! sops's metadata in dotenv and INI files: one `sops_key__list_0__map_field = value`
//! line per leaf, flattened from the metadata tree and read back into it.

use crate::metadata::{MetaError, MetaValue};

/// Flatten metadata into `key__list_0__map_field` names, as sops does for dotenv and INI.
pub fn flatten(meta: &MetaValue) -> Vec<(String, String)> {
    fn walk(prefix: String, v: &MetaValue, out: &mut Vec<(String, String)>) {
        match v {
            MetaValue::Map(entries) => {
                for (k, v) in entries {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}__map_{k}")
                    };
                    walk(p, v, out);
                }
            }
            MetaValue::Seq(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(format!("{prefix}__list_{i}"), v, out);
                }
            }
            MetaValue::Str(s) => out.push((prefix, s.clone())),
            MetaValue::Null => {}
        }
    }
    let mut out = Vec::new();
    walk(String::new(), meta, &mut out);
    out
}

/// The inverse of [`flatten`].
pub fn unflatten(items: &[(String, String)]) -> Result<MetaValue, MetaError> {
    enum Tok {
        Key(String),
        Index(usize),
    }
    fn tokens(name: &str) -> Vec<Tok> {
        let mut out = Vec::new();
        let mut rest = name;
        let mut current = Tok::Key(String::new());
        loop {
            let next_map = rest.find("__map_");
            let next_list = rest.find("__list_");
            let (pos, is_map) = match (next_map, next_list) {
                (Some(m), Some(l)) if l < m => (l, false),
                (Some(m), _) => (m, true),
                (None, Some(l)) => (l, false),
                (None, None) => break,
            };
            match &mut current {
                Tok::Key(k) => k.push_str(&rest[..pos]),
                Tok::Index(_) => {}
            }
            out.push(current);
            rest = &rest[pos + if is_map { 6 } else { 7 }..];
            if is_map {
                current = Tok::Key(String::new());
            } else {
                let end = rest.find("__").unwrap_or(rest.len());
                current = Tok::Index(rest[..end].parse().unwrap_or(0));
                rest = &rest[end..];
            }
        }
        if let Tok::Key(k) = &mut current {
            k.push_str(rest);
        }
        out.push(current);
        out
    }
    fn insert(node: &mut MetaValue, toks: &[Tok], value: &str) {
        let Some((first, rest)) = toks.split_first() else {
            *node = MetaValue::Str(value.to_string());
            return;
        };
        let child = match first {
            Tok::Key(k) => {
                if !matches!(node, MetaValue::Map(_)) {
                    *node = MetaValue::Map(Vec::new());
                }
                let MetaValue::Map(entries) = node else {
                    unreachable!()
                };
                let idx = match entries.iter().position(|(ek, _)| ek == k) {
                    Some(i) => i,
                    None => {
                        entries.push((k.clone(), MetaValue::Null));
                        entries.len() - 1
                    }
                };
                &mut entries[idx].1
            }
            Tok::Index(i) => {
                if !matches!(node, MetaValue::Seq(_)) {
                    *node = MetaValue::Seq(Vec::new());
                }
                let MetaValue::Seq(items) = node else {
                    unreachable!()
                };
                if items.len() <= *i {
                    items.resize(*i + 1, MetaValue::Null);
                }
                &mut items[*i]
            }
        };
        insert(child, rest, value);
    }
    // Bounded like every parser: a name nests no deeper than a document may, a list
    // index stays small, and no name comes twice.
    let mut root = MetaValue::Map(Vec::new());
    let mut seen = std::collections::HashSet::new();
    for (k, v) in items {
        let toks = tokens(k);
        if toks.len() > super::MAX_DEPTH {
            return Err(MetaError::FlatName {
                name: k.clone(),
                problem: "is nested too deep",
            });
        }
        if toks.iter().any(|t| matches!(t, Tok::Index(i) if *i > 1000)) {
            return Err(MetaError::FlatName {
                name: k.clone(),
                problem: "has a list index over 1000",
            });
        }
        if !seen.insert(k.as_str()) {
            return Err(MetaError::FlatName {
                name: k.clone(),
                problem: "is there twice",
            });
        }
        insert(&mut root, &toks, v);
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{AgeEntry, Metadata};

    #[test]
    fn flatten_round_trip() {
        let md = Metadata {
            age: vec![AgeEntry {
                recipient: "age1x".into(),
                enc: "a\nb\n".into(),
            }],
            lastmodified: "t".into(),
            ..Default::default()
        };
        let flat = flatten(&md.to_meta());
        assert!(flat.contains(&("age__list_0__map_recipient".into(), "age1x".into())));
        let back = Metadata::parse(&unflatten(&flat).unwrap()).unwrap();
        assert_eq!(back.age, md.age);
    }
}
