//! Encrypting: a plaintext document becomes sops's file, its layout kept, checked by
//! reading it back before it is handed out.

use super::*;

/// Encrypt a parsed plaintext document and check the result by reading it back (see
/// `verify`). When the document's own layout does not read back, it is written in the
/// format's canonical layout instead, checked the same way, and `fallback` says so;
/// when that fails too, the input is refused and nothing is returned. `md` carries the
/// wrapped keys and the rules; its `mac` is filled in here.
pub fn encrypt_document<'d>(
    format: Format,
    file: &str,
    doc: impl Into<Plaintext<'d>>,
    key: &DataKey,
    md: &mut Metadata,
) -> Result<Sealed> {
    let (written, fallback) = encrypt_to(format, file, doc.into(), key, md, None)?;
    match written {
        Written::Memory(bytes) => Ok(Sealed { bytes, fallback }),
        Written::File => unreachable!("no file was given"),
    }
}

/// Plaintexts of this many bytes or more are worth [`encrypt_plain_into`]: their
/// output, written into a file, is not held in memory. Below, a file costs more than
/// the memory it spares.
pub const INTO_FILE_FROM: usize = 1 << 20;

/// Whether a plaintext of `format`, `len` bytes long, is encrypted into a file
/// ([`encrypt_plain_into`], [`encrypt_document_into`]) where one can be had. A binary
/// file is one value, which large ones stream (`sops::stream`) instead.
pub fn worth_a_file(format: Format, len: usize) -> bool {
    format != Format::Binary && len >= INTO_FILE_FROM
}

/// [`encrypt_plain`] with the output written into `into` (from its start, and to its
/// end), an unnamed file of this process's own: a large output is written there
/// through memory and checked there (see [`crate::mapped`]), not held beside its
/// document. Gives the warning of a layout not kept, as [`Sealed::fallback`].
pub fn encrypt_plain_into(
    file: &str,
    format: Format,
    plaintext: impl Into<Zeroizing<Vec<u8>>>,
    key: &DataKey,
    md: &mut Metadata,
    into: &std::fs::File,
) -> Result<Option<String>> {
    let doc = parse(file, format, plaintext)?;
    encrypt_document_into(format, file, doc, key, md, into)
}

/// [`encrypt_document`] with the output written into `into`, as
/// [`encrypt_plain_into`] writes it.
pub fn encrypt_document_into<'d>(
    format: Format,
    file: &str,
    doc: impl Into<Plaintext<'d>>,
    key: &DataKey,
    md: &mut Metadata,
    into: &std::fs::File,
) -> Result<Option<String>> {
    let (written, fallback) = encrypt_to(format, file, doc.into(), key, md, Some(into))?;
    if let Written::Memory(bytes) = written {
        use std::os::unix::fs::FileExt;
        into.set_len(0)
            .and_then(|()| into.write_all_at(&bytes, 0))
            .map_err(|e| Error::io(file, e))?;
    }
    Ok(fallback)
}

/// Where an encryption's output is: in memory, or in the file it was asked into.
pub(super) enum Written {
    Memory(Zeroizing<Vec<u8>>),
    File,
}

/// A plaintext document to encrypt: lent by the caller, or given, and then let go once
/// a text written afresh in the canonical layout stands in for it (a large file's two
/// documents side by side would be over ten times its size).
pub enum Plaintext<'d> {
    Lent(&'d Document),
    Given(Document),
}

impl std::ops::Deref for Plaintext<'_> {
    type Target = Document;

    fn deref(&self) -> &Document {
        match self {
            Plaintext::Lent(doc) => doc,
            Plaintext::Given(doc) => doc,
        }
    }
}

impl<'d> From<&'d Document> for Plaintext<'d> {
    fn from(doc: &'d Document) -> Self {
        Plaintext::Lent(doc)
    }
}

impl From<Document> for Plaintext<'_> {
    fn from(doc: Document) -> Self {
        Plaintext::Given(doc)
    }
}

