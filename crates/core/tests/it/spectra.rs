//! `hessian::spectra` against dense linear algebra: Lanczos eigenpairs against faer's
//! eigendecomposition, Hutchinson against the exact trace and its theoretical variance, and
//! SLQ against the moments it must reproduce exactly.
use faer::{Mat, Side};
use goldpan_core::hessian::spectra::{
    hutchinson_trace, rademacher, slq_density, top_eigen, DenseOperator, DensityConfig, EigenConfig, FnOperator,
    TraceConfig,
};
use goldpan_core::Error;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A random orthogonal `n×n` matrix: Q of the QR of a uniform matrix.
fn random_orthogonal(n: usize, seed: u64) -> Mat<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let values: Vec<f64> = (0..n * n).map(|_| rng.random_range(-1.0..1.0)).collect();
    Mat::from_fn(n, n, |i, j| values[i * n + j]).qr().compute_Q()
}

/// Row-major `Q·diag(λ)·Qᵀ`, symmetrised exactly.
fn with_spectrum(lambda: &[f64], seed: u64) -> Vec<f64> {
    let n = lambda.len();
    let q = random_orthogonal(n, seed);
    let entry = |i: usize, j: usize| (0..n).map(|l| q[(i, l)] * lambda[l] * q[(j, l)]).sum::<f64>();
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let x = 0.5 * (entry(i, j) + entry(j, i));
            a[i * n + j] = x;
            a[j * n + i] = x;
        }
    }
    a
}

/// A random symmetric matrix with uniform entries.
fn random_symmetric(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let x = rng.random_range(-1.0..1.0);
            a[i * n + j] = x;
            a[j * n + i] = x;
        }
    }
    a
}

/// Dense eigendecomposition: eigenvalues descending, eigenvectors as rows in the same order.
fn dense_eigen(n: usize, a: &[f64]) -> (Vec<f64>, Vec<Vec<f64>>) {
    let evd = Mat::from_fn(n, n, |i, j| a[i * n + j]).self_adjoint_eigen(Side::Lower).unwrap();
    let s = evd.S().column_vector();
    let u = evd.U();
    ((0..n).rev().map(|i| s[i]).collect(), (0..n).rev().map(|i| (0..n).map(|r| u[(r, i)]).collect()).collect())
}

