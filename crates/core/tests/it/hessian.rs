//! The dataset Hessian (`goldpan_core::hessian`): streamed products equal one big batch's, its
//! spectra equal a dense eigendecomposition of the Hessian assembled from products, the
//! checkpoint analysis end to end, and the Eq. 3 diagnostics against their Taylor expansion and
//! inside a training run (which they must not change).
use goldpan_core::hessian::eq3;
use goldpan_core::hessian::operator::{Batch, DatasetHessian};
use goldpan_core::hessian::spectra::{self, EigenConfig, SymmetricOperator, TraceConfig};
use goldpan_core::hessian::{self, HessianConfig};
use goldpan_core::models::{self, Mode};
use goldpan_core::program::{self, Act, Loss, Op, Program};
use goldpan_core::train::{self, Progress, ProgressKind, TrainConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

fn bundled() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

fn uniform(rng: &mut ChaCha8Rng, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// A small conv net with batch norm: conv 1→2 3×3 (pad 1), BN, ReLU, max-pool 2, linear 8 → 3.
fn small_net() -> Program {
    Program {
        ops: vec![
            Op::Conv2d { weight: 0, bias: 1, spec: goldpan_core::ops::Conv2dSpec { stride: 1, padding: 1 } },
            Op::BatchNorm { gamma: 2, beta: 3, running: Some((vec![0.1, -0.2], vec![0.5, 2.0])), eps: 1e-5 },
            Op::Relu,
            Op::MaxPool2d { k: 2 },
            Op::Flatten,
            Op::Linear { weight: 4, bias: 5 },
        ],
        param_shapes: vec![vec![2, 1, 3, 3], vec![2], vec![2], vec![2], vec![3, 8], vec![3]],
    }
}

/// `n` random 1×4×4 images with random labels over 3 classes, in batches of `size`.
fn small_batches(rng: &mut ChaCha8Rng, n: usize, size: usize) -> Vec<Batch<f64>> {
    let x = uniform(rng, n * 16, -1.0, 1.0);
    let labels: Vec<u32> = (0..n).map(|_| rng.random_range(0..3)).collect();
    (0..n)
        .step_by(size)
        .map(|lo| {
            let hi = (lo + size).min(n);
            Batch {
                x: Act::new(x[lo * 16..hi * 16].to_vec(), vec![hi - lo, 1, 4, 4]).unwrap(),
                loss: Loss::cross_entropy(&labels[lo..hi], 3).unwrap(),
            }
        })
        .collect()
}

#[test]
fn streamed_products_equal_one_batch() {
    let prog = small_net();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let w = program::unflatten(&prog, &uniform(&mut rng, prog.param_count(), -1.0, 1.0)).unwrap();
    let mut rng_a = ChaCha8Rng::seed_from_u64(2);
    let mut rng_b = ChaCha8Rng::seed_from_u64(2);
    // 7 samples as 3 + 3 + 1 (unequal batches: the mean weights them by size) and as one batch.
    let split = small_batches(&mut rng_a, 7, 3);
    let whole = small_batches(&mut rng_b, 7, 7);
    let v = uniform(&mut rng, prog.param_count(), -1.0, 1.0);
    let a = DatasetHessian::new(&prog, &w, &split).apply(&v).unwrap();
    let b = DatasetHessian::new(&prog, &w, &whole).apply(&v).unwrap();
    let (la, ga) = DatasetHessian::new(&prog, &w, &split).gradient().unwrap();
    let (lb, gb) = DatasetHessian::new(&prog, &w, &whole).gradient().unwrap();
    let close = |x: &[f64], y: &[f64]| x.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-12 * (1.0 + q.abs()));
    assert!(close(&a, &b) && close(&ga, &gb) && (la - lb).abs() < 1e-12);
}

/// The Hessian as a dense row-major matrix, column by column from products.
fn dense(op: &mut dyn SymmetricOperator) -> Vec<f64> {
    let n = op.dim();
    let mut m = vec![0.0; n * n];
    for j in 0..n {
        let mut e = vec![0.0; n];
        e[j] = 1.0;
        for (i, v) in op.apply(&e).unwrap().into_iter().enumerate() {
            m[i * n + j] = v;
        }
    }
    m
}

#[test]
fn spectra_of_the_dataset_hessian_match_its_dense_eigendecomposition() {
    let prog = small_net();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let w = program::unflatten(&prog, &uniform(&mut rng, prog.param_count(), -1.0, 1.0)).unwrap();
    let data = small_batches(&mut rng, 9, 4);
    let mut op = DatasetHessian::new(&prog, &w, &data);
    let m = dense(&mut op);
    let n = op.dim();
    let mat = faer::Mat::<f64>::from_fn(n, n, |i, j| m[i * n + j]);
    let mut exact: Vec<f64> = mat.self_adjoint_eigenvalues(faer::Side::Lower).unwrap();
    exact.sort_by(|a, b| b.total_cmp(a));
    let trace: f64 = (0..n).map(|i| m[i * n + i]).sum();

    let top = spectra::top_eigen(&mut op, &EigenConfig { k: 3, tol: 1e-10, max_iter: n, seed: 4 }).unwrap();
    for (got, want) in top.values.iter().zip(&exact) {
        assert!((got - want).abs() < 1e-8 * exact[0].abs(), "{got} vs {want}");
    }
    let est =
        spectra::hutchinson_trace(&mut op, &TraceConfig { max_samples: 2000, min_samples: 2000, tol: 0.0, seed: 5 })
            .unwrap();
    assert!((est.estimate - trace).abs() < 4.0 * est.std_error, "{} ± {} vs {trace}", est.estimate, est.std_error);
    eprintln!("top {:?} (dense {:?}); trace {trace} ≈ {} ± {}", top.values, &exact[..3], est.estimate, est.std_error);
}

/// A LeNet5 checkpoint trained briefly on the bundled subset.
fn checkpoint(dir: &Path, labels: &str) -> PathBuf {
    let cfg = TrainConfig {
        data_dir: bundled(),
        epochs: 1,
        batch_size: 32,
        train_limit: Some(256),
        test_limit: Some(64),
        labels: labels.into(),
        out_dir: Some(dir.to_path_buf()),
        ..TrainConfig::default()
    };
    train::train(cfg, &mut |_| {}, &AtomicBool::new(false)).unwrap();
    dir.join("last.safetensors")
}

#[test]
fn analysis_of_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = checkpoint(dir.path(), "true");
    let config = HessianConfig {
        checkpoint: ckpt.clone(),
        samples: 64,
        batch_size: 40,
        top_k: 2,
        trace: true,
        trace_samples: 20,
        density: true,
        density_steps: 12,
        ..HessianConfig::default()
    };
    let mut events = 0;
    let report = hessian::analyse(
        &config,
        &mut |p: &Progress| {
            assert_eq!(p.kind, ProgressKind::Analysis);
            events += 1;
        },
        &AtomicBool::new(false),
    )
    .unwrap();
    let eigen = report.eigen.as_ref().unwrap();
    assert_eq!(eigen.values.len(), 2);
    assert!(eigen.values[0] >= eigen.values[1] && eigen.values[0] > 0.0);
    let trace = report.trace.as_ref().unwrap();
    assert!(trace.estimate.is_finite() && trace.samples >= 10);
    let density = report.density.as_ref().unwrap();
    assert_eq!(density.nodes[0].len(), 12);
    assert_eq!(events, report.products);
    assert_eq!(report.samples, 64);
    assert_eq!(report.parameters, 44_426);
    assert_eq!(report.labels, "true");
    // The top eigenvalue is the largest Rayleigh quotient: vᵀHv ≤ λ₁ for a unit v.
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let v: Vec<f64> = uniform(&mut rng, 44_426, -1.0, 1.0);
    let norm2: f64 = v.iter().map(|a| a * a).sum();
    let single =
        hessian::hvp(&HessianConfig { precision: "f64".into(), ..config.clone() }, &v, &AtomicBool::new(false))
            .unwrap();
    let rayleigh = v.iter().zip(&single.hv).map(|(a, b)| a * b).sum::<f64>() / norm2;
    assert!(rayleigh <= eigen.values[0] * (1.0 + 1e-2), "{rayleigh} > λ₁ = {}", eigen.values[0]);
    assert!((single.loss - report.loss).abs() < 1e-5);

    let bad = |c: HessianConfig| hessian::analyse(&c, &mut |_| {}, &AtomicBool::new(false)).unwrap_err();
    assert_eq!(bad(HessianConfig { split: "valid".into(), ..config.clone() }).code(), "E_CONFIG");
    assert_eq!(bad(HessianConfig { samples: 0, ..config.clone() }).code(), "E_CONFIG");
    assert_eq!(bad(HessianConfig { checkpoint: dir.path().join("none"), ..config.clone() }).code(), "E_CHECKPOINT");
    let cancelled = AtomicBool::new(true);
    assert_eq!(hessian::analyse(&config, &mut |_| {}, &cancelled).unwrap_err().code(), "E_CANCELLED");
    let short = hessian::hvp(&config, &[0.0; 3], &AtomicBool::new(false)).unwrap_err();
    assert_eq!(short.code(), "E_SHAPE");
}

