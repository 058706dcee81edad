//! Fully connected layer with bias and optional fused ReLU: `x: N×in`, `w: out×in`, `b: out`
//! → `N×out`, as one op forward and two GEMM ops backward.
//!
//! With `z = x·wᵀ + b`, `y = relu(z)` (or `z`): `∂z = ∂y ⊙ [y > 0]`, `∂x = ∂z·w`,
//! `∂w = ∂zᵀ·x`, `∂b = Σₙ ∂z`. The ReLU mask is read from `y` itself, so nothing is stored.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use goldpan_core::ops::{linear, linear_slow};
//! let x = Tensor::randn(0f64, 1.0, (5, 7), &Device::Cpu).unwrap();
//! let w = Tensor::randn(0f64, 1.0, (3, 7), &Device::Cpu).unwrap();
//! let b = Tensor::randn(0f64, 1.0, 3, &Device::Cpu).unwrap();
//! let d = (linear(&x, &w, &b, true).unwrap() - linear_slow(&x, &w, &b, true).unwrap()).unwrap();
//! assert!(d.abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap() < 1e-12);
//! ```
use super::{matmul, parallel, slice, Real};
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, WithDType};
use num_traits::Float;

/// Rows per parallel work item (fixed: the split never depends on the thread count).
const ROWS: usize = 32;

fn forward<T: Real>(x: &[T], w: &[T], b: &[T], (n, fin, fout): (usize, usize, usize), relu: bool) -> Vec<T> {
    parallel::zeroed_pieces(n * fout, ROWS * fout, |chunk, ys| {
        let rows = ys.len() / fout;
        for row in ys.chunks_mut(fout) {
            row.copy_from_slice(b);
        }
        let xs = &x[chunk * ROWS * fin..][..rows * fin];
        matmul(rows, fout, fin, ys, true, xs, fin, 1, w, 1, fin);
        if relu {
            ys.iter_mut().for_each(|v| *v = Float::max(*v, T::zero()));
        }
    })
}

/// `∂z` for rows `lo..hi`: `∂y`, masked by `y > 0` when the layer has a ReLU.
fn grad_z<T: Float>(dy: &[T], y: &[T], relu: bool) -> Vec<T> {
    if relu {
        dy.iter().zip(y).map(|(&d, &v)| if v > T::zero() { d } else { T::zero() }).collect()
    } else {
        dy.to_vec()
    }
}

fn grad_input<T: Real>(dy: &[T], y: &[T], w: &[T], (n, fin, fout): (usize, usize, usize), relu: bool) -> Vec<T> {
    parallel::zeroed_pieces(n * fin, ROWS * fin, |chunk, dxs| {
        let rows = dxs.len() / fin;
        let range = chunk * ROWS * fout..(chunk * ROWS + rows) * fout;
        let dz = grad_z(&dy[range.clone()], &y[range], relu);
        matmul(rows, fin, fout, dxs, false, &dz, fout, 1, w, fin, 1);
    })
}

/// Output features per parallel piece of `∂w`: a quarter of them, at least 16 (from the shape
/// alone, never the thread count). Wide pieces keep the GEMM efficient.
fn features_per_piece(fout: usize) -> usize {
    fout.div_ceil(4).max(16)
}

/// `[∂w flattened, ∂b]`. `∂w = ∂zᵀ·x` is one GEMM over the whole batch per piece of output
/// features: no per-chunk partial of the whole `∂w` to allocate, fill and add up (at DTN's
/// bottleneck, 256×4096 with 64 rows, the partials took 3× the GEMM's time).
fn grad_params<T: Real>(x: &[T], dy: &[T], y: &[T], (n, fin, fout): (usize, usize, usize), relu: bool) -> Vec<T> {
    let dz = grad_z(dy, y, relu);
    let mut db = vec![T::zero(); fout];
    for row in dz.chunks(fout) {
        for (s, &v) in db.iter_mut().zip(row) {
            *s += v;
        }
    }
    let (wn, size) = (fout * fin, features_per_piece(fout) * fin);
    parallel::zeroed_pieces(wn + fout, size, |i, piece| {
        let start = i * size;
        let (dw, tail) = piece.split_at_mut(piece.len().min(wn.saturating_sub(start)));
        if !dw.is_empty() {
            // ∂w rows r0.. (out×in) = ∂zᵀ (out×n) · x (n×in)
            let r0 = start / fin;
            matmul(dw.len() / fin, fin, n, dw, false, &dz[r0..], 1, fout, x, fin, 1);
        }
        // What follows ∂w in this piece is (the start of) ∂b.
        let at = (start + dw.len()).saturating_sub(wn);
        tail.copy_from_slice(&db[at..at + tail.len()]);
    })
}

