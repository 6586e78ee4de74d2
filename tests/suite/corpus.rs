//! The hard cases in `testdata/corpus/`: each encrypts, leaves no value in clear,
//! decrypts to the same data with coffer and with the real sops.

use super::common::*;

/// How a file comes back from a round trip (`testdata/corpus/expected.txt`).
fn expectations() -> Vec<(String, String)> {
    std::fs::read_to_string(testdata("corpus/expected.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (f, how) = l.split_once(' ').unwrap();
            (f.to_string(), how.to_string())
        })
        .collect()
}

/// Every word of the input that names a secret.
fn secrets(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || "\"',:{}[]=".contains(c))
        .filter(|w| w.contains("secret") || w.contains("s3cret") || w.contains("hunter2"))
        .map(str::to_string)
        .collect()
}

/// JSON numbers compared as numbers (sops writes `7`, coffer `7.0` for a float).
fn normalized(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Number(n) => Value::String(format!("{}", n.as_f64().unwrap())),
        Value::Array(a) => Value::Array(a.into_iter().map(normalized).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, normalized(v))).collect()),
        other => other,
    }
}

/// What a decrypt to JSON printed, parsed, without the empty `DEFAULT` section go-ini
/// always has (sops shows it).
fn json_of(out: std::process::Output) -> serde_json::Value {
    assert_success(&out, &["decrypt to JSON"]);
    let mut v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    if let Some(o) = v.as_object_mut() {
        if o.get("DEFAULT")
            .is_some_and(|d| d.as_object().is_some_and(|d| d.is_empty()))
        {
            o.remove("DEFAULT");
        }
    }
    v
}

/// `text`, saved as `input` and encrypted by the real sops, reads as coffer's encrypted
/// `coffer_file` reads, to sops and to coffer: what sops reads from its own.
fn read_alike(sb: &Sandbox, input: &str, text: &str, coffer_file: &str) -> serde_json::Value {
    sb.write(input, text);
    let own = sb.sops(&["encrypt", "--age", &sb.recipient, input]);
    assert_success(&own, &["sops encrypts", input]);
    let by_sops = format!("by-sops.{}", input.rsplit('.').next().unwrap());
    sb.write(&by_sops, &own.stdout);
    let theirs = json_of(sb.sops(&["decrypt", "--output-type", "json", &by_sops]));
    let decrypt = ["decrypt", "--output-type", "json", coffer_file];
    assert_eq!(
        json_of(sb.sops(&decrypt)),
        theirs,
        "sops reads {coffer_file} otherwise"
    );
    assert_eq!(
        json_of(sb.ok(&decrypt)),
        theirs,
        "coffer reads {coffer_file} otherwise"
    );
    theirs
}

