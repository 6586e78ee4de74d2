//! What coffer writes always reads back: layouts that cannot be kept fall back (or are
//! refused under --strict-layout), inputs it cannot write are refused with nothing
//! written, and the integrity checks a file's metadata does not cover hold.

use super::common::*;

#[test]
fn a_top_level_flow_mapping_is_written_in_block_style_with_one_warning() {
    let sb = Sandbox::new();
    let plain = "{\"password\": \"hunter2\", \"n\": 1}\n";
    sb.write("app.yaml", plain);
    let out = sb.run(&["encrypt", "--age", &sb.recipient, "-i", "app.yaml"]);
    assert_success(&out, &["encrypt"]);
    let warning = stderr(&out);
    assert!(
        warning.starts_with(
            "coffer: warning: app.yaml: flow mapping at line 1 rewritten in the canonical layout ("
        ) && warning.lines().count() == 1,
        "{warning:?}"
    );
    let enc = sb.read_str("app.yaml");
    assert!(enc.starts_with("password: ENC[AES256_GCM,"), "{enc}");
    assert!(!enc.contains("hunter2"));
    assert_eq!(
        stdout(&sb.ok(&["decrypt", "app.yaml"])),
        // `n` is a YAML 1.1 boolean: quoted, as go-yaml (sops) writes it.
        "password: hunter2\n\"n\": 1\n"
    );
    let by_sops = sb.sops(&["-d", "app.yaml"]);
    assert_success(&by_sops, &["sops -d"]);
    assert!(stdout(&by_sops).contains("password: hunter2"));
}

#[test]
fn strict_layout_refuses_instead_and_leaves_the_file_alone() {
    let sb = Sandbox::new();
    let plain = "{\"password\": \"hunter2\"}\n";
    sb.write("app.yaml", plain);
    let out = sb.run(&[
        "--strict-layout",
        "encrypt",
        "--age",
        &sb.recipient,
        "-i",
        "app.yaml",
    ]);
    assert_error(&out, 5, "refused by --strict-layout, nothing was written");
    assert_eq!(sb.read_str("app.yaml"), plain);
    // A layout that is kept passes.
    sb.write("ok.yaml", "a: 1\n");
    sb.ok(&[
        "--strict-layout",
        "encrypt",
        "--age",
        &sb.recipient,
        "-i",
        "ok.yaml",
    ]);
}

#[test]
fn a_literal_block_at_the_end_without_a_line_break_stays_secret() {
    let sb = Sandbox::new();
    sb.write("app.yaml", "a: 1\nkey: |\n  first\n  secret-last-line");
    let out = sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "app.yaml"]);
    // It decrypts as `|-`, which says the same: said.
    assert_eq!(
        stderr(&out),
        "coffer: warning: app.yaml: the literal block scalar at line 2 will decrypt to the same value written another way\n"
    );
    let enc = sb.read_str("app.yaml");
    assert!(
        !enc.contains("secret-last-line") && !enc.contains("first"),
        "{enc}"
    );
    // No final line break, so none in the value either, as sops reads it.
    assert_eq!(
        stdout(&sb.ok(&["decrypt", "--extract", "[\"key\"]", "app.yaml"])),
        "first\nsecret-last-line"
    );
    assert_eq!(
        stdout(&sb.ok(&["decrypt", "app.yaml"])),
        "a: 1\nkey: |-\n  first\n  secret-last-line"
    );
    let by_sops = sb.sops(&["-d", "--extract", "[\"key\"]", "app.yaml"]);
    assert_eq!(stdout(&by_sops), "first\nsecret-last-line");
}

#[test]
fn complex_keys_are_refused_and_nothing_is_written() {
    let sb = Sandbox::new();
    for (text, at) in [
        ("? [k1]\n: secret1\nother: secret2\n", "line 1, column 3"),
        ("[a, b]: secret1\nz: secret2\n", "line 1, column 1"),
    ] {
        sb.write("app.yaml", text);
        let out = sb.run(&["encrypt", "--age", &sb.recipient, "-i", "app.yaml"]);
        assert_error(
            &out,
            5,
            &format!(
                "coffer: app.yaml: {at}: complex mapping keys (a list or mapping used as a key) are not supported"
            ),
        );
        assert_eq!(sb.read_str("app.yaml"), text);
    }
}

