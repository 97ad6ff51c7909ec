#![cfg_attr(test, allow(dead_code))]
//! The napi layer: thin wrappers that move JSON text across the boundary and run slow work on
//! libuv's worker threads. No store logic lives here.

mod cli;
mod cursor;
mod fs_backend;
mod guard;
mod helpers;
mod job;
mod js_backend;
mod payload;
mod store;
mod text;
