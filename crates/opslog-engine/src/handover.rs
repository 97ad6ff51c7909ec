//! The store behind its mutex, and the sets of `async` mode that the facade hands over, one text
//! per group of sets: a thread of the store's own applies them in order, so that the JavaScript
//! thread only queues them. Every other call on the store first applies what is still queued
//! (holding the store's mutex), so it sees every set handed over before it.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::error::{Error, Result};
use super::store::{Store, WriteOutcome};

/// Locks even if a panic poisoned the mutex (the panic was reported as an error).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Texts queued beyond which the JavaScript thread applies them itself: memory stays bounded
/// when the thread falls behind.
const MAX_QUEUED: usize = 64;

pub struct StoreCell {
    store: Mutex<Option<Store>>,
    handed: Mutex<Handed>,
    wake: Condvar,
}

#[derive(Default)]
struct Handed {
    texts: VecDeque<String>,
    /// The first error applying them met, which the next call on the store reports.
    failed: Option<Error>,
    worker: bool,
    closed: bool,
}

impl StoreCell {
    pub fn new() -> Arc<StoreCell> {
        Arc::new(StoreCell {
            store: Mutex::new(None),
            handed: Mutex::new(Handed::default()),
            wake: Condvar::new(),
        })
    }

    /// Runs `f` on the open store, once every set handed over is applied.
    pub fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> Result<T>) -> Result<T> {
        let mut guard = lock(&self.store);
        let store = guard.as_mut().ok_or_else(Error::not_open)?;
        self.apply_all(store)?;
        f(store)
    }

    /// Applies what is queued, for readers that do not go through the store (the op list);
    /// nothing to do when the store is not open.
    pub fn settle(&self) -> Result<()> {
        match lock(&self.store).as_mut() {
            Some(store) => self.apply_all(store),
            None => Ok(()),
        }
    }

    pub fn install(&self, store: Store) {
        *lock(&self.store) = Some(store);
    }

    /// Takes the store out (closing it); the thread ends.
    pub fn take(&self) -> Option<Store> {
        let store = lock(&self.store).take();
        self.shut_down();
        store
    }

    /// `async` mode: queues `id, record, ms` lines (see `apply_set_many`) for the thread. The
    /// sets are queued even when the error of earlier ones is returned.
    pub fn hand_over(self: &Arc<Self>, text: String) -> Result<()> {
        let mut handed = lock(&self.handed);
        if handed.closed {
            return Err(Error::not_open());
        }
        handed.texts.push_back(text);
        let failed = handed.failed.take();
        if handed.texts.len() > MAX_QUEUED {
            drop(handed);
            self.with_store(|_| Ok(()))?;
        } else {
            if !handed.worker {
                handed.worker = true;
                let cell = self.clone();
                let spawned = std::thread::Builder::new()
                    .name("opslog-sets".into())
                    .spawn(move || cell.run_worker());
                // Without a thread the sets wait for the next call on the store, which applies them.
                handed.worker = spawned.is_ok();
            }
            drop(handed);
            self.wake.notify_one();
        }
        failed.map_or(Ok(()), Err)
    }

    /// Ends the thread (after what it is applying); queued sets still apply on the next call.
    pub fn shut_down(&self) {
        lock(&self.handed).closed = true;
        self.wake.notify_all();
    }

    fn run_worker(&self) {
        loop {
            {
                let mut handed = lock(&self.handed);
                while handed.texts.is_empty() && !handed.closed {
                    handed = self.wake.wait(handed).unwrap_or_else(|p| p.into_inner());
                }
                if handed.closed {
                    handed.worker = false;
                    return;
                }
            }
            let mut guard = lock(&self.store);
            match guard.as_mut() {
                Some(store) => self.apply_handed(store),
                None => lock(&self.handed).texts.clear(),
            }
        }
    }

    /// Applies the queued texts; the first error any of them met (here or on the thread).
    /// A failed write of the buffer (a full disk) left the sets buffered: it is written again
    /// first, and the error is only reported when that fails too, so once there is room the
    /// next call succeeds instead of reporting a failure that no longer holds.
    fn apply_all(&self, store: &mut Store) -> Result<()> {
        self.apply_handed(store);
        let failed = lock(&self.handed).failed.take();
        match failed {
            None => Ok(()),
            Some(Error::Io {
                syscall: "write", ..
            }) => store.flush(),
            Some(e) => Err(e),
        }
    }

    /// Applies the queued texts in order; keeps the first error for the next call to report.
    fn apply_handed(&self, store: &mut Store) {
        loop {
            let Some(text) = lock(&self.handed).texts.pop_front() else {
                return;
            };
            let applied = catch_unwind(AssertUnwindSafe(|| {
                apply_set_many(store, &text, false).map(drop)
            }))
            .unwrap_or_else(|_| Err(Error::Invalid("internal error applying sets".into())));
            if let Err(e) = applied {
                lock(&self.handed).failed.get_or_insert(e);
            }
        }
    }
}

