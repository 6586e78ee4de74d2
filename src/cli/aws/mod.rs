//! `push` and `migrate`: the plan/apply commands that write to AWS.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};
use secrecy::SecretBox;

mod migrating;
mod pushing;

pub use migrating::migrate;
pub use pushing::push;
use pushing::*;
pub(super) use pushing::{push_targets, target_scope};

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

pub(super) fn parse_tag(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err("expected KEY=VALUE".into()),
    }
}

pub(super) fn settings(create: &CreateOptions) -> Result<Settings> {
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

pub(super) fn scope(region: &Option<String>) -> Scope {
    Scope {
        region: region.clone(),
        ..Scope::default()
    }
}
