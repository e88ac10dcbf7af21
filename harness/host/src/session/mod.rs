//! One booted guest and the programs run on it.
//!
//! [`Session::boot`] (in `launch`) builds the initramfs and swap images, launches QEMU, and
//! waits (bounded) for the agent's `Ready`, checking the protocol version and the zone
//! layout; [`Session::snapshot`] saves a ready guest and [`Session::restore`] resumes one.
//! [`Session::run`] sends a program, collects the agent's per-operation records while scanning
//! the console live, and ends in one of three ways: the agent reports the program done; the
//! guest dies (a panic: a kernel finding); or nothing arrives in time (a hang finding, with
//! blocked-task stacks requested through the QEMU monitor first).
//!
//! "The kernel failed" is a [`Verdict`] finding; "the harness failed" is a [`SessionError`].

use std::io::BufReader;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use shmemfuzz_core::console::{KernelReport, ReportKind};
use shmemfuzz_core::oracle::finding::{judge, RunFacts};
use shmemfuzz_core::oracle::{Finding, FindingKind, Verdict};
use shmemfuzz_core::program::threads::Progress;
use shmemfuzz_core::program::Program;
use shmemfuzz_core::protocol::{
    read_frame, write_frame, AgentMsg, ChildExit, FuncHits, GuestSettings, HostMsg, OpRecord,
    PcHits, ProtocolError, Teardown, PROTOCOL_VERSION,
};
use shmemfuzz_core::zoneinfo::{self, Zone};

mod flood;
mod launch;

use crate::guest::GuestError;
use crate::guest_console::GuestConsole;
use crate::vm::{Accel, Machine, MemoryLayout, VmError};
use flood::FloodWatch;

