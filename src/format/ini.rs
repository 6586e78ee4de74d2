//! INI: `[section]` headers, `key = value` lines, `;` and `#` comments, as sops reads them
//! through go-ini. Values are paths `section:key:`; metadata lives in a `[sops]` section.

use std::ops::Range;

use zeroize::Zeroizing;

use super::dotenv::lines;
use super::{LeafText, Store};
use crate::tree::{
    own_value, Doc, Document, Entry, Key, Leaf, LeafKind, MetaValue, Node, Quote, ScalarType,
    Style, ThinVec, Value,
};

pub struct IniStore;

/// go-ini's name for keys that come before any section header.
const DEFAULT_SECTION: &str = "DEFAULT";

impl Store for IniStore {
    fn parse(&self, source: Zeroizing<Vec<u8>>) -> Result<Document, super::SyntaxError> {
        let source = super::text(source)?;
        let text: &str = &source;
        let mut leaves: Vec<Leaf> = Vec::new();
        let mut sections: Vec<(Key, usize, usize, ThinVec<Entry>)> = Vec::new();
        // The entries of the last section (the one keys go to: a section twice is
        // refused), made at their size once it ends: grown by doubling, a section of
        // ten keys would keep room for sixteen.
        let mut entries: Vec<Entry> = Vec::new();
        let end_section = |sections: &mut Vec<(Key, usize, usize, ThinVec<Entry>)>,
                           entries: &mut Vec<Entry>| {
            if let Some(last) = sections.last_mut() {
                last.3 = entries.drain(..).collect();
            }
        };
        // Where each section is in `sections`: a lookup per line, not a scan.
        let mut section_at: std::collections::HashMap<Key, usize> = Default::default();
        // The section's name, made once for its entry and its values' paths.
        let mut section = Key::from(DEFAULT_SECTION);
        let mut in_meta = false;
        let mut meta_items = Vec::new();
        let mut meta_start = None;
        // Comments belong to the section of whatever follows them (go-ini attaches a
        // comment to the next key or section); they are fixed up once that is known.
        let mut pending_comments: Vec<usize> = Vec::new();
        // Names met again (a section on each of its keys, `host` in every section) are
        // shared, not made again for each value.
        let mut names = crate::tree::KeyTable::default();
        // Counted first: a million lines collected by doubling would keep room for two.
        let mut all: Vec<(usize, &str)> =
            Vec::with_capacity(memchr::memchr_iter(b'\n', text.as_bytes()).count() + 1);
        all.extend(lines(text));
        // A leaf a line at most, but for a comment after a value.
        leaves.reserve(all.len());
        let mut i = 0;
        while i < all.len() {
            let (start, raw) = all[i];
            i += 1;
            let EntryLine { key, at, from } = match read_line(start, raw) {
                Line::Blank => continue,
                Line::Comment(_) if in_meta => continue,
                Line::Comment(span) => {
                    leaves.push(Leaf {
                        kind: LeafKind::Comment,
                        path: [section.clone()].into_iter().collect(),
                        place: span.into(),
                        ty: ScalarType::Comment,
                        own: None,
                        quoted: false,
                        style: Style::default(),
                    });
                    pending_comments.push(leaves.len() - 1);
                    continue;
                }
                Line::Header { name, end } => {
                    let name = name.map(str::to_string).ok_or_else(|| {
                        super::SyntaxError::line(
                            line_no(text, start),
                            "unterminated section header",
                        )
                    })?;
                    // go-ini, so sops, cannot read a file with one.
                    if name.is_empty() {
                        return Err(super::SyntaxError::line(
                        line_no(text, start),
                        "an empty section name ([]) is not supported: sops cannot read the file",
                    ));
                    }
                    // sops writes one [sops] section, last.
                    if meta_start.is_some() {
                        return Err(super::SyntaxError::line(
                            line_no(text, start),
                            "the [sops] section is not the last one",
                        ));
                    }
                    in_meta = name == "sops";
                    // Comments before the metadata belong to the data, not to `[sops]`.
                    if !in_meta {
                        for c in pending_comments.drain(..) {
                            leaves[c].path = [names.key(&name)].into_iter().collect();
                        }
                    }
                    if in_meta {
                        meta_start = Some(start);
                    }
                    // sops keeps both as sections of one name, go-ini and coffer merge them.
                    if let Some(&first) = section_at.get(name.as_str()).filter(|_| !in_meta) {
                        return Err(super::SyntaxError::line(
                            line_no(text, start),
                            format!(
                                "the section [{name}] appears twice (first at line {}): keep one",
                                line_no(text, sections[first].1)
                            ),
                        ));
                    }
                    section = names.key(&name);
                    if !in_meta {
                        section_at.insert(section.clone(), sections.len());
                        end_section(&mut sections, &mut entries);
                        sections.push((section.clone(), start, end, ThinVec::new()));
                    }
                    continue;
                }
                Line::Entry(entry) => entry.ok_or_else(|| {
                    super::SyntaxError::line(line_no(text, start), "expected key = value")
                })?,
            };
            let key = key.to_string();
            let read = read_value(text, &all, i - 1, from)?;
            i = read.next;
            let (value_start, vend) = (read.span.start, read.span.end);
            let comment = read.comment;
            let value = read.value;
            if in_meta {
                meta_items.push((key, value.replace("\\n", "\n")));
                continue;
            }
            for c in pending_comments.drain(..) {
                leaves[c].path = [section.clone()].into_iter().collect();
            }
            if !section_at.contains_key(&section) {
                section_at.insert(section.clone(), sections.len());
                end_section(&mut sections, &mut entries);
                sections.push((section.clone(), start, start, ThinVec::new()));
            }
            let (own, quoted) = own_value(text, &(value_start..vend), value);
            let key = names.key(&key);
            leaves.push(Leaf {
                kind: LeafKind::Value,
                path: [section.clone(), key.clone()].into_iter().collect(),
                place: (value_start..vend).into(),
                ty: ScalarType::Str,
                own,
                quoted,
                style: Style {
                    quote: Quote::Raw,
                    ..Style::default()
                },
            });
            let idx = leaves.len() - 1;
            // go-ini takes what follows a `;` or `#` in a value for a comment.
            if let Some(span) = comment {
                leaves.push(Leaf {
                    kind: LeafKind::Comment,
                    path: [section.clone()].into_iter().collect(),
                    own: None,
                    quoted: false,
                    place: span.into(),
                    ty: ScalarType::Comment,
                    style: Style::default(),
                });
            }
            sections[section_at[&section]].2 = vend;
            entries.push(Entry {
                key,
                place: (at..vend).into(),
                value: Node::Leaf(idx),
            });
        }
        end_section(&mut sections, &mut entries);
        let meta = match meta_start {
            None => None,
            Some(start) => Some((
                super::flatten::unflatten(&meta_items)?,
                vec![metadata_span(text, start)],
            )),
        };
        let root = Node::Map(
            sections
                .into_iter()
                .map(|(key, at, end, e)| Entry {
                    key,
                    place: (at..end).into(),
                    value: Node::Map(e),
                })
                .collect(),
        );
        let doc = Doc {
            root,
            meta,
            end: text.len(),
            indent: 0,
            indent_char: ' ',
        };
        Ok(Document {
            text: source,
            leaves,
            docs: vec![doc],
            constructs: Vec::new(),
            foreign: None,
        })
    }

