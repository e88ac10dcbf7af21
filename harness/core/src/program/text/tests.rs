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

const THREADED: &str = "\
memfd m0 size=32M
mount f0
tmpfs t0 size=1M on=f0
write m0 off=0 len=32M seed=1
mmap v0 m0 off=0 len=32M shared
madvise v0 off=0 len=32M pageout
threads
thread a
  # swapoff reads every page back
  swapoff swap0
thread b

  delay 200us
  spin 1000
  close m0
  munmap v0
  close t0
  umount f0
join
# after the join the model is exact again
reclaim 4K
";

#[test]
fn threaded_sections_round_trip_byte_for_byte() {
    let p = parse(THREADED).expect("parses");
    assert_eq!(print(&p), THREADED);
    assert_eq!(parse(&print(&p)).expect("reparses"), p);
    assert!(p.is_threaded());
    assert_eq!(p.ops[7], Op::Thread { name: "a".into() });
    assert_eq!(
        p.ops[10],
        Op::Delay {
            micros: 200,
            upto: None
        }
    );
    // Indentation is not significant: a flat spelling parses to the same program.
    let flat: String = THREADED
        .lines()
        .map(|l| l.trim_start().to_string() + "\n")
        .collect();
    let q = parse(&flat).expect("flat spelling parses");
    assert_eq!(q.ops, p.ops);
    assert_eq!(print(&q), THREADED);
}

#[test]
fn delays_print_in_the_largest_exact_unit() {
    for (text, micros, canonical) in [
        ("delay 5ms", 5000, "delay 5ms"),
        ("delay 5000us", 5000, "delay 5ms"),
        ("delay 0us", 0, "delay 0us"),
        ("delay 1500us", 1500, "delay 1500us"),
    ] {
        let p = parse(&format!("{text}\n")).expect("parses");
        assert_eq!(p.ops, [Op::Delay { micros, upto: None }], "{text}");
        assert_eq!(print(&p), format!("{canonical}\n"));
    }
}

#[test]
fn threads_may_share_an_object_for_writes_reads_touches_and_pageout() {
    let text = "memfd m0 size=8K\nmmap v0 m0 off=0 len=8K shared\nthreads\nthread a\n  write m0 off=0 len=8K seed=1\n  check m0 off=0 len=8K\nthread b\n  touch v0 off=0 len=4K write seed=2\n  madvise v0 off=0 len=8K pageout\n  mmap v1 m0 off=0 len=8K shared\n  touch v1 off=0 len=8K read\nthread c\n  check m0 off=4K len=4K\n  write m0 off=100 len=1 seed=3\njoin\nclose m0\n";
    let p = parse(text).expect("a shared object parses");
    assert_eq!(print(&p).lines().count(), text.lines().count());
}

#[test]
fn malformed_sections_are_reported_with_line_and_column() {
    let cases: &[(&str, usize, usize, &str)] = &[
        ("threads\nthreads\n", 2, 1, "do not nest"),
        ("thread a\n", 1, 1, "outside a threaded section"),
        ("join\n", 1, 1, "outside a threaded section"),
        ("threads\nreclaim 4K\n", 2, 1, "after `threads` comes `thread NAME`"),
        ("threads\njoin\n", 2, 1, "no `thread`"),
        ("reclaim 4K\nthreads\nthread a\nreclaim 4K\n", 2, 1, "without `join`"),
        ("threads\nthread a\nthread a\njoin\n", 3, 8, "already in this section"),
        ("threads\nthread A\n", 2, 8, "not a name"),
        (
            "memfd m0 size=4K\nthreads\nthread a\n  write m0 off=0 len=4K seed=1\nthread b\n  close m0\njoin\n",
            6,
            9,
            "`m0` is shared with thread `a` of this section: closing",
        ),
        (
            "memfd m0 size=4K\nthreads\nthread a\n  write m0 off=0 len=8K seed=1\nthread b\n  check m0 off=0 len=4K\njoin\n",
            6,
            9,
            "`m0` is used by thread `a` of this section with an operation that may not share it",
        ),
        (
            "memfd m0 size=4K\nthreads\nthread a\n  check m0 off=0 len=4K\nthread b\n  write m0 off=0 len=8K seed=1\njoin\n",
            6,
            9,
            "a write past end-of-file grows the file",
        ),
        (
            "memfd m0 size=4K\nmmap v0 m0 off=0 len=4K private\nthreads\nthread a\n  write m0 off=0 len=4K seed=1\nthread b\n  touch v0 off=0 len=1 write seed=2\njoin\n",
            7,
            9,
            "a private mapping copies a page",
        ),
        (
            "memfd m0 size=4K\nthreads\nthread a\n  mmap v0 m0 off=0 len=4K shared\nthread b\n  touch v0 off=0 len=1 read\njoin\n",
            6,
            9,
            "was mapped by thread `a` in this section",
        ),
        (
            "memfd m0 size=4K\nthreads\nthread a\n  check m0 off=0 len=4K\nthread b\n  punch m0 off=0 len=4K\njoin\n",
            6,
            9,
            "resizing or punching it",
        ),
        (
            "memfd m0 size=4K\nmmap v0 m0 off=0 len=4K shared\nthreads\nthread a\n  close m0\nthread b\n  munmap v0\njoin\n",
            7,
            10,
            "`m0` is used by thread `a`",
        ),
        (
            "threads\nthread a\n  swapoff swap0\nthread b\n  swapon swap0\njoin\n",
            5,
            10,
            "`swap0` is used by thread `a`",
        ),
        ("delay 5s\n", 1, 7, "not a duration"),
        ("delay 2000ms\n", 1, 7, "at most"),
        ("spin x\n", 1, 6, "not an iteration count"),
        ("tmpfs t0 size=4K on=f0\n", 1, 21, "no tmpfs mounted as `f0`"),
        ("umount f0\n", 1, 8, "no tmpfs mounted"),
        ("mount f0\nmount f0\n", 2, 7, "already declared"),
    ];
    for (text, line, col, msg) in cases {
        let (l, c, m) = error_at(text);
        assert_eq!((l, c), (*line, *col), "{text:?}: {m}");
        assert!(m.contains(msg), "{text:?}: {m}");
    }
}

