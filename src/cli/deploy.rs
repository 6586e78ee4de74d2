use coffer::render::Unresolved;
use std::collections::HashMap;
use std::path::PathBuf;

use clap::Args;
use zeroize::Zeroizing;

use super::{warn, Env, FormatArg};
use coffer::format::Format;
use coffer::render::{self, Failure, Sources};
use coffer::{sops, Error, Result};

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Encrypted files whose values go into the environment (merged left to right)
    pub files: Vec<PathBuf>,
    /// More files, as options
    #[arg(long = "file", value_name = "FILE")]
    pub more: Vec<PathBuf>,
    /// Prefix for every variable name. Nested keys are joined with _ and upper-cased,
    /// except dotenv keys and names under TF_VAR_, which keep their case (Terraform's
    /// variable names are case-sensitive)
    #[arg(long, value_name = "PREFIX", default_value = "")]
    pub prefix: String,
    /// Upper-case every name, TF_VAR_ ones too
    #[arg(long)]
    pub upper: bool,
    /// Start from an empty environment instead of coffer's
    #[arg(long)]
    pub pristine: bool,
    /// Leave out keys that are not valid variable names instead of failing
    #[arg(long)]
    pub skip_invalid: bool,
    /// Pass coffer's own key sources (COFFER_AGE_KEY, SOPS_AGE_KEY_FILE, …) on to the command
    #[arg(long)]
    pub keep_key_env: bool,
    /// Format of the files (default: from their extensions)
    #[arg(long, value_enum, value_name = "TYPE")]
    pub input_type: Option<FormatArg>,
    /// The command and its arguments, after --
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ExecFileArgs {
    /// The encrypted file whose plaintext the command gets as a file
    pub file: PathBuf,
    /// Format of the file (default: from its extension)
    #[arg(long, value_enum, value_name = "TYPE")]
    pub input_type: Option<FormatArg>,
    /// Pass coffer's own key sources (COFFER_AGE_KEY, SOPS_AGE_KEY_FILE, …) on to the command
    #[arg(long)]
    pub keep_key_env: bool,
    /// The command, after --; `{}` stands for the path of the plaintext file
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// The command gets the secrets it asked for, not the keys that open every file:
/// the variables coffer reads its identities and MFA code from are left out.
fn without_key_sources(cmd: &mut std::process::Command, env: &Env, keep: bool) {
    if keep {
        return;
    }
    coffer::keys::remove_key_sources(cmd, env.var_names());
}

#[derive(Args, Debug)]
pub struct RenderArgs {
    /// Templates with {{ secret URI }} references
    #[arg(required = true)]
    pub templates: Vec<PathBuf>,
    /// Write the result here (mode 0600, atomically); with one template only
    #[arg(short = 'o', long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Resolve every reference and print nothing: exit 1 listing the ones that fail
    #[arg(long)]
    pub check: bool,
}

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

pub fn exec(args: ExecArgs, env: &Env) -> Result<()> {
    let keyring = env.keyring()?;
    let mut vars: Vec<(String, Zeroizing<String>)> = Vec::new();
    for file in args.files.iter().chain(&args.more) {
        let format = args
            .input_type
            .map_or_else(|| Format::from_path(file), Into::into);
        let bytes = std::fs::read(file).map_err(|e| Error::io(file, e))?;
        let (opened, _) = super::open_file(file, format, bytes, &keyring, false)?;
        // Terraform reads TF_VAR_name for the variable `name`, case and all.
        let case = match (args.upper, args.prefix.starts_with("TF_VAR_")) {
            (true, _) => Case::Upper,
            (false, true) => Case::Keep,
            (false, false) => Case::Default,
        };
        for (k, v) in variables(&opened, args.skip_invalid, case)? {
            let k = format!("{}{k}", args.prefix);
            vars.retain(|(existing, _)| *existing != k);
            vars.push((k, v));
        }
    }
    let invalid: Vec<String> = vars
        .iter()
        .filter(|(k, _)| !valid_name(k))
        .map(|(k, _)| k.clone())
        .collect();
    if !invalid.is_empty() {
        if !args.skip_invalid {
            return Err(Error::Refused(format!(
                "not valid environment variable names: {} (use --skip-invalid to leave them out)",
                invalid.join(", ")
            )));
        }
        warn(&format!(
            "left out keys that are not valid variable names: {}",
            invalid.join(", ")
        ));
        vars.retain(|(k, _)| valid_name(k));
    }
    let mut cmd = std::process::Command::new(&args.command[0]);
    cmd.args(&args.command[1..]);
    if args.pristine {
        cmd.env_clear();
    }
    without_key_sources(&mut cmd, env, args.keep_key_env);
    for (k, v) in &vars {
        cmd.env(k, v.as_str());
    }
    // Replace coffer with the command: its stdio, signals and exit code are its own,
    // and the values never appear in an argument list.
    use std::os::unix::process::CommandExt;
    let err = cmd.exec();
    Err(Error::Exec(format!(
        "cannot run {:?}: {err}",
        args.command[0]
    )))
}

pub fn exec_file(args: ExecFileArgs, env: &Env) -> Result<i32> {
    let format = args
        .input_type
        .map_or_else(|| Format::from_path(&args.file), Into::into);
    let bytes = std::fs::read(&args.file).map_err(|e| Error::io(&args.file, e))?;
    let plaintext = super::open_file(&args.file, format, bytes, &env.keyring()?, false)?
        .0
        .into_plaintext()?;
    let dir = coffer::fsutil::PrivateDir::new("coffer-exec-")?;
    let base = args.file.file_name().map_or_else(
        || "secret".into(),
        |n| n.to_string_lossy().trim_end_matches(".enc").to_string(),
    );
    let path = dir.path().join(base);
    coffer::fsutil::write_new(&path, &plaintext, 0o600)?;
    drop(plaintext);
    let argv: Vec<String> = args
        .command
        .iter()
        .map(|a| a.replace("{}", &path.to_string_lossy()))
        .collect();
    let mut cmd = std::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    without_key_sources(&mut cmd, env, args.keep_key_env);
    let status = wait_for(&mut cmd, &argv[0])?;
    drop(dir);
    use std::os::unix::process::ExitStatusExt;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// Run `cmd` (named `what` in errors) to its end. A terminal's Ctrl-C reaches the child
/// by itself; a SIGTERM sent to coffer alone is passed on. Either way coffer waits, so
/// that the caller removes the plaintext the command was given after it.
pub(super) fn wait_for(
    cmd: &mut std::process::Command,
    what: &str,
) -> Result<std::process::ExitStatus> {
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::Exec(format!("cannot run {what:?}: {e}")))?;
    let pid = rustix::process::Pid::from_child(&child);
    super::on_signal(move || {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    });
    child
        .wait()
        .map_err(|e| Error::Exec(format!("waiting for {what:?}: {e}")))
}

pub fn render(args: RenderArgs, config: Option<&std::path::Path>, env: &Env) -> Result<()> {
    if args.output.is_some() && args.templates.len() != 1 {
        return Err(Error::Usage("-o takes one template".into()));
    }
    let keyring = env.keyring()?;
    let mut sources = Sources::new(&keyring, env.vars());
    let mut failures: Vec<(String, Failure)> = Vec::new();
    let mut parsed = Vec::new();
    for t in &args.templates {
        let name = t.display().to_string();
        let text = std::fs::read_to_string(t).map_err(|e| Error::io(t, e))?;
        match render::parse(&text) {
            Ok(tpl) => parsed.push((name, tpl)),
            Err(fs) => failures.extend(fs.into_iter().map(|f| (name.clone(), f))),
        }
    }
    // Each distinct reference is resolved once per run; the AWS ones concurrently.
    let mut values: HashMap<String, std::result::Result<Zeroizing<String>, Unresolved>> =
        HashMap::new();
    let mut aws = Vec::new();
    let mut queued = std::collections::HashSet::new();
    for (_, tpl) in &parsed {
        for r in &tpl.refs {
            if values.contains_key(&r.uri) || queued.contains(&r.uri) {
                continue;
            }
            match coffer::aws::read::AwsRef::parse(&r.uri) {
                Some(Ok(a)) => {
                    queued.insert(r.uri.clone());
                    aws.push((r.uri.clone(), a))
                }
                Some(Err(why)) => {
                    values.insert(r.uri.clone(), Err(why.into()));
                }
                None => {
                    let v = sources.resolve(&r.uri);
                    values.insert(r.uri.clone(), v);
                }
            }
        }
    }
    // Each reference is read in its own account: the default one, or its push target's.
    let mut by_target: std::collections::BTreeMap<Option<String>, Vec<_>> = Default::default();
    for (uri, r) in aws {
        by_target
            .entry(r.target().map(str::to_string))
            .or_default()
            .push((uri, r));
    }
    let mut targets = None;
    for (target, refs) in by_target {
        let scope = match &target {
            None => coffer::aws::Scope::default(),
            Some(name) => {
                if targets.is_none() {
                    targets = Some(super::aws::push_targets(
                        config,
                        "a ?target= reference needs a .coffer.yaml with a push: list here or above",
                        "has no push: targets for ?target= references",
                    )?);
                }
                let (file, config) = targets.as_ref().expect("loaded above");
                match config.push.iter().find(|t| &t.name == name) {
                    Some(t) => super::aws::target_scope(t),
                    None => {
                        for (uri, _) in refs {
                            values.insert(
                                uri,
                                Err(Unresolved::NoTarget {
                                    name: name.clone(),
                                    file: file.display().to_string(),
                                }),
                            );
                        }
                        continue;
                    }
                }
            }
        };
        env.aws().check(&scope)?;
        values.extend(
            coffer::aws::read::fetch_all(&refs, env.aws(), &scope)?
                .into_iter()
                .map(|(uri, v)| (uri, v.map_err(Unresolved::from))),
        );
    }
    let mut outputs = Vec::new();
    for (name, tpl) in &parsed {
        match tpl.fill(&values) {
            Ok(out) => outputs.push(out),
            Err(fs) => failures.extend(fs.into_iter().map(|f| (name.clone(), f))),
        }
    }
    if !failures.is_empty() {
        for (file, f) in &failures {
            super::say(&format!("{file}:{}: {}: {}", f.line, f.uri, f.reason));
        }
        return Err(Error::Refused(format!(
            "{} reference(s) failed; nothing was written",
            failures.len()
        )));
    }
    if args.check {
        return Ok(());
    }
    match &args.output {
        Some(out) => coffer::fsutil::write_atomic(
            out,
            outputs[0].as_bytes(),
            0o600,
            Some(0o600),
            coffer::fsutil::Target::Output,
        ),
        None => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            for o in &outputs {
                stdout
                    .write_all(o.as_bytes())
                    .map_err(|e| Error::io("<stdout>", e))?;
            }
            Ok(())
        }
    }
}

