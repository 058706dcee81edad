//! The empirical NTK `Θ(x, x') = J(x)·J(x')ᵀ` of a program's logits, formed as a matrix by
//! Jacobian contraction or by the structured method (see the module doc of [`super`]).
use super::{Kernel, Method, NtkMatrix};
use crate::error::{Error, Result};
use crate::ops::{matmul, parallel, Real, Scratch};
use crate::program::{self, Act, LayerSignal, Op, Program, Weights};
use std::sync::atomic::{AtomicBool, Ordering};

/// Rows of a Gram product per parallel work item: large enough that the right-hand factor
/// (`N·C × columns`, tens of megabytes) is packed for the GEMM a few dozen times, not hundreds.
const ROWS: usize = 256;

/// `out (m×n) += a (m×k) · bᵀ (n×k)`, rows in parallel, accumulated in f64. With `sym`
/// (`a` is `b`) only the entries at or right of each row piece's diagonal are computed; the rest
/// is [`mirror`]ed once the kernel is complete.
pub(super) fn gram_into<T: Real>(out: &mut [f64], a: &[T], b: &[T], (m, n, k): (usize, usize, usize), sym: bool) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    parallel::for_each_piece(out, ROWS * n, |piece, rows| {
        let lo = piece * ROWS;
        let r = rows.len() / n;
        let c0 = if sym { lo } else { 0 };
        // A reused buffer (the GEMM overwrites it): a fresh one per piece would be faulted in
        // and zeroed by the OS each time, most of the time at N·C = 20,000.
        let mut tmp = Scratch::take();
        tmp.resize(r * (n - c0), T::zero());
        matmul(r, n - c0, k, &mut tmp, false, &a[lo * k..(lo + r) * k], k, 1, &b[c0 * k..], 1, k);
        for (orow, trow) in rows.chunks_mut(n).zip(tmp.chunks(n - c0)) {
            for (o, &v) in orow[c0..].iter_mut().zip(trow) {
                *o += v.as_f64();
            }
        }
    });
}

/// Fills the entries a symmetric [`gram_into`] skipped (left of each row piece) from their
/// transposes.
pub(super) fn mirror(out: &mut [f64], n: usize) {
    for i in 0..n {
        for j in 0..(i / ROWS) * ROWS {
            out[i * n + j] = out[j * n + i];
        }
    }
}

/// `E_CANCELLED` once `cancel` is set: checked between layers of each per-logit pass.
pub(super) fn check(cancel: Option<&AtomicBool>) -> Result<()> {
    if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
        return Err(Error::Cancelled { at: "while forming the NTK".into(), checkpoint: None });
    }
    Ok(())
}

