//! Every program in `examples/` parses and is already in canonical form (prints back byte
//! for byte), so the examples double as round-trip fixtures.

use shmemfuzz_core::program::{parse, text::print};

#[test]
fn examples_parse_and_are_canonical() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("examples/ exists") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "prog") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        let p = parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            print(&p),
            text,
            "{} is not in canonical form",
            path.display()
        );
        seen += 1;
    }
    assert!(seen >= 5, "found only {seen} examples");
}