/// The console line the agent prints before it gives up (see the agent's `main`).
const AGENT_FATAL: &str = "shmemfuzz-agent: fatal:";
/// The console line the agent prints at the end of each run, so the host knows every kernel
/// message of that run has arrived.
pub const END_MARKER: &str = "shmemfuzz-agent: end of run";

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Guest(#[from] GuestError),
    #[error(transparent)]
    Vm(#[from] VmError),
    #[error("creating the work directory {0}")]
    Workdir(PathBuf, #[source] std::io::Error),
    #[error("the guest did not become ready within {secs} s ({why}); console tail:\n{console}")]
    Boot {
        secs: u64,
        why: String,
        console: String,
    },
    #[error("the guest agent failed (a harness failure, not a finding): {0}")]
    Agent(String),
    #[error("the guest sent something the host does not accept: {0}")]
    Protocol(String),
    #[error("the guest's memory layout cannot show the zone bug: {0}")]
    Layout(#[from] zoneinfo::LayoutError),
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),
}

/// How to boot a session.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    pub workdir: PathBuf,
    pub accel: Accel,
    pub smp: u32,
    pub memory: MemoryLayout,
    pub swap_devices: u8,
    pub swap_size: u64,
    pub boot_timeout: Duration,
    /// The agent's deadline for one operation.
    pub op_timeout: Duration,
    /// The draw seed of every run (ranged `delay`/`spin`, [`shmemfuzz_core::program::draw`]):
    /// `None` draws a fresh one per run (repetition explores interleavings); a replay sets
    /// the recorded one.
    pub draws: Option<u64>,
    /// How much longer than `op_timeout` the host waits for any sign of life from the agent
    /// before it declares the guest hung (the agent reports its own deadline first when it
    /// can). Console output is not a sign of life: a kernel can print forever while stuck.
    pub host_margin: Duration,
    /// After the kernel reported a bug (KASAN, Oops, BUG, lockup...), how long the host waits
    /// for the agent's next message before it ends the run and the VM: a kernel that reported
    /// a use-after-free in a loop may never let the program finish, and the report is the
    /// finding. (Not a hang: the report explains it.)
    pub report_grace: Duration,
    /// A console flooding with the same report (a report seen `flood_repeats` times in one
    /// run) ends the run after only `flood_grace` of agent silence: the report is the
    /// finding, and what comes after it is more of the same.
    pub flood_repeats: u32,
    pub flood_grace: Duration,
    /// Hard bound on the VM's whole life.
    pub lifetime: Duration,
    /// Extra kernel arguments, after the defaults (e.g. `shmem.planted_no_replace=1`).
    pub append: Vec<String>,
    /// Out-of-tree modules the agent loads last (the mock GMA500 driver).
    pub modules: Vec<PathBuf>,
    /// Host executables copied into the guest as `/opt/<file name>` (for [`Session::exec`]).
    pub executables: Vec<PathBuf>,
    /// Whether a [`crate::runner::Runner`] saves its first guest at `Ready` and restores
    /// that instead of booting cold (see [`crate::snapshot`]).
    pub snapshots: bool,
}

impl SessionOptions {
    pub fn new(workdir: PathBuf, accel: Accel) -> Self {
        SessionOptions {
            workdir,
            accel,
            smp: 1,
            memory: MemoryLayout::default(),
            swap_devices: shmemfuzz_core::program::DEFAULT_SWAP_DEVICES,
            swap_size: 512 << 20,
            boot_timeout: Duration::from_secs(180),
            op_timeout: Duration::from_secs(120),
            draws: None,
            host_margin: Duration::from_secs(60),
            report_grace: Duration::from_secs(15),
            flood_repeats: 3,
            flood_grace: Duration::from_secs(1),
            lifetime: Duration::from_secs(3600),
            append: Vec::new(),
            modules: Vec::new(),
            executables: Vec::new(),
            snapshots: true,
        }
    }
}

/// What the agent reported when it became ready.
#[derive(Clone, Debug, serde::Serialize)]
pub struct GuestInfo {
    pub release: String,
    pub version: String,
    pub zones: Vec<Zone>,
    pub swap_devices: Vec<String>,
    pub taint: u64,
    pub settings: GuestSettings,
    pub modules: Vec<String>,
    /// Guest uptime at ready, from /proc/uptime.
    pub boot_ms: u64,
    /// Host wall time from launch to ready.
    pub ready_after_ms: u64,
}

// Events live for one channel hop; boxing the large variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Event {
    Agent(AgentMsg),
    /// The channel closed (the guest died or powered off).
    AgentGone(String),
    /// The guest sent bytes that are not a valid frame: a harness failure.
    AgentBad(String),
    Console(Vec<u8>),
    ConsoleClosed,
}

/// Everything one run produced.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    pub records: Vec<OpRecord>,
    pub exit: Option<ChildExit>,
    pub teardown: Option<Teardown>,
    pub reports: Vec<KernelReport>,
    pub verdict: Verdict,
    /// False when the guest died or was killed during the run.
    pub vm_alive: bool,
    pub wall_ms: u64,
    /// Kernel functions the program ran, with hit counts (empty without kprobe events).
    pub coverage: Vec<FuncHits>,
    /// Basic blocks the program's syscalls ran (KCOV); `None` when the kernel has no KCOV.
    pub kcov: Option<Vec<PcHits>>,
    /// The draw seed the run used.
    pub draws: u64,
}

/// What [`Session::exec`] measured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecOutcome {
    /// Runs that exited 0.
    pub ok: u32,
    /// The agent's wall time for all runs.
    pub micros: u64,
    /// How the other runs ended.
    pub failures: Vec<String>,
}

pub struct Session {
    machine: Machine,
    chan: UnixStream,
    events: Receiver<Event>,
    console: GuestConsole,
    pub info: GuestInfo,
    next_id: u64,
    op_timeout: Duration,
    draws: Option<u64>,
    host_margin: Duration,
    report_grace: Duration,
    flood_repeats: u32,
    flood_grace: Duration,
    dead: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("release", &self.info.release)
            .field("pid", &self.machine.pid())
            .finish()
    }
}

impl Session {
    pub fn command_line(&self) -> String {
        self.machine.command_line()
    }

