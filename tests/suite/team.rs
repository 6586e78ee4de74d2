//! A team's credentials repository: people join and leave by name (`coffer team`), rules
//! files as sops's documentation writes them (anchors and aliases), and the README's team
//! guide run as written, as three people, against real git and the local AWS endpoint.

use std::path::{Path, PathBuf};
use std::process::Output;

use super::common::*;
use super::moto::Moto;

/// The `sh` blocks of the README's "Team guide", each with the person its first line names.
fn guide_blocks() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let start = readme
        .find("\n## Team guide\n")
        .expect("the README has a team guide");
    let rest = &readme[start + 1..];
    let section = &rest[..rest[3..].find("\n## ").map_or(rest.len(), |i| i + 4)];
    let mut blocks = Vec::new();
    let mut parts = section.split("```");
    parts.next();
    while let (Some(block), _) = (parts.next(), parts.next()) {
        let body = block.strip_prefix("sh\n").expect("sh blocks only");
        let (who, script) = body.split_once('\n').unwrap();
        blocks.push((who.trim_start_matches("# ").to_string(), script.to_string()));
    }
    blocks
}

/// One person: a home of their own, and their clone (once there is one).
struct Person {
    sb: Sandbox,
}

impl Person {
    fn new() -> Person {
        Person {
            sb: Sandbox::without_key(),
        }
    }

    fn clone_dir(&self) -> PathBuf {
        self.sb.path("credentials")
    }

