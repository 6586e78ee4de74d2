//! The operations: encrypt a plaintext file, open (decrypt and verify) an encrypted one,
//! and write it back as plaintext, in another format, or re-encrypted after a change.

use std::ops::Range;

use zeroize::Zeroizing;

use crate::cipher::{self, DataKey, MacBuilder};
use crate::format::{Format, Store};
use crate::keys::Keyring;
use crate::metadata::{self, Metadata};
use crate::path::{self, Step};
use crate::scalar;
use crate::tree::{splice, splice_checked, Document, Leaf, LeafKind, Node, ScalarType, Value};
use crate::{Error, Result};

pub mod stream;
pub mod verify;

#[cfg(test)]
mod tests;

pub use crate::format::parse;

/// A decrypted value, and whether it was stored encrypted.
pub struct Plain {
    pub ty: ScalarType,
    pub bytes: Zeroizing<Vec<u8>>,
    pub encrypted: bool,
}

/// Bytes ready to be written, checked by reading them back. `fallback` says what layout
/// could not be kept when the bytes are in the canonical layout instead (a warning for
/// the user, or a refusal under `--strict-layout`).
pub struct Sealed {
    pub bytes: Zeroizing<Vec<u8>>,
    pub fallback: Option<String>,
}

/// Whether output may fall back to the canonical layout when its own does not read back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// Keep the data: canonical layout, with a warning.
    #[default]
    Fallback,
    /// Exact bytes or nothing (`--strict-layout`).
    Strict,
}

impl Sealed {
    /// The bytes to write under `layout`, and the warning to show, if any.
    pub fn accept(self, layout: Layout) -> Result<(Zeroizing<Vec<u8>>, Option<String>)> {
        match (self.fallback, layout) {
            (Some(note), Layout::Strict) => Err(Error::LayoutRefused { note }),
            (note, _) => Ok((self.bytes, note)),
        }
    }
}

/// Document order: values and comments sorted by where they stand.
fn order(doc: &Document) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..doc.leaves.len()).collect();
    idx.sort_by_key(|&i| doc.leaves[i].span.start);
    idx
}

/// A comment leaf's text, for the comment-regex rules; `None` for a value.
fn comment_text(leaf: &Leaf) -> Option<&str> {
    (leaf.kind == LeafKind::Comment).then(|| leaf.value_str().unwrap_or_default())
}

/// Encrypt a parsed plaintext document and check the result by reading it back (see
/// `verify`). When the document's own layout does not read back, it is written in the
/// format's canonical layout instead, checked the same way, and `fallback` says so;
/// when that fails too, the input is refused and nothing is returned. `md` carries the
/// wrapped keys and the rules; its `mac` is filled in here.
pub fn encrypt_document(
    format: Format,
    file: &str,
    doc: &Document,
    key: &DataKey,
    md: &mut Metadata,
) -> Result<Sealed> {
    reserved_keys(file, doc)?;
    if doc.is_encrypted() {
        return Err(Error::AlreadyEncrypted {
            file: file.to_string(),
        });
    }
    let store = format.store();
    let expected = verify::Content::of_plain(doc);
    let why = match doc.foreign {
        // Its own layout would not read back with sops: no need to try.
        Some((pos, what)) => format!("{what} at line {}", doc.line_of(pos)),
        None => match splice_encrypted(store, file, doc, key, md)? {
            Ok(kept) => match verify::encrypted(file, format, kept, key, doc, &expected, true) {
                Ok(checked) => {
                    return Ok(Sealed {
                        bytes: checked.bytes,
                        fallback: checked.differs_at.map(|at| round_trip_note(file, doc, at)),
                    })
                }
                Err(why) => why,
            },
            Err(why) => why,
        },
    };
    let refused = |again: String| Error::Unsupported {
        file: file.to_string(),
        what: format!("cannot be encrypted so that it reads back ({again}); nothing was written"),
    };
    let canonical = store
        .canonical(doc, &|i| leaf_text(doc, i))
        .and_then(|text| store.parse(into_bytes(text)).map_err(|e| e.to_string()))
        .map_err(&refused)?;
    let bytes = splice_encrypted(store, file, &canonical, key, md)?.map_err(&refused)?;
    // Not its own layout: the warning says so already.
    let bytes = verify::encrypted(file, format, bytes, key, doc, &expected, false)
        .map_err(refused)?
        .bytes;
    Ok(Sealed {
        bytes,
        fallback: Some(layout_note(file, doc, &why)),
    })
}

/// The warning for an encrypted file whose decryption gives the source's values but
/// not its bytes (from `at`): said, never silent.
fn round_trip_note(file: &str, doc: &Document, at: usize) -> String {
    // The construct the difference falls in (a block scalar, from its header), else one
    // on the difference's line.
    let owner = doc
        .leaves
        .iter()
        .filter(|l| l.span.start <= at && at < l.span.end)
        .map(|l| l.span.start)
        .min();
    let line = doc.line_of(at);
    let construct = owner
        .and_then(|start| doc.constructs.iter().find(|(pos, _)| *pos == start))
        .or_else(|| {
            doc.constructs
                .iter()
                .find(|(pos, _)| doc.line_of(*pos) == line)
        });
    match construct {
        Some((pos, what)) => format!(
            "{file}: the {what} at line {} will decrypt to the same value written another way",
            doc.line_of(*pos)
        ),
        None => format!("{file}: line {line} will decrypt to the same values written another way"),
    }
}

