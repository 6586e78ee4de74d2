//! coffer as a git filter: `setup` writes the drivers into git's config, `process`
//! speaks the long-running filter protocol, `filter` holds clean/smudge, `merge` the
//! merge driver, `status` the checks and lock/unlock.

pub mod filter;
mod keycache;
pub mod merge;
mod merge_values;
pub mod pktline;
pub mod process;
mod seen;
pub mod setup;
pub mod status;
pub mod workspace;
pub mod worktree;

pub use filter::Filter;
pub use merge_values::merge as merge_values;

use std::path::Path;
use std::process::Command;

use crate::{Error, Result};

/// Replace one of the filter's records under `.git/coffer/` with `bytes`: a new file
/// (0600, as tempfile makes them) renamed over the old, so a reader sees one or the
/// other.
fn replace_record(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = file.parent().expect("a file in a directory");
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(file).map_err(|e| e.error)?;
    Ok(())
}

/// Stage `file` (`git add`) when it is in a git repository; outside one, nothing.
pub fn stage_file(file: &Path) -> Result<()> {
    let abs = std::fs::canonicalize(file).map_err(|e| Error::io(file, e))?;
    let (Some(dir), Some(base)) = (abs.parent(), abs.file_name().and_then(|n| n.to_str())) else {
        return Ok(());
    };
    if git2::Repository::discover(dir).is_err() {
        return Ok(());
    }
    git(dir, &["add", "--"], &[base.to_string()]).map(|_| ())
}

/// Run the real git in `dir` with `args` then `paths`; its stdout, or its stderr as the error.
pub(crate) fn git(dir: &Path, args: &[&str], paths: &[String]) -> Result<String> {
    let out = Command::new("git")
        .args(args)
        .args(paths)
        .current_dir(dir)
        .output()
        .map_err(|e| Error::Git(format!("cannot run git: {e}")))?;
    if !out.status.success() {
        return Err(Error::Git(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
}
