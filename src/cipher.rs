//! The sops value cipher: AES-256-GCM with a 32-byte IV, the `ENC[...]` string, and the MAC.
//!
//! Unlike sops, which draws a random IV for every value, coffer derives the IV from the
//! data key, the additional data (the key path), the type and the plaintext (an SIV-style
//! construction). The same value at the same path under the same data key therefore
//! encrypts to the same string, which keeps git diffs to the values that changed.

use aes_gcm::aead::consts::{U12, U16, U32};
use aes_gcm::aead::generic_array::{ArrayLength, GenericArray};
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::aes::Aes256;
use aes_gcm::AesGcm;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox};
use sha2::{Digest, Sha256, Sha512};
use zeroize::Zeroizing;

use crate::scalar::{canonical, ScalarType};

/// A file's 32-byte data key. Zeroized on drop, never printed.
pub struct DataKey {
    key: SecretBox<[u8; 32]>,
    /// What every value's cipher and IV start from, made once: ten thousand values
    /// would otherwise expand the AES key and key the HMAC ten thousand times.
    prepared: std::sync::OnceLock<Prepared>,
}

struct Prepared {
    /// The AES key schedule (wiped on drop: `aes`'s `zeroize`).
    aes: Aes256,
    /// AES-GCM for 32-byte IVs, which every value coffer or sops writes has: its
    /// GHASH key made once, not for each value.
    gcm32: AesGcm<Aes256, U32>,
    /// The IV's HMAC, keyed and given its label.
    iv: Hmac<Sha256>,
}

impl DataKey {
    fn new(key: Box<[u8; 32]>) -> Self {
        DataKey {
            key: SecretBox::new(key),
            prepared: std::sync::OnceLock::new(),
        }
    }

    pub fn generate() -> Self {
        let mut key = Box::new([0u8; 32]);
        getrandom(&mut key[..]);
        DataKey::new(key)
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Some(DataKey::new(Box::new(arr)))
    }

    pub fn expose(&self) -> &[u8; 32] {
        self.key.expose_secret()
    }

    fn prepared(&self) -> &Prepared {
        self.prepared.get_or_init(|| {
            let mut iv = <Hmac<Sha256> as Mac>::new_from_slice(self.expose())
                .expect("HMAC takes any key length");
            iv.update(b"coffer-value-iv-v1");
            let aes = Aes256::new(GenericArray::from_slice(self.expose()));
            Prepared {
                gcm32: AesGcm::from(aes.clone()),
                aes,
                iv,
            }
        })
    }

    /// AES-GCM under this key, for IVs of `N` bytes.
    fn gcm<N: ArrayLength<u8>>(&self) -> AesGcm<Aes256, N> {
        AesGcm::from(self.prepared().aes.clone())
    }
}

impl Clone for DataKey {
    fn clone(&self) -> Self {
        DataKey::new(Box::new(*self.expose()))
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// `buf` filled from the operating system's random source.
pub(crate) fn random(buf: &mut [u8]) {
    getrandom(buf)
}

fn getrandom(buf: &mut [u8]) {
    use aes_gcm::aead::rand_core::RngCore;
    aes_gcm::aead::OsRng.fill_bytes(buf);
}

/// Why a value did not decrypt. Carries no secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CipherError {
    #[error("not a sops ENC[AES256_GCM,...] value")]
    Format,
    #[error("bad base64 in the {0} field")]
    Base64(&'static str),
    #[error("unsupported IV length {0}")]
    IvLength(usize),
    #[error("unknown value type {0:?}")]
    Type(String),
    #[error("authentication failed (wrong data key, or the value or its key path was changed)")]
    Auth,
    #[error("its type tag was changed (the value was written as another type)")]
    TypeChanged,
}

/// The four fields of an `ENC[...]` string.
#[derive(Debug, PartialEq, Eq)]
struct Parsed<'a> {
    data: &'a str,
    iv: &'a str,
    tag: &'a str,
    ty: &'a str,
}

impl Parsed<'_> {
    fn scalar_type(&self) -> Result<ScalarType, CipherError> {
        ScalarType::from_sops(self.ty).ok_or_else(|| CipherError::Type(self.ty.to_string()))
    }

