//! The properties the parsers must have, stated once for both fuzzers that check them: the
//! proptest fuzzers (`tests/fuzz_parsers.rs`, on generated inputs) and the cargo-fuzz targets
//! (`fuzz/`, on libFuzzer's coverage-guided ones). Each panics where a property fails. Built
//! with the `testing` feature only, which no release build enables.

use std::path::Path;

use crate::json;
use crate::op::Op;
use crate::records::Records;
use crate::{snapshot, wal};

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The canonical text of valid JSON.
pub fn canon(text: &str) -> String {
    json::canonicalize(text)
        .unwrap_or_else(|e| panic!("valid JSON {text:?} rejected: {e}"))
        .into_owned()
}

/// Every error a parser returns says something: the message is what the user sees.
pub fn message(what: &str, input: &[u8], msg: &str) {
    assert!(
        !msg.trim().is_empty(),
        "{what}: empty error message for {:?}",
        lossy(input)
    );
}

/// Invariants of `parse_lines` that hold for any bytes; with `file`, also checks that the
/// streaming `OpReader` and `wal::read` find the same ops in the file.
pub fn op_file(bytes: &[u8], base: u64, file: Option<&Path>) -> wal::ReadResult {
    let r = wal::parse_lines(bytes, base);
    let len = bytes.len() as u64;
    let newlines = bytes.iter().filter(|&&b| b == b'\n').count();
    let after_last_newline = bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i as u64 + 1);
    if r.missing_newline {
        assert_eq!(r.complete_len, base + len);
        assert!(!bytes.ends_with(b"\n") && !r.torn);
    } else {
        assert_eq!(r.complete_len, base + after_last_newline);
    }
    let tail = lossy(&bytes[after_last_newline as usize..]);
    if r.torn {
        assert!(!tail.trim().is_empty() && Op::parse(tail.trim()).is_err());
    }
    let complete_lines = bytes
        .split(|&b| b == b'\n')
        .take(newlines)
        .filter(|line| !lossy(line).trim().is_empty())
        .count();
    let mut complete_ops = 0;
    let mut last_pos = None;
    for logged in &r.ops {
        assert!(logged.pos >= base && logged.pos - base <= len);
        assert!(
            last_pos.is_none_or(|p| p < logged.pos),
            "positions not increasing"
        );
        last_pos = Some(logged.pos);
        let start = (logged.pos - base) as usize;
        assert!(
            start == 0 || bytes[start - 1] == b'\n',
            "op not at a line start"
        );
        let end = bytes[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |i| start + i);
        if end < bytes.len() {
            complete_ops += 1;
        }
        assert_eq!(&*logged.line, lossy(&bytes[start..end]).trim());
        assert_eq!(Op::parse(&logged.line).as_ref(), Ok(&logged.op));
    }
    assert_eq!(
        complete_lines,
        complete_ops + r.skipped,
        "lines unaccounted for"
    );
    if let Some(path) = file {
        std::fs::write(path, bytes).unwrap();
        let streamed: Vec<(u64, String)> = wal::OpReader::open(path)
            .unwrap()
            .map(|l| {
                let l = l.unwrap();
                (l.pos, l.line.to_string())
            })
            .collect();
        let whole: Vec<(u64, String)> = r
            .ops
            .iter()
            .map(|l| (l.pos - base, l.line.to_string()))
            .collect();
        assert_eq!(streamed, whole, "OpReader and parse_lines disagree");
        let read = wal::read(path).unwrap();
        assert_eq!(read.ops.len(), r.ops.len());
        assert_eq!(read.complete_len + base, r.complete_len);
    }
    r
}

/// A snapshot's records and version as loaded, or the error's message.
pub type Loaded = Result<(Vec<(String, String)>, f64), String>;

/// Loads `bytes` as the snapshot `snapshots/snap-1.jsonl` of `dir` both ways (whole, and streamed
/// in batches of `batch`) and checks they agree and that what loads is canonical; returns the
/// loaded records and version, or the error message.
pub fn snapshot(dir: &Path, bytes: &[u8], batch: usize) -> Loaded {
    const REL: &str = "snapshots/snap-1.jsonl";
    std::fs::write(dir.join(REL), bytes).unwrap();
    let text = lossy(bytes);
    if let Err(e) = snapshot::validate(&text) {
        message("snapshot::validate", bytes, &e);
    }
    let whole = snapshot::load(dir, "d", REL)
        .and_then(|(records, version)| Ok((records.pairs()?, version)))
        .map_err(|e| e.to_string());
    let streamed = (|| -> Loaded {
        let mut s = snapshot::SnapshotStream::open(dir, "d", REL).map_err(|e| e.to_string())?;
        let mut records = Records::default();
        while let Some(batch_read) = s.next_batch(batch).map_err(|e| e.to_string())? {
            let text = batch_read.pairs_text();
            let items = json::array_elements(&text)
                .unwrap_or_else(|e| panic!("batch {text:?} is not an array: {e}"));
            assert!(!items.is_empty() && items.len().is_multiple_of(2) && items.len() <= 2 * batch);
            // The stream hands over a line's own texts when they are valid JSON: the same
            // values, not always in canonical form.
            for pair in items.chunks(2) {
                records.set(&canon(pair[0]), &canon(pair[1])).unwrap();
            }
        }
        let list = records.pairs().map_err(|e| e.to_string())?;
        Ok((list, s.version))
    })();
    match (&whole, &streamed) {
        (Ok((records, version)), Ok((streamed_records, streamed_version))) => {
            assert_eq!(
                records, streamed_records,
                "stream and load differ on {text:?}"
            );
            assert_eq!(version.to_bits(), streamed_version.to_bits());
            assert!(version.is_finite());
            for (id, data) in records {
                assert_eq!(json::kind_of(id), json::Kind::String);
                assert_eq!(&canon(id), id, "id not canonical");
                assert_eq!(&canon(data), data, "record not canonical");
            }
        }
        (Err(a), Err(b)) => {
            message("snapshot::load", bytes, a);
            assert_eq!(a, b, "stream and load fail differently on {text:?}");
        }
        _ => panic!("stream and load disagree on {text:?}: {whole:?} vs {streamed:?}"),
    }
    whole
}
