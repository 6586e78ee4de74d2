//! `push` and `migrate`: the plan/apply commands that write to AWS.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};
use secrecy::SecretBox;

use super::command_error;
use super::{Env, FormatArg};
use coffer::aws::migrate::{self, Move};
use coffer::aws::push::{
    self, Action, Deletion, Desired, Layout, Outcome, Plan, Pusher, Service, Settings, Target,
};
use coffer::aws::{Payload, Scope};
use coffer::format::json::json_string;
use coffer::format::Format;
use coffer::git::workspace::repo_relative;
use coffer::tree::{variable_name, Value};
use coffer::{Error, Result};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ServiceArg {
    /// AWS Secrets Manager
    Secretsmanager,
    /// AWS Systems Manager Parameter Store (SecureString parameters)
    Ssm,
}

impl ServiceArg {
    fn service(self) -> Service {
        match self {
            ServiceArg::Secretsmanager => Service::SecretsManager,
            ServiceArg::Ssm => Service::Ssm,
        }
    }
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
    /// The encrypted file whose values to push (without it: the `push:` targets of .coffer.yaml)
    pub file: Option<PathBuf>,
    /// Where the file's values go
    #[arg(long, value_enum, value_name = "SERVICE", requires = "file")]
    pub to: Option<ServiceArg>,
    /// One secret with this name holding the whole file as a JSON object (Secrets Manager)
    #[arg(long, value_name = "NAME", conflicts_with_all = ["each", "path"], requires = "file")]
    pub name: Option<String>,
    /// One secret per value, named PREFIX + its key path, nested keys joined with / (Secrets Manager)
    #[arg(long, requires = "prefix")]
    pub each: bool,
    /// Name prefix for --each, e.g. prod/web/
    #[arg(long, value_name = "PREFIX", requires_all = ["each", "file"])]
    pub prefix: Option<String>,
    /// Parameter path: one SecureString per value, named PATH + its key path (Parameter Store)
    #[arg(long, value_name = "PATH", conflicts_with = "each", requires = "file")]
    pub path: Option<String>,
    /// Push only this target of the config's `push:` list (repeatable)
    #[arg(long = "target", value_name = "NAME", conflicts_with = "file")]
    pub targets: Vec<String>,
    /// Print the plan, change nothing, and exit 10 when anything would change (0 when in step)
    #[arg(long, conflicts_with_all = ["emit"])]
    pub check: bool,
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
    #[arg(long, value_name = "NAME", requires = "file")]
    pub source: Option<String>,
    /// Format of the file (default: from its extension)
    #[arg(long, value_enum, value_name = "TYPE")]
    pub input_type: Option<FormatArg>,
    #[command(flatten)]
    pub create: CreateOptions,
}

#[derive(Subcommand, Debug)]
pub enum MigrateCommand {
    /// Copy objects of an S3 bucket into Secrets Manager or Parameter Store, one secret per object
    #[command(
        long_about = "Copy objects of an S3 bucket into Secrets Manager or Parameter Store, one \
            secret per object.\n\n\
            s3://BUCKET/KEY becomes the secret BUCKET/KEY (or NAME-PREFIX + KEY). With \
            --target S3-PREFIX=TARGET, the objects under S3-PREFIX go into that push target of \
            .coffer.yaml instead: its service, account (role, profile) and region, named under \
            its prefix; one command fills every account. Each secret is read back and compared \
            with its object. Nothing is ever deleted from S3: remove the objects yourself once \
            every reader uses the secrets (see `coffer migrate refs`).",
        after_help = "Examples:\n  coffer migrate s3 --bucket swt-secrets --prefix prod/ --to secretsmanager --dry-run\n  coffer migrate s3 --bucket swt-secrets --prefix prod/ --to ssm --kms-key-id alias/app\n  coffer migrate s3 --bucket swt-secrets --target prod/=prod --target staging/=staging --dry-run"
    )]
    S3(MigrateS3Args),
    /// Point {{ secret s3://… }} references of templates at the migrated secrets
    #[command(
        long_about = "Point {{ secret s3://BUCKET/KEY }} references of templates at the migrated \
            secrets: awsSecret://BUCKET/KEY (or NAME-PREFIX + KEY), or ssm:///BUCKET/KEY. With \
            --target S3-PREFIX=TARGET (as given to `migrate s3`), a reference becomes the \
            secret in that push target's account, named in the URI (awsSecret://NAME?target=T), \
            so `render` reads each from its own account.\n\n\
            Only references whose secret exists change; each file is rewritten atomically, and \
            every reference changed or left is listed.",
        after_help = "Examples:\n  coffer migrate refs deploy/*.tmpl --from s3 --to awsSecret --dry-run\n  coffer migrate refs deploy/app.tmpl --from s3 --to awsSecret --name-prefix app/\n  coffer migrate refs deploy/*.tmpl --from s3 --target prod/=prod --target staging/=staging"
    )]
    Refs(MigrateRefsArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FromArg {
    S3,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ToRefArg {
    #[value(name = "awsSecret")]
    AwsSecret,
    Ssm,
}

#[derive(Args, Debug)]
pub struct MigrateS3Args {
    /// The bucket to read from (never written or deleted from)
    #[arg(long, value_name = "BUCKET")]
    pub bucket: String,
    /// Only objects whose key starts with this
    #[arg(
        long,
        value_name = "PREFIX",
        default_value = "",
        conflicts_with = "targets"
    )]
    pub prefix: String,
    /// Where the secrets go (without --target)
    #[arg(
        long,
        value_enum,
        value_name = "SERVICE",
        required_unless_present = "targets",
        conflicts_with = "targets"
    )]
    pub to: Option<ServiceArg>,
    #[command(flatten)]
    pub routes: Routes,
    #[command(flatten)]
    pub create: CreateOptions,
}

