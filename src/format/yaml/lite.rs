//! What a plain YAML text holds, read without building a document and told as it is
//! met: for checking a decryption's output, whose reader needs only the structure, the
//! typed values and the comments in order, and an encryption's output. Each check
//! compares what it is told with a document's as it goes, so nothing is held. The
//! events are the quick reader's, or saphyr's where the quick reader declines the text
//! (the reading then starts again), as the whole reader's are. It takes no anchor,
//! alias, tag but on a value standing alone, `sops` key or key other than a string, a
//! root only as a block mapping, no comment in a flow collection or after one nested in
//! another, for plaintext nothing that looks encrypted; for anything else it gives up,
//! and the whole reader runs. It makes the values (and a block's span) with the whole
//! reader's own functions, a tagged value's span as `scalar_leaf` finds it, and the
//! comments between keys and scalars as the whole reader's scan does, so what it tells
//! is what a `Document` of the text would hold (keys are not told apart: a document
//! holds none twice).

use std::borrow::Cow;

use super::scalars::{
    block_range, block_value, colon_on_next_line, inline_span, properties, stored_value, too_big,
    Properties,
};
use super::*;
pub(crate) use crate::format::Seen;

/// One item of a text's content, in the order `sops::verify` walks a document: each
/// document, then each collection (with its size) before what it holds, a mapping's
/// keys before their values.
#[cfg(test)]
#[derive(Debug, PartialEq)]
pub(crate) enum Item<'t> {
    Doc,
    Map(usize),
    Seq(usize),
    Key(&'t str),
    Scalar(ScalarType, Cow<'t, [u8]>),
}

/// The content of a text: its items, and its comments' text (after the `#`) in order.
#[cfg(test)]
#[derive(Debug, PartialEq)]
pub(crate) struct Content<'t> {
    pub items: Vec<Item<'t>>,
    pub comments: Vec<&'t str>,
}

/// A collection being read: how many it holds so far, and (for a mapping) whether a
/// key comes next.
struct Open {
    len: usize,
    key_next: Option<bool>,
    /// A flow collection, or in one.
    flow: bool,
}

/// The comments standing in `gap` (text between keys and scalars, where a `#` after a
/// blank or at a line's start opens one to the line's end), told to `seen` in order
/// with their text after the `#`, as the whole reader's scan finds them.
pub(crate) fn tell_comments<'t>(
    text: &'t str,
    gap: Range<usize>,
    seen: &mut (impl FnMut(Seen<'t>) -> Option<()> + ?Sized),
) -> Option<()> {
    let b = text.as_bytes();
    let mut from = gap.start;
    while let Some(i) = memchr::memchr(b'#', &b[from..gap.end]) {
        let at = from + i;
        if at == 0 || matches!(b[at - 1], b' ' | b'\t' | b'\n') {
            // The quick reader takes no carriage return: a line ends at its `\n`.
            let end = memchr::memchr(b'\n', &b[at..]).map_or(b.len(), |n| at + n);
            seen(Seen::Comment(&text[at + 1..end], at + 1..end))?;
            from = end.min(gap.end);
        } else {
            from = at + 1;
        }
    }
    Some(())
}

/// The content of `text` as [`read_plain`] tells it (or [`read_encrypted`], when
/// `encrypted`), a key twice in a mapping refused as the whole reader refuses it (the
/// check compares with a document, which holds none twice): what the tests hold to the
/// whole reader's document.
#[cfg(test)]
pub(crate) fn content(text: &str, encrypted: bool) -> Option<Content<'_>> {
    reading(|by| content_by(text, encrypted, by))
}