    /// The IV and the tag, decoded and checked as every reader of a value checks them.
    fn iv_and_tag(&self) -> Result<(Short, Short), CipherError> {
        let iv = Short::decode(self.iv).ok_or(CipherError::Base64("iv"))?;
        let tag = Short::decode(self.tag).ok_or(CipherError::Base64("tag"))?;
        if tag.decoded_len() != 16 {
            return Err(CipherError::Auth);
        }
        // sops takes the nonce size from the stored IV; 32 bytes is what every release wrote.
        if ![12, 16, 32].contains(&iv.decoded_len()) {
            return Err(CipherError::IvLength(iv.decoded_len()));
        }
        Ok((iv, tag))
    }
}

/// A decoded IV or tag, on the stack: each value has both. One longer than any IV is
/// refused by its length, so only that is kept of it.
struct Short {
    bytes: [u8; 48],
    len: usize,
}

impl Short {
    /// `None` when `text` is not base64.
    fn decode(text: &str) -> Option<Short> {
        let mut bytes = [0u8; 48];
        if base64::decoded_len_estimate(text.len()) > bytes.len() {
            let len = B64.decode(text).ok()?.len();
            return Some(Short { bytes, len });
        }
        let len = B64.decode_slice(text, &mut bytes).ok()?;
        Some(Short { bytes, len })
    }

    /// The decoded length, a long one's too (the bytes hold at most 48 of it).
    fn decoded_len(&self) -> usize {
        self.len
    }
}

impl std::ops::Deref for Short {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // A long one is refused before its bytes are read.
        &self.bytes[..self.len.min(self.bytes.len())]
    }
}

fn parse(value: &str) -> Result<Parsed<'_>, CipherError> {
    let inner = value
        .strip_prefix("ENC[AES256_GCM,data:")
        .ok_or(CipherError::Format)?;
    // sops anchors its pattern only at the start, so a trailing newline after `]` is fine.
    let inner = inner.trim_end();
    let inner = inner.strip_suffix(']').ok_or(CipherError::Format)?;
    // Split from the end: the data field may be megabytes long.
    by_commas(inner)
        .or_else(|| by_names(inner))
        .ok_or(CipherError::Format)
}

/// Base64 and type names hold no comma, so the last three commas split a well-formed
/// value (found by `memrchr`): the split [`by_names`] makes when each field starts with
/// its own name.
fn by_commas(inner: &str) -> Option<Parsed<'_>> {
    let (rest, ty) = inner.rsplit_once(',')?;
    let (rest, tag) = rest.rsplit_once(',')?;
    let (data, iv) = rest.rsplit_once(',')?;
    Some(Parsed {
        data,
        iv: iv.strip_prefix("iv:")?,
        tag: tag.strip_prefix("tag:")?,
        ty: ty.strip_prefix("type:")?,
    })
}

/// The fields split at the last `,type:`, the last `,tag:` before it, and the last
/// `,iv:` before that.
fn by_names(inner: &str) -> Option<Parsed<'_>> {
    let (rest, ty) = inner.rsplit_once(",type:")?;
    let (rest, tag) = rest.rsplit_once(",tag:")?;
    let (data, iv) = rest.rsplit_once(",iv:")?;
    Some(Parsed { data, iv, tag, ty })
}

/// The IV, tag and type of an `ENC[...]` value, without its data.
pub fn iv_tag_type(value: &str) -> Result<(Vec<u8>, Vec<u8>, ScalarType), CipherError> {
    let p = parse(value)?;
    let (iv, tag) = p.iv_and_tag()?;
    Ok((iv.to_vec(), tag.to_vec(), p.scalar_type()?))
}

