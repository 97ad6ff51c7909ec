//! `verify` for the operator CLI: every file the manifest names, read in full with the engine's
//! own parsers, and what is wrong reported with file and line. Takes no lock, writes nothing.

use std::collections::HashMap;
use std::fs::{self};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use super::archive;
use super::error::Error;
use super::fs_backend::MANIFEST_FILE;
use super::inspect::{named, read_manifest, scan_ops, size_of, Progress};
use super::manifest::Manifest;
use super::op::OpKind;
use super::paths;
use super::records::FxHasher;
use super::snapshot::RecordLines;

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
    use crate::inspect::inspect;
    use crate::testing::{test_dir, TestDir};

    fn tmp(name: &str) -> TestDir {
        let d = test_dir(&format!("verify-{name}"));
        fs::create_dir_all(d.path().join("snapshots")).unwrap();
        fs::create_dir_all(d.path().join("ops")).unwrap();
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
        let dir = tmp("clean");
        let d = dir.path();
        store(
            d,
            &format!("{HEAD}{{\"id\":\"a\",\"data\":{{}}}}\n"),
            "{\"ts\":\"t\",\"op\":\"set\",\"id\":\"b\",\"prev\":null,\"data\":{}}\n",
        );
        let v = verify(d, &Progress::default());
        assert_eq!(v.problems, vec![]);
        assert_eq!(v.warnings.len(), 1, "stats say 0 records: {:?}", v.warnings);
        assert_eq!((v.files, v.records, v.ops, v.unreadable), (3, 1, 1, false));
        let i = inspect(d).unwrap();
        assert_eq!(i.snapshot.records, Some(1));
        assert_eq!(i.ops.summary.ops, 1);
        assert_eq!(i.unreferenced, vec![]);
    }

    #[test]
    fn damage_is_reported_with_file_and_line() {
        let dir = tmp("damaged");
        let d = dir.path();
        store(
            d,
            &format!("{HEAD}{{\"id\":\"a\",\"data\":{{}}}}\nnot json\n{{\"id\":\"\\u0061\",\"data\":1}}\n"),
            "{\"ts\":\"t\",\"op\":\"delete\",\"id\":\"x\",\"prev\":{}}\n{\"ts\":\"t\",\"op\":\"nope\"}\n{\"ts\":\"t\",\"op\":\"se",
        );
        let v = verify(d, &Progress::default());
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
        let i = inspect(d).unwrap();
        assert_eq!((i.ops.summary.malformed, i.ops.summary.torn), (1, true));
    }

    #[test]
    fn missing_and_outside_files_and_no_store() {
        let dir = tmp("missing");
        let d = dir.path();
        store(d, HEAD, "");
        fs::remove_file(d.join("snapshots/snap-1.jsonl")).unwrap();
        let text = fs::read_to_string(d.join(MANIFEST_FILE)).unwrap();
        fs::write(
            d.join(MANIFEST_FILE),
            text.replace("ops/ops-1.jsonl", "../../etc/passwd"),
        )
        .unwrap();
        let v = verify(d, &Progress::default());
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
        let bad = verify(d, &Progress::default());
        assert!(!bad.unreadable && bad.problems[0].message.starts_with("Invalid manifest JSON"));
        assert!(inspect(d).is_err());
    }
}
