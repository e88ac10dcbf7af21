//! Self-built kernel tests: build Debian's linux-source-6.1 with `kernels/configs/base.config`,
//! `debug.config` (KCOV, DEBUG_VM) and the planted-regression patches (or reuse the cached build: a no-change rebuild does
//! not run make), then boot it through the harness's own session path.
//!
//! `#[ignore]`d: a fresh build takes minutes (about 5 on 2 cores) and needs the Debian
//! archive. Run with `cargo test -p shmemfuzz --test kbuild -- --ignored --nocapture`.

mod fixture;

use std::process::Command;
use std::sync::Mutex;

use fixture::{example, Workdir};
use shmemfuzz::context::Context;
use shmemfuzz::kbuild::{build_debian_source, BuiltKernel, KbuildEvent, SourceBuild};
use shmemfuzz::session::{Session, SessionOptions};
use shmemfuzz_core::protocol::ChildExit;

/// The console line the planted-regression patch prints when its switch is on.
const PLANTED_LINE: &str = "shmem: planted regression: shmem.planted_no_replace=1";
/// The switch, as it goes on the kernel command line.
const PLANTED_SWITCH: &str = "shmem.planted_no_replace=1";

/// One build per test process; the build itself is also serialised by a lock file.
static BUILT: Mutex<Option<BuiltKernel>> = Mutex::new(None);

fn built() -> BuiltKernel {
    let mut slot = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(k) = slot.as_ref() {
        return k.clone();
    }
    let ctx = Context::new().expect("catalog loads");
    let spec = SourceBuild::from_repo(&ctx.root, ctx.catalog.source("src-6.1").expect("listed"))
        .expect("repo fragments and patches");
    let k = build_debian_source(&ctx.cache_dir, &spec, &|e| match e {
        KbuildEvent::Output { .. } => {}
        other => eprintln!("kbuild: {other:?}"),
    })
    .unwrap_or_else(|e| panic!("building linux-source-6.1: {e}"));
    let size = std::fs::metadata(&k.kernel.bzimage).map_or(0, |m| m.len());
    eprintln!(
        "kbuild: {} release {} in {} s (make ran: {}), bzImage {} bytes, patches {:?}",
        k.kernel.id,
        k.kernel.release,
        k.build_secs,
        k.ran_make,
        size,
        k.patches.iter().map(|p| &p.name).collect::<Vec<_>>()
    );
    *slot = Some(k.clone());
    k
}

fn console(s: &Session) -> String {
    std::fs::read_to_string(s.console_path()).unwrap_or_default()
}

/// Boots the self-built kernel with the mock GMA500 driver built against its build dir and
/// `append` on the kernel command line. (Not `fixture::boot_with`: that builds the mock
/// against a catalog kernel's headers.)
fn boot(k: &BuiltKernel, wd: &Workdir, append: &[&str]) -> Session {
    let ctx = Context::new().expect("catalog loads");
    let accel = ctx.accel(&k.kernel.bzimage).expect("accelerator probe");
    let mock = ctx
        .mock_module_for_tree(&k.build_dir, &k.kernel.release)
        .unwrap_or_else(|e| panic!("building the mock driver against {:?}: {e}", k.build_dir));
    let mut opts = SessionOptions::new(wd.path().join("session"), accel);
    opts.modules = vec![mock];
    opts.append = append.iter().map(|a| a.to_string()).collect();
    let s = Session::boot(&k.kernel, &opts)
        .unwrap_or_else(|e| panic!("booting {}: {e:#}", k.kernel.id));
    eprintln!(
        "{}: ready after {} ms (guest uptime {} ms), modules loaded {:?}",
        k.kernel.id, s.info.ready_after_ms, s.info.boot_ms, s.info.modules
    );
    assert_eq!(s.info.release, k.kernel.release, "booted the built kernel");
    assert!(
        s.info.release.starts_with("6.1.") && s.info.release.ends_with("-shmemfuzz"),
        "{}",
        s.info.release
    );
    assert_eq!(
        s.info.modules,
        ["gma500_mock.ko"],
        "only the mock is loaded: virtio and drm are built in"
    );
    s
}

