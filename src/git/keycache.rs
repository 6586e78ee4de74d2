//! Data keys this identity opened, kept sealed in `.git/coffer/keys` so that a later
//! filter process (a checkout after a commit, a branch switch, a rebase) opens each file
//! without the X25519 unwrap of its data key.
//!
//! An entry is found by an HMAC of all the file's wrapped keys (every master key entry,
//! in order) and holds the data key sealed with AES-256-GCM, the entry's id as its
//! associated data. Both keys are derived from the user's age identity and never
//! written: the file opens nothing without the identity, which opens the files anyway.
//! A file whose key entries change (a person added or removed) has another id: a key
//! kept for the old entries does not open the new ones, so removing someone from a file
//! works as it does without the cache, data key kept or not. An entry that does not
//! unseal is passed over, never trusted; whatever opens is checked by the file's MAC.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::cipher::DataKey;
use crate::metadata::Metadata;

const MAGIC: &[u8] = b"coffer keys 1\n";
const KEY_ID_LEN: usize = 16;
const ID_LEN: usize = 32;
const NONCE_LEN: usize = 12;
/// A sealed 32-byte data key and its 16-byte tag.
const SEALED_LEN: usize = 48;
const ENTRY_LEN: usize = ID_LEN + NONCE_LEN + SEALED_LEN;
/// The newest this many are kept (about 4.6 MB).
const MAX_ENTRIES: usize = 50_000;

type Sealed = [u8; NONCE_LEN + SEALED_LEN];

pub struct KeyCache {
    secret: Zeroizing<[u8; 32]>,
    file: PathBuf,
    /// Entries read from the file, and those added by this process (in order, oldest
    /// first, so the oldest go when the file is full).
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<[u8; ID_LEN], Sealed>,
    added: Vec<[u8; ID_LEN]>,
}

impl crate::keys::KeptKeys for KeyCache {
    fn get(&self, meta: &Metadata) -> Option<DataKey> {
        KeyCache::get(self, meta)
    }

    fn put(&self, meta: &Metadata, key: &DataKey) {
        KeyCache::put(self, meta, key)
    }
}

impl KeyCache {
    /// The cache in `git_dir`, keyed from `identity_secret` (see
    /// `MasterKey::seen_key`); empty when there is none, it is damaged, or it was
    /// written under another identity.
    pub fn load(git_dir: &Path, identity_secret: &[u8; 32]) -> KeyCache {
        let mut secret = Zeroizing::new([0u8; 32]);
        secret.copy_from_slice(&derive(identity_secret, b"coffer data-key cache 1"));
        let file = git_dir.join("coffer").join("keys");
        let cache = KeyCache {
            secret,
            file,
            state: Mutex::new(State::default()),
        };
        let entries = std::fs::read(&cache.file)
            .ok()
            .and_then(|b| parse(&b, &cache.key_id()))
            .unwrap_or_default();
        cache.state.lock().expect("key cache lock").entries = entries.into_iter().collect();
        cache
    }

    fn key_id(&self) -> [u8; KEY_ID_LEN] {
        derive(&self.secret[..], b"key id")[..KEY_ID_LEN]
            .try_into()
            .expect("16 of 32 bytes")
    }

    fn cipher(&self) -> Aes256Gcm {
        let key = Zeroizing::new(derive(&self.secret[..], b"seal"));
        <Aes256Gcm as KeyInit>::new_from_slice(&key[..]).expect("32-byte key")
    }