/// True for strings that look like a sops encrypted value.
pub fn is_encrypted(value: &str) -> bool {
    parse(value).is_ok()
}

/// The IV: HMAC-SHA256 keyed by the data key over a domain tag, the additional data,
/// the type and the plaintext, each length-prefixed so no two inputs collide.
fn derive_iv(key: &DataKey, aad: &str, ty: &str, plaintext: &[u8]) -> [u8; 32] {
    let mut iv = IvStream::new(key, aad, ty, plaintext.len() as u64);
    iv.update(plaintext);
    iv.finish()
}

/// [`derive_iv`] over a plaintext given in pieces, its length known first.
pub struct IvStream(Hmac<Sha256>);

impl IvStream {
    pub fn new(key: &DataKey, aad: &str, ty: &str, len: u64) -> Self {
        let mut mac = key.prepared().iv.clone();
        for part in [aad.as_bytes(), ty.as_bytes()] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.update(&len.to_be_bytes());
        IvStream(mac)
    }

    pub fn update(&mut self, piece: &[u8]) {
        self.0.update(piece);
    }

    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into_bytes().into()
    }
}

/// AES-256-GCM over a value given in pieces (NIST SP 800-38D, from the same AES, CTR
/// and GHASH the aes-gcm crate uses), for values too large to hold twice. Every piece
/// but the last must be whole AES blocks.
pub struct Gcm {
    aes: aes::Aes256,
    ctr: ctr::Ctr32BE<aes::Aes256>,
    ghash: ghash::GHash,
    j0: GenericArray<u8, U16>,
    aad_len: usize,
    len: usize,
}

impl Gcm {
    pub fn new(key: &DataKey, iv: &[u8], aad: &str) -> Gcm {
        use aes::cipher::{BlockEncrypt, KeyInit as _, KeyIvInit};
        use ghash::universal_hash::UniversalHash;
        let aes = key.prepared().aes.clone();
        let mut h = GenericArray::default();
        aes.encrypt_block(&mut h);
        // The pre-counter block: the IV and 1 for 96-bit IVs, else GHASH of the IV.
        let j0 = if iv.len() == 12 {
            let mut j = GenericArray::default();
            j[..12].copy_from_slice(iv);
            j[15] = 1;
            j
        } else {
            let mut g = ghash::GHash::new(&h);
            g.update_padded(iv);
            g.update(&[lengths(0, iv.len())]);
            g.finalize()
        };
        let mut counter = j0;
        let low = u32::from_be_bytes(counter[12..].try_into().expect("4 bytes"));
        counter[12..].copy_from_slice(&low.wrapping_add(1).to_be_bytes());
        let ctr =
            ctr::Ctr32BE::<aes::Aes256>::new(GenericArray::from_slice(key.expose()), &counter);
        let mut ghash = ghash::GHash::new(&h);
        ghash.update_padded(aad.as_bytes());
        Gcm {
            aes,
            ctr,
            ghash,
            j0,
            aad_len: aad.len(),
            len: 0,
        }
    }

    /// Encrypt a piece in place.
    pub fn seal(&mut self, piece: &mut [u8]) {
        use aes::cipher::StreamCipher;
        use ghash::universal_hash::UniversalHash;
        self.ctr.apply_keystream(piece);
        self.ghash.update_padded(piece);
        self.len += piece.len();
    }

    /// Decrypt a piece in place (its plaintext is not authentic until [`Gcm::check`]).
    pub fn open(&mut self, piece: &mut [u8]) {
        use aes::cipher::StreamCipher;
        use ghash::universal_hash::UniversalHash;
        self.ghash.update_padded(piece);
        self.ctr.apply_keystream(piece);
        self.len += piece.len();
    }

