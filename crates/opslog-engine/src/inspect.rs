//! Read-only looks at a data directory for the operator CLI: `inspect` (what the store is made
//! of) and `verify` (every file the manifest names, checked in full). Neither takes a lock nor
//! writes a byte; both read the files with the engine's own parsers.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::io::{BufRead, BufReader, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::archive;
use super::error::{Error, Result};
use super::fs_backend::{COMPACT_LOCK_FILE, MANIFEST_FILE};
use super::lock::{self, LOCK_FILE};
use super::manifest::Manifest;
use super::op::{Op, OpKind};
use super::paths;
use super::records::FxHasher;
use super::snapshot::RecordLines;

/// Work done and work to do, in bytes, updated while a long read runs (read from another thread).
#[derive(Debug, Default)]
pub struct Progress {
    pub done: AtomicU64,
    pub total: AtomicU64,
}

impl Progress {
    fn add(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }
}

/// The manifest of `dir`: `Err` with the reason when there is none to read (no directory, no
/// manifest, an I/O error: the directory cannot be read as a store), `Ok(Err(message))` when it
/// is there but damaged.
fn read_manifest(dir: &Path) -> Result<std::result::Result<(Manifest, u64), String>> {
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

fn size_of(path: &Path) -> Option<u64> {
    fs::metadata(path).ok().map(|m| m.len())
}

/// The files an op scan saw: every op line's parse result, in file order.
struct OpLine {
    line: u64,
    op: std::result::Result<Op, String>,
    /// The line lacks its newline (the file's last one).
    unterminated: bool,
}

/// Reads an op file line by line (bounded memory), calling `each` for every non-empty line.
fn scan_ops(path: &Path, progress: &Progress, mut each: impl FnMut(OpLine)) -> std::io::Result<()> {
    let mut reader = BufReader::with_capacity(1 << 16, File::open(path)?);
    let mut buf = Vec::with_capacity(256);
    let mut line = 0u64;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        progress.add(n as u64);
        line += 1;
        let text = String::from_utf8_lossy(&buf);
        let trimmed = text.trim();
        if !trimmed.is_empty() {
            each(OpLine {
                line,
                op: Op::parse(trimmed),
                unterminated: !buf.ends_with(b"\n"),
            });
        }
    }
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
fn named(dir: &Path, rel: &str) -> std::result::Result<PathBuf, String> {
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

/// Something wrong with a file, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// The file as the manifest names it (relative to the store directory).
    pub file: String,
    /// 1-based line, where the problem is on one line.
    pub line: Option<u64>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Verification {
    /// Damage: readers would skip data, refuse the store, or load a state other than written.
    pub problems: Vec<Problem>,
    /// Oddities that readers accept (the store opens with the same state) but that a store
    /// written only through the API does not show.
    pub warnings: Vec<Problem>,
    /// Some file could not be read at all (no store there, permissions, I/O errors): the
    /// problems say which.
    pub unreadable: bool,
    pub files: u64,
    pub records: u64,
    pub ops: u64,
}

/// Ids as two independent 64-bit hashes: a set of them for a million records stays small, and
/// two different ids that collide in both are too unlikely to matter for a report.
type IdKey = (u64, u64);

fn id_key(id: &str) -> IdKey {
    let mut a = FxHasher::default();
    id.hash(&mut a);
    let mut b = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut b);
    (a.finish(), b.finish())
}

type IdLines = HashMap<IdKey, u64, BuildHasherDefault<FxHasher>>;

struct Verifier<'a> {
    dir: &'a Path,
    progress: &'a Progress,
    out: Verification,
}

