//! Core errors and panics → JS `Error`s with a stable `code`.
use goldpan_core::Error as CoreError;
use napi::{Env, JsValue, Status};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`, turning a panic into `E_INTERNAL` so that it never unwinds into Node.
pub fn guard<T>(f: impl FnOnce() -> Result<T, CoreError>) -> Result<T, CoreError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(CoreError::Internal(format!("panic in goldpan core: {what}")))
    })
}

/// A napi error that materialises as a JS `Error` with `code` set to the core's code, and
/// `progressEvents` (how many progress events preceded it) when given.
pub fn to_js(env: &Env, e: CoreError, progress_events: Option<u32>) -> napi::Error {
    let make = || -> napi::Result<napi::Error> {
        let mut obj = env.create_error(napi::Error::new(Status::GenericFailure, e.to_string()))?;
        obj.set("code", e.code())?;
        if let Some(n) = progress_events {
            obj.set("progressEvents", n)?;
        }
        Ok(napi::Error::from(obj.to_unknown()))
    };
    make().unwrap_or_else(|fallback| fallback)
}

/// Settles an async task's outcome: the value, or a coded JS error.
pub fn settle<T>(env: &Env, outcome: Result<T, CoreError>) -> napi::Result<T> {
    outcome.map_err(|e| to_js(env, e, None))
}

/// For synchronous entry points.
pub fn sync<T>(env: &Env, f: impl FnOnce() -> Result<T, CoreError>) -> napi::Result<T> {
    settle(env, guard(f))
}

/// Converts a JS number (u32) to a usize option.
pub fn opt(v: Option<u32>) -> Option<usize> {
    v.map(|x| x as usize)
}