fn sizes(x: &Layout, w: &Layout) -> Result<(usize, usize, usize)> {
    let (n, fin) = x.shape().dims2()?;
    let (fout, win) = w.shape().dims2()?;
    if fin != win {
        candle_core::bail!("linear: input {:?} does not match weight {:?}", x.dims(), w.dims())
    }
    Ok((n, fin, fout))
}

struct Linear {
    relu: bool,
}

impl CustomOp3 for Linear {
    fn name(&self) -> &'static str {
        "goldpan-linear"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let dims = sizes(xl, wl)?;
        by_dtype!(xs, |T| {
            let y = forward::<T>(slice(xs, xl)?, slice(ws, wl)?, slice(bs, bl)?, dims, self.relu);
            Ok((T::to_cpu_storage_owned(y), Shape::from((dims.0, dims.2))))
        })
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let dx = if x.track_op() {
            Some(dy.apply_op3_no_bwd(w, y, &GradInput { relu: self.relu, fin: w.dim(1)? })?)
        } else {
            None
        };
        let dwb = x.apply_op3_no_bwd(&dy, y, &GradParams { relu: self.relu })?;
        let (fout, fin) = w.dims2()?;
        Ok((dx, Some(dwb.narrow(0, 0, fout * fin)?.reshape((fout, fin))?), Some(dwb.narrow(0, fout * fin, fout)?)))
    }
}

/// `(∂y, w, y) → ∂x`.
struct GradInput {
    relu: bool,
    fin: usize,
}

impl CustomOp3 for GradInput {
    fn name(&self) -> &'static str {
        "goldpan-linear-grad-input"
    }

    fn cpu_fwd(
        &self,
        dys: &CpuStorage,
        dyl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        ys: &CpuStorage,
        yl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, fout) = dyl.shape().dims2()?;
        let dims = (n, self.fin, fout);
        by_dtype!(dys, |T| {
            let dx = grad_input::<T>(slice(dys, dyl)?, slice(ys, yl)?, slice(ws, wl)?, dims, self.relu);
            Ok((T::to_cpu_storage_owned(dx), Shape::from((n, self.fin))))
        })
    }
}

/// `(x, ∂y, y) → [∂w flattened, ∂b]`.
struct GradParams {
    relu: bool,
}

impl CustomOp3 for GradParams {
    fn name(&self) -> &'static str {
        "goldpan-linear-grad-params"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        dys: &CpuStorage,
        dyl: &Layout,
        ys: &CpuStorage,
        yl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, fin) = xl.shape().dims2()?;
        let (_, fout) = dyl.shape().dims2()?;
        by_dtype!(xs, |T| {
            let g = grad_params::<T>(slice(xs, xl)?, slice(dys, dyl)?, slice(ys, yl)?, (n, fin, fout), self.relu);
            let len = g.len();
            Ok((T::to_cpu_storage_owned(g), Shape::from(len)))
        })
    }
}

/// The layer's kernels on plain slices (no ReLU), outside candle's graph, for the
/// second-order engine (`crate::program`). `dims = (n, in, out)`.
pub(crate) mod kernels {
    use super::Real;

    /// `x·wᵀ + b`.
    pub(crate) fn forward<T: Real>(x: &[T], w: &[T], b: &[T], dims: (usize, usize, usize)) -> Vec<T> {
        super::forward(x, w, b, dims, false)
    }

    /// `∂y·w`.
    pub(crate) fn grad_input<T: Real>(dy: &[T], w: &[T], dims: (usize, usize, usize)) -> Vec<T> {
        super::grad_input(dy, dy, w, dims, false)
    }

    /// `(∂w, ∂b) = (∂yᵀ·x, Σₙ ∂y)`.
    pub(crate) fn grad_params<T: Real>(x: &[T], dy: &[T], dims: (usize, usize, usize)) -> (Vec<T>, Vec<T>) {
        let mut dw = super::grad_params(x, dy, dy, dims, false);
        let db = dw.split_off(dims.1 * dims.2);
        (dw, db)
    }
}

/// `x·wᵀ + b`, then ReLU if `relu`; the fast kernel on CPU, [`linear_slow`] elsewhere.
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor, relu: bool) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return linear_slow(x, w, b, relu);
    }
    x.contiguous()?.apply_op3(&w.contiguous()?, &b.contiguous()?, Linear { relu })
}

/// The reference: candle's matmul, broadcast add and ReLU.
pub fn linear_slow(x: &Tensor, w: &Tensor, b: &Tensor, relu: bool) -> Result<Tensor> {
    let z = x.matmul(&w.t()?)?.broadcast_add(b)?;
    if relu {
        z.relu()
    } else {
        Ok(z)
    }
}