#[test]
fn random_label_checkpoints_are_analysed_on_their_training_labels() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = checkpoint(dir.path(), "random");
    let config = HessianConfig { checkpoint: ckpt, samples: 32, ..HessianConfig::default() };
    let random = hessian::analyse(&config, &mut |_| {}, &AtomicBool::new(false)).unwrap();
    let truth = hessian::analyse(
        &HessianConfig { labels: Some("true".into()), ..config },
        &mut |_| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(random.labels, "random");
    assert_ne!(random.loss, truth.loss);
}

#[test]
fn eq3_matches_its_taylor_expansion() {
    let spec = models::spec("lenet5").unwrap();
    let model = spec.build(0, &candle_core::Device::Cpu).unwrap();
    let prog = model.program(Mode::Eval).unwrap();
    let w = program::weights::<f64>(model.params()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let x = uniform(&mut rng, 8 * 784, 0.0, 1.0);
    let labels: Vec<u32> = (0..8).map(|i| i % 10).collect();
    let batch = || Batch {
        x: Act::new(x.clone(), vec![8, 1, 28, 28]).unwrap(),
        loss: Loss::cross_entropy(&labels, 10).unwrap(),
    };
    let probe = vec![batch()];
    let alpha = 1e-3;
    let m = eq3::measure(&prog, &prog, &w, &probe, &batch(), alpha, 1).unwrap();
    // L(θ − αg) − L(θ) = −α‖g‖² + α²·gᵀHg/2 + O(α³) = −α·descent + O(α³).
    let predicted = -alpha * m.descent;
    assert!((m.loss_change - predicted).abs() < 1e-3 * predicted.abs(), "{} vs {predicted}", m.loss_change);
    // The minibatch is the probe set: no noise.
    assert!((m.minibatch_cos - 1.0).abs() < 1e-12 && m.minibatch_noise < 1e-12);
    assert!(m.cos_along_gradient > 0.99 && m.cos_random > 0.99 && m.cos_random <= 1.0);
    assert!((m.curvature * m.grad_norm.powi(2) - (m.grad_norm.powi(2) - m.descent) * 2.0 / alpha).abs() < 1e-9);
    assert!(m.hg_norm >= m.curvature.abs() * m.grad_norm * (1.0 - 1e-12), "Cauchy–Schwarz");
}

#[test]
fn training_with_eq3_diagnostics_reports_them_and_changes_nothing() {
    let never = AtomicBool::new(false);
    let cfg = TrainConfig {
        data_dir: bundled(),
        epochs: 1,
        batch_size: 32,
        train_limit: Some(160),
        test_limit: Some(32),
        ..TrainConfig::default()
    };
    let plain = train::train(cfg.clone(), &mut |_| {}, &never).unwrap();
    let mut seen = Vec::new();
    let with = TrainConfig { diagnostics: vec!["eq3".into()], diagnostics_every: 2, diagnostics_samples: 64, ..cfg };
    let r = train::train(
        with,
        &mut |p: &Progress| {
            if p.kind == ProgressKind::Diagnostics {
                let d = p.diagnostics.as_ref().unwrap();
                seen.push((p.step, d["eq3"]["gradNorm"].as_f64().unwrap(), d["eq3"]["minibatchCos"].as_f64().unwrap()));
            }
        },
        &never,
    )
    .unwrap();
    assert_eq!(r.weights_hash, plain.weights_hash, "diagnostics changed the training");
    assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), [0, 2, 4]);
    assert!(seen.iter().all(|&(_, g, c)| g > 0.0 && (-1.0..=1.0).contains(&c)));
    let bad = TrainConfig { diagnostics: vec!["eq4".into()], ..TrainConfig::default() };
    assert_eq!(bad.validate().unwrap_err().code(), "E_CONFIG");
    let _ = Ordering::Relaxed;
}
