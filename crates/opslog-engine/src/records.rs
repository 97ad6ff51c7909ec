//! The live records, keyed by id, iterated in the order a JavaScript `Map` would give:
//! insertion order, an overwrite keeps its place, a delete then set moves to the end.
//!
//! A record unchanged since the snapshot file it was loaded from (or last written to) is not
//! held in memory: the table keeps where its line is in that file (`Source`, kept open) and a
//! hash of its id, and reads the line back when the record is needed. Only records changed since
//! are held as text. So a store of a million records costs ~33 MB here instead of its texts.

use std::borrow::Cow;
use std::fs::File;
use std::hash::Hasher;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use super::error::{Error, Result};
use super::record_line;

/// FxHash (as in rustc): ids are trusted local data, and SipHash's DoS resistance cost a third
/// of the time of a write. A collision costs a comparison, never a wrong answer.
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

/// The table's 32-bit hash of an id (the well-mixed high half of FxHash).
pub fn hash_id(id: &str) -> u32 {
    let mut h = FxHasher::default();
    h.write(id.as_bytes());
    (h.finish() >> 32) as u32
}

/// A record line's place in its file: byte offset (40 bits) and length (24 bits) in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place(u64);

impl Place {
    const LEN_BITS: u32 = 24;
    pub const MAX_LEN: u64 = (1 << Self::LEN_BITS) - 1;
    pub const MAX_AT: u64 = (1 << (64 - Self::LEN_BITS)) - 1;

    /// `None` for a line too long or too far into the file to describe (kept in memory then).
    pub fn new(at: u64, len: usize) -> Option<Place> {
        let len = len as u64;
        (len <= Self::MAX_LEN && at <= Self::MAX_AT).then_some(Place(at << Self::LEN_BITS | len))
    }

    fn at(self) -> u64 {
        self.0 >> Self::LEN_BITS
    }

    fn len(self) -> usize {
        (self.0 & Self::MAX_LEN) as usize
    }
}

/// A snapshot file records point into, open for reading at any offset. It stays readable while
/// records point into it, even after a checkpoint deleted its name.
#[derive(Debug)]
pub struct Source {
    file: File,
    shown: String,
}

impl Source {
    pub fn open(path: &Path, shown: String) -> Result<Arc<Source>> {
        let file = File::open(path).map_err(|e| Error::io("open", &shown, e))?;
        Ok(Arc::new(Source { file, shown }))
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// The name the file is shown by in messages.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Bytes `start..end` of the file as a reader. It reads at offsets, so that several
    /// threads can read the file at once.
    pub fn reader(&self, start: u64, end: u64) -> RangeReader<'_> {
        RangeReader {
            file: &self.file,
            at: start,
            end,
        }
    }

    /// Fills `buf` from byte `at` on; returns how many bytes were read (fewer only at the end).
    pub fn read_at(&self, at: u64, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match super::fsutil::read_at(&self.file, &mut buf[done..], at + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("read", &self.shown, e)),
            }
        }
        Ok(done)
    }

    fn changed(&self) -> Error {
        Error::Corrupt(format!(
            "{}: the snapshot changed on disk while the store had it open",
            self.shown
        ))
    }

    /// A record line's id token and record text.
    fn split<'a>(&self, line: &'a [u8]) -> Result<(&'a str, &'a str)> {
        std::str::from_utf8(line)
            .ok()
            .and_then(record_line::split)
            .ok_or_else(|| self.changed())
    }

    fn line(&self, place: Place) -> Result<Vec<u8>> {
        let mut buf = vec![0; place.len()];
        if self.read_at(place.at(), &mut buf)? < buf.len() {
            return Err(self.changed());
        }
        Ok(buf)
    }
}

/// A range of a source's bytes (`Source::reader`).
pub struct RangeReader<'a> {
    file: &'a File,
    at: u64,
    end: u64,
}

impl std::io::Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let room = usize::try_from(self.end - self.at).unwrap_or(usize::MAX);
        let len = buf.len().min(room);
        if len == 0 {
            return Ok(0);
        }
        let n = super::fsutil::read_at(self.file, &mut buf[..len], self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// Reads the lines of a source in ascending order through one window, as iteration does.
struct Window<'a> {
    source: &'a Source,
    buf: Vec<u8>,
    start: u64,
}

