//! `compare`: whether an encrypted text holds a plaintext, told walking it. It says
//! "same" only where opening the text whole gives that plaintext byte for byte, and
//! "differs" only where it does not; the rest is "unknown", for the whole opening.

use super::*;

/// What `compare` says of `encrypted` against `plain`, checked against opening
/// `encrypted` whole; `None` where `plain` does not parse.
fn said(format: Format, encrypted: &[u8], plain: &str) -> Option<&'static str> {
    let doc = parse("t", format, plain.as_bytes().to_vec()).ok()?;
    let said = compare_with("t", format, encrypted, &doc, |_| Ok(key())).expect("a key");
    let whole = read_metadata("t", format, encrypted.to_vec())
        .and_then(|(d, meta, _)| open_with_key("t", format, d, meta, key(), Default::default()))
        .and_then(|opened| opened.holds(plain.as_bytes()));
    let name = match said {
        Compared::Same => "same",
        Compared::Differs(_) => "differs",
        Compared::Unknown => "unknown",
    };
    match (name, &whole) {
        ("same", Ok(true)) | ("differs", Ok(false)) | ("unknown", _) => {}
        (name, whole) => panic!(
            "compare says {name}, opening it whole {:?}\n{plain}\n{}",
            whole.as_ref().map_err(ToString::to_string),
            String::from_utf8_lossy(encrypted)
        ),
    }
    Some(name)
}

/// Each case: a plaintext against `text`'s encryption, and what `compare` must say.
fn table(format: Format, text: &str, cases: &[(&str, String, &str)]) {
    let (_, encrypted) = sealed(format, text);
    assert_eq!(
        said(format, encrypted.as_bytes(), text),
        Some("same"),
        "{text}"
    );
    for (what, plain, want) in cases {
        assert!(plain != text, "{what}: the case changes nothing");
        assert_eq!(
            said(format, encrypted.as_bytes(), plain),
            Some(*want),
            "{what}\n{plain}"
        );
    }
}

