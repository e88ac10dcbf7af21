use std::path::Path;

use super::*;
use crate::files::ondisk::golden_tests::contents;
use crate::findings::bundle::{files, Bundle};

fn report(c: &BundleContents) -> String {
    let catalog = Catalog::builtin().expect("the built-in catalog");
    report_txt(c, Path::new("out/finding-1"), &Ok(()), Some(&catalog)).expect("a finding")
}

#[test]
fn the_report_has_what_a_kernel_bug_report_needs() {
    let mut c = contents();
    c.kernel.id = "debian-6.1".into();
    let r = report(&c);
    let first = r.lines().next().expect("a title");
    assert_eq!(
        first, "zone:memfd:check:Normal",
        "the signature is the title"
    );
    for want in [
        "Finding:    page 3 of m0 is in Normal",
        "Seen in:    3 of 5 runs",
        // Kernel release, and where it and its config come from.
        "Release:    6.1.0-56-amd64 (#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-1)",
        "Source:     Debian package linux-image-6.1.0-56-amd64-unsigned 6.1.192-2 (shmemfuzz catalog id debian-6.1)",
        &format!("Config:     sha256 {}", "ab".repeat(32)),
        "shmemfuzz's defaults and shmem.planted_no_replace=1",
        "3072 MiB (1024 MiB below 4 GiB, 2 NUMA node(s)), 2 vCPU(s), 2 swap disk(s) of 512 MiB",
        // How to reproduce: with shmemfuzz, and with the C reproducer beside it.
        "    shmemfuzz replay out/finding-1\n",
        "    gcc -static -O2 -Wall -o repro repro.c\n",
        "\"VIOLATION: zone:memfd:check:Normal\"",
        "    shmemfuzz export-c out/finding-1 --kselftest -o shmemfuzz_repro.c",
        // The program, the rule and what was seen, at which operation.
        "    dma32 m0\n",
        "Expected:   every page of a DMA32-constrained object (a GEM object, or a file after dma32)\n            stays below 4 GiB",
        "Saw:        page 3 of m0 is in Normal (operation 6: `check m0 off=0 len=16K`)",
        "            1 page\n",
        "  - WARNING in shmem_replace_folio (kernel:WARNING:shmem_replace_folio)",
        // The console report, and where the rest is.
        "WARNING in shmem_replace_folio (console.log line 12):",
        "    WARNING: CPU: 0 PID: 1 at mm/shmem.c:1 shmem_replace_folio+0x1/0x2",
        "[... the rest is in console.log]",
        "repro.c (the C reproducer)",
    ] {
        assert!(r.contains(want), "missing {want:?} in:\n{r}");
    }
}

#[test]
fn a_source_built_kernel_names_its_fragments_and_patches() {
    let mut c = contents();
    c.kernel.id = "src-6.1-0123456789ab".into();
    let r = report(&c);
    for want in [
        "Source:     Debian's linux-source-6.1, built by shmemfuzz as src-6.1-0123456789ab\n\
         \x20           (catalog entry src-6.1)",
        "Fragments:  base.config, debug.config (kernels/configs/",
        "Patches:    0001-shmem-planted-no-replace.patch, 0002-shmem-planted-no-pin.patch\n\
         \x20           (kernels/regressions/6.1/;",
    ] {
        assert!(r.contains(want), "missing {want:?} in:\n{r}");
    }
}

#[test]
fn without_a_c_form_the_report_says_why_and_a_clean_recording_has_none() {
    let c = contents();
    let r = report_txt(
        &c,
        Path::new("b"),
        &Err("threaded sections have no C form".into()),
        None,
    )
    .expect("a finding");
    assert!(
        r.contains("No C reproducer: threaded sections have no C form"),
        "{r}"
    );
    assert!(
        r.contains("kernel id debian-6.1.0-56 (not in this shmemfuzz's catalog)"),
        "{r}"
    );
    assert!(!r.contains("gcc "), "{r}");
    assert!(report_txt(&c.clone().about(None), Path::new("b"), &Ok(()), None).is_none());
}

#[test]
fn bundles_about_a_finding_carry_report_and_reproducer_and_still_read() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("finding");
    Bundle::write(&dir, &contents()).expect("written");
    let report = std::fs::read_to_string(dir.join(REPORT)).expect("report.txt");
    assert!(
        report.contains(&format!("shmemfuzz replay {}", dir.display())),
        "{report}"
    );
    let repro = std::fs::read_to_string(dir.join(REPRO)).expect("repro.c");
    assert!(
        repro.contains(" * Reproduces: zone:memfd:check:Normal"),
        "{repro}"
    );
    assert!(repro.contains("int main(void)"), "{repro}");
    Bundle::read(&dir).expect("the extra files do not disturb reading");
    assert!(!files::CHECKED.contains(&REPORT));

    let clean = tmp.path().join("clean");
    let mut c = contents().about(None);
    c.outcome.verdict.findings.clear();
    c.outcome.reports.clear();
    Bundle::write(&clean, &c).expect("written");
    assert!(!clean.join(REPORT).exists() && !clean.join(REPRO).exists());
}
