use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// PATH with the coffer under test first, as git finds it when it runs the filter.
pub fn path_with_coffer() -> std::ffi::OsString {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_coffer"))
        .parent()
        .unwrap()
        .to_path_buf();
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(&rest))).unwrap()
}

pub fn testdata(rel: &str) -> PathBuf {
    repo().join("testdata").join(rel)
}

/// The sops binary that scripts/test installs; the interop tests need it.
pub fn sops_bin() -> PathBuf {
    let p = std::env::var_os("COFFER_TEST_SOPS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/sops"));
    assert!(
        p.exists(),
        "sops not found at {}: run the tests with scripts/test, which installs it",
        p.display()
    );
    p
}

/// A temporary directory with its own HOME holding a fresh age identity.
pub struct Sandbox {
    pub dir: TempDir,
    pub recipient: String,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("coffer-test-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        let mut sb = Sandbox {
            dir,
            recipient: String::new(),
        };
        let out = sb.ok(&["keygen"]);
        sb.recipient = String::from_utf8(out.stdout).unwrap().trim().to_string();
        assert!(
            sb.recipient.starts_with("age1"),
            "keygen printed {:?}",
            sb.recipient
        );
        sb
    }

    /// A sandbox without any identity.
    pub fn without_key() -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("coffer-test-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        Sandbox {
            dir,
            recipient: String::new(),
        }
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn key_file(&self) -> PathBuf {
        self.home().join(".config/coffer/age/keys.txt")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, contents).unwrap();
        p
    }

    /// Write `plain` to `rel` and encrypt it in place for this sandbox's identity.
    pub fn encrypted(&self, rel: &str, plain: impl AsRef<[u8]>) -> PathBuf {
        let p = self.write(rel, plain);
        self.ok(&["encrypt", "--age", &self.recipient, "-i", rel]);
        p
    }

    /// An executable editor script in the sandbox; its path, for EDITOR.
    pub fn editor(&self, name: &str, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let p = self.write(name, format!("#!/bin/sh\n{body}\n"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.to_str().unwrap().to_string()
    }

    /// A sample of `testdata/plain/`, encrypted in the sandbox under the same name.
    pub fn encrypted_sample(&self, name: &str) -> PathBuf {
        self.encrypted(
            name,
            std::fs::read(testdata(&format!("plain/{name}"))).unwrap(),
        )
    }

    pub fn copy(&self, from: &Path, rel: &str) -> PathBuf {
        self.write(rel, std::fs::read(from).unwrap())
    }

    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path(rel)).unwrap()
    }

    pub fn read_str(&self, rel: &str) -> String {
        String::from_utf8(self.read(rel)).unwrap()
    }

    /// `coffer` with a cleared environment: only PATH, HOME and what the test adds.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_coffer"));
        c.env_clear()
            .env("PATH", path_with_coffer())
            .env("HOME", self.home())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("TMPDIR", self.dir.path())
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = self.cmd();
        for (k, v) in env {
            c.env(k, v);
        }
        c.args(args).output().unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert_success(&out, args);
        out
    }

    pub fn stdin(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write;
        let mut child = self
            .cmd()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // coffer may refuse its arguments before reading stdin: a closed pipe is fine.
        if let Err(e) = child.stdin.take().unwrap().write_all(input) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
        child.wait_with_output().unwrap()
    }

    /// The real git, with coffer on PATH, no user or system config, and an identity.
    pub fn git_in(&self, dir: &str, args: &[&str]) -> Output {
        self.git_env(dir, args, &[])
    }

    pub fn git_env(&self, dir: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = self.as_git_user("git");
        c.current_dir(self.path(dir));
        for (k, v) in env {
            c.env(k, v);
        }
        c.args(args).output().unwrap()
    }

    /// `program` as someone using git here runs it: coffer first on PATH, this sandbox's
    /// HOME, no user or system git config, a commit identity, no stdin.
    pub fn as_git_user(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", path_with_coffer())
            .env("HOME", self.home())
            .env("TMPDIR", self.dir.path())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        c
    }

    /// git that must succeed; returns stdout.
    pub fn git(&self, dir: &str, args: &[&str]) -> String {
        let out = self.git_in(dir, args);
        assert_success(&out, &[&["git"], args].concat());
        stdout(&out)
    }

    /// coffer run inside `dir`.
    pub fn coffer_in(&self, dir: &str, args: &[&str]) -> Output {
        self.cmd()
            .current_dir(self.path(dir))
            .args(args)
            .output()
            .unwrap()
    }

    /// coffer under the name `sops` (a symlink in the sandbox), with a cleared
    /// environment as [`Sandbox::cmd`] has it plus this sandbox's identity for sops.
    pub fn as_sops(&self) -> Command {
        let link = self.path("bin/sops");
        if !link.exists() {
            std::fs::create_dir_all(self.path("bin")).unwrap();
            std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_coffer"), &link).unwrap();
        }
        let mut c = Command::new(link);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home())
            .env("TMPDIR", self.dir.path())
            .env("SOPS_AGE_KEY_FILE", self.key_file())
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        c
    }

    /// The real sops, with this sandbox's identity.
    pub fn sops(&self, args: &[&str]) -> Output {
        self.sops_env(&[], args)
    }

    /// The real sops with no identity but what `vars` give it (its key file an empty
    /// one).
    pub fn sops_only(&self, vars: &[(&str, &std::ffi::OsStr)], args: &[&str]) -> Output {
        let empty = self.write("empty.txt", "");
        let mut vars = vars.to_vec();
        vars.push(("SOPS_AGE_KEY_FILE", empty.as_os_str()));
        self.sops_env(&vars, args)
    }

    /// The real sops, with this sandbox's identity unless `vars` set another.
    pub fn sops_env(&self, vars: &[(&str, &std::ffi::OsStr)], args: &[&str]) -> Output {
        Command::new(sops_bin())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home())
            .env("SOPS_AGE_KEY_FILE", self.key_file())
            .env("SOPS_DISABLE_VERSION_CHECK", "1")
            .envs(vars.iter().copied())
            .current_dir(self.dir.path())
            .args(args)
            .output()
            .unwrap()
    }
}

