use super::*;
use shmemfuzz_core::oracle::Verdict;
use shmemfuzz_core::program::parse;
use shmemfuzz_core::protocol::{ChildExit, FuncHits, ObjObs, OpRecord, PageObs, PageState, PcHits};

const SYSTEM_MAP: &str = "\
ffffffff81000000 T _text
ffffffff81100000 T vfs_read
ffffffff81100200 t shmem_swapin_folio
ffffffff81100500 T shmem_fault
ffffffff81100800 T drm_open
ffffffff81200000 D some_data
";
const MM_NM: &str = "\
\nmm/shmem.o:\n0000000000000000 t shmem_swapin_folio\n0000000000000300 T shmem_fault\n0000000000000000 d shmem_data\n";

fn record(index: u32, result: OpResult) -> OpRecord {
    OpRecord {
        micros: 1,
        ..OpRecord::bare(index, result)
    }
}

fn outcome() -> RunOutcome {
    RunOutcome {
        records: vec![record(0, OpResult::Ok), {
            let mut r = record(1, OpResult::Errno(11));
            let swapped = PageObs {
                order: 0,
                state: PageState::Swapped,
                pfn: 0,
                pinned: false,
                head: false,
            };
            r.pages = vec![ObjObs {
                obj: "m".into(),
                pages: vec![swapped, swapped],
            }];
            r
        }],
        exit: Some(ChildExit::Completed),
        draws: 0,
        teardown: None,
        reports: Vec::new(),
        verdict: Verdict::default(),
        vm_alive: true,
        wall_ms: 1,
        coverage: vec![FuncHits {
            func: "shmem_fault".into(),
            hits: 300,
        }],
        kcov: Some(vec![
            PcHits {
                pc: 0xffffffff81100210,
                hits: 2,
            },
            PcHits {
                pc: 0xffffffff81100010,
                hits: 9,
            },
        ]),
    }
}

#[test]
fn mm_ranges_come_from_system_map_and_nm() {
    let t = MmText::parse(SYSTEM_MAP, MM_NM);
    assert!(t.contains(0xffffffff81100200));
    assert!(
        t.contains(0xffffffff811007ff),
        "merged with shmem_fault's range"
    );
    assert!(!t.contains(0xffffffff81100800), "drm_open is not mm");
    assert!(!t.contains(0xffffffff81100010), "vfs_read is not mm");
    assert_eq!(t.len(), 0x600);
}

#[test]
fn a_run_sets_counters_in_every_region_and_filters_kcov_to_mm() {
    let program = parse("memfd m size=4K\nreclaim 4K\n").expect("valid");
    let mut out = outcome();
    out.verdict.replaced.insert("memfd:check".into(), 3);
    let mut fb = Feedback::new(Some(MmText::parse(SYSTEM_MAP, MM_NM)));
    let mut counters = vec![0u8; COUNTERS_LEN];
    fb.fill(&program, &out, &mut counters);
    let set = |range: std::ops::Range<usize>| counters[range].iter().filter(|c| **c > 0).count();
    assert_eq!(set(FUNC_BASE..OUTCOME_BASE), 1);
    assert_eq!(
        counters[FUNC_BASE..OUTCOME_BASE].iter().max(),
        Some(&9),
        "300 hits: 9 bits"
    );
    assert_eq!(
        set(OUTCOME_BASE..CONSTRAINED_BASE),
        3,
        "two results and the exit"
    );
    assert_eq!(set(CONSTRAINED_BASE..REPLACED_BASE), 1, "reclaim:swapped");
    assert_eq!(set(REPLACED_BASE..KCOV_BASE), 1);
    assert_eq!(set(KCOV_BASE..COUNTERS_LEN), 1, "only the mm PC");
    assert_eq!(fb.pcs.len(), 1);
    assert_eq!((fb.replaced_pages, fb.replacing_runs), (3, 1));
    assert!(
        fb.summary().contains("replaced 3 pages in 1 runs"),
        "{}",
        fb.summary()
    );
    fb.fill(&program, &out, &mut vec![0u8; COUNTERS_LEN]);
    assert_eq!(
        fb.replaced_by_key.iter().collect::<Vec<_>>(),
        [(&"memfd:check".to_string(), &6)],
        "summed per key over runs"
    );

    // The same run again sets the same counters: nothing new for libFuzzer.
    let mut again = vec![0u8; COUNTERS_LEN];
    fb.fill(&program, &out, &mut again);
    assert_eq!(counters, again);
    // A replacement after another operation is a new counter.
    out.verdict.replaced.insert("memfd:touch".into(), 1);
    let mut more = vec![0u8; COUNTERS_LEN];
    fb.fill(&program, &out, &mut more);
    assert_ne!(counters, more);
}

#[test]
fn a_constrained_page_in_a_large_folio_is_a_counter_of_its_own() {
    let program = parse("memfd m size=4K\nreclaim 4K\n").expect("valid");
    let constrained = |order| {
        let mut out = outcome();
        out.records[1].pages[0].pages = vec![PageObs {
            order,
            state: PageState::Resident,
            pfn: 512,
            pinned: false,
            head: true,
        }];
        let mut counters = vec![0u8; COUNTERS_LEN];
        Feedback::new(None).fill(&program, &out, &mut counters);
        let region = &counters[CONSTRAINED_BASE..REPLACED_BASE];
        region.iter().filter(|c| **c > 0).count()
    };
    assert_eq!(constrained(0), 1, "reclaim:resident");
    assert_eq!(constrained(9), 2, "reclaim:resident and reclaim:large");
}
