//! Turns engine errors and Rust panics into JavaScript errors.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, MutexGuard};

use napi::{Error, Status};

use crate::engine::error::Error as EngineError;

pub fn to_js(e: EngineError) -> Error {
    let status = match e {
        EngineError::Type(_) => Status::InvalidArg,
        _ => Status::GenericFailure,
    };
    Error::new(status, e.to_string())
}

/// Runs `f`, turning a panic into an `Error` instead of letting it unwind into Node.
pub fn guard<T>(f: impl FnOnce() -> Result<T, EngineError>) -> napi::Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(to_js),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(Error::new(
                Status::GenericFailure,
                format!("opslog-native internal error: {msg}"),
            ))
        }
    }
}

/// Locks a mutex even if a panic poisoned it (the panic was already reported as an error).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
