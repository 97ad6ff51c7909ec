//! The store: records, the op log since the last checkpoint, and what changes them, one job a
//! module: `open` (opening, replay, close), `writer` (sets, deletes, batches, the buffered
//! modes), `undo`, `checkpoint`, `archive`, `follow` (a read-only follower's `tail`) and `multi`
//! (agents writing one store). This file holds the state they share and the types callers see.
//!
//! Every op gets a logical position: the byte offset its line has (or will have) in the active
//! op file. Bytes up to `written` are in the file; `pending` holds what group/async modes have
//! not written yet, and an open batch's lines follow. Undo cuts the log at the last op's position
//! wherever that lies, so it always removes exactly that op.

use std::sync::{Arc, MutexGuard};

mod archive;
mod checkpoint;
mod follow;
mod multi;
mod open;
#[cfg(test)]
mod tests;
mod undo;
mod writer;

use checkpoint::Cut;
pub use checkpoint::{Checkpoint, Prepared};
use open::load_snapshot;
pub use open::snapshot_error;
use writer::{apply, Batch};

use super::backend::{Backend, ManifestVersion};
use super::error::{display_join, Error, Result};
use super::manifest::Manifest;
use super::oplog::OpLog;
use super::records::Records;
use super::wal::LoggedOp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    Immediate,
    Group,
    Async,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// A checkpoint follows a write once this many ops are logged (NaN or infinity: never).
    pub checkpoint_threshold: f64,
    pub checkpoint_on_close: bool,
    pub version: f64,
    pub read_only: bool,
    pub skip_load: bool,
    pub write_mode: WriteMode,
    pub group_size: usize,
    /// Multi-writer mode: this writer's agent id.
    pub agent_id: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            checkpoint_threshold: 100.0,
            checkpoint_on_close: true,
            version: 1.0,
            read_only: false,
            skip_load: false,
            write_mode: WriteMode::Immediate,
            group_size: 50,
            agent_id: None,
        }
    }
}

/// A change to one record that the JavaScript view must mirror: set it to a text, or delete it.
#[derive(Debug, Clone, PartialEq)]
pub struct Effect {
    pub id: String,
    pub record: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Done,
    /// The write is logged; the op count reached the threshold and a checkpoint must follow.
    CheckpointDue,
}

/// How the JavaScript view must follow a change: record by record, or rebuilt from the records.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Effects(Vec<Effect>),
    Reset,
    /// The records were reloaded but nothing was undone.
    ReloadedOnly,
}

/// What `tail` found: new ops applied, or (after the writer checkpointed) a whole new state.
#[derive(Debug, Default)]
pub struct TailResult {
    pub lines: Vec<Arc<str>>,
    pub reset: bool,
}

pub struct Store {
    backend: Arc<dyn Backend>,
    opts: Options,
    records: Arc<Records>,
    ops: OpLog,
    manifest: Manifest,
    active_ops: String,
    version: f64,
    archived: u64,
    /// Bytes of the active op file that are on disk (for a read-only follower: read so far).
    written: u64,
    pending: Vec<u8>,
    pending_ops: usize,
    batch: Option<Batch>,
    /// Ops read at open, applied once migration of the snapshot's records is done.
    replay: Vec<LoggedOp>,
    closed: bool,
    /// Multi-writer: the Lamport clock.
    clock: u64,
    /// The files of the generation before the current one, kept for readers still on them and
    /// removed at the next checkpoint.
    retired: Vec<String>,
    /// Multi-writer: the state is every agent's files merged (an agent, or a read-only reader
    /// of a store that agents write).
    merged: bool,
    /// Multi-writer: this store holds the compaction lock (so work done under it can nest).
    compaction_locked: bool,
    /// Appends to the active op file since this agent's last refresh (see `refresh_multi`).
    appends: u64,
    cut: Option<Cut>,
    /// The deletion of the files the last checkpoint superseded, on a thread of its own: not on
    /// the way of the next checkpoint, which may be due soon after. Joined by that checkpoint,
    /// by `checkpoint` and by `close`, which leave the directory settled.
    removal: Option<std::thread::JoinHandle<()>>,
    /// The timestamp of the last op made, and its millisecond.
    ts_of: (i64, Arc<str>),
    /// The line of the op being logged (see `log_and_apply_with`).
    line_buf: String,
    /// The backend's version of `manifest` (see `Backend::manifest_version`), taken before it was
    /// read: `None` when unknown (after this store wrote the manifest, or where the backend has
    /// no versions).
    manifest_token: Option<ManifestVersion>,
    /// Multi-writer on a remote backend: the current snapshot as loaded (see `Backend::remote`).
    base: Option<multi::Base>,
}

