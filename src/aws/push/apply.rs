//! Applying a plan: one job per change, run with bounded concurrency, each write made
//! once (request tokens, SSM writes retried only after looking whether they landed).

use super::*;

/// How `--prune` deletes Secrets Manager secrets.
#[derive(Clone, Copy, Debug)]
pub enum Deletion {
    /// Recoverable for this many days (7 to 30).
    Recoverable(i64),
    /// Gone at once.
    Force,
}

/// What happened to one change.
pub struct Outcome {
    pub name: String,
    pub action: Action,
    /// The secret's or parameter's ARN when AWS said it, or AWS's reason for refusing.
    pub result: std::result::Result<Option<String>, ChangeError>,
}

/// Why a change was not made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error(transparent)]
    Call(#[from] crate::aws::CallError),
    #[error("Parameter Store holds text only")]
    BinaryToSsm,
    /// Its task ended without an outcome.
    #[error("coffer failed while applying it (a bug; it may or may not have been made)")]
    Panicked,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let done = match self.action {
            Action::Create => "created",
            Action::Restore => "restored",
            Action::Update => "updated",
            Action::Unchanged => "unchanged",
            Action::Delete => "deleted",
            Action::Leftover => "left",
        };
        match &self.result {
            Ok(_) => write!(f, "{done} {}", self.name),
            Err(why) => write!(f, "not {done}: {}: {why}", self.name),
        }
    }
}

pub(super) struct Job {
    /// Where its calls go, for its errors.
    pub(super) place: String,
    pub(super) sm: aws_sdk_secretsmanager::Client,
    pub(super) ssm: aws_sdk_ssm::Client,
    pub(super) service: Service,
    pub(super) change: Change,
    pub(super) value: Option<Payload>,
    pub(super) token: Option<String>,
    /// For a restored secret, whose replaced version is known only once it is restored.
    pub(super) token_key: Option<TokenKey>,
    pub(super) kms_key_id: Option<String>,
    pub(super) description: Option<String>,
    pub(super) tags: Vec<(String, String)>,
    pub(super) deletion: Deletion,
}

impl Job {
    pub(super) async fn run(self) -> std::result::Result<Option<String>, ChangeError> {
        match self.service {
            Service::SecretsManager => self.run_secret().await,
            Service::Ssm => self.run_parameter().await,
        }
    }

    pub(super) async fn run_secret(self) -> std::result::Result<Option<String>, ChangeError> {
        use aws_sdk_secretsmanager::types::Tag;
        let place = self.place.clone();
        let c = &self.change;
        let id = c.arn.clone().unwrap_or_else(|| c.name.clone());
        let (string, binary) = match &self.value {
            Some(Payload::Text(s)) => (Some(s.to_string()), None),
            Some(Payload::Binary(b)) => (None, Some(Blob::new(b.to_vec()))),
            None => (None, None),
        };
        let tag = |(k, v): &(String, String)| Tag::builder().key(k).value(v).build();
        match c.action {
            Action::Create => {
                let out = self
                    .sm
                    .create_secret()
                    .name(&c.name)
                    .set_secret_string(string)
                    .set_secret_binary(binary)
                    .set_kms_key_id(self.kms_key_id)
                    .set_description(self.description)
                    .set_tags(Some(self.tags.iter().map(tag).collect()))
                    .set_client_request_token(self.token)
                    .send()
                    .await
                    .map_err(|e| failed("secretsmanager CreateSecret", &place, &e))?;
                Ok(out.arn().map(str::to_string))
            }
            Action::Restore | Action::Update => {
                let mut request_token = self.token.clone();
                if c.action == Action::Restore {
                    self.sm
                        .restore_secret()
                        .secret_id(&id)
                        .send()
                        .await
                        .map_err(|e| failed("secretsmanager RestoreSecret", &place, &e))?;
                    // The token names the version it replaces, known only now: without it,
                    // a value the secret once had would repeat that version's token, and
                    // AWS would take the write for a retry and change nothing.
                    let current = self
                        .sm
                        .describe_secret()
                        .secret_id(&id)
                        .send()
                        .await
                        .map_err(|e| failed("secretsmanager DescribeSecret", &place, &e))?
                        .version_ids_to_stages()
                        .and_then(|v| {
                            v.iter()
                                .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
                                .map(|(id, _)| id.clone())
                        });
                    if let (Some(key), Some(value)) = (&self.token_key, &self.value) {
                        request_token = Some(token(key, &c.name, current.as_deref(), value));
                    }
                }
                // The key first, so the new value is encrypted under it.
                if c.drift.kms_key_id.is_some() || c.drift.description.is_some() {
                    self.sm
                        .update_secret()
                        .secret_id(&id)
                        .set_kms_key_id(c.drift.kms_key_id.clone())
                        .set_description(c.drift.description.clone())
                        .send()
                        .await
                        .map_err(|e| failed("secretsmanager UpdateSecret", &place, &e))?;
                }
                let mut arn = c.arn.clone();
                if c.value_changed || c.action == Action::Restore {
                    let out = self
                        .sm
                        .put_secret_value()
                        .secret_id(&id)
                        .set_secret_string(string)
                        .set_secret_binary(binary)
                        .set_client_request_token(request_token)
                        .send()
                        .await
                        .map_err(|e| failed("secretsmanager PutSecretValue", &place, &e))?;
                    arn = out.arn().map(str::to_string).or(arn);
                }
                if !c.drift.tag.is_empty() {
                    self.sm
                        .tag_resource()
                        .secret_id(&id)
                        .set_tags(Some(c.drift.tag.iter().map(tag).collect()))
                        .send()
                        .await
                        .map_err(|e| failed("secretsmanager TagResource", &place, &e))?;
                }
                if !c.drift.untag.is_empty() {
                    self.sm
                        .untag_resource()
                        .secret_id(&id)
                        .set_tag_keys(Some(c.drift.untag.clone()))
                        .send()
                        .await
                        .map_err(|e| failed("secretsmanager UntagResource", &place, &e))?;
                }
                Ok(arn)
            }
            Action::Delete => {
                let req = self.sm.delete_secret().secret_id(&id);
                let req = match self.deletion {
                    Deletion::Recoverable(days) => req.recovery_window_in_days(days),
                    Deletion::Force => req.force_delete_without_recovery(true),
                };
                req.send()
                    .await
                    .map_err(|e| failed("secretsmanager DeleteSecret", &place, &e))?;
                Ok(c.arn.clone())
            }
            Action::Unchanged | Action::Leftover => Ok(c.arn.clone()),
        }
    }

