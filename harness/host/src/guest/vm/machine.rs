//! [`Machine`]: one running QEMU with a bounded lifetime.

use std::ffi::OsString;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{ChildStdout, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::cmdline::{self, CONSOLE_LOG, QEMU_STDERR};
use super::error::VmError;
use super::monitor;
use super::resolve_qemu;
use super::VmConfig;
use crate::os::process::{file_tail, lock, spawn_supervised, Group, Signal};

/// How long a SIGKILLed QEMU gets to disappear before the host gives up on reaping it.
const KILL_REAP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the console reader gets to drain QEMU's stdout after QEMU exited.
const CONSOLE_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Default bound for [`Machine::monitor_command`].
pub const MONITOR_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of QEMU's stderr quoted in errors.
const STDERR_TAIL: usize = 4096;

/// Result of [`Machine::recv_console`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleRead {
    /// Bytes the guest wrote to its serial console, in order, as QEMU delivered them
    /// (chunks do not respect line boundaries).
    Data(Vec<u8>),
    /// Nothing arrived within the timeout.
    Timeout,
    /// The console is closed (QEMU exited and everything was delivered), or the receiver was
    /// taken with [`Machine::take_console_receiver`].
    Closed,
}

/// A running QEMU guest.
///
/// The VM lives at most [`VmConfig::lifetime`]: a watchdog thread SIGKILLs QEMU's process
/// group when it runs out. Dropping the `Machine` kills the group and reaps QEMU as well, on
/// every path (including unwinding). If the harness process dies, QEMU gets SIGKILL from
/// `PR_SET_PDEATHSIG`. That signal fires when the *thread* that forked QEMU exits, so QEMU
/// is forked by one internal spawner thread that lives as long as the process: launching
/// from a short-lived thread is safe.
///
/// The serial console is copied to `<workdir>/console.log` as it arrives and also handed out
/// chunk by chunk ([`Machine::recv_console`]) so a caller can spot a panic live.
pub struct Machine {
    cfg: VmConfig,
    program: PathBuf,
    args: Vec<OsString>,
    group: Arc<Group>,
    started: Instant,
    console_path: PathBuf,
    stderr_path: PathBuf,
    agent_path: PathBuf,
    qmp_path: PathBuf,
    listener: Mutex<Option<UnixListener>>,
    console_rx: Mutex<Option<Receiver<Vec<u8>>>>,
    reader_done: Mutex<Option<Receiver<()>>>,
    reader: Mutex<Option<JoinHandle<()>>>,
    watchdog_cancel: Mutex<Option<Sender<()>>>,
    watchdog: Mutex<Option<JoinHandle<()>>>,
    expired: Arc<AtomicBool>,
    killed: AtomicBool,
    monitor_lock: Mutex<()>,
}

impl std::fmt::Debug for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("pid", &self.group.pid())
            .field("workdir", &self.cfg.workdir)
            .field("status", &self.group.status())
            .field("lifetime_expired", &self.lifetime_expired())
            .finish_non_exhaustive()
    }
}

fn check_file(what: &'static str, p: &Path) -> Result<(), VmError> {
    match std::fs::metadata(p) {
        Ok(m) if m.is_file() => Ok(()),
        _ => Err(VmError::MissingFile {
            what,
            path: p.to_path_buf(),
        }),
    }
}

fn remove_if_exists(p: &Path) -> Result<(), VmError> {
    match std::fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(VmError::io(format!("removing stale {}", p.display()))(e)),
    }
}

