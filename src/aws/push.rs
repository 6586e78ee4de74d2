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

/// The most a Secrets Manager secret holds (`SecretString` or `SecretBinary`).
pub const SECRETS_MANAGER_MAX: usize = 65_536;

impl Service {
    /// Why a value of `len` bytes cannot be stored, if it cannot: found in the plan, not
    /// by a failed apply. Secrets Manager takes an empty value, but a secret without one
    /// fails every later read, so it is refused too.
    pub fn check_value(self, len: usize) -> Option<String> {
        match self {
            Service::SecretsManager if len == 0 => {
                Some("is empty (or null), and a Secrets Manager secret needs a value".into())
            }
            Service::SecretsManager if len > SECRETS_MANAGER_MAX => Some(format!(
                "has {len} bytes, and a Secrets Manager secret holds at most {SECRETS_MANAGER_MAX}"
            )),
            Service::Ssm if len == 0 => {
                Some("is empty, and Parameter Store keeps no empty values".into())
            }
            Service::Ssm if len > SSM_ADVANCED_MAX => Some(format!(
                "has {len} bytes, and a parameter holds at most {SSM_ADVANCED_MAX}"
            )),
            _ => None,
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

/// What a push sets on what it creates, and keeps in step on what coffer manages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    pub kms_key_id: Option<String>,
    pub description: Option<String>,
    /// The user's tags; coffer's own are added to them.
    pub tags: Vec<(String, String)>,
}

impl Settings {
    /// The tags a secret from `source` (made by push target `target`, if one) carries: the
    /// user's, coffer's own, and the list of the user's tag keys, so a tag dropped from the
    /// settings later is removed while tags added by hand stay.
    pub fn tags_for(&self, source: &str, target: Option<&str>) -> Vec<(String, String)> {
        let mut tags = self.tags.clone();
        tags.push((MANAGED_BY.0.into(), MANAGED_BY.1.into()));
        tags.push((SOURCE_TAG.into(), source.into()));
        if let Some(t) = target {
            tags.push((TARGET_TAG.into(), t.into()));
        }
        tags.push((TAGS_TAG.into(), self.tag_keys()));
        tags
    }

    /// The user's tag keys as `coffer:tags` holds them: sorted, joined with `+`, or `-`
    /// for none (a tag filter cannot ask for an empty value).
    fn tag_keys(&self) -> String {
        let mut keys: Vec<&str> = self.tags.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        if keys.is_empty() {
            return "-".into();
        }
        keys.join("+")
    }

    /// Why these settings cannot be used, if they cannot: tags as both services take
    /// them, none of coffer's own, and a description of a length both take.
    pub fn check(&self) -> Option<String> {
        for (k, v) in &self.tags {
            if let Some(why) = tag_problem(k, v) {
                return Some(why);
            }
            if k == MANAGED_BY.0 || k.starts_with("coffer:") {
                return Some(format!("the tag {k:?} is coffer's own"));
            }
            // `+` joins the keys in coffer:tags, and `-` alone means none there.
            if k.contains('+') || k == "-" {
                return Some(format!(
                    "the tag key {k:?}: coffer keeps no key with + or a lone -"
                ));
            }
        }
        // Both services take 50 tags; coffer's own take four.
        if self.tags.len() > 46 {
            return Some("more than 46 tags (AWS takes 50, and coffer sets four)".into());
        }
        if self.tag_keys().len() > 256 {
            return Some("the tag keys, joined with +, exceed 256 characters".into());
        }
        if self
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 1024)
        {
            return Some("a description has at most 1024 characters".into());
        }
        None
    }
}

/// Why AWS would refuse a tag, if it would: keys of 1 to 128 and values of up to 256
/// characters, of letters, digits, spaces and `_.:/=+-@`, no key starting with `aws:`.
pub fn tag_problem(key: &str, value: &str) -> Option<String> {
    let allowed = |c: char| c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c);
    if key.is_empty() || key.chars().count() > 128 {
        return Some(format!("the tag key {key:?} has 1 to 128 characters"));
    }
    if value.chars().count() > 256 {
        return Some(format!("the tag {key:?} has a value over 256 characters"));
    }
    if !key.chars().all(allowed) || !value.chars().all(allowed) {
        return Some(format!(
            "the tag {key:?}: keys and values have only letters, digits, spaces and _.:/=+-@"
        ));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Some(format!("the tag key {key:?}: aws: is AWS's own"));
    }
    None
}

/// Where a push writes and what it sets.
#[derive(Clone, Debug)]
pub struct Target {
    /// The push target's name in `.coffer.yaml`; `None` for `push FILE`.
    pub name: Option<String>,
    pub service: Service,
    /// Names this push owns start with this: the listing and pruning scope.
    pub prefix: String,
    pub settings: Settings,
}

