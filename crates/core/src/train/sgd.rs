//! SGD with momentum, L2 weight decay and the Nesterov option, with PyTorch's semantics:
//!
//! `g ← ∇ + λθ;  b ← μb + g;  d ← g + μb (Nesterov) or b;  θ ← θ − η d`
//!
//! The momentum buffers start at zero, which makes the first step `b = g` as in PyTorch.
//!
//! On CPU the update runs in place, two passes per parameter and no allocation; elsewhere it
//! is composed from candle ops. Both do the same `f32` operations in the same order.
use crate::models::Params;
use crate::ops::parallel;
use candle_core::{backprop::GradStore, CpuStorage, InplaceOp3, Layout, Result, Tensor};

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
        let grads: Vec<Option<Tensor>> = params.iter().map(|(_, var)| grads.get(var.as_tensor()).cloned()).collect();
        self.step_with(params, &grads)
    }

    /// The update from one gradient per parameter, in `Params` order (`None`: no gradient).
    pub fn step_with(&mut self, params: &Params, grads: &[Option<Tensor>]) -> Result<()> {
        let hyper =
            Hyper { lr: self.lr, momentum: self.momentum, weight_decay: self.weight_decay, nesterov: self.nesterov };
        for (((_, var), buf), grad) in params.iter().zip(self.buffers.iter_mut()).zip(grads) {
            let Some(grad) = grad else { continue };
            if var.device().is_cpu() && var.is_contiguous() && buf.is_contiguous() {
                hyper.update_in_place(var.as_tensor(), buf, &grad.contiguous()?)?;
            } else {
                var.set(&hyper.updated(var.as_tensor(), buf, grad)?)?;
            }
        }
        Ok(())
    }
}

/// Elements per parallel work item of the in-place update (element-wise, so any split gives
/// the same bits).
const PIECE: usize = 1 << 15;

#[derive(Clone, Copy)]
struct Hyper {
    lr: f64,
    momentum: f64,
    weight_decay: f64,
    nesterov: bool,
}

impl Hyper {
    fn update_in_place(self, theta: &Tensor, buf: &Tensor, grad: &Tensor) -> Result<()> {
        if self.momentum != 0.0 {
            buf.inplace_op3(theta, grad, &UpdateBuffer(self))?;
        }
        theta.inplace_op3(buf, grad, &UpdateParam(self))
    }

    /// The new `θ` from candle ops; replaces `buf` by the new buffer.
    fn updated(self, theta: &Tensor, buf: &mut Tensor, grad: &Tensor) -> Result<Tensor> {
        // Everything here is detached: a tensor computed from a `Var` records its inputs for
        // backprop, so a tracked buffer would chain every step's graph into the next and keep
        // all of them alive.
        let theta = theta.detach();
        let mut g = grad.detach();
        if self.weight_decay != 0.0 {
            g = (g + theta.affine(self.weight_decay, 0.0)?)?;
        }
        let d = if self.momentum != 0.0 {
            *buf = (buf.affine(self.momentum, 0.0)? + &g)?;
            if self.nesterov {
                (g + buf.affine(self.momentum, 0.0)?)?
            } else {
                buf.clone()
            }
        } else {
            g
        };
        theta - d.affine(self.lr, 0.0)?
    }
}

/// `b ← μb + (∇ + λθ)`, in place on `b`; inputs `θ`, `∇`.
struct UpdateBuffer(Hyper);

/// `θ ← θ − η·d`, in place on `θ`; inputs `b` (already updated), `∇`.
struct UpdateParam(Hyper);

/// `∇ + λθ`, as the candle path computes it (`θ·λ + 0`, then the sum).
fn decayed<T: num_traits::Float>(grad: T, theta: T, wd: T) -> T {
    if wd == T::zero() {
        grad
    } else {
        grad + (theta * wd + T::zero())
    }
}

fn range(l: &Layout) -> Result<std::ops::Range<usize>> {
    let (a, b) = l.contiguous_offsets().ok_or_else(|| candle_core::Error::RequiresContiguous { op: "sgd" })?;
    Ok(a..b)
}