/// [`content`], read `by` one reader.
#[cfg(test)]
fn content_by(text: &str, encrypted: bool, by: By) -> Result<Content<'_>, Stop> {
    let mut items = Vec::new();
    let mut comments = Vec::new();
    // Each open collection: where its item is, and its keys so far.
    let mut open: Vec<(usize, Vec<&str>)> = Vec::new();
    let tell = |seen| {
        match seen {
            Seen::Doc => items.push(Item::Doc),
            Seen::Opens(is_map) => {
                open.push((items.len(), Vec::new()));
                items.push(if is_map { Item::Map(0) } else { Item::Seq(0) });
            }
            Seen::Ends(len) => {
                let (at, mut keys) = open.pop()?;
                keys.sort_unstable();
                keys.windows(2).all(|w| w[0] != w[1]).then_some(())?;
                items[at] = match items[at] {
                    Item::Map(_) => Item::Map(len),
                    _ => Item::Seq(len),
                };
            }
            Seen::Key(key) => {
                open.last_mut()?.1.push(key);
                items.push(Item::Key(key));
            }
            Seen::Scalar(ty, value, ..) => items.push(Item::Scalar(ty, value)),
            Seen::Comment(c, _) => comments.push(c),
        }
        Some(())
    };
    if encrypted {
        read_encrypted(text, by, tell)?;
    } else {
        read_plain(text, by, tell)?;
    }
    Ok(Content { items, comments })
}

/// Which reader tells a reading its events: the quick one (`quick`), or saphyr, for a
/// text the quick one declines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum By {
    Quick,
    Saphyr,
}

/// Why a reading stopped short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The quick reader declined the text: saphyr may read it, from the start.
    Declined,
    /// Not a text this reading takes, or the one told gave up.
    GaveUp,
}

/// A reading `by` the quick reader, and again by saphyr where the quick reader declines
/// the text: each starts afresh (what a declined reading told is void).
pub(crate) fn reading<R>(mut read: impl FnMut(By) -> Result<R, Stop>) -> Option<R> {
    match read(By::Quick) {
        Ok(r) => Some(r),
        Err(Stop::Declined) => read(By::Saphyr).ok(),
        Err(Stop::GaveUp) => None,
    }
}

/// Read an encrypted text (sops's output) the same way, telling `seen` what it meets in
/// order, comments too, each where it stands among the keys and values: nothing is
/// held. Keys are not told apart: the caller compares them with a document's.
pub(crate) fn read_encrypted<'t>(
    text: &'t str,
    by: By,
    seen: impl FnMut(Seen<'t>) -> Option<()>,
) -> Result<(), Stop> {
    walk(text, by, seen)
}

/// Read a plaintext the same way, for a check that compares it with a document's (a
/// decryption's output) as it is met.
pub(crate) fn read_plain<'t>(
    text: &'t str,
    by: By,
    seen: impl FnMut(Seen<'t>) -> Option<()>,
) -> Result<(), Stop> {
    // sops's own strings have readers of their own.
    if text.contains("ENC[") {
        return Err(Stop::GaveUp);
    }
    walk(text, by, seen)
}

/// The reading itself: what `text` holds, in order, to `seen`, each comment before the
/// key or scalar it stands before (those after the last, at the end).
fn walk<'t>(text: &'t str, by: By, seen: impl FnMut(Seen<'t>) -> Option<()>) -> Result<(), Stop> {
    let mut declined = false;
    match walk_events(text, by, &mut declined, seen) {
        Some(()) => Ok(()),
        None if declined => Err(Stop::Declined),
        None => Err(Stop::GaveUp),
    }
}