/// Runs the smallest swap round trip (no DMA32 mask: nothing to replace) and checks it is
/// clean whichever way the switch is.
fn roundtrip_is_clean(s: &mut Session) {
    let program = example("pageout-roundtrip.prog");
    let out = s.run(&program, &mut |_| {}).expect("the run completes");
    assert_eq!(out.exit, Some(ChildExit::Completed));
    assert_eq!(out.records.len(), program.ops.len());
    // `madvise v0 ... pageout` (op 4) wrote the memfd's pages to the swap disk.
    assert!(
        out.records[4].swap_used_kib > 0,
        "pageout reached swap: {:?}",
        out.records[4]
    );
    assert!(
        out.verdict.is_clean(),
        "findings on the self-built kernel: {:#?}",
        out.verdict.findings
    );
}

/// The debug fragment's KCOV: the executor's syscalls are traced, and the host finds mm/'s
/// share of the PCs from the build tree (System.map + nm over mm/built-in.a).
fn kcov_sees_mm(k: &BuiltKernel, s: &mut Session) {
    let out = s
        .run(&example("pageout-roundtrip.prog"), &mut |_| {})
        .expect("the run completes");
    let pcs = out.kcov.expect("the debug fragment has KCOV");
    let mm = shmemfuzz::feedback::MmText::from_build_dir(&k.build_dir).expect("mm/ ranges");
    let in_mm = pcs.iter().filter(|p| mm.contains(p.pc)).count();
    eprintln!("KCOV: {} PCs, {in_mm} in mm/", pcs.len());
    assert!(
        in_mm > 100,
        "the swap round trip runs mm/ code: {in_mm} PCs"
    );
    assert!(
        in_mm < pcs.len(),
        "and code outside mm/ (syscall entry, fs)"
    );
}

/// The address range of the text symbol `name` in the build's System.map: from its address
/// to the next symbol's.
fn symbol_range(k: &BuiltKernel, name: &str) -> std::ops::Range<u64> {
    let map = std::fs::read_to_string(k.build_dir.join("System.map")).expect("System.map");
    let mut addrs: Vec<(u64, &str)> = map
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let addr = u64::from_str_radix(f.next()?, 16).ok()?;
            let kind = f.next()?;
            matches!(kind, "t" | "T").then_some((addr, f.next()?))
        })
        .collect();
    addrs.sort_unstable();
    let at = addrs
        .iter()
        .position(|(_, n)| *n == name)
        .unwrap_or_else(|| panic!("{name} in System.map"));
    addrs[at].0..addrs[at + 1].0
}

/// A section's threads trace themselves: a swapoff that runs only in thread a of a section
/// shows up in the program's coverage as PCs inside `shmem_unuse` (without per-thread
/// tracing the executor's KCOV saw only the main thread, and no swapoff ran there).
fn kcov_sees_section_threads(k: &BuiltKernel, s: &mut Session) {
    let program = shmemfuzz_core::program::parse(
        "memfd m0 size=1M\n\
         write m0 off=0 len=1M seed=3\n\
         mmap v0 m0 off=0 len=1M shared\n\
         touch v0 off=0 len=1M read\n\
         madvise v0 off=0 len=1M pageout\n\
         munmap v0\n\
         threads\n\
         thread a\n\
         swapoff swap0\n\
         thread b\n\
         check m0 off=0 len=1M\n\
         join\n\
         swapon swap0\n",
    )
    .expect("a valid program");
    let out = s.run(&program, &mut |_| {}).expect("the run completes");
    assert!(out.verdict.is_clean(), "{:#?}", out.verdict.findings);
    let unuse = symbol_range(k, "shmem_unuse");
    let pcs = out.kcov.expect("the debug fragment has KCOV");
    let inside = pcs.iter().filter(|p| unuse.contains(&p.pc)).count();
    eprintln!("KCOV: {inside} PCs in shmem_unuse from thread a's swapoff");
    assert!(inside > 0, "thread a's swapoff is in the coverage");
}

/// The reference routes to `shmem_replace_folio` (examples/): the 6.1 WILLNEED route on a
/// DMA32 memfd and on a GEM object, and swap readahead of neighbouring slots.
const ROUTES: [&str; 3] = [
    "dma32-willneed.prog",
    "gem-willneed.prog",
    "dma32-readahead.prog",
];

