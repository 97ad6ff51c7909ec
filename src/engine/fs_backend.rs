//! The filesystem backend: the data directory of SPEC section 3.

use std::fs;
use std::path::PathBuf;
use std::sync::Mutex;

use super::archive;
use super::backend::{Backend, BatchStream};
use super::error::{display_join, Error, Result};
use super::fsutil;
use super::lock::{self, LockHandle};
use super::manifest::Manifest;
use super::records::Records;
use super::snapshot::{self, SnapshotStream};
use super::wal::{self, OpStream, OpWriter, ReadResult};

pub const MANIFEST_FILE: &str = "manifest.json";

#[derive(Debug)]
pub struct FsBackend {
    dir: PathBuf,
    display: String,
    lock: Mutex<Option<LockHandle>>,
    writer: Mutex<Option<(String, OpWriter)>>,
}

impl FsBackend {
    pub fn new(dir: &str) -> Self {
        FsBackend { dir: PathBuf::from(dir), display: dir.to_string(), lock: Mutex::new(None), writer: Mutex::new(None) }
    }

    fn shown(&self, rel: &str) -> String {
        display_join(&self.display, rel)
    }

    fn with_writer<T>(&self, rel: &str, f: impl FnOnce(&mut OpWriter) -> Result<T>) -> Result<T> {
        let mut guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if guard.as_ref().is_none_or(|(path, _)| path != rel) {
            let read = wal::read(&self.dir.join(rel))?;
            *guard = Some((rel.to_string(), OpWriter::open(&self.dir.join(rel), self.shown(rel), &read)?));
        }
        f(&mut guard.as_mut().expect("writer just opened").1)
    }
}

impl BatchStream for SnapshotStream {
    fn next_batch(&mut self, max: usize) -> Result<Option<String>> {
        SnapshotStream::next_batch(self, max)
    }
}

impl BatchStream for OpStream {
    fn next_batch(&mut self, max: usize) -> Result<Option<String>> {
        OpStream::next_batch(self, max)
    }
}

impl Backend for FsBackend {
    fn display(&self) -> &str {
        &self.display
    }

    fn initialize(&self, read_only: bool) -> Result<()> {
        if !read_only {
            for sub in ["snapshots", "ops", "archive"] {
                let p = self.dir.join(sub);
                fs::create_dir_all(&p).map_err(|e| Error::io(self.shown(sub), e))?;
            }
        }
        Ok(())
    }

    fn shutdown(&self) -> Result<()> {
        *self.writer.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(())
    }

    fn acquire_lock(&self) -> Result<()> {
        let handle = lock::acquire(&self.dir, &self.display)?;
        *self.lock.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        Ok(())
    }

    fn release_lock(&self) -> Result<()> {
        if let Some(h) = self.lock.lock().unwrap_or_else(|p| p.into_inner()).take() {
            lock::release(h);
        }
        Ok(())
    }

    fn read_manifest(&self) -> Result<Option<Manifest>> {
        let text = match fsutil::read_text(&self.dir.join(MANIFEST_FILE)) {
            Ok(t) => t,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        Manifest::parse(&text).map(Some).map_err(|m| Error::Corrupt(format!("{m} ({})", self.shown(MANIFEST_FILE))))
    }

    fn write_manifest(&self, manifest: &Manifest) -> Result<()> {
        let text = manifest.encode();
        fsutil::write_replace(&self.dir.join(MANIFEST_FILE), |w| w.write_all(text.as_bytes()))
    }

    fn write_snapshot(&self, records: &Records, version: u64) -> Result<String> {
        snapshot::write(&self.dir, records, version)
    }

    fn load_snapshot(&self, rel: &str) -> Result<(Records, u64)> {
        snapshot::load(&self.dir, &self.display, rel)
    }

    fn stream_snapshot(&self, rel: &str) -> Result<Box<dyn BatchStream>> {
        Ok(Box::new(SnapshotStream::open(&self.dir, &self.display, rel)?))
    }

    fn read_ops(&self, rel: &str, from: u64) -> Result<ReadResult> {
        let r = wal::read_from(&self.dir.join(rel), from)?;
        wal::warn_skipped(r.skipped, &self.shown(rel));
        Ok(r)
    }

    fn stream_ops(&self, rel: &str, since: Option<String>) -> Result<Box<dyn BatchStream>> {
        Ok(Box::new(OpStream::open(&self.dir.join(rel), since)?))
    }

    fn create_ops_file(&self) -> Result<String> {
        let opsdir = self.dir.join("ops");
        let name = fsutil::fresh_name(&opsdir, "ops-", "jsonl");
        let rel = format!("ops/{name}");
        let writer = OpWriter::create(&opsdir.join(&name), self.shown(&rel))?;
        *self.writer.lock().unwrap_or_else(|p| p.into_inner()) = Some((rel.clone(), writer));
        Ok(rel)
    }

    fn open_for_append(&self, rel: &str, read: &ReadResult) -> Result<()> {
        let writer = OpWriter::open(&self.dir.join(rel), self.shown(rel), read)?;
        *self.writer.lock().unwrap_or_else(|p| p.into_inner()) = Some((rel.to_string(), writer));
        Ok(())
    }

    fn append_ops(&self, rel: &str, lines: &[u8]) -> Result<()> {
        self.with_writer(rel, |w| w.append(lines))
    }

    fn truncate_ops(&self, rel: &str, pos: u64) -> Result<()> {
        self.with_writer(rel, |w| w.truncate(pos))
    }

    fn write_archive_segment(&self, period: &str, records: &[(String, String)]) -> Result<String> {
        archive::write(&self.dir, &self.display, period, records)
    }

    fn load_archive_segment(&self, rel: &str) -> Result<Vec<(String, String)>> {
        archive::load(&self.dir, &self.display, rel)
    }
}
