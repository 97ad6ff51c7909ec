//! An agent's compaction, under `.compact-lock`: every registered file re-read, one snapshot of
//! all of them, the other agents' files kept, closed agents retired and their files swept.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::reload::load_current;
use super::{read_current_manifest, Base, FileRead};
use crate::backend::{AgentLockState, AgentRelease, Backend};
use crate::error::{Error, Result};
use crate::manifest::{Manifest, Stats};
use crate::store::{apply, Store};
use crate::time;

/// How long registration and archive wait for another agent's compaction.
pub(super) const LOCK_WAIT: Duration = Duration::from_secs(30);

/// The pause before the next try of a held compaction lock, after `tries` failed ones. On the
/// filesystem a try is a system call: every 20 ms. On a remote backend a try is round trips (on
/// S3 a conditional PUT and a GET of the lock), so the pause doubles up to `REMOTE_LOCK_PAUSE_MAX`
/// (issue 21): a wait of a second for another agent's compaction costs 7 tries, not 50.
pub(super) fn lock_pause(remote: bool, tries: u32) -> Duration {
    if !remote {
        return Duration::from_millis(20);
    }
    let ms = 20u64.saturating_mul(1 << tries.min(8));
    Duration::from_millis(ms).min(REMOTE_LOCK_PAUSE_MAX)
}

/// The longest pause between two tries of a held compaction lock on a remote backend.
pub(super) const REMOTE_LOCK_PAUSE_MAX: Duration = Duration::from_millis(250);

/// Takes the compaction lock, waiting while another agent holds it.
pub(super) fn take_compaction_lock(backend: &dyn Backend) -> Result<()> {
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
pub(super) fn lock_own(backend: &dyn Backend, agent: &str) -> Result<()> {
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

impl Store {
    /// Runs `f` holding the compaction lock. `wait`: retry while another agent holds it;
    /// otherwise `Ok(None)` when it is held. Nested calls run `f` under the lock already held.
    pub(super) fn with_compaction_lock<T>(
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

    /// Compaction in multi-writer mode; `archive` moves records into a segment first. `Ok(None)`
    /// when another agent is compacting and `wait` is false.
    pub(in crate::store) fn compact_multi(
        &mut self,
        wait: bool,
        archive: Option<(&[String], &str)>,
    ) -> Result<Option<usize>> {
        self.with_compaction_lock(wait, |s| s.compact_multi_locked(archive))
    }

    pub(super) fn compact_multi_locked(
        &mut self,
        archive: Option<(&[String], &str)>,
    ) -> Result<usize> {
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
        // The new file holds nothing for a move at refresh to consolidate (see `consolidate`).
        self.appends = 0;
        self.clock = self.clock.max(merged.max_clock);
        Ok(moved_count)
    }

    /// The agents whose files a compaction read that it can retire, their locks taken: agents of
    /// ours (they have a lock file) that are not open and whose file has not grown since.
    pub(super) fn closed_agents<'f>(
        &self,
        files: &'f [FileRead],
        compacting: &str,
    ) -> Vec<&'f FileRead> {
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
    pub(super) fn sweep(
        &self,
        previous: &Manifest,
        next: &Manifest,
        retired: &[&FileRead],
    ) -> Vec<String> {
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
