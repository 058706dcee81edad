//! NTK analysis of a checkpoint: the kernel on its first `n` images, written as `.npy`, with
//! its spectrum (dense, or top-k matrix-free by Lanczos) and the Eq. 7 block check.
use super::{
    block_check, check_eigen_memory, check_memory, jacobian_width, ntk, spectrum, write_npy, Kernel, Method,
    NtkOperator,
};
use crate::data::{self, Split};
use crate::error::{Error, Result};
use crate::hessian::spectra::{self, EigenConfig};
use crate::models::{self, Mode};
use crate::ops::Real;
use crate::program::{self, Act};
use crate::train::{Progress, TrainState};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct NtkConfig {
    pub checkpoint: PathBuf,
    /// Default: the checkpoint's training data directory.
    pub data_dir: Option<PathBuf>,
    /// `train` or `test`.
    pub split: String,
    /// The first `n` images of the split.
    pub n: usize,
    pub kernel: Kernel,
    /// `jacobian`, `structured` or `ntvp` (matrix-free: top-k only, no kernel file).
    pub method: Method,
    /// Top eigenvalues by Lanczos on NTK-vector products (never forms the kernel); 0 for none.
    pub top_k: usize,
    /// The full eigendecomposition of the formed kernel.
    pub eigen: bool,
    /// Parameter-name prefixes (`conv1`, `fc3.weight`) the kernel is restricted to; all when empty.
    pub layers: Vec<String>,
    /// Bytes the kernel and its Jacobians may take; for top-k, the factors of the NTK-vector
    /// products (beyond it they run through the engine instead).
    pub memory_budget: usize,
    /// Samples per forward pass.
    pub batch_size: usize,
    /// `f32` or `f64`.
    pub precision: String,
    /// Directory for `kernel.npy`, `eigenvalues.npy` and `ntk.json`; nothing written when `None`.
    pub out_dir: Option<PathBuf>,
    pub seed: u64,
}

