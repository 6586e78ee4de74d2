//! Creation rules: `.coffer.yaml` (or, where there is none, `.sops.yaml`), found by
//! walking up from the file. The first rule whose `path_regex` matches decides the
//! master keys and the encryption selector for a new file.

use std::path::{Path, PathBuf};

use regex::Regex;

use crate::metadata::Selector;
use crate::tree::ScalarType;
use crate::tree::Value;
use crate::{Error, Result};

mod push;
use push::push_targets;
pub use push::{BadTarget, PushTarget, TargetLayout};

pub const CONFIG_NAMES: [&str; 2] = [".coffer.yaml", ".sops.yaml"];

#[derive(Debug, Default, Clone)]
pub struct CreationRule {
    pub path_regex: Option<String>,
    pub age: Vec<String>,
    pub kms: Vec<String>,
    /// PGP key fingerprints.
    pub pgp: Vec<String>,
    pub selector: Option<Selector>,
    pub unencrypted_comment_regex: Option<String>,
    pub encrypted_comment_regex: Option<String>,
    pub mac_only_encrypted: bool,
    pub aws_profile: Option<String>,
    /// Shamir key groups (more than one), each a list of age recipients and KMS keys;
    /// `age` and `kms` are then empty.
    pub groups: Vec<KeyGroup>,
    /// How many groups open the data key; all of them when unset.
    pub shamir_threshold: Option<usize>,
    /// Why coffer cannot use this rule (e.g. Shamir key groups). Reported only when the
    /// rule is the one that matches, so one such rule does not break a whole repository.
    pub unsupported: Option<String>,
}

/// One Shamir key group of a creation rule.
#[derive(Debug, Clone, Default)]
pub struct KeyGroup {
    pub age: Vec<String>,
    pub kms: Vec<String>,
    pub pgp: Vec<String>,
}

/// Master keys named on a command line (or in its environment variables), as the
/// user wrote them.
#[derive(Clone, Debug, Default)]
pub struct KeyLists {
    pub age: Vec<String>,
    /// `ARN[+ROLE_ARN]` each.
    pub kms: Vec<String>,
    pub pgp: Vec<String>,
    /// The KMS encryption context for the `kms` keys.
    pub context: Vec<(String, String)>,
    /// The AWS profile the `kms` keys are reached with.
    pub aws_profile: Option<String>,
}

impl KeyLists {
    pub fn is_empty(&self) -> bool {
        self.age.is_empty() && self.kms.is_empty() && self.pgp.is_empty()
    }
}

/// Master keys for a new file, for both front ends: keys named on the command line
/// replace the creation rule's entirely, as in sops; without either, none.
pub fn new_file_recipients(
    given: &KeyLists,
    rule: Option<&CreationRule>,
) -> Result<crate::keys::Recipients> {
    if given.is_empty() {
        return match rule {
            Some(r) => r.recipients(),
            None => Ok(crate::keys::Recipients::default()),
        };
    }
    Ok(crate::keys::Recipients {
        age: given.age.clone(),
        kms: given
            .kms
            .iter()
            .map(|k| {
                crate::keys::kms::KmsSpec::parse(k, &given.context, given.aws_profile.as_deref())
            })
            .collect::<Result<_>>()?,
        pgp: given.pgp.clone(),
        ..Default::default()
    })
}

impl CreationRule {
    /// The rule's master keys (`kms` entries are `ARN[+ROLE]`, with the rule's profile).
    pub fn recipients(&self) -> Result<crate::keys::Recipients> {
        // A key named twice (an alias and the key written out, say) is one key.
        fn once(list: impl IntoIterator<Item = String>) -> Vec<String> {
            let mut out: Vec<String> = Vec::new();
            for k in list {
                if !out.contains(&k) {
                    out.push(k);
                }
            }
            out
        }
        let of = |age: &[String],
                  kms: &[String],
                  pgp: &[String]|
         -> Result<crate::keys::Recipients> {
            Ok(crate::keys::Recipients {
                age: once(age.iter().cloned()),
                // sops stores a fingerprint without the spaces people write it with.
                pgp: once(pgp.iter().map(|p| p.split_whitespace().collect())),
                kms: once(kms.iter().cloned())
                    .iter()
                    .map(|k| crate::keys::kms::KmsSpec::parse(k, &[], self.aws_profile.as_deref()))
                    .collect::<Result<_>>()?,
                ..Default::default()
            })
        };
        if self.groups.is_empty() {
            return of(&self.age, &self.kms, &self.pgp);
        }
        Ok(crate::keys::Recipients {
            groups: self
                .groups
                .iter()
                .map(|g| of(&g.age, &g.kms, &g.pgp))
                .collect::<Result<_>>()?,
            threshold: self.shamir_threshold.unwrap_or(self.groups.len()),
            ..Default::default()
        })
    }
}

