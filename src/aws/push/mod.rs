//! Push values into Secrets Manager or SSM Parameter Store: read the remote state, plan
//! the difference, then apply only what differs.
//!
//! The plan never holds a value's text in anything it prints. Everything coffer creates
//! carries the tags `managed-by=coffer` and `coffer:source=<source>`; pruning deletes only
//! what carries both, for that source, under the push's prefix.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use aws_sdk_secretsmanager::primitives::Blob;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{bounded, bounded_settled, code, reason, Payload, Scope, Session, CONCURRENCY};
use crate::tree::Value;
use crate::{Error, Result};

mod apply;
mod desired;
mod plan;

pub use apply::*;
pub use desired::*;
pub use plan::*;

pub const MANAGED_BY: (&str, &str) = ("managed-by", "coffer");
pub const SOURCE_TAG: &str = "coffer:source";
/// The keys of the user's tags coffer set, so it removes only those when they go.
pub const TAGS_TAG: &str = "coffer:tags";
/// The push target that made a secret: what its `prune` may delete.
pub const TARGET_TAG: &str = "coffer:target";
/// The largest value of a standard parameter; above it, the Advanced tier (up to 8 KB).
const SSM_STANDARD_MAX: usize = 4096;
const SSM_ADVANCED_MAX: usize = 8192;

/// Parameter Store's default throughput is a few writes per second; more writers in
/// flight only turn into throttling.
const SSM_WRITERS: usize = 3;
/// `BatchGetSecretValue` takes at most this many names.
const BATCH: usize = 20;

/// The AWS clients of one target, in its account and region.
pub struct Pusher<'s> {
    session: &'s Session,
    sm: aws_sdk_secretsmanager::Client,
    ssm: aws_sdk_ssm::Client,
    kms: aws_sdk_kms::Client,
    scope: Scope,
    region: Option<String>,
    /// `in REGION (account A, profile P)`, for error lines.
    place: String,
    account: Option<String>,
    target: Target,
}

