//! Cooperative cancellation shared between JS and a running task.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// `cancel()` makes a running task stop within one step.
#[napi_derive::napi]
#[derive(Default)]
pub struct CancelToken {
    flag: Arc<AtomicBool>,
}

#[napi_derive::napi]
impl CancelToken {
    #[napi(constructor)]
    pub fn new() -> Self {
        Self::default()
    }

    #[napi]
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::Relaxed);
    }

    #[napi(getter)]
    pub fn cancelled(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }
}

/// The flag of `token`, or a fresh one that nobody sets.
pub fn flag_of(token: Option<&CancelToken>) -> Arc<AtomicBool> {
    token.map(|t| t.flag.clone()).unwrap_or_default()
}