    /// Decrypt a piece in place without authenticating it: for data whose tag was
    /// checked already, read again (its bytes compared by the caller).
    pub fn open_checked_before(&mut self, piece: &mut [u8]) {
        use aes::cipher::StreamCipher;
        self.ctr.apply_keystream(piece);
        self.len += piece.len();
    }

    pub fn tag(self) -> [u8; 16] {
        use aes::cipher::BlockEncrypt;
        use ghash::universal_hash::UniversalHash;
        let mut ghash = self.ghash;
        ghash.update(&[lengths(self.aad_len, self.len)]);
        let mut tag = ghash.finalize();
        let mut mask = self.j0;
        self.aes.encrypt_block(&mut mask);
        for (t, m) in tag.iter_mut().zip(mask.iter()) {
            *t ^= m;
        }
        tag.into()
    }

    /// Whether `tag` authenticates everything opened.
    pub fn check(self, tag: &[u8]) -> Result<(), CipherError> {
        let expected = self.tag();
        if bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], tag)) {
            Ok(())
        } else {
            Err(CipherError::Auth)
        }
    }
}

/// GCM's lengths block: the bit lengths of the additional data and the text.
fn lengths(a: usize, b: usize) -> GenericArray<u8, U16> {
    let mut block = GenericArray::default();
    block[..8].copy_from_slice(&(a as u64 * 8).to_be_bytes());
    block[8..].copy_from_slice(&(b as u64 * 8).to_be_bytes());
    block
}

/// Encrypt one value. Empty plaintexts are the caller's business: sops leaves them as they are.
pub fn encrypt(key: &DataKey, aad: &str, ty: ScalarType, plaintext: &[u8]) -> String {
    let mut out = String::new();
    encrypt_into(&mut out, key, aad, ty, plaintext);
    out
}

/// [`encrypt`], appending to `out`, so a caller can wrap a large value in quotes
/// without copying it again.
pub fn encrypt_into(out: &mut String, key: &DataKey, aad: &str, ty: ScalarType, plaintext: &[u8]) {
    let type_name = ty.sops_name();
    let iv = derive_iv(key, aad, type_name, plaintext);
    let cipher = &key.prepared().gcm32;
    // Encrypted in place: the buffer holds plaintext only until the call returns.
    let mut buf = Zeroizing::new(plaintext.to_vec());
    let tag = cipher
        .encrypt_in_place_detached(GenericArray::from_slice(&iv), aad.as_bytes(), &mut buf)
        .expect("AES-GCM encryption of an in-memory buffer cannot fail");
    out.reserve(buf.len() * 4 / 3 + 120);
    out.push_str("ENC[AES256_GCM,data:");
    B64.encode_string(&*buf, out);
    out.push_str(",iv:");
    B64.encode_string(iv, out);
    out.push_str(",tag:");
    B64.encode_string(tag, out);
    out.push_str(",type:");
    out.push_str(type_name);
    out.push(']');
}

/// How long a MAC is before it is encrypted: a SHA-512 in hex.
pub const MAC_LEN: usize = 128;

/// How long [`encrypt_into`] writes a value of type `ty` and `len` bytes: the IV and the
/// tag have fixed lengths, so an output can be sized before anything is encrypted.
pub fn encrypted_len(ty: ScalarType, len: usize) -> usize {
    const FIXED: usize =
        "ENC[AES256_GCM,data:".len() + ",iv:".len() + ",tag:".len() + ",type:".len() + "]".len();
    let b64 = |n| base64::encoded_len(n, true).unwrap_or(usize::MAX);
    FIXED
        .saturating_add(b64(len))
        .saturating_add(b64(32) + b64(16) + ty.sops_name().len())
}

/// Values at least this long (encoded) are decrypted by [`decrypt_hashing`].
pub const LARGE: usize = 1 << 20;
/// What the MAC thread is handed at a time: a multiple of the AES block.
const CHUNK: usize = 256 << 10;
// GHASH pads only the last chunk: every other one must be whole blocks.
const _: () = assert!(CHUNK.is_multiple_of(16));

