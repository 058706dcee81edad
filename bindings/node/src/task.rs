//! Long-running work as a napi `AsyncTask`: a [`Job`] runs on libuv's thread pool with a progress
//! reporter and a cancel flag; a panic becomes `E_INTERNAL`; the outcome settles as the job's
//! JS value (with `progressEvents`) or a coded JS error (with `progressEvents` too).
use crate::cancel::{flag_of, CancelToken};
use crate::error::{guard, to_js};
use crate::progress::{ProgressFn, ProgressSink};
use goldpan_core::train::Progress;
use goldpan_core::Error as CoreError;
use napi::bindgen_prelude::{AsyncTask, ToNapiValue, TypeName};
use napi::{Env, Task};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// One kind of long work: how it runs off the JS thread and what it resolves with.
pub trait Job: Send + 'static {
    type Output: Send + 'static;
    type JsValue: ToNapiValue + TypeName;

    fn run(self, report: &mut dyn FnMut(&Progress), cancel: &AtomicBool) -> Result<Self::Output, CoreError>;

    /// The JS value of a finished run; `progress_events` is how many progress events were sent.
    fn finish(output: Self::Output, progress_events: u32) -> Result<Self::JsValue, CoreError>;
}

pub struct ProgressTask<J: Job> {
    job: Option<J>,
    progress: ProgressSink,
    cancel: Arc<AtomicBool>,
}

impl<J: Job> Task for ProgressTask<J> {
    type Output = Result<J::Output, CoreError>;
    type JsValue = J::JsValue;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let _retain = crate::alloc::RetainFreed::new();
        let job = self.job.take();
        let mut report = self.progress.reporter();
        let cancel = self.cancel.clone();
        Ok(guard(move || match job {
            Some(job) => job.run(&mut report, &cancel),
            None => Err(CoreError::Internal("task ran twice".into())),
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        let events = self.progress.close();
        output.and_then(|o| J::finish(o, events)).map_err(|e| to_js(&env, e, Some(events)))
    }
}

/// `job` as an async task reporting to `on_progress` and stopped by `token`.
pub fn progress_task<J: Job>(
    job: J,
    on_progress: Option<ProgressFn>,
    token: Option<&CancelToken>,
) -> AsyncTask<ProgressTask<J>> {
    AsyncTask::new(ProgressTask { job: Some(job), progress: ProgressSink::new(on_progress), cancel: flag_of(token) })
}