/// [`walk`], `declined` set where the quick reader declines the text.
fn walk_events<'t>(
    text: &'t str,
    by: By,
    declined: &mut bool,
    mut seen: impl FnMut(Seen<'t>) -> Option<()>,
) -> Option<()> {
    // How far comments have been looked for: up to the last key or scalar's end.
    let mut scanned = 0;
    // Directives and conflict markers have readers of their own.
    if text.starts_with('%') || text.contains("\n%") || text.contains("<<<<<<<") {
        return None;
    }
    let mut events = match by {
        By::Quick => match super::quick::reader(text) {
            Some(quick) => Events::Quick(quick),
            None => {
                *declined = true;
                return None;
            }
        },
        // Offsets are saphyr's char indexes, and tabs are go-yaml's to judge.
        By::Saphyr
            if !text.is_ascii() || memchr::memchr2(b'\t', b'\r', text.as_bytes()).is_some() =>
        {
            return None;
        }
        By::Saphyr => Events::of(text, false),
    };
    let mut open: Vec<Open> = Vec::new();
    let mut root = false;
    let mut docs = 0;
    // A flow collection has been opened in another: its bracket may stand elsewhere in
    // the encrypted text than in the source, and comments are placed by columns.
    let mut nested_flow = false;
    while let Some(event) = events.next_event() {
        let Ok((event, span)) = event else {
            *declined = by == By::Quick;
            return None;
        };
        // Both readers read ASCII only here: a char index is a byte offset.
        let range = span.start.index()..span.end.index();
        match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
            Event::DocumentStart(_) => {
                seen(Seen::Doc)?;
                docs += 1;
                root = false;
            }
            Event::DocumentEnd => {
                // A document without content is an empty mapping.
                if !root {
                    seen(Seen::Opens(true))?;
                    seen(Seen::Ends(0))?;
                }
            }
            Event::MappingStart(anchor, ref tag) | Event::SequenceStart(anchor, ref tag) => {
                let is_map = matches!(event, Event::MappingStart(..));
                if anchor != 0 || tag.is_some() || open.len() + 1 >= crate::format::MAX_DEPTH {
                    return None;
                }
                // As the whole reader tells a flow collection: by its bracket.
                let bracket = after_properties(text.get(range.clone())?).starts_with(['{', '[']);
                let in_flow = open.last().is_some_and(|o| o.flow);
                nested_flow |= bracket && in_flow;
                match open.last_mut() {
                    // The root: a block mapping, as sops reads documents (and writes
                    // its metadata after it, at column 0, as one document).
                    None if is_map && !root && !bracket => root = true,
                    None => return None,
                    // A collection as a key.
                    Some(Open {
                        key_next: Some(true),
                        ..
                    }) => return None,
                    Some(parent) => taken(parent),
                }
                open.push(Open {
                    len: 0,
                    key_next: is_map.then_some(true),
                    flow: bracket || in_flow,
                });
                seen(Seen::Opens(is_map))?;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let done = open.pop()?;
                if done.key_next == Some(false) {
                    return None;
                }
                seen(Seen::Ends(done.len))?;
            }
            Event::Scalar(value, style, anchor, tag) => {
                if anchor != 0 {
                    return None;
                }
                let parent = open.last_mut()?;
                // A tag only on a value standing alone (not a key, not a block).
                let is_block = matches!(style, ScalarStyle::Literal | ScalarStyle::Folded);
                if tag.is_some() && (is_block || parent.key_next == Some(true)) {
                    return None;
                }
                let flow = parent.flow;
                if is_block {
                    // Never a key: the quick reader takes none, and saphyr reads a
                    // block as a key only after `?`.
                    if parent.key_next == Some(true) || flow {
                        return None;
                    }
                    let (stored, span) = block(text, range, value.into_owned())?;
                    taken(parent);
                    tell(text, &mut scanned, span.start, flow, nested_flow, &mut seen)?;
                    scanned = span.end;
                    let style = Style::from(Quote::Block);
                    seen(Seen::Scalar(ScalarType::Str, stored, style, span))?;
                    continue;
                }
                if parent.key_next == Some(true) {
                    // saphyr owns what it reads: a key told is the text's own.
                    let value: &'t str = match value {
                        Cow::Borrowed(v) => v,
                        Cow::Owned(v) => {
                            let inner = match style {
                                ScalarStyle::Plain => range.clone(),
                                _ => range.start + 1..range.end.checked_sub(1)?,
                            };
                            text.get(inner).filter(|k| *k == v)?
                        }
                    };
                    // Keys go-yaml reads as anything but a string are refused; `<<` merges.
                    let is_str =
                        scalar_type(style, None, value).is_ok_and(|(ty, _)| ty == ScalarType::Str);
                    // `sops` at the top level is the metadata's: not the plainest. The
                    // root's keys stand at column 0, as the metadata after them does.
                    let top = open.len() == 1;
                    let at_0 = range.start == 0 || text.as_bytes()[range.start - 1] == b'\n';
                    if !is_str || value == "<<" || (top && (value == "sops" || !at_0)) {
                        return None;
                    }
                    // A flow mapping's key with its `:` on another line: sops cannot
                    // read it, and the whole reader writes the file anew.
                    if flow && colon_on_next_line(text, &range) {
                        return None;
                    }
                    let parent = open.last_mut()?;
                    parent.key_next = Some(false);
                    parent.len += 1;
                    tell(
                        text,
                        &mut scanned,
                        range.start,
                        flow,
                        nested_flow,
                        &mut seen,
                    )?;
                    scanned = range.end;
                    seen(Seen::Key(value))?;
                    continue;
                }
                // As the whole reader makes a leaf (`scalar_leaf`), for a scalar without
                // an anchor: the value's text starts after its tag, and a standard
                // tag that decides its stored form stands in its span.
                let Properties { start, tag_at, .. } = properties(text, &range);
                if tag.is_some() && tag_at.is_none() {
                    return None;
                }
                let (quote, span) = inline_span(text, start, range.end, style)?;
                let (ty, tagged) = scalar_type(style, tag.as_deref(), &value).ok()?;
                let span = match (&tagged, tag_at) {
                    (Some(_), Some(at)) if ty != ScalarType::Null => at..span.end,
                    _ => span,
                };
                let stored: Cow<'t, [u8]> = match (value, tagged) {
                    (Cow::Borrowed(v), None) => match stored_value(ty, None, v) {
                        Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
                        Cow::Owned(s) => Cow::Owned(s.into_bytes()),
                    },
                    (v, tagged) => {
                        Cow::Owned(stored_value(ty, tagged, &v).into_owned().into_bytes())
                    }
                };
                if too_big(ty, std::str::from_utf8(&stored).ok()?) {
                    return None;
                }
                taken(open.last_mut()?);
                tell(text, &mut scanned, span.start, flow, nested_flow, &mut seen)?;
                scanned = span.end;
                let style = Style {
                    quote,
                    owner_col: 0,
                    flow,
                };
                seen(Seen::Scalar(ty, stored, style, span))?;
            }
            Event::Alias(_) => return None,
        }
    }
    if !open.is_empty() {
        return None;
    }
    tell(
        text,
        &mut scanned,
        text.len(),
        false,
        nested_flow,
        &mut seen,
    )?;
    // No document at all (only comments, or nothing): an empty mapping, as the whole
    // reader makes one.
    if docs == 0 {
        seen(Seen::Doc)?;
        seen(Seen::Opens(true))?;
        seen(Seen::Ends(0))?;
    }
    Some(())
}

