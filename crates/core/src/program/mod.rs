//! A registry model as a *program* — its layers in order, with parameter indices — run by a
//! small engine that computes exact first- and second-order derivatives: the loss gradient,
//! Jacobian–vector products (forward mode) and Hessian–vector products (Pearlmutter's
//! R-operator: forward-over-reverse).
//!
//! Why not candle's autograd: it detaches gradients (double backward only behind the
//! process-wide `CANDLE_GRAD_DO_NOT_DETACH`), has no forward mode, and our fast custom ops
//! have first-order backward rules only. Each rule here is written out per layer — the value,
//! its tangent `R{·}`, the adjoint and the adjoint's tangent — on the same CPU kernels that
//! training runs (im2col + GEMM convolution, max-pool, linear), so an HVP costs a handful of
//! convolutions more than a gradient and nothing is approximated. Every model provides its
//! program next to its forward pass ([`crate::models::Model::program`]); tests check that
//! both compute the same logits and gradients, and every rule against finite differences.
//!
//! ```
//! use goldpan_core::{models, program::{self, Loss}};
//! let model = models::spec("lenet5").unwrap().build(0, &candle_core::Device::Cpu).unwrap();
//! let prog = model.program(models::Mode::Eval).unwrap();
//! let weights = program::weights::<f64>(model.params()).unwrap();
//! let x = program::Act::new(vec![0.5; 2 * 28 * 28], vec![2, 1, 28, 28]).unwrap();
//! let loss = Loss::cross_entropy(&[3, 7], 10).unwrap();
//! let g = program::gradient(&prog, &weights, &x, &loss).unwrap();
//! let hv = program::hvp(&prog, &weights, &x, &loss, &g.grad).unwrap();
//! // gᵀHg/‖g‖² is the loss's curvature along its gradient.
//! assert_eq!(hv.hv.len(), weights.len());
//! ```
mod engine;
mod loss;
mod norm;
mod rules;

pub use engine::{gradient, hvp, jvp, logit_backprop, vjp, Forward, Gradient, Hvp, Jvp, LayerSignal, Pooled};
pub use loss::{Loss, LossTerm};

use crate::error::{Error, Result};
use crate::models::Params;
use crate::ops::Conv2dSpec;

/// One layer of a program. Parameters are indices into the model's [`Params`] order.
#[derive(Debug, Clone)]
pub enum Op {
    /// `conv(x, w) + b`.
    Conv2d {
        weight: usize,
        bias: usize,
        spec: Conv2dSpec,
    },
    /// `x·wᵀ + b` on `N×in` input.
    Linear {
        weight: usize,
        bias: usize,
    },
    /// `x·wᵀ + b` with `w = g·v/‖v‖` row by row (PyTorch's `weight_norm`, dim 0).
    WeightNormLinear {
        direction: usize,
        gain: usize,
        bias: usize,
    },
    /// Non-overlapping `k×k` max-pooling; derivatives through each window's first maximum.
    MaxPool2d {
        k: usize,
    },
    Relu,
    /// Batch norm over dimension 1 of `N×C` or `N×C×H×W` input: with the batch's statistics
    /// when `running` is `None` (training; the statistics depend on the input, and their
    /// derivatives are part of the rule), else with fixed running `(mean, var)` (evaluation).
    BatchNorm {
        gamma: usize,
        beta: usize,
        running: Option<(Vec<f64>, Vec<f64>)>,
        eps: f64,
    },
    /// Multiplication by a fixed inverted-dropout mask per `(sample, channel)` — the mask
    /// training draws from `seed` with probability `p` ([`crate::models::layers::dropout2d`]
    /// for 4-D input, `dropout` for 2-D).
    Dropout {
        p: f64,
        seed: u64,
    },
    /// `N×…` → `N×(rest)`.
    Flatten,
}

/// A model's layers in order, and the shapes of its parameters.
#[derive(Debug, Clone)]
pub struct Program {
    pub ops: Vec<Op>,
    pub param_shapes: Vec<Vec<usize>>,
}

impl Program {
    /// An empty program over the parameters in `params`.
    pub fn new(params: &Params) -> Self {
        Self { ops: Vec::new(), param_shapes: params.iter().map(|(_, v)| v.dims().to_vec()).collect() }
    }

    pub fn push(&mut self, op: Op) -> &mut Self {
        self.ops.push(op);
        self
    }

    /// Number of scalar parameters.
    pub fn param_count(&self) -> usize {
        self.param_shapes.iter().map(|s| s.iter().product::<usize>()).sum()
    }
}

/// The parameter values a program runs with, one flat vector per parameter (row-major, in
/// [`Params`] order). Also the type of parameter-space directions, gradients and HVPs.
pub type Weights<T> = Vec<Vec<T>>;

/// The current values of `params` as [`Weights`] in `T` (`f32` or `f64`).
pub fn weights<T: candle_core::WithDType>(params: &Params) -> Result<Weights<T>> {
    params.iter().map(|(_, v)| Ok(v.as_tensor().to_dtype(T::DTYPE)?.flatten_all()?.to_vec1::<T>()?)).collect()
}

/// `Weights` as one vector (the layout of spectra's operators), and back.
pub fn flatten<T: Copy>(w: &[Vec<T>]) -> Vec<T> {
    w.iter().flatten().copied().collect()
}

/// Splits `flat` into vectors of the program's parameter sizes.
pub fn unflatten<T: Copy>(program: &Program, flat: &[T]) -> Result<Weights<T>> {
    if flat.len() != program.param_count() {
        return Err(Error::Shape(format!(
            "a parameter vector of {} values for a model with {}",
            flat.len(),
            program.param_count()
        )));
    }
    let mut rest = flat;
    Ok(program
        .param_shapes
        .iter()
        .map(|s| {
            let (head, tail) = rest.split_at(s.iter().product());
            rest = tail;
            head.to_vec()
        })
        .collect())
}

/// An activation: values and shape (`N×…`).
#[derive(Debug, Clone, PartialEq)]
pub struct Act<T> {
    pub data: Vec<T>,
    pub dims: Vec<usize>,
}

impl<T> Act<T> {
    pub fn new(data: Vec<T>, dims: Vec<usize>) -> Result<Self> {
        if data.len() != dims.iter().product::<usize>() {
            return Err(Error::Shape(format!("{} values for shape {dims:?}", data.len())));
        }
        Ok(Self { data, dims })
    }

    /// Batch size.
    pub fn n(&self) -> usize {
        self.dims[0]
    }
}

impl<T: candle_core::WithDType> Act<T> {
    /// A CPU tensor's values (converted to `T`).
    pub fn from_tensor(t: &candle_core::Tensor) -> Result<Self> {
        Ok(Self { data: t.to_dtype(T::DTYPE)?.flatten_all()?.to_vec1::<T>()?, dims: t.dims().to_vec() })
    }
}
