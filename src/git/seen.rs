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
//!
//! The record is an index (paths, ids, tags, where each blob's bytes lie, with their
//! own sum) followed by the bytes. A filter process reads the index when it starts and
//! each blob's bytes only when it answers with them: a `git status` that re-cleans one
//! file of a thousand does not read the other 999 blobs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

const MAGIC: &[u8] = b"coffer seen 5\n";
const ID_LEN: usize = 16;
const OID_LEN: usize = 20;
const TAG_LEN: usize = 32;
/// CRC-32s: they only have to find damage (each entry is checked when used: its tag
/// by the identity's key; its bytes by their own sum, then as a blob by git), and the
/// index is read before every filter process's first answer.
const SUM_LEN: usize = 4;
/// Larger blobs are read from git's store when needed: the record stays small.
const KEEP_BYTES: usize = 64 << 10;

/// What coffer saw at one path: made by `Tagger::entry`, kept by `Seen::record`.
pub struct Entry {
    oid: [u8; OID_LEN],
    tag: [u8; TAG_LEN],
    bytes: Bytes,
}

/// A blob's bytes: none kept (too large), made in this process, or in the record read.
enum Bytes {
    None,
    Held(Vec<u8>),
    Recorded { at: u64, len: usize, sum: u32 },
}

/// What the record says of a path's plaintext.
pub enum Hit {
    Miss,
    /// It is the blob's plaintext; here are the blob's bytes.
    Bytes(Vec<u8>),
    /// It is the blob's plaintext; the blob is in git's store.
    Stored,
}

/// A tag over a path and its plaintext, waiting for the blob ([`Tagger::begin`]).
pub struct Begun {
    mac: Hmac<Sha256>,
}

impl Begun {
    fn tag(mut self, blob: git2::Oid) -> [u8; TAG_LEN] {
        self.mac.update(blob.as_bytes());
        self.mac.finalize().into_bytes().into()
    }

    /// The entry for `blob`, whose plaintext this tag began over.
    pub fn entry(self, blob: &[u8]) -> Entry {
        let kept = (blob.len() <= KEEP_BYTES).then(|| blob.to_vec());
        self.made(blob_id(blob), kept)
    }

    /// [`Begun::entry`], taking the blob's bytes rather than copying them. (git names
    /// the blob it smudges, but the bytes it sends are not the blob's where an `ident`
    /// or end-of-line attribute changed them first: the id is the bytes' own.)
    pub fn entry_taking(self, blob: Vec<u8>) -> Entry {
        let id = blob_id(&blob);
        self.made(id, (blob.len() <= KEEP_BYTES).then_some(blob))
    }

    fn made(self, id: git2::Oid, kept: Option<Vec<u8>>) -> Entry {
        Entry {
            oid: id.as_bytes().try_into().expect("SHA-1 ids"),
            tag: self.tag(id),
            bytes: kept.map_or(Bytes::None, Bytes::Held),
        }
    }
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
        self.begin(path, plaintext).tag(blob)
    }

    /// A tag of `plaintext` at `path`, to be finished with its blob: the plaintext need
    /// not be held until the blob is made. The blob's id comes last, at its fixed length.
    pub fn begin(&self, path: &str, plaintext: &[u8]) -> Begun {
        let mut mac = self.mac();
        mac.update(&(path.len() as u64).to_le_bytes());
        mac.update(path.as_bytes());
        mac.update(plaintext);
        Begun { mac }
    }

    /// The entry for `blob`, whose plaintext at `path` is `plaintext`.
    #[cfg(test)]
    pub fn entry(&self, path: &str, blob: &[u8], plaintext: &[u8]) -> Entry {
        self.begin(path, plaintext).entry(blob)
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
    /// The record read, open for its blobs' bytes. A new record replaces the file by
    /// rename, so this one stays whole however long it is held.
    recorded: Option<std::fs::File>,
    entries: HashMap<String, Entry>,
    changed: bool,
    /// Some recorded bytes did not read back whole: the record is written anew.
    damaged: std::cell::Cell<bool>,
}

