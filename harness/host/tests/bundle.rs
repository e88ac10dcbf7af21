//! Record/replay bundles on disk: round trip, and a clear error (naming the file) for each
//! kind of damage. No VM: the contents are built by hand.

use std::path::{Path, PathBuf};
use std::time::Duration;

use shmemfuzz::files::ondisk::records::OpRecordV1;
use shmemfuzz::findings::bundle::{
    files, Bundle, BundleContents, BundleError, HitCount, KernelIdentity,
};
use shmemfuzz::guest::vm::{Accel, MemoryLayout};
use shmemfuzz::kernels::kernel::FetchedKernel;
use shmemfuzz::session::{GuestInfo, RunOutcome, SessionOptions};
use shmemfuzz_core::console::{KernelReport, ReportKind};
use shmemfuzz_core::oracle::{Finding, FindingKind, Verdict};
use shmemfuzz_core::program::{self, Op, Program};
use shmemfuzz_core::protocol::{
    Accounting, ChildExit, DataCheck, GuestSettings, ObjObs, OpRecord, OpResult, PageObs,
    PageState, PagemapCheck, Teardown,
};
use shmemfuzz_core::zoneinfo::{Zone, PFN_4G};

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

const SIG: &str = "zone:memfd:check:Normal";

fn zones() -> Vec<Zone> {
    let z = |name: &str, start_pfn, spanned| Zone {
        node: 0,
        name: name.into(),
        start_pfn,
        spanned,
        present: spanned,
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
        order: 0,
        state: if i == 2 {
            PageState::Swapped
        } else {
            PageState::Resident
        },
        pfn: if i == 3 { PFN_4G + 7 } else { 5000 + i },
        pinned: false,
        head: true,
    };
    OpRecord {
        index,
        result: if index == 5 {
            OpResult::Errno(11)
        } else {
            OpResult::Ok
        },
        data: (index == 6).then(|| DataCheck {
            expected_len: 16384,
            read_len: 16384,
            ..DataCheck::default()
        }),
        micros: 40 + u64::from(index),
        swap_used_kib: 4 * u64::from(index),
        pages: vec![ObjObs {
            obj: "m0".into(),
            pages: (0..4).map(page).collect(),
        }],
        pagemap: Some(PagemapCheck {
            compared: 3,
            mismatched: 0,
        }),
        page_owner: None,
        drawn: None,
        background_collapse: false,
        start_micros: 0,
    }
}

fn contents() -> BundleContents {
    let program = program::parse(PROGRAM).expect("the test program parses");
    let finding = Finding::new(
        FindingKind::Zone,
        "memfd:check:Normal",
        "page 3 of m0 is in Normal".into(),
        Some(6),
        "1 page".into(),
    );
    let report = KernelReport {
        kind: ReportKind::Warning,
        title: "WARNING in shmem_replace_folio".into(),
        first_line: 12,
        text: "WARNING: CPU: 0 PID: 1 at mm/shmem.c:1 shmem_replace_folio+0x1/0x2".into(),
        // As the console scanner sets it (a WARNING is a finding); read checks it.
        is_finding: true,
        signature: "WARNING in shmem_replace_folio".into(),
        truncated: false,
    };
    let outcome = RunOutcome {
        coverage: Vec::new(),
        kcov: None,
        draws: 7,
        records: (0..7).map(record).collect(),
        exit: Some(ChildExit::Completed),
        teardown: Some(Teardown {
            baseline: Accounting {
                shmem_kib: 100,
                swap_used_kib: 0,
                taint: 12288,
            },
            after: Accounting {
                shmem_kib: 100,
                swap_used_kib: 0,
                taint: 12288,
            },
            swapoff_stuck: Vec::new(),
            settle_ms: 12,
            phases_us: vec![("program".into(), 1200)],
        }),
        reports: vec![report],
        verdict: Verdict {
            findings: vec![finding],
            ..Verdict::default()
        },
        vm_alive: true,
        wall_ms: 1234,
    };
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
            swap_rotational: vec!["1".into(), "1".into()],
        },
        modules: vec!["virtio_blk".into(), "gma500_mock".into()],
        boot_ms: 4000,
        ready_after_ms: 5200,
    };
    BundleContents {
        program,
        outcome,
        kernel: KernelIdentity {
            id: "debian-6.1.0-56".into(),
            release: guest.release.clone(),
            version: guest.version.clone(),
            config_sha256: Some("ab".repeat(32)),
            bzimage_sha256: "cd".repeat(32),
        },
        guest,
        qemu: "qemu-system-x86_64 -machine pc,max-ram-below-4g=1024M -m 2048M".into(),
        memory: MemoryLayout::default(),
        smp: 1,
        append: vec!["shmem.planted_no_replace=1".into()],
        swap_devices: 2,
        swap_size: 512 << 20,
        op_timeout_ms: 120_000,
        // Not UTF-8 on purpose: the console is kept byte for byte.
        console:
            b"[    0.000000] Linux version 6.1\n\xff\xfe garbage\nshmemfuzz-agent: end of run 1\n"
                .to_vec(),
        signature: Some(SIG.into()),
        hits: HitCount { runs: 1, hits: 1 },
    }
}

