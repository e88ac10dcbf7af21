//! Ctrl-C and SIGTERM: a process-wide "interrupted" flag that the long loops and the
//! session's waits look at, so an interrupted command unwinds through its normal destructors
//! (QEMU killed with its process group, work directories removed) instead of dying in place.
//!
//! - [`install`] (the binary calls it first thing): the first SIGINT or SIGTERM only records
//!   itself; a **second** one ends the process at once with 128 + its number (no cleanup:
//!   every supervised child still dies through its death signal, see [`crate::process`], but
//!   work directories in `/tmp` stay).
//! - [`requested`] / [`check`]: whether (and by which signal) the process was interrupted.
//!   Checked between the steps of `run --repeat`, `replay`, `repro`, `minimize`, `bisect` and
//!   the campaign supervisor, and every ~100 ms inside the session's and the child processes'
//!   bounded waits.
//! - [`Interrupted`]: the error those return; the CLI turns it into exit status 130 (SIGINT)
//!   or 143 (SIGTERM).
//!
//! # Why `signal-hook`
//! A hand-written `sigaction` handler must restrict itself to async-signal-safe work and get
//! chaining, `SA_RESTART` and re-registration right; `signal-hook` is the crate the Rust
//! ecosystem uses for this (tokio, crossterm and `ctrlc` itself build on its registry), and
//! its `flag` module is exactly the two pieces needed: set an atomic, and a *conditional
//! shutdown* that exits on a signal once that atomic is set (its documented "double Ctrl-C"
//! use). `ctrlc` with its `termination` feature would cover SIGINT and SIGTERM alike but runs
//! a user closure on a thread of its own and cannot tell which signal came, which the exit
//! status needs. Version 0.3 is the line the ecosystem is on; nothing here needs 0.4.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use nix::sys::signal::Signal;

/// The signal that interrupted the process (0: none), and whether one came (the condition of
/// the immediate exit on the second one).
struct Flags {
    signal: Arc<AtomicUsize>,
    armed: Arc<AtomicBool>,
}

fn flags() -> &'static Flags {
    static FLAGS: OnceLock<Flags> = OnceLock::new();
    FLAGS.get_or_init(|| Flags {
        signal: Arc::new(AtomicUsize::new(0)),
        armed: Arc::new(AtomicBool::new(false)),
    })
}

/// The process was interrupted by `signal`: whatever was in progress was abandoned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("interrupted by {signal} (a second Ctrl-C ends at once, without cleaning up)")]
pub struct Interrupted {
    pub signal: Signal,
}

impl Interrupted {
    /// The exit status a shell expects of a command ended by the signal: 128 + its number
    /// (130 for SIGINT, 143 for SIGTERM).
    pub fn exit_code(self) -> u8 {
        exit_code(self.signal)
    }
}

/// 128 + the signal's number.
pub fn exit_code(signal: Signal) -> u8 {
    (128 + signal as i32).clamp(0, 255) as u8
}

/// Why the handlers could not be installed.
#[derive(Debug, thiserror::Error)]
#[error("installing the {signal} handler")]
pub struct InstallError {
    signal: Signal,
    #[source]
    source: std::io::Error,
}

/// Installs the SIGINT and SIGTERM handlers (once per process; again is harmless).
pub fn install() -> Result<(), InstallError> {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    if INSTALLED.get().is_some() {
        return Ok(());
    }
    let f = flags();
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        let n = signal as i32;
        let err = |source| InstallError { signal, source };
        // Order matters (signal-hook runs actions in registration order): the shutdown looks
        // at the flag before this very signal sets it, so only a second signal exits.
        signal_hook::flag::register_conditional_shutdown(
            n,
            i32::from(exit_code(signal)),
            Arc::clone(&f.armed),
        )
        .map_err(err)?;
        signal_hook::flag::register_usize(n, Arc::clone(&f.signal), n as usize).map_err(err)?;
        signal_hook::flag::register(n, Arc::clone(&f.armed)).map_err(err)?;
    }
    let _ = INSTALLED.set(());
    Ok(())
}

/// Records an interruption as if `signal` had arrived (for callers that learn of one another
/// way, and for tests).
pub fn request(signal: Signal) {
    let f = flags();
    f.signal.store(signal as usize, Ordering::SeqCst);
    f.armed.store(true, Ordering::SeqCst);
}

