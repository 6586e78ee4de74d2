//! The local AWS endpoint: a moto server per test, and the test's own AWS clients for
//! arranging and checking remote state.

use std::io::{BufRead, Write};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::common::*;

/// A moto server on a free loopback port, stopped when dropped.
pub(super) struct Moto {
    child: Child,
    pub(super) endpoint: String,
    _log: tempfile::TempDir,
    /// The access key pair the test and coffer use: moto's defaults until IAM is enforced.
    creds: std::sync::Mutex<(String, String)>,
}

fn moto_bin() -> std::path::PathBuf {
    let p = std::env::var_os("COFFER_TEST_MOTO")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/moto_server"));
    assert!(
        p.exists(),
        "moto_server not found at {}: run the tests with scripts/test, which installs it",
        p.display()
    );
    p
}

impl Moto {
    pub(super) fn start() -> Moto {
        let log = tempfile::tempdir().unwrap();
        let err_path = log.path().join("stderr");
        let child = Command::new(moto_bin())
            // Every request is logged, for counting calls.
            .env("MOTO_ENABLE_RECORDING", "True")
            .env("MOTO_RECORDER_FILEPATH", log.path().join("requests"))
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            assert!(
                Instant::now() < deadline,
                "moto did not start: {}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
            let text = std::fs::read_to_string(&err_path).unwrap_or_default();
            if let Some(i) = text.find("Running on http://127.0.0.1:") {
                let rest = &text[i + "Running on http://127.0.0.1:".len()..];
                let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                if !port.is_empty() {
                    break port;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let endpoint = format!("http://127.0.0.1:{port}");
        // Ready when its own API answers.
        loop {
            assert!(
                Instant::now() < deadline,
                "moto never answered on {endpoint}"
            );
            if let Ok(mut s) = std::net::TcpStream::connect(format!("127.0.0.1:{port}")) {
                let _ = write!(
                    s,
                    "GET /moto-api/data.json HTTP/1.0\r\nHost: localhost\r\n\r\n"
                );
                let mut first = String::new();
                if std::io::BufReader::new(&mut s)
                    .read_line(&mut first)
                    .is_ok()
                    && first.contains(" 200 ")
                {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Moto {
            child,
            endpoint,
            _log: log,
            creds: std::sync::Mutex::new(("testing".into(), "testing".into())),
        }
    }

    /// The environment that points the AWS SDK (in coffer and in the test) at moto.
    pub(super) fn env(&self) -> Vec<(&'static str, String)> {
        let (id, secret) = self.creds.lock().unwrap().clone();
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", id),
            ("AWS_SECRET_ACCESS_KEY", secret),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// The environment that points coffer at moto through the sandbox's own AWS files
    /// (`aws/config`, `aws/credentials`), with no keys of its own.
    pub(super) fn files_env(&self, sb: &Sandbox) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                sb.path("aws/credentials").display().to_string(),
            ),
            (
                "AWS_CONFIG_FILE",
                sb.path("aws/config").display().to_string(),
            ),
        ]
    }

    /// A new KMS key's ARN, made with `conf` (in its account and region).
    pub(super) fn key_in(conf: &aws_config::SdkConfig) -> String {
        Self::rt()
            .block_on(aws_sdk_kms::Client::new(conf).create_key().send())
            .unwrap()
            .key_metadata
            .unwrap()
            .arn
            .unwrap()
    }

    pub(super) fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// Requests for `target` (e.g. `TrentService.Decrypt`) moto has served so far.
    pub(super) fn calls(&self, target: &str) -> usize {
        let needle = format!("{target}\"");
        self.requests()
            .iter()
            .filter(|l| l.contains(&needle))
            .count()
    }

    /// The access key each request for `target` (e.g. `TrentService.Decrypt`) was
    /// signed with, in order.
    pub(super) fn signers(&self, target: &str) -> Vec<String> {
        let needle = format!("{target}\"");
        self.requests()
            .iter()
            .filter(|l| l.contains(&needle))
            .filter_map(|l| {
                let rest = l.split("Credential=").nth(1)?;
                Some(rest.split('/').next()?.to_string())
            })
            .collect()
    }

    /// Every request moto has recorded, one JSON line each.
    pub(super) fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self._log.path().join("requests"))
            .unwrap_or_default()
            .lines()
            // The harness's own readiness probes are not AWS calls.
            .filter(|l| !l.contains("/moto-api/"))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    pub(super) fn sdk_config(&self) -> aws_config::SdkConfig {
        let (id, secret) = self.creds.lock().unwrap().clone();
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_kms::config::SharedCredentialsProvider::new(
                aws_sdk_kms::config::Credentials::new(id, secret, None, None, "test"),
            ))
            .build()
    }

    /// Create (or add a version to) a Secrets Manager secret; returns the version id.
    pub(super) fn put_secret(&self, name: &str, value: &str) -> String {
        let c = aws_sdk_secretsmanager::Client::new(&self.sdk_config());
        Self::rt().block_on(async {
            match c
                .create_secret()
                .name(name)
                .secret_string(value)
                .send()
                .await
            {
                Ok(out) => out.version_id.unwrap(),
                Err(_) => c
                    .put_secret_value()
                    .secret_id(name)
                    .secret_string(value)
                    .send()
                    .await
                    .unwrap()
                    .version_id
                    .unwrap(),
            }
        })
    }

    pub(super) fn put_parameter(&self, name: &str, value: &str, secure: bool) {
        let c = aws_sdk_ssm::Client::new(&self.sdk_config());
        let ty = if secure {
            aws_sdk_ssm::types::ParameterType::SecureString
        } else {
            aws_sdk_ssm::types::ParameterType::String
        };
        Self::rt().block_on(async {
            c.put_parameter()
                .name(name)
                .value(value)
                .r#type(ty)
                .send()
                .await
                .unwrap()
        });
    }

    pub(super) fn put_object(&self, bucket: &str, key: &str, body: &str) {
        let conf = aws_sdk_s3::config::Builder::from(&self.sdk_config())
            .force_path_style(true)
            .build();
        let c = aws_sdk_s3::Client::from_conf(conf);
        Self::rt().block_on(async {
            let _ = c.create_bucket().bucket(bucket).send().await;
            c.put_object()
                .bucket(bucket)
                .key(key)
                .body(body.as_bytes().to_vec().into())
                .send()
                .await
                .unwrap()
        });
    }
}

/// What the test sees of one secret.
pub(super) struct SecretState {
    pub arn: String,
    pub tags: Vec<(String, String)>,
    pub deleted: bool,
}

impl Moto {
    fn secrets(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.sdk_config())
    }

    pub(super) fn secret_value(&self, name: &str) -> String {
        let c = self.secrets();
        Self::rt().block_on(async {
            c.get_secret_value()
                .secret_id(name)
                .send()
                .await
                .unwrap()
                .secret_string
                .unwrap()
        })
    }

    /// How many versions the secret has (`ListSecretVersionIds`, deprecated ones included).
    pub(super) fn secret_versions(&self, name: &str) -> usize {
        let c = self.secrets();
        Self::rt().block_on(async {
            c.list_secret_version_ids()
                .secret_id(name)
                .include_deprecated(true)
                .send()
                .await
                .unwrap()
                .versions
                .unwrap_or_default()
                .len()
        })
    }

    /// `None` when no such secret exists, not even scheduled for deletion.
    pub(super) fn secret(&self, name: &str) -> Option<SecretState> {
        let c = self.secrets();
        Self::rt().block_on(async {
            let d = c.describe_secret().secret_id(name).send().await.ok()?;
            Some(SecretState {
                arn: d.arn.unwrap(),
                tags: d
                    .tags
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| (t.key.unwrap(), t.value.unwrap()))
                    .collect(),
                deleted: d.deleted_date.is_some(),
            })
        })
    }