/// The warning for a document written in the canonical layout.
fn layout_note(file: &str, doc: &Document, why: &str) -> String {
    if doc.foreign.is_some() {
        return format!("{file}: {why}; rewritten in the canonical layout");
    }
    match doc.constructs.first() {
        Some((pos, what)) => format!(
            "{file}: {what} at line {} rewritten in the canonical layout ({why})",
            doc.line_of(*pos)
        ),
        None => format!("{file}: layout not kept ({why}); rewritten in the canonical layout"),
    }
}

/// A plaintext leaf's type and text.
fn leaf_text(
    doc: &Document,
    i: usize,
) -> std::result::Result<(ScalarType, Zeroizing<String>), String> {
    let leaf = &doc.leaves[i];
    let text = leaf.value_str().ok_or_else(|| {
        format!(
            "the value at {} is not UTF-8 text",
            display_path(&leaf.path)
        )
    })?;
    Ok((leaf.ty, Zeroizing::new(text.to_string())))
}

/// A plaintext file may not use the name sops keeps its metadata under.
fn reserved_keys(file: &str, doc: &Document) -> Result<()> {
    if let Some(pos) = doc.reserved_block() {
        let at = pos + doc.text[pos..].len() - doc.text[pos..].trim_start().len();
        return Err(Error::Unsupported {
            file: file.to_string(),
            what: format!(
                "the key `sops` (line {}) is reserved for the encryption metadata; rename it",
                doc.line_of(at)
            ),
        });
    }
    for d in &doc.docs {
        if let Node::Map(entries) = &d.root {
            if let Some(e) = entries.iter().find(|e| e.key == "sops") {
                return Err(Error::Unsupported {
                    file: file.to_string(),
                    what: format!(
                        "the key `sops` (line {}) is reserved for the encryption metadata; rename it",
                        doc.line_of(e.at)
                    ),
                });
            }
        }
    }
    Ok(())
}

/// The encrypted text of `doc`: every value's span replaced where it stands, metadata
/// added. Not checked: [`encrypt_document`] is the way in. The inner error: the spans
/// overlap (the layout cannot be kept).
fn splice_encrypted(
    store: &dyn Store,
    file: &str,
    doc: &Document,
    key: &DataKey,
    md: &mut Metadata,
) -> Result<std::result::Result<Zeroizing<Vec<u8>>, String>> {
    let rules = md.rules().map_err(|e| Error::Metadata {
        file: file.to_string(),
        message: e.to_string(),
    })?;
    // Decide leaf by leaf first; then hash the MAC and encrypt, on two cores when the
    // values are large (a binary file is one value of many megabytes).
    let mut hashed: Vec<(ScalarType, &[u8])> = Vec::new();
    let mut to_encrypt: Vec<&Leaf> = Vec::new();
    let mut walk = rules.walk();
    for i in order(doc) {
        let leaf = &doc.leaves[i];
        let is_comment = leaf.kind == LeafKind::Comment;
        let encrypt = walk.next(&leaf.path, comment_text(leaf));
        if leaf.ty == ScalarType::Null {
            continue;
        }
        if !is_comment && (encrypt || !md.mac_only_encrypted) {
            hashed.push((leaf.ty, &leaf.value));
        }
        if encrypt && !leaf.value.is_empty() {
            to_encrypt.push(leaf);
        }
    }
    let mac_only = md.mac_only_encrypted;
    let compute_mac = || {
        let mut mac = MacBuilder::new(mac_only);
        for (ty, v) in &hashed {
            mac.add(*ty, v);
        }
        mac.finish()
    };
    let encrypt_all = || -> Vec<(Range<usize>, String)> {
        to_encrypt
            .iter()
            .map(|leaf| {
                let (open, close) = if leaf.kind == LeafKind::Comment {
                    (String::new(), "")
                } else {
                    store.enc_quotes(doc, leaf)
                };
                let mut text = open;
                cipher::encrypt_into(&mut text, key, &leaf.aad(), leaf.ty, &leaf.value);
                text.push_str(close);
                (leaf.span.clone(), text)
            })
            .collect()
    };
    let total: usize = hashed.iter().map(|(_, v)| v.len()).sum();
    let (mac, mut edits) = if total >= 1 << 20 {
        std::thread::scope(|s| {
            let mac = s.spawn(compute_mac);
            let edits = encrypt_all();
            (mac.join().expect("the MAC thread does not panic"), edits)
        })
    } else {
        (compute_mac(), encrypt_all())
    };
    md.mac = Some(cipher::encrypt(
        key,
        &md.lastmodified,
        ScalarType::Str,
        mac.as_bytes(),
    ));
    let meta = md.to_meta();
    for d in 0..doc.docs.len() {
        let (at, text) = store.render_metadata(doc, d, &meta);
        edits.push((at..at, text));
    }
    Ok(splice_checked(&doc.text, edits)
        .map(into_bytes)
        .ok_or_else(|| "the values and the metadata overlap in the text".to_string()))
}