/// A fresh parent directory and a bundle written into `<parent>/b`.
fn written() -> (tempfile::TempDir, PathBuf) {
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("b");
    Bundle::write(&dir, &contents()).expect("the bundle is written");
    (parent, dir)
}

fn read_err(dir: &Path) -> (BundleError, String) {
    let e = Bundle::read(dir).expect_err("reading the damaged bundle fails");
    // The message as the CLI prints it: the error, then its causes once each.
    let msg = shmemfuzz::error_chain(&e);
    (e, msg)
}

fn manifest(dir: &Path) -> serde_json::Value {
    let bytes = std::fs::read(dir.join(files::MANIFEST)).expect("read bundle.json");
    serde_json::from_slice(&bytes).expect("bundle.json is JSON")
}

fn set_manifest(dir: &Path, v: &serde_json::Value) {
    std::fs::write(
        dir.join(files::MANIFEST),
        serde_json::to_vec_pretty(v).expect("serialize"),
    )
    .expect("write bundle.json");
}

/// Replaces `name` and records its new sha256, as a deliberate edit would.
fn replace_file(dir: &Path, name: &str, bytes: &[u8]) {
    use sha2::Digest;
    std::fs::write(dir.join(name), bytes).expect("write");
    let mut m = manifest(dir);
    m["files"][name] = hex::encode(sha2::Sha256::digest(bytes)).into();
    set_manifest(dir, &m);
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_bundle_round_trips_exactly() {
    let (parent, dir) = written();
    assert_eq!(entries(parent.path()), ["b"], "no work directory is left");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&dir).expect("stat").permissions(),
    );
    assert_eq!(mode & 0o055, 0o055 & !umask(), "not 0700 like a temp dir");
    assert_eq!(
        entries(&dir),
        [
            "bundle.json",
            "console.log",
            "outcome.json",
            "program.prog",
            "records.json",
            "report.txt",
            "repro.c",
            "trace.json"
        ]
    );
    let b = Bundle::read(&dir).expect("reads back");
    // Every field, including PFNs, timings and the non-UTF-8 console.
    assert_eq!(format!("{:?}", b.contents), format!("{:?}", contents()));
    assert_eq!(b.format_version, 1);
    assert_eq!(b.harness, env!("CARGO_PKG_VERSION"));
    assert!(b.created > 1_600_000_000);
    assert_eq!(
        std::fs::read_to_string(dir.join(files::PROGRAM)).expect("read"),
        PROGRAM,
        "the program is stored in canonical form"
    );

    let m = manifest(&dir);
    assert_eq!(m["format"], "shmemfuzz-bundle");
    assert_eq!(m["version"], 1);
    assert_eq!(m["signature"], SIG);
    assert_eq!(m["findings"][0]["kind"], "zone");
    assert_eq!(m["kernel"]["bzimage_sha256"], "cd".repeat(32));
    assert_eq!(m["memory"]["below_4g_mib"], 1024);
    assert_eq!(m["settings"]["page_cluster"], "3");
    assert_eq!(m["runs"], 1);
    assert_eq!(
        m["files"].as_object().expect("files").len(),
        files::CHECKED.len()
    );
    let trace: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(files::TRACE)).expect("read"))
            .expect("trace.json is JSON");
    assert_eq!(trace["format"], "shmemfuzz-trace");
    assert_eq!(trace["ops"][0]["pages"][0]["states"], "RRSR");
    assert_eq!(trace["ops"][0]["pages"][0]["zones"], "DD-N");
}

