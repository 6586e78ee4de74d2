//! `sops publish` to S3, against moto: as the file is, or encrypted anew for the keys of a
//! `recreation_rule`; names, prefixes and extensions as sops makes them; what coffer does
//! not publish to, refused with one line.

use std::io::Write;
use std::process::{Output, Stdio};

use super::common::*;
use super::moto::Moto;

fn publish(sb: &Sandbox, moto: &Moto, args: &[&str]) -> Output {
    let mut c = sb.as_sops();
    for (k, v) in moto.env() {
        c.env(k, v);
    }
    c.arg("publish").args(args).output().unwrap()
}

#[test]
fn publish_puts_files_in_s3_as_they_are_or_encrypted_for_the_recreation_rule() {
    let moto = Moto::start();
    moto.put_object("team-secrets", "placeholder", "x");
    let sb = Sandbox::new();
    let ops = Sandbox::new();
    sb.write(
        ".sops.yaml",
        format!(
            "creation_rules:\n  - age: {me}\n\
             destination_rules:\n\
             \x20 - path_regex: ^as-is/\n    s3_bucket: team-secrets\n    s3_prefix: raw/\n\
             \x20 - path_regex: ^handover/\n    s3_bucket: team-secrets\n    s3_prefix: ops/\n    omit_extensions: true\n    recreation_rule:\n      age: {ops}\n\
             \x20 - path_regex: ^elsewhere/\n    gcs_bucket: b\n\
             \x20 - path_regex: ^both/\n    s3_bucket: a\n    vault_path: b\n",
            me = sb.recipient,
            ops = ops.recipient
        ),
    );
    sb.write("as-is/db.yaml", "password: hunter2\n");
    sb.ok(&["encrypt", "-i", "as-is/db.yaml"]);
    let out = publish(&sb, &moto, &["--yes", "as-is/db.yaml"]);
    assert_success(&out, &["publish as-is"]);
    assert_eq!(
        moto.object("team-secrets", "raw/db.yaml").as_deref(),
        Some(sb.read_str("as-is/db.yaml").as_str()),
        "the file as it is"
    );

    // A directory, recursively: names under it, the extension left out, each file
    // encrypted anew for the ops key alone.
    sb.write("handover/api.yaml", "token: abc\n");
    sb.write("handover/nested/mail.env", "SMTP=pw\n");
    sb.ok(&["encrypt", "-i", "handover/api.yaml"]);
    sb.ok(&["encrypt", "-i", "handover/nested/mail.env"]);
    let out = publish(&sb, &moto, &["--yes", "--recursive", "handover"]);
    assert_success(&out, &["publish a directory"]);
    for (key, format, plain) in [
        ("ops/api", "yaml", "token: abc\n"),
        ("ops/nested/mail", "dotenv", "SMTP=pw\n"),
    ] {
        let object = moto
            .object("team-secrets", key)
            .unwrap_or_else(|| panic!("{key}"));
        assert!(object.contains(&ops.recipient), "{key}: for the ops key");
        assert!(!object.contains(&sb.recipient), "{key}: not for mine");
        ops.write("got", &object);
        let args = [
            "decrypt",
            "--input-type",
            format,
            "--output-type",
            format,
            "got",
        ];
        let out = ops.ok(&args);
        assert_eq!(stdout(&out), plain, "{key}");
        // The real sops opens it too.
        let real = ops.sops(&args);
        assert_success(&real, &["sops decrypt", key]);
        assert_eq!(stdout(&real), plain);
    }

    // Asked first without --yes: `n` publishes nothing.
    sb.write("as-is/other.yaml", "a: b\n");
    sb.ok(&["encrypt", "-i", "as-is/other.yaml"]);
    let mut c = sb.as_sops();
    for (k, v) in moto.env() {
        c.env(k, v);
    }
    c.args(["publish", "as-is/other.yaml"])
        .stdin(Stdio::piped());
    let mut child = c.started();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"maybe\nn\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).contains("uploading "), "{}", stdout(&out));
    assert!(stdout(&out).contains(" to s3://team-secrets/raw/other.yaml ? (y/n): "));
    assert!(stderr(&out).contains("Publication of "), "{}", stderr(&out));
    assert_eq!(moto.object("team-secrets", "raw/other.yaml"), None);

    // Where coffer does not publish, and mistakes: one line each, nothing sent.
    for (file, says) in [
        ("elsewhere/x.yaml", "Google Cloud Storage"),
        ("both/x.yaml", "more than one destinations"),
        ("nowhere/x.yaml", "no matching destination found"),
    ] {
        sb.write(file, "a: b\n");
        sb.ok(&["encrypt", "-i", file]);
        assert_error(&publish(&sb, &moto, &["--yes", file]), 1, says);
    }
    assert_error(
        &publish(&sb, &moto, &["--yes", "handover"]),
        1,
        "can't operate on a directory without --recursive flag.",
    );
    sb.write("as-is/plain.yaml", "a: b\n");
    let out = publish(&sb, &moto, &["--yes", "as-is/plain.yaml"]);
    assert!(!out.status.success(), "a plaintext file is not published");
    assert_eq!(moto.object("team-secrets", "raw/plain.yaml"), None);
}
