//! Push values into Secrets Manager or SSM Parameter Store: read the remote state, plan
//! the difference, then apply only what differs.
//!
//! The plan never holds a value's text in anything it prints. Everything coffer creates
//! carries the tags `managed-by=coffer` and `coffer:source=<source>`; pruning deletes only
//! what carries both, for that source, under the push's prefix.

use std::collections::{HashMap, HashSet};
use std::fmt;

use aws_sdk_secretsmanager::primitives::Blob;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{bounded, code, reason, runtime, Connection, Payload, CONCURRENCY};
use crate::tree::Value;
use crate::{Error, Result};

pub const MANAGED_BY: (&str, &str) = ("managed-by", "coffer");
pub const SOURCE_TAG: &str = "coffer:source";

/// Parameter Store's default throughput is a few writes per second; more writers in
/// flight only turn into throttling.
const SSM_WRITERS: usize = 3;
/// `BatchGetSecretValue` takes at most this many names.
const BATCH: usize = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    SecretsManager,
    Ssm,
}

impl Service {
    /// Why `name` cannot be used, if it cannot.
    pub fn check_name(self, name: &str) -> Option<&'static str> {
        match self {
            Service::SecretsManager => {
                if name.is_empty() || name.len() > 512 {
                    Some("a Secrets Manager name has 1 to 512 characters")
                } else if !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c))
                {
                    Some("a Secrets Manager name has only letters, digits and /_+=.@-")
                } else {
                    None
                }
            }
            Service::Ssm => {
                let segments: Vec<&str> = name.trim_start_matches('/').split('/').collect();
                if !name.starts_with('/') || name.len() > 1011 {
                    Some("a parameter name starts with / and has at most 1011 characters")
                } else if segments.len() > 15 {
                    Some("a parameter name has at most 15 levels")
                } else if segments.iter().any(|s| s.is_empty()) {
                    Some("a parameter name has no empty levels")
                } else if !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/_.-".contains(c))
                {
                    Some("a parameter name has only letters, digits and /_.-")
                } else if segments[0].to_ascii_lowercase().starts_with("aws")
                    || segments[0].to_ascii_lowercase().starts_with("ssm")
                {
                    Some("a parameter name cannot begin with aws or ssm")
                } else {
                    None
                }
            }
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::SecretsManager => "Secrets Manager",
            Service::Ssm => "Parameter Store",
        })
    }
}

/// Where a push writes and what it sets on what it creates.
#[derive(Clone, Debug)]
pub struct Target {
    pub service: Service,
    /// Names this push owns start with this: the listing and pruning scope.
    pub prefix: String,
    pub kms_key_id: Option<String>,
    pub description: Option<String>,
    /// The user's `--tag`s; coffer's own two are added to them.
    pub tags: Vec<(String, String)>,
}

/// One secret or parameter the source asks for.
pub struct Desired {
    pub name: String,
    /// The value's key path in the file (empty for a whole file or an S3 object).
    pub key_path: Vec<String>,
    pub value: Payload,
    /// The `coffer:source` tag it gets when created.
    pub source: String,
}

/// How a file's values become secrets.
pub enum Layout {
    /// One secret holding the whole file as a JSON object.
    Whole { name: String },
    /// One secret per value, named `prefix` + its key path joined with `/`.
    Each { prefix: String },
}

