//! The 6.12 kernel built from source (`src-6.12`, issue 16 part 1), through the CLI as a user
//! runs it: Debian's linux-source-6.12 with `base.config` + `debug.config` and the planted
//! switches ported to 6.12 (`kernels/regressions/6.12/`).
//! - with `shmem.planted_no_replace=1` the console says so, and a DMA32 memfd brought back
//!   from swap through slot-neighbour readahead (`examples/dma32-readahead.prog`: the plain
//!   object's fault reads the DMA32 object's slots into Normal, the DMA32 object's own fault
//!   then finds them in the swap cache, where 6.12's `shmem_swapin_folio()` asks
//!   `shmem_should_replace_folio()`) is a `zone:memfd:` finding;
//! - without the switch the same program is clean (the replacement copies the pages into
//!   DMA32) and the console has no planted line;
//! - with `shmem.planted_no_pin=1` the console says so (the race itself is the KASAN tier's);
//! - with page_owner on (the harness's default) the agent's page_owner read of the misplaced
//!   page oopses in `print_page_owner()` on 6.12.118: a kernel bug of its own, which the zone
//!   test steps around with `page_owner=off`.
//!
//! Not in the default suite: a second kernel from source (about 25 min on the loaded 2-core
//! machine). `SHMEMFUZZ_612=1 ci/test.sh` runs this tier; docs/testing.md has its times.
//! By hand: `cargo test -p shmemfuzz --test kbuild_612 -- --ignored --test-threads 1 --nocapture`.

mod fixture;

use std::time::Instant;

use fixture::{examples_dir, qemu_processes_mentioning, shmemfuzz, text, Workdir};

const KERNEL: &str = "src-6.12";
const NO_REPLACE: &str = "shmem.planted_no_replace=1";
const NO_REPLACE_LINE: &str = "shmem: planted regression: shmem.planted_no_replace=1";
const NO_PIN: &str = "shmem.planted_no_pin=1";
const NO_PIN_LINE: &str = "shmem: planted regression: shmem.planted_no_pin=1";
/// The route that reaches `shmem_replace_folio()` on 6.12 (see the module docs).
const ROUTE: &str = "dma32-readahead.prog";
/// Turns off the page_owner record the agent takes of the first misplaced page: on 6.12.118
/// reading it oopses (`print_page_owner_memcg()` takes a user page's memcg for an objcg; see
/// the last test), which kills the program before the zone rule can speak.
const NO_PAGE_OWNER: &str = "page_owner=off";

fn example(name: &str) -> String {
    let p = examples_dir().join(name);
    p.to_str().expect("utf-8 path").to_string()
}

/// `shmemfuzz run PROG --kernel src-6.12 --workdir <dir> [--append A]...` in `wd`: exit
/// code, output, and the guest's console (kept in `dir`).
fn run(wd: &Workdir, dir: &str, prog: &str, append: &[&str]) -> (Option<i32>, String, String) {
    let started = Instant::now();
    // Absolute: QEMU is not started in `wd`, and a relative --workdir's sockets are not found.
    let abs = wd.path().join(dir);
    let abs = abs.to_str().expect("utf-8 path");
    let mut args = vec!["run", prog, "--kernel", KERNEL, "--workdir", abs];
    for a in append {
        args.extend(["--append", a]);
    }
    let o = shmemfuzz(&args, wd.path());
    let out = text(&o);
    eprintln!(
        "shmemfuzz {} ({:.0?}):\n{out}",
        args.join(" "),
        started.elapsed()
    );
    let console = console_of(&wd.path().join(dir));
    assert!(
        qemu_processes_mentioning(wd.path()).is_empty(),
        "no QEMU left behind"
    );
    (o.status.code(), out, console)
}

/// Every `console.log` under `dir`, concatenated (the session keeps it in its workdir).
fn console_of(dir: &std::path::Path) -> String {
    let mut text = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "console.log") {
                text.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
            }
        }
    }
    text
}

#[test]
#[ignore = "builds linux-source-6.12 and boots it"]
fn no_replace_on_6_12_is_a_zone_finding_through_slot_readahead_and_clean_without_it() {
    let wd = Workdir::new("kbuild-612");
    let started = Instant::now();
    let o = shmemfuzz(&["kernel", "fetch", KERNEL], wd.path());
    let out = text(&o);
    eprintln!("kernel fetch {KERNEL} ({:.0?}): {out}", started.elapsed());
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("6.12.") && out.contains("-shmemfuzz"), "{out}");

    let (code, out, console) = run(&wd, "on", &example(ROUTE), &[NO_REPLACE, NO_PAGE_OWNER]);
    assert!(
        console.contains(NO_REPLACE_LINE),
        "the console says the switch is on:\n{console}"
    );
    assert_eq!(code, Some(1), "a finding with the switch on: {out}");
    assert!(
        out.contains("signature: zone:memfd:touch:Normal"),
        "pages of the DMA32 memfd left in Normal after its fault: {out}"
    );

    // The harness's default command line (page_owner on): nothing misplaced, nothing read.
    let (code, out, console) = run(&wd, "off", &example(ROUTE), &[]);
    assert!(
        console.contains("Linux version 6.12."),
        "the console was kept:\n{console}"
    );
    assert!(
        !console.contains("planted regression"),
        "the switches are off by default:\n{console}"
    );
    assert_eq!(
        code,
        Some(0),
        "stock 6.12 replaces the readahead pages: {out}"
    );
    assert!(!out.contains("zone:"), "{out}");
    // Most of the 16 pages come back at a new PFN in DMA32 (15 or 16 measured: the
    // replacement's copies; one may be read before its neighbour's fault got there).
    let moved: u32 = out
        .lines()
        .find_map(|l| l.strip_prefix("DMA32 pages back from swap at a new PFN: "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(moved >= 8, "the replacement copied the pages: {out}");
}

#[test]
#[ignore = "builds linux-source-6.12 and boots it"]
fn reading_page_owner_of_the_misplaced_page_oopses_on_6_12_118() {
    // Not a harness finding but the kernel's: on 6.12.118 print_page_owner_memcg() casts any
    // memcg_data without MEMCG_DATA_OBJEXTS to an obj_cgroup, so a user page charged to a
    // memcg (whose memcg_data is the mem_cgroup itself) sends it through a wild pointer. The
    // agent reads page_owner only for the first misplaced page, so only the planted switch
    // gets there. When a newer linux-source-6.12 fixes it this test fails: then drop
    // NO_PAGE_OWNER above and this test.
    let wd = Workdir::new("kbuild-612-owner");
    let (code, out, _) = run(&wd, "owner", &example(ROUTE), &[NO_REPLACE]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("signature: kernel:OOPS:print_page_owner"),
        "{out}"
    );
}

#[test]
#[ignore = "builds linux-source-6.12 and boots it"]
fn no_pin_on_6_12_says_so_at_boot_and_a_swap_round_trip_stays_clean() {
    let wd = Workdir::new("kbuild-612-pin");
    let (code, out, console) = run(&wd, "pin", &example("pageout-roundtrip.prog"), &[NO_PIN]);
    assert!(
        console.contains(NO_PIN_LINE),
        "the console says the switch is on:\n{console}"
    );
    assert!(!console.contains(NO_REPLACE_LINE), "only the one switch");
    assert_eq!(
        code,
        Some(0),
        "no swapoff race in a plain round trip: {out}"
    );
}