/// Encrypt and check (see [`encrypt_document`]), the output written into `into` when
/// one is given and it can be mapped.
pub(super) fn encrypt_to(
    format: Format,
    file: &str,
    doc: Plaintext<'_>,
    key: &DataKey,
    md: &mut Metadata,
    into: Option<&std::fs::File>,
) -> Result<(Written, Option<String>)> {
    reserved_keys(file, &doc)?;
    if doc.is_encrypted() {
        return Err(Error::AlreadyEncrypted {
            file: file.to_string(),
        });
    }
    let why = match doc.foreign {
        // Its own layout would not read back with sops: no need to try.
        Some((pos, what)) => format!("{what} at line {}", doc.line_of(pos)),
        None => match own_layout(format, file, &doc, key, md, into, true)? {
            Ok((written, differs_at)) => {
                let note = differs_at.map(|at| round_trip_note(file, &doc, at));
                return Ok((written, note));
            }
            Err(why) => why.to_string(),
        },
    };
    let refused = |why: verify::Mismatch| Error::ReadBack {
        file: file.to_string(),
        doing: "encrypted",
        why,
    };
    let note = layout_note(file, &doc, &why);
    let canonical = canonical_of(format, file, doc).map_err(refused)?;
    // Compared with its own text too, as any source is: the walked check takes
    // comments only so. A decryption written otherwise the warning covers already.
    let (written, _) =
        own_layout(format, file, &canonical, key, md, into, true)?.map_err(refused)?;
    Ok((written, Some(note)))
}

/// `doc` written afresh in the format's canonical layout, checked to hold what `doc`
/// holds, and read: the document encrypted in its place. A document given is let go
/// before its stand-in is read.
fn canonical_of(
    format: Format,
    file: &str,
    doc: Plaintext<'_>,
) -> std::result::Result<Document, verify::Mismatch> {
    let store = format.store();
    let text = store.canonical(&doc, &|i| leaf_text(&doc, i))?;
    let expected = verify::Content::of_plain(&doc);
    verify::plaintext(
        file,
        format,
        text.as_bytes(),
        &doc,
        &expected,
        verify::Compare::Full,
    )?;
    drop(expected);
    drop(doc);
    store.parse(into_bytes(text)).map_err(|error| {
        verify::Mismatch::DoesNotParse(Box::new(Error::Syntax {
            file: file.to_string(),
            error,
        }))
    })
}

/// `doc` encrypted in its own layout and checked (with `byte_for_byte`, the output's
/// decryption is compared with `doc`'s text too, and where it first differs is given);
/// what the check found amiss, when it did.
fn own_layout(
    format: Format,
    file: &str,
    doc: &Document,
    key: &DataKey,
    md: &mut Metadata,
    into: Option<&std::fs::File>,
    byte_for_byte: bool,
) -> Result<std::result::Result<(Written, Option<usize>), verify::Mismatch>> {
    let expected = verify::Content::of_plain(doc);
    Ok(
        match splice_into(format.store(), file, doc, key, md, into)? {
            Ok(Out::Held(kept)) => {
                verify::encrypted(file, format, kept, key, doc, &expected, byte_for_byte)
                    .map(|checked| (Written::Memory(checked.bytes), checked.differs_at))
            }
            Ok(Out::Mapped(mut mapped)) => {
                let walked = mapped.given_back_while(|bytes| {
                    verify::walked::encrypted(file, format, bytes, key, &expected, byte_for_byte)
                });
                match walked {
                    Some(differs_at) => Ok((Written::File, differs_at)),
                    // Not read as it is walked: read whole, as any output is.
                    None => {
                        let bytes = Zeroizing::new(mapped.bytes().to_vec());
                        verify::whole(file, format, bytes, key, doc, &expected, byte_for_byte)
                            .map(|checked| (Written::File, checked.differs_at))
                    }
                }
            }
            Err(why) => Err(why),
        },
    )
}

