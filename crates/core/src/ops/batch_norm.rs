//! Batch normalisation over dimension 1 of `x: N×C` or `N×C×H×W`, fused with what follows it
//! in SHOT's networks: a per-`(n, c)` scale (the keep mask of `Dropout2d`, or of element-wise
//! dropout when `x` is `N×C`) and an optional ReLU.
//!
//! With `μ, σ²` the batch statistics (biased variance) in training or the running ones in
//! evaluation, `x̂ = (x − μ)/√(σ² + ε)`, `z = γ·x̂ + β`, `y = relu(s ⊙ z)` (or `s ⊙ z`), and
//! `M = N·H·W` values per channel, the backward pass is, with `g = ∂y ⊙ s ⊙ [y > 0]`:
//! `∂β = Σ g`, `∂γ = Σ g·x̂`, and `∂x = γ/√(σ²+ε) · (g − Σg/M − x̂·Σ(g·x̂)/M)` with batch
//! statistics, `∂x = γ/√(σ²+ε) · g` with running ones (they are constants).
//!
//! candle composes the same layer from a dozen broadcast and reduction ops, each allocating a
//! full-size tensor; here it is two passes forward (statistics, then output) and two backward
//! (sums, then `∂x`), which recompute the ReLU's mask from `x` instead of reading `y`.
//! Statistics are summed in `f64`, row by row or per chunk of images, always in the same order:
//! bit-identical for any thread count.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use goldpan_core::ops::{batch_norm, batch_norm_slow, BatchNormSpec, Statistics};
//! let x = Tensor::randn(0f64, 1.0, (4, 3, 5, 5), &Device::Cpu).unwrap();
//! let (g, b) = (Tensor::randn(1f64, 0.1, 3, &Device::Cpu).unwrap(), Tensor::zeros(3, x.dtype(), &Device::Cpu).unwrap());
//! let spec = BatchNormSpec { statistics: Statistics::Batch, eps: 1e-5, scale: None, relu: true };
//! let (fast, stats) = batch_norm(&x, &g, &b, &spec).unwrap();
//! let (slow, _) = batch_norm_slow(&x, &g, &b, &spec).unwrap();
//! let d = (fast - slow).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
//! assert!(d < 1e-12 && stats.unwrap().mean.len() == 3);
//! ```
// `!(v > 0)` is deliberate: it is true for NaN, which a ReLU must not pass as positive.
#![allow(clippy::neg_cmp_op_on_partial_ord)]
use super::{parallel, slice, Real, CHUNK};
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor, WithDType};
use std::sync::{Arc, Mutex};

/// Which mean and variance normalise.
#[derive(Debug, Clone, PartialEq)]
pub enum Statistics {
    /// The batch's own (training); they are returned so the caller can update running ones.
    Batch,
    /// Given per-channel values (evaluation: the running statistics).
    Fixed { mean: Vec<f64>, var: Vec<f64> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct BatchNormSpec {
    pub statistics: Statistics,
    pub eps: f64,
    /// `N·C` factors applied after the affine map, row-major `(n, c)`; `None` = all ones.
    pub scale: Option<Vec<f64>>,
    pub relu: bool,
}

/// Per-channel mean and biased variance of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchStatistics {
    pub mean: Vec<f64>,
    pub var: Vec<f64>,
    /// Values per channel (`N·H·W`), for the unbiased running-variance update.
    pub count: usize,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Dims {
    n: usize,
    c: usize,
    /// Values per `(n, c)`: `H·W`, or 1 for `N×C`.
    l: usize,
}

impl Dims {
    pub(super) fn new(dims: &[usize]) -> Result<Self> {
        match *dims {
            [n, c] => Ok(Self { n, c, l: 1 }),
            [n, c, h, w] => Ok(Self { n, c, l: h * w }),
            _ => candle_core::bail!("batch_norm: expected N×C or N×C×H×W input, got {dims:?}"),
        }
    }

    fn chunks(&self) -> usize {
        self.n.div_ceil(CHUNK)
    }

    fn images(&self, chunk: usize) -> std::ops::Range<usize> {
        chunk * CHUNK..((chunk + 1) * CHUNK).min(self.n)
    }
}

/// Per channel, `Σ f(n, c, row)` over the `(n, c)` rows of `H·W` values, in chunks of images
/// added in chunk order; `f` returns `K` sums at once (so one pass can produce several).
fn channel_sums<const K: usize>(d: Dims, f: impl Fn(usize, usize, usize) -> [f64; K] + Sync) -> [Vec<f64>; K] {
    let partials = parallel::map(d.chunks(), |chunk| {
        let mut acc = vec![0f64; K * d.c];
        for n in d.images(chunk) {
            for c in 0..d.c {
                let sums = f(n, c, (n * d.c + c) * d.l);
                for (k, v) in sums.into_iter().enumerate() {
                    acc[k * d.c + c] += v;
                }
            }
        }
        acc
    });
    let total = parallel::sum_in_order(&partials);
    std::array::from_fn(|k| total[k * d.c..(k + 1) * d.c].to_vec())
}

/// `Σ f(v)` over a row, in eight interleaved accumulators of `T` (vectorised, in a fixed
/// order) whose total is taken in `f64`.
fn row_sum<T: Real>(row: &[T], f: impl Fn(T) -> T) -> f64 {
    let mut acc = [T::zero(); 8];
    let mut chunks = row.chunks_exact(8);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v);
        }
    }
    let tail: f64 = chunks.remainder().iter().map(|&v| to_f64(f(v))).sum();
    acc.iter().map(|&a| to_f64(a)).sum::<f64>() + tail
}