#[test]
fn a_replay_diffs_against_the_recording() {
    let c = contents();
    assert!(c.diff(&c.outcome.records, &zones()).is_empty());
    let mut replayed = c.outcome.records.clone();
    replayed[6].pages[0].pages[3].pfn = 6000;
    let d = c.diff(&replayed, &zones());
    assert_eq!(d.len(), 1);
    assert_eq!(
        d[0].to_string(),
        "op 6 `check m0 off=0 len=16K`: m0 page 3: recorded resident in Normal, replayed \
         resident in DMA32"
    );

    let mut opts = SessionOptions::new(PathBuf::from("/nonexistent"), Accel::Tcg);
    c.apply_to(&mut opts);
    assert_eq!(opts.append, c.append);
    assert_eq!(opts.op_timeout, Duration::from_secs(120));
    assert_eq!(
        (opts.swap_devices, opts.memory),
        (2, MemoryLayout::default())
    );
    // Ranged delays and spins replay with the recorded draw seed.
    assert_eq!(opts.draws, Some(7));
}

#[test]
fn an_existing_destination_is_replaced_only_when_asked_and_only_if_a_bundle() {
    let (parent, dir) = written();
    let mut other = contents();
    other.hits = HitCount { runs: 5, hits: 3 };
    let e = Bundle::write(&dir, &other).expect_err("refuses");
    assert!(matches!(e, BundleError::Exists(_)), "{e}");
    assert_eq!(Bundle::read(&dir).expect("untouched").contents.hits.runs, 1);
    Bundle::write_replacing(&dir, &other).expect("replaces a bundle");
    assert_eq!(Bundle::read(&dir).expect("reads").contents.hits.runs, 5);
    assert_eq!(entries(parent.path()), ["b"]);

    // Something else is never replaced.
    let precious = parent.path().join("precious");
    std::fs::create_dir(&precious).expect("mkdir");
    std::fs::write(precious.join("notes.txt"), "keep me").expect("write");
    let e = Bundle::write_replacing(&precious, &other).expect_err("refuses");
    assert!(matches!(e, BundleError::NotABundle { .. }), "{e}");
    assert_eq!(
        std::fs::read_to_string(precious.join("notes.txt")).expect("still there"),
        "keep me"
    );
    // An empty directory is fine.
    let empty = parent.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    Bundle::write(&empty, &other).expect("writes into an empty directory");
    Bundle::read(&empty).expect("reads");
}

#[test]
fn a_truncated_file_is_a_checksum_error_naming_it() {
    let (_p, dir) = written();
    let path = dir.join(files::RECORDS);
    let len = std::fs::metadata(&path).expect("stat").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_len(len / 2))
        .expect("truncate");
    let (e, msg) = read_err(&dir);
    assert!(matches!(e, BundleError::Checksum { .. }), "{msg}");
    assert!(msg.contains("records.json is corrupt"), "{msg}");
    assert!(msg.contains("re-record"), "{msg}");
}

#[test]
fn a_truncated_manifest_is_a_json_error_with_its_position() {
    let (_p, dir) = written();
    let path = dir.join(files::MANIFEST);
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("write");
    let (e, msg) = read_err(&dir);
    assert!(matches!(e, BundleError::Json { .. }), "{msg}");
    assert!(msg.contains("bundle.json is malformed"), "{msg}");
    assert!(msg.contains("line "), "{msg}");
}

#[test]
fn a_flipped_byte_is_a_checksum_error_naming_the_file() {
    let (_p, dir) = written();
    let path = dir.join(files::CONSOLE);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[3] ^= 0x20;
    std::fs::write(&path, &bytes).expect("write");
    let (e, msg) = read_err(&dir);
    match e {
        BundleError::Checksum {
            path: p,
            expected,
            actual,
        } => {
            assert_eq!(p, path);
            assert_ne!(expected, actual);
        }
        other => panic!("expected a checksum error, got {other}"),
    }
    assert!(msg.contains("console.log"), "{msg}");
}

