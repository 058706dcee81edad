//! 2-D convolution with bias, `x: N×C×H×W`, `w: O×C×K×K`, `b: O` → `N×O×OH×OW`, as
//! im2col + GEMM forward and GEMM (+ col2im) for both gradients.
//!
//! Per image, with `col = im2col(x)` of shape `(C·K·K) × (OH·OW)`:
//! `y = w·col + b`, `∂w = Σₙ ∂y·colᵀ`, `∂b = Σₙ Σ_pixels ∂y`, `∂x = col2im(wᵀ·∂y)`.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use goldpan_core::ops::{conv2d, conv2d_slow, Conv2dSpec};
//! let x = Tensor::randn(0f64, 1.0, (2, 3, 8, 8), &Device::Cpu).unwrap();
//! let w = Tensor::randn(0f64, 1.0, (4, 3, 3, 3), &Device::Cpu).unwrap();
//! let b = Tensor::randn(0f64, 1.0, 4, &Device::Cpu).unwrap();
//! let spec = Conv2dSpec { stride: 2, padding: 1 };
//! let d = (conv2d(&x, &w, &b, spec).unwrap() - conv2d_slow(&x, &w, &b, spec).unwrap()).unwrap();
//! assert!(d.abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap() < 1e-12);
//! ```
use super::{matmul, parallel, slice, Real, Scratch};
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor, WithDType};
use num_traits::Float;
use std::any::Any;
use std::mem::MaybeUninit;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dSpec {
    pub stride: usize,
    pub padding: usize,
}

impl Default for Conv2dSpec {
    fn default() -> Self {
        Self { stride: 1, padding: 0 }
    }
}

/// Sizes of one convolution.
#[derive(Debug, Clone, Copy)]
pub(super) struct Geometry {
    pub(super) n: usize,
    c: usize,
    h: usize,
    w: usize,
    pub(super) o: usize,
    k: usize,
    stride: usize,
    pad: usize,
    pub(super) oh: usize,
    pub(super) ow: usize,
    /// Images per parallel work item; see [`Geometry::chunk_size`].
    chunk: usize,
}

/// Target size (values) of one work item's im2col matrix: large enough that the GEMM's packing
/// of the kernel is amortised over many columns, small enough to stay near the core's L2
/// cache. 4 MB measured best on DTN (2 MB: −3 %, 8 MB: −4 %); LeNets hit the 16-image cap.
const COL_BUDGET: usize = 1 << 20;

/// The same for the input gradient's `wᵀ·∂y` matrix, which col2im then reads back piecemeal:
/// 1 MB, to stay in L2 (DTN b64 +2.6 % over 4 MB).
const DCOL_BUDGET: usize = 1 << 18;

impl Geometry {
    pub(super) fn new(x: &[usize], w: &[usize], spec: Conv2dSpec) -> Result<Self> {
        let (&[n, c, h, wd], &[o, cw, k, k2]) = (x, w) else {
            candle_core::bail!("conv2d: expected 4-D input and kernel, got {x:?} and {w:?}")
        };
        if c != cw || k != k2 || spec.stride == 0 || h + 2 * spec.padding < k || wd + 2 * spec.padding < k {
            candle_core::bail!(
                "conv2d: input {x:?} and square kernel {w:?} do not fit (stride {}, padding {})",
                spec.stride,
                spec.padding
            )
        }
        let out = |s: usize| (s + 2 * spec.padding - k) / spec.stride + 1;
        let (oh, ow) = (out(h), out(wd));
        let chunk = Self::chunk_size(c * k * k * oh * ow, COL_BUDGET);
        Ok(Self { n, c, h, w: wd, o, k, stride: spec.stride, pad: spec.padding, oh, ow, chunk })
    }

    /// Images per work item, from the layer's shape alone (never the thread count, so results
    /// do not depend on it): the power of two in 1..=16 whose im2col matrix is nearest below
    /// `budget`. Small layers (LeNet's) get 16 images, DTN's wide ones 8–16 ([`COL_BUDGET`]).
    fn chunk_size(col_per_image: usize, budget: usize) -> usize {
        let mut chunk = 16;
        while chunk > 1 && chunk * col_per_image > budget {
            chunk /= 2;
        }
        chunk
    }

    /// Number of work items.
    fn chunks(&self) -> usize {
        self.n.div_ceil(self.chunk)
    }

    /// Rows of `col`: `C·K·K`.
    fn rows(&self) -> usize {
        self.c * self.k * self.k
    }

