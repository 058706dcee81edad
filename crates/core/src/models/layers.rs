//! The layer functions every registry model is built from, as candle ops whose backward
//! rules the training uses. Kept in one place so that the finite-difference tests in
//! `tests/` check exactly what training differentiates.
//!
//! Shapes: images `N×C×H×W`, conv weights `O×I×K×K`, linear weights `out×in` (PyTorch's layout).
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use goldpan_core::models::layers;
//! let x = Tensor::ones((2, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
//! let w = Tensor::ones((4, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
//! let b = Tensor::zeros(4, candle_core::DType::F32, &Device::Cpu).unwrap();
//! assert_eq!(layers::linear(&x, &w, &b).unwrap().dims(), &[2, 4]);
//! ```
use crate::ops;
use candle_core::{DType, Result, Tensor, D};

/// `x · wᵀ + b` for `x: N×in`, `w: out×in`, `b: out`.
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    ops::linear(x, w, b, false)
}

/// `relu(x · wᵀ + b)`, fused.
pub fn linear_relu(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    ops::linear(x, w, b, true)
}

/// Stride-1, unpadded 2-D convolution plus a per-channel bias (im2col + GEMM on CPU).
pub fn conv2d(x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    ops::conv2d(x, w, b, ops::Conv2dSpec::default())
}

/// Non-overlapping `k×k` max-pooling; the gradient goes to each window's first maximum.
pub fn max_pool2d(x: &Tensor, k: usize) -> Result<Tensor> {
    ops::max_pool2d(x, k)
}

/// `relu(max_pool2d(x, k))`, fused.
pub fn max_pool2d_relu(x: &Tensor, k: usize) -> Result<Tensor> {
    ops::max_pool2d_relu(x, k)
}

pub fn relu(x: &Tensor) -> Result<Tensor> {
    x.relu()
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

/// Mean cross-entropy of integer `labels` against raw `logits`, fused (equal to
/// `nll(log_softmax(logits), labels)`).
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    ops::cross_entropy(logits, labels)
}
