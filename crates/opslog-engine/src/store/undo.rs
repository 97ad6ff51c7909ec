//! Undo: the last op taken out of the log (wherever its line lies: in the file, buffered or in
//! a batch) and reversed on the records.

use super::{Change, Effect, Store};
use crate::delta;
use crate::error::Result;
use crate::op::Op;
use crate::records::Records;

impl Store {
    /// Undoes the last op: removes exactly its line from the log and reverses it.
    /// `None` when there is nothing to undo.
    pub fn undo(&mut self) -> Result<Option<Change>> {
        self.ensure_writable()?;
        self.ensure_no_checkpoint()?;
        if self.agent().is_some() {
            return self.undo_multi();
        }
        let Some(pos) = self.ops.lock().last().map(|l| l.pos) else {
            return Ok(None);
        };
        if pos >= self.written {
            return self.drop_last_buffered();
        }
        self.backend.truncate_ops(&self.active_ops, pos)?;
        self.written = pos;
        self.pending.clear();
        self.pending_ops = 0;
        self.pop_last_op()
    }

    /// Takes the last op back out of the log, the buffer and the records, when it is still only
    /// buffered (nothing on disk to undo); `None` when there is no such op.
    pub(super) fn drop_last_buffered(&mut self) -> Result<Option<Change>> {
        let Some(pos) = self.ops.lock().last().map(|l| l.pos) else {
            return Ok(None);
        };
        if pos < self.written {
            return Ok(None);
        }
        self.pending.truncate((pos - self.written) as usize);
        self.pending_ops = self.pending_ops.saturating_sub(1);
        self.pop_last_op()
    }

    /// Removes the last op from the log and reverses it in the records (its bytes are already
    /// gone from the file and the buffer).
    pub(super) fn pop_last_op(&mut self) -> Result<Option<Change>> {
        let Some(last) = self.ops.lock().pop() else {
            return Ok(None);
        };
        let effect = reverse(self.records_mut(), &last.op)?;
        Ok(Some(Change::Effects(effect.into_iter().collect())))
    }
}

/// The inverse of `op` on the current records, as the reference's undo defines it.
pub(super) fn reverse(records: &mut Records, op: &Op) -> Result<Option<Effect>> {
    let restored = match (&op.prev, op.delta) {
        (None, _) => {
            records.remove(&op.id)?;
            None
        }
        (Some(patch), true) => {
            let current = records.get(&op.id)?;
            let Some(restored) = current.and_then(|c| delta::apply_delta(&c, patch)) else {
                return Ok(None);
            };
            records.set(&op.id, &restored)?;
            Some(restored)
        }
        (Some(full), false) => {
            records.set(&op.id, full)?;
            Some(full.clone())
        }
    };
    Ok(Some(Effect {
        id: op.id.clone(),
        record: restored,
    }))
}