/// Runs `$body` with `$dst` (mutable) and `$a`, `$b` bound to the `f32` or `f64` data.
macro_rules! with_slices {
    (($dst:ident, $dl:expr), ($a:ident, $al:expr), ($b:ident, $bl:expr), |$t:ident| $body:expr) => {
        match ($dst, $a, $b) {
            (CpuStorage::F32(d), CpuStorage::F32(x), CpuStorage::F32(y)) => {
                type $t = f32;
                let ($dst, $a, $b) = (&mut d[range($dl)?], &x[range($al)?], &y[range($bl)?]);
                $body
            }
            (CpuStorage::F64(d), CpuStorage::F64(x), CpuStorage::F64(y)) => {
                type $t = f64;
                let ($dst, $a, $b) = (&mut d[range($dl)?], &x[range($al)?], &y[range($bl)?]);
                $body
            }
            _ => candle_core::bail!("sgd: parameters, buffers and gradients must all be f32 or all f64"),
        }
    };
}

impl InplaceOp3 for UpdateBuffer {
    fn name(&self) -> &'static str {
        "goldpan-sgd-buffer"
    }

    fn cpu_fwd(
        &self,
        buf: &mut CpuStorage,
        bl: &Layout,
        theta: &CpuStorage,
        tl: &Layout,
        grad: &CpuStorage,
        gl: &Layout,
    ) -> Result<()> {
        with_slices!((buf, bl), (theta, tl), (grad, gl), |T| {
            let (mu, wd) = (self.0.momentum as T, self.0.weight_decay as T);
            parallel::for_each_piece(buf, PIECE, |i, buf| {
                for ((b, &t), &g) in buf.iter_mut().zip(&theta[i * PIECE..]).zip(&grad[i * PIECE..]) {
                    *b = (*b * mu + 0.0) + decayed(g, t, wd);
                }
            });
            Ok(())
        })
    }
}

impl InplaceOp3 for UpdateParam {
    fn name(&self) -> &'static str {
        "goldpan-sgd-param"
    }

    fn cpu_fwd(
        &self,
        theta: &mut CpuStorage,
        tl: &Layout,
        buf: &CpuStorage,
        bl: &Layout,
        grad: &CpuStorage,
        gl: &Layout,
    ) -> Result<()> {
        let h = self.0;
        with_slices!((theta, tl), (buf, bl), (grad, gl), |T| {
            let (mu, wd, lr) = (h.momentum as T, h.weight_decay as T, h.lr as T);
            parallel::for_each_piece(theta, PIECE, |i, theta| {
                for ((t, &b), &g) in theta.iter_mut().zip(&buf[i * PIECE..]).zip(&grad[i * PIECE..]) {
                    let d = if h.momentum == 0.0 {
                        decayed(g, *t, wd)
                    } else if h.nesterov {
                        decayed(g, *t, wd) + (b * mu + 0.0)
                    } else {
                        b
                    };
                    *t -= d * lr + 0.0;
                }
            });
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    /// The in-place CPU update and the candle-op one agree bit for bit, step after step.
    #[test]
    fn in_place_update_equals_the_composed_one() {
        let dev = Device::Cpu;
        let values = |k: u32| -> Vec<f32> {
            (0..257u32).map(|i| ((i * 7919 + k * 104729) % 1000) as f32 / 300.0 - 1.5).collect()
        };
        for (momentum, weight_decay, nesterov) in
            [(0.9, 5e-4, false), (0.9, 1e-3, true), (0.0, 5e-4, false), (0.5, 0.0, true)]
        {
            let h = Hyper { lr: 0.03, momentum, weight_decay, nesterov };
            let theta_a = Tensor::from_vec(values(0), 257, &dev).unwrap();
            let mut theta_b = theta_a.copy().unwrap();
            let buf_a = Tensor::zeros(257, candle_core::DType::F32, &dev).unwrap();
            let mut buf_b = buf_a.copy().unwrap();
            for step in 1..=4 {
                let grad = Tensor::from_vec(values(step), 257, &dev).unwrap();
                h.update_in_place(&theta_a, &buf_a, &grad).unwrap();
                theta_b = h.updated(&theta_b, &mut buf_b, &grad).unwrap();
                let bits = |t: &Tensor| t.to_vec1::<f32>().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&theta_a), bits(&theta_b), "θ, step {step}, {momentum} {weight_decay} {nesterov}");
                if momentum != 0.0 {
                    assert_eq!(bits(&buf_a), bits(&buf_b), "buffer, step {step}");
                }
            }
        }
    }
}
