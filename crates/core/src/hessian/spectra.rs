//! Spectra of a symmetric operator known only through products — PyHessian's three analyses
//! (Yao et al. 2020) for a loss Hessian applied by Hessian-vector products, in f64:
//! top eigenpairs ([`top_eigen`], Lanczos), trace ([`hutchinson_trace`]) and eigenvalue density
//! ([`slq_density`], stochastic Lanczos quadrature).
//!
//! Shapes: the operator maps `[n]` to `[n]`, `n = op.dim()`. A product may cost several
//! gradients, so each routine counts them and stops as early as its tolerance allows. Lanczos
//! keeps its basis for full reorthogonalisation: `m·n` f64 for `m` steps, plus `k·n` for the
//! returned eigenvectors.
//!
//! Randomness: the `i`-th random vector of a routine is [`rademacher`]`(seed, i, n)` — `i` counts
//! samples in [`hutchinson_trace`], runs in [`slq_density`]; [`top_eigen`] starts from `i = 0`
//! and restarts from Gaussian vectors `i = 1, 2, …` — so any result can be rebuilt from its seed.
//!
//! ```
//! use goldpan_core::hessian::spectra::{top_eigen, DenseOperator, EigenConfig};
//! let mut a = DenseOperator::new(3, vec![2.0, 1.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0, -1.0]);
//! let eig = top_eigen(&mut a, &EigenConfig { k: 2, ..Default::default() }).unwrap();
//! assert!((eig.values[0] - 3.0).abs() < 1e-9 && (eig.values[1] - 1.0).abs() < 1e-9);
//! ```
use faer::{Mat, Side};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::models::mix_seed;
use crate::{Error, Result};

/// A symmetric linear operator on Rⁿ, known only through products.
pub trait SymmetricOperator {
    fn dim(&self) -> usize;
    /// `A·v`. Errors (cancellation, data errors) propagate out of every routine unchanged.
    fn apply(&mut self, v: &[f64]) -> Result<Vec<f64>>;

    /// `A·v` for each `v`: operators whose products share work across vectors override it.
    fn apply_many(&mut self, vs: &[Vec<f64>]) -> Result<Vec<Vec<f64>>> {
        vs.iter().map(|v| self.apply(v)).collect()
    }
}

/// A dense symmetric matrix as an operator (tests, small problems). Row-major `n×n`; symmetry
/// is the caller's promise, not checked.
#[derive(Debug, Clone)]
pub struct DenseOperator {
    n: usize,
    values: Vec<f64>,
}

impl DenseOperator {
    /// # Panics
    /// If `values.len() != n·n`.
    pub fn new(n: usize, values: Vec<f64>) -> Self {
        assert_eq!(values.len(), n * n, "DenseOperator::new: {} values for a {n}×{n} matrix", values.len());
        Self { n, values }
    }
}

impl SymmetricOperator for DenseOperator {
    fn dim(&self) -> usize {
        self.n
    }

    fn apply(&mut self, v: &[f64]) -> Result<Vec<f64>> {
        if v.len() != self.n {
            return Err(Error::Shape(format!("vector of length {} for a {}×{} matrix", v.len(), self.n, self.n)));
        }
        if self.n == 0 {
            return Ok(Vec::new());
        }
        Ok(self.values.chunks_exact(self.n).map(|row| dot(row, v)).collect())
    }
}

/// A closure `v ↦ A·v` as an operator of dimension `dim`.
pub struct FnOperator<F> {
    dim: usize,
    f: F,
}

impl<F: FnMut(&[f64]) -> Result<Vec<f64>>> FnOperator<F> {
    pub fn new(dim: usize, f: F) -> Self {
        Self { dim, f }
    }
}

impl<F: FnMut(&[f64]) -> Result<Vec<f64>>> SymmetricOperator for FnOperator<F> {
    fn dim(&self) -> usize {
        self.dim
    }

    fn apply(&mut self, v: &[f64]) -> Result<Vec<f64>> {
        (self.f)(v)
    }
}

/// The `index`-th Rademacher vector (entries ±1, equally likely) of the stream `seed`.
pub fn rademacher(seed: u64, index: u64, n: usize) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(seed, index));
    (0..n).map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 }).collect()
}

/// The `index`-th standard normal vector of the stream `seed` (Box–Muller). Restarts use it:
/// in small dimensions a Rademacher vector can lie exactly in the span already found.
fn gaussian(seed: u64, index: u64, n: usize) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(mix_seed(seed, index));
    (0..n)
        .map(|_| {
            let (u, v): (f64, f64) = (rng.random(), rng.random());
            (-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        })
        .collect()
}

