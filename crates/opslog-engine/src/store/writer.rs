//! Writing: ops made and logged (a line appended at once, buffered by the group and async
//! modes, or held by an open batch) and applied to the records.

use std::sync::Arc;

use super::{Effect, Store, WriteMode, WriteOutcome};
use crate::delta;
use crate::error::{Error, Result};
use crate::op::{Op, OpKind};
use crate::records::Records;
use crate::time;
use crate::wal::LoggedOp;

pub(super) struct Batch {
    pub(super) ops_start: usize,
    pub(super) bytes: Vec<u8>,
}

impl Store {
    pub(super) fn make_op(&mut self, kind: OpKind, id: &str, data: Option<&str>) -> Result<Op> {
        self.make_op_at(kind, id, data, time::now_ms())
    }

    /// An op stamped with the time `ms` (when its write was called), to be logged with `data`
    /// (`log_and_apply`): the op itself does not hold it.
    pub(super) fn make_op_at(
        &mut self,
        kind: OpKind,
        id: &str,
        data: Option<&str>,
        ms: i64,
    ) -> Result<Op> {
        let (prev, delta) = self.with_record(id, |old| prev_of(kind, old, data))?;
        let clock = self.opts.agent_id.is_some().then(|| {
            self.clock += 1;
            self.clock
        });
        if self.ts_of.0 != ms || self.ts_of.1.is_empty() {
            // Formatted once per millisecond and shared: writes come many to the millisecond.
            self.ts_of = (ms, time::iso_from_ms(ms).into());
        }
        Ok(Op {
            ts: self.ts_of.1.clone(),
            kind,
            id: id.to_string(),
            prev,
            data: None,
            delta,
            agent: self.opts.agent_id.clone(),
            clock,
        })
    }

    /// Logs `op` (a set's record text: `data`) according to the write mode and applies it.
    /// Nothing changes on error.
    pub(super) fn log_and_apply(&mut self, op: Op, data: Option<&str>) -> Result<WriteOutcome> {
        self.log_and_apply_with(op, data, true)
    }

    /// `flush_when_full`: write the group/async buffer once it holds `groupCommitSize` ops.
    pub(super) fn log_and_apply_with(
        &mut self,
        op: Op,
        data: Option<&str>,
        flush_when_full: bool,
    ) -> Result<WriteOutcome> {
        // Built in a buffer kept from op to op, which the file (or the buffer of group and async
        // modes, or the open batch's) and the op list copy it from.
        let mut line = std::mem::take(&mut self.line_buf);
        line.clear();
        let spans = op.encode_with_data(data, &mut line);
        line.push('\n');
        let pos = self.next_pos();
        let logged = self.log_line(line.as_bytes(), flush_when_full);
        let text: Arc<str> = Arc::from(&line[..line.len() - 1]);
        self.line_buf = line;
        logged?;
        let mut op = op;
        let mut ops = self.ops.lock();
        match &mut self.cut {
            Some(cut) => {
                cut.changed
                    .insert(op.id.as_str().into(), cut.later.len() + ops.len());
                // Applied when the checkpoint finishes.
                op.data = data.map(str::to_string);
            }
            // Cannot fail but on a read error of the snapshot (the id was just looked up there);
            // the op is logged then, and a reopen applies it.
            None => {
                let records = Arc::make_mut(&mut self.records);
                match (op.kind, spans.data) {
                    // The record keeps its text in the line the op list holds anyway.
                    (OpKind::Set, Some(data)) => records.set_from_line(&text, spans.id, data)?,
                    _ => apply(records, &mut op)?,
                }
            }
        }
        ops.push(LoggedOp {
            op,
            line: text,
            pos,
        });
        drop(ops);
        Ok(self.outcome(false))
    }