/// The comments before a key or scalar at `to`, from where the last ended. None in a
/// flow collection, nor after a flow collection opened in another: the whole reader
/// places those by columns an encryption may move (a first flow collection's bracket
/// stands where it stood, after a key or a dash).
fn tell<'t>(
    text: &'t str,
    scanned: &mut usize,
    to: usize,
    in_flow: bool,
    nested_flow: bool,
    seen: &mut impl FnMut(Seen<'t>) -> Option<()>,
) -> Option<()> {
    let gap = text.as_bytes().get(*scanned..to)?;
    if (in_flow || nested_flow) && memchr::memchr(b'#', gap).is_some() {
        return None;
    }
    tell_comments(text, *scanned..to, seen)
}

/// A block scalar as the whole reader makes its leaf (`scalar_leaf`): its value, and
/// the span from its indicator to its last content line. A block is always a string.
fn block<'t>(
    text: &str,
    raw: Range<usize>,
    value: String,
) -> Option<(Cow<'t, [u8]>, Range<usize>)> {
    let span = block_range(text, &raw, &value).ok()?;
    let mut stored = Cow::Owned(value);
    block_value(text, &span, &mut stored);
    Some((Cow::Owned(stored.into_owned().into_bytes()), span))
}

/// A collection takes one more item (a mapping: the value of its key).
fn taken(parent: &mut Open) {
    match parent.key_next {
        Some(_) => parent.key_next = Some(true),
        None => parent.len += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::super::quick::tests::{taken_of_generated, test_files};
    use super::*;
    use crate::format::Format;

    /// A content as lines, to compare and to show.
    fn lines(
        items: impl Iterator<Item = String>,
        comments: impl Iterator<Item = String>,
    ) -> Vec<String> {
        items
            .chain(comments.map(|c| format!("comment {c:?}")))
            .collect()
    }

    fn lite_lines(c: &Content) -> Vec<String> {
        let items = c.items.iter().map(|i| match i {
            Item::Doc => "doc".to_string(),
            Item::Map(n) => format!("map {n}"),
            Item::Seq(n) => format!("seq {n}"),
            Item::Key(k) => format!("key {k:?}"),
            Item::Scalar(ty, v) => format!("{ty:?} {:?}", String::from_utf8_lossy(v)),
        });
        lines(items, c.comments.iter().map(|c| c.to_string()))
    }

    /// What a document of the text holds, as `sops::verify` walks it.
    fn whole_lines(doc: &Document) -> Vec<String> {
        fn node(doc: &Document, n: &Node, out: &mut Vec<String>) {
            match n {
                Node::Map(entries) => {
                    out.push(format!("map {}", entries.len()));
                    for e in entries {
                        out.push(format!("key {:?}", &*e.key));
                        node(doc, &e.value, out);
                    }
                }
                Node::Seq(items) => {
                    out.push(format!("seq {}", items.len()));
                    for n in items {
                        node(doc, n, out);
                    }
                }
                Node::Leaf(i) => out.push(format!(
                    "{:?} {:?}",
                    doc.leaves[*i].ty,
                    String::from_utf8_lossy(doc.value(*i))
                )),
            }
        }
        let mut items = Vec::new();
        for d in &doc.docs {
            items.push("doc".to_string());
            node(doc, &d.root, &mut items);
        }
        let comments = doc
            .comments()
            .into_iter()
            .map(|i| String::from_utf8_lossy(doc.value(i)).into_owned());
        lines(items.into_iter(), comments)
    }

    /// Whether the reading without a document took `text`; where it did, it gives what
    /// the whole reader's document holds, and the whole reader reads the text too.
    fn agrees(text: &str) -> bool {
        agrees_read(text, false)
    }

    /// The same for an encrypted text, read as an encryption's output is.
    fn agrees_read(text: &str, encrypted: bool) -> bool {
        let Some(lite) = content(text, encrypted) else {
            return false;
        };
        let doc = crate::format::parse("t.yaml", Format::Yaml, text.as_bytes().to_vec())
            .unwrap_or_else(|e| panic!("taken, but the whole reader refuses it ({e}): {text:?}"));
        assert_eq!(lite_lines(&lite), whole_lines(&doc), "{text:?}");
        true
    }

    #[test]
    fn hand_cases_read_as_the_whole_reader_reads_them_or_are_declined() {
        let cases: &[(&str, bool)] = &[
            ("a: 1\nb: x\n", true),
            (
                "# top\na: 1 # one\nb: 'q # not' # two\nc: \"d#e\"\n# end\n",
                true,
            ),
            (
                "a:\n  # inside\n  b: [] # empty\n  c: {}\nd:\n- 1\n- x # item\n-   'y'\n",
                true,
            ),
            ("---\na: 1\n---\nb: 2\n", true),
            ("", true),
            ("a: 1\nb: 2\na: 3\n", false),
            ("# only a comment\n", true),
            // Read by saphyr where the quick reader declines.
            ("a: [1, 'two', \"3\"]\nb: {x: 1, y: [2, {z: w}]}\n", true),
            ("a: [1, 2] # after\n# own line\nb: {}\n", true),
            ("a:\n- |\n  x\n- >-\n  y\n  z\n", true),
            ("a: \"x\\ty\"\nb: 'it''s'\nc: one\n  two\n", true),
            // Comments in a flow collection, or after one nested in another: the
            // whole reader places them by columns.
            ("a: [1, # c\n  2]\n", false),
            ("a: {b: [1]}\n# c\n", false),
            (
                "a: 007\nb: 0x1F\nc: 1.5e3\nd: true\ne: ~\nf:\ng: 2001-12-14\n",
                true,
            ),
            ("'quoted key': v\n\"k\": w\n", true),
            ("a: |\n  text\n", true),
            (
                "a: |-\n  x # not\n  y\n# c\nb: >\n  z\n\nc:\n  d: |\n    w\n",
                true,
            ),
            ("a: |\n  x\n  y", true),
            ("a: >\n  x\n  y\n", true),
            ("a: |+\n  x\n\n", true),
            ("- |\n  x\n", false),
            ("a: &x 1\nb: *x\n", false),
            // Tags: another schema's keep a string; a standard one decides its type.
            (
                "a: !t x\nb: !!str 5\nc: !!int '7'\nd: !Ref name\ne: [!!float 1, !x y]\n",
                true,
            ),
            ("a: !!binary aGk=\n", false),
            ("!t a: 1\n", false),
            ("a: !t |\n  x\n", false),
            ("sops:\n  version: 1\n", false),
            ("sops: x\n", false),
            ("404: x\n", false),
            ("a: ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]\n", false),
            ("a: 99999999999999999999\n", false),
            ("- 1\n", false),
            ("%YAML 1.1\n---\na: 1\n", false),
            ("a:\tb\n", false),
            ("<<: {a: 1}\n", false),
        ];
        for (text, taken) in cases {
            assert_eq!(agrees(text), *taken, "{text:?}");
        }
    }

    /// A ciphertext in a block scalar is the ciphertext, without the line break its
    /// chomping adds, as the whole reader reads it.
    #[test]
    fn encrypted_block_scalars_read_as_the_whole_reader_reads_them() {
        let enc = "ENC[AES256_GCM,data:YWJj,iv:aXY=,tag:dGFn,type:str]";
        for text in [
            format!("a: |\n  {enc}\nb: >\n    {enc}\n# c\nd:\n  e: |-\n    {enc}\n"),
            format!("a: {enc}\nb: >-\n  {enc}\n\nc: |\n  {enc}"),
        ] {
            assert!(agrees_read(&text, true), "{text}");
            let lite = content(&text, true).expect("read");
            let blocks = lite
                .items
                .iter()
                .filter(|i| matches!(i, Item::Scalar(_, v) if **v == *enc.as_bytes()));
            assert_eq!(blocks.count(), 3, "{text}");
        }
    }

    #[test]
    fn generated_texts_read_as_the_whole_reader_reads_them_or_are_declined() {
        let (taken, runs) = taken_of_generated(20_000, agrees);
        // Both sides of the line are reached.
        assert!(
            taken > runs / 20 && taken < runs * 9 / 10,
            "{taken} of {runs} taken"
        );
    }

    #[test]
    fn test_files_read_as_the_whole_reader_reads_them_or_are_declined() {
        let files = test_files();
        let mut taken = 0;
        for file in &files {
            if let Ok(text) = std::fs::read_to_string(file) {
                taken += usize::from(agrees(&text));
            }
        }
        assert!(
            files.len() > 300 && taken > 20,
            "{taken} of {} files",
            files.len()
        );
    }
}
