//! age recipients and identities. The data key is encrypted to each recipient on its
//! own and stored ASCII-armored, one metadata entry per recipient, as sops does.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use zeroize::{Zeroize, Zeroizing};

use super::plugin::{self, PluginIdentity, Tell};
use super::unlock::{self, AskPassphrase, Failures, Ident, KeyCommand, LockedFile, LockedSsh};
use super::{KeyError, MasterKey};
use crate::metadata::{AgeEntry, Metadata};
use crate::{Error, Result};

/// Where identities come from, resolved by the caller (the CLI reads the environment).
#[derive(Default)]
pub struct IdentitySources {
    /// Identity file contents given inline (`COFFER_AGE_KEY`, `SOPS_AGE_KEY`).
    pub inline: Vec<SecretString>,
    /// Identity files, in the order they are tried; missing ones are skipped.
    pub files: Vec<PathBuf>,
    /// OpenSSH private keys (ed25519 or RSA); missing ones are skipped.
    pub ssh_files: Vec<PathBuf>,
    /// Commands that print identities (`SOPS_AGE_KEY_CMD`, `SOPS_AGE_SSH_PRIVATE_KEY_CMD`),
    /// run only when the identities at hand open nothing.
    pub commands: Vec<KeyCommand>,
    /// How to ask for the passphrase of an encrypted identity file or SSH key; without
    /// it such a key opens nothing, and the error says why. Plugins ask their PINs so.
    pub ask: Option<AskPassphrase>,
    /// Where an age plugin's messages to the user go; without it they are dropped.
    pub tell: Option<Tell>,
}

impl IdentitySources {
    /// The documented lookup: `COFFER_AGE_KEY`, `COFFER_AGE_KEY_FILE`, `SOPS_AGE_KEY`,
    /// `SOPS_AGE_KEY_FILE`, then coffer's and sops's default key files under
    /// `$XDG_CONFIG_HOME` (or `~/.config`); SSH keys; then the key commands.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Self {
        let mut s = IdentitySources::default();
        for (inline, file) in [
            ("COFFER_AGE_KEY", "COFFER_AGE_KEY_FILE"),
            ("SOPS_AGE_KEY", "SOPS_AGE_KEY_FILE"),
        ] {
            if let Some(v) = env(inline).filter(|v| !v.is_empty()) {
                s.inline.push(SecretString::from(v));
            }
            if let Some(v) = env(file).filter(|v| !v.is_empty()) {
                s.files.push(PathBuf::from(v));
            }
        }
        if let Some(config) = config_dir(&env) {
            s.files.push(default_key_file(&config));
            s.files
                .push(config.join("sops").join("age").join("keys.txt"));
        }
        // As sops does: an explicit ssh key, else the usual ones in ~/.ssh.
        let explicit = [
            "COFFER_AGE_SSH_PRIVATE_KEY_FILE",
            "SOPS_AGE_SSH_PRIVATE_KEY_FILE",
        ]
        .iter()
        .find_map(|k| env(k).filter(|v| !v.is_empty()));
        match (explicit, env("HOME").filter(|h| !h.is_empty())) {
            (Some(f), _) => s.ssh_files.push(PathBuf::from(f)),
            (None, Some(home)) => {
                let ssh = Path::new(&home).join(".ssh");
                s.ssh_files.push(ssh.join("id_ed25519"));
                s.ssh_files.push(ssh.join("id_rsa"));
            }
            (None, None) => {}
        }
        for (name, ssh) in [
            ("COFFER_AGE_KEY_CMD", false),
            ("SOPS_AGE_KEY_CMD", false),
            ("COFFER_AGE_SSH_PRIVATE_KEY_CMD", true),
            ("SOPS_AGE_SSH_PRIVATE_KEY_CMD", true),
        ] {
            if let Some(line) = env(name).filter(|v| !v.trim().is_empty()) {
                s.commands.push(KeyCommand {
                    origin: name.to_string(),
                    line,
                    ssh,
                });
            }
        }
        s
    }
}

pub fn config_dir(env: &impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    env("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            env("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| Path::new(&h).join(".config"))
        })
}

pub fn default_key_file(config_dir: &Path) -> PathBuf {
    config_dir.join("coffer").join("age").join("keys.txt")
}

