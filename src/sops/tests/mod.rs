//! The write path against every construct the formats allow: table tests of what is
//! kept exactly, what falls back to the canonical layout and what is refused, property
//! tests over generated documents, and byte flips of encrypted files.

use proptest::prelude::*;
use zeroize::Zeroizing;

use super::verify::{Compare, Content};
use super::*;
use crate::tree::Value;

use crate::error::ErrorKind;

mod compare;
mod generated;
mod real_sops;
mod yaml_suite;

use crate::sops::OpenOptions;
use generated::*;
use yaml_suite::*;

pub(super) fn key() -> DataKey {
    DataKey::from_slice(&[9u8; 32]).expect("32 bytes")
}

pub(super) fn metadata() -> Metadata {
    Metadata {
        lastmodified: "2026-01-01T00:00:00Z".into(),
        version: Some(metadata::SOPS_VERSION.into()),
        ..Default::default()
    }
}

/// What writing `text` encrypted and reading it back gave.
pub(super) enum Outcome {
    /// Decrypts to the input byte for byte.
    Exact,
    /// Written in the canonical layout; the warning.
    Fallback(String),
    /// Refused; the message.
    Refused(String),
}

pub(super) struct Trip {
    pub(super) outcome: Outcome,
    pub(super) encrypted: Vec<u8>,
}

/// Encrypt `text`, open the result with the data key, render its plaintext, and check
/// the invariants every write must keep whatever the outcome.
pub(super) fn trip(format: Format, text: &[u8]) -> Trip {
    let refused = |e: Error| {
        assert!(
            matches!(e.kind(), ErrorKind::Syntax | ErrorKind::EncryptedOrNot),
            "a refusal is a syntax or unsupported-input error, got {e}"
        );
        Trip {
            outcome: Outcome::Refused(e.to_string()),
            encrypted: Vec::new(),
        }
    };
    let doc = match parse("t", format, text.to_vec()) {
        Ok(d) => d,
        Err(e) => return refused(e),
    };
    let sealed = match encrypt_document(format, "t", &doc, &key(), &mut metadata()) {
        Ok(s) => s,
        Err(e) => return refused(e),
    };
    let (doc2, meta, _) = read_metadata("t", format, sealed.bytes.to_vec())
        .expect("what encrypt_document returns parses");
    let opened = open_with_key("t", format, doc2, meta, key(), OpenOptions::default())
        .expect("and opens with its key");
    let plain = opened.render().expect("and decrypts");
    let original = Content::of_plain(&doc);
    let back = parse("t", format, plain.bytes.to_vec()).expect("the plaintext parses");
    assert!(
        original
            .difference(
                &doc,
                &Content::of_plain(&back),
                Compare::Full,
                format == Format::Json
            )
            .is_none(),
        "the plaintext holds what the input held"
    );
    let outcome = match sealed.fallback.clone().or(plain.fallback) {
        None if *plain.bytes == text => Outcome::Exact,
        Some(note) => Outcome::Fallback(note),
        None => Outcome::Fallback(String::new()),
    };
    Trip {
        outcome,
        encrypted: sealed.bytes.to_vec(),
    }
}

pub(super) fn exact(format: Format, text: &str) {
    match trip(format, text.as_bytes()).outcome {
        Outcome::Exact => {}
        Outcome::Fallback(n) => panic!("{text:?}: fell back: {n}"),
        Outcome::Refused(m) => panic!("{text:?}: refused: {m}"),
    }
}

/// Kept as data, in another spelling (`\u00e9` for `é`), and said: never silently.
pub(super) fn respelled(format: Format, text: &str) {
    match trip(format, text.as_bytes()).outcome {
        Outcome::Fallback(n) => assert!(
            n.contains("will decrypt to the same value") && n.contains("written another way"),
            "{text:?}: warning {n:?}"
        ),
        Outcome::Exact => panic!("{text:?}: kept exactly"),
        Outcome::Refused(m) => panic!("{text:?}: refused: {m}"),
    }
}

/// At most the start of a long text, for messages.
pub(super) fn head(text: &str) -> &str {
    &text[..text.char_indices().nth(300).map_or(text.len(), |(i, _)| i)]
}

pub(super) fn fallback(format: Format, text: &str, note: &str) {
    match trip(format, text.as_bytes()).outcome {
        Outcome::Fallback(n) => assert!(n.contains(note), "{text:?}: warning {n:?}"),
        Outcome::Exact => panic!("{text:?}: kept exactly, a fallback was expected"),
        Outcome::Refused(m) => panic!("{text:?}: refused: {m}"),
    }
}

pub(super) fn refused(format: Format, text: &str, message: &str) {
    let text_head = head(text);
    match trip(format, text.as_bytes()).outcome {
        Outcome::Refused(m) => assert!(m.contains(message), "{text_head:?}: message {m:?}"),
        Outcome::Exact => panic!("{text_head:?}: accepted, a refusal was expected"),
        Outcome::Fallback(n) => panic!("{text_head:?}: fell back ({n}), a refusal was expected"),
    }
}

#[test]
pub(super) fn yaml_constructs_kept_exactly() {
    for text in [
        "a: 1\nb: two\n",
        "a: 1\nb: two",
        "# head\na: x # trailing\n\n# foot\n",
        "a:\n  b:\n    c: deep\n  d: [1, 2]\n",
        "nested: {x: 1, y: [a, b]}\n",
        "l:\n  - a\n  - {k: v}\n  - - x\n    - y\n",
        "lit: |\n  line1\n  line2\nnext: 1\n",
        "strip: |-\n  line1\n  line2\nnext: 1\n",
        "keep: |+\n  line1\n\nnext: 1\n",
        "end: |\n  line1\n  line2\n",
        // A root mapping indented under `---`: the metadata goes at its keys' column.
        "---\n  a: 1\n\n  b:\n    c: [x, y]\n",
        // CloudFormation's tags before flow sequences, and an empty tagged value.
        "zone: !Select [ 0, !GetAZs ]\ncond: !Equals [ !Ref Env, prod ]\n",
        // A block keeps its header and indentation, around one line of ciphertext.
        "one: |-\n  one line\nnext: 1\n",
        "folded: >\n    one folded line\nstrip: >-\n  x\n",
        "l:\n  - |+\n    kept\n\n  - |\n      deeper\n",
        "q: 'single # not a comment'\nd: \"tab\\tnew\\nline\"\n",
        "u: ünïcödé 日本\n",
        "t: 2024-01-02T03:04:05Z\n",
        "f: 1.5e+10\ng: 0.25\ni: -7\nb: true\nn: null\n",
        "a: 1\r\nb: two\r\n",
        "---\na: 1\n",
        "a: 1\n---\nb: 2\n",
    ] {
        exact(Format::Yaml, text);
    }
}

