//! The library's error type. Variants carry the file and key path they concern, never a
//! secret value.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },

    #[error("{file}: {what}")]
    Unsupported { file: String, what: String },

    #[error(
        "{file}: already encrypted (it has sops metadata); decrypt it first or use `coffer edit`"
    )]
    AlreadyEncrypted { file: String },

    #[error("{file}: not encrypted (no sops metadata found)")]
    NotEncrypted { file: String },

    #[error("{file}: invalid sops metadata: {message}")]
    Metadata { file: String, message: String },

    #[error("{file}: no identity could open the data key; it was encrypted for: {}", recipients.join(", "))]
    NoKey {
        file: String,
        recipients: Vec<String>,
        /// One line per master key saying why it did not open the data key.
        reasons: Vec<String>,
    },

    #[error("{file}: MAC mismatch: the file was altered or corrupted (use --ignore-mac to recover what is readable)")]
    MacMismatch { file: String },

    #[error("{file}: the file has no MAC (use --ignore-mac to read it anyway)")]
    MacMissing { file: String },

    #[error("{file}: cannot decrypt the value at {path}: {reason}")]
    Value {
        file: String,
        path: String,
        reason: String,
    },

    #[error("{file}: key path {path} not found")]
    PathNotFound { file: String, path: String },

    #[error("invalid key path {path:?}: {reason}")]
    BadPath { path: String, reason: String },

    #[error("{file}: no master key to encrypt with (pass --age, or add a creation rule to .coffer.yaml)")]
    NoRecipients { file: String },

    #[error("{0}")]
    Key(String),

    #[error("{file}: {message}{}", rescued.as_ref().map(|p| format!("; your edit is saved in {}", p.display())).unwrap_or_default())]
    Editor {
        file: String,
        message: String,
        rescued: Option<PathBuf>,
    },

    #[error("{} file(s) covered by filter=coffer are staged in plaintext: {}", files.len(), files.join(", "))]
    PlaintextStaged { files: Vec<String> },

    #[error("{failed} of {total} change(s) not applied (listed above); the others were. Run the same command again to apply the rest")]
    PartlyApplied { failed: usize, total: usize },

    #[error("{note}; refused by --strict-layout, nothing was written")]
    LayoutRefused { note: String },

    #[error("interrupted; nothing was written")]
    Interrupted,

    #[error("{file}: {message}")]
    Config { file: String, message: String },

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Exit code a script can rely on; documented in the README.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::NoKey { .. } => 3,
            Error::MacMismatch { .. } | Error::MacMissing { .. } | Error::Value { .. } => 4,
            Error::Syntax { .. } | Error::Unsupported { .. } | Error::LayoutRefused { .. } => 5,
            Error::AlreadyEncrypted { .. } | Error::NotEncrypted { .. } => 6,
            Error::PathNotFound { .. } | Error::BadPath { .. } => 7,
            Error::Editor { .. } => 8,
            Error::PartlyApplied { .. } => 9,
            Error::Interrupted => 130,
            _ => 1,
        }
    }
}