/// All age identities this process has.
pub struct AgeKeys {
    identities: Vec<Ident>,
    /// Where they came from, for error messages.
    origins: Vec<String>,
    /// Keys the git filter's record of seen plaintext (`git::seen`), from the first
    /// X25519 identity.
    seen_key: Option<Zeroizing<[u8; 32]>>,
    /// The recipients of the X25519 identities: an entry named for one of them must open
    /// with it.
    mine: Vec<String>,
    commands: Vec<KeyCommand>,
    ran: unlock::Ran,
    ask: Option<AskPassphrase>,
    /// How plugins reach the user.
    ui: plugin::Ui,
    failures: Failures,
}

impl AgeKeys {
    pub fn load(sources: &IdentitySources) -> Result<Self> {
        let mut keys = AgeKeys {
            identities: Vec::new(),
            origins: Vec::new(),
            seen_key: None,
            mine: Vec::new(),
            commands: Vec::new(),
            ran: unlock::Ran::default(),
            ask: sources.ask.clone(),
            ui: plugin::Ui {
                tell: sources.tell.clone(),
                ask: sources.ask.clone(),
                failures: None,
            },
            failures: Failures::default(),
        };
        // Inline keys may stand several to a line (sops 3.10 and later).
        for (i, inline) in sources.inline.iter().enumerate() {
            keys.add(
                inline.expose_secret().as_bytes(),
                &format!("inline key #{}", i + 1),
                true,
            )?;
        }
        for file in &sources.files {
            match std::fs::read(file) {
                Ok(bytes) => {
                    let bytes = Zeroizing::new(bytes);
                    keys.add(&bytes, &file.display().to_string(), false)?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(file, e)),
            }
        }
        for file in &sources.ssh_files {
            let bytes = match std::fs::read(file) {
                Ok(b) => Zeroizing::new(b),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(file, e)),
            };
            let name = file.display().to_string();
            // Unsupported keys are skipped: decryption then reports that no identity
            // matched, naming where it looked.
            if let Some(id) = keys.ssh_identity(&bytes, &name) {
                keys.identities.push(id);
                keys.origins.push(name);
            }
        }
        keys.commands = sources.commands.clone();
        Ok(keys)
    }

    fn add(&mut self, contents: &[u8], origin: &str, several_to_a_line: bool) -> Result<()> {
        if unlock::is_encrypted_identity(contents) {
            let locked = self.locked_file(origin, Zeroizing::new(contents.to_vec()));
            self.identities.push(locked);
            self.origins.push(origin.to_string());
            return Ok(());
        }
        let words = parse_identities(
            contents,
            origin,
            several_to_a_line,
            &self.ui,
            &self.failures,
        )?;
        for word in words {
            let id = match word {
                Word::Plugin(id) => {
                    self.identities.push(Box::new(id));
                    continue;
                }
                Word::Native(id) => id,
            };
            if self.seen_key.is_none() {
                self.seen_key = Some(id.derive(b"coffer git filter: seen plaintext"));
            }
            self.mine.push(id.recipient());
            self.identities.push(Box::new(id));
        }
        self.origins.push(origin.to_string());
        Ok(())
    }

    /// An OpenSSH private key's identity; one with a passphrase asks for it when used.
    fn ssh_identity(&self, bytes: &[u8], origin: &str) -> Option<Ident> {
        match age::ssh::Identity::from_buffer(bytes, Some(origin.to_string())).ok()? {
            id @ age::ssh::Identity::Unencrypted(_) => Some(Box::new(id)),
            id @ age::ssh::Identity::Encrypted(_) => Some(Box::new(LockedSsh::new(
                origin,
                id,
                self.ask.clone(),
                self.failures.clone(),
            ))),
            age::ssh::Identity::Unsupported(_) => None,
        }
    }

    /// What a key command printed, as identities.
    fn output_identities(
        &self,
        out: Zeroizing<Vec<u8>>,
        origin: &str,
        ssh: bool,
    ) -> std::result::Result<Vec<Ident>, KeyError> {
        if ssh {
            return self
                .ssh_identity(&out, origin)
                .map(|id| vec![id])
                .ok_or_else(|| KeyError::NotSshKey {
                    origin: origin.to_string(),
                });
        }
        if unlock::is_encrypted_identity(&out) {
            return Ok(vec![self.locked_file(origin, out)]);
        }
        plain_identities(&out, origin, &self.ui, &self.failures)
    }

    /// An identity file behind a passphrase, asked for when first needed.
    fn locked_file(&self, origin: &str, contents: Zeroizing<Vec<u8>>) -> Ident {
        let (ui, failures) = (self.ui.clone(), self.failures.clone());
        Box::new(LockedFile::new(
            origin,
            contents,
            self.ask.clone(),
            self.failures.clone(),
            Arc::new(move |text: &[u8], origin: &str| {
                plain_identities(text, origin, &ui, &failures)
            }),
        ))
    }

    pub fn is_empty(&self) -> bool {
        self.identities.is_empty() && self.commands.is_empty()
    }
}

