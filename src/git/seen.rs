//! What the filter has seen: for each path, the blob whose plaintext it last wrote or
//! read there, a tag of that plaintext, and the blob's bytes. `git status` after a
//! `touch` (or a checkout) re-cleans every file; when the plaintext's tag matches the
//! blob in the index, clean answers with the blob at once: no parse, no unwrap, no
//! decryption, not even a read from git's object store.
//!
//! The tag is an HMAC keyed with a key derived from the user's age identity, never an
//! unkeyed hash: a low-entropy secret cannot be guessed from the record without a key
//! that opens it. Keying with each file's data key would cost the X25519 unwrap per file
//! this exists to skip. The key is never written; a record written under another
//! identity is ignored. An entry is only made where coffer has just checked that the blob
//! opens to exactly that plaintext, so a hit answers what the full clean would. The blob
//! bytes are ciphertext, as in git's own store.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

const MAGIC: &[u8] = b"coffer seen 3\n";
const ID_LEN: usize = 16;
const OID_LEN: usize = 20;
const TAG_LEN: usize = 32;
/// A CRC-32 of the rest: it only has to find damage (each entry is checked when used:
/// its tag by the identity's key, its bytes by their blob id), and the record is read
/// before every filter process's first answer.
const SUM_LEN: usize = 4;
/// Larger blobs are read from git's store when needed: the record stays small.
const KEEP_BYTES: usize = 64 << 10;

/// What coffer saw at one path: made by `Tagger::entry`, kept by `Seen::record`.
pub struct Entry {
    oid: [u8; OID_LEN],
    tag: [u8; TAG_LEN],
    bytes: Option<Vec<u8>>,
}

/// What the record says of a path's plaintext.
pub enum Hit<'a> {
    Miss,
    /// It is the blob's plaintext; here are the blob's bytes.
    Bytes(&'a [u8]),
    /// It is the blob's plaintext; the blob is in git's store.
    Stored,
}

/// Tags plaintext; shareable with the smudge workers.
#[derive(Clone)]
pub struct Tagger {
    key: std::sync::Arc<Zeroizing<[u8; 32]>>,
}

impl Tagger {
    pub fn new(key: Zeroizing<[u8; 32]>) -> Tagger {
        Tagger {
            key: std::sync::Arc::new(key),
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.key[..]).expect("HMAC takes any key length")
    }

    /// The tag of `plaintext` at `path` as the plaintext of `blob`.
    fn tag(&self, path: &str, blob: git2::Oid, plaintext: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.mac();
        mac.update(&(path.len() as u64).to_le_bytes());
        mac.update(path.as_bytes());
        mac.update(blob.as_bytes());
        mac.update(plaintext);
        mac.finalize().into_bytes().into()
    }

    /// The entry for `blob`, whose plaintext at `path` is `plaintext`.
    pub fn entry(&self, path: &str, blob: &[u8], plaintext: &[u8]) -> Entry {
        let id = blob_id(blob);
        Entry {
            oid: id.as_bytes().try_into().expect("SHA-1 ids"),
            tag: self.tag(path, id, plaintext),
            bytes: (blob.len() <= KEEP_BYTES).then(|| blob.to_vec()),
        }
    }

    /// Names the key in the record, so one written under another identity is not read.
    fn key_id(&self) -> [u8; ID_LEN] {
        let mut mac = self.mac();
        mac.update(b"key id");
        let full: [u8; 32] = mac.finalize().into_bytes().into();
        full[..ID_LEN].try_into().expect("16 of 32 bytes")
    }
}

/// The id git gives a blob of `bytes` (SHA-1 object ids).
pub fn blob_id(bytes: &[u8]) -> git2::Oid {
    use sha1::Digest as _;
    let mut h = sha1::Sha1::new();
    h.update(format!("blob {}\0", bytes.len()).as_bytes());
    h.update(bytes);
    git2::Oid::from_bytes(&h.finalize()).expect("20 bytes")
}

pub struct Seen {
    pub tagger: Tagger,
    file: PathBuf,
    entries: HashMap<String, Entry>,
    changed: bool,
}

impl Seen {
    /// The record in `git_dir`, or an empty one when there is none or it is damaged.
    pub fn load(git_dir: &Path, tagger: Tagger) -> Seen {
        let file = git_dir.join("coffer").join("seen");
        let entries = std::fs::read(&file)
            .ok()
            .and_then(|b| parse(&b, &tagger.key_id()))
            .unwrap_or_default();
        Seen {
            tagger,
            file,
            entries,
            changed: false,
        }
    }

