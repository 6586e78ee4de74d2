//! Path globs as `.coffer.yaml` writes them (`deploy/prod/*.env`, `secrets/**/*.yaml`):
//! matched against `/`-separated relative paths, and expanded by walking only below a
//! pattern's literal leading directories.
//!
//! `*` and `?` stay within one path segment, `[abc]`, `[a-z]` and `[!x]` are classes, and a
//! `**` segment is any number of segments (none included).

use std::path::{Path, PathBuf};

/// Whether `path` (relative, `/`-separated) matches `pattern`.
pub fn matches(pattern: &str, path: &str) -> bool {
    let pat: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    segments(&pat, &segs)
}

fn segments(pat: &[&str], path: &[&str]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => (0..=path.len()).any(|skip| segments(rest, &path[skip..])),
        Some((p, rest)) => match path.split_first() {
            Some((s, more)) => segment(p.as_bytes(), s.as_bytes()) && segments(rest, more),
            None => false,
        },
    }
}

/// One segment against one pattern segment, byte by byte (names are compared as bytes;
/// a class holds ASCII).
fn segment(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|skip| segment(rest, &s[skip..])),
        Some((b'?', rest)) => !s.is_empty() && segment(rest, &s[1..]),
        Some((b'[', rest)) => match (class(rest), s.split_first()) {
            (Some((ok, after)), Some((c, more))) => ok(*c) && segment(after, more),
            // An unclosed `[` is itself.
            (None, Some((b'[', more))) => segment(rest, more),
            _ => false,
        },
        Some((c, rest)) => s.first() == Some(c) && segment(rest, &s[1..]),
    }
}

/// The class after a `[`: its test and the pattern after the `]`.
#[allow(clippy::type_complexity)]
fn class(p: &[u8]) -> Option<(Box<dyn Fn(u8) -> bool + '_>, &[u8])> {
    let (negated, body) = match p.first() {
        Some(b'!') | Some(b'^') => (true, &p[1..]),
        _ => (false, p),
    };
    // A `]` first in the class is a member.
    let end = body.iter().skip(1).position(|&c| c == b']')? + 1;
    let members = &body[..end];
    let test = move |c: u8| {
        let mut i = 0;
        let mut found = false;
        while i < members.len() {
            if i + 2 < members.len() && members[i + 1] == b'-' {
                found |= members[i] <= c && c <= members[i + 2];
                i += 3;
            } else {
                found |= members[i] == c;
                i += 1;
            }
        }
        found != negated
    };
    Some((Box::new(test), &body[end + 1..]))
}

/// The files under `root` whose path relative to it matches `pattern`, sorted. Walks from
/// the pattern's literal leading directories; skips `.git` and does not follow symlinked
/// directories (a link may leave the repository or loop).
pub fn expand(root: &Path, pattern: &str) -> std::io::Result<Vec<PathBuf>> {
    let segs: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    let literal = segs
        .iter()
        .take(segs.len().saturating_sub(1))
        .take_while(|s| !s.contains(['*', '?', '[']))
        .count();
    let start: PathBuf = segs[..literal].iter().collect();
    let mut out = Vec::new();
    let mut dirs = vec![start];
    while let Some(rel) = dirs.pop() {
        let entries = match std::fs::read_dir(root.join(&rel)) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            if name == ".git" {
                continue;
            }
            let path = rel.join(&name);
            let kind = entry.file_type()?;
            if kind.is_dir() {
                dirs.push(path);
            } else if (kind.is_file() || kind.is_symlink())
                && matches(pattern, &slashed(&path))
                && root.join(&path).is_file()
            {
                out.push(root.join(&path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A relative path as globs, rules and tags see it: components joined with `/`.
pub fn slashed(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_within_and_across_segments() {
        let yes = [
            ("deploy/prod/*.env", "deploy/prod/web.env"),
            ("deploy/*/*.env", "deploy/staging/.env"),
            ("**/*.yaml", "a.yaml"),
            ("**/*.yaml", "a/b/c.yaml"),
            ("secrets/**", "secrets/x/y"),
            ("a/**/b", "a/b"),
            ("f?.env", "f1.env"),
            ("[ab]x", "bx"),
            ("[a-c]x", "cx"),
            ("[!a]x", "bx"),
            ("[]]x", "]x"),
            ("[x", "[x"),
        ];
        for (p, s) in yes {
            assert!(matches(p, s), "{p} should match {s}");
        }
        let no = [
            ("deploy/prod/*.env", "deploy/prod/sub/web.env"),
            ("deploy/prod/*.env", "deploy/prod.env"),
            ("*.env", "a/b.env"),
            ("f?.env", "f.env"),
            ("[!a]x", "ax"),
            ("[a-c]x", "dx"),
            ("a/**/b", "a/c"),
        ];
        for (p, s) in no {
            assert!(!matches(p, s), "{p} should not match {s}");
        }
    }

    #[test]
    fn expansion_walks_below_the_literal_part_only() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "deploy/prod/a.env",
            "deploy/prod/b.env",
            "deploy/prod/c.yaml",
            "deploy/dev/a.env",
            ".git/x.env",
        ] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        let names = |pattern: &str| -> Vec<String> {
            expand(dir.path(), pattern)
                .unwrap()
                .iter()
                .map(|p| slashed(p.strip_prefix(dir.path()).unwrap()))
                .collect()
        };
        assert_eq!(
            names("deploy/prod/*.env"),
            ["deploy/prod/a.env", "deploy/prod/b.env"]
        );
        assert_eq!(names("**/a.env"), ["deploy/dev/a.env", "deploy/prod/a.env"]);
        assert_eq!(names("nowhere/*.env"), Vec::<String>::new());
    }
}
