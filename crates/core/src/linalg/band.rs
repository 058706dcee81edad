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
    let mut k = 0;
    // Rows below the band in panel `k..k + b`: `k + b..n`; fewer than two leave nothing to zero.
    while k + b + 1 < n {
        let (_, _, below, trailing) = a.rb_mut().split_at_mut(k + b, k + b);
        // All `b` columns: when fewer rows remain, the columns past the last reflector still
        // take Qᵀ.
        let (v, t) = panel_qr(below.subcols_mut(k, b));
        let w = v.ncols();

        // X = A₂₂ V T, then W = X − ½ V (Tᵀ (Vᵀ X)), kept in `x`.
        let av = symmetric_times(trailing.rb(), v.as_ref());
        let mut x = Mat::<T>::zeros(av.nrows(), w);
        matmul(x.as_mut(), Accum::Replace, av.as_ref(), t.as_ref(), one, par);
        let mut vx = Mat::<T>::zeros(w, w);
        matmul(vx.as_mut(), Accum::Replace, v.as_ref().transpose(), x.as_ref(), one, par);
        let mut z = Mat::<T>::zeros(w, w);
        matmul(z.as_mut(), Accum::Replace, t.as_ref().transpose(), vx.as_ref(), one, par);
        matmul(x.as_mut(), Accum::Add, v.as_ref(), z.as_ref(), T::of_f64(-0.5), par);

        // A₂₂ −= [W V] [V W]ᵀ on the lower triangle.
        let m = v.nrows();
        let (mut wv, mut vw) = (Mat::<T>::zeros(m, 2 * w), Mat::<T>::zeros(m, 2 * w));
        wv.as_mut().subcols_mut(0, w).copy_from(x.as_ref());
        wv.as_mut().subcols_mut(w, w).copy_from(v.as_ref());
        vw.as_mut().subcols_mut(0, w).copy_from(v.as_ref());
        vw.as_mut().subcols_mut(w, w).copy_from(x.as_ref());
        tri_matmul(
            trailing,
            BlockStructure::TriangularLower,
            Accum::Add,
            wv.as_ref(),
            BlockStructure::Rectangular,
            vw.as_ref().transpose(),
            BlockStructure::Rectangular,
            T::of_f64(-1.0),
            par,
        );
        k += b;
    }
}

/// Householder QR of the `m×b` panel in place: leaves `R` on and above the diagonal and zeros
/// below, and returns the reflectors `V` (`m×w`, unit lower trapezoidal, `w = min(m, b)`) and
/// the upper triangular `T` with `H₀⋯H_{w−1} = I − V T Vᵀ` (LAPACK's `geqr2` + `larft`).
fn panel_qr<T: Real>(mut panel: MatMut<'_, T>) -> (Mat<T>, Mat<T>) {
    let (m, b) = panel.shape();
    let w = m.min(b);
    let mut v = Mat::<T>::zeros(m, w);
    let mut tau = vec![T::zero(); w];
    let mut dots = Mat::<T>::zeros(1, b);
    for (j, tj) in tau.iter_mut().enumerate() {
        let col = panel.rb_mut().col_mut(j).subrows_mut(j, m - j);
        let col = col.try_as_col_major_mut().expect("column-major panel").as_slice_mut();
        *tj = reflector(col, &mut v.col_as_slice_mut(j)[j..]);
        if *tj == T::zero() || j + 1 == b {
            continue;
        }
        // The rest of the panel: P −= τ v (vᵀ P).
        let vj = v.as_ref().col(j).subrows(j, m - j).as_mat();
        let rest = panel.rb_mut().submatrix_mut(j, j + 1, m - j, b - j - 1);
        let mut d = dots.as_mut().subcols_mut(0, b - j - 1);
        matmul(d.rb_mut(), Accum::Replace, vj.transpose(), rest.rb(), T::one(), Par::Seq);
        matmul(rest, Accum::Add, vj, d.rb(), -*tj, Par::Seq);
    }
    // T column by column: T[..i, i] = −τᵢ T[..i, ..i] (V[:, ..i]ᵀ vᵢ).
    let mut gram = Mat::<T>::zeros(w, w);
    matmul(gram.as_mut(), Accum::Replace, v.as_ref().transpose(), v.as_ref(), T::one(), Par::Seq);
    let mut t = Mat::<T>::zeros(w, w);
    for i in 0..w {
        t[(i, i)] = tau[i];
        for r in 0..i {
            let s = (r..i).fold(T::zero(), |s, c| s + t[(r, c)] * gram[(c, i)]);
            t[(r, i)] = -tau[i] * s;
        }
    }
    (v, t)
}

/// `A V` for the symmetric `A` given by its lower triangle, in one pass over it: each block of
/// columns multiplies `V` both as itself and as its transpose. Each group of blocks sums into
/// its own product, on rayon's pool (faer's, which runs the rest of the reduction).
fn symmetric_times<T: Real>(a: MatRef<'_, T>, v: MatRef<'_, T>) -> Mat<T> {
    let (m, w) = (a.nrows(), v.ncols());
    let one = T::one();
    let block = |x: &mut Mat<T>, j: usize| {
        let jb = SYMM_BLOCK.min(m - j);
        let diag = a.submatrix(j, j, jb, jb);
        let diag = Mat::<T>::from_fn(jb, jb, |r, c| if r >= c { diag[(r, c)] } else { diag[(c, r)] });
        matmul(x.as_mut().subrows_mut(j, jb), Accum::Add, diag.as_ref(), v.subrows(j, jb), one, Par::Seq);
        let below = a.submatrix(j + jb, j, m - j - jb, jb);
        matmul(x.as_mut().subrows_mut(j + jb, m - j - jb), Accum::Add, below, v.subrows(j, jb), one, Par::Seq);
        matmul(
            x.as_mut().subrows_mut(j, jb),
            Accum::Add,
            below.transpose(),
            v.subrows(j + jb, m - j - jb),
            one,
            Par::Seq,
        );
    };
    let partials: Vec<Mat<T>> = (0..SYMM_GROUPS)
        .into_par_iter()
        .map(|g| {
            let mut x = Mat::<T>::zeros(m, w);
            for j in (g * SYMM_BLOCK..m).step_by(SYMM_GROUPS * SYMM_BLOCK) {
                block(&mut x, j);
            }
            x
        })
        .collect();
    partials.into_iter().reduce(|x, y| x + y).expect("at least one group")
}
