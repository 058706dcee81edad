//! The losses of SHOT-style source-free adaptation, on `N×C` logits (f32 or f64), built from
//! [`crate::ops::log_softmax`] and candle ops so that candle's autograd
//! differentiates them; plus two plain-`f64` helpers for label-free model selection.
//!
//! With `log p = log_softmax(z)` per row, `n` the sample and `c` the class:
//!
//! - label smoothing (SHOT's `CrossEntropyLabelSmooth`): `t = (1 − ε)·onehot(y) + ε/C`,
//!   `L = (1/N) Σₙ Σ_c −t_c · log p_c`; `ε = 0` is plain cross-entropy.
//! - distillation: `p = softmax(teacher/T)` (detached), `q = softmax(student/T)`,
//!   `L = T² · (1/N) Σₙ Σ_c p_c (log p_c − log q_c)`, i.e. PyTorch's
//!   `kl_div(log_softmax(s/T), softmax(t/T), reduction="batchmean") · T²`.
//! - information maximisation (SHOT, with its `ε = 1e-5`): `p̄ = (1/N) Σₙ pₙ`,
//!   `entropy = (1/N) Σₙ Σ_c −p_c log(p_c + ε)`, `diversity = Σ_c −p̄_c log(p̄_c + ε)`,
//!   and SHOT's IM loss is `entropy − diversity`.
//! - model selection: the mutual information `I = H(p̄) − (1/N) Σₙ H(pₙ)` of predicted
//!   probabilities, in nats, with `0 · log 0 = 0` (no labels needed).
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use goldpan_core::sfda::losses::{label_smoothed_cross_entropy, mutual_information};
//! let z = Tensor::zeros((3, 4), DType::F64, &Device::Cpu).unwrap();
//! let y = Tensor::new(&[0u32, 3, 1], &Device::Cpu).unwrap();
//! let l = label_smoothed_cross_entropy(&z, &y, 0.1).unwrap().to_scalar::<f64>().unwrap();
//! assert!((l - 4f64.ln()).abs() < 1e-12); // uniform predictions cost ln C whatever ε
//! let one_hot = [1.0, 0.0, 0.0, 1.0]; // two samples, two classes, confident and balanced
//! assert!((mutual_information(&one_hot, 2) - 2f64.ln()).abs() < 1e-12);
//! ```
use crate::ops;
use candle_core::{bail, DType, Result, Tensor};

/// SHOT's `ε` inside `log(p + ε)` of the information-maximisation terms.
pub const SHOT_EPSILON: f64 = 1e-5;

/// `(N, C)` of non-empty `N×C` logits.
fn batch_dims(name: &str, logits: &Tensor) -> Result<(usize, usize)> {
    let (n, c) = logits.dims2()?;
    if n == 0 || c == 0 {
        bail!("{name}: logits must be a non-empty N×C matrix, got {n}×{c}");
    }
    Ok((n, c))
}

/// Mean cross-entropy against label-smoothed targets `(1 − ε)·onehot(y) + ε/C` (SHOT's
/// `CrossEntropyLabelSmooth`); `logits: N×C`, `labels: N` integers in `0..C`, `ε ∈ [0, 1]`.
/// With `ε = 0` it is [`ops::cross_entropy`].
pub fn label_smoothed_cross_entropy(logits: &Tensor, labels: &Tensor, epsilon: f64) -> Result<Tensor> {
    const NAME: &str = "label_smoothed_cross_entropy";
    let (n, c) = batch_dims(NAME, logits)?;
    if !(0.0..=1.0).contains(&epsilon) {
        bail!("{NAME}: epsilon must be in [0, 1], got {epsilon}");
    }
    let labels = labels.to_dtype(DType::U32)?;
    if labels.dims() != [n] {
        bail!("{NAME}: {n} rows of logits but labels of shape {:?}", labels.dims());
    }
    if let Some((i, l)) = labels.to_vec1::<u32>()?.into_iter().enumerate().find(|&(_, l)| l as usize >= c) {
        bail!("{NAME}: label {l} at index {i} is out of range 0..{c}");
    }
    let log_p = ops::log_softmax(logits)?;
    // Σ_c −t_c log p_c = (1 − ε)·(−log p_y) + ε · (1/C) Σ_c −log p_c.
    let hard = ops::nll(&log_p, &labels)?;
    let uniform = log_p.sum_all()?.affine(-1.0 / (n * c) as f64, 0.0)?;
    hard.affine(1.0 - epsilon, 0.0)? + uniform.affine(epsilon, 0.0)?
}