    /// Columns of `col`: output pixels per channel.
    fn pixels(&self) -> usize {
        self.oh * self.ow
    }

    fn image(&self) -> usize {
        self.c * self.h * self.w
    }

    fn out_image(&self) -> usize {
        self.o * self.pixels()
    }
}

/// The zero-padded image split into `s × s` phase planes (`s` the stride):
/// `phases[c][a][b][u][v] = x[c, u·s + a − p, v·s + b − p]`, zero outside the image. Kernel
/// offset `(ki, kj)` then reads plane `(ki mod s, kj mod s)` from `(i + ki/s, j + kj/s)`: a
/// contiguous run of `OW` values per output row, with no bounds checks and no strided loads.
#[derive(Debug, Clone)]
struct Phases {
    /// Rows and columns of one plane.
    hq: usize,
    wq: usize,
    /// The runs of one channel, precomputed: see [`Phases::runs`].
    runs: Vec<Run>,
}

/// Input row `si`, columns `sj0, sj0 + s, …` fill phase values `at + v0 .. at + v1`.
#[derive(Debug, Clone)]
struct Run {
    at: usize,
    si: usize,
    v: std::ops::Range<usize>,
    sj0: usize,
}

impl Phases {
    fn new(g: &Geometry) -> Self {
        let mut q =
            Self { hq: (g.h + 2 * g.pad).div_ceil(g.stride), wq: (g.w + 2 * g.pad).div_ceil(g.stride), runs: vec![] };
        q.runs = q.runs(g);
        q
    }

    fn plane(&self) -> usize {
        self.hq * self.wq
    }

    /// Values per image: `C · s² · hq · wq`.
    fn len(&self, g: &Geometry) -> usize {
        g.c * g.stride * g.stride * self.plane()
    }

    /// Start of the run that kernel row `(c, ki, kj)` reads for output row `i`.
    fn run(&self, g: &Geometry, c: usize, ki: usize, kj: usize, i: usize) -> usize {
        let s = g.stride;
        let plane = (c * s + ki % s) * s + kj % s;
        plane * self.plane() + (i + ki / s) * self.wq + kj / s
    }

    /// Where each input row's pixels go in the phase planes of its channel.
    fn runs(&self, g: &Geometry) -> Vec<Run> {
        let s = g.stride;
        let mut runs = Vec::new();
        for a in 0..s {
            for u in 0..self.hq {
                let Some(si) = (u * s + a).checked_sub(g.pad).filter(|&si| si < g.h) else { continue };
                for b in 0..s {
                    let v0 = g.pad.saturating_sub(b).div_ceil(s);
                    let v1 = (g.w + g.pad).saturating_sub(b).div_ceil(s).min(self.wq);
                    if v0 < v1 {
                        runs.push(Run {
                            at: (a * s + b) * self.plane() + u * self.wq,
                            si,
                            v: v0..v1,
                            sj0: v0 * s + b - g.pad,
                        });
                    }
                }
            }
        }
        runs
    }
}

/// `dst = src` for short runs: eight values at a time through fixed-size copies, which
/// compile to vector moves rather than a `memcpy` call per run. `dst` may be uninitialised.
#[inline(always)]
fn copy_run<T: Copy>(dst: &mut [MaybeUninit<T>], src: &[T]) {
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (d, s) in (&mut d).zip(&mut s) {
        let s: [T; 8] = s.try_into().expect("eight values");
        d.copy_from_slice(&s.map(MaybeUninit::new));
    }
    for (d, s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        d.write(*s);
    }
}

/// `dst += src` for short runs.
#[inline(always)]
fn add_run<T: Float>(dst: &mut [T], src: &[T]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = *d + s;
    }
}

/// Fills `phases` (length [`Phases::len`]) from one image.
fn to_phases<T: Float>(g: &Geometry, q: &Phases, x: &[T], phases: &mut [T]) {
    let per_channel = g.stride * g.stride * q.plane();
    if g.pad > 0 || g.stride > 1 {
        phases.fill(T::zero());
    }
    for c in 0..g.c {
        let (src, dst) = (&x[c * g.h * g.w..][..g.h * g.w], &mut phases[c * per_channel..][..per_channel]);
        for r in &q.runs {
            let row = &src[r.si * g.w + r.sj0..(r.si + 1) * g.w];
            for (d, &v) in dst[r.at + r.v.start..r.at + r.v.end].iter_mut().zip(row.iter().step_by(g.stride)) {
                *d = v;
            }
        }
    }
}

