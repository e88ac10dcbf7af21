//! The host operating system as the harness uses it.
//!
//! - [`process`]: child processes, one way: spawned supervised (own group, death signal),
//!   waited for with a deadline, stopped TERM → KILL; the one `PATH` lookup.
//! - [`interrupt`]: Ctrl-C and SIGTERM as a flag the long loops and waits look at, so an
//!   interrupted command still ends its VMs and removes its work directories.

pub mod interrupt;
pub mod process;

/// The libtest name of test `function` in the module at `module_path` (`module_path!()`, which
/// starts with the crate's name; test names do not), for tests that re-run their own binary
/// with `--exact` on a helper: the name follows the module when files move.
#[cfg(test)]
pub(crate) fn test_name(module_path: &str, function: &str) -> String {
    let in_crate = module_path.split_once("::").map_or("", |(_, rest)| rest);
    format!("{in_crate}::{function}")
}
