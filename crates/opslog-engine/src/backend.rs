//! What the store needs from storage. The filesystem implementation is `FsBackend`; other
//! implementations (a JavaScript object implementing `StorageBackend`) plug in here too.

use super::batch::{Batch, BatchStream, PairsBuilder};
use super::error::Result;
use super::manifest::Manifest;
use super::records::Records;
use super::wal::{OpIter, OpStream, ReadResult};

/// What `Backend::lock_agent` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentLockState {
    Taken,
    /// An open agent holds it (the pid its file names, 0 when unknown).
    Held(i64),
    /// No lock file: an agent that does not lock while open (a reference agent).
    Absent,
    /// The backend has no agent locks: whether an agent is open cannot be known.
    Unsupported,
}

/// What `Backend::unlock_agent` does with the lock file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentRelease {
    /// Keeps it: the agent closed, or was found open after all.
    Keep,
    /// Removes it: the agent was retired.
    Remove,
    /// Removes it if taking the lock created it: an open that failed leaves nothing behind.
    Undo,
}

/// A backend's version of its manifest (`getManifestVersion`), as the backend gave it: a number
/// and the string of its digits are different versions, as they are in JavaScript.
#[derive(Debug, Clone, PartialEq)]
pub enum ManifestVersion {
    Text(String),
    Number(f64),
}

/// How long after a manifest was written a version that is its modification time may still be
/// shared by the next write: filesystems stamp files from a clock that ticks every few
/// milliseconds (ext4: 42% of back-to-back manifest writes on the test machine got the same
/// `mtimeMs`), or every second or two (ext3, HFS+, FAT, a network server's clock).
const MTIME_TICK_MS: f64 = 2_000.0;

impl ManifestVersion {
    /// This version, if the next write of the manifest is sure to change it. The reference's
    /// `FsBackend` returns the manifest's `mtimeMs`, and two manifests written in one tick of the
    /// filesystem's clock share it: a store that trusted it would hold the first and never read
    /// the second. So a version that reads as a time in milliseconds no older than a tick (or in
    /// the future: another clock) counts as unknown, and the manifest is read instead; once it is
    /// older, any later write is stamped later. Other versions (an S3 ETag, a counter) are kept.
    pub fn settled(self, now_ms: f64) -> Option<Self> {
        let ms = match &self {
            ManifestVersion::Number(n) => Some(*n),
            ManifestVersion::Text(t) => t.parse::<f64>().ok(),
        };
        match ms {
            Some(ms) if ms.is_finite() && ms > now_ms - MTIME_TICK_MS => None,
            _ => Some(self),
        }
    }
}

