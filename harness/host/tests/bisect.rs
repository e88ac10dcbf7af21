//! Bisection on real kernels (a VM tier of `ci/test.sh`; docs/testing.md). `#[ignore]`d so a
//! plain `cargo test` stays fast: run with
//! `cargo test -p shmemfuzz --test bisect -- --ignored --nocapture --test-threads 1`.
//! Measured on 2 cores: 11 min from nothing (history 69 s, first kernel build 462 s), about
//! 2–6 min with the history and build directory cached.
//!
//! - The synthetic history (`tests/data/synthetic-history.sh`): a git repository over
//!   Debian's linux-source-6.1 with eight commits to mm/shmem.c, one an unconditional
//!   regression, one that does not build and two whose image equals an earlier one. A
//!   bundle recorded on the bad end is bisected, stopped by `--max-steps`, resumed, killed
//!   (SIGKILL) in the middle of a step and resumed again; the answer must be the regression
//!   commit, the broken commit must be skipped and identical images must reuse their verdict.
//! - The Debian axis: the same bundle over three 6.1 package versions, every one tested.

mod fixture;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use fixture::Workdir;
use shmemfuzz::context::Context;

const REGRESSION: &str = "shmem: skip the zone check of swapped-in folios";
const BROKEN: &str = "shmem: tidy the no-op helper (breaks the build)";
const FIX: &str = "shmem: fix the build";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the shmemfuzz CLI in `dir`; prints and returns its exit code and output.
fn cli(args: &[&str], dir: &Path) -> (Option<i32>, String) {
    let t = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_shmemfuzz"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("shmemfuzz runs");
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    eprintln!(
        "$ shmemfuzz {} ({:.0} s, exit {:?})\n{out}",
        args.join(" "),
        t.elapsed().as_secs_f64(),
        o.status.code()
    );
    (o.status.code(), out)
}

fn git(repo: &Path, args: &[&str]) -> String {
    // GIT_DIR & co. from a calling git (rebase --exec) would redirect us to its repository.
    let o = Command::new("git")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// The synthetic history, made once and cached next to the build directories.
fn synthetic_history() -> PathBuf {
    let ctx = Context::new().expect("catalog loads");
    let cache = ctx.cache_dir.clone();
    let src = std::fs::read_dir(cache.join("src"))
        .expect("the linux-source-6.1 cache (built by the kbuild tests or `--kernel src-6.1`)")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.is_dir()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("linux-source-6.1_"))
        })
        .expect("an unpacked linux-source-6.1: run `shmemfuzz run … --kernel src-6.1` once");
    let dest = cache.join("build/synthetic-history");
    let t = Instant::now();
    let st = Command::new(root().join("harness/host/tests/data/synthetic-history.sh"))
        .arg(&src)
        .arg(&dest)
        .status()
        .expect("the script runs");
    assert!(st.success(), "synthetic-history.sh failed");
    eprintln!(
        "synthetic history ready in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    dest
}

/// The commit with `subject` in the synthetic history.
fn commit_of(repo: &Path, subject: &str) -> String {
    let log = git(repo, &["log", "--format=%H %s", "synth-good..synth-bad"]);
    log.lines()
        .find_map(|l| {
            l.split_once(' ')
                .filter(|(_, s)| *s == subject)
                .map(|(c, _)| c.to_string())
        })
        .unwrap_or_else(|| panic!("no commit `{subject}` in:\n{log}"))
}

/// Builds the bad end with `kernel build` and records dma32-willneed on it into `<dir>/b`.
fn record_on_bad_end(repo: &Path, dir: &Path) {
    let r = repo.to_str().expect("utf-8");
    let (code, out) = cli(
        &["kernel", "build", "--src", r, "--rev", "synth-bad", "-j2"],
        dir,
    );
    assert_eq!(code, Some(0), "{out}");
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("kernel "))
        .expect("the id is printed")
        .to_string();
    assert!(
        id.starts_with(&format!(
            "tree-{}-",
            &git(repo, &["rev-parse", "synth-bad"])[..12]
        )),
        "{id}"
    );
    let prog = root().join("examples/dma32-willneed.prog");
    let (code, out) = cli(
        &[
            "run",
            prog.to_str().expect("utf-8"),
            "--kernel",
            &id,
            "--bundle",
            "b",
        ],
        dir,
    );
    assert_eq!(
        code,
        Some(1),
        "the regression reproduces on the bad end: {out}"
    );
    assert!(out.contains("zone:memfd:"), "{out}");
}

