//! The one error type of goldpan's core.
//!
//! Every variant carries a stable string [`Error::code`] (`E_DATA_TRUNCATED`, …) that crosses the
//! napi boundary unchanged and that scripts may match on. Codes are added, never renamed.
//!
//! ```
//! use goldpan_core::Error;
//! let e = Error::Config { field: "epochs".into(), reason: "must be ≥ 1".into() };
//! assert_eq!(e.code(), "E_CONFIG");
//! ```
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // === Configuration ===
    #[error("invalid config: {field}: {reason}")]
    Config { field: String, reason: String },

    #[error("unknown model {name:?}; available: {available}")]
    UnknownModel { name: String, available: String },

    // === Data ===
    #[error("{path}: bad magic number 0x{found:08x}, expected 0x{expected:08x} ({what})")]
    DataMagic { path: PathBuf, found: u32, expected: u32, what: &'static str },

    #[error("{path}: {found} dimensions, expected {expected}")]
    DataDims { path: PathBuf, found: usize, expected: usize },

    #[error("{path}: truncated: expected {expected} bytes, file has {found}")]
    DataTruncated { path: PathBuf, expected: usize, found: usize },

    #[error("{path}: {reason}")]
    DataFormat { path: PathBuf, reason: String },

    #[error("{images} images but {labels} labels ({path})")]
    DataCountMismatch { path: PathBuf, images: usize, labels: usize },

    #[error("{path}: label {label} at index {index} is out of range 0..{classes}")]
    DataLabel { path: PathBuf, index: usize, label: u32, classes: usize },

    #[error("dataset file not found: {path} (looked for {tried})")]
    DataNotFound { path: PathBuf, tried: String },

    // === Device ===
    #[error("device {requested:?} unavailable: {reason}")]
    Device { requested: String, reason: String },

    // === Training ===
    #[error("loss became {value} at epoch {epoch}, step {step}; stopped, {}", match .checkpoint {
        Some(p) => format!("last good checkpoint kept (checkpoint: {})", p.display()),
        None => "no checkpoint had been written yet".to_string(),
    })]
    NanLoss { value: f32, epoch: usize, step: usize, checkpoint: Option<PathBuf> },

    /// `at` says where: "at epoch 2, step 310", "during evaluation".
    #[error("cancelled {at}{}", match .checkpoint {
        Some(p) => format!(" (checkpoint: {})", p.display()),
        None => String::new(),
    })]
    Cancelled { at: String, checkpoint: Option<PathBuf> },

    #[error("shape mismatch: {0}")]
    Shape(String),

    #[error("{what} needs {}, over the memory budget of {}; {hint}", size(*.needed), size(*.budget))]
    Memory { what: String, needed: usize, budget: usize, hint: String },

    // === Checkpoints ===
    #[error("checkpoint {path}: {reason}")]
    Checkpoint { path: PathBuf, reason: String },

    // === Environment ===
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The stable machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Config { .. } | Error::UnknownModel { .. } => "E_CONFIG",
            Error::DataMagic { .. } => "E_DATA_MAGIC",
            Error::DataDims { .. } => "E_DATA_DIMS",
            Error::DataTruncated { .. } => "E_DATA_TRUNCATED",
            Error::DataFormat { .. } => "E_DATA_FORMAT",
            Error::DataCountMismatch { .. } => "E_DATA_COUNT_MISMATCH",
            Error::DataLabel { .. } => "E_DATA_LABEL",
            Error::DataNotFound { .. } => "E_DATA_NOT_FOUND",
            Error::Device { .. } => "E_DEVICE",
            Error::NanLoss { .. } => "E_NAN_LOSS",
            Error::Cancelled { .. } => "E_CANCELLED",
            Error::Shape(_) => "E_SHAPE",
            Error::Memory { .. } => "E_MEMORY",
            Error::Checkpoint { .. } => "E_CHECKPOINT",
            Error::Io { .. } => "E_IO",
            Error::Internal(_) => "E_INTERNAL",
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub(crate) fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config { field: field.into(), reason: reason.into() }
    }
}

/// candle errors only arise from our own tensor code, so a shape error is ours to report and
/// anything else is an internal failure.
impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        match e {
            candle_core::Error::ShapeMismatchBinaryOp { .. }
            | candle_core::Error::UnexpectedNumberOfDims { .. }
            | candle_core::Error::UnexpectedShape { .. } => Error::Shape(e.to_string()),
            candle_core::Error::NotCompiledWithCudaSupport => Error::Device {
                requested: "cuda".into(),
                reason: "this build of goldpan has no CUDA support (build with `--features cuda`)".into(),
            },
            other => Error::Internal(other.to_string()),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A byte count for messages: MB from a megabyte up, else kB.
fn size(bytes: usize) -> String {
    if bytes >= 1_000_000 {
        format!("{} MB", bytes / 1_000_000)
    } else {
        format!("{} kB", bytes.div_ceil(1000))
    }
}
