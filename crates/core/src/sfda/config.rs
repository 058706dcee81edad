//! Configurations of source training and adaptation, validated before any work starts and
//! stored in the checkpoints they produce.
use crate::error::{Error, Result};
use crate::{data, device, models};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// SHOT's source training (`uda_digit.py`, `train_source`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SourceConfig {
    /// `mnist`, `usps` or `svhn`.
    pub source: String,
    /// Default: `lenet-base` for MNIST/USPS (M↔U at 28×28 grey), `dtn` for SVHN (32×32 RGB).
    pub model: Option<String>,
    pub data_dir: PathBuf,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
    /// Label smoothing ε of the cross-entropy.
    pub smoothing: f64,
    /// Share of the source training set held out for model selection (SHOT: 10 %).
    pub val_fraction: f64,
    /// Random crop (padding 4) and rotation (±10°) of every training image; SHOT does this for
    /// USPS as the source. Default: on for `usps`, off otherwise.
    pub augment: Option<bool>,
    pub seed: u64,
    pub device: String,
    /// Where `source.safetensors` (the best model on the held-out split) goes.
    pub out_dir: Option<PathBuf>,
    pub progress_every: usize,
    /// Use only the first N source training samples.
    pub train_limit: Option<usize>,
}

impl Default for SourceConfig {
    fn default() -> Self {
        Self {
            source: "mnist".into(),
            model: None,
            data_dir: PathBuf::from("data"),
            epochs: 30,
            batch_size: 64,
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 1e-3,
            nesterov: true,
            smoothing: 0.1,
            val_fraction: 0.1,
            augment: None,
            seed: 0,
            device: "cpu".into(),
            out_dir: None,
            progress_every: 100,
            train_limit: None,
        }
    }
}

/// SHOT's network for a source domain.
pub fn default_model(source: &str) -> &'static str {
    if source == "svhn" {
        "dtn"
    } else {
        "lenet-base"
    }
}

impl SourceConfig {
    pub fn model(&self) -> &str {
        self.model.as_deref().unwrap_or_else(|| default_model(&self.source))
    }

    pub fn augment(&self) -> bool {
        self.augment.unwrap_or(self.source == "usps")
    }

    pub fn validate(&self) -> Result<()> {
        check_dataset("source", &self.source)?;
        check_shot_model(self.model())?;
        check_sgd(self.epochs, self.batch_size, self.lr, self.momentum, self.weight_decay)?;
        if !(0.0..1.0).contains(&self.smoothing) {
            return Err(Error::config("smoothing", format!("must be in [0, 1), got {}", self.smoothing)));
        }
        if !(self.val_fraction > 0.0 && self.val_fraction < 1.0) {
            return Err(Error::config("valFraction", format!("must be in (0, 1), got {}", self.val_fraction)));
        }
        if self.progress_every == 0 {
            return Err(Error::config("progressEvery", "must be ≥ 1"));
        }
        device::check_name(&self.device)
    }
}

/// An adaptation method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Panning through Unstructured Labels: random-label cross-entropy through a projector
    /// plus temperature-scaled distillation to the frozen source model.
    Pul,
    /// PUL's distillation term alone (a control).
    KlOnly,
    /// SHOT's information maximisation (entropy − diversity), classifier frozen.
    ShotIm,
    /// SHOT-IM plus cross-entropy on self-supervised (cosine-centroid) pseudo-labels.
    Shot,
    /// Batch-norm statistics re-estimated on the target data; no gradient step (a control).
    Adabn,
    /// The source model as it is.
    None,
}

impl Method {
    pub const ALL: [Method; 6] =
        [Method::None, Method::Adabn, Method::KlOnly, Method::Pul, Method::ShotIm, Method::Shot];

    pub fn name(self) -> &'static str {
        match self {
            Method::Pul => "pul",
            Method::KlOnly => "kl-only",
            Method::ShotIm => "shot-im",
            Method::Shot => "shot",
            Method::Adabn => "adabn",
            Method::None => "none",
        }
    }

    /// Whether the method takes gradient steps.
    pub fn trains(self) -> bool {
        !matches!(self, Method::Adabn | Method::None)
    }
}

/// Where PUL's projector reads the features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Attach {
    /// The feature extractor's output (netF: 800 for LeNetBase, 4096 for DTN).
    Backbone,
    /// The bottleneck's output (netB: 256).
    Bottleneck,
}

/// How PUL draws its random labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Labels {
    /// Once per sample, kept for the whole run (as the paper's random-label experiments).
    Fixed,
    /// Anew every epoch.
    Redraw,
}

/// PUL's options; the paper fixes the number of classes (3), the temperature (4) and the
/// epochs (2), and leaves the rest open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PulOptions {
    pub classes: usize,
    pub temperature: f64,
    /// Weight λ of the distillation term (which also carries the paper's `T²`). Default 0.1,
    /// chosen by the label-free ablation in the README.
    pub lambda: f64,
    /// Default: the backbone (netF), chosen by the label-free ablation in the README.
    pub attach: Attach,
    /// Hidden width of the projector `Linear → ReLU → Linear`.
    pub hidden: usize,
    pub labels: Labels,
    pub freeze_classifier: bool,
}

impl Default for PulOptions {
    fn default() -> Self {
        Self {
            classes: 3,
            temperature: 4.0,
            lambda: 0.1,
            attach: Attach::Backbone,
            hidden: 256,
            labels: Labels::Fixed,
            freeze_classifier: true,
        }
    }
}

