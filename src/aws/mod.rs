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

/// An AWS call that failed: the call (`s3 GetObject`), where when known, and AWS's
/// reason. Never a value sent or received.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{call}{}: {reason}", place.as_ref().map(|p| format!(" {p}")).unwrap_or_default())]
pub struct CallError {
    pub call: String,
    pub place: Option<String>,
    pub reason: String,
}

impl CallError {
    pub fn new(call: impl Into<String>, place: Option<&str>, reason: impl Into<String>) -> Self {
        CallError {
            call: call.into(),
            place: place.map(str::to_string),
            reason: reason.into(),
        }
    }
}

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
/// as it finishes (so in completion order). A task that panicked panics here too: a bug
/// must not pass for an answer (a missing reference, a secret taken for absent).
pub(crate) async fn bounded<I, T, F, Fut>(items: I, limit: usize, work: F, on_done: impl FnMut(T))
where
    I: IntoIterator,
    F: Fn(I::Item) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    if let Some(panic) = bounded_settled(items, limit, work, on_done).await {
        std::panic::resume_unwind(panic);
    }
}

/// [`bounded`] for callers that account for every item themselves (a push reports a
/// change whose job never finished as failed): the first panic, once the others are
/// done, instead of panicking.
pub(crate) async fn bounded_settled<I, T, F, Fut>(
    items: I,
    limit: usize,
    work: F,
    mut on_done: impl FnMut(T),
) -> Option<Box<dyn std::any::Any + Send>>
where
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
    let mut panicked = None;
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(t) => on_done(t),
            Err(e) if e.is_panic() => {
                panicked.get_or_insert(e.into_panic());
            }
            Err(_) => {}
        }
    }
    panicked
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

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    /// A job that panics is never taken for one that finished: `bounded` panics, and
    /// `bounded_settled` says so once the others are done.
    #[test]
    fn a_panicking_job_is_not_dropped() {
        let work = |i: u32| async move {
            assert!(i != 2, "job {i} fails");
            i
        };
        let mut done = Vec::new();
        let panic = runtime().block_on(bounded_settled(0..5, 2, work, |i| done.push(i)));
        done.sort();
        assert_eq!(done, [0, 1, 3, 4]);
        let message = panic.expect("the panic is handed back");
        assert_eq!(
            message.downcast_ref::<String>().map(String::as_str),
            Some("job 2 fails")
        );
        let caught = std::panic::catch_unwind(|| {
            runtime().block_on(bounded(0..5, 2, work, |_| {}));
        });
        assert!(caught.is_err());
    }
}
