//! Key management across a repository: `updatekeys --all` (plan, dry run, confirmation,
//! rotation when a key goes, covered files staged, unstaged edits skipped, a failing file
//! reported while the rest apply), `rotate --all`, and `access`.

use super::common::*;

/// A team repository at `repo/`: alice (the sandbox's own key) and bob in the rule, 31
/// files encrypted in the working tree across formats and directories, and 2 files the
/// git filter covers. Returns (alice's sandbox, bob, carol).
fn team_repo() -> (Sandbox, Sandbox, Sandbox, Vec<(String, String)>) {
    let (sb, bob, carol) = (Sandbox::new(), Sandbox::new(), Sandbox::new());
    sb.write("repo/.keep", "");
    sb.git("repo", &["init", "-q", "-b", "main"]);
    assert_success(&sb.coffer_in("repo", &["git", "setup"]), &["git setup"]);
    rule(&sb, &[(&sb.recipient, "alice"), (&bob.recipient, "bob")]);
    sb.write(
        "repo/.gitattributes",
        "covered/** filter=coffer diff=coffer merge=coffer\n",
    );
    let mut files = Vec::new();
    for i in 0..10 {
        files.push((
            format!("secrets/app{i}.yaml"),
            format!("db:\n  password: pw-yaml-{i}\n  port: 5432\n"),
        ));
    }
    for env in ["prod", "staging"] {
        for i in 0..5 {
            files.push((
                format!("deploy/{env}/svc{i}.env"),
                format!("TOKEN=tok-{env}-{i}\n"),
            ));
        }
    }
    for i in 0..6 {
        files.push((
            format!("config/c{i}.json"),
            format!("{{\"key\": \"json-{i}\"}}\n"),
        ));
    }
    for i in 0..4 {
        files.push((format!("ini/i{i}.ini"), format!("[s]\nk = ini-{i}\n")));
    }
    files.push(("blob.bin".into(), "binary-secret\u{1}\u{2}".into()));
    for (name, plain) in &files {
        sb.write(&format!("repo/{name}"), plain);
        assert_success(
            &sb.coffer_in("repo", &["encrypt", "-i", name]),
            &["encrypt", name],
        );
    }
    for i in 0..2 {
        let (name, plain) = (format!("covered/c{i}.yaml"), format!("api: cov-{i}\n"));
        sb.write(&format!("repo/{name}"), &plain);
        files.push((name, plain));
    }
    sb.write("repo/notes.txt", "nothing secret, nothing encrypted\n");
    sb.git("repo", &["add", "."]);
    sb.git("repo", &["commit", "-q", "-m", "team"]);
    (sb, bob, carol, files)
}

/// `.coffer.yaml` naming these recipients, each with its name in a comment.
fn rule(sb: &Sandbox, people: &[(&str, &str)]) {
    let mut text = String::from("creation_rules:\n  - age:\n");
    for (r, name) in people {
        text.push_str(&format!("      - {r} # {name}\n"));
    }
    sb.write("repo/.coffer.yaml", text);
}

/// The encrypted bytes of a file: the staged blob for a covered one.
fn encrypted(sb: &Sandbox, name: &str) -> String {
    if name.starts_with("covered/") {
        sb.git("repo", &["show", &format!(":{name}")])
    } else {
        sb.read_str(&format!("repo/{name}"))
    }
}

/// Decrypt a file's encrypted bytes as `who`.
fn decrypt_as(sb: &Sandbox, who: &Sandbox, name: &str) -> std::process::Output {
    let tmp = format!("probe/{}", name.replace('/', "_"));
    sb.write(&tmp, encrypted(sb, name));
    let ext = name.rsplit('.').next().unwrap();
    let ty = match ext {
        "yaml" => "yaml",
        "json" => "json",
        "env" => "dotenv",
        "ini" => "ini",
        _ => "binary",
    };
    let key = who.key_file();
    sb.run_with(
        &["decrypt", "--input-type", ty, &tmp],
        &[
            ("COFFER_AGE_KEY_FILE", key.to_str().unwrap()),
            ("HOME", "/nonexistent"),
        ],
    )
}

/// The first `ENC[` value of a file: what a new data key changes.
fn expected_plan(files: &[(String, String)], lines: &[String], summary: &str) -> String {
    let mut names: Vec<&String> = files.iter().map(|(n, _)| n).collect();
    names.sort();
    let mut out = String::new();
    for n in names {
        out.push_str(n);
        if n.starts_with("covered/") {
            out.push_str(" (covered by the git filter: staged)");
        }
        out.push('\n');
        for l in lines {
            out.push_str(&format!("  {l}\n"));
        }
    }
    out.push_str(summary);
    out
}

