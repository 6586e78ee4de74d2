//! File formats. Each store parses text into a [`Document`] whose leaves know their
//! spans, renders a single value back in the format's syntax, and writes the metadata
//! block. Whole-file re-serialisation is used only to convert between formats.

use std::path::Path;

use zeroize::Zeroizing;

use crate::tree::{Document, Entry, Leaf, MetaValue, Node, ScalarType, Value};

pub mod binary;
pub mod dotenv;
pub mod edit;
pub mod flatten;
pub mod ini;
pub mod json;
pub mod yaml;
pub mod yaml_data;
pub mod yaml_resolve;

/// What a reading of a text meets, in the text's order, when it is walked rather than
/// read into a document (`yaml::lite`, `json::walk_encrypted`). A collection's size is
/// known at its end.
#[derive(Debug)]
pub(crate) enum Seen<'t> {
    Doc,
    /// A collection opens: a mapping (`true`) or a sequence.
    Opens(bool),
    /// The innermost open collection ends, holding this many items (a mapping: keys).
    Ends(usize),
    Key(&'t str),
    /// A value: its type and stored bytes, as the whole reader makes a leaf, and its
    /// style (quoting; in YAML whether it stands in a flow collection) and span in the
    /// text (a quoted scalar's quotes included).
    Scalar(
        ScalarType,
        std::borrow::Cow<'t, [u8]>,
        crate::tree::Style,
        std::ops::Range<usize>,
    ),
    /// A comment: its text (after the `#`) and where that stands, in the collection
    /// open (dotenv, INI) or, in YAML, where it stands among the keys and values.
    Comment(&'t str, std::ops::Range<usize>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
    Dotenv,
    Ini,
    Binary,
}

impl Format {
    /// By file name, as sops does: anything unknown is binary.
    pub fn from_path(path: &Path) -> Format {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        match ext.as_str() {
            "yaml" | "yml" => Format::Yaml,
            "json" => Format::Json,
            "env" => Format::Dotenv,
            "ini" => Format::Ini,
            _ if name == ".env" || name.starts_with(".env.") => Format::Dotenv,
            _ => Format::Binary,
        }
    }

    pub fn from_name(name: &str) -> Option<Format> {
        Some(match name {
            "yaml" | "yml" => Format::Yaml,
            "json" => Format::Json,
            "dotenv" | "env" => Format::Dotenv,
            "ini" => Format::Ini,
            "binary" => Format::Binary,
            _ => return None,
        })
    }

    pub fn store(self) -> &'static dyn Store {
        match self {
            Format::Yaml => &yaml::YamlStore,
            Format::Json => &json::JsonStore,
            Format::Binary => &binary::BinaryStore,
            Format::Dotenv => &dotenv::DotenvStore,
            Format::Ini => &ini::IniStore,
        }
    }
}

/// Why a store cannot read its input: where (1-based line and column, when known)
/// and what. Never a value of the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub what: String,
}

impl SyntaxError {
    pub fn at(line: usize, column: usize, what: impl std::fmt::Display) -> Self {
        SyntaxError {
            line: Some(line),
            column: Some(column),
            what: what.to_string(),
        }
    }

    pub fn line(line: usize, what: impl std::fmt::Display) -> Self {
        SyntaxError {
            line: Some(line),
            column: None,
            what: what.to_string(),
        }
    }
}

/// A message with no place of its own (the metadata, the bytes as a whole).
impl From<String> for SyntaxError {
    fn from(what: String) -> Self {
        SyntaxError {
            line: None,
            column: None,
            what,
        }
    }
}

/// Metadata a line-based format holds flattened, which does not read back.
impl From<crate::metadata::MetaError> for SyntaxError {
    fn from(e: crate::metadata::MetaError) -> Self {
        SyntaxError::from(e.to_string())
    }
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "line {l}, column {c}: {}", self.what),
            (Some(l), None) => write!(f, "line {l}: {}", self.what),
            _ => f.write_str(&self.what),
        }
    }
}

