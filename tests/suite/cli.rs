//! The command line itself: help, completions, keygen.

use super::common::*;

#[test]
fn help_lists_commands_with_examples() {
    let sb = Sandbox::without_key();
    let help = stdout(&sb.ok(&["--help"]));
    for cmd in [
        "keygen",
        "encrypt",
        "decrypt",
        "edit",
        "set",
        "unset",
        "rotate",
        "updatekeys",
        "filestatus",
        "completions",
    ] {
        assert!(
            help.contains(&format!("  {cmd}")),
            "{cmd} missing from help:\n{help}"
        );
    }
    assert!(help.contains("Examples:") && help.contains("Exit codes:"));
    for cmd in ["encrypt", "decrypt", "edit", "set", "rotate"] {
        let h = stdout(&sb.ok(&[cmd, "--help"]));
        assert!(h.contains("Example"), "{cmd} --help has no example");
    }
}

#[test]
fn usage_errors_exit_2() {
    let sb = Sandbox::without_key();
    assert_eq!(sb.run(&["decrypt"]).status.code(), Some(2));
    assert_eq!(sb.run(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn completions_are_generated() {
    let sb = Sandbox::without_key();
    let bash = stdout(&sb.ok(&["completions", "bash"]));
    assert!(bash.contains("_coffer()") && bash.contains("updatekeys"));
}

#[test]
fn keygen_writes_a_private_identity_and_never_overwrites() {
    let sb = Sandbox::new();
    let key = sb.key_file();
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(key.parent().unwrap()), 0o700);
    let text = std::fs::read_to_string(&key).unwrap();
    assert!(text.contains(&format!("# public key: {}", sb.recipient)));
    assert!(text.lines().any(|l| l.starts_with("AGE-SECRET-KEY-1")));
    let out = sb.run(&["keygen"]);
    assert_error(&out, 1, "already exists");
    assert_eq!(std::fs::read_to_string(&key).unwrap(), text);
    // --show prints the recipient of the identity there, and writes nothing.
    let out = sb.ok(&["keygen", "--show"]);
    assert_eq!(stdout(&out), format!("{}\n", sb.recipient));
    assert_eq!(std::fs::read_to_string(&key).unwrap(), text);
    let out = sb.run(&["keygen", "--show", "-o", "nothing-here.txt"]);
    assert_error(&out, 1, "nothing-here.txt");
}

#[test]
fn keygen_says_what_to_send_to_a_teammate() {
    let sb = Sandbox::without_key();
    let out = sb.ok(&["keygen"]);
    let recipient = stdout(&out).trim().to_string();
    assert!(recipient.starts_with("age1"));
    assert_eq!(
        stderr(&out).lines().last().unwrap(),
        format!(
            "hint: send this recipient to a teammate, who adds you with: coffer team add YOUR-NAME {recipient}"
        )
    );
}

#[test]
fn identities_are_found_in_the_documented_order() {
    let sb = Sandbox::new();
    sb.write("a.env", "A=1\n");
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "a.env"]);
    let key = std::fs::read_to_string(sb.key_file()).unwrap();
    let elsewhere = Sandbox::without_key();
    elsewhere.copy(&sb.path("a.env"), "a.env");
    // Inline key material.
    assert_success(
        &elsewhere.run_with(&["decrypt", "a.env"], &[("COFFER_AGE_KEY", &key)]),
        &["COFFER_AGE_KEY"],
    );
    assert_success(
        &elsewhere.run_with(&["decrypt", "a.env"], &[("SOPS_AGE_KEY", &key)]),
        &["SOPS_AGE_KEY"],
    );
    // sops's default key file.
    elsewhere.write("home/.config/sops/age/keys.txt", &key);
    assert_success(
        &elsewhere.run(&["decrypt", "a.env"]),
        &["sops default key file"],
    );
}

#[test]
fn ssh_ed25519_keys_work_as_recipient_and_identity() {
    let sb = Sandbox::without_key();
    let key = sb.path("id_ed25519");
    let public = ssh_keygen(&sb, "id_ed25519", "");
    sb.write("a.env", "A=1\n");
    sb.ok(&["encrypt", "--age", &public, "-i", "a.env"]);
    assert!(sb
        .read_str("a.env")
        .contains("sops_age__list_0__map_recipient=ssh-ed25519 "));
    let out = sb.run_with(
        &["decrypt", "a.env"],
        &[("SOPS_AGE_SSH_PRIVATE_KEY_FILE", key.to_str().unwrap())],
    );
    assert_success(&out, &["decrypt with ssh key"]);
    assert_eq!(stdout(&out), "A=1\n");
    // And from ~/.ssh by default.
    sb.copy(&key, "home/.ssh/id_ed25519");
    assert_eq!(stdout(&sb.ok(&["decrypt", "a.env"])), "A=1\n");
}

/// `scripts/install` puts the binary, man pages, completions and a `sops` link under a
/// prefix, and each works from there.
#[test]
fn install_puts_binary_man_pages_completions_and_sops_link_under_a_prefix() {
    let sb = Sandbox::without_key();
    let prefix = sb.path("prefix");
    let out = std::process::Command::new(repo().join("scripts/install"))
        .args(["--binary", env!("CARGO_BIN_EXE_coffer"), "--sops-link"])
        .arg(&prefix)
        .output()
        .unwrap();
    assert_success(&out, &["scripts/install"]);
    let man = std::fs::read_to_string(prefix.join("share/man/man1/coffer-encrypt.1")).unwrap();
    assert!(
        man.contains(".TH coffer-encrypt 1") && man.contains("strict\\-layout"),
        "{man}"
    );
    for page in [
        "coffer.1",
        "coffer-decrypt.1",
        "coffer-team-add.1",
        "coffer-git-setup.1",
    ] {
        assert!(prefix.join("share/man/man1").join(page).is_file(), "{page}");
    }
    let bash =
        std::fs::read_to_string(prefix.join("share/bash-completion/completions/coffer")).unwrap();
    assert!(bash.contains("complete -F _coffer"), "{bash}");
    let zsh = std::fs::read_to_string(prefix.join("share/zsh/site-functions/_coffer")).unwrap();
    assert!(zsh.starts_with("#compdef coffer"), "{zsh}");
    assert!(prefix
        .join("share/fish/vendor_completions.d/coffer.fish")
        .is_file());
    // The link answers as sops, the binary as coffer.
    let run = |name: &str| {
        let o = std::process::Command::new(prefix.join("bin").join(name))
            .arg("--version")
            .output()
            .unwrap();
        assert_success(&o, &[name, "--version"]);
        stdout(&o)
    };
    assert!(run("sops").starts_with("sops 3."), "{}", run("sops"));
    assert!(run("coffer").starts_with("coffer "), "{}", run("coffer"));
}

/// Output that cannot be written is one line and exit 1, never a panic; a closed pipe
/// ends quietly (the reader had what it wanted).
#[test]
fn help_version_and_completions_report_a_full_disk() {
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    for args in [
        &["completions", "bash"][..],
        &["--version"],
        &["--help"],
        &["sops", "--version"],
        &["sops", "--help"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_coffer"))
            .args(args)
            .stdout(full())
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(
            err, "coffer: <stdout>: No space left on device (os error 28)\n",
            "{args:?}"
        );
    }
}