// === Top eigenpairs ===

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EigenConfig {
    /// How many of the algebraically largest eigenpairs.
    pub k: usize,
    /// Cap on Lanczos steps, i.e. on operator products (also capped at `n`).
    pub max_iter: usize,
    /// Stop when every wanted pair's relative residual estimate is ≤ `tol` (PyHessian: 1e-3).
    pub tol: f64,
    pub seed: u64,
}

impl Default for EigenConfig {
    fn default() -> Self {
        Self { k: 1, max_iter: 100, tol: 1e-3, seed: 0 }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Eigen {
    /// The `k` algebraically largest eigenvalues, descending.
    pub values: Vec<f64>,
    /// Unit eigenvectors, in the order of `values`.
    pub vectors: Vec<Vec<f64>>,
    /// `‖Av − λv‖ / max(|λ|, √ε·‖T‖)` per pair, from the Lanczos relation `AQ = QT + r·e_mᵀ`
    /// (`|β_m·s_m|`, no extra products); full reorthogonalisation keeps it faithful to rounding.
    pub residuals: Vec<f64>,
    /// The stopping rule of [`top_eigen`] was met; false when `max_iter` ran out first.
    pub converged: bool,
    /// Operator applications used.
    pub products: usize,
}

/// The `k` algebraically largest eigenpairs by Lanczos with full reorthogonalisation.
///
/// Starts from [`rademacher`]`(seed, 0, n)`, takes steps until the top-k Ritz pairs' residual
/// estimates are all ≤ `tol`, or `min(max_iter, n)` steps. A breakdown (`β ≈ 0`) means the Krylov
/// space is invariant and its Ritz pairs exact; since the start vector can miss eigenvectors
/// (repeated eigenvalues, exact orthogonality), Lanczos then restarts from a Gaussian vector
/// orthogonalised against the basis; convergence then also waits for that new block's
/// largest Ritz value, the largest eigenvalue the start vector could have missed. Not converging within `max_iter` is not an error: see [`Eigen::converged`].
pub fn top_eigen(op: &mut dyn SymmetricOperator, config: &EigenConfig) -> Result<Eigen> {
    let n = op.dim();
    let k = config.k;
    if k == 0 {
        return Err(Error::config("k", "must be ≥ 1"));
    }
    if k > n {
        return Err(Error::config("k", format!("{k} eigenpairs asked of an operator of dimension {n}")));
    }
    if config.max_iter < k {
        return Err(Error::config("max_iter", format!("{} steps cannot give k = {k} eigenpairs", config.max_iter)));
    }
    check_tol(config.tol)?;
    let steps = config.max_iter.min(n);
    let mut lanczos = Lanczos::new(rademacher(config.seed, 0, n));
    let (mut restarts, mut converged) = (0, false);
    loop {
        let extended = lanczos.step(op)?;
        // After a breakdown the top k are only trusted once the block probing the rest of the
        // space has converged its own largest Ritz value: nothing above is left unseen there.
        let trusted = lanczos.len() == n
            || match restarts {
                0 => extended,
                _ => top_ritz(&lanczos, lanczos.block_start, 1)?.residuals[0] <= config.tol,
            };
        if trusted && lanczos.len() >= k && top_ritz(&lanczos, 0, k)?.residuals.iter().all(|&r| r <= config.tol) {
            converged = true;
            break;
        }
        if lanczos.len() >= steps {
            break;
        }
        if !extended {
            restarts += 1;
            if !lanczos.restart(gaussian(config.seed, restarts, n)) {
                break;
            }
        }
    }
    if lanczos.len() < k {
        return Err(Error::Internal(format!("Lanczos spanned only {} directions, k = {k}", lanczos.len())));
    }
    let ritz = top_ritz(&lanczos, 0, k)?;
    let vectors = (0..k)
        .map(|c| {
            let mut v = vec![0.0; n];
            for (j, q) in lanczos.basis.iter().enumerate() {
                axpy(ritz.coefficients[(j, c)], q, &mut v);
            }
            let norm = norm(&v);
            scale(&mut v, 1.0 / norm);
            v
        })
        .collect();
    Ok(Eigen { converged, values: ritz.values, vectors, residuals: ritz.residuals, products: lanczos.products })
}

/// The top `k` Ritz pairs of the tridiagonal (or of its trailing block from `from`), descending.
struct Ritz {
    values: Vec<f64>,
    residuals: Vec<f64>,
    /// Column `c` is pair `c`'s eigenvector of `T`, i.e. its coordinates in the basis from `from`.
    coefficients: Mat<f64>,
}

fn top_ritz(lanczos: &Lanczos, from: usize, k: usize) -> Result<Ritz> {
    let (theta, s) = lanczos.tridiagonal_eigen(from)?;
    let m = theta.len();
    // Relative residuals need a floor for eigenvalues at (or rounding away from) zero.
    let floor = (f64::EPSILON.sqrt() * theta.iter().fold(0.0f64, |a, t| a.max(t.abs()))).max(f64::MIN_POSITIVE);
    let columns: Vec<usize> = (0..k).map(|c| m - 1 - c).collect();
    Ok(Ritz {
        values: columns.iter().map(|&i| theta[i]).collect(),
        residuals: columns
            .iter()
            .map(|&i| (lanczos.residual * s[(m - 1, i)]).abs() / theta[i].abs().max(floor))
            .collect(),
        coefficients: Mat::from_fn(m, k, |j, c| s[(j, columns[c])]),
    })
}

// === Trace ===

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceConfig {
    pub max_samples: usize,
    /// At least 2: the standard error needs two samples.
    pub min_samples: usize,
    /// Stop when `|mean_t − mean_{t−1}| ≤ tol·|mean_t|` (PyHessian's rule), after `min_samples`.
    pub tol: f64,
    pub seed: u64,
}

impl Default for TraceConfig {
    fn default() -> Self {
        Self { max_samples: 200, min_samples: 10, tol: 1e-3, seed: 0 }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub estimate: f64,
    /// Sample standard deviation of `zᵀAz` over `√samples`.
    pub std_error: f64,
    /// Samples drawn, one product each.
    pub samples: usize,
    /// Running mean after each sample.
    pub history: Vec<f64>,
}

/// Hutchinson's estimator: the mean of `zᵀAz` over Rademacher `z` (sample `t` is
/// [`rademacher`]`(seed, t, n)`), with its standard error.
pub fn hutchinson_trace(op: &mut dyn SymmetricOperator, config: &TraceConfig) -> Result<Trace> {
    let n = nonempty(op)?;
    if config.min_samples < 2 {
        return Err(Error::config("min_samples", "must be ≥ 2 (a standard error needs two samples)"));
    }
    if config.max_samples < config.min_samples {
        return Err(Error::config("max_samples", format!("must be ≥ min_samples = {}", config.min_samples)));
    }
    check_tol(config.tol)?;
    let (mut mean, mut m2, mut history) = (0.0, 0.0, Vec::with_capacity(config.max_samples));
    let mut products = 0;
    for t in 1..=config.max_samples {
        let z = rademacher(config.seed, t as u64 - 1, n);
        let x = dot(&z, &apply(op, &z, &mut products)?);
        // Welford: a constant sample stream keeps the mean exact and the variance exactly 0.
        let previous = mean;
        let delta = x - mean;
        mean += delta / t as f64;
        m2 += delta * (x - mean);
        history.push(mean);
        if t >= config.min_samples && (mean - previous).abs() <= config.tol * mean.abs() {
            break;
        }
    }
    let samples = history.len() as f64;
    Ok(Trace { estimate: mean, std_error: (m2 / (samples - 1.0) / samples).sqrt(), samples: history.len(), history })
}

// === Density ===

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DensityConfig {
    /// Independent start vectors `n_v` (PyHessian: 1).
    pub runs: usize,
    /// Lanczos steps `m` per run (PyHessian's `iter`: 100), capped at `n`.
    pub steps: usize,
    /// Gaussian kernel variance as a fraction of the squared node range, `σ² = sigma2·width²`.
    pub sigma2: f64,
    /// Grid points.
    pub grid: usize,
    pub seed: u64,
}

impl Default for DensityConfig {
    fn default() -> Self {
        Self { runs: 1, steps: 100, sigma2: 1e-5, grid: 10_000, seed: 0 }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Density {
    /// Per run: Ritz values (Gauss quadrature nodes), ascending.
    pub nodes: Vec<Vec<f64>>,
    /// Per run: squared first components of the tridiagonal's eigenvectors, summing to 1.
    pub weights: Vec<Vec<f64>>,
    pub grid: Vec<f64>,
    /// The runs' average Gaussian-smoothed spectral measure on `grid`; integrates to ≈ 1.
    pub density: Vec<f64>,
    pub products: usize,
}

/// Stochastic Lanczos quadrature (Ghorbani et al. 2019; PyHessian's `density`).
///
/// Run `r` starts from [`rademacher`]`(seed, r, n)`, normalised, and takes `min(steps, n)` Lanczos
/// steps (fewer on breakdown, where the quadrature is already exact). Its nodes `θᵢ` and weights
/// `wᵢ` satisfy `Σ wᵢ θᵢʲ = vᵀAʲv / ‖v‖²` for `j < 2m`. The density is
/// `mean_r Σᵢ wᵢ·N(x; θᵢ, σ²)` on `grid` points spanning `[min θ, max θ]` padded by
/// `0.01·width + 6σ`, with `width = max θ − min θ` (or `max(|θ|, 1)` if all nodes coincide).
/// Unlike PyHessian (`σ² = sigma2·max(1, width)`, then renormalised) the kernel scales with the
/// spectrum, so the grid always resolves it, and no renormalisation is needed.
pub fn slq_density(op: &mut dyn SymmetricOperator, config: &DensityConfig) -> Result<Density> {
    let n = nonempty(op)?;
    if config.runs == 0 {
        return Err(Error::config("runs", "must be ≥ 1"));
    }
    if config.steps == 0 {
        return Err(Error::config("steps", "must be ≥ 1"));
    }
    if !(config.sigma2.is_finite() && config.sigma2 > 0.0) {
        return Err(Error::config("sigma2", format!("must be a finite number > 0, got {}", config.sigma2)));
    }
    if config.grid < 2 {
        return Err(Error::config("grid", "must be ≥ 2 points"));
    }
    let steps = config.steps.min(n);
    let (mut nodes, mut weights, mut products) = (Vec::new(), Vec::new(), 0);
    for run in 0..config.runs {
        let mut lanczos = Lanczos::new(rademacher(config.seed, run as u64, n));
        while lanczos.step(op)? && lanczos.len() < steps {}
        let (theta, s) = lanczos.tridiagonal_eigen(0)?;
        weights.push((0..theta.len()).map(|i| s[(0, i)] * s[(0, i)]).collect());
        nodes.push(theta);
        products += lanczos.products;
    }
    let (lo, hi) = nodes.iter().flatten().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &t| (l.min(t), h.max(t)));
    let top = lo.abs().max(hi.abs());
    let width = if hi - lo > 1e-12 * top { hi - lo } else { top.max(1.0) };
    let variance = config.sigma2 * width * width;
    let pad = 0.01 * width + 6.0 * variance.sqrt();
    let (lo, hi) = (lo - pad, hi + pad);
    let last = (config.grid - 1) as f64;
    let grid: Vec<f64> = (0..config.grid).map(|i| lo + (hi - lo) * i as f64 / last).collect();
    let norm = 1.0 / ((2.0 * std::f64::consts::PI * variance).sqrt() * config.runs as f64);
    let density = grid
        .iter()
        .map(|x| {
            let sum: f64 = nodes
                .iter()
                .zip(&weights)
                .flat_map(|(t, w)| t.iter().zip(w))
                .map(|(t, w)| w * (-(x - t) * (x - t) / (2.0 * variance)).exp())
                .sum();
            sum * norm
        })
        .collect();
    Ok(Density { nodes, weights, grid, density, products })
}

// === Lanczos, shared ===

/// Breakdown when `‖r‖ ≤ BREAKDOWN·max‖Aq‖`: the Krylov space is invariant to rounding.
const BREAKDOWN: f64 = 1e-12;

/// Lanczos with full reorthogonalisation: an orthonormal basis `Q` of the Krylov space and the
/// tridiagonal `T = QᵀAQ` (diagonal `alpha`, off-diagonal `beta`). Each new vector is
/// orthogonalised against the whole basis twice ("twice is enough"), so `Q` stays orthonormal to
/// rounding and no ghost copies of converged Ritz values appear.
struct Lanczos {
    basis: Vec<Vec<f64>>,
    alpha: Vec<f64>,
    /// `beta[j]` couples `q_j` and `q_{j+1}`; 0 where a new block was restarted.
    beta: Vec<f64>,
    /// The unit vector the next step applies the operator to; `None` after a breakdown.
    next: Option<Vec<f64>>,
    /// Coupling of `next` to the last basis vector (0 for a restart).
    next_beta: f64,
    /// Index of the first basis vector of the current block (after the last restart).
    block_start: usize,
    /// `‖r‖` after the last step, `AQ = QT + r·e_mᵀ`.
    residual: f64,
    /// Largest `‖Aq_j‖` so far, the scale of the breakdown test.
    scale: f64,
    products: usize,
}

impl Lanczos {
    fn new(mut start: Vec<f64>) -> Self {
        let norm = norm(&start);
        scale(&mut start, 1.0 / norm);
        let (alpha, beta) = (Vec::new(), Vec::new());
        Self {
            basis: Vec::new(),
            alpha,
            beta,
            next: Some(start),
            next_beta: 0.0,
            block_start: 0,
            residual: 0.0,
            scale: 0.0,
            products: 0,
        }
    }

    fn len(&self) -> usize {
        self.basis.len()
    }

    /// One step; false on breakdown, after which only [`Lanczos::restart`] can continue.
    fn step(&mut self, op: &mut dyn SymmetricOperator) -> Result<bool> {
        let q = self.next.take().ok_or_else(|| Error::Internal("Lanczos step after a breakdown".into()))?;
        let mut w = apply(op, &q, &mut self.products)?;
        self.scale = self.scale.max(norm(&w));
        if !self.basis.is_empty() {
            self.beta.push(self.next_beta);
        }
        self.basis.push(q);
        self.alpha.push(orthogonalise(&mut w, &self.basis));
        self.residual = norm(&w);
        if self.residual <= BREAKDOWN * self.scale {
            return Ok(false);
        }
        scale(&mut w, 1.0 / self.residual);
        self.next = Some(w);
        self.next_beta = self.residual;
        Ok(true)
    }

    /// Starts a new block from `v` orthogonalised against the basis; false if nothing of `v` is
    /// left (the basis spans the space).
    fn restart(&mut self, mut v: Vec<f64>) -> bool {
        let before = norm(&v);
        orthogonalise(&mut v, &self.basis);
        let after = norm(&v);
        if after <= 1e-8 * before {
            return false;
        }
        scale(&mut v, 1.0 / after);
        self.next = Some(v);
        self.next_beta = 0.0;
        self.block_start = self.len();
        true
    }

    /// Eigenvalues (ascending) and eigenvectors (columns) of `T[from.., from..]`.
    fn tridiagonal_eigen(&self, from: usize) -> Result<(Vec<f64>, Mat<f64>)> {
        let m = self.alpha.len() - from;
        let t = Mat::from_fn(m, m, |i, j| match i.abs_diff(j) {
            0 => self.alpha[from + i],
            1 => self.beta[from + i.min(j)],
            _ => 0.0,
        });
        let evd = t
            .self_adjoint_eigen(Side::Lower)
            .map_err(|e| Error::Internal(format!("tridiagonal eigendecomposition failed: {e:?}")))?;
        let s = evd.S().column_vector();
        Ok(((0..m).map(|i| s[i]).collect(), evd.U().to_owned()))
    }
}

/// Removes `w`'s components along the orthonormal `basis` in two classical Gram–Schmidt passes;
/// returns the total component removed along the last basis vector.
fn orthogonalise(w: &mut [f64], basis: &[Vec<f64>]) -> f64 {
    let mut last = 0.0;
    for _ in 0..2 {
        let h: Vec<f64> = basis.iter().map(|q| dot(q, w)).collect();
        for (q, &h) in basis.iter().zip(&h) {
            axpy(-h, q, w);
        }
        last += h.last().copied().unwrap_or(0.0);
    }
    last
}

// === Helpers ===

/// `A·v`, counted, with its length and finiteness checked.
fn apply(op: &mut dyn SymmetricOperator, v: &[f64], products: &mut usize) -> Result<Vec<f64>> {
    let y = op.apply(v)?;
    *products += 1;
    if y.len() != v.len() {
        return Err(Error::Shape(format!("operator returned {} values for a vector of length {}", y.len(), v.len())));
    }
    if let Some(i) = y.iter().position(|x| !x.is_finite()) {
        return Err(Error::Internal(format!(
            "operator returned a non-finite value ({}) at index {i} of product {products}",
            y[i]
        )));
    }
    Ok(y)
}

fn nonempty(op: &dyn SymmetricOperator) -> Result<usize> {
    match op.dim() {
        0 => Err(Error::config("operator", "has dimension 0; there is no spectrum")),
        n => Ok(n),
    }
}

fn check_tol(tol: f64) -> Result<()> {
    if tol.is_finite() && tol >= 0.0 {
        Ok(())
    } else {
        Err(Error::config("tol", format!("must be a finite number ≥ 0, got {tol}")))
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

fn scale(x: &mut [f64], a: f64) {
    for x in x {
        *x *= a;
    }
}
