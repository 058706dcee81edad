//! One batch's linearisation, factored layer by layer, for NTK-vector products that never run
//! the network again: `Θ·u = Σ_l J_l·(J_lᵀ·u)` over the layers `l` with parameters in the kernel.
//!
//! One backward pass per logit (as for the structured kernel) leaves each layer's input `a_i`
//! and the cotangents `δ_ic = ∂f_c(x_i)/∂(layer output)`. A product then costs, per layer, one
//! weight gradient and one forward pass of that layer alone on its kept input — no activation,
//! ReLU, pooling or other layer in between, and no tangent or cotangent pass through the net:
//! - linear layer: `J_lᵀu = Σ_{i,c} u_ic·δ_ic·[a_i; 1]ᵀ` (one GEMM), `(J_l·g)_ic = δ_ic·(g·[a_i; 1])`;
//! - convolution: the same through patches, with `δ` kept sparse: after ReLU and max-pooling
//!   only the output positions some logit reaches carry a cotangent (a quarter or fewer), and
//!   they are the same for every logit;
//! - any other layer, and a convolution with fewer parameters than such positions (LeNet5's
//!   first): its per-sample Jacobian rows, for two matrix–vector products.
use crate::error::{Error, Result};
use crate::ops::kernels::{self, ConvKernels};
use crate::ops::{matmul, parallel, Real};
use crate::program::{self, Act, LayerSignal, Op, Program, Weights};
use std::sync::atomic::AtomicBool;

/// Samples per parallel work item in the passes over cotangents.
const SAMPLES: usize = 32;

/// A layer's parameters in the kernel: `(parameter index, length)`, in the layer's order.
type Params = Vec<(usize, usize)>;

/// A gradient over the parameters in the kernel, as `(parameter index, values)` pairs.
type Grads<T> = Vec<(usize, Vec<T>)>;

enum Layer<T> {
    /// Per-sample Jacobian rows `∂f_c(x_i)/∂θ_l`, row `i·C + c`, over `params` concatenated.
    Rows { params: Params, width: usize, jacobian: Vec<T> },
    Linear {
        weight: Option<usize>,
        bias: Option<usize>,
        /// `(n, in, out)`.
        dims: (usize, usize, usize),
        input: Vec<T>,
        /// `δ_ic`, row `i·C + c` of `out` values.
        cotangents: Vec<T>,
    },
    Conv {
        weight: Option<usize>,
        bias: Option<usize>,
        /// Zero stand-ins for a weight or bias outside the kernel.
        zero_weight: Vec<T>,
        zero_bias: Vec<T>,
        kernels: ConvKernels,
        input: Vec<T>,
        /// Values in one sample's output.
        out_len: usize,
        /// Sample `i`'s reached output positions are `index[start[i]..start[i + 1]]`.
        start: Vec<usize>,
        index: Vec<u32>,
        /// Sample `i`'s `δ_ic` at its positions: `C` rows of `start[i + 1] − start[i]` values
        /// from `C·start[i]` on.
        cotangents: Vec<T>,
    },
}

/// A layer while the per-logit passes run. Convolutions keep every logit's cotangents until
/// all have been seen: their reached positions are the union over logits, and their
/// per-sample Jacobian rows come from one GEMM per sample for all logits.
enum Building<T> {
    Done(Layer<T>),
    ConvSparse {
        layer: Layer<T>,
        cot: PerLogit<T>,
    },
    ConvRows {
        params: Params,
        /// Whether the weight and the bias are in the kernel.
        on: (bool, bool),
        width: usize,
        kernels: ConvKernels,
        input: Vec<T>,
        cot: PerLogit<T>,
    },
}

/// A convolution's output cotangents, logit by logit: at the pooled maxima when max-pooling
/// follows it (`pooled`: each window's maximum in its output plane), else dense.
struct PerLogit<T> {
    values: Vec<Vec<T>>,
    pooled: Option<Vec<u32>>,
}

impl<T: Real> PerLogit<T> {
    fn new(sig: &LayerSignal<T>) -> Self {
        let pooled = sig.pooled.as_ref().map(|p| {
            let (h, w) = (p.output_dims[2], p.output_dims[3]);
            kernels::max_pool_argmax(p.output, (h, w), p.k)
        });
        Self { values: Vec::new(), pooled }
    }

