//! Stage 2: a symmetric band matrix to tridiagonal form by Householder bulge chasing
//! (the sweep of LAPACK's `sb2st` kernels), sweeps pipelined across threads.
//!
//! Sweep `j` zeroes column `j` below its subdiagonal with one reflector, applied from both
//! sides to the next diagonal block. Applying it from the right to the block below fills a
//! bulge; a new reflector zeroes the bulge's first column, is applied to that block from the
//! left and to the next diagonal block from both sides, and so on down the band. The rest of
//! each bulge is zeroed by the next sweep, so entries never reach more than `2b` below the
//! diagonal.

use std::sync::atomic::{AtomicUsize, Ordering};

use faer::MatRef;

use super::householder::reflector;
use crate::ops::Real;

/// The lower triangle of a symmetric band matrix, column-major with room for the bulges:
/// column `j` holds rows `j..j + 2b + 1`.
pub(super) struct Band<T> {
    n: usize,
    b: usize,
    ld: usize,
    /// `len` entries, owned (from a leaked boxed slice, freed on drop); shared by the sweeps.
    data: *mut T,
    len: usize,
}

// SAFETY: the sweeps write disjoint windows (see `tridiagonalise`); `T` is plain data.
unsafe impl<T: Send> Sync for Band<T> {}
unsafe impl<T: Send> Send for Band<T> {}

impl<T> Drop for Band<T> {
    fn drop(&mut self) {
        // SAFETY: `data`/`len` came from `Box::leak` of a boxed slice of `len` entries, whose
        // allocation is a `Vec`'s of capacity `len`.
        drop(unsafe { Vec::from_raw_parts(self.data, self.len, self.len) });
    }
}

/// Steps completed by one sweep (`usize::MAX` once finished), on its own cache line so that
/// neighbouring sweeps' counters do not contend.
#[derive(Default)]
#[repr(align(128))]
struct Progress(AtomicUsize);

/// Sets a sweep's [`Progress`] to finished when dropped.
struct Finished<'a>(&'a Progress);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0 .0.store(usize::MAX, Ordering::Release);
    }
}

/// One thread's reflectors and scratch.
struct Buffers<T> {
    v: Vec<T>,
    next: Vec<T>,
    work: Vec<T>,
}

impl<T: Real> Buffers<T> {
    fn new(b: usize) -> Self {
        Self { v: vec![T::zero(); b], next: vec![T::zero(); b], work: vec![T::zero(); b] }
    }
}

impl<T: Real> Band<T> {
    /// Copies the band `0 ≤ i − j ≤ b` of the lower triangle of `a`.
    pub(super) fn from_lower(a: MatRef<'_, T>, b: usize) -> Self {
        let n = a.nrows();
        let ld = 2 * b + 1;
        let mut data = vec![T::zero(); n * ld + ld];
        for j in 0..n {
            for i in j..n.min(j + b + 1) {
                data[j * ld + i - j] = a[(i, j)];
            }
        }
        let data = data.into_boxed_slice();
        let len = data.len();
        Self { n, b, ld, data: Box::leak(data).as_mut_ptr(), len }
    }

    /// Rows `row..row + len` of column `col` (`row ≥ col`), contiguous.
    ///
    /// # Safety
    /// No other live slice may overlap it: sweeps running side by side touch disjoint index
    /// windows (see [`Band::tridiagonalise`]).
    #[allow(clippy::mut_from_ref)]
    unsafe fn col(&self, col: usize, row: usize, len: usize) -> &mut [T] {
        let at = col * self.ld + row - col;
        assert!(row - col + len <= self.ld && at + len <= self.len);
        // SAFETY: in bounds (checked); exclusive by the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.data.add(at), len) }
    }

    /// Reduces the band to tridiagonal form; returns its diagonal and subdiagonal in f64.
    ///
    /// Sweeps run side by side on up to `threads` threads, sweep `j` on thread `j mod threads`.
    /// Step `k` of sweep `j` (its reflector at level `k`) touches the index window
    /// `[j + 1 + (k−1)b, j + 1 + (k+1)b)`, which overlaps steps `≤ k + 2` of sweep `j − 1`
    /// only; so it waits for those, and every overlapping pair of steps runs in the sequential
    /// order — the result is the same bit for bit for any number of threads.
    pub(super) fn tridiagonalise(&mut self, threads: usize) -> (Vec<f64>, Vec<f64>) {
        let n = self.n;
        let sweeps = n.saturating_sub(2);
        let done: Vec<Progress> = (0..sweeps).map(|_| Progress::default()).collect();
        let threads = threads.clamp(1, sweeps.max(1));
        let this = &*self;
        std::thread::scope(|scope| {
            for t in 0..threads {
                let done = &done;
                scope.spawn(move || {
                    let mut buffers = Buffers::new(this.b);
                    for j in (t..sweeps).step_by(threads) {
                        // SAFETY: the waits below keep this sweep's windows disjoint from
                        // those of the sweeps still running.
                        unsafe { this.sweep(j, done, &mut buffers) };
                    }
                });
            }
        });
        // SAFETY: every thread has joined; nothing else holds a slice.
        let at = |i: usize| unsafe { *self.data.add(i) };
        let d = (0..n).map(|i| at(i * self.ld).as_f64()).collect();
        let e = (0..n.saturating_sub(1)).map(|i| at(i * self.ld + 1).as_f64()).collect();
        (d, e)
    }

