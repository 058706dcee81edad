//! Data parallelism for the kernels, on candle's own CPU thread pool.
//!
//! candle 0.11 runs its element-wise ops on a spin-waiting "barrier pool"; a second pool
//! (rayon) for our kernels would leave the two pools' threads spinning against each other on
//! a 2-core machine. So the kernels share candle's pool (`CANDLE_NUM_THREADS`, else
//! `RAYON_NUM_THREADS`, else all cores). Work items are fixed by the caller, never by the
//! number of threads, so results do not depend on it.
use std::ops::Range;

thread_local! {
    /// Set while this thread runs a work item, so that a kernel called from one (per-sample
    /// work, already parallel) runs inline instead of waiting on the pool it occupies.
    static INSIDE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f(i)` for every `i in 0..n`, in parallel, in no particular order.
pub(crate) fn for_each(n: usize, f: impl Fn(usize) + Sync) {
    if INSIDE.with(|c| c.get()) {
        (0..n).for_each(f);
        return;
    }
    candle_core::utils::barrier_pool().execute_chunked(n, |range: Range<usize>| {
        let outer = INSIDE.with(|c| c.replace(true));
        range.for_each(&f);
        INSIDE.with(|c| c.set(outer));
    });
}

/// A raw pointer that may cross threads; each user hands out disjoint regions only.
struct Shared<T>(*mut T);
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> Shared<T> {
    /// A method, so that closures capture the `Sync` wrapper rather than the bare pointer.
    fn ptr(&self) -> *mut T {
        self.0
    }
}

/// Splits `out` into pieces of `size` elements (the last may be shorter) and runs
/// `f(index, piece)` for each, in parallel.
pub(crate) fn for_each_piece<T: Send>(out: &mut [T], size: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let (len, base) = (out.len(), Shared(out.as_mut_ptr()));
    for_each(len.div_ceil(size.max(1)), |i| {
        let lo = i * size;
        let hi = (lo + size).min(len);
        // SAFETY: pieces `[i·size, (i+1)·size)` are disjoint and inside `out`, which the
        // caller's `&mut` keeps borrowed until every item has run.
        let piece = unsafe { std::slice::from_raw_parts_mut(base.ptr().add(lo), hi - lo) };
        f(i, piece)
    });
}

/// A new zero-filled vector of `len` values, split as by [`for_each_piece`] and handed piece
/// by piece to `f`. Each piece is zeroed by the thread that then fills it: `vec![0; len]` would
/// zero (or fault in) the whole output on the calling thread while the others wait, and leave
/// it cold in cache for the kernel.
pub(crate) fn zeroed_pieces<T: num_traits::Float + Send>(
    len: usize,
    size: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(len);
    for_each_piece(&mut out.spare_capacity_mut()[..len], size.max(1), |i, piece| {
        // SAFETY: all-zero bits are 0.0 for f32 and f64, so the piece is initialised before the
        // slice is made.
        let piece = unsafe {
            std::ptr::write_bytes(piece.as_mut_ptr(), 0, piece.len());
            std::slice::from_raw_parts_mut(piece.as_mut_ptr().cast::<T>(), piece.len())
        };
        f(i, piece)
    });
    // SAFETY: the pieces cover `0..len`, and each was initialised.
    unsafe { out.set_len(len) };
    out
}

/// `(0..n).map(f)` in parallel, results in index order.
pub(crate) fn map<R: Send>(n: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    let mut slots: Vec<Option<R>> = (0..n).map(|_| None).collect();
    for_each_piece(&mut slots, 1, |i, slot| slot[0] = Some(f(i)));
    slots.into_iter().map(|r| r.expect("every item ran")).collect()
}

/// The element-wise sum of equally long `partials`, added in index order (so the result does
/// not depend on which thread produced which partial), in parallel over pieces of the output.
pub(crate) fn sum_in_order<T: num_traits::Float + Send + Sync>(partials: &[Vec<T>]) -> Vec<T> {
    /// Values per piece: a piece of the output and of each partial stays in cache.
    const PIECE: usize = 1 << 14;
    let len = partials.first().map_or(0, Vec::len);
    zeroed_pieces(len, PIECE, |i, total| {
        for p in partials {
            for (t, &v) in total.iter_mut().zip(&p[i * PIECE..]) {
                *t = *t + v;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_everything_once() {
        let mut v = vec![0u32; 1001];
        for_each_piece(&mut v, 64, |i, piece| piece.iter_mut().for_each(|x| *x += 1 + i as u32));
        assert!(v.iter().enumerate().all(|(j, &x)| x == 1 + (j / 64) as u32));
        assert_eq!(map(5, |i| i * i), [0, 1, 4, 9, 16]);
    }
}
