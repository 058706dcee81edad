//! Eigenvalues of a symmetric tridiagonal matrix by the Pal–Walker–Kahan root-free QL/QR
//! iteration (the algorithm of LAPACK's `sterf`): implicit Wilkinson shifts on the squared
//! off-diagonal, no square roots in the inner loop, O(n²) in all.

use crate::{Error, Result};

const MAX_SWEEPS_PER_EIGENVALUE: usize = 30;

/// Eigenvalues (ascending) of the symmetric tridiagonal matrix with diagonal `d` and
/// subdiagonal `e` (`e.len() + 1 == d.len()`).
pub fn tridiagonal_eigenvalues(d: &[f64], e: &[f64]) -> Result<Vec<f64>> {
    let n = d.len();
    if n > 0 && e.len() + 1 != n {
        return Err(Error::Shape(format!("{} diagonal but {} off-diagonal entries", n, e.len())));
    }
    let mut d = d.to_vec();
    let mut e = e.to_vec();
    let eps = f64::EPSILON * 0.5;
    let eps2 = eps * eps;
    let safe_max = (1.0 / f64::MIN_POSITIVE).sqrt() / 3.0;
    let safe_min = f64::MIN_POSITIVE.sqrt() / eps2;
    let mut sweeps_left = MAX_SWEEPS_PER_EIGENVALUE * n;

    let mut start = 0;
    while start < n {
        // The next unreduced block start..=end: split where e is negligible.
        let mut end = start;
        while end + 1 < n {
            if e[end].abs() <= d[end].abs().sqrt() * d[end + 1].abs().sqrt() * eps {
                e[end] = 0.0;
                break;
            }
            end += 1;
        }
        let (lo, hi) = (start, end);
        start = end + 1;
        if lo == hi {
            continue;
        }
        // Scale into the range where squares neither overflow nor underflow.
        let norm = (lo..=hi)
            .map(|i| d[i].abs() + if i > lo { e[i - 1].abs() } else { 0.0 } + if i < hi { e[i].abs() } else { 0.0 })
            .fold(0.0, f64::max);
        let scale = if norm > safe_max {
            safe_max / norm
        } else if norm < safe_min && norm > 0.0 {
            safe_min / norm
        } else {
            1.0
        };
        for i in lo..=hi {
            d[i] *= scale;
            if i < hi {
                e[i] = (e[i] * scale).powi(2);
            }
        }
        // Chase from the end with the smaller diagonal entry: QL from the top, QR from below.
        let done = if d[hi].abs() >= d[lo].abs() {
            ql(&mut d, &mut e, lo, hi, eps2, &mut sweeps_left)
        } else {
            qr(&mut d, &mut e, lo, hi, eps2, &mut sweeps_left)
        };
        for v in &mut d[lo..=hi] {
            *v /= scale;
        }
        if !done {
            return Err(Error::Internal(format!(
                "tridiagonal QR did not converge in {} sweeps",
                MAX_SWEEPS_PER_EIGENVALUE * n
            )));
        }
    }
    d.sort_by(f64::total_cmp);
    Ok(d)
}

/// QL sweeps on the block `lo..=hi` (`e` holds squared off-diagonals), deflating at the top.
fn ql(d: &mut [f64], e: &mut [f64], lo: usize, hi: usize, eps2: f64, sweeps_left: &mut usize) -> bool {
    let mut l = lo;
    while l <= hi {
        let mut m = l;
        while m < hi && e[m].abs() > eps2 * (d[m] * d[m + 1]).abs() {
            m += 1;
        }
        if m < hi {
            e[m] = 0.0;
        }
        if m == l {
            l += 1;
            continue;
        }
        if m == l + 1 {
            (d[l], d[l + 1]) = eigenvalues_2x2(d[l], e[l].sqrt(), d[l + 1]);
            e[l] = 0.0;
            l += 2;
            continue;
        }
        if *sweeps_left == 0 {
            return false;
        }
        *sweeps_left -= 1;
        let p = d[l];
        let sigma = wilkinson_shift(p, e[l].sqrt(), d[l + 1]);
        let (mut c, mut s) = (1.0, 0.0);
        let mut gamma = d[m] - sigma;
        let mut p = gamma * gamma;
        for i in (l..m).rev() {
            let bb = e[i];
            let r = p + bb;
            if i + 1 != m {
                e[i + 1] = s * r;
            }
            let old_c = c;
            c = p / r;
            s = bb / r;
            let old_gamma = gamma;
            let alpha = d[i];
            gamma = c * (alpha - sigma) - s * old_gamma;
            d[i + 1] = old_gamma + (alpha - gamma);
            p = if c != 0.0 { gamma * gamma / c } else { old_c * bb };
        }
        e[l] = s * p;
        d[l] = sigma + gamma;
    }
    true
}

/// QR sweeps on the block `lo..=hi`, deflating at the bottom.
fn qr(d: &mut [f64], e: &mut [f64], lo: usize, hi: usize, eps2: f64, sweeps_left: &mut usize) -> bool {
    let mut l = hi;
    loop {
        let mut m = l;
        while m > lo && e[m - 1].abs() > eps2 * (d[m] * d[m - 1]).abs() {
            m -= 1;
        }
        if m > lo {
            e[m - 1] = 0.0;
        }
        if m == l {
            if l <= lo {
                return true;
            }
            l -= 1;
            continue;
        }
        if m + 1 == l {
            (d[l], d[l - 1]) = eigenvalues_2x2(d[l], e[l - 1].sqrt(), d[l - 1]);
            e[l - 1] = 0.0;
            if l < lo + 2 {
                return true;
            }
            l -= 2;
            continue;
        }
        if *sweeps_left == 0 {
            return false;
        }
        *sweeps_left -= 1;
        let p = d[l];
        let sigma = wilkinson_shift(p, e[l - 1].sqrt(), d[l - 1]);
        let (mut c, mut s) = (1.0, 0.0);
        let mut gamma = d[m] - sigma;
        let mut p = gamma * gamma;
        for i in m..l {
            let bb = e[i];
            let r = p + bb;
            if i != m {
                e[i - 1] = s * r;
            }
            let old_c = c;
            c = p / r;
            s = bb / r;
            let old_gamma = gamma;
            let alpha = d[i + 1];
            gamma = c * (alpha - sigma) - s * old_gamma;
            d[i] = old_gamma + (alpha - gamma);
            p = if c != 0.0 { gamma * gamma / c } else { old_c * bb };
        }
        e[l - 1] = s * p;
        d[l] = sigma + gamma;
    }
}

/// The eigenvalue of `[[p, b], [b, q]]` nearer to `p`.
fn wilkinson_shift(p: f64, b: f64, q: f64) -> f64 {
    let sigma = (q - p) / (2.0 * b);
    let r = sigma.hypot(1.0);
    p - b / (sigma + r.copysign(sigma))
}

/// Both eigenvalues of `[[a, b], [b, c]]`, computed without cancellation (LAPACK's `lae2`).
fn eigenvalues_2x2(a: f64, b: f64, c: f64) -> (f64, f64) {
    let sum = a + c;
    let (big, small) = if a.abs() > c.abs() { (a, c) } else { (c, a) };
    let rt = (a - c).hypot(2.0 * b);
    if sum == 0.0 {
        return (0.5 * rt, -0.5 * rt);
    }
    let rt1 = 0.5 * (sum + rt.copysign(sum));
    (rt1, (big / rt1) * small - (b / rt1) * b)
}