    /// (value, type, version) of a parameter, decrypted.
    pub(super) fn parameter(&self, name: &str) -> Option<(String, String, i64)> {
        let c = aws_sdk_ssm::Client::new(&self.sdk_config());
        Self::rt().block_on(async {
            let p = c
                .get_parameter()
                .name(name)
                .with_decryption(true)
                .send()
                .await
                .ok()?
                .parameter
                .unwrap();
            Some((
                p.value.unwrap(),
                p.r#type.unwrap().as_str().to_string(),
                p.version,
            ))
        })
    }

    pub(super) fn object(&self, bucket: &str, key: &str) -> Option<String> {
        let conf = aws_sdk_s3::config::Builder::from(&self.sdk_config())
            .force_path_style(true)
            .build();
        let c = aws_sdk_s3::Client::from_conf(conf);
        Self::rt().block_on(async {
            let out = c.get_object().bucket(bucket).key(key).send().await.ok()?;
            let bytes = out.body.collect().await.unwrap().into_bytes();
            Some(String::from_utf8(bytes.to_vec()).unwrap())
        })
    }

    /// An IAM user allowed everything except `denied` actions; returns its access key pair.
    pub(super) fn user(&self, name: &str, denied: &[&str]) -> (String, String) {
        let c = aws_sdk_iam::Client::new(&self.sdk_config());
        let mut statements =
            vec![r#"{"Effect": "Allow", "Action": "*", "Resource": "*"}"#.to_string()];
        if !denied.is_empty() {
            let actions: Vec<String> = denied.iter().map(|a| format!("\"{a}\"")).collect();
            statements.push(format!(
                r#"{{"Effect": "Deny", "Action": [{}], "Resource": "*"}}"#,
                actions.join(", ")
            ));
        }
        let policy = format!(
            r#"{{"Version": "2012-10-17", "Statement": [{}]}}"#,
            statements.join(", ")
        );
        Self::rt().block_on(async {
            c.create_user().user_name(name).send().await.unwrap();
            c.put_user_policy()
                .user_name(name)
                .policy_name("test")
                .policy_document(policy)
                .send()
                .await
                .unwrap();
            let key = c
                .create_access_key()
                .user_name(name)
                .send()
                .await
                .unwrap()
                .access_key
                .unwrap();
            (key.access_key_id, key.secret_access_key)
        })
    }

    /// From now on moto checks every request's signature and IAM policy; the test and
    /// coffer (through [`Moto::env`]) then act as `admin`, a user allowed everything.
    pub(super) fn enforce_iam(&self) {
        let admin = self.user("admin", &[]);
        let port = self.endpoint.rsplit(':').next().unwrap();
        let mut s = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
        write!(
            s,
            "POST /moto-api/reset-auth HTTP/1.0\r\nHost: localhost\r\nContent-Length: 1\r\n\r\n0"
        )
        .unwrap();
        let mut first = String::new();
        std::io::BufReader::new(&mut s)
            .read_line(&mut first)
            .unwrap();
        assert!(first.contains(" 200 "), "reset-auth: {first}");
        *self.creds.lock().unwrap() = admin;
    }
}

/// `coffer` in the sandbox, pointed at the endpoint.
pub(super) fn run(sb: &Sandbox, moto: &Moto, args: &[&str]) -> Output {
    run_as(sb, moto, args, &[])
}

/// With `extra` added to (and overriding) the endpoint's environment.
pub(super) fn run_as(sb: &Sandbox, moto: &Moto, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let env = moto.env();
    let mut pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    pairs.extend_from_slice(extra);
    sb.run_with(args, &pairs)
}

pub(super) fn ok(sb: &Sandbox, moto: &Moto, args: &[&str]) -> Output {
    let out = run(sb, moto, args);
    assert_success(&out, args);
    out
}

impl Moto {
    /// The test's own SDK configuration, acting as `role` (moto puts an assumed role's
    /// calls in the role's account).
    pub(super) fn as_role(&self, role: &str, region: &str) -> aws_config::SdkConfig {
        let sts = aws_sdk_sts::Client::new(&self.sdk_config());
        let c = Self::rt()
            .block_on(
                sts.assume_role()
                    .role_arn(role)
                    .role_session_name("test")
                    .send(),
            )
            .unwrap()
            .credentials
            .unwrap();
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_sdk_kms::config::SharedCredentialsProvider::new(
                aws_sdk_kms::config::Credentials::new(
                    c.access_key_id,
                    c.secret_access_key,
                    Some(c.session_token),
                    None,
                    "test",
                ),
            ))
            .build()
    }

    /// The form bodies of the `AssumeRole` calls moto has served, decoded.
    pub(super) fn assume_role_calls(&self) -> Vec<String> {
        self.sts_calls("AssumeRole")
    }

    /// The bodies of the STS `action` requests moto has served (`Action=…&…`), with
    /// the access key each was signed with in front: `KEY_ID body`.
    pub(super) fn sts_calls(&self, action: &str) -> Vec<String> {
        let needle = format!("Action={action}&");
        use base64::Engine;
        self.requests()
            .iter()
            .filter_map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).ok()?;
                let body = v.get("body")?.as_str()?;
                let body = if v.get("body_encoded").and_then(|b| b.as_bool()) == Some(true) {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(body)
                        .ok()?;
                    String::from_utf8(bytes).ok()?
                } else {
                    body.to_string()
                };
                let auth = v
                    .get("headers")
                    .and_then(|h| h.get("Authorization"))
                    .and_then(|a| a.as_str())
                    .unwrap_or_default();
                let key = auth
                    .split("Credential=")
                    .nth(1)
                    .and_then(|c| c.split('/').next())
                    .unwrap_or("-");
                body.contains(&needle).then(|| format!("{key} {body}"))
            })
            .collect()
    }
}
