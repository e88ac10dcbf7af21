//! One finding's page: the program and its minimized form, the C reproducer, the console
//! excerpt around the report, the page states of the failing operation from the trace, and a
//! bisection result — each where the bundle has it, "not present" otherwise.

use std::fmt::Write as _;
use std::path::Path;

use super::html::{self, esc, pre};
use super::FindingRow;

/// Lines of the console shown before and after the report's first line.
const BEFORE: usize = 15;
const AFTER: usize = 45;
/// What starts a kernel report on the console.
const MARKERS: [&str; 8] = [
    "BUG:",
    "WARNING:",
    "Oops",
    "Kernel panic",
    "general protection",
    "KASAN:",
    "Call Trace",
    "UBSAN:",
];
/// The agent's line at the end of each run.
const RUN_END: &str = "shmemfuzz-agent: end of run";
/// Bisection results a bundle may hold (what `shmemfuzz bisect` users keep beside it).
const BISECT_FILES: [&str; 4] = ["bisect.txt", "bisect.json", "bisect.log", "bisect.md"];

/// The page (HTML) of `f`; its links are relative to `<dir>/report/`.
pub fn page(f: &FindingRow) -> String {
    let mut b = String::new();
    let _ = write!(
        b,
        "<p><a href=\"../report.html\">← campaign report</a></p><h1 class=\"mono\">{}</h1>",
        esc(&f.signature)
    );
    let Some(bundle) = &f.bundle else {
        b.push_str(&html::absent("the bundle (the worker could not write one)"));
        return html::page(&f.signature, &b);
    };
    let name = bundle
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let rel = format!("../bundles/{}", esc(&name));
    let manifest: serde_json::Value = read(bundle, "bundle.json")
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let title = manifest["findings"][0]["title"].as_str().unwrap_or("");
    let _ = write!(
        b,
        "<p>{}</p><p>kernel {} ({}) · bundle <a href=\"{rel}/\">{}</a> · files: ",
        esc(title),
        esc(manifest["kernel"]["release"].as_str().unwrap_or("?")),
        esc(manifest["kernel"]["id"].as_str().unwrap_or("?")),
        esc(&bundle.display().to_string()),
    );
    for file in crate::bundle::files::CHECKED
        .iter()
        .chain(&[crate::bundle::files::MANIFEST])
    {
        if bundle.join(file).is_file() {
            let _ = write!(b, "<a href=\"{rel}/{file}\">{file}</a> ");
        }
    }
    b.push_str("</p>");

    b.push_str("<h2>Program</h2>");
    b.push_str(
        &read(bundle, "program.prog").map_or_else(|| html::absent("program.prog"), |t| pre(&t)),
    );
    let min = bundle.with_file_name(format!("{name}.min"));
    b.push_str("<h2>Minimized program</h2>");
    match read(&min, "program.prog") {
        Some(t) => {
            let _ = write!(
                b,
                "<p>bundle <a href=\"../bundles/{}.min/\">{}.min</a></p>{}",
                esc(&name),
                esc(&name),
                pre(&t)
            );
        }
        None => b.push_str(&html::absent("a minimized bundle (shmemfuzz minimize)")),
    }
    b.push_str("<h2>C reproducer</h2>");
    match [
        (bundle.as_path(), &rel),
        (min.as_path(), &format!("{rel}.min")),
    ]
    .into_iter()
    .find_map(|(dir, link)| read(dir, "repro.c").map(|t| (t, link.clone())))
    {
        Some((t, link)) => {
            let _ = write!(
                b,
                "<p><a href=\"{link}/repro.c\">repro.c</a></p>{}",
                pre(&t)
            );
        }
        None => b.push_str(&html::absent("repro.c (shmemfuzz export-c)")),
    }
    b.push_str("<h2>Console around the report</h2>");
    match read(bundle, "console.log") {
        Some(t) => {
            let (from, lines, marked) = excerpt(&t);
            let _ = write!(
                b,
                "<p>{} lines {}–{} of console.log</p>{}",
                if marked {
                    "the kernel's report:"
                } else {
                    "no kernel report on the console; the recorded run's"
                },
                from + 1,
                from + lines.len(),
                pre(&lines.join("\n"))
            );
        }
        None => b.push_str(&html::absent("console.log")),
    }
    b.push_str("<h2>Page states at the failing operation</h2>");
    b.push_str(&trace_section(bundle));
    b.push_str("<h2>Bisection</h2>");
    match BISECT_FILES
        .iter()
        .find_map(|f| read(bundle, f).map(|t| (f, t)))
    {
        Some((file, t)) => {
            let _ = write!(b, "<p><a href=\"{rel}/{file}\">{file}</a></p>{}", pre(&t));
        }
        None => b.push_str(&html::absent("a bisection result (shmemfuzz bisect)")),
    }
    html::page(&f.signature, &b)
}

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read(dir.join(file))
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Pages per line of an object's page states.
const PAGES_PER_LINE: usize = 64;

