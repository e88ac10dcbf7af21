//! shmemfuzz-agent: the guest's PID 1.
//!
//! Boot: mount the pseudo filesystems, load the modules the host listed, pin the VM settings,
//! open the virtio-serial port and report `Ready`. Then serve the host: each `Run` forks a
//! child in a fresh memory cgroup that executes the program ([`exec`]), while this process
//! watches it with a deadline per operation and tears down afterwards ([`supervise`]).
//!
//! PID 1 must never exit (the kernel would panic and the host would call that a finding), so
//! every fatal error is printed as `shmemfuzz-agent: fatal: …` on the console, which the host
//! reads as a harness failure, and the guest powers off.
//!
//! - [`setup`]: mounts, modules, sysctls, the port, the swap devices.
//! - [`swapdev`]: the swap devices on the media the kernel command line asks for (disk, ssd,
//!   zram).
//! - [`exec`]: the program executor in the forked child.
//! - [`supervise`]: fork, cgroup, per-operation deadline.
//! - [`teardown`]: putting the guest back after a program and measuring accounting against
//!   the baseline: a quiet check, or swapoff of every device when it cannot prove no leak.
//! - [`coverage`], [`kcov`]: kernel coverage by kprobes (any kernel) and KCOV (debug builds).
//! - [`gem`]: the mock GMA500 driver from the agent's side: GEM objects, pins, DMA32 masks,
//!   PAGE_INFO.
//! - [`moving`]: the operations that move shmem pages outside swap (THP, compaction, NUMA,
//!   memory offlining, hugetlb) and undoing their guest-wide state after every program.
//! - [`records`]: the record channel: the child writes records straight to the host's port
//!   and tells the supervisor through a shared page.
//! - [`floor`]: runs a host-provided executable N times (the benchmark's C floor).
//! - [`sys`]: small wrappers over /proc and /sys files.

mod anon;
mod coverage;
mod exec;
mod floor;
mod gem;
mod kcov;
mod moving;
mod records;
mod setup;
mod supervise;
mod swapdev;
mod sys;
mod teardown;

use std::fs::File;

use shmemfuzz_core::protocol::{read_frame, write_frame, AgentMsg, HostMsg, ProtocolError};

/// Prefix of the console line the host treats as a harness failure.
const FATAL: &str = "shmemfuzz-agent: fatal:";

fn main() {
    // The boot benchmark's floor: the kernel passes `shmemfuzz_poweroff=1` as an environment
    // variable to init, which then does nothing but power off.
    if std::env::var_os("shmemfuzz_poweroff").is_some() {
        power_off();
    }
    std::panic::set_hook(Box::new(|info| {
        sys::kmsg(&format!("{FATAL} agent panicked: {info}"));
        power_off();
    }));
    if let Err(e) = run() {
        sys::kmsg(&format!("{FATAL} {e}"));
    }
    power_off();
}

fn power_off() -> ! {
    nix::unistd::sync();
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
    loop {
        std::thread::park();
    }
}

fn run() -> Result<(), String> {
    let guest = setup::boot().map_err(|e| format!("setup failed: {e}"))?;
    let mut port: File = guest.port.try_clone().map_err(|e| format!("port: {e}"))?;
    write_frame(&mut port, &guest.ready).map_err(|e| format!("sending Ready: {e}"))?;
    loop {
        let msg: HostMsg = match read_frame(&mut port) {
            Ok(m) => m,
            Err(ProtocolError::Closed) => return Err("the host closed the channel".into()),
            Err(e) => return Err(format!("reading from the host: {e}")),
        };
        match msg {
            HostMsg::Shutdown => return Ok(()),
            HostMsg::Run {
                id,
                program,
                op_timeout_ms,
                draws,
            } => {
                let send = |m: &AgentMsg| {
                    write_frame(&mut &guest.port, m).map_err(|e| format!("sending: {e}"))
                };
                supervise::run_program(&guest, id, &program, op_timeout_ms, draws, &send)?;
            }
            HostMsg::Exec { id, path, runs } => {
                write_frame(&mut &guest.port, &floor::run(id, &path, runs))
                    .map_err(|e| format!("sending: {e}"))?;
            }
        }
    }
}
