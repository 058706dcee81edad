//! goldpan's numeric core: datasets, conv nets on candle, seeded training with checkpoints.
//!
//! Everything numeric lives here; `bindings/node` only translates.
pub mod bench;
pub mod checkpoint;
pub mod data;
pub mod device;
mod error;
pub mod hessian;
pub mod linalg;
pub mod models;
pub mod ntk;
pub mod ops;
pub mod program;
pub mod sfda;
pub mod train;

pub use error::{Error, Result};
