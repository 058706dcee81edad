//! The fast CPU kernels in `goldpan_core::ops` against their candle references, in f64:
//! forward values and every gradient, over geometries that exercise padding, stride, odd
//! sizes and batches that are not a multiple of the work chunk; and bit-identical results
//! whatever the thread count.
use candle_core::{DType, Device, Tensor, Var};
use goldpan_core::ops::{
    batch_norm, batch_norm_slow, conv2d, conv2d_batch_norm, conv2d_slow, cross_entropy, cross_entropy_slow, linear,
    linear_slow, max_pool2d, max_pool2d_relu, max_pool2d_slow, BatchNormSpec, Conv2dSpec, Statistics,
};

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f64>().unwrap()
}

fn randn(dims: &[usize], seed: u64) -> Tensor {
    // A deterministic pseudo-random fill (candle's own randn is not seedable on CPU).
    let n: usize = dims.iter().product();
    let v: Vec<f64> =
        (0..n).map(|i| ((((i as u64 + 1) * 2654435761) ^ (seed * 40503)) % 10007) as f64 / 5003.5 - 1.0).collect();
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
}

/// Gradients of `Σ f(inputs) ⊙ r` for every input.
fn grads(f: impl Fn(&[Tensor]) -> Tensor, inputs: &[Tensor], r: &Tensor) -> (Tensor, Vec<Tensor>) {
    let vars: Vec<Var> = inputs.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let y = f(&ts);
    let g = (&y * r).unwrap().sum_all().unwrap().backward().unwrap();
    (y.detach(), ts.iter().map(|t| g.get(t).unwrap().clone()).collect())
}

#[test]
fn conv2d_matches_candle_with_all_gradients() {
    let cases = [
        // (n, c, h, w, o, k, stride, padding)
        (11, 1, 28, 28, 6, 5, 1, 0),
        (3, 6, 12, 12, 16, 5, 1, 0),
        (5, 3, 32, 32, 8, 5, 2, 2),
        (2, 2, 7, 9, 3, 3, 2, 1),
        (1, 4, 5, 5, 2, 5, 1, 0),
        // Output width 4 (DTN's conv3), compiled as a constant (see `with_width!`), and 28,
        // which takes the general loop.
        (3, 5, 8, 8, 4, 5, 2, 2),
        (2, 1, 30, 30, 2, 3, 1, 0),
    ];
    for (i, &(n, c, h, w, o, k, stride, padding)) in cases.iter().enumerate() {
        let spec = Conv2dSpec { stride, padding };
        let x = randn(&[n, c, h, w], i as u64);
        let wt = randn(&[o, c, k, k], 100 + i as u64);
        let b = randn(&[o], 200 + i as u64);
        let out = conv2d_slow(&x, &wt, &b, spec).unwrap();
        let r = randn(out.dims(), 300 + i as u64);
        let (fast, gf) = grads(|t| conv2d(&t[0], &t[1], &t[2], spec).unwrap(), &[x.clone(), wt.clone(), b.clone()], &r);
        let (slow, gs) = grads(|t| conv2d_slow(&t[0], &t[1], &t[2], spec).unwrap(), &[x, wt, b], &r);
        assert_eq!(fast.dims(), slow.dims(), "case {i}");
        assert!(max_abs_diff(&fast, &slow) < 1e-11, "case {i}: forward");
        for (name, (a, b)) in ["x", "w", "b"].iter().zip(gf.iter().zip(&gs)) {
            let scale = b.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f64>().unwrap();
            assert!(scale > 0.0);
            assert!(max_abs_diff(a, b) < 1e-11 * scale.max(1.0), "case {i}: ∂{name} off by {}", max_abs_diff(a, b));
        }
    }
}

