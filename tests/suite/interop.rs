//! Files written by sops open with coffer, and files coffer writes open with sops.

use coffer::cipher::DataKey;
use coffer::format::Format;
use coffer::sops;

use super::common::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The raw data keys recovered from sops's PGP-encrypted test files.
fn recovered_key(name: &str) -> DataKey {
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(testdata(
            "interop/pgp-datakeys/datakeys_recovered_with_gpg.json",
        ))
        .unwrap(),
    )
    .unwrap();
    DataKey::from_slice(&hex(json[name].as_str().unwrap())).unwrap()
}

fn open_with_recovered(
    path: &str,
    key_name: &str,
    format: Format,
    ignore_mac: bool,
) -> coffer::Result<sops::Opened> {
    let bytes = std::fs::read(testdata(path)).unwrap();
    let (doc, meta, _) = sops::read_metadata(path, format, bytes)?;
    sops::open_with_key(
        path,
        format,
        doc,
        meta,
        recovered_key(key_name),
        sops::OpenOptions::ignoring_mac(ignore_mac),
    )
}

fn plaintext(path: &str, key_name: &str, format: Format) -> String {
    let o = open_with_recovered(path, key_name, format, false)
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    String::from_utf8(o.plaintext().unwrap().to_vec()).unwrap()
}

#[test]
fn sops_3_13_stores_decrypt_with_injected_data_keys() {
    let r = "interop/functional-tests-res/";
    assert_eq!(
        plaintext(
            &format!("{r}format.enc.yaml"),
            "format.enc.yaml",
            Format::Yaml
        ),
        "foo: bar\n"
    );
    assert_eq!(
        plaintext(
            &format!("{r}format.enc.json"),
            "format.enc.json",
            Format::Json
        ),
        "{\n\t\"foo\": \"bar\"\n}\n"
    );
    // sops's dotenv keeps spaces around `=` as part of the key and value.
    assert_eq!(
        plaintext(
            &format!("{r}format.enc.env"),
            "format.enc.env",
            Format::Dotenv
        ),
        "foo = bar\n"
    );
    assert_eq!(
        plaintext(&format!("{r}format.enc.ini"), "format.enc.ini", Format::Ini),
        "[foo]\nbar = baz\n"
    );
}

#[test]
fn sops_ini_with_triple_quoted_metadata() {
    // format-2.enc.ini was written by 3.13.1 with its own data key, which was not
    // recovered; reading its metadata proves the triple-quoted enc parses.
    let bytes = std::fs::read(testdata("interop/functional-tests-res/format-2.enc.ini")).unwrap();
    let (_, meta, _) = sops::read_metadata("format-2.enc.ini", Format::Ini, bytes).unwrap();
    let s = &meta.pgp[0].enc;
    assert!(s.contains("-----BEGIN PGP MESSAGE-----\n\nwcBMAy"), "{s}");
    assert!(s.contains("=j3Rn\n-----END PGP MESSAGE-----"), "{s}");
}

#[test]
fn sops_comments_are_decrypted_in_place() {
    let p = plaintext(
        "interop/functional-tests-res/comments.enc.yaml",
        "comments.enc.yaml",
        Format::Yaml,
    );
    assert_eq!(
        p,
        "# first comment in file\nlorem: ipsum\n# this-is-a-comment\ndolor: sit\n"
    );
}

#[test]
fn unencrypted_comments_stay_as_they_are() {
    // Written by sops 3.3.1, before it encrypted comments: they are read as they stand,
    // and the file decrypts to what the real sops prints for it.
    let path = "interop/functional-tests-res/comments_unencrypted_comments.yaml";
    let bytes = std::fs::read(testdata(path)).unwrap();
    let (doc, meta, _) = sops::read_metadata("c.yaml", Format::Yaml, bytes).unwrap();
    assert!(doc
        .leaves
        .iter()
        .any(|l| l.value_str(&doc.text) == Some(" first comment in file")));
    assert_eq!(meta.version.as_deref(), Some("3.3.1"));
    let expected =
        std::fs::read_to_string(testdata("interop/functional-tests-res/comments.yaml")).unwrap();
    assert_eq!(
        plaintext(path, "comments_unencrypted_comments.yaml", Format::Yaml),
        format!("{expected}\n")
    );
}

