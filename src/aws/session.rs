//! The one way coffer reaches AWS. Every service (KMS, STS, Secrets Manager, SSM, S3) gets
//! its configuration here: one runtime, one loader over the SDK's default chain (profiles,
//! SSO, credential process, web identity), one retry configuration, and what the SDK
//! lacks, done as the aws CLI and aws-vault do it:
//!
//! - roles of profiles (`role_arn` chains) are assumed here, each session kept in the aws
//!   CLI's cache ([`super::cache`]) so later processes, and the aws CLI, reuse it;
//! - an MFA device (`mfa_serial`) is asked for one code, for a `GetSessionToken` session
//!   that every role on that device is then assumed from, cached too;
//! - which profile counts: `--aws-profile`, then a key's or target's own, then
//!   `AWS_PROFILE`, then the default chain; a profile named anywhere must exist.
//!
//! Endpoints come from the standard `AWS_ENDPOINT_URL`, which is how tests reach a local
//! AWS: there is no test switch in this code.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use aws_config::BehaviorVersion;
use aws_sdk_kms::config::http::HttpResponse;
use aws_sdk_kms::config::{Credentials, ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use zeroize::Zeroizing;

use super::cache::{Cache, Sts};
use super::profiles::{self, Base, Chain, Device, Profiles, Role};

/// Asks for the code of an MFA device: the profile that names it, and its serial.
pub type MfaCode =
    Box<dyn Fn(&str, &str) -> Result<Zeroizing<String>, crate::prompt::Unanswered> + Send + Sync>;

/// Why no credentials could be made for a scope: a profile, a role of its chain, an MFA
/// device. Names profiles, roles and accounts, never a key.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Profile(#[from] profiles::Error),
    /// The front end could not get the MFA code, and says why.
    #[error(transparent)]
    MfaCode(#[from] crate::prompt::Unanswered),
    /// STS refused or could not be reached: the call, where, and AWS's reason.
    #[error("sts {call} {place}: {reason}")]
    Sts {
        call: String,
        place: String,
        reason: String,
    },
    #[error("STS returned no credentials")]
    NoStsCredentials,
    #[error("no AWS credentials for {base}: {reason}")]
    NoCredentials { base: String, reason: String },
    #[error("profile {profile}: an MFA session (GetSessionToken) needs long-term keys, and {base} gives temporary ones")]
    TemporaryKeys { profile: String, base: String },
    #[error("profile {0} is its own source_profile and has no keys in the credentials file")]
    NoOwnKeys(String),
    #[error("credential_source {0:?} is not Environment, Ec2InstanceMetadata or EcsContainer")]
    CredentialSource(String),
}

/// What the process knows about AWS before any call, resolved at the CLI edge.
pub struct Settings {
    /// `--aws-profile`: wins over every other, a key's or target's own included.
    pub flag_profile: Option<String>,
    /// `AWS_PROFILE`: for what names no profile.
    pub env_profile: Option<String>,
    /// Keys in the environment (`AWS_ACCESS_KEY_ID`): with no profile named, they come
    /// before the `default` profile, as in the SDK's chain.
    pub env_keys: bool,
    /// The shared config file (`AWS_CONFIG_FILE`, else `~/.aws/config`).
    pub config_file: Option<PathBuf>,
    /// The shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else
    /// `~/.aws/credentials`).
    pub credentials_file: Option<PathBuf>,
    /// The aws CLI's session cache (`~/.aws/cli/cache`); `None`: sessions last the process.
    pub cache_dir: Option<PathBuf>,
    pub mfa_code: MfaCode,
    /// Tells the user something they should know (a profile overridden).
    pub notice: Box<dyn Fn(&str) + Send + Sync>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            flag_profile: None,
            env_profile: None,
            env_keys: false,
            config_file: None,
            credentials_file: None,
            cache_dir: None,
            mfa_code: Box::new(|profile, serial| {
                Err(crate::prompt::Unanswered(format!(
                    "profile {profile} needs an MFA code for {serial}"
                )))
            }),
            notice: Box::new(|_| {}),
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
    profiles: OnceLock<Profiles>,
    cache: Option<Cache>,
    configs: Mutex<HashMap<Scope, aws_config::SdkConfig>>,
    /// STS sessions made or read by this process, by cache key.
    sessions: Mutex<HashMap<String, Sts>>,
    /// Held while a chain's sessions are made, so two threads never ask for two codes.
    making: Mutex<()>,
    noticed: Mutex<HashSet<String>>,
}

impl Session {
    pub fn new(settings: Settings) -> Session {
        Session {
            cache: settings.cache_dir.clone().map(Cache::new),
            settings,
            runtime: OnceLock::new(),
            profiles: OnceLock::new(),
            configs: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            making: Mutex::new(()),
            noticed: Mutex::new(HashSet::new()),
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

    fn profiles(&self) -> &Profiles {
        self.profiles.get_or_init(|| {
            Profiles::read(
                self.settings.config_file.clone(),
                self.settings.credentials_file.clone(),
            )
        })
    }

    /// The profile `scope`'s calls are made with, which must exist: `--aws-profile`
    /// (saying so when it overrides the scope's own), the scope's, `AWS_PROFILE`, or none
    /// (the rest of the default chain).
    pub fn profile(&self, scope: &Scope) -> Result<Option<String>, SessionError> {
        let s = &self.settings;
        if let (Some(flag), Some(own)) = (&s.flag_profile, &scope.profile) {
            if flag != own
                && self
                    .noticed
                    .lock()
                    .expect("notice lock")
                    .insert(own.clone())
            {
                (s.notice)(&format!(
                    "--aws-profile {flag} is used where profile {own} is named"
                ));
            }
        }
        let profile = s
            .flag_profile
            .clone()
            .or_else(|| scope.profile.clone())
            .or_else(|| s.env_profile.clone());
        if let Some(p) = &profile {
            self.profiles().check(p)?;
        }
        Ok(profile)
    }

    /// Every profile `scope` needs exists and its chain can be followed: what a plan
    /// checks before its first call.
    pub fn check(&self, scope: &Scope) -> Result<(), SessionError> {
        let profile = self.profile(scope)?;
        self.chain(profile.as_deref()).map(drop)
    }

    /// The roles and MFA device coffer makes `profile`'s credentials through, if any.
    /// With no profile named, keys in the environment come before the `default` one.
    fn chain(&self, profile: Option<&str>) -> Result<Option<Chain>, SessionError> {
        if profile.is_none() && self.settings.env_keys {
            return Ok(None);
        }
        Ok(self.profiles().chain(profile.unwrap_or("default"))?)
    }

    /// Where `scope`'s calls go, for error lines: `in REGION (account A, profile P)`, each
    /// part when known without a call (`region` and `account` when the caller knows
    /// better: the region a client resolved, the account in a key's ARN).
    pub fn place(&self, scope: &Scope, region: Option<&str>, account: Option<&str>) -> String {
        let profile = self.profile(scope).ok().flatten();
        let account = scope
            .role
            .as_deref()
            .and_then(profiles::account_of)
            .or(account)
            .map(str::to_string)
            .or_else(|| {
                let chain = self.chain(profile.as_deref()).ok()??;
                chain.account().map(str::to_string)
            });
        let mut parts = Vec::new();
        if let Some(a) = account {
            parts.push(format!("account {a}"));
        }
        if let Some(p) = profile {
            parts.push(format!("profile {p}"));
        }
        let region = region
            .or(scope.region.as_deref())
            .unwrap_or("the default region");
        match parts.is_empty() {
            true => format!("in {region}"),
            false => format!("in {region} ({})", parts.join(", ")),
        }
    }

    /// The account `scope`'s credentials act in (`GetCallerIdentity`).
    pub fn account(&self, scope: &Scope) -> Result<String, SessionError> {
        let conf = self.config(scope)?;
        let out = self
            .block_on(aws_sdk_sts::Client::new(&conf).get_caller_identity().send())
            .map_err(|e| SessionError::Sts {
                call: "GetCallerIdentity".into(),
                place: self.place(scope, conf.region().map(|r| r.as_ref()), None),
                reason: reason(&e, "STS"),
            })?;
        Ok(out.account().unwrap_or("unknown").to_string())
    }

    /// The configuration for `scope`, made once per process. Failing here means a
    /// profile is unknown or a role of its chain could not be assumed; every other
    /// credential problem shows on the first call.
    pub fn config(&self, scope: &Scope) -> Result<aws_config::SdkConfig, SessionError> {
        if let Some(c) = self.configs.lock().expect("config cache lock").get(scope) {
            return Ok(c.clone());
        }
        let profile = self.profile(scope)?;
        let chain = self.chain(profile.as_deref())?;
        let mut conf = match &chain {
            // The SDK would assume roles without caching them, and without an MFA
            // code: coffer makes the credentials itself.
            Some(chain) => {
                let base = match &chain.base {
                    Base::Profile(p) | Base::Keys(p) => p.as_str(),
                    Base::Credential(_) => "default",
                };
                let conf = self.block_on(load(
                    Some(profile.as_deref().unwrap_or(base)),
                    scope.region.as_deref(),
                ));
                let creds = self.chain_credentials(chain, &conf)?;
                with_credentials(conf, SharedCredentialsProvider::new(creds))
            }
            None => self.block_on(load(profile.as_deref(), scope.region.as_deref())),
        };
        if let Some(role) = &scope.role {
            conf = self.block_on(assume(conf, role, "coffer"));
        }
        self.configs
            .lock()
            .expect("config cache lock")
            .insert(scope.clone(), conf.clone());
        Ok(conf)
    }

    /// A session cached under `key`, by this process or on disk.
    fn cached(&self, key: &str) -> Option<Sts> {
        let mut mine = self.sessions.lock().expect("session lock");
        if let Some(s) = mine.get(key).filter(|s| s.fresh()) {
            return Some(s.clone());
        }
        let found = self.cache.as_ref()?.get(key)?;
        mine.insert(key.to_string(), found.clone());
        Some(found)
    }

    fn keep(&self, key: &str, sts: &Sts) {
        self.sessions
            .lock()
            .expect("session lock")
            .insert(key.to_string(), sts.clone());
        if let Some(cache) = &self.cache {
            // A cache that cannot be written costs the next process a session, no more.
            let _ = cache.put(key, sts);
        }
    }

    /// The credentials at the top of `chain`: from the highest role whose session is
    /// cached, else from the base, through the MFA device's session, up every role.
    fn chain_credentials(
        &self,
        chain: &Chain,
        conf: &aws_config::SdkConfig,
    ) -> Result<Credentials, SessionError> {
        let _one_at_a_time = self.making.lock().expect("making lock");
        let region = conf
            .region()
            .cloned()
            .unwrap_or(aws_config::Region::from_static("us-east-1"));
        // Processes making the same chain take turns, the later ones finding the
        // sessions the first made. (A device's session has its own turn inside, for
        // chains that share the device.)
        let top = chain.roles.last().map(Role::cache_key).or_else(|| {
            let d = chain.device.as_ref()?;
            Some(format!("{}-chain", profiles::device_cache_key(&d.serial)))
        });
        let _turn = top
            .filter(|t| self.cached(t).is_none())
            .and_then(|t| Some(self.cache.as_ref()?.making(&t)));
        let found = chain
            .roles
            .iter()
            .enumerate()
            .rev()
            .find_map(|(i, r)| Some((i + 1, self.cached(&r.cache_key())?)));
        let (start, mut below) = match found {
            Some((i, sts)) => (i, sts.credentials()),
            None => {
                let own_keys = match &chain.base {
                    Base::Keys(p) => self.profiles().own_keys(p),
                    _ => None,
                };
                let base = self.block_on(base_config(&chain.base, region.clone(), own_keys))?;
                let creds = self
                    .block_on(
                        base.credentials_provider()
                            .expect("a loaded configuration has a provider")
                            .provide_credentials(),
                    )
                    .map_err(|e| SessionError::NoCredentials {
                        base: describe_base(&chain.base),
                        reason: DisplayErrorContext(e).to_string(),
                    })?;
                match &chain.device {
                    // GetSessionToken takes long-term keys only; on temporary ones (a
                    // credential_source, SSO, a process) the code goes with the first
                    // AssumeRole instead, as the aws CLI sends it.
                    Some(device) if creds.session_token().is_some() => {
                        let Some(first) = chain.roles.first() else {
                            return Err(SessionError::TemporaryKeys {
                                profile: device.profile.clone(),
                                base: describe_base(&chain.base),
                            });
                        };
                        let sts = self.role_session(first, creds, conf, &region, Some(device))?;
                        (1, sts.credentials())
                    }
                    Some(device) => (0, self.device_session(device, &base)?.credentials()),
                    None => (0, creds),
                }
            }
        };
        let device = chain.device.as_ref().map(|d| d.serial.as_str());
        for role in &chain.roles[start..] {
            // A role further up naming a device of its own needs that device's code.
            let own = role
                .mfa_serial
                .as_deref()
                .filter(|s| Some(*s) != device)
                .map(|serial| Device {
                    serial: serial.to_string(),
                    profile: role.profile.clone(),
                });
            below = self
                .role_session(role, below, conf, &region, own.as_ref())?
                .credentials();
        }
        Ok(below)
    }

    /// The session of an MFA device (`GetSessionToken` with its code), cached.
    fn device_session(
        &self,
        device: &Device,
        base: &aws_config::SdkConfig,
    ) -> Result<Sts, SessionError> {
        let key = profiles::device_cache_key(&device.serial);
        if let Some(s) = self.cached(&key) {
            return Ok(s);
        }
        let _wait = self.cache.as_ref().map(|c| c.making(&key));
        if let Some(s) = self.cached(&key) {
            return Ok(s);
        }
        let code = (self.settings.mfa_code)(&device.profile, &device.serial)?;
        let out = self
            .block_on(
                aws_sdk_sts::Client::new(base)
                    .get_session_token()
                    .serial_number(&device.serial)
                    .token_code(code.as_str())
                    .send(),
            )
            .map_err(|e| SessionError::Sts {
                call: format!("GetSessionToken with MFA device {}", device.serial),
                place: format!(
                    "in {} (account {}, profile {})",
                    base.region().map_or("us-east-1", |r| r.as_ref()),
                    profiles::account_of(&device.serial).unwrap_or("unknown"),
                    device.profile,
                ),
                reason: reason(&e, "STS"),
            })?;
        let c = out.credentials.ok_or(SessionError::NoStsCredentials)?;
        let sts = sts_of(c, None);
        self.keep(&key, &sts);
        Ok(sts)
    }

    /// A profile role's session, cached under the aws CLI's key.
    fn role_session(
        &self,
        role: &Role,
        source: Credentials,
        conf: &aws_config::SdkConfig,
        region: &aws_config::Region,
        mfa: Option<&Device>,
    ) -> Result<Sts, SessionError> {
        let key = role.cache_key();
        if let Some(s) = self.cached(&key) {
            return Ok(s);
        }
        // The scope's configuration (endpoint, retries) with the credentials below.
        let conf = conf
            .clone()
            .into_builder()
            .region(region.clone())
            .credentials_provider(SharedCredentialsProvider::new(source))
            .build();
        let mut req = aws_sdk_sts::Client::new(&conf)
            .assume_role()
            .role_arn(&role.arn)
            .role_session_name(role.session_name.as_deref().unwrap_or("coffer"));
        if let Some(e) = &role.external_id {
            req = req.external_id(e);
        }
        if let Some(d) = role.duration {
            req = req.duration_seconds(i32::try_from(d).unwrap_or(i32::MAX));
        }
        if let Some(device) = mfa {
            let code = (self.settings.mfa_code)(&device.profile, &device.serial)?;
            req = req.serial_number(&device.serial).token_code(code.as_str());
        }
        let out = self.block_on(req.send()).map_err(|e| SessionError::Sts {
            call: format!("AssumeRole {}", role.arn),
            place: format!(
                "in {region} (account {}, profile {})",
                role.account().unwrap_or("unknown"),
                role.profile,
            ),
            reason: reason(&e, "STS"),
        })?;
        let c = out.credentials.ok_or(SessionError::NoStsCredentials)?;
        let sts = sts_of(c, out.assumed_role_user.map(|u| u.arn));
        self.keep(&key, &sts);
        Ok(sts)
    }
}

fn sts_of(c: aws_sdk_sts::types::Credentials, arn: Option<String>) -> Sts {
    Sts {
        access_key_id: c.access_key_id,
        secret_access_key: Zeroizing::new(c.secret_access_key),
        session_token: Zeroizing::new(c.session_token),
        expires: c.expiration.secs(),
        arn,
    }
}

fn describe_base(base: &Base) -> String {
    match base {
        Base::Profile(p) => format!("profile {p}"),
        Base::Credential(kind) => format!("credential_source {kind}"),
        Base::Keys(p) => format!("the keys of profile {p}"),
    }
}

/// The configuration of a chain's base: a profile the SDK resolves, a
/// `credential_source`, or a profile's own keys.
async fn base_config(
    base: &Base,
    region: aws_config::Region,
    own_keys: Option<(String, Zeroizing<String>)>,
) -> Result<aws_config::SdkConfig, SessionError> {
    use aws_config::{ecs, environment, imds};
    let conf = match base {
        Base::Profile(p) => load(Some(p), Some(region.as_ref())).await,
        Base::Keys(p) => {
            let (id, secret) = own_keys.ok_or_else(|| SessionError::NoOwnKeys(p.clone()))?;
            let creds = Credentials::new(id, secret.as_str(), None, None, "profile");
            with_credentials(
                load(None, Some(region.as_ref())).await,
                SharedCredentialsProvider::new(creds),
            )
        }
        Base::Credential(kind) => {
            let provider = match kind.as_str() {
                "Environment" => SharedCredentialsProvider::new(
                    environment::EnvironmentVariableCredentialsProvider::new(),
                ),
                "Ec2InstanceMetadata" => SharedCredentialsProvider::new(
                    imds::credentials::ImdsCredentialsProvider::builder().build(),
                ),
                "EcsContainer" => {
                    SharedCredentialsProvider::new(ecs::EcsCredentialsProvider::builder().build())
                }
                other => return Err(SessionError::CredentialSource(other.to_string())),
            };
            with_credentials(load(None, Some(region.as_ref())).await, provider)
        }
    };
    Ok(conf)
}

async fn load(profile: Option<&str>, region: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).retry_config(retry_config());
    if let Some(p) = profile {
        // A named profile's credentials, not the environment's keys, which the default
        // chain would try first: a profile asked for is the one used (as the aws CLI has
        // it).
        loader = loader.profile_name(p).credentials_provider(
            aws_config::profile::ProfileFileCredentialsProvider::builder()
                .profile_name(p)
                .build(),
        );
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