fn into_bytes(mut s: Zeroizing<String>) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(std::mem::take(&mut *s).into_bytes())
}

/// An encrypted file, opened: its data key, metadata and decrypted values.
pub struct Opened {
    pub file: String,
    pub format: Format,
    pub doc: Document,
    pub meta: Metadata,
    pub key: DataKey,
    /// One entry per leaf of `doc`; `None` for nulls and comments left as they were.
    pub values: Vec<Option<Plain>>,
    /// Things the user should hear about on stderr (never a secret).
    pub warnings: Vec<String>,
    /// Comments the rules encrypt that stand in clear (typed in after encryption).
    pub clear_comments: Vec<usize>,
    /// The checked plaintext, once [`Opened::render`] has made it: edit, set and the git
    /// filter ask for it again to see whether anything changed.
    rendered: std::cell::OnceCell<(Zeroizing<Vec<u8>>, Option<String>)>,
    /// A file of a sops major version coffer does not know may be written (as 3.x): the
    /// user said so (`--force`).
    pub rewrite_future: bool,
}

/// Read the metadata of an encrypted file without decrypting anything.
pub fn read_metadata(
    file: &str,
    format: Format,
    bytes: impl Into<Zeroizing<Vec<u8>>>,
) -> Result<(Document, Metadata, Vec<String>)> {
    metadata_of(file, parse(file, format, bytes)?)
}

/// The metadata of a parsed file. Every document of a file sops wrote carries it.
fn metadata_of(file: &str, doc: Document) -> Result<(Document, Metadata, Vec<String>)> {
    let mut warnings = Vec::new();
    let raw = doc
        .docs
        .iter()
        .find_map(|d| d.meta.as_ref())
        .map(|(m, _)| m.clone())
        .ok_or_else(|| Error::NotEncrypted {
            file: file.to_string(),
        })?;
    if let Some(n) = doc.docs.iter().position(|d| d.meta.is_none()) {
        return Err(Error::Metadata {
            file: file.to_string(),
            message: format!("document {} of the file has no sops metadata", n + 1),
        });
    }
    let meta = Metadata::parse(&raw).map_err(|message| Error::Metadata {
        file: file.to_string(),
        message,
    })?;
    if meta.version.is_none() {
        warnings.push(format!(
            "{file}: the sops metadata has no version; reading it anyway"
        ));
    }
    if let Some(v) = meta.unknown_major() {
        warnings.push(format!(
            "{file}: written by sops {v}, a version coffer does not know; read as 3.x"
        ));
    }
    Ok((doc, meta, warnings))
}

/// Decrypt every value and check the MAC.
pub fn open(
    file: &str,
    format: Format,
    bytes: impl Into<Zeroizing<Vec<u8>>>,
    keyring: &Keyring,
    ignore_mac: bool,
) -> Result<Opened> {
    open_document(
        file,
        format,
        parse(file, format, bytes)?,
        keyring,
        ignore_mac,
    )
}

/// [`open`] for a file already parsed.
pub fn open_document(
    file: &str,
    format: Format,
    doc: Document,
    keyring: &Keyring,
    ignore_mac: bool,
) -> Result<Opened> {
    let (doc, meta, mut warnings) = metadata_of(file, doc)?;
    let key = keyring
        .data_key(&meta)
        .map_err(|reasons| no_key(file, &meta, reasons))?;
    for twice in crate::metadata::duplicate_entries(&meta) {
        warnings.push(format!(
            "{file}: {twice} is named by two age entries (one may be someone else's, relabelled); `coffer updatekeys` gives the file a new data key"
        ));
    }
    open_with_key(file, format, doc, meta, key, ignore_mac).map(|mut o| {
        o.warnings.splice(0..0, warnings.drain(..));
        o
    })
}

/// Why no key opened `meta`'s data key: an altered entry is an integrity error.
fn no_key(file: &str, meta: &Metadata, reasons: Vec<String>) -> Error {
    match reasons
        .iter()
        .find(|r| r.contains(crate::keys::ENTRY_ALTERED))
    {
        Some(why) => Error::EntryAltered {
            file: file.to_string(),
            why: why.clone(),
        },
        None => {
            let mut reasons = reasons;
            reasons.extend(meta.foreign_kinds().into_iter().map(|(kind, name)| {
                format!("{kind}: coffer cannot use {name} keys; open the file with one of its other keys, or with sops")
            }));
            Error::NoKey {
                file: file.to_string(),
                recipients: meta.recipients(),
                reasons,
            }
        }
    }
}

/// Decrypt with a known data key (tests inject the recovered keys of sops's own files).
pub fn open_with_key(
    file: &str,
    format: Format,
    doc: Document,
    meta: Metadata,
    key: DataKey,
    ignore_mac: bool,
) -> Result<Opened> {
    open_inner(file, format, doc, meta, key, ignore_mac, false)
}