/// SHOT's target options (`uda_digit.py`, `train_target`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ShotOptions {
    /// Weight of the pseudo-label cross-entropy (`cls_par`).
    pub cls_par: f64,
    /// Weight of the IM loss (`ent_par`).
    pub ent_par: f64,
    /// Include the diversity term (`gent`).
    pub diversity: bool,
    /// ε inside the logarithms of the IM terms.
    pub epsilon: f64,
}

impl Default for ShotOptions {
    fn default() -> Self {
        Self { cls_par: 0.1, ent_par: 1.0, diversity: true, epsilon: 1e-5 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AdaptConfig {
    pub method: Method,
    /// The source model (`source.safetensors` from source training).
    pub from: PathBuf,
    /// `mnist`, `usps` or `svhn`; its training split is used without labels, its test split
    /// only to report accuracy.
    pub target: String,
    pub data_dir: PathBuf,
    /// Default: 2 for PUL and KL-only (the paper), 30 for SHOT and SHOT-IM (SHOT's digits).
    pub epochs: Option<usize>,
    pub batch_size: usize,
    /// Initial learning rate. Default: 0.001 for PUL and KL-only (chosen by the label-free
    /// ablation in the README), 0.01 for SHOT and SHOT-IM (SHOT's digits).
    pub lr: Option<f64>,
    pub momentum: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
    pub pul: PulOptions,
    pub shot: ShotOptions,
    pub seed: u64,
    pub device: String,
    /// Where `adapted.safetensors` goes.
    pub out_dir: Option<PathBuf>,
    pub progress_every: usize,
    /// Use only the first N target training / test samples.
    pub train_limit: Option<usize>,
    pub test_limit: Option<usize>,
}

impl Default for AdaptConfig {
    fn default() -> Self {
        Self {
            method: Method::Pul,
            from: PathBuf::new(),
            target: "usps".into(),
            data_dir: PathBuf::from("data"),
            epochs: None,
            batch_size: 64,
            lr: None,
            momentum: 0.9,
            weight_decay: 1e-3,
            nesterov: true,
            pul: PulOptions::default(),
            shot: ShotOptions::default(),
            seed: 0,
            device: "cpu".into(),
            out_dir: None,
            progress_every: 100,
            train_limit: None,
            test_limit: None,
        }
    }
}

impl AdaptConfig {
    pub fn epochs(&self) -> usize {
        self.epochs.unwrap_or(match self.method {
            Method::Pul | Method::KlOnly => 2,
            Method::Shot | Method::ShotIm => 30,
            Method::Adabn | Method::None => 1,
        })
    }

    pub fn lr(&self) -> f64 {
        self.lr.unwrap_or(match self.method {
            Method::Pul | Method::KlOnly => 0.001,
            _ => 0.01,
        })
    }

    pub fn validate(&self) -> Result<()> {
        check_dataset("target", &self.target)?;
        check_sgd(self.epochs(), self.batch_size, self.lr(), self.momentum, self.weight_decay)?;
        if self.method.trains() && self.batch_size < 2 {
            return Err(Error::config("batchSize", "adaptation trains batch norms on batch statistics: must be ≥ 2"));
        }
        let p = &self.pul;
        if p.classes < 2 {
            return Err(Error::config("pul.classes", format!("must be ≥ 2, got {}", p.classes)));
        }
        if !(p.temperature > 0.0 && p.temperature.is_finite()) {
            return Err(Error::config("pul.temperature", format!("must be > 0, got {}", p.temperature)));
        }
        if !(p.lambda >= 0.0 && p.lambda.is_finite()) {
            return Err(Error::config("pul.lambda", format!("must be ≥ 0, got {}", p.lambda)));
        }
        if p.hidden == 0 {
            return Err(Error::config("pul.hidden", "must be ≥ 1"));
        }
        let s = &self.shot;
        if !(s.cls_par >= 0.0 && s.ent_par >= 0.0 && s.epsilon >= 0.0) {
            return Err(Error::config("shot", "clsPar, entPar and epsilon must be ≥ 0"));
        }
        if self.progress_every == 0 {
            return Err(Error::config("progressEvery", "must be ≥ 1"));
        }
        device::check_name(&self.device)
    }
}

fn check_dataset(field: &str, name: &str) -> Result<()> {
    if !["mnist", "usps", "svhn"].contains(&name) {
        return Err(Error::config(field, format!("{name:?} is not a digit domain; expected mnist, usps or svhn")));
    }
    debug_assert!(data::DATASETS.contains(&name));
    Ok(())
}

fn check_shot_model(name: &str) -> Result<()> {
    let spec = models::spec(name)?;
    if !["lenet-base", "dtn"].contains(&spec.name) {
        return Err(Error::config(
            "model",
            format!("{name} has no bottleneck/classifier split; SFDA uses lenet-base or dtn"),
        ));
    }
    Ok(())
}

fn check_sgd(epochs: usize, batch_size: usize, lr: f64, momentum: f64, weight_decay: f64) -> Result<()> {
    if epochs == 0 {
        return Err(Error::config("epochs", "must be ≥ 1"));
    }
    if batch_size == 0 {
        return Err(Error::config("batchSize", "must be ≥ 1"));
    }
    if !(lr > 0.0 && lr.is_finite()) {
        return Err(Error::config("lr", format!("must be > 0, got {lr}")));
    }
    if !(0.0..1.0).contains(&momentum) {
        return Err(Error::config("momentum", format!("must be in [0, 1), got {momentum}")));
    }
    if !(weight_decay >= 0.0 && weight_decay.is_finite()) {
        return Err(Error::config("weightDecay", format!("must be ≥ 0, got {weight_decay}")));
    }
    Ok(())
}