#[test]
fn yaml_is_told_same_differing_or_unknown() {
    let text = "# head\na: secret-a\nb:\n  c: secret-c # after c\n  d:\n  - one\n  - two\ne: 5\nf_unencrypted: clear\n";
    let r = |from: &str, to: &str| text.replacen(from, to, 1);
    table(
        Format::Yaml,
        text,
        &[
            ("a value", r("secret-a", "secret-A"), "differs"),
            ("a value's type", r("e: 5", "e: '5'"), "differs"),
            ("a value in clear", r(": clear", ": other"), "differs"),
            ("a key", r("  c:", "  x:"), "differs"),
            ("a key added", r("e: 5\n", "e: 5\nz: 1\n"), "differs"),
            ("a key removed", r("e: 5\n", ""), "differs"),
            (
                "an item added",
                r("  - two\n", "  - two\n  - three\n"),
                "differs",
            ),
            (
                "a mapping made a list",
                r(
                    "b:\n  c: secret-c # after c\n  d:\n  - one\n  - two\n",
                    "b:\n- x\n",
                ),
                "differs",
            ),
            ("a comment", r("# head", "# other"), "differs"),
            ("a comment removed", r(" # after c", ""), "differs"),
            // The same data written another way: the layout is the whole opening's.
            ("a value quoted", r("secret-a", "'secret-a'"), "unknown"),
            ("a blank line", r("e: 5\n", "\ne: 5\n"), "unknown"),
            ("spaces", r("a: secret-a", "a:  secret-a"), "unknown"),
            // Past a difference the text is read on; a plaintext that does not read
            // as the walk reads is the whole opening's.
            ("a flow collection", r("e: 5", "e: [5]"), "differs"),
        ],
    );
    // Flow collections, read by saphyr where the quick reader declines them.
    let text = "ports: [80, 443] # web\n# users\nuser: {name: app, pass: secret-p, roles: [r1, \"r 2\"]}\nn: 1\n";
    let r = |from: &str, to: &str| text.replacen(from, to, 1);
    table(
        Format::Yaml,
        text,
        &[
            ("a value in it", r("secret-p", "secret-P"), "differs"),
            ("an item added", r("443]", "443, 8080]"), "differs"),
            ("a comment", r("# users", "# people"), "differs"),
            ("a value quoted", r("r1", "'r1'"), "unknown"),
            ("spaces", r("[80, 443]", "[80,  443]"), "unknown"),
        ],
    );
    // Block scalars, as a certificate or a script stands in a file: each value is
    // written under its own header and indentation, and compared as it is made.
    let text = "# tls\ncert: |\n  -----BEGIN-----\n  abc # not a comment\n  -----END-----\nkey: |-\n    one\n    two\n# after\nnote: >\n  one line\nnested:\n  script: >-\n    run it\n  n: 1\n";
    let r = |from: &str, to: &str| text.replacen(from, to, 1);
    table(
        Format::Yaml,
        text,
        &[
            ("a line of a block", r("  abc", "  abd"), "differs"),
            (
                "a line added",
                r("    two\n", "    two\n    three\n"),
                "differs",
            ),
            ("the chomping", r("key: |-", "key: |"), "differs"),
            ("a folded line", r("run it", "run them"), "differs"),
            ("a comment after", r("# after", "# later"), "differs"),
            (
                "a block made plain",
                r(">-\n    run it", "run it"),
                "unknown",
            ),
            (
                "a block's line break lost",
                r(">\n  one line", "one line"),
                "differs",
            ),
            (
                "its indentation",
                r("    one\n    two", "  one\n  two"),
                "unknown",
            ),
            ("a blank line in it", r("  abc", "\n  abc"), "differs"),
            (
                "a blank line after it",
                r("    two\n", "    two\n\n"),
                "unknown",
            ),
        ],
    );
    // Tags of another schema stay before the ciphertext (CloudFormation's, Ansible's).
    let text = "a: !Ref secret-a\nb: !Sub x-${y}\n";
    let r = |from: &str, to: &str| text.replacen(from, to, 1);
    table(
        Format::Yaml,
        text,
        &[
            ("a tagged value", r("secret-a", "secret-A"), "differs"),
            ("a tag dropped", r("!Sub ", ""), "differs"),
            (
                "a tag's spacing",
                r("!Ref secret", "!Ref  secret"),
                "differs",
            ),
        ],
    );
    // A text the walk does not read to its end is never told by it, whatever differs
    // before the part it does not read.
    let text = "a: secret-a\nb: [1, # one\n  2]\n";
    let (_, encrypted) = sealed(Format::Yaml, text);
    for plain in [text.to_string(), text.replacen("secret-a", "x", 1)] {
        assert_eq!(
            said(Format::Yaml, encrypted.as_bytes(), &plain),
            Some("unknown")
        );
    }
}

#[test]
fn json_dotenv_and_ini_are_told_same_differing_or_unknown() {
    let json = "{\n  \"a\": \"secret-a\",\n  \"b\": {\n    \"c\": [1, true, null]\n  }\n}\n";
    let r = |from: &str, to: &str| json.replacen(from, to, 1);
    table(
        Format::Json,
        json,
        &[
            ("a value", r("secret-a", "secret-A"), "differs"),
            ("a type", r("true", "\"true\""), "differs"),
            ("a key", r("\"c\"", "\"x\""), "differs"),
            ("an item added", r("null]", "null, 2]"), "differs"),
            ("indentation", r("  \"a\"", "    \"a\""), "differs"),
        ],
    );
    let dotenv = "# settings\nA=secret-a\nB=secret-b\n";
    let r = |from: &str, to: &str| dotenv.replacen(from, to, 1);
    table(
        Format::Dotenv,
        dotenv,
        &[
            ("a value", r("secret-b", "secret-B"), "differs"),
            ("a key", r("B=", "C="), "differs"),
            (
                "a line added",
                r("B=secret-b\n", "B=secret-b\nC=1\n"),
                "differs",
            ),
            ("a comment", r("# settings", "# other"), "differs"),
        ],
    );
    let ini = "[db]\nuser = app\npassword = secret-p\n\n[api]\nkey = secret-k\n";
    let r = |from: &str, to: &str| ini.replacen(from, to, 1);
    table(
        Format::Ini,
        ini,
        &[
            ("a value", r("secret-k", "secret-K"), "differs"),
            ("a section", r("[api]", "[web]"), "differs"),
            ("a key", r("user =", "name ="), "differs"),
            ("spaces", r("user = app", "user =  app"), "differs"),
        ],
    );
}

