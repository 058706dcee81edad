//! `train` and `resume`: long-running tasks with progress and cancellation.
use crate::cancel::{flag_of, CancelToken};
use crate::error::{guard, opt, to_js};
use goldpan_core::train::{self, Progress, ProgressKind, ResumeOverrides, TrainConfig, TrainResult};
use goldpan_core::Error as CoreError;
use napi::bindgen_prelude::AsyncTask;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Status, Task};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

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
}

impl From<BindingTrainConfig> for TrainConfig {
    fn from(c: BindingTrainConfig) -> Self {
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
            progress_every: opt(c.progress_every).unwrap_or(TrainConfig::default().progress_every),
            train_limit: opt(c.train_limit),
            test_limit: opt(c.test_limit),
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
pub struct BindingProgress {
    /// "step" every `progressEvery` steps, "epoch" at the end of each epoch (with test metrics).
    pub kind: String,
    pub epoch: u32,
    pub epochs: u32,
    pub step: u32,
    pub step_in_epoch: u32,
    pub steps_per_epoch: u32,
    /// Mean training loss / accuracy over the steps since the previous event.
    pub loss: f64,
    pub accuracy: f64,
    pub images_per_sec: f64,
    pub elapsed_sec: f64,
    pub test_loss: Option<f64>,
    pub test_accuracy: Option<f64>,
    pub checkpoint: Option<String>,
}

impl From<&Progress> for BindingProgress {
    fn from(p: &Progress) -> Self {
        BindingProgress {
            kind: match p.kind {
                ProgressKind::Step => "step",
                ProgressKind::Epoch => "epoch",
            }
            .into(),
            epoch: p.epoch as u32,
            epochs: p.epochs as u32,
            step: p.step as u32,
            step_in_epoch: p.step_in_epoch as u32,
            steps_per_epoch: p.steps_per_epoch as u32,
            loss: p.loss,
            accuracy: p.accuracy,
            images_per_sec: p.images_per_sec,
            elapsed_sec: p.elapsed_sec,
            test_loss: p.test_loss,
            test_accuracy: p.test_accuracy,
            checkpoint: p.checkpoint.as_ref().map(|c| c.display().to_string()),
        }
    }
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

/// JS progress callback, called without blocking the training thread.
pub type ProgressFn = ThreadsafeFunction<BindingProgress, (), BindingProgress, Status, false>;

enum Job {
    Fresh(TrainConfig),
    Resume(PathBuf, ResumeOverrides),
}

pub struct TrainTask {
    job: Option<Job>,
    on_progress: Option<Arc<ProgressFn>>,
    cancel: Arc<AtomicBool>,
    sent: Arc<AtomicU32>,
}

impl Task for TrainTask {
    type Output = Result<TrainResult, CoreError>;
    type JsValue = BindingTrainResult;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let job = self.job.take();
        let on_progress = self.on_progress.clone();
        let cancel = self.cancel.clone();
        let sent = self.sent.clone();
        Ok(guard(move || {
            let mut report = |p: &Progress| {
                if let Some(f) = &on_progress {
                    if f.call(p.into(), ThreadsafeFunctionCallMode::NonBlocking) == Status::Ok {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
            };
            match job {
                Some(Job::Fresh(config)) => train::train(config, &mut report, &cancel),
                Some(Job::Resume(path, overrides)) => train::resume(&path, overrides, &mut report, &cancel),
                None => Err(CoreError::Internal("training task ran twice".into())),
            }
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        // Drop the callback now so that it no longer keeps the event loop alive.
        self.on_progress = None;
        let events = self.sent.load(Ordering::Relaxed);
        match output {
            Ok(r) => Ok(BindingTrainResult { progress_events: events, ..r.into() }),
            Err(e) => Err(to_js(&env, e, Some(events))),
        }
    }
}

fn task(job: Job, on_progress: Option<ProgressFn>, token: Option<&CancelToken>) -> AsyncTask<TrainTask> {
    AsyncTask::new(TrainTask {
        job: Some(job),
        on_progress: on_progress.map(Arc::new),
        cancel: flag_of(token),
        sent: Arc::default(),
    })
}

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
    task(Job::Fresh(config.into()), on_progress, token)
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
    task(Job::Resume(PathBuf::from(options.checkpoint), overrides), on_progress, token)
}