fn matvec(n: usize, a: &[f64], v: &[f64]) -> Vec<f64> {
    a.chunks_exact(n).map(|row| dot(row, v)).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn config_field(e: Error) -> String {
    match e {
        Error::Config { field, .. } => field,
        other => panic!("expected a config error, got {other}"),
    }
}

/// True relative residual `‖Av − λv‖ / |λ|`.
fn true_residual(n: usize, a: &[f64], lambda: f64, v: &[f64]) -> f64 {
    let av = matvec(n, a, v);
    av.iter().zip(v).map(|(x, y)| (x - lambda * y).powi(2)).sum::<f64>().sqrt() / lambda.abs()
}

// === top_eigen ===

#[test]
fn top_eigen_matches_dense_eigendecomposition() {
    let n = 60;
    // Separated top five, the rest spread over [-3, 2.5], distinct.
    let mut lambda = vec![10.0, 8.0, 6.5, 5.0, 4.0];
    lambda.extend((0..n - 5).map(|i| -3.0 + 5.5 * i as f64 / (n - 6) as f64));
    let a = with_spectrum(&lambda, 1);
    let (values, vectors) = dense_eigen(n, &a);
    let mut sorted = lambda.clone();
    sorted.sort_by(|a, b| b.total_cmp(a));
    for (d, l) in values.iter().zip(&sorted) {
        assert!((d - l).abs() < 1e-12, "test matrix built wrong");
    }

    let config = EigenConfig { k: 5, tol: 1e-10, ..Default::default() };
    let eig = top_eigen(&mut DenseOperator::new(n, a.clone()), &config).unwrap();
    assert!(eig.converged);
    assert!(eig.products < n, "Lanczos should converge before exhausting the space: {} products", eig.products);
    assert_eq!((eig.values.len(), eig.vectors.len(), eig.residuals.len()), (5, 5, 5));
    for c in 0..5 {
        assert!((eig.values[c] - values[c]).abs() < 1e-8, "λ{c}: {} vs {}", eig.values[c], values[c]);
        let v = &eig.vectors[c];
        assert!((dot(v, v) - 1.0).abs() < 1e-12);
        assert!(dot(v, &vectors[c]).abs() > 1.0 - 1e-8, "v{c} misaligned: {}", dot(v, &vectors[c]).abs());
        assert!(eig.residuals[c] <= 1e-10);
        // The reported residual is an estimate; it must be faithful to the true one.
        let r = true_residual(n, &a, eig.values[c], v);
        assert!((r - eig.residuals[c]).abs() < 1e-11, "pair {c}: true residual {r}, reported {}", eig.residuals[c]);
    }
}

#[test]
fn top_eigen_is_algebraically_largest_not_largest_in_magnitude() {
    let lambda: Vec<f64> = (1..=30).map(|i| -(i as f64)).collect();
    let a = with_spectrum(&lambda, 2);
    let config = EigenConfig { k: 3, tol: 1e-10, ..Default::default() };
    let eig = top_eigen(&mut DenseOperator::new(30, a), &config).unwrap();
    for (got, want) in eig.values.iter().zip([-1.0, -2.0, -3.0]) {
        assert!((got - want).abs() < 1e-8, "{:?}", eig.values);
    }
}

#[test]
fn top_eigen_reports_unconverged_pairs_when_max_iter_runs_out() {
    let n = 60;
    let a = random_symmetric(n, 3);
    let config = EigenConfig { k: 2, max_iter: 4, tol: 1e-10, seed: 0 };
    let eig = top_eigen(&mut DenseOperator::new(n, a.clone()), &config).unwrap();
    assert_eq!(eig.products, 4);
    assert!(!eig.converged);
    // The estimates stay truthful even far from convergence.
    for c in 0..2 {
        let r = true_residual(n, &a, eig.values[c], &eig.vectors[c]);
        assert!(r > 1e-3 && (r - eig.residuals[c]).abs() < 1e-10 * r.max(1.0), "{r} vs {}", eig.residuals[c]);
    }
}

#[test]
fn top_eigen_with_k_equal_n_on_a_tiny_matrix() {
    let a = random_symmetric(4, 4);
    let (values, _) = dense_eigen(4, &a);
    let eig = top_eigen(&mut DenseOperator::new(4, a), &EigenConfig { k: 4, ..Default::default() }).unwrap();
    assert!(eig.products <= 4);
    for (got, want) in eig.values.iter().zip(&values) {
        assert!((got - want).abs() < 1e-10, "{:?} vs {values:?}", eig.values);
    }
    for i in 0..4 {
        for j in 0..4 {
            let expected = if i == j { 1.0 } else { 0.0 };
            assert!((dot(&eig.vectors[i], &eig.vectors[j]) - expected).abs() < 1e-10);
        }
    }
}

#[test]
fn top_eigen_finds_repeated_eigenvalues_by_restarting() {
    // One start vector sees each eigenspace once: its Krylov space is {5, 2, 0} and breaks down
    // after 3 steps. Only a restart finds the second 5.
    let n = 30;
    let mut lambda = vec![5.0, 5.0, 2.0, 2.0, 2.0];
    lambda.resize(n, 0.0);
    let a = with_spectrum(&lambda, 5);
    let eig = top_eigen(&mut DenseOperator::new(n, a.clone()), &EigenConfig { k: 2, ..Default::default() }).unwrap();
    assert!(eig.converged);
    assert!((eig.values[0] - 5.0).abs() < 1e-10 && (eig.values[1] - 5.0).abs() < 1e-10, "{:?}", eig.values);
    assert!(dot(&eig.vectors[0], &eig.vectors[1]).abs() < 1e-10);
    for v in &eig.vectors {
        assert!(true_residual(n, &a, 5.0, v) < 1e-10);
    }
    assert!(eig.products < 10, "{} products", eig.products);

    // The identity is the extreme case: every step breaks down.
    let mut identity = FnOperator::new(50, |v: &[f64]| Ok(v.to_vec()));
    let eig = top_eigen(&mut identity, &EigenConfig { k: 3, ..Default::default() }).unwrap();
    assert!(eig.values.len() == 3 && eig.values.iter().all(|l| (l - 1.0).abs() < 1e-14), "{:?}", eig.values);
    assert_eq!(eig.products, 3);
}

#[test]
fn top_eigen_survives_start_vectors_orthogonal_to_eigenvectors() {
    // Eigenvectors (1,1,0)/√2 → 3, (1,−1,0)/√2 → 1, (0,0,1) → −1: half of all Rademacher starts
    // are orthogonal to one of the first two.
    let a = vec![2.0, 1.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0, -1.0];
    for seed in 0..32 {
        for (k, want) in [(2, &[3.0, 1.0][..]), (3, &[3.0, 1.0, -1.0][..])] {
            let eig = top_eigen(&mut DenseOperator::new(3, a.clone()), &EigenConfig { k, seed, ..Default::default() });
            let eig = eig.unwrap();
            assert!(eig.converged && eig.products <= 3, "seed {seed}: {eig:?}");
            for (got, want) in eig.values.iter().zip(want) {
                assert!((got - want).abs() < 1e-12, "seed {seed}, k {k}: {:?}", eig.values);
            }
        }
    }
}

#[test]
fn top_eigen_validates_its_config() {
    let mut a = DenseOperator::new(4, random_symmetric(4, 6));
    let err = |config: EigenConfig, a: &mut DenseOperator| config_field(top_eigen(a, &config).unwrap_err());
    assert_eq!(err(EigenConfig { k: 5, ..Default::default() }, &mut a), "k");
    assert_eq!(err(EigenConfig { k: 0, ..Default::default() }, &mut a), "k");
    assert_eq!(err(EigenConfig { k: 3, max_iter: 2, ..Default::default() }, &mut a), "max_iter");
    assert_eq!(err(EigenConfig { tol: f64::NAN, ..Default::default() }, &mut a), "tol");
}

#[test]
fn operator_errors_propagate_unchanged() {
    let failing = || {
        let mut calls = 0;
        FnOperator::new(10, move |v: &[f64]| {
            calls += 1;
            if calls > 2 {
                return Err(Error::Cancelled { at: "test".into(), checkpoint: None });
            }
            Ok(v.iter().enumerate().map(|(i, x)| i as f64 * x).collect())
        })
    };
    let cancelled = |e: Error| matches!(e, Error::Cancelled { ref at, checkpoint: None } if at == "test");
    let config = EigenConfig { k: 2, tol: 0.0, ..Default::default() };
    assert!(cancelled(top_eigen(&mut failing(), &config).unwrap_err()));
    assert!(cancelled(hutchinson_trace(&mut failing(), &TraceConfig::default()).unwrap_err()));
    assert!(cancelled(slq_density(&mut failing(), &DensityConfig::default()).unwrap_err()));
}

#[test]
fn non_finite_operator_output_is_an_internal_error() {
    let mut nan = FnOperator::new(5, |v: &[f64]| Ok(v.iter().map(|x| x * f64::NAN).collect()));
    match top_eigen(&mut nan, &EigenConfig::default()).unwrap_err() {
        Error::Internal(message) => assert!(message.contains("non-finite"), "{message}"),
        other => panic!("expected an internal error, got {other}"),
    }
    let mut short = FnOperator::new(5, |_: &[f64]| Ok(vec![0.0; 4]));
    assert!(matches!(hutchinson_trace(&mut short, &TraceConfig::default()).unwrap_err(), Error::Shape(_)));
}

// === hutchinson_trace ===

#[test]
fn hutchinson_is_exact_on_diagonal_matrices() {
    let n = 40;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let d: Vec<f64> = (0..n).map(|_| rng.random_range(-2.0..3.0)).collect();
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        a[i * n + i] = d[i];
    }
    let trace: f64 = d.iter().sum();
    let config = TraceConfig { min_samples: 5, ..Default::default() };
    let t = hutchinson_trace(&mut DenseOperator::new(n, a), &config).unwrap();
    // zᵢ² = 1, so every sample is the trace: the mean cannot move and stops at min_samples.
    assert_eq!(t.samples, 5);
    assert!((t.estimate - trace).abs() < 1e-12 * trace.abs().max(1.0), "{} vs {trace}", t.estimate);
    assert_eq!(t.std_error, 0.0);
    assert!(t.history.iter().all(|&m| m == t.estimate));
}