/// One identity of an identity file.
enum Word {
    Native(X25519Identity),
    Plugin(PluginIdentity),
}

/// Identity-file text: `AGE-SECRET-KEY-1…` and `AGE-PLUGIN-…` lines and comments (with
/// `several_to_a_line`, keys separated by spaces too).
fn parse_identities(
    contents: &[u8],
    origin: &str,
    several_to_a_line: bool,
    ui: &plugin::Ui,
    failures: &Failures,
) -> std::result::Result<Vec<Word>, KeyError> {
    let text = Zeroizing::new(String::from_utf8_lossy(contents).into_owned());
    let mut ids = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = if several_to_a_line {
            line.split_whitespace().collect()
        } else {
            vec![line]
        };
        for word in words {
            if plugin::is_plugin_identity(word) {
                ids.push(Word::Plugin(PluginIdentity::parse(
                    word, origin, ui, failures,
                )?));
                continue;
            }
            ids.push(Word::Native(X25519Identity::parse(word).ok_or_else(
                || KeyError::NotIdentityFile {
                    origin: origin.to_string(),
                },
            )?));
        }
    }
    Ok(ids)
}

fn plain_identities(
    contents: &[u8],
    origin: &str,
    ui: &plugin::Ui,
    failures: &Failures,
) -> std::result::Result<Vec<Ident>, KeyError> {
    Ok(parse_identities(contents, origin, false, ui, failures)?
        .into_iter()
        .map(|word| match word {
            Word::Native(id) => Box::new(id) as Ident,
            Word::Plugin(id) => Box::new(id) as Ident,
        })
        .collect())
}

impl MasterKey for AgeKeys {
    fn kind(&self) -> &'static str {
        "age"
    }

    fn seen_key(&self) -> Option<Zeroizing<[u8; 32]>> {
        self.seen_key.clone()
    }

    fn unwrap(&self, meta: &Metadata) -> Result<Option<Zeroizing<Vec<u8>>>, Vec<String>> {
        if meta.age.is_empty() {
            return Ok(None);
        }
        if self.is_empty() {
            return Err(vec![
                "age: no identity found (set COFFER_AGE_KEY_FILE or SOPS_AGE_KEY_FILE, or run `coffer keygen`)".into(),
            ]);
        }
        for entry in &meta.age {
            if let Some(key) = self.open(&entry.enc, &self.identities) {
                return Ok(Some(key));
            }
        }
        // Key commands run only now, once per recipient, as sops runs them.
        for entry in &meta.age {
            for (k, command) in self.commands.iter().enumerate() {
                let load = |out, origin: &str, ssh| self.output_identities(out, origin, ssh);
                let ids = self
                    .ran
                    .identities(k, command, &entry.recipient, &load, &self.failures);
                if let Some(key) = self.open(&entry.enc, &ids) {
                    return Ok(Some(key));
                }
            }
        }
        let failures = self
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if !failures.is_empty() {
            return Err(failures.into_iter().map(|f| format!("age: {f}")).collect());
        }
        // An entry named for an identity here that does not open with it was altered:
        // someone else's copy of the data key under this name, say.
        if let Some(e) = meta.age.iter().find(|e| self.mine.contains(&e.recipient)) {
            return Err(vec![format!(
                "age:{}: {}",
                e.recipient,
                crate::keys::ENTRY_ALTERED
            )]);
        }
        Err(meta
            .age
            .iter()
            .map(|e| {
                format!(
                    "age:{}: none of the identities from {} matches",
                    e.recipient,
                    self.origins.join(", ")
                )
            })
            .collect())
    }
}

