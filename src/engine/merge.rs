//! Multi-writer ordering: ops of all agents in ascending `(clock, agent)` order.
//!
//! The tie order on agent ids is the reference's `localeCompare` for ordinary ids (letters,
//! digits, `-`, `_`): `_` < `-` < digits < letters; letters compare without case first, and on a
//! full tie lowercase comes before uppercase at the first difference. Other characters sort after
//! letters by code point. Two different ids never compare equal.

use std::cmp::Ordering;

use super::wal::LoggedOp;

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
