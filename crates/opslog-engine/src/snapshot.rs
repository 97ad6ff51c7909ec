//! Snapshots: `snapshots/snap-<ms>.jsonl`, a header line then one `{"id","data"}` line per
//! record. Readers also take the two legacy forms (one JSON object with `records`, on one line
//! or pretty-printed).

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::batch::{Batch, PairsBuilder};
use super::error::{display_join, Error, Result};
use super::fsutil;
use super::json::{self, Kind};
use super::lines::{self, Lines};
use super::record_line;
use super::records::{hash_id, Place, Records, Source};
use super::time;

/// The header line; the version is written as JavaScript writes the number.
pub fn header(version: f64, timestamp: &str) -> String {
    format!(
        "{{\"version\":{},\"timestamp\":{}}}",
        json::format_number(version),
        json::quote(timestamp)
    )
}

/// Writes a new snapshot file of `records`; `sync`: durable when this returns (else once
/// fsynced later). Returns its path relative to `dir`, and the same records pointing into it
/// (none held in memory but a line too long for a `Place`).
pub fn write(dir: &Path, records: &Records, version: f64, sync: bool) -> Result<(String, Records)> {
    let snapdir = dir.join("snapshots");
    let name = fsutil::fresh_name(&snapdir, "snap-", "jsonl");
    let path = snapdir.join(&name);
    let mut written = Records::default();
    let mut failed = None;
    fsutil::write_replace_with(&path, sync, |w| {
        let head = header(version, &time::now_iso());
        w.write_all(head.as_bytes())?;
        w.write_all(b"\n")?;
        let mut at = head.len() as u64 + 1;
        let mut line = Vec::with_capacity(256);
        let visited = records.visit(|id, data| {
            line.clear();
            record_line::encode(id, data, &mut line);
            // A failed write is reported by write_tmp, naming the file it writes.
            w.write_all(&line).map_err(|e| Error::io("write", "", e))?;
            match Place::new(at, line.len() - 1) {
                Some(place) => written.push_in_file(id, place),
                None => written.push_in_memory(id, data),
            }
            at += line.len() as u64;
            Ok(())
        });
        // The engine's own error (reading the records) is the one to report, not its io form.
        visited.map_err(|e| match e {
            Error::Io { path, source, .. } if path.is_empty() => source,
            e => {
                let io = std::io::Error::other(e.to_string());
                failed = Some(e);
                io
            }
        })
    })
    .map_err(|e| failed.take().unwrap_or(e))?;
    let rel = format!("snapshots/{name}");
    written.attach_source(Source::open(&path, path.display().to_string())?);
    Ok((rel, written))
}

fn corrupt(path: &str, what: impl std::fmt::Display) -> Error {
    Error::Corrupt(format!("Corrupt snapshot {path}: {what}"))
}

/// `validateSnapshot`'s checks on a whole-snapshot object; returns its `records` text and version.
fn check_snapshot<'a>(members: &[json::Member<'a>]) -> std::result::Result<(f64, &'a str), String> {
    let get = |name: &str| members.iter().find(|m| m.key == name).map(|m| m.value);
    let version = get("\"version\"")
        .filter(|v| json::kind_of(v) == Kind::Number)
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && v.fract() == 0.0 && *v >= 1.0)
        .ok_or("Invalid snapshot: version must be a positive finite integer")?;
    if !get("\"timestamp\"").is_some_and(|t| json::kind_of(t) == Kind::String && t != "\"\"") {
        return Err("Invalid snapshot: timestamp must be a non-empty string".into());
    }
    let records = get("\"records\"")
        .filter(|r| json::kind_of(r) == Kind::Object)
        .ok_or("Invalid snapshot: records must be an object")?;
    Ok((version, records))
}

/// `validateSnapshot` on JSON text: `Err(message)` when it fails.
pub fn validate(text: &str) -> std::result::Result<(), String> {
    let members = match json::kind_of(text.trim_start()) {
        Kind::Object => json::object_members_dedup(text).map_err(|e| e.to_string())?,
        _ => return Err("Invalid snapshot: not an object".into()),
    };
    check_snapshot(&members).map(|_| ())
}

