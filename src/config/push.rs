//! The `push:` list of a config file: targets in AWS that files' values go to, each
//! checked when the file is read.

use super::{get, scalar, string_list};
use crate::aws::push::{Service, Settings};
use crate::tree::Value;

/// One entry of `push:`.
#[derive(Debug, Clone)]
pub struct PushTarget {
    pub name: String,
    /// Globs relative to the config file's directory.
    pub files: Vec<String>,
    pub service: Service,
    pub layout: TargetLayout,
    pub role: Option<String>,
    pub aws_profile: Option<String>,
    pub region: Option<String>,
    pub settings: Settings,
    pub prune: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetLayout {
    /// `secret: NAME`: one secret holding the whole file.
    Whole(String),
    /// `prefix: P`: one secret or parameter per value.
    Each(String),
}

/// The settings a push target may have.
const TARGET_KEYS: [&str; 13] = [
    "name",
    "files",
    "to",
    "prefix",
    "path",
    "secret",
    "role",
    "aws_profile",
    "region",
    "kms_key_id",
    "description",
    "tags",
    "prune",
];

/// Why the `push:` list, or one target of it, cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{}{}{why}", target, if target.is_empty() { "" } else { ": " })]
pub struct BadTarget {
    /// `push target 2`, `push target "prod"`; empty for the list as a whole.
    pub target: String,
    pub why: String,
}

/// The `push:` list, checked: every target has a unique name, files, a service and one
/// way of naming what it writes.
pub(super) fn push_targets(root: &Value) -> std::result::Result<Vec<PushTarget>, BadTarget> {
    let list = match get(root, "push") {
        None => return Ok(Vec::new()),
        Some(Value::Seq(items)) => items,
        Some(_) => {
            return Err(BadTarget {
                target: String::new(),
                why: "push must be a list of targets".into(),
            })
        }
    };
    let mut out: Vec<PushTarget> = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let at = |why: &str| BadTarget {
            target: format!("push target {}", i + 1),
            why: why.to_string(),
        };
        if !matches!(t, Value::Map(_)) {
            return Err(at("is not a map"));
        }
        let name = scalar(t, "name").ok_or_else(|| at("has no name"))?;
        let at = |why: &str| BadTarget {
            target: format!("push target {name:?}"),
            why: why.to_string(),
        };
        if out.iter().any(|o| o.name == name) {
            return Err(at("is named twice"));
        }
        // The name is a tag value on what the target makes.
        if let Some(why) = crate::aws::push::tag_problem(crate::aws::push::TARGET_TAG, &name) {
            return Err(at(&why));
        }
        if let Value::Map(entries) = t {
            if let Some((k, _)) = entries
                .iter()
                .find(|(k, _)| !TARGET_KEYS.contains(&k.as_str()))
            {
                return Err(at(&format!(
                    "unknown setting {k:?} (known: {})",
                    TARGET_KEYS.join(", ")
                )));
            }
        }
        let files: Vec<String> = string_list(get(t, "files"))
            .into_iter()
            .map(|f| f.trim_start_matches("./").to_string())
            .collect();
        if files.is_empty() {
            return Err(at("has no files"));
        }
        if files
            .iter()
            .any(|f| f.starts_with('/') || f.split('/').any(|s| s == ".."))
        {
            return Err(at(
                "files are globs relative to the config file, without ..",
            ));
        }
        let service = match scalar(t, "to").as_deref() {
            Some("secretsmanager") => Service::SecretsManager,
            Some("ssm") => Service::Ssm,
            Some(other) => return Err(at(&format!("to: {other:?} is not secretsmanager or ssm"))),
            None => return Err(at("has no to: (secretsmanager or ssm)")),
        };
        let layout = match (
            scalar(t, "prefix").or_else(|| scalar(t, "path")),
            scalar(t, "secret"),
        ) {
            (Some(_), Some(_)) => return Err(at("give prefix or secret, not both")),
            (None, Some(_)) if service == Service::Ssm => {
                return Err(at(
                    "Parameter Store takes a prefix (one parameter per value)",
                ))
            }
            (None, Some(secret)) => TargetLayout::Whole(secret),
            (Some(prefix), None) if prefix.is_empty() => {
                return Err(at("an empty prefix would list and prune the whole account"))
            }
            (Some(mut prefix), None) => {
                if service == Service::Ssm {
                    if !prefix.starts_with('/') {
                        return Err(at("a Parameter Store prefix starts with /"));
                    }
                    if !prefix.ends_with('/') {
                        prefix.push('/');
                    }
                }
                TargetLayout::Each(prefix)
            }
            (None, None) => {
                return Err(at(
                    "needs prefix: (one secret per value) or secret: (the whole file)",
                ))
            }
        };
        let tags = match get(t, "tags") {
            None => Vec::new(),
            Some(Value::Map(entries)) => entries
                .iter()
                .map(|(k, v)| match v {
                    Value::Scalar(_, v) => Ok((k.clone(), v.to_string())),
                    _ => Err(at(&format!("tag {k:?} is not a single value"))),
                })
                .collect::<std::result::Result<_, _>>()?,
            Some(_) => return Err(at("tags must be a map of KEY: VALUE")),
        };
        let settings = Settings {
            kms_key_id: scalar(t, "kms_key_id"),
            description: scalar(t, "description"),
            tags,
        };
        if let Some(why) = settings.check() {
            return Err(at(&why));
        }
        let prune = match scalar(t, "prune").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(at("prune is true or false")),
        };
        if prune && matches!(layout, TargetLayout::Whole(_)) {
            return Err(at(
                "prune needs a prefix: one secret holding a whole file has no keys to remove",
            ));
        }
        out.push(PushTarget {
            name,
            files,
            service,
            layout,
            role: scalar(t, "role"),
            aws_profile: scalar(t, "aws_profile"),
            region: scalar(t, "region"),
            settings,
            prune,
        });
    }
    Ok(out)
}