#[derive(Debug)]
pub struct Config {
    pub file: PathBuf,
    pub rules: Vec<(Option<Regex>, CreationRule)>,
    /// `destination_rules:`: where `sops publish` sends which files.
    pub destinations: Vec<DestinationRule>,
    /// `push:`: where `coffer push` without a file sends which files.
    pub push: Vec<PushTarget>,
}

/// One entry of `destination_rules:`.
#[derive(Debug)]
pub struct DestinationRule {
    pub path_regex: Option<Regex>,
    /// Where the file goes, or why the rule names no one place.
    pub destination: std::result::Result<Destination, String>,
    /// `recreation_rule`: the keys the file is encrypted for anew before it is
    /// published; `None` or a rule without keys: the file goes as it is.
    pub recreation: Option<CreationRule>,
    pub omit_extensions: bool,
}

/// A place `sops publish` sends files to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    S3 { bucket: String, prefix: String },
    Gcs { bucket: String, prefix: String },
    Vault { path: String },
}

/// The nearest config file at or above `dir`: `.coffer.yaml` wins over `.sops.yaml`
/// in the same directory, and a nearer directory wins over a farther one.
pub fn find(dir: &Path) -> Option<PathBuf> {
    let mut cur = Some(dir);
    while let Some(d) = cur {
        for name in CONFIG_NAMES {
            let p = d.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
        cur = d.parent();
    }
    None
}

/// A list given as a YAML list or as one comma-separated string, as sops accepts.
fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Scalar(_, s)) => s
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
        Some(Value::Seq(items)) => items.iter().flat_map(|i| string_list(Some(i))).collect(),
        _ => Vec::new(),
    }
}

/// The KMS keys of a key group: `ARN[+ROLE]` strings, or sops's maps (`arn`, `role`).
/// `Err` names what coffer cannot take from a map yet.
fn group_kms(v: Option<&Value>) -> std::result::Result<Vec<String>, &'static str> {
    let Some(Value::Seq(items)) = v else {
        return Ok(string_list(v));
    };
    let mut out = Vec::new();
    for item in items {
        match item {
            Value::Map(_) => {
                let arn = scalar(item, "arn").ok_or("a KMS key in key_groups has no arn")?;
                for unsupported in ["context", "aws_profile"] {
                    if get(item, unsupported)
                        .is_some_and(|v| !matches!(v, Value::Map(m) if m.is_empty()))
                    {
                        return Err(match unsupported {
                            "context" => "a KMS key in key_groups sets context, which coffer does not take there yet",
                            _ => "a KMS key in key_groups sets aws_profile, which coffer does not take there yet",
                        });
                    }
                }
                out.push(match scalar(item, "role") {
                    Some(role) if !role.is_empty() => format!("{arn}+{role}"),
                    _ => arn,
                });
            }
            other => out.extend(string_list(Some(other))),
        }
    }
    Ok(out)
}

fn get<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    match v {
        Value::Map(e) => e.iter().find(|(k, _)| k == key).map(|(_, v)| v),
        _ => None,
    }
}

fn scalar(v: &Value, key: &str) -> Option<String> {
    match get(v, key) {
        Some(Value::Scalar(ty, s)) if *ty != ScalarType::Null => Some(s.to_string()),
        _ => None,
    }
}

impl Config {
    pub fn load(file: &Path) -> Result<Config> {
        let bytes = std::fs::read(file).map_err(|e| Error::io(file, e))?;
        let text = String::from_utf8(bytes).map_err(|_| Error::Config {
            file: file.display().to_string(),
            message: "not UTF-8 text".into(),
        })?;
        Config::parse(file, &text)
    }

