//! Choosing the accelerator: KVM only when it provably works, TCG otherwise.
//!
//! On hosts without nested virtualization `/dev/kvm` can exist and open while a KVM guest
//! never gets through a boot: QEMU then hangs forever. Measured on this project's machines
//! (no vmx/svm flag, `/dev/kvm` present): a 16-byte real-mode program *does* run under KVM,
//! `-cpu host` makes QEMU abort on an MSR write, and with the default CPU model the kernel
//! hangs right after "Probing EDD". So KVM is used only if
//!
//! 1. `/proc/cpuinfo` has the `vmx` or `svm` flag,
//! 2. `/dev/kvm` opens read-write, and
//! 3. two **bounded** trials with exactly the CPU arguments a VM would get
//!    (`-accel kvm -cpu host`) pass:
//!    - a 64 KiB firmware whose reset vector writes to an `isa-debug-exit` port (QEMU exits
//!      with status 3 within milliseconds iff KVM runs guest code at all), then
//!    - a boot of the given kernel with no initramfs and `-smp 2`: it must get all the way to
//!      "Kernel panic - not syncing" (no root file system), which `panic=-1` plus
//!      `-no-reboot` turn into QEMU's exit. That covers long mode, interrupts, timers and SMP
//!      bring-up.
//!
//!    A trial that has not finished after [`ProbeOptions::trial_timeout`] is SIGKILLed and
//!    counts as a failure. Nothing here ever waits on KVM without a bound.
//!
//! The trials' verdict is cached in a file keyed by the host kernel release, the CPU model
//! and the QEMU binary, so they run once per host. Steps 1 and 2 are cheap and re-checked
//! every time, even with a cached "kvm". `SHMEMFUZZ_ACCEL=tcg|kvm` overrides everything.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::cmdline::accel_args;
use super::error::VmError;
use super::resolve_qemu;
use super::Accel;
use crate::os::process::{file_tail, spawn_supervised, Group, Signal};

/// Environment variable that forces the accelerator (`tcg` or `kvm`).
pub const ACCEL_ENV: &str = "SHMEMFUZZ_ACCEL";

/// Exit status of QEMU when the trial firmware ran: `isa-debug-exit` exits with
/// `(value << 1) | 1`, and the firmware writes 1.
const TRIAL_EXIT_CODE: i32 = 3;

/// Inputs of [`probe_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOptions {
    /// QEMU binary (name in `PATH` or path).
    pub qemu: PathBuf,
    /// Where to cache the trial verdict; `None` runs the trial every time.
    pub cache_dir: Option<PathBuf>,
    /// Bound on each KVM trial.
    pub trial_timeout: Duration,
    /// Kernel to boot in the second trial. Without one KVM is never chosen (except through
    /// [`ACCEL_ENV`]): the firmware trial alone is known to pass where boots hang.
    pub kernel: Option<PathBuf>,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        Self {
            qemu: crate::kernels::runtime::default_qemu(),
            cache_dir: default_cache_dir(),
            trial_timeout: Duration::from_secs(20),
            kernel: None,
        }
    }
}

/// Where a verdict came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerdictSource {
    /// `SHMEMFUZZ_ACCEL`.
    Environment,
    /// The CPU flags or `/dev/kvm` ruled KVM out.
    HostCheck,
    /// A cached trial result.
    Cache,
    /// A trial run just now.
    Trial,
}

/// The accelerator chosen and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The accelerator to use.
    pub accel: Accel,
    /// How it was decided.
    pub source: VerdictSource,
    /// Human-readable reason (for logs).
    pub reason: String,
}

/// Outcome of one accelerator trial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrialOutcome {
    /// The trial firmware ran and QEMU exited as expected.
    Passed,
    /// QEMU exited otherwise (e.g. KVM refused); with its stderr.
    Failed(String),
    /// Nothing happened within the bound; QEMU was killed.
    TimedOut,
}

/// `$XDG_CACHE_HOME/shmemfuzz` or `$HOME/.cache/shmemfuzz` ([`crate::kernels::cachedir::user_cache_dir`]).
pub fn default_cache_dir() -> Option<PathBuf> {
    crate::kernels::cachedir::user_cache_dir()
}

