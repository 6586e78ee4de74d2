//! age plugins, as age and sops 3.10 and later use them: a recipient `age1NAME1…` or an
//! identity `AGE-PLUGIN-NAME-1…` is handed to the program `age-plugin-NAME` on PATH
//! (a YubiKey, a TPM, …), spoken to through the age crate's plugin client.
//!
//! The plugin runs in coffer's environment, as age runs it: it is a program the user
//! installed to hold keys, and the age crate gives no way to narrow what it inherits.

use std::sync::Arc;

use age_core::format::{FileKey, Stanza};
use secrecy::SecretString;

use super::unlock::{note, AskPassphrase, Failures};
use super::KeyError;

/// Shows a plugin's message ("touch your key") to the user. The CLI provides it.
pub type Tell = Arc<dyn Fn(&str) + Send + Sync>;

/// Whether an `age1…` recipient names a plugin: the plugin's name sits between two `1`s,
/// and Bech32 data never holds a `1`, so a native recipient has one.
pub fn is_plugin_recipient(s: &str) -> bool {
    s.starts_with("age1") && s.matches('1').count() > 1
}

/// Whether an identity-file word is a plugin identity.
pub fn is_plugin_identity(s: &str) -> bool {
    s.starts_with("AGE-PLUGIN-")
}

/// A plugin recipient, its plugin found on PATH.
pub fn recipient(s: &str) -> Result<Box<dyn age::Recipient + Send>, KeyError> {
    let parsed: age::plugin::Recipient =
        s.parse::<age::plugin::Recipient>()
            .map_err(|e| KeyError::NotPluginRecipient {
                recipient: s.to_string(),
                reason: e.to_string(),
            })?;
    let plugin = age::plugin::RecipientPluginV1::new(
        parsed.plugin(),
        std::slice::from_ref(&parsed),
        &[],
        Ui::default(),
    )
    .map_err(|e| KeyError::Age(encrypt_error(&e)))?;
    Ok(Box::new(plugin))
}

/// What went wrong wrapping a key for a plugin recipient, on one line.
pub fn encrypt_error(e: &age::EncryptError) -> String {
    match e {
        age::EncryptError::MissingPlugin { binary_name } => missing(binary_name),
        age::EncryptError::Plugin(errors) => plugin_errors(errors),
        other => one_line(&other.to_string()),
    }
}

fn missing(binary_name: &str) -> String {
    format!("{binary_name} is not on PATH (install the plugin, or put it on PATH)")
}

fn plugin_errors<E: std::fmt::Display>(errors: &[E]) -> String {
    let all: Vec<String> = errors.iter().map(|e| one_line(&e.to_string())).collect();
    all.join("; ")
}

