//! What a user reads, pinned whole: every help text, and the error, hint and warning
//! lines of each failure, with its exit code (temp paths, recipients, ARNs and times
//! filtered). A changed message shows up as a snapshot diff (`tests/suite/snapshots/`).

use std::process::Output;

use super::common::*;

/// Output with what changes from run to run replaced by names.
fn normalized(sb: &Sandbox, text: &str) -> String {
    let mut t = text.replace(sb.dir.path().to_str().unwrap(), "[TMP]");
    for (re, name) in [
        (r"age1[0-9a-z]{58}", "[RECIPIENT]"),
        (
            r"arn:aws:[a-z0-9-]+:[a-z0-9-]*:[0-9]*:[A-Za-z0-9/_+=.@:-]+",
            "[ARN]",
        ),
        (r"\d{4}-\d{2}-\d{2}T\d{2}:?\d{2}:?\d{2}Z", "[TIME]"),
        (r"\.coffer-[A-Za-z0-9]+\.tmp", ".coffer-[X].tmp"),
        (r"coffer-edit-[A-Za-z0-9]+", "coffer-edit-[X]"),
    ] {
        t = regex_replace(&t, re, name);
    }
    t
}

fn regex_replace(text: &str, pattern: &str, with: &str) -> String {
    regex::Regex::new(pattern)
        .unwrap()
        .replace_all(text, with)
        .into_owned()
}

/// One command and what it printed on stderr, with its exit code.
fn case(sb: &Sandbox, args: &[&str], out: &Output) -> String {
    let shown: Vec<String> = args
        .iter()
        .map(|a| {
            let a: String = normalized(sb, &a.escape_debug().collect::<String>());
            match a.char_indices().nth(60) {
                Some((i, _)) => format!("{}…", &a[..i]),
                None => a,
            }
        })
        .collect();
    format!(
        "$ coffer {}\nexit {}\n{}",
        shown.join(" "),
        out.status.code().map_or("signal".into(), |c| c.to_string()),
        normalized(sb, &stderr(out))
    )
}

#[test]
fn help_texts() {
    let sb = Sandbox::without_key();
    let mut commands = vec![vec![]];
    let mut all = String::new();
    while let Some(path) = commands.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = sb.run(&args);
        assert_success(&out, &args);
        let text = stdout(&out);
        all.push_str(&format!("$ coffer {}\n{text}\n", args.join(" ")));
        // Subcommands are listed under "Commands:", one per line.
        let mut in_commands = false;
        for line in text.lines() {
            if line == "Commands:" {
                in_commands = true;
                continue;
            }
            if in_commands {
                // "  name  what it does"; deeper lines continue a description.
                if line.starts_with("   ") {
                    continue;
                }
                let Some(name) = line
                    .strip_prefix("  ")
                    .and_then(|l| l.split_whitespace().next())
                else {
                    in_commands = false;
                    continue;
                };
                if name != "help" {
                    let mut sub = path.clone();
                    sub.push(name.to_string());
                    commands.push(sub);
                }
            }
        }
    }
    insta::assert_snapshot!("help", all);
}

