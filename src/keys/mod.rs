//! Master keys: what wraps and unwraps a file's data key. Every kind sits behind
//! [`MasterKey`]; the [`Keyring`] tries them in order (age before KMS, as sops does)
//! and remembers each data key it opened, so a process unwraps a given key once.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::cipher::DataKey;
use crate::metadata::Metadata;

pub mod age;
pub mod kms;
pub mod shamir;

/// The master keys a new data key is wrapped for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recipients {
    pub age: Vec<String>,
    pub kms: Vec<kms::KmsSpec>,
}

impl Recipients {
    pub fn is_empty(&self) -> bool {
        self.age.is_empty() && self.kms.is_empty()
    }

    /// The master keys a file has now.
    pub fn of(meta: &Metadata) -> Recipients {
        Recipients {
            age: meta.age.iter().map(|a| a.recipient.clone()).collect(),
            kms: meta
                .kms
                .iter()
                .map(|k| kms::KmsSpec {
                    arn: k.arn.clone(),
                    role: k.role.clone(),
                    context: k.context.clone(),
                    aws_profile: k.aws_profile.clone(),
                })
                .collect(),
        }
    }
}

impl<T: MasterKey> MasterKey for std::sync::Arc<T> {
    fn unwrap(&self, meta: &Metadata) -> Result<Option<DataKey>, Vec<String>> {
        (**self).unwrap(meta)
    }
}

/// One way of opening data keys (all age identities, or one KMS client).
pub trait MasterKey: Send + Sync {
    /// Try to open the data key from the entries in `meta` this key kind understands.
    /// `Ok(None)` means no entry of this kind was present.
    fn unwrap(&self, meta: &Metadata) -> Result<Option<DataKey>, Vec<String>>;
}

/// Everything this process can decrypt with.
pub struct Keyring {
    sources: Vec<Box<dyn MasterKey>>,
    /// Opened data keys by the wrapped form they came from.
    cache: Mutex<HashMap<String, DataKey>>,
}

impl Keyring {
    pub fn new(sources: Vec<Box<dyn MasterKey>>) -> Self {
        Keyring {
            sources,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Open the data key of a file, or say why every master key failed.
    pub fn data_key(&self, meta: &Metadata) -> Result<DataKey, Vec<String>> {
        let wrapped: Vec<&str> = meta
            .age
            .iter()
            .map(|a| a.enc.as_str())
            .chain(meta.kms.iter().map(|k| k.enc.as_str()))
            .collect();
        {
            let cache = self.cache.lock().expect("key cache lock");
            if let Some(k) = wrapped.iter().find_map(|w| cache.get(*w)) {
                return Ok(k.clone());
            }
        }
        let mut reasons = Vec::new();
        for source in &self.sources {
            match source.unwrap(meta) {
                Ok(Some(key)) => {
                    let mut cache = self.cache.lock().expect("key cache lock");
                    for w in &wrapped {
                        cache.insert((*w).to_string(), key.clone());
                    }
                    return Ok(key);
                }
                Ok(None) => {}
                Err(r) => reasons.extend(r),
            }
        }
        if reasons.is_empty() {
            reasons.push("no master key in the file is of a kind coffer can use here".into());
        }
        Err(reasons)
    }
}

/// Whether an environment variable is one coffer reads a key (or what unlocks one)
/// from: identities, their files, SSH keys, the MFA code, PGP fingerprints.
pub fn is_key_source(name: &str) -> bool {
    name.starts_with("COFFER_AGE_")
        || name.starts_with("SOPS_AGE_")
        || matches!(name, "COFFER_MFA_TOKEN" | "SOPS_PGP_FP")
}
