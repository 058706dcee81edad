//! The derivative rules of each [`Op`]: for output `y = f(x; θ)`, the value, its tangent
//! `R{y} = ∂f/∂x·R{x} + ∂f/∂θ·v`, the adjoints `∂x = (∂f/∂x)ᵀ∂y`, `∂θ = (∂f/∂θ)ᵀ∂y`, and
//! their tangents `R{∂x}`, `R{∂θ}` (Pearlmutter 1994). A missing tangent (`None`) is zero.
//!
//! Bilinear layers (convolution, linear) have `R{∂x} = wᵀR{∂y} + vᵀ∂y` and
//! `R{∂w} = R{∂y}·xᵀ + ∂y·R{x}ᵀ`; piecewise-linear ones (ReLU, max-pool, dropout) apply their
//! fixed mask or selection to every quantity; batch norm and weight norm carry the curvature
//! of their statistics and norms, written out below in f64.
use super::norm::{self, NormCache};
use super::{Op, Weights};
use crate::error::{Error, Result};
use crate::ops::kernels::{self, ConvKernels};
use crate::ops::{widen, Real};

/// What an op keeps from its forward pass for the backward one.
pub(super) struct Step<T> {
    pub dims: Vec<usize>,
    pub x: Vec<T>,
    pub tx: Option<Vec<T>>,
    cache: Cache<T>,
}

enum Cache<T> {
    None,
    /// Weight norm: the weight `g·u` used (and its tangent), `u = v/‖v‖` and `‖v‖` per row.
    WeightNorm {
        w: Vec<T>,
        tw: Option<Vec<T>>,
        u: Vec<f64>,
        r: Vec<f64>,
    },
    Norm(NormCache<T>),
    /// Dropout: the mask per `(sample, channel)`.
    Mask(Vec<T>),
}

fn add_into<T: Real>(dst: &mut [T], src: &[T]) {
    dst.iter_mut().zip(src).for_each(|(d, &s)| *d += s);
}

fn sum<T: Real>(mut a: Vec<T>, b: Vec<T>) -> Vec<T> {
    add_into(&mut a, &b);
    a
}

/// `grads[i] += g`, for an optional accumulator.
fn accumulate<T: Real>(grads: &mut Weights<T>, i: usize, g: &[T]) {
    add_into(&mut grads[i], g);
}

/// An op's output: `y`, its shape, `R{y}`, and what the backward pass needs.
pub(super) type Output<T> = (Vec<T>, Vec<usize>, Option<Vec<T>>, Step<T>);

