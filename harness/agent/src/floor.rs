//! Running a host-provided executable N times: the benchmark's floor (a static C program
//! doing a program's syscalls, exported by `shmemfuzz export-c`), timed in the same guest as
//! the harness runs the program.

use std::ffi::CString;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
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
    // A pidfd polls for the child's end with a deadline and no busy loop (Linux >= 5.3).
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, child.as_raw(), 0) };
    if raw >= 0 {
        // SAFETY: a fresh fd from pidfd_open, owned here.
        let pidfd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        let limit =
            PollTimeout::try_from(RUN_DEADLINE.as_millis() as i32).unwrap_or(PollTimeout::MAX);
        if poll(&mut fds, limit).map_err(|e| format!("poll: {e}"))? == 0 {
            let _ = kill(child, Signal::SIGKILL);
            let _ = waitpid(child, None);
            return Err(format!("still running after {RUN_DEADLINE:?}"));
        }
    }
    match waitpid(child, None) {
        Ok(WaitStatus::Exited(_, 0)) => Ok(()),
        Ok(WaitStatus::Exited(_, code)) => Err(format!("exited with {code}")),
        Ok(WaitStatus::Signaled(_, sig, _)) => Err(format!("killed by {sig}")),
        Ok(other) => Err(format!("ended as {other:?}")),
        Err(e) => Err(format!("waitpid: {e}")),
    }
}
