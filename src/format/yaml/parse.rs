//! The YAML reader: saphyr's events become the document's leaves and structure, with
//! the spans the layout is kept by.

use std::sync::mpsc::Receiver;

use super::*;

/// Where the events come from: the quick reader when it knows the whole text, else saphyr.
pub(super) enum Events<'a> {
    Quick(super::quick::Quick<'a>),
    /// The quick reader's events, made on another thread a batch at a time.
    Piped(
        Receiver<Vec<QuickEvent<'a>>>,
        std::vec::IntoIter<QuickEvent<'a>>,
    ),
    Saphyr(Box<Parser<'a, saphyr_parser::StrInput<'a>>>),
}

type QuickEvent<'a> = Result<(Event<'a>, Span), super::quick::Declined>;

/// Texts of this many bytes or more are read on two cores: the quick reader makes the
/// events on one while the document is built from them on the other. Below, a thread
/// costs more than it spares.
pub(super) const PIPED_FROM: usize = 1 << 16;
/// Events handed over at a time.
const PIPED_BATCH: usize = 512;

impl<'a> Events<'a> {
    pub(super) fn of(input: &'a str, quick: bool) -> Self {
        match quick.then(|| super::quick::reader(input)).flatten() {
            Some(quick) => Events::Quick(quick),
            None => Events::Saphyr(Box::new(Parser::new_from_str(input))),
        }
    }

    /// The next event. The quick reader's refusal of text it does not know is an error
    /// like any other: `Parse::run_once` starts such a reading over with saphyr.
    pub(super) fn next_event(
        &mut self,
    ) -> Option<Result<(Event<'a>, Span), saphyr_parser::ScanError>> {
        let declined = |_| saphyr_parser::ScanError::new_str(Default::default(), "declined");
        match self {
            Events::Quick(quick) => quick.next().map(|e| e.map_err(declined)),
            Events::Piped(batches, batch) => loop {
                if let Some(e) = batch.next() {
                    return Some(e.map_err(declined));
                }
                *batch = batches.recv().ok()?.into_iter();
            },
            Events::Saphyr(parser) => parser.next_event(),
        }
    }
}

/// A collection being built while events stream in.
pub(super) enum Frame {
    Map {
        entries: ThinVec<Entry>,
        key: Option<(Key, usize)>,
        container: usize,
    },
    Seq {
        items: ThinVec<Node>,
        container: usize,
    },
}

pub(super) struct Container {
    pub(super) path: KeyPath,
    /// Column of the container's keys or dashes.
    pub(super) col: usize,
    pub(super) parent: Option<usize>,
    pub(super) flow: bool,
    /// Just past a flow collection's closing bracket, once read.
    pub(super) end: usize,
}

/// Where a key or sequence item starts, for placing comments.
pub(super) struct Item {
    pub(super) pos: usize,
    pub(super) line: usize,
    pub(super) col: usize,
    pub(super) container: usize,
}

/// State for capturing the `sops` metadata subtree.
pub(super) enum MetaFrame {
    Map(Vec<(String, MetaValue)>, Option<String>),
    Seq(Vec<MetaValue>),
}

