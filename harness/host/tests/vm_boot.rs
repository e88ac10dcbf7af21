//! Boots real kernels under QEMU. Ignored by default (`ci/test.sh` runs them); run with
//!
//! ```sh
//! cargo test -p shmemfuzz --test vm_boot -- --ignored --nocapture
//! ```
//! The kernel is the catalog's default (fetched into the cache on first use), or
//! `SHMEMFUZZ_TEST_KERNEL=/path/to/vmlinuz`.
//!
//! `measure_boot_times` prints boot-to-poweroff figures; give it several kernels with
//! `SHMEMFUZZ_TEST_KERNELS=/a/vmlinuz:/b/vmlinuz` (defaults to `SHMEMFUZZ_TEST_KERNEL`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use shmemfuzz::initramfs::InitramfsBuilder;
use shmemfuzz::vm::{accel, live_group_members, Accel, ConsoleRead, Machine, VmConfig};

const POWEROFF_INIT: &str = r#"
#include <sys/reboot.h>
#include <unistd.h>
int main(void) { reboot(RB_POWER_OFF); for (;;) pause(); }
"#;

const SLEEP_INIT: &str = r#"
#include <unistd.h>
int main(void) { for (;;) pause(); }
"#;

fn test_kernel() -> Option<PathBuf> {
    match std::env::var_os("SHMEMFUZZ_TEST_KERNEL") {
        Some(k) if !k.is_empty() => Some(PathBuf::from(k)),
        _ => {
            static FETCH: std::sync::Mutex<()> = std::sync::Mutex::new(());
            let _one_at_a_time = FETCH.lock().unwrap_or_else(|e| e.into_inner());
            let ctx = shmemfuzz::context::Context::new().expect("catalog loads");
            let k = ctx
                .kernel(None, &|_| {})
                .unwrap_or_else(|e| panic!("fetching the default kernel: {e:#}"));
            Some(k.bzimage)
        }
    }
}

/// Compiles `src` with `gcc -static` and packs it as `/init` (plus `/dev/console`).
fn initramfs(dir: &Path, name: &str, src: &str) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    let bin = dir.join(name);
    std::fs::write(&c, src).expect("write C source");
    match Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&bin)
        .arg(&c)
        .status()
    {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("gcc -static failed ({s}); is libc6-dev installed?"),
        Err(e) => panic!("cannot run gcc ({e}): apt-get install -y gcc libc6-dev"),
    }
    let mut b = InitramfsBuilder::new();
    b.file_from_path("/init", &bin, 0o755)
        .expect("init")
        .char_device("/dev/console", 5, 1, 0o600)
        .expect("console");
    let out = dir.join(format!("{name}.cpio"));
    b.write_to(&out).expect("write initramfs");
    out
}

