//! `NativeStore`: the engine's `Store` behind a mutex. Fast calls (writes, undo, reads of the op
//! list) run on the JavaScript thread; open, checkpoints, archive and close run on workers.

use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{Function, Promise};
use napi::Env;
use napi_derive::napi;

use super::cursor::Cursor;
use super::guard::{guard, lock};
use super::job::{Job, Output};
use super::js_backend::{Args, JsBackend, Reply};
use super::text::{BatchText, Ids};
use opslog_engine::backend::Backend;
use opslog_engine::batch::{Batch, PairsBuilder};
use opslog_engine::error::{Error, Result};
use opslog_engine::fs_backend::FsBackend;
use opslog_engine::handover::{apply_set_many, StoreCell};
use opslog_engine::json;
use opslog_engine::manifest::Manifest;
use opslog_engine::oplog::OpLog;
use opslog_engine::store::{Change, Checkpoint, Effect, Options, Store, WriteMode, WriteOutcome};
use opslog_engine::wal::LoggedOp;

#[napi(object)]
pub struct NativeOptions {
    pub checkpoint_threshold: f64,
    pub checkpoint_on_close: bool,
    pub version: u32,
    pub read_only: bool,
    pub skip_load: bool,
    /// "immediate", "group" or "async".
    pub write_mode: String,
    pub group_commit_size: u32,
    /// Multi-writer mode: this writer's agent id.
    pub agent_id: Option<String>,
    /// Writes are acknowledged once on stable storage (the facade awaits `syncOps`).
    pub durable: bool,
}

type Shared = Arc<StoreCell>;

/// `f()`, the JavaScript values it creates released when it returns.
fn in_handle_scope<T>(env: &Env, f: impl FnOnce() -> napi::Result<T>) -> napi::Result<T> {
    let mut scope = std::ptr::null_mut();
    // SAFETY: `env` is the live environment of the current call, on its thread, and `f`'s values
    // are not used after it returns.
    unsafe {
        napi::check_status!(napi::sys::napi_open_handle_scope(env.raw(), &mut scope))?;
        let result = f();
        napi::check_status!(napi::sys::napi_close_handle_scope(env.raw(), scope))?;
        result
    }
}

/// Batches the thread of `export_all_records` builds ahead of the JavaScript thread.
const READ_AHEAD_BATCHES: usize = 4;

#[napi]
pub struct NativeStore {
    inner: Shared,
    /// Reachable without the store's mutex, which a write to a slow backend may hold.
    backend: Arc<Mutex<Option<Arc<dyn Backend>>>>,
    ops: Arc<Mutex<OpLog>>,
}

fn with_store<T>(inner: &Shared, f: impl FnOnce(&mut Store) -> Result<T>) -> Result<T> {
    inner.with_store(f)
}

/// What a write tells the facade: a numeric enum (the addon exports its values as `Written`,
/// which lib/ reads), because every immediate `set` returns one and a number is the cheapest
/// value to hand over.
#[napi]
pub enum Written {
    Done = 0,
    /// A checkpoint must follow.
    CheckpointDue = 1,
    /// A delete of a record that does not exist (nothing was written).
    NotFound = 2,
}

impl From<WriteOutcome> for Written {
    fn from(o: WriteOutcome) -> Self {
        match o {
            WriteOutcome::Done => Written::Done,
            WriteOutcome::CheckpointDue => Written::CheckpointDue,
        }
    }
}

/// A delete's outcome: a record that does not exist is an answer, not a failure.
fn deleted(result: Result<WriteOutcome>) -> Result<Written> {
    match result {
        Ok(o) => Ok(o.into()),
        Err(Error::NotFound(_)) => Ok(Written::NotFound),
        Err(e) => Err(e),
    }
}

/// What `open` resolves to.
#[napi(object)]
pub struct OpenInfo {
    pub stored_version: f64,
    /// The stored version is older than the store's: the facade passes the records through `migrate`.
    pub needs_migration: bool,
}

/// The manifest's fields the facade shows (`getManifest`) and uses (the current files).
#[napi(object)]
pub struct ManifestInfo {
    pub current_snapshot: String,
    pub active_ops: String,
    pub archive_segments: Vec<String>,
    pub stats: ManifestStats,
}

#[napi(object)]
pub struct ManifestStats {
    pub active_records: f64,
    pub archived_records: f64,
    pub ops_count: f64,
    pub created: String,
    pub last_checkpoint: String,
}

