//! The merge driver (`merge.coffer.driver`): decrypt base, ours and theirs, merge them by
//! key path (`merge_values`; `git merge-file` on the plaintext for files that do not
//! parse), and store the result encrypted under ours' data key.
//!
//! git writes whatever the driver leaves in %A into its object store, conflicts
//! included, so a conflicted result is stored encrypted too: as one binary value under
//! `coffer_conflict`, which smudge turns back into the plaintext with conflict markers
//! in the working tree. Plaintext only ever sits in a private temp dir.

use std::path::Path;
use std::process::Command;

use zeroize::Zeroizing;

use super::filter::{is_encrypted, Filter};
use crate::cipher::DataKey;
use crate::format::{binary, Format};
use crate::keys::Recipients;
use crate::sops::OpenOptions;
use crate::{sops, Error, Result};

/// Returns true for a clean merge.
pub fn merge(
    filter: &mut Filter,
    base: &Path,
    ours: &Path,
    theirs: &Path,
    marker_size: usize,
    path: &str,
) -> Result<bool> {
    let format = Format::from_path(Path::new(path));
    let read = |p: &Path| {
        std::fs::read(p)
            .map(Zeroizing::new)
            .map_err(|e| Error::io(p, e))
    };
    let (base_bytes, ours_bytes, theirs_bytes) = (read(base)?, read(ours)?, read(theirs)?);

    let open = |bytes: &[u8]| {
        sops::open_if_encrypted(
            path,
            format,
            bytes,
            filter.keyring(),
            OpenOptions::default(),
        )
    };
    let ours_opened = open(&ours_bytes)?;
    // Each side's plaintext, and its data key when it is encrypted.
    let plain = |bytes: &Zeroizing<Vec<u8>>| -> Result<(Zeroizing<Vec<u8>>, Option<DataKey>)> {
        match open(bytes)? {
            Some(opened) => {
                let key = opened.key.clone();
                Ok((opened.into_plaintext()?, Some(key)))
            }
            None => Ok((bytes.clone(), None)),
        }
    };
    let (base_plain, base_key) = plain(&base_bytes)?;
    let ours_plain = match &ours_opened {
        Some(o) => o.plaintext()?,
        None => ours_bytes.clone(),
    };
    let (theirs_plain, theirs_key) = plain(&theirs_bytes)?;
    // Theirs rotated the data key since base (a revocation, a leak) while ours kept it:
    // ours' key must not stay.
    let theirs_rotated = match (&base_key, &theirs_key, &ours_opened) {
        (Some(b), Some(t), Some(o)) => b.expose() != t.expose() && b.expose() == o.key.expose(),
        _ => false,
    };
    // The keys of the result: a key either side removed since base stays removed.
    let keys_of = |bytes: &Zeroizing<Vec<u8>>| {
        is_encrypted(format, bytes)
            .then(|| sops::read_metadata(path, format, bytes.to_vec()).ok())
            .flatten()
            .map(|(_, meta, _)| Recipients::of(&meta))
    };
    let (ours_opened, ours_bytes) =
        match (ours_opened, keys_of(&base_bytes), keys_of(&theirs_bytes)) {
            (Some(o), Some(base), Some(theirs)) => {
                match rekeyed(filter, &o, &base, &theirs, theirs_rotated)? {
                    Some((o, bytes)) => (Some(o), bytes),
                    None => (Some(o), ours_bytes),
                }
            }
            (o, _, _) => (o, ours_bytes),
        };

    let (merged, conflicts) = match super::merge_values::merge(
        path,
        format,
        &base_plain,
        &ours_plain,
        &theirs_plain,
        marker_size,
    ) {
        Some(done) => done,
        None => merge_file(path, &base_plain, &ours_plain, &theirs_plain, marker_size)?,
    };

    let result = match (&ours_opened, conflicts) {
        (Some(o), false) => match o.reencrypt(&merged)? {
            None => ours_bytes.clone(),
            Some(new) => filter.accept(new)?,
        },
        (Some(o), true) => {
            let mut md = o.meta.clone();
            md.lastmodified = crate::metadata::now_rfc3339();
            let doc = binary::document_under(binary::CONFLICT_KEY, merged);
            let sealed = sops::encrypt_document(Format::Binary, path, &doc, &o.key, &mut md)?;
            filter.accept(sealed)?
        }
        // Ours was never encrypted (committed before setup): clean decides.
        (None, false) => filter.clean(path, merged.to_vec())?,
        (None, true) => {
            let recipients = if is_encrypted(format, &theirs_bytes) {
                let (_, meta, _) = sops::read_metadata(path, format, theirs_bytes.to_vec())?;
                Recipients::of(&meta)
            } else {
                filter.recipients_for_new(path)?.0
            };
            let key = DataKey::generate();
            let mut md = filter.new_metadata(&key, &recipients)?;
            let doc = binary::document_under(binary::CONFLICT_KEY, merged);
            let sealed = sops::encrypt_document(Format::Binary, path, &doc, &key, &mut md)?;
            filter.accept(sealed)?
        }
    };
    std::fs::write(ours, &*result).map_err(|e| Error::io(ours, e))?;
    Ok(!conflicts)
}