/// The adjoint of [`to_phases`]: adds each image pixel's phase value into `x`.
fn from_phases_add<T: Float>(g: &Geometry, q: &Phases, phases: &[T], x: &mut [T]) {
    let per_channel = g.stride * g.stride * q.plane();
    for c in 0..g.c {
        let (src, dst) = (&phases[c * per_channel..][..per_channel], &mut x[c * g.h * g.w..][..g.h * g.w]);
        for r in &q.runs {
            let row = &mut dst[r.si * g.w + r.sj0..(r.si + 1) * g.w];
            for (d, &v) in row.iter_mut().step_by(g.stride).zip(&src[r.at + r.v.start..r.at + r.v.end]) {
                *d = *d + v;
            }
        }
    }
}

/// Runs `$f::<T, W>` with the output width `W` as a compile-time constant for the widths of
/// the registry models (DTN: 16, 8, 4; LeNets: 24, 8), else `W = 0` (read at run time):
/// with a known width each run of the copies below compiles to fixed-size vector moves
/// instead of a loop. DTN's 4- and 8-wide runs number 1.6 million per training step.
macro_rules! with_width {
    ($ow:expr, $f:ident::<$t:ty>($($arg:expr),*)) => {
        match $ow {
            4 => $f::<$t, 4>($($arg),*),
            8 => $f::<$t, 8>($($arg),*),
            16 => $f::<$t, 16>($($arg),*),
            24 => $f::<$t, 24>($($arg),*),
            _ => $f::<$t, 0>($($arg),*),
        }
    };
}

/// `col[(c,ki,kj), (i,j)] = x[c, i·s+ki−p, j·s+kj−p]`, zero outside the image, read from the
/// image's phase planes; rows of `col` are `ld` apart, so that the columns of several images
/// sit side by side. Writes each of the image's `C·K·K × OH·OW` entries, so `col` may start
/// uninitialised.
fn im2col<T: Float>(g: &Geometry, q: &Phases, phases: &[T], col: &mut [MaybeUninit<T>], ld: usize) {
    with_width!(g.ow, im2col_at::<T>(g, q, phases, col, ld))
}

