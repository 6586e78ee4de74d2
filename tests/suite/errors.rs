//! Bad input: one clear line, the documented exit code, and nothing written.

use super::common::*;

#[test]
fn no_identity_that_opens_the_file() {
    let owner = Sandbox::new();
    let stranger = Sandbox::new();
    owner.encrypted_sample("app.yaml");
    let path = stranger.copy(&owner.path("app.yaml"), "app.yaml");
    let before = std::fs::read(&path).unwrap();
    let out = stranger.run(&["decrypt", "app.yaml"]);
    assert_error(
        &out,
        3,
        "app.yaml: no identity could open the data key; it was encrypted for: age:",
    );
    assert!(
        stderr(&out).contains(&owner.recipient),
        "the error names the recipient"
    );
    assert!(out.stdout.is_empty());
    // In place: the file is untouched.
    let out = stranger.run(&["decrypt", "-i", "app.yaml"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    // No identity at all says how to get one.
    let nobody = Sandbox::without_key();
    nobody.copy(&owner.path("app.yaml"), "app.yaml");
    let out = nobody.run(&["decrypt", "app.yaml"]);
    assert_error(&out, 3, "no identity could open");
    assert!(
        stderr(&out).contains("hint: age: no identity found"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_changed_readable_value_fails_the_mac() {
    let sb = Sandbox::new();
    sb.encrypted_sample("app.yaml");
    let text = sb.read_str("app.yaml").replace(
        "public_url_unencrypted: https://example.com",
        "public_url_unencrypted: https://evil.example",
    );
    sb.write("app.yaml", &text);
    let out = sb.run(&["decrypt", "app.yaml"]);
    assert_error(&out, 4, "app.yaml: MAC mismatch");
    assert!(out.stdout.is_empty(), "nothing decrypted is printed");
    let out = sb.run(&["decrypt", "--ignore-mac", "app.yaml"]);
    assert_success(&out, &["decrypt --ignore-mac"]);
    assert!(stderr(&out).contains("MAC mismatch ignored"));
}

#[test]
fn a_value_moved_to_another_key_fails_authentication() {
    let sb = Sandbox::new();
    sb.write("s.env", "A=first\nB=second\n");
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "s.env"]);
    let text = sb.read_str("s.env");
    let a = text
        .lines()
        .find(|l| l.starts_with("A="))
        .unwrap()
        .to_string();
    let b = text
        .lines()
        .find(|l| l.starts_with("B="))
        .unwrap()
        .to_string();
    let swapped =
        text.replace(&a, &format!("A={}", &b[2..]))
            .replacen(&b, &format!("B={}", &a[2..]), 1);
    sb.write("s.env", &swapped);
    let out = sb.run(&["decrypt", "s.env"]);
    assert_error(
        &out,
        4,
        "s.env: cannot decrypt the value at [\"A\"]: authentication failed",
    );
}

#[test]
fn syntax_errors_name_line_and_column_and_leave_the_file() {
    let sb = Sandbox::new();
    let bad = "a: 1\nb: [unclosed\nc: 3\n";
    sb.write("bad.yaml", bad);
    let out = sb.run(&["encrypt", "--age", &sb.recipient, "-i", "bad.yaml"]);
    assert_error(&out, 5, "bad.yaml: line ");
    assert!(stderr(&out).contains("column"), "{}", stderr(&out));
    assert_eq!(sb.read_str("bad.yaml"), bad);

    sb.write("bad.json", "{\"a\": 1,\n \"b\": }\n");
    let out = sb.run(&["encrypt", "--age", &sb.recipient, "bad.json"]);
    assert_error(&out, 5, "bad.json: line 2, column 7: expected a JSON value");

    sb.write("bad.env", "OK=1\nnot a pair\n");
    let out = sb.run(&["encrypt", "--age", &sb.recipient, "bad.env"]);
    assert_error(&out, 5, "bad.env: line 2: expected KEY=VALUE");
}

#[test]
fn encrypting_twice_is_refused() {
    let sb = Sandbox::new();
    sb.encrypted_sample("app.json");
    let before = sb.read("app.json");
    let out = sb.run(&["encrypt", "--age", &sb.recipient, "-i", "app.json"]);
    assert_error(&out, 6, "app.json: already encrypted");
    assert_eq!(sb.read("app.json"), before);
    // Binary files are checked too.
    sb.write("b.bin", [0u8, 1, 2, 255]);
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "b.bin"]);
    let out = sb.run(&["encrypt", "--age", &sb.recipient, "-i", "b.bin"]);
    assert_error(&out, 6, "already encrypted");
}

#[test]
fn decrypting_a_plaintext_file_says_so() {
    let sb = Sandbox::new();
    sb.write("p.yaml", "a: 1\n");
    assert_error(&sb.run(&["decrypt", "p.yaml"]), 6, "p.yaml: not encrypted");
}

#[test]
fn unknown_extract_path() {
    let sb = Sandbox::new();
    sb.encrypted_sample("app.yaml");
    assert_error(
        &sb.run(&[
            "decrypt",
            "--extract",
            r#"["database"]["nope"]"#,
            "app.yaml",
        ]),
        7,
        r#"app.yaml: key path ["database"]["nope"] not found"#,
    );
    assert_error(
        &sb.run(&["decrypt", "--extract", r#"["database""#, "app.yaml"]),
        7,
        "invalid key path",
    );
}

#[test]
fn no_recipients_and_bad_recipients() {
    let sb = Sandbox::new();
    sb.write("a.yaml", "a: 1\n");
    let out = sb.run(&["encrypt", "a.yaml"]);
    assert_error(&out, 1, "a.yaml: no master key to encrypt with");
    assert!(stderr(&out).contains("hint: `coffer keygen`"));
    assert_error(
        &sb.run(&["encrypt", "--age", "age1nope", "a.yaml"]),
        1,
        "not a valid age recipient",
    );
}

#[test]
fn output_over_the_input_needs_in_place() {
    let sb = Sandbox::new();
    sb.write("a.yaml", "a: 1\n");
    assert_error(
        &sb.run(&["encrypt", "--age", &sb.recipient, "-o", "a.yaml", "a.yaml"]),
        1,
        "refusing to write over the input",
    );
    assert_eq!(sb.read_str("a.yaml"), "a: 1\n");
}

#[test]
fn yaml_key_aliases_and_sequence_documents_are_refused_clearly() {
    let sb = Sandbox::new();
    sb.write("a.yaml", "&k a: 1\nb: *k\n");
    assert_error(
        &sb.run(&["encrypt", "--age", &sb.recipient, "a.yaml"]),
        5,
        "a.yaml: line 2, column 4: an alias (*name) of a mapping key",
    );
    sb.write("s.yaml", "- a\n- b\n");
    assert_error(
        &sb.run(&["encrypt", "--age", &sb.recipient, "s.yaml"]),
        5,
        "sequences are not supported",
    );
}

/// A key given twice means one thing to sops (the last) and another to `--extract` and
/// `set` (the first): refused in every format, with both lines, exit 5, nothing written.
#[test]
fn a_key_given_twice_is_refused_with_both_lines() {
    let sb = Sandbox::new();
    for (file, text, said) in [
        (
            "a.yaml",
            "db:\n  user: app\n  password: one\n  password: two\n",
            "a.yaml: line 4: the key [\"db\"][\"password\"] appears twice (first at line 3): keep one",
        ),
        (
            "b.json",
            "{\n  \"list\": [{\"k\": 1,\n    \"k\": 2}]\n}\n",
            "b.json: line 3: the key [\"list\"][0][\"k\"] appears twice (first at line 2): keep one",
        ),
        (
            "c.env",
            "TOKEN=a\nOTHER=b\nTOKEN=c\n",
            "c.env: line 3: the key [\"TOKEN\"] appears twice (first at line 1): keep one",
        ),
        (
            "d.ini",
            "[db]\npass = a\npass = b\n",
            "d.ini: line 3: the key [\"db\"][\"pass\"] appears twice (first at line 2): keep one",
        ),
        (
            "e.ini",
            "[db]\npass = a\n[web]\nx = 1\n[db]\nuser = b\n",
            "e.ini: line 5: the section [db] appears twice (first at line 1): keep one",
        ),
        // Not a duplicate, but as little a meaning: go-ini refuses it.
        (
            "f.ini",
            "[]\npass = a\n",
            "f.ini: line 1: an empty section name ([]) is not supported: sops cannot read the file",
        ),
    ] {
        sb.write(file, text);
        let out = sb.run(&["encrypt", "--age", &sb.recipient, "-i", file]);
        assert_error(&out, 5, said);
        assert_eq!(sb.read_str(file), text, "{file} untouched");
        // Under the name sops too, with sops's code for input it cannot read.
        let out = sb.as_sops().args(["encrypt", "--age", &sb.recipient, file]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{file}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("appears twice") || stderr(&out).contains("empty section"),
            "{}",
            stderr(&out)
        );
    }
    // The real sops refuses the YAML one too.
    let real = sb.sops(&["encrypt", "--age", &sb.recipient, "a.yaml"]);
    assert_eq!(real.status.code(), Some(2), "{}", stderr(&real));

    // An encrypted file with a key twice (written by anything) does not open either:
    // here two encrypted files of one data key, glued.
    sb.write("f.env", "TOKEN=a\n");
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "f.env"]);
    let enc = sb.read_str("f.env");
    let token = enc.lines().find(|l| l.starts_with("TOKEN=")).unwrap();
    sb.write("f.env", format!("{token}\n{enc}"));
    let out = sb.run(&["decrypt", "f.env"]);
    assert_error(
        &out,
        5,
        "the key [\"TOKEN\"] appears twice (first at line 1)",
    );
    assert_eq!(stdout(&out), "");

    // The rules: a second `age:` in one rule would drop a recipient without a word.
    sb.write(
        ".sops.yaml",
        format!(
            "creation_rules:\n  - age: {}\n    age: age1other\n",
            sb.recipient
        ),
    );
    sb.write("g.yaml", "a: 1\n");
    let out = sb.run(&["encrypt", "-i", "g.yaml"]);
    assert_error(
        &out,
        5,
        ".sops.yaml: line 3: the key \"age\" is defined twice (first at line 2): keep one",
    );
    assert_eq!(sb.read_str("g.yaml"), "a: 1\n");
}

/// A YAML key that is no string to go-yaml (`404:`, `true:`, `~:`, a date) would make a
/// file sops cannot open at all ("only string keys are supported"): refused with the
/// reason and the way out, as sops refuses to encrypt it. Quoted, it is a string.
#[test]
fn a_key_that_is_no_string_to_sops_is_refused_with_the_way_out() {
    let sb = Sandbox::new();
    for (text, said) in [
        ("codes:\n  404: not found\n", "k.yaml: line 2, column 3: the key 404 is an integer to sops (go-yaml), which takes only string keys: quote it (\"404\") to mean the string"),
        ("true: x\n", "k.yaml: line 1, column 1: the key true is a boolean to sops"),
        ("~: x\n", "k.yaml: line 1, column 1: the key ~ is null to sops"),
        ("2024-01-02: x\n", "the key 2024-01-02 is a time to sops"),
        ("l:\n  - 1.5: x\n", "the key 1.5 is a float to sops"),
    ] {
        sb.write("k.yaml", text);
        let out = sb.run(&["encrypt", "--age", &sb.recipient, "-i", "k.yaml"]);
        assert_error(&out, 5, said);
        assert_eq!(sb.read_str("k.yaml"), text);
        let real = sb.sops(&["encrypt", "--age", &sb.recipient, "k.yaml"]);
        assert!(!real.status.success(), "sops encrypted {text:?}");
    }
    sb.write("q.yaml", "codes:\n  \"404\": not found\n");
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "q.yaml"]);
    let real = sb.sops(&["decrypt", "q.yaml"]);
    assert_success(&real, &["sops opens a quoted number key"]);
    assert_eq!(stdout(&real), "codes:\n    \"404\": not found\n");
}
