//! Hessian analysis of a checkpoint (PyHessian's tools): top eigenpairs, trace and spectral
//! density of the mean loss over a sample set, and single Hessian–vector products.
use super::operator::{batches, Batch, DatasetHessian};
use super::spectra::{self, DensityConfig, EigenConfig, SymmetricOperator, TraceConfig};
use crate::data::{self, Split};
use crate::error::{Error, Result};
use crate::models::{self, Mode};
use crate::ops::Real;
use crate::program::{self, Program, Weights};
use crate::train::{Progress, TrainState};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// What to analyse and how. Every field has a default, so configs name only what they change.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct HessianConfig {
    pub checkpoint: PathBuf,
    /// Default: the checkpoint's training data directory.
    pub data_dir: Option<PathBuf>,
    /// `train` or `test`.
    pub split: String,
    /// The first `samples` images of the split.
    pub samples: usize,
    pub batch_size: usize,
    /// `true` or `random`; default: the labels the checkpoint was trained on (a
    /// `random-redraw` run's are those of its last epoch).
    pub labels: Option<String>,
    /// `eval` (running statistics, no dropout: PyHessian's setting) or `train` (batch
    /// statistics and the dropout masks of `seed`).
    pub mode: String,
    /// Top eigenpairs to compute; 0 for none.
    pub top_k: usize,
    pub max_iter: usize,
    pub tol: f64,
    pub trace: bool,
    pub trace_samples: usize,
    pub trace_tol: f64,
    pub density: bool,
    pub density_steps: usize,
    pub density_runs: usize,
    /// `f32` (the model's precision, fast) or `f64`.
    pub precision: String,
    pub seed: u64,
}

