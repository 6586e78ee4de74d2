//! File writes that never leave a half-written file behind, and never leave plaintext
//! behind when the process is ended by a signal.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::{Error, Result};

/// Temporary files and private directories that hold (or may hold) plaintext, so that a
/// signal handler can remove them. Each is registered before it is created.
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn remove(p: &Path) {
    if fs::remove_file(p).is_err() {
        let _ = fs::remove_dir_all(p);
    }
}

/// Remove every path of the list, emptying it.
fn remove_all(pending: &mut Vec<PathBuf>) {
    for p in pending.drain(..) {
        remove(&p);
    }
}

/// Remove every temporary file and private directory in use. For signal handlers that
/// let the command go on (its own action decides what happens next).
pub fn remove_pending() {
    if let Ok(mut pending) = PENDING.lock() {
        remove_all(&mut pending);
    }
}

/// [`remove_pending_and_exit`] when memory has run out: without waiting for the list
/// should this thread hold it (it may have run out growing it); a file registered
/// meanwhile may be left.
pub fn remove_pending_now_and_exit(code: i32) -> ! {
    use std::sync::TryLockError;
    for _ in 0..1000 {
        let mut pending = match PENDING.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => {
                std::thread::yield_now();
                continue;
            }
        };
        remove_all(&mut pending);
        std::process::exit(code)
    }
    std::process::exit(code)
}

/// Remove them all and end the process, holding the list so that no new one can be
/// registered (and created) after the removal.
pub fn remove_pending_and_exit(code: i32) -> ! {
    let guard = PENDING.lock();
    if let Ok(mut pending) = guard {
        remove_all(&mut pending);
        std::process::exit(code)
    }
    std::process::exit(code)
}

fn pending(path: &Path, add: bool) {
    if let Ok(mut p) = PENDING.lock() {
        if add {
            p.push(path.to_path_buf());
        } else {
            p.retain(|x| x != path);
        }
    }
}

/// A private directory (0700) for plaintext, removed when dropped and on signals. It is
/// registered before it is made and forgotten only once removed, so a signal at any
/// moment finds it.
pub struct PrivateDir(Option<PathBuf>);

impl PrivateDir {
    pub fn new(prefix: &str) -> Result<PrivateDir> {
        use std::os::unix::fs::DirBuilderExt;
        let tmp = std::env::temp_dir();
        loop {
            let path = tmp.join(format!("{prefix}{}", random_word(10)));
            pending(&path, true);
            match fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(PrivateDir(Some(path))),
                Err(e) => {
                    pending(&path, false);
                    if e.kind() != std::io::ErrorKind::AlreadyExists {
                        return Err(Error::io(tmp, e));
                    }
                }
            }
        }
    }

    pub fn path(&self) -> &Path {
        self.0.as_deref().expect("present until dropped or kept")
    }

    /// Keep the directory (an edit that could not be rescued stays there).
    pub fn keep(mut self) -> PathBuf {
        let dir = self.0.take().expect("present until dropped or kept");
        pending(&dir, false);
        dir
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = fs::remove_dir_all(&dir);
            pending(&dir, false);
        }
    }
}

/// Whether a write replaces the file the user named (`-i`, set, edit), or creates an
/// output (`-o`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Through a symlink to its target; the file keeps its mode, owner and group.
    InPlace,
    /// A new file, or one replaced as it is: a symlink is replaced, not followed, and
    /// nothing is given to another owner.
    Output,
}

/// The file a path names once symlinks are followed (it may not exist yet).
fn resolve(path: &Path) -> Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = fs::read_link(&p).map_err(|e| Error::io(&p, e))?;
                p = match p.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(Error::io(
        path,
        std::io::Error::other("too many levels of symbolic links"),
    ))
}

/// The process umask, as the kernel reports it (no set-and-restore race).
fn umask() -> u32 {
    let from_proc = fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
    });
    from_proc.unwrap_or_else(|| {
        use rustix::fs::Mode;
        let old = rustix::process::umask(Mode::from_raw_mode(0o077));
        rustix::process::umask(old);
        old.as_raw_mode()
    })
}

