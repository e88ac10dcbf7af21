//! CLI behaviour that needs no VM: usage errors and exit codes.

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