impl<'a> Window<'a> {
    const SIZE: usize = 1 << 20;

    fn new(source: &'a Source) -> Self {
        Window {
            source,
            buf: Vec::new(),
            start: 0,
        }
    }

    fn line(&mut self, place: Place) -> Result<(&str, &str)> {
        let (at, len) = (place.at(), place.len());
        let inside = at >= self.start && at + len as u64 <= self.start + self.buf.len() as u64;
        if !inside {
            self.buf.resize(len.max(Self::SIZE), 0);
            let n = self.source.read_at(at, &mut self.buf)?;
            self.buf.truncate(n);
            self.start = at;
            if n < len {
                return Err(self.source.changed());
            }
        }
        let from = (at - self.start) as usize;
        self.source.split(&self.buf[from..from + len])
    }
}

/// A record held in memory: its id token and text, two ranges of one string. That string is
/// the line of the op that set the record (shared with the op list: no copy) or one of its own.
#[derive(Debug, Clone)]
struct Held {
    src: Arc<str>,
    id: (u32, u32),
    text: (u32, u32),
}

impl Held {
    fn own(id: &str, text: &str) -> Held {
        let mut src = String::with_capacity(id.len() + text.len());
        src.push_str(id);
        src.push_str(text);
        Held::shared(src.into(), 0..id.len(), id.len()..id.len() + text.len())
            .expect("a string of its own is short enough")
    }

    /// `None` when a range does not fit the 32-bit offsets (a string over 4 GiB).
    fn shared(src: Arc<str>, id: Range<usize>, text: Range<usize>) -> Option<Held> {
        let span =
            |r: Range<usize>| Some((u32::try_from(r.start).ok()?, u32::try_from(r.end).ok()?));
        Some(Held {
            id: span(id)?,
            text: span(text)?,
            src,
        })
    }

    fn id(&self) -> &str {
        &self.src[self.id.0 as usize..self.id.1 as usize]
    }

    fn text(&self) -> &str {
        &self.src[self.text.0 as usize..self.text.1 as usize]
    }

    /// Whether the string holds more than the id and text (an op's whole line).
    fn holds_more(&self) -> bool {
        (self.id.1 - self.id.0 + self.text.1 - self.text.0) as usize != self.src.len()
    }
}

#[derive(Debug, Clone)]
enum Slot {
    /// Removed; skipped by iteration until the slots are compacted.
    Free,
    /// Unchanged since the source was written: its line there.
    InFile(Place),
    InMemory(Box<Held>),
}

/// What a probe for an id met.
enum Probe<T> {
    /// Table position, slot, and what the match gave.
    Found(usize, usize, T),
    /// Not there: the free table position it would take (`None`: no table yet).
    Missing(Option<usize>),
}

/// An entry of the hash table: a slot number and its id's hash, side by side so that probing
/// compares hashes without visiting the slots (each a likely cache miss, and a pointer chase for
/// a record held in memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry(u64);

impl Entry {
    /// No slot.
    const EMPTY: Entry = Entry(u64::MAX);

    fn new(hash: u32, slot: usize) -> Entry {
        Entry(u64::from(hash) << 32 | slot as u64)
    }

    fn hash(self) -> u32 {
        (self.0 >> 32) as u32
    }

    fn slot(self) -> usize {
        (self.0 & u64::from(u32::MAX)) as usize
    }
}

#[derive(Debug, Default, Clone)]
pub struct Records {
    /// In iteration order.
    slots: Vec<Slot>,
    /// Open addressing with linear probing, a power of two long.
    table: Vec<Entry>,
    live: usize,
    /// While held (`hold_slots`): the slots removals freed, oldest first, kept free so that the
    /// records can go back where they were.
    held: Option<Vec<(Box<str>, usize)>>,
    source: Option<Arc<Source>>,
}