/// Decrypt one large `ENC[...]` value and feed it to `mac`: the ciphertext is opened in
/// chunks (AES-GCM as NIST SP 800-38D defines it, from the same AES, CTR and GHASH the
/// aes-gcm crate uses) while a second thread hashes the chunks already opened, so a 50 MB
/// binary file costs about its SHA-512, not that plus the rest. Nothing is returned, and
/// `mac` must be dropped, when the tag does not match.
pub fn decrypt_hashing(
    key: &DataKey,
    aad: &str,
    value: &str,
    mac: &mut MacBuilder,
) -> Result<(ScalarType, Zeroizing<Vec<u8>>), CipherError> {
    let p = parse(value)?;
    let ty = p.scalar_type()?;
    // Other types are hashed in their canonical form, which needs the value whole.
    if !matches!(ty, ScalarType::Str | ScalarType::Bytes) {
        let (ty, bytes) = decrypt(key, aad, value)?;
        mac.add(ty, &bytes);
        return Ok((ty, bytes));
    }
    let mut data = Zeroizing::new(
        base64_simd::STANDARD
            .decode_to_vec(p.data)
            .map_err(|_| CipherError::Base64("data"))?,
    );
    let (iv, tag) = p.iv_and_tag()?;
    let mut gcm = Gcm::new(key, &iv, aad);
    std::thread::scope(|scope| {
        let (opened, to_hash) = std::sync::mpsc::channel::<&[u8]>();
        let hasher = scope.spawn(move || {
            for chunk in to_hash {
                mac.0.update(chunk);
            }
        });
        for chunk in data.chunks_mut(CHUNK) {
            gcm.open(chunk);
            if opened.send(chunk).is_err() {
                break;
            }
        }
        drop(opened);
        hasher.join().expect("the MAC thread does not panic");
    });
    gcm.check(&tag)?;
    Ok((ty, data))
}

/// Decrypt one `ENC[...]` value, returning its type and plaintext bytes.
pub fn decrypt(
    key: &DataKey,
    aad: &str,
    value: &str,
) -> Result<(ScalarType, Zeroizing<Vec<u8>>), CipherError> {
    decrypt_checking(key, aad, value, true)
}

/// [`decrypt`] for a check that compares the type with the one meant: a changed tag is
/// found there, so the HMAC that looks for one is spared (one a value, a tenth of an
/// encryption's time).
pub fn decrypt_typed_as_meant(
    key: &DataKey,
    aad: &str,
    value: &str,
) -> Result<(ScalarType, Zeroizing<Vec<u8>>), CipherError> {
    decrypt_checking(key, aad, value, false)
}

fn decrypt_checking(
    key: &DataKey,
    aad: &str,
    value: &str,
    tag_checked: bool,
) -> Result<(ScalarType, Zeroizing<Vec<u8>>), CipherError> {
    let p = parse(value)?;
    let ty = p.scalar_type()?;
    let mut data = Zeroizing::new(
        B64.decode(p.data)
            .map_err(|_| CipherError::Base64("data"))?,
    );
    let (iv, tag) = p.iv_and_tag()?;
    match iv.len() {
        32 => open(&key.prepared().gcm32, &iv, aad, &mut data, &tag)?,
        16 => open(&key.gcm::<U16>(), &iv, aad, &mut data, &tag)?,
        _ => open(&key.gcm::<U12>(), &iv, aad, &mut data, &tag)?,
    }
    if tag_checked && type_changed(key, aad, p.ty, &data, &iv) {
        return Err(CipherError::TypeChanged);
    }
    Ok((ty, data))
}

