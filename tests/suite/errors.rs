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
fn yaml_aliases_and_sequence_documents_are_refused_clearly() {
    let sb = Sandbox::new();
    sb.write("a.yaml", "a: &x 1\nb: *x\n");
    assert_error(
        &sb.run(&["encrypt", "--age", &sb.recipient, "a.yaml"]),
        5,
        "a.yaml: line 2, column 4: YAML aliases",
    );
    sb.write("s.yaml", "- a\n- b\n");
    assert_error(
        &sb.run(&["encrypt", "--age", &sb.recipient, "s.yaml"]),
        5,
        "sequences are not supported",
    );
}
