//! The console parser never panics and does not depend on how bytes are chunked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shmemfuzz_core::console::{parse_bytes, ConsoleScanner};

fuzz_target!(|data: &[u8]| {
    let whole = parse_bytes(data);
    let mut s = ConsoleScanner::new();
    let mut chunked = Vec::new();
    for chunk in data.chunks(7) {
        chunked.extend(s.feed(chunk));
    }
    chunked.extend(s.finish());
    assert_eq!(whole.len(), chunked.len());
});
