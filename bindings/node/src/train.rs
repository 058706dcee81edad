//! `train` and `resume`: long-running tasks with progress and cancellation.
use crate::cancel::CancelToken;
use crate::error::opt;
use crate::progress::ProgressFn;
use crate::task::{progress_task, Job, ProgressTask};
use goldpan_core::train::{self, Progress, ResumeOverrides, TrainConfig, TrainResult};
use goldpan_core::Error as CoreError;
use napi::bindgen_prelude::AsyncTask;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

#[napi_derive::napi(object)]
#[derive(Clone)]
pub struct BindingTrainConfig {
    pub model: String,
    pub dataset: String,
    pub data_dir: String,
    pub epochs: u32,
    pub batch_size: u32,
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
    pub seed: u32,
    pub device: String,
    pub out_dir: Option<String>,
    /// Write a checkpoint every this many steps too (end of each epoch always).
    pub checkpoint_every: Option<u32>,
    pub progress_every: Option<u32>,
    pub train_limit: Option<u32>,
    pub test_limit: Option<u32>,
    /// "true", "random" (fixed per sample) or "random-redraw" (every epoch).
    pub labels: Option<String>,
    /// Measurements taken every `diagnosticsEvery` steps, as "diagnostics" progress events: "eq3".
    pub diagnostics: Option<Vec<String>>,
    pub diagnostics_every: Option<u32>,
    /// Size of the diagnostics' fixed probe set (the first training samples).
    pub diagnostics_samples: Option<u32>,
    /// Step size of Eq. 3's quantities; default `lr`.
    pub diagnostics_alpha: Option<f64>,
}

impl From<BindingTrainConfig> for TrainConfig {
    fn from(c: BindingTrainConfig) -> Self {
        let d = TrainConfig::default();
        TrainConfig {
            model: c.model,
            dataset: c.dataset,
            data_dir: c.data_dir.into(),
            epochs: c.epochs as usize,
            batch_size: c.batch_size as usize,
            lr: c.lr,
            momentum: c.momentum,
            weight_decay: c.weight_decay,
            nesterov: c.nesterov,
            seed: c.seed as u64,
            device: c.device,
            out_dir: c.out_dir.map(PathBuf::from),
            checkpoint_every: opt(c.checkpoint_every),
            progress_every: opt(c.progress_every).unwrap_or(d.progress_every),
            train_limit: opt(c.train_limit),
            test_limit: opt(c.test_limit),
            labels: c.labels.unwrap_or(d.labels),
            diagnostics: c.diagnostics.unwrap_or(d.diagnostics),
            diagnostics_every: opt(c.diagnostics_every).unwrap_or(d.diagnostics_every),
            diagnostics_samples: opt(c.diagnostics_samples).unwrap_or(d.diagnostics_samples),
            diagnostics_alpha: c.diagnostics_alpha,
        }
    }
}

#[napi_derive::napi(object)]
pub struct BindingResumeOptions {
    pub checkpoint: String,
    /// Overrides of the stored config.
    pub data_dir: Option<String>,
    pub epochs: Option<u32>,
    pub out_dir: Option<String>,
    pub device: Option<String>,
}

#[napi_derive::napi(object)]
pub struct BindingTrainResult {
    pub epochs: u32,
    pub steps: u32,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
    pub wall_sec: f64,
    pub checkpoint: Option<String>,
    /// SHA-256 of the final weights in parameter order, hex.
    pub weights_hash: String,
    /// How many progress events were sent. They travel on another queue than the result and
    /// may arrive just after it; the SDK waits for this many before it resolves.
    pub progress_events: u32,
}

impl From<TrainResult> for BindingTrainResult {
    fn from(r: TrainResult) -> Self {
        BindingTrainResult {
            epochs: r.epochs as u32,
            steps: r.steps as u32,
            train_loss: r.train_loss,
            train_accuracy: r.train_accuracy,
            test_loss: r.test_loss,
            test_accuracy: r.test_accuracy,
            wall_sec: r.wall_sec,
            checkpoint: r.checkpoint.map(|c| c.display().to_string()),
            weights_hash: r.weights_hash,
            progress_events: 0,
        }
    }
}

pub enum TrainJob {
    Fresh(TrainConfig),
    Resume(PathBuf, ResumeOverrides),
}

impl Job for TrainJob {
    type Output = TrainResult;
    type JsValue = BindingTrainResult;

    fn run(self, report: &mut dyn FnMut(&Progress), cancel: &AtomicBool) -> Result<TrainResult, CoreError> {
        match self {
            TrainJob::Fresh(config) => train::train(config, report, cancel),
            TrainJob::Resume(path, overrides) => train::resume(&path, overrides, report, cancel),
        }
    }

    fn finish(r: TrainResult, progress_events: u32) -> Result<BindingTrainResult, CoreError> {
        Ok(BindingTrainResult { progress_events, ..r.into() })
    }
}

pub type TrainTask = ProgressTask<TrainJob>;

/// Trains a model from scratch; resolves with the final metrics.
#[napi_derive::napi(
    ts_args_type = "config: BindingTrainConfig, onProgress?: ((progress: BindingProgress) => void) | undefined | null, token?: CancelToken | undefined | null",
    ts_return_type = "Promise<BindingTrainResult>"
)]
pub fn train(
    config: BindingTrainConfig,
    on_progress: Option<ProgressFn>,
    token: Option<&CancelToken>,
) -> AsyncTask<TrainTask> {
    progress_task(TrainJob::Fresh(config.into()), on_progress, token)
}

/// Continues the run saved in a checkpoint, to the same weights an uninterrupted run reaches.
#[napi_derive::napi(
    ts_args_type = "options: BindingResumeOptions, onProgress?: ((progress: BindingProgress) => void) | undefined | null, token?: CancelToken | undefined | null",
    ts_return_type = "Promise<BindingTrainResult>"
)]
pub fn resume(
    options: BindingResumeOptions,
    on_progress: Option<ProgressFn>,
    token: Option<&CancelToken>,
) -> AsyncTask<TrainTask> {
    let overrides = ResumeOverrides {
        data_dir: options.data_dir.map(PathBuf::from),
        epochs: opt(options.epochs),
        out_dir: options.out_dir.map(PathBuf::from),
        device: options.device,
    };
    progress_task(TrainJob::Resume(PathBuf::from(options.checkpoint), overrides), on_progress, token)
}