/// A file's values as (variable name, value) pairs.
/// The file's values as environment variables. Two keys that flatten to one name
/// (`a_b`, `a.b`, `A_B`) are an error naming both, or with `skip_colliding` are both left
/// out with a warning: the last one silently winning is never right.
fn variables(
    opened: &sops::Opened,
    skip_colliding: bool,
    case: Case,
) -> Result<Vec<(String, Zeroizing<String>)>> {
    let root = match opened.doc.docs.first() {
        Some(d) => &d.root,
        None => return Ok(Vec::new()),
    };
    let verbatim = match case {
        Case::Default => opened.format == Format::Dotenv,
        Case::Keep => true,
        Case::Upper => false,
    };
    let leaves = opened.value(root)?.leaves();
    let mut out: Vec<(String, Zeroizing<String>, Vec<String>)> = Vec::new();
    let mut colliding = Vec::new();
    for (path, v) in leaves {
        let name = coffer::tree::variable_name(&path, verbatim);
        if let Some((_, _, first)) = out.iter().find(|(n, _, _)| *n == name) {
            colliding.push((name.clone(), first.join("."), path.join(".")));
            continue;
        }
        out.push((name, v, path));
    }
    if let Some((name, a, b)) = colliding.first() {
        if !skip_colliding {
            return Err(Error::Refused(format!(
                "{}: the keys {a} and {b} are both the variable {name} (--skip-invalid leaves such keys out)",
                opened.file
            )));
        }
        let names: Vec<&str> = colliding.iter().map(|(n, _, _)| n.as_str()).collect();
        warn(&format!(
            "{}: left out variables more than one key would set: {}",
            opened.file,
            names.join(", ")
        ));
        out.retain(|(n, _, _)| !names.contains(&n.as_str()));
    }
    Ok(out.into_iter().map(|(n, v, _)| (n, v)).collect())
}

/// How keys become variable names.
#[derive(Clone, Copy)]
enum Case {
    /// Upper case, but dotenv keys as they are.
    Default,
    Keep,
    Upper,
}

/// `export NAME='value'` lines for a shell to `eval`.
pub(super) fn export_lines(opened: &sops::Opened) -> Result<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(String::new());
    for (k, v) in variables(opened, false, Case::Default)? {
        if !valid_name(&k) {
            return Err(Error::Refused(format!(
                "{k:?} is not a valid environment variable name"
            )));
        }
        // A shell cuts a value at a NUL: the variable would hold less than the file.
        if v.contains('\0') {
            return Err(Error::Refused(format!(
                "{}: the value of {k} holds a NUL byte, which a shell variable cannot hold",
                opened.file
            )));
        }
        out.push_str(&format!("export {k}='{}'\n", v.replace('\'', "'\\''")));
    }
    Ok(Zeroizing::new(std::mem::take(&mut *out).into_bytes()))
}