#[test]
fn a_missing_file_is_named() {
    let (_p, dir) = written();
    std::fs::remove_file(dir.join(files::TRACE)).expect("rm");
    let (e, msg) = read_err(&dir);
    assert!(
        matches!(&e, BundleError::Missing { file, .. } if file == "trace.json"),
        "{msg}"
    );
    assert!(msg.contains("trace.json is missing"), "{msg}");

    std::fs::remove_file(dir.join(files::MANIFEST)).expect("rm");
    let (e, msg) = read_err(&dir);
    assert!(matches!(e, BundleError::NotABundle { .. }), "{msg}");
    assert!(msg.contains("no bundle.json"), "{msg}");

    let (e, _) = read_err(&dir.join("nope"));
    assert!(matches!(e, BundleError::NotFound(_)));
}

#[test]
fn a_future_version_names_both_versions_and_an_old_one_is_refused() {
    let (_p, dir) = written();
    let mut m = manifest(&dir);
    m["version"] = 7.into();
    // A future version may have fields this one does not know: the version is what matters.
    m["shiny_new_field"] = true.into();
    set_manifest(&dir, &m);
    let (e, msg) = read_err(&dir);
    assert!(
        matches!(
            e,
            BundleError::TooNew {
                found: 7,
                supported: 1,
                ..
            }
        ),
        "{msg}"
    );
    assert!(
        msg.contains("bundle format 7 is newer than this shmemfuzz")
            && msg.contains("understands (≤ 1); upgrade shmemfuzz"),
        "{msg}"
    );

    m["version"] = 0.into();
    set_manifest(&dir, &m);
    let (e, msg) = read_err(&dir);
    assert!(matches!(e, BundleError::TooOld { found: 0, .. }), "{msg}");
}

#[test]
fn garbage_json_is_a_clear_error_naming_the_file() {
    let (_p, dir) = written();
    let good = manifest(&dir);

    std::fs::write(dir.join(files::MANIFEST), b"\x00{{ not json").expect("write");
    let (e, msg) = read_err(&dir);
    assert!(matches!(e, BundleError::Json { .. }), "{msg}");
    assert!(msg.contains("bundle.json"), "{msg}");

    std::fs::write(
        dir.join(files::MANIFEST),
        b"{\"format\": \"something-else\"}",
    )
    .expect("write");
    let (e, msg) = read_err(&dir);
    assert!(matches!(e, BundleError::NotABundle { .. }), "{msg}");
    assert!(msg.contains("something-else"), "{msg}");

    // An unknown field in a version-1 manifest is corruption, not a new feature.
    let mut m = good.clone();
    m["kernel"]["colour"] = "blue".into();
    set_manifest(&dir, &m);
    let (_, msg) = read_err(&dir);
    assert!(
        msg.contains("bundle.json") && msg.contains("unknown field `colour`"),
        "{msg}"
    );

    set_manifest(&dir, &good);
    replace_file(&dir, files::OUTCOME, b"{\"exit\": [1, 2");
    let (e, msg) = read_err(&dir);
    assert!(matches!(e, BundleError::Json { .. }), "{msg}");
    assert!(msg.contains("outcome.json is malformed"), "{msg}");

    let (_p, dir) = written();
    replace_file(&dir, files::RECORDS, b"[{\"index\": \"zero\"}]");
    let (_, msg) = read_err(&dir);
    assert!(msg.contains("records.json is malformed"), "{msg}");
}

#[test]
fn a_program_with_a_syntax_error_reports_line_and_column() {
    let (_p, dir) = written();
    replace_file(
        &dir,
        files::PROGRAM,
        b"memfd m0 size=16K\nmmap v0 m0 off=0 len=16K sideways\n",
    );
    let (e, msg) = read_err(&dir);
    assert!(matches!(e, BundleError::Program { .. }), "{msg}");
    assert!(msg.contains("program.prog: line 2, column 26"), "{msg}");
}

