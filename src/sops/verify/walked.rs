//! The check of an encrypted output, read as it is walked rather than into a document:
//! the output of YAML (what `format::yaml::lite` reads; comments only where the output
//! is the source's layout), JSON (no escapes outside the ciphertexts), dotenv and INI
//! (comments too; no INI value in `"""` or backticks) is compared item by item with
//! what was meant, each value decrypted as it is met, the MAC hashed in order, and its
//! decryption with the source's bytes up to where it first differs. A file of a million
//! values would otherwise be held a second time, as a document and its decrypted
//! values, beside the source's. Whatever this reading does not take, or finds amiss,
//! goes to the whole check, which says what is wrong; so this one only ever says yes,
//! and only where the whole check says yes, with the same first difference.

use std::borrow::Cow;
use std::cell::Cell;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{SyncSender, TrySendError};

use super::{differs, Compare, Content, Item, Shape};
use crate::cipher::{self, DataKey, MacBuilder};
use crate::format::yaml::{
    lite_comments, lite_encrypted, lite_reading, render_block, render_value, Stop,
};
use crate::format::{dotenv, ini, json, Format, Seen};
use crate::sops::opened::Prefix;
use crate::sops::{opening, Opening};
use crate::tree::{with_aad, Node, Quote, ScalarType, Style};

/// What the walk of an encrypted text found.
#[derive(Debug, PartialEq, Eq)]
pub(in crate::sops) enum Walked {
    /// It holds what was meant (byte for byte, when asked).
    Holds,
    /// It holds what was meant, and decrypts to other bytes than the source's from
    /// this offset of the source on: the same values written otherwise.
    Relaid(usize),
    /// It is read here to its end, and holds other keys, values or comments than were
    /// meant: what the whole reader reads of the plainest texts, this reading reads too.
    Differs,
    /// Not a text this reading takes, or something amiss (a value that does not open, a
    /// MAC, a layout): the whole check's to say.
    NotTaken,
}

/// An encrypted text this reading takes, its metadata read.
pub(in crate::sops) struct Located<'t> {
    file: &'t str,
    format: Format,
    text: &'t str,
    pub meta: crate::metadata::Metadata,
    /// Where the metadata stands (as the format's walk takes it), and the span the whole
    /// reader removes as the metadata.
    at: (usize, Range<usize>),
    /// Comment lines after the metadata (YAML's: sops writes those after the last value
    /// there), each `#` at a line's start; the whole reader places them after the last
    /// value.
    tail: Range<usize>,
}

/// Whether `text`, sops's output in `format` of `expected` encrypted under `key`,
/// passes the check: `Some` with where its decryption first differs from the source's
/// bytes (asked for with `byte_for_byte`), `None` when it does not take the text or
/// finds anything amiss.
pub(in crate::sops) fn encrypted(
    file: &str,
    format: Format,
    text: &[u8],
    key: &DataKey,
    expected: &Content,
    byte_for_byte: bool,
) -> Option<Option<usize>> {
    let located = Located::of(file, format, text)?;
    match located.check(key, expected, byte_for_byte) {
        Walked::Holds => Some(None),
        Walked::Relaid(at) => Some(Some(at)),
        Walked::Differs | Walked::NotTaken => None,
    }
}

