//! Batch norm's rules (see [`super::rules`]) over dimension 1 of `N×C[×…]` data, with batch or
//! fixed statistics. Per-channel sums in f64; each elementwise quantity in one pass, without
//! temporaries the size of the activation (DTN's are tens of megabytes).
//!
//! With `x̂ = (x − μ)/s`, `s = √(σ² + ε)`, `y = γx̂ + β`, means over the `M` values of a channel:
//! - batch statistics: `R{x̂} = (R{x} − mean R{x} − x̂·R{s})/s` with `R{s} = mean(x̂·R{x})`;
//!   `∂x = (∂x̂ − mean ∂x̂ − x̂·mean(∂x̂·x̂))/s` for `∂x̂ = γ·∂y`, and its tangent by the product rule;
//! - fixed statistics: `R{x̂} = R{x}/s`, `∂x = ∂x̂/s`.
use super::Weights;
use crate::error::{Error, Result};
use crate::ops::{widen, Real};

pub(super) struct NormCache<T> {
    xhat: Vec<T>,
    txhat: Option<Vec<T>>,
    /// `s` and `R{s}` per channel (`R{s} = 0` with fixed statistics).
    s: Vec<f64>,
    rs: Vec<f64>,
    batch: bool,
}

/// `(channels, values per plane, values per channel)`.
fn sizes(dims: &[usize]) -> Result<(usize, usize, usize)> {
    if dims.len() < 2 {
        return Err(Error::Shape(format!("batch norm needs N×C[×…] input, got {dims:?}")));
    }
    let plane = dims[2..].iter().product::<usize>();
    Ok((dims[1], plane, dims[0] * plane))
}

/// Calls `f(channel, range)` for each plane of `N×C×…` data.
fn for_each_plane(dims: &[usize], mut f: impl FnMut(usize, std::ops::Range<usize>)) {
    let (c, plane) = (dims[1], dims[2..].iter().product::<usize>());
    for i in 0..dims[0] * c {
        f(i % c, i * plane..(i + 1) * plane);
    }
}

/// Per-channel means of `g(i)` over every index `i` of the channel.
fn means(dims: &[usize], count: usize, g: impl Fn(usize) -> f64) -> Vec<f64> {
    let mut m = vec![0.0; dims[1]];
    for_each_plane(dims, |ch, r| m[ch] += r.map(&g).sum::<f64>());
    m.iter_mut().for_each(|v| *v /= count as f64);
    m
}

/// `y`, `R{y}` and what the backward pass needs.
type Normalised<T> = (Vec<T>, Option<Vec<T>>, NormCache<T>);

#[allow(clippy::too_many_arguments)]
pub(super) fn forward<T: Real>(
    x: &[T],
    tx: Option<&[T]>,
    dims: &[usize],
    w: &Weights<T>,
    v: Option<&Weights<T>>,
    (gamma, beta): (usize, usize),
    running: Option<&(Vec<f64>, Vec<f64>)>,
    eps: f64,
) -> Result<Normalised<T>> {
    let (_, _, count) = sizes(dims)?;
    let (mean, var) = match running {
        Some((m, v)) => (m.clone(), v.clone()),
        None => {
            let mean = means(dims, count, |i| x[i].as_f64());
            let mut var = vec![0.0; dims[1]];
            for_each_plane(dims, |ch, r| var[ch] += r.map(|i| (x[i].as_f64() - mean[ch]).powi(2)).sum::<f64>());
            var.iter_mut().for_each(|v| *v /= count as f64);
            (mean, var)
        }
    };
    let s: Vec<f64> = var.iter().map(|v| (v + eps).sqrt()).collect();
    let (g, b) = (widen(&w[gamma]), widen(&w[beta]));
    let (mut xhat, mut y) = (vec![T::zero(); x.len()], vec![T::zero(); x.len()]);
    for_each_plane(dims, |ch, r| {
        for i in r {
            let h = (x[i].as_f64() - mean[ch]) / s[ch];
            xhat[i] = T::of_f64(h);
            y[i] = T::of_f64(g[ch] * h + b[ch]);
        }
    });
    let (mut rs, mut txhat, mut ty) = (vec![0.0; dims[1]], None, None);
    if let Some(v) = v {
        let tv = |i: usize| tx.map_or(0.0, |tx| tx[i].as_f64());
        let mt = if running.is_none() { means(dims, count, tv) } else { vec![0.0; dims[1]] };
        if running.is_none() {
            rs = means(dims, count, |i| xhat[i].as_f64() * tv(i));
        }
        let (tg, tb) = (widen(&v[gamma]), widen(&v[beta]));
        let (mut th, mut out) = (vec![T::zero(); x.len()], vec![T::zero(); x.len()]);
        for_each_plane(dims, |ch, r| {
            for i in r {
                let h = xhat[i].as_f64();
                let dh = (tv(i) - mt[ch] - h * rs[ch]) / s[ch];
                th[i] = T::of_f64(dh);
                out[i] = T::of_f64(tg[ch] * h + g[ch] * dh + tb[ch]);
            }
        });
        (txhat, ty) = (Some(th), Some(out));
    }
    Ok((y, ty, NormCache { xhat, txhat, s, rs, batch: running.is_none() }))
}

