//! Decoded programs print and parse back to themselves; arbitrary text never panics the parser.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use shmemfuzz_core::program::{parse, text::print, Program};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(p) = parse(text) {
            assert_eq!(
                parse(&print(&p)).as_ref(),
                Ok(&p),
                "reparse of canonical form"
            );
        }
    }
    if let Ok(p) = Program::arbitrary(&mut Unstructured::new(data)) {
        let text = print(&p);
        assert_eq!(parse(&text).as_ref(), Ok(&p), "{text}");
    }
});
