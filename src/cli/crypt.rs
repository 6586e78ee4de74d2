use std::path::Path;

use clap::Args;

use super::{creation_rule, warn, Env, FormatArg, Io};
use crate::cipher::DataKey;
use crate::config::CreationRule;
use crate::format::Format;
use crate::metadata::{self, Selector};
use crate::{keys, path, sops, Error, Result};

#[derive(Args, Debug)]
pub struct EncryptArgs {
    #[command(flatten)]
    pub io: Io,
    /// age recipient to encrypt for (repeat or separate with commas)
    #[arg(long = "age", value_name = "RECIPIENT", value_delimiter = ',')]
    pub age: Vec<String>,
    #[command(flatten)]
    pub selector: SelectorArgs,
}

#[derive(Args, Debug, Default)]
#[group(multiple = false)]
pub struct SelectorArgs {
    /// Leave values readable whose key ends with SUFFIX (default: _unencrypted)
    #[arg(long, value_name = "SUFFIX")]
    pub unencrypted_suffix: Option<String>,
    /// Encrypt only values whose key ends with SUFFIX
    #[arg(long, value_name = "SUFFIX")]
    pub encrypted_suffix: Option<String>,
    /// Leave values readable whose key matches REGEX
    #[arg(long, value_name = "REGEX")]
    pub unencrypted_regex: Option<String>,
    /// Encrypt only values whose key matches REGEX
    #[arg(long, value_name = "REGEX")]
    pub encrypted_regex: Option<String>,
}

impl SelectorArgs {
    fn selector(&self) -> Option<Selector> {
        let s = self;
        s.unencrypted_suffix
            .clone()
            .map(Selector::UnencryptedSuffix)
            .or_else(|| s.encrypted_suffix.clone().map(Selector::EncryptedSuffix))
            .or_else(|| s.unencrypted_regex.clone().map(Selector::UnencryptedRegex))
            .or_else(|| s.encrypted_regex.clone().map(Selector::EncryptedRegex))
    }
}

#[derive(Args, Debug)]
pub struct DecryptArgs {
    #[command(flatten)]
    pub io: Io,
    /// Format of the output (default: the input's)
    #[arg(long, value_enum, value_name = "TYPE")]
    pub output_type: Option<FormatArg>,
    /// Print only the value at this path, e.g. '["db"]["password"]'
    #[arg(long, value_name = "PATH")]
    pub extract: Option<String>,
    /// Decrypt even if the MAC does not match (to recover a damaged file)
    #[arg(long)]
    pub ignore_mac: bool,
}

#[derive(Args, Debug)]
pub struct RotateArgs {
    #[command(flatten)]
    pub io: Io,
}

#[derive(Args, Debug)]
pub struct UpdatekeysArgs {
    /// The encrypted file
    pub file: std::path::PathBuf,
    /// Format of the file (default: from the extension)
    #[arg(long, value_enum, value_name = "TYPE")]
    pub input_type: Option<FormatArg>,
}

#[derive(Args, Debug)]
pub struct FilestatusArgs {
    /// The file
    pub file: std::path::PathBuf,
    /// Format of the file (default: from the extension)
    #[arg(long, value_enum, value_name = "TYPE")]
    pub input_type: Option<FormatArg>,
}

/// The age recipients for a new file: flags, then the environment, then the rule.
pub(super) fn recipients_for_new(
    flags: &[String],
    rule: Option<&CreationRule>,
    env: &Env,
    file: &str,
) -> Result<Vec<String>> {
    recipients(flags, rule, env, file)
}

fn recipients(
    flags: &[String],
    rule: Option<&CreationRule>,
    env: &Env,
    file: &str,
) -> Result<Vec<String>> {
    let mut age: Vec<String> = flags
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if age.is_empty() {
        for var in ["COFFER_AGE_RECIPIENTS", "SOPS_AGE_RECIPIENTS"] {
            if let Some(v) = env.get(var) {
                age.extend(
                    v.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty()),
                );
                break;
            }
        }
    }
    if age.is_empty() {
        if let Some(r) = rule {
            age = r.age.clone();
            if age.is_empty() && !r.kms.is_empty() {
                return Err(Error::Key(format!("{file}: the creation rule names only KMS keys, and this build of coffer has no KMS support yet")));
            }
            if !r.kms.is_empty() {
                warn(&format!(
                    "{file}: KMS keys in the creation rule are skipped (no KMS support yet)"
                ));
            }
        }
    }
    if age.is_empty() {
        return Err(Error::NoRecipients {
            file: file.to_string(),
        });
    }
    Ok(age)
}

