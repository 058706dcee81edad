//! The training loop shared by fresh and resumed runs.
use super::{batches, evaluate, weights_hash, TrainConfig, TrainState};
use crate::checkpoint::Checkpoint;
use crate::data::{self, Dataset, Split};
use crate::error::{Error, Result};
use crate::models::{self, Mode};
use candle_core::Device;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressKind {
    /// Every `progress_every` steps.
    Step,
    /// At the end of each epoch, with test metrics.
    Epoch,
    /// Training diagnostics (Eq. 3: curvature and gradient robustness) in `diagnostics`.
    Diagnostics,
    /// One step of an analysis (a Hessian–vector product): `step` counts them, `diagnostics`
    /// holds `{"phase": …}`.
    Analysis,
}

#[derive(Debug, Clone)]
pub struct Progress {
    pub kind: ProgressKind,
    /// 1-based epoch in progress (or just finished, for [`ProgressKind::Epoch`]).
    pub epoch: usize,
    pub epochs: usize,
    /// Steps done in the whole run.
    pub step: usize,
    pub step_in_epoch: usize,
    pub steps_per_epoch: usize,
    /// Mean training loss and accuracy over the steps since the previous event of this kind.
    pub loss: f64,
    pub accuracy: f64,
    pub images_per_sec: f64,
    pub elapsed_sec: f64,
    pub test_loss: Option<f64>,
    pub test_accuracy: Option<f64>,
    pub checkpoint: Option<PathBuf>,
    /// The measurements of a `Diagnostics` or `Analysis` event.
    pub diagnostics: Option<serde_json::Value>,
}

