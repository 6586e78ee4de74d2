//! The command line: clap definitions and the plumbing between files, the environment
//! and the library. One file per command group.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};
use zeroize::Zeroizing;

use coffer::format::Format;
use coffer::fsutil::{Content, Target};
use coffer::keys::age::{AgeKeys, IdentitySources};
use coffer::keys::kms::KmsKeys;
use coffer::keys::Keyring;
use coffer::sops::{Layout, Sealed};
use coffer::{Error, Result};

mod aws;
pub mod command_error;
mod crypt;
mod deploy;
mod edit;
mod git;
pub(crate) use git::small_pack_windows;
mod keygen;
mod keys;
pub mod oom;
pub mod sops;
mod team;

const EXAMPLES: &str = "\
Examples:
  coffer keygen                                # new age identity, prints its recipient
  coffer encrypt --age age1… -i secrets.yaml   # encrypt values in place
  coffer decrypt secrets.yaml                  # plaintext to stdout
  coffer decrypt --extract '[\"db\"][\"password\"]' secrets.yaml
  coffer edit secrets.yaml                     # $EDITOR on the plaintext, re-encrypted on save
  coffer set secrets.yaml '[\"db\"][\"port\"]' 5432

Exit codes: 0 ok, 1 error, 2 usage, 3 no key opens the file, 4 integrity (MAC or value)
check failed, 5 syntax or unsupported input, 6 already/not encrypted, 7 key path not
found, 8 editor failed, 9 AWS changes partly applied, 130 interrupted.";

