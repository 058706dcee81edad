//! The measurements [`TrainConfig::diagnostics`] asks for, taken at one step of a run before its
//! update. They read the model and never change it (no running statistics, no random stream of
//! the run), so a run with diagnostics reaches the same weights as one without.
use super::TrainConfig;
use super::TrainState;
use crate::data::Dataset;
use crate::error::Result;
use crate::hessian::{eq3, operator};
use crate::models::{mix_seed, Mode};
use crate::program;
use serde_json::{Map, Value};

/// Seed tag of the diagnostics' own randomness (probe-set dropout masks, random directions).
const DIAGNOSTICS: u64 = 0xd1a6;

/// Probe-set batch size: memory only, the results do not depend on it beyond rounding.
const PROBE_BATCH: usize = 500;

/// `{"eq3": {...}}` at the current weights; `idx` are the step's minibatch samples and
/// `step_mode` its mode (dropout masks).
pub(super) fn measure(
    state: &TrainState,
    cfg: &TrainConfig,
    train_set: &Dataset,
    idx: &[u32],
    step_mode: Mode,
) -> Result<Value> {
    let mut out = Map::new();
    if cfg.diagnostics.iter().any(|d| d == "eq3") {
        // The probe set's loss is the training loss (batch statistics, dropout with masks fixed
        // for the whole run), so that what is measured is the surface SGD descends.
        let probe_mode = Mode::Train { seed: mix_seed(cfg.seed, DIAGNOSTICS) };
        let probe_program = state.model.program(probe_mode)?;
        let step_program = state.model.program(step_mode)?;
        let weights = program::weights::<f32>(state.model.params())?;
        let order: Vec<u32> = (0..cfg.diagnostics_samples.min(train_set.len()) as u32).collect();
        let probe = operator::batches::<f32>(train_set, &order, &train_set.labels, PROBE_BATCH)?;
        let mut mini = operator::batches::<f32>(train_set, idx, &train_set.labels, idx.len())?;
        let alpha = cfg.diagnostics_alpha.unwrap_or(cfg.lr);
        let seed = mix_seed(mix_seed(cfg.seed, DIAGNOSTICS), state.global_step as u64);
        let m = eq3::measure(&probe_program, &step_program, &weights, &probe, &mini.remove(0), alpha, seed)?;
        out.insert("eq3".into(), serde_json::to_value(m).map_err(|e| crate::Error::Internal(e.to_string()))?);
    }
    Ok(Value::Object(out))
}