#[test]
pub(super) fn yaml_constructs_that_fall_back_name_what_was_not_kept() {
    fallback(
        Format::Yaml,
        "{\"password\": \"x\", \"n\": 1}\n",
        "flow mapping at line 1",
    );
    fallback(Format::Yaml, "{a: 1,\n b: 2}\n", "flow mapping at line 1");
    fallback(
        Format::Yaml,
        "lit: | # why\n  a\nnext: 1\n",
        "a comment after a block scalar's indicator at line 1",
    );
    fallback(
        Format::Yaml,
        "list:\n-\titem\n",
        "a tab after `-`, `?` or `:`, or in indentation (sops cannot read it) at line 2",
    );
}

#[test]
pub(super) fn yaml_block_scalars_at_the_end_without_a_line_break_keep_their_value() {
    // Without a final line break a block's value has none either (YAML 1.2, 8.1.1.2),
    // so `|` and `|+` there come back as `|-`, which says the same.
    respelled(Format::Yaml, "a: 1\nlit: |\n  line1\n  last");
    respelled(Format::Yaml, "a: 1\nlit: |+\n  line1\n  last");
    exact(Format::Yaml, "a: 1\nlit: |-\n  line1\n  last");
    // A kept block of blank lines only has no line to indent by: quoted, the rest kept.
    respelled(Format::Yaml, "a:\n  - |+\n\n  - x\n");
}

#[test]
pub(super) fn yaml_inputs_refused_with_their_line() {
    refused(
        Format::Yaml,
        "? [k1]\n: v1\nother: v2\n",
        "line 1, column 3: complex mapping keys",
    );
    refused(
        Format::Yaml,
        "[a, b]: v\nz: secret\n",
        "complex mapping keys",
    );
    refused(
        Format::Yaml,
        "big: 123456789012345678901234567890\n",
        "64 bits",
    );
    refused(
        Format::Yaml,
        "sops: x\na: 1\n",
        "the key `sops` (line 1) is reserved",
    );
    refused(Format::Yaml, "- a\n- b\n", "sequences are not supported");
    fallback(
        Format::Yaml,
        "a: &x 1\nb: *x\n",
        "a YAML alias (expanded into a copy, as sops reads it) at line 2",
    );
    // saphyr bounds flow nesting itself; block nesting is bounded by coffer.
    let flow = format!("a: {}1{}\n", "[".repeat(20_000), "]".repeat(20_000));
    refused(Format::Yaml, &flow, "recursion limit exceeded");
    let block: String = (0..20_000)
        .map(|i| format!("{}k:\n", " ".repeat(i)))
        .collect();
    refused(
        Format::Yaml,
        &format!("{block}{}v: 1\n", " ".repeat(20_000)),
        "nested more than 256 levels",
    );
}

#[test]
pub(super) fn json_constructs() {
    for text in [
        "{\"a\": 1, \"b\": \"two\"}",
        "{\n    \"a\": 1,\n    \"b\": [true, null, 1.5e10]\n}\n",
        "{\n\t\"a\": {\"b\": \"\\n\\\"q\\\"\"}\n}",
        "{}",
    ] {
        exact(Format::Json, text);
    }
    respelled(Format::Json, "{\"a\": \"caf\\u00e9\"}");
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(20_000), "]".repeat(20_000));
    refused(Format::Json, &deep, "nested more than 256 levels");
    refused(Format::Json, "{\"sops\": 1}", "reserved");
    refused(Format::Json, "{\"n\": 99999999999999999999}", "64 bits");
}

#[test]
pub(super) fn dotenv_and_ini_constructs() {
    for text in [
        "A=1\n# comment\n\nB=two words\nC=\n",
        "A=1\r\nB=x\r\n",
        "A=line\\nbreak",
        "# only a comment\n",
    ] {
        exact(Format::Dotenv, text);
    }
    for text in [
        "[s]\nk = v\n; c\nk2 = v2\n",
        "; only a comment\n",
        "top = 1\n[s]\n# hash comment\nk = v",
    ] {
        exact(Format::Ini, text);
    }
}

#[test]
pub(super) fn a_changed_type_tag_and_a_value_that_is_no_value_of_its_type_fail() {
    let open = |text: &str, ignore_mac: bool| {
        let (doc, meta, _) =
            read_metadata("t", Format::Yaml, text.as_bytes().to_vec()).expect("parses");
        open_with_key(
            "t",
            Format::Yaml,
            doc,
            meta,
            key(),
            OpenOptions::ignoring_mac(ignore_mac),
        )
        .err()
        .expect("refused")
    };
    // `"false"` → bool: the MAC sees `False` for `false` and fails, as in sops. `"True"`
    // and `"7"` hash the same as bool and int, but coffer's IVs name the type.
    for (plain, to) in [
        ("false", "bool"),
        ("True", "bool"),
        ("7", "int"),
        ("2024-01-02T03:04:05Z", "time"),
    ] {
        let t = trip(Format::Yaml, format!("a: \"{plain}\"\n").as_bytes());
        let text = String::from_utf8(t.encrypted).expect("text");
        let retyped = text.replacen("type:str", &format!("type:{to}"), 1);
        let err = open(&retyped, true);
        assert_eq!(err.kind(), ErrorKind::Integrity, "{plain}: {err}");
        assert!(
            err.to_string().contains("its type tag was changed"),
            "{plain}: {err}"
        );
    }
    // And back: values written typed, retagged as strings or bytes (only the types a
    // plaintext is a value of are tried, and each of these is its own).
    for (yaml, from, to) in [
        ("a: 7\n", "int", "str"),
        ("a: 1.5\n", "float", "bytes"),
        ("a: true\n", "bool", "str"),
        ("a: 2024-01-02T03:04:05Z\n", "time", "str"),
    ] {
        let t = trip(Format::Yaml, yaml.as_bytes());
        let text = String::from_utf8(t.encrypted).expect("text");
        assert!(text.contains(&format!("type:{from}]")), "{text}");
        let retyped = text.replacen(&format!("type:{from}]"), &format!("type:{to}]"), 1);
        let err = open(&retyped, true);
        assert!(
            err.to_string().contains("its type tag was changed"),
            "{yaml}: {err}"
        );
    }
    // A value whose plaintext is no value of its type (written so by hand).
    let t = trip(Format::Yaml, b"a: 1\n");
    let text = String::from_utf8(t.encrypted).expect("text");
    let start = text.find("ENC[").expect("a value");
    let end = start + text[start..].find(']').expect("its end") + 1;
    let forged = cipher::encrypt(&key(), "a:", ScalarType::Int, b"abc");
    let err = open(&format!("{}{forged}{}", &text[..start], &text[end..]), true);
    assert_eq!(err.kind(), ErrorKind::Integrity);
    assert!(err.to_string().contains("not a valid int"), "{err}");
}

#[test]
pub(super) fn metadata_twice_or_not_last_is_refused_on_read() {
    let t = trip(Format::Yaml, b"a: 1\n");
    let text = String::from_utf8(t.encrypted).expect("text");
    for bad in [format!("sops:\n  x: 1\n{text}"), format!("{text}z: 1\n")] {
        let err = read_metadata("t", Format::Yaml, bad.into_bytes())
            .err()
            .expect("refused");
        assert_eq!(err.kind(), ErrorKind::Syntax, "{err}");
    }
}

