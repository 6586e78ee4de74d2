use std::path::PathBuf;

use clap::Args;
use secrecy::ExposeSecret;

use super::Env;
use coffer::{Error, Result};

#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Where to write the identity (default: ~/.config/coffer/age/keys.txt); never overwritten
    #[arg(short = 'o', long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Print the recipient of the identity at -o PATH or the default place, writing nothing
    #[arg(long)]
    pub show: bool,
}

pub fn run(args: KeygenArgs, env: &Env) -> Result<()> {
    let path =
        match args.output {
            Some(p) => p,
            None => coffer::keys::age::default_key_file(&env.config_dir().ok_or_else(|| {
                Error::Refused("cannot find a home directory; pass -o PATH".into())
            })?),
        };
    if args.show {
        let bytes = zeroize::Zeroizing::new(std::fs::read(&path).map_err(|e| Error::io(&path, e))?);
        for recipient in coffer::keys::age::recipients_of(&bytes, &path.display().to_string())? {
            super::print_out(&format!("{recipient}\n"))?;
        }
        return Ok(());
    }
    if path.exists() {
        return Err(Error::Refused(format!(
            "{}: already exists; not overwriting an identity",
            path.display()
        )));
    }
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io(dir, e))?;
    }
    let (identity, recipient) = coffer::keys::age::generate();
    let contents = format!(
        "# created by coffer keygen at {}\n# public key: {recipient}\n{}\n",
        coffer::metadata::now_rfc3339(),
        identity.expose_secret()
    );
    coffer::fsutil::write_new(&path, zeroize::Zeroizing::new(contents).as_bytes(), 0o600)?;
    eprintln!("coffer: wrote a new age identity to {}", path.display());
    super::print_out(&format!("{recipient}\n"))?;
    super::hint(&format!(
        "send this recipient to a teammate, who adds you with: coffer team add YOUR-NAME {recipient}"
    ));
    Ok(())
}