    /// The config `file` holding `text` would be.
    pub fn parse(file: &Path, text: &str) -> Result<Config> {
        let name = file.display().to_string();
        let bad = |message: String| Error::Config {
            file: name.clone(),
            message,
        };
        // Read as sops reads it: anchors, aliases and merge keys resolved.
        let root = crate::format::yaml_data::read(text).map_err(|error| Error::Syntax {
            file: name.clone(),
            error,
        })?;
        let mut rules = Vec::new();
        let list = match get(&root, "creation_rules") {
            Some(Value::Seq(items)) => items.as_slice(),
            None => &[],
            Some(_) => return Err(bad("creation_rules must be a list".into())),
        };
        for (i, r) in list.iter().enumerate() {
            rules.push(parse_rule(i, r, &bad)?);
        }
        let destinations = match get(&root, "destination_rules") {
            Some(Value::Seq(items)) => items
                .iter()
                .enumerate()
                .map(|(i, r)| parse_destination(i, r, &bad))
                .collect::<Result<Vec<_>>>()?,
            None => Vec::new(),
            Some(_) => return Err(bad("destination_rules must be a list".into())),
        };
        Ok(Config {
            file: file.to_path_buf(),
            rules,
            destinations,
            push: push_targets(&root).map_err(|e| bad(e.to_string()))?,
        })
    }

    /// The first rule matching `target`, tried relative to the config's directory and
    /// as given.
    ///
    /// As sops does, a file below the config's directory is matched by its path relative
    /// to it only: the directories above (a checkout under `~/dev/`, say) must not decide
    /// which rule a file gets.
    pub fn rule_for(&self, target: &Path) -> Option<&CreationRule> {
        let base = self.file.parent().unwrap_or(Path::new("."));
        let abs = std::path::absolute(target).unwrap_or_else(|_| target.to_path_buf());
        let base_abs = std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf());
        let candidate = match abs.strip_prefix(&base_abs) {
            Ok(rel) => crate::glob::slashed(rel),
            Err(_) => target.to_string_lossy().into_owned(),
        };
        self.rules.iter().find_map(|(re, rule)| match re {
            None => Some(rule),
            Some(re) => re.is_match(&candidate).then_some(rule),
        })
    }
}

/// Creation rule `i` (from 0) of a config, read as sops reads it.
fn parse_rule(
    i: usize,
    r: &Value,
    bad: &impl Fn(String) -> Error,
) -> Result<(Option<Regex>, CreationRule)> {
    let mut rule = CreationRule {
        // sops reads `path_regex`; some configs in the wild spell it `path_regexp`.
        path_regex: scalar(r, "path_regex").or_else(|| scalar(r, "path_regexp")),
        age: string_list(get(r, "age")),
        kms: string_list(get(r, "kms")),
        pgp: string_list(get(r, "pgp")),
        unencrypted_comment_regex: scalar(r, "unencrypted_comment_regex"),
        encrypted_comment_regex: scalar(r, "encrypted_comment_regex"),
        mac_only_encrypted: scalar(r, "mac_only_encrypted").is_some_and(|v| v == "true"),
        selector: None,
        unsupported: None,
        aws_profile: scalar(r, "aws_profile"),
        groups: Vec::new(),
        shamir_threshold: None,
    };
    match get(r, "key_groups") {
        Some(Value::Seq(groups)) if groups.len() > 1 => {
            for g in groups {
                let kms = match group_kms(get(g, "kms")) {
                    Ok(kms) => kms,
                    Err(why) => {
                        rule.unsupported = Some(format!("creation rule {}: {why}", i + 1));
                        Vec::new()
                    }
                };
                let group = KeyGroup {
                    age: string_list(get(g, "age")),
                    kms,
                    pgp: string_list(get(g, "pgp")),
                };
                // Any other kind (GCP, Azure, Vault, HuaweiCloud…) would get no share.
                let foreign = match g {
                    Value::Map(entries) => entries
                        .iter()
                        .find(|(k, v)| {
                            !matches!(k.as_str(), "age" | "kms" | "pgp")
                                && !matches!(v, Value::Seq(s) if s.is_empty())
                                && !matches!(v, Value::Scalar(_, s) if s.is_empty())
                        })
                        .map(|(k, _)| k.clone()),
                    _ => None,
                };
                if let Some(kind) = foreign {
                    rule.unsupported = Some(format!(
                        "creation rule {}: a key group holds {kind} keys, which coffer cannot wrap a share for",
                        i + 1
                    ));
                } else if rule.unsupported.is_none()
                    && group.age.is_empty()
                    && group.kms.is_empty()
                    && group.pgp.is_empty()
                {
                    return Err(bad(format!(
                        "creation rule {}: a key group names no keys",
                        i + 1
                    )));
                }
                rule.groups.push(group);
            }
            let n = groups.len();
            rule.shamir_threshold = match scalar(r, "shamir_threshold") {
                None => None,
                Some(t) => match t.trim().parse::<usize>() {
                    Ok(0) => None,
                    Ok(t) if (2..=n).contains(&t) => Some(t),
                    _ => {
                        return Err(bad(format!(
                            "creation rule {}: shamir_threshold must be a number from 2 to {n} (the key groups), not {t:?}",
                            i + 1
                        )))
                    }
                },
            };
        }
        Some(Value::Seq(groups)) => {
            for g in groups {
                rule.age.extend(string_list(get(g, "age")));
                match group_kms(get(g, "kms")) {
                    Ok(kms) => rule.kms.extend(kms),
                    Err(why) => rule.unsupported = Some(format!("creation rule {}: {why}", i + 1)),
                }
                rule.pgp.extend(string_list(get(g, "pgp")));
            }
        }
        _ => {}
    }
    let selectors: Vec<Selector> = [
        (
            "unencrypted_suffix",
            Selector::UnencryptedSuffix as fn(String) -> Selector,
        ),
        ("encrypted_suffix", Selector::EncryptedSuffix),
        ("unencrypted_regex", Selector::UnencryptedRegex),
        ("encrypted_regex", Selector::EncryptedRegex),
    ]
    .into_iter()
    .filter_map(|(k, make)| scalar(r, k).map(make))
    .collect();
    if selectors.len() > 1 {
        return Err(bad(format!(
            "creation rule {}: give only one of the suffix and regex settings",
            i + 1
        )));
    }
    rule.selector = selectors.into_iter().next();
    let re = match &rule.path_regex {
        Some(p) => Some(Regex::new(p).map_err(|e| {
            bad(format!(
                "creation rule {}: path_regex {}",
                i + 1,
                crate::metadata::regex_reason(&e)
            ))
        })?),
        None => None,
    };
    Ok((re, rule))
}

