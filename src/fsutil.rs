//! File writes that never leave a half-written file behind.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::{Error, Result};

/// Temporary files being written, so that a signal handler can remove them (a partly
/// written one may hold plaintext).
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Remove every temporary file a write has not finished with. For signal handlers:
/// the process is about to end.
pub fn remove_pending() {
    if let Ok(mut pending) = PENDING.lock() {
        for p in pending.drain(..) {
            let _ = fs::remove_file(p);
        }
    }
}

fn pending(path: &Path, add: bool) {
    if let Ok(mut p) = PENDING.lock() {
        if add {
            p.push(path.to_path_buf());
        } else {
            p.retain(|x| x != path);
        }
    }
}

/// The file a path names once symlinks are followed (it may not exist yet): an
/// in-place write replaces the target and keeps the link.
fn resolve(path: &Path) -> Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = fs::read_link(&p).map_err(|e| Error::io(&p, e))?;
                p = match p.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(Error::io(
        path,
        std::io::Error::other("too many levels of symbolic links"),
    ))
}

/// The process umask, read without changing it for longer than the call.
fn umask() -> u32 {
    use rustix::fs::Mode;
    let old = rustix::process::umask(Mode::from_raw_mode(0o077));
    rustix::process::umask(old);
    old.as_raw_mode()
}

/// Write `data` to a temp file beside `path`, then rename it over `path`. Through a
/// symlink, the target is replaced and the link kept. The file keeps the mode, owner
/// and group of the file it replaces (or nothing is written); a new file gets
/// `new_mode` less the umask. `force_mode` overrides both (plaintext outputs are
/// always 0600).
pub fn write_atomic(
    path: &Path,
    data: &[u8],
    new_mode: u32,
    force_mode: Option<u32>,
) -> Result<()> {
    let path = &resolve(path)?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let existing = fs::metadata(path).ok();
    let mode = force_mode.unwrap_or_else(|| match &existing {
        Some(m) => m.permissions().mode() & 0o7777,
        None => new_mode & !umask(),
    });
    let io = |e| Error::io(path, e);
    // tempfile creates the file 0600, so plaintext is never readable by others mid-write.
    let tmp = tempfile::Builder::new()
        .prefix(".coffer-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io)?;
    pending(tmp.path(), true);
    let result = (|| {
        let mut f = tmp.as_file();
        f.write_all(data).map_err(io)?;
        if let Some(m) = &existing {
            let made = f.metadata().map_err(io)?;
            if (m.uid(), m.gid()) != (made.uid(), made.gid()) {
                std::os::unix::fs::fchown(f, Some(m.uid()), Some(m.gid())).map_err(|e| {
                    let why = format!(
                        "cannot keep the file's owner and group ({e}); nothing was written"
                    );
                    Error::io(path, std::io::Error::new(e.kind(), why))
                })?;
            }
        }
        tmp.as_file().sync_all().map_err(io)?;
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode)).map_err(io)
    })();
    let tmp_path = tmp.path().to_path_buf();
    let result = result.and_then(|()| tmp.persist(path).map(drop).map_err(|e| io(e.error)));
    pending(&tmp_path, false);
    result
}

/// Write a new file with `mode`, failing if it exists.
pub fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    f.write_all(data).map_err(|e| Error::io(path, e))?;
    f.sync_all().map_err(|e| Error::io(path, e))
}
