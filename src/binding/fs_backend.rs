//! `NativeFsBackend`: the filesystem backend's methods for direct use from JavaScript (the
//! exported `FsBackend`). Every method runs on a worker; records and ops cross as JSON text,
//! everything else as typed values.

use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;

use super::guard::lock;
use super::job::{as_is_output, spawn, spawn_bytes, Job, Output};
use super::js_backend::LoadedSnapshot;
use super::payload::{items_json, pairs, records_json};
use opslog_engine::backend::Backend;
use opslog_engine::error::{Error, Result};
use opslog_engine::fs_backend::{FsBackend, MANIFEST_FILE};
use opslog_engine::fsutil;
use opslog_engine::manifest::Manifest;
use opslog_engine::records::Records;

#[napi]
pub struct NativeFsBackend {
    inner: Arc<Mutex<Option<Arc<FsBackend>>>>,
    dir: Arc<Mutex<String>>,
}

impl NativeFsBackend {
    fn backend(&self) -> Result<Arc<FsBackend>> {
        lock(&self.inner).clone().ok_or_else(|| {
            Error::Invalid("FsBackend is not initialized. Call initialize() first.".into())
        })
    }

    /// Runs `f` with the backend on a worker.
    fn run<T: Output>(&self, f: impl FnOnce(&FsBackend) -> Result<T> + Send + 'static) -> Job<T> {
        let backend = self.backend();
        Job::new(false, move || f(&*backend?))
    }
}

