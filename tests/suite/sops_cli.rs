//! coffer under the name `sops`: the same command lines run by the real sops and by
//! coffer through a symlink named `sops`, compared output for output and exit code for
//! exit code, and files each writes opened by the other.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use super::common::*;

/// A command for the real sops (`real`) or coffer as sops, alike in all else.
pub(super) fn sops_cmd(sb: &Sandbox, real: bool) -> Command {
    let mut c = if real {
        let mut c = Command::new(sops_bin());
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", sb.home())
            .env("TMPDIR", sb.dir.path())
            .env("SOPS_AGE_KEY_FILE", sb.key_file())
            .current_dir(sb.dir.path())
            .stdin(Stdio::null());
        c
    } else {
        sb.as_sops()
    };
    c.env("SOPS_DISABLE_VERSION_CHECK", "1");
    c
}

pub(super) fn run(
    mut c: Command,
    args: &[&str],
    env: &[(&str, &str)],
    input: Option<&[u8]>,
) -> Output {
    c.args(args).envs(env.iter().copied());
    if input.is_some() {
        c.stdin(Stdio::piped());
    }
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(bytes) = input {
        let _ = child.stdin.take().unwrap().write_all(bytes);
    }
    child.wait_with_output().unwrap()
}

/// coffer as sops.
pub(super) fn fake(sb: &Sandbox, args: &[&str]) -> Output {
    run(sops_cmd(sb, false), args, &[], None)
}

/// The real sops and coffer as sops on the same command line: (sops, coffer).
pub(super) fn both(
    sb: &Sandbox,
    args: &[&str],
    env: &[(&str, &str)],
    input: Option<&[u8]>,
) -> (Output, Output) {
    (
        run(sops_cmd(sb, true), args, env, input),
        run(sops_cmd(sb, false), args, env, input),
    )
}

/// Both exit alike and print the same on stdout.
pub(super) fn same(sb: &Sandbox, args: &[&str]) -> Output {
    same_with(sb, args, &[], None)
}

pub(super) fn same_with(
    sb: &Sandbox,
    args: &[&str],
    env: &[(&str, &str)],
    input: Option<&[u8]>,
) -> Output {
    let (s, c) = both(sb, args, env, input);
    assert_eq!(
        s.status.code(),
        c.status.code(),
        "{args:?}: sops exited {:?} ({}), coffer {:?} ({})",
        s.status.code(),
        stderr(&s),
        c.status.code(),
        stderr(&c)
    );
    assert_eq!(
        String::from_utf8_lossy(&s.stdout),
        String::from_utf8_lossy(&c.stdout),
        "{args:?}: stdout differs; coffer's stderr: {}",
        stderr(&c)
    );
    c
}

/// `plain` encrypted by the real sops for the sandbox's identity, written to `to`.
pub(super) fn sops_encrypted(sb: &Sandbox, plain: &str, to: &str) {
    let out = sb.sops(&["-e", "-a", &sb.recipient, plain]);
    assert_success(&out, &["sops -e", plain]);
    sb.write(to, &out.stdout);
}

/// Plaintext in the layout sops itself writes, so that both print the same bytes.
pub(super) const YAML: &str = "db:\n    user: app\n    password: s3cr3t\n    port: 5432\nhosts:\n    - a.example\n    - b.example\nflag: true\nratio: 1.5\nnothing: null\n";
pub(super) const JSON: &str = "{\n\t\"db\": {\n\t\t\"user\": \"app\",\n\t\t\"port\": 5432\n\t},\n\t\"list\": [\n\t\t1,\n\t\t\"two\"\n\t]\n}\n";
const DOTENV: &str = "USER=app\nPASSWORD=s3cr3t\n";
const INI: &str = "[db]\nuser     = app\npassword = s3cr3t\n";

