//! `shmemfuzz report` opened in headless Chromium (Debian's `chromium`; `ci/setup.sh browser`
//! installs it): the pages load without console errors, the plots are in the DOM with their
//! data points, and a screenshot is taken. Ignored by default (it needs Chromium);
//! ci/test.sh runs it. `SHMEMFUZZ_CHROMIUM` names another binary; `SHMEMFUZZ_REPORT_DIR`
//! reports that campaign directory instead of the fixture (a real campaign's `--out`), and
//! the screenshot is left in it as `report.png`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

fn chromium() -> String {
    std::env::var("SHMEMFUZZ_CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

/// What Chromium made of a page: its DOM after load and its log.
struct Loaded {
    dom: String,
    log: String,
}

fn load(page: &Path, profile: &Path, extra: &[String]) -> Loaded {
    let out = Command::new(chromium())
        .args(["--headless", "--disable-gpu", "--no-sandbox"])
        .args(["--enable-logging=stderr", "--v=0"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "running {}: {e} (ci/setup.sh browser installs it)",
                chromium()
            )
        });
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Loaded {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        log: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Console messages in Chromium's log (the pages have no script: any message is an error).
fn console_errors(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect()
}

/// `<polyline>`s of the DOM with at least `min` points.
fn lines_with_points(dom: &str, min: usize) -> usize {
    dom.split("<polyline")
        .skip(1)
        .filter_map(|l| l.split("points=\"").nth(1)?.split('"').next())
        .filter(|p| p.split_whitespace().count() >= min)
        .count()
}

/// A campaign directory: two workers' histories and a finding whose bundle holds markup.
fn fixture(dir: &Path) {
    let stats = dir.join("stats");
    std::fs::create_dir_all(&stats).expect("mkdir");
    let start: u64 = 1_796_000_000_000;
    std::fs::write(
        stats.join("campaign.json"),
        json!({"start_ms": start, "kernel": "debian-6.1", "jobs": 2, "duration_s": 600})
            .to_string(),
    )
    .expect("write");
    for w in 0..2u64 {
        let mut text = String::new();
        for k in 1..=40u64 {
            let mut s = json!({
                "t_ms": start + k * 15_000 + w * 3_000, "runs": k * (9 + w), "corpus": 20 + k,
                "functions": k.min(12), "replaced_pages": k * k, "boots": 1,
                "new_functions": if k <= 12 { vec![format!("shmem_fn_{k}")] } else { vec![] },
            });
            if w == 1 && k == 30 {
                s["new_findings"] = json!(["zone:memfd:soft-offline:Normal"]);
            }
            text.push_str(&format!("{s}\n"));
        }
        std::fs::write(stats.join(format!("w{w}-0.jsonl")), text).expect("write");
    }
    let bundle = dir.join("bundles/zone_memfd_soft-offline_Normal");
    std::fs::create_dir_all(&bundle).expect("mkdir");
    std::fs::write(
        bundle.join("bundle.json"),
        json!({"signature": "zone:memfd:soft-offline:Normal", "runs": 1, "hits": 1,
               "kernel": {"id": "debian-6.1", "release": "6.1.0-56-amd64"},
               "findings": [{"title": "page 44 <img src=x onerror=alert(1)> in Normal"}]})
        .to_string(),
    )
    .expect("write");
    std::fs::write(
        bundle.join("program.prog"),
        "memfd m0 size=256K\n<script>console.error('from the guest')</script>\n",
    )
    .expect("write");
    std::fs::write(
        bundle.join("console.log"),
        "[ 1.0] boot\n[ 2.0] BUG: <script>console.error(1)</script>\n[ 2.1] Call Trace:\n",
    )
    .expect("write");
    std::fs::write(
        bundle.join("trace.json"),
        json!({"findings": [{"op": 0}], "ops": [{"index": 0, "op": "madvise m0 soft-offline",
            "expected": "ok", "result": "Ok", "pages": [{"obj": "m0", "states": "AARR",
            "zones": "--NN", "pinned": "----", "orders": "--00"}]}]})
        .to_string(),
    )
    .expect("write");
}

#[test]
#[ignore = "needs chromium (ci/setup.sh browser)"]
fn the_report_renders_in_headless_chromium() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let profile = tmp.path().join("profile");
    // The checks themselves catch what they look for.
    let bad = tmp.path().join("bad.html");
    std::fs::write(
        &bad,
        "<script>undefinedFn()</script><svg><polyline points=\"1,1\"/></svg>",
    )
    .expect("write");
    let loaded = load(&bad, &profile, &["--dump-dom".into()]);
    assert!(!console_errors(&loaded.log).is_empty(), "{}", loaded.log);
    assert_eq!(lines_with_points(&loaded.dom, 2), 0);

    let dir: PathBuf = match std::env::var_os("SHMEMFUZZ_REPORT_DIR") {
        Some(d) => d.into(),
        None => {
            fixture(tmp.path());
            tmp.path().to_path_buf()
        }
    };
    let status = Command::new(env!("CARGO_BIN_EXE_shmemfuzz"))
        .arg("report")
        .arg(&dir)
        .status()
        .expect("runs shmemfuzz");
    assert!(status.success());
    let main = std::fs::canonicalize(dir.join("report.html")).expect("report.html");
    let loaded = load(&main, &profile, &["--dump-dom".into()]);
    assert_eq!(console_errors(&loaded.log), Vec::<&str>::new());
    let svgs = loaded.dom.matches("<svg").count();
    assert!(svgs >= 4, "{svgs} plots in the DOM");
    // Each plot has at least one line with data points (a fresh campaign: a few).
    let min_points = if std::env::var_os("SHMEMFUZZ_REPORT_DIR").is_some() {
        2
    } else {
        20
    };
    let data = lines_with_points(&loaded.dom, min_points);
    assert!(
        data >= svgs,
        "{data} lines with {min_points}+ points in {svgs} plots"
    );
    assert!(!loaded.dom.contains("src=\"http") && !loaded.dom.contains("href=\"http"));

    let shot = dir.join("report.png");
    let _ = std::fs::remove_file(&shot);
    let loaded = load(
        &main,
        &profile,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1400,2600".into(),
        ],
    );
    assert_eq!(console_errors(&loaded.log), Vec::<&str>::new());
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );

    // Every finding's page loads clean, and nothing from the guest became markup.
    let pages: Vec<_> = std::fs::read_dir(dir.join("report"))
        .into_iter()
        .flatten()
        .collect();
    if std::env::var_os("SHMEMFUZZ_REPORT_DIR").is_none() {
        assert_eq!(pages.len(), 1, "the fixture's finding has its page");
    }
    for entry in pages {
        let page = std::fs::canonicalize(entry.expect("entry").path()).expect("path");
        let loaded = load(&page, &profile, &["--dump-dom".into()]);
        assert_eq!(
            console_errors(&loaded.log),
            Vec::<&str>::new(),
            "{}",
            page.display()
        );
        assert!(
            !loaded.dom.contains("<script") && !loaded.dom.contains("<img"),
            "{}",
            loaded.dom
        );
        assert!(loaded.dom.contains("campaign report"));
    }
    eprintln!("screenshot: {}", shot.display());
    if std::env::var_os("SHMEMFUZZ_REPORT_DIR").is_none() {
        // Keep the fixture's screenshot where CI can find it (cargo's target/tmp, not /tmp:
        // nothing of a test run outlives it outside the build tree).
        let keep =
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("shmemfuzz-report-fixture.png");
        std::fs::copy(&shot, &keep).expect("copy");
        eprintln!("kept as {}", keep.display());
    }
}
