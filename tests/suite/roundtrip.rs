//! Plaintext survives encrypt → decrypt byte for byte, ciphertext is deterministic, and
//! the commands that change a file change only what they must.

use super::common::*;

const SAMPLES: [&str; 8] = [
    "app.yaml",
    "indent4.yaml",
    "multi.yaml",
    "app.json",
    "tabs.json",
    "compact.json",
    "app.env",
    "app.ini",
];

#[test]
fn every_sample_round_trips_byte_for_byte() {
    let sb = Sandbox::new();
    for name in SAMPLES {
        let original = std::fs::read(testdata(&format!("plain/{name}"))).unwrap();
        sb.write(name, &original);
        sb.ok(&["encrypt", "--age", &sb.recipient, "-i", name]);
        let encrypted = sb.read_str(name);
        assert!(
            encrypted.contains("ENC[AES256_GCM,data:"),
            "{name} was not encrypted"
        );
        let back = sb.ok(&["decrypt", name]).stdout;
        assert_eq!(
            String::from_utf8_lossy(&back),
            String::from_utf8_lossy(&original),
            "{name}"
        );
    }
}

#[test]
fn keys_and_layout_stay_readable_and_values_do_not() {
    let sb = Sandbox::new();
    sb.copy(&testdata("plain/app.yaml"), "app.yaml");
    let enc = stdout(&sb.ok(&["encrypt", "--age", &sb.recipient, "app.yaml"]));
    for secret in [
        "S3cr3t!pass",
        "sk_live_51Habc",
        "app_user",
        "MIIBszCCAVmgAwIBAgIUYk1v",
        "Owner: platform team",
    ] {
        assert!(!enc.contains(secret), "{secret} leaked into:\n{enc}");
    }
    for visible in [
        "database:",
        "  password: 'ENC[AES256_GCM",
        "  user: \"ENC[AES256_GCM",
        "api_keys:",
        "  - name: ENC[",
        "public_url_unencrypted: https://example.com",
        "empty_value: \"\"",
        "replica: null",
    ] {
        assert!(enc.contains(visible), "{visible:?} missing from:\n{enc}");
    }
    // The layout is the plaintext's: same number of lines before the metadata.
    let body = enc.split("\nsops:\n").next().unwrap();
    let plain = std::fs::read_to_string(testdata("plain/app.yaml")).unwrap();
    // The literal block keeps its header; its three content lines become one.
    assert_eq!(body.lines().count() + 2, plain.lines().count());
    assert!(
        enc.contains(": |\n    ENC[AES256_GCM") || enc.contains(": |\n  ENC[AES256_GCM"),
        "{enc}"
    );
}

#[test]
fn binary_files_round_trip_and_plaintext_outputs_are_private() {
    let sb = Sandbox::new();
    let blob: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    sb.write("blob.bin", &blob);
    sb.ok(&[
        "encrypt",
        "--age",
        &sb.recipient,
        "-o",
        "blob.bin.enc",
        "blob.bin",
    ]);
    let enc = sb.read_str("blob.bin.enc");
    assert!(
        enc.starts_with("{\n\t\"data\": \"ENC[AES256_GCM,data:"),
        "{}",
        &enc[..80]
    );
    assert!(enc.contains("\"type:str]") || enc.contains(",type:str]\""));
    sb.ok(&[
        "decrypt",
        "--input-type",
        "binary",
        "-o",
        "blob.out",
        "blob.bin.enc",
    ]);
    assert_eq!(sb.read("blob.out"), blob);
    assert_eq!(mode(&sb.path("blob.out")), 0o600);
    // Ciphertext outputs are ordinary files.
    assert_eq!(mode(&sb.path("blob.bin.enc")), 0o644);
}

