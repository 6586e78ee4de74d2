//! The operations: encrypt a plaintext file, open (decrypt and verify) an encrypted one,
//! and write it back as plaintext, in another format, or re-encrypted after a change.

use std::ops::Range;

use zeroize::Zeroizing;

use crate::cipher::{self, DataKey, MacBuilder};
use crate::format::emit::Value;
use crate::format::{binary, Format, Store};
use crate::keys::Keyring;
use crate::metadata::{self, Metadata};
use crate::path::{self, Step};
use crate::tree::{splice, Document, Leaf, LeafKind, Node, ScalarType};
use crate::{Error, Result};

/// A decrypted value, and whether it was stored encrypted.
pub struct Plain {
    pub ty: ScalarType,
    pub bytes: Zeroizing<Vec<u8>>,
    pub encrypted: bool,
}

/// Parse a file's bytes in `format`.
pub fn parse(file: &str, format: Format, bytes: impl Into<Zeroizing<Vec<u8>>>) -> Result<Document> {
    let mut bytes = bytes.into();
    let text = String::from_utf8(std::mem::take(&mut *bytes)).map_err(|e| {
        // Give the bytes back to a zeroizing owner before reporting.
        let at = e.utf8_error().valid_up_to();
        drop(Zeroizing::new(e.into_bytes()));
        Error::Syntax {
            file: file.to_string(),
            message: format!(
                "not UTF-8 text (byte {at}); use --input-type binary for binary files"
            ),
        }
    })?;
    format
        .store()
        .parse(Zeroizing::new(text))
        .map_err(|message| Error::Syntax {
            file: file.to_string(),
            message,
        })
}

/// Document order: values and comments sorted by where they stand.
fn order(doc: &Document) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..doc.leaves.len()).collect();
    idx.sort_by_key(|&i| doc.leaves[i].span.start);
    idx
}

/// The comments since the previous value, for sops's comment-regex rules.
fn comments_before<'d>(doc: &'d Document, order: &[usize], pos: usize) -> Vec<&'d str> {
    let mut out = Vec::new();
    for &j in order[..pos].iter().rev() {
        let l = &doc.leaves[j];
        if l.kind != LeafKind::Comment {
            break;
        }
        out.push(l.value_str().unwrap_or_default());
    }
    out.reverse();
    out
}

/// Encrypt a parsed plaintext document. `md` carries the wrapped keys and the rules;
/// its `lastmodified` and `mac` are filled in here.
pub fn encrypt_document(
    store: &dyn Store,
    file: &str,
    doc: &Document,
    key: &DataKey,
    md: &mut Metadata,
) -> Result<Zeroizing<Vec<u8>>> {
    if doc.is_encrypted() {
        return Err(Error::AlreadyEncrypted {
            file: file.to_string(),
        });
    }
    let rules = md.rules().map_err(|e| Error::Metadata {
        file: file.to_string(),
        message: e.to_string(),
    })?;
    // Decide leaf by leaf first; then hash the MAC and encrypt, on two cores when the
    // values are large (a binary file is one value of many megabytes).
    let mut hashed: Vec<(ScalarType, &[u8])> = Vec::new();
    let mut to_encrypt: Vec<&Leaf> = Vec::new();
    let order = order(doc);
    for (pos, &i) in order.iter().enumerate() {
        let leaf = &doc.leaves[i];
        let is_comment = leaf.kind == LeafKind::Comment;
        let mut stack = comments_before(doc, &order, pos);
        if is_comment {
            stack.push(leaf.value_str().unwrap_or_default());
        }
        if leaf.ty == ScalarType::Null {
            continue;
        }
        let encrypt = rules.should_encrypt(&leaf.path, &stack, is_comment);
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
                    ("", "")
                } else {
                    store.enc_quotes(leaf)
                };
                let mut text = String::from(open);
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
    Ok(into_bytes(splice(&doc.text, edits)))
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
}