#[derive(Parser)]
#[command(
    name = "coffer",
    version,
    about = "Keep secrets in git, encrypted in the sops format",
    long_about = "Keep secrets in git, encrypted in the sops v3 format.\n\n\
        Values of YAML, JSON, dotenv and INI files are encrypted in place, keys and layout stay \
        readable; other files are encrypted whole. Files open with sops, and sops files open with coffer.",
    after_help = EXAMPLES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Config file: creation rules, push targets (default: the nearest .coffer.yaml or .sops.yaml above the file)
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// AWS profile for every AWS call, over one a KMS key or push target names (then: that one, AWS_PROFILE, the default chain)
    #[arg(long, global = true, value_name = "NAME")]
    pub aws_profile: Option<String>,

    /// Refuse to write a file whose layout cannot be kept byte for byte, instead of writing it in the canonical layout with a warning
    #[arg(long, global = true)]
    pub strict_layout: bool,

    /// Write a file a newer sops major version wrote (4.x and later), as a 3.x file
    #[arg(long, global = true)]
    pub force: bool,

    /// How long to wait for another coffer writing the same file
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 30)]
    pub lock_timeout: u64,

    /// Key kinds to try first when opening a file, in order (age, pgp, kms; env SOPS_DECRYPTION_ORDER)
    #[arg(long, global = true, value_name = "KINDS")]
    pub decryption_order: Option<String>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Generate an age identity and print its recipient
    #[command(
        after_help = "Examples:\n  coffer keygen                  # prints the recipient to send to a teammate\n  coffer keygen -o ./ci-key.txt\n  coffer keygen --show           # the recipient of the identity you have"
    )]
    Keygen(keygen::KeygenArgs),
    /// Encrypt a plaintext file
    #[command(
        after_help = "Examples:\n  coffer encrypt --age age1… -i secrets.yaml\n  cat .env | coffer encrypt --input-type dotenv --age age1… - > prod.env"
    )]
    Encrypt(crypt::EncryptArgs),
    /// Decrypt a file to stdout, a file, or in place
    #[command(
        after_help = "Examples:\n  coffer decrypt secrets.yaml\n  coffer decrypt --extract '[\"db\"][\"password\"]' secrets.yaml\n  coffer decrypt --output-type json secrets.yaml"
    )]
    Decrypt(crypt::DecryptArgs),
    /// Edit an encrypted file in $VISUAL or $EDITOR
    #[command(after_help = "Example:\n  EDITOR=nano coffer edit secrets.yaml")]
    Edit(edit::EditArgs),
    /// Set one value of an encrypted file
    #[command(
        after_help = "Examples:\n  coffer set secrets.yaml '[\"db\"][\"port\"]' 5432\n  printf %s \"$PASSWORD\" | coffer set --value-stdin secrets.yaml '[\"db\"][\"password\"]'\n  coffer set --value-file token.txt secrets.yaml '[\"api\"][\"token\"]'"
    )]
    Set(edit::SetArgs),
    /// Remove one key of an encrypted file
    #[command(
        after_help = "Examples:\n  coffer unset secrets.yaml '[\"db\"][\"old\"]'\n  coffer unset secrets.yaml '[\"hosts\"][1]'"
    )]
    Unset(edit::UnsetArgs),
    /// Re-encrypt every value under a new data key
    #[command(
        after_help = "Examples:\n  coffer rotate -i secrets.yaml\n  coffer rotate --all --dry-run     # every encrypted file of the repository\n  coffer rotate --all -y            # after a leak: a new data key everywhere (covered files staged)"
    )]
    Rotate(crypt::RotateArgs),
    /// Re-wrap data keys for the keys the creation rules name now; a removed key rotates
    #[command(
        long_about = "Re-wrap data keys for the master keys the creation rules name now.\n\n\
            The plan lists, per file, the keys added (+) and removed (-); files in step are \
            counted. A file that only gains keys keeps its data key and its values byte for \
            byte. A file that loses a key gets a new data key and every value encrypted \
            again, since the removed key's holder may have kept the old one (--no-rotate to \
            skip that). Files the git filter covers are updated in the index (staged); files \
            with unstaged changes are skipped. Without -y coffer asks once on a terminal, \
            and refuses without one.",
        after_help = "Examples:\n  coffer updatekeys --all --dry-run          # the plan for every encrypted file of the repository\n  coffer updatekeys --all -y                 # apply it\n  coffer updatekeys secrets/ deploy/*.yaml -y\n\nExit codes: 0 done (or nothing to do), 2 no -y and no terminal, 9 some files failed (rerun to finish)."
    )]
    Updatekeys(keys::UpdatekeysArgs),
    /// Show which master keys open which encrypted files, and where they differ from the rules
    #[command(
        after_help = "Examples:\n  coffer access                       # every encrypted file of the repository\n  coffer access --who age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\n  coffer access secrets/ --json\n\nOnly metadata is read: no key is needed. A key is named by the comment on its line in .coffer.yaml (age1… # alice)."
    )]
    Access(keys::AccessArgs),
    /// Add and remove people by name: the rules file edited, the files re-keyed
    #[command(
        subcommand,
        after_help = "Examples:\n  coffer team list\n  coffer team add carol age1… -y     # under keys: as &carol, *carol in every rule\n  coffer team remove bob -y         # out of the rules; his files get new data keys"
    )]
    Team(team::TeamCommand),
    /// Tell whether a file is encrypted, as JSON
    #[command(after_help = "Example:\n  coffer filestatus secrets.yaml   # {\"encrypted\":true}")]
    Filestatus(crypt::FilestatusArgs),
    /// Run a command with a file's values in its environment
    #[command(
        after_help = "Examples:\n  coffer exec prod.env -- ./migrate-db\n  coffer exec --file secrets.yaml --prefix APP_ -- env   # db.password -> APP_DB_PASSWORD"
    )]
    Exec(deploy::ExecArgs),
    /// Run a command with a file's plaintext as a private, short-lived file ({} is its path)
    #[command(
        name = "exec-file",
        after_help = "Example:\n  coffer exec-file tls.key.enc -- nginx -c conf '{}'"
    )]
    ExecFile(deploy::ExecFileArgs),
    /// Fill {{ secret URI }} references in templates
    #[command(
        after_help = "Examples:\n  coffer render deploy/app.conf.tmpl -o app.conf\n  coffer render --check deploy/*.tmpl\n\nSources: file://secrets.yaml#db.password (or #[\"db\"][\"password\"]), env://NAME.\nFilters: {{ secret URI | default \"x\" }}, {{ secret URI | base64 }}. \\{{ writes a literal {{."
    )]
    Render(deploy::RenderArgs),
    /// Push values into Secrets Manager or Parameter Store (plan, then apply)
    #[command(
        long_about = "Push values into AWS Secrets Manager or SSM Parameter Store.\n\n\
            With a FILE and --to, that file's values go where the flags say. Without a FILE, \
            every target of the push: list in .coffer.yaml (or those named with --target) is \
            pushed, each with its own role, profile and region, so one command reaches every \
            account.\n\n\
            The remote state is read first and the plan printed (names only, never a value); then \
            only what differs is created or updated, so a second push changes nothing. \
            Description, KMS key and the tags coffer set are kept in step too. What coffer \
            creates is tagged managed-by=coffer and coffer:source=<file>; --prune deletes only \
            secrets with those tags for those files.",
        after_help = "Examples:\n  coffer push                                                         # every target of .coffer.yaml\n  coffer push --target prod --dry-run\n  coffer push --check                                                # CI: exit 10 when AWS differs\n  coffer push prod.yaml --to secretsmanager --name prod/web          # the whole file as one JSON secret\n  coffer push prod.env --to secretsmanager --prefix prod/web/ --each # one secret per key\n  coffer push prod.yaml --to ssm --path /prod/web/ --kms-key-id alias/app\n  coffer push prod.env --to secretsmanager --prefix prod/web/ --each --prune --dry-run\n  coffer push prod.env --to secretsmanager --prefix prod/web/ --each --emit ecs > secrets.json\n\nExit codes: 0 ok (or nothing to do), 9 some changes were not applied (rerun to finish),\n10 with --check: something would change."
    )]
    Push(aws::PushArgs),
    /// Move secrets kept in S3 into Secrets Manager (never deletes from S3)
    #[command(
        subcommand,
        after_help = "Examples:\n  coffer migrate s3 --bucket swt-secrets --prefix prod/ --to secretsmanager\n  coffer migrate refs deploy/*.tmpl --from s3 --to awsSecret"
    )]
    Migrate(aws::MigrateCommand),
    /// Keep secrets encrypted in git: filter, diff and merge drivers
    #[command(subcommand)]
    Git(git::GitCommand),
    /// Answer to sops's command line (also when coffer is run under the name sops)
    #[command(
        after_help = "Examples:\n  coffer sops -d --extract '[\"db\"][\"password\"]' secrets.yaml\n  ln -s \"$(command -v coffer)\" ~/.local/bin/sops   # scripts that run sops get coffer\n\nFlags, subcommands, outputs and exit codes are sops 3.x's: `coffer sops --help`."
    )]
    Sops {
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "SOPS ARGS"
        )]
        args: Vec<std::ffi::OsString>,
    },
    /// Print a shell completion script
    #[command(
        after_help = "Example:\n  coffer completions bash > ~/.local/share/bash-completion/completions/coffer"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (coffer.1, coffer-encrypt.1, …) into a directory
    #[command(
        after_help = "Example:\n  coffer manpages ~/.local/share/man/man1 && man coffer-encrypt\n\nscripts/install PREFIX installs them with the binary and the completions."
    )]
    Manpages {
        /// Where to write them (made if missing)
        dir: PathBuf,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormatArg {
    Yaml,
    Json,
    Dotenv,
    Ini,
    Binary,
    /// `export NAME='value'` lines (output only)
    Export,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Yaml => Format::Yaml,
            FormatArg::Json => Format::Json,
            FormatArg::Dotenv => Format::Dotenv,
            FormatArg::Ini => Format::Ini,
            FormatArg::Binary => Format::Binary,
            FormatArg::Export => Format::Dotenv,
        }
    }
}

