//! The helper exports: delta functions, validators, the Lamport clock, the directory lock and
//! snapshot file streaming. Values cross as JSON text.

use std::sync::Mutex;

use napi_derive::napi;

use super::cursor::Cursor;
use super::guard::{guard, lock};
use opslog_engine::clock;
use opslog_engine::lock::{self as dirlock, LockHandle};
use opslog_engine::{archive, delta, manifest::Manifest, op::Op, snapshot};

#[napi]
pub fn delta_create(old_record: String, new_record: String) -> Option<String> {
    delta::create_delta(&old_record, &new_record)
}

#[napi]
pub fn delta_apply(record: String, patch: String) -> Option<String> {
    delta::apply_delta(&record, &patch)
}

#[napi]
pub fn delta_is_smaller(patch: String, full: String) -> bool {
    delta::is_delta_smaller(&patch, &full)
}

/// The validators take the value's JSON text and return the reference's message, or null.
#[napi]
pub fn validate_op_text(text: String) -> Option<String> {
    Op::parse(&text).err()
}

#[napi]
pub fn validate_manifest_text(text: String) -> Option<String> {
    Manifest::parse(&text).err()
}

#[napi]
pub fn validate_snapshot_text(text: String) -> Option<String> {
    snapshot::validate(&text).err()
}

#[napi]
pub fn validate_archive_segment_text(text: String) -> Option<String> {
    archive::validate(&text).err()
}

#[napi]
pub fn snapshot_file_cursor(dir: String, rel: String) -> Cursor {
    Cursor::snapshot_file(dir, rel)
}

#[napi]
pub fn record_pairs_cursor(dir: String, rel: String) -> Cursor {
    Cursor::record_pairs(dir, rel)
}

#[napi]
pub struct LamportClock {
    inner: clock::LamportClock,
}

#[napi]
impl LamportClock {
    #[napi(constructor)]
    pub fn new(initial: Option<f64>) -> Self {
        LamportClock {
            inner: clock::LamportClock::new(initial.unwrap_or(0.0)),
        }
    }

    #[napi]
    pub fn tick(&mut self) -> f64 {
        self.inner.tick()
    }

    #[napi]
    pub fn merge(&mut self, received: f64) -> f64 {
        self.inner.merge(received)
    }

    #[napi(getter)]
    pub fn current(&self) -> f64 {
        self.inner.current()
    }
}

/// A held `.lock` of a directory (the `acquireLock` export).
#[napi]
pub struct DirLock {
    handle: Mutex<Option<LockHandle>>,
}

#[napi]
pub fn acquire_dir_lock(dir: String) -> napi::Result<DirLock> {
    guard(|| {
        let handle = dirlock::acquire(std::path::Path::new(&dir), &dir)?;
        Ok(DirLock {
            handle: Mutex::new(Some(handle)),
        })
    })
}

#[napi]
impl DirLock {
    /// Releases the lock (closes it and removes `.lock`); a second release does nothing.
    #[napi]
    pub fn release(&self) {
        if let Some(h) = lock(&self.handle).take() {
            dirlock::release(h);
        }
    }
}
