//! The boot benchmark: cold boot-to-agent-ready on a kernel, beside the floor for the same
//! kernel, measured in the same run.
//!
//! The floor is an initramfs holding only `/init` (the agent binary, so the unpacked size is
//! the same) started with `shmemfuzz_poweroff=1`, which the kernel passes to init as an
//! environment variable: init powers off at once. Floor time is launch to QEMU exit; ready
//! time is launch to the agent's `Ready` (mounts, loading the virtio modules, drm and the mock
//! driver, devices, settings).
//! Runs alternate floor/ready so drifting machine load hits both alike.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::guest::AGENT;
use crate::initramfs::InitramfsBuilder;
use crate::kernel::FetchedKernel;
use crate::session::{Session, SessionError, SessionOptions};
use crate::vm::{Accel, Machine, VmConfig};

#[derive(Clone, Debug, Default)]
pub struct BootFigures {
    pub ready_ms: Vec<u64>,
    pub floor_ms: Vec<u64>,
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

/// Boots `runs` times each way; `progress` hears about each measurement.
pub fn boot(
    kernel: &FetchedKernel,
    modules: &[std::path::PathBuf],
    accel: Accel,
    smp: u32,
    runs: u32,
    workdir: &Path,
    progress: &dyn Fn(&str, u64),
) -> Result<BootFigures, SessionError> {
    let mut figs = BootFigures::default();
    for i in 0..runs {
        let floor = floor_boot(kernel, accel, smp, &workdir.join(format!("floor{i}")))?;
        progress("floor", floor);
        figs.floor_ms.push(floor);
        let mut opts = SessionOptions::new(workdir.join(format!("ready{i}")), accel);
        opts.smp = smp;
        opts.modules = modules.to_vec();
        let s = Session::boot(kernel, &opts)?;
        let ready = s.info.ready_after_ms;
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
    dir: &Path,
) -> Result<u64, SessionError> {
    std::fs::create_dir_all(dir).map_err(|e| SessionError::Workdir(dir.to_path_buf(), e))?;
    let initramfs = dir.join("floor.cpio");
    let mut b = InitramfsBuilder::new();
    b.file("init", AGENT.to_vec(), 0o755)
        .map_err(crate::guest::GuestError::from)?;
    b.write_to(&initramfs)
        .map_err(crate::guest::GuestError::from)?;
    let mut cfg = VmConfig::new(kernel.bzimage.clone(), initramfs, dir.join("vm"));
    cfg.lifetime = Duration::from_secs(300);
    cfg.accel = accel;
    cfg.smp = smp;
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
