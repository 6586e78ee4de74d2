//! Clean (plaintext → sops) and smudge (sops → plaintext) for one file, shared by the
//! long-running process and the single-shot commands.
//!
//! Clean is deterministic: it reuses the data key and metadata of the file's version in
//! the index (or HEAD), and returns that version byte for byte when the plaintext has not
//! changed, so `git status` stays clean and a one-value change is a one-value diff.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::cipher::DataKey;
use crate::config::CreationRule;
use crate::format::{binary, Format};

use crate::keys::{Keyring, Recipients};
use crate::sops::{Layout, Sealed};
use crate::tree::Document;
use crate::{sops, Error, Result};

use super::seen::{Hit, Seen, Tagger};
use crate::sops::OpenOptions;

pub struct Filter {
    keyring: std::sync::Arc<Keyring>,
    repo: Option<git2::Repository>,
    workdir: PathBuf,
    /// Recipients for new files from the environment; creation rules otherwise.
    env_recipients: Recipients,
    wrappers: crate::keys::Wrappers,
    /// Files smudged without a key, reported once when the filter is done.
    pub locked: Vec<String>,
    /// What to do when a file's layout cannot be kept (`--strict-layout`).
    pub layout: Layout,
    /// Warnings for the user (layouts not kept), taken by whoever reports them.
    pub notes: Vec<String>,
    /// Smudge leaves ciphertext as it is: the filter serves `git archive`, whose output
    /// leaves the repository.
    pub keep_ciphertext: bool,
    /// Files kept encrypted for that reason.
    pub kept: usize,
    committed: std::cell::RefCell<Option<Committed>>,
    /// Plaintext seen with each blob (`git::seen`), when the process keeps that record.
    seen: Option<Seen>,
    /// Data keys kept between processes (`git::keycache`), with the record above.
    key_cache: Option<std::sync::Arc<super::keycache::KeyCache>>,
    /// The creation rules, each config file read once a process.
    rules: std::cell::RefCell<crate::config::RulesCache>,
}

/// Where each path's committed version is: stage-0 index entries, then HEAD's tree.
struct Committed {
    /// libgit2's index of the repository, looked up by path (it keeps its entries
    /// sorted): no map of every path is made for a status that cleans one file.
    index: Option<git2::Index>,
    head_tree: Option<git2::Oid>,
    /// The index file's (inode, mtime, size) when read: one git command (a rebase, say) may
    /// rewrite the index while this process serves it.
    stamp: Option<(u64, std::time::SystemTime, u64)>,
}

/// git replaces the index by renaming `index.lock` over it, so a rewrite always shows
/// as a new inode, even within one mtime tick and at the same size.
fn index_stamp(repo: &git2::Repository) -> Option<(u64, std::time::SystemTime, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(repo.path().join("index")).ok()?;
    Some((m.ino(), m.modified().ok()?, m.len()))
}

impl Committed {
    fn load(repo: &git2::Repository) -> Committed {
        let stamp = index_stamp(repo);
        // The repository keeps the index it read first and does not read it again by
        // itself: libgit2 reads it anew where the file's checksum changed since (not
        // at the first load, which has just read it).
        let index = repo.index().ok().and_then(|mut idx| {
            idx.read(false).ok()?;
            Some(idx)
        });
        let head_tree = repo
            .head()
            .ok()
            .and_then(|h| h.peel_to_tree().ok())
            .map(|t| t.id());
        Committed {
            index,
            head_tree,
            stamp,
        }
    }
}

/// What a committed version says of a plaintext.
enum Against {
    /// It holds that plaintext: these are its bytes, the answer.
    Same(Blob),
    /// It holds another: a new version keeps its data key and metadata.
    Changed(Box<sops::Keyed>),
}

/// A committed version's bytes: in memory, or (a large one) in an unnamed file of this
/// process's own, mapped, its pages given back as it is walked: not held in memory
/// beside the plaintext's document. Ciphertext, as git stores it.
enum Blob {
    Bytes(Zeroizing<Vec<u8>>),
    Mapped(crate::mapped::Mapped),
}

