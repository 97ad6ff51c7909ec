//! Multi-writer ordering: ops of all agents in ascending `(clock, agent)` order.
//!
//! The tie order on agent ids is the reference's `localeCompare` for ordinary ids (letters,
//! digits, `-`, `_`): `_` < `-` < digits < letters; letters compare without case first, and on a
//! full tie lowercase comes before uppercase at the first difference. Other characters sort after
//! letters by code point. Two different ids never compare equal.

use std::cmp::Ordering;

use super::backend::Backend;
use super::error::{Error, Result};
use super::wal::{LoggedOp, OpIter};

fn primary(c: char) -> u32 {
    match c {
        '_' => 0,
        '-' => 1,
        '0'..='9' => 2 + (c as u32 - '0' as u32),
        'a'..='z' => 12 + (c as u32 - 'a' as u32),
        'A'..='Z' => 12 + (c as u32 - 'A' as u32),
        other => 100 + other as u32,
    }
}

/// The order of two agent ids when their clocks tie.
pub fn agent_order(a: &str, b: &str) -> Ordering {
    a.chars()
        .map(primary)
        .cmp(b.chars().map(primary))
        .then_with(|| {
            // Lowercase before uppercase at the first difference in case.
            a.chars()
                .map(|c| c.is_ascii_uppercase())
                .cmp(b.chars().map(|c| c.is_ascii_uppercase()))
        })
        .then_with(|| a.cmp(b))
}

fn clock_of(l: &LoggedOp) -> u64 {
    l.op.clock.unwrap_or(0)
}

fn agent_of(l: &LoggedOp) -> &str {
    l.op.agent.as_deref().unwrap_or("")
}

/// The total order of ops: clock, then agent.
pub fn op_order(a: &LoggedOp, b: &LoggedOp) -> Ordering {
    clock_of(a)
        .cmp(&clock_of(b))
        .then_with(|| agent_order(agent_of(a), agent_of(b)))
}

/// Merges per-agent op lists, each already in clock order, into one ordered list (a k-way
/// merge: no global sort).
pub fn merge(lists: Vec<Vec<LoggedOp>>) -> Vec<LoggedOp> {
    let total = lists.iter().map(Vec::len).sum();
    let mut heads = vec![0usize; lists.len()];
    let mut order: Vec<(usize, usize)> = Vec::with_capacity(total);
    loop {
        let mut best: Option<usize> = None;
        for (i, list) in lists.iter().enumerate() {
            let Some(candidate) = list.get(heads[i]) else {
                continue;
            };
            if best.is_none_or(|b| op_order(candidate, &lists[b][heads[b]]) == Ordering::Less) {
                best = Some(i);
            }
        }
        let Some(i) = best else { break };
        order.push((i, heads[i]));
        heads[i] += 1;
    }
    let mut slots: Vec<Vec<Option<LoggedOp>>> = lists
        .into_iter()
        .map(|l| l.into_iter().map(Some).collect())
        .collect();
    order
        .into_iter()
        .map(|(i, j)| slots[i][j].take().expect("each op taken once"))
        .collect()
}

/// Every agent's ops above the snapshot's clocks, merged in `(clock, agent)` order while they are
/// read: one op per agent file in memory (for `getWalOps` in multi-writer mode).
pub struct MergedOps {
    heads: Vec<(Option<LoggedOp>, OpIter, Option<u64>)>,
}

fn next_above(ops: &mut OpIter, mark: Option<u64>) -> Result<Option<LoggedOp>> {
    for logged in ops.by_ref() {
        let logged = logged?;
        if mark.is_none_or(|m| logged.op.clock.unwrap_or(0) > m) {
            return Ok(Some(logged));
        }
    }
    Ok(None)
}

impl MergedOps {
    pub fn open(backend: &dyn Backend) -> Result<Self> {
        let read = || {
            backend
                .read_manifest()?
                .ok_or_else(Error::manifest_gone_on_refresh)
        };
        let mut manifest = read()?;
        loop {
            let files = manifest.agent_files();
            let mut heads = Vec::with_capacity(files.len());
            for (agent, rel) in files {
                let mark = manifest.agent_clock(&agent);
                let mut ops = backend.op_reader(&rel)?;
                let head = next_above(&mut ops, mark)?;
                heads.push((head, ops, mark));
            }
            // A compaction that retired an agent deletes its file once the manifest that drops
            // it is published: with the files open, an unchanged manifest means none was missed.
            let now = read()?;
            if now == manifest {
                return Ok(MergedOps { heads });
            }
            manifest = now;
        }
    }
}

impl Iterator for MergedOps {
    type Item = Result<LoggedOp>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut best: Option<usize> = None;
        for (i, (head, _, _)) in self.heads.iter().enumerate() {
            let Some(candidate) = head else { continue };
            let better = best.is_none_or(|b| {
                let current = self.heads[b].0.as_ref().expect("best has a head");
                op_order(candidate, current) == Ordering::Less
            });
            if better {
                best = Some(i);
            }
        }
        let i = best?;
        let (head, ops, mark) = &mut self.heads[i];
        let next = match next_above(ops, *mark) {
            Ok(next) => next,
            Err(e) => return Some(Err(e)),
        };
        std::mem::replace(head, next).map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_order_matches_locale_compare_for_ordinary_ids() {
        // Sorted with String.prototype.localeCompare in Node.js.
        let expected = ["a", "A", "a_", "a_b", "a-", "a-b", "a0", "ab", "aB", "Ab"];
        let mut ids = expected.to_vec();
        ids.reverse();
        ids.sort_by(|a, b| agent_order(a, b));
        assert_eq!(ids, expected);
        assert_eq!(agent_order("x", "x"), Ordering::Equal);
    }
}
