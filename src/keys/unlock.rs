//! age identities that are not plain text at hand: identity files encrypted with a
//! passphrase (age's scrypt), OpenSSH keys with a passphrase, and commands that print
//! identities (`SOPS_AGE_KEY_CMD`, `SOPS_AGE_SSH_PRIVATE_KEY_CMD`), as sops 3.10 and
//! later read them. Each is unlocked once per process, and only when a file needs it:
//! a passphrase is asked when no identity before it opened the file.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};

use age_core::format::{FileKey, Stanza};
use secrecy::SecretString;
use zeroize::Zeroizing;

use super::{KeyError, Locked};

/// Asks for a passphrase, given the prompt; an error says why none can be had (no
/// terminal, say). The CLI provides it; the library never touches the terminal.
pub type AskPassphrase =
    Arc<dyn Fn(&str) -> Result<SecretString, crate::prompt::Unanswered> + Send + Sync>;

/// An age identity that can be shared between threads.
pub type Ident = Box<dyn age::Identity + Send + Sync>;

/// Why identities could not be used (no terminal, a wrong passphrase, a command that
/// failed), for the error that no identity opened a file.
pub type Failures = Arc<Mutex<Vec<String>>>;

pub(crate) fn note(failures: &Failures, why: String) {
    let mut f = failures.lock().unwrap_or_else(|p| p.into_inner());
    if !f.contains(&why) {
        f.push(why);
    }
}

/// Whether identity-file text is an encrypted age file (binary or armored), as sops
/// tells them apart.
pub fn is_encrypted_identity(contents: &[u8]) -> bool {
    contents.starts_with(b"age-encryption") || contents.starts_with(b"-----BEGIN AGE")
}

/// An identity file encrypted with a passphrase: decrypted on first use.
pub struct LockedFile {
    origin: String,
    contents: Zeroizing<Vec<u8>>,
    ask: Option<AskPassphrase>,
    /// `None` until tried; then the identities inside, or nothing (the failure is noted).
    state: Mutex<Option<Vec<Ident>>>,
    failures: Failures,
    parse: ParseIdentities,
}

/// Reads decrypted identity-file text (from where it came) into identities.
pub type ParseIdentities = Arc<dyn Fn(&[u8], &str) -> Result<Vec<Ident>, KeyError> + Send + Sync>;

impl LockedFile {
    /// `parse` reads the decrypted identity-file text.
    pub fn new(
        origin: &str,
        contents: Zeroizing<Vec<u8>>,
        ask: Option<AskPassphrase>,
        failures: Failures,
        parse: ParseIdentities,
    ) -> Self {
        LockedFile {
            origin: origin.to_string(),
            contents,
            ask,
            state: Mutex::new(None),
            failures,
            parse,
        }
    }

    fn unlock(&self) -> Result<Vec<Ident>, KeyError> {
        let origin = &self.origin;
        let locked = |why: Locked| KeyError::Locked {
            origin: origin.clone(),
            why,
        };
        let ask = self
            .ask
            .as_ref()
            .ok_or_else(|| locked(Locked::NoWayToAsk))?;
        let decryptor = age::Decryptor::new(age::armor::ArmoredReader::new(&self.contents[..]))
            .map_err(|e| locked(Locked::NotEncrypted(e.to_string())))?;
        if !decryptor.is_scrypt() {
            return Err(locked(Locked::NotScrypt));
        }
        let passphrase = ask(&format!("Enter passphrase for identity '{origin}':"))
            .map_err(|e| locked(e.into()))?;
        let identity = age::scrypt::Identity::new(passphrase);
        let mut reader = decryptor
            .decrypt(std::iter::once(&identity as &dyn age::Identity))
            .map_err(|e| match e {
                age::DecryptError::DecryptionFailed | age::DecryptError::NoMatchingKeys => {
                    locked(Locked::Incorrect)
                }
                other => locked(Locked::Undecryptable(other.to_string())),
            })?;
        let mut text = Zeroizing::new(Vec::new());
        reader
            .read_to_end(&mut text)
            .map_err(|e| locked(Locked::Undecryptable(e.to_string())))?;
        (self.parse)(&text, origin)
    }
}

impl age::Identity for LockedFile {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let ids = state.get_or_insert_with(|| {
            self.unlock().unwrap_or_else(|why| {
                note(&self.failures, why.to_string());
                Vec::new()
            })
        });
        ids.iter().find_map(|id| id.unwrap_stanza(stanza))
    }
}

/// The callbacks age asks an encrypted OpenSSH key's passphrase through: asked once,
/// and kept (or the failure kept) for the other files of the run.
#[derive(Clone)]
struct Asker {
    origin: String,
    ask: Option<AskPassphrase>,
    given: Arc<Mutex<Option<Option<SecretString>>>>,
    failures: Failures,
}

