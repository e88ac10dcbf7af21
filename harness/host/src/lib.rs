//! shmemfuzz host library: everything that runs on the host side of the VM boundary,
//! listed in the order data flows through it.
//!
//! **Where kernels come from**
//! - [`context`]: where the source tree, catalog and cache are; kernel and accelerator choice.
//! - [`kernel`]: the kernel catalog and fetching Debian's prebuilt kernels.
//! - [`kbuild`]: self-built kernels (Debian's linux-source or any tree, patched, configured
//!   from kernels/configs/), and the mock driver built per kernel ([`kbuild::modbuild`]).
//! - [`runtime`]: a directory beside the executable supplying QEMU (with its libraries and
//!   firmware), the catalog and the kernel cache, for a target run away from its checkout.
//!
//! **What goes into the guest**
//! - [`guest`]: the embedded agent, the initramfs, swap images.
//! - [`initramfs`]: the newc cpio writer; [`swapimg`]: swap device images.
//! - [`vm`]: the QEMU command line, accelerator probe and the VM's bounded lifecycle.
//! - [`process`]: child processes, one way: spawned supervised (own group, death signal),
//!   waited for with a deadline, stopped TERM → KILL; the one `PATH` lookup.
//! - [`interrupt`]: Ctrl-C and SIGTERM as a flag the long loops and waits look at, so an
//!   interrupted command still ends its VMs and removes its work directories.
//!
//! **A session and its runs**
//! - [`session`]: a booted guest; running a program and judging it (its decisions in a pure,
//!   table-tested state machine).
//! - [`guest_console`]: the guest's console as text and kernel reports, across runs.
//! - [`snapshot`]: a ready guest's saved state, restored instead of a cold boot.
//! - [`runner`]: many runs on one kernel, replacing the guest after one killed it.
//! - [`trace`]: the JSON trace of one execution.
//!
//! **Fuzzing, reproduction, bisection**
//! - [`fuzzing`]: the `shmem_ops` fuzz target's logic and `shmemfuzz fuzz` campaigns.
//! - [`feedback`]: kernel coverage (kprobes, KCOV in mm/, page replacements) as libFuzzer
//!   counters; [`known`]: known findings (`--known FILE`), counted, not failed on.
//! - [`bundle`]: the record/replay bundle: program, records, trace, console, metadata.
//! - [`reproduce`]: replaying a program n times and counting hits of a signature.
//! - [`bisect`]: finding the first bad commit or Debian version for a reproducer.
//! - [`report`]: a campaign as one static HTML page.
//!
//! **Measuring**
//! - [`bench`]: the boot and recovery benchmarks; [`exec_bench`]: executions per second
//!   beside a C floor; [`corpus_bench`]: a fixed fuzzer-made corpus through one worker.
//!
//! **Files from outside, files we write**
//! - [`bounded`]: reading outside files: regular files only, at most a bound.
//! - [`outfile`]: output files written atomically, never over an input.
//! - [`files`]: the SHA-256 of a file, and replacing a file atomically.
//! - [`ondisk`]: the versioned on-disk twins of the types bundles, traces and bisection
//!   states hold, their checks on read, and the golden files that pin their bytes.
//!
//! The CLI (`src/main.rs`, `src/cli/`) sits on top of all of these.

pub mod bench;
pub mod bisect;
pub mod bounded;
pub mod bundle;
pub mod cachedir;
pub mod context;
pub mod corpus_bench;
pub mod exec_bench;
pub mod feedback;
pub mod files;
pub mod fuzzing;
pub mod guest;
pub mod guest_console;
pub mod initramfs;
pub mod interrupt;
pub mod kbuild;
pub mod kernel;
pub mod known;
pub mod ondisk;
pub mod outfile;
pub mod process;
pub mod report;
pub mod reproduce;
pub mod runner;
pub mod runtime;
pub mod session;
pub mod snapshot;
pub mod swapimg;
pub mod trace;
pub mod vm;

/// An error and its causes, once each: `what failed: why: why that`. Library errors name only
/// their own failure and keep the cause as `source()`; this is how to show one whole where
/// it becomes text (a message inside another error, a log line).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// Page size of the guests we boot (x86_64).
pub const PAGE_SIZE: u64 = shmemfuzz_core::program::PAGE_SIZE;
