//! The `coffer` binary: parse the command line and run it; the CLI's error boundary
//! prints the one-line error (with hints) and picks the exit code.

use std::process::ExitCode;

use clap::Parser;

mod cli;

#[global_allocator]
static ALLOCATOR: cli::oom::OneLine = cli::oom::OneLine;

fn main() -> ExitCode {
    // Under sops's name (a symlink), or as `coffer sops …`: sops's command line.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.first().is_some_and(|a| cli::sops::is_sops_name(a)) {
        return cli::sops::main(argv);
    }
    if argv.get(1).is_some_and(|a| a == "sops") {
        return cli::sops::main(argv[1..].to_vec());
    }
    // clap's own rendering (usage and a suggestion) for command-line mistakes, exit 2;
    // help and version on stdout, exit 0.
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cli::clap_exit(&e, 2),
    };
    // Before any thread is spawned: libgit2's settings are globals.
    cli::small_pack_windows();
    cli::install_signal_handler();
    let mut env = cli::Env::from_process(cli.aws_profile.clone());
    if cli.strict_layout {
        env.layout = coffer::sops::Layout::Strict;
    }
    env.force = cli.force;
    env.lock_timeout = std::time::Duration::from_secs(cli.lock_timeout);
    if let Some(order) = &cli.decryption_order {
        env.decryption_order = Some(order.clone());
    }
    cli::run(cli, &env)
}
