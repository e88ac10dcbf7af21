//! Merging histories: restarts, side-by-side workers, disorder, truncation, the size bound.

use super::*;

fn sample(t_ms: u64, runs: u64, functions: &[&str], findings: &[&str]) -> Sample {
    Sample {
        t_ms,
        runs,
        functions: functions.len() as u64,
        new_functions: functions.iter().map(|s| s.to_string()).collect(),
        replaced_pages: runs * 2,
        findings: findings.len() as u64,
        new_findings: findings.iter().map(|s| s.to_string()).collect(),
        ..Sample::default()
    }
}

fn lines(samples: &[Sample]) -> String {
    samples
        .iter()
        .map(|s| serde_json::to_string(s).expect("fixture") + "\n")
        .collect()
}

#[test]
fn a_restarted_worker_adds_its_incarnations_and_unites_their_coverage() {
    let first = Incarnation::parse(
        0,
        0,
        &lines(&[
            sample(1_000, 10, &["shmem_swapin_folio"], &[]),
            sample(6_000, 30, &[], &["zone:x"]),
        ]),
    );
    // The restart counts from zero again and reaches another function.
    let second = Incarnation::parse(
        0,
        1,
        &lines(&[
            sample(8_000, 5, &["shmem_swapin_folio"], &[]),
            sample(13_000, 20, &["shmem_writepage"], &[]),
        ]),
    );
    let h = History::merge(&[second, first]);
    let w = &h.workers[&0];
    let runs: Vec<u64> = w.iter().map(|p| p.runs).collect();
    assert_eq!(runs, [10, 30, 35, 50]);
    assert_eq!(w.last().expect("fixture").functions, 2);
    assert_eq!(w.last().expect("fixture").replaced_pages, 100);
    assert_eq!(w.last().expect("fixture").findings, 1);
    assert_eq!(h.incarnations[&0], 2);
    assert_eq!(h.total, *w);
    assert_eq!(h.functions["shmem_writepage"], 13_000);
    assert_eq!(
        h.findings["zone:x"],
        Sighting {
            first_ms: 6_000,
            hits: 1
        }
    );
    // 50 runs from 1 s to 13 s.
    assert!((w.last().expect("fixture").execs_per_sec - 40.0 / 12.0).abs() < 1e-9);
}

#[test]
fn side_by_side_workers_sum_in_the_total_and_a_finding_counts_per_incarnation() {
    let a = Incarnation::parse(0, 0, &lines(&[sample(1_000, 4, &["f"], &["zone:x"])]));
    let b = Incarnation::parse(1, 0, &lines(&[sample(2_000, 6, &["f", "g"], &["zone:x"])]));
    let h = History::merge(&[a, b]);
    assert_eq!(h.workers.len(), 2);
    let last = h.total.last().expect("fixture");
    assert_eq!((last.runs, last.functions, last.findings), (10, 2, 2));
    assert_eq!(
        h.findings["zone:x"],
        Sighting {
            first_ms: 1_000,
            hits: 2
        }
    );
}

#[test]
fn samples_out_of_order_are_sorted_and_a_truncated_last_line_is_skipped() {
    let mut text = lines(&[
        sample(9_000, 30, &[], &[]),
        sample(1_000, 10, &["f"], &[]),
        sample(5_000, 20, &[], &[]),
    ]);
    let cut = serde_json::to_string(&sample(12_000, 40, &[], &[])).expect("fixture");
    text.push_str(&cut[..cut.len() / 2]);
    let inc = Incarnation::parse(0, 0, &text);
    assert_eq!(inc.skipped, 1);
    let h = History::merge(&[inc]);
    let t: Vec<u64> = h.total.iter().map(|p| p.t_ms).collect();
    assert_eq!(t, [1_000, 5_000, 9_000]);
    assert_eq!(h.skipped, 1);
    assert_eq!(h.total[2].functions, 1);
}

#[test]
fn load_reads_only_history_files_and_an_empty_dir_is_an_empty_history() {
    let dir = tempfile::tempdir().expect("fixture");
    assert_eq!(History::load(dir.path()), History::default());
    std::fs::write(
        dir.path().join("w2-3.jsonl"),
        lines(&[sample(1, 1, &[], &[])]),
    )
    .expect("fixture");
    std::fs::write(dir.path().join("w2-3.json"), "{}").expect("fixture");
    std::fs::write(dir.path().join("notes.jsonl"), "garbage").expect("fixture");
    let h = History::load(dir.path());
    assert_eq!(h.incarnations, BTreeMap::from([(2, 1)]));
    assert_eq!(h.skipped, 0);
}

#[test]
fn the_writer_thins_samples_forces_findings_and_reports_only_new_names() {
    let dir = tempfile::tempdir().expect("fixture");
    let stats_path = dir.path().join("w0-0.json");
    let mut w = HistoryWriter::beside(&stats_path);
    let t0 = w.started_ms;
    let mut st = WorkerStats {
        runs: 1,
        functions: vec!["f".into()],
        ..WorkerStats::default()
    };
    assert!(w.record(&st, || Some(3), t0, false).expect("fixture"));
    st.runs = 2;
    assert!(
        !w.record(&st, || None, t0 + 1_000, false).expect("fixture"),
        "too soon"
    );
    st.findings.push("zone:x".into());
    assert!(
        w.record(&st, || None, t0 + 2_000, true).expect("fixture"),
        "a finding"
    );
    st.runs = 12;
    st.functions.push("g".into());
    assert!(w.record(&st, || None, t0 + 7_000, false).expect("fixture"));
    let inc = Incarnation::parse(
        0,
        0,
        &std::fs::read_to_string(dir.path().join("w0-0.jsonl")).expect("fixture"),
    );
    let s = &inc.samples;
    assert_eq!(s.len(), 3);
    assert_eq!(s[0].new_functions, ["f"]);
    assert_eq!(s[0].corpus, Some(3));
    assert_eq!(s[1].new_findings, ["zone:x"]);
    assert!(s[2].new_findings.is_empty());
    assert_eq!(s[2].new_functions, ["g"]);
    assert!((s[2].execs_per_sec - 2.0).abs() < 1e-9);
    // A day in, samples are a minute and a half apart.
    assert!(w
        .record(&st, || None, t0 + 86_400_000, false)
        .expect("fixture"));
    assert!(!w
        .record(&st, || None, t0 + 86_460_000, false)
        .expect("fixture"));
}

#[test]
fn the_writer_stops_at_its_byte_bound() {
    let dir = tempfile::tempdir().expect("fixture");
    let mut w = HistoryWriter::beside(&dir.path().join("w0-0.json"));
    w.bytes = MAX_BYTES;
    assert!(!w
        .record(&WorkerStats::default(), || None, 0, true)
        .expect("fixture"));
    assert!(!dir.path().join("w0-0.jsonl").exists());
}