    fn push(&mut self, sig: &LayerSignal<T>) {
        let g = match (&self.pooled, &sig.pooled) {
            (Some(_), Some(p)) => p.grad,
            _ => sig.grad_output(),
        };
        self.values.push(g.to_vec());
    }

    fn slices(&self) -> Vec<&[T]> {
        self.values.iter().map(Vec::as_slice).collect()
    }
}

impl<T: Real> Building<T> {
    fn finish(self, n: usize) -> Layer<T> {
        match self {
            Building::Done(layer) => layer,
            Building::ConvSparse { layer, cot } => compress(layer, &cot.values, n, cot.pooled.as_deref()),
            Building::ConvRows { params, on, width, kernels, input, cot } => {
                let dys = cot.slices();
                let mut jacobian = match &cot.pooled {
                    Some(argmax) => pooled_sample_grads(&kernels, &input, &dys, argmax),
                    None => kernels.sample_grad_params(&input, &dys),
                };
                if on != (true, true) {
                    // Rows of `∂w` then `∂b`: keep the part in the kernel.
                    let full = jacobian.len() / (n * dys.len()).max(1);
                    let keep = if on.0 { 0..width } else { full - width..full };
                    jacobian = jacobian.chunks(full).flat_map(|r| r[keep.clone()].iter().copied()).collect();
                }
                Layer::Rows { params, width, jacobian }
            }
        }
    }
}

/// A batch's factors (see the module doc).
pub(super) struct Factors<T> {
    n: usize,
    classes: usize,
    layers: Vec<Layer<T>>,
}

/// The parameters of `indices` that are `selected`, with their lengths.
fn params_in(program: &Program, selected: &[bool], indices: &[usize]) -> Params {
    indices.iter().filter(|&&p| selected[p]).map(|&p| (p, program.param_shapes[p].iter().product::<usize>())).collect()
}

fn param_indices(op: &Op) -> Vec<usize> {
    match op {
        Op::Conv2d { weight, bias, .. } | Op::Linear { weight, bias } => vec![*weight, *bias],
        Op::WeightNormLinear { direction, gain, bias } => vec![*direction, *gain, *bias],
        Op::BatchNorm { gamma, beta, .. } => vec![*gamma, *beta],
        _ => Vec::new(),
    }
}

impl<T: Real> Factors<T> {
    /// One forward pass and one backward pass per logit over `x`.
    pub fn new(
        program: &Program,
        w: &Weights<T>,
        x: &Act<T>,
        selected: &[bool],
        cancel: Option<&AtomicBool>,
    ) -> Result<Self> {
        let n = x.n();
        let mut building: Vec<(usize, Building<T>)> = Vec::new();
        let logits = program::logit_backprop(program, w, x, &mut |c, sig: &LayerSignal<T>| {
            super::kernel::check(cancel)?;
            let at = match building.iter().position(|(i, _)| *i == sig.op_index) {
                Some(at) => at,
                None => match start(program, selected, sig, n)? {
                    Some(b) => {
                        building.push((sig.op_index, b));
                        building.len() - 1
                    }
                    None => return Ok(()),
                },
            };
            record(program, w, sig, c, &mut building[at].1)
        })?;
        let classes = logits.dims[1];
        let layers = building.into_iter().map(|(_, b)| b.finish(n)).collect();
        Ok(Self { n, classes, layers })
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        let t = std::mem::size_of::<T>();
        self.layers
            .iter()
            .map(|l| match l {
                Layer::Rows { jacobian, .. } => jacobian.len() * t,
                Layer::Linear { input, cotangents, .. } => (input.len() + cotangents.len()) * t,
                Layer::Conv { input, start, index, cotangents, .. } => {
                    (input.len() + cotangents.len()) * t + start.len() * 8 + index.len() * 4
                }
            })
            .sum()
    }

