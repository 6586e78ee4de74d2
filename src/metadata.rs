//! The `sops` metadata block: wrapped data keys, MAC, `lastmodified`, `version` and the
//! rule deciding which values are encrypted.

use regex::Regex;

/// The `sops` metadata as found in a file, before it is interpreted.
#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue {
    Map(Vec<(String, MetaValue)>),
    Seq(Vec<MetaValue>),
    Str(String),
    Null,
}

impl MetaValue {
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        match self {
            MetaValue::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Written into every file coffer encrypts. sops refuses files without a version, and
/// nothing coffer writes needs a feature newer than this release.
pub const SOPS_VERSION: &str = "3.9.4";
pub const DEFAULT_UNENCRYPTED_SUFFIX: &str = "_unencrypted";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgeEntry {
    pub recipient: String,
    /// The data key, age-encrypted to `recipient`, ASCII-armored.
    pub enc: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmsEntry {
    pub arn: String,
    pub role: Option<String>,
    pub context: Vec<(String, String)>,
    pub created_at: String,
    pub enc: String,
    pub aws_profile: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgpEntry {
    pub fp: String,
    pub created_at: String,
    /// The data key, encrypted for `fp`, ASCII-armored.
    pub enc: String,
}

/// Which values get encrypted. sops allows one of these per file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    UnencryptedSuffix(String),
    EncryptedSuffix(String),
    UnencryptedRegex(String),
    EncryptedRegex(String),
}

impl Selector {
    /// The one selector among those given, in sops's order of precedence.
    pub fn first_given(
        unencrypted_suffix: &Option<String>,
        encrypted_suffix: &Option<String>,
        unencrypted_regex: &Option<String>,
        encrypted_regex: &Option<String>,
    ) -> Option<Selector> {
        unencrypted_suffix
            .clone()
            .map(Selector::UnencryptedSuffix)
            .or_else(|| encrypted_suffix.clone().map(Selector::EncryptedSuffix))
            .or_else(|| unencrypted_regex.clone().map(Selector::UnencryptedRegex))
            .or_else(|| encrypted_regex.clone().map(Selector::EncryptedRegex))
    }
}

impl Default for Selector {
    fn default() -> Self {
        Selector::UnencryptedSuffix(DEFAULT_UNENCRYPTED_SUFFIX.to_string())
    }
}

impl Selector {
    fn meta_key(&self) -> (&'static str, &str) {
        match self {
            Selector::UnencryptedSuffix(s) => ("unencrypted_suffix", s),
            Selector::EncryptedSuffix(s) => ("encrypted_suffix", s),
            Selector::UnencryptedRegex(s) => ("unencrypted_regex", s),
            Selector::EncryptedRegex(s) => ("encrypted_regex", s),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Metadata {
    pub kms: Vec<KmsEntry>,
    pub age: Vec<AgeEntry>,
    pub pgp: Vec<PgpEntry>,
    /// Master keys coffer cannot use (gcp_kms, azure_kv, hc_vault), kept as they were
    /// so that re-encrypting a file with the same data key does not drop them.
    pub foreign_keys: Vec<(String, MetaValue)>,
    pub lastmodified: String,
    pub mac: Option<String>,
    pub selector: Selector,
    pub unencrypted_comment_regex: Option<String>,
    pub encrypted_comment_regex: Option<String>,
    pub mac_only_encrypted: bool,
    pub version: Option<String>,
    /// Shamir key groups (sops's `key_groups` with more than one group): the data key is
    /// split into one share per group, each wrapped for every key of its group, and
    /// `shamir_threshold` shares open it. Each group is read into its own `Metadata`
    /// (keys only); the flat lists above are then empty.
    pub groups: Vec<Metadata>,
    pub shamir_threshold: usize,
    /// `key_groups` and `shamir_threshold` as the file holds them, written back as they
    /// were: the shares stay valid as long as the data key does.
    pub shamir_raw: Option<(MetaValue, Option<MetaValue>)>,
}

/// Master key kinds sops writes that coffer cannot use: kept verbatim on every write
/// (a kind left out here would be dropped from the file).
const FOREIGN: [&str; 4] = ["gcp_kms", "azure_kv", "hc_vault", "hckms"];

/// Why a file's sops metadata cannot be read. Names metadata keys, never a value.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("the sops key is not a mapping")]
    NotAMapping,
    #[error("key_groups is not a list")]
    GroupsNotAList,
    #[error("shamir_threshold {given:?} is not a number of key groups (1 to {groups})")]
    Threshold { given: String, groups: usize },
    #[error("lastmodified is missing")]
    NoLastModified,
    #[error(
        "more than one of unencrypted_suffix, encrypted_suffix, unencrypted_regex, encrypted_regex"
    )]
    Selectors,
    /// An entry of a key kind without a field it needs: (`a kms`, `arn`).
    #[error("{0} entry has no {1}")]
    Entry(&'static str, &'static str),
    #[error("document {0} of the file has no sops metadata")]
    Missing(usize),
    /// A flattened (dotenv, INI) metadata name that cannot be read back: `sops_NAME`.
    #[error("the metadata name sops_{name} {problem}")]
    FlatName { name: String, problem: &'static str },
    #[error("{}", regex_reason(.0))]
    Regex(#[from] regex::Error),
}

impl Metadata {
    /// The kinds of master key in the file that coffer cannot use, with their names.
    pub fn foreign_kinds(&self) -> Vec<(&'static str, &'static str)> {
        let named = [
            ("gcp_kms", "GCP KMS"),
            ("azure_kv", "Azure Key Vault"),
            ("hc_vault", "HashiCorp Vault"),
            ("hckms", "HuaweiCloud KMS"),
        ];
        named
            .into_iter()
            .filter(|(kind, _)| {
                std::iter::once(self)
                    .chain(&self.groups)
                    .any(|m| m.foreign_keys.iter().any(|(k, _)| k == kind))
            })
            .collect()
    }

    /// Whether a `sops` mapping is metadata sops wrote (a MAC or a master key, and
    /// `lastmodified`), rather than a plaintext key that happens to be named `sops`.
    pub fn is_sops_written(meta: &MetaValue) -> bool {
        Metadata::parse(meta).is_ok_and(|m| {
            m.mac.is_some()
                || !m.age.is_empty()
                || !m.pgp.is_empty()
                || !m.kms.is_empty()
                || !m.foreign_keys.is_empty()
                || !m.groups.is_empty()
        })
    }

    pub fn parse(meta: &MetaValue) -> Result<Metadata, MetaError> {
        if !matches!(meta, MetaValue::Map(_)) {
            return Err(MetaError::NotAMapping);
        }
        let mut md = Metadata::default();
        let str_of = |key: &str| {
            meta.get(key)
                .and_then(MetaValue::as_str)
                .map(str::to_string)
        };
        if let Some(groups) = meta.get("key_groups") {
            let MetaValue::Seq(groups) = groups else {
                return Err(MetaError::GroupsNotAList);
            };
            if groups.len() > 1 {
                for group in groups {
                    let mut g = Metadata::default();
                    g.read_keys(group)?;
                    md.groups.push(g);
                }
                let threshold = meta.get("shamir_threshold");
                // sops reads a missing or zero threshold as "every group".
                md.shamir_threshold = match threshold.and_then(MetaValue::as_str) {
                    None => groups.len(),
                    Some(t) => match t.trim().parse::<usize>() {
                        Ok(0) => groups.len(),
                        Ok(n) if n <= groups.len() => n,
                        _ => {
                            return Err(MetaError::Threshold {
                                given: t.to_string(),
                                groups: groups.len(),
                            })
                        }
                    },
                };
                md.shamir_raw = Some((MetaValue::Seq(groups.clone()), threshold.cloned()));
            } else if let Some(group) = groups.first() {
                md.read_keys(group)?;
            }
        }
        md.read_keys(meta)?;
        md.lastmodified = str_of("lastmodified").ok_or(MetaError::NoLastModified)?;
        md.mac = str_of("mac").filter(|m| !m.is_empty());
        let mut selectors = Vec::new();
        for (key, make) in [
            (
                "unencrypted_suffix",
                Selector::UnencryptedSuffix as fn(String) -> Selector,
            ),
            ("encrypted_suffix", Selector::EncryptedSuffix),
            ("unencrypted_regex", Selector::UnencryptedRegex),
            ("encrypted_regex", Selector::EncryptedRegex),
        ] {
            if let Some(v) = str_of(key).filter(|v| !v.is_empty()) {
                selectors.push(make(v));
            }
        }
        if selectors.len() > 1 {
            return Err(MetaError::Selectors);
        }
        // Files from sops before 2.0 had no suffix key; sops then used the default.
        md.selector = selectors.pop().unwrap_or_default();
        md.unencrypted_comment_regex =
            str_of("unencrypted_comment_regex").filter(|v| !v.is_empty());
        md.encrypted_comment_regex = str_of("encrypted_comment_regex").filter(|v| !v.is_empty());
        md.mac_only_encrypted = matches!(str_of("mac_only_encrypted").as_deref(), Some("true"));
        md.version = str_of("version");
        Ok(md)
    }

    fn read_keys(&mut self, from: &MetaValue) -> Result<(), MetaError> {
        for entry in seq(from.get("age")) {
            let field = |k: &str| entry.get(k).and_then(MetaValue::as_str).map(str::to_string);
            self.age.push(AgeEntry {
                // sops opens an entry without one: its stanza says nothing of whose it is.
                recipient: field("recipient").unwrap_or_default(),
                enc: field("enc").ok_or(MetaError::Entry("an age", "enc"))?,
            });
        }
        for entry in seq(from.get("kms")) {
            let field = |k: &str| {
                entry
                    .get(k)
                    .and_then(MetaValue::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
            };
            let context = match entry.get("context") {
                Some(MetaValue::Map(m)) => m
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect(),
                _ => Vec::new(),
            };
            self.kms.push(KmsEntry {
                arn: field("arn").ok_or(MetaError::Entry("a kms", "arn"))?,
                role: field("role"),
                context,
                created_at: field("created_at").unwrap_or_default(),
                enc: field("enc").ok_or(MetaError::Entry("a kms", "enc"))?,
                aws_profile: field("aws_profile"),
            });
        }
        for entry in seq(from.get("pgp")) {
            let field = |k: &str| entry.get(k).and_then(MetaValue::as_str).map(str::to_string);
            self.pgp.push(PgpEntry {
                fp: field("fp").ok_or(MetaError::Entry("a pgp", "fp"))?,
                created_at: field("created_at").unwrap_or_default(),
                enc: field("enc").ok_or(MetaError::Entry("a pgp", "enc"))?,
            });
        }
        for name in FOREIGN {
            if let Some(v @ MetaValue::Seq(items)) = from.get(name) {
                if !items.is_empty() {
                    self.foreign_keys.push((name.to_string(), v.clone()));
                }
            }
        }
        Ok(())
    }

    /// Take `groups`, each holding its keys' wrapped shares, as the file's key groups.
    pub fn split_over(&mut self, groups: Vec<Metadata>, threshold: usize) {
        let written = MetaValue::Seq(
            groups
                .iter()
                .map(|g| MetaValue::Map(g.key_entries()))
                .collect(),
        );
        self.shamir_raw = Some((written, Some(MetaValue::Str(threshold.to_string()))));
        self.groups = groups;
        self.shamir_threshold = threshold;
    }

    /// Take the master keys (and key groups) of `fresh`, wrapping another data key.
    pub fn take_keys(&mut self, fresh: Metadata) {
        self.foreign_keys.clear();
        self.age = fresh.age;
        self.kms = fresh.kms;
        self.pgp = fresh.pgp;
        self.groups = fresh.groups;
        self.shamir_threshold = fresh.shamir_threshold;
        self.shamir_raw = fresh.shamir_raw;
    }

    /// The version, when its major version is one coffer does not know (a future sops
    /// format, which coffer reads as 3.x but must not silently rewrite as 3.x).
    pub fn unknown_major(&self) -> Option<&str> {
        let v = self.version.as_deref()?;
        let major: u64 = v.split('.').next()?.trim().parse().ok()?;
        (major > 3).then_some(v)
    }

    /// The wrapped forms of the data key (or of this group's share) this level of the
    /// metadata holds, key groups not included: age, then KMS, then PGP entries.
    pub fn wrapped_keys(&self) -> impl Iterator<Item = &str> {
        self.age
            .iter()
            .map(|a| a.enc.as_str())
            .chain(self.kms.iter().map(|k| k.enc.as_str()))
            .chain(self.pgp.iter().map(|p| p.enc.as_str()))
    }

    /// Whether the data key is split over Shamir key groups.
    pub fn is_shamir(&self) -> bool {
        !self.groups.is_empty()
    }

    /// Every master key, as a user would name it in an error message.
    pub fn recipients(&self) -> Vec<String> {
        if self.is_shamir() {
            return self
                .groups
                .iter()
                .enumerate()
                .flat_map(|(i, g)| {
                    g.recipients()
                        .into_iter()
                        .map(move |r| format!("group {i}: {r}"))
                })
                .collect();
        }
        let mut out: Vec<String> = self
            .age
            .iter()
            .map(|a| format!("age:{}", a.recipient))
            .collect();
        out.extend(self.kms.iter().map(|k| format!("kms:{}", k.arn)));
        out.extend(self.pgp.iter().map(|p| format!("pgp:{}", p.fp)));
        for (name, v) in &self.foreign_keys {
            for item in seq(Some(v)) {
                // The field naming the key in each kind (sops's stores.go).
                let id = [
                    "resource_id",
                    "vault_url",
                    "key_name",
                    "key_id",
                    "vault_address",
                ]
                .iter()
                .find_map(|k| item.get(k).and_then(MetaValue::as_str))
                .unwrap_or("?");
                out.push(format!("{name}:{id}"));
            }
        }
        out
    }

    /// The metadata as sops 3.9+ writes it: empty lists left out, keys in sops's order.
    pub fn to_meta(&self) -> MetaValue {
        let s = |v: &str| MetaValue::Str(v.to_string());
        let mut m: Vec<(String, MetaValue)> = Vec::new();
        if let Some((groups, threshold)) = &self.shamir_raw {
            if let Some(t) = threshold {
                m.push(("shamir_threshold".into(), t.clone()));
            }
            m.push(("key_groups".into(), groups.clone()));
        }
        m.extend(self.key_entries_but_age());
        m.extend(self.age_entry());
        m.push(("lastmodified".into(), s(&self.lastmodified)));
        if let Some(mac) = &self.mac {
            m.push(("mac".into(), s(mac)));
        }
        m.extend(self.pgp_entry());
        let (key, value) = self.selector.meta_key();
        m.push((key.into(), s(value)));
        if let Some(r) = &self.unencrypted_comment_regex {
            m.push(("unencrypted_comment_regex".into(), s(r)));
        }
        if let Some(r) = &self.encrypted_comment_regex {
            m.push(("encrypted_comment_regex".into(), s(r)));
        }
        if self.mac_only_encrypted {
            m.push(("mac_only_encrypted".into(), s("true")));
        }
        m.push((
            "version".into(),
            s(self.version.as_deref().unwrap_or(SOPS_VERSION)),
        ));
        MetaValue::Map(m)
    }

    /// `kms`, the others, `age` and `pgp`, as a key group holds them.
    fn key_entries(&self) -> Vec<(String, MetaValue)> {
        let mut m = self.key_entries_but_age();
        m.extend(self.age_entry());
        m.extend(self.pgp_entry());
        m
    }

    fn pgp_entry(&self) -> Option<(String, MetaValue)> {
        let s = |v: &str| MetaValue::Str(v.to_string());
        let entries: Vec<MetaValue> = self
            .pgp
            .iter()
            .map(|p| {
                MetaValue::Map(vec![
                    ("created_at".into(), s(&p.created_at)),
                    ("enc".into(), s(&p.enc)),
                    ("fp".into(), s(&p.fp)),
                ])
            })
            .collect();
        (!entries.is_empty()).then(|| ("pgp".into(), MetaValue::Seq(entries)))
    }

    fn key_entries_but_age(&self) -> Vec<(String, MetaValue)> {
        let s = |v: &str| MetaValue::Str(v.to_string());
        let mut m = Vec::new();
        if !self.kms.is_empty() {
            let entries = self
                .kms
                .iter()
                .map(|k| {
                    let mut e = vec![("arn".to_string(), s(&k.arn))];
                    if let Some(role) = &k.role {
                        e.push(("role".into(), s(role)));
                    }
                    if !k.context.is_empty() {
                        e.push((
                            "context".into(),
                            MetaValue::Map(
                                k.context.iter().map(|(a, b)| (a.clone(), s(b))).collect(),
                            ),
                        ));
                    }
                    e.push(("created_at".into(), s(&k.created_at)));
                    e.push(("enc".into(), s(&k.enc)));
                    if let Some(p) = &k.aws_profile {
                        e.push(("aws_profile".into(), s(p)));
                    }
                    MetaValue::Map(e)
                })
                .collect();
            m.push(("kms".into(), MetaValue::Seq(entries)));
        }
        for (name, v) in &self.foreign_keys {
            m.push((name.clone(), v.clone()));
        }
        m
    }

    fn age_entry(&self) -> Option<(String, MetaValue)> {
        let s = |v: &str| MetaValue::Str(v.to_string());
        let entries: Vec<MetaValue> = self
            .age
            .iter()
            .map(|a| {
                MetaValue::Map(vec![
                    ("recipient".into(), s(&a.recipient)),
                    ("enc".into(), s(&a.enc)),
                ])
            })
            .collect();
        (!entries.is_empty()).then(|| ("age".into(), MetaValue::Seq(entries)))
    }

    pub fn rules(&self) -> Result<Rules, MetaError> {
        Ok(Rules {
            selector: match &self.selector {
                Selector::UnencryptedSuffix(s) => Sel::UnencSuffix(s.clone()),
                Selector::EncryptedSuffix(s) => Sel::EncSuffix(s.clone()),
                Selector::UnencryptedRegex(r) => Sel::UnencRegex(Regex::new(r)?),
                Selector::EncryptedRegex(r) => Sel::EncRegex(Regex::new(r)?),
            },
            unenc_comment: self
                .unencrypted_comment_regex
                .as_deref()
                .map(Regex::new)
                .transpose()?,
            enc_comment: self
                .encrypted_comment_regex
                .as_deref()
                .map(Regex::new)
                .transpose()?,
        })
    }
}

fn seq(v: Option<&MetaValue>) -> &[MetaValue] {
    match v {
        Some(MetaValue::Seq(items)) => items,
        _ => &[],
    }
}

enum Sel {
    UnencSuffix(String),
    EncSuffix(String),
    UnencRegex(Regex),
    EncRegex(Regex),
}

/// A regex error on one line: the pattern and what is wrong with it (the library's
/// own message spreads them over several lines, with a caret).
pub fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    let lines: Vec<&str> = text.lines().collect();
    match lines.as_slice() {
        [_, pattern, .., last] if lines.len() >= 3 => format!(
            "{:?} is not a valid regular expression: {}",
            pattern.trim(),
            last.trim_start_matches("error: ")
        ),
        _ => format!(
            "not a valid regular expression: {}",
            text.replace('\n', " ")
        ),
    }
}

/// The compiled form of the selector, deciding leaf by leaf as sops does.
pub struct Rules {
    selector: Sel,
    unenc_comment: Option<Regex>,
    enc_comment: Option<Regex>,
}

impl Rules {
    /// `comments` are the comments seen just before this leaf at each nesting level
    /// (sops's "comments stack"); the last one is the leaf itself when it is a comment.
    #[cfg(test)]
    pub fn should_encrypt(&self, path: &[String], comments: &[&str], is_comment: bool) -> bool {
        let before = if is_comment {
            &comments[..comments.len().saturating_sub(1)]
        } else {
            comments
        };
        let unenc = comments
            .iter()
            .any(|c| self.unenc_comment.as_ref().is_some_and(|r| r.is_match(c)));
        let enc = before
            .iter()
            .any(|c| self.enc_comment.as_ref().is_some_and(|r| r.is_match(c)));
        self.decide(path, unenc, enc)
    }

    /// The rules walked along a document's leaves in order, each leaf passed once (the
    /// skipped ones too): the comments since the last value are remembered as whether
    /// any matched, so a run of comments costs one match each, not the whole run again.
    pub fn walk(&self) -> CommentRun<'_> {
        CommentRun {
            rules: self,
            unenc: false,
            enc: false,
        }
    }

    /// `unenc`: a comment before (or the leaf itself) matched `unencrypted_comment_regex`;
    /// `enc`: a comment before it matched `encrypted_comment_regex`.
    fn decide<K: AsRef<str>>(&self, path: &[K], unenc: bool, enc: bool) -> bool {
        let mut encrypted = match &self.selector {
            Sel::UnencSuffix(s) => !path.iter().any(|p| p.as_ref().ends_with(s.as_str())),
            Sel::EncSuffix(s) => path.iter().any(|p| p.as_ref().ends_with(s.as_str())),
            Sel::UnencRegex(r) => !path.iter().any(|p| r.is_match(p.as_ref())),
            Sel::EncRegex(r) => path.iter().any(|p| r.is_match(p.as_ref())),
        };
        if self.unenc_comment.is_some() && unenc {
            encrypted = false;
        }
        if self.enc_comment.is_some() {
            // A comment that matches is itself left readable; the values after it are not.
            encrypted = enc;
        }
        encrypted
    }
}

/// [`Rules::walk`]: where a document's walk stands.
pub struct CommentRun<'r> {
    rules: &'r Rules,
    unenc: bool,
    enc: bool,
}

impl CommentRun<'_> {
    /// Whether the next leaf is encrypted: its key path, its text when it is a comment.
    pub fn next<K: AsRef<str>>(&mut self, path: &[K], comment: Option<&str>) -> bool {
        let matches =
            |r: &Option<Regex>| comment.is_some_and(|c| r.as_ref().is_some_and(|r| r.is_match(c)));
        let unenc_here = matches(&self.rules.unenc_comment);
        let enc_here = matches(&self.rules.enc_comment);
        let out = self.rules.decide(path, self.unenc || unenc_here, self.enc);
        if comment.is_some() {
            self.unenc |= unenc_here;
            self.enc |= enc_here;
        } else {
            // A value ends the run of comments before it.
            self.unenc = false;
            self.enc = false;
        }
        out
    }
}

/// An age recipient as plans and `access` show it; an entry that names none (sops reads
/// such entries) is shown as what it is.
pub fn label_age(recipient: &str) -> String {
    if recipient.is_empty() {
        "unknown age recipient".to_string()
    } else {
        recipient.to_string()
    }
}

/// Age recipients named by more than one entry of a file: the second may hold someone
/// else's copy of the data key under a borrowed name.
pub fn duplicate_entries(meta: &Metadata) -> Vec<String> {
    // Within one list: a key may rightly hold a share in each of several groups.
    let mut twice: Vec<String> = std::iter::once(&meta.age)
        .chain(meta.groups.iter().map(|g| &g.age))
        .flat_map(|entries| {
            (1..entries.len())
                .filter(|&i| {
                    entries[..i]
                        .iter()
                        .any(|e| e.recipient == entries[i].recipient)
                })
                .map(|i| label_age(&entries[i].recipient))
                .collect::<Vec<_>>()
        })
        .collect();
    twice.sort();
    twice.dedup();
    twice
}

/// `lastmodified` as sops writes it: RFC 3339, UTC, whole seconds.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    format_rfc3339(secs)
}

pub fn format_rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Seconds since the epoch of an RFC 3339 time, or of the forms Python writes for one
/// (`…UTC` from `strftime('%Z')`, `+00:00` from `isoformat()`), fractions ignored.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if s.get(4..5)? != "-" || s.get(7..8)? != "-" || !matches!(s.get(10..11)?, "T" | "t" | " ") {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        rest = frac.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "Z" | "z" | "UTC" | "GMT" => 0,
        _ => {
            let sign = match rest.get(..1)? {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            let digits: String = rest[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let h: i64 = digits[..2].parse().ok()?;
            let mi: i64 = digits[2..].parse().ok()?;
            sign * (h * 3600 + mi * 60)
        }
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days-from-civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_over(groups: usize, threshold: Option<&str>) -> MetaValue {
        let s = |v: &str| MetaValue::Str(v.to_string());
        let group = |i: usize| {
            MetaValue::Map(vec![(
                "age".into(),
                MetaValue::Seq(vec![MetaValue::Map(vec![
                    ("recipient".into(), s(&format!("age1group{i}"))),
                    ("enc".into(), s("wrapped")),
                ])]),
            )])
        };
        let mut m = Vec::new();
        if let Some(t) = threshold {
            m.push(("shamir_threshold".into(), s(t)));
        }
        m.push((
            "key_groups".into(),
            MetaValue::Seq((0..groups).map(group).collect()),
        ));
        m.push(("lastmodified".into(), s("2026-01-01T00:00:00Z")));
        m.push(("mac".into(), s("ENC[…]")));
        MetaValue::Map(m)
    }

    #[test]
    fn shamir_groups_are_read_and_written_back_as_they_were() {
        let meta = split_over(3, Some("2"));
        let md = Metadata::parse(&meta).unwrap();
        assert!(md.is_shamir() && md.age.is_empty());
        assert_eq!((md.groups.len(), md.shamir_threshold), (3, 2));
        assert_eq!(md.groups[1].age[0].recipient, "age1group1");
        let again = md.to_meta();
        assert_eq!(again.get("key_groups"), meta.get("key_groups"));
        assert_eq!(again.get("shamir_threshold"), meta.get("shamir_threshold"));
        assert!(again.get("age").is_none());
        // No threshold (or 0) means every group, as sops reads it; more than the groups
        // is an error.
        assert_eq!(
            Metadata::parse(&split_over(3, None))
                .unwrap()
                .shamir_threshold,
            3
        );
        assert_eq!(
            Metadata::parse(&split_over(3, Some("0")))
                .unwrap()
                .shamir_threshold,
            3
        );
        assert!(Metadata::parse(&split_over(3, Some("4"))).is_err());
        assert!(Metadata::parse(&split_over(3, Some("two"))).is_err());
        // One group is no split: its keys are the file's.
        let one = Metadata::parse(&split_over(1, Some("1"))).unwrap();
        assert!(!one.is_shamir());
        assert_eq!(one.age.len(), 1);
    }

    #[test]
    fn rfc3339() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(1_779_480_983), "2026-05-22T20:16:23Z");
        for (text, secs) in [
            ("2026-05-22T20:16:23Z", Some(1_779_480_983)),
            ("2026-05-22T20:16:23UTC", Some(1_779_480_983)),
            ("2026-05-22T20:16:23.123456+00:00", Some(1_779_480_983)),
            ("2026-05-22T22:16:23+02:00", Some(1_779_480_983)),
            ("2026-05-22T19:16:23-0100", Some(1_779_480_983)),
            ("1970-01-01T00:00:00Z", Some(0)),
            ("2000-02-29T00:00:00Z", Some(951_782_400)),
            ("2026-05-22", None),
            ("2026-13-22T20:16:23Z", None),
            ("2026-05-22T20:16:23", None),
            ("2026-05-22T20:16:23+2", None),
        ] {
            assert_eq!(parse_rfc3339(text), secs, "{text}");
        }
        for secs in [0, 951_782_400, 1_779_480_983, 4_102_444_800] {
            assert_eq!(parse_rfc3339(&format_rfc3339(secs)), Some(secs));
        }
    }

