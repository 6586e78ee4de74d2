//! coffer as a git filter: `setup` writes the drivers into git's config, `process`
//! speaks the long-running filter protocol, `filter` holds clean/smudge, `merge` the
//! merge driver, `status` the checks and lock/unlock.

pub mod filter;
pub mod merge;
pub mod pktline;
pub mod process;
pub mod setup;
pub mod status;

pub use filter::Filter;