/// The secrets a file asks for. A name AWS would refuse fails here, naming the key path,
/// before anything is read or written.
pub fn desired(
    file: &str,
    root: &Value,
    raw: Option<Payload>,
    layout: &Layout,
    service: Service,
    source: &str,
) -> Result<Vec<Desired>> {
    let bad = |what: String| Error::Refused(format!("{file}: {what}"));
    let prefix = match layout {
        Layout::Whole { name } => {
            if let Some(why) = service.check_name(name) {
                return Err(bad(format!("cannot name a secret {name:?}: {why}")));
            }
            let value = match raw {
                Some(p) => p,
                None => {
                    let mut json = Zeroizing::new(String::new());
                    crate::format::json::json(&mut json, root, None, 0);
                    crate::sops::verify::emitted(
                        crate::format::Format::Json,
                        json.as_bytes(),
                        root,
                    )
                    .map_err(|why| {
                        bad(format!("cannot be written as JSON that reads back ({why})"))
                    })?;
                    Payload::Text(json)
                }
            };
            return Ok(vec![Desired {
                name: name.clone(),
                key_path: Vec::new(),
                value,
                source: source.to_string(),
            }]);
        }
        Layout::Each { .. } if raw.is_some() => {
            return Err(bad(
                "a binary file has no keys to push one by one; push it whole with --name".into(),
            ))
        }
        Layout::Each { prefix } => prefix,
    };
    let mut out: Vec<Desired> = Vec::new();
    let mut seen = HashSet::new();
    for (path, value) in root.leaves() {
        let shown = path.join(".");
        let name = format!("{prefix}{}", path.join("/"));
        if let Some(why) = service.check_name(&name) {
            return Err(bad(format!("{shown}: cannot name it {name:?}: {why}")));
        }
        if !seen.insert(name.clone()) {
            return Err(bad(format!(
                "{shown}: {name:?} is also the name of another key"
            )));
        }
        if service == Service::Ssm && value.is_empty() {
            return Err(bad(format!(
                "{shown}: is empty, and Parameter Store keeps no empty values"
            )));
        }
        out.push(Desired {
            name,
            key_path: path,
            value: Payload::Text(value),
            source: source.to_string(),
        });
    }
    Ok(out)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Create,
    /// A Secrets Manager secret scheduled for deletion: restore it, then write the value.
    Restore,
    Update,
    Unchanged,
    Delete,
}

/// One line of the plan. Carries names and versions, never a value.
#[derive(Clone, Debug)]
pub struct Change {
    pub action: Action,
    pub name: String,
    /// The existing secret's ARN (Secrets Manager) or parameter ARN.
    pub arn: Option<String>,
    /// The version being replaced: part of the update's idempotency token.
    version: Option<String>,
    /// Existing, but not created by coffer: updated, never tagged or pruned.
    pub foreign: bool,
    /// An SSM parameter whose type becomes SecureString.
    pub retyped: bool,
    desired: Option<usize>,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = &self.name;
        match self.action {
            Action::Create => write!(f, "+ {name}"),
            Action::Restore => write!(f, "+ {name} (restored from scheduled deletion)"),
            Action::Update => {
                write!(f, "~ {name} (value changed")?;
                if self.retyped {
                    write!(f, "; type becomes SecureString")?;
                }
                if self.foreign {
                    write!(f, "; not created by coffer, so never pruned")?;
                }
                write!(f, ")")
            }
            Action::Unchanged => write!(f, "  {name} (unchanged)"),
            Action::Delete => write!(f, "- {name}"),
        }
    }
}

/// What differs between the source and the remote state.
pub struct Plan {
    pub service: Service,
    pub changes: Vec<Change>,
    desired: Vec<Desired>,
}

impl Plan {
    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }

    /// The changes that call AWS when applied.
    pub fn pending(&self) -> usize {
        self.changes.len() - self.count(Action::Unchanged)
    }

    /// `Plan: 1 to create, 2 to update, 3 unchanged, 0 to delete.`
    pub fn summary(&self) -> String {
        format!(
            "Plan: {} to create, {} to update, {} unchanged, {} to delete.",
            self.count(Action::Create) + self.count(Action::Restore),
            self.count(Action::Update),
            self.count(Action::Unchanged),
            self.count(Action::Delete)
        )
    }

    /// What the source asks for, in its order.
    pub fn desired(&self) -> &[Desired] {
        &self.desired
    }
}

/// How `--prune` deletes Secrets Manager secrets.
#[derive(Clone, Copy, Debug)]
pub enum Deletion {
    /// Recoverable for this many days (7 to 30).
    Recoverable(i64),
    /// Gone at once.
    Force,
}

/// What happened to one change.
pub struct Outcome {
    pub name: String,
    pub action: Action,
    /// The secret's or parameter's ARN when AWS said it, or AWS's reason for refusing.
    pub result: std::result::Result<Option<String>, String>,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let done = match self.action {
            Action::Create => "created",
            Action::Restore => "restored",
            Action::Update => "updated",
            Action::Unchanged => "unchanged",
            Action::Delete => "deleted",
        };
        match &self.result {
            Ok(_) => write!(f, "{done} {}", self.name),
            Err(why) => write!(f, "not {done}: {}: {why}", self.name),
        }
    }
}

