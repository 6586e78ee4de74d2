//! Binary files: the whole content is one value, stored as sops does, in a JSON document
//! `{"data": "ENC[...]", "sops": {...}}`. The store wraps the JSON store, as sops's does.

use zeroize::Zeroizing;

use super::json::JsonStore;
use super::{LeafText, Store};
use crate::tree::{
    Doc, Document, Entry, Leaf, LeafKind, MetaValue, Node, Quote, ScalarType, Style, Value,
};

pub struct BinaryStore;

impl Store for BinaryStore {
    /// An encrypted file is its JSON document; anything else is one plaintext value.
    fn parse(&self, source: Zeroizing<Vec<u8>>) -> Result<Document, super::SyntaxError> {
        // The metadata comes after the data: look from the end.
        let looks_like_sops = source.trim_ascii_start().starts_with(b"{")
            && memchr::memmem::rfind(&source, b"\"sops\"").is_some();
        if !looks_like_sops {
            return Ok(plain_document(source));
        }
        // Parsed without a copy: a file that is no sops JSON after all is given back.
        let mut source = source;
        let text = match String::from_utf8(std::mem::take(&mut *source)) {
            Ok(text) => Zeroizing::new(text),
            Err(e) => return Ok(plain_document(Zeroizing::new(e.into_bytes()))),
        };
        let mut text = match JsonStore.parse_text(text) {
            Ok(doc) if doc.is_encrypted() => return Ok(doc),
            Ok(doc) => doc.text,
            Err((_, text)) => text,
        };
        Ok(plain_document(Zeroizing::new(
            std::mem::take(&mut *text).into_bytes(),
        )))
    }

    /// Without its `sops` key the document would be taken for a plaintext file.
    fn parse_stripped(&self, source: Zeroizing<Vec<u8>>) -> Result<Document, super::SyntaxError> {
        JsonStore.parse(source)
    }

    fn payload(&self, doc: &Document) -> Option<usize> {
        let root = &doc.docs.first()?.root;
        match root.get(DATA_KEY).or_else(|| root.get(CONFLICT_KEY)) {
            Some(Node::Leaf(i)) => Some(*i),
            _ => None,
        }
    }

    fn render_plain(
        &self,
        doc: &Document,
        leaf: &Leaf,
        ty: ScalarType,
        value: &str,
    ) -> Result<String, super::WriteError> {
        JsonStore.render_plain(doc, leaf, ty, value)
    }

    fn enc_quotes(&self, doc: &Document, leaf: &Leaf) -> (String, &'static str) {
        JsonStore.enc_quotes(doc, leaf)
    }

    fn render_metadata(
        &self,
        doc: &Document,
        doc_index: usize,
        meta: &MetaValue,
    ) -> (usize, String) {
        JsonStore.render_metadata(doc, doc_index, meta)
    }

    // The metadata beside the data is JSON: edited as JSON.
    fn insert_entry(
        &self,
        doc: &Document,
        last: &Entry,
        key: &str,
        value: &Value,
    ) -> Result<super::edit::Edit, super::edit::NoEdit> {
        JsonStore.insert_entry(doc, last, key, value)
    }

    fn remove_entry(
        &self,
        doc: &Document,
        entries: &[Entry],
        idx: usize,
    ) -> Result<super::edit::Edit, super::edit::NoEdit> {
        JsonStore.remove_entry(doc, entries, idx)
    }

    fn emit(&self, value: &Value) -> Result<Zeroizing<String>, super::WriteError> {
        JsonStore.emit(value)
    }

    fn canonical(
        &self,
        doc: &Document,
        value: &LeafText,
    ) -> Result<Zeroizing<String>, super::WriteError> {
        JsonStore.canonical(doc, value)
    }
}

/// The key sops stores a binary file's content under (its additional data is `data:`).
pub const DATA_KEY: &str = "data";

/// The key a merge conflict is stored under: never a sops file, so it cannot be taken
/// for one (see `git::merge`).
pub const CONFLICT_KEY: &str = "coffer_conflict";

/// A plaintext binary file as a document with one value. Its text is the JSON skeleton
/// the encrypted file will have, so the generic engine can splice the value into it.
pub fn plain_document(content: Zeroizing<Vec<u8>>) -> Document {
    document_under(DATA_KEY, content)
}

/// A one-value document whose value sits under `key`.
pub fn document_under(key: &str, content: Zeroizing<Vec<u8>>) -> Document {
    let skeleton = format!("{{\n\t\"{key}\": \"\"\n}}\n");
    let value_at = skeleton.find("\"\"").expect("skeleton has an empty string");
    let leaf = Leaf {
        kind: LeafKind::Value,
        path: [key].into_iter().collect(),
        place: (value_at..value_at + 2).into(),
        ty: ScalarType::Str,
        own: Some(Box::new(content)),
        quoted: false,
        style: Style {
            quote: Quote::Double,
            ..Style::default()
        },
    };
    let doc = Doc {
        root: Node::Map(
            vec![Entry {
                key: key.into(),
                place: (3..value_at + 2).into(),
                value: Node::Leaf(0),
            }]
            .into(),
        ),
        meta: None,
        end: value_at + 2,
        indent: 1,
        indent_char: '\t',
    };
    Document {
        text: Zeroizing::new(skeleton),
        leaves: vec![leaf],
        docs: vec![doc],
        constructs: Vec::new(),
        foreign: None,
    }
}