/// Chooses the accelerator with default options, using `kernel` for the boot trial and
/// caching in `cache_dir` (see the module docs). Fails only on an invalid `SHMEMFUZZ_ACCEL`
/// or a missing QEMU.
pub fn probe(kernel: &Path, cache_dir: Option<&Path>) -> Result<Accel, VmError> {
    let opts = ProbeOptions {
        cache_dir: cache_dir.map(Path::to_path_buf),
        kernel: Some(kernel.to_path_buf()),
        ..ProbeOptions::default()
    };
    probe_with(&opts).map(|v| v.accel)
}

/// The accelerator from `SHMEMFUZZ_ACCEL`, if set (empty counts as unset).
pub fn env_override() -> Result<Option<Accel>, VmError> {
    match std::env::var(ACCEL_ENV) {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => v
            .parse()
            .map(Some)
            .map_err(|_| VmError::BadAccelOverride { value: v }),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(v)) => Err(VmError::BadAccelOverride {
            value: v.to_string_lossy().into_owned(),
        }),
    }
}

/// Chooses the accelerator (see the module docs) and says why.
pub fn probe_with(opts: &ProbeOptions) -> Result<Verdict, VmError> {
    let verdict = |accel, source, reason: String| {
        tracing::info!("accelerator: {accel} ({reason})");
        Ok(Verdict {
            accel,
            source,
            reason,
        })
    };
    if let Some(a) = env_override()? {
        return verdict(a, VerdictSource::Environment, format!("{ACCEL_ENV}={a}"));
    }
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    if !cpu_has_virt(&cpuinfo) {
        return verdict(
            Accel::Tcg,
            VerdictSource::HostCheck,
            "the CPU has no vmx/svm flag (no nested virtualization)".into(),
        );
    }
    if let Err(e) = OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        return verdict(
            Accel::Tcg,
            VerdictSource::HostCheck,
            format!("/dev/kvm cannot be opened read-write: {e}"),
        );
    }
    let qemu = resolve_qemu(&opts.qemu)?;
    let cache_file = opts
        .cache_dir
        .as_ref()
        .map(|d| d.join(format!("accel-{}", cache_key(&cpuinfo, &qemu))));
    if let Some(f) = &cache_file {
        if let Ok(s) = std::fs::read_to_string(f) {
            if let Some(a) = s.lines().next().and_then(|l| l.parse::<Accel>().ok()) {
                return verdict(
                    a,
                    VerdictSource::Cache,
                    format!("cached trial result in {}", f.display()),
                );
            }
        }
    }
    let Some(kernel) = &opts.kernel else {
        return verdict(
            Accel::Tcg,
            VerdictSource::HostCheck,
            "no kernel given for the KVM boot trial".into(),
        );
    };
    let scratch = tempfile::tempdir().map_err(VmError::io("creating a trial directory"))?;
    let t = opts.trial_timeout;
    let mut outcome = firmware_trial(&qemu, Accel::Kvm, t, scratch.path())?;
    let mut stage = "firmware";
    if outcome == TrialOutcome::Passed {
        outcome = kernel_trial(&qemu, Accel::Kvm, kernel, t, scratch.path())?;
        stage = "kernel boot";
    }
    let (accel, reason) = match &outcome {
        TrialOutcome::Passed => (Accel::Kvm, "KVM trials passed".to_owned()),
        TrialOutcome::Failed(e) => (Accel::Tcg, format!("KVM {stage} trial failed: {e}")),
        TrialOutcome::TimedOut => (
            Accel::Tcg,
            format!("KVM {stage} trial did not finish within {t:?} (KVM hangs here)"),
        ),
    };
    if let Some(f) = &cache_file {
        let write = || -> std::io::Result<()> {
            if let Some(d) = f.parent() {
                std::fs::create_dir_all(d)?;
            }
            crate::files::write_atomic(f, format!("{accel}\n{reason}\n").as_bytes())
        };
        if let Err(e) = write() {
            tracing::warn!(
                "cannot cache the accelerator verdict in {}: {e}",
                f.display()
            );
        }
    }
    verdict(accel, VerdictSource::Trial, reason)
}

/// Whether the `flags` of `/proc/cpuinfo` include `vmx` or `svm`.
pub fn cpu_has_virt(cpuinfo: &str) -> bool {
    cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .flat_map(|l| l.split_whitespace())
        .any(|f| f == "vmx" || f == "svm")
}