/// Ours, under the keys the merge leaves it: when theirs removed a key or rotated the
/// data key since base, a new data key (ours' may be known to the removed key's holder);
/// when theirs only added keys, ours' data key wrapped for them too.
fn rekeyed(
    filter: &Filter,
    ours: &sops::Opened,
    base: &Recipients,
    theirs: &Recipients,
    theirs_rotated: bool,
) -> Result<Option<(sops::Opened, Zeroizing<Vec<u8>>)>> {
    let current = Recipients::of(&ours.meta);
    let wanted = crate::rekey::merged_keys(base, &current, theirs);
    let mut change = crate::rekey::change(&current, &wanted, crate::rekey::Rotation::OnRemoval);
    change.rotate |= theirs_rotated;
    if change.is_empty() || wanted.is_empty() {
        return Ok(None);
    }
    let sealed = crate::rekey::rekey(ours, &wanted, change.rotate, filter.wrappers())?;
    let (doc, meta, _) = sops::read_metadata(&ours.file, ours.format, sealed.bytes.clone())?;
    let key = filter
        .keyring()
        .data_key(&meta)
        .map_err(|reasons| Error::NoKey {
            file: ours.file.clone(),
            recipients: meta.recipients(),
            reasons,
        })?;
    let opened = sops::open_with_key(
        &ours.file,
        ours.format,
        doc,
        meta,
        key,
        OpenOptions::default(),
    )?;
    Ok(Some((opened, sealed.bytes)))
}

/// Line by line, with `git merge-file`, for files that do not merge by key path.
fn merge_file(
    path: &str,
    base_plain: &[u8],
    ours_plain: &[u8],
    theirs_plain: &[u8],
    marker_size: usize,
) -> Result<(Zeroizing<Vec<u8>>, bool)> {
    // The three sides live in memory-backed files (memfd) that `git merge-file` reads as
    // /dev/fd/N: no plaintext is ever on disk, so not even SIGKILL can leave any behind.
    let side = |name: &str, data: &[u8]| -> Result<(std::os::fd::OwnedFd, String)> {
        use rustix::fs::{memfd_create, MemfdFlags};
        let fd = memfd_create(name, MemfdFlags::empty()).map_err(|e| {
            Error::Git(format!("cannot make a memory file for git merge-file: {e}"))
        })?;
        let mut f = std::fs::File::from(fd);
        std::io::Write::write_all(&mut f, data).map_err(|e| Error::io("<memfd>", e))?;
        let fd = std::os::fd::OwnedFd::from(f);
        let path = format!("/dev/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
        Ok((fd, path))
    };
    let ((_o_fd, o), (_b_fd, b), (_t_fd, t)) = (
        side("ours", ours_plain)?,
        side("base", base_plain)?,
        side("theirs", theirs_plain)?,
    );
    let out = Command::new("git")
        .args(["merge-file", "-p", &format!("--marker-size={marker_size}")])
        .args(["-L", "ours", "-L", "base", "-L", "theirs"])
        .args([&o, &b, &t])
        .output()
        .map_err(|e| Error::Git(format!("cannot run git merge-file: {e}")))?;
    let merged = Zeroizing::new(out.stdout);
    let conflicts = match out.status.code() {
        Some(0) => false,
        Some(n) if n > 0 && n < 128 => true,
        _ => {
            return Err(Error::Git(format!(
                "{path}: git merge-file failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    };

    Ok((merged, conflicts))
}
