//! Encrypting: a plaintext document becomes sops's file, its layout kept, checked by
//! reading it back before it is handed out.

use super::*;

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
                Err(why) => why.to_string(),
            },
            Err(why) => why.to_string(),
        },
    };
    let refused = |why: verify::Mismatch| Error::ReadBack {
        file: file.to_string(),
        doing: "encrypted",
        why,
    };
    let canonical = store
        .canonical(doc, &|i| leaf_text(doc, i))
        .map_err(verify::Mismatch::from)
        .and_then(|text| {
            store.parse(into_bytes(text)).map_err(|error| {
                verify::Mismatch::DoesNotParse(Box::new(Error::Syntax {
                    file: file.to_string(),
                    error,
                }))
            })
        })
        .map_err(refused)?;
    let bytes = splice_encrypted(store, file, &canonical, key, md)?.map_err(refused)?;
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
pub(super) fn round_trip_note(file: &str, doc: &Document, at: usize) -> String {
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
pub(super) fn layout_note(file: &str, doc: &Document, why: &str) -> String {
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
pub(super) fn leaf_text(
    doc: &Document,
    i: usize,
) -> std::result::Result<(ScalarType, Zeroizing<String>), WriteError> {
    let leaf = &doc.leaves[i];
    let text = leaf
        .value_str(&doc.text)
        .ok_or_else(|| WriteError::NotText(display_path(&leaf.path)))?;
    Ok((leaf.ty, Zeroizing::new(text.to_string())))
}

/// A plaintext file may not use the name sops keeps its metadata under.
pub(super) fn reserved_keys(file: &str, doc: &Document) -> Result<()> {
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
            if let Some(e) = entries.iter().find(|e| &*e.key == "sops") {
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
pub(super) fn splice_encrypted(
    store: &dyn Store,
    file: &str,
    doc: &Document,
    key: &DataKey,
    md: &mut Metadata,
) -> Result<std::result::Result<Zeroizing<Vec<u8>>, verify::Mismatch>> {
    let rules = md.rules().map_err(|error| Error::Metadata {
        file: file.to_string(),
        error,
    })?;
    // Decide leaf by leaf first; then hash the MAC and encrypt, on two cores when the
    // values are large (a binary file is one value of many megabytes).
    let mut hashed: Vec<(ScalarType, &[u8])> = Vec::new();
    let mut to_encrypt: Vec<&Leaf> = Vec::new();
    let mut walk = rules.walk();
    for i in order(doc) {
        let leaf = &doc.leaves[i];
        let is_comment = leaf.kind == LeafKind::Comment;
        let encrypt = walk.next(&leaf.path, comment_text(leaf, &doc.text));
        if leaf.ty == ScalarType::Null {
            continue;
        }
        if !is_comment && (encrypt || !md.mac_only_encrypted) {
            hashed.push((leaf.ty, leaf.value(&doc.text)));
        }
        if encrypt && !leaf.value(&doc.text).is_empty() {
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
        par_map(&to_encrypt, |leaf| {
            let (open, close) = if leaf.kind == LeafKind::Comment {
                (String::new(), "")
            } else {
                store.enc_quotes(doc, leaf)
            };
            let mut text = open;
            leaf.with_aad(|aad| {
                cipher::encrypt_into(&mut text, key, aad, leaf.ty, leaf.value(&doc.text))
            });
            text.push_str(close);
            (leaf.span.clone(), text)
        })
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
        .ok_or(verify::Mismatch::Overlap))
}

pub(super) fn into_bytes(mut s: Zeroizing<String>) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(std::mem::take(&mut *s).into_bytes())
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

/// Metadata for a new file, with the data key wrapped for every recipient.
pub fn new_metadata(
    key: &DataKey,
    recipients: &crate::keys::Recipients,
    with: &crate::keys::Wrappers,
    rule: Option<&crate::config::CreationRule>,
    selector: Option<crate::metadata::Selector>,
) -> Result<Metadata> {
    let mut md = Metadata {
        lastmodified: metadata::now_rfc3339(),
        version: Some(metadata::SOPS_VERSION.to_string()),
        ..Default::default()
    };
    md.take_keys(recipients.wrap(key.expose(), with, None)?);
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
