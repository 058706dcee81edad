//! SHOT's digit networks (Liang et al. 2020, `network.py`), as whole classifiers
//! `netC(netB(netF(x)))` with 10 classes:
//!
//! - `lenet-base` (1×28×28): netF = conv 1→20 k5, max-pool 2, ReLU, conv 20→50 k5,
//!   Dropout2d 0.5, max-pool 2, ReLU → 800.
//! - `dtn` (3×32×32): netF = three conv k5 s2 p2 3→64→128→256, each followed by batch norm,
//!   Dropout2d 0.1/0.3/0.5 and ReLU → 4096.
//! - netB (both): Linear → 256, BatchNorm1d, Dropout 0.5 (SHOT's `feat_bootleneck`, type "bn").
//! - netC (both): weight-normalised Linear 256 → 10 (SHOT's `feat_classifier`, type "wn").
//!
//! netF uses PyTorch's default initialisation; the bottleneck and classifier SHOT's
//! `init_weights` (Xavier-normal weights, zero biases); batch norms start at γ = 1, β = 0.
use super::layers::{self, BatchNorm};
use super::{Initializer, Mode, Model, Params};
use crate::ops::Conv2dSpec;
use crate::program::{Op, Program};
use candle_core::{Device, Result, Tensor};

/// A conv or linear layer with PyTorch's default initialisation.
fn default_init(
    p: &mut Params,
    init: &mut Initializer,
    name: &str,
    shape: &[usize],
    dev: &Device,
) -> Result<(Tensor, Tensor)> {
    let fan_in: usize = shape[1..].iter().product();
    let w = p.add(format!("{name}.weight"), init.fan_in_uniform(shape, fan_in, dev)?);
    let b = p.add(format!("{name}.bias"), init.fan_in_uniform(shape[0], fan_in, dev)?);
    Ok((w, b))
}

/// Xavier-normal weights, zero bias (SHOT's `init_weights` for linear layers).
fn xavier_values(init: &mut Initializer, fan_in: usize, fan_out: usize) -> Vec<f32> {
    let std = (2.0 / (fan_in + fan_out) as f32).sqrt();
    init.normal_values(fan_in * fan_out, 0.0, std)
}

/// netB and netC: bottleneck + batch norm + dropout, then the weight-normalised classifier.
struct Head {
    bottleneck: (Tensor, Tensor),
    bn: BatchNorm,
    /// Classifier direction `v`, gain `g` and bias.
    classifier: (Tensor, Tensor, Tensor),
}

impl Head {
    fn new(p: &mut Params, init: &mut Initializer, features: usize, dev: &Device) -> Result<Self> {
        let w = p.add("bottleneck.weight", Initializer::var((256, features), xavier_values(init, features, 256), dev)?);
        let b = p.add("bottleneck.bias", Initializer::var(256, vec![0.0; 256], dev)?);
        let bn = BatchNorm::new(p, "bottleneck_bn", 256, dev)?;
        let v_values = xavier_values(init, 256, 10);
        // PyTorch's weight_norm starts with g = ‖v‖ per row, so that w = v initially.
        let g_values: Vec<f32> = v_values.chunks(256).map(|r| r.iter().map(|x| x * x).sum::<f32>().sqrt()).collect();
        let v = p.add("classifier.weight_v", Initializer::var((10, 256), v_values, dev)?);
        let g = p.add("classifier.weight_g", Initializer::var(10, g_values, dev)?);
        let c = p.add("classifier.bias", Initializer::var(10, vec![0.0; 10], dev)?);
        Ok(Self { bottleneck: (w, b), bn, classifier: (v, g, c) })
    }

    /// Bottleneck features and logits.
    fn forward(&self, features: &Tensor, mode: Mode) -> Result<(Tensor, Tensor)> {
        let x = layers::linear(features, &self.bottleneck.0, &self.bottleneck.1)?;
        let x = self.bn.forward_then(&x, mode.norm(), 0.5, dropout_seed(mode, 100), false)?;
        let (v, g, b) = &self.classifier;
        let logits = layers::weight_norm_linear(&x, v, g, b)?;
        Ok((x, logits))
    }
}

impl Head {
    /// netB and netC as program ops.
    fn program(&self, p: &Params, mode: Mode, prog: &mut Program) -> crate::Result<()> {
        prog.push(Op::Linear { weight: p.index("bottleneck.weight")?, bias: p.index("bottleneck.bias")? });
        push_batch_norm(p, &self.bn, "bottleneck_bn", mode, prog)?;
        push_dropout(0.5, mode, 100, prog);
        prog.push(Op::WeightNormLinear {
            direction: p.index("classifier.weight_v")?,
            gain: p.index("classifier.weight_g")?,
            bias: p.index("classifier.bias")?,
        });
        Ok(())
    }
}

/// A batch norm with the batch's statistics in training, the running ones in evaluation.
fn push_batch_norm(p: &Params, bn: &BatchNorm, name: &str, mode: Mode, prog: &mut Program) -> crate::Result<()> {
    let running = match mode {
        Mode::Train { .. } => None,
        Mode::Eval => {
            let stat = |v: &candle_core::Var| -> crate::Result<Vec<f64>> {
                Ok(v.as_tensor().to_dtype(candle_core::DType::F64)?.to_vec1::<f64>()?)
            };
            Some((stat(&bn.running_mean)?, stat(&bn.running_var)?))
        }
        Mode::Calibrate { .. } => return Err(crate::Error::config("mode", "calibration has no program")),
    };
    let (gamma, beta) = (p.index(&format!("{name}.weight"))?, p.index(&format!("{name}.bias"))?);
    prog.push(Op::BatchNorm { gamma, beta, running, eps: bn.eps });
    Ok(())
}