/// What is not the plaintext's encryption as written is never told "same": a MAC or a
/// value altered, the metadata moved.
#[test]
fn an_altered_text_is_never_the_same() {
    let text = "a: secret-a\nb: secret-b\n";
    let (_, good) = sealed(Format::Yaml, text);
    let mac_at = good.find("mac: ENC[AES256_GCM,data:").expect("mac") + 30;
    let data_at = good.find("a: ENC[AES256_GCM,data:").expect("a") + 25;
    for (what, altered) in [
        ("the MAC", flipped(&good, mac_at)),
        ("a value", flipped(&good, data_at)),
        (
            "the metadata in a document of its own",
            good.replacen("\nsops:", "\n---\nsops:", 1),
        ),
    ] {
        assert_eq!(
            said(Format::Yaml, altered.as_bytes(), text),
            Some("unknown"),
            "{what}"
        );
    }
}

/// `encrypted` (of `text`, parsed as `doc`) against `text` itself ("same" wherever the
/// walked check takes it) and against `text` with the byte at `at` made `to`.
fn itself_and_changed(
    format: Format,
    doc: &Document,
    encrypted: &[u8],
    text: &str,
    at: prop::sample::Index,
    to: u8,
) -> Result<(), TestCaseError> {
    // Taken byte for byte (a text relaid is a new version).
    let taken = walked_matches_whole(format, doc, encrypted)[0] == Some(None);
    let itself = said(format, encrypted, text);
    prop_assert!(!taken || itself == Some("same"), "{:?}\n{}", itself, text);
    let mut changed = text.as_bytes().to_vec();
    if !changed.is_empty() {
        let i = at.index(changed.len());
        changed[i] = to;
    }
    if let Ok(changed) = String::from_utf8(changed) {
        said(format, encrypted, &changed);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(200)
    ))]

    /// Generated YAML against its encryption, and against itself with a byte changed:
    /// "same" and "differs" only where opening it whole agrees, and "same" for the
    /// plaintext itself wherever the walked check takes its encryption.
    #[test]
    fn generated_yaml_is_compared_as_the_whole_opening_finds(
        tree in g_tree(),
        layout in g_layout(),
        at in any::<prop::sample::Index>(),
        to in prop::sample::select(vec![b'x', b' ', b'\n', b':', b'#', b'-', b'\'']),
    ) {
        let (text, ..) = yaml_doc(&tree, &layout);
        let Ok(doc) = parse("t", Format::Yaml, text.as_bytes().to_vec()) else {
            return Ok(());
        };
        let Ok(sealed) = encrypt_document(Format::Yaml, "t", &doc, &key(), &mut metadata()) else {
            return Ok(());
        };
        itself_and_changed(Format::Yaml, &doc, &sealed.bytes, &text, at, to)?;
    }

    /// The same for dotenv, INI and JSON.
    #[test]
    fn generated_flat_files_and_json_are_compared_as_the_whole_opening_finds(
        lines in prop::collection::vec((0u8..4, "[ -~]{0,12}"), 0..12),
        tree in g_tree(),
        at in any::<prop::sample::Index>(),
        to in prop::sample::select(vec![b'x', b' ', b'\n', b'=', b'#', b'"', b'[']),
    ) {
        let mut texts = [Format::Dotenv, Format::Ini]
            .map(|f| (f, flat_doc(f, &lines, false, true).0))
            .to_vec();
        let mut n = 0;
        let mut json = String::new();
        let root = match json_value(&tree, &mut n, &mut Vec::new(), false) {
            Value::Map(m) if !m.is_empty() => Value::Map(m),
            other => Value::Map(vec![("root".into(), other)]),
        };
        crate::format::json::json(&mut json, &root, Some("  "), 0);
        texts.push((Format::Json, json));
        for (format, text) in texts {
            let (doc, sealed) = sealed(format, &text);
            itself_and_changed(format, &doc, sealed.as_bytes(), &text, at, to)?;
        }
    }
}
