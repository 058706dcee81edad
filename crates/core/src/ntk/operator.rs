//! NTK-vector products `Θ·u = J·(Jᵀ·u)` without forming `J` or `Θ`, two ways:
//! - [`Products::Factored`] (the default): each batch's linearisation factored layer by layer
//!   at the first product ([`super::factors`]; one backward pass per logit), so that a product
//!   is one weight gradient and one single-layer forward pass per layer;
//! - [`Products::Engine`]: one VJP and one JVP of the program engine per batch over its kept
//!   forward pass — the cheaper set-up, for a few products, and an independent check.
//!
//! Memory grows with `N`, never `N²`: LeNet5 keeps about 30 KB per image either way.
use super::factors::Factors;
use super::{Kernel, NtkMatrix};
use crate::error::{Error, Result};
use crate::hessian::spectra::SymmetricOperator;
use crate::ops::Real;
use crate::program::{self, Act, Forward, Program, Weights};
use std::sync::atomic::{AtomicBool, Ordering};

/// How [`NtkOperator`] computes its products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Products {
    Factored,
    Engine,
}

/// What the products run on, made at the first product.
enum Linearisation<T> {
    None,
    Factored(Vec<Factors<T>>),
    Engine(Vec<Forward<T>>),
}

/// `Θ(X, X)` over a set of input batches as a symmetric operator on `R^{NC}` (full kernel,
/// index `n·C + c`) or `R^N` (trace kernel).
pub struct NtkOperator<'a, T> {
    program: &'a Program,
    weights: &'a Weights<T>,
    batches: &'a [Act<T>],
    kernel: Kernel,
    classes: usize,
    /// Parameters outside the kernel get a zero direction.
    selected: Vec<bool>,
    cancel: Option<&'a AtomicBool>,
    products: usize,
    how: Products,
    /// Bytes the factors may take; above it the products go through the engine.
    budget: usize,
    linearisation: Linearisation<T>,
}

impl<'a, T: Real> NtkOperator<'a, T> {
    pub fn new(
        program: &'a Program,
        weights: &'a Weights<T>,
        batches: &'a [Act<T>],
        kernel: Kernel,
        classes: usize,
        selected: Option<&[bool]>,
    ) -> Self {
        let selected = selected.map_or_else(|| vec![true; weights.len()], <[bool]>::to_vec);
        Self {
            program,
            weights,
            batches,
            kernel,
            classes,
            selected,
            cancel: None,
            products: 0,
            how: Products::Factored,
            budget: usize::MAX,
            linearisation: Linearisation::None,
        }
    }

    /// Products through the engine, or factored (the default).
    pub fn products_by(mut self, how: Products) -> Self {
        self.how = how;
        self
    }

    /// At most `bytes` of factors: beyond, the products fall back to the engine.
    pub fn memory_budget(mut self, bytes: usize) -> Self {
        self.budget = bytes;
        self
    }

    /// How the products are computed: as asked, or through the engine once the factors
    /// outgrew the budget. `None` before the first product.
    pub fn computed_by(&self) -> Option<Products> {
        match self.linearisation {
            Linearisation::None => None,
            Linearisation::Factored(_) => Some(Products::Factored),
            Linearisation::Engine(_) => Some(Products::Engine),
        }
    }

    pub fn cancel_on(mut self, flag: &'a AtomicBool) -> Self {
        self.cancel = Some(flag);
        self
    }

    pub fn products(&self) -> usize {
        self.products
    }

    fn samples(&self) -> usize {
        self.batches.iter().map(Act::n).sum()
    }

