//! coffer as a git filter, driven through the real git binary in temp repos.

use super::common::*;

const SECRET: &str = "S3cr3t!pass";

/// A repo at `repo/` with coffer set up, a creation rule for this sandbox's key, and
/// `secrets/app.yaml` + `secrets/app.env` committed.
pub(super) fn repo(sb: &Sandbox) {
    sb.write("repo/.keep", "");
    sb.git("repo", &["init", "-q", "-b", "main"]);
    let out = sb.coffer_in("repo", &["git", "setup"]);
    assert_success(&out, &["git setup"]);
    configure(sb);
    sb.copy(&testdata("plain/app.yaml"), "repo/secrets/app.yaml");
    sb.copy(&testdata("plain/app.env"), "repo/secrets/app.env");
    sb.git("repo", &["add", "."]);
    sb.git("repo", &["commit", "-q", "-m", "init"]);
}

/// The creation rule for this sandbox's key, and attributes covering `secrets/`.
pub(super) fn configure(sb: &Sandbox) {
    sb.write(
        "repo/.coffer.yaml",
        format!("creation_rules:\n  - age: {}\n", sb.recipient),
    );
    sb.write(
        "repo/.gitattributes",
        "secrets/** filter=coffer diff=coffer merge=coffer\n",
    );
}

pub(super) fn blob(sb: &Sandbox, dir: &str, rev_path: &str) -> String {
    sb.git(dir, &["cat-file", "-p", rev_path])
}

