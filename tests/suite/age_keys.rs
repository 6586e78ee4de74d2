//! age identities from every place sops 3.10-3.13 reads them: several keys in
//! `SOPS_AGE_KEY`, key commands (`SOPS_AGE_KEY_CMD`, `SOPS_AGE_SSH_PRIVATE_KEY_CMD`),
//! identity files and SSH keys behind a passphrase asked on the terminal.

use std::io::{Read, Write};
use std::process::{Output, Stdio};

use super::common::*;

/// A sandbox whose identity is kept aside (`key.txt`), not where coffer looks.
fn keyless_sandbox() -> (Sandbox, String) {
    let sb = Sandbox::new();
    let key = std::fs::read_to_string(sb.key_file()).unwrap();
    std::fs::remove_file(sb.key_file()).unwrap();
    sb.write("key.txt", &key);
    (sb, key)
}

/// The `AGE-SECRET-KEY-1…` line of an identity file.
fn secret_line(key: &str) -> String {
    key.lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .unwrap()
        .to_string()
}

#[test]
fn sops_age_key_holds_several_keys_to_a_line_or_one_to_a_line() {
    let (sb, key) = keyless_sandbox();
    let other = Sandbox::new();
    let other_key = std::fs::read_to_string(other.key_file()).unwrap();
    sb.write("a.yaml", "a: secret\n");
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "a.yaml"]);
    let ours = secret_line(&key);
    let theirs = secret_line(&other_key);
    for joined in [
        format!("{theirs} {ours}"),
        format!("{theirs}\n{ours}\n"),
        format!("# keys\n{theirs}\t{ours}"),
    ] {
        let out = sb.run_with(&["decrypt", "a.yaml"], &[("SOPS_AGE_KEY", &joined)]);
        assert_success(&out, &["decrypt", &joined.replace(&ours, "OURS")]);
        assert_eq!(stdout(&out), "a: secret\n");
        // The real sops reads keys one to a line the same way (the sops of the test
        // tools, 3.11, predates several to a line).
        if joined.contains(' ') || joined.contains('\t') {
            continue;
        }
        let real = sb.sops_only(&[("SOPS_AGE_KEY", joined.as_ref())], &["decrypt", "a.yaml"]);
        assert_success(&real, &["sops decrypt"]);
        assert_eq!(stdout(&real), "a: secret\n");
    }
    // A file holds one key to a line: two on a line is not an identity file.
    sb.write("two.txt", format!("{theirs} {ours}\n"));
    let out = sb.run_with(
        &["decrypt", "a.yaml"],
        &[("SOPS_AGE_KEY_FILE", sb.path("two.txt").to_str().unwrap())],
    );
    assert_error(&out, 1, "not an age identity file");
}

