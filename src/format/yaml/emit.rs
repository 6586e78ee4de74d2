//! Writing YAML: plaintext values in the style they were read in, and fresh
//! serialisation (format conversion, metadata blocks, the canonical layout).

use super::*;

/// A float as YAML text that reads back as a float: its own spelling when that does,
/// else go-yaml's (`1.5e+10`), with `.0` where that would read back as an int.
pub(super) fn yaml_float(v: &str) -> String {
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
    // Looked for only where a block is asked for or needed: it reads the whole value.
    let block_ok = || !style.flow && block_representable(s);
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
        Quote::Block if block_ok() => block_literal(s, style.owner_col as usize + indent),
        _ if plain_safe(s, style.flow) => s.to_string(),
        _ if s.contains('\n') && block_ok() => block_literal(s, style.owner_col as usize + indent),
        _ if style.flow && !s.contains('\n') && !s.chars().any(char::is_control) => {
            format!("'{}'", s.replace('\'', "''"))
        }
        _ => double_quoted(s),
    }
}

/// A block scalar's header (`|`, `|-`, `|+`, `>`, `>-`, `>+`) and the indentation of
/// its first content line, as they stand in the text. A header with an explicit
/// indentation (`|2`) is not kept: its content may start with spaces of its own.
pub(super) struct BlockHeader<'t> {
    pub(super) header: &'t str,
    pub(super) indent: usize,
}

impl<'t> BlockHeader<'t> {
    pub(super) fn of(doc: &'t Document, leaf: &Leaf) -> Option<BlockHeader<'t>> {
        Self::in_region(doc.text.as_str().get(leaf.span())?)
    }

    /// The header of the block that stands as `region`, from its indicator to its last
    /// line.
    pub(super) fn in_region(region: &'t str) -> Option<BlockHeader<'t>> {
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
    pub(super) fn render(&self, s: &str) -> Option<String> {
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
pub(super) fn block_lines(out: &mut String, body: &str, newlines: usize, indent: usize) {
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

pub(super) fn block_representable(s: &str) -> bool {
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
pub(super) fn block_literal(s: &str, indent: usize) -> String {
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
pub(super) fn looks_like_timestamp(s: &str) -> bool {
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
pub(super) fn old_bool(s: &str) -> bool {
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

pub(super) fn yaml_key(k: &str) -> String {
    if plain_safe(k, false) && !old_bool(k) {
        k.to_string()
    } else {
        double_quoted(k)
    }
}

pub(super) fn yaml_scalar(ty: ScalarType, s: &str, block_indent: usize) -> String {
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
                owner_col: crate::tree::column(block_indent),
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
pub(super) fn entry(
    out: &mut String,
    key: &str,
    v: &Value,
    indent: usize,
    unit: usize,
    list_step: usize,
) {
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
pub(super) struct Canonical<'d, 'v> {
    pub(super) doc: &'d Document,
    pub(super) value: &'v LeafText<'v>,
    pub(super) out: Zeroizing<String>,
    pub(super) comments: Vec<usize>,
    pub(super) next: usize,
}

pub(super) const CANONICAL_INDENT: usize = 4;

impl Canonical<'_, '_> {
    /// Write the comments that stood before `pos`.
    pub(super) fn flush(&mut self, pos: usize, indent: usize) {
        while let Some(&i) = self.comments.get(self.next) {
            let leaf = &self.doc.leaves[i];
            if leaf.span().start >= pos {
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

    pub(super) fn scalar(
        &self,
        i: usize,
        block_indent: usize,
    ) -> Result<String, crate::format::WriteError> {
        let (ty, text) = (self.value)(i)?;
        Ok(yaml_scalar(ty, &text, block_indent))
    }

    pub(super) fn map(
        &mut self,
        entries: &[Entry],
        indent: usize,
    ) -> Result<(), crate::format::WriteError> {
        for e in entries {
            self.flush(e.at(), indent);
            self.out.push_str(&" ".repeat(indent));
            self.out.push_str(&yaml_key(&e.key));
            self.out.push(':');
            self.value_after_key(&e.value, indent)?;
        }
        Ok(())
    }

    pub(super) fn value_after_key(
        &mut self,
        node: &Node,
        indent: usize,
    ) -> Result<(), crate::format::WriteError> {
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

    pub(super) fn seq(
        &mut self,
        items: &[Node],
        indent: usize,
    ) -> Result<(), crate::format::WriteError> {
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