pub trait Backend: Send + Sync {
    /// The directory as the user named it, for messages.
    fn display(&self) -> &str;
    fn initialize(&self, read_only: bool) -> Result<()>;
    fn shutdown(&self) -> Result<()>;
    fn acquire_lock(&self) -> Result<()>;
    fn release_lock(&self) -> Result<()>;
    fn read_manifest(&self) -> Result<Option<Manifest>>;
    /// A token that changes whenever the manifest does (`getManifestVersion`), so a store can
    /// tell that the manifest it holds is still current without reading it again. `None` where
    /// the backend cannot tell, or has no manifest: read it then.
    fn manifest_version(&self) -> Result<Option<ManifestVersion>> {
        Ok(None)
    }
    /// Whether every call is a round trip (a JavaScript backend, which may be S3): the store then
    /// keeps the snapshot it loaded rather than loading it again for a refresh or compaction.
    fn remote(&self) -> bool {
        false
    }
    fn write_manifest(&self, manifest: &Manifest) -> Result<()>;
    /// Writes a snapshot that is durable when this returns.
    fn write_snapshot(&self, records: &Records, version: f64) -> Result<String>;
    /// Writes a snapshot for a checkpoint: durable once `publish_manifest` names it. With the
    /// path, the same records pointing into the new file where the backend can read it back at
    /// an offset (so their texts need not stay in memory).
    fn write_snapshot_for_checkpoint(
        &self,
        records: &Records,
        version: f64,
    ) -> Result<(String, Option<Records>)> {
        Ok((self.write_snapshot(records, version)?, None))
    }
    /// Makes `written` (a snapshot or op files made for this manifest) durable, then writes the
    /// manifest, which makes them current, and durably so once this returns.
    fn publish_manifest(&self, manifest: &Manifest, written: &[&str]) -> Result<()> {
        self.stage_manifest(manifest, written)?;
        self.commit_manifest(manifest, &[])?;
        self.sync_manifest()
    }
    /// First step of `publish_manifest`: makes `written`, the manifest's text and the manifest
    /// now current durable, without changing what is current (where the backend can stage a
    /// manifest).
    fn stage_manifest(&self, _manifest: &Manifest, _written: &[&str]) -> Result<()> {
        Ok(())
    }
    /// Second step: makes the staged manifest current. `appended`: files written since it was
    /// staged, which a backend that makes every acknowledged write durable syncs first.
    /// Until `sync_manifest` (or the next `stage_manifest`), power loss may bring back the
    /// manifest it replaced, whose files must therefore stay until then.
    fn commit_manifest(&self, manifest: &Manifest, _appended: &[&str]) -> Result<()> {
        self.write_manifest(manifest)
    }
    /// Last step: the committed manifest survives power loss once this returns.
    fn sync_manifest(&self) -> Result<()> {
        Ok(())
    }
    fn load_snapshot(&self, rel: &str) -> Result<(Records, f64)>;
    fn stream_snapshot(&self, rel: &str) -> Result<Box<dyn BatchStream>>;
    /// Valid ops of an op file from byte `from` on; malformed lines are counted, not returned,
    /// and warned about. `live`: another process may be appending, so a torn last line is one
    /// still being written rather than a malformed one.
    fn read_ops(&self, rel: &str, from: u64, live: bool) -> Result<ReadResult>;
    /// The valid ops of an op file in file order; by default read whole, a backend that can
    /// read a file piece by piece streams them.
    fn op_reader(&self, rel: &str) -> Result<OpIter> {
        Ok(Box::new(
            self.read_ops(rel, 0, true)?.ops.into_iter().map(Ok),
        ))
    }
    /// `getWalOps` of one op file.
    fn stream_ops(&self, rel: &str, since: Option<String>) -> Result<Box<dyn BatchStream>> {
        Ok(Box::new(OpStream::new(self.op_reader(rel)?, since)))
    }
    fn create_ops_file(&self) -> Result<String>;
    /// A new empty op file for the next generation: appends go on to the current one until
    /// `open_for_append` names the new one.
    fn create_next_ops_file(&self) -> Result<String> {
        self.create_ops_file()
    }
    /// Makes `rel` the file appends go to; `read` is what was read of it (torn tail handling).
    fn open_for_append(&self, rel: &str, read: &ReadResult) -> Result<()>;
    fn append_ops(&self, rel: &str, lines: &[u8]) -> Result<()>;
    /// `append_ops` of a batch: readers of the file see all of it or none of it, where the
    /// backend can make it so.
    fn append_batch(&self, rel: &str, lines: &[u8]) -> Result<()> {
        self.append_ops(rel, lines)
    }
    /// Removes everything from byte `pos` on (the last op, for undo).
    fn truncate_ops(&self, rel: &str, pos: u64) -> Result<()>;
    /// Whether calls may block the thread that makes them on anything but the disk (a backend
    /// whose I/O runs on the JavaScript thread must not be called from there).
    fn callable_from_any_thread(&self) -> bool {
        true
    }
    /// Deletes files a newer checkpoint superseded (a no-op where the backend keeps them).
    fn remove_files(&self, _rels: &[String]) {}
    /// Single-writer snapshot and op files (and their temporary files) other than `keep`: what
    /// earlier sessions left (their kept previous generation, files of a crashed checkpoint).
    /// Empty where the backend does not delete files.
    fn stale_files(&self, _keep: &[&str]) -> Vec<String> {
        Vec::new()
    }
    /// Multi-writer agents' op files (`ops/agent-*.jsonl`). Empty where the backend does not
    /// delete files.
    fn agent_files(&self) -> Vec<String> {
        Vec::new()
    }
    /// The agents that have a lock file (see `lock_agent`).
    fn locked_agents(&self) -> Vec<String> {
        Vec::new()
    }
    /// Whether a snapshot holds a record or an op file an op (more than a header, or empty).
    fn holds_data(&self, _rel: &str) -> bool {
        false
    }
    /// The op files appended to since the last sync, to be fsynced by the returned value (on a
    /// worker, while appends go on). Empty where the backend does not sync.
    fn begin_sync(&self) -> Result<PendingSync> {
        Ok(PendingSync::default())
    }
    /// Multi-writer: a new empty op file for `agent`, which appends go to from now on.
    fn create_agent_ops_file(&self, agent: &str) -> Result<String>;
    /// Multi-writer: takes `agent`'s lock, which an agent holds while it is open (see
    /// `lock::try_acquire_agent`), until `unlock_agent`. `create`: make the lock file when it is
    /// missing; without it, a missing file is `Absent` (an agent that never locked).
    fn lock_agent(&self, _agent: &str, _create: bool) -> Result<AgentLockState> {
        Ok(AgentLockState::Unsupported)
    }
    /// Releases `agent`'s lock, and removes its file as `release` says.
    fn unlock_agent(&self, _agent: &str, _release: AgentRelease) {}
    /// Multi-writer: takes the compaction lock; `false` when another live writer holds it.
    fn try_compaction_lock(&self) -> Result<bool>;
    fn release_compaction_lock(&self) -> Result<()>;
    fn write_archive_segment(&self, period: &str, records: &[(String, String)]) -> Result<String>;
    fn load_archive_segment(&self, rel: &str) -> Result<Vec<(String, String)>>;
}

