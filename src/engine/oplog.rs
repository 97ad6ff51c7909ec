//! The ops since the last checkpoint, shared so that readers (`getOps`, `getHistory`) never wait
//! for a write that is blocked on slow storage: the list is only locked briefly, never across I/O.

use std::sync::{Arc, Mutex, MutexGuard};

use super::wal::LoggedOp;

#[derive(Debug, Clone, Default)]
pub struct OpLog(Arc<Mutex<Vec<LoggedOp>>>);

impl OpLog {
    pub fn lock(&self) -> MutexGuard<'_, Vec<LoggedOp>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