#[test]
fn a_key_command_runs_when_needed_once_per_recipient_with_the_recipient_in_its_environment() {
    let (sb, _) = keyless_sandbox();
    let other = Sandbox::new();
    sb.write("a.yaml", "a: secret\nb: 2\n");
    // Listed first: the command is asked for the other recipient before ours.
    let both = format!("{},{}", other.recipient, sb.recipient);
    sb.ok(&["encrypt", "--age", &both, "-i", "a.yaml"]);
    let command = "sh -c 'echo \"$SOPS_AGE_RECIPIENT\" >> ran.log; cat key.txt'";
    for name in ["SOPS_AGE_KEY_CMD", "COFFER_AGE_KEY_CMD"] {
        let _ = std::fs::remove_file(sb.path("ran.log"));
        let out = sb.run_with(&["decrypt", "a.yaml"], &[(name, command)]);
        assert_success(&out, &["decrypt with", name]);
        assert_eq!(stdout(&out), "a: secret\nb: 2\n");
        assert_eq!(
            sb.read_str("ran.log"),
            format!("{}\n{}\n", other.recipient, sb.recipient),
            "{name}: run once for each recipient, in the file's order"
        );
    }
    // The real sops runs it the same way.
    let _ = std::fs::remove_file(sb.path("ran.log"));
    let real = sb.sops_only(
        &[("SOPS_AGE_KEY_CMD", command.as_ref())],
        &["decrypt", "a.yaml"],
    );
    assert_success(&real, &["sops decrypt with SOPS_AGE_KEY_CMD"]);
    assert!(sb.read_str("ran.log").contains(&sb.recipient));

    // The command gets the recipient, and none of coffer's key sources: not the
    // identities at hand (here one that does not open the file), not the MFA code.
    let stranger = Sandbox::new();
    let wrong = secret_line(&std::fs::read_to_string(stranger.key_file()).unwrap());
    let out = sb.run_with(
        &["decrypt", "a.yaml"],
        &[
            ("SOPS_AGE_KEY_CMD", "sh -c 'env > cmd-env.txt; cat key.txt'"),
            ("SOPS_AGE_KEY", &wrong),
            ("COFFER_MFA_TOKEN", "123456"),
        ],
    );
    assert_success(
        &out,
        &["decrypt with a command beside a key that does not open"],
    );
    let seen = sb.read_str("cmd-env.txt");
    assert!(seen.contains("SOPS_AGE_RECIPIENT=age1"), "{seen}");
    assert!(
        !seen.contains(&wrong),
        "an identity reached the command: {seen}"
    );
    for name in ["SOPS_AGE_KEY=", "SOPS_AGE_KEY_CMD=", "COFFER_MFA_TOKEN="] {
        assert!(!seen.contains(name), "{name} reached the command");
    }

    // Not run when an identity at hand opens the file.
    let _ = std::fs::remove_file(sb.path("ran.log"));
    let out = sb.run_with(
        &["decrypt", "a.yaml"],
        &[
            ("SOPS_AGE_KEY_CMD", command),
            ("SOPS_AGE_KEY_FILE", sb.path("key.txt").to_str().unwrap()),
        ],
    );
    assert_success(&out, &["decrypt with a key file"]);
    assert!(!sb.path("ran.log").exists(), "the command was not needed");

    // A command that fails, or prints no identity, is named in the error.
    let out = sb.run_with(
        &["decrypt", "a.yaml"],
        &[("SOPS_AGE_KEY_CMD", "sh -c 'exit 3'")],
    );
    assert_error(&out, 3, "SOPS_AGE_KEY_CMD: sh failed (exit status: 3)");
    let out = sb.run_with(
        &["decrypt", "a.yaml"],
        &[("SOPS_AGE_KEY_CMD", "echo not-a-key")],
    );
    assert_error(&out, 3, "SOPS_AGE_KEY_CMD: not an age identity file");
    let out = sb.run_with(
        &["decrypt", "a.yaml"],
        &[("SOPS_AGE_KEY_CMD", "/nonexistent/age-key-helper")],
    );
    assert_error(
        &out,
        3,
        "SOPS_AGE_KEY_CMD: cannot run /nonexistent/age-key-helper",
    );
}

#[test]
fn an_ssh_key_command_prints_the_private_key() {
    let sb = Sandbox::without_key();
    let public = ssh_keygen(&sb, "id", "");
    sb.write("a.env", "A=1\n");
    sb.ok(&["encrypt", "--age", &public, "-i", "a.env"]);
    let out = sb.run_with(
        &["decrypt", "a.env"],
        &[("SOPS_AGE_SSH_PRIVATE_KEY_CMD", "cat id")],
    );
    assert_success(&out, &["decrypt with an ssh key command"]);
    assert_eq!(stdout(&out), "A=1\n");
}

/// An age identity file encrypted with `passphrase` (a low scrypt work factor: the test
/// is about the prompt, not the KDF), armored or binary.
fn locked_identity(key: &str, passphrase: &str, armored: bool) -> Vec<u8> {
    let mut recipient = age::scrypt::Recipient::new(passphrase.to_string().into());
    recipient.set_work_factor(10);
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .unwrap();
    let mut out = Vec::new();
    let format = if armored {
        age::armor::Format::AsciiArmor
    } else {
        age::armor::Format::Binary
    };
    let armor = age::armor::ArmoredWriter::wrap_output(&mut out, format).unwrap();
    let mut w = encryptor.wrap_output(armor).unwrap();
    w.write_all(key.as_bytes()).unwrap();
    w.finish().unwrap().finish().unwrap();
    out
}

