//! The campaign driver against stand-in workers: shell scripts that write a stats file and
//! exit the way a real worker would (no VM, no libFuzzer).

use super::*;

fn script(dir: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("worker.sh");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

fn options(dir: &Path, binary: PathBuf, stop_on_finding: bool) -> CampaignOptions {
    CampaignOptions {
        binary,
        kernel: None,
        append: Vec::new(),
        jobs: 1,
        duration: Duration::from_secs(40),
        corpus: dir.join("corpus"),
        seeds: Vec::new(),
        out: dir.join("out"),
        stop_on: stop_on_finding.then(SignaturePattern::any),
        known: None,
        topology: None,
        smp: 1,
    }
}

#[test]
fn a_worker_whose_harness_keeps_failing_is_abandoned_and_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = script(
        dir.path(),
        r#"echo '{"runs": 3, "harness_failures": 3}' > "$SHMEMFUZZ_STATS"; echo 'cannot boot' >&2; exit 2"#,
    );
    let status = run(&options(dir.path(), bin, false), &mut |_| {}).expect("runs");
    assert_eq!(status.abandoned.len(), 1, "{:?}", status.abandoned);
    assert!(
        status.abandoned[0].contains("cannot boot"),
        "{}",
        status.abandoned[0]
    );
    assert_eq!(
        status.execs,
        3 * u64::from(MAX_RESTARTS + 1),
        "every incarnation counted"
    );
    assert!(status.findings.is_empty());
    assert!(
        status.elapsed < Duration::from_secs(30),
        "it does not wait for the end"
    );
}

#[test]
fn a_finding_is_triaged_by_signature_and_stops_the_campaign_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = script(
        dir.path(),
        r#"mkdir -p "$SHMEMFUZZ_BUNDLES/zone_memfd_touch_Normal"
echo '{"runs": 7, "findings": ["zone:memfd:touch:Normal"]}' > "$SHMEMFUZZ_STATS"; exit 1"#,
    );
    let status = run(&options(dir.path(), bin, true), &mut |_| {}).expect("runs");
    assert!(status.abandoned.is_empty(), "a finding is no failure");
    let found = status
        .findings
        .get("zone:memfd:touch:Normal")
        .expect("triaged");
    assert_eq!(found.hits, 1);
    assert!(found
        .bundle
        .as_ref()
        .is_some_and(|b| b.ends_with("zone_memfd_touch_Normal")));
    assert_eq!(status.execs, 7);
}

/// With a pattern, a finding it does not match is triaged and the campaign goes on (a new
/// incarnation, which knows that finding) until one it matches.
#[test]
fn a_campaign_stops_at_the_first_finding_its_pattern_matches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = script(
        dir.path(),
        r#"n=$(cat "$SHMEMFUZZ_CORPUS/../count" 2>/dev/null || echo 0); echo $((n + 1)) > "$SHMEMFUZZ_CORPUS/../count"
if [ "$n" = 0 ]; then sig=zone:memfd:touch:Normal; else sig=zone:memfd:touch:Normal:large; cp "$SHMEMFUZZ_KNOWN" "$SHMEMFUZZ_CORPUS/../known-seen"; fi
echo "{\"runs\": 5, \"findings\": [\"$sig\"]}" > "$SHMEMFUZZ_STATS"; exit 1"#,
    );
    let opts = CampaignOptions {
        stop_on: Some(SignaturePattern::new("zone:*:large")),
        ..options(dir.path(), bin, false)
    };
    let status = run(&opts, &mut |_| {}).expect("runs");
    let found: Vec<&String> = status.findings.keys().collect();
    assert_eq!(
        found,
        ["zone:memfd:touch:Normal", "zone:memfd:touch:Normal:large"]
    );
    assert_eq!(status.execs, 10, "two incarnations, then it stopped");
    // The second incarnation knew the first one's finding (and only that).
    let seen = std::fs::read_to_string(dir.path().join("known-seen")).expect("passed on");
    let k = crate::fuzzing::known::KnownFindings::parse(&seen, Path::new("k")).expect("parses");
    assert!(k.matching("zone:memfd:touch:Normal").is_some(), "{seen}");
    assert!(
        k.matching("zone:memfd:touch:Normal:large").is_none(),
        "{seen}"
    );
}

#[test]
fn a_log_or_stats_file_that_is_a_fifo_reads_as_nothing_without_blocking() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("w0.log");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    // No writer ever opens it: a plain read would block here for good.
    assert_eq!(tail(&fifo, 10), "");
    assert!(WorkerStats::read(&fifo).is_none());
    let log = dir.path().join("w1.log");
    let long: String = (0..100_000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&log, long).expect("write");
    assert_eq!(tail(&log, 2), "line 99998\nline 99999");
}