impl AgeKeys {
    fn open(&self, armored: &str, identities: &[Ident]) -> Option<Zeroizing<Vec<u8>>> {
        let reader = age::armor::ArmoredReader::new(armored.as_bytes());
        let decryptor = age::Decryptor::new(reader).ok()?;
        let ids = identities.iter().map(|i| i.as_ref() as &dyn age::Identity);
        let mut r = decryptor.decrypt(ids).ok()?;
        let mut out = Zeroizing::new(Vec::with_capacity(33));
        r.read_to_end(&mut out).ok()?;
        Some(out)
    }
}

/// Parse a recipient: `age1…`, a plugin's `age1NAME1…` (its plugin on PATH), or an
/// `ssh-ed25519`/`ssh-rsa` public key line.
pub fn parse_recipient(s: &str) -> Result<Box<dyn age::Recipient + Send>> {
    let s = s.trim();
    if plugin::is_plugin_recipient(s) {
        return plugin::recipient(s).map_err(Error::from);
    }
    if s.starts_with("ssh-") {
        return age::ssh::Recipient::from_str(s)
            .map(|r| Box::new(r) as Box<dyn age::Recipient + Send>)
            .map_err(|_| KeyError::NotSshRecipient(s.to_string()).into());
    }
    age::x25519::Recipient::from_str(s)
        .map(|r| Box::new(r) as Box<dyn age::Recipient + Send>)
        .map_err(|_| KeyError::NotAgeRecipient(s.to_string()).into())
}

/// Encrypt the data key to one recipient, armored, as sops stores it.
/// `secret` (a data key, or a Shamir share of one) encrypted to `recipient`.
pub fn wrap(secret: &[u8], recipient: &str) -> Result<AgeEntry> {
    let r = parse_recipient(recipient)?;
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(r.as_ref() as &dyn age::Recipient))
            .map_err(|e| Error::Key {
                key: format!("age:{}", recipient.trim()),
                error: KeyError::Age(plugin::encrypt_error(&e)),
            })?;
    let mut out = Vec::new();
    let io = |e: std::io::Error| Error::Key {
        key: format!("age:{}", recipient.trim()),
        error: KeyError::Age(e.to_string()),
    };
    let armor = age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor)
        .map_err(io)?;
    let mut w = encryptor.wrap_output(armor).map_err(io)?;
    w.write_all(secret).map_err(io)?;
    w.finish().and_then(|a| a.finish()).map_err(io)?;
    let mut enc = String::from_utf8(out).expect("armor is ASCII");
    if !enc.ends_with('\n') {
        enc.push('\n');
    }
    Ok(AgeEntry {
        recipient: recipient.trim().to_string(),
        enc,
    })
}

/// The recipients of the X25519 identities in an identity file's text, in order. A
/// plugin identity is passed over: only its plugin knows its recipient.
pub fn recipients_of(contents: &[u8], origin: &str) -> Result<Vec<String>> {
    let text = Zeroizing::new(String::from_utf8_lossy(contents).into_owned());
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !plugin::is_plugin_identity(l))
        .map(|line| {
            line.parse::<age::x25519::Identity>()
                .map(|id| id.to_public().to_string())
                .map_err(|_| {
                    KeyError::NotIdentityFile {
                        origin: origin.to_string(),
                    }
                    .into()
                })
        })
        .collect()
}

/// A new X25519 identity: the identity-file text and its recipient.
pub fn generate() -> (SecretString, String) {
    let id = age::x25519::Identity::generate();
    let recipient = id.to_public().to_string();
    (id.to_string(), recipient)
}

/// An age X25519 identity whose public key is derived once, not once per file: age's own
/// identity derives it again for every stanza, which was a large part of a checkout's cost.
/// The stanza is unwrapped as the age spec says (c2sp.org/age, X25519 recipient stanza);
/// the age crate does the rest (header MAC, payload).
struct X25519Identity {
    secret: x25519_dalek::StaticSecret,
    public: x25519_dalek::PublicKey,
}

impl X25519Identity {
    /// `AGE-SECRET-KEY-1…`.
    fn parse(s: &str) -> Option<X25519Identity> {
        use bech32::FromBase32;
        let (hrp, data, variant) = bech32::decode(s).ok()?;
        if hrp != "age-secret-key-" || variant != bech32::Variant::Bech32 {
            return None;
        }
        let mut bytes = Zeroizing::new(Vec::<u8>::from_base32(&data).ok()?);
        let secret: [u8; 32] = bytes.as_slice().try_into().ok()?;
        bytes.zeroize();
        let secret = x25519_dalek::StaticSecret::from(secret);
        let public = x25519_dalek::PublicKey::from(&secret);
        Some(X25519Identity { secret, public })
    }