/// The legacy whole-object form: validates as `validateSnapshot` and yields its records.
fn legacy_records(text: &str, path: &str) -> Result<(f64, Vec<(String, String)>)> {
    let members = json::object_members_dedup(text)
        .map_err(|_| Error::Corrupt(format!("Invalid snapshot: not an object ({path})")))?;
    let (version, records) =
        check_snapshot(&members).map_err(|m| Error::Corrupt(format!("{m} ({path})")))?;
    let mut out = Vec::new();
    for m in json::object_members_dedup(records).map_err(|e| corrupt(path, e))? {
        let id = json::canonicalize(m.key)
            .map_err(|e| corrupt(path, e))?
            .into_owned();
        let data = json::canonicalize(m.value)
            .map_err(|e| corrupt(path, e))?
            .into_owned();
        out.push((id, data));
    }
    // `new Map(Object.entries(records))`: array-index ids first, as JSON.parse orders them.
    json::js_property_order(&mut out);
    Ok((version, out))
}

/// What the first line of a snapshot says about its form.
enum Form {
    /// `first_is_record`: the header line is missing and the first line is already a record.
    Jsonl {
        version: f64,
        first_is_record: bool,
    },
    Legacy,
}

/// Reads a snapshot's first line through `reader`: the form it says, and its length in bytes.
fn read_form(reader: &mut impl BufRead, shown: &str) -> Result<(Form, usize)> {
    let mut first = Vec::new();
    let len = reader
        .read_until(b'\n', &mut first)
        .map_err(|e| Error::io("read", shown, e))?;
    Ok((detect(&String::from_utf8_lossy(&first)), len))
}

fn detect(first_line: &str) -> Form {
    let trimmed = first_line.trim();
    match json::object_members_dedup(trimmed) {
        Ok(members) => {
            let has = |key: &str| members.iter().any(|m| m.key == key);
            if has("\"records\"") {
                Form::Legacy
            } else if has("\"id\"") && has("\"data\"") && !has("\"version\"") {
                Form::Jsonl {
                    version: 1.0,
                    first_is_record: true,
                }
            } else {
                let version = members
                    .iter()
                    .find(|m| m.key == "\"version\"")
                    .and_then(|m| m.value.parse::<f64>().ok())
                    .filter(|v| v.is_finite())
                    .unwrap_or(1.0);
                Form::Jsonl {
                    version,
                    first_is_record: false,
                }
            }
        }
        Err(_) => Form::Legacy,
    }
}

/// Loads a whole snapshot. `dir_display` is the directory as the user gave it (for messages).
/// Records of a JSONL snapshot whose lines are already in canonical form stay in the file (the
/// records keep where their lines are); any other line is parsed and held. A large one is
/// checked by two threads, each a part of its lines (see `scan`), and indexed in order here.
pub fn load(dir: &Path, dir_display: &str, rel: &str) -> Result<(Records, f64)> {
    let path = dir.join(rel);
    let shown = display_join(dir_display, rel);
    let source = Source::open(&path, shown.clone())?;
    let mut reader = BufReader::with_capacity(1 << 16, source.file());
    let (form, first_len) = read_form(&mut reader, &shown)?;
    drop(reader);
    let (version, first_is_record) = match form {
        Form::Legacy => {
            let text = fsutil::read_data_text(&path, &shown)?;
            let (version, recs) = legacy_records(&text, &shown)?;
            let mut records = Records::default();
            for (id, data) in recs {
                records.set(&id, &data)?;
            }
            return Ok((records, version));
        }
        Form::Jsonl {
            version,
            first_is_record,
        } => (version, first_is_record),
    };
    // The first line, read for its form, is read again when it is a record.
    let (start, first_line) = if first_is_record {
        (0, 1)
    } else {
        (first_len as u64, 2)
    };
    let end = source
        .file()
        .metadata()
        .map_err(|e| Error::io("stat", &shown, e))?
        .len()
        .max(start);
    let mut index = Index {
        records: Records::with_source(source.clone()),
        not_utf8: 0,
        line: first_line,
        shown: &shown,
    };
    match split_point(&source, start, end)? {
        // This thread checks the first part and indexes it while the other checks the second.
        Some(mid) => std::thread::scope(|scope| {
            let second = scope.spawn(|| scan(&source, mid, end));
            let first = index.add(scan(&source, start, mid));
            let second = second
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            first.and_then(|()| index.add(second))
        })?,
        None => index.add(scan(&source, start, end))?,
    }
    fsutil::warn_not_utf8(index.not_utf8, &shown);
    Ok((index.records, version))
}

