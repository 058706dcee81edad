//! The loss at the end of a program: a weighted sum of soft-target cross-entropies on the
//! logits, which covers cross-entropy on labels (one-hot targets), label smoothing, and KL
//! divergence with a temperature to a teacher's predictions (PUL's and SHOT's losses).
//!
//! For one term with weight `λ`, temperature `T`, targets `q` (rows summing to 1) and logits
//! `z` of `N` samples, `p = softmax(z/T)`:
//! `L = λ·T²·meanₙ Σ_c q·(log q − log p)` for KL, without the `q·log q` for cross-entropy (a
//! constant: the derivatives are the same), `∂L/∂z = λ·T·(p − q)/N`, and the Hessian in
//! logit space `λ·(diag p − p·pᵀ)/N` per sample.
use crate::error::{Error, Result};

/// One soft-target term; see the module doc.
#[derive(Debug, Clone)]
pub struct LossTerm {
    pub weight: f64,
    pub temperature: f64,
    /// `N×C` target probabilities, row-major.
    pub targets: Vec<f64>,
    /// Adds `Σ q·log q` to the value, making the term a KL divergence.
    pub kl: bool,
}

/// A loss over the logits of one batch.
#[derive(Debug, Clone)]
pub struct Loss {
    pub classes: usize,
    pub terms: Vec<LossTerm>,
}

impl Loss {
    /// Mean cross-entropy of integer `labels`.
    pub fn cross_entropy(labels: &[u32], classes: usize) -> Result<Self> {
        Self::label_smoothed(labels, classes, 0.0)
    }

    /// Cross-entropy against `(1 − ε)·onehot + ε/C` (SHOT's source loss uses ε = 0.1).
    pub fn label_smoothed(labels: &[u32], classes: usize, smoothing: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&smoothing) {
            return Err(Error::config("smoothing", format!("must be in [0, 1], got {smoothing}")));
        }
        let mut targets = vec![smoothing / classes as f64; labels.len() * classes];
        for (i, &l) in labels.iter().enumerate() {
            if l as usize >= classes {
                return Err(Error::config("labels", format!("label {l} at index {i} is not below {classes}")));
            }
            targets[i * classes + l as usize] += 1.0 - smoothing;
        }
        Ok(Self { classes, terms: vec![LossTerm { weight: 1.0, temperature: 1.0, targets, kl: false }] })
    }

    /// Adds `weight · T² · KL(softmax(teacher/T) ‖ softmax(z/T))` for `N×C` teacher logits.
    pub fn plus_kl(mut self, teacher_logits: &[f64], temperature: f64, weight: f64) -> Result<Self> {
        if temperature.is_nan() || temperature <= 0.0 {
            return Err(Error::config("temperature", format!("must be > 0, got {temperature}")));
        }
        let c = self.classes;
        let mut targets = teacher_logits.to_vec();
        for row in targets.chunks_mut(c) {
            softmax_in_place(row, temperature);
        }
        self.terms.push(LossTerm { weight, temperature, targets, kl: true });
        Ok(self)
    }

    /// Samples this loss is defined for.
    pub fn n(&self) -> usize {
        self.terms.first().map_or(0, |t| t.targets.len() / self.classes)
    }

    /// The loss value and `∂L/∂z` for `N×C` logits (f64 throughout).
    pub(crate) fn value_and_grad(&self, logits: &[f64]) -> (f64, Vec<f64>) {
        let (c, n) = (self.classes, self.n());
        let mut grad = vec![0.0; logits.len()];
        let mut value = 0.0;
        for term in &self.terms {
            let t = term.temperature;
            for ((z, q), g) in logits.chunks(c).zip(term.targets.chunks(c)).zip(grad.chunks_mut(c)) {
                let mut p: Vec<f64> = z.to_vec();
                let log_norm = softmax_in_place(&mut p, t);
                for k in 0..c {
                    // log p_k = z_k/T − log Σ exp(z/T)
                    let log_p = z[k] / t - log_norm;
                    let entropy = if term.kl && q[k] > 0.0 { q[k] * q[k].ln() } else { 0.0 };
                    value += term.weight * t * t * (entropy - q[k] * log_p) / n as f64;
                    g[k] += term.weight * t * (p[k] - q[k]) / n as f64;
                }
            }
        }
        (value, grad)
    }

    /// `R{∂L/∂z}`: the logit-space Hessian applied to the logits' tangent `tz`.
    pub(crate) fn hessian_logits(&self, logits: &[f64], tz: &[f64]) -> Vec<f64> {
        let (c, n) = (self.classes, self.n());
        let mut out = vec![0.0; logits.len()];
        for term in &self.terms {
            for ((z, t), o) in logits.chunks(c).zip(tz.chunks(c)).zip(out.chunks_mut(c)) {
                let mut p = z.to_vec();
                softmax_in_place(&mut p, term.temperature);
                let pt: f64 = p.iter().zip(t).map(|(a, b)| a * b).sum();
                for k in 0..c {
                    o[k] += term.weight * p[k] * (t[k] - pt) / n as f64;
                }
            }
        }
        out
    }
}

/// `row ← softmax(row/T)`; returns `log Σ exp(row/T)` (of the input).
fn softmax_in_place(row: &mut [f64], t: f64) -> f64 {
    let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v / t));
    let mut sum = 0.0;
    for v in row.iter_mut() {
        *v = (*v / t - max).exp();
        sum += *v;
    }
    row.iter_mut().for_each(|v| *v /= sum);
    max + sum.ln()
}
