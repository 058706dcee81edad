//! Stage 1: a dense symmetric matrix to a band of half-bandwidth `b` by orthogonal similarity.
//!
//! For each panel of `b` columns, a Householder QR of the part below the band gives
//! `Q = I − V T Vᵀ`, and the trailing matrix becomes `QᵀAQ = A − W Vᵀ − V Wᵀ` with
//! `X = A V T` and `W = X − ½ V (Tᵀ Vᵀ X)`: one symmetric product and one rank-2b update,
//! both GEMMs over the lower triangle.

use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{matmul as tri_matmul, BlockStructure};
use faer::reborrow::{Reborrow, ReborrowMut};
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::householder::reflector;
use crate::ops::Real;

/// Columns per block of the symmetric product: a block of the lower triangle is read once
/// and used twice while it is still in cache (32 measured best at n = 5,000: 128 is 25 %
/// slower).
const SYMM_BLOCK: usize = 32;

/// The symmetric product's blocks go round-robin to this many partial sums, added in order
/// afterwards: fixed, so the result does not depend on the number of threads.
const SYMM_GROUPS: usize = 4;

/// Reduces the symmetric matrix `a` (lower triangle read and written) in place to a band:
/// afterwards `a[(i, j)]` for `0 ≤ i − j ≤ b` holds the band and the rest of the lower
/// triangle is zero. Same eigenvalues, up to rounding.
pub(super) fn reduce_to_band<T: Real>(mut a: MatMut<'_, T>, b: usize) {
    let n = a.nrows();
    let par = Par::rayon(0);
    let one = T::one();
    // The panels' tall buffers, allocated once at the first (largest) panel's size and viewed
    // at each panel's: fresh ones per panel would each be faulted in and zeroed by the OS.
    let rows = n.saturating_sub(b);
    let (mut vw, mut wv) = (Mat::<T>::zeros(rows, 2 * b), Mat::<T>::zeros(rows, 2 * b));
    let mut partials: Vec<Mat<T>> = (0..SYMM_GROUPS).map(|_| Mat::<T>::zeros(rows, b)).collect();
    let mut k = 0;
    // Rows below the band in panel `k..k + b`: `k + b..n`; fewer than two leave nothing to zero.
    while k + b + 1 < n {
        let (_, _, below, trailing) = a.rb_mut().split_at_mut(k + b, k + b);
        let m = n - k - b;
        let w = m.min(b);
        // vw = [V X], wv = [X V]: V from the QR, X = A₂₂ V T, then W = X − ½ V (Tᵀ (Vᵀ X)).
        let (mut v, mut x_of_vw) = vw.as_mut().submatrix_mut(0, 0, m, 2 * w).split_at_col_mut(w);
        // All `b` columns: when fewer rows remain, the columns past the last reflector still
        // take Qᵀ.
        let t = panel_qr(below.subcols_mut(k, b), v.rb_mut());
        let (mut x, mut v_of_wv) = wv.as_mut().submatrix_mut(0, 0, m, 2 * w).split_at_col_mut(w);
        let av = symmetric_times(trailing.rb(), v.rb(), &mut partials);
        matmul(x.rb_mut(), Accum::Replace, av, t.as_ref(), one, par);
        let mut vx = Mat::<T>::zeros(w, w);
        matmul(vx.as_mut(), Accum::Replace, v.rb().transpose(), x.rb(), one, par);
        let mut z = Mat::<T>::zeros(w, w);
        matmul(z.as_mut(), Accum::Replace, t.as_ref().transpose(), vx.as_ref(), one, par);
        matmul(x.rb_mut(), Accum::Add, v.rb(), z.as_ref(), T::of_f64(-0.5), par);
        v_of_wv.copy_from(v.rb());
        x_of_vw.copy_from(x.rb());

        // A₂₂ −= [W V] [V W]ᵀ on the lower triangle.
        tri_matmul(
            trailing,
            BlockStructure::TriangularLower,
            Accum::Add,
            wv.as_ref().submatrix(0, 0, m, 2 * w),
            BlockStructure::Rectangular,
            vw.as_ref().submatrix(0, 0, m, 2 * w).transpose(),
            BlockStructure::Rectangular,
            T::of_f64(-1.0),
            par,
        );
        k += b;
    }
}

