//! Templates with `{{ secret URI }}` references, filled at deploy time.
//!
//! Syntax: `{{ secret URI }}` with optional spaces, `| default "text"` and `| base64`
//! filters, and `\{{` for a literal `{{`. Every distinct reference is resolved once; a
//! template with any unresolved reference produces no output at all, and every failure
//! is reported together (file:line, URI, reason), never with a value.

use std::collections::HashMap;

use base64::Engine;
use zeroize::Zeroizing;

/// One `{{ secret … }}` found in a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub uri: String,
    pub default: Option<String>,
    pub base64: bool,
    pub line: usize,
    /// Byte range of the whole `{{ … }}` in the template.
    pub span: std::ops::Range<usize>,
}

/// A piece of a parsed template.
enum Piece {
    Text(std::ops::Range<usize>),
    Literal(&'static str),
    Ref(usize),
}

pub struct Template {
    text: String,
    pieces: Vec<Piece>,
    pub refs: Vec<Reference>,
}

/// Why one reference has no value: the reference or where it points, never a value.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Unresolved {
    #[error("expected SCHEME://…")]
    NoScheme,
    #[error("unknown source scheme {0:?} (file, env, awsSecret, ssm, s3)")]
    Scheme(String),
    #[error("environment variable {0} is not set")]
    NoVariable(String),
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: String, reason: String },
    /// The file, or the value in it, cannot be opened or found: the library's error.
    #[error("{0}")]
    File(std::sync::Arc<crate::Error>),
    #[error("the {0} is not text")]
    NotText(&'static str),
    #[error("AWS references are fetched together, before filling")]
    NotFetched,
    #[error("no push target {name:?} in {file}")]
    NoTarget { name: String, file: String },
    #[error(transparent)]
    Aws(#[from] crate::aws::read::ReadError),
}

impl From<crate::Error> for Unresolved {
    fn from(e: crate::Error) -> Self {
        Unresolved::File(std::sync::Arc::new(e))
    }
}

/// A problem in the template itself or in resolving one reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub line: usize,
    pub uri: String,
    pub reason: String,
}

pub fn parse(text: &str) -> Result<Template, Vec<Failure>> {
    let mut pieces = Vec::new();
    let mut refs = Vec::new();
    let mut failures = Vec::new();
    let b = text.as_bytes();
    let (mut pos, mut start) = (0, 0);
    // Lines by binary search over the line breaks: linear in the template, however many
    // references it holds.
    let breaks: Vec<usize> = memchr::memchr_iter(b'\n', b).collect();
    let line_at = |p: usize| breaks.partition_point(|&n| n < p) + 1;
    while pos < b.len() {
        if b[pos] == b'\\' && text[pos + 1..].starts_with("{{") {
            pieces.push(Piece::Text(start..pos));
            pieces.push(Piece::Literal("{{"));
            pos += 3;
            start = pos;
            continue;
        }
        if !text[pos..].starts_with("{{") {
            pos += 1;
            continue;
        }
        let Some(close) = text[pos..].find("}}") else {
            failures.push(Failure {
                line: line_at(pos),
                uri: String::new(),
                reason: "unclosed {{".into(),
            });
            break;
        };
        let inner = text[pos + 2..pos + close].trim();
        let Some(rest) = inner.strip_prefix("secret") else {
            // Not ours (another templating layer may own it): leave it as it is.
            pos += 2;
            continue;
        };
        let end = pos + close + 2;
        match parse_ref(rest.trim(), line_at(pos), pos..end) {
            Ok(r) => {
                pieces.push(Piece::Text(start..pos));
                pieces.push(Piece::Ref(refs.len()));
                refs.push(r);
            }
            Err(f) => failures.push(f),
        }
        pos = end;
        start = end;
    }
    pieces.push(Piece::Text(start..b.len()));
    if failures.is_empty() {
        Ok(Template {
            text: text.to_string(),
            pieces,
            refs,
        })
    } else {
        Err(failures)
    }
}

fn parse_ref(s: &str, line: usize, span: std::ops::Range<usize>) -> Result<Reference, Failure> {
    let mut parts = s.split('|').map(str::trim);
    let uri = parts.next().unwrap_or_default().to_string();
    let fail = |reason: String| Failure {
        line,
        uri: uri.clone(),
        reason,
    };
    if uri.is_empty() || uri.contains(char::is_whitespace) {
        return Err(fail("expected {{ secret URI }}".into()));
    }
    let mut r = Reference {
        uri: uri.clone(),
        default: None,
        base64: false,
        line,
        span,
    };
    for filter in parts {
        if filter == "base64" {
            r.base64 = true;
        } else if let Some(arg) = filter.strip_prefix("default") {
            let arg = arg.trim();
            let text = arg
                .strip_prefix('"')
                .and_then(|a| a.strip_suffix('"'))
                .ok_or_else(|| fail(format!("default needs a quoted value: {filter}")))?;
            r.default = Some(text.to_string());
        } else {
            return Err(fail(format!(
                "unknown filter {filter:?} (known: default \"x\", base64)"
            )));
        }
    }
    Ok(r)
}

