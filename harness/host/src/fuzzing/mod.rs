//! Fuzzing a real kernel: the logic behind the `shmem_ops` libFuzzer target and the
//! `shmemfuzz fuzz` campaign that runs it.
//!
//! - [`target`]: one fuzzer process: decode an input, run it on the process's VM, turn the
//!   kernel's coverage into libFuzzer counters, triage a finding into a bundle, publish stats.
//! - [`stats`]: the per-worker stats file the target writes and the campaign reads.
//! - [`history`]: the same figures over time (JSON lines per worker incarnation), merged.
//! - [`build`]: building the target binary for a campaign.
//! - [`campaign`]: long-lived workers (one VM each), live progress, restarts, summary.
//! - [`findbench`]: time from a cold start to the first finding (`bench find`).
//! - [`feedback`]: kernel coverage (kprobes, KCOV in mm/, page replacements) as libFuzzer
//!   counters; [`known`]: known findings (`--known FILE`), counted, not failed on.
//! - [`report`]: a campaign as one static HTML page.
//! - [`sigpattern`]: which findings end a campaign (`--stop-on-finding`, `bench find`).
//!
//! The target is configured by environment variables, so that `cargo fuzz run shmem_ops`
//! and the campaign drive the same code ([`target::Env`]).

pub mod build;
pub mod campaign;
pub mod feedback;
pub mod findbench;
pub mod history;
pub mod known;
pub mod report;
pub mod sigpattern;
pub mod stats;
pub mod target;

pub use target::{FuzzTarget, TargetError, Verdict};
