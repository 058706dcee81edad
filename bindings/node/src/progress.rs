//! Progress events to JS: [`BindingProgress`] and the non-blocking callback that counts what it
//! sent, shared by every long task (training, SFDA, Hessian and NTK analyses).
use goldpan_core::train::{Progress, ProgressKind};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

#[napi_derive::napi(object)]
pub struct BindingProgress {
    /// "step" every `progressEvery` steps, "epoch" at the end of each epoch (with test metrics),
    /// "diagnostics" every `diagnosticsEvery` steps (after that step's update, `step` the measured
    /// step), "analysis" after each Hessian–vector product of a Hessian analysis (`step` counts
    /// them) or at each phase of an NTK analysis.
    pub kind: String,
    pub epoch: u32,
    pub epochs: u32,
    pub step: u32,
    pub step_in_epoch: u32,
    pub steps_per_epoch: u32,
    /// Mean training loss / accuracy over the steps since the previous event.
    pub loss: f64,
    pub accuracy: f64,
    pub images_per_sec: f64,
    pub elapsed_sec: f64,
    pub test_loss: Option<f64>,
    pub test_accuracy: Option<f64>,
    pub checkpoint: Option<String>,
    /// A "diagnostics" event's measurements (`{eq3: {…}, ntk: {…}, swing: {…}, speed: {…}}`, and
    /// an epoch's `{swing}` over the training set) or an "analysis" event's `{phase}` ("eigen",
    /// "trace", "density" of a Hessian analysis; "kernel", "eigen", "top-k" of an NTK one).
    #[napi(ts_type = "Record<string, any>")]
    pub diagnostics: Option<serde_json::Value>,
}

impl From<&Progress> for BindingProgress {
    fn from(p: &Progress) -> Self {
        BindingProgress {
            kind: match p.kind {
                ProgressKind::Step => "step",
                ProgressKind::Epoch => "epoch",
                ProgressKind::Diagnostics => "diagnostics",
                ProgressKind::Analysis => "analysis",
            }
            .into(),
            epoch: p.epoch as u32,
            epochs: p.epochs as u32,
            step: p.step as u32,
            step_in_epoch: p.step_in_epoch as u32,
            steps_per_epoch: p.steps_per_epoch as u32,
            loss: p.loss,
            accuracy: p.accuracy,
            images_per_sec: p.images_per_sec,
            elapsed_sec: p.elapsed_sec,
            test_loss: p.test_loss,
            test_accuracy: p.test_accuracy,
            checkpoint: p.checkpoint.as_ref().map(|c| c.display().to_string()),
            diagnostics: p.diagnostics.clone(),
        }
    }
}

/// JS progress callback, called without blocking the computing thread.
pub type ProgressFn = ThreadsafeFunction<BindingProgress, (), BindingProgress, Status, false>;

/// A task's progress channel: the optional JS callback and how many events were queued to it.
/// Events travel on another native queue than the task's result and may arrive just after it,
/// so the result carries that count (`progressEvents`) and the SDK waits for as many.
pub struct ProgressSink {
    callback: Option<Arc<ProgressFn>>,
    sent: Arc<AtomicU32>,
}

impl ProgressSink {
    pub fn new(callback: Option<ProgressFn>) -> Self {
        Self { callback: callback.map(Arc::new), sent: Arc::default() }
    }

    /// The reporter for the computing thread: queues each event without blocking.
    pub fn reporter(&self) -> impl FnMut(&Progress) + Send + 'static {
        let (callback, sent) = (self.callback.clone(), self.sent.clone());
        move |p: &Progress| {
            if let Some(f) = &callback {
                if f.call(p.into(), ThreadsafeFunctionCallMode::NonBlocking) == Status::Ok {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Drops the callback, so that it no longer keeps the event loop alive, and returns how many
    /// events were sent.
    pub fn close(&mut self) -> u32 {
        self.callback = None;
        self.sent.load(Ordering::Relaxed)
    }
}
