//! The `coffer` binary: parse the command line and run it; the CLI's error boundary
//! prints the one-line error (with hints) and picks the exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = coffer::cli::Cli::parse();
    coffer::cli::install_signal_handler();
    let mut env = coffer::cli::Env::from_process(cli.aws_profile.clone());
    if cli.strict_layout {
        env.layout = coffer::sops::Layout::Strict;
    }
    coffer::cli::run(cli, &env)
}