impl<'t> Located<'t> {
    /// `text` as this reading takes it, with its metadata: `None` for what it does not.
    pub(in crate::sops) fn of(file: &'t str, format: Format, text: &'t [u8]) -> Option<Self> {
        let text = std::str::from_utf8(text).ok()?;
        // Only YAML's metadata has comment lines after it (where they start).
        let (at, meta, tail_at) = match format {
            Format::Yaml => {
                // sops writes its metadata last: `sops:` at the start of a line, to the
                // end. The lite reader takes only a block mapping at column 0 as the
                // root, so a body it takes and the metadata after it are one document,
                // as the whole reader reads them.
                let meta_at = text.rfind("\nsops:")? + 1;
                let tail_at = meta_at + comment_lines_at_end(&text[meta_at..]);
                let (body, meta_text) = (&text[..meta_at], &text[meta_at..tail_at]);
                // One document, so the metadata is this document's: no end marker, no
                // other start.
                let marker =
                    |t: &str| t.starts_with("...") || t.contains("\n---") || t.contains("\n...");
                if marker(body) || marker(meta_text) || !text.ends_with('\n') {
                    return None;
                }
                let meta = metadata_alone(file, format, meta_text, 0..meta_text.len())?;
                ((meta_at, meta_at..tail_at), meta, tail_at)
            }
            Format::Json => {
                let member = json::metadata_member(text)?;
                // The member alone in an object: from after its `{` to before its `}`.
                let alone = format!("{{\"sops\": {}}}", &text[member.1.clone()]);
                let meta = metadata_alone(file, format, &alone, 1..alone.len() - 1)?;
                (member, meta, text.len())
            }
            Format::Dotenv => {
                let (meta_at, removed) = dotenv::metadata_lines(text)?;
                let lines = &text[meta_at..];
                let meta = metadata_alone(file, format, lines, 0..lines.len())?;
                ((meta_at, removed), meta, text.len())
            }
            Format::Ini => {
                let (meta_at, removed) = ini::metadata_section(text)?;
                let section = &text[meta_at..];
                let meta = metadata_alone(file, format, section, 0..section.len())?;
                ((meta_at, removed), meta, text.len())
            }
            _ => return None,
        };
        Some(Located {
            file,
            format,
            text,
            meta,
            at,
            tail: tail_at..text.len(),
        })
    }

    /// The text walked against `expected`, each value decrypted with `key`.
    pub(in crate::sops) fn check(
        &self,
        key: &DataKey,
        expected: &Content,
        byte_for_byte: bool,
    ) -> Walked {
        // One document (several are the whole check's).
        if expected.doc.docs.len() != 1 {
            return Walked::NotTaken;
        }
        let (text, format, (at, span)) = (self.text, self.format, self.at.clone());
        let check = Check {
            file: self.file,
            text,
            key,
            expected,
            byte_for_byte,
            json: format == Format::Json,
            // Comments are taken only where a reading places them as the whole reader
            // does (dotenv's and INI's), or where they are meant (YAML's).
            comments_where_meant: format == Format::Yaml,
            meta_before_tail: (!self.tail.is_empty()).then(|| span.clone()),
        };
        let meta = &self.meta;
        match format {
            Format::Yaml => {
                let render = |ty: ScalarType, value: &str, style: Style, stored: &str| {
                    // A comment stands after its `#` as it is.
                    if ty == ScalarType::Comment {
                        return (!value.contains('\n')).then(|| value.to_string());
                    }
                    // A block scalar's value goes under its header and indentation as
                    // they stand; one they do not hold is the whole check's.
                    if style.quote == Quote::Block {
                        let string = matches!(ty, ScalarType::Str | ScalarType::Bytes);
                        return string.then(|| render_block(stored, value)).flatten();
                    }
                    // Another value over several lines is indented from its owner: the
                    // whole check's. A one-line value is not indented from its owner:
                    // as to that, the whole reader's leaf has this style.
                    (!value.contains('\n')).then(|| render_value(ty, value, style, 2))
                };
                // Read by the quick reader, and again by saphyr where it declines the
                // text (a flow collection, a list's block scalar).
                lite_reading(|by| {
                    let declined = Cell::new(false);
                    let walked = check.clone().run(
                        meta,
                        |seen| match lite_encrypted(&text[..at], by, &mut *seen) {
                            Ok(()) => {
                                lite_comments(text, self.tail.clone(), seen)?;
                                Some(span.clone())
                            }
                            Err(stop) => {
                                declined.set(stop == Stop::Declined);
                                None
                            }
                        },
                        render,
                    );
                    if declined.get() {
                        return Err(Stop::Declined);
                    }
                    Ok(walked)
                })
                .unwrap_or(Walked::NotTaken)
            }
            Format::Json => check.run(
                meta,
                |seen| {
                    json::walk_encrypted(text, (at, span.clone()), seen).map(|from| from..span.end)
                },
                |ty, value, _, _| Some(json::json_scalar(ty, value)),
            ),
            Format::Dotenv => check.run(
                meta,
                |seen| dotenv::walk_encrypted(text, at, seen).map(|()| span),
                |ty, value, _, _| Some(dotenv::render(ty, value)),
            ),
            Format::Ini => check.run(
                meta,
                |seen| ini::walk_encrypted(text, at, seen).map(|()| span),
                |ty, value, style, _| ini::render_walked(ty, value, style.quote),
            ),
            _ => Walked::NotTaken,
        }
    }
}

