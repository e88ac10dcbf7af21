//! The boot benchmark: cold boot-to-agent-ready on a kernel, beside the floor for the same
//! kernel, measured in the same run.
//!
//! The floor is an initramfs holding only `/init` (the agent binary, so the unpacked size is
//! the same) started with `shmemfuzz_poweroff=1`, which the kernel passes to init as an
//! environment variable: init powers off at once. Floor time is launch to QEMU exit; ready
//! time is launch to the agent's `Ready` (mounts, loading the virtio modules, drm and the mock
//! driver, devices, settings).
//! Runs alternate floor/ready so drifting machine load hits both alike.
//!
//! The recovery benchmark ([`recover`]): cold boots beside restores of a snapshot taken at
//! `Ready` (what a runner pays after a run killed its guest), on the same kernel.
//!
//! Beside them: [`exec`], executions per second beside a C floor; [`corpus`], a fixed
//! fuzzer-made corpus through one worker.

pub mod corpus;
pub mod exec;

use std::path::Path;
use std::time::{Duration, Instant};

use crate::guest::initramfs::InitramfsBuilder;
use crate::guest::vm::{Accel, Machine, VmConfig};
use crate::guest::AGENT;
use crate::kernels::kernel::FetchedKernel;
use crate::session::{Session, SessionError, SessionOptions};

#[derive(Clone, Debug, Default)]
pub struct BootFigures {
    pub ready_ms: Vec<u64>,
    pub floor_ms: Vec<u64>,
    /// The guest kernel's uptime when the agent said `Ready`: what the kernel and the agent
    /// took, without firmware, decompression and QEMU's own start.
    pub uptime_ms: Vec<u64>,
}

/// How a benchmark prints an agent phase: "agent: teardown: swapoff", and a part of a phase
/// ("program/observe") indented under it as "program: observe".
pub fn phase_label(phase: &str) -> String {
    match phase.split_once('/') {
        Some((parent, part)) => format!("    {parent}: {part}"),
        None => format!("agent: {phase}"),
    }
}

/// Adds the agent's phases of one run to a benchmark's totals (ms, by [`phase_label`]);
/// returns the milliseconds they account for (parts are inside their phase: not again).
pub fn add_agent_phases(
    teardown: Option<&shmemfuzz_core::protocol::Teardown>,
    add: &mut dyn FnMut(&str, f64),
) -> f64 {
    let mut accounted = 0.0;
    for (phase, us) in teardown.iter().flat_map(|t| &t.phases_us) {
        let ms = *us as f64 / 1e3;
        add(&phase_label(phase), ms);
        if !shmemfuzz_core::protocol::is_part(phase) {
            accounted += ms;
        }
    }
    accounted
}

pub fn median(v: &[u64]) -> u64 {
    let mut s = v.to_vec();
    s.sort_unstable();
    s.get(s.len() / 2).copied().unwrap_or(0)
}

impl BootFigures {
    pub fn ratio(&self) -> f64 {
        median(&self.ready_ms) as f64 / median(&self.floor_ms).max(1) as f64
    }
}

/// How [`boot`] boots: the accelerator, vCPUs, boots each way and extra kernel arguments.
#[derive(Clone, Debug)]
pub struct BootPlan {
    pub accel: Accel,
    pub smp: u32,
    pub runs: u32,
    pub append: Vec<String>,
}

/// Boots `plan.runs` times each way; `progress` hears about each measurement.
pub fn boot(
    kernel: &FetchedKernel,
    modules: &[std::path::PathBuf],
    plan: &BootPlan,
    workdir: &Path,
    progress: &dyn Fn(&str, u64),
) -> Result<BootFigures, SessionError> {
    let BootPlan {
        accel,
        smp,
        runs,
        ref append,
    } = *plan;
    let mut figs = BootFigures::default();
    for i in 0..runs {
        let dir = workdir.join(format!("floor{i}"));
        let floor = floor_boot(kernel, accel, smp, append, &dir)?;
        progress("floor", floor);
        figs.floor_ms.push(floor);
        let mut opts = SessionOptions::new(workdir.join(format!("ready{i}")), accel);
        opts.smp = smp;
        opts.modules = modules.to_vec();
        opts.append.extend(append.iter().cloned());
        let s = Session::boot(kernel, &opts)?;
        let ready = s.info.ready_after_ms;
        figs.uptime_ms.push(s.info.boot_ms);
        s.shutdown();
        progress("ready", ready);
        figs.ready_ms.push(ready);
    }
    Ok(figs)
}