impl Seen {
    /// The record in `git_dir`, or an empty one when there is none or it is damaged.
    pub fn load(git_dir: &Path, tagger: Tagger) -> Seen {
        let file = git_dir.join("coffer").join("seen");
        let read = std::fs::File::open(&file)
            .ok()
            .and_then(|f| read_index(&f, &tagger.key_id()).map(|e| (f, e)));
        let (recorded, entries) = match read {
            Some((f, entries)) => (Some(f), entries),
            None => (None, HashMap::new()),
        };
        Seen {
            tagger,
            file,
            recorded,
            entries,
            changed: false,
            damaged: Default::default(),
        }
    }

    /// Whether `plaintext` is what coffer last saw `blob` open to at `path`.
    pub fn lookup(&self, path: &str, blob: git2::Oid, plaintext: &[u8]) -> Hit {
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
        // their sum finds damage, so no SHA-1 of them on the way to the answer.
        match &entry.bytes {
            Bytes::None => Hit::Stored,
            bytes => self
                .bytes(bytes)
                .map_or(Hit::Miss, |b| Hit::Bytes(b.into_owned())),
        }
    }

    /// A kept blob's bytes (read from the record, or held); `None` when they cannot be
    /// read whole.
    fn bytes<'b>(&self, bytes: &'b Bytes) -> Option<std::borrow::Cow<'b, [u8]>> {
        use std::os::unix::fs::FileExt;
        match bytes {
            Bytes::None => None,
            Bytes::Held(b) => Some(b.into()),
            Bytes::Recorded { at, len, sum } => {
                let mut b = vec![0; *len];
                let read = self.recorded.as_ref()?.read_exact_at(&mut b, *at).is_ok();
                let whole = read && crc32fast::hash(&b) == *sum;
                if !whole {
                    self.damaged.set(true);
                }
                whole.then_some(b.into())
            }
        }
    }

    /// Keep what coffer saw at `path`. Once damage was found, entries are taken anew
    /// (with their bytes) even where the record already has them.
    pub fn record(&mut self, path: &str, entry: Entry) {
        if !self.damaged.get()
            && self
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
    /// that only costs the next `git status` some speed. An entry whose bytes no longer
    /// read back whole is written without them (its blob is then read from git's store).
    pub fn save(&self) -> std::io::Result<()> {
        if !self.changed && !self.damaged.get() {
            return Ok(());
        }
        let mut index = Vec::new();
        index.extend_from_slice(MAGIC);
        index.extend_from_slice(&self.tagger.key_id());
        let mut blobs = Vec::new();
        for (path, e) in &self.entries {
            let bytes = self.bytes(&e.bytes).unwrap_or_default();
            index.extend_from_slice(&e.oid);
            index.extend_from_slice(&e.tag);
            index.extend_from_slice(&(path.len() as u32).to_le_bytes());
            index.extend_from_slice(path.as_bytes());
            index.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            index.extend_from_slice(&crc32fast::hash(&bytes).to_le_bytes());
            blobs.extend_from_slice(&bytes);
        }
        // The index's length, then its sum, then the bytes it places.
        let len = (index.len() - MAGIC.len() - ID_LEN) as u64;
        index.splice(
            MAGIC.len() + ID_LEN..MAGIC.len() + ID_LEN,
            len.to_le_bytes(),
        );
        let sum = crc32fast::hash(&index);
        index.extend_from_slice(&sum.to_le_bytes());
        index.extend_from_slice(&blobs);
        super::replace_record(&self.file, &index)
    }
}