    /// The id of a file's key entries: every wrapped key, in order, groups included.
    fn id(&self, meta: &Metadata) -> [u8; ID_LEN] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret[..]).expect("any length");
        mac.update(b"id");
        for m in std::iter::once(meta).chain(&meta.groups) {
            for w in m.wrapped_keys() {
                mac.update(&(w.len() as u64).to_le_bytes());
                mac.update(w.as_bytes());
            }
            mac.update(b"/");
        }
        mac.finalize().into_bytes().into()
    }

    /// The data key kept for `meta`'s key entries, if one unseals.
    pub fn get(&self, meta: &Metadata) -> Option<DataKey> {
        let id = self.id(meta);
        let sealed = *self
            .state
            .lock()
            .expect("key cache lock")
            .entries
            .get(&id)?;
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let plain = Zeroizing::new(
            self.cipher()
                .decrypt(nonce.into(), Payload { msg: ct, aad: &id })
                .ok()?,
        );
        DataKey::from_slice(&plain)
    }

    /// Keep `key` as the data key of `meta`'s key entries.
    pub fn put(&self, meta: &Metadata, key: &DataKey) {
        let id = self.id(meta);
        let mut state = self.state.lock().expect("key cache lock");
        if state.entries.contains_key(&id) {
            return;
        }
        let mut nonce = [0u8; NONCE_LEN];
        crate::cipher::random(&mut nonce);
        let Ok(ct) = self.cipher().encrypt(
            (&nonce).into(),
            Payload {
                msg: key.expose(),
                aad: &id,
            },
        ) else {
            return;
        };
        let mut sealed = [0u8; NONCE_LEN + SEALED_LEN];
        sealed[..NONCE_LEN].copy_from_slice(&nonce);
        sealed[NONCE_LEN..].copy_from_slice(&ct);
        state.entries.insert(id, sealed);
        state.added.push(id);
    }

    /// Add this process's entries to the file: read again (another process may have
    /// added its own), then a new file renamed over the old. Two writers at once may
    /// lose each other's entries, which only costs the next checkout some unwraps.
    pub fn save(&self) -> std::io::Result<()> {
        let state = self.state.lock().expect("key cache lock");
        if state.added.is_empty() {
            return Ok(());
        }
        let mut order: Vec<([u8; ID_LEN], Sealed)> = std::fs::read(&self.file)
            .ok()
            .and_then(|b| parse(&b, &self.key_id()))
            .unwrap_or_default();
        let on_file: std::collections::HashSet<[u8; ID_LEN]> =
            order.iter().map(|(id, _)| *id).collect();
        order.extend(
            state
                .added
                .iter()
                .filter(|id| !on_file.contains(*id))
                .map(|id| (*id, state.entries[id])),
        );
        let skip = order.len().saturating_sub(MAX_ENTRIES);
        let mut out = Vec::with_capacity(MAGIC.len() + KEY_ID_LEN + order.len() * ENTRY_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.key_id());
        for (id, sealed) in &order[skip..] {
            out.extend_from_slice(id);
            out.extend_from_slice(sealed);
        }
        super::replace_record(&self.file, &out)
    }
}

fn derive(key: &[u8], label: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any length");
    mac.update(label);
    mac.finalize().into_bytes().into()
}

/// The entries of a cache file in order, `None` unless it is whole and written under
/// `key_id`.
fn parse(bytes: &[u8], key_id: &[u8; KEY_ID_LEN]) -> Option<Vec<([u8; ID_LEN], Sealed)>> {
    let body = bytes.strip_prefix(MAGIC)?.strip_prefix(&key_id[..])?;
    if body.len() % ENTRY_LEN != 0 {
        return None;
    }
    Some(
        body.chunks_exact(ENTRY_LEN)
            .map(|e| {
                let (id, sealed) = e.split_at(ID_LEN);
                (
                    id.try_into().expect("32 bytes"),
                    sealed.try_into().expect("60 bytes"),
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::AgeEntry;

    fn meta(encs: &[&str]) -> Metadata {
        Metadata {
            age: encs
                .iter()
                .map(|e| AgeEntry {
                    recipient: String::new(),
                    enc: e.to_string(),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_kept_key_opens_only_the_same_entries_under_the_same_identity() {
        let dir = tempfile::tempdir().unwrap();
        let (alice, bob) = ([1u8; 32], [2u8; 32]);
        let key = DataKey::generate();
        let both = meta(&["enc-alice", "enc-bob"]);
        let cache = KeyCache::load(dir.path(), &alice);
        assert!(cache.get(&both).is_none());
        cache.put(&both, &key);
        cache.save().unwrap();
        let again = KeyCache::load(dir.path(), &alice);
        assert_eq!(again.get(&both).unwrap().expose(), key.expose());
        // Alice removed, the data key kept: another id, nothing found.
        assert!(again.get(&meta(&["enc-bob"])).is_none());
        assert!(again.get(&meta(&["enc-bob", "enc-alice"])).is_none());
        // Another identity reads nothing of it.
        assert!(KeyCache::load(dir.path(), &bob).get(&both).is_none());
        // A damaged entry unseals to nothing; a damaged file is an empty cache.
        let file = dir.path().join("coffer").join("keys");
        let mut bytes = std::fs::read(&file).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&file, &bytes).unwrap();
        assert!(KeyCache::load(dir.path(), &alice).get(&both).is_none());
        std::fs::write(&file, &bytes[..bytes.len() - 1]).unwrap();
        let empty = KeyCache::load(dir.path(), &alice);
        assert!(empty.state.lock().unwrap().entries.is_empty());
    }

    #[test]
    fn saving_adds_to_what_another_process_kept() {
        let dir = tempfile::tempdir().unwrap();
        let id = [7u8; 32];
        let (one, two) = (
            KeyCache::load(dir.path(), &id),
            KeyCache::load(dir.path(), &id),
        );
        let (k1, k2) = (DataKey::generate(), DataKey::generate());
        one.put(&meta(&["a"]), &k1);
        two.put(&meta(&["b"]), &k2);
        one.save().unwrap();
        two.save().unwrap();
        let both = KeyCache::load(dir.path(), &id);
        assert_eq!(both.get(&meta(&["a"])).unwrap().expose(), k1.expose());
        assert_eq!(both.get(&meta(&["b"])).unwrap().expose(), k2.expose());
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join("coffer").join("keys"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
}
