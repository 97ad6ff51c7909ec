//! opslog-native: the Node.js binding of an embedded event-sourced document store. The store
//! itself is the `opslog-engine` crate (crates/opslog-engine, plain Rust); `binding` exposes it to
//! Node.js through napi.

mod binding;
