//! Changing the master keys of encrypted files: what changes between the keys a file has
//! and those its creation rule names, and the file re-keyed.
//!
//! A file that only gains keys keeps its data key: the same key is wrapped for the new
//! ones and the values stay byte for byte, so the diff is the metadata. A file that loses a
//! key gets a new data key and every value encrypted again, because whoever held the
//! removed key may have kept the old data key.

use crate::config::CreationRule;
use crate::keys::kms::KmsSpec;
use crate::keys::Recipients;
use crate::keys::Wrappers;
use crate::metadata;
use crate::sops::{self, Keyed, Opened, Sealed};
use crate::{Error, Result};

/// A master key as plans and `access` show it: an age recipient, or `kms:ARN` (with
/// `+ROLE` when a role is assumed for it).
pub fn label_kms(k: &KmsSpec) -> String {
    match &k.role {
        Some(r) => format!("kms:{}+{r}", k.arn),
        None => format!("kms:{}", k.arn),
    }
}

/// Every master key of `r`, labelled: age recipients, then `kms:…`, then `pgp:FP`; keys
/// of Shamir key groups as `group N: …`, from 0 as sops counts them.
pub fn labels(r: &Recipients) -> Vec<String> {
    if !r.groups.is_empty() {
        return r
            .groups
            .iter()
            .enumerate()
            .flat_map(|(i, g)| {
                labels(g)
                    .into_iter()
                    .map(move |l| format!("group {i}: {l}"))
            })
            .collect();
    }
    r.age
        .iter()
        .map(|a| metadata::label_age(a))
        .chain(r.kms.iter().map(label_kms))
        .chain(r.pgp.iter().map(|p| format!("pgp:{p}")))
        .collect()
}

/// A label without its `group N: ` prefix: the key itself.
pub fn key_of_label(label: &str) -> &str {
    match label
        .strip_prefix("group ")
        .and_then(|r| r.split_once(": "))
    {
        Some((n, key)) if n.bytes().all(|b| b.is_ascii_digit()) => key,
        _ => label,
    }
}

/// When a file gets a new data key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// When a master key is removed (the default).
    OnRemoval,
    /// Never: `--no-rotate` (the removed key may still open older copies).
    Never,
    /// Always: `rotate`.
    Always,
}

/// What re-keying a file does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyChange {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// A new data key, every value encrypted again.
    pub rotate: bool,
}

impl KeyChange {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && !self.rotate
    }
}

/// What changes when a file wrapped for `current` is made to be wrapped for `wanted`.
pub fn change(current: &Recipients, wanted: &Recipients, rotation: Rotation) -> KeyChange {
    let added = missing_from(wanted, current);
    let removed = missing_from(current, wanted);
    let rotate = match rotation {
        Rotation::OnRemoval => !removed.is_empty(),
        Rotation::Never => false,
        Rotation::Always => true,
    };
    KeyChange {
        added,
        removed,
        rotate,
    }
}

/// The master keys of `these` that `others` lacks, as plans name them; group by group
/// (`group N: …`) where either is split over Shamir key groups.
fn missing_from(these: &Recipients, others: &Recipients) -> Vec<String> {
    if these.groups.is_empty() && others.groups.is_empty() {
        return missing_flat(these, others);
    }
    let theirs = others.groups_or_self();
    let none = Recipients::default();
    these
        .groups_or_self()
        .iter()
        .enumerate()
        .flat_map(|(i, g)| {
            missing_flat(g, theirs.get(i).unwrap_or(&none))
                .into_iter()
                .map(move |l| format!("group {i}: {l}"))
        })
        .collect()
}

fn missing_flat(these: &Recipients, others: &Recipients) -> Vec<String> {
    these
        .age
        .iter()
        .filter(|r| !others.age.contains(r))
        .map(|r| metadata::label_age(r))
        .chain(
            these
                .kms
                .iter()
                .filter(|k| !others.kms.iter().any(|o| o.same_key(k)))
                .map(label_kms),
        )
        .chain(
            these
                .pgp
                .iter()
                .filter(|p| !others.pgp.contains(p))
                .map(|p| format!("pgp:{p}")),
        )
        .collect()
}

