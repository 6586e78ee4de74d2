//! An opened file: its plaintext rendered in its own layout or another format, values
//! extracted, changed and re-encrypted.

use super::*;

impl Opened {
    /// `plaintext` (of `format`) encrypted anew under this file's data key and master
    /// keys, stamped now: the file after an edit made outside the engine.
    pub fn rewritten(&self, format: Format, plaintext: Zeroizing<Vec<u8>>) -> Result<Sealed> {
        let mut md = self.meta.clone();
        md.lastmodified = metadata::now_rfc3339();
        encrypt_plain(&self.file, format, plaintext, &self.key, &mut md)
    }

    /// The key a push derives its request tokens with, from this file's data key: the
    /// tokens stay the same across runs, and the data key stays inside the engine.
    pub fn push_token_key(&self) -> crate::aws::push::TokenKey {
        std::sync::Arc::new(secrecy::SecretBox::new(Box::new(*self.key.expose())))
    }

    pub(super) fn store(&self) -> &'static dyn Store {
        self.format.store()
    }

    /// Whether the file is one value (a binary file) rather than a tree of them.
    pub fn is_whole_file(&self) -> bool {
        self.store().payload(&self.doc).is_some()
    }

    /// Leaf `i` as a reader of the plaintext sees it: decrypted, or as it stands.
    pub(super) fn typed(&self, i: usize) -> (ScalarType, &[u8]) {
        match &self.values[i] {
            Some(p) => (p.ty, &p.bytes),
            None => (self.doc.leaves[i].ty, self.doc.value(i)),
        }
    }

    /// Leaf `i`'s decrypted type and text, where it is.
    fn leaf_str(&self, i: usize) -> std::result::Result<(ScalarType, &str), WriteError> {
        let (ty, bytes) = self.typed(i);
        std::str::from_utf8(bytes)
            .map(|s| (ty, s))
            .map_err(|_| WriteError::NotText(display_path(&self.doc.leaves[i].path)))
    }

    /// Leaf `i`'s decrypted type and text, copied.
    pub(super) fn leaf_text(
        &self,
        i: usize,
    ) -> std::result::Result<(ScalarType, Zeroizing<String>), WriteError> {
        self.leaf_str(i)
            .map(|(ty, s)| (ty, Zeroizing::new(s.to_string())))
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
        let (bytes, fallback) = self.rendered()?;
        Ok(Sealed {
            bytes: bytes.clone(),
            fallback: fallback.clone(),
        })
    }

    /// The checked plaintext of a tree of values, made once (see [`Opened::render`]).
    fn rendered(&self) -> Result<&(Zeroizing<Vec<u8>>, Option<String>)> {
        if let Some(done) = self.rendered.get() {
            return Ok(done);
        }
        let sealed = self.render_checked()?;
        Ok(self
            .rendered
            .get_or_init(|| (sealed.bytes, sealed.fallback)))
    }

    /// Whether `plaintext` is what this file decrypts to (see [`Opened::render`]), byte
    /// for byte.
    pub fn holds(&self, plaintext: &[u8]) -> Result<bool> {
        if let Some(i) = self.store().payload(&self.doc) {
            let value = self.values[i].as_ref().map_or(&[][..], |p| &p.bytes[..]);
            return Ok(value == plaintext);
        }
        Ok(*self.rendered()?.0 == plaintext)
    }

    pub(super) fn render_checked(&self) -> Result<Sealed> {
        let expected = verify::Content::of(&self.doc, |i| self.typed(i));
        let check = |bytes: Zeroizing<Vec<u8>>| {
            verify::plaintext_owned(
                &self.file,
                self.format,
                bytes,
                &self.doc,
                &expected,
                verify::Compare::Full,
            )
        };
        let why = match self.splice_plain()? {
            Ok(kept) => match check(kept) {
                Ok(bytes) => {
                    return Ok(Sealed {
                        bytes,
                        fallback: None,
                    })
                }
                Err(why) => why,
            },
            Err(why) => why,
        };
        let refused = |why: verify::Mismatch| Error::ReadBack {
            file: self.file.clone(),
            doing: "decrypted",
            why,
        };
        let bytes = into_bytes(
            self.store()
                .canonical(&self.doc, &|i| self.leaf_text(i))
                .map_err(|e| refused(e.into()))?,
        );
        let bytes = check(bytes).map_err(refused)?;
        Ok(Sealed {
            bytes,
            fallback: Some(layout_note(&self.file, &self.doc, &why.to_string())),
        })
    }

    /// Where the plaintext this file decrypts to first differs from `want` (a byte
    /// offset), if it does. A binary file is its value: never.
    pub(crate) fn first_difference(&self, want: &[u8]) -> Option<usize> {
        if self.store().payload(&self.doc).is_some() {
            return None;
        }
        // What `splice_plain` would make, compared as it is made, a piece at a time:
        // nothing of the size of the file is made. The edits in order: the encrypted
        // leaves (by where they start) and the metadata, removed. Past a difference,
        // each is still rendered and placed: one that cannot be is the canonical layout,
        // whatever came before it.
        let text = self.doc.text.as_bytes();
        let mut leaves = order(&self.doc)
            .into_iter()
            .filter(|&i| self.values[i].as_ref().is_some_and(|p| p.encrypted))
            .peekable();
        let mut metas: Vec<&Range<usize>> = self
            .doc
            .docs
            .iter()
            .filter_map(|d| d.meta.as_ref())
            .flat_map(|(_, spans)| spans)
            .collect();
        metas.sort_by_key(|r| (r.start, r.end));
        let mut metas = metas.into_iter().peekable();
        let mut same = Prefix::new(want);
        let mut pos = 0;
        loop {
            let next_leaf = leaves.peek().map(|&i| self.doc.leaves[i].span());
            let meta_first = match (next_leaf, metas.peek()) {
                (Some(l), Some(m)) => (m.start, m.end) < (l.start, l.end),
                (None, Some(_)) => true,
                (_, None) => false,
            };
            let (range, leaf) = if meta_first {
                (metas.next().cloned(), None)
            } else {
                let i = leaves.next();
                (i.map(|i| self.doc.leaves[i].span()), i)
            };
            let Some(range) = range else {
                break;
            };
            // Spans that overlap cannot be put back: the canonical layout, from the start.
            if range.start < pos || range.start > range.end || range.end > text.len() {
                return Some(0);
            }
            same.take(&text[pos..range.start]);
            if let Some(i) = leaf {
                let rendered = self.leaf_str(i).ok().and_then(|(ty, value)| {
                    self.store()
                        .render_plain(&self.doc, &self.doc.leaves[i], ty, value)
                        .ok()
                });
                let Some(rendered) = rendered.map(Zeroizing::new) else {
                    return Some(0);
                };
                same.take(rendered.as_bytes());
            }
            pos = range.end;
        }
        same.take(&text[pos..]);
        same.first_difference()
    }

    /// Every decrypted value put back where its ciphertext stood; metadata removed. The
    /// inner error: the spans overlap (the layout cannot be kept).
    pub(super) fn splice_plain(
        &self,
    ) -> Result<std::result::Result<Zeroizing<Vec<u8>>, verify::Mismatch>> {
        let mut edits = Vec::new();
        let unwritable = |error| Error::Write {
            file: self.file.clone(),
            error,
        };
        for (i, (leaf, plain)) in self.doc.leaves.iter().zip(&self.values).enumerate() {
            if !plain.as_ref().is_some_and(|p| p.encrypted) {
                continue;
            }
            // Rendered from the decrypted bytes where they are: no copy of each value.
            let (ty, text) = self.leaf_str(i).map_err(unwritable)?;
            let rendered = self
                .store()
                .render_plain(&self.doc, leaf, ty, text)
                .map_err(unwritable)?;
            edits.push((leaf.span(), rendered));
        }
        for d in &self.doc.docs {
            if let Some((_, spans)) = &d.meta {
                edits.extend(spans.iter().map(|s| (s.clone(), String::new())));
            }
        }
        Ok(splice_checked(&self.doc.text, edits)
            .map(into_bytes)
            .ok_or(verify::Mismatch::Overlap))
    }

    /// The decrypted tree under `node`.
    pub fn value(&self, node: &Node) -> Result<Value> {
        self.doc
            .value_of(node, &|i| self.leaf_text(i))
            .map_err(|error| Error::Write {
                file: self.file.clone(),
                error,
            })
    }

    pub(super) fn root(&self) -> Result<&Node> {
        match self.doc.docs.as_slice() {
            [d] => Ok(&d.root),
            _ => Err(Error::Unsupported {
                file: self.file.clone(),
                what: "a file with several YAML documents can only be decrypted to YAML".into(),
            }),
        }
    }

    /// Whether output in `to` is this file's own plaintext rather than a conversion.
    pub(super) fn is_own(&self, to: Format) -> bool {
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
        let out = into_bytes(to.store().emit(&value).map_err(|error| Error::Write {
            file: self.file.clone(),
            error,
        })?);
        let expected = verify::Content::of(&self.doc, |i| self.typed(i));
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
                let out = into_bytes(to.store().emit(&tree).map_err(|error| Error::Write {
                    file: self.file.clone(),
                    error,
                })?);
                verify::emitted(to, &out, &tree).map_err(|why| Error::ReadBack {
                    file: self.file.clone(),
                    doing: "extracted",
                    why,
                })?;
                Ok(out)
            }
        }
    }

    /// A file of a future sops format is written as 3.x only when the user asked.
    pub fn check_rewritable(&self) -> Result<()> {
        self.keyed().check_rewritable()
    }

    /// What a new version of this file keeps of it: its data key and metadata.
    pub fn keyed(&self) -> Keyed {
        Keyed {
            file: self.file.clone(),
            format: self.format,
            meta: self.meta.clone(),
            key: self.key.clone(),
            rewrite_future: self.rewrite_future,
        }
    }

    /// The `len` bytes of encrypted text this was opened from, given back (`text_back`),
    /// so a caller need not hold a copy beside it; `None` were the reader to have
    /// changed them.
    pub fn into_text(mut self, len: usize) -> Option<Zeroizing<Vec<u8>>> {
        text_back(&mut self.doc, len)
    }

    /// Encrypt `plaintext` with this file's data key and master keys. `None` when the
    /// plaintext is what the file already holds, so the file can be left byte for byte.
    pub fn reencrypt(&self, plaintext: &[u8]) -> Result<Option<Sealed>> {
        if self.holds(plaintext)? {
            return Ok(None);
        }
        let doc = parse(&self.file, self.format, plaintext.to_vec())?;
        self.keyed().encrypt(&doc).map(Some)
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
        let expected = verify::Content::of(&self.doc, |i| self.typed(i));
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
            Err(why) => why.to_string(),
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
    let root = match doc.docs.as_slice() {
        [d] => &d.root,
        _ => {
            return Err(Error::Unsupported {
                file: file.to_string(),
                what: "a file with several YAML documents can only be encrypted as YAML".into(),
            })
        }
    };
    let unwritable = |error| Error::Write {
        file: file.to_string(),
        error,
    };
    let value = doc
        .value_of(root, &|i| super::encrypt::leaf_text(&doc, i))
        .map_err(unwritable)?;
    let out = into_bytes(to.store().emit(&value).map_err(unwritable)?);
    let expected = verify::Content::of_plain(&doc);
    converted(file, to, out, &doc, &expected)
}

