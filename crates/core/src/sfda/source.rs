//! SHOT's source training: label-smoothed cross-entropy, Nesterov SGD with the
//! `(1 + 10p)^−0.75` schedule, a seeded 90/10 split of the source training set, and the model
//! that does best on the held-out part kept (`source.safetensors`).
use super::common::{self, gather_augmented, load, save_model, split_indices, subset};
use super::losses::label_smoothed_cross_entropy;
use super::SourceConfig;
use crate::data::Split;
use crate::error::{Error, Result};
use crate::models::{self, Mode};
use crate::train::{batches, evaluate, weights_hash, Progress, ProgressKind, Sgd, TrainConfig};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceResult {
    /// `source.safetensors`, when `out_dir` was given.
    pub checkpoint: Option<PathBuf>,
    /// 1-based epoch of the kept model.
    pub best_epoch: usize,
    pub best_val_accuracy: f64,
    /// Held-out accuracy after each epoch.
    pub val_accuracy: Vec<f64>,
    /// The kept model on the source test split.
    pub source_test_accuracy: f64,
    pub train_size: usize,
    pub val_size: usize,
    pub steps: usize,
    pub wall_sec: f64,
    pub weights_hash: String,
}

/// The checkpoint's view of this run, so that `goldpan eval` can read the model.
fn train_config(cfg: &SourceConfig) -> TrainConfig {
    TrainConfig {
        model: cfg.model().to_string(),
        dataset: cfg.source.clone(),
        data_dir: cfg.data_dir.clone(),
        epochs: cfg.epochs,
        batch_size: cfg.batch_size,
        lr: cfg.lr,
        momentum: cfg.momentum,
        weight_decay: cfg.weight_decay,
        nesterov: cfg.nesterov,
        seed: cfg.seed,
        device: cfg.device.clone(),
        out_dir: cfg.out_dir.clone(),
        checkpoint_every: None,
        progress_every: cfg.progress_every,
        train_limit: cfg.train_limit,
        test_limit: None,
        labels: "true".into(),
        ..TrainConfig::default()
    }
}

