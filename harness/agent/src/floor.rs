//! Running a host-provided executable N times: the benchmark's floor (a static C program
//! doing a program's syscalls, exported by `shmemfuzz export-c`), timed in the same guest as
//! the harness runs the program.

use std::ffi::CString;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{dup2, execv, fork, ForkResult, Pid};
use shmemfuzz_core::protocol::AgentMsg;

/// How long one run may take before it is killed and counted as failed.
const RUN_DEADLINE: Duration = Duration::from_secs(120);

/// Runs `path` `runs` times in a row, output discarded; the reply for the host.
pub fn run(id: u64, path: &str, runs: u32) -> AgentMsg {
    let mut ok = 0;
    let mut failures = Vec::new();
    let start = Instant::now();
    for i in 0..runs {
        match run_once(path) {
            Ok(()) => ok += 1,
            Err(e) => failures.push(format!("run {i}: {e}")),
        }
    }
    AgentMsg::Executed {
        id,
        ok,
        micros: start.elapsed().as_micros() as u64,
        failures,
    }
}

fn run_once(path: &str) -> Result<(), String> {
    let prog = CString::new(path).map_err(|_| "a NUL in the path".to_string())?;
    // SAFETY: the agent is single-threaded; the child only redirects and execs.
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
                use std::os::fd::AsRawFd;
                let _ = dup2(null.as_raw_fd(), 1);
                let _ = dup2(null.as_raw_fd(), 2);
            }
            let _ = execv(&prog, &[&prog]);
            // SAFETY: leave without running the parent's destructors.
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => wait(child),
    }
}

fn wait(child: Pid) -> Result<(), String> {
    let Some(status) = crate::sys::wait_bounded(child, RUN_DEADLINE) else {
        let _ = kill(child, Signal::SIGKILL);
        let _ = waitpid(child, None);
        return Err(format!("still running after {RUN_DEADLINE:?}"));
    };
    match status {
        WaitStatus::Exited(_, 0) => Ok(()),
        WaitStatus::Exited(_, code) => Err(format!("exited with {code}")),
        WaitStatus::Signaled(_, sig, _) => Err(format!("killed by {sig}")),
        other => Err(format!("ended as {other:?}")),
    }
}