#[test]
fn every_hard_case_encrypts_and_decrypts_with_coffer_and_sops() {
    let sb = Sandbox::new();
    let listed = expectations();
    let on_disk: Vec<String> = std::fs::read_dir(testdata("corpus"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "README.md" && n != "expected.txt")
        .collect();
    assert_eq!(
        on_disk.len(),
        listed.len(),
        "every corpus file is in expected.txt"
    );
    for (file, how) in listed {
        let original = std::fs::read_to_string(testdata(&format!("corpus/{file}"))).unwrap();
        sb.write(&file, &original);
        let out = sb.run(&["encrypt", "--age", &sb.recipient, "-i", &file]);
        assert_success(&out, &["encrypt", &file]);
        let warning = stderr(&out);
        match how.as_str() {
            "fallback" => assert!(
                warning.starts_with(&format!("coffer: warning: {file}: "))
                    && warning.contains("rewritten in the canonical layout")
                    && warning.lines().count() == 1,
                "{file}: {warning:?}"
            ),
            // Kept as data in another spelling: said, never silent.
            "respelled" => assert!(
                warning.starts_with(&format!("coffer: warning: {file}: "))
                    && warning.contains("written another way")
                    && warning.lines().count() == 1,
                "{file}: {warning:?}"
            ),
            _ => assert_eq!(warning, "", "{file}"),
        }
        let encrypted = sb.read_str(&file);
        for s in secrets(&original) {
            assert!(
                !encrypted.contains(&s),
                "{file}: {s} left in clear:\n{encrypted}"
            );
        }
        let decrypted = stdout(&sb.ok(&["decrypt", &file]));
        match how.as_str() {
            "exact" => assert_eq!(decrypted, original, "{file}"),
            _ => assert_ne!(decrypted, original, "{file} is kept exactly now: say so"),
        }
        let by_sops = sb.sops(&["-d", &file]);
        assert_success(&by_sops, &["sops -d", &file]);
        // sops says so, and shows the ciphertext, for a comment it cannot open.
        assert!(
            !stderr(&by_sops).contains("unencrypted comment"),
            "{file}: {}",
            stderr(&by_sops)
        );
        // sops prints what it read in its own layout: the same text for coffer's file
        // and its own encryption of the input means the same tree, comments included.
        if file.ends_with(".yaml") {
            let own = format!("own-{file}");
            sb.write(&own, &original);
            let encrypted = sb.sops(&["encrypt", "--age", &sb.recipient, "-i", &own]);
            if encrypted.status.success() {
                assert_eq!(
                    stdout(&by_sops),
                    stdout(&sb.sops(&["-d", &own])),
                    "{file}: sops reads coffer's file otherwise than its own"
                );
            }
        }
        if file.ends_with(".yaml") && original.matches("---").count() > 1 {
            continue;
        }
        let sops_json = sb.sops(&["-d", "--output-type", "json", &file]);
        assert_success(&sops_json, &["sops -d --output-type json", &file]);
        let coffer_json = sb.ok(&["decrypt", "--output-type", "json", &file]);
        let parse = |b: &[u8]| normalized(serde_json::from_slice(b).unwrap());
        let mut by_sops = parse(&sops_json.stdout);
        // go-ini always has a DEFAULT section, and sops shows it even when empty.
        if let Some(o) = by_sops.as_object_mut() {
            if o.get("DEFAULT")
                .is_some_and(|d| d.as_object().is_some_and(|d| d.is_empty()))
            {
                o.remove("DEFAULT");
            }
        }
        assert_eq!(
            parse(&coffer_json.stdout),
            by_sops,
            "{file}: coffer and sops read different data"
        );
    }
}

/// Every document of the YAML test suite that coffer encrypts, sops decrypts to the
/// same data (the library test checks coffer's reading against the suite's JSON).
#[test]
fn sops_reads_every_yaml_test_suite_document_coffer_writes() {
    let sb = Sandbox::new();
    let root = testdata("yaml-test-suite");
    let mut cases = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.ends_with("in.yaml") {
                cases.push(p);
            }
        }
    }
    cases.sort();
    let mut written = 0;
    for case in cases {
        let id = case
            .parent()
            .unwrap()
            .strip_prefix(&root)
            .unwrap()
            .display()
            .to_string();
        let file = format!("{}.yaml", id.replace('/', "-"));
        sb.copy(&case, &file);
        let out = sb.run(&["encrypt", "--age", &sb.recipient, "-i", &file]);
        if !out.status.success() {
            assert_eq!(out.status.code(), Some(5), "{id}: {}", stderr(&out));
            continue;
        }
        written += 1;
        let by_sops = sb.sops(&["-d", "--output-type", "json", &file]);
        let by_coffer = sb.run(&["decrypt", "--output-type", "json", &file]);
        if !by_coffer.status.success() {
            // Several documents: no JSON form; sops must still read the file.
            assert_success(&sb.sops(&["-d", &file]), &["sops -d", &id]);
            continue;
        }
        assert_success(&by_sops, &["sops -d", &id]);
        let parse = |b: &[u8]| normalized(serde_json::from_slice(b).unwrap());
        assert_eq!(parse(&by_coffer.stdout), parse(&by_sops.stdout), "{id}");
    }
    assert!(written > 100, "{written} documents written");
}

