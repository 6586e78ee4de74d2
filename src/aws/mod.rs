//! AWS: the [`session`] every service is reached through (KMS keys included), reading
//! Secrets Manager, SSM Parameter Store and S3 for `render` sources, pushing a file's
//! values into Secrets Manager or SSM, and moving secrets kept in S3 into Secrets Manager.

use zeroize::Zeroizing;

pub mod cache;
pub mod migrate;
pub mod profiles;
pub mod publish;
pub mod push;
pub mod read;
pub mod session;

pub use session::{code, reason, Scope, Session};

/// At most this many AWS requests are in flight at once.
pub const CONCURRENCY: usize = 8;

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