/// Runs `op` on `x` (and its tangent when `v` is given).
pub(super) fn forward<T: Real>(
    op: &Op,
    shapes: &[Vec<usize>],
    w: &Weights<T>,
    v: Option<&Weights<T>>,
    x: Vec<T>,
    dims: Vec<usize>,
    tx: Option<Vec<T>>,
) -> Result<Output<T>> {
    let mut cache = Cache::None;
    let (y, ydims, ty) = match op {
        Op::Conv2d { weight, bias, spec } => {
            let k = ConvKernels::new(&dims, &shapes[*weight], *spec)?;
            let (wb, (y, ty)) = (
                (&w[*weight][..], &w[*bias][..]),
                match v {
                    // y and its v-part share the im2col of x: one GEMM with [w; v] stacked.
                    Some(v) => {
                        let mut both = k.forward_many(&x, &[(&w[*weight], &w[*bias]), (&v[*weight], &v[*bias])]);
                        let ty = both.pop().expect("two outputs");
                        (both.pop().expect("two outputs"), Some(ty))
                    }
                    None => (k.forward(&x, &w[*weight], &w[*bias]), None),
                },
            );
            let ty = match (ty, &tx) {
                (Some(ty), Some(tx)) => Some(sum(ty, k.forward(tx, wb.0, &vec![T::zero(); wb.1.len()]))),
                (ty, _) => ty,
            };
            (y, k.output().to_vec(), ty)
        }
        Op::Linear { weight, bias } => {
            let d = linear_dims(&dims, &shapes[*weight])?;
            (kernels::linear::forward(&x, &w[*weight], &w[*bias], d), vec![d.0, d.2], None)
        }
        Op::WeightNormLinear { direction, gain, bias } => {
            let d = linear_dims(&dims, &shapes[*direction])?;
            let (wn, u, r) = weight_norm(&w[*direction], &w[*gain], d.1);
            let twn = v.map(|v| weight_norm_tangent(&u, &r, &w[*gain], &v[*direction], &v[*gain], d.1));
            let y = kernels::linear::forward(&x, &wn, &w[*bias], d);
            let ty = v.zip(twn.as_ref()).map(|(v, twn)| linear_tangent(&x, tx.as_deref(), &wn, twn, &v[*bias], d));
            cache = Cache::WeightNorm { w: wn, tw: twn, u, r };
            (y, vec![d.0, d.2], ty)
        }
        Op::MaxPool2d { k } => {
            let [n, c, h, wd] = dims4(&dims, "max-pool")?;
            (kernels::max_pool_forward(&x, (h, wd), *k, false), vec![n, c, h / k, wd / k], None)
        }
        Op::Relu => (x.iter().map(|&a| if a > T::zero() { a } else { T::zero() }).collect(), dims.clone(), None),
        Op::Dropout { p, seed } => {
            let plane: usize = dims[2..].iter().product();
            let mask: Vec<T> =
                crate::models::layers::keep_mask(*seed, dims[0] * dims[1], *p)?.into_iter().map(T::of_f64).collect();
            let y = x.chunks(plane).zip(&mask).flat_map(|(r, &m)| r.iter().map(move |&a| a * m)).collect();
            cache = Cache::Mask(mask);
            (y, dims.clone(), None)
        }
        Op::Flatten => (x.clone(), vec![dims[0], x.len() / dims[0].max(1)], None),
        Op::BatchNorm { gamma, beta, running, eps } => {
            let (y, ty, c) = norm::forward(&x, tx.as_deref(), &dims, w, v, (*gamma, *beta), running.as_ref(), *eps)?;
            cache = Cache::Norm(c);
            (y, dims.clone(), ty)
        }
    };
    let step = Step { dims, x, tx, cache };
    // Conv, weight norm and batch norm made their tangent above (sharing work with `y`, or
    // keeping parts of it for the backward pass); the rest take it from the kept step.
    let ty = match (ty, v) {
        (None, Some(v)) => Some(tangent(op, shapes, w, v, &step, step.tx.as_deref())?),
        (ty, _) => ty,
    };
    Ok((y, ydims, ty, step))
}

