//! age plugins: a recipient `age1coffertest1…` and an identity `AGE-PLUGIN-COFFERTEST-1…`
//! handed to `age-plugin-coffertest` on PATH, a small plugin of the test data speaking
//! the real plugin protocol, with coffer in both front ends and with the real sops.

use std::ffi::OsString;

use super::age_keys::on_a_terminal;
use super::common::*;

/// The test plugin on PATH in a sandbox, and one key of it.
struct Plugin {
    /// PATH with the plugin (and coffer) on it.
    path: OsString,
    recipient: String,
    identity: String,
}

impl Plugin {
    /// The plugin copied into the sandbox's `plugins/`, and the key named `name`.
    fn install(sb: &Sandbox, name: &str) -> Plugin {
        let dir = sb.path("plugins");
        std::fs::create_dir_all(&dir).unwrap();
        let bin = dir.join("age-plugin-coffertest");
        std::fs::copy(testdata("age-plugin/age-plugin-coffertest"), &bin).unwrap();
        let rest = path_with_coffer();
        let path =
            std::env::join_paths(std::iter::once(dir).chain(std::env::split_paths(&rest))).unwrap();
        let (recipient, identity) = Plugin::key(name);
        Plugin {
            path,
            recipient,
            identity,
        }
    }

    /// A recipient and identity of the plugin sharing the data `name`.
    fn key(name: &str) -> (String, String) {
        use bech32::ToBase32;
        let data = name.as_bytes().to_base32();
        let encode = |hrp: &str| bech32::encode(hrp, &data, bech32::Variant::Bech32).unwrap();
        (
            encode("age1coffertest"),
            encode("age-plugin-coffertest-").to_uppercase(),
        )
    }