    fn render_plain(
        &self,
        doc: &Document,
        leaf: &Leaf,
        ty: ScalarType,
        value: &str,
    ) -> Result<String, super::WriteError> {
        let quote = quote_around(&doc.text, &leaf.span());
        // Between `"""` or backticks, a value may run over lines that do not hold the
        // quote (go-ini ends the value at the last quote of the first line holding one).
        let held = |q: &str| {
            value
                .rsplit_once('\n')
                .is_none_or(|(before, _)| !before.contains(q))
        };
        let over_lines = quote.filter(|q| matches!(*q, "\"\"\"" | "`"));
        if value.contains('\n') && over_lines.is_some_and(|q| !held(q)) {
            return Err(super::WriteError::LineBreak(leaf.path.join(":")));
        }
        render_in(ty, value, quote)
            .ok_or_else(|| super::WriteError::NotReadBack(leaf.path.join(":")))
    }

    fn enc_quotes(&self, _doc: &Document, _leaf: &Leaf) -> (String, &'static str) {
        (String::new(), "")
    }

    fn render_metadata(
        &self,
        doc: &Document,
        _doc_index: usize,
        meta: &MetaValue,
    ) -> (usize, String) {
        let mut items = super::flatten::flatten(meta);
        items.sort();
        let width = items.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let text = doc.text.as_str();
        let mut block = String::new();
        if !text.is_empty() {
            block.push('\n');
        }
        block.push_str("[sops]\n");
        for (k, v) in items {
            block.push_str(&format!("{k:width$} = {}\n", v.replace('\n', "\\n")));
        }
        (text.len(), crate::tree::lines_at(text, text.len(), block))
    }