    /// Sends a human-monitor command to QEMU (e.g. `sendkey alt-sysrq-w`, `stop`).
    pub fn monitor(&self, cmd: &str) -> Result<String, SessionError> {
        Ok(self.machine.monitor_command(cmd)?)
    }

    pub fn console_path(&self) -> &Path {
        self.machine.console_path()
    }

    fn console_tail(&self) -> String {
        self.console.tail(40)
    }

    fn feed_console(&mut self, bytes: &[u8]) -> Vec<KernelReport> {
        self.console.feed(bytes)
    }

    fn wait_ready(&mut self, limit: Duration, started: Instant) -> Result<GuestInfo, SessionError> {
        let deadline = started + limit;
        let fail = |s: &Self, why: String| SessionError::Boot {
            secs: limit.as_secs(),
            why,
            console: s.console_tail(),
        };
        loop {
            match self.next_event_until(deadline) {
                Ok(Event::Agent(AgentMsg::Ready {
                    protocol,
                    release,
                    version,
                    zones,
                    swap_devices,
                    taint,
                    settings,
                    modules,
                    boot_ms,
                })) => {
                    if protocol != PROTOCOL_VERSION {
                        return Err(SessionError::Protocol(format!(
                            "agent speaks protocol {protocol}, host {PROTOCOL_VERSION}: rebuild"
                        )));
                    }
                    let ready_after_ms = started.elapsed().as_millis() as u64;
                    return Ok(GuestInfo {
                        release,
                        version,
                        zones,
                        swap_devices,
                        taint,
                        settings,
                        modules,
                        boot_ms,
                        ready_after_ms,
                    });
                }
                Ok(Event::Agent(AgentMsg::Error { message })) => {
                    return Err(SessionError::Agent(message))
                }
                Ok(Event::Agent(other)) => {
                    return Err(SessionError::Protocol(format!(
                        "expected Ready, got {other:?}"
                    )))
                }
                Ok(Event::Console(bytes)) => {
                    let reports = self.feed_console(&bytes);
                    if self.console.recent_has(AGENT_FATAL) {
                        return Err(SessionError::Agent(self.fatal_line()));
                    }
                    if let Some(panic) = reports.iter().find(|r| r.kind == ReportKind::Panic) {
                        return Err(fail(
                            self,
                            format!("the kernel panicked during boot: {}", panic.title),
                        ));
                    }
                }
                Ok(Event::AgentGone(why)) => {
                    return Err(fail(self, format!("the agent channel closed: {why}")))
                }
                Ok(Event::AgentBad(why)) => return Err(SessionError::Protocol(why)),
                Ok(Event::ConsoleClosed) => return Err(fail(self, "QEMU exited".into())),
                Err(RecvTimeoutError::Timeout) => return Err(fail(self, "timed out".into())),
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(fail(self, "all event sources closed".into()))
                }
            }
        }
    }

    fn fatal_line(&self) -> String {
        self.console
            .line_with(AGENT_FATAL)
            .unwrap_or(AGENT_FATAL)
            .trim()
            .to_string()
    }

    /// Fixes the draw seed of the next runs (`None`: a fresh one per run).
    pub fn set_draws(&mut self, draws: Option<u64>) {
        self.draws = draws;
    }

    /// Runs `program` and judges it; `on_record` sees each operation's record as it arrives.
    pub fn run(
        &mut self,
        program: &Program,
        on_record: &mut dyn FnMut(&OpRecord),
    ) -> Result<RunOutcome, SessionError> {
        if self.dead {
            return Err(SessionError::Agent(
                "the guest is gone: boot a new session".into(),
            ));
        }
        let started = Instant::now();
        let id = self.next_id;
        self.next_id += 1;
        let taint_before = self.info.taint;
        let draws = self.draws.unwrap_or_else(|| fresh_draws(id));
        let msg = HostMsg::Run {
            id,
            program: program.clone(),
            op_timeout_ms: self.op_timeout.as_millis() as u64,
            draws,
        };
        write_frame(&mut self.chan, &msg)
            .map_err(|e| SessionError::Agent(format!("sending the program: {e}")))?;
        let mut out = RunOutcome {
            records: Vec::new(),
            exit: None,
            teardown: None,
            reports: Vec::new(),
            verdict: Verdict::default(),
            vm_alive: true,
            wall_ms: 0,
            coverage: Vec::new(),
            kcov: None,
            draws,
        };
        let quiet_limit = self.op_timeout + self.host_margin;
        let mut hang = None;
        // The agent's last message (console output does not count, see `host_margin`).
        let mut last_event = Instant::now();
        // When the kernel first reported a bug during this run.
        let mut reported: Option<Instant> = None;
        let mut flood = FloodWatch::new(self.flood_repeats);
        let mut end_seen = false;
        let marker = format!("{END_MARKER} {id}");
        // Records come in program order, except that the threads of a section interleave.
        let mut progress = Progress::new(program);
        loop {
            let hang_at = last_event + quiet_limit;
            let grace = if flood.flooding() {
                self.flood_grace
            } else {
                self.report_grace
            };
            let give_up_at = reported.map_or(hang_at, |r| hang_at.min(r.max(last_event) + grace));
            let event = match self.next_event_until(give_up_at) {
                Ok(e) => e,
                Err(_) if Instant::now() < hang_at => {
                    // The kernel reported a bug and the program stopped answering.
                    self.end_after_kernel_report(&mut out);
                    break;
                }
                Err(_) => {
                    hang = Some(self.collect_hang_evidence(&mut out));
                    break;
                }
            };
            if matches!(event, Event::Agent(_)) {
                last_event = Instant::now();
            }
            match event {
                Event::Agent(AgentMsg::Op(rec)) => {
                    progress.accept(rec.index).map_err(SessionError::Protocol)?;
                    on_record(&rec);
                    out.records.push(rec);
                }
                Event::Agent(AgentMsg::Done {
                    id: done,
                    exit,
                    teardown,
                    coverage,
                    kcov,
                }) if done == id => {
                    if let ChildExit::ExecutorError { message } = &exit {
                        return Err(SessionError::Agent(format!(
                            "the executor failed: {message}"
                        )));
                    }
                    let hung = matches!(exit, ChildExit::Hung { .. });
                    out.coverage = coverage;
                    out.kcov = kcov;
                    out.exit = Some(exit);
                    out.teardown = (!hung).then_some(teardown);
                    if !end_seen {
                        // Not seeing it only means late messages may be missed; not an error.
                        let _ = self.wait_for_console(
                            &marker,
                            &mut out.reports,
                            Duration::from_secs(15),
                        );
                    }
                    if hung {
                        // A task is stuck in the kernel: this guest cannot be trusted again.
                        self.finish_dead_guest(&mut out);
                    }
                    break;
                }
                Event::Agent(AgentMsg::Log { .. }) => {}
                Event::Agent(AgentMsg::Error { message }) => {
                    return Err(SessionError::Agent(message))
                }
                Event::Agent(other) => {
                    return Err(SessionError::Protocol(format!(
                        "unexpected message {other:?}"
                    )))
                }
                Event::Console(bytes) => {
                    let reports = self.feed_console(&bytes);
                    end_seen |= self.console.recent_has(&marker);
                    if reported.is_none() && reports.iter().any(|r| r.is_finding) {
                        reported = Some(Instant::now());
                    }
                    flood.saw(&reports);
                    out.reports.extend(reports);
                    if self.console.recent_has(AGENT_FATAL) {
                        return Err(SessionError::Agent(self.fatal_line()));
                    }
                }
                Event::AgentBad(why) => return Err(SessionError::Protocol(why)),
                Event::AgentGone(_) | Event::ConsoleClosed => {
                    self.finish_dead_guest(&mut out);
                    break;
                }
            }
        }
        // Stored and judged in program order (a section's records arrive interleaved).
        out.records.sort_by_key(|r| r.index);
        let mut verdict = judge(&RunFacts {
            program,
            swap_on: (0..self.info.swap_devices.len()).map(|i| i == 0).collect(),
            records: &out.records,
            exit: out.exit.as_ref(),
            teardown: out.teardown.as_ref(),
            reports: &out.reports,
            taint_before,
            zones: &self.info.zones,
        });
        if let Some(f) = hang {
            verdict.push(f);
        }
        // A guest that went away on its own with nothing on the console to say why. (After a
        // hang the host itself ends the VM: that is not a death to report.)
        let explained = verdict
            .findings
            .iter()
            .any(|f| matches!(f.kind, FindingKind::Kernel | FindingKind::Hang));
        if !out.vm_alive && !explained {
            let op = progress.in_flight().unwrap_or(out.records.len() as u32);
            let title = format!("the guest died during op {op} without a kernel report");
            verdict.push(Finding::new(
                FindingKind::Kernel,
                "guest died",
                title,
                Some(op),
                self.console_tail(),
            ));
        }
        if let Some(t) = &out.teardown {
            self.info.taint = t.after.taint;
        }
        out.verdict = verdict;
        out.wall_ms = started.elapsed().as_millis() as u64;
        Ok(out)
    }

    /// The next event before `deadline`; `None` once it has passed, even while events keep
    /// coming (a console flood never lets `recv_timeout` time out).
    fn next_event_until(&self, deadline: Instant) -> Result<Event, RecvTimeoutError> {
        let now = Instant::now();
        if now >= deadline {
            return Err(RecvTimeoutError::Timeout);
        }
        self.events.recv_timeout(deadline - now)
    }

    /// Waits for `marker` on the console; false if it did not come in time.
    fn wait_for_console(
        &mut self,
        marker: &str,
        reports: &mut Vec<KernelReport>,
        limit: Duration,
    ) -> bool {
        let deadline = Instant::now() + limit;
        if self.console.has(marker) {
            return true;
        }
        loop {
            match self.next_event_until(deadline) {
                Ok(Event::Console(bytes)) => {
                    reports.extend(self.feed_console(&bytes));
                    if self.console.recent_has(marker) {
                        return true;
                    }
                }
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    }

    /// The guest went away mid-run: drain the console until QEMU is gone, bounded.
    fn finish_dead_guest(&mut self, out: &mut RunOutcome) {
        out.vm_alive = false;
        self.dead = true;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match self.next_event_until(deadline) {
                Ok(Event::Console(bytes)) => out.reports.extend(self.feed_console(&bytes)),
                Ok(Event::ConsoleClosed) | Err(_) => break,
                Ok(_) => {}
            }
        }
        out.reports.extend(self.console.finish());
        let _ = self.machine.kill();
    }

    /// The kernel reported a bug and the agent has been silent for `report_grace` since: take
    /// what the console still brings for a moment (the rest of a report), end the VM. The
    /// report is the finding; the run is not called a hang.
    fn end_after_kernel_report(&mut self, out: &mut RunOutcome) {
        self.end_vm_after(Duration::from_secs(2), out);
    }

    /// Reads the console for `linger` more (the end of a report, sysrq dumps), then kills the
    /// VM: the session is dead.
    fn end_vm_after(&mut self, linger: Duration, out: &mut RunOutcome) {
        let deadline = Instant::now() + linger;
        while let Ok(ev) = self.next_event_until(deadline) {
            if let Event::Console(bytes) = ev {
                out.reports.extend(self.feed_console(&bytes));
            }
        }
        out.reports.extend(self.console.finish());
        out.vm_alive = false;
        self.dead = true;
        let _ = self.machine.kill();
    }

    /// Nothing arrived for too long: ask for stacks, give the console a moment, end the VM.
    fn collect_hang_evidence(&mut self, out: &mut RunOutcome) -> Finding {
        for key in ['w', 't'] {
            let _ = self.machine.sysrq(key);
        }
        self.end_vm_after(Duration::from_secs(10), out);
        let op = out.records.len() as u32;
        let title = format!("the guest stopped answering during op {op}");
        Finding::new(
            FindingKind::Hang,
            "guest",
            title,
            Some(op),
            self.console_tail(),
        )
    }

    /// Runs the guest executable `path` (see [`SessionOptions::executables`]) `runs` times
    /// in a row, each bounded by the agent; for the benchmark's floor.
    pub fn exec(&mut self, path: &str, runs: u32) -> Result<ExecOutcome, SessionError> {
        let id = self.next_id;
        self.next_id += 1;
        let msg = HostMsg::Exec {
            id,
            path: path.to_string(),
            runs,
        };
        write_frame(&mut self.chan, &msg)
            .map_err(|e| SessionError::Agent(format!("sending the exec request: {e}")))?;
        let limit = (self.op_timeout + self.host_margin) * runs.max(1);
        let deadline = Instant::now() + limit;
        loop {
            match self.next_event_until(deadline) {
                Ok(Event::Agent(AgentMsg::Executed {
                    id: got,
                    ok,
                    micros,
                    failures,
                })) if got == id => {
                    return Ok(ExecOutcome {
                        ok,
                        micros,
                        failures,
                    })
                }
                Ok(Event::Console(bytes)) => {
                    self.feed_console(&bytes);
                }
                Ok(Event::Agent(AgentMsg::Log { .. })) => {}
                Ok(Event::AgentGone(why) | Event::AgentBad(why)) => {
                    return Err(SessionError::Agent(why))
                }
                Ok(Event::Agent(other)) => {
                    return Err(SessionError::Protocol(format!(
                        "unexpected message while waiting for exec: {other:?}"
                    )))
                }
                Ok(Event::ConsoleClosed) => {}
                Err(_) => {
                    return Err(SessionError::Agent(format!(
                        "no answer to exec of {path} within {limit:?}"
                    )))
                }
            }
        }
    }

    /// Asks the agent to power off and waits (bounded) for QEMU to exit; kills it otherwise.
    pub fn shutdown(mut self) {
        if !self.dead {
            let _ = write_frame(&mut self.chan, &HostMsg::Shutdown);
            if matches!(self.machine.wait_exit(Duration::from_secs(20)), Ok(Some(_))) {
                return;
            }
        }
        let _ = self.machine.kill();
    }
}

