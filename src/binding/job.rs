//! A closure run on a libuv worker thread; its result resolves a JavaScript promise.

use napi::bindgen_prelude::{AsyncTask, Buffer};
use napi::{Env, Task};

use super::guard::guard;
use crate::engine::error::Error as EngineError;

type Work<T> = Box<dyn FnOnce() -> Result<T, EngineError> + Send>;

/// Resolves to JSON text or null.
pub struct Job {
    work: Option<Work<Option<String>>>,
}

impl Task for Job {
    type Output = Option<String>;
    type JsValue = Option<String>;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        guard(self.work.take().expect("a job runs once"))
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(output)
    }
}

pub fn spawn(
    work: impl FnOnce() -> Result<Option<String>, EngineError> + Send + 'static,
) -> AsyncTask<Job> {
    AsyncTask::new(Job {
        work: Some(Box::new(work)),
    })
}

/// Resolves to a Buffer.
pub struct BytesJob {
    work: Option<Work<Vec<u8>>>,
}

impl Task for BytesJob {
    type Output = Vec<u8>;
    type JsValue = Buffer;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        guard(self.work.take().expect("a job runs once"))
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(output.into())
    }
}

pub fn spawn_bytes(
    work: impl FnOnce() -> Result<Vec<u8>, EngineError> + Send + 'static,
) -> AsyncTask<BytesJob> {
    AsyncTask::new(BytesJob {
        work: Some(Box::new(work)),
    })
}
