//! The filesystem backend: the data directory of SPEC section 3.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::archive;
use super::backend::{AgentLockState, AgentRelease, Backend, PendingSync};
use super::batch::Batch;
use super::batch::BatchStream;
use super::error::{display_join, Error, Result};
use super::fsutil;
use super::lock::{self, LockHandle};
use super::manifest::Manifest;
use super::paths;
use super::records::Records;
use super::snapshot::{self, SnapshotStream};
use super::wal::{self, OpIter, OpReader, OpWriter, ReadResult};

pub const MANIFEST_FILE: &str = "manifest.json";
pub const COMPACT_LOCK_FILE: &str = ".compact-lock";

#[derive(Debug)]
pub struct FsBackend {
    dir: PathBuf,
    display: String,
    lock: Mutex<Option<LockHandle>>,
    compact_lock: Mutex<Option<LockHandle>>,
    /// Multi-writer: this agent's own lock, and those of agents a compaction is retiring.
    /// (Whether taking it created the file, too.)
    agent_locks: Mutex<Vec<(String, LockHandle, bool)>>,
    writer: Mutex<Option<(String, OpWriter)>>,
    /// Durable mode: files the writer left since the last sync, which it must still fsync.
    durable: bool,
    left_unsynced: Mutex<Vec<(String, fs::File)>>,
}

impl FsBackend {
    pub fn new(dir: &str) -> Self {
        FsBackend {
            dir: PathBuf::from(dir),
            display: dir.to_string(),
            lock: Mutex::new(None),
            compact_lock: Mutex::new(None),
            agent_locks: Mutex::new(Vec::new()),
            writer: Mutex::new(None),
            durable: false,
            left_unsynced: Mutex::new(Vec::new()),
        }
    }

    /// Keeps track of the op files written since the last `begin_sync`, for `durable` stores.
    pub fn durable(mut self, on: bool) -> Self {
        self.durable = on;
        self
    }

    /// Makes `writer` the one appends go to.
    fn install_writer(&self, rel: String, writer: OpWriter) -> Result<()> {
        let old = self
            .writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace((rel, writer));
        if let (true, Some((old_rel, old))) = (self.durable, old) {
            let handle = old.handle()?;
            self.left_unsynced
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((self.shown(&old_rel), handle));
        }
        Ok(())
    }

    /// Creates a new op file in `ops/`, durable once a published manifest names it.
    fn create_op_file(&self, rel: String, path: &Path) -> Result<String> {
        let writer = OpWriter::create(path, self.shown(&rel))?;
        self.install_writer(rel.clone(), writer)?;
        Ok(rel)
    }

    /// A new single-writer op file (`ops/ops-<ms>.jsonl`), not yet the one appends go to.
    fn new_ops_file(&self) -> Result<(String, OpWriter)> {
        let opsdir = self.dir.join("ops");
        let name = fsutil::fresh_name(&opsdir, "ops-", "jsonl");
        let rel = format!("ops/{name}");
        let writer = OpWriter::create(&opsdir.join(&name), self.shown(&rel))?;
        Ok((rel, writer))
    }

