//! The Hessian of a model's mean loss over a sample set, as a [`SymmetricOperator`]: each
//! product streams the set in batches through the exact per-batch HVP of
//! [`crate::program::hvp`] and averages them weighted by batch size (the loss is a mean).
use super::spectra::SymmetricOperator;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::ops::Real;
use crate::program::{self, Act, Loss, Program, Weights};
use std::sync::atomic::{AtomicBool, Ordering};

/// One batch: inputs and the loss on their logits.
pub struct Batch<T> {
    pub x: Act<T>,
    pub loss: Loss,
}

/// `samples` of `data` (normalised as training normalises them) in batches of `batch_size`,
/// with cross-entropy on `labels` (one per sample of `data`: the true or the random ones).
pub fn batches<T: Real>(data: &Dataset, samples: &[u32], labels: &[u32], batch_size: usize) -> Result<Vec<Batch<T>>> {
    samples
        .chunks(batch_size.max(1))
        .map(|idx| {
            let (x, _) = crate::train::batches::gather(data, idx, &candle_core::Device::Cpu)?;
            let y: Vec<u32> = idx.iter().map(|&i| labels[i as usize]).collect();
            Ok(Batch { x: Act::from_tensor(&x)?, loss: Loss::cross_entropy(&y, data.classes)? })
        })
        .collect()
}

/// The mean loss's gradient and Hessian over a set of batches, at fixed weights.
pub struct DatasetHessian<'a, T> {
    program: &'a Program,
    weights: &'a Weights<T>,
    batches: &'a [Batch<T>],
    cancel: Option<&'a AtomicBool>,
    /// Called after every product with the number done so far.
    on_product: Option<&'a mut dyn FnMut(usize)>,
    products: usize,
}

impl<'a, T: Real> DatasetHessian<'a, T> {
    pub fn new(program: &'a Program, weights: &'a Weights<T>, batches: &'a [Batch<T>]) -> Self {
        Self { program, weights, batches, cancel: None, on_product: None, products: 0 }
    }

    /// Stops the next product with `E_CANCELLED` once `flag` is set.
    pub fn cancel_on(mut self, flag: &'a AtomicBool) -> Self {
        self.cancel = Some(flag);
        self
    }

    pub fn on_product(mut self, f: &'a mut dyn FnMut(usize)) -> Self {
        self.on_product = Some(f);
        self
    }

    /// Hessian–vector products computed so far.
    pub fn products(&self) -> usize {
        self.products
    }

    fn total(&self) -> f64 {
        self.batches.iter().map(|b| b.x.n()).sum::<usize>() as f64
    }

    /// The mean loss and its gradient (flat, f64).
    pub fn gradient(&self) -> Result<(f64, Vec<f64>)> {
        self.gradient_at(self.weights)
    }

    /// The mean loss and gradient at other weights (for the gradient's robustness, Fig. 3).
    pub fn gradient_at(&self, weights: &Weights<T>) -> Result<(f64, Vec<f64>)> {
        let mut grad = vec![0.0; self.program.param_count()];
        let mut loss = 0.0;
        for b in self.batches {
            self.check_cancel()?;
            let g = program::gradient(self.program, weights, &b.x, &b.loss)?;
            let share = b.x.n() as f64 / self.total();
            loss += share * g.loss;
            add_scaled(&mut grad, share, &g.grad);
        }
        Ok((loss, grad))
    }

    fn check_cancel(&self) -> Result<()> {
        if self.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(Error::Cancelled { at: "during the Hessian analysis".into(), checkpoint: None });
        }
        Ok(())
    }
}

/// `acc += share · flatten(w)`, in f64.
fn add_scaled<T: Real>(acc: &mut [f64], share: f64, w: &Weights<T>) {
    for (a, &v) in acc.iter_mut().zip(w.iter().flatten()) {
        *a += share * v.as_f64();
    }
}

impl<T: Real> SymmetricOperator for DatasetHessian<'_, T> {
    fn dim(&self) -> usize {
        self.program.param_count()
    }

    fn apply(&mut self, v: &[f64]) -> Result<Vec<f64>> {
        let v: Vec<T> = crate::ops::narrow(v);
        let v = program::unflatten(self.program, &v)?;
        let mut hv = vec![0.0; v.iter().map(Vec::len).sum()];
        for b in self.batches {
            self.check_cancel()?;
            let out = program::hvp(self.program, self.weights, &b.x, &b.loss, &v)?;
            add_scaled(&mut hv, b.x.n() as f64 / self.total(), &out.hv);
        }
        self.products += 1;
        if let Some(f) = self.on_product.as_mut() {
            f(self.products);
        }
        Ok(hv)
    }
}
