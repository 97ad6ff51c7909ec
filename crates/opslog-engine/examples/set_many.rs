//! Times the engine's `group`-mode write path alone: `set_many` over sets built beforehand, as
//! the facade hands them over (50 a call), on the raw path (no checkpoint). For profiling:
//!
//!   cargo run --release -p opslog-engine --example set_many [sets] [rounds]
use std::sync::Arc;
use std::time::Instant;

use opslog_engine::fs_backend::FsBackend;
use opslog_engine::handover::apply_set_many;
use opslog_engine::store::{Options, Store, WriteMode};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(100_000, |a| a.parse().expect("sets"));
    let rounds: usize = args.next().map_or(5, |a| a.parse().expect("rounds"));
    let ms = 1_765_000_000_000i64;
    let texts: Vec<String> = (0..n)
        .collect::<Vec<_>>()
        .chunks(50)
        .map(|group| {
            group
                .iter()
                .map(|i| {
                    let status = ["active", "done", "blocked"][i % 3];
                    let note = format!("{:.<40}", format!("note {i} "));
                    format!(
                        "\"id-{i:07}\"\n{{\"name\":\"name-{i}\",\"status\":\"{status}\",\"value\":{i},\"tags\":[\"a\",\"b\"],\"note\":\"{note}\"}}\n{ms}"
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    for round in 0..rounds {
        let dir =
            std::env::temp_dir().join(format!("opslog-set-many-{}-{round}", std::process::id()));
        let opts = Options {
            checkpoint_threshold: 1e9,
            checkpoint_on_close: false,
            write_mode: WriteMode::Group,
            ..Options::default()
        };
        let (mut store, _) = Store::open(
            Arc::new(FsBackend::new(dir.to_str().expect("utf-8 dir"))),
            opts,
        )
        .expect("open");
        let t0 = Instant::now();
        for text in &texts {
            apply_set_many(&mut store, text, false).expect("set_many");
        }
        store.flush().expect("flush");
        let us = t0.elapsed().as_secs_f64() * 1e6 / n as f64;
        println!("round {round}: {us:.3} µs a set");
        // Not dropped: freeing the records would be in the profile, outside the timed part.
        std::mem::forget(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