/// Input and output options shared by the commands that transform a file.
#[derive(Args, Debug)]
pub struct Io {
    /// The file, or - for stdin (then --input-type is needed)
    pub file: PathBuf,
    /// Format of the input (default: from the file extension)
    #[arg(long, value_enum, value_name = "TYPE")]
    pub input_type: Option<FormatArg>,
    /// Write the result over the input file (atomically)
    #[arg(short = 'i', long, conflicts_with = "output")]
    pub in_place: bool,
    /// Write the result to PATH (atomically) instead of stdout
    #[arg(short = 'o', long, value_name = "PATH")]
    pub output: Option<PathBuf>,
}

impl Io {
    pub fn name(&self) -> String {
        if self.is_stdin() {
            "<stdin>".into()
        } else {
            self.file.display().to_string()
        }
    }

    pub fn is_stdin(&self) -> bool {
        self.file.as_os_str() == "-"
    }

    pub fn format(&self) -> Result<Format> {
        match (self.input_type, self.is_stdin()) {
            (Some(t), _) => Ok(t.into()),
            (None, false) => Ok(Format::from_path(&self.file)),
            (None, true) => Err(Error::Usage("reading stdin needs --input-type".into())),
        }
    }

    pub fn read(&self) -> Result<Zeroizing<Vec<u8>>> {
        let mut buf = Zeroizing::new(Vec::new());
        if self.is_stdin() {
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| Error::io("<stdin>", e))?;
        } else {
            let mut f = std::fs::File::open(&self.file).map_err(|e| Error::io(&self.file, e))?;
            buf = coffer::fsutil::read_whole(&self.file, &mut f)?;
        }
        Ok(buf)
    }

    /// The input, held for the whole read-modify-write when it is to be replaced (`-i`).
    pub fn read_held(
        &self,
        env: &Env,
    ) -> Result<(Zeroizing<Vec<u8>>, Option<coffer::fsutil::Held>)> {
        if !self.in_place || self.is_stdin() {
            return Ok((self.read()?, None));
        }
        let mut held = env.hold(&self.file)?;
        Ok((held.read()?, Some(held)))
    }

    /// The output where the user asked, through the hold taken by `read_held` when
    /// there is one.
    pub fn write_held(
        &self,
        held: Option<coffer::fsutil::Held>,
        data: &[u8],
        holds: Output,
    ) -> Result<()> {
        self.write_held_from(held, &mut Content::Bytes(data), holds)
    }

    /// [`Io::write_held`] of any [`Content`] (a streamed file's checked output).
    pub fn write_held_from(
        &self,
        held: Option<coffer::fsutil::Held>,
        data: &mut Content<'_>,
        holds: Output,
    ) -> Result<()> {
        match held {
            Some(h) => h.write_from(data, holds.mode()),
            None => self.write_from(data, holds),
        }
    }

    fn write_from(&self, data: &mut Content<'_>, holds: Output) -> Result<()> {
        let force = holds.mode();
        if self.in_place {
            if self.is_stdin() {
                return Err(Error::Usage("-i needs a file, not stdin".into()));
            }
            return coffer::fsutil::write_atomic_from(
                &self.file,
                data,
                0o644,
                force,
                Target::InPlace,
            );
        }
        if let Some(out) = &self.output {
            if !self.is_stdin() && same_file(out, &self.file) {
                return Err(Error::Refused(format!(
                    "{}: refusing to write over the input; use -i for that",
                    out.display()
                )));
            }
            return coffer::fsutil::write_atomic_from(out, data, 0o644, force, Target::Output);
        }
        let mut stdout = std::io::stdout().lock();
        if holds == Output::PlainBinary && stdout.is_terminal() && !data.is_utf8() {
            return Err(Error::Refused(
                "refusing to write binary plaintext to a terminal; use -o FILE".into(),
            ));
        }
        data.write_to(&mut stdout)
            .and_then(|()| stdout.flush())
            .map_err(|e| Error::io("<stdout>", e))
    }
}

