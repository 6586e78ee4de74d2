//! No side doors in what coffer writes: through symlinks, with the file's owner and mode,
//! under the umask, without plaintext left behind by a signal, and no edit lost.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use super::common::*;

#[test]
fn in_place_writes_go_through_symlinks_and_keep_them() {
    let sb = Sandbox::new();
    sb.write("real/app.yaml", "password: hunter2\n");
    std::os::unix::fs::symlink("real/app.yaml", sb.path("link.yaml")).unwrap();
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "link.yaml"]);
    assert!(sb
        .path("link.yaml")
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_symlink());
    let real = sb.read_str("real/app.yaml");
    assert!(real.contains("ENC[") && !real.contains("hunter2"), "{real}");
    sb.ok(&["set", "link.yaml", "[\"password\"]", "\"changed\""]);
    assert!(sb
        .path("link.yaml")
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_symlink());
    let out = sb.ok(&["decrypt", "real/app.yaml"]);
    assert_eq!(stdout(&out), "password: changed\n");
}

#[test]
fn in_place_writes_keep_owner_group_and_mode() {
    let sb = Sandbox::new();
    let p = sb.write("app.yaml", "password: hunter2\n");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
    let root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
    if root {
        std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
    }
    let before = std::fs::metadata(&p).unwrap();
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "app.yaml"]);
    sb.ok(&["set", "app.yaml", "[\"password\"]", "\"changed\""]);
    let after = std::fs::metadata(&p).unwrap();
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    assert_eq!(after.permissions().mode() & 0o777, 0o640);
    assert!(
        !root || after.uid() == 65534,
        "run as root, the test changes owners"
    );
}

#[test]
fn new_files_honour_the_umask_and_plaintext_is_always_private() {
    let sb = Sandbox::new();
    sb.write("app.yaml", "password: hunter2\n");
    let run = |umask: &str, args: &str| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("umask {umask}; exec \"$0\" {args}"))
            .arg(env!("CARGO_BIN_EXE_coffer"))
            .env_clear()
            .env("PATH", path_with_coffer())
            .env("HOME", sb.home())
            .current_dir(sb.dir.path())
            .output()
            .unwrap();
        assert_success(&out, &[args]);
    };
    let recipient = sb.recipient.clone();
    run(
        "077",
        &format!("encrypt --age {recipient} -o enc077.yaml app.yaml"),
    );
    assert_eq!(mode(&sb.path("enc077.yaml")), 0o600);
    run(
        "022",
        &format!("encrypt --age {recipient} -o enc022.yaml app.yaml"),
    );
    assert_eq!(mode(&sb.path("enc022.yaml")), 0o644);
    run("000", "decrypt -o plain.yaml enc022.yaml");
    assert_eq!(mode(&sb.path("plain.yaml")), 0o600);
}

#[test]
fn a_signal_during_an_in_place_decrypt_leaves_no_plaintext_temp_file() {
    let sb = Sandbox::new();
    let big: Vec<u8> = (0..6u32 << 20).map(|i| (i % 251) as u8).collect();
    sb.write("big.bin", &big);
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "big.bin"]);
    let encrypted = sb.read("big.bin");
    let temp_files = || -> Vec<String> {
        std::fs::read_dir(sb.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".coffer-"))
            .collect()
    };
    for signal in ["TERM", "INT", "HUP"] {
        // Signal it while the plaintext is being written beside the file; a write that
        // ends before the test sees its temp file is tried again.
        let mut caught = false;
        for _ in 0..20 {
            sb.write("big.bin", &encrypted);
            let mut child = sb.cmd().args(["decrypt", "-i", "big.bin"]).spawn().unwrap();
            while child.try_wait().unwrap().is_none() {
                if !temp_files().is_empty() {
                    Command::new("kill")
                        .args([&format!("-{signal}"), &child.id().to_string()])
                        .status()
                        .unwrap();
                    caught = true;
                    break;
                }
            }
            let status = child.wait().unwrap();
            assert!(
                temp_files().is_empty(),
                "SIG{signal}: {:?} left behind",
                temp_files()
            );
            // The file is the old one or the new one, whole.
            let now = sb.read("big.bin");
            assert!(
                now == encrypted || now == big,
                "SIG{signal}: a partial file"
            );
            if caught {
                assert!(
                    matches!(status.code(), Some(130) | Some(0)),
                    "SIG{signal}: {status:?}"
                );
                break;
            }
        }
        assert!(
            caught,
            "SIG{signal}: every write was over before the test saw it"
        );
    }
}