/// Where a migration's secrets are named: by bucket (or a name prefix) in one account, or
/// in push targets' accounts.
#[derive(Args, Debug)]
pub struct Routes {
    /// Objects under S3-PREFIX go to (and references under it name) the push target
    /// TARGET of .coffer.yaml: its service, account and region (repeatable)
    #[arg(long = "target", value_name = "S3-PREFIX=TARGET", value_parser = migrate::parse_route)]
    pub targets: Vec<(String, String)>,
    /// Secret names are NAME-PREFIX + KEY instead of BUCKET/KEY (the same for `migrate s3`
    /// and `migrate refs`)
    #[arg(long, value_name = "NAME-PREFIX", conflicts_with = "targets")]
    pub name_prefix: Option<String>,
}

#[derive(Args, Debug)]
pub struct MigrateRefsArgs {
    /// Templates to change
    #[arg(required = true)]
    pub templates: Vec<PathBuf>,
    /// Scheme of the references to move
    #[arg(long, value_enum, value_name = "SCHEME")]
    pub from: FromArg,
    /// Scheme they become (without --target)
    #[arg(
        long,
        value_enum,
        value_name = "SCHEME",
        required_unless_present = "targets",
        conflicts_with = "targets"
    )]
    pub to: Option<ToRefArg>,
    #[command(flatten)]
    pub routes: Routes,
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

fn settings(create: &CreateOptions) -> Result<Settings> {
    let settings = Settings {
        kms_key_id: create.kms_key_id.clone(),
        description: create.description.clone(),
        tags: create.tags.clone(),
    };
    match settings.check() {
        Some(why) => Err(Error::Usage(format!("--tag: {why}"))),
        None => Ok(settings),
    }
}

fn scope(region: &Option<String>) -> Scope {
    Scope {
        region: region.clone(),
        ..Scope::default()
    }
}

/// The file's path relative to the root of its git repository, `/`-separated: what
/// `coffer:source` says, the same from every clone and working directory.
fn source_name(file: &Path) -> String {
    repo_relative(file).unwrap_or_else(|| file.display().to_string())
}

/// One file's contribution to a push: its secrets, and what `--emit ecs` says of them.
struct FileSecrets {
    desired: Vec<Desired>,
    /// (variable name, secret or parameter name, JSON key inside the secret).
    ecs: Option<Vec<(String, String, Option<String>)>>,
}

/// Open `file` and say which secrets it asks for.
fn file_secrets(
    file: &Path,
    format: Format,
    keyring: &coffer::keys::Keyring,
    layout: &Layout,
    service: Service,
    source: &str,
) -> Result<FileSecrets> {
    let name = file.display().to_string();
    let bytes = std::fs::read(file).map_err(|e| Error::io(file, e))?;
    let (opened, covered) = super::open_file(file, format, bytes, keyring, false)?;
    if covered.is_some_and(|c| !c.committed_key) {
        super::warn(&format!(
            "{name}: no encrypted version of it is staged or committed, so the request tokens of this push come from a data key made for it (a retry after it may write a second version; `git add` the file first to avoid that)"
        ));
    }
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
    let token_key = Arc::new(SecretBox::new(Box::new(*opened.key.expose())));
    let desired = push::desired(
        &name,
        &root,
        raw.clone(),
        layout,
        service,
        source,
        &token_key,
    )?;
    // A binary file has no keys for ECS to pick.
    let ecs = raw
        .is_none()
        .then(|| ecs_entries(&root, &desired, layout, opened.format == Format::Dotenv));
    Ok(FileSecrets { desired, ecs })
}

