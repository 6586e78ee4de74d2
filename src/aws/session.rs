//! The one way coffer reaches AWS. Every service (KMS, STS, Secrets Manager, SSM, S3) gets
//! its configuration here: one runtime, one loader over the SDK's default chain (profiles,
//! SSO, credential process, web identity, `role_arn` chains), one retry configuration, and
//! the piece the SDK lacks: profiles whose role needs an MFA code. The code is asked for
//! once per MFA profile and process, through a callback the CLI supplies, and the role's
//! session is reused by every scope and service built on that profile.
//!
//! Endpoints come from the standard `AWS_ENDPOINT_URL`, which is how tests reach a local
//! AWS: there is no test switch in this code.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use aws_config::BehaviorVersion;
use aws_sdk_kms::config::http::HttpResponse;
use aws_sdk_kms::config::{Credentials, SharedCredentialsProvider};
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use zeroize::Zeroizing;

/// Asks for the MFA code of a device (its serial is the argument); the CLI's terminal
/// prompt or `COFFER_MFA_TOKEN`.
pub type MfaCode = Box<dyn Fn(&str) -> Result<Zeroizing<String>, String> + Send + Sync>;

/// What the process knows about AWS before any call, resolved at the CLI edge.
pub struct Settings {
    /// `--aws-profile`, else `AWS_PROFILE`: the profile of scopes that name none.
    pub profile: Option<String>,
    /// The shared config file (`AWS_CONFIG_FILE`, else `~/.aws/config`), read for MFA
    /// profiles only; the SDK reads it for everything else.
    pub config_file: Option<PathBuf>,
    pub mfa_code: MfaCode,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            profile: None,
            config_file: None,
            mfa_code: Box::new(|serial| Err(format!("the profile needs an MFA code for {serial}"))),
        }
    }
}

/// Who calls AWS, and where: a profile (default: the session's), a region (default: the
/// profile's or the environment's), and a role assumed on top.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Scope {
    pub profile: Option<String>,
    pub region: Option<String>,
    pub role: Option<String>,
}

/// Throttling and transient errors are retried with exponential backoff, 3 attempts at
/// most, so a rate-limited AWS slows coffer down without failing it or hanging it.
pub fn retry_config() -> aws_config::retry::RetryConfig {
    aws_config::retry::RetryConfig::standard().with_max_attempts(3)
}

/// The AWS side of one process.
pub struct Session {
    settings: Settings,
    runtime: OnceLock<tokio::runtime::Runtime>,
    configs: Mutex<HashMap<Scope, aws_config::SdkConfig>>,
    /// Credentials of MFA profiles' roles, by profile name.
    mfa_sessions: Mutex<HashMap<String, Credentials>>,
    /// Held while an MFA role is assumed, so two threads never ask for two codes.
    mfa_lock: Mutex<()>,
}

impl Session {
    pub fn new(settings: Settings) -> Session {
        Session {
            settings,
            runtime: OnceLock::new(),
            configs: Mutex::new(HashMap::new()),
            mfa_sessions: Mutex::new(HashMap::new()),
            mfa_lock: Mutex::new(()),
        }
    }