#[test]
fn manifest_and_files_that_disagree_are_refused() {
    let (_p, dir) = written();
    let good = manifest(&dir);

    let mut m = good.clone();
    m["findings"] = serde_json::json!([]);
    set_manifest(&dir, &m);
    let (e, msg) = read_err(&dir);
    assert!(matches!(e, BundleError::Invalid { .. }), "{msg}");
    assert!(msg.contains("outcome.json"), "{msg}");

    let mut m = good.clone();
    m["hits"] = 2.into();
    set_manifest(&dir, &m);
    let (_, msg) = read_err(&dir);
    assert!(msg.contains("2 hits in 1 runs"), "{msg}");

    let mut m = good.clone();
    m["files"]["extra.bin"] = "00".repeat(32).into();
    set_manifest(&dir, &m);
    let (_, msg) = read_err(&dir);
    assert!(msg.contains("extra.bin"), "{msg}");

    set_manifest(&dir, &good);
    Bundle::read(&dir).expect("the original manifest reads again");

    let mut records: Vec<OpRecordV1> = contents().outcome.records.iter().map(Into::into).collect();
    records.swap(1, 2);
    replace_file(
        &dir,
        files::RECORDS,
        &serde_json::to_vec(&records).expect("serialize"),
    );
    let (e, msg) = read_err(&dir);
    assert!(matches!(e, BundleError::Invalid { .. }), "{msg}");
    assert!(
        msg.contains("records.json: record 2 is for operation 1"),
        "{msg}"
    );
}

#[test]
fn a_failed_write_leaves_nothing_behind() {
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("b");

    // Caught before anything is written.
    let mut bad = contents();
    bad.hits = HitCount { runs: 1, hits: 2 };
    let e = Bundle::write(&dir, &bad).expect_err("refused");
    assert!(matches!(e, BundleError::Invalid { .. }), "{e}");
    let mut bad = contents();
    bad.signature = Some("kernel:not seen".into());
    let e = Bundle::write(&dir, &bad).expect_err("refused");
    assert!(e.to_string().contains("kernel:not seen"), "{e}");
    assert!(entries(parent.path()).is_empty());

    // Caught only by reading the written bundle back: a program the parser would never
    // produce (it checks an object that does not exist) does not parse from its text.
    let mut bad = contents();
    bad.program.ops[6] = Op::Check {
        obj: "ghost".into(),
        off: 0,
        len: 4096,
    };
    let e = Bundle::write(&dir, &bad).expect_err("refused");
    assert!(matches!(e, BundleError::Verify { .. }), "{e}");
    let msg = shmemfuzz::error_chain(&e);
    assert!(msg.contains("program.prog: line 8"), "{msg}");
    assert!(
        entries(parent.path()).is_empty(),
        "no partial bundle: {:?}",
        entries(parent.path())
    );

    // And a failed replacement keeps the old bundle.
    Bundle::write(&dir, &contents()).expect("writes");
    let e = Bundle::write_replacing(&dir, &bad).expect_err("refused");
    assert!(matches!(e, BundleError::Verify { .. }), "{e}");
    assert_eq!(entries(parent.path()), ["b"]);
    Bundle::read(&dir).expect("the old bundle is intact");
}

#[test]
fn from_run_hashes_the_kernel_and_reads_the_console() {
    let wd = tempfile::tempdir().expect("tempdir");
    let c = contents();
    let kernel = FetchedKernel {
        id: "debian-6.1.0-56".into(),
        release: c.guest.release.clone(),
        bzimage: wd.path().join("vmlinuz"),
        modules_dir: wd.path().join("modules"),
        config: wd.path().join("config"),
    };
    std::fs::write(&kernel.bzimage, b"not really a kernel").expect("write");
    let console = wd.path().join("console.log");
    std::fs::write(&console, &c.console).expect("write");
    let mut opts = SessionOptions::new(wd.path().to_path_buf(), Accel::Tcg);
    opts.append = c.append.clone();
    let program: Program = c.program.clone();

    let made = BundleContents::from_run(
        &program,
        &c.outcome,
        &kernel,
        &c.guest,
        c.qemu.clone(),
        &console,
        &opts,
    )
    .expect("from_run");
    assert_eq!(made.kernel.config_sha256, None, "no config file: null");
    assert_eq!(
        made.kernel.bzimage_sha256,
        // sha256("not really a kernel")
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            b"not really a kernel"
        ))
    );
    assert_eq!(made.console, c.console);
    assert_eq!(made.signature.as_deref(), Some(SIG));
    assert_eq!(made.hits, HitCount { runs: 1, hits: 1 });
    assert_eq!(made.op_timeout_ms, 120_000);
    let clean = made.clone().about(None);
    let out = wd.path().join("bundle");
    Bundle::write(&out, &clean).expect("writes");
    assert_eq!(Bundle::read(&out).expect("reads").contents.signature, None);

    std::fs::write(&kernel.config, b"CONFIG_SHMEM=y\n").expect("write");
    let made = BundleContents::from_run(
        &program,
        &c.outcome,
        &kernel,
        &c.guest,
        c.qemu.clone(),
        &console,
        &opts,
    )
    .expect("from_run");
    assert!(made.kernel.config_sha256.is_some());

    let e = BundleContents::from_run(
        &program,
        &c.outcome,
        &kernel,
        &c.guest,
        c.qemu.clone(),
        &wd.path().join("no-console.log"),
        &opts,
    )
    .expect_err("no console");
    assert!(e.to_string().contains("no-console.log"), "{e}");
}

