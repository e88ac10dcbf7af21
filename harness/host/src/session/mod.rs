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
//!
//! Every wait here looks at [`crate::interrupt`] at least every [`INTERRUPT_POLL`]: an
//! interrupted boot or run ends with [`SessionError::Interrupted`] (never a hang finding),
//! and dropping the session kills its QEMU.

use std::io::BufReader;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use shmemfuzz_core::console::{KernelReport, ReportKind};
use shmemfuzz_core::oracle::finding::{judge, RunFacts};
use shmemfuzz_core::oracle::{Finding, FindingKind, Verdict};
use shmemfuzz_core::program::Program;
use shmemfuzz_core::protocol::{
    read_frame, write_frame, AgentMsg, ChildExit, FuncHits, GuestSettings, HostMsg, OpRecord,
    PcHits, ProtocolError, Teardown, PROTOCOL_VERSION,
};
use shmemfuzz_core::zoneinfo::{self, Zone};

mod flood;
mod launch;
mod run_state;

use crate::guest::GuestError;
use crate::guest_console::GuestConsole;
use crate::vm::{Accel, Machine, MemoryLayout, VmError};
use run_state::{Ending, Input, RunState, RunTimes, Step};

/// The console line the agent prints before it gives up (see the agent's `main`).
const AGENT_FATAL: &str = "shmemfuzz-agent: fatal:";
/// The console line the agent prints at the end of each run, so the host knows every kernel
/// message of that run has arrived.
pub const END_MARKER: &str = "shmemfuzz-agent: end of run";
/// How often a wait for the guest looks at [`crate::interrupt::requested`].
pub const INTERRUPT_POLL: Duration = Duration::from_millis(100);

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
    #[error("the guest's memory layout cannot show the zone bug")]
    Layout(#[from] zoneinfo::LayoutError),
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),
    /// Ctrl-C or SIGTERM arrived while waiting for the guest: not a finding, not a failure.
    #[error("stopped waiting for the guest")]
    Interrupted(#[from] crate::interrupt::Interrupted),
}

/// Why [`Session::next_event_until`] returned no event.
enum Quiet {
    /// The deadline passed.
    Timeout,
    /// Every event source closed.
    Closed,
    Interrupted(crate::interrupt::Interrupted),
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
    /// How long the session waits for everything that is not the program.
    pub waits: Waits,
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
            waits: Waits::default(),
            lifetime: Duration::from_secs(3600),
            append: Vec::new(),
            modules: Vec::new(),
            executables: Vec::new(),
            snapshots: true,
        }
    }
}

/// The session's bounded waits for things other than the program itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waits {
    /// For QEMU to connect the agent channel after launch.
    pub channel: Duration,
    /// For the console's end-of-run marker after the agent said done (late kernel
    /// messages of the run; missing it loses only those).
    pub end_marker: Duration,
    /// For the console to drain after the guest went away.
    pub dead_drain: Duration,
    /// For the rest of a report once the grace after it ran out.
    pub report_linger: Duration,
    /// For the task dumps requested by sysrq after a hang.
    pub hang_linger: Duration,
    /// For QEMU to exit after the agent was asked to power off.
    pub shutdown: Duration,
    /// For writing a snapshot of the guest.
    pub snapshot_save: Duration,
}