impl GuestInfo {
    fn placeholder() -> Self {
        GuestInfo {
            release: String::new(),
            version: String::new(),
            zones: Vec::new(),
            swap_devices: Vec::new(),
            taint: 0,
            settings: GuestSettings::default(),
            modules: Vec::new(),
            boot_ms: 0,
            ready_after_ms: 0,
        }
    }
}

fn spawn_agent_reader(chan: UnixStream, tx: Sender<Event>) {
    std::thread::spawn(move || {
        let mut r = BufReader::new(chan);
        loop {
            let ev = match read_frame::<AgentMsg>(&mut r) {
                Ok(msg) => Event::Agent(msg),
                Err(ProtocolError::Closed) => Event::AgentGone("closed".into()),
                Err(ProtocolError::Io(e)) => Event::AgentGone(e.to_string()),
                Err(e) => Event::AgentBad(e.to_string()),
            };
            let gone = matches!(ev, Event::AgentGone(_) | Event::AgentBad(_));
            if tx.send(ev).is_err() || gone {
                return;
            }
        }
    });
}

fn spawn_console_forwarder(rx: Receiver<Vec<u8>>, tx: Sender<Event>) {
    std::thread::spawn(move || {
        for chunk in rx {
            if tx.send(Event::Console(chunk)).is_err() {
                return;
            }
        }
        let _ = tx.send(Event::ConsoleClosed);
    });
}

/// A draw seed no earlier run of this process used: the clock and the run id, mixed.
fn fresh_draws(id: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (nanos ^ u64::from(std::process::id()) << 40)
        .wrapping_add(id.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}