/// Open a file in which values the rules encrypt were typed in clear (the `sops` block
/// kept): those are taken as the plaintext they are, and the MAC, which cannot cover
/// them, is not checked then. For re-encrypting such a file, never for reading one.
pub fn open_repairing(
    file: &str,
    format: Format,
    bytes: impl Into<Zeroizing<Vec<u8>>>,
    keyring: &Keyring,
) -> Result<Opened> {
    let (doc, meta, _) = read_metadata(file, format, bytes)?;
    let key = keyring
        .data_key(&meta)
        .map_err(|reasons| no_key(file, &meta, reasons))?;
    open_inner(file, format, doc, meta, key, false, true)
}

/// What stands in clear in an encrypted file although its rules encrypt it: values (by
/// key path) and comments (by line). Read from the text alone: no key is needed.
pub struct Clear {
    pub values: Vec<String>,
    pub comment_lines: Vec<usize>,
}

impl Clear {
    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && self.comment_lines.is_empty()
    }

    /// One line: where.
    pub fn describe(&self) -> String {
        let mut parts = self.values.clone();
        parts.extend(
            self.comment_lines
                .iter()
                .map(|l| format!("the comment at line {l}")),
        );
        parts.join(", ")
    }
}

pub fn clear_parts(file: &str, doc: &Document, meta: &Metadata) -> Result<Clear> {
    let rules = meta.rules().map_err(|e| Error::Metadata {
        file: file.to_string(),
        message: e.to_string(),
    })?;
    let mut clear = Clear {
        values: Vec::new(),
        comment_lines: Vec::new(),
    };
    let mut walk = rules.walk();
    for i in order(doc) {
        let leaf = &doc.leaves[i];
        let is_comment = leaf.kind == LeafKind::Comment;
        let encrypt = walk.next(&leaf.path, comment_text(leaf));
        if leaf.ty == ScalarType::Null || leaf.value.is_empty() {
            continue;
        }
        if !encrypt || leaf.value_str().is_some_and(cipher::is_encrypted) {
            continue;
        }
        if is_comment {
            clear.comment_lines.push(doc.line_of(leaf.span.start));
        } else {
            clear.values.push(display_path(&leaf.path));
        }
    }
    Ok(clear)
}

/// The MAC the values hashed to against the file's: a mismatch or none is an error,
/// or with `ignore_mac` a warning.
fn check_mac(
    file: &str,
    key: &DataKey,
    meta: &Metadata,
    computed: &str,
    ignore_mac: bool,
    warnings: &mut Vec<String>,
) -> Result<()> {
    match &meta.mac {
        None if !ignore_mac => Err(Error::MacMissing {
            file: file.to_string(),
        }),
        None => {
            warnings.push(format!(
                "{file}: the file has no MAC; its integrity was not checked"
            ));
            Ok(())
        }
        Some(stored) => {
            let ok = cipher::decrypt(key, &meta.lastmodified, stored)
                .ok()
                .and_then(|(_, m)| String::from_utf8(m.to_vec()).ok().map(Zeroizing::new))
                .is_some_and(|m| cipher::ct_eq(&m, computed));
            if !ok && !ignore_mac {
                return Err(Error::MacMismatch {
                    file: file.to_string(),
                });
            }
            if !ok {
                warnings.push(format!("{file}: MAC mismatch ignored (--ignore-mac)"));
            }
            Ok(())
        }
    }
}