impl Records {
    /// Records whose `InFile` places point into `source`.
    pub fn with_source(source: Arc<Source>) -> Records {
        Records {
            source: Some(source),
            ..Records::default()
        }
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// How many records are held as text (changed since the source was written, or all of them
    /// without a source).
    pub fn held_in_memory(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s, Slot::InMemory(_)))
            .count()
    }

    fn source(&self) -> Result<&Source> {
        self.source.as_deref().ok_or_else(no_source)
    }

    fn mask(&self) -> usize {
        self.table.len().wrapping_sub(1)
    }

    /// The id and record of a line in the file, given to `f` (one read).
    fn with_line<T>(&self, place: Place, f: impl FnOnce(&str, &str) -> T) -> Result<T> {
        let source = self.source()?;
        let line = source.line(place)?;
        let (id, text) = source.split(&line)?;
        Ok(f(id, text))
    }

    /// Probes the table from `hash`'s home: `matches` sees each slot with that hash, in probe
    /// order, until it gives a value; returns it with the table position and slot.
    fn probe<'a, T>(
        &'a self,
        hash: u32,
        mut matches: impl FnMut(&'a Slot) -> Result<Option<T>>,
    ) -> Result<Probe<T>> {
        if self.table.is_empty() {
            return Ok(Probe::Missing(None));
        }
        let mask = self.mask();
        let mut pos = hash as usize & mask;
        loop {
            let entry = self.table[pos];
            if entry == Entry::EMPTY {
                return Ok(Probe::Missing(Some(pos)));
            }
            if entry.hash() == hash {
                if let Some(found) = matches(&self.slots[entry.slot()])? {
                    return Ok(Probe::Found(pos, entry.slot(), found));
                }
            }
            pos = (pos + 1) & mask;
        }
    }

    /// Where `id` is in the table (or would go). `in_memory_only`: skip records in the file
    /// (for ids known to be held, which then needs no read).
    fn find(&self, id: &str, hash: u32, in_memory_only: bool) -> Result<Probe<()>> {
        self.probe(hash, |slot| self.slot_has_id(slot, id, in_memory_only))
    }

    /// Whether `slot` is the record of `id` (`Some(())`), reading its line when it is in the
    /// file (unless `in_memory_only`).
    fn slot_has_id(&self, slot: &Slot, id: &str, in_memory_only: bool) -> Result<Option<()>> {
        match slot {
            Slot::InMemory(h) => Ok((h.id() == id).then_some(())),
            Slot::InFile(place) if !in_memory_only => Ok(self
                .with_line(*place, |line_id, _| line_id == id)?
                .then_some(())),
            _ => Ok(None),
        }
    }

    /// A record's text: borrowed when held, read from the file otherwise (the read that checks
    /// the id also gives the text).
    pub fn get(&self, id: &str) -> Result<Option<Cow<'_, str>>> {
        let found = self.probe(hash_id(id), |slot| match slot {
            Slot::InMemory(h) => Ok((h.id() == id).then_some(Cow::Borrowed(h.text()))),
            Slot::InFile(place) => self.with_line(*place, |line_id, text| {
                (line_id == id).then(|| Cow::Owned(text.to_string()))
            }),
            Slot::Free => Ok(None),
        })?;
        Ok(match found {
            Probe::Found(_, _, text) => Some(text),
            Probe::Missing(_) => None,
        })
    }

    pub fn contains(&self, id: &str) -> Result<bool> {
        Ok(matches!(
            self.find(id, hash_id(id), false)?,
            Probe::Found(..)
        ))
    }

    /// Sets a record to a text held in memory.
    pub fn set(&mut self, id: &str, text: &str) -> Result<()> {
        self.put(id, Slot::InMemory(Box::new(Held::own(id, text))))
    }

    /// `set` of the id and text at these ranges of `line` (an op's line, kept instead of copied).
    pub fn set_from_line(
        &mut self,
        line: &Arc<str>,
        id: Range<usize>,
        text: Range<usize>,
    ) -> Result<()> {
        let held = match Held::shared(line.clone(), id.clone(), text.clone()) {
            Some(held) => held,
            None => Held::own(&line[id.clone()], &line[text]),
        };
        self.put(&line[id], Slot::InMemory(Box::new(held)))
    }

    /// Copies every record held in memory that shares a longer string (an op's line) into a
    /// string of its own, so that it no longer keeps the rest of that line alive.
    pub fn own_held_texts(&mut self) {
        for slot in &mut self.slots {
            if let Slot::InMemory(h) = slot {
                if h.holds_more() {
                    **h = Held::own(h.id(), h.text());
                }
            }
        }
    }

    /// Sets a record to the line at `place` of the source (as loading the source does).
    pub fn set_in_file(&mut self, id: &str, place: Place) -> Result<()> {
        self.put(id, Slot::InFile(place))
    }

    /// `set_in_file` of a line whose id has `hash` (`hash_id`, computed beforehand): the id is
    /// read back from the line only to tell it from another record of the same hash.
    pub fn set_in_file_hashed(&mut self, hash: u32, place: Place) -> Result<()> {
        self.reserve_one();
        let mut id = None;
        let found = self.probe(hash, |slot| {
            if id.is_none() {
                id = Some(self.with_line(place, |line_id, _| line_id.to_string())?);
            }
            self.slot_has_id(slot, id.as_deref().unwrap_or_default(), false)
        })?;
        self.place(found, hash, Slot::InFile(place));
        Ok(())
    }

    /// Room for `n` more records without growing the table (a load that knows how many follow).
    pub fn reserve(&mut self, n: usize) {
        self.slots.reserve(n);
        let want = self.live.saturating_add(n);
        let mut size = self.table.len().max(16);
        while want.saturating_mul(4) > size.saturating_mul(3) {
            size *= 2;
        }
        if size > self.table.len() {
            self.grow_table(size);
        }
    }

    /// Appends a record whose id is not in the table (writing a snapshot learns each place).
    pub fn push_in_file(&mut self, id: &str, place: Place) {
        self.push(hash_id(id), Slot::InFile(place));
    }

    /// `push_in_file` of a record held in memory.
    pub fn push_in_memory(&mut self, id: &str, text: &str) {
        self.push(hash_id(id), Slot::InMemory(Box::new(Held::own(id, text))));
    }

    /// The file that records pushed with `push_in_file` point into, once it can be opened.
    pub fn attach_source(&mut self, source: Arc<Source>) {
        self.source = Some(source);
    }

    /// Replaces `id`'s slot in place, or appends it: one probe either way.
    fn put(&mut self, id: &str, slot: Slot) -> Result<()> {
        let hash = hash_id(id);
        // Grown first, so that the free position the probe finds is still free to take.
        self.reserve_one();
        let found = self.find(id, hash, false)?;
        self.place(found, hash, slot);
        Ok(())
    }

    /// Puts `slot` where a probe (after `reserve_one`) found its id, or appends it.
    fn place(&mut self, found: Probe<()>, hash: u32, slot: Slot) {
        match found {
            Probe::Found(_, at, ()) => self.slots[at] = slot,
            Probe::Missing(pos) => self.append(pos.expect("table reserved"), hash, slot),
        }
    }

    fn push(&mut self, hash: u32, slot: Slot) {
        self.reserve_one();
        let pos = self.free_position(hash);
        self.append(pos, hash, slot);
    }

    /// Keeps the table at most three quarters full with one more entry.
    fn reserve_one(&mut self) {
        if (self.live + 1) * 4 > self.table.len() * 3 {
            self.grow_table((self.table.len() * 2).max(16));
        }
    }

    fn append(&mut self, pos: usize, hash: u32, slot: Slot) {
        self.table[pos] = Entry::new(hash, self.slots.len());
        self.slots.push(slot);
        self.live += 1;
    }

    /// The first free position of `hash`'s probe run.
    fn free_position(&self, hash: u32) -> usize {
        let mask = self.mask();
        let mut pos = hash as usize & mask;
        while self.table[pos] != Entry::EMPTY {
            pos = (pos + 1) & mask;
        }
        pos
    }

    /// Rehashes into a table of `size` entries from the hashes the entries keep (the slots are
    /// not visited).
    fn grow_table(&mut self, size: usize) {
        let old = std::mem::replace(&mut self.table, vec![Entry::EMPTY; size]);
        for entry in old.into_iter().filter(|e| *e != Entry::EMPTY) {
            let pos = self.free_position(entry.hash());
            self.table[pos] = entry;
        }
    }

    /// Empties table position `pos`, shifting later entries of the probe run back so that every
    /// entry stays reachable from its home position.
    fn remove_entry(&mut self, mut pos: usize) {
        let mask = self.mask();
        let mut next = (pos + 1) & mask;
        loop {
            let entry = self.table[next];
            if entry == Entry::EMPTY {
                break;
            }
            let home = entry.hash() as usize & mask;
            if next.wrapping_sub(home) & mask >= next.wrapping_sub(pos) & mask {
                self.table[pos] = entry;
                pos = next;
            }
            next = (next + 1) & mask;
        }
        self.table[pos] = Entry::EMPTY;
    }

    /// Removes a record; returns whether there was one.
    pub fn remove(&mut self, id: &str) -> Result<bool> {
        let Probe::Found(pos, slot, ()) = self.find(id, hash_id(id), false)? else {
            return Ok(false);
        };
        self.remove_entry(pos);
        self.slots[slot] = Slot::Free;
        self.live -= 1;
        if let Some(held) = &mut self.held {
            held.push((id.into(), slot));
        } else if self.slots.len() > 64 && self.live * 2 < self.slots.len() {
            self.compact_slots();
        }
        Ok(true)
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
            if !restore || !matches!(self.slots[slot], Slot::Free) {
                continue;
            }
            // A record put back is held in memory (a rollback sets its text), so no read.
            let Ok(Probe::Found(pos, from, ())) = self.find(&id, hash_id(&id), true) else {
                continue;
            };
            self.table[pos] = Entry::new(self.table[pos].hash(), slot);
            self.slots[slot] = std::mem::replace(&mut self.slots[from], Slot::Free);
            moved = true;
        }
        while matches!(self.slots.last(), Some(Slot::Free)) {
            self.slots.pop();
        }
        moved
    }

    /// Drops the free slots; the table entries keep their positions (same hashes) and take
    /// the live slots' new numbers.
    fn compact_slots(&mut self) {
        let mut renumbered = Vec::with_capacity(self.slots.len());
        let mut next = 0u32;
        for slot in &self.slots {
            renumbered.push(next);
            next += u32::from(!matches!(slot, Slot::Free));
        }
        for entry in self.table.iter_mut().filter(|e| **e != Entry::EMPTY) {
            *entry = Entry::new(entry.hash(), renumbered[entry.slot()] as usize);
        }
        self.slots.retain(|s| !matches!(s, Slot::Free));
    }

    /// Visits the records in order from slot `start` on, with the slot after each; stops when
    /// `visit` returns false. Lines in the file are read in order through one window.
    pub fn visit_from(
        &self,
        start: usize,
        mut visit: impl FnMut(usize, &str, &str) -> Result<bool>,
    ) -> Result<()> {
        let mut window = self.source.as_deref().map(Window::new);
        for (i, slot) in self.slots.iter().enumerate().skip(start) {
            let go_on = match slot {
                Slot::Free => continue,
                Slot::InMemory(h) => visit(i + 1, h.id(), h.text())?,
                Slot::InFile(place) => {
                    let Some(window) = window.as_mut() else {
                        return Err(no_source());
                    };
                    let (id, text) = window.line(*place)?;
                    visit(i + 1, id, text)?
                }
            };
            if !go_on {
                break;
            }
        }
        Ok(())
    }

    /// Visits every record in order.
    pub fn visit(&self, mut visit: impl FnMut(&str, &str) -> Result<()>) -> Result<()> {
        self.visit_from(0, |_, id, text| visit(id, text).map(|_| true))
    }

    /// The records with these ids (those there are), as owned `(id, text)` pairs in that order.
    pub fn pairs_of(&self, ids: &[String]) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for id in ids {
            if let Some(text) = self.get(id)? {
                out.push((id.clone(), text.into_owned()));
            }
        }
        Ok(out)
    }

    /// Every record as owned `(id, text)` pairs, in order.
    pub fn pairs(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::with_capacity(self.live);
        self.visit(|id, text| {
            out.push((id.to_string(), text.to_string()));
            Ok(())
        })?;
        Ok(out)
    }
}