#[test]
fn hutchinson_matches_the_trace_and_its_theoretical_variance() {
    let n = 30;
    let a = random_symmetric(n, 8);
    let trace: f64 = (0..n).map(|i| a[i * n + i]).sum();
    let off_diagonal: f64 = a.iter().map(|x| x * x).sum::<f64>() - (0..n).map(|i| a[i * n + i].powi(2)).sum::<f64>();
    let config = TraceConfig { max_samples: 3000, min_samples: 10, tol: 0.0, seed: 11 };
    let t = hutchinson_trace(&mut DenseOperator::new(n, a.clone()), &config).unwrap();
    assert_eq!(t.samples, 3000);
    assert_eq!(t.history.len(), 3000);
    assert_eq!(*t.history.last().unwrap(), t.estimate);
    assert!((t.estimate - trace).abs() <= 4.0 * t.std_error, "{} ± {} vs {trace}", t.estimate, t.std_error);
    // Var(zᵀAz) = 2·Σ_{i≠j} a_ij² for Rademacher z.
    let theory = (2.0 * off_diagonal / t.samples as f64).sqrt();
    let ratio = t.std_error / theory;
    assert!((0.8..1.25).contains(&ratio), "std_error {} vs theory {theory}", t.std_error);

    // The running mean is the mean of the samples, rebuilt from the documented stream.
    let samples: Vec<f64> = (0..20u64)
        .map(|s| {
            let z = rademacher(11, s, n);
            dot(&z, &matvec(n, &a, &z))
        })
        .collect();
    assert!((t.history[19] - samples.iter().sum::<f64>() / 20.0).abs() < 1e-12);
}

