//! A closure run on a libuv worker thread, resolving to JSON text (or null) in JavaScript.

use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Task};

use super::guard::guard;
use crate::engine::error::Error as EngineError;

type Work = Box<dyn FnOnce() -> Result<Option<String>, EngineError> + Send>;

pub struct Job {
    work: Option<Work>,
}

impl Task for Job {
    type Output = Option<String>;
    type JsValue = Option<String>;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let work = self.work.take().expect("a job runs once");
        guard(work)
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(output)
    }
}

pub fn spawn(work: impl FnOnce() -> Result<Option<String>, EngineError> + Send + 'static) -> AsyncTask<Job> {
    AsyncTask::new(Job { work: Some(Box::new(work)) })
}
