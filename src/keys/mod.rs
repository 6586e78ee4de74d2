//! Master keys: what wraps and unwraps a file's data key. Every kind sits behind
//! [`MasterKey`]; the [`Keyring`] tries them in order (age before KMS, as sops does)
//! and remembers each data key it opened, so a process unwraps a given key once.

use std::collections::HashMap;
use std::sync::Mutex;

use zeroize::Zeroizing;

use crate::cipher::DataKey;
use crate::metadata::Metadata;

pub mod age;
pub mod kms;
pub mod pgp;
pub mod plugin;
pub mod shamir;
pub mod unlock;

/// The master keys a new data key is wrapped for: all of them, or, split over Shamir key
/// groups, a share for each group wrapped for the keys of that group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recipients {
    pub age: Vec<String>,
    pub kms: Vec<kms::KmsSpec>,
    /// PGP key fingerprints.
    pub pgp: Vec<String>,
    /// Key groups (more than one); the flat lists are then empty.
    pub groups: Vec<Recipients>,
    /// How many groups open the data key (with `groups`).
    pub threshold: usize,
}

impl Recipients {
    /// The data key `key` wrapped for every master key here, as metadata entries: flat
    /// lists, or with key groups, the key split once (Shamir) and each share wrapped for
    /// every key of its group. An entry `keep` already holds for a key (of the same data
    /// key) is kept as it is.
    pub fn wrap(
        &self,
        key: &[u8],
        with: &Wrappers,
        keep: Option<&Metadata>,
    ) -> crate::Result<Metadata> {
        if self.groups.is_empty() {
            return self.wrap_flat(key, with, keep);
        }
        let n = self.groups.len();
        let shares =
            shamir::split(key, n, self.threshold).map_err(|e| KeyError::Shamir(e.to_string()))?;
        let mut groups = Vec::with_capacity(n);
        for (share, group) in shares.iter().zip(&self.groups) {
            if group.is_empty() {
                return Err(KeyError::EmptyGroup.into());
            }
            groups.push(group.wrap_flat(share, with, None)?);
        }
        let mut md = Metadata::default();
        md.split_over(groups, self.threshold);
        Ok(md)
    }

    fn wrap_flat(
        &self,
        key: &[u8],
        with: &Wrappers,
        keep: Option<&Metadata>,
    ) -> crate::Result<Metadata> {
        let mut md = Metadata::default();
        let kept_kms = keep.map(|m| Recipients::of(m).kms).unwrap_or_default();
        for r in &self.age {
            md.age.push(
                match keep.and_then(|m| m.age.iter().find(|a| a.recipient == *r)) {
                    Some(entry) => entry.clone(),
                    None => age::wrap(key, r)?,
                },
            );
        }
        for spec in &self.kms {
            let kept = kept_kms.iter().position(|c| c.same_key(spec));
            md.kms.push(match keep.zip(kept) {
                Some((m, i)) => m.kms[i].clone(),
                None => with.kms.wrap(key, spec)?,
            });
        }
        for fp in &self.pgp {
            md.pgp.push(
                match keep.and_then(|m| m.pgp.iter().find(|p| p.fp == *fp)) {
                    Some(entry) => entry.clone(),
                    None => with.pgp.wrap(key, fp)?,
                },
            );
        }
        Ok(md)
    }

    pub fn is_empty(&self) -> bool {
        self.age.is_empty() && self.kms.is_empty() && self.pgp.is_empty() && self.groups.is_empty()
    }

    /// The key groups: one for keys that are not split.
    pub fn groups_or_self(&self) -> Vec<Recipients> {
        if self.groups.is_empty() {
            vec![self.clone()]
        } else {
            self.groups.clone()
        }
    }

    /// The master keys a file has now.
    pub fn of(meta: &Metadata) -> Recipients {
        if meta.is_shamir() {
            return Recipients {
                groups: meta.groups.iter().map(Recipients::of).collect(),
                threshold: meta.shamir_threshold,
                ..Recipients::default()
            };
        }
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
            pgp: meta.pgp.iter().map(|p| p.fp.clone()).collect(),
            ..Recipients::default()
        }
    }
}

impl<T: MasterKey> MasterKey for std::sync::Arc<T> {
    fn kind(&self) -> &'static str {
        (**self).kind()
    }

    fn unwrap(&self, meta: &Metadata) -> Result<Option<Zeroizing<Vec<u8>>>, Vec<String>> {
        (**self).unwrap(meta)
    }
}

/// What this process wraps data keys with, besides age (which needs nothing but the
/// recipient): its KMS clients and its gpg.
#[derive(Clone)]
pub struct Wrappers {
    pub kms: std::sync::Arc<kms::KmsKeys>,
    pub pgp: std::sync::Arc<pgp::PgpKeys>,
}