    #[test]
    fn selectors_follow_sops() {
        let mut md = Metadata::default();
        let r = md.rules().unwrap();
        assert!(r.should_encrypt(&["a".into()], &[], false));
        assert!(!r.should_encrypt(&["a_unencrypted".into(), "b".into()], &[], false));
        md.selector = Selector::EncryptedRegex("^(data|stringData)$".into());
        let r = md.rules().unwrap();
        assert!(r.should_encrypt(&["data".into(), "x".into()], &[], false));
        assert!(!r.should_encrypt(&["meta".into()], &[], false));
    }

    /// The walk decides as the comment stack would: every comment since the last value,
    /// the leaf itself when it is a comment (for `encrypted_comment_regex` not counted).
    #[test]
    fn the_walk_decides_as_the_comment_stack() {
        // (comment text or None for a value) in document order.
        let doc: Vec<Option<&str>> = vec![
            None,
            Some("plain"),
            Some("sops:enc"),
            None,
            Some("sops:plain"),
            Some("x"),
            None,
            None,
            Some("sops:enc"),
            Some("sops:plain"),
            None,
            Some("y"),
        ];
        for (unenc, enc) in [
            (None, None),
            (Some("sops:plain"), None),
            (None, Some("sops:enc")),
        ] {
            let md = Metadata {
                unencrypted_comment_regex: unenc.map(str::to_string),
                encrypted_comment_regex: enc.map(str::to_string),
                ..Metadata::default()
            };
            let rules = md.rules().unwrap();
            let mut walk = rules.walk();
            let mut stack: Vec<&str> = Vec::new();
            for (i, leaf) in doc.iter().enumerate() {
                let path = vec![format!("k{i}")];
                if let Some(c) = leaf {
                    stack.push(c);
                }
                let want = rules.should_encrypt(&path, &stack, leaf.is_some());
                assert_eq!(walk.next(&path, *leaf), want, "{unenc:?} {enc:?} at {i}");
                if leaf.is_none() {
                    stack.clear();
                }
            }
        }
    }
}
