//! Which tracked files the filter covers, whether their staged and committed blobs are
//! encrypted, and `lock` / `unlock` of the working tree.

use std::path::Path;

use super::filter::{is_encrypted, Filter};
use crate::format::Format;
use crate::sops::OpenOptions;
use crate::{Error, Result};

pub struct Covered {
    pub path: String,
    /// `None` when the file is empty (nothing to encrypt) or absent there.
    pub index_encrypted: Option<bool>,
    pub head_encrypted: Option<bool>,
}

fn blob_state(repo: &git2::Repository, id: git2::Oid, path: &str) -> Option<bool> {
    let blob = repo.find_blob(id).ok()?;
    let content = blob.content();
    (!content.is_empty()).then(|| is_encrypted(Format::from_path(Path::new(path)), content))
}

/// Every path in the index whose `filter` attribute is `coffer`.
pub fn covered(repo: &git2::Repository) -> Result<Vec<Covered>> {
    let git = |e: git2::Error| Error::Git(format!("git: {}", e.message()));
    let index = repo.index().map_err(git)?;
    let head = repo.head().ok().and_then(|h| h.peel_to_tree().ok());
    let mut out = Vec::new();
    for entry in index.iter() {
        let path = String::from_utf8_lossy(&entry.path).into_owned();
        let attr = repo
            .get_attr(
                Path::new(&path),
                "filter",
                git2::AttrCheckFlags::INDEX_THEN_FILE,
            )
            .map_err(git)?;
        if attr != Some("coffer") {
            continue;
        }
        let head_encrypted = head
            .as_ref()
            .and_then(|t| t.get_path(Path::new(&path)).ok())
            .and_then(|e| blob_state(repo, e.id(), &path));
        out.push(Covered {
            index_encrypted: blob_state(repo, entry.id, &path),
            head_encrypted,
            path,
        });
    }
    Ok(out)
}

/// Covered files whose encrypted blob in the index (and, with `head`, in HEAD where it
/// differs) holds something other than the creation rules say: a value or comment the
/// rules encrypt in clear, or metadata other than its rule's (`rekey::drift`). Read from
/// the text alone, so a CI job without a key catches them. Each with where and why; and
/// the files no creation rule matches, whose metadata nothing can be checked against.
pub fn weakened(
    repo: &git2::Repository,
    workdir: &Path,
    covered: &[Covered],
    rules: &mut crate::config::RulesCache,
    head: bool,
) -> Result<Weakened> {
    let git = |e: git2::Error| Error::Git(format!("git: {}", e.message()));
    let index = repo.index().map_err(git)?;
    let head_tree = repo.head().ok().and_then(|h| h.peel_to_tree().ok());
    let mut out = Vec::new();
    let mut ruleless = Vec::new();
    for c in covered {
        let staged = index.get_path(Path::new(&c.path), 0).map(|e| e.id);
        let committed = head_tree
            .as_ref()
            .and_then(|t| t.get_path(Path::new(&c.path)).ok())
            .map(|e| e.id());
        let mut blobs = vec![("staged", staged, c.index_encrypted)];
        if head && committed != staged {
            blobs.push(("committed", committed, c.head_encrypted));
        }
        for (place, id, encrypted) in blobs {
            let (Some(id), Some(true)) = (id, encrypted) else {
                continue;
            };
            let blob = repo.find_blob(id).map_err(git)?;
            let format = Format::from_path(Path::new(&c.path));
            if super::filter::is_conflict(blob.content()) {
                continue;
            }
            let read = crate::sops::read_metadata(&c.path, format, blob.content().to_vec())
                .and_then(|(doc, meta, _)| {
                    crate::sops::clear_parts(&c.path, &doc, &meta).map(|clear| (meta, clear))
                });
            let (meta, clear) = match read {
                Ok(found) => found,
                Err(e) => {
                    out.push((
                        c.path.clone(),
                        format!("{place} with metadata that does not read ({e})"),
                    ));
                    continue;
                }
            };
            let why = if !clear.is_empty() {
                format!(
                    "{place} with what the rules encrypt in clear: {}",
                    clear.describe()
                )
            } else {
                match rules.rule_for(&workdir.join(&c.path)) {
                    Ok(Some(rule)) => {
                        let drift = crate::rekey::drift(&meta, &rule).unwrap_or_default();
                        if drift.is_empty() {
                            continue;
                        }
                        format!(
                            "{place} otherwise than its creation rule says: {}",
                            drift.describe()
                        )
                    }
                    Ok(None) => {
                        if !ruleless.contains(&c.path) {
                            ruleless.push(c.path.clone());
                        }
                        continue;
                    }
                    Err(_) => continue,
                }
            };
            out.push((c.path.clone(), why));
        }
    }
    Ok(Weakened {
        files: out,
        ruleless,
    })
}

