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
use candle_core::{Result, Tensor};

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

/// `relu(max_pool2d(conv2d(x, w, b), k))` in one op (stride-1, unpadded convolution): equal
/// to the three layers, without the full-size convolution output in the autograd graph.
pub fn conv2d_max_pool_relu(x: &Tensor, w: &Tensor, b: &Tensor, k: usize) -> Result<Tensor> {
    ops::conv2d_max_pool_relu(x, w, b, ops::Conv2dSpec::default(), k)
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

pub use crate::ops::{log_softmax, nll};

/// Mean cross-entropy of integer `labels` against raw `logits`, fused (equal to
/// `nll(log_softmax(logits), labels)`).
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    ops::cross_entropy(logits, labels)
}

/// A seed for layer `layer` of a step whose stochastic layers got `seed`.
pub fn layer_seed(seed: u64, layer: u64) -> u64 {
    super::mix_seed(seed, layer)
}

/// Inverted-dropout keep mask: each entry 1/(1−p) with probability 1−p, else 0.
pub(crate) fn keep_mask(seed: u64, n: usize, p: f64) -> Result<Vec<f64>> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let scale = 1.0 / (1.0 - p);
    Ok((0..n).map(|_| if rng.random::<f64>() < p { 0.0 } else { scale }).collect())
}

/// Dropout of whole channels of `x: N×C×…` with probability `p` (PyTorch's `Dropout2d`),
/// drawn from `seed`; the identity in evaluation (`seed = None`) or when `p = 0`.
pub fn dropout2d(x: &Tensor, p: f64, seed: Option<u64>) -> Result<Tensor> {
    let Some(seed) = seed.filter(|_| p > 0.0) else { return Ok(x.clone()) };
    let (n, c) = (x.dim(0)?, x.dim(1)?);
    let mut shape = vec![n, c];
    shape.resize(x.rank(), 1);
    let mask = Tensor::from_vec(keep_mask(seed, n * c, p)?, shape, x.device())?.to_dtype(x.dtype())?;
    x.broadcast_mul(&mask)
}

/// Element-wise dropout with probability `p`, drawn from `seed`; the identity when `None`.
pub fn dropout(x: &Tensor, p: f64, seed: Option<u64>) -> Result<Tensor> {
    let Some(seed) = seed.filter(|_| p > 0.0) else { return Ok(x.clone()) };
    let mask = Tensor::from_vec(keep_mask(seed, x.elem_count(), p)?, x.shape(), x.device())?.to_dtype(x.dtype())?;
    x.mul(&mask)
}

/// Which statistics a batch norm normalises with, and how it updates its running ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Norm {
    /// The batch's; running statistics move by the layer's momentum (training).
    Batch,
    /// The batch's; running statistics become the average over this and the `batches_seen`
    /// batches before it (momentum `1/(batches_seen + 1)`), so that one pass over a dataset
    /// re-estimates them exactly as their mean over batches (AdaBN).
    Cumulative { batches_seen: usize },
    /// The running statistics, unchanged (evaluation).
    Running,
}

/// Batch normalisation over the channel dimension (1) of `N×C` or `N×C×H×W` input, with
/// PyTorch's conventions: biased batch variance to normalise, unbiased variance in the running
/// estimate, `running ← (1 − momentum)·running + momentum·batch`.
pub struct BatchNorm {
    pub gamma: Tensor,
    pub beta: Tensor,
    pub running_mean: candle_core::Var,
    pub running_var: candle_core::Var,
    pub momentum: f64,
    pub eps: f64,
}

impl BatchNorm {
    /// Registers `name.weight`, `name.bias` (trained) and `name.running_mean`/`running_var`
    /// (buffers), initialised to 1, 0, 0, 1.
    pub fn new(params: &mut super::Params, name: &str, channels: usize, device: &candle_core::Device) -> Result<Self> {
        let var = |v: f32| candle_core::Var::from_tensor(&Tensor::full(v, channels, device)?);
        Ok(Self {
            gamma: params.add(format!("{name}.weight"), var(1.0)?),
            beta: params.add(format!("{name}.bias"), var(0.0)?),
            running_mean: params.add_buffer(format!("{name}.running_mean"), var(0.0)?),
            running_var: params.add_buffer(format!("{name}.running_var"), var(1.0)?),
            momentum: 0.1,
            eps: 1e-5,
        })
    }