impl Blob {
    fn with<R>(&mut self, work: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Blob::Bytes(b) => work(b),
            Blob::Mapped(m) => m.given_back_while(|b| work(b)),
        }
    }

    fn into_bytes(self) -> Zeroizing<Vec<u8>> {
        match self {
            Blob::Bytes(b) => b,
            Blob::Mapped(mut m) => Zeroizing::new(m.given_back_while(|b| b.to_vec())),
        }
    }
}

/// What clean answers: a new version made in memory, or written into an unnamed file
/// of this process's own (see [`sops::encrypt_document_into`]), or the committed
/// version; read into memory once the plaintext's document is let go.
enum Made {
    Bytes(Zeroizing<Vec<u8>>),
    Staged(std::fs::File),
    /// The committed version, which holds the plaintext: the answer as it is.
    Committed(Blob),
}

impl Made {
    fn into_bytes(self) -> Result<Zeroizing<Vec<u8>>> {
        match self {
            Made::Bytes(b) => Ok(b),
            Made::Committed(blob) => Ok(blob.into_bytes()),
            // Written by position: the file is read from its start.
            Made::Staged(mut file) => {
                crate::fsutil::read_whole(Path::new("<the filter's staging file>"), &mut file)
            }
        }
    }
}

/// A plaintext document's bytes: its text, or a binary file's one value.
fn plaintext_of(format: Format, plain: &Document) -> &[u8] {
    match format.store().payload(plain) {
        Some(i) => plain.value(i),
        None => plain.text.as_bytes(),
    }
}

/// True when `bytes` are a sops file in `format` (binary files are sops JSON).
pub fn is_encrypted(format: Format, bytes: &[u8]) -> bool {
    format.store().is_encrypted(bytes)
}

/// A merge conflict stored encrypted (see `merge`): plaintext with conflict markers
/// does not parse in the file's own format, so it is kept as one binary value.
pub fn is_conflict(bytes: &[u8]) -> bool {
    // `merge` writes it with the key first.
    let head = format!("{{\n\t\"{}\"", binary::CONFLICT_KEY);
    bytes.starts_with(head.as_bytes())
}

impl Filter {
    pub fn new(
        keyring: Keyring,
        wrappers: crate::keys::Wrappers,
        workdir: PathBuf,
        config: Option<PathBuf>,
        env_recipients: Recipients,
    ) -> Self {
        // Each blob read is checked by its sops MAC; libgit2's re-hash of every object
        // read would double the work of `git status` after a touch.
        git2::opts::strict_hash_verification(false);
        let repo = git2::Repository::discover(&workdir).ok();
        Filter {
            keyring: std::sync::Arc::new(keyring),
            repo,
            workdir,
            env_recipients,
            wrappers,
            locked: Vec::new(),
            layout: Layout::default(),
            notes: Vec::new(),
            keep_ciphertext: false,
            kept: 0,
            committed: std::cell::RefCell::new(None),
            seen: None,
            key_cache: None,
            rules: std::cell::RefCell::new(crate::config::RulesCache::new(config)),
        }
    }

    /// Keep the record of seen plaintext (`git::seen`) and the data keys opened
    /// (`git::keycache`) for this process: read them now, write them with `save_seen`.
    /// Needs a repository and an age identity.
    pub fn load_seen(&mut self) {
        let (Some(repo), Some(key)) = (&self.repo, self.keyring.seen_key()) else {
            return;
        };
        let cache = std::sync::Arc::new(super::keycache::KeyCache::load(repo.path(), &key));
        self.keyring.keep_keys_in(cache.clone());
        self.key_cache = Some(cache);
        self.seen = Some(Seen::load(repo.path(), Tagger::new(key)));
    }