/// What the check of one output compares: the output, and what was meant.
#[derive(Clone)]
struct Check<'a, 'd> {
    file: &'a str,
    text: &'a str,
    key: &'a DataKey,
    expected: &'a Content<'d>,
    byte_for_byte: bool,
    /// Numbers compare as JSON's one number type.
    json: bool,
    /// Each comment is placed where the source's was (YAML), not in the collection the
    /// walk has open (dotenv, INI).
    comments_where_meant: bool,
    /// The metadata, where comments follow it.
    meta_before_tail: Option<Range<usize>>,
}

impl<'a> Check<'a, '_> {
    /// Outputs of this many bytes or more are read and opened on two cores: the walk
    /// hands the values it meets, a block at a time, to a thread that decrypts and
    /// compares them meanwhile. Below, a thread costs more than it spares.
    const PIPED_FROM: usize = 1 << 17;

    /// The check, with `walk` telling what the text holds in order (and giving the span
    /// the whole reader removes as the metadata), `render` writing a decrypted value as
    /// a decryption writes it in place of what the text holds there (`None`: not as
    /// this reading can know).
    fn run(
        self,
        meta: &crate::metadata::Metadata,
        walk: impl FnOnce(&mut dyn FnMut(Seen<'a>) -> Option<()>) -> Option<Range<usize>>,
        render: impl Fn(ScalarType, &str, Style, &str) -> Option<String> + Sync,
    ) -> Walked {
        let opener = Opener {
            key: self.key,
            mac: MacBuilder::new(meta.mac_only_encrypted),
            json: self.json,
            // The decryption compared with the source as it is made, when asked.
            same: self.byte_for_byte.then_some(Pieces {
                same: Prefix::new(self.expected.doc.text.as_bytes()),
                got: self.text,
                got_at: 0,
                meta: self.meta_before_tail.clone(),
                render: &render,
            }),
            differs: false,
        };
        if self.text.len() < Self::PIPED_FROM {
            return self.checked(meta, walk, Sink::Here(Box::new(opener)));
        }
        let state = Piped::default();
        std::thread::scope(|s| {
            let (blocks, received) = std::sync::mpsc::sync_channel::<Block>(2);
            let state = &state;
            let opening = s.spawn(move || {
                let mut opener = opener;
                for (block, aads, opened) in received {
                    // Once amiss or other than meant, the rest is only received.
                    if opener.differs || state.amiss.load(Relaxed) {
                        continue;
                    }
                    let opened =
                        opened.unwrap_or_else(|| decrypted(opener.key, &block, &aads, false));
                    if opener.open(block, opened).is_none() {
                        state.amiss.store(true, Relaxed);
                    }
                    state.differs.store(opener.differs, Relaxed);
                }
                opener
            });
            let key = self.key;
            self.checked(meta, walk, Sink::Piped(blocks, state, key, opening))
        })
    }

    /// [`Check::run`] with the values met opened where `sink` says.
    fn checked<'s>(
        self,
        meta: &crate::metadata::Metadata,
        walk: impl FnOnce(&mut dyn FnMut(Seen<'a>) -> Option<()>) -> Option<Range<usize>>,
        sink: Sink<'s, 'a, 'a>,
    ) -> Walked {
        let Ok(rules) = meta.rules() else {
            return Walked::NotTaken;
        };
        let mut rules = rules.walk();
        let mut values = Values {
            mac_only_encrypted: meta.mac_only_encrypted,
            block: Vec::new(),
            aads: String::new(),
            differs: false,
            sink,
        };
        let mut shape = Shape::of(self.expected);
        // A comment was taken where it was meant (YAML's).
        let mut commented = false;
        let comments = self.expected.doc.comments();
        let mut comments = comments.iter().copied();
        // Past the first difference the text is only read on: whether this reading
        // takes all of it decides whether the difference is what the whole reader sees.
        let meta_span = walk(&mut |seen| {
            if values.differs() {
                return Some(());
            }
            let meant = match seen {
                Seen::Doc => shape.doc(),
                Seen::Opens(is_map) => shape.opens(is_map),
                Seen::Ends(len) => shape.ends(len),
                Seen::Key(k) => shape.key(k),
                Seen::Scalar(ty, stored, style, span) => match shape.value() {
                    Some(meant) => {
                        let encrypted = rules.next(shape.path(), None);
                        values.push(meant, ty, stored, style, span, encrypted, shape.path())?;
                        Some(())
                    }
                    None => None,
                },
                Seen::Comment(stored, span) => match comments.next() {
                    Some(i) => {
                        let meant = Item::Scalar(ScalarType::Comment, (self.expected.value)(i).1);
                        // Authenticated with its container's path, as opening tries first.
                        if self.comments_where_meant {
                            // YAML places a comment by the columns and lines of what
                            // stands around it, which a walk does not weigh; but an output
                            // whose decryption is the source byte for byte (compared as it
                            // is made, to the end: a text relaid is not taken with a
                            // comment) has its keys, values and comments in the same
                            // order, columns and lines relative to each other as the
                            // source's (a block's lines are within its value; the reader
                            // declines comments where a flow collection moves them): the
                            // whole reader places each comment as it placed the source's.
                            self.byte_for_byte.then_some(())?;
                            commented = true;
                            let path = &self.expected.doc.leaves[i].path;
                            let encrypted = rules.next(path, Some(stored));
                            values.comment(meant, stored, span, encrypted, path)?;
                        } else {
                            let container = shape.container()?;
                            let encrypted = rules.next(container, Some(stored));
                            values.comment(meant, stored, span, encrypted, container)?;
                        }
                        Some(())
                    }
                    None => None,
                },
            };
            // Another structure than was meant: a key, a collection, a count.
            values.differs |= meant.is_none();
            Some(())
        });
        // Past a first difference nothing is opened.
        let walked_whole = meta_span.is_some() && (values.differs() || values.flush().is_some());
        let structure = values.differs || !shape.done() || comments.next().is_some();
        // Every value handed on is opened before the answer.
        let (opener, amiss) = match values.sink {
            Sink::Here(opener) => (*opener, false),
            Sink::Piped(blocks, state, _, opening) => {
                drop(blocks);
                let opener = opening.join().expect("the opening thread does not panic");
                (opener, state.amiss.load(Relaxed))
            }
        };
        let Some(meta_span) = meta_span.filter(|_| walked_whole) else {
            return Walked::NotTaken;
        };
        if values.differs || opener.differs {
            return Walked::Differs;
        }
        if amiss {
            return Walked::NotTaken;
        }
        if structure {
            return Walked::Differs;
        }
        let mut warnings = Vec::new();
        let mac = opener.mac.finish();
        if crate::sops::check_mac(self.file, self.key, meta, &mac, false, &mut warnings).is_err() {
            return Walked::NotTaken;
        }
        match opener.same.map(|mut same| same.rest(meta_span)) {
            None | Some(Some(None)) => Walked::Holds,
            // Comments are placed as the source's only in its own bytes.
            Some(Some(Some(at))) if !commented => Walked::Relaid(at),
            Some(_) => Walked::NotTaken,
        }
    }
}

/// A value met: what was meant there, and what the text holds.
struct Value<'d, 't> {
    meant: Item<'d>,
    ty: ScalarType,
    stored: Cow<'t, [u8]>,
    style: Style,
    span: Range<usize>,
    /// Its additional data in the block's, when it is to be decrypted.
    aad: Option<Range<usize>>,
    /// Whether the MAC covers it.
    hashed: bool,
    /// A comment (`meant` is its text, as a scalar of type comment).
    comment: bool,
}

/// Values met, their additional data end to end, and their decryptions when made
/// already.
type Block<'d, 't> = (Vec<Value<'d, 't>>, String, Option<Vec<Opened>>);

/// A value decrypted: its type and plaintext (`None`: it does not decrypt, or is not
/// to be).
type Opened = Option<(ScalarType, zeroize::Zeroizing<Vec<u8>>)>;

/// The values of a block decrypted with `key` (each with its additional data in
/// `aads`), on every core when `parallel`.
fn decrypted(key: &DataKey, block: &[Value], aads: &str, parallel: bool) -> Vec<Opened> {
    let decrypt = |v: &Value| {
        let aad = v.aad.clone()?;
        let value = std::str::from_utf8(&v.stored).ok()?;
        // The type is compared with the one meant after: a changed tag is found there.
        cipher::decrypt_typed_as_meant(key, &aads[aad], value).ok()
    };
    match parallel {
        true => crate::sops::par_map(block, decrypt),
        false => block.iter().map(decrypt).collect(),
    }
}

/// What a piped check's two threads tell each other: a value amiss, or other than
/// meant (the walk then only reads on).
#[derive(Default)]
struct Piped {
    amiss: AtomicBool,
    differs: AtomicBool,
}

/// Where the values met are opened: here, a block at a time on every core, or on a
/// thread of their own while the walk goes on.
enum Sink<'s, 'd, 't> {
    Here(Box<Opener<'t, 's>>),
    Piped(
        SyncSender<Block<'d, 't>>,
        &'s Piped,
        &'t DataKey,
        std::thread::ScopedJoinHandle<'s, Opener<'t, 's>>,
    ),
}

/// The values met and not yet handed on to be opened.
struct Values<'s, 'd, 't> {
    mac_only_encrypted: bool,
    block: Vec<Value<'d, 't>>,
    aads: String,
    /// A key, a collection or a count other than meant. The walk goes on only to read
    /// the text.
    differs: bool,
    sink: Sink<'s, 'd, 't>,
}