impl Machine {
    /// Starts QEMU for `cfg` and returns at once (it does not wait for the guest).
    ///
    /// Before spawning it validates the config, checks that the kernel, initramfs and disks
    /// exist, finds the QEMU binary (a missing one names the package to install), creates
    /// the workdir and starts listening on the agent socket.
    pub fn launch(cfg: VmConfig) -> Result<Machine, VmError> {
        cfg.validate()?;
        check_file("kernel", &cfg.kernel)?;
        check_file("initramfs", &cfg.initramfs)?;
        for d in &cfg.disks {
            if !d.path.exists() {
                return Err(VmError::MissingFile {
                    what: "disk image",
                    path: d.path.clone(),
                });
            }
        }
        let program = resolve_qemu(&cfg.qemu)?;
        std::fs::create_dir_all(&cfg.workdir)
            .map_err(VmError::io(format!("creating {}", cfg.workdir.display())))?;
        let agent_path = cmdline::agent_socket_path(&cfg);
        let qmp_path = cmdline::qmp_socket_path(&cfg);
        remove_if_exists(&agent_path)?;
        remove_if_exists(&qmp_path)?;
        let listener = UnixListener::bind(&agent_path).map_err(VmError::io(format!(
            "listening on {}",
            agent_path.display()
        )))?;
        listener
            .set_nonblocking(true)
            .map_err(VmError::io("agent socket"))?;
        let console_path = cfg.workdir.join(CONSOLE_LOG);
        let stderr_path = cfg.workdir.join(QEMU_STDERR);
        let console = File::create(&console_path)
            .map_err(VmError::io(format!("creating {}", console_path.display())))?;
        let stderr = File::create(&stderr_path)
            .map_err(VmError::io(format!("creating {}", stderr_path.display())))?;

        let args = cmdline::qemu_args(&cfg);
        tracing::debug!(
            "launching {}",
            cmdline::shell_quote(program.as_os_str(), &args)
        );
        let mut cmd = crate::kernels::runtime::qemu_command(&program);
        cmd.args(&args)
            .current_dir(&cfg.workdir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        let mut child = spawn_supervised(cmd, Signal::SIGKILL).map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                VmError::QemuNotFound {
                    name: program.display().to_string(),
                }
            } else {
                VmError::io(format!("spawning {}", program.display()))(e)
            }
        })?;
        let stdout = child.stdout.take();
        let started = Instant::now();
        let lifetime = cfg.lifetime;
        // From here on, Drop cleans up whatever happens.
        let m = Machine {
            cfg,
            program,
            args,
            group: Arc::new(Group::new(child)),
            started,
            console_path,
            stderr_path,
            agent_path,
            qmp_path,
            listener: Mutex::new(Some(listener)),
            console_rx: Mutex::new(None),
            reader_done: Mutex::new(None),
            reader: Mutex::new(None),
            watchdog_cancel: Mutex::new(None),
            watchdog: Mutex::new(None),
            expired: Arc::new(AtomicBool::new(false)),
            killed: AtomicBool::new(false),
            monitor_lock: Mutex::new(()),
        };
        m.start_watchdog(lifetime)?;
        if let Some(stdout) = stdout {
            m.start_console_reader(stdout, console)?;
        }
        Ok(m)
    }

    fn start_watchdog(&self, lifetime: Duration) -> Result<(), VmError> {
        let (tx, rx) = mpsc::channel::<()>();
        let group = Arc::clone(&self.group);
        let expired = Arc::clone(&self.expired);
        let handle = thread::Builder::new()
            .name(format!("vm-watchdog-{}", group.pid()))
            .spawn(move || {
                if let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(lifetime) {
                    if group.kill_running_marking(&expired) {
                        tracing::warn!(
                            "VM pid {} reached its lifetime of {lifetime:?}; killed",
                            group.pid()
                        );
                    }
                }
            })
            .map_err(VmError::io("starting the VM watchdog thread"))?;
        *lock(&self.watchdog_cancel) = Some(tx);
        *lock(&self.watchdog) = Some(handle);
        Ok(())
    }

    fn start_console_reader(&self, mut stdout: ChildStdout, mut file: File) -> Result<(), VmError> {
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let path = self.console_path.clone();
        let handle = thread::Builder::new()
            .name(format!("vm-console-{}", self.group.pid()))
            .spawn(move || {
                let mut buf = vec![0u8; 16 * 1024];
                let mut file_ok = true;
                loop {
                    match stdout.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            if file_ok {
                                if let Err(e) = file.write_all(&buf[..n]) {
                                    tracing::error!("writing {}: {e}", path.display());
                                    file_ok = false;
                                }
                            }
                            // A dropped receiver is fine: the file still gets everything.
                            let _ = tx.send(buf[..n].to_vec());
                        }
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        Err(e) => {
                            tracing::error!("reading the VM console: {e}");
                            break;
                        }
                    }
                }
                let _ = file.flush();
                let _ = done_tx.send(());
            })
            .map_err(VmError::io("starting the VM console reader thread"))?;
        *lock(&self.console_rx) = Some(rx);
        *lock(&self.reader_done) = Some(done_rx);
        *lock(&self.reader) = Some(handle);
        Ok(())
    }

    /// PID of QEMU, which is also its process group ID.
    pub fn pid(&self) -> u32 {
        self.group.pid()
    }

    /// The configuration this machine was launched with.
    pub fn config(&self) -> &VmConfig {
        &self.cfg
    }

    /// The QEMU binary that was run.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// QEMU's arguments (without the binary).
    pub fn args(&self) -> &[OsString] {
        &self.args
    }

    /// The full QEMU command line, shell-quoted (for logs and bundles).
    pub fn command_line(&self) -> String {
        cmdline::shell_quote(self.program.as_os_str(), &self.args)
    }

    /// Time since QEMU was spawned.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// `<workdir>/console.log`: everything the guest wrote to its serial console so far.
    pub fn console_path(&self) -> &Path {
        &self.console_path
    }

    /// `<workdir>/qemu.stderr`: QEMU's own messages.
    pub fn stderr_path(&self) -> &Path {
        &self.stderr_path
    }

    /// The last few KiB of QEMU's stderr.
    pub fn stderr_tail(&self) -> String {
        file_tail(&self.stderr_path, STDERR_TAIL)
    }

    /// Waits at most `timeout` for the next chunk of console output.
    pub fn recv_console(&self, timeout: Duration) -> ConsoleRead {
        let guard = lock(&self.console_rx);
        let Some(rx) = guard.as_ref() else {
            return ConsoleRead::Closed;
        };
        match rx.recv_timeout(timeout) {
            Ok(d) => ConsoleRead::Data(d),
            Err(RecvTimeoutError::Timeout) => ConsoleRead::Timeout,
            Err(RecvTimeoutError::Disconnected) => ConsoleRead::Closed,
        }
    }

    /// Takes the console chunk receiver, e.g. to feed a parser on another thread. The
    /// channel closes when QEMU's stdout does. Afterwards [`Machine::recv_console`] returns
    /// [`ConsoleRead::Closed`]. `None` if already taken.
    pub fn take_console_receiver(&self) -> Option<Receiver<Vec<u8>>> {
        lock(&self.console_rx).take()
    }

    /// Accepts QEMU's connection for the agent channel (the guest's virtio-serial port
    /// [`super::AGENT_PORT_NAME`]) within `timeout`. QEMU connects while it starts, before
    /// the guest boots, so this normally returns at once; the agent's first message is the
    /// caller's business. Fails early if QEMU exits. The stream is in blocking mode; it can
    /// be taken once (a timed-out attempt can be retried).
    pub fn connect_channel(&self, timeout: Duration) -> Result<UnixStream, VmError> {
        let mut guard = lock(&self.listener);
        let listener = guard.as_ref().ok_or(VmError::ChannelTaken)?;
        let deadline = Instant::now() + timeout;
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    stream
                        .set_nonblocking(false)
                        .map_err(VmError::io("agent channel"))?;
                    *guard = None;
                    let _ = std::fs::remove_file(&self.agent_path);
                    return Ok(stream);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(e) => return Err(VmError::io("accepting the agent channel")(e)),
            }
            self.fail_if_exited("QEMU to connect the agent channel")?;
            if Instant::now() >= deadline {
                return Err(VmError::Timeout {
                    what: "QEMU to connect the agent channel".into(),
                    after: timeout,
                });
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn fail_if_exited(&self, waiting_for: &str) -> Result<(), VmError> {
        match self.group.try_reap() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                self.finish_console(CONSOLE_DRAIN_TIMEOUT);
                Err(VmError::QemuExited {
                    status,
                    waiting_for: waiting_for.to_owned(),
                    stderr_tail: self.stderr_tail(),
                })
            }
            Err(e) => Err(VmError::io("checking on QEMU")(e)),
        }
    }

    /// Waits at most `timeout` for QEMU to exit. `Some(status)` once it has (the console
    /// file is then complete); `None` if it still runs. QEMU exits 0 both when the guest
    /// powers off and when it panics (`panic=-1` + `-no-reboot`): the console tells which.
    pub fn wait_exit(&self, timeout: Duration) -> Result<Option<ExitStatus>, VmError> {
        let s = self
            .group
            .wait_timeout(timeout)
            .map_err(VmError::io("waiting for QEMU"))?;
        if s.is_some() {
            self.finish_console(CONSOLE_DRAIN_TIMEOUT);
        }
        Ok(s)
    }

    /// Whether QEMU is still running (reaps it if it has exited).
    pub fn is_running(&self) -> bool {
        matches!(self.group.try_reap(), Ok(None))
    }

    /// QEMU's exit status, if it has exited and been reaped.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.group.status()
    }

    /// Whether the watchdog killed QEMU because [`VmConfig::lifetime`] ran out.
    pub fn lifetime_expired(&self) -> bool {
        self.expired.load(Ordering::SeqCst)
    }

    /// Whether [`Machine::kill`] was called while QEMU ran.
    pub fn was_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    /// SIGKILLs QEMU's process group and reaps QEMU (bounded wait).
    pub fn kill(&self) -> Result<ExitStatus, VmError> {
        if self.group.kill() {
            self.killed.store(true, Ordering::SeqCst);
        }
        match self.group.wait_timeout(KILL_REAP_TIMEOUT) {
            Ok(Some(s)) => {
                self.finish_console(CONSOLE_DRAIN_TIMEOUT);
                Ok(s)
            }
            Ok(None) => Err(VmError::Timeout {
                what: format!("QEMU (pid {}) to die after SIGKILL", self.pid()),
                after: KILL_REAP_TIMEOUT,
            }),
            Err(e) => Err(VmError::io("waiting for QEMU")(e)),
        }
    }

    /// Runs an HMP command (e.g. `info registers`) through QMP and returns its output, with
    /// a [`MONITOR_TIMEOUT`] bound.
    pub fn monitor_command(&self, cmd: &str) -> Result<String, VmError> {
        self.monitor_command_timeout(cmd, MONITOR_TIMEOUT)
    }

    /// [`Machine::monitor_command`] with an explicit bound.
    pub fn monitor_command_timeout(&self, cmd: &str, timeout: Duration) -> Result<String, VmError> {
        let _serial = lock(&self.monitor_lock);
        let alive = || self.fail_if_exited("the QEMU monitor");
        monitor::hmp_command(&self.qmp_path, cmd, timeout, &alive)
    }

    /// Runs QMP command `execute` with `arguments` (bounded by [`MONITOR_TIMEOUT`]).
    pub fn qmp(
        &self,
        execute: &str,
        arguments: serde_json::Value,
    ) -> Result<serde_json::Value, VmError> {
        let _serial = lock(&self.monitor_lock);
        let alive = || self.fail_if_exited("the QEMU monitor");
        monitor::qmp_execute(&self.qmp_path, execute, arguments, MONITOR_TIMEOUT, &alive)
    }

    /// Stops the guest and writes its whole state (RAM, CPUs, devices) to `state` as a
    /// migration stream, within `timeout`; the guest stays stopped ([`Machine::resume`] goes
    /// on). A machine launched with [`VmConfig::incoming`] set to that file and otherwise
    /// the same config resumes from this point. Disks are not part of the stream: the caller
    /// owns their contents. Returns the stream's size in bytes.
    pub fn save_state(&self, state: &Path, timeout: Duration) -> Result<u64, VmError> {
        let text = state.to_str().unwrap_or("'");
        if text.contains(['\'', '\n']) {
            return Err(VmError::InvalidConfig(format!(
                "saved state path {} is not UTF-8 or contains a quote or newline",
                state.display()
            )));
        }
        let deadline = Instant::now() + timeout;
        self.qmp("stop", serde_json::json!({}))?;
        // The guest is stopped: nothing to gain from a bandwidth limit (the default is 128
        // MiB/s), nor from downtime accounting.
        self.qmp(
            "migrate-set-parameters",
            serde_json::json!({"max-bandwidth": u64::MAX >> 1}),
        )?;
        self.qmp(
            "migrate",
            serde_json::json!({"uri": cmdline::outgoing_uri(state)}),
        )?;
        loop {
            let info = self.qmp("query-migrate", serde_json::json!({}))?;
            match info.get("status").and_then(|s| s.as_str()) {
                Some("completed") => break,
                Some(status @ ("failed" | "cancelled")) => {
                    let why = info
                        .get("error-desc")
                        .and_then(|d| d.as_str())
                        .unwrap_or("no reason given");
                    return Err(VmError::Monitor(format!(
                        "saving the guest state to {} {status}: {why}",
                        state.display()
                    )));
                }
                _ if Instant::now() >= deadline => {
                    let _ = self.qmp("migrate_cancel", serde_json::json!({}));
                    return Err(VmError::Timeout {
                        what: format!("saving the guest state to {}", state.display()),
                        after: timeout,
                    });
                }
                _ => thread::sleep(Duration::from_millis(20)),
            }
        }
        let size = std::fs::metadata(state)
            .map_err(VmError::io(format!("reading {}", state.display())))?
            .len();
        Ok(size)
    }

    /// Resumes a stopped guest (after [`Machine::save_state`]).
    pub fn resume(&self) -> Result<(), VmError> {
        self.qmp("cont", serde_json::json!({})).map(|_| ())
    }

    /// Waits at most `timeout` for a machine launched with [`VmConfig::incoming`] to load
    /// its saved state, and resumes it.
    pub fn wait_incoming(&self, timeout: Duration) -> Result<(), VmError> {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.qmp("query-status", serde_json::json!({}))?;
            match status.get("status").and_then(|s| s.as_str()) {
                Some("running") => return Ok(()),
                // Loaded: the state was saved from a stopped guest, so it arrives stopped.
                Some("paused") => return self.resume(),
                Some("inmigrate") | Some("prelaunch") | None => {}
                Some(other) => {
                    return Err(VmError::Monitor(format!(
                        "loading the saved guest state ended in state `{other}`: {}",
                        self.stderr_tail().trim()
                    )))
                }
            }
            if Instant::now() >= deadline {
                return Err(VmError::Timeout {
                    what: "loading the saved guest state".into(),
                    after: timeout,
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Presses Alt-SysRq-`key` on the guest's keyboard (`sendkey alt-sysrq-<key>`), e.g.
    /// `'t'` (all task stacks), `'w'` (blocked tasks), `'m'` (memory), `'l'` (CPU
    /// backtraces). The output appears on the console. Works because the guest boots with
    /// `sysrq_always_enabled` and the `pc` machine always has an i8042 keyboard.
    pub fn sysrq(&self, key: char) -> Result<(), VmError> {
        if !(key.is_ascii_lowercase() || key.is_ascii_digit()) {
            return Err(VmError::InvalidConfig(format!(
                "sysrq key {key:?} is not a lowercase letter or digit"
            )));
        }
        let out = self.monitor_command(&format!("sendkey alt-sysrq-{key}"))?;
        if out.trim().is_empty() {
            Ok(())
        } else {
            Err(VmError::Monitor(format!("sendkey: {}", out.trim())))
        }
    }

    /// Waits (bounded) for the console reader to reach EOF and joins it.
    fn finish_console(&self, timeout: Duration) {
        let done = lock(&self.reader_done).take();
        let Some(done) = done else { return };
        match done.recv_timeout(timeout) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                if let Some(h) = lock(&self.reader).take() {
                    let _ = h.join();
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                tracing::warn!("VM console still open {timeout:?} after QEMU exited");
                *lock(&self.reader_done) = Some(done);
            }
        }
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        // Stop the watchdog first so it cannot fire during teardown.
        drop(lock(&self.watchdog_cancel).take());
        if let Some(h) = lock(&self.watchdog).take() {
            let _ = h.join();
        }
        if self.group.kill_and_reap(KILL_REAP_TIMEOUT).is_none() {
            tracing::error!(
                "QEMU pid {} did not die within {KILL_REAP_TIMEOUT:?} of SIGKILL; leaving it",
                self.pid()
            );
        } else {
            self.finish_console(CONSOLE_DRAIN_TIMEOUT);
        }
        let _ = std::fs::remove_file(&self.agent_path);
        let _ = std::fs::remove_file(&self.qmp_path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::vm::DEFAULT_QEMU;

    fn dummy_inputs(dir: &Path) -> VmConfig {
        let k = dir.join("vmlinuz");
        let i = dir.join("initrd");
        std::fs::write(&k, b"this is not a kernel").expect("write");
        std::fs::write(&i, b"").expect("write");
        let mut cfg = VmConfig::new(k, i, dir.join("w"));
        cfg.lifetime = Duration::from_secs(60);
        cfg
    }

    #[test]
    fn machine_can_be_shared_across_threads() {
        fn check<T: Send + Sync>() {}
        check::<Machine>();
    }

    #[test]
    fn missing_qemu_names_the_package() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = dummy_inputs(dir.path());
        cfg.qemu = "/nonexistent/qemu-system-x86_64".into();
        let e = Machine::launch(cfg).expect_err("must fail");
        assert!(matches!(e, VmError::QemuNotFound { .. }));
        assert!(
            e.to_string().contains("apt-get install -y qemu-system-x86"),
            "{e}"
        );
    }

    #[test]
    fn missing_kernel_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = dummy_inputs(dir.path());
        cfg.kernel = dir.path().join("nope");
        let e = Machine::launch(cfg).expect_err("must fail");
        assert!(
            matches!(e, VmError::MissingFile { what: "kernel", .. }),
            "{e}"
        );
    }

    /// A kernel QEMU cannot load: QEMU exits at once with a message, and the machine says so.
    #[test]
    fn unbootable_kernel_gives_qemu_error() {
        if let Err(e) = resolve_qemu(Path::new(DEFAULT_QEMU)) {
            panic!("this test runs {DEFAULT_QEMU}: {e}");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let vm = Machine::launch(dummy_inputs(dir.path())).expect("launch");
        let status = vm
            .wait_exit(Duration::from_secs(30))
            .expect("wait")
            .expect("QEMU should exit by itself");
        assert!(!status.success());
        assert!(!vm.lifetime_expired());
        let tail = vm.stderr_tail();
        assert!(!tail.is_empty(), "QEMU said nothing");
        // The channel may or may not have been connected before QEMU gave up; either way
        // the call must come back promptly.
        let t0 = Instant::now();
        let _ = vm.connect_channel(Duration::from_secs(5));
        assert!(t0.elapsed() < Duration::from_secs(6));
        let e = vm.monitor_command("info status").expect_err("QEMU is gone");
        assert!(matches!(e, VmError::QemuExited { .. }), "{e}");
        let pid = vm.pid();
        drop(vm);
        assert!(crate::guest::vm::live_group_members(pid).is_empty());
    }
}