#[test]
fn two_failed_edits_of_the_same_name_at_once_are_both_rescued() {
    let sb = Sandbox::new();
    for dir in ["a", "b"] {
        sb.write(&format!("{dir}/app.yaml"), "password: hunter2\n");
        sb.ok(&[
            "encrypt",
            "--age",
            &sb.recipient,
            "-i",
            &format!("{dir}/app.yaml"),
        ]);
    }
    let ed = sb.editor("ed.sh", "printf 'broken: [ # %s\\n' \"$1\" >> \"$1\"");
    let mut saved = Vec::new();
    for dir in ["a", "b"] {
        let out = sb.run_with(&["edit", &format!("{dir}/app.yaml")], &[("EDITOR", &ed)]);
        assert_error(&out, 8, "your edit is saved in ");
        let err = stderr(&out);
        saved.push(
            err.split("your edit is saved in ")
                .nth(1)
                .unwrap()
                .trim()
                .to_string(),
        );
    }
    assert_ne!(saved[0], saved[1], "each rescue has a name of its own");
    for s in &saved {
        assert!(std::fs::read_to_string(s).unwrap().contains("broken: ["));
    }
}

#[test]
fn an_edit_that_cannot_be_rescued_says_so_and_stays_where_the_editor_left_it() {
    let sb = Sandbox::new();
    sb.write("app.yaml", "password: hunter2\n");
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "app.yaml"]);
    // The rescue directory cannot be made: its parent is a file.
    sb.write("state", "not a directory");
    let ed = sb.editor("ed.sh", "printf 'broken: [\\n' >> \"$1\"");
    let state = sb.path("state");
    let out = sb.run_with(
        &["edit", "app.yaml"],
        &[("EDITOR", &ed), ("XDG_STATE_HOME", state.to_str().unwrap())],
    );
    assert_error(&out, 8, "your edit could not be rescued (");
    let err = stderr(&out);
    let kept = err
        .split(": it is still in ")
        .nth(1)
        .expect("names the file")
        .trim();
    assert!(
        std::fs::read_to_string(kept).unwrap().contains("broken: ["),
        "{err}"
    );
    assert_eq!(mode(std::path::Path::new(kept)), 0o600);
}

#[test]
fn set_takes_its_value_from_stdin_or_a_file_so_it_is_not_in_the_process_list() {
    let sb = Sandbox::new();
    sb.encrypted("app.yaml", "password: old\nport: 1\n");
    let out = sb.stdin(
        &["set", "--value-stdin", "app.yaml", "[\"password\"]"],
        b"from-stdin\n",
    );
    assert_success(&out, &["set --value-stdin"]);
    sb.write("value.txt", "5432\n");
    sb.ok(&["set", "--value-file", "value.txt", "app.yaml", "[\"port\"]"]);
    assert_eq!(
        stdout(&sb.ok(&["decrypt", "app.yaml"])),
        "password: from-stdin\nport: 5432\n"
    );
    let out = sb.run(&["set", "app.yaml", "[\"port\"]"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a value is needed: {}",
        stderr(&out)
    );
}

#[test]
fn an_output_replaces_a_symlink_rather_than_writing_where_it_points() {
    let sb = Sandbox::new();
    sb.encrypted("app.yaml", "password: hunter2\n");
    let target = sb.write("elsewhere/target.txt", "not yours\n");
    std::os::unix::fs::symlink(&target, sb.path("out.yaml")).unwrap();
    sb.ok(&["decrypt", "-o", "out.yaml", "app.yaml"]);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "not yours\n");
    let out = sb.path("out.yaml");
    assert!(out.symlink_metadata().unwrap().file_type().is_file());
    assert_eq!(mode(&out), 0o600);
    assert_eq!(sb.read_str("out.yaml"), "password: hunter2\n");
}