/// Why a tree, or one value of it, cannot be written in a format. Names the key path,
/// never a value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("the value at {0} is not UTF-8 text")]
    NotText(String),
    #[error("the value at {0} holds a line break, which INI cannot store there")]
    LineBreak(String),
    #[error("the value at {0} cannot be written as an INI value that reads back")]
    NotReadBack(String),
    #[error("only a mapping {0}can be written as {1}")]
    NotAMapping(&'static str, &'static str),
    #[error("{0} is not a section")]
    NotASection(String),
    #[error("the value of {0} is not a scalar")]
    NotAScalar(String),
    #[error("cannot write the nested value at {path} as {format}")]
    Nested { path: String, format: &'static str },
    #[error("several documents in one file")]
    SeveralDocuments,
}

/// Parse a file's bytes in `format`. Errors name the file and, where known, the line.
pub fn parse(
    file: &str,
    format: Format,
    bytes: impl Into<Zeroizing<Vec<u8>>>,
) -> crate::Result<Document> {
    let bytes = bytes.into();
    let marker = conflict_marker(&bytes);
    format
        .store()
        .parse(bytes)
        .and_then(|mut doc| match duplicate_key(&doc) {
            Some(error) => Err(error),
            None => {
                // Grown by doubling: a million values would keep room for as many again.
                doc.leaves.shrink_to_fit();
                Ok(doc)
            }
        })
        .map_err(|error| crate::Error::Syntax {
            file: file.to_string(),
            // A file left mid-merge does not parse because of its markers: say that.
            error: match marker {
                Some(line) => SyntaxError::from(format!(
                    "unresolved conflict markers at line {line}; finish the merge first"
                )),
                None => error,
            },
        })
}

/// A key that appears twice in one mapping (a dotenv file, an INI section), as an
/// error at its second line. sops reads the last of them, coffer's `--extract` and `set`
/// would find the first: one key, one meaning, so neither is guessed.
fn duplicate_key(doc: &crate::tree::Document) -> Option<SyntaxError> {
    use crate::path::Step;
    use crate::tree::Node;
    /// A step of the path walked, borrowed: made into a `Step` only for the message.
    #[derive(Clone, Copy)]
    enum At<'d> {
        Key(&'d str),
        Index(usize),
    }
    type Found = (Vec<Step>, usize, usize);
    fn walk<'d>(node: &'d Node, path: &mut Vec<At<'d>>, found: &mut Option<Found>) {
        if found.is_some() {
            return;
        }
        match node {
            Node::Map(entries) => {
                // Sorted positions, not a set of keys: a mapping can be large.
                let mut order: Vec<u32> = (0..entries.len() as u32).collect();
                order.sort_by(|&a, &b| entries[a as usize].key.cmp(&entries[b as usize].key));
                if let Some(pair) = order
                    .windows(2)
                    .filter(|w| entries[w[0] as usize].key == entries[w[1] as usize].key)
                    .map(|w| (w[0].min(w[1]) as usize, w[0].max(w[1]) as usize))
                    .min_by_key(|&(_, second)| second)
                {
                    let (first, second) = (&entries[pair.0], &entries[pair.1]);
                    path.push(At::Key(&second.key));
                    let steps = path
                        .iter()
                        .map(|at| match *at {
                            At::Key(k) => Step::Key(k.to_string()),
                            At::Index(i) => Step::Index(i),
                        })
                        .collect();
                    *found = Some((steps, first.at(), second.at()));
                    return;
                }
                for e in entries {
                    path.push(At::Key(&e.key));
                    walk(&e.value, path, found);
                    path.pop();
                }
            }
            Node::Seq(items) => {
                for (i, n) in items.iter().enumerate() {
                    path.push(At::Index(i));
                    walk(n, path, found);
                    path.pop();
                }
            }
            Node::Leaf(_) => {}
        }
    }
    let mut found = None;
    for d in &doc.docs {
        walk(&d.root, &mut Vec::new(), &mut found);
        if let Some((path, first, second)) = found {
            return Some(SyntaxError::line(
                doc.line_of(second),
                format!(
                    "the key {} appears twice (first at line {}): keep one",
                    crate::path::display(&path),
                    doc.line_of(first)
                ),
            ));
        }
    }
    None
}

