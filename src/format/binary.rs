//! Binary files: the whole content is one value, stored as sops does, in a JSON document
//! `{"data": "ENC[...]", "sops": {...}}`.

use crate::tree::{Doc, Document, Entry, Leaf, LeafKind, Node, Quote, ScalarType, Style};
use zeroize::Zeroizing;

/// The key sops stores a binary file's content under (its additional data is `data:`).
pub const DATA_KEY: &str = "data";

/// A plaintext binary file as a document with one value. Its text is the JSON skeleton
/// the encrypted file will have, so the generic engine can splice the value into it.
pub fn plain_document(content: Zeroizing<Vec<u8>>) -> Document {
    let skeleton = "{\n\t\"data\": \"\"\n}\n";
    let value_at = skeleton.find("\"\"").expect("skeleton has an empty string");
    let leaf = Leaf {
        kind: LeafKind::Value,
        path: vec![DATA_KEY.to_string()],
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
            key: DATA_KEY.to_string(),
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
        text: Zeroizing::new(skeleton.to_string()),
        leaves: vec![leaf],
        docs: vec![doc],
    }
}
