//! Multi-writer mode (`agentId`): each agent appends to its own op file, registered in the
//! manifest's `activeAgentOps`; state is the snapshot with every agent's ops applied in
//! `(clock, agent)` order.
//!
//! What keeps every acknowledged write: only an agent ever replaces its own op file, and only in
//! its own compaction. A compaction runs under `.compact-lock`, re-reads the manifest and every
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

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{apply, Change, Fetched, OpenInfo, Options, Store, TailResult};
use crate::backend::{AgentLockState, AgentRelease, Backend};
use crate::error::{Error, Result};
use crate::manifest::{Manifest, Stats};
use crate::merge;
use crate::op::Op;
use crate::records::Records;
use crate::time;
use crate::wal::{LoggedOp, ReadResult};

/// How long registration and archive wait for another agent's compaction.
const LOCK_WAIT: Duration = Duration::from_secs(30);

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

/// The pause before the next try of a held compaction lock, after `tries` failed ones. On the
/// filesystem a try is a system call: every 20 ms. On a remote backend a try is round trips (on
/// S3 a conditional PUT and a GET of the lock), so the pause doubles up to `REMOTE_LOCK_PAUSE_MAX`
/// (issue 21): a wait of a second for another agent's compaction costs 7 tries, not 50.
fn lock_pause(remote: bool, tries: u32) -> Duration {
    if !remote {
        return Duration::from_millis(20);
    }
    let ms = 20u64.saturating_mul(1 << tries.min(8));
    Duration::from_millis(ms).min(REMOTE_LOCK_PAUSE_MAX)
}

/// The longest pause between two tries of a held compaction lock on a remote backend.
const REMOTE_LOCK_PAUSE_MAX: Duration = Duration::from_millis(250);

/// Takes the compaction lock, waiting while another agent holds it.
fn take_compaction_lock(backend: &dyn Backend) -> Result<()> {
    let started = Instant::now();
    let mut tries = 0;
    while !backend.try_compaction_lock()? {
        if started.elapsed() > LOCK_WAIT {
            return Err(Error::Invalid(format!(
                "Compaction lock held by another agent for more than {}s",
                LOCK_WAIT.as_secs()
            )));
        }
        std::thread::sleep(lock_pause(backend.remote(), tries));
        tries += 1;
    }
    Ok(())
}

/// Takes this agent's own lock for as long as it is open: two processes writing as one agent
/// would interleave their clocks in one file. A compaction retiring the agent holds the lock
/// only while it holds `.compact-lock`, so a lock that is held is tried once more after that.
fn lock_own(backend: &dyn Backend, agent: &str) -> Result<()> {
    let AgentLockState::Held(_) = backend.lock_agent(agent, true)? else {
        return Ok(());
    };
    take_compaction_lock(backend)?;
    let again = backend.lock_agent(agent, true);
    let released = backend.release_compaction_lock();
    if let AgentLockState::Held(pid) = again? {
        let holder = if pid > 0 {
            format!("process {pid}")
        } else {
            "another process".to_string()
        };
        return Err(Error::Invalid(format!(
            "Agent '{agent}' is already open in {holder} ({}): two writers on one agent's op file would interleave their clocks; open with another agentId or close the other one first",
            crate::error::display_join(
                backend.display(),
                &crate::lock::agent_lock_name(agent)
            )
        )));
    }
    if released.is_err() {
        backend.unlock_agent(agent, AgentRelease::Undo);
    }
    released
}

/// This agent's own op file as the store logged it. Only the agent appends to that file, so a
/// refresh or compaction need not read it back: one round trip fewer per call on a remote
/// backend (issue 21).
struct OwnFile {
    rel: String,
    ops: Vec<LoggedOp>,
    len: u64,
}

fn load_merged(
    backend: &dyn Backend,
    manifest: &Manifest,
    agent: Option<&str>,
    with_snapshot: bool,
    known: Option<&OwnFile>,
    base: Option<&Base>,
) -> Result<Merged> {
    let kept = base.filter(|b| with_snapshot && b.snapshot == manifest.current_snapshot);
    let (records, version, loaded) = match kept {
        Some(b) => (b.records.clone(), b.version, false),
        None if with_snapshot => {
            let (records, version) = super::load_snapshot(backend, manifest)?;
            (records, version, true)
        }
        None => (Records::default(), manifest.version as f64, false),
    };
    let files = manifest.agent_files();
    let mut lists = Vec::with_capacity(files.len());
    let mut max_clock = manifest.snapshot_clock.unwrap_or(0);
    let mut reads = Vec::with_capacity(files.len());
    let mut own_read = None;
    let mut missing = false;
    for (file_agent, rel) in files {
        let own = agent == Some(file_agent.as_str());
        let mut read = match known.filter(|k| own && k.rel == rel) {
            Some(k) => ReadResult {
                ops: k.ops.clone(),
                complete_len: k.len,
                ..ReadResult::default()
            },
            // Other agents may be appending to their files right now.
            None => backend.read_ops(&rel, 0, !own)?,
        };
        missing |= read.missing;
        let mark = manifest.agent_clock(&file_agent);
        let top = read
            .ops
            .iter()
            .filter_map(|l| l.op.clock)
            .max()
            .unwrap_or(0)
            .max(mark.unwrap_or(0));
        max_clock = max_clock.max(top);
        let ops = std::mem::take(&mut read.ops);
        lists.push(
            ops.into_iter()
                .filter(|l| mark.is_none_or(|m| l.op.clock.unwrap_or(0) > m))
                .collect(),
        );
        reads.push(FileRead {
            agent: file_agent,
            rel,
            top,
            len: read.complete_len,
        });
        if own {
            own_read = Some(read);
        }
    }
    Ok(Merged {
        records,
        version,
        loaded,
        ops: merge::merge(lists),
        max_clock,
        files: reads,
        own_read,
        missing,
    })
}

