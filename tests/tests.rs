//! One integration-test binary: real coffer processes in hermetic sandboxes (cleared
//! environment, temporary HOME), real sops for interop.

mod suite;
