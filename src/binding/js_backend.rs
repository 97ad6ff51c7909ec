//! A storage backend implemented in JavaScript, driven by the engine. The engine runs on a
//! worker thread; each backend call is posted to the JavaScript thread through a threadsafe
//! function and the worker waits for the returned promise. The JavaScript side (lib/js-backend.js)
//! converts between these payloads and the shapes `StorageBackend` methods take: records and ops
//! cross as JSON text, everything else (flags, versions, paths) as typed values.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

use napi::bindgen_prelude::{Either3, Either4, FnArgs, Promise};
use napi::threadsafe_function::ThreadsafeFunction;
use napi::Status;

use super::guard::lock;
use super::payload::{items_json, pairs, records_json};
use opslog_engine::backend::{Backend, ManifestVersion, VecStream};
use opslog_engine::batch::BatchStream;
use opslog_engine::error::{Error, Result};
use opslog_engine::manifest::Manifest;
use opslog_engine::records::Records;
use opslog_engine::wal::{self, ReadResult};

/// A call's second argument: text, or `initialize`'s read-only flag, or `writeSnapshot`'s version.
pub type Arg = Either3<String, bool, f64>;
/// The method's name, then its arguments.
pub type Args = FnArgs<(String, Option<String>, Option<Arg>)>;
/// What a method's promise resolves to: a path or JSON text, `acquireCompactionLock`'s answer, a
/// manifest version, or a loaded snapshot; null for nothing.
pub type Reply = Option<Either4<String, bool, f64, LoadedSnapshot>>;
pub type Dispatch = ThreadsafeFunction<Args, Promise<Reply>, Args, Status, false, true>;

/// `loadSnapshot`'s answer: the snapshot's version and its records as `[id, record, ...]` text.
#[napi_derive::napi(object)]
pub struct LoadedSnapshot {
    pub version: f64,
    pub items: String,
}

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to completion on this (worker) thread.
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park(),
        }
    }
}

pub struct JsBackend {
    dispatch: Mutex<Option<Arc<Dispatch>>>,
    dir: String,
}

impl JsBackend {
    pub fn new(dispatch: Dispatch, dir: String) -> Self {
        JsBackend {
            dispatch: Mutex::new(Some(Arc::new(dispatch))),
            dir,
        }
    }

    /// Calls `method` on the JavaScript backend and waits for its promise.
    fn call(&self, method: &str, a: Option<String>, b: Option<Arg>) -> Result<Reply> {
        let dispatch = lock(&self.dispatch).clone();
        let Some(dispatch) = dispatch else {
            return Err(Error::not_open());
        };
        let args: Args = (method.to_string(), a, b).into();
        block_on(async move {
            let promise = dispatch.call_async_catch(args).await?;
            promise.await
        })
        .map_err(|e| Error::Backend(e.reason.clone()))
    }

    /// A call whose answer is text (a path, JSON).
    fn call_text(&self, method: &str, a: Option<String>, b: Option<Arg>) -> Result<String> {
        match self.call(method, a, b)? {
            Some(Either4::A(text)) => Ok(text),
            _ => Err(Error::Backend(format!(
                "storage backend: {method}() returned no text"
            ))),
        }
    }

    fn load_items(&self, method: &str, rel: &str) -> Result<Vec<(String, String)>> {
        pairs(&self.call_text(method, Some(rel.to_string()), None)?)
    }

    /// The backend's ops as newline-separated lines, in the op-file layout the engine tracks.
    fn op_lines(&self, rel: &str) -> Result<ReadResult> {
        let text = self.call_text("readOps", Some(rel.to_string()), None)?;
        let elements = opslog_engine::json::array_elements(&text)
            .map_err(|e| Error::Backend(e.to_string()))?;
        let mut bytes = Vec::with_capacity(text.len());
        for e in elements {
            bytes.extend_from_slice(e.as_bytes());
            bytes.push(b'\n');
        }
        Ok(wal::parse_lines(&bytes, 0))
    }
}

impl Backend for JsBackend {
    fn display(&self) -> &str {
        &self.dir
    }

    fn callable_from_any_thread(&self) -> bool {
        false
    }

    fn initialize(&self, read_only: bool) -> Result<()> {
        self.call(
            "initialize",
            Some(self.dir.clone()),
            Some(Either3::B(read_only)),
        )
        .map(|_| ())
    }