    fn canonical(
        &self,
        doc: &Document,
        value: &LeafText,
    ) -> Result<Zeroizing<String>, super::WriteError> {
        let mut out = Zeroizing::new(String::new());
        let mut comments = super::CommentLines::new(doc, "; ");
        if let Some(Node::Map(sections)) = doc.docs.first().map(|d| &d.root) {
            for (n, s) in sections.iter().enumerate() {
                comments.before(&mut out, s.at(), value)?;
                let Node::Map(entries) = &s.value else {
                    return Err(super::WriteError::NotASection(s.key.to_string()));
                };
                if n > 0 || &*s.key != DEFAULT_SECTION {
                    out.push_str(&format!("[{}]\n", s.key));
                }
                for e in entries {
                    comments.before(&mut out, e.at(), value)?;
                    let Node::Leaf(i) = e.value else {
                        return Err(super::WriteError::NotAScalar(format!(
                            "{}:{}",
                            s.key, e.key
                        )));
                    };
                    let v = ini_value(value(i)?.1.as_str()).ok_or_else(|| {
                        super::WriteError::NotReadBack(format!("{}:{}", s.key, e.key))
                    })?;
                    out.push_str(&format!("{} = {v}\n", e.key));
                }
            }
        }
        comments.before(&mut out, usize::MAX, value)?;
        Ok(out)
    }

    fn insert_entry(
        &self,
        doc: &Document,
        last: &Entry,
        key: &str,
        value: &Value,
    ) -> Result<super::edit::Edit, super::edit::NoEdit> {
        super::edit::insert_line(doc, last, key, value, " = ")
    }

    fn emit(&self, value: &Value) -> Result<Zeroizing<String>, super::WriteError> {
        let Value::Map(sections) = value else {
            return Err(super::WriteError::NotAMapping("of sections ", "INI"));
        };
        let mut out = Zeroizing::new(String::new());
        for (i, (name, body)) in sections.iter().enumerate() {
            let Value::Map(entries) = body else {
                return Err(super::WriteError::NotASection(format!(
                    "the top-level value {name:?}"
                )));
            };
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&format!("[{name}]\n"));
            // `=` in one column per section, as sops (go-ini's pretty format) writes it.
            let width = entries
                .iter()
                .map(|(k, _)| k.chars().count())
                .max()
                .unwrap_or(0);
            for (k, v) in entries {
                let Value::Scalar(_, s) = v else {
                    return Err(super::WriteError::Nested {
                        path: format!("{name}:{k}"),
                        format: "INI",
                    });
                };
                let s = ini_value(s)
                    .ok_or_else(|| super::WriteError::NotReadBack(format!("{name}:{k}")))?;
                out.push_str(&format!("{k:width$} = {s}\n"));
            }
        }
        Ok(out)
    }
}

