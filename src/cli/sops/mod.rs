//! coffer answering to `sops`: invoked under that name (a symlink) or as `coffer sops
//! …`, it takes sops 3.x's command line, semantics and exit codes, over the same
//! library as coffer's own commands. Only the parsing and sops's choices live here.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use zeroize::Zeroizing;

use super::command_error::CommandError;
use super::{comma_list as list, warn, Env};
use coffer::cipher::DataKey;
use coffer::config::{Config, CreationRule};
use coffer::format::Format;
use coffer::fsutil::Content;
use coffer::fsutil::Target;
use coffer::keys::kms::KmsSpec;
use coffer::keys::Recipients;
use coffer::metadata::{Metadata, Selector};
use coffer::path::Step;
use coffer::tree::{ScalarType, Value};
use coffer::{mutate, sops, Error};

mod args;
mod codes;
mod keys;
mod run;

use args::{GlobalArgs, IoFlags, KeyFlags, SelectorFlags, SopsCli, SopsCommand, SopsType};
use coffer::sops::OpenOptions;

/// The sops release whose command line this speaks.
const SOPS_INTERFACE: &str = "3.11.0";

/// Whether the program was started under sops's name.
pub fn is_sops_name(argv0: &OsStr) -> bool {
    Path::new(argv0).file_name() == Some(OsStr::new("sops"))
}

/// A failure with the sops exit code it ends with.
struct Failure {
    code: u8,
    error: Error,
    /// Said as it is, with no `coffer:` in front: sops's exact words, which scripts and
    /// sops's own tests compare.
    verbatim: bool,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure {
            verbatim: false,
            code: codes::of(&error),
            error,
        }
    }
}

type Result<T> = std::result::Result<T, Failure>;

/// A failure with sops's `code` and one line of text.
fn fail<T>(code: u8, message: impl Into<String>) -> Result<T> {
    Err(coded(code)(Error::Usage(message.into())))
}

/// An error with another code than its kind has in sops.
fn coded(code: u8) -> impl FnOnce(Error) -> Failure {
    move |error| Failure {
        code,
        error,
        verbatim: false,
    }
}

/// Run sops's command line; `argv[0]` is the program name.
pub fn main(argv: Vec<OsString>) -> ExitCode {
    // One clap command, for normalizing the line and for parsing it.
    let cmd = SopsCli::command();
    let argv = normalize(&cmd, argv);
    let parsed = cmd
        .try_get_matches_from(argv)
        .and_then(|m| SopsCli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        // urfave/cli ends a usage mistake with 1.
        Err(e) => return super::clap_exit(&e, codes::ERROR_GENERIC),
    };
    // `--check-for-updates` alone asks for the version and a check; coffer makes none.
    let check_alone =
        cli.global.check_for_updates.is_some() && cli.command.is_none() && cli.main.file.is_none();
    if check_alone {
        warn("coffer makes no update check (it never calls out to look for a newer version)");
    }
    if cli.global.version || check_alone {
        let version = format!(
            "sops {SOPS_INTERFACE} (coffer {}, answering to sops's command line)\n",
            env!("CARGO_PKG_VERSION")
        );
        return match super::print_out(&version) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => super::command_error::CommandError::from(e).report(),
        };
    }
    super::install_signal_handler();
    let mut env = Env::from_process(aws_profile(&cli));
    if let Some(order) = &cli.global.decryption_order {
        env.decryption_order = Some(order.clone());
    }
    match run::run(cli, &env) {
        Ok(code) => code,
        Err(f) if f.verbatim => {
            eprintln!("{}", f.error);
            ExitCode::from(f.code)
        }
        Err(f) => CommandError::from(f.error).report_as(f.code),
    }
}

fn aws_profile(cli: &SopsCli) -> Option<String> {
    match &cli.command {
        None => cli.main.keys.aws_profile.clone(),
        Some(SopsCommand::Encrypt(a)) => a.keys.aws_profile.clone(),
        Some(SopsCommand::Edit(a)) => a.keys.aws_profile.clone(),
        Some(SopsCommand::Groups(args::GroupsCommand::Add(a))) => a.aws_profile.clone(),
        _ => None,
    }
}

