//! Binary files too large to hold several times over, encrypted and decrypted in pieces:
//! peak memory is a few pieces, whatever the file's size.
//!
//! Encrypting reads the plaintext twice (coffer's IV covers the whole value before its
//! first byte is encrypted), writes the document sops writes for a binary file, and
//! checks it by reading it back from the file: the layout around the data parsed as a
//! sops file, the data decrypted to the plaintext's digest, the tag and the MAC. The
//! output is byte for byte what encrypting in memory writes. Decrypting finds the data
//! in the file, opens the metadata without it, and decrypts into the caller's file; the
//! caller hands that file on only when this returns `Ok` (tag and MAC checked).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::cipher::{self, DataKey, Gcm, IvStream, MacBuilder};
use crate::format::binary::DATA_KEY;
use crate::format::Format;
use crate::keys::Keyring;
use crate::metadata::Metadata;
use crate::tree::ScalarType;
use crate::{Error, Result};
use aes_gcm::aead::consts::U16;
use aes_gcm::aead::generic_array::GenericArray;

/// Binary files at least this large are streamed.
pub const FROM: u64 = 4 << 20;

/// A piece of plaintext: whole AES blocks and whole base64 groups.
const PIECE: usize = 3 << 18;
const B64_PIECE: usize = PIECE / 3 * 4;
/// Binary files up to this size decrypt to a stream (stdout) in one reading held in
/// memory; larger ones in two readings, the first checking, the second writing.
const IN_MEMORY: u64 = 256 << 20;
const _: () = assert!(PIECE.is_multiple_of(16) && PIECE.is_multiple_of(3));

const PREFIX: &str = "ENC[AES256_GCM,data:";

/// The most AES-GCM encrypts under one IV: 2^32 - 2 blocks.
pub const MAX: u64 = ((1 << 32) - 2) * 16;

/// The additional data of a binary file's one value.
fn aad() -> String {
    format!("{DATA_KEY}:")
}

fn io(file: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(file, e)
}

/// Why the data does not open, as the error of its value (as reading the file whole
/// reports it); other errors as they are.
fn value_error(file: &str) -> impl Fn(Error) -> Error + '_ {
    move |e| match e {
        Error::Refused(reason) => Error::Value {
            file: file.to_string(),
            path: DATA_KEY.to_string(),
            reason,
        },
        e => e,
    }
}

