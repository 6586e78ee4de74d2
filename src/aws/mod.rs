//! AWS services besides KMS: reading Secrets Manager, SSM Parameter Store and S3 for
//! `render` sources, pushing a file's values into Secrets Manager or SSM, and moving
//! secrets kept in S3 into Secrets Manager.
//!
//! Every client comes from the default credential chain (`AWS_ENDPOINT_URL` reaches a
//! test endpoint) with the retry bound of the KMS keys.

use aws_config::BehaviorVersion;
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata};
use zeroize::Zeroizing;

pub mod migrate;
pub mod push;
pub mod read;

/// At most this many AWS requests are in flight at once.
pub const CONCURRENCY: usize = 8;

/// Where and as whom to call AWS: `--region` and `--aws-profile`, each falling back to the
/// default chain.
#[derive(Clone, Debug, Default)]
pub struct Connection {
    pub region: Option<String>,
    pub profile: Option<String>,
}

impl Connection {
    pub(crate) async fn load(&self) -> aws_config::SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(crate::keys::kms::retry_config());
        if let Some(p) = &self.profile {
            loader = loader.profile_name(p);
        }
        if let Some(r) = &self.region {
            loader = loader.region(aws_config::Region::new(r.clone()));
        }
        loader.load().await
    }
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a single-threaded runtime can always be built")
}

/// Path-style addressing, so bucket names never become host names (a local endpoint has
/// no DNS for them, and dotted bucket names break TLS on virtual hosts).
pub(crate) fn s3_client(conf: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(conf)
            .force_path_style(true)
            .build(),
    )
}

/// Run `work` on every item, at most `limit` at a time, handing each result to `on_done`
/// as it finishes (so in completion order). A task that panicked is dropped.
pub(crate) async fn bounded<I, T, F, Fut>(
    items: I,
    limit: usize,
    work: F,
    mut on_done: impl FnMut(T),
) where
    I: IntoIterator,
    F: Fn(I::Item) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(limit));
    let mut tasks = tokio::task::JoinSet::new();
    for item in items {
        let (job, permits) = (work(item), permits.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("never closed");
            job.await
        });
    }
    while let Some(done) = tasks.join_next().await {
        if let Ok(t) = done {
            on_done(t);
        }
    }
}

/// A secret's value: text, or bytes for objects that are not UTF-8.
#[derive(Clone, PartialEq, Eq)]
pub enum Payload {
    Text(Zeroizing<String>),
    Binary(Zeroizing<Vec<u8>>),
}

impl Payload {
    pub fn from_bytes(bytes: Vec<u8>) -> Payload {
        match String::from_utf8(bytes) {
            Ok(s) => Payload::Text(Zeroizing::new(s)),
            Err(e) => Payload::Binary(Zeroizing::new(e.into_bytes())),
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Payload::Text(s) => s.as_bytes(),
            Payload::Binary(b) => b,
        }
    }
}

/// One line: AWS's error code and message, or why no request could be made.
pub(crate) fn reason<E>(
    e: &aws_sdk_kms::error::SdkError<E, aws_sdk_kms::config::http::HttpResponse>,
) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let aws_sdk_kms::error::SdkError::ServiceError(se) = e {
        let err = se.err();
        let code = match err.code() {
            Some(c) => c.to_string(),
            // An answer the SDK could not read (a proxy's page, an endpoint's own format):
            // the HTTP status still says what happened.
            None => match se.raw().status().as_u16() {
                403 => "HTTP 403 (access denied)".into(),
                s => format!("HTTP {s}"),
            },
        };
        return match err.message() {
            Some(m) if !m.is_empty() => format!("{code}: {m}"),
            _ => code,
        };
    }
    unanswered(e, "AWS", None)
}

/// Why a request got no answer from `service`, in one line: no credentials (naming the
/// profile tried), an unreachable endpoint, or the SDK's own reason.
pub(crate) fn unanswered<E, R>(
    e: &aws_sdk_kms::error::SdkError<E, R>,
    service: &str,
    profile: Option<&str>,
) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let text = DisplayErrorContext(e).to_string();
    // The SDK reports a missing credential chain as a dispatch failure too.
    if text.contains("no credentials found") || text.contains("credential provider was not enabled")
    {
        let tried = profile.map_or_else(
            || "the default credential chain".to_string(),
            |p| format!("profile {p:?}"),
        );
        return format!("no AWS credentials found (tried {tried})");
    }
    // Each cause's message, without the SDK's debug dump of the whole chain.
    let mut parts = vec![e.to_string()];
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let m = c.to_string();
        if !parts.iter().any(|p| p.contains(&m)) {
            parts.push(m);
        }
        cause = c.source();
    }
    let line = parts
        .join(": ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    match e {
        aws_sdk_kms::error::SdkError::DispatchFailure(_)
        | aws_sdk_kms::error::SdkError::TimeoutError(_) => {
            format!("cannot reach {service}: {line}")
        }
        _ => line,
    }
}

/// AWS's error code, when the service answered.
pub(crate) fn code<E, R>(e: &aws_sdk_kms::error::SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match e {
        aws_sdk_kms::error::SdkError::ServiceError(se) => se.err().code(),
        _ => None,
    }
}