#[test]
fn max_pool2d_matches_the_reference_with_gradients() {
    for (i, dims) in [[11, 6, 24, 24], [3, 16, 8, 8], [2, 3, 7, 9]].iter().enumerate() {
        let x = randn(dims, 7 + i as u64);
        let r = randn(max_pool2d_slow(&x, 2).unwrap().dims(), 9);
        let (fast, gf) = grads(|t| max_pool2d(&t[0], 2).unwrap(), &[x.clone()], &r);
        let (slow, gs) = grads(|t| max_pool2d_slow(&t[0], 2).unwrap(), &[x], &r);
        assert_eq!(max_abs_diff(&fast, &slow), 0.0, "case {i}");
        assert_eq!(max_abs_diff(&gf[0], &gs[0]), 0.0, "case {i}");
    }
}

#[test]
fn linear_matches_candle_with_all_gradients() {
    for (i, &(n, fin, fout, relu)) in [(70, 256, 120, true), (5, 84, 10, false), (33, 3, 2, true)].iter().enumerate() {
        let x = randn(&[n, fin], 10 + i as u64);
        let w = randn(&[fout, fin], 20 + i as u64);
        let b = randn(&[fout], 30 + i as u64);
        let r = randn(&[n, fout], 40 + i as u64);
        let (fast, gf) = grads(|t| linear(&t[0], &t[1], &t[2], relu).unwrap(), &[x.clone(), w.clone(), b.clone()], &r);
        let (slow, gs) = grads(|t| linear_slow(&t[0], &t[1], &t[2], relu).unwrap(), &[x, w, b], &r);
        assert!(max_abs_diff(&fast, &slow) < 1e-11, "case {i}: forward");
        for (name, (a, b)) in ["x", "w", "b"].iter().zip(gf.iter().zip(&gs)) {
            assert!(max_abs_diff(a, b) < 1e-10, "case {i}: ∂{name} off by {}", max_abs_diff(a, b));
        }
    }
}

#[test]
fn cross_entropy_matches_candle_with_gradient() {
    let z = (randn(&[13, 10], 5) * 4.0).unwrap();
    let labels = Tensor::new(&[0u32, 9, 3, 3, 1, 2, 8, 7, 6, 5, 4, 0, 9], &Device::Cpu).unwrap();
    let one = Tensor::new(3.0f64, &Device::Cpu).unwrap();
    let (fast, gf) = grads(|t| cross_entropy(&t[0], &labels).unwrap(), &[z.clone()], &one);
    let (slow, gs) = grads(|t| cross_entropy_slow(&t[0], &labels).unwrap(), &[z], &one);
    assert!(max_abs_diff(&fast, &slow) < 1e-12);
    assert!(max_abs_diff(&gf[0], &gs[0]) < 1e-12);
}

#[test]
fn cross_entropy_rejects_out_of_range_labels() {
    let z = randn(&[2, 3], 1);
    let bad = Tensor::new(&[0u32, 3], &Device::Cpu).unwrap();
    assert!(cross_entropy(&z, &bad).is_err());
}

#[test]
fn max_pool2d_relu_matches_the_composition() {
    let x = randn(&[5, 6, 8, 10], 21);
    let r = randn(&[5, 6, 4, 5], 22);
    let (fast, gf) = grads(|t| max_pool2d_relu(&t[0], 2).unwrap(), &[x.clone()], &r);
    let (slow, gs) = grads(|t| max_pool2d_slow(&t[0], 2).unwrap().relu().unwrap(), &[x], &r);
    assert_eq!(max_abs_diff(&fast, &slow), 0.0);
    assert_eq!(max_abs_diff(&gf[0], &gs[0]), 0.0);
    // Both branches occur.
    let out = fast.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    assert!(out.contains(&0.0) && out.iter().any(|&v| v > 0.0));
}

