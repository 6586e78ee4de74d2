//! The one check every file and blob coffer writes goes through: read the bytes back as
//! a reader will (the same parser, and the data key in hand for encrypted output) and
//! compare what they hold with what was meant to be written. The check never looks at
//! the writer's own bookkeeping (spans, styles), only at what a parser finds.

use crate::cipher::DataKey;
use crate::format::Format;
use crate::path::{self, Step};
use crate::scalar;
use crate::sops::OpenOptions;
use crate::tree::{Document, Node, ScalarType, Value};
use zeroize::Zeroizing;

pub(super) mod walked;

/// What a reader finds in a file: every document's structure with its typed values in
/// order, and the comments in order. Layout (indentation, quoting, line breaks between
/// items) is not part of it. Walked as it is compared, never held: a file of a million
/// values would otherwise hold two more lists of them while it is checked.
pub struct Content<'d> {
    doc: &'d Document,
    value: Box<dyn Fn(usize) -> (ScalarType, &'d [u8]) + 'd>,
}

/// Borrowed from the document and its values: walking a content copies nothing.
#[derive(Clone, Copy)]
enum Item<'d> {
    Doc,
    Map(usize),
    Seq(usize),
    Key(&'d str),
    Scalar(ScalarType, &'d [u8]),
}

/// A content's items in order: the documents, and within them each collection before
/// what it holds (a mapping's keys before their values), depth first.
struct Items<'c, 'd> {
    content: &'c Content<'d>,
    docs: std::slice::Iter<'d, crate::tree::Doc>,
    open: Vec<Open<'d>>,
}

/// A collection being walked, or a node about to be.
enum Open<'d> {
    Entries(std::slice::Iter<'d, crate::tree::Entry>),
    Items(std::slice::Iter<'d, Node>),
    Node(&'d Node),
}

impl<'d> Items<'_, 'd> {
    fn enter(&mut self, node: &'d Node) -> Item<'d> {
        match node {
            Node::Map(entries) => {
                self.open.push(Open::Entries(entries.iter()));
                Item::Map(entries.len())
            }
            Node::Seq(items) => {
                self.open.push(Open::Items(items.iter()));
                Item::Seq(items.len())
            }
            Node::Leaf(i) => {
                let (ty, bytes) = (self.content.value)(*i);
                Item::Scalar(ty, bytes)
            }
        }
    }
}

impl<'d> Iterator for Items<'_, 'd> {
    type Item = Item<'d>;

    fn next(&mut self) -> Option<Item<'d>> {
        loop {
            let next = match self.open.last_mut() {
                None => {
                    let d = self.docs.next()?;
                    self.open.push(Open::Node(&d.root));
                    return Some(Item::Doc);
                }
                Some(Open::Node(n)) => {
                    let n = *n;
                    self.open.pop();
                    n
                }
                Some(Open::Entries(entries)) => match entries.next() {
                    Some(e) => {
                        self.open.push(Open::Node(&e.value));
                        return Some(Item::Key(&e.key));
                    }
                    None => {
                        self.open.pop();
                        continue;
                    }
                },
                Some(Open::Items(items)) => match items.next() {
                    Some(n) => n,
                    None => {
                        self.open.pop();
                        continue;
                    }
                },
            };
            return Some(self.enter(next));
        }
    }
}

/// A reading told as it is walked (`format::Seen`) held to a content's structure as it
/// is met: each document, collection and key where the content has one, each
/// collection's size at its end, and the keys over what comes next. Both walked checks
/// (a decryption's plain YAML, and `walked`'s of an encryption) hold it so.
struct Shape<'c, 'd, 't> {
    mine: Items<'c, 'd>,
    /// The keys over the next item; for each collection open, how many of them were
    /// over it, and how many items it was meant to hold.
    keys: Vec<&'t str>,
    open: Vec<(usize, usize)>,
}

