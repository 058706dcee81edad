//! The second-order engine (`goldpan_core::program`): its forward pass and gradient equal the
//! models' own (candle autograd on the training ops), its Hessian–vector products equal central
//! differences of its gradient in f64 for every registry model in both modes and for every loss
//! term, its full Hessian equals one written by hand for a 2-layer MLP, and its JVP and VJP are
//! adjoint.
use candle_core::{DType, Device, Tensor};
use goldpan_core::models::{self, Mode};
use goldpan_core::program::{self, Act, Loss, Op, Program, Weights};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn uniform(rng: &mut ChaCha8Rng, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// A unit-norm direction with the shapes of `w`. Unit norm keeps the finite differences'
/// perturbation of every pre-activation tiny, so that no ReLU or max-pool window crosses its
/// kink between the two points (where the derivative being checked jumps).
fn direction(rng: &mut ChaCha8Rng, w: &Weights<f64>) -> Weights<f64> {
    let v: Weights<f64> = w.iter().map(|p| uniform(rng, p.len(), -1.0, 1.0)).collect();
    let norm = flat(&v).iter().map(|a| a * a).sum::<f64>().sqrt();
    v.into_iter().map(|p| p.into_iter().map(|a| a / norm).collect()).collect()
}

fn images(rng: &mut ChaCha8Rng, n: usize, (c, h, w): (usize, usize, usize)) -> Act<f64> {
    Act::new(uniform(rng, n * c * h * w, 0.0, 1.0), vec![n, c, h, w]).unwrap()
}

fn axpy(a: f64, x: &Weights<f64>, y: &Weights<f64>) -> Weights<f64> {
    x.iter().zip(y).map(|(x, y)| x.iter().zip(y).map(|(x, y)| a * x + y).collect()).collect()
}

fn flat(w: &Weights<f64>) -> Vec<f64> {
    program::flatten(w)
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0f64, |m, x| m.max(x.abs()))
}

/// `max|a − b| / max|b|`.
fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let d = a.iter().zip(b).fold(0f64, |m, (x, y)| m.max((x - y).abs()));
    d / max_abs(b).max(1e-300)
}

/// `(∇L(θ + h·v) − ∇L(θ − h·v)) / 2h`.
fn fd_hvp(prog: &Program, w: &Weights<f64>, x: &Act<f64>, loss: &Loss, v: &Weights<f64>, h: f64) -> Vec<f64> {
    let g = |s: f64| flat(&program::gradient(prog, &axpy(s, v, w), x, loss).unwrap().grad);
    g(h).iter().zip(g(-h)).map(|(a, b)| (a - b) / (2.0 * h)).collect()
}

/// Checks `H·v` against central differences of the gradient; returns the relative error.
fn check_hvp(prog: &Program, w: &Weights<f64>, x: &Act<f64>, loss: &Loss, seed: u64) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let v = direction(&mut rng, w);
    let exact = program::hvp(prog, w, x, loss, &v).unwrap();
    let numeric = fd_hvp(prog, w, x, loss, &v, 1e-5);
    assert!(max_abs(&numeric) > 1e-5, "the finite-difference HVP is ~0: nothing is checked");
    let err = rel_err(&flat(&exact.hv), &numeric);
    // The gradient returned alongside is the plain one.
    let g = program::gradient(prog, w, x, loss).unwrap();
    assert_eq!(flat(&exact.grad), flat(&g.grad));
    err
}

const MODES: [Mode; 2] = [Mode::Eval, Mode::Train { seed: 11 }];

#[test]
fn hvp_matches_finite_differences_on_every_registry_model() {
    for spec in models::REGISTRY {
        let model = spec.build(3, &Device::Cpu).unwrap();
        for mode in MODES {
            let prog = model.program(mode).unwrap();
            let w = program::weights::<f64>(model.params()).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(5);
            let x = images(&mut rng, 4, spec.input);
            let loss = Loss::cross_entropy(&[1, 7, 3, 3], spec.classes).unwrap();
            let err = check_hvp(&prog, &w, &x, &loss, 9);
            eprintln!("{} {mode:?}: HVP vs central differences, relative error {err:.2e}", spec.name);
            assert!(err < 1e-6, "{} {mode:?}: relative error {err:e}", spec.name);
        }
    }
}

