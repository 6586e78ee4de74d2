mod common;

mod cli;
mod edit;
mod errors;
mod interop;
mod roundtrip;
