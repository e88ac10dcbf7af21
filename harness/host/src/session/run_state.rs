//! The decisions of one run, without QEMU: what each event from the guest means and when to
//! stop waiting. [`RunState::on_event`] takes an [`Input`] and the time and answers with a
//! [`Step`]: wait for more until a deadline, or the run's [`Ending`]. `Session::run` is the
//! thin loop that feeds it from the agent channel and the console and carries out the ending
//! (draining the console, sysrq dumps, ending the VM).
//!
//! The deadlines: the agent must show a sign of life (any message; console output does not
//! count, a kernel can print forever while stuck) within `op_timeout + host_margin`, or the
//! run is a hang. Once the kernel has reported a bug, the agent's silence is bounded by
//! `report_grace` instead (the report is the finding), or `flood_grace` when the same report
//! keeps coming. A stopped program is attributed to one operation by one rule for hangs and
//! deaths alike: the lowest-numbered operation whose record may come next
//! ([`Progress::in_flight`]), or the one after the last when every record came.

use std::time::{Duration, Instant};

use shmemfuzz_core::console::KernelReport;
use shmemfuzz_core::program::threads::Progress;
use shmemfuzz_core::program::Program;
use shmemfuzz_core::protocol::{AgentMsg, ChildExit, FuncHits, OpRecord, PcHits, Teardown};

use super::flood::FloodWatch;

/// What the session loop saw.
// Inputs live for one call; boxing the large variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(super) enum Input {
    Agent(AgentMsg),
    /// The agent channel or the console closed: the guest is gone.
    Gone,
    /// Bytes on the agent channel that are not a frame.
    Garbage(String),
    /// Console output, already scanned: the reports it completed, whether the end-of-run
    /// marker of this run is in it, and the agent's fatal line if it printed one.
    Console {
        reports: Vec<KernelReport>,
        end_marker: bool,
        agent_fatal: Option<String>,
    },
    /// The deadline of the last [`Step::Wait`] passed.
    Deadline,
}

/// What the loop does next.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    Wait(Instant),
    End(Ending),
}

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Ending {
    /// The agent reported the program done; `hung`: a task stayed stuck in the kernel (the
    /// guest cannot be trusted again); `end_marker`: the console's end-of-run marker came
    /// already (otherwise late kernel messages are waited for, bounded).
    Done {
        hung: bool,
        end_marker: bool,
    },
    /// The kernel reported a bug and the agent stayed silent past the grace: the report is
    /// the finding, the VM is ended.
    ReportThenSilence,
    /// No sign of life from the agent in time: a hang in `op`.
    Hang {
        op: u32,
    },
    /// The guest went away during `op`.
    Gone {
        op: u32,
    },
    /// Harness failures, not findings.
    AgentFailed(String),
    Protocol(String),
}

/// The bounds a run is judged by (from `SessionOptions`).
#[derive(Clone, Copy, Debug)]
pub(super) struct RunTimes {
    /// `op_timeout + host_margin`.
    pub quiet_limit: Duration,
    pub report_grace: Duration,
    pub flood_repeats: u32,
    pub flood_grace: Duration,
}

/// What the agent's `Done` carried.
#[derive(Debug, Default)]
pub(super) struct DoneParts {
    pub exit: Option<ChildExit>,
    pub teardown: Option<Teardown>,
    pub coverage: Vec<FuncHits>,
    pub kcov: Option<Vec<PcHits>>,
}

/// One run in progress.
#[derive(Debug)]
pub(super) struct RunState {
    id: u64,
    times: RunTimes,
    progress: Progress,
    /// The agent's last message.
    last_event: Instant,
    /// When the kernel first reported a bug during this run.
    reported: Option<Instant>,
    flood: FloodWatch,
    /// The console's end-of-run marker of this run came.
    end_marker: bool,
    pub records: Vec<OpRecord>,
    pub reports: Vec<KernelReport>,
    pub done: DoneParts,
}

impl RunState {
    pub fn new(program: &Program, id: u64, times: RunTimes, now: Instant) -> RunState {
        RunState {
            id,
            times,
            progress: Progress::new(program),
            last_event: now,
            reported: None,
            flood: FloodWatch::new(times.flood_repeats),
            end_marker: false,
            records: Vec::new(),
            reports: Vec::new(),
            done: DoneParts::default(),
        }
    }

    fn hang_at(&self) -> Instant {
        self.last_event + self.times.quiet_limit
    }

    /// Until when to wait for the next input.
    pub fn deadline(&self) -> Instant {
        let grace = if self.flood.flooding() {
            self.times.flood_grace
        } else {
            self.times.report_grace
        };
        self.reported.map_or(self.hang_at(), |r| {
            self.hang_at().min(r.max(self.last_event) + grace)
        })
    }

    /// The operation a program that stopped was in (see the module documentation).
    pub fn op_in_flight(&self) -> u32 {
        self.progress
            .in_flight()
            .unwrap_or(self.records.len() as u32)
    }

    pub fn on_event(&mut self, input: Input, now: Instant) -> Step {
        match input {
            Input::Agent(msg) => {
                self.last_event = now;
                if let Some(end) = self.on_agent(msg) {
                    return Step::End(end);
                }
            }
            Input::Console {
                reports,
                end_marker,
                agent_fatal,
            } => {
                if self.reported.is_none() && reports.iter().any(|r| r.is_finding) {
                    self.reported = Some(now);
                }
                self.flood.saw(&reports);
                self.reports.extend(reports);
                self.end_marker |= end_marker;
                if let Some(line) = agent_fatal {
                    return Step::End(Ending::AgentFailed(line));
                }
            }
            Input::Garbage(why) => return Step::End(Ending::Protocol(why)),
            Input::Gone => {
                return Step::End(Ending::Gone {
                    op: self.op_in_flight(),
                })
            }
            Input::Deadline if now >= self.deadline() => {
                return Step::End(if now < self.hang_at() {
                    Ending::ReportThenSilence
                } else {
                    Ending::Hang {
                        op: self.op_in_flight(),
                    }
                });
            }
            Input::Deadline => {}
        }
        Step::Wait(self.deadline())
    }

    /// An agent message; `Some` when it ends the run.
    fn on_agent(&mut self, msg: AgentMsg) -> Option<Ending> {
        match msg {
            AgentMsg::Op(rec) => {
                if let Err(e) = self.progress.accept(rec.index) {
                    return Some(Ending::Protocol(e));
                }
                self.records.push(rec);
                None
            }
            AgentMsg::Done {
                id,
                exit,
                teardown,
                coverage,
                kcov,
            } if id == self.id => {
                if let ChildExit::ExecutorError { message } = &exit {
                    return Some(Ending::AgentFailed(format!(
                        "the executor failed: {message}"
                    )));
                }
                let hung = matches!(exit, ChildExit::Hung { .. });
                self.done = DoneParts {
                    exit: Some(exit),
                    teardown: (!hung).then_some(teardown),
                    coverage,
                    kcov,
                };
                Some(Ending::Done {
                    hung,
                    end_marker: self.end_marker,
                })
            }
            AgentMsg::Log { .. } => None,
            AgentMsg::Error { message } => Some(Ending::AgentFailed(message)),
            other => Some(Ending::Protocol(format!("unexpected message {other:?}"))),
        }
    }
}

#[cfg(test)]
#[path = "run_state_tests.rs"]
mod tests;
