//! Fresh serialisation of a plaintext tree, for format conversion and for metadata
//! blocks. Layout-preserving paths never come here.

use zeroize::Zeroizing;

use crate::tree::{MetaValue, ScalarType};

/// A decrypted tree, detached from any source text.
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
                    .map(|(k, v)| (k.clone(), Value::from_meta(v)))
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
                            crate::cipher::parse_bool(s).unwrap_or(false).to_string()
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

/// True when `s` can be written as a plain YAML scalar and read back as the same string.
pub fn plain_safe(s: &str, flow: bool) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if crate::format::yaml::resolve_plain(s) != ScalarType::Str || looks_like_timestamp(s) {
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

pub fn double_quoted(s: &str) -> String {
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

fn yaml_key(k: &str) -> String {
    if plain_safe(k, false) {
        k.to_string()
    } else {
        double_quoted(k)
    }
}

fn yaml_scalar(ty: ScalarType, s: &str, block_indent: usize) -> String {
    match ty {
        ScalarType::Null => "null".into(),
        ScalarType::Bool => crate::cipher::parse_bool(s).unwrap_or(false).to_string(),
        ScalarType::Int => s.to_string(),
        ScalarType::Float => match s {
            "+Inf" => ".inf".into(),
            "-Inf" => "-.inf".into(),
            "NaN" => ".nan".into(),
            _ => s.to_string(),
        },
        _ => {
            let style = crate::tree::Style {
                quote: crate::tree::Quote::Plain,
                owner_col: block_indent,
                flow: false,
            };
            crate::format::yaml::render_str(s, style, 0)
        }
    }
}

/// A scalar, or an empty collection, on one line.
pub fn yaml_scalar_or_flow(v: &Value) -> String {
    match v {
        Value::Map(_) => "{}".into(),
        Value::Seq(_) => "[]".into(),
        Value::Scalar(ty, s) => yaml_scalar(*ty, s, 0),
    }
}

/// `key: value` at `indent` spaces, nested collections indented by `unit`.
pub fn yaml_entry(out: &mut String, key: &str, v: &Value, indent: usize, unit: usize) {
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
                yaml_item(out, item, indent + unit, unit);
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

fn yaml_item(out: &mut String, v: &Value, indent: usize, unit: usize) {
    let pad = " ".repeat(indent);
    match v {
        Value::Map(e) if !e.is_empty() => {
            let mut inner = String::new();
            for (k, v) in e {
                yaml_entry(&mut inner, k, v, indent + 2, unit);
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

pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub fn json_scalar(ty: ScalarType, s: &str) -> String {
    match ty {
        ScalarType::Null => "null".into(),
        ScalarType::Bool => crate::cipher::parse_bool(s).unwrap_or(false).to_string(),
        ScalarType::Int | ScalarType::Float if crate::format::json::is_json_number(s) => {
            s.to_string()
        }
        _ => json_string(s),
    }
}

/// Pretty JSON with `unit` per level (None: on one line), starting at nesting `level`.
pub fn json(out: &mut String, v: &Value, unit: Option<&str>, level: usize) {
    let (open_nl, close_nl) = match unit {
        Some(u) => (
            format!("\n{}", u.repeat(level + 1)),
            format!("\n{}", u.repeat(level)),
        ),
        None => (String::new(), String::new()),
    };
    let sep = if unit.is_some() { "," } else { ", " };
    match v {
        Value::Map(e) if !e.is_empty() => {
            out.push('{');
            for (i, (k, v)) in e.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                out.push_str(&open_nl);
                out.push_str(&json_string(k));
                out.push_str(": ");
                json(out, v, unit, level + 1);
            }
            out.push_str(&close_nl);
            out.push('}');
        }
        Value::Seq(items) if !items.is_empty() => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                out.push_str(&open_nl);
                json(out, v, unit, level + 1);
            }
            out.push_str(&close_nl);
            out.push(']');
        }
        Value::Map(_) => out.push_str("{}"),
        Value::Seq(_) => out.push_str("[]"),
        Value::Scalar(ty, s) => out.push_str(&json_scalar(*ty, s)),
    }
}
