//! goldpan's numeric core: datasets, conv nets on candle, seeded training with checkpoints.
//!
//! Everything numeric lives here; `bindings/node` only translates.
pub mod data;
mod error;
pub mod models;
pub mod ops;
pub mod train;
pub mod checkpoint;
pub mod device;
pub mod bench;

pub use error::{Error, Result};