impl Default for HessianConfig {
    fn default() -> Self {
        Self {
            checkpoint: PathBuf::new(),
            data_dir: None,
            split: "train".into(),
            samples: 1000,
            batch_size: 500,
            labels: None,
            mode: "eval".into(),
            top_k: 0,
            max_iter: 100,
            tol: 1e-3,
            trace: false,
            trace_samples: 100,
            trace_tol: 1e-3,
            density: false,
            density_steps: 90,
            density_runs: 1,
            precision: "f32".into(),
            seed: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EigenReport {
    /// Descending.
    pub values: Vec<f64>,
    pub residuals: Vec<f64>,
    pub converged: bool,
    pub products: usize,
    #[serde(skip)]
    pub vectors: Vec<Vec<f64>>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceReport {
    pub estimate: f64,
    pub std_error: f64,
    pub samples: usize,
    pub history: Vec<f64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DensityReport {
    pub grid: Vec<f64>,
    pub density: Vec<f64>,
    pub nodes: Vec<Vec<f64>>,
    pub weights: Vec<Vec<f64>>,
    pub products: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HessianReport {
    pub model: String,
    pub dataset: String,
    pub split: String,
    pub samples: usize,
    pub labels: String,
    pub mode: String,
    pub parameters: usize,
    pub loss: f64,
    pub grad_norm: f64,
    pub eigen: Option<EigenReport>,
    pub trace: Option<TraceReport>,
    pub density: Option<DensityReport>,
    /// Hessian–vector products over the whole sample set.
    pub products: usize,
    pub wall_sec: f64,
}

/// A checkpoint's model, its program and the sample batches of `config`.
struct Setup<T> {
    state: TrainState,
    program: Program,
    weights: Weights<T>,
    batches: Vec<Batch<T>>,
    labels: String,
    samples: usize,
}

impl HessianConfig {
    fn validate(&self) -> Result<()> {
        let positive = |field: &str, v: usize| {
            if v == 0 {
                Err(Error::config(field, "must be ≥ 1"))
            } else {
                Ok(())
            }
        };
        positive("samples", self.samples)?;
        positive("batchSize", self.batch_size)?;
        let one_of = |field: &str, v: &str, allowed: &[&str]| {
            if allowed.contains(&v) {
                Ok(())
            } else {
                Err(Error::config(field, format!("{v:?}: expected one of {}", allowed.join(", "))))
            }
        };
        one_of("split", &self.split, &["train", "test"])?;
        one_of("mode", &self.mode, &["eval", "train"])?;
        one_of("precision", &self.precision, &["f32", "f64"])?;
        if let Some(l) = &self.labels {
            one_of("labels", l, &["true", "random"])?;
        }
        Ok(())
    }

    fn setup<T: Real>(&self) -> Result<Setup<T>> {
        self.validate()?;
        let state = TrainState::load(&self.checkpoint, &candle_core::Device::Cpu)?;
        let epoch = state.epoch;
        let cfg = &state.config;
        let spec = models::spec(&cfg.model)?;
        let split = if self.split == "test" { Split::Test } else { Split::Train };
        let dir = self.data_dir.clone().unwrap_or_else(|| cfg.data_dir.clone());
        let data = data::load_as(&cfg.dataset, &dir, split, spec.input)?;
        let samples = self.samples.min(data.len());
        if samples == 0 {
            return Err(Error::config("samples", format!("the {} {} split is empty", cfg.dataset, self.split)));
        }
        let trained = if cfg.labels == "true" { "true" } else { "random" };
        let labels = self.labels.clone().unwrap_or_else(|| trained.to_string());
        let values = match labels.as_str() {
            "true" => data.labels.clone(),
            // Training's own draw (test samples get the same per-index draw).
            _ => {
                let stream = if cfg.labels == "random-redraw" { epoch.max(1) as u64 } else { 0 };
                crate::train::batches::random_labels(cfg.seed, stream, data.len(), data.classes)
            }
        };
        let mode = if self.mode == "train" { Mode::Train { seed: self.seed } } else { Mode::Eval };
        let program = state.model.program(mode)?;
        let weights = program::weights::<T>(state.model.params())?;
        let order: Vec<u32> = (0..samples as u32).collect();
        let batches = batches::<T>(&data, &order, &values, self.batch_size)?;
        Ok(Setup { state, program, weights, batches, labels, samples })
    }
}

/// Runs the analyses `config` asks for. Progress: one `analysis` event per Hessian–vector
/// product (`step` = products so far).
pub fn analyse(
    config: &HessianConfig,
    on_progress: &mut dyn FnMut(&Progress),
    cancel: &AtomicBool,
) -> Result<HessianReport> {
    if config.precision == "f64" {
        analyse_as::<f64>(config, on_progress, cancel)
    } else {
        analyse_as::<f32>(config, on_progress, cancel)
    }
}

fn analyse_as<T: Real>(
    config: &HessianConfig,
    on_progress: &mut dyn FnMut(&Progress),
    cancel: &AtomicBool,
) -> Result<HessianReport> {
    let start = Instant::now();
    let s = config.setup::<T>()?;
    let mut report_product = |n: usize, phase: &str| {
        on_progress(&Progress::analysis(n, start.elapsed().as_secs_f64(), phase));
    };
    let (loss, grad) = DatasetHessian::new(&s.program, &s.weights, &s.batches).cancel_on(cancel).gradient()?;
    let mut products = 0;
    let mut run = |phase: &str, f: &mut dyn FnMut(&mut dyn SymmetricOperator) -> Result<()>| -> Result<()> {
        let mut count = |n: usize| report_product(products + n, phase);
        let mut op = DatasetHessian::new(&s.program, &s.weights, &s.batches).cancel_on(cancel).on_product(&mut count);
        f(&mut op)?;
        products += op.products();
        Ok(())
    };
    let (mut eigen, mut trace, mut density) = (None, None, None);
    if config.top_k > 0 {
        let cfg = EigenConfig { k: config.top_k, max_iter: config.max_iter, tol: config.tol, seed: config.seed };
        run("eigen", &mut |op| {
            let e = spectra::top_eigen(op, &cfg)?;
            eigen = Some(EigenReport {
                values: e.values,
                residuals: e.residuals,
                converged: e.converged,
                products: e.products,
                vectors: e.vectors,
            });
            Ok(())
        })?;
    }
    if config.trace {
        let cfg = TraceConfig {
            max_samples: config.trace_samples,
            tol: config.trace_tol,
            seed: config.seed,
            ..TraceConfig::default()
        };
        run("trace", &mut |op| {
            let t = spectra::hutchinson_trace(op, &cfg)?;
            trace = Some(TraceReport {
                estimate: t.estimate,
                std_error: t.std_error,
                samples: t.samples,
                history: t.history,
            });
            Ok(())
        })?;
    }
    if config.density {
        let cfg = DensityConfig {
            runs: config.density_runs,
            steps: config.density_steps,
            seed: config.seed,
            ..DensityConfig::default()
        };
        run("density", &mut |op| {
            let d = spectra::slq_density(op, &cfg)?;
            density = Some(DensityReport {
                grid: d.grid,
                density: d.density,
                nodes: d.nodes,
                weights: d.weights,
                products: d.products,
            });
            Ok(())
        })?;
    }
    Ok(HessianReport {
        model: s.state.config.model.clone(),
        dataset: s.state.config.dataset.clone(),
        split: config.split.clone(),
        samples: s.samples,
        labels: s.labels,
        mode: config.mode.clone(),
        parameters: s.program.param_count(),
        loss,
        grad_norm: grad.iter().map(|g| g * g).sum::<f64>().sqrt(),
        eigen,
        trace,
        density,
        products,
        wall_sec: start.elapsed().as_secs_f64(),
    })
}

/// One exact product `H·v` over the sample set of `config`, with the loss and its gradient
/// (all flat, in parameter order).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HvpResult {
    pub loss: f64,
    pub gradient: Vec<f64>,
    pub hv: Vec<f64>,
    pub wall_sec: f64,
}

pub fn hvp(config: &HessianConfig, v: &[f64], cancel: &AtomicBool) -> Result<HvpResult> {
    if config.precision == "f64" {
        hvp_as::<f64>(config, v, cancel)
    } else {
        hvp_as::<f32>(config, v, cancel)
    }
}

fn hvp_as<T: Real>(config: &HessianConfig, v: &[f64], cancel: &AtomicBool) -> Result<HvpResult> {
    let start = Instant::now();
    let s = config.setup::<T>()?;
    let mut op = DatasetHessian::new(&s.program, &s.weights, &s.batches).cancel_on(cancel);
    if v.len() != op.dim() {
        return Err(Error::Shape(format!("a vector of {} values for a model with {} parameters", v.len(), op.dim())));
    }
    let (loss, gradient) = op.gradient()?;
    let hv = op.apply(v)?;
    Ok(HvpResult { loss, gradient, hv, wall_sec: start.elapsed().as_secs_f64() })
}