    pub fn save_seen(&self) -> std::io::Result<()> {
        if let Some(cache) = &self.key_cache {
            cache.save()?;
        }
        self.seen.as_ref().map_or(Ok(()), Seen::save)
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    pub fn wrappers(&self) -> &crate::keys::Wrappers {
        &self.wrappers
    }

    /// The file's blob in the index, else in HEAD.
    pub fn committed_blob(&self, path: &str) -> Option<Vec<u8>> {
        self.blob(self.committed_id(path)?)
    }

    fn blob(&self, id: git2::Oid) -> Option<Vec<u8>> {
        let repo = self.repo.as_ref()?;
        repo.find_blob(id).ok().map(|b| b.content().to_vec())
    }

    /// The blob `id` as clean compares with it: a large one streamed (a loose object)
    /// or copied (a packed one, which libgit2 reads whole) into a file of this
    /// process's own and mapped, else in memory.
    fn held_blob(&self, id: git2::Oid) -> Option<Blob> {
        let repo = self.repo.as_ref()?;
        let mapped = || {
            use std::io::Read;
            let odb = repo.odb().ok()?;
            let (len, kind) = odb.read_header(id).ok()?;
            if kind != git2::ObjectType::Blob || len < sops::INTO_FILE_FROM {
                return None;
            }
            let mut mapped = crate::mapped::Mapped::new(&self.staging()?, len).ok()?;
            let filled = mapped.given_back_while(|buf| match odb.reader(id) {
                Ok((mut reader, n, _)) if n == len => reader.read_exact(buf).is_ok(),
                _ => repo.find_blob(id).ok().is_some_and(|b| {
                    let whole = b.content().len() == len;
                    if whole {
                        buf.copy_from_slice(b.content());
                    }
                    whole
                }),
            });
            filled.then_some(Blob::Mapped(mapped))
        };
        mapped().or_else(|| self.blob(id).map(|b| Blob::Bytes(Zeroizing::new(b))))
    }

    /// An unnamed file in the git directory, for ciphertext too large to hold beside
    /// a plaintext's document: nothing is left of it when the process ends.
    fn staging(&self) -> Option<std::fs::File> {
        tempfile::tempfile_in(self.repo.as_ref()?.path()).ok()
    }

    /// The id of the file's blob in the index, else in HEAD.
    fn committed_id(&self, path: &str) -> Option<git2::Oid> {
        let repo = self.repo.as_ref()?;
        // Read (and checksum) the index once, not once a file, unless it changed.
        let mut cache = self.committed.borrow_mut();
        if cache
            .as_ref()
            .is_none_or(|c| c.stamp != index_stamp(repo) || c.stamp.is_none())
        {
            *cache = Some(Committed::load(repo));
        }
        let committed = cache.as_ref().expect("loaded above");
        let staged = committed
            .index
            .as_ref()
            .and_then(|idx| idx.get_path(Path::new(path), 0));
        match staged {
            Some(entry) => Some(entry.id),
            None => Some(
                repo.find_tree(committed.head_tree?)
                    .ok()?
                    .get_path(Path::new(path))
                    .ok()?
                    .id(),
            ),
        }
    }

    /// The blob of `path` in HEAD or the commits a merge, rebase or cherry-pick in
    /// progress names, whose plaintext is `plain`; `known` (compared already) skipped.
    fn matching_version(
        &self,
        path: &str,
        format: Format,
        plain: &Document,
        known: Option<git2::Oid>,
    ) -> Option<Blob> {
        let repo = self.repo.as_ref()?;
        let mut seen: Vec<git2::Oid> = known.into_iter().collect();
        for name in [
            "HEAD",
            "ORIG_HEAD",
            "MERGE_HEAD",
            "CHERRY_PICK_HEAD",
            "REBASE_HEAD",
        ] {
            let Some(tree) = repo
                .revparse_single(name)
                .ok()
                .and_then(|o| o.peel_to_tree().ok())
            else {
                continue;
            };
            let Some(id) = tree.get_path(Path::new(path)).ok().map(|e| e.id()) else {
                continue;
            };
            if seen.contains(&id) {
                continue;
            }
            seen.push(id);
            let blob = self.held_blob(id)?;
            if let Ok(Against::Same(blob)) = self.against(path, format, blob, plain, Some(id)) {
                return Some(blob);
            }
        }
        None
    }

    pub fn clean(&mut self, path: &str, content: Vec<u8>) -> Result<Zeroizing<Vec<u8>>> {
        let content = Zeroizing::new(content);
        let format = Format::from_path(Path::new(path));
        if content.is_empty() {
            return Ok(content);
        }
        if is_encrypted(format, &content) {
            return self.clean_encrypted(path, format, content);
        }
        let committed = self.committed_id(path);
        // What `git status` mostly asks after a touch or a checkout: nothing changed.
        if let (Some(id), Some(seen)) = (committed, &self.seen) {
            match seen.lookup(path, id, &content) {
                Hit::Bytes(b) => return Ok(Zeroizing::new(b)),
                // Through a file when large: libgit2's reading of a loose object holds
                // the compressed object meanwhile, which is let go before the copy.
                Hit::Stored => {
                    if let Some(blob) = self.held_blob(id) {
                        return Ok(blob.into_bytes());
                    }
                }
                Hit::Miss => {}
            }
        }
        // Tagged now, so that the plaintext is not held beside its encryption.
        let tag = self.seen.as_ref().map(|s| s.tagger.begin(path, &content));
        let out = self.clean_anew(path, format, content, committed)?;
        if let (Some(seen), Some(tag)) = (&mut self.seen, tag) {
            seen.record(path, tag.entry(&out));
        }
        Ok(out)
    }

    /// An encrypted file handed to clean passes as it is only when everything the rules
    /// encrypt is encrypted and its metadata is what the creation rules say; otherwise its
    /// plaintext is encrypted anew by the rules, which needs a key that opens it.
    fn clean_encrypted(
        &mut self,
        path: &str,
        format: Format,
        content: Zeroizing<Vec<u8>>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        if is_conflict(&content) {
            return Ok(content);
        }
        let committed = self.committed_id(path);
        let (doc, meta, _) = sops::read_metadata(path, format, content.clone())?;
        let clear = sops::clear_parts(path, &doc, &meta)?;
        // A rule coffer cannot use is reported where a new file needs it, not here.
        let drift = match self.rule_for(path) {
            Ok(Some(rule)) => crate::rekey::drift(&meta, &rule).unwrap_or_default(),
            _ => crate::rekey::Drift::default(),
        };
        if clear.is_empty() && drift.is_empty() {
            return Ok(content);
        }
        let why = if clear.is_empty() {
            format!(
                "its metadata differs from the creation rules ({})",
                drift.describe()
            )
        } else {
            format!(
                "what the rules encrypt stands in clear ({})",
                clear.describe()
            )
        };
        match sops::open_repairing(path, format, content.clone(), &self.keyring) {
            Ok(opened) => {
                let plain = opened.render()?.bytes;
                self.notes
                    .push(format!("{path}: {why}; encrypted anew as the creation rules say"));
                self.clean_anew(path, format, plain, committed)
            }
            // What git stores already (a working tree left encrypted without a key) is
            // not this clean's doing: `git check` reports it.
            Err(Error::NoKey { .. })
                if committed
                    .and_then(|id| self.blob(id))
                    .is_some_and(|b| b == *content) =>
            {
                Ok(content)
            }
            Err(Error::NoKey { .. }) => Err(Error::Refused(format!(
                "{path}: {why}, and no key here opens it to encrypt it as the creation rules say; stage it from a clone with a key, or encrypt its plaintext anew with `coffer encrypt`"
            ))),
            Err(e) => Err(e),
        }
    }

    fn clean_anew(
        &mut self,
        path: &str,
        format: Format,
        content: Zeroizing<Vec<u8>>,
        committed: Option<git2::Oid>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        // The committed version first: a large one goes to a file before the plaintext's
        // document is made.
        let mut blob = committed.and_then(|id| self.held_blob(id));
        if blob
            .as_mut()
            .is_some_and(|b| !b.with(crate::format::mentions_sops))
        {
            blob = None;
        }
        let plain = sops::parse(path, format, content)?;
        // The document is let go (in `version_of`) before the answer is read into memory.
        let made = self.version_of(path, format, blob, plain, committed)?;
        made.into_bytes()
    }

    /// The version clean answers with for `plain`, given the committed `blob`;
    /// `plain` is let go when the answer is made.
    fn version_of(
        &mut self,
        path: &str,
        format: Format,
        blob: Option<Blob>,
        plain: Document,
        committed: Option<git2::Oid>,
    ) -> Result<Made> {
        let mut plain = plain;
        if let Some(blob) = blob {
            let against = match self.walked(path, format, blob, &plain) {
                // A text the walk cannot tell: its plaintext's document is let go while
                // the committed version is opened whole, and made again for a new one.
                Ok(Err(blob)) if format.store().payload(&plain).is_none() => {
                    let text = Zeroizing::new(std::mem::take(&mut *plain.text).into_bytes());
                    drop(plain);
                    let against = self.opened(path, format, blob, &text, committed);
                    if let Ok(Against::Same(blob)) = against {
                        return Ok(Made::Committed(blob));
                    }
                    plain = sops::parse(path, format, text)?;
                    against
                }
                Ok(Err(blob)) => {
                    self.opened(path, format, blob, plaintext_of(format, &plain), committed)
                }
                Ok(Ok(against)) => Ok(against),
                Err(e) => Err(e),
            };
            match against {
                Ok(Against::Same(blob)) => return Ok(Made::Committed(blob)),
                Ok(Against::Changed(keyed)) => {
                    return self.changed(path, format, plain, &keyed, committed)
                }
                // Without the private key the public recipients still encrypt a new
                // version, under a new data key. So does a staged version that does not
                // open (`git add -p` of half its hunks): staging the whole file repairs it.
                Err(
                    Error::NoKey { .. }
                    | Error::MacMismatch { .. }
                    | Error::MacMissing { .. }
                    | Error::Value { .. },
                ) => {
                    // A new data key, for the rules' keys and settings where a rule
                    // matches, else for the committed version's keys.
                    if let Ok((recipients, Some(rule))) = self.recipients_for_new(path) {
                        return self.encrypt_new(path, format, plain, &recipients, Some(&rule));
                    }
                    let blob = committed.and_then(|id| self.blob(id)).unwrap_or_default();
                    let (_, meta, _) = sops::read_metadata(path, format, blob)?;
                    if Recipients::of(&meta).is_empty() {
                        return Err(Error::Refused(format!(
                            "{path}: cannot re-encrypt without a key that opens the committed version"
                        )));
                    }
                    let recipients = Recipients::of(&meta);
                    return self.encrypt_new(path, format, plain, &recipients, None);
                }
                // The committed version is plaintext (from before setup): a new file.
                Err(Error::NotEncrypted { .. } | Error::Syntax { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let (recipients, rule) = self.recipients_for_new(path)?;
        self.encrypt_new(path, format, plain, &recipients, rule.as_ref())
    }

    /// What the committed version `blob` says of the plaintext `plain`: told by walking
    /// the blob where it can be (held once, no document of it), else by opening it;
    /// either way it is let go before anything is encrypted.
    fn against(
        &self,
        path: &str,
        format: Format,
        blob: Blob,
        plain: &Document,
        committed: Option<git2::Oid>,
    ) -> Result<Against> {
        match self.walked(path, format, blob, plain)? {
            Ok(against) => Ok(against),
            Err(blob) => self.opened(path, format, blob, plaintext_of(format, plain), committed),
        }
    }

    /// [`Filter::against`] by walking the blob: the blob given back when the walk
    /// cannot tell.
    fn walked(
        &self,
        path: &str,
        format: Format,
        mut blob: Blob,
        plain: &Document,
    ) -> Result<std::result::Result<Against, Blob>> {
        Ok(
            match blob.with(|b| sops::compare(path, format, b, &self.keyring, plain))? {
                sops::Compared::Same => Ok(Against::Same(blob)),
                sops::Compared::Differs(keyed) => Ok(Against::Changed(keyed)),
                sops::Compared::Unknown => Err(blob),
            },
        )
    }

    /// [`Filter::against`] by opening the blob whole, against the bytes `plaintext`.
    fn opened(
        &self,
        path: &str,
        format: Format,
        blob: Blob,
        plaintext: &[u8],
        committed: Option<git2::Oid>,
    ) -> Result<Against> {
        let blob = blob.into_bytes();
        let blob_len = blob.len();
        let opened = sops::open(path, format, blob, &self.keyring, OpenOptions::default())?;
        if !opened.holds(plaintext)? {
            return Ok(Against::Changed(Box::new(opened.keyed())));
        }
        // The blob's own bytes, as every reader keeps them; were they not, the blob is
        // read again.
        opened
            .into_text(blob_len)
            .or_else(|| committed.and_then(|id| self.blob(id)).map(Zeroizing::new))
            .map(|b| Against::Same(Blob::Bytes(b)))
            .ok_or_else(|| {
                Error::Refused(format!(
                    "{path}: the committed version cannot be read again"
                ))
            })
    }

    /// A new version of a committed file (`known`, which holds another plaintext):
    /// under its data key and master keys, or as the creation rules say where those
    /// differ from what was committed.
    fn changed(
        &mut self,
        path: &str,
        format: Format,
        plain: Document,
        keyed: &sops::Keyed,
        known: Option<git2::Oid>,
    ) -> Result<Made> {
        // The rules are the truth, not the metadata committed last.
        if let Ok(Some(rule)) = self.rule_for(path) {
            // A rule whose keys do not parse is reported where it is used.
            let drift = crate::rekey::drift(&keyed.meta, &rule).unwrap_or_default();
            if !drift.is_empty() {
                self.notes.push(format!(
                    "{path}: encrypted as the creation rules say, not as committed ({})",
                    drift.describe()
                ));
                let keyed = crate::rekey::to_rule(keyed, &rule, &drift, &self.wrappers)?;
                return self.encrypted(&keyed, plain);
            }
        }
        // git may be comparing against a version it holds in memory (mid rebase, merge
        // or cherry-pick): if the plaintext is one of those, that blob is the answer,
        // byte for byte.
        if let Some(found) = self.matching_version(path, format, &plain, known) {
            return Ok(Made::Committed(found));
        }
        self.encrypted(keyed, plain)
    }

    /// `plain` encrypted under `keyed`'s data key and master keys. A large text's
    /// output, five times its size, is written into a file, not held beside its
    /// document (which is given, to be let go where the canonical layout replaces it).
    fn encrypted(&mut self, keyed: &sops::Keyed, plain: Document) -> Result<Made> {
        if sops::worth_a_file(keyed.format, plain.text.len()) {
            if let Some(file) = self.staging() {
                self.accept_layout(keyed.encrypt_into(plain, &file)?)?;
                return Ok(Made::Staged(file));
            }
        }
        self.accept(keyed.encrypt(&plain)?).map(Made::Bytes)
    }

    /// Recipients for a file that has no encrypted version yet: the environment's, else
    /// the creation rule's.
    /// The creation rule for `path` (relative to the working tree).
    pub fn rule_for(&self, path: &str) -> Result<Option<CreationRule>> {
        self.rules.borrow_mut().rule_for(&self.workdir.join(path))
    }

    pub fn recipients_for_new(&self, path: &str) -> Result<(Recipients, Option<CreationRule>)> {
        let rule = self.rule_for(path)?;
        let recipients = if self.env_recipients.is_empty() {
            rule.as_ref()
                .map(CreationRule::recipients)
                .transpose()?
                .unwrap_or_default()
        } else {
            self.env_recipients.clone()
        };
        if recipients.is_empty() {
            return Err(Error::NoRecipients {
                file: path.to_string(),
            });
        }
        Ok((recipients, rule))
    }

    /// Metadata for a new data key, wrapped for `recipients`.
    pub fn new_metadata(
        &self,
        key: &DataKey,
        recipients: &Recipients,
    ) -> Result<crate::metadata::Metadata> {
        sops::new_metadata(key, recipients, &self.wrappers, None, None)
    }

    /// `plain` encrypted under a new data key for `recipients`.
    fn encrypt_new(
        &mut self,
        path: &str,
        format: Format,
        plain: Document,
        recipients: &Recipients,
        rule: Option<&CreationRule>,
    ) -> Result<Made> {
        let key = DataKey::generate();
        let meta = sops::new_metadata(&key, recipients, &self.wrappers, rule, None)?;
        let keyed = sops::Keyed {
            file: path.to_string(),
            format,
            meta,
            key,
            rewrite_future: false,
        };
        let made = self.encrypted(&keyed, plain)?;
        // The next checkout opens it without unwrapping.
        if let Some(cache) = &self.key_cache {
            cache.put(&keyed.meta, &keyed.key);
        }
        Ok(made)
    }

    /// The bytes of checked output; a layout warning is kept for the report.
    pub fn accept(&mut self, sealed: Sealed) -> Result<Zeroizing<Vec<u8>>> {
        self.accept_layout(sealed.fallback)?;
        Ok(sealed.bytes)
    }

    /// An output whose layout fell back (`fallback`, see [`Sealed::fallback`]):
    /// refused under `--strict-layout`, else kept for the report.
    fn accept_layout(&mut self, fallback: Option<String>) -> Result<()> {
        let note = self.layout.allows(fallback)?;
        self.notes.extend(note);
        Ok(())
    }

    pub fn smudge(&mut self, path: &str, content: Vec<u8>) -> Result<Zeroizing<Vec<u8>>> {
        let done = self.smudger().smudge(path, content);
        self.take(path, done)
    }

    /// What smudge needs, shareable with threads: checkouts smudge files in parallel.
    pub fn smudger(&self) -> Smudger {
        Smudger {
            keyring: self.keyring.clone(),
            layout: self.layout,
            keep_ciphertext: self.keep_ciphertext,
            tagger: self.seen.as_ref().map(|s| s.tagger.clone()),
        }
    }

    /// Take a smudge's result, keeping what it has to report.
    pub fn take(&mut self, path: &str, done: Smudged) -> Result<Zeroizing<Vec<u8>>> {
        self.notes.extend(done.note);
        if let (Some(seen), Some(entry)) = (&mut self.seen, done.seen) {
            seen.record(path, entry);
        }
        match done.state {
            SmudgeState::Decrypted => {}
            SmudgeState::NoKey => self.locked.push(path.to_string()),
            SmudgeState::Kept => self.kept += 1,
        }
        done.result
    }

    /// One line for everything that stayed encrypted, or nothing.
    pub fn locked_warning(&self) -> Option<String> {
        if self.locked.is_empty() {
            return None;
        }
        let shown: Vec<&str> = self.locked.iter().take(10).map(String::as_str).collect();
        let more = self.locked.len().saturating_sub(shown.len());
        Some(format!(
            "no key opens {} file(s), left encrypted in the working tree: {}{}; run `coffer git unlock` once you have a key",
            self.locked.len(),
            shown.join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() }
        ))
    }
}

/// Smudge without the filter's git state, so it can run on any thread.
pub struct Smudger {
    keyring: std::sync::Arc<Keyring>,
    layout: Layout,
    keep_ciphertext: bool,
    tagger: Option<Tagger>,
}

/// What happened to one file.
pub enum SmudgeState {
    Decrypted,
    /// No key here opens it: left encrypted.
    NoKey,
    /// Kept encrypted on purpose (`git archive`).
    Kept,
}

/// A smudge's result and what it has to report.
pub struct Smudged {
    pub result: Result<Zeroizing<Vec<u8>>>,
    pub note: Option<String>,
    pub state: SmudgeState,
    /// The blob and the tag of its plaintext, for the record of seen plaintext.
    pub seen: Option<super::seen::Entry>,
}

impl Smudger {
    pub fn smudge(&self, path: &str, content: Vec<u8>) -> Smudged {
        let done = |result, state| Smudged {
            result,
            note: None,
            state,
            seen: None,
        };
        let mut content = Zeroizing::new(content);
        let mut format = Format::from_path(Path::new(path));
        if is_conflict(&content) {
            format = Format::Binary;
        }
        if content.is_empty() || !crate::format::mentions_sops(&content) {
            return done(Ok(content), SmudgeState::Decrypted);
        }
        if self.keep_ciphertext {
            return done(Ok(content), SmudgeState::Kept);
        }
        match sops::open(
            path,
            format,
            content.to_vec(),
            &self.keyring,
            OpenOptions::default(),
        ) {
            Ok(opened) => match opened
                .into_output(format)
                .and_then(|s| s.accept(self.layout))
            {
                Ok((bytes, note)) => {
                    // The blob is not needed again: the record takes its bytes.
                    let seen = self.tagger.as_ref().map(|t| {
                        t.begin(path, &bytes)
                            .entry_taking(std::mem::take(&mut *content))
                    });
                    Smudged {
                        seen,
                        result: Ok(bytes),
                        note,
                        state: SmudgeState::Decrypted,
                    }
                }
                Err(e) => passed(path, content, e),
            },
            // Not a sops file after all: it is stored as it is.
            Err(Error::NotEncrypted { .. } | Error::Syntax { .. }) => {
                done(Ok(content), SmudgeState::Decrypted)
            }
            // Checkout must not fail for want of a key: leave the ciphertext in place
            // (also where the entry for a key here was altered; `git check` names it).
            Err(Error::NoKey { .. } | Error::EntryAltered { .. }) => {
                done(Ok(content), SmudgeState::NoKey)
            }
            Err(e) => passed(path, content, e),
        }
    }
}

/// A smudge that fails (a blob that does not open: half of `git stash -p`, say) leaves
/// the blob in the working tree as it is stored, never an empty or cut file, and says
/// how to get at what it holds.
fn passed(path: &str, content: Zeroizing<Vec<u8>>, e: Error) -> Smudged {
    Smudged {
        result: Ok(content),
        note: Some(format!(
            "{e}; {path} is left as git stores it (encrypted): `coffer decrypt --ignore-mac {path}` shows what is readable"
        )),
        state: SmudgeState::Decrypted,
        seen: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter_in(dir: &Path) -> Filter {
        Filter::new(
            Keyring::new(Vec::new()),
            crate::keys::Wrappers::age_only(),
            dir.to_path_buf(),
            None,
            Recipients::default(),
        )
    }

    /// Stage `text` as `a.yaml` from another handle on the repository, as another git
    /// process would (a new index renamed over the old); the blob's id.
    fn stage(dir: &Path, text: &str) -> git2::Oid {
        std::fs::write(dir.join("a.yaml"), text).unwrap();
        let repo = git2::Repository::open(dir).unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(Path::new("a.yaml")).unwrap();
        index.write().unwrap();
        index.get_path(Path::new("a.yaml"), 0).unwrap().id
    }

    /// One git command may rewrite the index while the filter serves it (each step of a
    /// rebase does): the committed version is the index's as it is at each request.
    #[test]
    fn the_committed_version_follows_the_index_as_it_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        git2::Repository::init(dir.path()).unwrap();
        let first = stage(dir.path(), "a: 1\n");
        let filter = filter_in(dir.path());
        assert_eq!(filter.committed_id("a.yaml"), Some(first));
        let second = stage(dir.path(), "a: 2\n");
        assert_ne!(first, second);
        assert_eq!(filter.committed_id("a.yaml"), Some(second));
        assert_eq!(filter.committed_id("b.yaml"), None);
    }
}
