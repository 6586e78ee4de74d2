//! AWS KMS master keys through the AWS SDK. Credentials come from aws-config's default
//! chain (environment, shared config and credentials files, `AWS_PROFILE`, SSO, web
//! identity, container and instance metadata); a key's `role` is assumed through STS.
//! Endpoints come from the standard `AWS_ENDPOINT_URL`, which is how tests reach a local
//! AWS: there is no test switch in this code.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use aws_config::BehaviorVersion;
use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use zeroize::Zeroizing;

use super::MasterKey;
use crate::cipher::DataKey;
use crate::metadata::{KmsEntry, Metadata};
use crate::{Error, Result};

/// A KMS key as the user names it: `ARN[+ROLE_ARN]`, with context and profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmsSpec {
    pub arn: String,
    pub role: Option<String>,
    pub context: Vec<(String, String)>,
    pub aws_profile: Option<String>,
}

impl KmsSpec {
    /// `arn:aws:kms:…:key/…` or `…:alias/…`, optionally `+arn:aws:iam::…:role/…`.
    pub fn parse(
        s: &str,
        context: &[(String, String)],
        aws_profile: Option<&str>,
    ) -> Result<KmsSpec> {
        let s = s.trim();
        let (arn, role) = match s.split_once('+') {
            Some((a, r)) => (a.trim(), Some(r.trim().to_string())),
            None => (s, None),
        };
        region_of(arn).map_err(Error::KeySource)?;
        Ok(KmsSpec {
            arn: arn.to_string(),
            role,
            context: context.to_vec(),
            aws_profile: aws_profile.map(str::to_string),
        })
    }
}

/// `k=v,k2=v2` as given to `--encryption-context`.
pub fn parse_context(s: &str) -> Result<Vec<(String, String)>> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| Error::Usage(format!("encryption context {p:?} is not key=value")))
        })
        .collect()
}

/// The region is the fourth field of the ARN, as sops reads it.
pub fn region_of(arn: &str) -> std::result::Result<&str, String> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "kms", region, _, rest] if !region.is_empty() && (rest.starts_with("key/") || rest.starts_with("alias/")) => Ok(region),
        _ => Err(format!("{arn:?} is not a KMS key or alias ARN (arn:aws:kms:REGION:ACCOUNT:key/ID or …:alias/NAME)")),
    }
}

/// Throttling and transient errors are retried with exponential backoff, 3 attempts at
/// most, so a rate-limited KMS slows coffer down without failing it or hanging it.
pub fn retry_config() -> aws_config::retry::RetryConfig {
    aws_config::retry::RetryConfig::standard().with_max_attempts(3)
}

/// What a client is made for: region, profile, role.
type ClientKey = (String, Option<String>, Option<String>);

/// KMS clients for this process: one per (region, profile, role), made on first use.
pub struct KmsKeys {
    runtime: OnceLock<tokio::runtime::Runtime>,
    clients: Mutex<HashMap<ClientKey, aws_sdk_kms::Client>>,
    /// `--aws-profile`, for keys whose metadata names none.
    default_profile: Option<String>,
    /// Sessions of MFA profiles, so the code is asked for once per process.
    mfa_sessions: Mutex<HashMap<String, aws_sdk_kms::config::Credentials>>,
}

/// A profile that assumes a role with an MFA code, which the SDK's profile provider
/// cannot prompt for.
struct MfaProfile {
    name: String,
    role_arn: String,
    source_profile: String,
    mfa_serial: String,
}

/// Read `[profile NAME]` from the shared config file when it names an `mfa_serial`.
fn mfa_profile(name: &str) -> Option<MfaProfile> {
    let path = std::env::var_os("AWS_CONFIG_FILE")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".aws").join("config"))
        })?;
    let text = std::fs::read_to_string(path).ok()?;
    let header = if name == "default" {
        "[default]".to_string()
    } else {
        format!("[profile {name}]")
    };
    let mut in_section = false;
    let mut fields = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == header;
        } else if in_section {
            if let Some((k, v)) = line.split_once('=') {
                fields.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
    }
    Some(MfaProfile {
        name: name.to_string(),
        mfa_serial: fields.remove("mfa_serial")?,
        role_arn: fields.remove("role_arn")?,
        source_profile: fields
            .remove("source_profile")
            .unwrap_or_else(|| "default".into()),
    })
}

