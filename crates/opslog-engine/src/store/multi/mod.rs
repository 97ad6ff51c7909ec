//! Multi-writer mode (`agentId`): each agent appends to its own op file, registered in the
//! manifest's `activeAgentOps`; state is the snapshot with every agent's ops applied in
//! `(clock, agent)` order.
//!
//! What keeps every acknowledged write: only an agent ever replaces its own op file, in its own
//! compaction or by moving to a fresh file that holds copies of its unfolded ops (on a remote
//! backend, `consolidate`). A compaction runs under `.compact-lock`, re-reads the manifest and every
//! agent's file first (so the snapshot holds all ops written so far, not the compactor's view),
//! keeps the other agents' files registered, and records in the manifest (`agentClocks`) the
//! highest clock of each file the snapshot holds; readers replay only the ops above it. An agent
//! whose clock lags can still only append ops above its own last clock, so nothing it writes later
//! is mistaken for something the snapshot holds. Registering an agent also edits the manifest,
//! so it takes the same lock.
//!
//! What keeps the store from growing with every agent that ever wrote: an open agent holds its
//! lock file (`.agent-<id>.lock`, an OS lock that dies with its process). A compaction retires
//! every agent of ours that is not open (it takes that lock) and whose file did not grow since
//! the compaction read it: all its ops are in the new snapshot, so its registration, its
//! `agentClocks` entry, its op file and its lock file go. Holding the lock until the new
//! manifest is published keeps the agent from reopening on the file meanwhile; reopened later,
//! it registers again, and `snapshotClock` (the highest clock the snapshot holds) keeps its
//! clock above everything it wrote before. An agent without a lock file (the reference's)
//! may be open without anyone knowing, so it stays registered.
//!
//! Here: opening an agent and registering its file; `compact` is its compaction, `reload` the
//! merge of every agent's ops into its view, `consolidate` the move at refresh.

use std::sync::Arc;

mod compact;
mod consolidate;
mod reload;

use compact::{lock_own, take_compaction_lock};
use reload::load_current;

use super::{Fetched, OpenInfo, Options, Store};
use crate::backend::{AgentRelease, Backend};
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::op::Op;
use crate::records::Records;
use crate::time;
use crate::wal::{LoggedOp, ReadResult};

/// What was read of one registered op file.
struct FileRead {
    agent: String,
    rel: String,
    /// The highest clock in it (or recorded for it).
    top: u64,
    /// How far it was read: anything after this was written since.
    len: u64,
}

/// The current snapshot as loaded, kept on a remote backend so that a refresh or compaction on
/// the same snapshot does not download it again (snapshot files never change once written).
pub(super) struct Base {
    snapshot: String,
    records: Records,
    version: f64,
}

/// Everything the agents' files and the snapshot say, before the ops are applied.
struct Merged {
    records: Records,
    version: f64,
    /// The records were loaded from the snapshot, not taken from the `Base`.
    loaded: bool,
    /// Ops the snapshot does not hold, of every agent, in `(clock, agent)` order.
    ops: Vec<LoggedOp>,
    /// The highest clock seen: in the files, recorded for them, or held by the snapshot.
    max_clock: u64,
    files: Vec<FileRead>,
    /// What was read of this agent's own file.
    own_read: Option<ReadResult>,
    /// A registered file was missing (a compaction may have retired its agent meanwhile).
    missing: bool,
}

/// This agent's own op file as the store logged it. Only the agent appends to that file, so a
/// refresh or compaction need not read it back: one round trip fewer per call on a remote
/// backend (issue 21).
struct OwnFile {
    rel: String,
    ops: Vec<LoggedOp>,
    len: u64,
}

fn read_current_manifest(backend: &dyn Backend) -> Result<Manifest> {
    present(backend.read_manifest()?)
}

fn present(manifest: Option<Manifest>) -> Result<Manifest> {
    manifest.ok_or_else(Error::manifest_gone_on_refresh)
}

impl Store {
    pub(super) fn agent(&self) -> Option<&str> {
        self.opts.agent_id.as_deref()
    }

