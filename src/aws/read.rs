//! Fetch `awsSecret://`, `ssm://` and `s3://` references, concurrently with a bound.

use std::collections::HashMap;

use zeroize::Zeroizing;

use super::{bounded, reason, s3_client, Scope, Session, CONCURRENCY};

/// A parsed AWS reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AwsRef {
    Secret {
        id: String,
        json_key: Option<String>,
        version: Option<String>,
        stage: Option<String>,
        /// `?target=T`: the secret is in push target T's account (`.coffer.yaml`).
        target: Option<String>,
    },
    Parameter {
        name: String,
        target: Option<String>,
    },
    Object {
        bucket: String,
        key: String,
    },
}

impl AwsRef {
    /// The push target whose account the reference is read in, if it names one.
    pub fn target(&self) -> Option<&str> {
        match self {
            AwsRef::Secret { target, .. } | AwsRef::Parameter { target, .. } => target.as_deref(),
            AwsRef::Object { .. } => None,
        }
    }

    /// `None` for URIs of other schemes.
    pub fn parse(uri: &str) -> Option<Result<AwsRef, ReadError>> {
        let (scheme, rest) = uri.split_once("://")?;
        Some(match scheme {
            "awsSecret" => {
                let (rest, query) = rest
                    .split_once('?')
                    .map_or((rest, None), |(a, q)| (a, Some(q)));
                let (id, key) = rest
                    .split_once('#')
                    .map_or((rest, None), |(a, k)| (a, Some(k.to_string())));
                let (mut version, mut stage, mut target) = (None, None, None);
                for pair in query
                    .unwrap_or_default()
                    .split('&')
                    .filter(|p| !p.is_empty())
                {
                    match pair.split_once('=') {
                        Some(("version", v)) => version = Some(v.to_string()),
                        Some(("stage", v)) => stage = Some(v.to_string()),
                        Some(("target", v)) => target = Some(v.to_string()),
                        _ => {
                            return Some(Err(ReadError::Query {
                                query: pair.to_string(),
                                known: "version=, stage=, target=",
                            }))
                        }
                    }
                }
                if id.is_empty() {
                    Err(ReadError::Incomplete(
                        "awsSecret:// needs a secret name or ARN",
                    ))
                } else {
                    Ok(AwsRef::Secret {
                        id: id.to_string(),
                        json_key: key,
                        version,
                        stage,
                        target,
                    })
                }
            }
            // `ssm:///a/b` is the hierarchical `/a/b`; `ssm://flat` the flat `flat`.
            "ssm" if !rest.is_empty() => {
                let (name, query) = rest.split_once('?').unwrap_or((rest, ""));
                match query {
                    "" => Ok(AwsRef::Parameter {
                        name: name.to_string(),
                        target: None,
                    }),
                    q => match q.strip_prefix("target=") {
                        Some(t) if !t.is_empty() && !t.contains('&') => Ok(AwsRef::Parameter {
                            name: name.to_string(),
                            target: Some(t.to_string()),
                        }),
                        _ => Err(ReadError::Query {
                            query: q.to_string(),
                            known: "target=",
                        }),
                    },
                }
            }
            "s3" => match rest.split_once('/') {
                Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => {
                    Ok(AwsRef::Object {
                        bucket: bucket.to_string(),
                        key: key.to_string(),
                    })
                }
                _ => Err(ReadError::Incomplete("s3:// needs a bucket and a key")),
            },
            _ => return None,
        })
    }
}

