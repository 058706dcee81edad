//! The empirical NTK (`goldpan_core::ntk`): the known kernel of a linear model, the three methods
//! against each other and against Jacobians from finite differences (f64), spectra against
//! a dense eigendecomposition, the memory budget, and `.npy` output.
use goldpan_core::hessian::spectra::SymmetricOperator;
use goldpan_core::hessian::spectra::{self, EigenConfig};
use goldpan_core::models::{self, Mode};
use goldpan_core::ntk::{self, Kernel, Method, NtkMatrix, NtkOperator, Products};
use goldpan_core::ops::Conv2dSpec;
use goldpan_core::program::{self, Act, Op, Program, Weights};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const BIG: usize = 1 << 34;

fn uniform(rng: &mut ChaCha8Rng, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

fn max_rel(a: &NtkMatrix, b: &NtkMatrix) -> f64 {
    assert_eq!((a.rows, a.cols), (b.rows, b.cols));
    let scale = b.data.iter().fold(0f64, |m, v| m.max(v.abs()));
    a.data.iter().zip(&b.data).fold(0f64, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
fn linear_model_kernel_is_the_input_gram_times_identity() {
    // f(x) = W·x + b: Θ((i,c),(j,c')) = (xᵢ·xⱼ + 1)·δ_cc'.
    let (n, d, c) = (5, 4, 3);
    let prog = Program { ops: vec![Op::Linear { weight: 0, bias: 1 }], param_shapes: vec![vec![c, d], vec![c]] };
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let w = program::unflatten(&prog, &uniform(&mut rng, prog.param_count(), -1.0, 1.0)).unwrap();
    let xs = uniform(&mut rng, n * d, -1.0, 1.0);
    let x = Act::new(xs.clone(), vec![n, d]).unwrap();
    let dot = |i: usize, j: usize| (0..d).map(|k| xs[i * d + k] * xs[j * d + k]).sum::<f64>() + 1.0;
    for method in [Method::Jacobian, Method::Structured, Method::Ntvp] {
        let full = ntk::ntk(&prog, &w, &x, None, Kernel::Full, method, None, BIG, None).unwrap();
        let trace = ntk::ntk(&prog, &w, &x, None, Kernel::Trace, method, None, BIG, None).unwrap();
        for i in 0..n {
            for j in 0..n {
                for a in 0..c {
                    for b in 0..c {
                        let want = if a == b { dot(i, j) } else { 0.0 };
                        assert!(
                            (full.get(i * c + a, j * c + b) - want).abs() < 1e-12,
                            "{method:?} full ({i},{a}),({j},{b})"
                        );
                    }
                }
                assert!((trace.get(i, j) - c as f64 * dot(i, j)).abs() < 1e-12, "{method:?} trace ({i},{j})");
            }
        }
    }
    let blocks = ntk::ntk(&prog, &w, &x, None, Kernel::Blocks, Method::Jacobian, None, BIG, None).unwrap();
    let check = ntk::block_check(&blocks).unwrap();
    for i in 0..n {
        for j in 0..n {
            assert!((check.min_eigenvalues[i * n + j] - dot(i, j)).abs() < 1e-12);
        }
    }
    assert_eq!(check.pd_fraction_diagonal, 1.0);
}

/// A small conv net with every parametrised op kind: conv, batch norm (fixed statistics),
/// linear, weight-normalised linear.
fn small_net() -> Program {
    Program {
        ops: vec![
            Op::Conv2d { weight: 0, bias: 1, spec: Conv2dSpec { stride: 1, padding: 1 } },
            Op::BatchNorm { gamma: 2, beta: 3, running: Some((vec![0.1, -0.2], vec![0.7, 1.5])), eps: 1e-5 },
            Op::Relu,
            Op::MaxPool2d { k: 2 },
            Op::Flatten,
            Op::Linear { weight: 4, bias: 5 },
            Op::Relu,
            Op::WeightNormLinear { direction: 6, gain: 7, bias: 8 },
        ],
        param_shapes: vec![
            vec![2, 1, 3, 3],
            vec![2],
            vec![2],
            vec![2],
            vec![5, 8],
            vec![5],
            vec![3, 5],
            vec![3],
            vec![3],
        ],
    }
}

/// `∂f/∂θ` by central differences: rows `n·C + c`.
fn fd_jacobian(prog: &Program, w: &Weights<f64>, x: &Act<f64>) -> (Vec<f64>, usize) {
    let flat = program::flatten(w);
    let logits = |theta: &[f64]| {
        let w = program::unflatten(prog, theta).unwrap();
        program::jvp(prog, &w, x, &w.iter().map(|p| vec![0.0; p.len()]).collect()).unwrap().logits.data
    };
    let rows = logits(&flat).len();
    let mut j = vec![0.0; rows * flat.len()];
    for p in 0..flat.len() {
        let (mut plus, mut minus) = (flat.clone(), flat.clone());
        plus[p] += 1e-6;
        minus[p] -= 1e-6;
        for (r, (a, b)) in logits(&plus).iter().zip(logits(&minus)).enumerate() {
            j[r * flat.len() + p] = (a - b) / 2e-6;
        }
    }
    (j, flat.len())
}

#[test]
fn kernels_equal_finite_difference_jacobian_contractions() {
    let prog = small_net();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let w = program::unflatten(&prog, &uniform(&mut rng, prog.param_count(), 0.2, 1.0)).unwrap();
    let x = Act::new(uniform(&mut rng, 4 * 16, -1.0, 1.0), vec![4, 1, 4, 4]).unwrap();
    let (j, p) = fd_jacobian(&prog, &w, &x);
    let rows = j.len() / p;
    let fd = NtkMatrix {
        rows,
        cols: rows,
        data: (0..rows * rows).map(|k| (0..p).map(|q| j[(k / rows) * p + q] * j[(k % rows) * p + q]).sum()).collect(),
        kernel: Kernel::Full,
        classes: 3,
        n1: 4,
        n2: 4,
    };
    for method in [Method::Jacobian, Method::Structured, Method::Ntvp] {
        let k = ntk::ntk(&prog, &w, &x, None, Kernel::Full, method, None, BIG, None).unwrap();
        let err = max_rel(&k, &fd);
        eprintln!("{method:?} vs finite differences: {err:.2e}");
        assert!(err < 1e-7, "{method:?}: {err:e}");
    }
}

#[test]
fn methods_agree_on_registry_models_for_every_kernel() {
    for name in ["lenet5", "lenet-base"] {
        let spec = models::spec(name).unwrap();
        let model = spec.build(1, &candle_core::Device::Cpu).unwrap();
        let prog = model.program(Mode::Eval).unwrap();
        let w = program::weights::<f64>(model.params()).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let x1 = Act::new(uniform(&mut rng, 3 * 784, 0.0, 1.0), vec![3, 1, 28, 28]).unwrap();
        let x2 = Act::new(uniform(&mut rng, 2 * 784, 0.0, 1.0), vec![2, 1, 28, 28]).unwrap();
        for kernel in [Kernel::Full, Kernel::Trace] {
            for x2 in [None, Some(&x2)] {
                let reference = ntk::ntk(&prog, &w, &x1, x2, kernel, Method::Jacobian, None, BIG, None).unwrap();
                for method in [Method::Structured, Method::Ntvp] {
                    let k = ntk::ntk(&prog, &w, &x1, x2, kernel, method, None, BIG, None).unwrap();
                    let err = max_rel(&k, &reference);
                    assert!(err < 1e-10, "{name} {kernel:?} cross={} {method:?}: {err:e}", x2.is_some());
                }
            }
        }
        // Per-layer contributions add up to the whole kernel.
        let whole = ntk::ntk(&prog, &w, &x1, None, Kernel::Trace, Method::Structured, None, BIG, None).unwrap();
        let mut sum = vec![0.0; whole.data.len()];
        let names: Vec<String> = model.params().iter().map(|(n, _)| n.split('.').next().unwrap().to_string()).collect();
        let mut layers = names.clone();
        layers.dedup();
        for layer in &layers {
            let selected: Vec<bool> = names.iter().map(|n| n == layer).collect();
            let part =
                ntk::ntk(&prog, &w, &x1, None, Kernel::Trace, Method::Structured, Some(&selected), BIG, None).unwrap();
            sum.iter_mut().zip(&part.data).for_each(|(s, v)| *s += v);
        }
        let err = sum.iter().zip(&whole.data).fold(0f64, |m, (a, b)| m.max((a - b).abs() / b.abs().max(1e-300)));
        assert!(err < 1e-10, "{name}: per-layer kernels do not add up: {err:e}");
    }
}

#[test]
fn spectra_match_dense_and_matrix_free_lanczos() {
    let model = models::spec("lenet5").unwrap().build(0, &candle_core::Device::Cpu).unwrap();
    let prog = model.program(Mode::Eval).unwrap();
    let w = program::weights::<f64>(model.params()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let x = Act::new(uniform(&mut rng, 6 * 784, 0.0, 1.0), vec![6, 1, 28, 28]).unwrap();
    for kernel in [Kernel::Full, Kernel::Trace] {
        let k = ntk::ntk(&prog, &w, &x, None, kernel, Method::Structured, None, BIG, None).unwrap();
        let s = ntk::spectrum(&k, true, false).unwrap();
        let n = k.rows;
        // Eigenpairs reconstruct the kernel.
        let vecs = s.eigenvectors.as_ref().unwrap();
        for (i, j) in [(0, 0), (1, n - 1), (n / 2, 3)] {
            let rebuilt: f64 = (0..n).map(|e| s.eigenvalues[e] * vecs[e][i] * vecs[e][j]).sum();
            assert!((rebuilt - k.get(i, j)).abs() < 1e-9 * s.eigenvalues[0]);
        }
        assert!((s.eigenvalues.iter().sum::<f64>() - s.trace).abs() < 1e-9 * s.trace);
        // Eigenvalues only: the two-stage reduction, in f64 and f32, against faer's dense ones.
        for (single, tol) in [(false, 1e-12), (true, 1e-6)] {
            let only = ntk::spectrum(&k, false, single).unwrap();
            let err = only.eigenvalues.iter().zip(&s.eigenvalues).fold(0f64, |m, (a, b)| m.max((a - b).abs()));
            assert!(err < tol * s.eigenvalues[0], "{kernel:?} single={single}: {err:e}");
        }
        let batches = [x.clone()];
        let mut op = NtkOperator::new(&prog, &w, &batches, kernel, 10, None);
        let top = spectra::top_eigen(&mut op, &EigenConfig { k: 3, tol: 1e-10, max_iter: n, seed: 1 }).unwrap();
        for (a, b) in top.values.iter().zip(&s.eigenvalues) {
            assert!((a - b).abs() < 1e-8 * s.eigenvalues[0], "{kernel:?}: Lanczos {a} vs dense {b}");
        }
    }
}

/// `Θ·u` from the kernel matrix.
fn times(k: &NtkMatrix, u: &[f64]) -> Vec<f64> {
    (0..k.rows).map(|i| (0..k.cols).map(|j| k.get(i, j) * u[j]).sum()).collect()
}

fn rel(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0f64, |m, v| m.max(v.abs()));
    a.iter().zip(b).fold(0f64, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// A model, its weights, its batches and the parameter subsets to check.
type Case = (String, Program, Weights<f64>, Vec<Act<f64>>, Vec<Vec<bool>>);

#[test]
fn factored_products_equal_engine_products_and_the_formed_kernel() {
    // Every factor kind: LeNet5's first convolution as Jacobian rows (156 parameters, up to 864
    // reached positions), its second as sparse cotangents (2416 against at most 256), linear
    // layers; the small net's batch norm and weight-normalised layer as rows; lenet-base's
    // bottleneck batch norm and weight-normalised classifier; DTN's convolutions with batch norm
    // in between. Layer subsets take each part of a layer alone.
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut cases: Vec<Case> = Vec::new();
    for name in ["lenet5", "lenet-base", "dtn"] {
        let model = models::spec(name).unwrap().build(1, &candle_core::Device::Cpu).unwrap();
        let prog = model.program(Mode::Eval).unwrap();
        let w = program::weights::<f64>(model.params()).unwrap();
        let shape = models::spec(name).unwrap().input;
        let per = shape.0 * shape.1 * shape.2;
        let batches = [3, 2]
            .iter()
            .map(|&n| Act::new(uniform(&mut rng, n * per, 0.0, 1.0), vec![n, shape.0, shape.1, shape.2]).unwrap())
            .collect();
        let names: Vec<String> = model.params().iter().map(|(n, _)| n.to_string()).collect();
        let pick = |want: &[&str]| names.iter().map(|n| want.contains(&n.as_str())).collect::<Vec<bool>>();
        let mut subsets = vec![vec![true; names.len()]];
        if name == "lenet5" {
            subsets.push(pick(&["conv2.bias"]));
            subsets.push(pick(&["conv2.weight", "fc1.weight"]));
            subsets.push(pick(&["conv1.weight", "fc3.bias"]));
        }
        cases.push((name.into(), prog, w, batches, subsets));
    }
    let prog = small_net();
    let w = program::unflatten(&prog, &uniform(&mut rng, prog.param_count(), 0.2, 1.0)).unwrap();
    let batches = vec![Act::new(uniform(&mut rng, 3 * 16, -1.0, 1.0), vec![3, 1, 4, 4]).unwrap()];
    cases.push(("small net".into(), prog, w, batches, vec![vec![true; 9]]));
    for (name, prog, w, batches, subsets) in &cases {
        let n: usize = batches.iter().map(Act::n).sum();
        let mut dims = batches[0].dims.clone();
        dims[0] = n;
        let all = Act::new(batches.iter().flat_map(|b| b.data.iter().copied()).collect(), dims).unwrap();
        for selected in subsets {
            for kernel in [Kernel::Full, Kernel::Trace] {
                let k = ntk::ntk(prog, w, &all, None, kernel, Method::Jacobian, Some(selected), BIG, None).unwrap();
                let classes = k.classes;
                let u = uniform(&mut rng, k.rows, -1.0, 1.0);
                let want = times(&k, &u);
                let mut factored = NtkOperator::new(prog, w, batches, kernel, classes, Some(selected));
                let mut engine =
                    NtkOperator::new(prog, w, batches, kernel, classes, Some(selected)).products_by(Products::Engine);
                let (a, b) = (factored.apply(&u).unwrap(), engine.apply(&u).unwrap());
                assert_eq!(factored.computed_by(), Some(Products::Factored));
                let on: Vec<usize> = (0..selected.len()).filter(|&p| selected[p]).collect();
                assert!(rel(&a, &want) < 1e-10, "{name} {kernel:?} {on:?}: factored {:e}", rel(&a, &want));
                assert!(rel(&b, &want) < 1e-10, "{name} {kernel:?} {on:?}: engine {:e}", rel(&b, &want));
                // A second product reuses the factors; several at once share each pass over them.
                let u2 = uniform(&mut rng, k.rows, -1.0, 1.0);
                assert!(rel(&factored.apply(&u2).unwrap(), &times(&k, &u2)) < 1e-10, "{name} second product");
                let both = factored.apply_many(&[u2.clone(), u.clone()]).unwrap();
                assert!(rel(&both[0], &times(&k, &u2)) < 1e-10 && rel(&both[1], &want) < 1e-10, "{name} two at once");
                assert_eq!(factored.products(), 4);
            }
        }
    }
    // Factors above the memory budget: the products go through the engine, and agree.
    let (_, prog, w, batches, _) = &cases[0];
    let mut op = NtkOperator::new(prog, w, batches, Kernel::Full, 10, None).memory_budget(1000);
    let u = uniform(&mut rng, 50, -1.0, 1.0);
    let a = op.apply(&u).unwrap();
    assert_eq!(op.computed_by(), Some(Products::Engine));
    let b = NtkOperator::new(prog, w, batches, Kernel::Full, 10, None).apply(&u).unwrap();
    assert!(rel(&a, &b) < 1e-10);
}

#[test]
fn memory_budget_and_cancellation_are_enforced() {
    let model = models::spec("lenet5").unwrap().build(0, &candle_core::Device::Cpu).unwrap();
    let prog = model.program(Mode::Eval).unwrap();
    let w = program::weights::<f32>(model.params()).unwrap();
    let x = Act::new(vec![0.5f32; 50 * 784], vec![50, 1, 28, 28]).unwrap();
    let err = ntk::ntk(&prog, &w, &x, None, Kernel::Full, Method::Jacobian, None, 1 << 20, None).unwrap_err();
    assert_eq!(err.code(), "E_MEMORY");
    let msg = err.to_string();
    assert!(msg.contains("trace kernel for up to") && msg.contains("ntvp"), "{msg}");
    // The working set counts the columns each method forms: every parameter for Jacobians;
    // for the structured one the convolutions' 156 + 2416 and the linear layers' signals
    // (out + ⌈in/C⌉ per layer: 120 + 26, 84 + 12, 10 + 9).
    let all = vec![true; prog.param_shapes.len()];
    assert_eq!(ntk::jacobian_width(&prog, &all, Method::Jacobian, 10), 44426);
    assert_eq!(ntk::jacobian_width(&prog, &all, Method::Structured, 10), 156 + 2416 + 146 + 96 + 19);
    assert_eq!(ntk::jacobian_width(&prog, &all, Method::Ntvp, 10), 0);
    // The eigendecomposition needs the kernel plus a working copy: a budget that holds the
    // 500×500 f64 kernel alone is refused before anything is computed.
    let kernel_only = 500 * 500 * 8;
    let err = ntk::check_eigen_memory(Kernel::Full, 50, 10, 4, kernel_only).unwrap_err();
    assert_eq!(err.code(), "E_MEMORY");
    let msg = err.to_string();
    assert!(msg.contains("without them (--no-eigen) only forming the kernel counts"), "{msg}");
    // What it says fits does fit, and one sample more does not.
    let fits: usize = msg.split("full kernel for up to ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(fits > 0 && fits < 50, "{msg}");
    ntk::check_eigen_memory(Kernel::Full, fits, 10, 4, kernel_only).unwrap();
    assert!(ntk::check_eigen_memory(Kernel::Full, fits + 1, 10, 4, kernel_only).is_err());
    ntk::check_eigen_memory(Kernel::Full, 50, 10, 4, 2 * kernel_only).unwrap();
    // A set cancel flag stops the kernel's formation, by every method.
    let stop = std::sync::atomic::AtomicBool::new(true);
    let small = Act::new(vec![0.5f32; 2 * 784], vec![2, 1, 28, 28]).unwrap();
    for method in [Method::Jacobian, Method::Structured, Method::Ntvp] {
        let err = ntk::ntk(&prog, &w, &small, None, Kernel::Trace, method, None, BIG, Some(&stop)).unwrap_err();
        assert_eq!(err.code(), "E_CANCELLED", "{method:?}");
    }
    // Batch statistics couple samples: no per-sample Jacobians in training mode.
    let train = models::spec("dtn").unwrap().build(0, &candle_core::Device::Cpu).unwrap();
    let tp = train.program(Mode::Train { seed: 0 }).unwrap();
    let tw = program::weights::<f32>(train.params()).unwrap();
    let tx = Act::new(vec![0.5f32; 2 * 3072], vec![2, 3, 32, 32]).unwrap();
    let err = ntk::ntk(&tp, &tw, &tx, None, Kernel::Trace, Method::Jacobian, None, BIG, None).unwrap_err();
    assert_eq!(err.code(), "E_CONFIG");
}

#[test]
fn npy_files_have_numpy_headers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.npy");
    ntk::write_npy(&path, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.5]).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + len) % 64, 0);
    let header = std::str::from_utf8(&bytes[10..10 + len]).unwrap();
    assert!(
        header.starts_with("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }") && header.ends_with('\n')
    );
    let last = f64::from_le_bytes(bytes[bytes.len() - 8..].try_into().unwrap());
    assert_eq!((bytes.len() - 10 - len) / 8, 6);
    assert_eq!(last, 6.5);
}

#[test]
fn training_tracks_ntk_speed_and_swing_without_changing_the_run() {
    use goldpan_core::train::{self, Progress, ProgressKind, TrainConfig};
    use std::sync::atomic::AtomicBool;
    let never = AtomicBool::new(false);
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
    let cfg = TrainConfig {
        data_dir: data,
        epochs: 1,
        batch_size: 32,
        train_limit: Some(96),
        test_limit: Some(32),
        ..TrainConfig::default()
    };
    let plain = train::train(cfg.clone(), &mut |_| {}, &never).unwrap();
    let tracked = TrainConfig {
        diagnostics: ["ntk", "swing", "speed"].map(String::from).to_vec(),
        diagnostics_every: 1,
        diagnostics_samples: 40,
        ..cfg
    };
    let (mut events, mut epoch_swing) = (Vec::new(), None);
    let r = train::train(
        tracked,
        &mut |p: &Progress| match p.kind {
            ProgressKind::Diagnostics => events.push(p.diagnostics.clone().unwrap()),
            ProgressKind::Epoch => epoch_swing = p.diagnostics.clone(),
            _ => {}
        },
        &never,
    )
    .unwrap();
    assert_eq!(r.weights_hash, plain.weights_hash, "tracking changed the training");
    assert_eq!(events.len(), 3);
    for d in &events {
        let top: Vec<f64> = d["ntk"]["top"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert!(top.len() == 5 && top.windows(2).all(|w| w[0] >= w[1]) && top[0] > 0.0, "{top:?}");
        assert_eq!(d["ntk"]["samples"], 40);
        let frac = d["ntk"]["pdFractionDiagonal"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&frac));
        let counts: u64 = d["swing"]["counts"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).sum();
        assert_eq!(counts, 40);
        let kl = d["speed"]["kl"].as_f64().unwrap();
        assert!(kl > 0.0 && kl.is_finite(), "an SGD step moves the function: KL {kl}");
    }
    let all: u64 =
        epoch_swing.unwrap()["swing"]["counts"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(all, 96);
}