/// The quotes the text holds the value at `span` in, if any (`"""` before `"`).
fn quote_around(text: &str, span: &Range<usize>) -> Option<&'static str> {
    ["\"\"\"", "`", "\"", "'"]
        .into_iter()
        .find(|q| text[..span.start].ends_with(q) && text[span.end..].starts_with(q))
}

/// A value written where the text held one in `quote` (if any), so go-ini reads it
/// back as it is; `None` when no spelling does.
pub(crate) fn render_in(ty: ScalarType, value: &str, quote: Option<&str>) -> Option<String> {
    Some(match ty {
        ScalarType::Bool => crate::scalar::parse_bool(value)
            .unwrap_or(false)
            .to_string(),
        ScalarType::Comment => value.to_string(),
        // Where the text held it bare (or continued over lines), written so go-ini
        // reads it back whole.
        _ if quote.is_none() => ini_value(value)?,
        _ => value.to_string(),
    })
}

/// An INI value as go-ini reads it with sops's options, by byte ranges of the text
/// after `=` with its spaces trimmed.
struct GoIniValue {
    value: std::ops::Range<usize>,
    /// An inline comment: after its `;` or `#` and the spaces there.
    comment: Option<std::ops::Range<usize>>,
}

/// A value as go-ini's `readValue` reads it from the text after a key's delimiter,
/// which may run over the lines after it.
struct IniRead {
    value: String,
    /// The bytes the ciphertext replaces: the value's own where it stands in the text
    /// as it is, or all of a value continued with `\`.
    span: std::ops::Range<usize>,
    comment: Option<std::ops::Range<usize>>,
    /// The index of the first line after the value.
    next: usize,
}

/// What the reader removes as the metadata when `[sops]` starts at `start`: the section
/// (the last one, so to the end), the blank line that separates it from the data, and
/// the line break before it when the block ends the file without one.
fn metadata_span(text: &str, start: usize) -> Range<usize> {
    let mut s = start;
    if text[..s].ends_with("\n\n") {
        s -= 1;
    }
    if !text.ends_with('\n') && s > 0 {
        s -= 1;
    }
    s..text.len()
}

/// Where sops's `[sops]` section that ends `text` starts (its header at the start of a
/// line, found from the end), and what the reader removes with it. A guess for the
/// walk to confirm: [`walk_encrypted`] takes no `[sops]` before it.
pub(crate) fn metadata_section(text: &str) -> Option<(usize, Range<usize>)> {
    let at = text.rfind("[sops]")?;
    (at == 0 || text.as_bytes()[at - 1] == b'\n').then(|| (at, metadata_span(text, at)))
}