    /// `<sub>/<name>` (`sub` "" for the store directory itself), a file of `agent`'s; refused
    /// when the agent id would lead elsewhere.
    fn agent_file(&self, agent: &str, sub: &str, name: &str) -> Result<(String, PathBuf)> {
        let rel = if sub.is_empty() {
            name.to_string()
        } else {
            format!("{sub}/{name}")
        };
        let path = self.path(&rel)?;
        if path.parent() != Some(self.dir.join(sub).as_path()) {
            return Err(Error::Type(format!(
                "opslog: agent id '{agent}' cannot be part of a file name"
            )));
        }
        Ok((rel, path))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn shown(&self, rel: &str) -> String {
        display_join(&self.display, rel)
    }

    /// The absolute path of a file of the store; refuses paths that lead outside it.
    fn path(&self, rel: &str) -> Result<PathBuf> {
        paths::inside(&self.dir, rel)
    }

    /// Op files in `ops/`, as relative paths, in name order.
    pub fn list_ops_files(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(self.dir.join("ops")) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".jsonl"))
            .map(|n| format!("ops/{n}"))
            .collect();
        names.sort();
        names
    }

    pub fn list_archive_segments(&self) -> Vec<String> {
        archive::list(&self.dir)
    }

    /// The manifest's modification time in ms (`stat().mtimeMs` as a string), or `None`.
    pub fn manifest_version(&self) -> Option<String> {
        let modified = fs::metadata(self.dir.join(MANIFEST_FILE))
            .ok()?
            .modified()
            .ok()?;
        let d = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
        Some(super::json::format_number(
            d.as_secs() as f64 * 1e3 + f64::from(d.subsec_nanos()) / 1e6,
        ))
    }

    /// Appends to an op file at its current end, whatever else wrote to it (the exported
    /// `appendOps`; the store's own writer keeps its file open instead).
    pub fn append_to_file(&self, rel: &str, bytes: &[u8]) -> Result<()> {
        *self.writer.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let path = self.path(rel)?;
        let shown = self.shown(rel);
        let mut file = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| Error::io("open", &shown, e))?;
        std::io::Write::write_all(&mut file, bytes).map_err(|e| Error::io("write", &shown, e))
    }

    pub fn truncate_last_op(&self, rel: &str) -> Result<bool> {
        *self.writer.lock().unwrap_or_else(|p| p.into_inner()) = None;
        wal::truncate_last_line(&self.path(rel)?)
    }

    pub fn write_blob(&self, rel: &str, content: &[u8]) -> Result<()> {
        let path = self.path(rel)?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| Error::io("mkdir", parent.display().to_string(), e))?;
        }
        fsutil::write_file(&path, &path.display().to_string(), content)
    }

    pub fn read_blob(&self, rel: &str) -> Result<Vec<u8>> {
        let path = self.path(rel)?;
        fsutil::read_file(&path, &path.display().to_string())
    }

    /// A positioned read: short at the end of the file.
    pub fn read_blob_range(&self, rel: &str, offset: u64, length: usize) -> Result<Vec<u8>> {
        let path = self.path(rel)?;
        let shown = path.display().to_string();
        let file = fs::File::open(&path).map_err(|e| Error::io("open", &shown, e))?;
        let mut buf = vec![0u8; length];
        let mut filled = 0;
        while filled < length {
            let n = super::fsutil::read_at(&file, &mut buf[filled..], offset + filled as u64)
                .map_err(|e| Error::io("read", &shown, e))?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        buf.truncate(filled);
        Ok(buf)
    }

    pub fn list_blobs(&self, prefix: &str) -> Result<Vec<String>> {
        let path = self.path(prefix)?;
        let Ok(entries) = fs::read_dir(path) else {
            return Ok(Vec::new());
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        Ok(names)
    }

    pub fn delete_blob(&self, rel: &str) -> Result<()> {
        let path = self.path(rel)?;
        let _ = fs::remove_file(path);
        Ok(())
    }

    pub fn delete_blob_dir(&self, prefix: &str) -> Result<()> {
        let path = self.path(prefix)?;
        if path == self.dir
            || Path::new(prefix)
                .components()
                .all(|c| matches!(c, std::path::Component::CurDir))
        {
            return Err(Error::Invalid(format!(
                "opslog: refusing to delete the whole store directory ('{prefix}')"
            )));
        }
        match fs::remove_dir_all(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("rm", path.display().to_string(), e)),
        }
    }

    fn with_writer<T>(&self, rel: &str, f: impl FnOnce(&mut OpWriter) -> Result<T>) -> Result<T> {
        let mut guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if guard.as_ref().is_none_or(|(path, _)| path != rel) {
            let path = self.path(rel)?;
            let read = wal::read(&path)?;
            *guard = Some((
                rel.to_string(),
                OpWriter::open(&path, self.shown(rel), &read)?,
            ));
        }
        f(&mut guard.as_mut().expect("writer just opened").1)
    }
}

impl BatchStream for SnapshotStream {
    fn next_batch(&mut self, max: usize) -> Result<Option<Batch>> {
        SnapshotStream::next_batch(self, max)
    }

