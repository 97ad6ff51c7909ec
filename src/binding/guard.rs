//! Turns engine errors and Rust panics into JavaScript errors.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, MutexGuard};

use napi::{Error, Status};

use opslog_engine::error::Error as EngineError;

pub fn to_js(e: EngineError) -> Error {
    let status = match e {
        EngineError::Type(_) => Status::InvalidArg,
        _ => Status::GenericFailure,
    };
    let mut err = Error::new(status, e.to_string());
    if let Some(details) = os_error_details(&e) {
        err.set_cause(Error::new(Status::GenericFailure, details));
    }
    err
}

/// What lib/errors.js needs to give a failed system call Node's shape, carried as the error's
/// `cause`: `opslog:os-error {"errno":-28,"syscall":"write","path":"..."}`. `errno` is libuv's
/// (the negated POSIX number), the key of `util.getSystemErrorMap()`.
fn os_error_details(e: &EngineError) -> Option<String> {
    let EngineError::Io {
        syscall,
        path,
        dest,
        source,
    } = e
    else {
        return None;
    };
    // Elsewhere the raw number is not a POSIX errno (Windows error codes): the engine's message stays.
    if !cfg!(unix) {
        return None;
    }
    let mut details = serde_json::json!({
        "errno": -source.raw_os_error()?,
        "syscall": syscall,
        "path": path,
    });
    if let Some(dest) = dest {
        details["dest"] = dest.as_str().into();
    }
    Some(format!("opslog:os-error {details}"))
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
