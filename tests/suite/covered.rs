//! coffer's own commands on files the coffer filter covers. Their working tree holds
//! plaintext; every command reads and edits it as it stands, never writes ciphertext
//! there, and takes the data key from the index (else HEAD) where it needs one.

use std::os::unix::fs::PermissionsExt;

use super::common::*;
use super::git::{blob, repo};
use super::moto::{ok as moto_ok, run as moto_run, Moto};

/// The states a covered file is found in.
#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    /// As committed.
    Staged,
    /// Changed in the working tree, not staged.
    Modified,
    /// Never staged.
    New,
}

const STATES: [State; 3] = [State::Staged, State::Modified, State::New];

/// A covered YAML file and dotenv file in `state` in the repository of `git::repo`,
/// their paths relative to the sandbox, and the database password each holds.
fn arrange(sb: &Sandbox, state: State) -> (String, String, &'static str) {
    repo(sb);
    let (yaml, env) = match state {
        State::New => ("repo/secrets/new.yaml", "repo/secrets/new.env"),
        _ => ("repo/secrets/app.yaml", "repo/secrets/app.env"),
    };
    let env_text = |pw: &str| {
        format!("DB_HOST=db.internal\nDB_PASSWORD={pw}\nGREETING=\"hello world\"\nEMPTY=\n")
    };
    if state != State::New {
        sb.write("repo/secrets/app.env", env_text("S3cr3t!pass"));
        sb.git("repo", &["commit", "-q", "-am", "env"]);
    }
    let plain_yaml = std::fs::read_to_string(testdata("plain/app.yaml")).unwrap();
    let pw = match state {
        State::Modified => "changed-pw",
        _ => "S3cr3t!pass",
    };
    sb.write(yaml, plain_yaml.replace("S3cr3t!pass", pw));
    sb.write(env, env_text(pw));
    (yaml.to_string(), env.to_string(), pw)
}

fn in_repo(path: &str) -> &str {
    path.strip_prefix("repo/").unwrap()
}

/// `git status --porcelain` of the repository.
fn status(sb: &Sandbox) -> String {
    sb.git("repo", &["status", "--porcelain"])
}