    fn version(&self) -> Option<f64> {
        Some(self.version)
    }
}

impl Backend for FsBackend {
    fn display(&self) -> &str {
        &self.display
    }

    fn initialize(&self, read_only: bool) -> Result<()> {
        if !read_only {
            // The directory first: a failure names the one that could not be made, as Node's
            // recursive mkdir does.
            fs::create_dir_all(&self.dir).map_err(|e| Error::io("mkdir", &self.display, e))?;
            for sub in ["snapshots", "ops", "archive"] {
                let p = self.dir.join(sub);
                fs::create_dir_all(&p).map_err(|e| Error::io("mkdir", self.shown(sub), e))?;
            }
        }
        Ok(())
    }

    fn shutdown(&self) -> Result<()> {
        *self.writer.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(())
    }

    fn acquire_lock(&self) -> Result<()> {
        let handle = lock::acquire(&self.dir, &self.display)?;
        *self.lock.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        Ok(())
    }

    fn release_lock(&self) -> Result<()> {
        if let Some(h) = self.lock.lock().unwrap_or_else(|p| p.into_inner()).take() {
            lock::release(h);
        }
        Ok(())
    }

    fn read_manifest(&self) -> Result<Option<Manifest>> {
        let text = match fsutil::read_text(&self.dir.join(MANIFEST_FILE)) {
            Ok(t) => t,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let named = |m: String| Error::Corrupt(format!("{m} ({})", self.shown(MANIFEST_FILE)));
        let manifest = Manifest::parse(&text).map_err(named)?;
        // A path that leaves the directory makes the manifest itself corrupt.
        for rel in manifest.paths() {
            if let Err(e) = paths::inside(&self.dir, rel) {
                return Err(named(e.to_string()));
            }
        }
        Ok(Some(manifest))
    }

    fn write_manifest(&self, manifest: &Manifest) -> Result<()> {
        let text = manifest.encode();
        fsutil::write_replace(&self.dir.join(MANIFEST_FILE), |w| {
            w.write_all(text.as_bytes())
        })
    }

    fn write_snapshot(&self, records: &Records, version: f64) -> Result<String> {
        snapshot::write(&self.dir, records, version, true).map(|(rel, _)| rel)
    }

    fn write_snapshot_for_checkpoint(
        &self,
        records: &Records,
        version: f64,
    ) -> Result<(String, Option<Records>)> {
        let (rel, written) = snapshot::write(&self.dir, records, version, false)?;
        Ok((rel, Some(written)))
    }

    fn stage_manifest(&self, manifest: &Manifest, written: &[&str]) -> Result<()> {
        let path = self.dir.join(MANIFEST_FILE);
        // Everything is written before the first fsync, so one journal commit can carry it all.
        let text = manifest.encode();
        let tmp = fsutil::write_tmp(&path, |w| w.write_all(text.as_bytes()), false)?;
        // The data of new files and the manifest's; the directory entries of new files (an
        // empty new op file needs only its entry). The manifest's own entry comes with its rename,
        // which the next stage makes durable (`sync_manifest`): the store's directory is synced
        // here too, so that the current manifest is durable before it is replaced.
        let mut files = vec![tmp.clone()];
        let mut dirs = vec![self.dir.clone()];
        for rel in written {
            let path = self.path(rel)?;
            if fs::metadata(&path).map(|m| m.len() > 0).unwrap_or(true) {
                files.push(path.clone());
            }
            if let Some(dir) = path.parent().map(Path::to_path_buf) {
                if !dirs.contains(&dir) {
                    dirs.push(dir);
                }
            }
        }
        if let Err(e) = fsutil::sync_all_at_once(&files, &dirs) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(())
    }

    fn commit_manifest(&self, _manifest: &Manifest, appended: &[&str]) -> Result<()> {
        let path = self.dir.join(MANIFEST_FILE);
        if self.durable {
            // Acknowledged writes among them: durable before the manifest names the file, and the
            // manifest before any later write is acknowledged.
            let files = appended
                .iter()
                .map(|rel| self.path(rel))
                .collect::<Result<Vec<_>>>()?;
            fsutil::sync_all_at_once(&files, &[])?;
            return fsutil::rename_into_place(&fsutil::tmp_path(&path), &path);
        }
        fsutil::rename(&fsutil::tmp_path(&path), &path)
    }

    fn sync_manifest(&self) -> Result<()> {
        if self.durable {
            return Ok(()); // done by commit_manifest
        }
        fsutil::sync_dir(&self.dir.join(MANIFEST_FILE))
    }

    fn load_snapshot(&self, rel: &str) -> Result<(Records, f64)> {
        self.path(rel)?;
        snapshot::load(&self.dir, &self.display, rel)
    }

    fn stream_snapshot(&self, rel: &str) -> Result<Box<dyn BatchStream>> {
        self.path(rel)?;
        Ok(Box::new(SnapshotStream::open(
            &self.dir,
            &self.display,
            rel,
        )?))
    }

    fn read_ops(&self, rel: &str, from: u64, live: bool) -> Result<ReadResult> {
        let r = wal::read_from(&self.path(rel)?, from)?;
        wal::warn_skipped(r.skipped + usize::from(r.torn && !live), &self.shown(rel));
        fsutil::warn_not_utf8(r.not_utf8, &self.shown(rel));
        Ok(r)
    }

    fn op_reader(&self, rel: &str) -> Result<OpIter> {
        Ok(Box::new(OpReader::open(&self.path(rel)?)?))
    }

    fn create_ops_file(&self) -> Result<String> {
        let (rel, writer) = self.new_ops_file()?;
        self.install_writer(rel.clone(), writer)?;
        Ok(rel)
    }

    fn create_next_ops_file(&self) -> Result<String> {
        Ok(self.new_ops_file()?.0)
    }

    fn open_for_append(&self, rel: &str, read: &ReadResult) -> Result<()> {
        let writer = OpWriter::open(&self.path(rel)?, self.shown(rel), read)?;
        self.install_writer(rel.to_string(), writer)
    }

    fn append_ops(&self, rel: &str, lines: &[u8]) -> Result<()> {
        self.with_writer(rel, |w| w.append(lines))
    }

    fn append_batch(&self, rel: &str, lines: &[u8]) -> Result<()> {
        self.with_writer(rel, |w| w.append_whole(lines))
    }

    fn truncate_ops(&self, rel: &str, pos: u64) -> Result<()> {
        self.with_writer(rel, |w| w.truncate(pos))
    }

    fn remove_files(&self, rels: &[String]) {
        fsutil::remove_files(&self.dir, rels);
    }

    fn holds_data(&self, rel: &str) -> bool {
        let Ok(path) = self.path(rel) else {
            return false;
        };
        let Ok(file) = fs::File::open(path) else {
            return false;
        };
        // Anything past the first line: a snapshot's header is its first line, and an op file
        // with any complete line is not empty either way.
        let mut first = Vec::new();
        let mut reader = std::io::BufReader::new(file);
        match std::io::BufRead::read_until(&mut reader, b'\n', &mut first) {
            Ok(_) if rel.starts_with("ops/") => !first.trim_ascii().is_empty(),
            Ok(_) => std::io::Read::read(&mut reader, &mut [0u8; 1]).is_ok_and(|n| n > 0),
            Err(_) => true,
        }
    }

    fn stale_files(&self, keep: &[&str]) -> Vec<String> {
        // Only names this store makes: a multi-writer agent's op files are never stale here.
        let mut stale = fsutil::files_named(&self.dir, "snapshots", "snap-", ".jsonl");
        stale.extend(fsutil::files_named(&self.dir, "ops", "ops-", ".jsonl"));
        stale.retain(|rel| !keep.contains(&rel.as_str()));
        stale
    }

    fn agent_files(&self) -> Vec<String> {
        fsutil::files_named(&self.dir, "ops", "agent-", ".jsonl")
    }

    fn locked_agents(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|name| lock::agent_of_lock_name(&name).map(str::to_string))
            .collect()
    }

