//! Ctrl-C on the real binary (a VM tier of `ci/test.sh`; docs/testing.md). Each command is
//! started in its own process group with `TMPDIR` inside the test's directory, and SIGINT
//! goes to that group, as a terminal's Ctrl-C would. Then it must exit 130 within a bound,
//! leave no QEMU (none mentions the test's directory), no `shmemfuzz-*` work directory, and
//! only bundles that read back whole (`Bundle::read`), corpus entries whose name is their
//! SHA-1 (libFuzzer's naming: a torn write would not match), and a bisection state that
//! resumes to the answer of an uninterrupted run.
//!
//! - `run --repeat`: interrupted while the guest boots (SIGINT: 130; SIGTERM: 143), after a
//!   finding was recorded, and by a double Ctrl-C (exits at once; QEMU still dies);
//! - `minimize` (interrupted among its candidates: no `.min` bundle) and `bisect --debian`
//!   over three cached 6.1 packages (interrupted in its second step, then resumed);
//! - `fuzz` on Debian 6.1 once the worker has run inputs (builds the fuzz target first, as
//!   `ci/fuzz-smoke.sh` would: ~3 min fresh, seconds cached).
//!
//! `cargo test -p shmemfuzz --test vm_interrupt -- --ignored --nocapture`

mod fixture;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fixture::{qemu_processes_mentioning, Workdir};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use shmemfuzz::findings::bundle::Bundle;

/// How long an interrupted command may take to exit (a campaign: its workers' grace, 15 s,
/// SIGTERM to SIGKILL, 5 s, and a margin).
const EXIT_BOUND: Duration = Duration::from_secs(40);
/// How long to wait for a command to reach the moment it is interrupted at (kernel
/// preparation and the fuzz target's build included).
const REACH_BOUND: Duration = Duration::from_secs(600);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A running `shmemfuzz`, leading its own process group, its output collected.
struct Running {
    child: Child,
    output: Arc<Mutex<String>>,
    what: String,
}

/// Starts `shmemfuzz args` in `wd` with `TMPDIR=<wd>/tmp`.
/// [`start`], then wait until its QEMU is up (the guest boots, the agent is not ready yet).
fn start_booting(args: &[&str], wd: &Path) -> Running {
    let mut r = start(args, wd);
    r.wait_until("QEMU started", |_| {
        !qemu_processes_mentioning(wd).is_empty()
    });
    r
}

fn start(args: &[&str], wd: &Path) -> Running {
    let tmp = wd.join("tmp");
    std::fs::create_dir_all(&tmp).expect("tmp");
    let mut child = Command::new(env!("CARGO_BIN_EXE_shmemfuzz"))
        .args(args)
        .current_dir(wd)
        .env("TMPDIR", &tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("shmemfuzz starts");
    let output = Arc::new(Mutex::new(String::new()));
    for pipe in [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let out = Arc::clone(&output);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
                o.push_str(&line);
                o.push('\n');
            }
        });
    }
    Running {
        child,
        output,
        what: format!("shmemfuzz {}", args.join(" ")),
    }
}

