//! The plan, a pure function of what is asked for and what AWS holds: which secrets or
//! parameters are created, restored, updated, left alone or deleted, and which settings
//! drift. No AWS call is made here.

use super::*;

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
    pub(super) version: Option<String>,
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
    pub(super) put_key: Option<String>,
    pub(super) put_description: Option<String>,
    pub(super) desired: Option<usize>,
}

impl Change {
    pub(super) fn new(action: Action, name: &str, desired: Option<usize>) -> Change {
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
    pub(super) desired: Vec<Desired>,
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

/// What one remote secret looks like, as listed.
pub(super) struct Listed {
    pub(super) arn: String,
    pub(super) deleted: bool,
    pub(super) managed: bool,
    pub(super) description: Option<String>,
    pub(super) kms_key: Option<String>,
    pub(super) tags: Vec<(String, String)>,
}

/// KMS keys as the plan compares them: ids, aliases and ARNs resolved to key ARNs.
pub(super) struct Keys {
    /// Each id that `DescribeKey` resolved, to its key ARN.
    pub(super) arns: HashMap<String, String>,
    /// What an unset key means: the service's AWS managed key.
    pub(super) default: &'static str,
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
    pub(super) fn owns(&self, tags: &[(String, String)]) -> bool {
        let tag = |k: &str| tags.iter().find(|(t, _)| t == k).map(|(_, v)| v.as_str());
        tag(MANAGED_BY.0) == Some(MANAGED_BY.1)
            && match self {
                Owner::Source(s) => tag(SOURCE_TAG) == Some(*s) && tag(TARGET_TAG).is_none(),
                Owner::Target(t) => tag(TARGET_TAG) == Some(*t),
            }
    }
}

/// Plan bringing a managed secret's or parameter's settings in step; a change of
/// settings alone makes an unchanged value an update. A KMS key that could not be
/// resolved on either side is not compared (and noted), rather than planned every run.
pub(super) fn settle(target: &Target, c: &mut Change, keys: &Keys, source: &str, now: Remote) {
    let settings = &target.settings;
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
    let tags = settings.tags_for(source, target.name.as_deref());
    c.drift = drift(settings, wanted, &tags, &now);
    if c.action == Action::Unchanged && !c.drift.is_empty() {
        c.action = Action::Update;
        c.value_changed = false;
    }
}

/// The changes that bring Secrets Manager in step with `desired`, from what it holds:
/// every secret under the prefix as `listed`, the values (and version ids) of the live
/// ones asked for, and the KMS keys resolved. With `prune`, the secrets `prune` owns that
/// are no longer asked for are deleted.
pub(super) fn secret_changes(
    target: &Target,
    desired: &[Desired],
    listed: &HashMap<String, Listed>,
    remote: &HashMap<String, (Payload, Option<String>)>,
    keys: &Keys,
    prune: Option<Owner<'_>>,
) -> Vec<Change> {
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
                settle(target, &mut c, keys, &d.source, now);
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
    changes
}

/// The changes that bring Parameter Store in step with `desired`, from what it holds:
/// every parameter under the path as `remote`, which of them coffer manages, the tags
/// known of those, and the KMS keys resolved. With `prune`, the parameters `prune` owns
/// that are no longer asked for are deleted.
pub(super) fn parameter_changes(
    target: &Target,
    desired: &[Desired],
    remote: &HashMap<String, Parameter>,
    managed: &HashSet<String>,
    tags: &HashMap<String, Vec<(String, String)>>,
    keys: &Keys,
    prune: Option<Owner<'_>>,
) -> Vec<Change> {
    let settings = &target.settings;
    let wanted: HashSet<&str> = desired.iter().map(|d| d.name.as_str()).collect();
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
                settle(target, &mut c, keys, &d.source, now);
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
    changes
}

pub(super) struct Parameter {
    pub(super) value: Payload,
    pub(super) version: i64,
    pub(super) secure: bool,
    pub(super) arn: Option<String>,
    pub(super) advanced: bool,
    pub(super) description: Option<String>,
    pub(super) key_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn want(name: &str, value: &str) -> Desired {
        Desired {
            name: name.into(),
            key_path: Vec::new(),
            value: Payload::Text(Zeroizing::new(value.into())),
            source: "a.env".into(),
            token_key: Arc::new(SecretBox::new(Box::new([7u8; 32]))),
        }
    }

    fn target(service: Service) -> Target {
        Target {
            name: None,
            service,
            prefix: "app/".into(),
            settings: Settings::default(),
        }
    }

    /// A change as one line: name, action, and what else it says.
    fn line(c: &Change) -> String {
        let mut l = format!("{} {:?}", c.name, c.action);
        for (set, what) in [
            (c.foreign, "foreign"),
            (c.retyped, "retyped"),
            (c.advanced, "advanced"),
            (
                c.action == Action::Update && !c.value_changed,
                "settings-only",
            ),
        ] {
            if set {
                l.push(' ');
                l.push_str(what);
            }
        }
        if let Some(v) = &c.version {
            l.push_str(&format!(" replaces {v}"));
        }
        l
    }

    /// Secrets Manager, as listed, against what a file asks for: every action the plan
    /// can take, and what pruning deletes (only what this file made and no longer asks
    /// for). No AWS call: the listing is given.
    #[test]
    fn secrets_are_planned_from_what_is_listed() {
        let target = target(Service::SecretsManager);
        let in_step = target.settings.tags_for("a.env", None);
        let other_file = Settings::default().tags_for("b.env", None);
        // (name, listed: deleted, managed, tags; value held)
        type Listing<'a> = (&'a str, bool, bool, &'a [(String, String)], Option<&'a str>);
        let listing: &[Listing] = &[
            ("app/restored", true, true, &in_step, None),
            ("app/same", false, true, &in_step, Some("v")),
            ("app/changed", false, true, &in_step, Some("old")),
            ("app/untagged", false, true, &[], Some("v")),
            ("app/by-hand", false, false, &[], Some("v")),
            ("app/gone", false, true, &in_step, Some("v")),
            ("app/other-file", false, true, &other_file, Some("v")),
        ];
        let mut listed = HashMap::new();
        let mut values = HashMap::new();
        for &(name, deleted, managed, tags, value) in listing {
            listed.insert(
                name.to_string(),
                Listed {
                    arn: format!("arn:{name}"),
                    deleted,
                    managed,
                    description: None,
                    kms_key: None,
                    tags: tags.to_vec(),
                },
            );
            if let Some(v) = value {
                let held = Payload::Text(Zeroizing::new(v.into()));
                values.insert(name.to_string(), (held, Some(format!("{name}-v1"))));
            }
        }
        let desired = vec![
            want("app/new", "v"),
            want("app/restored", "v"),
            want("app/same", "v"),
            want("app/changed", "new"),
            want("app/untagged", "v"),
            want("app/by-hand", "v"),
        ];
        let keys = Keys {
            arns: HashMap::new(),
            default: "alias/aws/secretsmanager",
        };
        let plan = |prune| -> Vec<String> {
            secret_changes(&target, &desired, &listed, &values, &keys, prune)
                .iter()
                .map(line)
                .collect()
        };
        let kept = [
            "app/new Create",
            "app/restored Restore",
            "app/same Unchanged replaces app/same-v1",
            "app/changed Update replaces app/changed-v1",
            "app/untagged Update settings-only replaces app/untagged-v1",
            "app/by-hand Unchanged foreign replaces app/by-hand-v1",
        ];
        assert_eq!(plan(None), kept);
        let pruned = plan(Some(Owner::Source("a.env")));
        assert_eq!(pruned[..kept.len()], kept);
        assert_eq!(pruned[kept.len()..], ["app/gone Delete"]);
    }

    /// Parameter Store, as listed, against what a file asks for: a String parameter
    /// becomes a SecureString, a long value goes to the Advanced tier, tags are known
    /// only of parameters coffer manages, and pruning deletes only those it owns.
    #[test]
    fn parameters_are_planned_from_what_is_listed() {
        let target = target(Service::Ssm);
        let in_step = target.settings.tags_for("a.env", None);
        // (name, secure, value held, managed)
        let listing: &[(&str, bool, &str, bool)] = &[
            ("/app/same", true, "v", true),
            ("/app/plain", false, "v", true),
            ("/app/changed", true, "old", true),
            ("/app/by-hand", true, "v", false),
            ("/app/gone", true, "v", true),
            ("/app/not-ours", true, "v", false),
        ];
        let mut remote = HashMap::new();
        let mut managed = HashSet::new();
        let mut tags = HashMap::new();
        for &(name, secure, value, ours) in listing {
            remote.insert(
                name.to_string(),
                Parameter {
                    value: Payload::Text(Zeroizing::new(value.into())),
                    version: 3,
                    secure,
                    arn: Some(format!("arn:{name}")),
                    advanced: false,
                    description: None,
                    key_id: None,
                },
            );
            if ours {
                managed.insert(name.to_string());
                tags.insert(name.to_string(), in_step.clone());
            }
        }
        let long = "x".repeat(5000);
        let desired = vec![
            want("/app/new", "v"),
            want("/app/long", &long),
            want("/app/same", "v"),
            want("/app/plain", "v"),
            want("/app/changed", "new"),
            want("/app/by-hand", "v"),
        ];
        let keys = Keys {
            arns: HashMap::new(),
            default: "alias/aws/ssm",
        };
        let plan = |prune| -> Vec<String> {
            parameter_changes(&target, &desired, &remote, &managed, &tags, &keys, prune)
                .iter()
                .map(line)
                .collect()
        };
        let kept = [
            "/app/new Create",
            "/app/long Create advanced",
            "/app/same Unchanged replaces 3",
            "/app/plain Update retyped replaces 3",
            "/app/changed Update replaces 3",
            "/app/by-hand Unchanged foreign replaces 3",
        ];
        assert_eq!(plan(None), kept);
        let pruned = plan(Some(Owner::Source("a.env")));
        assert_eq!(pruned[..kept.len()], kept);
        assert_eq!(pruned[kept.len()..], ["/app/gone Delete"]);
    }
}
