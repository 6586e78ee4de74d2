//! The one error boundary: every library error becomes a `CommandError` here, which
//! alone decides the exit code and prints `coffer: …` plus `hint:` lines, each one
//! line, free of terminal control bytes, and of bounded length.

use std::process::ExitCode;

pub use coffer::error::one_line;
use coffer::Error;

pub use coffer::error::ErrorKind as Kind;

/// The documented exit code of a kind of failure (the table in docs/commands.md).
pub fn exit_code(kind: Kind) -> u8 {
    match kind {
        Kind::Other => 1,
        Kind::Usage => 2,
        Kind::NoKey => 3,
        Kind::Integrity => 4,
        Kind::Syntax => 5,
        Kind::EncryptedOrNot => 6,
        Kind::KeyPath => 7,
        Kind::Editor => 8,
        Kind::PartlyApplied => 9,
        Kind::Drift => 10,
        Kind::Interrupted => 130,
    }
}

pub struct CommandError {
    pub kind: Kind,
    /// The library's error, kept whole: its text is the message.
    pub error: Error,
    pub hints: Vec<String>,
    /// Writing to stdout failed because nobody reads it any more.
    pub broken_pipe: bool,
}

impl From<Error> for CommandError {
    fn from(err: Error) -> Self {
        let kind = err.kind();
        let hints = match &err {
            Error::NoKey { reasons, .. } => reasons.clone(),
            Error::AlreadyEncrypted { file } => {
                vec![format!("decrypt it first, or change it in place with: coffer edit {file}")]
            }
            Error::NoRecipients { .. } => vec![
                "pass --age RECIPIENT, or add a creation rule to .coffer.yaml".into(),
                "`coffer keygen` prints a recipient to pass to --age".into(),
            ],
            Error::MacMismatch { .. } => {
                vec!["--ignore-mac recovers what is readable".into()]
            }
            Error::MacMissing { .. } => vec!["--ignore-mac reads it anyway".into()],
            Error::PlaintextStaged { files, filter_on } => files
                .iter()
                .map(|f| {
                    // --renormalize runs the filter on the file again; the entry is
                    // replaced, never removed, and without setup there is no filter to run.
                    let setup = if *filter_on { "" } else { "coffer git setup && " };
                    format!("{f}: stage it encrypted with: {setup}git add --renormalize -- {f}")
                })
                .collect(),
            Error::Weakened { files } => {
                let mut names: Vec<&String> = files.iter().map(|(f, _)| f).collect();
                names.dedup();
                names
                    .iter()
                    .map(|f| format!("{f}: with a key that opens it, encrypt it as the rules say: git add --renormalize -- {f}"))
                    .collect()
            }
            Error::PlaintextCommitted { .. } => vec![
                "rotate the secrets these files hold; the next commit stores them encrypted".into(),
            ],
            Error::StagedBroken { files } => files
                .iter()
                .map(|(f, _)| {
                    format!("{f}: stage the whole file with: git add -- {f} (git add -p stages hunks of ciphertext, which cannot be split)")
                })
                .collect(),
            Error::LayoutRefused { .. } => {
                vec!["without --strict-layout the file is written in the canonical layout".into()]
            }
            _ => Vec::new(),
        };
        let broken_pipe = matches!(&err, Error::Io { path, source }
            if path.as_os_str() == "<stdout>" && source.kind() == std::io::ErrorKind::BrokenPipe);
        CommandError {
            kind,
            error: err,
            hints,
            broken_pipe,
        }
    }
}

impl CommandError {
    /// Print the error and its hints on stderr; the exit code to end with.
    pub fn report(&self) -> ExitCode {
        self.report_as(exit_code(self.kind))
    }

    /// Print the error and its hints on stderr, ending with `code` (sops's codes).
    pub fn report_as(&self, code: u8) -> ExitCode {
        // The reader went away (`| head`): nothing to say, and the exit status of a
        // program a closed pipe ended, as `head` and the shell expect.
        if self.broken_pipe {
            return ExitCode::from(141);
        }
        eprintln!("coffer: {}", one_line(&self.error.to_string()));
        for h in &self.hints {
            eprintln!("hint: {}", one_line(h));
        }
        ExitCode::from(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bytes_are_shown_escaped_and_long_lines_cut() {
        assert_eq!(
            one_line("bad \u{1b}]0;title\u{7} recipient\nsecond"),
            "bad \\u{1b}]0;title\\u{7} recipient\\nsecond"
        );
        let long = format!("start {} end", "x".repeat(100_000));
        let cut = one_line(&long);
        assert!(
            cut.starts_with("start x") && cut.ends_with("x end") && cut.chars().count() < 700,
            "{}",
            cut.len()
        );
    }
}
