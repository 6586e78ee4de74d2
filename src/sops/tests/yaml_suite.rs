//! The YAML test suite: every document read as its `in.json` says, or refused.

use super::*;

// ---- The YAML test suite ----------------------------------------------------------------

/// A value of the suite's `in.json` against what coffer read, `None` when they agree.
pub(super) fn json_differs(got: &Value, want: &serde_json::Value) -> Option<String> {
    use serde_json::Value as J;
    match (got, want) {
        (Value::Map(entries), J::Object(o)) => {
            if entries.len() != o.len() {
                return Some(format!(
                    "{} keys where {} were written",
                    entries.len(),
                    o.len()
                ));
            }
            entries.iter().find_map(|(k, v)| match o.get(k) {
                Some(w) => json_differs(v, w).map(|d| format!("{k}: {d}")),
                None => Some(format!("key {k:?} not in the document")),
            })
        }
        (Value::Seq(items), J::Array(a)) if items.len() == a.len() => items
            .iter()
            .zip(a)
            .enumerate()
            .find_map(|(i, (v, w))| json_differs(v, w).map(|d| format!("[{i}]: {d}"))),
        (Value::Scalar(ty, s), w) => {
            let same = match (ty, w) {
                (ScalarType::Null, J::Null) => true,
                (ScalarType::Bool, J::Bool(b)) => scalar::parse_bool(s) == Some(*b),
                (ScalarType::Int | ScalarType::Float, J::Number(n)) => {
                    scalar::parse_float(s) == n.as_f64()
                }
                (ScalarType::Str, J::String(t)) => s.as_str() == t,
                (ScalarType::Time, J::String(t)) => {
                    scalar::time_canonical(t, false).as_deref() == Some(s.as_str())
                }
                _ => false,
            };
            (!same).then(|| format!("{ty:?} {:?} where {w} was written", s.as_str()))
        }
        _ => Some(format!("a different structure where {want} was written")),
    }
}

/// Every valid document of the YAML test suite (testdata/yaml-test-suite, from
/// yaml/yaml-test-suite's data branch): coffer either refuses it, or reads exactly what
/// the suite says it holds and writes it so that it reads back.
#[test]
pub(super) fn the_yaml_test_suite_is_read_right_or_refused() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/yaml-test-suite");
    let mut cases: Vec<std::path::PathBuf> = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("suite") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "in.yaml") {
                cases.push(p);
            }
        }
    }
    cases.sort();
    assert!(
        cases.len() > 250,
        "the suite is there ({} cases)",
        cases.len()
    );
    let (mut exact, mut respelled, mut fallback, mut refused) = (0, 0, 0, 0);
    let mut misread = Vec::new();
    let mut reasons = std::collections::BTreeMap::new();
    for case in &cases {
        let id = case
            .parent()
            .expect("dir")
            .strip_prefix(&root)
            .expect("under root")
            .display()
            .to_string();
        let text = std::fs::read(case).expect("in.yaml");
        let json = std::fs::read(case.with_file_name("in.json")).expect("in.json");
        let want: Vec<serde_json::Value> = serde_json::Deserializer::from_slice(&json)
            .into_iter()
            .collect::<Result<_, _>>()
            .expect("in.json");
        let doc = match parse("t", Format::Yaml, text.clone()) {
            Ok(doc) => doc,
            Err(e) => {
                let e = e.to_string();
                let why = e.split(": ").last().unwrap_or_default().to_string();
                *reasons.entry(why).or_insert(0) += 1;
                refused += 1;
                continue;
            }
        };
        // coffer reads a document that is only comments or empty as an empty mapping.
        let got: Vec<Value> = doc
            .docs
            .iter()
            .map(|d| doc.plain_value(&d.root).expect("text"))
            .collect();
        let empty =
            |v: &serde_json::Value| v.is_null() || v.as_object().is_some_and(|o| o.is_empty());
        let want: Vec<&serde_json::Value> = want.iter().filter(|v| !empty(v)).collect();
        let got: Vec<&Value> = got
            .iter()
            .filter(|v| !matches!(v, Value::Map(e) if e.is_empty()))
            .collect();
        let difference = if got.len() != want.len() {
            Some(format!(
                "{} documents where {} were written",
                got.len(),
                want.len()
            ))
        } else {
            got.iter().zip(&want).find_map(|(g, w)| json_differs(g, w))
        };
        if let Some(d) = difference {
            misread.push(format!("{id}: {d}"));
            continue;
        }
        match trip(Format::Yaml, &text).outcome {
            Outcome::Exact => exact += 1,
            Outcome::Fallback(note) if note.is_empty() => respelled += 1,
            Outcome::Fallback(_) => fallback += 1,
            Outcome::Refused(m) => {
                *reasons.entry(m).or_insert(0) += 1;
                refused += 1
            }
        }
    }
    for (why, n) in &reasons {
        eprintln!("  refused {n}: {why}");
    }
    eprintln!(
        "yaml-test-suite: {} cases: {exact} kept byte for byte, {respelled} respelled, {fallback} in the canonical layout, {refused} refused, {} misread",
        cases.len(),
        misread.len()
    );
    assert!(misread.is_empty(), "misread:\n{}", misread.join("\n"));
    assert_eq!(respelled, 0, "layouts changed without a word");
}