/// `n` random letters and digits, for names no one else uses.
fn random_word(n: usize) -> String {
    use aes_gcm::aead::rand_core::RngCore;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut raw = vec![0u8; n];
    aes_gcm::aead::OsRng.fill_bytes(&mut raw);
    raw.iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// A name for a temporary file beside `path`, not in use.
fn temp_name(dir: &Path) -> PathBuf {
    dir.join(format!(".coffer-{}.tmp", random_word(12)))
}

/// Write `data` to a temp file beside the target, then rename it over the target, so a
/// failure or a signal leaves the old file or the new one. An in-place write keeps the
/// replaced file's mode, owner and group (or writes nothing); a new file gets
/// `new_mode` less the umask; `force_mode` overrides both (plaintext is always 0600).
pub fn write_atomic(
    path: &Path,
    data: &[u8],
    new_mode: u32,
    force_mode: Option<u32>,
    target: Target,
) -> Result<()> {
    write_atomic_from(
        path,
        &mut Content::Bytes(data),
        new_mode,
        force_mode,
        target,
    )
}

/// What a write puts in the file: bytes in memory, or a file already written and
/// checked (a streamed binary file), copied from its start each time it is asked for.
pub enum Content<'a> {
    Bytes(&'a [u8]),
    File(&'a mut fs::File),
}

impl Content<'_> {
    /// Whether it reads as UTF-8 text (a file: judged by its first 64 KiB).
    pub fn is_utf8(&mut self) -> bool {
        match self {
            Content::Bytes(b) => std::str::from_utf8(b).is_ok(),
            Content::File(f) => {
                use std::io::{Read, Seek};
                let mut head = zeroize::Zeroizing::new(Vec::new());
                let read = f
                    .seek(std::io::SeekFrom::Start(0))
                    .and_then(|_| f.take(64 << 10).read_to_end(&mut head));
                // A character cut at the end of the sample is no reason to call it binary.
                read.is_ok()
                    && std::str::from_utf8(&head).map_or_else(|e| e.error_len().is_none(), |_| true)
            }
        }
    }

    pub fn write_to(&mut self, w: &mut dyn Write) -> std::io::Result<()> {
        match self {
            Content::Bytes(b) => w.write_all(b),
            Content::File(f) => {
                use std::io::Seek;
                f.seek(std::io::SeekFrom::Start(0))?;
                std::io::copy(f, w).map(drop)
            }
        }
    }
}

/// [`write_atomic`] of any [`Content`].
pub fn write_atomic_from(
    path: &Path,
    data: &mut Content<'_>,
    new_mode: u32,
    force_mode: Option<u32>,
    target: Target,
) -> Result<()> {
    // A FIFO, a device, `/dev/stdout` or `/dev/fd/N` (or a link to one) is written
    // through, as sops writes it: replacing it would put the data in a new regular file
    // nobody reads, and take the device or pipe away.
    if target == Target::Output {
        if let Ok(m) = fs::metadata(path) {
            if !m.is_file() && !m.is_dir() {
                let io = |e| Error::io(path, e);
                let mut f = fs::OpenOptions::new().write(true).open(path).map_err(io)?;
                return data.write_to(&mut f).and_then(|()| f.flush()).map_err(io);
            }
        }
    }
    let path = &match target {
        Target::InPlace => resolve(path)?,
        Target::Output => path.to_path_buf(),
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let existing = match target {
        Target::InPlace => fs::metadata(path).ok(),
        Target::Output => fs::symlink_metadata(path).ok().filter(|m| m.is_file()),
    };
    let mode = force_mode.unwrap_or_else(|| match &existing {
        Some(m) => m.permissions().mode() & 0o7777,
        None => new_mode & !umask(),
    });
    let io = |e| Error::io(path, e);
    let tmp = temp_name(dir);
    // Registered before it exists: a signal at any point finds it on the list.
    pending(&tmp, true);
    let result = (|| {
        // Created 0600, so plaintext is never readable by others mid-write.
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        data.write_to(&mut f).map_err(io)?;
        if let (Target::InPlace, Some(m)) = (target, &existing) {
            let made = f.metadata().map_err(io)?;
            if (m.uid(), m.gid()) != (made.uid(), made.gid()) {
                std::os::unix::fs::fchown(&f, Some(m.uid()), Some(m.gid())).map_err(|e| {
                    let why = format!(
                        "cannot keep the file's owner and group ({e}); nothing was written"
                    );
                    Error::io(path, std::io::Error::new(e.kind(), why))
                })?;
            }
        }
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(io)?;
        f.sync_all().map_err(io)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        pending(&tmp, false);
        return result;
    }
    // A file with other hard links is written through its inode, as sops writes it: a
    // rename would leave the old content under the other names. The copy beside stays
    // until the write through is done, so a cut write loses nothing.
    let linked = matches!((target, &existing), (Target::InPlace, Some(m)) if m.nlink() > 1);
    if linked {
        pending(&tmp, false);
        let through = fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .and_then(|mut f| data.write_to(&mut f).and_then(|()| f.sync_all()));
        return match through {
            Ok(()) => fs::remove_file(&tmp).map_err(io),
            Err(e) => Err(Error::io(
                path,
                std::io::Error::new(
                    e.kind(),
                    format!("{e}; the whole new content is in {}", tmp.display()),
                ),
            )),
        };
    }
    let result = fs::rename(&tmp, path).map_err(io);
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    pending(&tmp, false);
    result
}

/// The process holding a `flock` on the inode `(dev, ino)`, from `/proc/locks`: its pid
/// and program name (never its arguments, which may hold a value).
fn lock_holder(dev: u64, ino: u64) -> Option<(u32, String)> {
    let id = format!(
        "{:02x}:{:02x}:{ino}",
        rustix::fs::major(dev),
        rustix::fs::minor(dev)
    );
    let locks = fs::read_to_string("/proc/locks").ok()?;
    let pid: u32 = locks.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        // `1: FLOCK  ADVISORY  WRITE 23610 fe:00:10018846 0 EOF`
        (f.get(1) == Some(&"FLOCK") && f.get(5) == Some(&id.as_str()))
            .then(|| f.get(4)?.parse().ok())?
    })?;
    let name = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let name = name.trim();
    Some((
        pid,
        if name.is_empty() {
            "unknown".into()
        } else {
            name.into()
        },
    ))
}

/// The whole of `file`, its room reserved first: a file larger than the memory coffer
/// may take is one line naming it, not an abort. (What is made of it later can still
/// need more; binary files of 4 MiB and more are streamed instead.)
pub fn read_whole(path: &Path, file: &mut fs::File) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    use std::io::Read;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut buf = zeroize::Zeroizing::new(Vec::new());
    let room = usize::try_from(len).unwrap_or(usize::MAX);
    crate::memory::fallible(|| buf.try_reserve_exact(room)).map_err(|_| {
        Error::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::OutOfMemory,
                format!("not enough memory to read it ({len} bytes)"),
            ),
        )
    })?;
    file.read_to_end(&mut buf).map_err(|e| Error::io(path, e))?;
    Ok(buf)
}