fn cache_key(cpuinfo: &str, qemu: &Path) -> String {
    let mut h = Sha256::new();
    h.update(b"shmemfuzz-accel-v1\n");
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    h.update(release.trim().as_bytes());
    h.update(b"\n");
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .unwrap_or("");
    h.update(model.as_bytes());
    h.update(b"\n");
    let qemu = std::fs::canonicalize(qemu).unwrap_or_else(|_| qemu.to_path_buf());
    h.update(qemu.as_os_str().as_encoded_bytes());
    if let Ok(m) = std::fs::metadata(&qemu) {
        h.update(format!("\n{} {} {}", m.size(), m.mtime(), m.ino()).as_bytes());
    }
    hex::encode(&h.finalize()[..8])
}

/// The trial firmware: 64 KiB (QEMU wants a multiple of 64 KiB), zero except the reset
/// vector at offset 0xFFF0 (physical 0xFFFFFFF0):
/// `mov al, 1; out 0xf4, al; cli; hlt; jmp $-3`.
pub fn trial_firmware() -> Vec<u8> {
    let mut fw = vec![0u8; 64 * 1024];
    let code = [0xB0, 0x01, 0xE6, 0xF4, 0xFA, 0xF4, 0xEB, 0xFD];
    fw[0xFFF0..0xFFF0 + code.len()].copy_from_slice(&code);
    fw
}