/// The MFA code: `COFFER_MFA_TOKEN`, else asked for on the terminal.
fn mfa_token(serial: &str) -> std::result::Result<String, String> {
    if let Some(t) = std::env::var("COFFER_MFA_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty())
    {
        return Ok(t.trim().to_string());
    }
    use std::io::{BufRead, Write};
    let tty = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty").map_err(|_| {
        format!("the profile needs an MFA code for {serial} and there is no terminal; set COFFER_MFA_TOKEN")
    })?;
    let mut w = &tty;
    write!(w, "MFA code for {serial}: ").map_err(|e| e.to_string())?;
    let mut line = String::new();
    std::io::BufReader::new(&tty)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    match line.trim() {
        "" => Err(format!("no MFA code given for {serial}")),
        code => Ok(code.to_string()),
    }
}

impl KmsKeys {
    pub fn new(default_profile: Option<String>) -> Self {
        KmsKeys {
            runtime: OnceLock::new(),
            clients: Mutex::new(HashMap::new()),
            default_profile,
            mfa_sessions: Mutex::new(HashMap::new()),
        }
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a single-threaded runtime can always be built")
        })
    }

    fn client(
        &self,
        arn: &str,
        profile: Option<&str>,
        role: Option<&str>,
    ) -> std::result::Result<aws_sdk_kms::Client, String> {
        let region = region_of(arn)?.to_string();
        let profile = profile
            .map(str::to_string)
            .or_else(|| self.default_profile.clone());
        let key = (region.clone(), profile.clone(), role.map(str::to_string));
        if let Some(c) = self.clients.lock().expect("client cache lock").get(&key) {
            return Ok(c.clone());
        }
        // The SDK would assume an MFA profile's role without the code (or fail): coffer
        // does it, for the explicit profile or AWS_PROFILE.
        let named = profile
            .clone()
            .or_else(|| std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty()));
        let mfa = named.as_deref().and_then(mfa_profile);
        let mfa_creds = match &mfa {
            Some(m) => Some(self.mfa_session(&region, m)?),
            None => None,
        };
        let client = self.runtime().block_on(async {
            let mut loader = aws_config::defaults(BehaviorVersion::latest())
                .region(aws_config::Region::new(region.clone()))
                .retry_config(retry_config());
            if let Some(m) = &mfa {
                // The role was assumed above with the MFA code; the source profile loads the rest.
                loader = loader.profile_name(&m.source_profile);
            } else if let Some(p) = &profile {
                loader = loader.profile_name(p);
            }
            let mut conf = loader.load().await;
            if let Some(creds) = mfa_creds {
                conf = conf
                    .into_builder()
                    .credentials_provider(aws_sdk_kms::config::SharedCredentialsProvider::new(
                        creds,
                    ))
                    .build();
            }
            if let Some(role) = role {
                let provider = aws_config::sts::AssumeRoleProvider::builder(role)
                    .session_name("coffer")
                    .region(aws_config::Region::new(region.clone()))
                    .configure(&conf)
                    .build()
                    .await;
                conf = conf
                    .into_builder()
                    .credentials_provider(aws_sdk_kms::config::SharedCredentialsProvider::new(
                        provider,
                    ))
                    .build();
            }
            aws_sdk_kms::Client::new(&conf)
        });
        self.clients
            .lock()
            .expect("client cache lock")
            .insert(key, client.clone());
        Ok(client)
    }

    /// Credentials of an MFA profile's role, asked for once per process.
    fn mfa_session(
        &self,
        region: &str,
        m: &MfaProfile,
    ) -> std::result::Result<aws_sdk_kms::config::Credentials, String> {
        if let Some(c) = self
            .mfa_sessions
            .lock()
            .expect("MFA session lock")
            .get(&m.name)
        {
            return Ok(c.clone());
        }
        let token = mfa_token(&m.mfa_serial)?;
        let creds = self.runtime().block_on(async {
            let conf = aws_config::defaults(BehaviorVersion::latest())
                .region(aws_config::Region::new(region.to_string()))
                .profile_name(&m.source_profile)
                .load()
                .await;
            let out = aws_sdk_sts::Client::new(&conf)
                .assume_role()
                .role_arn(&m.role_arn)
                .role_session_name("coffer")
                .serial_number(&m.mfa_serial)
                .token_code(token)
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "assuming {} with MFA: {}",
                        m.role_arn,
                        crate::aws::reason(&e)
                    )
                })?;
            let c = out.credentials.ok_or("STS returned no credentials")?;
            Ok::<_, String>(aws_sdk_kms::config::Credentials::new(
                c.access_key_id,
                c.secret_access_key,
                Some(c.session_token),
                None,
                "coffer-mfa",
            ))
        })?;
        self.mfa_sessions
            .lock()
            .expect("MFA session lock")
            .insert(m.name.clone(), creds.clone());
        Ok(creds)
    }

    /// Wrap a data key with one KMS key, as a sops metadata entry.
    pub fn wrap(&self, key: &DataKey, spec: &KmsSpec) -> Result<KmsEntry> {
        let fail = |why: String| Error::Aws(format!("kms:{}: {why}", spec.arn));
        let client = self
            .client(&spec.arn, spec.aws_profile.as_deref(), spec.role.as_deref())
            .map_err(fail)?;
        let mut req = client
            .encrypt()
            .key_id(&spec.arn)
            .plaintext(Blob::new(key.expose().to_vec()));
        for (k, v) in &spec.context {
            req = req.encryption_context(k, v);
        }
        let out = self
            .runtime()
            .block_on(req.send())
            .map_err(|e| fail(describe(&e, spec.aws_profile.as_deref())))?;
        let blob = out
            .ciphertext_blob()
            .ok_or_else(|| fail("KMS returned no ciphertext".into()))?;
        Ok(KmsEntry {
            arn: spec.arn.clone(),
            role: spec.role.clone(),
            context: spec.context.clone(),
            created_at: crate::metadata::now_rfc3339(),
            enc: B64.encode(blob.as_ref()),
            aws_profile: spec.aws_profile.clone(),
        })
    }

    fn open(&self, entry: &KmsEntry) -> std::result::Result<DataKey, String> {
        let client = self.client(
            &entry.arn,
            entry.aws_profile.as_deref(),
            entry.role.as_deref(),
        )?;
        let blob = B64
            .decode(entry.enc.trim())
            .map_err(|_| "the wrapped key is not base64".to_string())?;
        let mut req = client
            .decrypt()
            .key_id(&entry.arn)
            .ciphertext_blob(Blob::new(blob));
        for (k, v) in &entry.context {
            req = req.encryption_context(k, v);
        }
        let out = self
            .runtime()
            .block_on(req.send())
            .map_err(|e| describe(&e, entry.aws_profile.as_deref()))?;
        let plain = Zeroizing::new(
            out.plaintext()
                .map(|b| b.as_ref().to_vec())
                .unwrap_or_default(),
        );
        DataKey::from_slice(&plain)
            .ok_or_else(|| "KMS returned a key that is not 32 bytes".to_string())
    }
}