impl<'s> Pusher<'s> {
    /// The clients of `target`. A named target (of `.coffer.yaml`) learns its account
    /// first, as its plan's header and every error line name it.
    pub fn connect(session: &'s Session, scope: &Scope, target: Target) -> Result<Pusher<'s>> {
        let conf = session.config(scope)?;
        let region = conf.region().map(ToString::to_string);
        let account = match target.name {
            Some(_) => Some(session.account(scope)?),
            None => None,
        };
        Ok(Pusher {
            place: session.place(scope, region.as_deref(), account.as_deref()),
            account,
            scope: scope.clone(),
            session,
            sm: aws_sdk_secretsmanager::Client::new(&conf),
            ssm: aws_sdk_ssm::Client::new(&conf),
            kms: aws_sdk_kms::Client::new(&conf),
            region,
            target,
        })
    }

    /// The region the target's calls go to.
    pub fn region(&self) -> Option<String> {
        self.region.clone()
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The account these credentials act in (`GetCallerIdentity`, once).
    pub fn account(&self) -> Result<String> {
        match &self.account {
            Some(a) => Ok(a.clone()),
            None => Ok(self.session.account(&self.scope)?),
        }
    }

    /// Read the remote state and compare. `owner`: whose leftovers to look for, deleted
    /// when `prune`, else reported.
    pub fn plan(
        &self,
        desired: Vec<Desired>,
        owner: Option<Owner<'_>>,
        prune: bool,
    ) -> Result<Plan> {
        let mut changes = self.session.block_on(async {
            match self.target.service {
                Service::SecretsManager => self.plan_secrets(&desired, owner).await,
                Service::Ssm => self.plan_parameters(&desired, owner).await,
            }
        })?;
        if !prune {
            for c in changes.iter_mut().filter(|c| c.action == Action::Delete) {
                c.action = Action::Leftover;
            }
        }
        Ok(Plan {
            service: self.target.service,
            changes,
            desired,
        })
    }

    /// Key ids, aliases and ARNs resolved to key ARNs (`DescribeKey`); one that cannot be
    /// resolved is left out.
    async fn resolve_keys(&self, ids: HashSet<String>) -> HashMap<String, String> {
        let mut out = HashMap::new();
        let work = |id: String| {
            let kms = self.kms.clone();
            async move {
                let arn = kms
                    .describe_key()
                    .key_id(&id)
                    .send()
                    .await
                    .ok()
                    .and_then(|o| o.key_metadata?.arn);
                (id, arn)
            }
        };
        bounded(ids, CONCURRENCY, work, |(id, arn)| {
            if let Some(arn) = arn {
                out.insert(id, arn);
            }
        })
        .await;
        out
    }

    /// Resolve the target's key and every remote one, when the target names a key; an
    /// unset remote key is the service's AWS managed key, `default`.
    async fn keys_of<'a>(
        &self,
        remote: impl Iterator<Item = Option<&'a str>>,
        default: &'static str,
    ) -> Keys {
        let arns = match &self.target.settings.kms_key_id {
            Some(asked) => {
                let mut ids: HashSet<String> =
                    remote.map(|k| k.unwrap_or(default).to_string()).collect();
                ids.insert(asked.clone());
                self.resolve_keys(ids).await
            }
            None => HashMap::new(),
        };
        Keys { arns, default }
    }

    async fn plan_secrets(
        &self,
        desired: &[Desired],
        prune: Option<Owner<'_>>,
    ) -> Result<Vec<Change>> {
        // An unset key is the account's AWS managed key.
        const DEFAULT_KEY: &str = "alias/aws/secretsmanager";
        let listed = self.list_secrets().await?;
        let live: Vec<&Desired> = desired
            .iter()
            .filter(|d| listed.get(&d.name).is_some_and(|l| !l.deleted))
            .collect();
        let remote = self
            .secret_values(live.iter().map(|d| d.name.clone()).collect())
            .await?;
        let keys = self
            .keys_of(
                desired
                    .iter()
                    .filter_map(|d| listed.get(&d.name))
                    .map(|l| l.kms_key.as_deref()),
                DEFAULT_KEY,
            )
            .await;
        Ok(secret_changes(
            &self.target,
            desired,
            &listed,
            &remote,
            &keys,
            prune,
        ))
    }

    /// Every secret under the prefix, secrets scheduled for deletion included, with the
    /// settings a plan compares.
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
            let page = page.map_err(|e| self.aws_error("ListSecrets", &self.target.prefix, &e))?;
            for s in page.secret_list() {
                let (Some(name), Some(arn)) = (s.name(), s.arn()) else {
                    continue;
                };
                // The name filter matches words as well as prefixes.
                if !name.starts_with(&self.target.prefix) {
                    continue;
                }
                let tags: Vec<(String, String)> = s
                    .tags()
                    .iter()
                    .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
                    .collect();
                let tag = |k: &str| tags.iter().find(|(tk, _)| tk == k).map(|(_, v)| v.clone());
                out.insert(
                    name.to_string(),
                    Listed {
                        arn: arn.to_string(),
                        deleted: s.deleted_date().is_some(),
                        managed: tag(MANAGED_BY.0).as_deref() == Some(MANAGED_BY.1),
                        description: s.description().map(str::to_string),
                        kms_key: s.kms_key_id().map(str::to_string),
                        tags,
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
        let payload =
            |string: Option<&str>, binary: Option<&aws_sdk_secretsmanager::primitives::Blob>| match (
                string, binary,
            ) {
                (Some(s), _) => Payload::Text(Zeroizing::new(s.to_string())),
                (None, Some(b)) => Payload::Binary(Zeroizing::new(b.as_ref().to_vec())),
                (None, None) => Payload::Text(Zeroizing::new(String::new())),
            };
        for (chunk, res) in pages {
            // A secret created without a value (by hand, or by coffer before it refused
            // empty values) has no AWSCURRENT version: it has no value, and the push
            // writes one. Some endpoints fail the whole batch for it: the chunk is then
            // read one secret at a time.
            let page = match res {
                Err(e) if code(&e) == Some("ResourceNotFoundException") => {
                    for name in chunk {
                        match self.sm.get_secret_value().secret_id(&name).send().await {
                            Ok(v) => {
                                let value = payload(v.secret_string(), v.secret_binary());
                                out.insert(name, (value, v.version_id().map(str::to_string)));
                            }
                            Err(e) if code(&e) == Some("ResourceNotFoundException") => {}
                            Err(e) => return Err(self.aws_error("GetSecretValue", &name, &e)),
                        }
                    }
                    continue;
                }
                res => res.map_err(|e| self.aws_error("BatchGetSecretValue", &chunk[0], &e))?,
            };
            let unreadable = page
                .errors()
                .iter()
                .find(|e| e.error_code() != Some("ResourceNotFoundException"));
            if let Some(err) = unreadable {
                return Err(Error::Aws(crate::aws::CallError::new(
                    format!(
                        "secretsmanager BatchGetSecretValue {}",
                        err.secret_id().unwrap_or_default()
                    ),
                    Some(&self.place),
                    format!(
                        "{}: {}",
                        err.error_code().unwrap_or("error"),
                        err.message().unwrap_or_default()
                    ),
                )));
            }
            for v in page.secret_values() {
                let value = payload(v.secret_string(), v.secret_binary());
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
        prune: Option<Owner<'_>>,
    ) -> Result<Vec<Change>> {
        // An unset key is the account's AWS managed key.
        const DEFAULT_KEY: &str = "alias/aws/ssm";
        let mut remote = self.list_parameters().await?;
        self.describe_parameters(&mut remote).await?;
        let settings = &self.target.settings;
        let managed = self
            .tagged_parameters(&[(MANAGED_BY.0.into(), MANAGED_BY.1.into())])
            .await?;
        // Parameter Store lists tags one parameter at a time, so the parameters that carry
        // every tag coffer would set are found with one filtered listing per source; only
        // the others are read one by one.
        let target = self.target.name.as_deref();
        let sources: std::collections::BTreeSet<&str> = desired
            .iter()
            .filter(|d| managed.contains(&d.name))
            .map(|d| d.source.as_str())
            .collect();
        let mut in_step: HashMap<&str, HashSet<String>> = HashMap::new();
        for source in sources {
            let tags = settings.tags_for(source, target);
            in_step.insert(source, self.tagged_parameters(&tags).await?);
        }
        let is_in_step = |d: &Desired| {
            in_step
                .get(d.source.as_str())
                .is_some_and(|n| n.contains(&d.name))
        };
        let wanted: HashSet<&str> = desired.iter().map(|d| d.name.as_str()).collect();
        let mut read: Vec<String> = desired
            .iter()
            .filter(|d| managed.contains(&d.name) && !is_in_step(d))
            .filter(|d| remote.contains_key(&d.name))
            .map(|d| d.name.clone())
            .collect();
        if prune.is_some() {
            // Leftovers, for whose they are.
            read.extend(
                managed
                    .iter()
                    .filter(|n| !wanted.contains(n.as_str()) && remote.contains_key(*n))
                    .cloned(),
            );
        }
        let mut tags = self.parameter_tags(read).await?;
        for d in desired.iter().filter(|d| is_in_step(d)) {
            tags.insert(d.name.clone(), settings.tags_for(&d.source, target));
        }
        let keys = self
            .keys_of(
                desired
                    .iter()
                    .filter_map(|d| remote.get(&d.name))
                    .map(|p| p.key_id.as_deref()),
                DEFAULT_KEY,
            )
            .await;
        Ok(parameter_changes(
            &self.target,
            desired,
            &remote,
            &managed,
            &tags,
            &keys,
            prune,
        ))
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
            let page = page.map_err(|e| self.aws_error("GetParametersByPath", &path, &e))?;
            for p in page.parameters() {
                let Some(name) = p.name() else { continue };
                out.insert(
                    name.to_string(),
                    Parameter {
                        value: Payload::Text(Zeroizing::new(
                            p.value().unwrap_or_default().to_string(),
                        )),
                        version: p.version(),
                        secure: p.r#type()
                            == Some(&aws_sdk_ssm::types::ParameterType::SecureString),
                        arn: p.arn().map(str::to_string),
                        advanced: false,
                        description: None,
                        key_id: None,
                    },
                );
            }
        }
        Ok(out)
    }

    fn path_filter(&self) -> aws_sdk_ssm::types::ParameterStringFilter {
        string_filter("Path", "Recursive", &self.ssm_path())
    }

    /// Tier, description and key of each parameter under the path.
    async fn describe_parameters(&self, remote: &mut HashMap<String, Parameter>) -> Result<()> {
        let mut pages = self
            .ssm
            .describe_parameters()
            .parameter_filters(self.path_filter())
            .max_results(50)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| self.aws_error("DescribeParameters", &self.ssm_path(), &e))?;
            for m in page.parameters() {
                if let Some(p) = m.name().and_then(|n| remote.get_mut(n)) {
                    p.advanced = m.tier() == Some(&aws_sdk_ssm::types::ParameterTier::Advanced);
                    p.description = m.description().map(str::to_string);
                    p.key_id = m.key_id().map(str::to_string);
                }
            }
        }
        Ok(())
    }

    /// Names under the path that carry all these tags (one paginated listing).
    async fn tagged_parameters(&self, tags: &[(String, String)]) -> Result<HashSet<String>> {
        let mut req = self
            .ssm
            .describe_parameters()
            .parameter_filters(self.path_filter())
            .max_results(50);
        for (k, v) in tags {
            req = req.parameter_filters(string_filter(&format!("tag:{k}"), "Equals", v));
        }
        let mut pages = req.into_paginator().send();
        let mut names = HashSet::new();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| self.aws_error("DescribeParameters", &self.ssm_path(), &e))?;
            names.extend(
                page.parameters()
                    .iter()
                    .filter_map(|p| p.name().map(str::to_string)),
            );
        }
        Ok(names)
    }