#[test]
fn reading_commands_take_the_plaintext_as_it_stands() {
    for state in STATES {
        let sb = Sandbox::new();
        let (yaml, env, pw) = arrange(&sb, state);
        let before = status(&sb);
        let what = format!("{state:?}");

        let out = sb.ok(&["decrypt", &yaml]);
        assert_eq!(out.stdout, sb.read(&yaml), "{what}: decrypt");
        let out = sb.ok(&["decrypt", "--extract", r#"["database"]["password"]"#, &yaml]);
        assert_eq!(stdout(&out), pw, "{what}: --extract");
        let out = sb.ok(&["decrypt", "--output-type", "json", &yaml]);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["database"]["port"], 5432, "{what}: json");

        let out = sb.ok(&[
            "exec",
            &env,
            "--",
            "sh",
            "-c",
            r#"printf %s "$DB_PASSWORD""#,
        ]);
        assert_eq!(stdout(&out), pw, "{what}: exec");
        let out = sb.ok(&["exec-file", &env, "--", "cat", "{}"]);
        assert_eq!(out.stdout, sb.read(&env), "{what}: exec-file");

        sb.write(
            "app.conf.tmpl",
            format!("password={{{{ secret file://{env}#DB_PASSWORD }}}}\n"),
        );
        let out = sb.ok(&["render", "app.conf.tmpl"]);
        assert_eq!(stdout(&out), format!("password={pw}\n"), "{what}: render");

        // Reading wrote nothing.
        assert_eq!(status(&sb), before, "{what}");
        assert!(
            !stderr(&out).contains("warning"),
            "{what}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn set_unset_and_edit_change_the_plaintext_in_place() {
    for state in STATES {
        let sb = Sandbox::new();
        let (yaml, env, _) = arrange(&sb, state);
        let what = format!("{state:?}");
        let yaml_path = sb.path(&yaml);
        std::fs::set_permissions(&yaml_path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let before = sb.read_str(&yaml);

        sb.ok(&["set", &yaml, r#"["database"]["port"]"#, "6543"]);
        assert_eq!(
            sb.read_str(&yaml),
            before.replace("port: 5432", "port: 6543"),
            "{what}: set changes one value, as plaintext"
        );
        assert_eq!(mode(&yaml_path), 0o640, "{what}: mode kept");

        let env_before = sb.read_str(&env);
        sb.ok(&["unset", &env, r#"["GREETING"]"#]);
        assert_eq!(
            sb.read_str(&env),
            env_before.replace("GREETING=\"hello world\"\n", ""),
            "{what}: unset"
        );

        let editor = sb.editor("ed.sh", r#"sed -i 's/user: "app_user"/user: "ops"/' "$1""#);
        let out = sb.run_with(&["edit", &yaml], &[("EDITOR", &editor)]);
        assert_success(&out, &["edit", &what]);
        let after = before
            .replace("port: 5432", "port: 6543")
            .replace("user: \"app_user\"", "user: \"ops\"");
        assert_eq!(sb.read_str(&yaml), after, "{what}: edit");

        // git add encrypts what the commands wrote; the staged blob opens to it, and a
        // file git stored before keeps its data key (a value diff, not a new file).
        sb.git("repo", &["add", "-A"]);
        let staged = blob(&sb, "repo", &format!(":{}", in_repo(&yaml)));
        assert!(staged.contains("ENC[AES256_GCM") && !staged.contains("6543"));
        sb.write("staged.yaml", &staged);
        assert_eq!(stdout(&sb.ok(&["decrypt", "staged.yaml"])), after);
        if state != State::New {
            let head = blob(&sb, "repo", &format!("HEAD:{}", in_repo(&yaml)));
            let enc = |t: &str| {
                t.lines()
                    .skip_while(|l| !l.contains("-----BEGIN AGE ENCRYPTED FILE-----"))
                    .take(3)
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            assert_eq!(enc(&staged), enc(&head), "{what}: the data key is kept");
        }
    }
}

#[test]
fn a_new_file_edited_under_the_filter_is_written_as_plaintext() {
    let sb = Sandbox::new();
    repo(&sb);
    let editor = sb.editor("ed.sh", r#"printf 'token: abc123\n' > "$1""#);
    let out = sb.run_with(&["edit", "repo/secrets/fresh.yaml"], &[("EDITOR", &editor)]);
    assert_success(&out, &["edit a new covered file"]);
    assert_eq!(sb.read_str("repo/secrets/fresh.yaml"), "token: abc123\n");
    sb.git("repo", &["add", "secrets/fresh.yaml"]);
    let staged = blob(&sb, "repo", ":secrets/fresh.yaml");
    assert!(staged.starts_with("token: ENC[AES256_GCM"), "{staged}");
}

#[test]
fn plaintext_the_filter_does_not_cover_is_still_refused() {
    let sb = Sandbox::new();
    repo(&sb);
    let plain = "a: 1\n";
    sb.write("repo/notes.yaml", plain);
    for args in [
        vec!["decrypt", "repo/notes.yaml"],
        vec!["set", "repo/notes.yaml", r#"["a"]"#, "2"],
        vec!["exec", "repo/notes.yaml", "--", "true"],
    ] {
        let out = sb.run(&args);
        assert_error(
            &out,
            6,
            "coffer: repo/notes.yaml: not encrypted (no sops metadata found)",
        );
        assert_eq!(sb.read_str("repo/notes.yaml"), plain);
    }
}

#[test]
fn rotate_rekeys_what_git_stores_and_leaves_the_working_tree() {
    let sb = Sandbox::new();
    let (yaml, _, _) = arrange(&sb, State::Staged);
    let before = sb.read(&yaml);
    let head = blob(&sb, "repo", "HEAD:secrets/app.yaml");
    // Without -i nothing is staged: the working tree is plaintext, there is nothing to print.
    let out = sb.run(&["rotate", &yaml]);
    assert_error(
        &out,
        2,
        "`coffer rotate -i` re-keys what git stores (staged)",
    );
    assert_eq!(blob(&sb, "repo", ":secrets/app.yaml"), head);
    sb.ok(&["rotate", "-i", &yaml]);
    assert_eq!(sb.read(&yaml), before, "the working tree is left as it is");
    let staged = blob(&sb, "repo", ":secrets/app.yaml");
    assert_ne!(staged, head, "a new data key is staged");
    sb.write("staged.yaml", &staged);
    assert_eq!(sb.ok(&["decrypt", "staged.yaml"]).stdout, before);
    assert_eq!(status(&sb), "M  secrets/app.yaml\n");

    // A file git stores no encrypted version of has nothing to re-key.
    let sb2 = Sandbox::new();
    let (new, _, _) = arrange(&sb2, State::New);
    let out = sb2.run(&["rotate", "-i", &new]);
    assert_error(
        &out,
        1,
        "coffer: repo/secrets/new.yaml: the coffer filter covers it and git stores no encrypted version of it yet; `git add` it first",
    );
}

#[test]
fn push_takes_the_plaintext_and_the_staged_data_key() {
    let moto = Moto::start();
    for state in STATES {
        let sb = Sandbox::new();
        let (_, env, pw) = arrange(&sb, state);
        let prefix = format!("{state:?}/");
        let args = [
            "push",
            env.as_str(),
            "--to",
            "secretsmanager",
            "--prefix",
            prefix.as_str(),
            "--each",
        ];
        // An empty value is refused for Secrets Manager, from the plaintext too.
        let out = moto_run(&sb, &moto, &args);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).ends_with(&format!(
                "coffer: {env}: EMPTY: is empty (or null), and a Secrets Manager secret needs a value\n"
            )),
            "{}",
            stderr(&out)
        );
        let plain = sb.read_str(&env).replace("EMPTY=\n", "EMPTY=set\n");
        sb.write(&env, plain);
        let out = moto_ok(&sb, &moto, &[&args[..], &["--dry-run"]].concat());
        assert!(
            stdout(&out).contains(&format!("+ {prefix}DB_PASSWORD\n")),
            "{}",
            stdout(&out)
        );
        let warned = stderr(&out).contains("no encrypted version of it is staged or committed");
        assert_eq!(warned, state == State::New, "{state:?}: {}", stderr(&out));
        moto_ok(&sb, &moto, &args);
        assert_eq!(moto.secret_value(&format!("{prefix}DB_PASSWORD")), pw);
    }
}

/// Attributes alone do not make plaintext safe: without the filter set up, `git add`
/// would store it as it is. There coffer's commands keep the working tree encrypted.
#[test]
fn without_setup_covered_files_stay_ciphertext() {
    let sb = Sandbox::new();
    sb.write("repo/.keep", "");
    sb.git("repo", &["init", "-q", "-b", "main"]);
    super::git::configure(&sb);
    sb.write("repo/secrets/.keep", "");
    let editor = sb.editor("ed.sh", r#"printf 'token: abc123\n' > "$1""#);
    let out = sb.run_with(&["edit", "repo/secrets/fresh.yaml"], &[("EDITOR", &editor)]);
    assert_success(&out, &["edit without setup"]);
    let text = sb.read_str("repo/secrets/fresh.yaml");
    assert!(text.starts_with("token: ENC[AES256_GCM"), "{text}");
    sb.write("repo/secrets/plain.yaml", "a: 1\n");
    let out = sb.run(&["set", "repo/secrets/plain.yaml", r#"["a"]"#, "2"]);
    assert_error(&out, 6, "not encrypted");
}
