//! The report of a fixture campaign directory: plots with data, findings linked, escaping.

use super::*;
use crate::fuzzing::history::Sample;

/// A campaign directory: two workers (one restarted), a finding with a bundle whose console
/// and program hold markup, and a finding without a bundle.
fn fixture(dir: &Path) {
    let stats = dir.join("stats");
    std::fs::create_dir_all(&stats).expect("mkdir");
    let meta = CampaignMeta {
        start_ms: 1_000_000,
        kernel: Some("debian-6.1".into()),
        jobs: 2,
        duration_s: 600,
        ..CampaignMeta::default()
    };
    std::fs::write(
        stats.join("campaign.json"),
        serde_json::to_vec(&meta).expect("json"),
    )
    .expect("write");
    for (file, offset) in [
        ("w0-0.jsonl", 0),
        ("w0-1.jsonl", 300_000),
        ("w1-0.jsonl", 0),
    ] {
        let mut text = String::new();
        for k in 1..=20u64 {
            let s = Sample {
                t_ms: 1_000_000 + offset + k * 10_000,
                runs: k * 7,
                corpus: Some(10 + k),
                functions: k.min(5),
                new_functions: if k <= 5 {
                    vec![format!("fn_{k}")]
                } else {
                    Vec::new()
                },
                replaced_pages: k * 3,
                new_findings: if k == 4 && offset > 0 {
                    vec!["zone:memfd:<b>:Normal".into()]
                } else {
                    Vec::new()
                },
                ..Sample::default()
            };
            text.push_str(&serde_json::to_string(&s).expect("json"));
            text.push('\n');
        }
        std::fs::write(stats.join(file), text).expect("write");
    }
    let bundle = dir.join("bundles").join(dir_name("zone:memfd:<b>:Normal"));
    std::fs::create_dir_all(&bundle).expect("mkdir");
    std::fs::write(
        bundle.join("bundle.json"),
        r#"{"signature": "zone:memfd:<b>:Normal", "runs": 4, "hits": 3,
            "kernel": {"id": "debian-6.1", "release": "6.1.0-56-amd64"},
            "findings": [{"title": "page 3 in Normal <script>"}]}"#,
    )
    .expect("write");
    std::fs::write(
        bundle.join("program.prog"),
        "memfd m0 <script>alert(1)</script>\n",
    )
    .expect("write");
    let mut console: String = (0..100).map(|i| format!("[ {i}.0] boot line\n")).collect();
    console.push_str("[ 100.0] BUG: unable to handle <page>\n[ 101.0] Call Trace:\n");
    std::fs::write(bundle.join("console.log"), console).expect("write");
    std::fs::write(
        bundle.join("trace.json"),
        r#"{"findings": [{"op": 1}], "ops": [
            {"index": 0, "op": "create m0", "expected": "ok", "result": "Ok", "pages": []},
            {"index": 1, "op": "touch m0", "expected": "ok", "result": {"Err": 12},
             "pages": [{"obj": "m0", "states": "RRSA", "zones": "DN--", "pinned": "----", "orders": "00--"}]}]}"#,
    )
    .expect("write");
}

#[test]
fn the_report_plots_every_series_and_links_each_finding() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture(dir.path());
    let main = write(dir.path()).expect("writes");
    let html = std::fs::read_to_string(&main).expect("read");
    // executions/s, functions, corpus, replaced pages: worker 0, worker 1, total each.
    assert_eq!(html.matches("<svg").count(), 4, "{html}");
    assert!(html.contains("mm/ PCs (this kernel has no KCOV"));
    assert!(html.contains("worker 1") && html.contains("total"));
    let data_lines = html
        .split("<polyline")
        .skip(1)
        .filter(|l| {
            l.split("points=\"")
                .nth(1)
                .is_some_and(|p| p.matches(',').count() >= 10)
        })
        .count();
    assert!(data_lines >= 12, "{data_lines} polylines with data");
    // The finding: escaped, linked, first seen 5:40 after the start, one hit.
    let page_name = dir_name("zone:memfd:<b>:Normal");
    assert!(html.contains(&format!("href=\"report/{page_name}.html\"")));
    assert!(html.contains("zone:memfd:&lt;b&gt;:Normal"));
    assert!(!html.contains("<b>:"));
    assert!(html.contains("<td>5:40</td>"), "{html}");
    assert!(html.contains("<td>3/4</td>") && html.contains("6.1.0-56-amd64"));
    assert!(html.contains("fn_5"));
    let page =
        std::fs::read_to_string(dir.path().join(format!("report/{page_name}.html"))).expect("page");
    assert!(
        !page.contains("<script>"),
        "nothing from the guest is markup"
    );
    assert!(page.contains("memfd m0 &lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("BUG: unable to handle &lt;page&gt;"));
    assert!(page.contains("lines 86–102 of console.log"), "{page}");
    assert!(
        page.contains("  states RRSA\n  zones  DN--") && page.contains("operation 1"),
        "{page}"
    );
    assert!(page.contains("{&quot;Err&quot;:12}"));
    assert!(page.contains("a minimized bundle (shmemfuzz minimize): not present"));
    assert!(page.contains("repro.c (shmemfuzz export-c): not present"));
    assert!(page.contains("bisection result (shmemfuzz bisect): not present"));
}

#[test]
fn a_minimized_bundle_and_a_reproducer_are_shown_when_present() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture(dir.path());
    let bundle = dir
        .path()
        .join("bundles")
        .join(dir_name("zone:memfd:<b>:Normal"));
    let min = bundle.with_file_name(format!("{}.min", dir_name("zone:memfd:<b>:Normal")));
    std::fs::create_dir_all(&min).expect("mkdir");
    std::fs::write(min.join("program.prog"), "touch m0 short\n").expect("write");
    std::fs::write(bundle.join("repro.c"), "int main(void) { return 0; }\n").expect("write");
    std::fs::write(bundle.join("bisect.txt"), "first bad: v6.1.3\n").expect("write");
    write(dir.path()).expect("writes");
    let c = Campaign::load(dir.path());
    assert_eq!(
        c.findings.len(),
        1,
        "the .min bundle is no finding of its own"
    );
    let page = std::fs::read_to_string(
        dir.path()
            .join(format!("report/{}.html", dir_name("zone:memfd:<b>:Normal"))),
    )
    .expect("page");
    assert!(page.contains("touch m0 short"));
    assert!(page.contains("int main(void)"));
    assert!(page.contains("first bad: v6.1.3"));
}

#[test]
fn an_empty_directory_gives_a_report_and_a_missing_one_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let html = std::fs::read_to_string(write(dir.path()).expect("writes")).expect("read");
    assert!(html.contains("no samples yet") && html.contains("No findings."));
    assert!(matches!(
        write(&dir.path().join("nope")),
        Err(ReportError::NotADir(_))
    ));
}
