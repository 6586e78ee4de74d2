//! A new version of an encrypted file from its old one: what the old one keeps (its
//! data key and metadata), and whether a plaintext is what it holds already, told by
//! walking its text where that reading takes it rather than by opening it whole.

use super::*;

/// What a new version of an encrypted file keeps of the old: its data key and its
/// metadata, not its values.
pub struct Keyed {
    pub file: String,
    pub format: Format,
    pub meta: Metadata,
    pub(crate) key: DataKey,
    /// A file of a sops major version coffer does not know may be written (as 3.x): the
    /// user said so (`--force`).
    pub rewrite_future: bool,
}

impl Keyed {
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

    /// `plaintext` (a document of the file's format) encrypted with this data key and
    /// these master keys, stamped now.
    pub fn encrypt(&self, plaintext: &Document) -> Result<Sealed> {
        let mut md = self.new_metadata()?;
        encrypt_document(self.format, &self.file, plaintext, &self.key, &mut md)
    }

    /// [`Keyed::encrypt`] with the output written into `into` (see
    /// [`encrypt_document_into`]); gives the warning of a layout not kept.
    pub fn encrypt_into<'d>(
        &self,
        plaintext: impl Into<Plaintext<'d>>,
        into: &std::fs::File,
    ) -> Result<Option<String>> {
        let mut md = self.new_metadata()?;
        encrypt_document_into(self.format, &self.file, plaintext, &self.key, &mut md, into)
    }

    /// The metadata of a new version, stamped now.
    fn new_metadata(&self) -> Result<Metadata> {
        self.check_rewritable()?;
        let mut md = self.meta.clone();
        md.lastmodified = metadata::now_rfc3339();
        if md.unknown_major().is_some() {
            md.version = Some(metadata::SOPS_VERSION.to_string());
        }
        Ok(md)
    }
}

/// What an encrypted text holds, against a plaintext of the same file.
pub enum Compared {
    /// That plaintext, byte for byte.
    Same,
    /// Other keys, values or comments, or the same written otherwise: the plaintext is
    /// a new version, encrypted with what this gives.
    Differs(Box<Keyed>),
    /// Not told by the walk: open the text whole and compare.
    Unknown,
}

/// Whether `text` (encrypted, `format`) decrypts to `plaintext` byte for byte, told by
/// walking it as an encryption's output is checked (`verify::walked`): the plainest
/// YAML, JSON, dotenv and INI are read where they are, each value decrypted and
/// compared as it is met, never opened into a document and values beside the text. A
/// text that differs is read on to its end, so that the walk's answer is the whole
/// reader's. Errs when no key here opens the text's data key.
pub fn compare(
    file: &str,
    format: Format,
    text: &[u8],
    keyring: &Keyring,
    plaintext: &Document,
) -> Result<Compared> {
    compare_with(file, format, text, plaintext, |meta| {
        keyring
            .data_key(meta)
            .map_err(|reasons| no_key(file, meta, reasons))
    })
}

/// [`compare`] with the data key found by `key` (tests give it).
pub(super) fn compare_with(
    file: &str,
    format: Format,
    text: &[u8],
    plaintext: &Document,
    key: impl FnOnce(&Metadata) -> Result<DataKey>,
) -> Result<Compared> {
    let Some(located) = verify::walked::Located::of(file, format, text) else {
        return Ok(Compared::Unknown);
    };
    let key = key(&located.meta)?;
    let expected = verify::Content::of_plain(plaintext);
    Ok(match located.check(&key, &expected, true) {
        verify::walked::Walked::Holds => Compared::Same,
        verify::walked::Walked::Differs | verify::walked::Walked::Relaid(_) => {
            Compared::Differs(Box::new(Keyed {
                file: file.to_string(),
                format,
                meta: located.meta,
                key,
                rewrite_future: false,
            }))
        }
        verify::walked::Walked::NotTaken => Compared::Unknown,
    })
}
