//! The storage engine: pure Rust, no napi types, tested with `cargo test`.

pub mod archive;
pub mod backend;
pub mod batch;
#[cfg(feature = "testing")]
pub mod checks;
pub mod clock;
pub mod delta;
pub mod error;
pub mod export;
pub mod fs_backend;
pub mod fsutil;
pub mod handover;
pub mod inspect;
pub mod json;
mod lines;
pub mod lock;
pub mod manifest;
pub mod merge;
pub mod op;
pub mod oplog;
pub mod paths;
pub mod record_line;
pub mod records;
pub mod snapshot;
pub mod store;
pub mod time;
pub mod verify;
pub mod wal;

#[cfg(test)]
mod testing;
