//! Every program in `examples/` and its subdirectories (`examples/routes/`) parses and is already in canonical form (prints back byte
//! for byte), so the examples double as round-trip fixtures.

use shmemfuzz_core::program::{parse, text::print};

#[test]
fn examples_parse_and_are_canonical() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut seen = 0;
    let mut dirs = vec![dir];
    let mut progs = Vec::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("examples/ exists") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "prog") {
                progs.push(path);
            }
        }
    }
    assert!(
        progs
            .iter()
            .any(|p| p.parent().is_some_and(|d| d.ends_with("routes"))),
        "examples/routes/ was not walked"
    );
    for path in progs {
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
