//! The live records, keyed by id, iterated in the order a JavaScript `Map` would give:
//! insertion order, an overwrite keeps its place, a delete then set moves to the end.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// FxHash (as in rustc): ids are trusted local data, and SipHash's DoS resistance cost a third
/// of the time of a write.
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf));
        }
    }

    #[inline]
    fn write_u8(&mut self, b: u8) {
        self.add(u64::from(b));
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

type FxBuild = BuildHasherDefault<FxHasher>;

#[derive(Debug, Default, Clone)]
pub struct Records {
    slots: Vec<Option<(Arc<str>, Box<str>)>>,
    index: HashMap<Arc<str>, usize, FxBuild>,
    /// While held (`hold_slots`): the slots removals freed, oldest first, kept free so that the
    /// records can go back where they were.
    held: Option<Vec<(Arc<str>, usize)>>,
}

impl Records {
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<&str> {
        let &slot = self.index.get(id)?;
        self.slots[slot].as_ref().map(|(_, text)| &**text)
    }

    /// Sets a record; returns the previous text.
    pub fn set(&mut self, id: &str, text: Box<str>) -> Option<Box<str>> {
        if let Some(&slot) = self.index.get(id) {
            let entry = self.slots[slot].as_mut().expect("indexed slot is live");
            return Some(std::mem::replace(&mut entry.1, text));
        }
        let id: Arc<str> = Arc::from(id);
        self.index.insert(id.clone(), self.slots.len());
        self.slots.push(Some((id, text)));
        None
    }

    pub fn remove(&mut self, id: &str) -> Option<Box<str>> {
        let slot = self.index.remove(id)?;
        let (id, text) = self.slots[slot].take().expect("indexed slot is live");
        if let Some(held) = &mut self.held {
            held.push((id, slot));
        } else if self.slots.len() > 64 && self.index.len() * 2 < self.slots.len() {
            self.compact_slots();
        }
        Some(text)
    }

    /// From now on, removals remember the slot they free (a batch that may be rolled back).
    pub fn hold_slots(&mut self) {
        self.held = Some(Vec::new());
    }

    /// Ends `hold_slots`. With `restore`, each record removed meanwhile and present again (put
    /// back by a rollback, at the end of the order) moves back to the slot it had: the iteration
    /// order is what it was before. Returns whether any record moved.
    pub fn release_slots(&mut self, restore: bool) -> bool {
        let Some(held) = self.held.take() else {
            return false;
        };
        let mut moved = false;
        for (id, slot) in held.into_iter().rev() {
            if !restore || self.slots[slot].is_some() {
                continue;
            }
            let Some(now) = self.index.get_mut(&id) else {
                continue;
            };
            let from = std::mem::replace(now, slot);
            self.slots[slot] = self.slots[from].take();
            moved = true;
        }
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
        moved
    }

    fn compact_slots(&mut self) {
        self.slots.retain(Option::is_some);
        for (i, (id, _)) in self.slots.iter().flatten().enumerate() {
            *self.index.get_mut(id).expect("live id is indexed") = i;
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.slots
            .iter()
            .flatten()
            .map(|(id, text)| (&**id, &**text))
    }

    /// Records from slot `start` on, for resumable export; yields the slot after each record.
    pub fn iter_from(&self, start: usize) -> impl Iterator<Item = (usize, &str, &str)> {
        self.slots
            .iter()
            .enumerate()
            .skip(start)
            .filter_map(|(i, s)| s.as_ref().map(|(id, text)| (i + 1, &**id, &**text)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(r: &Records) -> Vec<String> {
        r.iter().map(|(id, _)| id.to_string()).collect()
    }

    #[test]
    fn follows_map_iteration_order() {
        let mut r = Records::default();
        r.set("a", "1".into());
        r.set("b", "2".into());
        r.set("c", "3".into());
        assert_eq!(r.set("a", "4".into()).as_deref(), Some("1"));
        assert_eq!(order(&r), ["a", "b", "c"]);
        r.remove("a");
        r.set("a", "5".into());
        assert_eq!(order(&r), ["b", "c", "a"]);
        assert_eq!(r.get("a"), Some("5"));
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn held_slots_take_removed_records_back_in_place() {
        let mut r = Records::default();
        for id in ["a", "b", "c", "d"] {
            r.set(id, id.into());
        }
        r.hold_slots();
        r.remove("b");
        r.set("e", "e".into());
        r.remove("d");
        r.set("b", "B".into());
        // A rollback: newest first, each op reversed.
        r.remove("b");
        r.set("d", "d".into());
        r.remove("e");
        r.set("b", "b".into());
        assert!(r.release_slots(true));
        assert_eq!(order(&r), ["a", "b", "c", "d"]);
        assert_eq!(r.get("b"), Some("b"));
        r.hold_slots();
        r.remove("a");
        assert!(!r.release_slots(false), "a commit keeps the new order");
        assert_eq!(order(&r), ["b", "c", "d"]);
    }

    #[test]
    fn survives_slot_compaction() {
        let mut r = Records::default();
        for i in 0..200 {
            r.set(&i.to_string(), i.to_string().into());
        }
        for i in 0..150 {
            r.remove(&i.to_string());
        }
        assert_eq!(r.len(), 50);
        assert_eq!(r.get("199"), Some("199"));
        assert_eq!(order(&r).first().map(String::as_str), Some("150"));
        r.set("150", "x".into());
        assert_eq!(order(&r).first().map(String::as_str), Some("150"));
    }
}
