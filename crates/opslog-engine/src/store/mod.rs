//! The single-writer store: records, the op log since the last checkpoint, checkpoints, undo,
//! batches, buffered write modes and following another writer's log.
//!
//! Every op gets a logical position: the byte offset its line has (or will have) in the active
//! op file. Bytes up to `written` are in the file; `pending` holds what group/async modes have
//! not written yet, and an open batch's lines follow. Undo cuts the log at the last op's position
//! wherever that lies, so it always removes exactly that op.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::{Arc, MutexGuard};

mod follow;
mod multi;

use super::backend::Backend;
use super::delta;
use super::error::{display_join, Error, Result};
use super::manifest::Manifest;
use super::op::{Op, OpKind};
use super::oplog::OpLog;
use super::records::{FxHasher, Records};
use super::time;
use super::wal::{LoggedOp, ReadResult};

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

struct Batch {
    ops_start: usize,
    bytes: Vec<u8>,
}

/// A checkpoint in progress, from `checkpoint_begin` to `checkpoint_finish`: its snapshot is
/// being written from the records as they were at the cut, while sets and deletes go on.
struct Cut {
    /// The ops the snapshot covers, taken out of the op list: `getOps`, undo and the threshold
    /// see only the ops after the cut, as they would after the checkpoint.
    ops: Vec<LoggedOp>,
    /// Where the ops after the cut start in the active op file; they are carried into the new
    /// op file when the checkpoint switches to it.
    pos: u64,
    /// The ops up to the next cut, when a checkpoint came due again while this one runs
    /// (`checkpoint_due`): taken out of the op list too, and covered by the checkpoint that
    /// `checkpoint_finish` begins next.
    later: Vec<LoggedOp>,
    /// Where the ops after that next cut start in the active op file.
    later_pos: u64,
    /// Records changed after the cut: id -> index, in `later` followed by the op list, of the
    /// last op on it. Those ops are applied to `records` when the checkpoint finishes: until then
    /// the snapshot writer shares the table, and changing it would copy the whole table.
    changed: HashMap<Box<str>, usize, BuildHasherDefault<FxHasher>>,
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
    manifest_token: Option<String>,
    /// Multi-writer on a remote backend: the current snapshot as loaded (see `Backend::remote`).
    base: Option<multi::Base>,
}

/// The manifest as `Store::changed_manifest` found it, and the token it was read under.
struct Fetched {
    manifest: Option<Manifest>,
    token: Option<String>,
}

/// What `open` tells the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenInfo {
    pub stored_version: f64,
    pub needs_migration: bool,
}

impl Store {
    pub fn open(backend: Arc<dyn Backend>, opts: Options) -> Result<(Store, OpenInfo)> {
        backend.initialize(opts.read_only)?;
        if let Some(agent) = opts.agent_id.clone() {
            return Self::open_multi(backend, opts, Some(&agent), None);
        }
        if opts.read_only {
            // A reader of a store that agents write sees all of their ops, as an agent does.
            return match backend.read_manifest()? {
                Some(m) if m.active_agent_ops.is_some() => {
                    Self::open_multi(backend, opts, None, Some(m))
                }
                read => Self::open_locked(backend, opts, read),
            };
        }
        backend.acquire_lock()?;
        match Self::open_locked(backend.clone(), opts, None) {
            Ok(v) => Ok(v),
            Err(e) => {
                let _ = backend.release_lock();
                Err(e)
            }
        }
    }

    /// Opens a single writer's store, under its lock (a reader takes none); `read`: the manifest
    /// a reader has just read.
    fn open_locked(
        backend: Arc<dyn Backend>,
        opts: Options,
        read: Option<Manifest>,
    ) -> Result<(Store, OpenInfo)> {
        let Some(manifest) = given_or_read(&*backend, read)? else {
            if opts.read_only {
                return Err(Error::Invalid(
                    "Cannot open in readOnly mode: no existing store found".into(),
                ));
            }
            refuse_orphaned_data(&*backend)?;
            let (snapshot, _) =
                backend.write_snapshot_for_checkpoint(&Records::default(), opts.version)?;
            let ops = backend.create_ops_file()?;
            let manifest = Manifest::fresh(snapshot.clone(), ops.clone(), time::now_iso());
            backend.publish_manifest(&manifest, &[&snapshot, &ops])?;
            let version = opts.version;
            let store = Store::new(backend, opts, manifest, ops, version);
            return Ok((
                store,
                OpenInfo {
                    stored_version: version,
                    needs_migration: false,
                },
            ));
        };
        let active = manifest.active_ops.clone();
        let mut store = Store::new(
            backend.clone(),
            opts.clone(),
            manifest.clone(),
            active.clone(),
            opts.version,
        );
        store.archived = manifest.stats.archived_records;
        let read = backend.read_ops(&active, 0, false)?;
        if read.missing {
            eprintln!(
                "opslog: op file {} named by the manifest is missing: opening with the snapshot's records only",
                store.shown(&active)
            );
        }
        if !opts.read_only {
            backend.open_for_append(&active, &read)?;
            // Deleted at the first checkpoint, which keeps the generation it replaces instead.
            store.retired = backend.stale_files(&[&manifest.current_snapshot, &active]);
        }
        store.written = read.complete_len + u64::from(read.missing_newline && !opts.read_only);
        if opts.skip_load {
            return Ok((
                store,
                OpenInfo {
                    stored_version: opts.version,
                    needs_migration: false,
                },
            ));
        }
        let (records, stored_version) = load_snapshot(&*backend, &manifest)?;
        if (records.len() as u64) < manifest.stats.active_records {
            eprintln!(
                "opslog: snapshot {} holds {} record(s), the manifest says {}: the file may have been truncated",
                store.shown(&manifest.current_snapshot),
                records.len(),
                manifest.stats.active_records
            );
        }
        store.records = Arc::new(records);
        store.version = stored_version;
        store.replay = read.ops;
        let needs_migration = stored_version < opts.version;
        if needs_migration {
            store.version = opts.version;
        } else {
            store.finish_replay()?;
        }
        Ok((
            store,
            OpenInfo {
                stored_version,
                needs_migration,
            },
        ))
    }

    fn new(
        backend: Arc<dyn Backend>,
        opts: Options,
        manifest: Manifest,
        active_ops: String,
        version: f64,
    ) -> Store {
        Store {
            backend,
            opts,
            records: Arc::new(Records::default()),
            ops: OpLog::default(),
            manifest,
            active_ops,
            version,
            archived: 0,
            written: 0,
            pending: Vec::new(),
            pending_ops: 0,
            batch: None,
            replay: Vec::new(),
            closed: false,
            clock: 0,
            retired: Vec::new(),
            merged: false,
            compaction_locked: false,
            cut: None,
            removal: None,
            ts_of: (0, Arc::from("")),
            line_buf: String::new(),
            manifest_token: None,
            base: None,
        }
    }

    /// Replaces a record's text without logging (migration of snapshot records at open).
    pub fn replace_record(&mut self, id: &str, text: &str) -> Result<()> {
        self.records_mut().set(id, text)
    }

    /// The records, to change (copied first if a snapshot being written still shares them).
    fn records_mut(&mut self) -> &mut Records {
        Arc::make_mut(&mut self.records)
    }

