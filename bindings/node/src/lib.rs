//! goldpan's napi boundary: converts JS input to core calls and core output back, nothing more.
//!
//! Long work runs as an `AsyncTask` on libuv's thread pool; progress comes back through a
//! non-blocking threadsafe function; a [`CancelToken`] stops a run within one step; every core
//! error rejects with a JS `Error` whose `code` is the core's stable code, and a panic becomes
//! `E_INTERNAL` instead of crossing the boundary.
mod alloc;
mod bench;
mod cancel;
mod checkpoint;
mod error;
mod evaluate;
mod hessian;
mod json;
mod models;
mod ntk;
mod progress;
mod sfda;
mod task;
mod train;

pub use cancel::CancelToken;

#[napi_derive::napi]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Whether this build was compiled with CUDA support (a GPU may still be missing).
#[napi_derive::napi]
pub fn cuda_available() -> bool {
    goldpan_core::device::cuda_compiled()
}
