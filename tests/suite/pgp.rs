//! PGP master keys through the real gpg, in a throwaway GnuPG home with a key made here.

use std::path::PathBuf;
use std::process::{Command, Output};

use super::common::*;

/// A GnuPG home in the sandbox holding one new key without a passphrase; its agent is
/// stopped when dropped.
struct Gpg {
    home: PathBuf,
    fp: String,
}

impl Gpg {
    fn new(sb: &Sandbox, name: &str) -> Gpg {
        let home = sb.path(name);
        std::fs::create_dir_all(&home).unwrap();
        std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let gpg = |args: &[&str]| {
            let out = Command::new("gpg")
                .env("GNUPGHOME", &home)
                .args(["--batch", "--passphrase", ""])
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "gpg {args:?}: {}", stderr(&out));
            stdout(&out)
        };
        gpg(&[
            "--quick-gen-key",
            "coffer test <test@example.invalid>",
            "default",
            "default",
            "never",
        ]);
        let listing = gpg(&["--list-keys", "--with-colons"]);
        let fp = listing
            .lines()
            .find_map(|l| {
                l.strip_prefix("fpr:")
                    .map(|r| r.trim_matches(':').to_string())
            })
            .unwrap();
        Gpg { home, fp }
    }

    fn coffer(&self, sb: &Sandbox, args: &[&str]) -> Output {
        sb.cmd()
            .env("GNUPGHOME", &self.home)
            .args(args)
            .output()
            .unwrap()
    }

    fn sops(&self, sb: &Sandbox, args: &[&str]) -> Output {
        sb.sops_env(&[("GNUPGHOME", self.home.as_os_str())], args)
    }
}

impl Gpg {
    /// A gpg (for `SOPS_GPG_EXEC`) that runs the shell line `before` (writing down its
    /// runs or its environment), then is gpg.
    fn logging(sb: &Sandbox, before: &str) -> PathBuf {
        let script = sb.write(
            "gpg-logging",
            format!("#!/bin/sh\n{before}\nexec gpg \"$@\"\n"),
        );
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        script
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", &self.home)
            .args(["--kill", "gpg-agent"])
            .output();
    }
}