#[test]
fn deep_nesting_is_a_syntax_error_in_every_command_not_a_crash() {
    let sb = Sandbox::new();
    let deep = format!("{{\"a\": {}1{}}}", "[".repeat(20_000), "]".repeat(20_000));
    sb.write("deep.json", &deep);
    let message = "nested more than 256 levels deep";
    assert_error(
        &sb.run(&["encrypt", "--age", &sb.recipient, "deep.json"]),
        5,
        message,
    );
    assert_error(&sb.run(&["decrypt", "deep.json"]), 5, message);
    let status = sb.ok(&["filestatus", "deep.json"]);
    assert_eq!(stdout(&status), "{\"encrypted\":false}\n");
    sb.write(
        ".coffer.yaml",
        format!("creation_rules:\n  - age: {}\n", sb.recipient),
    );
    let clean = sb.stdin(&["git", "clean", "deep.json"], deep.as_bytes());
    assert_eq!(clean.status.code(), Some(5), "{}", stderr(&clean));

    // Inside git's filter process: that file fails, the process lives on.
    sb.git(".", &["init", "-q"]);
    sb.ok(&["git", "setup"]);
    sb.write(
        ".gitattributes",
        "*.json filter=coffer diff=coffer merge=coffer\n",
    );
    sb.write("ok.json", "{\"a\": \"fine\"}");
    let add = sb.git_env(
        ".",
        &["add", "deep.json"],
        &[("COFFER_AGE_RECIPIENTS", &sb.recipient)],
    );
    let err = stderr(&add);
    assert!(err.contains(message) && !err.contains("overflow"), "{err}");
    sb.git(".", &["add", "ok.json"]);
}

#[test]
fn a_changed_type_tag_is_an_integrity_error() {
    let sb = Sandbox::new();
    sb.write("app.yaml", "flag: \"false\"\n");
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "app.yaml"]);
    let enc = sb.read_str("app.yaml").replacen("type:str", "type:bool", 1);
    sb.write("app.yaml", &enc);
    assert_error(
        &sb.run(&["decrypt", "app.yaml"]),
        4,
        "coffer: app.yaml: cannot decrypt the value at [\"flag\"]: its type tag was changed",
    );
    let by_sops = sb.sops(&["-d", "app.yaml"]);
    assert_eq!(
        by_sops.status.code(),
        Some(51),
        "sops fails it too (MAC mismatch)"
    );
}

#[test]
fn metadata_must_be_sops_s_own_and_the_key_sops_is_reserved() {
    let sb = Sandbox::new();
    sb.write("app.yaml", "a: secret\n");
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "app.yaml"]);
    let enc = sb.read_str("app.yaml");
    sb.write("extra.yaml", format!("sops:\n  a: injected\n{enc}"));
    assert_error(
        &sb.run(&["decrypt", "extra.yaml"]),
        5,
        "the `sops` metadata is not the last key of the document",
    );
    sb.write("plain.yaml", "a: 1\nsops: mine\n");
    assert_error(
        &sb.run(&["encrypt", "--age", &sb.recipient, "-i", "plain.yaml"]),
        5,
        "coffer: plain.yaml: the key `sops` (line 2) is reserved for the encryption metadata; rename it",
    );
    assert_eq!(sb.read_str("plain.yaml"), "a: 1\nsops: mine\n");
}

#[test]
fn integers_beyond_64_bits_are_refused_with_a_hint() {
    let sb = Sandbox::new();
    sb.write("app.yaml", "big: 123456789012345678901234567890\n");
    assert_error(
        &sb.run(&["encrypt", "--age", &sb.recipient, "app.yaml"]),
        5,
        "coffer: app.yaml: line 1, column 6: an integer that does not fit in 64 bits; quote it to keep it as text",
    );
}