/// Adds `∂γ, ∂β` (and their tangents) and returns `∂x` (and `R{∂x}`).
#[allow(clippy::too_many_arguments)]
pub(super) fn backward<T: Real>(
    c: &NormCache<T>,
    dims: &[usize],
    w: &Weights<T>,
    v: Option<&Weights<T>>,
    (gamma, beta): (usize, usize),
    gy: &[T],
    rgy: Option<&[T]>,
    grads: &mut Weights<T>,
    rgrads: Option<&mut Weights<T>>,
) -> Result<(Vec<T>, Option<Vec<T>>)> {
    let (channels, _, count) = sizes(dims)?;
    let (xhat, s) = (&c.xhat, &c.s);
    let g = widen(&w[gamma]);
    // Per-channel sums Σ∂y and Σ∂y·x̂ give ∂β, ∂γ and the two means of ∂x̂ = γ·∂y.
    let (mut sum_gy, mut sum_gy_xh) = (vec![0.0; channels], vec![0.0; channels]);
    for_each_plane(dims, |ch, r| {
        for i in r {
            sum_gy[ch] += gy[i].as_f64();
            sum_gy_xh[ch] += gy[i].as_f64() * xhat[i].as_f64();
        }
    });
    for ch in 0..channels {
        grads[gamma][ch] += T::of_f64(sum_gy_xh[ch]);
        grads[beta][ch] += T::of_f64(sum_gy[ch]);
    }
    let m = count as f64;
    let (m1, m2): (Vec<f64>, Vec<f64>) = if c.batch {
        (0..channels).map(|ch| (g[ch] * sum_gy[ch] / m, g[ch] * sum_gy_xh[ch] / m)).unzip()
    } else {
        (vec![0.0; channels], vec![0.0; channels])
    };
    let mut gx = vec![T::zero(); gy.len()];
    for_each_plane(dims, |ch, r| {
        for i in r {
            gx[i] = T::of_f64((g[ch] * gy[i].as_f64() - m1[ch] - xhat[i].as_f64() * m2[ch]) / s[ch]);
        }
    });

    let (Some(v), Some(rgy), Some(rg)) = (v, rgy, rgrads) else { return Ok((gx, None)) };
    let txhat = c.txhat.as_ref().ok_or_else(|| Error::Internal("batch norm: no tangent kept".into()))?;
    let tg = widen(&v[gamma]);
    let (mut sum_r, mut sum_r_xh, mut sum_gy_th) = (vec![0.0; channels], vec![0.0; channels], vec![0.0; channels]);
    for_each_plane(dims, |ch, r| {
        for i in r {
            sum_r[ch] += rgy[i].as_f64();
            sum_r_xh[ch] += rgy[i].as_f64() * xhat[i].as_f64();
            sum_gy_th[ch] += gy[i].as_f64() * txhat[i].as_f64();
        }
    });
    for ch in 0..channels {
        rg[gamma][ch] += T::of_f64(sum_r_xh[ch] + sum_gy_th[ch]);
        rg[beta][ch] += T::of_f64(sum_r[ch]);
    }
    let mut rgx = vec![T::zero(); gy.len()];
    if c.batch {
        // R{∂x̂} = R{γ}·∂y + γ·R{∂y}; its means, and mean(R{∂x̂}·x̂ + ∂x̂·R{x̂}).
        let rm1: Vec<f64> = (0..channels).map(|ch| (tg[ch] * sum_gy[ch] + g[ch] * sum_r[ch]) / m).collect();
        let rm2: Vec<f64> = (0..channels)
            .map(|ch| (tg[ch] * sum_gy_xh[ch] + g[ch] * sum_r_xh[ch] + g[ch] * sum_gy_th[ch]) / m)
            .collect();
        for_each_plane(dims, |ch, r| {
            for i in r {
                let (h, th, d, rd) = (xhat[i].as_f64(), txhat[i].as_f64(), gy[i].as_f64(), rgy[i].as_f64());
                let a = g[ch] * d - m1[ch] - h * m2[ch];
                let ra = tg[ch] * d + g[ch] * rd - rm1[ch] - th * m2[ch] - h * rm2[ch];
                rgx[i] = T::of_f64(ra / s[ch] - a * c.rs[ch] / (s[ch] * s[ch]));
            }
        });
    } else {
        for_each_plane(dims, |ch, r| {
            for i in r {
                rgx[i] = T::of_f64((tg[ch] * gy[i].as_f64() + g[ch] * rgy[i].as_f64()) / s[ch]);
            }
        });
    }
    Ok((gx, Some(rgx)))
}