fn no_source() -> Error {
    Error::Corrupt("a record points into no snapshot file".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn order(r: &Records) -> Vec<String> {
        r.pairs().unwrap().into_iter().map(|(id, _)| id).collect()
    }

    fn text(r: &Records, id: &str) -> Option<String> {
        r.get(id).unwrap().map(Cow::into_owned)
    }

    /// A snapshot-like file holding `pairs` as record lines; records pointing into it.
    fn in_file(name: &str, pairs: &[(&str, &str)]) -> Records {
        let path =
            std::env::temp_dir().join(format!("opslog-records-{name}-{}", std::process::id()));
        let mut file = File::create(&path).unwrap();
        let mut at = 0u64;
        let mut places = Vec::new();
        writeln!(file, "{{\"version\":1}}").unwrap();
        at += 14;
        for (id, data) in pairs {
            let line = format!("{{\"id\":{id},\"data\":{data}}}");
            writeln!(file, "{line}").unwrap();
            places.push((id.to_string(), Place::new(at, line.len()).unwrap()));
            at += line.len() as u64 + 1;
        }
        let mut r = Records::with_source(Source::open(&path, path.display().to_string()).unwrap());
        for (id, place) in places {
            r.set_in_file(&id, place).unwrap();
        }
        r
    }

    #[test]
    fn follows_map_iteration_order() {
        let mut r = Records::default();
        r.set("a", "1").unwrap();
        r.set("b", "2").unwrap();
        r.set("c", "3").unwrap();
        r.set("a", "4").unwrap();
        assert_eq!(order(&r), ["a", "b", "c"]);
        assert!(r.remove("a").unwrap());
        assert!(!r.remove("a").unwrap());
        r.set("a", "5").unwrap();
        assert_eq!(order(&r), ["b", "c", "a"]);
        assert_eq!(text(&r, "a").as_deref(), Some("5"));
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn held_slots_take_removed_records_back_in_place() {
        let mut r = in_file("held", &[("\"a\"", "1"), ("\"b\"", "2")]);
        for id in ["\"c\"", "\"d\""] {
            r.set(id, id).unwrap();
        }
        r.hold_slots();
        r.remove("\"b\"").unwrap();
        r.set("\"e\"", "5").unwrap();
        r.remove("\"d\"").unwrap();
        r.set("\"b\"", "6").unwrap();
        // A rollback: newest first, each op reversed.
        r.remove("\"b\"").unwrap();
        r.set("\"d\"", "\"d\"").unwrap();
        r.remove("\"e\"").unwrap();
        r.set("\"b\"", "2").unwrap();
        assert!(r.release_slots(true));
        assert_eq!(order(&r), ["\"a\"", "\"b\"", "\"c\"", "\"d\""]);
        assert_eq!(text(&r, "\"b\"").as_deref(), Some("2"));
        r.hold_slots();
        r.remove("\"a\"").unwrap();
        assert!(!r.release_slots(false), "a commit keeps the new order");
        assert_eq!(order(&r), ["\"b\"", "\"c\"", "\"d\""]);
    }

    #[test]
    fn survives_slot_compaction() {
        let mut r = Records::default();
        for i in 0..200 {
            r.set(&i.to_string(), &i.to_string()).unwrap();
        }
        for i in 0..150 {
            r.remove(&i.to_string()).unwrap();
        }
        assert_eq!(r.len(), 50);
        assert_eq!(text(&r, "199").as_deref(), Some("199"));
        assert_eq!(order(&r).first().map(String::as_str), Some("150"));
        r.set("150", "x").unwrap();
        assert_eq!(order(&r).first().map(String::as_str), Some("150"));
    }

    #[test]
    fn records_in_the_file_are_read_back_and_replaced_in_place() {
        let mut r = in_file(
            "read",
            &[("\"x\"", "{\"n\":1}"), ("\"y\"", "[1,2]"), ("\"x\"", "3")],
        );
        assert_eq!(r.len(), 2);
        assert_eq!(r.held_in_memory(), 0);
        assert_eq!(text(&r, "\"x\"").as_deref(), Some("3"), "a later line wins");
        assert_eq!(order(&r), ["\"x\"", "\"y\""]);
        r.set("\"y\"", "4").unwrap();
        assert_eq!(r.held_in_memory(), 1);
        assert_eq!(order(&r), ["\"x\"", "\"y\""]);
        assert!(r.contains("\"x\"").unwrap());
        assert!(!r.contains("\"z\"").unwrap());
        assert!(r.remove("\"x\"").unwrap());
        assert_eq!(r.pairs().unwrap(), [("\"y\"".to_string(), "4".to_string())]);
    }

    #[test]
    fn a_shortened_file_is_an_error_not_a_panic() {
        let r = in_file("short", &[("\"x\"", "12345")]);
        let path =
            std::env::temp_dir().join(format!("opslog-records-short-{}", std::process::id()));
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_len(5)
            .unwrap();
        let err = r.get("\"x\"").unwrap_err().to_string();
        assert!(err.contains("changed on disk"), "{err}");
        assert!(r.pairs().is_err());
    }

    #[test]
    fn a_record_set_from_a_line_shares_it_until_owning_its_text() {
        let line: Arc<str> = r#"{"ts":"t","op":"set","id":"a","prev":null,"data":{"x":1}}"#.into();
        let mut r = Records::default();
        r.set_from_line(&line, 26..29, 49..56).unwrap();
        assert_eq!(text(&r, "\"a\"").as_deref(), Some(r#"{"x":1}"#));
        assert_eq!(Arc::strong_count(&line), 2);
        r.own_held_texts();
        assert_eq!(Arc::strong_count(&line), 1);
        assert_eq!(
            r.pairs().unwrap(),
            vec![("\"a\"".to_string(), r#"{"x":1}"#.to_string())]
        );
    }

    #[test]
    fn place_packs_offset_and_length() {
        let p = Place::new(123_456_789_012, 65_535).unwrap();
        assert_eq!((p.at(), p.len()), (123_456_789_012, 65_535));
        assert!(Place::new(0, 1 << 24).is_none());
        assert!(Place::new(1 << 40, 1).is_none());
    }

    mod model {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Step {
            Set(u8, u16),
            /// Set through an op line the record shares.
            SetFromLine(u8, u16),
            Remove(u8),
            Hold,
            Release,
            OwnTexts,
        }

        fn step() -> impl Strategy<Value = Step> {
            prop_oneof![
                4 => (any::<u8>(), any::<u16>()).prop_map(|(i, v)| Step::Set(i, v)),
                2 => (any::<u8>(), any::<u16>()).prop_map(|(i, v)| Step::SetFromLine(i, v)),
                3 => any::<u8>().prop_map(Step::Remove),
                1 => Just(Step::Hold),
                1 => Just(Step::Release),
                1 => Just(Step::OwnTexts),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(200))]
            /// Against an ordered list: same records, same order, through table growth,
            /// backward-shift deletes and slot compaction, with some records in the file.
            #[test]
            fn behaves_like_an_ordered_map(
                initial in proptest::collection::vec(any::<u8>(), 0..40),
                steps in proptest::collection::vec(step(), 0..400),
            ) {
                let lines: Vec<(String, String)> =
                    initial.iter().map(|i| (format!("\"k{i}\""), format!("{i}"))).collect();
                let refs: Vec<(&str, &str)> =
                    lines.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                let mut r = in_file("model", &refs);
                let mut model: Vec<(String, String)> = Vec::new();
                for (id, v) in &lines {
                    match model.iter_mut().find(|(k, _)| k == id) {
                        Some(e) => e.1 = v.clone(),
                        None => model.push((id.clone(), v.clone())),
                    }
                }
                let mut holding = false;
                for s in steps {
                    match s {
                        Step::Set(i, v) | Step::SetFromLine(i, v) => {
                            let id = format!("\"k{i}\"");
                            if let Step::SetFromLine(..) = s {
                                let line: Arc<str> = format!("{{\"id\":{id},\"data\":{v}}}").into();
                                let id_at = 6;
                                let data_at = id_at + id.len() + 8;
                                r.set_from_line(&line, id_at..id_at + id.len(), data_at..line.len() - 1)
                                    .unwrap();
                            } else {
                                r.set(&id, &v.to_string()).unwrap();
                            }
                            match model.iter_mut().find(|(k, _)| *k == id) {
                                Some(e) => e.1 = v.to_string(),
                                None => model.push((id, v.to_string())),
                            }
                        }
                        Step::OwnTexts => r.own_held_texts(),
                        Step::Remove(i) => {
                            let id = format!("\"k{i}\"");
                            let was = model.iter().position(|(k, _)| *k == id);
                            prop_assert_eq!(r.remove(&id).unwrap(), was.is_some());
                            if let Some(p) = was {
                                model.remove(p);
                            }
                        }
                        Step::Hold if !holding => {
                            r.hold_slots();
                            holding = true;
                        }
                        Step::Release if holding => {
                            r.release_slots(false);
                            holding = false;
                        }
                        _ => {}
                    }
                    prop_assert_eq!(r.len(), model.len());
                }
                prop_assert_eq!(r.pairs().unwrap(), model.clone());
                for (id, v) in &model {
                    prop_assert_eq!(text(&r, id), Some(v.clone()));
                }
            }
        }
    }
}
