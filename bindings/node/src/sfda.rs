//! `sfdaSource` and `sfdaAdapt`: SHOT's source training and source-free adaptation (PUL, SHOT,
//! the baselines) as async tasks. Configs cross as JSON objects read into the core's
//! `SourceConfig` / `AdaptConfig` (camelCase, every field optional, the core's defaults); results
//! come back as the core's `SourceResult` / `AdaptResult` serialized, plus `progressEvents`.
use crate::cancel::CancelToken;
use crate::json::{from_json, JsonValue};
use crate::progress::ProgressFn;
use crate::task::{progress_task, Job, ProgressTask};
use goldpan_core::sfda::{self, AdaptConfig, AdaptResult, SourceConfig, SourceResult};
use goldpan_core::train::Progress;
use goldpan_core::Error as CoreError;
use napi::bindgen_prelude::AsyncTask;
use serde_json::Value;
use std::sync::atomic::AtomicBool;

/// Source training; the config is read on the worker thread, so a bad one rejects like any error.
pub struct SourceJob(Value);

impl Job for SourceJob {
    type Output = SourceResult;
    type JsValue = JsonValue;

    fn run(self, report: &mut dyn FnMut(&Progress), cancel: &AtomicBool) -> Result<SourceResult, CoreError> {
        sfda::train_source(from_json::<SourceConfig>(self.0)?, report, cancel)
    }

    fn finish(r: SourceResult, progress_events: u32) -> Result<JsonValue, CoreError> {
        JsonValue::with_progress_events(&r, progress_events)
    }
}

pub struct AdaptJob(Value);

impl Job for AdaptJob {
    type Output = AdaptResult;
    type JsValue = JsonValue;

    fn run(self, report: &mut dyn FnMut(&Progress), cancel: &AtomicBool) -> Result<AdaptResult, CoreError> {
        sfda::adapt(from_json::<AdaptConfig>(self.0)?, report, cancel)
    }

    fn finish(r: AdaptResult, progress_events: u32) -> Result<JsonValue, CoreError> {
        JsonValue::with_progress_events(&r, progress_events)
    }
}

/// Trains a source model (SHOT: label smoothing, held-out model selection); writes
/// `<outDir>/source.safetensors`. Resolves with the core's `SourceResult` (camelCase).
#[napi_derive::napi(
    ts_args_type = "config: Record<string, unknown>, onProgress?: ((progress: BindingProgress) => void) | undefined | null, token?: CancelToken | undefined | null",
    ts_return_type = "Promise<Record<string, unknown>>"
)]
pub fn sfda_source(
    config: Value,
    on_progress: Option<ProgressFn>,
    token: Option<&CancelToken>,
) -> AsyncTask<ProgressTask<SourceJob>> {
    progress_task(SourceJob(config), on_progress, token)
}

/// Adapts a source model to unlabelled target data with one method; writes
/// `<outDir>/adapted.safetensors`. Resolves with the core's `AdaptResult` (camelCase).
#[napi_derive::napi(
    ts_args_type = "config: Record<string, unknown>, onProgress?: ((progress: BindingProgress) => void) | undefined | null, token?: CancelToken | undefined | null",
    ts_return_type = "Promise<Record<string, unknown>>"
)]
pub fn sfda_adapt(
    config: Value,
    on_progress: Option<ProgressFn>,
    token: Option<&CancelToken>,
) -> AsyncTask<ProgressTask<AdaptJob>> {
    progress_task(AdaptJob(config), on_progress, token)
}
