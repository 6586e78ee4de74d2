//! The `coffer` binary: parse the command line, run it, turn errors into one line on
//! stderr (with a hint where one helps) and an exit code.

use clap::Parser;

fn main() {
    let cli = coffer::cli::Cli::parse();
    coffer::cli::install_signal_handler();
    let mut env = coffer::cli::Env::from_process(cli.aws_profile.clone());
    if cli.strict_layout {
        env.layout = coffer::sops::Layout::Strict;
    }
    if let Err(err) = coffer::cli::run(cli, &env) {
        eprintln!("coffer: {err}");
        if let Some(hint) = hint(&err) {
            eprintln!("hint: {hint}");
        }
        std::process::exit(err.exit_code());
    }
}

fn hint(err: &coffer::Error) -> Option<String> {
    use coffer::Error;
    match err {
        Error::NoKey { reasons, .. } => Some(reasons.join("\nhint: ")),
        Error::AlreadyEncrypted { .. } => {
            Some("`coffer edit FILE` changes an encrypted file".into())
        }
        Error::NoRecipients { .. } => {
            Some("`coffer keygen` prints a recipient to pass to --age".into())
        }
        _ => None,
    }
}