#[test]
fn hvp_of_every_loss_term_matches_finite_differences() {
    // Label smoothing plus KL with temperature to a teacher (PUL's and SHOT's losses), on the
    // model with batch norm and weight norm, in training mode.
    let spec = models::spec("lenet-base").unwrap();
    let model = spec.build(4, &Device::Cpu).unwrap();
    let prog = model.program(Mode::Train { seed: 2 }).unwrap();
    let w = program::weights::<f64>(model.params()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let x = images(&mut rng, 3, spec.input);
    let teacher = uniform(&mut rng, 3 * 10, -3.0, 3.0);
    let loss = Loss::label_smoothed(&[0, 4, 9], 10, 0.1).unwrap().plus_kl(&teacher, 4.0, 0.5).unwrap();
    let err = check_hvp(&prog, &w, &x, &loss, 10);
    eprintln!("label smoothing + KL(T=4): relative error {err:.2e}");
    assert!(err < 1e-6, "relative error {err:e}");
}

/// The loss value's own derivative along `v` equals `gᵀv`: checks each loss term's value and
/// gradient (including the T² scaling of the KL term) against each other.
#[test]
fn loss_gradient_matches_finite_differences_of_the_value() {
    let spec = models::spec("lenet5").unwrap();
    let model = spec.build(1, &Device::Cpu).unwrap();
    let prog = model.program(Mode::Eval).unwrap();
    let w = program::weights::<f64>(model.params()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let x = images(&mut rng, 3, spec.input);
    let teacher = uniform(&mut rng, 30, -2.0, 2.0);
    let loss = Loss::label_smoothed(&[2, 5, 8], 10, 0.2).unwrap().plus_kl(&teacher, 4.0, 0.3).unwrap();
    let v = direction(&mut rng, &w);
    let value = |s: f64| program::gradient(&prog, &axpy(s, &v, &w), &x, &loss).unwrap().loss;
    let h = 1e-5;
    let numeric = (value(h) - value(-h)) / (2.0 * h);
    let g = program::gradient(&prog, &w, &x, &loss).unwrap();
    let exact: f64 = flat(&g.grad).iter().zip(flat(&v)).map(|(a, b)| a * b).sum();
    assert!((exact - numeric).abs() <= 1e-7 * numeric.abs(), "{exact} vs {numeric}");
    // KL of a distribution to itself is 0: a loss of only that term vanishes at the teacher.
    let logits: Vec<f64> = g.logits.data.clone();
    let kl_only = Loss { classes: 10, terms: vec![] }.plus_kl(&logits, 4.0, 1.0).unwrap();
    assert!(program::gradient(&prog, &w, &x, &kl_only).unwrap().loss.abs() < 1e-12);
}

/// The program computes what the model computes: logits and the cross-entropy gradient of
/// `Model::forward` under candle's autograd (the training path), in f32.
#[test]
fn program_matches_the_model_forward_and_gradient() {
    for spec in models::REGISTRY {
        let model = spec.build(2, &Device::Cpu).unwrap();
        for mode in MODES {
            let mut rng = ChaCha8Rng::seed_from_u64(8);
            let (c, h, wd) = spec.input;
            let xs: Vec<f32> = uniform(&mut rng, 5 * c * h * wd, 0.0, 1.0).into_iter().map(|v| v as f32).collect();
            let labels = [0u32, 3, 5, 9, 1];
            let xt = Tensor::from_vec(xs.clone(), (5, c, h, wd), &Device::Cpu).unwrap();
            let prog = model.program(mode).unwrap();
            let w = program::weights::<f32>(model.params()).unwrap();
            let x = Act::new(xs, vec![5, c, h, wd]).unwrap();
            let ours = program::gradient(&prog, &w, &x, &Loss::cross_entropy(&labels, 10).unwrap()).unwrap();

            let logits = model.forward(&xt, mode).unwrap();
            let lt = Tensor::new(&labels, &Device::Cpu).unwrap();
            let loss = models::layers::cross_entropy(&logits, &lt).unwrap();
            let grads = loss.backward().unwrap();
            let theirs: Vec<f32> = logits.flatten_all().unwrap().to_vec1().unwrap();
            let to64 = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<_>>();
            let err = rel_err(&to64(&ours.logits.data), &to64(&theirs));
            assert!(err < 1e-5, "{} {mode:?}: logits differ by {err:e}", spec.name);
            assert!((ours.loss - loss.to_scalar::<f32>().unwrap() as f64).abs() < 1e-5);
            // Relative to the largest gradient entry of the model: with batch statistics the
            // gradient of the bias before a batch norm is 0 up to rounding on both sides.
            let theirs: Vec<Vec<f64>> = model
                .params()
                .iter()
                .map(|(_, var)| to64(&grads.get(var).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()))
                .collect();
            let scale = theirs.iter().map(|t| max_abs(t)).fold(0f64, f64::max);
            for (((name, _), g), theirs) in model.params().iter().zip(&ours.grad).zip(&theirs) {
                let diff = to64(g).iter().zip(theirs).fold(0f64, |m, (a, b)| m.max((a - b).abs()));
                let err = diff / scale;
                assert!(err < 1e-4, "{} {mode:?} {name}: gradients differ by {err:e}", spec.name);
            }
        }
    }
}

/// A 2-layer MLP `z = W₂·relu(W₁x + b₁) + b₂` with mean cross-entropy, whose Hessian is
/// written out by hand: `H = Jᵀ·H_z·J + Σ_k ∂L/∂z_k · ∇²z_k`, where `∇²z_k` only couples
/// `W₂[k, j]` with `W₁[j, ·]` and `b₁[j]` (through the active unit `j`).
struct Mlp {
    n: usize,
    d: usize,
    h: usize,
    c: usize,
}

impl Mlp {
    fn program(&self) -> Program {
        let (d, h, c) = (self.d, self.h, self.c);
        Program {
            ops: vec![Op::Linear { weight: 0, bias: 1 }, Op::Relu, Op::Linear { weight: 2, bias: 3 }],
            param_shapes: vec![vec![h, d], vec![h], vec![c, h], vec![c]],
        }
    }

    /// Index of `W₁[j,i]`, `b₁[j]`, `W₂[k,j]`, `b₂[k]` in the flat parameter vector.
    fn w1(&self, j: usize, i: usize) -> usize {
        j * self.d + i
    }
    fn b1(&self, j: usize) -> usize {
        self.h * self.d + j
    }
    fn w2(&self, k: usize, j: usize) -> usize {
        self.h * self.d + self.h + k * self.h + j
    }
    fn b2(&self, k: usize) -> usize {
        self.h * self.d + self.h + self.c * self.h + k
    }

    fn hessian(&self, theta: &[f64], x: &[f64], labels: &[u32]) -> Vec<Vec<f64>> {
        let (d, h, c) = (self.d, self.h, self.c);
        let p = theta.len();
        let mut hess = vec![vec![0.0; p]; p];
        for s in 0..self.n {
            let xs = &x[s * d..(s + 1) * d];
            let pre: Vec<f64> =
                (0..h).map(|j| theta[self.b1(j)] + (0..d).map(|i| theta[self.w1(j, i)] * xs[i]).sum::<f64>()).collect();
            let act: Vec<f64> = pre.iter().map(|&v| v.max(0.0)).collect();
            let on: Vec<f64> = pre.iter().map(|&v| if v > 0.0 { 1.0 } else { 0.0 }).collect();
            let z: Vec<f64> = (0..c)
                .map(|k| theta[self.b2(k)] + (0..h).map(|j| theta[self.w2(k, j)] * act[j]).sum::<f64>())
                .collect();
            let m = z.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
            let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
            let prob: Vec<f64> = e.iter().map(|v| v / e.iter().sum::<f64>()).collect();
            // J[k][·] = ∂z_k/∂θ
            let mut jac = vec![vec![0.0; p]; c];
            for k in 0..c {
                jac[k][self.b2(k)] = 1.0;
                for j in 0..h {
                    jac[k][self.w2(k, j)] = act[j];
                    jac[k][self.b1(j)] = theta[self.w2(k, j)] * on[j];
                    for i in 0..d {
                        jac[k][self.w1(j, i)] = theta[self.w2(k, j)] * on[j] * xs[i];
                    }
                }
            }
            let scale = 1.0 / self.n as f64;
            for a in 0..c {
                for b in 0..c {
                    let hz = (if a == b { prob[a] } else { 0.0 } - prob[a] * prob[b]) * scale;
                    for u in 0..p {
                        if jac[a][u] == 0.0 {
                            continue;
                        }
                        for w in 0..p {
                            hess[u][w] += jac[a][u] * hz * jac[b][w];
                        }
                    }
                }
            }
            for k in 0..c {
                let gz = (prob[k] - if labels[s] as usize == k { 1.0 } else { 0.0 }) * scale;
                for j in 0..h {
                    let mut couple = |u: usize, val: f64| {
                        hess[self.w2(k, j)][u] += gz * val;
                        hess[u][self.w2(k, j)] += gz * val;
                    };
                    couple(self.b1(j), on[j]);
                    for i in 0..d {
                        couple(self.w1(j, i), on[j] * xs[i]);
                    }
                }
            }
        }
        hess
    }
}

/// The Hessian assembled from HVPs with unit vectors.
fn assembled_hessian(prog: &Program, w: &Weights<f64>, x: &Act<f64>, loss: &Loss) -> Vec<Vec<f64>> {
    let p = prog.param_count();
    (0..p)
        .map(|i| {
            let mut e = vec![0.0; p];
            e[i] = 1.0;
            let e = program::unflatten(prog, &e).unwrap();
            flat(&program::hvp(prog, w, x, loss, &e).unwrap().hv)
        })
        .collect()
}

#[test]
fn full_hessian_of_an_mlp_equals_the_hand_written_one_and_is_symmetric() {
    let mlp = Mlp { n: 6, d: 4, h: 5, c: 3 };
    let prog = mlp.program();
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let theta = uniform(&mut rng, prog.param_count(), -1.0, 1.0);
    let w = program::unflatten(&prog, &theta).unwrap();
    let x = uniform(&mut rng, mlp.n * mlp.d, -1.0, 1.0);
    let labels = [0, 2, 1, 1, 0, 2];
    let loss = Loss::cross_entropy(&labels, mlp.c).unwrap();
    let cols = assembled_hessian(&prog, &w, &Act::new(x.clone(), vec![mlp.n, mlp.d]).unwrap(), &loss);
    let by_hand = mlp.hessian(&theta, &x, &labels);
    let p = theta.len();
    let (mut diff, mut asym, mut scale) = (0f64, 0f64, 0f64);
    for i in 0..p {
        for j in 0..p {
            diff = diff.max((cols[j][i] - by_hand[i][j]).abs());
            asym = asym.max((cols[j][i] - cols[i][j]).abs());
            scale = scale.max(by_hand[i][j].abs());
        }
    }
    eprintln!("MLP Hessian ({p}×{p}): max |HVP − by hand| {diff:.2e}, asymmetry {asym:.2e}, scale {scale:.2e}");
    assert!(scale > 0.1);
    assert!(diff < 1e-12 * scale.max(1.0), "differs from the hand-written Hessian by {diff:e}");
    assert!(asym < 1e-10, "asymmetric by {asym:e}");
}

#[test]
fn hessian_of_a_conv_net_with_batch_norm_is_symmetric() {
    // conv → batch norm (batch statistics) → ReLU → max-pool → flatten → weight-norm linear.
    let prog = Program {
        ops: vec![
            Op::Conv2d { weight: 0, bias: 1, spec: goldpan_core::ops::Conv2dSpec { stride: 1, padding: 1 } },
            Op::BatchNorm { gamma: 2, beta: 3, running: None, eps: 1e-5 },
            Op::Relu,
            Op::MaxPool2d { k: 2 },
            Op::Flatten,
            Op::WeightNormLinear { direction: 4, gain: 5, bias: 6 },
        ],
        param_shapes: vec![vec![2, 1, 3, 3], vec![2], vec![2], vec![2], vec![3, 8], vec![3], vec![3]],
    };
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let theta = uniform(&mut rng, prog.param_count(), 0.2, 1.0);
    let w = program::unflatten(&prog, &theta).unwrap();
    let x = images(&mut rng, 5, (1, 4, 4));
    let loss = Loss::cross_entropy(&[0, 1, 2, 1, 0], 3).unwrap();
    let cols = assembled_hessian(&prog, &w, &x, &loss);
    let p = theta.len();
    let (mut asym, mut scale) = (0f64, 0f64);
    for i in 0..p {
        for j in 0..p {
            asym = asym.max((cols[i][j] - cols[j][i]).abs());
            scale = scale.max(cols[i][j].abs());
        }
    }
    eprintln!("conv/BN/WN Hessian ({p}×{p}): asymmetry {asym:.2e}, scale {scale:.2e}");
    assert!(scale > 1e-3 && asym < 1e-10 * scale.max(1.0), "asymmetry {asym:e} at scale {scale:e}");
    assert!(check_hvp(&prog, &w, &x, &loss, 14) < 1e-6);
}

#[test]
fn hvp_is_linear_in_the_direction() {
    let spec = models::spec("dtn").unwrap();
    let model = spec.build(0, &Device::Cpu).unwrap();
    let prog = model.program(Mode::Train { seed: 1 }).unwrap();
    let w = program::weights::<f64>(model.params()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(15);
    let x = images(&mut rng, 2, spec.input);
    let loss = Loss::cross_entropy(&[4, 2], 10).unwrap();
    let (a, b) = (direction(&mut rng, &w), direction(&mut rng, &w));
    let hv = |v: &Weights<f64>| flat(&program::hvp(&prog, &w, &x, &loss, v).unwrap().hv);
    let combined = hv(&axpy(2.5, &a, &b.iter().map(|p| p.iter().map(|v| -0.5 * v).collect()).collect()));
    let separate: Vec<f64> = hv(&a).iter().zip(hv(&b)).map(|(ha, hb)| 2.5 * ha - 0.5 * hb).collect();
    let err = rel_err(&combined, &separate);
    assert!(err < 1e-12, "H(2.5a − 0.5b) ≠ 2.5Ha − 0.5Hb: {err:e}");
}

#[test]
fn jvp_and_vjp_are_adjoint() {
    // ⟨u, J·v⟩ = ⟨Jᵀ·u, v⟩ for random u, v.
    for name in ["lenet5", "dtn"] {
        let spec = models::spec(name).unwrap();
        let model = spec.build(0, &Device::Cpu).unwrap();
        let prog = model.program(Mode::Eval).unwrap();
        let w = program::weights::<f64>(model.params()).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(16);
        let x = images(&mut rng, 3, spec.input);
        let v = direction(&mut rng, &w);
        let u = uniform(&mut rng, 30, -1.0, 1.0);
        let jv = program::jvp(&prog, &w, &x, &v).unwrap().tangent;
        let jtu = program::vjp(&prog, &w, &x, &u).unwrap();
        let lhs: f64 = u.iter().zip(&jv).map(|(a, b)| a * b).sum();
        let rhs: f64 = flat(&jtu).iter().zip(flat(&v)).map(|(a, b)| a * b).sum();
        assert!((lhs - rhs).abs() < 1e-10 * lhs.abs().max(1.0), "{name}: {lhs} vs {rhs}");
        // And J·v is the derivative of the logits.
        let logits = |s: f64| program::jvp(&prog, &axpy(s, &v, &w), &x, &v).unwrap().logits.data;
        let numeric: Vec<f64> = logits(1e-5).iter().zip(logits(-1e-5)).map(|(a, b)| (a - b) / 2e-5).collect();
        assert!(rel_err(&jv, &numeric) < 1e-6, "{name}: J·v vs finite differences");
    }
}

#[test]
fn mismatched_shapes_are_errors() {
    let model = models::spec("lenet5").unwrap().build(0, &Device::Cpu).unwrap();
    let prog = model.program(Mode::Eval).unwrap();
    let w = program::weights::<f64>(model.params()).unwrap();
    let x = Act::new(vec![0.0; 2 * 784], vec![2, 1, 28, 28]).unwrap();
    let wrong_batch = Loss::cross_entropy(&[1, 2, 3], 10).unwrap();
    assert_eq!(program::gradient(&prog, &w, &x, &wrong_batch).unwrap_err().code(), "E_SHAPE");
    let short = vec![0.0; 10];
    assert_eq!(program::unflatten(&prog, &short).unwrap_err().code(), "E_SHAPE");
    assert_eq!(Loss::cross_entropy(&[10], 10).unwrap_err().code(), "E_CONFIG");
    assert!(model.program(Mode::Calibrate { batch: 0 }).is_err());
    let _ = DType::F64;
}

#[test]
fn kept_forward_passes_give_the_same_products() {
    // Tangent-only passes over a kept forward (the NTK's Lanczos) equal full JVPs and VJPs, in
    // both modes (batch statistics and dropout in training).
    for name in ["lenet-base", "dtn"] {
        let spec = models::spec(name).unwrap();
        let model = spec.build(2, &Device::Cpu).unwrap();
        for mode in MODES {
            let prog = model.program(mode).unwrap();
            let w = program::weights::<f64>(model.params()).unwrap();
            let mut rng = ChaCha8Rng::seed_from_u64(17);
            let x = images(&mut rng, 3, spec.input);
            let v = direction(&mut rng, &w);
            let u = uniform(&mut rng, 30, -1.0, 1.0);
            let kept = program::Forward::new(&prog, &w, &x).unwrap();
            let err = rel_err(&kept.jvp(&prog, &w, &v).unwrap(), &program::jvp(&prog, &w, &x, &v).unwrap().tangent);
            assert!(err < 1e-12, "{name} {mode:?}: J·v differs by {err:e}");
            let err =
                rel_err(&flat(&kept.vjp(&prog, &w, &u).unwrap()), &flat(&program::vjp(&prog, &w, &x, &u).unwrap()));
            assert!(err < 1e-12, "{name} {mode:?}: Jᵀ·u differs by {err:e}");
        }
    }
}