/// A block scalar whose owner stands past column 65,535, where a leaf's column
/// saturates, keeps its layout: the column places new block scalars only, and what
/// is placed wrong there does not read back, so it falls back, and says so.
#[test]
fn a_block_scalar_owned_past_the_columns_a_leaf_holds_keeps_its_layout() {
    let pad = " ".repeat(70_000);
    exact(
        Format::Yaml,
        &format!("a:\n{pad}b: |\n{pad}  one\n{pad}  two\n{pad}c: x\n"),
    );
}

// ---- The check itself --------------------------------------------------------------------

/// `good` (sops's YAML of `a: secret-a`, `b: …` and `c: {d: …}` in block style, whose
/// values a and b are encrypted as `a` and `b`) broken as a broken writer might.
fn broken_by_a_writer(good: &str, a: &str, b: &str) -> Vec<(&'static str, String)> {
    vec![
        ("a value left in clear", good.replacen(a, "secret-a", 1)),
        (
            "values swapped",
            good.replacen(a, "X", 1)
                .replacen(b, a, 1)
                .replacen("X", b, 1),
        ),
        ("a key renamed", good.replacen("\nb: ", "\nbb: ", 1)),
        (
            "an entry dropped",
            good.replacen(&format!("b: {b}\n"), "", 1),
        ),
        (
            "a nested value moved up",
            good.replacen("c:\n  d:", "c: {}\nd:", 1),
        ),
        (
            "the metadata dropped",
            good[..good.find("sops:").expect("metadata")].to_string(),
        ),
        ("the text cut", good[..good.len() / 2].to_string()),
    ]
}

/// What a broken writer could produce is caught by the check, whatever it is.
#[test]
fn the_check_rejects_what_a_broken_writer_would_write() {
    let text = "# head\na: secret-a\nb: secret-b\nc:\n  d: 1\n";
    let doc = parse("t", Format::Yaml, text.as_bytes().to_vec()).expect("parses");
    let expected = Content::of_plain(&doc);
    let good = String::from_utf8(trip(Format::Yaml, text.as_bytes()).encrypted).expect("text");
    let check = |bytes: &str| {
        verify::encrypted(
            "t",
            Format::Yaml,
            Zeroizing::new(bytes.as_bytes().to_vec()),
            &key(),
            &doc,
            &expected,
            false,
        )
        .map(|back| assert_eq!(&back.bytes[..], bytes.as_bytes(), "given back as it was"))
    };
    assert!(check(&good).is_ok());
    let value = |key: &str| {
        let line = good
            .lines()
            .find(|l| l.starts_with(&format!("{key}: ENC[")))
            .expect("line");
        line[key.len() + 2..].to_string()
    };
    let (a, b) = (value("a"), value("b"));
    let comment = good
        .lines()
        .find(|l| l.starts_with("#ENC["))
        .expect("comment")
        .to_string();
    let mut cases = broken_by_a_writer(&good, &a, &b);
    cases.extend([
        (
            "a comment left in clear",
            good.replacen(&comment, "# head", 1),
        ),
        (
            "a comment dropped",
            good.replacen(&format!("{comment}\n"), "", 1),
        ),
    ]);
    for (what, broken) in cases {
        assert!(
            check(&broken).is_err(),
            "{what} passed the check:\n{broken}"
        );
    }
}

#[test]
fn empty_comments_and_reserved_names() {
    exact(Format::Yaml, "a: 1\n#\nb: 2 #\n");
    exact(Format::Dotenv, "#\nA=1\n");
    exact(Format::Ini, ";\n[s]\nk = v\n");
    // A plaintext key named like the metadata is not metadata: refused, never taken for
    // an encrypted file (which git's clean filter would pass through in clear).
    for (format, text, line) in [
        (Format::Yaml, "a: 1\nsops:\n  note: hi\n", "line 2"),
        (
            Format::Json,
            "{\"a\": 1, \"sops\": {\"note\": \"hi\"}}",
            "line 1",
        ),
        (Format::Dotenv, "A=1\nsops_note=hi\n", "line 2"),
        (Format::Ini, "[s]\nk = v\n[sops]\nnote = hi\n", "line 3"),
    ] {
        assert!(!format.store().is_encrypted(text.as_bytes()), "{text:?}");
        refused(
            format,
            text,
            &format!("the key `sops` ({line}) is reserved"),
        );
    }
}

#[test]
fn metadata_names_are_bounded_and_placed_as_sops_places_them() {
    for (format, text, message) in [
        (
            Format::Dotenv,
            "A=1\nsops_a__list_99999999=1\n",
            "list index over 1000",
        ),
        (
            Format::Dotenv,
            &format!("A=1\nsops_{}=1\n", "a__map_".repeat(300)),
            "nested too deep",
        ),
        (Format::Dotenv, "sops_version=1\nA=1\n", "not at the end"),
        (
            Format::Dotenv,
            "A=1\nsops_version=1\nsops_version=2\n",
            "there twice",
        ),
        (
            Format::Ini,
            "[sops]\nversion = 1\n[s]\nk = v\n",
            "not the last one",
        ),
    ] {
        let err = parse("t", format, text.as_bytes().to_vec())
            .err()
            .expect("refused");
        assert!(err.to_string().contains(message), "{text:?}: {err}");
    }
}

#[test]
fn conversions_that_would_change_a_value_are_refused() {
    let t = trip(Format::Yaml, b"a: 'x\\ny'\nb: .5\n");
    let (doc, meta, _) = read_metadata("t", Format::Yaml, t.encrypted).expect("parses");
    let opened =
        open_with_key("t", Format::Yaml, doc, meta, key(), OpenOptions::default()).expect("opens");
    // dotenv reads `\n` back as a line break: refused rather than changed.
    let err = opened.convert(Format::Dotenv).expect_err("refused");
    assert!(
        err.to_string()
            .contains("cannot be converted so that it reads back"),
        "{err}"
    );
    // JSON cannot spell `.5`: the same float in Go's form.
    let json = opened.convert(Format::Json).expect("converts");
    assert!(
        String::from_utf8_lossy(&json).contains("\"b\": 0.5"),
        "{}",
        String::from_utf8_lossy(&json)
    );
}

/// Encrypted files are found by content: a sops binary file is `{data, sops}` only, and a
/// structured file with an unknown extension is read as the structure it is (rotating it
/// as binary would keep only its `data` value).
#[test]
fn encrypted_files_are_detected_by_content() {
    let sealed = |format: Format, text: &str| {
        let mut md = metadata();
        encrypt_plain("t", format, text.as_bytes().to_vec(), &key(), &mut md)
            .expect("encrypts")
            .bytes
            .to_vec()
    };
    let detect =
        |name: &str, bytes: &[u8]| crate::format::detect(std::path::Path::new(name), bytes);
    let binary = sealed(Format::Binary, "raw\u{1}bytes");
    assert_eq!(detect("blob", &binary), Some(Format::Binary));
    assert_eq!(detect("blob.json", &binary), Some(Format::Json));
    let json = sealed(Format::Json, "{\"data\": \"x\", \"other\": \"y\"}\n");
    assert_eq!(detect("secrets.json.enc", &json), Some(Format::Json));
    let yaml = sealed(Format::Yaml, "data: x\n");
    assert_eq!(detect("config", &yaml), Some(Format::Yaml));
    assert_eq!(
        detect("app.env", &sealed(Format::Dotenv, "A=1\n")),
        Some(Format::Dotenv)
    );
    assert_eq!(detect("plain.yaml", b"sops: is just a word here\n"), None);
    assert_eq!(detect("notes.txt", b"nothing"), None);
}