/// One line naming the reason, never a secret: the AWS error code and message, or why
/// the request could not be made.
fn describe<E, R>(err: &aws_sdk_kms::error::SdkError<E, R>, profile: Option<&str>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_kms::error::SdkError;
    match err {
        SdkError::ServiceError(e) => {
            let e = e.err();
            let code = e.code().unwrap_or("error");
            let hint = match code {
                "InvalidCiphertextException" => {
                    " (wrong encryption context, or not this key's ciphertext)"
                }
                "NotFoundException" => " (no such key or alias in that account and region)",
                "DisabledException" => " (the key is disabled)",
                "AccessDeniedException" => " (the credentials may not use this key)",
                _ => "",
            };
            format!("{code}: {}{hint}", e.message().unwrap_or_default())
        }
        _ => crate::aws::unanswered(err, "KMS", profile),
    }
}

impl MasterKey for KmsKeys {
    fn unwrap(&self, meta: &Metadata) -> std::result::Result<Option<DataKey>, Vec<String>> {
        if meta.kms.is_empty() {
            return Ok(None);
        }
        let mut reasons = Vec::new();
        for entry in &meta.kms {
            match self.open(entry) {
                Ok(key) => return Ok(Some(key)),
                Err(why) => reasons.push(format!("kms:{}: {why}", entry.arn)),
            }
        }
        Err(reasons)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_and_regions() {
        let s = KmsSpec::parse("arn:aws:kms:eu-west-1:111122223333:alias/secrets+arn:aws:iam::111122223333:role/deploy", &[], None).unwrap();
        assert_eq!(s.arn, "arn:aws:kms:eu-west-1:111122223333:alias/secrets");
        assert_eq!(
            s.role.as_deref(),
            Some("arn:aws:iam::111122223333:role/deploy")
        );
        assert_eq!(region_of(&s.arn).unwrap(), "eu-west-1");
        assert!(KmsSpec::parse("alias/secrets", &[], None).is_err());
        assert_eq!(
            parse_context("app=web, env=prod").unwrap(),
            vec![("app".into(), "web".into()), ("env".into(), "prod".into())]
        );
        assert!(parse_context("app").is_err());
    }
}