/// What `weakened` found.
pub struct Weakened {
    /// Covered files stored otherwise than the rules say, with where and why.
    pub files: Vec<(String, String)>,
    /// Covered files no creation rule matches.
    pub ruleless: Vec<String>,
}

/// Covered files whose staged blob differs from HEAD's and fails to open with a key at
/// hand (MAC, value authentication), each with why. Without a key nothing can be told, and
/// nothing is reported.
pub fn staged_changes_that_do_not_open(
    repo: &git2::Repository,
    covered: &[Covered],
    keyring: &crate::keys::Keyring,
) -> Result<Vec<(String, String)>> {
    let git = |e: git2::Error| Error::Git(format!("git: {}", e.message()));
    let index = repo.index().map_err(git)?;
    let head = repo.head().ok().and_then(|h| h.peel_to_tree().ok());
    let mut out = Vec::new();
    for c in covered.iter().filter(|c| c.index_encrypted == Some(true)) {
        let Some(entry) = index.get_path(Path::new(&c.path), 0) else {
            continue;
        };
        let committed = head
            .as_ref()
            .and_then(|t| t.get_path(Path::new(&c.path)).ok())
            .map(|e| e.id());
        if committed == Some(entry.id) {
            continue;
        }
        let blob = repo.find_blob(entry.id).map_err(git)?;
        let format = Format::from_path(Path::new(&c.path));
        match crate::sops::open(
            &c.path,
            format,
            blob.content().to_vec(),
            keyring,
            OpenOptions::default(),
        ) {
            Ok(_) | Err(Error::NoKey { .. }) => {}
            Err(
                e @ (Error::MacMismatch { .. }
                | Error::MacMissing { .. }
                | Error::Value { .. }
                | Error::Syntax { .. }),
            ) => {
                let why = match e {
                    Error::MacMismatch { .. } => "MAC mismatch".to_string(),
                    Error::MacMissing { .. } => "no MAC".to_string(),
                    Error::Syntax { .. } => "not valid syntax".to_string(),
                    _ => "a value fails authentication".to_string(),
                };
                out.push((c.path.clone(), why));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Covered files whose working tree holds ciphertext (checked out without a key, or
/// before setup).
pub fn locked(repo: &git2::Repository, workdir: &Path) -> Result<Vec<String>> {
    let mut still_encrypted = Vec::new();
    for c in covered(repo)? {
        let file = workdir.join(&c.path);
        let Ok(content) = std::fs::read(&file) else {
            continue;
        };
        if is_encrypted(Format::from_path(Path::new(&c.path)), &content) {
            still_encrypted.push(c.path);
        }
    }
    Ok(still_encrypted)
}

/// Put plaintext back in place of ciphertext left by a checkout without a key.
pub fn unlock(repo: &git2::Repository, workdir: &Path) -> Result<Vec<String>> {
    let still_encrypted = locked(repo, workdir)?;
    if still_encrypted.is_empty() {
        return Ok(Vec::new());
    }
    // Removing the files makes checkout write them again, through smudge.
    for p in &still_encrypted {
        let f = workdir.join(p);
        std::fs::remove_file(&f).map_err(|e| Error::io(&f, e))?;
    }
    super::git(workdir, &["checkout", "--"], &still_encrypted)?;
    Ok(still_encrypted)
}

/// Replace unmodified plaintext files with their committed ciphertext.
pub fn lock(
    filter: &mut Filter,
    repo: &git2::Repository,
    workdir: &Path,
) -> Result<(Vec<String>, Vec<String>)> {
    let (mut locked, mut modified) = (Vec::new(), Vec::new());
    for c in covered(repo)? {
        let file = workdir.join(&c.path);
        let Ok(content) = std::fs::read(&file) else {
            continue;
        };
        let Some(blob) = filter.committed_blob(&c.path) else {
            continue;
        };
        if content.is_empty() || is_encrypted(Format::from_path(Path::new(&c.path)), &content) {
            continue;
        }
        // Only when the file is what the index holds: never lose an uncommitted edit.
        if filter
            .clean(&c.path, content)
            .ok()
            .as_deref()
            .map(|v| &v[..])
            != Some(&blob[..])
        {
            modified.push(c.path);
            continue;
        }
        crate::fsutil::write_atomic(&file, &blob, 0o644, None, crate::fsutil::Target::InPlace)?;
        locked.push(c.path);
    }
    // The files changed size, which git takes as modified without asking the filter;
    // adding them stores the same blobs and refreshes the index's stat data.
    if !locked.is_empty() {
        super::git(workdir, &["add", "--"], &locked)?;
    }
    Ok((locked, modified))
}