impl Default for Waits {
    fn default() -> Self {
        Waits {
            channel: Duration::from_secs(30),
            end_marker: Duration::from_secs(15),
            dead_drain: Duration::from_secs(20),
            report_linger: Duration::from_secs(2),
            hang_linger: Duration::from_secs(10),
            shutdown: Duration::from_secs(20),
            snapshot_save: Duration::from_secs(120),
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
    /// The options it was started with (`draws` changes with [`Session::set_draws`]).
    opts: SessionOptions,
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
                Err(Quiet::Timeout) => return Err(fail(self, "timed out".into())),
                Err(Quiet::Closed) => return Err(fail(self, "all event sources closed".into())),
                Err(Quiet::Interrupted(i)) => return Err(i.into()),
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
        self.opts.draws = draws;
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
        let draws = self.opts.draws.unwrap_or_else(|| fresh_draws(id));
        let msg = HostMsg::Run {
            id,
            program: program.clone(),
            op_timeout_ms: self.opts.op_timeout.as_millis() as u64,
            draws,
        };
        write_frame(&mut self.chan, &msg)
            .map_err(|e| SessionError::Agent(format!("sending the program: {e}")))?;
        let times = RunTimes {
            quiet_limit: self.opts.op_timeout + self.opts.host_margin,
            report_grace: self.opts.report_grace,
            flood_repeats: self.opts.flood_repeats,
            flood_grace: self.opts.flood_grace,
        };
        let marker = format!("{END_MARKER} {id}");
        let mut state = RunState::new(program, id, times, Instant::now());
        let ending = loop {
            let input = match self.next_event_until(state.deadline()) {
                Ok(event) => self.input_of(event, &marker),
                Err(Quiet::Interrupted(i)) => return Err(i.into()),
                Err(Quiet::Timeout | Quiet::Closed) => Input::Deadline,
            };
            let arrived = state.records.len();
            let step = state.on_event(input, Instant::now());
            if let Some(rec) = state.records.get(arrived) {
                on_record(rec);
            }
            if let Step::End(ending) = step {
                break ending;
            }
        };
        let op_in_flight = state.op_in_flight();
        let RunState {
            records,
            reports,
            done,
            ..
        } = state;
        let mut out = RunOutcome {
            records,
            exit: done.exit,
            teardown: done.teardown,
            reports,
            verdict: Verdict::default(),
            vm_alive: true,
            wall_ms: 0,
            coverage: done.coverage,
            kcov: done.kcov,
            draws,
        };
        let mut hang = None;
        match ending {
            Ending::Done { hung, end_marker } => {
                if !end_marker {
                    // Not seeing it only means late messages may be missed; not an error.
                    let limit = self.opts.waits.end_marker;
                    let _ = self.wait_for_console(&marker, &mut out.reports, limit);
                }
                if hung {
                    // A task is stuck in the kernel: this guest cannot be trusted again.
                    self.finish_dead_guest(&mut out);
                }
            }
            Ending::ReportThenSilence => self.end_vm_after(self.opts.waits.report_linger, &mut out),
            Ending::Hang { op } => hang = Some(self.collect_hang_evidence(op, &mut out)),
            Ending::Gone { .. } => self.finish_dead_guest(&mut out),
            Ending::AgentFailed(message) => return Err(SessionError::Agent(message)),
            Ending::Protocol(message) => return Err(SessionError::Protocol(message)),
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
            let op = op_in_flight;
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

    /// What `event` means to a run whose end-of-run marker is `marker` (console bytes are
    /// scanned here: the session's console outlives runs).
    fn input_of(&mut self, event: Event, marker: &str) -> Input {
        match event {
            Event::Agent(msg) => Input::Agent(msg),
            Event::AgentGone(_) | Event::ConsoleClosed => Input::Gone,
            Event::AgentBad(why) => Input::Garbage(why),
            Event::Console(bytes) => {
                let reports = self.feed_console(&bytes);
                Input::Console {
                    reports,
                    end_marker: self.console.recent_has(marker),
                    agent_fatal: self
                        .console
                        .recent_has(AGENT_FATAL)
                        .then(|| self.fatal_line()),
                }
            }
        }
    }

    /// The next event before `deadline`; [`Quiet::Timeout`] once it has passed, even while
    /// events keep coming (a console flood never lets `recv_timeout` time out), and
    /// [`Quiet::Interrupted`] within [`INTERRUPT_POLL`] of an interruption.
    fn next_event_until(&self, deadline: Instant) -> Result<Event, Quiet> {
        loop {
            if let Some(i) = crate::interrupt::requested() {
                return Err(Quiet::Interrupted(i));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Quiet::Timeout);
            }
            match self
                .events
                .recv_timeout((deadline - now).min(INTERRUPT_POLL))
            {
                Ok(event) => return Ok(event),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Err(Quiet::Closed),
            }
        }
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
        let deadline = Instant::now() + self.opts.waits.dead_drain;
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

    /// Nothing arrived for too long while the program was in `op`: ask for stacks, give the
    /// console a moment, end the VM.
    fn collect_hang_evidence(&mut self, op: u32, out: &mut RunOutcome) -> Finding {
        for key in ['w', 't'] {
            let _ = self.machine.sysrq(key);
        }
        self.end_vm_after(self.opts.waits.hang_linger, out);
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
        let limit = (self.opts.op_timeout + self.opts.host_margin) * runs.max(1);
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
                Err(Quiet::Interrupted(i)) => return Err(i.into()),
                Err(Quiet::Timeout | Quiet::Closed) => {
                    return Err(SessionError::Agent(format!(
                        "no answer to exec of {path} within {limit:?}"
                    )))
                }
            }
        }
    }

    /// Asks the agent to power off and waits (bounded) for QEMU to exit; kills it otherwise
    /// (and at once when the process was interrupted).
    pub fn shutdown(mut self) {
        if !self.dead && crate::interrupt::requested().is_none() {
            let _ = write_frame(&mut self.chan, &HostMsg::Shutdown);
            if matches!(
                self.machine.wait_exit(self.opts.waits.shutdown),
                Ok(Some(_))
            ) {
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
