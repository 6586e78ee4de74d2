//! The library's error type. Variants carry the file and key path they concern, never a
//! secret value.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{file}: {error}")]
    Syntax {
        file: String,
        error: crate::format::SyntaxError,
    },

    #[error("{file}: {what}")]
    Unsupported { file: String, what: String },

    #[error("{file}: already encrypted (it has sops metadata)")]
    AlreadyEncrypted { file: String },

    #[error("{file}: not encrypted (no sops metadata found)")]
    NotEncrypted { file: String },

    #[error("{file}: invalid sops metadata: {error}")]
    Metadata {
        file: String,
        error: crate::metadata::MetaError,
    },

    #[error("{file}: no identity could open the data key; it was encrypted for: {}", recipients.join(", "))]
    NoKey {
        file: String,
        recipients: Vec<String>,
        /// One line per master key saying why it did not open the data key.
        reasons: Vec<String>,
    },

    #[error("{file}: {why}")]
    EntryAltered { file: String, why: String },

    #[error("{file}: MAC mismatch: the file was altered or corrupted")]
    MacMismatch { file: String },

    #[error("{file}: the file has no MAC")]
    MacMissing { file: String },

    #[error("{file}: cannot decrypt the value at {path}: {reason}")]
    Value {
        file: String,
        path: String,
        reason: String,
    },

    /// The tree, or a value of it, cannot be written in the format asked for.
    #[error("{file}: {error}")]
    Write {
        file: String,
        error: crate::format::WriteError,
    },

    /// What coffer would write does not read back as what it was given; nothing is
    /// written.
    #[error("{file}: cannot be {doing} so that it reads back ({why})")]
    ReadBack {
        file: String,
        /// What was asked: "encrypted", "decrypted", "converted", "extracted".
        doing: &'static str,
        why: crate::sops::verify::Mismatch,
    },

    #[error("{file}: the value to set: {error}")]
    SetValue {
        file: String,
        error: crate::mutate::BadValue,
    },

    #[error("{file}: key path {path} not found")]
    PathNotFound { file: String, path: String },

    #[error("invalid key path {path:?}: {reason}")]
    BadPath { path: String, reason: String },

    #[error("{file}: no master key to encrypt with")]
    NoRecipients { file: String },

    /// The command line asks for something that cannot be done.
    #[error("{0}")]
    Usage(String),

    /// An AWS call failed, or answered what coffer cannot use.
    #[error(transparent)]
    Aws(#[from] crate::aws::CallError),

    /// No AWS credentials could be made (a profile, a role, an MFA device).
    #[error(transparent)]
    AwsSession(#[from] crate::aws::session::SessionError),

    /// An AWS failure while working on one target (`push stage`, `migrate to prod`).
    #[error("{target}: {error}")]
    ForTarget {
        target: String,
        #[source]
        error: Box<Error>,
    },

    /// git, or the repository, did not do what was needed.
    #[error("{0}")]
    Git(String),

    /// A recipient, identity or master key is malformed or cannot be used.
    #[error(transparent)]
    KeySource(#[from] crate::keys::KeyError),

    /// One master key (`kms:ARN`, `pgp:FP`, `age:RECIPIENT`) could not wrap a data key.
    #[error("{key}: {error}")]
    Key {
        key: String,
        error: crate::keys::KeyError,
    },

    /// A command coffer was asked to run could not be run.
    #[error("{0}")]
    Exec(String),

    /// coffer will not do this (overwrite an identity, write binary to a terminal, …).
    #[error("{0}")]
    Refused(String),

    #[error("{file}: {message}{}", rescued.as_ref().map(|p| format!("; your edit is saved in {}", p.display())).unwrap_or_default())]
    Editor {
        file: String,
        message: String,
        rescued: Option<PathBuf>,
    },

    #[error("{} file(s) covered by filter=coffer are staged in plaintext: {}", files.len(), files.join(", "))]
    PlaintextStaged {
        files: Vec<String>,
        /// The repository has the coffer filter set up (else the fix starts with setup).
        filter_on: bool,
    },

    #[error("{} file(s) covered by filter=coffer are committed in plaintext, so their secrets are in history: {}", files.len(), files.join(", "))]
    PlaintextCommitted { files: Vec<String> },

    #[error("{} covered file(s) are not encrypted as the creation rules say: {}", files.len(), files.iter().map(|(f, why)| format!("{f} ({why})")).collect::<Vec<_>>().join("; "))]
    Weakened { files: Vec<(String, String)> },

    #[error("staged version does not open: {}", .files.iter().map(|(f, why)| format!("{f} ({why})")).collect::<Vec<_>>().join(", "))]
    StagedBroken { files: Vec<(String, String)> },

    #[error("{failed} of {total} change(s) not applied (listed above); the others were. Run the same command again to apply the rest")]
    PartlyApplied { failed: usize, total: usize },

    #[error("{changes} change(s) to make: AWS differs from the files (planned above)")]
    Drift { changes: usize },

    #[error("{note}; refused by --strict-layout, nothing was written")]
    LayoutRefused { note: String },

    #[error("interrupted; nothing was written")]
    Interrupted,

    #[error("{file}: {message}")]
    Config { file: String, message: String },

    /// A change of the people in a rules file that cannot be made as asked.
    #[error("{file}: {error}")]
    Team {
        file: String,
        error: crate::team::TeamError,
    },

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What kind of failure an error is: the error boundary picks exit codes and hints by
/// it (`coffer`'s codes in the CLI; sops's are its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Other,
    Usage,
    NoKey,
    Integrity,
    Syntax,
    EncryptedOrNot,
    KeyPath,
    Editor,
    PartlyApplied,
    Drift,
    Interrupted,
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        use crate::team::TeamError;
        match self {
            Error::Usage(_)
            | Error::Team {
                error: TeamError::Unknown(_) | TeamError::BadName(_) | TeamError::NoSuchRule(_),
                ..
            } => ErrorKind::Usage,
            Error::Team {
                error: TeamError::Syntax(_),
                ..
            } => ErrorKind::Syntax,
            Error::NoKey { .. } => ErrorKind::NoKey,
            Error::MacMismatch { .. }
            | Error::MacMissing { .. }
            | Error::Value { .. }
            | Error::StagedBroken { .. }
            | Error::EntryAltered { .. } => ErrorKind::Integrity,
            Error::Syntax { .. }
            | Error::Unsupported { .. }
            | Error::Write { .. }
            | Error::SetValue { .. }
            | Error::ReadBack { .. }
            | Error::LayoutRefused { .. } => ErrorKind::Syntax,
            Error::AlreadyEncrypted { .. } | Error::NotEncrypted { .. } => {
                ErrorKind::EncryptedOrNot
            }
            Error::PathNotFound { .. } | Error::BadPath { .. } => ErrorKind::KeyPath,
            Error::Editor { .. } => ErrorKind::Editor,
            Error::PartlyApplied { .. } => ErrorKind::PartlyApplied,
            Error::Drift { .. } => ErrorKind::Drift,
            Error::Interrupted => ErrorKind::Interrupted,
            Error::ForTarget { error, .. } => error.kind(),
            _ => ErrorKind::Other,
        }
    }
}

impl Error {
    /// The file the error is about, when it is about one.
    pub fn file(&self) -> Option<&str> {
        match self {
            Error::Syntax { file, .. }
            | Error::Unsupported { file, .. }
            | Error::AlreadyEncrypted { file }
            | Error::NotEncrypted { file }
            | Error::Metadata { file, .. }
            | Error::NoKey { file, .. }
            | Error::EntryAltered { file, .. }
            | Error::MacMismatch { file }
            | Error::MacMissing { file }
            | Error::Value { file, .. }
            | Error::Write { file, .. }
            | Error::SetValue { file, .. }
            | Error::ReadBack { file, .. }
            | Error::PathNotFound { file, .. }
            | Error::NoRecipients { file }
            | Error::Editor { file, .. }
            | Error::Config { file, .. }
            | Error::Team { file, .. } => Some(file),
            _ => None,
        }
    }

    /// `self` as met working on `target`, when it is an AWS failure (which needs
    /// saying where); any other error names its file already.
    pub fn for_target(self, target: impl Into<String>) -> Self {
        match self {
            Error::Aws(_) | Error::AwsSession(_) => Error::ForTarget {
                target: target.into(),
                error: Box::new(self),
            },
            e => e,
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// The longest line coffer prints about a failure; longer ones are cut in the middle.
const MAX_LINE: usize = 600;

/// Text for a terminal: control bytes (an escape sequence in a recipient or a key
/// name, a line break) shown escaped, and a line no longer than [`MAX_LINE`].
pub fn one_line(s: &str) -> String {
    let clean: String = s
        .chars()
        .flat_map(|c| -> Vec<char> {
            match c {
                '\n' => vec!['\\', 'n'],
                '\t' => vec![' '],
                c if c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') => {
                    format!("\\u{{{:x}}}", c as u32).chars().collect()
                }
                c => vec![c],
            }
        })
        .collect();
    let n = clean.chars().count();
    if n <= MAX_LINE {
        return clean;
    }
    let head: String = clean.chars().take(MAX_LINE / 2).collect();
    let tail: String = clean.chars().skip(n - MAX_LINE / 2 + 20).collect();
    format!(
        "{head} … ({} characters left out) … {tail}",
        n - MAX_LINE + 20
    )
}