impl Running {
    fn output(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits (bounded) until `cond` holds; panics if the command ends first.
    fn wait_until(&mut self, what: &str, mut cond: impl FnMut(&str) -> bool) {
        let deadline = Instant::now() + REACH_BOUND;
        loop {
            if cond(&self.output()) {
                eprintln!("reached: {what}");
                return;
            }
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                panic!(
                    "{} ended ({st}) before {what}:\n{}",
                    self.what,
                    self.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "never reached {what}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends SIGINT to the group and returns the exit code and how long the exit took.
    fn interrupt(self) -> (Option<i32>, Duration, String) {
        self.signal_times(Signal::SIGINT, 1)
    }

    /// Sends `signal` `times` times to the group, 5 ms apart; as [`Self::interrupt`].
    fn signal_times(mut self, signal: Signal, times: usize) -> (Option<i32>, Duration, String) {
        let t = Instant::now();
        for i in 0..times {
            if i > 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
            killpg(Pid::from_raw(self.child.id() as i32), signal).expect("signal");
        }
        let status = loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                break st;
            }
            if t.elapsed() > EXIT_BOUND {
                let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
                let _ = self.child.wait();
                panic!(
                    "{} did not exit within {EXIT_BOUND:?} of {signal}:\n{}",
                    self.what,
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let took = t.elapsed();
        // The pipes close with the process; let the readers finish.
        std::thread::sleep(Duration::from_millis(200));
        let out = self.output();
        eprintln!(
            "{}: exit {:?} {took:.1?} after {signal}\n{out}",
            self.what,
            status.code()
        );
        (status.code(), took, out)
    }
}

/// Runs `shmemfuzz args` in `wd` to its end; exit code and output.
fn run_to_end(args: &[&str], wd: &Path) -> (Option<i32>, String) {
    let t = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_shmemfuzz"))
        .args(args)
        .current_dir(wd)
        .env("TMPDIR", wd.join("tmp"))
        .output()
        .expect("shmemfuzz runs");
    let out = fixture::text(&o);
    eprintln!(
        "$ shmemfuzz {} ({:.0?}, exit {:?})",
        args.join(" "),
        t.elapsed(),
        o.status.code()
    );
    (o.status.code(), out)
}

/// What an interrupted command must leave: exit 130 in time, no QEMU mentioning `wd`, no
/// `shmemfuzz-*` directory in its `TMPDIR`.
fn assert_clean_interruption(code: Option<i32>, out: &str, wd: &Path) {
    assert_clean_stop(Signal::SIGINT, code, out, wd);
}

/// [`assert_clean_interruption`] for `signal`: exit 128 + its number.
fn assert_clean_stop(signal: Signal, code: Option<i32>, out: &str, wd: &Path) {
    assert_eq!(code, Some(128 + signal as i32), "{out}");
    assert!(out.contains(&format!("interrupted by {signal}")), "{out}");
    // The harness reaps its QEMUs before it exits; a worker's QEMU dies by its death signal
    // (asynchronously): a moment's grace, then none may be left.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !qemu_processes_mentioning(wd).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let stray = qemu_processes_mentioning(wd);
    for pid in &stray {
        let _ = nix::sys::signal::kill(Pid::from_raw(*pid), Signal::SIGKILL);
    }
    assert!(stray.is_empty(), "QEMU left running: {stray:?}");
    let left: Vec<String> = std::fs::read_dir(wd.join("tmp"))
        .expect("tmp")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("shmemfuzz-"))
        .collect();
    assert!(left.is_empty(), "work directories left in TMPDIR: {left:?}");
}

/// `dir` is absent or a bundle that reads back whole; no half-written bundle beside it.
fn assert_bundle_whole_or_absent(dir: &Path) -> bool {
    let parent = dir.parent().expect("parent");
    let partial: Vec<_> = std::fs::read_dir(parent)
        .expect("parent")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".partial-bundle-"))
        .collect();
    assert!(partial.is_empty(), "half-written bundles left: {partial:?}");
    if !dir.exists() {
        return false;
    }
    Bundle::read(dir).unwrap_or_else(|e| panic!("{}: {e:#}", dir.display()));
    true
}

fn prog(name: &str) -> String {
    fixture::examples_dir()
        .join(name)
        .to_string_lossy()
        .into_owned()
}

#[test]
#[ignore = "boots Debian 6.1 under QEMU twice: ~1 min"]
fn run_repeat_interrupted_while_booting_and_between_runs() {
    let wd = Workdir::new("int-run");
    let dir = wd.path();
    // 1. While the guest boots: QEMU is up, the agent not yet ready.
    let pageout = prog("pageout-roundtrip.prog");
    let args = [
        "run",
        &pageout,
        "--kernel",
        "debian-6.1",
        "--repeat",
        "1000",
    ];
    let r = start_booting(&args, dir);
    let (code, _, out) = r.interrupt();
    assert!(
        !out.contains("run 1/"),
        "interrupted before the first run ended: {out}"
    );
    assert_clean_interruption(code, &out, dir);

    // 1b. SIGTERM (a service manager, `timeout`): the same, with 143.
    let r = start_booting(&args, dir);
    let (code, _, out) = r.signal_times(Signal::SIGTERM, 1);
    assert_clean_stop(Signal::SIGTERM, code, &out, dir);

    // 2. After a finding was recorded, in the runs that follow (the bundle is rewritten with
    // the hit count as it goes; whatever is there must read back whole).
    let soft = prog("soft-offline-dma32.prog");
    let args = [
        "run",
        &soft,
        "--kernel",
        "debian-6.1",
        "--repeat",
        "1000",
        "--keep-going",
        "--bundle",
        "b",
    ];
    let mut r = start(&args, dir);
    r.wait_until("three runs", |o| o.contains("run 3/1000"));
    let (code, _, out) = r.interrupt();
    assert_clean_interruption(code, &out, dir);
    assert!(
        assert_bundle_whole_or_absent(&dir.join("b")),
        "the first finding's bundle is written at once: {out}"
    );

    // 3. Ctrl-C twice while booting: the second exits at once, without cleaning up (unless
    // the first had already finished); QEMU still dies with the harness (its death signal).
    let args = [
        "run",
        &pageout,
        "--kernel",
        "debian-6.1",
        "--repeat",
        "1000",
    ];
    let r = start_booting(&args, dir);
    let (code, _, out) = r.signal_times(Signal::SIGINT, 2);
    assert_eq!(code, Some(130), "{out}");
    eprintln!(
        "the second Ctrl-C {}",
        if out.contains("work directories removed") {
            "came after the cleanup"
        } else {
            "exited at once"
        }
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !qemu_processes_mentioning(dir).is_empty() {
        assert!(Instant::now() < deadline, "QEMU outlived a hard exit");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "boots Debian 6.1 packages under QEMU about ten times: ~2.5 min"]
fn minimize_and_bisect_interrupted_leave_nothing_half_done_and_the_bisection_resumes() {
    let wd = Workdir::new("int-min");
    let dir = wd.path();
    std::fs::create_dir_all(dir.join("tmp")).expect("tmp");
    // The example plus operations of no consequence that take 0.8 s each, so that
    // minimizing takes long enough to be interrupted among its candidates (the bare example
    // minimizes in under 4 s, boot included).
    let mut text = std::fs::read_to_string(prog("soft-offline-dma32.prog")).expect("example");
    for i in 0..8 {
        text.push_str(&format!(
            "memfd x{i} size=64K\nwrite x{i} off=0 len=64K seed={i}\ndelay 800ms\n"
        ));
    }
    let soft = dir.join("padded.prog");
    std::fs::write(&soft, text).expect("write the program");
    let soft = soft.to_string_lossy().into_owned();
    let (code, out) = run_to_end(
        &["run", &soft, "--kernel", "debian-6.1", "--bundle", "b"],
        dir,
    );
    assert_eq!(
        code,
        Some(1),
        "the soft-offline finding on stock 6.1: {out}"
    );

    // minimize: interrupted among its candidates, it writes nothing.
    let mut m = start(&["minimize", "b", "--out", "b.min"], dir);
    m.wait_until("minimizing (QEMU up for 5 s)", {
        let mut since: Option<Instant> = None;
        move |_| {
            if qemu_processes_mentioning(dir).is_empty() {
                return false;
            }
            since.get_or_insert_with(Instant::now).elapsed() > Duration::from_secs(5)
        }
    });
    let (code, _, out) = m.interrupt();
    assert_clean_interruption(code, &out, dir);
    assert!(
        !assert_bundle_whole_or_absent(&dir.join("b.min")),
        "an interrupted minimize wrote {out}"
    );

    // bisect over three Debian packages, every one tested: first uninterrupted, then
    // interrupted during its second step and resumed; both must say the same.
    let bisect = |workdir: &'static str| {
        [
            "bisect",
            "--debian",
            "6.1.0-54..debian-6.1",
            "--repro",
            "b",
            "--runs",
            "1",
            "--every",
            "--workdir",
            workdir,
        ]
    };
    let (ref_code, ref_out) = run_to_end(&bisect("ref"), dir);
    assert!(matches!(ref_code, Some(0..=2)), "{ref_out}");
    let mut b = start(&bisect("int"), dir);
    let state = dir.join("int/state.json");
    b.wait_until("the second step", |_| steps(&state).len() == 1);
    std::thread::sleep(Duration::from_secs(2));
    let (code, _, out) = b.interrupt();
    assert_clean_interruption(code, &out, dir);
    let saved = steps(&state);
    assert!(saved.len() <= 2, "{saved:?}");
    let (code, out) = run_to_end(&bisect("int"), dir);
    assert_eq!(code, ref_code, "{out}");
    let verdicts = |s: &[serde_json::Value]| -> Vec<(u64, String)> {
        let mut v: Vec<_> = s
            .iter()
            .map(|s| (s["index"].as_u64().unwrap_or(99), s["verdict"].to_string()))
            .collect();
        v.sort();
        v
    };
    let (resumed, reference) = (steps(&state), steps(&dir.join("ref/state.json")));
    assert_eq!(verdicts(&resumed), verdicts(&reference));
    assert_eq!(resumed.len(), 3, "a verdict for each version");
    assert_eq!(outcome(&state), outcome(&dir.join("ref/state.json")));
}

fn state_json(path: &Path) -> serde_json::Value {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn steps(path: &Path) -> Vec<serde_json::Value> {
    state_json(path)["steps"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn outcome(path: &Path) -> serde_json::Value {
    state_json(path)["outcome"].clone()
}

#[test]
#[ignore = "builds the fuzz target (~3 min fresh) and runs a campaign on Debian 6.1: ~1 min cached"]
fn a_fuzz_campaign_interrupted_mid_run_stops_its_workers_and_keeps_whole_files() {
    let wd = Workdir::new("int-fuzz");
    let dir = wd.path();
    let seeds = root().join("fuzz/corpus/shmem_ops");
    let seeds = seeds.to_string_lossy();
    let args = [
        "fuzz",
        "--kernel",
        "debian-6.1",
        "--duration",
        "10m",
        "--corpus",
        "corpus",
        "--seeds",
        &seeds,
        "--out",
        "out",
    ];
    let mut f = start(&args, dir);
    let stats = dir.join("out/stats/w0-0.json");
    let log = dir.join("out/logs/w0-0.log");
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    // Past the seeds (libFuzzer's INITED), in the mutation loop, a few runs on.
    let mut inited_at = None;
    f.wait_until("the worker fuzzing", |_| {
        let runs = state_json(&stats)["runs"].as_u64().unwrap_or(0);
        if inited_at.is_none() && log_text().contains("INITED") {
            inited_at = Some(runs);
        }
        inited_at.is_some_and(|r| runs >= r + 3)
    });
    let (code, took, out) = f.interrupt();
    assert_clean_interruption(code, &out, dir);
    assert!(took < Duration::from_secs(30), "{took:?}");
    // Stopped between two runs (SIGUSR1), not by SIGTERM in the middle of one.
    assert!(
        log_text().contains("exiting as requested"),
        "the worker did not take the graceful exit:\n{}",
        log_text()
    );
    assert!(
        out.contains("report: "),
        "the summary and report still come: {out}"
    );
    // libFuzzer names a corpus entry by its content's SHA-1: a torn write would not match.
    let corpus = dir.join("corpus");
    for entry in std::fs::read_dir(&corpus).expect("corpus").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            !name.starts_with('.'),
            "a temporary file in the corpus: {name}"
        );
        if name.len() != 40 {
            continue;
        }
        let o = Command::new("sha1sum")
            .arg(entry.path())
            .output()
            .expect("sha1sum");
        let sum = String::from_utf8_lossy(&o.stdout);
        assert!(
            sum.starts_with(&name),
            "corpus entry {name} is not whole: {sum}"
        );
    }
    let bundles = dir.join("out/bundles");
    for entry in std::fs::read_dir(&bundles).expect("bundles").flatten() {
        assert!(assert_bundle_whole_or_absent(&entry.path()));
    }
    // The campaign's own statistics are whole too (written by rename).
    let text = std::fs::read_to_string(&stats).expect("stats");
    serde_json::from_str::<serde_json::Value>(&text).expect("whole stats");
}
