//! shmemfuzz host library: everything that runs on the host side of the VM boundary.
//!
//! - [`context`]: where the source tree, catalog and cache are; kernel and accelerator choice.
//! - [`kbuild`]: self-built kernels (Debian's linux-source or any tree, patched, configured
//!   from kernels/configs/), and the mock driver built per kernel ([`kbuild::modbuild`]).
//! - [`kernel`]: the kernel catalog and fetching Debian's prebuilt kernels.
//! - [`guest`]: what goes into the guest: the embedded agent, the initramfs, swap images.
//! - [`initramfs`]: the newc cpio writer.
//! - [`swapimg`]: swap device images.
//! - [`process`]: child processes, one way: spawned supervised (own group, death signal),
//!   waited for with a deadline, stopped TERM → KILL; the one `PATH` lookup.
//! - [`vm`]: the QEMU command line, accelerator probe and the VM's bounded lifecycle.
//! - [`runner`]: many runs on one kernel, rebooting the guest after one killed it.
//! - [`reproduce`]: replaying a program n times and counting hits of a signature.
//! - [`bisect`]: finding the first bad commit or Debian version for a reproducer.
//! - [`session`]: a booted guest; running a program and judging it.
//! - [`snapshot`]: a ready guest's saved state, restored instead of a cold boot.
//! - [`trace`]: the JSON trace of one execution.
//! - [`bundle`]: the record/replay bundle: program, records, trace, console, metadata.
//! - [`bench`]: the boot benchmark; [`exec_bench`]: executions per second beside a C floor.
//! - [`fuzzing`]: the `shmem_ops` fuzz target's logic and `shmemfuzz fuzz` campaigns.
//! - [`known`]: known findings (`--known FILE`): counted and shown, not failed on.
//! - [`feedback`]: kernel coverage (kprobes, KCOV in mm/, page replacements) as libFuzzer
//!   counters.

pub mod bench;
pub mod bisect;
pub mod bundle;
mod cachedir;
pub mod context;
pub mod exec_bench;
pub mod feedback;
pub mod fuzzing;
pub mod guest;
pub mod guest_console;
pub mod initramfs;
pub mod kbuild;
pub mod kernel;
pub mod known;
pub mod process;
pub mod reproduce;
pub mod runner;
pub mod session;
pub mod snapshot;
pub mod swapimg;
pub mod trace;
pub mod vm;

/// Page size of the guests we boot (x86_64).
pub const PAGE_SIZE: u64 = shmemfuzz_core::program::PAGE_SIZE;
