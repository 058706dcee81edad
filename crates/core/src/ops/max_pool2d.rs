//! Non-overlapping `k×k` max-pooling, `N×C×H×W → N×C×⌊H/k⌋×⌊W/k⌋`, whose gradient goes
//! entirely to the first maximum of each window (PyTorch's rule for ties).
//!
//! candle-core 0.11.1's own `max_pool2d` backward scales the gradient by the fraction of the
//! window holding the max instead of routing it — 1/k² of the true gradient for a unique max —
//! so the reference [`max_pool2d_slow`] is a gather at each window's argmax instead.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use goldpan_core::ops::{max_pool2d, max_pool2d_slow};
//! let x = Tensor::randn(0f32, 1.0, (2, 3, 6, 7), &Device::Cpu).unwrap();
//! let a = max_pool2d(&x, 2).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
//! let b = max_pool2d_slow(&x, 2).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
//! assert_eq!(a, b);
//! ```
// `!(v > 0)` is deliberate: it is true for NaN, which a ReLU must not pass as positive.
#![allow(clippy::neg_cmp_op_on_partial_ord)]
use super::{parallel, slice};
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Tensor, WithDType, D};
use num_traits::Float;

/// Planes per parallel work item.
const PLANES: usize = 16;

/// For each window of one plane, in row-major order, calls `visit(window, index of its first
/// maximum in the plane)`. Windows are scanned row by row, so "first" is PyTorch's order.
#[inline(always)]
fn for_each_window<T: Float>(plane: &[T], (h, w): (usize, usize), k: usize, mut visit: impl FnMut(usize, usize)) {
    let (oh, ow) = (h / k, w / k);
    if k == 2 {
        // The common case, unrolled: two input rows per output row.
        for i in 0..oh {
            let (r0, r1) = (2 * i * w, (2 * i + 1) * w);
            for j in 0..ow {
                let c = 2 * j;
                let (mut best, mut at) = (plane[r0 + c], r0 + c);
                for idx in [r0 + c + 1, r1 + c, r1 + c + 1] {
                    if plane[idx] > best {
                        (best, at) = (plane[idx], idx);
                    }
                }
                visit(i * ow + j, at);
            }
        }
        return;
    }
    for i in 0..oh {
        for j in 0..ow {
            let mut at = i * k * w + j * k;
            for a in 0..k {
                for b in 0..k {
                    let idx = (i * k + a) * w + j * k + b;
                    if plane[idx] > plane[at] {
                        at = idx;
                    }
                }
            }
            visit(i * ow + j, at);
        }
    }
}

/// Keeps `v`, or clamps it at zero when the pooling is fused with a ReLU.
#[inline(always)]
fn activate<T: Float>(v: T, relu: bool) -> T {
    if relu && !(v > T::zero()) {
        T::zero()
    } else {
        v
    }
}

/// `max(a, b)`, `a` on ties (and when `b` is NaN).
#[inline(always)]
fn max2<T: Float>(a: T, b: T) -> T {
    if b > a {
        b
    } else {
        a
    }
}

pub(crate) fn forward<T: Float + Send + Sync>(x: &[T], (h, w): (usize, usize), k: usize, relu: bool) -> Vec<T> {
    let (oh, ow) = (h / k, w / k);
    let out = oh * ow;
    parallel::zeroed_pieces(x.len() / (h * w) * out, PLANES * out, |i, ys| {
        for (y, plane) in ys.chunks_mut(out).zip(x[i * PLANES * h * w..].chunks(h * w)) {
            if k == 2 {
                // Branch-free over a row pair, so that it vectorises; the value of the max does
                // not depend on which tied element is "first".
                for (yr, rows) in y.chunks_exact_mut(ow).zip(plane.chunks_exact(2 * w)) {
                    let (r0, r1) = rows.split_at(w);
                    for (j, v) in yr.iter_mut().enumerate() {
                        let m = max2(max2(r0[2 * j], r0[2 * j + 1]), max2(r1[2 * j], r1[2 * j + 1]));
                        *v = activate(m, relu);
                    }
                }
            } else {
                for_each_window(plane, (h, w), k, |o, at| y[o] = activate(plane[at], relu));
            }
        }
    })
}

pub(crate) fn backward<T: Float + Send + Sync>(
    x: &[T],
    dy: &[T],
    (h, w): (usize, usize),
    k: usize,
    relu: bool,
) -> Vec<T> {
    let (oh, ow) = (h / k, w / k);
    let out = oh * ow;
    parallel::zeroed_pieces(x.len(), PLANES * h * w, |i, dxs| {
        let (xs, dys) = (&x[i * PLANES * h * w..], &dy[i * PLANES * out..]);
        for ((dplane, plane), dout) in dxs.chunks_mut(h * w).zip(xs.chunks(h * w)).zip(dys.chunks(out)) {
            if k == 2 {
                // Branch-free: the first of the four (row-major) equal to the max takes ∂y.
                for ((drows, rows), d) in
                    dplane.chunks_exact_mut(2 * w).zip(plane.chunks_exact(2 * w)).zip(dout.chunks_exact(ow))
                {
                    let (r0, r1) = rows.split_at(w);
                    let (d0, d1) = drows.split_at_mut(w);
                    for j in 0..ow {
                        let (a, b, c, e) = (r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]);
                        let m = max2(max2(a, b), max2(c, e));
                        // The ReLU passes the gradient where the pooled value is positive.
                        let g = if relu && !(m > T::zero()) { T::zero() } else { d[j] };
                        let (ta, tb, tc) = (a == m, b == m, c == m);
                        let z = T::zero();
                        d0[2 * j] = if ta { g } else { z };
                        d0[2 * j + 1] = if !ta && tb { g } else { z };
                        d1[2 * j] = if !ta && !tb && tc { g } else { z };
                        d1[2 * j + 1] = if !ta && !tb && !tc { g } else { z };
                    }
                }
            } else {
                for_each_window(plane, (h, w), k, |o, at| {
                    dplane[at] = if relu && !(plane[at] > T::zero()) { T::zero() } else { dout[o] }
                });
            }
        }
    })
}

