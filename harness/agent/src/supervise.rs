//! Running one program: fork a child into a fresh memory cgroup, forward its operation
//! records to the host as they arrive, enforce a deadline per operation, then tear down and
//! measure accounting against the baseline taken before the program ([`crate::teardown`]).

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{sched_setaffinity, CpuSet};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::WaitStatus;
use nix::unistd::{fork, pipe2, ForkResult, Pid};
use shmemfuzz_core::program::{Op, Program};
use shmemfuzz_core::protocol::{read_frame, AgentMsg, ChildExit, PcHits, ProtocolError, Teardown};

use crate::exec::Executor;
use crate::setup::{Guest, TMPFS_DIR};
use crate::sys;

type Send<'a> = dyn Fn(&AgentMsg) -> Result<(), String> + 'a;

/// Where the agent's time goes in one run, reported in [`Teardown::phases_us`].
struct Phases {
    mark: Instant,
    list: Vec<(String, u64)>,
}

impl Phases {
    fn new() -> Self {
        Phases {
            mark: Instant::now(),
            list: Vec::new(),
        }
    }

    /// Ends the phase called `name`.
    fn lap(&mut self, name: &str) {
        self.list
            .push((name.to_string(), self.mark.elapsed().as_micros() as u64));
        self.mark = Instant::now();
    }

    /// Files the parts of the phase just ended (`phase/part`), and what they leave
    /// unaccounted as `phase/other`.
    fn parts(&mut self, phase: &str, parts: Vec<(String, u64)>) {
        let total = self.list.last().map_or(0, |(_, us)| *us);
        let counted: u64 = parts.iter().map(|(_, us)| us).sum();
        if parts.is_empty() {
            return;
        }
        for (part, us) in parts {
            self.list.push((format!("{phase}/{part}"), us));
        }
        self.list
            .push((format!("{phase}/other"), total.saturating_sub(counted)));
    }
}

/// What [`watch`] saw of the child.
struct Watched {
    exit: ChildExit,
    /// KCOV coverage, if the child sent any.
    pcs: Option<Vec<PcHits>>,
    /// Where the child's time went, if it got as far as saying.
    parts: Vec<(String, u64)>,
}

pub fn run_program(
    guest: &Guest,
    id: u64,
    program: &Program,
    op_timeout_ms: u64,
    draws: u64,
    send: &Send<'_>,
) -> Result<(), String> {
    let mut phases = Phases::new();
    let mut setup = Vec::new();
    let mut part = |name: &str, since: Instant| {
        setup.push((name.to_string(), since.elapsed().as_micros() as u64));
        Instant::now()
    };
    let t = Instant::now();
    crate::teardown::restore_default_swap(guest);
    let swap_on = shmemfuzz_core::program::initial_swap_state(guest.swap_paths.len());
    let t = part("swap", t);
    let dir = format!("{TMPFS_DIR}/p{id}");
    let cgroup = format!("/sys/fs/cgroup/p{id}");
    fs::create_dir_all(&dir).map_err(|e| format!("creating {dir}: {e}"))?;
    fs::create_dir_all(&cgroup).map_err(|e| format!("creating cgroup {cgroup}: {e}"))?;
    let t = part("directories", t);
    let before = crate::teardown::Before::take();
    let t = part("baseline", t);
    let probes = guest.probes.get_or_init(crate::coverage::Probes::install);
    let hits_before = probes.as_ref().map(|p| p.snapshot()).unwrap_or_default();
    part("coverage", t);
    let coverage = || match probes {
        Some(p) => crate::coverage::Probes::delta(&hits_before, &p.snapshot()),
        None => Vec::new(),
    };

    // Opened at the first program, like the probes; a buffer that does not open loses
    // coverage, not the run.
    let kcov_buffer = guest.kcov.get_or_init(|| {
        crate::kcov::available()
            .then(crate::kcov::Buffer::open)
            .and_then(Result::ok)
    });
    let kcov = kcov_buffer.is_some();
    phases.lap("setup");
    phases.parts("setup", setup);

    let (rx, tx) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    let (ack_rx, ack_tx) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    let shared = crate::records::SharedPage::new()?;
    let forked_at = Instant::now();
    // SAFETY: the agent is single-threaded, so the child may run arbitrary code after fork.
    let child = match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            drop(rx);
            drop(ack_tx);
            let exec = Executor {
                program,
                dir: dir.clone(),
                cgroup: cgroup.clone(),
                swap_paths: &guest.swap_paths,
                swap_on,
                out: File::from(tx),
                kcov: kcov_buffer.as_ref(),
                draws,
                epoch: Instant::now(),
                forked_at,
                port: &guest.port,
                ack: File::from(ack_rx),
                shared: shared.get(),
                costs: Default::default(),
            };
            child_main(exec, &cgroup)
        }
        ForkResult::Parent { child } => child,
    };
    drop(tx);
    drop(ack_rx);
    let channel = Channel {
        pipe: File::from(rx),
        ack: File::from(ack_tx),
        shared: shared.get(),
        forked_at,
    };
    let watched = watch(child, channel, op_timeout_ms, send)?;
    // Its page is shmem (a shared anonymous mapping): gone before the accounting.
    drop(shared);
    let kcov = kcov.then(|| watched.pcs.unwrap_or_default());
    let exit = watched.exit;
    phases.lap("program");
    phases.parts("program", watched.parts);
    if matches!(exit, ChildExit::Hung { .. }) {
        // The child is stuck in the kernel: teardown would hang too. The host ends the VM.
        sys::kmsg(&format!("shmemfuzz-agent: end of run {id}"));
        return send(&AgentMsg::Done {
            id,
            exit,
            teardown: Teardown {
                baseline: before.accounting,
                ..Teardown::default()
            },
            coverage: coverage(),
            kcov,
        });
    }
    // Only a program with a guest-wide operation (thp, khugepaged, offline, hugetlb, …) can
    // have changed what restore_guest() puts back.
    let guest_wide = program.ops.iter().any(Op::is_guest_wide);
    let mut teardown =
        crate::teardown::teardown(guest, &dir, &cgroup, &before, guest_wide, &mut |name| {
            phases.lap(name)
        });
    let coverage = coverage();
    phases.lap("coverage");
    teardown.phases_us = phases.list;
    // Kernel messages of this run are on the console before this line: the host waits for it.
    sys::kmsg(&format!("shmemfuzz-agent: end of run {id}"));
    send(&AgentMsg::Done {
        id,
        exit,
        teardown,
        coverage,
        kcov,
    })
}