/// A planned push to one place: what `apply`, `--check` and `--emit` need.
struct Planned<'s> {
    /// The target's name (pushes of targets only).
    label: Option<String>,
    pusher: Pusher<'s>,
    plan: Plan,
    ecs: Option<Vec<(String, String, Option<String>)>>,
}

/// Where and how to write, from `push FILE`'s flags.
fn file_layout(args: &PushArgs) -> Result<(Service, Layout)> {
    Ok(match (args.to, &args.name, &args.prefix, &args.path) {
        (None, ..) => {
            return Err(Error::Usage(
                "push FILE needs --to secretsmanager or --to ssm".into(),
            ))
        }
        (Some(ServiceArg::Secretsmanager), Some(name), None, None) => (
            Service::SecretsManager,
            Layout::Whole { name: name.clone() },
        ),
        (Some(ServiceArg::Secretsmanager), None, Some(prefix), None) => (
            Service::SecretsManager,
            Layout::Each {
                prefix: prefix.clone(),
            },
        ),
        (Some(ServiceArg::Secretsmanager), ..) => {
            return Err(Error::Usage(
                "--to secretsmanager needs --name NAME (one secret) or --prefix PREFIX --each"
                    .into(),
            ))
        }
        (Some(ServiceArg::Ssm), None, None, Some(path)) => {
            let mut prefix = path.clone();
            if !prefix.ends_with('/') {
                prefix.push('/');
            }
            (Service::Ssm, Layout::Each { prefix })
        }
        (Some(ServiceArg::Ssm), ..) => {
            return Err(Error::Usage(
                "--to ssm needs --path /PATH/ (and no --name or --each)".into(),
            ))
        }
    })
}

fn layout_prefix(layout: &Layout) -> String {
    match layout {
        Layout::Whole { name } => name.clone(),
        Layout::Each { prefix } => prefix.clone(),
    }
}

/// `config`: the global `--config`, where the targets are (default: the nearest config).
pub fn push(args: PushArgs, config: Option<&Path>, env: &Env) -> Result<()> {
    let planned = match &args.file {
        Some(file) => vec![plan_file(file, &args, env)?],
        None => plan_targets(&args, config, env)?,
    };
    // stdout carries --emit's data when asked for; the plan then goes to stderr.
    let mut plan_out: Box<dyn Write> = if args.emit.is_some() {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    for (i, p) in planned.iter().enumerate() {
        if let Some(label) = &p.label {
            let io = |e| Error::io("<stdout>", e);
            if i > 0 {
                writeln!(plan_out).map_err(io)?;
            }
            let region = p.pusher.region().unwrap_or_else(|| "no region".into());
            let header = format!(
                "{label}: {} in account {}, {region}",
                p.plan.service,
                p.pusher.account()?
            );
            writeln!(plan_out, "{}", command_error::one_line(&header)).map_err(io)?;
        }
        print_plan(&mut plan_out, &p.plan)?;
    }
    if args.check {
        let changes: usize = planned.iter().map(|p| p.plan.pending()).sum();
        return match changes {
            0 => Ok(()),
            changes => Err(Error::Drift { changes }),
        };
    }
    if args.create.dry_run {
        return Ok(());
    }
    let deletion = if args.force_delete {
        Deletion::Force
    } else {
        Deletion::Recoverable(args.recovery_window)
    };
    let (mut failed, mut total) = (0, 0);
    let mut arns_of: Vec<HashMap<String, String>> = Vec::new();
    for p in &planned {
        let outcomes = apply(&p.pusher, &p.plan, deletion);
        if let Err(Error::PartlyApplied {
            failed: f,
            total: t,
        }) = finish(p.label.as_deref(), &p.plan, &outcomes)
        {
            failed += f;
            total += t;
        }
        let mut arns: HashMap<String, String> = p
            .plan
            .changes
            .iter()
            .filter_map(|c| c.arn.clone().map(|a| (c.name.clone(), a)))
            .collect();
        arns.extend(
            outcomes
                .iter()
                .filter_map(|o| o.result.as_ref().ok()?.clone().map(|a| (o.name.clone(), a))),
        );
        arns_of.push(arns);
    }
    if failed > 0 {
        return Err(Error::PartlyApplied { failed, total });
    }
    if let Some(EmitArg::Ecs) = args.emit {
        emit_ecs(&planned, arns_of)?;
    }
    Ok(())
}

/// `push FILE` with its flags.
fn plan_file<'s>(file: &Path, args: &PushArgs, env: &'s Env) -> Result<Planned<'s>> {
    let (service, layout) = file_layout(args)?;
    if args.prune && matches!(layout, Layout::Whole { .. }) {
        return Err(Error::Usage(
            "--prune needs --each: one secret holding the whole file has no keys to remove".into(),
        ));
    }
    let format = args
        .input_type
        .map_or_else(|| Format::from_path(file), Into::into);
    let source = args.source.clone().unwrap_or_else(|| source_name(file));
    let secrets = file_secrets(file, format, &env.keyring()?, &layout, service, &source)?;
    if args.emit.is_some() && secrets.ecs.is_none() {
        return Err(Error::Usage(format!(
            "{}: --emit ecs needs keys; a binary file has none",
            file.display()
        )));
    }
    let target = Target {
        name: None,
        service,
        prefix: layout_prefix(&layout),
        settings: settings(&args.create)?,
    };
    let pusher = Pusher::connect(env.aws(), &scope(&args.create.region), target)?;
    // Secrets of this file gone from it are looked for with --each: reported, or deleted
    // with --prune.
    let owner = matches!(layout, Layout::Each { .. }).then_some(push::Owner::Source(&source));
    let plan = pusher.plan(secrets.desired, owner, args.prune)?;
    Ok(Planned {
        label: None,
        pusher,
        plan,
        ecs: secrets.ecs,
    })
}