fn open_inner(
    file: &str,
    format: Format,
    doc: Document,
    meta: Metadata,
    key: DataKey,
    mut ignore_mac: bool,
    take_clear: bool,
) -> Result<Opened> {
    let rules = meta.rules().map_err(|e| Error::Metadata {
        file: file.to_string(),
        message: e.to_string(),
    })?;
    let mut values: Vec<Option<Plain>> = (0..doc.leaves.len()).map(|_| None).collect();
    let mut mac = MacBuilder::new(meta.mac_only_encrypted);
    let mut warnings = Vec::new();
    let mut clear_comments = Vec::new();
    let mut walk = rules.walk();
    for i in order(&doc) {
        let leaf = &doc.leaves[i];
        let is_comment = leaf.kind == LeafKind::Comment;
        let encrypted = walk.next(&leaf.path, comment_text(leaf));
        if leaf.ty == ScalarType::Null {
            continue;
        }
        // An empty comment (a bare `#`) has nothing to encrypt, as on the way in.
        if is_comment && leaf.value.is_empty() {
            continue;
        }
        if is_comment {
            if encrypted {
                values[i] = decrypt_comment(&key, leaf);
                if values[i].is_none() && !leaf.value_str().is_some_and(cipher::is_encrypted) {
                    clear_comments.push(i);
                }
            }
            continue;
        }
        let typed_in_clear = take_clear && !leaf.value_str().is_some_and(cipher::is_encrypted);
        if encrypted && typed_in_clear && !leaf.value.is_empty() {
            ignore_mac = true;
        }
        let (plain, hashed) = if encrypted && !leaf.value.is_empty() && !typed_in_clear {
            let text = leaf.value_str().unwrap_or_default();
            let bad = |reason: String| Error::Value {
                file: file.to_string(),
                path: display_path(&leaf.path),
                reason,
            };
            // A large value is hashed for the MAC as it is decrypted.
            let hashed = text.len() >= cipher::LARGE;
            let (ty, bytes) = if hashed {
                cipher::decrypt_hashing(&key, &leaf.aad(), text, &mut mac)
            } else {
                cipher::decrypt(&key, &leaf.aad(), text)
            }
            .map_err(|e| bad(e.to_string()))?;
            // The MAC covers the typed value, but a value that is no value of its type
            // at all is refused as sops refuses it.
            if !scalar::valid_typed(ty, &bytes) {
                return Err(bad(format!(
                    "the plaintext is not a valid {}",
                    ty.sops_name()
                )));
            }
            (
                Plain {
                    ty,
                    bytes,
                    encrypted: true,
                },
                hashed,
            )
        } else {
            (
                Plain {
                    ty: leaf.ty,
                    bytes: leaf.value.clone(),
                    encrypted: false,
                },
                false,
            )
        };
        if !hashed && (encrypted || !meta.mac_only_encrypted) {
            mac.add(plain.ty, &plain.bytes);
        }
        values[i] = Some(plain);
    }
    for &i in &clear_comments {
        // As sops warns: the rules encrypt comments, and this one was typed in after.
        warnings.push(format!(
            "{file}: possibly unencrypted comment at line {}",
            doc.line_of(doc.leaves[i].span.start)
        ));
    }
    check_mac(file, &key, &meta, &mac.finish(), ignore_mac, &mut warnings)?;
    Ok(Opened {
        file: file.to_string(),
        format,
        doc,
        meta,
        key,
        values,
        warnings,
        clear_comments,
        rendered: std::cell::OnceCell::new(),
        rewrite_future: false,
    })
}

/// Comments are authenticated with the path of their container; sops's YAML library
/// sometimes attaches a comment one level up or down from where it stands, so try the
/// enclosing paths too. A comment that opens with none is left as it is, as sops does.
fn decrypt_comment(key: &DataKey, leaf: &Leaf) -> Option<Plain> {
    let text = leaf.value_str()?;
    if !cipher::is_encrypted(text) {
        return None;
    }
    let mut candidates: Vec<String> = (0..=leaf.path.len())
        .rev()
        .map(|n| format!("{}:", leaf.path[..n].join(":")))
        .collect();
    candidates.dedup();
    candidates.into_iter().find_map(|aad| {
        cipher::decrypt(key, &aad, text)
            .ok()
            .map(|(ty, bytes)| Plain {
                ty,
                bytes,
                encrypted: true,
            })
    })
}

fn display_path(p: &[String]) -> String {
    path::display(&p.iter().map(|k| Step::Key(k.clone())).collect::<Vec<_>>())
}