/// [`im2col`] for output width `W` (0: `g.ow`).
#[inline(always)]
fn im2col_at<T: Float, const W: usize>(g: &Geometry, q: &Phases, phases: &[T], col: &mut [MaybeUninit<T>], ld: usize) {
    let w = if W == 0 { g.ow } else { W };
    for c in 0..g.c {
        for ki in 0..g.k {
            for kj in 0..g.k {
                let row = &mut col[((c * g.k + ki) * g.k + kj) * ld..][..g.pixels()];
                let base = q.run(g, c, ki, kj, 0);
                for (i, out) in row.chunks_exact_mut(w).enumerate() {
                    copy_run(out, &phases[base + i * q.wq..][..w]);
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds each `col` entry into the phase position it came from.
fn col2im_add<T: Float>(g: &Geometry, q: &Phases, col: &[T], ld: usize, phases: &mut [T]) {
    with_width!(g.ow, col2im_add_at::<T>(g, q, col, ld, phases))
}

/// [`col2im_add`] for output width `W` (0: `g.ow`).
#[inline(always)]
fn col2im_add_at<T: Float, const W: usize>(g: &Geometry, q: &Phases, col: &[T], ld: usize, phases: &mut [T]) {
    let w = if W == 0 { g.ow } else { W };
    for c in 0..g.c {
        for ki in 0..g.k {
            for kj in 0..g.k {
                let row = &col[((c * g.k + ki) * g.k + kj) * ld..][..g.pixels()];
                let base = q.run(g, c, ki, kj, 0);
                for (i, src) in row.chunks_exact(w).enumerate() {
                    add_run(&mut phases[base + i * q.wq..][..w], src);
                }
            }
        }
    }
}

/// The im2col matrix of images `lo..hi`, side by side: `(C·K·K) × ((hi−lo)·OH·OW)`.
fn im2col_chunk<T: Real>(g: &Geometry, x: &[T], (lo, hi): (usize, usize), col: &mut Vec<T>) {
    let (l, ld, q) = (g.pixels(), (hi - lo) * g.pixels(), Phases::new(g));
    // Filled without zeroing first: a kept matrix is a fresh allocation every step.
    col.clear();
    col.reserve(g.rows() * ld);
    let mut phases = Scratch::take();
    phases.resize(q.len(g), T::zero());
    for n in lo..hi {
        to_phases(g, &q, &x[n * g.image()..(n + 1) * g.image()], &mut phases);
        im2col(g, &q, &phases, &mut col.spare_capacity_mut()[(n - lo) * l..], ld);
    }
    // SAFETY: the images `lo..hi` wrote the columns `(n − lo)·l ..` of every row: all of them.
    unsafe { col.set_len(g.rows() * ld) };
}

/// Images `lo..hi` of an `N×O×L` tensor as one `O × ((hi−lo)·L)` matrix.
fn gather_channels<T: Float>(g: &Geometry, y: &[T], (lo, hi): (usize, usize), out: &mut Vec<T>) {
    let (l, ld) = (g.pixels(), (hi - lo) * g.pixels());
    out.resize(g.o * ld, T::zero());
    for n in lo..hi {
        for (o, row) in y[n * g.out_image()..(n + 1) * g.out_image()].chunks(l).enumerate() {
            out[o * ld + (n - lo) * l..][..l].copy_from_slice(row);
        }
    }
}

/// The image range of work chunk `chunk`.
fn chunk_range(g: &Geometry, chunk: usize) -> (usize, usize) {
    (chunk * g.chunk, ((chunk + 1) * g.chunk).min(g.n))
}

/// Per chunk of images, one GEMM `w · col` over all of their pixels.
/// The im2col matrix of each chunk of a forward pass, kept (when gradients will be taken) so
/// that the weight gradient does not rebuild it.
type Cols<T> = Vec<Mutex<Option<Vec<T>>>>;

fn forward<T: Real>(g: &Geometry, x: &[T], w: &[T], b: &[T], keep: Option<&Cols<T>>) -> Vec<T> {
    parallel::zeroed_pieces(g.n * g.out_image(), g.chunk * g.out_image(), |chunk, ys| {
        let (lo, hi) = chunk_range(g, chunk);
        let (l, ld) = (g.pixels(), (hi - lo) * g.pixels());
        let (mut pooled, mut out) = (Scratch::take(), Scratch::take());
        let mut kept = Vec::new();
        let col: &mut Vec<T> = if keep.is_some() { &mut kept } else { &mut pooled };
        out.resize(g.o * ld, T::zero());
        im2col_chunk(g, x, (lo, hi), col);
        matmul(g.o, ld, g.rows(), &mut out, false, w, g.rows(), 1, col, ld, 1);
        if let Some(cols) = keep {
            *cols[chunk].lock().expect("not poisoned") = Some(kept);
        }
        for (i, y) in ys.chunks_mut(g.out_image()).enumerate() {
            for (o, row) in y.chunks_mut(l).enumerate() {
                for (v, &r) in row.iter_mut().zip(&out[o * ld + i * l..][..l]) {
                    *v = r + b[o];
                }
            }
        }
    })
}

/// `∂x` from `∂y` and `w`: per chunk, `col2im(wᵀ·∂y)`.
fn grad_input<T: Real>(g: &Geometry, dy: &[T], w: &[T]) -> Vec<T> {
    let g = &Geometry { chunk: Geometry::chunk_size(g.rows() * g.pixels(), DCOL_BUDGET), ..*g };
    parallel::zeroed_pieces(g.n * g.image(), g.chunk * g.image(), |chunk, dxs| {
        let (lo, hi) = chunk_range(g, chunk);
        let (l, ld) = (g.pixels(), (hi - lo) * g.pixels());
        let (mut dyc, mut dcol) = (Scratch::take(), Scratch::take());
        dcol.resize(g.rows() * ld, T::zero());
        gather_channels(g, dy, (lo, hi), &mut dyc);
        matmul(g.rows(), ld, g.o, &mut dcol, false, w, 1, g.rows(), &dyc, ld, 1);
        let (q, mut phases) = (Phases::new(g), Scratch::take());
        for (i, dx) in dxs.chunks_mut(g.image()).enumerate() {
            phases.clear();
            phases.resize(q.len(g), T::zero());
            col2im_add(g, &q, &dcol[i * l..], ld, &mut phases);
            from_phases_add(g, &q, &phases, dx);
        }
    })
}

/// Images per partial sum of the parameter gradient: a multiple of every chunk size, larger
/// than most, so that few
/// weight-sized partials are allocated, fixed so that the sum order never changes.
const GROUP: usize = 32;

/// `∂w` and `∂b` from `x` and `∂y`: one partial per group of images (chunk by chunk inside),
/// then the partials summed in group order.
fn grad_params<T: Real>(g: &Geometry, x: &[T], dy: &[T], kept: Option<&Cols<T>>) -> (Vec<T>, Vec<T>) {
    let (wn, bn) = (g.o * g.rows(), g.o);
    let partials: Vec<Vec<T>> = parallel::map(g.n.div_ceil(GROUP), |group| {
        let mut acc = vec![T::zero(); wn + bn];
        let (dw, db) = acc.split_at_mut(wn);
        let (mut col, mut dyc) = (Scratch::take(), Scratch::take());
        for chunk in group * GROUP / g.chunk..((group + 1) * GROUP / g.chunk).min(g.chunks()) {
            let (lo, hi) = chunk_range(g, chunk);
            let ld = (hi - lo) * g.pixels();
            let cached = kept.and_then(|k| k[chunk].lock().expect("not poisoned").take());
            let col: &Vec<T> = match &cached {
                Some(c) => c,
                None => {
                    im2col_chunk(g, x, (lo, hi), &mut col);
                    &col
                }
            };
            gather_channels(g, dy, (lo, hi), &mut dyc);
            // ∂w (O×K) += ∂y (O × ld) · colᵀ (ld × K)
            matmul(g.o, g.rows(), ld, dw, true, &dyc, ld, 1, col, 1, ld);
            for (o, row) in dyc.chunks(ld).enumerate() {
                db[o] = row.iter().fold(db[o], |s, &v| s + v);
            }
        }
        acc
    });
    let mut total = parallel::sum_in_order(&partials);
    let db = total.split_off(wn);
    (total, db)
}

/// Type-erased [`Cols`] of the forward pass (f32 or f64), handed to the weight gradient.
type KeptCols = Arc<Mutex<Option<Box<dyn Any + Send>>>>;

pub(super) struct Conv2d {
    pub(super) spec: Conv2dSpec,
    /// `Some` when gradients will be taken (see [`super::grad_enabled`]).
    kept: Option<KeptCols>,
}

impl Conv2d {
    /// The op, keeping its im2col matrices for the backward pass unless inside [`super::no_grad`].
    pub(super) fn new(spec: Conv2dSpec) -> Self {
        Self { spec, kept: super::grad_enabled().then(KeptCols::default) }
    }

    /// The forward pass, keeping the im2col matrices when asked to.
    pub(super) fn run<T: Real>(&self, g: &Geometry, x: &[T], w: &[T], b: &[T]) -> Vec<T> {
        let cols: Option<Cols<T>> = self.kept.as_ref().map(|_| (0..g.chunks()).map(|_| Mutex::new(None)).collect());
        let y = forward::<T>(g, x, w, b, cols.as_ref());
        if let (Some(kept), Some(cols)) = (&self.kept, cols) {
            *kept.lock().expect("not poisoned") = Some(Box::new(cols));
        }
        y
    }

    /// `(∂x, ∂w, ∂b)` from `∂y` (contiguous), with the im2col matrices `run` kept.
    pub(super) fn backward(
        &self,
        x: &Tensor,
        w: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        backward(self.spec, self.kept.as_ref(), x, w, dy)
    }
}

impl CustomOp3 for Conv2d {
    fn name(&self) -> &'static str {
        "goldpan-conv2d"
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
        let g = Geometry::new(xl.dims(), wl.dims(), self.spec)?;
        by_dtype!(xs, |T| {
            let y = self.run::<T>(&g, slice(xs, xl)?, slice(ws, wl)?, slice(bs, bl)?);
            Ok((T::to_cpu_storage_owned(y), Shape::from((g.n, g.o, g.oh, g.ow))))
        })
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        self.backward(x, w, &dy.contiguous()?)
    }
}

/// `(∂x, ∂w, ∂b)` of a convolution from `∂y` (contiguous); `∂x` only if `x` is tracked.
fn backward(
    spec: Conv2dSpec,
    kept: Option<&KeptCols>,
    x: &Tensor,
    w: &Tensor,
    dy: &Tensor,
) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
    // The network's input needs no gradient: skip the most expensive of the three.
    let dx = if x.track_op() { Some(dy.apply_op2_no_bwd(w, &GradInput { spec, input: x.dims4()? })?) } else { None };
    let kept = kept.and_then(|k| k.lock().expect("not poisoned").take());
    let dwb = x.apply_op2_no_bwd(dy, &GradParams { spec, kernel: w.dims4()?, kept: Mutex::new(kept) })?;
    let (o, rows) = (w.dim(0)?, w.elem_count() / w.dim(0)?);
    let dw = dwb.narrow(0, 0, o * rows)?.reshape(w.shape())?;
    let db = dwb.narrow(0, o * rows, o)?;
    Ok((dx, Some(dw), Some(db)))
}

/// Convolution, then `k×k` max-pooling and ReLU, as one op: the full-size convolution output
/// never becomes a graph tensor (it is kept here for the backward pass), which saves its
/// gradient's allocation and candle's zero-fill-and-add accumulation of it.
struct ConvPoolRelu {
    conv: Conv2d,
    k: usize,
    /// The convolution output (`Vec<f32>` or `Vec<f64>`) and its `(N, O, OH, OW)`.
    y: Mutex<Option<(Box<dyn Any + Send>, Dims4)>>,
}

impl CustomOp3 for ConvPoolRelu {
    fn name(&self) -> &'static str {
        "goldpan-conv2d-max-pool-relu"
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
        let g = Geometry::new(xl.dims(), wl.dims(), self.conv.spec)?;
        let (n, o, oh, ow, k) = (g.n, g.o, g.oh, g.ow, self.k);
        by_dtype!(xs, |T| {
            let y = self.conv.run::<T>(&g, slice(xs, xl)?, slice(ws, wl)?, slice(bs, bl)?);
            let pooled = super::max_pool2d::forward::<T>(&y, (oh, ow), k, true);
            *self.y.lock().expect("not poisoned") = Some((Box::new(y), (n, o, oh, ow)));
            Ok((T::to_cpu_storage_owned(pooled), Shape::from((n, o, oh / k, ow / k))))
        })
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _out: &Tensor,
        dout: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let Some((y, dims)) = self.y.lock().expect("not poisoned").take() else {
            candle_core::bail!("conv2d_max_pool_relu: backward ran twice")
        };
        let dy = dout.contiguous()?.apply_op1_no_bwd(&PoolBackward { k: self.k, y: Mutex::new(Some(y)), dims })?;
        self.conv.backward(x, w, &dy)
    }
}

type Dims4 = (usize, usize, usize, usize);

/// `∂pooled → ∂y` of the convolution output held in `y`.
struct PoolBackward {
    k: usize,
    y: Mutex<Option<Box<dyn Any + Send>>>,
    dims: (usize, usize, usize, usize),
}

impl candle_core::CustomOp1 for PoolBackward {
    fn name(&self) -> &'static str {
        "goldpan-conv2d-max-pool-relu-backward"
    }

    fn cpu_fwd(&self, ds: &CpuStorage, dl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (_, _, oh, ow) = self.dims;
        let y = self.y.lock().expect("not poisoned").take();
        by_dtype!(ds, |T| {
            let Some(y) = y.as_ref().and_then(|y| y.downcast_ref::<Vec<T>>()) else {
                candle_core::bail!("conv2d_max_pool_relu: forward output missing or of another type")
            };
            let dy = super::max_pool2d::backward::<T>(y, slice(ds, dl)?, (oh, ow), self.k, true);
            Ok((T::to_cpu_storage_owned(dy), Shape::from(self.dims)))
        })
    }
}

/// `(∂y, w) → ∂x`.
struct GradInput {
    spec: Conv2dSpec,
    input: (usize, usize, usize, usize),
}

impl CustomOp2 for GradInput {
    fn name(&self) -> &'static str {
        "goldpan-conv2d-grad-input"
    }

    fn cpu_fwd(&self, dys: &CpuStorage, dyl: &Layout, ws: &CpuStorage, wl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = self.input;
        let g = Geometry::new(&[n, c, h, w], wl.dims(), self.spec)?;
        by_dtype!(dys, |T| {
            let dx = grad_input::<T>(&g, slice(dys, dyl)?, slice(ws, wl)?);
            Ok((T::to_cpu_storage_owned(dx), Shape::from(self.input)))
        })
    }
}

