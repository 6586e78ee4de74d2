//! STS sessions kept on disk in the aws CLI's own cache (`~/.aws/cli/cache/KEY.json`,
//! mode 0600, its JSON layout), so one MFA code serves every later process, the git
//! filter's included, and coffer and the aws CLI use each other's sessions. Nothing else
//! is ever written there: no long-term keys.

use std::path::{Path, PathBuf};

use aws_sdk_kms::config::Credentials;
use zeroize::Zeroizing;

use crate::format::json::json_string;

/// A session is renewed this long before it expires, so no call starts on credentials
/// about to lapse.
pub const RENEW_BEFORE_SECS: i64 = 5 * 60;

/// The credentials of one STS session.
#[derive(Clone)]
pub struct Sts {
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
    pub session_token: Zeroizing<String>,
    /// Seconds since the epoch.
    pub expires: i64,
    /// The assumed role's session ARN, when a role was assumed.
    pub arn: Option<String>,
}

impl Sts {
    pub fn credentials(&self) -> Credentials {
        Credentials::new(
            self.access_key_id.clone(),
            self.secret_access_key.to_string(),
            Some(self.session_token.to_string()),
            u64::try_from(self.expires)
                .ok()
                .map(|s| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s)),
            "coffer",
        )
    }

    pub fn fresh(&self) -> bool {
        self.expires - now() > RENEW_BEFORE_SECS
    }

    /// The aws CLI's layout: the AssumeRole (or GetSessionToken) answer, times as Python's
    /// `strftime('%Y-%m-%dT%H:%M:%S%Z')` writes them.
    fn to_json(&self) -> Zeroizing<String> {
        let expiration = crate::metadata::format_rfc3339(self.expires).replace('Z', "UTC");
        let mut creds = format!(
            "\"AccessKeyId\": {}, \"SecretAccessKey\": {}, \"SessionToken\": {}, \"Expiration\": {}",
            json_string(&self.access_key_id),
            json_string(&self.secret_access_key),
            json_string(&self.session_token),
            json_string(&expiration),
        );
        let mut user = String::new();
        if let Some(arn) = &self.arn {
            if let Some(account) = super::profiles::account_of(arn) {
                creds.push_str(&format!(", \"AccountId\": {}", json_string(account)));
            }
            user = format!(", \"AssumedRoleUser\": {{\"Arn\": {}}}", json_string(arn));
        }
        Zeroizing::new(format!("{{\"Credentials\": {{{creds}}}{user}}}"))
    }

    fn from_json(bytes: Vec<u8>) -> Option<Sts> {
        let doc = crate::format::parse("cache", crate::format::Format::Json, bytes).ok()?;
        let get = |path: &[&str]| {
            doc.leaves
                .iter()
                .find(|l| l.path.iter().map(|k| &**k).eq(path.iter().copied()))
                .and_then(|l| String::from_utf8(l.value(&doc.text).to_vec()).ok())
                .map(Zeroizing::new)
        };
        Some(Sts {
            access_key_id: get(&["Credentials", "AccessKeyId"])?.to_string(),
            secret_access_key: get(&["Credentials", "SecretAccessKey"])?,
            session_token: get(&["Credentials", "SessionToken"])?,
            expires: crate::metadata::parse_rfc3339(&get(&["Credentials", "Expiration"])?)?,
            arn: get(&["AssumedRoleUser", "Arn"]).map(|a| a.to_string()),
        })
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The cache directory.
pub struct Cache {
    dir: PathBuf,
}

/// Held while a session is made, so that processes starting together ask for one code
/// and make one call: the others wait, then find the session cached.
pub struct Making {
    _file: Option<std::fs::File>,
}

impl Cache {
    pub fn new(dir: PathBuf) -> Cache {
        Cache { dir }
    }

    fn file(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// The session under `key`, if it is there and not about to expire. A file that does
    /// not read is no session: it is made anew and written over.
    pub fn get(&self, key: &str) -> Option<Sts> {
        let bytes = std::fs::read(self.file(key)).ok()?;
        Sts::from_json(bytes).filter(Sts::fresh)
    }

    /// Keep `sts` under `key`. Failing to (a read-only home) only costs a later process a
    /// new session, so the caller goes on.
    pub fn put(&self, key: &str, sts: &Sts) -> crate::Result<()> {
        make_private_dir(&self.dir)?;
        crate::fsutil::write_atomic(
            &self.file(key),
            sts.to_json().as_bytes(),
            0o600,
            Some(0o600),
            crate::fsutil::Target::InPlace,
        )
    }

    /// Wait for whichever process is making the session under `key`.
    pub fn making(&self, key: &str) -> Making {
        use rustix::fs::{flock, FlockOperation};
        let file = make_private_dir(&self.dir).ok().and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(self.dir.join(format!("{key}.coffer-lock")))
                .ok()
        });
        let file = file.filter(|f| flock(f, FlockOperation::LockExclusive).is_ok());
        Making { _file: file }
    }
}

fn make_private_dir(dir: &Path) -> crate::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| crate::Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sts(expires: i64) -> Sts {
        Sts {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: Zeroizing::new("se\"cret".into()),
            session_token: Zeroizing::new("token".into()),
            expires,
            arn: Some("arn:aws:sts::222222222222:assumed-role/admin/coffer".into()),
        }
    }

    #[test]
    fn sessions_round_trip_in_the_aws_clis_layout_and_expire_early() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("cli/cache"));
        let t = now() + 3600;
        cache.put("k", &sts(t)).unwrap();
        let text = std::fs::read_to_string(dir.path().join("cli/cache/k.json")).unwrap();
        assert!(
            text.starts_with("{\"Credentials\": {\"AccessKeyId\": \"ASIAEXAMPLE\", \"SecretAccessKey\": \"se\\\"cret\"")
                && text.contains("\"AccountId\": \"222222222222\"")
                && text.contains("UTC\""),
            "{text}"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("cli/cache/k.json")), 0o600);
        assert_eq!(mode(&dir.path().join("cli/cache")), 0o700);
        let back = cache.get("k").unwrap();
        assert_eq!(back.expires, t);
        assert_eq!(back.secret_access_key.as_str(), "se\"cret");
        // Within five minutes of expiring: not used.
        cache
            .put("soon", &sts(now() + RENEW_BEFORE_SECS - 10))
            .unwrap();
        assert!(cache.get("soon").is_none());
        // What the aws CLI writes (isoformat times too) reads.
        std::fs::write(
            dir.path().join("cli/cache/cli.json"),
            format!(
                "{{\"Credentials\": {{\"AccessKeyId\": \"A\", \"SecretAccessKey\": \"B\", \"SessionToken\": \"C\", \"Expiration\": \"{}\"}}, \"ResponseMetadata\": {{\"HTTPStatusCode\": 200}}}}",
                crate::metadata::format_rfc3339(now() + 900).replace('Z', "+00:00")
            ),
        )
        .unwrap();
        assert_eq!(cache.get("cli").unwrap().access_key_id, "A");
        std::fs::write(dir.path().join("cli/cache/bad.json"), "{not json").unwrap();
        assert!(cache.get("bad").is_none() && cache.get("missing").is_none());
    }
}
