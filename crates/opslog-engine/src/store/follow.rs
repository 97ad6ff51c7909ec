//! Following another process's writes (`tail`, `refresh`, `watch` of a read-only store): the
//! ops it appended, across its checkpoints, handed out so that applying them to the state the
//! follower had reproduces the writer's state.

use std::sync::Arc;

use super::{apply, load_snapshot, Fetched, Result, Store, TailResult};
use crate::manifest::Manifest;
use crate::op::{Op, OpKind};
use crate::records::Records;
use crate::wal::LoggedOp;

impl Store {
    /// Picks up ops another process appended to the active op file. When that writer has
    /// checkpointed since (the manifest names a new generation), moves to it (see `reload`).
    pub fn tail(&mut self) -> Result<TailResult> {
        if self.merged {
            return self.refresh_multi();
        }
        // The writer appends to the file we follow until it checkpoints (or agents take over).
        // On a remote backend the manifest is therefore looked at only when that file has
        // nothing new (a round trip fewer per tail; a checkpoint made after the ops read is
        // followed by the next tail). Elsewhere it is looked at first, so a tail brings the
        // writer's latest state. A file the writer deleted reads as an error here.
        let read = self.backend.remote().then(|| self.read_new_ops());
        let idle = read
            .as_ref()
            .is_none_or(|r| r.as_ref().map_or(true, Vec::is_empty));
        if self.opts.read_only && idle {
            if let Some(Fetched {
                manifest: Some(m),
                token,
            }) = self.changed_manifest()?
            {
                let moved = m.active_ops != self.active_ops
                    || m.current_snapshot != self.manifest.current_snapshot;
                if m.active_agent_ops.is_some() {
                    // Agents write the store now: follow all of them.
                    self.merged = true;
                    self.manifest = m;
                    self.manifest_token = token;
                    return self.refresh_multi();
                }
                if moved {
                    let result = self.reload(m)?;
                    // Only now: the token stands for the manifest this store holds.
                    self.manifest_token = token;
                    return Ok(result);
                }
                self.manifest = m;
                self.manifest_token = token;
            }
        }
        let ops = match read {
            Some(read) => read?,
            None => self.read_new_ops()?,
        };
        let lines = self.apply_new_ops(ops)?;
        Ok(TailResult {
            lines,
            reset: false,
        })
    }

    /// The complete ops appended to the active op file since the last read. A batch of ours is
    /// never seen in part (its append holds the file's lock, see `OpWriter::append_whole`).
    fn read_new_ops(&self) -> Result<Vec<LoggedOp>> {
        self.read_complete_ops(&self.active_ops, self.written)
    }

    /// The ops of op file `rel` from byte `from` on whose lines are complete.
    fn read_complete_ops(&self, rel: &str, from: u64) -> Result<Vec<LoggedOp>> {
        let mut read = self.backend.read_ops(rel, from, true)?;
        // A last line without its newline may still be growing: it is picked up next time.
        if read.missing_newline {
            read.ops.pop();
        }
        Ok(read.ops)
    }

    /// Applies ops read from the active op file and logs them; returns their lines.
    fn apply_new_ops(&mut self, ops: Vec<LoggedOp>) -> Result<Vec<Arc<str>>> {
        let Some(last) = ops.last() else {
            return Ok(Vec::new());
        };
        self.written = end_of(last);
        let records = Arc::make_mut(&mut self.records);
        let mut log = self.ops.lock();
        let mut lines = Vec::with_capacity(ops.len());
        for mut logged in ops {
            apply(records, &mut logged.op)?;
            lines.push(logged.line.clone());
            log.push(logged);
        }
        Ok(lines)
    }

    /// Moves to the writer's newer generation. The ops handed out are, in order: the rest of the
    /// op file we were following (what the writer did before it checkpointed), the changes of any
    /// generation we never saw (as `set`/`delete` ops stamped with the checkpoint's time), then the
    /// new op file's ops, but for those it starts with that the file we followed ended with (the
    /// writes a checkpoint carried over, which were already handed out). `reset` tells the view
    /// to rebuild itself when applying those ops to it would not also give the writer's
    /// iteration order.
    fn reload(&mut self, mut manifest: Manifest) -> Result<TailResult> {
        // The old file may be gone already (more than one checkpoint since): the diff covers it.
        let mut lines = match self.read_new_ops() {
            Ok(ops) => self.apply_new_ops(ops)?,
            Err(_) => Vec::new(),
        };
        // The writer may delete a generation while we read it: start again from the manifest.
        let (mut records, version, mut ops) = loop {
            let loaded = load_snapshot(&*self.backend, &manifest)
                .and_then(|(r, v)| Ok((r, v, self.read_complete_ops(&manifest.active_ops, 0)?)));
            match loaded {
                Ok(v) => break v,
                Err(e) => match self.backend.read_manifest()? {
                    Some(newer) if newer.current_snapshot != manifest.current_snapshot => {
                        manifest = newer
                    }
                    _ => return Err(e),
                },
            }
        };
        // Whatever `seen` is, the diff brings the view to the snapshot plus the ops up to it, and
        // the ops after it then give the writer's state.
        let seen = overlap(&self.ops.lock(), &ops);
        for logged in &mut ops[..seen] {
            apply(&mut records, &mut logged.op)?;
        }
        let missed = diff_ops(&self.records, &records, &manifest.stats.last_checkpoint)?;
        let in_order = missed.is_empty() && same_order(&self.records, &records)?;
        lines.extend(missed);
        for logged in &mut ops[seen..] {
            apply(&mut records, &mut logged.op)?;
            lines.push(logged.line.clone());
        }
        self.written = ops.last().map_or(0, end_of);
        self.records = Arc::new(records);
        self.version = version;
        self.archived = manifest.stats.archived_records;
        self.active_ops = manifest.active_ops.clone();
        self.manifest = manifest;
        self.ops.replace(ops, "");
        Ok(TailResult {
            lines,
            reset: !in_order,
        })
    }
}