/// `(x, ∂y) → [∂w flattened, ∂b]`, one buffer so the batch is walked once.
struct GradParams {
    spec: Conv2dSpec,
    kernel: (usize, usize, usize, usize),
    kept: Mutex<Option<Box<dyn Any + Send>>>,
}

impl CustomOp2 for GradParams {
    fn name(&self) -> &'static str {
        "goldpan-conv2d-grad-params"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, dys: &CpuStorage, dyl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (o, c, k, _) = self.kernel;
        let g = Geometry::new(xl.dims(), &[o, c, k, k], self.spec)?;
        by_dtype!(xs, |T| {
            let kept = self.kept.lock().expect("not poisoned").take();
            let cols = kept.as_ref().and_then(|k| k.downcast_ref::<Cols<T>>());
            let (mut dw, db) = grad_params::<T>(&g, slice(xs, xl)?, slice(dys, dyl)?, cols);
            dw.extend(db);
            let len = dw.len();
            Ok((T::to_cpu_storage_owned(dw), Shape::from(len)))
        })
    }
}

/// One convolution's kernels on plain slices, outside candle's graph, for the second-order
/// engine (`crate::program`), which needs them with other arguments than training does
/// (tangents, second-order adjoints).
pub(crate) struct ConvKernels(Geometry);