/// sops's INI output read as it is walked, for the check of an encryption: what it holds
/// before the metadata section at `meta_at`, to `seen` in order, as the reader makes it
/// (sections as mappings of the root, keys before any header in `DEFAULT`, comments in
/// the section they belong to). No value in `"""` or backticks or over lines is taken;
/// `None` for those, and the whole reader runs. Sections are not told apart (their names
/// lie all over the text): the check compares each with its document's, which holds
/// none twice.
pub(crate) fn walk_encrypted<'t>(
    text: &'t str,
    meta_at: usize,
    mut seen: impl FnMut(super::Seen<'t>) -> Option<()>,
) -> Option<()> {
    use super::Seen;
    seen(Seen::Doc)?;
    seen(Seen::Opens(true))?;
    let mut sections = 0;
    // The keys of the section open, if one is.
    let mut open: Option<usize> = None;
    // Comments on lines of their own belong to the section of what follows them (as
    // go-ini attaches them): told once that is known, in the section they belong to.
    let mut pending: Vec<Range<usize>> = Vec::new();
    let tell = |seen: &mut dyn FnMut(Seen<'t>) -> Option<()>, pending: &mut Vec<Range<usize>>| {
        pending
            .drain(..)
            .try_for_each(|span| seen(Seen::Comment(&text[span.clone()], span)))
    };
    for (start, raw) in lines(text.get(..meta_at)?) {
        let EntryLine { key, from, .. } = match read_line(start, raw) {
            Line::Blank => continue,
            Line::Comment(span) => {
                pending.push(span);
                continue;
            }
            Line::Header { name, .. } => {
                let name = name?;
                if name.is_empty() || name == "sops" {
                    return None;
                }
                if let Some(keys) = open.take() {
                    seen(Seen::Ends(keys))?;
                }
                sections += 1;
                seen(Seen::Key(name))?;
                seen(Seen::Opens(true))?;
                tell(&mut seen, &mut pending)?;
                open = Some(0);
                continue;
            }
            Line::Entry(entry) => entry?,
        };
        let OnLine::Plain(value_at, value) = on_line(text, start, raw, from) else {
            return None;
        };
        let read = go_ini_value(value);
        let span = value_at + read.value.start..value_at + read.value.end;
        let quote = match quote_around(text, &span) {
            None => Quote::Raw,
            Some("\"") => Quote::Double,
            Some("'") => Quote::Single,
            Some(_) => return None,
        };
        let keys = match &mut open {
            Some(keys) => keys,
            None => {
                sections += 1;
                seen(Seen::Key(DEFAULT_SECTION))?;
                seen(Seen::Opens(true))?;
                open.insert(0)
            }
        };
        *keys += 1;
        tell(&mut seen, &mut pending)?;
        seen(Seen::Key(key))?;
        let stored = std::borrow::Cow::Borrowed(text[span.clone()].as_bytes());
        seen(Seen::Scalar(ScalarType::Str, stored, quote.into(), span))?;
        // What follows a `;` or `#` in the value is a comment after it.
        if let Some(c) = read.comment {
            let c = value_at + c.start..value_at + c.end;
            seen(Seen::Comment(&text[c.clone()], c))?;
        }
    }
    // Comments after the last line that holds anything stay in the section open; with
    // none open, the reader gives them `DEFAULT`, which this walk has no place for.
    if !pending.is_empty() && open.is_none() {
        return None;
    }
    tell(&mut seen, &mut pending)?;
    if let Some(keys) = open {
        seen(Seen::Ends(keys))?;
    }
    seen(Seen::Ends(sections))
}

/// A value rendered for the walked check: as [`render_in`] writes it where the text
/// held it in `quote`; `None` over lines, which the whole check decides.
pub(crate) fn render_walked(ty: ScalarType, value: &str, quote: Quote) -> Option<String> {
    let quote = match quote {
        Quote::Double => Some("\""),
        Quote::Single => Some("'"),
        _ => None,
    };
    (!value.contains('\n'))
        .then(|| render_in(ty, value, quote))
        .flatten()
}

/// A line as sops (through go-ini) reads it, before its value is read: for the reader
/// and the walk alike.
enum Line<'t> {
    Blank,
    /// A comment's text: after its `;` or `#` and the spaces there, which sops strips
    /// before encrypting and writes back as `; ENC[...]`.
    Comment(Range<usize>),
    /// `[name]`: the name trimmed (`None` without its `]`), and where the line ends.
    Header {
        name: Option<&'t str>,
        end: usize,
    },
    /// `key = value` or `key: value` (`None` without a delimiter).
    Entry(Option<EntryLine<'t>>),
}

struct EntryLine<'t> {
    /// The key, trimmed.
    key: &'t str,
    /// Where the line's text (its key) starts.
    at: usize,
    /// Where the text after the delimiter starts.
    from: usize,
}

