//! `ntkAnalyse`: the empirical neural tangent kernel of a checkpoint's logits over the first `n`
//! images of a split — the kernel (full, blocks or trace), its spectrum, the Eq. 7 block check and
//! the `.npy` files — as an async task. The config crosses as a JSON object read into the core's
//! `NtkConfig` (camelCase, every field optional, the core's defaults).
use crate::cancel::CancelToken;
use crate::json::{from_json, JsonValue};
use crate::progress::ProgressFn;
use crate::task::{progress_task, Job, ProgressTask};
use goldpan_core::ntk::{self, NtkConfig, NtkReport};
use goldpan_core::train::Progress;
use goldpan_core::Error as CoreError;
use napi::bindgen_prelude::AsyncTask;
use serde_json::Value;
use std::sync::atomic::AtomicBool;

/// The analysis a config asks for; it is read on the worker thread, so a bad one rejects like any
/// error.
pub struct NtkJob(Value);

impl Job for NtkJob {
    type Output = NtkReport;
    type JsValue = JsonValue;

    fn run(self, report: &mut dyn FnMut(&Progress), cancel: &AtomicBool) -> Result<NtkReport, CoreError> {
        ntk::analyse(&from_json::<NtkConfig>(self.0)?, report, cancel)
    }

    fn finish(r: NtkReport, progress_events: u32) -> Result<JsonValue, CoreError> {
        JsonValue::with_progress_events(&r, progress_events)
    }
}

/// The kernel (`kernel`, by `method`), its eigenvalues (`eigen`, and the Lanczos `topK`), the
/// Eq. 7 block check and, with `outDir`, `kernel.npy`, `eigenvalues.npy`, `top_eigenvalues.npy`
/// and `ntk.json`. Resolves with the core's `NtkReport` (camelCase); progress: an "analysis" event
/// as each phase ("kernel", "eigen") starts and when "top-k" ends; a kernel larger than
/// `memoryBudget` rejects with `E_MEMORY`.
#[napi_derive::napi(
    ts_args_type = "config: Record<string, unknown>, onProgress?: ((progress: BindingProgress) => void) | undefined | null, token?: CancelToken | undefined | null",
    ts_return_type = "Promise<Record<string, unknown>>"
)]
pub fn ntk_analyse(
    config: Value,
    on_progress: Option<ProgressFn>,
    token: Option<&CancelToken>,
) -> AsyncTask<ProgressTask<NtkJob>> {
    progress_task(NtkJob(config), on_progress, token)
}