/// How a file's metadata differs from its creation rule: the master keys, and the
/// settings that say what is encrypted. The rules are the truth: a file committed with
/// other settings (by someone without a key, say) is put back to them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Drift {
    pub keys: KeyChange,
    /// The settings that differ, named as the rules file names them.
    pub settings: Vec<&'static str>,
}

impl Drift {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.settings.is_empty()
    }

    /// One line: what differs.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.settings.iter().map(|s| s.to_string()).collect();
        parts.extend(self.keys.added.iter().map(|k| format!("+ {k}")));
        parts.extend(self.keys.removed.iter().map(|k| format!("- {k}")));
        if self.keys.added.is_empty() && self.keys.removed.is_empty() && self.keys.rotate {
            parts.push("a key entry twice".into());
        }
        parts.join(", ")
    }
}

/// The keys `rule` names, as `current` would hold them: a rule's KMS key has no
/// encryption context (coffer's rules cannot give one), so a file's context for the same
/// key is kept rather than counted as a different key. `None` when the rule names none.
fn rule_keys_for(current: &Recipients, rule: &CreationRule) -> Result<Option<Recipients>> {
    let mut wanted = rule.recipients()?;
    if wanted.is_empty() {
        return Ok(None);
    }
    let flat = |r: &Recipients| r.groups_or_self();
    let have: Vec<KmsSpec> = flat(current).into_iter().flat_map(|g| g.kms).collect();
    let with_context = |k: &mut KmsSpec| {
        if k.context.is_empty() {
            if let Some(c) = have.iter().find(|c| c.arn == k.arn && c.role == k.role) {
                k.context = c.context.clone();
            }
        }
    };
    wanted.kms.iter_mut().for_each(with_context);
    for g in &mut wanted.groups {
        g.kms.iter_mut().for_each(with_context);
    }
    Ok(Some(wanted))
}

/// What differs between `meta` and `rule`. Two entries for one age recipient are drift
/// too: the second may hold someone else's copy of the data key under a borrowed name.
pub fn drift(meta: &metadata::Metadata, rule: &CreationRule) -> Result<Drift> {
    let current = Recipients::of(meta);
    let wanted = rule_keys_for(&current, rule)?;
    // A rule that names no keys says nothing about them (they come from elsewhere).
    let mut keys = match &wanted {
        Some(wanted) => change(&current, wanted, Rotation::OnRemoval),
        None => KeyChange::default(),
    };
    if !metadata::duplicate_entries(meta).is_empty() {
        keys.rotate = true;
    }
    let mut settings = Vec::new();
    if meta.selector != rule.selector.clone().unwrap_or_default() {
        settings.push(match rule.selector.as_ref().unwrap_or(&meta.selector) {
            metadata::Selector::UnencryptedSuffix(_) => "unencrypted_suffix",
            metadata::Selector::EncryptedSuffix(_) => "encrypted_suffix",
            metadata::Selector::UnencryptedRegex(_) => "unencrypted_regex",
            metadata::Selector::EncryptedRegex(_) => "encrypted_regex",
        });
    }
    if meta.unencrypted_comment_regex != rule.unencrypted_comment_regex {
        settings.push("unencrypted_comment_regex");
    }
    if meta.encrypted_comment_regex != rule.encrypted_comment_regex {
        settings.push("encrypted_comment_regex");
    }
    if meta.mac_only_encrypted != rule.mac_only_encrypted {
        settings.push("mac_only_encrypted");
    }
    Ok(Drift { keys, settings })
}