/// Knowledge-distillation loss `T² · KL(softmax(teacher/T) ‖ softmax(student/T))`, averaged
/// over the `N` rows (PyTorch's `batchmean`); both `N×C` of one dtype, `T > 0`. The teacher is
/// detached: only the student gets a gradient.
pub fn distillation_kl(teacher_logits: &Tensor, student_logits: &Tensor, temperature: f64) -> Result<Tensor> {
    const NAME: &str = "distillation_kl";
    let (n, _) = batch_dims(NAME, student_logits)?;
    if teacher_logits.dims() != student_logits.dims() {
        bail!(
            "{NAME}: teacher logits {:?} and student logits {:?} differ",
            teacher_logits.dims(),
            student_logits.dims()
        );
    }
    if !(temperature > 0.0 && temperature.is_finite()) {
        bail!("{NAME}: temperature must be positive and finite, got {temperature}");
    }
    let inv_t = 1.0 / temperature;
    let log_p = ops::log_softmax(&teacher_logits.detach().affine(inv_t, 0.0)?)?;
    let log_q = ops::log_softmax(&student_logits.affine(inv_t, 0.0)?)?;
    let kl = (log_p.exp()? * (log_p - log_q)?)?.sum_all()?;
    kl.affine(temperature * temperature / n as f64, 0.0)
}

/// SHOT's two information-maximisation terms, scalars; see [`information_maximization`].
#[derive(Debug, Clone)]
pub struct InformationMaximization {
    /// `(1/N) Σₙ Σ_c −p_c log(p_c + ε)`: low when each prediction is confident.
    pub entropy: Tensor,
    /// `Σ_c −p̄_c log(p̄_c + ε)` of the mean prediction `p̄`: high when classes are balanced.
    pub diversity: Tensor,
}

impl InformationMaximization {
    /// SHOT's IM loss, `entropy − diversity` (to be minimised).
    pub fn loss(&self) -> Result<Tensor> {
        &self.entropy - &self.diversity
    }
}

/// The entropy and diversity terms of `p = softmax(logits)` (`N×C`), with `ε ≥ 0` inside the
/// logarithms (SHOT uses [`SHOT_EPSILON`]).
pub fn information_maximization(logits: &Tensor, epsilon: f64) -> Result<InformationMaximization> {
    const NAME: &str = "information_maximization";
    let (n, _) = batch_dims(NAME, logits)?;
    if !(epsilon >= 0.0 && epsilon.is_finite()) {
        bail!("{NAME}: epsilon must be non-negative and finite, got {epsilon}");
    }
    // Σ −p log(p + ε) over every element of `p`.
    let neg_p_log_p = |p: &Tensor| (p * p.affine(1.0, epsilon)?.log()?)?.sum_all()?.neg();
    let p = ops::log_softmax(logits)?.exp()?;
    let entropy = neg_p_log_p(&p)?.affine(1.0 / n as f64, 0.0)?;
    let diversity = neg_p_log_p(&p.mean(0)?)?;
    Ok(InformationMaximization { entropy, diversity })
}

/// `−Σ p ln p` of one distribution, with `0 · ln 0 = 0`.
fn entropy(p: &[f64]) -> f64 {
    -p.iter().filter(|&&v| v > 0.0).map(|&v| v * v.ln()).sum::<f64>()
}

/// Label-free model-selection score: the mutual information `H(p̄) − (1/N) Σₙ H(pₙ)` (nats)
/// between inputs and predictions, for `probs` holding `N` rows of `classes` probabilities.
/// High when predictions are both confident and spread over the classes; `0` for uniform
/// predictions, `ln C` for one-hot predictions with balanced classes. Empty input (or
/// `classes = 0`) gives `0`; a trailing partial row is ignored.
pub fn mutual_information(probs: &[f64], classes: usize) -> f64 {
    if classes == 0 || probs.len() < classes {
        return 0.0;
    }
    let rows = probs.chunks_exact(classes);
    let n = rows.len() as f64;
    let mut mean = vec![0.0; classes];
    let mut mean_entropy = 0.0;
    for row in rows {
        mean.iter_mut().zip(row).for_each(|(m, &p)| *m += p / n);
        mean_entropy += entropy(row) / n;
    }
    entropy(&mean) - mean_entropy
}

/// Row-wise softmax of `classes`-wide rows of `logits`, in f64, shifted by each row's max;
/// a trailing partial row is ignored.
pub fn softmax_rows(logits: &[f32], classes: usize) -> Vec<f64> {
    if classes == 0 {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(logits.len() / classes * classes);
    for row in logits.chunks_exact(classes) {
        let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
        let start = out.len();
        out.extend(row.iter().map(|&v| (v as f64 - max).exp()));
        let total: f64 = out[start..].iter().sum();
        out[start..].iter_mut().for_each(|p| *p /= total);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn entropy_skips_zeros() {
        assert_eq!(entropy(&[1.0, 0.0, 0.0]), 0.0);
        assert!((entropy(&[0.5, 0.5, 0.0]) - 2f64.ln()).abs() < 1e-15);
    }

    #[test]
    fn batch_dims_rejects_empty_and_non_matrices() {
        let empty = Tensor::zeros((0, 3), DType::F64, &Device::Cpu).unwrap();
        let err = batch_dims("f", &empty).unwrap_err().to_string();
        assert!(err.contains("non-empty N×C"), "{err}");
        assert!(batch_dims("f", &Tensor::zeros(3, DType::F64, &Device::Cpu).unwrap()).is_err());
        assert_eq!(batch_dims("f", &Tensor::zeros((2, 3), DType::F64, &Device::Cpu).unwrap()).unwrap(), (2, 3));
    }
}