/// Destination rule `i` (from 0): where `sops publish` sends a file. Several places in
/// one rule are refused when the rule is used, as sops refuses them.
fn parse_destination(
    i: usize,
    r: &Value,
    bad: &impl Fn(String) -> Error,
) -> Result<DestinationRule> {
    let path_regex = match scalar(r, "path_regex").filter(|p| !p.is_empty()) {
        Some(p) => Some(Regex::new(&p).map_err(|e| {
            bad(format!(
                "destination rule {}: path_regex {}",
                i + 1,
                crate::metadata::regex_reason(&e)
            ))
        })?),
        None => None,
    };
    let text = |k: &str| scalar(r, k).filter(|v| !v.is_empty());
    let mut places = Vec::new();
    if let Some(bucket) = text("s3_bucket") {
        places.push(Destination::S3 {
            bucket,
            prefix: text("s3_prefix").unwrap_or_default(),
        });
    }
    if let Some(bucket) = text("gcs_bucket") {
        places.push(Destination::Gcs {
            bucket,
            prefix: text("gcs_prefix").unwrap_or_default(),
        });
    }
    if let Some(path) = text("vault_path") {
        places.push(Destination::Vault { path });
    }
    let destination = match places.len() {
        1 => Ok(places.remove(0)),
        0 => Err("error loading config: no destination configured for this file".to_string()),
        _ => Err("error loading config: more than one destinations were found in a single destination rule, you can only use one per rule".to_string()),
    };
    let recreation = match get(r, "recreation_rule") {
        Some(rule @ Value::Map(_)) => Some(parse_rule(i, rule, bad)?.1),
        _ => None,
    };
    Ok(DestinationRule {
        path_regex,
        destination,
        recreation,
        omit_extensions: scalar(r, "omit_extensions").is_some_and(|v| v == "true"),
    })
}

impl Config {
    /// The first destination rule whose `path_regex` matches `target` as given (as sops
    /// matches it), or one without a regex.
    pub fn destination_for(&self, target: &str) -> Option<&DestinationRule> {
        self.destinations.iter().find(|d| match &d.path_regex {
            None => true,
            Some(re) => re.is_match(target),
        })
    }
}

/// The creation rule for `target`, from --config or the nearest config file.
pub fn creation_rule(explicit: Option<&Path>, target: &Path) -> Result<Option<CreationRule>> {
    RulesCache::new(explicit.map(Path::to_path_buf)).rule_for(target)
}

/// Config files read once each, for the creation rules of many files (the git filter's).
#[derive(Default)]
pub struct RulesCache {
    explicit: Option<PathBuf>,
    loaded: std::collections::HashMap<PathBuf, Config>,
}