/// Plaintext converted to `to`, once it reads back as `expected`: JSON has no time or
/// bytes type, dotenv and INI hold text only, so the check goes as far as `to` can say.
pub(super) fn converted(
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
        Error::ReadBack {
            file: file.to_string(),
            doing: "converted",
            why,
        }
    })?;
    Ok(out)
}

/// A text made piece by piece, compared with `want` as it is: where it first differs.
/// Shared by `first_difference` and the walked check (`verify::walked`).
pub(in crate::sops) struct Prefix<'w> {
    want: &'w [u8],
    /// How much has been made, and found the same.
    at: usize,
    /// Where the text first differed, once it has: nothing after is compared.
    differs: Option<usize>,
}

impl<'w> Prefix<'w> {
    pub(in crate::sops) fn new(want: &'w [u8]) -> Self {
        Prefix {
            want,
            at: 0,
            differs: None,
        }
    }

    /// The next piece; a text longer than `want` differs where `want` ends. `false`
    /// once the text has differed.
    pub(in crate::sops) fn take(&mut self, piece: &[u8]) -> bool {
        if self.differs.is_some() {
            return false;
        }
        let rest = self.want.get(self.at..).unwrap_or_default();
        let n = piece.len().min(rest.len());
        if piece[..n] != rest[..n] {
            let k = piece[..n].iter().zip(&rest[..n]).position(|(a, b)| a != b);
            self.differs = Some(self.at + k.unwrap_or(n));
        } else if piece.len() > rest.len() {
            self.differs = Some(self.want.len());
        } else {
            self.at += piece.len();
        }
        self.differs.is_none()
    }

    /// Where the text made so far first differs from `want`, if anywhere (a text that
    /// stops short differs where it stops).
    pub(in crate::sops) fn first_difference(&self) -> Option<usize> {
        self.differs
            .or((self.at < self.want.len()).then_some(self.at))
    }
}