fn config(dir: &Path, kernel: &Path, initrd: &Path, workdir: &str) -> VmConfig {
    let mut cfg = VmConfig::new(kernel, initrd, dir.join(workdir));
    cfg.accel = accel::probe(kernel, None).expect("probe");
    cfg
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Reads console chunks until `needle` shows up (true) or `timeout` passes / QEMU exits.
fn wait_console(vm: &Machine, seen: &mut Vec<u8>, needle: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while !contains(seen, needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        match vm.recv_console(left.min(Duration::from_millis(500))) {
            ConsoleRead::Data(d) => seen.extend_from_slice(&d),
            ConsoleRead::Timeout => {}
            ConsoleRead::Closed => return contains(seen, needle),
        }
    }
    true
}

fn assert_gone(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = live_group_members(pid);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes left in QEMU's group {pid}: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "boots a VM"]
fn boots_and_powers_off() {
    let Some(kernel) = test_kernel() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let initrd = initramfs(tmp.path(), "poweroff", POWEROFF_INIT);
    let mut cfg = config(tmp.path(), &kernel, &initrd, "vm");
    cfg.smp = 2;
    cfg.lifetime = Duration::from_secs(180);
    let vm = Machine::launch(cfg).expect("launch");
    eprintln!("{}", vm.command_line());
    // QEMU connects the agent channel while it starts.
    let _chan = vm
        .connect_channel(Duration::from_secs(20))
        .expect("agent channel");
    let status = vm
        .wait_exit(Duration::from_secs(180))
        .expect("wait")
        .expect("QEMU must exit within the lifetime");
    let took = vm.elapsed();
    assert!(!vm.lifetime_expired(), "killed by the watchdog");
    assert!(status.success(), "{status}: {}", vm.stderr_tail());
    let console = std::fs::read(vm.console_path()).expect("console log");
    assert!(contains(&console, "Linux version"), "no banner");
    assert!(contains(&console, "reboot: Power down"), "no power-off");
    // The zone layout the whole tool depends on.
    assert!(contains(&console, "DMA32"), "no DMA32 zone");
    assert!(
        contains(&console, "  Normal   [mem 0x0000000100000000"),
        "no Normal zone above 4 GiB"
    );
    eprintln!("boot to power-off: {took:?}");
    let pid = vm.pid();
    drop(vm);
    assert_gone(pid);
}

#[test]
#[ignore = "boots a VM"]
fn hung_guest_is_killed_at_lifetime() {
    let Some(kernel) = test_kernel() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let initrd = initramfs(tmp.path(), "sleep", SLEEP_INIT);
    let mut cfg = config(tmp.path(), &kernel, &initrd, "vm");
    let lifetime = Duration::from_secs(60);
    cfg.lifetime = lifetime;
    let vm = Machine::launch(cfg).expect("launch");
    let mut seen = Vec::new();
    assert!(
        wait_console(&vm, &mut seen, "Run /init as init process", lifetime),
        "init never ran"
    );
    // The monitor and sysrq work on a live guest.
    let status = vm.monitor_command("info status").expect("info status");
    assert!(status.contains("running"), "{status:?}");
    vm.sysrq('w').expect("sysrq w");
    assert!(
        wait_console(
            &vm,
            &mut seen,
            "Show Blocked State",
            Duration::from_secs(30)
        ),
        "sysrq-w had no effect"
    );
    assert!(vm.is_running());
    let status = vm
        .wait_exit(lifetime + Duration::from_secs(30))
        .expect("wait")
        .expect("the watchdog must kill QEMU");
    assert!(vm.lifetime_expired());
    assert!(!status.success());
    assert!(vm.elapsed() >= lifetime);
    let pid = vm.pid();
    assert_gone(pid);
    drop(vm);
    assert_gone(pid);
}

#[test]
#[ignore = "boots a VM"]
fn drop_kills_a_running_guest() {
    let Some(kernel) = test_kernel() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let initrd = initramfs(tmp.path(), "sleep", SLEEP_INIT);
    let mut cfg = config(tmp.path(), &kernel, &initrd, "vm");
    cfg.lifetime = Duration::from_secs(600);
    let vm = Machine::launch(cfg).expect("launch");
    let mut seen = Vec::new();
    assert!(wait_console(
        &vm,
        &mut seen,
        "Linux version",
        Duration::from_secs(60)
    ));
    let pid = vm.pid();
    assert!(!live_group_members(pid).is_empty());
    let t0 = Instant::now();
    drop(vm);
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert_gone(pid);
}

/// The kernel boot trial of the accelerator probe, run under TCG where it must pass.
#[test]
#[ignore = "boots a VM"]
fn kernel_trial_under_tcg() {
    let Some(kernel) = test_kernel() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = accel::kernel_trial(
        Path::new(shmemfuzz::vm::DEFAULT_QEMU),
        Accel::Tcg,
        &kernel,
        Duration::from_secs(120),
        tmp.path(),
    )
    .expect("trial");
    assert_eq!(out, accel::TrialOutcome::Passed);
}

/// Prints boot figures: time until `/init` runs and until QEMU exits after power-off, per
/// kernel and vCPU count, under the probed accelerator.
#[test]
#[ignore = "boots VMs; prints figures"]
fn measure_boot_times() {
    let kernels: Vec<PathBuf> = match std::env::var("SHMEMFUZZ_TEST_KERNELS") {
        Ok(v) if !v.is_empty() => v.split(':').map(PathBuf::from).collect(),
        _ => match test_kernel() {
            Some(k) => vec![k],
            None => return,
        },
    };
    let runs: u32 = std::env::var("SHMEMFUZZ_BOOT_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let tmp = tempfile::tempdir().expect("tempdir");
    let initrd = initramfs(tmp.path(), "poweroff", POWEROFF_INIT);
    println!("kernel\tsmp\taccel\trun\tinit_s\texit_s");
    for kernel in &kernels {
        for smp in [1, 2] {
            for run in 0..runs {
                let mut cfg = config(tmp.path(), kernel, &initrd, "m");
                cfg.smp = smp;
                cfg.lifetime = Duration::from_secs(300);
                let acc = cfg.accel;
                let vm = Machine::launch(cfg).expect("launch");
                let mut seen = Vec::new();
                let init_at = wait_console(
                    &vm,
                    &mut seen,
                    "Run /init as init process",
                    Duration::from_secs(300),
                )
                .then(|| vm.elapsed());
                let st = vm
                    .wait_exit(Duration::from_secs(300))
                    .expect("wait")
                    .expect("exit");
                assert!(st.success() && !vm.lifetime_expired());
                println!(
                    "{}\t{smp}\t{acc}\t{run}\t{:.2}\t{:.2}",
                    kernel.file_name().unwrap_or_default().to_string_lossy(),
                    init_at.map_or(f64::NAN, |d| d.as_secs_f64()),
                    vm.elapsed().as_secs_f64()
                );
            }
        }
    }
}