/// Every object git stores (reachable or not), the index and the logs must be free of
/// the plaintext.
fn assert_no_plaintext_in_git(sb: &Sandbox, dir: &str, secret: &str) {
    let out = sb.git_in(
        dir,
        &["cat-file", "--batch-all-objects", "--batch", "--unordered"],
    );
    assert_success(&out, &["git cat-file --batch-all-objects"]);
    assert!(
        !out.stdout
            .windows(secret.len())
            .any(|w| w == secret.as_bytes()),
        "{secret} is in git's object store"
    );
    for entry in walk(&sb.path(&format!("{dir}/.git"))) {
        if entry.extension().is_some_and(|e| e == "pack" || e == "idx")
            || entry.to_string_lossy().contains("/objects/")
        {
            continue;
        }
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(secret),
            "{secret} is in {}",
            entry.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn commits_hold_sops_ciphertext_and_the_tree_stays_clean() {
    let sb = Sandbox::new();
    repo(&sb);
    let yaml = blob(&sb, "repo", "HEAD:secrets/app.yaml");
    assert!(
        yaml.contains("  password: 'ENC[AES256_GCM,data:") && yaml.contains("\nsops:\n"),
        "{yaml}"
    );
    assert!(!yaml.contains(SECRET));
    let env = blob(&sb, "repo", "HEAD:secrets/app.env");
    assert!(env.contains("DB_PASSWORD=ENC[") && !env.contains(SECRET));
    // The working tree keeps the plaintext.
    assert_eq!(
        sb.read("repo/secrets/app.yaml"),
        std::fs::read(testdata("plain/app.yaml")).unwrap()
    );
    assert_eq!(sb.git("repo", &["status", "--porcelain"]), "");
    // Stale stat data makes git re-clean every file: still clean, same blobs.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    for f in ["secrets/app.yaml", "secrets/app.env"] {
        let p = sb.path(&format!("repo/{f}"));
        let content = std::fs::read(&p).unwrap();
        std::fs::write(&p, content).unwrap();
    }
    assert_eq!(sb.git("repo", &["status", "--porcelain"]), "");
    assert_eq!(sb.git("repo", &["diff", "--stat"]), "");
    // sops itself reads the committed blob.
    sb.write("blob.yaml", &yaml);
    let out = sb.sops(&["decrypt", "blob.yaml"]);
    assert_success(&out, &["sops decrypt blob"]);
    assert_no_plaintext_in_git(&sb, "repo", SECRET);
}

#[test]
fn one_changed_value_is_a_three_line_blob_diff_and_a_one_line_textconv_diff() {
    let sb = Sandbox::new();
    repo(&sb);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let text = sb
        .read_str("repo/secrets/app.yaml")
        .replace("port: 5432", "port: 6543");
    sb.write("repo/secrets/app.yaml", text);
    sb.git("repo", &["commit", "-q", "-am", "port"]);
    let (before, after) = (
        blob(&sb, "repo", "HEAD~1:secrets/app.yaml"),
        blob(&sb, "repo", "HEAD:secrets/app.yaml"),
    );
    let changed = changed_lines(&before, &after);
    assert_eq!(changed.len(), 3, "{changed:#?}");
    assert!(
        changed[0].starts_with("  port: ENC[")
            && changed[1].starts_with("  lastmodified: ")
            && changed[2].starts_with("  mac: ENC[")
    );
    let diff = sb.git(
        "repo",
        &["diff", "HEAD~1", "HEAD", "--", "secrets/app.yaml"],
    );
    let lines: Vec<&str> = diff
        .lines()
        .filter(|l| {
            (l.starts_with('-') || l.starts_with('+'))
                && !l.starts_with("---")
                && !l.starts_with("+++")
        })
        .collect();
    assert_eq!(lines, ["-  port: 5432", "+  port: 6543"], "{diff}");
}

/// Files plain enough to be compared with the committed version as it is walked (no
/// block scalar, no flow collection): a changed value is the same three-line diff, the
/// data key kept; the same data laid out anew is encrypted anew, and reads back so.
#[test]
fn a_walked_file_changed_keeps_its_data_key_and_a_new_layout_is_kept() {
    let sb = Sandbox::new();
    repo(&sb);
    sb.write(
        "repo/secrets/plain.yaml",
        "# note\na: secret-a\nb:\n  c: secret-c\n  d:\n  - one\ncert: |\n  -----BEGIN-----\n  MIIB\nports: [80, 443]\n",
    );
    sb.git("repo", &["add", "."]);
    sb.git("repo", &["commit", "-q", "-m", "plain"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let yaml = sb
        .read_str("repo/secrets/plain.yaml")
        .replace("secret-c", "secret-C");
    sb.write("repo/secrets/plain.yaml", &yaml);
    let env = sb
        .read_str("repo/secrets/app.env")
        .replace("DB_HOST=db.internal", "DB_HOST=db2.internal");
    sb.write("repo/secrets/app.env", &env);
    sb.git("repo", &["commit", "-q", "-am", "values"]);
    for (path, value, stamp, mac) in [
        (
            "secrets/plain.yaml",
            "  c: ENC[",
            "  lastmodified: ",
            "  mac: ENC[",
        ),
        (
            "secrets/app.env",
            "DB_HOST=ENC[",
            "sops_lastmodified=",
            "sops_mac=ENC[",
        ),
    ] {
        let (before, after) = (
            blob(&sb, "repo", &format!("HEAD~1:{path}")),
            blob(&sb, "repo", &format!("HEAD:{path}")),
        );
        let changed = changed_lines(&before, &after);
        assert_eq!(changed.len(), 3, "{path}: {changed:#?}");
        assert!(
            changed[0].starts_with(value)
                && changed[1].starts_with(stamp)
                && changed[2].starts_with(mac),
            "{path}: {changed:#?}"
        );
    }
    assert_eq!(sb.git("repo", &["status", "--porcelain"]), "");
    // A line of the block scalar: its ciphertext under the block's header; an item of
    // the flow collection: its line, the others' ciphertexts kept.
    let path = "secrets/plain.yaml";
    for (from, to, line) in [("MIIB", "MIIC", "  ENC["), ("443]", "8443]", "ports: [")] {
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let before = blob(&sb, "repo", &format!("HEAD:{path}"));
        let yaml = sb.read_str("repo/secrets/plain.yaml").replace(from, to);
        sb.write("repo/secrets/plain.yaml", &yaml);
        sb.git("repo", &["commit", "-q", "-am", to]);
        let after = blob(&sb, "repo", &format!("HEAD:{path}"));
        let changed = changed_lines(&before, &after);
        assert_eq!(changed.len(), 3, "{changed:#?}");
        assert!(changed[0].starts_with(line), "{changed:#?}");
        let first_item = |text: &str| {
            let at = text.find("ports: [").expect("ports") + 8;
            text[at..at + 60].to_string()
        };
        assert_eq!(first_item(&before), first_item(&after));
        assert_eq!(sb.git("repo", &["status", "--porcelain"]), "");
    }
    let yaml = sb.read_str("repo/secrets/plain.yaml");
    // The same data, another layout: a new version that decrypts to it byte for byte.
    let relaid = yaml.replace("b:\n", "\nb:\n");
    sb.write("repo/secrets/plain.yaml", &relaid);
    sb.git("repo", &["commit", "-q", "-am", "layout"]);
    sb.write("blob.yaml", blob(&sb, "repo", "HEAD:secrets/plain.yaml"));
    let out = sb.ok(&["decrypt", "blob.yaml"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), relaid);
    assert_eq!(sb.git("repo", &["status", "--porcelain"]), "");
}

/// A file of over 1 MiB is compared with the committed version through a file of the
/// filter's own, and its new version written through one: loose or packed, an
/// unchanged file is the committed blob and a changed value the same three-line diff.
#[test]
fn a_large_file_is_compared_and_encrypted_through_a_file_loose_or_packed() {
    let sb = Sandbox::new();
    repo(&sb);
    let text: String = (0..56_000)
        .map(|i| format!("key{i:05}: value{i:05}\n"))
        .collect();
    assert!(text.len() > 1 << 20);
    sb.write("repo/secrets/big.yaml", &text);
    sb.git("repo", &["add", "."]);
    sb.git("repo", &["commit", "-q", "-m", "big"]);
    let seen = sb.path("repo/.git/coffer/seen");
    let mut text = text;
    for (step, packed) in [("loose", false), ("packed", true)] {
        if packed {
            sb.git("repo", &["gc", "-q"]);
        }
        // Unchanged, with no record of what was seen: compared, and the blob given back.
        let _ = std::fs::remove_file(&seen);
        sb.write("repo/secrets/big.yaml", &text);
        assert_eq!(sb.git("repo", &["status", "--porcelain"]), "", "{step}");
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let _ = std::fs::remove_file(&seen);
        let n = if packed { "40000" } else { "30000" };
        text = text.replace(&format!("value{n}\n"), &format!("changed{n}\n"));
        sb.write("repo/secrets/big.yaml", &text);
        sb.git("repo", &["commit", "-q", "-am", step]);
        let (before, after) = (
            blob(&sb, "repo", "HEAD~1:secrets/big.yaml"),
            blob(&sb, "repo", "HEAD:secrets/big.yaml"),
        );
        let changed = changed_lines(&before, &after);
        assert_eq!(changed.len(), 3, "{step}: {changed:#?}");
        assert!(
            changed[0].starts_with(&format!("key{n}: ENC["))
                && changed[1].starts_with("  lastmodified: ")
                && changed[2].starts_with("  mac: ENC["),
            "{step}: {changed:#?}"
        );
        sb.write("blob.yaml", &after);
        let out = sb.ok(&["decrypt", "blob.yaml"]);
        assert!(
            out.stdout == text.as_bytes(),
            "{step}: decrypts to the file"
        );
        assert_eq!(sb.git("repo", &["status", "--porcelain"]), "", "{step}");
    }
}

#[test]
fn a_clone_with_the_key_checks_out_plaintext() {
    let sb = Sandbox::new();
    repo(&sb);
    sb.git("", &["clone", "-q", "--no-checkout", "repo", "clone"]);
    assert_success(&sb.coffer_in("clone", &["git", "setup"]), &["setup"]);
    let out = sb.git_in("clone", &["checkout", "-q", "main"]);
    assert_success(&out, &["checkout"]);
    assert_eq!(stderr(&out), "");
    assert_eq!(
        sb.read("clone/secrets/app.yaml"),
        std::fs::read(testdata("plain/app.yaml")).unwrap()
    );
    assert_eq!(
        sb.read("clone/secrets/app.env"),
        std::fs::read(testdata("plain/app.env")).unwrap()
    );
    assert_eq!(sb.git("clone", &["status", "--porcelain"]), "");
}

#[test]
fn a_clone_without_the_key_keeps_ciphertext_with_one_warning_then_unlocks() {
    let owner = Sandbox::new();
    repo(&owner);
    // Another user on the same machine, with no identity.
    let other = Sandbox::without_key();
    let origin = owner.path("repo");
    other.git(
        "",
        &[
            "clone",
            "-q",
            "--no-checkout",
            origin.to_str().unwrap(),
            "clone",
        ],
    );
    assert_success(&other.coffer_in("clone", &["git", "setup"]), &["setup"]);
    let out = other.git_in("clone", &["checkout", "-q", "main"]);
    assert_success(&out, &["checkout without key"]);
    let err = stderr(&out);
    assert_eq!(
        err.lines().filter(|l| l.contains("warning")).count(),
        1,
        "{err}"
    );
    assert!(
        err.contains("no key opens 2 file(s)")
            && err.contains("secrets/app.yaml")
            && err.contains("coffer git unlock"),
        "{err}"
    );
    assert!(other
        .read_str("clone/secrets/app.yaml")
        .contains("ENC[AES256_GCM"));
    assert_eq!(other.git("clone", &["status", "--porcelain"]), "");

    // The key arrives: unlock puts plaintext in place.
    let key = owner.key_file();
    let mut cmd = other.cmd();
    cmd.current_dir(other.path("clone"))
        .env("COFFER_AGE_KEY_FILE", &key)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args(["git", "unlock"]);
    let out = cmd.output().unwrap();
    assert_success(&out, &["unlock"]);
    assert_eq!(
        other.read("clone/secrets/app.yaml"),
        std::fs::read(testdata("plain/app.yaml")).unwrap()
    );
    let status = other.git_env(
        "clone",
        &["status", "--porcelain"],
        &[("COFFER_AGE_KEY_FILE", key.to_str().unwrap())],
    );
    assert_eq!(stdout(&status), "");
}

#[test]
fn lock_puts_ciphertext_back_and_leaves_changed_files() {
    let sb = Sandbox::new();
    repo(&sb);
    let text = sb
        .read_str("repo/secrets/app.env")
        .replace("DB_HOST=db.internal", "DB_HOST=changed");
    sb.write("repo/secrets/app.env", &text);
    let out = sb.coffer_in("repo", &["git", "lock"]);
    assert_success(&out, &["lock"]);
    assert!(
        stderr(&out).contains("secrets/app.env: has changes"),
        "{}",
        stderr(&out)
    );
    assert!(sb
        .read_str("repo/secrets/app.yaml")
        .contains("ENC[AES256_GCM"));
    assert_eq!(sb.read_str("repo/secrets/app.env"), text);
    assert_eq!(
        sb.git("repo", &["status", "--porcelain"]),
        " M secrets/app.env\n"
    );
}

fn branch_edit(sb: &Sandbox, branch: &str, from: &str, to: &str) {
    sb.git("repo", &["checkout", "-q", "-b", branch, "main"]);
    let text = sb.read_str("repo/secrets/app.yaml");
    assert!(text.contains(from), "{from}");
    sb.write("repo/secrets/app.yaml", text.replace(from, to));
    sb.git("repo", &["commit", "-q", "-am", branch]);
}

#[test]
fn branches_changing_different_values_merge_cleanly() {
    let sb = Sandbox::new();
    repo(&sb);
    branch_edit(&sb, "a", "port: 5432", "port: 6543");
    branch_edit(&sb, "b", "rollout: 25", "rollout: 75");
    sb.git("repo", &["checkout", "-q", "a"]);
    let out = sb.git_in("repo", &["merge", "-q", "--no-edit", "b"]);
    assert_success(&out, &["merge"]);
    let text = sb.read_str("repo/secrets/app.yaml");
    assert!(
        text.contains("port: 6543") && text.contains("rollout: 75"),
        "{text}"
    );
    let merged = blob(&sb, "repo", "HEAD:secrets/app.yaml");
    assert!(
        merged.contains("ENC[") && !merged.contains("6543"),
        "{merged}"
    );
    assert_eq!(sb.git("repo", &["status", "--porcelain"]), "");
    assert_no_plaintext_in_git(&sb, "repo", SECRET);
}

#[test]
fn the_same_value_changed_on_both_sides_conflicts_in_the_working_tree_only() {
    let sb = Sandbox::new();
    repo(&sb);
    branch_edit(
        &sb,
        "a",
        "password: 'S3cr3t!pass'",
        "password: 'AAAA-ours-secret'",
    );
    branch_edit(
        &sb,
        "b",
        "password: 'S3cr3t!pass'",
        "password: 'BBBB-theirs-secret'",
    );
    sb.git("repo", &["checkout", "-q", "a"]);
    let out = sb.git_in("repo", &["merge", "--no-edit", "b"]);
    assert!(!out.status.success(), "the merge must conflict");
    let text = sb.read_str("repo/secrets/app.yaml");
    assert!(
        text.contains("<<<<<<< ours")
            && text.contains("AAAA-ours-secret")
            && text.contains("BBBB-theirs-secret"),
        "{text}"
    );
    assert_no_plaintext_in_git(&sb, "repo", "AAAA-ours-secret");
    assert_no_plaintext_in_git(&sb, "repo", "BBBB-theirs-secret");
    // setup keeps rerere, which would store the conflicted plaintext, off.
    assert_eq!(sb.git("repo", &["config", "rerere.enabled"]), "false\n");
    assert!(!sb.path("repo/.git/rr-cache").exists());
    // Committing the markers is refused, and the message names them.
    let add = sb.git_in("repo", &["add", "secrets/app.yaml"]);
    assert!(!add.status.success());
    let line = 1 + text.lines().position(|l| l.starts_with("<<<<<<<")).unwrap();
    assert!(
        stderr(&add).contains(&format!(
            "coffer: secrets/app.yaml: unresolved conflict markers at line {line}; finish the merge first"
        )),
        "{}",
        stderr(&add)
    );
    // Resolve, then commit.
    let resolved = std::fs::read_to_string(testdata("plain/app.yaml"))
        .unwrap()
        .replace("S3cr3t!pass", "CCCC-resolved");
    sb.write("repo/secrets/app.yaml", resolved);
    sb.git("repo", &["add", "secrets/app.yaml"]);
    sb.git("repo", &["commit", "-q", "--no-edit"]);
    assert_no_plaintext_in_git(&sb, "repo", "CCCC-resolved");
}

#[test]
fn stash_rebase_and_cherry_pick_work_on_covered_files() {
    let sb = Sandbox::new();
    repo(&sb);
    // stash
    let original = sb.read_str("repo/secrets/app.env");
    sb.write(
        "repo/secrets/app.env",
        original.replace("DB_HOST=db.internal", "DB_HOST=stashed"),
    );
    sb.git("repo", &["stash", "-q"]);
    assert_eq!(sb.read_str("repo/secrets/app.env"), original);
    sb.git("repo", &["stash", "pop", "-q"]);
    assert!(sb
        .read_str("repo/secrets/app.env")
        .contains("DB_HOST=stashed"));
    sb.git("repo", &["checkout", "-q", "--", "secrets/app.env"]);
    // rebase
    branch_edit(&sb, "feature", "port: 5432", "port: 7000");
    sb.git("repo", &["checkout", "-q", "main"]);
    let env = sb
        .read_str("repo/secrets/app.env")
        .replace("GREETING=\"hello world\"", "GREETING=\"hi\"");
    sb.write("repo/secrets/app.env", env);
    sb.git("repo", &["commit", "-q", "-am", "greeting"]);
    sb.git("repo", &["checkout", "-q", "feature"]);
    sb.git("repo", &["rebase", "-q", "main"]);
    assert!(sb.read_str("repo/secrets/app.yaml").contains("port: 7000"));
    assert!(sb
        .read_str("repo/secrets/app.env")
        .contains("GREETING=\"hi\""));
    // cherry-pick
    sb.git("repo", &["checkout", "-q", "-b", "picked", "main"]);
    sb.git("repo", &["cherry-pick", "feature"]);
    assert!(sb.read_str("repo/secrets/app.yaml").contains("port: 7000"));
    assert_eq!(sb.git("repo", &["status", "--porcelain"]), "");
    assert_no_plaintext_in_git(&sb, "repo", SECRET);
}

#[test]
fn plaintext_committed_before_setup_is_reported_and_blocked() {
    let sb = Sandbox::new();
    sb.write("repo/secrets/old.env", "TOKEN=plain-token-123\n");
    sb.git("repo", &["init", "-q", "-b", "main"]);
    sb.git("repo", &["add", "."]);
    sb.git("repo", &["commit", "-q", "-m", "before coffer"]);
    // Now coffer is set up with a hook, and the attributes cover the file.
    let out = sb.coffer_in("repo", &["git", "setup", "--hook"]);
    assert_success(&out, &["setup --hook"]);
    configure(&sb);
    // Listing a plaintext blob fails, with the fix.
    let status = sb.coffer_in("repo", &["git", "status"]);
    assert_eq!(
        stdout(&status),
        "staged     committed  path\nPLAINTEXT  PLAINTEXT  secrets/old.env\n"
    );
    assert_error(
        &status,
        1,
        "hint: secrets/old.env: stage it encrypted with: git add --renormalize -- secrets/old.env",
    );
    let check = sb.coffer_in("repo", &["git", "check"]);
    assert_error(
        &check,
        1,
        "1 file(s) covered by filter=coffer are staged in plaintext: secrets/old.env",
    );
    // The hook stops the commit.
    sb.git("repo", &["add", ".gitattributes", ".coffer.yaml"]);
    let commit = sb.git_in("repo", &["commit", "-q", "-m", "attrs"]);
    assert!(!commit.status.success(), "the pre-commit hook must refuse");
    // The fix the message gives works.
    sb.git("repo", &["add", "--renormalize", "--", "secrets/old.env"]);
    assert_success(
        &sb.coffer_in("repo", &["git", "check"]),
        &["check after fix"],
    );
    sb.git("repo", &["commit", "-q", "-m", "encrypt"]);
    assert!(blob(&sb, "repo", "HEAD:secrets/old.env").contains("TOKEN=ENC["));
    let status = stdout(&sb.coffer_in("repo", &["git", "status"]));
    assert!(
        status.contains("encrypted  encrypted  secrets/old.env"),
        "{status}"
    );
}

/// In a clone without setup, `git add` stores plaintext: the fix starts with setup, and
/// following it never leaves the file out of the index.
#[test]
fn the_fix_for_plaintext_staged_without_setup_sets_the_filter_up_first() {
    let sb = Sandbox::new();
    sb.write("repo/.keep", "");
    sb.git("repo", &["init", "-q", "-b", "main"]);
    configure(&sb);
    sb.write("repo/secrets/new.env", "TOKEN=plain-token-123\n");
    sb.git("repo", &["add", "."]);
    let check = sb.coffer_in("repo", &["git", "check"]);
    assert_error(
        &check,
        1,
        "hint: secrets/new.env: stage it encrypted with: coffer git setup && git add --renormalize -- secrets/new.env",
    );
    assert_success(&sb.coffer_in("repo", &["git", "setup"]), &["setup"]);
    sb.git("repo", &["add", "--renormalize", "--", "secrets/new.env"]);
    assert_success(
        &sb.coffer_in("repo", &["git", "check"]),
        &["check after fix"],
    );
    assert!(blob(&sb, "repo", ":secrets/new.env").starts_with("TOKEN=ENC["));
    assert_eq!(
        sb.read_str("repo/secrets/new.env"),
        "TOKEN=plain-token-123\n"
    );
}

#[test]
fn a_file_that_fails_to_clean_fails_alone() {
    let sb = Sandbox::new();
    repo(&sb);
    sb.write("repo/secrets/bad.yaml", "a: [unclosed\n");
    sb.write("repo/secrets/good.yaml", "token: fine\n");
    let out = sb.git_in("repo", &["add", "secrets/bad.yaml"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("secrets/bad.yaml: line 2"),
        "{}",
        stderr(&out)
    );
    sb.git("repo", &["add", "secrets/good.yaml"]);
    assert!(blob(&sb, "repo", ":secrets/good.yaml").starts_with("token: ENC["));
    // Nothing unencrypted was staged for the failed file.
    assert!(
        sb.git_in("repo", &["cat-file", "-e", ":secrets/bad.yaml"])
            .status
            .code()
            != Some(0)
    );
}

#[test]
fn the_single_shot_filter_gives_the_same_results() {
    let sb = Sandbox::new();
    repo(&sb);
    sb.git("", &["clone", "-q", "--no-checkout", "repo", "single"]);
    assert_success(&sb.coffer_in("single", &["git", "setup"]), &["setup"]);
    sb.git("single", &["config", "--unset", "filter.coffer.process"]);
    sb.git("single", &["checkout", "-q", "main"]);
    assert_eq!(
        sb.read("single/secrets/app.yaml"),
        std::fs::read(testdata("plain/app.yaml")).unwrap()
    );
    assert_eq!(sb.git("single", &["status", "--porcelain"]), "");
    let text = sb
        .read_str("single/secrets/app.env")
        .replace("DB_HOST=db.internal", "DB_HOST=single");
    sb.write("single/secrets/app.env", text);
    sb.git("single", &["commit", "-q", "-am", "single"]);
    let b = blob(&sb, "single", "HEAD:secrets/app.env");
    assert!(b.contains("DB_HOST=ENC[") && !b.contains("single"));
}

#[test]
fn already_encrypted_files_pass_through_clean() {
    let sb = Sandbox::new();
    repo(&sb);
    sb.write("repo/secrets/pre.json", "{\"k\": \"v\"}\n");
    assert_success(
        &sb.coffer_in(
            "repo",
            &["encrypt", "--age", &sb.recipient, "-i", "secrets/pre.json"],
        ),
        &["encrypt"],
    );
    let enc = sb.read_str("repo/secrets/pre.json");
    sb.git("repo", &["add", "secrets/pre.json"]);
    assert_eq!(
        blob(&sb, "repo", ":secrets/pre.json"),
        enc,
        "no double encryption"
    );
}

#[test]
fn a_malformed_kms_arn_in_the_environment_fails_clean_instead_of_being_ignored() {
    let sb = Sandbox::new();
    repo(&sb);
    sb.write("repo/secrets/new.env", "TOKEN=abc\n");
    let out = sb.git_env(
        "repo",
        &["add", "secrets/new.env"],
        &[("COFFER_KMS_ARN", "alias/not-an-arn")],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is not a KMS key or alias ARN"),
        "{}",
        stderr(&out)
    );
    assert!(
        sb.git_in("repo", &["cat-file", "-e", ":secrets/new.env"])
            .status
            .code()
            != Some(0)
    );
}

/// git runs smudge filters when it writes an archive: an archive leaves the repository, so
/// it holds ciphertext unless the repository opts in.
#[test]
fn git_archive_exports_ciphertext_unless_the_repository_opts_in() {
    let sb = Sandbox::new();
    repo(&sb);
    let has =
        |bytes: &[u8], needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    // The working tree still gets plaintext.
    assert!(sb.read_str("repo/secrets/app.yaml").contains(SECRET));
    // Stored zip entries (-0), so the bytes can be searched.
    for args in [
        &["archive", "--format=tar", "HEAD"][..],
        &["archive", "--format=zip", "-0", "HEAD"][..],
    ] {
        let out = sb.git_in("repo", args);
        assert_success(&out, args);
        assert!(
            !has(&out.stdout, SECRET),
            "{args:?}: plaintext in the archive"
        );
        assert!(
            has(&out.stdout, "ENC[AES256_GCM,data:"),
            "{args:?}: no ciphertext"
        );
        assert!(
            stderr(&out)
                .contains("coffer: git archive: 2 encrypted file(s) kept encrypted in the archive"),
            "{}",
            stderr(&out)
        );
    }
    // The single-shot filter, as libgit2-based tools run it, does the same.
    sb.git("repo", &["config", "--unset", "filter.coffer.process"]);
    let out = sb.git_in("repo", &["archive", "--format=tar", "HEAD"]);
    assert_success(&out, &["archive with the single-shot filter"]);
    assert!(!has(&out.stdout, SECRET));

    // Opted in: the archive is for a deploy that wants plaintext.
    sb.git("repo", &["config", "coffer.archivePlaintext", "true"]);
    let out = sb.git_in("repo", &["archive", "--format=tar", "HEAD"]);
    assert_success(&out, &["archive, opted in"]);
    assert!(has(&out.stdout, SECRET));
}

/// `git add -p` can stage the hunk of a value without the hunk of the MAC; `git check`
/// (the pre-commit hook) names such a blob and the fix, and the fix works.
#[test]
fn a_partly_staged_file_is_reported_and_staging_it_whole_repairs_it() {
    let sb = Sandbox::new();
    repo(&sb);
    let old = sb.git("repo", &["show", ":secrets/app.yaml"]);
    let text = sb
        .read_str("repo/secrets/app.yaml")
        .replace(SECRET, "n3w-pass");
    sb.write("repo/secrets/app.yaml", &text);
    sb.git("repo", &["add", "secrets/app.yaml"]);
    let new = sb.git("repo", &["show", ":secrets/app.yaml"]);
    // The new values with the old MAC: what staging half the hunks gives.
    let mac = |t: &str| {
        t.lines()
            .find(|l| l.trim_start().starts_with("mac:"))
            .unwrap()
            .to_string()
    };
    assert_ne!(mac(&old), mac(&new));
    sb.write("partial.yaml", new.replace(&mac(&new), &mac(&old)));
    let oid = sb
        .git(
            "repo",
            &[
                "hash-object",
                "-w",
                "--no-filters",
                sb.path("partial.yaml").to_str().unwrap(),
            ],
        )
        .trim()
        .to_string();
    sb.git(
        "repo",
        &[
            "update-index",
            "--cacheinfo",
            &format!("100644,{oid},secrets/app.yaml"),
        ],
    );
    let out = sb.coffer_in("repo", &["git", "check"]);
    assert_error(
        &out,
        4,
        "coffer: staged version does not open: secrets/app.yaml (MAC mismatch)",
    );
    assert!(
        stderr(&out).contains(
            "hint: secrets/app.yaml: stage the whole file with: git add -- secrets/app.yaml"
        ),
        "{}",
        stderr(&out)
    );
    // Staging the whole file repairs it.
    sb.git("repo", &["add", "secrets/app.yaml"]);
    assert_success(
        &sb.coffer_in("repo", &["git", "check"]),
        &["git check after git add"],
    );
    assert!(sb
        .git("repo", &["show", ":secrets/app.yaml"])
        .contains("ENC["));
    sb.git("repo", &["commit", "-qm", "new password"]);
    std::fs::remove_file(sb.path("repo/secrets/app.yaml")).unwrap();
    sb.git("repo", &["checkout", "--", "secrets/app.yaml"]);
    assert_eq!(sb.read_str("repo/secrets/app.yaml"), text);
}

/// Merge `theirs` into `ours` (both from `base`) for covered file `name` in a fresh
/// repository; the merge's output and the working-tree text after it.
fn merge_three(
    name: &str,
    base: &str,
    ours: &str,
    theirs: &str,
) -> (Sandbox, std::process::Output, String) {
    let sb = Sandbox::new();
    repo(&sb);
    let file = format!("repo/secrets/{name}");
    sb.write(&file, base);
    sb.git("repo", &["add", "."]);
    sb.git("repo", &["commit", "-qm", "base"]);
    for (branch, text) in [("theirs", theirs), ("ours", ours)] {
        sb.git("repo", &["checkout", "-q", "-b", branch, "main"]);
        sb.write(&file, text);
        sb.git("repo", &["commit", "-qam", branch]);
    }
    let out = sb.git_in("repo", &["merge", "--no-edit", "theirs"]);
    let text = sb.read_str(&file);
    (sb, out, text)
}

#[test]
fn merges_go_by_key_path_so_adjacent_changes_merge() {
    let base = "# database\ndb:\n  user: app\n  password: old-pw\n  port: 5432\nhosts: [a, b]\nflags:\n  - x\n  - y\n";
    // Ours: adjacent keys and a list item; theirs: the key between them, a new key, the
    // other list item, and a key removed.
    let ours = "# database\ndb:\n  user: app2\n  password: old-pw\n  port: 6543\nhosts: [a, b]\nflags:\n  - x1\n  - y\n";
    let theirs = "# database\ndb:\n  user: app\n  password: new-pw\n  port: 5432\n  tls: true\nflags:\n  - x\n  - y1\n";
    let (sb, out, text) = merge_three("db.yaml", base, ours, theirs);
    assert_success(&out, &["merge by key path"]);
    assert_eq!(
        text,
        "# database\ndb:\n  user: app2\n  password: new-pw\n  port: 6543\n  tls: true\nflags:\n  - x1\n  - y1\n"
    );
    assert_eq!(sb.git("repo", &["status", "--porcelain"]), "");
    assert_no_plaintext_in_git(&sb, "repo", "new-pw");
}

#[test]
fn a_value_changed_on_both_sides_conflicts_alone() {
    let base = "a: 1\npassword: old\nz: 1\n";
    let ours = "a: 2\npassword: ours-pw\nz: 1\n";
    let theirs = "a: 1\npassword: theirs-pw\nz: 2\n";
    let (sb, out, text) = merge_three("c.yaml", base, ours, theirs);
    assert!(!out.status.success(), "the merge must conflict");
    assert_eq!(
        text,
        "a: 2\n<<<<<<< ours\npassword: ours-pw\n=======\npassword: theirs-pw\n>>>>>>> theirs\nz: 2\n"
    );
    assert_no_plaintext_in_git(&sb, "repo", "ours-pw");
    assert_no_plaintext_in_git(&sb, "repo", "theirs-pw");
}

#[test]
fn dotenv_and_json_files_merge_by_key_too() {
    let (sb, out, text) = merge_three(
        "app.env",
        "A=1\nB=2\nC=3\n",
        "A=10\nB=2\nC=3\n",
        "A=1\nB=20\nC=3\nD=4\n",
    );
    assert_success(&out, &["dotenv merge"]);
    assert_eq!(text, "A=10\nB=20\nC=3\nD=4\n");
    drop(sb);
    let (_sb, out, text) = merge_three(
        "app.json",
        "{\n  \"a\": 1,\n  \"b\": {\"c\": \"x\", \"d\": [1, 2]}\n}\n",
        "{\n  \"a\": 2,\n  \"b\": {\"c\": \"x\", \"d\": [1, 2]}\n}\n",
        "{\n  \"a\": 1,\n  \"b\": {\"c\": \"y\", \"d\": [1, 2, 3]}\n}\n",
    );
    assert_success(&out, &["json merge"]);
    let merged: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        merged,
        serde_json::json!({"a": 2, "b": {"c": "y", "d": [1, 2, 3]}})
    );
}

#[test]
fn lists_of_other_lengths_and_removed_values_conflict_as_one_entry() {
    let base = "hosts:\n  - a\n  - b\nold: 1\nkeep: k\n";
    // Ours grows the list and changes `old`; theirs changes an item and removes `old`.
    let ours = "hosts:\n  - a\n  - b\n  - c\nold: 2\nkeep: k\n";
    let theirs = "hosts:\n  - a\n  - B\nkeep: k2\n";
    let (_sb, out, text) = merge_three("l.yaml", base, ours, theirs);
    assert!(!out.status.success(), "the merge must conflict");
    assert_eq!(
        text,
        "<<<<<<< ours\nhosts:\n  - a\n  - b\n  - c\n=======\nhosts:\n  - a\n  - B\n>>>>>>> theirs\n\
         <<<<<<< ours\nold: 2\n=======\n>>>>>>> theirs\nkeep: k2\n"
    );
}

/// Checkouts hand smudges to workers through git's `delay` capability; the files come
/// out right, and a file without a key still checks out (encrypted) on that path.
#[test]
fn checkout_smudges_in_parallel_through_the_delay_capability() {
    let sb = Sandbox::new();
    repo(&sb);
    for i in 0..20 {
        sb.write(
            &format!("repo/secrets/f{i}.env"),
            format!("TOKEN=tok-{i}\n"),
        );
    }
    sb.git("repo", &["add", "."]);
    sb.git("repo", &["commit", "-qm", "twenty"]);
    std::fs::remove_dir_all(sb.path("repo/secrets")).unwrap();
    let out = sb.git_env(
        "repo",
        &["checkout", "-q", "--", "secrets"],
        &[("GIT_TRACE_PACKET", "1")],
    );
    assert_success(&out, &["checkout with delay"]);
    let trace = stderr(&out);
    assert!(trace.contains("git< capability=delay"), "delay not agreed");
    assert!(
        trace.matches("git< status=delayed").count() >= 20,
        "files not delayed"
    );
    assert!(trace.contains("git> command=list_available_blobs"));
    for i in 0..20 {
        assert_eq!(
            sb.read_str(&format!("repo/secrets/f{i}.env")),
            format!("TOKEN=tok-{i}\n")
        );
    }
    assert_eq!(sb.git("repo", &["status", "--porcelain"]), "");
    // Without a key the delayed path leaves ciphertext, with one warning.
    std::fs::remove_dir_all(sb.path("repo/secrets")).unwrap();
    let out = sb.git_env(
        "repo",
        &["checkout", "-q", "--", "secrets"],
        &[("HOME", "/nonexistent")],
    );
    assert_success(&out, &["checkout without a key"]);
    assert!(sb.read_str("repo/secrets/f3.env").contains("ENC["));
    assert_eq!(
        stderr(&out).matches("coffer: warning:").count(),
        1,
        "{}",
        stderr(&out)
    );
}

/// The long-running filter is a batch job (`SCHED_BATCH`): woken by each of git's small
/// writes, it does not take git's processor (see `as_batch_job`).
#[cfg(target_os = "linux")]
#[test]
fn the_filter_process_runs_as_a_batch_job() {
    let sb = Sandbox::new();
    repo(&sb);
    let mut child = sb
        .cmd()
        .current_dir(sb.path("repo"))
        .args(["git", "filter-process"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The scheduling policy: the 41st field of /proc/PID/stat (the 39th after the
    // command's name in parentheses); 3 is SCHED_BATCH, 0 the default.
    let policy = || {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).ok()?;
        let after = &stat[stat.rfind(')')? + 2..];
        after.split_whitespace().nth(38)?.parse::<u32>().ok()
    };
    // It sets the policy first, then waits for git's handshake on stdin.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut seen = policy();
    while seen != Some(3) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        seen = policy();
    }
    drop(child.stdin.take());
    let _ = child.wait();
    assert_eq!(seen, Some(3), "the filter process's scheduling policy");
}

#[test]
fn status_after_a_touch_answers_from_the_record_of_seen_plaintext() {
    let sb = Sandbox::new();
    repo(&sb);
    std::fs::remove_dir_all(sb.path("repo/secrets")).unwrap();
    sb.git("repo", &["checkout", "-q", "--", "secrets"]);
    let record = sb.path("repo/.git/coffer/seen");
    assert!(record.exists(), "checkout kept no record");
    assert_no_plaintext_in_git(&sb, "repo", SECRET);

    // Without its blob in git's store, only the record can say the file is unchanged:
    // a full clean would encrypt it anew under a new data key.
    let id = sb.git("repo", &["rev-parse", "HEAD:secrets/app.yaml"]);
    let id = id.trim();
    let loose = sb.path(&format!("repo/.git/objects/{}/{}", &id[..2], &id[2..]));
    let kept = std::fs::read(&loose).unwrap();
    std::fs::remove_file(&loose).unwrap();
    // A new mtime each time, so git cleans the files again.
    let touch = |sb: &Sandbox, date: &str| {
        let out = std::process::Command::new("touch")
            .args(["-d", date, "secrets/app.yaml", "secrets/app.env"])
            .current_dir(sb.path("repo"))
            .output()
            .unwrap();
        assert!(out.status.success());
    };
    touch(&sb, "2001-01-01");
    assert_eq!(sb.git("repo", &["status", "--porcelain"]), "");
    std::fs::write(&loose, &kept).unwrap();

    // A changed value is not taken for the recorded one.
    let yaml = sb.read_str("repo/secrets/app.yaml");
    sb.write("repo/secrets/app.yaml", yaml.replacen(SECRET, "changed", 1));
    assert_eq!(
        sb.git("repo", &["status", "--porcelain"]),
        " M secrets/app.yaml\n"
    );
    sb.write("repo/secrets/app.yaml", &yaml);

    // A damaged record is not read: the full clean answers, and still finds no change.
    let mut bytes = std::fs::read(&record).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    std::fs::write(&record, &bytes).unwrap();
    touch(&sb, "2002-02-02");
    assert_eq!(sb.git("repo", &["status", "--porcelain"]), "");
    assert!(std::fs::read(&record).unwrap() != bytes, "not written anew");
    assert_no_plaintext_in_git(&sb, "repo", SECRET);
}

#[test]
fn a_rule_with_shamir_key_groups_splits_what_the_filter_commits() {
    let sb = Sandbox::new();
    repo(&sb);
    // Two groups, both this sandbox's key: any two shares open the file.
    sb.write(
        "repo/.coffer.yaml",
        format!(
            "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n      - age: [{0}]\n      - age: [{0}]\n",
            sb.recipient
        ),
    );
    sb.write("repo/secrets/split.env", format!("PASSWORD={SECRET}\n"));
    sb.git("repo", &["add", "."]);
    sb.git("repo", &["commit", "-qm", "split"]);
    let stored = blob(&sb, "repo", "HEAD:secrets/split.env");
    assert!(stored.contains("sops_shamir_threshold=2"), "{stored}");
    assert_eq!(stored.matches("sops_key_groups__list_").count(), 4);
    std::fs::remove_dir_all(sb.path("repo/secrets")).unwrap();
    sb.git("repo", &["checkout", "-q", "--", "secrets"]);
    assert_eq!(
        sb.read_str("repo/secrets/split.env"),
        format!("PASSWORD={SECRET}\n")
    );
    assert_eq!(sb.git("repo", &["status", "--porcelain"]), "");
    assert_no_plaintext_in_git(&sb, "repo", SECRET);
}

/// A blob that does not open (a value's hunk staged without the MAC's, as `git stash -p`
/// can leave one) is checked out as it is stored, never as an empty file.
#[test]
fn a_blob_that_does_not_open_is_checked_out_as_stored_not_empty() {
    let sb = Sandbox::new();
    repo(&sb);
    let stored = blob(&sb, "repo", "HEAD:secrets/app.env");
    let other = stored.replacen(
        "DB_HOST=ENC[AES256_GCM,data:",
        "DB_HOST=ENC[AES256_GCM,data:AA",
        1,
    );
    assert_ne!(other, stored);
    sb.write("broken.env", &other);
    let id = sb.git(
        "repo",
        &["hash-object", "-w", "--no-filters", "../broken.env"],
    );
    let info = format!("100644,{},secrets/app.env", id.trim());
    sb.git("repo", &["update-index", "--cacheinfo", &info]);
    std::fs::remove_file(sb.path("repo/secrets/app.env")).unwrap();
    let out = sb.git_in("repo", &["checkout", "--", "secrets/app.env"]);
    assert_success(&out, &["checkout of a broken blob"]);
    assert_eq!(sb.read_str("repo/secrets/app.env"), other);
    assert!(
        stderr(&out).contains("coffer decrypt --ignore-mac secrets/app.env"),
        "{}",
        stderr(&out)
    );
}

/// Files merged line by line (`git merge-file`: whole-file secrets, say) are merged from
/// memory-backed files: no side's plaintext is ever written to disk.
#[test]
fn whole_files_merge_line_by_line_without_plaintext_on_disk() {
    let sb = Sandbox::new();
    repo(&sb);
    sb.write("repo/secrets/notes.txt", "one\ntwo\nthree\nfour\n");
    sb.git("repo", &["add", "secrets/notes.txt"]);
    sb.git("repo", &["commit", "-q", "-m", "notes"]);
    let edit = |branch: &str, from: &str, to: &str| {
        sb.git("repo", &["checkout", "-q", "-b", branch, "main"]);
        let text = sb.read_str("repo/secrets/notes.txt");
        sb.write("repo/secrets/notes.txt", text.replace(from, to));
        sb.git("repo", &["commit", "-q", "-am", branch]);
    };
    edit("a", "one\n", "ONE-secret-a\n");
    edit("b", "four\n", "FOUR-secret-b\n");
    sb.git("repo", &["checkout", "-q", "a"]);
    sb.git("repo", &["merge", "-q", "--no-edit", "b"]);
    assert_eq!(
        sb.read_str("repo/secrets/notes.txt"),
        "ONE-secret-a\ntwo\nthree\nFOUR-secret-b\n"
    );
    let stray: Vec<_> = std::fs::read_dir(sb.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("coffer-merge-"))
        .collect();
    assert!(stray.is_empty());
    assert_no_plaintext_in_git(&sb, "repo", "ONE-secret-a");
}

/// The filter keeps each data key it opens or makes, sealed, in `.git/coffer/keys`, so a
/// later checkout skips the unwrap; a key is kept under the file's whole set of key
/// entries. Once someone's entry is taken out of a file, its data key kept (as `sops
/// updatekeys` keeps it), the key kept for the old set opens nothing.
#[test]
fn kept_data_keys_open_only_the_key_entries_they_were_kept_for() {
    let sb = Sandbox::new();
    repo(&sb);
    let cache = sb.path("repo/.git/coffer/keys");
    // The header, then 92 bytes per key: one for each file committed.
    let entries = |sb: &Sandbox| {
        (std::fs::metadata(sb.path("repo/.git/coffer/keys"))
            .unwrap()
            .len()
            - 30)
            / 92
    };
    assert!(cache.exists(), "committing kept no data key");
    assert_eq!(entries(&sb), 2);
    assert_eq!(mode(&cache) & 0o077, 0);
    assert!(!std::fs::read(&cache)
        .unwrap()
        .windows(SECRET.len())
        .any(|w| w == SECRET.as_bytes()));

    // Bob's entry first, this sandbox's (Alice's) second.
    let bob_keys = sb.path("bob.txt");
    sb.ok(&["keygen", "-o", bob_keys.to_str().unwrap()]);
    let bob = stdout(&sb.ok(&["keygen", "--show", "-o", bob_keys.to_str().unwrap()]));
    sb.write(
        "repo/.coffer.yaml",
        format!(
            "creation_rules:\n  - age: [{}, {}]\n",
            bob.trim(),
            sb.recipient
        ),
    );
    sb.write("repo/secrets/team.env", format!("PASSWORD={SECRET}\n"));
    sb.git("repo", &["add", "."]);
    sb.git("repo", &["commit", "-qm", "team"]);
    assert_eq!(entries(&sb), 3);
    std::fs::remove_file(sb.path("repo/secrets/team.env")).unwrap();
    sb.git("repo", &["checkout", "-q", "--", "secrets/team.env"]);
    assert_eq!(
        sb.read_str("repo/secrets/team.env"),
        format!("PASSWORD={SECRET}\n")
    );

    // Alice's entry taken out; the data key, and so the values and MAC, as they were.
    let stored = blob(&sb, "repo", "HEAD:secrets/team.env");
    assert!(stored.contains("sops_age__list_1__map_enc="), "{stored}");
    let without: String = stored
        .lines()
        .filter(|l| !l.starts_with("sops_age__list_1__"))
        .map(|l| format!("{l}\n"))
        .collect();
    sb.write("bob-only.env", &without);
    let id = sb.git(
        "repo",
        &[
            "hash-object",
            "-w",
            "--no-filters",
            sb.path("bob-only.env").to_str().unwrap(),
        ],
    );
    sb.git(
        "repo",
        &[
            "update-index",
            "--cacheinfo",
            &format!("100644,{},secrets/team.env", id.trim()),
        ],
    );
    sb.git("repo", &["commit", "-qm", "alice leaves"]);
    // Bob still opens it.
    let out = sb.run_with(
        &["decrypt", sb.path("bob-only.env").to_str().unwrap()],
        &[("COFFER_AGE_KEY_FILE", bob_keys.to_str().unwrap())],
    );
    assert_eq!(stdout(&out), format!("PASSWORD={SECRET}\n"));
    // Alice does not: not from her kept keys either.
    std::fs::remove_file(sb.path("repo/secrets/team.env")).unwrap();
    let _ = sb.git_in("repo", &["checkout", "-q", "--", "secrets/team.env"]);
    let there = std::fs::read_to_string(sb.path("repo/secrets/team.env")).unwrap_or_default();
    assert!(!there.contains(SECRET), "opened from a kept key: {there}");

    // A damaged cache is not read: the checkout unwraps, and answers the same.
    let mut bytes = std::fs::read(&cache).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&cache, &bytes).unwrap();
    std::fs::remove_file(sb.path("repo/secrets/app.env")).unwrap();
    sb.git("repo", &["checkout", "-q", "--", "secrets/app.env"]);
    assert_eq!(
        sb.read_str("repo/secrets/app.env"),
        std::fs::read_to_string(testdata("plain/app.env")).unwrap()
    );
}