impl Progress {
    /// An `Analysis` event: `done` products after `elapsed_sec`, in `phase`.
    pub fn analysis(done: usize, elapsed_sec: f64, phase: &str) -> Self {
        Progress {
            kind: ProgressKind::Analysis,
            epoch: 0,
            epochs: 0,
            step: done,
            step_in_epoch: done,
            steps_per_epoch: 0,
            loss: f64::NAN,
            accuracy: f64::NAN,
            images_per_sec: 0.0,
            elapsed_sec,
            test_loss: None,
            test_accuracy: None,
            checkpoint: None,
            diagnostics: Some(serde_json::json!({ "phase": phase })),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TrainResult {
    pub epochs: usize,
    pub steps: usize,
    /// Over the last epoch.
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
    pub wall_sec: f64,
    pub checkpoint: Option<PathBuf>,
    pub weights_hash: String,
}

/// Config fields a resumed run may change; everything else comes from the checkpoint.
#[derive(Debug, Clone, Default)]
pub struct ResumeOverrides {
    pub data_dir: Option<PathBuf>,
    pub epochs: Option<usize>,
    pub out_dir: Option<PathBuf>,
    pub device: Option<String>,
}

/// Trains from scratch.
pub fn train(config: TrainConfig, on_progress: &mut dyn FnMut(&Progress), cancel: &AtomicBool) -> Result<TrainResult> {
    config.validate()?;
    let device = crate::device::resolve(&config.device)?;
    let state = TrainState::fresh(config, &device)?;
    run(state, &device, on_progress, cancel)
}

/// Continues the run saved in `checkpoint`.
pub fn resume(
    checkpoint: &Path,
    overrides: ResumeOverrides,
    on_progress: &mut dyn FnMut(&Progress),
    cancel: &AtomicBool,
) -> Result<TrainResult> {
    let ckpt = Checkpoint::load(checkpoint)?;
    let mut config = ckpt.config.clone();
    config.data_dir = overrides.data_dir.unwrap_or(config.data_dir);
    config.epochs = overrides.epochs.unwrap_or(config.epochs);
    config.out_dir = overrides.out_dir.or(config.out_dir);
    config.device = overrides.device.unwrap_or(config.device);
    config.validate()?;
    let device = crate::device::resolve(&config.device)?;
    let state = TrainState::from_checkpoint(checkpoint, ckpt, config, &device)?;
    run(state, &device, on_progress, cancel)
}

fn load_split(config: &TrainConfig, split: Split, limit: Option<usize>) -> Result<Dataset> {
    let spec = models::spec(&config.model)?;
    let set = data::load_as(&config.dataset, &config.data_dir, split, spec.input)?;
    let set = match limit {
        Some(n) => set.truncate(n),
        None => set,
    };
    if set.is_empty() {
        return Err(Error::config("dataset", format!("{} {:?} split is empty", config.dataset, split)));
    }
    Ok(set)
}

/// Running sums between two progress events.
#[derive(Default)]
struct Window {
    loss: f64,
    hits: usize,
    seen: usize,
    steps: usize,
    started: Option<Instant>,
}

impl Window {
    fn starting_now() -> Self {
        Window { started: Some(Instant::now()), ..Window::default() }
    }

    fn add(&mut self, loss: f32, hits: usize, n: usize) {
        self.loss += loss as f64;
        self.hits += hits;
        self.seen += n;
        self.steps += 1;
    }

    /// `(mean loss, accuracy, images/s)`; then starts afresh.
    fn take(&mut self) -> (f64, f64, f64) {
        let secs = self.started.map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0);
        let out = (
            self.loss / self.steps.max(1) as f64,
            self.hits as f64 / self.seen.max(1) as f64,
            self.seen as f64 / secs.max(1e-9),
        );
        *self = Window::starting_now();
        out
    }
}

fn run(
    mut state: TrainState,
    device: &Device,
    on_progress: &mut dyn FnMut(&Progress),
    cancel: &AtomicBool,
) -> Result<TrainResult> {
    let start = Instant::now();
    let cfg = state.config.clone();
    let mut train_set = load_split(&cfg, Split::Train, cfg.train_limit)?;
    let test_set = load_split(&cfg, Split::Test, cfg.test_limit)?;
    let n = train_set.len();
    let steps_per_epoch = n.div_ceil(cfg.batch_size);
    let classes = models::spec(&cfg.model)?.classes;
    let eval_batch = cfg.batch_size.max(500);

    let mut last_checkpoint: Option<PathBuf> = None;
    let save = |state: &TrainState, name: &str, last: &mut Option<PathBuf>| -> Result<Option<PathBuf>> {
        let Some(dir) = &cfg.out_dir else { return Ok(None) };
        let ckpt = state.to_checkpoint().map_err(|e| match e {
            Error::NanLoss { value, epoch, step, .. } => {
                Error::NanLoss { value, epoch, step, checkpoint: last.clone() }
            }
            other => other,
        })?;
        let path = dir.join(name);
        ckpt.save(&path)?;
        if name != "last.safetensors" {
            ckpt.save(&dir.join("last.safetensors"))?;
        }
        *last = Some(dir.join("last.safetensors"));
        Ok(Some(path))
    };

    let mut step_window = Window::starting_now();
    let mut epoch_window = Window::starting_now();
    let (mut train_loss, mut train_accuracy) = (f64::NAN, f64::NAN);
    let (mut test_loss, mut test_accuracy) = (f64::NAN, f64::NAN);

    while state.epoch < cfg.epochs {
        match cfg.labels.as_str() {
            "random" => train_set.labels = batches::random_labels(cfg.seed, 0, n, train_set.classes),
            "random-redraw" => {
                train_set.labels = batches::random_labels(cfg.seed, 1 + state.epoch as u64, n, train_set.classes)
            }
            _ => {}
        }
        let order = batches::epoch_order(cfg.seed, state.epoch, n);
        while state.batch_in_epoch < steps_per_epoch {
            if cancel.load(Ordering::Relaxed) {
                let checkpoint = save(&state, "last.safetensors", &mut last_checkpoint)?;
                return Err(Error::Cancelled {
                    at: format!("at epoch {}, step {}", state.epoch + 1, state.global_step),
                    checkpoint,
                });
            }
            let lo = state.batch_in_epoch * cfg.batch_size;
            let idx = &order[lo..(lo + cfg.batch_size).min(n)];
            let step_mode = Mode::Train { seed: batches::step_seed(cfg.seed, state.global_step) };
            let diagnose = !cfg.diagnostics.is_empty() && state.global_step.is_multiple_of(cfg.diagnostics_every);
            let began = Instant::now();
            let pending = if diagnose {
                Some(super::diagnostics::before_step(&state, &cfg, &train_set, idx, step_mode)?)
            } else {
                None
            };
            let mut diagnostics_time = began.elapsed();
            let (x, y) = batches::gather(&train_set, idx, device)?;
            let super::step::Outcome { loss: loss_value, hits } =
                super::step::sgd_step(state.model.as_ref(), &mut state.sgd, classes, &x, &y, step_mode)?;
            if !loss_value.is_finite() {
                return Err(Error::NanLoss {
                    value: loss_value,
                    epoch: state.epoch + 1,
                    step: state.global_step + 1,
                    checkpoint: last_checkpoint,
                });
            }
            if let Some(pending) = pending {
                let began = Instant::now();
                let measured = super::diagnostics::after_step(pending, &state, &cfg, &train_set)?;
                on_progress(&Progress {
                    kind: super::ProgressKind::Diagnostics,
                    epoch: state.epoch + 1,
                    epochs: cfg.epochs,
                    step: state.global_step,
                    step_in_epoch: state.batch_in_epoch,
                    steps_per_epoch,
                    loss: f64::NAN,
                    accuracy: f64::NAN,
                    images_per_sec: 0.0,
                    elapsed_sec: start.elapsed().as_secs_f64(),
                    test_loss: None,
                    test_accuracy: None,
                    checkpoint: None,
                    diagnostics: Some(measured),
                });
                diagnostics_time += began.elapsed();
                // Throughput excludes the diagnostics.
                for w in [&mut step_window, &mut epoch_window] {
                    w.started = w.started.map(|t| t + diagnostics_time);
                }
            }
            step_window.add(loss_value, hits, idx.len());
            epoch_window.add(loss_value, hits, idx.len());
            state.batch_in_epoch += 1;
            state.global_step += 1;

            if state.global_step.is_multiple_of(cfg.progress_every) {
                let (loss, accuracy, images_per_sec) = step_window.take();
                on_progress(&Progress {
                    kind: super::ProgressKind::Step,
                    epoch: state.epoch + 1,
                    epochs: cfg.epochs,
                    step: state.global_step,
                    step_in_epoch: state.batch_in_epoch,
                    steps_per_epoch,
                    loss,
                    accuracy,
                    images_per_sec,
                    elapsed_sec: start.elapsed().as_secs_f64(),
                    test_loss: None,
                    test_accuracy: None,
                    checkpoint: None,
                    diagnostics: None,
                });
            }
            if cfg.checkpoint_every.is_some_and(|k| state.global_step.is_multiple_of(k))
                && state.batch_in_epoch < steps_per_epoch
            {
                save(&state, "last.safetensors", &mut last_checkpoint)?;
            }
        }
        state.epoch += 1;
        state.batch_in_epoch = 0;
        let (epoch_loss, epoch_accuracy, images_per_sec) = epoch_window.take();
        (train_loss, train_accuracy) = (epoch_loss, epoch_accuracy);
        let eval = evaluate(state.model.as_ref(), &test_set, eval_batch, device, None)?;
        (test_loss, test_accuracy) = (eval.loss, eval.accuracy);
        let checkpoint = save(&state, &format!("epoch-{}.safetensors", state.epoch), &mut last_checkpoint)?;
        let swing = if cfg.diagnostics.iter().any(|d| d == "swing") {
            let all: Vec<u32> = (0..n as u32).collect();
            Some(serde_json::json!({ "swing": super::diagnostics::swing(&state, &train_set, &all)? }))
        } else {
            None
        };
        on_progress(&Progress {
            kind: super::ProgressKind::Epoch,
            epoch: state.epoch,
            epochs: cfg.epochs,
            step: state.global_step,
            step_in_epoch: steps_per_epoch,
            steps_per_epoch,
            loss: train_loss,
            accuracy: train_accuracy,
            images_per_sec,
            elapsed_sec: start.elapsed().as_secs_f64(),
            test_loss: Some(test_loss),
            test_accuracy: Some(test_accuracy),
            checkpoint,
            diagnostics: swing,
        });
        // Training throughput excludes the evaluation and checkpoint just done.
        step_window = Window::starting_now();
        epoch_window = Window::starting_now();
    }
    // A resumed run that was already complete still reports its test metrics.
    if test_loss.is_nan() {
        let eval = evaluate(state.model.as_ref(), &test_set, eval_batch, device, None)?;
        (test_loss, test_accuracy) = (eval.loss, eval.accuracy);
    }
    Ok(TrainResult {
        epochs: state.epoch,
        steps: state.global_step,
        train_loss,
        train_accuracy,
        test_loss,
        test_accuracy,
        wall_sec: start.elapsed().as_secs_f64(),
        checkpoint: last_checkpoint,
        weights_hash: weights_hash(state.model.params())?,
    })
}
