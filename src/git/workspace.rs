//! The encrypted files of a working tree, for commands that act on many (`updatekeys`,
//! `rotate`, `access`): found by content, not by extension. In a git repository they are
//! the tracked files plus the untracked ones git does not ignore; a file the coffer filter
//! covers is encrypted in the index (its working copy is plaintext), so its bytes are the
//! staged blob's.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::format::Format;
use crate::glob::slashed;
use crate::{Error, Result};

/// One encrypted file.
pub struct Found {
    /// The path as shown: relative to the repository root (or as given), `/`-separated.
    pub name: String,
    /// Its working-tree path.
    pub path: PathBuf,
    pub format: Format,
    /// The encrypted bytes: the staged blob for a covered file, else the file's.
    pub bytes: Zeroizing<Vec<u8>>,
    /// The coffer filter covers it: re-keyed in the index, not in the working tree.
    pub covered: bool,
    /// For a covered file, the staged blob read: staging checks it is still the one there.
    pub staged_id: Option<git2::Oid>,
    /// Its working copy has changes not staged: left alone.
    pub unstaged: bool,
}

/// What to look at: everything, or these files, directories (recursive) and globs.
pub enum Selection<'a> {
    All,
    Paths(&'a [PathBuf]),
}

/// The repository around `dir`, if there is one: (git2 handle, root).
fn repository(dir: &Path) -> Option<(git2::Repository, PathBuf)> {
    let repo = git2::Repository::discover(dir).ok()?;
    let root = std::fs::canonicalize(repo.workdir()?).ok()?;
    Some((repo, root))
}

/// `path` relative to the root of its repository, `/`-separated, when it is in one.
pub fn repo_relative(path: &Path) -> Option<String> {
    let abs = std::fs::canonicalize(path).ok()?;
    let (_, root) = repository(if abs.is_dir() { &abs } else { abs.parent()? })?;
    Some(slashed(abs.strip_prefix(root).ok()?))
}

/// `path` as committed in HEAD, as text, when it is in a repository.
pub fn committed_text(path: &Path) -> Option<String> {
    let abs = std::fs::canonicalize(path).ok()?;
    let (repo, root) = repository(abs.parent()?)?;
    let tree = repo.head().ok()?.peel_to_tree().ok()?;
    let entry = tree.get_path(abs.strip_prefix(root).ok()?).ok()?;
    let blob = repo.find_blob(entry.id()).ok()?;
    String::from_utf8(blob.content().to_vec()).ok()
}

/// `git` output split on NULs.
fn z_list(root: &Path, args: &[&str]) -> Result<Vec<String>> {
    let out = super::git(root, args, &[])?;
    Ok(out
        .split('\0')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect())
}

/// Paths whose working copy differs from the index (`git status`, so through the filter).
fn unstaged(root: &Path) -> Result<HashSet<String>> {
    let entries = z_list(
        root,
        &["status", "--porcelain=v1", "-z", "--untracked-files=no"],
    )?;
    let mut out = HashSet::new();
    let mut it = entries.into_iter();
    while let Some(e) = it.next() {
        let (x, y) = (e.as_bytes().first().copied(), e.as_bytes().get(1).copied());
        if let Some(path) = e.get(3..) {
            if y != Some(b' ') {
                out.insert(path.to_string());
            }
        }
        // A rename or copy names its source next.
        if matches!(x, Some(b'R' | b'C')) {
            it.next();
        }
    }
    Ok(out)
}

/// Whether `rel` is selected by `wanted` (repository-relative files, directories, globs).
fn selected(rel: &str, wanted: &[String]) -> bool {
    wanted.iter().any(|w| {
        w.is_empty()
            || rel == w
            || rel.starts_with(&format!("{w}/"))
            || (w.contains(['*', '?', '[']) && crate::glob::matches(w, rel))
    })
}