/// The dropout layer `layer` of a training step (nothing in evaluation).
fn push_dropout(p: f64, mode: Mode, layer: u64, prog: &mut Program) {
    if let Some(seed) = dropout_seed(mode, layer) {
        prog.push(Op::Dropout { p, seed });
    }
}

fn conv_op(p: &Params, name: &str, spec: Conv2dSpec) -> crate::Result<Op> {
    Ok(Op::Conv2d { weight: p.index(&format!("{name}.weight"))?, bias: p.index(&format!("{name}.bias"))?, spec })
}

fn stages(backbone: Result<Tensor>, head: &Head, mode: Mode) -> Result<super::Stages> {
    let backbone = backbone?;
    let (bottleneck, logits) = head.forward(&backbone, mode)?;
    Ok(super::Stages { backbone, bottleneck, logits })
}

/// The seed of dropout layer `layer` in this step, or `None` in evaluation.
fn dropout_seed(mode: Mode, layer: u64) -> Option<u64> {
    match mode {
        Mode::Train { seed } => Some(layers::layer_seed(seed, layer)),
        Mode::Calibrate { .. } | Mode::Eval => None,
    }
}

struct LeNetBase {
    params: Params,
    conv1: (Tensor, Tensor),
    conv2: (Tensor, Tensor),
    head: Head,
}

pub(super) fn lenet_base(init: &mut Initializer, dev: &Device) -> Result<Box<dyn Model>> {
    let mut p = Params::default();
    let conv1 = default_init(&mut p, init, "conv1", &[20, 1, 5, 5], dev)?;
    let conv2 = default_init(&mut p, init, "conv2", &[50, 20, 5, 5], dev)?;
    let head = Head::new(&mut p, init, 800, dev)?;
    Ok(Box::new(LeNetBase { params: p, conv1, conv2, head }))
}

impl LeNetBase {
    fn backbone(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let x = layers::conv2d_max_pool_relu(x, &self.conv1.0, &self.conv1.1, 2)?;
        let x = layers::conv2d(&x, &self.conv2.0, &self.conv2.1)?;
        let x = layers::dropout2d(&x, 0.5, dropout_seed(mode, 0))?;
        layers::max_pool2d_relu(&x, 2)?.flatten_from(1)
    }
}

impl Model for LeNetBase {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        Ok(self.head.forward(&self.backbone(x, mode)?, mode)?.1)
    }

    fn stages(&self, x: &Tensor, mode: Mode) -> Option<Result<super::Stages>> {
        Some(stages(self.backbone(x, mode), &self.head, mode))
    }

    fn stage_widths(&self) -> Option<(usize, usize)> {
        Some((800, 256))
    }

    fn params(&self) -> &Params {
        &self.params
    }

    fn program(&self, mode: Mode) -> crate::Result<Program> {
        let p = &self.params;
        let mut prog = Program::new(p);
        prog.push(conv_op(p, "conv1", Conv2dSpec::default())?).push(Op::MaxPool2d { k: 2 }).push(Op::Relu);
        prog.push(conv_op(p, "conv2", Conv2dSpec::default())?);
        push_dropout(0.5, mode, 0, &mut prog);
        prog.push(Op::MaxPool2d { k: 2 }).push(Op::Relu).push(Op::Flatten);
        self.head.program(p, mode, &mut prog)?;
        Ok(prog)
    }
}

struct Dtn {
    params: Params,
    convs: Vec<((Tensor, Tensor), BatchNorm, f64)>,
    head: Head,
}

pub(super) fn dtn(init: &mut Initializer, dev: &Device) -> Result<Box<dyn Model>> {
    let mut p = Params::default();
    let mut convs = Vec::new();
    for (i, (cin, cout, drop)) in [(3, 64, 0.1), (64, 128, 0.3), (128, 256, 0.5)].into_iter().enumerate() {
        let conv = default_init(&mut p, init, &format!("conv{}", i + 1), &[cout, cin, 5, 5], dev)?;
        let bn = BatchNorm::new(&mut p, &format!("bn{}", i + 1), cout, dev)?;
        convs.push((conv, bn, drop));
    }
    let head = Head::new(&mut p, init, 4096, dev)?;
    Ok(Box::new(Dtn { params: p, convs, head }))
}

impl Dtn {
    fn backbone(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let (mut x, conv) = (x.clone(), Conv2dSpec { stride: 2, padding: 2 });
        for (i, ((w, b), bn, drop)) in self.convs.iter().enumerate() {
            x = bn.conv_forward_then(&x, (w, b), conv, mode.norm(), *drop, dropout_seed(mode, i as u64), true)?;
        }
        x.flatten_from(1)
    }
}

impl Model for Dtn {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        Ok(self.head.forward(&self.backbone(x, mode)?, mode)?.1)
    }

    fn stages(&self, x: &Tensor, mode: Mode) -> Option<Result<super::Stages>> {
        Some(stages(self.backbone(x, mode), &self.head, mode))
    }

    fn stage_widths(&self) -> Option<(usize, usize)> {
        Some((4096, 256))
    }

    fn params(&self) -> &Params {
        &self.params
    }

    fn program(&self, mode: Mode) -> crate::Result<Program> {
        let p = &self.params;
        let mut prog = Program::new(p);
        for (i, (_, bn, drop)) in self.convs.iter().enumerate() {
            prog.push(conv_op(p, &format!("conv{}", i + 1), Conv2dSpec { stride: 2, padding: 2 })?);
            push_batch_norm(p, bn, &format!("bn{}", i + 1), mode, &mut prog)?;
            push_dropout(*drop, mode, i as u64, &mut prog);
            prog.push(Op::Relu);
        }
        prog.push(Op::Flatten);
        self.head.program(p, mode, &mut prog)?;
        Ok(prog)
    }
}
