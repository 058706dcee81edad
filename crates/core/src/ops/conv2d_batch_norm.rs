//! A convolution followed by batch norm (with its fused dropout scale and ReLU), as one op:
//! `relu(s ⊙ bn(conv2d(x, w) + b))`, the block SHOT's DTN repeats three times.
//!
//! The convolution's output never becomes a graph tensor (it is kept here for the backward
//! pass), which saves the full-size gradient candle would otherwise allocate, zero-fill and add
//! into for it. candle's custom ops take three tensors, so `b`, `γ` and `β` travel as one
//! concatenated vector.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use goldpan_core::ops::{batch_norm, conv2d, conv2d_batch_norm, BatchNormSpec, Conv2dSpec, Statistics};
//! let dev = &Device::Cpu;
//! let x = Tensor::randn(0f64, 1.0, (2, 3, 8, 8), dev).unwrap();
//! let w = Tensor::randn(0f64, 1.0, (4, 3, 3, 3), dev).unwrap();
//! let b = Tensor::randn(0f64, 1.0, 4, dev).unwrap();
//! let (g, beta) = (Tensor::ones(4, x.dtype(), dev).unwrap(), Tensor::zeros(4, x.dtype(), dev).unwrap());
//! let (conv, bn) = (Conv2dSpec { stride: 2, padding: 1 }, BatchNormSpec { statistics: Statistics::Batch, eps: 1e-5, scale: None, relu: true });
//! let (fused, _) = conv2d_batch_norm(&x, &w, &b, &g, &beta, conv, &bn).unwrap();
//! let (apart, _) = batch_norm(&conv2d(&x, &w, &b, conv).unwrap(), &g, &beta, &bn).unwrap();
//! let d = (fused - apart).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
//! assert!(d < 1e-12);
//! ```
use super::batch_norm::{self, BatchNormOp, BatchStatistics, Dims};
use super::conv2d::{Conv2d, Geometry};
use super::{slice, BatchNormSpec, Conv2dSpec};
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, WithDType};
use std::any::Any;
use std::sync::{Arc, Mutex};

struct ConvBatchNorm {
    conv: Conv2d,
    bn: Arc<BatchNormOp>,
    /// The convolution output (`Vec<f32>` or `Vec<f64>`), for the batch norm's backward pass.
    y: Mutex<Option<Box<dyn Any + Send>>>,
}

impl CustomOp3 for ConvBatchNorm {
    fn name(&self) -> &'static str {
        "goldpan-conv2d-batch-norm"
    }

    /// `(x, w, [b, γ, β]) → relu(s ⊙ bn(conv2d(x, w) + b))`.
    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        ps: &CpuStorage,
        pl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = Geometry::new(xl.dims(), wl.dims(), self.conv.spec)?;
        let o = g.o;
        if pl.shape().elem_count() != 3 * o {
            candle_core::bail!("conv2d_batch_norm: expected [b, γ, β] of 3×{o} values, got {:?}", pl.dims())
        }
        let d = Dims::new(&[g.n, o, g.oh, g.ow])?;
        batch_norm::check_channels(d, &[o], &[o], self.bn.spec())?;
        by_dtype!(xs, |T| {
            let p: &[T] = slice(ps, pl)?;
            let y = self.conv.run::<T>(&g, slice(xs, xl)?, slice(ws, wl)?, &p[..o]);
            let z = self.bn.forward::<T>(d, &y, &p[o..2 * o], &p[2 * o..]);
            *self.y.lock().expect("not poisoned") = Some(Box::new(y));
            Ok((T::to_cpu_storage_owned(z), Shape::from((g.n, o, g.oh, g.ow))))
        })
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _p: &Tensor,
        z: &Tensor,
        dz: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let Some(y) = self.y.lock().expect("not poisoned").take() else {
            candle_core::bail!("conv2d_batch_norm: backward ran twice")
        };
        let y = match y.downcast::<Vec<f32>>() {
            Ok(y) => Tensor::from_vec(*y, z.shape(), z.device())?,
            Err(y) => match y.downcast::<Vec<f64>>() {
                Ok(y) => Tensor::from_vec(*y, z.shape(), z.device())?,
                Err(_) => candle_core::bail!("conv2d_batch_norm: convolution output of another type"),
            },
        };
        // [∂y, ∂γ, ∂β] from the batch norm, then the convolution's (∂x, ∂w, ∂b) from ∂y.
        let all = y.apply_op2_no_bwd(&dz.contiguous()?, &batch_norm::Backward(self.bn.clone()))?;
        let (len, o) = (y.elem_count(), w.dim(0)?);
        let dy = all.narrow(0, 0, len)?.reshape(y.shape())?;
        let (dx, dw, db) = self.conv.backward(x, w, &dy)?;
        let db = db.expect("the convolution always returns ∂b");
        let dp = Tensor::cat(&[&db, &all.narrow(0, len, 2 * o)?], 0)?;
        Ok((dx, dw, Some(dp)))
    }
}

/// `relu(s ⊙ bn(conv2d(x, w) + b))` (ReLU and scale as `spec` says) in one op on CPU, and the
/// batch statistics when `spec.statistics` is batch; elsewhere the two ops.
pub fn conv2d_batch_norm(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    conv: Conv2dSpec,
    spec: &BatchNormSpec,
) -> Result<(Tensor, Option<BatchStatistics>)> {
    if !x.device().is_cpu() {
        return super::batch_norm(&super::conv2d_slow(x, w, b, conv)?, gamma, beta, spec);
    }
    let p = Tensor::cat(&[b.flatten_all()?, gamma.flatten_all()?, beta.flatten_all()?], 0)?;
    let bn = BatchNormOp::new(spec);
    let op = ConvBatchNorm { conv: Conv2d::new(conv), bn: bn.clone(), y: Mutex::new(None) };
    let z = x.contiguous()?.apply_op3(&w.contiguous()?, &p, op)?;
    Ok((z, bn.batch_statistics()))
}