/// Runs one route and returns its findings' signatures.
fn route_signatures(s: &mut Session, route: &str) -> Vec<String> {
    let out = s
        .run(&example(route), &mut |_| {})
        .expect("the run completes");
    assert_eq!(out.exit, Some(ChildExit::Completed));
    let sigs: Vec<String> = out
        .verdict
        .signatures()
        .into_iter()
        .map(String::from)
        .collect();
    eprintln!("{route}: {sigs:?}");
    sigs
}

#[test]
#[ignore = "builds a kernel"]
fn switch_off_the_self_built_kernel_is_clean() {
    let k = built();
    let wd = Workdir::new("kbuild-off");
    let mut s = boot(&k, &wd, &[]);
    roundtrip_is_clean(&mut s);
    kcov_sees_mm(&k, &mut s);
    kcov_sees_section_threads(&k, &mut s);
    let sigs: Vec<(&str, Vec<String>)> = ROUTES
        .iter()
        .map(|r| (*r, route_signatures(&mut s, r)))
        .collect();
    let text = console(&s);
    s.shutdown();
    for (route, sigs) in sigs {
        assert!(
            sigs.is_empty(),
            "{route}: stock behaviour replaces the pages: {sigs:?}"
        );
    }
    assert!(
        !text.contains("planted regression"),
        "the switch is off by default:\n{text}"
    );
}

#[test]
#[ignore = "builds a kernel"]
fn switch_on_the_console_says_so_and_the_zone_oracle_catches_it() {
    let k = built();
    let wd = Workdir::new("kbuild-on");
    let mut s = boot(&k, &wd, &[PLANTED_SWITCH]);
    roundtrip_is_clean(&mut s);
    let sigs: Vec<(&str, Vec<String>)> = ROUTES
        .iter()
        .map(|r| (*r, route_signatures(&mut s, r)))
        .collect();
    let text = console(&s);
    s.shutdown();
    let line = text.lines().find(|l| l.contains(PLANTED_LINE));
    eprintln!("console: {line:?}");
    assert!(
        line.is_some(),
        "the console shows the planted regression is on:\n{text}"
    );
    for (route, sigs) in &sigs {
        let kind = if route.starts_with("gem") {
            "zone:gem:"
        } else {
            "zone:memfd:"
        };
        assert!(
            sigs.iter().any(|sig| sig.starts_with(kind)),
            "{route}: pages of the DMA32 object left in Normal are a zone finding: {sigs:?}"
        );
    }
}

#[test]
#[ignore = "builds a kernel"]
fn a_second_build_without_changes_does_not_run_make() {
    let first = built();
    let ctx = Context::new().expect("catalog loads");
    let spec = SourceBuild::from_repo(&ctx.root, ctx.catalog.source("src-6.1").expect("listed"))
        .expect("repo fragments and patches");
    let again = build_debian_source(&ctx.cache_dir, &spec, &|_| {}).expect("rebuild");
    assert!(!again.ran_make, "nothing changed: make must not run");
    assert_eq!(again.kernel, first.kernel, "same id, release and paths");
    assert_eq!(again.config_hash, first.config_hash);
}

#[test]
#[ignore = "builds a kernel"]
fn out_of_tree_modules_build_against_the_build_dir() {
    let k = built();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("hello.c"),
        "#include <linux/module.h>\nstatic int __init hello_init(void) { return 0; }\n\
         module_init(hello_init);\nMODULE_LICENSE(\"GPL\");\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("Makefile"), "obj-m := hello.o\n").expect("write");
    let out = Command::new("make")
        .arg("-C")
        .arg(&k.build_dir)
        .arg(format!("M={}", dir.path().display()))
        .arg("modules")
        .env_remove("MAKEFLAGS")
        .output()
        .expect("make runs");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let modinfo = Command::new("/usr/sbin/modinfo")
        .args(["-F", "vermagic"])
        .arg(dir.path().join("hello.ko"))
        .output()
        .expect("modinfo runs");
    let vermagic = String::from_utf8_lossy(&modinfo.stdout);
    assert!(
        vermagic.starts_with(&format!("{} ", k.kernel.release)),
        "built for this kernel: {vermagic}"
    );
}