/// What an output holds, for how it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Output {
    /// An encrypted file.
    Sealed,
    /// Plaintext: a file written for it gets mode 0600.
    Plain,
    /// A binary file's plaintext: mode 0600, and never bytes that are not text to a
    /// terminal.
    PlainBinary,
}

impl Output {
    /// The mode a plaintext file is written with, whatever the old file's was.
    fn mode(self) -> Option<u32> {
        (self != Output::Sealed).then_some(0o600)
    }
}

/// Open a file named on the command line: an encrypted file, or plaintext the coffer
/// filter covers (`git::worktree`), whose note, if any, is shown here.
pub(crate) fn open_file(
    file: &Path,
    format: Format,
    bytes: impl Into<Zeroizing<Vec<u8>>>,
    keyring: &Keyring,
    ignore_mac: bool,
) -> Result<(coffer::sops::Opened, Option<coffer::git::worktree::Covered>)> {
    let name = if file.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        file.display().to_string()
    };
    let (opened, covered) = coffer::git::worktree::open(
        file,
        &name,
        format,
        bytes,
        keyring,
        coffer::sops::OpenOptions::ignoring_mac(ignore_mac),
    )?;
    if let Some(note) = covered.as_ref().and_then(|c| c.note.as_deref()) {
        warn(note);
    }
    for w in &opened.warnings {
        warn(w);
    }
    Ok((opened, covered))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// What the commands need from the process environment, read once at the edge.