#[test]
fn hutchinson_stops_when_the_mean_settles() {
    let n = 30;
    let a = random_symmetric(n, 9);
    let config = TraceConfig { max_samples: 5000, min_samples: 10, tol: 1e-3, seed: 1 };
    let t = hutchinson_trace(&mut DenseOperator::new(n, a), &config).unwrap();
    assert!(t.samples >= 10 && t.samples < 5000, "{} samples", t.samples);
    let h = &t.history;
    let settled = |i: usize| (h[i] - h[i - 1]).abs() <= 1e-3 * h[i].abs();
    assert!(settled(h.len() - 1));
    assert!((9..h.len() - 1).all(|i| !settled(i)), "should have stopped earlier");
}

#[test]
fn hutchinson_validates_its_config() {
    let mut a = DenseOperator::new(3, random_symmetric(3, 10));
    let err = |config: TraceConfig, a: &mut DenseOperator| config_field(hutchinson_trace(a, &config).unwrap_err());
    assert_eq!(err(TraceConfig { min_samples: 1, ..Default::default() }, &mut a), "min_samples");
    assert_eq!(err(TraceConfig { max_samples: 5, min_samples: 6, ..Default::default() }, &mut a), "max_samples");
    assert_eq!(err(TraceConfig { tol: -1.0, ..Default::default() }, &mut a), "tol");
    let mut empty = DenseOperator::new(0, vec![]);
    assert_eq!(config_field(hutchinson_trace(&mut empty, &TraceConfig::default()).unwrap_err()), "operator");
}

// === slq_density ===

#[test]
fn slq_quadrature_is_exact_for_moments_below_2m() {
    let n = 50;
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let lambda: Vec<f64> = (0..n).map(|_| rng.random_range(-2.0..3.0)).collect();
    let a = with_spectrum(&lambda, 13);
    let m = 8;
    let config = DensityConfig { runs: 3, steps: m, grid: 200, seed: 14, ..Default::default() };
    let d = slq_density(&mut DenseOperator::new(n, a.clone()), &config).unwrap();
    assert_eq!(d.products, 3 * m);
    for run in 0..3 {
        let (nodes, weights) = (&d.nodes[run], &d.weights[run]);
        assert_eq!(nodes.len(), m);
        // vᵀAʲv from powers: μ_2i = ‖Aⁱv‖², μ_2i+1 = (Aⁱv)ᵀ(Aⁱ⁺¹v).
        let v = rademacher(14, run as u64, n);
        let mut powers = vec![v.clone()];
        for i in 0..m {
            powers.push(matvec(n, &a, &powers[i]));
        }
        let vv = dot(&v, &v);
        for j in 0..2 * m {
            let exact = dot(&powers[j / 2], &powers[j - j / 2]) / vv;
            let quadrature: f64 = nodes.iter().zip(weights).map(|(t, w)| w * t.powi(j as i32)).sum();
            let scale: f64 = nodes.iter().zip(weights).map(|(t, w)| w * t.abs().powi(j as i32)).sum();
            assert!((quadrature - exact).abs() <= 1e-8 * scale, "run {run}, moment {j}: {quadrature} vs {exact}");
        }
        // One more moment is not exact: m nodes are a Gauss rule, not the spectrum.
        let j = 2 * m;
        let exact = dot(&powers[m], &powers[m]) / vv;
        let quadrature: f64 = nodes.iter().zip(weights).map(|(t, w)| w * t.powi(j as i32)).sum();
        assert!((quadrature - exact).abs() > 1e-6 * exact);
    }
}