impl<'s, 'd, 't> Values<'s, 'd, 't> {
    /// Values handed on together: many, when opened here on every core; fewer, when
    /// another thread opens them as they come.
    const BLOCK: usize = 1 << 12;
    const PIPED_BLOCK: usize = 1 << 8;

    /// Whether anything met so far is other than meant.
    fn differs(&self) -> bool {
        self.differs
            || match &self.sink {
                Sink::Here(opener) => opener.differs,
                Sink::Piped(_, state, ..) => state.differs.load(Relaxed),
            }
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        meant: Item<'d>,
        ty: ScalarType,
        stored: Cow<'t, [u8]>,
        style: Style,
        span: Range<usize>,
        encrypted: bool,
        keys: &[&str],
    ) -> Option<()> {
        let how = opening(ty, &stored, encrypted, false, self.mac_only_encrypted);
        let aad = if how == Opening::Decrypt {
            // Hashed as it is decrypted when large: the whole check's way.
            if stored.len() >= cipher::LARGE || std::str::from_utf8(&stored).is_err() {
                return None;
            }
            Some(self.aad(keys))
        } else {
            // A value in clear that looks encrypted is read otherwise by the whole
            // reader (a sequence item may be a comment).
            if stored.starts_with(b"ENC[") {
                return None;
            }
            None
        };
        self.block.push(Value {
            meant,
            ty,
            stored,
            style,
            span,
            aad,
            hashed: matches!(how, Opening::Decrypt | Opening::Keep(true)),
            comment: false,
        });
        self.pushed()
    }