/// One `(n, c)` row's factors in `y = relu(s·(a·x + b))`, as the forward pass rounded them:
/// the backward pass recomputes the ReLU's mask from `x` rather than reading `y`.
#[derive(Clone, Copy)]
struct RowMap<T> {
    /// Dropout's `s` alone, and `s·a`, `s·b`.
    s: T,
    sa: T,
    sb: T,
    relu: bool,
}

impl<T: Real> RowMap<T> {
    fn new(op: &BatchNormOp, a: &[f64], b: &[f64], d: Dims, nc: usize) -> Self {
        let (n, c) = (nc / d.c, nc % d.c);
        let s = scale_of(&op.spec, n, c, d.c);
        Self { s: from_f64(s), sa: from_f64(s * a[c]), sb: from_f64(s * b[c]), relu: op.spec.relu }
    }

    fn y(&self, x: T) -> T {
        let z = x * self.sa + self.sb;
        if self.relu && !(z > T::zero()) {
            T::zero()
        } else {
            z
        }
    }

    /// `∂y·s·[y > 0]`.
    fn g(&self, x: T, dy: T) -> T {
        if self.relu && !(x * self.sa + self.sb > T::zero()) {
            T::zero()
        } else {
            dy * self.s
        }
    }
}

/// `(Σ g, Σ g·(x − μ))` over one `(n, c)` row, `g = ∂y·s·[y > 0]`, in eight interleaved
/// accumulators (vectorised, in a fixed order) whose total is taken in `f64`.
fn grad_sums<T: Real>(x: &[T], dy: &[T], map: RowMap<T>, mu: T) -> (f64, f64) {
    let (mut a, mut b) = ([T::zero(); 8], [T::zero(); 8]);
    let g = |xv: T, dyv: T| map.g(xv, dyv);
    let whole = x.len() / 8 * 8;
    for i in (0..whole).step_by(8) {
        for k in 0..8 {
            let gi = g(x[i + k], dy[i + k]);
            a[k] += gi;
            b[k] += gi * (x[i + k] - mu);
        }
    }
    let (mut sa, mut sb) = (0f64, 0f64);
    for k in 0..8 {
        sa += to_f64(a[k]);
        sb += to_f64(b[k]);
    }
    for i in whole..x.len() {
        let gi = g(x[i], dy[i]);
        sa += to_f64(gi);
        sb += to_f64(gi * (x[i] - mu));
    }
    (sa, sb)
}

