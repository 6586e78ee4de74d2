use std::path::Path;

use clap::Args;

use super::{creation_rule, warn, Env, FormatArg, Io, Output};
use coffer::cipher::DataKey;
use coffer::config::CreationRule;
use coffer::format::Format;
use coffer::keys::kms::parse_context;
use coffer::keys::Recipients;
use coffer::metadata::{self, Selector};
use coffer::sops::OpenOptions;
use coffer::{path, sops, Error, Result};

/// Master keys for a new file.
#[derive(Args, Debug, Default)]
pub struct KeyFlags {
    /// age recipient to encrypt for (repeat or separate with commas; env COFFER_AGE_RECIPIENTS)
    #[arg(long = "age", value_name = "RECIPIENT", value_delimiter = ',')]
    pub age: Vec<String>,
    /// AWS KMS key or alias ARN, optionally +ROLE_ARN to assume (repeat or separate with commas; env COFFER_KMS_ARN)
    #[arg(long = "kms", value_name = "ARN", value_delimiter = ',')]
    pub kms: Vec<String>,
    /// PGP key fingerprint to encrypt for, through gpg (repeat or separate with commas; env SOPS_PGP_FP)
    #[arg(long = "pgp", value_name = "FINGERPRINT", value_delimiter = ',')]
    pub pgp: Vec<String>,
    /// KMS encryption context for the --kms keys, as key=value,key2=value2
    #[arg(long, value_name = "K=V,…")]
    pub encryption_context: Option<String>,
}