/// The type tag is outside what AES-GCM authenticates, and sops's MAC hashes `"7"`
/// the same whether it is a string or an int. coffer's IVs are derived from the type,
/// so a value coffer wrote whose IV is the one for *another* type had its tag changed.
/// (Files sops wrote have random IVs, which match no type.) Only the types the
/// plaintext is a value of are tried: coffer writes no other, and each try is an HMAC,
/// paid for every value of a file sops wrote.
fn type_changed(key: &DataKey, aad: &str, ty: &str, plaintext: &[u8], iv: &[u8]) -> bool {
    // Large values are strings or whole files, whose tags a reader checks by parsing.
    if iv.len() != 32 || plaintext.len() > 4096 || derive_iv(key, aad, ty, plaintext) == iv {
        return false;
    }
    ScalarType::TAGGED
        .into_iter()
        .filter(|t| t.sops_name() != ty && crate::scalar::valid_typed(*t, plaintext))
        .any(|t| derive_iv(key, aad, t.sops_name(), plaintext) == iv)
}

fn open<N: ArrayLength<u8>>(
    cipher: &AesGcm<Aes256, N>,
    iv: &[u8],
    aad: &str,
    data: &mut [u8],
    tag: &[u8],
) -> Result<(), CipherError> {
    cipher
        .decrypt_in_place_detached(
            GenericArray::from_slice(iv),
            aad.as_bytes(),
            data,
            GenericArray::from_slice(tag),
        )
        .map_err(|_| CipherError::Auth)
}

/// sops's MAC: SHA-512 over the canonical bytes of every value in document order.
pub struct MacBuilder(Sha512);

/// `echo -n sops | sha256sum`: sops seeds the hash with it when only encrypted values count.
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

impl MacBuilder {
    pub fn new(mac_only_encrypted: bool) -> Self {
        let mut h = Sha512::new();
        if mac_only_encrypted {
            h.update(MAC_ONLY_ENCRYPTED_INIT);
        }
        MacBuilder(h)
    }

    /// Feed one value. sops hashes the value re-serialised from its typed form, so an int
    /// written `007` counts as `7` and a bool as `True`/`False`.
    pub fn add(&mut self, ty: ScalarType, plaintext: &[u8]) {
        match canonical(ty, plaintext) {
            Some(c) => self.0.update(c.as_bytes()),
            None => self.0.update(plaintext),
        }
    }

    /// A piece of one string or bytes value, in order: such values are hashed as they
    /// are, so a value fed in pieces hashes as the whole would.
    pub fn add_piece(&mut self, piece: &[u8]) {
        self.0.update(piece);
    }

    /// Uppercase hex, as sops stores it.
    pub fn finish(self) -> Zeroizing<String> {
        const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
        let digest = self.0.finalize();
        let mut s = Zeroizing::new(String::with_capacity(128));
        // Digit by digit: a `format!` a byte was a string made and dropped 64 times
        // a file (2% of a checkout).
        for b in digest {
            s.push(char::from(DIGITS[usize::from(b >> 4)]));
            s.push(char::from(DIGITS[usize::from(b & 15)]));
        }
        s
    }
}

