//! YAML: parsed with saphyr-parser for structure and spans; comments are found by
//! scanning the text around the scalars. Values are replaced in place, so indentation,
//! comments, blank lines and key quoting survive untouched.

use std::ops::Range;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use zeroize::Zeroizing;

use super::yaml_lenient::{self, Pads};
pub(crate) use super::yaml_resolve::{resolve_plain, stored_form};
use super::{LeafText, Store};
use crate::tree::{
    Doc, Document, Entry, Leaf, LeafKind, MetaValue, Node, Quote, ScalarType, Style, Value,
};

pub struct YamlStore;

/// A collection being built while events stream in.
enum Frame {
    Map {
        entries: Vec<Entry>,
        key: Option<(String, usize)>,
        container: usize,
    },
    Seq {
        items: Vec<Node>,
        container: usize,
    },
}

struct Container {
    path: Vec<String>,
    /// Column of the container's keys or dashes.
    col: usize,
    parent: Option<usize>,
    flow: bool,
    /// Just past a flow collection's closing bracket, once read.
    end: usize,
}

/// Where a key or sequence item starts, for placing comments.
struct Item {
    pos: usize,
    line: usize,
    col: usize,
    container: usize,
}

/// State for capturing the `sops` metadata subtree.
enum MetaFrame {
    Map(Vec<(String, MetaValue)>, Option<String>),
    Seq(Vec<MetaValue>),
}

