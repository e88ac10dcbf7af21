//! What a finding's bundle carries for sending it to kernel developers: `report.txt`, a
//! plain-text bug report in the shape they expect (title, kernel release and where its
//! config comes from, how to reproduce, the console report, what the oracle expected and
//! saw), and `repro.c`, the program's C reproducer, that the report refers to.
//!
//! Both are written beside the bundle's own files when a bundle about a finding is written
//! ([`super::Bundle::write`]); they are derived from those files and never read back, so
//! they are outside `bundle.json`'s checksums and a bundle without them still reads.

use std::fmt::Write as _;
use std::path::Path;

use shmemfuzz_core::export_c::{export, ExportError, ExportOptions};
use shmemfuzz_core::oracle::{Finding, FindingKind};
use shmemfuzz_core::program::text;

use super::BundleContents;
use crate::kernels::kernel::Catalog;

/// The bug report's file name.
pub const REPORT: &str = "report.txt";
/// The C reproducer's file name.
pub const REPRO: &str = "repro.c";

/// Lines of the console report quoted in `report.txt` (the whole report is in console.log).
const CONSOLE_LINES: usize = 60;

/// The C reproducer of `c`'s program, standalone (the mock driver's uapi pasted in), naming
/// the bundle's signature and kernel. Programs with threaded sections, delays or mounts
/// have no C form ([`ExportError`]).
pub fn repro_c(c: &BundleContents, source: &str) -> Result<String, ExportError> {
    let opts = ExportOptions {
        inline_uapi: Some(crate::kernels::data::MOCK_UAPI_HEADER.to_string()),
        // The guest's own names for swap0, swap1, ... (the agent reported them at ready).
        swap_devices: if c.guest.swap_devices.is_empty() {
            ExportOptions::default().swap_devices
        } else {
            c.guest.swap_devices.clone()
        },
        signature: c.signature.clone(),
        source: Some(source.to_string()),
        kernel: Some(kernel_line(c)),
        allow_test_ops: true,
        ..ExportOptions::default()
    };
    export(&c.program, &opts)
}

fn kernel_line(c: &BundleContents) -> String {
    let mut s = format!("{} ({})", c.kernel.id, c.kernel.release);
    if !c.append.is_empty() {
        let _ = write!(s, ", booted with {}", c.append.join(" "));
    }
    s
}

/// `report.txt` of the bundle at `dir` (as the user named it, for the commands it prints).
/// `repro` is whether `repro.c` was written, or why not. `None` for a clean recording.
pub fn report_txt(
    c: &BundleContents,
    dir: &Path,
    repro: &Result<(), String>,
    catalog: Option<&Catalog>,
) -> Option<String> {
    let sig = c.signature.as_deref()?;
    let finding = c
        .outcome
        .verdict
        .findings
        .iter()
        .find(|f| f.signature == sig)?;
    let mut r = String::new();
    // The signature is the title: stable across runs and kernels, what a search finds.
    let _ = writeln!(r, "{sig}");
    let _ = writeln!(r, "{}\n", "=".repeat(sig.chars().count().min(78)));
    let _ = writeln!(r, "Finding:    {}", finding.title);
    let _ = writeln!(
        r,
        "Seen in:    {} of {} runs of the program below",
        c.hits.hits, c.hits.runs
    );
    let _ = writeln!(r, "Found by:   shmemfuzz {}", env!("CARGO_PKG_VERSION"));

    section(&mut r, "Kernel");
    let _ = writeln!(r, "Release:    {} ({})", c.kernel.release, c.kernel.version);
    for line in config_source(&c.kernel.id, catalog) {
        let _ = writeln!(r, "{line}");
    }
    let _ = writeln!(
        r,
        "Config:     sha256 {}",
        c.kernel
            .config_sha256
            .as_deref()
            .unwrap_or("(the kernel came without a .config)")
    );
    let _ = writeln!(
        r,
        "Cmdline:    {}",
        if c.append.is_empty() {
            "shmemfuzz's defaults only".to_string()
        } else {
            format!("shmemfuzz's defaults and {}", c.append.join(" "))
        }
    );
    let _ = writeln!(
        r,
        "Machine:    QEMU x86_64, {} MiB ({} MiB below 4 GiB, {} NUMA node(s)), {} vCPU(s), \
         {} swap disk(s) of {} MiB",
        c.memory.total_mib,
        c.memory.below_4g_mib,
        c.memory.nodes,
        c.smp,
        c.swap_devices,
        c.swap_size >> 20
    );

    section(&mut r, "How to reproduce");
    let d = dir.display();
    let _ = writeln!(
        r,
        "With shmemfuzz (boots the same kernel the same way, diffs every operation):\n"
    );
    let _ = writeln!(r, "    shmemfuzz replay {d}\n");
    match repro {
        Ok(()) => {
            let _ = writeln!(
                r,
                "Without shmemfuzz: {REPRO}, attached beside this file, is the program below in C; it\n\
                 checks the results, the bytes and the zone rule itself. Run it in a guest of the\n\
                 kernel above booted with the command line above; its header says what else the\n\
                 guest needs (swap devices, the mock GMA500 driver when the program uses it).\n\n\
                 \x20   gcc -static -O2 -Wall -o repro {REPRO}\n\
                 \x20   ./repro        # as root in the guest; exit 1 and \"VIOLATION: {sig}\"\n\n\
                 As a kselftest for tools/testing/selftests/mm (TAP 13, exit KSFT_FAIL / KSFT_PASS /\n\
                 KSFT_SKIP):\n\n\
                 \x20   shmemfuzz export-c {d} --kselftest -o shmemfuzz_repro.c"
            );
        }
        Err(why) => {
            let _ = writeln!(r, "No C reproducer: {why}");
        }
    }

    section(
        &mut r,
        &format!("The program ({} operations)", c.program.ops.len()),
    );
    for line in text::print(&c.program).lines() {
        let _ = writeln!(r, "    {line}");
    }

    section(&mut r, "What the oracle expected and saw");
    let at = finding
        .op
        .and_then(|i| c.program.ops.get(i as usize).map(|op| (i, op)))
        .map(|(i, op)| format!(" (operation {i}: `{op}`)"))
        .unwrap_or_default();
    let _ = writeln!(
        r,
        "Expected:   {}",
        expectation(finding.kind).replace('\n', "\n            ")
    );
    let _ = writeln!(r, "Saw:        {}{at}", finding.title);
    for line in finding.detail.lines().filter(|l| !l.trim().is_empty()) {
        let _ = writeln!(r, "            {line}");
    }
    let others: Vec<&Finding> = c
        .outcome
        .verdict
        .findings
        .iter()
        .filter(|f| f.signature != sig)
        .collect();
    if !others.is_empty() {
        let _ = writeln!(r, "\nThe same run also showed:");
        for f in others {
            let _ = writeln!(r, "  - {} ({})", f.title, f.signature);
        }
    }

    section(&mut r, "Console report");
    let reports: Vec<_> = c.outcome.reports.iter().filter(|k| k.is_finding).collect();
    let report = reports
        .iter()
        .find(|k| sig.strip_prefix("kernel:") == Some(k.signature.as_str()))
        .or(reports.first());
    match report {
        Some(k) => {
            let _ = writeln!(r, "{} (console.log line {}):\n", k.title, k.first_line);
            let lines: Vec<&str> = k.text.lines().collect();
            for line in lines.iter().take(CONSOLE_LINES) {
                let _ = writeln!(r, "    {line}");
            }
            if lines.len() > CONSOLE_LINES || k.truncated {
                let _ = writeln!(r, "    [... the rest is in console.log]");
            }
        }
        None => {
            let _ = writeln!(
                r,
                "None: the kernel printed no report during the run; the finding is the oracle's\n\
                 (console.log has the whole console)."
            );
        }
    }

    section(&mut r, "Files");
    let _ = writeln!(
        r,
        "{REPORT} (this), {REPRO} (the C reproducer{}), program.prog, console.log (the whole\n\
         console), records.json (every operation's result and pages), outcome.json, trace.json,\n\
         bundle.json (the manifest, with sha256 of kernel image and config).",
        if repro.is_ok() {
            ""
        } else {
            ": absent, see above"
        }
    );
    Some(r)
}