/// age's messages on one line, without the isolation marks its translations put around
/// names.
fn one_line(s: &str) -> String {
    s.replace(['\u{2068}', '\u{2069}'], "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// How a plugin reaches the user: its messages through `tell`, its PIN or passphrase
/// requests through `ask` (echo off). Requests with no way to ask, and confirmations,
/// are declined; the plugin then says why it cannot go on.
#[derive(Clone, Default)]
pub struct Ui {
    pub tell: Option<Tell>,
    pub ask: Option<AskPassphrase>,
    /// Where a request that could not be answered is noted (with `origin`).
    pub failures: Option<(Failures, String)>,
}

impl age::Callbacks for Ui {
    fn display_message(&self, message: &str) {
        if let Some(tell) = &self.tell {
            tell(message);
        }
    }

    fn confirm(&self, _: &str, _: &str, _: Option<&str>) -> Option<bool> {
        None
    }

    fn request_public_string(&self, _: &str) -> Option<String> {
        None
    }

    fn request_passphrase(&self, description: &str) -> Option<SecretString> {
        let asked = match &self.ask {
            Some(ask) => ask(description),
            None => Err(crate::prompt::Unanswered(
                "the plugin asks for a secret and there is no way to ask".into(),
            )),
        };
        asked
            .map_err(|why| {
                if let Some((failures, origin)) = &self.failures {
                    note(failures, format!("{origin}: {why}"));
                }
            })
            .ok()
    }
}

/// A plugin identity. The plugin runs only for files that hold a stanza no native
/// identity reads, so files for X25519 or SSH recipients never start it; its errors are
/// noted and it then opens nothing, so the identities after it are still tried.
pub struct PluginIdentity {
    origin: String,
    inner: Result<age::plugin::IdentityPluginV1<Ui>, String>,
    failures: Failures,
}

/// Stanza kinds the age crate's own identities read. age also adds a stanza of a random
/// kind ending in `-grease` to every file, which no one reads.
const NATIVE: &[&str] = &["X25519", "scrypt", "ssh-ed25519", "ssh-rsa"];

fn needs_no_plugin(stanza: &Stanza) -> bool {
    NATIVE.contains(&stanza.tag.as_str()) || stanza.tag.ends_with("-grease")
}

impl PluginIdentity {
    /// `word` is an `AGE-PLUGIN-…` identity from `origin`.
    pub fn parse(word: &str, origin: &str, ui: &Ui, failures: &Failures) -> Result<Self, KeyError> {
        let id: age::plugin::Identity =
            word.parse::<age::plugin::Identity>()
                .map_err(|e| KeyError::NotPluginIdentity {
                    origin: origin.to_string(),
                    reason: e.to_string(),
                })?;
        let ui = Ui {
            failures: Some((failures.clone(), origin.to_string())),
            ..ui.clone()
        };
        let inner = age::plugin::IdentityPluginV1::new(id.plugin(), std::slice::from_ref(&id), ui)
            .map_err(|e| match e {
                age::DecryptError::MissingPlugin { binary_name } => missing(&binary_name),
                other => one_line(&other.to_string()),
            });
        Ok(PluginIdentity {
            origin: origin.to_string(),
            inner,
            failures: failures.clone(),
        })
    }
}

impl age::Identity for PluginIdentity {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        self.unwrap_stanzas(std::slice::from_ref(stanza))
    }

    fn unwrap_stanzas(&self, stanzas: &[Stanza]) -> Option<Result<FileKey, age::DecryptError>> {
        if stanzas.iter().all(needs_no_plugin) {
            return None;
        }
        let origin = &self.origin;
        let plugin = match &self.inner {
            Ok(plugin) => plugin,
            Err(why) => {
                note(&self.failures, format!("{origin}: {why}"));
                return None;
            }
        };
        match age::Identity::unwrap_stanzas(plugin, stanzas)? {
            Ok(key) => Some(Ok(key)),
            Err(e) => {
                let why = match e {
                    age::DecryptError::Plugin(errors) => plugin_errors(&errors),
                    other => one_line(&other.to_string()),
                };
                note(&self.failures, format!("{origin}: {why}"));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_recipients_are_told_from_native_ones_by_their_second_one() {
        let native = age::x25519::Identity::generate().to_public().to_string();
        assert!(!is_plugin_recipient(&native));
        assert!(is_plugin_recipient("age1yubikey1qwerty"));
        assert!(!is_plugin_recipient("ssh-ed25519 AAAA1"));
        assert!(is_plugin_identity("AGE-PLUGIN-YUBIKEY-1QQQ"));
        assert!(!is_plugin_identity("AGE-SECRET-KEY-1QQQ"));
    }

    /// A plugin that is not installed is one line naming its program, when used.
    #[test]
    fn a_missing_plugin_is_named() {
        let r = bech32::encode(
            "age1nosuchplugin",
            bech32::ToBase32::to_base32(&[7u8; 8]),
            bech32::Variant::Bech32,
        )
        .unwrap();
        let err = recipient(&r).err().expect("no such plugin").to_string();
        assert!(
            err.starts_with("age-plugin-nosuchplugin is not on PATH"),
            "{err}"
        );
        assert!(!err.contains('\n'));
    }
}
