//! File writes that never leave a half-written file behind.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::{Error, Result};

/// Write `data` to a temp file beside `path`, then rename it over `path`. The file
/// keeps the permissions of the file it replaces; a new file gets `new_mode`.
/// `force_mode` overrides both (plaintext outputs are always 0600).
pub fn write_atomic(
    path: &Path,
    data: &[u8],
    new_mode: u32,
    force_mode: Option<u32>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mode = force_mode.unwrap_or_else(|| {
        fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(new_mode)
    });
    let io = |e| Error::io(path, e);
    // tempfile creates the file 0600, so plaintext is never readable by others mid-write.
    let mut tmp = tempfile::Builder::new()
        .prefix(".coffer-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io)?;
    tmp.write_all(data).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode)).map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
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