/// The line at `start` (`raw`, without its line break) as a [`Line`].
fn read_line(start: usize, raw: &str) -> Line<'_> {
    let line = raw.strip_suffix('\r').unwrap_or(raw);
    let trimmed = line.trim_start();
    let indent = line.len() - trimmed.len();
    if trimmed.is_empty() {
        return Line::Blank;
    }
    if let Some(body) = trimmed.strip_prefix([';', '#']) {
        let at = start + indent + 1 + (body.len() - body.trim_start().len());
        return Line::Comment(at..start + line.len());
    }
    if let Some(rest) = trimmed.strip_prefix('[') {
        return Line::Header {
            name: rest.split_once(']').map(|(n, _)| n.trim()),
            end: start + line.len(),
        };
    }
    Line::Entry(trimmed.find(['=', ':']).map(|delim| EntryLine {
        key: trimmed[..delim].trim(),
        at: start + indent,
        from: start + indent + delim + 1,
    }))
}

/// How go-ini reads the value after byte `from` of the line at `start` (`raw`, without
/// its line break).
enum OnLine<'t> {
    /// In `"""` or backticks, from `rest_at`; the line ends (break included) at the last.
    Quoted(&'static str, usize, usize),
    /// Continued with a final `\`: what is before it, from the first.
    Continued(usize, &'t str),
    /// On this line alone, from the first: see [`go_ini_value`].
    Plain(usize, &'t str),
}

fn on_line<'t>(text: &'t str, start: usize, raw: &str, from: usize) -> OnLine<'t> {
    let line_end = start + raw.len();
    // go-ini reads the line with its line break.
    let full_end = (line_end + 1).min(text.len());
    let rest = text[from..full_end].trim_start();
    let rest_at = full_end - rest.len();
    if rest.len() > 3 && rest.starts_with("\"\"\"") {
        return OnLine::Quoted("\"\"\"", rest_at, full_end);
    }
    if rest.starts_with('`') {
        return OnLine::Quoted("`", rest_at, full_end);
    }
    let value_at = rest_at.min(line_end);
    let line = text[value_at..line_end].trim_end();
    match line.strip_suffix('\\') {
        Some(first) => OnLine::Continued(value_at, first),
        None => OnLine::Plain(value_at, line),
    }
}

/// go-ini's `readValue` (parser.go) with sops's options, over the lines `all` from line
/// `at`, whose value starts after byte `from`: a value in `"""` or backticks runs to
/// the last such quote on its line or a later one, line breaks included; a value whose
/// line ends in `\` goes on with the next lines, trimmed, until one does not; any
/// other is read by [`go_ini_value`].
fn read_value(
    text: &str,
    all: &[(usize, &str)],
    at: usize,
    from: usize,
) -> Result<IniRead, super::SyntaxError> {
    let (start, raw) = all[at];
    let (value_at, line) = match on_line(text, start, raw, from) {
        OnLine::Quoted(q, rest_at, full_end) => {
            let body = rest_at + q.len();
            if let Some(p) = text[body..full_end].rfind(q) {
                return Ok(IniRead {
                    value: text[body..body + p].to_string(),
                    span: body..body + p,
                    comment: None,
                    next: at + 1,
                });
            }
            for (n, &(s, l)) in all.iter().enumerate().skip(at + 1) {
                let end = (s + l.len() + 1).min(text.len());
                if let Some(p) = text[s..end].rfind(q) {
                    // What follows the closing quote is a comment from its `;` or `#` on.
                    let after = &text[s + p + q.len()..s + l.len()];
                    let comment = after.find([';', '#']).map(|c| {
                        let body = &after[c + 1..];
                        let from = s + p + q.len() + c + 1 + (body.len() - body.trim_start().len());
                        from..s + p + q.len() + after.trim_end().len()
                    });
                    return Ok(IniRead {
                        value: text[body..s + p].to_string(),
                        span: body..s + p,
                        comment: comment.filter(|c| !c.is_empty()),
                        next: n + 1,
                    });
                }
            }
            return Err(super::SyntaxError::line(
                line_no(text, start),
                format!("the value in {q} has no closing {q}"),
            ));
        }
        OnLine::Continued(value_at, first) => {
            let mut value = first.to_string();
            let mut end = value_at + first.len() + 1;
            let mut next = at + 1;
            while let Some(&(s, l)) = all.get(next) {
                next += 1;
                let more = l.trim();
                if more.is_empty() {
                    break;
                }
                value.push_str(more);
                end = s + (l.len() - l.trim_start().len()) + more.len();
                if !value.ends_with('\\') {
                    break;
                }
                value.pop();
            }
            return Ok(IniRead {
                value,
                span: value_at..end,
                comment: None,
                next,
            });
        }
        OnLine::Plain(value_at, line) => (value_at, line),
    };
    let read = go_ini_value(line);
    Ok(IniRead {
        value: line[read.value.clone()].to_string(),
        span: value_at + read.value.start..value_at + read.value.end,
        comment: read.comment.map(|c| value_at + c.start..value_at + c.end),
        next: at + 1,
    })
}