/// The parameters that get per-sample Jacobian columns: in the structured method linear layers
/// go through their Gram factors instead; every other parameter through per-sample Jacobians.
pub(super) fn in_jacobian(program: &Program, selected: &[bool], method: Method) -> Vec<bool> {
    let mut on = selected.to_vec();
    if method == Method::Structured {
        for op in &program.ops {
            if let Op::Linear { weight, bias } = op {
                (on[*weight], on[*bias]) = (false, false);
            }
        }
    }
    on
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

/// A dense layer's share of the structured method: its inputs and, per logit, the cotangents
/// of its outputs, for every sample.
struct Dense<T> {
    input: Vec<T>,
    width: usize,
    /// `[c][n·out + k]`.
    grads: Vec<Vec<T>>,
    out: usize,
}

/// What one set of inputs contributes, from one per-logit backprop pass.
struct Signals<T> {
    /// Per-sample Jacobian rows `∂f_c(x_n)/∂θ` (row `n·C + c`) over the `jacobian` columns;
    /// empty when no layer contributes any.
    jacobian: Vec<T>,
    classes: usize,
    /// The plain linear layers (structured method only).
    dense: Vec<Dense<T>>,
}

/// The per-sample Jacobian over `cols` and, when `dense_cols` is given (the structured method),
/// the Gram factors of the linear layers selected there instead of their Jacobian columns.
fn signals<T: Real>(
    program: &Program,
    w: &Weights<T>,
    x: &Act<T>,
    cols: &Columns,
    dense_cols: Option<&Columns>,
    cancel: Option<&AtomicBool>,
) -> Result<Signals<T>> {
    let n = x.n();
    let mut jacobian: Vec<T> = Vec::new();
    let mut dense: Vec<(usize, Dense<T>)> = Vec::new();
    let logits = program::logit_backprop(program, w, x, &mut |c, sig: &LayerSignal<T>| {
        check(cancel)?;
        if let (Some(dense_cols), Op::Linear { weight, bias }) = (dense_cols, sig.op) {
            match (dense_cols.offset[*weight], dense_cols.offset[*bias]) {
                (None, None) => return Ok(()),
                (Some(_), Some(_)) => {}
                _ => {
                    return Err(Error::config(
                        "layers",
                        "the structured method takes a linear layer's weight and bias together",
                    ))
                }
            }
            let pos = match dense.iter().position(|(i, _)| *i == sig.op_index) {
                Some(p) => p,
                None => {
                    let (width, out) = (sig.input_dims[1], sig.grad_output().len() / n);
                    dense.push((sig.op_index, Dense { input: sig.input.to_vec(), width, grads: Vec::new(), out }));
                    dense.len() - 1
                }
            };
            let d = &mut dense[pos].1;
            debug_assert_eq!(d.grads.len(), c);
            d.grads.push(sig.grad_output().to_vec());
            return Ok(());
        }
        add_sample_rows(program, w, sig, c, &mut jacobian, cols.width, |p| cols.offset[p])
    })?;
    Ok(Signals { jacobian, classes: logits.dims[1], dense: dense.into_iter().map(|(_, d)| d).collect() })
}

/// Adds logit `c`'s per-sample gradients `∂f_c(x_s)/∂θ` of `sig`'s layer to per-sample
/// Jacobian rows (row `s·C + c` of `width` columns; made zero on first use): parameter `p` at
/// column `offset(p)`, left out when that is `None`.
pub(super) fn add_sample_rows<T: Real>(
    program: &Program,
    w: &Weights<T>,
    sig: &LayerSignal<T>,
    c: usize,
    jacobian: &mut Vec<T>,
    width: usize,
    offset: impl Fn(usize) -> Option<usize> + Sync,
) -> Result<()> {
    if jacobian.is_empty() {
        *jacobian = vec![T::zero(); sig.input_dims[0] * sig.classes * width];
    }
    // The dense cotangent, if it is made on request, is made here on every core, not by the
    // first per-sample item while the others wait.
    sig.grad_output();
    // Sample s owns rows s·C … s·C + C − 1: one piece each, in parallel.
    let failed = std::sync::Mutex::new(None);
    parallel::for_each_piece(jacobian, sig.classes * width, |s, rows| match sig.sample_param_grads(program, w, s) {
        Ok(grads) => {
            for (p, g) in grads {
                if let Some(off) = offset(p) {
                    rows[c * width + off..][..g.len()].copy_from_slice(&g);
                }
            }
        }
        Err(e) => *failed.lock().expect("not poisoned") = Some(e),
    });
    failed.into_inner().expect("not poisoned").map_or(Ok(()), Err)
}

/// `Θ(x1, x2)` as `kernel` asks, by `method` (not [`Method::Ntvp`]), over the selected
/// parameters.
#[allow(clippy::too_many_arguments)]
pub(super) fn compute<T: Real>(
    program: &Program,
    w: &Weights<T>,
    x1: &Act<T>,
    x2: Option<&Act<T>>,
    kernel: Kernel,
    method: Method,
    selected: &[bool],
    cancel: Option<&AtomicBool>,
) -> Result<NtkMatrix> {
    // Θ(X, X): one set of signals, and only half of each Gram.
    let sym = x2.is_none();
    let x2 = x2.unwrap_or(x1);
    let (n1, n2) = (x1.n(), x2.n());
    let structured = method == Method::Structured;
    let in_jacobian = in_jacobian(program, selected, method);
    let cols_all = Columns::new(program, &in_jacobian);
    let dense_cols = structured.then(|| Columns::new(program, selected));
    let s1 = signals(program, w, x1, &cols_all, dense_cols.as_ref(), cancel)?;
    let s2_own = if sym { None } else { Some(signals(program, w, x2, &cols_all, dense_cols.as_ref(), cancel)?) };
    let s2 = s2_own.as_ref().unwrap_or(&s1);
    let (j1, j2, classes) = (&s1.jacobian, &s2.jacobian, s1.classes);
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
                    let a = take(j1, n1);
                    let b = if sym { None } else { Some(take(j2, n2)) };
                    gram_into(&mut out, &a, b.as_ref().unwrap_or(&a), (n1, n2, width), sym);
                }
            }
            _ => gram_into(&mut out, j1, j2, (rows, cols, width), sym),
        }
    }
    for (a, b) in s1.dense.iter().zip(&s2.dense) {
        add_dense(&mut out, a, b, (n1, n2, classes), kernel, sym);
    }
    if sym {
        mirror(&mut out, rows);
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
    sym: bool,
) {
    let mut kx = vec![0.0; n1 * n2];
    gram_into(&mut kx, &a.input, &b.input, (n1, n2, a.width), false);
    kx.iter_mut().for_each(|v| *v += 1.0);
    match kernel {
        Kernel::Trace => {
            let mut kg = vec![0.0; n1 * n2];
            for c in 0..classes {
                gram_into(&mut kg, &a.grads[c], &b.grads[c], (n1, n2, a.out), sym);
            }
            if sym {
                mirror(&mut kg, n1);
            }
            out.iter_mut().zip(kx.iter().zip(&kg)).for_each(|(o, (x, g))| *o += x * g);
        }
        Kernel::Full | Kernel::Blocks => {
            // Rows (i, c) of all logits' cotangents; their Gram scaled by kx entry by entry.
            let rows = |d: &Dense<T>, n: usize| -> Vec<T> {
                (0..n)
                    .flat_map(|s| (0..classes).flat_map(move |c| d.grads[c][s * d.out..][..d.out].iter().copied()))
                    .collect()
            };
            let ga = rows(a, n1);
            let gb = if sym { None } else { Some(rows(b, n2)) };
            add_scaled_gram(out, &ga, gb.as_ref().unwrap_or(&ga), &kx, (n2 * classes, a.out), classes, n2, sym);
        }
    }
}

