//! Finite-difference checks of the gradients training uses: every function in
//! `goldpan_core::models::layers`, differentiated by candle's autograd in f64 on the CPU,
//! against central differences `(L(θ + h·eᵢ) − L(θ − h·eᵢ)) / 2h`, `h = 1e-6`, for every
//! element of every differentiated input.
//!
//! Each layer is reduced to a scalar `L = Σ layer(x) ⊙ R` with a fixed random `R` (so every
//! output element matters), except the losses, which are scalars already. The error of one
//! input is `max|autograd − numeric| / max(1, max|numeric|)` and must be ≤ 1e-6.
//!
//! Shapes: conv `2×3×6×6` input, `4×3×3×3` kernel; linear `5×7 → 3`; max-pool 2 on
//! `2×3×4×4` with distinct values (ties make the derivative undefined); relu with inputs at
//! least 0.1 from the kink; log-softmax / NLL / cross-entropy on 5 samples × 4 classes.
use candle_core::{backprop::GradStore, DType, Device, Tensor, Var};
use goldpan_core::models::layers;
use rand::{seq::SliceRandom, Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Step of the central differences.
const H: f64 = 1e-6;
/// Largest accepted `max|autograd − numeric| / max(1, max|numeric|)`.
const TOL: f64 = 1e-6;

/// A `dims`-shaped f64 tensor of uniform values in `[lo, hi)`.
fn uniform(rng: &mut ChaCha8Rng, dims: &[usize], lo: f64, hi: f64) -> Tensor {
    let n = dims.iter().product();
    let v: Vec<f64> = (0..n).map(|_| rng.random_range(lo..hi)).collect();
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
}

/// The scalar value of a 0-d (or 1-element) f64 tensor.
fn scalar(t: &Tensor) -> f64 {
    t.flatten_all().unwrap().to_vec1::<f64>().unwrap()[0]
}

/// `Σ t ⊙ r`, the reduction that makes every output element of a layer count.
fn weighted_sum(t: &Tensor, r: &Tensor) -> Tensor {
    (t * r).unwrap().sum_all().unwrap()
}

/// Checks candle's gradient of the scalar `f(inputs)` with respect to each `inputs[i]`,
/// `i ∈ which`, against central differences; panics on a mismatch or an all-zero gradient.
/// Returns the largest relative error seen, for the report.
pub(crate) fn check_grads(f: impl Fn(&[Tensor]) -> Tensor, inputs: &[Tensor], which: &[usize]) -> f64 {
    // Autograd: the checked inputs become variables, the rest stay constants (e.g. labels).
    let vars: Vec<Option<Var>> =
        (0..inputs.len()).map(|i| which.contains(&i).then(|| Var::from_tensor(&inputs[i]).unwrap())).collect();
    let tracked: Vec<Tensor> = inputs
        .iter()
        .zip(&vars)
        .map(|(t, v)| v.as_ref().map_or_else(|| t.clone(), |v| v.as_tensor().clone()))
        .collect();
    let loss = f(&tracked);
    assert_eq!(loss.elem_count(), 1, "the checked function must return a scalar");
    let grads: GradStore = loss.backward().unwrap();

    let mut worst = 0f64;
    for &i in which {
        let var = vars[i].as_ref().unwrap();
        let auto: Vec<f64> = grads
            .get(var)
            .unwrap_or_else(|| panic!("no gradient for input {i}"))
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();

        // Numeric: perturb one element at a time of a plain (untracked) copy.
        let dims = inputs[i].dims().to_vec();
        let base: Vec<f64> = inputs[i].flatten_all().unwrap().to_vec1().unwrap();
        let mut args: Vec<Tensor> = inputs.to_vec();
        let mut eval = |j: usize, delta: f64| {
            let mut v = base.clone();
            v[j] += delta;
            args[i] = Tensor::from_vec(v, dims.as_slice(), &Device::Cpu).unwrap();
            scalar(&f(&args))
        };
        let numeric: Vec<f64> = (0..base.len()).map(|j| (eval(j, H) - eval(j, -H)) / (2.0 * H)).collect();

        assert_eq!(auto.len(), numeric.len());
        let max_abs = |v: &[f64]| v.iter().fold(0f64, |m, x| m.max(x.abs()));
        // A check against a vanishing gradient proves nothing.
        assert!(max_abs(&numeric) > 1e-3, "input {i}: numeric gradient is ~0");
        assert!(max_abs(&auto) > 1e-3, "input {i}: autograd gradient is ~0");
        let diff = auto.iter().zip(&numeric).fold(0f64, |m, (a, b)| m.max((a - b).abs()));
        let rel = diff / max_abs(&numeric).max(1.0);
        eprintln!("input {i} ({dims:?}): relative error {rel:.3e}");
        assert!(rel <= TOL, "input {i}: relative error {rel:e} > {TOL:e}\nautograd {auto:?}\nnumeric  {numeric:?}");
        worst = worst.max(rel);
    }
    worst
}

#[test]
fn checker_rejects_a_wrong_gradient() {
    // d/dx Σ x ⊙ detach(x) is x to autograd but 2x in truth: the checker must notice.
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let x = uniform(&mut rng, &[3, 4], 0.5, 2.0);
    let wrong = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check_grads(|t| (&t[0] * t[0].detach()).unwrap().sum_all().unwrap(), &[x.clone()], &[0])
    }));
    assert!(wrong.is_err(), "a wrong gradient passed the check");
    // The same function without the detach passes.
    check_grads(|t| (&t[0] * &t[0]).unwrap().sum_all().unwrap(), &[x], &[0]);
}

