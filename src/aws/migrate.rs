//! Moving secrets kept in S3 into Secrets Manager, and pointing templates at them.
//!
//! Objects are read, never written or deleted: the bucket stays as it was until the team
//! removes it themselves.

use std::collections::HashMap;

use super::read::AwsRef;
use super::{bounded, code, reason, s3_client, Payload, Scope, Session, CONCURRENCY};
use crate::render::Reference;
use crate::{Error, Result};

/// `s3://bucket/key` becomes the secret `<name_prefix><key>`, by default `<bucket>/<key>`.
pub fn secret_name(bucket: &str, key: &str, name_prefix: Option<&str>) -> String {
    match name_prefix {
        Some(p) => format!("{p}{key}"),
        None => format!("{bucket}/{key}"),
    }
}

/// Every object under `prefix` with its contents (or why it could not be read), by key.
/// Keys ending in `/` are folder markers, not secrets.
pub fn read_objects(
    session: &Session,
    scope: &Scope,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<(String, std::result::Result<Payload, String>)>> {
    let s3 = s3_client(&session.config(scope).map_err(Error::Aws)?);
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
                Error::Aws(format!(
                    "cannot list s3://{bucket}/{prefix}: {}",
                    reason(&e, "S3")
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
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(reason(&e, "S3")),
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

/// Whether each secret exists (and is not scheduled for deletion), or why that is unknown.
pub fn secrets_exist(
    session: &Session,
    scope: &Scope,
    names: Vec<String>,
) -> Result<HashMap<String, std::result::Result<bool, String>>> {
    let sm = aws_sdk_secretsmanager::Client::new(&session.config(scope).map_err(Error::Aws)?);
    Ok(session.block_on(async {
        let mut out = HashMap::new();
        let work = |name: String| {
            let sm = sm.clone();
            async move {
                let found = match sm.describe_secret().secret_id(&name).send().await {
                    Ok(d) => Ok(d.deleted_date().is_none()),
                    Err(e) if code(&e) == Some("ResourceNotFoundException") => Ok(false),
                    Err(e) => Err(reason(&e, "Secrets Manager")),
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

/// One `s3://` reference of a template and the `awsSecret://` reference it may become.
pub struct Move<'t> {
    pub reference: &'t Reference,
    pub target: String,
}

/// The `s3://` references of a template with the secret name each would read.
pub fn s3_moves<'t>(refs: &'t [Reference], name_prefix: Option<&str>) -> Vec<Move<'t>> {
    refs.iter()
        .filter_map(|r| match AwsRef::parse(&r.uri) {
            Some(Ok(AwsRef::Object { bucket, key })) => Some(Move {
                reference: r,
                target: secret_name(&bucket, &key, name_prefix),
            }),
            _ => None,
        })
        .collect()
}

/// The template with the chosen references' URIs replaced by `awsSecret://<target>`;
/// everything else, filters included, stays byte for byte.
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
        out.push_str("awsSecret://");
        out.push_str(&m.target);
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
        let moves = s3_moves(&tpl.refs, None);
        assert_eq!(moves.len(), 2);
        let chosen: Vec<&Move> = moves.iter().filter(|m| m.target == "b/two").collect();
        assert_eq!(
            rewrite(text, &chosen),
            "a={{ secret s3://b/one }}\nb={{secret awsSecret://b/two | default \"x\"}}\n\\{{ secret s3://b/one }}\n"
        );
    }
}