/// The manifest as `Store::changed_manifest` found it, and the token it was read under.
struct Fetched {
    manifest: Option<Manifest>,
    token: Option<ManifestVersion>,
}

/// What `open` tells the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenInfo {
    pub stored_version: f64,
    pub needs_migration: bool,
}

impl Store {
    /// Replaces a record's text without logging (migration of snapshot records at open).
    pub fn replace_record(&mut self, id: &str, text: &str) -> Result<()> {
        self.records_mut().set(id, text)
    }

    /// The records, to change (copied first if a snapshot being written still shares them).
    fn records_mut(&mut self) -> &mut Records {
        Arc::make_mut(&mut self.records)
    }

    pub fn records(&self) -> &Records {
        &self.records
    }

    pub fn ops(&self) -> MutexGuard<'_, Vec<LoggedOp>> {
        self.ops.lock()
    }

    /// A handle on the op list that stays usable while the store itself is busy.
    pub fn op_log(&self) -> OpLog {
        self.ops.clone()
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// Whether the state is every agent's files merged (`getWalOps` merges them too).
    pub fn merges_agents(&self) -> bool {
        self.merged
    }

    /// The op file the op list mirrors line for line once each write returns: the active one of
    /// a single writer in `immediate` mode ("" otherwise: a follower's file grows without it,
    /// buffered modes hold ops not yet written, multi-writer merges files).
    fn mirrored_file(&self) -> String {
        let mirrors = !self.opts.read_only
            && self.opts.agent_id.is_none()
            && self.opts.write_mode == WriteMode::Immediate;
        if mirrors {
            self.active_ops.clone()
        } else {
            String::new()
        }
    }

    fn ensure_writable(&self) -> Result<()> {
        if self.opts.read_only {
            return Err(Error::Invalid(
                "Store is read-only. Cannot perform mutations.".into(),
            ));
        }
        Ok(())
    }

    /// Only sets, deletes and flushes may run while a checkpoint is in progress (the facade holds
    /// everything else back until it finishes).
    fn ensure_no_checkpoint(&self) -> Result<()> {
        if self.cut.is_some() {
            return Err(Error::Invalid("a checkpoint is in progress".into()));
        }
        Ok(())
    }

    /// The current text of record `id` (None: no such record), seen by `f`: the last op on it
    /// since the cut of a checkpoint in progress, else the table's.
    fn with_record<R>(&self, id: &str, f: impl FnOnce(Option<&str>) -> R) -> Result<R> {
        if let Some(cut) = &self.cut {
            if let Some(&i) = cut.changed.get(id) {
                let later = cut.later.len();
                if i < later {
                    return Ok(f(cut.later[i].op.data.as_deref()));
                }
                return Ok(f(self.ops.lock()[i - later].op.data.as_deref()));
            }
        }
        Ok(f(self.records.get(id)?.as_deref()))
    }

    fn ensure_loaded(&self) -> Result<()> {
        if self.opts.skip_load {
            return Err(Error::Invalid(
                "Cannot compact in skipLoad mode — in-memory Map is incomplete".into(),
            ));
        }
        Ok(())
    }

    fn next_pos(&self) -> u64 {
        self.written
            + self.pending.len() as u64
            + self.batch.as_ref().map_or(0, |b| b.bytes.len() as u64)
    }

    /// The current manifest, or `None` when the backend's version of it says it is still the one
    /// this store holds (so a remote backend is asked for a version, not for the manifest). The
    /// version is taken first: the manifest read after it is as new or newer.
    fn changed_manifest(&self) -> Result<Option<Fetched>> {
        let token = self.backend.manifest_version()?;
        if token.is_some() && token == self.manifest_token {
            return Ok(None);
        }
        Ok(Some(Fetched {
            manifest: self.backend.read_manifest()?,
            token: token.and_then(|t| t.settled(crate::time::now_ms() as f64)),
        }))
    }

    /// The path the user sees for a file of the store.
    pub fn shown(&self, rel: &str) -> String {
        display_join(self.backend.display(), rel)
    }

    pub fn active_ops(&self) -> &str {
        &self.active_ops
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // A store dropped without close (garbage collected) still writes what it buffered. Its
        // lock stays, as the reference's does, until the process ends.
        // (Not through a JavaScript backend: this may run on the JavaScript thread, which that
        // backend's calls wait for.)
        if !self.closed && self.backend.callable_from_any_thread() {
            let _ = self.flush();
        }
    }
}