/// The config file (`--config`, else the nearest) and its push targets, which it must have.
pub(super) fn push_targets(
    config: Option<&Path>,
    no_file: &str,
    no_targets: &str,
) -> Result<(PathBuf, coffer::config::Config)> {
    let config_file = match config {
        Some(c) => c.to_path_buf(),
        None => {
            let here = std::env::current_dir().map_err(|e| Error::io(".", e))?;
            coffer::config::find(&here).ok_or_else(|| Error::Usage(no_file.into()))?
        }
    };
    let config = coffer::config::Config::load(&config_file)?;
    if config.push.is_empty() {
        return Err(Error::Config {
            file: config_file.display().to_string(),
            message: no_targets.into(),
        });
    }
    Ok((config_file, config))
}

/// `push` without a file: every target of the config's `push:` list, or those named.
fn plan_targets<'s>(
    args: &PushArgs,
    config: Option<&Path>,
    env: &'s Env,
) -> Result<Vec<Planned<'s>>> {
    let flag = [
        (args.create.kms_key_id.is_some(), "--kms-key-id"),
        (!args.create.tags.is_empty(), "--tag"),
        (args.create.description.is_some(), "--description"),
        (args.create.region.is_some(), "--region"),
        (args.input_type.is_some(), "--input-type"),
    ]
    .into_iter()
    .find(|(given, _)| *given);
    if let Some((_, flag)) = flag {
        return Err(Error::Usage(format!(
            "{flag} is for `push FILE`; a target sets it in the config's push: list"
        )));
    }
    let (config_file, config) = push_targets(
        config,
        "push needs a FILE, or a .coffer.yaml with a push: list here or above",
        "has no push: targets; add some, or give push a FILE",
    )?;
    let shown = config_file.display().to_string();
    for name in &args.targets {
        if !config.push.iter().any(|t| &t.name == name) {
            let known: Vec<&str> = config.push.iter().map(|t| t.name.as_str()).collect();
            return Err(Error::Usage(format!(
                "no push target {name:?} in {shown} (it has: {})",
                known.join(", ")
            )));
        }
    }
    let base = config_file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let keyring = env.keyring()?;
    let chosen: Vec<&coffer::config::PushTarget> = config
        .push
        .iter()
        .filter(|t| args.targets.is_empty() || args.targets.contains(&t.name))
        .collect();
    // Every target's profile exists, before the first call.
    for t in &chosen {
        env.aws()
            .check(&target_scope(t))
            .map_err(|why| Error::Aws(format!("push {}: {why}", t.name)))?;
    }
    let mut out = Vec::new();
    for t in chosen {
        out.push(
            plan_target(t, &base, &keyring, args, env).map_err(|e| match e {
                Error::Aws(why) => Error::Aws(format!("push {}: {why}", t.name)),
                e => e,
            })?,
        );
    }
    Ok(out)
}

pub(super) fn target_scope(t: &coffer::config::PushTarget) -> Scope {
    Scope {
        profile: t.aws_profile.clone(),
        region: t.region.clone(),
        role: t.role.clone(),
    }
}

