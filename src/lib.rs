//! opslog-native: an embedded event-sourced document store. `engine` is the store, in plain
//! Rust; `binding` exposes it to Node.js through napi.

mod binding;
pub mod engine;