    /// `Jᵀ·u` for each `u` over this batch's logits (`i·C + c`): per `u`, `(parameter index,
    /// gradient)` pairs for the parameters in the kernel. Several vectors share each pass over
    /// the factors: one im2col and one GEMM with their kernels stacked per convolution, one
    /// GEMM over all of them per Jacobian-row layer.
    pub fn vjp_many(&self, us: &[&[T]]) -> Result<Vec<Grads<T>>> {
        let (n, c, b) = (self.n, self.classes, us.len());
        if let Some(u) = us.iter().find(|u| u.len() != n * c) {
            return Err(Error::Shape(format!("a cotangent of {} values for {n}×{c} logits", u.len())));
        }
        let mut out: Vec<Grads<T>> = vec![Vec::new(); b];
        let push = |out: &mut Grads<T>, (weight, bias): (Option<usize>, Option<usize>), (gw, gb)| {
            out.extend(weight.map(|p| (p, gw)));
            out.extend(bias.map(|p| (p, gb)));
        };
        for layer in &self.layers {
            match layer {
                Layer::Rows { params, width, jacobian } => {
                    // G (b × width) = U (b × NC) · J (NC × width)
                    let u: Vec<T> = us.iter().flat_map(|u| u.iter().copied()).collect();
                    let mut g = vec![T::zero(); b * width];
                    matmul(b, *width, n * c, &mut g, false, &u, n * c, 1, jacobian, *width, 1);
                    for (j, g) in g.chunks(*width).enumerate() {
                        let mut at = 0;
                        for &(p, len) in params {
                            out[j].push((p, g[at..at + len].to_vec()));
                            at += len;
                        }
                    }
                }
                Layer::Linear { weight, bias, dims, input, cotangents } => {
                    for (j, u) in us.iter().enumerate() {
                        let delta = weigh_dense(u, cotangents, c, dims.2);
                        push(&mut out[j], (*weight, *bias), kernels::linear::grad_params(input, &delta, *dims));
                    }
                }
                Layer::Conv { weight, bias, kernels, input, out_len, start, index, cotangents, .. } => {
                    let deltas: Vec<Vec<T>> =
                        us.iter().map(|u| weigh_sparse(u, c, *out_len, start, index, cotangents)).collect();
                    let refs: Vec<&[T]> = deltas.iter().map(Vec::as_slice).collect();
                    for (j, g) in kernels.grad_params_many(input, &refs).into_iter().enumerate() {
                        push(&mut out[j], (*weight, *bias), g);
                    }
                }
            }
        }
        Ok(out)
    }

    /// `J·g` (`i·C + c`) for each direction `g` over all parameters (those outside the kernel
    /// are not read); passes shared as in [`Factors::vjp_many`].
    pub fn jvp_many(&self, gs: &[&Weights<T>]) -> Vec<Vec<f64>> {
        let (n, c, b) = (self.n, self.classes, gs.len());
        let mut out = vec![vec![0.0; n * c]; b];
        for layer in &self.layers {
            match layer {
                Layer::Rows { params, width, jacobian } => {
                    // Y (NC × b) = J (NC × width) · V (width × b)
                    let mut v = vec![T::zero(); width * b];
                    for (j, g) in gs.iter().enumerate() {
                        let col = params.iter().flat_map(|&(p, _)| g[p].iter().copied());
                        col.enumerate().for_each(|(k, x)| v[k * b + j] = x);
                    }
                    let mut y = vec![T::zero(); n * c * b];
                    matmul(n * c, b, *width, &mut y, false, jacobian, *width, 1, &v, b, 1);
                    for (r, row) in y.chunks(b).enumerate() {
                        out.iter_mut().zip(row).for_each(|(o, y)| o[r] += y.as_f64());
                    }
                }
                Layer::Linear { weight, bias, dims, input, cotangents } => {
                    let zeros = |len| vec![T::zero(); len];
                    for (o, g) in out.iter_mut().zip(gs) {
                        let gw = weight.map_or_else(|| zeros(dims.1 * dims.2), |p| g[p].clone());
                        let gb = bias.map_or_else(|| zeros(dims.2), |p| g[p].clone());
                        let y = kernels::linear::forward(input, &gw, &gb, *dims);
                        contract_dense(o, cotangents, &y, c, dims.2);
                    }
                }
                Layer::Conv {
                    weight,
                    bias,
                    zero_weight,
                    zero_bias,
                    kernels,
                    input,
                    out_len,
                    start,
                    index,
                    cotangents,
                } => {
                    let parts: Vec<(&[T], &[T])> = gs
                        .iter()
                        .map(|g| {
                            (weight.map_or(&zero_weight[..], |p| &g[p][..]), bias.map_or(&zero_bias[..], |p| &g[p][..]))
                        })
                        .collect();
                    for (o, y) in out.iter_mut().zip(kernels.forward_many(input, &parts)) {
                        contract_sparse(o, c, *out_len, start, index, cotangents, &y);
                    }
                }
            }
        }
        out
    }
}