struct Parse<'t> {
    text: &'t str,
    /// What saphyr reads: the text, or it with spaces added (`yaml_lenient`).
    input: &'t str,
    pads: &'t Pads,
    /// The scanner's error, if it stopped: line (1-based), column, and what.
    scan_error: Option<(usize, usize, String)>,
    /// Byte offset of each char index, when the text is not pure ASCII.
    offsets: Option<&'t [usize]>,
    /// Byte offset where each line starts, to find line numbers without rescanning.
    line_starts: Vec<usize>,
    leaves: Vec<Leaf>,
    docs: Vec<Doc>,
    containers: Vec<Container>,
    items: Vec<Item>,
    /// Spans no comment can start in: scalars, and the metadata block.
    occupied: Vec<Range<usize>>,
    indent: Option<usize>,
    constructs: Vec<(usize, &'static str)>,
    foreign: Option<(usize, &'static str)>,
    /// Anchored nodes (`&name`) once complete, by anchor id, with their key path: an
    /// alias (`*name`) is read as a copy of one, as go-yaml and so sops read it.
    anchors: std::collections::HashMap<usize, (Node, Vec<String>)>,
    /// Anchored collections still open: the stack depth they sit at, and their id.
    open_anchors: Vec<(usize, usize)>,
    /// Leaves made by copying, bounded so a small document cannot expand without end.
    copied: usize,
    /// The first key that is no string to go-yaml (`404:`, `true:`, `~:`): where, what
    /// it is, and the key. sops walks only string keys, so a plaintext holding one is
    /// refused.
    nonstring_key: Option<(usize, ScalarType, String)>,
}

impl<'t> Parse<'t> {
    fn new(
        text: &'t str,
        input: &'t str,
        pads: &'t Pads,
        offsets: Option<&'t [usize]>,
        line_starts: Vec<usize>,
    ) -> Self {
        Parse {
            text,
            input,
            pads,
            scan_error: None,
            offsets,
            line_starts,
            leaves: Vec::new(),
            docs: Vec::new(),
            containers: Vec::new(),
            items: Vec::new(),
            occupied: Vec::new(),
            indent: None,
            constructs: Vec::new(),
            foreign: None,
            anchors: Default::default(),
            open_anchors: Vec::new(),
            copied: 0,
            nonstring_key: None,
        }
    }

    /// The byte in the text of a char index saphyr gives.
    fn byte(&self, char_index: usize) -> usize {
        let char_index = self.pads.original(char_index);
        match self.offsets {
            None => char_index,
            Some(o) => o[char_index.min(o.len() - 1)],
        }
    }

    fn range(&self, span: &Span) -> Range<usize> {
        self.byte(span.start.index())..self.byte(span.end.index())
    }

    /// The 0-based line holding byte `pos`.
    fn line_of(&self, pos: usize) -> usize {
        self.line_starts.partition_point(|&s| s <= pos) - 1
    }

    fn line_start(&self, pos: usize) -> usize {
        self.line_starts[self.line_of(pos)]
    }

    fn line_end_after(&self, pos: usize) -> usize {
        crate::tree::line_end_after(self.text, pos)
    }

    /// The 0-based column (in characters) of byte `pos`; found, not counted, as one long
    /// line of flow items would make counting quadratic.
    fn col(&self, pos: usize) -> usize {
        let start = self.line_start(pos);
        match self.offsets {
            None => pos - start,
            Some(o) => o.partition_point(|&b| b < pos) - o.partition_point(|&b| b < start),
        }
    }
}

fn err_at(line: usize, col: usize, msg: impl std::fmt::Display) -> super::SyntaxError {
    super::SyntaxError::at(line, col + 1, msg)
}

impl Store for YamlStore {
    fn parse(&self, source: Zeroizing<Vec<u8>>) -> Result<Document, super::SyntaxError> {
        let source = super::text(source)?;
        let text: &str = &source;
        let offsets = if text.is_ascii() {
            None
        } else {
            let mut o: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
            o.push(text.len());
            Some(o)
        };
        // go-yaml, and so sops, knows the %YAML and %TAG directives only, and reads only
        // YAML 1.1 documents when a version is named.
        let unreadable = |l: &str| {
            let mut words = l.split_whitespace();
            match words.next() {
                Some("%YAML") => words.next() != Some("1.1"),
                Some("%TAG") => false,
                Some(w) => w.starts_with('%'),
                None => false,
            }
        };
        if let Some(n) = text.lines().position(unreadable) {
            return Err(err_at(
                n + 1,
                0,
                "sops cannot read a file with this directive; remove the line",
            ));
        }
        let mut line_starts: Vec<usize> = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        // go-yaml reads some lines saphyr refuses: saphyr reads them padded, up to a
        // bound, and the latest error stands.
        let mut pads = Pads::default();
        let mut padded = String::new();
        let mut p = loop {
            let input = if pads.is_empty() { text } else { &padded };
            let mut p = Parse::new(text, input, &pads, offsets.as_deref(), line_starts);
            let Err(err) = p.run() else {
                break p;
            };
            let scan_error = p.scan_error.take();
            line_starts = std::mem::take(&mut p.line_starts);
            drop(p);
            let input = if pads.is_empty() { text } else { &padded };
            let fixed = scan_error.is_some_and(|(line, col, info)| {
                pads.fixes() < yaml_lenient::MAX_FIXES && pads.fix(text, input, line, col, &info)
            });
            if !fixed {
                return Err(err);
            }
            padded = pads.apply(text);
        };
        p.find_comments();
        let indent = p.indent.unwrap_or(2);
        for d in &mut p.docs {
            d.indent = indent;
        }
        let nonstring_key = p.nonstring_key;
        let (mut leaves, docs, mut constructs, foreign) =
            (p.leaves, p.docs, p.constructs, p.foreign);
        leaves.shrink_to_fit();
        constructs.sort_by_key(|c| c.0);
        let doc = Document {
            text: source,
            leaves,
            docs,
            constructs,
            foreign,
        };
        // An encrypted file holding one still opens (coffer wrote such files before).
        if let Some((pos, ty, key)) = nonstring_key.filter(|_| !doc.is_encrypted()) {
            let line = doc.line_of(pos);
            let col = doc.text[..pos].rfind('\n').map_or(pos, |nl| pos - nl - 1);
            let (key, quoted) = match key.as_str() {
                "" => ("(empty)", "\"\"".to_string()),
                key => (key, format!("\"{key}\"")),
            };
            let what = match ty {
                ScalarType::Null => "null",
                ScalarType::Int => "an integer",
                ScalarType::Float => "a float",
                ScalarType::Bool => "a boolean",
                _ => "a time",
            };
            return Err(err_at(
                line,
                col,
                format!("the key {key} is {what} to sops (go-yaml), which takes only string keys: quote it ({quoted}) to mean the string"),
            ));
        }
        Ok(doc)
    }

    fn render_plain(
        &self,
        doc: &Document,
        leaf: &Leaf,
        ty: ScalarType,
        value: &str,
    ) -> Result<String, String> {
        let indent = doc.docs.first().map_or(2, |d| d.indent);
        Ok(match ty {
            ScalarType::Comment if leaf.style.quote == Quote::Item => {
                format!("#{}", value.replace('\n', " "))
            }
            ScalarType::Comment => value.replace('\n', " "),
            ScalarType::Int => value.to_string(),
            ScalarType::Float => yaml_float(value),
            ScalarType::Time => value.to_string(),
            ScalarType::Bool => match value {
                "true" | "false" | "TRUE" | "FALSE" => value.to_string(),
                other => crate::scalar::parse_bool(other)
                    .unwrap_or(false)
                    .to_string(),
            },
            ScalarType::Null => "null".to_string(),
            ScalarType::Str | ScalarType::Bytes if leaf.style.quote == Quote::Block => {
                match BlockHeader::of(doc, leaf).and_then(|b| b.render(value)) {
                    Some(block) => block,
                    None => render_str(value, leaf.style, indent),
                }
            }
            ScalarType::Str | ScalarType::Bytes => render_str(value, leaf.style, indent),
        })
    }

    fn enc_quotes(&self, doc: &Document, leaf: &Leaf) -> (String, &'static str) {
        match leaf.style.quote {
            Quote::Double => ("\"".into(), "\""),
            Quote::Single => ("'".into(), "'"),
            // `ENC[...]` holds commas and brackets, which end a plain scalar in flow
            // context; single quotes there stand for "was plain" (see `render_str`).
            _ if leaf.style.flow => ("'".into(), "'"),
            // A block scalar keeps its header and indentation around the ciphertext,
            // which go-yaml reads as the block's one line.
            Quote::Block => match BlockHeader::of(doc, leaf) {
                Some(b) => (format!("{}\n{}", b.header, " ".repeat(b.indent)), ""),
                None => (String::new(), ""),
            },
            _ => (String::new(), ""),
        }
    }

    fn render_metadata(
        &self,
        doc: &Document,
        doc_index: usize,
        meta: &MetaValue,
    ) -> (usize, String) {
        let d = &doc.docs[doc_index];
        let text = doc.text.as_str();
        // At the column of the document's keys: a block root mapping may be indented.
        let col = match &d.root {
            Node::Map(entries) => entries.first().map_or(0, |e| {
                let line_start = text[..e.at].rfind('\n').map_or(0, |i| i + 1);
                let before = &text[line_start..e.at];
                if before.bytes().all(|b| b == b' ') {
                    before.len()
                } else {
                    0
                }
            }),
            _ => 0,
        };
        let mut block = String::new();
        yaml_entry(&mut block, "sops", &Value::from_meta(meta), col, d.indent);
        let pos = d.end;
        (pos, crate::tree::lines_at(text, pos, block))
    }

    fn canonical(&self, doc: &Document, value: &LeafText) -> Result<Zeroizing<String>, String> {
        let mut w = Canonical {
            doc,
            value,
            out: Zeroizing::new(String::new()),
            comments: doc.comments(),
            next: 0,
        };
        for (n, d) in doc.docs.iter().enumerate() {
            if n > 0 {
                w.out.push_str("---\n");
            }
            if let Node::Map(entries) = &d.root {
                w.map(entries, 0)?;
            }
            w.flush(d.end.max(1), 0);
        }
        w.flush(usize::MAX, 0);
        Ok(w.out)
    }

    fn emit(&self, value: &Value) -> Result<Zeroizing<String>, String> {
        let mut out = Zeroizing::new(String::new());
        match value {
            Value::Map(entries) => {
                for (k, v) in entries {
                    yaml_entry(&mut out, k, v, 0, 4);
                }
                if entries.is_empty() {
                    out.push_str("{}\n");
                }
            }
            Value::Seq(items) if !items.is_empty() => {
                for item in items {
                    yaml_item(&mut out, item, 0, 4);
                }
            }
            other => {
                out.push_str(&yaml_scalar_or_flow(other));
                out.push('\n');
            }
        }
        Ok(out)
    }
}

/// A float as YAML text that reads back as a float: its own spelling when that does,
/// else go-yaml's (`1.5e+10`), with `.0` where that would read back as an int.
fn yaml_float(v: &str) -> String {
    match v {
        "+Inf" | "Inf" | "inf" | "+inf" => return ".inf".into(),
        "-Inf" | "-inf" => return "-.inf".into(),
        "NaN" | "nan" => return ".nan".into(),
        _ => {}
    }
    if resolve_plain(v) == ScalarType::Float {
        return v.to_string();
    }
    match crate::scalar::parse_float(v) {
        Some(f) => {
            let g = crate::scalar::format_float_g(f);
            if resolve_plain(&g) == ScalarType::Float {
                g
            } else {
                format!("{g}.0")
            }
        }
        None => v.to_string(),
    }
}

/// A decrypted string, in the style the source used where that style can hold it.
pub(crate) fn render_str(s: &str, style: Style, indent: usize) -> String {
    let block_ok = !style.flow && block_representable(s);
    // In flow context an encrypted plain value had to be quoted; single quotes mark it.
    let quote = if style.flow && style.quote == Quote::Single {
        Quote::Plain
    } else {
        style.quote
    };
    match quote {
        Quote::Double => double_quoted(s),
        Quote::Single if !s.contains('\n') && !s.chars().any(char::is_control) => {
            format!("'{}'", s.replace('\'', "''"))
        }
        Quote::Block if block_ok => block_literal(s, style.owner_col + indent),
        _ if plain_safe(s, style.flow) => s.to_string(),
        _ if s.contains('\n') && block_ok => block_literal(s, style.owner_col + indent),
        _ if style.flow && !s.contains('\n') && !s.chars().any(char::is_control) => {
            format!("'{}'", s.replace('\'', "''"))
        }
        _ => double_quoted(s),
    }
}

/// A block scalar's header (`|`, `|-`, `|+`, `>`, `>-`, `>+`) and the indentation of
/// its first content line, as they stand in the text. A header with an explicit
/// indentation (`|2`) is not kept: its content may start with spaces of its own.
struct BlockHeader<'t> {
    header: &'t str,
    indent: usize,
}