#[test]
fn max_pool2d_ties_go_to_the_first_maximum() {
    let x = Var::from_tensor(&Tensor::zeros((1, 1, 2, 2), DType::F32, &Device::Cpu).unwrap()).unwrap();
    let g = max_pool2d(x.as_tensor(), 2).unwrap().sum_all().unwrap().backward().unwrap();
    let gx = g.get(x.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(gx, [1.0, 0.0, 0.0, 0.0]);
}

/// Prints a fingerprint of the f32 values and gradients of conv → batch norm → pool → linear →
/// cross-entropy; run in a child process by the test below, once per thread count.
#[test]
#[ignore = "run by results_do_not_depend_on_the_thread_count"]
fn kernel_fingerprint() {
    let x = randn(&[37, 6, 12, 12], 1).to_dtype(DType::F32).unwrap();
    let w = randn(&[16, 6, 5, 5], 2).to_dtype(DType::F32).unwrap();
    let b = randn(&[16], 3).to_dtype(DType::F32).unwrap();
    let fw = randn(&[10, 256], 4).to_dtype(DType::F32).unwrap();
    let fb = randn(&[10], 5).to_dtype(DType::F32).unwrap();
    let labels = Tensor::from_vec((0..37u32).map(|i| i % 10).collect::<Vec<_>>(), 37, &Device::Cpu).unwrap();
    let one = Tensor::new(1f32, &Device::Cpu).unwrap();
    let (gamma, beta) = (randn(&[16], 6).to_dtype(DType::F32).unwrap(), randn(&[16], 7).to_dtype(DType::F32).unwrap());
    let bn = BatchNormSpec { statistics: Statistics::Batch, eps: 1e-5, scale: None, relu: true };
    let f = |t: &[Tensor]| {
        let h = conv2d_batch_norm(&t[0], &t[1], &t[2], &t[5], &t[6], Conv2dSpec::default(), &bn).unwrap().0;
        let h = max_pool2d(&h, 2).unwrap();
        cross_entropy(&linear(&h.flatten_from(1).unwrap(), &t[3], &t[4], false).unwrap(), &labels).unwrap()
    };
    let (y, g) = grads(f, &[x, w, b, fw, fb, gamma, beta], &one);
    let mut bits = 0u64;
    for t in std::iter::once(y).chain(g) {
        for v in t.flatten_all().unwrap().to_vec1::<f32>().unwrap() {
            bits = bits.rotate_left(5) ^ v.to_bits() as u64;
        }
    }
    println!("FINGERPRINT {bits:016x}");
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let run = |threads: &str| {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["ops::kernel_fingerprint", "--exact", "--ignored", "--nocapture", "--test-threads", "1"])
            .env("CANDLE_NUM_THREADS", threads)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let after = text.split_once("FINGERPRINT ").unwrap_or_else(|| panic!("no fingerprint in {text}")).1;
        after.split_whitespace().next().unwrap().to_string()
    };
    let one = run("1");
    assert_eq!(one, run("2"));
    assert_eq!(one, run("3"));
}

#[test]
fn batch_norm_fused_matches_candle_with_all_gradients() {
    // 4-D with Dropout2d-like channel scales and ReLU, 2-D with element scales, odd batch sizes
    // (not a multiple of the work chunk), batch and fixed statistics.
    for (i, dims) in [vec![11, 3, 4, 5], vec![9, 6], vec![2, 4, 1, 1]].into_iter().enumerate() {
        let (n, c) = (dims[0], dims[1]);
        let x = randn(&dims, 10 + i as u64);
        let gamma = randn(&[c], 20 + i as u64).affine(0.5, 1.0).unwrap();
        let beta = randn(&[c], 30 + i as u64);
        let scale: Vec<f64> = (0..n * c).map(|j| if j % 3 == 0 { 0.0 } else { 1.5 }).collect();
        let fixed = Statistics::Fixed {
            mean: (0..c).map(|j| 0.1 * j as f64).collect(),
            var: (0..c).map(|j| 0.5 + j as f64).collect(),
        };
        for statistics in [Statistics::Batch, fixed] {
            for (scale, relu) in [(None, false), (Some(scale.clone()), true), (None, true)] {
                let spec = BatchNormSpec { statistics: statistics.clone(), eps: 1e-5, scale, relu };
                let r = randn(&dims, 40 + i as u64);
                let (fast, gf) = grads(
                    |t| batch_norm(&t[0], &t[1], &t[2], &spec).unwrap().0,
                    &[x.clone(), gamma.clone(), beta.clone()],
                    &r,
                );
                let (slow, gs) = grads(
                    |t| batch_norm_slow(&t[0], &t[1], &t[2], &spec).unwrap().0,
                    &[x.clone(), gamma.clone(), beta.clone()],
                    &r,
                );
                let case = format!("{dims:?} {spec:?}");
                assert!(max_abs_diff(&fast, &slow) < 1e-11, "{case}: forward");
                for (name, (a, b)) in ["x", "γ", "β"].iter().zip(gf.iter().zip(&gs)) {
                    assert!(max_abs_diff(a, b) < 1e-10, "{case}: ∂{name} off by {}", max_abs_diff(a, b));
                }
            }
        }
        // The returned batch statistics are the biased mean and variance.
        let spec = BatchNormSpec { statistics: Statistics::Batch, eps: 1e-5, scale: None, relu: false };
        let (fast, slow) = (
            batch_norm(&x, &gamma, &beta, &spec).unwrap().1.unwrap(),
            batch_norm_slow(&x, &gamma, &beta, &spec).unwrap().1.unwrap(),
        );
        assert_eq!(fast.count, slow.count);
        for (a, b) in fast.mean.iter().chain(&fast.var).zip(slow.mean.iter().chain(&slow.var)) {
            assert!((a - b).abs() < 1e-12);
        }
    }
}