#[derive(Args, Debug)]
pub struct EncryptArgs {
    #[command(flatten)]
    pub io: Io,
    #[command(flatten)]
    pub keys: KeyFlags,
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
        Selector::first_given(
            &self.unencrypted_suffix,
            &self.encrypted_suffix,
            &self.unencrypted_regex,
            &self.encrypted_regex,
        )
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
    /// The file (or - for stdin); with -y, --dry-run or several: files, directories, globs
    #[arg(required_unless_present = "all")]
    pub paths: Vec<std::path::PathBuf>,
    /// Format of the input (default: the file extension)
    #[arg(long, value_enum, value_name = "TYPE")]
    pub input_type: Option<FormatArg>,
    /// Write the result over the input file (atomically)
    #[arg(short = 'i', long, conflicts_with = "output")]
    pub in_place: bool,
    /// Write the result to PATH (atomically) instead of stdout
    #[arg(short = 'o', long, value_name = "PATH")]
    pub output: Option<std::path::PathBuf>,
    /// Every encrypted file of the git repository, in place (covered files staged)
    #[arg(long, conflicts_with_all = ["paths", "in_place", "output", "input_type"])]
    pub all: bool,
    /// With several files: print the plan and change nothing
    #[arg(long, conflicts_with_all = ["in_place", "output"])]
    pub dry_run: bool,
    /// With several files: apply without asking
    #[arg(short = 'y', long, conflicts_with_all = ["in_place", "output"])]
    pub yes: bool,
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
/// Master keys for a new file: flags (or their environment variables) replace the
/// creation rule entirely, as in sops.
pub(super) fn recipients(
    flags: &KeyFlags,
    rule: Option<&CreationRule>,
    env: &Env,
    file: &str,
) -> Result<Recipients> {
    let list = |given: &[String], vars: [&str; 2]| -> Vec<String> {
        let mut out = super::comma_list(given);
        if out.is_empty() {
            if let Some(v) = vars
                .iter()
                .find_map(|k| env.get(k).filter(|v| !v.trim().is_empty()))
            {
                out = super::comma_list([&v]);
            }
        }
        out
    };
    let age = list(&flags.age, ["COFFER_AGE_RECIPIENTS", "SOPS_AGE_RECIPIENTS"]);
    let kms = list(&flags.kms, ["COFFER_KMS_ARN", "SOPS_KMS_ARN"]);
    let pgp = list(&flags.pgp, ["COFFER_PGP_FP", "SOPS_PGP_FP"]);
    let mut given = coffer::config::KeyLists {
        age,
        kms,
        pgp,
        ..Default::default()
    };
    // The context is for the keys named here: a rule's keys have their own.
    if let Some(c) = flags
        .encryption_context
        .as_ref()
        .filter(|_| !given.is_empty())
    {
        given.context = parse_context(c)?;
    }
    let found = coffer::config::new_file_recipients(&given, rule)?;
    if found.is_empty() {
        return Err(Error::NoRecipients {
            file: file.to_string(),
        });
    }
    Ok(found)
}

pub fn encrypt(args: EncryptArgs, config: Option<&Path>, env: &Env) -> Result<()> {
    let io = &args.io;
    let name = io.name();
    let format = io.format()?;
    // A large binary file is streamed, never held whole (see `sops::stream`).
    let streamed = streamable(io, format);
    let (input, held) = match streamed {
        true => (Default::default(), None),
        false => io.read_held(env)?,
    };
    let target = if io.is_stdin() {
        Path::new("stdin")
    } else {
        io.file.as_path()
    };
    // A bad regex on the command line is a usage mistake, found before any key is
    // wrapped; one from the creation rules is the config file's.
    let flagged = args.selector.selector();
    if let Some(Selector::UnencryptedRegex(r) | Selector::EncryptedRegex(r)) = &flagged {
        regex::Regex::new(r).map_err(|e| Error::Usage(metadata::regex_reason(&e)))?;
    }
    let rule = creation_rule(config, target)?;
    let recipients = recipients(&args.keys, rule.as_ref(), env, &name)?;
    let key = DataKey::generate();
    let mut md = sops::new_metadata(&key, &recipients, env.wrappers(), rule.as_ref(), flagged)?;
    md.rules().map_err(|e| Error::Config {
        file: name.clone(),
        message: format!("its creation rule's {e}"),
    })?;
    if streamed {
        return encrypt_streamed(io, &name, &key, &mut md, env);
    }
    // A large text's output (five times its size) is written into a private file and
    // checked there, not held beside the document it is made from; where no such file
    // can be made, in memory as a small one's.
    let beside = match io.in_place {
        true => Some(io.file.as_path()),
        false => io.output.as_deref(),
    };
    if let Some(mut out) = staged_output(format, input.len(), beside) {
        let fallback = sops::encrypt_plain_into(&name, format, input, &key, &mut md, &out)?;
        env.accept_layout(fallback)?;
        return io.write_held_from(
            held,
            &mut coffer::fsutil::Content::File(&mut out),
            Output::Sealed,
        );
    }
    let out = env.accept(sops::encrypt_plain(&name, format, input, &key, &mut md)?)?;
    io.write_held(held, &out, Output::Sealed)
}

/// A binary file read from a regular file of [`sops::stream::FROM`] bytes or more.
fn streamable(io: &Io, format: Format) -> bool {
    format == Format::Binary
        && !io.is_stdin()
        && std::fs::metadata(&io.file).is_ok_and(|m| m.is_file() && m.len() >= sops::stream::FROM)
}

/// Where a large text's encryption is written and checked before it goes where asked
/// (`sops::encrypt_plain_into`): a private file beside `beside` (see [`staging`]).
/// `None` for a binary or small input, or where no such file can be made: the output
/// is then made in memory.
pub(crate) fn staged_output(
    format: Format,
    len: usize,
    beside: Option<&Path>,
) -> Option<std::fs::File> {
    sops::worth_a_file(format, len)
        .then(|| staging(beside).ok())
        .flatten()
}

/// An unnamed file, readable and writable, for a streamed output until it is checked:
/// beside `beside` (the destination, so plaintext stays on the disk the user named), or
/// in the temporary directory. It has no name, so nothing is left of it after a crash.
fn staging(beside: Option<&Path>) -> Result<std::fs::File> {
    let dir = beside
        .filter(|p| std::fs::metadata(p).map_or(true, |m| m.is_file()))
        .and_then(|p| p.parent())
        .map(|d| {
            if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            }
        });
    match dir {
        Some(d) => tempfile::tempfile_in(d).map_err(|e| Error::io(d, e)),
        None => tempfile::tempfile().map_err(|e| Error::io("the temporary directory", e)),
    }
}