    /// Writes an op's line (with its newline) according to the write mode, or stages it in the
    /// open batch. Nothing is logged on error.
    pub(super) fn log_line(&mut self, bytes: &[u8], flush_when_full: bool) -> Result<()> {
        if let Some(batch) = &mut self.batch {
            batch.bytes.extend_from_slice(bytes);
            return Ok(());
        }
        match self.opts.write_mode {
            WriteMode::Immediate => {
                self.backend.append_ops(&self.active_ops, bytes)?;
                self.appended(bytes.len());
            }
            WriteMode::Group | WriteMode::Async => {
                let before = self.pending.len();
                self.pending.extend_from_slice(bytes);
                self.pending_ops += 1;
                if flush_when_full && self.pending_ops >= self.opts.group_size {
                    if let Err(e) = self.flush() {
                        self.pending.truncate(before);
                        self.pending_ops -= 1;
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether a checkpoint is due after a write. As in the reference, a single op in async
    /// mode never triggers one (it resolves before the check); a batch always may.
    pub(super) fn outcome(&self, batch_commit: bool) -> WriteOutcome {
        // A skipLoad store holds only this session's records: a snapshot of them would drop
        // everything it did not load, so it never checkpoints.
        let due = self.batch.is_none()
            && !self.opts.skip_load
            && (batch_commit || self.opts.write_mode != WriteMode::Async)
            && (self.ops.lock().len() as f64) >= self.opts.checkpoint_threshold;
        if due {
            WriteOutcome::CheckpointDue
        } else {
            WriteOutcome::Done
        }
    }

    /// `set(id, data)`: `id` is a JSON string token, `data` the record's JSON text.
    pub fn set(&mut self, id: &str, data: &str) -> Result<WriteOutcome> {
        self.ensure_writable()?;
        let op = self.make_op(OpKind::Set, id, Some(data))?;
        self.log_and_apply(op, Some(data))
    }

    /// Sets the facade collected (`(id, data, ms)`, the time each was called), applied in order:
    /// `async` mode's (handed over to the store's thread), `group` mode's (one call per group)
    /// and those of the open batch (staged in it). Outside a batch the buffer is written after
    /// them if it is full. When that write fails the error is returned and every set stays
    /// applied and buffered (a later flush retries it), except with `refuse_last`: `group` mode's
    /// set that filled the buffer is refused, so it is taken back out (the ones before it were
    /// acknowledged when they were made).
    pub fn set_many(
        &mut self,
        sets: Vec<(&str, &str, i64)>,
        refuse_last: bool,
    ) -> Result<WriteOutcome> {
        self.ensure_writable()?;
        if self.opts.write_mode == WriteMode::Immediate && self.batch.is_none() {
            return Err(Error::Invalid(
                "set_many is for group and async modes, or inside a batch".into(),
            ));
        }
        for (id, data, ms) in sets {
            let op = self.make_op_at(OpKind::Set, id, Some(data), ms)?;
            self.log_and_apply_with(op, Some(data), false)?;
        }
        if self.batch.is_none() && self.pending_ops >= self.opts.group_size {
            if let Err(e) = self.flush() {
                if refuse_last {
                    self.drop_last_buffered()?;
                }
                return Err(e);
            }
        }
        Ok(self.outcome(false))
    }

    /// `group` mode: how many more sets the facade may collect before it must hand them over,
    /// so that the buffer is written and a checkpoint comes due after the same set as when each
    /// set is made on its own (at least 1; call it when no checkpoint is due).
    pub fn group_room(&self) -> usize {
        let by_size = self.opts.group_size.saturating_sub(self.pending_ops).max(1);
        let left = self.opts.checkpoint_threshold - self.ops.lock().len() as f64;
        if self.opts.skip_load || left.is_nan() || left <= 0.0 {
            // skipLoad never checkpoints; a threshold that is not a number is never reached.
            return by_size;
        }
        by_size.min(left.ceil() as usize)
    }

    pub fn delete(&mut self, id: &str) -> Result<WriteOutcome> {
        self.ensure_writable()?;
        if self.with_record(id, |r| r.is_none())? {
            return Err(Error::NotFound(id.to_string()));
        }
        let op = self.make_op(OpKind::Delete, id, None)?;
        self.log_and_apply(op, None)
    }

    pub fn batch_begin(&mut self) -> Result<()> {
        self.ensure_writable()?;
        self.ensure_no_checkpoint()?;
        self.batch = Some(Batch {
            ops_start: self.ops.lock().len(),
            bytes: Vec::new(),
        });
        self.records_mut().hold_slots();
        Ok(())
    }

    /// Writes the batch's ops in one append (after anything buffered, keeping log order).
    /// On error the batch stays staged for `batch_rollback`.
    pub fn batch_commit(&mut self) -> Result<WriteOutcome> {
        let Some(batch) = self.batch.as_ref() else {
            return Ok(WriteOutcome::Done);
        };
        if batch.bytes.is_empty() {
            self.batch = None;
            self.records_mut().release_slots(false);
            return Ok(WriteOutcome::Done);
        }
        if !self.pending.is_empty() {
            self.flush()?;
        }
        let bytes = &self.batch.as_ref().expect("batch checked").bytes;
        self.backend.append_batch(&self.active_ops, bytes)?;
        self.appended(bytes.len());
        self.batch = None;
        self.records_mut().release_slots(false);
        Ok(self.outcome(true))
    }

    /// Reverses every staged op of the open batch, newest first. `keep_order`: the records end
    /// in the order they had before it (otherwise a record it deleted comes back at the end, a
    /// fresh insertion, as in the reference). Returns the view changes and whether the order
    /// differs from what applying them to the view gives.
    pub fn batch_rollback(&mut self, keep_order: bool) -> Result<(Vec<Effect>, bool)> {
        let Some(batch) = self.batch.take() else {
            return Ok((Vec::new(), false));
        };
        let staged: Vec<LoggedOp> = self.ops.lock().drain(batch.ops_start..).collect();
        let records = self.records_mut();
        let mut effects = Vec::with_capacity(staged.len());
        let mut failed = None;
        for logged in staged.iter().rev() {
            match super::undo::reverse(records, &logged.op) {
                Ok(effect) => effects.extend(effect),
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        let reordered = records.release_slots(keep_order);
        match failed {
            Some(e) => Err(e),
            None => Ok((effects, reordered)),
        }
    }

    /// Counts an append of `len` bytes to the active op file.
    fn appended(&mut self, len: usize) {
        self.written += len as u64;
        self.appends += 1;
    }

    /// Writes what group/async modes have buffered.
    pub fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.backend.append_ops(&self.active_ops, &self.pending)?;
        self.appended(self.pending.len());
        self.pending.clear();
        self.pending_ops = 0;
        Ok(())
    }
}

/// `prev` of an op on a record whose current text is `old`: the whole old record, or, for a set
/// that replaces it, the delta back to it when that is shorter; and whether it is the delta.
pub(super) fn prev_of(
    kind: OpKind,
    old: Option<&str>,
    new: Option<&str>,
) -> (Option<String>, bool) {
    if let (OpKind::Set, Some(old), Some(new)) = (kind, old, new) {
        if let Some(patch) = delta::create_delta(old, new) {
            if delta::is_delta_smaller(&patch, old) {
                return (Some(patch), true);
            }
        }
    }
    (old.map(str::to_string), false)
}

/// Applies an op to the records, moving its data into them: an op kept in the log needs only its
/// line (for `getOps`) and `prev` (for undo), so the record text is not held twice.
pub(super) fn apply(records: &mut Records, op: &mut Op) -> Result<()> {
    match (op.kind, op.data.take()) {
        (OpKind::Set, Some(data)) => records.set(&op.id, &data),
        (OpKind::Delete, _) => records.remove(&op.id).map(|_| ()),
        _ => Ok(()),
    }
}
