//! The golden tests: a bundle and a bisection state, built from runtime values that use every
//! field and variant worth pinning, written and read with the real code ([`super::golden`]).

use std::collections::BTreeMap;

use shmemfuzz_core::console::{KernelReport, ReportKind};
use shmemfuzz_core::oracle::{Finding, FindingKind, Verdict};
use shmemfuzz_core::program;
use shmemfuzz_core::protocol::{
    Accounting, ChildExit, DataCheck, GuestSettings, ObjObs, OpRecord, OpResult, PageObs,
    PageOwner, PageState, PagemapCheck, Teardown,
};
use shmemfuzz_core::zoneinfo::{Zone, PFN_4G};

use super::golden::{check, path};
use crate::findings::bisect::plan::Outcome;
use crate::findings::bisect::state::{self, Key, Rev, StateFile, Step};
use crate::findings::bisect::verdict::Verdict as StepVerdict;
use crate::findings::bundle::{self, Bundle, BundleContents, HitCount, KernelIdentity, Stamp};
use crate::findings::reproduce::Tally;
use crate::guest::vm::MemoryLayout;
use crate::session::{GuestInfo, RunOutcome};

const PROGRAM: &str = "\
# DMA32 memfd paged out and read back
memfd m0 size=16K
dma32 m0
write m0 off=0 len=16K seed=3
mmap v0 m0 off=0 len=16K shared
touch v0 off=0 len=16K read
madvise v0 off=0 len=16K pageout
check m0 off=0 len=16K
";

fn zones() -> Vec<Zone> {
    let z = |name: &str, start_pfn, spanned| Zone {
        node: 0,
        name: name.into(),
        start_pfn,
        spanned,
        present: spanned - 1,
        managed: spanned - 10,
        free: spanned / 2,
    };
    vec![
        z("DMA", 1, 4095),
        z("DMA32", 4096, PFN_4G - 4096),
        z("Normal", PFN_4G, 1 << 18),
    ]
}

fn record(index: u32) -> OpRecord {
    let page = |i: u64| PageObs {
        order: if i == 1 { 9 } else { 0 },
        state: match i {
            0 => PageState::Absent,
            2 => PageState::Swapped,
            _ => PageState::Resident,
        },
        pfn: if i == 3 { PFN_4G + 7 } else { 5000 + i },
        pinned: i == 1,
        // Page 1 is a tail of its order-9 folio.
        head: i != 1,
    };
    OpRecord {
        index,
        result: match index {
            4 => OpResult::Skipped,
            5 => OpResult::Errno(11),
            _ => OpResult::Ok,
        },
        data: (index == 6).then_some(DataCheck {
            expected_len: 16384,
            read_len: 16000,
            mismatched_bytes: 3,
            mismatched_pages: 2,
            first_mismatch: Some((4096, 3, 0)),
        }),
        micros: 40 + u64::from(index),
        swap_used_kib: 4 * u64::from(index),
        pages: vec![ObjObs {
            obj: "m0".into(),
            pages: (0..4).map(page).collect(),
        }],
        pagemap: (index != 0).then_some(PagemapCheck {
            compared: 3,
            mismatched: u32::from(index == 6),
        }),
        page_owner: (index == 6).then(|| PageOwner {
            obj: "m0".into(),
            page: 3,
            pfn: PFN_4G + 7,
            report: "Page allocated via order 0, mask 0x140cca\n shmem_alloc_folio+0x1/0x2".into(),
        }),
        drawn: (index == 3).then_some(17),
        background_collapse: index == 4,
        start_micros: 0,
    }
}

