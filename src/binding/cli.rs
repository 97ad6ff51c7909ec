//! The operator CLI's calls (`bin/opslog-native.js`): inspect, verify and export of a data
//! directory, read-only, on libuv's worker threads. The work is the engine's (`engine::inspect`,
//! `engine::export`); this only shapes the results for JavaScript.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use napi_derive::napi;

use super::guard::{guard, lock};
use super::job::Job;
use opslog_engine::export::{Export, Format};
use opslog_engine::inspect::{self, Progress};
use opslog_engine::verify;

fn num(n: u64) -> f64 {
    n as f64
}

#[napi(object, use_nullable = true)]
pub struct CliFile {
    pub path: String,
    /// Null when the file does not exist.
    pub bytes: Option<f64>,
}

impl From<inspect::FileStat> for CliFile {
    fn from(f: inspect::FileStat) -> Self {
        CliFile {
            path: f.path,
            bytes: f.bytes.map(num),
        }
    }
}

#[napi(object, use_nullable = true)]
pub struct CliSnapshot {
    pub path: String,
    pub bytes: Option<f64>,
    pub records: Option<f64>,
    pub version: Option<f64>,
    /// "jsonl", or "legacy" (one JSON object).
    pub format: String,
    pub error: Option<String>,
}

#[napi(object, use_nullable = true)]
pub struct CliOps {
    pub path: String,
    pub bytes: Option<f64>,
    pub ops: f64,
    pub malformed: f64,
    pub torn: bool,
    pub highest_clock: Option<f64>,
    pub error: Option<String>,
}

impl From<inspect::OpFile> for CliOps {
    fn from(o: inspect::OpFile) -> Self {
        let s = o.summary;
        CliOps {
            path: o.file.path,
            bytes: o.file.bytes.map(num),
            ops: num(s.ops),
            malformed: num(s.malformed),
            torn: s.torn,
            highest_clock: s.highest_clock.map(num),
            error: s.error,
        }
    }
}

#[napi(object, use_nullable = true)]
pub struct CliSegment {
    pub path: String,
    pub bytes: Option<f64>,
    pub records: Option<f64>,
    pub error: Option<String>,
}

#[napi(object, use_nullable = true)]
pub struct CliAgent {
    pub agent: String,
    pub ops: CliOps,
    pub snapshot_clock: Option<f64>,
    pub live: Option<bool>,
}

#[napi(object, use_nullable = true)]
pub struct CliLock {
    pub pid: Option<f64>,
    pub alive: bool,
}

#[napi(object, use_nullable = true)]
pub struct CliStats {
    pub active_records: f64,
    pub archived_records: f64,
    pub ops_count: f64,
    pub created: String,
    pub last_checkpoint: String,
}

#[napi(object, use_nullable = true)]
pub struct CliManifest {
    pub path: String,
    pub bytes: f64,
    pub version: f64,
    pub stats: CliStats,
}

#[napi(object, use_nullable = true)]
pub struct CliInspection {
    pub manifest: CliManifest,
    pub snapshot: CliSnapshot,
    pub ops: CliOps,
    pub archive: Vec<CliSegment>,
    pub multi_writer: bool,
    pub agents: Vec<CliAgent>,
    pub lock: Option<CliLock>,
    pub compact_lock: Option<CliLock>,
    pub unreferenced: Vec<CliFile>,
    pub total_bytes: f64,
}

fn holder(h: Option<inspect::LockHolder>) -> Option<CliLock> {
    h.map(|h| CliLock {
        pid: h.pid.map(|p| p as f64),
        alive: h.alive,
    })
}

impl From<inspect::Inspection> for CliInspection {
    fn from(i: inspect::Inspection) -> Self {
        let m = i.manifest;
        let s = i.snapshot;
        CliInspection {
            manifest: CliManifest {
                path: opslog_engine::fs_backend::MANIFEST_FILE.into(),
                bytes: num(i.manifest_bytes),
                version: num(m.version),
                stats: CliStats {
                    active_records: num(m.stats.active_records),
                    archived_records: num(m.stats.archived_records),
                    ops_count: num(m.stats.ops_count),
                    created: m.stats.created,
                    last_checkpoint: m.stats.last_checkpoint,
                },
            },
            snapshot: CliSnapshot {
                path: s.file.path,
                bytes: s.file.bytes.map(num),
                records: s.records.map(num),
                version: s.version,
                format: if s.legacy { "legacy" } else { "jsonl" }.into(),
                error: s.error,
            },
            ops: i.ops.into(),
            archive: i
                .segments
                .into_iter()
                .map(|g| CliSegment {
                    path: g.file.path,
                    bytes: g.file.bytes.map(num),
                    records: g.records.map(num),
                    error: g.error,
                })
                .collect(),
            multi_writer: i.agents.is_some(),
            agents: i
                .agents
                .unwrap_or_default()
                .into_iter()
                .map(|a| CliAgent {
                    agent: a.agent,
                    ops: a.ops.into(),
                    snapshot_clock: a.snapshot_clock.map(num),
                    live: a.live,
                })
                .collect(),
            lock: holder(i.lock),
            compact_lock: holder(i.compact_lock),
            unreferenced: i.unreferenced.into_iter().map(CliFile::from).collect(),
            total_bytes: num(i.total_bytes),
        }
    }
}

super::job::as_is_output!(CliInspection, CliVerification);