/// The facade's collected sets (`async` and `group` modes, batches), `id, record, ms, ...` (`ms`: when each was called; empty
/// when it is the set's before), one per line: the id and record are `JSON.stringify` texts,
/// which never hold a raw newline, so the lines split with a byte search instead of a JSON scan.
pub fn apply_set_many(store: &mut Store, items: &str, refuse_last: bool) -> Result<WriteOutcome> {
    let malformed = || Error::Invalid("set_many: not id, record, ms triples".into());
    let mut values = items.split('\n');
    let mut sets = Vec::new();
    let mut ms = None;
    while let Some(id) = values.next() {
        let (Some(data), Some(at)) = (values.next(), values.next()) else {
            return Err(malformed());
        };
        if !at.is_empty() {
            ms = Some(at.parse::<f64>().unwrap_or(0.0) as i64);
        }
        sets.push((id, data, ms.ok_or_else(malformed)?));
    }
    store.set_many(sets, refuse_last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs_backend::FsBackend;
    use crate::store::{Options, WriteMode};
    use crate::testing::{test_dir, TestDir};

    fn open_cell(name: &str) -> (Arc<StoreCell>, TestDir) {
        let d = test_dir(&format!("handover-{name}"));
        let opts = Options {
            write_mode: WriteMode::Async,
            group_size: 7,
            ..Options::default()
        };
        let (store, _) = Store::open(Arc::new(FsBackend::new(&d)), opts).unwrap();
        let cell = StoreCell::new();
        cell.install(store);
        (cell, d)
    }

    /// `count` sets of ids `k{first}`.. with record `{"v":tag}`, as the facade joins them.
    fn sets(first: usize, count: usize, tag: usize) -> String {
        let lines: Vec<String> = (first..first + count)
            .map(|i| format!("\"k{i}\"\n{{\"v\":{tag}}}\n1700000000000"))
            .collect();
        lines.join("\n")
    }

    #[test]
    fn sets_handed_over_apply_in_order_and_the_next_call_sees_them_all() {
        let (cell, d) = open_cell("order");
        for round in 0..300 {
            // Every round overwrites k0..k4, so the last round's values must win.
            cell.hand_over(sets(round % 40, 5, round)).unwrap();
        }
        let (ops, records) = cell
            .with_store(|s| Ok((s.ops().len(), s.records().pairs()?)))
            .unwrap();
        assert_eq!(ops, 1500);
        assert_eq!(records.len(), 44);
        let last = |id: usize| {
            (0..300)
                .rev()
                .find(|r| (r % 40..r % 40 + 5).contains(&id))
                .unwrap()
        };
        for (id, text) in &records {
            let n: usize = id.trim_matches('"')[1..].parse().unwrap();
            assert_eq!(*text, format!("{{\"v\":{}}}", last(n)), "record {id}");
        }
        cell.with_store(|s| s.flush()).unwrap();
        let lines = std::fs::read_to_string(format!(
            "{d}/{}",
            cell.with_store(|s| Ok(s.active_ops().to_string())).unwrap()
        ))
        .unwrap();
        assert_eq!(lines.lines().count(), 1500, "every set written, in order");
        let mut store = cell.take().unwrap();
        store.close().unwrap();
        assert!(cell.hand_over(sets(0, 1, 0)).is_err(), "closed");
    }

    #[test]
    fn an_error_applying_is_reported_once_by_the_next_call_and_later_sets_still_apply() {
        let (cell, _d) = open_cell("error");
        cell.hand_over(sets(0, 3, 1)).unwrap();
        cell.hand_over("\"k9\"\nnot a triple".to_string()).unwrap();
        cell.hand_over(sets(3, 2, 2)).unwrap();
        let reported = cell.with_store(|_| Ok(()));
        assert!(matches!(reported, Err(Error::Invalid(m)) if m.contains("not id, record, ms")));
        let count = cell.with_store(|s| Ok(s.records().len())).unwrap();
        assert_eq!(
            count, 5,
            "the sets before and after the bad text are applied"
        );
        cell.take().unwrap().close().unwrap();
    }
}
