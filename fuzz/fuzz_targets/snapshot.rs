#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| opslog_native_fuzz::check_snapshot(data));