    /// Run a future to completion on the session's runtime. Not from inside another
    /// `block_on`.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime
            .get_or_init(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a single-threaded runtime can always be built")
            })
            .block_on(f)
    }

    /// The configuration for `scope`, made once per process. Failing here means an MFA
    /// role could not be assumed; every other credential problem shows on the first call.
    pub fn config(&self, scope: &Scope) -> Result<aws_config::SdkConfig, String> {
        if let Some(c) = self.configs.lock().expect("config cache lock").get(scope) {
            return Ok(c.clone());
        }
        let profile = scope
            .profile
            .clone()
            .or_else(|| self.settings.profile.clone());
        let mut conf = self.block_on(load(profile.as_deref(), scope.region.as_deref()));
        // The SDK would assume an MFA profile's role without the code: coffer does it.
        let chain = self.settings.config_file.as_deref().and_then(|file| {
            let text = std::fs::read_to_string(file).ok()?;
            mfa_chain(
                &parse_profiles(&text),
                profile.as_deref().unwrap_or("default"),
            )
        });
        if let Some(chain) = chain {
            let creds = self.mfa_session(&chain.mfa, conf.region().cloned())?;
            conf = with_credentials(conf, SharedCredentialsProvider::new(creds));
            // Roles of the profiles above the MFA one, nearest first.
            for (role, session_name) in chain.above.iter().rev() {
                conf = self.block_on(assume(conf, role, session_name));
            }
        }
        if let Some(role) = &scope.role {
            conf = self.block_on(assume(conf, role, "coffer"));
        }
        self.configs
            .lock()
            .expect("config cache lock")
            .insert(scope.clone(), conf.clone());
        Ok(conf)
    }

    /// Credentials of an MFA profile's role: the code is asked for once per process.
    fn mfa_session(
        &self,
        m: &MfaProfile,
        region: Option<aws_config::Region>,
    ) -> Result<Credentials, String> {
        let _one_at_a_time = self.mfa_lock.lock().expect("MFA lock");
        if let Some(c) = self.mfa_sessions.lock().expect("MFA lock").get(&m.name) {
            return Ok(c.clone());
        }
        let code = (self.settings.mfa_code)(&m.mfa_serial)?;
        let creds = self.block_on(async {
            let mut conf = match &m.source {
                Source::Profile(p) => load(Some(p), None).await,
                Source::Credential(kind) => {
                    use aws_config::{ecs, environment, imds};
                    let provider = match kind.as_str() {
                        "Environment" => SharedCredentialsProvider::new(
                            environment::EnvironmentVariableCredentialsProvider::new(),
                        ),
                        "Ec2InstanceMetadata" => SharedCredentialsProvider::new(
                            imds::credentials::ImdsCredentialsProvider::builder().build(),
                        ),
                        "EcsContainer" => SharedCredentialsProvider::new(
                            ecs::EcsCredentialsProvider::builder().build(),
                        ),
                        other => {
                            return Err(format!(
                                "profile {}: credential_source {other:?} is not Environment, Ec2InstanceMetadata or EcsContainer",
                                m.name
                            ))
                        }
                    };
                    with_credentials(load(None, None).await, provider)
                }
            };
            if conf.region().is_none() {
                // STS answers in every region; it needs one to sign for.
                conf = conf
                    .into_builder()
                    .region(region.unwrap_or(aws_config::Region::from_static("us-east-1")))
                    .build();
            }
            let out = aws_sdk_sts::Client::new(&conf)
                .assume_role()
                .role_arn(&m.role_arn)
                .role_session_name(&m.session_name)
                .serial_number(&m.mfa_serial)
                .token_code(code.as_str())
                .send()
                .await
                .map_err(|e| format!("assuming {} with MFA: {}", m.role_arn, reason(&e, "STS")))?;
            let c = out
                .credentials
                .ok_or("STS returned no credentials".to_string())?;
            Ok::<_, String>(Credentials::new(
                c.access_key_id,
                c.secret_access_key,
                Some(c.session_token),
                None,
                "coffer-mfa",
            ))
        })?;
        self.mfa_sessions
            .lock()
            .expect("MFA lock")
            .insert(m.name.clone(), creds.clone());
        Ok(creds)
    }
}

async fn load(profile: Option<&str>, region: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).retry_config(retry_config());
    if let Some(p) = profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = region {
        loader = loader.region(aws_config::Region::new(r.to_string()));
    }
    loader.load().await
}

fn with_credentials(
    conf: aws_config::SdkConfig,
    creds: SharedCredentialsProvider,
) -> aws_config::SdkConfig {
    conf.into_builder().credentials_provider(creds).build()
}

/// `conf` acting as `role`, assumed with `conf`'s own credentials when first used.
async fn assume(
    conf: aws_config::SdkConfig,
    role: &str,
    session_name: &str,
) -> aws_config::SdkConfig {
    let mut builder = aws_config::sts::AssumeRoleProvider::builder(role)
        .session_name(session_name)
        .configure(&conf);
    if let Some(r) = conf.region() {
        builder = builder.region(r.clone());
    }
    let provider = builder.build().await;
    with_credentials(conf, SharedCredentialsProvider::new(provider))
}