/// Back through `op`: adds `∂θ` (and `R{∂θ}`) into `grads` (`rgrads`) and returns `∂x` and
/// `R{∂x}` (empty when `need_input` is false: the network's input needs none).
#[allow(clippy::too_many_arguments)]
pub(super) fn backward<T: Real>(
    op: &Op,
    shapes: &[Vec<usize>],
    w: &Weights<T>,
    v: Option<&Weights<T>>,
    step: &Step<T>,
    gy: Vec<T>,
    rgy: Option<Vec<T>>,
    grads: &mut Weights<T>,
    mut rgrads: Option<&mut Weights<T>>,
    need_input: bool,
) -> Result<(Vec<T>, Option<Vec<T>>)> {
    let Step { dims, x, tx, cache } = step;
    let second = v.zip(rgy.as_ref());
    match op {
        Op::Conv2d { weight, bias, spec } => {
            let k = ConvKernels::new(dims, &shapes[*weight], *spec)?;
            let mut rgx = None;
            let mut parts = match second {
                // ∂w and the R{∂y} part of R{∂w} share the im2col of x.
                Some((_, rgy)) => k.grad_params_many(x, &[&gy, rgy]),
                None => vec![k.grad_params(x, &gy)],
            };
            let second_part = if parts.len() == 2 { parts.pop() } else { None };
            let (gw, gb) = parts.pop().expect("one part");
            accumulate(grads, *weight, &gw);
            accumulate(grads, *bias, &gb);
            if let (Some((v, rgy)), Some(rg), Some((rw, rb))) = (second, rgrads.as_deref_mut(), second_part) {
                accumulate(rg, *weight, &rw);
                accumulate(rg, *bias, &rb);
                if let Some(tx) = tx {
                    accumulate(rg, *weight, &k.grad_params(tx, &gy).0);
                }
                if need_input {
                    rgx = Some(k.grad_input_sum(&[(rgy, &w[*weight]), (&gy, &v[*weight])]));
                }
            }
            let gx = if need_input { k.grad_input(&gy, &w[*weight]) } else { Vec::new() };
            Ok((gx, rgx))
        }
        Op::Linear { weight, bias } => {
            let d = linear_dims(dims, &shapes[*weight])?;
            let (gw, rgw) =
                linear_backward(x, tx.as_deref(), &gy, rgy.as_deref(), d, grads, rgrads.as_deref_mut(), *bias);
            accumulate(grads, *weight, &gw);
            if let (Some(rg), Some(rgw)) = (rgrads.as_deref_mut(), rgw) {
                accumulate(rg, *weight, &rgw);
            }
            let gx = if need_input { kernels::linear::grad_input(&gy, &w[*weight], d) } else { Vec::new() };
            let rgx = match second {
                Some((v, rgy)) if need_input => Some(sum(
                    kernels::linear::grad_input(rgy, &w[*weight], d),
                    kernels::linear::grad_input(&gy, &v[*weight], d),
                )),
                _ => None,
            };
            Ok((gx, rgx))
        }
        Op::WeightNormLinear { direction, gain, bias } => {
            let Cache::WeightNorm { w: wn, tw, u, r } = cache else { return Err(internal("weight norm")) };
            let d = linear_dims(dims, &shapes[*direction])?;
            let (gw, rgw) =
                linear_backward(x, tx.as_deref(), &gy, rgy.as_deref(), d, grads, rgrads.as_deref_mut(), *bias);
            let g = widen(&w[*gain]);
            let (gv, gg) = weight_norm_backward(u, r, &g, &gw, d.1);
            accumulate(grads, *direction, &gv);
            accumulate(grads, *gain, &gg);
            if let (Some(v), Some(rg), Some(rgw)) = (v, rgrads.as_deref_mut(), rgw) {
                let (rgv, rgg) = weight_norm_backward_tangent(u, r, &g, &v[*direction], &v[*gain], &gw, &rgw, d.1);
                accumulate(rg, *direction, &rgv);
                accumulate(rg, *gain, &rgg);
            }
            let gx = if need_input { kernels::linear::grad_input(&gy, wn, d) } else { Vec::new() };
            let rgx = match (second, tw) {
                (Some((_, rgy)), Some(tw)) if need_input => {
                    Some(sum(kernels::linear::grad_input(rgy, wn, d), kernels::linear::grad_input(&gy, tw, d)))
                }
                _ => None,
            };
            Ok((gx, rgx))
        }
        Op::MaxPool2d { k } => {
            let [_, _, h, wd] = dims4(dims, "max-pool")?;
            let back = |g: &[T]| kernels::max_pool_backward(x, g, (h, wd), *k, false);
            Ok((back(&gy), rgy.as_deref().map(back)))
        }
        Op::Relu => Ok((masked_by_input(x, Some(&gy)), rgy.as_deref().map(|r| masked_by_input(x, Some(r))))),
        Op::Dropout { .. } => {
            let Cache::Mask(mask) = cache else { return Err(internal("dropout")) };
            let plane: usize = dims[2..].iter().product();
            let apply = |a: &[T]| -> Vec<T> {
                a.chunks(plane).zip(mask).flat_map(|(r, &m)| r.iter().map(move |&a| a * m)).collect()
            };
            Ok((apply(&gy), rgy.as_deref().map(apply)))
        }
        Op::Flatten => Ok((gy, rgy)),
        Op::BatchNorm { gamma, beta, .. } => {
            let Cache::Norm(c) = cache else { return Err(internal("batch norm")) };
            norm::backward(c, dims, w, v, (*gamma, *beta), &gy, rgy.as_deref(), grads, rgrads)
        }
    }
}

fn internal(what: &str) -> Error {
    Error::Internal(format!("program: the {what} step lost its forward cache"))
}

fn dims4(dims: &[usize], what: &str) -> Result<[usize; 4]> {
    <[usize; 4]>::try_from(dims).map_err(|_| Error::Shape(format!("{what} needs N×C×H×W input, got {dims:?}")))
}

/// `(n, in, out)` of a linear layer on `dims` input with an `out×in` weight.
fn linear_dims(dims: &[usize], weight: &[usize]) -> Result<(usize, usize, usize)> {
    match (dims, weight) {
        (&[n, fin], &[fout, win]) if fin == win => Ok((n, fin, fout)),
        _ => Err(Error::Shape(format!("linear layer of weight {weight:?} on input {dims:?}"))),
    }
}