#[test]
fn a_busy_unmount_keeps_its_files_and_a_clean_one_removes_them() {
    // Open: umount is EBUSY, the file stays usable.
    parse("mount f0\ntmpfs t0 size=4K on=f0\numount f0\nwrite t0 off=0 len=4K seed=1\n")
        .expect("busy unmount leaves t0");
    // Closed: umount takes t0 with it; unlinking it is refused.
    let (l, _, m) = error_at("mount f0\ntmpfs t0 size=4K on=f0\nclose t0\numount f0\nunlink t0\n");
    assert_eq!(l, 5, "{m}");
    // And the mount cannot be unmounted twice.
    let (l, _, m) = error_at("mount f0\numount f0\numount f0\n");
    assert_eq!(l, 3, "{m}");
}

#[test]
fn a_detached_mount_keeps_open_files_usable_and_takes_their_names() {
    let text = "mount f0\ntmpfs t0 size=4K on=f0\numount f0 detach\nwrite t0 off=0 len=4K seed=1\nclose t0\n";
    let p = parse(text).expect("open files stay usable");
    assert_eq!(print(&p), text);
    let (l, _, m) = error_at("mount f0\ntmpfs t0 size=4K on=f0\numount f0 detach\nunlink t0\n");
    assert_eq!(l, 4, "{m}");
    let (l, _, m) = error_at("mount f0\numount f0 detach\ntmpfs t0 size=4K on=f0\n");
    assert_eq!(l, 3, "{m}");
    let (l, c, m) = error_at("mount f0\numount f0 lazy\n");
    assert_eq!((l, c), (2, 11), "{m}");
}

/// Every operation that moves pages outside swap, in canonical form.
const MOVING_OPS: &str = "\
thp advise
memfd m0 size=4M
gem g0 size=1M
dma32 m0
mmap v0 m0 off=0 len=4M shared
madvise v0 off=0 len=4M hugepage
madvise v0 off=0 len=2M collapse
madvise v0 off=2M len=2M nohugepage
madvise v0 off=0 len=64K soft-offline
khugepaged
compact
mbind v0 off=0 len=1M node=1 move strict
mbind v0 off=1M len=1M node=0
move-pages v0 off=0 len=64K node=1
migrate-pages from=0 to=1
offline m0 page=3
offline g0 page=0
online
hugetlb 2M count=16
hugetlb 1G count=1
thp deny
mount f1 huge=within_size
tmpfs t2 size=4M on=f1
";

#[test]
fn page_moving_operations_round_trip_byte_for_byte() {
    let p = parse(MOVING_OPS).expect("parses");
    assert_eq!(p.ops.len(), 23);
    assert_eq!(print(&p), MOVING_OPS);
    assert!(matches!(
        p.ops[11],
        Op::Mbind {
            node: 1,
            flags: crate::program::MbindFlags(5),
            ..
        }
    ));
    assert_eq!(
        p.ops[19],
        Op::Hugetlb {
            size_kb: 1 << 20,
            count: 1
        }
    );
}