pub struct Env {
    vars: std::collections::HashMap<String, String>,
    /// The process's way to AWS, shared by the KMS keys and every AWS command.
    aws: std::sync::Arc<coffer::aws::Session>,
    /// KMS clients, shared by every key lookup of the process.
    wrappers: coffer::keys::Wrappers,
    /// `--strict-layout`: what to do when a layout cannot be kept.
    pub layout: Layout,
    /// `--force`: files of a sops major version coffer does not know may be rewritten.
    pub force: bool,
    /// `--lock-timeout`: how long a writer waits for another writing the same file.
    pub lock_timeout: std::time::Duration,
    /// `--decryption-order` (or `SOPS_DECRYPTION_ORDER`): key kinds tried first.
    pub decryption_order: Option<String>,
}

impl Env {
    pub fn from_process(aws_profile: Option<String>) -> Self {
        let vars: std::collections::HashMap<String, String> = std::env::vars().collect();
        let var = |k: &str| vars.get(k).filter(|v| !v.is_empty()).cloned();
        let home = var("HOME").map(PathBuf::from);
        let in_home = |rel: &[&str]| {
            home.as_ref()
                .map(|h| rel.iter().fold(h.clone(), |p, r| p.join(r)))
        };
        // COFFER_MFA_TOKEN answers one device: AWS refuses a code used twice.
        let token = std::sync::Mutex::new(var("COFFER_MFA_TOKEN").map(Zeroizing::new));
        let aws = std::sync::Arc::new(coffer::aws::Session::new(coffer::aws::session::Settings {
            flag_profile: aws_profile,
            env_profile: var("AWS_PROFILE"),
            env_keys: var("AWS_ACCESS_KEY_ID").is_some(),
            config_file: var("AWS_CONFIG_FILE")
                .map(PathBuf::from)
                .or_else(|| in_home(&[".aws", "config"])),
            credentials_file: var("AWS_SHARED_CREDENTIALS_FILE")
                .map(PathBuf::from)
                .or_else(|| in_home(&[".aws", "credentials"])),
            cache_dir: match var("COFFER_NO_CREDENTIAL_CACHE").as_deref() {
                Some(v) if v != "0" && v != "false" => None,
                _ => in_home(&[".aws", "cli", "cache"]),
            },
            mfa_code: Box::new(move |profile, serial| {
                match token.lock().expect("token lock").take() {
                    Some(t) => Ok(Zeroizing::new(t.trim().to_string())),
                    None => ask_mfa_code(profile, serial),
                }
            }),
            notice: Box::new(warn),
        }));
        let decryption_order =
            var("COFFER_DECRYPTION_ORDER").or_else(|| var("SOPS_DECRYPTION_ORDER"));
        Env {
            wrappers: coffer::keys::Wrappers {
                kms: std::sync::Arc::new(KmsKeys::new(aws.clone())),
                pgp: std::sync::Arc::new(coffer::keys::pgp::PgpKeys::new(
                    vars.get("SOPS_GPG_EXEC").cloned(),
                )),
            },
            aws,
            vars,
            layout: Layout::default(),
            force: false,
            lock_timeout: std::time::Duration::from_secs(30),
            decryption_order,
        }
    }