    fn begin_sync(&self) -> Result<PendingSync> {
        // Second handles, so appends need not wait for the disk.
        let mut files =
            std::mem::take(&mut *self.left_unsynced.lock().unwrap_or_else(|p| p.into_inner()));
        if let Some((rel, writer)) = &*self.writer.lock().unwrap_or_else(|p| p.into_inner()) {
            files.push((self.shown(rel), writer.handle()?));
        }
        Ok(PendingSync { files })
    }

    fn create_agent_ops_file(&self, agent: &str) -> Result<String> {
        let opsdir = self.dir.join("ops");
        let name = fsutil::fresh_name(&opsdir, &format!("agent-{agent}-"), "jsonl");
        let (rel, path) = self.agent_file(agent, "ops", &name)?;
        self.create_op_file(rel, &path)
    }

    fn lock_agent(&self, agent: &str, create: bool) -> Result<AgentLockState> {
        let (rel, _) = self.agent_file(agent, "", &lock::agent_lock_name(agent))?;
        Ok(
            match lock::try_acquire_agent(&self.dir, &self.display, &rel, create)? {
                lock::AgentLock::Taken { handle, created } => {
                    let mut held = self.agent_locks.lock().unwrap_or_else(|p| p.into_inner());
                    held.push((agent.to_string(), handle, created));
                    AgentLockState::Taken
                }
                lock::AgentLock::Held(pid) => AgentLockState::Held(pid),
                lock::AgentLock::Absent => AgentLockState::Absent,
            },
        )
    }

