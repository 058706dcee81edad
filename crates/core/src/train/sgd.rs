//! SGD with momentum, L2 weight decay and the Nesterov option, with PyTorch's semantics:
//!
//! `g ← ∇ + λθ;  b ← μb + g;  d ← g + μb (Nesterov) or b;  θ ← θ − η d`
//!
//! The momentum buffers start at zero, which makes the first step `b = g` as in PyTorch.
use crate::models::Params;
use candle_core::{backprop::GradStore, Result, Tensor};

pub struct Sgd {
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
    /// One buffer per parameter, in `Params` order.
    pub buffers: Vec<Tensor>,
}

impl Sgd {
    pub fn new(params: &Params, lr: f64, momentum: f64, weight_decay: f64, nesterov: bool) -> Result<Self> {
        let buffers = params.iter().map(|(_, v)| v.zeros_like()).collect::<Result<_>>()?;
        Ok(Self { lr, momentum, weight_decay, nesterov, buffers })
    }

    pub fn step(&mut self, params: &Params, grads: &GradStore) -> Result<()> {
        for ((_, var), buf) in params.iter().zip(self.buffers.iter_mut()) {
            let Some(grad) = grads.get(var.as_tensor()) else { continue };
            // Everything here is detached: a tensor computed from a `Var` records its inputs
            // for backprop, so a tracked buffer would chain every step's graph into the next
            // and keep all of them alive.
            let theta = var.as_tensor().detach();
            let mut g = grad.detach();
            if self.weight_decay != 0.0 {
                g = (g + theta.affine(self.weight_decay, 0.0)?)?;
            }
            let d = if self.momentum != 0.0 {
                *buf = (buf.affine(self.momentum, 0.0)? + &g)?;
                if self.nesterov { (g + buf.affine(self.momentum, 0.0)?)? } else { buf.clone() }
            } else {
                g
            };
            var.set(&(theta - d.affine(self.lr, 0.0)?)?)?;
        }
        Ok(())
    }
}