    /// Opens as `agent`, or (`None`, read-only) as a reader of every agent's writes. `read`: the
    /// manifest, when the caller has just read it.
    pub(super) fn open_multi(
        backend: Arc<dyn Backend>,
        opts: Options,
        agent: Option<&str>,
        read: Option<Manifest>,
    ) -> Result<(Store, OpenInfo)> {
        let writer = agent.filter(|_| !opts.read_only);
        if let Some(agent) = writer {
            lock_own(&*backend, agent)?;
        }
        let opened = Self::open_multi_locked(backend.clone(), opts, agent, read);
        if let (Err(_), Some(agent)) = (&opened, writer) {
            backend.unlock_agent(agent, AgentRelease::Undo);
        }
        opened
    }

    fn open_multi_locked(
        backend: Arc<dyn Backend>,
        opts: Options,
        agent: Option<&str>,
        read: Option<Manifest>,
    ) -> Result<(Store, OpenInfo)> {
        let manifest = match (super::open::given_or_read(&*backend, read)?, agent) {
            (Some(m), _) => m,
            (None, Some(agent)) if !opts.read_only => {
                // Agents may open a new directory together: one creates the store, under the lock.
                take_compaction_lock(&*backend)?;
                let created = match backend.read_manifest() {
                    Ok(Some(m)) => Ok(Err(m)),
                    Ok(None) => Self::create_multi(&backend, &opts, agent).map(Ok),
                    Err(e) => Err(e),
                };
                let released = backend.release_compaction_lock();
                match created? {
                    Ok(store) => {
                        released?;
                        let info = OpenInfo {
                            stored_version: opts.version,
                            needs_migration: false,
                        };
                        return Ok((store, info));
                    }
                    Err(existing) => existing,
                }
            }
            (None, _) => {
                return Err(Error::Invalid(
                    "Cannot open in readOnly mode: no existing store found".into(),
                ))
            }
        };
        let (manifest, merged) =
            load_current(&*backend, manifest, agent, !opts.skip_load, None, None)?;
        let mut store = Store::new(
            backend.clone(),
            opts.clone(),
            manifest.clone(),
            manifest.active_ops.clone(),
            opts.version,
        );
        store.merged = true;
        store.archived = manifest.stats.archived_records;
        store.clock = merged.max_clock;
        store.keep_base(&manifest, &merged);
        let mut info = OpenInfo {
            stored_version: opts.version,
            needs_migration: false,
        };
        if !opts.skip_load {
            store.records = Arc::new(merged.records);
            store.version = merged.version;
            store.replay = merged.ops;
            info = OpenInfo {
                stored_version: merged.version,
                needs_migration: merged.version < opts.version,
            };
            if info.needs_migration {
                store.version = opts.version;
            } else {
                store.finish_replay()?;
            }
        }
        if opts.read_only {
            return Ok((store, info));
        }
        match (store.own_file(&manifest), merged.own_read) {
            (Some(rel), Some(read)) => {
                backend.open_for_append(&rel, &read)?;
                store.written = read.complete_len + u64::from(read.missing_newline);
                store.active_ops = rel;
            }
            _ => store.register()?,
        }
        Ok((store, info))
    }