impl BatchStream for super::wal::LinesStream {
    fn next_batch(&mut self, max: usize) -> Result<Option<Batch>> {
        Ok(super::wal::LinesStream::next_batch(self, max))
    }
}

impl BatchStream for OpStream {
    fn next_batch(&mut self, max: usize) -> Result<Option<Batch>> {
        OpStream::next_batch(self, max)
    }
}

/// A stream over records already in memory (backends that can only load whole files).
pub struct VecStream {
    /// `(id, record)` JSON texts.
    pairs: std::vec::IntoIter<(String, String)>,
    version: Option<f64>,
}

impl VecStream {
    pub fn new(pairs: Vec<(String, String)>, version: Option<f64>) -> Self {
        VecStream {
            pairs: pairs.into_iter(),
            version,
        }
    }
}

impl BatchStream for VecStream {
    fn next_batch(&mut self, max: usize) -> Result<Option<Batch>> {
        let mut batch = PairsBuilder::new(max);
        while !batch.is_full(max) {
            let Some((id, data)) = self.pairs.next() else {
                break;
            };
            batch.push(&id, &data);
        }
        Ok(batch.finish())
    }

    fn version(&self) -> Option<f64> {
        self.version
    }
}

/// Handles on op files whose appends are not yet on stable storage.
#[derive(Debug, Default)]
pub struct PendingSync {
    pub files: Vec<(String, std::fs::File)>,
}

impl PendingSync {
    /// Fsyncs every file; what was appended before `begin_sync` is then durable.
    pub fn run(self) -> Result<()> {
        for (shown, file) in self.files {
            file.sync_data()
                .map_err(|e| super::error::Error::io("fdatasync", shown, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::ManifestVersion::{self, Number, Text};

    #[test]
    fn a_recent_modification_time_is_not_a_settled_version() {
        let now = 1_796_641_112_244.0;
        let settled = |v: ManifestVersion| v.clone().settled(now) == Some(v);
        let text = |s: &str| Text(s.to_string());
        // Written in the last tick, or stamped ahead of this clock: the next write may share it.
        assert!(!settled(text("1796641112244.1536")));
        assert!(!settled(text("1796641111000")));
        assert!(!settled(Number(1_796_641_111_000.0)));
        assert!(!settled(text("1796641115000")));
        // Older than a tick: any later write is stamped later.
        assert!(settled(text("1796641110000")));
        assert!(settled(Number(1_796_641_110_000.0)));
        // Versions that are not times are the backend's to keep distinct.
        assert!(settled(text("7")));
        assert!(settled(Number(7.0)));
        assert!(settled(text("\"9b2cf535f27731c974343645a3985328\"")));
        assert!(settled(text("NaN")));
    }
}
