//! `coffer edit` with a scripted editor: real processes, real temp files.

use super::common::*;

#[test]
fn an_edit_of_one_value_changes_three_lines() {
    let sb = Sandbox::new();
    sb.encrypted_sample("app.yaml");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let before = sb.read_str("app.yaml");
    // The editor records the path it was given, so the test can check it is gone after.
    let ed = sb.editor(
        "ed.sh",
        &format!(
            "echo \"$1\" > {}/seen\nsed -i 's/rollout: 25/rollout: 50/' \"$1\"",
            sb.dir.path().display()
        ),
    );
    let out = sb.run_with(&["edit", "app.yaml"], &[("EDITOR", &ed)]);
    assert_success(&out, &["edit"]);
    let after = sb.read_str("app.yaml");
    let changed = changed_lines(&before, &after);
    assert_eq!(changed.len(), 3, "{changed:#?}");
    assert!(
        changed[0].starts_with("feature_flags: {beta:"),
        "{changed:?}"
    );
    let plain = stdout(&sb.ok(&["decrypt", "app.yaml"]));
    assert!(
        plain.contains("feature_flags: {beta: true, dark_mode: false, rollout: 50}"),
        "{plain}"
    );

    let seen = sb.read_str("seen");
    let tmp = std::path::Path::new(seen.trim());
    assert!(
        tmp.ends_with("app.yaml"),
        "the temp file keeps the name: {seen}"
    );
    assert!(
        !tmp.exists() && !tmp.parent().unwrap().exists(),
        "the private temp dir {seen} was not removed"
    );
}

#[test]
fn an_edit_that_changes_nothing_leaves_the_file_byte_for_byte() {
    let sb = Sandbox::new();
    sb.encrypted_sample("app.yaml");
    let before = sb.read("app.yaml");
    let ed = sb.editor("ed.sh", "touch \"$1\"");
    let out = sb.run_with(
        &["edit", "app.yaml"],
        &[("VISUAL", &ed), ("EDITOR", "false")],
    );
    assert_success(&out, &["edit"]);
    assert!(stderr(&out).contains("no changes"));
    assert_eq!(sb.read("app.yaml"), before);
}

#[test]
fn the_plaintext_temp_file_is_private() {
    let sb = Sandbox::new();
    sb.encrypted_sample("app.yaml");
    let report = sb.path("modes");
    let ed = sb.editor(
        "ed.sh",
        &format!(
            "stat -c '%a' \"$1\" \"$(dirname \"$1\")\" > {}",
            report.display()
        ),
    );
    assert_success(
        &sb.run_with(&["edit", "app.yaml"], &[("EDITOR", &ed)]),
        &["edit"],
    );
    assert_eq!(sb.read_str("modes"), "600\n700\n");
}

#[test]
fn invalid_syntax_keeps_the_edit_and_the_file() {
    let sb = Sandbox::new();
    sb.encrypted_sample("app.yaml");
    let before = sb.read("app.yaml");
    let ed = sb.editor("ed.sh", "printf 'broken: [\\n' >> \"$1\"");
    let out = sb.run_with(&["edit", "app.yaml"], &[("EDITOR", &ed)]);
    assert_error(&out, 8, "app.yaml: ");
    let err = stderr(&out);
    assert!(err.contains("the file was not changed"), "{err}");
    assert_eq!(sb.read("app.yaml"), before);
    let saved = err
        .split("your edit is saved in ")
        .nth(1)
        .expect("names the rescue file")
        .trim();
    let saved = std::path::Path::new(saved);
    assert!(saved.starts_with(sb.home()), "{}", saved.display());
    let content = std::fs::read_to_string(saved).unwrap();
    assert!(content.ends_with("broken: [\n") && content.contains("password: 'S3cr3t!pass'"));
    assert_eq!(mode(saved), 0o600);
    assert_eq!(mode(saved.parent().unwrap()), 0o700);
}

#[test]
fn an_editor_failure_writes_nothing() {
    let sb = Sandbox::new();
    sb.encrypted_sample("app.yaml");
    let before = sb.read("app.yaml");
    let ed = sb.editor(
        "ed.sh",
        "sed -i 's/rollout: 25/rollout: 99/' \"$1\"; exit 3",
    );
    let out = sb.run_with(&["edit", "app.yaml"], &[("EDITOR", &ed)]);
    assert_error(&out, 8, "the editor exited with exit status: 3");
    assert!(stderr(&out).contains("your edit is saved in"));
    assert_eq!(sb.read("app.yaml"), before);
}

#[test]
fn edit_creates_a_new_file() {
    let sb = Sandbox::new();
    let ed = sb.editor("ed.sh", "printf 'token: abc\\n' > \"$1\"");
    let out = sb.run_with(
        &["edit", "--age", &sb.recipient, "new.yaml"],
        &[("EDITOR", &ed)],
    );
    assert_success(&out, &["edit new"]);
    assert!(sb.read_str("new.yaml").starts_with("token: ENC["));
    assert_eq!(stdout(&sb.ok(&["decrypt", "new.yaml"])), "token: abc\n");
}

#[test]
fn edit_with_a_wrong_key_does_not_start_the_editor() {
    let owner = Sandbox::new();
    owner.encrypted_sample("app.yaml");
    let stranger = Sandbox::new();
    stranger.copy(&owner.path("app.yaml"), "app.yaml");
    let ed = stranger.editor(
        "ed.sh",
        &format!("touch {}/ran", stranger.dir.path().display()),
    );
    let out = stranger.run_with(&["edit", "app.yaml"], &[("EDITOR", &ed)]);
    assert_eq!(out.status.code(), Some(3));
    assert!(!stranger.path("ran").exists());
}

#[test]
fn ctrl_c_during_the_edit_removes_the_plaintext_and_writes_nothing() {
    let sb = Sandbox::new();
    sb.encrypted_sample("app.yaml");
    let before = sb.read("app.yaml");
    // The editor changes the file, then interrupts coffer (its nearest `coffer`
    // ancestor) the way a terminal's Ctrl-C would, and exits normally.
    let ed = sb.editor("ed.sh",
        &format!(
            "echo \"$1\" > {dir}/seen\nsed -i 's/rollout: 25/rollout: 1/' \"$1\"\n\
             p=$PPID\nwhile [ \"$(cat /proc/$p/comm)\" != coffer ]; do p=$(awk '{{print $4}}' /proc/$p/stat); done\n\
             kill -INT $p\nsleep 0.2",
            dir = sb.dir.path().display()
        ),
    );
    let out = sb.run_with(&["edit", "app.yaml"], &[("EDITOR", &ed)]);
    assert_error(&out, 130, "interrupted; nothing was written");
    assert_eq!(sb.read("app.yaml"), before);
    let seen = sb.read_str("seen");
    let tmp = std::path::Path::new(seen.trim());
    assert!(
        !tmp.parent().unwrap().exists(),
        "the private temp dir {seen} was not removed"
    );
}
