//! The empirical neural tangent kernel `Θ(x, x') = ∇θf(x)·∇θf(x')ᵀ` of a registry model's
//! logits (the paper's Eq. 6–7; lecture 4 of the course), its spectra, and `.npy` output.
//!
//! Three methods, equal to rounding:
//! - [`Method::Jacobian`]: per-sample Jacobians (one backward pass per logit for the whole
//!   batch, then per-sample parameter gradients from each layer's input and output cotangent),
//!   contracted by a Gram product;
//! - [`Method::Structured`]: never forms a linear layer's Jacobian — its contribution is
//!   `(aᵢ·aⱼ + 1)(δᵢ·δⱼ)` from its inputs `a` and output cotangents `δ` — and contracts the other
//!   layers' (convolutions', norms') small per-sample gradients;
//! - [`Method::Ntvp`]: matrix-free products `Θ·u = J·(Jᵀu)` (a VJP then a JVP of the program
//!   engine), for Lanczos on kernels too large to form ([`NtkOperator`]). Lanczos runs them on
//!   each batch's linearisation factored layer by layer (the structured method's signals,
//!   kept: see `factors.rs`), a third of the engine's cost per product.
//!
//! Kernels: [`Kernel::Full`] (`NC × NC`, row `n·C + c`), [`Kernel::Blocks`] (the same values
//! seen as `N×C×N×C`: block `(i, j)` is `Θ(xᵢ, xⱼ) ∈ R^{C×C}`), [`Kernel::Trace`] (`N×N`, the
//! sum over logits). All in evaluation mode: with batch statistics samples are not independent.
pub mod analysis;
mod factors;
mod kernel;
mod npy;
mod operator;

pub use analysis::{analyse, NtkConfig, NtkReport};
pub use npy::write_npy;
pub use operator::{NtkOperator, Products};

use crate::error::{Error, Result};
use crate::ops::Real;
use crate::program::{Act, Op, Program, Weights};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kernel {
    Full,
    Blocks,
    Trace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    Jacobian,
    Structured,
    Ntvp,
}

/// A kernel matrix (row-major, f64).
#[derive(Debug, Clone)]
pub struct NtkMatrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f64>,
    pub kernel: Kernel,
    pub classes: usize,
    pub n1: usize,
    pub n2: usize,
}

impl NtkMatrix {
    /// The `.npy` shape of this kernel: `(N, C, N', C)` for blocks, else `(rows, cols)`.
    pub fn shape(&self) -> Vec<usize> {
        match self.kernel {
            Kernel::Blocks => vec![self.n1, self.classes, self.n2, self.classes],
            _ => vec![self.rows, self.cols],
        }
    }

    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.cols + j]
    }
}

/// Bytes a kernel's matrix and its working set take (f64 matrix, f32/f64 Jacobians).
pub fn memory_needed(
    kernel: Kernel,
    n1: usize,
    n2: usize,
    classes: usize,
    jacobian_width: usize,
    elem: usize,
) -> usize {
    kernel_rows(kernel, n1, classes) * kernel_rows(kernel, n2, classes) * 8
        + (n1 + n2) * classes * jacobian_width * elem
}

/// Rows of the `kernel` of `n` samples: one per sample for the trace kernel, else one per logit.
fn kernel_rows(kernel: Kernel, n: usize, classes: usize) -> usize {
    if kernel == Kernel::Trace {
        n
    } else {
        n * classes
    }
}

/// The most samples, at most `n`, whose `needed(samples)` bytes fit in `budget` (0 if none).
fn most_samples_within(n: usize, budget: usize, needed: impl Fn(usize) -> usize) -> usize {
    (1..=n).rev().find(|&m| needed(m) <= budget).unwrap_or(0)
}

/// Working columns per sample and logit while a kernel is formed by `method`: the per-sample
/// Jacobian's (all selected parameters; in the structured method all but the linear layers'),
/// plus, in the structured method, each linear layer's signals (`out` per logit, `in` per
/// sample, spread over the logits). None for NTK-vector products.
pub fn jacobian_width(program: &Program, selected: &[bool], method: Method, classes: usize) -> usize {
    if method == Method::Ntvp {
        return 0;
    }
    let jacobian = kernel::Columns::new(program, &kernel::in_jacobian(program, selected, method)).width;
    let dense: usize = program
        .ops
        .iter()
        .filter_map(|op| match op {
            Op::Linear { weight, .. } if method == Method::Structured && selected[*weight] => {
                let s = &program.param_shapes[*weight];
                Some(s[0] + s[1].div_ceil(classes.max(1)))
            }
            _ => None,
        })
        .sum();
    jacobian + dense
}