/// sops parses its flags as Go does: `-decrypt` is `--decrypt`, and the main command
/// stops at its first argument that is not a flag (the file); what follows is not
/// parsed as flags. clap is handed the same line in its own terms.
fn normalize(cmd: &clap::Command, argv: Vec<OsString>) -> Vec<OsString> {
    let mut longs = std::collections::HashSet::new();
    collect_longs(cmd, &mut longs);
    let takes_value = |a: &str| -> bool {
        cmd.get_arguments().any(|arg| {
            let named = match a.strip_prefix("--") {
                Some(long) => arg.get_long() == Some(long),
                None => a
                    .strip_prefix('-')
                    .and_then(|s| s.chars().next())
                    .is_some_and(|c| a.len() == 2 && arg.get_short() == Some(c)),
            };
            // Go's booleans never take the next argument, whatever clap lets them take.
            named
                && arg.get_action().takes_values()
                && arg.get_num_args().is_none_or(|n| n.min_values() > 0)
        })
    };
    let subcommands: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .chain(["help".to_string()])
        .collect();
    let mut out = Vec::with_capacity(argv.len() + 1);
    let mut it = argv.into_iter().peekable();
    out.extend(it.next());
    let mut main_command = true;
    while let Some(arg) = it.next() {
        let Some(s) = arg.to_str().map(str::to_string) else {
            if main_command {
                // A file name that is not UTF-8: the main command's file.
                out.push(OsString::from("--"));
                out.push(arg);
                out.extend(it.by_ref());
                break;
            }
            out.push(arg);
            continue;
        };
        if s == "--" {
            out.push(arg);
            out.extend(it.by_ref());
            break;
        }
        let s = match s.strip_prefix('-') {
            Some(rest)
                if !rest.starts_with('-')
                    && rest.len() > 1
                    && longs.contains(rest.split('=').next().unwrap_or_default()) =>
            {
                format!("-{s}")
            }
            _ => s,
        };
        if !main_command || s.starts_with('-') {
            let value_follows = main_command && !s.contains('=') && takes_value(&s);
            match (value_follows, it.next_if(|_| value_follows)) {
                // `--flag=value`: a value that starts with `-` is still the value, as in Go.
                (true, Some(v)) if s.starts_with("--") => {
                    let mut joined = OsString::from(format!("{s}="));
                    joined.push(v);
                    out.push(joined);
                }
                (true, Some(v)) => out.extend([OsString::from(s), v]),
                _ => out.push(OsString::from(s)),
            }
            continue;
        }
        if subcommands.contains(&s) {
            main_command = false;
            out.push(OsString::from(s));
            continue;
        }
        // The file of the main command: the rest are plain arguments.
        out.push(OsString::from("--"));
        out.push(OsString::from(s));
        out.extend(it.by_ref());
        break;
    }
    out
}

fn collect_longs(cmd: &clap::Command, into: &mut std::collections::HashSet<String>) {
    for a in cmd.get_arguments() {
        if let Some(l) = a.get_long() {
            into.insert(l.to_string());
        }
    }
    for s in cmd.get_subcommands() {
        collect_longs(s, into);
    }
}

/// The type sops gives a file by its name: case-sensitive suffixes, else binary.
fn type_of_name(path: &Path) -> Format {
    let name = path.to_string_lossy();
    if name.ends_with(".yaml") || name.ends_with(".yml") {
        Format::Yaml
    } else if name.ends_with(".json") {
        Format::Json
    } else if name.ends_with(".env") {
        Format::Dotenv
    } else if name.ends_with(".ini") {
        Format::Ini
    } else {
        Format::Binary
    }
}

/// Input and output types: the flags, else the (override) name's. sops's output type
/// follows the name, not `--input-type`.
fn types(
    name: Option<&Path>,
    input: Option<SopsType>,
    output: Option<SopsType>,
) -> (Format, Format) {
    let by_name = name.map_or(Format::Binary, type_of_name);
    let or_name = |t: Option<SopsType>| t.and_then(|t| t.0).unwrap_or(by_name);
    (or_name(input), or_name(output))
}

