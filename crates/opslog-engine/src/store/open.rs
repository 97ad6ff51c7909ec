//! Opening a single writer's store (under its lock, or read-only), replaying its op log, and
//! closing it: the flush, the checkpoint on close and the release of the lock.

use std::sync::Arc;

use super::{apply, OpenInfo, Options, Store};
use crate::backend::Backend;
use crate::error::{display_join, Error, Result};
use crate::manifest::Manifest;
use crate::oplog::OpLog;
use crate::records::Records;
use crate::time;

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
    pub(super) fn open_locked(
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

    pub(super) fn new(
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
            appends: 0,
            cut: None,
            removal: None,
            ts_of: (0, Arc::from("")),
            line_buf: String::new(),
            manifest_token: None,
            base: None,
        }
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
                .unlock_agent(agent, crate::backend::AgentRelease::Keep);
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
}

/// A writable open of a directory without `manifest.json` would start an empty store beside
/// snapshot and op files that hold data (a manifest deleted or lost in a copy): refused. Files
/// with no data are what a crash while creating the store leaves, and are taken over.
pub(super) fn refuse_orphaned_data(backend: &dyn Backend) -> Result<()> {
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
pub(super) fn given_or_read(
    backend: &dyn Backend,
    read: Option<Manifest>,
) -> Result<Option<Manifest>> {
    match read {
        Some(m) => Ok(Some(m)),
        None => backend.read_manifest(),
    }
}

/// Loads the manifest's snapshot; a missing file is reported as the reference words it.
pub(super) fn load_snapshot(backend: &dyn Backend, manifest: &Manifest) -> Result<(Records, f64)> {
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