/// The process umask (read from /proc, so without changing it).
fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        .expect("Umask line")
}

#[test]
fn records_may_skip_operations_a_cut_off_run_never_finished_but_not_go_back() {
    let parent = tempfile::tempdir().expect("tempdir");
    let mut c = contents();
    // A run ended inside a section: operation 3 never finished, 4 did.
    c.outcome.records.remove(3);
    let dir = parent.path().join("gap");
    Bundle::write(&dir, &c).expect("a gap is a cut-off run, not an error");
    let back = Bundle::read(&dir).expect("reads back");
    assert_eq!(back.contents.outcome.records, c.outcome.records);
    // Out of order (or twice) is refused before anything is written.
    let mut bad = contents();
    bad.outcome.records.swap(2, 3);
    let err = Bundle::write(&parent.path().join("bad"), &bad).expect_err("out of order");
    assert!(
        err.to_string().contains("in order, at most one each"),
        "{err}"
    );
    assert!(!parent.path().join("bad").exists());
}

#[test]
fn a_fifo_in_a_bundle_is_refused_at_once_naming_it() {
    let (_p, dir) = written();
    let console = dir.join(files::CONSOLE);
    std::fs::remove_file(&console).expect("rm");
    nix::unistd::mkfifo(&console, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    // No writer ever opens the FIFO: a blocking read would hang the test (and the CLI).
    let (_, msg) = read_err(&dir);
    assert!(msg.contains("console.log is a FIFO"), "{msg}");
    let d = dir.to_str().expect("utf-8");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shmemfuzz"))
        .args(["export-c", d])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("console.log is a FIFO (named pipe), not a regular file"),
        "{err}"
    );
}

#[test]
fn an_unknown_key_in_a_record_or_the_verdict_is_refused_naming_the_file() {
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit, &str); 5] = [
        (files::RECORDS, |v| v[0]["surprise"] = 1.into(), "surprise"),
        (
            files::RECORDS,
            |v| v[6]["pages"][0]["surprise"] = 1.into(),
            "surprise",
        ),
        (
            files::OUTCOME,
            |v| v["verdict"]["surprise"] = 1.into(),
            "surprise",
        ),
        (
            files::OUTCOME,
            |v| v["verdict"]["findings"][0]["surprise"] = 1.into(),
            "surprise",
        ),
        (
            files::OUTCOME,
            |v| v["teardown"]["after"]["surprise"] = 1.into(),
            "surprise",
        ),
    ];
    for (name, edit, key) in cases {
        let (_p, dir) = written();
        let bytes = std::fs::read(dir.join(name)).expect("read");
        let mut v: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
        edit(&mut v);
        replace_file(
            &dir,
            name,
            &serde_json::to_vec_pretty(&v).expect("serialize"),
        );
        let (e, msg) = read_err(&dir);
        assert!(matches!(e, BundleError::Json { .. }), "{name}: {msg}");
        assert!(msg.contains(name), "{name}: the file is named: {msg}");
        assert!(
            msg.contains(&format!("unknown field `{key}`")),
            "{name}: {msg}"
        );
    }
}