impl Default for NtkConfig {
    fn default() -> Self {
        Self {
            checkpoint: PathBuf::new(),
            data_dir: None,
            split: "train".into(),
            n: 500,
            kernel: Kernel::Trace,
            method: Method::Structured,
            top_k: 0,
            eigen: true,
            layers: Vec::new(),
            memory_budget: 4 << 30,
            batch_size: 500,
            precision: "f32".into(),
            out_dir: None,
            seed: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NtkReport {
    pub model: String,
    pub dataset: String,
    pub n: usize,
    pub classes: usize,
    pub kernel: Kernel,
    pub method: Method,
    /// Parameters the kernel is over.
    pub parameters: usize,
    /// Shape of `kernel.npy`.
    pub shape: Vec<usize>,
    pub trace: Option<f64>,
    /// Descending; all of them with `eigen`, else the Lanczos top-k.
    pub eigenvalues: Vec<f64>,
    pub condition: Option<f64>,
    pub min_eigenvalue: Option<f64>,
    pub top_k: Option<Vec<f64>>,
    pub top_k_products: Option<usize>,
    /// Eq. 7: fraction of `C×C` blocks `Θ(xᵢ, xⱼ)` with a positive-definite symmetric part.
    pub pd_fraction: Option<f64>,
    pub pd_fraction_diagonal: Option<f64>,
    pub files: Vec<PathBuf>,
    pub wall_sec: f64,
}

impl NtkConfig {
    fn validate(&self) -> Result<()> {
        if self.n == 0 || self.batch_size == 0 {
            return Err(Error::config(if self.n == 0 { "n" } else { "batchSize" }, "must be ≥ 1"));
        }
        if !["train", "test"].contains(&self.split.as_str()) {
            return Err(Error::config("split", format!("{:?}: expected train or test", self.split)));
        }
        if !["f32", "f64"].contains(&self.precision.as_str()) {
            return Err(Error::config("precision", format!("{:?}: expected f32 or f64", self.precision)));
        }
        if self.method == Method::Ntvp && self.top_k == 0 {
            return Err(Error::config(
                "topK",
                "the matrix-free method (ntvp) computes top eigenvalues only: give topK ≥ 1",
            ));
        }
        Ok(())
    }
}

pub fn analyse(config: &NtkConfig, on_progress: &mut dyn FnMut(&Progress), cancel: &AtomicBool) -> Result<NtkReport> {
    config.validate()?;
    if config.precision == "f64" {
        analyse_as::<f64>(config, on_progress, cancel)
    } else {
        analyse_as::<f32>(config, on_progress, cancel)
    }
}

fn analyse_as<T: Real>(
    config: &NtkConfig,
    on_progress: &mut dyn FnMut(&Progress),
    cancel: &AtomicBool,
) -> Result<NtkReport> {
    let start = Instant::now();
    let state = TrainState::load(&config.checkpoint, &candle_core::Device::Cpu)?;
    let cfg = &state.config;
    let spec = models::spec(&cfg.model)?;
    let split = if config.split == "test" { Split::Test } else { Split::Train };
    let dir = config.data_dir.clone().unwrap_or_else(|| cfg.data_dir.clone());
    let set = data::load_as(&cfg.dataset, &dir, split, spec.input)?;
    let n = config.n.min(set.len());
    let prog = state.model.program(Mode::Eval)?;
    let w = program::weights::<T>(state.model.params())?;
    let names: Vec<&str> = state.model.params().iter().map(|(name, _)| name).collect();
    let selected: Vec<bool> = names
        .iter()
        .map(|name| {
            config.layers.is_empty() || config.layers.iter().any(|l| name == l || name.starts_with(&format!("{l}.")))
        })
        .collect();
    if !selected.iter().any(|&s| s) {
        return Err(Error::config(
            "layers",
            format!("no parameter matches {:?}; parameters: {}", config.layers, names.join(", ")),
        ));
    }
    let parameters =
        prog.param_shapes.iter().zip(&selected).filter(|(_, &s)| s).map(|(s, _)| s.iter().product::<usize>()).sum();
    let order: Vec<u32> = (0..n as u32).collect();
    let batches: Vec<Act<T>> = order
        .chunks(config.batch_size)
        .map(|idx| Act::from_tensor(&crate::train::batches::gather(&set, idx, &candle_core::Device::Cpu)?.0))
        .collect::<Result<_>>()?;
    let mut report = NtkReport {
        model: cfg.model.clone(),
        dataset: cfg.dataset.clone(),
        n,
        classes: spec.classes,
        kernel: config.kernel,
        method: config.method,
        parameters,
        shape: Vec::new(),
        trace: None,
        eigenvalues: Vec::new(),
        condition: None,
        min_eigenvalue: None,
        top_k: None,
        top_k_products: None,
        pd_fraction: None,
        pd_fraction_diagonal: None,
        files: Vec::new(),
        wall_sec: 0.0,
    };
    let write = |name: &str, shape: &[usize], data: &[f64], files: &mut Vec<PathBuf>| -> Result<()> {
        if let Some(dir) = &config.out_dir {
            let path = dir.join(name);
            write_npy(&path, shape, data)?;
            files.push(path);
        }
        Ok(())
    };
    if config.method != Method::Ntvp {
        // Both budgets before anything is computed: forming the kernel (which `ntk` checks
        // again), then its eigendecomposition, so that no minutes go into a kernel whose
        // eigenvalues cannot fit.
        let elem = std::mem::size_of::<T>();
        let width = jacobian_width(&prog, &selected, config.method, spec.classes);
        check_memory(config.kernel, n, spec.classes, width, elem, config.memory_budget)?;
        if config.eigen {
            check_eigen_memory(config.kernel, n, spec.classes, elem, config.memory_budget)?;
        }
        on_progress(&Progress::analysis(0, start.elapsed().as_secs_f64(), "kernel"));
        let all = concat(&batches)?;
        let k = ntk(
            &prog,
            &w,
            &all,
            None,
            config.kernel,
            config.method,
            Some(&selected),
            config.memory_budget,
            Some(cancel),
        )?;
        report.shape = k.shape();
        write("kernel.npy", &k.shape(), &k.data, &mut report.files)?;
        if config.eigen {
            on_progress(&Progress::analysis(0, start.elapsed().as_secs_f64(), "eigen"));
            let s = spectrum(&k, false, config.precision == "f32")?;
            write("eigenvalues.npy", &[s.eigenvalues.len()], &s.eigenvalues, &mut report.files)?;
            report.trace = Some(s.trace);
            report.condition = Some(s.condition);
            report.min_eigenvalue = s.eigenvalues.last().copied();
            report.eigenvalues = s.eigenvalues;
        } else {
            report.trace = Some((0..k.rows).map(|i| k.get(i, i)).sum());
        }
        if config.kernel != Kernel::Trace {
            let b = block_check(&k)?;
            report.pd_fraction = Some(b.pd_fraction);
            report.pd_fraction_diagonal = Some(b.pd_fraction_diagonal);
        }
    }
    if config.top_k > 0 {
        let mut op = NtkOperator::new(&prog, &w, &batches, config.kernel, spec.classes, Some(&selected))
            .memory_budget(config.memory_budget)
            .cancel_on(cancel);
        let eig = EigenConfig { k: config.top_k, seed: config.seed, ..EigenConfig::default() };
        let top = spectra::top_eigen(&mut op, &eig)?;
        on_progress(&Progress::analysis(op.products(), start.elapsed().as_secs_f64(), "top-k"));
        write("top_eigenvalues.npy", &[top.values.len()], &top.values, &mut report.files)?;
        if report.eigenvalues.is_empty() {
            report.eigenvalues = top.values.clone();
        }
        report.top_k_products = Some(top.products);
        report.top_k = Some(top.values);
    }
    report.wall_sec = start.elapsed().as_secs_f64();
    if let Some(dir) = &config.out_dir {
        let path = dir.join("ntk.json");
        let json = serde_json::to_vec_pretty(&report).map_err(|e| Error::Internal(e.to_string()))?;
        crate::checkpoint::write_atomic(&path, &json)?;
        report.files.push(path);
    }
    Ok(report)
}

/// All batches as one activation.
fn concat<T: Real>(batches: &[Act<T>]) -> Result<Act<T>> {
    let mut dims = batches[0].dims.clone();
    dims[0] = batches.iter().map(Act::n).sum();
    Act::new(batches.iter().flat_map(|b| b.data.iter().copied()).collect(), dims)
}
