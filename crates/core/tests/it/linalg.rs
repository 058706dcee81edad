//! Two-stage symmetric eigenvalues against faer's dense eigendecomposition and known spectra.

use faer::{Mat, Side};
use goldpan_core::linalg::{symmetric_eigenvalues, tridiagonal_eigenvalues};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random_symmetric(n: usize, seed: u64) -> Mat<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut a = Mat::<f64>::zeros(n, n);
    for j in 0..n {
        for i in j..n {
            let x = rng.random_range(-1.0..1.0);
            a[(i, j)] = x;
            a[(j, i)] = x;
        }
    }
    a
}

/// `Q diag(λ) Qᵀ` for a random orthogonal `Q`.
fn with_spectrum(lambda: &[f64], seed: u64) -> Mat<f64> {
    let n = lambda.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let g = Mat::<f64>::from_fn(n, n, |_, _| rng.random_range(-1.0..1.0));
    let q = g.qr().compute_Q();
    let d = Mat::<f64>::from_fn(n, n, |i, j| if i == j { lambda[i] } else { 0.0 });
    let a = &q * &d * q.transpose();
    Mat::from_fn(n, n, |i, j| 0.5 * (a[(i, j)] + a[(j, i)]))
}

fn reference(a: &Mat<f64>) -> Vec<f64> {
    let mut v = a.self_adjoint_eigenvalues(Side::Lower).unwrap();
    v.sort_by(f64::total_cmp);
    v
}