    /// A comment met, `encrypted` when the rules encrypt it: as opening decides it.
    fn comment(
        &mut self,
        meant: Item<'d>,
        stored: &'t str,
        span: Range<usize>,
        encrypted: bool,
        keys: &[impl AsRef<str>],
    ) -> Option<()> {
        // An empty comment has nothing to encrypt; one the rules encrypt, in clear, is
        // the whole check's to name.
        let aad = if encrypted && !stored.is_empty() {
            if !cipher::is_encrypted(stored) {
                return None;
            }
            Some(self.aad(keys))
        } else {
            None
        };
        self.block.push(Value {
            meant,
            ty: ScalarType::Comment,
            stored: Cow::Borrowed(stored.as_bytes()),
            style: Quote::Raw.into(),
            span,
            aad,
            hashed: false,
            comment: true,
        });
        self.pushed()
    }

    /// The additional data for `keys`, kept for the block's decryption.
    fn aad(&mut self, keys: &[impl AsRef<str>]) -> Range<usize> {
        let start = self.aads.len();
        with_aad(keys.iter().map(AsRef::as_ref), |aad| {
            self.aads.push_str(aad)
        });
        start..self.aads.len()
    }

    fn pushed(&mut self) -> Option<()> {
        let full = match self.sink {
            Sink::Here(_) => Self::BLOCK,
            Sink::Piped(..) => Self::PIPED_BLOCK,
        };
        if self.block.len() == full {
            self.flush()?;
        }
        Some(())
    }

