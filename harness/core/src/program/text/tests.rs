use super::*;
use crate::program::Program;
use arbitrary::{Arbitrary, Unstructured};

const EVERY_OP: &str = "\
# every operation once
memfd m0 size=1M
tmpfs t0 size=64K

ftruncate m0 size=2M
write m0 off=0 len=1M seed=7
write t0 off=100 len=5000 seed=4294967295
check m0 off=0 len=2M
punch m0 off=4K len=8K
mmap v0 m0 off=0 len=1M shared
mmap p0 t0 off=0 len=64K private
touch v0 off=0 len=1M write seed=3
touch p0 off=10 len=20 read
madvise v0 off=0 len=1M pageout
madvise v0 off=0 len=4K cold
madvise v0 off=0 len=4K willneed
madvise p0 off=0 len=4K dontneed
madvise v0 off=8K len=4K remove
reclaim 64M
swapon swap1 prio=5
swapoff swap0
swapon swap0
munmap v0
unlink t0
close t0
close m0
corrupt_free_line_below_is_a_comment_not_an_op
";

fn canonical() -> String {
    EVERY_OP.replace(
        "corrupt_free_line_below_is_a_comment_not_an_op\n",
        "# trailing comment\n",
    )
}

#[test]
fn canonical_text_round_trips_byte_for_byte() {
    let text = canonical();
    let p = parse(&text).expect("parses");
    assert_eq!(p.ops.len(), 24);
    assert_eq!(print(&p), text);
    assert_eq!(parse(&print(&p)).expect("reparses"), p);
}

#[test]
fn sizes_parse_in_every_spelling_and_print_canonically() {
    for (s, v) in [
        ("4096", 4096),
        ("0x1000", 4096),
        ("4K", 4096),
        ("4k", 4096),
        ("2M", 2 << 20),
        ("1G", 1 << 30),
        ("0", 0),
    ] {
        assert_eq!(parse_size(s), Some(v), "{s}");
    }
    for bad in [
        "",
        "K",
        "0x",
        "1.5M",
        "-1",
        "99999999999999999999",
        "17179869184G",
    ] {
        assert_eq!(parse_size(bad), None, "{bad}");
    }
    assert_eq!(Size(4096).to_string(), "4K");
    assert_eq!(Size(4097).to_string(), "4097");
    assert_eq!(Size(3 << 20).to_string(), "3M");
    let p = parse("memfd a size=0x100000\n").expect("parses");
    assert_eq!(print(&p), "memfd a size=1M\n");
}

fn error_at(text: &str) -> (usize, usize, String) {
    let e = parse(text).expect_err("must not parse");
    (e.line, e.col, e.message)
}

#[test]
fn errors_name_line_and_column() {
    let cases: &[(&str, usize, usize, &str)] = &[
        (
            "memfd m0 size=1M\nfrobnicate m0\n",
            2,
            1,
            "unknown operation",
        ),
        ("memfd m0 size=1Q\n", 1, 15, "not a size"),
        ("memfd m0\n", 1, 9, "needs `size=`"),
        (
            "memfd m0 size=4K\nwrite m1 off=0 len=1 seed=1\n",
            2,
            7,
            "no object named `m1`",
        ),
        (
            "memfd m0 size=4K\nclose m0\nwrite m0 off=0 len=1 seed=1\n",
            3,
            7,
            "closed",
        ),
        (
            "memfd m0 size=4K\nmmap v0 m0 off=1 len=4K shared\n",
            2,
            16,
            "page size",
        ),
        (
            "memfd m0 size=4K\nmmap v0 m0 off=0 len=4K sideways\n",
            2,
            25,
            "mapping kind",
        ),
        (
            "memfd m0 size=4K\nmmap v0 m0 off=0 len=4K shared\ntouch v0 off=0 len=8K read\n",
            3,
            20,
            "mapping's length",
        ),
        ("memfd m0 size=4K\nunlink m0\n", 2, 8, "memfd"),
        (
            "memfd m0 size=4K\nmemfd m0 size=4K\n",
            2,
            7,
            "already declared",
        ),
        ("swapon swap9\n", 1, 8, "no swap device swap9"),
        ("swapon disk0\n", 1, 8, "not a swap device"),
        ("memfd m0 size=4K extra\n", 1, 18, "unexpected `extra`"),
        ("memfd m0 size=4K size=8K\n", 1, 18, "given twice"),
        ("memfd M0 size=4K\n", 1, 7, "not a name"),
        ("memfd swap0 size=4K\n", 1, 7, "reserved"),
        ("memfd m0 size=1G\n", 1, 15, "largest object"),
        ("sysrq b\n", 1, 7, "not one of"),
        (
            "  # indented comment\n\tmemfd m0 size=4K bogus\n",
            2,
            19,
            "unexpected `bogus`",
        ),
    ];
    let mut wrong = Vec::new();
    for (text, line, col, msg) in cases {
        let (l, c, m) = error_at(text);
        if (l, c) != (*line, *col) || !m.contains(msg) {
            wrong.push(format!(
                "{text:?}: got {l}:{c} {m:?}, want {line}:{col} {msg:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn display_of_error_reads_well() {
    let e = parse("memfd m0 size=4K\nfoo\n").expect_err("bad");
    assert!(e
        .to_string()
        .starts_with("line 2, column 1: unknown operation `foo`"));
}

/// A small deterministic generator so the property test needs no extra crate.
fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn decoded_programs_are_valid_and_round_trip() {
    let mut nonempty = 0;
    for seed in 0..500 {
        let data = bytes(seed, 64 + (seed as usize % 7) * 100);
        let p = Program::arbitrary(&mut Unstructured::new(&data)).expect("decodes");
        assert!(!p.has_test_only_ops());
        let text = print(&p);
        let back = parse(&text).unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
        assert_eq!(back, p, "seed {seed}");
        nonempty += usize::from(!p.ops.is_empty());
    }
    assert!(
        nonempty > 400,
        "the decoder mostly yields operations ({nonempty}/500)"
    );
}