/// The interruption, if one came.
pub fn requested() -> Option<Interrupted> {
    let n = flags().signal.load(Ordering::SeqCst);
    if n == 0 {
        return None;
    }
    let signal = Signal::try_from(n as i32).unwrap_or(Signal::SIGINT);
    Some(Interrupted { signal })
}

/// `Err` once the process was interrupted: for `?` between the steps of a long loop.
pub fn check() -> Result<(), Interrupted> {
    requested().map_or(Ok(()), Err)
}

/// Whether `e` or any of its causes is an [`Interrupted`].
pub fn is_interruption(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if c.is::<Interrupted>() {
            return true;
        }
        cur = c.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_128_plus_the_signal() {
        assert_eq!(exit_code(Signal::SIGINT), 130);
        assert_eq!(exit_code(Signal::SIGTERM), 143);
        let i = Interrupted {
            signal: Signal::SIGTERM,
        };
        assert_eq!(i.exit_code(), 143);
        assert!(i.to_string().contains("SIGTERM"), "{i}");
    }

    #[test]
    fn an_interruption_is_found_in_a_cause_chain() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] Interrupted);
        let e = Outer(Interrupted {
            signal: Signal::SIGINT,
        });
        assert!(is_interruption(&e));
        let plain = std::io::Error::other("no");
        assert!(!is_interruption(&plain));
    }

    const HELPER_ENV: &str = "SHMEMFUZZ_INTERRUPT_HELPER";

    /// Not a test by itself: the two tests below run it (`--ignored --exact`) with
    /// [`HELPER_ENV`] naming a directory. It installs the handlers, says `ready`, waits
    /// (bounded) for an interruption, writes the signal's name to `seen`, and then either
    /// returns (exit 0: the first signal let it finish) or, with `hold` present, waits on so
    /// that a second signal can end it.
    #[test]
    #[ignore = "a helper process of the signal tests, not a test"]
    fn signal_helper() {
        let dir = std::path::PathBuf::from(
            std::env::var_os(HELPER_ENV).expect("run by the signal tests, with the env set"),
        );
        install().expect("install");
        std::fs::write(dir.join("ready"), "").expect("ready");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let seen = loop {
            if let Some(i) = requested() {
                break i;
            }
            assert!(std::time::Instant::now() < deadline, "no signal came");
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        std::fs::write(dir.join("seen"), seen.signal.as_str()).expect("seen");
        if dir.join("hold").exists() {
            std::thread::sleep(std::time::Duration::from_secs(30));
        }
    }

    /// Runs [`signal_helper`], sends it `signals` (each after the previous was seen), and
    /// returns its exit status and what it saw.
    fn run_helper(signals: &[Signal], hold: bool) -> (std::process::ExitStatus, String) {
        use std::time::{Duration, Instant};
        let dir = tempfile::tempdir().expect("tempdir");
        if hold {
            std::fs::write(dir.path().join("hold"), "").expect("hold");
        }
        let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args(["--exact", "interrupt::tests::signal_helper", "--ignored"])
            .env(HELPER_ENV, dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn helper");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let wait_for = |name: &str| {
            let deadline = Instant::now() + Duration::from_secs(20);
            while !dir.path().join(name).exists() {
                if Instant::now() >= deadline {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            true
        };
        let mut ok = wait_for("ready");
        for (i, s) in signals.iter().enumerate() {
            if !ok {
                break;
            }
            nix::sys::signal::kill(pid, *s).expect("kill");
            if i == 0 {
                ok = wait_for("seen");
            }
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(st) = child.try_wait().expect("try_wait") {
                break st;
            }
            if Instant::now() >= deadline || !ok {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the helper did not end in time (ready and seen: {ok})");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let seen = std::fs::read_to_string(dir.path().join("seen")).unwrap_or_default();
        (status, seen)
    }

    #[test]
    fn a_first_signal_is_recorded_and_lets_the_process_finish() {
        let (status, seen) = run_helper(&[Signal::SIGINT], false);
        assert_eq!(seen, "SIGINT");
        assert!(status.success(), "{status}");
    }

    #[test]
    fn a_second_signal_exits_at_once_with_128_plus_its_number() {
        use std::os::unix::process::ExitStatusExt;
        let (status, seen) = run_helper(&[Signal::SIGTERM, Signal::SIGTERM], true);
        assert_eq!(seen, "SIGTERM");
        assert_eq!(
            status.code(),
            Some(143),
            "{status} (signal {:?})",
            status.signal()
        );
    }
}
