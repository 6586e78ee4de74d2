//! Master keys: what wraps and unwraps a file's data key. Every kind sits behind
//! [`MasterKey`]; the [`Keyring`] tries them in order (age before KMS, as sops does)
//! and remembers each data key it opened, so a process unwraps a given key once.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::cipher::DataKey;
use crate::metadata::Metadata;

pub mod age;

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