    /// Applies the op log read at open (after migration, when there was one).
    pub fn finish_replay(&mut self) -> Result<()> {
        let mut replay = std::mem::take(&mut self.replay);
        let records = self.records_mut();
        for logged in &mut replay {
            apply(records, &mut logged.op)?;
        }
        let file = self.mirrored_file();
        self.ops.replace(replay, &file);
        Ok(())
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

    fn make_op(&mut self, kind: OpKind, id: &str, data: Option<String>) -> Result<Op> {
        self.make_op_at(kind, id, data, time::now_ms())
    }

    /// An op stamped with the time `ms` (when its write was called).
    fn make_op_at(&mut self, kind: OpKind, id: &str, data: Option<String>, ms: i64) -> Result<Op> {
        let (prev, delta) = self.with_record(id, |old| prev_of(kind, old, data.as_deref()))?;
        let clock = self.opts.agent_id.is_some().then(|| {
            self.clock += 1;
            self.clock
        });
        if self.ts_of.0 != ms || self.ts_of.1.is_empty() {
            // Formatted once per millisecond and shared: writes come many to the millisecond.
            self.ts_of = (ms, time::iso_from_ms(ms).into());
        }
        Ok(Op {
            ts: self.ts_of.1.clone(),
            kind,
            id: id.to_string(),
            prev,
            data,
            delta,
            agent: self.opts.agent_id.clone(),
            clock,
        })
    }

    /// Logs `op` according to the write mode and applies it. Nothing changes on error.
    fn log_and_apply(&mut self, op: Op) -> Result<WriteOutcome> {
        self.log_and_apply_with(op, true)
    }

    /// `flush_when_full`: write the group/async buffer once it holds `groupCommitSize` ops.
    fn log_and_apply_with(&mut self, op: Op, flush_when_full: bool) -> Result<WriteOutcome> {
        // Built in a buffer kept from op to op, which the file (or the buffer of group and async
        // modes, or the open batch's) and the op list copy it from.
        let mut line = std::mem::take(&mut self.line_buf);
        line.clear();
        let spans = op.encode_into(&mut line);
        line.push('\n');
        let pos = self.next_pos();
        let logged = self.log_line(line.as_bytes(), flush_when_full);
        let text: Arc<str> = Arc::from(&line[..line.len() - 1]);
        self.line_buf = line;
        logged?;
        let mut op = op;
        let mut ops = self.ops.lock();
        match &mut self.cut {
            Some(cut) => {
                cut.changed
                    .insert(op.id.as_str().into(), cut.later.len() + ops.len());
            }
            // Cannot fail but on a read error of the snapshot (the id was just looked up there);
            // the op is logged then, and a reopen applies it.
            None => {
                let records = Arc::make_mut(&mut self.records);
                match (op.kind, spans.data) {
                    // The record keeps its text in the line the op list holds anyway.
                    (OpKind::Set, Some(data)) => {
                        op.data = None;
                        records.set_from_line(&text, spans.id, data)?;
                    }
                    _ => apply(records, &mut op)?,
                }
            }
        }
        ops.push(LoggedOp {
            op,
            line: text,
            pos,
        });
        drop(ops);
        Ok(self.outcome(false))
    }

    /// Writes an op's line (with its newline) according to the write mode, or stages it in the
    /// open batch. Nothing is logged on error.
    fn log_line(&mut self, bytes: &[u8], flush_when_full: bool) -> Result<()> {
        if let Some(batch) = &mut self.batch {
            batch.bytes.extend_from_slice(bytes);
            return Ok(());
        }
        match self.opts.write_mode {
            WriteMode::Immediate => {
                self.backend.append_ops(&self.active_ops, bytes)?;
                self.written += bytes.len() as u64;
            }
            WriteMode::Group | WriteMode::Async => {
                let before = self.pending.len();
                self.pending.extend_from_slice(bytes);
                self.pending_ops += 1;
                if flush_when_full && self.pending_ops >= self.opts.group_size {
                    if let Err(e) = self.flush() {
                        self.pending.truncate(before);
                        self.pending_ops -= 1;
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether a checkpoint is due after a write. As in the reference, a single op in async
    /// mode never triggers one (it resolves before the check); a batch always may.
    fn outcome(&self, batch_commit: bool) -> WriteOutcome {
        // A skipLoad store holds only this session's records: a snapshot of them would drop
        // everything it did not load, so it never checkpoints.
        let due = self.batch.is_none()
            && !self.opts.skip_load
            && (batch_commit || self.opts.write_mode != WriteMode::Async)
            && (self.ops.lock().len() as f64) >= self.opts.checkpoint_threshold;
        if due {
            WriteOutcome::CheckpointDue
        } else {
            WriteOutcome::Done
        }
    }

    /// `set(id, data)`: `id` is a JSON string token, `data` the record's JSON text.
    pub fn set(&mut self, id: &str, data: impl Into<String>) -> Result<WriteOutcome> {
        self.ensure_writable()?;
        let op = self.make_op(OpKind::Set, id, Some(data.into()))?;
        self.log_and_apply(op)
    }

    /// Sets the facade collected (`(id, data, ms)`, the time each was called), applied in order:
    /// `async` mode's (handed over to the store's thread), `group` mode's (one call per group)
    /// and those of the open batch (staged in it). Outside a batch the buffer is written after
    /// them if it is full. When that write fails the error is returned and every set stays
    /// applied and buffered (a later flush retries it), except with `refuse_last`: `group` mode's
    /// set that filled the buffer is refused, so it is taken back out (the ones before it were
    /// acknowledged when they were made).
    pub fn set_many(
        &mut self,
        sets: Vec<(&str, String, i64)>,
        refuse_last: bool,
    ) -> Result<WriteOutcome> {
        self.ensure_writable()?;
        if self.opts.write_mode == WriteMode::Immediate && self.batch.is_none() {
            return Err(Error::Invalid(
                "set_many is for group and async modes, or inside a batch".into(),
            ));
        }
        for (id, data, ms) in sets {
            let op = self.make_op_at(OpKind::Set, id, Some(data), ms)?;
            self.log_and_apply_with(op, false)?;
        }
        if self.batch.is_none() && self.pending_ops >= self.opts.group_size {
            if let Err(e) = self.flush() {
                if refuse_last {
                    self.drop_last_buffered()?;
                }
                return Err(e);
            }
        }
        Ok(self.outcome(false))
    }

    /// `group` mode: how many more sets the facade may collect before it must hand them over,
    /// so that the buffer is written and a checkpoint comes due after the same set as when each
    /// set is made on its own (at least 1; call it when no checkpoint is due).
    pub fn group_room(&self) -> usize {
        let by_size = self.opts.group_size.saturating_sub(self.pending_ops).max(1);
        let left = self.opts.checkpoint_threshold - self.ops.lock().len() as f64;
        if self.opts.skip_load || left.is_nan() || left <= 0.0 {
            // skipLoad never checkpoints; a threshold that is not a number is never reached.
            return by_size;
        }
        by_size.min(left.ceil() as usize)
    }

    pub fn delete(&mut self, id: &str) -> Result<WriteOutcome> {
        self.ensure_writable()?;
        if self.with_record(id, |r| r.is_none())? {
            return Err(Error::NotFound(id.to_string()));
        }
        let op = self.make_op(OpKind::Delete, id, None)?;
        self.log_and_apply(op)
    }

    pub fn batch_begin(&mut self) -> Result<()> {
        self.ensure_writable()?;
        self.ensure_no_checkpoint()?;
        self.batch = Some(Batch {
            ops_start: self.ops.lock().len(),
            bytes: Vec::new(),
        });
        self.records_mut().hold_slots();
        Ok(())
    }

    /// Writes the batch's ops in one append (after anything buffered, keeping log order).
    /// On error the batch stays staged for `batch_rollback`.
    pub fn batch_commit(&mut self) -> Result<WriteOutcome> {
        let Some(batch) = self.batch.as_ref() else {
            return Ok(WriteOutcome::Done);
        };
        if batch.bytes.is_empty() {
            self.batch = None;
            self.records_mut().release_slots(false);
            return Ok(WriteOutcome::Done);
        }
        if !self.pending.is_empty() {
            self.flush()?;
        }
        let bytes = &self.batch.as_ref().expect("batch checked").bytes;
        self.backend.append_batch(&self.active_ops, bytes)?;
        self.written += bytes.len() as u64;
        self.batch = None;
        self.records_mut().release_slots(false);
        Ok(self.outcome(true))
    }

    /// Reverses every staged op of the open batch, newest first. `keep_order`: the records end
    /// in the order they had before it (otherwise a record it deleted comes back at the end, a
    /// fresh insertion, as in the reference). Returns the view changes and whether the order
    /// differs from what applying them to the view gives.
    pub fn batch_rollback(&mut self, keep_order: bool) -> Result<(Vec<Effect>, bool)> {
        let Some(batch) = self.batch.take() else {
            return Ok((Vec::new(), false));
        };
        let staged: Vec<LoggedOp> = self.ops.lock().drain(batch.ops_start..).collect();
        let records = self.records_mut();
        let mut effects = Vec::with_capacity(staged.len());
        let mut failed = None;
        for logged in staged.iter().rev() {
            match reverse(records, &logged.op) {
                Ok(effect) => effects.extend(effect),
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        let reordered = records.release_slots(keep_order);
        match failed {
            Some(e) => Err(e),
            None => Ok((effects, reordered)),
        }
    }

    /// Undoes the last op: removes exactly its line from the log and reverses it.
    /// `None` when there is nothing to undo.
    pub fn undo(&mut self) -> Result<Option<Change>> {
        self.ensure_writable()?;
        self.ensure_no_checkpoint()?;
        if self.agent().is_some() {
            return self.undo_multi();
        }
        let Some(pos) = self.ops.lock().last().map(|l| l.pos) else {
            return Ok(None);
        };
        if pos >= self.written {
            return self.drop_last_buffered();
        }
        self.backend.truncate_ops(&self.active_ops, pos)?;
        self.written = pos;
        self.pending.clear();
        self.pending_ops = 0;
        self.pop_last_op()
    }

    /// Takes the last op back out of the log, the buffer and the records, when it is still only
    /// buffered (nothing on disk to undo); `None` when there is no such op.
    fn drop_last_buffered(&mut self) -> Result<Option<Change>> {
        let Some(pos) = self.ops.lock().last().map(|l| l.pos) else {
            return Ok(None);
        };
        if pos < self.written {
            return Ok(None);
        }
        self.pending.truncate((pos - self.written) as usize);
        self.pending_ops = self.pending_ops.saturating_sub(1);
        self.pop_last_op()
    }

    /// Removes the last op from the log and reverses it in the records (its bytes are already
    /// gone from the file and the buffer).
    fn pop_last_op(&mut self) -> Result<Option<Change>> {
        let Some(last) = self.ops.lock().pop() else {
            return Ok(None);
        };
        let effect = reverse(self.records_mut(), &last.op)?;
        Ok(Some(Change::Effects(effect.into_iter().collect())))
    }

    /// Writes what group/async modes have buffered.
    pub fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.backend.append_ops(&self.active_ops, &self.pending)?;
        self.written += self.pending.len() as u64;
        self.pending.clear();
        self.pending_ops = 0;
        Ok(())
    }

    /// First step of a checkpoint: flushes and cuts the log there. What it returns writes the
    /// new generation's files without the store (`Checkpoint::prepare`); until
    /// `checkpoint_finish`, sets and deletes go on, appended to the current op file, without
    /// changing the records being written.
    pub fn checkpoint_begin(&mut self) -> Result<Checkpoint> {
        self.ensure_writable()?;
        self.ensure_loaded()?;
        self.ensure_no_checkpoint()?;
        self.flush()?;
        let ops = self.ops.update("", std::mem::take);
        Ok(self.begin_cut(ops, self.written))
    }

    /// A write made a checkpoint due (`WriteOutcome::CheckpointDue`): begins it, or, while one
    /// is in progress, cuts the log here all the same (the op list and the threshold start
    /// again, as after a checkpoint) and leaves that checkpoint to be written next, by the
    /// `checkpoint_finish` of the one in progress. So no write waits for a checkpoint; when they
    /// come due faster than they are written, the snapshots in between are skipped, each
    /// written one being of the state at a cut.
    pub fn checkpoint_due(&mut self) -> Result<Option<Checkpoint>> {
        if self.cut.is_none() {
            return self.checkpoint_begin().map(Some);
        }
        self.flush()?;
        let ops = self.ops.update("", std::mem::take);
        let written = self.written;
        let cut = self.cut.as_mut().expect("checked above");
        cut.later.extend(ops);
        cut.later_pos = written;
        Ok(None)
    }

    /// Cuts the log after `ops` (the ops the snapshot covers, whose lines end at `pos` in the
    /// active op file): the records as they are now are written.
    fn begin_cut(&mut self, ops: Vec<LoggedOp>, pos: u64) -> Checkpoint {
        // Ops already made after the cut (only when a cut made while the last checkpoint ran
        // is begun by its checkpoint_finish) are not applied yet.
        let changed = self
            .ops
            .lock()
            .iter()
            .enumerate()
            .map(|(i, l)| (l.op.id.as_str().into(), i))
            .collect();
        self.cut = Some(Cut {
            ops,
            pos,
            later: Vec::new(),
            later_pos: pos,
            changed,
        });
        let manifest = Manifest {
            version: self.version as u64,
            current_snapshot: String::new(),
            active_ops: String::new(),
            archive_segments: self.manifest.archive_segments.clone(),
            stats: super::manifest::Stats {
                active_records: self.records.len() as u64,
                archived_records: self.archived,
                ops_count: 0,
                created: self.manifest.stats.created.clone(),
                last_checkpoint: String::new(),
            },
            active_agent_ops: None,
            agent_clocks: None,
            snapshot_clock: None,
        };
        Checkpoint {
            backend: self.backend.clone(),
            records: self.records.clone(),
            version: self.version,
            manifest,
        }
    }

    /// Second step, given the new generation `Checkpoint::prepare` staged (or why it could not):
    /// the ops made since the cut are applied to the records and carried into the new op file,
    /// and the new manifest becomes current. Returns the checkpoint of a cut made meanwhile
    /// (`checkpoint_due`), begun: the records are then those at that cut, and the ops after it
    /// stay to be applied. On error the store goes on with the current generation, its op list
    /// whole again (a cut made meanwhile is undone too: the next write that finds a checkpoint
    /// due begins one).
    pub fn checkpoint_finish(&mut self, prepared: Result<Prepared>) -> Result<Option<Checkpoint>> {
        let Some(cut) = self.cut.take() else {
            return Err(Error::Invalid("no checkpoint in progress".into()));
        };
        let Cut {
            ops: covered,
            pos,
            mut later,
            later_pos,
            ..
        } = cut;
        let next = !later.is_empty();
        let (manifest, rewritten) = match prepared {
            Ok(p) => (Ok(p.manifest), p.records),
            Err(e) => (Err(e), None),
        };
        // The new snapshot holds the records as they were at the cut; pointing into it, they
        // need none of the texts held until now.
        match rewritten.filter(|r| r.len() == self.records.len()) {
            Some(rewritten) => self.records = Arc::new(rewritten),
            // Records set since the last checkpoint keep their texts in op lines, which the op
            // list is about to drop: copied out, they stop keeping the rest of those lines.
            None if manifest.is_ok() => Arc::make_mut(&mut self.records).own_held_texts(),
            None => {}
        }
        // `prepare` has dropped its share of the records: this changes them in place.
        let applied = self.apply_unapplied(&mut later, !next);
        match applied
            .and(manifest)
            .and_then(|m| self.switch_generation(m, pos, &mut later))
        {
            Ok(()) if next => Ok(Some(self.begin_cut(later, later_pos - pos))),
            Ok(()) => Ok(None),
            Err(e) => {
                let restored = if next {
                    self.apply_unapplied(&mut [], true)
                } else {
                    Ok(())
                };
                let file = self.mirrored_file();
                self.ops.update(&file, |list| {
                    list.splice(0..0, covered.into_iter().chain(later));
                });
                restored.and(Err(e))
            }
        }
    }

    /// Applies ops made after a cut to the records: `later`'s, then (with `list`) the op list's.
    fn apply_unapplied(&mut self, later: &mut [LoggedOp], list: bool) -> Result<()> {
        let records = Arc::make_mut(&mut self.records);
        for logged in later {
            apply(records, &mut logged.op)?;
        }
        if list {
            for logged in self.ops.lock().iter_mut() {
                apply(records, &mut logged.op)?;
            }
        }
        Ok(())
    }

    /// Makes `manifest` current: its op file receives the ops since the cut at `cut_pos`
    /// (`later`'s, then the op list's, as the current file holds them; those group and async
    /// modes have not written stay buffered) and appends go to it from now on.
    fn switch_generation(
        &mut self,
        manifest: Manifest,
        cut_pos: u64,
        later: &mut [LoggedOp],
    ) -> Result<()> {
        let ops = manifest.active_ops.clone();
        let mut carried = Vec::new();
        let list = self.ops.lock();
        for logged in later.iter().chain(list.iter()) {
            if logged.pos < self.written {
                carried.extend_from_slice(logged.line.as_bytes());
                carried.push(b'\n');
            }
        }
        drop(list);
        self.backend.open_for_append(&ops, &ReadResult::default())?;
        let appended: &[&str] = if carried.is_empty() {
            &[]
        } else {
            self.backend.append_ops(&ops, &carried)?;
            &[&ops]
        };
        self.backend.commit_manifest(&manifest, appended)?;
        let previous = std::mem::replace(&mut self.manifest, manifest);
        let superseded = self.retire(vec![previous.current_snapshot, previous.active_ops]);
        self.active_ops = ops;
        self.written = carried.len() as u64;
        let file = self.mirrored_file();
        for logged in later.iter_mut() {
            logged.pos -= cut_pos;
        }
        self.ops.update(&file, |list| {
            for logged in list {
                logged.pos -= cut_pos;
            }
        });
        self.remove_files(superseded);
        Ok(())
    }

    /// Deletes files a checkpoint superseded, on a thread of its own where the backend allows.
    fn remove_files(&mut self, files: Vec<String>) {
        self.finish_removal();
        if files.is_empty() {
            return;
        }
        let backend = self.backend.clone();
        if !backend.callable_from_any_thread() {
            return backend.remove_files(&files);
        }
        let spawned = std::thread::Builder::new()
            .name("opslog-remove".into())
            .spawn(move || backend.remove_files(&files));
        // Without a thread, the files stay until the next session's first checkpoint.
        self.removal = spawned.ok();
    }

    /// Waits for the deletion `remove_files` started.
    fn finish_removal(&mut self) {
        if let Some(removal) = self.removal.take() {
            let _ = removal.join();
        }
    }

    /// Once a new manifest is current: the files it replaced become the kept previous
    /// generation (power loss may bring back the manifest naming them, see
    /// `Backend::commit_manifest`); returns the generation before them, whose manifest can no
    /// longer come back, to be deleted (SPEC 7.8).
    fn retire(&mut self, replaced: Vec<String>) -> Vec<String> {
        let current = [&self.manifest.current_snapshot, &self.manifest.active_ops];
        let replaced: Vec<String> = replaced
            .into_iter()
            .filter(|f| !current.contains(&f))
            .collect();
        std::mem::replace(&mut self.retired, replaced)
    }

    /// A whole checkpoint in one call (the snapshot written while holding the store).
    /// Returns whether the records were reloaded (multi-writer compaction merges every agent's
    /// ops), so a view of them must be rebuilt.
    pub fn checkpoint(&mut self) -> Result<bool> {
        if self.agent().is_some() {
            self.ensure_writable()?;
            self.ensure_loaded()?;
            return Ok(self.compact_multi(false, None)?.is_some());
        }
        self.checkpoint_begin()?
            .run(|prepared| self.checkpoint_finish(prepared))?;
        self.finish_removal();
        Ok(false)
    }

    /// Moves the records with these ids into the period's archive segment, then checkpoints.
    /// Returns how many records moved and whether the records were reloaded (see `checkpoint`).
    pub fn archive(&mut self, ids: &[String], period: &str) -> Result<(usize, bool)> {
        self.ensure_writable()?;
        self.ensure_loaded()?;
        self.ensure_no_checkpoint()?;
        if self.agent().is_some() {
            let moved = self.compact_multi(true, Some((ids, period)))?.unwrap_or(0);
            return Ok((moved, true));
        }
        let moved = self.records.pairs_of(ids)?;
        if moved.is_empty() {
            return Ok((0, false));
        }
        let segment = self.backend.write_archive_segment(period, &moved)?;
        if !self.manifest.archive_segments.contains(&segment) {
            self.manifest.archive_segments.push(segment);
        }
        let records = self.records_mut();
        for (id, _) in &moved {
            records.remove(id)?;
        }
        self.archived += moved.len() as u64;
        self.checkpoint()?;
        Ok((moved.len(), false))
    }

    /// The segment `loadArchive(name)` means: `archive/archive-<name>.json`, else the first
    /// segment whose path contains the name.
    pub fn find_archive_segment(&self, name: &str) -> Result<String> {
        let segs = &self.manifest.archive_segments;
        let exact = format!("archive/archive-{name}.json");
        segs.iter()
            .find(|s| **s == exact)
            .or_else(|| segs.iter().find(|s| s.contains(name)))
            .cloned()
            .ok_or_else(|| Error::Invalid(format!("Archive segment '{name}' not found")))
    }

    /// Flushes, checkpoints when due on close, releases the lock.
    pub fn close(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.ensure_no_checkpoint()?;
        if !self.opts.read_only {
            self.flush()?;
            if self.checkpoint_due_on_close()? {
                self.checkpoint()?;
            }
        }
        self.release()
    }

    /// The end of `close`, once its flush and checkpoint are done (by `close`, or by a caller
    /// that runs them itself).
    pub fn release(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.ensure_no_checkpoint()?;
        if !self.opts.read_only {
            // The last checkpoint's manifest survives power loss from now on.
            self.backend.sync_manifest()?;
        }
        self.finish_removal();
        self.closed = true;
        let _ = self.backend.release_lock();
        if let (Some(agent), false) = (self.agent(), self.opts.read_only) {
            self.backend
                .unlock_agent(agent, super::backend::AgentRelease::Keep);
        }
        self.backend.shutdown()
    }

    /// Whether `close` checkpoints (after its flush): a writable, loaded store with
    /// `checkpointOnClose` that holds ops no snapshot has; in multi-writer mode, ops of this
    /// agent's own (see `own_ops_unfolded`).
    pub fn checkpoint_due_on_close(&mut self) -> Result<bool> {
        let o = &self.opts;
        if o.read_only || !o.checkpoint_on_close || o.skip_load {
            return Ok(false);
        }
        if self.agent().is_some() {
            return self.own_ops_unfolded();
        }
        Ok(!self.ops.lock().is_empty())
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
            token,
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

/// A checkpoint begun (`Store::checkpoint_begin`): the records at the cut and the manifest of
/// the new generation but for its files.
pub struct Checkpoint {
    backend: Arc<dyn Backend>,
    records: Arc<Records>,
    version: f64,
    manifest: Manifest,
}

/// The new generation's snapshot, empty op file and manifest, durable but not yet current.
pub struct Prepared {
    manifest: Manifest,
    /// The records as the new snapshot holds them, pointing into it (where the backend can).
    records: Option<Records>,
}

impl Checkpoint {
    /// Writes the snapshot and stages the new generation; runs without the store.
    pub fn prepare(self) -> Result<Prepared> {
        let (snapshot, records) = self
            .backend
            .write_snapshot_for_checkpoint(&self.records, self.version)?;
        // Released as soon as written, so the store applies the writes made meanwhile without
        // copying the records.
        drop(self.records);
        let mut manifest = self.manifest;
        let mut written = vec![snapshot.clone()];
        let staged = self.backend.create_next_ops_file().and_then(|ops| {
            written.push(ops.clone());
            manifest.active_ops = ops;
            manifest.current_snapshot = snapshot.clone();
            manifest.stats.last_checkpoint = time::now_iso();
            self.backend
                .stage_manifest(&manifest, &[&snapshot, &manifest.active_ops])
        });
        if let Err(e) = staged {
            // No manifest names them yet: a full disk gets their space back.
            self.backend.remove_files(&written);
            return Err(e);
        }
        Ok(Prepared { manifest, records })
    }

    /// Writes this checkpoint and those `finish` (`Store::checkpoint_finish`) begins after it.
    pub fn run(
        self,
        mut finish: impl FnMut(Result<Prepared>) -> Result<Option<Checkpoint>>,
    ) -> Result<()> {
        let mut begun = self;
        while let Some(next) = finish(begun.prepare())? {
            begun = next;
        }
        Ok(())
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

/// A writable open of a directory without `manifest.json` would start an empty store beside
/// snapshot and op files that hold data (a manifest deleted or lost in a copy): refused. Files
/// with no data are what a crash while creating the store leaves, and are taken over.
fn refuse_orphaned_data(backend: &dyn Backend) -> Result<()> {
    let orphans = backend.stale_files(&[]);
    let data = |rel: &&String| !rel.ends_with(".tmp") && backend.holds_data(rel);
    if orphans.iter().any(|rel| data(&rel)) {
        return Err(Error::Corrupt(format!(
            "opslog: {} is missing, but {} holds snapshot or op files with data; restore the manifest (or move those files away) before opening",
            display_join(backend.display(), "manifest.json"),
            backend.display()
        )));
    }
    Ok(())
}

/// `read`, the manifest a caller has just read, or else the backend's.
fn given_or_read(backend: &dyn Backend, read: Option<Manifest>) -> Result<Option<Manifest>> {
    match read {
        Some(m) => Ok(Some(m)),
        None => backend.read_manifest(),
    }
}

/// Loads the manifest's snapshot; a missing file is reported as the reference words it.
fn load_snapshot(backend: &dyn Backend, manifest: &Manifest) -> Result<(Records, f64)> {
    backend
        .load_snapshot(&manifest.current_snapshot)
        .map_err(|e| snapshot_error(e, &manifest.current_snapshot))
}

/// An error reading the current snapshot `rel`, as the store reports it (a missing file named).
pub fn snapshot_error(e: Error, rel: &str) -> Error {
    if e.is_not_found() {
        Error::Invalid(format!(
            "Snapshot file not found: {rel}. The data directory may be corrupted."
        ))
    } else {
        e
    }
}

/// `prev` of an op on a record whose current text is `old`: the whole old record, or, for a set
/// that replaces it, the delta back to it when that is shorter; and whether it is the delta.
fn prev_of(kind: OpKind, old: Option<&str>, new: Option<&str>) -> (Option<String>, bool) {
    if let (OpKind::Set, Some(old), Some(new)) = (kind, old, new) {
        if let Some(patch) = delta::create_delta(old, new) {
            if delta::is_delta_smaller(&patch, old) {
                return (Some(patch), true);
            }
        }
    }
    (old.map(str::to_string), false)
}

/// Applies an op to the records, moving its data into them: an op kept in the log needs only its
/// line (for `getOps`) and `prev` (for undo), so the record text is not held twice.
fn apply(records: &mut Records, op: &mut Op) -> Result<()> {
    match (op.kind, op.data.take()) {
        (OpKind::Set, Some(data)) => records.set(&op.id, &data),
        (OpKind::Delete, _) => records.remove(&op.id).map(|_| ()),
        _ => Ok(()),
    }
}

/// The inverse of `op` on the current records, as the reference's undo defines it.
fn reverse(records: &mut Records, op: &Op) -> Result<Option<Effect>> {
    let restored = match (&op.prev, op.delta) {
        (None, _) => {
            records.remove(&op.id)?;
            None
        }
        (Some(patch), true) => {
            let current = records.get(&op.id)?;
            let Some(restored) = current.and_then(|c| delta::apply_delta(&c, patch)) else {
                return Ok(None);
            };
            records.set(&op.id, &restored)?;
            Some(restored)
        }
        (Some(full), false) => {
            records.set(&op.id, full)?;
            Some(full.clone())
        }
    };
    Ok(Some(Effect {
        id: op.id.clone(),
        record: restored,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::fs_backend::FsBackend;
    use super::*;

    fn dir(name: &str) -> String {
        let d = std::env::temp_dir().join(format!("opslog-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d.display().to_string()
    }

    fn open(d: &str, opts: Options) -> Store {
        Store::open(Arc::new(FsBackend::new(d)), opts).unwrap().0
    }

    fn state(s: &Store) -> Vec<(String, String)> {
        s.records().pairs().unwrap()
    }

    fn ops_file(d: &str, s: &Store) -> String {
        std::fs::read_to_string(format!("{d}/{}", s.active_ops())).unwrap()
    }

    #[test]
    fn a_checkpoint_leaves_the_records_in_the_new_snapshot_but_writes_carried_over() {
        let d = dir("rebase");
        let mut s = open(&d, Options::default());
        for i in 0..50 {
            s.set(&format!("\"r{i}\""), format!("{{\"v\":{i}}}"))
                .unwrap();
        }
        assert_eq!(s.records().held_in_memory(), 50);
        s.checkpoint().unwrap();
        assert_eq!(
            s.records().held_in_memory(),
            0,
            "all read back from the new snapshot"
        );
        let before = state(&s);
        assert_eq!(before.len(), 50);
        // An update of a record in the file: its previous text comes from the file.
        s.set("\"r3\"", r#"{"v":"x"}"#).unwrap();
        assert_eq!(
            s.ops().last().unwrap().op.prev.as_deref(),
            Some(r#"{"v":3}"#)
        );
        // A write while the snapshot is written: carried, and applied on the records as the new
        // snapshot holds them.
        let begun = s.checkpoint_begin().unwrap();
        s.set("\"late\"", "1").unwrap();
        let prepared = begun.prepare();
        s.checkpoint_finish(prepared).unwrap();
        assert_eq!(s.records().held_in_memory(), 1, "only the carried write");
        assert_eq!(s.records().get("\"late\"").unwrap().as_deref(), Some("1"));
        assert_eq!(
            s.records().get("\"r3\"").unwrap().as_deref(),
            Some(r#"{"v":"x"}"#)
        );
        assert_eq!(
            s.records().get("\"r4\"").unwrap().as_deref(),
            Some(r#"{"v":4}"#)
        );
    }

    #[test]
    fn writes_survive_reopen_and_checkpoint() {
        let d = dir("reopen");
        let mut s = open(&d, Options::default());
        s.set("\"a\"", r#"{"n":1}"#).unwrap();
        s.set("\"b\"", r#"{"n":2}"#).unwrap();
        s.set(
            "\"a\"",
            r#"{"n":3,"x":"long enough to make a delta pay off"}"#,
        )
        .unwrap();
        s.delete("\"b\"").unwrap();
        assert!(matches!(s.delete("\"b\""), Err(Error::NotFound(_))));
        let before = state(&s);
        drop(s);
        std::fs::remove_file(format!("{d}/.lock")).unwrap();
        let mut s = open(
            &d,
            Options {
                checkpoint_on_close: true,
                ..Options::default()
            },
        );
        assert_eq!(state(&s), before);
        assert_eq!(s.ops().len(), 4);
        s.close().unwrap();
        let s = open(&d, Options::default());
        assert_eq!(state(&s), before);
        assert!(s.ops().is_empty());
    }

    #[test]
    fn undo_truncates_exactly_the_last_op() {
        let d = dir("undo");
        let mut s = open(&d, Options::default());
        s.set(
            "\"a\"",
            r#"{"name":"A long name that makes deltas pay","status":"x"}"#,
        )
        .unwrap();
        let after_first = ops_file(&d, &s);
        s.set(
            "\"a\"",
            r#"{"name":"A long name that makes deltas pay","status":"z","extra":1}"#,
        )
        .unwrap();
        assert!(s.ops()[1].op.delta);
        let effects = s.undo().unwrap().unwrap();
        assert_eq!(
            effects,
            Change::Effects(vec![Effect {
                id: "\"a\"".into(),
                record: Some(r#"{"name":"A long name that makes deltas pay","status":"x"}"#.into())
            }])
        );
        assert_eq!(ops_file(&d, &s), after_first);
        let Some(Change::Effects(effects)) = s.undo().unwrap() else {
            panic!("an undo of a create")
        };
        assert_eq!(effects[0].record, None);
        assert_eq!(ops_file(&d, &s), "");
        assert_eq!(s.undo().unwrap(), None);
    }

    #[test]
    fn group_sets_handed_over_together_write_and_come_due_where_single_sets_would() {
        let d = dir("group-many");
        let opts = Options {
            write_mode: WriteMode::Group,
            group_size: 3,
            checkpoint_threshold: 7.0,
            ..Options::default()
        };
        let mut s = open(&d, opts);
        let sets = |from: usize, n: usize| -> Vec<(String, String)> {
            (from..from + n)
                .map(|i| (format!("\"k{i}\""), format!("{{\"v\":{i}}}")))
                .collect()
        };
        let many = |s: &mut Store, items: &[(String, String)]| {
            let v = items
                .iter()
                .map(|(id, data)| (id.as_str(), data.clone(), 1_700_000_000_000))
                .collect();
            s.set_many(v, false).unwrap()
        };
        assert_eq!(s.group_room(), 3, "a group's worth");
        assert_eq!(many(&mut s, &sets(0, 2)), WriteOutcome::Done);
        assert_eq!(ops_file(&d, &s), "", "buffered");
        assert_eq!(s.group_room(), 1, "the set that fills the buffer");
        assert_eq!(many(&mut s, &sets(2, 1)), WriteOutcome::Done);
        assert_eq!(
            ops_file(&d, &s).lines().count(),
            3,
            "written with the third"
        );
        assert_eq!(s.group_room(), 3);
        assert_eq!(many(&mut s, &sets(3, 3)), WriteOutcome::Done);
        assert_eq!(s.group_room(), 1, "the seventh op makes the checkpoint due");
        assert_eq!(many(&mut s, &sets(6, 1)), WriteOutcome::CheckpointDue);
        s.checkpoint().unwrap();
        assert_eq!(s.group_room(), 3);

        // Inside a batch they are staged in it, written by the commit alone.
        s.batch_begin().unwrap();
        assert_eq!(many(&mut s, &sets(10, 5)), WriteOutcome::Done);
        assert_eq!(ops_file(&d, &s), "");
        s.batch_commit().unwrap();
        assert_eq!(ops_file(&d, &s).lines().count(), 5);
        s.batch_begin().unwrap();
        many(&mut s, &sets(20, 2));
        let (effects, _) = s.batch_rollback(false).unwrap();
        assert_eq!(effects.len(), 2, "staged sets roll back");
        assert_eq!(s.records().len(), 12);
    }

    #[test]
    fn group_mode_buffers_and_undo_takes_the_buffered_op() {
        let d = dir("group");
        let opts = Options {
            write_mode: WriteMode::Group,
            group_size: 3,
            ..Options::default()
        };
        let mut s = open(&d, opts);
        s.set("\"a\"", "{}").unwrap();
        s.set("\"b\"", "{}").unwrap();
        assert_eq!(ops_file(&d, &s), "");
        s.undo().unwrap();
        s.set("\"c\"", "{}").unwrap();
        s.set("\"d\"", "{}").unwrap();
        let text = ops_file(&d, &s);
        let ids: Vec<&str> = text
            .lines()
            .map(|l| &l[l.find("\"id\":").unwrap() + 5..l.find(",\"prev\"").unwrap()])
            .collect();
        assert_eq!(ids, ["\"a\"", "\"c\"", "\"d\""]);
        s.undo().unwrap();
        assert_eq!(ops_file(&d, &s).lines().count(), 2);
    }

    #[test]
    fn batch_commits_in_one_append_and_rolls_back() {
        let d = dir("batch");
        let mut s = open(&d, Options::default());
        s.set("\"a\"", r#"{"v":1}"#).unwrap();
        s.batch_begin().unwrap();
        s.set("\"a\"", r#"{"v":2}"#).unwrap();
        s.delete("\"a\"").unwrap();
        s.set("\"b\"", r#"{"v":3}"#).unwrap();
        let (effects, reordered) = s.batch_rollback(true).unwrap();
        assert_eq!(effects.len(), 3);
        assert!(
            reordered,
            "the deleted a goes back to its slot, not to the end"
        );
        assert_eq!(
            state(&s),
            vec![("\"a\"".to_string(), r#"{"v":1}"#.to_string())]
        );
        assert_eq!(ops_file(&d, &s).lines().count(), 1);
        s.batch_begin().unwrap();
        s.set("\"b\"", "{}").unwrap();
        s.set("\"c\"", "{}").unwrap();
        s.batch_commit().unwrap();
        assert_eq!(ops_file(&d, &s).lines().count(), 3);
        s.batch_begin().unwrap();
        assert_eq!(s.batch_commit().unwrap(), WriteOutcome::Done);
    }

    #[test]
    fn threshold_asks_for_a_checkpoint() {
        let d = dir("threshold");
        let mut s = open(
            &d,
            Options {
                checkpoint_threshold: 2.0,
                ..Options::default()
            },
        );
        assert_eq!(s.set("\"a\"", "{}").unwrap(), WriteOutcome::Done);
        assert_eq!(s.set("\"b\"", "{}").unwrap(), WriteOutcome::CheckpointDue);
        let old_ops = s.active_ops().to_string();
        s.checkpoint().unwrap();
        assert_ne!(s.active_ops(), old_ops);
        assert_eq!(s.manifest().stats.active_records, 2);
        let m = std::fs::read_to_string(format!("{d}/manifest.json")).unwrap();
        assert_eq!(Manifest::parse(&m).unwrap(), *s.manifest());
    }

    #[test]
    fn writes_during_a_checkpoint_are_carried_into_its_op_file() {
        let d = dir("carried");
        let mut s = open(&d, Options::default());
        s.set("\"a\"", r#"{"v":1}"#).unwrap();
        s.set("\"b\"", r#"{"v":1}"#).unwrap();
        let begun = s.checkpoint_begin().unwrap();
        assert!(s.ops().is_empty(), "the snapshot being written covers them");
        s.set("\"a\"", r#"{"v":2}"#).unwrap();
        s.set("\"a\"", r#"{"v":3}"#).unwrap();
        s.delete("\"b\"").unwrap();
        assert!(matches!(s.delete("\"b\""), Err(Error::NotFound(_))));
        assert!(s.undo().is_err() && s.batch_begin().is_err() && s.checkpoint().is_err());
        let prevs: Vec<_> = s.ops().iter().map(|l| l.op.prev.clone()).collect();
        assert_eq!(
            prevs,
            [
                Some(r#"{"v":1}"#.into()),
                Some(r#"{"v":2}"#.into()),
                Some(r#"{"v":1}"#.into())
            ],
            "each op's prev is the record as the writes before it left it"
        );
        assert_eq!(
            s.records().get("\"a\"").unwrap().as_deref(),
            Some(r#"{"v":1}"#),
            "applied at the switch"
        );
        let old_ops = s.active_ops().to_string();
        assert!(s.checkpoint_finish(begun.prepare()).unwrap().is_none());
        assert_ne!(s.active_ops(), old_ops);
        assert_eq!(state(&s), [("\"a\"".to_string(), r#"{"v":3}"#.to_string())]);
        assert_eq!(s.manifest().stats.active_records, 2, "the snapshot's count");
        let snapshot = std::fs::read_to_string(format!("{d}/{}", s.manifest().current_snapshot));
        assert_eq!(
            snapshot.unwrap().lines().count(),
            3,
            "header, a and b at the cut"
        );
        let lines: Vec<String> = ops_file(&d, &s).lines().map(String::from).collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines,
            s.ops()
                .iter()
                .map(|l| l.line.to_string())
                .collect::<Vec<_>>()
        );
        // Positions are the new file's: undo cuts exactly the last op.
        assert!(s.undo().unwrap().is_some());
        assert_eq!(ops_file(&d, &s), format!("{}\n{}\n", lines[0], lines[1]));
        let before = state(&s);
        drop(s);
        std::fs::remove_file(format!("{d}/.lock")).unwrap();
        let s = open(&d, Options::default());
        assert_eq!(state(&s), before);
        assert_eq!(s.ops().len(), 2);
    }

    #[test]
    fn a_checkpoint_due_while_one_runs_is_cut_at_once_and_written_next() {
        let d = dir("cut-meanwhile");
        let opts = Options {
            checkpoint_threshold: 2.0,
            ..Options::default()
        };
        let mut s = open(&d, opts.clone());
        s.set("\"a\"", r#"{"v":1}"#).unwrap();
        assert_eq!(s.set("\"b\"", "{}").unwrap(), WriteOutcome::CheckpointDue);
        let begun = s.checkpoint_due().unwrap().expect("none was running");
        s.set("\"a\"", r#"{"v":2}"#).unwrap();
        assert_eq!(s.set("\"c\"", "{}").unwrap(), WriteOutcome::CheckpointDue);
        assert!(s.checkpoint_due().unwrap().is_none(), "cut, written next");
        assert!(s.ops().is_empty());
        s.set("\"a\"", r#"{"v":3}"#).unwrap();
        assert_eq!(
            s.ops()[0].op.prev.as_deref(),
            Some(r#"{"v":2}"#),
            "seen through the ops taken out by the second cut"
        );
        let next = s
            .checkpoint_finish(begun.prepare())
            .unwrap()
            .expect("the second cut's checkpoint");
        assert_eq!(
            s.records().get("\"a\"").unwrap().as_deref(),
            Some(r#"{"v":2}"#),
            "the records at it"
        );
        assert_eq!(s.ops().len(), 1);
        assert!(s.checkpoint_finish(next.prepare()).unwrap().is_none());
        let snapshot = std::fs::read_to_string(format!("{d}/{}", s.manifest().current_snapshot));
        assert!(snapshot.unwrap().contains(r#"{"id":"a","data":{"v":2}}"#));
        assert_eq!(ops_file(&d, &s), format!("{}\n", s.ops()[0].line));
        let before = state(&s);
        assert_eq!(before.len(), 3);
        drop(s);
        std::fs::remove_file(format!("{d}/.lock")).unwrap();
        let mut s = open(&d, opts);
        assert_eq!(state(&s), before);
        assert_eq!(s.ops().len(), 1);
        assert!(s.undo().unwrap().is_some());
        assert_eq!(
            s.records().get("\"a\"").unwrap().as_deref(),
            Some(r#"{"v":2}"#)
        );
    }

    #[test]
    fn a_failed_checkpoint_undoes_a_cut_made_meanwhile_too() {
        let d = dir("failed-with-cut");
        let mut s = open(
            &d,
            Options {
                checkpoint_threshold: 1.0,
                ..Options::default()
            },
        );
        s.set("\"a\"", "{}").unwrap();
        let begun = s.checkpoint_due().unwrap().unwrap();
        s.set("\"b\"", "{}").unwrap();
        assert!(s.checkpoint_due().unwrap().is_none());
        s.set("\"c\"", "{}").unwrap();
        drop(begun);
        assert!(s
            .checkpoint_finish(Err(Error::Invalid("disk full".into())))
            .is_err());
        let ids: Vec<String> = s.ops().iter().map(|l| l.op.id.clone()).collect();
        assert_eq!(ids, ["\"a\"", "\"b\"", "\"c\""]);
        assert_eq!(state(&s).len(), 3);
        assert_eq!(ops_file(&d, &s).lines().count(), 3);
        s.checkpoint().unwrap();
        assert!(s.ops().is_empty());
        assert_eq!(state(&s).len(), 3);
    }

    #[test]
    fn a_failed_checkpoint_leaves_the_log_whole() {
        let d = dir("failed-checkpoint");
        let mut s = open(&d, Options::default());
        s.set("\"a\"", "{}").unwrap();
        let file = s.active_ops().to_string();
        let begun = s.checkpoint_begin().unwrap();
        s.set("\"b\"", "{}").unwrap();
        drop(begun);
        let failed = Err(Error::Invalid("disk full".into()));
        assert!(s.checkpoint_finish(failed).is_err());
        assert_eq!(s.active_ops(), file);
        assert_eq!(s.ops().len(), 2);
        assert_eq!(state(&s).len(), 2);
        assert_eq!(ops_file(&d, &s).lines().count(), 2);
        assert!(s.undo().unwrap().is_some());
        assert_eq!(ops_file(&d, &s).lines().count(), 1);
        s.checkpoint().unwrap();
        assert!(s.ops().is_empty());
        assert_eq!(state(&s).len(), 1);
    }

    #[test]
    fn read_only_follower_sees_appends_and_checkpoints() {
        let d = dir("follow");
        let mut w = open(&d, Options::default());
        w.set("\"a\"", "{}").unwrap();
        let mut r = open(
            &d,
            Options {
                read_only: true,
                ..Options::default()
            },
        );
        assert_eq!(r.records().len(), 1);
        w.set("\"b\"", "{}").unwrap();
        assert_eq!(r.tail().unwrap().lines.len(), 1);
        assert_eq!(r.records().len(), 2);
        w.delete("\"a\"").unwrap();
        w.checkpoint().unwrap();
        w.set("\"c\"", "{}").unwrap();
        let t = r.tail().unwrap();
        assert!(!t.reset, "the ops handed out keep the view in order");
        assert_eq!(t.lines.len(), 2, "{:?}", t.lines);
        assert!(t.lines[0].contains(r#""op":"delete","id":"a""#));
        assert!(t.lines[1].contains(r#""op":"set","id":"c""#));
        assert_eq!(state(&r), state(&w));
        // Two checkpoints between reads: the first generation's ops are gone, a diff stands in.
        w.set("\"b\"", r#"{"v":1}"#).unwrap();
        w.checkpoint().unwrap();
        w.set("\"d\"", "{}").unwrap();
        w.checkpoint().unwrap();
        w.delete("\"c\"").unwrap();
        let t = r.tail().unwrap();
        assert_eq!(t.lines.len(), 3, "{:?}", t.lines);
        assert!(t.lines[0].contains(r#""op":"set","id":"b","prev":{},"data":{"v":1}"#));
        assert!(t.lines[1].contains(r#""op":"set","id":"d","prev":null"#));
        assert!(t.lines[2].contains(r#""op":"delete","id":"c""#));
        assert_eq!(state(&r), state(&w));
        assert!(r.set("\"x\"", "{}").is_err());
    }

    #[test]
    fn a_follower_is_not_handed_carried_ops_twice() {
        let d = dir("follow-carried");
        let mut w = open(&d, Options::default());
        w.set("\"a\"", "{}").unwrap();
        let mut r = open(
            &d,
            Options {
                read_only: true,
                ..Options::default()
            },
        );
        let begun = w.checkpoint_begin().unwrap();
        w.set("\"b\"", "{}").unwrap();
        assert_eq!(r.tail().unwrap().lines.len(), 1, "b, from the old op file");
        assert!(w.checkpoint_finish(begun.prepare()).unwrap().is_none());
        w.set("\"c\"", "{}").unwrap();
        let t = r.tail().unwrap();
        assert!(!t.reset);
        assert_eq!(
            t.lines.len(),
            1,
            "only c: b opens the new file too {:?}",
            t.lines
        );
        assert!(t.lines[0].contains(r#""id":"c""#));
        assert_eq!(state(&r), state(&w));
    }

    #[test]
    fn lock_excludes_a_second_writer() {
        let d = dir("lock");
        let mut s = open(&d, Options::default());
        let e = Store::open(Arc::new(FsBackend::new(&d)), Options::default())
            .err()
            .unwrap();
        assert!(matches!(e, Error::Locked { .. }));

        s.close().unwrap();
        assert!(Store::open(Arc::new(FsBackend::new(&d)), Options::default()).is_ok());
    }

    fn agent(d: &str, id: &str) -> Store {
        open(
            d,
            Options {
                agent_id: Some(id.into()),
                ..Options::default()
            },
        )
    }

    #[test]
    fn agents_compacting_with_stale_views_lose_nothing() {
        let d = dir("agents");
        let mut a = agent(&d, "A");
        let mut b = agent(&d, "B");
        a.set("\"a1\"", "{}").unwrap();
        b.set("\"b1\"", "{}").unwrap();
        assert!(
            a.checkpoint().unwrap(),
            "A compacted (and reloaded every agent's ops)"
        );
        b.set("\"b2\"", "{}").unwrap();
        a.set("\"a2\"", "{}").unwrap();
        b.checkpoint().unwrap();
        a.set("\"a3\"", "{}").unwrap();
        a.close().unwrap();
        b.close().unwrap();
        let r = open(
            &d,
            Options {
                read_only: true,
                agent_id: Some("R".into()),
                ..Options::default()
            },
        );
        let mut ids: Vec<String> = r
            .records()
            .pairs()
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        ids.sort();
        assert_eq!(ids, ["\"a1\"", "\"a2\"", "\"a3\"", "\"b1\"", "\"b2\""]);
    }

    #[test]
    fn higher_clock_wins_and_ties_go_to_the_later_agent() {
        let d = dir("lww");
        let mut a = agent(&d, "a");
        let mut b = agent(&d, "B");
        a.set("\"k\"", r#"{"by":"a"}"#).unwrap(); // clock 1
        b.set("\"k\"", r#"{"by":"B"}"#).unwrap(); // clock 1: "B" sorts after "a"
        a.tail().unwrap();
        assert_eq!(
            a.records().get("\"k\"").unwrap().as_deref(),
            Some(r#"{"by":"B"}"#)
        );
        a.set("\"k\"", r#"{"by":"a2"}"#).unwrap(); // clock 2 after the merge
        b.tail().unwrap();
        assert_eq!(
            b.records().get("\"k\"").unwrap().as_deref(),
            Some(r#"{"by":"a2"}"#)
        );
        assert_eq!(
            b.ops()
                .iter()
                .map(|l| l.op.clock.unwrap())
                .collect::<Vec<_>>(),
            [1, 1, 2]
        );
    }

    #[test]
    fn undo_takes_back_only_this_agents_last_op() {
        let d = dir("agent-undo");
        let mut a = agent(&d, "A");
        let mut b = agent(&d, "B");
        a.set("\"x\"", "{}").unwrap();
        b.set("\"y\"", "{}").unwrap();
        a.tail().unwrap();
        assert_eq!(a.undo().unwrap(), Some(Change::Reset));
        assert_eq!(a.records().get("\"x\"").unwrap(), None);
        assert!(a.records().contains("\"y\"").unwrap(), "B's op stays");
        assert_eq!(a.undo().unwrap(), Some(Change::ReloadedOnly));
    }

    #[test]
    fn a_dead_agents_compaction_lock_is_taken_over() {
        let d = dir("stale-compact");
        let mut a = agent(&d, "A");
        a.set("\"x\"", "{}").unwrap();
        // pid 1 is alive: like a reference agent (which does not flock) holding the lock.
        std::fs::write(format!("{d}/.compact-lock"), "1").unwrap();
        assert!(
            !a.checkpoint().unwrap(),
            "a live holder: compaction is skipped"
        );
        // Another agent of ours holding it (with flock), in this very process.
        std::fs::remove_file(format!("{d}/.compact-lock")).unwrap();
        let b = agent(&d, "B");
        assert!(b.backend.try_compaction_lock().unwrap());
        assert!(!a.checkpoint().unwrap(), "held by B: compaction is skipped");
        b.backend.release_compaction_lock().unwrap();
        // Just created and still empty: a reference agent about to write its pid.
        std::fs::write(format!("{d}/.compact-lock"), "").unwrap();
        assert!(!a.checkpoint().unwrap(), "a fresh empty lock is held");
        std::fs::write(format!("{d}/.compact-lock"), "999999999").unwrap();
        assert!(a.checkpoint().unwrap(), "a dead holder's lock is recovered");
        assert!(!std::path::Path::new(&format!("{d}/.compact-lock")).exists());
    }

    #[test]
    fn sessions_leave_only_the_current_and_previous_generation() {
        let d = dir("sessions");
        let files = |sub: &str| {
            let mut v: Vec<String> = std::fs::read_dir(format!("{d}/{sub}"))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            v.sort();
            v
        };
        for session in 0..4 {
            let mut s = open(&d, Options::default());
            for i in 0..3 {
                s.set(&format!("\"{session}-{i}\""), "{}").unwrap();
                s.checkpoint().unwrap();
            }
            s.close().unwrap();
            let current = s.manifest().current_snapshot.clone();
            assert!(
                files("snapshots").len() <= 2,
                "session {session}: {:?}",
                files("snapshots")
            );
            assert!(
                files("ops").len() <= 2,
                "session {session}: {:?}",
                files("ops")
            );
            assert!(files("snapshots").contains(&current.replace("snapshots/", "")));
        }
        // A crashed checkpoint's temporary file goes at the next checkpoint.
        std::fs::write(format!("{d}/snapshots/snap-1.jsonl.tmp"), "partial").unwrap();
        std::fs::write(format!("{d}/ops/agent-x-1.jsonl"), "").unwrap();
        let mut s = open(&d, Options::default());
        s.checkpoint().unwrap();
        assert!(!files("snapshots").iter().any(|f| f.ends_with(".tmp")));
        assert!(
            files("ops").contains(&"agent-x-1.jsonl".to_string()),
            "an agent's op file is not this store's to delete"
        );
        assert_eq!(state(&s).len(), 12);
    }
}