#[test]
fn a_file_without_mac_fails_unless_asked() {
    let err = open_with_recovered(
        "interop/functional-tests-res/no_mac.yaml",
        "no_mac.yaml",
        Format::Yaml,
        false,
    )
    .err()
    .unwrap();
    assert!(matches!(err, coffer::Error::MacMissing { .. }), "{err}");
    let o = open_with_recovered(
        "interop/functional-tests-res/no_mac.yaml",
        "no_mac.yaml",
        Format::Yaml,
        true,
    )
    .unwrap();
    assert!(String::from_utf8(o.plaintext().unwrap().to_vec())
        .unwrap()
        .starts_with("myapp1: "));
}

#[test]
fn sops_example_files_verify_their_mac() {
    for (file, format) in [
        ("main_example.yaml", Format::Yaml),
        ("main_example.json", Format::Json),
        ("main_example.ini", Format::Ini),
        ("main_example.txt", Format::Binary),
    ] {
        let o = open_with_recovered(&format!("interop/pgp-datakeys/{file}"), file, format, false)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let text = String::from_utf8(o.plaintext().unwrap().to_vec()).unwrap();
        assert!(
            !text.contains("ENC["),
            "{file} still has ciphertext:\n{text}"
        );
        assert!(!text.is_empty());
    }
}

