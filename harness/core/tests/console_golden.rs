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

/// A small deterministic generator (xorshift64*), for the rewriting property test.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn digits(&mut self, n: usize, radix: u32) -> String {
        (0..n)
            .map(|i| {
                let d = (self.next() % u64::from(radix)) as u32;
                // No leading zero for decimal numbers (`01` is not a PID).
                let d = if i == 0 && radix == 10 && n > 1 {
                    1 + d % 9
                } else {
                    d
                };
                char::from_digit(d, radix).unwrap_or('1')
            })
            .collect()
    }
}

/// Rewrite the tokens a signature must not depend on, each with a random value of the same
/// form: addresses (hex numbers of 12 or more digits), symbol offsets (`+0x1ef/0x7b0`),
/// PIDs (`PID: 5830`, `pid 5830`, `pid=5830`, `comm/5830`), CPU numbers (`CPU: 1`, `CPU#1`,
/// `cpu 1`), sizes (`size 8`) and line numbers (`fs/dcache.c:829`).
fn rewrite_noise(text: &str, rng: &mut Rng) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    while i < b.len() {
        let rest = &text[i..];
        // A decimal number after one of these is noise.
        let mut done = false;
        for key in [
            "PID: ", "pid ", "pid=", "CPU: ", "CPU#", "cpu ", "size ", ".c:", ".h:",
        ] {
            if let Some(after) = rest.strip_prefix(key) {
                let n = after.bytes().take_while(u8::is_ascii_digit).count();
                if n > 0 {
                    out.push_str(key);
                    let len = if key.starts_with("CPU") || key == "cpu " {
                        1
                    } else {
                        1 + (rng.next() % 5) as usize
                    };
                    out.push_str(&rng.digits(len, 10));
                    i += key.len() + n;
                    done = true;
                    break;
                }
            }
        }
        if done {
            continue;
        }
        let boundary = i == 0 || !word(b[i - 1]);
        // comm/5830
        if b[i] == b'/' && i > 0 && word(b[i - 1]) {
            let n = rest[1..].bytes().take_while(u8::is_ascii_digit).count();
            let after = b.get(i + 1 + n).copied();
            if n > 0 && !after.is_some_and(|c| word(c) || c == b'.' || c == b'/' || c == b':') {
                out.push('/');
                let len = 1 + (rng.next() % 5) as usize;
                out.push_str(&rng.digits(len, 10));
                i += 1 + n;
                continue;
            }
        }
        // func+0x1ef/0x7b0
        if rest.starts_with("+0x") && i > 0 && word(b[i - 1]) {
            let n = rest[3..].bytes().take_while(u8::is_ascii_hexdigit).count();
            if n > 0 && rest[3 + n..].starts_with("/0x") {
                let m = rest[6 + n..]
                    .bytes()
                    .take_while(u8::is_ascii_hexdigit)
                    .count();
                if m > 0 {
                    let (x, y) = (rng.digits(1 + n % 4, 16), rng.digits(1 + m % 4, 16));
                    out.push_str(&format!("+0x{x}/0x{y}"));
                    i += 6 + n + m;
                    continue;
                }
            }
        }
        // Addresses.
        if boundary && b[i].is_ascii_hexdigit() {
            let skip = if rest.starts_with("0x") { 2 } else { 0 };
            let n = rest[skip..]
                .bytes()
                .take_while(u8::is_ascii_hexdigit)
                .count();
            let after = b.get(i + skip + n).copied();
            if n >= 12 && !after.is_some_and(word) {
                out.push_str(&rest[..skip]);
                out.push_str(&rng.digits(n, 16));
                i += skip + n;
                continue;
            }
        }
        let c = rest.chars().next().unwrap_or(' ');
        out.push(c);
        i += c.len_utf8();
    }
    out
}

fn signatures(text: &str) -> Vec<String> {
    parse_bytes(text.as_bytes())
        .into_iter()
        .map(|r| r.signature)
        .collect()
}

#[test]
fn rewriting_noise_never_changes_a_signature() {
    let mut rng = Rng(0x5eed_2020_0a0b_0c0d);
    let mut rewritten_tokens = 0;
    for entry in fs::read_dir(golden_dir()).expect("golden directory") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "txt") {
            continue;
        }
        let text = String::from_utf8_lossy(&fs::read(&path).expect("read")).into_owned();
        let want = signatures(&text);
        for round in 0..8 {
            let noisy = rewrite_noise(&text, &mut rng);
            rewritten_tokens += usize::from(noisy != text);
            assert_eq!(
                signatures(&noisy),
                want,
                "{} round {round}: signatures depend on noise",
                path.display()
            );
        }
        for sig in &want {
            assert_eq!(
                shmemfuzz_core::console::signature_noise(sig),
                None,
                "{}: {sig}",
                path.display()
            );
        }
    }
    assert!(rewritten_tokens > 0, "the rewriting changed nothing");
}

#[test]
fn the_rewriting_rewrites_what_it_says() {
    let mut rng = Rng(7);
    let line = "WARNING: fs/dcache.c:829 at fast_dput+0x334/0x430, CPU#1: syz-executor/5830 PID: 12 addr ffff888119d8a000 size 8 exitcode=0x00000009";
    let noisy = rewrite_noise(line, &mut rng);
    assert_ne!(noisy, line);
    assert!(noisy.starts_with("WARNING: fs/dcache.c:"), "{noisy}");
    assert!(noisy.ends_with("exitcode=0x00000009"), "{noisy}");
    assert!(!noisy.contains("ffff888119d8a000"), "{noisy}");
    assert!(!noisy.contains("+0x334/0x430"), "{noisy}");
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
    let mut unstable = 0;
    let mut rng = Rng(1);
    for path in &files {
        let bytes = fs::read(path).expect("read");
        let text = String::from_utf8_lossy(&bytes);
        let (header, log) = text.split_once("\n\n").unwrap_or(("", &text));
        let titles: Vec<&str> = header
            .lines()
            .filter_map(|l| l.strip_prefix("TITLE:"))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        let reports = parse_bytes(log.as_bytes());
        let a = signatures(log);
        for _ in 0..4 {
            let b = signatures(&rewrite_noise(log, &mut rng));
            if a != b {
                unstable += 1;
                println!("UNSTABLE {}: {a:?} vs {b:?}", path.display());
                break;
            }
        }
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
         logs without: {without}, false alarms {false_alarms}; noisy signatures {noisy}, \
         signatures changed by rewriting noise {unstable}"
    );
}