/// The warning for an encrypted file whose decryption gives the source's values but
/// not its bytes (from `at`): said, never silent.
pub(super) fn round_trip_note(file: &str, doc: &Document, at: usize) -> String {
    // The construct the difference falls in (a block scalar, from its header), else one
    // on the difference's line.
    let owner = doc
        .leaves
        .iter()
        .filter(|l| l.span().start <= at && at < l.span().end)
        .map(|l| l.span().start)
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
                        doc.line_of(e.at())
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Where [`splice_into`] wrote: a buffer, or the file it was given, mapped.
enum Out {
    Held(Zeroizing<Vec<u8>>),
    Mapped(crate::mapped::Mapped),
}

/// The encrypted text of `doc`: every value's span replaced where it stands, metadata
/// added, written into `into` when one is given and it maps, else into memory. Not
/// checked: [`encrypt_document`] is the way in. The inner error: the spans overlap (the
/// layout cannot be kept).
fn splice_into(
    store: &dyn Store,
    file: &str,
    doc: &Document,
    key: &DataKey,
    md: &mut Metadata,
    into: Option<&std::fs::File>,
) -> Result<std::result::Result<Out, verify::Mismatch>> {
    let rules = md.rules().map_err(|error| Error::Metadata {
        file: file.to_string(),
        error,
    })?;
    // Decide leaf by leaf first; then hash the MAC and encrypt, on two cores when the
    // values are large (a binary file is one value of many megabytes). Each list holds
    // a leaf at most once: sized so, neither grows (a million values would leave half
    // again as much spare). Leaves by their index, half a pointer: more than 2^32
    // leaves would not fit in memory. The values hashed are most often the values
    // encrypted: they have a list of their own only once they are not.
    let Ok(_) = u32::try_from(doc.leaves.len()) else {
        return Ok(Err(verify::Mismatch::Unplanned));
    };
    let mut to_encrypt: Vec<u32> = Vec::with_capacity(doc.leaves.len());
    let mut hashed: Option<Vec<u32>> = None;
    let apart = |hashed: &mut Option<Vec<u32>>, to_encrypt: &[u32]| -> Vec<u32> {
        hashed.take().unwrap_or_else(|| {
            let mut apart = Vec::with_capacity(doc.leaves.len());
            apart.extend_from_slice(to_encrypt);
            apart
        })
    };
    let mut walk = rules.walk();
    for i in order(doc) {
        let leaf = &doc.leaves[i];
        let is_comment = leaf.kind == LeafKind::Comment;
        let encrypt = walk.next(&leaf.path, comment_text(leaf, &doc.text));
        let value = leaf.value(&doc.text);
        if is_comment {
            // Encrypted as a value is, never hashed.
            if encrypt && !value.is_empty() {
                hashed = Some(apart(&mut hashed, &to_encrypt));
                to_encrypt.push(i as u32);
            }
            continue;
        }
        // As opening will decide it.
        match opening(leaf.ty, value, encrypt, false, md.mac_only_encrypted) {
            Opening::Null => {}
            Opening::Decrypt => {
                if let Some(hashed) = &mut hashed {
                    hashed.push(i as u32);
                }
                to_encrypt.push(i as u32);
            }
            Opening::Keep(true) => {
                let mut apart = apart(&mut hashed, &to_encrypt);
                apart.push(i as u32);
                hashed = Some(apart);
            }
            Opening::Keep(false) => {}
        }
    }
    let hashed = hashed.as_deref().unwrap_or(&to_encrypt);
    let mac_only = md.mac_only_encrypted;
    let compute_mac = || {
        let mut mac = MacBuilder::new(mac_only);
        for leaf in leaves_at(doc, hashed) {
            mac.add(leaf.ty, leaf.value(&doc.text));
        }
        mac.finish()
    };
    // The metadata is laid out with a stand-in MAC of the same length (a SHA-512 in
    // hex), so the values can be encrypted into place while the MAC is hashed.
    let metadata = |md: &mut Metadata, mac: &[u8]| -> Vec<(usize, String)> {
        md.mac = Some(cipher::encrypt(key, &md.lastmodified, ScalarType::Str, mac));
        let meta = md.to_meta();
        let mut inserts: Vec<_> = (0..doc.docs.len())
            .map(|d| store.render_metadata(doc, d, &meta))
            .collect();
        inserts.sort_by_key(|(at, _)| *at);
        inserts
    };
    let stand_in = metadata(&mut md.clone(), &[b'0'; cipher::MAC_LEN]);
    let sealing = Sealing {
        store,
        doc,
        key,
        leaves: &to_encrypt,
    };
    let Some(layout) = sealing.layout(&stand_in) else {
        return Ok(Err(verify::Mismatch::Overlap));
    };
    let total: usize = leaves_at(doc, hashed)
        .map(|l| l.value(&doc.text).len())
        .sum();
    let write = |out: &mut [u8]| -> Option<Metadata> {
        let (mac, filled) = if total >= 1 << 20 {
            std::thread::scope(|s| {
                let mac = s.spawn(compute_mac);
                let filled = sealing.write(&layout, out);
                (mac.join().expect("the MAC thread does not panic"), filled)
            })
        } else {
            (compute_mac(), sealing.write(&layout, out))
        };
        filled.then_some(())?;
        let mut sealed_md = md.clone();
        let inserts = metadata(&mut sealed_md, mac.as_bytes());
        (inserts.len() == layout.inserts.len()).then_some(())?;
        for ((at, text), &(planned_at, out_at, len)) in inserts.iter().zip(&layout.inserts) {
            (*at == planned_at && text.len() == len).then_some(())?;
            out[out_at..out_at + len].copy_from_slice(text.as_bytes());
        }
        Some(sealed_md)
    };
    let mapped = into.and_then(|f| crate::mapped::Mapped::new(f, layout.len).ok());
    let (out, sealed_md) = match mapped {
        Some(mut m) => {
            let sealed_md = m.given_back_while(write);
            (Out::Mapped(m), sealed_md)
        }
        None => {
            let mut out = Zeroizing::new(vec![0u8; layout.len]);
            let sealed_md = write(&mut out);
            (Out::Held(out), sealed_md)
        }
    };
    let Some(sealed_md) = sealed_md else {
        return Ok(Err(verify::Mismatch::Unplanned));
    };
    // The MAC is the caller's only once the output holds it.
    *md = sealed_md;
    Ok(Ok(out))
}

/// Where everything goes in the output: its length, the inserts (where each stands in
/// the text, where it goes in the output, how long it is), and the parts written each
/// on a core of its own (the first leaf of each, where it starts in the text and in the
/// output).
struct Layout {
    len: usize,
    inserts: Vec<(usize, usize, usize)>,
    parts: Vec<Part>,
}

/// Where a part of the output starts: its first leaf, and where the text it covers
/// starts in the text and in the output (what is inserted there is the part's).
#[derive(Clone, Copy)]
struct Part {
    leaf: usize,
    text: usize,
    out: usize,
}

/// The encrypted text written straight into one buffer of its final size, the values
/// encrypted into their places on every core: no value is held apart from it, as a
/// list of replacements would hold a million of them beside the output.
struct Sealing<'d> {
    store: &'d dyn Store,
    doc: &'d Document,
    key: &'d DataKey,
    /// The leaves to encrypt (their indices), in the text's order.
    leaves: &'d [u32],
}

