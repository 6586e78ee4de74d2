//! coffer: keep a team's secrets in git, encrypted in the sops v3 file format.
//!
//! The data flow is `format::parse` → [`tree::Document`] → [`cipher`] per leaf →
//! format-specific splicing back into the original text, so that keys, comments and
//! layout stay exactly as the author wrote them. [`sops`] composes these steps into the
//! operations the CLI exposes.

pub mod aws;
pub mod cipher;
pub mod config;
pub mod error;
pub mod format;
pub mod fsutil;
pub mod git;
pub mod glob;
pub mod keys;
pub mod mapped;
pub mod memory;
pub mod metadata;
pub mod mutate;
pub mod path;
pub mod prompt;
pub mod rekey;
pub mod render;
pub mod scalar;
pub mod sops;
pub mod team;
pub mod tree;

pub use error::{Error, Result};

use zeroize::Zeroizing;

/// Encrypts a file's plaintext for age recipients in the sops v3 format, as `coffer
/// encrypt --age` does: every value of a YAML, JSON, dotenv or INI file, or the whole of
/// any other file, the format told by `file`'s extension. The layout is kept byte for
/// byte; where it cannot be, the file is written in its canonical layout and
/// [`sops::Sealed::fallback`] says why. The result is read back and checked before it is
/// returned, and the real sops opens it.
///
/// ```
/// // A throwaway identity for this example; never use it for secrets.
/// let identity = "AGE-SECRET-KEY-1FVF9P2N4MWTX7NNWUPL7KWM87Q4HXMC8AD0SNA74VCH78HCV0U0Q5QWA3W";
/// let recipient = "age1u4gewzmz9da4n5xqanhyqxuwvcx2jz75hnx8g2mkzurl9wzyx9eq535489";
///
/// let plaintext = b"db:\n  password: hunter2 # rotate yearly\n";
/// let sealed = coffer::encrypt_for_age("app.yaml", plaintext, &[recipient])?;
/// let text = std::str::from_utf8(&sealed.bytes).unwrap();
/// assert!(text.starts_with("db:\n  password: ENC[AES256_GCM,data:"));
/// assert!(!text.contains("hunter2") && sealed.fallback.is_none());
///
/// let back = coffer::decrypt_with_age("app.yaml", &sealed.bytes, identity)?;
/// assert_eq!(&back[..], &plaintext[..]);
/// # Ok::<(), coffer::Error>(())
/// ```
pub fn encrypt_for_age(file: &str, plaintext: &[u8], recipients: &[&str]) -> Result<sops::Sealed> {
    let format = format::Format::from_path(std::path::Path::new(file));
    let recipients = keys::Recipients {
        age: recipients.iter().map(|r| r.to_string()).collect(),
        ..Default::default()
    };
    if recipients.is_empty() {
        return Err(Error::NoRecipients {
            file: file.to_string(),
        });
    }
    // No KMS or PGP key is named.
    let with = keys::Wrappers::age_only();
    let key = cipher::DataKey::generate();
    let mut md = sops::new_metadata(&key, &recipients, &with, None, None)?;
    sops::encrypt_plain(file, format, plaintext.to_vec(), &key, &mut md)
}

/// Decrypts a sops file with age identities (the text of an identity file, one
/// `AGE-SECRET-KEY-1…` per line), checking its MAC, to its plaintext in its own layout,
/// as `coffer decrypt` does. See [`encrypt_for_age`] for an example.
pub fn decrypt_with_age(
    file: &str,
    encrypted: &[u8],
    identities: &str,
) -> Result<Zeroizing<Vec<u8>>> {
    let format = format::Format::from_path(std::path::Path::new(file));
    let sources = keys::age::IdentitySources {
        inline: vec![secrecy::SecretString::from(identities.to_string())],
        ..Default::default()
    };
    let keyring = keys::Keyring::new(vec![Box::new(keys::age::AgeKeys::load(&sources)?)]);
    let opened = sops::open(
        file,
        format,
        encrypted.to_vec(),
        &keyring,
        sops::OpenOptions::default(),
    )?;
    Ok(opened.render()?.bytes)
}