/// Constant-time string comparison, for MACs.
pub fn ct_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        /// Split by its commas, a value is split as by its field names, whenever the
        /// commas give a split at all: commas and names in odd places included.
        #[test]
        fn splitting_by_commas_is_splitting_by_names(
            fields in prop::collection::vec("([a-z=]{0,3}|,|,iv:|,tag:|,type:|iv:|tag:|type:){0,3}", 4),
            whole in any::<bool>(),
        ) {
            let inner = if whole {
                format!("{},iv:{},tag:{},type:{}", fields[0], fields[1], fields[2], fields[3])
            } else {
                fields.concat()
            };
            if let Some(fast) = by_commas(&inner) {
                prop_assert_eq!(Some(fast), by_names(&inner));
            }
        }
    }

    #[test]
    fn large_values_open_in_chunks_as_aes_gcm_opens_them_whole() {
        let key = DataKey::generate();
        let plaintext: Vec<u8> = (0..(LARGE + 3 * CHUNK + 7))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let aad = "data:";
        // coffer's own 32-byte IVs, and the 12- and 16-byte IVs other writers use.
        for iv_len in [32usize, 12, 16] {
            let iv: Vec<u8> = (0..iv_len as u8).collect();
            let value = match iv_len {
                32 => seal::<U32>(&key, &iv, aad, &plaintext),
                16 => seal::<U16>(&key, &iv, aad, &plaintext),
                _ => seal::<U12>(&key, &iv, aad, &plaintext),
            };
            let mut whole = MacBuilder::new(false);
            let (ty, bytes) = decrypt(&key, aad, &value).unwrap();
            whole.add(ty, &bytes);
            let mut chunked = MacBuilder::new(false);
            let (ty2, bytes2) = decrypt_hashing(&key, aad, &value, &mut chunked).unwrap();
            assert_eq!((ty2, &*bytes2), (ty, &*bytes), "IV of {iv_len} bytes");
            assert_eq!(*chunked.finish(), *whole.finish());
            assert_eq!(&*bytes2, &plaintext[..]);
            // Another AAD, or one flipped bit of the ciphertext, fails the tag.
            let mut mac = MacBuilder::new(false);
            assert!(decrypt_hashing(&key, "other:", &value, &mut mac).is_err());
            let at = "ENC[AES256_GCM,data:".len() + 100;
            let c = if &value[at..at + 1] == "A" { "B" } else { "A" };
            let flipped = format!("{}{c}{}", &value[..at], &value[at + 1..]);
            assert!(decrypt_hashing(&key, aad, &flipped, &mut MacBuilder::new(false)).is_err());
        }
    }

    /// An `ENC[…]` value sealed by the aes-gcm crate with a chosen IV.
    fn seal<N: ArrayLength<u8>>(key: &DataKey, iv: &[u8], aad: &str, plaintext: &[u8]) -> String {
        let cipher = AesGcm::<Aes256, N>::new(GenericArray::from_slice(key.expose()));
        let mut buf = plaintext.to_vec();
        let tag = cipher
            .encrypt_in_place_detached(GenericArray::from_slice(iv), aad.as_bytes(), &mut buf)
            .unwrap();
        format!(
            "ENC[AES256_GCM,data:{},iv:{},tag:{},type:str]",
            B64.encode(&buf),
            B64.encode(iv),
            B64.encode(tag)
        )
    }

    use super::*;

    fn key() -> DataKey {
        DataKey::from_slice(&[7u8; 32]).unwrap()
    }

    #[test]
    fn round_trip_and_determinism() {
        let k = key();
        let a = encrypt(&k, "db:password:", ScalarType::Str, b"hunter2");
        let b = encrypt(&k, "db:password:", ScalarType::Str, b"hunter2");
        assert_eq!(a, b);
        assert_ne!(a, encrypt(&k, "db:user:", ScalarType::Str, b"hunter2"));
        let (ty, pt) = decrypt(&k, "db:password:", &a).unwrap();
        assert_eq!(ty, ScalarType::Str);
        assert_eq!(&pt[..], b"hunter2");
        assert_eq!(decrypt(&k, "db:user:", &a).unwrap_err(), CipherError::Auth);
    }

    #[test]
    fn decrypts_a_value_written_by_sops() {
        // From interop/functional-tests-res/format.enc.yaml and its recovered data key.
        let k = DataKey::from_slice(&hex(
            "af5e68dd342b72c6a0475f81a50da4fde898f4b7742c92cbcf1668211411f4e4",
        ))
        .unwrap();
        let v = "ENC[AES256_GCM,data:8CvE,iv:tjchf/lmMpXDOA1tLE/N4oY9IqJIzfQ/7NlvQlDUtoA=,tag:1aFCHIRp3j/VPNcCEsE95A==,type:str]";
        let (_, pt) = decrypt(&k, "foo:", v).unwrap();
        assert_eq!(&pt[..], b"bar");
    }

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
