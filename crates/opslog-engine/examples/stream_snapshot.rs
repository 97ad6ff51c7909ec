//! Times the worker's share of `streamSnapshot`: the batches of a store's current snapshot, as
//! the stream's worker builds them. For profiling:
//!
//!   cargo run --release -p opslog-engine --example stream_snapshot <store dir> [rounds]
use std::path::Path;
use std::time::Instant;

use opslog_engine::snapshot::SnapshotStream;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("a store directory");
    let rounds: usize = args.next().map_or(5, |a| a.parse().expect("rounds"));
    let manifest =
        std::fs::read_to_string(Path::new(&dir).join("manifest.json")).expect("a manifest");
    let manifest: serde_json::Value = serde_json::from_str(&manifest).expect("a JSON manifest");
    let rel = manifest["currentSnapshot"]
        .as_str()
        .expect("a snapshot")
        .to_string();
    for _ in 0..rounds {
        let start = Instant::now();
        let mut stream = SnapshotStream::open(Path::new(&dir), &dir, &rel).expect("the snapshot");
        let (mut batches, mut bytes) = (0, 0);
        while let Some(batch) = stream.next_batch(4096).expect("a batch") {
            batches += 1;
            bytes += batch.items.len() + batch.strings.len();
        }
        let ms = start.elapsed().as_secs_f64() * 1e3;
        println!(
            "{batches} batches, {:.1} MB, {ms:.0} ms",
            bytes as f64 / 1e6
        );
    }
}
