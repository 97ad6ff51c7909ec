//! The napi layer: thin wrappers that move JSON text across the boundary and run slow work on
//! libuv's worker threads. No store logic lives here.

mod cursor;
mod guard;
mod job;
mod store;