#[test]
fn errors_hints_and_warnings() {
    let sb = Sandbox::new();
    let stranger = Sandbox::new();
    sb.encrypted_sample("app.yaml");
    stranger.copy(&sb.path("app.yaml"), "app.yaml");
    sb.write("plain.yaml", "password: hunter2\n");
    sb.write("flow.yaml", "{\"password\": \"hunter2\"}\n");
    sb.write("complex.yaml", "? [k]\n: v\n");
    sb.write("big.yaml", "n: 123456789012345678901234567890\n");
    sb.write("reserved.yaml", "sops: mine\n");
    let mac = sb.read_str("app.yaml").replace(
        "public_url_unencrypted: https://example.com",
        "public_url_unencrypted: https://evil.example",
    );
    sb.write("mac.yaml", mac);
    sb.write("bad.json", "{\"a\": 1,}");
    // A recipient in the file's metadata that would retitle the terminal.
    let hostile = sb.read_str("app.yaml").replacen(
        &format!("recipient: {}", sb.recipient),
        "recipient: \"age1evil\\e]0;owned\\a\"",
        1,
    );
    assert!(hostile.contains("age1evil"));
    stranger.write("hostile.yaml", hostile);
    let evil = format!("age1{}\u{1b}]0;owned\u{7}", "q".repeat(58));
    let long_path = "[\"key\"]".repeat(2000);
    let mut all = String::new();
    let mut run = |sb: &Sandbox, args: &[&str]| {
        let out = sb.run(args);
        all.push_str(&case(sb, args, &out));
        all.push('\n');
        out.status.code()
    };
    let mut seen = std::collections::BTreeSet::new();
    for (sandbox, args) in [
        (&sb, vec!["decrypt", "plain.yaml"]),
        (
            &sb,
            vec!["encrypt", "--age", "age1notarecipient", "plain.yaml"],
        ),
        (&sb, vec!["encrypt", "--age", &evil, "plain.yaml"]),
        (&sb, vec!["encrypt", "plain.yaml"]),
        (&sb, vec!["encrypt", "--age", &sb.recipient, "app.yaml"]),
        (
            &sb,
            vec![
                "encrypt",
                "--age",
                &sb.recipient,
                "--encrypted-regex",
                "(unclosed",
                "plain.yaml",
            ],
        ),
        (&sb, vec!["encrypt", "--age", &sb.recipient, "flow.yaml"]),
        (
            &sb,
            vec![
                "--strict-layout",
                "encrypt",
                "--age",
                &sb.recipient,
                "flow.yaml",
            ],
        ),
        (&sb, vec!["encrypt", "--age", &sb.recipient, "complex.yaml"]),
        (&sb, vec!["encrypt", "--age", &sb.recipient, "big.yaml"]),
        (
            &sb,
            vec!["encrypt", "--age", &sb.recipient, "reserved.yaml"],
        ),
        (&sb, vec!["decrypt", "bad.json"]),
        (&sb, vec!["decrypt", "mac.yaml"]),
        (&stranger, vec!["decrypt", "app.yaml"]),
        (&stranger, vec!["decrypt", "hostile.yaml"]),
        (&sb, vec!["decrypt", "--extract", "[\"nope\"]", "app.yaml"]),
        (&sb, vec!["decrypt", "--extract", &long_path, "app.yaml"]),
        (&sb, vec!["decrypt", "--extract", "nope", "app.yaml"]),
        (&sb, vec!["decrypt", "-"]),
        (&sb, vec!["decrypt", "-o", "app.yaml", "app.yaml"]),
        (&sb, vec!["decrypt", "missing.yaml"]),
        (&sb, vec!["push", "app.yaml", "--to", "ssm"]),
        (&sb, vec!["render", "-o", "x", "a.tmpl", "b.tmpl"]),
        (&sb, vec!["exec", "app.yaml", "--", "/nonexistent/command"]),
        (&sb, vec!["no-such-command"]),
    ] {
        seen.insert(run(sandbox, &args));
    }
    // The editor's failure (8): its own case, with a scripted editor.
    let ed = sb.write("ed.sh", "#!/bin/sh\nexit 3\n");
    std::fs::set_permissions(&ed, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = sb.run_with(&["edit", "app.yaml"], &[("EDITOR", ed.to_str().unwrap())]);
    all.push_str(&case(&sb, &["edit", "app.yaml"], &out));
    seen.insert(out.status.code());
    insta::assert_snapshot!("errors", all);
    // Every exit code of the table in docs/commands.md but 9 (AWS, see push.rs) and 130 (signals,
    // see safety.rs) comes from one of these.
    let codes: Vec<i32> = seen.into_iter().flatten().collect();
    for code in [0, 1, 2, 3, 4, 5, 6, 7, 8] {
        assert!(
            code == 0 || codes.contains(&code),
            "exit {code} not produced: {codes:?}"
        );
    }
}

#[test]
fn more_errors_notes_and_warnings() {
    let sb = Sandbox::new();
    sb.encrypted_sample("app.yaml");
    sb.encrypted("prod.env", "DB_PASSWORD=x\nnot-a-name=y\n");
    sb.write(
        "a.tmpl",
        "x={{ secret file://app.yaml#nope }}\ny={{ secret env://MISSING }}\n",
    );
    let mut all = String::new();
    let mut run = |args: &[&str]| {
        let out = sb.run(args);
        all.push_str(&case(&sb, args, &out));
        all.push('\n');
    };
    run(&["keygen"]);
    run(&[
        "set",
        "app.yaml",
        "[\"database\"][\"password\"][\"x\"]",
        "1",
    ]);
    run(&["unset", "app.yaml", "[\"nope\"]"]);
    run(&["updatekeys", "-y", "app.yaml"]);
    run(&["exec", "prod.env", "--", "true"]);
    run(&["render", "a.tmpl"]);
    run(&["filestatus", "app.yaml"]);
    // git: a covered file staged in plaintext, and a hook that is not coffer's.
    sb.git(".", &["init", "-q"]);
    sb.write(".gitattributes", "*.yaml filter=coffer\n");
    sb.write("plain.yaml", "password: hunter2\n");
    sb.git(".", &["add", "plain.yaml"]);
    run(&["git", "check"]);
    run(&["git", "status"]);
    sb.write(".git/hooks/pre-commit", "#!/bin/sh\n");
    run(&["git", "setup", "--hook"]);
    insta::assert_snapshot!("more-errors", all);
}

/// A team's repository: what `coffer team` prints (stdout too), and each mistake with
/// files the filter covers or rules that name people.
#[test]
fn team_and_covered_files() {
    let sb = Sandbox::new();
    let bob = Sandbox::new();
    sb.write("repo/.keep", "");
    sb.git("repo", &["init", "-q", "-b", "main"]);
    assert_success(&sb.coffer_in("repo", &["git", "setup"]), &["setup"]);
    sb.write(
        "repo/.gitattributes",
        "secrets/** filter=coffer diff=coffer merge=coffer\n",
    );
    sb.write(
        "repo/.coffer.yaml",
        "creation_rules:\n  - path_regex: ^secrets/\n",
    );
    sb.write("repo/secrets/app.env", "TOKEN=one\n");
    sb.write("repo/notes.yaml", "a: 1\n");
    let mut all = String::new();
    let mut run = |args: &[&str]| {
        let out = sb.coffer_in("repo", args);
        all.push_str(&case(&sb, args, &out));
        all.push_str(&normalized(&sb, &stdout(&out)));
        all.push('\n');
    };
    run(&["team", "add", "me", &sb.recipient, "-y"]);
    sb.git("repo", &["add", "."]);
    sb.git("repo", &["commit", "-q", "-m", "init"]);
    run(&["team", "add", "bob", &bob.recipient, "--dry-run"]);
    run(&["team", "add", "bob", &bob.recipient, "-y"]);
    run(&["team", "list"]);
    run(&["access", "--who", "bob"]);
    run(&["team", "remove", "bob", "-y"]);
    run(&["team", "remove", "bob"]);
    run(&["team", "add", "bob", "age1nope"]);
    run(&["team", "add", "me", &bob.recipient]);
    run(&["team", "add", "x y", &bob.recipient]);
    run(&[
        "team",
        "add",
        "bob",
        &bob.recipient,
        "--path-regex",
        "^nope/",
    ]);
    run(&["access", "--who", "nobody"]);
    // Files the filter covers, and one it does not.
    run(&["set", "secrets/app.env", "[\"TOKEN\"]", "two"]);
    run(&["decrypt", "secrets/app.env"]);
    sb.write("repo/secrets/new.env", "NEW=1\n");
    run(&["rotate", "-i", "secrets/new.env"]);
    run(&["updatekeys", "-y", "secrets/new.env"]);
    run(&["decrypt", "notes.yaml"]);
    sb.write(
        "repo/secrets/app.env",
        "<<<<<<< ours\nTOKEN=a\n=======\nTOKEN=b\n>>>>>>> theirs\n",
    );
    run(&["decrypt", "secrets/app.env"]);
    // Someone under keys: whom no rule names.
    let rules = sb.read_str("repo/.coffer.yaml");
    sb.write(
        "repo/.coffer.yaml",
        rules.replace("keys:\n", &format!("keys:\n  - &ghost {}\n", bob.recipient)),
    );
    run(&["team", "remove", "ghost", "--dry-run"]);
    insta::assert_snapshot!("team-and-covered", all);
}
