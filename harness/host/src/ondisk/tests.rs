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