/// Read the metadata of an encrypted file without decrypting anything.
pub fn read_metadata(
    file: &str,
    format: Format,
    bytes: impl Into<Zeroizing<Vec<u8>>>,
) -> Result<(Document, Metadata, Vec<String>)> {
    let doc = parse(file, format, bytes)?;
    let mut warnings = Vec::new();
    let raw = doc
        .docs
        .iter()
        .find_map(|d| d.meta.as_ref())
        .map(|(m, _)| m.clone())
        .ok_or_else(|| Error::NotEncrypted {
            file: file.to_string(),
        })?;
    let meta = Metadata::parse(&raw).map_err(|message| Error::Metadata {
        file: file.to_string(),
        message,
    })?;
    if meta.version.is_none() {
        warnings.push(format!(
            "{file}: the sops metadata has no version; reading it anyway"
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
    let (doc, meta, mut warnings) = read_metadata(file, format, bytes)?;
    let key = keyring.data_key(&meta).map_err(|reasons| Error::NoKey {
        file: file.to_string(),
        recipients: meta.recipients(),
        reasons,
    })?;
    open_with_key(file, format, doc, meta, key, ignore_mac).map(|mut o| {
        o.warnings.splice(0..0, warnings.drain(..));
        o
    })
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
    let rules = meta.rules().map_err(|e| Error::Metadata {
        file: file.to_string(),
        message: e.to_string(),
    })?;
    let mut values: Vec<Option<Plain>> = (0..doc.leaves.len()).map(|_| None).collect();
    let mut mac = MacBuilder::new(meta.mac_only_encrypted);
    let mut warnings = Vec::new();
    let order = order(&doc);
    for (pos, &i) in order.iter().enumerate() {
        let leaf = &doc.leaves[i];
        let is_comment = leaf.kind == LeafKind::Comment;
        if leaf.ty == ScalarType::Null {
            continue;
        }
        let mut stack = comments_before(&doc, &order, pos);
        if is_comment {
            stack.push(leaf.value_str().unwrap_or_default());
        }
        let encrypted = rules.should_encrypt(&leaf.path, &stack, is_comment);
        if is_comment {
            if encrypted {
                values[i] = decrypt_comment(&key, leaf);
            }
            continue;
        }
        let plain = if encrypted && !leaf.value.is_empty() {
            let text = leaf.value_str().unwrap_or_default();
            let (ty, bytes) =
                cipher::decrypt(&key, &leaf.aad(), text).map_err(|e| Error::Value {
                    file: file.to_string(),
                    path: display_path(&leaf.path),
                    reason: e.to_string(),
                })?;
            Plain {
                ty,
                bytes,
                encrypted: true,
            }
        } else {
            Plain {
                ty: leaf.ty,
                bytes: leaf.value.clone(),
                encrypted: false,
            }
        };
        if encrypted || !meta.mac_only_encrypted {
            mac.add(plain.ty, &plain.bytes);
        }
        values[i] = Some(plain);
    }
    let computed = mac.finish();
    match &meta.mac {
        None if !ignore_mac => {
            return Err(Error::MacMissing {
                file: file.to_string(),
            })
        }
        None => warnings.push(format!(
            "{file}: the file has no MAC; its integrity was not checked"
        )),
        Some(stored) => {
            let ok = cipher::decrypt(&key, &meta.lastmodified, stored)
                .ok()
                .and_then(|(_, m)| String::from_utf8(m.to_vec()).ok().map(Zeroizing::new))
                .is_some_and(|m| cipher::ct_eq(&m, &computed));
            if !ok && !ignore_mac {
                return Err(Error::MacMismatch {
                    file: file.to_string(),
                });
            }
            if !ok {
                warnings.push(format!("{file}: MAC mismatch ignored (--ignore-mac)"));
            }
        }
    }
    Ok(Opened {
        file: file.to_string(),
        format,
        doc,
        meta,
        key,
        values,
        warnings,
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

    /// The plaintext, consuming the opened file so a binary value moves out uncopied.
    pub fn into_plaintext(mut self) -> Result<Zeroizing<Vec<u8>>> {
        if self.format == Format::Binary {
            let i = self.binary_leaf()?;
            return Ok(self.values[i]
                .as_mut()
                .map(|p| std::mem::take(&mut p.bytes))
                .unwrap_or_default());
        }
        self.plaintext()
    }

    /// The one value of a binary file (or of a stored merge conflict).
    fn binary_leaf(&self) -> Result<usize> {
        let root = &self.doc.docs[0].root;
        match root
            .get(binary::DATA_KEY)
            .or_else(|| root.get(binary::CONFLICT_KEY))
        {
            Some(Node::Leaf(i)) => Ok(*i),
            _ => Err(Error::Unsupported {
                file: self.file.clone(),
                what: "a binary file needs a \"data\" value".into(),
            }),
        }
    }

    /// The plaintext file, laid out as the encrypted one is.
    pub fn plaintext(&self) -> Result<Zeroizing<Vec<u8>>> {
        if self.format == Format::Binary {
            let idx = self.binary_leaf()?;
            return Ok(self.values[idx]
                .as_ref()
                .map(|p| p.bytes.clone())
                .unwrap_or_default());
        }
        let mut edits = Vec::new();
        for (leaf, plain) in self.doc.leaves.iter().zip(&self.values) {
            let Some(plain) = plain.as_ref().filter(|p| p.encrypted) else {
                continue;
            };
            let text = self.text_of(leaf, plain)?;
            let rendered = self
                .store()
                .render_plain(&self.doc, leaf, plain.ty, &text)
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
        Ok(into_bytes(splice(&self.doc.text, edits)))
    }

    fn text_of(&self, leaf: &Leaf, plain: &Plain) -> Result<Zeroizing<String>> {
        String::from_utf8(plain.bytes.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| Error::Unsupported {
                file: self.file.clone(),
                what: format!(
                    "the value at {} is not UTF-8 text",
                    display_path(&leaf.path)
                ),
            })
    }

    /// The decrypted tree under `node`.
    pub fn value(&self, node: &Node) -> Result<Value> {
        Ok(match node {
            Node::Map(entries) => Value::Map(
                entries
                    .iter()
                    .map(|e| Ok((e.key.clone(), self.value(&e.value)?)))
                    .collect::<Result<_>>()?,
            ),
            Node::Seq(items) => {
                Value::Seq(items.iter().map(|n| self.value(n)).collect::<Result<_>>()?)
            }
            Node::Leaf(i) => {
                let leaf = &self.doc.leaves[*i];
                match &self.values[*i] {
                    Some(p) => Value::Scalar(p.ty, self.text_of(leaf, p)?),
                    None => Value::Scalar(leaf.ty, Zeroizing::new(String::new())),
                }
            }
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

    /// The whole plaintext in `to`'s syntax, consuming the opened file.
    pub fn into_output(self, to: Format) -> Result<Zeroizing<Vec<u8>>> {
        if to == self.format || (to == Format::Binary && self.format != Format::Binary) {
            return self.into_plaintext();
        }
        self.convert(to)
    }

    /// The whole plaintext in another format.
    pub fn convert(&self, to: Format) -> Result<Zeroizing<Vec<u8>>> {
        if to == self.format || (to == Format::Binary && self.format != Format::Binary) {
            return self.plaintext();
        }
        let value = self.value(self.root()?)?;
        let out = to.store().emit(&value).map_err(|what| Error::Unsupported {
            file: self.file.clone(),
            what,
        })?;
        Ok(into_bytes(out))
    }

    /// One value: a scalar as its bare text, a subtree in `to`'s syntax.
    pub fn extract(&self, steps: &[Step], to: Format) -> Result<Zeroizing<Vec<u8>>> {
        let node = path::lookup(self.root()?, steps).ok_or_else(|| Error::PathNotFound {
            file: self.file.clone(),
            path: path::display(steps),
        })?;
        match self.value(node)? {
            Value::Scalar(ty, s) => Ok(Zeroizing::new(match ty {
                ScalarType::Bool => cipher::parse_bool(&s)
                    .unwrap_or(false)
                    .to_string()
                    .into_bytes(),
                _ => s.as_bytes().to_vec(),
            })),
            tree => {
                let store = if to == Format::Binary {
                    Format::Json.store()
                } else {
                    to.store()
                };
                store
                    .emit(&tree)
                    .map(into_bytes)
                    .map_err(|what| Error::Unsupported {
                        file: self.file.clone(),
                        what,
                    })
            }
        }
    }

    /// Encrypt `plaintext` with this file's data key and master keys. `None` when the
    /// plaintext is what the file already holds, so the file can be left byte for byte.
    pub fn reencrypt(&self, plaintext: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>> {
        if *self.plaintext()? == plaintext {
            return Ok(None);
        }
        let mut md = self.meta.clone();
        md.lastmodified = metadata::now_rfc3339();
        encrypt_plain(
            &self.file,
            self.format,
            plaintext.to_vec(),
            &self.key,
            &mut md,
        )
        .map(Some)
    }
}

/// Encrypt plaintext bytes of `format` (binary included).
pub fn encrypt_plain(
    file: &str,
    format: Format,
    plaintext: impl Into<Zeroizing<Vec<u8>>>,
    key: &DataKey,
    md: &mut Metadata,
) -> Result<Zeroizing<Vec<u8>>> {
    let plaintext = plaintext.into();
    if format == Format::Binary {
        // Only a JSON object that names `sops` can be an encrypted file.
        let looks_like_sops = plaintext.trim_ascii_start().starts_with(b"{")
            && plaintext.windows(6).any(|w| w == b"\"sops\"");
        if looks_like_sops {
            if let Ok(doc) = parse(file, Format::Json, plaintext.to_vec()) {
                if doc.is_encrypted() {
                    return Err(Error::AlreadyEncrypted {
                        file: file.to_string(),
                    });
                }
            }
        }
        let doc = binary::plain_document(plaintext);
        return encrypt_document(Format::Json.store(), file, &doc, key, md);
    }
    let doc = parse(file, format, plaintext)?;
    encrypt_document(format.store(), file, &doc, key, md)
}

impl Opened {
    /// The encrypted file with its values as they are and `md` as its metadata.
    pub fn with_metadata(&self, md: &Metadata) -> Result<Zeroizing<Vec<u8>>> {
        let spans = self
            .doc
            .docs
            .iter()
            .filter_map(|d| d.meta.as_ref())
            .flat_map(|(_, s)| s.iter().cloned());
        let stripped = splice(&self.doc.text, spans.map(|s| (s, String::new())).collect());
        let store = if self.format == Format::Binary {
            Format::Json.store()
        } else {
            self.store()
        };
        let doc = store.parse(stripped).map_err(|message| Error::Syntax {
            file: self.file.clone(),
            message,
        })?;
        let meta = md.to_meta();
        let edits = (0..doc.docs.len())
            .map(|d| {
                let (at, text) = store.render_metadata(&doc, d, &meta);
                (at..at, text)
            })
            .collect();
        Ok(into_bytes(splice(&doc.text, edits)))
    }
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
    for r in &recipients.age {
        md.age.push(crate::keys::age::wrap(key, r)?);
    }
    for spec in &recipients.kms {
        md.kms.push(kms.wrap(key, spec)?);
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
