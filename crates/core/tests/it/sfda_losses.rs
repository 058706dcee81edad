//! `goldpan_core::sfda::losses` against brute-force f64 loops over the formulas, closed forms
//! (uniform logits, `KL(p‖p) = 0`, one-hot predictions), and candle's gradients against central
//! differences `(L(θ + h·eᵢ) − L(θ − h·eᵢ)) / 2h`, `h = 1e-6`, with the error
//! `max|autograd − numeric| / max(1, max|numeric|)` ≤ 1e-6, in f64 on the CPU.
use candle_core::{DType, Device, Tensor, Var};
use goldpan_core::ops;
use goldpan_core::sfda::losses::{
    distillation_kl, information_maximization, label_smoothed_cross_entropy, mutual_information, softmax_rows,
    SHOT_EPSILON,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
// The finite-difference checker of the layer gradients (h = 1e-6, relative tolerance 1e-6).
use super::gradients::check_grads;

/// Agreement of a loss with its brute-force loop.
const EXACT: f64 = 1e-12;

/// An `n×c` f64 tensor of uniform values in `[lo, hi)`.
fn uniform(rng: &mut ChaCha8Rng, n: usize, c: usize, lo: f64, hi: f64) -> Tensor {
    let v: Vec<f64> = (0..n * c).map(|_| rng.random_range(lo..hi)).collect();
    Tensor::from_vec(v, (n, c), &Device::Cpu).unwrap()
}

fn scalar(t: &Tensor) -> f64 {
    t.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
}

fn rows(t: &Tensor) -> Vec<Vec<f64>> {
    t.to_dtype(DType::F64).unwrap().to_vec2().unwrap()
}

/// `log softmax` of one row, the textbook way.
fn log_softmax(row: &[f64]) -> Vec<f64> {
    let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = max + row.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
    row.iter().map(|v| v - lse).collect()
}

fn softmax(row: &[f64]) -> Vec<f64> {
    log_softmax(row).into_iter().map(f64::exp).collect()
}

fn assert_close(a: f64, b: f64, tol: f64, what: &str) {
    assert!((a - b).abs() <= tol, "{what}: {a} vs {b} (|Δ| = {:e} > {tol:e})", (a - b).abs());
}

fn labels(v: &[u32]) -> Tensor {
    Tensor::new(v, &Device::Cpu).unwrap()
}

// ---------------------------------------------------------------- label smoothing

/// `(1/N) Σₙ Σ_c −t_c log p_c` with explicit targets `t = (1 − ε)·onehot + ε/C`.
fn label_smoothing_brute(z: &[Vec<f64>], y: &[u32], eps: f64) -> f64 {
    let c = z[0].len() as f64;
    let total: f64 = z
        .iter()
        .zip(y)
        .map(|(row, &l)| {
            let lp = log_softmax(row);
            (0..row.len())
                .map(|j| {
                    let t = if j == l as usize { 1.0 - eps } else { 0.0 } + eps / c;
                    -t * lp[j]
                })
                .sum::<f64>()
        })
        .sum();
    total / z.len() as f64
}

#[test]
fn label_smoothing_matches_brute_force() {
    let mut rng = ChaCha8Rng::seed_from_u64(20);
    let z = uniform(&mut rng, 5, 4, -3.0, 3.0);
    let y = [0u32, 3, 1, 1, 2];
    for eps in [0.0, 0.1, 0.5, 1.0] {
        let got = scalar(&label_smoothed_cross_entropy(&z, &labels(&y), eps).unwrap());
        assert_close(got, label_smoothing_brute(&rows(&z), &y, eps), EXACT, &format!("ε = {eps}"));
    }
}

#[test]
fn label_smoothing_without_epsilon_is_cross_entropy() {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let z = uniform(&mut rng, 7, 5, -4.0, 4.0);
    let y = labels(&[4, 0, 2, 2, 1, 3, 0]);
    let smoothed = scalar(&label_smoothed_cross_entropy(&z, &y, 0.0).unwrap());
    let plain = scalar(&ops::cross_entropy(&z, &y).unwrap());
    assert_close(smoothed, plain, EXACT, "ε = 0 vs ops::cross_entropy");
}

#[test]
fn label_smoothing_of_uniform_logits_is_ln_c() {
    let z = Tensor::full(0.7f64, (3, 6), &Device::Cpu).unwrap();
    for eps in [0.0, 0.1, 1.0] {
        let got = scalar(&label_smoothed_cross_entropy(&z, &labels(&[5, 0, 2]), eps).unwrap());
        assert_close(got, 6f64.ln(), EXACT, &format!("ε = {eps}"));
    }
}

#[test]
fn label_smoothing_rejects_bad_input() {
    let z = Tensor::zeros((3, 4), DType::F64, &Device::Cpu).unwrap();
    let err = label_smoothed_cross_entropy(&z, &labels(&[0, 1, 7]), 0.1).unwrap_err().to_string();
    assert!(err.contains("label 7 at index 2") && err.contains("0..4"), "{err}");
    assert!(label_smoothed_cross_entropy(&z, &labels(&[0, 1]), 0.1).is_err(), "label count");
    assert!(label_smoothed_cross_entropy(&z, &labels(&[0, 1, 2]), 1.5).is_err(), "ε > 1");
    assert!(label_smoothed_cross_entropy(&z, &labels(&[0, 1, 2]), -0.1).is_err(), "ε < 0");
}

#[test]
fn label_smoothing_gradients() {
    let mut rng = ChaCha8Rng::seed_from_u64(22);
    let z = uniform(&mut rng, 5, 4, -2.0, 2.0);
    let y = labels(&[0, 3, 1, 1, 2]);
    for eps in [0.0, 0.1] {
        let rel =
            check_grads(|t| label_smoothed_cross_entropy(&t[0], &y, eps).unwrap(), std::slice::from_ref(&z), &[0]);
        eprintln!("label smoothing ε = {eps}: max relative error {rel:.3e}");
    }
}

// ---------------------------------------------------------------- distillation

/// `T² · (1/N) Σₙ Σ_c p_c (log p_c − log q_c)`.
fn distillation_brute(teacher: &[Vec<f64>], student: &[Vec<f64>], t: f64) -> f64 {
    let total: f64 = teacher
        .iter()
        .zip(student)
        .map(|(a, b)| {
            let lp = log_softmax(&a.iter().map(|v| v / t).collect::<Vec<_>>());
            let lq = log_softmax(&b.iter().map(|v| v / t).collect::<Vec<_>>());
            lp.iter().zip(&lq).map(|(p, q)| p.exp() * (p - q)).sum::<f64>()
        })
        .sum();
    t * t * total / teacher.len() as f64
}

#[test]
fn distillation_matches_brute_force() {
    let mut rng = ChaCha8Rng::seed_from_u64(30);
    let teacher = uniform(&mut rng, 6, 5, -5.0, 5.0);
    let student = uniform(&mut rng, 6, 5, -5.0, 5.0);
    for t in [1.0, 4.0, 0.5] {
        let got = scalar(&distillation_kl(&teacher, &student, t).unwrap());
        let want = distillation_brute(&rows(&teacher), &rows(&student), t);
        assert!(want > 0.0);
        assert_close(got, want, EXACT, &format!("T = {t}"));
    }
}

#[test]
fn distillation_of_equal_logits_is_zero() {
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    let z = uniform(&mut rng, 4, 3, -5.0, 5.0);
    // A constant shift per row changes no softmax.
    let shifted = z.broadcast_add(&Tensor::new(&[[1.0f64], [-2.0], [30.0], [0.5]], &Device::Cpu).unwrap()).unwrap();
    for t in [1.0, 4.0] {
        assert_close(scalar(&distillation_kl(&z, &z, t).unwrap()), 0.0, EXACT, "KL(p‖p)");
        assert_close(scalar(&distillation_kl(&z, &shifted, t).unwrap()), 0.0, EXACT, "KL(p‖p), shifted");
    }
}

#[test]
fn distillation_rejects_bad_input() {
    let a = Tensor::zeros((3, 4), DType::F64, &Device::Cpu).unwrap();
    let b = Tensor::zeros((3, 5), DType::F64, &Device::Cpu).unwrap();
    let err = distillation_kl(&a, &b, 4.0).unwrap_err().to_string();
    assert!(err.contains("[3, 4]") && err.contains("[3, 5]"), "{err}");
    assert!(distillation_kl(&a, &a, 0.0).is_err(), "T = 0");
    assert!(distillation_kl(&a, &a, f64::NAN).is_err(), "T = NaN");
}

#[test]
fn distillation_gradients_reach_only_the_student() {
    let mut rng = ChaCha8Rng::seed_from_u64(32);
    let teacher = uniform(&mut rng, 5, 4, -6.0, 6.0);
    let student = uniform(&mut rng, 5, 4, -6.0, 6.0);

    let (tv, sv) = (Var::from_tensor(&teacher).unwrap(), Var::from_tensor(&student).unwrap());
    let grads = distillation_kl(tv.as_tensor(), sv.as_tensor(), 4.0).unwrap().backward().unwrap();
    if let Some(g) = grads.get(&tv) {
        let g: Vec<f64> = g.flatten_all().unwrap().to_vec1().unwrap();
        assert!(g.iter().all(|&v| v == 0.0), "the teacher got a gradient: {g:?}");
    }
    assert!(grads.get(&sv).is_some(), "the student got no gradient");

    let rel = check_grads(|t| distillation_kl(&t[0], &t[1], 4.0).unwrap(), &[teacher, student], &[1]);
    eprintln!("distillation T = 4: max relative error {rel:.3e}");
}

// ---------------------------------------------------------------- information maximisation

/// `(entropy, diversity)` by loops: `(1/N) Σ −p log(p + ε)` and `Σ −p̄ log(p̄ + ε)`.
fn im_brute(z: &[Vec<f64>], eps: f64) -> (f64, f64) {
    let n = z.len() as f64;
    let probs: Vec<Vec<f64>> = z.iter().map(|r| softmax(r)).collect();
    let entropy: f64 = probs.iter().flatten().map(|p| -p * (p + eps).ln()).sum::<f64>() / n;
    let diversity = (0..z[0].len())
        .map(|c| {
            let mean = probs.iter().map(|p| p[c]).sum::<f64>() / n;
            -mean * (mean + eps).ln()
        })
        .sum();
    (entropy, diversity)
}

#[test]
fn information_maximization_matches_brute_force() {
    let mut rng = ChaCha8Rng::seed_from_u64(40);
    let z = uniform(&mut rng, 8, 5, -4.0, 4.0);
    for eps in [SHOT_EPSILON, 0.0, 0.1] {
        let im = information_maximization(&z, eps).unwrap();
        let (entropy, diversity) = im_brute(&rows(&z), eps);
        assert_close(scalar(&im.entropy), entropy, EXACT, "entropy");
        assert_close(scalar(&im.diversity), diversity, EXACT, "diversity");
        assert_close(scalar(&im.loss().unwrap()), entropy - diversity, EXACT, "loss");
    }
}

#[test]
fn information_maximization_of_uniform_logits() {
    let c = 10;
    let z = Tensor::full(-1.5f64, (4, c), &Device::Cpu).unwrap();
    let im = information_maximization(&z, SHOT_EPSILON).unwrap();
    let want = -(1.0 / c as f64 + SHOT_EPSILON).ln();
    assert_close(scalar(&im.entropy), want, EXACT, "entropy");
    assert_close(scalar(&im.diversity), want, EXACT, "diversity");
    assert_close(scalar(&im.loss().unwrap()), 0.0, EXACT, "loss");
    // ln C, less about C·ε from the ε inside the logarithm.
    assert_close(scalar(&im.entropy), (c as f64).ln() - c as f64 * SHOT_EPSILON, 1e-8, "≈ ln C − Cε");
}

#[test]
fn information_maximization_without_epsilon_is_minus_mutual_information() {
    let mut rng = ChaCha8Rng::seed_from_u64(41);
    let (n, c) = (9, 4);
    let logits: Vec<f32> = (0..n * c).map(|_| rng.random_range(-3.0f32..3.0)).collect();
    let z = Tensor::from_vec(logits.clone(), (n, c), &Device::Cpu).unwrap().to_dtype(DType::F64).unwrap();
    let loss = scalar(&information_maximization(&z, 0.0).unwrap().loss().unwrap());
    assert_close(loss, -mutual_information(&softmax_rows(&logits, c), c), EXACT, "IM loss vs −MI");
}

#[test]
fn information_maximization_rejects_bad_input() {
    let z = Tensor::zeros((2, 3), DType::F64, &Device::Cpu).unwrap();
    assert!(information_maximization(&z, -1e-5).is_err(), "ε < 0");
    assert!(information_maximization(&Tensor::zeros(3, DType::F64, &Device::Cpu).unwrap(), 1e-5).is_err(), "1-D");
}

#[test]
fn information_maximization_gradients() {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let z = uniform(&mut rng, 6, 4, -2.0, 2.0);
    type Term = fn(&Tensor) -> Tensor;
    let terms: [(&str, Term); 3] = [
        ("entropy", |z| information_maximization(z, SHOT_EPSILON).unwrap().entropy),
        ("diversity", |z| information_maximization(z, SHOT_EPSILON).unwrap().diversity),
        ("loss", |z| information_maximization(z, SHOT_EPSILON).unwrap().loss().unwrap()),
    ];
    for (name, term) in terms {
        let rel = check_grads(|t| term(&t[0]), std::slice::from_ref(&z), &[0]);
        eprintln!("IM {name}: max relative error {rel:.3e}");
    }
}

// ---------------------------------------------------------------- model selection

#[test]
fn mutual_information_closed_forms() {
    let c = 5;
    assert_close(mutual_information(&vec![1.0 / c as f64; 7 * c], c), 0.0, EXACT, "uniform");
    // Each class predicted with certainty, twice.
    let one_hot: Vec<f64> = (0..2 * c).flat_map(|n| (0..c).map(move |j| if j == n % c { 1.0 } else { 0.0 })).collect();
    assert_close(mutual_information(&one_hot, c), (c as f64).ln(), EXACT, "balanced one-hot");
    // Certain but always the same class: no information.
    let same: Vec<f64> = (0..4 * c).map(|i| if i % c == 0 { 1.0 } else { 0.0 }).collect();
    assert_close(mutual_information(&same, c), 0.0, EXACT, "collapsed one-hot");
    assert_eq!(mutual_information(&[], c), 0.0);
    assert_eq!(mutual_information(&[0.5, 0.5], 0), 0.0);
}

#[test]
fn mutual_information_is_mean_kl_to_the_marginal() {
    // I = H(p̄) − mean H(pₙ) = (1/N) Σₙ KL(pₙ ‖ p̄), computed here the second way.
    let mut rng = ChaCha8Rng::seed_from_u64(50);
    let (n, c) = (11, 6);
    let logits: Vec<f32> = (0..n * c).map(|_| rng.random_range(-4.0f32..4.0)).collect();
    let probs = softmax_rows(&logits, c);
    let mean: Vec<f64> = (0..c).map(|j| probs.iter().skip(j).step_by(c).sum::<f64>() / n as f64).collect();
    let kl: f64 = probs.chunks(c).map(|p| p.iter().zip(&mean).map(|(a, m)| a * (a / m).ln()).sum::<f64>()).sum();
    let mi = mutual_information(&probs, c);
    assert!(mi > 0.0 && mi < (c as f64).ln());
    assert_close(mi, kl / n as f64, EXACT, "MI vs mean KL");
}

#[test]
fn softmax_rows_is_stable_and_exact() {
    let logits = [1000.0f32, 1001.0, 999.0, -3.0, 0.0, 2.0];
    let p = softmax_rows(&logits, 3);
    assert_eq!(p.len(), 6);
    assert!(p.iter().all(|v| v.is_finite()), "{p:?}");
    for (got, row) in p.chunks(3).zip(logits.chunks(3)) {
        let want = softmax(&row.iter().map(|&v| v as f64).collect::<Vec<_>>());
        got.iter().zip(&want).for_each(|(a, b)| assert_close(*a, *b, 1e-12, "softmax"));
        assert_close(got.iter().sum(), 1.0, 1e-15, "row sum");
    }
    assert!(softmax_rows(&logits, 0).is_empty());
}

// ---------------------------------------------------------------- f32

#[test]
fn losses_accept_f32() {
    let mut rng = ChaCha8Rng::seed_from_u64(60);
    let z64 = uniform(&mut rng, 5, 4, -3.0, 3.0);
    let w64 = uniform(&mut rng, 5, 4, -3.0, 3.0);
    let (z32, w32) = (z64.to_dtype(DType::F32).unwrap(), w64.to_dtype(DType::F32).unwrap());
    let y = labels(&[0, 3, 1, 1, 2]);

    let ls = label_smoothed_cross_entropy(&z32, &y, 0.1).unwrap();
    assert_eq!(ls.dtype(), DType::F32);
    assert_close(scalar(&ls), label_smoothing_brute(&rows(&z32), &[0, 3, 1, 1, 2], 0.1), 1e-5, "label smoothing");
    let kl = distillation_kl(&w32, &z32, 4.0).unwrap();
    assert_close(scalar(&kl), distillation_brute(&rows(&w32), &rows(&z32), 4.0), 1e-5, "distillation");
    let im = information_maximization(&z32, SHOT_EPSILON).unwrap();
    let (entropy, diversity) = im_brute(&rows(&z32), SHOT_EPSILON);
    assert_close(scalar(&im.entropy), entropy, 1e-5, "entropy");
    assert_close(scalar(&im.diversity), diversity, 1e-5, "diversity");

    // And they train: the f32 gradient of the IM loss exists and is finite.
    let v = Var::from_tensor(&z32).unwrap();
    let loss = information_maximization(v.as_tensor(), SHOT_EPSILON).unwrap().loss().unwrap();
    let g: Vec<f32> = loss.backward().unwrap().get(&v).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    assert!(g.iter().all(|x| x.is_finite()) && g.iter().any(|&x| x != 0.0), "{g:?}");
}