impl Opened {
    fn store(&self) -> &'static dyn Store {
        self.format.store()
    }

    /// Whether the file is one value (a binary file) rather than a tree of them.
    pub fn is_whole_file(&self) -> bool {
        self.store().payload(&self.doc).is_some()
    }

    /// Leaf `i` as a reader of the plaintext sees it: decrypted, or as it stands.
    fn typed(&self, i: usize) -> (ScalarType, &[u8]) {
        match &self.values[i] {
            Some(p) => (p.ty, &p.bytes),
            None => (self.doc.leaves[i].ty, &self.doc.leaves[i].value),
        }
    }

    /// Leaf `i`'s decrypted type and text.
    fn leaf_text(&self, i: usize) -> std::result::Result<(ScalarType, Zeroizing<String>), String> {
        let (ty, bytes) = self.typed(i);
        std::str::from_utf8(bytes)
            .map(|s| (ty, Zeroizing::new(s.to_string())))
            .map_err(|_| {
                format!(
                    "the value at {} is not UTF-8 text",
                    display_path(&self.doc.leaves[i].path)
                )
            })
    }

    /// The plaintext, consuming the opened file so a binary value moves out uncopied.
    pub fn into_plaintext(mut self) -> Result<Zeroizing<Vec<u8>>> {
        if let Some(i) = self.store().payload(&self.doc) {
            return Ok(self.values[i]
                .as_mut()
                .map(|p| std::mem::take(&mut p.bytes))
                .unwrap_or_default());
        }
        self.plaintext()
    }

    /// The plaintext file, laid out as the encrypted one is (see [`Opened::render`]).
    pub fn plaintext(&self) -> Result<Zeroizing<Vec<u8>>> {
        self.render().map(|s| s.bytes)
    }

    /// The plaintext file, laid out as the encrypted one is, and checked by parsing it
    /// back: the same keys, typed values and comments. When that layout does not read
    /// back, the canonical layout is used instead (and `fallback` says so).
    pub fn render(&self) -> Result<Sealed> {
        // A binary file is its one value: nothing to parse, nothing worth keeping twice.
        if let Some(i) = self.store().payload(&self.doc) {
            return Ok(Sealed {
                bytes: self.values[i]
                    .as_ref()
                    .map(|p| p.bytes.clone())
                    .unwrap_or_default(),
                fallback: None,
            });
        }
        if let Some((bytes, fallback)) = self.rendered.get() {
            return Ok(Sealed {
                bytes: bytes.clone(),
                fallback: fallback.clone(),
            });
        }
        let sealed = self.render_checked()?;
        let _ = self
            .rendered
            .set((sealed.bytes.clone(), sealed.fallback.clone()));
        Ok(sealed)
    }

    fn render_checked(&self) -> Result<Sealed> {
        let expected = verify::Content::of(&self.doc, &|i| self.typed(i));
        let check = |bytes: &[u8]| {
            verify::plaintext(
                &self.file,
                self.format,
                bytes,
                &self.doc,
                &expected,
                verify::Compare::Full,
            )
        };
        let why = match self.splice_plain()? {
            Ok(kept) => match check(&kept) {
                Ok(()) => {
                    return Ok(Sealed {
                        bytes: kept,
                        fallback: None,
                    })
                }
                Err(why) => why,
            },
            Err(why) => why,
        };
        let refused = |again: String| Error::Unsupported {
            file: self.file.clone(),
            what: format!("cannot be decrypted so that it reads back ({again})"),
        };
        let bytes = into_bytes(
            self.store()
                .canonical(&self.doc, &|i| self.leaf_text(i))
                .map_err(&refused)?,
        );
        check(&bytes).map_err(refused)?;
        Ok(Sealed {
            bytes,
            fallback: Some(layout_note(&self.file, &self.doc, &why)),
        })
    }

    /// Where the plaintext this file decrypts to first differs from `want` (a byte
    /// offset), if it does. A binary file is its value: never.
    pub(crate) fn first_difference(&self, want: &[u8]) -> Option<usize> {
        if self.store().payload(&self.doc).is_some() {
            return None;
        }
        match self.splice_plain() {
            Ok(Ok(got)) if *got == *want => None,
            Ok(Ok(got)) => Some(
                got.iter()
                    .zip(want)
                    .position(|(a, b)| a != b)
                    .unwrap_or(got.len().min(want.len())),
            ),
            // Not kept at all: the canonical layout, from the start.
            _ => Some(0),
        }
    }

    /// Every decrypted value put back where its ciphertext stood; metadata removed. The
    /// inner error: the spans overlap (the layout cannot be kept).
    fn splice_plain(&self) -> Result<std::result::Result<Zeroizing<Vec<u8>>, String>> {
        let mut edits = Vec::new();
        for (i, (leaf, plain)) in self.doc.leaves.iter().zip(&self.values).enumerate() {
            if !plain.as_ref().is_some_and(|p| p.encrypted) {
                continue;
            }
            let (ty, text) = self.leaf_text(i).map_err(|what| Error::Unsupported {
                file: self.file.clone(),
                what,
            })?;
            let rendered = self
                .store()
                .render_plain(&self.doc, leaf, ty, &text)
                .map_err(|what| Error::Unsupported {
                    file: self.file.clone(),
                    what,
                })?;
            edits.push((leaf.span.clone(), rendered));
        }
        for d in &self.doc.docs {
            if let Some((_, spans)) = &d.meta {
                edits.extend(spans.iter().map(|s| (s.clone(), String::new())));
            }
        }
        Ok(splice_checked(&self.doc.text, edits)
            .map(into_bytes)
            .ok_or_else(|| "the values and the metadata overlap in the text".to_string()))
    }

    /// The decrypted tree under `node`.
    pub fn value(&self, node: &Node) -> Result<Value> {
        self.doc
            .value_of(node, &|i| self.leaf_text(i))
            .map_err(|what| Error::Unsupported {
                file: self.file.clone(),
                what,
            })
    }

    fn root(&self) -> Result<&Node> {
        match self.doc.docs.as_slice() {
            [d] => Ok(&d.root),
            _ => Err(Error::Unsupported {
                file: self.file.clone(),
                what: "a file with several YAML documents can only be decrypted to YAML".into(),
            }),
        }
    }

    /// Whether output in `to` is this file's own plaintext rather than a conversion.
    fn is_own(&self, to: Format) -> bool {
        to == self.format || (to == Format::Binary && self.store().payload(&self.doc).is_none())
    }

    /// The whole plaintext in `to`'s syntax, consuming the opened file.
    pub fn into_output(self, to: Format) -> Result<Sealed> {
        if self.is_own(to) {
            if self.store().payload(&self.doc).is_some() {
                return self.into_plaintext().map(|bytes| Sealed {
                    bytes,
                    fallback: None,
                });
            }
            return self.render();
        }
        self.convert(to).map(|bytes| Sealed {
            bytes,
            fallback: None,
        })
    }

    /// The whole plaintext in another format, checked by parsing it back (comments are
    /// not carried over, and dotenv and INI hold text only).
    pub fn convert(&self, to: Format) -> Result<Zeroizing<Vec<u8>>> {
        if self.is_own(to) {
            return self.plaintext();
        }
        let value = self.value(self.root()?)?;
        let out = into_bytes(to.store().emit(&value).map_err(|what| Error::Unsupported {
            file: self.file.clone(),
            what,
        })?);
        let expected = verify::Content::of(&self.doc, &|i| self.typed(i));
        converted(&self.file, to, out, &self.doc, &expected)
    }

    /// One value: a scalar as its bare text, a subtree in `to`'s syntax.
    pub fn extract(&self, steps: &[Step], to: Format) -> Result<Zeroizing<Vec<u8>>> {
        let node = path::lookup(self.root()?, steps).ok_or_else(|| Error::PathNotFound {
            file: self.file.clone(),
            path: path::display(steps),
        })?;
        match self.value(node)? {
            Value::Scalar(ty, s) => Ok(Zeroizing::new(match ty {
                ScalarType::Bool => scalar::parse_bool(&s)
                    .unwrap_or(false)
                    .to_string()
                    .into_bytes(),
                _ => s.as_bytes().to_vec(),
            })),
            tree => {
                let to = if to == Format::Binary {
                    Format::Json
                } else {
                    to
                };
                let unsupported = |what: String| Error::Unsupported {
                    file: self.file.clone(),
                    what,
                };
                let out = into_bytes(to.store().emit(&tree).map_err(unsupported)?);
                verify::emitted(to, &out, &tree).map_err(|why| {
                    unsupported(format!("cannot be extracted so that it reads back ({why})"))
                })?;
                Ok(out)
            }
        }
    }

    /// A file of a future sops format is written as 3.x only when the user asked.
    pub fn check_rewritable(&self) -> Result<()> {
        match self.meta.unknown_major() {
            Some(v) if !self.rewrite_future => Err(Error::Refused(format!(
                "{}: written by sops {v}, a version coffer does not know; writing it would make it a 3.x file: pass --force for that",
                self.file
            ))),
            _ => Ok(()),
        }
    }

    /// Encrypt `plaintext` with this file's data key and master keys. `None` when the
    /// plaintext is what the file already holds, so the file can be left byte for byte.
    pub fn reencrypt(&self, plaintext: &[u8]) -> Result<Option<Sealed>> {
        if *self.plaintext()? == plaintext {
            return Ok(None);
        }
        self.check_rewritable()?;
        let mut md = self.meta.clone();
        md.lastmodified = metadata::now_rfc3339();
        if md.unknown_major().is_some() {
            md.version = Some(metadata::SOPS_VERSION.to_string());
        }
        encrypt_plain(
            &self.file,
            self.format,
            plaintext.to_vec(),
            &self.key,
            &mut md,
        )
        .map(Some)
    }

    /// The encrypted file with its values as they are and `md` as its metadata,
    /// checked by opening it with the data key. A layout that does not read back is
    /// re-encrypted in the canonical layout instead.
    pub fn with_metadata(&self, md: &Metadata) -> Result<Sealed> {
        self.check_rewritable()?;
        let spans = self
            .doc
            .docs
            .iter()
            .filter_map(|d| d.meta.as_ref())
            .flat_map(|(_, s)| s.iter().cloned());
        let stripped = splice(&self.doc.text, spans.map(|s| (s, String::new())).collect());
        let store = self.store();
        let doc = store
            .parse_stripped(into_bytes(stripped))
            .map_err(|error| Error::Syntax {
                file: self.file.clone(),
                error,
            })?;
        let meta = md.to_meta();
        let edits = (0..doc.docs.len())
            .map(|d| {
                let (at, text) = store.render_metadata(&doc, d, &meta);
                (at..at, text)
            })
            .collect();
        let bytes = into_bytes(splice(&doc.text, edits));
        let expected = verify::Content::of(&self.doc, &|i| self.typed(i));
        let why = match verify::encrypted(
            &self.file,
            self.format,
            bytes,
            &self.key,
            &self.doc,
            &expected,
            false,
        ) {
            Ok(checked) => {
                return Ok(Sealed {
                    bytes: checked.bytes,
                    fallback: None,
                })
            }
            Err(why) => why,
        };
        let mut md = md.clone();
        let mut sealed = encrypt_plain(
            &self.file,
            self.format,
            self.plaintext()?,
            &self.key,
            &mut md,
        )?;
        sealed.fallback = Some(layout_note(&self.file, &self.doc, &why));
        Ok(sealed)
    }
}

