//! Supervised child processes: own process group, death signal, group kill, bounded reaping.
//!
//! # Why children are spawned from one long-lived thread
//! `PR_SET_PDEATHSIG` fires when the **thread** that forked the child exits, not when the
//! process does. A QEMU spawned from a short-lived worker thread would be SIGKILLed the
//! moment that thread returned, even though the harness lives on. So every supervised child
//! is forked by a dedicated spawner thread that is started once and never exits: the death
//! signal then fires exactly when the harness process dies (normal exit, panic=abort,
//! SIGKILL, OOM kill), which is the point of it.
//!
//! # Why the group is killed before the leader is reaped
//! A process group ID stays reserved while any member, including a zombie leader, exists.
//! [`Group`] therefore notices the leader's exit with `waitid(WNOWAIT)` (which leaves the
//! zombie in place), SIGKILLs the whole group (stragglers, if QEMU ever forks helpers), and
//! only then reaps. `killpg` is never sent to a group whose leader was already reaped, so it
//! cannot hit an unrelated process that reused the number.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::error::VmError;

/// How often bounded waits look at the child.
const POLL: Duration = Duration::from_millis(10);

/// Locks a mutex, ignoring poisoning (the protected state stays consistent: every critical
/// section is a few non-panicking calls).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Finds `program` the way `execvp` would: a name with a `/` is used as is, a bare name is
/// looked up in `PATH`. A miss is [`VmError::QemuNotFound`] (the only programs spawned here
/// are QEMU's).
pub(crate) fn resolve_program(program: &Path) -> Result<PathBuf, VmError> {
    let not_found = || VmError::QemuNotFound {
        name: program.display().to_string(),
    };
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.as_os_str().as_bytes().contains(&b'/') {
        return if executable(program) {
            Ok(program.to_path_buf())
        } else {
            Err(not_found())
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
        .ok_or_else(not_found)
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

/// Spawns `cmd` as the leader of a new process group, with `PR_SET_PDEATHSIG(SIGKILL)`,
/// from the long-lived spawner thread (see the module docs).
pub(crate) fn spawn_supervised(mut cmd: Command) -> io::Result<Child> {
    let parent = std::process::id();
    cmd.process_group(0);
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
    // system calls (prctl, getppid); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
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

/// SIGKILLs process group `pgid`; a group that is already gone is fine.
pub(crate) fn kill_group(pgid: u32) {
    match killpg(Pid::from_raw(pgid as i32), Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => tracing::warn!("killpg({pgid}, SIGKILL) failed: {e}"),
    }
}

struct GroupState {
    child: Child,
    status: Option<ExitStatus>,
}

/// A supervised child that leads its own process group.
pub(crate) struct Group {
    pid: u32,
    state: Mutex<GroupState>,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("pid", &self.pid)
            .field("status", &lock(&self.state).status)
            .finish()
    }
}

impl Group {
    pub(crate) fn new(child: Child) -> Self {
        Self {
            pid: child.id(),
            state: Mutex::new(GroupState {
                child,
                status: None,
            }),
        }
    }

    /// PID of the leader, which is also the process group ID.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Exit status if the leader has exited (reaping it, after killing the rest of its
    /// group), `None` while it runs.
    pub(crate) fn try_reap(&self) -> io::Result<Option<ExitStatus>> {
        let mut st = lock(&self.state);
        if let Some(s) = st.status {
            return Ok(Some(s));
        }
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        match waitid(Id::Pid(Pid::from_raw(self.pid as i32)), flags) {
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Ok(_) => {}
            Err(Errno::EINTR) => return Ok(None),
            Err(e) => return Err(io::Error::from(e)),
        }
        // The leader is a zombie: the group ID is still ours. Clean up, then reap.
        kill_group(self.pid);
        let s = st.child.wait()?;
        st.status = Some(s);
        Ok(Some(s))
    }

    /// Exit status if already reaped.
    pub(crate) fn status(&self) -> Option<ExitStatus> {
        lock(&self.state).status
    }

    /// SIGKILLs the group unless the leader was already reaped. Returns whether a signal was
    /// sent.
    pub(crate) fn kill(&self) -> bool {
        let st = lock(&self.state);
        if st.status.is_none() {
            kill_group(self.pid);
            true
        } else {
            false
        }
    }

    /// For the lifetime watchdog: if the leader is still running (not even a zombie), sets
    /// `flag` and SIGKILLs the group, both under the state lock, so whoever reaps the leader
    /// afterwards sees the flag. Returns whether it killed.
    pub(crate) fn kill_running_marking(&self, flag: &AtomicBool) -> bool {
        let st = lock(&self.state);
        if st.status.is_some() {
            return false;
        }
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        let running = matches!(
            waitid(Id::Pid(Pid::from_raw(self.pid as i32)), flags),
            Ok(WaitStatus::StillAlive)
        );
        if running {
            flag.store(true, Ordering::SeqCst);
        }
        // Kill in any case: stragglers of an exited leader must go too.
        kill_group(self.pid);
        running
    }

    /// Waits at most `timeout` for the leader to exit.
    pub(crate) fn wait_timeout(&self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_reap()? {
                return Ok(Some(s));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            thread::sleep(POLL.min(deadline - now));
        }
    }

    /// Kills the group and waits at most `timeout` for the leader; `None` if it is still
    /// there (a process in uninterruptible sleep can outlive SIGKILL for a while).
    pub(crate) fn kill_and_reap(&self, timeout: Duration) -> Option<ExitStatus> {
        self.kill();
        match self.wait_timeout(timeout) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("waiting for pid {} failed: {e}", self.pid);
                None
            }
        }
    }
}

/// Last `max` bytes of a text file, lossily decoded, trimmed to whole lines.
pub(crate) fn file_tail(path: &Path, max: usize) -> String {
    match std::fs::read(path) {
        Ok(b) => {
            let start = b.len().saturating_sub(max);
            let mut s = String::from_utf8_lossy(&b[start..]).into_owned();
            if start > 0 {
                if let Some(nl) = s.find('\n') {
                    s.drain(..=nl);
                }
            }
            s.trim_end().to_owned()
        }
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

/// Live (non-zombie) processes whose process group is `pgid`, read from `/proc` (to check
/// that a VM left nothing behind).
pub fn live_group_members(pgid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // Fields after the command name, which is in parentheses and may hold spaces.
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                return false;
            };
            let f: Vec<&str> = rest.split_whitespace().collect();
            // f[0] = state, f[1] = ppid, f[2] = pgrp
            f.len() > 2 && f[0] != "Z" && f[0] != "X" && f[2] == pgid.to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;

    #[test]
    fn resolve_reports_package() {
        let e = resolve_program(Path::new("shmemfuzz-no-such-qemu")).expect_err("must miss");
        let msg = e.to_string();
        assert!(msg.contains("apt-get install -y qemu-system-x86"), "{msg}");
        assert!(resolve_program(Path::new("/nonexistent/qemu")).is_err());
        assert!(resolve_program(Path::new("sh")).is_ok());
    }

    #[test]
    fn group_kill_and_reap() {
        let mut cmd = Command::new("sh");
        // A shell with a background child in the same group.
        cmd.args(["-c", "sleep 1000 & sleep 1000"])
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let g = Group::new(spawn_supervised(cmd).expect("spawn sh"));
        assert_eq!(
            nix::unistd::getpgid(Some(Pid::from_raw(g.pid() as i32))).expect("getpgid"),
            Pid::from_raw(g.pid() as i32)
        );
        assert!(g.try_reap().expect("try_reap").is_none());
        let st = g.kill_and_reap(Duration::from_secs(10)).expect("reaped");
        assert!(!st.success());
        // The whole group is gone (the background sleep too) once it is reaped; give the
        // kernel a moment to finish tearing the straggler down.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !live_group_members(g.pid()).is_empty() {
            assert!(Instant::now() < deadline, "process group survived");
            thread::sleep(POLL);
        }
        assert!(!g.kill(), "no signal after reaping");
    }

    #[test]
    fn spawn_from_short_lived_thread_survives_thread_exit() {
        let child = thread::spawn(|| {
            let mut cmd = Command::new("sleep");
            cmd.arg("1000");
            spawn_supervised(cmd).expect("spawn")
        })
        .join()
        .expect("thread");
        let g = Group::new(child);
        thread::sleep(Duration::from_millis(200));
        assert!(
            g.try_reap().expect("try_reap").is_none(),
            "child died with its spawning thread"
        );
        assert!(g.kill_and_reap(Duration::from_secs(10)).is_some());
    }

    const HELPER_ENV: &str = "SHMEMFUZZ_PDEATHSIG_HELPER";

    /// Not a test by itself: `children_die_with_the_harness` runs it (`--ignored --exact`)
    /// with [`HELPER_ENV`] set, and it plays a harness that spawns a supervised child,
    /// records its pid and waits to be killed.
    #[test]
    #[ignore = "a helper process of children_die_with_the_harness, not a test"]
    fn pdeathsig_helper() {
        let out = std::env::var_os(HELPER_ENV).unwrap_or_else(|| {
            panic!(
                "pdeathsig_helper is run by children_die_with_the_harness, with {HELPER_ENV} set"
            )
        });
        let mut cmd = Command::new("sleep");
        cmd.arg("1000");
        let group = Group::new(spawn_supervised(cmd).expect("spawn"));
        std::fs::write(out, group.pid().to_string()).expect("write pid");
        loop {
            thread::sleep(Duration::from_secs(1));
        }
    }

    #[test]
    fn children_die_with_the_harness() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let pid_file = tmp.path().join("pid");
        let mut helper = Command::new(std::env::current_exe().expect("current_exe"))
            .args([
                "--exact",
                "vm::process::tests::pdeathsig_helper",
                "--ignored",
            ])
            .env(HELPER_ENV, &pid_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn helper");
        let deadline = Instant::now() + Duration::from_secs(30);
        let pid: u32 = loop {
            if let Some(p) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.parse().ok())
            {
                break p;
            }
            if Instant::now() >= deadline {
                let _ = helper.kill();
                let _ = helper.wait();
                panic!("helper never reported its child");
            }
            thread::sleep(POLL);
        };
        assert_eq!(live_group_members(pid), [pid]);
        helper.kill().expect("kill helper");
        helper.wait().expect("reap helper");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !live_group_members(pid).is_empty() {
            if Instant::now() >= deadline {
                kill_group(pid);
                panic!("child {pid} outlived its harness");
            }
            thread::sleep(POLL);
        }
    }
}