/// Refuses work above `budget` bytes with `E_MEMORY`, saying what would fit.
pub fn check_memory(kernel: Kernel, n: usize, classes: usize, width: usize, elem: usize, budget: usize) -> Result<()> {
    let needed = memory_needed(kernel, n, n, classes, width, elem);
    if needed <= budget {
        return Ok(());
    }
    let fits = |k: Kernel| most_samples_within(n, budget, |m| memory_needed(k, m, m, classes, width, elem));
    Err(Error::Memory {
        what: format!("the {kernel:?} kernel of {n} samples × {classes} logits ({width} Jacobian columns)")
            .to_lowercase(),
        needed,
        budget,
        hint: format!(
            "within this budget: the full kernel for up to {} samples, the trace kernel for up to {}; \
             or top eigenvalues matrix-free (method ntvp), whose memory does not grow with N²",
            fits(Kernel::Full),
            fits(Kernel::Trace)
        ),
    })
}

/// Refuses the eigendecomposition of an `n`-sample kernel above `budget` bytes with `E_MEMORY`:
/// it holds the f64 kernel, a working copy in `elem`-byte values and the reduction's panels
/// (about 12 band-widths of columns).
pub fn check_eigen_memory(kernel: Kernel, n: usize, classes: usize, elem: usize, budget: usize) -> Result<()> {
    let needed = |k: Kernel, n: usize| {
        let rows = kernel_rows(k, n, classes);
        rows * rows * (8 + elem) + rows * 12 * crate::linalg::default_band(rows) * elem
    };
    if needed(kernel, n) <= budget {
        return Ok(());
    }
    let fits = |k: Kernel| most_samples_within(n, budget, |m| needed(k, m));
    let rows = kernel_rows(kernel, n, classes);
    Err(Error::Memory {
        what: format!("the eigenvalues of the {rows}×{rows} {kernel:?} kernel (the kernel and a working copy)")
            .to_lowercase(),
        needed: needed(kernel, n),
        budget,
        hint: format!(
            "within this budget: eigenvalues of the full kernel for up to {} samples, of the trace kernel for \
             up to {}; without them (--no-eigen) only forming the kernel counts; or the top eigenvalues \
             matrix-free (method ntvp), whose memory does not grow with N²",
            fits(Kernel::Full),
            fits(Kernel::Trace),
        ),
    })
}

/// The kernel `Θ(x1, x2)` (`x2 = x1` when `None`) over the parameters `selected` (all when
/// `None`), within `budget` bytes; `cancel` stops it with `E_CANCELLED`.
#[allow(clippy::too_many_arguments)]
pub fn ntk<T: Real>(
    program: &Program,
    w: &Weights<T>,
    x1: &Act<T>,
    x2: Option<&Act<T>>,
    kernel: Kernel,
    method: Method,
    selected: Option<&[bool]>,
    budget: usize,
    cancel: Option<&std::sync::atomic::AtomicBool>,
) -> Result<NtkMatrix> {
    let all = vec![true; program.param_shapes.len()];
    let selected = selected.unwrap_or(&all);
    let classes = crate::program::jvp(program, w, &first(x1)?, &zeros(w))?.logits.dims[1];
    let width = jacobian_width(program, selected, method, classes);
    let elem = std::mem::size_of::<T>();
    let n2 = x2.map_or(x1.n(), Act::n);
    let needed = memory_needed(kernel, x1.n(), n2, classes, width, elem);
    if needed > budget {
        check_memory(kernel, x1.n().max(n2), classes, width, elem, budget)?;
    }
    match method {
        Method::Ntvp => operator::kernel_by_products(program, w, x1, x2.unwrap_or(x1), kernel, selected, cancel),
        _ => kernel::compute(program, w, x1, x2, kernel, method, selected, cancel),
    }
}

fn zeros<T: Real>(w: &Weights<T>) -> Weights<T> {
    w.iter().map(|p| vec![T::zero(); p.len()]).collect()
}

/// The first sample of `x`, to learn the number of logits cheaply.
fn first<T: Real>(x: &Act<T>) -> Result<Act<T>> {
    let per = x.data.len() / x.n().max(1);
    let mut dims = x.dims.clone();
    dims[0] = 1;
    Act::new(x.data[..per].to_vec(), dims)
}

/// Spectral summary of a symmetric kernel.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Spectrum {
    /// All eigenvalues, descending.
    pub eigenvalues: Vec<f64>,
    pub trace: f64,
    /// `λ_max / λ_min` (infinite when `λ_min ≤ 0`).
    pub condition: f64,
    #[serde(skip)]
    pub eigenvectors: Option<Vec<Vec<f64>>>,
}