/// Binary files of 4 MiB or more are streamed (peak memory a few pieces, whatever the
/// size): they round trip through -o and -i, the real sops reads what coffer wrote and
/// coffer what sops wrote, and a changed byte of the data is refused with nothing written.
#[test]
fn large_binary_files_stream_and_stay_sops_files() {
    let sb = Sandbox::new();
    let blob: Vec<u8> = (0..(4u32 << 20) + 12_345)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    sb.write("big.bin", &blob);
    let enc_args = [
        "encrypt",
        "--age",
        &sb.recipient,
        "-o",
        "big.enc",
        "big.bin",
    ];
    sb.ok(&enc_args);
    assert!(sb
        .read_str("big.enc")
        .starts_with("{\n\t\"data\": \"ENC[AES256_GCM,data:"));
    let dec = [
        "decrypt",
        "--input-type",
        "binary",
        "-o",
        "big.out",
        "big.enc",
    ];
    sb.ok(&dec);
    assert!(
        sb.read("big.out") == blob,
        "the round trip gave something else"
    );
    assert_eq!(mode(&sb.path("big.out")), 0o600);
    let first = sb.read("big.enc");
    // In place, both ways.
    sb.write("inplace.bin", &blob);
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "inplace.bin"]);
    assert!(sb.read("inplace.bin") != blob);
    assert_error(
        &sb.run(&["encrypt", "--age", &sb.recipient, "-i", "inplace.bin"]),
        6,
        "already encrypted",
    );
    sb.ok(&["decrypt", "--input-type", "binary", "-i", "inplace.bin"]);
    assert!(sb.read("inplace.bin") == blob, "-i gave something else");

    // The same file in another JSON layout is still an encrypted file: refused for
    // encryption, opened (the general way) for decryption.
    let compact = String::from_utf8(sb.read("big.enc")).unwrap().replacen(
        "{\n\t\"data\": \"",
        "{\"data\":\"",
        1,
    );
    sb.write("compact.enc", &compact);
    assert_error(
        &sb.run(&["encrypt", "--age", &sb.recipient, "-i", "compact.enc"]),
        6,
        "already encrypted",
    );
    sb.ok(&[
        "decrypt",
        "--input-type",
        "binary",
        "-o",
        "compact.out",
        "compact.enc",
    ]);
    assert!(
        sb.read("compact.out") == blob,
        "the compact file read as something else"
    );

    // The real sops, both ways.
    let out = sb.sops(&[
        "decrypt",
        "--input-type",
        "binary",
        "--output-type",
        "binary",
        "big.enc",
    ]);
    assert_success(&out, &["sops decrypt"]);
    assert!(out.stdout == blob, "sops read something else");
    let out = sb.sops(&[
        "encrypt",
        "--age",
        &sb.recipient,
        "--input-type",
        "binary",
        "--output-type",
        "binary",
        "big.bin",
    ]);
    assert_success(&out, &["sops encrypt"]);
    sb.write("by-sops.enc", &out.stdout);
    sb.ok(&[
        "decrypt",
        "--input-type",
        "binary",
        "-o",
        "from-sops.out",
        "by-sops.enc",
    ]);
    assert!(
        sb.read("from-sops.out") == blob,
        "sops's file read as something else"
    );

    // One base64 character of the data changed: refused, nothing written.
    let mut tampered = first.clone();
    let at = tampered.len() / 2;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    sb.write("tampered.enc", &tampered);
    let out = sb.run(&[
        "decrypt",
        "--input-type",
        "binary",
        "-o",
        "tampered.out",
        "tampered.enc",
    ]);
    // As a changed value is refused when the file is read whole (exit 4).
    assert_error(
        &out,
        4,
        "tampered.enc: cannot decrypt the value at data: the data does not decrypt (authentication failed",
    );
    assert!(!sb.path("tampered.out").exists());
    // To stdout (a pipe): the whole plaintext; a tampered file, not one byte of it.
    let out = sb.ok(&[
        "decrypt",
        "--input-type",
        "binary",
        "--output-type",
        "binary",
        "big.enc",
    ]);
    assert!(out.stdout == blob, "stdout gave something else");
    // The data intact but the MAC altered: not one byte to stdout either (the data is
    // decrypted into memory and written once the MAC is checked).
    let text = String::from_utf8(first.clone()).unwrap();
    let at = text.find("\"mac\": \"ENC[AES256_GCM,data:").unwrap() + 30;
    let mut bad_mac = first.clone();
    bad_mac[at] = if bad_mac[at] == b'A' { b'B' } else { b'A' };
    sb.write("bad-mac.enc", &bad_mac);
    for file in ["tampered.enc", "bad-mac.enc"] {
        let out = sb.run(&[
            "decrypt",
            "--input-type",
            "binary",
            "--output-type",
            "binary",
            file,
        ]);
        assert_eq!(out.status.code(), Some(4), "{file}: {}", stderr(&out));
        assert!(
            out.stdout.is_empty(),
            "{file}: {} bytes written",
            out.stdout.len()
        );
    }
    // No private staging directory is left behind.
    let left: Vec<_> = std::fs::read_dir(sb.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("coffer-stream-")
        })
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn stdin_needs_an_input_type_and_then_works() {
    let sb = Sandbox::new();
    let out = sb.stdin(&["encrypt", "--age", &sb.recipient, "-"], b"A=1\n");
    assert_error(&out, 2, "--input-type");
    let out = sb.stdin(
        &[
            "encrypt",
            "--age",
            &sb.recipient,
            "--input-type",
            "dotenv",
            "-",
        ],
        b"A=1\n# c\n",
    );
    assert_success(&out, &["encrypt stdin"]);
    let back = sb.stdin(&["decrypt", "--input-type", "dotenv", "-"], &out.stdout);
    assert_success(&back, &["decrypt stdin"]);
    assert_eq!(stdout(&back), "A=1\n# c\n");
}