#[test]
fn under_the_name_sops_coffer_says_what_it_is() {
    let sb = Sandbox::new();
    for out in [fake(&sb, &["--version"]), sb.ok(&["sops", "--version"])] {
        assert_success(&out, &["--version"]);
        assert!(
            stdout(&out).starts_with("sops 3.11.0 (coffer "),
            "{}",
            stdout(&out)
        );
    }
    // `-decrypt` is `--decrypt`, as Go parses flags.
    sb.write("s.yaml", YAML);
    let enc = sb.sops(&["-e", "-a", &sb.recipient, "s.yaml"]);
    sb.write("e.yaml", &enc.stdout);
    assert_eq!(stdout(&same(&sb, &["-decrypt", "e.yaml"])), YAML);
    // The main command takes no flags after its file: sops ignores them, warning.
    let out = same(&sb, &["-d", "e.yaml", "--output-type", "json"]);
    assert_eq!(stdout(&out), YAML);
    assert!(
        stderr(&out).contains("Only the first one will be used"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn files_either_encrypts_open_with_the_other_in_every_format() {
    let sb = Sandbox::new();
    for (name, plain) in [
        ("a.yaml", YAML),
        ("a.json", JSON),
        ("a.env", DOTENV),
        ("a.ini", INI),
        ("a.bin", "raw \u{1} bytes\n"),
    ] {
        sb.write(name, plain);
        let by_coffer = fake(&sb, &["-e", "-a", &sb.recipient, name]);
        assert_success(&by_coffer, &["-e", name]);
        assert_eq!(stderr(&by_coffer), "", "sops prints nothing");
        let enc = format!("coffer.{name}");
        sb.write(&enc, &by_coffer.stdout);
        let by_sops = sb.sops(&["-e", "-a", &sb.recipient, name]);
        let sops_enc = format!("sops.{name}");
        sb.write(&sops_enc, &by_sops.stdout);
        for file in [&enc, &sops_enc] {
            let out = same(&sb, &["-d", file]);
            assert_eq!(stdout(&out), plain, "{file}");
            let out = same(&sb, &["decrypt", file]);
            assert_eq!(stdout(&out), plain, "{file}");
        }
        // In place, as scripts do it.
        let inplace = format!("i.{name}");
        sb.write(&inplace, plain);
        assert_success(
            &fake(&sb, &["-e", "-i", "-a", &sb.recipient, &inplace]),
            &["-e", "-i"],
        );
        assert_eq!(stdout(&sb.sops(&["-d", &inplace])), plain, "{inplace}");
    }
}

#[test]
fn exit_codes_are_sops_codes() {
    let sb = Sandbox::new();
    sb.write("plain.yaml", YAML);
    let enc = sb.sops(&["-e", "-a", &sb.recipient, "plain.yaml"]);
    let text = String::from_utf8(enc.stdout).unwrap();
    sb.write("e.yaml", &text);
    let mac_at = text.find("mac: ENC[AES256_GCM,data:").unwrap() + 25;
    let mut tampered = text.clone().into_bytes();
    tampered[mac_at] = if tampered[mac_at] == b'A' { b'B' } else { b'A' };
    sb.write("mac.yaml", &tampered);
    let val_at = text.find("user: ENC[AES256_GCM,data:").unwrap() + 26;
    let mut tampered = text.clone().into_bytes();
    tampered[val_at] = if tampered[val_at] == b'A' { b'B' } else { b'A' };
    sb.write("value.yaml", &tampered);
    let other = Sandbox::new();
    std::fs::copy(sb.path("plain.yaml"), other.path("plain.yaml")).unwrap();
    sb.write(
        "other.yaml",
        other
            .sops(&["-e", "-a", &other.recipient, "plain.yaml"])
            .stdout,
    );
    let cases: &[(&[&str], i32)] = &[
        (&[], 100),
        (&["-d", "missing.yaml"], 100),
        (&["-e", "missing.yaml"], 100),
        (&["decrypt", "missing.yaml"], 100),
        (&["-d", "plain.yaml"], 1),
        (&["-e", "-a", &sb.recipient, "e.yaml"], 203),
        (&["-d", "other.yaml"], 128),
        (&["-d", "mac.yaml"], 51),
        (&["-d", "value.yaml"], 25),
        (&["-d", "--extract", "db", "e.yaml"], 91),
        (&["-d", "--extract", "[\"zz\"]", "e.yaml"], 1),
        // sops reads no escapes in a path: this is the key `d\"b`, which is not there.
        (&["-d", "--extract", "[\"d\\\"b\"]", "e.yaml"], 1),
        (&["-d", "--extract", "[\"db\"]x", "e.yaml"], 91),
        (&["-d", "--extract", "[x]", "e.yaml"], 91),
        (&["-d", "--output-type", "dotenv", "e.yaml"], 4),
        (&["-d", "--output-type", "binary", "e.yaml"], 4),
        (&["-d", "-i", "--output", "x", "e.yaml"], 8),
        (&["-e", "plain.yaml"], 1),
        (
            &[
                "-e",
                "-a",
                &sb.recipient,
                "--encryption-context",
                "nocolon",
                "plain.yaml",
            ],
            6,
        ),
        (
            &[
                "-e",
                "-a",
                &sb.recipient,
                "--unencrypted-suffix",
                "_u",
                "--encrypted-regex",
                "x",
                "plain.yaml",
            ],
            8,
        ),
        (&["--set", "[\"db\"][\"user\"] notjson", "e.yaml"], 7),
        (&["--set", "nospace", "e.yaml"], 7),
        (&["set", "e.yaml", "[\"db\"]", "notjson"], 7),
        (&["set", "e.yaml", "db", "1"], 7),
        (&["set", "e.yaml", "[\"db\"]", "[1, 2]"], 7),
        (&["set", "missing.yaml", "[\"a\"]", "1"], 2),
        (&["unset", "e.yaml", "[\"nope\"]"], 1),
        (&["unset", "--idempotent", "e.yaml", "[\"nope\"]"], 0),
        (&["exec-env", "e.yaml", "exit 7"], 1),
        (&["filestatus", "missing.yaml"], 1),
        (&["--decryption-order", "age,age", "-d", "e.yaml"], 112),
        (&["--no-such-flag", "e.yaml"], 1),
    ];
    let before = sb.read("e.yaml");
    for (args, code) in cases {
        let (s, c) = both(&sb, args, &[], None);
        assert_eq!(
            s.status.code(),
            Some(*code),
            "sops {args:?}: {}",
            stderr(&s)
        );
        assert_eq!(
            c.status.code(),
            Some(*code),
            "coffer {args:?}: {}",
            stderr(&c)
        );
        // sops prints its whole help on stdout after a usage mistake; coffer, clap's.
        if !args.contains(&"--no-such-flag") {
            assert_eq!(stdout(&c), stdout(&s), "{args:?}");
        }
    }
    assert_eq!(sb.read("e.yaml"), before, "no failure touched the file");
    // Flags for keys coffer cannot use fail with one line, never silently.
    let out = fake(
        &sb,
        &[
            "-e",
            "--gcp-kms",
            "projects/p/locations/l/keyRings/r/cryptoKeys/k",
            "plain.yaml",
        ],
    );
    assert_error(&out, 1, "GCP KMS");
    // Without destination_rules there is nowhere to publish to.
    assert_error(
        &fake(&sb, &["publish", "--yes", "e.yaml"]),
        1,
        "config file not found",
    );
    assert_error(&fake(&sb, &["keyservice"]), 1, "sops keyservice");
    // The local key service changes nothing here; a remote one is refused, nothing read.
    for local in [
        vec!["--enable-local-keyservice", "-d", "e.yaml"],
        vec!["-d", "--enable-local-keyservice=true", "e.yaml"],
    ] {
        let out = fake(&sb, &local);
        assert_success(&out, &local);
        assert_eq!(stdout(&out), YAML);
    }
    let out = fake(
        &sb,
        &["--keyservice", "unix:///tmp/sops.sock", "-d", "e.yaml"],
    );
    assert_error(&out, 1, "remote key services");
    assert_eq!(stdout(&out), "");
    // `--check-for-updates` alone: the version, and no check made.
    let out = fake(&sb, &["--check-for-updates"]);
    assert_success(&out, &["--check-for-updates"]);
    assert!(stdout(&out).starts_with("sops 3."), "{}", stdout(&out));
    assert!(stderr(&out).contains("no update check"), "{}", stderr(&out));
}

#[test]
fn extract_and_output_types_print_what_sops_prints() {
    let sb = Sandbox::new();
    sb.write("p.yaml", YAML);
    sops_encrypted(&sb, "p.yaml", "e.yaml");
    for path in [
        "[\"db\"]",
        "[\"db\"][\"password\"]",
        "[\"db\"][\"port\"]",
        "[\"hosts\"]",
        "[\"hosts\"][1]",
        "[\"flag\"]",
        "[\"ratio\"]",
        "[\"nothing\"]",
    ] {
        for t in ["yaml", "json"] {
            same(
                &sb,
                &["-d", "--output-type", t, "--extract", path, "e.yaml"],
            );
        }
    }
    let out = same(&sb, &["-d", "--output-type", "json", "e.yaml"]);
    assert!(
        stdout(&out).starts_with("{\n\t\"db\": {\n\t\t\"user\""),
        "{}",
        stdout(&out)
    );
    same(
        &sb,
        &[
            "decrypt",
            "--output-type",
            "json",
            "--extract",
            "[\"db\"]",
            "e.yaml",
        ],
    );
    // Encrypting into another type: the converted plaintext, checked, then encrypted.
    let out = fake(
        &sb,
        &["-e", "-a", &sb.recipient, "--output-type", "json", "p.yaml"],
    );
    assert_success(&out, &["-e --output-type json"]);
    sb.write("conv.json", &out.stdout);
    let as_json = stdout(&sb.sops(&["-d", "--output-type", "json", "e.yaml"]));
    assert_eq!(stdout(&sb.sops(&["-d", "conv.json"])), as_json);
    // A binary file's `data` is what the binary type prints.
    sb.write("d.json", "{\"data\": \"payload\"}");
    sops_encrypted(&sb, "d.json", "de.json");
    assert_eq!(
        stdout(&same(&sb, &["-d", "--output-type", "binary", "de.json"])),
        "payload"
    );
}

#[test]
fn stdin_output_files_and_filename_override() {
    let sb = Sandbox::new();
    sb.write("p.yaml", YAML);
    let enc = sb.sops(&["-e", "-a", &sb.recipient, "p.yaml"]).stdout;
    sb.write("e.yaml", &enc);
    // decrypt reads stdin without a file; the type comes from the override or flags.
    for args in [
        &["decrypt", "--filename-override", "x.yaml"][..],
        &["decrypt", "--input-type", "yaml", "--output-type", "yaml"],
        &[
            "-d",
            "--input-type",
            "yaml",
            "--output-type",
            "yaml",
            "/dev/stdin",
        ],
    ] {
        let out = same_with(&sb, args, &[], Some(&enc));
        assert_eq!(stdout(&out), YAML, "{args:?}");
    }
    // encrypt from stdin needs the override, and not -i.
    same_with(
        &sb,
        &["encrypt", "-a", &sb.recipient],
        &[],
        Some(YAML.as_bytes()),
    );
    same_with(
        &sb,
        &["encrypt", "-i", "-a", &sb.recipient],
        &[],
        Some(YAML.as_bytes()),
    );
    let out = run(
        sops_cmd(&sb, false),
        &[
            "encrypt",
            "-a",
            &sb.recipient,
            "--filename-override",
            "x.yaml",
        ],
        &[],
        Some(YAML.as_bytes()),
    );
    assert_success(&out, &["encrypt from stdin"]);
    sb.write("from-stdin.yaml", &out.stdout);
    assert_eq!(stdout(&sb.sops(&["-d", "from-stdin.yaml"])), YAML);
    // --output: plaintext is private; a failure leaves nothing.
    assert_success(
        &fake(&sb, &["-d", "--output", "out.yaml", "e.yaml"]),
        &["--output"],
    );
    assert_eq!(sb.read_str("out.yaml"), YAML);
    assert_eq!(mode(&sb.path("out.yaml")), 0o600);
    let out = fake(&sb, &["-d", "--output", "no/such/dir/out.yaml", "e.yaml"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    // --filename-override picks the type of a file named otherwise.
    sb.write("e.secret", &enc);
    let out = same(&sb, &["-d", "--filename-override", "e.yaml", "e.secret"]);
    assert_eq!(stdout(&out), YAML);
}

#[test]
fn set_and_unset_change_files_as_sops_does() {
    let sb = Sandbox::new();
    sb.write("p.yaml", YAML);
    sb.write("p.json", JSON);
    for name in ["p.yaml", "p.json"] {
        let enc = sb.sops(&["-e", "-a", &sb.recipient, name]).stdout;
        let (mine, theirs) = (format!("c.{name}"), format!("s.{name}"));
        sb.write(&mine, &enc);
        sb.write(&theirs, &enc);
        let steps: &[&[&str]] = &[
            &["set", "{}", "[\"db\"]", "{\"user\": \"u\", \"port\": 5433}"],
            &["set", "{}", "[\"db\"][\"new\"][\"deep\"]", "\"x\""],
            &["set", "{}", "[\"top\"]", "{\"list\": [1, {\"k\": \"v\"}]}"],
            // An index past the end appends, a scalar and a subtree.
            &["set", "{}", "[\"top\"][\"list\"][7]", "\"appended\""],
            &["set", "{}", "[\"top\"][\"list\"][3]", "{\"deep\": [true]}"],
            &["unset", "{}", "[\"db\"][\"user\"]"],
            &["--set", "[\"db\"][\"port\"] 6000", "{}"],
        ];
        for step in steps {
            for file in [&mine, &theirs] {
                let args: Vec<&str> = step
                    .iter()
                    .map(|a| if *a == "{}" { file.as_str() } else { a })
                    .collect();
                let out = if file == &mine {
                    fake(&sb, &args)
                } else {
                    sb.sops(&args)
                };
                assert_success(&out, &args);
                assert_eq!(stdout(&out), "", "set and unset print nothing");
            }
            let a = stdout(&sb.sops(&["-d", &mine]));
            let b = stdout(&sb.sops(&["-d", &theirs]));
            assert_eq!(a, b, "{name} after {step:?}");
        }
    }
    // List elements, and values kept out of the argument list.
    let enc = sb.sops(&["-e", "-a", &sb.recipient, "p.yaml"]).stdout;
    sb.write("l.yaml", &enc);
    assert_success(
        &fake(&sb, &["unset", "l.yaml", "[\"hosts\"][0]"]),
        &["unset item"],
    );
    assert_eq!(
        stdout(&sb.sops(&["-d", "--extract", "[\"hosts\"]", "l.yaml"])),
        "- b.example\n"
    );
    let out = run(
        sops_cmd(&sb, false),
        &["set", "--value-stdin", "l.yaml", "[\"db\"][\"password\"]"],
        &[],
        Some(b"\"from stdin\"\n"),
    );
    assert_success(&out, &["--value-stdin"]);
    sb.write("value.json", "\"from a file\"");
    assert_success(
        &fake(
            &sb,
            &[
                "set",
                "--value-file",
                "l.yaml",
                "[\"db\"][\"user\"]",
                "value.json",
            ],
        ),
        &["--value-file"],
    );
    let db = stdout(&sb.sops(&["-d", "--extract", "[\"db\"]", "l.yaml"]));
    assert!(
        db.contains("password: from stdin") && db.contains("user: from a file"),
        "{db}"
    );
    // --idempotent leaves the file byte for byte when the value is there already.
    let before = sb.read("l.yaml");
    assert_success(
        &fake(
            &sb,
            &[
                "set",
                "--idempotent",
                "l.yaml",
                "[\"db\"][\"port\"]",
                "5432",
            ],
        ),
        &["idempotent"],
    );
    assert_eq!(sb.read("l.yaml"), before);
    assert_success(
        &fake(&sb, &["unset", "--idempotent", "l.yaml", "[\"gone\"]"]),
        &["idempotent unset"],
    );
    assert_eq!(sb.read("l.yaml"), before);
}

#[test]
fn exec_env_and_exec_file_run_commands_through_the_shell() {
    let sb = Sandbox::new();
    sb.write("p.env", "db_password=s3cr3t\nMixed_Case=v\n");
    sops_encrypted(&sb, "p.env", "e.env");
    let out = same(
        &sb,
        &[
            "exec-env",
            "e.env",
            "echo \"$db_password|$Mixed_Case\"; exit 3",
        ],
    );
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(stdout(&out), "s3cr3t|v\n");
    let out = same_with(
        &sb,
        &[
            "exec-env",
            "--pristine",
            "e.env",
            "echo \"${HOME:-none}|$db_password\"",
        ],
        &[],
        None,
    );
    assert_eq!(stdout(&out), "none|s3cr3t\n");
    // The key that opens every file does not reach the command.
    let out = fake(
        &sb,
        &["exec-env", "e.env", "echo \"${SOPS_AGE_KEY_FILE:-unset}\""],
    );
    assert_eq!(stdout(&out), "unset\n");
    // exec-file: a FIFO named tmp-file by default, a private file with --no-fifo.
    let out = same(&sb, &["exec-file", "e.env", "basename {}; cat {}"]);
    assert_eq!(stdout(&out), "tmp-file\ndb_password=s3cr3t\nMixed_Case=v\n");
    let out = same(
        &sb,
        &[
            "exec-file",
            "--no-fifo",
            "--filename",
            "app.env",
            "e.env",
            "basename {}; cat {}; ls -l {} | cut -c1-10",
        ],
    );
    assert_eq!(
        stdout(&out),
        "app.env\ndb_password=s3cr3t\nMixed_Case=v\n-rw-------\n"
    );
    let out = same(
        &sb,
        &[
            "exec-file",
            "--output-type",
            "json",
            "e.env",
            "cat {}; exit 4",
        ],
    );
    assert_eq!(out.status.code(), Some(4));
    assert!(
        stdout(&out).contains("\"db_password\": \"s3cr3t\""),
        "{}",
        stdout(&out)
    );
    // A command that never reads the FIFO does not hang sops, even with more than a
    // pipe holds.
    let big = format!("K={}\n", "x".repeat(200_000));
    sb.write("big.env", &big);
    sops_encrypted(&sb, "big.env", "bige.env");
    let out = fake(&sb, &["exec-file", "bige.env", "exit 5"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    // Nothing of the plaintext is left behind.
    let left: Vec<_> = std::fs::read_dir(sb.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".sops"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // Nested values cannot be variables.
    sb.write("n.yaml", "a:\n    b: 1\n");
    sops_encrypted(&sb, "n.yaml", "ne.yaml");
    same(&sb, &["exec-env", "ne.yaml", "true"]);
}

#[test]
fn creation_rules_are_found_from_the_current_directory_upwards() {
    let sb = Sandbox::new();
    let other = Sandbox::new();
    sb.write(
        ".sops.yaml",
        format!(
            "creation_rules:\n  - path_regex: ^app/.*\\.yaml$\n    age: {},{}\n",
            sb.recipient, other.recipient
        ),
    );
    sb.write("app/deep/s.yaml", YAML);
    let out = sb
        .as_sops()
        .current_dir(sb.path("app/deep"))
        .args(["-e", "-i", "s.yaml"])
        .output()
        .unwrap();
    assert_success(&out, &["-e -i from app/deep"]);
    let text = sb.read_str("app/deep/s.yaml");
    assert!(
        text.contains(&sb.recipient) && text.contains(&other.recipient),
        "{text}"
    );
    // A config whose rules miss the file stops encryption, keys given or not.
    sb.write("elsewhere/t.yaml", YAML);
    let out = same(&sb, &["-e", "-a", &sb.recipient, "elsewhere/t.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(sb.read_str("elsewhere/t.yaml"), YAML);
    // ... but not decryption.
    std::fs::rename(sb.path("app/deep/s.yaml"), sb.path("elsewhere/s.yaml")).unwrap();
    assert_eq!(stdout(&same(&sb, &["-d", "elsewhere/s.yaml"])), YAML);
}

#[test]
fn edit_exits_200_when_nothing_changed_and_starts_new_files_from_sops_example() {
    let sb = Sandbox::new();
    sb.write("p.yaml", YAML);
    sops_encrypted(&sb, "p.yaml", "e.yaml");
    let before = sb.read("e.yaml");
    let (s, c) = both(&sb, &["e.yaml"], &[("EDITOR", "true")], None);
    assert_eq!((s.status.code(), c.status.code()), (Some(200), Some(200)));
    assert_eq!(sb.read("e.yaml"), before);
    let (s, c) = both(&sb, &["edit", "e.yaml"], &[("EDITOR", "false")], None);
    assert_eq!((s.status.code(), c.status.code()), (Some(201), Some(201)));
    assert_eq!(sb.read("e.yaml"), before);
    let editor = sb.editor("ed.sh", "sed -i 's/s3cr3t/changed/' \"$1\"");
    let out = run(
        sops_cmd(&sb, false),
        &["e.yaml"],
        &[("SOPS_EDITOR", &editor)],
        None,
    );
    assert_success(&out, &["edit"]);
    assert_eq!(
        stdout(&sb.sops(&["-d", "--extract", "[\"db\"][\"password\"]", "e.yaml"])),
        "changed"
    );
    // An edit that does not parse is not saved, and no copy of it is kept (sops asks
    // again in a loop; a script gets an exit code instead).
    let before = sb.read("e.yaml");
    let editor = sb.editor("bad.sh", "printf 'a: [\\n' > \"$1\"");
    let out = run(
        sops_cmd(&sb, false),
        &["e.yaml"],
        &[("EDITOR", &editor)],
        None,
    );
    assert_eq!(out.status.code(), Some(201), "{}", stderr(&out));
    assert_eq!(sb.read("e.yaml"), before);
    assert!(!sb.home().join(".local/state/coffer").exists());
    // A new file: sops's example, edited, encrypted for the given keys.
    let editor = sb.editor("ed2.sh", "sed -i 's/example_value$/mine/' \"$1\"");
    let out = run(
        sops_cmd(&sb, false),
        &["-a", &sb.recipient, "new.yaml"],
        &[("EDITOR", &editor)],
        None,
    );
    assert_success(&out, &["edit new"]);
    let plain = stdout(&sb.sops(&["-d", "new.yaml"]));
    assert!(
        plain.starts_with("hello: Welcome to SOPS!") && plain.contains("example_key: mine"),
        "{plain}"
    );
    // Unchanged, a new file is not created.
    let (s, c) = both(
        &sb,
        &["-a", &sb.recipient, "none.yaml"],
        &[("EDITOR", "true")],
        None,
    );
    assert_eq!((s.status.code(), c.status.code()), (Some(200), Some(200)));
    assert!(!sb.path("none.yaml").exists());
}

#[test]
fn keys_change_with_rotate_updatekeys_and_groups() {
    let sb = Sandbox::new();
    let other = Sandbox::new();
    let other_keys = other.key_file();
    let as_other =
        |args: &[&str]| sb.sops_env(&[("SOPS_AGE_KEY_FILE", other_keys.as_os_str())], args);
    sb.write("p.yaml", YAML);
    sops_encrypted(&sb, "p.yaml", "e.yaml");
    // rotate: a new data key, with a key added and then the first removed.
    let out = fake(&sb, &["-r", "-i", "--add-age", &other.recipient, "e.yaml"]);
    assert_success(&out, &["-r --add-age"]);
    assert_eq!(stdout(&as_other(&["-d", "e.yaml"])), YAML);
    let before = first_enc(&sb.read_str("e.yaml"));
    let out = fake(
        &sb,
        &["rotate", "-i", "--rm-age", &other.recipient, "e.yaml"],
    );
    assert_success(&out, &["rotate --rm-age"]);
    assert_ne!(first_enc(&sb.read_str("e.yaml")), before, "a new data key");
    assert_eq!(as_other(&["-d", "e.yaml"]).status.code(), Some(128));
    // updatekeys: the keys .sops.yaml names now; asks, or -y.
    sb.write(
        ".sops.yaml",
        format!(
            "creation_rules:\n  - age: {},{}\n",
            sb.recipient, other.recipient
        ),
    );
    let out = fake(&sb, &["updatekeys", "e.yaml"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "no answer on stdin: {}",
        stderr(&out)
    );
    assert!(
        stdout(&out).contains(&format!("+++ {}", other.recipient)),
        "{}",
        stdout(&out)
    );
    let out = fake(&sb, &["updatekeys", "-y", "e.yaml"]);
    assert_success(&out, &["updatekeys -y"]);
    assert_eq!(stdout(&as_other(&["-d", "e.yaml"])), YAML);
    assert_success(&fake(&sb, &["updatekeys", "-y", "e.yaml"]), &["again"]);
    // groups add: the data key split over two groups, both needed.
    std::fs::remove_file(sb.path(".sops.yaml")).unwrap();
    sops_encrypted(&sb, "p.yaml", "g.yaml");
    let out = fake(
        &sb,
        &[
            "groups",
            "add",
            "--file",
            "g.yaml",
            "-i",
            "--age",
            &other.recipient,
        ],
    );
    assert_success(&out, &["groups add"]);
    let text = sb.read_str("g.yaml");
    assert!(
        text.contains("shamir_threshold: 2") && text.contains("key_groups:"),
        "{text}"
    );
    let both_keys = sb.write(
        "both.txt",
        [
            std::fs::read(sb.key_file()).unwrap(),
            std::fs::read(other.key_file()).unwrap(),
        ]
        .concat(),
    );
    let with_both = sb.sops_env(
        &[("SOPS_AGE_KEY_FILE", both_keys.as_os_str())],
        &["-d", "g.yaml"],
    );
    assert_eq!(stdout(&with_both), YAML);
    assert_eq!(sb.sops(&["-d", "g.yaml"]).status.code(), Some(128));
    // coffer's own `access` names the members of each group.
    let out = sb.ok(&["access", "g.yaml"]);
    assert_eq!(
        stdout(&out),
        format!(
            "g.yaml\n  group 0: {}\n  group 1: {}\n  no creation rule matches it\n",
            sb.recipient, other.recipient
        )
    );
    let out = sb.ok(&["access", "--who", &other.recipient, "g.yaml", "e.yaml"]);
    let mut found: Vec<String> = stdout(&out).lines().map(String::from).collect();
    found.sort();
    assert_eq!(found, ["e.yaml", "g.yaml"]);
    // groups delete: back to one group (the threshold lowered to allow it).
    let out = run(
        sops_cmd(&sb, false),
        &[
            "groups",
            "delete",
            "--file",
            "g.yaml",
            "-i",
            "--shamir-secret-sharing-threshold",
            "1",
            "1",
        ],
        &[("SOPS_AGE_KEY_FILE", both_keys.to_str().unwrap())],
        None,
    );
    assert_success(&out, &["groups delete"]);
    assert_eq!(stdout(&sb.sops(&["-d", "g.yaml"])), YAML);
    assert_eq!(as_other(&["-d", "g.yaml"]).status.code(), Some(128));
}

#[test]
fn shamir_groups_from_rules_and_the_threshold_flag() {
    let sb = Sandbox::new();
    let (b, c) = (Sandbox::new(), Sandbox::new());
    sb.write(
        ".sops.yaml",
        format!(
            "creation_rules:\n  - key_groups:\n      - age: [{}]\n      - age: [{}]\n      - age: [{}]\n",
            sb.recipient, b.recipient, c.recipient
        ),
    );
    sb.write("p.yaml", YAML);
    let out = fake(
        &sb,
        &["-e", "--shamir-secret-sharing-threshold", "2", "p.yaml"],
    );
    assert_success(&out, &["-e shamir"]);
    sb.write("e.yaml", &out.stdout);
    assert!(
        stdout(&out).contains("shamir_threshold: 2"),
        "{}",
        stdout(&out)
    );
    // Any two groups open it, with sops and with coffer; one does not.
    let keys = sb.write(
        "bc.txt",
        [
            std::fs::read(b.key_file()).unwrap(),
            std::fs::read(c.key_file()).unwrap(),
        ]
        .concat(),
    );
    let with = [("SOPS_AGE_KEY_FILE", keys.to_str().unwrap())];
    assert_eq!(
        stdout(&sb.sops_env(
            &[("SOPS_AGE_KEY_FILE", keys.as_os_str())],
            &["-d", "e.yaml"]
        )),
        YAML
    );
    assert_eq!(
        stdout(&run(sops_cmd(&sb, false), &["-d", "e.yaml"], &with, None)),
        YAML
    );
    let (s, f) = both(&sb, &["-d", "e.yaml"], &[], None);
    assert_eq!((s.status.code(), f.status.code()), (Some(128), Some(128)));
}

#[test]
fn command_lines_parse_as_go_parses_them_and_odd_input_exits_as_in_sops() {
    let sb = Sandbox::new();
    sb.write("p.yaml", YAML);
    sops_encrypted(&sb, "p.yaml", "e.yaml");
    // Booleans never take the next argument; a value may start with `-`.
    assert_eq!(
        stdout(&same(&sb, &["-d", "--disable-version-check", "e.yaml"])),
        YAML
    );
    let out = fake(
        &sb,
        &[
            "-e",
            "--encrypted-regex",
            "-x|user",
            "-a",
            &sb.recipient,
            "p.yaml",
        ],
    );
    assert_success(&out, &["--encrypted-regex -x|user"]);
    assert!(
        stdout(&out).contains("encrypted_regex: -x|user"),
        "{}",
        stdout(&out)
    );
    // A type sops does not know is ignored: the file name decides.
    assert_eq!(
        stdout(&same(&sb, &["-d", "--input-type", "toml", "e.yaml"])),
        YAML
    );
    // Not one JSON value; a directory; YAML taken for JSON on stdin.
    same(&sb, &["set", "e.yaml", "[\"db\"][\"user\"]", "1, \"w\": 2"]);
    same(&sb, &["-d", "."]);
    same_with(&sb, &["decrypt"], &[], Some(&sb.read("e.yaml")));
    let (s, c) = both(
        &sb,
        &["set", "e.yaml", "[\"db\"][\"user\"]", "1, \"w\": 2"],
        &[],
        None,
    );
    assert_eq!((s.status.code(), c.status.code()), (Some(7), Some(7)));
    // A mapping replaced by a scalar, as sops replaces it.
    sb.write("s.yaml", sb.read("e.yaml"));
    assert_success(
        &fake(&sb, &["set", "e.yaml", "[\"db\"]", "\"flat\""]),
        &["set over a map"],
    );
    assert_success(
        &sb.sops(&["set", "s.yaml", "[\"db\"]", "\"flat\""]),
        &["sops set over a map"],
    );
    assert_eq!(
        stdout(&sb.sops(&["-d", "e.yaml"])),
        stdout(&sb.sops(&["-d", "s.yaml"]))
    );
    // coffer's own flags before `sops`: --config carries over, the others are refused.
    sb.write(
        "conf/rules.yaml",
        format!("creation_rules:\n  - age: {}\n", sb.recipient),
    );
    let out = sb.run(&["--config", "conf/rules.yaml", "sops", "-e", "p.yaml"]);
    assert_success(&out, &["coffer --config X sops -e"]);
    assert!(stdout(&out).contains(&sb.recipient));
    let out = sb.run(&["--strict-layout", "sops", "-d", "e.yaml"]);
    assert_error(&out, 2, "give sops's own flags after `coffer sops`");
}

#[test]
fn keys_coffer_cannot_wrap_are_never_dropped_by_a_new_split() {
    let sb = Sandbox::new();
    let other = Sandbox::new();
    sb.write("p.yaml", YAML);
    sops_encrypted(&sb, "p.yaml", "e.yaml");
    // A GCP KMS key beside the age key, as a team's file may have one.
    let text = sb.read_str("e.yaml").replacen(
        "sops:\n",
        "sops:\n    gcp_kms:\n        - resource_id: projects/p/locations/l/keyRings/r/cryptoKeys/k\n          created_at: \"2024-01-01T00:00:00Z\"\n          enc: CiQAbcdef\n",
        1,
    );
    sb.write("e.yaml", &text);
    assert_eq!(stdout(&fake(&sb, &["-d", "e.yaml"])), YAML);
    let out = fake(
        &sb,
        &[
            "groups",
            "add",
            "--file",
            "e.yaml",
            "-i",
            "--age",
            &other.recipient,
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("GCP KMS"), "{}", stderr(&out));
    assert_eq!(sb.read_str("e.yaml"), text);
}

/// A creation rule that matches and names no key (none, `key_groups: []`, an empty
/// group) fails in sops's exact words, the file untouched; no matching rule keeps its
/// own message.
#[test]
fn a_rule_without_keys_fails_in_sops_words() {
    let sb = Sandbox::new();
    sb.write(
        ".sops.yaml",
        format!(
            "creation_rules:\n  - path_regex: none\\.yaml$\n  - path_regex: zero\\.yaml$\n    key_groups: []\n  - path_regex: empty\\.yaml$\n    key_groups:\n      - {{}}\n  - path_regex: keyed\\.yaml$\n    age: {}\n",
            sb.recipient
        ),
    );
    for name in ["none.yaml", "zero.yaml", "empty.yaml"] {
        sb.write(name, "a: secret");
        let (s, c) = both(&sb, &["encrypt", "-i", name], &[], None);
        assert_eq!(s.status.code(), Some(1), "sops {name}: {}", stderr(&s));
        assert_eq!(c.status.code(), Some(1), "coffer {name}: {}", stderr(&c));
        assert_eq!(
            stderr(&c),
            "Could not generate data key: [empty key group provided]\n"
        );
        assert_eq!(stderr(&c), stderr(&s), "{name}");
        assert_eq!(sb.read_str(name), "a: secret", "{name} untouched");
    }
    sb.write("keyed.yaml", "a: secret");
    let out = fake(&sb, &["encrypt", "-i", "keyed.yaml"]);
    assert_success(&out, &["a rule with a key"]);
    sb.write(
        "elsewhere/.sops.yaml",
        "creation_rules:\n  - path_regex: nothing$\n    age: x\n",
    );
    sb.write("elsewhere/f.yaml", "a: 1");
    let out = run(
        {
            let mut c = sops_cmd(&sb, false);
            c.current_dir(sb.path("elsewhere"));
            c
        },
        &["encrypt", "f.yaml"],
        &[],
        None,
    );
    assert_error(&out, 1, "no matching creation rules found");
}

/// As sops, `decrypt -i` writes times in RFC 3339 and ends the file with a line break,
/// whatever the plaintext ended with; coffer's own CLI keeps the bytes.
#[test]
fn decrypt_in_place_ends_with_a_line_break_as_sops_writes() {
    let sb = Sandbox::new();
    let plain = "a: 2024-01-01\nb: 2006-01-02T15:04:05+07:06";
    for real in [true, false] {
        sb.write("t.yaml", plain);
        let enc = run(
            sops_cmd(&sb, real),
            &["encrypt", "-i", "--age", &sb.recipient, "t.yaml"],
            &[],
            None,
        );
        assert_success(&enc, &["encrypt", &real.to_string()]);
        let dec = run(sops_cmd(&sb, real), &["decrypt", "-i", "t.yaml"], &[], None);
        assert_success(&dec, &["decrypt -i", &real.to_string()]);
        assert_eq!(
            sb.read_str("t.yaml"),
            "a: 2024-01-01T00:00:00Z\nb: 2006-01-02T15:04:05+07:06\n",
            "real sops: {real}"
        );
    }
    sb.write("own.yaml", "a: secret");
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "own.yaml"]);
    sb.ok(&["decrypt", "-i", "own.yaml"]);
    assert_eq!(sb.read_str("own.yaml"), "a: secret");
}

/// `decrypt --output-type ini` writes what sops writes: `=` in one column per section,
/// dates and times in RFC 3339.
#[test]
fn ini_output_is_laid_out_as_sops_lays_it_out() {
    let sb = Sandbox::new();
    sb.write(
        "v.yaml",
        "the_section:\n  int: 123\n  float: 1.23\n  bool: true\n  date: 2025-01-02\n  timestamp: 2025-01-02 03:04:05\n  utc_timestamp: 2025-01-02T03:04:05Z\n  string: this is a string\nother:\n  k: v\n",
    );
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "v.yaml"]);
    let (s, c) = both(
        &sb,
        &["decrypt", "--output-type", "ini", "v.yaml"],
        &[],
        None,
    );
    assert_success(&s, &["sops --output-type ini"]);
    assert_success(&c, &["coffer --output-type ini"]);
    assert_eq!(
        stdout(&c),
        "[the_section]\nint           = 123\nfloat         = 1.23\nbool          = true\ndate          = 2025-01-02T00:00:00Z\ntimestamp     = 2025-01-02T03:04:05Z\nutc_timestamp = 2025-01-02T03:04:05Z\nstring        = this is a string\n\n[other]\nk = v\n"
    );
    assert_eq!(stdout(&c), stdout(&s));
}

/// `s.json` decrypted as YAML, as sops's functional tests read it.
const DECRYPT_JSON_AS_YAML: [&str; 6] = [
    "decrypt",
    "--input-type",
    "yaml",
    "--output-type",
    "yaml",
    "s.json",
];

/// A JSON file read as YAML (JSON is YAML): its values and its metadata share one flow
/// mapping, whose spans overlap; it opens in the canonical layout with a warning, in
/// both front ends, as the real sops opens it. It used to panic.
#[test]
fn a_json_file_read_as_yaml_opens_in_the_canonical_layout() {
    let sb = Sandbox::new();
    sb.write("s.json", r#"{"a": 2, "b": "ba", "c": [1, {"d": "x"}]}"#);
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "s.json"]);
    let before = sb.read("s.json");
    let (s, c) = both(&sb, &DECRYPT_JSON_AS_YAML, &[], None);
    assert_success(&s, &["sops"]);
    assert_success(&c, &["coffer as sops"]);
    let own = sb.ok(&["decrypt", "--input-type", "yaml", "s.json"]);
    for out in [&c, &own] {
        assert_eq!(stdout(out), "a: 2\nb: ba\nc:\n    - 1\n    - d: x\n");
        assert!(stderr(out).contains("canonical layout"), "{}", stderr(out));
    }
    assert_eq!(sb.read("s.json"), before);
}

/// `set --output-type yaml` on a JSON file writes it anew as YAML, even when the value
/// was already there; `--idempotent` then writes nothing. As the real sops does.
#[test]
fn set_with_another_output_type_writes_the_file_in_it() {
    let sb = Sandbox::new();
    for real in [true, false] {
        sb.write("s.json", r#"{"a": 2, "b": "ba"}"#);
        sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "s.json"]);
        let before = sb.read("s.json");
        let set = |extra: &[&str]| {
            let mut args = vec!["set", "--output-type", "yaml"];
            args.extend_from_slice(extra);
            args.extend_from_slice(&["s.json", r#"["b"]"#, r#""ba""#]);
            let out = run(sops_cmd(&sb, real), &args, &[], None);
            assert_success(&out, &["set", &real.to_string()]);
        };
        set(&["--idempotent"]);
        assert_eq!(
            sb.read("s.json"),
            before,
            "real sops: {real}: nothing to write"
        );
        set(&[]);
        let after = sb.read_str("s.json");
        assert!(after.starts_with("a: ENC["), "real sops: {real}: {after}");
        // Either reads what the other wrote.
        for reader in [true, false] {
            let out = run(sops_cmd(&sb, reader), &DECRYPT_JSON_AS_YAML, &[], None);
            assert_success(&out, &["decrypt", &format!("{real} {reader}")]);
            assert_eq!(stdout(&out), "a: 2\nb: ba\n");
        }
    }
}

/// Master keys of every kind coffer cannot use (GCP KMS, Azure Key Vault, Vault transit,
/// HuaweiCloud KMS) stay in the file through every write, byte for byte; with no key at
/// hand, the error names each kind. A HuaweiCloud key was dropped by `set`.
#[test]
fn keys_of_every_kind_coffer_cannot_use_are_kept_and_named() {
    let sb = Sandbox::new();
    sb.write("p.yaml", "a: 1\n");
    // Written by the real sops: its metadata indented as the entries below are.
    sops_encrypted(&sb, "p.yaml", "e.yaml");
    let foreign = "    gcp_kms:\n        - resource_id: projects/p/locations/l/keyRings/r/cryptoKeys/k\n          created_at: \"2025-01-01T00:00:00Z\"\n          enc: QUJD\n    azure_kv:\n        - vault_url: https://v.vault.azure.net\n          name: k\n          version: \"1\"\n          created_at: \"2025-01-01T00:00:00Z\"\n          enc: QUJD\n    hc_vault:\n        - vault_address: http://127.0.0.1:8200\n          engine_path: transit\n          key_name: k\n          created_at: \"2025-01-01T00:00:00Z\"\n          enc: QUJD\n    hckms:\n        - key_id: tr-west-1:abcd-1234\n          created_at: \"2025-01-01T00:00:00Z\"\n          enc: QUJD\n";
    let text = sb
        .read_str("e.yaml")
        .replacen("sops:\n", &format!("sops:\n{foreign}"), 1);
    sb.write("e.yaml", &text);
    sb.ok(&["set", "e.yaml", "a", "2"]);
    let after = sb.read_str("e.yaml");
    for entry in foreign
        .split("    ")
        .filter(|l| l.ends_with(":\n") && !l.starts_with(' '))
    {
        assert!(after.contains(entry), "{entry:?} kept:\n{after}");
    }
    assert!(after.contains("key_id: tr-west-1:abcd-1234"), "{after}");
    // The real sops reads what coffer wrote (with the age key).
    let real = sb.sops(&["decrypt", "e.yaml"]);
    assert_success(&real, &["sops decrypt"]);
    assert_eq!(stdout(&real), "a: 2\n");
    // No age identity: every kind is named.
    let out = sb.run_with(&["decrypt", "e.yaml"], &[("HOME", "/nonexistent")]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    for name in [
        "gcp_kms:projects/p/locations/l/keyRings/r/cryptoKeys/k",
        "azure_kv:https://v.vault.azure.net",
        "hc_vault:k",
        "hckms:tr-west-1:abcd-1234",
        "coffer cannot use GCP KMS keys",
        "coffer cannot use Azure Key Vault keys",
        "coffer cannot use HashiCorp Vault keys",
        "coffer cannot use HuaweiCloud KMS keys",
    ] {
        assert!(stderr(&out).contains(name), "{name}: {}", stderr(&out));
    }
}