fn plan_target<'s>(
    t: &coffer::config::PushTarget,
    base: &Path,
    keyring: &coffer::keys::Keyring,
    args: &PushArgs,
    env: &'s Env,
) -> Result<Planned<'s>> {
    use coffer::config::TargetLayout;
    let layout = match &t.layout {
        TargetLayout::Whole(name) => Layout::Whole { name: name.clone() },
        TargetLayout::Each(prefix) => Layout::Each {
            prefix: prefix.clone(),
        },
    };
    let prune = t.prune || args.prune;
    if prune && matches!(layout, Layout::Whole { .. }) {
        return Err(Error::Usage(format!(
            "target {}: --prune needs a prefix; one secret holding a whole file has no keys to remove",
            t.name
        )));
    }
    let mut files = Vec::new();
    for pattern in &t.files {
        files.extend(coffer::glob::expand(base, pattern).map_err(|e| Error::io(base, e))?);
    }
    files.sort();
    files.dedup();
    if files.is_empty() {
        if prune {
            // Everything the target made would look left over.
            return Err(Error::Refused(format!(
                "target {}: no file matches {}, and pruning would delete everything it made",
                t.name,
                t.files.join(", ")
            )));
        }
        super::warn(&format!(
            "target {}: no file matches {}",
            t.name,
            t.files.join(", ")
        ));
    }
    if files.len() > 1 && matches!(layout, Layout::Whole { .. }) {
        return Err(Error::Usage(format!(
            "target {}: secret: holds one file, and {} match",
            t.name,
            files.len()
        )));
    }
    let mut desired: Vec<Desired> = Vec::new();
    let mut ecs = Some(Vec::new());
    for file in &files {
        // Outside a repository, the path from the config file's directory: still the same
        // from every working directory.
        let source = repo_relative(file)
            .unwrap_or_else(|| coffer::glob::slashed(file.strip_prefix(base).unwrap_or(file)));
        let secrets = file_secrets(
            file,
            Format::from_path(file),
            keyring,
            &layout,
            t.service,
            &source,
        )?;
        for d in &secrets.desired {
            if let Some(other) = desired.iter().find(|o| o.name == d.name) {
                return Err(Error::Refused(format!(
                    "target {}: {} and {} both make {:?}",
                    t.name, other.source, d.source, d.name
                )));
            }
        }
        desired.extend(secrets.desired);
        match (&mut ecs, secrets.ecs) {
            (Some(all), Some(mine)) => all.extend(mine),
            _ => ecs = None,
        }
    }
    if args.emit.is_some() && ecs.is_none() {
        return Err(Error::Usage(format!(
            "target {}: --emit ecs needs keys; a binary file has none",
            t.name
        )));
    }
    let target = Target {
        name: Some(t.name.clone()),
        service: t.service,
        prefix: layout_prefix(&layout),
        settings: t.settings.clone(),
    };
    let pusher = Pusher::connect(env.aws(), &target_scope(t), target)?;
    // What the target made, from whichever file: a file removed from git included.
    let owner = matches!(layout, Layout::Each { .. }).then_some(push::Owner::Target(&t.name));
    let plan = pusher.plan(desired, owner, prune)?;
    Ok(Planned {
        label: Some(t.name.clone()),
        pusher,
        plan,
        ecs,
    })
}