/// A file held for a read-modify-write: an advisory lock (`flock`) on the inode its path
/// names, taken before reading and held until the new version is renamed over it, so
/// coffer's writers of one file run one after another and none loses another's edit.
/// A writer that waited finds the path naming a newer inode, and takes that one's lock.
pub struct Held {
    file: fs::File,
    path: PathBuf,
    /// (device, inode, size, mtime) when read: the file must still be it at the rename.
    stamp: (u64, u64, u64, i64, i64),
}

fn stamp(m: &fs::Metadata) -> (u64, u64, u64, i64, i64) {
    (m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec())
}

impl Held {
    /// Lock the file `path` names (through symlinks). After `notice` of waiting, say so
    /// once with `waiting`; after `timeout`, give up.
    pub fn take(
        path: &Path,
        timeout: std::time::Duration,
        notice: std::time::Duration,
        waiting: &dyn Fn(),
    ) -> Result<Held> {
        use rustix::fs::{flock, FlockOperation};
        let target = resolve(path)?;
        let start = std::time::Instant::now();
        let mut said = false;
        loop {
            let file = fs::File::open(&target).map_err(|e| Error::io(path, e))?;
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    let waited = start.elapsed();
                    if waited >= timeout {
                        let by = file
                            .metadata()
                            .ok()
                            .and_then(|m| lock_holder(m.dev(), m.ino()))
                            .map(|(pid, name)| format!(" ({name}, pid {pid})"))
                            .unwrap_or_default();
                        return Err(Error::Refused(format!(
                            "{}: another coffer process{by} has been writing it for {}s; nothing was written (--lock-timeout sets how long to wait)",
                            path.display(),
                            waited.as_secs()
                        )));
                    }
                    if waited >= notice && !said {
                        waiting();
                        said = true;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    continue;
                }
                Err(e) => return Err(Error::io(path, e.into())),
            }
            let held = file.metadata().map_err(|e| Error::io(path, e))?;
            let now = fs::metadata(&target).map_err(|e| Error::io(path, e))?;
            // The writer before renamed a new version in: lock that one.
            if (now.dev(), now.ino()) != (held.dev(), held.ino()) {
                continue;
            }
            return Ok(Held {
                file,
                path: target,
                stamp: stamp(&held),
            });
        }
    }

    /// The file's bytes, read under the lock.
    pub fn read(&mut self) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        use std::io::Seek;
        let io = |e| Error::io(&self.path, e);
        self.file.seek(std::io::SeekFrom::Start(0)).map_err(io)?;
        let buf = read_whole(&self.path, &mut self.file)?;
        self.stamp = stamp(&self.file.metadata().map_err(io)?);
        Ok(buf)
    }

    /// Replace the file with `data` (atomically, keeping mode and owner), if it is still
    /// the one read: a program that ignores the lock may have written it meanwhile.
    pub fn write(self, data: &[u8]) -> Result<()> {
        self.write_mode(data, None)
    }

    /// As `write`, with `force_mode` for plaintext (0600).
    pub fn write_mode(self, data: &[u8], force_mode: Option<u32>) -> Result<()> {
        self.write_from(&mut Content::Bytes(data), force_mode)
    }

    /// [`Held::write_mode`] of any [`Content`].
    pub fn write_from(self, data: &mut Content<'_>, force_mode: Option<u32>) -> Result<()> {
        let now = fs::metadata(&self.path).map_err(|e| Error::io(&self.path, e))?;
        if stamp(&now) != self.stamp {
            return Err(Error::Refused(format!(
                "{}: it changed while coffer was writing it (a program that does not take coffer's lock); nothing was written, run the command again",
                self.path.display()
            )));
        }
        write_atomic_from(&self.path, data, 0o644, force_mode, Target::InPlace)
    }
}

/// Write a new file with `mode`, failing if it exists.
pub fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    f.write_all(data).map_err(|e| Error::io(path, e))?;
    f.sync_all().map_err(|e| Error::io(path, e))
}

/// A new FIFO, readable and writable by the user only.
pub fn make_fifo(path: &Path) -> Result<()> {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .map_err(|e| Error::io(path, e.into()))
}
