//! The addon's allocator, and how long it keeps freed memory.
//!
//! A training step frees and reallocates the same large buffers (activations, im2col matrices,
//! gradients) every step. mimalloc reuses them; but by default it also returns ("purges") free
//! memory to the OS on a timer, after which the next step faults every page in again and the
//! kernel zeroes it: on DTN at batch 64 that was 5–10 % of a step. So while any long run is in
//! progress nothing is purged; when the last one ends, purging resumes and the free memory of the
//! thread that ran it is returned at once.
use std::sync::Mutex;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` (milliseconds; −1: never) in mimalloc v3's `mi_option_t`, which
/// `libmimalloc-sys` does not name for v3. A test checks it against its documented default.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Runs in progress, and the purge delay to restore when the last one ends.
static RUNS: Mutex<(usize, Option<i64>)> = Mutex::new((0, None));

/// Keeps freed memory in the allocator while it lives (see the module docs). A user's
/// `MIMALLOC_PURGE_DELAY` is left alone.
pub struct RetainFreed(());

impl RetainFreed {
    pub fn new() -> Self {
        let mut runs = RUNS.lock().unwrap_or_else(|e| e.into_inner());
        if runs.0 == 0 && std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // SAFETY: plain reads and writes of an option value, serialised by `RUNS`.
            unsafe {
                runs.1 = Some(libmimalloc_sys::mi_option_get(PURGE_DELAY) as i64);
                libmimalloc_sys::mi_option_set(PURGE_DELAY, -1);
            }
        }
        runs.0 += 1;
        Self(())
    }
}

impl Drop for RetainFreed {
    fn drop(&mut self) {
        let mut runs = RUNS.lock().unwrap_or_else(|e| e.into_inner());
        runs.0 -= 1;
        if runs.0 == 0 {
            if let Some(delay) = runs.1.take() {
                // SAFETY: as above; `mi_collect` returns this thread's free memory to the OS.
                unsafe {
                    libmimalloc_sys::mi_option_set(PURGE_DELAY, delay as _);
                    libmimalloc_sys::mi_collect(true);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_delay_is_the_option_it_should_be_and_is_restored() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return; // the user's setting wins, and is not the default
        }
        // mimalloc v3 documents a default purge delay of 1000 ms; a different value here means
        // the option index is wrong for this mimalloc.
        let default = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        assert_eq!(default, 1000);
        {
            let _a = RetainFreed::new();
            let _b = RetainFreed::new();
            assert_eq!(unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }, -1);
        }
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }, default);
    }
}