/// `old`'s file keyed as `rule` says, to encrypt its plaintext with: its data key kept
/// unless `drift` removes a key (then a new one), its master keys those of the rule.
/// The caller encrypts (`Keyed::encrypt`, or into a file with `Keyed::encrypt_into`,
/// which lets a large plaintext's document go where the canonical layout replaces it).
pub fn to_rule(old: &Keyed, rule: &CreationRule, drift: &Drift, with: &Wrappers) -> Result<Keyed> {
    old.check_rewritable()?;
    let key = if drift.keys.rotate {
        crate::cipher::DataKey::generate()
    } else {
        old.key.clone()
    };
    let mut md = old.meta.clone();
    if !drift.keys.is_empty() {
        let current = Recipients::of(&old.meta);
        let Some(wanted) = rule_keys_for(&current, rule)? else {
            return Err(Error::NoRecipients {
                file: old.file.clone(),
            });
        };
        let foreign =
            !md.foreign_keys.is_empty() || md.groups.iter().any(|g| !g.foreign_keys.is_empty());
        if foreign {
            return Err(Error::Unsupported {
                file: old.file.clone(),
                what: "it has GCP KMS, Azure Key Vault, Vault or HuaweiCloud KMS keys, which coffer cannot wrap a new data key for; change its keys with sops".into(),
            });
        }
        let fresh = sops::new_metadata(&key, &wanted, with, None, None)?;
        md.take_keys(fresh);
    }
    md.selector = rule.selector.clone().unwrap_or_default();
    md.unencrypted_comment_regex = rule.unencrypted_comment_regex.clone();
    md.encrypted_comment_regex = rule.encrypted_comment_regex.clone();
    md.mac_only_encrypted = rule.mac_only_encrypted;
    md.lastmodified = metadata::now_rfc3339();
    md.version = Some(metadata::SOPS_VERSION.to_string());
    Ok(Keyed {
        file: old.file.clone(),
        format: old.format,
        meta: md,
        key,
        rewrite_future: old.rewrite_future,
    })
}

/// The master keys of a merged file: ours, with the keys theirs added since base, without
/// the keys theirs removed since base, so that a revocation on either side survives the
/// merge. Files split over key groups keep ours' groups.
pub fn merged_keys(base: &Recipients, ours: &Recipients, theirs: &Recipients) -> Recipients {
    if !base.groups.is_empty() || !ours.groups.is_empty() || !theirs.groups.is_empty() {
        return ours.clone();
    }
    Recipients {
        age: merged_list(&base.age, &ours.age, &theirs.age, |a, b| a == b),
        kms: merged_list(&base.kms, &ours.kms, &theirs.kms, KmsSpec::same_key),
        pgp: merged_list(&base.pgp, &ours.pgp, &theirs.pgp, |a, b| a == b),
        ..ours.clone()
    }
}

/// One kind of key merged three ways: ours, less what theirs removed since base, plus
/// what theirs added since base.
fn merged_list<T: Clone>(
    base: &[T],
    ours: &[T],
    theirs: &[T],
    same: impl Fn(&T, &T) -> bool,
) -> Vec<T> {
    let has = |list: &[T], k: &T| list.iter().any(|o| same(o, k));
    let mut out: Vec<T> = ours
        .iter()
        .filter(|k| !has(base, k) || has(theirs, k))
        .cloned()
        .collect();
    out.extend(
        theirs
            .iter()
            .filter(|k| !has(base, k) && !has(ours, k))
            .cloned(),
    );
    out
}