/// A profile that assumes a role with an MFA code.
#[derive(Clone, Debug, PartialEq, Eq)]
struct MfaProfile {
    name: String,
    role_arn: String,
    source: Source,
    mfa_serial: String,
    session_name: String,
}

/// Where an MFA profile's own credentials come from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Source {
    /// `source_profile` (default: `default`).
    Profile(String),
    /// `credential_source`: `Environment`, `Ec2InstanceMetadata` or `EcsContainer`.
    Credential(String),
}

/// The way from a profile down to the first profile in its `source_profile` chain that
/// needs an MFA code.
#[derive(Debug, PartialEq, Eq)]
struct MfaChain {
    mfa: MfaProfile,
    /// (role, session name) of the profiles above it, from the selected one down.
    above: Vec<(String, String)>,
}

type Profiles = HashMap<String, HashMap<String, String>>;

/// The sections of a shared config file: `[default]` and `[profile NAME]`.
fn parse_profiles(text: &str) -> Profiles {
    let mut out: Profiles = HashMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let header = header.trim();
            current = match header.strip_prefix("profile") {
                Some(name) if name.starts_with(char::is_whitespace) => Some(name.trim().into()),
                _ if header == "default" => Some("default".into()),
                _ => None,
            };
            continue;
        }
        if let (Some(section), Some((k, v))) = (&current, line.split_once('=')) {
            out.entry(section.clone())
                .or_default()
                .insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    out
}

fn mfa_chain(profiles: &Profiles, selected: &str) -> Option<MfaChain> {
    let mut above = Vec::new();
    let mut name = selected.to_string();
    // A chain longer than this is a loop in the file; the SDK reports it.
    for _ in 0..16 {
        let p = profiles.get(&name)?;
        let role = p.get("role_arn")?;
        let session_name = p
            .get("role_session_name")
            .cloned()
            .unwrap_or_else(|| "coffer".into());
        if let Some(serial) = p.get("mfa_serial") {
            return Some(MfaChain {
                mfa: MfaProfile {
                    name,
                    role_arn: role.clone(),
                    source: match (p.get("source_profile"), p.get("credential_source")) {
                        (Some(sp), _) => Source::Profile(sp.clone()),
                        (None, Some(cs)) => Source::Credential(cs.clone()),
                        (None, None) => Source::Profile("default".into()),
                    },
                    mfa_serial: serial.clone(),
                    session_name,
                },
                above,
            });
        }
        above.push((role.clone(), session_name));
        name = p.get("source_profile")?.clone();
    }
    None
}

/// One line: AWS's error code and message (with what the code usually means), or why no
/// request could be made to `service`.
pub fn reason<E>(e: &SdkError<E, HttpResponse>, service: &str) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    reason_as(e, service, None)
}

/// [`reason`], naming the profile the credentials were looked for in.
pub fn reason_as<E>(e: &SdkError<E, HttpResponse>, service: &str, profile: Option<&str>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let SdkError::ServiceError(se) = e {
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
        let hint = match code.as_str() {
            "InvalidCiphertextException" => {
                " (wrong encryption context, or not this key's ciphertext)"
            }
            "NotFoundException" if service == "KMS" => {
                " (no such key or alias in that account and region)"
            }
            "DisabledException" => " (the key is disabled)",
            "AccessDeniedException" if service == "KMS" => {
                " (the credentials may not use this key)"
            }
            _ => "",
        };
        return match err.message() {
            Some(m) if !m.is_empty() => format!("{code}: {m}{hint}"),
            _ => format!("{code}{hint}"),
        };
    }
    unanswered(e, service, profile)
}

/// Why a request got no answer: no credentials, an unreachable endpoint, or the SDK's own
/// reason, without its debug dump of the whole chain.
fn unanswered<E, R>(e: &SdkError<E, R>, service: &str, profile: Option<&str>) -> String
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
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            format!("cannot reach {service}: {line}")
        }
        _ => line,
    }
}

