//! The in-memory document: every value and comment of a file as a [`Leaf`] in document
//! order, with the byte span it occupies in the source text, plus the nested structure
//! ([`Node`]) for lookups and format conversion.
//!
//! Encryption and decryption never re-serialise a whole file: they replace each leaf's
//! span with its new text, so everything between leaves (keys, indentation, blank lines,
//! quoting of keys) is carried over byte for byte.

use std::ops::Range;

use zeroize::Zeroizing;

/// The value types sops knows, plus null (never encrypted) and comments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarType {
    Str,
    Int,
    Float,
    Bool,
    Bytes,
    Comment,
    Null,
}

impl ScalarType {
    pub fn sops_name(self) -> &'static str {
        match self {
            ScalarType::Str | ScalarType::Null => "str",
            ScalarType::Int => "int",
            ScalarType::Float => "float",
            ScalarType::Bool => "bool",
            ScalarType::Bytes => "bytes",
            ScalarType::Comment => "comment",
        }
    }

    pub fn from_sops(name: &str) -> Option<Self> {
        Some(match name {
            "str" => ScalarType::Str,
            "int" | "int64" => ScalarType::Int,
            "float" => ScalarType::Float,
            "bool" => ScalarType::Bool,
            "bytes" => ScalarType::Bytes,
            "comment" => ScalarType::Comment,
            _ => return None,
        })
    }
}

/// How a scalar was written, so that decryption can write it back the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Quote {
    #[default]
    Plain,
    Double,
    Single,
    /// A YAML block scalar (`|` or `>`); it is written back as a literal block.
    Block,
    /// Raw text with no quoting rules of its own (dotenv and INI values).
    Raw,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    pub quote: Quote,
    /// Column of the key or `-` that owns the value (YAML block scalars indent from it).
    pub owner_col: usize,
    /// Inside a YAML flow collection, where block scalars are not allowed.
    pub flow: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeafKind {
    Value,
    Comment,
}

/// One value or comment of the document.
pub struct Leaf {
    pub kind: LeafKind,
    /// The mapping keys leading to the value (list indices left out), as sops uses them
    /// for the additional data. For a comment, the path of the container it sits in.
    pub path: Vec<String>,
    /// Bytes of the source text this leaf's text occupies (for a comment: after the `#`).
    pub span: Range<usize>,
    pub ty: ScalarType,
    /// The decoded scalar: plaintext, or an `ENC[...]` string in an encrypted file.
    pub value: Zeroizing<Vec<u8>>,
    pub style: Style,
}

impl Leaf {
    /// The additional data sops authenticates a value with: `a:b:c:`.
    pub fn aad(&self) -> String {
        let mut s = self.path.join(":");
        s.push(':');
        s
    }

    pub fn value_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
    }
}

/// The structure of a document, pointing into [`Document::leaves`].
#[derive(Clone, Debug)]
pub enum Node {
    Map(Vec<Entry>),
    Seq(Vec<Node>),
    Leaf(usize),
}

/// A mapping entry with where it sits in the source, for `set` and `unset`.
#[derive(Clone, Debug)]
pub struct Entry {
    pub key: String,
    /// Byte offset of the key.
    pub at: usize,
    /// Byte offset just past the value.
    pub end: usize,
    pub value: Node,
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find(|e| e.key == key).map(|e| &e.value),
            _ => None,
        }
    }

    /// The end of the last leaf under this node.
    pub fn end(&self, leaves: &[Leaf]) -> usize {
        match self {
            Node::Leaf(i) => leaves[*i].span.end,
            Node::Map(e) => e.last().map_or(0, |e| e.end),
            Node::Seq(items) => items.last().map_or(0, |n| n.end(leaves)),
        }
    }
}

/// The `sops` metadata as found in a file, before it is interpreted.
#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue {
    Map(Vec<(String, MetaValue)>),
    Seq(Vec<MetaValue>),
    Str(String),
    Null,
}

impl MetaValue {
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        match self {
            MetaValue::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// One document of a file (YAML files may hold several).
pub struct Doc {
    pub root: Node,
    /// The metadata found in this document and the spans it occupies.
    pub meta: Option<(MetaValue, Vec<Range<usize>>)>,
    /// Where a metadata block is inserted when the document is encrypted.
    pub end: usize,
    /// Indentation unit of the document (spaces, or 1 for a tab in JSON).
    pub indent: usize,
    pub indent_char: char,
}

pub struct Document {
    pub text: Zeroizing<String>,
    pub leaves: Vec<Leaf>,
    pub docs: Vec<Doc>,
}

impl Document {
    pub fn is_encrypted(&self) -> bool {
        self.docs.iter().any(|d| d.meta.is_some())
    }
}

/// Replace byte ranges of `text`. Edits must not overlap; an empty range inserts.
pub fn splice(text: &str, mut edits: Vec<(Range<usize>, String)>) -> Zeroizing<String> {
    edits.sort_by_key(|(r, _)| (r.start, r.end));
    let extra: usize = edits.iter().map(|(_, s)| s.len()).sum();
    let mut out = Zeroizing::new(String::with_capacity(text.len() + extra));
    let mut pos = 0;
    for (range, replacement) in edits {
        debug_assert!(range.start >= pos, "overlapping edits");
        out.push_str(&text[pos..range.start]);
        out.push_str(&replacement);
        // Replacements may hold plaintext: wipe them once copied.
        drop(Zeroizing::new(replacement));
        pos = range.end;
    }
    out.push_str(&text[pos..]);
    out
}

/// Lines to insert at `at`. Where `at` follows a last line with no line break, the break
/// moves to the front, so the text still ends without one and removing the insertion
/// gives the original bytes back.
pub fn lines_at(text: &str, at: usize, mut lines: String) -> String {
    if at > 0 && text.as_bytes()[at - 1] != b'\n' && lines.ends_with('\n') {
        lines.pop();
        lines.insert(0, '\n');
    }
    lines
}

/// Just past the line break that ends the line holding `pos` (or the end of the text);
/// `pos` itself when it already starts a line.
pub fn line_end_after(text: &str, pos: usize) -> usize {
    if pos > 0 && text.as_bytes()[pos - 1] == b'\n' {
        return pos;
    }
    text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1)
}
