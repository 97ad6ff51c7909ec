//! The ops since the last checkpoint, shared so that readers (`getOps`, `getHistory`,
//! `getWalOps`) never wait for a write that is blocked on slow storage: the list is only locked
//! briefly, never across I/O.

use std::sync::{Arc, Mutex, MutexGuard};

use super::wal::LoggedOp;

#[derive(Debug, Clone, Default)]
pub struct OpLog {
    ops: Arc<Mutex<Vec<LoggedOp>>>,
    /// The op file the list mirrors line for line ("" when it mirrors none: not loaded yet, or
    /// multi-writer, whose list merges several files). Changed only with the list locked.
    file: Arc<Mutex<String>>,
}

impl OpLog {
    pub fn lock(&self) -> MutexGuard<'_, Vec<LoggedOp>> {
        self.ops.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the list, which from now on mirrors `file`.
    pub fn replace(&self, ops: Vec<LoggedOp>, file: &str) {
        self.update(file, |list| *list = ops);
    }

    /// Changes the list with `f`; from then on it mirrors `file`. Readers see the list before or
    /// after, never in between.
    pub fn update<T>(&self, file: &str, f: impl FnOnce(&mut Vec<LoggedOp>) -> T) -> T {
        let mut list = self.lock();
        let out = f(&mut list);
        *self.file.lock().unwrap_or_else(|p| p.into_inner()) = file.to_string();
        out
    }

    /// The lines of the ops with `ts > since`, when the list mirrors `file`: what reading that
    /// file would give, without reading it. `None` when it does not.
    pub fn lines_of(&self, file: &str, since: Option<&str>) -> Option<Vec<Arc<str>>> {
        let list = self.lock();
        if *self.file.lock().unwrap_or_else(|p| p.into_inner()) != file || file.is_empty() {
            return None;
        }
        Some(
            list.iter()
                .filter(|l| since.is_none_or(|s| &*l.op.ts > s))
                .map(|l| l.line.clone())
                .collect(),
        )
    }
}