/// The line of the first merge conflict marker (`<<<<<<< `) standing at a line start.
fn conflict_marker(bytes: &[u8]) -> Option<usize> {
    let at = memchr::memmem::find_iter(bytes, b"<<<<<<<").find(|&i| {
        (i == 0 || bytes[i - 1] == b'\n') && matches!(bytes.get(i + 7), Some(b' ' | b'\n') | None)
    })?;
    Some(1 + memchr::memchr_iter(b'\n', &bytes[..at]).count())
}

/// The bytes of a text format as a string; the bytes are wiped either way.
pub(crate) fn text(mut bytes: Zeroizing<Vec<u8>>) -> Result<Zeroizing<String>, SyntaxError> {
    too_long(bytes.len())?;
    match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(s) => Ok(Zeroizing::new(s)),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            drop(Zeroizing::new(e.into_bytes()));
            Err(SyntaxError::from(format!(
                "not UTF-8 text (byte {at}); use --input-type binary for binary files"
            )))
        }
    }
}

/// A text is read with 32-bit offsets (`tree::Span`): one of 4 GiB or more is refused.
pub(crate) fn too_long(len: usize) -> Result<(), SyntaxError> {
    if u32::try_from(len).is_ok() {
        return Ok(());
    }
    Err(SyntaxError::from(
        "a text file of 4 GiB or more is not supported; use --input-type binary".to_string(),
    ))
}

/// Every sops file names its metadata; most plaintext does not, which spares a parse.
pub fn mentions_sops(bytes: &[u8]) -> bool {
    memchr::memmem::find(bytes, b"sops").is_some()
}

/// The format a sops-encrypted file is in, found by content: its extension's format
/// first, then each structured one. `None` for anything not sops-encrypted.
pub fn detect(path: &Path, bytes: &[u8]) -> Option<Format> {
    if !mentions_sops(bytes) {
        return None;
    }
    let named = Format::from_path(path);
    if named == Format::Binary {
        // sops's binary files are `{"data": …, "sops": …}` and nothing else; a structured
        // file with an unknown extension is read as what it is, so no key of it is lost.
        if let Ok(doc) = json::JsonStore.parse(Zeroizing::new(bytes.to_vec())) {
            let keys: Vec<&str> = match doc.docs.first().map(|d| &d.root) {
                Some(crate::tree::Node::Map(entries)) => entries.iter().map(|e| &*e.key).collect(),
                _ => Vec::new(),
            };
            if doc.is_encrypted() && keys == [binary::DATA_KEY] {
                return Some(Format::Binary);
            }
        }
    }
    [
        named,
        Format::Json,
        Format::Yaml,
        Format::Dotenv,
        Format::Ini,
    ]
    .into_iter()
    .filter(|f| *f != Format::Binary)
    .find(|f| f.store().is_encrypted(bytes))
}

/// sops stores integers as 64-bit values; a larger one would come back changed.
pub(crate) const BIG_INT: &str =
    "an integer that does not fit in 64 bits; quote it to keep it as text";

/// How deep collections may nest. Deeper input is refused with a syntax error instead
/// of exhausting the stack in the parser or in anything that walks the tree after it.
pub const MAX_DEPTH: usize = 256;

/// A format's syntax, as the sops engine needs it. The engine never asks which format
/// it holds; what differs between formats is answered here.
pub trait Store: Sync {
    /// Parse bytes into leaves and structure. The error is a one-line message that
    /// names the line and column where one is known.
    fn parse(&self, source: Zeroizing<Vec<u8>>) -> Result<Document, SyntaxError>;

