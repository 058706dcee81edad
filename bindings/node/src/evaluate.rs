//! `evaluate`: a checkpoint's loss and accuracy on a dataset split.
use crate::cancel::{flag_of, CancelToken};
use crate::error::{guard, opt, settle};
use goldpan_core::data::Split;
use goldpan_core::train::evaluate_checkpoint;
use goldpan_core::Error as CoreError;
use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Task};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

#[napi_derive::napi(object)]
pub struct BindingEvalOptions {
    pub checkpoint: String,
    pub data_dir: String,
    pub split: String,
    pub limit: Option<u32>,
    pub batch_size: Option<u32>,
    pub device: Option<String>,
}

#[napi_derive::napi(object)]
pub struct BindingEvalResult {
    pub model: String,
    pub dataset: String,
    pub split: String,
    pub count: u32,
    pub loss: f64,
    pub accuracy: f64,
    pub wall_sec: f64,
}

pub struct EvalTask {
    options: BindingEvalOptions,
    cancel: Arc<AtomicBool>,
}

impl Task for EvalTask {
    type Output = Result<BindingEvalResult, CoreError>;
    type JsValue = BindingEvalResult;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let _retain = crate::alloc::RetainFreed::new();
        let o = &self.options;
        Ok(guard(|| {
            let split = match o.split.as_str() {
                "train" => Split::Train,
                "test" => Split::Test,
                other => {
                    return Err(CoreError::Config {
                        field: "split".into(),
                        reason: format!("expected \"train\" or \"test\", got {other:?}"),
                    })
                }
            };
            let device = o.device.as_deref().unwrap_or("cpu");
            let batch = opt(o.batch_size).unwrap_or(1000);
            let (state, r) = evaluate_checkpoint(
                &PathBuf::from(&o.checkpoint),
                &PathBuf::from(&o.data_dir),
                split,
                opt(o.limit),
                batch,
                device,
                Some(&self.cancel),
            )?;
            Ok(BindingEvalResult {
                model: state.config.model.clone(),
                dataset: state.config.dataset.clone(),
                split: o.split.clone(),
                count: r.count as u32,
                loss: r.loss,
                accuracy: r.accuracy,
                wall_sec: r.wall_sec,
            })
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        settle(&env, output)
    }
}

/// Evaluates a checkpoint on a split of its dataset.
#[napi_derive::napi(ts_return_type = "Promise<BindingEvalResult>")]
pub fn evaluate(options: BindingEvalOptions, token: Option<&CancelToken>) -> AsyncTask<EvalTask> {
    AsyncTask::new(EvalTask { options, cancel: flag_of(token) })
}