impl<'c, 'd, 't> Shape<'c, 'd, 't> {
    fn of(content: &'c Content<'d>) -> Self {
        Shape {
            mine: content.items(),
            keys: Vec::new(),
            open: Vec::new(),
        }
    }

    fn doc(&mut self) -> Option<()> {
        matches!(self.mine.next()?, Item::Doc).then_some(())
    }

    /// A mapping (`is_map`) or a sequence opens.
    fn opens(&mut self, is_map: bool) -> Option<()> {
        let len = match (self.mine.next()?, is_map) {
            (Item::Map(n), true) | (Item::Seq(n), false) => n,
            _ => return None,
        };
        self.open.push((self.keys.len(), len));
        Some(())
    }

    /// The innermost collection ends, holding `len` items.
    fn ends(&mut self, len: usize) -> Option<()> {
        let (over, meant) = self.open.pop()?;
        self.keys.truncate(over);
        (len == meant).then_some(())
    }

    fn key(&mut self, k: &'t str) -> Option<()> {
        let &(over, _) = self.open.last()?;
        self.keys.truncate(over);
        self.keys.push(k);
        differs((self.mine.next()?, Item::Key(k)), Compare::Full, false)
            .is_none()
            .then_some(())
    }

    /// What was meant where a value stands.
    fn value(&mut self) -> Option<Item<'d>> {
        self.mine.next()
    }

    /// The keys over the value met next.
    fn path(&self) -> &[&'t str] {
        &self.keys
    }

    /// The keys over the collection open: a comment's in it.
    fn container(&self) -> Option<&[&'t str]> {
        let &(over, _) = self.open.last()?;
        Some(&self.keys[..over])
    }

    /// Whether all that was meant was met, and every collection ended.
    fn done(&mut self) -> bool {
        self.mine.next().is_none() && self.open.is_empty()
    }
}

/// How much of the content an output must keep.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// Structure, typed values and comments: the file's own format.
    Full,
    /// Structure and typed values: another format that has the same types.
    Data,
    /// As `Data`, with times and bytes read back as strings (JSON).
    Json,
    /// Structure, keys and values as text: formats whose values are untyped (dotenv,
    /// INI), where a boolean reads back as `true`/`false` and null as nothing.
    Text,
}

/// Where an item sits, for messages: the key path and the line in the text it came from.
struct Place {
    path: Vec<Step>,
    pos: Option<usize>,
}

/// Where each item of a document sits, in the order of [`Items`]: worked out only to
/// describe a difference (each costs a copy of its path).
struct Places<'d> {
    doc: &'d Document,
    places: Vec<Place>,
    path: Vec<Step>,
}

impl Places<'_> {
    fn push(&mut self, pos: Option<usize>) {
        self.places.push(Place {
            path: self.path.clone(),
            pos,
        });
    }

    fn node(&mut self, node: &Node) {
        let pos = self.doc.node_start(node);
        self.push(pos);
        match node {
            Node::Map(entries) => {
                for e in entries {
                    self.path.push(Step::Key(e.key.to_string()));
                    self.push(Some(e.at()));
                    self.node(&e.value);
                    self.path.pop();
                }
            }
            Node::Seq(items) => {
                for (i, n) in items.iter().enumerate() {
                    self.path.push(Step::Index(i));
                    self.node(n);
                    self.path.pop();
                }
            }
            Node::Leaf(_) => {}
        }
    }

    /// Each item's place, in the order of [`Items`].
    fn of(doc: &Document) -> Vec<Place> {
        let mut p = Places {
            doc,
            places: Vec::new(),
            path: Vec::new(),
        };
        for d in &doc.docs {
            p.push(None);
            p.node(&d.root);
        }
        p.places
    }
}

impl<'d> Content<'d> {
    /// The content of `doc`, each leaf's typed plaintext given by `value`.
    pub fn of(
        doc: &'d Document,
        value: impl Fn(usize) -> (ScalarType, &'d [u8]) + 'd,
    ) -> Content<'d> {
        Content {
            doc,
            value: Box::new(value),
        }
    }

