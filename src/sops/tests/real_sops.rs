//! The real sops over generated files: it reads what coffer wrote as coffer does.

use super::*;

// ---- The real sops over generated files ------------------------------------------------

/// The sops binary of the test tools (scripts/test installs it and names it).
pub(super) fn sops_binary() -> std::path::PathBuf {
    let p = std::env::var_os("COFFER_TEST_SOPS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/sops"));
    assert!(
        p.exists(),
        "sops not found at {}: run scripts/test",
        p.display()
    );
    p
}

/// What the real sops reads from an encrypted file: `sops decrypt --output-type TYPE`.
pub(super) fn sops_decrypt(
    sops: &std::path::Path,
    dir: &std::path::Path,
    name: &str,
    to: &str,
) -> Result<String, String> {
    let out = std::process::Command::new(sops)
        .args(["decrypt", "--output-type", to, name])
        .env_clear()
        .env("HOME", dir)
        .env("SOPS_AGE_KEY_FILE", dir.join("key.txt"))
        .env("SOPS_DISABLE_VERSION_CHECK", "1")
        .current_dir(dir)
        .output()
        .expect("sops runs");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    String::from_utf8(out.stdout).map_err(|e| e.to_string())
}

/// sops's JSON, parsed, without the empty `DEFAULT` section go-ini always has.
pub(super) fn sops_json(text: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(text).expect("sops prints JSON");
    if let Some(o) = v.as_object_mut() {
        if o.get("DEFAULT")
            .is_some_and(|d| d.as_object().is_some_and(|d| d.is_empty()))
        {
            o.remove("DEFAULT");
        }
    }
    v
}

/// `v` with every number a float and every boolean spelled one way.
pub(super) fn normalized(v: &Value) -> Value {
    match v {
        Value::Map(e) => Value::Map(e.iter().map(|(k, v)| (k.clone(), normalized(v))).collect()),
        Value::Seq(items) => Value::Seq(items.iter().map(normalized).collect()),
        Value::Scalar(ScalarType::Int | ScalarType::Float, s) => {
            let f = scalar::parse_float(s).or_else(|| scalar::parse_float(&stored_float(s)));
            Value::Scalar(
                ScalarType::Float,
                Zeroizing::new(f.map_or_else(|| s.to_string(), scalar::format_float)),
            )
        }
        Value::Scalar(ScalarType::Bool, s) => Value::Scalar(
            ScalarType::Bool,
            Zeroizing::new(scalar::parse_bool(s).map_or_else(|| s.to_string(), |b| b.to_string())),
        ),
        other => other.clone(),
    }
}

/// A YAML float spelling (`.inf`) as Go spells it.
pub(super) fn stored_float(s: &str) -> String {
    crate::format::yaml_resolve::stored_form(ScalarType::Float, s)
}

