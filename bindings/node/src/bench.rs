//! `benchmark`: training-step or inference throughput on synthetic data.
use crate::error::{guard, settle};
use goldpan_core::bench::{throughput, BenchMode};
use goldpan_core::Error as CoreError;
use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Task};

#[napi_derive::napi(object)]
#[derive(Clone)]
pub struct BindingBenchmarkOptions {
    pub model: String,
    pub batch_size: u32,
    /// "train" (forward + backward + SGD step) or "infer" (forward only).
    pub mode: String,
    pub iters: u32,
    pub warmup: u32,
    pub seed: u32,
}

#[napi_derive::napi(object)]
pub struct BindingBenchmarkResult {
    pub model: String,
    pub mode: String,
    pub batch_size: u32,
    pub iters: u32,
    pub wall_sec: f64,
    pub images_per_sec: f64,
}

pub struct BenchTask(BindingBenchmarkOptions);

impl Task for BenchTask {
    type Output = Result<BindingBenchmarkResult, CoreError>;
    type JsValue = BindingBenchmarkResult;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let _retain = crate::alloc::RetainFreed::new();
        let o = self.0.clone();
        Ok(guard(move || {
            let mode: BenchMode = o.mode.parse()?;
            let r =
                throughput(&o.model, o.batch_size as usize, mode, o.iters as usize, o.warmup as usize, o.seed as u64)?;
            Ok(BindingBenchmarkResult {
                model: o.model,
                mode: o.mode,
                batch_size: o.batch_size,
                iters: r.iters as u32,
                wall_sec: r.wall_sec,
                images_per_sec: r.images_per_sec,
            })
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        settle(&env, output)
    }
}

#[napi_derive::napi(ts_return_type = "Promise<BindingBenchmarkResult>")]
pub fn benchmark(options: BindingBenchmarkOptions) -> AsyncTask<BenchTask> {
    AsyncTask::new(BenchTask(options))
}