#[test]
fn sops_age_files_decrypt_through_the_cli() {
    let sb = Sandbox::without_key();
    let key = testdata("interop/sops-age-tests/key.txt");
    let key = key.to_str().unwrap();
    let env = [("SOPS_AGE_KEY_FILE", key)];
    let yaml = sb.run_with(
        &[
            "decrypt",
            "--output-type",
            "json",
            testdata("interop/sops-age-tests/secret.enc.yaml")
                .to_str()
                .unwrap(),
        ],
        &env,
    );
    assert_success(&yaml, &["decrypt yaml"]);
    let got: serde_json::Value = serde_json::from_slice(&yaml.stdout).unwrap();
    let mut want: serde_json::Value = serde_json::from_slice(
        &std::fs::read(testdata("interop/sops-age-tests/secret.json")).unwrap(),
    )
    .unwrap();
    want.as_object_mut().unwrap().remove("0word");
    assert_eq!(got, want);

    // The JSON file stores 7 as type float (sops before 3.13.2); it still reads as 7.
    let json = sb.run_with(
        &[
            "decrypt",
            testdata("interop/sops-age-tests/secret.enc.json")
                .to_str()
                .unwrap(),
        ],
        &env,
    );
    assert_success(&json, &["decrypt json"]);
    let got: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let want: serde_json::Value = serde_json::from_slice(
        &std::fs::read(testdata("interop/sops-age-tests/secret.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(got, want);

    let env_out = sb.run_with(
        &[
            "decrypt",
            testdata("interop/sops-age-tests/secret.enc.env")
                .to_str()
                .unwrap(),
        ],
        &env,
    );
    assert_success(&env_out, &["decrypt env"]);
    assert_eq!(
        stdout(&env_out),
        "secret=this is a secret\nanother_secret=7\n"
    );
}

#[test]
fn rops_reference_files_decrypt_byte_for_byte() {
    let sb = Sandbox::without_key();
    let key = testdata("interop/rops-sops_references/age_key.txt");
    for name in [
        "empty_value",
        "encrypted_regex",
        "encrypted_suffix",
        "example",
        "mac_only_encrypted",
        "unencrypted_regex",
        "unencrypted_suffix",
    ] {
        let enc = testdata(&format!("interop/rops-sops_references/age_{name}.yaml"));
        let out = sb.run_with(
            &["decrypt", enc.to_str().unwrap()],
            &[("COFFER_AGE_KEY_FILE", key.to_str().unwrap())],
        );
        assert_success(&out, &[name]);
        let want = std::fs::read_to_string(testdata(&format!(
            "interop/rops-sops_references/age_{name}_plaintext.yaml"
        )))
        .unwrap();
        assert_eq!(stdout(&out), want, "{name}");
        // These files lack `version`: read with one warning, not an error.
        assert!(
            stderr(&out).contains("has no version"),
            "{name}: {}",
            stderr(&out)
        );
    }
}

/// Every plaintext sample, encrypted by coffer, decrypted by sops: same values.
#[test]
fn sops_decrypts_what_coffer_writes() {
    let sb = Sandbox::new();
    for name in [
        "app.yaml",
        "indent4.yaml",
        "app.json",
        "tabs.json",
        "compact.json",
        "app.env",
        "app.ini",
    ] {
        sb.copy(&testdata(&format!("plain/{name}")), name);
        let enc = format!("enc.{name}");
        let out = sb.ok(&["encrypt", "--age", &sb.recipient, "-o", &enc, name]);
        assert!(out.stdout.is_empty());
        let (ours, theirs) = match name.rsplit('.').next().unwrap() {
            // dotenv and INI have no typed values: compare the text sops prints.
            "env" | "ini" => (
                sb.ok(&["decrypt", &enc]).stdout,
                sb.sops(&["decrypt", &enc]),
            ),
            _ => (
                sb.ok(&["decrypt", "--output-type", "json", &enc]).stdout,
                sb.sops(&["decrypt", "--output-type", "json", &enc]),
            ),
        };
        assert_success(&theirs, &["sops decrypt", name]);
        if name.ends_with(".env") {
            // sops drops blank lines from dotenv files; coffer keeps them.
            let ours = String::from_utf8_lossy(&ours).replace("\n\n", "\n");
            assert_eq!(ours, String::from_utf8_lossy(&theirs.stdout), "{name}");
        } else if name.ends_with(".ini") {
            let norm = |s: &[u8]| -> Vec<String> {
                String::from_utf8_lossy(s)
                    .lines()
                    .filter(|l| l.contains('=') || l.contains(':'))
                    .map(|l| l.replace(' ', "").replace(':', "="))
                    .collect()
            };
            assert_eq!(norm(&ours), norm(&theirs.stdout), "{name}");
        } else {
            let a: serde_json::Value = serde_json::from_slice(&ours).unwrap();
            let b: serde_json::Value = serde_json::from_slice(&theirs.stdout).unwrap();
            assert_eq!(a, b, "{name}");
        }
    }
}

#[test]
fn sops_reads_coffer_comments_and_multi_document_yaml() {
    let sb = Sandbox::new();
    sb.copy(&testdata("plain/multi.yaml"), "multi.yaml");
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "multi.yaml"]);
    let out = sb.sops(&["decrypt", "multi.yaml"]);
    assert_success(&out, &["sops decrypt multi.yaml"]);
    let text = stdout(&out);
    assert!(
        text.contains("# first document") && text.contains("# second document"),
        "{text}"
    );
    assert!(
        text.contains("password: one") && text.contains("password: two"),
        "{text}"
    );
}

#[test]
fn coffer_decrypts_what_sops_writes() {
    let sb = Sandbox::new();
    for name in ["app.yaml", "app.json", "app.env", "app.ini"] {
        sb.copy(&testdata(&format!("plain/{name}")), name);
        let enc = format!("sops.{name}");
        let out = sb.sops(&["encrypt", "--age", &sb.recipient, "--output", &enc, name]);
        assert_success(&out, &["sops encrypt", name]);
        let ours = sb.ok(&["decrypt", "--output-type", "json", &enc]);
        let theirs = sb.sops(&["decrypt", "--output-type", "json", &enc]);
        if name.ends_with(".ini") || name.ends_with(".env") {
            // sops cannot convert these to JSON the way coffer does; compare plaintext.
            let ours = sb.ok(&["decrypt", &enc]);
            let theirs = sb.sops(&["decrypt", &enc]);
            // The layout is sops's own either way; coffer keeps it, and decrypts comments.
            assert_eq!(stdout(&ours), stdout(&theirs), "{name}");
            assert!(!stdout(&ours).contains("ENC["), "{name}");
            continue;
        }
        let a: serde_json::Value = serde_json::from_slice(&ours.stdout).unwrap();
        let b: serde_json::Value = serde_json::from_slice(&theirs.stdout).unwrap();
        assert_eq!(a, b, "{name}");
    }
}

#[test]
fn a_value_changed_by_sops_set_still_verifies() {
    let sb = Sandbox::new();
    sb.copy(&testdata("plain/app.yaml"), "app.yaml");
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "app.yaml"]);
    let out = sb.sops(&["set", "app.yaml", r#"["database"]["port"]"#, "6543"]);
    assert_success(&out, &["sops set"]);
    let port = sb.ok(&[
        "decrypt",
        "--extract",
        r#"["database"]["port"]"#,
        "app.yaml",
    ]);
    assert_eq!(stdout(&port), "6543");
}

#[test]
fn a_sops_file_with_several_master_keys_verifies() {
    let o = open_with_recovered(
        "interop/functional-tests-res/multiple_keys.yaml",
        "multiple_keys.yaml",
        Format::Yaml,
        false,
    )
    .unwrap();
    let text = String::from_utf8(o.plaintext().unwrap().to_vec()).unwrap();
    assert!(
        text.starts_with("message: ") && !text.contains("ENC["),
        "{text}"
    );
    // Both PGP keys are kept, so re-encrypting with the same data key loses neither.
    assert_eq!(
        o.meta
            .recipients()
            .iter()
            .filter(|r| r.starts_with("pgp:"))
            .count(),
        2,
        "{:?}",
        o.meta.recipients()
    );
}

#[test]
fn sops_functional_test_plaintexts_round_trip_and_open_with_sops() {
    let sb = Sandbox::new();
    for name in ["comments.yaml", "comments_list.yaml", "plainfile.yaml"] {
        let original =
            std::fs::read(testdata(&format!("interop/functional-tests-res/{name}"))).unwrap();
        sb.write(name, &original);
        sb.ok(&["encrypt", "--age", &sb.recipient, "-i", name]);
        assert_eq!(sb.ok(&["decrypt", name]).stdout, original, "{name}");
        let theirs = sb.sops(&["decrypt", name]);
        assert_success(&theirs, &["sops decrypt", name]);
        assert!(
            !stdout(&theirs).contains("ENC["),
            "{name}: {}",
            stdout(&theirs)
        );
    }
}

#[test]
fn sops_configs_are_read_and_rules_fail_only_where_they_apply() {
    let sb = Sandbox::new();
    // sops's own functional-test config: PGP keys and Shamir key groups.
    sb.copy(
        &testdata("interop/functional-tests-res/dot.sops.yaml"),
        ".sops.yaml",
    );
    sb.write("test_roundtrip_keygroups.yaml", "a: 1\n");
    let out = sb.run(&["encrypt", "test_roundtrip_keygroups.yaml"]);
    // Its key groups hold PGP keys this sandbox's gpg does not have.
    assert_error(&out, 1, "encryption failed: No public key");
    // The catch-all rule names only a PGP key, which gpg does not have here.
    sb.write("other.yaml", "a: 1\n");
    assert_error(
        &sb.run(&["encrypt", "other.yaml"]),
        1,
        "pgp:FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4: gpg: [stdin]: encryption failed: No public key",
    );
    // A flag still works under that config.
    sb.ok(&["encrypt", "--age", &sb.recipient, "other.yaml"]);

    // sops-age's config spells the key `path_regexp` and lists recipients under key_groups.
    let age = Sandbox::without_key();
    age.copy(
        &testdata("interop/sops-age-tests/dot.sops.yaml"),
        ".sops.yaml",
    );
    age.write("x.json", "{\"a\": 1}\n");
    age.ok(&["encrypt", "-i", "x.json"]);
    let enc = age.read_str("x.json");
    assert_eq!(enc.matches("\"recipient\": \"age1").count(), 3, "{enc}");
    let key = testdata("interop/sops-age-tests/key.txt");
    let out = age.run_with(
        &["decrypt", "x.json"],
        &[("SOPS_AGE_KEY_FILE", key.to_str().unwrap())],
    );
    assert_eq!(stdout(&out), "{\"a\": 1}\n");
}

#[test]
fn large_binary_files_open_both_ways_and_a_changed_byte_is_refused() {
    // Over a megabyte: opened in chunks with the MAC hashed beside them.
    let sb = Sandbox::new();
    let big: Vec<u8> = (0..(3u32 << 20) + 5).map(|i| (i * 7 % 251) as u8).collect();
    sb.write("big.bin", &big);
    let out = sb.sops(&[
        "encrypt",
        "--age",
        &sb.recipient,
        "--output",
        "sops.bin",
        "big.bin",
    ]);
    assert_success(&out, &["sops encrypt"]);
    assert_eq!(sb.ok(&["decrypt", "sops.bin"]).stdout, big);
    sb.ok(&[
        "encrypt",
        "--age",
        &sb.recipient,
        "-o",
        "ours.bin",
        "big.bin",
    ]);
    let out = sb.sops(&["decrypt", "ours.bin"]);
    assert_success(&out, &["sops decrypt"]);
    assert_eq!(out.stdout, big);

    // One base64 character of the data changed: the tag fails, nothing is printed.
    let text = sb.read_str("ours.bin");
    let at = text.find("data:").unwrap() + 5 + 2_000_000;
    let c = if &text[at..at + 1] == "A" { "B" } else { "A" };
    sb.write("bad.bin", format!("{}{c}{}", &text[..at], &text[at + 1..]));
    let out = sb.run(&["decrypt", "bad.bin"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(stderr(&out).contains("bad.bin"), "{}", stderr(&out));
    let out = sb.run(&["decrypt", "-o", "bad.out", "bad.bin"]);
    assert!(!out.status.success());
    assert!(!sb.path("bad.out").exists());

    // A `/` of the data written `\/` (the same JSON string): the data is found from the
    // file's end and does not decode as it stands, so the file goes the general way,
    // which reads the escape, both to stdout and with -o.
    let at = text.find("data:").unwrap() + 5;
    let slash = at + text[at + 1_000..].find('/').unwrap() + 1_000;
    sb.write(
        "escaped.bin",
        format!("{}\\{}", &text[..slash], &text[slash..]),
    );
    assert_eq!(sb.ok(&["decrypt", "escaped.bin"]).stdout, big);
    sb.ok(&["decrypt", "-o", "escaped.out", "escaped.bin"]);
    assert_eq!(std::fs::read(sb.path("escaped.out")).unwrap(), big);
}

/// The real sops with the identities in `keys`.
fn sops_with(sb: &Sandbox, keys: &std::path::Path, args: &[&str]) -> std::process::Output {
    sb.sops_env(&[("SOPS_AGE_KEY_FILE", keys.as_os_str())], args)
}

#[test]
fn files_sops_split_over_shamir_key_groups_open_in_coffer_and_keep_their_groups() {
    let (a, b, c) = (Sandbox::new(), Sandbox::new(), Sandbox::new());
    let keys = |who: &[&Sandbox], name: &str| {
        let text: String = who
            .iter()
            .map(|s| std::fs::read_to_string(s.key_file()).unwrap())
            .collect();
        a.write(name, text);
        a.path(name)
    };
    let (ac, bc) = (keys(&[&a, &c], "ac.txt"), keys(&[&b, &c], "bc.txt"));
    // coffer with the identities of groups 0 and 2.
    let with_ac = |args: &[&str]| {
        a.cmd()
            .env("SOPS_AGE_KEY_FILE", &ac)
            .args(args)
            .output()
            .unwrap()
    };
    // Three groups of one key each, two of them needed.
    let three_groups = || {
        a.write(
            ".sops.yaml",
            format!(
                "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n      - age: [{}]\n      - age: [{}]\n      - age: [{}]\n",
                a.recipient, b.recipient, c.recipient
            ),
        );
    };
    three_groups();
    for name in ["app.yaml", "app.json", "app.env", "app.ini"] {
        a.copy(&testdata(&format!("plain/{name}")), name);
        let enc = format!("split.{name}");
        let out = a.sops(&["encrypt", "--output", &enc, name]);
        assert_success(&out, &["sops encrypt", name]);
        assert!(a.read_str(&enc).contains("key_groups"), "{name}");

        // Two groups of three open it; sops, with another two, reads the same.
        let ours = with_ac(&["decrypt", &enc]);
        assert_success(&ours, &["decrypt with groups 0 and 2", name]);
        let theirs = sops_with(&a, &bc, &["decrypt", &enc]);
        assert_success(&theirs, &["sops decrypt", name]);
        assert_eq!(stdout(&ours), stdout(&theirs), "{name}");

        // One group is not enough.
        let out = c.run(&["decrypt", a.path(&enc).to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(3), "{name}: {}", stderr(&out));
        assert!(stdout(&out).is_empty());
        assert!(
            stderr(&out).contains("1 of 3 key groups opened; the data key needs 2"),
            "{name}: {}",
            stderr(&out)
        );
    }

    // A value set by coffer: the shares are written back as they were, so sops opens the
    // file with groups coffer never opened.
    let out = with_ac(&["set", "split.app.yaml", r#"["database"]["port"]"#, "6543"]);
    assert_success(&out, &["set"]);
    let theirs = sops_with(
        &a,
        &bc,
        &[
            "decrypt",
            "--extract",
            r#"["database"]["port"]"#,
            "split.app.yaml",
        ],
    );
    assert_success(&theirs, &["sops decrypt after set"]);
    assert_eq!(stdout(&theirs).trim_end(), "6543");

    // Rotated by coffer: a new data key, split anew over the same groups.
    let before = a.read_str("split.app.yaml");
    let out = with_ac(&["rotate", "-i", "split.app.yaml"]);
    assert_success(&out, &["rotate"]);
    let after = a.read_str("split.app.yaml");
    assert_ne!(first_enc(&before), first_enc(&after));
    assert_eq!(after.matches("recipient:").count(), 3);
    let theirs = sops_with(&a, &bc, &["decrypt", "split.app.yaml"]);
    assert_success(&theirs, &["sops decrypt after rotate"]);
    assert!(stdout(&theirs).contains("port: 6543"));

    // updatekeys: a key joins group 1. The same data key is split anew (the values stay
    // byte for byte), and sops opens the file with the new key and group 2.
    let d = Sandbox::new();
    a.write(
        ".sops.yaml",
        format!(
            "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n      - age: [{}]\n      - age: [{}, {}]\n      - age: [{}]\n",
            a.recipient, b.recipient, d.recipient, c.recipient
        ),
    );
    let before = a.read_str("split.app.yaml");
    let out = with_ac(&["updatekeys", "-y", "split.app.yaml"]);
    assert_success(&out, &["updatekeys on a split file"]);
    assert!(
        stdout(&out).contains(&format!("+ group 1: {}", d.recipient)),
        "{}",
        stdout(&out)
    );
    let after = a.read_str("split.app.yaml");
    assert_eq!(first_enc(&before), first_enc(&after), "the data key stays");
    assert_eq!(after.matches("recipient:").count(), 4);
    let dc = keys(&[&d, &c], "dc.txt");
    let theirs = sops_with(&a, &dc, &["decrypt", "split.app.yaml"]);
    assert_success(&theirs, &["sops decrypt with the new key"]);
    assert!(stdout(&theirs).contains("port: 6543"));
    three_groups();

    // coffer splits new files by the same rules, and sops opens them with any two groups.
    for name in ["app.yaml", "app.json", "app.env", "app.ini"] {
        let enc = format!("ours.{name}");
        a.ok(&["encrypt", "-o", &enc, name]);
        let text = a.read_str(&enc);
        assert!(text.contains("shamir_threshold"), "{name}: {text}");
        let theirs = sops_with(&a, &bc, &["decrypt", &enc]);
        assert_success(&theirs, &["sops decrypt", name]);
        assert!(stdout(&theirs).contains("S3cr3t!"), "{name}");
        let ours = with_ac(&["decrypt", &enc]);
        assert_eq!(ours.stdout, a.read(name), "{name}");
    }

    // A threshold the groups cannot meet is refused before anything is written.
    a.write(
        ".sops.yaml",
        format!(
            "creation_rules:\n  - shamir_threshold: 4\n    key_groups:\n      - age: [{}]\n      - age: [{}]\n",
            a.recipient, b.recipient
        ),
    );
    let out = a.run(&["encrypt", "-o", "never.yaml", "app.yaml"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("shamir_threshold must be a number from 2 to 2"),
        "{}",
        stderr(&out)
    );
    assert!(!a.path("never.yaml").exists());
}