impl RulesCache {
    pub fn new(explicit: Option<PathBuf>) -> Self {
        RulesCache {
            explicit,
            loaded: Default::default(),
        }
    }

    /// The rule for `target`: from --config, or the nearest config file above it. A rule
    /// coffer cannot use is an error where it applies.
    pub fn rule_for(&mut self, target: &Path) -> Result<Option<CreationRule>> {
        let file = match &self.explicit {
            Some(p) => Some(p.clone()),
            None => {
                let abs = std::path::absolute(target).map_err(|e| Error::io(target, e))?;
                let dir = abs
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| PathBuf::from("."));
                find(&dir)
            }
        };
        let Some(f) = file else { return Ok(None) };
        if !self.loaded.contains_key(&f) {
            let config = Config::load(&f)?;
            self.loaded.insert(f.clone(), config);
        }
        match self.loaded[&f].rule_for(target) {
            Some(CreationRule {
                unsupported: Some(why),
                ..
            }) => Err(Error::Config {
                file: f.display().to_string(),
                message: why.clone(),
            }),
            rule => Ok(rule.cloned()),
        }
    }
}

/// Names given to master keys on the key's own line of a config file: a comment
/// (`- age1… # alice`, `kms: arn:aws:kms:… # prod key`), else the anchor sops's
/// documentation names keys with (`- &alice age1…`): recipient or key ARN to name.
/// A line naming several keys names none of them.
pub fn key_names(text: &str) -> std::collections::HashMap<String, String> {
    static KEY: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(|| {
        Regex::new(r"(?:&([^\s,\[\]{}]+)\s+)?(age1[0-9a-z]+|arn:aws[a-z-]*:kms:[^\s,'+]+)")
            .expect("the pattern is valid")
    });
    let mut out = std::collections::HashMap::new();
    for line in text.lines() {
        let comment_at = line
            .char_indices()
            .find(|&(i, c)| c == '#' && (i == 0 || line[..i].ends_with(char::is_whitespace)))
            .map(|(i, _)| i);
        let at = comment_at.unwrap_or(line.len());
        let comment = comment_at.map(|c| line[c + 1..].trim()).unwrap_or_default();
        let keys: Vec<_> = key.captures_iter(&line[..at]).collect();
        let [k] = keys.as_slice() else { continue };
        let anchor = k.get(1).map(|m| m.as_str()).unwrap_or_default();
        let name = if comment.is_empty() { anchor } else { comment };
        if !name.is_empty() {
            out.insert(k[2].to_string(), name.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys named on the command line replace the rule's entirely (both front ends);
    /// the context and profile go to the KMS keys named there.
    #[test]
    fn keys_for_a_new_file_come_from_the_flags_or_the_rule() {
        let rule =
            rules_of("creation_rules:\n  - age: age1rule\n    aws_profile: ruled\n").remove(0);
        let arn = "arn:aws:kms:eu-west-1:111122223333:key/k";
        let flags = KeyLists {
            kms: vec![arn.into()],
            context: vec![("app".into(), "web".into())],
            aws_profile: Some("flag".into()),
            ..Default::default()
        };
        let from_flags = new_file_recipients(&flags, Some(&rule)).unwrap();
        assert!(from_flags.age.is_empty(), "the rule's age key is not added");
        assert_eq!(from_flags.kms.len(), 1);
        assert_eq!(from_flags.kms[0].context, flags.context);
        assert_eq!(from_flags.kms[0].aws_profile.as_deref(), Some("flag"));
        let from_rule = new_file_recipients(&KeyLists::default(), Some(&rule)).unwrap();
        assert_eq!(from_rule.age, ["age1rule"]);
        assert!(new_file_recipients(&KeyLists::default(), None)
            .unwrap()
            .is_empty());
    }

    fn rules_of(text: &str) -> Vec<CreationRule> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(".sops.yaml");
        std::fs::write(&file, text).unwrap();
        Config::load(&file)
            .unwrap()
            .rules
            .into_iter()
            .map(|(_, r)| r)
            .collect()
    }

    #[test]
    fn key_groups_take_kms_keys_as_sops_writes_them_and_refuse_what_they_cannot_wrap() {
        let rules = rules_of(
            "creation_rules:
  - shamir_threshold: 2
    key_groups:
      - age: [age1a]
      - kms:
          - arn: arn:aws:kms:eu-west-1:111122223333:key/k
            role: arn:aws:iam::111122223333:role/ci
  - path_regex: azure
    key_groups:
      - age: [age1a]
      - azure_keyvault:
          - vaultUrl: https://v.vault.azure.net
            key: k
            version: v
  - path_regex: context
    key_groups:
      - age: [age1a]
      - kms:
          - arn: arn:aws:kms:eu-west-1:111122223333:key/k
            context: {app: web}
",
        );
        assert_eq!(
            rules[0].groups[1].kms,
            ["arn:aws:kms:eu-west-1:111122223333:key/k+arn:aws:iam::111122223333:role/ci"]
        );
        assert_eq!(rules[0].shamir_threshold, Some(2));
        assert!(rules[0].unsupported.is_none());
        let r = rules[0].recipients().unwrap();
        assert_eq!(
            r.groups[1].kms[0].role.as_deref(),
            Some("arn:aws:iam::111122223333:role/ci")
        );
        assert!(rules[1]
            .unsupported
            .as_deref()
            .unwrap()
            .contains("azure_keyvault"));
        assert!(rules[2]
            .unsupported
            .as_deref()
            .unwrap()
            .contains("sets context"));
    }

    /// As sops does, rules see the path below the config file only: a checkout under
    /// `~/dev/` must not match a rule for `dev/`.
    #[test]
    fn rules_match_the_path_relative_to_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("dev").join("repo");
        std::fs::create_dir_all(&root).unwrap();
        let file = root.join(".coffer.yaml");
        std::fs::write(
            &file,
            "creation_rules:\n  - path_regex: dev/.*\n    age: age1dev\n  - path_regex: ^prod/\n    age: age1prod\n",
        )
        .unwrap();
        let config = Config::load(&file).unwrap();
        let age_of = |p: &std::path::Path| config.rule_for(p).map(|r| r.age.clone());
        assert_eq!(
            age_of(&root.join("prod/x.yaml")),
            Some(vec!["age1prod".to_string()])
        );
        assert_eq!(
            age_of(&root.join("dev/x.yaml")),
            Some(vec!["age1dev".to_string()])
        );
    }

    /// sops's documentation names each key once with an anchor and refers to it.
    #[test]
    fn rules_with_anchors_aliases_and_merge_keys_read_as_sops_reads_them() {
        let text = "keys:
  - &alice age1alice0
  - &bob age1bob0 # bob (laptop)
  - &prod_kms arn:aws:kms:eu-west-1:111122223333:key/p
defaults: &defaults
  encrypted_regex: ^(password|token)$
creation_rules:
  - path_regex: ^prod/
    <<: *defaults
    kms: *prod_kms
    age: [*alice, *bob]
  - path_regex: ^split/
    key_groups:
      - age: [*alice]
      - age: [*bob]
";
        let rules = rules_of(text);
        assert_eq!(rules[0].age, ["age1alice0", "age1bob0"]);
        assert_eq!(rules[0].kms, ["arn:aws:kms:eu-west-1:111122223333:key/p"]);
        assert!(matches!(
            &rules[0].selector,
            Some(Selector::EncryptedRegex(r)) if r == "^(password|token)$"
        ));
        assert_eq!(rules[1].groups[0].age, ["age1alice0"]);
        assert_eq!(rules[1].groups[1].age, ["age1bob0"]);
        let names = key_names(text);
        assert_eq!(names["age1alice0"], "alice");
        assert_eq!(names["age1bob0"], "bob (laptop)");
        assert_eq!(
            names["arn:aws:kms:eu-west-1:111122223333:key/p"],
            "prod_kms"
        );
    }

    #[test]
    fn keys_are_named_by_the_comment_on_their_line() {
        let text = "creation_rules:\n  - age:\n      - age1alice000 # alice\n      - age1bob000   #  bob (laptop)\n      - age1nobody000\n    kms: arn:aws:kms:eu-west-1:111122223333:key/abc+arn:aws:iam::1:role/x # prod\n  - age: age1a0,age1b0 # both\n# age1c0 is in a comment only: no name\n";
        let names = key_names(text);
        assert_eq!(names.get("age1alice000").map(String::as_str), Some("alice"));
        assert_eq!(
            names.get("age1bob000").map(String::as_str),
            Some("bob (laptop)")
        );
        assert_eq!(
            names
                .get("arn:aws:kms:eu-west-1:111122223333:key/abc")
                .map(String::as_str),
            Some("prod")
        );
        for unnamed in ["age1nobody000", "age1a0", "age1b0", "age1c0"] {
            assert!(!names.contains_key(unnamed), "{unnamed}");
        }
    }
}
