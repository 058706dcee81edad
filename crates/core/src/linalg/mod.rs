//! Eigenvalues of large dense symmetric matrices by two-stage reduction.
//!
//! faer's one-stage tridiagonalisation streams the whole trailing matrix through memory once per
//! column, so at n = 20,000 it is bound by memory bandwidth (minutes). The two-stage scheme
//! moves almost all of the work into GEMMs:
//! 1. `band`: dense → symmetric band of half-bandwidth `b`, one blocked QR panel and one
//!    rank-2b update per `b` columns (level 3, on every core);
//! 2. `bulge`: band → tridiagonal by Householder bulge chasing on a compact band copy
//!    (O(n²b) flops that stay in cache);
//! 3. `tridiagonal`: root-free QL/QR on the tridiagonal matrix, in f64.
//!
//! Only eigenvalues: the reflectors of both stages are discarded.

mod band;
mod bulge;
mod householder;
mod tridiagonal;

pub use tridiagonal::tridiagonal_eigenvalues;

use crate::ops::Real;
use crate::{Error, Result};

/// The half-bandwidth of the intermediate band matrix for order `n`: wide enough for efficient
/// GEMMs in stage 1 (whose memory traffic falls as 1/b), narrow enough that stage 2's O(n²b)
/// stays small. Measured with f32 on 2 cores: n = 5,000 takes 1.60 s at b = 32 and 1.73 s at
/// 64; n = 20,000 takes 75 s at 32 and 64 s at 64.
pub fn default_band(n: usize) -> usize {
    if n > 8192 {
        64
    } else {
        32
    }
}

/// The eigenvalues of the symmetric matrix `a` (its lower triangle is read), ascending.
///
/// `band` is stage 1's half-bandwidth; rounding follows `T` (f32 gives an absolute error of
/// about 1e-7·‖A‖ per eigenvalue, f64 about 1e-15·‖A‖).
pub fn symmetric_eigenvalues<T: Real>(mut a: faer::Mat<T>, band: usize) -> Result<Vec<f64>> {
    let n = a.nrows();
    if a.ncols() != n {
        return Err(Error::Shape(format!("eigenvalues of a non-square {}×{} matrix", n, a.ncols())));
    }
    if band == 0 {
        return Err(Error::config("band", "the half-bandwidth must be at least 1"));
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    if (0..n).any(|j| (j..n).any(|i| !a[(i, j)].is_finite())) {
        return Err(Error::Internal("eigenvalues of a matrix with a non-finite entry".into()));
    }
    let b = band.min(n - 1).max(1);
    band::reduce_to_band(a.as_mut(), b);
    let mut packed = bulge::Band::from_lower(a.as_ref(), b);
    drop(a);
    let (diag, offdiag) = packed.tridiagonalise(rayon::current_num_threads());
    tridiagonal_eigenvalues(&diag, &offdiag)
}
