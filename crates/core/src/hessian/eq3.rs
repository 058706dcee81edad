//! The paper's Eq. 3 diagnostics at one point of a training run (Sec. 3.2, 3.5, Fig. 3).
//!
//! With `g = ∇L(θ)` the gradient of the mean loss over a fixed probe set, `H` its Hessian
//! and `α` a step size: A1 asks that the surface be flat along the gradient (`‖H·g‖ ≈ 0`, small
//! curvature `gᵀHg/‖g‖²`), so that a step keeps descending — the Eq. 4 integral
//! `‖g‖² − α·gᵀHg/2` stays positive, and `L(θ − αg) − L(θ) ≈ −α·(‖g‖² − α·gᵀHg/2)`; A2 asks
//! that the gradient be robust to perturbations: `cos(∇L(θ), ∇L(θ + δ))` for `δ = −α·g` and for
//! a random `δ` of the same norm (Fig. 3), and the minibatch gradient `g̃` close to `g`.
use super::operator::{Batch, DatasetHessian};
use super::spectra::SymmetricOperator;
use crate::error::Result;
use crate::ops::Real;
use crate::program::{self, Program, Weights};
use rand::SeedableRng;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Eq3 {
    /// Probe-set loss `L(θ)`.
    pub loss: f64,
    /// `‖g‖`.
    pub grad_norm: f64,
    /// `‖H·g‖`.
    pub hg_norm: f64,
    /// `gᵀHg / ‖g‖²`: curvature along the gradient.
    pub curvature: f64,
    /// The step size `α` of the quantities below.
    pub alpha: f64,
    /// Eq. 4: `‖g‖² − α·gᵀHg/2`.
    pub descent: f64,
    /// `L(θ − αg) − L(θ)`, measured (compare `−α·descent`).
    pub loss_change: f64,
    /// `cos(∇L(θ), ∇L(θ − αg))`.
    pub cos_along_gradient: f64,
    /// `cos(∇L(θ), ∇L(θ + δ))` for a random `δ` with `‖δ‖ = α‖g‖`.
    pub cos_random: f64,
    /// `cos(g̃, g)` for the step's minibatch gradient `g̃`.
    pub minibatch_cos: f64,
    /// `‖g̃ − g‖`.
    pub minibatch_noise: f64,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

fn cos(a: &[f64], b: &[f64]) -> f64 {
    dot(a, b) / (norm(a) * norm(b)).max(f64::MIN_POSITIVE)
}

/// `weights + flat` (in the weights' precision).
fn displaced<T: Real>(program: &Program, weights: &Weights<T>, flat: &[f64]) -> Result<Weights<T>> {
    let delta = program::unflatten(program, flat)?;
    Ok(weights.iter().zip(delta).map(|(w, d)| w.iter().zip(d).map(|(&w, d)| w + T::of_f64(d)).collect()).collect())
}

/// Measures [`Eq3`] at `weights`: `probe` gives `g` and `H` (with `program`), `minibatch` the
/// step's gradient `g̃` (with `minibatch_program`, the training step's mode). `seed` draws the
/// random direction. Costs 4 probe gradients and one probe HVP.
pub fn measure<T: Real>(
    program: &Program,
    minibatch_program: &Program,
    weights: &Weights<T>,
    probe: &[Batch<T>],
    minibatch: &Batch<T>,
    alpha: f64,
    seed: u64,
) -> Result<Eq3> {
    let mut op = DatasetHessian::new(program, weights, probe);
    let (loss, g) = op.gradient()?;
    let hg = op.apply(&g)?;
    let g2 = dot(&g, &g);
    let ghg = dot(&g, &hg);
    let step: Vec<f64> = g.iter().map(|v| -alpha * v).collect();
    let (moved_loss, g_moved) = op.gradient_at(&displaced(program, weights, &step)?)?;
    let random = random_direction(seed, g.len(), alpha * g2.sqrt());
    let (_, g_random) = op.gradient_at(&displaced(program, weights, &random)?)?;
    let mini = program::gradient(minibatch_program, weights, &minibatch.x, &minibatch.loss)?;
    let mini = crate::ops::widen(&program::flatten(&mini.grad));
    let diff: Vec<f64> = mini.iter().zip(&g).map(|(a, b)| a - b).collect();
    Ok(Eq3 {
        loss,
        grad_norm: g2.sqrt(),
        hg_norm: norm(&hg),
        curvature: ghg / g2.max(f64::MIN_POSITIVE),
        alpha,
        descent: g2 - alpha * ghg / 2.0,
        loss_change: moved_loss - loss,
        cos_along_gradient: cos(&g, &g_moved),
        cos_random: cos(&g, &g_random),
        minibatch_cos: cos(&mini, &g),
        minibatch_noise: norm(&diff),
    })
}

/// A Gaussian direction of norm `length`, from `seed`.
fn random_direction(seed: u64, n: usize, length: f64) -> Vec<f64> {
    use rand::Rng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let v: Vec<f64> = (0..n)
        .map(|_| {
            // Box–Muller.
            let (u1, u2): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random());
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        })
        .collect();
    let scale = length / norm(&v).max(f64::MIN_POSITIVE);
    v.into_iter().map(|x| x * scale).collect()
}