    /// The recipient (`age1…`) of this identity.
    fn recipient(&self) -> String {
        use bech32::ToBase32;
        bech32::encode(
            "age",
            self.public.as_bytes().to_base32(),
            bech32::Variant::Bech32,
        )
        .expect("a public key encodes")
    }

    /// A key for `purpose`, derived from the secret (HMAC-SHA256 as a PRF): it opens
    /// nothing, and tells nothing of the secret.
    fn derive(&self, purpose: &[u8]) -> Zeroizing<[u8; 32]> {
        use hmac::Mac;
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(purpose).expect("HMAC takes any key length");
        mac.update(self.secret.as_bytes());
        Zeroizing::new(mac.finalize().into_bytes().into())
    }
}

impl age::Identity for X25519Identity {
    fn unwrap_stanza(
        &self,
        stanza: &age_core::format::Stanza,
    ) -> Option<std::result::Result<age_core::format::FileKey, age::DecryptError>> {
        use base64::Engine;
        if stanza.tag != "X25519" {
            return None;
        }
        let invalid = || Some(Err(age::DecryptError::InvalidHeader));
        // Canonical: one argument, 32 bytes in unpadded base64 (43 characters).
        let [arg] = stanza.args.as_slice() else {
            return invalid();
        };
        let Ok(share) = base64::engine::general_purpose::STANDARD_NO_PAD.decode(arg) else {
            return invalid();
        };
        let (Ok(share), 43, 32) = (
            <[u8; 32]>::try_from(share.as_slice()),
            arg.len(),
            stanza.body.len(),
        ) else {
            return invalid();
        };
        let epk = x25519_dalek::PublicKey::from(share);
        let shared = self.secret.diffie_hellman(&epk);
        if !shared.was_contributory() {
            return invalid();
        }
        let mut salt = [0u8; 64];
        salt[..32].copy_from_slice(epk.as_bytes());
        salt[32..].copy_from_slice(self.public.as_bytes());
        let mut key =
            age_core::primitives::hkdf(&salt, b"age-encryption.org/v1/X25519", shared.as_bytes());
        // Not this identity's stanza: another identity may open it.
        let opened = age_core::primitives::aead_decrypt(&key, 16, &stanza.body).ok();
        key.zeroize();
        let mut plain = opened?;
        let file_key = age_core::format::FileKey::init_with_mut(|k| k.copy_from_slice(&plain));
        plain.zeroize();
        Some(Ok(file_key))
    }
}

#[cfg(test)]
mod x25519_tests {
    use super::*;

    /// The identity opens what age wraps for its recipient, and nothing wrapped for another.
    #[test]
    fn the_cached_identity_unwraps_as_age_does() {
        let id = age::x25519::Identity::generate();
        let other = age::x25519::Identity::generate();
        let ours = X25519Identity::parse(id.to_string().expose_secret()).expect("parses");
        assert_eq!(
            x25519_dalek::PublicKey::from(&ours.secret).as_bytes(),
            ours.public.as_bytes()
        );
        let key = crate::cipher::DataKey::generate();
        let wrapped = wrap(key.expose(), &id.to_public().to_string()).expect("wraps");
        let open = |ident: X25519Identity| {
            let reader = age::armor::ArmoredReader::new(wrapped.enc.as_bytes());
            let decryptor = age::Decryptor::new(reader).expect("an age file");
            let mut out = Vec::new();
            decryptor
                .decrypt(std::iter::once(&ident as &dyn age::Identity))
                .ok()?
                .read_to_end(&mut out)
                .ok()?;
            Some(out)
        };
        assert_eq!(open(ours).as_deref(), Some(&key.expose()[..]));
        let stranger = X25519Identity::parse(other.to_string().expose_secret()).expect("parses");
        assert_eq!(open(stranger), None);
        assert!(X25519Identity::parse("AGE-SECRET-KEY-1NOTBECH32").is_none());
        assert!(X25519Identity::parse(&id.to_public().to_string()).is_none());
    }
}
