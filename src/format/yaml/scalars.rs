//! How a scalar event becomes a leaf: its type as go-yaml reads it, its style, and
//! the span a block scalar's text occupies.

use super::*;

impl Parse<'_> {
    pub(super) fn scalar_leaf(
        &mut self,
        stack: &[Frame],
        value: &str,
        style: ScalarStyle,
        tag: Option<&saphyr_parser::Tag>,
        raw: Range<usize>,
        span: &Span,
    ) -> Result<usize, crate::format::SyntaxError> {
        let container = frame_container(stack.last().expect("scalar inside a collection"));
        let flow = self.containers[container].flow;
        let path = match stack.last() {
            Some(Frame::Map { key, .. }) => extended(&self.containers[container].path, key),
            _ => self.containers[container].path.clone(),
        };
        let owner_col = self.items.last().map_or(0, |i| i.col);
        let Properties {
            start,
            tag_at,
            odd_anchor,
        } = if matches!(style, ScalarStyle::Literal | ScalarStyle::Folded) {
            Properties {
                start: raw.start,
                tag_at: None,
                odd_anchor: None,
            }
        } else {
            properties(self.text, &raw)
        };
        if let (Some(at), None) = (odd_anchor, self.foreign) {
            self.foreign = Some((at, "an anchor name that sops reads differently"));
        }
        let (quote, span_range) = match inline_span(self.text, start, raw.end, style) {
            Some(inline) => inline,
            None => (
                Quote::Block,
                block_range(self.text, &raw, value)
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
                self.occupy(occupied.start..comment);
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
        let mut stored = stored_value(ty, tagged, value);
        if quote == Quote::Block {
            block_value(self.text, &span_range, &mut stored);
        }
        if too_big(ty, &stored) {
            return Err(err_at(
                span.start.line(),
                span.start.col(),
                crate::format::BIG_INT,
            ));
        }
        self.occupy(occupied);
        let (own, quoted) = crate::tree::own_value(self.text, &span_range, stored);
        self.leaves.push(Leaf {
            kind: LeafKind::Value,
            path,
            own,
            quoted,
            place: span_range.into(),
            ty,
            style: Style {
                quote,
                owner_col: crate::tree::column(owner_col),
                flow,
            },
        });
        Ok(self.leaves.len() - 1)
    }
}

/// A scalar's properties (anchor, tag) in `text`, within its event's raw span `raw`:
/// they sit inside the span, and the value's own text starts after them.
pub(super) struct Properties {
    /// Where the value's own text starts.
    pub(super) start: usize,
    /// Where its tag stands, if it has one.
    pub(super) tag_at: Option<usize>,
    /// An anchor whose name libyaml ends early (at anything but `[A-Za-z0-9_-]`), and
    /// so sops reads otherwise.
    pub(super) odd_anchor: Option<usize>,
}

/// The [`Properties`] of the scalar (not a block) whose raw span is `raw`.
pub(super) fn properties(text: &str, raw: &Range<usize>) -> Properties {
    let mut p = Properties {
        start: raw.start,
        tag_at: None,
        odd_anchor: None,
    };
    loop {
        let rest = &text[p.start..raw.end];
        if rest.starts_with('!') {
            p.tag_at = Some(p.start);
        }
        if !(rest.starts_with('&') || rest.starts_with('!')) {
            return p;
        }
        let skip = rest.find([' ', '\t', '\n']).unwrap_or(rest.len());
        let odd = |c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if rest.starts_with('&') && rest[1..skip].contains(odd) {
            p.odd_anchor.get_or_insert(p.start);
        }
        p.start += skip;
        p.start += text[p.start..raw.end].len() - text[p.start..raw.end].trim_start().len();
    }
}

/// A block scalar's stored value made what go-yaml (and so sops) reads, from saphyr's:
/// a block that ends the text without a line break has none in its value (YAML 1.2,
/// 8.1.1.2; saphyr adds one), and a ciphertext in a block (`|` + `ENC[…]`) is the
/// ciphertext (its chomping added the line break). `span` is the block's.
pub(super) fn block_value(text: &str, span: &Range<usize>, stored: &mut std::borrow::Cow<'_, str>) {
    if span.end == text.len() && !text.ends_with('\n') && stored.ends_with('\n') {
        stored.to_mut().pop();
    }
    let enc = stored.trim_end_matches('\n');
    if enc.len() < stored.len() && crate::cipher::is_encrypted(enc) {
        let len = enc.len();
        stored.to_mut().truncate(len);
    }
}

/// A flow mapping's key (at `key`, its raw span) with its `:` on another line, which
/// sops cannot read.
pub(super) fn colon_on_next_line(text: &str, key: &Range<usize>) -> bool {
    let end = match text.as_bytes().get(key.start) {
        Some(&q @ (b'"' | b'\'')) => quoted_end(text, key.start, q),
        _ => None,
    }
    .unwrap_or(key.end);
    let after = &text[end..];
    let rest = after.trim_start_matches([' ', '\t', '\r', '\n']);
    rest.starts_with(':') && after[..after.len() - rest.len()].contains('\n')
}

/// The bytes a block scalar occupies in `text`, its event's raw span `raw` and its
/// `value`: from its `|`/`>` indicator to the end of its last content line. Trailing
/// blank lines belong to the layout, except with the keep (`+`) indicator, where they
/// are part of the value.
pub(super) fn block_range(
    text: &str,
    raw: &Range<usize>,
    value: &str,
) -> Result<Range<usize>, &'static str> {
    let start = block_indicator(text, raw.start).ok_or("cannot find the block scalar indicator")?;
    let header_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let content_start = (header_end + 1).min(text.len());
    // The region ends at the last line break inside the raw span, or with the
    // text when the block is its last line.
    let region_end = match text[..raw.end.min(text.len())].rfind('\n') {
        _ if raw.end >= text.len() => text.len(),
        Some(i) if i + 1 >= content_start => i + 1,
        _ => content_start,
    };
    let region = &text[content_start..region_end.max(content_start)];
    let keep = without_comment(&text[start..header_end]).contains('+');
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

/// The `|` or `>` of the block scalar whose event starts at `pos`: on the header line
/// before the content (blank lines between are content), or after the node's tag or
/// anchor when the event starts there.
fn block_indicator(text: &str, pos: usize) -> Option<usize> {
    let before = &text[..pos];
    let line = before.rfind('\n').map_or(0, |i| i + 1);
    if text[line..pos].trim().is_empty() {
        let mut end = line;
        while end > 0 {
            let start = text[..end - 1].rfind('\n').map_or(0, |i| i + 1);
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
    let b = text.as_bytes();
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

/// A one-line scalar's quoting and span, from `start` (after any anchor or tag) to the
/// parser's `end`; `None` for a block scalar. The parser's span of a quoted scalar can
/// run on over a comment after it on the line: the scalar ends at its closing quote.
pub(super) fn inline_span(
    text: &str,
    start: usize,
    end: usize,
    style: ScalarStyle,
) -> Option<(Quote, Range<usize>)> {
    let quoted = |q: u8| start..quoted_end(text, start, q).unwrap_or(end);
    Some(match style {
        ScalarStyle::Plain => (Quote::Plain, start..end),
        ScalarStyle::SingleQuoted => (Quote::Single, quoted(b'\'')),
        ScalarStyle::DoubleQuoted => (Quote::Double, quoted(b'"')),
        ScalarStyle::Literal | ScalarStyle::Folded => return None,
    })
}

/// What sops stores for a scalar of type `ty` written `value`: the text a standard tag
/// decided (`tagged`), a string as it is, or another type's canonical form.
pub(super) fn stored_value(
    ty: ScalarType,
    tagged: Option<String>,
    value: &str,
) -> std::borrow::Cow<'_, str> {
    match tagged {
        Some(stored) => std::borrow::Cow::Owned(stored),
        None if ty == ScalarType::Str => std::borrow::Cow::Borrowed(value),
        None => std::borrow::Cow::Owned(stored_form(ty, value)),
    }
}

/// An integer sops cannot hold (more than 64 bits), which go-yaml and so sops refuse.
pub(super) fn too_big(ty: ScalarType, stored: &str) -> bool {
    ty == ScalarType::Int && stored.parse::<i64>().is_err()
}
