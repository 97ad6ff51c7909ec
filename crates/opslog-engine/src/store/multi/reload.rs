//! An agent's view brought up to date (`refresh`, a follower's `tail`, `undo`): the snapshot and
//! every agent's ops merged in `(clock, agent)` order.

use std::collections::HashSet;
use std::sync::Arc;

use super::{present, Base, FileRead, Merged, OwnFile};
use crate::backend::Backend;
use crate::error::Result;
use crate::manifest::Manifest;
use crate::merge;
use crate::records::Records;
use crate::store::{apply, Change, Fetched, Store, TailResult};
use crate::wal::ReadResult;

pub(super) fn load_merged(
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
            let (records, version) = crate::store::load_snapshot(backend, manifest)?;
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
pub(super) fn load_current(
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

impl Store {
    /// Re-reads every other agent's file, and the manifest and the snapshot where they changed
    /// (a remote backend is asked for the manifest's version first, and the snapshot it loaded
    /// is kept); returns the ops not seen before.
    pub(in crate::store) fn reload_multi(&mut self) -> Result<TailResult> {
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
    pub(in crate::store) fn undo_multi(&mut self) -> Result<Option<Change>> {
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
