//! No side doors in what coffer writes: through symlinks, with the file's owner and mode,
//! under the umask, without plaintext left behind by a signal, and no edit lost.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
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
    for signal in ["TERM", "INT", "HUP", "QUIT", "USR1", "USR2", "ALRM"] {
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

/// Every signal whose default ends the process ends an edit or an exec-file without
/// leaving their plaintext behind, and no core dump can hold it.
#[test]
fn signals_during_edit_and_exec_file_leave_no_plaintext() {
    let sb = Sandbox::new();
    sb.encrypted("a.yaml", "password: hunter2\n");
    let private_dirs = || -> Vec<String> {
        std::fs::read_dir(sb.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("coffer-edit-") || n.starts_with("coffer-exec-"))
            .collect()
    };
    let editor = sb.editor("slow.sh", "sleep 1");
    for signal in ["QUIT", "USR1", "USR2", "ALRM", "TERM"] {
        for args in [
            vec!["edit", "a.yaml"],
            vec!["exec-file", "a.yaml", "--", "sleep", "1"],
        ] {
            let mut child = sb
                .cmd()
                .args(&args)
                .env("EDITOR", &editor)
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            // Wait until the plaintext is out, then signal coffer.
            let start = std::time::Instant::now();
            while private_dirs().is_empty() && start.elapsed().as_secs() < 5 {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            assert!(
                !private_dirs().is_empty(),
                "{args:?}: no private directory seen"
            );
            let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
            let core = limits
                .lines()
                .find(|l| l.starts_with("Max core file size"))
                .unwrap();
            assert!(core.split_whitespace().nth(4) == Some("0"), "{core}");
            Command::new("kill")
                .args([&format!("-{signal}"), &child.id().to_string()])
                .status()
                .unwrap();
            let status = child.wait().unwrap();
            assert!(
                private_dirs().is_empty(),
                "SIG{signal} {args:?}: {:?} left",
                private_dirs()
            );
            assert!(
                status.code().is_some(),
                "SIG{signal} {args:?}: killed by it: {status:?}"
            );
        }
    }
    assert_eq!(
        stdout(&sb.ok(&["decrypt", "a.yaml"])),
        "password: hunter2\n"
    );
}

/// `-o` to a pipe, a device or a FIFO writes through it, as sops does; it never puts a
/// regular file holding the plaintext in its place.
#[test]
fn outputs_that_are_not_regular_files_are_written_through() {
    let sb = Sandbox::new();
    sb.encrypted("a.env", "TOKEN=t1\n");
    // stdout is a pipe to this test.
    let out = sb.ok(&["decrypt", "-o", "/dev/stdout", "a.env"]);
    assert_eq!(stdout(&out), "TOKEN=t1\n");
    let out = sb.ok(&["decrypt", "-o", "/dev/null", "a.env"]);
    assert_eq!(stdout(&out), "");
    assert!(std::fs::metadata("/dev/null")
        .unwrap()
        .file_type()
        .is_char_device());
    // A FIFO with a reader.
    let fifo = sb.path("pipe");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    sb.ok(&["decrypt", "-o", "pipe", "a.env"]);
    assert_eq!(reader.join().unwrap(), "TOKEN=t1\n");
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    // And a link to /dev/stdout through the sops front end.
    std::os::unix::fs::symlink("/dev/stdout", sb.path("out-link")).unwrap();
    let out = sb
        .as_sops()
        .args(["-d", "--output", "out-link", "a.env"])
        .output()
        .unwrap();
    assert_success(&out, &["sops -d --output link"]);
    assert_eq!(stdout(&out), "TOKEN=t1\n");
    assert!(std::fs::symlink_metadata(sb.path("out-link"))
        .unwrap()
        .file_type()
        .is_symlink());
}

/// A file with other hard links is encrypted through its inode, as sops does it: no
/// name is left holding the plaintext.
#[test]
fn in_place_writes_reach_every_hard_link() {
    let sb = Sandbox::new();
    sb.write("a.yaml", "password: hunter2\n");
    std::fs::hard_link(sb.path("a.yaml"), sb.path("b.yaml")).unwrap();
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "a.yaml"]);
    for name in ["a.yaml", "b.yaml"] {
        let text = sb.read_str(name);
        assert!(
            !text.contains("hunter2") && text.contains("password: ENC["),
            "{name}: {text}"
        );
    }
    assert_eq!(std::fs::metadata(sb.path("b.yaml")).unwrap().nlink(), 2);
    sb.ok(&["set", "b.yaml", r#"["password"]"#, "s2"]);
    assert_eq!(sb.read("a.yaml"), sb.read("b.yaml"));
    assert_eq!(stdout(&sb.ok(&["decrypt", "a.yaml"])), "password: s2\n");
    let leftovers: Vec<_> = std::fs::read_dir(sb.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".coffer-"))
        .collect();
    assert!(leftovers.is_empty());
}

/// A reader that goes away (`| head`) ends coffer quietly, as it ends other programs:
/// no error line, no panic, the status of a closed pipe.
#[test]
fn a_closed_stdout_ends_quietly() {
    let sb = Sandbox::new();
    let big: String = (0..20_000).map(|i| format!("K{i}=value-{i}\n")).collect();
    sb.encrypted("big.env", &big);
    let mut child = sb
        .cmd()
        .args(["decrypt", "big.env"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(141));
    assert_eq!(stderr(&out), "");
}

/// coffer with `args` (split at spaces by the shell) under a 700 MB address-space
/// limit, in the sandbox's directory. (Encrypting 2,000,000 values fits in 1 GB now.)
fn with_memory_limit(sb: &Sandbox, args: &str) -> std::process::Output {
    let coffer = env!("CARGO_BIN_EXE_coffer");
    Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v 700000; exec {coffer} {args}"))
        .current_dir(sb.dir.path())
        .env_clear()
        .env("HOME", sb.home())
        .env("PATH", path_with_coffer())
        .output()
        .unwrap()
}

/// A file larger than the memory coffer may take is one line naming it, exit 1, and
/// nothing written: never an abort. (A sparse file: 3 GiB that takes no disk.)
#[test]
fn a_file_larger_than_the_memory_allowed_is_one_line() {
    let sb = Sandbox::new();
    let big = sb.path("big.yaml");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(3 << 30)
        .unwrap();
    for args in [
        format!("encrypt --age {} -i big.yaml", sb.recipient),
        "decrypt big.yaml".to_string(),
    ] {
        let out = with_memory_limit(&sb, &args);
        assert_error(
            &out,
            1,
            "coffer: big.yaml: not enough memory to read it (3221225472 bytes)",
        );
        assert_eq!(std::fs::metadata(&big).unwrap().len(), 3 << 30);
    }
}

/// Memory that runs out part way (the file is read, its parse is not made) is one line,
/// exit 1, with the file as it was and nothing beside it: never Rust's abort with a
/// backtrace. Both in place and to another file.
#[test]
fn memory_that_runs_out_part_way_is_one_line() {
    let sb = Sandbox::new();
    let text: String = (0..2_000_000)
        .map(|i| format!("key{i}: value-{i}-abcdefgh\n"))
        .collect();
    sb.write("big.yaml", &text);
    for args in [
        format!("encrypt --age {} -i big.yaml", sb.recipient),
        format!("encrypt --age {} -o out.yaml big.yaml", sb.recipient),
    ] {
        let out = with_memory_limit(&sb, &args);
        assert_eq!(out.status.code(), Some(1), "{args}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.starts_with("coffer: out of memory (")
                && err.ends_with("nothing half-written is left\n"),
            "{args}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(sb.read_str("big.yaml") == text, "{args}: the file changed");
        let names: Vec<_> = std::fs::read_dir(sb.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != "big.yaml" && !n.starts_with('.') && n != "home")
            .collect();
        assert!(names.is_empty(), "{args}: left beside it: {names:?}");
    }
}