pub fn encrypt(args: EncryptArgs, config: Option<&Path>, env: &Env) -> Result<()> {
    let io = &args.io;
    let name = io.name();
    let format = io.format()?;
    let input = io.read()?;
    let target = if io.is_stdin() {
        Path::new("stdin")
    } else {
        io.file.as_path()
    };
    let rule = creation_rule(config, target)?;
    let age = recipients(&args.age, rule.as_ref(), env, &name)?;
    let key = DataKey::generate();
    let mut md = sops::new_metadata(&key, &age, rule.as_ref(), args.selector.selector())?;
    md.rules()
        .map_err(|e| Error::Key(format!("bad regex: {e}")))?;
    let out = sops::encrypt_plain(&name, format, input, &key, &mut md)?;
    io.write(&out, false, false)
}

pub fn decrypt(args: DecryptArgs, env: &Env) -> Result<()> {
    let io = &args.io;
    let name = io.name();
    let format = io.format()?;
    let input = io.read()?;
    let keyring = env.keyring()?;
    let opened = sops::open(&name, format, input, &keyring, args.ignore_mac)?;
    for w in &opened.warnings {
        warn(w);
    }
    let to: Format = args.output_type.map_or(format, Into::into);
    let out = match &args.extract {
        Some(p) => opened.extract(&path::parse(p)?, to)?,
        None => opened.into_output(to)?,
    };
    io.write(&out, true, to == Format::Binary)
}

pub fn rotate(args: RotateArgs, env: &Env) -> Result<()> {
    let io = &args.io;
    let name = io.name();
    let format = io.format()?;
    let input = io.read()?;
    let opened = sops::open(&name, format, input, &env.keyring()?, false)?;
    if !opened.meta.kms.is_empty() {
        return Err(Error::Key(format!(
            "{name}: the file has KMS keys, which this build of coffer cannot re-wrap yet"
        )));
    }
    for (kind, _) in &opened.meta.foreign_keys {
        warn(&format!(
            "{name}: dropping the {kind} master keys, which coffer cannot wrap a new data key for"
        ));
    }
    let plaintext = opened.plaintext()?;
    let key = DataKey::generate();
    let mut md = opened.meta.clone();
    md.foreign_keys.clear();
    md.age = opened
        .meta
        .age
        .iter()
        .map(|a| keys::age::wrap(&key, &a.recipient))
        .collect::<Result<_>>()?;
    if md.age.is_empty() {
        return Err(Error::NoRecipients { file: name });
    }
    md.lastmodified = metadata::now_rfc3339();
    md.version = Some(metadata::SOPS_VERSION.to_string());
    let out = sops::encrypt_plain(&name, format, plaintext, &key, &mut md)?;
    io.write(&out, false, false)
}

pub fn updatekeys(args: UpdatekeysArgs, config: Option<&Path>, env: &Env) -> Result<()> {
    let name = args.file.display().to_string();
    let format = args
        .input_type
        .map_or_else(|| Format::from_path(&args.file), Into::into);
    let input = std::fs::read(&args.file).map_err(|e| Error::io(&args.file, e))?;
    let rule = creation_rule(config, &args.file)?.ok_or_else(|| Error::Config {
        file: name.clone(),
        message: "no creation rule matches this file".into(),
    })?;
    let opened = sops::open(&name, format, input, &env.keyring()?, false)?;
    let wanted = recipients(&[], Some(&rule), env, &name)?;
    let current: Vec<&str> = opened
        .meta
        .age
        .iter()
        .map(|a| a.recipient.as_str())
        .collect();
    if wanted.iter().map(String::as_str).collect::<Vec<_>>() == current {
        eprintln!("coffer: {name}: keys are up to date");
        return Ok(());
    }
    let mut md = opened.meta.clone();
    md.age = wanted
        .iter()
        .map(
            |r| match opened.meta.age.iter().find(|a| a.recipient == *r) {
                Some(existing) => Ok(existing.clone()),
                None => keys::age::wrap(&opened.key, r),
            },
        )
        .collect::<Result<_>>()?;
    for r in wanted.iter().filter(|r| !current.contains(&r.as_str())) {
        eprintln!("coffer: {name}: + age:{r}");
    }
    for r in current.iter().filter(|r| !wanted.iter().any(|w| w == *r)) {
        eprintln!("coffer: {name}: - age:{r}");
    }
    let out = opened.with_metadata(&md)?;
    crate::fsutil::write_atomic(&args.file, &out, 0o644, None)
}

pub fn filestatus(args: FilestatusArgs) -> Result<()> {
    let name = args.file.display().to_string();
    let format = args
        .input_type
        .map_or_else(|| Format::from_path(&args.file), Into::into);
    let input = std::fs::read(&args.file).map_err(|e| Error::io(&args.file, e))?;
    let parse_as = if format == Format::Binary {
        Format::Json
    } else {
        format
    };
    let encrypted = sops::parse(&name, parse_as, input).is_ok_and(|d| d.is_encrypted());
    println!("{{\"encrypted\":{encrypted}}}");
    Ok(())
}
