//! Checkpoints: the cut of the log, the snapshot written off the store while writes go on, the
//! switch to the new generation and the removal of the files it supersedes.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use super::{apply, Store};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::records::{FxHasher, Records};
use crate::time;
use crate::wal::{LoggedOp, ReadResult};

/// A checkpoint in progress, from `checkpoint_begin` to `checkpoint_finish`: its snapshot is
/// being written from the records as they were at the cut, while sets and deletes go on.
pub(super) struct Cut {
    /// The ops the snapshot covers, taken out of the op list: `getOps`, undo and the threshold
    /// see only the ops after the cut, as they would after the checkpoint.
    pub(super) ops: Vec<LoggedOp>,
    /// Where the ops after the cut start in the active op file; they are carried into the new
    /// op file when the checkpoint switches to it.
    pub(super) pos: u64,
    /// The ops up to the next cut, when a checkpoint came due again while this one runs
    /// (`checkpoint_due`): taken out of the op list too, and covered by the checkpoint that
    /// `checkpoint_finish` begins next.
    pub(super) later: Vec<LoggedOp>,
    /// Where the ops after that next cut start in the active op file.
    pub(super) later_pos: u64,
    /// Records changed after the cut: id -> index, in `later` followed by the op list, of the
    /// last op on it. Those ops are applied to `records` when the checkpoint finishes: until then
    /// the snapshot writer shares the table, and changing it would copy the whole table.
    pub(super) changed: HashMap<Box<str>, usize, BuildHasherDefault<FxHasher>>,
}

impl Store {
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
    pub(super) fn begin_cut(&mut self, ops: Vec<LoggedOp>, pos: u64) -> Checkpoint {
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
            stats: crate::manifest::Stats {
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
    pub(super) fn apply_unapplied(&mut self, later: &mut [LoggedOp], list: bool) -> Result<()> {
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
    pub(super) fn switch_generation(
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
                logged.write_line_to(&mut carried);
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
    pub(super) fn remove_files(&mut self, files: Vec<String>) {
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
    pub(super) fn finish_removal(&mut self) {
        if let Some(removal) = self.removal.take() {
            let _ = removal.join();
        }
    }

    /// Once a new manifest is current: the files it replaced become the kept previous
    /// generation (power loss may bring back the manifest naming them, see
    /// `Backend::commit_manifest`); returns the generation before them, whose manifest can no
    /// longer come back, to be deleted (SPEC 7.8).
    pub(super) fn retire(&mut self, replaced: Vec<String>) -> Vec<String> {
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
