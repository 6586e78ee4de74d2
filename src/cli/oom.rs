//! Memory that runs out ends the process with one line, as any error does, and
//! removes what is half-written (see `fsutil`), instead of Rust's abort with its
//! backtrace. Where a caller handles the failure (`coffer::memory::fallible`, around
//! a `try_reserve`), the failure is given back to it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// The system allocator, with the failure above.
pub struct OneLine;

// Stable Rust has no hook for an allocation that fails but the global allocator, and
// `GlobalAlloc` is an unsafe trait: each method passes the caller's contract straight
// on to `System`, adding only a look at the result.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for OneLine {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        checked(unsafe { System.alloc(layout) }, layout.size())
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        checked(unsafe { System.alloc_zeroed(layout) }, layout.size())
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        checked(unsafe { System.realloc(ptr, layout, new_size) }, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn checked(ptr: *mut u8, size: usize) -> *mut u8 {
    if ptr.is_null() && !coffer::memory::is_fallible() {
        out_of_memory(size)
    }
    ptr
}

/// Room set aside when the process starts ([`set_aside`]) and given back when memory
/// runs out, so that removing the half-written files (their paths, a directory's
/// listing) has memory to do it with.
static SET_ASIDE: std::sync::Mutex<Option<Vec<u8>>> = std::sync::Mutex::new(None);

/// Set the room aside (1 MiB, never touched, so it takes no memory until given back).
pub fn set_aside() {
    if let Ok(mut room) = SET_ASIDE.lock() {
        *room = Some(vec![0; 1 << 20]);
    }
}

/// Blocks of 1 MiB or more mapped on their own, and given back whole when freed. glibc
/// starts there, but raises the bar to the size of each mapped block freed (up to 32 MiB),
/// after which blocks that large come from the heap and stay in it once freed: a
/// million-value file's peak held 9 MB more that way. Setting the bar turns that off.
pub fn large_blocks_mapped() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // `mallopt` takes two integers and touches no memory of the caller's.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// One line, formatted straight onto stderr, then the half-written files go. A thread
/// whose memory runs out while another reports it waits for the process to end; one
/// that runs out again while reporting aborts, as Rust would.
fn out_of_memory(size: usize) -> ! {
    thread_local! {
        static REPORTING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    static ONE: AtomicBool = AtomicBool::new(false);
    if REPORTING.with(|r| r.replace(true)) {
        std::process::abort()
    }
    if ONE.swap(true, Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
    if let Ok(mut room) = SET_ASIDE.try_lock() {
        room.take();
    }
    let _ = writeln!(
        std::io::stderr(),
        "coffer: out of memory ({size} more bytes were needed); nothing half-written is left"
    );
    coffer::fsutil::remove_pending_now_and_exit(1)
}
