//! Fast CPU kernels for the layers of the registry models, as candle custom ops.
//!
//! candle's CPU convolution gradient goes through a direct `conv_transpose2d` loop and its
//! max-pool backward is wrong (see `max_pool2d`), so the core brings its own: convolution as
//! im2col/col2im around faer's GEMM, and max-pooling that remembers nothing
//! but recomputes each window's first maximum. Fused ops (convolution → batch norm → ReLU,
//! convolution → max-pool → ReLU) keep the intermediate out of candle's graph, whose backward
//! pass would zero-fill and add a full-size gradient for it. Each op has a `*_slow` reference
//! written with candle primitives, or equals the composition of such ops; tests check them
//! against each other in f64.
//!
//! Parallelism is over images, in chunks whose size does not depend on the thread count, and
//! reductions over the batch add chunk partials in a fixed order: results are bit-identical
//! whatever the number of threads.
/// Runs a generic kernel body with `$t` bound to the float type of CPU storage `$s`.
macro_rules! by_dtype {
    ($s:expr, |$t:ident| $body:expr) => {
        match $s.dtype() {
            candle_core::DType::F32 => {
                type $t = f32;
                $body
            }
            candle_core::DType::F64 => {
                type $t = f64;
                $body
            }
            other => candle_core::bail!("goldpan ops support f32 and f64, not {other:?}"),
        }
    };
}

mod batch_norm;
mod conv2d;
mod conv2d_batch_norm;
mod cross_entropy;
mod linear;
mod max_pool2d;
pub(crate) mod parallel;

pub use batch_norm::{batch_norm, batch_norm_slow, BatchNormSpec, BatchStatistics, Statistics};
pub use conv2d::{conv2d, conv2d_max_pool_relu, conv2d_slow, Conv2dSpec};
pub use conv2d_batch_norm::conv2d_batch_norm;
pub use cross_entropy::{cross_entropy, cross_entropy_slow, log_softmax, nll};
pub use linear::{linear, linear_slow};
pub use max_pool2d::{max_pool2d, max_pool2d_relu, max_pool2d_slow};

/// The kernels on plain slices, for the second-order engine (`crate::program`).
pub(crate) mod kernels {
    pub(crate) use super::conv2d::ConvKernels;
    pub(crate) use super::linear::kernels as linear;
    pub(crate) use super::max_pool2d::{
        argmax as max_pool_argmax, backward as max_pool_backward, forward as max_pool_forward, gather_at_max,
    };
}

use candle_core::{CpuStorage, Layout, Result, WithDType};
use num_traits::Float;

/// The contiguous data of a CPU tensor argument.
fn slice<'a, T: WithDType>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    let (start, end) =
        l.contiguous_offsets().ok_or_else(|| candle_core::Error::RequiresContiguous { op: "goldpan op" })?;
    Ok(&s.as_slice::<T>()?[start..end])
}

/// Images per parallel work item: fixed, so the work split never depends on the thread count.
const CHUNK: usize = 8;

thread_local! {
    static NO_GRAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with a hint that no gradient of what it computes will be taken (evaluation,
/// prediction), so that kernels keep nothing for a backward pass (the convolution's im2col
/// matrices). Only speed and memory depend on it: a backward pass inside `f` is still exact,
/// it just recomputes what was not kept.
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    /// Restores the previous state on the way out, panics included.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            NO_GRAD.with(|g| g.set(self.0));
        }
    }
    let _restore = Restore(NO_GRAD.with(|g| g.replace(true)));
    f()
}

/// Whether kernels should keep what their backward pass needs (false inside [`no_grad`]).
pub(crate) fn grad_enabled() -> bool {
    !NO_GRAD.with(|g| g.get())
}

/// The float types the kernels run on: `f32` and `f64`.
pub trait Real: Float + WithDType + faer::traits::ComplexField + Pooled {
    /// This value in f64 (exact). (`to_f64` is taken twice over, by candle and num-traits.)
    fn as_f64(self) -> f64 {
        WithDType::to_f64(self)
    }

    /// `v` rounded to this type.
    fn of_f64(v: f64) -> Self {
        WithDType::from_f64(v)
    }
}
impl<T: Float + WithDType + faer::traits::ComplexField + Pooled> Real for T {}