    /// The factors or kept forward passes, made on first use.
    fn linearise(&mut self) -> Result<()> {
        if !matches!(self.linearisation, Linearisation::None) {
            return Ok(());
        }
        if self.how == Products::Factored {
            let (mut factors, mut bytes) = (Vec::with_capacity(self.batches.len()), 0);
            for b in self.batches {
                let f = Factors::new(self.program, self.weights, b, &self.selected, self.cancel)?;
                bytes += f.bytes();
                if bytes > self.budget {
                    factors.clear();
                    break;
                }
                factors.push(f);
            }
            if factors.len() == self.batches.len() {
                self.linearisation = Linearisation::Factored(factors);
                return Ok(());
            }
        }
        self.linearisation = Linearisation::Engine(
            self.batches.iter().map(|b| Forward::new(self.program, self.weights, b)).collect::<Result<_>>()?,
        );
        Ok(())
    }

    fn check_cancel(&self) -> Result<()> {
        if self.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(Error::Cancelled { at: "during the NTK computation".into(), checkpoint: None });
        }
        Ok(())
    }

    /// `Jᵀ·u` for each `u` over all samples' logits (`n·C + c`), in f64.
    fn vjp_many(&mut self, us: &[&[f64]]) -> Result<Vec<Vec<Vec<f64>>>> {
        let zeros = || -> Vec<Vec<f64>> { self.weights.iter().map(|p| vec![0.0; p.len()]).collect() };
        let mut acc: Vec<Vec<Vec<f64>>> = us.iter().map(|_| zeros()).collect();
        let mut at = 0;
        self.linearise()?;
        let selected = &self.selected;
        let add = |acc: &mut Vec<Vec<f64>>, p: usize, g: &[T]| {
            if selected[p] {
                acc[p].iter_mut().zip(g).for_each(|(a, g)| *a += g.as_f64());
            }
        };
        for (i, b) in self.batches.iter().enumerate() {
            self.check_cancel()?;
            let len = b.n() * self.classes;
            let ub: Vec<Vec<T>> = us.iter().map(|u| u[at..at + len].iter().map(|&v| T::of_f64(v)).collect()).collect();
            at += len;
            match &self.linearisation {
                Linearisation::Factored(f) => {
                    let refs: Vec<&[T]> = ub.iter().map(Vec::as_slice).collect();
                    for (acc, grads) in acc.iter_mut().zip(f[i].vjp_many(&refs)?) {
                        grads.iter().for_each(|(p, g)| add(acc, *p, g));
                    }
                }
                Linearisation::Engine(f) => {
                    for (acc, u) in acc.iter_mut().zip(&ub) {
                        let grads = f[i].vjp(self.program, self.weights, u)?;
                        grads.iter().enumerate().for_each(|(p, g)| add(acc, p, g));
                    }
                }
                Linearisation::None => return Err(not_linearised()),
            }
        }
        Ok(acc)
    }

    /// `J·v` for each `v`, over all samples (`n·C + c`).
    fn jvp_many(&mut self, vs: &[Vec<Vec<f64>>]) -> Result<Vec<Vec<f64>>> {
        let vs: Vec<Weights<T>> =
            vs.iter().map(|v| v.iter().map(|p| p.iter().map(|&a| T::of_f64(a)).collect()).collect()).collect();
        let mut out: Vec<Vec<f64>> = vs.iter().map(|_| Vec::with_capacity(self.samples() * self.classes)).collect();
        self.linearise()?;
        match &self.linearisation {
            Linearisation::Factored(f) => {
                let refs: Vec<&Weights<T>> = vs.iter().collect();
                for f in f {
                    out.iter_mut().zip(f.jvp_many(&refs)).for_each(|(o, y)| o.extend(y));
                }
            }
            Linearisation::Engine(f) => {
                for f in f {
                    for (o, v) in out.iter_mut().zip(&vs) {
                        o.extend(f.jvp(self.program, self.weights, v)?.iter().map(|&a| a.as_f64()));
                    }
                }
            }
            Linearisation::None => return Err(not_linearised()),
        }
        Ok(out)
    }

    fn vjp(&mut self, u: &[f64]) -> Result<Vec<Vec<f64>>> {
        Ok(self.vjp_many(&[u])?.remove(0))
    }

    fn jvp(&mut self, v: Vec<Vec<f64>>) -> Result<Vec<f64>> {
        Ok(self.jvp_many(&[v])?.remove(0))
    }
}