fn outcome() -> RunOutcome {
    let zone = Finding::new(
        FindingKind::Zone,
        "memfd:check:Normal",
        "page 3 of m0 is in Normal".into(),
        Some(6),
        "1 page".into(),
    );
    let kernel = Finding::new(
        FindingKind::Kernel,
        "WARNING:shmem_replace_folio",
        "WARNING in shmem_replace_folio".into(),
        None,
        "console line 12".into(),
    );
    let report = KernelReport {
        kind: ReportKind::Warning,
        title: "WARNING in shmem_replace_folio".into(),
        first_line: 12,
        text: "WARNING: CPU: 0 PID: 1 at mm/shmem.c:1 shmem_replace_folio+0x1/0x2".into(),
        is_finding: true,
        signature: "WARNING:shmem_replace_folio".into(),
        truncated: true,
    };
    let acct = |shmem_kib| Accounting {
        shmem_kib,
        swap_used_kib: 8,
        taint: 12288,
    };
    RunOutcome {
        coverage: Vec::new(),
        kcov: None,
        draws: 7,
        records: (0..7).map(record).collect(),
        exit: Some(ChildExit::Signaled { signal: 7, op: 6 }),
        teardown: Some(Teardown {
            baseline: acct(100),
            after: acct(116),
            swapoff_stuck: vec![1],
            settle_ms: 12,
            phases_us: vec![("program".into(), 1200), ("swapoff".into(), 300)],
        }),
        reports: vec![report],
        verdict: Verdict {
            findings: vec![zone, kernel],
            replaced: BTreeMap::from([("swapin:6".to_string(), 2)]),
        },
        vm_alive: false,
        wall_ms: 1234,
    }
}

/// A bundle about a zone finding, with a kernel report beside it (also used by
/// `bundle::sendable`'s tests).
pub(crate) fn contents() -> BundleContents {
    let guest = GuestInfo {
        release: "6.1.0-56-amd64".into(),
        version: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-1".into(),
        zones: zones(),
        swap_devices: vec!["/dev/vda".into(), "/dev/vdb".into()],
        taint: 12288,
        settings: GuestSettings {
            page_cluster: "3".into(),
            swappiness: "60".into(),
            shmem_enabled: "never".into(),
            thp_enabled: "madvise".into(),
            lru_gen: "0x0000".into(),
            zswap: "N".into(),
            swap_rotational: vec!["1".into(), "0".into()],
        },
        modules: vec!["virtio_blk".into(), "gma500_mock".into()],
        boot_ms: 4000,
        ready_after_ms: 5200,
    };
    BundleContents {
        program: program::parse(PROGRAM).expect("the golden program parses"),
        outcome: outcome(),
        kernel: KernelIdentity {
            id: "debian-6.1.0-56".into(),
            release: guest.release.clone(),
            version: guest.version.clone(),
            config_sha256: Some("ab".repeat(32)),
            bzimage_sha256: "cd".repeat(32),
        },
        guest,
        qemu: "qemu-system-x86_64 -machine pc,max-ram-below-4g=1024M -m 2048M".into(),
        memory: MemoryLayout {
            total_mib: 3072,
            below_4g_mib: 1024,
            nodes: 2,
        },
        smp: 2,
        append: vec!["shmem.planted_no_replace=1".into()],
        swap_devices: 2,
        swap_size: 512 << 20,
        op_timeout_ms: 120_000,
        console: b"[    0.000000] Linux version 6.1\n\xff\xfe garbage\nend of run 1\n".to_vec(),
        signature: Some("zone:memfd:check:Normal".into()),
        hits: HitCount { runs: 5, hits: 3 },
    }
}

const STAMP: Stamp = Stamp {
    harness: "golden",
    created: 1_700_000_000,
};

#[test]
fn golden_bundle_is_what_the_writer_writes_and_reads_back() {
    let built = contents();
    let tmp = tempfile::tempdir().expect("tempdir");
    bundle::write_files(tmp.path(), &built, &STAMP).expect("the writer writes");
    let mut names: Vec<String> = std::fs::read_dir(tmp.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    // bundle.json last: it holds the others' sha256, so their own diff is the one to see.
    names.sort_by_key(|n| (n == bundle::files::MANIFEST, n.clone()));
    for name in &names {
        let bytes = std::fs::read(tmp.path().join(name)).expect("read a written file");
        check(&format!("bundle/{name}"), &bytes);
    }
    let golden: Vec<String> = std::fs::read_dir(path("bundle"))
        .expect("list the golden bundle")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !names.contains(n))
        .collect();
    assert!(
        golden.is_empty(),
        "golden files the writer no longer writes: {golden:?}"
    );
    // trace.json is never read back by shmemfuzz; its twin still reads the golden file.
    let trace: crate::files::ondisk::trace::TraceV1 = serde_json::from_slice(
        &std::fs::read(path("bundle/trace.json")).expect("read the golden trace"),
    )
    .expect("the golden trace parses");
    let mut built_trace = crate::session::trace::Trace::new(
        &built.kernel.id,
        &built.guest,
        built.qemu.clone(),
        &built.program,
        &built.outcome,
    );
    built_trace.harness = STAMP.harness.into();
    assert_eq!(trace, built_trace);
    let read = Bundle::read(&path("bundle")).expect("the golden bundle reads");
    assert_eq!(
        (read.harness.as_str(), read.created),
        ("golden", 1_700_000_000)
    );
    assert_eq!(read.format_version, 1);
    assert_eq!(format!("{:#?}", read.contents), format!("{built:#?}"));
}

