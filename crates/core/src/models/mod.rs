//! The model registry: conv nets picked by name, with seeded initialisation.
//!
//! A model owns its parameters as named [`Var`](candle_core::Var)s in a fixed order (the order of checkpoints
//! and of the weights hash). The training loop only sees [`Model`], so adding a network is
//! one file plus one [`REGISTRY`] row.
//!
//! ```
//! use goldpan_core::models;
//! let spec = models::spec("lenet5").unwrap();
//! let model = spec.build(0, &candle_core::Device::Cpu).unwrap();
//! assert_eq!(model.params().count(), 44_426);
//! ```
pub mod layers;
mod lenet5;
mod params;
mod shot;

pub use params::{mix_seed, Initializer, Params};

use crate::error::{Error, Result};
use crate::program::Program;
use candle_core::{Device, Tensor};

/// How a forward pass runs: training mode (dropout, batch statistics) or evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `seed` drives any stochastic layer of this step, so a step is reproducible on its own.
    Train {
        seed: u64,
    },
    /// Batch statistics re-estimated on data, without dropout and without training: batch
    /// norms use each batch's statistics and set their running ones to the cumulative mean
    /// over this pass (`batch` is the 0-based batch index within it). AdaBN.
    Calibrate {
        batch: usize,
    },
    Eval,
}

impl Mode {
    /// The batch-norm behaviour of this mode.
    pub fn norm(self) -> layers::Norm {
        match self {
            Mode::Train { .. } => layers::Norm::Batch,
            Mode::Calibrate { batch } => layers::Norm::Cumulative { batches_seen: batch },
            Mode::Eval => layers::Norm::Running,
        }
    }
}

/// SHOT's three stages for one batch: backbone features (netF), bottleneck features (netB)
/// and logits (netC).
pub struct Stages {
    pub backbone: Tensor,
    pub bottleneck: Tensor,
    pub logits: Tensor,
}

pub trait Model: Send + Sync {
    /// Logits `N×classes` for images `N×C×H×W`.
    fn forward(&self, x: &Tensor, mode: Mode) -> candle_core::Result<Tensor>;
    fn params(&self) -> &Params;

    /// The same network as a [`Program`], for exact derivatives beyond training's gradient
    /// (Hessian– and Jacobian–vector products). In `Mode::Train { seed }` it uses the batch's
    /// statistics and the dropout masks of that seed (without updating running statistics);
    /// `Mode::Calibrate` has none.
    fn program(&self, mode: Mode) -> Result<Program>;

    /// The intermediate stages of SHOT's networks (netF → netB → netC); `None` for models
    /// without that split.
    fn stages(&self, x: &Tensor, mode: Mode) -> Option<candle_core::Result<Stages>> {
        let _ = (x, mode);
        None
    }

    /// Width of the backbone and bottleneck features, for models with [`Model::stages`].
    fn stage_widths(&self) -> Option<(usize, usize)> {
        None
    }
}

/// Parameter-name prefix of the classifier (netC) of SHOT's networks.
pub const CLASSIFIER_PREFIX: &str = "classifier.";

/// One registry row.
pub struct ModelSpec {
    pub name: &'static str,
    pub description: &'static str,
    /// `(channels, height, width)` of the input.
    pub input: (usize, usize, usize),
    pub classes: usize,
    build: fn(&mut Initializer, &Device) -> candle_core::Result<Box<dyn Model>>,
}

impl ModelSpec {
    /// A fresh model whose initial weights depend only on `seed`.
    pub fn build(&self, seed: u64, device: &Device) -> Result<Box<dyn Model>> {
        let mut init = Initializer::new(seed);
        Ok((self.build)(&mut init, device)?)
    }

    /// Number of trained scalar parameters (buffers such as running statistics excluded).
    pub fn param_count(&self) -> Result<usize> {
        Ok(self.build(0, &Device::Cpu)?.params().count())
    }
}

pub const REGISTRY: &[ModelSpec] = &[
    ModelSpec {
        name: "lenet5",
        description: "LeNet5: conv 1→6 5×5, pool, ReLU, conv 6→16 5×5, pool, ReLU, FC 256→120→84→10",
        input: (1, 28, 28),
        classes: 10,
        build: lenet5::build,
    },
    ModelSpec {
        name: "lenet-base",
        description: "SHOT's LeNetBase (conv 1→20, conv 20→50, Dropout2d → 800) + bottleneck 256 with BN + weight-norm classifier",
        input: (1, 28, 28),
        classes: 10,
        build: shot::lenet_base,
    },
    ModelSpec {
        name: "dtn",
        description: "SHOT's DTNBase (3 conv k5 s2 3→64→128→256, BN, Dropout2d → 4096) + bottleneck 256 with BN + weight-norm classifier",
        input: (3, 32, 32),
        classes: 10,
        build: shot::dtn,
    },
];

/// Looks a model up by name.
pub fn spec(name: &str) -> Result<&'static ModelSpec> {
    REGISTRY.iter().find(|s| s.name == name).ok_or_else(|| Error::UnknownModel {
        name: name.to_string(),
        available: REGISTRY.iter().map(|s| s.name).collect::<Vec<_>>().join(", "),
    })
}