/// The records a load has indexed so far, from the parts `scan` checked, in order.
struct Index<'a> {
    records: Records,
    not_utf8: usize,
    /// The number of the next part's first line.
    line: usize,
    shown: &'a str,
}

impl Index<'_> {
    fn add(&mut self, part: Result<Scanned>) -> Result<()> {
        let part = part?;
        self.records.reserve(part.items.len());
        for item in part.items {
            match item {
                Loaded::InFile(hash, place) => self.records.set_in_file_hashed(hash, place)?,
                Loaded::Held(pair) => self.records.set(&pair.0, &pair.1)?,
            }
        }
        self.not_utf8 += part.not_utf8;
        if let Some((at, e)) = part.error {
            return Err(corrupt(self.shown, format!("line {}: {e}", self.line + at)));
        }
        self.line += part.lines;
        Ok(())
    }
}

/// The share of a large snapshot's bytes the loading thread checks (the rest goes to a second
/// thread): less than half, as it also indexes its part while the other thread checks.
const FIRST_PART: f64 = 0.43;

/// A snapshot with this many bytes of records or more is checked by two threads.
const PARALLEL_LOAD_BYTES: u64 = 8 << 20;

/// Where the lines of `start..end` split in two (just after a newline, `FIRST_PART` in), or
/// `None` when the range is too small to be worth a second thread.
fn split_point(source: &Source, start: u64, end: u64) -> Result<Option<u64>> {
    if end - start < PARALLEL_LOAD_BYTES {
        return Ok(None);
    }
    let mut at = start + ((end - start) as f64 * FIRST_PART) as u64;
    let mut buf = vec![0; 1 << 16];
    while at < end {
        let n = source.read_at(at, &mut buf)?;
        if n == 0 {
            break;
        }
        if let Some(i) = buf[..n].iter().position(|&b| b == b'\n') {
            let mid = at + i as u64 + 1;
            return Ok((mid < end).then_some(mid));
        }
        at += n as u64;
    }
    Ok(None)
}

/// A snapshot line as `scan` checked it.
enum Loaded {
    /// Canonical: the record stays in the file. Its id's `hash_id`, and its place.
    InFile(u32, Place),
    /// Parsed: its canonical id token and record text.
    Held(Box<(String, String)>),
}

/// The lines of a part of a snapshot, checked.
struct Scanned {
    /// In file order (blank lines left out).
    items: Vec<Loaded>,
    /// Lines read, blank ones included.
    lines: usize,
    not_utf8: usize,
    /// The first line that is not a record (its number in the part, from 0), and why. The
    /// part's lines after it are not read.
    error: Option<(usize, String)>,
}

/// Reads and checks the lines of `start..end` of a snapshot (`start` at the start of a line):
/// what the load needs of them, in order, without touching the records. Reads at offsets, so
/// that two threads can read the same file.
fn scan(source: &Source, start: u64, end: u64) -> Result<Scanned> {
    let mut lines = Lines::with_capacity(1 << 20, source.reader(start, end));
    let mut out = Scanned {
        items: Vec::new(),
        lines: 0,
        not_utf8: 0,
        error: None,
    };
    loop {
        let at = start + lines.offset();
        let Some(line) = lines
            .next_line()
            .map_err(|e| Error::io("read", source.shown(), e))?
        else {
            break;
        };
        let raw = line.strip_suffix(b"\n").unwrap_or(line);
        let parsed = match std::str::from_utf8(raw) {
            Ok(text) => match usual_line(text).zip(Place::new(at, raw.len())) {
                Some((id, place)) => {
                    out.items.push(Loaded::InFile(hash_id(id), place));
                    None
                }
                None => Some(Cow::Borrowed(text)),
            },
            Err(_) => {
                out.not_utf8 += 1;
                Some(String::from_utf8_lossy(raw))
            }
        };
        if let Some(text) = parsed {
            let text = text.trim();
            if !text.is_empty() {
                match record_line::parse(text) {
                    Ok(pair) => out.items.push(Loaded::Held(Box::new(pair))),
                    Err(e) => {
                        out.error = Some((out.lines, e));
                        break;
                    }
                }
            }
        }
        out.lines += 1;
    }
    Ok(out)
}

/// The id token of a record line of the usual form whose id and record are already canonical
/// (as `JSON.stringify` writes them): such a line can stay in the file.
fn usual_line(line: &str) -> Option<&str> {
    let (id, data) = record_line::split(line)?;
    let canonical = |t: &str| matches!(json::canonicalize(t), Ok(Cow::Borrowed(_)));
    (canonical(id) && canonical(data)).then_some(id)
}

