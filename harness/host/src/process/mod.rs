//! Child processes, one way: every program the host runs is found, spawned, waited for and
//! stopped here.
//!
//! - [`spawn_supervised`]: a child leading its own process group, with a death signal
//!   (`PR_SET_PDEATHSIG`), forked by the one long-lived spawner thread (see below).
//! - [`Group`] ([`group`]): the spawned group; [`Group::wait_until`] is the one bounded wait,
//!   [`Group::stop`] the one SIGTERM → grace → SIGKILL, [`Group::kill_and_reap`] SIGKILL only.
//! - [`output`] ([`run`]): a short tool call to completion under a time limit, its output
//!   captured; [`Tail`] and [`file_tail`]: the end of a child's output for an error message.
//! - [`find_program`]: the one `PATH` lookup.
//! - [`procfs`]: `/proc/<pid>/stat`, and the live members of a process group.
//!
//! # Why children are spawned from one long-lived thread
//! `PR_SET_PDEATHSIG` fires when the **thread** that forked the child exits, not when the
//! process does. A QEMU spawned from a short-lived worker thread would be SIGKILLed the
//! moment that thread returned, even though the harness lives on. So every supervised child
//! is forked by a dedicated spawner thread that is started once and never exits: the death
//! signal then fires exactly when the harness process dies (normal exit, panic=abort,
//! SIGKILL, OOM kill), which is the point of it.

pub mod group;
pub mod procfs;
pub mod run;

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use std::thread;

pub use nix::sys::signal::Signal;

pub use group::{Group, Waited};
pub use procfs::live_group_members;
pub use run::{file_tail, output, RunError, Tail, TOOL_LIMIT};

/// Locks a mutex, ignoring poisoning (the protected state stays consistent: every critical
/// section is a few non-panicking calls).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Directories searched after `PATH`: the sbin directories a non-root `PATH` often lacks
/// (`depmod`, `mkswap`), and the defaults for an empty `PATH`.
const FALLBACK_DIRS: &[&str] = &["/usr/local/bin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// Finds `program` the way `execvp` would, then in [`FALLBACK_DIRS`]: a name with a `/` is
/// used as is, a bare name is looked up. Only an executable regular file counts.
pub fn find_program(program: impl AsRef<Path>) -> Option<PathBuf> {
    let program = program.as_ref();
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.as_os_str().as_bytes().contains(&b'/') {
        return executable(program).then(|| program.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(FALLBACK_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
}

struct SpawnRequest {
    cmd: Command,
    reply: mpsc::Sender<io::Result<Child>>,
}

/// The spawner thread's channel, started on first use. It is keyed by process ID: in a
/// child forked without exec the thread does not exist, so a new one is started there.
fn spawner() -> io::Result<mpsc::Sender<SpawnRequest>> {
    static SPAWNER: Mutex<Option<(u32, mpsc::Sender<SpawnRequest>)>> = Mutex::new(None);
    let me = std::process::id();
    let mut guard = lock(&SPAWNER);
    if let Some((pid, tx)) = guard.as_ref() {
        if *pid == me {
            return Ok(tx.clone());
        }
    }
    let (tx, rx) = mpsc::channel::<SpawnRequest>();
    thread::Builder::new()
        .name("shmemfuzz-spawner".into())
        .spawn(move || {
            for mut req in rx {
                let _ = req.reply.send(req.cmd.spawn());
            }
        })?;
    *guard = Some((me, tx.clone()));
    Ok(tx)
}

/// Spawns `cmd` as the leader of a new process group that gets `on_parent_death` when the
/// harness dies (`PR_SET_PDEATHSIG`), from the long-lived spawner thread (see the module
/// docs). SIGKILL for QEMU; SIGTERM for make and the other tools, which pass it on to their
/// own children or clean up after themselves.
pub fn spawn_supervised(mut cmd: Command, on_parent_death: Signal) -> io::Result<Child> {
    let parent = std::process::id();
    let signal = on_parent_death as libc::c_ulong;
    cmd.process_group(0);
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
    // system calls (prctl, getppid); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, signal, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The harness may have died between fork and prctl: then nobody would kill us.
            if libc::getppid() as u32 != parent {
                // (ESRCH: "no such process"; a custom error would allocate.)
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    let (reply, rx) = mpsc::channel();
    spawner()?
        .send(SpawnRequest { cmd, reply })
        .map_err(|_| io::Error::other("spawner thread is gone"))?;
    rx.recv()
        .map_err(|_| io::Error::other("spawner thread dropped the request"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_program_follows_execvp_then_the_sbin_dirs() {
        assert!(find_program("shmemfuzz-no-such-program").is_none());
        assert!(find_program("/nonexistent/qemu").is_none());
        assert!(find_program("sh").is_some());
        // A directory is no program, even when it is named like one.
        assert!(find_program("/").is_none());
        assert_eq!(find_program("/bin/sh"), Some(PathBuf::from("/bin/sh")));
    }
}
