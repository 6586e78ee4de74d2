//! The in-memory document: every value and comment of a file as a [`Leaf`] in document
//! order, with the byte span it occupies in the source text, plus the nested structure
//! ([`Node`]) for lookups and format conversion.
//!
//! Encryption and decryption never re-serialise a whole file: they replace each leaf's
//! span with its new text, so everything between leaves (keys, indentation, blank lines,
//! quoting of keys) is carried over byte for byte.

use std::ops::Range;
use std::sync::Arc;

pub use thin_vec::ThinVec;
use zeroize::Zeroizing;

pub use crate::scalar::ScalarType;

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
    /// A comment sops wrote as a list item (`- ENC[…,type:comment]`); its span starts
    /// at the dash and it decrypts to a `#` comment line.
    Item,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    pub quote: Quote,
    /// Column of the key or `-` that owns the value (YAML block scalars indent from it);
    /// 16 bits keep a leaf small (see [`column`]).
    pub owner_col: u16,
    /// Inside a YAML flow collection, where block scalars are not allowed.
    pub flow: bool,
}

impl From<Quote> for Style {
    fn from(quote: Quote) -> Self {
        Style {
            quote,
            ..Style::default()
        }
    }
}

/// A column as [`Style::owner_col`] holds it. Past 65,535 it saturates: a block scalar
/// placed from there would be indented less than its owner, does not read back, and
/// the layout falls back (the data kept, with a warning).
pub fn column(col: usize) -> u16 {
    u16::try_from(col).unwrap_or(u16::MAX)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeafKind {
    Value,
    Comment,
}

/// A mapping key, shared by its entry and by every path that runs through it. One
/// pointer, not two (`Arc<str>` holds the length beside it): a leaf holds two keys in
/// its path, and a million leaves 16 MB less.
pub type Key = arcstr::ArcStr;

/// Keys a reader made lately, so that a name met again (`host:` under each of a
/// thousand services) is shared rather than allocated again. A fixed table: names
/// met once cost it nothing more than a slot, however many there are.
pub struct KeyTable {
    slots: Box<[Option<Key>; 256]>,
}

impl Default for KeyTable {
    fn default() -> Self {
        KeyTable {
            slots: Box::new([const { None }; 256]),
        }
    }
}

impl KeyTable {
    /// `name` as a key, the one made last time when it is still in the table.
    pub fn key(&mut self, name: &str) -> Key {
        // FNV-1a over the name: cheap, and spreads `key0`, `key1`, … apart.
        let hash = name.bytes().fold(0x811c_9dc5u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        let slot = &mut self.slots[(hash ^ (hash >> 16)) as usize & 255];
        match slot {
            Some(k) if **k == *name => k.clone(),
            _ => slot.insert(Key::from(name)).clone(),
        }
    }
}

/// The mapping keys leading to a value (list indices left out). Up to two keys are held
/// in place (most leaves of a config file: `service.key`), deeper paths are shared: a
/// leaf's path is its container's with one key more, so a million leaves copy pointers,
/// not names, and most allocate nothing.
#[derive(Clone, Default)]
pub struct KeyPath(Keys);

#[derive(Clone, Default)]
enum Keys {
    #[default]
    Root,
    One([Key; 1]),
    Two([Key; 2]),
    Shared(Arc<[Key]>),
}

impl KeyPath {
    /// This path with `key` after it.
    pub fn child(&self, key: Key) -> KeyPath {
        KeyPath(match &self.0 {
            Keys::Root => Keys::One([key]),
            Keys::One([a]) => Keys::Two([a.clone(), key]),
            _ => Keys::Shared(self.iter().cloned().chain([key]).collect()),
        })
    }
}

impl std::ops::Deref for KeyPath {
    type Target = [Key];
    fn deref(&self) -> &[Key] {
        match &self.0 {
            Keys::Root => &[],
            Keys::One(k) => k,
            Keys::Two(k) => k,
            Keys::Shared(k) => k,
        }
    }
}

impl PartialEq for KeyPath {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for KeyPath {}

impl std::fmt::Debug for KeyPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<K: Into<Key>> FromIterator<K> for KeyPath {
    fn from_iter<I: IntoIterator<Item = K>>(keys: I) -> Self {
        let mut keys = keys.into_iter().map(Into::into);
        let path = KeyPath::default();
        let Some(a) = keys.next() else {
            return path;
        };
        let path = path.child(a);
        let Some(b) = keys.next() else {
            return path;
        };
        let path = path.child(b);
        match keys.next() {
            None => path,
            Some(c) => KeyPath(Keys::Shared(
                path.iter().cloned().chain([c]).chain(keys).collect(),
            )),
        }
    }
}

/// One value or comment of the document.
pub struct Leaf {
    pub kind: LeafKind,
    /// The mapping keys leading to the value, as sops uses them for the additional
    /// data. For a comment, the path of the container it sits in.
    pub path: KeyPath,
    /// Bytes of the source text this leaf's text occupies (for a comment: after the `#`):
    /// see [`Leaf::span`].
    pub place: Span,
    pub ty: ScalarType,
    /// The decoded scalar (plaintext, or an `ENC[...]` string in an encrypted file) when
    /// it is not the text of `span` as it stands; `None` when it is (plain scalars,
    /// ciphertexts, comments, raw values), which spares a copy of each. Read it with
    /// [`Leaf::value`]. Boxed, as it is seldom there: a leaf is 16 bytes smaller, and a
    /// million of them 16 MB.
    pub own: Option<Box<Zeroizing<Vec<u8>>>>,
    /// Without `own`: the value is the span's text inside its first and last byte (a
    /// quoted string without escapes), which spares a copy of each of those too.
    pub quoted: bool,
    pub style: Style,
}

/// Where a leaf or entry stands in its text, in two 32-bit offsets: each is 8 bytes smaller,
/// and texts are under 4 GiB (`format::text` refuses larger ones). Were one not to be,
/// an offset would saturate and what it places would not read back: the write is
/// refused, never wrong.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    start: u32,
    end: u32,
}

impl From<Range<usize>> for Span {
    fn from(r: Range<usize>) -> Span {
        let at = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
        Span {
            start: at(r.start),
            end: at(r.end),
        }
    }
}

impl Span {
    pub fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// A leaf's value as stored ([`Leaf::own`], [`Leaf::quoted`]): nothing when `value` is
/// the text's own at `span`, or inside its first and last byte. A borrowed value is
/// copied only when it is neither.
pub fn own_value<'v>(
    text: &str,
    span: &Range<usize>,
    value: impl Into<std::borrow::Cow<'v, str>>,
) -> (Option<Box<Zeroizing<Vec<u8>>>>, bool) {
    let at = |r: Range<usize>| text.as_bytes().get(r);
    let kept = |v: &[u8]| {
        if at(span.clone()) == Some(v) {
            Some(false)
        } else {
            let inner = span.start + 1..span.end.saturating_sub(1);
            (span.len() >= 2 && at(inner) == Some(v)).then_some(true)
        }
    };
    match value.into() {
        std::borrow::Cow::Borrowed(v) => match kept(v.as_bytes()) {
            Some(quoted) => (None, quoted),
            None => (Some(Box::new(Zeroizing::new(v.as_bytes().to_vec()))), false),
        },
        // Wiped when dropped, kept or not.
        std::borrow::Cow::Owned(v) => {
            let v = Zeroizing::new(v.into_bytes());
            match kept(&v) {
                Some(quoted) => (None, quoted),
                None => (Some(Box::new(v)), false),
            }
        }
    }
}

impl Leaf {
    /// Bytes of the source text this leaf's text occupies (for a comment: after the `#`).
    pub fn span(&self) -> Range<usize> {
        self.place.range()
    }

    /// The decoded scalar, given the text the leaf was read from.
    pub fn value<'a>(&'a self, text: &'a str) -> &'a [u8] {
        match &self.own {
            Some(v) => v.as_slice(),
            None if self.quoted => {
                let span = self.span();
                &text.as_bytes()[span.start + 1..span.end - 1]
            }
            None => &text.as_bytes()[self.span()],
        }
    }

    pub fn value_str<'a>(&'a self, text: &'a str) -> Option<&'a str> {
        std::str::from_utf8(self.value(text)).ok()
    }

    /// The additional data sops authenticates a value with: `a:b:c:`.
    pub fn aad(&self) -> String {
        self.with_aad(str::to_string)
    }

    /// `f` of [`Leaf::aad`] (see [`with_aad`]).
    pub fn with_aad<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        with_aad(self.path.iter().map(|k| &**k), f)
    }
}

/// `f` of sops's additional data for a value under `keys` (`a:b:`, and `:` under none),
/// spelled on the stack when it is short: it is made for every value opened or sealed.
pub fn with_aad<'k, R>(
    keys: impl Iterator<Item = &'k str> + Clone,
    f: impl FnOnce(&str) -> R,
) -> R {
    let mut buf = [0u8; 256];
    let mut n = 0;
    for key in keys.clone() {
        let end = n + key.len() + 1;
        let Some(room) = buf.get_mut(n..end) else {
            // Too long for the stack: at least one key, so never empty.
            let aad: String = keys.flat_map(|k| [k, ":"]).collect();
            return f(&aad);
        };
        room[..key.len()].copy_from_slice(key.as_bytes());
        room[key.len()] = b':';
        n = end;
    }
    if n == 0 {
        // No key: the additional data is the `:` alone.
        return f(":");
    }
    // Whole keys and `:` joined: UTF-8 as the keys are.
    f(std::str::from_utf8(&buf[..n]).expect("keys are UTF-8"))
}

