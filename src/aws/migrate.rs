//! Moving secrets kept in S3 into Secrets Manager or Parameter Store, in one account or
//! into each push target's own, and pointing templates at them.
//!
//! Objects are read, never written or deleted: the bucket stays as it was until the team
//! removes it themselves.

use super::CallError;
use std::collections::HashMap;

use super::push::Service;
use super::read::AwsRef;
use super::{bounded, code, reason, s3_client, Payload, Scope, Session, CONCURRENCY};
use crate::render::Reference;
use crate::{Error, Result};

/// How an object's key becomes a secret's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Naming {
    /// `<bucket>/<key>`, or `<name_prefix><key>`; in Parameter Store with a leading `/`.
    Bucket { name_prefix: Option<String> },
    /// Objects under `s3_prefix` go under a push target's `prefix`, the rest of the key
    /// kept: `s3://b/prod/db` with `prod/` → `web/` becomes `web/db`.
    Under { s3_prefix: String, prefix: String },
}

impl Naming {
    pub fn name(&self, service: Service, bucket: &str, key: &str) -> String {
        match self {
            Naming::Bucket { name_prefix } => {
                let name = secret_name(bucket, key, name_prefix.as_deref());
                match service {
                    Service::Ssm if !name.starts_with('/') => format!("/{name}"),
                    _ => name,
                }
            }
            Naming::Under { s3_prefix, prefix } => {
                format!(
                    "{prefix}{}",
                    key.strip_prefix(s3_prefix.as_str()).unwrap_or(key)
                )
            }
        }
    }
}

/// `s3://bucket/key` becomes the secret `<name_prefix><key>`, by default `<bucket>/<key>`.
pub fn secret_name(bucket: &str, key: &str, name_prefix: Option<&str>) -> String {
    match name_prefix {
        Some(p) => format!("{p}{key}"),
        None => format!("{bucket}/{key}"),
    }
}

/// The route of `key` among `(S3 prefix, destination)` pairs: the longest prefix it
/// starts with.
pub fn route<'r, T>(routes: &'r [(String, T)], key: &str) -> Option<&'r T> {
    routes
        .iter()
        .filter(|(p, _)| key.starts_with(p.as_str()))
        .max_by_key(|(p, _)| p.len())
        .map(|(_, t)| t)
}

/// `PREFIX=TARGET`, as `--target` takes it.
pub fn parse_route(s: &str) -> std::result::Result<(String, String), BadRoute> {
    match s.split_once('=') {
        Some((prefix, target)) if !target.trim().is_empty() => {
            Ok((prefix.trim().to_string(), target.trim().to_string()))
        }
        _ => Err(BadRoute(s.to_string())),
    }
}

/// A `--target` that is not `S3-PREFIX=TARGET`.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not S3-PREFIX=TARGET (e.g. prod/=prod)")]
pub struct BadRoute(String);

/// Every object under `prefix` with its contents (or why it could not be read), by key.
/// Keys ending in `/` are folder markers, not secrets.
pub fn read_objects(
    session: &Session,
    scope: &Scope,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<(String, std::result::Result<Payload, CallError>)>> {
    let conf = session.config(scope)?;
    let place = session.place(scope, conf.region().map(|r| r.as_ref()), None);
    let s3 = s3_client(&conf);
    session.block_on(async {
        let mut pages = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                Error::Aws(CallError::new(
                    format!("s3 ListObjectsV2 s3://{bucket}/{prefix}"),
                    Some(&place),
                    reason(&e, "S3"),
                ))
            })?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key())
                    .filter(|k| !k.ends_with('/'))
                    .map(str::to_string),
            );
        }
        let mut out = Vec::new();
        let work = |(i, key): (usize, String)| {
            let (s3, bucket) = (s3.clone(), bucket.to_string());
            async move {
                let got = match s3.get_object().bucket(&bucket).key(&key).send().await {
                    Ok(out) => out
                        .body
                        .collect()
                        .await
                        .map(|b| Payload::from_bytes(b.into_bytes().to_vec()))
                        .map_err(|e| CallError::new("s3 GetObject", None, e.to_string())),
                    Err(e) => Err(CallError::new("s3 GetObject", None, reason(&e, "S3"))),
                };
                (i, key, got)
            }
        };
        bounded(keys.into_iter().enumerate(), CONCURRENCY, work, |x| {
            out.push(x)
        })
        .await;
        out.sort_by_key(|(i, _, _)| *i);
        Ok(out.into_iter().map(|(_, k, v)| (k, v)).collect())
    })
}

/// Whether each secret (or parameter) exists (a secret not scheduled for deletion), or
/// why that is unknown.
pub fn secrets_exist(
    session: &Session,
    scope: &Scope,
    service: Service,
    names: Vec<String>,
) -> Result<HashMap<String, std::result::Result<bool, CallError>>> {
    let conf = session.config(scope)?;
    let sm = aws_sdk_secretsmanager::Client::new(&conf);
    let ssm = aws_sdk_ssm::Client::new(&conf);
    Ok(session.block_on(async {
        let mut out = HashMap::new();
        let work = |name: String| {
            let (sm, ssm) = (sm.clone(), ssm.clone());
            async move {
                let found = match service {
                    Service::SecretsManager => {
                        match sm.describe_secret().secret_id(&name).send().await {
                            Ok(d) => Ok(d.deleted_date().is_none()),
                            Err(e) if code(&e) == Some("ResourceNotFoundException") => Ok(false),
                            Err(e) => Err(CallError::new(
                                "secretsmanager DescribeSecret",
                                None,
                                reason(&e, "Secrets Manager"),
                            )),
                        }
                    }
                    Service::Ssm => match ssm.get_parameter().name(&name).send().await {
                        Ok(_) => Ok(true),
                        Err(e) if code(&e) == Some("ParameterNotFound") => Ok(false),
                        Err(e) => Err(CallError::new(
                            "ssm GetParameter",
                            None,
                            reason(&e, "Parameter Store"),
                        )),
                    },
                };
                (name, found)
            }
        };
        bounded(names, CONCURRENCY, work, |(name, found)| {
            out.insert(name, found);
        })
        .await;
        out
    }))
}

