//! The checks the cargo-fuzz targets run: the properties of `crates/opslog-engine/tests/fuzz_parsers.rs` (nothing
//! panics, errors carry a message, what parses is canonical and re-encodes to the same, the
//! streaming and whole-file readers agree), on libFuzzer's coverage-guided inputs.
//! They link the engine crate itself (`crates/opslog-engine`); `tests/seeds.rs` runs every check
//! over the seed corpus on stable Rust, so the targets are built and exercised by `cargo test`.

use opslog_engine as engine;

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::OnceLock;

use engine::json::{self, Kind};
use engine::manifest::Manifest;
use engine::op::{Op, OpKind};
use engine::records::Records;
use engine::{archive, snapshot, wal};

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

fn message(msg: &str) {
    assert!(!msg.trim().is_empty(), "empty error message");
}

fn canon(text: &str) -> String {
    json::canonicalize(text)
        .unwrap_or_else(|e| panic!("canonical text {text:?} rejected: {e}"))
        .into_owned()
}

pub fn check_json(data: &[u8]) {
    let text = text(data);
    let valid = json::validate(&text);
    let _ = (
        json::object_members_dedup(&text),
        json::array_elements(&text),
    );
    let _ = json::decode_string(&text);
    match json::canonicalize(&text) {
        Err(e) => {
            message(&e.0);
            assert!(valid.is_err() || e.0.contains("nesting too deep"), "{e}");
        }
        Ok(c) => {
            assert!(valid.is_ok());
            let again = json::canonicalize(&c).expect("canonical text re-parses");
            assert!(
                matches!(again, Cow::Borrowed(_)),
                "{c:?} not seen as canonical"
            );
            match json::canonicalize(&format!(" {text}")) {
                Ok(rewritten) => assert_eq!(rewritten, c, "fast and rewrite paths differ"),
                Err(e) => assert!(e.0.contains("nesting too deep"), "{e}"),
            }
            let _ = json::js_string(&c);
        }
    }
}

pub fn check_op_line(data: &[u8]) {
    let text = text(data);
    match Op::parse(&text) {
        Err(e) => message(&e),
        Ok(op) => {
            assert_eq!(json::kind_of(&op.id), Kind::String);
            assert_eq!(canon(&op.id), op.id);
            if let Some(p) = &op.prev {
                assert_eq!(&canon(p), p);
            }
            if let Some(d) = &op.data {
                assert_eq!(&canon(d), d);
            }
            assert!(op.kind == OpKind::Delete || op.data.is_some());
            let plain_ts = json::quote(&op.ts) == format!("\"{}\"", op.ts);
            if plain_ts && op.data.as_deref() != Some("null") {
                let line = op.encode();
                assert_eq!(Op::parse(&line).as_ref(), Ok(&op), "{line:?}");
            }
        }
    }
}

pub fn check_op_file(data: &[u8]) {
    let r = wal::parse_lines(data, 7);
    let after_newline = data
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i as u64 + 1);
    if r.missing_newline {
        assert_eq!(r.complete_len, 7 + data.len() as u64);
    } else {
        assert_eq!(r.complete_len, 7 + after_newline);
    }
    for logged in &r.ops {
        let start = (logged.pos - 7) as usize;
        assert!(start == 0 || data[start - 1] == b'\n');
        assert_eq!(Op::parse(&logged.line).as_ref(), Ok(&logged.op));
    }
    let path = scratch().join("ops.jsonl");
    std::fs::write(&path, data).unwrap();
    let streamed: Vec<(u64, String)> = wal::OpReader::open(&path)
        .unwrap()
        .map(|l| l.map(|l| (l.pos + 7, l.line.to_string())).unwrap())
        .collect();
    let whole: Vec<(u64, String)> = r.ops.iter().map(|l| (l.pos, l.line.to_string())).collect();
    assert_eq!(streamed, whole, "OpReader and parse_lines disagree");
}

fn scratch() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = root.join(format!("opslog-cargo-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("snapshots")).unwrap();
        dir
    })
    .clone()
}

type Loaded = Result<(Vec<(String, String)>, u64), String>;

pub fn check_snapshot(data: &[u8]) {
    let dir = scratch();
    let rel = "snapshots/snap-1.jsonl";
    std::fs::write(dir.join(rel), data).unwrap();
    if let Err(e) = snapshot::validate(&text(data)) {
        message(&e);
    }
    let whole: Loaded = snapshot::load(&dir, "d", rel)
        .and_then(|(r, v)| Ok((r.pairs()?, v.to_bits())))
        .map_err(|e| e.to_string());
    let batch = 1 + data.len() % 3;
    let streamed = (|| -> Loaded {
        let mut s = snapshot::SnapshotStream::open(&dir, "d", rel).map_err(|e| e.to_string())?;
        let mut records = Records::default();
        while let Some(read) = s.next_batch(batch).map_err(|e| e.to_string())? {
            let text = read.pairs_text();
            let items = json::array_elements(&text).expect("a batch is an array");
            // The stream hands over a line's own texts when they are valid JSON: the same values,
            // not always in canonical form.
            for pair in items.chunks(2) {
                records.set(&canon(pair[0]), &canon(pair[1])).unwrap();
            }
        }
        Ok((records.pairs().map_err(|e| e.to_string())?, s.version.to_bits()))
    })();
    assert_eq!(whole, streamed, "load and stream disagree");
    match whole {
        Ok((records, _)) => {
            for (id, data) in records {
                assert_eq!(canon(&id), id);
                assert_eq!(canon(&data), data);
            }
        }
        Err(e) => message(&e),
    }
}

pub fn check_manifest(data: &[u8]) {
    match Manifest::parse(&text(data)) {
        Err(e) => message(&e),
        Ok(m) => {
            let encoded = m.encode();
            assert_eq!(Manifest::parse(&encoded).as_ref(), Ok(&m), "{encoded:?}");
            let value: serde_json::Value = serde_json::from_str(&encoded).unwrap();
            assert_eq!(serde_json::to_string_pretty(&value).unwrap(), encoded);
        }
    }
}

pub fn check_archive(data: &[u8]) {
    let text = text(data);
    let valid = archive::validate(&text);
    match archive::parse(&text) {
        Err(e) => {
            let e = e.to_string();
            message(&e);
            assert!(valid.is_err() || e.contains("nesting too deep"), "{e}");
        }
        Ok(records) => {
            assert!(valid.is_ok());
            for (id, data) in records {
                assert_eq!(canon(&id), id);
                assert_eq!(canon(&data), data);
                let mut pretty = String::new();
                archive::pretty(&data, 2, &mut pretty);
                if let Ok(back) = json::canonicalize(&pretty) {
                    assert_eq!(back, data);
                }
            }
        }
    }
}
