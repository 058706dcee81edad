//! Mean cross-entropy of integer labels against logits, `N×C` and `N` (u32) → scalar, in one
//! op: a max-shifted log-sum-exp forward and `∂logits = (softmax − onehot) · ∂loss / N`.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use goldpan_core::ops::{cross_entropy, cross_entropy_slow};
//! let z = Tensor::randn(0f64, 3.0, (5, 4), &Device::Cpu).unwrap();
//! let y = Tensor::new(&[0u32, 3, 1, 1, 2], &Device::Cpu).unwrap();
//! let a = cross_entropy(&z, &y).unwrap().to_scalar::<f64>().unwrap();
//! let b = cross_entropy_slow(&z, &y).unwrap().to_scalar::<f64>().unwrap();
//! assert!((a - b).abs() < 1e-12);
//! ```
use super::slice;
use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor, WithDType, D};
use num_traits::Float;

fn check_labels(labels: &[u32], classes: usize) -> Result<()> {
    match labels.iter().position(|&l| l as usize >= classes) {
        Some(i) => candle_core::bail!("cross_entropy: label {} at index {i} is out of range 0..{classes}", labels[i]),
        None => Ok(()),
    }
}

/// `(row max, log Σ exp(z − max))` of one row.
fn log_sum_exp<T: Float>(row: &[T]) -> (T, T) {
    let max = row.iter().fold(T::neg_infinity(), |m, &v| m.max(v));
    (max, row.iter().fold(T::zero(), |s, &v| s + (v - max).exp()).ln())
}

fn forward<T: Float>(z: &[T], labels: &[u32], c: usize) -> T {
    let total = z.chunks(c).zip(labels).fold(T::zero(), |s, (row, &l)| {
        let (max, lse) = log_sum_exp(row);
        s + (max + lse - row[l as usize])
    });
    total / T::from(labels.len()).unwrap()
}

fn backward<T: Float>(z: &[T], labels: &[u32], c: usize, g: T) -> Vec<T> {
    let scale = g / T::from(labels.len()).unwrap();
    let mut dz = Vec::with_capacity(z.len());
    for (row, &l) in z.chunks(c).zip(labels) {
        let (max, lse) = log_sum_exp(row);
        dz.extend(row.iter().enumerate().map(|(j, &v)| {
            let p = (v - max - lse).exp();
            (if j == l as usize { p - T::one() } else { p }) * scale
        }));
    }
    dz
}

struct CrossEntropy;

impl CustomOp2 for CrossEntropy {
    fn name(&self) -> &'static str {
        "goldpan-cross-entropy"
    }

    fn cpu_fwd(&self, zs: &CpuStorage, zl: &Layout, ls: &CpuStorage, ll: &Layout) -> Result<(CpuStorage, Shape)> {
        let (_, c) = zl.shape().dims2()?;
        let labels = slice::<u32>(ls, ll)?;
        check_labels(labels, c)?;
        by_dtype!(zs, |T| Ok((T::to_cpu_storage_owned(vec![forward::<T>(slice(zs, zl)?, labels, c)]), Shape::from(()))))
    }

    fn bwd(
        &self,
        z: &Tensor,
        labels: &Tensor,
        _loss: &Tensor,
        dloss: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(z.apply_op3_no_bwd(labels, &dloss.contiguous()?, &CrossEntropyBackward)?), None))
    }
}

/// `(logits, labels, ∂loss) → ∂logits`.
struct CrossEntropyBackward;

impl CustomOp3 for CrossEntropyBackward {
    fn name(&self) -> &'static str {
        "goldpan-cross-entropy-backward"
    }

    fn cpu_fwd(
        &self,
        zs: &CpuStorage,
        zl: &Layout,
        ls: &CpuStorage,
        ll: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (_, c) = zl.shape().dims2()?;
        let labels = slice::<u32>(ls, ll)?;
        by_dtype!(zs, |T| {
            let g: T = slice::<T>(gs, gl)?[0];
            Ok((T::to_cpu_storage_owned(backward::<T>(slice(zs, zl)?, labels, c, g)), zl.shape().clone()))
        })
    }
}

/// Mean cross-entropy; the fused kernel on CPU, [`cross_entropy_slow`] elsewhere.
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let labels = labels.to_dtype(DType::U32)?;
    if !logits.device().is_cpu() {
        return cross_entropy_slow(logits, &labels);
    }
    logits.contiguous()?.apply_op2(&labels.contiguous()?, CrossEntropy)
}

/// Row-wise log-softmax over the last dimension, shifted by the row max for stability.
pub fn log_softmax(logits: &Tensor) -> Result<Tensor> {
    let max = logits.max_keepdim(D::Minus1)?.detach();
    let shifted = logits.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    shifted.broadcast_sub(&lse)
}

/// Mean negative log-likelihood of `labels` (`u32`, length N) under `log_probs` (N×C).
pub fn nll(log_probs: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let n = log_probs.dim(0)?;
    let picked = log_probs.gather(&labels.to_dtype(DType::U32)?.unsqueeze(1)?, 1)?;
    picked.sum_all()?.affine(-1.0 / n as f64, 0.0)
}

/// The reference from candle primitives: `nll(log_softmax(logits), labels)`.
pub fn cross_entropy_slow(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    nll(&log_softmax(logits)?, labels)
}
