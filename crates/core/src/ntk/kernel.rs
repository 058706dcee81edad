//! The empirical NTK `Θ(x, x') = J(x)·J(x')ᵀ` of a program's logits, formed as a matrix by
//! Jacobian contraction or by the structured method (see the module doc of [`super`]).
use super::{Kernel, Method, NtkMatrix};
use crate::error::{Error, Result};
use crate::ops::{matmul, parallel, Real};
use crate::program::{self, Act, LayerSignal, Op, Program, Weights};

/// Rows of a Gram product per parallel work item.
const ROWS: usize = 64;

/// `out (m×n) += a (m×k) · bᵀ (n×k)`, rows in parallel, accumulated in f64.
pub(super) fn gram_into<T: Real>(out: &mut [f64], a: &[T], b: &[T], (m, n, k): (usize, usize, usize)) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    parallel::for_each_piece(out, ROWS * n, |piece, rows| {
        let lo = piece * ROWS;
        let r = rows.len() / n;
        let mut tmp = vec![T::zero(); r * n];
        matmul(r, n, k, &mut tmp, false, &a[lo * k..(lo + r) * k], k, 1, b, 1, k);
        for (o, &v) in rows.iter_mut().zip(&tmp) {
            *o += candle_core::WithDType::to_f64(v);
        }
    });
}

/// Which parameters enter the kernel, and each one's column offset in a Jacobian row.
pub(super) struct Columns {
    pub offset: Vec<Option<usize>>,
    pub width: usize,
}

impl Columns {
    pub fn new(program: &Program, selected: &[bool]) -> Self {
        let mut width = 0;
        let offset = program
            .param_shapes
            .iter()
            .zip(selected)
            .map(|(s, &on)| {
                on.then(|| {
                    let o = width;
                    width += s.iter().product::<usize>();
                    o
                })
            })
            .collect();
        Self { offset, width }
    }
}

/// Per-sample Jacobian rows `∂f_c(x_n)/∂θ` (row `n·C + c`) over the selected parameters, for
/// the layers `keep` accepts (all of them for Jacobian contraction).
pub(super) fn jacobian<T: Real>(
    program: &Program,
    w: &Weights<T>,
    x: &Act<T>,
    cols: &Columns,
    keep: &dyn Fn(&Op) -> bool,
) -> Result<(Vec<T>, usize)> {
    let n = x.n();
    let mut rows: Option<(Vec<T>, usize)> = None;
    let logits = program::logit_backprop(program, w, x, &mut |c, sig: &LayerSignal<T>| {
        if !keep(sig.op) {
            return Ok(());
        }
        let classes = sig.classes;
        let (j, _) = rows.get_or_insert_with(|| (vec![T::zero(); n * classes * cols.width], classes));
        for s in 0..n {
            for (p, g) in sig.sample_param_grads(program, w, s)? {
                if let Some(off) = cols.offset[p] {
                    let row = (s * classes + c) * cols.width + off;
                    j[row..row + g.len()].copy_from_slice(&g);
                }
            }
        }
        Ok(())
    })?;
    Ok(rows.unwrap_or_else(|| (Vec::new(), logits.dims[1])))
}

/// A dense layer's share of the structured method: its inputs and, per logit, the cotangents
/// of its outputs, for every sample.
struct Dense<T> {
    input: Vec<T>,
    width: usize,
    /// `[c][n·out + k]`.
    grads: Vec<Vec<T>>,
    out: usize,
}

/// The plain linear layers' signals of one set of inputs (the structured method's part).
fn dense_signals<T: Real>(program: &Program, w: &Weights<T>, x: &Act<T>, cols: &Columns) -> Result<Vec<Dense<T>>> {
    let mut layers: Vec<(usize, Dense<T>)> = Vec::new();
    program::logit_backprop(program, w, x, &mut |c, sig: &LayerSignal<T>| {
        let Op::Linear { weight, bias } = sig.op else { return Ok(()) };
        match (cols.offset[*weight], cols.offset[*bias]) {
            (None, None) => return Ok(()),
            (Some(_), Some(_)) => {}
            _ => {
                return Err(Error::config(
                    "layers",
                    "the structured method takes a linear layer's weight and bias together",
                ))
            }
        }
        let pos = match layers.iter().position(|(i, _)| *i == sig.op_index) {
            Some(p) => p,
            None => {
                let width = sig.input_dims[1];
                let out = sig.grad_output.len() / x.n();
                layers.push((sig.op_index, Dense { input: sig.input.to_vec(), width, grads: Vec::new(), out }));
                layers.len() - 1
            }
        };
        let d = &mut layers[pos].1;
        debug_assert_eq!(d.grads.len(), c);
        d.grads.push(sig.grad_output.to_vec());
        Ok(())
    })?;
    Ok(layers.into_iter().map(|(_, d)| d).collect())
}