#[test]
fn a_campaign_starts_a_fresh_history_and_tells_workers_the_corpus() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stale = dir.path().join("out/stats/w0-0.jsonl");
    std::fs::create_dir_all(stale.parent().expect("parent")).expect("mkdir");
    std::fs::write(&stale, "{\"t_ms\": 1, \"runs\": 1000}\n").expect("write");
    let bin = script(
        dir.path(),
        r#"n=$(ls "$SHMEMFUZZ_CORPUS" | wc -l)
echo "{\"t_ms\": 5, \"runs\": 7, \"corpus\": $n, \"new_findings\": [\"zone:x\"]}" >> "${SHMEMFUZZ_STATS%.json}.jsonl"
echo '{"runs": 7, "findings": ["zone:x"]}' > "$SHMEMFUZZ_STATS"; exit 1"#,
    );
    let opts = options(dir.path(), bin, true);
    std::fs::create_dir_all(&opts.corpus).expect("mkdir");
    std::fs::write(opts.corpus.join("a"), "x").expect("write");
    run(&opts, &mut |_| {}).expect("runs");
    let h = super::super::history::History::load(&dir.path().join("out/stats"));
    assert_eq!(h.total.len(), 1, "the stale history is gone: {h:?}");
    assert_eq!((h.total[0].runs, h.total[0].corpus), (7, 1));
    assert_eq!(h.findings["zone:x"].hits, 1);
    let meta: CampaignMeta = serde_json::from_slice(
        &std::fs::read(dir.path().join("out/stats/campaign.json")).expect("meta"),
    )
    .expect("parses");
    assert_eq!(meta.jobs, 1);
    assert!(meta.start_ms > 0);
}

#[test]
fn a_worker_ended_before_its_last_history_line_gets_its_totals_appended() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = script(
        dir.path(),
        r#"echo '{"t_ms": 5, "runs": 3}' >> "${SHMEMFUZZ_STATS%.json}.jsonl"
echo '{"runs": 9, "functions": ["f"], "updated_ms": 9000, "findings": ["zone:x"]}' > "$SHMEMFUZZ_STATS"; exit 1"#,
    );
    run(&options(dir.path(), bin, true), &mut |_| {}).expect("runs");
    let h = super::super::history::History::load(&dir.path().join("out/stats"));
    let runs: Vec<u64> = h.total.iter().map(|p| p.runs).collect();
    assert_eq!(runs, [3, 9]);
    assert_eq!(h.functions.len(), 1);
    assert_eq!(h.findings["zone:x"].hits, 1);
}

/// The interruption the next test's campaign sees (only that test reads it).
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn interrupted() -> Option<crate::os::interrupt::Interrupted> {
    INTERRUPTED
        .load(std::sync::atomic::Ordering::SeqCst)
        .then_some(crate::os::interrupt::Interrupted {
            signal: Signal::SIGINT,
        })
}

#[test]
fn an_interrupted_campaign_stops_its_workers_between_runs_and_removes_partial_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A worker that stops only on libFuzzer's graceful-exit signal, writing its totals as it
    // goes, after a bundle writer of it was killed half-way.
    let bin = script(
        dir.path(),
        r#"mkdir -p "$SHMEMFUZZ_BUNDLES/.partial-bundle-zone_x-ab12"
echo '{"ru' > "${SHMEMFUZZ_STATS%.json}.tmp"
trap 'echo "{\"runs\": 5}" > "$SHMEMFUZZ_STATS"; exit 0' USR1
echo started > "$SHMEMFUZZ_STATS.started"
while :; do sleep 0.05; done"#,
    );
    let opts = options(dir.path(), bin, false);
    let started = opts.out.join("stats/w0-0.json.started");
    let t = Instant::now();
    let status = run_with(
        &opts,
        &mut |_| {
            if started.exists() {
                INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        },
        interrupted,
    )
    .expect("runs");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "stopped at the interruption, not at the campaign's end: {:?}",
        t.elapsed()
    );
    assert_eq!(status.execs, 5, "the worker's last totals");
    assert!(status.abandoned.is_empty(), "{:?}", status.abandoned);
    assert_eq!(status.workers_running, 0);
    let left: Vec<_> = std::fs::read_dir(opts.out.join("bundles"))
        .expect("bundles")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let tmp: Vec<_> = std::fs::read_dir(opts.out.join("stats"))
        .expect("stats")
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(tmp.is_empty(), "a half-written stats file left: {tmp:?}");
}