/// The structure of a document, pointing into [`Document::leaves`]. A collection is one
/// pointer, its length kept with its items: a node is 16 bytes, an entry 32, and a
/// million entries 8 MB smaller than with a boxed slice's length beside the pointer.
#[derive(Clone, Debug)]
pub enum Node {
    Map(ThinVec<Entry>),
    Seq(ThinVec<Node>),
    Leaf(usize),
}

/// A mapping entry with where it sits in the source, for `set` and `unset`.
#[derive(Clone, Debug)]
pub struct Entry {
    pub key: Key,
    /// From the key to just past the value (see [`Entry::at`], [`Entry::end`]).
    pub place: Span,
    pub value: Node,
}

impl Entry {
    /// Byte offset of the key.
    pub fn at(&self) -> usize {
        self.place.range().start
    }

    /// Byte offset just past the value.
    pub fn end(&self) -> usize {
        self.place.range().end
    }
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find(|e| &*e.key == key).map(|e| &e.value),
            _ => None,
        }
    }

    /// The end of the last leaf under this node.
    pub fn end(&self, leaves: &[Leaf]) -> usize {
        match self {
            Node::Leaf(i) => leaves[*i].span().end,
            Node::Map(e) => e.last().map_or(0, |e| e.end()),
            Node::Seq(items) => items.last().map_or(0, |n| n.end(leaves)),
        }
    }
}

