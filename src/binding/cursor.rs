//! Streaming reads for `streamSnapshot` and `getWalOps`: each `next` reads one batch on a worker.

use std::sync::{Arc, Mutex};

use napi_derive::napi;

use super::guard::lock;
use super::job::Job;
use opslog_engine::backend::Backend;
use opslog_engine::batch::Batch;
use opslog_engine::batch::BatchStream;
use opslog_engine::error::Result;

type Opener = Box<dyn FnOnce() -> Result<Box<dyn BatchStream>> + Send>;

enum State {
    Unopened(Opener),
    Open(Box<dyn BatchStream>),
    Done(Option<f64>),
}

#[napi]
pub struct Cursor {
    state: Arc<Mutex<State>>,
    /// Reads through a JavaScript backend wait for it on a thread of their own.
    own_thread: bool,
}

impl Cursor {
    pub fn snapshot(backend: Arc<dyn Backend>, rel: String) -> Cursor {
        let own_thread = !backend.callable_from_any_thread();
        Cursor::new(own_thread, Box::new(move || backend.stream_snapshot(&rel)))
    }

    /// A snapshot file read directly, outside any store.
    pub fn snapshot_file(dir: String, rel: String) -> Cursor {
        Cursor::new(
            false,
            Box::new(move || {
                let backend = opslog_engine::fs_backend::FsBackend::new(&dir);
                opslog_engine::backend::Backend::stream_snapshot(&backend, &rel)
            }),
        )
    }

    /// The records of a JSONL snapshot file as flat `[id, record, ...]` batches, unchecked (see
    /// `RecordPairs`): the JavaScript view built while the engine loads the same file.
    pub fn record_pairs(dir: String, rel: String) -> Cursor {
        Cursor::new(
            false,
            Box::new(move || {
                let pairs = opslog_engine::snapshot::RecordPairs::open(
                    std::path::Path::new(&dir),
                    &dir,
                    &rel,
                )?;
                Ok(Box::new(pairs) as Box<dyn BatchStream>)
            }),
        )
    }

    /// `getWalOps` of op lines already in memory.
    pub fn lines(lines: Vec<Arc<str>>) -> Cursor {
        let stream = opslog_engine::wal::LinesStream::new(lines);
        Cursor::new(
            false,
            Box::new(move || Ok(Box::new(stream) as Box<dyn BatchStream>)),
        )
    }

    /// Multi-writer `getWalOps`: every agent's file, merged as it is read.
    pub fn merged_ops(backend: Arc<dyn Backend>, since: Option<String>) -> Cursor {
        let own_thread = !backend.callable_from_any_thread();
        Cursor::new(
            own_thread,
            Box::new(move || {
                let merged = opslog_engine::merge::MergedOps::open(&*backend)?;
                Ok(
                    Box::new(opslog_engine::wal::OpStream::new(Box::new(merged), since))
                        as Box<dyn BatchStream>,
                )
            }),
        )
    }

    pub fn ops(backend: Arc<dyn Backend>, rel: String, since: Option<String>) -> Cursor {
        let own_thread = !backend.callable_from_any_thread();
        Cursor::new(
            own_thread,
            Box::new(move || backend.stream_ops(&rel, since)),
        )
    }

    fn new(own_thread: bool, opener: Opener) -> Cursor {
        Cursor {
            own_thread,
            state: Arc::new(Mutex::new(State::Unopened(opener))),
        }
    }
}

#[napi]
impl Cursor {
    /// The next batch of at most `max` items as `[items, strings]` (see `engine::batch`), or null
    /// at the end.
    #[napi(ts_return_type = "Promise<[string, string] | null>")]
    pub fn next(&self, max: u32) -> Job<Option<Batch>> {
        let state = self.state.clone();
        Job::new(self.own_thread, move || {
            let mut st = lock(&state);
            if let State::Unopened(_) = &*st {
                let State::Unopened(opener) = std::mem::replace(&mut *st, State::Done(None)) else {
                    unreachable!()
                };
                *st = State::Open(opener()?);
            }
            let State::Open(stream) = &mut *st else {
                return Ok(None);
            };
            let batch = stream.next_batch(max.max(1) as usize)?;
            if batch.is_none() {
                let version = stream.version();
                *st = State::Done(version);
            }
            Ok(batch)
        })
    }

    /// The snapshot's data version, once the stream has ended.
    #[napi]
    pub fn version(&self) -> Option<f64> {
        match &*lock(&self.state) {
            State::Done(v) => *v,
            _ => None,
        }
    }
}