/// Encrypt plaintext bytes of `format` (binary included).
pub fn encrypt_plain(
    file: &str,
    format: Format,
    plaintext: impl Into<Zeroizing<Vec<u8>>>,
    key: &DataKey,
    md: &mut Metadata,
) -> Result<Sealed> {
    let doc = parse(file, format, plaintext)?;
    encrypt_document(format, file, &doc, key, md)
}

/// Plaintext ending with a line break, as sops writes every text format it emits: the
/// break is added when it changes nothing a reader finds (after a `|+` block scalar it
/// would add to the value, and the bytes are kept as they are).
pub fn with_final_line_break(
    file: &str,
    format: Format,
    bytes: Zeroizing<Vec<u8>>,
) -> Zeroizing<Vec<u8>> {
    if format == Format::Binary || bytes.is_empty() || bytes.ends_with(b"\n") {
        return bytes;
    }
    let mut ended = Zeroizing::new(Vec::with_capacity(bytes.len() + 1));
    ended.extend_from_slice(&bytes);
    ended.push(b'\n');
    let Ok(before) = parse(file, format, bytes.to_vec()) else {
        return bytes;
    };
    let expected = verify::Content::of_plain(&before);
    match verify::plaintext(
        file,
        format,
        &ended,
        &before,
        &expected,
        verify::Compare::Full,
    ) {
        Ok(()) => ended,
        Err(_) => bytes,
    }
}

