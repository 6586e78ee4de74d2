//! PGP master keys through the `gpg` binary, as sops uses them by default: gpg-agent,
//! smartcards and `GNUPGHOME` keep working, and `SOPS_GPG_EXEC` names another binary.
//! The data key (or a Shamir share of it) goes to gpg on stdin and comes back on stdout,
//! never through an argument or a file.

use std::io::Write;
use std::process::{Command, Stdio};

use zeroize::Zeroizing;

use super::{KeyError, MasterKey};
use crate::metadata::{Metadata, PgpEntry};
use crate::{Error, Result};

pub struct PgpKeys {
    gpg: String,
}

/// What gpg printed: stdout, and whether its status lines say it decrypted.
struct Ran {
    stdout: Zeroizing<Vec<u8>>,
    status_ok: bool,
}

impl Default for PgpKeys {
    fn default() -> PgpKeys {
        PgpKeys::new(None)
    }
}

impl PgpKeys {
    /// PGP keys through `gpg` (a program name or path; `gpg` when not given, as sops's
    /// `SOPS_GPG_EXEC`).
    pub fn new(gpg: Option<String>) -> PgpKeys {
        PgpKeys {
            gpg: gpg
                .filter(|g| !g.trim().is_empty())
                .unwrap_or_else(|| "gpg".into()),
        }
    }

    /// Run gpg with `args`, `input` on stdin; its stdout, or its stderr's last line.
    fn run(&self, args: &[&str], input: &[u8]) -> std::result::Result<Ran, KeyError> {
        let mut cmd = Command::new(&self.gpg);
        // gpg needs GNUPGHOME and its agent's variables, not the age identities.
        super::remove_key_sources(
            &mut cmd,
            std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()),
        );
        let mut child = cmd
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| KeyError::Spawn {
                program: self.gpg.clone(),
                source,
            })?;
        let mut stdin = child.stdin.take().expect("piped");
        // Written from another thread: gpg may fill its stdout before reading all of stdin.
        let input = Zeroizing::new(input.to_vec());
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output().map_err(|source| KeyError::Spawn {
            program: self.gpg.clone(),
            source,
        })?;
        let _ = writer.join();
        let stdout = Zeroizing::new(out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            let last = err
                .lines()
                .rfind(|l| !l.trim().is_empty() && !l.starts_with("[GNUPG:]"));
            return Err(KeyError::Gpg(last.map_or_else(
                || format!("{} failed ({})", self.gpg, out.status),
                |l| l.trim().to_string(),
            )));
        }
        Ok(Ran {
            stdout,
            status_ok: err
                .lines()
                .any(|l| l.starts_with("[GNUPG:] DECRYPTION_OKAY")),
        })
    }

    /// `secret` (a data key, or a Shamir share of one) encrypted for `fingerprint`, with
    /// sops's arguments.
    pub fn wrap(&self, secret: &[u8], fingerprint: &str) -> Result<PgpEntry> {
        let fp = fingerprint.trim();
        let args = [
            "--no-default-recipient",
            "--yes",
            "--encrypt",
            "-a",
            "-r",
            fp,
            "--trusted-key",
            fp,
            "--no-encrypt-to",
        ];
        let fail = |error| Error::Key {
            key: format!("pgp:{fp}"),
            error,
        };
        let out = self.run(&args, secret).map_err(fail)?;
        let enc = String::from_utf8(out.stdout.to_vec()).map_err(|_| fail(KeyError::NoArmor))?;
        Ok(PgpEntry {
            fp: fp.to_string(),
            created_at: crate::metadata::now_rfc3339(),
            enc,
        })
    }

    fn open(&self, entry: &PgpEntry) -> std::result::Result<Zeroizing<Vec<u8>>, KeyError> {
        // A data key or share is 32 or 33 bytes: gpg stops at 1 KiB, so a crafted message
        // (a compressed bomb) cannot fill memory; and it must have been encrypted, not
        // merely signed or stored.
        let out = self.run(
            &[
                "--use-agent",
                "--quiet",
                "--max-output",
                "1024",
                "--status-fd",
                "2",
                "-d",
            ],
            entry.enc.as_bytes(),
        )?;
        if !out.status_ok {
            return Err(KeyError::NotDecrypted);
        }
        Ok(out.stdout)
    }
}

impl MasterKey for PgpKeys {
    fn kind(&self) -> &'static str {
        "pgp"
    }

    fn unwrap(
        &self,
        meta: &Metadata,
    ) -> std::result::Result<Option<Zeroizing<Vec<u8>>>, Vec<String>> {
        super::first_opened(&meta.pgp, |e| format!("pgp:{}", e.fp), |e| self.open(e))
    }
}