impl<'t> BlockHeader<'t> {
    fn of(doc: &'t Document, leaf: &Leaf) -> Option<BlockHeader<'t>> {
        let text = doc.text.as_str();
        let region = text.get(leaf.span.clone())?;
        let header_end = region.find('\n')?;
        let header = region[..header_end].trim_end();
        if !matches!(header, "|" | "|-" | "|+" | ">" | ">-" | ">+") {
            return None;
        }
        // Within the block: one holding only blank lines has no line to go by.
        let first = region[header_end + 1..]
            .lines()
            .find(|l| !l.trim().is_empty())?;
        let indent = first.len() - first.trim_start_matches(' ').len();
        (indent > 0).then_some(BlockHeader { header, indent })
    }

    /// `s` under this header, if the header holds it as it is: the chomping says how
    /// many final line breaks it has, and a folded block holds one line only.
    fn render(&self, s: &str) -> Option<String> {
        let body = s.trim_end_matches('\n');
        let newlines = s.len() - body.len();
        let fits = match &self.header[1..] {
            "-" => newlines == 0,
            "" => newlines == 1,
            _ => newlines >= 1,
        };
        let folded = self.header.starts_with('>');
        if !fits || !block_representable(s) || (folded && body.contains('\n')) {
            return None;
        }
        let mut out = self.header.to_string();
        block_lines(&mut out, body, newlines, self.indent);
        Some(out)
    }
}

/// A block scalar's content after its header: `body`'s lines at `indent`, then the
/// final line breaks past the first (the layout supplies that one).
fn block_lines(out: &mut String, body: &str, newlines: usize, indent: usize) {
    let pad = " ".repeat(indent);
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.push_str(&pad);
            out.push_str(line);
        }
    }
    for _ in 1..newlines.max(1) {
        out.push('\n');
    }
}

fn block_representable(s: &str) -> bool {
    let body = s.trim_end_matches('\n');
    // The first line with content sets the block's indentation: it may not start with
    // a space or tab of its own.
    let first = body.trim_start_matches('\n');
    !body.is_empty()
        && !first.starts_with(' ')
        && !first.starts_with('\t')
        && !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t')
        && !s.contains('\r')
}