impl From<&Manifest> for ManifestInfo {
    fn from(m: &Manifest) -> Self {
        let s = &m.stats;
        ManifestInfo {
            current_snapshot: m.current_snapshot.clone(),
            active_ops: m.active_ops.clone(),
            archive_segments: m.archive_segments.clone(),
            stats: ManifestStats {
                active_records: s.active_records as f64,
                archived_records: s.archived_records as f64,
                ops_count: s.ops_count as f64,
                created: s.created.clone(),
                last_checkpoint: s.last_checkpoint.clone(),
            },
        }
    }
}

/// What a checkpoint resolves to.
#[napi(object)]
pub struct CheckpointDone {
    /// The records were reloaded (multi-writer): the view must be rebuilt.
    pub reset: bool,
    pub manifest: ManifestInfo,
}

/// The view change of an undo (none at all is null).
#[napi(object)]
pub struct Undone {
    /// An op was undone (false: only other writers' ops were reloaded).
    pub undone: bool,
    /// `[[id, record|null], ...]` as JSON text; null when the view must be rebuilt.
    pub effects: Option<String>,
}

/// The view change of a batch rollback.
#[napi(object)]
pub struct RolledBack {
    /// `[[id, record|null], ...]` as JSON text.
    pub effects: String,
    /// The view must take the order of `recordIds` afterwards.
    pub reordered: bool,
}

#[napi(object)]
pub struct Archived {
    pub moved: u32,
    /// The records were reloaded (multi-writer): the view must be rebuilt.
    pub reset: bool,
}

/// Ops another writer appended.
#[napi(object)]
pub struct Tailed {
    /// The other writer checkpointed: the view must be rebuilt.
    pub reset: bool,
    /// The ops as a JSON array text.
    pub ops: String,
}

super::job::as_is_output!(
    Written,
    OpenInfo,
    CheckpointDone,
    Option<Undone>,
    Archived,
    Tailed
);

/// `[[id, record|null], ...]`
fn effects_json(effects: &[Effect]) -> String {
    let items: Vec<String> = effects
        .iter()
        .map(|e| format!("[{},{}]", e.id, e.record.as_deref().unwrap_or("null")))
        .collect();
    format!("[{}]", items.join(","))
}

fn undone(change: Change) -> Undone {
    match change {
        Change::Effects(effects) => Undone {
            undone: true,
            effects: Some(effects_json(&effects)),
        },
        Change::Reset => Undone {
            undone: true,
            effects: None,
        },
        Change::ReloadedOnly => Undone {
            undone: false,
            effects: None,
        },
    }
}

fn lines_json<'a>(ops: impl Iterator<Item = &'a LoggedOp>) -> String {
    let mut out = String::from("[");
    for (i, l) in ops.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&l.line);
    }
    out.push(']');
    out
}

/// Finishes a checkpoint begun with `Store::checkpoint_begin` (and those begun after it): the
/// files are written without holding the store's mutex (writes go on meanwhile), which is held
/// only to switch to them.
fn finish_checkpoint(inner: &Shared, begun: Checkpoint) -> Result<()> {
    begun.run(|prepared| with_store(inner, |s| s.checkpoint_finish(prepared)))
}

/// Runs a whole checkpoint. Returns whether the records were reloaded (multi-writer), so the
/// view must be rebuilt.
fn checkpoint(inner: &Shared) -> Result<bool> {
    let multi = with_store(inner, |s| Ok(s.options().agent_id.is_some()))?;
    if multi {
        return with_store(inner, |s| s.checkpoint());
    }
    finish_checkpoint(inner, with_store(inner, |s| s.checkpoint_begin())?)?;
    Ok(false)
}

/// What a checkpoint job resolves to.
fn checkpoint_result(inner: &Shared, reset: bool) -> Result<CheckpointDone> {
    Ok(CheckpointDone {
        reset,
        manifest: manifest_info(inner)?,
    })
}

fn manifest_info(inner: &Shared) -> Result<ManifestInfo> {
    with_store(inner, |s| Ok(s.manifest().into()))
}