/// Plaintext of `from` in `to`'s syntax, before encrypting it (sops's `-e
/// --output-type`): the values as they read, in `to`'s canonical layout.
pub fn convert_plain(
    file: &str,
    from: Format,
    to: Format,
    plaintext: impl Into<Zeroizing<Vec<u8>>>,
) -> Result<Zeroizing<Vec<u8>>> {
    let doc = parse(file, from, plaintext)?;
    reserved_keys(file, &doc)?;
    if doc.is_encrypted() {
        return Err(Error::AlreadyEncrypted {
            file: file.to_string(),
        });
    }
    let unsupported = |what: String| Error::Unsupported {
        file: file.to_string(),
        what,
    };
    let root = match doc.docs.as_slice() {
        [d] => &d.root,
        _ => {
            return Err(unsupported(
                "a file with several YAML documents can only be encrypted as YAML".into(),
            ))
        }
    };
    let value = doc
        .value_of(root, &|i| {
            let leaf = &doc.leaves[i];
            leaf.value_str()
                .map(|s| (leaf.ty, Zeroizing::new(s.to_string())))
                .ok_or_else(|| "a value is not UTF-8 text".to_string())
        })
        .map_err(unsupported)?;
    let out = into_bytes(to.store().emit(&value).map_err(unsupported)?);
    converted(file, to, out, &doc, &verify::Content::of_plain(&doc))
}

/// Plaintext converted to `to`, once it reads back as `expected`: JSON has no time or
/// bytes type, dotenv and INI hold text only, so the check goes as far as `to` can say.
fn converted(
    file: &str,
    to: Format,
    out: Zeroizing<Vec<u8>>,
    source: &Document,
    expected: &verify::Content,
) -> Result<Zeroizing<Vec<u8>>> {
    let compare = match to {
        Format::Yaml => verify::Compare::Data,
        Format::Json => verify::Compare::Json,
        _ => verify::Compare::Text,
    };
    verify::plaintext(file, to, &out, source, expected, compare).map_err(|why| {
        Error::Unsupported {
            file: file.to_string(),
            what: format!("cannot be converted so that it reads back ({why})"),
        }
    })?;
    Ok(out)
}

/// Metadata for a new file, with the data key wrapped for every recipient.
pub fn new_metadata(
    key: &DataKey,
    recipients: &crate::keys::Recipients,
    kms: &crate::keys::kms::KmsKeys,
    rule: Option<&crate::config::CreationRule>,
    selector: Option<crate::metadata::Selector>,
) -> Result<Metadata> {
    let mut md = Metadata {
        lastmodified: metadata::now_rfc3339(),
        version: Some(metadata::SOPS_VERSION.to_string()),
        ..Default::default()
    };
    let pgp = crate::keys::pgp::PgpKeys::default();
    if recipients.groups.is_empty() {
        for r in &recipients.age {
            md.age.push(crate::keys::age::wrap(key.expose(), r)?);
        }
        for spec in &recipients.kms {
            md.kms.push(kms.wrap(key.expose(), spec)?);
        }
        for fp in &recipients.pgp {
            md.pgp.push(pgp.wrap(key.expose(), fp)?);
        }
    } else {
        // Shamir: one share per group, each wrapped for every key of its group.
        let n = recipients.groups.len();
        let shares = crate::keys::shamir::split(key.expose(), n, recipients.threshold)
            .map_err(|e| Error::KeySource(format!("Shamir key groups: {e}")))?;
        let mut groups = Vec::with_capacity(n);
        for (share, group) in shares.iter().zip(&recipients.groups) {
            if group.is_empty() {
                return Err(Error::KeySource(
                    "a Shamir key group names no key coffer can wrap its share for".into(),
                ));
            }
            let mut g = Metadata::default();
            for r in &group.age {
                g.age.push(crate::keys::age::wrap(share, r)?);
            }
            for spec in &group.kms {
                g.kms.push(kms.wrap(share, spec)?);
            }
            for fp in &group.pgp {
                g.pgp.push(pgp.wrap(share, fp)?);
            }
            groups.push(g);
        }
        md.split_over(groups, recipients.threshold);
    }
    if let Some(rule) = rule {
        md.selector = rule.selector.clone().unwrap_or_default();
        md.unencrypted_comment_regex = rule.unencrypted_comment_regex.clone();
        md.encrypted_comment_regex = rule.encrypted_comment_regex.clone();
        md.mac_only_encrypted = rule.mac_only_encrypted;
    }
    if let Some(s) = selector {
        md.selector = s;
    }
    Ok(md)
}