/// Per channel, the mean and the biased variance of `x`, from one pass: each `(n, c)` row
/// (`H·W` values, in cache) gives its sum and its squared deviations from its own mean, and
/// the rows of a channel are combined in image order in `f64` (exact algebra, no
/// `E[x²] − E[x]²` cancellation). The rows are independent, so the result does not depend on
/// the thread count.
fn batch_moments<T: Real>(d: Dims, x: &[T]) -> (Vec<f64>, Vec<f64>) {
    // [Σ v, Σ (v − μᵣ)²] per row, μᵣ the row mean rounded to T.
    let rows = parallel::zeroed_pieces(2 * d.n * d.c, 2 * CHUNK * d.c, |chunk, out| {
        for (j, pair) in out.chunks_mut(2).enumerate() {
            let i = (chunk * CHUNK * d.c + j) * d.l;
            let row = &x[i..i + d.l];
            let sum = row_sum(row, |v| v);
            let mu = from_f64::<T>(sum / d.l as f64);
            pair[0] = sum;
            pair[1] = row_sum(row, |v| (v - mu) * (v - mu));
        }
    });
    let (l, m) = (d.l as f64, (d.n * d.l) as f64);
    let mut mean = vec![0f64; d.c];
    for (k, pair) in rows.chunks(2).enumerate() {
        mean[k % d.c] += pair[0];
    }
    mean.iter_mut().for_each(|s| *s /= m);
    // Σ (v − μ)² over a row = Σ (v − μᵣ)² + 2(μᵣ − μ)·Σ (v − μᵣ) + l·(μᵣ − μ)².
    let mut var = vec![0f64; d.c];
    for (k, pair) in rows.chunks(2).enumerate() {
        let c = k % d.c;
        let mu_r = to_f64(from_f64::<T>(pair[0] / l));
        let shift = mu_r - mean[c];
        var[c] += pair[1] + 2.0 * shift * (pair[0] - l * mu_r) + l * shift * shift;
    }
    var.iter_mut().for_each(|s| *s /= m);
    (mean, var)
}

/// Mean and `1/√(σ²+ε)` per channel, and the batch statistics when they were computed here.
fn normalisation<T: Real>(d: Dims, x: &[T], spec: &BatchNormSpec) -> (Vec<f64>, Vec<f64>, Option<BatchStatistics>) {
    let (mean, var, batch) = match &spec.statistics {
        Statistics::Fixed { mean, var } => (mean.clone(), var.clone(), false),
        Statistics::Batch => {
            let (mean, var) = batch_moments(d, x);
            (mean, var, true)
        }
    };
    let inv_std: Vec<f64> = var.iter().map(|v| 1.0 / (v + spec.eps).sqrt()).collect();
    let stats = batch.then(|| BatchStatistics { mean: mean.clone(), var, count: d.n * d.l });
    (mean, inv_std, stats)
}

fn to_f64<T: Real>(v: T) -> f64 {
    WithDType::to_f64(v)
}

fn from_f64<T: Real>(v: f64) -> T {
    <T as WithDType>::from_f64(v)
}

fn scale_of(spec: &BatchNormSpec, n: usize, c: usize, channels: usize) -> f64 {
    spec.scale.as_ref().map_or(1.0, |s| s[n * channels + c])
}

/// What a forward pass used: per channel the mean, `1/√(σ²+ε)` and `y = a·x + b` before
/// dropout and ReLU, and the batch statistics when it computed them.
struct Used {
    mean: Vec<f64>,
    inv_std: Vec<f64>,
    a: Vec<f64>,
    b: Vec<f64>,
    stats: Option<BatchStatistics>,
}

/// The op; it keeps the normalisation it used for its backward pass and for the caller.
pub(super) struct BatchNormOp {
    spec: BatchNormSpec,
    used: Mutex<Option<Used>>,
}

impl BatchNormOp {
    pub(super) fn new(spec: &BatchNormSpec) -> Arc<Self> {
        Arc::new(Self { spec: spec.clone(), used: Mutex::new(None) })
    }

    /// The spec this op normalises with.
    pub(super) fn spec(&self) -> &BatchNormSpec {
        &self.spec
    }

    /// The batch statistics of the forward pass, when it computed them.
    pub(super) fn batch_statistics(&self) -> Option<BatchStatistics> {
        self.used.lock().expect("not poisoned").as_ref().and_then(|u| u.stats.clone())
    }