impl Wrappers {
    /// For work that names no KMS or PGP key: the AWS session, made from no settings,
    /// and gpg are never used.
    pub fn age_only() -> Wrappers {
        Wrappers {
            kms: std::sync::Arc::new(kms::KmsKeys::new(std::sync::Arc::new(
                crate::aws::Session::new(crate::aws::session::Settings::default()),
            ))),
            pgp: std::sync::Arc::new(pgp::PgpKeys::default()),
        }
    }
}

/// Why a master key could not wrap or open a data key, or an identity could not be
/// read: named by key, recipient or where the identity came from, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "{0:?} is not a KMS key or alias ARN (arn:aws:kms:REGION:ACCOUNT:key/ID or …:alias/NAME)"
    )]
    NotKmsArn(String),
    #[error(transparent)]
    Session(#[from] crate::aws::session::SessionError),
    /// KMS refused or could not be reached: the call, where, and AWS's reason.
    #[error("{call} {place}: {reason}")]
    Kms {
        call: &'static str,
        place: String,
        reason: String,
    },
    #[error("KMS returned no ciphertext")]
    NoCiphertext,
    #[error("the wrapped key is not base64")]
    NotBase64,
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    /// gpg failed: the last line it wrote to stderr, or its exit status.
    #[error("{0}")]
    Gpg(String),
    #[error("gpg did not report a decrypted message")]
    NotDecrypted,
    #[error("gpg wrote no ASCII armor")]
    NoArmor,
    #[error("not a valid age recipient: {0:?} (expected age1…)")]
    NotAgeRecipient(String),
    #[error("not a valid ssh recipient: {0}")]
    NotSshRecipient(String),
    #[error("not a valid age plugin recipient: {recipient} ({reason})")]
    NotPluginRecipient { recipient: String, reason: String },
    /// An age plugin, or age itself, failed: its reason on one line.
    #[error("{0}")]
    Age(String),
    #[error("{origin}: not an age identity file (expected AGE-SECRET-KEY-1… lines)")]
    NotIdentityFile { origin: String },
    #[error("{origin}: not a valid age plugin identity ({reason})")]
    NotPluginIdentity { origin: String, reason: String },
    #[error("{origin}: the output is not an OpenSSH private key")]
    NotSshKey { origin: String },
    #[error("{origin}: {why}")]
    Locked { origin: String, why: Locked },
    #[error("{origin}: {command} failed ({status})")]
    CommandFailed {
        origin: String,
        command: String,
        status: std::process::ExitStatus,
    },
    #[error("{origin}: cannot run {command}: {source}")]
    CommandSpawn {
        origin: String,
        command: String,
        source: std::io::Error,
    },
    #[error("{origin}: cannot split the command line into words")]
    CommandLine { origin: String },
    #[error("Shamir key groups: {0}")]
    Shamir(String),
    #[error("a Shamir key group names no key coffer can wrap its share for")]
    EmptyGroup,
}

/// Why a passphrase-protected identity file did not open.
#[derive(Debug, thiserror::Error)]
pub enum Locked {
    #[error(
        "the identity file is passphrase-protected and there is no way to ask for the passphrase"
    )]
    NoWayToAsk,
    #[error("not an age-encrypted identity file ({0})")]
    NotEncrypted(String),
    #[error("an encrypted identity file must be encrypted with a passphrase")]
    NotScrypt,
    #[error(transparent)]
    Unanswered(#[from] crate::prompt::Unanswered),
    #[error("incorrect passphrase")]
    Incorrect,
    #[error("cannot decrypt the identity file ({0})")]
    Undecryptable(String),
}

/// Why an age entry named for an identity at hand does not open with it (`sops::open`
/// makes that an integrity error, not a missing key).
pub const ENTRY_ALTERED: &str =
    "the entry named for this identity does not open with it: it was altered";

/// Data keys kept between processes (the git filter's `.git/coffer/keys`), by a file's
/// key entries. Whatever it gives is still checked by the file's MAC.
pub trait KeptKeys: Send + Sync {
    fn get(&self, meta: &Metadata) -> Option<DataKey>;
    fn put(&self, meta: &Metadata, key: &DataKey);
}

/// One way of opening data keys (all age identities, or one KMS client).
pub trait MasterKey: Send + Sync {
    /// The kind's name in sops's `--decryption-order` (`age`, `pgp`, `kms`).
    fn kind(&self) -> &'static str;

    /// Try to open what the entries in `meta` this key kind understands wrap: the data
    /// key, or a file's Shamir share of it. `Ok(None)` means no entry of this kind was
    /// present.
    fn unwrap(&self, meta: &Metadata) -> Result<Option<Zeroizing<Vec<u8>>>, Vec<String>>;

