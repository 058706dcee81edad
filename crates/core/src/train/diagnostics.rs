//! The measurements [`TrainConfig::diagnostics`] asks for, taken around one step of a run:
//! `eq3`, `ntk` and `swing` before its update, `speed` across it. They read the model and never
//! change it (no running statistics, no random stream of the run), so a run with diagnostics
//! reaches the same weights as one without.
//!
//! - `ntk`: the empirical NTK (full kernel, structured method, evaluation mode) of the first
//!   [`NTK_PROBE`] probe images: top eigenvalues, trace, smallest eigenvalue, and the fraction of
//!   `C×C` blocks `Θ(xᵢ, xⱼ)` with a positive-definite symmetric part (Eq. 7).
//! - `speed`: the function speed of Fig. 2, `mean KL(softmax f_{t+1} ‖ softmax f_t)` over the
//!   probe set across the step's update, with the error rate of `f_t` on the training labels.
//! - `swing`: the histogram of predicted classes over the probe set (Fig. 1), and over the whole
//!   training set at each epoch's end.
use super::TrainConfig;
use super::TrainState;
use crate::data::Dataset;
use crate::error::Result;
use crate::hessian::{eq3, operator};
use crate::models::{mix_seed, Mode};
use crate::ntk;
use crate::program;
use serde_json::{Map, Value};

/// Seed tag of the diagnostics' own randomness (probe-set dropout masks, random directions).
const DIAGNOSTICS: u64 = 0xd1a6;

/// Probe-set batch size: memory only, the results do not depend on it beyond rounding.
const PROBE_BATCH: usize = 500;

/// Probe images of the `ntk` diagnostic (its full kernel is `NC × NC`).
pub const NTK_PROBE: usize = 128;

/// What is measured before a step's update, waiting for the rest after it.
pub(super) struct Pending {
    out: Map<String, Value>,
    /// `f_t` on the probe set, for `speed`.
    logits: Option<Vec<f32>>,
}

fn to_value(v: impl serde::Serialize) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| crate::Error::Internal(e.to_string()))
}

fn wants(cfg: &TrainConfig, what: &str) -> bool {
    cfg.diagnostics.iter().any(|d| d == what)
}

fn probe_order(cfg: &TrainConfig, train_set: &Dataset) -> Vec<u32> {
    (0..cfg.diagnostics_samples.min(train_set.len()) as u32).collect()
}

/// Evaluation-mode logits of `order` (`N×C`, row-major).
fn logits(state: &TrainState, set: &Dataset, order: &[u32]) -> Result<(Vec<f32>, usize)> {
    let mut out = Vec::new();
    let mut classes = set.classes;
    for idx in order.chunks(PROBE_BATCH) {
        let (x, _) = crate::train::batches::gather(set, idx, &candle_core::Device::Cpu)?;
        let z = crate::ops::no_grad(|| state.model.forward(&x, Mode::Eval))?;
        classes = z.dim(1)?;
        out.extend(z.flatten_all()?.to_vec1::<f32>()?);
    }
    Ok((out, classes))
}

/// Predicted-class counts, and the largest class's share (the swing: early in training most
/// predictions fall on one class).
pub(super) fn swing(state: &TrainState, set: &Dataset, order: &[u32]) -> Result<Value> {
    let (z, c) = logits(state, set, order)?;
    let mut counts = vec![0usize; c];
    for row in z.chunks(c) {
        let best = (0..c).fold(0, |b, k| if row[k] > row[b] { k } else { b });
        counts[best] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(0) as f64 / order.len().max(1) as f64;
    Ok(serde_json::json!({ "samples": order.len(), "counts": counts, "dominantShare": top }))
}

fn softmax(row: &[f32]) -> Vec<f64> {
    let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let e: Vec<f64> = row.iter().map(|&v| (v as f64 - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

/// The measurements before the step's update; `idx` are its minibatch samples and `step_mode`
/// its mode (dropout masks).
pub(super) fn before_step(
    state: &TrainState,
    cfg: &TrainConfig,
    train_set: &Dataset,
    idx: &[u32],
    step_mode: Mode,
) -> Result<Pending> {
    let mut out = Map::new();
    let order = probe_order(cfg, train_set);
    if wants(cfg, "ntk") {
        let n = order.len().min(NTK_PROBE);
        let (x, _) = crate::train::batches::gather(train_set, &order[..n], &candle_core::Device::Cpu)?;
        let x = program::Act::<f32>::from_tensor(&x)?;
        let prog = state.model.program(Mode::Eval)?;
        let w = program::weights::<f32>(state.model.params())?;
        let k = ntk::ntk(&prog, &w, &x, None, ntk::Kernel::Full, ntk::Method::Structured, None, usize::MAX, None)?;
        let s = ntk::spectrum(&k, false, false)?;
        let b = ntk::block_check(&k)?;
        out.insert(
            "ntk".into(),
            serde_json::json!({
                "samples": n,
                "top": s.eigenvalues.iter().take(5).collect::<Vec<_>>(),
                "trace": s.trace,
                "minEigenvalue": s.eigenvalues.last(),
                "pdFraction": b.pd_fraction,
                "pdFractionDiagonal": b.pd_fraction_diagonal,
            }),
        );
    }
    if wants(cfg, "swing") {
        out.insert("swing".into(), swing(state, train_set, &order)?);
    }
    let logits = if wants(cfg, "speed") { Some(logits(state, train_set, &order)?.0) } else { None };
    out.extend(eq3_part(state, cfg, train_set, idx, step_mode)?);
    Ok(Pending { out, logits })
}

/// Completes `pending` after the step's update: `{"eq3": …, "ntk": …, "swing": …, "speed": …}`.
pub(super) fn after_step(
    pending: Pending,
    state: &TrainState,
    cfg: &TrainConfig,
    train_set: &Dataset,
) -> Result<Value> {
    let Pending { mut out, logits: before } = pending;
    if let Some(before) = before {
        let order = probe_order(cfg, train_set);
        let (after, c) = logits(state, train_set, &order)?;
        let (mut kl, mut wrong) = (0.0, 0usize);
        for (i, (a, b)) in after.chunks(c).zip(before.chunks(c)).enumerate() {
            let (p, q) = (softmax(a), softmax(b));
            kl += p.iter().zip(&q).map(|(p, q)| if *p > 0.0 { p * (p / q).ln() } else { 0.0 }).sum::<f64>();
            let pred = (0..c).fold(0, |m, k| if b[k] > b[m] { k } else { m });
            wrong += (pred as u32 != train_set.labels[order[i] as usize]) as usize;
        }
        let n = order.len().max(1) as f64;
        out.insert(
            "speed".into(),
            serde_json::json!({ "kl": kl / n, "error": wrong as f64 / n, "samples": order.len() }),
        );
    }
    Ok(Value::Object(out))
}

/// The `eq3` part.
fn eq3_part(
    state: &TrainState,
    cfg: &TrainConfig,
    train_set: &Dataset,
    idx: &[u32],
    step_mode: Mode,
) -> Result<Map<String, Value>> {
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
        out.insert("eq3".into(), to_value(m)?);
    }
    Ok(out)
}