#[test]
fn linear_gradients() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let x = uniform(&mut rng, &[5, 7], -1.0, 1.0);
    let w = uniform(&mut rng, &[3, 7], -1.0, 1.0);
    let b = uniform(&mut rng, &[3], -1.0, 1.0);
    let r = uniform(&mut rng, &[5, 3], -1.0, 1.0);
    let f = |t: &[Tensor]| weighted_sum(&layers::linear(&t[0], &t[1], &t[2]).unwrap(), &r);
    let rel = check_grads(f, &[x, w, b], &[0, 1, 2]);
    eprintln!("linear: max relative error {rel:.3e}");
}

#[test]
fn linear_relu_gradients() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    // 40 rows span two work chunks of the fused kernel.
    let x = uniform(&mut rng, &[40, 7], -1.0, 1.0);
    let w = uniform(&mut rng, &[6, 7], -1.0, 1.0);
    let b = uniform(&mut rng, &[6], -1.0, 1.0);
    let r = uniform(&mut rng, &[40, 6], -1.0, 1.0);
    // Pre-activations must stay clear of the kink for the finite differences.
    let z = layers::linear(&x, &w, &b).unwrap().abs().unwrap().flatten_all().unwrap().min(0).unwrap();
    assert!(z.to_scalar::<f64>().unwrap() > 1e-4);
    let f = |t: &[Tensor]| weighted_sum(&layers::linear_relu(&t[0], &t[1], &t[2]).unwrap(), &r);
    let rel = check_grads(f, &[x, w, b], &[0, 1, 2]);
    eprintln!("linear_relu: max relative error {rel:.3e}");
}

#[test]
fn conv2d_gradients() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let x = uniform(&mut rng, &[2, 3, 6, 6], -1.0, 1.0);
    let w = uniform(&mut rng, &[4, 3, 3, 3], -1.0, 1.0);
    let b = uniform(&mut rng, &[4], -1.0, 1.0);
    let r = uniform(&mut rng, &[2, 4, 4, 4], -1.0, 1.0);
    let f = |t: &[Tensor]| weighted_sum(&layers::conv2d(&t[0], &t[1], &t[2]).unwrap(), &r);
    let rel = check_grads(f, &[x, w, b], &[0, 1, 2]);
    eprintln!("conv2d: max relative error {rel:.3e}");
}