#[test]
fn page_moving_operations_refuse_bad_arguments_with_line_and_column() {
    let cases: &[(&str, usize, usize, &str)] = &[
        ("thp sometimes\n", 1, 5, "not a shmem THP mode"),
        ("hugetlb 4M count=1\n", 1, 9, "not a huge page size"),
        ("hugetlb 2M count=100000\n", 1, 18, "at most"),
        ("hugetlb 2M\n", 1, 11, "needs `count=`"),
        ("memfd m0 size=1M\nmmap v0 m0 off=0 len=1M shared\nmbind v0 off=0 len=1M node=1 sideways\n", 3, 30, "not an mbind flag"),
        ("memfd m0 size=1M\nmmap v0 m0 off=0 len=1M shared\nmbind v0 off=0 len=2M node=1\n", 3, 20, "mapping"),
        ("memfd m0 size=1M\nmmap v0 m0 off=0 len=1M shared\nmove-pages v0 off=0 len=4K node=9\n", 3, 33, "past node"),
        ("migrate-pages from=0\n", 1, 21, "needs `to=`"),
        ("offline m0 page=1\n", 1, 9, "m0"),
        ("memfd m0 size=1M\nthreads\nthread a\nkhugepaged\njoin\n", 4, 1, "whole guest"),
        ("mount f0 huge=deny\n", 1, 15, "huge="),
        ("mount f0 huge=sometimes\n", 1, 15, "not never, always"),
        ("thp always size=48K\n", 1, 17, "power of two from 8K to 2M"),
        ("thp always size=4M\n", 1, 17, "power of two"),
        ("memfd m0 size=1M shared\n", 1, 18, "unexpected `shared`"),
    ];
    for (text, line, col, what) in cases {
        let (l, c, msg) = error_at(text);
        assert_eq!((l, c), (*line, *col), "{text:?}: {msg}");
        assert!(msg.contains(what), "{text:?}: {msg}");
    }
}

#[test]
fn anonymous_shmem_objects_and_per_size_thp_round_trip() {
    let text = "thp never\nthp always size=64K\nthp within_size size=2M\nmemfd m0 size=1M anon\nmemfd m1 size=4K\n";
    let p = parse(text).expect("parses");
    assert_eq!(print(&p), text);
    assert_eq!(
        p.ops[1],
        Op::Thp {
            mode: crate::program::ThpMode::Always,
            size: Some(64 << 10)
        }
    );
    assert!(matches!(p.ops[3], Op::Memfd { anon: true, .. }));
    assert!(matches!(p.ops[4], Op::Memfd { anon: false, .. }));
}

#[test]
fn ranged_delays_and_spins_round_trip_and_refuse_empty_ranges() {
    let text = "delay 0us..100ms\ndelay 5ms\nspin 10..1000\nspin 7\n";
    let p = parse(text).expect("parses");
    assert_eq!(
        p.ops[0],
        Op::Delay {
            micros: 0,
            upto: Some(100_000)
        }
    );
    assert_eq!(print(&p), text);
    let (l, c, msg) = error_at("delay 5ms..1ms\n");
    assert_eq!((l, c), (1, 7), "{msg}");
    assert!(msg.contains("empty"), "{msg}");
    let (_, _, msg) = error_at("spin 5..x\n");
    assert!(msg.contains("range"), "{msg}");
    let (_, _, msg) = error_at("delay 0us..2s\n");
    assert!(msg.contains("duration"), "{msg}");
}

#[test]
fn draws_stay_in_range_depend_on_seed_and_index_and_repeat_exactly() {
    use crate::program::draw;
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..200u64 {
        let v = draw(seed, 3, 100, 200);
        assert!((100..=200).contains(&v));
        assert_eq!(v, draw(seed, 3, 100, 200), "same seed, same value");
        seen.insert(v);
    }
    assert!(seen.len() > 50, "seeds explore the range: {}", seen.len());
    assert_ne!(
        (0..20)
            .map(|i| draw(9, i, 0, 1_000_000))
            .collect::<Vec<_>>(),
        (0..20)
            .map(|_| draw(9, 0, 0, 1_000_000))
            .collect::<Vec<_>>(),
        "operations draw their own values"
    );
    assert_eq!(draw(1, 1, 5, 5), 5);
    assert_eq!(draw(1, 1, 5, 4), 5, "an empty range draws its low end");
}

/// A line of `n` short tokens: `mbind … strict strict … strict` (whole program, parses).
fn long_mbind_program(bytes: usize) -> String {
    let head = "memfd m0 size=1M\nmmap v0 m0 off=0 len=1M shared\nmbind v0 off=0 len=4K node=0";
    let mut s = String::with_capacity(bytes + 64);
    s.push_str(head);
    while s.len() < bytes {
        s.push_str(" strict move");
    }
    s.push('\n');
    s
}