    /// Hand the block on: opened here, or sent to be. `None` at a value amiss (here,
    /// or found so far by the thread opening them).
    fn flush(&mut self) -> Option<()> {
        let block = std::mem::take(&mut self.block);
        match &mut self.sink {
            Sink::Here(opener) => {
                let opened = decrypted(opener.key, &block, &self.aads, true);
                opener.open(block, opened)?;
                self.aads.clear();
            }
            Sink::Piped(blocks, state, key, _) => {
                (!state.amiss.load(Relaxed)).then_some(())?;
                if block.is_empty() {
                    return Some(());
                }
                let aads = std::mem::take(&mut self.aads);
                // Decrypted here while the other thread is behind: the two share the
                // work as it comes.
                if let Err(TrySendError::Full((block, aads, _))) =
                    blocks.try_send((block, aads, None))
                {
                    let opened = decrypted(key, &block, &aads, false);
                    blocks.send((block, aads, Some(opened))).ok()?;
                }
            }
        }
        Some(())
    }
}

/// What opens the values met, in order, as opening a file does: decrypts them, hashes
/// the MAC, compares each with what was meant, and the decryption with the source.
struct Opener<'t, 'r> {
    key: &'t DataKey,
    mac: MacBuilder,
    json: bool,
    same: Option<Pieces<'t, 'r>>,
    /// A value other than meant: what follows is not opened.
    differs: bool,
}

impl Opener<'_, '_> {
    /// Open a block, its values decrypted (`opened`): `None` at the first value amiss,
    /// `differs` set at the first value other than meant.
    fn open(&mut self, block: Vec<Value>, opened: Vec<Opened>) -> Option<()> {
        if self.differs {
            return Some(());
        }
        for (v, opened) in block.into_iter().zip(opened) {
            let (ty, plain) = match (&v.aad, &opened) {
                (Some(_), Some((ty, bytes))) => {
                    // A comment is never hashed, and decrypts to a comment; a value to
                    // a value of its type.
                    if v.comment {
                        (*ty == ScalarType::Comment).then_some(())?;
                    } else {
                        self.mac.add(*ty, bytes);
                        if *ty == ScalarType::Comment || !crate::scalar::valid_typed(*ty, bytes) {
                            return None;
                        }
                    }
                    (*ty, &bytes[..])
                }
                (Some(_), None) => return None,
                (None, _) => {
                    if v.hashed {
                        self.mac.add(v.ty, &v.stored);
                    }
                    (v.ty, &v.stored[..])
                }
            };
            // Another value than was meant; the same value otherwise spelt is the
            // layout's to tell, below.
            if differs((v.meant, Item::Scalar(ty, plain)), Compare::Full, self.json).is_some() {
                self.differs = true;
                return Some(());
            }
            if let (Some(same), Some(_)) = (&mut self.same, &v.aad) {
                same.value(&v.span, ty, std::str::from_utf8(plain).ok()?, v.style)?;
            }
        }
        Some(())
    }
}