pub fn assert_success(out: &Output, what: &[&str]) {
    assert!(
        out.status.success(),
        "{what:?} failed with {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Assert exit code and that stderr is exactly one `coffer:` error line (plus hints).
pub fn assert_error(o: &Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("coffer: "),
        "first stderr line: {first:?}"
    );
    assert!(err.contains(needle), "stderr {err:?} lacks {needle:?}");
    for line in err.lines().skip(1) {
        assert!(
            line.starts_with("hint: "),
            "unexpected stderr line {line:?} in {err:?}"
        );
    }
}

pub fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Lines that differ between two texts of the same line count.
pub fn changed_lines(a: &str, b: &str) -> Vec<String> {
    assert_eq!(
        a.lines().count(),
        b.lines().count(),
        "line count changed:\n{a}\n---\n{b}"
    );
    a.lines()
        .zip(b.lines())
        .filter(|(x, y)| x != y)
        .map(|(x, _)| x.to_string())
        .collect()
}

/// The first `ENC[…]` value of an encrypted file: it changes when the data key does.
pub fn first_enc(text: &str) -> String {
    text[text.find("ENC[").expect("an encrypted value")..]
        .split(']')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A command started with its output captured, to be waited for.
pub trait Started {
    fn started(&mut self) -> std::process::Child;
}

impl Started for std::process::Command {
    fn started(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the command starts")
    }
}

/// `program` in the sandbox in a session of its own (`setsid` with `flags`), with a
/// cleared environment: only PATH, HOME and TMPDIR, and no terminal unless `-c` gives it
/// the one on stdin.
pub fn in_own_session(sb: &Sandbox, flags: &[&str], program: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("setsid");
    c.args(flags)
        .arg(program)
        .args(args)
        .env_clear()
        .env("PATH", path_with_coffer())
        .env("HOME", sb.home())
        .env("TMPDIR", sb.dir.path())
        .current_dir(sb.dir.path());
    c
}

/// A new ed25519 SSH key at `rel` in the sandbox (with `passphrase`, or none when
/// empty); its public key line.
pub fn ssh_keygen(sb: &Sandbox, rel: &str, passphrase: &str) -> String {
    let gen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", passphrase, "-C", "test", "-f"])
        .arg(sb.path(rel))
        .output()
        .unwrap();
    assert_success(&gen, &["ssh-keygen"]);
    sb.read_str(&format!("{rel}.pub")).trim().to_string()
}
