//! Golden tests for `shmemfuzz_core::console`.
//!
//! Every `tests/golden/console/<name>.txt` is a real kernel console excerpt (where each one
//! comes from is recorded in `tests/golden/console/SOURCES.md`); `<name>.expected` holds the
//! reports the parser must find in it, one block per report (kind, title, signature,
//! is_finding, first_line, number of body lines, truncated).
//!
//! The test parses each `.txt` with `console::parse_bytes` and compares the rendering with
//! the `.expected` file. It also feeds each file to a `ConsoleScanner` in chunks of several
//! sizes and checks that the result does not depend on the chunking.
//!
//! After an intended change of the parser, regenerate the expected files and review the diff:
//!
//! ```text
//! UPDATE_GOLDEN=1 cargo test -p shmemfuzz-core --test console_golden
//! git diff harness/core/tests/golden/console/
//! ```
//!
//! A new `.txt` without an `.expected` fails until it is generated the same way.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use shmemfuzz_core::console::{parse_bytes, ConsoleScanner, KernelReport};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/console")
}

fn render(name: &str, reports: &[KernelReport]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Reports parsed from {name}.txt by shmemfuzz_core::console."
    );
    let _ = writeln!(
        out,
        "# Regenerate: UPDATE_GOLDEN=1 cargo test -p shmemfuzz-core --test console_golden"
    );
    if reports.is_empty() {
        let _ = writeln!(out, "\n(no reports)");
    }
    for (i, r) in reports.iter().enumerate() {
        let _ = writeln!(out, "\nreport {}", i + 1);
        let _ = writeln!(out, "  kind:       {}", r.kind);
        let _ = writeln!(out, "  title:      {}", r.title);
        let _ = writeln!(out, "  signature:  {}", r.signature);
        let _ = writeln!(out, "  is_finding: {}", r.is_finding);
        let _ = writeln!(out, "  first_line: {}", r.first_line);
        let _ = writeln!(out, "  lines:      {}", r.text.lines().count());
        let _ = writeln!(out, "  truncated:  {}", r.truncated);
    }
    out
}

fn chunked(bytes: &[u8], size: usize) -> Vec<KernelReport> {
    let mut s = ConsoleScanner::new();
    let mut out = Vec::new();
    for chunk in bytes.chunks(size) {
        out.extend(s.feed(chunk));
    }
    out.extend(s.finish());
    out
}

#[test]
fn console_golden() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v != "0" && !v.is_empty());
    let mut inputs: Vec<PathBuf> = fs::read_dir(golden_dir())
        .expect("golden directory")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    inputs.sort();
    assert!(
        !inputs.is_empty(),
        "no golden inputs in {}",
        golden_dir().display()
    );

    let mut failures = Vec::new();
    for input in &inputs {
        let name = input
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 file name");
        let bytes = fs::read(input).expect("read golden input");
        let reports = parse_bytes(&bytes);
        for size in [1, 3, 64, 4093] {
            assert_eq!(
                chunked(&bytes, size),
                reports,
                "{name}: chunks of {size} bytes differ"
            );
        }
        let got = render(name, &reports);
        let expected_path = input.with_extension("expected");
        if update {
            fs::write(&expected_path, &got).expect("write expected file");
            continue;
        }
        match fs::read_to_string(&expected_path) {
            Ok(want) if want == got => {}
            Ok(want) => failures.push(format!(
                "{name}: reports differ from {}\n--- expected\n{want}\n--- got\n{got}",
                expected_path.display()
            )),
            Err(e) => failures.push(format!(
                "{name}: cannot read {} ({e}); run with UPDATE_GOLDEN=1 to create it\n--- got\n{got}",
                expected_path.display()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Agreement with syzkaller's report-parser corpus (`pkg/report/testdata/linux/report` of a
/// `google/syzkaller` checkout, given in `SYZKALLER_REPORTS`): prints, per log, the expected
/// title and the findings parsed, then the totals. A measurement, not a pass/fail test.
///
/// ```text
/// SYZKALLER_REPORTS=/path/to/syzkaller/pkg/report/testdata/linux/report \
///     cargo test -p shmemfuzz-core --test console_golden -- --ignored --nocapture
/// ```
#[test]
#[ignore = "needs a syzkaller checkout (SYZKALLER_REPORTS)"]
fn syzkaller_corpus_agreement() {
    let Some(dir) = std::env::var_os("SYZKALLER_REPORTS") else {
        eprintln!("SYZKALLER_REPORTS not set");
        return;
    };
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("corpus directory")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let (mut with, mut detected, mut func_agree, mut without, mut false_alarms, mut noisy) =
        (0, 0, 0, 0, 0, 0);
    for path in &files {
        let bytes = fs::read(path).expect("read");
        let text = String::from_utf8_lossy(&bytes);
        let (header, log) = text.split_once("\n\n").unwrap_or(("", &text));
        let titles: Vec<&str> = header
            .lines()
            .filter_map(|l| l.strip_prefix("TITLE: "))
            .collect();
        let reports = parse_bytes(log.as_bytes());
        let findings: Vec<&KernelReport> = reports.iter().filter(|r| r.is_finding).collect();
        for r in &findings {
            println!("SIG {}: {}", path.display(), r.signature);
            if shmemfuzz_core::console::signature_noise(&r.signature).is_some() {
                noisy += 1;
                println!("NOISE {}: {}", path.display(), r.signature);
            }
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        let Some(want) = titles.first() else {
            without += 1;
            if !findings.is_empty() {
                false_alarms += 1;
                println!("FALSE {name}: {}", findings[0].title);
            }
            continue;
        };
        with += 1;
        let Some(got) = findings.first() else {
            println!("MISS  {name}: {want}");
            continue;
        };
        detected += 1;
        let func = |t: &str| t.rsplit_once(" in ").map(|(_, f)| f.to_string());
        if func(want).is_some() && func(want) == func(&got.title) {
            func_agree += 1;
        } else {
            println!(
                "TITLE {name}: want {want:?} got {:?} ({})",
                got.title, got.signature
            );
        }
    }
    println!(
        "logs with a report: {with}, detected {detected}, function agrees {func_agree}; \
         logs without: {without}, false alarms {false_alarms}; noisy signatures {noisy}"
    );
}