/// Why a reference to AWS cannot be read: the reference or the call, never the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("unknown query {query:?} ({known})")]
    Query { query: String, known: &'static str },
    #[error("{0}")]
    Incomplete(&'static str),
    #[error(transparent)]
    Call(#[from] super::CallError),
    #[error("{0}, not text")]
    Binary(&'static str),
    #[error("{0} has no value")]
    NoValue(&'static str),
    #[error("the secret is not a JSON object")]
    NotJson,
    #[error("the JSON key {0:?} holds an object or list")]
    NotScalar(String),
    #[error("the secret has no JSON key {0:?}")]
    NoKey(String),
}

/// Fetch every reference, at most [`CONCURRENCY`] at a time.
pub fn fetch_all(
    refs: &[(String, AwsRef)],
    session: &Session,
    scope: &Scope,
) -> crate::Result<HashMap<String, Result<Zeroizing<String>, ReadError>>> {
    if refs.is_empty() {
        return Ok(HashMap::new());
    }
    let conf = session.config(scope)?;
    let place = session.place(scope, conf.region().map(|r| r.as_ref()), None);
    Ok(session.block_on(async {
        let sm = aws_sdk_secretsmanager::Client::new(&conf);
        let ssm = aws_sdk_ssm::Client::new(&conf);
        let s3 = s3_client(&conf);
        let mut out = HashMap::new();
        let work = |(uri, r): (String, AwsRef)| {
            let (sm, ssm, s3, place) = (sm.clone(), ssm.clone(), s3.clone(), place.clone());
            async move { (uri, fetch(&sm, &ssm, &s3, r, &place).await) }
        };
        bounded(refs.iter().cloned(), CONCURRENCY, work, |(uri, v)| {
            out.insert(uri, v);
        })
        .await;
        out
    }))
}

async fn fetch(
    sm: &aws_sdk_secretsmanager::Client,
    ssm: &aws_sdk_ssm::Client,
    s3: &aws_sdk_s3::Client,
    r: AwsRef,
    place: &str,
) -> Result<Zeroizing<String>, ReadError> {
    let failed = |call: &str, reason: String| super::CallError::new(call, Some(place), reason);
    match r {
        AwsRef::Secret {
            id,
            json_key,
            version,
            stage,
            target: _,
        } => {
            let out = sm
                .get_secret_value()
                .secret_id(&id)
                .set_version_id(version)
                .set_version_stage(stage)
                .send()
                .await
                .map_err(|e| {
                    failed(
                        "secretsmanager GetSecretValue",
                        reason(&e, "Secrets Manager"),
                    )
                })?;
            let text = match (out.secret_string, out.secret_binary) {
                (Some(s), _) => Zeroizing::new(s),
                (None, Some(b)) => Zeroizing::new(
                    String::from_utf8(b.into_inner())
                        .map_err(|_| ReadError::Binary("the secret is binary"))?,
                ),
                (None, None) => return Err(ReadError::NoValue("the secret")),
            };
            match json_key {
                None => Ok(text),
                Some(k) => json_field(&text, &k),
            }
        }
        AwsRef::Parameter { name, target: _ } => {
            let out = ssm
                .get_parameter()
                .name(&name)
                .with_decryption(true)
                .send()
                .await
                .map_err(|e| failed("ssm GetParameter", reason(&e, "Parameter Store")))?;
            out.parameter
                .and_then(|p| p.value)
                .map(Zeroizing::new)
                .ok_or(ReadError::NoValue("the parameter"))
        }
        AwsRef::Object { bucket, key } => {
            let out = s3
                .get_object()
                .bucket(&bucket)
                .key(&key)
                .send()
                .await
                .map_err(|e| failed("s3 GetObject", reason(&e, "S3")))?;
            let bytes = out
                .body
                .collect()
                .await
                .map_err(|e| failed("s3 GetObject", e.to_string()))?
                .into_bytes();
            String::from_utf8(bytes.to_vec())
                .map(Zeroizing::new)
                .map_err(|_| ReadError::Binary("the object is binary"))
        }
    }
}

/// One field of a JSON secret, without the secret ever reaching an error message.
fn json_field(text: &str, key: &str) -> Result<Zeroizing<String>, ReadError> {
    let doc = crate::format::Format::Json
        .store()
        .parse(Zeroizing::new(text.as_bytes().to_vec()))
        .map_err(|_| ReadError::NotJson)?;
    let root = &doc.docs[0].root;
    match root.get(key) {
        Some(crate::tree::Node::Leaf(i)) => Ok(Zeroizing::new(
            doc.value_str(*i).unwrap_or_default().to_string(),
        )),
        Some(_) => Err(ReadError::NotScalar(key.to_string())),
        None => Err(ReadError::NoKey(key.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_uris() {
        assert_eq!(
            AwsRef::parse("awsSecret://prod/web#password?stage=AWSPREVIOUS")
                .unwrap()
                .unwrap(),
            AwsRef::Secret {
                id: "prod/web".into(),
                json_key: Some("password".into()),
                version: None,
                stage: Some("AWSPREVIOUS".into()),
                target: None,
            }
        );
        assert_eq!(
            AwsRef::parse("ssm:///prod/web/token").unwrap().unwrap(),
            AwsRef::Parameter {
                name: "/prod/web/token".into(),
                target: None,
            }
        );
        assert_eq!(
            AwsRef::parse("ssm://flat").unwrap().unwrap(),
            AwsRef::Parameter {
                name: "flat".into(),
                target: None,
            }
        );
        assert_eq!(
            AwsRef::parse("ssm:///web/db?target=prod").unwrap().unwrap(),
            AwsRef::Parameter {
                name: "/web/db".into(),
                target: Some("prod".into()),
            }
        );
        assert_eq!(
            AwsRef::parse("awsSecret://web/db?target=prod")
                .unwrap()
                .unwrap()
                .target(),
            Some("prod")
        );
        assert!(AwsRef::parse("ssm:///web/db?stage=x").unwrap().is_err());
        assert_eq!(
            AwsRef::parse("s3://ecs-generic/client-management/admins/smpp")
                .unwrap()
                .unwrap(),
            AwsRef::Object {
                bucket: "ecs-generic".into(),
                key: "client-management/admins/smpp".into()
            }
        );
        assert!(AwsRef::parse("env://X").is_none());
        assert!(AwsRef::parse("s3://bucket").unwrap().is_err());
    }
}