/// Householder QR of the `m×b` panel in place: leaves `R` on and above the diagonal and zeros
/// below, writes the reflectors `V` (`m×w`, unit lower trapezoidal, `w = min(m, b)`) into `v`
/// and returns the upper triangular `T` with `H₀⋯H_{w−1} = I − V T Vᵀ` (LAPACK's `geqr2` +
/// `larft`).
fn panel_qr<T: Real>(mut panel: MatMut<'_, T>, mut v: MatMut<'_, T>) -> Mat<T> {
    let (m, b) = panel.shape();
    let w = v.ncols();
    debug_assert_eq!(w, m.min(b));
    v.fill(T::zero());
    let mut tau = vec![T::zero(); w];
    let mut dots = Mat::<T>::zeros(1, b);
    for (j, tj) in tau.iter_mut().enumerate() {
        let col = panel.rb_mut().col_mut(j).subrows_mut(j, m - j);
        let col = col.try_as_col_major_mut().expect("column-major panel").as_slice_mut();
        let vj = v.rb_mut().col_mut(j).subrows_mut(j, m - j);
        *tj = reflector(col, vj.try_as_col_major_mut().expect("column-major reflectors").as_slice_mut());
        if *tj == T::zero() || j + 1 == b {
            continue;
        }
        // The rest of the panel: P −= τ v (vᵀ P).
        let vj = v.rb().col(j).subrows(j, m - j).as_mat();
        let rest = panel.rb_mut().submatrix_mut(j, j + 1, m - j, b - j - 1);
        let mut d = dots.as_mut().subcols_mut(0, b - j - 1);
        matmul(d.rb_mut(), Accum::Replace, vj.transpose(), rest.rb(), T::one(), Par::Seq);
        matmul(rest, Accum::Add, vj, d.rb(), -*tj, Par::Seq);
    }
    // T column by column: T[..i, i] = −τᵢ T[..i, ..i] (V[:, ..i]ᵀ vᵢ).
    let mut gram = Mat::<T>::zeros(w, w);
    matmul(gram.as_mut(), Accum::Replace, v.rb().transpose(), v.rb(), T::one(), Par::Seq);
    let mut t = Mat::<T>::zeros(w, w);
    for i in 0..w {
        t[(i, i)] = tau[i];
        for r in 0..i {
            let s = (r..i).fold(T::zero(), |s, c| s + t[(r, c)] * gram[(c, i)]);
            t[(r, i)] = -tau[i] * s;
        }
    }
    t
}

/// `A V` for the symmetric `A` given by its lower triangle, in one pass over it: each block of
/// columns multiplies `V` both as itself and as its transpose. Each group of blocks sums into
/// its own partial product (`partials`, at least `A`'s size), on rayon's pool (faer's, which
/// runs the rest of the reduction); the result is the first partial.
fn symmetric_times<'p, T: Real>(a: MatRef<'_, T>, v: MatRef<'_, T>, partials: &'p mut [Mat<T>]) -> MatRef<'p, T> {
    let (m, w) = (a.nrows(), v.ncols());
    let one = T::one();
    let block = |x: &mut MatMut<'_, T>, j: usize| {
        let jb = SYMM_BLOCK.min(m - j);
        let diag = a.submatrix(j, j, jb, jb);
        let diag = Mat::<T>::from_fn(jb, jb, |r, c| if r >= c { diag[(r, c)] } else { diag[(c, r)] });
        matmul(x.rb_mut().subrows_mut(j, jb), Accum::Add, diag.as_ref(), v.subrows(j, jb), one, Par::Seq);
        let below = a.submatrix(j + jb, j, m - j - jb, jb);
        matmul(x.rb_mut().subrows_mut(j + jb, m - j - jb), Accum::Add, below, v.subrows(j, jb), one, Par::Seq);
        matmul(
            x.rb_mut().subrows_mut(j, jb),
            Accum::Add,
            below.transpose(),
            v.subrows(j + jb, m - j - jb),
            one,
            Par::Seq,
        );
    };
    partials[..SYMM_GROUPS].par_iter_mut().enumerate().for_each(|(g, x)| {
        let mut x = x.as_mut().submatrix_mut(0, 0, m, w);
        x.fill(T::zero());
        for j in (g * SYMM_BLOCK..m).step_by(SYMM_GROUPS * SYMM_BLOCK) {
            block(&mut x, j);
        }
    });
    let (first, rest) = partials.split_at_mut(1);
    let mut total = first[0].as_mut().submatrix_mut(0, 0, m, w);
    for p in &rest[..SYMM_GROUPS - 1] {
        // In group order, so that the sum does not depend on the thread count.
        for j in 0..w {
            let t = total.rb_mut().col_mut(j).try_as_col_major_mut().expect("column-major").as_slice_mut();
            t.iter_mut().zip(&p.col_as_slice(j)[..m]).for_each(|(t, &q)| *t += q);
        }
    }
    first[0].as_ref().submatrix(0, 0, m, w)
}