    /// Run a block of the guide as this person: in their clone once they have one.
    fn run(&self, script: &str, env: &[(&str, String)]) -> Output {
        let dir = if self.clone_dir().exists() {
            self.clone_dir()
        } else {
            self.sb.dir.path().to_path_buf()
        };
        let mut c = self.sb.as_git_user("sh");
        c.arg("-ec").arg(script).current_dir(dir);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    fn recipient(&self) -> String {
        stdout(&self.sb.ok(&["keygen", "--show"]))
            .trim()
            .to_string()
    }

    fn git(&self, args: &[&str]) -> String {
        self.sb.git("credentials", args)
    }
}

#[test]
fn team_guide() {
    let moto = Moto::start();
    let (alice, bob, carol, ci) = (Person::new(), Person::new(), Person::new(), Person::new());
    let remote = alice.sb.path("remote.git");
    assert_success(
        &alice
            .sb
            .git_in(".", &["init", "-q", "--bare", "-b", "main", "remote.git"]),
        &["git init --bare"],
    );
    // Carol's key exists before she is added; Bob makes his in the guide.
    carol.sb.ok(&["keygen"]);
    let mut env: Vec<(&str, String)> = moto.env();
    env.push(("REMOTE", remote.display().to_string()));
    env.push(("CAROL", carol.recipient()));

    let blocks = guide_blocks();
    let who: Vec<&str> = blocks.iter().map(|(w, _)| w.as_str()).collect();
    assert_eq!(
        who,
        ["alice", "bob", "alice", "bob", "alice", "ci", "alice", "alice"],
        "the guide's blocks changed: change this test with them"
    );
    let mut outputs = Vec::new();
    for (i, (name, script)) in blocks.iter().enumerate() {
        let person = match name.as_str() {
            "alice" => &alice,
            "bob" => &bob,
            "carol" => &carol,
            "ci" => &ci,
            other => panic!("no one is called {other}"),
        };
        let out = person.run(script, &env);
        assert_success(
            &out,
            &[&format!("guide block {} as {name}:\n{script}", i + 1)],
        );
        if i == 1 {
            env.push(("BOB", bob.recipient()));
        }
        outputs.push(out);
        check_after(i, &alice, &bob, &carol, &moto, &outputs);
    }
}

/// What each block of the guide must have done.
fn check_after(
    i: usize,
    alice: &Person,
    bob: &Person,
    carol: &Person,
    moto: &Moto,
    outs: &[Output],
) {
    let plain = "DB_PASSWORD=hunter2\nAPI_TOKEN=tok-1\n";
    match i {
        // Set up: the rules name alice; git holds ciphertext, the working tree plaintext.
        0 => {
            let rules = std::fs::read_to_string(alice.clone_dir().join(".coffer.yaml")).unwrap();
            assert_eq!(
                rules,
                format!(
                    "keys:\n  - &alice {}\ncreation_rules:\n  - path_regex: ^secrets/\n    age: [*alice]\n",
                    alice.recipient()
                )
            );
            let blob = alice.git(&["show", "HEAD:secrets/prod.env"]);
            assert!(blob.starts_with("DB_PASSWORD=ENC[AES256_GCM"), "{blob}");
            assert_eq!(alice.sb.read_str("credentials/secrets/prod.env"), plain);
        }
        // Bob joins: the rules and the re-wrapped file are what is staged.
        2 => {
            let stat = stdout(&outs[2]);
            assert!(
                stat.contains(".coffer.yaml") && stat.contains("secrets/prod.env"),
                "{stat}"
            );
            let rules = std::fs::read_to_string(alice.clone_dir().join(".coffer.yaml")).unwrap();
            assert!(rules.contains("  - &bob age1") && rules.contains("age: [*alice, *bob]"));
        }
        // Bob's clone holds plaintext after setup, and his edit is one line of diff.
        3 => {
            assert!(bob
                .sb
                .read_str("credentials/secrets/prod.env")
                .contains("DB_PASSWORD=s3cret-2"));
            let diff = stdout(&outs[3]);
            assert!(
                diff.contains("-DB_PASSWORD=hunter2\n+DB_PASSWORD=s3cret-2\n"),
                "{diff}"
            );
            assert!(!bob
                .git(&["show", "HEAD:secrets/prod.env"])
                .contains("s3cret-2"));
        }
        // Review: plaintext in the log, and bob's files named by his name.
        4 => {
            let out = stdout(&outs[4]);
            assert!(out.contains("+DB_PASSWORD=s3cret-2"), "{out}");
            assert!(out.ends_with("secrets/prod.env\n"), "{out}");
        }
        6 => {
            assert_eq!(moto.secret_value("prod/app/DB_PASSWORD"), "s3cret-2");
            assert_eq!(moto.secret_value("prod/app/API_TOKEN"), "tok-1");
        }
        // Bob left: what is committed now opens for carol, not for bob.
        7 => {
            let out = stdout(&outs[7]);
            let list = &out[out.find("NAME ").expect("team list")..];
            let names: Vec<&str> = list
                .lines()
                .skip(1)
                .filter_map(|l| l.split_whitespace().next())
                .collect();
            assert_eq!(names, ["alice", "carol"], "{out}");
            let blob = alice.git(&["show", "HEAD:secrets/prod.env"]);
            for (p, opens) in [(bob, false), (carol, true), (alice, true)] {
                p.sb.write("blob.env", &blob);
                let out = p.sb.run(&["decrypt", "blob.env"]);
                assert_eq!(out.status.success(), opens, "{}", stderr(&out));
            }
            assert_eq!(alice.git(&["status", "--porcelain"]), "");
        }
        _ => {}
    }
}

fn team(sb: &Sandbox, dir: &str, args: &[&str]) -> Output {
    sb.coffer_in(dir, &[&["team"], args].concat())
}

/// A repository at `repo/` with the filter set up, the rules `rules`, and one covered
/// file committed.
fn repo_with_rules(sb: &Sandbox, rules: &str) {
    sb.write("repo/.keep", "");
    sb.git("repo", &["init", "-q", "-b", "main"]);
    assert_success(&sb.coffer_in("repo", &["git", "setup"]), &["setup"]);
    sb.write("repo/.coffer.yaml", rules);
    sb.write(
        "repo/.gitattributes",
        "secrets/** filter=coffer diff=coffer merge=coffer\n",
    );
    sb.write("repo/secrets/a.env", "TOKEN=one\n");
    sb.write("repo/dev/b.env", "TOKEN=two\n");
    sb.git("repo", &["add", "."]);
    sb.git("repo", &["commit", "-q", "-m", "init"]);
}

#[test]
fn add_and_remove_edit_the_rules_in_place_and_rekey_only_their_files() {
    let sb = Sandbox::new();
    let other = Sandbox::new();
    let rules = format!(
        "# Who opens what.\nkeys:\n  - &me {} # my laptop\n\ncreation_rules:\n  # production\n  - path_regex: ^secrets/\n    age:\n      - *me\n  - path_regex: ^dev/\n    age: [*me]\n",
        sb.recipient
    );
    repo_with_rules(&sb, &rules);
    // dev/b.env is not covered: encrypt it in place under its rule.
    sb.ok(&[
        "encrypt",
        "-i",
        "repo/dev/b.env",
        "--config",
        "repo/.coffer.yaml",
    ]);
    let dev_before = sb.read_str("repo/dev/b.env");

    let add_ops = |last: &str| {
        let args = [
            "add",
            "ops",
            &other.recipient,
            "--path-regex",
            "^secrets/",
            last,
        ];
        team(&sb, "repo", &args)
    };
    let out = add_ops("--dry-run");
    assert_success(&out, &["team add --dry-run"]);
    assert_eq!(
        stdout(&out),
        format!(
            "{root}/.coffer.yaml: + ops ({r}) in creation rule(s) 1\nsecrets/a.env (covered by the git filter: staged)\n  + {r} (ops)\nPlan: 1 file(s) to change (0 with a new data key), 1 unchanged, 0 skipped.\n",
            root = std::fs::canonicalize(sb.path("repo")).unwrap().display(),
            r = other.recipient
        )
    );
    assert_eq!(
        sb.read_str("repo/.coffer.yaml"),
        rules,
        "a dry run writes nothing"
    );

    let out = add_ops("-y");
    assert_success(&out, &["team add -y"]);
    assert_eq!(
        sb.read_str("repo/.coffer.yaml"),
        rules
            .replace(
                " # my laptop\n",
                &format!(" # my laptop\n  - &ops {}\n", other.recipient)
            )
            .replace("      - *me\n", "      - *me\n      - *ops\n")
    );
    assert_eq!(
        sb.read_str("repo/dev/b.env"),
        dev_before,
        "another rule's file is left"
    );
    assert_eq!(
        sb.git("repo", &["diff", "--cached", "--name-only"]),
        ".coffer.yaml\nsecrets/a.env\n"
    );
    // The new member opens what git stores; access finds them by name.
    let blob = sb.git("repo", &["show", ":secrets/a.env"]);
    other.write("a.env", &blob);
    assert_eq!(stdout(&other.ok(&["decrypt", "a.env"])), "TOKEN=one\n");
    let who = sb.coffer_in("repo", &["access", "--who", "ops"]);
    assert_eq!(stdout(&who), "secrets/a.env\n");
    let prefix = &other.recipient[..20];
    assert_eq!(
        stdout(&sb.coffer_in("repo", &["access", "--who", prefix])),
        "secrets/a.env\n"
    );
    let list = team(&sb, "repo", &["list"]);
    assert_eq!(
        stdout(&list),
        format!(
            "NAME  FILES  KEY\nme        2  {}\nops       1  {}\n",
            sb.recipient, other.recipient
        )
    );
    sb.git("repo", &["commit", "-q", "-m", "ops joins"]);

    // Removing rotates the file they could open; the old key no longer opens it.
    let out = team(&sb, "repo", &["remove", "ops", "-y"]);
    assert_success(&out, &["team remove"]);
    assert!(
        stdout(&out).contains("(data key rotated: a key was removed)"),
        "{}",
        stdout(&out)
    );
    assert_eq!(sb.read_str("repo/.coffer.yaml"), rules);
    let blob = sb.git("repo", &["show", ":secrets/a.env"]);
    other.write("a.env", &blob);
    assert_eq!(other.run(&["decrypt", "a.env"]).status.code(), Some(3));
    assert_eq!(sb.read_str("repo/secrets/a.env"), "TOKEN=one\n");
}

#[test]
fn team_mistakes_are_one_line_each_and_change_nothing() {
    let sb = Sandbox::new();
    let rules = format!(
        "creation_rules:\n  - path_regex: ^secrets/\n    age: {}\n",
        sb.recipient
    );
    repo_with_rules(&sb, &rules);
    let cases: [(&[&str], i32, &str); 6] = [
        (
            &["team", "remove", "nobody"],
            2,
            "coffer: [RULES]: no one is named nobody under keys: in the rules file",
        ),
        (
            &["team", "add", "eve", "age1nope"],
            2,
            "coffer: not a valid age recipient: \"age1nope\"",
        ),
        (
            &["team", "add", "bad name", "[KEY]"],
            2,
            "coffer: [RULES]: \"bad name\" cannot name a key: use letters, digits, - and _",
        ),
        (
            &["team", "add", "eve", "[KEY]", "--path-regex", "^nope/"],
            2,
            "coffer: [RULES]: no creation rule has path_regex \"^nope/\"",
        ),
        (
            &["access", "--who", "nobody"],
            2,
            "coffer: --who nobody: no key of these files or name in the rules file is nobody",
        ),
        (
            &["team", "add", "eve", "[KEY]"],
            2,
            "coffer: team changes files: confirm with -y",
        ),
    ];
    let key = Sandbox::without_key();
    let key = stdout(&key.ok(&["keygen", "-o", "k.txt"]))
        .trim()
        .to_string();
    let shown = std::fs::canonicalize(sb.path("repo/.coffer.yaml")).unwrap();
    for (args, code, want) in cases {
        let args: Vec<String> = args.iter().map(|a| a.replace("[KEY]", &key)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = sb.coffer_in("repo", &args);
        assert_error(
            &out,
            code,
            &want.replace("[RULES]", &shown.display().to_string()),
        );
        assert_eq!(sb.read_str("repo/.coffer.yaml"), rules, "{args:?}");
        assert_eq!(sb.git("repo", &["status", "--porcelain"]), "", "{args:?}");
    }
    // A rules file with no keys: section gets one; remove says when someone is in no rule.
    let out = team(&sb, "repo", &["add", "eve", &key, "-y"]);
    assert_success(&out, &["team add eve"]);
    assert!(sb
        .read_str("repo/.coffer.yaml")
        .starts_with(&format!("keys:\n  - &eve {key}\ncreation_rules:\n")));
    assert!(sb
        .read_str("repo/.coffer.yaml")
        .contains(&format!("    age: [{}, *eve]\n", sb.recipient)));
    let out = team(&sb, "repo", &["add", "eve", &key, "-y"]);
    assert_error(
        &out,
        1,
        &format!("eve is in the rules file already, as {key}"),
    );
}

/// sops's documentation names keys with anchors; both front ends and the real sops read
/// such a file alike.
#[test]
fn a_rules_file_with_anchors_works_in_both_front_ends_and_with_sops() {
    let sb = Sandbox::new();
    let other = Sandbox::new();
    sb.write(
        ".sops.yaml",
        format!(
            "keys:\n  - &me {}\n  - &other {}\nbase: &base\n  encrypted_regex: ^pw$\ncreation_rules:\n  - path_regex: \\.yaml$\n    <<: *base\n    age: [*me, *other]\n",
            sb.recipient, other.recipient
        ),
    );
    sb.write("a.yaml", "pw: secret\nhost: db\n");
    sb.write("b.yaml", "pw: secret\nhost: db\n");
    sb.ok(&["encrypt", "-i", "a.yaml"]);
    let out = sb.as_sops().args(["-e", "-i", "b.yaml"]).output().unwrap();
    assert_success(&out, &["sops -e -i"]);
    for f in ["a.yaml", "b.yaml"] {
        let text = sb.read_str(f);
        assert!(
            text.contains("pw: ENC[") && text.contains("host: db\n"),
            "{f}: {text}"
        );
        assert!(text.contains(&other.recipient), "{f}");
        let out = sb.sops(&["-d", f]);
        assert_success(&out, &["real sops -d", f]);
        assert_eq!(stdout(&out), "pw: secret\nhost: db\n");
    }
    // And the real sops encrypts with the same file as coffer reads it.
    sb.write("c.yaml", "pw: secret\n");
    assert_success(&sb.sops(&["-e", "-i", "c.yaml"]), &["real sops -e"]);
    other.copy(&sb.path("c.yaml"), "c.yaml");
    assert_eq!(stdout(&other.ok(&["decrypt", "c.yaml"])), "pw: secret\n");
}

/// The pre-commit framework runs `coffer git check` from this repository's
/// `.pre-commit-hooks.yaml` and refuses a plaintext secret.
#[test]
fn the_pre_commit_hook_refuses_plaintext_staged() {
    let pre_commit = Path::new(&sops_bin()).with_file_name("pre-commit");
    assert!(
        pre_commit.exists(),
        "pre-commit not found: run the tests with scripts/test"
    );
    let sb = Sandbox::new();
    sb.write("repo/.keep", "");
    sb.git("repo", &["init", "-q", "-b", "main"]);
    sb.write("repo/.gitattributes", "secrets/** filter=coffer\n");
    // Staged before setup: plaintext in the index.
    sb.write("repo/secrets/prod.env", "TOKEN=plain-token\n");
    sb.git("repo", &["add", "."]);
    let run = |dir: &str| {
        sb.as_git_user(&pre_commit)
            .args(["try-repo", repo().to_str().unwrap(), "coffer-check"])
            .env("PRE_COMMIT_HOME", sb.path("pre-commit-cache"))
            .current_dir(sb.path(dir))
            .output()
            .unwrap()
    };
    let out = run("repo");
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("coffer git check") && all.contains("Failed"),
        "{all}"
    );
    assert!(
        all.contains("staged in plaintext: secrets/prod.env"),
        "{all}"
    );
    // The fix it names makes the hook pass.
    assert_success(&sb.coffer_in("repo", &["git", "setup"]), &["setup"]);
    sb.write(
        "repo/.coffer.yaml",
        format!("creation_rules:\n  - age: {}\n", sb.recipient),
    );
    sb.git("repo", &["add", "--renormalize", "--", "secrets/prod.env"]);
    let out = run("repo");
    assert_success(&out, &["pre-commit try-repo after the fix"]);
}