impl Verifier<'_> {
    fn problem(&mut self, file: &str, line: Option<u64>, message: impl Into<String>) {
        self.out.problems.push(Problem {
            file: file.into(),
            line,
            message: message.into(),
        });
    }

    fn warning(&mut self, file: &str, line: Option<u64>, message: impl Into<String>) {
        self.out.warnings.push(Problem {
            file: file.into(),
            line,
            message: message.into(),
        });
    }

    fn unreadable(&mut self, file: &str, e: impl std::fmt::Display) {
        self.out.unreadable = true;
        self.problem(file, None, format!("cannot be read: {e}"));
    }

    /// The absolute path of a file the manifest names, after checking it is inside the store and
    /// exists; `None` (and the problem noted) otherwise.
    fn existing(&mut self, rel: &str, what: &str) -> Option<PathBuf> {
        let path = match named(self.dir, rel) {
            Ok(p) => p,
            Err(e) => {
                self.problem(MANIFEST_FILE, None, format!("{what} {rel}: {e}"));
                return None;
            }
        };
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => {
                self.out.files += 1;
                Some(path)
            }
            Ok(_) => {
                self.problem(rel, None, format!("the manifest's {what} is not a file"));
                None
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                self.problem(
                    rel,
                    None,
                    format!("missing: the manifest names it as its {what}"),
                );
                None
            }
            Err(e) => {
                self.unreadable(rel, Error::io("stat", rel, e));
                None
            }
        }
    }

    /// Every record line parses, ids are unique; returns the ids (with their lines).
    fn snapshot(&mut self, manifest: &Manifest) -> IdLines {
        let rel = &manifest.current_snapshot;
        let mut ids = IdLines::default();
        let Some(path) = self.existing(rel, "snapshot") else {
            return ids;
        };
        let mut lines = match RecordLines::open(&path, rel) {
            Ok(l) => l,
            Err(e @ Error::Io { .. }) => {
                self.unreadable(rel, e);
                return ids;
            }
            Err(e) => {
                self.problem(rel, None, e.to_string());
                return ids;
            }
        };
        let mut read = lines.bytes_read;
        self.progress.add(read);
        loop {
            let next = lines.next_record();
            self.progress.add(lines.bytes_read - read);
            read = lines.bytes_read;
            match next {
                Ok(Some((line, Ok((id, _))))) => {
                    let line = line as u64;
                    match ids.entry(id_key(&id)) {
                        std::collections::hash_map::Entry::Occupied(first) => {
                            let first = match *first.get() {
                                0 => String::new(),
                                n => format!(" (first at line {n})"),
                            };
                            let at = (line > 0).then_some(line);
                            self.problem(rel, at, format!("duplicate record id {id}{first}"));
                        }
                        std::collections::hash_map::Entry::Vacant(slot) => {
                            slot.insert(line);
                            self.out.records += 1;
                        }
                    }
                }
                Ok(Some((line, Err(e)))) => self.problem(rel, Some(line as u64), e),
                Ok(None) => break,
                Err(e) => {
                    self.unreadable(rel, e);
                    break;
                }
            }
        }
        let (held, said) = (ids.len() as u64, manifest.stats.active_records);
        let msg = format!("holds {held} record(s), the manifest's stats say {said}");
        if held < said {
            self.problem(rel, None, format!("{msg}: records may have been lost"));
        } else if held > said {
            self.warning(rel, None, msg);
        }
        ids
    }

    /// Every line of an op file parses and validates; with `agent`, every op is that agent's
    /// and clocks increase; with `ids`, the ops replay over those records as logged.
    fn op_file(&mut self, rel: &str, agent: Option<&str>, mut ids: Option<&mut IdLines>) {
        let what = if agent.is_some() {
            "agent op file"
        } else {
            "op file"
        };
        let Some(path) = self.existing(rel, what) else {
            return;
        };
        let mut found: Vec<(bool, u64, String)> = Vec::new();
        let mut last_clock: Option<u64> = None;
        let mut ops = 0;
        let scanned = scan_ops(&path, self.progress, |l| {
            let line = l.line;
            let op = match l.op {
                Ok(op) => op,
                Err(e) if l.unterminated => {
                    found.push((
                        true,
                        line,
                        format!("torn last line (an append cut short): {e}"),
                    ));
                    return;
                }
                Err(e) => {
                    found.push((true, line, e));
                    return;
                }
            };
            ops += 1;
            if let Some(agent) = agent {
                match op.agent.as_deref() {
                    Some(a) if a == agent => {}
                    Some(a) => found.push((
                        true,
                        line,
                        format!("op of agent '{a}' in the file of agent '{agent}'"),
                    )),
                    None => found.push((
                        true,
                        line,
                        format!("op without an agent in the file of agent '{agent}'"),
                    )),
                }
                match (op.clock, last_clock) {
                    (None, _) => found.push((true, line, "op without a clock".into())),
                    (Some(c), Some(prev)) if c <= prev => found.push((
                        true,
                        line,
                        format!("clock {c} does not increase (the op before has {prev})"),
                    )),
                    (Some(c), _) => last_clock = Some(c),
                }
            }
            if let Some(ids) = ids.as_deref_mut() {
                let key = id_key(&op.id);
                let exists = ids.contains_key(&key);
                let odd = match op.kind {
                    OpKind::Set if op.prev.is_none() && exists => {
                        Some("creates a record that already exists (prev is null)")
                    }
                    OpKind::Set if op.prev.is_some() && !exists => {
                        Some("replaces a record that does not exist (prev is not null)")
                    }
                    OpKind::Delete if !exists => Some("deletes a record that does not exist"),
                    _ => None,
                };
                if let Some(odd) = odd {
                    found.push((false, line, format!("{} {odd}", op.id)));
                }
                match op.kind {
                    OpKind::Set => {
                        ids.insert(key, 0);
                    }
                    OpKind::Delete => {
                        ids.remove(&key);
                    }
                }
            }
        });
        self.out.ops += ops;
        for (damage, line, message) in found {
            if damage {
                self.problem(rel, Some(line), message);
            } else {
                self.warning(rel, Some(line), message);
            }
        }
        if let Err(e) = scanned {
            self.unreadable(rel, Error::io("read", rel, e));
        }
    }

    fn segment(&mut self, rel: &str) {
        if self.existing(rel, "archive segment").is_none() {
            return;
        }
        let shown = self.dir.display().to_string();
        match archive::load(self.dir, &shown, rel) {
            Ok(recs) => {
                self.out.records += recs.len() as u64;
                if let Some(size) = named(self.dir, rel).ok().and_then(|p| size_of(&p)) {
                    self.progress.add(size);
                }
            }
            Err(e @ Error::Io { .. }) => self.unreadable(rel, e),
            Err(e) => self.problem(rel, None, e.to_string()),
        }
    }
}