    /// The bytes of checked output, with the layout warning shown (or the write refused
    /// under `--strict-layout`).
    pub fn accept(&self, sealed: Sealed) -> Result<Zeroizing<Vec<u8>>> {
        self.accept_layout(sealed.fallback)?;
        Ok(sealed.bytes)
    }

    /// An output whose layout fell back (`fallback`, see [`Sealed::fallback`]): refused
    /// under `--strict-layout`, else said on stderr.
    pub fn accept_layout(&self, fallback: Option<String>) -> Result<()> {
        if let Some(note) = self.layout.allows(fallback)? {
            warn(&note);
        }
        Ok(())
    }

    /// `file` held for a read-modify-write (`fsutil::Held`), saying so when another
    /// coffer makes it wait.
    pub fn hold(&self, file: &Path) -> Result<coffer::fsutil::Held> {
        coffer::fsutil::Held::take(
            file,
            self.lock_timeout,
            std::time::Duration::from_secs(1),
            &|| {
                say(&format!(
                    "waiting for another coffer writing {}",
                    file.display()
                ))
            },
        )
    }

    /// The process's AWS session.
    pub fn aws(&self) -> &coffer::aws::Session {
        &self.aws
    }

    /// What data keys are wrapped with besides age: KMS and gpg.
    pub fn wrappers(&self) -> &coffer::keys::Wrappers {
        &self.wrappers
    }

    pub fn vars(&self) -> std::collections::HashMap<String, String> {
        self.vars.clone()
    }

    pub fn var_names(&self) -> Vec<String> {
        self.vars.keys().cloned().collect()
    }

    pub fn get(&self, k: &str) -> Option<String> {
        self.vars.get(k).cloned()
    }

    pub fn keyring(&self) -> Result<Keyring> {
        let mut sources = IdentitySources::from_env(|k| self.get(k));
        sources.ask = Some(std::sync::Arc::new(ask_passphrase));
        sources.tell = Some(std::sync::Arc::new(|m: &str| say(&format!("age: {m}"))));
        let age = AgeKeys::load(&sources)?;
        // age first, then KMS, then PGP (the slowest: a gpg process per key), unless
        // a decryption order says otherwise.
        let order = self.decryption_order.as_deref().unwrap_or_default();
        let order: Vec<&str> = order
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .collect();
        Ok(Keyring::new(vec![
            Box::new(age),
            Box::new(self.wrappers.kms.clone()),
            Box::new(self.wrappers.pgp.clone()),
        ])
        .in_order(&order))
    }

    pub fn config_dir(&self) -> Option<PathBuf> {
        coffer::keys::age::config_dir(&|k| self.get(k))
    }
}

pub use coffer::config::creation_rule;
use coffer::prompt::Unanswered;

/// One line answered on the terminal (`/dev/tty`, whatever stdin is), after `prompt`;
/// with `echo` off, as age and ssh ask for passphrases. `Err(None)`: no terminal.
fn ask_on_tty(prompt: &str, echo: bool) -> std::result::Result<Zeroizing<String>, Option<String>> {
    use rustix::termios::{self, LocalModes, OptionalActions};
    use std::io::{BufRead, Write};
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|_| None)?;
    let saved = match echo {
        true => None,
        false => {
            let saved = termios::tcgetattr(&tty).map_err(|e| Some(format!("terminal: {e}")))?;
            let mut quiet = saved.clone();
            quiet.local_modes.remove(LocalModes::ECHO);
            quiet.local_modes.insert(LocalModes::ECHONL);
            termios::tcsetattr(&tty, OptionalActions::Flush, &quiet)
                .map_err(|e| Some(format!("terminal: {e}")))?;
            Some(saved)
        }
    };
    let mut w = &tty;
    let mut line = Zeroizing::new(String::new());
    let read =
        write!(w, "{prompt}").and_then(|()| std::io::BufReader::new(&tty).read_line(&mut line));
    // Echo comes back whatever happened.
    if let Some(saved) = saved {
        let _ = termios::tcsetattr(&tty, OptionalActions::Flush, &saved);
    }
    read.map_err(|e| Some(format!("terminal: {e}")))?;
    Ok(line)
}