    /// Parse an encrypted file whose metadata was taken out, to put new metadata in:
    /// without its metadata it may look like plaintext to [`Store::parse`].
    fn parse_stripped(&self, source: Zeroizing<Vec<u8>>) -> Result<Document, SyntaxError> {
        self.parse(source)
    }

    /// True when `bytes` are a sops file of this format. Cheap for plaintext: every sops
    /// file names its metadata, so text without `sops` is not parsed.
    fn is_encrypted(&self, bytes: &[u8]) -> bool {
        mentions_sops(bytes)
            && self
                .parse(Zeroizing::new(bytes.to_vec()))
                .is_ok_and(|d| d.is_encrypted())
    }

    /// The leaf whose bytes are the whole plaintext file, for formats without a layout
    /// of their own (binary).
    fn payload(&self, _doc: &Document) -> Option<usize> {
        None
    }

    /// The source text for a decrypted value at `leaf`'s place.
    fn render_plain(
        &self,
        doc: &Document,
        leaf: &Leaf,
        ty: ScalarType,
        value: &str,
    ) -> Result<String, WriteError>;

    /// What goes before and after an `ENC[...]` string at `leaf`'s place in `doc`
    /// (quotes, a block scalar's header).
    fn enc_quotes(&self, doc: &Document, leaf: &Leaf) -> (String, &'static str);

    /// Where to insert the metadata of document `doc_index`, and the text to insert.
    fn render_metadata(
        &self,
        doc: &Document,
        doc_index: usize,
        meta: &MetaValue,
    ) -> (usize, String);

    /// Whether values keep their type and may be subtrees (YAML, JSON); dotenv and INI
    /// hold text.
    fn holds_trees(&self) -> bool {
        false
    }

    /// Entry `e` (its key and all it holds) replaced by `key` holding `tree`.
    fn replace_entry(
        &self,
        _doc: &Document,
        _e: &Entry,
        _key: &str,
        _tree: &Value,
    ) -> Result<edit::Edit, edit::NoEdit> {
        Err(edit::NoEdit::NoTrees)
    }

    /// `key` holding `value` added after `last`, the last entry of its mapping.
    fn insert_entry(
        &self,
        doc: &Document,
        last: &Entry,
        key: &str,
        value: &Value,
    ) -> Result<edit::Edit, edit::NoEdit>;

    /// Entry `idx` of `entries` removed.
    fn remove_entry(
        &self,
        doc: &Document,
        entries: &[Entry],
        idx: usize,
    ) -> Result<edit::Edit, edit::NoEdit> {
        Ok(edit::remove_entry_lines(doc, entries, idx))
    }

    /// `v` added after the last of `items`, a list that is not empty.
    fn append_item(
        &self,
        _doc: &Document,
        _items: &[Node],
        _v: &Value,
    ) -> Result<edit::Edit, edit::NoEdit> {
        Err(edit::NoEdit::NoLists)
    }

    /// Item `i` of `items` removed.
    fn remove_item(
        &self,
        _doc: &Document,
        _items: &[Node],
        _i: usize,
    ) -> Result<edit::Edit, edit::NoEdit> {
        Err(edit::NoEdit::NoLists)
    }

    /// Serialise a whole plaintext tree (for `--output-type` and `--extract`).
    fn emit(&self, value: &Value) -> Result<Zeroizing<String>, WriteError>;

    /// `doc` written afresh in the format's canonical layout (the one sops writes), with
    /// its comments in order; each leaf's typed text comes from `value`. Used when the
    /// document's own layout cannot be kept.
    fn canonical(&self, doc: &Document, value: &LeafText) -> Result<Zeroizing<String>, WriteError> {
        let roots: Vec<Value> = doc
            .docs
            .iter()
            .map(|d| doc.value_of(&d.root, value))
            .collect::<Result<_, _>>()?;
        match roots.as_slice() {
            [one] => self.emit(one),
            _ => Err(WriteError::SeveralDocuments),
        }
    }
}

/// A document's comments, written as lines of their own in document order, for the
/// canonical layout of the line-based formats (dotenv, INI).
pub(crate) struct CommentLines<'d> {
    doc: &'d Document,
    order: std::iter::Peekable<std::vec::IntoIter<usize>>,
    /// What starts a comment line (`#`, `; `).
    lead: &'static str,
}