    pub(super) fn forward<T: Real>(&self, d: Dims, x: &[T], gamma: &[T], beta: &[T]) -> Vec<T> {
        let (mean, inv_std, stats) = normalisation(d, x, &self.spec);
        // y = s·(a·x + b) per channel, a = γ/σ, b = β − μ·a.
        let a: Vec<f64> = (0..d.c).map(|c| to_f64(gamma[c]) * inv_std[c]).collect();
        let b: Vec<f64> = (0..d.c).map(|c| to_f64(beta[c]) - mean[c] * a[c]).collect();
        let y = parallel::zeroed_pieces(x.len(), CHUNK * d.c * d.l, |chunk, ys| {
            for (j, row) in ys.chunks_mut(d.l).enumerate() {
                let nc = chunk * CHUNK * d.c + j;
                let map = RowMap::<T>::new(self, &a, &b, d, nc);
                for (v, &xv) in row.iter_mut().zip(&x[nc * d.l..(nc + 1) * d.l]) {
                    *v = map.y(xv);
                }
            }
        });
        *self.used.lock().expect("not poisoned") = Some(Used { mean, inv_std, a, b, stats });
        y
    }

    /// `[∂x flattened, ∂γ, ∂β]` from `x` and `∂y` (the output itself is not needed).
    fn backward<T: Real>(&self, d: Dims, x: &[T], dy: &[T]) -> Result<Vec<T>> {
        let guard = self.used.lock().expect("not poisoned");
        let Some(Used { mean, inv_std, a, b, .. }) = guard.as_ref() else {
            candle_core::bail!("batch_norm: backward before forward")
        };
        let [sum_g, sum_gx] = channel_sums(d, |n, c, i| {
            let map = RowMap::<T>::new(self, a, b, d, n * d.c + c);
            let (sg, sgx) = grad_sums(&x[i..i + d.l], &dy[i..i + d.l], map, from_f64(mean[c]));
            [sg, sgx * inv_std[c]]
        });
        let batch = matches!(self.spec.statistics, Statistics::Batch);
        let m = (d.n * d.l) as f64;
        let rows = d.n * d.c;
        let mut out = parallel::zeroed_pieces(x.len() + 2 * d.c, CHUNK * d.c * d.l, |chunk, dxs| {
            for (j, dx) in dxs.chunks_mut(d.l).enumerate() {
                let nc = chunk * CHUNK * d.c + j;
                if nc >= rows {
                    break; // the ∂γ, ∂β tail, written below
                }
                let (c, i) = (nc % d.c, nc * d.l);
                let map = RowMap::<T>::new(self, a, b, d, nc);
                // ∂x = k·g + (x − μ)·k₂ + k₀ with k = γ/σ = a, k₂ = −k·Σ(g·x̂)/(Mσ), k₀ = −k·Σg/M.
                let k = a[c];
                let (k2, k0) = if batch { (-k * inv_std[c] * sum_gx[c] / m, -k * sum_g[c] / m) } else { (0.0, 0.0) };
                let (k, k2, k0, mu) = (from_f64::<T>(k), from_f64::<T>(k2), from_f64::<T>(k0), from_f64::<T>(mean[c]));
                for ((v, &xv), &dyv) in dx.iter_mut().zip(&x[i..i + d.l]).zip(&dy[i..i + d.l]) {
                    *v = k * map.g(xv, dyv) + (xv - mu) * k2 + k0;
                }
            }
        });
        let dgb = &mut out[x.len()..];
        for c in 0..d.c {
            dgb[c] = from_f64(sum_gx[c]);
            dgb[d.c + c] = from_f64(sum_g[c]);
        }
        Ok(out)
    }
}

/// The forward op handed to candle; the `Arc` is shared with the caller and the backward op.
#[derive(Clone)]
struct Forward(Arc<BatchNormOp>);

impl CustomOp3 for Forward {
    fn name(&self) -> &'static str {
        "goldpan-batch-norm"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let d = Dims::new(xl.dims())?;
        check_channels(d, gl.dims(), bl.dims(), &self.0.spec)?;
        by_dtype!(xs, |T| {
            let y = self.0.forward::<T>(d, slice(xs, xl)?, slice(gs, gl)?, slice(bs, bl)?);
            Ok((T::to_cpu_storage_owned(y), xl.shape().clone()))
        })
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let all = x.apply_op2_no_bwd(&dy.contiguous()?, &Backward(self.0.clone()))?;
        let (len, c) = (x.elem_count(), gamma.elem_count());
        let dx = all.narrow(0, 0, len)?.reshape(x.shape())?;
        Ok((Some(dx), Some(all.narrow(0, len, c)?), Some(all.narrow(0, len + c, c)?)))
    }
}