/// Opening plans, decrypts (on every core) and hashes values a block of 65,536 at a
/// time: a file of more values opens whole, and a value altered past the first block
/// is named, as one in the first would be.
#[test]
fn values_past_the_first_block_open_and_are_checked() {
    let n = 70_000;
    let text: String = (0..n).map(|i| format!("k{i}: v{i}\n")).collect();
    let key = key();
    let sealed = encrypt_plain(
        "big.yaml",
        Format::Yaml,
        text.as_bytes().to_vec(),
        &key,
        &mut metadata(),
    )
    .expect("encrypts");
    let open = |bytes: Vec<u8>| {
        let (doc, meta, _) = read_metadata("big.yaml", Format::Yaml, bytes)?;
        open_with_key(
            "big.yaml",
            Format::Yaml,
            doc,
            meta,
            key.clone(),
            OpenOptions::default(),
        )
    };
    let opened = open(sealed.bytes.to_vec()).expect("opens");
    assert_eq!(&opened.plaintext().expect("renders")[..], text.as_bytes());
    // Another value's ciphertext in the place of k68000's: its tag holds, its path does not.
    let enc = String::from_utf8(sealed.bytes.to_vec()).expect("text");
    let line = |k: &str| {
        enc.lines()
            .find(|l| l.starts_with(&format!("{k}: ")))
            .expect("the key")
            .to_string()
    };
    let (late, other) = (line("k68000"), line("k3"));
    let swapped = enc.replace(&late, &format!("k68000: {}", &other["k3: ".len()..]));
    let err = open(swapped.into_bytes()).err().expect("refused");
    assert!(err.to_string().contains("k68000"), "{err}");
}

/// Whether the walked check of `output` (encrypted from `source`) agrees with the whole
/// check: it may decline, but what it passes the whole check passes, with the same
/// answer about the bytes. What it said.
pub(super) fn walked_matches_whole(
    format: Format,
    source: &Document,
    output: &[u8],
) -> [Option<Option<usize>>; 2] {
    let expected = Content::of_plain(source);
    [true, false].map(|byte_for_byte| {
        let walked =
            verify::walked::encrypted("t", format, output, &key(), &expected, byte_for_byte);
        let whole = verify::whole(
            "t",
            format,
            Zeroizing::new(output.to_vec()),
            &key(),
            source,
            &expected,
            byte_for_byte,
        );
        if let Some(differs_at) = walked {
            match whole {
                Ok(checked) => assert_eq!(
                    checked.differs_at,
                    differs_at,
                    "the two checks place the difference apart\n{}",
                    String::from_utf8_lossy(output)
                ),
                Err(e) => panic!(
                    "the walked check passed what the whole check refuses ({e})\n{}",
                    String::from_utf8_lossy(output)
                ),
            }
        }
        walked
    })
}