    /// Sweep `j`: zero column `j` below the subdiagonal and chase the bulge off the band.
    unsafe fn sweep(&self, j: usize, done: &[Progress], buf: &mut Buffers<T>) {
        let (n, b) = (self.n, self.b);
        // Marks the sweep finished however it ends, so that a panic here propagates out of the
        // thread scope instead of leaving the next sweep waiting forever.
        let _finished = Finished(&done[j]);
        let wait = |step: usize| {
            if j > 0 {
                let mut spins = 0u32;
                while done[j - 1].0.load(Ordering::Acquire) < step + 3 {
                    // Spin briefly (steps take about a microsecond), then give the core away
                    // in case the threads outnumber the cores.
                    spins += 1;
                    if spins < 256 {
                        std::hint::spin_loop();
                    } else {
                        std::thread::yield_now();
                    }
                }
            }
        };
        let Buffers { v, next, work } = buf;
        // Step 0: the reflector for column j acts on rows/columns s..s + m.
        let (mut s, mut m) = (j + 1, b.min(n - j - 1));
        wait(0);
        let mut tau = reflector(unsafe { self.col(j, s, m) }, &mut v[..m]);
        unsafe { self.two_sided(s, m, &v[..m], tau, work) };
        done[j].0.store(1, Ordering::Release);
        // Step k: the previous reflector from the right on the block below, a new reflector for
        // that block's first column, applied to the block from the left and to the next
        // diagonal block from both sides.
        let mut step = 1;
        while s + m < n {
            let r = s + m;
            let m2 = b.min(n - r);
            wait(step);
            unsafe {
                self.right_apply(r, m2, s, m, &v[..m], tau, work);
                let tau2 = reflector(self.col(s, r, m2), &mut next[..m2]);
                self.left_apply(r, m2, s + 1, m - 1, &next[..m2], tau2);
                self.two_sided(r, m2, &next[..m2], tau2, work);
                tau = tau2;
            }
            std::mem::swap(v, next);
            (s, m) = (r, m2);
            step += 1;
            done[j].0.store(step, Ordering::Release);
        }
    }

    /// `D ← H D H` for the diagonal block `D` at rows/columns `s..s + m` and `H = I − τ v vᵀ`:
    /// `w = τ D v`, `w −= ½ τ (wᵀv) v`, `D −= v wᵀ + w vᵀ` (LAPACK's `larfy`).
    unsafe fn two_sided(&self, s: usize, m: usize, v: &[T], tau: T, work: &mut [T]) {
        if tau == T::zero() {
            return;
        }
        let w = &mut work[..m];
        w.fill(T::zero());
        for c in 0..m {
            let col = unsafe { self.col(s + c, s + c, m - c) };
            let vc = v[c];
            axpy(vc, &col[1..], &mut w[c + 1..]);
            w[c] = w[c] + col[0] * vc + dot(&col[1..], &v[c + 1..]);
        }
        w.iter_mut().for_each(|wi| *wi *= tau);
        let alpha = T::of_f64(-0.5) * tau * dot(w, v);
        axpy(alpha, v, w);
        for c in 0..m {
            let (vc, wc) = (v[c], w[c]);
            let col = unsafe { self.col(s + c, s + c, m - c) };
            for (i, a) in col.iter_mut().enumerate() {
                *a = *a - v[c + i] * wc - w[c + i] * vc;
            }
        }
    }

    /// `B ← B (I − τ v vᵀ)` for the block `B` at rows `r..r + m2`, columns `s..s + m`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn right_apply(&self, r: usize, m2: usize, s: usize, m: usize, v: &[T], tau: T, work: &mut [T]) {
        if tau == T::zero() {
            return;
        }
        let u = &mut work[..m2];
        u.fill(T::zero());
        for (c, &vc) in v.iter().enumerate().take(m) {
            axpy(vc, unsafe { self.col(s + c, r, m2) }, u);
        }
        for (c, &vc) in v.iter().enumerate().take(m) {
            axpy(-tau * vc, &work[..m2], unsafe { self.col(s + c, r, m2) });
        }
    }

    /// `B ← (I − τ v vᵀ) B` for the block at rows `r..r + m2`, columns `c0..c0 + count`.
    unsafe fn left_apply(&self, r: usize, m2: usize, c0: usize, count: usize, v: &[T], tau: T) {
        if tau == T::zero() {
            return;
        }
        for c in c0..c0 + count {
            let col = unsafe { self.col(c, r, m2) };
            axpy(-tau * dot(col, v), v, col);
        }
    }
}

/// `y += a x`.
fn axpy<T: Real>(a: T, x: &[T], y: &mut [T]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// `xᵀy` with independent partial sums, so that it vectorises.
fn dot<T: Real>(x: &[T], y: &[T]) -> T {
    const LANES: usize = 16;
    let n = x.len().min(y.len());
    let mut acc = [T::zero(); LANES];
    let (xc, yc) = (x[..n].chunks_exact(LANES), y[..n].chunks_exact(LANES));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (xs, ys) in xc.zip(yc) {
        for ((a, &x), &y) in acc.iter_mut().zip(xs).zip(ys) {
            *a += x * y;
        }
    }
    let tail = xr.iter().zip(yr).fold(T::zero(), |s, (&a, &b)| s + a * b);
    acc.iter().fold(tail, |s, &a| s + a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_number_of_threads_gives_the_same_bits() {
        let (n, b) = (301, 6);
        let mut seed = 9u64;
        let a = faer::Mat::<f64>::from_fn(n, n, |i, j| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            if i >= j && i - j <= b {
                (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5
            } else {
                0.0
            }
        });
        let run = |threads| Band::from_lower(a.as_ref(), b).tridiagonalise(threads);
        let one = run(1);
        for threads in [2, 3, 8] {
            assert_eq!(run(threads), one, "{threads} threads");
        }
    }
}