    pub(super) async fn run_parameter(self) -> std::result::Result<Option<String>, ChangeError> {
        use aws_sdk_ssm::types::{ParameterTier, ParameterType, ResourceTypeForTagging, Tag};
        let place = self.place.clone();
        let c = &self.change;
        let value = match &self.value {
            Some(Payload::Text(s)) => Zeroizing::new(s.to_string()),
            Some(Payload::Binary(_)) => return Err(ChangeError::BinaryToSsm),
            None => Zeroizing::new(String::new()),
        };
        let tag = |(k, v): &(String, String)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .expect("key and value are set")
        };
        match c.action {
            Action::Create | Action::Restore | Action::Update => {
                let create = c.action != Action::Update;
                // A new key or description is a write of the value (a new version).
                let write = create
                    || c.value_changed
                    || c.retyped
                    || c.drift.kms_key_id.is_some()
                    || c.drift.description.is_some();
                if write {
                    let put = || {
                        let mut req = self
                            .ssm
                            .put_parameter()
                            .name(&c.name)
                            .value(value.as_str())
                            .r#type(ParameterType::SecureString)
                            .set_key_id(c.put_key.clone())
                            .set_description(c.put_description.clone())
                            .overwrite(!create);
                        if c.advanced {
                            req = req.tier(ParameterTier::Advanced);
                        }
                        // AWS takes tags only on a parameter's first write.
                        if create {
                            for t in &self.tags {
                                req = req.tags(tag(t));
                            }
                        }
                        // coffer retries itself, looking first whether the write landed.
                        req.customize().config_override(
                            aws_sdk_ssm::config::Builder::default()
                                .retry_config(aws_config::retry::RetryConfig::disabled()),
                        )
                    };
                    // Landed: a version after the one planned on, holding this value. (With
                    // the value alone, a write of settings would look done before it is.)
                    let planned: i64 = c
                        .version
                        .as_deref()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    let landed = || async {
                        let got = self
                            .ssm
                            .get_parameter()
                            .name(&c.name)
                            .with_decryption(true)
                            .send()
                            .await
                            .ok()?
                            .parameter?;
                        let secure = got.r#type() == Some(&ParameterType::SecureString);
                        Some(
                            secure
                                && got.version() > planned
                                && got.value().is_some_and(|v| v == value.as_str()),
                        )
                    };
                    retry_checked(
                        RETRIES,
                        || async { put().send().await.map(|_| ()) },
                        || async { landed().await.unwrap_or(false) },
                        transient,
                    )
                    .await
                    .map_err(|e| failed("ssm PutParameter", &place, &e))?;
                }
                if !create && !c.drift.tag.is_empty() {
                    self.ssm
                        .add_tags_to_resource()
                        .resource_type(ResourceTypeForTagging::Parameter)
                        .resource_id(&c.name)
                        .set_tags(Some(c.drift.tag.iter().map(tag).collect()))
                        .send()
                        .await
                        .map_err(|e| failed("ssm AddTagsToResource", &place, &e))?;
                }
                if !create && !c.drift.untag.is_empty() {
                    self.ssm
                        .remove_tags_from_resource()
                        .resource_type(ResourceTypeForTagging::Parameter)
                        .resource_id(&c.name)
                        .set_tag_keys(Some(c.drift.untag.clone()))
                        .send()
                        .await
                        .map_err(|e| failed("ssm RemoveTagsFromResource", &place, &e))?;
                }
                Ok(c.arn.clone())
            }
            Action::Delete => {
                match self.ssm.delete_parameter().name(&c.name).send().await {
                    Ok(_) => Ok(c.arn.clone()),
                    // Already gone is what a delete wants.
                    Err(e) if code(&e) == Some("ParameterNotFound") => Ok(c.arn.clone()),
                    Err(e) => Err(failed("ssm DeleteParameter", &place, &e).into()),
                }
            }
            Action::Unchanged | Action::Leftover => Ok(c.arn.clone()),
        }
    }
}