#[test]
fn removing_a_member_rotates_every_file_and_stages_covered_ones() {
    let (sb, bob, carol, files) = team_repo();
    // Who can read what: bob opens all 33 files.
    let out = sb.coffer_in("repo", &["access", "--who", &bob.recipient]);
    assert_success(&out, &["access --who"]);
    assert_eq!(stdout(&out).lines().count(), 33, "{}", stdout(&out));
    let out = sb.coffer_in("repo", &["access", "secrets/app0.yaml"]);
    assert_eq!(
        stdout(&out),
        format!(
            "secrets/app0.yaml\n  {} (alice)\n  {} (bob)\n",
            sb.recipient, bob.recipient
        )
    );

    // Bob leaves, carol joins.
    rule(
        &sb,
        &[(&sb.recipient, "alice"), (&carol.recipient, "carol")],
    );
    let before: Vec<String> = files.iter().map(|(n, _)| encrypted(&sb, n)).collect();
    let out = sb.coffer_in("repo", &["access", "secrets/app0.yaml", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    // Bob is named by the committed config still.
    assert_eq!(json[0]["keys"][0]["name"], "alice");
    assert_eq!(json[0]["keys"][1]["key"], bob.recipient.as_str());
    assert_eq!(json[0]["keys"][1]["name"], "bob");
    assert_eq!(json[0]["rule"]["add"][0], carol.recipient.as_str());
    assert_eq!(json[0]["rule"]["remove"][0], bob.recipient.as_str());

    let plan = expected_plan(
        &files,
        &[
            format!("+ {} (carol)", carol.recipient),
            format!("- {} (bob)", bob.recipient),
            "(data key rotated: a key was removed)".into(),
        ],
        "Plan: 33 file(s) to change (33 with a new data key), 0 unchanged, 0 skipped.\n",
    );
    let out = sb.coffer_in("repo", &["updatekeys", "--all", "--dry-run"]);
    assert_success(&out, &["updatekeys --dry-run"]);
    assert_eq!(stdout(&out), plan);
    // No terminal and no -y: refused after the plan, exit 2.
    let out = sb.coffer_in("repo", &["updatekeys", "--all"]);
    assert_error(&out, 2, "updatekeys changes files: confirm with -y");
    for ((n, _), b) in files.iter().zip(&before) {
        assert_eq!(&encrypted(&sb, n), b, "{n} changed without -y");
    }

    let out = sb.coffer_in("repo", &["updatekeys", "--all", "-y"]);
    assert_success(&out, &["updatekeys --all -y"]);
    assert_eq!(stdout(&out), plan);
    assert!(
        stderr(&out).contains("coffer: 0 file(s) re-wrapped, 33 with a new data key, 2 staged"),
        "{}",
        stderr(&out)
    );
    for ((name, plain), old) in files.iter().zip(&before) {
        let now = encrypted(&sb, name);
        assert_ne!(first_enc(&now), first_enc(old), "{name} kept its data key");
        assert_error(&decrypt_as(&sb, &bob, name), 3, "");
        for who in [&sb, &carol] {
            let out = decrypt_as(&sb, who, name);
            assert_success(&out, &["decrypt", name]);
            assert_eq!(stdout(&out), *plain, "{name}");
        }
    }
    // Covered files: the working copy is the same plaintext, the change is staged, and
    // once committed the tree is clean.
    assert_eq!(sb.read_str("repo/covered/c0.yaml"), "api: cov-0\n");
    let status = sb.git("repo", &["status", "--porcelain"]);
    assert!(status.contains("M  covered/c0.yaml"), "{status}");
    assert!(!status.contains(" M covered/"), "{status}");
    sb.git("repo", &["commit", "-qam", "bob leaves"]);
    assert_eq!(sb.git("repo", &["status", "--porcelain"]), "");

    // Again: nothing to do, nothing touched.
    let after: Vec<String> = files.iter().map(|(n, _)| encrypted(&sb, n)).collect();
    let out = sb.coffer_in("repo", &["updatekeys", "--all", "-y"]);
    assert_eq!(
        stdout(&out),
        "Plan: 0 file(s) to change (0 with a new data key), 33 unchanged, 0 skipped.\n"
    );
    for ((n, _), a) in files.iter().zip(&after) {
        assert_eq!(&encrypted(&sb, n), a, "{n} changed on a no-op run");
    }
}

#[test]
fn growth_rewraps_only_skips_unstaged_edits_and_reports_a_failing_file() {
    let (sb, bob, carol, files) = team_repo();
    // A file no key here opens (only dave's), and edits not staged.
    let dave = Sandbox::new();
    sb.write("repo/secrets/dave.yaml", "x: 1\n");
    assert_success(
        &sb.coffer_in(
            "repo",
            &[
                "encrypt",
                "--age",
                &dave.recipient,
                "-i",
                "secrets/dave.yaml",
            ],
        ),
        &["encrypt for dave"],
    );
    sb.git("repo", &["add", "."]);
    sb.git("repo", &["commit", "-qm", "dave"]);
    assert_success(
        &sb.coffer_in(
            "repo",
            &["set", "secrets/app0.yaml", "[\"db\"][\"port\"]", "6543"],
        ),
        &["set"],
    );
    sb.write("repo/covered/c1.yaml", "api: edited\n");

    // Carol joins; nobody leaves.
    rule(
        &sb,
        &[
            (&sb.recipient, "alice"),
            (&bob.recipient, "bob"),
            (&carol.recipient, "carol"),
        ],
    );
    let before: Vec<String> = files.iter().map(|(n, _)| encrypted(&sb, n)).collect();
    let out = sb.coffer_in("repo", &["updatekeys", "--all", "-y"]);
    assert_eq!(out.status.code(), Some(9), "{}", stderr(&out));
    assert!(
        stderr(&out).ends_with(
            "coffer: 1 of 32 change(s) not applied (listed above); the others were. Run the same command again to apply the rest\n"
        ),
        "{}",
        stderr(&out)
    );
    let plan = stdout(&out);
    assert!(
        plan.contains(&format!(
            "secrets/app1.yaml\n  + {} (carol)\n",
            carol.recipient
        )),
        "{plan}"
    );
    assert!(
        plan.contains("skipped covered/c1.yaml: its working copy has unstaged changes"),
        "{plan}"
    );
    assert!(
        plan.contains("skipped secrets/app0.yaml: its working copy has unstaged changes"),
        "{plan}"
    );
    assert!(
        plan.contains(&format!("secrets/dave.yaml\n  + {}", sb.recipient)),
        "{plan}"
    );
    assert!(
        plan.ends_with(
            "Plan: 32 file(s) to change (1 with a new data key), 0 unchanged, 2 skipped.\n"
        ),
        "{plan}"
    );
    assert!(
        stderr(&out).contains(
            "coffer: 31 file(s) re-wrapped, 0 with a new data key, 1 staged\nnot updated: secrets/dave.yaml: no identity could open the data key"
        ),
        "{}",
        stderr(&out)
    );

    for ((name, plain), old) in files.iter().zip(&before) {
        let now = encrypted(&sb, name);
        if name == "secrets/app0.yaml" || name == "covered/c1.yaml" {
            assert_eq!(&now, old, "{name} had unstaged edits");
            continue;
        }
        // Only the metadata changed: every value kept its encryption.
        let body = |t: &str| -> String {
            t.lines()
                .filter(|l| l.contains("ENC[") && !l.contains("sops") && !l.contains("mac"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(
            body(&now),
            body(old),
            "{name}: values changed on a growth-only update"
        );
        assert_ne!(&now, old, "{name} was not re-wrapped");
        let out = decrypt_as(&sb, &carol, name);
        assert_success(&out, &["carol decrypts", name]);
        assert_eq!(stdout(&out), *plain);
    }
}

#[test]
fn rotate_all_gives_every_file_a_new_data_key() {
    let (sb, _bob, _carol, files) = team_repo();
    let before: Vec<String> = files.iter().map(|(n, _)| encrypted(&sb, n)).collect();
    let out = sb.coffer_in("repo", &["rotate", "--all", "--dry-run"]);
    assert_success(&out, &["rotate --dry-run"]);
    let plan = stdout(&out);
    assert!(
        plan.starts_with("blob.bin\n  (data key rotated)\nconfig/c0.json\n"),
        "{plan}"
    );
    assert!(
        plan.contains(
            "\ncovered/c0.yaml (covered by the git filter: staged)\n  (data key rotated)\n"
        ),
        "{plan}"
    );
    assert!(
        plan.ends_with(
            "Plan: 33 file(s) to change (33 with a new data key), 0 unchanged, 0 skipped.\n"
        ),
        "{plan}"
    );
    let out = sb.coffer_in("repo", &["rotate", "--all", "-y"]);
    assert_success(&out, &["rotate --all -y"]);
    for ((name, plain), old) in files.iter().zip(&before) {
        let now = encrypted(&sb, name);
        assert_ne!(first_enc(&now), first_enc(old), "{name}");
        let out = decrypt_as(&sb, &sb, name);
        assert_eq!(stdout(&out), *plain, "{name}");
    }
}

/// `coffer ARGS` in `repo/` on a terminal (`script`), with `input` typed at it.
fn on_terminal(sb: &Sandbox, args: &str, input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new("script")
        .env_clear()
        .env("PATH", path_with_coffer())
        .env("HOME", sb.home())
        .env("SHELL", "/bin/sh")
        .env("TERM", "dumb")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .current_dir(sb.path("repo"))
        .args(["-qec", &format!("coffer {args}"), "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Typed once the prompt is up.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_terminal_is_asked_once_and_no_rotate_keeps_the_data_key() {
    let (sb, bob, _carol, files) = team_repo();
    rule(&sb, &[(&sb.recipient, "alice")]);
    let out = sb.coffer_in("repo", &["access", "secrets/app1.yaml"]);
    assert_eq!(
        stdout(&out),
        format!(
            "secrets/app1.yaml\n  {a} (alice)\n  {b} (bob)\n  differs from its creation rule: - {b}\n",
            a = sb.recipient,
            b = bob.recipient
        )
    );
    let before: Vec<String> = files.iter().map(|(n, _)| encrypted(&sb, n)).collect();

    // Asked once for the whole plan; "n" changes nothing.
    let out = on_terminal(&sb, "updatekeys --all --no-rotate", "n\n");
    assert_success(&out, &["updatekeys, answered n"]);
    let screen = stdout(&out);
    assert_eq!(
        screen.matches("Apply this plan? [y/N]").count(),
        1,
        "{screen}"
    );
    assert!(screen.contains("coffer: nothing changed"), "{screen}");
    for ((n, _), b) in files.iter().zip(&before) {
        assert_eq!(&encrypted(&sb, n), b, "{n} changed after n");
    }

    // "y": applied, with the warning --no-rotate owes; the data keys stay, bob's entry goes.
    let out = on_terminal(&sb, "updatekeys --all --no-rotate", "y\n");
    assert_success(&out, &["updatekeys, answered y"]);
    let screen = stdout(&out);
    assert!(
        screen.contains("coffer: warning: 33 file(s) keep their data key (--no-rotate)"),
        "{screen}"
    );
    for ((name, plain), old) in files.iter().zip(&before) {
        let now = encrypted(&sb, name);
        assert_eq!(first_enc(&now), first_enc(old), "{name} got a new data key");
        assert!(!now.contains(&bob.recipient), "{name} still names bob");
        assert_error(&decrypt_as(&sb, &bob, name), 3, "");
        assert_eq!(stdout(&decrypt_as(&sb, &sb, name)), *plain, "{name}");
    }
}

#[test]
fn a_removal_held_back_by_unstaged_edits_fails_and_bad_paths_are_errors() {
    let (sb, bob, _carol, _files) = team_repo();
    assert_success(
        &sb.coffer_in(
            "repo",
            &["set", "secrets/app3.yaml", "[\"db\"][\"port\"]", "1"],
        ),
        &["set"],
    );
    rule(&sb, &[(&sb.recipient, "alice")]);
    let out = sb.coffer_in("repo", &["updatekeys", "--all", "-y"]);
    // Everything else is done; the one held back makes the revocation incomplete.
    assert_eq!(out.status.code(), Some(9), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("skipped secrets/app3.yaml: its working copy has unstaged changes")
    );
    assert!(
        stderr(&out).ends_with("coffer: 1 of 33 change(s) not applied (listed above); the others were. Run the same command again to apply the rest\n"),
        "{}",
        stderr(&out)
    );
    assert!(encrypted(&sb, "secrets/app3.yaml").contains(&bob.recipient));
    assert!(!encrypted(&sb, "secrets/app4.yaml").contains(&bob.recipient));

    // A path that names nothing is an error, not an empty plan.
    let out = sb.coffer_in("repo", &["updatekeys", "-y", "secrets/nope.yaml"]);
    assert_error(&out, 1, "secrets/nope.yaml");
    // A glob may match nothing.
    let out = sb.coffer_in("repo", &["updatekeys", "-y", "nowhere/*.yaml"]);
    assert_success(&out, &["an empty glob"]);
}

#[test]
fn without_the_filter_set_up_covered_files_are_rekeyed_where_they_are() {
    let (sb, _bob, carol, _files) = team_repo();
    // A clone without `coffer git setup`: covered files are ciphertext in the working tree.
    sb.git(".", &["clone", "-q", "repo", "clone"]);
    assert!(sb.read_str("clone/covered/c0.yaml").contains("ENC["));
    sb.write(
        "clone/.coffer.yaml",
        format!(
            "creation_rules:\n  - age:\n      - {}\n      - {}\n",
            sb.recipient, carol.recipient
        ),
    );
    let out = sb.coffer_in("clone", &["updatekeys", "--all", "-y"]);
    assert_success(&out, &["updatekeys in a clone without the filter"]);
    assert!(
        stdout(&out).contains("\ncovered/c0.yaml\n  + "),
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).contains(", 0 staged"), "{}", stderr(&out));
    assert!(sb
        .read_str("clone/covered/c0.yaml")
        .contains(&carol.recipient));
}
