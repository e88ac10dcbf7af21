//! CLI behaviour that needs no VM: usage errors and exit codes.

mod fixture;

use std::process::Command;

#[test]
fn a_malformed_program_is_a_usage_error_naming_line_and_column() {
    let wd = tempfile::tempdir().expect("tempdir");
    let prog = wd.path().join("bad.prog");
    std::fs::write(
        &prog,
        "memfd m0 size=4K\nmmap v0 m0 off=0 len=4K sideways\n",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_shmemfuzz"))
        .arg("run")
        .arg(&prog)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2, column 25"), "{err}");
}

#[test]
fn repro_names_every_input_it_cannot_decode_and_fails_cleanly_when_none_is_left() {
    let wd = tempfile::tempdir().expect("tempdir");
    let dir = wd.path().join("in");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(
        dir.join("bad.prog"),
        "memfd m0 size=4K\nwrite m0 off=0 len=4K\n",
    )
    .expect("write");
    let bundle = dir.join("broken-bundle");
    std::fs::create_dir(&bundle).expect("mkdir");
    std::fs::write(
        bundle.join("bundle.json"),
        "{\"format\": \"shmemfuzz-bundle\", \"version\": 1",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_shmemfuzz"))
        .arg("repro")
        .arg(&dir)
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad.prog: line 2, column"),
        "a malformed program names line and column: {err}"
    );
    assert!(
        err.contains("broken-bundle"),
        "a corrupt bundle is named: {err}"
    );
    assert!(err.contains("no input could be decoded"), "{err}");
}

/// Runs the CLI in the test's own directory: exit code and all it printed.
fn shmemfuzz(args: &[&str]) -> (Option<i32>, String) {
    let here = std::env::current_dir().expect("a working directory");
    let out = fixture::shmemfuzz(args, &here);
    (out.status.code(), fixture::text(&out))
}

#[test]
fn bisect_refuses_bad_arguments_before_building_anything() {
    let wd = tempfile::tempdir().expect("tempdir");
    let missing = wd.path().join("no-bundle");
    let m = missing.to_str().expect("utf-8");
    let (code, out) = shmemfuzz(&["bisect", "--debian", "6.1.0-53..6.1.0-55", "--repro", m]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("no-bundle"), "the bundle is named: {out}");
    let (code, out) = shmemfuzz(&["bisect", "--repro", m]);
    assert_eq!(code, Some(2), "neither --src nor --debian: {out}");
    let (code, out) = shmemfuzz(&["bisect", "--src", ".", "--good", "a", "--repro", m]);
    assert_eq!(code, Some(2), "--bad missing: {out}");
    assert!(out.contains("--bad"), "{out}");
}

#[test]
fn help_lists_the_exit_statuses_including_interruption() {
    let (code, out) = shmemfuzz(&["--help"]);
    assert_eq!(code, Some(0), "{out}");
    for status in [
        "0 clean",
        "1 a finding",
        "2 a harness",
        "3 `bisect`",
        "130 / 143",
    ] {
        assert!(
            out.contains(status),
            "`{status}` missing from --help:\n{out}"
        );
    }
}

#[test]
fn kernel_build_names_a_missing_source_tree() {
    let (code, out) = shmemfuzz(&["kernel", "build", "--src", "/nonexistent/linux"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("/nonexistent/linux"), "{out}");
}

#[test]
fn kernel_build_names_a_revision_that_does_not_exist_and_a_tree_that_is_not_a_kernel() {
    let wd = tempfile::tempdir().expect("tempdir");
    let git = |args: &[&str]| {
        // GIT_DIR & co. from a calling git (rebase --exec) would redirect us to its repository.
        let st = Command::new("git")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .arg("-C")
            .arg(wd.path())
            .args(args)
            .status()
            .expect("git runs");
        assert!(st.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    std::fs::write(wd.path().join("README"), "not a kernel\n").expect("write");
    git(&["add", "README"]);
    git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.invalid",
        "commit",
        "-q",
        "-m",
        "x",
    ]);
    let src = wd.path().to_str().expect("utf-8");
    let (code, out) = shmemfuzz(&["kernel", "build", "--src", src, "--rev", "no-such-rev"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("`no-such-rev` does not name a commit"),
        "{out}"
    );
    let (code, out) = shmemfuzz(&["kernel", "build", "--src", src]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("looking for a kernel source tree"), "{out}");
}

#[test]
fn kernel_list_says_whether_each_pin_is_in_the_archive_and_which_series_a_source_kernel_carries() {
    let (code, out) = shmemfuzz(&["kernel", "list"]);
    assert_eq!(code, Some(0), "{out}");
    let header = out.lines().next().expect("a header");
    assert!(header.contains("archive"), "{header}");
    let row = |id: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("{id} listed: {out}"))
            .to_string()
    };
    for id in ["debian-6.12", "debian-6.12.117"] {
        let r = row(id);
        assert!(
            ["yes", "gone", "headers gone", "unknown"]
                .iter()
                .any(|w| r.contains(&format!(" {w} "))),
            "{r}"
        );
    }
    assert!(
        row("src-6.12").contains("kernels/regressions/6.12"),
        "{out}"
    );
    assert!(
        row("src-6.1-kasan").contains("kernels/regressions/6.1:"),
        "{out}"
    );
}

#[test]
fn export_c_kselftest_writes_a_tap_kselftest_that_carries_only_what_it_uses() {
    let prog = fixture::examples_dir().join("pageout-roundtrip.prog");
    let export = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_shmemfuzz"))
            .arg("export-c")
            .arg(&prog)
            .args(extra)
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let ksft = export(&["--kselftest"]);
    for want in [
        "TAP version 13",
        "KSFT_FAIL",
        "KSFT_SKIP",
        "#include \"../kselftest.h\"",
    ] {
        assert!(ksft.contains(want), "missing {want}:\n{ksft}");
    }
    let plain = export(&[]);
    assert!(!plain.contains("KSFT_"), "{plain}");
    // A memfd program needs neither the mock driver nor its uapi, nor the zone rule.
    for c in [&plain, &ksft] {
        assert!(!c.contains("DRM_IOCTL_GMA500_MOCK"), "{c}");
        assert!(!c.contains("page_info("), "{c}");
    }
}