/// Anchors, aliases and merge keys as Rails `database.yml` and compose files write them:
/// read as go-yaml (so sops) reads them, an alias a copy and `<<` a key of its own;
/// written in the canonical layout with one warning naming the first alias; the real
/// sops reads coffer's file as it reads its own encryption of the same input.
#[test]
fn anchors_aliases_and_merge_keys_are_read_as_sops_reads_them() {
    let sb = Sandbox::new();
    let text = "\
# shared settings
default: &default
  adapter: postgresql
  password: zq-shared-pw # the old one
  hosts: &hosts
    - db1.internal
    - db2.internal

development:
  <<: *default
  database: app_dev

production:
  <<: *default
  database: app_prod
  password: zq-prod-pw
  replicas: *hosts
  token: &token zq-token
  again: *token
";
    sb.write("database.yml", text);
    let out = sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "database.yml"]);
    assert_eq!(
        stderr(&out),
        "coffer: warning: database.yml: a YAML alias (expanded into a copy, as sops reads it) at line 10; rewritten in the canonical layout\n"
    );
    let encrypted = sb.read_str("database.yml");
    for secret in [
        "zq-shared-pw",
        "zq-prod-pw",
        "zq-token",
        "db1.internal",
        "the old one",
    ] {
        assert!(
            !encrypted.contains(secret),
            "{secret} in clear:\n{encrypted}"
        );
    }
    // The same data for coffer and for the real sops, from coffer's file and from sops's
    // encryption of the input.
    let theirs = read_alike(&sb, "input.yml", text, "database.yml");
    assert_eq!(theirs["production"]["<<"]["password"], "zq-shared-pw");
    assert_eq!(theirs["production"]["again"], "zq-token");
    assert_eq!(theirs["production"]["replicas"][1], "db2.internal");
    // The comments are kept, in order.
    let plain = stdout(&sb.ok(&["decrypt", "database.yml"]));
    assert!(plain.starts_with("# shared settings\n"), "{plain}");
    assert!(plain.contains("# the old one"), "{plain}");

    // A few lines that would expand without end are refused.
    let mut laughs = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for c in 'b'..='h' {
        let prev = (c as u8 - 1) as char;
        laughs.push_str(&format!(
            "{c}: &{c} [{}]\n",
            vec![format!("*{prev}"); 10].join(", ")
        ));
    }
    sb.write("laughs.yaml", &laughs);
    let out = sb.run(&["encrypt", "--age", &sb.recipient, "-i", "laughs.yaml"]);
    assert_error(&out, 5, "aliases expand to too many values");
    assert_eq!(sb.read_str("laughs.yaml"), laughs);
}

/// Numbers, tags and escapes mean to coffer what they mean to sops (go-yaml v3 and Go's
/// strconv): `0755` is 493, `0b101` 5, `1_000` 1000, `08` a float, `1e400` a string; a
/// standard tag gives its type and leaves the text with the value. The real sops reads
/// coffer's file as it reads its own encryption of the same input.
#[test]
fn numbers_and_tags_mean_what_they_mean_to_sops() {
    let sb = Sandbox::new();
    let text = "mode: 0755\nmask: 0b101\nhex: +0x1F\nbig: 1_000\nzero8: 08\nhuge: 1e400\nport: !!int \"5432\"\nratio: !!float 1\nflag: !!bool true\nday: !!timestamp 2024-01-02\nref: !Ref bucket\nzone: !Select [ 0, !GetAZs ]\nnum: !Sub 5\n";
    sb.write("n.yaml", text);
    let out = sb.ok(&["encrypt", "--age", &sb.recipient, "n.yaml"]);
    assert!(
        stderr(&out) == "coffer: warning: n.yaml: line 1 will decrypt to the same values written another way\n",
        "{}",
        stderr(&out)
    );
    sb.write("coffer.yaml", &out.stdout);
    assert!(
        !stdout(&out).contains("!!int"),
        "a standard tag before a ciphertext"
    );
    let theirs = read_alike(&sb, "input.yaml", text, "coffer.yaml");
    for (key, want) in [
        ("mode", serde_json::json!(493)),
        ("mask", serde_json::json!(5)),
        ("hex", serde_json::json!(31)),
        ("big", serde_json::json!(1000)),
        ("huge", serde_json::json!("1e400")),
        ("port", serde_json::json!(5432)),
        ("ref", serde_json::json!("bucket")),
        // CloudFormation's tags make strings of what they tag, an empty one included.
        ("zone", serde_json::json!([0, ""])),
        ("num", serde_json::json!("5")),
    ] {
        assert_eq!(theirs[key], want, "{key}");
    }

    // A tag go-yaml cannot apply is refused, as sops refuses the file; the line is
    // named, the value (maybe a secret) is not.
    sb.write("bad.yaml", "a: 1\nport: !!int abc\n");
    let out = sb.run(&["encrypt", "--age", &sb.recipient, "-i", "bad.yaml"]);
    assert_error(
        &out,
        5,
        "bad.yaml: line 2, column 7: go-yaml (so sops) cannot read the value as !!int",
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("abc"));
    assert!(!sb
        .sops(&["encrypt", "--age", &sb.recipient, "bad.yaml"])
        .status
        .success());

    // Half a UTF-16 pair is no character: refused in a file and in `set`, where Go
    // would put U+FFFD in its place. A whole pair is the character it spells.
    sb.write("u.json", "{\n  \"a\": \"ok\",\n  \"b\": \"x\\ud800y\"\n}\n");
    let out = sb.run(&["encrypt", "--age", &sb.recipient, "-i", "u.json"]);
    assert_error(
        &out,
        5,
        "u.json: line 3, column 10: \\ud800 is half of a UTF-16 surrogate pair",
    );
    sb.write("pair.json", "{\"a\": \"\\ud83d\\ude00\"}\n");
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "pair.json"]);
    assert_eq!(
        json_of(sb.ok(&["decrypt", "--output-type", "json", "pair.json"]))["a"],
        "😀"
    );
    let before = sb.read("pair.json");
    let out = sb.run(&["set", "pair.json", "[\"a\"]", "1e400"]);
    assert_error(
        &out,
        5,
        "the value to set: a number beyond the range of a 64-bit float",
    );
    assert_eq!(sb.read("pair.json"), before);
    let out = sb.run(&["set", "pair.json", "[\"a\"]", "\"\\ud800\""]);
    assert_error(
        &out,
        5,
        "the value to set: \\ud800 is half of a UTF-16 surrogate pair",
    );
    assert_eq!(sb.read("pair.json"), before);
}