impl Template {
    /// The output, given a value (or a reason) for every distinct URI.
    pub fn fill(
        &self,
        values: &HashMap<String, Result<Zeroizing<String>, Unresolved>>,
    ) -> Result<Zeroizing<String>, Vec<Failure>> {
        let mut out = Zeroizing::new(String::with_capacity(self.text.len()));
        let mut failures = Vec::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(r) => out.push_str(&self.text[r.clone()]),
                Piece::Literal(s) => out.push_str(s),
                Piece::Ref(i) => {
                    let r = &self.refs[*i];
                    let value = match (values.get(&r.uri), &r.default) {
                        (Some(Ok(v)), _) => Zeroizing::new(v.to_string()),
                        (_, Some(d)) => Zeroizing::new(d.clone()),
                        (Some(Err(why)), None) => {
                            failures.push(Failure {
                                line: r.line,
                                uri: r.uri.clone(),
                                reason: why.to_string(),
                            });
                            continue;
                        }
                        (None, None) => {
                            failures.push(Failure {
                                line: r.line,
                                uri: r.uri.clone(),
                                reason: "not resolved".into(),
                            });
                            continue;
                        }
                    };
                    if r.base64 {
                        out.push_str(
                            &base64::engine::general_purpose::STANDARD.encode(value.as_bytes()),
                        );
                    } else {
                        out.push_str(&value);
                    }
                }
            }
        }
        if failures.is_empty() {
            Ok(out)
        } else {
            Err(failures)
        }
    }
}

/// Resolves URIs: `file://` (a coffer/sops file, opened once per run), `env://`.
pub struct Sources<'k> {
    keyring: &'k crate::keys::Keyring,
    env: HashMap<String, String>,
    files: HashMap<String, Result<crate::sops::Opened, Unresolved>>,
}

impl<'k> Sources<'k> {
    pub fn new(keyring: &'k crate::keys::Keyring, env: HashMap<String, String>) -> Self {
        Sources {
            keyring,
            env,
            files: HashMap::new(),
        }
    }

    pub fn resolve(&mut self, uri: &str) -> Result<Zeroizing<String>, Unresolved> {
        let (scheme, rest) = uri.split_once("://").ok_or(Unresolved::NoScheme)?;
        match scheme {
            "env" => self
                .env
                .get(rest)
                .map(|v| Zeroizing::new(v.clone()))
                .ok_or_else(|| Unresolved::NoVariable(rest.to_string())),
            "file" => {
                let (path, selector) = rest.split_once('#').unwrap_or((rest, ""));
                if !self.files.contains_key(path) {
                    let opened = std::fs::read(path)
                        .map_err(|e| Unresolved::Unreadable {
                            path: path.to_string(),
                            reason: e.to_string(),
                        })
                        .and_then(|bytes| {
                            let format =
                                crate::format::Format::from_path(std::path::Path::new(path));
                            crate::git::worktree::open(
                                std::path::Path::new(path),
                                path,
                                format,
                                bytes,
                                self.keyring,
                                crate::sops::OpenOptions::default(),
                            )
                            .map(|(opened, _)| opened)
                            .map_err(Unresolved::from)
                        });
                    self.files.insert(path.to_string(), opened);
                }
                let opened = self.files[path].as_ref().map_err(Clone::clone)?;
                if selector.is_empty() {
                    let bytes = opened.plaintext()?;
                    return String::from_utf8(bytes.to_vec())
                        .map(Zeroizing::new)
                        .map_err(|_| Unresolved::NotText("file"));
                }
                let steps = crate::path::parse(selector)?;
                let format = opened.format;
                let bytes = opened.extract(&steps, format)?;
                String::from_utf8(bytes.to_vec())
                    .map(Zeroizing::new)
                    .map_err(|_| Unresolved::NotText("value"))
            }
            "awsSecret" | "ssm" | "s3" => Err(Unresolved::NotFetched),
            other => Err(Unresolved::Scheme(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(
        pairs: &[(&str, Result<&str, &str>)],
    ) -> HashMap<String, Result<Zeroizing<String>, Unresolved>> {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    v.map(|s| Zeroizing::new(s.to_string()))
                        .map_err(|name| Unresolved::NoVariable(name.to_string())),
                )
            })
            .collect()
    }

    #[test]
    fn fills_references_filters_and_escapes() {
        let t = parse("a={{ secret env://A }} b={{secret env://B|base64}} c={{ secret env://C | default \"x\" }} \\{{ secret env://A }} {{ other }}").unwrap();
        assert_eq!(t.refs.len(), 3);
        let out = t
            .fill(&values(&[
                ("env://A", Ok("1")),
                ("env://B", Ok("hi")),
                ("env://C", Err("unset")),
            ]))
            .unwrap();
        assert_eq!(
            out.as_str(),
            "a=1 b=aGk= c=x {{ secret env://A }} {{ other }}"
        );
    }

    #[test]
    fn reports_every_failure_with_its_line() {
        let t = parse("x\n{{ secret env://A }}\n{{ secret env://B }}\n").unwrap();
        let err = t
            .fill(&values(&[
                ("env://A", Err("unset")),
                ("env://B", Err("unset")),
            ]))
            .unwrap_err();
        assert_eq!(err.iter().map(|f| f.line).collect::<Vec<_>>(), vec![2, 3]);
        assert!(parse("{{ secret env://A | upper }}").is_err());
        assert!(parse("{{ secret env://A ").is_err());
    }
}