/// What the store in `dir` is made of; rejects when there is no readable, valid manifest.
#[napi(ts_return_type = "Promise<CliInspection>")]
pub fn cli_inspect(dir: String) -> Job<CliInspection> {
    Job::new(false, move || {
        inspect::inspect(Path::new(&dir)).map(Into::into)
    })
}

#[napi(object, use_nullable = true)]
pub struct CliStoreKind {
    /// Why the directory cannot be read as a store, or null.
    pub error: Option<String>,
    /// Null when the manifest is damaged.
    pub multi_writer: Option<bool>,
}

/// A quick look (the manifest only) at whether `dir` holds a store, and of which kind.
#[napi]
pub fn cli_store_kind(dir: String) -> napi::Result<CliStoreKind> {
    guard(move || Ok(store_kind(&dir)))
}

fn store_kind(dir: &str) -> CliStoreKind {
    match inspect::store_kind(Path::new(dir)) {
        Ok(multi_writer) => CliStoreKind {
            error: None,
            multi_writer,
        },
        Err(e) => CliStoreKind {
            error: Some(e.to_string()),
            multi_writer: None,
        },
    }
}

#[napi(object, use_nullable = true)]
pub struct CliProblem {
    pub file: String,
    pub line: Option<f64>,
    pub message: String,
}

#[napi(object, use_nullable = true)]
pub struct CliVerification {
    /// "clean", "problems" or "unreadable".
    pub status: String,
    pub problems: Vec<CliProblem>,
    pub warnings: Vec<CliProblem>,
    pub files: f64,
    pub records: f64,
    pub ops: f64,
}

fn problems(list: Vec<verify::Problem>) -> Vec<CliProblem> {
    list.into_iter()
        .map(|p| CliProblem {
            file: p.file,
            line: p.line.map(num),
            message: p.message,
        })
        .collect()
}

/// `[done, total]` of a long read.
fn progress_of(p: &Progress) -> Vec<f64> {
    vec![
        num(p.done.load(Ordering::Relaxed)),
        num(p.total.load(Ordering::Relaxed)),
    ]
}

/// A verification of a data directory, whose progress can be read while it runs.
#[napi]
pub struct CliVerify {
    dir: String,
    progress: Arc<Progress>,
}

#[napi]
impl CliVerify {
    #[napi(constructor)]
    pub fn new(dir: String) -> Self {
        CliVerify {
            dir,
            progress: Arc::default(),
        }
    }

    #[napi(ts_return_type = "Promise<CliVerification>")]
    pub fn run(&self) -> Job<CliVerification> {
        let (dir, progress) = (self.dir.clone(), self.progress.clone());
        Job::new(false, move || {
            let v = verify::verify(Path::new(&dir), &progress);
            let status = if v.unreadable {
                "unreadable"
            } else if v.problems.is_empty() {
                "clean"
            } else {
                "problems"
            };
            Ok(CliVerification {
                status: status.into(),
                problems: problems(v.problems),
                warnings: problems(v.warnings),
                files: num(v.files),
                records: num(v.records),
                ops: num(v.ops),
            })
        })
    }

    /// `[bytes read, bytes to read]`.
    #[napi]
    pub fn progress(&self) -> Vec<f64> {
        progress_of(&self.progress)
    }
}

enum ExportState {
    Unopened {
        dir: String,
        format: Format,
        archive: bool,
    },
    Open(Box<Export>),
    Done,
}

/// The current state of a data directory as text, a chunk per `next`.
#[napi]
pub struct CliExport {
    state: Arc<Mutex<ExportState>>,
    progress: Arc<Progress>,
}

#[napi]
impl CliExport {
    /// `format`: "jsonl" or "json"; `archive`: the archived records follow the live ones.
    #[napi(constructor)]
    pub fn new(dir: String, format: String, archive: bool) -> napi::Result<Self> {
        let format = match format.as_str() {
            "jsonl" => Format::Jsonl,
            "json" => Format::Json,
            other => {
                return Err(napi::Error::new(
                    napi::Status::InvalidArg,
                    format!("unknown export format '{other}' (jsonl or json)"),
                ))
            }
        };
        Ok(CliExport {
            state: Arc::new(Mutex::new(ExportState::Unopened {
                dir,
                format,
                archive,
            })),
            progress: Arc::default(),
        })
    }

    /// About `max_bytes` of output, or null at the end.
    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn next(&self, max_bytes: u32) -> Job {
        let (state, progress) = (self.state.clone(), self.progress.clone());
        Job::new(false, move || {
            let mut st = lock(&state);
            if matches!(&*st, ExportState::Unopened { .. }) {
                // A failed open leaves it done: not retried.
                let ExportState::Unopened {
                    dir,
                    format,
                    archive,
                } = std::mem::replace(&mut *st, ExportState::Done)
                else {
                    unreachable!()
                };
                *st = ExportState::Open(Box::new(Export::open(&dir, format, archive, progress)?));
            }
            let ExportState::Open(export) = &mut *st else {
                return Ok(None);
            };
            let chunk = export.next_chunk(max_bytes.max(1) as usize);
            if !matches!(chunk, Ok(Some(_))) {
                *st = ExportState::Done;
            }
            chunk
        })
    }

    /// `[records written, records expected]` (the expected count is the manifest's).
    #[napi]
    pub fn progress(&self) -> Vec<f64> {
        progress_of(&self.progress)
    }
}