pub(super) struct Parse<'t> {
    pub(super) text: &'t str,
    /// What saphyr reads: the text, or it with spaces added (`lenient`).
    pub(super) input: &'t str,
    pub(super) pads: &'t Pads,
    /// When saphyr reads stand-ins for encrypted values (`shrink`), and how many of them
    /// have come back so far.
    pub(super) shrunk: Option<&'t Shrunk>,
    pub(super) restored: usize,
    /// The collections open in a shrunk reading, metadata included: whether each is in
    /// flow context, where a stand-in would not scan as its value does.
    pub(super) open_flow: Vec<bool>,
    /// The scanner's error, if it stopped: line (1-based), column, and what.
    pub(super) scan_error: Option<(usize, usize, String)>,
    /// Byte offset of each char index, when the text is not pure ASCII.
    pub(super) offsets: Option<&'t [usize]>,
    /// Byte offset where each line starts, to find line numbers without rescanning.
    pub(super) line_starts: Vec<u32>,
    pub(super) leaves: Vec<Leaf>,
    pub(super) docs: Vec<Doc>,
    pub(super) containers: Vec<Container>,
    pub(super) items: Vec<Item>,
    /// Spans no comment can start in: scalars, and the metadata block.
    pub(super) occupied: Vec<Range<usize>>,
    /// Whether comments are to be placed (the text holds a `#`) or tabs judged (a tab):
    /// only then are `items` and `occupied` kept whole, not just the last item. A file
    /// of a million values and no comment spares two lists of a million.
    pub(super) places: bool,
    pub(super) indent: Option<usize>,
    pub(super) constructs: Vec<(usize, &'static str)>,
    pub(super) foreign: Option<(usize, &'static str)>,
    /// Anchored nodes (`&name`) once complete, by anchor id, with their key path: an
    /// alias (`*name`) is read as a copy of one, as go-yaml and so sops read it.
    pub(super) anchors: std::collections::HashMap<usize, (Node, KeyPath)>,
    /// Anchored collections still open: the stack depth they sit at, and their id.
    pub(super) open_anchors: Vec<(usize, usize)>,
    /// Leaves made by copying, bounded so a small document cannot expand without end.
    pub(super) copied: usize,
    /// The first key that is no string to go-yaml (`404:`, `true:`, `~:`): where, what
    /// it is, and the key. sops walks only string keys, so a plaintext holding one is
    /// refused.
    pub(super) nonstring_key: Option<(usize, ScalarType, String)>,
    /// Whether the quick reader may read the input (see `quick`), and whether it did.
    pub(super) quick: bool,
    pub(super) read_quickly: bool,
    pub(super) keys: crate::tree::KeyTable,
}

impl<'t> Parse<'t> {
    pub(super) fn new(
        text: &'t str,
        input: &'t str,
        pads: &'t Pads,
        offsets: Option<&'t [usize]>,
        line_starts: Vec<u32>,
    ) -> Self {
        // A leaf or an item per line is the common case (and an item more for each
        // nested collection): room for them from the start spares copying each list as
        // it doubles, and holding it twice meanwhile.
        let places = memchr::memchr2(b'#', b'\t', text.as_bytes()).is_some();
        let lines = line_starts.len();
        let placed = if places { lines } else { 1 };
        Parse {
            text,
            input,
            pads,
            shrunk: None,
            restored: 0,
            open_flow: Vec::new(),
            scan_error: None,
            offsets,
            line_starts,
            leaves: Vec::with_capacity(lines),
            docs: Vec::new(),
            containers: Vec::new(),
            items: Vec::with_capacity(placed + placed / 4),
            occupied: Vec::with_capacity(placed),
            places,
            indent: None,
            constructs: Vec::new(),
            foreign: None,
            anchors: Default::default(),
            open_anchors: Vec::new(),
            copied: 0,
            nonstring_key: None,
            quick: true,
            read_quickly: false,
            keys: Default::default(),
        }
    }

    /// Read the input, with saphyr from the start again if the quick reader declines it
    /// part way.
    pub(super) fn run_once(self) -> (Self, Result<(), crate::format::SyntaxError>) {
        let mut p = self;
        let ok = p.run();
        // Only a whole reading is known to match saphyr's: a quick reading that stopped
        // (declined, or an error about events saphyr might have made otherwise further
        // on) is done again by saphyr.
        if !(ok.is_err() && p.read_quickly) {
            return (p, ok);
        }
        let starts = std::mem::take(&mut p.line_starts);
        let (text, input, pads, offsets, shrunk) = (p.text, p.input, p.pads, p.offsets, p.shrunk);
        // What the quick reading made (its leaves alone a list of every line) goes first.
        drop(p);
        let mut again = Parse::new(text, input, pads, offsets, starts);
        again.shrunk = shrunk;
        again.quick = false;
        let ok = again.run();
        (again, ok)
    }

    /// The byte in the text of a char index saphyr gives.
    pub(super) fn byte(&self, char_index: usize) -> usize {
        let char_index = match self.shrunk {
            Some(s) => s.original(char_index),
            None => self.pads.original(char_index),
        };
        match self.offsets {
            None => char_index,
            Some(o) => o[char_index.min(o.len() - 1)],
        }
    }

    pub(super) fn range(&self, span: &Span) -> Range<usize> {
        self.byte(span.start.index())..self.byte(span.end.index())
    }

    /// The 0-based line holding byte `pos`.
    pub(super) fn line_of(&self, pos: usize) -> usize {
        self.line_starts.partition_point(|&s| s as usize <= pos) - 1
    }

    pub(super) fn line_start(&self, pos: usize) -> usize {
        self.line_starts[self.line_of(pos)] as usize
    }

    pub(super) fn line_end_after(&self, pos: usize) -> usize {
        crate::tree::line_end_after(self.text, pos)
    }

    /// The 0-based column (in characters) of byte `pos`; found, not counted, as one long
    /// line of flow items would make counting quadratic.
    pub(super) fn col(&self, pos: usize) -> usize {
        let start = self.line_start(pos);
        match self.offsets {
            None => pos - start,
            Some(o) => o.partition_point(|&b| b < pos) - o.partition_point(|&b| b < start),
        }
    }
}

impl<'t> Parse<'t> {
    pub(super) fn run(&mut self) -> Result<(), crate::format::SyntaxError> {
        let parser = Events::of(self.input, self.quick);
        self.read_quickly = matches!(parser, Events::Quick(_));
        let Events::Quick(mut quick) = parser else {
            return self.run_on(parser);
        };
        if self.input.len() < PIPED_FROM {
            return self.run_on(Events::Quick(quick));
        }
        std::thread::scope(|s| {
            let (batches, received) = std::sync::mpsc::sync_channel(4);
            s.spawn(move || loop {
                let batch: Vec<_> = quick.by_ref().take(PIPED_BATCH).collect();
                // Past a refusal nothing is read; once the building stops, nothing is
                // wanted (the receiver is gone).
                let last = batch.len() < PIPED_BATCH || batch.last().is_some_and(Result::is_err);
                if batch.is_empty() || batches.send(batch).is_err() || last {
                    return;
                }
            });
            self.run_on(Events::Piped(received, Vec::new().into_iter()))
        })
    }

    /// [`Parse::run`] on the events `parser` gives.
    fn run_on(&mut self, mut parser: Events<'t>) -> Result<(), crate::format::SyntaxError> {
        let mut stack: Vec<Frame> = Vec::new();
        // Metadata capture: depth of the `sops` subtree being read, with its own stack.
        let mut meta_stack: Vec<MetaFrame> = Vec::new();
        let mut meta_start: Option<usize> = None;
        let mut meta_end = 0usize;
        let mut doc_meta: Option<(MetaValue, Vec<Range<usize>>)> = None;
        let mut last_content_end = 0usize;

        while let Some(ev) = parser.next_event() {
            let (ev, span) = ev.map_err(|e| {
                let m = e.marker();
                self.scan_error = Some((m.line(), m.col(), e.info().to_string()));
                err_at(m.line(), m.col(), e.info())
            })?;
            let range = self.range(&span);
            let ev = match self.shrunk {
                Some(shrunk) => self.restore(shrunk, ev, &range)?,
                None => ev,
            };

            // Inside the `sops` block: build the metadata tree and nothing else.
            if meta_start.is_some() {
                if meta_stack.len() >= crate::format::MAX_DEPTH {
                    return Err(err_at(
                        span.start.line(),
                        span.start.col(),
                        format!("nested more than {} levels deep", crate::format::MAX_DEPTH),
                    ));
                }
                // Block collections end at the next token, which may be a comment or
                // the next document: only text the metadata itself holds counts.
                if range.end > range.start {
                    meta_end = meta_end.max(range.end);
                }
                let done = capture_meta(&mut meta_stack, &ev, self.text, &range);
                if let Some(value) = done {
                    let start = meta_start.take().expect("inside a metadata block");
                    let mut end = self.line_end_after(meta_end);
                    let mut start = self.line_start(start);
                    if end == self.text.len() && !self.text.ends_with('\n') && start > 0 {
                        start -= 1;
                    }
                    end = end.max(start);
                    self.occupy(start..end);
                    if doc_meta.is_some() {
                        return Err(err_at(
                            span.start.line(),
                            span.start.col(),
                            "more than one `sops` metadata key in the document",
                        ));
                    }
                    doc_meta = Some((value, std::iter::once(start..end).collect()));
                    if let Some(Frame::Map { key, .. }) = stack.last_mut() {
                        *key = None;
                    }
                }
                continue;
            }

            match ev {
                Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
                Event::DocumentStart(_) => {
                    stack.clear();
                    last_content_end = range.end;
                    doc_meta = None;
                }
                Event::DocumentEnd => {
                    // The end of the line the last content ends on. A kept (`|+`) block
                    // ends with line breaks of its own, which become part of its one-line
                    // ciphertext: the metadata goes after the next break.
                    let end = match last_content_end {
                        0 => 0,
                        p => self.text[p..]
                            .find('\n')
                            .map_or(self.text.len(), |i| p + i + 1),
                    };
                    let root = match stack.pop() {
                        Some(Frame::Map { entries, .. }) => Node::Map(exact(entries)),
                        _ => Node::Map(ThinVec::new()),
                    };
                    self.docs.push(Doc {
                        root,
                        meta: doc_meta.take(),
                        end,
                        indent: 2,
                        indent_char: ' ',
                    });
                }
                Event::Alias(id) => {
                    let at = |m: &str| err_at(span.start.line(), span.start.col(), m);
                    if matches!(stack.last(), Some(Frame::Map { key: None, .. }) | None) {
                        return Err(at("an alias (*name) as a mapping key is not supported"));
                    }
                    let (node, base) = self
                        .anchors
                        .get(&id)
                        .cloned()
                        .ok_or_else(|| at("an alias (*name) of a mapping key, or inside the node it names, is not supported"))?;
                    let target = self.child_path(&stack);
                    self.note_item(&stack, range.start);
                    let copy = self.copy_node(&node, &base, &target).map_err(at)?;
                    // Its copy cannot stand where the alias does: the canonical layout.
                    self.foreign.get_or_insert((
                        range.start,
                        "a YAML alias (expanded into a copy, as sops reads it)",
                    ));
                    last_content_end = last_content_end.max(range.end);
                    attach(&mut stack, copy, range.end);
                }
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    let is_map = matches!(ev, Event::MappingStart(..));
                    // A tag or anchor may stand before the bracket (`!Select [0, x]`).
                    let flow = after_properties(&self.text[range.clone()]).starts_with(['{', '[']);
                    // A collection where a key is expected: sops has no such keys, and
                    // taking it for a value would shift every key after it.
                    if let Some(Frame::Map { key: None, .. }) = stack.last() {
                        return Err(err_at(
                            span.start.line(),
                            span.start.col(),
                            "complex mapping keys (a list or mapping used as a key) are not supported",
                        ));
                    }
                    if stack.len() >= crate::format::MAX_DEPTH {
                        return Err(err_at(
                            span.start.line(),
                            span.start.col(),
                            format!("nested more than {} levels deep", crate::format::MAX_DEPTH),
                        ));
                    }
                    if flow {
                        let what = if is_map {
                            "flow mapping"
                        } else {
                            "flow sequence"
                        };
                        self.constructs.push((range.start, what));
                    }
                    let parent = stack.last().map(frame_container);
                    // The root must be a mapping, as in sops.
                    if stack.is_empty() && !is_map {
                        return Err(err_at(
                            span.start.line(),
                            span.start.col(),
                            "YAML documents that are sequences are not supported",
                        ));
                    }
                    // `sops:` at the top level of a document: capture it as metadata.
                    if is_map && stack.len() == 1 {
                        if let Some(Frame::Map { key: Some(k), .. }) = stack.last() {
                            if &*k.0 == "sops" {
                                meta_stack.push(MetaFrame::Map(Vec::new(), None));
                                let key_pos = self.items.last().map_or(range.start, |i| i.pos);
                                meta_start = Some(key_pos);
                                meta_end = range.end;
                                continue;
                            }
                        }
                    }
                    let key_path = self.child_path(&stack);
                    let col = self.col(range.start);
                    if let Some(pid) = parent {
                        self.note_item(&stack, range.start);
                        let pcol = self.containers[pid].col;
                        if self.indent.is_none() && is_map && !flow && col > pcol {
                            self.indent = Some(col - pcol);
                        }
                    }
                    let id = self.containers.len();
                    self.containers.push(Container {
                        path: key_path,
                        col,
                        parent,
                        flow: flow || parent.is_some_and(|p| self.containers[p].flow),
                        end: usize::MAX,
                    });
                    stack.push(if is_map {
                        Frame::Map {
                            entries: ThinVec::new(),
                            key: None,
                            container: id,
                        }
                    } else {
                        Frame::Seq {
                            items: ThinVec::new(),
                            container: id,
                        }
                    });
                    if let Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) = ev {
                        if anchor != 0 {
                            self.open_anchors.push((stack.len(), anchor));
                        }
                    }
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    let anchored = match self.open_anchors.last() {
                        Some(&(depth, anchor)) if depth == stack.len() => {
                            self.open_anchors.pop();
                            stack.last().map(|f| (anchor, frame_container(f)))
                        }
                        _ => None,
                    };
                    let closing = stack
                        .last()
                        .map(frame_container)
                        .filter(|&c| self.containers[c].flow)
                        .map(|c| {
                            let end = closing_bracket(self.text, range.start);
                            self.containers[c].end = end;
                            end
                        });
                    // A file of a million keys keeps no spare room in its collections.
                    let node = match stack.pop() {
                        Some(Frame::Map { entries, .. }) => Node::Map(exact(entries)),
                        Some(Frame::Seq { items, .. }) => Node::Seq(exact(items)),
                        None => continue,
                    };
                    if let Some((anchor, container)) = anchored {
                        let path = self.containers[container].path.clone();
                        self.anchors.insert(anchor, (node.clone(), path));
                    }
                    let mut end = node.end(&self.leaves);
                    if let Some(closing) = closing {
                        last_content_end = last_content_end.max(closing);
                        end = closing;
                    }
                    if stack.is_empty() {
                        stack.push(match node {
                            Node::Map(entries) => Frame::Map {
                                entries,
                                key: None,
                                container: 0,
                            },
                            _ => unreachable!("the root is always a mapping"),
                        });
                    } else {
                        attach(&mut stack, node, end);
                    }
                }
                Event::Scalar(value, style, anchor, tag) => {
                    // A document whose root is a scalar: only an empty one (null) is
                    // accepted; `--- |` is the empty string, not nothing.
                    if stack.is_empty() {
                        let null = style == ScalarStyle::Plain
                            && matches!(value.as_ref(), "" | "~" | "null");
                        if !null {
                            return Err(err_at(
                                span.start.line(),
                                span.start.col(),
                                "YAML documents that are plain values are not supported",
                            ));
                        }
                        let id = self.containers.len();
                        self.containers.push(Container {
                            path: KeyPath::default(),
                            col: 0,
                            parent: None,
                            flow: false,
                            end: usize::MAX,
                        });
                        stack.push(Frame::Map {
                            entries: ThinVec::new(),
                            key: None,
                            container: id,
                        });
                        continue;
                    }
                    let is_key = matches!(stack.last(), Some(Frame::Map { key: None, .. }));
                    // sops writes its metadata last; data after it is not from sops.
                    if is_key && stack.len() == 1 && doc_meta.is_some() {
                        return Err(err_at(
                            span.start.line(),
                            span.start.col(),
                            "the `sops` metadata is not the last key of the document",
                        ));
                    }
                    if is_key {
                        if self.nonstring_key.is_none() {
                            // One go-yaml refuses as a value is a string to us here: the
                            // error is about keys.
                            let ty = scalar_type(style, tag.as_deref(), &value)
                                .map_or(ScalarType::Str, |(ty, _)| ty);
                            if ty != ScalarType::Str {
                                self.nonstring_key = Some((range.start, ty, value.to_string()));
                            }
                        }
                        let container = frame_container(stack.last().expect("in a mapping"));
                        if self.containers[container].flow
                            && self.foreign.is_none()
                            && super::scalars::colon_on_next_line(self.text, &range)
                        {
                            self.foreign = Some((
                                range.start,
                                "a flow mapping key with its `:` on the next line (sops cannot read it)",
                            ));
                        }
                        self.note_item(&stack, range.start);
                        self.occupy(range.clone());
                        last_content_end = last_content_end.max(range.end);
                        if let Some(Frame::Map { key, .. }) = stack.last_mut() {
                            // The scanner's string keeps spare room: keep the key alone.
                            *key = Some((self.keys.key(&value), range.start));
                        }
                        continue;
                    }
                    if matches!(stack.last(), Some(Frame::Seq { .. })) {
                        self.note_item(&stack, range.start);
                        if style == ScalarStyle::Plain && self.item_comment(&stack, &value, &range)
                        {
                            continue;
                        }
                    }
                    let idx =
                        self.scalar_leaf(&stack, &value, style, tag.as_deref(), range, &span)?;
                    if anchor != 0 {
                        let path = self.leaves[idx].path.clone();
                        self.anchors.insert(anchor, (Node::Leaf(idx), path));
                    }
                    let end = self.leaves[idx].span().end;
                    last_content_end = last_content_end.max(end);
                    attach(&mut stack, Node::Leaf(idx), end);
                }
            }
        }
        if self.docs.is_empty() {
            // No document, only comments or an end marker: the metadata is the document.
            // After a `...` libyaml wants a `---` first, so it goes before the marker.
            let end = match self.text.lines().position(|l| l == "...") {
                Some(n) => self.line_starts[n] as usize,
                None => self.text.len(),
            };
            self.docs.push(Doc {
                root: Node::Map(ThinVec::new()),
                meta: None,
                end,
                indent: 2,
                indent_char: ' ',
            });
        }
        Ok(())
    }

    /// A copy of `node` (an anchored node whose key path is `base`) standing at
    /// `target`: new leaves with the same values, their paths moved under `target`.
    pub(super) fn copy_node(
        &mut self,
        node: &Node,
        base: &[Key],
        target: &[Key],
    ) -> Result<Node, &'static str> {
        Ok(match node {
            Node::Leaf(i) => {
                // go-yaml bounds expansion too: a few lines must not grow without end.
                self.copied += 1;
                if self.copied > 10_000 && self.copied > 10 * (self.leaves.len() - self.copied) {
                    return Err("aliases expand to too many values (more than ten copies for each value written)");
                }
                let l = &self.leaves[*i];
                let path = target
                    .iter()
                    .chain(l.path.get(base.len()..).unwrap_or_default())
                    .cloned()
                    .collect();
                let copy = Leaf {
                    kind: l.kind,
                    path,
                    place: l.place,
                    ty: l.ty,
                    own: l.own.clone(),
                    quoted: l.quoted,
                    style: l.style,
                };
                self.leaves.push(copy);
                Node::Leaf(self.leaves.len() - 1)
            }
            Node::Map(entries) => Node::Map(
                entries
                    .iter()
                    .map(|e| {
                        Ok(Entry {
                            key: e.key.clone(),
                            place: e.place,
                            value: self.copy_node(&e.value, base, target)?,
                        })
                    })
                    .collect::<Result<_, &str>>()?,
            ),
            Node::Seq(items) => Node::Seq(
                items
                    .iter()
                    .map(|n| self.copy_node(n, base, target))
                    .collect::<Result<_, &str>>()?,
            ),
        })
    }

    /// A shrunk reading's event with its value's text put back (see `shrink`). Refused
    /// when a stand-in did not come back as one whole plain scalar in block context: the
    /// text is then read as written.
    fn restore(
        &mut self,
        shrunk: &Shrunk,
        ev: Event<'t>,
        range: &Range<usize>,
    ) -> Result<Event<'t>, crate::format::SyntaxError> {
        let Some(next) = shrunk.bytes(self.restored) else {
            return Ok(ev);
        };
        match ev {
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                // As the collections read it (a tag or anchor may stand before the bracket).
                let flow = after_properties(&self.text[range.clone()]).starts_with(['{', '[']);
                let inside = self.open_flow.last() == Some(&true);
                self.open_flow.push(flow || inside);
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.open_flow.pop();
            }
            _ => {}
        }
        if next.start >= range.end && !matches!(ev, Event::StreamEnd) {
            return Ok(ev);
        }
        match ev {
            Event::Scalar(_, ScalarStyle::Plain, anchor, tag)
                if next == *range && self.open_flow.last() != Some(&true) =>
            {
                self.restored += 1;
                let value = std::borrow::Cow::Borrowed(&self.text[next]);
                Ok(Event::Scalar(value, ScalarStyle::Plain, anchor, tag))
            }
            _ => Err(err_at(
                0,
                0,
                "a stand-in for an encrypted value was not read alone",
            )),
        }
    }

    /// The key path of a collection about to be opened under the current frame.
    pub(super) fn child_path(&self, stack: &[Frame]) -> KeyPath {
        match stack.last() {
            None => KeyPath::default(),
            Some(Frame::Map { key, container, .. }) => {
                extended(&self.containers[*container].path, key)
            }
            Some(Frame::Seq { container, .. }) => self.containers[*container].path.clone(),
        }
    }

    pub(super) fn note_item(&mut self, stack: &[Frame], pos: usize) {
        let Some(frame) = stack.last() else { return };
        let container = frame_container(frame);
        // A sequence item belongs to its dash, not to what follows the dash.
        let pos = match frame {
            Frame::Seq { .. } if !self.containers[container].flow => {
                let ls = self.line_start(pos);
                self.text[ls..pos].rfind('-').map_or(pos, |i| ls + i)
            }
            _ => pos,
        };
        // The line places comments only.
        let line = if self.places { self.line_of(pos) } else { 0 };
        let col = self.col(pos);
        if !self.places {
            self.items.clear();
        }
        self.items.push(Item {
            pos,
            line,
            col,
            container,
        });
    }

    /// A span no comment can start in, kept when comments are to be found.
    pub(super) fn occupy(&mut self, span: Range<usize>) {
        if self.places {
            self.occupied.push(span);
        }
    }

    /// sops writes a comment that stands between list items as an item of its own,
    /// `- ENC[…,type:comment]`: read it back as the comment it is.
    pub(super) fn item_comment(
        &mut self,
        stack: &[Frame],
        value: &str,
        range: &Range<usize>,
    ) -> bool {
        let container = frame_container(stack.last().expect("inside a sequence"));
        if self.containers[container].flow
            || !value.starts_with("ENC[AES256_GCM,")
            || !value.ends_with(",type:comment]")
        {
            return false;
        }
        let dash = self.items.last().map_or(range.start, |i| i.pos);
        self.occupy(dash..range.end);
        self.leaves.push(Leaf {
            kind: LeafKind::Comment,
            path: self.containers[container].path.clone(),
            place: (dash..range.end).into(),
            ty: ScalarType::Comment,
            own: Some(Box::new(Zeroizing::new(value.as_bytes().to_vec()))),
            quoted: false,
            style: Style {
                quote: Quote::Item,
                ..Style::default()
            },
        });
        true
    }
}