/// What one remote secret looks like, as listed.
struct Listed {
    arn: String,
    deleted: bool,
    managed: bool,
    source: Option<String>,
}

/// Clients of one push, and the key its request tokens are derived with.
pub struct Pusher {
    rt: tokio::runtime::Runtime,
    sm: aws_sdk_secretsmanager::Client,
    ssm: aws_sdk_ssm::Client,
    target: Target,
    token_key: SecretBox<[u8; 32]>,
}

impl Pusher {
    /// `token_key` keys the client request tokens: a push uses the file's data key, so the
    /// tokens are stable across runs but say nothing about the values to someone who can
    /// list versions and not read them.
    pub fn connect(conn: &Connection, target: Target, token_key: SecretBox<[u8; 32]>) -> Pusher {
        let rt = runtime();
        let conf = rt.block_on(conn.load());
        Pusher {
            sm: aws_sdk_secretsmanager::Client::new(&conf),
            ssm: aws_sdk_ssm::Client::new(&conf),
            rt,
            target,
            token_key,
        }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Read the remote state and compare. `prune`: the source whose leftovers to delete.
    pub fn plan(&self, desired: Vec<Desired>, prune: Option<&str>) -> Result<Plan> {
        let changes = self.rt.block_on(async {
            match self.target.service {
                Service::SecretsManager => self.plan_secrets(&desired, prune).await,
                Service::Ssm => self.plan_parameters(&desired, prune).await,
            }
        })?;
        Ok(Plan {
            service: self.target.service,
            changes,
            desired,
        })
    }

    async fn plan_secrets(&self, desired: &[Desired], prune: Option<&str>) -> Result<Vec<Change>> {
        let listed = self.list_secrets().await?;
        let live: Vec<&Desired> = desired
            .iter()
            .filter(|d| listed.get(&d.name).is_some_and(|l| !l.deleted))
            .collect();
        let remote = self
            .secret_values(live.iter().map(|d| d.name.clone()).collect())
            .await?;
        let mut changes = Vec::new();
        for (i, d) in desired.iter().enumerate() {
            let listed = listed.get(&d.name);
            let (action, version) = match (listed, remote.get(&d.name)) {
                (None, _) => (Action::Create, None),
                (Some(l), _) if l.deleted => (Action::Restore, None),
                (Some(_), Some((value, version))) if *value == d.value => {
                    (Action::Unchanged, version.clone())
                }
                (Some(_), found) => (Action::Update, found.and_then(|(_, v)| v.clone())),
            };
            changes.push(Change {
                action,
                name: d.name.clone(),
                arn: listed.map(|l| l.arn.clone()),
                version,
                foreign: listed.is_some_and(|l| !l.managed),
                retyped: false,
                desired: Some(i),
            });
        }
        if let Some(source) = prune {
            let wanted: HashSet<&str> = desired.iter().map(|d| d.name.as_str()).collect();
            let mut gone: Vec<(&String, &Listed)> = listed
                .iter()
                .filter(|(name, l)| {
                    !l.deleted
                        && l.managed
                        && l.source.as_deref() == Some(source)
                        && !wanted.contains(name.as_str())
                })
                .collect();
            gone.sort_by_key(|(name, _)| name.as_str());
            changes.extend(gone.into_iter().map(|(name, l)| Change {
                action: Action::Delete,
                name: name.clone(),
                arn: Some(l.arn.clone()),
                version: None,
                foreign: false,
                retyped: false,
                desired: None,
            }));
        }
        Ok(changes)
    }

    /// Every secret under the prefix, secrets scheduled for deletion included.
    async fn list_secrets(&self) -> Result<HashMap<String, Listed>> {
        use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};
        let mut req = self
            .sm
            .list_secrets()
            .include_planned_deletion(true)
            .max_results(100);
        if !self.target.prefix.is_empty() {
            req = req.filters(
                Filter::builder()
                    .key(FilterNameStringType::Name)
                    .values(&self.target.prefix)
                    .build(),
            );
        }
        let mut pages = req.into_paginator().send();
        let mut out = HashMap::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws_error("list secrets", &self.target.prefix, &e))?;
            for s in page.secret_list() {
                let (Some(name), Some(arn)) = (s.name(), s.arn()) else {
                    continue;
                };
                // The name filter matches words as well as prefixes.
                if !name.starts_with(&self.target.prefix) {
                    continue;
                }
                let tag = |k: &str| {
                    s.tags()
                        .iter()
                        .find(|t| t.key() == Some(k))
                        .and_then(|t| t.value())
                };
                out.insert(
                    name.to_string(),
                    Listed {
                        arn: arn.to_string(),
                        deleted: s.deleted_date().is_some(),
                        managed: tag(MANAGED_BY.0) == Some(MANAGED_BY.1),
                        source: tag(SOURCE_TAG).map(str::to_string),
                    },
                );
            }
        }
        Ok(out)
    }

    /// Current values and version ids, [`BATCH`] names per call, calls running concurrently.
    async fn secret_values(
        &self,
        names: Vec<String>,
    ) -> Result<HashMap<String, (Payload, Option<String>)>> {
        let mut pages = Vec::new();
        let work = |chunk: Vec<String>| {
            let sm = self.sm.clone();
            async move {
                let res = sm
                    .batch_get_secret_value()
                    .set_secret_id_list(Some(chunk.clone()))
                    .send()
                    .await;
                (chunk, res)
            }
        };
        let chunks = names.chunks(BATCH).map(<[String]>::to_vec);
        bounded(chunks, CONCURRENCY, work, |page| pages.push(page)).await;
        let mut out = HashMap::new();
        for (chunk, res) in pages {
            let page = res.map_err(|e| aws_error("read secrets", &chunk[0], &e))?;
            if let Some(err) = page.errors().first() {
                return Err(Error::Aws(format!(
                    "cannot read secret {}: {}: {}",
                    err.secret_id().unwrap_or_default(),
                    err.error_code().unwrap_or("error"),
                    err.message().unwrap_or_default()
                )));
            }
            for v in page.secret_values() {
                let value = match (v.secret_string(), v.secret_binary()) {
                    (Some(s), _) => Payload::Text(Zeroizing::new(s.to_string())),
                    (None, Some(b)) => Payload::Binary(Zeroizing::new(b.as_ref().to_vec())),
                    (None, None) => Payload::Text(Zeroizing::new(String::new())),
                };
                if let Some(name) = v.name() {
                    out.insert(
                        name.to_string(),
                        (value, v.version_id().map(str::to_string)),
                    );
                }
            }
        }
        Ok(out)
    }

    async fn plan_parameters(
        &self,
        desired: &[Desired],
        prune: Option<&str>,
    ) -> Result<Vec<Change>> {
        let remote = self.list_parameters().await?;
        let mut changes = Vec::new();
        for (i, d) in desired.iter().enumerate() {
            let found = remote.get(&d.name);
            let (action, retyped) = match found {
                None => (Action::Create, false),
                Some(p) if p.secure && p.value == d.value => (Action::Unchanged, false),
                Some(p) => (Action::Update, !p.secure),
            };
            changes.push(Change {
                action,
                name: d.name.clone(),
                arn: found.and_then(|p| p.arn.clone()),
                version: None,
                foreign: false,
                retyped,
                desired: Some(i),
            });
        }
        if let Some(source) = prune {
            let wanted: HashSet<&str> = desired.iter().map(|d| d.name.as_str()).collect();
            let left: Vec<&String> = remote
                .keys()
                .filter(|n| !wanted.contains(n.as_str()))
                .collect();
            if !left.is_empty() {
                let managed = self.managed_parameters(source).await?;
                let mut gone: Vec<&String> =
                    left.into_iter().filter(|n| managed.contains(*n)).collect();
                gone.sort();
                changes.extend(gone.into_iter().map(|name| Change {
                    action: Action::Delete,
                    name: name.clone(),
                    arn: remote.get(name).and_then(|p| p.arn.clone()),
                    version: None,
                    foreign: false,
                    retyped: false,
                    desired: None,
                }));
            }
        }
        Ok(changes)
    }

    /// The hierarchy path `/a/b` of a prefix `/a/b/`.
    fn ssm_path(&self) -> String {
        let p = self.target.prefix.trim_end_matches('/');
        if p.is_empty() {
            "/".into()
        } else {
            p.to_string()
        }
    }

    /// Every parameter under the path, decrypted.
    async fn list_parameters(&self) -> Result<HashMap<String, Parameter>> {
        let path = self.ssm_path();
        let mut pages = self
            .ssm
            .get_parameters_by_path()
            .path(&path)
            .recursive(true)
            .with_decryption(true)
            .max_results(10)
            .into_paginator()
            .send();
        let mut out = HashMap::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws_error("list parameters", &path, &e))?;
            for p in page.parameters() {
                let Some(name) = p.name() else { continue };
                out.insert(
                    name.to_string(),
                    Parameter {
                        value: Payload::Text(Zeroizing::new(
                            p.value().unwrap_or_default().to_string(),
                        )),
                        secure: p.r#type()
                            == Some(&aws_sdk_ssm::types::ParameterType::SecureString),
                        arn: p.arn().map(str::to_string),
                    },
                );
            }
        }
        Ok(out)
    }

    /// Names under the path that carry coffer's tags for `source`.
    async fn managed_parameters(&self, source: &str) -> Result<HashSet<String>> {
        use aws_sdk_ssm::types::ParameterStringFilter;
        let path = self.ssm_path();
        let filter = |key: &str, option: &str, value: &str| {
            ParameterStringFilter::builder()
                .key(key)
                .option(option)
                .values(value)
                .build()
                .expect("the key is set")
        };
        let mut pages = self
            .ssm
            .describe_parameters()
            .parameter_filters(filter("Path", "Recursive", &path))
            .parameter_filters(filter(
                &format!("tag:{}", MANAGED_BY.0),
                "Equals",
                MANAGED_BY.1,
            ))
            .parameter_filters(filter(&format!("tag:{SOURCE_TAG}"), "Equals", source))
            .max_results(50)
            .into_paginator()
            .send();
        let mut out = HashSet::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws_error("list parameter tags", &path, &e))?;
            out.extend(
                page.parameters()
                    .iter()
                    .filter_map(|p| p.name().map(str::to_string)),
            );
        }
        Ok(out)
    }

    /// Apply every change that is not `Unchanged`, concurrently with a bound, reporting each
    /// as it finishes. Returns the outcomes of the applied ones, in plan order.
    pub fn apply(
        &self,
        plan: &Plan,
        deletion: Deletion,
        mut on_done: impl FnMut(&Outcome),
    ) -> Vec<Outcome> {
        let writers = match plan.service {
            Service::SecretsManager => CONCURRENCY,
            Service::Ssm => SSM_WRITERS,
        };
        self.rt.block_on(async {
            let jobs = plan
                .changes
                .iter()
                .enumerate()
                .filter(|(_, c)| c.action != Action::Unchanged)
                .map(|(i, c)| {
                    (
                        i,
                        self.job(c, c.desired.map(|d| &plan.desired[d]), deletion),
                    )
                });
            let mut out: Vec<(usize, Outcome)> = Vec::new();
            let work = |(i, job): (usize, Job)| async move { (i, job.run().await) };
            bounded(jobs, writers, work, |(i, result)| {
                let c = &plan.changes[i];
                let outcome = Outcome {
                    name: c.name.clone(),
                    action: c.action,
                    result,
                };
                on_done(&outcome);
                out.push((i, outcome));
            })
            .await;
            out.sort_by_key(|(i, _)| *i);
            out.into_iter().map(|(_, o)| o).collect()
        })
    }

    /// Everything one change needs, owned, so it can run on its own task.
    fn job(&self, change: &Change, desired: Option<&Desired>, deletion: Deletion) -> Job {
        let mut tags = self.target.tags.clone();
        if let Some(d) = desired {
            tags.push((MANAGED_BY.0.into(), MANAGED_BY.1.into()));
            tags.push((SOURCE_TAG.into(), d.source.clone()));
        }
        Job {
            sm: self.sm.clone(),
            ssm: self.ssm.clone(),
            service: self.target.service,
            action: change.action,
            name: change.name.clone(),
            arn: change.arn.clone(),
            value: desired.map(|d| d.value.clone()),
            token: desired.map(|d| self.token(&d.name, change.version.as_deref(), &d.value)),
            kms_key_id: self.target.kms_key_id.clone(),
            description: self.target.description.clone(),
            tags,
            deletion,
        }
    }

    /// A client request token from the name, the version it replaces and the value: a
    /// retried call repeats its token and AWS makes one version, while writing a value that
    /// an older version once had still makes a new one.
    fn token(&self, name: &str, replaces: Option<&str>, value: &Payload) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.token_key.expose_secret())
            .expect("HMAC takes any key length");
        for part in [
            b"coffer push token v1".as_slice(),
            name.as_bytes(),
            replaces.unwrap_or_default().as_bytes(),
            value.as_bytes(),
        ] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        let h = mac.finalize().into_bytes();
        let hex: String = h[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    }

    /// Read the current values of these secrets back (Secrets Manager only).
    pub fn read_back(&self, names: Vec<String>) -> Result<HashMap<String, Payload>> {
        let values = self.rt.block_on(self.secret_values(names))?;
        Ok(values.into_iter().map(|(k, (v, _))| (k, v)).collect())
    }

    /// The ARN of every name under the prefix (for `--emit ecs` after creating).
    pub fn arns(&self) -> Result<HashMap<String, String>> {
        self.rt.block_on(async {
            Ok(match self.target.service {
                Service::SecretsManager => self
                    .list_secrets()
                    .await?
                    .into_iter()
                    .filter(|(_, l)| !l.deleted)
                    .map(|(n, l)| (n, l.arn))
                    .collect(),
                Service::Ssm => self
                    .list_parameters()
                    .await?
                    .into_iter()
                    .filter_map(|(n, p)| p.arn.map(|a| (n, a)))
                    .collect(),
            })
        })
    }
}