    /// The content of a plaintext document, as its parser found it.
    pub fn of_plain(doc: &'d Document) -> Content<'d> {
        Content::of(doc, |i| (doc.leaves[i].ty, doc.value(i)))
    }

    fn items(&self) -> Items<'_, 'd> {
        Items {
            content: self,
            docs: self.doc.docs.iter(),
            open: Vec::new(),
        }
    }

    /// The first difference from `other` (what a reader of `other` would get wrong),
    /// described by key path and line of `self`'s source, never by value.
    pub fn difference(
        &self,
        doc: &Document,
        other: &Content,
        compare: Compare,
        json: bool,
    ) -> Option<String> {
        // Where things are is worked out only once something differs.
        let place = |k: usize| -> String {
            let places = Places::of(doc);
            let Some(p) = places.get(k) else {
                return "the end of the document".into();
            };
            let at = if p.path.is_empty() {
                "the top level".to_string()
            } else {
                path::display(&p.path)
            };
            match p.pos {
                Some(pos) => format!("{at} (line {})", doc.line_of(pos)),
                None => at,
            }
        };
        let (mut mine, mut theirs) = (self.items(), other.items());
        for k in 0.. {
            let pair = match (mine.next(), theirs.next()) {
                (None, None) => break,
                (Some(a), Some(b)) => (a, b),
                _ => return Some(format!("{}: a different structure", place(k))),
            };
            let Some(what) = differs(pair, compare, json) else {
                continue;
            };
            return Some(format!("{}: {what}", place(k)));
        }
        if compare == Compare::Full {
            let (mine, theirs) = (self.doc.comments(), other.doc.comments());
            if mine.len() != theirs.len() {
                return Some(format!(
                    "{} comment(s) where {} were meant",
                    theirs.len(),
                    mine.len()
                ));
            }
            if let Some(k) = mine
                .iter()
                .zip(&theirs)
                .position(|(&a, &b)| (self.value)(a).1 != (other.value)(b).1)
            {
                let line = doc
                    .comments()
                    .get(k)
                    .map(|&i| doc.line_of(doc.leaves[i].span().start))
                    .unwrap_or_default();
                return Some(format!("the comment at line {line} reads differently"));
            }
        }
        None
    }
}

impl Content<'_> {
    /// Whether `text`, read as plain YAML without a document (`format::yaml::
    /// lite_plain`), holds exactly this content, comments included, compared as it is
    /// read: nothing of it is held (a million values' items were 160 MB). `false` when
    /// it does not, or when that reading gives up: the whole check then decides.
    fn is_lite_yaml(&self, text: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(text) else {
            return false;
        };
        let comments = self.doc.comments();
        crate::format::yaml::lite_reading(|by| self.lite_yaml(text, by, &comments)).unwrap_or(false)
    }

    /// [`Content::is_lite_yaml`], read `by` one reader.
    fn lite_yaml(
        &self,
        text: &str,
        by: crate::format::yaml::By,
        comments: &[usize],
    ) -> Result<bool, crate::format::yaml::Stop> {
        use crate::format::Seen;
        let mut shape = Shape::of(self);
        let mut comments = comments.iter();
        crate::format::yaml::lite_plain(text, by, |seen| match seen {
            Seen::Doc => shape.doc(),
            Seen::Opens(is_map) => shape.opens(is_map),
            Seen::Ends(len) => shape.ends(len),
            Seen::Key(k) => shape.key(k),
            Seen::Scalar(ty, v, ..) => {
                differs((shape.value()?, Item::Scalar(ty, &v)), Compare::Full, false)
                    .is_none()
                    .then_some(())
            }
            Seen::Comment(c, _) => {
                ((self.value)(*comments.next()?).1 == c.as_bytes()).then_some(())
            }
        })?;
        Ok(shape.done() && comments.next().is_none())
    }
}