impl<'d> CommentLines<'d> {
    pub fn new(doc: &'d Document, lead: &'static str) -> Self {
        CommentLines {
            doc,
            order: doc.comments().into_iter().peekable(),
            lead,
        }
    }

    /// Write every comment that stood before byte `before` of the source.
    pub fn before(
        &mut self,
        out: &mut String,
        before: usize,
        value: &LeafText,
    ) -> Result<(), WriteError> {
        while let Some(&i) = self
            .order
            .peek()
            .filter(|&&i| self.doc.leaves[i].span().start < before)
        {
            self.order.next();
            out.push_str(self.lead);
            out.push_str(&value(i)?.1.replace('\n', " "));
            out.push('\n');
        }
        Ok(())
    }
}

/// A leaf's type and text, as [`Store::canonical`] asks for it.
pub type LeafText<'a> = dyn Fn(usize) -> Result<(ScalarType, Zeroizing<String>), WriteError> + 'a;

#[cfg(test)]
pub(crate) mod table {
    //! Shared by each store's table tests: what a parse found, and the text its values
    //! render back to in place.

    use super::*;

    /// Each value as `path type value`, each comment as `# text`, in document order.
    pub fn read(store: &dyn Store, text: &str) -> Vec<String> {
        let doc = store
            .parse(Zeroizing::new(text.as_bytes().to_vec()))
            .unwrap_or_else(|e| panic!("{text:?}: {e}"));
        let mut idx: Vec<usize> = (0..doc.leaves.len()).collect();
        idx.sort_by_key(|&i| doc.leaves[i].span().start);
        idx.iter()
            .map(|&i| {
                let l = &doc.leaves[i];
                let v = l.value_str(&doc.text).expect("text");
                match l.kind {
                    crate::tree::LeafKind::Comment => format!("#{v}"),
                    crate::tree::LeafKind::Value => {
                        let ty = match l.ty {
                            ScalarType::Null => "null",
                            t => t.sops_name(),
                        };
                        format!("{} {ty} {v}", l.path.join(":"))
                    }
                }
            })
            .collect()
    }

    /// Every value rendered back where it stands: the text must come back unchanged.
    pub fn rendered(store: &dyn Store, text: &str) -> String {
        let doc = store
            .parse(Zeroizing::new(text.as_bytes().to_vec()))
            .expect("parses");
        let edits = doc
            .leaves
            .iter()
            .filter(|l| l.kind == crate::tree::LeafKind::Value && l.ty != ScalarType::Null)
            .map(|l| {
                let v = l.value_str(&doc.text).expect("text");
                let r = store.render_plain(&doc, l, l.ty, v).expect("renders");
                (l.span(), r)
            })
            .collect();
        crate::tree::splice(&doc.text, edits).to_string()
    }

    /// Why `store` refuses `text`.
    pub fn refusal(store: &dyn Store, text: &str) -> SyntaxError {
        store
            .parse(Zeroizing::new(text.as_bytes().to_vec()))
            .err()
            .expect("refused")
    }

    /// Read `text`, compare with `want`, and render it back unchanged.
    pub fn check(store: &dyn Store, text: &str, want: &[&str]) {
        assert_eq!(read(store, text), want, "{text:?}");
        assert_eq!(rendered(store, text), text, "{text:?} renders back");
    }
}