#[test]
fn batch_norm_rejects_mismatched_inputs() {
    let x = randn(&[4, 3, 2, 2], 1);
    let spec = BatchNormSpec { statistics: Statistics::Batch, eps: 1e-5, scale: Some(vec![1.0; 5]), relu: false };
    let (g, b) = (randn(&[3], 2), randn(&[3], 3));
    assert!(batch_norm(&x, &g, &b, &spec).unwrap_err().to_string().contains("N·C"));
    let spec = BatchNormSpec { scale: None, ..spec };
    assert!(batch_norm(&x, &randn(&[2], 2), &b, &spec).is_err());
    assert!(batch_norm(&randn(&[1, 3], 4), &g, &b, &spec).unwrap_err().to_string().contains("> 1 value"));
}

/// The weight gradient is the same whether the forward pass kept its im2col matrices (the
/// default) or not (inside `no_grad`, where the backward pass rebuilds them).
#[test]
fn conv2d_gradients_do_not_depend_on_kept_columns() {
    let spec = Conv2dSpec { stride: 2, padding: 2 };
    let (x, w, b) = (randn(&[9, 3, 12, 12], 1), randn(&[4, 3, 5, 5], 2), randn(&[4], 3));
    let r = randn(&[9, 4, 6, 6], 4);
    let f = |t: &[Tensor]| conv2d(&t[0], &t[1], &t[2], spec).unwrap();
    let (_, kept) = grads(f, &[x.clone(), w.clone(), b.clone()], &r);
    let (_, rebuilt) = goldpan_core::ops::no_grad(|| grads(f, &[x, w, b], &r));
    for (a, b) in kept.iter().zip(&rebuilt) {
        assert_eq!(max_abs_diff(a, b), 0.0);
    }
}

/// The fused convolution → max-pool → ReLU equals the three ops, values and all gradients.
#[test]
fn conv2d_max_pool_relu_matches_the_composition() {
    use goldpan_core::ops::{conv2d_max_pool_relu, max_pool2d_relu};
    let spec = Conv2dSpec::default();
    for (i, &(n, c, h, o)) in [(19, 1, 12, 6), (3, 4, 9, 5)].iter().enumerate() {
        let (x, w, b) = (randn(&[n, c, h, h], 10 + i as u64), randn(&[o, c, 3, 3], 20), randn(&[o], 30));
        let out = max_pool2d_relu(&conv2d(&x, &w, &b, spec).unwrap(), 2).unwrap();
        let r = randn(out.dims(), 40);
        let fused = |t: &[Tensor]| conv2d_max_pool_relu(&t[0], &t[1], &t[2], spec, 2).unwrap();
        let composed = |t: &[Tensor]| max_pool2d_relu(&conv2d(&t[0], &t[1], &t[2], spec).unwrap(), 2).unwrap();
        let (a, ga) = grads(fused, &[x.clone(), w.clone(), b.clone()], &r);
        let (e, ge) = grads(composed, &[x, w, b], &r);
        assert_eq!(max_abs_diff(&a, &e), 0.0, "case {i}: forward");
        for (name, (a, e)) in ["x", "w", "b"].iter().zip(ga.iter().zip(&ge)) {
            assert_eq!(max_abs_diff(a, e), 0.0, "case {i}: ∂{name}");
        }
    }
}

