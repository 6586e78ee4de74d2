//! coffer as a git filter: `setup` writes the drivers into git's config, `process`
//! speaks the long-running filter protocol, `filter` holds clean/smudge, `merge` the
//! merge driver, `status` the checks and lock/unlock.

pub mod filter;
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