/// Just past the bracket that closes a flow collection whose end saphyr reports at
/// `pos`: there for a sequence, before the blanks, `,` and comments that precede the
/// `}` of a mapping.
pub(super) fn closing_bracket(text: &str, mut pos: usize) -> usize {
    let b = text.as_bytes();
    while let Some(&c) = b.get(pos) {
        match c {
            b'}' | b']' => return pos + 1,
            b'#' => pos = text[pos..].find('\n').map_or(text.len(), |i| pos + i),
            _ => pos += 1,
        }
    }
    pos
}

/// Just past the quote that closes the scalar opening at `start` (`''` and `\"` are
/// escapes, not the end).
pub(super) fn quoted_end(text: &str, start: usize, quote: u8) -> Option<usize> {
    let b = text.as_bytes();
    if b.get(start) != Some(&quote) {
        return None;
    }
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' if quote == b'"' => i += 2,
            c if c == quote && quote == b'\'' && b.get(i + 1) == Some(&b'\'') => i += 2,
            c if c == quote => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// The type go-yaml gives a scalar written in `style` under `tag`, with the text sops
/// stores for it when a standard tag decides it; why go-yaml refuses it otherwise.
pub(super) fn scalar_type(
    style: ScalarStyle,
    tag: Option<&saphyr_parser::Tag>,
    value: &str,
) -> Result<(ScalarType, Option<String>), crate::format::yaml_resolve::Refused> {
    let core = tag
        .filter(|t| t.is_yaml_core_schema())
        .map(|t| t.suffix.as_str());
    Ok(match (style, core) {
        // go-yaml (so sops) stores the decoded bytes, which coffer's layout cannot hold
        // as written.
        (_, Some("binary")) => return Err(crate::format::yaml_resolve::Refused::Binary),
        (_, Some("str")) => (ScalarType::Str, None),
        // go-yaml decodes the value to its type, and sops cannot read the tag before a
        // ciphertext: the tag goes with the value, which is stored typed.
        (_, Some(t @ ("int" | "float" | "bool" | "timestamp" | "null"))) => {
            let (ty, stored) = crate::format::yaml_resolve::resolve_tagged(t, value)?;
            (ty, Some(stored))
        }
        // A tag of another schema (`!t`, `!Ref`, `!vault`) makes a string of any value,
        // an empty one included, and stays in the text before the ciphertext.
        (ScalarStyle::Plain, None) if tag.is_none() => (resolve_plain(value), None),
        _ => (ScalarType::Str, None),
    })
}

/// `s` after the node properties at its start: tags (`!t`, `!!map`) and anchors (`&a`),
/// each with the spaces after it.
pub(super) fn after_properties(mut s: &str) -> &str {
    while s.starts_with(['!', '&']) {
        let end = s.find([' ', '\t', '\n', '\r']).unwrap_or(s.len());
        s = s[end..].trim_start();
    }
    s
}

/// A collection built, at its size: grown by doubling in place (a large one is
/// remapped, not copied), then shrunk, so a mapping of a million keys is never held
/// twice nor keeps room for a million more.
fn exact<T>(mut items: ThinVec<T>) -> ThinVec<T> {
    items.shrink_to_fit();
    items
}

pub(super) fn frame_container(f: &Frame) -> usize {
    match f {
        Frame::Map { container, .. } | Frame::Seq { container, .. } => *container,
    }
}

/// `path` and the key being read, with no spare room (a path per leaf adds up).
pub(super) fn extended(path: &KeyPath, key: &Option<(Key, usize)>) -> KeyPath {
    path.child(key.as_ref().map_or_else(|| Key::from(""), |k| k.0.clone()))
}

pub(super) fn attach(stack: &mut [Frame], node: Node, end: usize) {
    match stack.last_mut() {
        Some(Frame::Map { entries, key, .. }) => {
            let (key, at) = key.take().unwrap_or_default();
            entries.push(Entry {
                key,
                place: (at..end).into(),
                value: node,
            });
        }
        Some(Frame::Seq { items, .. }) => items.push(node),
        None => {}
    }
}

/// Feed one event into the metadata tree; returns the tree when its root closes.
pub(super) fn capture_meta(
    stack: &mut Vec<MetaFrame>,
    ev: &Event,
    text: &str,
    range: &Range<usize>,
) -> Option<MetaValue> {
    let finished = match ev {
        Event::MappingStart(..) => {
            stack.push(MetaFrame::Map(Vec::new(), None));
            None
        }
        Event::SequenceStart(..) => {
            stack.push(MetaFrame::Seq(Vec::new()));
            None
        }
        Event::MappingEnd | Event::SequenceEnd => match stack.pop() {
            Some(MetaFrame::Map(entries, _)) => Some(MetaValue::Map(entries)),
            Some(MetaFrame::Seq(items)) => Some(MetaValue::Seq(items)),
            None => None,
        },
        Event::Scalar(value, style, ..) => {
            if let Some(MetaFrame::Map(_, key @ None)) = stack.last_mut() {
                *key = Some(value.to_string());
                return None;
            }
            let null =
                matches!(style, ScalarStyle::Plain) && resolve_plain(value) == ScalarType::Null;
            let _ = (text, range);
            Some(if null {
                MetaValue::Null
            } else {
                MetaValue::Str(value.to_string())
            })
        }
        _ => None,
    };
    let value = finished?;
    match stack.last_mut() {
        None => Some(value),
        Some(MetaFrame::Map(entries, key)) => {
            entries.push((key.take().unwrap_or_default(), value));
            None
        }
        Some(MetaFrame::Seq(items)) => {
            items.push(value);
            None
        }
    }
}
