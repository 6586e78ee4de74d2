//! coffer: keep a team's secrets in git, encrypted in the sops v3 file format.
//!
//! The data flow is `format::parse` → [`tree::Document`] → [`cipher`] per leaf →
//! format-specific splicing back into the original text, so that keys, comments and
//! layout stay exactly as the author wrote them. [`sops`] composes these steps into the
//! operations the CLI exposes.

pub mod aws;
pub mod cipher;
pub mod config;
pub mod error;
pub mod format;
pub mod fsutil;
pub mod git;
pub mod glob;
pub mod keys;
pub mod metadata;
pub mod mutate;
pub mod path;
pub mod rekey;
pub mod render;
pub mod scalar;
pub mod sops;
pub mod team;
pub mod tree;

pub use error::{Error, Result};
