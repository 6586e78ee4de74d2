//! An output written through memory into a file, and read back from there: a large
//! encryption's output (five times its source, a million values' ciphertexts) is then
//! not held in memory beside the document it is made from. The pages written and read
//! are given back to the file as the work goes on, so the process holds only the few it
//! is at.
//!
//! The file must be one no other process writes: an unnamed file of this process's own
//! (`tempfile::tempfile_in`), which a process that cannot be dumped keeps from others of
//! its user. Its length is set before it is mapped and never changed while it is.

use std::fs::File;
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustix::mm::{madvise, mmap, munmap, Advice, MapFlags, ProtFlags};

/// A file's bytes, mapped to be written and read.
pub struct Mapped {
    ptr: NonNull<u8>,
    len: usize,
}

// The mapping is memory like any other, owned by this value: handed to another thread
// with it, or shared read-only, as a `Vec<u8>` is.
#[allow(unsafe_code)]
unsafe impl Send for Mapped {}
#[allow(unsafe_code)]
unsafe impl Sync for Mapped {}

/// How often the pages are given back while a caller works through them: the pages a
/// core writes or reads in that time are what the process holds of them at the most.
const GIVE_BACK_EVERY: Duration = Duration::from_millis(2);

impl Mapped {
    /// `file`, made `len` bytes long (zeros, its blocks taken now) and mapped. `len`
    /// must not be 0. A file system that cannot take the blocks says so here (full, over
    /// quota, or not able to): written through a mapping, a block it could not find would
    /// end the process with SIGBUS instead.
    pub fn new(file: &File, len: usize) -> io::Result<Mapped> {
        if len == 0 {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        file.set_len(0)?;
        rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), 0, len as u64)?;
        // A fresh shared mapping of a file only this process writes, `len` bytes long
        // from offset 0, the length already set; unmapped once, in `drop`.
        #[allow(unsafe_code)]
        let ptr = unsafe {
            mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                file,
                0,
            )?
        };
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or(io::ErrorKind::OutOfMemory)?;
        Ok(Mapped { ptr, len })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn bytes(&self) -> &[u8] {
        // `len` bytes mapped, readable, for as long as `self` lives.
        #[allow(unsafe_code)]
        unsafe {
            std::slice::from_raw_parts(self.ptr.as_ptr(), self.len)
        }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // `len` bytes mapped, writable, borrowed through `self` alone.
        #[allow(unsafe_code)]
        unsafe {
            std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len)
        }
    }

    /// `work` on the bytes, the pages given back to the file every few milliseconds
    /// meanwhile: written or not, what they hold stays in the file (the mapping is
    /// shared), and a page touched again is found there. Giving them back on a clock
    /// rather than behind each reader spares every scan (UTF-8, the readers' looks
    /// ahead, the walk) a say in it; a page touched again costs a fault, not a read.
    pub fn given_back_while<R>(&mut self, work: impl FnOnce(&mut [u8]) -> R) -> R {
        let (addr, len) = (self.ptr.as_ptr() as usize, self.len);
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            // Without a thread to spare, the pages are held until the work is done.
            let janitor = std::thread::Builder::new().spawn_scoped(s, || {
                while !done.load(Ordering::Relaxed) {
                    std::thread::park_timeout(GIVE_BACK_EVERY);
                    give_back(addr, len);
                }
            });
            let out = work(self.bytes_mut());
            done.store(true, Ordering::Relaxed);
            if let Ok(janitor) = janitor {
                janitor.thread().unpark();
            }
            out
        })
    }
}

/// Drop the pages of the mapping at `addr` from the process: a shared file mapping's
/// pages stay in the file, dirty ones too, and come back on the next touch.
fn give_back(addr: usize, len: usize) {
    // The whole of a live mapping (the janitor ends before `Mapped` can drop); what
    // it holds is unchanged by this, only where it is kept.
    #[allow(unsafe_code)]
    let _ = unsafe { madvise(addr as *mut std::ffi::c_void, len, Advice::LinuxDontNeed) };
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // Mapped in `new`, `len` bytes, unmapped only here; no borrow outlives `self`.
        #[allow(unsafe_code)]
        let _ = unsafe { munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek};

    /// What is written through the mapping is the file's, pages given back or not, and
    /// reads back the same through it.
    #[test]
    fn written_bytes_are_the_files_after_their_pages_are_given_back() {
        let mut file = tempfile::tempfile().expect("file");
        let len = 3 * (1 << 20) + 5;
        let mut m = Mapped::new(&file, len).expect("mapped");
        let byte = |i: usize| (i * 7 % 251) as u8;
        m.given_back_while(|b| {
            for (i, x) in b.iter_mut().enumerate() {
                *x = byte(i);
                if i % (1 << 20) == 0 {
                    // Written pages given back mid-way keep what was written.
                    std::thread::sleep(2 * GIVE_BACK_EVERY);
                }
            }
        });
        give_back(m.ptr.as_ptr() as usize, m.len);
        assert!(m.bytes().iter().enumerate().all(|(i, &x)| x == byte(i)));
        drop(m);
        let mut read = Vec::new();
        file.rewind().expect("rewound");
        file.read_to_end(&mut read).expect("read");
        assert_eq!(read.len(), len);
        assert!(read.iter().enumerate().all(|(i, &x)| x == byte(i)));
    }

    #[test]
    fn nothing_is_mapped_for_nothing() {
        let file = tempfile::tempfile().expect("file");
        assert!(Mapped::new(&file, 0).is_err());
    }
}
