//! What the library asks the user through the front end (a passphrase, a plugin's PIN,
//! an MFA code): the questions are callbacks the front end supplies; this is their
//! failure.

/// A question that got no answer (no terminal, nothing typed); the front end says why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unanswered(pub String);
