//! One Householder reflector, shared by both reduction stages.

use crate::ops::Real;

/// Replaces `x` by `β e₀` with the reflector `H = I − τ v vᵀ`, `v₀ = 1`, that maps `x` there
/// (LAPACK's `larfg`); writes `v` (same length as `x`) and returns `τ` (0 when `x` is
/// already `β e₀`). The norm is accumulated in f64.
pub(super) fn reflector<T: Real>(x: &mut [T], v: &mut [T]) -> T {
    v.fill(T::zero());
    if x.is_empty() {
        return T::zero();
    }
    v[0] = T::one();
    let tail = x[1..].iter().map(|a| a.as_f64() * a.as_f64()).sum::<f64>();
    if tail == 0.0 {
        return T::zero();
    }
    let alpha = x[0].as_f64();
    let norm = (alpha * alpha + tail).sqrt();
    let beta = if alpha >= 0.0 { -norm } else { norm };
    let scale = 1.0 / (alpha - beta);
    for (vi, xi) in v[1..].iter_mut().zip(x[1..].iter_mut()) {
        *vi = T::of_f64(xi.as_f64() * scale);
        *xi = T::zero();
    }
    x[0] = T::of_f64(beta);
    T::of_f64((beta - alpha) / beta)
}