struct Parameter {
    value: Payload,
    secure: bool,
    arn: Option<String>,
}

struct Job {
    sm: aws_sdk_secretsmanager::Client,
    ssm: aws_sdk_ssm::Client,
    service: Service,
    action: Action,
    name: String,
    arn: Option<String>,
    value: Option<Payload>,
    token: Option<String>,
    kms_key_id: Option<String>,
    description: Option<String>,
    tags: Vec<(String, String)>,
    deletion: Deletion,
}

impl Job {
    async fn run(self) -> std::result::Result<Option<String>, String> {
        match self.service {
            Service::SecretsManager => self.run_secret().await,
            Service::Ssm => self.run_parameter().await,
        }
    }

    async fn run_secret(self) -> std::result::Result<Option<String>, String> {
        use aws_sdk_secretsmanager::types::Tag;
        let id = self.arn.clone().unwrap_or_else(|| self.name.clone());
        let (string, binary) = match &self.value {
            Some(Payload::Text(s)) => (Some(s.to_string()), None),
            Some(Payload::Binary(b)) => (None, Some(Blob::new(b.to_vec()))),
            None => (None, None),
        };
        match self.action {
            Action::Create => {
                let tags = self
                    .tags
                    .iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect();
                let out = self
                    .sm
                    .create_secret()
                    .name(&self.name)
                    .set_secret_string(string)
                    .set_secret_binary(binary)
                    .set_kms_key_id(self.kms_key_id)
                    .set_description(self.description)
                    .set_tags(Some(tags))
                    .set_client_request_token(self.token)
                    .send()
                    .await
                    .map_err(|e| reason(&e))?;
                Ok(out.arn().map(str::to_string))
            }
            Action::Restore | Action::Update => {
                if self.action == Action::Restore {
                    self.sm
                        .restore_secret()
                        .secret_id(&id)
                        .send()
                        .await
                        .map_err(|e| reason(&e))?;
                }
                let out = self
                    .sm
                    .put_secret_value()
                    .secret_id(&id)
                    .set_secret_string(string)
                    .set_secret_binary(binary)
                    .set_client_request_token(self.token)
                    .send()
                    .await
                    .map_err(|e| reason(&e))?;
                Ok(out.arn().map(str::to_string).or(self.arn))
            }
            Action::Delete => {
                let req = self.sm.delete_secret().secret_id(&id);
                let req = match self.deletion {
                    Deletion::Recoverable(days) => req.recovery_window_in_days(days),
                    Deletion::Force => req.force_delete_without_recovery(true),
                };
                req.send().await.map_err(|e| reason(&e))?;
                Ok(self.arn)
            }
            Action::Unchanged => Ok(self.arn),
        }
    }