/// `out[(i,c),(j,c')] += kx[i][j] · (g_ic·g_jc')` for the full kernel, by row blocks, without
/// a kernel-sized temporary (the kernel is hundreds of megabytes).
#[allow(clippy::too_many_arguments)]
fn add_scaled_gram<T: Real>(
    out: &mut [f64],
    ga: &[T],
    gb: &[T],
    kx: &[f64],
    (n, k): (usize, usize),
    classes: usize,
    n2: usize,
    sym: bool,
) {
    parallel::for_each_piece(out, ROWS * n, |piece, rows| {
        let lo = piece * ROWS;
        let r = rows.len() / n;
        // Symmetric: from the first whole (j, ·) block at or right of the diagonal.
        let c0 = if sym { (lo / classes) * classes } else { 0 };
        // A reused buffer (the GEMM overwrites it): a fresh one per piece would be faulted in
        // and zeroed by the OS each time, most of the time at N·C = 20,000.
        let mut tmp = Scratch::take();
        tmp.resize(r * (n - c0), T::zero());
        matmul(r, n - c0, k, &mut tmp, false, &ga[lo * k..(lo + r) * k], k, 1, &gb[c0 * k..], 1, k);
        for (i, (orow, trow)) in rows.chunks_mut(n).zip(tmp.chunks(n - c0)).enumerate() {
            let kx_row = &kx[((lo + i) / classes) * n2..][..n2];
            for (j, (oc, tc)) in orow[c0..].chunks_mut(classes).zip(trow.chunks(classes)).enumerate() {
                let scale = kx_row[c0 / classes + j];
                for (o, &v) in oc.iter_mut().zip(tc) {
                    *o += scale * v.as_f64();
                }
            }
        }
    });
}