impl ConvKernels {
    pub(crate) fn new(input: &[usize], kernel: &[usize], spec: Conv2dSpec) -> Result<Self> {
        Geometry::new(input, kernel, spec).map(Self)
    }

    /// `(N, O, OH, OW)`.
    pub(crate) fn output(&self) -> [usize; 4] {
        let g = &self.0;
        [g.n, g.o, g.oh, g.ow]
    }

    /// `conv(x, w) + b`.
    pub(crate) fn forward<T: Real>(&self, x: &[T], w: &[T], b: &[T]) -> Vec<T> {
        forward(&self.0, x, w, b, None)
    }

    /// `∂x` from `∂y`.
    pub(crate) fn grad_input<T: Real>(&self, dy: &[T], w: &[T]) -> Vec<T> {
        grad_input(&self.0, dy, w)
    }

    /// `(∂w, ∂b)` from `x` and `∂y`.
    pub(crate) fn grad_params<T: Real>(&self, x: &[T], dy: &[T]) -> (Vec<T>, Vec<T>) {
        grad_params(&self.0, x, dy, None)
    }

    /// Rows of the im2col matrix, `C·K·K`: one kernel's values.
    pub(crate) fn rows(&self) -> usize {
        self.0.rows()
    }

    /// One image's im2col matrix: `C·K·K` rows (the kernel's layout) of `OH·OW` columns.
    pub(crate) fn patches<T: Real>(&self, image: &[T]) -> Vec<T> {
        let mut col = Vec::new();
        im2col_chunk(&Geometry { n: 1, ..self.0 }, image, (0, 1), &mut col);
        col
    }