    /// What this agent wrote to its op file, when the store's log holds all of it (a writable,
    /// loaded agent: its log keeps every op of its own the snapshot does not hold, with its
    /// position in the file).
    fn own_file_known(&self) -> Option<OwnFile> {
        let agent = self.agent()?;
        if self.opts.read_only || self.opts.skip_load || self.active_ops.is_empty() {
            return None;
        }
        // The log drops a set's data once the record holds it: the line has it all.
        let ops = self
            .ops
            .lock()
            .iter()
            .filter(|l| l.op.agent.as_deref() == Some(agent))
            .map(|l| {
                Some(LoggedOp {
                    op: Op::parse(&l.line).ok()?,
                    line: l.line.clone(),
                    pos: l.pos,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(OwnFile {
            rel: self.active_ops.clone(),
            ops,
            len: self.written,
        })
    }

    /// The op file `manifest` registers for this agent.
    fn own_file(&self, manifest: &Manifest) -> Option<String> {
        let agent = self.agent()?;
        manifest
            .active_agent_ops
            .as_ref()?
            .iter()
            .find(|(id, _)| id == agent)
            .map(|(_, p)| p.clone())
    }

    /// Keeps the snapshot `merged` loaded, on a remote backend (see `Base`).
    fn keep_base(&mut self, manifest: &Manifest, merged: &Merged) {
        if merged.loaded && self.backend.remote() {
            self.base = Some(Base {
                snapshot: manifest.current_snapshot.clone(),
                records: merged.records.clone(),
                version: merged.version,
            });
        }
    }

    /// Whether this agent has ops that no snapshot holds, by the current manifest: close
    /// compacts only then. Another agent's compaction may have folded them all (its
    /// `agentClocks` entry for our file reaches our last clock), and the other agents' ops are
    /// theirs to fold when they close, so an agent closing after others compacted takes no
    /// lock and writes nothing.
    pub(super) fn own_ops_unfolded(&mut self) -> Result<bool> {
        let agent = self.agent().expect("multi-writer").to_string();
        let last = self
            .ops
            .lock()
            .iter()
            .filter(|l| l.op.agent.as_deref() == Some(agent.as_str()))
            .filter_map(|l| l.op.clock)
            .max();
        let Some(last) = last else {
            return Ok(false);
        };
        let fetched = self.changed_manifest()?;
        let manifest = match &fetched {
            None => &self.manifest,
            Some(Fetched {
                manifest: Some(m), ..
            }) => m,
            Some(_) => return Ok(true),
        };
        let folded = self.own_file(manifest).as_deref() == Some(self.active_ops.as_str())
            && manifest.agent_clock(&agent).is_some_and(|c| c >= last);
        Ok(!folded)
    }

    /// A new store with this agent's op file as its only one.
    fn create_multi(backend: &Arc<dyn Backend>, opts: &Options, agent: &str) -> Result<Store> {
        let (snapshot, _) =
            backend.write_snapshot_for_checkpoint(&Records::default(), opts.version)?;
        let own = backend.create_agent_ops_file(agent)?;
        let mut manifest = Manifest::fresh(snapshot.clone(), own.clone(), time::now_iso());
        manifest.active_agent_ops = Some(vec![(agent.to_string(), own.clone())]);
        backend.publish_manifest(&manifest, &[&snapshot, &own])?;
        let snapshot = manifest.current_snapshot.clone();
        let mut store = Store::new(backend.clone(), opts.clone(), manifest, own, opts.version);
        store.merged = true;
        if backend.remote() {
            store.base = Some(Base {
                snapshot,
                records: Records::default(),
                version: opts.version,
            });
        }
        Ok(store)
    }

    /// Adds this agent's op file to the manifest.
    fn register(&mut self) -> Result<()> {
        let agent = self.agent().expect("multi-writer").to_string();
        self.with_compaction_lock(true, |s| {
            let manifest = read_current_manifest(&*s.backend)?;
            let own = s.backend.create_agent_ops_file(&agent)?;
            s.switch_own_file(manifest, own, 0)
        })?;
        Ok(())
    }

    /// Publishes `manifest` (the current one, read under the compaction lock) with `own` as
    /// this agent's op file, and appends there from now on (`written`: the bytes it holds).
    fn switch_own_file(&mut self, mut manifest: Manifest, own: String, written: u64) -> Result<()> {
        let agent = self.agent().expect("multi-writer").to_string();
        let agents = manifest
            .active_agent_ops
            .get_or_insert_with(|| vec![(String::new(), manifest.active_ops.clone())]);
        match agents.iter_mut().find(|(a, _)| *a == agent) {
            Some(slot) => slot.1 = own.clone(),
            None => agents.push((agent, own.clone())),
        }
        self.backend.publish_manifest(&manifest, &[&own])?;
        self.manifest = manifest;
        self.manifest_token = None;
        self.active_ops = own;
        self.written = written;
        self.appends = 0;
        Ok(())
    }
}