/// INI values mean to coffer what they mean to sops (go-ini): a `;` or `#` starts a
/// comment, quotes and backticks around a value are not part of it. The file comes back
/// byte for byte, and the real sops reads coffer's file as its own encryption of it.
/// INI written anew quotes what go-ini would read otherwise.
#[test]
fn ini_values_mean_what_they_mean_to_sops() {
    let sb = Sandbox::new();
    let text = "; settings\n[db]\nhost = db.internal ; the primary\npass = \"zq-quoted pw\"\nkey = 'zq-single'\nurl = https://example.com/#zq-frag\nraw = `zq-a;b#c`\nsame = \"\"\"zq-triple\"\"\"\n[aws]\ns3 =\n  max_concurrent_requests = 20\n";
    sb.write("app.ini", text);
    let out = sb.ok(&["encrypt", "--age", &sb.recipient, "app.ini"]);
    assert_eq!(stderr(&out), "");
    sb.write("coffer.ini", &out.stdout);
    for secret in ["zq-", "the primary", "db.internal"] {
        assert!(
            !stdout(&out).contains(secret),
            "{secret} in clear:\n{}",
            stdout(&out)
        );
    }
    assert_eq!(stdout(&sb.ok(&["decrypt", "coffer.ini"])), text);
    let theirs = read_alike(&sb, "app.ini", text, "coffer.ini");
    assert_eq!(
        theirs["db"],
        serde_json::json!({
            "host": "db.internal",
            "pass": "zq-quoted pw",
            "key": "zq-single",
            "url": "https://example.com/",
            "raw": "zq-a;b#c",
            "same": "zq-triple",
        })
    );

    // Written anew: values go-ini would cut or strip are quoted, and read back whole.
    sb.write(
        "v.yaml",
        "s:\n    semi: a;b\n    hash: 'x # y'\n    quoted: '\"q\"'\n    padded: ' p '\n    tick: a`b\n",
    );
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "v.yaml"]);
    let out = sb.ok(&["decrypt", "--output-type", "ini", "v.yaml"]);
    sb.write("v.ini", &out.stdout);
    // go-ini's reading of it: the real sops encrypts it and shows what it read.
    let own = sb.sops(&["encrypt", "--age", &sb.recipient, "v.ini"]);
    sb.write("v.sops.ini", &own.stdout);
    let back = json_of(sb.sops(&["decrypt", "--output-type", "json", "v.sops.ini"]));
    assert_eq!(
        back["s"],
        serde_json::json!({"semi": "a;b", "hash": "x # y", "quoted": "\"q\"", "padded": " p ", "tick": "a`b"})
    );

    // Values over several lines, as go-ini reads them: continued with `\\` (joined,
    // trimmed, quotes and comment characters kept), in backticks or `"""` (line breaks
    // kept). Continued ones cannot keep their lines: said once, read alike.
    let text = "[check]\ncommand = /usr/lib/zq-check \\\n    --host db ; not a comment \\\n    --pw zq-\"pw\"\nnotes = `zq-first\nsecond = line`\nsql = \"\"\"zq-select 1;\n-- two\"\"\"\nlast = 1\n";
    sb.write("cont.ini", text);
    let out = sb.ok(&["encrypt", "--age", &sb.recipient, "cont.ini"]);
    assert_eq!(
        stderr(&out),
        "coffer: warning: cont.ini: line 2 will decrypt to the same values written another way\n"
    );
    assert!(!stdout(&out).contains("zq-"), "{}", stdout(&out));
    sb.write("cont.coffer.ini", &out.stdout);
    let theirs = read_alike(&sb, "cont.ini", text, "cont.coffer.ini");
    assert_eq!(
        theirs["check"],
        serde_json::json!({
            "command": "/usr/lib/zq-check --host db ; not a comment --pw zq-\"pw\"",
            "notes": "zq-first\nsecond = line",
            "sql": "zq-select 1;\n-- two",
            "last": "1",
        })
    );
    // The decryption reads back the same without a word; the lines in quotes are kept.
    let back = sb.ok(&["decrypt", "cont.coffer.ini"]);
    assert_eq!(stderr(&back), "");
    assert!(stdout(&back)
        .contains("notes = `zq-first\nsecond = line`\nsql = \"\"\"zq-select 1;\n-- two\"\"\"\n"));
    sb.write("cont.back.ini", &back.stdout);
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "cont.back.ini"]);
    assert_eq!(
        json_of(sb.ok(&["decrypt", "--output-type", "json", "cont.back.ini"]))["check"],
        theirs["check"]
    );
    // A quote never closed is refused with its reason.
    sb.write("open.ini", "[s]\na = `zq-open\nb = 2\n");
    let out = sb.run(&["encrypt", "--age", &sb.recipient, "-i", "open.ini"]);
    assert_error(&out, 5, "open.ini: line 2: the value in ` has no closing `");
    assert_eq!(sb.read_str("open.ini"), "[s]\na = `zq-open\nb = 2\n");
}