impl Sealing<'_> {
    /// Values a core is given at the least: fewer are not worth a thread.
    const PER_PART: usize = 512;

    /// The quotes around a leaf's ciphertext.
    fn quotes(&self, leaf: &Leaf) -> (String, &'static str) {
        if leaf.kind == LeafKind::Comment {
            (String::new(), "")
        } else {
            self.store.enc_quotes(self.doc, leaf)
        }
    }

    /// How long a leaf is once encrypted, quotes included.
    fn sealed_len(&self, leaf: &Leaf) -> usize {
        let (open, close) = self.quotes(leaf);
        let value = leaf.value(&self.doc.text).len();
        open.len() + cipher::encrypted_len(leaf.ty, value) + close.len()
    }

    /// Where the leaves and `inserts` (sorted by position) go; `None` when they overlap
    /// (an insert goes before a leaf that starts where it stands).
    fn layout(&self, inserts: &[(usize, String)]) -> Option<Layout> {
        let text = &self.doc.text;
        let n = self.leaves.len();
        // Asked only when there is work for two: the answer reads the cgroup's files.
        let parts = match n / Self::PER_PART {
            0 | 1 => 1,
            most => std::thread::available_parallelism().map_or(1, |c| c.get().min(most)),
        };
        // The first leaf of each part after the first.
        let mut starts = (1..parts).map(|k| k * n / parts).peekable();
        let mut layout = Layout {
            len: 0,
            inserts: Vec::with_capacity(inserts.len()),
            parts: vec![Part {
                leaf: 0,
                text: 0,
                out: 0,
            }],
        };
        // How far the text has been laid out, and where that is in the output.
        let (mut pos, mut out) = (0usize, 0usize);
        let mut pending = inserts.iter().peekable();
        let insert = |layout: &mut Layout, pos: &mut usize, out: &mut usize, at: usize, len| {
            (at >= *pos && at <= text.len()).then_some(())?;
            *out += at - *pos;
            layout.inserts.push((at, *out, len));
            (*pos, *out) = (at, *out + len);
            Some(())
        };
        for (i, leaf) in leaves_at(self.doc, self.leaves).enumerate() {
            let start = leaf.span().start;
            while let Some((at, s)) = pending.next_if(|(at, _)| *at < start) {
                insert(&mut layout, &mut pos, &mut out, *at, s.len())?;
            }
            // A part starts with the text at its first leaf's start, and with what is
            // inserted there.
            if starts.next_if_eq(&i).is_some() {
                (start >= pos).then_some(())?;
                layout.parts.push(Part {
                    leaf: i,
                    text: start,
                    out: out + start - pos,
                });
            }
            while let Some((at, s)) = pending.next_if(|(at, _)| *at == start) {
                insert(&mut layout, &mut pos, &mut out, *at, s.len())?;
            }
            let span = leaf.span();
            (start >= pos && start <= span.end && span.end <= text.len()).then_some(())?;
            out += start - pos + self.sealed_len(leaf);
            pos = span.end;
        }
        for (at, s) in pending {
            insert(&mut layout, &mut pos, &mut out, *at, s.len())?;
        }
        layout.len = out + text.len() - pos;
        Some(layout)
    }

    /// The output as laid out into `out` (of the layout's length), the inserts' places
    /// left for them; `false` if anything does not come where it was laid out.
    fn write(&self, layout: &Layout, out: &mut [u8]) -> bool {
        if out.len() != layout.len {
            return false;
        }
        let text_len = self.doc.text.len();
        // Each part's buffer, leaves, inserts and text, cut from the end.
        let mut jobs = Vec::with_capacity(layout.parts.len());
        let mut rest: &mut [u8] = out;
        let mut ends = (text_len, self.leaves.len(), layout.inserts.len());
        for part in layout.parts.iter().rev() {
            let (text_end, leaves_end, inserts_end) = ends;
            let cut = part.out.min(rest.len());
            let (before, mine) = std::mem::take(&mut rest).split_at_mut(cut);
            rest = before;
            // What is inserted where a part starts is that part's.
            let first_insert = layout.inserts.partition_point(|(at, ..)| *at < part.text);
            let (Some(leaves), Some(inserts)) = (
                self.leaves.get(part.leaf..leaves_end),
                layout.inserts.get(first_insert..inserts_end),
            ) else {
                return false;
            };
            jobs.push((mine, part, leaves, inserts, part.text..text_end));
            ends = (part.text, part.leaf, first_insert);
        }
        std::thread::scope(|s| {
            let mut jobs = jobs.into_iter();
            let mine = jobs.next_back();
            let others: Vec<_> = jobs
                .map(|(buf, part, leaves, inserts, text)| {
                    s.spawn(move || self.fill(buf, part.out, leaves, inserts, text))
                })
                .collect();
            let mine = mine.is_some_and(|(buf, part, leaves, inserts, text)| {
                self.fill(buf, part.out, leaves, inserts, text)
            });
            others.into_iter().fold(mine, |ok, t| {
                t.join().expect("an encrypting thread does not panic") && ok
            })
        })
    }

    /// Write the text in `part` into `out` (which starts at `base` in the output),
    /// `leaves` (those in it) encrypted and room left for `inserts` (those in it) where
    /// each was laid out; `false` unless that fills `out` exactly.
    fn fill(
        &self,
        out: &mut [u8],
        base: usize,
        leaves: &[u32],
        inserts: &[(usize, usize, usize)],
        part: Range<usize>,
    ) -> bool {
        let text = self.doc.text.as_bytes();
        let mut inserts = inserts.iter().peekable();
        let (mut pos, mut at) = (part.start, 0usize);
        let mut scratch = String::new();
        let put = |out: &mut [u8], at: &mut usize, bytes: &[u8]| -> bool {
            let Some(room) = out.get_mut(*at..*at + bytes.len()) else {
                return false;
            };
            room.copy_from_slice(bytes);
            *at += bytes.len();
            true
        };
        let room_for =
            |out: &mut [u8], at: &mut usize, pos: &mut usize, insert: (usize, usize, usize)| {
                let (upto, out_at, len) = insert;
                let fits = put(out, at, &text[*pos..upto])
                    && base + *at == out_at
                    && *at + len <= out.len();
                *at += len;
                *pos = upto;
                fits
            };
        for leaf in leaves_at(self.doc, leaves) {
            while let Some(&insert) = inserts.next_if(|(i, ..)| *i <= leaf.span().start) {
                if !room_for(out, &mut at, &mut pos, insert) {
                    return false;
                }
            }
            let (open, close) = self.quotes(leaf);
            scratch.clear();
            scratch.push_str(&open);
            leaf.with_aad(|aad| {
                cipher::encrypt_into(
                    &mut scratch,
                    self.key,
                    aad,
                    leaf.ty,
                    leaf.value(&self.doc.text),
                )
            });
            scratch.push_str(close);
            if !put(out, &mut at, &text[pos..leaf.span().start])
                || !put(out, &mut at, scratch.as_bytes())
            {
                return false;
            }
            pos = leaf.span().end;
        }
        for &insert in inserts {
            if !room_for(out, &mut at, &mut pos, insert) {
                return false;
            }
        }
        put(out, &mut at, &text[pos..part.end]) && at == out.len()
    }
}

/// The leaves of `doc` at `indices`.
fn leaves_at<'d>(doc: &'d Document, indices: &'d [u32]) -> impl Iterator<Item = &'d Leaf> {
    indices.iter().map(|&i| &doc.leaves[i as usize])
}

pub(super) fn into_bytes(mut s: Zeroizing<String>) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(std::mem::take(&mut *s).into_bytes())
}

/// The `len` bytes `doc` was read from, taken back. The text parsers keep the text they
/// are given as it is; were one not to (a length that differs), `None`.
pub(super) fn text_back(doc: &mut Document, len: usize) -> Option<Zeroizing<Vec<u8>>> {
    let text = std::mem::take(&mut doc.text);
    (text.len() == len).then(|| into_bytes(text))
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
    encrypt_document(format, file, doc, key, md)
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