#[test]
fn slq_with_n_steps_recovers_the_spectrum() {
    let n = 12;
    let lambda: Vec<f64> = (0..n).map(|i| -1.5 + 0.37 * i as f64 + 0.01 * (i * i) as f64).collect();
    let a = with_spectrum(&lambda, 15);
    let (_, vectors) = dense_eigen(n, &a);
    let config = DensityConfig { steps: 100, grid: 100, seed: 16, ..Default::default() };
    let d = slq_density(&mut DenseOperator::new(n, a), &config).unwrap();
    assert_eq!(d.products, n);
    let v = rademacher(16, 0, n);
    let vv = dot(&v, &v);
    // Nodes ascending = λ ascending; the weight of λᵢ is v's squared component along uᵢ.
    for (i, (node, weight)) in d.nodes[0].iter().zip(&d.weights[0]).enumerate() {
        assert!((node - lambda[i]).abs() < 1e-9, "{:?} vs {lambda:?}", d.nodes[0]);
        let expected = dot(&v, &vectors[n - 1 - i]).powi(2) / vv;
        assert!((weight - expected).abs() < 1e-9, "weight {i}: {weight} vs {expected}");
    }
}

#[test]
fn slq_density_is_a_probability_density_with_the_right_moments() {
    let n = 60;
    let a = random_symmetric(n, 17);
    let config = DensityConfig { runs: 2, steps: 20, seed: 18, ..Default::default() };
    let d = slq_density(&mut DenseOperator::new(n, a), &config).unwrap();
    assert_eq!((d.grid.len(), d.density.len()), (10_000, 10_000));
    for w in &d.weights {
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
    let (lo, hi) = d.nodes.iter().flatten().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &t| (l.min(t), h.max(t)));
    assert!(d.grid[0] < lo && *d.grid.last().unwrap() > hi);
    assert!(d.density.iter().all(|&p| p >= 0.0));

    let trapezoid = |f: &dyn Fn(f64) -> f64| -> f64 {
        d.grid
            .windows(2)
            .zip(d.density.windows(2))
            .map(|(x, p)| 0.5 * (x[1] - x[0]) * (f(x[0]) * p[0] + f(x[1]) * p[1]))
            .sum()
    };
    let mass = trapezoid(&|_| 1.0);
    assert!((mass - 1.0).abs() < 1e-3, "mass {mass}");
    // Gaussian smoothing keeps the mean and adds σ² = sigma2·width² to the second moment.
    let moment = |j: i32| -> f64 {
        let runs = d.nodes.iter().zip(&d.weights);
        runs.map(|(t, w)| t.iter().zip(w).map(|(t, w)| w * t.powi(j)).sum::<f64>()).sum::<f64>() / 2.0
    };
    let variance = config.sigma2 * (hi - lo).powi(2);
    assert!((trapezoid(&|x| x) - moment(1)).abs() < 1e-6 * (hi - lo), "{} vs {}", trapezoid(&|x| x), moment(1));
    let second = trapezoid(&|x| x * x);
    assert!((second - moment(2) - variance).abs() < 1e-3 * variance, "{second} vs {} + {variance}", moment(2));
}

#[test]
fn slq_validates_its_config() {
    let mut a = DenseOperator::new(3, random_symmetric(3, 19));
    let err = |config: DensityConfig, a: &mut DenseOperator| config_field(slq_density(a, &config).unwrap_err());
    assert_eq!(err(DensityConfig { runs: 0, ..Default::default() }, &mut a), "runs");
    assert_eq!(err(DensityConfig { steps: 0, ..Default::default() }, &mut a), "steps");
    assert_eq!(err(DensityConfig { sigma2: 0.0, ..Default::default() }, &mut a), "sigma2");
    assert_eq!(err(DensityConfig { grid: 1, ..Default::default() }, &mut a), "grid");
}

// === determinism ===

#[test]
fn spectra_are_bit_identical_for_a_seed() {
    let n = 40;
    let a = random_symmetric(n, 20);
    let mut op = DenseOperator::new(n, a);
    let eig = EigenConfig { k: 3, seed: 21, ..Default::default() };
    assert_eq!(top_eigen(&mut op, &eig).unwrap(), top_eigen(&mut op, &eig).unwrap());
    let trace = TraceConfig { seed: 22, ..Default::default() };
    assert_eq!(hutchinson_trace(&mut op, &trace).unwrap(), hutchinson_trace(&mut op, &trace).unwrap());
    let density = DensityConfig { runs: 2, steps: 10, grid: 500, seed: 23, ..Default::default() };
    let first = slq_density(&mut op, &density).unwrap();
    assert_eq!(first, slq_density(&mut op, &density).unwrap());
    // And the seed matters.
    let other = slq_density(&mut op, &DensityConfig { seed: 24, ..density }).unwrap();
    assert_ne!(first.nodes, other.nodes);
    let other = hutchinson_trace(&mut op, &TraceConfig { seed: 25, ..trace }).unwrap();
    assert_ne!(hutchinson_trace(&mut op, &trace).unwrap().history, other.history);
}