/// All eigenvalues of a symmetric kernel, descending: by the two-stage reduction of
/// [`crate::linalg`], in f64 or (`single`) f32; with eigenvectors, by faer's dense
/// eigendecomposition in f64.
pub fn spectrum(m: &NtkMatrix, vectors: bool, single: bool) -> Result<Spectrum> {
    if m.rows != m.cols {
        return Err(Error::Shape(format!("a {}×{} cross-kernel has no eigendecomposition", m.rows, m.cols)));
    }
    let n = m.rows;
    let mut values: Vec<f64>;
    let mut eigenvectors = None;
    if vectors {
        let a = symmetric_part::<f64>(m);
        // The O(n³) step: on every core (rayon's pool; nothing else runs meanwhile).
        faer::set_global_parallelism(faer::Par::rayon(0));
        let evd = a
            .self_adjoint_eigen(faer::Side::Lower)
            .map_err(|e| Error::Internal(format!("eigendecomposition failed: {e:?}")))?;
        let s = evd.S().column_vector();
        let u = evd.U();
        let mut pairs: Vec<(f64, Vec<f64>)> = (0..n).map(|k| (s[k], (0..n).map(|i| u[(i, k)]).collect())).collect();
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (v, e): (Vec<f64>, Vec<Vec<f64>>) = pairs.into_iter().unzip();
        values = v;
        eigenvectors = Some(e);
    } else if single {
        // Single precision halves the memory traffic and doubles the GEMM rate of the band
        // reduction; eigenvalues carry an absolute error of about 1e-7·λ_max.
        values = crate::linalg::symmetric_eigenvalues(symmetric_part::<f32>(m), crate::linalg::default_band(n))?;
    } else {
        values = crate::linalg::symmetric_eigenvalues(symmetric_part::<f64>(m), crate::linalg::default_band(n))?;
    }
    values.sort_by(|a, b| b.total_cmp(a));
    let trace = (0..n).map(|i| m.get(i, i)).sum();
    let (max, min) = (values.first().copied().unwrap_or(0.0), values.last().copied().unwrap_or(0.0));
    let condition = if min > 0.0 { max / min } else { f64::INFINITY };
    Ok(Spectrum { eigenvalues: values, trace, condition, eigenvectors })
}

/// The lower triangle of a square kernel's symmetric part `(K + Kᵀ)/2` in `T` (what the
/// eigensolvers read; a kernel of one set is mirrored exactly, so this is `K` itself). Built
/// in square tiles, so that reading `Kᵀ` from the row-major kernel stays in cache.
fn symmetric_part<T: crate::ops::Real>(m: &NtkMatrix) -> faer::Mat<T> {
    const TILE: usize = 64;
    let n = m.rows;
    let mut a = faer::Mat::<T>::zeros(n, n);
    for j0 in (0..n).step_by(TILE) {
        for i0 in (j0..n).step_by(TILE) {
            for j in j0..(j0 + TILE).min(n) {
                for i in i0.max(j)..(i0 + TILE).min(n) {
                    a[(i, j)] = T::of_f64(0.5 * (m.data[i * n + j] + m.data[j * n + i]));
                }
            }
        }
    }
    a
}

/// Eq. 7's positive-definiteness check over the `C×C` blocks `Θ(xᵢ, xⱼ)` of a full or blocks
/// kernel: the smallest eigenvalue of each block's symmetric part.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockCheck {
    /// Blocks with a positive smallest eigenvalue, over all blocks.
    pub pd_fraction: f64,
    /// Same, over the diagonal blocks `Θ(xᵢ, xᵢ)` only.
    pub pd_fraction_diagonal: f64,
    pub min_eigenvalue: f64,
    /// `[i][j]`: the smallest eigenvalue of block `(i, j)`.
    #[serde(skip)]
    pub min_eigenvalues: Vec<f64>,
}

pub fn block_check(m: &NtkMatrix) -> Result<BlockCheck> {
    if m.kernel == Kernel::Trace {
        return Err(Error::config("kernel", "the block check needs the full or blocks kernel"));
    }
    let c = m.classes;
    let mut mins = vec![0.0; m.n1 * m.n2];
    crate::ops::parallel::for_each_piece(&mut mins, m.n2, |i, row| {
        for (j, out) in row.iter_mut().enumerate() {
            let b = faer::Mat::<f64>::from_fn(c, c, |a, d| {
                0.5 * (m.get(i * c + a, j * c + d) + m.get(i * c + d, j * c + a))
            });
            *out = b
                .self_adjoint_eigenvalues(faer::Side::Lower)
                .map(|v| v.iter().copied().fold(f64::INFINITY, f64::min))
                .unwrap_or(f64::NAN);
        }
    });
    let frac = |it: &mut dyn Iterator<Item = f64>| {
        let (pos, all) = it.fold((0usize, 0usize), |(p, a), v| (p + (v > 0.0) as usize, a + 1));
        pos as f64 / all.max(1) as f64
    };
    let diag = m.n1.min(m.n2);
    Ok(BlockCheck {
        pd_fraction: frac(&mut mins.iter().copied()),
        pd_fraction_diagonal: frac(&mut (0..diag).map(|i| mins[i * m.n2 + i])),
        min_eigenvalue: mins.iter().copied().fold(f64::INFINITY, f64::min),
        min_eigenvalues: mins,
    })
}