/// A layer's factor, at its first signal; `None` when none of its parameters is in the kernel.
fn start<T: Real>(program: &Program, selected: &[bool], sig: &LayerSignal<T>, n: usize) -> Result<Option<Building<T>>> {
    let params = params_in(program, selected, &param_indices(sig.op));
    if params.is_empty() {
        return Ok(None);
    }
    let on = |p: usize| selected[p].then_some(p);
    let width: usize = params.iter().map(|p| p.1).sum();
    Ok(Some(match sig.op {
        Op::Linear { weight, bias } => Building::Done(Layer::Linear {
            weight: on(*weight),
            bias: on(*bias),
            dims: (n, sig.input_dims[1], sig.grad_output().len() / n.max(1)),
            input: sig.input.to_vec(),
            cotangents: vec![T::zero(); sig.grad_output().len() * sig.classes],
        }),
        Op::Conv2d { weight, bias, spec } => {
            // Sparse cotangents pay when a sample reaches fewer output positions than the layer
            // has parameters; logit 0's count stands for all.
            let nonzero = |g: &[T]| g.iter().filter(|v| **v != T::zero()).count() / n.max(1);
            let reached = sig.pooled.as_ref().map_or_else(|| nonzero(sig.grad_output()), |p| nonzero(p.grad));
            let shape = &program.param_shapes[*weight];
            let (conv, cot) = (ConvKernels::new(sig.input_dims, shape, *spec)?, PerLogit::new(sig));
            if width <= reached {
                Building::ConvRows {
                    params,
                    on: (selected[*weight], selected[*bias]),
                    width,
                    kernels: conv,
                    input: sig.input.to_vec(),
                    cot,
                }
            } else {
                let [_, o, oh, ow] = conv.output();
                Building::ConvSparse {
                    layer: Layer::Conv {
                        weight: on(*weight),
                        bias: on(*bias),
                        zero_weight: vec![T::zero(); shape.iter().product()],
                        zero_bias: vec![T::zero(); shape[0]],
                        kernels: conv,
                        input: sig.input.to_vec(),
                        out_len: o * oh * ow,
                        start: Vec::new(),
                        index: Vec::new(),
                        cotangents: Vec::new(),
                    },
                    cot,
                }
            }
        }
        _ => Building::Done(Layer::Rows { params, width, jacobian: Vec::new() }),
    }))
}

/// Adds logit `c`'s signal to a layer's factor.
fn record<T: Real>(
    program: &Program,
    w: &Weights<T>,
    sig: &LayerSignal<T>,
    c: usize,
    b: &mut Building<T>,
) -> Result<()> {
    let classes = sig.classes;
    match b {
        Building::ConvSparse { cot, .. } | Building::ConvRows { cot, .. } => cot.push(sig),
        Building::Done(Layer::Linear { dims, cotangents, .. }) => {
            let out = dims.2;
            for (i, g) in sig.grad_output().chunks(out).enumerate() {
                cotangents[(i * classes + c) * out..][..out].copy_from_slice(g);
            }
        }
        Building::Done(Layer::Rows { params, width, jacobian }) => {
            let offsets: Vec<(usize, usize)> = params
                .iter()
                .scan(0, |at, &(p, len)| {
                    *at += len;
                    Some((p, *at - len))
                })
                .collect();
            let offset = |p: usize| offsets.iter().find(|(q, _)| *q == p).map(|&(_, o)| o);
            super::kernel::add_sample_rows(program, w, sig, c, jacobian, *width, offset)?;
        }
        Building::Done(Layer::Conv { .. }) => return Err(Error::Internal("a finished convolution factor".into())),
    }
    Ok(())
}

