//! A supervised child that leads its own process group: bounded waits, stopping, killing.
//!
//! # Why the group is killed before the leader is reaped
//! A process group ID stays reserved while any member, including a zombie leader, exists.
//! [`Group`] therefore notices the leader's exit with `waitid(WNOWAIT)` (which leaves the
//! zombie in place), SIGKILLs the whole group (stragglers, if QEMU ever forks helpers), and
//! only then reaps. A signal is never sent to a group whose leader was already reaped, so it
//! cannot hit an unrelated process that reused the number.

use std::io;
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::lock;

/// How often bounded waits look at the child.
const POLL: Duration = Duration::from_millis(10);

/// How [`Group::wait_interruptible`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waited {
    Exited(ExitStatus),
    /// The deadline passed; the child still runs.
    TimedOut,
    /// The process was interrupted ([`crate::interrupt`]); the child still runs (stopping it
    /// is the caller's, usually [`Group::stop`]).
    Interrupted(crate::interrupt::Interrupted),
}

/// Sends `signal` to process group `pgid`; a group that is already gone is fine.
fn signal_group(pgid: u32, signal: Signal) {
    match killpg(Pid::from_raw(pgid as i32), signal) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => tracing::warn!("killpg({pgid}, {signal}) failed: {e}"),
    }
}

/// SIGKILLs process group `pgid`; a group that is already gone is fine.
pub(crate) fn kill_group(pgid: u32) {
    signal_group(pgid, Signal::SIGKILL);
}

struct GroupState {
    child: Child,
    status: Option<ExitStatus>,
}

/// A supervised child that leads its own process group.
pub struct Group {
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
    pub fn new(child: Child) -> Self {
        Self {
            pid: child.id(),
            state: Mutex::new(GroupState {
                child,
                status: None,
            }),
        }
    }

    /// Spawns `cmd` with [`super::spawn_supervised`] and supervises it.
    pub fn spawn(cmd: std::process::Command, on_parent_death: Signal) -> io::Result<Self> {
        super::spawn_supervised(cmd, on_parent_death).map(Self::new)
    }

    /// Takes the child's piped stdout and stderr (each once).
    pub fn take_pipes(
        &self,
    ) -> (
        Option<std::process::ChildStdout>,
        Option<std::process::ChildStderr>,
    ) {
        let mut st = lock(&self.state);
        (st.child.stdout.take(), st.child.stderr.take())
    }

    /// PID of the leader, which is also the process group ID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Exit status if the leader has exited (reaping it, after killing the rest of its
    /// group), `None` while it runs.
    pub fn try_reap(&self) -> io::Result<Option<ExitStatus>> {
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
    pub fn status(&self) -> Option<ExitStatus> {
        lock(&self.state).status
    }

    /// Sends `signal` to the group unless the leader was already reaped. Returns whether it
    /// was sent.
    pub fn signal(&self, signal: Signal) -> bool {
        let st = lock(&self.state);
        if st.status.is_none() {
            signal_group(self.pid, signal);
            true
        } else {
            false
        }
    }

    /// SIGKILLs the group unless the leader was already reaped. Returns whether a signal was
    /// sent.
    pub fn kill(&self) -> bool {
        self.signal(Signal::SIGKILL)
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
    pub fn wait_timeout(&self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        self.wait_until(Instant::now() + timeout)
    }

    /// Waits until `deadline` at the latest for the leader to exit: the one bounded wait.
    pub fn wait_until(&self, deadline: Instant) -> io::Result<Option<ExitStatus>> {
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

    /// [`Self::wait_until`], also ending within [`POLL`] of an interruption of the harness.
    pub fn wait_interruptible(&self, deadline: Instant) -> io::Result<Waited> {
        loop {
            if let Some(s) = self.try_reap()? {
                return Ok(Waited::Exited(s));
            }
            if let Some(i) = crate::interrupt::requested() {
                return Ok(Waited::Interrupted(i));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Waited::TimedOut);
            }
            thread::sleep(POLL.min(deadline - now));
        }
    }

    /// Kills the group and waits at most `timeout` for the leader; `None` if it is still
    /// there (a process in uninterruptible sleep can outlive SIGKILL for a while).
    pub fn kill_and_reap(&self, timeout: Duration) -> Option<ExitStatus> {
        self.kill();
        self.wait_logged(timeout)
    }

    /// Stops the group: SIGTERM (make passes it on to its jobs, git removes its lock files),
    /// then, if the leader is still there after `grace`, [`Self::kill_and_reap`] with
    /// `reap_timeout`. The exit status if the leader was reaped.
    pub fn stop(&self, grace: Duration, reap_timeout: Duration) -> Option<ExitStatus> {
        self.signal(Signal::SIGTERM);
        if let Some(s) = self.wait_logged(grace) {
            return Some(s);
        }
        self.kill_and_reap(reap_timeout)
    }

    fn wait_logged(&self, timeout: Duration) -> Option<ExitStatus> {
        match self.wait_timeout(timeout) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("waiting for pid {} failed: {e}", self.pid);
                None
            }
        }
    }
}

impl Drop for Group {
    /// A group dropped before its leader was reaped is SIGKILLed (not waited for): nothing
    /// the harness started outlives the handle to it, whatever error path dropped it.
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::{live_group_members, spawn_supervised};
    use std::process::{Command, Stdio};

    #[test]
    fn group_kill_and_reap() {
        let mut cmd = Command::new("sh");
        // A shell with a background child in the same group.
        cmd.args(["-c", "sleep 1000 & sleep 1000"])
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let g = Group::new(spawn_supervised(cmd, Signal::SIGKILL).expect("spawn sh"));
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
            spawn_supervised(cmd, Signal::SIGKILL).expect("spawn")
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
        let group = Group::new(spawn_supervised(cmd, Signal::SIGKILL).expect("spawn"));
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
                "process::group::tests::pdeathsig_helper",
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