#[test]
fn sops_times_floats_and_literal_blocks_read_as_sops_wrote_them() {
    let sb = Sandbox::new();
    let plain = "t: 2024-01-02T03:04:05Z\nd: 2024-01-02\nf: 1.5e+10\na:\n  b:\n    c: |\n      line1\n      line2\n    d: x\n";
    sb.write("app.yaml", plain);
    let enc = sb.sops(&["-e", "--age", &sb.recipient, "app.yaml"]);
    assert_success(&enc, &["sops -e"]);
    sb.write("app.enc.yaml", &enc.stdout);
    assert!(
        stdout(&enc).contains("type:time]"),
        "sops 3.11 writes times"
    );
    let by_sops = stdout(&sb.sops(&["-d", "app.enc.yaml"]));
    let by_coffer = stdout(&sb.ok(&["decrypt", "app.enc.yaml"]));
    assert_eq!(by_coffer, by_sops);
    assert!(by_coffer.contains("f: 1.5e+10\n") && by_coffer.contains("d: 2024-01-02T00:00:00Z\n"));

    // And the other way: sops reads the times coffer writes.
    sb.write("mine.yaml", plain);
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "mine.yaml"]);
    assert!(sb.read_str("mine.yaml").contains("type:time]"));
    assert_eq!(stdout(&sb.sops(&["-d", "mine.yaml"])), by_sops);
}

#[test]
fn every_comment_sops_writes_opens() {
    let sb = Sandbox::without_key();
    let dir = testdata("interop/sops-nested-comments");
    for name in ["", "-lists", "-deep", "-unencrypted-suffix"] {
        let enc = format!("enc{name}.yaml");
        sb.copy(&dir.join(&enc), &enc);
        let out = sb.run_with(
            &["decrypt", &enc],
            &[("SOPS_AGE_KEY_FILE", dir.join("key.txt").to_str().unwrap())],
        );
        assert_success(&out, &["decrypt", &enc]);
        let text = stdout(&out);
        assert!(
            !text.contains("ENC["),
            "{enc}: a comment stayed encrypted:\n{text}"
        );
        // sops moves some comments (see the README there); where it does not, coffer
        // gives back the plaintext byte for byte.
        if name == "-lists" || name == "-unencrypted-suffix" {
            let plain = std::fs::read_to_string(dir.join(format!("plain{name}.yaml"))).unwrap();
            assert_eq!(text, plain, "{enc}");
        }
    }
}

/// Whatever the layout check lets through, decrypting is compared with the input byte
/// for byte: a file that will not come back as written is said, and refused under
/// `--strict-layout`, in every format.
#[test]
fn a_file_that_will_not_decrypt_as_written_is_said_never_silent() {
    let sb = Sandbox::new();
    for (file, text, line) in [
        (
            "a.json",
            "{\n  \"name\": \"caf\\u00e9\",\n  \"n\": 1\n}\n",
            2,
        ),
        ("b.yaml", "a: 1\nb: |\n  x\n  y", 2),
    ] {
        sb.write(file, text);
        let out = sb.ok(&["encrypt", "--age", &sb.recipient, file]);
        let warning = stderr(&out);
        assert!(
            warning.starts_with(&format!("coffer: warning: {file}: "))
                && warning.contains(&format!("line {line} will decrypt to the same"))
                && warning.lines().count() == 1,
            "{file}: {warning:?}"
        );
        let strict = sb.run(&[
            "--strict-layout",
            "encrypt",
            "--age",
            &sb.recipient,
            "-i",
            file,
        ]);
        assert_error(
            &strict,
            5,
            "refused by --strict-layout, nothing was written",
        );
        assert_eq!(sb.read_str(file), text);
    }
    // Kept byte for byte: no word.
    sb.write("c.json", "{\n  \"name\": \"café\"\n}\n");
    let out = sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "c.json"]);
    assert_eq!(stderr(&out), "");
    assert_eq!(
        stdout(&sb.ok(&["decrypt", "c.json"])),
        "{\n  \"name\": \"café\"\n}\n"
    );
}