/// What a reader would get wrong at one item: `None` when the two items read alike.
fn differs(pair: (Item, Item), compare: Compare, json: bool) -> Option<&'static str> {
    Some(match pair {
        (Item::Doc, Item::Doc) => return None,
        (Item::Map(a), Item::Map(b)) | (Item::Seq(a), Item::Seq(b)) if a == b => return None,
        (Item::Map(_), Item::Map(_)) => "a different number of keys",
        (Item::Seq(_), Item::Seq(_)) => "a different number of items",
        (Item::Key(a), Item::Key(b)) if a == b => return None,
        (Item::Key(_), Item::Key(_)) => "a different key",
        (Item::Scalar(ta, a), Item::Scalar(tb, b)) if compare == Compare::Text => {
            if as_text(ta, a) == as_text(tb, b) {
                return None;
            }
            "a different value"
        }
        (Item::Scalar(ta, a), Item::Scalar(tb, b))
            if ta == tb || (compare == Compare::Json && as_json(ta) == tb) =>
        {
            if same_value(tb, a, b) {
                return None;
            }
            "a different value"
        }
        // JSON has one number type: sops 3.11 reads every number as a float.
        (Item::Scalar(ta, a), Item::Scalar(tb, b)) if json && is_number(ta) && is_number(tb) => {
            if same_value(ScalarType::Float, a, b) {
                return None;
            }
            "a different value"
        }
        (Item::Scalar(..), Item::Scalar(..)) => "a value of another type",
        _ => "a different structure",
    })
}

/// A value as the text an untyped format holds.
fn as_text(ty: ScalarType, v: &[u8]) -> Vec<u8> {
    match ty {
        ScalarType::Null => Vec::new(),
        ScalarType::Bool => std::str::from_utf8(v)
            .ok()
            .and_then(scalar::parse_bool)
            .map_or_else(|| v.to_vec(), |b| b.to_string().into_bytes()),
        _ => v.to_vec(),
    }
}

fn is_number(ty: ScalarType) -> bool {
    matches!(ty, ScalarType::Int | ScalarType::Float)
}

/// The type a JSON reader gives a value of type `ty`.
fn as_json(ty: ScalarType) -> ScalarType {
    match ty {
        ScalarType::Time | ScalarType::Bytes => ScalarType::Str,
        other => other,
    }
}

/// Typed equality: an int written `+7` is the int 7, a bool `True` is `true`.
fn same_value(ty: ScalarType, a: &[u8], b: &[u8]) -> bool {
    // Null is null however it is spelled (`~`, `null`, nothing).
    if a == b || ty == ScalarType::Null {
        return true;
    }
    let (Ok(a), Ok(b)) = (std::str::from_utf8(a), std::str::from_utf8(b)) else {
        return false;
    };
    match ty {
        ScalarType::Int => matches!((a.parse::<i64>(), b.parse::<i64>()), (Ok(x), Ok(y)) if x == y),
        ScalarType::Float => match (scalar::parse_float(a), scalar::parse_float(b)) {
            (Some(x), Some(y)) => x == y || (x.is_nan() && y.is_nan()),
            _ => false,
        },
        ScalarType::Bool => {
            matches!((scalar::parse_bool(a), scalar::parse_bool(b)), (Some(x), Some(y)) if x == y)
        }
        ScalarType::Time => {
            scalar::canonical(ty, a.as_bytes()) == scalar::canonical(ty, b.as_bytes())
        }
        _ => false,
    }
}