/// An object's page strings (states, zones, pinned, orders) in lines of
/// [`PAGES_PER_LINE`] pages, each block headed by its page range.
fn page_lines(p: &serde_json::Value, text: &dyn Fn(&serde_json::Value) -> String) -> String {
    let rows: Vec<(&str, Vec<char>)> = ["states", "zones", "pinned", "orders"]
        .into_iter()
        .map(|k| (k, text(&p[k]).chars().collect()))
        .collect();
    let pages = rows.iter().map(|(_, c)| c.len()).max().unwrap_or(0);
    let mut out = String::new();
    for from in (0..pages).step_by(PAGES_PER_LINE) {
        let to = (from + PAGES_PER_LINE).min(pages);
        let _ = writeln!(out, "pages {from}-{}", to - 1);
        for (name, chars) in &rows {
            let part: String = chars.iter().skip(from).take(to - from).collect();
            let _ = writeln!(out, "  {name:<7}{part}");
        }
    }
    out
}

/// The lines around the first kernel report (first line index, lines, whether one was
/// found); without one, the console's last lines.
pub fn excerpt(console: &str) -> (usize, Vec<&str>, bool) {
    let lines: Vec<&str> = console.lines().collect();
    match lines
        .iter()
        .position(|l| MARKERS.iter().any(|m| l.contains(m)))
    {
        Some(at) => {
            let from = at.saturating_sub(BEFORE);
            let to = (at + AFTER).min(lines.len());
            (from, lines[from..to].to_vec(), true)
        }
        None => {
            // The recorded run's own lines: after the previous run's end (the console holds
            // every run of the worker's VM), at most the last BEFORE + AFTER.
            let ends: Vec<usize> = (0..lines.len())
                .filter(|&i| lines[i].contains(RUN_END))
                .collect();
            let run_start = match ends.as_slice() {
                [.., before, _] => before + 1,
                _ => 0,
            };
            let from = lines.len().saturating_sub(BEFORE + AFTER).max(run_start);
            (from, lines[from..].to_vec(), false)
        }
    }
}

/// The failing operation's objects from `trace.json`: one row per object, one character per
/// page (states `A`/`R`/`S`, zones `d`/`D`/`N`, pinned `P`, folio orders).
fn trace_section(bundle: &Path) -> String {
    let Some(trace) =
        read(bundle, "trace.json").and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
    else {
        return html::absent("trace.json");
    };
    let ops = trace["ops"].as_array().cloned().unwrap_or_default();
    let at = trace["findings"]
        .as_array()
        .and_then(|f| f.iter().find_map(|f| f["op"].as_u64()));
    let (op, note) = match at {
        Some(i) => (
            ops.iter().find(|o| o["index"].as_u64() == Some(i)),
            format!("operation {i}, where the finding was seen"),
        ),
        None => (
            ops.last(),
            "the last operation (the finding names none)".to_string(),
        ),
    };
    let Some(op) = op else {
        return html::absent("the failing operation in trace.json");
    };
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        v => v.to_string(),
    };
    let mut b = format!(
        "<p>{}: <span class=\"mono\">{}</span><br>expected: {} · result: <span class=\"mono\">{}</span></p>",
        esc(&note),
        esc(&text(&op["op"])),
        esc(&text(&op["expected"])),
        esc(&text(&op["result"])),
    );
    let pages = op["pages"].as_array().cloned().unwrap_or_default();
    if pages.is_empty() {
        b.push_str(&html::absent("observed pages for this operation"));
        return b;
    }
    b.push_str(
        "<p>One character per page, 64 to a line: states <b>A</b> absent, <b>R</b> resident, \
         <b>S</b> swapped; zones <b>d</b> DMA, <b>D</b> DMA32, <b>N</b> Normal, <b>-</b> not \
         resident; pinned <b>P</b>; folio orders.</p>",
    );
    for p in &pages {
        let _ = write!(b, "<h3 class=\"mono\">{}</h3>", esc(&text(&p["obj"])));
        b.push_str(&pre(&page_lines(p, &text)));
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_kernel_report_the_excerpt_is_the_last_run() {
        let console =
            "boot\nold run\n[ 1.0] shmemfuzz-agent: end of run 1\nSoft offlining pfn 0x1\n\
                       [ 2.0] shmemfuzz-agent: end of run 2\n";
        let (from, lines, marked) = excerpt(console);
        assert!(!marked);
        assert_eq!(from, 3);
        assert_eq!(
            lines,
            [
                "Soft offlining pfn 0x1",
                "[ 2.0] shmemfuzz-agent: end of run 2"
            ]
        );
        let (from, lines, marked) = excerpt("a\nb\nBUG: x\nc\n");
        assert!(marked);
        assert_eq!((from, lines.len()), (0, 4));
    }
}