/// `a` in f64.
pub(crate) fn widen<T: Real>(a: &[T]) -> Vec<f64> {
    a.iter().map(|&v| v.as_f64()).collect()
}

/// `a` rounded to `T`.
pub(crate) fn narrow<T: Real>(a: &[f64]) -> Vec<T> {
    a.iter().map(|&v| T::of_f64(v)).collect()
}

/// Types with a per-thread pool of spare buffers (an implementation detail of [`Real`]).
#[doc(hidden)]
pub trait Pooled: Sized + 'static {
    fn pool() -> &'static std::thread::LocalKey<std::cell::RefCell<Vec<Vec<Self>>>>;
}

thread_local! {
    static POOL_F32: std::cell::RefCell<Vec<Vec<f32>>> = const { std::cell::RefCell::new(Vec::new()) };
    static POOL_F64: std::cell::RefCell<Vec<Vec<f64>>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Pooled for f32 {
    fn pool() -> &'static std::thread::LocalKey<std::cell::RefCell<Vec<Vec<Self>>>> {
        &POOL_F32
    }
}

impl Pooled for f64 {
    fn pool() -> &'static std::thread::LocalKey<std::cell::RefCell<Vec<Vec<Self>>>> {
        &POOL_F64
    }
}

/// A scratch buffer (im2col matrix, GEMM output) taken from this thread's pool and given back
/// on drop, so that a training step reuses the previous step's memory instead of allocating and
/// zeroing megabytes per layer. Its contents are whatever its last user left: callers size it
/// with `resize` and overwrite what they read.
pub(crate) struct Scratch<T: Pooled>(Vec<T>);

/// Spare buffers kept per thread and type; a step needs at most three at once.
const POOL_SIZE: usize = 4;

impl<T: Pooled> Scratch<T> {
    pub(crate) fn take() -> Self {
        Self(T::pool().with(|p| p.borrow_mut().pop().unwrap_or_default()))
    }
}

impl<T: Pooled> std::ops::Deref for Scratch<T> {
    type Target = Vec<T>;
    fn deref(&self) -> &Vec<T> {
        &self.0
    }
}

impl<T: Pooled> std::ops::DerefMut for Scratch<T> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        &mut self.0
    }
}

impl<T: Pooled> Drop for Scratch<T> {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.0);
        // `try_with`: during thread teardown the pool may already be gone; then just free.
        let _ = T::pool().try_with(|p| {
            let mut p = p.borrow_mut();
            if p.len() < POOL_SIZE {
                p.push(buf);
            }
        });
    }
}

/// Row-major matrices `dst (m×n) = [dst +] a (m×k) · b (k×n)`, where `a` and `b` are given by
/// their row and column strides so that transposes cost nothing. One thread: callers
/// parallelise over images, in chunks that fix the summation order.
///
/// faer's kernels (AVX-512 where the CPU has it, on stable Rust) ran 1.4–1.5× the `gemm`
/// crate's AVX2 ones on the conv shapes of the registry models.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [T],
    accumulate: bool,
    a: &[T],
    a_rs: usize,
    a_cs: usize,
    b: &[T],
    b_rs: usize,
    b_cs: usize,
) {
    assert!(dst.len() >= m * n);
    assert!(m == 0 || k == 0 || a.len() > (m - 1) * a_rs + (k - 1) * a_cs);
    assert!(k == 0 || n == 0 || b.len() > (k - 1) * b_rs + (n - 1) * b_cs);
    // SAFETY: the bounds above hold for every index read or written; `dst` is borrowed
    // mutably and so does not alias `a` or `b`.
    let (dst, a, b) = unsafe {
        (
            faer::MatMut::from_raw_parts_mut(dst.as_mut_ptr(), m, n, n as isize, 1),
            faer::MatRef::from_raw_parts(a.as_ptr(), m, k, a_rs as isize, a_cs as isize),
            faer::MatRef::from_raw_parts(b.as_ptr(), k, n, b_rs as isize, b_cs as isize),
        )
    };
    let beta = if accumulate { faer::Accum::Add } else { faer::Accum::Replace };
    faer::linalg::matmul::matmul(dst, beta, a, b, T::one(), faer::Par::Seq);
}