/// Block scalars as Helm values and CI configs write them (`key: |-` and one line,
/// folded `>`, kept `|+`) keep their header and indentation around the ciphertext, come
/// back byte for byte, and the real sops reads the encrypted file as its own.
#[test]
fn block_scalars_keep_their_header_and_sops_reads_them() {
    let sb = Sandbox::new();
    let text = "image:\n  tag: |-\n    zq-tag-1.2.3\nscript: >\n  zq-run --all\ncert: |\n  -----BEGIN zq-CERT-----\n  abc\n  -----END zq-CERT-----\nlist:\n  - |+\n    zq-kept\n\n  - plain\n";
    sb.write("values.yaml", text);
    let out = sb.ok(&["encrypt", "--age", &sb.recipient, "values.yaml"]);
    assert_eq!(stderr(&out), "");
    let enc = stdout(&out);
    assert!(!enc.contains("zq-"), "{enc}");
    for kept in [
        "  tag: |-\n    ENC[",
        "script: >\n  ENC[",
        "cert: |\n  ENC[",
        "  - |+\n    ENC[",
    ] {
        assert!(enc.contains(kept), "{kept:?} missing from:\n{enc}");
    }
    sb.write("coffer.yaml", &enc);
    assert_eq!(stdout(&sb.ok(&["decrypt", "coffer.yaml"])), text);
    let theirs = read_alike(&sb, "values.yaml", text, "coffer.yaml");
    assert_eq!(theirs["script"], "zq-run --all\n");
    assert_eq!(theirs["list"][0], "zq-kept\n\n");
    // A value changed by `set` that its header cannot hold gets a header that can.
    sb.ok(&[
        "set",
        "coffer.yaml",
        "[\"image\"][\"tag\"]",
        "\"two\\nlines\\n\"",
    ]);
    let plain = stdout(&sb.ok(&["decrypt", "coffer.yaml"]));
    assert!(plain.starts_with("image:\n  tag: |\n"), "{plain}");
    assert_eq!(
        json_of(sb.sops(&["decrypt", "--output-type", "json", "coffer.yaml"]))["image"]["tag"],
        "two\nlines\n"
    );
}