/// `opened` wrapped for `wanted`: the same data key re-wrapped (entries of keys that stay
/// are kept as they are), or, with `rotate`, a new data key for every value. Checked as
/// every write is.
pub fn rekey(
    opened: &Opened,
    wanted: &Recipients,
    rotate: bool,
    with: &Wrappers,
) -> Result<Sealed> {
    opened.check_rewritable()?;
    let split = opened.meta.is_shamir() || !wanted.groups.is_empty();
    // A new split would leave keys coffer cannot wrap for without a share.
    if (rotate || split)
        && opened
            .meta
            .groups
            .iter()
            .any(|g| !g.foreign_keys.is_empty())
        || split && !opened.meta.foreign_keys.is_empty()
    {
        return Err(Error::Unsupported {
            file: opened.file.clone(),
            what: "it has GCP KMS, Azure Key Vault, Vault or HuaweiCloud KMS keys, which coffer cannot wrap a new share for; change its key groups with sops".into(),
        });
    }
    let mut md = opened.meta.clone();
    if md.unknown_major().is_some() {
        md.version = Some(metadata::SOPS_VERSION.to_string());
    }
    if rotate {
        let key = crate::cipher::DataKey::generate();
        let fresh = sops::new_metadata(&key, wanted, with, None, None)?;
        md.take_keys(fresh);
        md.lastmodified = metadata::now_rfc3339();
        md.version = Some(metadata::SOPS_VERSION.to_string());
        let plaintext = opened.render()?;
        let mut sealed =
            sops::encrypt_plain(&opened.file, opened.format, plaintext.bytes, &key, &mut md)?;
        sealed.fallback = sealed.fallback.or(plaintext.fallback);
        return Ok(sealed);
    }
    // Shares are never re-wrapped for the keys of one group alone: the same data key is
    // split anew over the groups wanted, as sops's updatekeys and groups do.
    if split {
        let fresh = sops::new_metadata(&opened.key, wanted, with, None, None)?;
        md.take_keys(fresh);
        return opened.with_metadata(&md);
    }
    // The entries of keys the file keeps stay as they are.
    let wrapped = wanted.wrap(opened.key.expose(), with, Some(&opened.meta))?;
    md.age = wrapped.age;
    md.kms = wrapped.kms;
    md.pgp = wrapped.pgp;
    opened.with_metadata(&md)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kms(arn: &str) -> KmsSpec {
        KmsSpec {
            arn: arn.into(),
            role: None,
            context: Vec::new(),
            aws_profile: None,
        }
    }

    #[test]
    fn growth_rewraps_and_removal_rotates() {
        let now = Recipients {
            age: vec!["age1a".into(), "age1b".into()],
            kms: vec![kms("arn:k1")],
            ..Recipients::default()
        };
        let grown = Recipients {
            age: vec!["age1a".into(), "age1b".into(), "age1c".into()],
            kms: vec![kms("arn:k1"), kms("arn:k2")],
            ..Recipients::default()
        };
        let c = change(&now, &grown, Rotation::OnRemoval);
        assert_eq!(c.added, ["age1c", "kms:arn:k2"]);
        assert!(c.removed.is_empty() && !c.rotate);

        let fewer = Recipients {
            age: vec!["age1a".into()],
            ..Recipients::default()
        };
        let c = change(&now, &fewer, Rotation::OnRemoval);
        assert_eq!(c.removed, ["age1b", "kms:arn:k1"]);
        assert!(c.rotate);
        assert!(!change(&now, &fewer, Rotation::Never).rotate);

        // The same keys: nothing, unless a rotation is asked for.
        assert!(change(&now, &now, Rotation::OnRemoval).is_empty());
        assert!(change(&now, &now, Rotation::Always).rotate);

        // A profile is how a key is reached, not which key it is; a context is.
        let mut profiled = now.clone();
        profiled.kms[0].aws_profile = Some("prod".into());
        assert!(change(&now, &profiled, Rotation::OnRemoval).is_empty());
        let mut contexted = now.clone();
        contexted.kms[0].context = vec![("app".into(), "web".into())];
        assert!(change(&now, &contexted, Rotation::OnRemoval).rotate);
    }

    #[test]
    fn a_merge_keeps_what_either_side_removed_and_added() {
        let r = |age: &[&str]| Recipients {
            age: age.iter().map(|s| s.to_string()).collect(),
            ..Recipients::default()
        };
        let cases = [
            // base, ours, theirs, merged
            (&["a", "b"][..], &["a", "b"][..], &["a"][..], &["a"][..]),
            (&["a", "b"], &["a"], &["a", "b"], &["a"]),
            (&["a"], &["a"], &["a", "c"], &["a", "c"]),
            (&["a", "b"], &["a", "b", "c"], &["a"], &["a", "c"]),
            (&["a"], &["a", "c"], &["a", "c"], &["a", "c"]),
        ];
        for (base, ours, theirs, want) in cases {
            assert_eq!(
                merged_keys(&r(base), &r(ours), &r(theirs)).age,
                r(want).age,
                "{base:?} {ours:?} {theirs:?}"
            );
        }
    }
}