/// A JSONL snapshot's records as the JavaScript view needs them, fast: flat `[id, record, ...]`
/// array texts cut from the lines as they are, for `JSON.parse`, without the engine's checks
/// (the engine loads the same file, and checks it, at the same time). Only lines of the form
/// `{"id":<string>,"data":<value>}` are taken; anything else ends the stream with an error, and
/// the caller builds its view from the engine's records instead.
pub struct RecordPairs {
    lines: Lines<File>,
    shown: String,
}

impl RecordPairs {
    pub fn open(dir: &Path, dir_display: &str, rel: &str) -> Result<Self> {
        let path = super::paths::inside(dir, rel)?;
        let shown = display_join(dir_display, rel);
        let mut reader = BufReader::with_capacity(1 << 20, reopen(&path, &shown)?);
        match read_form(&mut reader, &shown)?.0 {
            Form::Jsonl {
                first_is_record: false,
                ..
            } => Ok(RecordPairs {
                lines: Lines::new(reader),
                shown,
            }),
            _ => Err(Error::Corrupt(format!(
                "{shown}: not a JSONL snapshot with a header"
            ))),
        }
    }
}

impl RecordPairs {
    /// Fills `out` with the next lines, until it is full or the file ends.
    fn fill(&mut self, out: &mut PairsBuilder, max: usize) -> Result<()> {
        while !out.is_full(max) {
            let Some(line) = self
                .lines
                .next_line()
                .map_err(|e| Error::io("read", &self.shown, e))?
            else {
                break;
            };
            let text = lines::text(line);
            let line = text.trim();
            if line.is_empty() {
                continue;
            }
            let (id, data) = record_line::split(line)
                .ok_or_else(|| Error::Corrupt(format!("{}: a line of another form", self.shown)))?;
            out.push(id, data);
        }
        Ok(())
    }
}

impl super::batch::BatchStream for RecordPairs {
    fn next_batch(&mut self, max: usize) -> Result<Option<Batch>> {
        let mut out = PairsBuilder::for_view(max);
        self.fill(&mut out, max)?;
        Ok(out.finish())
    }
}

fn reopen(path: &Path, shown: &str) -> Result<File> {
    File::open(path).map_err(|e| Error::io("open", shown, e))
}

/// Reads a snapshot a batch of records at a time, holding one batch in memory (JSONL form).
pub struct SnapshotStream {
    shown: String,
    /// An error met after some records of a batch: those are returned first, this one next.
    deferred: Option<Error>,
    state: StreamState,
    line_no: usize,
    pub version: f64,
}

enum StreamState {
    Lines(Lines<File>),
    Buffered(std::vec::IntoIter<(String, String)>),
    Done,
}

impl SnapshotStream {
    pub fn open(dir: &Path, dir_display: &str, rel: &str) -> Result<Self> {
        let path = dir.join(rel);
        let shown = display_join(dir_display, rel);
        let mut reader = BufReader::with_capacity(1 << 16, reopen(&path, &shown)?);
        match read_form(&mut reader, &shown)?.0 {
            Form::Jsonl {
                version,
                first_is_record,
            } => {
                if first_is_record {
                    reader = BufReader::with_capacity(1 << 16, reopen(&path, &shown)?);
                }
                Ok(SnapshotStream {
                    shown,
                    deferred: None,
                    state: StreamState::Lines(Lines::new(reader)),
                    line_no: usize::from(!first_is_record),
                    version,
                })
            }
            Form::Legacy => {
                // A legacy snapshot is one JSON value; it has to be read whole to be split.
                let text = fsutil::read_text(&path)?;
                let (version, recs) = legacy_records(&text, &shown)?;
                Ok(SnapshotStream {
                    shown,
                    deferred: None,
                    state: StreamState::Buffered(recs.into_iter()),
                    line_no: 0,
                    version,
                })
            }
        }
    }