    fn unlock_agent(&self, agent: &str, release: AgentRelease) {
        let mut held = self.agent_locks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = held.iter().position(|(a, _, _)| a == agent) {
            let (_, handle, created) = held.swap_remove(i);
            let remove = match release {
                AgentRelease::Keep => false,
                AgentRelease::Remove => true,
                AgentRelease::Undo => created,
            };
            if remove {
                lock::release(handle);
            } else {
                lock::release_agent(handle);
            }
        }
    }

    fn try_compaction_lock(&self) -> Result<bool> {
        match lock::try_acquire_flocked(&self.dir, &self.display, COMPACT_LOCK_FILE)? {
            Ok(handle) => {
                *self.compact_lock.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
                Ok(true)
            }
            Err(_holder) => Ok(false),
        }
    }

    fn release_compaction_lock(&self) -> Result<()> {
        if let Some(h) = self
            .compact_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            lock::release(h);
        }
        Ok(())
    }

    fn write_archive_segment(&self, period: &str, records: &[(String, String)]) -> Result<String> {
        archive::write(&self.dir, &self.display, period, records)
    }

    fn load_archive_segment(&self, rel: &str) -> Result<Vec<(String, String)>> {
        self.path(rel)?;
        archive::load(&self.dir, &self.display, rel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{test_dir, TestDir};

    /// A backend on a fresh directory, and the directory (removed when dropped).
    fn backend(name: &str, durable: bool) -> (TestDir, FsBackend) {
        let d = test_dir(&format!("fsb-{name}"));
        fs::create_dir_all(d.path().join("ops")).unwrap();
        let b = FsBackend::new(&d).durable(durable);
        (d, b)
    }

    #[test]
    fn a_durable_sync_covers_op_files_left_since_the_last_one() {
        let (_dir, b) = backend("durable", true);
        let first = b.create_ops_file().unwrap();
        b.append_ops(&first, b"{}\n").unwrap();
        let second = b.create_ops_file().unwrap();
        b.append_ops(&second, b"{}\n").unwrap();
        let pending = b.begin_sync().unwrap();
        let names: Vec<&str> = pending.files.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(names.len(), 2);
        assert!(names[0].ends_with(&first) && names[1].ends_with(&second));
        pending.run().unwrap();
        assert_eq!(
            b.begin_sync().unwrap().files.len(),
            1,
            "only the current file is left"
        );
        let _ = fs::remove_dir_all(b.dir());
    }

    #[test]
    fn without_durable_no_handles_are_kept() {
        let (_dir, b) = backend("plain", false);
        b.create_ops_file().unwrap();
        b.create_ops_file().unwrap();
        assert_eq!(b.begin_sync().unwrap().files.len(), 1);
        let _ = fs::remove_dir_all(b.dir());
    }
}