    /// Whether `plaintext` is what coffer last saw `blob` open to at `path`.
    pub fn lookup(&self, path: &str, blob: git2::Oid, plaintext: &[u8]) -> Hit<'_> {
        use subtle::ConstantTimeEq;
        let Some(entry) = self.entries.get(path) else {
            return Hit::Miss;
        };
        if entry.oid != blob.as_bytes()
            || !bool::from(self.tagger.tag(path, blob, plaintext).ct_eq(&entry.tag))
        {
            return Hit::Miss;
        }
        // The bytes are the blob's: the entry was made from them (`Tagger::entry`) and
        // the record's check finds damage, so no SHA-1 of them on the way to the answer.
        match entry.bytes.as_deref() {
            Some(b) => Hit::Bytes(b),
            None => Hit::Stored,
        }
    }

    /// Keep what coffer saw at `path`.
    pub fn record(&mut self, path: &str, entry: Entry) {
        if self
            .entries
            .get(path)
            .is_some_and(|e| e.oid == entry.oid && e.tag == entry.tag)
        {
            return;
        }
        self.entries.insert(path.to_string(), entry);
        self.changed = true;
    }

    /// Write the record when it changed: a new file renamed over the old, so a reader
    /// sees one or the other. Another filter process writing at the same time may win;
    /// that only costs the next `git status` some speed.
    pub fn save(&self) -> std::io::Result<()> {
        if !self.changed {
            return Ok(());
        }
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.tagger.key_id());
        for (path, e) in &self.entries {
            out.extend_from_slice(&e.oid);
            out.extend_from_slice(&e.tag);
            out.extend_from_slice(&(path.len() as u32).to_le_bytes());
            out.extend_from_slice(path.as_bytes());
            let bytes = e.bytes.as_deref().unwrap_or_default();
            out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(bytes);
        }
        let sum = crc32fast::hash(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        super::replace_record(&self.file, &out)
    }
}

/// The entries of a record, `None` unless it is whole and written under `key_id`.
fn parse(bytes: &[u8], key_id: &[u8; ID_LEN]) -> Option<HashMap<String, Entry>> {
    let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(SUM_LEN)?)?;
    if crc32fast::hash(body).to_le_bytes() != sum {
        return None;
    }
    let mut rest = body.strip_prefix(MAGIC)?.strip_prefix(&key_id[..])?;
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, tail) = rest.split_at_checked(n)?;
        rest = tail;
        Some(head)
    };
    let mut entries = HashMap::new();
    while let Some(oid) = take(OID_LEN) {
        let oid = oid.try_into().ok()?;
        let tag = take(TAG_LEN)?.try_into().ok()?;
        let len = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
        let path = std::str::from_utf8(take(len)?).ok()?.to_string();
        let len = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
        let bytes = take(len)?;
        let bytes = (!bytes.is_empty()).then(|| bytes.to_vec());
        entries.insert(path, Entry { oid, tag, bytes });
    }
    Some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tagger(byte: u8) -> Tagger {
        Tagger::new(Zeroizing::new([byte; 32]))
    }

    fn hit(seen: &Seen, path: &str, blob: &[u8], plaintext: &[u8]) -> Option<Vec<u8>> {
        match seen.lookup(path, blob_id(blob), plaintext) {
            Hit::Miss => None,
            Hit::Bytes(b) => Some(b.to_vec()),
            Hit::Stored => Some(Vec::new()),
        }
    }

    #[test]
    fn blob_ids_are_gits() {
        // `printf 'hello\n' | git hash-object --stdin`
        assert_eq!(
            blob_id(b"hello\n").to_string(),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
    }

    #[test]
    fn a_saved_record_knows_its_plaintext_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = Seen::load(dir.path(), tagger(1));
        let entry = seen.tagger.entry("a.yaml", b"ciphertext", b"x: 1\n");
        seen.record("a.yaml", entry);
        seen.save().unwrap();

        let seen = Seen::load(dir.path(), tagger(1));
        let known = hit(&seen, "a.yaml", b"ciphertext", b"x: 1\n");
        assert_eq!(known.as_deref(), Some(&b"ciphertext"[..]));
        assert_eq!(hit(&seen, "a.yaml", b"ciphertext", b"x: 2\n"), None);
        assert_eq!(hit(&seen, "b.yaml", b"ciphertext", b"x: 1\n"), None);
        assert_eq!(hit(&seen, "a.yaml", b"other", b"x: 1\n"), None);
        // The plaintext is nowhere in the file, and another key reads none of it.
        let raw = std::fs::read(dir.path().join("coffer/seen")).unwrap();
        assert!(!raw.windows(4).any(|w| w == b"x: 1"));
        let stranger = Seen::load(dir.path(), tagger(2));
        assert_eq!(hit(&stranger, "a.yaml", b"ciphertext", b"x: 1\n"), None);
    }

    #[test]
    fn a_damaged_record_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = Seen::load(dir.path(), tagger(1));
        let entry = seen.tagger.entry("a", b"c", b"p");
        seen.record("a", entry);
        seen.save().unwrap();
        let file = dir.path().join("coffer/seen");
        let raw = std::fs::read(&file).unwrap();
        assert!(hit(&Seen::load(dir.path(), tagger(1)), "a", b"c", b"p").is_some());
        let mut flipped = raw.clone();
        flipped[MAGIC.len() + ID_LEN + OID_LEN + TAG_LEN + 5] ^= 1;
        for damaged in [&raw[..raw.len() - 1], &raw[..MAGIC.len() + 3], &flipped[..]] {
            std::fs::write(&file, damaged).unwrap();
            assert!(hit(&Seen::load(dir.path(), tagger(1)), "a", b"c", b"p").is_none());
        }
    }
}
