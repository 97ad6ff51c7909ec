//! An agent's op file consolidated at refresh, on a remote backend (issue 21).
//!
//! A remote backend may store each append as an object of its own (`@backloghq/opslog-s3` does:
//! one object per `appendOps`), and a reader downloads every object of a file it has not read
//! yet: each op of an agent writing one op per append is a download for every other agent. So
//! when an agent refreshes after `CONSOLIDATE_APPENDS` appends or more since its last refresh,
//! it first moves to a fresh op file that holds its ops no snapshot holds in one append, and the
//! manifest names that file instead of the old one. The other agents, refreshing on the same
//! cadence, have not read those appends yet; the ones that refresh after the move download one
//! object instead of one per append, and anyone opening later skips the folded part of the old
//! file as well.
//!
//! Every acknowledged write is kept at every point: the copies are appended to the new file
//! before the manifest names it, so until the manifest is replaced the old file (which holds
//! every op) is the registered one, and after it the new one holds every op of this agent that
//! the snapshot does not. A crash in between leaves an unregistered file nobody reads. The
//! copies keep their `(clock, agent)`, so order and last-writer-wins are unchanged, and readers
//! skip the ones a snapshot holds by `agentClocks` as before. The manifest is read and replaced
//! under the compaction lock, like every manifest edit, with only this agent's entry changed.
//!
//! The move is an optimisation: when it fails, the refresh goes on (the error is printed on
//! stderr) and the next refresh tries again.

use super::read_current_manifest;
use crate::error::Result;
use crate::store::{Store, TailResult};

/// The appends that make a move pay. A move costs about five requests (the lock taken and
/// released, the manifest read and written, the copies) and a manifest read for each other
/// agent; a reader that refreshes after it downloads one object instead of these appends. At 64
/// a move adds under a tenth of the requests of the appends even when every reader has read
/// them already, and spares nearly all of them for every reader that has not. Refreshes that
/// follow fewer appends (the in-memory counting workload of the tests: about 19) do not move,
/// which on a backend where a read is one call whatever the file holds would only add calls.
pub(super) const CONSOLIDATE_APPENDS: u64 = 64;

impl Store {
    /// `tail()`/`refresh()` of an agent: the move above when it pays, then `reload_multi`.
    pub(in crate::store) fn refresh_multi(&mut self) -> Result<TailResult> {
        let movable = self.backend.remote() && !self.opts.read_only && !self.opts.skip_load;
        let mut failed = false;
        if let Some(agent) = self.agent().filter(|_| movable).map(str::to_string) {
            if self.appends >= CONSOLIDATE_APPENDS {
                if let Err(e) = self.move_own_file(&agent) {
                    eprintln!("opslog: agent '{agent}' keeps its op file: {e}");
                    failed = true;
                }
            }
        }
        let result = self.reload_multi()?;
        // A failed move is tried again at the next refresh: the appends still count.
        if !failed {
            self.appends = 0;
        }
        Ok(result)
    }

    /// Moves this agent to a fresh op file holding its ops that no snapshot holds (see above).
    /// Nothing changes when ops are buffered for the current file, or when the manifest no
    /// longer registers it (a refresh will follow the manifest).
    fn move_own_file(&mut self, agent: &str) -> Result<()> {
        if !self.pending.is_empty() || self.batch.is_some() {
            return Ok(());
        }
        let Some(known) = self.own_file_known() else {
            return Ok(());
        };
        self.with_compaction_lock(true, |s| {
            let manifest = read_current_manifest(&*s.backend)?;
            if s.own_file(&manifest).as_deref() != Some(known.rel.as_str()) {
                return Ok(());
            }
            let own = s.backend.create_agent_ops_file(agent)?;
            let mut bytes = Vec::new();
            let mut places = Vec::with_capacity(known.ops.len());
            for l in &known.ops {
                places.push(l.write_line_to(&mut bytes));
            }
            if !bytes.is_empty() {
                // One append: one object to read, and readers see all the copies or none.
                s.backend.append_batch(&own, &bytes)?;
            }
            // The manifest may name a newer snapshot than the records came from: the refresh
            // that follows reads it (its token is unknown now) and loads that snapshot.
            s.switch_own_file(manifest, own, bytes.len() as u64)?;
            // This agent's ops in the log are the copies now, at their places in the new file
            // (the log holds them in the order `own_file_known` listed them).
            let mut places = places.into_iter();
            for l in s.ops.lock().iter_mut() {
                if l.op.agent.as_deref() == Some(agent) {
                    l.pos = places.next().unwrap_or(l.pos);
                }
            }
            Ok(())
        })?;
        Ok(())
    }
}