/// The key a file's request tokens are derived with: its data key, so tokens are stable
/// across runs but say nothing about the values to someone who can list versions and not
/// read them.
pub type TokenKey = Arc<SecretBox<[u8; 32]>>;

/// One secret or parameter the source asks for.
pub struct Desired {
    pub name: String,
    /// The value's key path in the file (empty for a whole file or an S3 object).
    pub key_path: Vec<String>,
    pub value: Payload,
    /// The `coffer:source` tag it gets when created.
    pub source: String,
    pub token_key: TokenKey,
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
    token_key: &TokenKey,
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
            if let Some(why) = service.check_value(value.as_bytes().len()) {
                return Err(bad(format!("the whole file {why}")));
            }
            return Ok(vec![Desired {
                name: name.clone(),
                key_path: Vec::new(),
                value,
                source: source.to_string(),
                token_key: token_key.clone(),
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
        if let Some(why) = service.check_value(value.len()) {
            return Err(bad(format!("{shown}: {why}")));
        }
        out.push(Desired {
            name,
            key_path: path,
            value: Payload::Text(value),
            source: source.to_string(),
            token_key: token_key.clone(),
        });
    }
    Ok(out)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Create,
    /// A Secrets Manager secret scheduled for deletion: restore it, then write the value.
    Restore,
    /// The value, the settings, or both.
    Update,
    Unchanged,
    Delete,
    /// Made by this file or target, and gone from it: `--prune` deletes it, a push
    /// without it leaves it (and `--check` reports it).
    Leftover,
}

/// Settings of an existing secret or parameter that differ from the target's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Drift {
    pub description: Option<String>,
    pub kms_key_id: Option<String>,
    pub tag: Vec<(String, String)>,
    pub untag: Vec<String>,
}

impl Drift {
    pub fn is_empty(&self) -> bool {
        self.description.is_none()
            && self.kms_key_id.is_none()
            && self.tag.is_empty()
            && self.untag.is_empty()
    }