/// The plainest YAML is checked walked; what is not plain enough, or not written as it
/// stood, or broken in any of the ways a broken writer might break it, is the whole
/// check's.
#[test]
fn the_walked_check_takes_the_plainest_output_and_nothing_amiss() {
    let taken = |text: &str| {
        let doc = parse("t", Format::Yaml, text.as_bytes().to_vec()).expect("parses");
        let sealed =
            encrypt_document(Format::Yaml, "t", &doc, &key(), &mut metadata()).expect("encrypts");
        let said = walked_matches_whole(Format::Yaml, &doc, &sealed.bytes);
        (said[0].is_some(), said[1].is_some())
    };
    let plain = "a: 1\nb:\n  c: x\n  d:\n  - 'two'\n  - \"three\"\n  - ~\n  - ''\ne: true\nf_unencrypted: clear\n";
    assert_eq!(taken(plain), (true, true), "{plain}");
    for text in [
        "---\na: 1\n",
        "a: {}\nb: []\nc:\nd: 1.5\n",
        "a:\n- b: 1\n  c: 2\n",
        "a:\n- x\n- y\n",
    ] {
        assert_eq!(taken(text), (true, true), "{text}");
    }
    // Comments: where the source's stood, so only with the bytes compared.
    for text in [
        "# note\na: 1\n",
        "a: 1 # note\n",
        "a:\n  # in a\n  b: 1\n    # deeper\nc:\n- 1\n# at the root\n- 2 #\n",
    ] {
        assert_eq!(taken(text), (true, false), "{text}");
    }
    // Block scalars, each value under its own header and indentation; flow collections
    // (read by saphyr, where the quick reader declines them).
    for text in [
        "a: |\n  x\n  y\nb: |-\n    z\nc:\n  d: >\n   w\n",
        "a: >-\n  one line\n",
        "a:\n- |\n  x\n",
        "a: |+\n  x\n\n",
        "a: [1, 2]\nb: {c: x, d: [y, \"z\"]}\n",
        "a: !t x\nb: !Ref y\nc: [!Sub z]\n",
    ] {
        assert_eq!(taken(text), (true, true), "{text}");
    }
    // Comments after the last value, which sops writes after the metadata, are read
    // there (where the output is the source's bytes, as any comment).
    assert_eq!(taken("a: 1\n# last\n#\n# one more\n"), (true, false));
    // Not read walked: a second document, a comment in a flow collection or after one
    // nested in another (placed by columns).
    for text in [
        "a: 1\n---\nb: 2\n",
        "a: [1, # one\n  2]\n",
        "a: {b: [1]}\n# c\nd: 1\n",
    ] {
        assert_eq!(taken(text), (false, false), "{text}");
    }
    // Values kept, bytes not (`0x1F` decrypts as `31`; folded lines decrypt as one;
    // an alias is written out): the walk places the first difference where the whole
    // check does. With a comment, placed by its lines and columns, the whole check.
    assert_eq!(taken("a: 0x1F\nb: x\n"), (true, true));
    assert_eq!(taken("a: >\n  folded\n  lines\n"), (true, true));
    assert_eq!(taken("a: &x 1\nb: *x\n"), (true, true));
    assert_eq!(taken("a: !!str 5\nb: !!int '7'\n"), (true, true));
    assert_eq!(taken("# note\na: 0x1F\nb: x\n"), (false, false));

    let text = "a: secret-a\nb: secret-b\nc:\n  d: 1\n  e:\n  - secret-e\n";
    let doc = parse("t", Format::Yaml, text.as_bytes().to_vec()).expect("parses");
    let good = String::from_utf8(trip(Format::Yaml, text.as_bytes()).encrypted).expect("text");
    assert_eq!(
        walked_matches_whole(Format::Yaml, &doc, good.as_bytes()),
        [Some(None), Some(None)]
    );
    let value = |key: &str| {
        let line = good
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{key}: ENC[")))
            .expect("line");
        line.trim_start()[key.len() + 2..].to_string()
    };
    let (a, b) = (value("a"), value("b"));
    let mac = value("mac");
    let data_at = good.find(&a).expect("a") + 25;
    let mut cases = broken_by_a_writer(&good, &a, &b);
    cases.extend([
        ("an entry added", good.replacen("\nb: ", "\nz: 1\nb: ", 1)),
        (
            "a value's type tag",
            good.replacen(",type:str]", ",type:bytes]", 1),
        ),
        ("a value's data", flipped(&good, data_at)),
        ("the MAC", good.replacen(&mac, &flipped(&mac, 30), 1)),
        (
            "the metadata in a document of its own",
            good.replacen("\nsops:", "\n...\nsops:", 1),
        ),
        (
            "the metadata in a second document",
            good.replacen("\nsops:", "\n---\nsops:", 1),
        ),
        ("the metadata before a key", format!("{}z: 1\n", good)),
        ("a comment added", good.replacen("\nb: ", "\n# b\nb: ", 1)),
    ]);
    walked_refuses_all(Format::Yaml, &doc, &good, cases);
}

/// YAML's comments are checked walked where the output is the source's layout: each
/// decrypted with the path the source's comment has, compared in order, never hashed.
/// A comment a broken writer left in clear, dropped, swapped, moved or made a value is
/// the whole check's.
#[test]
fn the_walked_check_takes_yaml_comments_and_nothing_amiss() {
    let text = "# head\na: secret-a # after a\nb:\n  # inside b\n  c: secret-c\n  d:\n  - secret-d\n  # in the list\n  - secret-e\nf: secret-f\n";
    let (doc, good) = sealed(Format::Yaml, text);
    assert_eq!(
        walked_matches_whole(Format::Yaml, &doc, good.as_bytes()),
        [Some(None), None]
    );
    let comment = |n: usize| {
        let line = good
            .lines()
            .filter(|l| l.contains("#ENC["))
            .nth(n)
            .expect("comment");
        line[line.find("#ENC[").expect("#") + 1..].to_string()
    };
    let (head, inside, listed) = (comment(0), comment(2), comment(3));
    let cases = vec![
        ("a comment left in clear", good.replacen(&head, " head", 1)),
        (
            "a comment dropped",
            good.replacen(&format!("  #{inside}\n"), "", 1),
        ),
        (
            "comments swapped",
            good.replacen(&head, "X", 1)
                .replacen(&inside, &head, 1)
                .replacen("X", &inside, 1),
        ),
        (
            "a comment moved to the root",
            good.replacen(&format!("  #{inside}"), &format!("#{inside}"), 1),
        ),
        (
            "a comment's data",
            flipped(&good, good.find(&listed).expect("comment") + 26),
        ),
        (
            "a comment as a value",
            good.replacen(&format!("#{listed}"), &format!("- {listed}"), 1),
        ),
        ("a comment added", good.replacen("\nf: ", "\n# f\nf: ", 1)),
    ];
    walked_refuses_all(Format::Yaml, &doc, &good, cases);

    // Comments after the last value stand after the metadata: read there, in order, as
    // any comment.
    let (doc, good) = sealed(Format::Yaml, &format!("{text}# tail one\n# tail two\n"));
    assert_eq!(
        walked_matches_whole(Format::Yaml, &doc, good.as_bytes()),
        [Some(None), None]
    );
    let meta_at = good.find("\nsops:").expect("metadata") + 1;
    let tail_at = good.rfind("\n#ENC[").expect("comment") + 1;
    let tail_comment = |n: usize| {
        let line = good[meta_at..]
            .lines()
            .filter(|l| l.starts_with('#'))
            .nth(n);
        line.expect("comment")[1..].to_string()
    };
    let (one, two) = (tail_comment(0), tail_comment(1));
    assert!(good[tail_at..].starts_with(&format!("#{two}")), "{good}");
    let tail = &good[good[..tail_at - 1].rfind('\n').expect("line") + 1..];
    let (body, meta) = (&good[..meta_at], &good[meta_at..good.len() - tail.len()]);
    // Written before the metadata, they decrypt to the same bytes.
    assert_eq!(
        walked_matches_whole(Format::Yaml, &doc, format!("{body}{tail}{meta}").as_bytes()),
        [Some(None), None]
    );
    let cases = vec![
        (
            "a tail comment dropped",
            good.replacen(&format!("#{one}\n"), "", 1),
        ),
        (
            "a tail comment in clear",
            good.replacen(&two, " tail two", 1),
        ),
        ("tail comments swapped", {
            good.replacen(&one, "X", 1)
                .replacen(&two, &one, 1)
                .replacen("X", &two, 1)
        }),
        ("a blank line after the tail", format!("{good}\n")),
        (
            "a tail comment indented",
            good.replacen(&format!("\n#{two}"), &format!("\n #{two}"), 1),
        ),
        ("a comment added to the tail", format!("{good}#{one}\n")),
    ];
    walked_refuses_all(Format::Yaml, &doc, &good, cases);
}

/// A large output is walked on two threads, the values opened on one as the other
/// reads on (and decrypted by either, as they keep up): what it finds at the start, the
/// middle and the end of the values is what the check of a small one finds.
#[test]
fn a_large_output_is_checked_on_two_threads_as_a_small_one_is() {
    use verify::walked::{Located, Walked};
    let plain = |other: Option<usize>| {
        let mut text = String::new();
        for s in 0..1500 {
            text += &format!("s{s}:\n");
            for k in 0..5 {
                let word = if other == Some(s) && k == 0 {
                    "other"
                } else {
                    "value"
                };
                text += &format!("  k{k}: {word}-{s}-{k}\n");
            }
        }
        text
    };
    let (doc, good) = sealed(Format::Yaml, &plain(None));
    assert!(
        good.len() >= 1 << 17,
        "{} bytes: read on two threads",
        good.len()
    );
    let expected = Content::of_plain(&doc);
    let said = |text: &str| {
        Located::of("t", Format::Yaml, text.as_bytes()).map(|l| l.check(&key(), &expected, true))
    };
    assert_eq!(said(&good), Some(Walked::Holds));
    assert_eq!(
        walked_matches_whole(Format::Yaml, &doc, good.as_bytes()),
        [Some(None), Some(None)]
    );
    // Service `s`'s first value, as `text` holds it.
    let value = |text: &str, s: usize| {
        let key = format!("\ns{s}:\n  k0: ");
        let at = text.find(&key).expect("service") + key.len();
        text[at..at + text[at..].find('\n').expect("line")].to_string()
    };
    let mac = {
        let at = good.find("mac: ").expect("mac") + 5;
        good[at..at + good[at..].find('\n').expect("line")].to_string()
    };
    for s in [2, 750, 1499] {
        let own = value(&good, s);
        // The same path's ciphertext of another value, under the same data key.
        let (_, other) = sealed(Format::Yaml, &plain(Some(s)));
        let cases = [
            (
                "a value other than meant",
                good.replacen(&own, &value(&other, s), 1),
                Walked::Differs,
            ),
            (
                "a value's data",
                flipped(&good, good.find(&own).expect("value") + 25),
                Walked::NotTaken,
            ),
            (
                "a value moved to another key",
                good.replacen(&own, &value(&good, s - 1), 1),
                Walked::NotTaken,
            ),
            (
                "a value in clear",
                good.replacen(&own, &format!("value-{s}-0"), 1),
                Walked::NotTaken,
            ),
        ];
        for (what, broken, walked) in cases {
            assert_eq!(said(&broken), Some(walked), "{what} at service {s}");
            assert_eq!(
                walked_matches_whole(Format::Yaml, &doc, broken.as_bytes()),
                [None, None],
                "{what} at service {s}"
            );
        }
    }
    let broken = good.replacen(&mac, &flipped(&mac, 30), 1);
    assert_eq!(said(&broken), Some(Walked::NotTaken), "the MAC");
}

/// `text` of `format` parsed and encrypted, as the walked check is given it.
fn sealed(format: Format, text: &str) -> (Document, String) {
    let doc = parse("t", format, text.as_bytes().to_vec()).expect("parses");
    let sealed = encrypt_document(format, "t", &doc, &key(), &mut metadata()).expect("encrypts");
    (doc, String::from_utf8(sealed.bytes.to_vec()).expect("text"))
}

/// Whether the walked check takes `text`'s output, with the bytes asked for and not.
fn walked_takes(format: Format, text: &str) -> (bool, bool) {
    let (doc, output) = sealed(format, text);
    let said = walked_matches_whole(format, &doc, output.as_bytes());
    (said[0].is_some(), said[1].is_some())
}

/// `s` with its byte at `at` changed (to `A`, or `B` for an `A`).
fn flipped(s: &str, at: usize) -> String {
    let mut v = s.as_bytes().to_vec();
    v[at] = if v[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(v).expect("ASCII")
}

/// None of `cases` (what a broken writer did to `good`) passes the walked check.
fn walked_refuses_all(format: Format, doc: &Document, good: &str, cases: Vec<(&str, String)>) {
    for (what, broken) in cases {
        assert!(broken != good, "{what}: the case changes nothing");
        assert_eq!(
            walked_matches_whole(format, doc, broken.as_bytes()),
            [None, None],
            "{what} passed the walked check:\n{broken}"
        );
    }
}

/// sops's JSON of the plainest kind is checked walked too: the metadata member last,
/// no escape outside the ciphertexts. Anything else, or anything a broken writer might
/// write, is the whole check's.
#[test]
fn the_walked_check_takes_plain_json_and_nothing_amiss() {
    let taken = |text: &str| walked_takes(Format::Json, text);
    for text in [
        "{\"a\": 1, \"b\": {\"c\": \"x\", \"d\": [true, null, 1.5, \"y\"]}, \"e_unencrypted\": \"clear\"}",
        "{\n\t\"a\": {},\n\t\"b\": [],\n\t\"c\": [[1], {\"d\": \"\"}]\n}\n",
        "  {\n    \"a\": \"line\\nbreak \\\"quoted\\\"\",\n    \"b_unencrypted\": 2\n  }  \n",
        "{\"sops_like\": {\"sops\": \"nested\"}, \"z\": -0.5e-3}",
    ] {
        assert_eq!(taken(text), (true, true), "{text}");
    }
    // Not read walked: nothing before the metadata, an escape outside a ciphertext.
    for text in [
        "{}",
        "{\"a_unencrypted\": \"x\\ny\", \"b\": 1}",
        "{\"a\\u0041\": 1}",
    ] {
        assert_eq!(taken(text), (false, false), "{text}");
    }
    // The value kept, its spelling not: the walk says where, as the whole check does.
    assert_eq!(taken("{\"a\": \"x\\/y\"}"), (true, true));

    let text = "{\n  \"a\": \"secret-a\",\n  \"b\": \"secret-b\",\n  \"c\": {\"d\": 1, \"e\": [\"secret-e\"]}\n}\n";
    let (doc, good) = sealed(Format::Json, text);
    assert_eq!(
        walked_matches_whole(Format::Json, &doc, good.as_bytes()),
        [Some(None), Some(None)]
    );
    let value = |key: &str| {
        let at = good.find(&format!("\"{key}\": \"")).expect("key") + key.len() + 5;
        good[at..at + good[at..].find('"').expect("end")].to_string()
    };
    let (a, b, mac) = (value("a"), value("b"), value("mac"));
    let meta_at = good.find(",\n  \"sops\"").expect("metadata");
    let (body, meta) = good.split_at(meta_at);
    let member = &meta[1..meta.len() - 3];
    let cases = vec![
        ("a value left in clear", good.replacen(&a, "secret-a", 1)),
        (
            "values swapped",
            good.replacen(&a, "X", 1)
                .replacen(&b, &a, 1)
                .replacen("X", &b, 1),
        ),
        ("a key renamed", good.replacen("\"b\": ", "\"bb\": ", 1)),
        (
            "an entry dropped",
            good.replacen(&format!("\"b\": \"{b}\",\n  "), "", 1),
        ),
        (
            "an entry added",
            good.replacen("\"b\": ", "\"z\": 1, \"b\": ", 1),
        ),
        (
            "a value moved into a list",
            good.replacen("\"e\": [", "\"e\": [[", 1)
                .replacen("\"]}", "\"]]}", 1),
        ),
        (
            "a value's type tag",
            good.replacen(",type:str]", ",type:bytes]", 1),
        ),
        (
            "a value's data",
            flipped(&good, good.find(&a).expect("a") + 25),
        ),
        ("the MAC", good.replacen(&mac, &flipped(&mac, 30), 1)),
        ("the metadata dropped", format!("{body}\n}}\n")),
        ("the text cut", good[..good.len() / 2].to_string()),
        (
            "the metadata first",
            format!("{{\n{member},\n{}", &body[2..]) + "\n}\n",
        ),
        ("the metadata twice", format!("{body},\n{member}{meta}")),
        (
            "the metadata not last",
            good.replacen("\n}\n", ",\n  \"z\": 1\n}\n", 1),
        ),
        ("text after the object", format!("{good}x")),
        (
            "the metadata's key escaped",
            good.replacen("\"sops\":", "\"sop\\u0073\":", 1),
        ),
    ];
    walked_refuses_all(Format::Json, &doc, &good, cases);
}

/// sops's dotenv is checked walked too, comments and all; anything a broken writer might
/// write is the whole check's.
#[test]
fn the_walked_check_takes_dotenv_and_nothing_amiss() {
    let taken = |text: &str| walked_takes(Format::Dotenv, text);
    for text in [
        "A=1\nB=two words\n\nC=\nD_unencrypted=clear\n",
        "A=line\\nbreak\r\nB= x \r\n",
        "A=no final break",
        "",
        "# note\nA=1\n#\n#  spaced  \n# last",
    ] {
        assert_eq!(taken(text), (true, true), "{text:?}");
    }

    let text = "# head\nA=secret-a\nB=secret-b\n# between\nC=secret-c\n";
    let (doc, good) = sealed(Format::Dotenv, text);
    assert_eq!(
        walked_matches_whole(Format::Dotenv, &doc, good.as_bytes()),
        [Some(None), Some(None)]
    );
    let value = |key: &str| {
        let line = good
            .lines()
            .find(|l| l.starts_with(&format!("{key}=")))
            .expect("line");
        line[key.len() + 1..].to_string()
    };
    let (a, b, mac) = (value("A"), value("B"), value("sops_mac"));
    let meta_at = good.find("sops_").expect("metadata");
    let comment = |n: usize| {
        good.lines()
            .filter(|l| l.starts_with("#ENC["))
            .nth(n)
            .expect("comment")
            .to_string()
    };
    let (head, between) = (comment(0), comment(1));
    let cases = vec![
        ("a comment left in clear", good.replacen(&head, "# head", 1)),
        (
            "a comment dropped",
            good.replacen(&format!("{between}\n"), "", 1),
        ),
        (
            "comments swapped",
            good.replacen(&head, "X", 1)
                .replacen(&between, &head, 1)
                .replacen("X", &between, 1),
        ),
        (
            "a comment's data",
            flipped(&good, good.find(&between).expect("comment") + 26),
        ),
        (
            "a comment as a value",
            good.replacen(
                &format!("{between}\n"),
                &format!("D={}\n", &between[1..]),
                1,
            ),
        ),
        ("a value left in clear", good.replacen(&a, "secret-a", 1)),
        (
            "values swapped",
            good.replacen(&a, "X", 1)
                .replacen(&b, &a, 1)
                .replacen("X", &b, 1),
        ),
        ("a key renamed", good.replacen("\nB=", "\nBB=", 1)),
        (
            "an entry dropped",
            good.replacen(&format!("B={b}\n"), "", 1),
        ),
        ("an entry added", good.replacen("\nB=", "\nZ=1\nB=", 1)),
        (
            "a value's type tag",
            good.replacen(",type:str]", ",type:bytes]", 1),
        ),
        (
            "a value's data",
            flipped(&good, good.find(&a).expect("a") + 25),
        ),
        ("the MAC", good.replacen(&mac, &flipped(&mac, 30), 1)),
        ("the metadata dropped", good[..meta_at].to_string()),
        ("the text cut", good[..good.len() / 2].to_string()),
        ("a comment added", good.replacen("\nB=", "\n#B\nB=", 1)),
        ("a value after the metadata", format!("{good}Z=1\n")),
        (
            "the metadata before a value",
            format!(
                "{}{}C={}\n",
                good[..meta_at].replacen(&format!("C={}\n", value("C")), "", 1),
                &good[meta_at..],
                value("C")
            ),
        ),
        (
            "a blank line in the metadata",
            good.replacen("\nsops_mac=", "\n\nsops_mac=", 1),
        ),
    ];
    walked_refuses_all(Format::Dotenv, &doc, &good, cases);
}

/// sops's INI is checked walked too, comments in the section they belong to; values in
/// `"""` or backticks, and anything a broken writer might write, are the whole check's.
#[test]
fn the_walked_check_takes_plain_ini_and_nothing_amiss() {
    let taken = |text: &str| walked_takes(Format::Ini, text);
    for text in [
        "top = 1\n[a]\nx = one\ny: two\n\n[b]\n[c]\n  z = \" three \"\nw=' four'\n",
        "[a]\r\nx = 1\r\nk_unencrypted = clear\r\n",
        "[a]\nx = no final break",
        "",
        "; head\n# hash\n[a]\n  ;  indented  \nx = 1 ; after\ny = 2 #\n;\n[b]\nz = 3\n; last\n",
        "; before any section\ntop = 1\n",
    ] {
        assert_eq!(taken(text), (true, true), "{text:?}");
    }
    // Values in `"""` or backticks, and comments with no section to go to: the whole
    // check's.
    for text in [
        "x = `a;b`\n; last\n",
        "; only a comment\n",
        "[a]\nx = `a;b`\n",
        "[a]\nx = \"\"\"one\ntwo\"\"\"\n",
    ] {
        assert_eq!(taken(text), (false, false), "{text:?}");
    }
    // A value continued over lines is encrypted on one: the value kept, its layout not,
    // which the walk places as the whole check does.
    assert_eq!(taken("[a]\nx = one \\\n  two\n"), (true, true));

    let text = "; head\n[a]\nx = secret-x\ny = secret-y ; after\n[b]\nz = secret-z\n";
    let (doc, good) = sealed(Format::Ini, text);
    assert_eq!(
        walked_matches_whole(Format::Ini, &doc, good.as_bytes()),
        [Some(None), Some(None)]
    );
    let value = |key: &str| {
        let line = good
            .lines()
            .find(|l| l.starts_with(&format!("{key} ")))
            .expect("line");
        line[line.find("= ").expect("=") + 2..].to_string()
    };
    let (x, y, mac) = (value("x"), value("y"), value("mac"));
    let meta_at = good.find("[sops]").expect("metadata");
    let comments: Vec<String> = good
        .lines()
        .filter_map(|l| l.find("; ENC[").map(|at| l[at + 2..].to_string()))
        .collect();
    let (head, after) = (&comments[0], &comments[1]);
    let cases = vec![
        ("a comment left in clear", good.replacen(head, "head", 1)),
        (
            "comments swapped",
            good.replacen(head, "X", 1)
                .replacen(after, head, 1)
                .replacen("X", after, 1),
        ),
        (
            "a comment dropped",
            good.replacen(&format!(" ; {after}"), "", 1),
        ),
        (
            "a comment moved to another section",
            good.replacen(&format!("; {head}\n[a]"), &format!("[a]\n; {head}"), 1)
                .replacen("\n[b]\n", &format!("\n; {head}\n[b]\n"), 1)
                .replacen(&format!("[a]\n; {head}\n"), "[a]\n", 1),
        ),
        ("a value left in clear", good.replacen(&x, "secret-x", 1)),
        (
            "values swapped",
            good.replacen(&x, "X", 1)
                .replacen(&y, &x, 1)
                .replacen("X", &y, 1),
        ),
        ("a key renamed", good.replacen("\ny = ", "\nyy = ", 1)),
        (
            "an entry dropped",
            good.replacen(&format!("y = {y}\n"), "", 1),
        ),
        (
            "an entry added",
            good.replacen("\ny = ", "\nq = 1\ny = ", 1),
        ),
        (
            "a value moved to another section",
            good.replacen("\n[b]\n", "\n", 1)
                .replacen("\nz = ", "\n[b]\nz = ", 1)
                .replacen(&format!("y = {y}\n"), "[c]\n", 1),
        ),
        ("a section renamed", good.replacen("[b]", "[bb]", 1)),
        ("a section twice", good.replacen("[b]", "[a]", 1)),
        (
            "a value's type tag",
            good.replacen(",type:str]", ",type:bytes]", 1),
        ),
        (
            "a value's data",
            flipped(&good, good.find(&x).expect("x") + 25),
        ),
        ("the MAC", good.replacen(&mac, &flipped(&mac, 30), 1)),
        ("the metadata dropped", good[..meta_at].to_string()),
        ("the text cut", good[..good.len() / 2].to_string()),
        ("a comment added", good.replacen("\ny = ", "\n; y\ny = ", 1)),
        (
            "a section after the metadata",
            format!("{good}[z]\nq = 1\n"),
        ),
        ("the metadata twice", format!("{good}{}", &good[meta_at..])),
    ];
    walked_refuses_all(Format::Ini, &doc, &good, cases);
}

/// The output is sized before anything is encrypted: each value's length is known from
/// its type and length alone, and the halves written on two cores meet exactly, around
/// the metadata of each document.
#[test]
fn encrypted_values_are_as_long_as_laid_out_and_the_halves_meet() {
    for ty in ScalarType::TAGGED {
        for len in 0..70 {
            let mut out = String::new();
            cipher::encrypt_into(&mut out, &key(), "a:", ty, &vec![b'7'; len]);
            assert_eq!(out.len(), cipher::encrypted_len(ty, len), "{ty:?} of {len}");
        }
    }
    let many =
        |n: usize, tag: &str| -> String { (0..n).map(|i| format!("{tag}{i}: 'v{i}'\n")).collect() };
    // A part is 512 values at the least: one part up to 1,023, two from 1,024.
    for text in [
        many(1023, "k"),
        many(1024, "k"),
        many(3000, "k"),
        format!("{}---\n{}", many(700, "a"), many(700, "b")),
        format!(
            "{}---\n{}---\n{}",
            many(10, "a"),
            many(1500, "b"),
            many(3, "c")
        ),
    ] {
        exact(Format::Yaml, &text);
    }
}

/// Where a decryption first differs from a text is found as the decryption is made,
/// piece by piece: the same place the whole decryption, made and compared, gives.
#[test]
fn the_first_difference_is_found_without_making_the_decryption() {
    let reference = |opened: &Opened, want: &[u8]| match opened.splice_plain() {
        Ok(Ok(got)) if *got == *want => None,
        Ok(Ok(got)) => Some(
            got.iter()
                .zip(want)
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(want.len())),
        ),
        _ => Some(0),
    };
    for (format, text) in [
        (Format::Yaml, "a: 1\nb: 'x' # c\nc: |\n  block\n# end\n"),
        (Format::Yaml, "a: 0x1F\nb: [1, \"two\"]\n---\nc: ~\n"),
        (Format::Yaml, "# only\na: yes\n"),
        (
            Format::Json,
            "{\n  \"a\": 1.50,\n  \"b\": [\"x\", null]\n}\n",
        ),
        (Format::Dotenv, "A=1\n# c\nB=\"two words\"\n"),
        (Format::Ini, "[s]\na = 1\n; c\nb = x\n"),
    ] {
        let sealed = encrypt_plain(
            "t",
            format,
            text.as_bytes().to_vec(),
            &key(),
            &mut metadata(),
        )
        .expect("encrypts");
        let (doc, meta, _) = read_metadata("t", format, sealed.bytes.to_vec()).expect("reads");
        let opened =
            open_with_key("t", format, doc, meta, key(), OpenOptions::default()).expect("opens");
        let mut wants: Vec<Vec<u8>> = vec![
            text.as_bytes().to_vec(),
            Vec::new(),
            format!("{text}more").into_bytes(),
            text.as_bytes()[..text.len() / 2].to_vec(),
        ];
        for at in [0, 3, text.len() / 2, text.len() - 1] {
            let mut w = text.as_bytes().to_vec();
            w[at] ^= 1;
            wants.push(w);
        }
        for want in wants {
            assert_eq!(
                opened.first_difference(&want),
                reference(&opened, &want),
                "{format:?} {text:?} against {:?}",
                String::from_utf8_lossy(&want)
            );
        }
    }
}

/// An output asked into a file is written there through memory, its layout kept or
/// not, checked walked or whole; the file holds
/// it and nothing more (a longer file before is cut), and it opens to the source.
#[test]
fn an_output_asked_into_a_file_is_the_files_whole() {
    use std::io::{Read, Seek, Write};
    let cases = [
        // Walked, comments and all.
        (
            Format::Yaml,
            "# head\na: secret-a # after\nb:\n  - secret-b\n",
            true,
            false,
        ),
        (
            Format::Json,
            "{\"a\": \"secret-a\", \"b\": [1, true]}",
            true,
            false,
        ),
        (Format::Dotenv, "# head\nA=secret-a\n", true, false),
        (Format::Ini, "; head\n[s]\na = secret-a\n", true, false),
        // Checked whole (a flow collection): still written through.
        (Format::Yaml, "a: [secret-a, secret-b]\n", true, false),
        // Not decrypting as written: written through, with the warning.
        (Format::Yaml, "a: 0x1F\n", true, true),
        // The canonical layout: written through as well.
        (Format::Yaml, "{a: secret-a}\n", true, true),
    ];
    for (format, text, through, warned) in cases {
        let doc = parse("t", format, text.as_bytes().to_vec()).expect("parses");
        let mut file = tempfile::tempfile().expect("file");
        file.write_all(&[b'x'; 100_000]).expect("junk");
        let mut md = metadata();
        let (written, fallback) =
            encrypt::encrypt_to(format, "t", (&doc).into(), &key(), &mut md, Some(&file))
                .expect("sealed");
        let bytes = match written {
            encrypt::Written::File => {
                assert!(through, "{text}: written through");
                Vec::new()
            }
            encrypt::Written::Memory(bytes) => {
                assert!(!through, "{text}: held in memory");
                bytes.to_vec()
            }
        };
        assert_eq!(fallback.is_some(), warned, "{text}: {fallback:?}");
        // Through the public way, the file holds the output whichever way it went.
        let mut md = metadata();
        encrypt_plain_into(
            "t",
            format,
            text.as_bytes().to_vec(),
            &key(),
            &mut md,
            &file,
        )
        .expect("sealed");
        let mut got = Vec::new();
        file.rewind().expect("rewound");
        file.read_to_end(&mut got).expect("read");
        assert!(!through || bytes.is_empty());
        assert!(
            got.len() < 10_000 && !got.windows(32).any(|w| w.iter().all(|&c| c == b'x')),
            "{text}: junk left"
        );
        let (doc2, meta, _) = read_metadata("t", format, got).expect("parses");
        let opened =
            open_with_key("t", format, doc2, meta, key(), OpenOptions::default()).expect("opens");
        let plain = opened.render().expect("decrypts");
        if !warned {
            assert_eq!(&plain.bytes[..], text.as_bytes(), "{text}");
        }
    }
}