/// Run coffer in a session whose terminal is a pseudo-terminal: answer `answer` once
/// `prompt` shows there. Returns the output and everything the terminal showed.
pub(super) fn on_a_terminal(
    sb: &Sandbox,
    args: &[&str],
    env: &[(&str, &str)],
    prompt: &str,
    answer: &str,
) -> (Output, String) {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().unwrap())
        .unwrap();
    // -c: the terminal on stdin becomes the session's controlling terminal.
    let coffer = std::path::Path::new(env!("CARGO_BIN_EXE_coffer"));
    let mut c = in_own_session(sb, &["-w", "-c"], coffer, args);
    c.stdin(slave).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let child = c.spawn().unwrap();
    // The command holds the terminal's other end: let go of it, or the reads below
    // never see the session end.
    drop(c);
    let mut master = std::fs::File::from(master);
    let mut shown = Vec::new();
    let mut buf = [0u8; 4096];
    // Wait for the prompt before typing: what is typed earlier would be echoed.
    while !String::from_utf8_lossy(&shown).contains(prompt) {
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => shown.extend_from_slice(&buf[..n]),
        }
    }
    if String::from_utf8_lossy(&shown).contains(prompt) {
        master.write_all(format!("{answer}\n").as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    // The session is over: read what is left (EIO once no one holds the terminal).
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        shown.extend_from_slice(&buf[..n]);
    }
    (out, String::from_utf8_lossy(&shown).into_owned())
}

#[test]
fn an_identity_file_behind_a_passphrase_is_asked_for_on_the_terminal_without_echo() {
    let (sb, key) = keyless_sandbox();
    sb.write("a.yaml", "a: secret\n");
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "a.yaml"]);
    for armored in [true, false] {
        let locked = sb.write("locked.age", locked_identity(&key, "open sesame", armored));
        let env = [("SOPS_AGE_KEY_FILE", locked.to_str().unwrap())];
        let (out, shown) = on_a_terminal(
            &sb,
            &["decrypt", "a.yaml"],
            &env,
            "Enter passphrase for identity",
            "open sesame",
        );
        assert_success(&out, &["decrypt with a passphrase", &shown]);
        assert_eq!(stdout(&out), "a: secret\n");
        assert!(
            shown.contains(&format!(
                "Enter passphrase for identity '{}':",
                locked.display()
            )),
            "{shown}"
        );
        assert!(
            !shown.contains("sesame"),
            "the passphrase was echoed: {shown:?}"
        );

        // A wrong passphrase: exit 128, saying so, the file untouched.
        let before = sb.read("a.yaml");
        let (out, _) = on_a_terminal(
            &sb,
            &["decrypt", "a.yaml"],
            &env,
            "Enter passphrase for identity",
            "wrong",
        );
        assert_error(&out, 3, "incorrect passphrase");
        assert_eq!(sb.read("a.yaml"), before);
    }
    // No terminal: one clear line, not a hang.
    let coffer = std::path::Path::new(env!("CARGO_BIN_EXE_coffer"));
    let out = in_own_session(&sb, &["-w"], coffer, &["decrypt", "a.yaml"])
        .env("SOPS_AGE_KEY_FILE", sb.path("locked.age"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_error(&out, 3, "no terminal to ask on");
}

#[test]
fn an_ssh_key_behind_a_passphrase_is_asked_for_once() {
    let sb = Sandbox::without_key();
    let public = ssh_keygen(&sb, "id", "hunter22");
    sb.write("a.env", "A=1\nB=2\n");
    sb.ok(&["encrypt", "--age", &public, "-i", "a.env"]);
    let env = [("SOPS_AGE_SSH_PRIVATE_KEY_FILE", sb.path("id"))];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.to_str().unwrap())).collect();
    let (out, shown) = on_a_terminal(
        &sb,
        &["decrypt", "a.env"],
        &env,
        "Enter passphrase for SSH key",
        "hunter22",
    );
    assert_success(&out, &["decrypt with an ssh passphrase", &shown]);
    assert_eq!(stdout(&out), "A=1\nB=2\n");
    assert_eq!(shown.matches("Enter passphrase").count(), 1, "{shown}");
    assert!(!shown.contains("hunter22"), "echoed: {shown:?}");
    let (out, _) = on_a_terminal(
        &sb,
        &["decrypt", "a.env"],
        &env,
        "Enter passphrase for SSH key",
        "wrong",
    );
    assert_error(&out, 3, "incorrect passphrase");
}
