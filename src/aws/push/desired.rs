//! What a push asks for: the services and their naming rules, a target's settings and
//! tags, and the secrets a file's values become.

use super::*;

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
}
