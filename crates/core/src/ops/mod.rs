//! Fast CPU kernels for the layers of the registry models, as candle custom ops.
//!
//! candle's CPU convolution gradient goes through a direct `conv_transpose2d` loop and its
//! max-pool backward is wrong (see `max_pool2d`), so the core brings its own: convolution as
//! im2col/col2im around a GEMM from the `gemm` crate, and max-pooling that remembers nothing
//! but recomputes each window's first maximum. Each op has a `*_slow` reference written with
//! candle primitives; tests check one against the other in f64.
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

mod conv2d;
mod cross_entropy;
mod linear;
mod max_pool2d;
mod parallel;

pub use conv2d::{conv2d, conv2d_slow, Conv2dSpec};
pub use cross_entropy::{cross_entropy, cross_entropy_slow, log_softmax, nll};
pub use linear::{linear, linear_slow};
pub use max_pool2d::{max_pool2d, max_pool2d_relu, max_pool2d_slow};

use candle_core::{CpuStorage, Layout, Result, WithDType};
use num_traits::Float;

/// The contiguous data of a CPU tensor argument.
fn slice<'a, T: WithDType>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    let (start, end) = l.contiguous_offsets().ok_or_else(|| candle_core::Error::RequiresContiguous { op: "goldpan op" })?;
    Ok(&s.as_slice::<T>()?[start..end])
}

/// Images per parallel work item: fixed, so the work split never depends on the thread count.
const CHUNK: usize = 8;

/// Row-major matrices `dst (m×n) = [dst +] a (m×k) · b (k×n)`, where `a` and `b` are given by
/// their row and column strides so that transposes cost nothing.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul<T: Float + 'static>(m: usize, n: usize, k: usize, dst: &mut [T], accumulate: bool, a: &[T], a_rs: usize, a_cs: usize, b: &[T], b_rs: usize, b_cs: usize) {
    debug_assert!(dst.len() >= m * n);
    debug_assert!(m == 0 || k == 0 || a.len() > (m - 1) * a_rs + (k - 1) * a_cs);
    debug_assert!(k == 0 || n == 0 || b.len() > (k - 1) * b_rs + (n - 1) * b_cs);
    // SAFETY: the bounds above hold for every index gemm reads or writes.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            T::one(),
            T::one(),
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

