//! Evaluation: mean cross-entropy and accuracy of a model on a dataset, in eval mode.
use super::{batches, TrainState};
use crate::data::{self, Dataset, Split};
use crate::error::{Error, Result};
use crate::models::{layers, Mode, Model};
use candle_core::{Device, D};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EvalResult {
    pub count: usize,
    pub loss: f64,
    pub accuracy: f64,
    pub wall_sec: f64,
}

/// Number of correct argmax predictions in a batch.
pub(crate) fn correct(logits: &candle_core::Tensor, labels: &candle_core::Tensor) -> candle_core::Result<usize> {
    let pred = logits.argmax(D::Minus1)?;
    Ok(pred.eq(labels)?.to_dtype(candle_core::DType::U32)?.sum_all()?.to_scalar::<u32>()? as usize)
}

/// Evaluates `model` on all of `data` in batches of `batch_size`.
pub fn evaluate(
    model: &dyn Model,
    data: &Dataset,
    batch_size: usize,
    device: &Device,
    cancel: Option<&AtomicBool>,
) -> Result<EvalResult> {
    let start = Instant::now();
    let order: Vec<u32> = (0..data.len() as u32).collect();
    let (mut loss_sum, mut hits) = (0f64, 0usize);
    for chunk in order.chunks(batch_size.max(1)) {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(Error::Cancelled { at: "during evaluation".into(), checkpoint: None });
        }
        let (x, y) = batches::gather(data, chunk, device)?;
        let logits = crate::ops::no_grad(|| model.forward(&x, Mode::Eval))?;
        loss_sum += layers::cross_entropy(&logits, &y)?.to_scalar::<f32>()? as f64 * chunk.len() as f64;
        hits += correct(&logits, &y)?;
    }
    let n = data.len().max(1) as f64;
    Ok(EvalResult {
        count: data.len(),
        loss: loss_sum / n,
        accuracy: hits as f64 / n,
        wall_sec: start.elapsed().as_secs_f64(),
    })
}

/// Evaluates the weights of the checkpoint at `path` on `split` of its dataset in `data_dir`.
pub fn evaluate_checkpoint(
    path: &Path,
    data_dir: &Path,
    split: Split,
    limit: Option<usize>,
    batch_size: usize,
    device: &str,
    cancel: Option<&AtomicBool>,
) -> Result<(TrainState, EvalResult)> {
    let device = crate::device::resolve(device)?;
    let state = TrainState::load(path, &device)?;
    let input = crate::models::spec(&state.config.model)?.input;
    let mut set = data::load_as(&state.config.dataset, data_dir, split, input)?;
    if let Some(n) = limit {
        set = set.truncate(n);
    }
    let result = evaluate(state.model.as_ref(), &set, batch_size, &device, cancel)?;
    Ok((state, result))
}
