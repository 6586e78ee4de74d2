//! One integration-test binary: real coffer processes in hermetic sandboxes (cleared
//! environment, temporary HOME), real sops for interop.

#![allow(clippy::unwrap_used)]

mod suite;
