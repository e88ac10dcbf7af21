use super::*;
use crate::program::parse;

fn decode(bytes: &[u8]) -> Program {
    Program::arbitrary(&mut Unstructured::new(bytes)).expect("every input decodes")
}

fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn decoded_programs_encode_to_bytes_that_decode_to_them() {
    let (mut ops, mut records, mut races) = (0, 0, 0);
    for seed in 0..400 {
        let p = decode(&bytes(seed, 16 * (1 + seed as usize % 40)));
        let again = encode(&p).unwrap_or_else(|e| panic!("seed {seed}: {e}\n{p}"));
        assert_eq!(decode(&again), p, "seed {seed}");
        // One record per operation, but one record per race section (see `race`).
        let race_records = again
            .chunks(RECORD_LEN)
            .filter(|r| race::RACE_OPS.contains(&r[0]))
            .count();
        assert!(again.len() <= p.ops.len() * RECORD_LEN, "seed {seed}");
        assert_eq!(
            again.len() == p.ops.len() * RECORD_LEN,
            race_records == 0,
            "seed {seed}"
        );
        ops += p.ops.len();
        records += again.len() / RECORD_LEN;
        races += race_records;
    }
    assert!(ops > 2000, "random records mostly make operations ({ops})");
    assert!(
        races > 20,
        "race sections encode as one record each ({races} in {records})"
    );
}

#[test]
fn examples_encode_with_canonical_names() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut encoded = 0;
    for entry in std::fs::read_dir(&dir).expect("examples/") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|x| x != "prog") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        let p = parse(&text).expect("examples parse");
        let bytes = match encode(&p) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{}: not a seed: {e}", path.display());
                continue;
            }
        };
        let back = decode(&bytes);
        assert_eq!(back.ops.len(), p.ops.len(), "{}", path.display());
        for (a, b) in p.ops.iter().zip(&back.ops) {
            assert_eq!(a.keyword(), b.keyword(), "{}", path.display());
        }
        assert_eq!(encode(&back).expect("canonical form encodes"), bytes);
        encoded += 1;
    }
    assert!(encoded >= 4, "most examples are seeds ({encoded})");
}

#[test]
fn a_record_means_the_same_after_it_moves() {
    let p = parse(
        "memfd a size=64K\nwrite a off=0 len=64K seed=1\nreclaim 1M\ndma32 a\ncheck a off=0 len=4K\n",
    )
    .expect("valid");
    let mut bytes = encode(&p).expect("valid");
    // Move `dma32` (record 4) before `write` (record 2).
    let dma32: Vec<u8> = bytes.drain(3 * RECORD_LEN..4 * RECORD_LEN).collect();
    bytes.splice(RECORD_LEN..RECORD_LEN, dma32);
    let moved = decode(&bytes);
    let text = moved.to_string();
    assert_eq!(
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>(),
        [
            "memfd m0 size=64K",
            "dma32 m0",
            "write m0 off=0 len=64K seed=1",
            "reclaim 1M",
            "check m0 off=0 len=4K"
        ]
    );
}

#[test]
fn programs_outside_the_decoder_are_refused_with_the_operation() {
    let too_big = parse("memfd a size=64M\n").expect("valid");
    let e = encode(&too_big).expect_err("refused");
    assert_eq!(e.op, 1);
    assert!(e.reason.contains("range"), "{e}");
    let test_only = parse("memfd a size=4K\ncorrupt a off=0 len=1 seed=1\n").expect("valid");
    assert_eq!(encode(&test_only).expect_err("refused").op, 2);
    let unaligned_map = parse("memfd a size=64K\nmmap v a off=0 len=100 shared\n").expect("valid");
    assert_eq!(encode(&unaligned_map).expect_err("refused").op, 2);
}

#[test]
fn short_and_empty_inputs_decode() {
    assert!(decode(&[]).ops.is_empty());
    // One byte: a memfd record padded with zeros (op 0 = memfd, size 1 page).
    assert_eq!(decode(&[0]).to_string().trim(), "memfd m0 size=4K");
}

/// Random records with every fourth `op` byte moved into the extended table.
fn threaded_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut b = bytes(seed, len);
    for (i, r) in b.chunks_mut(RECORD_LEN).enumerate() {
        if i % 4 == 1 {
            r[0] = EXT_BASE + r[0] % EXT_TABLE.len() as u8;
        }
    }
    b
}

#[test]
fn the_decoder_makes_threaded_sections_that_encode_back() {
    let mut threaded = 0;
    let mut raced = 0;
    for seed in 0..400 {
        let p = decode(&threaded_bytes(seed, 16 * (8 + seed as usize % 40)));
        assert!(p.ops.len() <= GEN_MAX_OPS, "seed {seed}");
        // Valid: the text form parses back to it.
        let text = crate::program::text::print(&p);
        assert_eq!(
            parse(&text).unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}")),
            p
        );
        let again = encode(&p).unwrap_or_else(|e| panic!("seed {seed}: {e}\n{p}"));
        assert_eq!(decode(&again), p, "seed {seed}");
        threaded += usize::from(p.is_threaded());
        raced += usize::from(
            p.ops
                .iter()
                .filter(|o| matches!(o, Op::Thread { .. }))
                .count()
                >= 2,
        );
    }
    assert!(
        threaded > 50 && raced > 20,
        "{threaded} threaded, {raced} with two threads"
    );
}

#[test]
fn a_race_program_encodes_with_canonical_thread_and_mount_names() {
    let p = parse(
        "mount scratch\ntmpfs big size=1M on=scratch\nwrite big off=0 len=1M seed=1\nclose big\n\
         threads\nthread left\n  swapoff swap0\nthread right\n  delay 20us\n  spin 10\n  umount scratch\njoin\n",
    )
    .expect("valid");
    let back = decode(&encode(&p).expect("encodes"));
    let text = crate::program::text::print(&back);
    assert!(
        text.contains("mount f0\ntmpfs t1 size=1M on=f0\n"),
        "{text}"
    );
    assert!(
        text.contains("thread a\n  swapoff swap0\nthread b\n  delay 20us\n"),
        "{text}"
    );
    assert!(text.ends_with("  umount f0\njoin\n"), "{text}");
}

#[test]
fn records_after_threads_start_thread_a_and_an_open_section_is_joined() {
    let record = |kind: OpKind| {
        let mut r = [0u8; RECORD_LEN];
        r[0] = kind.selector();
        r
    };
    let bytes: Vec<u8> = [
        OpKind::Memfd,
        OpKind::Threads,
        OpKind::Reclaim,
        OpKind::Close,
    ]
    .into_iter()
    .flat_map(record)
    .collect();
    let p = decode(&bytes);
    assert_eq!(
        crate::program::text::print(&p),
        "memfd m0 size=4K\nthreads\nthread a\n  reclaim 4K\n  close m0\njoin\n"
    );
    assert_eq!(decode(&encode(&p).expect("encodes")), p);
    // A `threads` with nothing after it is dropped.
    let p = decode(&[record(OpKind::Memfd), record(OpKind::Threads)].concat());
    assert_eq!(p.ops.len(), 1);
}

#[test]
fn anonymous_objects_and_per_size_thp_survive_the_round_trip() {
    let p = parse("thp never\nthp always size=64K\nmemfd m0 size=1M anon\nmemfd m1 size=4K\n")
        .expect("valid");
    let back = decode(&encode(&p).expect("encodes"));
    assert_eq!(back, p);
}
