//! Binary files: the whole content is one value, stored as sops does, in a JSON document
//! `{"data": "ENC[...]", "sops": {...}}`.

use crate::tree::{Doc, Document, Entry, Leaf, LeafKind, Node, Quote, ScalarType, Style};
use zeroize::Zeroizing;

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
        path: vec![key.to_string()],
        span: value_at..value_at + 2,
        ty: ScalarType::Str,
        value: content,
        style: Style {
            quote: Quote::Double,
            ..Style::default()
        },
    };
    let doc = Doc {
        root: Node::Map(vec![Entry {
            key: key.to_string(),
            at: 3,
            end: value_at + 2,
            value: Node::Leaf(0),
        }]),
        meta: None,
        end: value_at + 2,
        indent: 1,
        indent_char: '\t',
    };
    Document {
        text: Zeroizing::new(skeleton),
        leaves: vec![leaf],
        docs: vec![doc],
    }
}