/// Per-sample gradients `(∂w, ∂b)` of a convolution followed by max-pooling, from the
/// cotangents at the pooled maxima (`dys[c]`, `N×O×windows`) and each window's maximum
/// (`argmax`): rows `n·C + c` as [`ConvKernels::sample_grad_params`] makes them from dense
/// cotangents, at a quarter of its work for 2×2 pooling. Per image and output channel, one GEMM
/// of the logits' cotangents (`C × windows`) with the patches at the maxima (`windows × K`).
fn pooled_sample_grads<T: Real>(kernels: &ConvKernels, input: &[T], dys: &[&[T]], argmax: &[u32]) -> Vec<T> {
    let [n, o, oh, ow] = kernels.output();
    let (classes, pixels, image) = (dys.len(), oh * ow, input.len() / n.max(1));
    let windows = argmax.len() / (n * o).max(1);
    let k = kernels.rows();
    let width = o * k + o;
    parallel::zeroed_pieces(n * classes * width, classes * width, |s, rows| {
        let col = kernels.patches(&input[s * image..][..image]);
        let (mut at_max, mut g, mut dw) =
            (vec![T::zero(); windows * k], vec![T::zero(); classes * windows], vec![T::zero(); classes * k]);
        for ch in 0..o {
            let idx = &argmax[(s * o + ch) * windows..][..windows];
            for (row, &p) in at_max.chunks_mut(k).zip(idx) {
                row.iter_mut().enumerate().for_each(|(r, v)| *v = col[r * pixels + p as usize]);
            }
            for (gc, d) in g.chunks_mut(windows).zip(dys) {
                gc.copy_from_slice(&d[(s * o + ch) * windows..][..windows]);
            }
            // ∂w of channel ch for every logit (C × K) = g (C × windows) · at_max (windows × K)
            matmul(classes, k, windows, &mut dw, false, &g, windows, 1, &at_max, k, 1);
            for ((row, dwc), gc) in rows.chunks_mut(width).zip(dw.chunks(k)).zip(g.chunks(windows)) {
                row[ch * k..][..k].copy_from_slice(dwc);
                row[o * k + ch] = gc.iter().fold(T::zero(), |a, &v| a + v);
            }
        }
    })
}

/// A convolution's per-logit cotangents as sparse rows over the positions any logit reaches,
/// in parallel over pieces of samples. They are dense, or with `pooled` (each window's maximum
/// in its plane) at the pooled maxima: a quarter of the values to scan for 2×2 pooling.
fn compress<T: Real>(mut layer: Layer<T>, dense: &[Vec<T>], n: usize, pooled: Option<&[u32]>) -> Layer<T> {
    let Layer::Conv { out_len, start, index, cotangents, kernels, .. } = &mut layer else { return layer };
    let [_, channels, oh, ow] = kernels.output();
    let len = match pooled {
        Some(at) => at.len() / n.max(1),
        None => *out_len,
    };
    // Value k of sample i's row: its position in the sample's output.
    let windows = len / channels.max(1);
    let position = |i: usize, k: usize| match pooled {
        Some(at) => ((k / windows) * oh * ow) as u32 + at[i * len + k],
        None => k as u32,
    };
    let pieces = parallel::map(n.div_ceil(SAMPLES), |p| {
        let most = SAMPLES.min(n - p * SAMPLES) * len;
        let (mut idx, mut counts, mut vals) =
            (Vec::with_capacity(most), Vec::with_capacity(SAMPLES), Vec::with_capacity(most * dense.len()));
        let (mut reached, mut ks) = (vec![false; len], Vec::with_capacity(len));
        for i in p * SAMPLES..((p + 1) * SAMPLES).min(n) {
            reached.fill(false);
            for d in dense {
                reached.iter_mut().zip(&d[i * len..][..len]).for_each(|(r, v)| *r |= *v != T::zero());
            }
            ks.clear();
            ks.extend((0..len).filter(|&k| reached[k]));
            idx.extend(ks.iter().map(|&k| position(i, k)));
            for d in dense {
                let row = &d[i * len..][..len];
                vals.extend(ks.iter().map(|&k| row[k]));
            }
            counts.push(ks.len());
        }
        (idx, counts, vals)
    });
    // Sized once: grown piece by piece, they would be copied (and faulted in) again and again.
    start.reserve_exact(n + 1);
    index.reserve_exact(pieces.iter().map(|p| p.0.len()).sum());
    cotangents.reserve_exact(pieces.iter().map(|p| p.2.len()).sum());
    start.push(0);
    for (idx, counts, vals) in pieces {
        for c in counts {
            start.push(start.last().copied().unwrap_or(0) + c);
        }
        index.extend(idx);
        cotangents.extend(vals);
    }
    layer
}