/// Checks every file the manifest of `dir` names, in full. Never fails: what it could not read is
/// a problem with `unreadable` set.
pub fn verify(dir: &Path, progress: &Progress) -> Verification {
    let mut v = Verifier {
        dir,
        progress,
        out: Verification::default(),
    };
    let manifest = match read_manifest(dir) {
        Err(e) => {
            v.unreadable(MANIFEST_FILE, e);
            return v.out;
        }
        Ok(Err(message)) => {
            v.out.files += 1;
            v.problem(MANIFEST_FILE, None, message);
            return v.out;
        }
        Ok(Ok((m, _))) => {
            v.out.files += 1;
            m
        }
    };
    let total: u64 = manifest
        .paths()
        .filter_map(|rel| paths::inside(dir, rel).ok().and_then(|p| size_of(&p)))
        .sum();
    progress.total.store(total, Ordering::Relaxed);
    let mut ids = v.snapshot(&manifest);
    match &manifest.active_agent_ops {
        None => v.op_file(&manifest.active_ops, None, Some(&mut ids)),
        Some(agents) => {
            // Agents write concurrently, so an op's prev reflects its agent's view, not the
            // merged order: only each file's own consistency is checked.
            for (agent, rel) in agents {
                v.op_file(rel, Some(agent), None);
            }
            // Readers of a multi-writer store do not read `activeOps`; if it is some other
            // file that still exists, its lines are checked too.
            let rel = &manifest.active_ops;
            let listed = agents.iter().any(|(_, p)| p == rel);
            let exists = named(dir, rel).is_ok_and(|p| p.exists());
            if !listed && exists {
                v.op_file(rel, None, None);
            }
        }
    }
    for rel in &manifest.archive_segments {
        v.segment(rel);
    }
    v.out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("opslog-inspect-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("snapshots")).unwrap();
        fs::create_dir_all(d.join("ops")).unwrap();
        d
    }

    fn store(d: &Path, snapshot: &str, ops: &str) {
        let m = Manifest::fresh(
            "snapshots/snap-1.jsonl".into(),
            "ops/ops-1.jsonl".into(),
            "T".into(),
        );
        fs::write(d.join(MANIFEST_FILE), m.encode()).unwrap();
        fs::write(d.join("snapshots/snap-1.jsonl"), snapshot).unwrap();
        fs::write(d.join("ops/ops-1.jsonl"), ops).unwrap();
    }

    const HEAD: &str = "{\"version\":1,\"timestamp\":\"T\"}\n";

    #[test]
    fn a_clean_store_has_no_problems() {
        let d = tmp("clean");
        store(
            &d,
            &format!("{HEAD}{{\"id\":\"a\",\"data\":{{}}}}\n"),
            "{\"ts\":\"t\",\"op\":\"set\",\"id\":\"b\",\"prev\":null,\"data\":{}}\n",
        );
        let v = verify(&d, &Progress::default());
        assert_eq!(v.problems, vec![]);
        assert_eq!(v.warnings.len(), 1, "stats say 0 records: {:?}", v.warnings);
        assert_eq!((v.files, v.records, v.ops, v.unreadable), (3, 1, 1, false));
        let i = inspect(&d).unwrap();
        assert_eq!(i.snapshot.records, Some(1));
        assert_eq!(i.ops.summary.ops, 1);
        assert_eq!(i.unreferenced, vec![]);
    }

    #[test]
    fn damage_is_reported_with_file_and_line() {
        let d = tmp("damaged");
        store(
            &d,
            &format!("{HEAD}{{\"id\":\"a\",\"data\":{{}}}}\nnot json\n{{\"id\":\"\\u0061\",\"data\":1}}\n"),
            "{\"ts\":\"t\",\"op\":\"delete\",\"id\":\"x\",\"prev\":{}}\n{\"ts\":\"t\",\"op\":\"nope\"}\n{\"ts\":\"t\",\"op\":\"se",
        );
        let v = verify(&d, &Progress::default());
        let at: Vec<(String, Option<u64>)> = v
            .problems
            .iter()
            .map(|p| (p.file.clone(), p.line))
            .collect();
        assert_eq!(
            at,
            [
                ("snapshots/snap-1.jsonl".into(), Some(3)),
                ("snapshots/snap-1.jsonl".into(), Some(4)),
                ("ops/ops-1.jsonl".into(), Some(2)),
                ("ops/ops-1.jsonl".into(), Some(3)),
            ]
        );
        assert!(v.problems[1]
            .message
            .contains("duplicate record id \"a\" (first at line 2)"));
        assert!(v.problems[3].message.starts_with("torn last line"));
        assert_eq!(v.warnings.len(), 2, "{:?}", v.warnings);
        assert!(!v.unreadable);
        let i = inspect(&d).unwrap();
        assert_eq!((i.ops.summary.malformed, i.ops.summary.torn), (1, true));
    }

    #[test]
    fn missing_and_outside_files_and_no_store() {
        let d = tmp("missing");
        store(&d, HEAD, "");
        fs::remove_file(d.join("snapshots/snap-1.jsonl")).unwrap();
        let text = fs::read_to_string(d.join(MANIFEST_FILE)).unwrap();
        fs::write(
            d.join(MANIFEST_FILE),
            text.replace("ops/ops-1.jsonl", "../../etc/passwd"),
        )
        .unwrap();
        let v = verify(&d, &Progress::default());
        assert_eq!(v.problems.len(), 2, "{:?}", v.problems);
        assert!(v.problems[0].message.starts_with("missing"));
        assert_eq!(v.problems[1].file, MANIFEST_FILE);
        assert!(v.problems[1]
            .message
            .contains("outside the store directory"));
        assert!(!v.unreadable);
        let none = verify(&d.join("nope"), &Progress::default());
        assert!(none.unreadable);
        fs::write(d.join(MANIFEST_FILE), "{").unwrap();
        let bad = verify(&d, &Progress::default());
        assert!(!bad.unreadable && bad.problems[0].message.starts_with("Invalid manifest JSON"));
        assert!(inspect(&d).is_err());
    }
}
