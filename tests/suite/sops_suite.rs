//! What sops's own functional suite checks (getsops/sops `functional-tests`), each
//! behaviour with our own data: coffer under the name `sops` and the real sops run the
//! same command lines and are held to the same outcome. `scripts/sops-functional` runs
//! the suite itself against either binary.

use super::common::*;
use super::sops_cli::{both, fake, run, same, sops_cmd, sops_encrypted, YAML};

/// A sandbox whose rules encrypt everything for its own identity.
fn with_rule() -> Sandbox {
    let sb = Sandbox::new();
    sb.write(
        ".sops.yaml",
        format!("creation_rules:\n  - age: {}\n", sb.recipient),
    );
    sb
}

/// Every `key: value` line of a YAML mapping (and `"key": value` of JSON) that names one
/// of `keys` holds ciphertext.
fn values_encrypted(text: &str, keys: &[&str]) {
    for key in keys {
        let line = text
            .lines()
            .find(|l| {
                let l = l.trim_start();
                l.starts_with(&format!("{key}:")) || l.starts_with(&format!("\"{key}\":"))
            })
            .unwrap_or_else(|| panic!("no {key} in\n{text}"));
        assert!(line.contains("ENC[AES256_GCM,"), "{key} in clear: {line}");
    }
}

#[test]
fn encrypt_prints_writes_and_reads_stdin_as_sops_does() {
    let sb = with_rule();
    sb.write("p.yaml", "user: app\npassword: s3cr3t\n");
    sb.write("p.json", "{\n  \"user\": \"app\",\n  \"port\": 5432\n}\n");

    // `encrypt FILE` prints the encrypted file, its key from the rules.
    for (file, keys, want) in [
        (
            "p.yaml",
            ["user", "password"],
            "user: app\npassword: s3cr3t\n",
        ),
        (
            "p.json",
            ["user", "port"],
            "{\n\t\"user\": \"app\",\n\t\"port\": 5432\n}\n",
        ),
    ] {
        let out = fake(&sb, &["encrypt", file]);
        assert_success(&out, &["encrypt", file]);
        let text = stdout(&out);
        assert!(text.contains("sops"), "{text}");
        values_encrypted(&text, &keys);
        let printed = format!("printed.{}", file.rsplit('.').next().unwrap());
        sb.write(&printed, &text);
        let real = sb.sops(&["decrypt", &printed]);
        assert_success(&real, &["sops decrypts what coffer printed", file]);
        assert_eq!(stdout(&real), want);
    }

    // From stdin: the override names the rule and the input type; --output-type json.
    let args = [
        "encrypt",
        "--filename-override",
        "x.yaml",
        "--output-type",
        "json",
    ];
    let out = run(
        sops_cmd(&sb, false),
        &args,
        &[],
        Some(b"foo: 2\nbar: baz\n"),
    );
    assert_success(&out, &["encrypt from stdin to JSON"]);
    let text = stdout(&out);
    values_encrypted(&text, &["foo", "bar"]);
    let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert!(json.get("sops").is_some(), "{text}");
    sb.write("x.json", &text);
    let real = sb.sops(&["decrypt", "x.json"]);
    assert_success(&real, &["sops decrypts coffer's JSON from stdin"]);
    assert_eq!(stdout(&real), "{\n\t\"foo\": 2,\n\t\"bar\": \"baz\"\n}\n");

    // --output: nothing on stdout, the file written.
    let out = fake(&sb, &["encrypt", "--output", "out.yaml", "p.yaml"]);
    assert_success(&out, &["encrypt --output"]);
    assert_eq!(stdout(&out), "");
    let real = sb.sops(&["decrypt", "out.yaml"]);
    assert_eq!(stdout(&real), "user: app\npassword: s3cr3t\n");
}

/// The same steps on a copy for each, exit codes alike at every step; then each copy
/// decrypted by the real sops, alike. Returns coffer's copy's name.
fn steps_alike(sb: &Sandbox, file: &str, plain: &str, steps: &[&[&str]]) -> String {
    let ext = file.rsplit('.').next().unwrap();
    let names = [format!("real.{ext}"), format!("fake.{ext}")];
    for name in &names {
        sb.write(name, plain);
    }
    for step in steps {
        let mut bytes = Vec::new();
        let mut codes = Vec::new();
        for (real, name) in [true, false].into_iter().zip(&names) {
            let args: Vec<&str> = step
                .iter()
                .map(|a| if *a == "FILE" { name.as_str() } else { a })
                .collect();
            let before = sb.read(name);
            let out = run(sops_cmd(sb, real), &args, &[], None);
            codes.push((out.status.code(), stderr(&out)));
            bytes.push((before, sb.read(name)));
        }
        assert_eq!(
            codes[0].0, codes[1].0,
            "{step:?}: sops {:?}, coffer {:?}",
            codes[0], codes[1]
        );
        // An idempotent step that changes nothing leaves the file byte for byte.
        if step.contains(&"--idempotent") && bytes[0].0 == bytes[0].1 {
            assert_eq!(bytes[1].0, bytes[1].1, "{step:?}: coffer rewrote the file");
        }
    }
    let decrypted: Vec<String> = names
        .iter()
        .map(|n| {
            let d = sb.sops(&["decrypt", n]);
            assert_success(&d, &["sops decrypt", n]);
            stdout(&d)
        })
        .collect();
    assert_eq!(decrypted[0], decrypted[1], "{steps:?}");
    names[1].clone()
}

