//! Every way a run ends, decided without QEMU: each test feeds [`RunState`] the inputs a
//! guest would produce, at chosen times, and checks the step it answers.

use std::time::{Duration, Instant};

use shmemfuzz_core::console::{ConsoleScanner, KernelReport};
use shmemfuzz_core::program::parse;
use shmemfuzz_core::protocol::{AgentMsg, ChildExit, OpRecord, OpResult, Teardown};

use super::*;

const TIMES: RunTimes = RunTimes {
    quiet_limit: Duration::from_secs(180),
    report_grace: Duration::from_secs(15),
    flood_repeats: 3,
    flood_grace: Duration::from_secs(1),
};

const FLAT: &str = "memfd m0 size=4K\nwrite m0 off=0 len=4K seed=1\nclose m0\n";
const THREADED: &str = "memfd m0 size=4K\nmemfd m1 size=4K\nthreads\nthread a\nclose m0\n\
    thread b\nclose m1\njoin\n";

fn rec(index: u32) -> Input {
    Input::Agent(AgentMsg::Op(OpRecord {
        micros: 1,
        ..OpRecord::bare(index, OpResult::Ok)
    }))
}

fn done(id: u64, exit: ChildExit) -> Input {
    Input::Agent(AgentMsg::Done {
        id,
        exit,
        teardown: Teardown::default(),
        coverage: Vec::new(),
        kcov: None,
    })
}

fn console(reports: Vec<KernelReport>) -> Input {
    Input::Console {
        reports,
        end_marker: false,
        agent_fatal: None,
    }
}

fn warning(function: &str) -> Vec<KernelReport> {
    let text = format!(
        "[    1.0] ------------[ cut here ]------------\n\
         [    1.0] WARNING: CPU: 0 PID: 1 at mm/shmem.c:10 {function}+0x1/0x2\n\
         [    1.0] ---[ end trace 0000000000000000 ]---\n"
    );
    let mut s = ConsoleScanner::new();
    let mut out = s.feed(text.as_bytes());
    out.extend(s.finish());
    assert_eq!(out.len(), 1, "one report: {out:#?}");
    out
}

/// A run of `program` (id 1) started at `t0`.
fn start(program: &str, t0: Instant) -> RunState {
    RunState::new(&parse(program).expect("valid"), 1, TIMES, t0)
}

fn secs(t0: Instant, s: u64) -> Instant {
    t0 + Duration::from_secs(s)
}

fn waits(step: Step) -> Instant {
    match step {
        Step::Wait(at) => at,
        Step::End(e) => panic!("ended early: {e:?}"),
    }
}

#[test]
fn clean_and_finding_runs_end_when_the_agent_says_done() {
    let t0 = Instant::now();
    let mut st = start(FLAT, t0);
    for i in 0..3 {
        waits(st.on_event(rec(i), secs(t0, 1)));
    }
    let end = st.on_event(done(1, ChildExit::Completed), secs(t0, 2));
    assert_eq!(
        end,
        Step::End(Ending::Done {
            hung: false,
            end_marker: false
        })
    );
    assert_eq!(st.records.len(), 3);
    assert!(st.done.teardown.is_some());

    // A report during the run (a finding, judged later) with the agent carrying on.
    let mut st = start(FLAT, t0);
    waits(st.on_event(rec(0), secs(t0, 1)));
    waits(st.on_event(console(warning("shmem_replace_folio")), secs(t0, 1)));
    waits(st.on_event(rec(1), secs(t0, 10)));
    // 20 s after the report, but the agent spoke 10 s ago: still waiting.
    waits(st.on_event(Input::Deadline, secs(t0, 20)));
    waits(st.on_event(rec(2), secs(t0, 24)));
    let end = st.on_event(
        Input::Console {
            reports: Vec::new(),
            end_marker: true,
            agent_fatal: None,
        },
        secs(t0, 24),
    );
    waits(end);
    assert_eq!(
        st.on_event(done(1, ChildExit::Completed), secs(t0, 25)),
        Step::End(Ending::Done {
            hung: false,
            end_marker: true
        })
    );
    assert_eq!(st.reports.len(), 1);
}