fn bisect_state() -> StateFile {
    let tally = |runs, hits, clean| Tally {
        runs,
        hits,
        clean,
        unrelated: if runs > hits + clean {
            vec!["kernel:OOPS:shmem_swapin".into()]
        } else {
            vec![]
        },
    };
    let step = |index, verdict, t: Option<Tally>| Step {
        index,
        verdict,
        image_sha256: t.as_ref().map(|_| "ef".repeat(32)),
        tally: t,
        reused_from: (index == 1).then(|| "a1".repeat(20)),
        build_secs: 61.5,
        replay_secs: 12.25,
    };
    StateFile {
        format: "shmemfuzz-bisect".into(),
        version: 1,
        key: Key {
            mode: "git".into(),
            source: "/src/linux".into(),
            good: "v6.1".into(),
            bad: "v6.2".into(),
            paths: vec!["mm/".into()],
            repro_sha256: "12".repeat(32),
            runs: 3,
            config: "34".repeat(32) + " every",
        },
        revs: ["a1", "b2", "c3", "d4", "e5"]
            .iter()
            .map(|r| Rev {
                rev: r.repeat(20),
                label: format!("mm: commit {r}"),
            })
            .collect(),
        steps: vec![
            step(4, StepVerdict::Bad, Some(tally(3, 2, 1))),
            step(0, StepVerdict::Good, Some(tally(3, 0, 3))),
            step(
                2,
                StepVerdict::BuildFailed {
                    reason: "mm/shmem.c:1: error".into(),
                },
                None,
            ),
            step(
                1,
                StepVerdict::NoBoot {
                    reason: "no ready in 60 s".into(),
                },
                None,
            ),
            step(
                3,
                StepVerdict::Unrelated {
                    signatures: vec!["kernel:OOPS:shmem_swapin".into()],
                },
                Some(tally(3, 0, 0)),
            ),
        ],
        outcome: Some(Outcome::OneOf {
            revs: vec!["c3".repeat(20), "d4".repeat(20), "e5".repeat(20)],
        }),
    }
}

#[test]
fn golden_bisect_state_is_what_the_writer_writes_and_reads_back() {
    let built = bisect_state();
    let text = state::encode(&built).expect("encodes");
    check("bisect/state.json", text.as_bytes());
    let golden = std::fs::read_to_string(path("bisect/state.json")).expect("read golden");
    assert_eq!(
        state::decode(&golden).expect("the golden state reads"),
        built
    );
}

#[test]
fn every_bisect_outcome_reads_back() {
    // The outcomes other than the golden file's, through the same encoder and decoder.
    let rev = |r: &str| r.repeat(20);
    let outcomes = [
        Outcome::FirstBad { rev: rev("a1") },
        Outcome::BadEndGood { rev: rev("e5") },
        Outcome::GoodEndBad { rev: rev("a1") },
        Outcome::EndSkipped {
            rev: rev("a1"),
            verdict: StepVerdict::NoBoot { reason: "x".into() },
        },
    ];
    for o in outcomes {
        let built = StateFile {
            outcome: Some(o),
            ..bisect_state()
        };
        let text = state::encode(&built).expect("encodes");
        assert_eq!(state::decode(&text).expect("decodes"), built, "{text}");
    }
}
