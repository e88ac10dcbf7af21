//! shmemfuzz host library: everything that runs on the host side of the VM boundary. Its
//! folders follow the pipeline data flows through, one family each:
//!
//! 1. [`kernels`]: where kernels come from. The catalog and Debian's prebuilt kernels
//!    ([`kernels::kernel`]), kernels built from source and the mock driver built per kernel
//!    ([`kernels::kbuild`], [`kernels::kbuild::modbuild`]), where the tree and the cache are
//!    ([`kernels::context`], [`kernels::cachedir`]), and the data files (catalog, fragments,
//!    patches, known findings, the mock driver's sources, examples) from a checkout or the
//!    copy built into the binary ([`kernels::data`]).
//! 2. [`guest`]: what goes into the guest and the machine it runs in. The embedded agent and
//!    the initramfs ([`guest::initramfs`]), swap images ([`guest::swapimg`]), the QEMU
//!    command line, accelerator probe and bounded VM lifecycle ([`guest::vm`]).
//! 3. [`session`]: a booted guest and its runs. Running a program and judging it (its
//!    decisions in a pure, table-tested state machine), the console ([`session::console`]),
//!    snapshots ([`session::snapshot`]), many runs on one kernel ([`session::runner`]), the
//!    JSON trace ([`session::trace`]).
//! 4. [`fuzzing`]: the `shmem_ops` target and `shmemfuzz fuzz` campaigns, coverage feedback
//!    ([`fuzzing::feedback`]), known findings ([`fuzzing::known`]), the campaign's HTML page
//!    ([`fuzzing::report`]).
//! 5. [`findings`]: what happens to a finding: the record/replay bundle
//!    ([`findings::bundle`]), reproduction counts ([`findings::reproduce`]), bisection
//!    ([`findings::bisect`]).
//! 6. [`bench`](mod@bench): boot and recovery, executions per second beside a C floor
//!    ([`bench::exec`]), a fixed corpus through one worker ([`bench::corpus`]).
//!
//! Under all of them: [`files`] (hashing, atomic replacement, bounded reads of outside files,
//! output files, the versioned on-disk formats in [`files::ondisk`]) and [`os`] (child
//! processes in [`os::process`], Ctrl-C and SIGTERM in [`os::interrupt`]).
//!
//! The CLI (`src/main.rs`, `src/cli/`) sits on top of all of these.

pub mod bench;
pub mod files;
pub mod findings;
pub mod fuzzing;
pub mod guest;
pub mod kernels;
pub mod os;
pub mod session;

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