fn max_error(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

#[test]
fn matches_dense_eigenvalues_for_every_band_and_size() {
    // Sizes around and between band multiples, bands from 1 to wider than the matrix.
    for (n, b) in [(1, 4), (2, 1), (3, 1), (5, 2), (9, 4), (17, 4), (40, 8), (64, 16), (100, 7), (131, 32), (60, 80)] {
        let a = random_symmetric(n, n as u64);
        let want = reference(&a);
        let got = symmetric_eigenvalues(a.clone(), b).unwrap();
        let err = max_error(&got, &want);
        assert!(err < 1e-12 * (n as f64), "n={n} b={b}: max error {err:e}");
    }
}

#[test]
fn reads_only_the_lower_triangle() {
    let a = random_symmetric(50, 3);
    let mut poisoned = a.clone();
    for j in 1..50 {
        for i in 0..j {
            poisoned[(i, j)] = 1e6;
        }
    }
    let err = max_error(&symmetric_eigenvalues(poisoned, 8).unwrap(), &reference(&a));
    assert!(err < 1e-12, "{err:e}");
}

#[test]
fn recovers_a_known_spectrum_with_repeats_and_a_null_space() {
    // A Gram-like spectrum: a few large eigenvalues, a repeated cluster, exact zeros.
    let mut lambda: Vec<f64> = vec![0.0; 30];
    lambda.extend([1.0; 20]);
    lambda.extend((0..40).map(|i| 1e-3 * (i + 1) as f64));
    lambda.extend([50.0, 120.0, 900.0]);
    let a = with_spectrum(&lambda, 7);
    let mut want = lambda.clone();
    want.sort_by(f64::total_cmp);
    let got = symmetric_eigenvalues(a, 16).unwrap();
    let err = max_error(&got, &want);
    assert!(err < 1e-11 * 900.0, "{err:e}");
}

#[test]
fn single_precision_error_is_relative_to_the_norm() {
    let a = random_symmetric(200, 11);
    let want = reference(&a);
    let a32 = Mat::<f32>::from_fn(200, 200, |i, j| a[(i, j)] as f32);
    let got = symmetric_eigenvalues(a32, 32).unwrap();
    let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let err = max_error(&got, &want) / scale;
    assert!(err < 2e-5, "{err:e}");
}

#[test]
fn already_banded_and_diagonal_matrices_pass_through() {
    // A diagonal matrix: every reflector is the identity (τ = 0).
    let d: Vec<f64> = (0..37).map(|i| (i as f64 - 18.0) * 0.5).collect();
    let a = Mat::<f64>::from_fn(37, 37, |i, j| if i == j { d[i] } else { 0.0 });
    let mut want = d.clone();
    want.sort_by(f64::total_cmp);
    assert!(max_error(&symmetric_eigenvalues(a, 5).unwrap(), &want) < 1e-15);
    // A tridiagonal matrix: the second stage still chases nothing but must keep it.
    let t = Mat::<f64>::from_fn(37, 37, |i, j| match i.abs_diff(j) {
        0 => 2.0,
        1 => -1.0,
        _ => 0.0,
    });
    // Eigenvalues of the 1-D Laplacian: 2 − 2cos(kπ/(n+1)).
    let mut want: Vec<f64> = (1..=37).map(|k| 2.0 - 2.0 * (k as f64 * std::f64::consts::PI / 38.0).cos()).collect();
    want.sort_by(f64::total_cmp);
    assert!(max_error(&symmetric_eigenvalues(t, 4).unwrap(), &want) < 1e-13);
}

#[test]
fn tridiagonal_eigenvalues_match_the_laplacian() {
    let n = 500;
    let got = tridiagonal_eigenvalues(&vec![2.0; n], &vec![-1.0; n - 1]).unwrap();
    let mut want: Vec<f64> =
        (1..=n).map(|k| 2.0 - 2.0 * (k as f64 * std::f64::consts::PI / (n + 1) as f64).cos()).collect();
    want.sort_by(f64::total_cmp);
    assert!(max_error(&got, &want) < 1e-13);
}

#[test]
fn rejects_bad_input() {
    assert!(symmetric_eigenvalues(Mat::<f64>::zeros(3, 4), 2).is_err());
    assert!(symmetric_eigenvalues(Mat::<f64>::zeros(3, 3), 0).is_err());
    let mut a = Mat::<f64>::zeros(3, 3);
    a[(2, 1)] = f64::NAN;
    assert!(symmetric_eigenvalues(a, 1).is_err());
    assert!(symmetric_eigenvalues(Mat::<f64>::zeros(0, 0), 4).unwrap().is_empty());
}

#[test]
fn tridiagonal_eigenvalues_match_dense_on_random_graded_and_split_matrices() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let n = 300;
    let cases: Vec<(Vec<f64>, Vec<f64>)> = vec![
        // Random entries.
        (
            (0..n).map(|_| rng.random_range(-1.0..1.0)).collect(),
            (0..n - 1).map(|_| rng.random_range(-1.0..1.0)).collect(),
        ),
        // Graded down (QR from the bottom) and up (QL from the top) over 12 orders of magnitude.
        (
            (0..n).map(|i| 10f64.powf(-12.0 * i as f64 / n as f64)).collect(),
            (0..n - 1).map(|i| 0.3 * 10f64.powf(-12.0 * i as f64 / n as f64)).collect(),
        ),
        (
            (0..n).map(|i| 10f64.powf(-12.0 * (n - i) as f64 / n as f64)).collect(),
            (0..n - 1).map(|i| 0.3 * 10f64.powf(-12.0 * (n - i) as f64 / n as f64)).collect(),
        ),
        // Exact splits into blocks of 1, 2 and more; huge entries that need scaling.
        (
            (0..n).map(|i| (i % 7) as f64 * 1e200).collect(),
            (0..n - 1).map(|i| if i % 5 == 0 { 0.0 } else { 1e200 }).collect(),
        ),
    ];
    for (k, (d, e)) in cases.iter().enumerate() {
        let t = Mat::<f64>::from_fn(n, n, |i, j| match (i as i64 - j as i64).abs() {
            0 => d[i],
            1 => e[i.min(j)],
            _ => 0.0,
        });
        let want = reference(&t);
        let got = tridiagonal_eigenvalues(d, e).unwrap();
        let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let err = max_error(&got, &want) / scale;
        assert!(err < 1e-13, "case {k}: relative error {err:e}");
    }
    assert!(tridiagonal_eigenvalues(&[1.0, 2.0], &[]).is_err());
}