/// The real sops reads every generated file coffer writes as coffer meant it: YAML of
/// every style, JSON with escapes, dotenv and INI with quoting, a few dozen of each (a
/// sops process per case, so fewer than the other generated tests).
#[test]
pub(super) fn the_real_sops_reads_generated_files_as_coffer_wrote_them() {
    use proptest::test_runner::{Config, TestRunner};
    let sops = sops_binary();
    let dir = tempfile::tempdir().expect("temp dir");
    let id = age::x25519::Identity::generate();
    let secret = secrecy::ExposeSecret::expose_secret(&id.to_string()).to_string();
    std::fs::write(dir.path().join("key.txt"), secret).expect("key");
    let recipient = id.to_public().to_string();
    let cases = std::env::var("SOPS_DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let runner = || {
        TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        })
    };
    let keyring = {
        let sources = crate::keys::age::IdentitySources {
            files: vec![dir.path().join("key.txt")],
            ..Default::default()
        };
        let age = crate::keys::age::AgeKeys::load(&sources).expect("the identity loads");
        crate::keys::Keyring::new(vec![Box::new(age)])
    };
    let check = |format: Format, text: &str, want: &Value| {
        let doc = parse("t", format, text.as_bytes().to_vec())
            .unwrap_or_else(|e| panic!("valid input refused: {e}\n{text}"));
        let mut md = metadata();
        md.age
            .push(crate::keys::age::wrap(key().expose(), &recipient).expect("wraps"));
        let sealed = encrypt_document(format, "t", &doc, &key(), &mut md)
            .unwrap_or_else(|e| panic!("refused: {e}\n{text}"));
        let name = format!(
            "t.{}",
            match format {
                Format::Yaml => "yaml",
                Format::Json => "json",
                Format::Dotenv => "env",
                _ => "ini",
            }
        );
        std::fs::write(dir.path().join(&name), &*sealed.bytes).expect("written");
        match sops_decrypt(&sops, dir.path(), &name, "json") {
            Ok(read) => {
                if let Some(d) = json_differs(want, &sops_json(&read)) {
                    panic!("sops reads another value: {d}\n{text}");
                }
            }
            // JSON has no infinity: sops's YAML then, read by coffer's YAML reader.
            Err(e) if e.contains("unsupported value") => {
                let read = sops_decrypt(&sops, dir.path(), &name, "yaml")
                    .unwrap_or_else(|e| panic!("sops cannot open coffer's file: {e}\n{text}"));
                let back = parse("sops", Format::Yaml, read.into_bytes()).expect("sops's YAML");
                let got = back.plain_value(&back.docs[0].root).expect("text values");
                // go-yaml writes an integral float without its point (`2500`).
                if let Err(d) = same_tree(&normalized(&got), &normalized(want)) {
                    panic!("sops reads another value: {d}\n{text}");
                }
            }
            Err(e) => panic!("sops cannot open coffer's file: {e}\n{text}"),
        }
        // And the other way: coffer reads what sops wrote for the same input (sops
        // refuses some inputs coffer takes: then there is nothing to read).
        let input = format!("in.{name}");
        std::fs::write(dir.path().join(&input), text).expect("written");
        let out = std::process::Command::new(&sops)
            .args(["encrypt", "--age", &recipient, &input])
            .env_clear()
            .env("HOME", dir.path())
            .env("SOPS_DISABLE_VERSION_CHECK", "1")
            .current_dir(dir.path())
            .output()
            .expect("sops runs");
        if out.status.success() {
            let opened = open("s", format, out.stdout, &keyring, OpenOptions::default())
                .unwrap_or_else(|e| panic!("coffer cannot open sops's file: {e}\n{text}"));
            let got = opened.value(&opened.doc.docs[0].root).expect("values");
            if let Err(d) = same_tree(&normalized(&got), &normalized(want)) {
                panic!("coffer reads sops's file otherwise: {d}\n{text}");
            }
        }
    };
    runner()
        .run(&(g_tree(), g_layout()), |(tree, layout)| {
            let (text, want, _, _) = yaml_doc(&tree, &layout);
            check(Format::Yaml, &text, &want);
            Ok(())
        })
        .unwrap();
    runner()
        .run(&(g_tree(), any::<bool>()), |(tree, escapes)| {
            let mut n = 0;
            let value = json_value(&tree, &mut n, &mut Vec::new(), escapes);
            let root = match value {
                Value::Map(_) => value,
                other => Value::Map(vec![("root".into(), other)]),
            };
            let mut text = String::new();
            crate::format::json::json(&mut text, &root, Some("  "), 0);
            check(Format::Json, &text, &root);
            Ok(())
        })
        .unwrap();
    runner()
        .run(
            &prop::collection::vec((0u8..4, "[ -~]{0,12}"), 1..10),
            |lines| {
                for format in [Format::Dotenv, Format::Ini] {
                    let (text, want, _, _) = flat_doc(format, &lines, false, true);
                    check(format, &text, &want);
                }
                Ok(())
            },
        )
        .unwrap();
}