#[test]
fn a_multi_megabyte_line_of_short_tokens_parses_with_exact_columns() {
    // 4 MB, about 700 000 tokens: counting each token's column from the line start took
    // hours here; it must finish (no time is asserted) and every column must still be exact.
    let text = long_mbind_program(4 << 20);
    let p = parse(&text).expect("a long line of valid flags parses");
    assert!(
        matches!(&p.ops[2], Op::Mbind { flags, .. } if flags.has("strict") && flags.has("move"))
    );

    // The same line with a bad token at its end, after multi-byte characters: the column
    // counts characters, not bytes.
    let line = text.lines().nth(2).expect("three lines");
    let bad = format!("memfd m0 size=1M\nmmap v0 m0 off=0 len=1M shared\n{line} é bögus\n");
    let (l, col, msg) = error_at(&bad);
    assert_eq!(l, 3);
    assert!(msg.contains("`é` is not an mbind flag"), "{msg}");
    assert_eq!(col, line.chars().count() + 2);

    // Flags between many unknown `key=value` tokens: each flag is looked for from the last one
    // taken, not from the line start; the bad flag at the end is found at its column.
    let mut keyed = String::from("mbind v0 off=0 len=4K node=0");
    for _ in 0..200_000 {
        keyed.push_str(" x=1 strict");
    }
    keyed.push_str(" bogus\n");
    let (_, col, msg) = error_at(&keyed);
    assert!(msg.contains("`bogus` is not an mbind flag"), "{msg}");
    assert_eq!(col, 28 + 200_000 * 11 + 2);
}

#[test]
fn hostile_tokens_get_precise_messages() {
    // Well-formed numbers that do not fit say "too large", not "not a duration".
    for (text, want) in [
        (
            "delay 4294967295ms\n",
            "`4294967295ms` is too large: a delay is at most",
        ),
        (
            "delay 0us..4294967296us\n",
            "is too large: a delay is at most",
        ),
        ("spin 1..4294967296\n", "is too large: a spin is at most"),
        (
            "memfd m0 size=99999999999999999999\n",
            "`size=99999999999999999999` is too large",
        ),
        ("memfd m0 size=0xffffffffffffffffK\n", "is too large"),
        (
            "memfd m0 size=4K\nwrite m0 off=0 len=4K seed=4294967296\n",
            "`seed=4294967296` is too large",
        ),
        ("delay 5s\n", "`5s` is not a duration"),
    ] {
        let (_, _, msg) = error_at(text);
        assert!(msg.contains(want), "{text:?}: {msg}");
    }
    // A leading `+` is not a number anywhere.
    for text in [
        "memfd m0 size=+4K\n",
        "memfd m0 size=0x+1000\n",
        "memfd m0 size=4K\nwrite m0 off=0 len=4K seed=+5\n",
        "swapon swap0 prio=+5\n",
        "swapon swap+1\n",
        "spin +5\n",
        "delay +5ms\n",
        "memfd m0 size=4K\noffline m0 page=+1\n",
    ] {
        let (_, _, msg) = error_at(text);
        assert!(
            msg.contains('+'),
            "{text:?} is refused naming the `+`: {msg}"
        );
    }
    // Invisible characters are shown escaped.
    let (_, col, msg) = error_at("\u{feff}memfd m0 size=4K\n");
    assert_eq!(col, 1);
    assert!(msg.contains("unknown operation `\\u{feff}memfd`"), "{msg}");
    let (_, _, msg) = error_at("memfd m\0 size=4K\n");
    assert!(msg.contains("`m\\u{0}` is not a name"), "{msg}");
    // A huge token is cut in the message, with an ellipsis and its length.
    let huge = "x".repeat(1 << 20);
    let (_, _, msg) = error_at(&format!("{huge}\n"));
    assert!(msg.len() < 1000, "{} bytes", msg.len());
    assert!(msg.contains("xxx… (1048576 characters)`"), "{msg}");
}

#[test]
fn the_object_size_limit_is_inclusive_as_the_docs_say() {
    let docs = include_str!("../../../../../docs/program-format.md");
    assert!(
        docs.contains("Object sizes are at most 256 MiB"),
        "docs/program-format.md states the limit as the parser applies it"
    );
    assert_eq!(crate::program::MAX_OBJECT_SIZE, 256 << 20);
    parse("memfd m0 size=256M\nwrite m0 off=0 len=256M seed=1\n").expect("256 MiB is allowed");
    let (_, _, msg) = error_at("memfd m0 size=262148K\n");
    assert!(msg.contains("above the largest object size"), "{msg}");
    let (_, _, msg) = error_at("memfd m0 size=256M\nwrite m0 off=4K len=256M seed=1\n");
    assert!(msg.contains("goes past"), "{msg}");
}