/// AWS's error code, when the service answered.
pub fn code<E, R>(e: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match e {
        SdkError::ServiceError(se) => se.err().code(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "\
[default]
region = eu-west-1

[profile base]
region = eu-west-1

# the admin role needs MFA
[profile admin]
role_arn = arn:aws:iam::222222222222:role/admin
source_profile = base
mfa_serial = arn:aws:iam::111111111111:mfa/alice

[profile deploy]
role_arn = arn:aws:iam::333333333333:role/deploy
source_profile = admin
role_session_name = ci

[profile ci]
role_arn = arn:aws:iam::666666666666:role/ci
credential_source = Environment
mfa_serial = arn:aws:iam::111111111111:mfa/bob

[profile plain]
role_arn = arn:aws:iam::444444444444:role/plain
source_profile = base

[profile loop]
role_arn = arn:aws:iam::555555555555:role/loop
source_profile = loop
";

    #[test]
    fn mfa_chains_are_found_through_source_profiles() {
        let p = parse_profiles(CONFIG);
        let admin = mfa_chain(&p, "admin").expect("admin needs MFA");
        assert_eq!(admin.mfa.source, Source::Profile("base".into()));
        assert_eq!(admin.mfa.mfa_serial, "arn:aws:iam::111111111111:mfa/alice");
        assert!(admin.above.is_empty());
        // A role whose source profile needs MFA: the code is for admin, then deploy's role.
        let deploy = mfa_chain(&p, "deploy").expect("deploy sits on admin");
        assert_eq!(deploy.mfa, admin.mfa);
        assert_eq!(
            deploy.above,
            vec![("arn:aws:iam::333333333333:role/deploy".into(), "ci".into())]
        );
        assert_eq!(
            mfa_chain(&p, "ci").expect("ci needs MFA").mfa.source,
            Source::Credential("Environment".into())
        );
        // No MFA anywhere, no role, an unknown profile, a loop: the SDK's business.
        for name in ["plain", "base", "default", "nope", "loop"] {
            assert_eq!(mfa_chain(&p, name), None, "{name}");
        }
    }

    /// A local endpoint that answers 503 `fail` times, then a KMS Decrypt answer; it
    /// counts the requests it got.
    fn flaky_kms(fail: usize) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::{BufRead, BufReader, Read, Write};
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let answer = if n < fail {
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
                } else {
                    let json = r#"{"KeyId":"k","Plaintext":"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="}"#;
                    format!("HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}", json.len())
                };
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        (url, seen)
    }

    /// Every client the session makes carries the retry bound: throttled calls are tried
    /// again, three attempts in all, against a real (local) HTTP endpoint.
    #[test]
    fn throttling_is_retried_within_a_bound() {
        use aws_sdk_kms::primitives::Blob;
        use std::sync::atomic::Ordering;
        let session = Session::new(Settings::default());
        let scope = Scope {
            region: Some("eu-west-1".into()),
            ..Scope::default()
        };
        let conf = session.config(&scope).unwrap();
        let client = |url: &str| {
            aws_sdk_kms::Client::from_conf(
                aws_sdk_kms::config::Builder::from(&conf)
                    .endpoint_url(url)
                    .credentials_provider(Credentials::new("x", "y", None, None, "test"))
                    .build(),
            )
        };
        // Two throttled answers, then success: the third attempt succeeds.
        let (url, seen) = flaky_kms(2);
        let out = session.block_on(
            client(&url)
                .decrypt()
                .ciphertext_blob(Blob::new(vec![1u8]))
                .send(),
        );
        assert!(out.is_ok(), "{out:?}");
        assert_eq!(seen.load(Ordering::SeqCst), 3);
        // Always throttled: it gives up after three attempts, with the error.
        let (url, seen) = flaky_kms(usize::MAX);
        let out = session.block_on(
            client(&url)
                .decrypt()
                .ciphertext_blob(Blob::new(vec![1u8]))
                .send(),
        );
        assert_eq!(
            out.map_err(|e| reason(&e, "KMS")).err().as_deref(),
            Some("HTTP 503")
        );
        assert_eq!(seen.load(Ordering::SeqCst), 3);
    }
}