/// The entries of a record's index, `None` unless the index is whole and written under
/// `key_id`. Their bytes are placed, not read.
fn read_index(file: &std::fs::File, key_id: &[u8; ID_LEN]) -> Option<HashMap<String, Entry>> {
    use std::os::unix::fs::FileExt;
    let size = file.metadata().ok()?.len();
    let mut head = [0u8; MAGIC.len() + ID_LEN + 8];
    file.read_exact_at(&mut head, 0).ok()?;
    let rest = head.strip_prefix(MAGIC)?.strip_prefix(&key_id[..])?;
    let len = u64::from_le_bytes(rest.try_into().ok()?);
    let index_end = (head.len() as u64).checked_add(len)?;
    if index_end.checked_add(SUM_LEN as u64)? > size {
        return None;
    }
    let mut index = vec![0u8; usize::try_from(index_end).ok()? + SUM_LEN];
    file.read_exact_at(&mut index, 0).ok()?;
    let (body, sum) = index.split_at(index.len() - SUM_LEN);
    if crc32fast::hash(body).to_le_bytes() != sum {
        return None;
    }
    let mut rest = &body[head.len()..];
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, tail) = rest.split_at_checked(n)?;
        rest = tail;
        Some(head)
    };
    let u32_of = |b: &[u8]| b.try_into().ok().map(u32::from_le_bytes);
    let mut at = index_end + SUM_LEN as u64;
    let mut entries = HashMap::new();
    while let Some(oid) = take(OID_LEN) {
        let oid = oid.try_into().ok()?;
        let tag = take(TAG_LEN)?.try_into().ok()?;
        let len = u32_of(take(4)?)? as usize;
        let path = std::str::from_utf8(take(len)?).ok()?.to_string();
        let len = u32_of(take(4)?)? as usize;
        let sum = u32_of(take(4)?)?;
        let bytes = match len {
            0 => Bytes::None,
            len => Bytes::Recorded { at, len, sum },
        };
        at = at.checked_add(len as u64)?;
        entries.insert(path, Entry { oid, tag, bytes });
    }
    // The bytes it places are all there.
    (at <= size).then_some(entries)
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
            Hit::Bytes(b) => Some(b),
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

    /// A blob's bytes are read only when asked for, and bytes damaged since are a miss
    /// (the full clean then answers), never other bytes. A record replaced meanwhile by
    /// another process does not change what this one reads.
    #[test]
    fn blob_bytes_are_read_when_asked_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = Seen::load(dir.path(), tagger(1));
        for (path, blob) in [("a", &b"first blob"[..]), ("b", b"second blob")] {
            let entry = seen.tagger.entry(path, blob, b"p");
            seen.record(path, entry);
        }
        seen.save().unwrap();
        let file = dir.path().join("coffer/seen");
        let raw = std::fs::read(&file).unwrap();

        let held = Seen::load(dir.path(), tagger(1));
        let mut other = Seen::load(dir.path(), tagger(1));
        let entry = other.tagger.entry("c", b"third", b"p");
        other.record("c", entry);
        other.save().unwrap();
        assert_eq!(
            hit(&held, "a", b"first blob", b"p").as_deref(),
            Some(&b"first blob"[..])
        );
        assert_eq!(
            hit(&held, "b", b"second blob", b"p").as_deref(),
            Some(&b"second blob"[..])
        );
        assert_eq!(hit(&held, "c", b"third", b"p"), None);

        // One byte of the second blob changed: that entry misses, the first still hits.
        let at = raw.windows(6).position(|w| w == b"second").unwrap();
        let mut damaged = raw.clone();
        damaged[at] ^= 1;
        std::fs::write(&file, &damaged).unwrap();
        let seen = Seen::load(dir.path(), tagger(1));
        assert_eq!(hit(&seen, "b", b"second blob", b"p"), None);
        assert_eq!(
            hit(&seen, "a", b"first blob", b"p").as_deref(),
            Some(&b"first blob"[..])
        );
        // Damage found, the record is written anew: an entry the clean made again
        // takes its fresh bytes, one not made again is kept without them (its blob then
        // comes from git's store).
        let mut seen = seen;
        let entry = seen.tagger.entry("b", b"second blob", b"p");
        seen.record("b", entry);
        seen.save().unwrap();
        assert_eq!(
            hit(
                &Seen::load(dir.path(), tagger(1)),
                "b",
                b"second blob",
                b"p"
            )
            .as_deref(),
            Some(&b"second blob"[..])
        );
        std::fs::write(&file, &damaged).unwrap();
        let seen = Seen::load(dir.path(), tagger(1));
        assert_eq!(hit(&seen, "b", b"second blob", b"p"), None);
        seen.save().unwrap();
        let seen = Seen::load(dir.path(), tagger(1));
        assert_eq!(
            hit(&seen, "b", b"second blob", b"p").as_deref(),
            Some(&b""[..])
        );
        assert_eq!(
            hit(&seen, "a", b"first blob", b"p").as_deref(),
            Some(&b"first blob"[..])
        );
    }
}
