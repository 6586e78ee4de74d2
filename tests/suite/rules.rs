//! The repository's rules are the truth: what the filter commits is encrypted as the
//! creation rules say, for whom they say, whatever metadata the last commit carried. Each
//! case is tried as a keyless committer or a careless teammate would, in real clones.

use super::common::*;

const RULE_FILE: &str = ".coffer.yaml";

/// A shared remote with `secrets/app.yaml` committed by `owner` under a rule naming
/// `recipients`; `owner`'s clone at `repo/`.
fn shared(owner: &Sandbox, recipients: &[&str]) -> String {
    let remote = owner.path("remote.git").display().to_string();
    owner.git(".", &["init", "-q", "--bare", "-b", "main", "remote.git"]);
    owner.git(".", &["clone", "-q", &remote, "repo"]);
    assert_success(&owner.coffer_in("repo", &["git", "setup"]), &["setup"]);
    owner.write(
        &format!("repo/{RULE_FILE}"),
        format!(
            "creation_rules:\n  - path_regex: ^secrets/\n    age: [{}]\n",
            recipients.join(", ")
        ),
    );
    owner.write(
        "repo/.gitattributes",
        "secrets/** filter=coffer diff=coffer merge=coffer\n",
    );
    owner.write("repo/secrets/app.yaml", "password: p1\nuser: u\n");
    owner.git("repo", &["add", "."]);
    owner.git("repo", &["commit", "-q", "-m", "init"]);
    owner.git("repo", &["push", "-q", "origin", "HEAD:main"]);
    remote
}

/// A clone of `remote` at `repo/` with the filter set up.
fn clone(sb: &Sandbox, remote: &str) {
    sb.git(".", &["clone", "-q", remote, "repo"]);
    assert_success(&sb.coffer_in("repo", &["git", "setup"]), &["setup"]);
}

/// Stage the working tree's bytes of `path` as they are, past the filter, as someone
/// whose git does not run it would; then commit.
fn commit_past_the_filter(sb: &Sandbox, path: &str) {
    let id = sb.git("repo", &["hash-object", "-w", "--no-filters", path]);
    let info = format!("100644,{},{path}", id.trim());
    sb.git("repo", &["update-index", "--cacheinfo", &info]);
    sb.git(
        "repo",
        &["commit", "-q", "--no-verify", "-m", "past the filter"],
    );
}

#[test]
fn a_keyless_committer_cannot_weaken_what_the_filter_encrypts() {
    let alice = Sandbox::new();
    let mallory = Sandbox::without_key();
    let remote = shared(&alice, &[&alice.recipient]);
    clone(&mallory, &remote);
    // Mallory's own file, for the team's public recipient, leaving passwords in clear.
    mallory.write("weak.yaml", "password: dummy\nuser: u\n");
    let out = mallory.run(&[
        "encrypt",
        "--age",
        &alice.recipient,
        "--unencrypted-regex",
        "^password$",
        "weak.yaml",
    ]);
    assert_success(&out, &["encrypt weak"]);
    mallory.write("repo/secrets/app.yaml", &out.stdout);
    // The filter refuses it: without a key it cannot be encrypted as the rules say.
    let add = mallory.git_in("repo", &["add", "secrets/app.yaml"]);
    assert!(!add.status.success());
    assert!(
        stderr(&add).contains(
            "secrets/app.yaml: its metadata differs from the creation rules (unencrypted_regex)"
        ),
        "{}",
        stderr(&add)
    );
    // Past the filter it lands; the team's check names it.
    commit_past_the_filter(&mallory, "secrets/app.yaml");
    mallory.git("repo", &["push", "-q", "origin", "HEAD:main"]);
    alice.git("repo", &["pull", "-q", "origin", "main"]);
    let check = alice.coffer_in("repo", &["git", "check"]);
    assert_error(
        &check,
        1,
        "coffer: 1 covered file(s) are not encrypted as the creation rules say: secrets/app.yaml (staged otherwise than its creation rule says: unencrypted_regex)",
    );
    assert!(stderr(&check).contains("hint: secrets/app.yaml: with a key that opens it, encrypt it as the rules say: git add --renormalize -- secrets/app.yaml"));
    let status = alice.coffer_in("repo", &["git", "status"]);
    assert_eq!(status.status.code(), Some(1), "{}", stderr(&status));
    // The next password typed in is committed encrypted: the rules decide, not the blob.
    alice.ok(&[
        "set",
        "repo/secrets/app.yaml",
        r#"["password"]"#,
        "p2-secret",
    ]);
    let add = alice.git_in("repo", &["add", "secrets/app.yaml"]);
    assert_success(&add, &["alice add"]);
    assert!(
        stderr(&add).contains("secrets/app.yaml: encrypted as the creation rules say, not as committed (unencrypted_regex)"),
        "{}",
        stderr(&add)
    );
    let staged = alice.git("repo", &["show", ":secrets/app.yaml"]);
    assert!(
        !staged.contains("p2-secret") && staged.contains("password: ENC["),
        "{staged}"
    );
    assert!(!staged.contains("unencrypted_regex"), "{staged}");
    assert_success(
        &alice.coffer_in("repo", &["git", "check"]),
        &["check after"],
    );
}

