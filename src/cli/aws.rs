//! `push` and `migrate`: the plan/apply commands that write to AWS.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use secrecy::SecretBox;

use super::command_error;
use super::{Env, FormatArg};
use crate::aws::migrate::{self, Move};
use crate::aws::push::{
    self, Action, Deletion, Desired, Layout, Outcome, Plan, Pusher, Service, Target,
};
use crate::aws::{Connection, Payload};
use crate::format::json::json_string;
use crate::format::Format;
use crate::tree::{variable_name, Value};
use crate::{sops, Error, Result};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ServiceArg {
    /// AWS Secrets Manager
    Secretsmanager,
    /// AWS Systems Manager Parameter Store (SecureString parameters)
    Ssm,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum EmitArg {
    /// The `secrets` list of an ECS container definition: name and valueFrom ARN
    Ecs,
}

/// Options of everything that creates secrets.
#[derive(Args, Debug)]
pub struct CreateOptions {
    /// KMS key for new secrets and parameters (default: the account's AWS managed key)
    #[arg(long, value_name = "KEY")]
    pub kms_key_id: Option<String>,
    /// Tag for new secrets and parameters, besides coffer's own (repeatable)
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
    /// Description for new secrets and parameters
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// AWS region (default: AWS_REGION, then the profile's)
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Print the plan and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// The encrypted file whose values to push
    pub file: PathBuf,
    /// Where the values go
    #[arg(long, value_enum, value_name = "SERVICE")]
    pub to: ServiceArg,
    /// One secret with this name holding the whole file as a JSON object (Secrets Manager)
    #[arg(long, value_name = "NAME", conflicts_with_all = ["each", "path"])]
    pub name: Option<String>,
    /// One secret per value, named PREFIX + its key path, nested keys joined with / (Secrets Manager)
    #[arg(long, requires = "prefix")]
    pub each: bool,
    /// Name prefix for --each, e.g. prod/web/
    #[arg(long, value_name = "PREFIX", requires = "each")]
    pub prefix: Option<String>,
    /// Parameter path: one SecureString per value, named PATH + its key path (Parameter Store)
    #[arg(long, value_name = "PATH", conflicts_with = "each")]
    pub path: Option<String>,
    /// Also delete what coffer created from this file earlier that the file no longer has
    #[arg(long)]
    pub prune: bool,
    /// With --prune: delete secrets at once instead of after a recovery window
    #[arg(long, requires = "prune")]
    pub force_delete: bool,
    /// With --prune: days a deleted secret stays recoverable (7 to 30)
    #[arg(long, value_name = "DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(i64).range(7..=30), conflicts_with = "force_delete")]
    pub recovery_window: i64,
    /// Print what services read, on stdout, after pushing (the plan goes to stderr then)
    #[arg(long, value_enum, value_name = "FORMAT", conflicts_with = "dry_run")]
    pub emit: Option<EmitArg>,
    /// The coffer:source tag (default: the file's path in its git repository)
    #[arg(long, value_name = "NAME")]
    pub source: Option<String>,
    /// Format of the file (default: from its extension)
    #[arg(long, value_enum, value_name = "TYPE")]
    pub input_type: Option<FormatArg>,
    #[command(flatten)]
    pub create: CreateOptions,
}

#[derive(Subcommand, Debug)]
pub enum MigrateCommand {
    /// Copy objects of an S3 bucket into Secrets Manager, one secret per object
    #[command(
        long_about = "Copy objects of an S3 bucket into Secrets Manager, one secret per object.\n\n\
            s3://BUCKET/KEY becomes the secret BUCKET/KEY (or NAME-PREFIX + KEY). Each secret is \
            read back and compared with its object. Nothing is ever deleted from S3: remove the \
            objects yourself once every reader uses the secrets (see `coffer migrate refs`).",
        after_help = "Examples:\n  coffer migrate s3 --bucket swt-secrets --prefix prod/ --to secretsmanager --dry-run\n  coffer migrate s3 --bucket swt-secrets --prefix prod/ --to secretsmanager --kms-key-id alias/app"
    )]
    S3(MigrateS3Args),
    /// Point {{ secret s3://… }} references of templates at the migrated secrets
    #[command(
        long_about = "Point {{ secret s3://BUCKET/KEY }} references of templates at the migrated \
            secrets: awsSecret://BUCKET/KEY (or NAME-PREFIX + KEY).\n\n\
            Only references whose secret exists change; each file is rewritten atomically, and \
            every reference changed or left is listed.",
        after_help = "Examples:\n  coffer migrate refs deploy/*.tmpl --from s3 --to awsSecret --dry-run\n  coffer migrate refs deploy/app.tmpl --from s3 --to awsSecret --name-prefix app/"
    )]
    Refs(MigrateRefsArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FromArg {
    S3,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ToSecretsArg {
    Secretsmanager,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ToRefArg {
    #[value(name = "awsSecret")]
    AwsSecret,
}

#[derive(Args, Debug)]
pub struct MigrateS3Args {
    /// The bucket to read from (never written or deleted from)
    #[arg(long, value_name = "BUCKET")]
    pub bucket: String,
    /// Only objects whose key starts with this
    #[arg(long, value_name = "PREFIX", default_value = "")]
    pub prefix: String,
    /// Where the secrets go
    #[arg(long, value_enum, value_name = "SERVICE")]
    pub to: ToSecretsArg,
    /// Secret names are NAME-PREFIX + KEY instead of BUCKET/KEY
    #[arg(long, value_name = "NAME-PREFIX")]
    pub name_prefix: Option<String>,
    #[command(flatten)]
    pub create: CreateOptions,
}

#[derive(Args, Debug)]
pub struct MigrateRefsArgs {
    /// Templates to change
    #[arg(required = true)]
    pub templates: Vec<PathBuf>,
    /// Scheme of the references to move
    #[arg(long, value_enum, value_name = "SCHEME")]
    pub from: FromArg,
    /// Scheme they become
    #[arg(long, value_enum, value_name = "SCHEME")]
    pub to: ToRefArg,
    /// Secret names are NAME-PREFIX + KEY instead of BUCKET/KEY (as given to `migrate s3`)
    #[arg(long, value_name = "NAME-PREFIX")]
    pub name_prefix: Option<String>,
    /// AWS region (default: AWS_REGION, then the profile's)
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Print what would change and write nothing
    #[arg(long)]
    pub dry_run: bool,
}

fn parse_tag(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err("expected KEY=VALUE".into()),
    }
}

fn connection(region: &Option<String>, env: &Env) -> Connection {
    Connection {
        region: region.clone(),
        profile: env.aws_profile().map(str::to_string),
    }
}

fn target(service: Service, prefix: String, create: &CreateOptions) -> Target {
    Target {
        service,
        prefix,
        kms_key_id: create.kms_key_id.clone(),
        description: create.description.clone(),
        tags: create.tags.clone(),
    }
}

/// The file's path relative to the root of its git repository, `/`-separated: what
/// `coffer:source` says, the same from every clone and working directory.
fn source_name(file: &Path) -> String {
    let in_repo = || -> Option<String> {
        let abs = std::fs::canonicalize(file).ok()?;
        let repo = git2::Repository::discover(abs.parent()?).ok()?;
        let root = std::fs::canonicalize(repo.workdir()?).ok()?;
        let rel = abs.strip_prefix(root).ok()?;
        Some(
            rel.components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/"),
        )
    };
    in_repo().unwrap_or_else(|| file.display().to_string())
}

pub fn push(args: PushArgs, env: &Env) -> Result<()> {
    let (service, layout) = match (args.to, &args.name, &args.prefix, &args.path) {
        (ServiceArg::Secretsmanager, Some(name), None, None) => (
            Service::SecretsManager,
            Layout::Whole { name: name.clone() },
        ),
        (ServiceArg::Secretsmanager, None, Some(prefix), None) => (
            Service::SecretsManager,
            Layout::Each {
                prefix: prefix.clone(),
            },
        ),
        (ServiceArg::Secretsmanager, ..) => {
            return Err(Error::Usage(
                "--to secretsmanager needs --name NAME (one secret) or --prefix PREFIX --each"
                    .into(),
            ))
        }
        (ServiceArg::Ssm, None, None, Some(path)) => {
            let mut prefix = path.clone();
            if !prefix.ends_with('/') {
                prefix.push('/');
            }
            (Service::Ssm, Layout::Each { prefix })
        }
        (ServiceArg::Ssm, ..) => {
            return Err(Error::Usage(
                "--to ssm needs --path /PATH/ (and no --name or --each)".into(),
            ))
        }
    };
    if args.prune && matches!(layout, Layout::Whole { .. }) {
        return Err(Error::Usage(
            "--prune needs --each: one secret holding the whole file has no keys to remove".into(),
        ));
    }

    let name = args.file.display().to_string();
    let format = args
        .input_type
        .map_or_else(|| Format::from_path(&args.file), Into::into);
    let bytes = std::fs::read(&args.file).map_err(|e| Error::io(&args.file, e))?;
    let opened = sops::open(&name, format, bytes, &env.keyring()?, false)?;
    let root = match opened.doc.docs.as_slice() {
        [d] => opened.value(&d.root)?,
        _ => {
            return Err(Error::Unsupported {
                file: name,
                what: "a file of several YAML documents cannot be pushed".into(),
            })
        }
    };
    let raw = if opened.is_whole_file() {
        Some(Payload::from_bytes(opened.plaintext()?.to_vec()))
    } else {
        None
    };
    let source = args
        .source
        .clone()
        .unwrap_or_else(|| source_name(&args.file));
    let desired = push::desired(&name, &root, raw.clone(), &layout, service, &source)?;
    let prefix = match &layout {
        Layout::Whole { name } => name.clone(),
        Layout::Each { prefix } => prefix.clone(),
    };
    let token_key = SecretBox::new(Box::new(*opened.key.expose()));
    let pusher = Pusher::connect(
        &connection(&args.create.region, env),
        target(service, prefix, &args.create),
        token_key,
    );
    let plan = pusher.plan(desired, args.prune.then_some(source.as_str()))?;

    // stdout carries --emit's data when asked for; the plan then goes to stderr.
    let mut plan_out: Box<dyn Write> = if args.emit.is_some() {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    print_plan(&mut plan_out, &plan)?;
    if args.create.dry_run {
        return Ok(());
    }
    let deletion = if args.force_delete {
        Deletion::Force
    } else {
        Deletion::Recoverable(args.recovery_window)
    };
    let outcomes = apply(&pusher, &plan, deletion);
    finish(&plan, &outcomes)?;

    if let Some(EmitArg::Ecs) = args.emit {
        if raw.is_some() {
            return Err(Error::Usage(format!(
                "{name}: --emit ecs needs keys; a binary file has none"
            )));
        }
        let mut arns: HashMap<String, String> = plan
            .changes
            .iter()
            .filter_map(|c| c.arn.clone().map(|a| (c.name.clone(), a)))
            .collect();
        arns.extend(
            outcomes
                .iter()
                .filter_map(|o| o.result.as_ref().ok()?.clone().map(|a| (o.name.clone(), a))),
        );
        let verbatim = opened.format == Format::Dotenv;
        let wanted = ecs_entries(&root, &plan, &layout, verbatim);
        if wanted.iter().any(|(_, name, _)| !arns.contains_key(name)) {
            arns.extend(pusher.arns()?);
        }
        let mut out = String::from("[");
        for (i, (var, name, json_key)) in wanted.iter().enumerate() {
            let arn = arns.get(name).ok_or_else(|| {
                Error::Aws(format!(
                    "{name}: AWS did not say its ARN; run the push again"
                ))
            })?;
            let value_from = match json_key {
                Some(k) => format!("{arn}:{k}::"),
                None => arn.clone(),
            };
            out.push_str(if i == 0 { "\n" } else { ",\n" });
            out.push_str(&format!(
                "  {{\"name\": {}, \"valueFrom\": {}}}",
                json_string(var),
                json_string(&value_from)
            ));
        }
        out.push_str("\n]\n");
        std::io::stdout()
            .write_all(out.as_bytes())
            .map_err(|e| Error::io("<stdout>", e))?;
    }
    Ok(())
}

/// (variable name, secret or parameter name, JSON key inside the secret) for each value.
fn ecs_entries(
    root: &Value,
    plan: &Plan,
    layout: &Layout,
    verbatim: bool,
) -> Vec<(String, String, Option<String>)> {
    match layout {
        // ECS reads one top-level key of a JSON secret: `arn:json-key:version-stage:version-id`.
        Layout::Whole { name } => match root {
            Value::Map(entries) => entries
                .iter()
                .map(|(k, _)| {
                    (
                        variable_name(std::slice::from_ref(k), verbatim),
                        name.clone(),
                        Some(k.clone()),
                    )
                })
                .collect(),
            _ => Vec::new(),
        },
        Layout::Each { .. } => plan
            .desired()
            .iter()
            .map(|d| (variable_name(&d.key_path, verbatim), d.name.clone(), None))
            .collect(),
    }
}

fn print_plan(out: &mut dyn Write, plan: &Plan) -> Result<()> {
    let io = |e| Error::io("<stdout>", e);
    // Names come from the file's keys: no control bytes reach the terminal.
    for c in &plan.changes {
        writeln!(out, "{}", command_error::one_line(&c.to_string())).map_err(io)?;
    }
    writeln!(out, "{}", plan.summary()).map_err(io)?;
    out.flush().map_err(io)
}

/// Apply with a progress bar on a terminal when there is more than a handful to do, one
/// line per change otherwise.
fn apply(pusher: &Pusher, plan: &Plan, deletion: Deletion) -> Vec<Outcome> {
    let pending = plan.pending();
    // indicatif draws only on a terminal that can show it (not TERM=dumb, not a pipe).
    let bar = Some(indicatif::ProgressBar::new(pending as u64))
        .filter(|bar| pending > 5 && !bar.is_hidden());
    if let Some(bar) = &bar {
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
                .expect("the template is valid"),
        );
    }
    let outcomes = pusher.apply(plan, deletion, |o| match &bar {
        Some(bar) => {
            if o.result.is_err() {
                bar.println(command_error::one_line(&o.to_string()));
            }
            bar.inc(1);
        }
        None => eprintln!("{}", command_error::one_line(&o.to_string())),
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    outcomes
}

/// Say what was applied; a partial apply is an error that lists what was not.
fn finish(plan: &Plan, outcomes: &[Outcome]) -> Result<()> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.result.is_err()).collect();
    let count = |a: Action| {
        outcomes
            .iter()
            .filter(|o| o.action == a && o.result.is_ok())
            .count()
    };
    eprintln!(
        "Applied: {} created, {} updated, {} deleted, {} unchanged.",
        count(Action::Create) + count(Action::Restore),
        count(Action::Update),
        count(Action::Delete),
        plan.count(Action::Unchanged)
    );
    if failed.is_empty() {
        return Ok(());
    }
    eprintln!("Not applied:");
    for o in &failed {
        eprintln!("  {}", command_error::one_line(&o.to_string()));
    }
    Err(Error::PartlyApplied {
        failed: failed.len(),
        total: outcomes.len(),
    })
}

pub fn migrate(cmd: MigrateCommand, env: &Env) -> Result<()> {
    match cmd {
        MigrateCommand::S3(a) => migrate_s3(a, env),
        MigrateCommand::Refs(a) => migrate_refs(a, env),
    }
}

fn migrate_s3(args: MigrateS3Args, env: &Env) -> Result<()> {
    let conn = connection(&args.create.region, env);
    let objects = migrate::read_objects(&conn, &args.bucket, &args.prefix)?;
    if objects.is_empty() {
        eprintln!(
            "coffer: no objects under s3://{}/{}",
            args.bucket, args.prefix
        );
        return Ok(());
    }
    let name_prefix = args.name_prefix.as_deref();
    // (source, target, status) rows; a failed row is final.
    let mut rows: Vec<(String, String, std::result::Result<&'static str, String>)> = Vec::new();
    let mut desired = Vec::new();
    for (key, got) in objects {
        let source = format!("s3://{}/{key}", args.bucket);
        let name = migrate::secret_name(&args.bucket, &key, name_prefix);
        let status = match (got, Service::SecretsManager.check_name(&name)) {
            (Err(why), _) => Err(format!("cannot read the object: {why}")),
            (Ok(_), Some(why)) => Err(format!("not a valid secret name: {why}")),
            (Ok(value), None) => {
                desired.push(Desired {
                    name: name.clone(),
                    key_path: Vec::new(),
                    value,
                    source: source.clone(),
                });
                Ok("")
            }
        };
        rows.push((source, name, status));
    }
    let prefix = migrate::secret_name(&args.bucket, &args.prefix, name_prefix);
    // No secret keys these tokens: a public hash of a value would let anyone who can list
    // versions test guesses. Per-run tokens still make a retried call idempotent.
    let pusher = Pusher::connect(
        &conn,
        target(Service::SecretsManager, prefix, &args.create),
        SecretBox::new(Box::new(*crate::cipher::DataKey::generate().expose())),
    );
    let plan = pusher.plan(desired, None)?;
    print_plan(&mut std::io::stderr(), &plan)?;
    if args.create.dry_run {
        return Ok(());
    }
    let outcomes = apply(&pusher, &plan, Deletion::Force);
    let applied: HashMap<&str, &Outcome> = outcomes.iter().map(|o| (o.name.as_str(), o)).collect();
    let names: Vec<String> = plan
        .changes
        .iter()
        .filter(|c| {
            applied
                .get(c.name.as_str())
                .is_none_or(|o| o.result.is_ok())
        })
        .map(|c| c.name.clone())
        .collect();
    let read_back = pusher.read_back(names)?;
    let wanted: HashMap<&str, &Payload> = plan
        .desired()
        .iter()
        .map(|d| (d.name.as_str(), &d.value))
        .collect();
    for (_, name, status) in rows.iter_mut() {
        if status.is_err() {
            continue;
        }
        let done = match applied.get(name.as_str()) {
            Some(o) => match &o.result {
                Err(why) => {
                    *status = Err(why.clone());
                    continue;
                }
                Ok(_) if o.action == Action::Update => "updated",
                Ok(_) => "created",
            },
            None => "already there",
        };
        *status = match (read_back.get(name.as_str()), wanted.get(name.as_str())) {
            (Some(got), Some(want)) if got == *want => Ok(done),
            _ => Err("read back a different value".into()),
        };
    }
    print_table(&rows);
    let failed = rows.iter().filter(|r| r.2.is_err()).count();
    if failed > 0 {
        return Err(Error::PartlyApplied {
            failed,
            total: rows.len(),
        });
    }
    Ok(())
}

/// A line of a report on stdout, with what came from files or AWS made safe to show.
fn report(line: &str) {
    println!("{}", command_error::one_line(line));
}

fn print_table(rows: &[(String, String, std::result::Result<&'static str, String>)]) {
    let w1 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(6);
    let w2 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(6);
    println!("{:w1$}  {:w2$}  STATUS", "SOURCE", "SECRET");
    for (source, target, status) in rows {
        let status = match status {
            Ok(s) => format!("{s}, verified"),
            Err(why) => format!("FAILED: {why}"),
        };
        // S3 keys and AWS's words come from elsewhere: nothing raw to the terminal.
        let line = format!("{source:w1$}  {target:w2$}  {status}");
        println!("{}", command_error::one_line(&line));
    }
}

fn migrate_refs(args: MigrateRefsArgs, env: &Env) -> Result<()> {
    let (FromArg::S3, ToRefArg::AwsSecret) = (args.from, args.to);
    let name_prefix = args.name_prefix.as_deref();
    let mut templates = Vec::new();
    for t in &args.templates {
        let text = std::fs::read_to_string(t).map_err(|e| Error::io(t, e))?;
        // The first failure, with its line (render lists them all).
        let tpl = crate::render::parse(&text).map_err(|fs| Error::Syntax {
            file: t.display().to_string(),
            error: fs.first().map_or_else(
                || crate::format::SyntaxError::from("not a template".to_string()),
                |f| crate::format::SyntaxError::line(f.line, &f.reason),
            ),
        })?;
        templates.push((t, text, tpl));
    }
    let mut names: Vec<String> = templates
        .iter()
        .flat_map(|(_, _, tpl)| migrate::s3_moves(&tpl.refs, name_prefix))
        .map(|m| m.target)
        .collect();
    names.sort();
    names.dedup();
    let exists = migrate::secrets_exist(&connection(&args.region, env), names);
    let mut unknown = 0;
    for (path, text, tpl) in &templates {
        let file = path.display();
        let moves = migrate::s3_moves(&tpl.refs, name_prefix);
        let mut chosen: Vec<&Move> = Vec::new();
        for m in &moves {
            let line = m.reference.line;
            match exists.get(&m.target) {
                Some(Ok(true)) => {
                    report(&format!(
                        "changed {file}:{line}: {} -> awsSecret://{}",
                        m.reference.uri, m.target
                    ));
                    chosen.push(m);
                }
                Some(Ok(false)) => report(&format!(
                    "left    {file}:{line}: {} (no secret {})",
                    m.reference.uri, m.target
                )),
                Some(Err(why)) => {
                    unknown += 1;
                    report(&format!(
                        "left    {file}:{line}: {} ({}: {why})",
                        m.reference.uri, m.target
                    ));
                }
                None => unknown += 1,
            }
        }
        if !chosen.is_empty() && !args.dry_run {
            let new = migrate::rewrite(text, &chosen);
            crate::fsutil::write_atomic(
                path,
                new.as_bytes(),
                0o644,
                None,
                crate::fsutil::Target::InPlace,
            )?;
        }
    }
    if unknown > 0 {
        return Err(Error::Aws(format!(
            "{unknown} reference(s) left because AWS could not say whether their secret exists"
        )));
    }
    Ok(())
}