/// The changes to apply whose task ended without an outcome (it panicked), as failures:
/// never left out of the count as if they had been made.
pub(super) fn unreported(plan: &Plan, done: &HashSet<usize>) -> Vec<(usize, Outcome)> {
    plan.changes
        .iter()
        .enumerate()
        .filter(|(i, c)| {
            !done.contains(i) && !matches!(c.action, Action::Unchanged | Action::Leftover)
        })
        .map(|(i, c)| {
            let outcome = Outcome {
                name: c.name.clone(),
                action: c.action,
                result: Err(ChangeError::Panicked),
            };
            (i, outcome)
        })
        .collect()
}

/// `secretsmanager PutSecretValue in REGION (account A, profile P): reason`: a failed
/// write, as the report lists it beside the name.
pub(super) fn failed<E>(
    operation: &str,
    place: &str,
    e: &aws_sdk_kms::error::SdkError<E, aws_sdk_kms::config::http::HttpResponse>,
) -> crate::aws::CallError
where
    E: aws_sdk_kms::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let service = if operation.starts_with("ssm") {
        "Parameter Store"
    } else {
        "Secrets Manager"
    };
    crate::aws::CallError::new(operation, Some(place), reason(e, service))
}

/// Attempts of a Parameter Store write, the first included.
pub(super) const RETRIES: u32 = 3;

/// Whether a failed call may succeed when made again: no answer, throttling, or a
/// server-side error.
pub(super) fn transient<E: aws_sdk_kms::error::ProvideErrorMetadata>(
    e: &aws_sdk_kms::error::SdkError<E, aws_sdk_kms::config::http::HttpResponse>,
) -> bool {
    use aws_sdk_kms::error::SdkError;
    match e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(se) => {
            se.raw().status().is_server_error()
                || matches!(
                    se.err().code(),
                    Some("ThrottlingException" | "TooManyUpdates" | "InternalServerError")
                )
        }
        _ => false,
    }
}

/// Make a write, and after a transient failure look whether it landed anyway (the answer
/// may be what was lost) before making it again: a Parameter Store write that is repeated
/// makes a second version of the same value.
pub(super) async fn retry_checked<E, W, WF, L, LF>(
    attempts: u32,
    mut write: W,
    mut landed: L,
    transient: impl Fn(&E) -> bool,
) -> std::result::Result<(), E>
where
    W: FnMut() -> WF,
    WF: std::future::Future<Output = std::result::Result<(), E>>,
    L: FnMut() -> LF,
    LF: std::future::Future<Output = bool>,
{
    let mut attempt = 1;
    loop {
        match write().await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < attempts && transient(&e) => {
                tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
                if landed().await {
                    return Ok(());
                }
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_without_an_outcome_is_a_failure() {
        let plan = Plan {
            service: Service::SecretsManager,
            changes: vec![
                Change::new(Action::Create, "a", None),
                Change::new(Action::Unchanged, "b", None),
                Change::new(Action::Update, "c", None),
                Change::new(Action::Leftover, "d", None),
                Change::new(Action::Delete, "e", None),
            ],
            desired: Vec::new(),
        };
        let missing = |done: &[usize]| -> Vec<String> {
            unreported(&plan, &done.iter().copied().collect())
                .into_iter()
                .map(|(_, o)| o.to_string())
                .collect()
        };
        assert_eq!(
            missing(&[0, 2]),
            ["not deleted: e: coffer failed while applying it (a bug; it may or may not have been made)"]
        );
        assert_eq!(missing(&[0, 2, 4]), Vec::<String>::new());
        assert_eq!(missing(&[]).len(), 3);
    }

    #[test]
    fn a_write_whose_answer_was_lost_is_not_made_twice() {
        use std::cell::Cell;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let run = |fails: u32, lands: bool| {
            let (writes, looks) = (Cell::new(0), Cell::new(0));
            let res = rt.block_on(retry_checked(
                3,
                || {
                    writes.set(writes.get() + 1);
                    let n = writes.get();
                    async move {
                        if n <= fails {
                            Err("timeout")
                        } else {
                            Ok(())
                        }
                    }
                },
                || {
                    looks.set(looks.get() + 1);
                    async move { lands }
                },
                |e: &&str| *e == "timeout",
            ));
            (res, writes.get(), looks.get())
        };
        // The first write landed but its answer was lost: one look, no second write.
        assert_eq!(run(1, true), (Ok(()), 1, 1));
        // It did not land: written again.
        assert_eq!(run(1, false), (Ok(()), 2, 1));
        // Never answers: gives up after three writes.
        assert_eq!(run(9, false), (Err("timeout"), 3, 2));
    }
}
