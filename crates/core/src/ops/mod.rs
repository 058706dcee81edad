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
mod conv2d;
mod max_pool2d;

pub use conv2d::{conv2d, conv2d_slow, Conv2dSpec};
pub use max_pool2d::{max_pool2d, max_pool2d_slow};

use candle_core::{CpuStorage, Layout, Result, WithDType};

/// The contiguous data of a CPU tensor argument.
fn slice<'a, T: WithDType>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    let (start, end) = l.contiguous_offsets().ok_or_else(|| candle_core::Error::RequiresContiguous { op: "goldpan op" })?;
    Ok(&s.as_slice::<T>()?[start..end])
}

/// Images per parallel work item: fixed, so the work split never depends on the thread count.
const CHUNK: usize = 8;