#[test]
fn max_pool2d_gradients() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    // (candle 0.11's own `Tensor::max_pool2d` backward yields 1/k² of this gradient, which is
    // why `layers::max_pool2d` is a gather at the argmax.)
    // Distinct values 0.1 apart, shuffled: every window has a unique max, far beyond ±h.
    let mut v: Vec<f64> = (0..2 * 3 * 4 * 4).map(|i| i as f64 * 0.1 - 4.8).collect();
    v.shuffle(&mut rng);
    let x = Tensor::from_vec(v, (2, 3, 4, 4), &Device::Cpu).unwrap();
    let r = uniform(&mut rng, &[2, 3, 2, 2], -1.0, 1.0);
    let f = |t: &[Tensor]| weighted_sum(&layers::max_pool2d(&t[0], 2).unwrap(), &r);
    let rel = check_grads(f, &[x], &[0]);
    eprintln!("max_pool2d: max relative error {rel:.3e}");
}

#[test]
fn max_pool2d_relu_gradients() {
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    // Distinct values 0.1 apart around zero: unique maxima, pooled values of both signs, none near 0.
    let mut v: Vec<f64> = (0..2 * 3 * 4 * 4).map(|i| i as f64 * 0.1 - 4.75).collect();
    v.shuffle(&mut rng);
    let x = Tensor::from_vec(v, (2, 3, 4, 4), &Device::Cpu).unwrap();
    let r = uniform(&mut rng, &[2, 3, 2, 2], -1.0, 1.0);
    let f = |t: &[Tensor]| weighted_sum(&layers::max_pool2d_relu(&t[0], 2).unwrap(), &r);
    let rel = check_grads(f, &[x], &[0]);
    eprintln!("max_pool2d_relu: max relative error {rel:.3e}");
}

/// Ties have no derivative; like PyTorch, the whole gradient goes to the first maximum.
#[test]
fn max_pool2d_routes_ties_to_the_first_maximum() {
    let x = Var::from_tensor(&Tensor::new(&[[[[1f64, 1.0, 0.0, 2.0], [1.0, 1.0, 2.0, 2.0]]]], &Device::Cpu).unwrap())
        .unwrap();
    let y = layers::max_pool2d(x.as_tensor(), 2).unwrap();
    assert_eq!(y.flatten_all().unwrap().to_vec1::<f64>().unwrap(), [1.0, 2.0]);
    let g = y.sum_all().unwrap().backward().unwrap();
    let gx = g.get(x.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
    assert_eq!(gx, [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
}

/// A height or width that fills no whole window drops the leftover rows/columns.
#[test]
fn max_pool2d_drops_partial_windows() {
    let x = Tensor::arange(0f64, 15.0, &Device::Cpu).unwrap().reshape((1, 1, 3, 5)).unwrap();
    let y = layers::max_pool2d(&x, 2).unwrap();
    assert_eq!(y.dims(), &[1, 1, 1, 2]);
    assert_eq!(y.flatten_all().unwrap().to_vec1::<f64>().unwrap(), [6.0, 8.0]);
}

#[test]
fn relu_gradients() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    // |x| ∈ [0.1, 1) with a random sign: both branches, never near the kink.
    let v: Vec<f64> = (0..3 * 8)
        .map(|_| {
            let m = rng.random_range(0.1..1.0);
            if rng.random_bool(0.5) {
                m
            } else {
                -m
            }
        })
        .collect();
    let x = Tensor::from_vec(v, (3, 8), &Device::Cpu).unwrap();
    let r = uniform(&mut rng, &[3, 8], -1.0, 1.0);
    let f = |t: &[Tensor]| weighted_sum(&layers::relu(&t[0]).unwrap(), &r);
    let rel = check_grads(f, &[x], &[0]);
    eprintln!("relu: max relative error {rel:.3e}");
}

/// 5 seeded labels in `0..4`, as `u32`.
fn labels(rng: &mut ChaCha8Rng) -> Tensor {
    let l: Vec<u32> = (0..5).map(|_| rng.random_range(0..4)).collect();
    Tensor::from_vec(l, 5, &Device::Cpu).unwrap()
}

#[test]
fn log_softmax_gradients() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let logits = uniform(&mut rng, &[5, 4], -3.0, 3.0);
    let r = uniform(&mut rng, &[5, 4], -1.0, 1.0);
    let f = |t: &[Tensor]| weighted_sum(&layers::log_softmax(&t[0]).unwrap(), &r);
    let rel = check_grads(f, &[logits], &[0]);
    eprintln!("log_softmax: max relative error {rel:.3e}");
}

#[test]
fn nll_gradients() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let log_probs = uniform(&mut rng, &[5, 4], -3.0, 0.0);
    let y = labels(&mut rng);
    let f = |t: &[Tensor]| layers::nll(&t[0], &t[1]).unwrap();
    let rel = check_grads(f, &[log_probs, y], &[0]);
    eprintln!("nll: max relative error {rel:.3e}");
}