    /// Up to `max` records as a pairs batch, or `None` at the end.
    pub fn next_batch(&mut self, max: usize) -> Result<Option<Batch>> {
        if let Some(e) = self.deferred.take() {
            self.state = StreamState::Done;
            return Err(e);
        }
        let mut out = PairsBuilder::new(max);
        match &mut self.state {
            StreamState::Done => return Ok(None),
            StreamState::Buffered(it) => {
                while !out.is_full(max) {
                    let Some((id, data)) = it.next() else {
                        break;
                    };
                    out.push(&id, &data);
                }
            }
            StreamState::Lines(lines) => {
                while !out.is_full(max) {
                    let Some(line) = lines
                        .next_line()
                        .map_err(|e| Error::io("read", &self.shown, e))?
                    else {
                        break;
                    };
                    self.line_no += 1;
                    let line = lines::text(line);
                    let line = line.trim();
                    if line.is_empty() {
                        continue;
                    }
                    // A valid line of the usual form gives its own texts: parsed, they give what
                    // their canonical forms give (and what the reference's `JSON.parse` of the
                    // line gives), so the rewrite into canonical form is skipped (it costs the
                    // stream's worker more than reading the file does). Any other line goes
                    // through `record_line::parse`, which also says what is wrong with it.
                    let usual = record_line::split(line)
                        .is_some_and(|(id, data)| out.push_checked(id, data));
                    if usual {
                        continue;
                    }
                    match record_line::parse(line) {
                        Ok((id, data)) => out.push(&id, &data),
                        Err(e) => {
                            let e = corrupt(&self.shown, format!("line {}: {e}", self.line_no));
                            if out.is_empty() {
                                self.state = StreamState::Done;
                                return Err(e);
                            }
                            self.deferred = Some(e);
                            break;
                        }
                    }
                }
            }
        }
        let batch = out.finish();
        if batch.is_none() {
            self.state = StreamState::Done;
        }
        Ok(batch)
    }
}

/// A snapshot's records one at a time, for tools that read a store without opening it (verify,
/// export): each with its line number (0 in a legacy snapshot) and its canonical id token and
/// record text, or what is wrong with that line. A legacy snapshot is one JSON value, read whole.
pub struct RecordLines {
    shown: String,
    state: StreamState,
    line_no: usize,
    pub version: f64,
    pub legacy: bool,
    /// Bytes of the file read so far (for progress).
    pub bytes_read: u64,
}

impl RecordLines {
    pub fn open(path: &Path, shown: &str) -> Result<Self> {
        let mut reader = BufReader::with_capacity(1 << 16, reopen(path, shown)?);
        let (form, first_len) = read_form(&mut reader, shown)?;
        let lines = |version, legacy, state, line_no, bytes_read| RecordLines {
            shown: shown.to_string(),
            state,
            line_no,
            version,
            legacy,
            bytes_read,
        };
        Ok(match form {
            Form::Jsonl {
                version,
                first_is_record,
            } => {
                if first_is_record {
                    reader = BufReader::with_capacity(1 << 16, reopen(path, shown)?);
                    lines(version, false, StreamState::Lines(Lines::new(reader)), 0, 0)
                } else {
                    let state = StreamState::Lines(Lines::new(reader));
                    lines(version, false, state, 1, first_len as u64)
                }
            }
            Form::Legacy => {
                let text = fsutil::read_text(path)?;
                let (version, recs) = legacy_records(&text, shown)?;
                let state = StreamState::Buffered(recs.into_iter());
                lines(version, true, state, 0, text.len() as u64)
            }
        })
    }