#[test]
fn output_types_and_extract() {
    let sb = Sandbox::new();
    sb.copy(&testdata("plain/app.yaml"), "app.yaml");
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "app.yaml"]);
    let json: serde_json::Value = serde_json::from_slice(
        &sb.ok(&["decrypt", "--output-type", "json", "app.yaml"])
            .stdout,
    )
    .unwrap();
    assert_eq!(json["database"]["port"], 5432);
    assert_eq!(json["database"]["pool_ratio"], 0.75);
    assert_eq!(json["database"]["ssl"], true);
    assert_eq!(json["database"]["replica"], serde_json::Value::Null);
    assert_eq!(
        json["database"]["ca_cert"],
        "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUYk1v\n-----END CERTIFICATE-----\n"
    );
    assert_eq!(json["api_keys"][1]["key"], "SG.xyz.123");
    assert_eq!(json["description"], "line one\nline two");

    assert_eq!(
        sb.ok(&[
            "decrypt",
            "--extract",
            r#"["database"]["password"]"#,
            "app.yaml"
        ])
        .stdout,
        b"S3cr3t!pass"
    );
    assert_eq!(
        sb.ok(&[
            "decrypt",
            "--extract",
            r#"["api_keys"][0]["key"]"#,
            "app.yaml"
        ])
        .stdout,
        b"sk_live_51Habc"
    );
    assert_eq!(
        sb.ok(&["decrypt", "--extract", "database.port", "app.yaml"])
            .stdout,
        b"5432"
    );
    let sub = stdout(&sb.ok(&[
        "decrypt",
        "--extract",
        r#"["feature_flags"]"#,
        "--output-type",
        "json",
        "app.yaml",
    ]));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&sub).unwrap(),
        serde_json::json!({"beta": true, "dark_mode": false, "rollout": 25})
    );

    // JSON → YAML and dotenv → JSON.
    sb.copy(&testdata("plain/app.json"), "app.json");
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "app.json"]);
    let yaml = stdout(&sb.ok(&["decrypt", "--output-type", "yaml", "app.json"]));
    assert!(
        yaml.contains("database:\n    host: db.internal\n    port: 5432\n"),
        "{yaml}"
    );
    assert!(yaml.contains("    password: S3cr3t!\"quoted\"\n"), "{yaml}");
    sb.copy(&testdata("plain/app.env"), "app.env");
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "app.env"]);
    let env: serde_json::Value = serde_json::from_slice(
        &sb.ok(&["decrypt", "--output-type", "json", "app.env"])
            .stdout,
    )
    .unwrap();
    assert_eq!(env["MULTILINE"], "first\nsecond");
    assert_eq!(env["GREETING"], "\"hello world\"");
}

