//! The training configuration, validated once before any work starts.
//!
//! It is stored verbatim (JSON) in every checkpoint, so a checkpoint alone says how to resume.
//!
//! ```
//! let mut c = goldpan_core::train::TrainConfig::default();
//! c.epochs = 0;
//! assert_eq!(c.validate().unwrap_err().code(), "E_CONFIG");
//! ```
use crate::error::{Error, Result};
use crate::{data, device, models};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrainConfig {
    pub model: String,
    pub dataset: String,
    pub data_dir: PathBuf,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
    pub seed: u64,
    pub device: String,
    /// Where checkpoints go; `None` trains without writing anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_dir: Option<PathBuf>,
    /// Also checkpoint every this many steps (the end of each epoch always is).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_every: Option<usize>,
    /// Emit a step event every this many steps.
    pub progress_every: usize,
    /// Use only the first N training / test samples.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_limit: Option<usize>,
    /// Training labels: `true` (the dataset's), `random` (uniform over the classes, drawn once
    /// per sample from the seed) or `random-redraw` (drawn anew every epoch) — the paper's
    /// random-label runs. Test metrics always use the true test labels.
    #[serde(default = "true_labels")]
    pub labels: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_limit: Option<usize>,
    /// Measurements taken along the run every `diagnostics_every` steps and reported as
    /// `diagnostics` progress events: `eq3` (the paper's Eq. 3: curvature along the gradient,
    /// gradient robustness, minibatch noise; see [`crate::hessian::eq3`]), `ntk` (the NTK's top
    /// eigenvalues, trace and Eq. 7 block check), `speed` (function speed and error, Fig. 2),
    /// `swing` (predicted-class histograms, Fig. 1); see `train/diagnostics.rs`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<String>,
    #[serde(default = "diagnostics_every")]
    pub diagnostics_every: usize,
    /// Size of the fixed probe set (the first training samples) the diagnostics use as the
    /// "full batch".
    #[serde(default = "diagnostics_samples")]
    pub diagnostics_samples: usize,
    /// Step size `α` of Eq. 3's quantities; default: `lr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics_alpha: Option<f64>,
}

/// Accepted values of [`TrainConfig::diagnostics`].
pub const DIAGNOSTICS: &[&str] = &["eq3", "ntk", "swing", "speed"];

fn diagnostics_every() -> usize {
    50
}

fn diagnostics_samples() -> usize {
    1000
}

/// Accepted values of [`TrainConfig::labels`].
pub const LABELS: &[&str] = &["true", "random", "random-redraw"];

fn true_labels() -> String {
    "true".into()
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            model: "lenet5".into(),
            dataset: "mnist".into(),
            data_dir: PathBuf::from("data"),
            epochs: 1,
            batch_size: 64,
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 5e-4,
            nesterov: false,
            seed: 0,
            device: "cpu".into(),
            out_dir: None,
            checkpoint_every: None,
            progress_every: 50,
            train_limit: None,
            test_limit: None,
            labels: true_labels(),
            diagnostics: Vec::new(),
            diagnostics_every: diagnostics_every(),
            diagnostics_samples: diagnostics_samples(),
            diagnostics_alpha: None,
        }
    }
}

impl TrainConfig {
    /// Checks every field; the first bad one is reported (the SDK's zod schema reports all).
    pub fn validate(&self) -> Result<()> {
        models::spec(&self.model)?;
        if !data::DATASETS.contains(&self.dataset.as_str()) {
            return Err(Error::config(
                "dataset",
                format!("unknown dataset {:?}; available: {}", self.dataset, data::DATASETS.join(", ")),
            ));
        }
        if !LABELS.contains(&self.labels.as_str()) {
            return Err(Error::config("labels", format!("{:?}: expected one of {}", self.labels, LABELS.join(", "))));
        }
        if let Some(d) = self.diagnostics.iter().find(|d| !DIAGNOSTICS.contains(&d.as_str())) {
            return Err(Error::config("diagnostics", format!("{d:?}: expected any of {}", DIAGNOSTICS.join(", "))));
        }
        if self.diagnostics_alpha.is_some_and(|a| !(a.is_finite() && a > 0.0)) {
            return Err(Error::config("diagnosticsAlpha", "must be a finite number > 0"));
        }
        if !device::DEVICES.contains(&self.device.as_str()) {
            return Err(Error::config("device", format!("expected one of {}", device::DEVICES.join(", "))));
        }
        let positive = [
            ("epochs", self.epochs),
            ("batchSize", self.batch_size),
            ("progressEvery", self.progress_every),
            ("diagnosticsEvery", self.diagnostics_every),
            ("diagnosticsSamples", self.diagnostics_samples),
        ];
        for (field, v) in positive {
            if v == 0 {
                return Err(Error::config(field, "must be ≥ 1"));
            }
        }
        for (field, v) in [
            ("checkpointEvery", self.checkpoint_every),
            ("trainLimit", self.train_limit),
            ("testLimit", self.test_limit),
        ] {
            if v == Some(0) {
                return Err(Error::config(field, "must be ≥ 1 when given"));
            }
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::config("lr", "must be a finite number > 0"));
        }
        if !(self.momentum.is_finite() && (0.0..1.0).contains(&self.momentum)) {
            return Err(Error::config("momentum", "must be in [0, 1)"));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Error::config("weightDecay", "must be a finite number ≥ 0"));
        }
        if self.nesterov && self.momentum == 0.0 {
            return Err(Error::config("nesterov", "needs momentum > 0"));
        }
        Ok(())
    }
}