    /// Per-sample parameter gradients for each of several cotangents `dys[c]` (`N×O×OH×OW`
    /// each): row `n·C + c` holds image `n`'s `∂w` (`O×K`) then `∂b` (`O`). One im2col and one
    /// GEMM per image serve all cotangents (the per-sample Jacobians of the NTK).
    pub(crate) fn sample_grad_params<T: Real>(&self, x: &[T], dys: &[&[T]]) -> Vec<T> {
        let g = &self.0;
        let (classes, k, l, out) = (dys.len(), g.rows(), g.pixels(), g.out_image());
        let (one, width) = (Geometry { n: 1, ..*g }, g.o * k + g.o);
        parallel::zeroed_pieces(g.n * classes * width, classes * width, |n, rows| {
            let (mut col, mut dy, mut dw) = (Scratch::take(), Scratch::take(), Scratch::take());
            im2col_chunk(&one, &x[n * g.image()..][..g.image()], (0, 1), &mut col);
            dy.clear();
            dys.iter().for_each(|d| dy.extend_from_slice(&d[n * out..][..out]));
            // ∂w of every cotangent ((C·O) × K) = ∂y ((C·O) × L) · colᵀ (L × K)
            dw.resize(classes * g.o * k, T::zero());
            matmul(classes * g.o, k, l, &mut dw, false, &dy, l, 1, &col, 1, l);
            for ((row, dwc), dyc) in rows.chunks_mut(width).zip(dw.chunks(g.o * k)).zip(dy.chunks(out)) {
                row[..g.o * k].copy_from_slice(dwc);
                for (b, r) in row[g.o * k..].iter_mut().zip(dyc.chunks(l)) {
                    *b = r.iter().fold(T::zero(), |s, &v| s + v);
                }
            }
        })
    }