#[test]
fn pgp_files_open_both_ways_through_gpg() {
    let sb = Sandbox::new();
    let gpg = Gpg::new(&sb, "gnupg");
    for name in ["app.yaml", "app.json", "app.env", "app.ini"] {
        sb.copy(&testdata(&format!("plain/{name}")), name);
        let ours = format!("ours.{name}");
        let out = gpg.coffer(&sb, &["encrypt", "--pgp", &gpg.fp, "-o", &ours, name]);
        assert_success(&out, &["encrypt --pgp", name]);
        let text = sb.read_str(&ours);
        assert!(
            text.contains("BEGIN PGP MESSAGE") && text.contains(&gpg.fp),
            "{name}"
        );
        let theirs = gpg.sops(&sb, &["decrypt", &ours]);
        assert_success(&theirs, &["sops decrypt", name]);
        assert!(stdout(&theirs).contains("S3cr3t!"), "{name}");

        let sops_file = format!("sops.{name}");
        let out = gpg.sops(
            &sb,
            &["encrypt", "--pgp", &gpg.fp, "--output", &sops_file, name],
        );
        assert_success(&out, &["sops encrypt --pgp", name]);
        let opened = gpg.coffer(&sb, &["decrypt", &sops_file]);
        assert_success(&opened, &["decrypt", name]);
        assert_eq!(
            stdout(&opened),
            stdout(&gpg.sops(&sb, &["decrypt", &sops_file])),
            "{name}"
        );
    }
    // Without the key in GnuPG's home it does not open, and says which key it needed.
    let out = sb
        .cmd()
        .env("GNUPGHOME", sb.path("empty-gnupg"))
        .args(["decrypt", "ours.app.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("pgp:{}", gpg.fp)),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_team_moves_from_pgp_to_age_with_updatekeys() {
    let sb = Sandbox::new();
    let gpg = Gpg::new(&sb, "gnupg");
    sb.copy(&testdata("plain/app.yaml"), "app.yaml");
    sb.write(
        ".coffer.yaml",
        format!("creation_rules:\n  - pgp: {}\n", gpg.fp),
    );
    let out = gpg.coffer(&sb, &["encrypt", "-i", "app.yaml"]);
    assert_success(&out, &["encrypt by the pgp rule"]);
    let before = sb.read_str("app.yaml");

    // Both for a while: age is added, the data key and the values stay.
    sb.write(
        ".coffer.yaml",
        format!(
            "creation_rules:\n  - pgp: {}\n    age: {}\n",
            gpg.fp, sb.recipient
        ),
    );
    let out = gpg.coffer(&sb, &["updatekeys", "-y", "app.yaml"]);
    assert_success(&out, &["updatekeys, age added"]);
    let both = sb.read_str("app.yaml");
    assert_eq!(first_enc(&before), first_enc(&both));
    assert!(both.contains("BEGIN PGP MESSAGE") && both.contains("BEGIN AGE ENCRYPTED FILE"));

    // Then age alone: the PGP key is removed and the data key rotated.
    sb.write(
        ".coffer.yaml",
        format!("creation_rules:\n  - age: {}\n", sb.recipient),
    );
    let out = gpg.coffer(&sb, &["updatekeys", "-y", "app.yaml"]);
    assert_success(&out, &["updatekeys, pgp removed"]);
    let after = sb.read_str("app.yaml");
    assert!(!after.contains("BEGIN PGP MESSAGE"));
    assert_ne!(first_enc(&both), first_enc(&after));
    let out = sb
        .cmd()
        .env("GNUPGHOME", sb.path("none"))
        .args(["decrypt", "app.yaml"])
        .output()
        .unwrap();
    assert_success(&out, &["decrypt with age alone"]);
    assert_eq!(
        out.stdout,
        std::fs::read(testdata("plain/app.yaml")).unwrap()
    );
}

#[test]
fn a_shamir_group_may_be_a_pgp_key() {
    let sb = Sandbox::new();
    let gpg = Gpg::new(&sb, "gnupg");
    sb.copy(&testdata("plain/app.env"), "app.env");
    sb.write(
        ".sops.yaml",
        format!(
            "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n      - pgp: [{}]\n      - age: [{}]\n",
            gpg.fp, sb.recipient
        ),
    );
    let out = gpg.coffer(&sb, &["encrypt", "-o", "split.env", "app.env"]);
    assert_success(&out, &["encrypt over a pgp and an age group"]);
    let theirs = gpg.sops(&sb, &["decrypt", "split.env"]);
    assert_success(&theirs, &["sops decrypt"]);
    assert!(stdout(&theirs).contains("DB_PASSWORD=S3cr3t!pass\n"));
    let ours = gpg.coffer(&sb, &["decrypt", "split.env"]);
    assert_eq!(ours.stdout, sb.read("app.env"));
    // Without the PGP group, one of two is not enough.
    let out = sb
        .cmd()
        .env("GNUPGHOME", sb.path("none"))
        .args(["decrypt", "split.env"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

#[test]
fn a_pgp_entry_that_was_not_encrypted_opens_nothing() {
    // A stored (unencrypted, compressed) literal where the wrapped key belongs: gpg
    // prints it without a key, so coffer must insist on gpg's decryption status.
    let sb = Sandbox::new();
    let gpg = Gpg::new(&sb, "gnupg");
    sb.copy(&testdata("plain/app.json"), "app.json");
    let out = gpg.coffer(
        &sb,
        &["encrypt", "--pgp", &gpg.fp, "-o", "ours.json", "app.json"],
    );
    assert_success(&out, &["encrypt --pgp"]);
    let mut stored = Command::new("gpg")
        .env("GNUPGHOME", &gpg.home)
        .args(["--batch", "--store", "-a"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    stored.stdin.take().unwrap().write_all(&[7u8; 32]).unwrap();
    let stored = stored.wait_with_output().unwrap();
    let armored = String::from_utf8(stored.stdout).unwrap();
    let text = sb.read_str("ours.json");
    let start = text.find("\"enc\": \"-----BEGIN PGP MESSAGE-----").unwrap() + "\"enc\": \"".len();
    let end = start + text[start..].find('"').unwrap();
    let forged = format!(
        "{}{}{}",
        &text[..start],
        armored.replace('\n', "\\n"),
        &text[end..]
    );
    sb.write("forged.json", forged);
    let out = gpg.coffer(&sb, &["decrypt", "forged.json"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("gpg did not report a decrypted message"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn gpg_runs_without_the_age_identities_in_its_environment() {
    let sb = Sandbox::new();
    let gpg = Gpg::new(&sb, "gnupg");
    // A gpg that writes down its environment, then is gpg.
    let log = sb.path("gpg-env.txt");
    let script = Gpg::logging(&sb, &format!("env > '{}'", log.display()));
    let identity = std::fs::read_to_string(sb.key_file()).unwrap();
    let identity = identity
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap();
    sb.copy(&testdata("plain/app.env"), "app.env");
    let out = sb
        .cmd()
        .env("GNUPGHOME", &gpg.home)
        .env("SOPS_GPG_EXEC", &script)
        .env("SOPS_AGE_KEY", identity)
        .env("COFFER_MFA_TOKEN", "123456")
        .args(["encrypt", "--pgp", &gpg.fp, "app.env"])
        .output()
        .unwrap();
    assert_success(&out, &["encrypt through the logging gpg"]);
    let seen = std::fs::read_to_string(&log).unwrap();
    assert!(seen.contains("GNUPGHOME="), "{seen}");
    assert!(!seen.contains(identity) && !seen.contains("SOPS_AGE_KEY="));
    assert!(!seen.contains("COFFER_MFA_TOKEN="));
}

#[test]
fn under_the_name_sops_pgp_files_round_trip_and_a_missing_key_is_128() {
    let sb = Sandbox::new();
    let gpg = Gpg::new(&sb, "gnupg");
    sb.copy(&testdata("plain/app.yaml"), "app.yaml");
    let as_sops = |args: &[&str], home: &std::path::Path| {
        sb.as_sops()
            .env("GNUPGHOME", home)
            .args(args)
            .output()
            .unwrap()
    };
    // SOPS_PGP_FP names the key, as scripts set it for sops.
    let out = sb
        .as_sops()
        .env("GNUPGHOME", &gpg.home)
        .env("SOPS_PGP_FP", &gpg.fp)
        .args(["-e", "app.yaml"])
        .output()
        .unwrap();
    assert_success(&out, &["sops -e with SOPS_PGP_FP"]);
    sb.write("ours.yaml", &out.stdout);
    let theirs = gpg.sops(&sb, &["-d", "ours.yaml"]);
    assert_success(&theirs, &["real sops -d"]);
    let out = gpg.sops(&sb, &["-e", "-p", &gpg.fp, "app.yaml"]);
    sb.write("sops.yaml", &out.stdout);
    let mine = as_sops(&["-d", "sops.yaml"], &gpg.home);
    assert_success(&mine, &["sops -d"]);
    assert_eq!(stdout(&mine), stdout(&gpg.sops(&sb, &["-d", "sops.yaml"])));
    assert_eq!(stdout(&theirs), stdout(&mine));
    let out = as_sops(&["-d", "sops.yaml"], &sb.path("empty-gnupg"));
    assert_eq!(out.status.code(), Some(128), "{}", stderr(&out));
    // `access` names PGP keys, and --who finds files by fingerprint.
    sb.write(
        "age.yaml",
        sb.ok(&["encrypt", "--age", &sb.recipient, "app.yaml"])
            .stdout,
    );
    let out = sb.ok(&[
        "access",
        "--who",
        &gpg.fp,
        "ours.yaml",
        "sops.yaml",
        "age.yaml",
    ]);
    let mut found: Vec<String> = stdout(&out).lines().map(String::from).collect();
    found.sort();
    assert_eq!(found, ["ours.yaml", "sops.yaml"]);
    let out = sb.ok(&["access", "ours.yaml"]);
    assert!(
        stdout(&out).contains(&format!("  pgp:{}\n", gpg.fp)),
        "{}",
        stdout(&out)
    );
}

/// `--decryption-order` (and `SOPS_DECRYPTION_ORDER`) decides which key kind opens a file
/// that both could open, in both front ends: a gpg that writes down each run tells.
#[test]
fn a_decryption_order_decides_which_key_kind_opens_the_file() {
    let sb = Sandbox::new();
    let gpg = Gpg::new(&sb, "gnupg");
    let log = sb.path("gpg-runs.txt");
    let script = Gpg::logging(&sb, &format!("echo run >> '{}'", log.display()));
    sb.write("a.yaml", "a: secret\n");
    let out = gpg.coffer(
        &sb,
        &[
            "encrypt",
            "--age",
            &sb.recipient,
            "--pgp",
            &gpg.fp,
            "-i",
            "a.yaml",
        ],
    );
    assert_success(&out, &["encrypt for age and pgp"]);
    let runs = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let decrypt = |front: &str, args: &[&str], env: &[(&str, &str)]| {
        let _ = std::fs::remove_file(&log);
        let mut c = if front == "sops" {
            sb.as_sops()
        } else {
            sb.cmd()
        };
        c.env("GNUPGHOME", &gpg.home)
            .env("SOPS_GPG_EXEC", &script)
            .env("SOPS_AGE_KEY_FILE", sb.key_file());
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.args(args).output().unwrap();
        assert_success(&out, &[front, &format!("{args:?} {env:?}")]);
        assert_eq!(stdout(&out), "a: secret\n");
        runs()
    };
    for front in ["coffer", "sops"] {
        assert_eq!(
            decrypt(front, &["decrypt", "a.yaml"], &[]),
            0,
            "{front}: age by default"
        );
        assert_eq!(
            decrypt(
                front,
                &["decrypt", "--decryption-order", "pgp,age", "a.yaml"],
                &[]
            ),
            1,
            "{front}: pgp first by the flag"
        );
        assert_eq!(
            decrypt(
                front,
                &["decrypt", "a.yaml"],
                &[("SOPS_DECRYPTION_ORDER", "pgp")]
            ),
            1,
            "{front}: pgp first by the environment"
        );
        assert_eq!(
            decrypt(
                front,
                &["decrypt", "--decryption-order", "age", "a.yaml"],
                &[("SOPS_DECRYPTION_ORDER", "pgp")]
            ),
            0,
            "{front}: the flag over the environment"
        );
    }
}