/// go-ini's `readValue` for a value on its line, neither quoted with `"""` or
/// backticks nor continued: the first `;` or `#` starts a comment, and quotes around
/// what is left (`"x"`, `'x'`, holding no other quote of their kind) are taken off.
fn go_ini_value(v: &str) -> GoIniValue {
    let (mut value, comment) = match v.find([';', '#']) {
        Some(c) => {
            let body = &v[c + 1..];
            let start = c + 1 + (body.len() - body.trim_start().len());
            (0..v[..c].trim_end().len(), Some(start..v.len()))
        }
        None => (0..v.len(), None),
    };
    let text = &v[value.clone()];
    let surrounded = |q: char| {
        text.len() >= 2 && text.starts_with(q) && text.ends_with(q) && text.matches(q).count() == 2
    };
    if surrounded('"') || surrounded('\'') {
        value = value.start + 1..value.end - 1;
    }
    GoIniValue { value, comment }
}

/// A value written so go-ini reads it back as it is, as go-ini writes it: `"""` around
/// one holding a line break or a backtick, backticks around one holding `;` or `#`,
/// quotes or spaces go-ini would take off. `None` when no spelling reads back.
fn ini_value(s: &str) -> Option<String> {
    if s.contains('\n') || s.contains('`') {
        if s.contains("\"\"\"") || s.ends_with('"') {
            return None;
        }
        return Some(format!("\"\"\"{s}\"\"\""));
    }
    // Not quoted, continued, or cut or stripped by go-ini.
    let as_is =
        s.trim() == s && !s.starts_with('`') && !s.starts_with("\"\"\"") && !s.ends_with('\\') && {
            let r = go_ini_value(s);
            r.comment.is_none() && s[r.value] == *s
        };
    Some(if as_is {
        s.to_string()
    } else {
        format!("`{s}`")
    })
}