    fn shutdown(&self) -> Result<()> {
        let result = self.call("shutdown", None, None).map(|_| ());
        // Nothing calls the backend after shutdown; let the threadsafe function go.
        lock(&self.dispatch).take();
        result
    }

    fn acquire_lock(&self) -> Result<()> {
        self.call("acquireLock", None, None).map(|_| ())
    }

    fn release_lock(&self) -> Result<()> {
        self.call("releaseLock", None, None).map(|_| ())
    }

    fn read_manifest(&self) -> Result<Option<Manifest>> {
        match self.call("readManifest", None, None)? {
            Some(Either4::A(text)) => Manifest::parse(&text).map(Some).map_err(Error::Corrupt),
            _ => Ok(None),
        }
    }

    fn manifest_version(&self) -> Result<Option<ManifestVersion>> {
        Ok(match self.call("getManifestVersion", None, None)? {
            Some(Either4::A(text)) => Some(ManifestVersion::Text(text)),
            Some(Either4::C(n)) => Some(ManifestVersion::Number(n)),
            _ => None,
        })
    }

    fn remote(&self) -> bool {
        true
    }

    fn write_manifest(&self, manifest: &Manifest) -> Result<()> {
        self.call("writeManifest", Some(manifest.encode()), None)
            .map(|_| ())
    }

    fn write_snapshot(&self, records: &Records, version: f64) -> Result<String> {
        self.call_text(
            "writeSnapshot",
            Some(records_json(records)?),
            Some(Either3::C(version)),
        )
    }

    fn load_snapshot(&self, rel: &str) -> Result<(Records, f64)> {
        let Some(Either4::D(loaded)) = self.call("loadSnapshot", Some(rel.to_string()), None)?
        else {
            return Err(Error::Backend(
                "storage backend: loadSnapshot() returned no snapshot".into(),
            ));
        };
        let mut records = Records::default();
        for (id, data) in pairs(&loaded.items)? {
            records.set(&id, &data)?;
        }
        Ok((records, loaded.version))
    }

    fn stream_snapshot(&self, rel: &str) -> Result<Box<dyn BatchStream>> {
        let (records, version) = self.load_snapshot(rel)?;
        let pairs = records.pairs()?;
        Ok(Box::new(VecStream::new(pairs, Some(version))))
    }

    fn read_ops(&self, rel: &str, from: u64, _live: bool) -> Result<ReadResult> {
        let mut read = self.op_lines(rel)?;
        read.ops.retain(|l| l.pos >= from);
        Ok(read)
    }

    fn create_ops_file(&self) -> Result<String> {
        self.call_text("createOpsFile", None, None)
    }

    fn open_for_append(&self, _rel: &str, _read: &ReadResult) -> Result<()> {
        Ok(())
    }

    fn append_ops(&self, rel: &str, lines: &[u8]) -> Result<()> {
        let text = String::from_utf8_lossy(lines);
        let ops: Vec<&str> = text.split('\n').filter(|l| !l.is_empty()).collect();
        self.call(
            "appendOps",
            Some(rel.to_string()),
            Some(Either3::A(format!("[{}]", ops.join(",")))),
        )
        .map(|_| ())
    }

    fn truncate_ops(&self, rel: &str, _pos: u64) -> Result<()> {
        self.call("truncateLastOp", Some(rel.to_string()), None)
            .map(|_| ())
    }

    fn create_agent_ops_file(&self, agent: &str) -> Result<String> {
        self.call_text("createAgentOpsFile", Some(agent.to_string()), None)
    }

    fn try_compaction_lock(&self) -> Result<bool> {
        Ok(matches!(
            self.call("acquireCompactionLock", None, None)?,
            Some(Either4::B(true))
        ))
    }

    fn release_compaction_lock(&self) -> Result<()> {
        self.call("releaseCompactionLock", None, None).map(|_| ())
    }

    fn write_archive_segment(&self, period: &str, records: &[(String, String)]) -> Result<String> {
        let items = items_json(records.iter().map(|(id, t)| (id.as_str(), t.as_str())));
        self.call_text(
            "writeArchiveSegment",
            Some(period.to_string()),
            Some(Either3::A(items)),
        )
    }

    fn load_archive_segment(&self, rel: &str) -> Result<Vec<(String, String)>> {
        self.load_items("loadArchiveSegment", rel)
    }
}