#[test]
fn cross_entropy_gradients() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let logits = uniform(&mut rng, &[5, 4], -3.0, 3.0);
    let y = labels(&mut rng);
    let f = |t: &[Tensor]| layers::cross_entropy(&t[0], &t[1]).unwrap();
    let rel = check_grads(f, &[logits, y], &[0]);
    eprintln!("cross_entropy: max relative error {rel:.3e}");
}

/// conv → relu → max-pool 2 → flatten → linear → cross-entropy, on `x: 2×3×6×6`,
/// `cw: 4×3×3×3`, `cb: 4`, `lw: 3×16`, `lb: 3`, `labels: 2`.
fn tiny_net(t: &[Tensor]) -> Tensor {
    let h = layers::conv2d(&t[0], &t[1], &t[2]).unwrap();
    let h = layers::max_pool2d(&layers::relu(&h).unwrap(), 2).unwrap();
    let h = h.flatten_from(1).unwrap();
    let logits = layers::linear(&h, &t[3], &t[4]).unwrap();
    layers::cross_entropy(&logits, &t[5]).unwrap()
}

#[test]
fn whole_network_gradients() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let x = uniform(&mut rng, &[2, 3, 6, 6], -1.0, 1.0);
    let cw = uniform(&mut rng, &[4, 3, 3, 3], -0.5, 0.5);
    let cb = uniform(&mut rng, &[4], -0.5, 0.5);
    let lw = uniform(&mut rng, &[3, 16], -1.0, 1.0);
    let lb = uniform(&mut rng, &[3], -1.0, 1.0);
    let y = Tensor::new(&[2u32, 0], &Device::Cpu).unwrap();

    // The seed must keep every pre-activation off relu's kink and every positive pool
    // window's max unique, by far more than a ±h step can move them.
    let pre = layers::conv2d(&x, &cw, &cb).unwrap();
    let pre_v: Vec<f64> = pre.flatten_all().unwrap().to_vec1().unwrap();
    let kink = pre_v.iter().fold(f64::INFINITY, |m, v| m.min(v.abs()));
    assert!(kink > 1e-4, "a pre-activation is {kink:e} from relu's kink: change the seed");
    let windows = pre.relu().unwrap().reshape((2, 4, 2, 2, 2, 2)).unwrap();
    let windows = windows.permute((0, 1, 2, 4, 3, 5)).unwrap().reshape((32, 4)).unwrap();
    for w in windows.to_vec2::<f64>().unwrap() {
        let mut w = w;
        w.sort_by(|a, b| b.total_cmp(a));
        assert!(w[0] == 0.0 || w[0] - w[1] > 1e-4, "pool window {w:?} has a near tie: change the seed");
    }

    let rel = check_grads(tiny_net, &[x, cw, cb, lw, lb, y], &[0, 1, 2, 3, 4]);
    eprintln!("whole network: max relative error {rel:.3e}");
}