/// Replace the line starting with `key:` in `text` with `key: value`.
fn with_line(text: &str, key: &str, value: &str) -> String {
    text.lines()
        .map(|l| {
            if l.starts_with(&format!("{key}:")) {
                format!("{key}: {value}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn a_value_pasted_in_clear_into_ciphertext_is_encrypted_or_refused() {
    let alice = Sandbox::new();
    let mallory = Sandbox::without_key();
    let remote = shared(&alice, &[&alice.recipient]);
    clone(&mallory, &remote);
    let blob = alice.git("repo", &["show", "HEAD:secrets/app.yaml"]);

    // With a key, clean encrypts what was pasted.
    alice.write(
        "repo/secrets/app.yaml",
        with_line(&blob, "password", "p-clear"),
    );
    let add = alice.git_in("repo", &["add", "secrets/app.yaml"]);
    assert_success(&add, &["add pasted"]);
    let staged = alice.git("repo", &["show", ":secrets/app.yaml"]);
    assert!(!staged.contains("p-clear"), "{staged}");
    alice.write("staged.yaml", &staged);
    assert_eq!(
        stdout(&alice.ok(&["decrypt", "staged.yaml"])),
        "password: p-clear\nuser: u\n"
    );

    // Without one, clean refuses it, and past the filter the check names it.
    mallory.write("repo/secrets/app.yaml", with_line(&blob, "user", "pasted"));
    let add = mallory.git_in("repo", &["add", "secrets/app.yaml"]);
    assert!(!add.status.success());
    assert!(
        stderr(&add).contains("what the rules encrypt stands in clear ([\"user\"])"),
        "{}",
        stderr(&add)
    );
    commit_past_the_filter(&mallory, "secrets/app.yaml");
    let check = mallory.coffer_in("repo", &["git", "check"]);
    assert_error(
        &check,
        1,
        "secrets/app.yaml (staged with what the rules encrypt in clear: [\"user\"])",
    );
    let status = mallory.coffer_in("repo", &["git", "status"]);
    assert_eq!(status.status.code(), Some(1));
}

/// A branch `feature` that changes `user`, with `main` checked out again.
fn feature_branch(sb: &Sandbox) {
    sb.git("repo", &["checkout", "-q", "-b", "feature"]);
    sb.ok(&[
        "set",
        "repo/secrets/app.yaml",
        r#"["user"]"#,
        "feature-user",
    ]);
    sb.git("repo", &["commit", "-q", "-am", "feature"]);
    sb.git("repo", &["checkout", "-q", "main"]);
}

#[test]
fn merges_keep_a_revocation_both_ways() {
    let alice = Sandbox::new();
    let bob = Sandbox::new();
    shared(&alice, &[&alice.recipient, &bob.recipient]);
    let git = |args: &[&str]| alice.git("repo", args);
    feature_branch(&alice);
    // main revokes bob: a new data key for alice alone.
    alice.write(
        &format!("repo/{RULE_FILE}"),
        format!(
            "creation_rules:\n  - path_regex: ^secrets/\n    age: [{}]\n",
            alice.recipient
        ),
    );
    let out = alice.coffer_in("repo", &["updatekeys", "--all", "-y"]);
    assert_success(&out, &["updatekeys"]);
    git(&["commit", "-q", "-am", "bob leaves"]);

    let opens_for_bob = |rev: &str| {
        let blob = alice.git("repo", &["show", &format!("{rev}:secrets/app.yaml")]);
        bob.write("b.yaml", &blob);
        bob.run(&["decrypt", "b.yaml"]).status.success()
    };
    assert!(opens_for_bob("feature") && !opens_for_bob("main"));
    git(&["branch", "main2", "main"]);
    git(&["branch", "feature2", "feature"]);
    // main into feature: the merged file drops bob and gets a new data key.
    git(&["checkout", "-q", "feature"]);
    git(&["merge", "-q", "--no-edit", "main"]);
    assert!(!opens_for_bob("HEAD"), "the merge undid the revocation");
    alice.ok(&[
        "set",
        "repo/secrets/app.yaml",
        r#"["password"]"#,
        "after-merge",
    ]);
    git(&["commit", "-q", "-am", "a secret set after the merge"]);
    assert!(!opens_for_bob("HEAD"));
    // And the feature branch into main: main keeps its new data key.
    git(&["checkout", "-q", "main2"]);
    git(&["merge", "-q", "--no-edit", "feature2"]);
    assert!(!opens_for_bob("HEAD"), "the merge undid the revocation");
    assert_eq!(
        alice.read_str("repo/secrets/app.yaml"),
        "password: p1\nuser: feature-user\n"
    );
}

/// An age entry of `file` (YAML) for `from` relabelled as `to`.
fn relabel(sb: &Sandbox, file: &str, from: &str, to: &str) {
    let text = sb.read_str(file);
    assert!(text.contains(from));
    sb.write(file, text.replace(from, to));
}

#[test]
fn age_entries_are_checked_against_whom_they_name() {
    let alice = Sandbox::new();
    let bob = Sandbox::new();
    // A departing member's entry relabelled with a current member's recipient.
    alice.write(
        RULE_FILE,
        format!("creation_rules:\n  - age: [{}]\n", alice.recipient),
    );
    alice.write("a.yaml", "password: p1\n");
    let both = format!("{},{}", alice.recipient, bob.recipient);
    alice.ok(&["encrypt", "--age", &both, "-i", "a.yaml"]);
    relabel(&alice, "a.yaml", &bob.recipient, &alice.recipient);
    let access = stdout(&alice.ok(&["access", "a.yaml"]));
    assert!(
        access.contains(&format!(
            "differs from its creation rule: - a second entry named {}",
            alice.recipient
        )),
        "{access}"
    );
    let out = alice.ok(&["decrypt", "a.yaml"]);
    assert!(
        stderr(&out).contains("is named by two age entries"),
        "{}",
        stderr(&out)
    );
    let out = alice.ok(&["updatekeys", "-y", "a.yaml"]);
    assert!(
        stdout(&out).contains("(data key rotated: a key was removed)"),
        "{}",
        stdout(&out)
    );
    bob.copy(&alice.path("a.yaml"), "a.yaml");
    assert_eq!(bob.run(&["decrypt", "a.yaml"]).status.code(), Some(3));

    // An entry that names alice but is bob's: an integrity error for alice, not "no key".
    alice.write("b.yaml", "password: p1\n");
    alice.ok(&["encrypt", "--age", &bob.recipient, "-i", "b.yaml"]);
    relabel(&alice, "b.yaml", &bob.recipient, &alice.recipient);
    let out = alice.run(&["decrypt", "b.yaml"]);
    assert_error(
        &out,
        4,
        "the entry named for this identity does not open with it: it was altered",
    );

    // An entry without a recipient is read as sops reads it, shown, and rotated away.
    alice.write("c.yaml", "password: p1\n");
    let both = format!("{},{}", alice.recipient, bob.recipient);
    alice.ok(&["encrypt", "--age", &both, "-i", "c.yaml"]);
    let named = format!("    - recipient: {}\n      enc: |", bob.recipient);
    let text = alice.read_str("c.yaml");
    assert!(text.contains(&named), "{text}");
    let unnamed = text.replace(&named, "    - enc: |");
    alice.write("c.yaml", &unnamed);
    assert_eq!(stdout(&alice.ok(&["decrypt", "c.yaml"])), "password: p1\n");
    let access = stdout(&alice.ok(&["access", "c.yaml"]));
    assert!(access.contains("  unknown age recipient\n"), "{access}");
    for args in [
        &["rotate", "-y", "c.yaml"][..],
        &["updatekeys", "-y", "c.yaml"],
    ] {
        alice.write("c.yaml", &unnamed);
        let out = alice.ok(args);
        assert!(
            stdout(&out).contains("  - unknown age recipient\n"),
            "{args:?}: {}",
            stdout(&out)
        );
        let text = alice.read_str("c.yaml");
        assert!(
            text.contains(&format!("recipient: {}", alice.recipient)),
            "{args:?}"
        );
        bob.write("c.yaml", &text);
        assert_eq!(
            bob.run(&["decrypt", "c.yaml"]).status.code(),
            Some(3),
            "{args:?}"
        );
    }
}

#[test]
fn comments_typed_in_clear_are_warned_about_and_refused_by_check() {
    let sb = Sandbox::new();
    let remote = shared(&sb, &[&sb.recipient]);
    let _ = remote;
    let blob = sb.git("repo", &["show", "HEAD:secrets/app.yaml"]);
    sb.write("a.yaml", format!("# typed in later\n{blob}"));
    let out = sb.ok(&["decrypt", "a.yaml"]);
    assert!(
        stderr(&out).contains("coffer: warning: a.yaml: possibly unencrypted comment at line 1"),
        "{}",
        stderr(&out)
    );
    sb.write("repo/secrets/app.yaml", format!("# typed in later\n{blob}"));
    commit_past_the_filter(&sb, "secrets/app.yaml");
    assert_error(
        &sb.coffer_in("repo", &["git", "check"]),
        1,
        "secrets/app.yaml (staged with what the rules encrypt in clear: the comment at line 1)",
    );
}

#[test]
fn metadata_is_written_as_sops_reads_it() {
    let sb = Sandbox::new();
    sb.write("a.yaml", "password: p1\nuser: u\n");
    let out = sb
        .as_sops()
        .args([
            "-e",
            "-i",
            "--mac-only-encrypted",
            "--age",
            &sb.recipient,
            "a.yaml",
        ])
        .output()
        .unwrap();
    assert_success(&out, &["sops -e --mac-only-encrypted"]);
    assert!(sb
        .read_str("a.yaml")
        .contains("\n  mac_only_encrypted: true\n"));
    assert_success(&sb.sops(&["-d", "a.yaml"]), &["real sops reads it"]);
    sb.ok(&["set", "a.yaml", r#"["user"]"#, "v"]);
    let out = sb.sops(&["-d", "a.yaml"]);
    assert_success(&out, &["real sops after set"]);
    assert_eq!(stdout(&out), "password: p1\nuser: v\n");
    // An encryption context with a key twice is refused, in both front ends.
    sb.write("b.env", "A=1\n");
    let arn = "arn:aws:kms:eu-west-1:111122223333:key/k";
    let out = sb.run(&[
        "encrypt",
        "--kms",
        arn,
        "--encryption-context",
        "a=b,a=c",
        "b.env",
    ]);
    assert_error(&out, 2, "encryption context key \"a\" is given twice");
    let out = sb
        .as_sops()
        .args([
            "-e",
            "--kms",
            arn,
            "--encryption-context",
            "a:b,a:c",
            "b.env",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
}

/// A file a future sops wrote is read with a warning and written only when asked.
#[test]
fn a_future_sops_version_is_read_with_a_warning_and_rewritten_only_with_force() {
    let sb = Sandbox::new();
    sb.encrypted("a.yaml", "password: p1\n");
    let text = sb.read_str("a.yaml");
    let version = text
        .lines()
        .find(|l| l.trim_start().starts_with("version: "))
        .unwrap()
        .to_string();
    let future = text.replace(&version, "  version: 4.0.0");
    sb.write("a.yaml", &future);
    // A rule that adds a key: updatekeys has something to write.
    let other = Sandbox::new();
    sb.write(
        RULE_FILE,
        format!(
            "creation_rules:\n  - age: [{}, {}]\n",
            sb.recipient, other.recipient
        ),
    );
    let out = sb.ok(&["decrypt", "a.yaml"]);
    assert!(
        stderr(&out)
            .contains("a.yaml: written by sops 4.0.0, a version coffer does not know; read as 3.x"),
        "{}",
        stderr(&out)
    );
    for args in [
        &["set", "a.yaml", r#"["password"]"#, "p2"][..],
        &["rotate", "-i", "a.yaml"],
        &["updatekeys", "-y", "a.yaml"],
    ] {
        let out = sb.run(args);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        assert!(
            stderr(&out).contains("pass --force for that"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert_eq!(sb.read_str("a.yaml"), future, "{args:?}");
    }
    sb.ok(&["--force", "set", "a.yaml", r#"["password"]"#, "p2"]);
    assert!(sb.read_str("a.yaml").contains(&version));
    assert_eq!(stdout(&sb.ok(&["decrypt", "a.yaml"])), "password: p2\n");
}

/// updatekeys puts what a file encrypts back to its rule, as it does whom for.
#[test]
fn updatekeys_encrypts_as_the_rule_says() {
    let sb = Sandbox::new();
    sb.write(
        RULE_FILE,
        format!("creation_rules:\n  - age: [{}]\n", sb.recipient),
    );
    sb.write("a.yaml", "password: p1\nuser: u\n");
    let args = [
        "encrypt",
        "--unencrypted-regex",
        "^password$",
        "-i",
        "a.yaml",
    ];
    sb.ok(&args);
    assert!(sb.read_str("a.yaml").contains("password: p1\n"));
    let out = sb.ok(&["updatekeys", "-y", "a.yaml"]);
    assert_eq!(
        stdout(&out),
        "a.yaml\n  ~ unencrypted_regex (as the creation rule says)\nPlan: 1 file(s) to change (0 with a new data key), 0 unchanged, 0 skipped.\n"
    );
    let text = sb.read_str("a.yaml");
    assert!(
        text.contains("password: ENC[") && !text.contains("unencrypted_regex"),
        "{text}"
    );
    assert_eq!(
        stdout(&sb.ok(&["decrypt", "a.yaml"])),
        "password: p1\nuser: u\n"
    );
    let out = sb.ok(&["updatekeys", "-y", "a.yaml"]);
    assert!(stdout(&out).contains("0 file(s) to change (0 with a new data key), 1 unchanged"));
}

/// A rule that names no keys (they come from the environment, as many sops setups have
/// it) says nothing about keys: clean keeps the file's, and a rule naming a key twice
/// is one key, so nothing is re-keyed on every clean.
#[test]
fn rules_without_keys_or_with_a_key_twice_leave_the_keys_alone() {
    let sb = Sandbox::new();
    sb.write("repo/.keep", "");
    sb.git("repo", &["init", "-q", "-b", "main"]);
    assert_success(&sb.coffer_in("repo", &["git", "setup"]), &["setup"]);
    sb.write("repo/.gitattributes", "secrets/** filter=coffer\n");
    sb.write(
        &format!("repo/{RULE_FILE}"),
        "creation_rules:\n  - encrypted_regex: ^password$\n",
    );
    sb.write("repo/secrets/a.yaml", "password: p1\nuser: u\n");
    let env = [("COFFER_AGE_RECIPIENTS", sb.recipient.as_str())];
    assert_success(&sb.git_env("repo", &["add", "."], &env), &["add"]);
    sb.git("repo", &["commit", "-q", "-m", "init"]);
    sb.write("repo/secrets/a.yaml", "password: p2\nuser: u\n");
    let add = sb.git_in("repo", &["add", "secrets/a.yaml"]);
    assert_success(&add, &["add without the environment's recipients"]);
    let staged = sb.git("repo", &["show", ":secrets/a.yaml"]);
    assert!(
        staged.contains(&sb.recipient) && staged.contains("user: u\n"),
        "{staged}"
    );
    sb.write("staged.yaml", &staged);
    assert_eq!(
        stdout(&sb.ok(&["decrypt", "staged.yaml"])),
        "password: p2\nuser: u\n"
    );
    sb.git("repo", &["commit", "-q", "-m", "p2"]);

    // The same key twice in the rule: the file is in step, and stays so.
    let twice = format!(
        "keys:\n  - &me {r}\ncreation_rules:\n  - encrypted_regex: ^password$\n    age: [*me, {r}]\n",
        r = sb.recipient
    );
    sb.write(&format!("repo/{RULE_FILE}"), twice);
    let blob = sb.git("repo", &["show", "HEAD:secrets/a.yaml"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    sb.write("repo/secrets/a.yaml", "password: p2\nuser: u\n");
    assert_eq!(sb.git("repo", &["status", "--porcelain", "secrets"]), "");
    sb.git("repo", &["add", "secrets/a.yaml"]);
    assert_eq!(sb.git("repo", &["show", ":secrets/a.yaml"]), blob);
    assert_success(&sb.coffer_in("repo", &["git", "check"]), &["check"]);
}

/// Theirs rotated the data key (a leak) without removing anyone: the merge does not keep
/// ours' old key.
#[test]
fn a_merge_does_not_keep_a_data_key_the_other_side_rotated_away() {
    let alice = Sandbox::new();
    shared(&alice, &[&alice.recipient]);
    let git = |args: &[&str]| alice.git("repo", args);
    feature_branch(&alice);
    assert_success(
        &alice.coffer_in("repo", &["rotate", "--all", "-y"]),
        &["rotate"],
    );
    git(&["commit", "-q", "-am", "rotate after a leak"]);
    let password = |rev: &str| {
        let blob = alice.git("repo", &["show", &format!("{rev}:secrets/app.yaml")]);
        blob.lines()
            .find(|l| l.starts_with("password:"))
            .unwrap()
            .to_string()
    };
    let old = password("feature");
    assert_ne!(old, password("main"));
    git(&["checkout", "-q", "feature"]);
    git(&["merge", "-q", "--no-edit", "main"]);
    // The same value under the same key encrypts the same: a new key shows as a new line.
    assert_ne!(
        password("HEAD"),
        old,
        "the merge kept the rotated-away data key"
    );
    assert_eq!(
        alice.read_str("repo/secrets/app.yaml"),
        "password: p1\nuser: feature-user\n"
    );
}
