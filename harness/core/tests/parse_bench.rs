//! Parse time against input size (a benchmark, not a timed test: it asserts nothing about time).
//!
//! `cargo test -p shmemfuzz-core --release --test parse_bench -- --ignored --nocapture`
//! prints one line per size: the time to parse a program whose third line is N MB of short
//! tokens (`mbind … strict move strict move …`). Linear parsing keeps MB/s about constant.

use std::time::Instant;

fn long_line_program(bytes: usize) -> String {
    let mut s = String::with_capacity(bytes + 64);
    s.push_str("memfd m0 size=1M\nmmap v0 m0 off=0 len=1M shared\nmbind v0 off=0 len=4K node=0");
    while s.len() < bytes {
        s.push_str(" strict move");
    }
    s.push('\n');
    s
}

#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture to print parse times"]
fn parse_time_against_line_length() {
    for mb in [1usize, 10, 50] {
        let text = long_line_program(mb << 20);
        let start = Instant::now();
        let program = shmemfuzz_core::program::text::parse(&text).expect("benchmark input parses");
        let took = start.elapsed();
        assert_eq!(program.ops.len(), 3);
        println!(
            "parse {mb:>2} MB line: {:>8.3} s ({:.1} MB/s)",
            took.as_secs_f64(),
            mb as f64 / took.as_secs_f64()
        );
    }
}