fn floor_boot(
    kernel: &FetchedKernel,
    accel: Accel,
    smp: u32,
    append: &[String],
    dir: &Path,
) -> Result<u64, SessionError> {
    std::fs::create_dir_all(dir).map_err(|e| SessionError::Workdir(dir.to_path_buf(), e))?;
    let initramfs = dir.join("floor.cpio");
    let mut b = InitramfsBuilder::new();
    b.file("init", AGENT.to_vec(), 0o755)
        .map_err(crate::guest::GuestError::from)?;
    b.write_to(&initramfs)
        .map_err(crate::guest::GuestError::from)?;
    let image = crate::guest::vm::pvh::boot_image(&kernel.bzimage);
    let mut cfg = VmConfig::new(image, initramfs, dir.join("vm"));
    cfg.lifetime = Duration::from_secs(300);
    cfg.accel = accel;
    cfg.smp = smp;
    cfg.append.extend(append.iter().cloned());
    cfg.append.push("shmemfuzz_poweroff=1".into());
    let start = Instant::now();
    let m = Machine::launch(cfg)?;
    // The agent channel must be accepted or QEMU waits for it.
    let _chan = m.connect_channel(Duration::from_secs(30))?;
    match m.wait_exit(Duration::from_secs(300))? {
        Some(_) => Ok(start.elapsed().as_millis() as u64),
        None => Err(SessionError::Boot {
            secs: 300,
            why: "the floor guest did not power off".into(),
            console: m.stderr_tail(),
        }),
    }
}

/// What [`recover`] measured on one kernel (all times host wall clock).
#[derive(Clone, Debug, Default)]
pub struct RecoverFigures {
    /// Cold boots: launch to the agent's `Ready`.
    pub cold_ms: Vec<u64>,
    /// Saving the snapshot of the first cold-booted guest, and the stream's size.
    pub save_ms: u64,
    pub snapshot_bytes: u64,
    /// Restores, each after a run that ended in a kernel report: launch to running.
    pub restore_ms: Vec<u64>,
}

impl RecoverFigures {
    /// Median restore over median cold boot.
    pub fn ratio(&self) -> f64 {
        median(&self.restore_ms) as f64 / median(&self.cold_ms).max(1) as f64
    }
}

/// Cold boots `runs` times (snapshotting the first guest), then `runs` times: restores the
/// snapshot, checks the guest with `check` (it must run clean) and kills it with `crash`
/// (it must end in a kernel report, as a finding run does). `opts.workdir` is the parent
/// of every guest's directory.
pub fn recover(
    kernel: &FetchedKernel,
    opts: &SessionOptions,
    runs: u32,
    check: &shmemfuzz_core::program::Program,
    crash: &shmemfuzz_core::program::Program,
    progress: &dyn Fn(&str, u64),
) -> Result<RecoverFigures, SessionError> {
    let mut figs = RecoverFigures::default();
    let dir = |name: String| {
        let mut o = opts.clone();
        o.workdir = opts.workdir.join(name);
        o
    };
    let snap_dir = opts.workdir.join("snapshot");
    std::fs::create_dir_all(&snap_dir).map_err(|e| SessionError::Workdir(snap_dir.clone(), e))?;
    let mut snapshot = None;
    for i in 0..runs {
        let o = dir(format!("cold{i}"));
        let s = Session::boot(kernel, &o)?;
        progress("cold", s.info.ready_after_ms);
        figs.cold_ms.push(s.info.ready_after_ms);
        if snapshot.is_none() {
            let snap = s.snapshot(&snap_dir, &o)?;
            progress("save", snap.save_ms);
            figs.save_ms = snap.save_ms;
            figs.snapshot_bytes = snap.bytes;
            snapshot = Some(snap);
        }
        s.shutdown();
    }
    let Some(snapshot) = snapshot else {
        return Ok(figs);
    };
    for i in 0..runs {
        let mut s = Session::restore(kernel, &dir(format!("restore{i}")), &snapshot)?;
        progress("restore", s.info.ready_after_ms);
        figs.restore_ms.push(s.info.ready_after_ms);
        let out = s.run(check, &mut |_| {})?;
        if !out.verdict.is_clean() {
            return Err(SessionError::Agent(format!(
                "the restored guest did not run the check program clean: {:?}",
                out.verdict.signatures()
            )));
        }
        let out = s.run(crash, &mut |_| {})?;
        if out.vm_alive
            || !out
                .verdict
                .signatures()
                .iter()
                .any(|s| s.starts_with("kernel:"))
        {
            return Err(SessionError::Agent(format!(
                "the crash program did not end the restored guest in a kernel report: {:?}",
                out.verdict.signatures()
            )));
        }
        s.shutdown();
    }
    Ok(figs)
}