#[test]
fn set_unset_and_in_place_decrypt_as_sops_does() {
    let sb = with_rule();
    // The old flags: --set with -i, then -d -i.
    let name = steps_alike(
        &sb,
        "s.yaml",
        "a: 2\nb: ba",
        &[
            &["-e", "-i", "FILE"],
            &["--set", "[\"a\"] \"aaa\"", "-i", "FILE"],
        ],
    );
    let out = fake(&sb, &["-d", "-i", &name]);
    assert_success(&out, &["-d -i"]);
    assert_eq!(sb.read_str(&name), "a: aaa\nb: ba\n");

    // unset: a key, again idempotently, a list item, then past the list's end.
    for (file, plain) in [
        ("u.json", "{\"a\": 2, \"b\": \"ba\", \"c\": [1,2]}"),
        ("u.yaml", "a: 2\nb: ba\nc:\n  - 1\n  - 2\n"),
    ] {
        steps_alike(
            &sb,
            file,
            plain,
            &[
                &["encrypt", "-i", "FILE"],
                &["unset", "FILE", "[\"a\"]"],
                &["unset", "--idempotent", "FILE", "[\"a\"]"],
                &["unset", "FILE", "[\"a\"]"],
                &["unset", "FILE", "[\"c\"][1]"],
                &["unset", "--idempotent", "FILE", "[\"c\"][1]"],
                &["unset", "FILE", "[\"c\"][1]"],
            ],
        );
    }
}

#[test]
fn a_file_without_its_mac_opens_only_with_ignore_mac() {
    let sb = Sandbox::new();
    sb.write("p.yaml", YAML);
    sops_encrypted(&sb, "p.yaml", "e.yaml");
    let text = sb.read_str("e.yaml");
    let without: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("mac: "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(without, text);
    sb.write("e.yaml", &without);
    let (s, c) = both(&sb, &["decrypt", "e.yaml"], &[], None);
    assert!(!s.status.success());
    assert_eq!(s.status.code(), c.status.code(), "{}", stderr(&c));
    assert_eq!(stdout(&c), "");
    let out = same(&sb, &["decrypt", "--ignore-mac", "e.yaml"]);
    assert_eq!(stdout(&out), YAML);
}

#[test]
fn comments_are_encrypted_between_list_items_too() {
    let sb = with_rule();
    let plain = "# zq-top\na: 1\nlist:\n    # zq-before\n    - x\n    # zq-between\n    - y\nb: 2 # zq-after\n";
    sb.write("c.yaml", plain);
    let out = fake(&sb, &["encrypt", "c.yaml"]);
    assert_success(&out, &["encrypt with comments"]);
    let text = stdout(&out);
    assert!(!text.contains("zq-"), "a comment left in clear:\n{text}");
    sb.write("e.yaml", &text);
    // The real sops reads the comments back as its own encryption gives them.
    let own = sb.sops(&["encrypt", "c.yaml"]);
    sb.write("own.yaml", &own.stdout);
    let theirs = sb.sops(&["decrypt", "own.yaml"]);
    let ours = sb.sops(&["decrypt", "e.yaml"]);
    assert_success(&ours, &["sops decrypts coffer's comments"]);
    assert_eq!(stdout(&ours), stdout(&theirs));
}

/// Key groups without a threshold need every group, as sops defaults it.
#[test]
fn shamir_groups_without_a_threshold_need_every_group() {
    let sb = Sandbox::new();
    let other = Sandbox::new();
    sb.write(
        ".sops.yaml",
        format!(
            "creation_rules:\n  - key_groups:\n      - age: [{}]\n      - age: [{}]\n",
            sb.recipient, other.recipient
        ),
    );
    sb.write("real.yaml", "a: secret\n");
    sb.write("fake.yaml", "a: secret\n");
    assert_success(&sb.sops(&["encrypt", "-i", "real.yaml"]), &["sops groups"]);
    assert_success(&fake(&sb, &["encrypt", "-i", "fake.yaml"]), &["groups"]);
    for file in ["real.yaml", "fake.yaml"] {
        let (s, c) = both(&sb, &["decrypt", file], &[], None);
        assert_eq!(
            (s.status.code(), c.status.code()),
            (Some(128), Some(128)),
            "{file}: {}",
            stderr(&c)
        );
    }
}

#[test]
fn exec_env_passes_a_value_over_several_lines() {
    let sb = with_rule();
    sb.write("e.yaml", "foo: bar\nbar: |-\n  baz\n  bam\n");
    assert_success(&fake(&sb, &["encrypt", "-i", "e.yaml"]), &["encrypt"]);
    for (var, want) in [("foo", "bar\n"), ("bar", "baz\nbam\n")] {
        let script = format!("printf '%s\\n' \"${var}\"");
        let out = same(&sb, &["exec-env", "e.yaml", &script]);
        assert_eq!(stdout(&out), want);
    }
}

#[test]
fn a_binary_file_without_a_final_line_break_comes_back_byte_for_byte() {
    let sb = with_rule();
    let data = b"\"\"{}binary\x00\xff-without-a-line-break";
    sb.write("real.bin", data);
    sb.write("fake.bin", data);
    assert_success(&sb.sops(&["encrypt", "-i", "real.bin"]), &["sops encrypt"]);
    assert_success(&fake(&sb, &["encrypt", "-i", "fake.bin"]), &["encrypt"]);
    for file in ["real.bin", "fake.bin"] {
        let (s, c) = both(&sb, &["decrypt", file], &[], None);
        assert_eq!(s.stdout, data, "sops on {file}");
        assert_eq!(c.stdout, data, "coffer on {file}");
    }
}
