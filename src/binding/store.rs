//! `NativeStore`: the engine's `Store` behind a mutex. Fast calls (writes, undo, reads of the op
//! list) run on the JavaScript thread; open, checkpoints, archive and close run on workers.

use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{Function, Promise};
use napi_derive::napi;

use super::cursor::Cursor;
use super::guard::{guard, lock};
use super::job::Job;
use super::js_backend::{Args, JsBackend};
use super::text::BatchText;
use opslog_engine::backend::Backend;
use opslog_engine::batch::PairsBuilder;
use opslog_engine::error::{Error, Result};
use opslog_engine::fs_backend::FsBackend;
use opslog_engine::handover::{apply_set_many, StoreCell};
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

fn outcome_code(o: WriteOutcome) -> u32 {
    match o {
        WriteOutcome::Done => 0,
        WriteOutcome::CheckpointDue => 1,
    }
}

/// `[[id, record|null], ...]`
fn effects_json(effects: &[Effect]) -> String {
    let items: Vec<String> = effects
        .iter()
        .map(|e| format!("[{},{}]", e.id, e.record.as_deref().unwrap_or("null")))
        .collect();
    format!("[{}]", items.join(","))
}

/// The view change of an undo: `[[id, record|null], ...]`, or `"reset"` (rebuild the view).
fn change_json(change: &Change) -> String {
    match change {
        Change::Effects(effects) => effects_json(effects),
        Change::Reset => "\"reset\"".to_string(),
        Change::ReloadedOnly => "\"reloaded\"".to_string(),
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

/// What a checkpoint job resolves to: whether the view must be rebuilt, and the manifest info.
fn checkpoint_result(inner: &Shared, reset: bool) -> Result<Option<String>> {
    let manifest = manifest_json(inner)?.unwrap_or_default();
    Ok(Some(format!(
        "{{\"reset\":{reset},\"manifest\":{manifest}}}"
    )))
}

fn manifest_json(inner: &Shared) -> Result<Option<String>> {
    with_store(inner, |s| Ok(Some(s.manifest().info_json())))
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

    /// Opens the store on a worker; resolves to `{"storedVersion":n,"needsMigration":bool}`.
    /// With `dispatch`, all I/O goes through a JavaScript `StorageBackend` (lib/js-backend.js).
    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn open(
        &self,
        dir: String,
        options: NativeOptions,
        dispatch: Option<Function<'_, Args, Promise<Option<String>>>>,
    ) -> napi::Result<Job> {
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
            Ok(Some(format!(
                "{{\"storedVersion\":{},\"needsMigration\":{}}}",
                opslog_engine::json::format_number(info.stored_version),
                info.needs_migration
            )))
        }))
    }

    /// Records from slot `start` on, at most `max`, as a pairs batch with the slot to go on
    /// from: `[items, ids, next]` (see `engine::batch`), or null when there are no more.
    #[napi(ts_return_type = "[string, string, number] | null")]
    pub fn export_records(&self, start: u32, max: u32) -> napi::Result<Option<BatchText>> {
        guard(|| {
            with_store(&self.inner, |s| {
                let max = max.max(1) as usize;
                let mut out = PairsBuilder::new(max);
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

    /// 0 when done, 1 when a checkpoint must follow.
    #[napi]
    pub fn set(&self, id: String, data: String) -> napi::Result<u32> {
        guard(|| with_store(&self.inner, |s| s.set(&id, data).map(outcome_code)))
    }

    /// `async` mode: queues sets the facade collected (see `handover`); they apply in order on
    /// the store's own thread, or sooner when another call needs the store.
    #[napi]
    pub fn set_many(&self, items: String) -> napi::Result<()> {
        guard(|| self.inner.hand_over(items))
    }

    /// `group` mode's collected sets, and those of the open batch, in one call (see
    /// `Store::set_many`): applied now, on this thread. Returns 0 when a checkpoint must follow,
    /// else how many sets `group` mode may collect before the next call (`Store::group_room`).
    /// `refuse_last`: the last set is the caller's, refused when the buffer write fails.
    #[napi]
    pub fn set_many_now(&self, items: String, refuse_last: bool) -> napi::Result<u32> {
        guard(|| {
            with_store(&self.inner, |s| {
                Ok(match apply_set_many(s, &items, refuse_last)? {
                    WriteOutcome::CheckpointDue => 0,
                    WriteOutcome::Done => s.group_room().min(u32::MAX as usize) as u32,
                })
            })
        })
    }

    /// 0 or 1 as for `set`; 2 when the record does not exist.
    #[napi]
    pub fn delete(&self, id: String) -> napi::Result<u32> {
        guard(|| {
            with_store(&self.inner, |s| match s.delete(&id) {
                Ok(o) => Ok(outcome_code(o)),
                Err(Error::NotFound(_)) => Ok(2),
                Err(e) => Err(e),
            })
        })
    }

    #[napi]
    pub fn batch_begin(&self) -> napi::Result<()> {
        guard(|| with_store(&self.inner, |s| s.batch_begin()))
    }

    #[napi]
    pub fn batch_commit(&self) -> napi::Result<u32> {
        guard(|| with_store(&self.inner, |s| s.batch_commit().map(outcome_code)))
    }

    /// Reverses the open batch (`keep_order`: records it deleted go back in their place);
    /// returns `{"effects":[[id, record|null], ...],"reordered":bool}` (`reordered`: the view
    /// must take the order of `recordIds` afterwards).
    #[napi]
    pub fn batch_rollback(&self, keep_order: bool) -> napi::Result<String> {
        guard(|| {
            with_store(&self.inner, |s| {
                let (effects, reordered) = s.batch_rollback(keep_order)?;
                Ok(format!(
                    "{{\"effects\":{},\"reordered\":{reordered}}}",
                    effects_json(&effects)
                ))
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

    /// Every record id, in iteration order, as a JSON array.
    #[napi]
    pub fn record_ids(&self) -> napi::Result<String> {
        guard(|| {
            with_store(&self.inner, |s| {
                let mut out = String::from("[");
                s.records().visit(|id, _| {
                    if out.len() > 1 {
                        out.push(',');
                    }
                    out.push_str(id);
                    Ok(())
                })?;
                out.push(']');
                Ok(out)
            })
        })
    }

    /// Undoes the last op; the view changes, or null when there was nothing to undo.
    #[napi]
    pub fn undo(&self) -> napi::Result<Option<String>> {
        guard(|| with_store(&self.inner, |s| Ok(s.undo()?.map(|c| change_json(&c)))))
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

    /// `{"opsCount":n,"version":v}` plus the manifest info, for the facade's caches.
    #[napi]
    pub fn manifest(&self) -> napi::Result<Option<String>> {
        guard(|| manifest_json(&self.inner))
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
    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn checkpoint(&self) -> Job {
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
    #[napi(ts_return_type = "Promise<string | null> | null")]
    pub fn checkpoint_due(&self) -> napi::Result<Option<Job>> {
        let Some(begun) = guard(|| with_store(&self.inner, |s| s.checkpoint_due()))? else {
            return Ok(None);
        };
        let inner = self.inner.clone();
        Ok(Some(self.job(move || {
            finish_checkpoint(&inner, begun)?;
            checkpoint_result(&inner, false)
        })))
    }

    /// Archives the records with these ids into `period`, then checkpoints; resolves to the count.
    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn archive(&self, ids: Vec<String>, period: String) -> Job {
        let inner = self.inner.clone();
        self.job(move || {
            with_store(&inner, |s| {
                let (moved, reset) = s.archive(&ids, &period)?;
                Ok(Some(format!("{{\"moved\":{moved},\"reset\":{reset}}}")))
            })
        })
    }

    /// Resolves to the named segment's records as `[id, record, ...]`.
    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn load_archive(&self, name: String) -> napi::Result<Job> {
        let (backend, rel) = guard(|| {
            with_store(&self.inner, |s| {
                Ok((s.backend().clone(), s.find_archive_segment(&name)?))
            })
        })?;
        Ok(self.job(move || {
            let records = backend.load_archive_segment(&rel)?;
            let items: Vec<String> = records
                .iter()
                .map(|(id, text)| format!("{id},{text}"))
                .collect();
            Ok(Some(format!("[{}]", items.join(","))))
        }))
    }

    /// Reads ops appended by another writer; resolves to `{"reset":bool,"ops":[...]}`.
    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn tail(&self) -> Job {
        let inner = self.inner.clone();
        self.job(move || {
            with_store(&inner, |s| {
                let t = s.tail()?;
                let lines: Vec<&str> = t.lines.iter().map(|l| &**l).collect();
                Ok(Some(format!(
                    "{{\"reset\":{},\"ops\":[{}]}}",
                    t.reset,
                    lines.join(",")
                )))
            })
        })
    }

    /// Engine work off the JavaScript thread, on a thread of its own for a JavaScript backend.
    fn job(&self, work: impl FnOnce() -> Result<Option<String>> + Send + 'static) -> Job {
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

    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn set_async(&self, id: String, data: String) -> Job {
        let inner = self.inner.clone();
        self.job(move || {
            with_store(&inner, |s| {
                s.set(&id, data).map(|o| Some(outcome_code(o).to_string()))
            })
        })
    }

    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn delete_async(&self, id: String) -> Job {
        let inner = self.inner.clone();
        self.job(move || {
            with_store(&inner, |s| match s.delete(&id) {
                Ok(o) => Ok(Some(outcome_code(o).to_string())),
                Err(Error::NotFound(_)) => Ok(Some("2".into())),
                Err(e) => Err(e),
            })
        })
    }

    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn batch_commit_async(&self) -> Job {
        let inner = self.inner.clone();
        self.job(move || {
            with_store(&inner, |s| {
                s.batch_commit().map(|o| Some(outcome_code(o).to_string()))
            })
        })
    }

    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn undo_async(&self) -> Job {
        let inner = self.inner.clone();
        self.job(move || with_store(&inner, |s| Ok(s.undo()?.map(|c| change_json(&c)))))
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