    /// This convolution with `parts` kernels stacked along the output channels.
    fn stacked(&self, parts: usize) -> Geometry {
        Geometry { o: self.0.o * parts, ..self.0 }
    }

    /// Output-shaped arrays (`N×O×OH×OW` each) as one `N×(parts·O)×OH×OW` array, image by
    /// image: the output of [`ConvKernels::stacked`].
    fn stack_outputs<T: Real>(&self, parts: &[&[T]]) -> Vec<T> {
        let part = self.0.out_image();
        let mut out = Vec::with_capacity(parts.len() * self.0.n * part);
        for i in 0..self.0.n {
            for p in parts {
                out.extend_from_slice(&p[i * part..(i + 1) * part]);
            }
        }
        out
    }

    /// `conv(x, wᵢ) + bᵢ` for several kernels of this shape at once: one im2col of `x` and one
    /// GEMM with the kernels stacked.
    pub(crate) fn forward_many<T: Real>(&self, x: &[T], kernels: &[(&[T], &[T])]) -> Vec<Vec<T>> {
        if let [(w, b)] = kernels {
            return vec![self.forward(x, w, b)];
        }
        let g = self.stacked(kernels.len());
        let w: Vec<T> = kernels.iter().flat_map(|k| k.0.iter().copied()).collect();
        let b: Vec<T> = kernels.iter().flat_map(|k| k.1.iter().copied()).collect();
        let y = forward(&g, x, &w, &b, None);
        let part = self.0.out_image();
        (0..kernels.len())
            .map(|j| y.chunks(g.out_image()).flat_map(|img| img[j * part..(j + 1) * part].iter().copied()).collect())
            .collect()
    }

    /// `Σᵢ ∂x(∂yᵢ, wᵢ)`: one GEMM over the stacked kernels and one col2im.
    pub(crate) fn grad_input_sum<T: Real>(&self, terms: &[(&[T], &[T])]) -> Vec<T> {
        let g = self.stacked(terms.len());
        let w: Vec<T> = terms.iter().flat_map(|t| t.1.iter().copied()).collect();
        let dys: Vec<&[T]> = terms.iter().map(|t| t.0).collect();
        grad_input(&g, &self.stack_outputs(&dys), &w)
    }

    /// `(∂w, ∂b)` from `x` and each of several `∂y`: one im2col of `x` and one GEMM.
    pub(crate) fn grad_params_many<T: Real>(&self, x: &[T], dys: &[&[T]]) -> Vec<(Vec<T>, Vec<T>)> {
        if let [dy] = dys {
            return vec![self.grad_params(x, dy)];
        }
        let g = self.stacked(dys.len());
        let (dw, db) = grad_params(&g, x, &self.stack_outputs(dys), None);
        let (wn, o) = (self.0.o * self.0.rows(), self.0.o);
        (0..dys.len()).map(|j| (dw[j * wn..(j + 1) * wn].to_vec(), db[j * o..(j + 1) * o].to_vec())).collect()
    }
}

/// Convolution plus bias; the fast kernel on CPU, [`conv2d_slow`] elsewhere.
pub fn conv2d(x: &Tensor, w: &Tensor, b: &Tensor, spec: Conv2dSpec) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return conv2d_slow(x, w, b, spec);
    }
    x.contiguous()?.apply_op3(&w.contiguous()?, &b.contiguous()?, Conv2d::new(spec))
}

/// `relu(max_pool2d(conv2d(x, w) + b, k))` as one op on CPU (the `ConvPoolRelu` op); elsewhere
/// the three ops.
pub fn conv2d_max_pool_relu(x: &Tensor, w: &Tensor, b: &Tensor, spec: Conv2dSpec, k: usize) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return super::max_pool2d_relu(&conv2d_slow(x, w, b, spec)?, k);
    }
    let op = ConvPoolRelu { conv: Conv2d::new(spec), k, y: Mutex::new(None) };
    x.contiguous()?.apply_op3(&w.contiguous()?, &b.contiguous()?, op)
}

/// The reference: candle's own convolution and a broadcast bias.
pub fn conv2d_slow(x: &Tensor, w: &Tensor, b: &Tensor, spec: Conv2dSpec) -> Result<Tensor> {
    let y = x.conv2d(w, spec.padding, spec.stride, 1, 1)?;
    y.broadcast_add(&b.reshape((1, b.dim(0)?, 1, 1))?)
}
