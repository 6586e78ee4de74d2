//! Allocations a caller can do without. The binary's allocator ends the process with
//! one line when memory runs out (see `cli/oom.rs`); inside [`fallible`] it gives the
//! failure back instead, for the `try_reserve` that asked.

use std::cell::Cell;

thread_local! {
    static FALLIBLE: Cell<bool> = const { Cell::new(false) };
}

/// Run `f`, whose allocations may fail and be handled (`try_reserve`): a failure
/// reaches it rather than ending the process.
pub fn fallible<T>(f: impl FnOnce() -> T) -> T {
    /// Puts the flag back however `f` ends, a panic included.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            FALLIBLE.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(FALLIBLE.with(|c| c.replace(true)));
    f()
}

/// Whether this thread is inside [`fallible`]. Allocates nothing (for an allocator).
pub fn is_fallible() -> bool {
    FALLIBLE.try_with(Cell::get).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallible_is_scoped_and_nests() {
        assert!(!is_fallible());
        fallible(|| {
            assert!(is_fallible());
            fallible(|| assert!(is_fallible()));
            assert!(is_fallible());
        });
        assert!(!is_fallible());
        std::thread::spawn(|| assert!(!is_fallible()))
            .join()
            .unwrap();
        // A panic inside puts the flag back too.
        let caught = std::panic::catch_unwind(|| fallible(|| panic!("inside")));
        assert!(caught.is_err());
        assert!(!is_fallible());
    }
}