/// The encrypted files of the working tree around `cwd` that `selection` names, sorted by
/// name. Symbolic links are skipped: a link's target is looked at under its own name when
/// it is in the tree, and never followed out of it.
pub fn encrypted_files(cwd: &Path, selection: Selection<'_>) -> Result<Vec<Found>> {
    let cwd = std::fs::canonicalize(cwd).map_err(|e| Error::io(cwd, e))?;
    // The repository here, else the one the first path named is in.
    let first = match &selection {
        Selection::Paths(paths) => paths.first().map(|p| cwd.join(p)),
        Selection::All => None,
    };
    let found = repository(&cwd).or_else(|| {
        let p = std::fs::canonicalize(first?).ok()?;
        repository(if p.is_dir() { &p } else { p.parent()? })
    });
    let Some((repo, root)) = found else {
        return outside_git(&cwd, selection);
    };
    // Without the filter set up here, covered files are ciphertext in the working tree,
    // and a later `git add` would stage that: re-key them there, as plain files.
    let filter_on = super::setup::is_set_up(&repo);
    let wanted: Vec<String> = match selection {
        Selection::All => vec![String::new()],
        Selection::Paths(paths) => paths
            .iter()
            .map(|p| {
                let abs = cwd.join(p);
                // A path that exists is made canonical; a glob is taken as written.
                let abs = std::fs::canonicalize(&abs).unwrap_or(abs);
                match abs.strip_prefix(&root) {
                    Ok(rel) => Ok(slashed(rel)),
                    Err(_) => Err(Error::Usage(format!(
                        "{} is outside the repository at {}",
                        p.display(),
                        root.display()
                    ))),
                }
            })
            .collect::<Result<_>>()?,
    };
    let listed = z_list(
        &root,
        &[
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ],
    )?;
    let unstaged = unstaged(&root)?;
    let index = repo
        .index()
        .map_err(|e| Error::Git(format!("git: {}", e.message())))?;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for rel in listed {
        if !seen.insert(rel.clone()) || !selected(&rel, &wanted) {
            continue;
        }
        let path = root.join(&rel);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let covered = filter_on
            && repo
                .get_attr(
                    Path::new(&rel),
                    "filter",
                    git2::AttrCheckFlags::INDEX_THEN_FILE,
                )
                .ok()
                .flatten()
                == Some("coffer");
        let staged_id = index.get_path(Path::new(&rel), 0).map(|e| e.id);
        let staged = staged_id
            .and_then(|id| repo.find_blob(id).ok())
            .map(|b| Zeroizing::new(b.content().to_vec()));
        let bytes = match (covered, staged) {
            (true, Some(blob)) => blob,
            // A covered file not staged yet is plaintext the filter encrypts on add.
            (true, None) => continue,
            (false, _) => Zeroizing::new(std::fs::read(&path).map_err(|e| Error::io(&path, e))?),
        };
        let Some(format) = crate::format::detect(&path, &bytes) else {
            continue;
        };
        out.push(Found {
            unstaged: unstaged.contains(&rel),
            name: rel,
            path,
            format,
            bytes,
            covered,
            staged_id: staged_id.filter(|_| covered),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Outside a repository: the given files, and the files below the given directories.
fn outside_git(cwd: &Path, selection: Selection<'_>) -> Result<Vec<Found>> {
    let Selection::Paths(paths) = selection else {
        return Err(Error::Usage(
            "--all means every file of a git repository, and this is not in one; name files or directories".into(),
        ));
    };
    let mut files = Vec::new();
    for p in paths {
        let abs = cwd.join(p);
        let meta = std::fs::symlink_metadata(&abs).map_err(|e| Error::io(p, e))?;
        if meta.is_dir() {
            for f in crate::glob::expand(&abs, "**").map_err(|e| Error::io(p, e))? {
                let rel = f.strip_prefix(&abs).unwrap_or(&f);
                files.push((p.join(rel), f));
            }
        } else if meta.is_file() {
            files.push((p.clone(), abs));
        }
    }
    let mut out = Vec::new();
    for (shown, path) in files {
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            continue;
        }
        let bytes = Zeroizing::new(std::fs::read(&path).map_err(|e| Error::io(&path, e))?);
        let Some(format) = crate::format::detect(&path, &bytes) else {
            continue;
        };
        out.push(Found {
            name: slashed(&shown),
            path,
            format,
            bytes,
            covered: false,
            unstaged: false,
            staged_id: None,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    // `dir` and `./dir` name the same files: one job each.
    let mut seen = HashSet::new();
    out.retain(|f| seen.insert(std::fs::canonicalize(&f.path).unwrap_or_else(|_| f.path.clone())));
    Ok(out)
}

/// What to stage: a covered file's name, the blob it had when read, and its new bytes.
pub struct Staged {
    pub name: String,
    pub was: git2::Oid,
    pub bytes: Vec<u8>,
}

/// Stage each new blob in place of the one read, keeping the index entry's mode. Returns
/// the files not staged, with why: an entry that changed since (a `git add` meanwhile) is
/// left as it is.
pub fn stage(path: &Path, staged: &[Staged]) -> Result<Vec<(String, String)>> {
    if staged.is_empty() {
        return Ok(Vec::new());
    }
    let git = |e: git2::Error| Error::Git(format!("git: {}", e.message()));
    let dir = if path.is_dir() {
        path
    } else {
        path.parent().unwrap_or(path)
    };
    let (repo, _) = repository(dir).ok_or_else(|| Error::Git("not in a git repository".into()))?;
    // git's own protocol: hold `index.lock` from before the index is read to the rename
    // over it, so no `git add` landing meanwhile is written back over. The index is read
    // and changed in a copy, which then becomes the lock file's content.
    let git_dir = repo.path().to_path_buf();
    let lock_path = git_dir.join("index.lock");
    let _lock = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&lock_path)
        .map_err(|e| {
            Error::Git(format!(
                "{}: {e}; another git process is running (rerun when it is done)",
                lock_path.display()
            ))
        })?;
    let release = |result: Result<Vec<(String, String)>>| {
        if result.is_err() {
            let _ = std::fs::remove_file(&lock_path);
        }
        result
    };
    let copy = git_dir.join(format!("coffer-index-{}", std::process::id()));
    let changed = (|| {
        let index_file = git_dir.join("index");
        match std::fs::copy(&index_file, &copy) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&index_file, e)),
        }
        let mut index = git2::Index::open(&copy).map_err(git)?;
        let left = stage_into(&repo, &mut index, staged)?;
        index.write().map_err(git)?;
        std::fs::rename(&copy, &lock_path).map_err(|e| Error::io(&lock_path, e))?;
        std::fs::rename(&lock_path, &index_file).map_err(|e| Error::io(&index_file, e))?;
        Ok(left)
    })();
    let _ = std::fs::remove_file(&copy);
    release(changed)
}

/// Each new blob in place of the one read, in `index`; what was not staged, with why.
fn stage_into(
    repo: &git2::Repository,
    index: &mut git2::Index,
    staged: &[Staged],
) -> Result<Vec<(String, String)>> {
    let git = |e: git2::Error| Error::Git(format!("git: {}", e.message()));
    let mut left = Vec::new();
    for Staged { name, was, bytes } in staged {
        let Some(mut entry) = index.get_path(Path::new(name), 0).filter(|e| e.id == *was) else {
            left.push((
                name.clone(),
                "its staged version changed since the plan; run it again".into(),
            ));
            continue;
        };
        entry.id = repo.blob(bytes).map_err(git)?;
        // A size of 0 tells git the stat data was never read, so it compares the working
        // copy's content (through the filter, which reuses the staged data key) instead of
        // taking the changed size for a change.
        entry.mtime = git2::IndexTime::new(0, 0);
        entry.ctime = git2::IndexTime::new(0, 0);
        entry.file_size = 0;
        index.add(&entry).map_err(git)?;
    }
    Ok(left)
}