    /// The tags of each parameter (`ListTagsForResource`, concurrently).
    async fn parameter_tags(
        &self,
        names: Vec<String>,
    ) -> Result<HashMap<String, Vec<(String, String)>>> {
        use aws_sdk_ssm::types::ResourceTypeForTagging;
        let mut out = HashMap::new();
        let mut failed = None;
        let work = |name: String| {
            let ssm = self.ssm.clone();
            async move {
                let res = ssm
                    .list_tags_for_resource()
                    .resource_type(ResourceTypeForTagging::Parameter)
                    .resource_id(&name)
                    .send()
                    .await;
                (name, res)
            }
        };
        bounded(names, CONCURRENCY, work, |(name, res)| match res {
            Ok(o) => {
                let tags = o
                    .tag_list()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect();
                out.insert(name, tags);
            }
            Err(e) => failed = Some(self.aws_error("ListTagsForResource", &name, &e)),
        })
        .await;
        match failed {
            Some(e) => Err(e),
            None => Ok(out),
        }
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
        self.session.block_on(async {
            let jobs = plan
                .changes
                .iter()
                .enumerate()
                .filter(|(_, c)| !matches!(c.action, Action::Unchanged | Action::Leftover))
                .map(|(i, c)| {
                    (
                        i,
                        self.job(c, c.desired.map(|d| &plan.desired[d]), deletion),
                    )
                });
            let mut out: Vec<(usize, Outcome)> = Vec::new();
            let work = |(i, job): (usize, Job)| async move { (i, job.run().await) };
            // A job that panicked is reported as failed below, as one that never ran.
            let _ = bounded_settled(jobs, writers, work, |(i, result)| {
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
            let done: HashSet<usize> = out.iter().map(|(i, _)| *i).collect();
            for (i, outcome) in unreported(plan, &done) {
                on_done(&outcome);
                out.push((i, outcome));
            }
            out.sort_by_key(|(i, _)| *i);
            out.into_iter().map(|(_, o)| o).collect()
        })
    }

    /// Everything one change needs, owned, so it can run on its own task.
    fn job(&self, change: &Change, desired: Option<&Desired>, deletion: Deletion) -> Job {
        let settings = &self.target.settings;
        Job {
            place: self.place.clone(),
            sm: self.sm.clone(),
            ssm: self.ssm.clone(),
            service: self.target.service,
            change: change.clone(),
            value: desired.map(|d| d.value.clone()),
            token: desired
                .map(|d| token(&d.token_key, &d.name, change.version.as_deref(), &d.value)),
            token_key: desired.map(|d| d.token_key.clone()),
            kms_key_id: settings.kms_key_id.clone(),
            description: settings.description.clone(),
            tags: desired
                .map(|d| settings.tags_for(&d.source, self.target.name.as_deref()))
                .unwrap_or_default(),
            deletion,
        }
    }

    /// Read the current values of these secrets or parameters back.
    pub fn read_back(&self, names: Vec<String>) -> Result<HashMap<String, Payload>> {
        match self.target.service {
            Service::SecretsManager => {
                let values = self.session.block_on(self.secret_values(names))?;
                Ok(values.into_iter().map(|(k, (v, _))| (k, v)).collect())
            }
            Service::Ssm => {
                let wanted: HashSet<String> = names.into_iter().collect();
                let listed = self.session.block_on(self.list_parameters())?;
                Ok(listed
                    .into_iter()
                    .filter(|(n, _)| wanted.contains(n))
                    .map(|(n, p)| (n, p.value))
                    .collect())
            }
        }
    }

    /// The ARN of every name under the prefix (for `--emit ecs` after creating).
    pub fn arns(&self) -> Result<HashMap<String, String>> {
        self.session.block_on(async {
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

    /// `secretsmanager ListSecrets web/ in eu-west-1 (account A, profile P): reason`.
    fn aws_error<E>(
        &self,
        operation: &str,
        name: &str,
        e: &aws_sdk_kms::error::SdkError<E, aws_sdk_kms::config::http::HttpResponse>,
    ) -> Error
    where
        E: aws_sdk_kms::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        let service = match self.target.service {
            Service::SecretsManager => "secretsmanager",
            Service::Ssm => "ssm",
        };
        Error::Aws(crate::aws::CallError::new(
            format!("{service} {operation} {name}"),
            Some(&self.place),
            reason(e, &self.target.service.to_string()),
        ))
    }
}

fn string_filter(
    key: &str,
    option: &str,
    value: &str,
) -> aws_sdk_ssm::types::ParameterStringFilter {
    aws_sdk_ssm::types::ParameterStringFilter::builder()
        .key(key)
        .option(option)
        .values(value)
        .build()
        .expect("the key is set")
}

/// A client request token from the name, the version it replaces and the value: a retried
/// call repeats its token and AWS makes one version, while writing a value that an older
/// version once had still makes a new one.
fn token(key: &TokenKey, name: &str, replaces: Option<&str>, value: &Payload) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.expose_secret())
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

#[cfg(test)]
fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_depend_on_name_version_and_value() {
        let key: TokenKey = Arc::new(SecretBox::new(Box::new([7; 32])));
        let v = |s: &str| Payload::Text(Zeroizing::new(s.into()));
        let t = token(&key, "a", Some("v1"), &v("x"));
        assert_eq!(t.len(), 36);
        assert_eq!(t, token(&key, "a", Some("v1"), &v("x")));
        assert_ne!(t, token(&key, "a", Some("v2"), &v("x")));
        assert_ne!(t, token(&key, "b", Some("v1"), &v("x")));
        assert_ne!(t, token(&key, "a", Some("v1"), &v("y")));
        // Lengths are framed: moving a byte between parts changes the token.
        assert_ne!(
            token(&key, "ab", None, &v("c")),
            token(&key, "a", None, &v("bc"))
        );
        let other: TokenKey = Arc::new(SecretBox::new(Box::new([8; 32])));
        assert_ne!(t, token(&other, "a", Some("v1"), &v("x")));
    }
}
