//! A storage backend implemented in JavaScript, driven by the engine. The engine runs on a
//! worker thread; each backend call is posted to the JavaScript thread through a threadsafe
//! function and the worker waits for the returned promise. The JavaScript side (lib/js-backend.js)
//! converts between these text payloads and the shapes `StorageBackend` methods take.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

use napi::bindgen_prelude::{FnArgs, Promise};
use napi::threadsafe_function::ThreadsafeFunction;
use napi::Status;

use super::guard::lock;
use super::payload::{items_json, pairs, records_json};
use opslog_engine::backend::{Backend, VecStream};
use opslog_engine::batch::BatchStream;
use opslog_engine::error::{Error, Result};
use opslog_engine::manifest::Manifest;
use opslog_engine::records::Records;
use opslog_engine::wal::{self, ReadResult};

pub type Args = FnArgs<(String, Option<String>, Option<String>)>;
pub type Dispatch = ThreadsafeFunction<Args, Promise<Option<String>>, Args, Status, false, true>;

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
    fn call(&self, method: &str, a: Option<String>, b: Option<String>) -> Result<Option<String>> {
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

    fn call_text(&self, method: &str, a: Option<String>, b: Option<String>) -> Result<String> {
        self.call(method, a, b)?
            .ok_or_else(|| Error::Backend(format!("storage backend: {method}() returned nothing")))
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
            read_only.then(|| "1".to_string()),
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
            None => Ok(None),
            Some(text) => Manifest::parse(&text).map(Some).map_err(Error::Corrupt),
        }
    }

    fn manifest_version(&self) -> Result<Option<String>> {
        self.call("getManifestVersion", None, None)
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
            Some(version.to_string()),
        )
    }

    fn load_snapshot(&self, rel: &str) -> Result<(Records, f64)> {
        let text = self.call_text("loadSnapshot", Some(rel.to_string()), None)?;
        let members = opslog_engine::json::object_members(&text)
            .map_err(|e| Error::Backend(e.to_string()))?;
        let get = |k: &str| members.iter().find(|m| m.key == k).map(|m| m.value);
        let version = get("\"version\"")
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(1.0);
        let mut records = Records::default();
        for (id, data) in pairs(get("\"items\"").unwrap_or("[]"))? {
            records.set(&id, &data)?;
        }
        Ok((records, version))
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
            Some(format!("[{}]", ops.join(","))),
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
        Ok(self.call("acquireCompactionLock", None, None)?.as_deref() == Some("1"))
    }

    fn release_compaction_lock(&self) -> Result<()> {
        self.call("releaseCompactionLock", None, None).map(|_| ())
    }

    fn write_archive_segment(&self, period: &str, records: &[(String, String)]) -> Result<String> {
        let items = items_json(records.iter().map(|(id, t)| (id.as_str(), t.as_str())));
        self.call_text("writeArchiveSegment", Some(period.to_string()), Some(items))
    }

    fn load_archive_segment(&self, rel: &str) -> Result<Vec<(String, String)>> {
        self.load_items("loadArchiveSegment", rel)
    }
}
