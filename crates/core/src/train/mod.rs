//! Seeded, resumable training of registry models with SGD.
//!
//! [`train`] starts a run from a [`TrainConfig`]; [`resume`] continues one from a checkpoint
//! and reaches the same final weights as an uninterrupted run, bit for bit on CPU. Progress
//! goes to a callback; a shared flag cancels within one step, after writing a checkpoint.
pub mod batches;
mod config;
mod diagnostics;
mod evaluate;
mod run;
mod sgd;
mod state;
pub(crate) mod step;

pub use config::{TrainConfig, DIAGNOSTICS};
pub(crate) use evaluate::correct;
pub use evaluate::{evaluate, evaluate_checkpoint, EvalResult};
pub use run::{resume, train, Progress, ProgressKind, ResumeOverrides, TrainResult};
pub use sgd::Sgd;
pub use state::{weights_hash, TrainState};