/// `a·b` over 16 lanes (it vectorises; one running sum would not: float addition is ordered).
fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    let mut lanes = [T::zero(); 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail = ca.remainder().iter().zip(cb.remainder()).fold(T::zero(), |s, (&x, &y)| s + x * y);
    for (x, y) in ca.zip(cb) {
        for k in 0..16 {
            lanes[k] += x[k] * y[k];
        }
    }
    lanes.iter().fold(tail, |s, &v| s + v)
}

/// `Δ_i = Σ_c u_ic·δ_ic` for dense rows of `out` values.
fn weigh_dense<T: Real>(u: &[T], cotangents: &[T], classes: usize, out: usize) -> Vec<T> {
    parallel::zeroed_pieces(u.len() / classes * out, SAMPLES * out, |piece, delta| {
        for (s, d) in delta.chunks_mut(out).enumerate() {
            let i = piece * SAMPLES + s;
            for c in 0..classes {
                let (w, row) = (u[i * classes + c], &cotangents[(i * classes + c) * out..][..out]);
                d.iter_mut().zip(row).for_each(|(d, &r)| *d += w * r);
            }
        }
    })
}

/// `out_ic += δ_ic·y_i` for dense rows of `width` values.
fn contract_dense<T: Real>(out: &mut [f64], cotangents: &[T], y: &[T], classes: usize, width: usize) {
    parallel::for_each_piece(out, SAMPLES * classes, |piece, o| {
        for (s, oc) in o.chunks_mut(classes).enumerate() {
            let i = piece * SAMPLES + s;
            let yi = &y[i * width..][..width];
            for (c, o) in oc.iter_mut().enumerate() {
                let row = &cotangents[(i * classes + c) * width..][..width];
                *o += dot(row, yi).as_f64();
            }
        }
    });
}

/// `Δ_i = Σ_c u_ic·δ_ic`, scattered to the full output of each sample.
fn weigh_sparse<T: Real>(u: &[T], classes: usize, out_len: usize, start: &[usize], index: &[u32], cot: &[T]) -> Vec<T> {
    let n = start.len() - 1;
    parallel::zeroed_pieces(n * out_len, SAMPLES * out_len, |piece, delta| {
        for (s, d) in delta.chunks_mut(out_len).enumerate() {
            let i = piece * SAMPLES + s;
            let (lo, hi) = (start[i], start[i + 1]);
            let idx = &index[lo..hi];
            for c in 0..classes {
                let (w, vals) = (u[i * classes + c], &cot[classes * lo + c * (hi - lo)..][..hi - lo]);
                for (&k, &v) in idx.iter().zip(vals) {
                    d[k as usize] += w * v;
                }
            }
        }
    })
}

/// `out_ic += δ_ic·y_i` over each sample's reached positions.
fn contract_sparse<T: Real>(
    out: &mut [f64],
    classes: usize,
    out_len: usize,
    start: &[usize],
    index: &[u32],
    cot: &[T],
    y: &[T],
) {
    parallel::for_each_piece(out, SAMPLES * classes, |piece, o| {
        for (s, oc) in o.chunks_mut(classes).enumerate() {
            let i = piece * SAMPLES + s;
            let (lo, hi) = (start[i], start[i + 1]);
            let (idx, yi) = (&index[lo..hi], &y[i * out_len..][..out_len]);
            let gathered: Vec<T> = idx.iter().map(|&k| yi[k as usize]).collect();
            for (c, o) in oc.iter_mut().enumerate() {
                let vals = &cot[classes * lo + c * (hi - lo)..][..hi - lo];
                *o += dot(vals, &gathered).as_f64();
            }
        }
    });
}
