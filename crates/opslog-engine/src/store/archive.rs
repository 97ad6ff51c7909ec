//! Archiving: records moved out of the live set into period segments.

use super::Store;
use crate::error::{Error, Result};

impl Store {
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
}