fn line_no(text: &str, pos: usize) -> usize {
    text[..pos].matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::super::table::check;
    use super::*;

    /// `k = …` read as go-ini reads it: the value and the inline comment.
    fn read(text: &str) -> Result<(String, Option<&str>, usize), super::super::SyntaxError> {
        let all: Vec<(usize, &str)> = lines(text).collect();
        let r = read_value(text, &all, 0, text.find('=').unwrap() + 1)?;
        Ok((r.value, r.comment.map(|c| &text[c]), r.next))
    }

    /// go-ini's reading (parser.go, readValue, with sops's options), case by case.
    #[test]
    fn values_read_as_go_ini_reads_them() {
        for (text, value, comment, next) in [
            ("k = x ; y", "x", Some("y"), 1),
            ("k = x;y\n", "x", Some("y"), 1),
            ("k = http://host/#frag", "http://host/", Some("frag"), 1),
            ("k = \"quoted\"", "quoted", None, 1),
            ("k = 'single'", "single", None, 1),
            ("k = \"a\" \"b\"", "\"a\" \"b\"", None, 1),
            ("k = `back ; tick`", "back ; tick", None, 1),
            ("k = `a`b` ; dropped", "a`b", None, 1),
            ("k = \"x\" ; c", "x", Some("c"), 1),
            ("k =", "", None, 1),
            ("k = ; only", "", Some("only"), 1),
            // Quoted over several lines: the line breaks, a CR too, are the value's.
            (
                "k = `multi  \nline` ; after\nz = 1\n",
                "multi  \nline",
                Some("after"),
                2,
            ),
            ("k = \"\"\"a\r\nb\"\"\"\r\n", "a\r\nb", None, 2),
            ("k = \"\"\"\n\"\"\"\n", "\n", None, 2),
            // Three quotes and nothing after, at the end of the file: a plain value.
            ("k = \"\"\"", "\"\"\"", None, 1),
            // Continued: lines trimmed and joined, comments and quotes kept, until a
            // line that does not end in `\\` or a blank one.
            ("k = one \\\n   two\nz = 1\n", "one two", None, 2),
            ("k = a\\\nb\\\n c ; d\nz", "abc ; d", None, 3),
            ("k = \"x \\\n y\"\n", "\"x y\"", None, 2),
            ("k = a \\\n\nz = 1\n", "a ", None, 2),
            ("k = a \\", "a ", None, 1),
        ] {
            let got = read(text).unwrap();
            assert_eq!(got, (value.to_string(), comment, next), "{text:?}");
        }
        assert_eq!(
            read("k = `open\nmore\n").unwrap_err().to_string(),
            "line 1: the value in ` has no closing `"
        );
        assert!(read("k = \"\"\"open\n").is_err());
    }

    /// What INI written anew holds reads back the same through go-ini's rules.
    #[test]
    fn values_are_written_so_they_read_back() {
        for (s, written) in [
            ("plain", "plain"),
            ("a;b", "`a;b`"),
            ("a # b", "`a # b`"),
            ("\"q\"", "`\"q\"`"),
            (" padded ", "` padded `"),
            ("ends\\", "`ends\\`"),
            ("`starts", "\"\"\"`starts\"\"\""),
            ("\"\"\"", "`\"\"\"`"),
            ("tick`s", "\"\"\"tick`s\"\"\""),
            ("two\nlines", "\"\"\"two\nlines\"\"\""),
            ("", ""),
        ] {
            assert_eq!(ini_value(s).unwrap(), written, "{s:?}");
            let line = format!("k = {written}\n");
            let (back, comment, _) = read(&line).unwrap();
            assert_eq!((back.as_str(), comment), (s, None), "{written}");
        }
    }

    #[test]
    fn constructs() {
        let s = &IniStore;
        check(
            s,
            "[s]\nk = v\n; c\nk2: v2\n",
            &["s:k str v", "c", "s:k2 str v2"].map(|x| if x == "c" { "#c" } else { x }),
        );
        check(
            s,
            "top = 1\n[s]\n# hash\nk = v",
            &["DEFAULT:top str 1", "#hash", "s:k str v"],
        );
        check(s, "; only a comment\n", &["#only a comment"]);
        // sops reads every INI value as text, timestamps too.
        check(
            s,
            "[s]\nt = 2024-01-02T03:04:05Z\n",
            &["s:t str 2024-01-02T03:04:05Z"],
        );
    }

    #[test]
    fn comments_before_the_metadata_keep_their_section() {
        let doc = IniStore
            .parse(Zeroizing::new(
                b"[s]\nk = v\n; c\n\n[sops]\nversion = 3\n".to_vec(),
            ))
            .expect("parses");
        let c = doc
            .leaves
            .iter()
            .find(|l| l.kind == LeafKind::Comment)
            .expect("comment");
        assert_eq!(&*c.path, [crate::tree::Key::from("s")]);
    }
}