    async fn run_parameter(self) -> std::result::Result<Option<String>, String> {
        use aws_sdk_ssm::types::{ParameterType, Tag};
        let value = match &self.value {
            Some(Payload::Text(s)) => s.to_string(),
            Some(Payload::Binary(_)) => return Err("Parameter Store holds text only".into()),
            None => String::new(),
        };
        match self.action {
            Action::Create | Action::Restore | Action::Update => {
                let create = self.action != Action::Update;
                let mut req = self
                    .ssm
                    .put_parameter()
                    .name(&self.name)
                    .value(value)
                    .r#type(ParameterType::SecureString)
                    .set_key_id(self.kms_key_id)
                    .set_description(self.description)
                    .overwrite(!create);
                // AWS takes tags only on a parameter's first write.
                if create {
                    for (k, v) in &self.tags {
                        req = req.tags(
                            Tag::builder()
                                .key(k)
                                .value(v)
                                .build()
                                .expect("key and value are set"),
                        );
                    }
                }
                req.send().await.map_err(|e| reason(&e))?;
                Ok(self.arn)
            }
            Action::Delete => {
                match self.ssm.delete_parameter().name(&self.name).send().await {
                    Ok(_) => Ok(self.arn),
                    // Already gone is what a delete wants.
                    Err(e) if code(&e) == Some("ParameterNotFound") => Ok(self.arn),
                    Err(e) => Err(reason(&e)),
                }
            }
            Action::Unchanged => Ok(self.arn),
        }
    }
}

