//! sops's exit statuses, named as `cmd/sops/codes/codes.go` names them, and the one a
//! library error ends with when coffer answers to `sops`.

// The whole table, as codes.go has it: sops itself returns some of these nowhere.
#![allow(dead_code)]

use coffer::Error;

pub const ERROR_GENERIC: u8 = 1;
pub const COULD_NOT_READ_INPUT_FILE: u8 = 2;
pub const COULD_NOT_WRITE_OUTPUT_FILE: u8 = 3;
pub const ERROR_DUMPING_TREE: u8 = 4;
pub const ERROR_READING_CONFIG: u8 = 5;
pub const ERROR_INVALID_KMS_ENCRYPTION_CONTEXT_FORMAT: u8 = 6;
pub const ERROR_INVALID_SET_FORMAT: u8 = 7;
pub const ERROR_CONFLICTING_PARAMETERS: u8 = 8;
pub const ERROR_ENCRYPTING_MAC: u8 = 21;
pub const ERROR_ENCRYPTING_TREE: u8 = 23;
pub const ERROR_DECRYPTING_MAC: u8 = 24;
pub const ERROR_DECRYPTING_TREE: u8 = 25;
pub const CANNOT_CHANGE_KEYS_FROM_NON_EXISTENT_FILE: u8 = 49;
pub const MAC_MISMATCH: u8 = 51;
pub const MAC_NOT_FOUND: u8 = 52;
pub const CONFIG_FILE_NOT_FOUND: u8 = 61;
pub const KEYBOARD_INTERRUPT: u8 = 85;
pub const INVALID_TREE_PATH_FORMAT: u8 = 91;
pub const NEED_AT_LEAST_ONE_DOCUMENT: u8 = 92;
pub const NO_FILE_SPECIFIED: u8 = 100;
pub const COULD_NOT_RETRIEVE_KEY: u8 = 128;
pub const NO_ENCRYPTION_KEY_FOUND: u8 = 111;
pub const DUPLICATE_DECRYPTION_KEY_TYPE: u8 = 112;
pub const FILE_HAS_NOT_BEEN_MODIFIED: u8 = 200;
pub const NO_EDITOR_FOUND: u8 = 201;
pub const FAILED_TO_COMPARE_VERSIONS: u8 = 202;
pub const FILE_ALREADY_ENCRYPTED: u8 = 203;
/// Not one of sops's: a command coffer stops on a signal ends as the shell reports
/// SIGINT (128 + 2), under either name.
pub const INTERRUPTED: u8 = 130;

/// sops's exit status for a library error. Reading and writing files pick theirs where
/// they happen (`COULD_NOT_READ_INPUT_FILE`, `COULD_NOT_WRITE_OUTPUT_FILE`,
/// `NO_FILE_SPECIFIED`), as sops does.
pub fn of(err: &Error) -> u8 {
    match err {
        Error::NoKey { .. } => COULD_NOT_RETRIEVE_KEY,
        Error::MacMismatch { .. } | Error::MacMissing { .. } => MAC_MISMATCH,
        Error::Value { .. } => ERROR_DECRYPTING_TREE,
        Error::AlreadyEncrypted { .. } => FILE_ALREADY_ENCRYPTED,
        Error::BadPath { .. } => INVALID_TREE_PATH_FORMAT,
        Error::Editor { .. } => NO_EDITOR_FOUND,
        Error::Interrupted => INTERRUPTED,
        _ => ERROR_GENERIC,
    }
}
