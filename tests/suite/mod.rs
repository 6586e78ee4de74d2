mod common;

mod accounts;
mod cli;
mod corpus;
mod deploy;
mod edit;
mod errors;
mod git;
mod interop;
mod kms;
mod moto;
mod push;
mod rekey;
mod roundtrip;
mod safety;
mod snapshots;
mod verify;