/// The metadata read alone from `text`, as the whole reader of `format` reads it where
/// it ends a file: nothing else there, and all of it (`span`) what that reader removes.
fn metadata_alone(
    file: &str,
    format: Format,
    text: &str,
    span: Range<usize>,
) -> Option<crate::metadata::Metadata> {
    let doc = crate::format::parse(file, format, text.as_bytes().to_vec()).ok()?;
    let [d] = &doc.docs[..] else {
        return None;
    };
    let alone = matches!(&d.root, Node::Map(e) if e.is_empty())
        && doc.leaves.is_empty()
        && matches!(&d.meta, Some((_, spans)) if spans[..] == [span]);
    if !alone {
        return None;
    }
    crate::sops::metadata_of(file, doc)
        .ok()
        .map(|(_, meta, _)| meta)
}

/// Where the comment lines ending `text` (each `#` at a line's start, the text ending
/// with a newline) start: its length, when none does.
fn comment_lines_at_end(text: &str) -> usize {
    let b = text.as_bytes();
    let mut at = b.len();
    if b.last() != Some(&b'\n') {
        return at;
    }
    while at > 0 {
        let start = memchr::memrchr(b'\n', &b[..at - 1]).map_or(0, |n| n + 1);
        if b[start] != b'#' {
            break;
        }
        at = start;
    }
    at
}

/// A decryption compared with the source's bytes as it is made, piece by piece: the
/// text between values as it stands, each decrypted value as a decryption writes it.
struct Pieces<'a, 'r> {
    same: Prefix<'a>,
    got: &'a str,
    got_at: usize,
    /// The metadata's span, where comments follow it: a decryption leaves it out.
    meta: Option<Range<usize>>,
    /// A value as a decryption writes it in place of what the text holds there.
    render: &'r (dyn Fn(ScalarType, &str, Style, &str) -> Option<String> + Sync),
}

impl Pieces<'_, '_> {
    /// The text up to a value at `span`, then the value: `None` where this reading
    /// cannot tell how a decryption writes it. Past the first difference nothing is
    /// compared.
    fn value(
        &mut self,
        span: &Range<usize>,
        ty: ScalarType,
        value: &str,
        style: Style,
    ) -> Option<()> {
        if self.text_to(span.start)? {
            let stored = self.got.get(span.clone())?;
            let rendered = zeroize::Zeroizing::new((self.render)(ty, value, style, stored)?);
            self.same.take(rendered.as_bytes());
        }
        self.got_at = span.end;
        Some(())
    }

    /// The text after the last value, the metadata (at `meta`) removed: the source's
    /// rest. Where the decryption first differs from the source, if anywhere.
    fn rest(&mut self, meta: Range<usize>) -> Option<Option<usize>> {
        self.meta.get_or_insert(meta);
        self.text_to(self.got.len())?;
        Some(self.same.first_difference())
    }

    /// The text from the last value to `to`, the metadata left out where it stands
    /// there, compared: whether the decryption is the source's so far.
    fn text_to(&mut self, to: usize) -> Option<bool> {
        let from = self.got_at;
        match self.meta.clone().filter(|m| from <= m.start && m.end <= to) {
            Some(meta) => {
                let before = self.got.get(from..meta.start)?;
                let after = self.got.get(meta.end..to)?;
                Some(self.same.take(before.as_bytes()) && self.same.take(after.as_bytes()))
            }
            None => Some(self.same.take(self.got.get(from..to)?.as_bytes())),
        }
    }
}