/// A literal block scalar without its final line break (the layout supplies that one).
fn block_literal(s: &str, indent: usize) -> String {
    let body = s.trim_end_matches('\n');
    let newlines = s.len() - body.len();
    let chomp = match newlines {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let mut out = format!("|{chomp}");
    block_lines(&mut out, body, newlines, indent);
    out
}

impl Parse<'_> {
    fn run(&mut self) -> Result<(), super::SyntaxError> {
        let mut parser = Parser::new_from_str(self.input);
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

            // Inside the `sops` block: build the metadata tree and nothing else.
            if meta_start.is_some() {
                if meta_stack.len() >= super::MAX_DEPTH {
                    return Err(err_at(
                        span.start.line(),
                        span.start.col(),
                        format!("nested more than {} levels deep", super::MAX_DEPTH),
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
                    self.occupied.push(start..end);
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
                        Some(Frame::Map { mut entries, .. }) => {
                            entries.shrink_to_fit();
                            Node::Map(entries)
                        }
                        _ => Node::Map(Vec::new()),
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
                    let copy = self.copy_node(&node, &base, &target).map_err(|m| at(&m))?;
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
                    if stack.len() >= super::MAX_DEPTH {
                        return Err(err_at(
                            span.start.line(),
                            span.start.col(),
                            format!("nested more than {} levels deep", super::MAX_DEPTH),
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
                            if k.0 == "sops" {
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
                            entries: Vec::new(),
                            key: None,
                            container: id,
                        }
                    } else {
                        Frame::Seq {
                            items: Vec::new(),
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
                        Some(Frame::Map { mut entries, .. }) => {
                            entries.shrink_to_fit();
                            Node::Map(entries)
                        }
                        Some(Frame::Seq { mut items, .. }) => {
                            items.shrink_to_fit();
                            Node::Seq(items)
                        }
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
                            path: Vec::new(),
                            col: 0,
                            parent: None,
                            flow: false,
                            end: usize::MAX,
                        });
                        stack.push(Frame::Map {
                            entries: Vec::new(),
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
                        if self.containers[container].flow && self.foreign.is_none() {
                            let end = match self.text.as_bytes().get(range.start) {
                                Some(&q @ (b'"' | b'\'')) => quoted_end(self.text, range.start, q),
                                _ => None,
                            }
                            .unwrap_or(range.end);
                            let after = &self.text[end..];
                            let rest = after.trim_start_matches([' ', '\t', '\r', '\n']);
                            if rest.starts_with(':')
                                && after[..after.len() - rest.len()].contains('\n')
                            {
                                self.foreign = Some((
                                    range.start,
                                    "a flow mapping key with its `:` on the next line (sops cannot read it)",
                                ));
                            }
                        }
                        self.note_item(&stack, range.start);
                        self.occupied.push(range.clone());
                        last_content_end = last_content_end.max(range.end);
                        if let Some(Frame::Map { key, .. }) = stack.last_mut() {
                            // The scanner's string keeps spare room: keep the key alone.
                            *key = Some((String::from(&*value), range.start));
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
                    let end = self.leaves[idx].span.end;
                    last_content_end = last_content_end.max(end);
                    attach(&mut stack, Node::Leaf(idx), end);
                }
            }
        }
        if self.docs.is_empty() {
            // No document, only comments or an end marker: the metadata is the document.
            // After a `...` libyaml wants a `---` first, so it goes before the marker.
            let end = match self.text.lines().position(|l| l == "...") {
                Some(n) => self.line_starts[n],
                None => self.text.len(),
            };
            self.docs.push(Doc {
                root: Node::Map(Vec::new()),
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
    fn copy_node(
        &mut self,
        node: &Node,
        base: &[String],
        target: &[String],
    ) -> Result<Node, String> {
        Ok(match node {
            Node::Leaf(i) => {
                // go-yaml bounds expansion too: a few lines must not grow without end.
                self.copied += 1;
                if self.copied > 10_000 && self.copied > 10 * (self.leaves.len() - self.copied) {
                    return Err("aliases expand to too many values (more than ten copies for each value written)".into());
                }
                let l = &self.leaves[*i];
                let mut path = Vec::with_capacity(target.len() + l.path.len() - base.len());
                path.extend_from_slice(target);
                path.extend_from_slice(l.path.get(base.len()..).unwrap_or_default());
                let copy = Leaf {
                    kind: l.kind,
                    path,
                    span: l.span.clone(),
                    ty: l.ty,
                    value: l.value.clone(),
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
                            at: e.at,
                            end: e.end,
                            value: self.copy_node(&e.value, base, target)?,
                        })
                    })
                    .collect::<Result<_, String>>()?,
            ),
            Node::Seq(items) => Node::Seq(
                items
                    .iter()
                    .map(|n| self.copy_node(n, base, target))
                    .collect::<Result<_, String>>()?,
            ),
        })
    }

    /// The key path of a collection about to be opened under the current frame.
    fn child_path(&self, stack: &[Frame]) -> Vec<String> {
        match stack.last() {
            None => Vec::new(),
            Some(Frame::Map { key, container, .. }) => {
                extended(&self.containers[*container].path, key)
            }
            Some(Frame::Seq { container, .. }) => self.containers[*container].path.clone(),
        }
    }

    fn note_item(&mut self, stack: &[Frame], pos: usize) {
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
        let line = self.line_of(pos);
        let col = self.col(pos);
        self.items.push(Item {
            pos,
            line,
            col,
            container,
        });
    }

    /// sops writes a comment that stands between list items as an item of its own,
    /// `- ENC[…,type:comment]`: read it back as the comment it is.
    fn item_comment(&mut self, stack: &[Frame], value: &str, range: &Range<usize>) -> bool {
        let container = frame_container(stack.last().expect("inside a sequence"));
        if self.containers[container].flow
            || !value.starts_with("ENC[AES256_GCM,")
            || !value.ends_with(",type:comment]")
        {
            return false;
        }
        let dash = self.items.last().map_or(range.start, |i| i.pos);
        self.occupied.push(dash..range.end);
        self.leaves.push(Leaf {
            kind: LeafKind::Comment,
            path: self.containers[container].path.clone(),
            span: dash..range.end,
            ty: ScalarType::Comment,
            value: Zeroizing::new(value.as_bytes().to_vec()),
            style: Style {
                quote: Quote::Item,
                ..Style::default()
            },
        });
        true
    }

    fn scalar_leaf(
        &mut self,
        stack: &[Frame],
        value: &str,
        style: ScalarStyle,
        tag: Option<&saphyr_parser::Tag>,
        raw: Range<usize>,
        span: &Span,
    ) -> Result<usize, super::SyntaxError> {
        let container = frame_container(stack.last().expect("scalar inside a collection"));
        let flow = self.containers[container].flow;
        let path = match stack.last() {
            Some(Frame::Map { key, .. }) => extended(&self.containers[container].path, key),
            _ => self.containers[container].path.clone(),
        };
        let owner_col = self.items.last().map_or(0, |i| i.col);
        // Anchors and tags sit inside the span; the value's own text starts after them.
        let mut start = raw.start;
        let mut tag_at = None;
        if !matches!(style, ScalarStyle::Literal | ScalarStyle::Folded) {
            loop {
                let rest = &self.text[start..raw.end];
                if rest.starts_with('!') {
                    tag_at = Some(start);
                }
                if rest.starts_with('&') || rest.starts_with('!') {
                    let skip = rest.find([' ', '\t', '\n']).unwrap_or(rest.len());
                    // libyaml ends an anchor name at anything but [A-Za-z0-9_-].
                    let odd = |c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if rest.starts_with('&')
                        && rest[1..skip].contains(odd)
                        && self.foreign.is_none()
                    {
                        self.foreign = Some((start, "an anchor name that sops reads differently"));
                    }
                    start += skip;
                    start += self.text[start..raw.end].len()
                        - self.text[start..raw.end].trim_start().len();
                } else {
                    break;
                }
            }
        }
        // The parser's span of a quoted scalar can run on over a comment after it on
        // the line: the scalar ends at its closing quote.
        let quoted_end = |q: u8| quoted_end(self.text, start, q).unwrap_or(raw.end);
        let (quote, span_range) = match style {
            ScalarStyle::Plain => (Quote::Plain, start..raw.end),
            ScalarStyle::SingleQuoted => (Quote::Single, start..quoted_end(b'\'')),
            ScalarStyle::DoubleQuoted => (Quote::Double, start..quoted_end(b'"')),
            ScalarStyle::Literal | ScalarStyle::Folded => (
                Quote::Block,
                self.block_range(&raw, value, owner_col)
                    .map_err(|m| err_at(span.start.line(), span.start.col(), m))?,
            ),
        };
        // A comment after the indicator sits inside the span that the ciphertext
        // replaces: it is found as a comment, and the layout cannot be kept.
        let mut occupied = raw.start.min(span_range.start)..span_range.end;
        if quote == Quote::Block {
            let header_end = self.text[span_range.start..]
                .find('\n')
                .map_or(self.text.len(), |i| span_range.start + i);
            let header = &self.text[span_range.start..header_end];
            let code = without_comment(header).len();
            if code < header.len() && header_end < span_range.end {
                let comment = span_range.start + code;
                self.foreign
                    .get_or_insert((comment, "a comment after a block scalar's indicator"));
                self.occupied.push(occupied.start..comment);
                occupied = header_end..span_range.end;
            }
        }
        let construct = match style {
            ScalarStyle::Literal => Some("literal block scalar"),
            ScalarStyle::Folded => Some("folded block scalar"),
            _ if tag.is_some() => Some("tagged value"),
            _ if self.text[raw.clone()].contains('\n') => Some("value over several lines"),
            _ => None,
        };
        let (ty, tagged) = scalar_type(style, tag, value)
            .map_err(|m| err_at(span.start.line(), span.start.col(), m))?;
        let span_range = match (&tagged, tag_at) {
            (Some(_), Some(at)) if ty != ScalarType::Null => at..span_range.end,
            _ => span_range,
        };
        if let Some(what) = construct {
            self.constructs.push((span_range.start, what));
        }
        let mut stored = match tagged {
            Some(stored) => stored,
            None if ty == ScalarType::Str => value.to_string(),
            None => stored_form(ty, value),
        };
        // A block scalar that ends the text without a line break has none in its value
        // (YAML 1.2, 8.1.1.2; go-yaml and so sops read it so); saphyr adds one.
        if quote == Quote::Block
            && span_range.end == self.text.len()
            && !self.text.ends_with('\n')
            && stored.ends_with('\n')
        {
            stored.pop();
        }
        // A ciphertext in a block scalar (`|` + `ENC[…]`) is the ciphertext: its
        // chomping added the line break.
        if quote == Quote::Block {
            let enc = stored.trim_end_matches('\n');
            if enc.len() < stored.len() && crate::cipher::is_encrypted(enc) {
                stored.truncate(enc.len());
            }
        }
        if ty == ScalarType::Int && stored.parse::<i64>().is_err() {
            return Err(err_at(span.start.line(), span.start.col(), super::BIG_INT));
        }
        self.occupied.push(occupied);
        self.leaves.push(Leaf {
            kind: LeafKind::Value,
            path,
            span: span_range,
            ty,
            value: Zeroizing::new(stored.into_bytes()),
            style: Style {
                quote,
                owner_col,
                flow,
            },
        });
        Ok(self.leaves.len() - 1)
    }

    /// The bytes a block scalar occupies: from its `|`/`>` indicator to the end of its
    /// last content line. Trailing blank lines belong to the layout, except with the
    /// keep (`+`) indicator, where they are part of the value.
    fn block_range(
        &self,
        raw: &Range<usize>,
        value: &str,
        _owner_col: usize,
    ) -> Result<Range<usize>, &'static str> {
        let start = self
            .block_indicator(raw.start)
            .ok_or("cannot find the block scalar indicator")?;
        let header_end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i);
        let content_start = (header_end + 1).min(self.text.len());
        // The region ends at the last line break inside the raw span, or with the
        // text when the block is its last line.
        let region_end = match self.text[..raw.end.min(self.text.len())].rfind('\n') {
            _ if raw.end >= self.text.len() => self.text.len(),
            Some(i) if i + 1 >= content_start => i + 1,
            _ => content_start,
        };
        let region = &self.text[content_start..region_end.max(content_start)];
        let keep = without_comment(&self.text[start..header_end]).contains('+');
        let end = if keep {
            // Up to (not including) the final line break.
            if region.ends_with('\n') {
                region_end - 1
            } else {
                region_end
            }
        } else {
            // End of the last line that has content.
            let trimmed = region.trim_end_matches(|c: char| c.is_whitespace());
            if trimmed.is_empty() && value.is_empty() {
                header_end
            } else {
                content_start + trimmed.len()
            }
        };
        Ok(start..end.max(start + 1))
    }

    /// The `|` or `>` of the block scalar whose event starts at `pos`: on the header
    /// line before the content (blank lines between are content), or after the node's
    /// tag or anchor when the event starts there.
    fn block_indicator(&self, pos: usize) -> Option<usize> {
        let before = &self.text[..pos];
        let line = self.line_start(pos);
        if self.text[line..pos].trim().is_empty() {
            let mut end = line;
            while end > 0 {
                let start = self.text[..end - 1].rfind('\n').map_or(0, |i| i + 1);
                let l = without_comment(&before[start..end - 1]);
                if !l.trim().is_empty() {
                    if let Some(i) = l.trim_end().rfind(['|', '>']) {
                        let after = &l.trim_end()[i + 1..];
                        if after
                            .chars()
                            .all(|c| c.is_ascii_digit() || c == '+' || c == '-')
                        {
                            return Some(start + i);
                        }
                    }
                    break;
                }
                end = start;
            }
        }
        // Forward, over the node's properties.
        let b = self.text.as_bytes();
        let mut i = pos;
        loop {
            while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
                i += 1;
            }
            if i < b.len() && matches!(b[i], b'!' | b'&') {
                while i < b.len() && !matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
                    i += 1;
                }
                continue;
            }
            break;
        }
        (i < b.len() && matches!(b[i], b'|' | b'>')).then_some(i)
    }

    /// Find every comment outside scalars and metadata, and give it the path of the
    /// container sops's YAML library would attach it to.
    fn find_comments(&mut self) {
        self.occupied.sort_by_key(|r| r.start);
        let text = self.text;
        let bytes = text.as_bytes();
        let mut occ = 0usize;
        let mut comments = Vec::new();
        let mut pos = 0usize;
        let mut line_has_content = false;
        let mut line_no = 0usize;
        while pos < bytes.len() {
            while occ < self.occupied.len() && self.occupied[occ].end <= pos {
                occ += 1;
            }
            if occ < self.occupied.len() && self.occupied[occ].start <= pos {
                // Inside a scalar: jump over it, counting the lines it spans.
                let end = self.occupied[occ].end.max(pos + 1);
                line_no += text[pos..end].matches('\n').count();
                line_has_content = !text[pos..end].ends_with('\n');
                pos = end;
                continue;
            }
            match bytes[pos] {
                b'\n' => {
                    line_no += 1;
                    line_has_content = false;
                    pos += 1;
                }
                b'#' if pos == 0 || matches!(bytes[pos - 1], b' ' | b'\t' | b'\n') => {
                    let end = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
                    let end = if end > pos && bytes[end - 1] == b'\r' {
                        end - 1
                    } else {
                        end
                    };
                    comments.push((pos, end, line_no, line_has_content));
                    pos = end;
                }
                b'\t' => {
                    if self.foreign.is_none()
                        && tab_go_yaml_refuses(text, self.line_start(pos), pos)
                    {
                        self.foreign = Some((
                            pos,
                            "a tab after `-`, `?` or `:`, or in indentation (sops cannot read it)",
                        ));
                    }
                    pos += 1;
                }
                b' ' | b'\r' => pos += 1,
                _ => {
                    line_has_content = true;
                    pos += 1;
                }
            }
        }
        for (start, end, line, trailing) in comments {
            let container = self.comment_container(start, line, trailing);
            let path = container
                .map(|c| self.containers[c].path.clone())
                .unwrap_or_default();
            self.leaves.push(Leaf {
                kind: LeafKind::Comment,
                path,
                span: start + 1..end,
                ty: ScalarType::Comment,
                value: Zeroizing::new(self.text.as_bytes()[start + 1..end].to_vec()),
                style: Style::default(),
            });
        }
    }

    fn comment_container(&self, pos: usize, line: usize, trailing: bool) -> Option<usize> {
        let idx = self.items.partition_point(|i| i.pos < pos);
        let prev = idx.checked_sub(1).map(|i| &self.items[i]);
        // A collection and its first key start at the same place; the comment belongs
        // to the innermost of them, as in go-yaml.
        let next = self.items[idx..]
            .iter()
            .take_while(|i| i.pos == self.items[idx].pos)
            .last();
        if trailing {
            if let Some(p) = prev.filter(|p| p.line == line) {
                return Some(p.container);
            }
        }
        let col = self.col(pos);
        if let Some(n) = next {
            if col <= n.col || prev.is_none() {
                return Some(n.container);
            }
        }
        let mut c = prev?.container;
        // A comment before a flow collection's closing bracket is inside it, wherever
        // it stands (go-yaml and so sops read it so).
        let open_flow = |c: &Container| c.flow && pos < c.end;
        while self.containers[c].col > col && !open_flow(&self.containers[c]) {
            match self.containers[c].parent {
                Some(p) => c = p,
                None => break,
            }
        }
        Some(c)
    }
}

/// libyaml (and so go-yaml and sops) refuses a tab that separates a block indicator
/// (`-`, `?`, a `:` that starts its line) from what follows, or that stands in a
/// line's indentation (even on a blank line).
fn tab_go_yaml_refuses(text: &str, line_start: usize, pos: usize) -> bool {
    let before = text[line_start..pos].trim_end_matches([' ', '\t']);
    before.is_empty()
        || (before.ends_with(['-', '?', ':'])
            && before
                .chars()
                .all(|c| matches!(c, ' ' | '\t' | '-' | '?' | ':'))
            && (before.len() == 1
                || before[..before.len() - 1].ends_with([' ', '\t'])
                || !before.ends_with(':')))
}

/// A header line without the comment that may end it (`#` after a space or tab).
fn without_comment(line: &str) -> &str {
    let b = line.as_bytes();
    match (1..b.len()).find(|&i| b[i] == b'#' && matches!(b[i - 1], b' ' | b'\t')) {
        Some(i) => &line[..i],
        None => line,
    }
}

/// Just past the bracket that closes a flow collection whose end saphyr reports at
/// `pos`: there for a sequence, before the blanks, `,` and comments that precede the
/// `}` of a mapping.
fn closing_bracket(text: &str, mut pos: usize) -> usize {
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
fn quoted_end(text: &str, start: usize, quote: u8) -> Option<usize> {
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
fn scalar_type(
    style: ScalarStyle,
    tag: Option<&saphyr_parser::Tag>,
    value: &str,
) -> Result<(ScalarType, Option<String>), String> {
    let core = tag
        .filter(|t| t.is_yaml_core_schema())
        .map(|t| t.suffix.as_str());
    Ok(match (style, core) {
        // go-yaml (so sops) stores the decoded bytes, which coffer's layout cannot hold
        // as written.
        (_, Some("binary")) => return Err("!!binary values are not supported: sops stores the decoded bytes; store the text without the tag".into()),
        (_, Some("str")) => (ScalarType::Str, None),
        // go-yaml decodes the value to its type, and sops cannot read the tag before a
        // ciphertext: the tag goes with the value, which is stored typed.
        (_, Some(t @ ("int" | "float" | "bool" | "timestamp" | "null"))) => {
            let (ty, stored) = super::yaml_resolve::resolve_tagged(t, value)?;
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
fn after_properties(mut s: &str) -> &str {
    while s.starts_with(['!', '&']) {
        let end = s.find([' ', '\t', '\n', '\r']).unwrap_or(s.len());
        s = s[end..].trim_start();
    }
    s
}

fn frame_container(f: &Frame) -> usize {
    match f {
        Frame::Map { container, .. } | Frame::Seq { container, .. } => *container,
    }
}

/// `path` and the key being read, with no spare room (a path per leaf adds up).
fn extended(path: &[String], key: &Option<(String, usize)>) -> Vec<String> {
    let mut p = Vec::with_capacity(path.len() + 1);
    p.extend_from_slice(path);
    p.push(key.as_ref().map(|k| k.0.clone()).unwrap_or_default());
    p
}

fn attach(stack: &mut [Frame], node: Node, end: usize) {
    match stack.last_mut() {
        Some(Frame::Map { entries, key, .. }) => {
            let (key, at) = key.take().unwrap_or_default();
            entries.push(Entry {
                key,
                at,
                end,
                value: node,
            });
        }
        Some(Frame::Seq { items, .. }) => items.push(node),
        None => {}
    }
}

/// Feed one event into the metadata tree; returns the tree when its root closes.
fn capture_meta(
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

// Fresh serialisation, for format conversion, metadata blocks and the canonical layout.

/// True when `s` can be written as a plain YAML scalar and read back as the same string.
pub(crate) fn plain_safe(s: &str, flow: bool) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if resolve_plain(s) != ScalarType::Str || looks_like_timestamp(s) {
        return false;
    }
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        // `-foo`, `?foo` and `:foo` are plain when not followed by a space, but keep it simple.
        let second = s[first.len_utf8()..].chars().next();
        if !(matches!(first, '-' | '?' | ':') && second.is_some_and(|c| !c.is_whitespace())) {
            return false;
        }
    }
    if s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) || s.ends_with(':') {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.contains(":\t") || s.contains("\t#") {
        return false;
    }
    if s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    if flow && s.contains([',', '[', ']', '{', '}']) {
        return false;
    }
    !s.chars().any(|c| c.is_control() || c == '\u{feff}')
}

/// YAML resolves unquoted dates to timestamps; sops quotes them, and so do we.
fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
}

pub(crate) fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            '\u{1b}' => out.push_str("\\e"),
            '\u{85}' => out.push_str("\\N"),
            '\u{a0}' => out.push_str("\\_"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if c.is_control() || c == '\u{feff}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// YAML 1.1's booleans, which go-yaml quotes in what it writes anew so that older
/// readers take them as text too. (A file's own plain `yes` stays as it is.)
fn old_bool(s: &str) -> bool {
    matches!(
        s,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "on"
            | "On"
            | "ON"
            | "off"
            | "Off"
            | "OFF"
    )
}

fn yaml_key(k: &str) -> String {
    if plain_safe(k, false) && !old_bool(k) {
        k.to_string()
    } else {
        double_quoted(k)
    }
}

fn yaml_scalar(ty: ScalarType, s: &str, block_indent: usize) -> String {
    match ty {
        ScalarType::Null => "null".into(),
        ScalarType::Bool => crate::scalar::parse_bool(s).unwrap_or(false).to_string(),
        ScalarType::Int => s.to_string(),
        ScalarType::Float => yaml_float(s),
        ScalarType::Time => s.to_string(),
        _ if old_bool(s) => double_quoted(s),
        _ => {
            let style = crate::tree::Style {
                quote: crate::tree::Quote::Plain,
                owner_col: block_indent,
                flow: false,
            };
            render_str(s, style, 0)
        }
    }
}

/// A scalar, or an empty collection, on one line.
pub(crate) fn yaml_scalar_or_flow(v: &Value) -> String {
    match v {
        Value::Map(_) => "{}".into(),
        Value::Seq(_) => "[]".into(),
        Value::Scalar(ty, s) => yaml_scalar(*ty, s, 0),
    }
}

/// `key: value` at `indent` spaces, nested collections indented by `unit`.
pub(crate) fn yaml_entry(out: &mut String, key: &str, v: &Value, indent: usize, unit: usize) {
    entry(out, key, v, indent, unit, unit);
}

/// `yaml_entry` with the indent of a list under the key: go-yaml indents it by the unit,
/// but by 2 in a mapping that is itself a list item (sops's `key_groups`).
fn entry(out: &mut String, key: &str, v: &Value, indent: usize, unit: usize, list_step: usize) {
    let pad = " ".repeat(indent);
    out.push_str(&pad);
    out.push_str(&yaml_key(key));
    out.push(':');
    match v {
        Value::Map(e) if !e.is_empty() => {
            out.push('\n');
            for (k, v) in e {
                yaml_entry(out, k, v, indent + unit, unit);
            }
        }
        Value::Seq(items) if !items.is_empty() => {
            out.push('\n');
            for item in items {
                yaml_item(out, item, indent + list_step, unit);
            }
        }
        Value::Scalar(ty, s) => {
            out.push(' ');
            out.push_str(&yaml_scalar(*ty, s, indent + unit));
            out.push('\n');
        }
        empty => {
            out.push(' ');
            out.push_str(&yaml_scalar_or_flow(empty));
            out.push('\n');
        }
    }
}

pub(crate) fn yaml_item(out: &mut String, v: &Value, indent: usize, unit: usize) {
    let pad = " ".repeat(indent);
    match v {
        Value::Map(e) if !e.is_empty() => {
            let mut inner = String::new();
            for (k, v) in e {
                entry(&mut inner, k, v, indent + 2, unit, 2);
            }
            out.push_str(&pad);
            out.push_str("- ");
            out.push_str(&inner[indent + 2..]);
        }
        Value::Seq(items) if !items.is_empty() => {
            let mut inner = String::new();
            for item in items {
                yaml_item(&mut inner, item, indent + 2, unit);
            }
            out.push_str(&pad);
            out.push_str("- ");
            out.push_str(&inner[indent + 2..]);
        }
        Value::Scalar(ty, s) => {
            out.push_str(&pad);
            out.push_str("- ");
            out.push_str(&yaml_scalar(*ty, s, indent + 2));
            out.push('\n');
        }
        empty => {
            out.push_str(&pad);
            out.push_str("- ");
            out.push_str(&yaml_scalar_or_flow(empty));
            out.push('\n');
        }
    }
}

/// The canonical layout (go-yaml's, as sops writes it: block style, four spaces),
/// with each comment on a line of its own before what followed it in the source.
struct Canonical<'d, 'v> {
    doc: &'d Document,
    value: &'v LeafText<'v>,
    out: Zeroizing<String>,
    comments: Vec<usize>,
    next: usize,
}

const CANONICAL_INDENT: usize = 4;

impl Canonical<'_, '_> {
    /// Write the comments that stood before `pos`.
    fn flush(&mut self, pos: usize, indent: usize) {
        while let Some(&i) = self.comments.get(self.next) {
            let leaf = &self.doc.leaves[i];
            if leaf.span.start >= pos {
                break;
            }
            self.next += 1;
            let text = (self.value)(i).map(|(_, t)| t).unwrap_or_default();
            self.out.push_str(&" ".repeat(indent));
            self.out.push('#');
            self.out.push_str(&text.replace('\n', " "));
            self.out.push('\n');
        }
    }

    fn scalar(&self, i: usize, block_indent: usize) -> Result<String, String> {
        let (ty, text) = (self.value)(i)?;
        Ok(yaml_scalar(ty, &text, block_indent))
    }

    fn map(&mut self, entries: &[Entry], indent: usize) -> Result<(), String> {
        for e in entries {
            self.flush(e.at, indent);
            self.out.push_str(&" ".repeat(indent));
            self.out.push_str(&yaml_key(&e.key));
            self.out.push(':');
            self.value_after_key(&e.value, indent)?;
        }
        Ok(())
    }

    fn value_after_key(&mut self, node: &Node, indent: usize) -> Result<(), String> {
        match node {
            Node::Leaf(i) => {
                let s = self.scalar(*i, indent + CANONICAL_INDENT)?;
                self.out.push(' ');
                self.out.push_str(&s);
                self.out.push('\n');
            }
            Node::Map(e) if e.is_empty() => self.out.push_str(" {}\n"),
            Node::Seq(items) if items.is_empty() => self.out.push_str(" []\n"),
            Node::Map(e) => {
                self.out.push('\n');
                self.map(e, indent + CANONICAL_INDENT)?;
            }
            Node::Seq(items) => {
                self.out.push('\n');
                self.seq(items, indent + CANONICAL_INDENT)?;
            }
        }
        Ok(())
    }

    fn seq(&mut self, items: &[Node], indent: usize) -> Result<(), String> {
        for item in items {
            if let Some(pos) = self.doc.node_start(item) {
                self.flush(pos, indent);
            }
            self.out.push_str(&" ".repeat(indent));
            self.out.push_str("- ");
            match item {
                Node::Leaf(i) => {
                    let s = self.scalar(*i, indent + 2)?;
                    self.out.push_str(&s);
                    self.out.push('\n');
                }
                Node::Map(e) if e.is_empty() => self.out.push_str("{}\n"),
                Node::Seq(s) if s.is_empty() => self.out.push_str("[]\n"),
                // The first key or item goes on the dash's line: write the collection at
                // its own indentation, then take that indentation off its first line.
                Node::Map(e) => {
                    let at = self.out.len();
                    self.map(e, indent + 2)?;
                    self.out.replace_range(at..at + indent + 2, "");
                }
                Node::Seq(s) => {
                    let at = self.out.len();
                    self.seq(s, indent + 2)?;
                    self.out.replace_range(at..at + indent + 2, "");
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::check;
    use super::*;

    #[test]
    fn constructs() {
        let s = &YamlStore;
        check(s, "a: 1\nb: x\n", &["a int 1", "b str x"]);
        check(s, "a: 1\nb: x", &["a int 1", "b str x"]);
        check(
            s,
            "# head\na: x # trail\n",
            &["# head", "a str x", "# trail"],
        );
        check(s, "a:\n  b:\n    c: deep\n", &["a:b:c str deep"]);
        check(s, "l:\n  - x\n  - {k: v}\n", &["l str x", "l:k str v"]);
        check(
            s,
            "f: {x: 1, y: [a, \"b c\"]}\n",
            &["f:x int 1", "f:y str a", "f:y str b c"],
        );
        check(
            s,
            "q: 'it''s # no'\nd: \"t\\tq\"\n",
            &["q str it's # no", "d str t\tq"],
        );
        check(s, "q: 'x' # c\n", &["q str x", "# c"]);
        check(
            s,
            "lit: |\n  a\n  b\nn: 1\n",
            &["lit str a\nb\n", "n int 1"],
        );
        check(s, "lit: |-\n  a\n  b\nn: 1\n", &["lit str a\nb", "n int 1"]);
        check(s, "lit: |+\n  a\n\nn: 1\n", &["lit str a\n\n", "n int 1"]);
        check(s, "lit: |-\n  a\n  b", &["lit str a\nb"]);
        assert_eq!(
            super::super::table::read(s, "lit: |\t# c\n  a\n"),
            ["lit str a\n", "# c"]
        );
        check(
            s,
            "t: 2024-01-02T03:04:05Z\n",
            &["t time 2024-01-02T03:04:05Z"],
        );
        check(
            s,
            "f: 1.5e+10\ng: .inf\nb: true\nn: null\n",
            &[
                "f float 1.5e+10",
                "g float +Inf",
                "b bool true",
                "n null null",
            ],
        );
        check(s, "a: 1\r\nb: x\r\n", &["a int 1", "b str x"]);
        check(s, "---\na: 1\n...\n---\nb: 2\n", &["a int 1", "b int 2"]);
        check(s, "x: \"2024-01-02\"\n", &["x str 2024-01-02"]);
    }

    #[test]
    fn values_that_read_as_another_spelling() {
        // Read as the value they are; written back in the canonical spelling.
        assert_eq!(
            super::super::table::read(&YamlStore, "d: 2024-01-02\nh: 0x1F\n"),
            ["d time 2024-01-02T00:00:00Z", "h int 31"]
        );
        assert_eq!(
            super::super::table::read(&YamlStore, "m: a\n  b\nf: >\n  c\n  d\n"),
            ["m str a b", "f str c d\n"]
        );
        assert_eq!(
            super::super::table::rendered(&YamlStore, "s: !!str 12\n"),
            "s: !!str \"12\"\n"
        );
        // In a flow collection single quotes mark a value that was plain (see enc_quotes).
        assert_eq!(
            super::super::table::rendered(&YamlStore, "f: ['b c']\n"),
            "f: [b c]\n"
        );
    }

    #[test]
    fn refusals_name_the_line() {
        let err = |t: &str| super::super::table::refusal(&YamlStore, t).to_string();
        assert!(err("? [a]\n: b\n").starts_with("line 1, column 3: complex mapping keys"));
        assert!(err("a: 1\nb: 99999999999999999999\n").starts_with("line 2, column 4: an integer"));
        assert!(err("- a\n").contains("sequences are not supported"));
        assert!(err("&k a: 1\n*k : 2\n").contains("an alias (*name) as a mapping key"));
        let laughs = format!(
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n{}",
            (b'b'..=b'h')
                .map(|c| {
                    let prev = (c - 1) as char;
                    format!(
                        "{}: &{} [{}]\n",
                        c as char,
                        c as char,
                        vec![format!("*{prev}"); 10].join(", ")
                    )
                })
                .collect::<String>()
        );
        assert!(
            err(&laughs).contains("aliases expand to too many values"),
            "{}",
            err(&laughs)
        );
    }
}