/// An encrypted output that passed the check.
/// Why an output does not read back as its source: by line and key path, never a value.
#[derive(Debug, thiserror::Error)]
pub enum Mismatch {
    #[error("the output does not parse ({})", unfiled(.0))]
    DoesNotParse(Box<crate::Error>),
    #[error("{}", unfiled(.0))]
    Metadata(Box<crate::Error>),
    #[error("the output does not open ({})", unfiled(.0))]
    DoesNotOpen(Box<crate::Error>),
    #[error("a document of the output has no sops metadata")]
    NoMetadata,
    #[error("the output holds sops metadata")]
    HoldsMetadata,
    #[error("a comment at line {0} is left in clear")]
    ClearComment(usize),
    #[error("the output is not UTF-8 text")]
    NotText,
    #[error("the output is several documents")]
    SeveralDocuments,
    #[error("no value")]
    NoValue,
    #[error("the values and the metadata overlap in the text")]
    Overlap,
    /// The output did not come out as it was laid out (a length worked out wrong).
    #[error("the output did not come out as it was laid out")]
    Unplanned,
    #[error(transparent)]
    Write(#[from] crate::format::WriteError),
    /// What a reader would get wrong, by key path and line (see [`Content::difference`]).
    #[error("{0}")]
    Differs(String),
}

/// An error's text without the file name it starts with (the outer error names it).
fn unfiled(e: &crate::Error) -> String {
    let s = e.to_string();
    match e.file() {
        Some(file) => s
            .strip_prefix(&format!("{file}: "))
            .map(str::to_string)
            .unwrap_or(s),
        None => s,
    }
}

pub struct Checked {
    pub bytes: Zeroizing<Vec<u8>>,
    /// When asked: where (a byte offset of the source) decrypting the output first gives
    /// other bytes than the source holds, if anywhere. The values are the same (the
    /// check saw to that); their spelling or layout is not.
    pub differs_at: Option<usize>,
}

/// Check an encrypted output: it parses as `format`, every document carries the
/// metadata, it opens with `key` (MAC included), no value or comment its rules encrypt
/// is left in clear, and it holds `expected` (comments included). The bytes are read
/// where they are, not copied, and given back when they pass. With `byte_for_byte` (a
/// plaintext source in its own layout), the output's decryption is also compared with
/// the source's text. The plainest YAML, JSON, dotenv and INI are read as they are
/// walked (`walked`), anything else into a document ([`whole`]).
pub fn encrypted(
    file: &str,
    format: Format,
    bytes: Zeroizing<Vec<u8>>,
    key: &DataKey,
    source: &Document,
    expected: &Content,
    byte_for_byte: bool,
) -> Result<Checked, Mismatch> {
    if let Some(differs_at) = walked::encrypted(file, format, &bytes, key, expected, byte_for_byte)
    {
        return Ok(Checked { bytes, differs_at });
    }
    whole(file, format, bytes, key, source, expected, byte_for_byte)
}

/// [`encrypted`] with the output read into a document and opened, as a reader does:
/// for every output the walked reading does not take, and for what it finds amiss.
pub(super) fn whole(
    file: &str,
    format: Format,
    bytes: Zeroizing<Vec<u8>>,
    key: &DataKey,
    source: &Document,
    expected: &Content,
    byte_for_byte: bool,
) -> Result<Checked, Mismatch> {
    let len = bytes.len();
    let doc = read_back(file, format, bytes)?;
    if doc.docs.iter().any(|d| d.meta.is_none()) {
        return Err(Mismatch::NoMetadata);
    }
    let (doc, meta, _) =
        super::metadata_of(file, doc).map_err(|e| Mismatch::Metadata(Box::new(e)))?;
    let mut opened =
        super::open_with_key(file, format, doc, meta, key.clone(), OpenOptions::default())
            .map_err(|e| Mismatch::DoesNotOpen(Box::new(e)))?;
    if let Some(&i) = opened.clear_comments.first() {
        return Err(Mismatch::ClearComment(
            opened.doc.line_of(opened.doc.leaves[i].span().start),
        ));
    }
    let got = Content::of(&opened.doc, |i| opened.typed(i));
    if let Some(d) = expected.difference(source, &got, Compare::Full, is_json(format)) {
        return Err(Mismatch::Differs(d));
    }
    drop(got);
    let differs_at = byte_for_byte
        .then(|| opened.first_difference(source.text.as_bytes()))
        .flatten();
    Ok(Checked {
        bytes: given_back(file, &mut opened.doc, len)?,
        differs_at,
    })
}

/// `bytes` read as `format`, for a check.
fn read_back(
    file: &str,
    format: Format,
    bytes: impl Into<Zeroizing<Vec<u8>>>,
) -> Result<Document, Mismatch> {
    crate::format::parse(file, format, bytes).map_err(|e| Mismatch::DoesNotParse(Box::new(e)))
}

/// The `len` bytes `doc` was read from, taken back once checked (`text_back`): were a
/// reader to change the text it read, nothing but what was checked may go out.
fn given_back(file: &str, doc: &mut Document, len: usize) -> Result<Zeroizing<Vec<u8>>, Mismatch> {
    super::text_back(doc, len).ok_or_else(|| {
        Mismatch::DoesNotParse(Box::new(crate::Error::Syntax {
            file: file.to_string(),
            error: crate::format::SyntaxError::from(
                "the reader changed the text it read".to_string(),
            ),
        }))
    })
}

/// Check a plaintext output: it parses as `format`, holds no sops metadata, and holds
/// `expected` (with `comments` when the output keeps them).
pub fn plaintext(
    file: &str,
    format: Format,
    bytes: &[u8],
    source: &Document,
    expected: &Content,
    compare: Compare,
) -> Result<(), Mismatch> {
    if lite_holds(format, bytes, expected, compare) {
        return Ok(());
    }
    let doc = read_back(file, format, bytes.to_vec())?;
    holds_plain(format, &doc, source, expected, compare)
}

/// [`plaintext`] for bytes given, not lent: a text format reads them where they are
/// (a copy as large as the output spared) and gives them back when they pass.
pub fn plaintext_owned(
    file: &str,
    format: Format,
    bytes: Zeroizing<Vec<u8>>,
    source: &Document,
    expected: &Content,
    compare: Compare,
) -> Result<Zeroizing<Vec<u8>>, Mismatch> {
    // A binary file's bytes are a value, not the document's text.
    if format == Format::Binary {
        plaintext(file, format, &bytes, source, expected, compare)?;
        return Ok(bytes);
    }
    if lite_holds(format, &bytes, expected, compare) {
        return Ok(bytes);
    }
    let len = bytes.len();
    let mut doc = read_back(file, format, bytes)?;
    holds_plain(format, &doc, source, expected, compare)?;
    given_back(file, &mut doc, len)
}

/// The plainest YAML, checked in full without a document (see `Content::is_lite_yaml`):
/// a decryption's own output, most often. Any doubt is a `false`, and the whole check
/// runs.
fn lite_holds(format: Format, bytes: &[u8], expected: &Content, compare: Compare) -> bool {
    format == Format::Yaml && compare == Compare::Full && expected.is_lite_yaml(bytes)
}

fn holds_plain(
    format: Format,
    doc: &Document,
    source: &Document,
    expected: &Content,
    compare: Compare,
) -> Result<(), Mismatch> {
    if doc.is_encrypted() {
        return Err(Mismatch::HoldsMetadata);
    }
    let json = is_json(format) || compare == Compare::Json;
    let got = Content::of_plain(doc);
    match expected.difference(source, &got, compare, json) {
        Some(d) => Err(Mismatch::Differs(d)),
        None => Ok(()),
    }
}

fn is_json(format: Format) -> bool {
    matches!(format, Format::Json | Format::Binary)
}

/// Check a tree written afresh in `format` (`--extract` of a subtree, a pushed secret):
/// it parses back to `want`.
pub fn emitted(format: Format, bytes: &[u8], want: &Value) -> Result<(), Mismatch> {
    let text = std::str::from_utf8(bytes).map_err(|_| Mismatch::NotText)?;
    // Read it as the value of one key, so a list or a scalar is a document too.
    let wrapped = match format {
        Format::Yaml => {
            let body: String = text.lines().map(|l| format!("  {l}\n")).collect();
            format!("v:\n{body}")
        }
        Format::Json | Format::Binary => format!("{{\"v\": {text}}}"),
        _ => text.to_string(),
    };
    let doc = read_back("output", format, wrapped.into_bytes())?;
    let [d] = doc.docs.as_slice() else {
        return Err(Mismatch::SeveralDocuments);
    };
    let root = match format {
        Format::Yaml | Format::Json | Format::Binary => d.root.get("v").ok_or(Mismatch::NoValue)?,
        _ => &d.root,
    };
    let got = doc.plain_value(root).ok_or(Mismatch::NotText)?;
    let compare = match format {
        Format::Yaml => Compare::Data,
        Format::Json | Format::Binary => Compare::Json,
        _ => Compare::Text,
    };
    match same_tree(&got, want, compare) {
        Some(d) => Err(Mismatch::Differs(d)),
        None => Ok(()),
    }
}

/// The first place where `got` differs from `want`, by key path.
fn same_tree(got: &Value, want: &Value, compare: Compare) -> Option<String> {
    match (got, want) {
        (Value::Map(a), Value::Map(b)) if a.len() == b.len() => {
            a.iter().zip(b).find_map(|((ka, va), (kb, vb))| {
                if ka != kb {
                    return Some(format!("a different key where {kb:?} was meant"));
                }
                same_tree(va, vb, compare).map(|d| format!("[{ka:?}]{d}"))
            })
        }
        (Value::Seq(a), Value::Seq(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| same_tree(x, y, compare).map(|d| format!("[{i}]{d}"))),
        (Value::Scalar(ta, a), Value::Scalar(tb, b)) => {
            let (a, b) = (a.as_bytes(), b.as_bytes());
            let same = match compare {
                Compare::Text => as_text(*ta, a) == as_text(*tb, b),
                Compare::Json if is_number(*ta) && is_number(*tb) => {
                    same_value(ScalarType::Float, a, b)
                }
                Compare::Json => (*ta == *tb || as_json(*tb) == *ta) && same_value(*ta, a, b),
                _ => ta == tb && same_value(*ta, a, b),
            };
            (!same).then(|| ": a different value".to_string())
        }
        _ => Some(": a different structure".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Document {
        crate::format::parse("f.yaml", Format::Yaml, text.as_bytes().to_vec()).expect("parses")
    }

    /// What a reader of `got` would get wrong about `want`, as the check says it.
    #[test]
    fn a_difference_is_named_by_key_path_and_line() {
        let want = "a: 1\nb:\n  c: x\n  d: [1, 2]\n# note\n";
        let cases = [
            (want, None),
            // Layout is not content.
            (
                "a: +1\nb: {c: 'x', d: [1, 2]}\n#  note\n",
                Some("the comment at line 5 reads differently"),
            ),
            (
                "a: 1\nb:\n  c: x\n  d: [1, 2]\n#  note\n",
                Some("the comment at line 5 reads differently"),
            ),
            (
                "a: 1\nb:\n  c: y\n  d: [1, 2]\n# note\n",
                Some("[\"b\"][\"c\"] (line 3): a different value"),
            ),
            (
                "a: 1\nb:\n  c: 1\n  d: [1, 2]\n# note\n",
                Some("[\"b\"][\"c\"] (line 3): a value of another type"),
            ),
            (
                "a: 1\nb:\n  e: x\n  d: [1, 2]\n# note\n",
                Some("[\"b\"][\"c\"] (line 3): a different key"),
            ),
            (
                "a: 1\nb:\n  c: x\n  d: [1]\n# note\n",
                Some("[\"b\"][\"d\"] (line 4): a different number of items"),
            ),
            (
                "a: 1\nb:\n  c: x\n# note\n",
                Some("[\"b\"] (line 3): a different number of keys"),
            ),
            (
                "a: 1\nb:\n  c: x\n  d: [1, 2]\n",
                Some("0 comment(s) where 1 were meant"),
            ),
            (
                "a: 1\nb:\n  c: x\n  d: [1, 2]\n# note\n---\nz: 1\n",
                Some("the end of the document: a different structure"),
            ),
            (
                "a: 1\nb:\n  c: x\n  d: {x: 1}\n# note\n",
                Some("[\"b\"][\"d\"] (line 4): a different structure"),
            ),
        ];
        let source = doc(want);
        let expected = Content::of_plain(&source);
        for (text, said) in cases {
            let got = doc(text);
            let d = expected.difference(&source, &Content::of_plain(&got), Compare::Full, false);
            assert_eq!(d.as_deref(), said, "{text}");
        }
    }

    /// The plainest YAML is checked without a document, and only what holds the same
    /// content passes that way: every difference goes on to the whole check, which
    /// names it as before.
    #[test]
    fn the_plainest_yaml_is_checked_without_a_document_and_differences_still_named() {
        let want = "a: 1\nb:\n  c: x # why\n  d:\n  - 1\n  - 'two'\n# note\n";
        let source = doc(want);
        let expected = Content::of_plain(&source);
        assert!(expected.is_lite_yaml(want.as_bytes()));
        // Layout alone is no difference, with or without the document.
        let relaid = "a:   1\nb:\n    c: 'x' # why\n    d:\n    -   1\n    - two\n# note\n";
        assert!(expected.is_lite_yaml(relaid.as_bytes()));
        let cases = [
            (
                "a: 1\nb:\n  c: y # why\n  d:\n  - 1\n  - 'two'\n# note\n",
                "[\"b\"][\"c\"] (line 3): a different value",
            ),
            (
                "a: 1\nb:\n  c: 1 # why\n  d:\n  - 1\n  - 'two'\n# note\n",
                "[\"b\"][\"c\"] (line 3): a value of another type",
            ),
            (
                "a: 1\nb:\n  e: x # why\n  d:\n  - 1\n  - 'two'\n# note\n",
                "[\"b\"][\"c\"] (line 3): a different key",
            ),
            (
                "a: 1\nb:\n  c: x # why\n  d:\n  - 1\n# note\n",
                "[\"b\"][\"d\"] (line 5): a different number of items",
            ),
            (
                "a: 1\nb:\n  c: x # why\n# note\n",
                "[\"b\"] (line 3): a different number of keys",
            ),
            (
                "a: 1\nb:\n  c: x # who\n  d:\n  - 1\n  - 'two'\n# note\n",
                "the comment at line 3 reads differently",
            ),
            (
                "a: 1\nb:\n  c: x\n  d:\n  - 1\n  - 'two'\n# note\n",
                "1 comment(s) where 2 were meant",
            ),
            (
                "a: 1\nb:\n  c: x # why\n  d:\n  - 1\n  - 'two'\n# note\n# more\n",
                "3 comment(s) where 2 were meant",
            ),
            (
                "a: 1\nb:\n  c: x # why\n  d:\n  - 1\n  - 'two'\n# note\n---\nz: 1\n",
                "the end of the document: a different structure",
            ),
            (
                "a: 1\nb:\n  c: x # why\n  d:\n    e: 1\n# note\n",
                "[\"b\"][\"d\"] (line 5): a different structure",
            ),
        ];
        for (text, said) in cases {
            assert!(!expected.is_lite_yaml(text.as_bytes()), "{text}");
            let got = plaintext(
                "f.yaml",
                Format::Yaml,
                text.as_bytes(),
                &source,
                &expected,
                Compare::Full,
            );
            assert_eq!(
                got.map_err(|e| e.to_string()),
                Err(said.to_string()),
                "{text}"
            );
        }
        assert!(plaintext(
            "f.yaml",
            Format::Yaml,
            relaid.as_bytes(),
            &source,
            &expected,
            Compare::Full
        )
        .is_ok());
    }
}