/// `(x, ∂y) → [∂x, ∂γ, ∂β]`, with what the forward pass used.
pub(super) struct Backward(pub(super) Arc<BatchNormOp>);

impl CustomOp2 for Backward {
    fn name(&self) -> &'static str {
        "goldpan-batch-norm-backward"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, ds: &CpuStorage, dl: &Layout) -> Result<(CpuStorage, Shape)> {
        let d = Dims::new(xl.dims())?;
        by_dtype!(xs, |T| {
            let out = self.0.backward::<T>(d, slice(xs, xl)?, slice(ds, dl)?)?;
            let len = out.len();
            Ok((T::to_cpu_storage_owned(out), Shape::from(len)))
        })
    }
}

pub(super) fn check_channels(d: Dims, gamma: &[usize], beta: &[usize], spec: &BatchNormSpec) -> Result<()> {
    let fixed_ok = match &spec.statistics {
        Statistics::Fixed { mean, var } => mean.len() == d.c && var.len() == d.c,
        Statistics::Batch => d.n * d.l > 1,
    };
    let count = |dims: &[usize]| dims.iter().product::<usize>();
    if count(gamma) != d.c || count(beta) != d.c || !fixed_ok {
        candle_core::bail!(
            "batch_norm: {} channels, but γ {:?}, β {:?} (batch statistics need > 1 value per channel)",
            d.c,
            gamma,
            beta
        )
    }
    if spec.scale.as_ref().is_some_and(|s| s.len() != d.n * d.c) {
        candle_core::bail!("batch_norm: scale needs N·C = {} values", d.n * d.c)
    }
    Ok(())
}

/// Batch norm (+ scale, + ReLU); the fused kernel on CPU, [`batch_norm_slow`] elsewhere.
/// Returns the batch statistics when `spec.statistics` is [`Statistics::Batch`].
pub fn batch_norm(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    spec: &BatchNormSpec,
) -> Result<(Tensor, Option<BatchStatistics>)> {
    if !x.device().is_cpu() {
        return batch_norm_slow(x, gamma, beta, spec);
    }
    let op = BatchNormOp::new(spec);
    let y = x.contiguous()?.apply_op3(&gamma.contiguous()?, &beta.contiguous()?, Forward(op.clone()))?;
    Ok((y, op.batch_statistics()))
}

/// The reference, from candle primitives.
pub fn batch_norm_slow(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    spec: &BatchNormSpec,
) -> Result<(Tensor, Option<BatchStatistics>)> {
    let d = Dims::new(x.dims())?;
    let mut shape = vec![1, d.c];
    shape.resize(x.rank(), 1);
    let (mean, var, stats) = match &spec.statistics {
        Statistics::Batch => {
            let dims: Vec<usize> = (0..x.rank()).filter(|&i| i != 1).collect();
            let mean = x.mean_keepdim(dims.as_slice())?;
            let var = x.broadcast_sub(&mean)?.sqr()?.mean_keepdim(dims.as_slice())?;
            let as_vec = |t: &Tensor| t.flatten_all()?.to_dtype(candle_core::DType::F64)?.to_vec1::<f64>();
            let stats = BatchStatistics { mean: as_vec(&mean)?, var: as_vec(&var)?, count: d.n * d.l };
            (mean, var, Some(stats))
        }
        Statistics::Fixed { mean, var } => {
            let t =
                |v: &Vec<f64>| Tensor::new(v.as_slice(), x.device())?.to_dtype(x.dtype())?.reshape(shape.as_slice());
            (t(mean)?, t(var)?, None)
        }
    };
    let xhat = x.broadcast_sub(&mean)?.broadcast_div(&(var + spec.eps)?.sqrt()?)?;
    let mut y =
        xhat.broadcast_mul(&gamma.reshape(shape.as_slice())?)?.broadcast_add(&beta.reshape(shape.as_slice())?)?;
    if let Some(s) = &spec.scale {
        let mut sshape = vec![d.n, d.c];
        sshape.resize(x.rank(), 1);
        y = y.broadcast_mul(&Tensor::new(s.as_slice(), x.device())?.to_dtype(x.dtype())?.reshape(sshape)?)?;
    }
    if spec.relu {
        y = y.relu()?;
    }
    Ok((y, stats))
}
