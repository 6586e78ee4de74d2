//! The operations: encrypt a plaintext file, open (decrypt and verify) an encrypted one,
//! and write it back as plaintext, in another format, or re-encrypted after a change.

use std::ops::Range;

use zeroize::Zeroizing;

use crate::cipher::{self, DataKey, MacBuilder};
use crate::format::{Format, Store, WriteError};
use crate::keys::Keyring;
use crate::metadata::{self, MetaError, Metadata};
use crate::path::{self, Step};
use crate::scalar;
use crate::tree::{splice, splice_checked, Document, Key, Leaf, LeafKind, Node, ScalarType, Value};
use crate::{Error, Result};

mod encrypt;
mod keyed;
mod open;
mod opened;
pub mod stream;
pub mod verify;

pub use encrypt::*;
pub use keyed::*;
pub use open::*;
pub use opened::*;

#[cfg(test)]
mod tests;

pub use crate::format::parse;

/// A decrypted value, and whether it was stored encrypted.
pub struct Plain {
    pub ty: ScalarType,
    pub bytes: Zeroizing<Vec<u8>>,
    pub encrypted: bool,
}

/// Bytes ready to be written, checked by reading them back. `fallback` says what layout
/// could not be kept when the bytes are in the canonical layout instead (a warning for
/// the user, or a refusal under `--strict-layout`).
pub struct Sealed {
    pub bytes: Zeroizing<Vec<u8>>,
    pub fallback: Option<String>,
}

/// Whether output may fall back to the canonical layout when its own does not read back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// Keep the data: canonical layout, with a warning.
    #[default]
    Fallback,
    /// Exact bytes or nothing (`--strict-layout`).
    Strict,
}

impl Sealed {
    /// The bytes to write under `layout`, and the warning to show, if any.
    pub fn accept(self, layout: Layout) -> Result<(Zeroizing<Vec<u8>>, Option<String>)> {
        Ok((self.bytes, layout.allows(self.fallback)?))
    }
}

impl Layout {
    /// The warning to show for an output whose layout fell back (`fallback`, as
    /// [`Sealed::fallback`]), or the refusal when this layout does not allow that.
    pub fn allows(self, fallback: Option<String>) -> Result<Option<String>> {
        match (fallback, self) {
            (Some(note), Layout::Strict) => Err(Error::LayoutRefused { note }),
            (note, _) => Ok(note),
        }
    }
}

/// `f` over `items`, results in order: on every core when there are enough items to pay
/// for the threads (a value costs about a microsecond, a thread some tens).
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    const PER_THREAD: usize = 512;
    let threads = match items.len() / PER_THREAD {
        0 | 1 => 1,
        most => std::thread::available_parallelism().map_or(1, |n| n.get().min(most)),
    };
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let others: Vec<_> = items
            .chunks(chunk)
            .skip(1)
            .map(|part| s.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        let mut out: Vec<R> = Vec::with_capacity(items.len());
        out.extend(items[..chunk].iter().map(f));
        for other in others {
            out.extend(
                other
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        out
    })
}

/// Document order: values and comments sorted by where they stand.
fn order(doc: &Document) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..doc.leaves.len()).collect();
    idx.sort_by_key(|&i| doc.leaves[i].span().start);
    idx
}

/// A comment leaf's text, for the comment-regex rules; `None` for a value.
fn comment_text<'a>(leaf: &'a Leaf, text: &'a str) -> Option<&'a str> {
    (leaf.kind == LeafKind::Comment).then(|| leaf.value_str(text).unwrap_or_default())
}

/// An encrypted file, opened: its data key, metadata and decrypted values.
pub struct Opened {
    pub file: String,
    pub format: Format,
    pub doc: Document,
    pub meta: Metadata,
    pub(crate) key: DataKey,
    /// One entry per leaf of `doc`; `None` for nulls and comments left as they were.
    pub values: Vec<Option<Plain>>,
    /// Things the user should hear about on stderr (never a secret).
    pub warnings: Vec<String>,
    /// Comments the rules encrypt that stand in clear (typed in after encryption).
    pub clear_comments: Vec<usize>,
    /// The checked plaintext, once [`Opened::render`] has made it: edit, set and the git
    /// filter ask for it again to see whether anything changed.
    rendered: std::cell::OnceCell<(Zeroizing<Vec<u8>>, Option<String>)>,
    /// A file of a sops major version coffer does not know may be written (as 3.x): the
    /// user said so (`--force`).
    pub rewrite_future: bool,
}

fn display_path(p: &[Key]) -> String {
    path::display(
        &p.iter()
            .map(|k| Step::Key(k.to_string()))
            .collect::<Vec<_>>(),
    )
}