/// `R{y} = R{x}·wᵀ + x·vᵀ + v_b`.
fn linear_tangent<T: Real>(x: &[T], tx: Option<&[T]>, w: &[T], tw: &[T], tb: &[T], d: (usize, usize, usize)) -> Vec<T> {
    let ty = kernels::linear::forward(x, tw, tb, d);
    match tx {
        Some(tx) => sum(ty, kernels::linear::forward(tx, w, &vec![T::zero(); d.2], d)),
        None => ty,
    }
}

/// Adds `∂b` (and `R{∂b}`) and returns `∂w` and `R{∂w} = R{∂y}ᵀx + ∂yᵀR{x}` of a linear layer.
#[allow(clippy::too_many_arguments)]
fn linear_backward<T: Real>(
    x: &[T],
    tx: Option<&[T]>,
    gy: &[T],
    rgy: Option<&[T]>,
    d: (usize, usize, usize),
    grads: &mut Weights<T>,
    rgrads: Option<&mut Weights<T>>,
    bias: usize,
) -> (Vec<T>, Option<Vec<T>>) {
    let (gw, gb) = kernels::linear::grad_params(x, gy, d);
    accumulate(grads, bias, &gb);
    let rgw = rgy.zip(rgrads).map(|(rgy, rg)| {
        let (rw, rb) = kernels::linear::grad_params(x, rgy, d);
        accumulate(rg, bias, &rb);
        match tx {
            Some(tx) => sum(rw, kernels::linear::grad_params(tx, gy, d).0),
            None => rw,
        }
    });
    (gw, rgw)
}