/// `load_merged` of the current manifest: when a file it names is gone (a compaction retired
/// its agent, or replaced the snapshot, after the manifest was read), of the newer manifest.
fn load_current(
    backend: &dyn Backend,
    mut manifest: Manifest,
    agent: Option<&str>,
    with_snapshot: bool,
    known: Option<&OwnFile>,
    base: Option<&Base>,
) -> Result<(Manifest, Merged)> {
    loop {
        let loaded = load_merged(backend, &manifest, agent, with_snapshot, known, base);
        if matches!(&loaded, Ok(m) if !m.missing) {
            return Ok((manifest, loaded?));
        }
        match backend.read_manifest()? {
            Some(newer) if newer != manifest => manifest = newer,
            _ => return Ok((manifest, loaded?)),
        }
    }
}

fn read_current_manifest(backend: &dyn Backend) -> Result<Manifest> {
    present(backend.read_manifest()?)
}

fn present(manifest: Option<Manifest>) -> Result<Manifest> {
    manifest.ok_or_else(|| Error::manifest_gone_on_refresh())
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

    /// Runs `f` holding the compaction lock. `wait`: retry while another agent holds it;
    /// otherwise `Ok(None)` when it is held. Nested calls run `f` under the lock already held.
    fn with_compaction_lock<T>(
        &mut self,
        wait: bool,
        f: impl FnOnce(&mut Store) -> Result<T>,
    ) -> Result<Option<T>> {
        if self.compaction_locked {
            return f(self).map(Some);
        }
        if wait {
            take_compaction_lock(&*self.backend)?;
        } else if !self.backend.try_compaction_lock()? {
            return Ok(None);
        }
        self.compaction_locked = true;
        let result = f(self);
        self.compaction_locked = false;
        let released = self.backend.release_compaction_lock();
        let value = result?;
        released?;
        Ok(Some(value))
    }

    /// Adds this agent's op file to the manifest.
    fn register(&mut self) -> Result<()> {
        let agent = self.agent().expect("multi-writer").to_string();
        self.with_compaction_lock(true, |s| {
            let mut manifest = read_current_manifest(&*s.backend)?;
            let own = s.backend.create_agent_ops_file(&agent)?;
            let agents = manifest
                .active_agent_ops
                .get_or_insert_with(|| vec![(String::new(), manifest.active_ops.clone())]);
            agents.retain(|(a, _)| *a != agent);
            agents.push((agent.clone(), own.clone()));
            s.backend.publish_manifest(&manifest, &[&own])?;
            s.manifest = manifest;
            s.manifest_token = None;
            s.active_ops = own;
            s.written = 0;
            Ok(())
        })?;
        Ok(())
    }

    /// Compaction in multi-writer mode; `archive` moves records into a segment first. `Ok(None)`
    /// when another agent is compacting and `wait` is false.
    pub(super) fn compact_multi(
        &mut self,
        wait: bool,
        archive: Option<(&[String], &str)>,
    ) -> Result<Option<usize>> {
        self.with_compaction_lock(wait, |s| s.compact_multi_locked(archive))
    }

    fn compact_multi_locked(&mut self, archive: Option<(&[String], &str)>) -> Result<usize> {
        let agent = self.agent().expect("multi-writer").to_string();
        let manifest = read_current_manifest(&*self.backend)?;
        let known = self.own_file_known();
        let (manifest, merged) = load_current(
            &*self.backend,
            manifest,
            Some(&agent),
            true,
            known.as_ref(),
            self.base.as_ref(),
        )?;
        let mut records = merged.records;
        for mut logged in merged.ops {
            apply(&mut records, &mut logged.op)?;
        }
        let mut segments = manifest.archive_segments.clone();
        let mut moved_count = 0;
        if let Some((ids, period)) = archive {
            let moved = records.pairs_of(ids)?;
            if !moved.is_empty() {
                let segment = self.backend.write_archive_segment(period, &moved)?;
                if !segments.contains(&segment) {
                    segments.push(segment);
                }
                for (id, _) in &moved {
                    records.remove(id)?;
                }
                moved_count = moved.len();
            }
        }
        let (snapshot, written_records) = self
            .backend
            .write_snapshot_for_checkpoint(&records, self.version)?;
        let own = self.backend.create_agent_ops_file(&agent)?;
        let written = [snapshot.clone(), own.clone()];
        // Every other agent keeps its file but those retired; the single-writer file ("") is
        // now all in the snapshot.
        let retiring = self.closed_agents(&merged.files, &agent);
        let mut agents: Vec<(String, String)> =
            manifest.active_agent_ops.clone().unwrap_or_default();
        agents.retain(|(a, _)| !a.is_empty() && !retiring.iter().any(|r| r.agent == *a));
        match agents.iter_mut().find(|(a, _)| *a == agent) {
            Some(slot) => slot.1 = own.clone(),
            None => agents.push((agent.clone(), own.clone())),
        }
        let clocks = merged
            .files
            .iter()
            .filter(|f| agents.iter().any(|(b, _)| *b == f.agent))
            .map(|f| (f.agent.clone(), f.top))
            .collect();
        let next = Manifest {
            version: self.version as u64,
            current_snapshot: snapshot,
            active_ops: own.clone(),
            archive_segments: segments,
            stats: Stats {
                active_records: records.len() as u64,
                archived_records: manifest.stats.archived_records + moved_count as u64,
                ops_count: 0,
                created: manifest.stats.created.clone(),
                last_checkpoint: time::now_iso(),
            },
            active_agent_ops: Some(agents),
            agent_clocks: Some(clocks),
            snapshot_clock: Some(merged.max_clock),
        };
        if let Err(e) = self
            .backend
            .publish_manifest(&next, &[&written[0], &written[1]])
        {
            for retiree in &retiring {
                self.backend
                    .unlock_agent(&retiree.agent, AgentRelease::Keep);
            }
            return Err(e);
        }
        if self.backend.remote() {
            // The new snapshot holds exactly these records.
            self.base = Some(Base {
                snapshot: next.current_snapshot.clone(),
                records: records.clone(),
                version: self.version,
            });
        }
        self.records = Arc::new(written_records.unwrap_or(records));
        self.ops.replace(Vec::new(), "");
        self.archived = next.stats.archived_records;
        let garbage = self.sweep(&manifest, &next, &retiring);
        self.manifest = next;
        self.manifest_token = None;
        // Here, not on a thread: a compaction resolves with the directory settled (the agents it
        // retired gone from it too).
        self.backend.remove_files(&garbage);
        self.active_ops = own;
        self.written = 0;
        self.clock = self.clock.max(merged.max_clock);
        Ok(moved_count)
    }

    /// The agents whose files a compaction read that it can retire, their locks taken: agents of
    /// ours (they have a lock file) that are not open and whose file has not grown since.
    fn closed_agents<'f>(&self, files: &'f [FileRead], compacting: &str) -> Vec<&'f FileRead> {
        let mut closed = Vec::new();
        for file in files {
            if file.agent.is_empty() || file.agent == compacting {
                continue;
            }
            if !matches!(
                self.backend.lock_agent(&file.agent, false),
                Ok(AgentLockState::Taken)
            ) {
                continue;
            }
            // It may have opened, written and closed again since its file was read.
            match self.backend.read_ops(&file.rel, file.len, true) {
                Ok(read) if read.ops.is_empty() => closed.push(file),
                _ => self.backend.unlock_agent(&file.agent, AgentRelease::Keep),
            }
        }
        closed
    }

    /// Once `next` replaced `previous`: releases and removes the retired agents' locks, and
    /// returns the files to delete: the retired agents' op files, and whatever neither manifest
    /// names (the generations before `previous`, what crashed or closed sessions left, lock files
    /// of agents that are neither registered nor open). The files of `previous` stay for
    /// readers still on it (and for whoever holds an older manifest: it rereads the manifest
    /// when a file is gone).
    fn sweep(&self, previous: &Manifest, next: &Manifest, retired: &[&FileRead]) -> Vec<String> {
        for retiree in retired {
            self.backend
                .unlock_agent(&retiree.agent, AgentRelease::Remove);
        }
        let keep: HashSet<&str> = next
            .paths()
            .chain(previous.paths())
            .filter(|p| !retired.iter().any(|r| r.rel == *p))
            .collect();
        let registered = |agent: &str| {
            next.active_agent_ops
                .iter()
                .flatten()
                .any(|(a, _)| a == agent)
        };
        for agent in self.backend.locked_agents() {
            let orphan = !registered(&agent)
                && matches!(
                    self.backend.lock_agent(&agent, false),
                    Ok(AgentLockState::Taken)
                );
            if orphan {
                self.backend.unlock_agent(&agent, AgentRelease::Remove);
            }
        }
        let mut garbage = self.backend.stale_files(&[]);
        garbage.extend(self.backend.agent_files());
        garbage.retain(|f| !keep.contains(f.as_str()));
        garbage
    }

    /// Re-reads every other agent's file, and the manifest and the snapshot where they changed
    /// (a remote backend is asked for the manifest's version first, and the snapshot it loaded
    /// is kept); returns the ops not seen before.
    pub(super) fn reload_multi(&mut self) -> Result<TailResult> {
        let agent = self.agent().map(str::to_string);
        let (manifest, token) = match self.changed_manifest()? {
            None => (self.manifest.clone(), self.manifest_token.clone()),
            Some(Fetched { manifest, token }) => (present(manifest)?, token),
        };
        let known = self.own_file_known();
        let (manifest, merged) = load_current(
            &*self.backend,
            manifest,
            agent.as_deref(),
            !self.opts.skip_load,
            known.as_ref(),
            self.base.as_ref(),
        )?;
        self.keep_base(&manifest, &merged);
        let seen: HashSet<(Option<String>, Option<u64>)> = self
            .ops
            .lock()
            .iter()
            .map(|l| (l.op.agent.clone(), l.op.clock))
            .collect();
        let lines = merged
            .ops
            .iter()
            .filter(|l| !seen.contains(&(l.op.agent.clone(), l.op.clock)))
            .map(|l| l.line.clone())
            .collect();
        let mut records = merged.records;
        if !self.opts.skip_load {
            let mut ops = merged.ops;
            for logged in &mut ops {
                apply(&mut records, &mut logged.op)?;
            }
            self.records = Arc::new(records);
            self.version = merged.version.max(self.version);
            self.ops.replace(ops, "");
        }
        self.archived = manifest.stats.archived_records;
        self.clock = self.clock.max(merged.max_clock);
        let own = self.own_file(&manifest);
        if agent.is_none() {
            self.active_ops = manifest.active_ops.clone();
        }
        self.manifest = manifest;
        // Older than or as new as the manifest held (see `changed_manifest`).
        self.manifest_token = token;
        match own {
            Some(rel) => {
                if rel != self.active_ops && !self.opts.read_only {
                    let read = merged.own_read.unwrap_or_default();
                    self.backend.open_for_append(&rel, &read)?;
                    self.written = read.complete_len + u64::from(read.missing_newline);
                }
                self.active_ops = rel;
            }
            None if !self.opts.read_only => self.register()?,
            None => {}
        }
        Ok(TailResult { lines, reset: true })
    }

    /// Undoes this agent's own last op (one no snapshot holds yet), then reloads. Holds the
    /// compaction lock throughout: another agent's compaction could otherwise take the op into
    /// its snapshot between the check and the cut, and the undone op would come back.
    pub(super) fn undo_multi(&mut self) -> Result<Option<Change>> {
        let agent = self.agent().expect("multi-writer").to_string();
        let cut = self.with_compaction_lock(true, |s| {
            s.reload_multi()?;
            let pos = s
                .ops
                .lock()
                .iter()
                .rev()
                .find(|l| l.op.agent.as_deref() == Some(agent.as_str()))
                .map(|l| l.pos);
            let Some(pos) = pos else {
                return Ok(false);
            };
            s.backend.truncate_ops(&s.active_ops, pos)?;
            s.written = pos;
            // The reload takes this agent's own ops from the log (see `own_file_known`).
            s.ops
                .lock()
                .retain(|l| l.op.agent.as_deref() != Some(agent.as_str()) || l.pos < pos);
            s.reload_multi()?;
            Ok(true)
        })?;
        Ok(Some(if cut == Some(true) {
            Change::Reset
        } else {
            Change::ReloadedOnly
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_pause_backs_off_on_remote_backends_only() {
        assert_eq!(lock_pause(false, 0), Duration::from_millis(20));
        assert_eq!(lock_pause(false, 30), Duration::from_millis(20));
        let remote: Vec<u64> = (0..6)
            .map(|t| lock_pause(true, t).as_millis() as u64)
            .collect();
        assert_eq!(remote, [20, 40, 80, 160, 250, 250]);
        assert_eq!(lock_pause(true, u32::MAX), REMOTE_LOCK_PAUSE_MAX);
        // A wait of a second: 8 tries on a remote backend (20+40+80+160+250+250+250 ms).
        let mut waited = Duration::ZERO;
        let mut tries = 0;
        while waited < Duration::from_secs(1) {
            waited += lock_pause(true, tries);
            tries += 1;
        }
        assert_eq!(tries, 7);
    }
}