#[test]
fn set_of_the_same_value_leaves_the_file_byte_for_byte() {
    let sb = Sandbox::new();
    sb.copy(&testdata("plain/app.yaml"), "app.yaml");
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "app.yaml"]);
    let before = sb.read("app.yaml");
    sb.ok(&["set", "app.yaml", r#"["database"]["port"]"#, "5432"]);
    assert_eq!(sb.read("app.yaml"), before);
}

#[test]
fn set_of_one_value_changes_that_line_the_mac_and_lastmodified_only() {
    let sb = Sandbox::new();
    sb.copy(&testdata("plain/app.yaml"), "app.yaml");
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "app.yaml"]);
    // Make lastmodified differ for sure.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let before = sb.read_str("app.yaml");
    sb.ok(&["set", "app.yaml", r#"["database"]["password"]"#, "n3w-pass"]);
    let after = sb.read_str("app.yaml");
    let changed = changed_lines(&before, &after);
    assert_eq!(changed.len(), 3, "{changed:#?}");
    assert!(changed[0].starts_with("  password: 'ENC["), "{changed:?}");
    assert!(changed[1].starts_with("  lastmodified: "), "{changed:?}");
    assert!(changed[2].starts_with("  mac: ENC["), "{changed:?}");
    assert_eq!(
        sb.ok(&[
            "decrypt",
            "--extract",
            r#"["database"]["password"]"#,
            "app.yaml"
        ])
        .stdout,
        b"n3w-pass"
    );
    // The quoting the author used is kept.
    let plain = stdout(&sb.ok(&["decrypt", "app.yaml"]));
    assert!(plain.contains("  password: 'n3w-pass'\n"), "{plain}");
}

#[test]
fn set_adds_new_keys_and_unset_removes_them() {
    let sb = Sandbox::new();
    for (name, path, check) in [
        ("app.yaml", r#"["database"]["timeout"]"#, "  timeout: 30\n"),
        ("app.json", r#"["database"]["timeout"]"#, "\"timeout\": 30"),
        ("app.env", r#"["TIMEOUT"]"#, "TIMEOUT=30\n"),
        ("app.ini", r#"["smtp"]["timeout"]"#, "timeout = 30\n"),
    ] {
        sb.copy(&testdata(&format!("plain/{name}")), name);
        sb.ok(&["encrypt", "--age", &sb.recipient, "-i", name]);
        sb.ok(&["set", name, path, "30"]);
        let plain = stdout(&sb.ok(&["decrypt", name]));
        assert!(plain.contains(check), "{name}: {plain}");
        sb.ok(&["unset", name, path]);
        let plain = stdout(&sb.ok(&["decrypt", name]));
        let original = std::fs::read_to_string(testdata(&format!("plain/{name}"))).unwrap();
        assert_eq!(plain, original, "{name}");
    }
}

#[test]
fn rotate_changes_every_value_but_not_the_plaintext() {
    let sb = Sandbox::new();
    sb.copy(&testdata("plain/app.env"), "app.env");
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "app.env"]);
    let before = sb.read_str("app.env");
    sb.ok(&["rotate", "-i", "app.env"]);
    let after = sb.read_str("app.env");
    let enc_lines = |s: &str| {
        s.lines()
            .filter(|l| l.contains("ENC[") && !l.starts_with("sops_"))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let (a, b) = (enc_lines(&before), enc_lines(&after));
    assert_eq!(a.len(), b.len());
    assert!(
        a.iter().zip(&b).all(|(x, y)| x != y),
        "a value kept its ciphertext under a new data key"
    );
    assert_eq!(
        stdout(&sb.ok(&["decrypt", "app.env"])),
        std::fs::read_to_string(testdata("plain/app.env")).unwrap()
    );
}

#[test]
fn creation_rules_pick_keys_and_selector_and_updatekeys_rewraps() {
    let sb = Sandbox::new();
    let other = Sandbox::new();
    sb.write(".coffer.yaml", format!(
        "creation_rules:\n  - path_regex: ^k8s/.*\\.yaml$\n    encrypted_regex: ^(data|stringData)$\n    age: {}\n  - age: >-\n      {}\n",
        sb.recipient, sb.recipient
    ));
    sb.write(
        "k8s/secret.yaml",
        "apiVersion: v1\nkind: Secret\ndata:\n  password: hunter2\n",
    );
    sb.ok(&["encrypt", "-i", "k8s/secret.yaml"]);
    let enc = sb.read_str("k8s/secret.yaml");
    assert!(
        enc.starts_with("apiVersion: v1\nkind: Secret\ndata:\n  password: ENC["),
        "{enc}"
    );
    assert!(
        enc.contains("encrypted_regex: ^(data|stringData)$"),
        "{enc}"
    );

    // Add a second recipient to the rule: updatekeys re-wraps, values stay as they are.
    sb.write(".coffer.yaml", format!(
        "creation_rules:\n  - path_regex: ^k8s/.*\\.yaml$\n    encrypted_regex: ^(data|stringData)$\n    age: {},{}\n",
        sb.recipient, other.recipient
    ));
    sb.ok(&["updatekeys", "-y", "k8s/secret.yaml"]);
    let updated = sb.read_str("k8s/secret.yaml");
    let body = |s: &str| s.split("\nsops:\n").next().unwrap().to_string();
    assert_eq!(body(&updated), body(&enc));
    assert!(updated.contains(&other.recipient));
    // The other identity opens it now.
    let out = sb.run_with(
        &["decrypt", "k8s/secret.yaml"],
        &[
            ("COFFER_AGE_KEY_FILE", other.key_file().to_str().unwrap()),
            ("HOME", "/nonexistent"),
        ],
    );
    assert_success(&out, &["decrypt with the second identity"]);
    assert!(stdout(&out).contains("password: hunter2"));
    // A second run has nothing to do.
    let again = sb.ok(&["updatekeys", "-y", "k8s/secret.yaml"]);
    assert_eq!(
        stdout(&again),
        "Plan: 0 file(s) to change (0 with a new data key), 1 unchanged, 0 skipped.\n"
    );
    assert_eq!(sb.read_str("k8s/secret.yaml"), updated);
}

#[test]
fn sops_yaml_is_used_when_there_is_no_coffer_yaml() {
    let sb = Sandbox::new();
    sb.write(
        "conf/.sops.yaml",
        format!(
            "creation_rules:\n  - path_regex: \\.env$\n    age: '{}'\n",
            sb.recipient
        ),
    );
    sb.write("conf/prod.env", "A=1\n");
    sb.ok(&["encrypt", "-i", "conf/prod.env"]);
    assert!(sb.read_str("conf/prod.env").contains(&sb.recipient));
}

#[test]
fn filestatus_reports_json() {
    let sb = Sandbox::new();
    sb.write("a.yaml", "a: 1\n");
    assert_eq!(
        stdout(&sb.ok(&["filestatus", "a.yaml"])),
        "{\"encrypted\":false}\n"
    );
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "a.yaml"]);
    assert_eq!(
        stdout(&sb.ok(&["filestatus", "a.yaml"])),
        "{\"encrypted\":true}\n"
    );
}

#[test]
fn documented_yaml_limitations() {
    // Folded and multi-line plain scalars come back as one line with the same value (a
    // folded block keeps its header), and encrypting says so.
    let sb = Sandbox::new();
    sb.write("l.yaml", "a: >-\n  folded\n  text\nb: plain\n  continued\n");
    let out = sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "l.yaml"]);
    assert_eq!(
        stderr(&out),
        "coffer: warning: l.yaml: the folded block scalar at line 1 will decrypt to the same value written another way\n"
    );
    assert_eq!(
        stdout(&sb.ok(&["decrypt", "l.yaml"])),
        "a: >-\n  folded text\nb: plain continued\n"
    );
}