/// The ECS `secrets` list of each push, with ARNs: a list for `push FILE`, an object of
/// lists by target name for targets.
fn emit_ecs(planned: &[Planned<'_>], mut arns_of: Vec<HashMap<String, String>>) -> Result<()> {
    let mut lists = Vec::new();
    for (p, arns) in planned.iter().zip(arns_of.iter_mut()) {
        let wanted = p.ecs.as_deref().unwrap_or_default();
        if wanted.iter().any(|(_, name, _)| !arns.contains_key(name)) {
            arns.extend(p.pusher.arns()?);
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
        out.push_str("\n]");
        lists.push((p.label.clone(), out));
    }
    let text = match lists.as_slice() {
        [(None, list)] => format!("{list}\n"),
        _ => {
            let mut text = String::from("{");
            for (i, (label, list)) in lists.iter().enumerate() {
                text.push_str(if i == 0 { "\n" } else { ",\n" });
                let list = list.replace('\n', "\n  ");
                text.push_str(&format!(
                    "  {}: {list}",
                    json_string(label.as_deref().unwrap_or_default())
                ));
            }
            text.push_str("\n}\n");
            text
        }
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(|e| Error::io("<stdout>", e))
}

/// (variable name, secret or parameter name, JSON key inside the secret) for each value.
fn ecs_entries(
    root: &Value,
    desired: &[Desired],
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
        Layout::Each { .. } => desired
            .iter()
            .map(|d| (variable_name(&d.key_path, verbatim), d.name.clone(), None))
            .collect(),
    }
}

fn print_plan(out: &mut dyn Write, plan: &Plan) -> Result<()> {
    let io = |e| Error::io("<stdout>", e);
    for note in plan.notes() {
        super::warn(&note);
    }
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
    let pending = plan.to_apply();
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
fn finish(label: Option<&str>, plan: &Plan, outcomes: &[Outcome]) -> Result<()> {
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
    let of = label.map(|l| format!(" ({l})")).unwrap_or_default();
    eprintln!(
        "Applied{of}: {} created, {} updated, {} deleted, {} unchanged.",
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

pub fn migrate(cmd: MigrateCommand, config: Option<&Path>, env: &Env) -> Result<()> {
    match cmd {
        MigrateCommand::S3(a) => migrate_s3(a, config, env),
        MigrateCommand::Refs(a) => migrate_refs(a, config, env),
    }
}

/// Where a migration's objects go: the command line's service in the default account,
/// or a push target (its service, account, region and prefix).
struct Destination {
    /// The push target's name.
    label: Option<String>,
    /// The objects it takes: keys under this.
    s3_prefix: String,
    service: Service,
    scope: Scope,
    naming: migrate::Naming,
    settings: Option<Settings>,
}

impl Destination {
    fn error(&self, e: Error) -> Error {
        match (e, &self.label) {
            (Error::Aws(why), Some(l)) => Error::Aws(format!("migrate to {l}: {why}")),
            (e, _) => e,
        }
    }
}

/// The destinations of `--target S3-PREFIX=TARGET`s, or else the one of `--to`.
fn destinations(
    targets: &[(String, String)],
    to: Option<Service>,
    s3_prefix: &str,
    name_prefix: Option<&str>,
    region: &Option<String>,
    config: Option<&Path>,
) -> Result<Vec<Destination>> {
    if targets.is_empty() {
        let service = to.ok_or_else(|| Error::Usage("give --to, or --target".into()))?;
        return Ok(vec![Destination {
            label: None,
            s3_prefix: s3_prefix.to_string(),
            service,
            scope: scope(region),
            naming: migrate::Naming::Bucket {
                name_prefix: name_prefix.map(str::to_string),
            },
            settings: None,
        }]);
    }
    let (file, config) = push_targets(
        config,
        "--target needs a .coffer.yaml with a push: list here or above",
        "has no push: targets for --target",
    )?;
    let mut out = Vec::new();
    for (s3_prefix, name) in targets {
        let t = config
            .push
            .iter()
            .find(|t| &t.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = config.push.iter().map(|t| t.name.as_str()).collect();
                Error::Usage(format!(
                    "no push target {name:?} in {} (it has: {})",
                    file.display(),
                    known.join(", ")
                ))
            })?;
        let coffer::config::TargetLayout::Each(prefix) = &t.layout else {
            return Err(Error::Usage(format!(
                "target {name}: holds one whole secret; migrating needs a target with a prefix"
            )));
        };
        out.push(Destination {
            label: Some(t.name.clone()),
            s3_prefix: s3_prefix.clone(),
            service: t.service,
            scope: target_scope(t),
            naming: migrate::Naming::Under {
                s3_prefix: s3_prefix.clone(),
                prefix: prefix.clone(),
            },
            settings: Some(t.settings.clone()),
        });
    }
    Ok(out)
}

/// Every destination's profile exists, before the first call.
fn check_all(dests: &[Destination], env: &Env) -> Result<()> {
    for d in dests {
        env.aws()
            .check(&d.scope)
            .map_err(|why| d.error(Error::Aws(why)))?;
    }
    Ok(())
}

/// `(S3 prefix, destination)` pairs; a prefix given twice is a mistake.
fn routes(dests: &[Destination]) -> Result<Vec<(String, usize)>> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for (i, d) in dests.iter().enumerate() {
        if out.iter().any(|(p, _)| *p == d.s3_prefix) {
            return Err(Error::Usage(format!(
                "--target {:?} is given twice",
                d.s3_prefix
            )));
        }
        out.push((d.s3_prefix.clone(), i));
    }
    Ok(out)
}

/// One line of the migration's table.
struct Row {
    /// The destination it goes to.
    dest: usize,
    source: String,
    name: String,
    account: String,
    status: std::result::Result<String, String>,
}

fn migrate_s3(args: MigrateS3Args, config: Option<&Path>, env: &Env) -> Result<()> {
    let source = scope(&args.create.region);
    let dests = destinations(
        &args.routes.targets,
        args.to.map(ServiceArg::service),
        &args.prefix,
        args.routes.name_prefix.as_deref(),
        &args.create.region,
        config,
    )?;
    if !args.routes.targets.is_empty() && args.create.region.is_some() {
        return Err(Error::Usage(
            "--region with --target: each target has its own region in .coffer.yaml".into(),
        ));
    }
    check_all(&dests, env)?;
    let routes = routes(&dests)?;
    // No secret keys these tokens: a public hash of a value would let anyone who can list
    // versions test guesses. Per-run tokens still make a retried call idempotent.
    let token_key = Arc::new(SecretBox::new(Box::new(
        *coffer::cipher::DataKey::generate().expose(),
    )));
    let mut rows: Vec<Row> = Vec::new();
    let mut planned = Vec::new();
    for (i, d) in dests.iter().enumerate() {
        let mut objects = migrate::read_objects(env.aws(), &source, &args.bucket, &d.s3_prefix)?;
        // An object under two routes' prefixes goes by the longer one only.
        objects.retain(|(key, _)| migrate::route(&routes, key) == Some(&i));
        if objects.is_empty() {
            eprintln!(
                "coffer: no objects under s3://{}/{}",
                args.bucket, d.s3_prefix
            );
            continue;
        }
        let target = Target {
            name: d.label.clone(),
            service: d.service,
            prefix: d.naming.name(d.service, &args.bucket, &d.s3_prefix),
            settings: match &d.settings {
                Some(s) => s.clone(),
                None => settings(&args.create)?,
            },
        };
        let pusher = Pusher::connect(env.aws(), &d.scope, target).map_err(|e| d.error(e))?;
        let account = pusher.account().map_err(|e| d.error(e))?;
        let mut desired = Vec::new();
        for (key, got) in objects {
            let source = format!("s3://{}/{key}", args.bucket);
            let name = d.naming.name(d.service, &args.bucket, &key);
            let status = match got {
                Err(why) => Err(format!("cannot read the object: {why}")),
                Ok(value) => match (
                    d.service.check_name(&name),
                    d.service.check_value(value.as_bytes().len()),
                ) {
                    (Some(why), _) => Err(format!("not a valid name: {why}")),
                    (None, Some(why)) => Err(format!("the object {why}")),
                    (None, None) => {
                        desired.push(Desired {
                            name: name.clone(),
                            key_path: Vec::new(),
                            value,
                            source: source.clone(),
                            token_key: token_key.clone(),
                        });
                        Ok(String::new())
                    }
                },
            };
            rows.push(Row {
                dest: i,
                source,
                name,
                account: account.clone(),
                status,
            });
        }
        let plan = pusher.plan(desired, None, false).map_err(|e| d.error(e))?;
        if let Some(label) = &d.label {
            let region = pusher.region().unwrap_or_else(|| "no region".into());
            eprintln!(
                "{}",
                command_error::one_line(&format!(
                    "{label}: {} in account {account}, {region}",
                    plan.service
                ))
            );
        }
        print_plan(&mut std::io::stderr(), &plan)?;
        planned.push((i, pusher, plan));
    }
    if rows.is_empty() {
        return Ok(());
    }
    if args.create.dry_run {
        let actions: HashMap<(usize, &str), Action> = planned
            .iter()
            .flat_map(|(i, _, plan)| {
                plan.changes
                    .iter()
                    .map(move |c| ((*i, c.name.as_str()), c.action))
            })
            .collect();
        for row in rows.iter_mut().filter(|r| r.status.is_ok()) {
            row.status = Ok(match actions.get(&(row.dest, row.name.as_str())) {
                Some(Action::Create | Action::Restore) => "would create",
                Some(Action::Update) => "would update",
                _ => "already there",
            }
            .into());
        }
        print_table(&rows);
        return Ok(());
    }
    for (i, pusher, plan) in &planned {
        let outcomes = apply(pusher, plan, Deletion::Force);
        let applied: HashMap<&str, &Outcome> =
            outcomes.iter().map(|o| (o.name.as_str(), o)).collect();
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
        for row in rows.iter_mut().filter(|r| r.dest == *i) {
            if row.status.is_err() || !wanted.contains_key(row.name.as_str()) {
                continue;
            }
            let done = match applied.get(row.name.as_str()) {
                Some(o) => match &o.result {
                    Err(why) => {
                        row.status = Err(why.clone());
                        continue;
                    }
                    Ok(_) if o.action == Action::Update => "updated",
                    Ok(_) => "created",
                },
                None => "already there",
            };
            row.status = match (
                read_back.get(row.name.as_str()),
                wanted.get(row.name.as_str()),
            ) {
                (Some(got), Some(want)) if got == *want => Ok(format!("{done}, verified")),
                _ => Err("read back a different value".into()),
            };
        }
    }
    print_table(&rows);
    let failed = rows.iter().filter(|r| r.status.is_err()).count();
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
    // A reader gone away ends the report, not the work it reports on.
    let _ = super::print_out(&format!("{}\n", command_error::one_line(line)));
}

fn print_table(rows: &[Row]) {
    let w1 = rows
        .iter()
        .map(|r| r.source.len())
        .max()
        .unwrap_or(0)
        .max(6);
    let w2 = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(6);
    let w3 = rows
        .iter()
        .map(|r| r.account.len())
        .max()
        .unwrap_or(0)
        .max(7);
    report(&format!(
        "{:w1$}  {:w2$}  {:w3$}  STATUS",
        "SOURCE", "SECRET", "ACCOUNT"
    ));
    for r in rows {
        let status = match &r.status {
            Ok(s) => s.clone(),
            Err(why) => format!("FAILED: {why}"),
        };
        // S3 keys and AWS's words come from elsewhere: nothing raw to the terminal.
        report(&format!(
            "{:w1$}  {:w2$}  {:w3$}  {status}",
            r.source, r.name, r.account
        ));
    }
}

fn migrate_refs(args: MigrateRefsArgs, config: Option<&Path>, env: &Env) -> Result<()> {
    let FromArg::S3 = args.from;
    let dests = destinations(
        &args.routes.targets,
        args.to.map(|t| match t {
            ToRefArg::AwsSecret => Service::SecretsManager,
            ToRefArg::Ssm => Service::Ssm,
        }),
        "",
        args.routes.name_prefix.as_deref(),
        &args.region,
        config,
    )?;
    check_all(&dests, env)?;
    let routes = routes(&dests)?;
    let dest_of = |key: &str| {
        let d = &dests[*migrate::route(&routes, key)?];
        Some((d.service, d.naming.clone(), d.label.clone()))
    };
    let index_of = |m: &Move| migrate::route(&routes, &m.key).copied();
    let mut templates = Vec::new();
    for t in &args.templates {
        let text = std::fs::read_to_string(t).map_err(|e| Error::io(t, e))?;
        // The first failure, with its line (render lists them all).
        let tpl = coffer::render::parse(&text).map_err(|fs| Error::Syntax {
            file: t.display().to_string(),
            error: fs.first().map_or_else(
                || coffer::format::SyntaxError::from("not a template".to_string()),
                |f| coffer::format::SyntaxError::line(f.line, &f.reason),
            ),
        })?;
        templates.push((t, text, tpl));
    }
    // Whether each secret exists, asked in its own account; and the account, to show.
    let mut exists: HashMap<(usize, String), std::result::Result<bool, String>> = HashMap::new();
    let mut accounts: HashMap<usize, String> = HashMap::new();
    for (i, d) in dests.iter().enumerate() {
        let mut names: Vec<String> = templates
            .iter()
            .flat_map(|(_, _, tpl)| migrate::s3_moves(&tpl.refs, &dest_of))
            .filter(|m| index_of(m) == Some(i))
            .map(|m| m.target)
            .collect();
        names.sort();
        names.dedup();
        if names.is_empty() {
            continue;
        }
        if d.label.is_some() {
            let account = env
                .aws()
                .account(&d.scope)
                .map_err(|why| d.error(Error::Aws(why)))?;
            accounts.insert(i, account);
        }
        for (name, found) in
            migrate::secrets_exist(env.aws(), &d.scope, d.service, names).map_err(|e| d.error(e))?
        {
            exists.insert((i, name), found);
        }
    }
    let mut unknown = 0;
    for (path, text, tpl) in &templates {
        let file = path.display();
        let moves = migrate::s3_moves(&tpl.refs, &dest_of);
        let mut chosen: Vec<&Move> = Vec::new();
        for m in &moves {
            let line = m.reference.line;
            let Some(i) = index_of(m) else { continue };
            let account = accounts
                .get(&i)
                .map(|a| format!(" (account {a})"))
                .unwrap_or_default();
            match exists.get(&(i, m.target.clone())) {
                Some(Ok(true)) => {
                    report(&format!(
                        "changed {file}:{line}: {} -> {}{account}",
                        m.reference.uri,
                        m.uri()
                    ));
                    chosen.push(m);
                }
                Some(Ok(false)) => report(&format!(
                    "left    {file}:{line}: {} (no secret {}{account})",
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
        for r in &tpl.refs {
            if let Some(Ok(coffer::aws::read::AwsRef::Object { key, .. })) =
                coffer::aws::read::AwsRef::parse(&r.uri)
            {
                if migrate::route(&routes, &key).is_none() {
                    report(&format!(
                        "left    {file}:{}: {} (no --target for it)",
                        r.line, r.uri
                    ));
                }
            }
        }
        if !chosen.is_empty() && !args.dry_run {
            let new = migrate::rewrite(text, &chosen);
            coffer::fsutil::write_atomic(
                path,
                new.as_bytes(),
                0o644,
                None,
                coffer::fsutil::Target::InPlace,
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