/// `Θ(x1, x2)` as `kernel` asks, by `method` (not [`Method::Ntvp`]), over the selected
/// parameters.
pub(super) fn compute<T: Real>(
    program: &Program,
    w: &Weights<T>,
    x1: &Act<T>,
    x2: &Act<T>,
    kernel: Kernel,
    method: Method,
    selected: &[bool],
) -> Result<NtkMatrix> {
    let (n1, n2) = (x1.n(), x2.n());
    let structured = method == Method::Structured;
    // Linear layers go through their Gram factors in the structured method; every other
    // parameter through per-sample Jacobians.
    let by_jacobian = |op: &Op| !(structured && matches!(op, Op::Linear { .. }));
    let mut in_jacobian = selected.to_vec();
    for op in program.ops.iter().filter(|op| !by_jacobian(op)) {
        if let Op::Linear { weight, bias } = op {
            (in_jacobian[*weight], in_jacobian[*bias]) = (false, false);
        }
    }
    let cols_all = Columns::new(program, &in_jacobian);
    let dense_cols = Columns::new(program, selected);
    let (j1, classes) = jacobian(program, w, x1, &cols_all, &by_jacobian)?;
    let (j2, _) = jacobian(program, w, x2, &cols_all, &by_jacobian)?;
    let (rows, cols) = match kernel {
        Kernel::Trace => (n1, n2),
        Kernel::Full | Kernel::Blocks => (n1 * classes, n2 * classes),
    };
    let mut out = vec![0.0; rows * cols];
    let width = cols_all.width;
    if !j1.is_empty() && !j2.is_empty() {
        match kernel {
            Kernel::Trace => {
                // Σ_c J1_c·J2_cᵀ: gather each logit's rows, then one Gram per logit.
                for c in 0..classes {
                    let take = |j: &[T], n: usize| -> Vec<T> {
                        (0..n).flat_map(|s| j[(s * classes + c) * width..][..width].iter().copied()).collect()
                    };
                    gram_into(&mut out, &take(&j1, n1), &take(&j2, n2), (n1, n2, width));
                }
            }
            _ => gram_into(&mut out, &j1, &j2, (rows, cols, width)),
        }
    }
    if structured {
        let (d1, d2) = (dense_signals(program, w, x1, &dense_cols)?, dense_signals(program, w, x2, &dense_cols)?);
        for (a, b) in d1.iter().zip(&d2) {
            add_dense(&mut out, a, b, (n1, n2, classes), kernel);
        }
    }
    Ok(NtkMatrix { rows, cols, data: out, kernel, classes, n1, n2 })
}

/// A linear layer's contribution `(x_i·x'_j + 1)·(g_{i,c}·g'_{j,c'})` (the 1 is the bias).
fn add_dense<T: Real>(
    out: &mut [f64],
    a: &Dense<T>,
    b: &Dense<T>,
    (n1, n2, classes): (usize, usize, usize),
    kernel: Kernel,
) {
    let mut kx = vec![0.0; n1 * n2];
    gram_into(&mut kx, &a.input, &b.input, (n1, n2, a.width));
    kx.iter_mut().for_each(|v| *v += 1.0);
    match kernel {
        Kernel::Trace => {
            let mut kg = vec![0.0; n1 * n2];
            for c in 0..classes {
                gram_into(&mut kg, &a.grads[c], &b.grads[c], (n1, n2, a.out));
            }
            out.iter_mut().zip(kx.iter().zip(&kg)).for_each(|(o, (x, g))| *o += x * g);
        }
        Kernel::Full | Kernel::Blocks => {
            // Rows (i, c) of all logits' cotangents, then one Gram.
            let rows = |d: &Dense<T>, n: usize| -> Vec<T> {
                (0..n)
                    .flat_map(|s| (0..classes).flat_map(move |c| d.grads[c][s * d.out..][..d.out].iter().copied()))
                    .collect()
            };
            let (ga, gb) = (rows(a, n1), rows(b, n2));
            let (r, k) = (n1 * classes, n2 * classes);
            let mut kg = vec![0.0; r * k];
            gram_into(&mut kg, &ga, &gb, (r, k, a.out));
            for (idx, o) in out.iter_mut().enumerate() {
                let (row, col) = (idx / k, idx % k);
                *o += kx[(row / classes) * n2 + col / classes] * kg[idx];
            }
        }
    }
}
