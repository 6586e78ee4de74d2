mod common;

mod cli;
mod edit;
mod errors;
mod git;
mod interop;
mod kms;
mod roundtrip;