/// A passphrase, asked for on the terminal with echo off, as age and ssh ask.
fn ask_passphrase(prompt: &str) -> std::result::Result<secrecy::SecretString, Unanswered> {
    let line = ask_on_tty(&format!("{prompt} "), false).map_err(|e| {
        Unanswered(
            e.unwrap_or_else(|| "a passphrase is needed and there is no terminal to ask on".into()),
        )
    })?;
    let given = line.trim_end_matches(['\n', '\r']);
    if given.is_empty() {
        return Err(Unanswered("no passphrase given".into()));
    }
    Ok(secrecy::SecretString::from(given.to_string()))
}

/// The code of an MFA device, asked for on the terminal (`COFFER_MFA_TOKEN` spares that,
/// once).
fn ask_mfa_code(profile: &str, serial: &str) -> std::result::Result<Zeroizing<String>, Unanswered> {
    let line = ask_on_tty(&format!("MFA code for {serial} (profile {profile}): "), true)
        .map_err(|e| {
            Unanswered(e.unwrap_or_else(|| format!("profile {profile} needs an MFA code for {serial} and there is no terminal; set COFFER_MFA_TOKEN (it answers one device)")))
        })?;
    match line.trim() {
        "" => Err(Unanswered(format!(
            "no MFA code given for {serial} (profile {profile})"
        ))),
        code => Ok(Zeroizing::new(code.to_string())),
    }
}

/// Run a parsed command line: data to stdout, warnings and the error (through
/// [`command_error::CommandError`], the one place that picks exit codes) to stderr.
pub fn run(cli: Cli, env: &Env) -> std::process::ExitCode {
    match dispatch(cli, env) {
        Ok(code) => code,
        Err(e) => command_error::CommandError::from(e).report(),
    }
}

fn dispatch(cli: Cli, env: &Env) -> Result<std::process::ExitCode> {
    use std::process::ExitCode;
    let config = cli.config.as_deref();
    // A profile passed by hand that does not exist is a mistake to stop at, whatever
    // the command goes on to need.
    if cli.aws_profile.is_some() {
        env.aws().check(&coffer::aws::Scope::default())?;
    }
    let done = match cli.command {
        Command::Keygen(a) => keygen::run(a, env),
        Command::Encrypt(a) => crypt::encrypt(a, config, env),
        Command::Decrypt(a) => crypt::decrypt(a, env),
        Command::Edit(a) => edit::edit(a, config, env),
        Command::Set(a) => edit::set(a, env),
        Command::Unset(a) => edit::unset(a, env),
        Command::Rotate(a) => crypt::rotate(a, env),
        Command::Updatekeys(a) => keys::updatekeys(a, config, env),
        Command::Access(a) => keys::access(a, config),
        Command::Team(cmd) => team::run(cmd, config, env),
        Command::Filestatus(a) => crypt::filestatus(a),
        Command::Git(cmd) => git::run(cmd, config, env),
        Command::Exec(a) => deploy::exec(a, env),
        Command::ExecFile(a) => {
            let code = deploy::exec_file(a, env)?;
            return Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)));
        }
        Command::Render(a) => deploy::render(a, config, env),
        Command::Push(a) => aws::push(a, config, env),
        Command::Migrate(cmd) => aws::migrate(cmd, config, env),
        // `coffer sops …` reaches here only after coffer's own flags (main hands the
        // rest to cli::sops directly): --config carries over, the others are coffer's.
        Command::Sops { args } => {
            if cli.aws_profile.is_some() || cli.strict_layout || cli.force || cli.lock_timeout != 30
            {
                return Err(Error::Usage(
                    "give sops's own flags after `coffer sops` (--aws-profile, and no --strict-layout, --force or --lock-timeout)".into(),
                ));
            }
            let mut argv = vec![std::ffi::OsString::from("sops")];
            if let Some(c) = &cli.config {
                argv.extend(["--config".into(), c.clone().into_os_string()]);
            }
            argv.extend(args);
            return Ok(sops::main(argv));
        }
        Command::Completions { shell } => {
            // Generated whole first: clap_complete panics on a failed write.
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "coffer", &mut script);
            print_out(&String::from_utf8_lossy(&script))
        }
        Command::Manpages { dir } => {
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            let cmd = <Cli as clap::CommandFactory>::command();
            clap_mangen::generate_to(cmd, &dir).map_err(|e| Error::io(&dir, e))
        }
    };
    done.map(|()| ExitCode::SUCCESS)
}