impl age::Callbacks for Asker {
    fn display_message(&self, _: &str) {}

    fn confirm(&self, _: &str, _: &str, _: Option<&str>) -> Option<bool> {
        None
    }

    fn request_public_string(&self, _: &str) -> Option<String> {
        None
    }

    fn request_passphrase(&self, _: &str) -> Option<SecretString> {
        let mut given = self.given.lock().unwrap_or_else(|p| p.into_inner());
        given
            .get_or_insert_with(|| {
                let origin = &self.origin;
                let Some(ask) = &self.ask else {
                    note(&self.failures, format!("{origin}: the SSH key is passphrase-protected and there is no way to ask for the passphrase"));
                    return None;
                };
                ask(&format!("Enter passphrase for SSH key '{origin}':"))
                    .map_err(|e| note(&self.failures, format!("{origin}: {e}")))
                    .ok()
            })
            .clone()
    }
}

/// An OpenSSH key with a passphrase. A wrong passphrase is noted and the key then opens
/// nothing, so the other identities are still tried.
pub struct LockedSsh {
    origin: String,
    inner: Ident,
    failures: Failures,
}

impl LockedSsh {
    pub fn new(
        origin: &str,
        key: age::ssh::Identity,
        ask: Option<AskPassphrase>,
        failures: Failures,
    ) -> Self {
        let asker = Asker {
            origin: origin.to_string(),
            ask,
            given: Arc::new(Mutex::new(None)),
            failures: failures.clone(),
        };
        LockedSsh {
            origin: origin.to_string(),
            inner: Box::new(key.with_callbacks(asker)),
            failures,
        }
    }
}

impl age::Identity for LockedSsh {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        match self.inner.unwrap_stanza(stanza)? {
            Ok(key) => Some(Ok(key)),
            Err(_) => {
                note(
                    &self.failures,
                    format!("{}: incorrect passphrase", self.origin),
                );
                None
            }
        }
    }
}

/// A command that prints identities, run with `SOPS_AGE_RECIPIENT` set to the recipient
/// being opened, once per recipient.
#[derive(Clone)]
pub struct KeyCommand {
    /// Where it was set (`SOPS_AGE_KEY_CMD`), for messages.
    pub origin: String,
    /// The command line, split as a shell would split words (no shell runs it).
    pub line: String,
    /// The output is one OpenSSH private key, not age identities.
    pub ssh: bool,
}

/// Reads what a key command printed (its output, where it was set, whether SSH).
pub type LoadOutput<'a> =
    &'a dyn Fn(Zeroizing<Vec<u8>>, &str, bool) -> Result<Vec<Ident>, KeyError>;

/// The identities each command printed, by command index and recipient.
type ByRecipient = HashMap<(usize, String), Arc<Vec<Ident>>>;

/// The identities commands printed, by command and recipient.
#[derive(Default)]
pub struct Ran {
    by: Mutex<ByRecipient>,
}

impl Ran {
    /// The identities command `k` prints for `recipient`, running it the first time.
    pub fn identities(
        &self,
        k: usize,
        command: &KeyCommand,
        recipient: &str,
        load: LoadOutput,
        failures: &Failures,
    ) -> Arc<Vec<Ident>> {
        let mut by = self.by.lock().unwrap_or_else(|p| p.into_inner());
        by.entry((k, recipient.to_string()))
            .or_insert_with(|| {
                let ids = run(command, recipient)
                    .and_then(|out| load(out, &command.origin, command.ssh))
                    .unwrap_or_else(|why| {
                        note(failures, why.to_string());
                        Vec::new()
                    });
                Arc::new(ids)
            })
            .clone()
    }
}

/// Run a key command; its standard output, kept secret. Its standard error goes to the
/// user (it may ask for a PIN there); its input is the terminal's. As gpg, it gets no
/// key source of coffer's (the identities at hand, the MFA code), only the recipient.
fn run(command: &KeyCommand, recipient: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let origin = &command.origin;
    let words = shlex::split(&command.line)
        .filter(|w| !w.is_empty())
        .ok_or_else(|| KeyError::CommandLine {
            origin: origin.clone(),
        })?;
    let mut cmd = std::process::Command::new(&words[0]);
    super::remove_key_sources(
        &mut cmd,
        std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()),
    );
    let out = cmd
        .args(&words[1..])
        .env("SOPS_AGE_RECIPIENT", recipient)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|source| KeyError::CommandSpawn {
            origin: origin.clone(),
            command: words[0].clone(),
            source,
        })?;
    let stdout = Zeroizing::new(out.stdout);
    if !out.status.success() {
        return Err(KeyError::CommandFailed {
            origin: origin.clone(),
            command: words[0].clone(),
            status: out.status,
        });
    }
    Ok(stdout)
}
