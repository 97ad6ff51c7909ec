//! `inspect` for the operator CLI: what a data directory is made of (files, records, ops,
//! agents, locks), read without a lock and without writing a byte. Also the reading helpers
//! `verify` shares (the manifest, op-file scans, progress).

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::archive;
use super::error::{Error, Result};
use super::fs_backend::{COMPACT_LOCK_FILE, MANIFEST_FILE};
use super::lines::{self, Lines};
use super::lock::{self, LOCK_FILE};
use super::manifest::Manifest;
use super::op::Op;
use super::paths;
use super::snapshot::RecordLines;

/// Work done and work to do, in bytes, updated while a long read runs (read from another thread).
#[derive(Debug, Default)]
pub struct Progress {
    pub done: AtomicU64,
    pub total: AtomicU64,
}

impl Progress {
    pub(crate) fn add(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }
}

/// The manifest of `dir`: `Err` with the reason when there is none to read (no directory, no
/// manifest, an I/O error: the directory cannot be read as a store), `Ok(Err(message))` when it
/// is there but damaged.
pub(crate) fn read_manifest(dir: &Path) -> Result<std::result::Result<(Manifest, u64), String>> {
    let shown = dir.display().to_string();
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(Error::Invalid(format!("{shown} is not a directory"))),
        Err(e) => return Err(Error::io("stat", shown, e)),
    }
    let path = dir.join(MANIFEST_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(Error::Invalid(format!(
                "{shown} is not an opslog store: it has no {MANIFEST_FILE}"
            )))
        }
        Err(e) => return Err(Error::io("open", path.display().to_string(), e)),
    };
    let len = bytes.len() as u64;
    let (text, _) = super::fsutil::lossy_text(bytes);
    Ok(Manifest::parse(&text).map(|m| (m, len)))
}

pub(crate) fn size_of(path: &Path) -> Option<u64> {
    fs::metadata(path).ok().map(|m| m.len())
}

/// The files an op scan saw: every op line's parse result, in file order.
pub(crate) struct OpLine {
    pub(crate) line: u64,
    pub(crate) op: std::result::Result<Op, String>,
    /// The line lacks its newline (the file's last one).
    pub(crate) unterminated: bool,
}

/// Reads an op file line by line (bounded memory), calling `each` for every non-empty line.
pub(crate) fn scan_ops(
    path: &Path,
    progress: &Progress,
    mut each: impl FnMut(OpLine),
) -> std::io::Result<()> {
    let mut lines = Lines::with_capacity(1 << 16, File::open(path)?);
    let mut line = 0u64;
    while let Some(bytes) = lines.next_line()? {
        progress.add(bytes.len() as u64);
        line += 1;
        let text = lines::text(bytes);
        let trimmed = text.trim();
        if !trimmed.is_empty() {
            each(OpLine {
                line,
                op: Op::parse(trimmed),
                unterminated: !bytes.ends_with(b"\n"),
            });
        }
    }
    Ok(())
}