/// Op lines that turn `old` into `new`: a `set` for each record added or changed, a `delete`
/// for each one gone.
fn diff_ops(old: &Records, new: &Records, ts: &str) -> Result<Vec<Arc<str>>> {
    let op = |kind, id: &str, prev: Option<&str>, data: Option<&str>| {
        Op {
            ts: ts.into(),
            kind,
            id: id.to_string(),
            prev: prev.map(str::to_string),
            data: data.map(str::to_string),
            delta: false,
            agent: None,
            clock: None,
        }
        .encode()
        .into()
    };
    let mut lines: Vec<Arc<str>> = Vec::new();
    new.visit(|id, text| {
        let before = old.get(id)?;
        if before.as_deref() != Some(text) {
            lines.push(op(OpKind::Set, id, before.as_deref(), Some(text)));
        }
        Ok(())
    })?;
    old.visit(|id, text| {
        if !new.contains(id)? {
            lines.push(op(OpKind::Delete, id, Some(text), None));
        }
        Ok(())
    })?;
    Ok(lines)
}

/// How many ops `new` starts with that `old` ends with, line for line (a checkpoint carries the
/// writes made while it ran from the end of the old op file to the start of the new one): the
/// longest prefix of `new` that is a suffix of `old`, found as Knuth-Morris-Pratt finds a match.
fn overlap(old: &[LoggedOp], new: &[LoggedOp]) -> usize {
    let same = |a: &LoggedOp, b: &LoggedOp| a.line == b.line;
    // fail[i]: the longest proper prefix of new[..=i] that is also a suffix of it.
    let mut fail = vec![0; new.len()];
    let mut k = 0;
    for i in 1..new.len() {
        while k > 0 && !same(&new[i], &new[k]) {
            k = fail[k - 1];
        }
        if same(&new[i], &new[k]) {
            k += 1;
        }
        fail[i] = k;
    }
    let mut matched = 0;
    for op in old {
        while matched > 0 && (matched == new.len() || !same(op, &new[matched])) {
            matched = fail[matched - 1];
        }
        if matched < new.len() && same(op, &new[matched]) {
            matched += 1;
        }
    }
    matched
}

/// The byte after an op's line (and its newline) in its file.
fn end_of(op: &LoggedOp) -> u64 {
    op.pos + op.line.len() as u64 + 1
}

fn same_order(a: &Records, b: &Records) -> Result<bool> {
    if a.len() != b.len() {
        return Ok(false);
    }
    let mut ids = Vec::with_capacity(a.len());
    a.visit(|id, _| {
        ids.push(id.to_string());
        Ok(())
    })?;
    let mut ids = ids.into_iter();
    let mut same = true;
    b.visit(|id, _| {
        same &= ids.next().as_deref() == Some(id);
        Ok(())
    })?;
    Ok(same)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(pairs: &[(&str, &str)]) -> Records {
        let mut r = Records::default();
        for (id, text) in pairs {
            r.set(id, text).unwrap();
        }
        r
    }

    #[test]
    fn diff_ops_turn_one_state_into_the_other() {
        let old = records(&[("\"a\"", "{}"), ("\"b\"", "{\"v\":1}"), ("\"c\"", "{}")]);
        let new = records(&[("\"a\"", "{}"), ("\"b\"", "{\"v\":2}"), ("\"d\"", "[]")]);
        let lines = diff_ops(&old, &new, "T").unwrap();
        assert_eq!(
            lines.iter().map(|l| &**l).collect::<Vec<_>>(),
            [
                r#"{"ts":"T","op":"set","id":"b","prev":{"v":1},"data":{"v":2}}"#,
                r#"{"ts":"T","op":"set","id":"d","prev":null,"data":[]}"#,
                r#"{"ts":"T","op":"delete","id":"c","prev":{}}"#,
            ]
        );
        assert!(diff_ops(&new, &new, "T").unwrap().is_empty());
        assert!(same_order(&new, &new).unwrap());
        let reordered = records(&[("\"b\"", "{\"v\":2}"), ("\"a\"", "{}"), ("\"d\"", "[]")]);
        assert!(diff_ops(&new, &reordered, "T").unwrap().is_empty());
        assert!(!same_order(&new, &reordered).unwrap());
    }

    #[test]
    fn overlap_finds_the_carried_ops_at_the_start_of_the_new_file() {
        let ops = |ids: &str| -> Vec<LoggedOp> {
            ids.chars()
                .map(|c| {
                    let line = format!(r#"{{"ts":"T","op":"delete","id":"{c}","prev":{{}}}}"#);
                    LoggedOp {
                        op: Op::parse(&line).unwrap(),
                        line: line.into(),
                        pos: 0,
                    }
                })
                .collect()
        };
        assert_eq!(overlap(&ops("abcde"), &ops("defg")), 2);
        assert_eq!(overlap(&ops("abc"), &ops("abc")), 3);
        assert_eq!(overlap(&ops("abc"), &ops("xyz")), 0);
        assert_eq!(overlap(&ops(""), &ops("ab")), 0);
        assert_eq!(overlap(&ops("ab"), &ops("")), 0);
        // Repeated lines: the longest overlap, not the first partial match.
        assert_eq!(overlap(&ops("xaaab"), &ops("aaabc")), 4);
        assert_eq!(overlap(&ops("aabaab"), &ops("aabaabx")), 6);
        assert_eq!(overlap(&ops("abab"), &ops("ababab")), 4);
    }
}
