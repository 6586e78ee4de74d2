//! Many hands on one file: coffer's writers of a file take turns (a lock from the read
//! to the rename), so no writer loses another's edit.

use std::process::Stdio;

use super::common::*;

#[test]
fn twenty_concurrent_sets_keep_all_twenty_values() {
    let sb = Sandbox::new();
    sb.encrypted("a.yaml", "start: 0\n");
    let children: Vec<_> = (0..20)
        .map(|i| {
            sb.cmd()
                .args(["set", "a.yaml", &format!("[\"k{i}\"]"), &format!("v{i}")])
                .started()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert_success(&out, &["concurrent set"]);
    }
    let plain = stdout(&sb.ok(&["decrypt", "a.yaml"]));
    for i in 0..20 {
        assert!(
            plain.contains(&format!("k{i}: v{i}\n")),
            "k{i} lost:\n{plain}"
        );
    }
}

/// `edit a.yaml` whose editor runs `sed` on the plaintext and then waits while
/// `set b` to `value` lands; what the edit came to.
fn edit_while_set(sb: &Sandbox, sed: &str, value: &str) -> std::process::Output {
    let done = sb.path(&format!("set-{value}"));
    let script = format!(
        "sed -i '{sed}' \"$1\"\nwhile [ ! -e {} ]; do sleep 0.05; done",
        done.display()
    );
    let editor = sb.editor(&format!("ed-{value}.sh"), &script);
    let edit = sb
        .cmd()
        .args(["edit", "a.yaml"])
        .env("EDITOR", &editor)
        .started();
    std::thread::sleep(std::time::Duration::from_millis(300));
    sb.ok(&["set", "a.yaml", r#"["b"]"#, value]);
    std::fs::write(&done, "").unwrap();
    edit.wait_with_output().unwrap()
}

#[test]
fn a_set_that_lands_while_the_editor_is_open_is_kept() {
    let sb = Sandbox::new();
    sb.encrypted("a.yaml", "a: 1\nb: 2\n");
    let out = edit_while_set(&sb, "s/^a: 1$/a: 10/", "20");
    assert_success(&out, &["edit"]);
    assert_eq!(stdout(&sb.ok(&["decrypt", "a.yaml"])), "a: 10\nb: 20\n");

    // The same value changed both ways: the edit is refused and rescued, the set kept.
    let out = edit_while_set(&sb, "s/^b: 20$/b: 200/", "21");
    assert_error(
        &out,
        8,
        "it changed while the editor was open, and the edit changes the same values",
    );
    assert!(
        stderr(&out).contains("your edit is saved in"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&sb.ok(&["decrypt", "a.yaml"])), "a: 10\nb: 21\n");
}

#[test]
fn a_writer_waits_for_another_and_gives_up_after_the_lock_timeout() {
    let sb = Sandbox::new();
    sb.encrypted("a.yaml", "a: 1\n");
    // An editor holding the file open does not hold coffer's lock; flock from a shell does.
    let holder = std::process::Command::new("flock")
        .args([sb.path("a.yaml").to_str().unwrap(), "sleep", "3"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let out = sb.run(&["--lock-timeout", "1", "set", "a.yaml", r#"["a"]"#, "2"]);
    // The holder is named by program and pid, never by its arguments.
    assert_error(
        &out,
        1,
        &format!(
            "another coffer process (flock, pid {}) has been writing it for 1s; nothing was written",
            holder.id()
        ),
    );
    let mut holder = holder;
    assert!(holder.wait().unwrap().success());
    let out = sb.ok(&["set", "a.yaml", r#"["a"]"#, "2"]);
    assert_eq!(stderr(&out), "");
    assert_eq!(stdout(&sb.ok(&["decrypt", "a.yaml"])), "a: 2\n");
}

/// updatekeys stages through git's own index.lock: a `git add` landing while it works is
/// never undone by an index read before it.
#[test]
fn updatekeys_never_unstages_a_concurrent_git_add() {
    let sb = Sandbox::new();
    let other = Sandbox::new();
    super::git::repo(&sb);
    // Enough covered files that staging them takes a while.
    for i in 0..150 {
        sb.write(&format!("repo/secrets/s{i}.env"), format!("K{i}=v{i}\n"));
    }
    sb.git("repo", &["add", "secrets"]);
    sb.git("repo", &["commit", "-q", "-m", "many"]);
    for round in 0..3 {
        // Alternate the rule, so each round has every covered file to re-key.
        let keys = if round % 2 == 0 {
            format!("{}, {}", sb.recipient, other.recipient)
        } else {
            sb.recipient.clone()
        };
        sb.write(
            "repo/.coffer.yaml",
            format!("creation_rules:\n  - age: [{keys}]\n"),
        );
        let mut rekey = sb
            .cmd()
            .current_dir(sb.path("repo"))
            .args(["updatekeys", "--all", "-y"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Files added one after another for as long as updatekeys runs; git refuses
        // while the index is locked, and the add is tried again, as a user would.
        let mut added = Vec::new();
        let mut i = 0;
        while rekey.try_wait().unwrap().is_none() {
            let name = format!("notes/r{round}-{i}.txt");
            sb.write(&format!("repo/{name}"), format!("{i}\n"));
            if sb.git_in("repo", &["add", &name]).status.success() {
                added.push(name);
            }
            i += 1;
        }
        let out = rekey.wait_with_output().unwrap();
        assert!(
            matches!(out.status.code(), Some(0) | Some(9)),
            "{}",
            stderr(&out)
        );
        let listed = sb.git("repo", &["ls-files", "--cached", "notes"]);
        for name in &added {
            assert!(
                listed.contains(name.as_str()),
                "round {round}: {name} was unstaged"
            );
        }
        assert!(!added.is_empty());
    }
}

/// A revocation racing a set: either updatekeys fails (exit 9, run it again) or the
/// removed key no longer opens the file, and the set is never lost.
#[test]
fn a_revocation_racing_a_set_lands_whole_or_fails() {
    let sb = Sandbox::new();
    let bob = Sandbox::new();
    for round in 0..8 {
        sb.write(
            ".coffer.yaml",
            format!(
                "creation_rules:\n  - age: [{}, {}]\n",
                sb.recipient, bob.recipient
            ),
        );
        sb.write("a.yaml", "a: 0\n");
        sb.ok(&["encrypt", "-i", "a.yaml"]);
        sb.write(
            ".coffer.yaml",
            format!("creation_rules:\n  - age: [{}]\n", sb.recipient),
        );
        let spawn = |args: &[&str]| sb.cmd().args(args).started();
        let value = format!("v{round}");
        let set = spawn(&["set", "a.yaml", r#"["b"]"#, &value]);
        let rekey = spawn(&["updatekeys", "-y", "a.yaml"]);
        let (set, rekey) = (
            set.wait_with_output().unwrap(),
            rekey.wait_with_output().unwrap(),
        );
        assert_success(&set, &["set", &value]);
        let plain = stdout(&sb.ok(&["decrypt", "a.yaml"]));
        assert!(
            plain.contains(&format!("b: {value}\n")),
            "round {round}: the set was lost"
        );
        bob.copy(&sb.path("a.yaml"), "a.yaml");
        let bob_opens = bob.run(&["decrypt", "a.yaml"]).status.success();
        match rekey.status.code() {
            Some(0) => assert!(!bob_opens, "round {round}: exit 0, yet bob still opens it"),
            Some(9) => {}
            other => panic!("round {round}: updatekeys {other:?}: {}", stderr(&rekey)),
        }
    }
}

/// The same under the name sops: concurrent `sops set`s all land.
#[test]
fn concurrent_sops_sets_keep_every_value() {
    let sb = Sandbox::new();
    sb.encrypted("a.json", "{\"start\": 0}\n");
    let children: Vec<_> = (0..10)
        .map(|i| {
            sb.as_sops()
                .args([
                    "set",
                    "a.json",
                    &format!("[\"k{i}\"]"),
                    &format!("\"v{i}\""),
                ])
                .started()
        })
        .collect();
    for c in children {
        assert_success(&c.wait_with_output().unwrap(), &["sops set"]);
    }
    let plain = stdout(&sb.ok(&["decrypt", "a.json"]));
    for i in 0..10 {
        assert!(
            plain.contains(&format!("\"k{i}\": \"v{i}\"")),
            "k{i} lost:\n{plain}"
        );
    }
}