    /// Normalises with batch statistics (and updates the running ones) when `train`, else
    /// with the running statistics.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_then(x, if train { Norm::Batch } else { Norm::Running }, 0.0, None, false)
    }

    /// `[relu](dropout(bn(x)))` as one op: with `seed`, dropout of probability `p` drops whole
    /// channels of `N×C×H×W` input (`Dropout2d`) or single values of `N×C` input (`Dropout`),
    /// with the masks of [`dropout2d`] and [`dropout`].
    pub fn forward_then(&self, x: &Tensor, norm: Norm, p: f64, seed: Option<u64>, relu: bool) -> Result<Tensor> {
        let (spec, momentum) = self.spec((x.dim(0)?, x.dim(1)?), norm, p, seed, relu)?;
        let (y, batch) = ops::batch_norm(x, &self.gamma, &self.beta, &spec)?;
        self.update_running(batch, momentum)?;
        Ok(y)
    }

    /// `[relu](dropout(bn(conv2d(x, w) + b)))` as one op (see [`BatchNorm::forward_then`]):
    /// the convolution's output stays out of the autograd graph.
    #[allow(clippy::too_many_arguments)]
    pub fn conv_forward_then(
        &self,
        x: &Tensor,
        (w, b): (&Tensor, &Tensor),
        conv: ops::Conv2dSpec,
        norm: Norm,
        p: f64,
        seed: Option<u64>,
        relu: bool,
    ) -> Result<Tensor> {
        let (spec, momentum) = self.spec((x.dim(0)?, w.dim(0)?), norm, p, seed, relu)?;
        let (y, batch) = ops::conv2d_batch_norm(x, w, b, &self.gamma, &self.beta, conv, &spec)?;
        self.update_running(batch, momentum)?;
        Ok(y)
    }

    /// The op's spec for an input of `n` images of `c` channels, and the momentum of the
    /// running statistics' update (`None`: they are used, not updated).
    fn spec(
        &self,
        (n, c): (usize, usize),
        norm: Norm,
        p: f64,
        seed: Option<u64>,
        relu: bool,
    ) -> Result<(ops::BatchNormSpec, Option<f64>)> {
        let momentum = match norm {
            Norm::Batch => Some(self.momentum),
            Norm::Cumulative { batches_seen } => Some(1.0 / (batches_seen as f64 + 1.0)),
            Norm::Running => None,
        };
        let statistics = if momentum.is_some() {
            ops::Statistics::Batch
        } else {
            let stat = |v: &candle_core::Var| v.as_tensor().to_dtype(candle_core::DType::F64)?.to_vec1::<f64>();
            ops::Statistics::Fixed { mean: stat(&self.running_mean)?, var: stat(&self.running_var)? }
        };
        let scale = seed.filter(|_| p > 0.0).map(|seed| keep_mask(seed, n * c, p)).transpose()?;
        Ok((ops::BatchNormSpec { statistics, eps: self.eps, scale, relu }, momentum))
    }

    /// `running ← (1 − momentum)·running + momentum·batch`, the variance unbiased.
    fn update_running(&self, batch: Option<ops::BatchStatistics>, momentum: Option<f64>) -> Result<()> {
        let (Some(b), Some(m)) = (batch, momentum) else { return Ok(()) };
        let unbiased = b.count as f64 / (b.count.max(2) - 1) as f64;
        let update = |running: &candle_core::Var, batch: Vec<f64>| -> Result<()> {
            let old = running.as_tensor().to_dtype(candle_core::DType::F64)?.to_vec1::<f64>()?;
            let new: Vec<f64> = old.iter().zip(batch).map(|(r, v)| (1.0 - m) * r + m * v).collect();
            running.set(&Tensor::new(new, running.device())?.to_dtype(running.dtype())?)
        };
        update(&self.running_mean, b.mean)?;
        update(&self.running_var, b.var.iter().map(|v| v * unbiased).collect())
    }
}

/// Linear layer with weight normalisation (PyTorch `weight_norm`, dim 0):
/// `w = g · v / ‖v‖` row by row, then `x · wᵀ + b`.
pub fn weight_norm_linear(x: &Tensor, v: &Tensor, g: &Tensor, b: &Tensor) -> Result<Tensor> {
    let norm = v.sqr()?.sum_keepdim(1)?.sqrt()?;
    let w = v.broadcast_mul(&g.unsqueeze(1)?.broadcast_div(&norm)?)?;
    linear(x, &w, b)
}