fn aws_error<E>(
    what: &str,
    name: &str,
    e: &aws_sdk_kms::error::SdkError<E, aws_sdk_kms::config::http::HttpResponse>,
) -> Error
where
    E: aws_sdk_kms::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    Error::Aws(format!("cannot {what} ({name}): {}", reason(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_as_aws_would() {
        let sm = Service::SecretsManager;
        assert_eq!(sm.check_name("prod/web/DB_PASSWORD"), None);
        assert!(sm.check_name("prod/web/has space").is_some());
        assert!(sm.check_name(&"x".repeat(513)).is_some());
        let ssm = Service::Ssm;
        assert_eq!(ssm.check_name("/prod/web/db/password"), None);
        assert!(ssm.check_name("prod/web").is_some());
        assert!(ssm.check_name("/prod//web").is_some());
        assert!(ssm.check_name("/aws/x").is_some());
        assert!(ssm.check_name("/prod/web/a+b").is_some());
        assert!(ssm
            .check_name(&format!("/{}", vec!["a"; 16].join("/")))
            .is_some());
    }

    #[test]
    fn tokens_depend_on_name_version_and_value() {
        let p = Pusher {
            rt: runtime(),
            sm: aws_sdk_secretsmanager::Client::from_conf(
                aws_sdk_secretsmanager::Config::builder()
                    .behavior_version_latest()
                    .build(),
            ),
            ssm: aws_sdk_ssm::Client::from_conf(
                aws_sdk_ssm::Config::builder()
                    .behavior_version_latest()
                    .build(),
            ),
            target: Target {
                service: Service::SecretsManager,
                prefix: String::new(),
                kms_key_id: None,
                description: None,
                tags: Vec::new(),
            },
            token_key: SecretBox::new(Box::new([7; 32])),
        };
        let v = |s: &str| Payload::Text(Zeroizing::new(s.into()));
        let t = p.token("a", Some("v1"), &v("x"));
        assert_eq!(t.len(), 36);
        assert_eq!(t, p.token("a", Some("v1"), &v("x")));
        assert_ne!(t, p.token("a", Some("v2"), &v("x")));
        assert_ne!(t, p.token("b", Some("v1"), &v("x")));
        assert_ne!(t, p.token("a", Some("v1"), &v("y")));
        // Lengths are framed: moving a byte between parts changes the token.
        assert_ne!(p.token("ab", None, &v("c")), p.token("a", None, &v("bc")));
    }
}
