//! Hostile input to the CLI (issue 17), no VM: every refusal is an exit 2 with a message that
//! names what is wrong, and no input is ever destroyed.

mod fixture;

use std::path::Path;
use std::process::Command;

/// Runs the CLI in the test's own directory: exit code and all it printed.
fn shmemfuzz(args: &[&str]) -> (Option<i32>, String) {
    let here = std::env::current_dir().expect("a working directory");
    let out = fixture::shmemfuzz(args, &here);
    (out.status.code(), fixture::text(&out))
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

const PROGRAM: &str = "memfd m0 size=4K\nwrite m0 off=0 len=4K seed=1\ncheck m0 off=0 len=4K\n";

#[test]
fn export_c_never_writes_over_its_input_or_an_existing_file_without_force() {
    let wd = tempfile::tempdir().expect("tempdir");
    let prog = wd.path().join("p.prog");
    std::fs::write(&prog, PROGRAM).expect("write");

    // The program itself, also by another spelling of its path.
    for out in [prog.clone(), wd.path().join(".").join("p.prog")] {
        let (code, msg) = shmemfuzz(&["export-c", s(&prog), "-o", s(&out), "--force"]);
        assert_eq!(code, Some(2), "{msg}");
        assert!(msg.contains("it is the input"), "{msg}");
        assert_eq!(std::fs::read_to_string(&prog).expect("read"), PROGRAM);
    }

    // A file inside the input bundle directory.
    let bundle = wd.path().join("bundle");
    std::fs::create_dir(&bundle).expect("mkdir");
    std::fs::write(bundle.join("program.prog"), PROGRAM).expect("write");
    let inside = bundle.join("program.prog");
    let (code, msg) = shmemfuzz(&["export-c", s(&bundle), "-o", s(&inside), "--force"]);
    assert_eq!(code, Some(2), "{msg}");
    assert!(msg.contains("inside the input bundle"), "{msg}");
    assert_eq!(std::fs::read_to_string(&inside).expect("read"), PROGRAM);

    // A new file is written; an existing one only with --force.
    let c = wd.path().join("repro.c");
    let (code, msg) = shmemfuzz(&["export-c", s(&prog), "-o", s(&c)]);
    assert_eq!(code, Some(0), "{msg}");
    assert!(std::fs::read_to_string(&c)
        .expect("read")
        .contains("int main"));
    std::fs::write(&c, "precious").expect("write");
    let (code, msg) = shmemfuzz(&["export-c", s(&prog), "-o", s(&c)]);
    assert_eq!(code, Some(2), "{msg}");
    assert!(msg.contains("--force"), "{msg}");
    assert_eq!(std::fs::read_to_string(&c).expect("read"), "precious");
    let (code, msg) = shmemfuzz(&["export-c", s(&prog), "-o", s(&c), "--force"]);
    assert_eq!(code, Some(0), "{msg}");
    assert!(std::fs::read_to_string(&c)
        .expect("read")
        .contains("int main"));
    // No temporary file is left beside it.
    let left: Vec<_> = std::fs::read_dir(wd.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(left.len(), 3, "{left:?}");
}

#[test]
fn numbers_out_of_range_are_refused_at_parse_time_naming_the_flag() {
    let wd = tempfile::tempdir().expect("tempdir");
    let prog = wd.path().join("p.prog");
    std::fs::write(&prog, PROGRAM).expect("write");
    let p = s(&prog);
    let cases: &[(&[&str], &str)] = &[
        (
            &["run", p, "--op-timeout", "18446744073709551615"],
            "--op-timeout",
        ),
        (&["run", p, "--op-timeout", "0"], "--op-timeout"),
        (&["run", p, "--smp", "0"], "--smp"),
        (&["run", p, "--repeat", "0"], "--repeat"),
        (&["fuzz", "--jobs", "0"], "--jobs"),
        (&["fuzz", "--smp", "0"], "--smp"),
        (&["fuzz", "--duration", "0s"], "--duration"),
        (&["fuzz", "--duration", "100000000000d"], "--duration"),
        (
            &["bisect", "--src", ".", "--repro", p, "--runs", "0"],
            "--runs",
        ),
        (
            &["bisect", "--src", ".", "--repro", p, "--max-steps", "0"],
            "--max-steps",
        ),
        (&["bisect", "--src", ".", "--repro", p, "-j", "0"], "--jobs"),
        (
            &["kernel", "build", "--src", ".", "--timeout", "0"],
            "--timeout",
        ),
        (&["kernel", "build", "--src", ".", "-j", "0"], "--jobs"),
        (&["minimize", p, "--max-runs", "0"], "--max-runs"),
        (&["minimize", p, "--max-time", "0"], "--max-time"),
        (&["minimize", p, "--hit-rate", "1.5"], "--hit-rate"),
        (&["replay", p, "--repeat", "0"], "--repeat"),
        (&["bench", "boot", "--runs", "0"], "--runs"),
        (&["bench", "boot", "--smp", "0"], "--smp"),
        (&["bench", "exec", "--rounds", "0"], "--rounds"),
        (&["bench", "find", "--limit", "0s"], "--limit"),
    ];
    for (args, flag) in cases {
        let (code, msg) = shmemfuzz(args);
        assert_eq!(code, Some(2), "{args:?}: {msg}");
        assert!(
            msg.contains(&format!("'{flag}")),
            "{args:?}: the message names {flag}: {msg}"
        );
    }
}

#[test]
fn a_message_names_each_cause_once_and_no_internal_names() {
    let wd = tempfile::tempdir().expect("tempdir");
    // An output in a directory that does not exist: the OS error is printed once.
    let prog = wd.path().join("p.prog");
    std::fs::write(&prog, PROGRAM).expect("write");
    let out = wd.path().join("missing/repro.c");
    let (code, msg) = shmemfuzz(&["export-c", s(&prog), "-o", s(&out)]);
    assert_eq!(code, Some(2), "{msg}");
    assert!(msg.contains("writing"), "{msg}");
    assert_eq!(msg.matches("os error 2)").count(), 1, "{msg}");
    // bundle.json is a directory: said once, plainly.
    let bundle = wd.path().join("b");
    std::fs::create_dir_all(bundle.join("bundle.json")).expect("mkdir");
    let (code, msg) = shmemfuzz(&["replay", s(&bundle)]);
    assert_eq!(code, Some(2), "{msg}");
    assert_eq!(
        msg.to_lowercase().matches("is a directory").count(),
        1,
        "{msg}"
    );
    // A truncated bundle.json: serde's position once.
    let bundle = wd.path().join("c");
    std::fs::create_dir(&bundle).expect("mkdir");
    std::fs::write(
        bundle.join("bundle.json"),
        "{\"format\": \"shmemfuzz-bundle\"",
    )
    .expect("write");
    let (code, msg) = shmemfuzz(&["export-c", s(&bundle)]);
    assert_eq!(code, Some(2), "{msg}");
    assert!(msg.contains("bundle.json is malformed"), "{msg}");
    assert_eq!(msg.matches("EOF while parsing").count(), 1, "{msg}");
    // A test-only operation: the flag to pass, not a struct field.
    let prog = wd.path().join("t.prog");
    std::fs::write(&prog, "memfd m0 size=4K\ncorrupt m0 off=0 len=4K seed=1\n").expect("write");
    let (code, msg) = shmemfuzz(&["export-c", s(&prog)]);
    assert_eq!(code, Some(2), "{msg}");
    assert!(msg.contains("--allow-test-ops"), "{msg}");
    assert!(!msg.contains("ExportOptions"), "{msg}");
}

#[test]
fn corpus_add_writes_nothing_when_one_program_is_bad() {
    let wd = tempfile::tempdir().expect("tempdir");
    let good = wd.path().join("good.prog");
    std::fs::write(&good, PROGRAM).expect("write");
    let bad = wd.path().join("bad.prog");
    std::fs::write(&bad, "memfd m0 size=4K\nfrobnicate m0\n").expect("write");
    let corpus = wd.path().join("corpus");
    let (code, msg) = shmemfuzz(&["corpus", "add", s(&good), s(&bad), "--dir", s(&corpus)]);
    assert_eq!(code, Some(2), "{msg}");
    assert!(msg.contains("bad.prog: line 2, column 1"), "{msg}");
    assert!(msg.contains("nothing was written"), "{msg}");
    let written = std::fs::read_dir(&corpus).map_or(0, |d| d.count());
    assert_eq!(written, 0, "the good program was not written either");
    let (code, msg) = shmemfuzz(&["corpus", "add", s(&good), "--dir", s(&corpus)]);
    assert_eq!(code, Some(0), "{msg}");
    assert_eq!(std::fs::read_dir(&corpus).expect("ls").count(), 1);
}

#[test]
fn printed_paths_are_normalized() {
    let wd = tempfile::tempdir().expect("tempdir");
    let root = wd.path().join("root");
    std::fs::create_dir_all(wd.path().join("elsewhere")).expect("mkdir");
    let prog = wd.path().join("p.prog");
    std::fs::write(&prog, PROGRAM).expect("write");
    // The corpus directory is under the source root, given here with `..` in it.
    let spelled = wd.path().join("elsewhere/../root");
    let out = Command::new(env!("CARGO_BIN_EXE_shmemfuzz"))
        .env("SHMEMFUZZ_ROOT", &spelled)
        .args(["corpus", "add", s(&prog)])
        .output()
        .expect("runs");
    let msg = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{msg}");
    let corpus = root.join("fuzz/corpus/shmem_ops");
    assert!(msg.contains(&format!("-> {}/", corpus.display())), "{msg}");
    assert!(!msg.contains("/../"), "{msg}");
}

#[test]
fn run_refuses_a_trace_over_its_program_before_booting() {
    let wd = tempfile::tempdir().expect("tempdir");
    let prog = wd.path().join("p.prog");
    std::fs::write(&prog, PROGRAM).expect("write");
    let (code, msg) = shmemfuzz(&["run", s(&prog), "--trace", s(&prog)]);
    assert_eq!(code, Some(2), "{msg}");
    assert!(msg.contains("it is the input"), "{msg}");
    assert_eq!(std::fs::read_to_string(&prog).expect("read"), PROGRAM);
}

#[test]
fn minimize_refuses_an_output_inside_or_over_its_bundle_before_any_work() {
    let wd = tempfile::tempdir().expect("tempdir");
    let bundle = wd.path().join("b");
    std::fs::create_dir(&bundle).expect("mkdir");
    for out in [bundle.join("min"), bundle.clone()] {
        let (code, msg) = shmemfuzz(&["minimize", s(&bundle), "--out", s(&out)]);
        assert_eq!(code, Some(2), "{msg}");
        assert!(
            msg.contains("inside the input bundle") || msg.contains("it is the input"),
            "{msg}"
        );
    }
}