/// Read up to a whole piece (less only at the end).
fn fill(src: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match src.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Hand every piece of `src`, from its start, to `each`: `Ok(false)` when it holds other
/// than `len` bytes (it changed, or grows as it is read), and then stops reading.
fn each_piece(
    src: &mut File,
    buf: &mut [u8],
    len: u64,
    each: &mut dyn FnMut(&mut [u8]) -> Result<()>,
) -> std::io::Result<Result<bool>> {
    src.seek(SeekFrom::Start(0))?;
    let mut seen = 0u64;
    loop {
        let n = fill(src, buf)?;
        if n == 0 {
            return Ok(Ok(seen == len));
        }
        seen += n as u64;
        if seen > len {
            return Ok(Ok(false));
        }
        if let Err(e) = each(&mut buf[..n]) {
            return Ok(Err(e));
        }
    }
}

/// The document around the data: everything before `ENC[...]`'s data, and everything
/// after its `]`, as encrypting in memory lays it out (the same store, the same splice).
fn frame(md: &Metadata) -> (String, String) {
    let doc = crate::format::binary::plain_document(Zeroizing::new(Vec::new()));
    let store = Format::Binary.store();
    let leaf = &doc.leaves[0];
    let (open, close) = store.enc_quotes(&doc, leaf);
    // A byte no JSON text holds raw marks where the value goes.
    let marker = "\u{1}";
    let (at, meta) = store.render_metadata(&doc, 0, &md.to_meta());
    let text = crate::tree::splice(
        &doc.text,
        vec![
            (leaf.span(), format!("{open}{marker}{close}")),
            (at..at, meta),
        ],
    );
    let (head, tail) = text.split_once(marker).expect("the marker was spliced in");
    (format!("{head}{PREFIX}"), tail.to_string())
}

/// Whether the rules encrypt a binary file's value (a streamed file must be encrypted
/// whole; anything else goes the general way).
pub fn encrypts_data(md: &Metadata) -> bool {
    md.rules().is_ok_and(|r| r.walk().next(&[DATA_KEY], None))
}

/// Encrypt the binary file `src` into `out` (empty, readable and writable), setting the
/// MAC in `md`, and check `out` by reading it back.
pub fn encrypt(
    file: &str,
    src: &mut File,
    out: &mut File,
    key: &DataKey,
    md: &mut Metadata,
) -> Result<()> {
    let meta = src.metadata().map_err(io(file))?;
    if !meta.is_file() {
        return Err(Error::Refused(format!("{file}: not a regular file")));
    }
    let len = meta.len();
    if len > MAX {
        return Err(Error::Refused(format!(
            "{file}: {len} bytes is more than AES-GCM encrypts under one IV ({MAX})"
        )));
    }
    let aad = aad();
    let changed = || {
        Error::Refused(format!(
            "{file}: it changed while coffer was reading it; nothing was written"
        ))
    };
    // First pass: the IV, the MAC and a digest of the plaintext.
    let mut buf = Zeroizing::new(vec![0u8; PIECE]);
    let mut iv = IvStream::new(key, &aad, ScalarType::Str.sops_name(), len);
    let mut mac = MacBuilder::new(md.mac_only_encrypted);
    let mut digest = Sha256::new();
    let whole = hashing_aside(&mut mac, |to_mac| {
        each_piece(src, &mut buf, len, &mut |piece| {
            iv.update(piece);
            to_mac(piece);
            digest.update(&*piece);
            Ok(())
        })
    })
    .map_err(io(file))??;
    if !whole {
        return Err(changed());
    }
    let iv = iv.finish();
    let digest = digest.finalize();
    md.mac = Some(cipher::encrypt(
        key,
        &md.lastmodified,
        ScalarType::Str,
        mac.finish().as_bytes(),
    ));
    let (head, tail) = frame(md);
    // Second pass: the document, the data encrypted and encoded piece by piece.
    let mut w = std::io::BufWriter::with_capacity(B64_PIECE, &mut *out);
    w.write_all(head.as_bytes()).map_err(io(file))?;
    let mut gcm = Gcm::new(key, &iv, &aad);
    let mut again = Sha256::new();
    let mut text = String::with_capacity(B64_PIECE);
    let whole = each_piece(src, &mut buf, len, &mut |piece| {
        again.update(&*piece);
        gcm.seal(piece);
        text.clear();
        B64.encode_string(&*piece, &mut text);
        w.write_all(text.as_bytes()).map_err(io(file))
    })
    .map_err(io(file))??;
    if !whole || again.finalize() != digest {
        return Err(changed());
    }
    let tag = gcm.tag();
    let end = format!(
        ",iv:{},tag:{},type:str]{tail}",
        B64.encode(iv),
        B64.encode(tag)
    );
    w.write_all(end.as_bytes()).map_err(io(file))?;
    w.flush().map_err(io(file))?;
    drop(w);
    check(file, out, key, &head, len, &digest)
}

/// Read the encrypted file back: the layout parses as a sops binary file with this
/// metadata and MAC, and the data decrypts, tag checked, to the plaintext's digest.
fn check(
    file: &str,
    out: &mut File,
    key: &DataKey,
    head: &str,
    len: u64,
    digest: &[u8],
) -> Result<()> {
    let bad = |why: &str| {
        Error::Refused(format!(
            "{file}: the streamed output does not read back ({why}); nothing was written"
        ))
    };
    let located = locate(out, true)
        .map_err(io(file))?
        .ok_or_else(|| bad("no data where it was written"))?;
    if located.small[..located.data_at] != *head.as_bytes() {
        return Err(bad("the layout before the data differs"));
    }
    let (meta, leaf_value) = located.metadata(file)?;
    let (iv, tag, ty) = cipher::iv_tag_type(&leaf_value).map_err(|e| bad(&e.to_string()))?;
    if ty != ScalarType::Str || located.data.end - located.data.start != len.div_ceil(3) * 4 {
        return Err(bad("the data is not the file's"));
    }
    let mut mac = MacBuilder::new(meta.mac_only_encrypted);
    let mut again = Sha256::new();
    decrypt_data(out, &located, key, &iv, &tag, &mut mac, &mut |piece| {
        again.update(piece);
        Ok(())
    })
    .map_err(|e| match e {
        Error::Io { .. } => e,
        e => bad(&e.to_string()),
    })?;
    if again.finalize()[..] != *digest {
        return Err(bad("the data decrypts to something else"));
    }
    let mut warnings = Vec::new();
    super::check_mac(file, key, &meta, &mac.finish(), false, &mut warnings)
        .map_err(|_| bad("the MAC does not match"))
}

/// Where an encrypted binary file's data is, and the file without it.
pub struct Located {
    /// Byte offsets of the data's base64 in the file.
    data: std::ops::Range<u64>,
    /// The file with the data left out: small, and a sops file still.
    small: Zeroizing<Vec<u8>>,
    /// Where the data was in `small`.
    data_at: usize,
    /// Whether every byte of the data was seen to be base64 (see [`locate`]).
    pub scanned: bool,
}

impl Located {
    /// Where the data lies in the file.
    pub fn data_range(&self) -> std::ops::Range<u64> {
        self.data.clone()
    }

    /// Whether the file is a sops file indeed (its metadata reads).
    pub fn is_sops(&self, file: &str) -> bool {
        self.metadata(file).is_ok()
    }

    /// Whether its rules encrypt the data, which is then streamed; other files (rules
    /// that do not read, the data left in clear) go the general way, which says why.
    pub fn streams(&self, file: &str) -> bool {
        self.metadata(file)
            .is_ok_and(|(meta, _)| encrypts_data(&meta))
    }

    /// The metadata, and the value as it stands without its data.
    fn metadata(&self, file: &str) -> Result<(Metadata, String)> {
        self.read(file).map(|(meta, value, _)| (meta, value))
    }

    /// The metadata, the value without its data, and the warnings reading them gave. The
    /// document must be a binary file's: one value, the one cut.
    fn read(&self, file: &str) -> Result<(Metadata, String, Vec<String>)> {
        let doc = crate::format::parse(file, Format::Binary, self.small.to_vec())?;
        let value = Format::Binary
            .store()
            .payload(&doc)
            .filter(|_| doc.leaves.len() == 1)
            .and_then(|i| doc.value_str(i).map(str::to_string))
            .filter(|v| v.starts_with(&format!("{PREFIX},iv:")))
            .ok_or_else(|| Error::NotEncrypted {
                file: file.to_string(),
            })?;
        let (_, meta, warnings) = super::metadata_of(file, doc)?;
        Ok((meta, value, warnings))
    }
}

/// Find the data of a sops binary file (`{"data": "ENC[AES256_GCM,data:…` in the first
/// 64 KiB, the data running to the first comma), reading it once without holding it.
/// `None` for anything else: it goes the general way.
///
/// Without `scan`, a large file's data is found from its end: the last 64 KiB hold the
/// comma that ends it and the metadata after it, which must read as the file's. Its
/// bytes are then only seen to be base64 by decoding them; a file that does not decode
/// is located again with `scan`, which tells a file for the general way (a JSON escape
/// in the data) from a damaged one.
pub fn locate(src: &mut File, scan: bool) -> std::io::Result<Option<Located>> {
    src.seek(SeekFrom::Start(0))?;
    // What is read may be plaintext (encrypt asks whether its input is encrypted).
    let mut start = Zeroizing::new(vec![0u8; 64 << 10]);
    let n = fill(src, &mut start)?;
    start.truncate(n);
    let Some(p) = memchr::memmem::find(&start, PREFIX.as_bytes()) else {
        return Ok(None);
    };
    let before = &start[..p];
    if !before.trim_ascii_start().starts_with(b"{")
        || !before.trim_ascii_end().ends_with(b"\"data\": \"")
    {
        return Ok(None);
    }
    let data_at = p + PREFIX.len();
    let total = src.metadata()?.len();
    // The data ending at `end`, when the value cut there is the file's one value, as
    // sops writes a binary file.
    let located = |end: u64, scanned: bool, src: &mut File| -> std::io::Result<_> {
        let mut small = Zeroizing::new(before.to_vec());
        small.extend_from_slice(PREFIX.as_bytes());
        src.seek(SeekFrom::Start(end))?;
        src.read_to_end(&mut small)?;
        let l = Located {
            data: data_at as u64..end,
            small,
            data_at,
            scanned,
        };
        Ok(l.is_sops("the file").then_some(l))
    };
    const TAIL: u64 = 64 << 10;
    if !scan && total > data_at as u64 + 4 * TAIL {
        let from = total - TAIL;
        let mut tail = Zeroizing::new(vec![0u8; TAIL as usize]);
        src.seek(SeekFrom::Start(from))?;
        let n = fill(src, &mut tail)?;
        if let Some(i) = first_not_base64(&tail[..n]).filter(|&i| tail[i] == b',') {
            if let Some(l) = located(from + i as u64, false, src)? {
                return Ok(Some(l));
            }
        }
    }
    // The data is base64 as sops writes it, ended by a comma; anything else (a JSON
    // escape, a line break) is left to the general way.
    let mut at = data_at as u64;
    src.seek(SeekFrom::Start(at))?;
    let mut buf = Zeroizing::new(vec![0u8; 1 << 20]);
    let end = loop {
        let n = fill(src, &mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        if let Some(i) = first_not_base64(&buf[..n]) {
            if buf[i] != b',' {
                return Ok(None);
            }
            break at + i as u64;
        }
        at += n as u64;
    };
    // What follows the data is the IV, tag and metadata: small, or no file of ours.
    if total.checked_sub(end).is_none_or(|tail| tail > 16 << 20) {
        return Ok(None);
    }
    located(end, true, src)
}

/// The first byte of `bytes` that is not base64 (`A-Za-z0-9+/=`). Blocks of 64 are
/// classified without branching, which the compiler turns into vector code: a 50 MB
/// file's data is scanned in a few milliseconds, not a fifth of a second.
fn first_not_base64(bytes: &[u8]) -> Option<usize> {
    let is = |b: u8| {
        ((b | 0x20).wrapping_sub(b'a') < 26)
            | (b.wrapping_sub(b'0') < 10)
            | (b == b'+')
            | (b == b'/')
            | (b == b'=')
    };
    let mut at = 0;
    for block in bytes.chunks(64) {
        if !block.iter().fold(true, |all, &b| all & is(b)) {
            return block.iter().position(|&b| !is(b)).map(|i| at + i);
        }
        at += block.len();
    }
    None
}

/// Run `work`, which hands the plaintext to `mac` piece by piece in order, with the
/// hashing on a thread of its own: sops's MAC (SHA-512 over the plaintext) is as much
/// work as reading, decrypting and writing the pieces, which go on meanwhile.
/// Each piece is copied into a buffer the hashing thread hands back once hashed: a
/// few buffers serve the whole file, rather than fresh memory (its page faults and
/// its return) for every piece.
fn hashing_aside<T>(mac: &mut MacBuilder, work: impl FnOnce(&mut dyn FnMut(&[u8])) -> T) -> T {
    std::thread::scope(|scope| {
        let (to_hash, pieces) = std::sync::mpsc::sync_channel::<Zeroizing<Vec<u8>>>(2);
        let (give_back, hashed) = std::sync::mpsc::channel::<Zeroizing<Vec<u8>>>();
        scope.spawn(move || {
            for p in pieces {
                mac.add_piece(&p);
                let _ = give_back.send(p);
            }
        });
        // The sender goes when `work` has returned, which ends the hashing thread; the
        // scope waits for it before returning. Buffers are wiped when dropped.
        work(&mut |piece| {
            let mut buf = hashed.try_recv().unwrap_or_default();
            buf.clear();
            buf.extend_from_slice(piece);
            let _ = to_hash.send(buf);
        })
    })
}

/// Decrypt the located data piece by piece, each piece to `sink`; `Ok` once the tag
/// authenticates all of it.
fn decrypt_data(
    src: &mut File,
    located: &Located,
    key: &DataKey,
    iv: &[u8],
    tag: &[u8],
    mac: &mut MacBuilder,
    sink: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    decrypt_pieces(
        src,
        located,
        key,
        iv,
        Some((tag, mac)),
        &mut |_| Ok(()),
        sink,
    )
}

/// [`decrypt_data`], each piece's base64 shown to `seen` before it is decrypted. With
/// no tag and MAC to check, the data is only decrypted: a second reading of data whose
/// first was checked, `seen` comparing each piece with the first reading's.
fn decrypt_pieces(
    src: &mut File,
    located: &Located,
    key: &DataKey,
    iv: &[u8],
    check: Option<(&[u8], &mut MacBuilder)>,
    seen: &mut dyn FnMut(&[u8]) -> Result<()>,
    sink: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let file = "the data";
    let mut left = located.data.end - located.data.start;
    if left / 4 * 3 > MAX {
        return Err(Error::Refused(
            "the data is more than AES-GCM encrypts under one IV".into(),
        ));
    }
    src.seek(SeekFrom::Start(located.data.start))
        .map_err(io(file))?;
    let mut text = vec![0u8; B64_PIECE];
    let mut piece = Zeroizing::new(vec![0u8; PIECE]);
    let mut gcm = Gcm::new(key, iv, &aad());
    let checked = check.is_some();
    let mut each = |to_mac: &mut dyn FnMut(&[u8])| -> Result<()> {
        while left > 0 {
            let k = next_piece(src, &mut text, &mut left, seen, &mut piece[..])?;
            if checked {
                gcm.open(&mut piece[..k]);
            } else {
                gcm.open_checked_before(&mut piece[..k]);
            }
            to_mac(&piece[..k]);
            sink(&piece[..k])?;
        }
        Ok(())
    };
    let Some((tag, mac)) = check else {
        return each(&mut |_| ());
    };
    hashing_aside(mac, |to_mac| each(to_mac))?;
    gcm.check(tag)
        .map_err(|e| Error::Refused(format!("the data does not decrypt ({e})")))
}

/// Read the next piece of the data's base64 (`left` bytes of it are still to come) into
/// `text`, show it to `seen`, and decode it into `into`; its length.
fn next_piece(
    src: &mut File,
    text: &mut [u8],
    left: &mut u64,
    seen: &mut dyn FnMut(&[u8]) -> Result<()>,
    into: &mut [u8],
) -> Result<usize> {
    let want = (*left as usize).min(B64_PIECE);
    let n = fill(src, &mut text[..want]).map_err(io("the data"))?;
    if n < want {
        return Err(Error::Refused("the file ends inside its data".into()));
    }
    *left -= n as u64;
    seen(&text[..n])?;
    // SIMD base64: the decoding was a fifth of the work beside AES-GCM.
    let b64 = base64_simd::STANDARD;
    let not_base64 = || Error::Refused("the data is not base64".into());
    if b64.decoded_length(&text[..n]).map_err(|_| not_base64())? > into.len() {
        return Err(not_base64());
    }
    let k = b64
        .decode(&text[..n], base64_simd::Out::from_slice(into))
        .map_err(|_| not_base64())?
        .len();
    // Every piece but the last is whole: padding inside the data is no sops data.
    if *left > 0 && k != PIECE {
        return Err(not_base64());
    }
    Ok(k)
}

/// [`decrypt_data`] into memory, piece by piece: each piece decoded and decrypted in a
/// buffer of its own, then handed to another thread that hashes it for the MAC and
/// keeps it, so the plaintext is never copied. Each buffer is made as its piece comes,
/// so filling fresh memory goes on beside the hashing rather than before it. `None`
/// when memory runs out: nothing is kept.
fn decrypt_held(
    src: &mut File,
    located: &Located,
    key: &DataKey,
    iv: &[u8],
    tag: &[u8],
    mac: &mut MacBuilder,
) -> Result<Option<Vec<Zeroizing<Vec<u8>>>>> {
    let mut left = located.data.end - located.data.start;
    src.seek(SeekFrom::Start(located.data.start))
        .map_err(io("the data"))?;
    let mut text = vec![0u8; B64_PIECE];
    let mut gcm = Gcm::new(key, iv, &aad());
    let held = std::thread::scope(|scope| -> Result<Option<_>> {
        let (to_hash, pieces) = std::sync::mpsc::sync_channel::<Zeroizing<Vec<u8>>>(4);
        let hasher = scope.spawn(move || {
            let mut held = Vec::new();
            for p in pieces {
                mac.add_piece(&p);
                held.push(p);
            }
            held
        });
        while left > 0 {
            let mut piece = Zeroizing::new(Vec::new());
            if crate::memory::fallible(|| piece.try_reserve_exact(PIECE)).is_err() {
                return Ok(None);
            }
            piece.resize(PIECE, 0);
            let k = next_piece(src, &mut text, &mut left, &mut |_| Ok(()), &mut piece)?;
            gcm.open(&mut piece[..k]);
            piece.truncate(k);
            let _ = to_hash.send(piece);
        }
        drop(to_hash);
        Ok(Some(
            hasher.join().expect("the hashing thread does not panic"),
        ))
    })?;
    let Some(held) = held else {
        return Ok(None);
    };
    gcm.check(tag)
        .map_err(|e| Error::Refused(format!("the data does not decrypt ({e})")))?;
    Ok(Some(held))
}

/// Tells the pieces of one reading of a file from another's: a universal hash (GHASH)
/// under a key drawn for this process, which whoever changes the file cannot know.
struct PieceDigest(GenericArray<u8, U16>);

impl PieceDigest {
    fn new() -> Self {
        let mut key = GenericArray::default();
        cipher::random(&mut key);
        PieceDigest(key)
    }

    fn of(&self, text: &[u8]) -> [u8; 16] {
        use aes::cipher::KeyInit as _;
        use ghash::universal_hash::UniversalHash;
        let mut g = ghash::GHash::new(&self.0);
        g.update_padded(text);
        let mut len = GenericArray::default();
        len[8..].copy_from_slice(&(text.len() as u64 * 8).to_be_bytes());
        g.update(&[len]);
        g.finalize().into()
    }
}

/// Decrypt the binary file `src` (located with [`locate`]) into `out`. The plaintext in
/// `out` is good only when this returns `Ok`: tag and MAC checked (the MAC unless
/// `ignore_mac`). Returns the warnings to show.
pub fn decrypt(
    file: &str,
    src: &mut File,
    located: &Located,
    keyring: &Keyring,
    ignore_mac: bool,
    out: &mut File,
) -> Result<Vec<String>> {
    let (meta, value, mut warnings) = located.read(file)?;
    let (iv, tag, key) = data_key(file, &meta, &value, keyring)?;
    let mut mac = MacBuilder::new(meta.mac_only_encrypted);
    let mut w = std::io::BufWriter::with_capacity(PIECE, &mut *out);
    decrypt_data(src, located, &key, &iv, &tag, &mut mac, &mut |piece| {
        w.write_all(piece).map_err(io(file))
    })
    .map_err(value_error(file))?;
    w.flush().map_err(io(file))?;
    drop(w);
    super::check_mac(file, &key, &meta, &mac.finish(), ignore_mac, &mut warnings)?;
    Ok(warnings)
}

/// Decrypt the binary file `src` (located with [`locate`]) to `out`, a stream nothing
/// can be taken back from (stdout): a first pass checks the tag and the MAC and keeps a
/// digest of each piece; the second writes only pieces whose digest is the first pass's,
/// so no byte written comes from data that was not authenticated, even if the file
/// changes in between. Returns the warnings to show.
pub fn decrypt_to(
    file: &str,
    src: &mut File,
    located: &Located,
    keyring: &Keyring,
    ignore_mac: bool,
    out: &mut dyn Write,
) -> Result<Vec<String>> {
    let (meta, value, mut warnings) = located.read(file)?;
    let (iv, tag, key) = data_key(file, &meta, &value, keyring)?;
    warnings.extend(write_checked(
        file,
        src,
        located,
        (&iv, &tag, &key),
        (&meta, ignore_mac),
        out,
        IN_MEMORY,
    )?);
    Ok(warnings)
}

/// [`decrypt_to`] with the data key opened.
fn write_checked(
    file: &str,
    src: &mut File,
    located: &Located,
    (iv, tag, key): (&[u8], &[u8], &DataKey),
    (meta, ignore_mac): (&Metadata, bool),
    out: &mut dyn Write,
    in_memory: u64,
) -> Result<Vec<String>> {
    // Up to `in_memory` bytes, one reading into memory (zeroized), checked, then
    // written: the file's size in memory once, and no second reading.
    let most = (located.data.end - located.data.start) / 4 * 3;
    if most <= in_memory {
        let mut mac = MacBuilder::new(meta.mac_only_encrypted);
        let held = decrypt_held(src, located, key, iv, tag, &mut mac).map_err(value_error(file))?;
        if let Some(plain) = held {
            let mut warnings = Vec::new();
            super::check_mac(file, key, meta, &mac.finish(), ignore_mac, &mut warnings)?;
            // Each piece written is wiped and freed on another thread meanwhile.
            std::thread::scope(|scope| {
                let (to_drop, written) = std::sync::mpsc::sync_channel::<Zeroizing<Vec<u8>>>(4);
                scope.spawn(move || written.into_iter().for_each(drop));
                plain
                    .into_iter()
                    .try_for_each(|piece| {
                        out.write_all(&piece)?;
                        let _ = to_drop.send(piece);
                        Ok(())
                    })
                    .and_then(|()| out.flush())
                    .map_err(|e| Error::io("<stdout>", e))
            })?;
            return Ok(warnings);
        }
    }
    let digest = PieceDigest::new();
    let mut digests: Vec<[u8; 16]> = Vec::new();
    let mut mac = MacBuilder::new(meta.mac_only_encrypted);
    decrypt_pieces(
        src,
        located,
        key,
        iv,
        Some((tag, &mut mac)),
        &mut |text| {
            digests.push(digest.of(text));
            Ok(())
        },
        &mut |_| Ok(()),
    )
    .map_err(value_error(file))?;
    let mut warnings = Vec::new();
    super::check_mac(file, key, meta, &mac.finish(), ignore_mac, &mut warnings)?;
    let mut next = digests.iter();
    let changed = || {
        Error::Refused(format!(
            "{file}: it changed while coffer was reading it; what was written stops there"
        ))
    };
    let mut w = std::io::BufWriter::with_capacity(PIECE, out);
    decrypt_pieces(
        src,
        located,
        key,
        iv,
        None,
        &mut |text| match next.next() {
            Some(d) if *d == digest.of(text) => Ok(()),
            _ => Err(changed()),
        },
        &mut |piece| w.write_all(piece).map_err(|e| Error::io("<stdout>", e)),
    )?;
    w.flush().map_err(|e| Error::io("<stdout>", e))?;
    Ok(warnings)
}

/// The IV and tag of a binary file's data, and its data key.
fn data_key(
    file: &str,
    meta: &Metadata,
    value: &str,
    keyring: &Keyring,
) -> Result<(Vec<u8>, Vec<u8>, DataKey)> {
    let (iv, tag, ty) = cipher::iv_tag_type(value).map_err(|e| Error::Value {
        file: file.to_string(),
        path: DATA_KEY.to_string(),
        reason: e.to_string(),
    })?;
    if !matches!(ty, ScalarType::Str | ScalarType::Bytes) {
        return Err(Error::Value {
            file: file.to_string(),
            path: DATA_KEY.to_string(),
            reason: format!("a binary file's data is a string, not a {}", ty.sops_name()),
        });
    }
    meta.rules().map_err(|error| Error::Metadata {
        file: file.to_string(),
        error,
    })?;
    let key = keyring
        .data_key(meta)
        .map_err(|reasons| super::no_key(file, meta, reasons))?;
    Ok((iv, tag, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scan finds the first byte that is not base64, wherever it stands, for every
    /// byte value.
    #[test]
    fn the_first_byte_that_is_not_base64_is_found() {
        let naive = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=');
        let data: Vec<u8> = b"QUJD+/==".iter().copied().cycle().take(200).collect();
        assert_eq!(first_not_base64(&data), None);
        for byte in 0..=255u8 {
            for at in [0, 1, 63, 64, 65, 130, 199] {
                let mut d = data.clone();
                d[at] = byte;
                let want = if naive(byte) { None } else { Some(at) };
                assert_eq!(first_not_base64(&d), want, "byte {byte:#x} at {at}");
            }
        }
    }

    fn temp_with(bytes: &[u8]) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    fn metadata() -> Metadata {
        Metadata {
            lastmodified: "2026-01-01T00:00:00Z".into(),
            version: Some(crate::metadata::SOPS_VERSION.into()),
            ..Default::default()
        }
    }

    /// Streamed, a file encrypts to exactly what encrypting it in memory writes, and
    /// reads back; a byte changed in the data, or the MAC, is refused.
    #[test]
    fn streaming_writes_what_the_general_way_writes() {
        let key = DataKey::generate();
        for len in [1usize, PIECE - 1, PIECE, PIECE + 1, 2 * PIECE + 7] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 7 + i / 3) as u8).collect();
            let mut md = metadata();
            let mut whole_md = md.clone();
            let mut src = temp_with(&plain);
            let mut out = tempfile::tempfile().unwrap();
            encrypt("f", &mut src, &mut out, &key, &mut md).unwrap();
            let mut streamed = Vec::new();
            out.seek(SeekFrom::Start(0)).unwrap();
            out.read_to_end(&mut streamed).unwrap();
            let whole = super::super::encrypt_plain(
                "f",
                Format::Binary,
                plain.clone(),
                &key,
                &mut whole_md,
            )
            .unwrap()
            .accept(super::super::Layout::Strict)
            .unwrap()
            .0;
            assert_eq!(streamed, whole.to_vec(), "{len}");

            // Decrypted piece by piece with the key.
            let located = locate(&mut out, true).unwrap().unwrap();
            // Found from the end, a large file's data is the same bytes.
            let from_end = locate(&mut out, false).unwrap().unwrap();
            assert_eq!(from_end.data_range(), located.data_range(), "{len}");
            assert_eq!(from_end.scanned, len < 256 << 10, "{len}");
            let (meta, value) = located.metadata("f").unwrap();
            let (iv, tag, _) = cipher::iv_tag_type(&value).unwrap();
            let mut got = Vec::new();
            let mut mac = MacBuilder::new(meta.mac_only_encrypted);
            decrypt_data(&mut out, &located, &key, &iv, &tag, &mut mac, &mut |p| {
                got.extend_from_slice(p);
                Ok(())
            })
            .unwrap();
            assert_eq!(got, plain, "{len}");
            // The MAC, hashed on its own thread piece by piece, is the whole value's.
            let mut whole_mac = MacBuilder::new(meta.mac_only_encrypted);
            whole_mac.add_piece(&plain);
            let whole_mac = whole_mac.finish();
            assert_eq!(*mac.finish(), *whole_mac, "{len}");
            // The same held in memory, piece by piece, for stdout.
            let mut held_mac = MacBuilder::new(meta.mac_only_encrypted);
            let held = decrypt_held(&mut out, &located, &key, &iv, &tag, &mut held_mac)
                .unwrap()
                .expect("memory enough");
            assert!(held.iter().all(|p| p.len() <= PIECE));
            assert_eq!(
                held.iter()
                    .flat_map(|p| p.iter().copied())
                    .collect::<Vec<u8>>(),
                plain,
                "{len}"
            );
            assert_eq!(*held_mac.finish(), *whole_mac, "{len}");

            // One base64 character of the data changed: the tag refuses it.
            let mut tampered = streamed.clone();
            let at = located.data.start as usize + 1;
            tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
            let mut t = temp_with(&tampered);
            let l = locate(&mut t, true).unwrap().unwrap();
            let r = decrypt_data(
                &mut t,
                &l,
                &key,
                &iv,
                &tag,
                &mut MacBuilder::new(false),
                &mut |_| Ok(()),
            );
            assert!(r.is_err(), "{len}");
            let held = decrypt_held(&mut t, &l, &key, &iv, &tag, &mut MacBuilder::new(false));
            assert!(held.is_err(), "{len}");
        }
    }

    /// To a stream nothing can be taken back from, only authenticated pieces go: a file
    /// changed after the first pass stops the second at the first changed piece.
    #[test]
    fn a_file_changed_between_the_passes_writes_nothing_unchecked() {
        let key = DataKey::generate();
        let plain: Vec<u8> = (0..3 * PIECE).map(|i| (i % 251) as u8).collect();
        let mut md = metadata();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.enc");
        let mut out = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        encrypt("f", &mut temp_with(&plain), &mut out, &key, &mut md).unwrap();
        let located = locate(&mut out, true).unwrap().unwrap();
        let (meta, value) = located.metadata("f").unwrap();
        let (iv, tag, _) = cipher::iv_tag_type(&value).unwrap();

        // Unchanged: all of it, read once into memory or twice.
        for in_memory in [IN_MEMORY, 0] {
            let mut all = Vec::new();
            let mut src = File::open(&path).unwrap();
            write_checked(
                "f",
                &mut src,
                &located,
                (&iv, &tag, &key),
                (&meta, false),
                &mut all,
                in_memory,
            )
            .unwrap();
            assert!(all == plain, "{in_memory}");
        }

        /// Changes the file's second piece once the first is written.
        struct Tamper<'p> {
            path: &'p std::path::Path,
            at: u64,
            got: Vec<u8>,
        }
        impl Write for Tamper<'_> {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                if self.got.is_empty() {
                    let mut f = std::fs::OpenOptions::new().write(true).open(self.path)?;
                    f.seek(SeekFrom::Start(self.at))?;
                    f.write_all(b"AAAA")?;
                }
                self.got.extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut tamper = Tamper {
            path: &path,
            at: located.data.start + B64_PIECE as u64 + 8,
            got: Vec::new(),
        };
        let mut src = File::open(&path).unwrap();
        let r = write_checked(
            "f",
            &mut src,
            &located,
            (&iv, &tag, &key),
            (&meta, false),
            &mut tamper,
            0,
        );
        assert!(r.is_err());
        assert!(
            tamper.got == plain[..PIECE],
            "only the first, checked piece"
        );
    }
}