/// One file of the store, as `inspect` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct FileStat {
    pub path: String,
    /// `None`: the file does not exist.
    pub bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotSummary {
    pub file: FileStat,
    pub records: Option<u64>,
    pub version: Option<f64>,
    pub legacy: bool,
    /// What kept the snapshot from being read to its end.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct OpsSummary {
    pub ops: u64,
    /// Complete lines that are not valid ops (skipped by readers).
    pub malformed: u64,
    /// The last line was cut short by a crash (or is being written right now).
    pub torn: bool,
    pub highest_clock: Option<u64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OpFile {
    pub file: FileStat,
    pub summary: OpsSummary,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SegmentSummary {
    pub file: FileStat,
    pub records: Option<u64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AgentSummary {
    pub agent: String,
    pub ops: OpFile,
    /// The highest clock of this agent's ops the snapshot already holds (`agentClocks`).
    pub snapshot_clock: Option<u64>,
    /// Whether a running process holds the agent's op file open (an agent of this package does
    /// while its store is open); `None` where that cannot be seen (not Linux).
    pub live: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LockHolder {
    pub pid: Option<i64>,
    pub alive: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    pub manifest_bytes: u64,
    pub manifest: Manifest,
    pub snapshot: SnapshotSummary,
    pub ops: OpFile,
    pub segments: Vec<SegmentSummary>,
    /// `None` for a single-writer store.
    pub agents: Option<Vec<AgentSummary>>,
    pub lock: Option<LockHolder>,
    pub compact_lock: Option<LockHolder>,
    /// Files of the store's directories that the manifest does not name (earlier generations,
    /// leftovers of a crashed checkpoint, strays).
    pub unreferenced: Vec<FileStat>,
    pub total_bytes: u64,
}

/// A file the manifest names: its absolute path, or why it cannot be read (outside the store).
pub(crate) fn named(dir: &Path, rel: &str) -> std::result::Result<PathBuf, String> {
    paths::inside(dir, rel).map_err(|e| e.to_string())
}

fn summarize_ops(dir: &Path, rel: &str) -> OpFile {
    let mut s = OpsSummary::default();
    let path = match named(dir, rel) {
        Ok(p) => p,
        Err(e) => {
            s.error = Some(e);
            return OpFile {
                file: FileStat {
                    path: rel.into(),
                    bytes: None,
                },
                summary: s,
            };
        }
    };
    let scanned = scan_ops(&path, &Progress::default(), |l| match l.op {
        Ok(op) => {
            s.ops += 1;
            if let Some(c) = op.clock {
                s.highest_clock = Some(s.highest_clock.map_or(c, |h| h.max(c)));
            }
        }
        Err(_) if l.unterminated => s.torn = true,
        Err(_) => s.malformed += 1,
    });
    if let Err(e) = scanned {
        s.error = Some(Error::io("read", rel, e).to_string());
    }
    OpFile {
        file: FileStat {
            path: rel.into(),
            bytes: size_of(&path),
        },
        summary: s,
    }
}

fn summarize_snapshot(dir: &Path, rel: &str) -> SnapshotSummary {
    let mut out = SnapshotSummary {
        file: FileStat {
            path: rel.into(),
            bytes: None,
        },
        records: None,
        version: None,
        legacy: false,
        error: None,
    };
    let path = match named(dir, rel) {
        Ok(p) => p,
        Err(e) => {
            out.error = Some(e);
            return out;
        }
    };
    out.file.bytes = size_of(&path);
    let mut lines = match RecordLines::open(&path, rel) {
        Ok(l) => l,
        Err(e) => {
            out.error = Some(e.to_string());
            return out;
        }
    };
    out.version = Some(lines.version);
    out.legacy = lines.legacy;
    let mut n = 0u64;
    loop {
        match lines.next_record() {
            Ok(Some((_, Ok(_)))) => n += 1,
            Ok(Some((line, Err(e)))) => {
                out.error = Some(format!("line {line}: {e}"));
                break;
            }
            Ok(None) => break,
            Err(e) => {
                out.error = Some(e.to_string());
                break;
            }
        }
    }
    out.records = Some(n);
    out
}

fn summarize_segment(dir: &Path, rel: &str) -> SegmentSummary {
    let mut out = SegmentSummary {
        file: FileStat {
            path: rel.into(),
            bytes: None,
        },
        records: None,
        error: None,
    };
    match named(dir, rel) {
        Ok(path) => {
            out.file.bytes = size_of(&path);
            match archive::load(dir, &dir.display().to_string(), rel) {
                Ok(recs) => out.records = Some(recs.len() as u64),
                Err(e) => out.error = Some(e.to_string()),
            }
        }
        Err(e) => out.error = Some(e),
    }
    out
}

/// Whether any process has `path` open, from `/proc/<pid>/fd` (processes we may not look into
/// are not seen). `None` where there is no `/proc`.
fn held_open(path: &Path) -> Option<bool> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let target = fs::canonicalize(path).ok()?;
    let procs = fs::read_dir("/proc").ok()?;
    for p in procs.flatten() {
        let Ok(fds) = fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        if fds
            .flatten()
            .any(|fd| fs::read_link(fd.path()).is_ok_and(|t| t == target))
        {
            return Some(true);
        }
    }
    Some(false)
}

fn holder_of(dir: &Path, name: &str) -> Option<LockHolder> {
    match lock::holder(dir, name) {
        Ok(h) => h.map(|(pid, alive)| LockHolder { pid, alive }),
        Err(_) => Some(LockHolder {
            pid: None,
            alive: false,
        }),
    }
}

/// The files in the store's own places (`snapshots/`, `ops/`, `archive/` and the top level) that
/// the manifest does not name; the lock files and the manifest itself aside.
fn unreferenced(dir: &Path, manifest: &Manifest) -> Vec<FileStat> {
    let named: HashSet<PathBuf> = manifest
        .paths()
        .filter_map(|rel| paths::inside(dir, rel).ok())
        .filter_map(|p| fs::canonicalize(p).ok())
        .collect();
    let mut out = Vec::new();
    for sub in ["", "snapshots", "ops", "archive"] {
        let Ok(entries) = fs::read_dir(dir.join(sub)) else {
            continue;
        };
        let mut found: Vec<FileStat> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                if sub.is_empty() && [MANIFEST_FILE, LOCK_FILE, COMPACT_LOCK_FILE].contains(&&*name)
                {
                    return None;
                }
                let canonical = fs::canonicalize(e.path()).ok()?;
                if named.contains(&canonical) {
                    return None;
                }
                let rel = if sub.is_empty() {
                    name
                } else {
                    format!("{sub}/{name}")
                };
                Some(FileStat {
                    path: rel,
                    bytes: e.metadata().ok().map(|m| m.len()),
                })
            })
            .collect();
        found.sort_by(|a, b| a.path.cmp(&b.path));
        out.extend(found);
    }
    out
}

/// What the store in `dir` is made of. Errors when `dir` holds no readable, valid manifest.
pub fn inspect(dir: &Path) -> Result<Inspection> {
    let (manifest, manifest_bytes) = read_manifest(dir)?
        .map_err(|m| Error::Corrupt(format!("{}: {m}", dir.join(MANIFEST_FILE).display())))?;
    let snapshot = summarize_snapshot(dir, &manifest.current_snapshot);
    let ops = summarize_ops(dir, &manifest.active_ops);
    let segments = manifest
        .archive_segments
        .iter()
        .map(|rel| summarize_segment(dir, rel))
        .collect();
    let agents = manifest.active_agent_ops.as_ref().map(|agents| {
        agents
            .iter()
            .map(|(agent, rel)| AgentSummary {
                agent: agent.clone(),
                ops: summarize_ops(dir, rel),
                snapshot_clock: manifest.agent_clock(agent),
                live: named(dir, rel).ok().and_then(|p| held_open(&p)),
            })
            .collect()
    });
    let unreferenced = unreferenced(dir, &manifest);
    let mut seen = HashSet::new();
    let total_bytes = manifest_bytes
        + manifest
            .paths()
            .filter(|rel| seen.insert(*rel))
            .filter_map(|rel| paths::inside(dir, rel).ok().and_then(|p| size_of(&p)))
            .sum::<u64>()
        + unreferenced.iter().filter_map(|f| f.bytes).sum::<u64>();
    Ok(Inspection {
        manifest_bytes,
        snapshot,
        ops,
        segments,
        agents,
        lock: holder_of(dir, LOCK_FILE),
        compact_lock: holder_of(dir, COMPACT_LOCK_FILE),
        unreferenced,
        total_bytes,
        manifest,
    })
}

/// Whether `dir` can be read as a store at all: `Err` saying why not (no directory, no manifest,
/// an I/O error); else whether it is a multi-writer store (`None` when the manifest is damaged,
/// which the command that reads it reports).
pub fn store_kind(dir: &Path) -> Result<Option<bool>> {
    Ok(read_manifest(dir)?
        .ok()
        .map(|(m, _)| m.active_agent_ops.is_some()))
}
