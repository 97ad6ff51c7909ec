//! The checks the cargo-fuzz targets run: the properties of `crates/opslog-engine/tests/fuzz_parsers.rs` (nothing
//! panics, errors carry a message, what parses is canonical and re-encodes to the same, the
//! streaming and whole-file readers agree), on libFuzzer's coverage-guided inputs.
//! The op-file and snapshot properties are the engine's own `checks` (its `testing` feature), which
//! the proptest fuzzers run too: one definition for both. They link the engine crate itself (`crates/opslog-engine`); `tests/seeds.rs` runs every check
//! over the seed corpus on stable Rust, so the targets are built and exercised by `cargo test`.

use opslog_engine as engine;

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::OnceLock;

use engine::json::{self, Kind};
use engine::manifest::Manifest;
use engine::op::{Op, OpKind};
use engine::{archive, checks};
use checks::canon;

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
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
            checks::message("fuzz", data, &e.0);
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
        Err(e) => checks::message("fuzz", data, &e),
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

/// See `checks::op_file`; at a base other than 0, as an op file read from past its start.
pub fn check_op_file(data: &[u8]) {
    checks::op_file(data, 7, Some(&scratch().join("ops.jsonl")));
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

/// See `checks::snapshot`; the batch size varies with the input.
pub fn check_snapshot(data: &[u8]) {
    let _ = checks::snapshot(&scratch(), data, 1 + data.len() % 3);
}

pub fn check_manifest(data: &[u8]) {
    match Manifest::parse(&text(data)) {
        Err(e) => checks::message("fuzz", data, &e),
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
            checks::message("fuzz", data, &e);
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