/// sops's words for a missing file it was asked to work on (exit 100).
fn no_such_file(file: &Path) -> Failure {
    coded(codes::NO_FILE_SPECIFIED)(Error::Usage(format!(
        "Error: cannot operate on non-existent file {:?}",
        absolute(file).display().to_string()
    )))
}

impl IoFlags {
    /// `-i` and `--output` together end with 8, as in sops.
    fn check(&self) -> Result<()> {
        if self.in_place && self.output.is_some() {
            return fail(
                codes::ERROR_CONFLICTING_PARAMETERS,
                "Error: cannot operate on both --output and --in-place",
            );
        }
        Ok(())
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The input's bytes: the file, or stdin without one. A missing file ends with
/// `missing` (100 where sops checks first, 2 where it just fails to read).
fn read_input(file: Option<&Path>, missing: u8) -> Result<(String, Zeroizing<Vec<u8>>)> {
    let Some(file) = file else {
        let mut buf = Zeroizing::new(Vec::new());
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| coded(codes::COULD_NOT_READ_INPUT_FILE)(Error::io("<stdin>", e)))?;
        return Ok(("<stdin>".into(), buf));
    };
    match std::fs::read(file) {
        Ok(bytes) => Ok((file.display().to_string(), Zeroizing::new(bytes))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && missing == 100 => {
            Err(no_such_file(file))
        }
        // A directory, a file that cannot be read: sops's "Error reading file".
        Err(e) => Err(coded(if missing == codes::NO_FILE_SPECIFIED {
            codes::COULD_NOT_READ_INPUT_FILE
        } else {
            missing
        })(Error::io(file, e))),
    }
}

/// Write a result where sops would: over the file (`-i`), to `--output`, or stdout.
/// Plaintext written to a file is private (0600). Failures end with 3.
fn write_output(io: &IoFlags, file: Option<&Path>, data: &[u8], plaintext: bool) -> Result<()> {
    write_output_from(io, file, &mut Content::Bytes(data), plaintext)
}

/// [`write_output`] of any [`Content`] (an output written into a file and checked there).
fn write_output_from(
    io: &IoFlags,
    file: Option<&Path>,
    data: &mut Content<'_>,
    plaintext: bool,
) -> Result<()> {
    let private = plaintext.then_some(0o600);
    let written = if io.in_place {
        match file {
            Some(f) => coffer::fsutil::write_atomic_from(f, data, 0o644, private, Target::InPlace),
            None => {
                return fail(
                    codes::ERROR_CONFLICTING_PARAMETERS,
                    "Error: cannot use --in-place when reading from stdin",
                )
            }
        }
    } else if let Some(out) = &io.output {
        coffer::fsutil::write_atomic_from(out, data, 0o644, private, Target::Output)
    } else {
        let mut stdout = std::io::stdout().lock();
        data.write_to(&mut stdout)
            .and_then(|()| stdout.flush())
            .map_err(|e| Error::io("<stdout>", e))
    };
    written.map_err(coded(codes::COULD_NOT_WRITE_OUTPUT_FILE))
}

/// The config file: `--config` (or SOPS_CONFIG), else the nearest one above the
/// current directory, as sops looks (not above the file).
fn config_file(g: &GlobalArgs) -> Result<Option<PathBuf>> {
    match &g.config {
        Some(p) if !p.is_file() => fail(
            codes::ERROR_GENERIC,
            format!("could not read config file: {}: no such file", p.display()),
        ),
        Some(p) => Ok(Some(p.clone())),
        None => {
            let cwd = std::env::current_dir().map_err(|e| Error::io(".", e))?;
            Ok(coffer::config::find(&cwd))
        }
    }
}

/// The creation rule for `name`. A config with rules of which none matches is an
/// error, as in sops, even where the rule's keys are not needed.
fn creation_rule(g: &GlobalArgs, name: &Path) -> Result<Option<CreationRule>> {
    let Some(file) = config_file(g)? else {
        return Ok(None);
    };
    let config = Config::load(&file)?;
    if config.rules.is_empty() {
        return Ok(None);
    }
    match config.rule_for(&absolute(name)) {
        None => fail(
            codes::ERROR_GENERIC,
            "error loading config: no matching creation rules found",
        ),
        Some(CreationRule {
            unsupported: Some(why),
            ..
        }) => Err(Error::Config {
            file: file.display().to_string(),
            message: why.clone(),
        }
        .into()),
        Some(rule) => Ok(Some(rule.clone())),
    }
}

/// sops's KMS encryption context: `key:value,key2:value2`; anything else ends with 6.
fn context(flag: &Option<String>) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for pair in list(flag) {
        match pair.split_once(':') {
            Some((k, _)) if out.iter().any(|(o, _)| o == k) => {
                return fail(
                    codes::ERROR_INVALID_KMS_ENCRYPTION_CONTEXT_FORMAT,
                    format!("Invalid KMS encryption context: {k:?} given twice"),
                )
            }
            Some((k, v)) if !k.is_empty() => out.push((k.to_string(), v.to_string())),
            _ => {
                return fail(
                    codes::ERROR_INVALID_KMS_ENCRYPTION_CONTEXT_FORMAT,
                    "Invalid KMS encryption context format",
                )
            }
        }
    }
    Ok(out)
}

/// Key kinds coffer cannot wrap a data key for: the first of `flags` given, named.
fn refuse_unusable(flags: [(&str, bool); 4]) -> Result<()> {
    match flags.iter().find(|(_, given)| *given) {
        Some((flag, _)) => fail(
            codes::ERROR_GENERIC,
            format!("coffer cannot use {flag} keys; use age, AWS KMS or PGP keys"),
        ),
        None => Ok(()),
    }
}

/// Whether a string flag holds something.
fn given(flag: &Option<String>) -> bool {
    flag.as_deref().is_some_and(|v| !v.trim().is_empty())
}

fn refuse_other_keys(o: &args::OtherKeyFlags) -> Result<()> {
    refuse_unusable([
        ("--gcp-kms (GCP KMS)", given(&o.gcp_kms)),
        ("--azure-kv (Azure Key Vault)", given(&o.azure_kv)),
        (
            "--hc-vault-transit (HashiCorp Vault)",
            given(&o.hc_vault_transit),
        ),
        ("--hckms (HuaweiCloud KMS)", given(&o.hckms)),
    ])
}

/// Master keys for a new file: the key flags (with their environment variables)
/// replace the creation rule's entirely, as in sops.
fn new_recipients(keys: &KeyFlags, rule: Option<&CreationRule>) -> Result<Recipients> {
    refuse_other_keys(&keys.unsupported)?;
    let context = context(&keys.encryption_context)?;
    let given = coffer::config::KeyLists {
        age: list(&keys.age),
        kms: list(&keys.kms),
        pgp: list(&keys.pgp),
        context,
        aws_profile: keys.aws_profile.clone(),
    };
    let from_flags = !given.is_empty();
    let mut found = coffer::config::new_file_recipients(&given, rule)?;
    if found.is_empty() && rule.is_some() && !from_flags {
        // A rule matched and names no key (none at all, `key_groups: []`, or an empty
        // group): sops's words for it.
        return Err(Failure {
            code: codes::ERROR_GENERIC,
            error: Error::Usage("Could not generate data key: [empty key group provided]".into()),
            verbatim: true,
        });
    }
    if found.is_empty() {
        return fail(
            codes::ERROR_GENERIC,
            "config file not found, or has no creation rules, and no keys provided through command line options",
        );
    }
    if let Some(t) = keys.shamir_secret_sharing_threshold.filter(|t| *t > 0) {
        if !found.groups.is_empty() {
            if t > found.groups.len() {
                return fail(
                    codes::ERROR_GENERIC,
                    format!(
                        "a Shamir threshold of {t} needs at least {t} key groups; there are {}",
                        found.groups.len()
                    ),
                );
            }
            found.threshold = t;
        }
    }
    Ok(found)
}

/// Which values a new file encrypts, from the flags over the rule's. More than one
/// selector among the flags ends with 8, as in sops.
fn new_metadata(
    key: &DataKey,
    recipients: &Recipients,
    rule: Option<&CreationRule>,
    s: &SelectorFlags,
    env: &Env,
) -> Result<Metadata> {
    let given = [
        &s.unencrypted_suffix,
        &s.encrypted_suffix,
        &s.unencrypted_regex,
        &s.encrypted_regex,
        &s.unencrypted_comment_regex,
        &s.encrypted_comment_regex,
    ];
    if given.iter().filter(|g| g.is_some()).count() > 1 {
        return fail(codes::ERROR_CONFLICTING_PARAMETERS, "Error: cannot use more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, unencrypted_regex, encrypted_comment_regex, or unencrypted_comment_regex in the same file");
    }
    let selector = Selector::first_given(
        &s.unencrypted_suffix,
        &s.encrypted_suffix,
        &s.unencrypted_regex,
        &s.encrypted_regex,
    );
    let mut md = sops::new_metadata(key, recipients, env.wrappers(), rule, selector)?;
    if s.unencrypted_comment_regex.is_some() || s.encrypted_comment_regex.is_some() {
        md.unencrypted_comment_regex = s.unencrypted_comment_regex.clone();
        md.encrypted_comment_regex = s.encrypted_comment_regex.clone();
    }
    md.mac_only_encrypted |= s.mac_only_encrypted;
    if let Err(e) = md.rules() {
        return fail(codes::ERROR_GENERIC, format!("can not compile regexp: {e}"));
    }
    Ok(md)
}

/// A tree path as sops reads it (`["a"][0]`); anything else is not one.
fn tree_path(s: &str) -> coffer::Result<Vec<Step>> {
    coffer::path::parse_sops(s)
}

/// JSON output as sops writes it: a tab per level (or `--indent` spaces). coffer's
/// emitter indents by four spaces and never puts a space at the start of a line
/// otherwise (line breaks in strings are escaped).
fn sops_json(text: &[u8], indent: Option<usize>) -> Zeroizing<Vec<u8>> {
    let unit = match indent {
        Some(n) => " ".repeat(n),
        None => "\t".into(),
    };
    let mut out = Zeroizing::new(Vec::with_capacity(text.len()));
    for line in text.split_inclusive(|b| *b == b'\n') {
        let spaces = line.iter().take_while(|b| **b == b' ').count();
        for _ in 0..spaces / 4 {
            out.extend_from_slice(unit.as_bytes());
        }
        out.extend_from_slice(&line[spaces / 4 * 4..]);
    }
    out
}

/// `--extract` as sops prints it: a string bare, other scalars and lists as the
/// output type writes one value (YAML with a line break, JSON without), maps as a file.
fn extract(
    opened: &sops::Opened,
    steps: &[Step],
    to: Format,
    indent: Option<usize>,
) -> coffer::Result<Zeroizing<Vec<u8>>> {
    // The library finds the value (or says it is not there) and writes it; what sops
    // adds or leaves out depends on the kind of node only.
    let mut out = opened.extract(steps, to)?;
    let json = matches!(to, Format::Json | Format::Binary);
    match coffer::path::lookup(opened_root(opened)?, steps) {
        Some(leaf @ coffer::tree::Node::Leaf(_)) if to == Format::Yaml => {
            let text = matches!(opened.value(leaf)?, Value::Scalar(ScalarType::Str, _));
            if !text {
                out.push(b'\n');
            }
        }
        Some(coffer::tree::Node::Map(_)) if json => out = sops_json(&out, indent),
        Some(coffer::tree::Node::Seq(_)) if json => {
            out = sops_json(&out, indent);
            if out.ends_with(b"\n") {
                out.pop();
            }
        }
        _ => {}
    }
    Ok(out)
}

fn opened_root(opened: &sops::Opened) -> coffer::Result<&coffer::tree::Node> {
    opened
        .doc
        .docs
        .first()
        .map(|d| &d.root)
        .ok_or_else(|| Error::Unsupported {
            file: opened.file.clone(),
            what: "the file holds no document".into(),
        })
}

/// The whole plaintext in `to`: the file's own layout in its own type; converted
/// output as sops writes it.
fn plaintext_out(
    opened: sops::Opened,
    to: Format,
    indent: Option<usize>,
    env: &Env,
) -> Result<Zeroizing<Vec<u8>>> {
    let own = to == opened.format;
    if to == Format::Binary && !own {
        // sops's binary type writes the text of a top-level `data` key.
        if let Value::Map(entries) = opened.value(opened_root(&opened)?)? {
            if let Some((_, Value::Scalar(ScalarType::Str, s))) =
                entries.into_iter().find(|(k, _)| k == "data")
            {
                return Ok(Zeroizing::new(s.as_bytes().to_vec()));
            }
        }
        return fail(
            codes::ERROR_DUMPING_TREE,
            "Error dumping file: error emitting binary store: no binary data found in tree",
        );
    }
    let converted_json = to == Format::Json && !own;
    // A value the output type cannot hold ends with 4, as sops's "Error dumping file".
    let dumped = opened.into_output(to).and_then(|sealed| env.accept(sealed));
    let out = dumped.map_err(|e| {
        if own {
            e.into()
        } else {
            coded(codes::ERROR_DUMPING_TREE)(e)
        }
    })?;
    Ok(if converted_json {
        sops_json(&out, indent)
    } else {
        // sops ends every text file it writes with a line break.
        sops::with_final_line_break("output", to, out)
    })
}

/// Warn about `--indent`, which coffer honours for JSON it writes anew only.
fn note_indent(indent: Option<usize>) {
    if indent.is_some() {
        warn("--indent applies to JSON coffer converts to; files keep their own layout byte for byte");
    }
}

/// `-s`/`--show-master-keys` edits the metadata in the editor, which coffer does not.
fn refuse_show_master_keys(given: bool) -> Result<()> {
    if given {
        return fail(codes::ERROR_GENERIC, "coffer does not support --show-master-keys (-s): `coffer access FILE` lists a file's master keys");
    }
    Ok(())
}

/// A value for `set`: JSON, as sops requires; anything else ends with 7.
fn json_value(data: &str) -> Result<Zeroizing<String>> {
    // One JSON value: the only item of a list, so that `1, "w": 2` is not taken for one.
    let wrapped = Zeroizing::new(format!("{{\"v\": [{}]}}", data.trim()));
    let one_value = |d: &coffer::tree::Document| {
        let [doc] = d.docs.as_slice() else {
            return false;
        };
        let coffer::tree::Node::Map(entries) = &doc.root else {
            return false;
        };
        matches!(&entries[..], [e] if matches!(&e.value, coffer::tree::Node::Seq(items) if items.len() == 1))
    };
    let ok = !data.trim().is_empty()
        && Format::Json
            .store()
            .parse(Zeroizing::new(wrapped.as_bytes().to_vec()))
            .is_ok_and(|d| one_value(&d));
    if !ok {
        return fail(
            codes::ERROR_INVALID_SET_FORMAT,
            "Value for --set is not valid JSON",
        );
    }
    // sops reads a compound value as a JSON document, which must be an object.
    if data.trim_start().starts_with('[') {
        return fail(
            codes::ERROR_INVALID_SET_FORMAT,
            "Invalid --set value format",
        );
    }
    Ok(Zeroizing::new(data.trim().to_string()))
}

/// Set `steps` to `value` (JSON) in `file`. sops rewrites the file even when the value
/// was already there, unless `idempotent`.
fn set_value(
    file: &Path,
    (format, to): (Format, Format),
    steps: &[Step],
    value: &str,
    idempotent: bool,
    ignore_mac: bool,
    env: &Env,
) -> Result<()> {
    modify(
        file,
        (format, to),
        idempotent,
        ignore_mac,
        env,
        |name, plain| {
            // Paths sops would follow that coffer does not (through a scalar): sops's 1.
            mutate::set(name, format, plain, steps, value)
                .map(Some)
                .map_err(|e| match e {
                    Error::BadPath { .. } | Error::PathNotFound { .. } => {
                        coded(codes::ERROR_GENERIC)(e)
                    }
                    e => e.into(),
                })
        },
    )
}

/// Change the plaintext of `file` and write it back in place, as sops's set and unset
/// do: `None` from `change` leaves the file as it is; plaintext the file already holds
/// is written anew unless `idempotent`; with another output type (`to`), the file is
/// written anew in it, checked as every encryption is.
fn modify(
    file: &Path,
    (format, to): (Format, Format),
    idempotent: bool,
    ignore_mac: bool,
    env: &Env,
    change: impl FnOnce(&str, &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>>,
) -> Result<()> {
    // sops's checks and codes for the file first; then it is held from the read to the
    // rename, so concurrent writers of it take turns.
    let (name, _) = read_input(Some(file), codes::COULD_NOT_READ_INPUT_FILE)?;
    let mut held = env
        .hold(file)
        .map_err(coded(codes::COULD_NOT_READ_INPUT_FILE))?;
    let bytes = held
        .read()
        .map_err(coded(codes::COULD_NOT_READ_INPUT_FILE))?;
    let opened = sops::open(
        &name,
        format,
        bytes,
        &env.keyring()?,
        OpenOptions::ignoring_mac(ignore_mac),
    )?;
    let plaintext = env.accept(opened.render()?)?;
    let Some(changed) = change(&name, &plaintext)? else {
        return Ok(());
    };
    if to != format {
        if idempotent && changed[..] == plaintext[..] {
            return Ok(());
        }
        let converted =
            sops::convert_plain(&name, format, to, changed).map_err(coded(codes::ERROR_GENERIC))?;
        let sealed = rewrite(&opened, to, converted)?;
        return held
            .write(&env.accept(sealed)?)
            .map_err(coded(codes::COULD_NOT_WRITE_OUTPUT_FILE));
    }
    let sealed = match opened.reencrypt(&changed)? {
        Some(sealed) => sealed,
        None if idempotent => return Ok(()),
        None => rewrite(&opened, opened.format, opened.plaintext()?)?,
    };
    held.write(&env.accept(sealed)?)
        .map_err(coded(codes::COULD_NOT_WRITE_OUTPUT_FILE))
}

/// The file written anew as `plaintext` of `format`, with its data key and metadata, a
/// new `lastmodified` and MAC: as sops writes a file it was asked to change to what it
/// already was, or in another output type.
fn rewrite(
    opened: &sops::Opened,
    format: Format,
    plaintext: Zeroizing<Vec<u8>>,
) -> coffer::Result<sops::Sealed> {
    opened.rewritten(format, plaintext)
}

/// The top-level values of a file as sops's exec-env passes them: keys as they are,
/// scalars as text (null as Go prints it), nested values refused.
fn environment(opened: &sops::Opened) -> Result<Vec<(String, Zeroizing<String>)>> {
    let root = opened.value(opened_root(opened)?)?;
    let Value::Map(entries) = root else {
        return fail(
            codes::ERROR_GENERIC,
            "cannot use complex value in environment; the file is not a mapping",
        );
    };
    let mut out = Vec::new();
    for (k, v) in entries {
        let text = match v {
            Value::Scalar(ScalarType::Null, _) => Zeroizing::new("<nil>".to_string()),
            Value::Scalar(ScalarType::Bool, s) => {
                Zeroizing::new(coffer::scalar::parse_bool(&s).unwrap_or(false).to_string())
            }
            Value::Scalar(_, s) => s,
            _ => {
                return fail(
                    codes::ERROR_GENERIC,
                    format!("cannot use complex value in environment; offending key {k}"),
                )
            }
        };
        if k.contains('=') {
            return fail(
                codes::ERROR_GENERIC,
                format!("cannot use keys with '=' in environment: {k}"),
            );
        }
        out.push((k, text));
    }
    Ok(out)
}

/// sops's answer to a yes/no `question` (Go's `fmt.Scanln`): `y` or `n`, asked again
/// otherwise.
fn confirm(question: &str) -> Result<bool> {
    // sops reads stdin whatever it is: a script without -y gets its EOF error.
    let stdin = std::io::stdin();
    loop {
        super::print_out(question)?;
        let mut line = String::new();
        match stdin.read_line(&mut line) {
            Ok(0) => return fail(codes::ERROR_GENERIC, "EOF"),
            Ok(_) => match line.trim() {
                "y" => return Ok(true),
                "n" => return Ok(false),
                "" => return fail(codes::ERROR_GENERIC, "unexpected newline"),
                _ => {}
            },
            Err(e) => return Err(coded(codes::ERROR_GENERIC)(Error::io("<stdin>", e))),
        }
    }
}