/// `encrypt` of a large binary file: streamed into a private file, checked there by
/// reading it back, then written where asked as any output is.
fn encrypt_streamed(
    io: &Io,
    name: &str,
    key: &DataKey,
    md: &mut metadata::Metadata,
    env: &Env,
) -> Result<()> {
    let held = match io.in_place {
        true => Some(env.hold(&io.file)?),
        false => None,
    };
    let mut src = std::fs::File::open(&io.file).map_err(|e| Error::io(&io.file, e))?;
    // Something that may be JSON (a sops file in any layout), or data the rules leave
    // in clear: the general way, which knows an encrypted file when it sees one.
    let json = std::io::Read::bytes(std::io::BufReader::new(&src))
        .map_while(std::result::Result::ok)
        .find(|b| !b.is_ascii_whitespace())
        == Some(b'{');
    if json || !sops::stream::encrypts_data(md) {
        let out = env.accept(sops::encrypt_plain(
            name,
            Format::Binary,
            io.read()?,
            key,
            md,
        )?)?;
        return io.write_held(held, &out, Output::Sealed);
    }
    let mut out = staging(None)?;
    sops::stream::encrypt(name, &mut src, &mut out, key, md)?;
    io.write_held_from(
        held,
        &mut coffer::fsutil::Content::File(&mut out),
        Output::Sealed,
    )
}

/// A writer that remembers whether anything went through it.
struct Watched<W> {
    out: W,
    wrote: bool,
}

impl<W: std::io::Write> std::io::Write for Watched<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.wrote |= n > 0;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// `decrypt` of a large binary file: to a file (-o or -i), decrypted piece by piece into
/// a private file handed on once its tag and MAC check; to stdout, in two passes.
/// `None`: not such a file.
fn decrypt_streamed(io: &Io, ignore_mac: bool, env: &Env) -> Result<Option<()>> {
    use std::io::IsTerminal;
    // To stdout: no plaintext on disk the user did not ask for, so straight out, in two
    // passes (`sops::stream::decrypt_to`). A terminal gets the general way, which
    // refuses binary plaintext.
    let to_stdout = io.output.is_none() && !io.in_place;
    if to_stdout && std::io::stdout().is_terminal() {
        return Ok(None);
    }
    let held = match io.in_place {
        true => Some(env.hold(&io.file)?),
        false => None,
    };
    let name = io.name();
    let mut src = std::fs::File::open(&io.file).map_err(|e| Error::io(&io.file, e))?;
    let locate = |src: &mut std::fs::File, scan: bool| -> Result<_> {
        Ok(sops::stream::locate(src, scan)
            .map_err(|e| Error::io(&io.file, e))?
            .filter(|l| l.streams(&name)))
    };
    let Some(mut located) = locate(&mut src, false)? else {
        return Ok(None);
    };
    let keyring = env.keyring()?;
    let mut out = match to_stdout {
        true => None,
        false => Some(staging(Some(io.output.as_deref().unwrap_or(&io.file)))?),
    };
    let mut stdout = Watched {
        out: std::io::stdout().lock(),
        wrote: false,
    };
    let warnings = loop {
        let done = match &mut out {
            None => sops::stream::decrypt_to(
                &name,
                &mut src,
                &located,
                &keyring,
                ignore_mac,
                &mut stdout,
            ),
            Some(out) => {
                sops::stream::decrypt(&name, &mut src, &located, &keyring, ignore_mac, out)
            }
        };
        match done {
            Ok(warnings) => break warnings,
            // Found from its end, the data was not read whole before: a file whose data
            // does not decode is located again by reading it all. Found the same, the
            // error stands; not streamable, it goes the general way. Only while nothing
            // has gone to stdout: a file changed between two passes fails after some
            // has, and that error stands.
            Err(e) if !located.scanned && !stdout.wrote => match locate(&mut src, true)? {
                None => return Ok(None),
                Some(again) if again.data_range() == located.data_range() => return Err(e),
                Some(again) => {
                    // The private staging file starts over.
                    if let Some(out) = &mut out {
                        use std::io::Seek;
                        out.set_len(0)
                            .and_then(|()| out.rewind())
                            .map_err(|e| Error::io("the staging file", e))?;
                    }
                    located = again;
                }
            },
            Err(e) => return Err(e),
        }
    };
    warnings.iter().for_each(|w| warn(w));
    let Some(mut out) = out else {
        return Ok(Some(()));
    };
    io.write_held_from(
        held,
        &mut coffer::fsutil::Content::File(&mut out),
        Output::PlainBinary,
    )
    .map(Some)
}