/// Runs the trial firmware under `accel` (with a VM's CPU arguments), bounded by `timeout`,
/// using `scratch` for files. Never leaves a killable QEMU behind.
pub fn firmware_trial(
    qemu: &Path,
    accel: Accel,
    timeout: Duration,
    scratch: &Path,
) -> Result<TrialOutcome, VmError> {
    let fw = scratch.join("trial-firmware.bin");
    std::fs::write(&fw, trial_firmware()).map_err(VmError::io("writing the trial firmware"))?;
    let mut args: Vec<OsString> = [
        "-m",
        "16",
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=0x04",
        "-bios",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.push(fw.into_os_string());
    let r = run_bounded(qemu, accel, args, timeout, scratch, "firmware")?;
    Ok(match r {
        Bounded::Exited {
            code: Some(TRIAL_EXIT_CODE),
            ..
        } => TrialOutcome::Passed,
        Bounded::Exited { code, stderr, .. } => {
            TrialOutcome::Failed(format!("exit code {code:?}: {stderr}"))
        }
        Bounded::TimedOut => TrialOutcome::TimedOut,
    })
}

/// Boots `kernel` under `accel` with no initramfs and two vCPUs; passes iff the kernel
/// reaches its "cannot mount root" panic and QEMU exits within `timeout`.
pub fn kernel_trial(
    qemu: &Path,
    accel: Accel,
    kernel: &Path,
    timeout: Duration,
    scratch: &Path,
) -> Result<TrialOutcome, VmError> {
    if !kernel.is_file() {
        return Err(VmError::MissingFile {
            what: "trial kernel",
            path: kernel.to_path_buf(),
        });
    }
    let console = scratch.join("trial-console.log");
    let mut args: Vec<OsString> = ["-m", "512", "-smp", "2", "-serial"]
        .iter()
        .map(OsString::from)
        .collect();
    let mut serial = OsString::from("file:");
    serial.push(&console);
    args.push(serial);
    args.push("-kernel".into());
    args.push(kernel.as_os_str().to_owned());
    args.push("-append".into());
    args.push("console=ttyS0 panic=-1 loglevel=4".into());
    let r = run_bounded(qemu, accel, args, timeout, scratch, "kernel")?;
    let log = std::fs::read(&console).unwrap_or_default();
    let panicked = log
        .windows(KERNEL_TRIAL_MARK.len())
        .any(|w| w == KERNEL_TRIAL_MARK.as_bytes());
    Ok(match r {
        Bounded::Exited { code: Some(0), .. } if panicked => TrialOutcome::Passed,
        Bounded::Exited { code, stderr, .. } => TrialOutcome::Failed(format!(
            "exit code {code:?}, {} console bytes{}: {stderr}",
            log.len(),
            if panicked { "" } else { " without a panic" }
        )),
        Bounded::TimedOut => TrialOutcome::TimedOut,
    })
}

/// What the kernel trial waits for.
const KERNEL_TRIAL_MARK: &str = "Kernel panic - not syncing";

enum Bounded {
    Exited { code: Option<i32>, stderr: String },
    TimedOut,
}

fn run_bounded(
    qemu: &Path,
    accel: Accel,
    extra: Vec<OsString>,
    timeout: Duration,
    scratch: &Path,
    name: &str,
) -> Result<Bounded, VmError> {
    let qemu = resolve_qemu(qemu)?;
    let stderr_path = scratch.join(format!("trial-{name}.stderr"));
    let stderr = std::fs::File::create(&stderr_path).map_err(VmError::io("trial stderr"))?;
    let mut cmd = crate::kernels::runtime::qemu_command(&qemu);
    cmd.args([
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
        "-nic",
        "none",
        "-machine",
        "pc",
    ])
    .args(accel_args(accel))
    .args(extra)
    .current_dir(scratch)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::from(stderr));
    let child = spawn_supervised(cmd, Signal::SIGKILL).map_err(|e| {
        if e.kind() == ErrorKind::NotFound {
            VmError::QemuNotFound {
                name: qemu.display().to_string(),
            }
        } else {
            VmError::io("spawning an accelerator trial")(e)
        }
    })?;
    let group = Group::new(child);
    let status = group
        .wait_timeout(timeout)
        .map_err(VmError::io("waiting for an accelerator trial"))?;
    Ok(match status {
        Some(s) => Bounded::Exited {
            code: s.code(),
            stderr: file_tail(&stderr_path, 2048),
        },
        None => {
            if group.kill_and_reap(Duration::from_secs(10)).is_none() {
                tracing::error!(
                    "accelerator trial QEMU pid {} survives SIGKILL; leaving it",
                    group.pid()
                );
            }
            Bounded::TimedOut
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::vm::DEFAULT_QEMU;
    use std::time::Instant;

    /// QEMU is a requirement of this crate's tests: without it they fail, never pass empty.
    fn require_qemu() {
        if let Err(e) = resolve_qemu(Path::new(DEFAULT_QEMU)) {
            panic!("this test runs {DEFAULT_QEMU}: {e}");
        }
    }

    #[test]
    fn cpu_flags() {
        assert!(cpu_has_virt("processor : 0\nflags\t\t: fpu vme vmx sse\n"));
        assert!(cpu_has_virt("flags : fpu svm\n"));
        assert!(!cpu_has_virt("flags : fpu vmxx sse\nmodel name : vmx\n"));
        assert!(!cpu_has_virt(""));
    }

    #[test]
    fn firmware_reset_vector() {
        let fw = trial_firmware();
        assert_eq!(fw.len(), 65536);
        assert_eq!(&fw[0xFFF0..0xFFF4], &[0xB0, 0x01, 0xE6, 0xF4]);
    }

    #[test]
    fn tcg_trial_passes() {
        require_qemu();
        let dir = tempfile::tempdir().expect("tempdir");
        let out = firmware_trial(
            Path::new(DEFAULT_QEMU),
            Accel::Tcg,
            Duration::from_secs(30),
            dir.path(),
        )
        .expect("trial");
        assert_eq!(out, TrialOutcome::Passed);
    }

    /// Whatever KVM does on the host, the trial comes back within its bound.
    #[test]
    fn kvm_trial_is_bounded() {
        require_qemu();
        let dir = tempfile::tempdir().expect("tempdir");
        let t0 = Instant::now();
        let out = firmware_trial(
            Path::new(DEFAULT_QEMU),
            Accel::Kvm,
            Duration::from_secs(3),
            dir.path(),
        )
        .expect("trial");
        assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
        eprintln!("KVM trial here: {out:?} after {:?}", t0.elapsed());
    }

    #[test]
    fn missing_qemu_names_package() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = firmware_trial(
            Path::new("/nonexistent/qemu-system-x86_64"),
            Accel::Tcg,
            Duration::from_secs(1),
            dir.path(),
        )
        .expect_err("must fail");
        assert!(e.to_string().contains("apt-get install -y qemu-system-x86"));
    }
}