#[napi]
impl NativeStore {
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        NativeStore {
            inner: StoreCell::new(),
            backend: Arc::new(Mutex::new(None)),
            ops: Arc::default(),
        }
    }

    /// Opens the store on a worker. With `dispatch`, all I/O goes through a JavaScript
    /// `StorageBackend` (lib/js-backend.js).
    #[napi(ts_return_type = "Promise<OpenInfo>")]
    pub fn open(
        &self,
        dir: String,
        options: NativeOptions,
        dispatch: Option<Function<'_, Args, Promise<Reply>>>,
    ) -> napi::Result<Job<OpenInfo>> {
        let write_mode = match options.write_mode.as_str() {
            "immediate" => WriteMode::Immediate,
            "group" => WriteMode::Group,
            "async" => WriteMode::Async,
            other => {
                return Err(napi::Error::from_reason(format!(
                    "unknown writeMode '{other}'"
                )))
            }
        };
        let opts = Options {
            checkpoint_threshold: options.checkpoint_threshold,
            checkpoint_on_close: options.checkpoint_on_close,
            version: f64::from(options.version),
            read_only: options.read_only,
            skip_load: options.skip_load,
            write_mode,
            group_size: options.group_commit_size.max(1) as usize,
            agent_id: options.agent_id,
        };
        let backend: Arc<dyn Backend> = match dispatch {
            Some(f) => {
                let tsfn = f
                    .build_threadsafe_function()
                    .callee_handled::<false>()
                    .weak::<true>()
                    .build()?;
                Arc::new(JsBackend::new(tsfn, dir))
            }
            None => Arc::new(FsBackend::new(&dir).durable(options.durable)),
        };
        *lock(&self.backend) = Some(backend.clone());
        let (inner, ops) = (self.inner.clone(), self.ops.clone());
        Ok(self.job(move || {
            let (store, info) = Store::open(backend, opts)?;
            *lock(&ops) = store.op_log();
            inner.install(store);
            Ok(OpenInfo {
                stored_version: info.stored_version,
                needs_migration: info.needs_migration,
            })
        }))
    }

    /// Records from slot `start` on, at most `max`, as a pairs batch with the slot to go on
    /// from: `[items, ids, next]` (see `engine::batch`), or null when there are no more.
    #[napi(ts_return_type = "[string, string, number] | null")]
    pub fn export_records(&self, start: u32, max: u32) -> napi::Result<Option<BatchText>> {
        guard(|| {
            with_store(&self.inner, |s| {
                let max = max.max(1) as usize;
                let mut out = PairsBuilder::for_view(max);
                let mut next = start;
                s.records().visit_from(start as usize, |after, id, text| {
                    out.push(id, text);
                    next = after as u32;
                    Ok(!out.is_full(max))
                })?;
                Ok(out.finish().map(|b| BatchText::from(b).resuming_at(next)))
            })
        })
    }

    /// Hands every record, in order, to `each` as pairs batches of up to `max` records (see
    /// `engine::batch`), which another thread builds while `each` takes the one before: the
    /// first full read of a lazily opened store builds every record on the JavaScript thread,
    /// and this takes the engine's share of the work off it. Returns once `each` has had them all
    /// (or has thrown, which stops the other thread and is rethrown).
    #[napi(ts_args_type = "max: number, each: (batch: [string, string]) => void")]
    pub fn export_all_records(
        &self,
        env: &Env,
        max: u32,
        each: Function<'_, BatchText, ()>,
    ) -> napi::Result<()> {
        let max = max.max(1) as usize;
        let inner = &self.inner;
        std::thread::scope(|scope| {
            let (batches, received) = std::sync::mpsc::sync_channel::<Batch>(READ_AHEAD_BATCHES);
            let producer = scope.spawn(move || {
                guard(|| {
                    with_store(inner, |s| {
                        let mut out = PairsBuilder::for_view(max);
                        let mut wanted = true;
                        s.records().visit_from(0, |_, id, text| {
                            out.push(id, text);
                            if out.is_full(max) {
                                let full = std::mem::replace(&mut out, PairsBuilder::for_view(max));
                                wanted = full.finish().is_some_and(|b| batches.send(b).is_ok());
                            }
                            Ok(wanted)
                        })?;
                        if let Some(last) = out.finish().filter(|_| wanted) {
                            let _ = batches.send(last);
                        }
                        Ok(())
                    })
                })
            });
            let mut taken = Ok(());
            for batch in &received {
                // Each batch's strings in a scope of their own: the call's scope would keep every
                // one of them alive (and promoted to the old generation) until the last.
                taken = in_handle_scope(env, || each.call(BatchText::from(batch)));
                if taken.is_err() {
                    break;
                }
            }
            drop(received);
            let produced = producer.join().unwrap_or_else(|_| {
                Err(napi::Error::from_reason(
                    "opslog-native internal error: the export thread panicked",
                ))
            });
            taken.and(produced)
        })
    }

    /// Migration at open: replaces snapshot records with their migrated text.
    #[napi]
    pub fn replace_records(&self, ids: Vec<String>, texts: Vec<String>) -> napi::Result<()> {
        guard(|| {
            with_store(&self.inner, |s| {
                for (id, text) in ids.iter().zip(&texts) {
                    s.replace_record(id, text)?;
                }
                Ok(())
            })
        })
    }

    #[napi]
    pub fn finish_replay(&self) -> napi::Result<()> {
        guard(|| {
            with_store(&self.inner, |s| {
                s.finish_replay()?;
                Ok(())
            })
        })
    }

    #[napi]
    pub fn set(&self, id: String, data: String) -> napi::Result<Written> {
        guard(|| with_store(&self.inner, |s| s.set(&id, &data).map(Written::from)))
    }

    /// `async` mode: queues sets the facade collected (see `handover`); they apply in order on
    /// the store's own thread, or sooner when another call needs the store.
    #[napi]
    pub fn set_many(&self, items: String) -> napi::Result<()> {
        guard(|| self.inner.hand_over(items))
    }

    /// `group` mode's collected sets, and those of the open batch, in one call (see
    /// `Store::set_many`): applied now, on this thread. Returns how many sets `group` mode may
    /// collect before the next call (`Store::group_room`), or null when a checkpoint must follow.
    /// `refuse_last`: the last set is the caller's, refused when the buffer write fails.
    #[napi]
    pub fn set_many_now(&self, items: String, refuse_last: bool) -> napi::Result<Option<u32>> {
        guard(|| {
            with_store(&self.inner, |s| {
                Ok(match apply_set_many(s, &items, refuse_last)? {
                    WriteOutcome::CheckpointDue => None,
                    WriteOutcome::Done => Some(s.group_room().min(u32::MAX as usize) as u32),
                })
            })
        })
    }

    #[napi]
    pub fn delete(&self, id: String) -> napi::Result<Written> {
        guard(|| with_store(&self.inner, |s| deleted(s.delete(&id))))
    }

    #[napi]
    pub fn batch_begin(&self) -> napi::Result<()> {
        guard(|| with_store(&self.inner, |s| s.batch_begin()))
    }

    #[napi]
    pub fn batch_commit(&self) -> napi::Result<Written> {
        guard(|| with_store(&self.inner, |s| s.batch_commit().map(Written::from)))
    }

    /// Reverses the open batch (`keep_order`: records it deleted go back in their place).
    #[napi]
    pub fn batch_rollback(&self, keep_order: bool) -> napi::Result<RolledBack> {
        guard(|| {
            with_store(&self.inner, |s| {
                let (effects, reordered) = s.batch_rollback(keep_order)?;
                Ok(RolledBack {
                    effects: effects_json(&effects),
                    reordered,
                })
            })
        })
    }

    /// A record's text (`id` a JSON string token), or null when there is none: the first read
    /// of a record the view has not decoded.
    #[napi]
    pub fn record_text(&self, id: String) -> napi::Result<Option<String>> {
        guard(|| {
            with_store(&self.inner, |s| {
                Ok(s.records().get(&id)?.map(|t| t.into_owned()))
            })
        })
    }

    /// Whether there is a record of `id` (a JSON string token): `has` after a lazy open.
    #[napi]
    pub fn has_record(&self, id: String) -> napi::Result<bool> {
        guard(|| with_store(&self.inner, |s| s.records().contains(&id)))
    }

    /// Every record id, in iteration order.
    #[napi(ts_return_type = "string[]")]
    pub fn record_ids(&self) -> napi::Result<Ids> {
        guard(|| {
            with_store(&self.inner, |s| {
                let mut ids = Vec::with_capacity(s.records().len());
                s.records().visit(|id, _| {
                    ids.push(json::string_units(id).map_err(|e| Error::Corrupt(e.to_string()))?);
                    Ok(())
                })?;
                Ok(Ids(ids))
            })
        })
    }

    /// Undoes the last op; the view changes, or null when there was nothing to undo.
    #[napi]
    pub fn undo(&self) -> napi::Result<Option<Undone>> {
        guard(|| with_store(&self.inner, |s| Ok(s.undo()?.map(undone))))
    }

    #[napi]
    pub fn flush(&self) -> napi::Result<()> {
        guard(|| with_store(&self.inner, |s| s.flush()))
    }

    /// Op lines since the last checkpoint (with `ts > since` when given), as a JSON array.
    #[napi]
    pub fn get_ops(&self, since: Option<String>) -> napi::Result<String> {
        let log = self.op_log()?;
        let ops = log.lock();
        Ok(lines_json(ops.iter().filter(|l| {
            since.as_deref().is_none_or(|t| &*l.op.ts > t)
        })))
    }

    #[napi]
    pub fn get_history(&self, id: String) -> napi::Result<String> {
        let log = self.op_log()?;
        let ops = log.lock();
        Ok(lines_json(ops.iter().filter(|l| l.op.id == id)))
    }

    /// The manifest info, for the facade's cache.
    #[napi]
    pub fn manifest(&self) -> napi::Result<ManifestInfo> {
        guard(|| manifest_info(&self.inner))
    }

    #[napi]
    pub fn record_count(&self) -> napi::Result<u32> {
        guard(|| with_store(&self.inner, |s| Ok(s.records().len() as u32)))
    }

    #[napi]
    pub fn ops_count(&self) -> napi::Result<u32> {
        let n = self.op_log()?.lock().len();
        Ok(n as u32)
    }

    /// Fsyncs, on a worker, every op file appended to before this call (durable mode).
    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn sync_ops(&self) -> napi::Result<Job> {
        let pending = guard(|| {
            self.inner.settle()?;
            lock(&self.backend)
                .as_ref()
                .map_or_else(|| Ok(Default::default()), |b| b.begin_sync())
        })?;
        Ok(self.job(move || pending.run().map(|_| None)))
    }

    /// Checkpoints on a worker; resolves to the new manifest info.
    #[napi(ts_return_type = "Promise<CheckpointDone>")]
    pub fn checkpoint(&self) -> Job<CheckpointDone> {
        let inner = self.inner.clone();
        self.job(move || {
            let reset = checkpoint(&inner)?;
            checkpoint_result(&inner, reset)
        })
    }

    /// A write made a checkpoint due (single writer, native filesystem): cuts the log now and
    /// returns the job that writes the checkpoint on a worker while sets and deletes go on
    /// (resolving as `checkpoint` does), or null when the checkpoint in progress writes it
    /// next (see `Store::checkpoint_due`).
    #[napi(ts_return_type = "Promise<CheckpointDone> | null")]
    pub fn checkpoint_due(&self) -> napi::Result<Option<Job<CheckpointDone>>> {
        let Some(begun) = guard(|| with_store(&self.inner, |s| s.checkpoint_due()))? else {
            return Ok(None);
        };
        let inner = self.inner.clone();
        Ok(Some(self.job(move || {
            finish_checkpoint(&inner, begun)?;
            checkpoint_result(&inner, false)
        })))
    }

    /// Archives the records with these ids into `period`, then checkpoints.
    #[napi(ts_return_type = "Promise<Archived>")]
    pub fn archive(&self, ids: Vec<String>, period: String) -> Job<Archived> {
        let inner = self.inner.clone();
        self.job(move || {
            with_store(&inner, |s| {
                let (moved, reset) = s.archive(&ids, &period)?;
                Ok(Archived {
                    moved: moved as u32,
                    reset,
                })
            })
        })
    }

    /// Resolves to the named segment's records as one pairs batch (see `engine::batch`), or
    /// null when it has none.
    #[napi(ts_return_type = "Promise<[string, string] | null>")]
    pub fn load_archive(&self, name: String) -> napi::Result<Job<Option<Batch>>> {
        let (backend, rel) = guard(|| {
            with_store(&self.inner, |s| {
                Ok((s.backend().clone(), s.find_archive_segment(&name)?))
            })
        })?;
        Ok(self.job(move || {
            let records = backend.load_archive_segment(&rel)?;
            let mut out = PairsBuilder::for_view(records.len());
            for (id, text) in &records {
                out.push(id, text);
            }
            Ok(out.finish())
        }))
    }

    /// Reads ops appended by another writer.
    #[napi(ts_return_type = "Promise<Tailed>")]
    pub fn tail(&self) -> Job<Tailed> {
        let inner = self.inner.clone();
        self.job(move || {
            with_store(&inner, |s| {
                let t = s.tail()?;
                let lines: Vec<&str> = t.lines.iter().map(|l| &**l).collect();
                Ok(Tailed {
                    reset: t.reset,
                    ops: format!("[{}]", lines.join(",")),
                })
            })
        })
    }

    /// Engine work off the JavaScript thread, on a thread of its own for a JavaScript backend.
    fn job<T: Output>(&self, work: impl FnOnce() -> Result<T> + Send + 'static) -> Job<T> {
        let js_backend = lock(&self.backend)
            .as_ref()
            .is_some_and(|b| !b.callable_from_any_thread());
        Job::new(js_backend, work)
    }

    /// The op list, read without the store's mutex, once the sets handed over are in it.
    fn op_log(&self) -> napi::Result<OpLog> {
        guard(|| self.inner.settle())?;
        Ok(lock(&self.ops).clone())
    }

    fn open_backend(&self) -> napi::Result<Arc<dyn Backend>> {
        lock(&self.backend)
            .clone()
            .ok_or_else(|| napi::Error::from_reason(opslog_engine::error::NOT_OPEN))
    }

    /// Streams the snapshot `rel` (the facade passes the current one).
    #[napi]
    pub fn stream_snapshot(&self, rel: String) -> napi::Result<Cursor> {
        Ok(Cursor::snapshot(self.open_backend()?, rel))
    }

    #[napi]
    pub fn stream_ops(&self, rel: String, since: Option<String>) -> napi::Result<Cursor> {
        let log = self.op_log()?;
        let backend = self.open_backend()?;
        // The op list mirrors the file (a writer's own): its lines need no second read and check.
        if let Some(lines) = log.lines_of(&rel, since.as_deref()) {
            return Ok(Cursor::lines(lines));
        }
        Ok(Cursor::ops(backend, rel, since))
    }

    /// Whether `getWalOps` must merge every agent's file (an agent, or a reader of their store).
    #[napi]
    pub fn merges_agents(&self) -> napi::Result<bool> {
        guard(|| with_store(&self.inner, |s| Ok(s.merges_agents())))
    }

    /// Multi-writer `getWalOps`: all agents' ops in `(clock, agent)` order.
    #[napi]
    pub fn stream_merged_ops(&self, since: Option<String>) -> napi::Result<Cursor> {
        guard(|| self.inner.settle())?;
        Ok(Cursor::merged_ops(self.open_backend()?, since))
    }

    // Twins of the writes for JavaScript backends: the same engine calls, on a worker, because
    // their I/O waits for promises on the JavaScript thread.

    #[napi(ts_return_type = "Promise<Written>")]
    pub fn set_async(&self, id: String, data: String) -> Job<Written> {
        let inner = self.inner.clone();
        self.job(move || with_store(&inner, |s| s.set(&id, &data).map(Written::from)))
    }

    #[napi(ts_return_type = "Promise<Written>")]
    pub fn delete_async(&self, id: String) -> Job<Written> {
        let inner = self.inner.clone();
        self.job(move || with_store(&inner, |s| deleted(s.delete(&id))))
    }

    #[napi(ts_return_type = "Promise<Written>")]
    pub fn batch_commit_async(&self) -> Job<Written> {
        let inner = self.inner.clone();
        self.job(move || with_store(&inner, |s| s.batch_commit().map(Written::from)))
    }

    #[napi(ts_return_type = "Promise<Undone | null>")]
    pub fn undo_async(&self) -> Job<Option<Undone>> {
        let inner = self.inner.clone();
        self.job(move || with_store(&inner, |s| Ok(s.undo()?.map(undone))))
    }

    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn flush_async(&self) -> Job {
        let inner = self.inner.clone();
        self.job(move || with_store(&inner, |s| s.flush().map(|_| None)))
    }

    /// Flushes, checkpoints when configured, releases the lock; on a worker.
    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn close(&self) -> Job {
        let (inner, backend) = (self.inner.clone(), self.backend.clone());
        self.job(move || {
            let due = with_store(&inner, |s| {
                if !s.options().read_only {
                    s.flush()?;
                }
                s.checkpoint_due_on_close()
            })?;
            if due {
                checkpoint(&inner)?;
            }
            let store = inner.take();
            if let Some(mut s) = store {
                s.release()?;
            }
            lock(&backend).take();
            Ok(None)
        })
    }
}

impl Drop for NativeStore {
    /// A store dropped without `close` (the JavaScript object collected) ends its thread.
    fn drop(&mut self) {
        self.inner.shut_down();
    }
}