fn section(r: &mut String, title: &str) {
    let _ = writeln!(r, "\n{title}\n{}", "-".repeat(title.chars().count()));
}

/// Where the kernel and its config come from, from the catalog entry `id` names.
fn config_source(id: &str, catalog: Option<&Catalog>) -> Vec<String> {
    let source = catalog.and_then(|c| c.source(id).or_else(|| c.source_of_built(id)));
    if let Some(s) = source {
        let dir = s.patch_dir();
        let patches = patch_names(dir);
        return vec![
            format!(
                "Source:     Debian's linux-source-{}, built by shmemfuzz as {id}\n\
                 \x20           (catalog entry {})",
                s.series, s.id
            ),
            format!(
                "Fragments:  {} (kernels/configs/ of shmemfuzz, merged in order\n\
                 \x20           onto the defconfig)",
                s.fragments.join(", ")
            ),
            format!(
                "Patches:    {}\n\
                 \x20           (kernels/regressions/{dir}/; their switches are off unless on\n\
                 \x20           the command line)",
                if patches.is_empty() {
                    "(not listed: no shmemfuzz source tree here)".to_string()
                } else {
                    patches.join(", ")
                }
            ),
        ];
    }
    if let Some(e) = catalog.and_then(|c| c.get(id).ok()) {
        return vec![format!(
            "Source:     Debian package {} {} (shmemfuzz catalog id {id}), its own config",
            e.image.name, e.image.version
        )];
    }
    if id.starts_with("tree-") {
        return vec![format!(
            "Source:     a tree built with `shmemfuzz kernel build` (kernel id {id}: commit and config hash)"
        )];
    }
    vec![format!(
        "Source:     kernel id {id} (not in this shmemfuzz's catalog)"
    )]
}

/// The `*.patch` files of `kernels/regressions/<dir>/` in the source tree, sorted.
fn patch_names(dir: &str) -> Vec<String> {
    let path = crate::kernels::context::source_root()
        .join("kernels/regressions")
        .join(dir);
    let mut names: Vec<String> = std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".patch"))
        .collect();
    names.sort();
    names
}

/// The rule a finding of `kind` breaks, as the oracle states it.
fn expectation(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::Zone => {
            "every page of a DMA32-constrained object (a GEM object, or a file after dma32)\n\
             stays below 4 GiB (PFN < 0x100000) once it has been absent, swapped or moved"
        }
        FindingKind::Data => "every byte read back equals what the program wrote there (or zeros)",
        FindingKind::Result => "each operation returns what the model of the kernel allows",
        FindingKind::Signal => "no operation dies of a signal (SIGBUS, SIGSEGV)",
        FindingKind::Kernel => {
            "no kernel report (BUG, WARNING, KASAN, oops, lockdep) on the console"
        }
        FindingKind::Taint => "the kernel gains no taint during the program",
        FindingKind::Hang => "every operation finishes within the deadline",
        FindingKind::Leak => "Shmem and swap use return to where they were after the teardown",
    }
}

#[cfg(test)]
mod tests;