/// Starts `shmemfuzz args` in `dir` and SIGKILLs it once `bisect/state.json` holds `steps`
/// steps (it is then building or replaying the next one). Its make and QEMU die with it
/// (PR_SET_PDEATHSIG).
fn killed_after_steps(args: &[&str], dir: &Path, steps: usize) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shmemfuzz"))
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("shmemfuzz starts");
    let state = dir.join("bisect/state.json");
    let deadline = Instant::now() + std::time::Duration::from_secs(1800);
    loop {
        let done = std::fs::read_to_string(&state)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["steps"].as_array().map(Vec::len))
            .unwrap_or(0);
        if done >= steps {
            break;
        }
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the bisection ended before {steps} steps"
        );
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    eprintln!("killed the bisection after {steps} steps");
    // Give QEMU and make their death signal.
    std::thread::sleep(std::time::Duration::from_secs(3));
}

#[test]
#[ignore = "builds kernels and boots them: 10 minutes from nothing, 2 cached"]
fn bisect_finds_the_planted_commit_in_a_synthetic_history_across_an_interruption() {
    let started = Instant::now();
    let repo = synthetic_history();
    let wd = Workdir::new("bisect-git");
    record_on_bad_end(&repo, wd.path());
    let r = repo.to_str().expect("utf-8");
    let args = [
        "bisect",
        "--src",
        r,
        "--good",
        "synth-good",
        "--bad",
        "synth-bad",
        "--path",
        "mm/",
        "--repro",
        "b",
        "--runs",
        "3",
        "--workdir",
        "bisect",
        "-j2",
    ];
    let mut first = args.to_vec();
    first.extend(["--max-steps", "3"]);
    let (code, out) = cli(&first, wd.path());
    assert_eq!(code, Some(3), "stopped by --max-steps: {out}");
    assert!(
        out.contains("run the same command again to resume"),
        "{out}"
    );
    // Killed in the middle of a step (SIGKILL: no chance to save anything more).
    killed_after_steps(&args, wd.path(), 4);
    let (code, out) = cli(&args, wd.path());
    assert_eq!(code, Some(1), "a first bad commit: {out}");
    assert!(out.contains("resuming: 4 step(s) already done"), "{out}");
    let culprit = commit_of(&repo, REGRESSION);
    assert!(
        out.contains(&format!("first bad: {culprit} {REGRESSION}")),
        "{out}"
    );
    assert!(out.contains("confidence "), "{out}");

    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(wd.path().join("bisect/state.json")).expect("state.json"),
    )
    .expect("json");
    let revs: Vec<String> = state["revs"]
        .as_array()
        .expect("revs")
        .iter()
        .map(|r| r["rev"].as_str().expect("rev").to_string())
        .collect();
    let step_of = |commit: &str| {
        let i = revs.iter().position(|r| r == commit).expect("in range");
        state["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .find(|s| s["index"].as_u64() == Some(i as u64))
            .cloned()
    };
    let broken = step_of(&commit_of(&repo, BROKEN)).expect("the broken commit was visited");
    assert_eq!(broken["verdict"], "build-failed", "{broken}");
    let fix = step_of(&commit_of(&repo, FIX)).expect("the fix was visited");
    assert!(
        fix["reused_from"].is_string(),
        "the fix rebuilds the image of its parent's parent: {fix}"
    );
    let log = std::fs::read_to_string(wd.path().join("bisect/bisect.log")).expect("log");
    eprintln!("bisect.log:\n{log}");
    eprintln!("whole test {:.0} s", started.elapsed().as_secs_f64());
}

#[test]
#[ignore = "fetches three Debian kernels and boots each three times"]
fn bisect_over_debian_versions_gives_a_verdict_for_each() {
    let repo = synthetic_history();
    let wd = Workdir::new("bisect-deb");
    record_on_bad_end(&repo, wd.path());
    let started = Instant::now();
    let (code, out) = cli(
        &[
            "bisect",
            "--debian",
            "6.1.0-54..debian-6.1",
            "--repro",
            "b",
            "--runs",
            "2",
            "--every",
            "--no-append",
            "--workdir",
            "deb",
        ],
        wd.path(),
    );
    eprintln!("Debian bisection {:.0} s", started.elapsed().as_secs_f64());
    // Debian's kernels replace the folio: the bad end does not reproduce, exit 0.
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("does not reproduce the signature"), "{out}");
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(wd.path().join("deb/state.json")).expect("state.json"),
    )
    .expect("json");
    let steps = state["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 3, "a verdict for each version: {state}");
    for s in steps {
        assert_eq!(s["verdict"], "good", "{s}");
        assert_eq!(s["tally"]["runs"], 2, "{s}");
    }
}