/// What Ctrl-C, SIGTERM and SIGHUP do once a command has said (see [`on_signal`]).
type SignalAction = Box<dyn Fn() + Send>;
static ON_SIGNAL: std::sync::Mutex<Option<SignalAction>> = std::sync::Mutex::new(None);

/// Catch Ctrl-C, SIGTERM and SIGHUP for the whole process: the command's own action
/// runs, or temporary files and private directories are removed (a partial one may
/// hold plaintext) and the process ends with 130. Also, from here on: memory that runs
/// out ends it with one line (`oom`), and no core dump can be made.
pub fn install_signal_handler() {
    // A command with an action of its own (edit waits for its editor, exec-file for
    // its command) removes its private files itself, once they are done with.
    let handle = || match ON_SIGNAL.lock().ok().as_deref() {
        Some(Some(action)) => action(),
        _ => {
            eprintln!("coffer: interrupted; nothing half-written is left");
            coffer::fsutil::remove_pending_and_exit(130)
        }
    };
    let _ = ctrlc::set_handler(handle);
    // The other signals whose default is to end the process (QUIT would also dump core)
    // end it the same way.
    use signal_hook::consts::{SIGALRM, SIGQUIT, SIGUSR1, SIGUSR2};
    if let Ok(mut signals) =
        signal_hook::iterator::Signals::new([SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM])
    {
        std::thread::spawn(move || {
            for _ in signals.forever() {
                handle();
            }
        });
    }
    // Memory that runs out ends the process the same way, with room kept to do it.
    oom::set_aside();
    oom::large_blocks_mapped();
    // Plaintext and keys are held from here on: no core dump may carry them, and no
    // other process of the user may read this one's memory.
    let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Core);
    let _ = setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: limit.maximum,
        },
    );
}

/// Instead of ending the process on a signal, run `action` (after temp files are gone).
pub(crate) fn on_signal(action: impl Fn() + Send + 'static) {
    if let Ok(mut slot) = ON_SIGNAL.lock() {
        *slot = Some(Box::new(action));
    }
}

/// The comma-separated items of a flag (given once or repeated), trimmed, without
/// empty ones.
pub(crate) fn comma_list<'a>(flag: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    flag.into_iter()
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The end of a command line clap did not run: its usage mistake (exit `usage`), or the
/// help or version it printed (exit 0). Help or a version that did not reach stdout is a
/// failure, exit 1; a closed pipe is not: the reader had what it wanted.
pub(crate) fn clap_exit(e: &clap::Error, usage: u8) -> std::process::ExitCode {
    use std::process::ExitCode;
    match e.print() {
        Err(io) if !e.use_stderr() && io.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("coffer: <stdout>: {io}");
            ExitCode::from(1)
        }
        _ => ExitCode::from(if e.use_stderr() { usage } else { 0 }),
    }
}

/// Data for stdout (`print!`, whose failure would panic): a closed pipe or a full disk is
/// an error like any other write's.
pub(crate) fn print_out(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("<stdout>", e))
}

pub fn warn(msg: &str) {
    eprintln!("coffer: warning: {}", command_error::one_line(msg));
}

/// A `coffer:` line about what a command did (never data: that goes to stdout).
pub fn say(msg: &str) {
    eprintln!("coffer: {}", command_error::one_line(msg));
}

/// A `hint:` line after a command's output (what to do about what it showed).
pub fn hint(msg: &str) {
    eprintln!("hint: {}", command_error::one_line(msg));
}