#[test]
fn a_done_of_another_run_is_a_protocol_error() {
    let t0 = Instant::now();
    let mut st = start(FLAT, t0);
    match st.on_event(done(7, ChildExit::Completed), t0) {
        Step::End(Ending::Protocol(m)) => assert!(m.contains("unexpected"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_report_then_agent_silence_ends_after_the_grace() {
    let t0 = Instant::now();
    let mut st = start(FLAT, t0);
    waits(st.on_event(rec(0), t0));
    let until = waits(st.on_event(console(warning("shmem_unuse")), secs(t0, 2)));
    assert_eq!(until, secs(t0, 2) + TIMES.report_grace);
    waits(st.on_event(Input::Deadline, secs(t0, 16)));
    assert_eq!(
        st.on_event(Input::Deadline, secs(t0, 17)),
        Step::End(Ending::ReportThenSilence)
    );
}

#[test]
fn a_flood_of_the_same_report_cuts_the_grace() {
    let t0 = Instant::now();
    let mut st = start(FLAT, t0);
    waits(st.on_event(rec(0), t0));
    for _ in 0..2 {
        waits(st.on_event(console(warning("shmem_unuse")), secs(t0, 2)));
    }
    assert_eq!(
        st.deadline(),
        secs(t0, 2) + TIMES.report_grace,
        "two is no flood"
    );
    let until = waits(st.on_event(console(warning("shmem_unuse")), secs(t0, 2)));
    assert_eq!(until, secs(t0, 2) + TIMES.flood_grace);
    assert_eq!(
        st.on_event(Input::Deadline, secs(t0, 3)),
        Step::End(Ending::ReportThenSilence)
    );
}

#[test]
fn silence_without_a_report_is_a_hang_in_the_next_operation() {
    let t0 = Instant::now();
    let mut st = start(FLAT, t0);
    waits(st.on_event(rec(0), t0));
    // Console output is no sign of life.
    let until = waits(st.on_event(console(Vec::new()), secs(t0, 100)));
    assert_eq!(until, t0 + TIMES.quiet_limit);
    waits(st.on_event(Input::Deadline, secs(t0, 179)));
    assert_eq!(
        st.on_event(Input::Deadline, secs(t0, 180)),
        Step::End(Ending::Hang { op: 1 })
    );
}

#[test]
fn hang_and_death_in_a_threaded_program_name_the_same_operation() {
    let t0 = Instant::now();
    // ops: 0 memfd, 1 memfd, 2 threads, 3 thread a, 4 close m0, 5 thread b, 6 close m1,
    // 7 join. Thread b finished; thread a is stuck before op 4's record.
    let feed = |st: &mut RunState| {
        for i in [0, 1, 2, 5, 6, 3] {
            waits(st.on_event(rec(i), t0));
        }
    };
    let mut hang = start(THREADED, t0);
    feed(&mut hang);
    let hung = hang.on_event(Input::Deadline, t0 + TIMES.quiet_limit);
    let mut death = start(THREADED, t0);
    feed(&mut death);
    let died = death.on_event(Input::Gone, secs(t0, 5));
    assert_eq!(hung, Step::End(Ending::Hang { op: 4 }));
    assert_eq!(died, Step::End(Ending::Gone { op: 4 }));
    // (`records.len()`, the old rule for hangs, would have said 6.)
    assert_eq!(hang.records.len(), 6);
}

#[test]
fn a_guest_gone_after_every_record_names_the_operation_after_the_last() {
    let t0 = Instant::now();
    let mut st = start(FLAT, t0);
    for i in 0..3 {
        waits(st.on_event(rec(i), t0));
    }
    assert_eq!(
        st.on_event(Input::Gone, t0),
        Step::End(Ending::Gone { op: 3 })
    );
}

#[test]
fn a_stuck_task_reported_by_the_agent_ends_as_done_but_hung() {
    let t0 = Instant::now();
    let mut st = start(FLAT, t0);
    waits(st.on_event(rec(0), t0));
    assert_eq!(
        st.on_event(done(1, ChildExit::Hung { op: 1 }), t0),
        Step::End(Ending::Done {
            hung: true,
            end_marker: false
        })
    );
    assert!(st.done.teardown.is_none(), "no teardown after a stuck task");
}

#[test]
fn harness_failures_are_not_findings() {
    let t0 = Instant::now();
    let cases: Vec<(Input, &str)> = vec![
        (
            Input::Console {
                reports: Vec::new(),
                end_marker: false,
                agent_fatal: Some("shmemfuzz-agent: fatal: no swap".into()),
            },
            "fatal",
        ),
        (
            Input::Agent(AgentMsg::Error {
                message: "cgroup".into(),
            }),
            "cgroup",
        ),
        (
            done(
                1,
                ChildExit::ExecutorError {
                    message: "fork".into(),
                },
            ),
            "executor failed",
        ),
    ];
    for (input, says) in cases {
        match start(FLAT, t0).on_event(input, t0) {
            Step::End(Ending::AgentFailed(m)) => assert!(m.contains(says), "{m}"),
            other => panic!("{says}: {other:?}"),
        }
    }
}

#[test]
fn records_out_of_order_or_garbage_are_protocol_errors() {
    let t0 = Instant::now();
    let mut st = start(FLAT, t0);
    match st.on_event(rec(1), t0) {
        Step::End(Ending::Protocol(m)) => assert!(m.contains("op 0 was due"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        start(FLAT, t0).on_event(Input::Garbage("bad frame".into()), t0),
        Step::End(Ending::Protocol("bad frame".into()))
    );
}