#[test]
fn layers_run_in_f64() {
    // f64 is what the checks above rely on: no op may silently change the dtype.
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let x = uniform(&mut rng, &[2, 3, 6, 6], -1.0, 1.0);
    let w = uniform(&mut rng, &[4, 3, 3, 3], -1.0, 1.0);
    let b = uniform(&mut rng, &[4], -1.0, 1.0);
    let c = layers::conv2d(&x, &w, &b).unwrap();
    let p = layers::max_pool2d(&layers::relu(&c).unwrap(), 2).unwrap();
    let l = layers::log_softmax(&p.flatten_from(1).unwrap()).unwrap();
    for t in [&c, &p, &l] {
        assert_eq!(t.dtype(), DType::F64);
    }
    assert_eq!(p.dims(), &[2, 4, 2, 2]);
}

fn batch_norm_of(t: &[Tensor], train: bool) -> Tensor {
    let c = t[1].dim(0).unwrap();
    let dev = &Device::Cpu;
    let bn = layers::BatchNorm {
        gamma: t[1].clone(),
        beta: t[2].clone(),
        running_mean: Var::from_tensor(&Tensor::arange(0f64, c as f64, dev).unwrap().affine(0.1, -0.2).unwrap())
            .unwrap(),
        running_var: Var::from_tensor(&Tensor::arange(1f64, c as f64 + 1.0, dev).unwrap().affine(0.5, 0.0).unwrap())
            .unwrap(),
        momentum: 0.1,
        eps: 1e-5,
    };
    bn.forward(&t[0], train).unwrap()
}

#[test]
fn batch_norm_gradients_train_and_eval() {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    for dims in [vec![4, 3, 3, 2], vec![6, 5]] {
        let c = dims[1];
        let x = uniform(&mut rng, &dims, -1.0, 1.0);
        let gamma = uniform(&mut rng, &[c], 0.5, 1.5);
        let beta = uniform(&mut rng, &[c], -0.5, 0.5);
        let r = uniform(&mut rng, &dims, -1.0, 1.0);
        for train in [true, false] {
            let f = |t: &[Tensor]| weighted_sum(&batch_norm_of(t, train), &r);
            let rel = check_grads(f, &[x.clone(), gamma.clone(), beta.clone()], &[0, 1, 2]);
            eprintln!("batch_norm {dims:?} train={train}: max relative error {rel:.3e}");
        }
    }
}

#[test]
fn dropout_gradients_with_a_fixed_mask() {
    let mut rng = ChaCha8Rng::seed_from_u64(22);
    let x = uniform(&mut rng, &[4, 6, 3, 3], -1.0, 1.0);
    let r = uniform(&mut rng, &[4, 6, 3, 3], -1.0, 1.0);
    let rel = check_grads(|t| weighted_sum(&layers::dropout2d(&t[0], 0.5, Some(7)).unwrap(), &r), &[x.clone()], &[0]);
    eprintln!("dropout2d: max relative error {rel:.3e}");
    let rel = check_grads(|t| weighted_sum(&layers::dropout(&t[0], 0.3, Some(8)).unwrap(), &r), &[x], &[0]);
    eprintln!("dropout: max relative error {rel:.3e}");
}

#[test]
fn weight_norm_linear_gradients() {
    let mut rng = ChaCha8Rng::seed_from_u64(23);
    let x = uniform(&mut rng, &[5, 7], -1.0, 1.0);
    let v = uniform(&mut rng, &[3, 7], -1.0, 1.0);
    let g = uniform(&mut rng, &[3], 0.5, 1.5);
    let b = uniform(&mut rng, &[3], -1.0, 1.0);
    let r = uniform(&mut rng, &[5, 3], -1.0, 1.0);
    let f = |t: &[Tensor]| weighted_sum(&layers::weight_norm_linear(&t[0], &t[1], &t[2], &t[3]).unwrap(), &r);
    let rel = check_grads(f, &[x, v, g, b], &[0, 1, 2, 3]);
    eprintln!("weight_norm_linear: max relative error {rel:.3e}");
}
