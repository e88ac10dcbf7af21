//! What the on-disk types refuse: newer versions, unknown fields, numbers out of range.

use super::bisect::{decode, encode};
use super::golden::path;
use super::OnDiskError;

fn golden_state() -> String {
    std::fs::read_to_string(path("bisect/state.json")).expect("read the golden state")
}

/// The golden state with `from` replaced by `to` (exactly once).
fn edited(from: &str, to: &str) -> String {
    let text = golden_state();
    assert_eq!(text.matches(from).count(), 1, "{from}");
    text.replacen(from, to, 1)
}

#[test]
fn a_newer_state_version_is_refused_by_name_before_its_fields() {
    let text = edited("\"version\": 1,", "\"version\": 2, \"new_field\": true,");
    let e = decode(&text).expect_err("newer");
    assert!(matches!(e, OnDiskError::TooNew { found: 2, .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "bisection state format 2 is newer than this shmemfuzz ({}) understands (≤ 1); \
             upgrade shmemfuzz",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn unknown_fields_are_refused_everywhere_in_a_state() {
    for (from, to) in [
        ("\"version\": 1,", "\"version\": 1, \"x\": 1,"),
        ("\"runs\": 3,\n    \"config\"", "\"runs\": 3, \"x\": 1,\n    \"config\""),
        ("\"label\": \"mm: commit a1\"", "\"label\": \"mm: commit a1\", \"x\": 1"),
        ("\"build_secs\": 61.5,\n      \"replay_secs\": 12.25\n    },\n    {\n      \"index\": 0", "\"build_secs\": 61.5, \"x\": 1,\n      \"replay_secs\": 12.25\n    },\n    {\n      \"index\": 0"),
        ("\"outcome\": \"one-of\",", "\"outcome\": \"one-of\", \"x\": 1,"),
    ] {
        let e = decode(&edited(from, to)).expect_err(to);
        assert!(e.to_string().contains("unknown field `x`"), "{to}: {e}");
    }
}

#[test]
fn numbers_out_of_range_in_a_state_are_refused_naming_them() {
    for (from, to, says) in [
        ("\"index\": 4,", "\"index\": 5,", "index 5 but 5 revisions"),
        ("\"hits\": 2,", "\"hits\": 4,", "4 hits and 1 clean in 3 runs"),
        ("\"clean\": 1,", "\"clean\": 2,", "2 hits and 2 clean in 3 runs"),
        ("\"verdict\": \"bad\",", "\"verdict\": \"bad\", \"reason\": \"r\",", "verdict `bad` with a reason"),
        ("\"verdict\": \"good\",", "\"verdict\": \"fine\",", "verdict `fine`"),
        ("\"build_secs\": 61.5,\n      \"replay_secs\": 12.25\n    },\n    {\n      \"index\": 0", "\"build_secs\": -1.0,\n      \"replay_secs\": 12.25\n    },\n    {\n      \"index\": 0", "build_secs is -1"),
    ] {
        let e = decode(&edited(from, to)).expect_err(to);
        assert!(
            matches!(e, OnDiskError::OutOfRange { .. }) && e.to_string().contains(says),
            "{to}: {e}"
        );
    }
    let text = golden_state().replace(
        "\"c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3\",\n      \"d4",
        "\"ffff\",\n      \"d4",
    );
    let e = decode(&text).expect_err("unknown outcome revision");
    assert!(e.to_string().contains("`ffff`, which is not among"), "{e}");
}

#[test]
fn the_golden_state_survives_a_decode_encode_round_trip() {
    let text = golden_state();
    let state = decode(&text).expect("reads");
    assert_eq!(encode(&state).expect("encodes"), text);
}

/// A copy of the golden bundle with `from` replaced by `to` in `file` (once), its sha256 in
/// bundle.json updated as a deliberate edit would.
fn edited_bundle(file: &str, from: &str, to: &str) -> tempfile::TempDir {
    use sha2::Digest;
    let tmp = tempfile::tempdir().expect("tempdir");
    for e in std::fs::read_dir(path("bundle")).expect("list") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), tmp.path().join(e.file_name())).expect("copy");
    }
    let sha = |b: &[u8]| hex::encode(sha2::Sha256::digest(b));
    let p = tmp.path().join(file);
    let old = std::fs::read_to_string(&p).expect("read");
    assert_eq!(old.matches(from).count(), 1, "{from}");
    let new = old.replacen(from, to, 1);
    std::fs::write(&p, &new).expect("write");
    if file != crate::findings::bundle::files::MANIFEST {
        let m = tmp.path().join(crate::findings::bundle::files::MANIFEST);
        let text = std::fs::read_to_string(&m).expect("read manifest");
        let text = text.replace(&sha(old.as_bytes()), &sha(new.as_bytes()));
        std::fs::write(&m, text).expect("write manifest");
    }
    tmp
}

#[test]
fn numbers_out_of_range_in_a_bundle_are_refused_naming_the_file_and_field() {
    use crate::findings::bundle::{Bundle, BundleError};
    for (file, from, to, says) in [
        (
            "records.json",
            r#""pinned":true,"order":9,"head":false},{"state":"Swapped","pfn":5002,"pinned":false,"order":0,"head":true},{"state":"Resident","pfn":1048583,"pinned":false,"order":0,"head":true}]}],"pagemap":{"compared":3,"mismatched":1}"#,
            r#""pinned":true,"order":99,"head":false},{"state":"Swapped","pfn":5002,"pinned":false,"order":0,"head":true},{"state":"Resident","pfn":1048583,"pinned":false,"order":0,"head":true}]}],"pagemap":{"compared":3,"mismatched":1}"#,
            "operation 6: pages: object m0: page 1: order 99",
        ),
        (
            "records.json",
            r#""pagemap":{"compared":3,"mismatched":1}"#,
            r#""pagemap":{"compared":3,"mismatched":4}"#,
            "operation 6: pagemap: 4 mismatched of 3 compared",
        ),
        (
            "records.json",
            r#""mismatched_bytes":3,"mismatched_pages":2"#,
            r#""mismatched_bytes":16001,"mismatched_pages":2"#,
            "16001 mismatched bytes, but only 16000",
        ),
        (
            "records.json",
            r#""first_mismatch":[4096,3,0]"#,
            r#""first_mismatch":null"#,
            "3 mismatched bytes, and a first mismatch missing",
        ),
        (
            "outcome.json",
            "\"first_line\": 12,",
            "\"first_line\": 0,",
            "first_line is 0",
        ),
        (
            "outcome.json",
            "\"is_finding\": true,",
            "\"is_finding\": false,",
            "a WARNING report is a finding",
        ),
        (
            "bundle.json",
            "\"free\": 2047",
            "\"free\": 4095",
            "zone DMA of node 0 is impossible",
        ),
        ("bundle.json", "\"smp\": 2,", "\"smp\": 65,", "smp is 65"),
        (
            "bundle.json",
            "\"runs\": 5,",
            "\"runs\": 2,",
            "3 hits in 2 runs",
        ),
    ] {
        let dir = edited_bundle(file, from, to);
        let e = Bundle::read(dir.path()).expect_err(to);
        let msg = e.to_string();
        assert!(
            matches!(&e, BundleError::Invalid { path, .. } if path.ends_with(file))
                && msg.contains(says),
            "{file}: {to}: {msg}"
        );
    }
}

#[test]
fn records_from_before_the_head_flag_take_it_from_the_pfn_alignment() {
    // Operation 6's page 1 is a tail (PFN 5001 in an order-9 folio), page 3 an order-0 page.
    let dir = edited_bundle(
        "records.json",
        r#""pfn":5001,"pinned":true,"order":9,"head":false},{"state":"Swapped","pfn":5002,"pinned":false,"order":0,"head":true},{"state":"Resident","pfn":1048583,"pinned":false,"order":0,"head":true}]}],"pagemap":{"compared":3,"mismatched":1}"#,
        r#""pfn":5001,"pinned":true,"order":9},{"state":"Swapped","pfn":5002,"pinned":false,"order":0},{"state":"Resident","pfn":1048583,"pinned":false,"order":0}]}],"pagemap":{"compared":3,"mismatched":1}"#,
    );
    let b = crate::findings::bundle::Bundle::read(dir.path()).expect("reads");
    let heads: Vec<bool> = b.contents.outcome.records[6].pages[0]
        .pages
        .iter()
        .map(|p| p.head)
        .collect();
    assert_eq!(heads[1..], [false, true, true]);
}

#[test]
fn the_golden_bundle_reads_again_after_an_edit_that_changes_nothing() {
    // The edit helper itself: a no-op edit keeps the bundle readable.
    let dir = edited_bundle("outcome.json", "\"first_line\": 12,", "\"first_line\": 12,");
    crate::findings::bundle::Bundle::read(dir.path()).expect("reads");
}

/// The variants the golden files do not show, pinned by name: renaming one is a format change.
#[test]
fn every_variant_has_its_version_1_name() {
    use super::outcome::{ChildExitV1, FindingKindV1, ReportKindV1};
    use shmemfuzz_core::console::ReportKind;
    let json = |v: &dyn erased::Json| v.json();
    let reports: Vec<String> = ReportKind::ALL
        .into_iter()
        .map(|k| json(&ReportKindV1::from(k)))
        .collect();
    assert_eq!(
        reports.join(","),
        "\"Bug\",\"KernelBug\",\"Warning\",\"Oops\",\"Kasan\",\"Kfence\",\"SlabCorruption\",\
         \"BadPageState\",\"ListCorruption\",\"Panic\",\"SoftLockup\",\"HardLockup\",\
         \"HungTask\",\"RcuStall\",\"VmstatRefresh\",\"MemoryLeak\",\"OomKill\",\"Taint\",\
         \"Sysrq\""
    );
    let findings: Vec<String> = [
        FindingKindV1::Data,
        FindingKindV1::Result,
        FindingKindV1::Signal,
        FindingKindV1::Kernel,
        FindingKindV1::Taint,
        FindingKindV1::Hang,
        FindingKindV1::Leak,
        FindingKindV1::Zone,
    ]
    .iter()
    .map(|k| json(k))
    .collect();
    assert_eq!(
        findings.join(","),
        "\"Data\",\"Result\",\"Signal\",\"Kernel\",\"Taint\",\"Hang\",\"Leak\",\"Zone\""
    );
    let exits: Vec<String> = [
        ChildExitV1::Completed,
        ChildExitV1::Signaled { signal: 7, op: 1 },
        ChildExitV1::Hung { op: 2 },
        ChildExitV1::ExecutorError {
            message: "m".into(),
        },
    ]
    .iter()
    .map(|e| json(e))
    .collect();
    assert_eq!(
        exits.join(","),
        r#""Completed",{"Signaled":{"signal":7,"op":1}},{"Hung":{"op":2}},{"ExecutorError":{"message":"m"}}"#
    );
}

/// Compact JSON of any on-disk value, behind a `dyn` (one closure for several types).
mod erased {
    pub(super) trait Json {
        fn json(&self) -> String;
    }

    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).expect("serializes")
        }
    }
}
