//! AWS KMS master keys, reached through the process's AWS [`Session`] (credentials,
//! profiles with MFA, a key's `role`, retries): a key entry's region, profile and role are
//! its scope.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_kms::primitives::Blob;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use zeroize::Zeroizing;

use super::{KeyError, MasterKey};
use crate::aws::session::{reason_as, Scope, Session};
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
    /// The same master key as `other`: key, role and encryption context agree; the
    /// profile only says how to reach it.
    pub fn same_key(&self, other: &KmsSpec) -> bool {
        let sorted = |c: &[(String, String)]| {
            let mut c = c.to_vec();
            c.sort();
            c
        };
        self.arn == other.arn
            && self.role == other.role
            && sorted(&self.context) == sorted(&other.context)
    }

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
        region_of(arn)?;
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
    let mut out: Vec<(String, String)> = Vec::new();
    for p in s.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, v) = p
            .split_once('=')
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .ok_or_else(|| Error::Usage(format!("encryption context {p:?} is not key=value")))?;
        // KMS takes a context as a map: a key given twice is a mistake, not a choice.
        if out.iter().any(|(o, _)| *o == k) {
            return Err(Error::Usage(format!(
                "encryption context key {k:?} is given twice"
            )));
        }
        out.push((k, v));
    }
    Ok(out)
}

/// The region is the fourth field of the ARN, as sops reads it.
pub fn region_of(arn: &str) -> std::result::Result<&str, KeyError> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "kms", region, _, rest]
            if !region.is_empty() && (rest.starts_with("key/") || rest.starts_with("alias/")) =>
        {
            Ok(region)
        }
        _ => Err(KeyError::NotKmsArn(arn.to_string())),
    }
}

/// KMS clients for this process: one per scope (region, profile, role), made on first use
/// from the process's AWS session.
pub struct KmsKeys {
    session: Arc<Session>,
    clients: Mutex<HashMap<Scope, aws_sdk_kms::Client>>,
}

impl KmsKeys {
    pub fn new(session: Arc<Session>) -> Self {
        KmsKeys {
            session,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// A key's client, and the scope it was made for.
    fn client(
        &self,
        arn: &str,
        profile: Option<&str>,
        role: Option<&str>,
    ) -> std::result::Result<(aws_sdk_kms::Client, Scope), KeyError> {
        let scope = Scope {
            region: Some(region_of(arn)?.to_string()),
            profile: profile.map(str::to_string),
            role: role.map(str::to_string),
        };
        if let Some(c) = self.clients.lock().expect("client cache lock").get(&scope) {
            return Ok((c.clone(), scope));
        }
        let client = aws_sdk_kms::Client::new(&self.session.config(&scope)?);
        self.clients
            .lock()
            .expect("client cache lock")
            .insert(scope.clone(), client.clone());
        Ok((client, scope))
    }

    /// Where a key's calls go, for its error lines: `in REGION (account A, profile P)`,
    /// the account the key's.
    fn place(&self, scope: &Scope, arn: &str) -> String {
        self.session
            .place(scope, None, crate::aws::profiles::account_of(arn))
    }

    /// Wrap a data key with one KMS key, as a sops metadata entry.
    /// `secret` (a data key, or a Shamir share of one) encrypted under `spec`'s key.
    pub fn wrap(&self, secret: &[u8], spec: &KmsSpec) -> Result<KmsEntry> {
        let fail = |error: KeyError| Error::Key {
            key: format!("kms:{}", spec.arn),
            error,
        };
        let (client, scope) = self
            .client(&spec.arn, spec.aws_profile.as_deref(), spec.role.as_deref())
            .map_err(fail)?;
        let mut req = client
            .encrypt()
            .key_id(&spec.arn)
            .plaintext(Blob::new(secret.to_vec()));
        for (k, v) in &spec.context {
            req = req.encryption_context(k, v);
        }
        let out = self.session.block_on(req.send()).map_err(|e| {
            fail(KeyError::Kms {
                call: "Encrypt",
                place: self.place(&scope, &spec.arn),
                reason: reason_as(&e, "KMS", spec.aws_profile.as_deref()),
            })
        })?;
        let blob = out
            .ciphertext_blob()
            .ok_or_else(|| fail(KeyError::NoCiphertext))?;
        Ok(KmsEntry {
            arn: spec.arn.clone(),
            role: spec.role.clone(),
            context: spec.context.clone(),
            created_at: crate::metadata::now_rfc3339(),
            enc: B64.encode(blob.as_ref()),
            aws_profile: spec.aws_profile.clone(),
        })
    }

    fn open(&self, entry: &KmsEntry) -> std::result::Result<Zeroizing<Vec<u8>>, KeyError> {
        let (client, scope) = self.client(
            &entry.arn,
            entry.aws_profile.as_deref(),
            entry.role.as_deref(),
        )?;
        let blob = B64
            .decode(entry.enc.trim())
            .map_err(|_| KeyError::NotBase64)?;
        let mut req = client
            .decrypt()
            .key_id(&entry.arn)
            .ciphertext_blob(Blob::new(blob));
        for (k, v) in &entry.context {
            req = req.encryption_context(k, v);
        }
        let out = self
            .session
            .block_on(req.send())
            .map_err(|e| KeyError::Kms {
                call: "Decrypt",
                place: self.place(&scope, &entry.arn),
                reason: reason_as(&e, "KMS", entry.aws_profile.as_deref()),
            })?;
        Ok(Zeroizing::new(
            out.plaintext()
                .map(|b| b.as_ref().to_vec())
                .unwrap_or_default(),
        ))
    }
}

impl MasterKey for KmsKeys {
    fn kind(&self) -> &'static str {
        "kms"
    }

    fn unwrap(
        &self,
        meta: &Metadata,
    ) -> std::result::Result<Option<Zeroizing<Vec<u8>>>, Vec<String>> {
        super::first_opened(&meta.kms, |e| format!("kms:{}", e.arn), |e| self.open(e))
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