/// Runs the shmemfuzz CLI in `dir`.
fn cli(args: &[&str], dir: &std::path::Path) -> (Option<i32>, String) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_shmemfuzz"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("shmemfuzz runs");
    (
        o.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// Runs `prog` on the self-built kernel with the planted switch and records bundle `b` in
/// `dir`; the run must end in a finding. Returns the CLI's output.
fn record_planted(prog: &std::path::Path, dir: &std::path::Path) -> String {
    let prog = prog.to_str().expect("utf-8");
    let args = [
        "run",
        prog,
        "--kernel",
        "src-6.1",
        "--append",
        PLANTED_SWITCH,
        "--bundle",
        "b",
    ];
    let (code, out) = cli(&args, dir);
    assert_eq!(
        code,
        Some(1),
        "{prog} reproduces on the planted kernel: {out}"
    );
    out
}

#[test]
#[ignore = "builds a kernel"]
fn the_padded_planted_reproducer_minimizes_to_ten_ops_or_fewer_with_the_same_signature() {
    built();
    let wd = Workdir::new("kbuild-min");
    let padded =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/willneed-padded.prog");
    let out = record_planted(&padded, wd.path());
    assert!(out.contains("signature: zone:memfd:"), "{out}");
    let started = std::time::Instant::now();
    let (code, out) = cli(&["minimize", "b", "--out", "b.min"], wd.path());
    eprintln!("minimize took {:.1?}:\n{out}", started.elapsed());
    assert_eq!(code, Some(0), "{out}");
    let min = shmemfuzz::bundle::Bundle::read(&wd.path().join("b.min")).expect("a valid bundle");
    let ops = min.contents.program.ops.len();
    assert!(ops <= 10, "{ops} ops left:\n{}", min.contents.program);
    let original = shmemfuzz::bundle::Bundle::read(&wd.path().join("b")).expect("a valid bundle");
    assert!(
        original.contents.program.ops.len() >= 30,
        "the input was padded with at least 20 operations"
    );
    assert_eq!(
        min.contents.signature, original.contents.signature,
        "the same bug, not another one"
    );
    // Replayed on the same image with the switch off (another kernel, in effect): the
    // differences are reported per operation and the signature does not reproduce.
    let (code, out) = cli(&["replay", "b.min", "--no-append"], wd.path());
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("divergence(s) from the recording")
            && out.contains("recorded resident in Normal, replayed resident in DMA32"),
        "{out}"
    );
    assert!(out.contains("in 0/1 runs"), "{out}");
}

#[test]
#[ignore = "builds a kernel"]
fn replay_takes_a_kernel_image_from_a_build_tree() {
    let k = built();
    let wd = Workdir::new("kbuild-image");
    let prog =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/dma32-willneed.prog");
    record_planted(&prog, wd.path());
    let image = k.build_dir.join("arch/x86/boot/bzImage");
    let (code, out) = cli(
        &[
            "replay",
            "b",
            "--kernel-image",
            image.to_str().expect("utf-8"),
        ],
        wd.path(),
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("same results, data and page states/zones as the recording"),
        "{out}"
    );
    assert!(
        out.contains(&format!("in 1/1 runs on tree-{}", k.kernel.release)),
        "{out}"
    );
    let (code, out) = cli(&["replay", "b", "--kernel-tree", "/nonexistent"], wd.path());
    assert_eq!(code, Some(2), "a missing tree is a usage error: {out}");
}

#[test]
#[ignore = "builds a kernel"]
fn kernel_fetch_of_a_source_entry_builds_it_and_names_the_image() {
    let k = built();
    let wd = Workdir::new("kbuild-fetch");
    let (code, out) = cli(&["kernel", "fetch", "src-6.1"], wd.path());
    assert_eq!(code, Some(0), "{out}");
    let dir = k
        .build_dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("utf-8");
    assert!(
        out.contains(&format!("src-6.1: {}", k.kernel.release)) && out.contains(dir),
        "names the release and the build directory {dir}: {out}"
    );
}