fn child_main(exec: Executor<'_>, cgroup: &str) -> ! {
    let mut out = exec.out.try_clone().ok();
    let mut cpu0 = CpuSet::new();
    let placed = sys::write_file(&format!("{cgroup}/cgroup.procs"), "0")
        .map_err(|e| format!("joining cgroup {cgroup}: {e}"))
        .and_then(|()| {
            cpu0.set(0)
                .and_then(|()| sched_setaffinity(Pid::from_raw(0), &cpu0))
                .map_err(|e| format!("pinning to CPU 0: {e}"))
        });
    let result = placed.and_then(|()| exec.run());
    let code = match result {
        Ok(()) => 0,
        Err(message) => {
            if let Some(out) = out.as_mut() {
                let _ = shmemfuzz_core::protocol::write_frame(out, &AgentMsg::Error { message });
            }
            3
        }
    };
    // SAFETY: _exit skips destructors and atexit handlers that belong to the parent.
    unsafe { libc::_exit(code) }
}

/// The supervisor's end of the child's channels ([`crate::records`]).
struct Channel<'a> {
    /// From the child: records too large for one write to the port, then its KCOV coverage,
    /// phases and error, if any; closed when the child ends.
    pipe: File,
    /// To the child: one byte per large record forwarded.
    ack: File,
    shared: &'a crate::records::Shared,
    forked_at: Instant,
}

/// Waits for the child to end, forwarding the records it hands over; returns how it ended,
/// its KCOV coverage and its phases, if it sent them. The deadline runs from the last record
/// of any thread, so a thread stuck in the kernel ends the program as a hang at the lowest
/// operation in flight.
fn watch(
    child: Pid,
    mut ch: Channel<'_>,
    op_timeout_ms: u64,
    send: &Send<'_>,
) -> Result<Watched, String> {
    let mut exec_error = None;
    let mut pcs = None;
    let mut parts = Vec::new();
    let op_timeout = Duration::from_millis(op_timeout_ms);
    loop {
        let deadline = ch.shared.last_record(ch.forked_at) + op_timeout;
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX);
        let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(ch.pipe.as_fd(), PollFlags::POLLIN)];
        let ready = match poll(&mut fds, timeout) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => other.map_err(|e| format!("poll: {e}"))?,
        };
        if ready == 0 && Instant::now() < ch.shared.last_record(ch.forked_at) + op_timeout {
            continue; // a record came meanwhile: the deadline moved
        }
        if ready == 0 {
            // No record starts after this, so the op in flight is final.
            ch.shared.close();
            let next_op = ch.shared.in_flight();
            sys::kmsg(&format!(
                "shmemfuzz-agent: op {next_op} exceeded {op_timeout_ms} ms; blocked tasks follow"
            ));
            let _ = sys::write_file("/proc/sysrq-trigger", "w");
            let _ = kill(child, Signal::SIGKILL);
            let _ = sys::wait_bounded(child, Duration::from_secs(5));
            return Ok(Watched {
                exit: ChildExit::Hung { op: next_op },
                pcs: None,
                parts,
            });
        }
        match read_frame::<AgentMsg>(&mut ch.pipe) {
            Ok(AgentMsg::Op(rec)) => {
                send(&AgentMsg::Op(rec))?;
                // A child that died meanwhile (a signal, the OOM killer) leaves no reader:
                // EPIPE then, and its end is what the loop sees next.
                let _ = ch.ack.write_all(&[1]);
            }
            Ok(AgentMsg::Error { message }) => exec_error = Some(message),
            Ok(AgentMsg::Kcov(p)) => pcs = Some(p),
            Ok(AgentMsg::Phases(p)) => parts = p,
            Ok(_) => {}
            Err(ProtocolError::Closed) => break,
            Err(e) => return Err(format!("reading the program's records: {e}")),
        }
    }
    let next_op = ch.shared.in_flight();
    let exit = match sys::wait_bounded(child, Duration::from_secs(30)) {
        Some(WaitStatus::Signaled(_, sig, _)) => ChildExit::Signaled {
            signal: sig as i32,
            op: next_op,
        },
        Some(WaitStatus::Exited(_, 0)) if exec_error.is_none() => ChildExit::Completed,
        Some(other) => ChildExit::ExecutorError {
            message: exec_error.unwrap_or_else(|| format!("executor ended with {other:?}")),
        },
        None => ChildExit::Hung { op: next_op },
    };
    Ok(Watched { exit, pcs, parts })
}
