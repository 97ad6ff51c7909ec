//! Engine work run off the JavaScript thread; its result settles a JavaScript promise.
//!
//! Work for the native filesystem runs on libuv's thread pool. Work for a storage backend written
//! in JavaScript runs on a thread of its own: it waits for the backend's promises, and a backend
//! whose own I/O needs the pool (`node:fs/promises` does) would deadlock once every pool thread
//! was waiting on it.

use napi::bindgen_prelude::{AsyncTask, Buffer, ToNapiValue, TypeName};
use napi::{sys, Env, JsValue, Task};

use super::guard::guard;
use super::text::{BatchText, Text};
use opslog_engine::batch::Batch;
use opslog_engine::error::Error as EngineError;

type Work<T> = Box<dyn FnOnce() -> Result<T, EngineError> + Send>;

/// What a job's result becomes in JavaScript. `into_js` runs on the thread that did the work,
/// so whatever can be prepared there is off the JavaScript thread.
pub trait Output: Send + 'static {
    type Js: ToNapiValue + TypeName + Send;
    fn into_js(self) -> Self::Js;
}

/// JSON text or null.
impl Output for Option<String> {
    type Js = Option<Text>;
    fn into_js(self) -> Self::Js {
        self.map(Text::from)
    }
}

/// A stream batch or null.
impl Output for Option<Batch> {
    type Js = Option<BatchText>;
    fn into_js(self) -> Self::Js {
        self.map(BatchText::from)
    }
}

impl Output for Vec<u8> {
    type Js = Buffer;
    fn into_js(self) -> Self::Js {
        self.into()
    }
}

pub struct PoolTask<T> {
    work: Option<Work<T>>,
}

impl<T: Output> Task for PoolTask<T> {
    type Output = T::Js;
    type JsValue = T::Js;

    fn compute(&mut self) -> napi::Result<T::Js> {
        guard(self.work.take().expect("a job runs once")).map(T::into_js)
    }

    fn resolve(&mut self, _env: Env, output: T::Js) -> napi::Result<T::Js> {
        Ok(output)
    }
}

/// A promise for the result of engine work.
pub enum Job<T: Output = Option<String>> {
    Pool(AsyncTask<PoolTask<T>>),
    Thread(Work<T>),
}

impl<T: Output> Job<T> {
    /// `own_thread` for work that waits on a JavaScript backend.
    pub fn new(
        own_thread: bool,
        work: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
    ) -> Self {
        if own_thread {
            Job::Thread(Box::new(work))
        } else {
            Job::Pool(AsyncTask::new(PoolTask {
                work: Some(Box::new(work)),
            }))
        }
    }
}

/// Work on the thread pool (filesystem only).
pub fn spawn(work: impl FnOnce() -> Result<Option<String>, EngineError> + Send + 'static) -> Job {
    Job::new(false, work)
}

pub fn spawn_bytes(
    work: impl FnOnce() -> Result<Vec<u8>, EngineError> + Send + 'static,
) -> Job<Vec<u8>> {
    Job::new(false, work)
}

type Resolver<T> = Box<dyn FnOnce(Env) -> napi::Result<<T as Output>::Js>>;

impl<T: Output> ToNapiValue for Job<T> {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        match val {
            Job::Pool(task) => AsyncTask::to_napi_value(env, task),
            Job::Thread(work) => {
                let env = Env::from_raw(env);
                let (deferred, promise) = env.create_deferred::<T::Js, Resolver<T>>()?;
                std::thread::Builder::new()
                    .name("opslog-backend".into())
                    .spawn(move || match guard(work) {
                        Ok(v) => {
                            let js = v.into_js();
                            deferred.resolve(Box::new(move |_| Ok(js)))
                        }
                        Err(e) => deferred.reject(e),
                    })
                    .map_err(|e| napi::Error::from_reason(format!("cannot start a thread: {e}")))?;
                Ok(promise.raw())
            }
        }
    }
}

/// `Output` for values that go to JavaScript as they are (`#[napi(object)]` structs, enums).
macro_rules! as_is_output {
    ($($t:ty),* $(,)?) => {
        $(impl $crate::binding::job::Output for $t {
            type Js = $t;
            fn into_js(self) -> Self::Js {
                self
            }
        })*
    };
}
pub(crate) use as_is_output;