/// Each window's first maximum: its index within its `h×w` plane, window by window (the
/// routing that [`backward`] applies, kept for many cotangents at once).
pub(crate) fn argmax<T: Float + Send + Sync>(x: &[T], (h, w): (usize, usize), k: usize) -> Vec<u32> {
    let out = (h / k) * (w / k);
    let mut at = vec![0u32; x.len() / (h * w) * out];
    parallel::for_each_piece(&mut at, PLANES * out, |i, idx| {
        for (ix, plane) in idx.chunks_mut(out).zip(x[i * PLANES * h * w..].chunks(h * w)) {
            for_each_window(plane, (h, w), k, |o, a| ix[o] = a as u32);
        }
    });
    at
}

/// `t` read at each window's first maximum of `x` (the pooling's Jacobian applied to a
/// tangent `t` of `x`); same shapes as [`forward`].
pub(crate) fn gather_at_max<T: Float + Send + Sync>(x: &[T], t: &[T], (h, w): (usize, usize), k: usize) -> Vec<T> {
    let out = (h / k) * (w / k);
    parallel::zeroed_pieces(x.len() / (h * w) * out, PLANES * out, |i, ys| {
        let (xs, ts) = (&x[i * PLANES * h * w..], &t[i * PLANES * h * w..]);
        for ((y, plane), tplane) in ys.chunks_mut(out).zip(xs.chunks(h * w)).zip(ts.chunks(h * w)) {
            for_each_window(plane, (h, w), k, |o, at| y[o] = tplane[at]);
        }
    })
}

#[derive(Clone, Copy)]
struct MaxPool2d {
    k: usize,
    relu: bool,
}

impl CustomOp1 for MaxPool2d {
    fn name(&self) -> &'static str {
        "goldpan-max-pool2d"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = l.shape().dims4()?;
        let shape = Shape::from((n, c, h / self.k, w / self.k));
        by_dtype!(s, |T| Ok((T::to_cpu_storage_owned(forward::<T>(slice(s, l)?, (h, w), self.k, self.relu)), shape)))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x.apply_op3_no_bwd(&dy.contiguous()?, x, &MaxPool2dBackward(*self))?))
    }
}

/// `(x, ∂y, _) → ∂x`; the third argument is unused (candle has no two-input op without
/// backward that would serve as well, and a duplicate costs nothing).
struct MaxPool2dBackward(MaxPool2d);

impl CustomOp3 for MaxPool2dBackward {
    fn name(&self) -> &'static str {
        "goldpan-max-pool2d-backward"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        dys: &CpuStorage,
        dyl: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (_, _, h, w) = xl.shape().dims4()?;
        let MaxPool2d { k, relu } = self.0;
        by_dtype!(xs, |T| Ok((
            T::to_cpu_storage_owned(backward::<T>(slice(xs, xl)?, slice(dys, dyl)?, (h, w), k, relu)),
            xl.shape().clone()
        )))
    }
}

fn pool(x: &Tensor, k: usize, relu: bool) -> Result<Tensor> {
    if k == 0 {
        candle_core::bail!("max_pool2d: window size must be ≥ 1")
    }
    x.contiguous()?.apply_op1(MaxPool2d { k, relu })
}

/// Max-pooling; the fast kernel on CPU, [`max_pool2d_slow`] elsewhere.
pub fn max_pool2d(x: &Tensor, k: usize) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return max_pool2d_slow(x, k);
    }
    pool(x, k, false)
}

/// `relu(max_pool2d(x, k))` in one pass (LeNet's pool-then-ReLU), on CPU; composed elsewhere.
pub fn max_pool2d_relu(x: &Tensor, k: usize) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return max_pool2d_slow(x, k)?.relu();
    }
    pool(x, k, true)
}

/// The reference: a gather at each window's argmax (trailing rows/columns that fill no window
/// are dropped), differentiated by candle.
pub fn max_pool2d_slow(x: &Tensor, k: usize) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let (oh, ow) = (h / k, w / k);
    let x = if h % k != 0 || w % k != 0 { x.narrow(2, 0, oh * k)?.narrow(3, 0, ow * k)? } else { x.clone() };
    let windows =
        x.reshape((n, c, oh, k, ow, k))?.permute((0, 1, 2, 4, 3, 5))?.contiguous()?.reshape((n, c, oh, ow, k * k))?;
    let first_max = windows.argmax_keepdim(D::Minus1)?;
    windows.gather(&first_max, D::Minus1)?.squeeze(D::Minus1)
}
