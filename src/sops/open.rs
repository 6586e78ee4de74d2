//! Opening: an encrypted file's metadata read, its data key found, every value
//! decrypted and the MAC checked.

use super::*;

/// Read the metadata of an encrypted file without decrypting anything.
pub fn read_metadata(
    file: &str,
    format: Format,
    bytes: impl Into<Zeroizing<Vec<u8>>>,
) -> Result<(Document, Metadata, Vec<String>)> {
    metadata_of(file, parse(file, format, bytes)?)
}

/// The metadata of a parsed file. Every document of a file sops wrote carries it.
pub(super) fn metadata_of(file: &str, doc: Document) -> Result<(Document, Metadata, Vec<String>)> {
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
            error: MetaError::Missing(n + 1),
        });
    }
    let meta = Metadata::parse(&raw).map_err(|error| Error::Metadata {
        file: file.to_string(),
        error,
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

/// How a file is opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// Open it even when its MAC does not match (`--ignore-mac`): to repair a file.
    pub ignore_mac: bool,
}

impl OpenOptions {
    pub fn ignoring_mac(ignore_mac: bool) -> OpenOptions {
        OpenOptions { ignore_mac }
    }
}

/// Decrypt every value and check the MAC.
pub fn open(
    file: &str,
    format: Format,
    bytes: impl Into<Zeroizing<Vec<u8>>>,
    keyring: &Keyring,
    options: OpenOptions,
) -> Result<Opened> {
    open_document(file, format, parse(file, format, bytes)?, keyring, options)
}

/// [`open`] for bytes that may be plaintext: `None` when they are no sops file (what
/// [`Store::is_encrypted`](crate::format::Store::is_encrypted) says), parsed once either way.
pub fn open_if_encrypted(
    file: &str,
    format: Format,
    bytes: &[u8],
    keyring: &Keyring,
    options: OpenOptions,
) -> Result<Option<Opened>> {
    if !crate::format::mentions_sops(bytes) {
        return Ok(None);
    }
    match parse(file, format, bytes.to_vec()) {
        Ok(doc) if doc.is_encrypted() => {
            open_document(file, format, doc, keyring, options).map(Some)
        }
        _ => Ok(None),
    }
}

/// [`open`] for a file already parsed.
pub fn open_document(
    file: &str,
    format: Format,
    doc: Document,
    keyring: &Keyring,
    options: OpenOptions,
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
    open_with_key(file, format, doc, meta, key, options).map(|mut o| {
        o.warnings.splice(0..0, warnings.drain(..));
        o
    })
}

/// Why no key opened `meta`'s data key: an altered entry is an integrity error.
pub(super) fn no_key(file: &str, meta: &Metadata, reasons: Vec<String>) -> Error {
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
    options: OpenOptions,
) -> Result<Opened> {
    open_inner(file, format, doc, meta, key, options.ignore_mac, false)
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
    let rules = meta.rules().map_err(|error| Error::Metadata {
        file: file.to_string(),
        error,
    })?;
    let mut clear = Clear {
        values: Vec::new(),
        comment_lines: Vec::new(),
    };
    let mut walk = rules.walk();
    for i in order(doc) {
        let leaf = &doc.leaves[i];
        let is_comment = leaf.kind == LeafKind::Comment;
        let encrypt = walk.next(&leaf.path, comment_text(leaf, &doc.text));
        if leaf.ty == ScalarType::Null || leaf.value(&doc.text).is_empty() {
            continue;
        }
        if !encrypt || leaf.value_str(&doc.text).is_some_and(cipher::is_encrypted) {
            continue;
        }
        if is_comment {
            clear.comment_lines.push(doc.line_of(leaf.span().start));
        } else {
            clear.values.push(display_path(&leaf.path));
        }
    }
    Ok(clear)
}

/// The MAC the values hashed to against the file's: a mismatch or none is an error,
/// or with `ignore_mac` a warning.
pub(super) fn check_mac(
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

pub(super) fn open_inner(
    file: &str,
    format: Format,
    doc: Document,
    meta: Metadata,
    key: DataKey,
    mut ignore_mac: bool,
    take_clear: bool,
) -> Result<Opened> {
    let rules = meta.rules().map_err(|error| Error::Metadata {
        file: file.to_string(),
        error,
    })?;
    let mut values: Vec<Option<Plain>> = (0..doc.leaves.len()).map(|_| None).collect();
    let mut mac = MacBuilder::new(meta.mac_only_encrypted);
    let mut warnings = Vec::new();
    let mut clear_comments = Vec::new();
    let mut walk = rules.walk();
    // Decide leaf by leaf in document order (the rules walk is sequential), decrypt on
    // every core, then hash the MAC in order; a block at a time, so that the plan and
    // what it decrypted stay small beside a million values.
    for block in order(&doc).chunks(1 << 16) {
        let mut todo = Vec::with_capacity(block.len());
        for &i in block {
            let leaf = &doc.leaves[i];
            let is_comment = leaf.kind == LeafKind::Comment;
            let encrypted = walk.next(&leaf.path, comment_text(leaf, &doc.text));
            if is_comment {
                // An empty comment (a bare `#`) has nothing to encrypt, as on the way in.
                if encrypted && !leaf.value(&doc.text).is_empty() {
                    todo.push(Todo::Comment(i));
                }
                continue;
            }
            let value = leaf.value(&doc.text);
            let typed_in_clear =
                take_clear && !leaf.value_str(&doc.text).is_some_and(cipher::is_encrypted);
            let planned = match opening(
                leaf.ty,
                value,
                encrypted,
                typed_in_clear,
                meta.mac_only_encrypted,
            ) {
                Opening::Null => continue,
                Opening::Decrypt => {
                    let text = leaf.value_str(&doc.text).unwrap_or_default();
                    // A large value is hashed for the MAC as it is decrypted, in order.
                    if text.len() >= cipher::LARGE {
                        Todo::Large(i, text)
                    } else {
                        Todo::Value(i, text)
                    }
                }
                Opening::Keep(hashed) => Todo::Clear(i, hashed),
            };
            if encrypted && typed_in_clear && !value.is_empty() {
                ignore_mac = true;
            }
            todo.push(planned);
        }
        let done = par_map(&todo, |t| match *t {
            Todo::Comment(i) => Done::Comment(decrypt_comment(&key, &doc.leaves[i], &doc.text)),
            Todo::Value(i, text) => {
                Done::Value(doc.leaves[i].with_aad(|aad| cipher::decrypt(&key, aad, text)))
            }
            Todo::Large(..) | Todo::Clear(..) => Done::Later,
        });
        for (t, d) in todo.iter().zip(done) {
            let i = t.leaf();
            let leaf = &doc.leaves[i];
            let bad = |reason: String| Error::Value {
                file: file.to_string(),
                path: display_path(&leaf.path),
                reason,
            };
            let plain = match (t, d) {
                (Todo::Comment(_), Done::Comment(plain)) => {
                    if plain.is_none()
                        && !leaf.value_str(&doc.text).is_some_and(cipher::is_encrypted)
                    {
                        clear_comments.push(i);
                    }
                    values[i] = plain;
                    continue;
                }
                (Todo::Clear(_, hash), _) => {
                    let plain = Plain {
                        ty: leaf.ty,
                        bytes: Zeroizing::new(leaf.value(&doc.text).to_vec()),
                        encrypted: false,
                    };
                    if *hash {
                        mac.add(plain.ty, &plain.bytes);
                    }
                    plain
                }
                (Todo::Value(..), Done::Value(opened)) => {
                    let (ty, bytes) = opened.map_err(|e| bad(e.to_string()))?;
                    mac.add(ty, &bytes);
                    Plain {
                        ty,
                        bytes,
                        encrypted: true,
                    }
                }
                (Todo::Large(_, text), _) => {
                    let (ty, bytes) = cipher::decrypt_hashing(&key, &leaf.aad(), text, &mut mac)
                        .map_err(|e| bad(e.to_string()))?;
                    Plain {
                        ty,
                        bytes,
                        encrypted: true,
                    }
                }
                _ => unreachable!("each step is done as it was planned"),
            };
            // The MAC covers the typed value, but a value that is no value of its type at
            // all is refused as sops refuses it.
            if plain.encrypted && !scalar::valid_typed(plain.ty, &plain.bytes) {
                return Err(bad(format!(
                    "the plaintext is not a valid {}",
                    plain.ty.sops_name()
                )));
            }
            values[i] = Some(plain);
        }
    }
    for &i in &clear_comments {
        // As sops warns: the rules encrypt comments, and this one was typed in after.
        warnings.push(format!(
            "{file}: possibly unencrypted comment at line {}",
            doc.line_of(doc.leaves[i].span().start)
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

/// What becomes of a value (not a comment) that the rules do or do not encrypt
/// (`encrypted`), on the way out and back in alike: sealing encrypts what opening
/// decrypts, and both hash the same values for the MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Opening {
    /// A null: as it stands, outside the MAC.
    Null,
    /// Encrypted, and hashed for the MAC as its plaintext.
    Decrypt,
    /// As it stands (an empty value, one the rules leave readable, one typed in clear
    /// over a ciphertext); whether the MAC covers it.
    Keep(bool),
}

/// [`Opening`] of a value of type `ty` holding `value`; `typed_in_clear` only when
/// opening takes values typed in over their ciphertext (`take_clear`).
pub(super) fn opening(
    ty: ScalarType,
    value: &[u8],
    encrypted: bool,
    typed_in_clear: bool,
    mac_only_encrypted: bool,
) -> Opening {
    if ty == ScalarType::Null {
        Opening::Null
    } else if encrypted && !value.is_empty() && !typed_in_clear {
        Opening::Decrypt
    } else {
        Opening::Keep(encrypted || !mac_only_encrypted)
    }
}

/// What opening does with a leaf, decided in document order.
enum Todo<'d> {
    /// An encrypted comment.
    Comment(usize),
    /// An encrypted value.
    Value(usize, &'d str),
    /// An encrypted value large enough to be hashed for the MAC as it is decrypted.
    Large(usize, &'d str),
    /// A value kept as it stands; whether the MAC covers it.
    Clear(usize, bool),
}

impl Todo<'_> {
    fn leaf(&self) -> usize {
        match *self {
            Todo::Comment(i) | Todo::Value(i, _) | Todo::Large(i, _) | Todo::Clear(i, _) => i,
        }
    }
}

/// What the parallel step made of a [`Todo`].
enum Done {
    Comment(Option<Plain>),
    Value(std::result::Result<(ScalarType, Zeroizing<Vec<u8>>), cipher::CipherError>),
    /// Done in order, with the MAC.
    Later,
}

/// Comments are authenticated with the path of their container; sops's YAML library
/// sometimes attaches a comment one level up or down from where it stands, so try the
/// enclosing paths too. A comment that opens with none is left as it is, as sops does.
pub(super) fn decrypt_comment(key: &DataKey, leaf: &Leaf, text: &str) -> Option<Plain> {
    let text = leaf.value_str(text)?;
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