    /// `description, KMS key, tags`: what differs, never a value.
    fn what(&self) -> String {
        let mut parts = Vec::new();
        if self.description.is_some() {
            parts.push("description");
        }
        if self.kms_key_id.is_some() {
            parts.push("KMS key");
        }
        if !self.tag.is_empty() || !self.untag.is_empty() {
            parts.push("tags");
        }
        parts.join(", ")
    }
}

/// The settings a secret or parameter has now; its KMS key resolved to an ARN where it
/// could be.
#[derive(Clone, Debug, Default)]
pub struct Remote {
    pub description: Option<String>,
    pub kms_key: Option<String>,
    pub tags: Vec<(String, String)>,
}

/// What to change so a managed secret has `settings` and `wanted_tags` (from
/// [`Settings::tags_for`]). `wanted_key` is the target's KMS key resolved as the remote one
/// was, `None` when that is not known. Tags coffer did not set stay.
pub fn drift(
    settings: &Settings,
    wanted_key: Option<&str>,
    wanted_tags: &[(String, String)],
    remote: &Remote,
) -> Drift {
    let mut d = Drift::default();
    if let Some(want) = &settings.description {
        if remote.description.as_deref() != Some(want.as_str()) {
            d.description = Some(want.clone());
        }
    }
    if let (Some(asked), Some(want), Some(now)) =
        (&settings.kms_key_id, wanted_key, remote.kms_key.as_deref())
    {
        if now != want {
            d.kms_key_id = Some(asked.clone());
        }
    }
    let has = |k: &str| {
        remote
            .tags
            .iter()
            .find(|(rk, _)| rk == k)
            .map(|(_, v)| v.as_str())
    };
    d.tag = wanted_tags
        .iter()
        .filter(|(k, v)| has(k) != Some(v.as_str()))
        .cloned()
        .collect();
    let set_before: Vec<&str> = has(TAGS_TAG)
        .map(|keys| {
            keys.split('+')
                .filter(|k| !k.is_empty() && *k != "-")
                .collect()
        })
        .unwrap_or_default();
    d.untag = set_before
        .into_iter()
        .filter(|k| !wanted_tags.iter().any(|(w, _)| w == k) && has(k).is_some())
        .map(str::to_string)
        .collect();
    d
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
    /// An update writes the value (else only settings).
    pub value_changed: bool,
    /// Settings to bring in step (coffer-managed secrets and parameters only).
    pub drift: Drift,
    /// Existing, but not created by coffer: updated, never tagged or pruned.
    pub foreign: bool,
    /// An SSM parameter whose type becomes SecureString.
    pub retyped: bool,
    /// An SSM parameter written in the Advanced tier.
    pub advanced: bool,
    /// Its KMS key could not be compared with the target's.
    pub key_unknown: bool,
    /// The key and description an SSM write sends (it replaces both).
    put_key: Option<String>,
    put_description: Option<String>,
    desired: Option<usize>,
}

impl Change {
    fn new(action: Action, name: &str, desired: Option<usize>) -> Change {
        Change {
            action,
            name: name.to_string(),
            arn: None,
            version: None,
            value_changed: action == Action::Update,
            drift: Drift::default(),
            foreign: false,
            retyped: false,
            advanced: false,
            key_unknown: false,
            put_key: None,
            put_description: None,
            desired,
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = match self.action {
            Action::Create | Action::Restore => "+",
            Action::Update => "~",
            Action::Unchanged => return write!(f, "  {} (unchanged)", self.name),
            Action::Delete => return write!(f, "- {}", self.name),
            Action::Leftover => return write!(f, "- {} (would delete with --prune)", self.name),
        };
        let mut notes = Vec::new();
        if self.action == Action::Restore {
            notes.push("restored from scheduled deletion".to_string());
        }
        if self.action == Action::Update && self.value_changed {
            notes.push("value changed".into());
        }
        if !self.drift.is_empty() {
            notes.push(format!("settings: {}", self.drift.what()));
        }
        if self.retyped {
            notes.push("type becomes SecureString".into());
        }
        if self.advanced {
            notes.push("advanced tier".into());
        }
        if self.foreign {
            notes.push("not created by coffer, so never pruned".into());
        }
        write!(f, "{sign} {}", self.name)?;
        if !notes.is_empty() {
            write!(f, " ({})", notes.join("; "))?;
        }
        Ok(())
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

    /// What differs from the source: the changes a push makes, and the leftovers only
    /// `--prune` deletes (what `--check` reports).
    pub fn pending(&self) -> usize {
        self.changes.len() - self.count(Action::Unchanged)
    }

    /// The changes that call AWS when applied.
    pub fn to_apply(&self) -> usize {
        self.pending() - self.count(Action::Leftover)
    }

    /// `Plan: 1 to create, 2 to update, 3 unchanged, 0 to delete.`
    pub fn summary(&self) -> String {
        format!(
            "Plan: {} to create, {} to update, {} unchanged, {} to delete.",
            self.count(Action::Create) + self.count(Action::Restore),
            self.count(Action::Update),
            self.count(Action::Unchanged),
            self.count(Action::Delete)
        ) + &match self.count(Action::Leftover) {
            0 => String::new(),
            n => format!(" {n} left over: --prune deletes them."),
        }
    }

    /// What the source asks for, in its order.
    pub fn desired(&self) -> &[Desired] {
        &self.desired
    }

    /// What the plan could not find out, one line each.
    pub fn notes(&self) -> Vec<String> {
        let unknown = self.changes.iter().filter(|c| c.key_unknown).count();
        let mut notes = Vec::new();
        if unknown > 0 {
            notes.push(format!(
                "the KMS key of {unknown} secret(s) was not compared: kms:DescribeKey did not resolve it or the target's"
            ));
        }
        notes
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
            Action::Leftover => "left",
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
    description: Option<String>,
    kms_key: Option<String>,
    tags: Vec<(String, String)>,
}

/// KMS keys as the plan compares them: ids, aliases and ARNs resolved to key ARNs.
struct Keys {
    /// Each id that `DescribeKey` resolved, to its key ARN.
    arns: HashMap<String, String>,
    /// What an unset key means: the service's AWS managed key.
    default: &'static str,
}

/// Which of coffer's secrets `--prune` may delete.
#[derive(Clone, Copy, Debug)]
pub enum Owner<'a> {
    /// Those `push FILE` made from this file.
    Source(&'a str),
    /// Those this push target made, from whichever file (one since deleted included).
    Target(&'a str),
}

impl Owner<'_> {
    fn owns(&self, tags: &[(String, String)]) -> bool {
        let tag = |k: &str| tags.iter().find(|(t, _)| t == k).map(|(_, v)| v.as_str());
        tag(MANAGED_BY.0) == Some(MANAGED_BY.1)
            && match self {
                Owner::Source(s) => tag(SOURCE_TAG) == Some(*s) && tag(TARGET_TAG).is_none(),
                Owner::Target(t) => tag(TARGET_TAG) == Some(*t),
            }
    }
}

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
        let conf = session.config(scope).map_err(Error::Aws)?;
        let region = conf.region().map(ToString::to_string);
        let account = match target.name {
            Some(_) => Some(session.account(scope).map_err(Error::Aws)?),
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
            None => self.session.account(&self.scope).map_err(Error::Aws),
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

    /// Plan bringing a managed secret's or parameter's settings in step; a change of
    /// settings alone makes an unchanged value an update. A KMS key that could not be
    /// resolved on either side is not compared (and noted), rather than planned every run.
    fn settle(&self, c: &mut Change, keys: &Keys, source: &str, now: Remote) {
        let settings = &self.target.settings;
        let remote_key = now.kms_key.as_deref().unwrap_or(keys.default);
        let (wanted, remote) = match &settings.kms_key_id {
            Some(asked) if asked == remote_key => (Some(asked.as_str()), Some(remote_key)),
            Some(asked) => match (keys.arns.get(asked), keys.arns.get(remote_key)) {
                (Some(w), Some(r)) => (Some(w.as_str()), Some(r.as_str())),
                _ => {
                    c.key_unknown = true;
                    (None, None)
                }
            },
            None => (None, None),
        };
        let now = Remote {
            kms_key: remote.map(str::to_string),
            ..now
        };
        let tags = settings.tags_for(source, self.target.name.as_deref());
        c.drift = drift(settings, wanted, &tags, &now);
        if c.action == Action::Unchanged && !c.drift.is_empty() {
            c.action = Action::Update;
            c.value_changed = false;
        }
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
            let mut c = Change::new(action, &d.name, Some(i));
            c.version = version;
            if let Some(l) = listed {
                c.arn = Some(l.arn.clone());
                c.foreign = !l.managed;
                if l.managed {
                    let now = Remote {
                        description: l.description.clone(),
                        kms_key: l.kms_key.clone(),
                        tags: l.tags.clone(),
                    };
                    self.settle(&mut c, &keys, &d.source, now);
                }
            }
            changes.push(c);
        }
        if let Some(owned) = prune {
            let wanted: HashSet<&str> = desired.iter().map(|d| d.name.as_str()).collect();
            let mut gone: Vec<(&String, &Listed)> = listed
                .iter()
                .filter(|(name, l)| {
                    !l.deleted && owned.owns(&l.tags) && !wanted.contains(name.as_str())
                })
                .collect();
            gone.sort_by_key(|(name, _)| name.as_str());
            changes.extend(gone.into_iter().map(|(name, l)| {
                let mut c = Change::new(Action::Delete, name, None);
                c.arn = Some(l.arn.clone());
                c
            }));
        }
        Ok(changes)
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
                return Err(Error::Aws(format!(
                    "secretsmanager BatchGetSecretValue {} {}: {}: {}",
                    err.secret_id().unwrap_or_default(),
                    self.place,
                    err.error_code().unwrap_or("error"),
                    err.message().unwrap_or_default()
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
        let mut changes = Vec::new();
        for (i, d) in desired.iter().enumerate() {
            let found = remote.get(&d.name);
            let action = match found {
                None => Action::Create,
                Some(p) if p.secure && p.value == d.value => Action::Unchanged,
                Some(_) => Action::Update,
            };
            let mut c = Change::new(action, &d.name, Some(i));
            c.advanced =
                d.value.as_bytes().len() > SSM_STANDARD_MAX || found.is_some_and(|p| p.advanced);
            // What a write sends: the target's settings for a new parameter; for an existing
            // one, what it has unless the plan changes it.
            c.put_key = settings.kms_key_id.clone();
            c.put_description = settings.description.clone();
            if let Some(p) = found {
                c.arn = p.arn.clone();
                c.retyped = !p.secure;
                c.version = Some(p.version.to_string());
                c.foreign = !managed.contains(&d.name);
                // A String parameter becoming SecureString has no key yet: the target's.
                c.put_key = p.key_id.clone().or(c.put_key.take());
                c.put_description = p.description.clone();
                // Tags are known only of the parameters coffer manages.
                if let Some(tags) = tags.get(&d.name) {
                    let now = Remote {
                        description: p.description.clone(),
                        kms_key: p.key_id.clone(),
                        tags: tags.clone(),
                    };
                    self.settle(&mut c, &keys, &d.source, now);
                    if let Some(k) = &c.drift.kms_key_id {
                        c.put_key = Some(k.clone());
                    }
                    if let Some(d) = &c.drift.description {
                        c.put_description = Some(d.clone());
                    }
                }
            }
            changes.push(c);
        }
        if let Some(owned) = prune {
            let mut gone: Vec<&String> = remote
                .keys()
                .filter(|n| !wanted.contains(n.as_str()) && managed.contains(*n))
                .filter(|n| tags.get(*n).is_some_and(|t| owned.owns(t)))
                .collect();
            gone.sort();
            changes.extend(gone.into_iter().map(|name| {
                let mut c = Change::new(Action::Delete, name, None);
                c.arn = remote.get(name).and_then(|p| p.arn.clone());
                c
            }));
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
        Error::Aws(format!(
            "{service} {operation} {name} {}: {}",
            self.place,
            reason(e, &self.target.service.to_string())
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

struct Parameter {
    value: Payload,
    version: i64,
    secure: bool,
    arn: Option<String>,
    advanced: bool,
    description: Option<String>,
    key_id: Option<String>,
}

struct Job {
    /// Where its calls go, for its errors.
    place: String,
    sm: aws_sdk_secretsmanager::Client,
    ssm: aws_sdk_ssm::Client,
    service: Service,
    change: Change,
    value: Option<Payload>,
    token: Option<String>,
    /// For a restored secret, whose replaced version is known only once it is restored.
    token_key: Option<TokenKey>,
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
        let place = self.place.clone();
        let c = &self.change;
        let id = c.arn.clone().unwrap_or_else(|| c.name.clone());
        let (string, binary) = match &self.value {
            Some(Payload::Text(s)) => (Some(s.to_string()), None),
            Some(Payload::Binary(b)) => (None, Some(Blob::new(b.to_vec()))),
            None => (None, None),
        };
        let tag = |(k, v): &(String, String)| Tag::builder().key(k).value(v).build();
        match c.action {
            Action::Create => {
                let out = self
                    .sm
                    .create_secret()
                    .name(&c.name)
                    .set_secret_string(string)
                    .set_secret_binary(binary)
                    .set_kms_key_id(self.kms_key_id)
                    .set_description(self.description)
                    .set_tags(Some(self.tags.iter().map(tag).collect()))
                    .set_client_request_token(self.token)
                    .send()
                    .await
                    .map_err(|e| failed("secretsmanager CreateSecret", &place, &e))?;
                Ok(out.arn().map(str::to_string))
            }
            Action::Restore | Action::Update => {
                let mut request_token = self.token.clone();
                if c.action == Action::Restore {
                    self.sm
                        .restore_secret()
                        .secret_id(&id)
                        .send()
                        .await
                        .map_err(|e| failed("secretsmanager RestoreSecret", &place, &e))?;
                    // The token names the version it replaces, known only now: without it,
                    // a value the secret once had would repeat that version's token, and
                    // AWS would take the write for a retry and change nothing.
                    let current = self
                        .sm
                        .describe_secret()
                        .secret_id(&id)
                        .send()
                        .await
                        .map_err(|e| failed("secretsmanager DescribeSecret", &place, &e))?
                        .version_ids_to_stages()
                        .and_then(|v| {
                            v.iter()
                                .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
                                .map(|(id, _)| id.clone())
                        });
                    if let (Some(key), Some(value)) = (&self.token_key, &self.value) {
                        request_token = Some(token(key, &c.name, current.as_deref(), value));
                    }
                }
                // The key first, so the new value is encrypted under it.
                if c.drift.kms_key_id.is_some() || c.drift.description.is_some() {
                    self.sm
                        .update_secret()
                        .secret_id(&id)
                        .set_kms_key_id(c.drift.kms_key_id.clone())
                        .set_description(c.drift.description.clone())
                        .send()
                        .await
                        .map_err(|e| failed("secretsmanager UpdateSecret", &place, &e))?;
                }
                let mut arn = c.arn.clone();
                if c.value_changed || c.action == Action::Restore {
                    let out = self
                        .sm
                        .put_secret_value()
                        .secret_id(&id)
                        .set_secret_string(string)
                        .set_secret_binary(binary)
                        .set_client_request_token(request_token)
                        .send()
                        .await
                        .map_err(|e| failed("secretsmanager PutSecretValue", &place, &e))?;
                    arn = out.arn().map(str::to_string).or(arn);
                }
                if !c.drift.tag.is_empty() {
                    self.sm
                        .tag_resource()
                        .secret_id(&id)
                        .set_tags(Some(c.drift.tag.iter().map(tag).collect()))
                        .send()
                        .await
                        .map_err(|e| failed("secretsmanager TagResource", &place, &e))?;
                }
                if !c.drift.untag.is_empty() {
                    self.sm
                        .untag_resource()
                        .secret_id(&id)
                        .set_tag_keys(Some(c.drift.untag.clone()))
                        .send()
                        .await
                        .map_err(|e| failed("secretsmanager UntagResource", &place, &e))?;
                }
                Ok(arn)
            }
            Action::Delete => {
                let req = self.sm.delete_secret().secret_id(&id);
                let req = match self.deletion {
                    Deletion::Recoverable(days) => req.recovery_window_in_days(days),
                    Deletion::Force => req.force_delete_without_recovery(true),
                };
                req.send()
                    .await
                    .map_err(|e| failed("secretsmanager DeleteSecret", &place, &e))?;
                Ok(c.arn.clone())
            }
            Action::Unchanged | Action::Leftover => Ok(c.arn.clone()),
        }
    }

    async fn run_parameter(self) -> std::result::Result<Option<String>, String> {
        use aws_sdk_ssm::types::{ParameterTier, ParameterType, ResourceTypeForTagging, Tag};
        let place = self.place.clone();
        let c = &self.change;
        let value = match &self.value {
            Some(Payload::Text(s)) => Zeroizing::new(s.to_string()),
            Some(Payload::Binary(_)) => return Err("Parameter Store holds text only".into()),
            None => Zeroizing::new(String::new()),
        };
        let tag = |(k, v): &(String, String)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .expect("key and value are set")
        };
        match c.action {
            Action::Create | Action::Restore | Action::Update => {
                let create = c.action != Action::Update;
                // A new key or description is a write of the value (a new version).
                let write = create
                    || c.value_changed
                    || c.retyped
                    || c.drift.kms_key_id.is_some()
                    || c.drift.description.is_some();
                if write {
                    let put = || {
                        let mut req = self
                            .ssm
                            .put_parameter()
                            .name(&c.name)
                            .value(value.as_str())
                            .r#type(ParameterType::SecureString)
                            .set_key_id(c.put_key.clone())
                            .set_description(c.put_description.clone())
                            .overwrite(!create);
                        if c.advanced {
                            req = req.tier(ParameterTier::Advanced);
                        }
                        // AWS takes tags only on a parameter's first write.
                        if create {
                            for t in &self.tags {
                                req = req.tags(tag(t));
                            }
                        }
                        // coffer retries itself, looking first whether the write landed.
                        req.customize().config_override(
                            aws_sdk_ssm::config::Builder::default()
                                .retry_config(aws_config::retry::RetryConfig::disabled()),
                        )
                    };
                    // Landed: a version after the one planned on, holding this value. (With
                    // the value alone, a write of settings would look done before it is.)
                    let planned: i64 = c
                        .version
                        .as_deref()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    let landed = || async {
                        let got = self
                            .ssm
                            .get_parameter()
                            .name(&c.name)
                            .with_decryption(true)
                            .send()
                            .await
                            .ok()?
                            .parameter?;
                        let secure = got.r#type() == Some(&ParameterType::SecureString);
                        Some(
                            secure
                                && got.version() > planned
                                && got.value().is_some_and(|v| v == value.as_str()),
                        )
                    };
                    retry_checked(
                        RETRIES,
                        || async { put().send().await.map(|_| ()) },
                        || async { landed().await.unwrap_or(false) },
                        transient,
                    )
                    .await
                    .map_err(|e| failed("ssm PutParameter", &place, &e))?;
                }
                if !create && !c.drift.tag.is_empty() {
                    self.ssm
                        .add_tags_to_resource()
                        .resource_type(ResourceTypeForTagging::Parameter)
                        .resource_id(&c.name)
                        .set_tags(Some(c.drift.tag.iter().map(tag).collect()))
                        .send()
                        .await
                        .map_err(|e| failed("ssm AddTagsToResource", &place, &e))?;
                }
                if !create && !c.drift.untag.is_empty() {
                    self.ssm
                        .remove_tags_from_resource()
                        .resource_type(ResourceTypeForTagging::Parameter)
                        .resource_id(&c.name)
                        .set_tag_keys(Some(c.drift.untag.clone()))
                        .send()
                        .await
                        .map_err(|e| failed("ssm RemoveTagsFromResource", &place, &e))?;
                }
                Ok(c.arn.clone())
            }
            Action::Delete => {
                match self.ssm.delete_parameter().name(&c.name).send().await {
                    Ok(_) => Ok(c.arn.clone()),
                    // Already gone is what a delete wants.
                    Err(e) if code(&e) == Some("ParameterNotFound") => Ok(c.arn.clone()),
                    Err(e) => Err(failed("ssm DeleteParameter", &place, &e)),
                }
            }
            Action::Unchanged | Action::Leftover => Ok(c.arn.clone()),
        }
    }
}

/// The changes to apply whose task ended without an outcome (it panicked), as failures:
/// never left out of the count as if they had been made.
fn unreported(plan: &Plan, done: &HashSet<usize>) -> Vec<(usize, Outcome)> {
    plan.changes
        .iter()
        .enumerate()
        .filter(|(i, c)| {
            !done.contains(i) && !matches!(c.action, Action::Unchanged | Action::Leftover)
        })
        .map(|(i, c)| {
            let outcome = Outcome {
                name: c.name.clone(),
                action: c.action,
                result: Err(
                    "coffer failed while applying it (a bug; it may or may not have been made)"
                        .into(),
                ),
            };
            (i, outcome)
        })
        .collect()
}

/// `secretsmanager PutSecretValue in REGION (account A, profile P): reason`: a failed
/// write, as the report lists it beside the name.
fn failed<E>(
    operation: &str,
    place: &str,
    e: &aws_sdk_kms::error::SdkError<E, aws_sdk_kms::config::http::HttpResponse>,
) -> String
where
    E: aws_sdk_kms::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let service = if operation.starts_with("ssm") {
        "Parameter Store"
    } else {
        "Secrets Manager"
    };
    format!("{operation} {place}: {}", reason(e, service))
}

/// Attempts of a Parameter Store write, the first included.
const RETRIES: u32 = 3;

/// Whether a failed call may succeed when made again: no answer, throttling, or a
/// server-side error.
fn transient<E: aws_sdk_kms::error::ProvideErrorMetadata>(
    e: &aws_sdk_kms::error::SdkError<E, aws_sdk_kms::config::http::HttpResponse>,
) -> bool {
    use aws_sdk_kms::error::SdkError;
    match e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(se) => {
            se.raw().status().is_server_error()
                || matches!(
                    se.err().code(),
                    Some("ThrottlingException" | "TooManyUpdates" | "InternalServerError")
                )
        }
        _ => false,
    }
}

/// Make a write, and after a transient failure look whether it landed anyway (the answer
/// may be what was lost) before making it again: a Parameter Store write that is repeated
/// makes a second version of the same value.
async fn retry_checked<E, W, WF, L, LF>(
    attempts: u32,
    mut write: W,
    mut landed: L,
    transient: impl Fn(&E) -> bool,
) -> std::result::Result<(), E>
where
    W: FnMut() -> WF,
    WF: std::future::Future<Output = std::result::Result<(), E>>,
    L: FnMut() -> LF,
    LF: std::future::Future<Output = bool>,
{
    let mut attempt = 1;
    loop {
        match write().await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < attempts && transient(&e) => {
                tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
                if landed().await {
                    return Ok(());
                }
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
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

    fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn drift_compares_what_coffer_sets_and_leaves_hand_made_tags() {
        let settings = Settings {
            kms_key_id: Some("alias/app".into()),
            description: Some("web".into()),
            tags: tags(&[("team", "web"), ("env", "prod")]),
        };
        let in_step = Remote {
            description: Some("web".into()),
            kms_key: Some("arn:key/1".into()),
            tags: tags(&[
                ("team", "web"),
                ("env", "prod"),
                ("managed-by", "coffer"),
                ("coffer:source", "a.env"),
                ("coffer:target", "prod"),
                ("coffer:tags", "env+team"),
                ("owner", "by hand"),
            ]),
        };
        let wanted = |s: &Settings| s.tags_for("a.env", Some("prod"));
        assert!(drift(&settings, Some("arn:key/1"), &wanted(&settings), &in_step).is_empty());

        // Every setting differs: a new description, key, a changed and a dropped tag.
        let mut fewer = settings.clone();
        fewer.tags = tags(&[("team", "api")]);
        let d = drift(&fewer, Some("arn:key/2"), &wanted(&fewer), &in_step);
        assert_eq!(d.kms_key_id.as_deref(), Some("alias/app"));
        assert_eq!(d.description, None);
        assert_eq!(d.tag, tags(&[("team", "api"), ("coffer:tags", "team")]));
        // `owner` was never coffer's: it stays.
        assert_eq!(d.untag, vec!["env".to_string()]);
        assert_eq!(d.what(), "KMS key, tags");
        // A key that could not be resolved is not compared.
        assert_eq!(
            drift(&fewer, None, &wanted(&fewer), &in_step).kms_key_id,
            None
        );

        // No user tags any more: both go, and coffer's list says none; no description
        // asked: kept.
        let bare = Settings::default();
        let d = drift(&bare, None, &wanted(&bare), &in_step);
        assert_eq!(d.untag, vec!["env".to_string(), "team".into()]);
        assert_eq!(d.tag, tags(&[("coffer:tags", "-")]));
        assert!(d.description.is_none() && d.kms_key_id.is_none());
    }

    #[test]
    fn settings_are_checked_as_aws_takes_tags() {
        let with = |k: &str, v: &str| Settings {
            tags: tags(&[(k, v)]),
            ..Settings::default()
        };
        assert_eq!(with("team", "web ops/2").check(), None);
        for (k, v) in [
            ("team", "a,b"),
            ("", "x"),
            ("aws:x", "y"),
            ("coffer:x", "y"),
            ("managed-by", "me"),
            ("a+b", "c"),
            ("-", "c"),
        ] {
            assert!(with(k, v).check().is_some(), "{k}={v}");
        }
        assert!(with(&"k".repeat(129), "v").check().is_some());
        assert!(with("k", &"v".repeat(257)).check().is_some());
        let many = Settings {
            tags: (0..47).map(|i| (format!("k{i}"), "v".into())).collect(),
            ..Settings::default()
        };
        assert!(many.check().is_some());
    }

    #[test]
    fn a_change_without_an_outcome_is_a_failure() {
        let plan = Plan {
            service: Service::SecretsManager,
            changes: vec![
                Change::new(Action::Create, "a", None),
                Change::new(Action::Unchanged, "b", None),
                Change::new(Action::Update, "c", None),
                Change::new(Action::Leftover, "d", None),
                Change::new(Action::Delete, "e", None),
            ],
            desired: Vec::new(),
        };
        let missing = |done: &[usize]| -> Vec<String> {
            unreported(&plan, &done.iter().copied().collect())
                .into_iter()
                .map(|(_, o)| o.to_string())
                .collect()
        };
        assert_eq!(
            missing(&[0, 2]),
            ["not deleted: e: coffer failed while applying it (a bug; it may or may not have been made)"]
        );
        assert_eq!(missing(&[0, 2, 4]), Vec::<String>::new());
        assert_eq!(missing(&[]).len(), 3);
    }

    #[test]
    fn prune_owns_by_target_or_by_file_pushed_alone() {
        let made_by = |pairs: &[(&str, &str)]| tags(pairs);
        let file = made_by(&[("managed-by", "coffer"), ("coffer:source", "a.env")]);
        let target = made_by(&[
            ("managed-by", "coffer"),
            ("coffer:source", "a.env"),
            ("coffer:target", "prod"),
        ]);
        let by_hand = made_by(&[("coffer:source", "a.env")]);
        assert!(Owner::Source("a.env").owns(&file));
        assert!(!Owner::Source("b.env").owns(&file));
        assert!(!Owner::Source("a.env").owns(&target));
        assert!(Owner::Target("prod").owns(&target));
        assert!(!Owner::Target("staging").owns(&target));
        assert!(!Owner::Target("prod").owns(&file));
        assert!(!Owner::Source("a.env").owns(&by_hand));
    }

    #[test]
    fn plan_lines_name_every_reason_once() {
        let line = |action, tweak: &dyn Fn(&mut Change)| {
            let mut c = Change::new(action, "web/KEY", Some(0));
            tweak(&mut c);
            c.to_string()
        };
        assert_eq!(line(Action::Create, &|_| {}), "+ web/KEY");
        assert_eq!(
            line(Action::Create, &|c| c.advanced = true),
            "+ web/KEY (advanced tier)"
        );
        assert_eq!(
            line(Action::Restore, &|c| c.foreign = true),
            "+ web/KEY (restored from scheduled deletion; not created by coffer, so never pruned)"
        );
        assert_eq!(line(Action::Update, &|_| {}), "~ web/KEY (value changed)");
        assert_eq!(
            line(Action::Update, &|c| {
                c.value_changed = false;
                c.drift.untag = vec!["team".into()];
            }),
            "~ web/KEY (settings: tags)"
        );
        assert_eq!(
            line(Action::Update, &|c| c.retyped = true),
            "~ web/KEY (value changed; type becomes SecureString)"
        );
        assert_eq!(
            line(Action::Unchanged, &|c| c.advanced = true),
            "  web/KEY (unchanged)"
        );
        assert_eq!(line(Action::Delete, &|c| c.advanced = true), "- web/KEY");
    }

    #[test]
    fn a_write_whose_answer_was_lost_is_not_made_twice() {
        use std::cell::Cell;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let run = |fails: u32, lands: bool| {
            let (writes, looks) = (Cell::new(0), Cell::new(0));
            let res = rt.block_on(retry_checked(
                3,
                || {
                    writes.set(writes.get() + 1);
                    let n = writes.get();
                    async move {
                        if n <= fails {
                            Err("timeout")
                        } else {
                            Ok(())
                        }
                    }
                },
                || {
                    looks.set(looks.get() + 1);
                    async move { lands }
                },
                |e: &&str| *e == "timeout",
            ));
            (res, writes.get(), looks.get())
        };
        // The first write landed but its answer was lost: one look, no second write.
        assert_eq!(run(1, true), (Ok(()), 1, 1));
        // It did not land: written again.
        assert_eq!(run(1, false), (Ok(()), 2, 1));
        // Never answers: gives up after three writes.
        assert_eq!(run(9, false), (Err("timeout"), 3, 2));
    }
}