    /// A secret of this process's own keys the git filter keys its record of seen
    /// plaintext with; `None` for key kinds whose secret stays elsewhere (KMS).
    fn seen_key(&self) -> Option<Zeroizing<[u8; 32]>> {
        None
    }
}

/// What a key kind's `unwrap` answers for `entries`: the first that `open` opens, or
/// why each failed (named by `name`); `Ok(None)` when there are none.
pub(crate) fn first_opened<E>(
    entries: &[E],
    name: impl Fn(&E) -> String,
    open: impl Fn(&E) -> Result<Zeroizing<Vec<u8>>, KeyError>,
) -> Result<Option<Zeroizing<Vec<u8>>>, Vec<String>> {
    if entries.is_empty() {
        return Ok(None);
    }
    let mut reasons = Vec::new();
    for entry in entries {
        match open(entry) {
            Ok(key) => return Ok(Some(key)),
            Err(why) => reasons.push(format!("{}: {why}", name(entry))),
        }
    }
    Err(reasons)
}

/// Everything this process can decrypt with.
pub struct Keyring {
    sources: Vec<Box<dyn MasterKey>>,
    /// Data keys kept between processes, looked in before any master key is tried.
    kept: std::sync::OnceLock<std::sync::Arc<dyn KeptKeys>>,
    state: Mutex<Cache>,
    /// Signalled when an unwrap ends, for threads waiting on the same data key.
    unwrapped: std::sync::Condvar,
}

/// Opened data keys by the wrapped form they came from, and the wrapped forms being
/// opened right now (by another thread).
#[derive(Default)]
struct Cache {
    keys: HashMap<String, DataKey>,
    opening: std::collections::HashSet<String>,
}

/// The order key kinds are tried in: those `order` names first, in its order, then the
/// rest as they were (sops's `--decryption-order`; names of kinds not here are ignored).
pub fn decryption_order(kinds: &[&str], order: &[&str]) -> Vec<usize> {
    let rank = |k: &str| order.iter().position(|o| *o == k).unwrap_or(order.len());
    let mut idx: Vec<usize> = (0..kinds.len()).collect();
    // A stable sort keeps the unnamed kinds in their own order.
    idx.sort_by_key(|&i| rank(kinds[i]));
    idx
}

impl Keyring {
    /// The same keys, tried in `order` (see [`decryption_order`]).
    pub fn in_order(mut self, order: &[&str]) -> Self {
        let kinds: Vec<&'static str> = self.sources.iter().map(|s| s.kind()).collect();
        let mut slots: Vec<Option<Box<dyn MasterKey>>> = self.sources.drain(..).map(Some).collect();
        self.sources = decryption_order(&kinds, order)
            .into_iter()
            .filter_map(|i| slots[i].take())
            .collect();
        self
    }

    pub fn new(sources: Vec<Box<dyn MasterKey>>) -> Self {
        Keyring {
            sources,
            kept: std::sync::OnceLock::new(),
            state: Mutex::new(Cache::default()),
            unwrapped: std::sync::Condvar::new(),
        }
    }

    /// Open the data key of a file, or say why every master key failed. Each data key is
    /// unwrapped once per process: a thread asking for one another thread is opening
    /// waits for it (one KMS call for files that share a key, smudged in parallel).
    pub fn data_key(&self, meta: &Metadata) -> Result<DataKey, Vec<String>> {
        // Shares of a split key name it too: each belongs to this file's split alone.
        let wrapped: Vec<&str> = std::iter::once(meta)
            .chain(&meta.groups)
            .flat_map(Metadata::wrapped_keys)
            .collect();
        {
            let mut state = self.state.lock().expect("key cache lock");
            loop {
                if let Some(k) = wrapped.iter().find_map(|w| state.keys.get(*w)) {
                    return Ok(k.clone());
                }
                if !wrapped.iter().any(|w| state.opening.contains(*w)) {
                    break;
                }
                state = self.unwrapped.wait(state).expect("key cache lock");
            }
            state
                .opening
                .extend(wrapped.iter().map(|w| (*w).to_string()));
        }
        let kept = self.kept.get();
        let opened = match kept.and_then(|k| k.get(meta)) {
            Some(key) => Ok(key),
            None => {
                let opened = if meta.is_shamir() {
                    self.combine(meta)
                } else {
                    self.unwrap(meta).and_then(|raw| {
                        DataKey::from_slice(&raw).ok_or_else(|| {
                            vec!["a master key opened to a data key that is not 32 bytes"
                                .to_string()]
                        })
                    })
                };
                if let (Ok(key), Some(kept)) = (&opened, kept) {
                    kept.put(meta, key);
                }
                opened
            }
        };
        let mut state = self.state.lock().expect("key cache lock");
        for w in &wrapped {
            state.opening.remove(*w);
            if let Ok(key) = &opened {
                state.keys.insert((*w).to_string(), key.clone());
            }
        }
        self.unwrapped.notify_all();
        opened
    }