pub fn decrypt(args: DecryptArgs, env: &Env) -> Result<()> {
    let io = &args.io;
    let format = io.format()?;
    let whole = args.extract.is_none()
        && args
            .output_type
            .is_none_or(|t| Format::from(t) == Format::Binary);
    if whole && streamable(io, format) {
        if let Some(()) = decrypt_streamed(io, args.ignore_mac, env)? {
            return Ok(());
        }
    }
    let (input, held) = io.read_held(env)?;
    let keyring = env.keyring()?;
    let (opened, _) = super::open_file(&io.file, format, input, &keyring, args.ignore_mac)?;
    if matches!(args.output_type, Some(FormatArg::Export)) && args.extract.is_none() {
        return io.write_held(held, &super::deploy::export_lines(&opened)?, Output::Plain);
    }
    let to: Format = args.output_type.map_or(format, Into::into);
    let out = match &args.extract {
        Some(p) => opened.extract(&path::parse(p)?, to)?,
        None => env.accept(opened.into_output(to)?)?,
    };
    let holds = if to == Format::Binary {
        Output::PlainBinary
    } else {
        Output::Plain
    };
    io.write_held(held, &out, holds)
}

pub fn rotate(args: RotateArgs, env: &Env) -> Result<()> {
    let many = args.all
        || args.dry_run
        || args.yes
        || args.paths.len() > 1
        || args.paths.first().is_some_and(|p| p.is_dir());
    if many {
        if args.input_type.is_some() || args.in_place || args.output.is_some() {
            return Err(Error::Usage(
                "rotating several files writes each in place: no --input-type, -i or -o".into(),
            ));
        }
        return super::keys::rotate_many(args.all, &args.paths, args.dry_run, args.yes, env);
    }
    // A covered file's working tree is plaintext: what git stores is re-keyed (staged).
    let first = &args.paths[0];
    if args.output.is_none() && args.input_type.is_none() && covered_plaintext(first) {
        if !args.in_place {
            return Err(Error::Usage(format!(
                "{}: the coffer filter covers it, so its working tree is plaintext: `coffer rotate -i` re-keys what git stores (staged)",
                first.display()
            )));
        }
        return super::keys::rotate_many(false, &args.paths, false, true, env);
    }
    let io = &Io {
        file: args.paths[0].clone(),
        input_type: args.input_type,
        in_place: args.in_place,
        output: args.output,
    };
    let name = io.name();
    let format = io.format()?;
    let (input, held) = io.read_held(env)?;
    let mut opened = sops::open(
        &name,
        format,
        input,
        &env.keyring()?,
        OpenOptions::default(),
    )?;
    opened.rewrite_future = env.force;
    warn_dropped_keys(&name, &opened.meta);
    let recipients = Recipients::of(&opened.meta);
    if recipients.is_empty() {
        return Err(Error::NoRecipients { file: name });
    }
    let out = env.accept(coffer::rekey::rekey(
        &opened,
        &recipients,
        true,
        env.wrappers(),
    )?)?;
    io.write_held(held, &out, Output::Sealed)
}

/// A file in the working tree that holds plaintext the coffer filter covers.
fn covered_plaintext(file: &Path) -> bool {
    std::fs::read(file).is_ok_and(|b| !Format::from_path(file).store().is_encrypted(&b))
        && coffer::git::worktree::is_covered(file)
}

pub fn filestatus(args: FilestatusArgs) -> Result<()> {
    let format = args
        .input_type
        .map_or_else(|| Format::from_path(&args.file), Into::into);
    let input = std::fs::read(&args.file).map_err(|e| Error::io(&args.file, e))?;
    let encrypted = format.store().is_encrypted(&input);
    super::print_out(&format!("{{\"encrypted\":{encrypted}}}\n"))
}

/// Before a new data key: the master keys of `meta` coffer cannot wrap one for, which
/// the file loses.
pub(super) fn warn_dropped_keys(name: &str, meta: &coffer::metadata::Metadata) {
    for (kind, _) in &meta.foreign_keys {
        warn(&format!(
            "{name}: dropping the {kind} master keys, which coffer cannot wrap a new data key for"
        ));
    }
}
