//! A covered working tree is plaintext input. Where `filter=coffer` covers a file, its
//! working-tree bytes are the plaintext (the filter encrypts them on `git add`), so every
//! command reads and edits them as they stand; the data key and metadata, where a command
//! needs them, come from the file's blob in the index, else in HEAD.

use std::path::Path;

use zeroize::Zeroizing;

use crate::cipher::DataKey;
use crate::format::Format;
use crate::keys::Keyring;
use crate::metadata::Metadata;
use crate::sops::OpenOptions;
use crate::sops::{self, Opened};
use crate::{Error, Result};

/// Where a covered file's data key and metadata came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The staged blob.
    Index,
    /// HEAD's blob (the file is not in the index).
    Head,
    /// Nowhere: the file has no encrypted version yet (new, never staged, or committed
    /// as plaintext before setup).
    New,
}

/// How a covered plaintext file was opened.
#[derive(Debug)]
pub struct Covered {
    pub origin: Origin,
    /// The data key is the committed version's (else one made for this run: nothing
    /// that outlives the command may depend on it).
    pub committed_key: bool,
    /// Why the committed version's key is not used, for the user.
    pub note: Option<String>,
}

/// Whether git's attributes give `file` the coffer filter (as `git check-attr` reads
/// them: the working tree's `.gitattributes`, `info/attributes`, the global file).
pub fn is_covered(file: &Path) -> bool {
    // The file itself may not exist yet (a new file to edit).
    let abs = std::fs::canonicalize(file).ok().or_else(|| {
        let parent = file.parent().filter(|p| !p.as_os_str().is_empty());
        let dir = std::fs::canonicalize(parent.unwrap_or(Path::new("."))).ok()?;
        Some(dir.join(file.file_name()?))
    });
    let Some(abs) = abs else {
        return false;
    };
    let (Some(dir), Some(name)) = (abs.parent(), abs.file_name().and_then(|n| n.to_str())) else {
        return false;
    };
    // `-z`: path, attribute, value, each NUL-terminated.
    let attributed = super::git(dir, &["check-attr", "-z", "filter", "--", name], &[])
        .is_ok_and(|out| out.split('\0').nth(2) == Some("coffer"));
    // Without the filter set up, `git add` would store the plaintext as it is.
    attributed && git2::Repository::discover(dir).is_ok_and(|r| super::setup::is_set_up(&r))
}

/// The file's encrypted version: its blob in the index (stage 0), else in HEAD.
fn committed(file: &Path) -> Option<(Vec<u8>, Origin)> {
    let abs = std::fs::canonicalize(file).ok()?;
    let repo = git2::Repository::discover(abs.parent()?).ok()?;
    let root = std::fs::canonicalize(repo.workdir()?).ok()?;
    let rel = abs.strip_prefix(root).ok()?;
    let index = repo.index().ok()?;
    if let Some(entry) = index.get_path(rel, 0) {
        return Some((
            repo.find_blob(entry.id).ok()?.content().to_vec(),
            Origin::Index,
        ));
    }
    let tree = repo.head().ok()?.peel_to_tree().ok()?;
    let id = tree.get_path(rel).ok()?.id();
    let blob = repo.find_blob(id).ok()?.content().to_vec();
    Some((blob, Origin::Head))
}

/// Open `file` (its bytes read as `bytes`): an encrypted file as sops files open; a
/// plaintext file the coffer filter covers as its plaintext, under the data key and
/// metadata of its committed version when a key here opens that, else under a data key
/// made for this run. Anything else is refused as not encrypted.
pub fn open(
    file: &Path,
    name: &str,
    format: Format,
    bytes: impl Into<Zeroizing<Vec<u8>>>,
    keyring: &Keyring,
    options: sops::OpenOptions,
) -> Result<(Opened, Option<Covered>)> {
    let bytes = bytes.into();
    if let Some(opened) = sops::open_if_encrypted(name, format, &bytes, keyring, options)? {
        return Ok((opened, None));
    }
    if bytes.is_empty() || !is_covered(file) {
        return sops::open(name, format, bytes, keyring, options).map(|o| (o, None));
    }
    let (base, origin, note) = match committed(file) {
        Some((blob, origin)) if crate::format::mentions_sops(&blob) => {
            match sops::open(name, format, blob.clone(), keyring, OpenOptions::default()) {
                Ok(opened) => (Ok(opened), origin, None),
                // Plaintext committed before setup: no encrypted version yet.
                Err(Error::NotEncrypted { .. } | Error::Syntax { .. }) => {
                    (Err(Metadata::default()), Origin::New, None)
                }
                Err(e) => {
                    let meta = sops::read_metadata(name, format, blob)
                        .map(|(_, m, _)| m)
                        .unwrap_or_default();
                    let whence = if origin == Origin::Index {
                        "staged"
                    } else {
                        "committed"
                    };
                    let note = format!("{name}: the {whence} version does not open here ({e}); its plaintext is read as it stands");
                    (Err(meta), origin, Some(note))
                }
            }
        }
        _ => (Err(Metadata::default()), Origin::New, None),
    };
    let committed_key = base.is_ok();
    let opened = match base {
        Ok(mut base) => {
            // Encrypted in memory only: a future sops version's file is not rewritten.
            base.rewrite_future = true;
            match base.reencrypt(&bytes)? {
                None => base,
                Some(sealed) => reopen(name, format, sealed, base.key)?,
            }
        }
        Err(meta) => lifted(name, format, bytes, meta)?,
    };
    Ok((
        opened,
        Some(Covered {
            origin,
            committed_key,
            note,
        }),
    ))
}

/// A covered file with no encrypted version yet, opened from its plaintext (checked as
/// every write is: it parses, and encrypts so that it reads back).
pub fn plain_new(name: &str, format: Format, plaintext: Vec<u8>) -> Result<Opened> {
    lifted(name, format, plaintext, Metadata::default())
}

/// Plaintext encrypted in memory under a data key made for it and `meta`'s rules.
fn lifted(
    name: &str,
    format: Format,
    plaintext: impl Into<Zeroizing<Vec<u8>>>,
    mut meta: Metadata,
) -> Result<Opened> {
    let key = DataKey::generate();
    let sealed = sops::encrypt_plain(name, format, plaintext, &key, &mut meta)?;
    reopen(name, format, sealed, key)
}

/// The plaintext as encrypted in memory, opened again with its key.
fn reopen(name: &str, format: Format, sealed: sops::Sealed, key: DataKey) -> Result<Opened> {
    let (doc, meta, _) = sops::read_metadata(name, format, sealed.bytes)?;
    let mut opened = sops::open_with_key(name, format, doc, meta, key, OpenOptions::default())?;
    opened.warnings.extend(sealed.fallback);
    Ok(opened)
}

/// The plaintext a covered file holds after a change: what a checkout of its new
/// version (`sealed`, encrypted in memory under `opened`'s key) writes into the working
/// tree, so the working tree never holds ciphertext and reads back as git will show it.
pub fn checked_out(opened: &Opened, sealed: sops::Sealed) -> Result<sops::Sealed> {
    let fallback = sealed.fallback.clone();
    let again = reopen(&opened.file, opened.format, sealed, opened.key.clone())?;
    let mut plain = again.into_output(opened.format)?;
    plain.fallback = plain.fallback.or(fallback);
    Ok(plain)
}
