//! `hessianAnalyse` and `hessianHvp`: the loss Hessian of a checkpoint over a sample set — top
//! eigenpairs, trace and spectral density, or one exact Hessian–vector product — as async tasks.
//! The config crosses as a JSON object read into the core's `HessianConfig` (camelCase, every
//! field optional, the core's defaults); vectors cross as `Float64Array`s in parameter order.
use crate::cancel::CancelToken;
use crate::json::{from_json, JsonValue};
use crate::progress::ProgressFn;
use crate::task::{progress_task, Job, ProgressTask};
use goldpan_core::hessian::{self, HessianConfig, HessianReport, HvpResult};
use goldpan_core::train::Progress;
use goldpan_core::Error as CoreError;
use napi::bindgen_prelude::{AsyncTask, Float64Array};
use serde_json::Value;
use std::sync::atomic::AtomicBool;

/// The analyses a config asks for; it is read on the worker thread, so a bad one rejects like any
/// error.
pub struct AnalyseJob(Value);

impl Job for AnalyseJob {
    type Output = HessianReport;
    type JsValue = JsonValue;

    fn run(self, report: &mut dyn FnMut(&Progress), cancel: &AtomicBool) -> Result<HessianReport, CoreError> {
        hessian::analyse(&from_json::<HessianConfig>(self.0)?, report, cancel)
    }

    fn finish(r: HessianReport, progress_events: u32) -> Result<JsonValue, CoreError> {
        JsonValue::with_progress_events(&r, progress_events)
    }
}

/// One product `H·v` with the loss and gradient at the checkpoint's weights (flat, parameter order).
#[napi_derive::napi(object)]
pub struct BindingHvpResult {
    pub loss: f64,
    pub gradient: Float64Array,
    pub hv: Float64Array,
    pub wall_sec: f64,
}

pub struct HvpJob {
    config: Value,
    vector: Vec<f64>,
}

impl Job for HvpJob {
    type Output = HvpResult;
    type JsValue = BindingHvpResult;

    fn run(self, _report: &mut dyn FnMut(&Progress), cancel: &AtomicBool) -> Result<HvpResult, CoreError> {
        hessian::hvp(&from_json::<HessianConfig>(self.config)?, &self.vector, cancel)
    }

    fn finish(r: HvpResult, _progress_events: u32) -> Result<BindingHvpResult, CoreError> {
        Ok(BindingHvpResult { loss: r.loss, gradient: r.gradient.into(), hv: r.hv.into(), wall_sec: r.wall_sec })
    }
}

/// Top eigenpairs (`topK`), trace (`trace`) and spectral density (`density`) of the mean loss's
/// Hessian over the first `samples` images of a split. Resolves with the core's `HessianReport`
/// (camelCase); progress: one "analysis" event per Hessian–vector product.
#[napi_derive::napi(
    ts_args_type = "config: Record<string, unknown>, onProgress?: ((progress: BindingProgress) => void) | undefined | null, token?: CancelToken | undefined | null",
    ts_return_type = "Promise<Record<string, unknown>>"
)]
pub fn hessian_analyse(
    config: Value,
    on_progress: Option<ProgressFn>,
    token: Option<&CancelToken>,
) -> AsyncTask<ProgressTask<AnalyseJob>> {
    progress_task(AnalyseJob(config), on_progress, token)
}

/// One exact Hessian–vector product over the config's sample set; `vector` has one value per
/// parameter (else `E_SHAPE`).
#[napi_derive::napi(
    ts_args_type = "config: Record<string, unknown>, vector: Float64Array, token?: CancelToken | undefined | null",
    ts_return_type = "Promise<BindingHvpResult>"
)]
pub fn hessian_hvp(
    config: Value,
    vector: Float64Array,
    token: Option<&CancelToken>,
) -> AsyncTask<ProgressTask<HvpJob>> {
    progress_task(HvpJob { config, vector: vector.to_vec() }, None, token)
}