#[test]
fn in_place_writes_keep_the_file_mode() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    let p = sb.write("a.env", "A=1\n");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "a.env"]);
    assert_eq!(mode(&p), 0o640);
    sb.ok(&["set", "a.env", r#"["A"]"#, "2"]);
    assert_eq!(mode(&p), 0o640);
    // Plaintext written in place is private whatever the file was.
    sb.ok(&["decrypt", "-i", "a.env"]);
    assert_eq!(mode(&p), 0o600);
    assert_eq!(sb.read_str("a.env"), "A=2\n");
}

#[test]
fn set_adds_the_keys_missing_on_the_way() {
    let sb = Sandbox::new();
    sb.encrypted("app.yaml", "db:\n  user: u\nother: 1\n");
    sb.ok(&["set", "app.yaml", "[\"db\"][\"tls\"][\"port\"]", "5432"]);
    sb.ok(&[
        "set",
        "app.yaml",
        "[\"new\"][\"deep\"][\"key\"]",
        "\"text\"",
    ]);
    assert_eq!(
        stdout(&sb.ok(&["decrypt", "app.yaml"])),
        "db:\n  user: u\n  tls:\n    port: 5432\nother: 1\nnew:\n  deep:\n    key: text\n"
    );
    sb.encrypted("app.json", "{\n  \"db\": {\"user\": \"u\"}\n}\n");
    sb.ok(&["set", "app.json", "[\"db\"][\"tls\"][\"on\"]", "true"]);
    assert_eq!(
        stdout(&sb.ok(&["decrypt", "app.json"])),
        "{\n  \"db\": {\"user\": \"u\", \"tls\": {\"on\": true}}\n}\n"
    );
    sb.encrypted("app.env", "A=1\n");
    let out = sb.run(&["set", "app.env", "[\"A\"][\"B\"]", "1"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
}

#[test]
fn set_takes_a_json_object_or_array_as_a_subtree() {
    let sb = Sandbox::new();
    sb.encrypted("app.yaml", "db: old\nother: 1\n");
    sb.ok(&[
        "set",
        "app.yaml",
        "[\"db\"]",
        "{\"user\": \"u\", \"port\": 5432}",
    ]);
    sb.ok(&["set", "app.yaml", "[\"hosts\"]", "[\"a\", \"b\"]"]);
    sb.ok(&["set", "app.yaml", "[\"x\"][\"y\"]", "{\"z\": true}"]);
    assert_eq!(
        stdout(&sb.ok(&["decrypt", "app.yaml"])),
        // `y` is a YAML 1.1 boolean: quoted in new text, as go-yaml (sops) writes it.
        "db:\n  user: u\n  port: 5432\nother: 1\nhosts:\n  - a\n  - b\nx:\n  \"y\":\n    z: true\n"
    );
    sb.encrypted("app.json", "{\n  \"db\": \"old\",\n  \"other\": 1\n}\n");
    sb.ok(&[
        "set",
        "app.json",
        "[\"db\"]",
        "{\"user\": \"u\", \"ports\": [1, 2]}",
    ]);
    assert_eq!(
        stdout(&sb.ok(&["decrypt", "app.json"])),
        "{\n  \"db\": {\"user\": \"u\", \"ports\": [1, 2]},\n  \"other\": 1\n}\n"
    );
}

#[test]
fn unset_removes_list_items() {
    let sb = Sandbox::new();
    sb.encrypted(
        "app.yaml",
        "hosts:\n  - a\n  - name: b\n    port: 2\n  - c\nother: 1\n",
    );
    sb.ok(&["unset", "app.yaml", "[\"hosts\"][1]"]);
    assert_eq!(
        stdout(&sb.ok(&["decrypt", "app.yaml"])),
        "hosts:\n  - a\n  - c\nother: 1\n"
    );
    sb.ok(&["unset", "app.yaml", "[\"hosts\"][0]"]);
    assert_eq!(
        stdout(&sb.ok(&["decrypt", "app.yaml"])),
        "hosts:\n  - c\nother: 1\n"
    );
    sb.encrypted(
        "app.json",
        "{\n  \"hosts\": [\"a\", {\"n\": 1}, [2, 3]],\n  \"x\": 1\n}\n",
    );
    sb.ok(&["unset", "app.json", "[\"hosts\"][1]"]);
    sb.ok(&["unset", "app.json", "[\"hosts\"][0]"]);
    assert_eq!(
        stdout(&sb.ok(&["decrypt", "app.json"])),
        "{\n  \"hosts\": [[2, 3]],\n  \"x\": 1\n}\n"
    );
    let out = sb.run(&["unset", "app.json", "[\"hosts\"][5]"]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
}

/// A text of `services` services of ten values each, with comments, in `format`: over
/// 1 MiB from 5,000 services, where an encryption's output is written through a file.
fn large_text(format: &str, services: usize) -> String {
    let mut out = String::new();
    for s in 0..services {
        match format {
            "yaml" => {
                out.push_str(&format!("# service {s}\ns{s}:\n"));
                for k in 0..10 {
                    out.push_str(&format!("  k{k}: secret-{s}-{k}\n"));
                }
            }
            "json" => {
                out.push_str(if s == 0 { "{\n" } else { ",\n" });
                let values: Vec<String> = (0..10)
                    .map(|k| format!("\"k{k}\": \"secret-{s}-{k}\""))
                    .collect();
                out.push_str(&format!("  \"s{s}\": {{{}}}", values.join(", ")));
            }
            "env" => {
                out.push_str(&format!("# service {s}\n"));
                for k in 0..10 {
                    out.push_str(&format!("S{s}_K{k}=secret-{s}-{k}\n"));
                }
            }
            _ => {
                out.push_str(&format!("; service {s}\n[s{s}]\n"));
                for k in 0..10 {
                    out.push_str(&format!("k{k} = secret-{s}-{k}\n"));
                }
            }
        }
    }
    if format == "json" {
        out.push_str("\n}\n");
    }
    out
}

/// A large text's encryption is written into a private file and checked there, not
/// held beside its document: it round trips through -o, -i and stdout in every text
/// format, comments and all, as coffer and as sops, and the real sops reads it.
#[test]
fn large_text_files_are_written_through_a_file_and_stay_sops_files() {
    let sb = Sandbox::new();
    for format in ["yaml", "json", "env", "ini"] {
        let plain = large_text(format, 5_000);
        assert!(plain.len() > 1 << 20, "{format}: {} bytes", plain.len());
        let name = format!("big.{format}");
        sb.write(&name, &plain);
        let enc = format!("big.enc.{format}");
        sb.ok(&["encrypt", "--age", &sb.recipient, "-o", &enc, &name]);
        let text = sb.read_str(&enc);
        assert!(!text.contains("secret-"), "{format}: a value in clear");
        assert_eq!(mode(&sb.path(&enc)), 0o644, "{format}");
        let out = sb.ok(&["decrypt", &enc]);
        assert!(
            out.stdout == plain.as_bytes(),
            "{format}: read back otherwise"
        );
        // To stdout (YAML), and in place (INI), both ways: the same writing.
        if format == "yaml" {
            let out = sb.ok(&["encrypt", "--age", &sb.recipient, &name]);
            sb.write("stdout.enc", &out.stdout);
            let out = sb.ok(&["decrypt", "--input-type", "yaml", "stdout.enc"]);
            assert!(out.stdout == plain.as_bytes(), "stdout read back otherwise");
            // Without a temporary directory to write in, the output is made in memory.
            let out = sb.run_with(
                &["encrypt", "--age", &sb.recipient, &name],
                &[("TMPDIR", "/nonexistent/tmp")],
            );
            assert_success(&out, &["encrypt without a temporary directory"]);
            sb.write("stdout.enc", &out.stdout);
            let out = sb.ok(&["decrypt", "--input-type", "yaml", "stdout.enc"]);
            assert!(
                out.stdout == plain.as_bytes(),
                "held output read back otherwise"
            );
        }
        // coffer as sops, in place (JSON): the same writing.
        if format == "json" {
            let out = sb
                .as_sops()
                .args(["encrypt", "--age", &sb.recipient, "-i", &name])
                .output()
                .expect("runs");
            assert_success(&out, &["sops encrypt -i"]);
            assert!(!sb.read_str(&name).contains("secret-"));
            let out = sb.ok(&["decrypt", &name]);
            assert!(
                out.stdout == plain.as_bytes(),
                "sops -i read back otherwise"
            );
        }
        if format == "ini" {
            sb.ok(&["encrypt", "--age", &sb.recipient, "-i", &name]);
            assert!(!sb.read_str(&name).contains("secret-"));
            sb.ok(&["decrypt", "-i", &name]);
            assert!(sb.read(&name) == plain.as_bytes(), "-i read back otherwise");
        }
    }
    // The real sops reads what was written.
    for (enc, path) in [
        ("big.enc.yaml", "[\"s4999\"][\"k9\"]"),
        ("big.enc.json", "[\"s4999\"][\"k9\"]"),
    ] {
        let out = sb.sops(&["decrypt", "--extract", path, enc]);
        assert_success(&out, &["sops decrypt", enc]);
        assert_eq!(stdout(&out).trim_end(), "secret-4999-9", "{enc}");
    }
    let out = sb.sops(&["decrypt", "big.enc.env"]);
    assert_success(&out, &["sops decrypt big.enc.env"]);
    assert!(stdout(&out).contains("S4999_K9=secret-4999-9\n"));
}

/// Where the walked check does not take a large output (a flow collection), the whole
/// check reads it from the file; where the layout is not kept, the canonical layout is
/// written there instead, with the warning, or refused under --strict-layout with
/// nothing written.
#[test]
fn large_text_files_checked_whole_or_falling_back_are_written_too() {
    let sb = Sandbox::new();
    let encrypt =
        |out: &str, file: &str| sb.ok(&["encrypt", "--age", &sb.recipient, "-o", out, file]);
    let mut flow = large_text("yaml", 5_000);
    flow.push_str("list: [secret-a, secret-b]\n");
    sb.write("flow.yaml", &flow);
    let out = encrypt("flow.enc.yaml", "flow.yaml");
    assert_eq!(stderr(&out), "");
    assert!(sb.ok(&["decrypt", "flow.enc.yaml"]).stdout == flow.as_bytes());

    // A top-level flow mapping: written in the canonical layout, said once.
    let values: Vec<String> = (0..60_000)
        .map(|i| format!("\"k{i}\": \"secret-{i}\""))
        .collect();
    let mapping = format!("{{{}}}\n", values.join(", "));
    assert!(mapping.len() > 1 << 20);
    sb.write("map.yaml", &mapping);
    let out = encrypt("map.enc.yaml", "map.yaml");
    assert!(
        stderr(&out).contains("rewritten in the canonical layout"),
        "{}",
        stderr(&out)
    );
    let text = sb.read_str("map.enc.yaml");
    assert!(text.starts_with("k0: ENC[AES256_GCM,") && !text.contains("secret-"));
    let out = sb.ok(&["decrypt", "--extract", "[\"k59999\"]", "map.enc.yaml"]);
    assert_eq!(stdout(&out), "secret-59999");

    // Under --strict-layout, neither a canonical layout nor an output that will not
    // decrypt as written (`0x1F` comes back as `31`) is written.
    let mut hex = large_text("yaml", 5_000);
    hex.push_str("n: 0x1F\n");
    sb.write("hex.yaml", &hex);
    for file in ["map.yaml", "hex.yaml"] {
        let out = sb.run(&[
            "--strict-layout",
            "encrypt",
            "--age",
            &sb.recipient,
            "-o",
            "strict.enc",
            file,
        ]);
        assert_error(&out, 5, "refused by --strict-layout, nothing was written");
        assert!(!sb.path("strict.enc").exists(), "{file}");
    }
    let out = encrypt("hex.enc.yaml", "hex.yaml");
    assert!(
        stderr(&out)
            .contains("hex.yaml: line 60001 will decrypt to the same values written another way"),
        "{}",
        stderr(&out)
    );
    let out = sb.ok(&["decrypt", "--extract", "[\"n\"]", "hex.enc.yaml"]);
    assert_eq!(stdout(&out), "31");
}