pub use crate::metadata::MetaValue;

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
    /// Constructs whose layout is the hardest to keep (flow collections, block scalars,
    /// …), by position, to name in a warning when the layout falls back.
    pub constructs: Vec<(usize, &'static str)>,
    /// A construct sops's YAML library cannot read, by position: the document is written
    /// in the canonical layout instead of its own.
    pub foreign: Option<(usize, &'static str)>,
}

impl Document {
    /// The value of leaf `i`.
    pub fn value(&self, i: usize) -> &[u8] {
        self.leaves[i].value(&self.text)
    }

    pub fn value_str(&self, i: usize) -> Option<&str> {
        self.leaves[i].value_str(&self.text)
    }

    /// Whether the document carries sops metadata (that sops wrote, not a plaintext
    /// key named `sops`).
    pub fn is_encrypted(&self) -> bool {
        self.docs.iter().any(|d| {
            d.meta
                .as_ref()
                .is_some_and(|(m, _)| crate::metadata::Metadata::is_sops_written(m))
        })
    }

    /// Where a `sops` block stands that is not metadata sops wrote, if any.
    pub fn reserved_block(&self) -> Option<usize> {
        self.docs.iter().find_map(|d| match &d.meta {
            Some((m, spans)) if !crate::metadata::Metadata::is_sops_written(m) => {
                spans.first().map(|s| s.start)
            }
            _ => None,
        })
    }
}

/// Replace byte ranges of `text`. Edits must not overlap; an empty range inserts.
pub fn splice(text: &str, edits: Vec<(Range<usize>, String)>) -> Zeroizing<String> {
    splice_checked(text, edits).expect("edits that do not overlap")
}

/// [`splice`] for edits that may overlap (spans a parser found in odd input, a JSON
/// file read as YAML): `None` then, and the replacements are wiped all the same.
pub fn splice_checked(
    text: &str,
    mut edits: Vec<(Range<usize>, String)>,
) -> Option<Zeroizing<String>> {
    edits.sort_by_key(|(r, _)| (r.start, r.end));
    let fits = edits.iter().try_fold(0usize, |pos, (r, _)| {
        (r.start >= pos && r.start <= r.end && r.end <= text.len()).then_some(r.end)
    });
    if fits.is_none() {
        for (_, replacement) in edits {
            drop(Zeroizing::new(replacement));
        }
        return None;
    }
    let added: usize = edits.iter().map(|(_, s)| s.len()).sum();
    let removed: usize = edits.iter().map(|(r, _)| r.len()).sum();
    let mut out = Zeroizing::new(String::with_capacity(text.len() - removed + added));
    let mut pos = 0;
    for (range, replacement) in edits {
        out.push_str(&text[pos..range.start]);
        out.push_str(&replacement);
        // Replacements may hold plaintext: wipe them once copied.
        drop(Zeroizing::new(replacement));
        pos = range.end;
    }
    out.push_str(&text[pos..]);
    Some(out)
}

/// `ranges` sorted, with those that overlap or touch joined into one.
pub fn merge_ranges(mut ranges: Vec<Range<usize>>) -> Vec<Range<usize>> {
    ranges.sort_by_key(|r| r.start);
    let mut out: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
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

/// A decrypted tree, detached from any source text. Its copies wipe themselves too.
#[derive(Clone, PartialEq)]
pub enum Value {
    Map(Vec<(String, Value)>),
    Seq(Vec<Value>),
    Scalar(ScalarType, Zeroizing<String>),
}

impl Value {
    pub fn from_meta(m: &MetaValue) -> Value {
        match m {
            MetaValue::Map(e) => Value::Map(
                e.iter()
                    .map(|(k, v)| match v {
                        // The one number in sops's metadata.
                        MetaValue::Str(n)
                            if k == "shamir_threshold" && n.parse::<u64>().is_ok() =>
                        {
                            (
                                k.clone(),
                                Value::Scalar(ScalarType::Int, Zeroizing::new(n.clone())),
                            )
                        }
                        // sops reads it as a boolean and refuses a string.
                        MetaValue::Str(b)
                            if k == "mac_only_encrypted" && (b == "true" || b == "false") =>
                        {
                            (
                                k.clone(),
                                Value::Scalar(ScalarType::Bool, Zeroizing::new(b.clone())),
                            )
                        }
                        _ => (k.clone(), Value::from_meta(v)),
                    })
                    .collect(),
            ),
            MetaValue::Seq(items) => Value::Seq(items.iter().map(Value::from_meta).collect()),
            MetaValue::Str(s) => Value::Scalar(ScalarType::Str, Zeroizing::new(s.clone())),
            MetaValue::Null => Value::Scalar(ScalarType::Null, Zeroizing::new(String::new())),
        }
    }

    /// Every scalar with its key path (list items by index), as text: booleans as
    /// `true`/`false`, nulls empty. What environment variables and pushed secrets hold.
    pub fn leaves(&self) -> Vec<(Vec<String>, Zeroizing<String>)> {
        fn walk(
            v: &Value,
            path: &mut Vec<String>,
            out: &mut Vec<(Vec<String>, Zeroizing<String>)>,
        ) {
            match v {
                Value::Map(entries) => {
                    for (k, v) in entries {
                        path.push(k.clone());
                        walk(v, path, out);
                        path.pop();
                    }
                }
                Value::Seq(items) => {
                    for (i, v) in items.iter().enumerate() {
                        path.push(i.to_string());
                        walk(v, path, out);
                        path.pop();
                    }
                }
                Value::Scalar(ty, s) => {
                    let text = match ty {
                        ScalarType::Bool => {
                            crate::scalar::parse_bool(s).unwrap_or(false).to_string()
                        }
                        ScalarType::Null => String::new(),
                        _ => s.to_string(),
                    };
                    out.push((path.clone(), Zeroizing::new(text)));
                }
            }
        }
        let mut out = Vec::new();
        walk(self, &mut Vec::new(), &mut out);
        out
    }
}

/// `["db", "password"]` → `DB_PASSWORD`, the environment variable a value becomes;
/// `verbatim` (dotenv keys) keeps the case.
pub fn variable_name(path: &[String], verbatim: bool) -> String {
    if verbatim {
        path.join("_")
    } else {
        path.iter()
            .map(|s| s.to_uppercase())
            .collect::<Vec<_>>()
            .join("_")
    }
}

impl Document {
    /// The tree under `node`, each leaf's typed text given by `value` (which knows
    /// whether leaves hold plaintext or need decrypting).
    pub fn value_of<E>(
        &self,
        node: &Node,
        value: &dyn Fn(usize) -> Result<(ScalarType, Zeroizing<String>), E>,
    ) -> Result<Value, E> {
        Ok(match node {
            Node::Map(entries) => Value::Map(
                entries
                    .iter()
                    .map(|e| Ok((e.key.to_string(), self.value_of(&e.value, value)?)))
                    .collect::<Result<_, E>>()?,
            ),
            Node::Seq(items) => Value::Seq(
                items
                    .iter()
                    .map(|n| self.value_of(n, value))
                    .collect::<Result<_, E>>()?,
            ),
            Node::Leaf(i) => {
                let (ty, text) = value(*i)?;
                Value::Scalar(ty, text)
            }
        })
    }

    /// The tree under `node` as a plaintext reader sees it; `None` when a leaf is not
    /// UTF-8 text.
    pub fn plain_value(&self, node: &Node) -> Option<Value> {
        self.value_of(node, &|i| {
            let l = &self.leaves[i];
            Ok::<_, ()>((
                l.ty,
                Zeroizing::new(l.value_str(&self.text).ok_or(())?.to_string()),
            ))
        })
        .ok()
    }

    /// Where `node` starts in the text: its first key or value.
    pub fn node_start(&self, node: &Node) -> Option<usize> {
        match node {
            Node::Leaf(i) => Some(self.leaves[*i].span().start),
            Node::Map(e) => e.first().map(|e| e.at()),
            Node::Seq(items) => items.first().and_then(|n| self.node_start(n)),
        }
    }

    /// The comment leaves in document order.
    pub fn comments(&self) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.leaves.len())
            .filter(|&i| self.leaves[i].kind == LeafKind::Comment)
            .collect();
        idx.sort_by_key(|&i| self.leaves[i].span().start);
        idx
    }

    /// The 1-based line holding byte `pos`.
    pub fn line_of(&self, pos: usize) -> usize {
        self.text[..pos.min(self.text.len())].matches('\n').count() + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value is copied only when the text does not hold it as it stands, or inside
    /// its quotes; read back, it is the value either way.
    #[test]
    fn a_value_the_text_holds_is_not_copied() {
        for (text, value, copied, quoted) in [
            ("abc", "abc", false, false),
            ("\"abc\"", "abc", false, true),
            ("'abc'", "abc", false, true),
            ("\"\"", "", false, true),
            ("\"a\\nb\"", "a\nb", true, false),
            ("x", "", true, false),
            ("\"abc", "abc", true, false),
        ] {
            let span = 0..text.len();
            let (own, q) = own_value(text, &span, value);
            assert_eq!((own.is_some(), q), (copied, quoted), "{text:?}");
            let leaf = Leaf {
                kind: LeafKind::Value,
                path: KeyPath::default(),
                place: span.into(),
                ty: ScalarType::Str,
                own,
                quoted: q,
                style: Style::default(),
            };
            assert_eq!(leaf.value(text), value.as_bytes(), "{text:?}");
        }
    }

    /// However a path was made (key by key, from a list, short or long), it is the same
    /// keys in order: equal, printed and sliced alike.
    #[test]
    fn key_paths_are_their_keys_however_made() {
        let names = ["a", "b", "c", "d"];
        for n in 0..=names.len() {
            let listed: KeyPath = names[..n].iter().copied().collect();
            let built = names[..n]
                .iter()
                .fold(KeyPath::default(), |p, k| p.child(Key::from(*k)));
            let shared = KeyPath(Keys::Shared(
                names[..n].iter().map(|k| Key::from(*k)).collect(),
            ));
            for path in [&listed, &built, &shared] {
                assert_eq!(path.iter().map(|k| &**k).collect::<Vec<_>>(), names[..n]);
                assert_eq!(format!("{path:?}"), format!("{:?}", &names[..n]));
                assert_eq!(*path, listed);
            }
            if n > 0 {
                let shorter: KeyPath = names[..n - 1].iter().copied().collect();
                assert_ne!(listed, shorter);
                assert_eq!(shorter.child(Key::from(names[n - 1])), listed);
            }
        }
        let ab: KeyPath = ["a", "b"].into_iter().collect();
        let ac: KeyPath = ["a", "c"].into_iter().collect();
        assert_ne!(ab, ac);
    }

    /// The additional data spelled on the stack is sops's `a:b:` for every path: none
    /// (`:`), short ones, non-ASCII keys, and one too long for the stack.
    #[test]
    fn additional_data_is_the_keys_joined_however_long() {
        let long = "k".repeat(300);
        let cases: [(&[&str], &str); 5] = [
            (&[], ":"),
            (&["a"], "a:"),
            (&["a", "b", "c"], "a:b:c:"),
            (&["ключ", "é"], "ключ:é:"),
            (&["a", &long], &format!("a:{long}:")),
        ];
        for (keys, want) in cases {
            let leaf = Leaf {
                kind: LeafKind::Value,
                path: keys.iter().copied().collect(),
                place: (0..0).into(),
                ty: ScalarType::Str,
                own: None,
                quoted: false,
                style: Style::default(),
            };
            assert_eq!(leaf.aad(), want);
            assert_eq!(leaf.with_aad(str::to_string), want, "{keys:?}");
        }
    }

    /// What each value costs, held as a document: a leaf, and the entry of its mapping.
    /// Eight bytes more on either is 8 MB more for a file of a million values.
    #[test]
    fn a_leaf_and_an_entry_stay_small() {
        assert_eq!(std::mem::size_of::<Leaf>(), 48);
        assert_eq!(std::mem::size_of::<Entry>(), 32);
        assert_eq!(std::mem::size_of::<Node>(), 16);
        assert_eq!(std::mem::size_of::<Key>(), 8);
    }

    /// Offsets are 32 bits: a text they cannot reach is refused before it is read, with
    /// a way out; one they can is read.
    #[test]
    fn a_text_past_32_bit_offsets_is_refused_before_it_is_read() {
        let last = u32::MAX as usize;
        assert!(crate::format::too_long(last).is_ok());
        let refused = crate::format::too_long(last + 1).expect_err("refused");
        assert!(
            refused.to_string().contains("--input-type binary"),
            "{refused}"
        );
        let span = Span::from(7..last);
        assert_eq!(span.range(), 7..last);
    }

    /// Keys met again are shared; different names never are, even in one slot.
    #[test]
    fn the_key_table_shares_names_met_again() {
        let mut table = KeyTable::default();
        let a = table.key("host");
        assert!(Key::ptr_eq(&a, &table.key("host")));
        let names: Vec<String> = (0..2000).map(|i| format!("key{i}")).collect();
        for name in &names {
            assert_eq!(&*table.key(name), name.as_str());
        }
        assert_eq!(&*table.key("host"), "host");
    }
}
