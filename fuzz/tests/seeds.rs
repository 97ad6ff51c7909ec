//! Every fuzz target's check over its seed corpus (fuzz/seeds/<target>/), on stable Rust: the
//! checks libFuzzer runs stay compiled against the engine crate and pass on known inputs.

use std::fs;
use std::path::Path;

fn run(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds").join(target);
    let mut seeds = 0;
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("seed entry").path();
        let data = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        check(&data);
        // Every prefix too: torn inputs are what the readers meet after a crash.
        for cut in 0..data.len() {
            check(&data[..cut]);
        }
        seeds += 1;
    }
    assert!(seeds > 0, "no seeds in {}", dir.display());
}

#[test]
fn json_seeds() {
    run("json", opslog_native_fuzz::check_json);
}

#[test]
fn op_line_seeds() {
    run("op_line", opslog_native_fuzz::check_op_line);
}

#[test]
fn op_file_seeds() {
    run("op_file", opslog_native_fuzz::check_op_file);
}

#[test]
fn snapshot_seeds() {
    run("snapshot", opslog_native_fuzz::check_snapshot);
}

#[test]
fn manifest_seeds() {
    run("manifest", opslog_native_fuzz::check_manifest);
}

#[test]
fn archive_seeds() {
    run("archive", opslog_native_fuzz::check_archive);
}