/// `(∂γ, ∂β)` of sample `n` alone; only with fixed statistics.
pub(super) fn sample_grads<T: Real>(c: &NormCache<T>, dims: &[usize], gy: &[T], n: usize) -> Result<(Vec<T>, Vec<T>)> {
    if c.batch {
        return Err(Error::config(
            "mode",
            "per-sample derivatives need evaluation mode: with batch statistics every output depends on the whole batch",
        ));
    }
    let (channels, plane, _) = sizes(dims)?;
    let (mut gg, mut gb) = (vec![T::zero(); channels], vec![T::zero(); channels]);
    for ch in 0..channels {
        let r = (n * channels + ch) * plane..(n * channels + ch + 1) * plane;
        gg[ch] = T::of_f64(r.clone().map(|i| gy[i].as_f64() * c.xhat[i].as_f64()).sum::<f64>());
        gb[ch] = T::of_f64(r.map(|i| gy[i].as_f64()).sum::<f64>());
    }
    Ok((gg, gb))
}

/// `R{y}` from a kept forward pass (see [`forward`]'s tangent).
pub(super) fn tangent<T: Real>(
    c: &NormCache<T>,
    dims: &[usize],
    w: &Weights<T>,
    v: &Weights<T>,
    (gamma, beta): (usize, usize),
    tx: Option<&[T]>,
) -> Result<Vec<T>> {
    let (channels, _, count) = sizes(dims)?;
    let tv = |i: usize| tx.map_or(0.0, |tx| tx[i].as_f64());
    let (mt, rs) = if c.batch {
        (means(dims, count, tv), means(dims, count, |i| c.xhat[i].as_f64() * tv(i)))
    } else {
        (vec![0.0; channels], vec![0.0; channels])
    };
    let (g, tg, tb) = (widen(&w[gamma]), widen(&v[gamma]), widen(&v[beta]));
    let mut out = vec![T::zero(); c.xhat.len()];
    for_each_plane(dims, |ch, r| {
        for i in r {
            let h = c.xhat[i].as_f64();
            let dh = (tv(i) - mt[ch] - h * rs[ch]) / c.s[ch];
            out[i] = T::of_f64(tg[ch] * h + g[ch] * dh + tb[ch]);
        }
    });
    Ok(out)
}