/// `a ⊙ [x > 0]` (zero when `a` is `None`).
fn masked_by_input<T: Real>(x: &[T], a: Option<&[T]>) -> Vec<T> {
    match a {
        Some(a) => x.iter().zip(a).map(|(&x, &a)| if x > T::zero() { a } else { T::zero() }).collect(),
        None => vec![T::zero(); x.len()],
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `w = g·u` with `u = v/‖v‖` per row of `v` (`cols` wide); returns `w`, `u`, `‖v‖`.
fn weight_norm<T: Real>(v: &[T], g: &[T], cols: usize) -> (Vec<T>, Vec<f64>, Vec<f64>) {
    let v = widen(v);
    let mut u = Vec::with_capacity(v.len());
    let mut r = Vec::with_capacity(g.len());
    let mut w = Vec::with_capacity(v.len());
    for (row, gi) in v.chunks(cols).zip(g) {
        let norm = dot(row, row).sqrt();
        let gi = gi.as_f64();
        u.extend(row.iter().map(|a| a / norm));
        w.extend(row.iter().map(|a| T::of_f64(gi * a / norm)));
        r.push(norm);
    }
    (w, u, r)
}

/// Per row, `R{u} = (R{v} − u·(u·R{v}))/‖v‖`.
fn unit_tangent(u: &[f64], r: f64, tv: &[f64]) -> Vec<f64> {
    let ut = dot(u, tv);
    u.iter().zip(tv).map(|(a, b)| (b - a * ut) / r).collect()
}

/// `R{w} = R{g}·u + g·R{u}`.
fn weight_norm_tangent<T: Real>(u: &[f64], r: &[f64], g: &[T], tv: &[T], tg: &[T], cols: usize) -> Vec<T> {
    let tv = widen(tv);
    let mut out = Vec::with_capacity(u.len());
    for (i, (ui, tvi)) in u.chunks(cols).zip(tv.chunks(cols)).enumerate() {
        let (gi, tgi) = (g[i].as_f64(), tg[i].as_f64());
        let ru = unit_tangent(ui, r[i], tvi);
        out.extend(ui.iter().zip(&ru).map(|(a, b)| T::of_f64(tgi * a + gi * b)));
    }
    out
}

/// `(∂v, ∂g)` from `∂w`: `∂g = ∂w·u`, `∂v = (g/‖v‖)·(∂w − u·(u·∂w))`.
fn weight_norm_backward<T: Real>(u: &[f64], r: &[f64], g: &[f64], gw: &[T], cols: usize) -> (Vec<T>, Vec<T>) {
    let gw = widen(gw);
    let (mut gv, mut gg) = (Vec::with_capacity(gw.len()), Vec::with_capacity(g.len()));
    for (i, (ui, gwi)) in u.chunks(cols).zip(gw.chunks(cols)).enumerate() {
        let ug = dot(ui, gwi);
        gg.push(T::of_f64(ug));
        gv.extend(ui.iter().zip(gwi).map(|(a, b)| T::of_f64(g[i] / r[i] * (b - a * ug))));
    }
    (gv, gg)
}

/// `(R{∂v}, R{∂g})`, differentiating [`weight_norm_backward`] along `(R{v}, R{g})` and `R{∂w}`.
#[allow(clippy::too_many_arguments)]
fn weight_norm_backward_tangent<T: Real>(
    u: &[f64],
    r: &[f64],
    g: &[f64],
    tv: &[T],
    tg: &[T],
    gw: &[T],
    rgw: &[T],
    cols: usize,
) -> (Vec<T>, Vec<T>) {
    let (tv, gw, rgw) = (widen(tv), widen(gw), widen(rgw));
    let (mut rgv, mut rgg) = (Vec::with_capacity(gw.len()), Vec::with_capacity(g.len()));
    for i in 0..g.len() {
        let row = |a: &[f64]| a[i * cols..(i + 1) * cols].to_vec();
        let (ui, tvi, gwi, rgwi) = (row(u), row(&tv), row(&gw), row(&rgw));
        let tgi = tg[i].as_f64();
        let ru = unit_tangent(&ui, r[i], &tvi);
        let (ug, rug, urg) = (dot(&ui, &gwi), dot(&ru, &gwi), dot(&ui, &rgwi));
        rgg.push(T::of_f64(urg + rug));
        // R{g/‖v‖} = R{g}/‖v‖ − g·(u·R{v})/‖v‖²
        let rscale = tgi / r[i] - g[i] * dot(&ui, &tvi) / (r[i] * r[i]);
        let scale = g[i] / r[i];
        for k in 0..cols {
            let plain = gwi[k] - ui[k] * ug;
            let tangent = rgwi[k] - ru[k] * ug - ui[k] * (rug + urg);
            rgv.push(T::of_f64(rscale * plain + scale * tangent));
        }
    }
    (rgv, rgg)
}

/// `∂x` alone (no parameter gradients): the backward pass of per-sample Jacobians, which takes
/// parameter gradients sample by sample instead ([`sample_param_grads`]).
pub(super) fn input_grad<T: Real>(
    op: &Op,
    shapes: &[Vec<usize>],
    w: &Weights<T>,
    step: &Step<T>,
    gy: Vec<T>,
    scratch: &mut Weights<T>,
) -> Result<Vec<T>> {
    let Step { dims, .. } = step;
    match op {
        Op::Conv2d { weight, spec, .. } => {
            Ok(ConvKernels::new(dims, &shapes[*weight], *spec)?.grad_input(&gy, &w[*weight]))
        }
        Op::Linear { weight, .. } => {
            Ok(kernels::linear::grad_input(&gy, &w[*weight], linear_dims(dims, &shapes[*weight])?))
        }
        Op::WeightNormLinear { direction, .. } => {
            let Cache::WeightNorm { w: wn, .. } = &step.cache else { return Err(internal("weight norm")) };
            Ok(kernels::linear::grad_input(&gy, wn, linear_dims(dims, &shapes[*direction])?))
        }
        // The rest have no parameters or cheap per-channel ones.
        _ => Ok(backward(op, shapes, w, None, step, gy, None, scratch, None, true)?.0),
    }
}

/// The gradient of sample `n`'s output cotangent `gy[n]` with respect to `op`'s parameters:
/// `(parameter index, gradient)` pairs, empty for ops without parameters. Batch norm must use
/// fixed statistics (with batch statistics one sample's output depends on the others').
pub(super) fn sample_param_grads<T: Real>(
    op: &Op,
    shapes: &[Vec<usize>],
    w: &Weights<T>,
    step: &Step<T>,
    gy: &[T],
    n: usize,
) -> Result<Vec<(usize, Vec<T>)>> {
    let Step { dims, x, cache, .. } = step;
    let per = |len: usize| (n * len / dims[0], (n + 1) * len / dims[0]);
    let (xl, xh) = per(x.len());
    let (gl, gh) = per(gy.len());
    let (xn, gn) = (&x[xl..xh], &gy[gl..gh]);
    let outer = |g: &[T], a: &[T]| -> Vec<T> { g.iter().flat_map(|&gi| a.iter().map(move |&ai| gi * ai)).collect() };
    Ok(match op {
        Op::Conv2d { weight, bias, spec } => {
            let mut one = dims.clone();
            one[0] = 1;
            let (gw, gb) = ConvKernels::new(&one, &shapes[*weight], *spec)?.grad_params(xn, gn);
            vec![(*weight, gw), (*bias, gb)]
        }
        Op::Linear { weight, bias } => vec![(*weight, outer(gn, xn)), (*bias, gn.to_vec())],
        Op::WeightNormLinear { direction, gain, bias } => {
            let Cache::WeightNorm { u, r, .. } = cache else { return Err(internal("weight norm")) };
            let g = widen(&w[*gain]);
            let (gv, gg) = weight_norm_backward(u, r, &g, &outer(gn, xn), xn.len());
            vec![(*direction, gv), (*gain, gg), (*bias, gn.to_vec())]
        }
        Op::BatchNorm { gamma, beta, .. } => {
            let Cache::Norm(c) = cache else { return Err(internal("batch norm")) };
            let (gg, gb) = norm::sample_grads(c, dims, gy, n)?;
            vec![(*gamma, gg), (*beta, gb)]
        }
        _ => Vec::new(),
    })
}

/// Whether `op` has parameters.
pub(super) fn has_params(op: &Op) -> bool {
    matches!(op, Op::Conv2d { .. } | Op::Linear { .. } | Op::WeightNormLinear { .. } | Op::BatchNorm { .. })
}

/// `R{y}` alone from a kept forward step (its values are not recomputed): the forward-mode half
/// of NTK-vector products over a cached forward pass.
pub(super) fn tangent<T: Real>(
    op: &Op,
    shapes: &[Vec<usize>],
    w: &Weights<T>,
    v: &Weights<T>,
    step: &Step<T>,
    tx: Option<&[T]>,
) -> Result<Vec<T>> {
    let Step { dims, x, cache, .. } = step;
    let zeros = |n: usize| vec![T::zero(); n];
    Ok(match op {
        Op::Conv2d { weight, bias, spec } => {
            let k = ConvKernels::new(dims, &shapes[*weight], *spec)?;
            let ty = k.forward(x, &v[*weight], &v[*bias]);
            match tx {
                Some(tx) => sum(ty, k.forward(tx, &w[*weight], &zeros(shapes[*bias][0]))),
                None => ty,
            }
        }
        Op::Linear { weight, bias } => {
            linear_tangent(x, tx, &w[*weight], &v[*weight], &v[*bias], linear_dims(dims, &shapes[*weight])?)
        }
        Op::WeightNormLinear { direction, gain, bias } => {
            let Cache::WeightNorm { w: wn, u, r, .. } = cache else { return Err(internal("weight norm")) };
            let d = linear_dims(dims, &shapes[*direction])?;
            let twn = weight_norm_tangent(u, r, &w[*gain], &v[*direction], &v[*gain], d.1);
            linear_tangent(x, tx, wn, &twn, &v[*bias], d)
        }
        Op::MaxPool2d { k } => {
            let [n, c, h, wd] = dims4(dims, "max-pool")?;
            match tx {
                Some(tx) => kernels::gather_at_max(x, tx, (h, wd), *k),
                None => zeros(n * c * (h / k) * (wd / k)),
            }
        }
        Op::Relu => masked_by_input(x, tx),
        Op::Dropout { .. } => {
            let Cache::Mask(mask) = cache else { return Err(internal("dropout")) };
            let plane: usize = dims[2..].iter().product();
            match tx {
                Some(tx) => tx.chunks(plane).zip(mask).flat_map(|(r, &m)| r.iter().map(move |&a| a * m)).collect(),
                None => zeros(x.len()),
            }
        }
        Op::Flatten => tx.map_or_else(|| zeros(x.len()), <[T]>::to_vec),
        Op::BatchNorm { gamma, beta, .. } => {
            let Cache::Norm(c) = cache else { return Err(internal("batch norm")) };
            norm::tangent(c, dims, w, v, (*gamma, *beta), tx)?
        }
    })
}