/// One `s3://` reference of a template and the reference it may become.
pub struct Move<'t> {
    pub reference: &'t Reference,
    /// The object's key.
    pub key: String,
    /// The secret's (or parameter's) name.
    pub target: String,
    pub service: Service,
    /// The push target whose account it is in, named in the new reference.
    pub push_target: Option<String>,
}

impl Move<'_> {
    /// `awsSecret://NAME` or `ssm://NAME`, with `?target=T` when it lives in a push
    /// target's account.
    pub fn uri(&self) -> String {
        let scheme = match self.service {
            Service::SecretsManager => "awsSecret",
            Service::Ssm => "ssm",
        };
        match &self.push_target {
            Some(t) => format!("{scheme}://{}?target={t}", self.target),
            None => format!("{scheme}://{}", self.target),
        }
    }
}

/// Where an object's key goes: the service, how it is named, and the push target whose
/// account it is in (none: the default one).
pub type Placement = (Service, Naming, Option<String>);

/// The `s3://` references of a template with the name each would read: `dest` says
/// where an object's key goes (service, naming, push target), `None` for keys no route
/// takes.
pub fn s3_moves<'t>(
    refs: &'t [Reference],
    dest: &dyn Fn(&str) -> Option<Placement>,
) -> Vec<Move<'t>> {
    refs.iter()
        .filter_map(|r| match AwsRef::parse(&r.uri) {
            Some(Ok(AwsRef::Object { bucket, key })) => {
                let (service, naming, push_target) = dest(&key)?;
                Some(Move {
                    reference: r,
                    target: naming.name(service, &bucket, &key),
                    key,
                    service,
                    push_target,
                })
            }
            _ => None,
        })
        .collect()
}

/// The template with the chosen references' URIs replaced by their new ones; everything
/// else, filters included, stays byte for byte.
pub fn rewrite(text: &str, moves: &[&Move<'_>]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let mut moves: Vec<&&Move<'_>> = moves.iter().collect();
    moves.sort_by_key(|m| m.reference.span.start);
    for m in moves {
        let span = &m.reference.span;
        let inner = &text[span.clone()];
        let Some(pos) = inner.find(&m.reference.uri) else {
            continue;
        };
        let uri_at = span.start + pos;
        out.push_str(&text[at..uri_at]);
        out.push_str(&m.uri());
        at = uri_at + m.reference.uri.len();
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_bucket_or_the_given_prefix() {
        assert_eq!(
            secret_name("ecs-generic", "client-management/admins/smpp", None),
            "ecs-generic/client-management/admins/smpp"
        );
        assert_eq!(secret_name("b", "prod/x", Some("app/")), "app/prod/x");
    }

    #[test]
    fn rewrites_only_the_chosen_uris() {
        let text = "a={{ secret s3://b/one }}\nb={{secret s3://b/two | default \"x\"}}\n\\{{ secret s3://b/one }}\n";
        let tpl = crate::render::parse(text).unwrap_or_else(|_| panic!("parses"));
        let bucket = |_: &str| {
            Some((
                Service::SecretsManager,
                Naming::Bucket { name_prefix: None },
                None,
            ))
        };
        let moves = s3_moves(&tpl.refs, &bucket);
        assert_eq!(moves.len(), 2);
        let chosen: Vec<&Move> = moves.iter().filter(|m| m.target == "b/two").collect();
        assert_eq!(
            rewrite(text, &chosen),
            "a={{ secret s3://b/one }}\nb={{secret awsSecret://b/two | default \"x\"}}\n\\{{ secret s3://b/one }}\n"
        );
    }

    #[test]
    fn routes_take_the_longest_prefix_and_name_under_the_targets_prefix() {
        let routes = vec![
            ("prod/".to_string(), "prod"),
            ("prod/eu/".to_string(), "prod-eu"),
            ("staging/".to_string(), "staging"),
        ];
        assert_eq!(route(&routes, "prod/db"), Some(&"prod"));
        assert_eq!(route(&routes, "prod/eu/db"), Some(&"prod-eu"));
        assert_eq!(route(&routes, "qa/db"), None);
        let under = Naming::Under {
            s3_prefix: "prod/".into(),
            prefix: "/web/".into(),
        };
        assert_eq!(under.name(Service::Ssm, "b", "prod/db/pw"), "/web/db/pw");
        let bucket = Naming::Bucket { name_prefix: None };
        assert_eq!(bucket.name(Service::Ssm, "b", "k"), "/b/k");
        assert_eq!(bucket.name(Service::SecretsManager, "b", "k"), "b/k");
        assert_eq!(
            parse_route("prod/=prod"),
            Ok(("prod/".into(), "prod".into()))
        );
        assert!(parse_route("prod/").is_err() && parse_route("prod/=").is_err());
        let m = Move {
            reference: &crate::render::parse("{{ secret s3://b/prod/db }}")
                .unwrap_or_else(|_| panic!("parses"))
                .refs[0],
            key: "prod/db".into(),
            target: "/web/db".into(),
            service: Service::Ssm,
            push_target: Some("prod".into()),
        };
        assert_eq!(m.uri(), "ssm:///web/db?target=prod");
    }
}