    /// The next record, or `None` at the end of the file.
    #[allow(clippy::type_complexity)]
    pub fn next_record(
        &mut self,
    ) -> Result<Option<(usize, std::result::Result<(String, String), String>)>> {
        match &mut self.state {
            StreamState::Done => Ok(None),
            StreamState::Buffered(it) => Ok(it.next().map(|pair| (0, Ok(pair)))),
            StreamState::Lines(lines) => loop {
                let Some(line) = lines
                    .next_line()
                    .map_err(|e| Error::io("read", &self.shown, e))?
                else {
                    self.state = StreamState::Done;
                    return Ok(None);
                };
                self.bytes_read += line.len() as u64;
                self.line_no += 1;
                let text = lines::text(line);
                let line = text.trim();
                if !line.is_empty() {
                    return Ok(Some((self.line_no, record_line::parse_canonical(line))));
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{test_dir, TestDir};

    fn tmpdir(name: &str) -> TestDir {
        let d = test_dir(&format!("snap-{name}"));
        std::fs::create_dir_all(d.path().join("snapshots")).unwrap();
        d
    }

    #[test]
    fn round_trips_jsonl() {
        let tmp = tmpdir("rt");
        let dir = tmp.path();
        let mut r = Records::default();
        r.set("\"a\"", "{\"x\":1e+21,\"s\":\"\u{2028}\"}").unwrap();
        r.set("\"b\\ud800\"", "{}").unwrap();
        let (rel, written) = write(dir, &r, 3.0, true).unwrap();
        assert_eq!(written.pairs().unwrap(), r.pairs().unwrap());
        assert_eq!(written.held_in_memory(), 0);
        let text = std::fs::read_to_string(dir.join(&rel)).unwrap();
        let lines: Vec<&str> = text.split('\n').collect();
        assert!(lines[0].starts_with("{\"version\":3,\"timestamp\":\""));
        assert_eq!(
            lines[1],
            "{\"id\":\"a\",\"data\":{\"x\":1e+21,\"s\":\"\u{2028}\"}}"
        );
        assert_eq!(lines[2], r#"{"id":"b\ud800","data":{}}"#);
        assert_eq!(lines[3], "");
        let (loaded, v) = load(dir, "d", &rel).unwrap();
        assert_eq!(v, 3.0);
        assert_eq!(loaded.pairs().unwrap(), r.pairs().unwrap());
        assert_eq!(
            loaded.held_in_memory(),
            0,
            "canonical lines stay in the file"
        );
        let mut s = SnapshotStream::open(dir, "d", &rel).unwrap();
        assert_eq!(
            s.next_batch(1).unwrap().unwrap().pairs_text(),
            "[\"a\",{\"x\":1e+21,\"s\":\"\u{2028}\"}]"
        );
        assert_eq!(
            s.next_batch(5).unwrap().unwrap().pairs_text(),
            r#"["b\ud800",{}]"#
        );
        assert_eq!(s.next_batch(5).unwrap(), None);
    }

    #[test]
    fn streams_a_valid_lines_own_texts_and_checks_the_others() {
        let tmp = tmpdir("own-texts");
        let dir = tmp.path();
        let text = concat!(
            "{\"version\":1,\"timestamp\":\"t\"}\n",
            "{\"id\":\"a\",\"data\":{\"x\":1.0,\"y\":-0,\"s\":\"\\u0041\"}}\n",
            "{\"data\":[ 1 ],\"id\":\"b\"}\n",
            "{\"id\":\"c\",\"data\":{\"x\":1,}}\n",
        );
        std::fs::write(dir.join("snapshots/s.jsonl"), text).unwrap();
        let mut s = SnapshotStream::open(dir, "d", "snapshots/s.jsonl").unwrap();
        assert_eq!(
            s.next_batch(10).unwrap().unwrap().pairs_text(),
            r#"["a",{"x":1.0,"y":-0,"s":"\u0041"},"b",[1]]"#
        );
        let e = s.next_batch(10).unwrap_err().to_string();
        assert!(
            e.starts_with("Corrupt snapshot d/snapshots/s.jsonl: line 4: "),
            "{e}"
        );
    }

    #[test]
    fn reads_legacy_forms() {
        let tmp = tmpdir("legacy");
        let dir = tmp.path();
        let one = r#"{"version":2,"timestamp":"t","records":{"a":{"n":1},"b":{"m":[1, 2]}}}"#;
        let pretty = "{\n  \"version\": 2,\n  \"timestamp\": \"t\",\n  \"records\": {\n    \"a\": {\n      \"n\": 1\n    },\n    \"b\": {\"m\": [1, 2]}\n  }\n}";
        for (name, text) in [
            ("snapshots/one.json", one),
            ("snapshots/pretty.json", pretty),
        ] {
            std::fs::write(dir.join(name), text).unwrap();
            let (r, v) = load(dir, "d", name).unwrap();
            assert_eq!(v, 2.0);
            assert_eq!(
                r.pairs().unwrap(),
                vec![
                    ("\"a\"".to_string(), "{\"n\":1}".to_string()),
                    ("\"b\"".to_string(), "{\"m\":[1,2]}".to_string())
                ]
            );
            let mut s = SnapshotStream::open(dir, "d", name).unwrap();
            assert_eq!(
                s.next_batch(10).unwrap().unwrap().pairs_text(),
                r#"["a",{"n":1},"b",{"m":[1,2]}]"#
            );
        }
        std::fs::write(
            dir.join("snapshots/bad.json"),
            r#"{"version":0,"timestamp":"t","records":{}}"#,
        )
        .unwrap();
        let e = load(dir, "d", "snapshots/bad.json").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Invalid snapshot: version must be a positive finite integer (d/snapshots/bad.json)"
        );
    }

    #[test]
    fn legacy_records_come_in_javascript_property_order() {
        // Found by tests/fuzz_parsers.rs: a legacy snapshot not written by JSON.stringify (ids
        // in text order) loaded in text order; the reference loads `Object.entries` order.
        let tmp = tmpdir("legacy-order");
        let dir = tmp.path();
        let text = r#"{"version":1,"timestamp":"t","records":{"x":{},"10":{},"b":{},"2":{}}}"#;
        std::fs::write(dir.join("snapshots/s.json"), text).unwrap();
        let (r, _) = load(dir, "d", "snapshots/s.json").unwrap();
        let ids: Vec<String> = r.pairs().unwrap().into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, ["\"2\"", "\"10\"", "\"x\"", "\"b\""]);
        let mut s = SnapshotStream::open(dir, "d", "snapshots/s.json").unwrap();
        assert_eq!(
            s.next_batch(10).unwrap().unwrap().pairs_text(),
            r#"["2",{},"10",{},"x",{},"b",{}]"#
        );
    }

    #[test]
    fn a_large_snapshot_loads_in_two_parts_as_in_one() {
        let tmp = tmpdir("parallel");
        let dir = tmp.path();
        let n = 120_000;
        let pad = ".".repeat(60);
        let mut text = String::from("{\"version\":2,\"timestamp\":\"t\"}\n");
        for i in 0..n {
            text.push_str(&format!(
                "{{\"id\":\"r{i}\",\"data\":{{\"i\":{i},\"p\":\"{pad}\"}}}}\n"
            ));
            if i == 10 {
                text.push('\n');
            }
        }
        assert!(text.len() as u64 > PARALLEL_LOAD_BYTES);
        // In the second part: a line of another form (held), and a record of the first part
        // again (it keeps its place, with the later text).
        text.push_str("{ \"data\" : {\"late\":1.0}, \"id\":\"late\" }\n");
        text.push_str("{\"id\":\"r5\",\"data\":{\"again\":true}}\n");
        std::fs::write(dir.join("snapshots/s.jsonl"), &text).unwrap();
        let (loaded, v) = load(dir, "d", "snapshots/s.jsonl").unwrap();
        assert_eq!(v, 2.0);
        let pairs = loaded.pairs().unwrap();
        assert_eq!(pairs.len(), n + 1);
        assert_eq!(
            pairs[5],
            ("\"r5\"".to_string(), "{\"again\":true}".to_string())
        );
        assert_eq!(pairs[n - 1].0, format!("\"r{}\"", n - 1));
        assert_eq!(
            pairs[n],
            ("\"late\"".to_string(), "{\"late\":1}".to_string())
        );
        assert_eq!(loaded.held_in_memory(), 1);
        // A bad line in the second part: its number counts every line before it.
        text.push_str("{garbage\n");
        std::fs::write(dir.join("snapshots/s.jsonl"), &text).unwrap();
        let e = load(dir, "d", "snapshots/s.jsonl").unwrap_err().to_string();
        let line = n + 1 + 1 + 2 + 1;
        assert!(
            e.starts_with(&format!(
                "Corrupt snapshot d/snapshots/s.jsonl: line {line}:"
            )),
            "{e}"
        );
        // And in the first part: that one is reported.
        let bad = text.replacen("{\"id\":\"r3\",", "{\"id\":3,", 1);
        std::fs::write(dir.join("snapshots/s.jsonl"), bad).unwrap();
        let e = load(dir, "d", "snapshots/s.jsonl").unwrap_err().to_string();
        assert!(
            e.starts_with("Corrupt snapshot d/snapshots/s.jsonl: line 5:"),
            "{e}"
        );
    }

    #[test]
    fn corrupt_line_names_the_file() {
        let tmp = tmpdir("corrupt");
        let dir = tmp.path();
        std::fs::write(
            dir.join("snapshots/s.jsonl"),
            "{\"version\":1,\"timestamp\":\"t\"}\n{\"id\":\"a\",\"data\":{}}\n{garbage\n",
        )
        .unwrap();
        let e = load(dir, "d", "snapshots/s.jsonl").unwrap_err().to_string();
        assert!(
            e.starts_with("Corrupt snapshot d/snapshots/s.jsonl: line 3"),
            "{e}"
        );
    }
}