/// The fused convolution → batch norm (→ dropout scale → ReLU) equals the two ops bit for bit,
/// values, every gradient and the batch statistics; and the candle references to 1e-10.
#[test]
fn conv2d_batch_norm_matches_the_composition() {
    for (i, &(n, c, h, o, stride, pad)) in [(11, 3, 9, 4, 2, 2), (3, 2, 6, 5, 1, 0)].iter().enumerate() {
        let conv = Conv2dSpec { stride, padding: pad };
        let (x, w, b) = (randn(&[n, c, h, h], 10 + i as u64), randn(&[o, c, 3, 3], 20), randn(&[o], 30));
        let (gamma, beta) = (randn(&[o], 40).affine(0.5, 1.0).unwrap(), randn(&[o], 50));
        let scale: Vec<f64> = (0..n * o).map(|j| if j % 3 == 0 { 0.0 } else { 1.25 }).collect();
        let fixed = Statistics::Fixed { mean: vec![0.2; o], var: vec![1.5; o] };
        for statistics in [Statistics::Batch, fixed] {
            for (scale, relu) in [(None, false), (Some(scale.clone()), true)] {
                let bn = BatchNormSpec { statistics: statistics.clone(), eps: 1e-5, scale, relu };
                let case = format!("case {i} {bn:?}");
                let inputs = [x.clone(), w.clone(), b.clone(), gamma.clone(), beta.clone()];
                let fused = |t: &[Tensor]| conv2d_batch_norm(&t[0], &t[1], &t[2], &t[3], &t[4], conv, &bn).unwrap().0;
                let apart = |t: &[Tensor]| {
                    batch_norm(&conv2d(&t[0], &t[1], &t[2], conv).unwrap(), &t[3], &t[4], &bn).unwrap().0
                };
                let slow = |t: &[Tensor]| {
                    batch_norm_slow(&conv2d_slow(&t[0], &t[1], &t[2], conv).unwrap(), &t[3], &t[4], &bn).unwrap().0
                };
                let r = randn(fused(&inputs).dims(), 60);
                let (a, ga) = grads(fused, &inputs, &r);
                let (e, ge) = grads(apart, &inputs, &r);
                let (s, gs) = grads(slow, &inputs, &r);
                assert_eq!(max_abs_diff(&a, &e), 0.0, "{case}: forward");
                assert!(max_abs_diff(&a, &s) < 1e-10, "{case}: forward against candle");
                for (name, ((a, e), s)) in ["x", "w", "b", "γ", "β"].iter().zip(ga.iter().zip(&ge).zip(&gs)) {
                    assert_eq!(max_abs_diff(a, e), 0.0, "{case}: ∂{name}");
                    assert!(max_abs_diff(a, s) < 1e-9, "{case}: ∂{name} against candle, {}", max_abs_diff(a, s));
                }
                let stats = |t: &Tensor| batch_norm(&conv2d(t, &w, &b, conv).unwrap(), &gamma, &beta, &bn).unwrap().1;
                assert_eq!(conv2d_batch_norm(&x, &w, &b, &gamma, &beta, conv, &bn).unwrap().1, stats(&x), "{case}");
            }
        }
    }
    // [b, γ, β] must match the kernel's output channels.
    let bn = BatchNormSpec { statistics: Statistics::Batch, eps: 1e-5, scale: None, relu: false };
    let (x, w) = (randn(&[2, 1, 5, 5], 1), randn(&[3, 1, 3, 3], 2));
    let err = conv2d_batch_norm(&x, &w, &randn(&[3], 3), &randn(&[2], 4), &randn(&[3], 5), Conv2dSpec::default(), &bn);
    assert!(err.is_err());
}