    fn path(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// What the plugin logs for this key: its Bech32 data, less the checksum.
    fn data(&self) -> &str {
        let data = self.recipient.rsplit('1').next().unwrap();
        &data[..data.len() - 6]
    }

    /// coffer with the plugin on PATH encrypts `file` in place for this key.
    fn encrypt(&self, sb: &Sandbox, file: &str) {
        let out = sb.run_with(
            &["encrypt", "--age", &self.recipient, "-i", file],
            &[("PATH", self.path())],
        );
        assert_success(&out, &["encrypt", file, "for the plugin"]);
    }
}

/// A sandbox whose own identity is not where coffer or sops look.
fn keyless() -> Sandbox {
    let sb = Sandbox::new();
    std::fs::remove_file(sb.key_file()).unwrap();
    sb
}

#[test]
fn a_plugin_key_wraps_and_opens_files_in_both_front_ends_and_with_the_real_sops() {
    let sb = keyless();
    let plugin = Plugin::install(&sb, "alice");
    let log = sb.path("plugin.log");
    let log = log.to_str().unwrap();
    sb.write("a.yaml", "db: {password: hunter2}\n");
    let out = sb.run_with(
        &["encrypt", "--age", &plugin.recipient, "-i", "a.yaml"],
        &[("PATH", plugin.path()), ("COFFERTEST_LOG", log)],
    );
    assert_success(&out, &["encrypt for a plugin recipient"]);
    let text = sb.read_str("a.yaml");
    assert!(!text.contains("hunter2"));
    assert!(
        text.contains(&format!("recipient: {}", plugin.recipient)),
        "{text}"
    );
    assert_eq!(
        sb.read_str("plugin.log"),
        format!("wrap {}\n", plugin.data())
    );

    // Opened through the plugin, the identity in SOPS_AGE_KEY or in a key file; the
    // plugin's message reaches the user.
    sb.write(
        "plugin-key.txt",
        format!("# coffertest\n{}\n", plugin.identity),
    );
    for (name, value) in [
        ("SOPS_AGE_KEY", plugin.identity.clone()),
        (
            "SOPS_AGE_KEY_FILE",
            sb.path("plugin-key.txt").to_str().unwrap().to_string(),
        ),
    ] {
        let out = sb.run_with(
            &["decrypt", "a.yaml"],
            &[
                ("PATH", plugin.path()),
                (name, &value),
                ("COFFERTEST_LOG", log),
            ],
        );
        assert_success(&out, &["decrypt with", name]);
        assert_eq!(stdout(&out), "db: {password: hunter2}\n");
        assert!(
            stderr(&out).contains("age: touch the coffertest key"),
            "{}",
            stderr(&out)
        );
        let sops = sb
            .as_sops()
            .env("PATH", plugin.path())
            .env(name, &value)
            .args(["decrypt", "a.yaml"])
            .output()
            .unwrap();
        assert_success(&sops, &["coffer as sops, decrypt with", name]);
        assert_eq!(stdout(&sops), "db: {password: hunter2}\n");
    }

    // The real sops opens coffer's file through the same plugin, and coffer opens what
    // the real sops wrote for it.
    let real = sb.sops_only(
        &[
            ("PATH", plugin.path.as_os_str()),
            ("SOPS_AGE_KEY", plugin.identity.as_ref()),
        ],
        &["decrypt", "a.yaml"],
    );
    assert_success(&real, &["the real sops decrypts coffer's plugin file"]);
    assert_eq!(stdout(&real), "db:\n    password: hunter2\n");
    sb.write("b.env", "TOKEN=abc\n");
    let real = sb.sops_env(
        &[("PATH", plugin.path.as_os_str())],
        &["encrypt", "--age", &plugin.recipient, "-i", "b.env"],
    );
    assert_success(&real, &["the real sops encrypts for the plugin"]);
    let out = sb.run_with(
        &["decrypt", "b.env"],
        &[("PATH", plugin.path()), ("SOPS_AGE_KEY", &plugin.identity)],
    );
    assert_success(&out, &["coffer decrypts the real sops's plugin file"]);
    assert_eq!(stdout(&out), "TOKEN=abc\n");

    // Another key of the plugin opens nothing: the error names the recipient.
    let (_, bob) = Plugin::key("bob");
    let out = sb.run_with(
        &["decrypt", "a.yaml"],
        &[("PATH", plugin.path()), ("SOPS_AGE_KEY", &bob)],
    );
    assert_error(&out, 3, &plugin.recipient);
}

#[test]
fn files_for_native_recipients_never_start_a_plugin() {
    let sb = Sandbox::new();
    let plugin = Plugin::install(&sb, "alice");
    let log = sb.path("plugin.log");
    sb.write("a.yaml", "a: 1\n");
    let both = format!("{},{}", plugin.recipient, sb.recipient);
    let out = sb.run_with(
        &["encrypt", "--age", &both, "-i", "a.yaml"],
        &[("PATH", plugin.path())],
    );
    assert_success(&out, &["encrypt for both"]);
    sb.write("n.yaml", "n: 2\n");
    sb.ok(&["encrypt", "--age", &sb.recipient, "-i", "n.yaml"]);

    // The plugin identity first, the X25519 one after it, as a key file lists them.
    let key = std::fs::read_to_string(sb.key_file()).unwrap();
    let keys = sb.write("keys.txt", format!("{}\n{key}", plugin.identity));
    let env = [
        ("PATH", plugin.path()),
        ("COFFER_AGE_KEY_FILE", keys.to_str().unwrap()),
        ("COFFERTEST_LOG", log.to_str().unwrap()),
    ];
    // keygen --show names the X25519 recipient; only the plugin knows its own.
    let shown = sb.ok(&["keygen", "--show", "-o", keys.to_str().unwrap()]);
    assert_eq!(stdout(&shown), format!("{}\n", sb.recipient));

    let out = sb.run_with(&["decrypt", "n.yaml"], &env);
    assert_success(&out, &["decrypt a file for X25519 alone"]);
    assert!(
        !log.exists(),
        "the plugin ran for an X25519 file: {}",
        std::fs::read_to_string(&log).unwrap()
    );
    // A file for both: its first entry is the plugin's, which the plugin opens.
    let out = sb.run_with(&["decrypt", "a.yaml"], &env);
    assert_success(&out, &["decrypt a file for both"]);
    let ran = std::fs::read_to_string(&log).unwrap();
    assert_eq!(ran, format!("unwrap {}\n", plugin.data()));
}

#[test]
fn a_plugin_not_on_path_is_one_line_naming_its_program() {
    let sb = keyless();
    let plugin = Plugin::install(&sb, "alice");
    sb.write("a.yaml", "a: secret\n");
    let out = sb.run(&["encrypt", "--age", &plugin.recipient, "-i", "a.yaml"]);
    assert_error(&out, 1, "age-plugin-coffertest is not on PATH");
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert_eq!(
        sb.read_str("a.yaml"),
        "a: secret\n",
        "the file is untouched"
    );

    plugin.encrypt(&sb, "a.yaml");
    let out = sb.run_with(
        &["decrypt", "a.yaml"],
        &[("SOPS_AGE_KEY", &plugin.identity)],
    );
    assert_error(&out, 3, "age-plugin-coffertest is not on PATH");
}

#[test]
fn a_plugin_asks_its_pin_on_the_terminal_without_echo() {
    let sb = keyless();
    let plugin = Plugin::install(&sb, "alice");
    sb.write("a.yaml", "a: secret\n");
    plugin.encrypt(&sb, "a.yaml");
    let env = [
        ("PATH", plugin.path()),
        ("SOPS_AGE_KEY", plugin.identity.as_str()),
        ("COFFERTEST_PIN", "2468"),
    ];
    let (out, shown) = on_a_terminal(&sb, &["decrypt", "a.yaml"], &env, "Enter PIN", "2468");
    assert_success(&out, &["decrypt with a PIN", &shown]);
    assert_eq!(stdout(&out), "a: secret\n");
    assert!(shown.contains("Enter PIN for coffertest:"), "{shown}");
    assert!(!shown.contains("2468"), "the PIN was echoed: {shown:?}");

    // A wrong PIN: the plugin's words, on the error's hint line after its message.
    let (out, _) = on_a_terminal(&sb, &["decrypt", "a.yaml"], &env, "Enter PIN", "1111");
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        stderr(&out).lines().last().unwrap(),
        "hint: age: inline key #1: 'age-plugin-coffertest' couldn't use an identity: the PIN was not given or is wrong"
    );

    // No terminal: said in the error, no hang.
    let coffer = std::path::Path::new(env!("CARGO_BIN_EXE_coffer"));
    let out = in_own_session(&sb, &["-w"], coffer, &["decrypt", "a.yaml"])
        .envs(env)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains(
            "hint: age: inline key #1: a passphrase is needed and there is no terminal to ask on"
        ),
        "{}",
        stderr(&out)
    );
}