    /// Look in `kept` for data keys before unwrapping any, and keep there those
    /// unwrapped (once per keyring; later calls are ignored).
    pub fn keep_keys_in(&self, kept: std::sync::Arc<dyn KeptKeys>) {
        let _ = self.kept.set(kept);
    }

    /// See `MasterKey::seen_key`: the first source's that has one.
    pub fn seen_key(&self) -> Option<Zeroizing<[u8; 32]>> {
        self.sources.iter().find_map(|s| s.seen_key())
    }

    /// A data key split over Shamir key groups: a share from each group some key here
    /// opens, until there are `shamir_threshold` of them.
    fn combine(&self, meta: &Metadata) -> Result<DataKey, Vec<String>> {
        let mut shares = Vec::new();
        let mut reasons = Vec::new();
        for (i, group) in meta.groups.iter().enumerate() {
            if shares.len() == meta.shamir_threshold {
                break;
            }
            match self.unwrap(group) {
                Ok(share) => shares.push(share),
                Err(r) => reasons.extend(r.into_iter().map(|r| format!("group {i}: {r}"))),
            }
        }
        if shares.len() < meta.shamir_threshold {
            reasons.push(format!(
                "{} of {} key groups opened; the data key needs {}",
                shares.len(),
                meta.groups.len(),
                meta.shamir_threshold
            ));
            return Err(reasons);
        }
        let parts: Vec<&[u8]> = shares.iter().map(|s| s.as_slice()).collect();
        let key = shamir::combine(&parts).map_err(|e| vec![format!("Shamir key groups: {e}")])?;
        DataKey::from_slice(&key).ok_or_else(|| {
            vec!["the Shamir shares combine to a data key that is not 32 bytes".to_string()]
        })
    }

    fn unwrap(&self, meta: &Metadata) -> Result<Zeroizing<Vec<u8>>, Vec<String>> {
        let mut reasons = Vec::new();
        for source in &self.sources {
            match source.unwrap(meta) {
                Ok(Some(key)) => return Ok(key),
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

/// Leave the variables coffer reads keys from (of `names`, the environment's) out of a
/// child's environment: a child gets no key that opens every file.
pub fn remove_key_sources(
    cmd: &mut std::process::Command,
    names: impl IntoIterator<Item = String>,
) {
    for name in names {
        if is_key_source(&name) {
            cmd.env_remove(name);
        }
    }
}

/// Whether an environment variable is one coffer reads a key (or what unlocks one)
/// from: identities, their files, SSH keys, the MFA code, PGP fingerprints.
pub fn is_key_source(name: &str) -> bool {
    name.starts_with("COFFER_AGE_")
        || name.starts_with("SOPS_AGE_")
        || matches!(name, "COFFER_MFA_TOKEN" | "SOPS_PGP_FP" | "COFFER_PGP_FP")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A master key that takes its time and counts its calls.
    struct Slow(std::sync::Arc<AtomicUsize>);

    #[test]
    fn a_decryption_order_puts_the_kinds_it_names_first() {
        let kinds = ["age", "kms", "pgp"];
        let table: &[(&[&str], [usize; 3])] = &[
            (&[], [0, 1, 2]),
            (&["pgp"], [2, 0, 1]),
            (&["pgp", "age"], [2, 0, 1]),
            (&["kms", "pgp", "age"], [1, 2, 0]),
            (&["gcp_kms", "pgp"], [2, 0, 1]),
            (&["age"], [0, 1, 2]),
        ];
        for (order, want) in table {
            assert_eq!(super::decryption_order(&kinds, order), want, "{order:?}");
        }
    }

    impl MasterKey for Slow {
        fn kind(&self) -> &'static str {
            "slow"
        }

        fn unwrap(&self, _: &Metadata) -> Result<Option<Zeroizing<Vec<u8>>>, Vec<String>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(50));
            Ok(Some(Zeroizing::new(vec![7; 32])))
        }
    }

    /// Threads asking for the same data key at once cause one unwrap (one KMS call).
    #[test]
    fn a_data_key_is_unwrapped_once_however_many_threads_ask() {
        let calls = std::sync::Arc::new(AtomicUsize::new(0));
        let keyring = Keyring::new(vec![Box::new(Slow(calls.clone()))]);
        let meta = Metadata {
            age: vec![crate::metadata::AgeEntry {
                recipient: "age1x".into(),
                enc: "wrapped".into(),
            }],
            ..Default::default()
        };
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| assert!(keyring.data_key(&meta).is_ok()));
            }
        });
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