fn not_linearised() -> Error {
    Error::Internal("NTK-vector product before the linearisation was made".into())
}

impl<T: Real> SymmetricOperator for NtkOperator<'_, T> {
    fn dim(&self) -> usize {
        match self.kernel {
            Kernel::Trace => self.samples(),
            _ => self.samples() * self.classes,
        }
    }

    fn apply(&mut self, u: &[f64]) -> Result<Vec<f64>> {
        Ok(self.apply_many(std::slice::from_ref(&u.to_vec()))?.remove(0))
    }

    fn apply_many(&mut self, us: &[Vec<f64>]) -> Result<Vec<Vec<f64>>> {
        self.products += us.len();
        let c = self.classes;
        match self.kernel {
            Kernel::Full | Kernel::Blocks => {
                let refs: Vec<&[f64]> = us.iter().map(Vec::as_slice).collect();
                let z = self.vjp_many(&refs)?;
                self.jvp_many(&z)
            }
            Kernel::Trace => {
                // Σ_c J_c·(J_cᵀ·u): u on logit c of every sample, read back from logit c; the C
                // logits of one u share each pass.
                let n = self.samples();
                let mut outs = Vec::with_capacity(us.len());
                for u in us {
                    let ucs: Vec<Vec<f64>> = (0..c)
                        .map(|k| {
                            let mut uc = vec![0.0; n * c];
                            (0..n).for_each(|i| uc[i * c + k] = u[i]);
                            uc
                        })
                        .collect();
                    let refs: Vec<&[f64]> = ucs.iter().map(Vec::as_slice).collect();
                    let z = self.vjp_many(&refs)?;
                    let jv = self.jvp_many(&z)?;
                    outs.push((0..n).map(|i| (0..c).map(|k| jv[k][i * c + k]).sum()).collect());
                }
                Ok(outs)
            }
        }
    }
}

/// The kernel formed column by column from products (exact, slow: `NC` products; for checks
/// and small sets). Cross-kernels: `Θ(x1, x2)·e = J(x1)·(J(x2)ᵀ·e)`.
pub(super) fn kernel_by_products<T: Real>(
    program: &Program,
    w: &Weights<T>,
    x1: &Act<T>,
    x2: &Act<T>,
    kernel: Kernel,
    selected: &[bool],
    cancel: Option<&AtomicBool>,
) -> Result<NtkMatrix> {
    let classes = program::jvp(program, w, x1, &w.iter().map(|p| vec![T::zero(); p.len()]).collect())?.logits.dims[1];
    let (b1, b2) = (std::slice::from_ref(x1), std::slice::from_ref(x2));
    let mut left =
        NtkOperator::new(program, w, b1, Kernel::Full, classes, Some(selected)).products_by(Products::Engine);
    let mut right =
        NtkOperator::new(program, w, b2, Kernel::Full, classes, Some(selected)).products_by(Products::Engine);
    right.cancel = cancel;
    let (n1, n2) = (x1.n(), x2.n());
    let (rows, cols) = match kernel {
        Kernel::Trace => (n1, n2),
        _ => (n1 * classes, n2 * classes),
    };
    let mut data = vec![0.0; rows * cols];
    for j in 0..n2 {
        for k in 0..classes {
            let mut e = vec![0.0; n2 * classes];
            e[j * classes + k] = 1.0;
            let z = right.vjp(&e)?;
            let col = left.jvp(z)?;
            for i in 0..n1 {
                for c in 0..classes {
                    match kernel {
                        Kernel::Trace if c == k => data[i * cols + j] += col[i * classes + c],
                        Kernel::Trace => {}
                        _ => data[(i * classes + c) * cols + j * classes + k] = col[i * classes + c],
                    }
                }
            }
        }
    }
    Ok(NtkMatrix { rows, cols, data, kernel, classes, n1, n2 })
}