pub fn train_source(
    cfg: SourceConfig,
    on_progress: &mut dyn FnMut(&Progress),
    cancel: &AtomicBool,
) -> Result<SourceResult> {
    cfg.validate()?;
    let start = Instant::now();
    let device = crate::device::resolve(&cfg.device)?;
    let spec = models::spec(cfg.model())?;
    let full = load(&cfg.source, &cfg.data_dir, Split::Train, spec.input, cfg.train_limit)?;
    let test = load(&cfg.source, &cfg.data_dir, Split::Test, spec.input, None)?;
    let (train_idx, val_idx) = split_indices(cfg.seed, full.len(), cfg.val_fraction);
    let (train, val) = (subset(&full, &train_idx), subset(&full, &val_idx));
    drop(full);

    let model = spec.build(cfg.seed, &device)?;
    let mut sgd = Sgd::new(model.params(), cfg.lr, cfg.momentum, cfg.weight_decay, cfg.nesterov)?;
    let n = train.len();
    let steps_per_epoch = n.div_ceil(cfg.batch_size);
    let max_iter = cfg.epochs * steps_per_epoch;
    let path = cfg.out_dir.as_ref().map(|d| d.join("source.safetensors"));
    let eval_batch = cfg.batch_size.max(500);

    let (mut step, mut best, mut val_accuracy) = (0usize, None::<(f64, usize)>, Vec::new());
    let mut best_weights: Vec<candle_core::Tensor> = Vec::new();
    let (mut window_loss, mut window_hits, mut window_seen, mut window_start) = (0f64, 0usize, 0usize, Instant::now());
    for epoch in 0..cfg.epochs {
        let order = batches::epoch_order(cfg.seed, epoch, n);
        let (mut epoch_loss, mut epoch_hits) = (0f64, 0usize);
        for (b, idx) in order.chunks(cfg.batch_size).enumerate() {
            if cancel.load(Ordering::Relaxed) {
                let checkpoint = best.is_some().then(|| path.clone()).flatten();
                return Err(Error::Cancelled { at: format!("at epoch {}, step {step}", epoch + 1), checkpoint });
            }
            sgd.lr = common::scheduled_lr(cfg.lr, step + 1, max_iter);
            let step_seed = batches::step_seed(cfg.seed, step);
            let (x, y) = if cfg.augment() {
                gather_augmented(&train, idx, step_seed, &device)?
            } else {
                batches::gather(&train, idx, &device)?
            };
            let logits = model.forward(&x, Mode::Train { seed: step_seed })?;
            let loss = label_smoothed_cross_entropy(&logits, &y, cfg.smoothing)?;
            let value = loss.to_scalar::<f32>()?;
            if !value.is_finite() {
                return Err(Error::NanLoss { value, epoch: epoch + 1, step: step + 1, checkpoint: None });
            }
            sgd.step(model.params(), &loss.backward()?)?;
            let hits = crate::train::correct(&logits, &y)?;
            step += 1;
            (epoch_loss, epoch_hits) = (epoch_loss + value as f64 * idx.len() as f64, epoch_hits + hits);
            (window_loss, window_hits, window_seen) =
                (window_loss + value as f64, window_hits + hits, window_seen + idx.len());
            if step % cfg.progress_every == 0 {
                let secs = window_start.elapsed().as_secs_f64().max(1e-9);
                on_progress(&Progress {
                    kind: ProgressKind::Step,
                    epoch: epoch + 1,
                    epochs: cfg.epochs,
                    step,
                    step_in_epoch: b + 1,
                    steps_per_epoch,
                    loss: window_loss / cfg.progress_every as f64,
                    accuracy: window_hits as f64 / window_seen.max(1) as f64,
                    images_per_sec: window_seen as f64 / secs,
                    elapsed_sec: start.elapsed().as_secs_f64(),
                    test_loss: None,
                    test_accuracy: None,
                    checkpoint: None,
                    diagnostics: None,
                });
                (window_loss, window_hits, window_seen, window_start) = (0.0, 0, 0, Instant::now());
            }
        }
        let eval = evaluate(model.as_ref(), &val, eval_batch, &device, Some(cancel))?;
        val_accuracy.push(eval.accuracy);
        // SHOT keeps the latest of equally good models (`>=`).
        if best.is_none_or(|(acc, _)| eval.accuracy >= acc) {
            best = Some((eval.accuracy, epoch + 1));
            best_weights = snapshot(model.as_ref())?;
            if let Some(path) = &path {
                let record = serde_json::json!({ "stage": "source", "config": cfg, "epoch": epoch + 1, "valAccuracy": eval.accuracy });
                save_model(model.as_ref(), train_config(&cfg), record, path)?;
            }
        }
        on_progress(&Progress {
            kind: ProgressKind::Epoch,
            epoch: epoch + 1,
            epochs: cfg.epochs,
            step,
            step_in_epoch: steps_per_epoch,
            steps_per_epoch,
            loss: epoch_loss / n as f64,
            accuracy: epoch_hits as f64 / n as f64,
            images_per_sec: 0.0,
            elapsed_sec: start.elapsed().as_secs_f64(),
            test_loss: Some(eval.loss),
            test_accuracy: Some(eval.accuracy),
            checkpoint: best.filter(|b| b.1 == epoch + 1).and(path.clone()),
            diagnostics: None,
        });
    }
    restore(model.as_ref(), &best_weights)?;
    let (best_val_accuracy, best_epoch) = best.expect("epochs ≥ 1");
    let test_eval = evaluate(model.as_ref(), &test, eval_batch, &device, Some(cancel))?;
    Ok(SourceResult {
        checkpoint: path,
        best_epoch,
        best_val_accuracy,
        val_accuracy,
        source_test_accuracy: test_eval.accuracy,
        train_size: n,
        val_size: val.len(),
        steps: step,
        wall_sec: start.elapsed().as_secs_f64(),
        weights_hash: weights_hash(model.params())?,
    })
}

/// Copies of every weight and buffer, in order.
fn snapshot(model: &dyn models::Model) -> Result<Vec<candle_core::Tensor>> {
    let p = model.params();
    Ok(p.iter().chain(p.buffers()).map(|(_, v)| v.as_tensor().copy()).collect::<candle_core::Result<_>>()?)
}

fn restore(model: &dyn models::Model, weights: &[candle_core::Tensor]) -> Result<()> {
    let p = model.params();
    for ((_, v), w) in p.iter().chain(p.buffers()).zip(weights) {
        v.set(w)?;
    }
    Ok(())
}