#[napi]
impl NativeFsBackend {
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        NativeFsBackend {
            inner: Arc::new(Mutex::new(None)),
            dir: Arc::new(Mutex::new(String::new())),
        }
    }

    #[napi(getter)]
    pub fn dir(&self) -> String {
        lock(&self.dir).clone()
    }

    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn initialize(&self, dir: String, read_only: bool) -> Job {
        let inner = self.inner.clone();
        *lock(&self.dir) = dir.clone();
        spawn(move || {
            let backend = FsBackend::new(&dir);
            backend.initialize(read_only)?;
            *lock(&inner) = Some(Arc::new(backend));
            Ok(None)
        })
    }

    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn shutdown(&self) -> Job {
        self.run(|b| b.shutdown().map(|_| None))
    }

    /// The manifest file's text once it validates, or null when there is none.
    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn read_manifest(&self) -> Job {
        self.run(|b| {
            if b.read_manifest()?.is_none() {
                return Ok(None);
            }
            Ok(Some(fsutil::read_text(&b.dir().join(MANIFEST_FILE))?))
        })
    }

    /// Writes the manifest text as given (the caller's `JSON.stringify(manifest, null, 2)`).
    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn write_manifest(&self, text: String) -> Job {
        self.run(move |b| {
            Manifest::parse(&text).map_err(Error::Type)?;
            fsutil::write_replace(&b.dir().join(MANIFEST_FILE), |w| {
                w.write_all(text.as_bytes())
            })?;
            Ok(None)
        })
    }

    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn write_snapshot(&self, items: String, version: f64) -> Job {
        self.run(move |b| {
            let mut records = Records::default();
            for (id, text) in pairs(&items)? {
                records.set(&id, &text)?;
            }
            b.write_snapshot(&records, version).map(Some)
        })
    }

    #[napi(ts_return_type = "Promise<LoadedSnapshot>")]
    pub fn load_snapshot(&self, rel: String) -> Job<LoadedSnapshot> {
        self.run(move |b| {
            let (records, version) = b.load_snapshot(&rel)?;
            let items = records_json(&records)?;
            Ok(LoadedSnapshot { version, items })
        })
    }

    /// Appends op lines (each `JSON.stringify(op)` followed by a newline).
    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn append_ops(&self, rel: String, lines: String) -> Job {
        self.run(move |b| b.append_to_file(&rel, lines.as_bytes()).map(|_| None))
    }

    /// The file's valid op lines, as a JSON array.
    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn read_ops(&self, rel: String) -> Job {
        self.run(move |b| {
            let read = b.read_ops(&rel, 0, false)?;
            let lines: Vec<&str> = read.ops.iter().map(|l| &*l.line).collect();
            Ok(Some(format!("[{}]", lines.join(","))))
        })
    }

    /// Whether there was a line to cut.
    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn truncate_last_op(&self, rel: String) -> Job<bool> {
        self.run(move |b| b.truncate_last_op(&rel))
    }

    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn create_ops_file(&self) -> Job {
        self.run(|b| {
            let rel = b.create_ops_file()?;
            fsutil::sync_dir(&b.dir().join(&rel))?;
            b.shutdown()?;
            Ok(Some(rel))
        })
    }

    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn create_agent_ops_file(&self, agent: String) -> Job {
        self.run(move |b| {
            let rel = b.create_agent_ops_file(&agent)?;
            fsutil::sync_dir(&b.dir().join(&rel))?;
            b.shutdown()?;
            Ok(Some(rel))
        })
    }

    #[napi(ts_return_type = "Promise<string[]>")]
    pub fn list_ops_files(&self) -> Job<Vec<String>> {
        self.run(|b| Ok(b.list_ops_files()))
    }

    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn write_archive_segment(&self, period: String, items: String) -> Job {
        self.run(move |b| b.write_archive_segment(&period, &pairs(&items)?).map(Some))
    }

    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn load_archive_segment(&self, rel: String) -> Job {
        self.run(move |b| {
            let records = b.load_archive_segment(&rel)?;
            Ok(Some(items_json(
                records.iter().map(|(id, t)| (id.as_str(), t.as_str())),
            )))
        })
    }

    #[napi(ts_return_type = "Promise<string[]>")]
    pub fn list_archive_segments(&self) -> Job<Vec<String>> {
        self.run(|b| Ok(b.list_archive_segments()))
    }

    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn acquire_lock(&self) -> Job {
        self.run(|b| b.acquire_lock().map(|_| None))
    }

    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn release_lock(&self) -> Job {
        self.run(|b| b.release_lock().map(|_| None))
    }

    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn acquire_compaction_lock(&self) -> Job {
        self.run(|b| match b.try_compaction_lock()? {
            true => Ok(None),
            false => Err(Error::Invalid(
                "Compaction lock held by another agent".into(),
            )),
        })
    }

    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn release_compaction_lock(&self) -> Job {
        self.run(|b| b.release_compaction_lock().map(|_| None))
    }

    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn get_manifest_version(&self) -> Job {
        self.run(|b| Ok(b.manifest_version()))
    }

    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn write_blob(&self, rel: String, content: Buffer) -> Job {
        let bytes = content.to_vec();
        self.run(move |b| b.write_blob(&rel, &bytes).map(|_| None))
    }

    #[napi(ts_return_type = "Promise<Buffer>")]
    pub fn read_blob(&self, rel: String) -> Job<Vec<u8>> {
        let backend = self.backend();
        spawn_bytes(move || backend?.read_blob(&rel))
    }

    #[napi(ts_return_type = "Promise<Buffer>")]
    pub fn read_blob_range(&self, rel: String, offset: f64, length: f64) -> Job<Vec<u8>> {
        let backend = self.backend();
        spawn_bytes(move || backend?.read_blob_range(&rel, offset as u64, length as usize))
    }

    #[napi(ts_return_type = "Promise<string[]>")]
    pub fn list_blobs(&self, prefix: String) -> Job<Vec<String>> {
        self.run(move |b| b.list_blobs(&prefix))
    }

    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn delete_blob(&self, rel: String) -> Job {
        self.run(move |b| b.delete_blob(&rel).map(|_| None))
    }

    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn delete_blob_dir(&self, prefix: String) -> Job {
        self.run(move |b| b.delete_blob_dir(&prefix).map(|_| None))
    }
}

as_is_output!(bool, Vec<String>, LoadedSnapshot);
