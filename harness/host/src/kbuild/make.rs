//! Running kbuild's `make`, for kernel trees ([`Make`]: out of tree, reproducible-build stamps
//! pinned) and for external modules ([`super::modbuild`]): one command environment (the
//! caller's make flags dropped), output streamed line by line to the caller and appended to
//! a log, and a deadline after which make's process group is stopped (SIGTERM, which GNU
//! make passes on to its jobs; SIGKILL 10 s later).
//!
//! make is spawned supervised ([`crate::process`]): it gets SIGTERM if the harness dies, so a
//! harness killed mid-build does not leave three compilers running on a shared machine.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::tools::{self, BUILD_TOOLS};
use super::{KbuildError, KbuildEvent};
use crate::process::{Group, Signal, Tail, Waited};
use crate::session::INTERRUPT_POLL;

/// The build log's name inside the build directory.
pub(crate) const BUILD_LOG: &str = "build.log";
/// How many of the last output lines a failure shows.
const TAIL_LINES: usize = 40;
/// How long make gets between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(10);
/// How long a SIGKILLed make may take to be reaped.
const REAP_TIMEOUT: Duration = Duration::from_secs(10);

/// The values that otherwise make two builds of the same source differ (`uname -v`, the
/// `.version` counter, the builder's user and host): kbuild's `KBUILD_BUILD_*` variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildStamp {
    /// `KBUILD_BUILD_VERSION` (the `#1` in `uname -v`; unpinned it counts links).
    pub version: String,
    /// `KBUILD_BUILD_TIMESTAMP`, any date `date -d` reads.
    pub timestamp: String,
    /// `KBUILD_BUILD_USER`.
    pub user: String,
    /// `KBUILD_BUILD_HOST`.
    pub host: String,
}

impl Default for BuildStamp {
    fn default() -> Self {
        BuildStamp {
            version: "1".into(),
            timestamp: super::source::FALLBACK_TIMESTAMP.into(),
            user: "shmemfuzz".into(),
            host: "shmemfuzz".into(),
        }
    }
}

impl BuildStamp {
    /// The stamp as `(variable, value)` pairs.
    pub(crate) fn env(&self) -> [(&'static str, &str); 4] {
        [
            ("KBUILD_BUILD_VERSION", &self.version),
            ("KBUILD_BUILD_TIMESTAMP", &self.timestamp),
            ("KBUILD_BUILD_USER", &self.user),
            ("KBUILD_BUILD_HOST", &self.host),
        ]
    }
}

/// `make --no-print-directory -C <src> O=<build dir> ARCH=x86_64 ...` with a shared deadline and log.
#[derive(Debug)]
pub(crate) struct Make<'a> {
    pub src: &'a Path,
    pub build_dir: &'a Path,
    pub stamp: &'a BuildStamp,
    pub deadline: Instant,
    /// The limit the deadline came from, for the error message.
    pub limit: Duration,
    /// `CC=` for make, if not the default compiler.
    pub cc: Option<&'a str>,
}

impl Make<'_> {
    pub(crate) fn log_path(&self) -> PathBuf {
        self.build_dir.join(BUILD_LOG)
    }

    fn command(&self, args: &[String]) -> Result<(Command, String), KbuildError> {
        let mut all = vec![
            "--no-print-directory".to_string(),
            "-C".to_string(),
            self.src.display().to_string(),
            format!("O={}", self.build_dir.display()),
            "ARCH=x86_64".to_string(),
        ];
        if let Some(cc) = self.cc {
            all.push(format!("CC={cc}"));
        }
        all.extend(args.iter().cloned());
        let mut cmd = make_command()?;
        cmd.args(&all).envs(self.stamp.env());
        Ok((cmd, format!("make {}", all.join(" "))))
    }

    /// Runs make with `args`, streaming each output line to `progress` and the log.
    pub(crate) fn run(
        &self,
        args: &[String],
        progress: &dyn Fn(KbuildEvent),
    ) -> Result<(), KbuildError> {
        let (cmd, shown) = self.command(args)?;
        progress(KbuildEvent::Make {
            targets: args.join(" "),
        });
        run_logged(
            cmd,
            &shown,
            &self.log_path(),
            self.deadline,
            self.limit,
            progress,
        )
    }
}

/// `make` with the environment every kbuild run gets: `LC_ALL=C`, no input, and none of
/// the caller's make flags (a caller running under make, or with V=1 set, must not change
/// what kbuild does).
pub(crate) fn make_command() -> Result<Command, KbuildError> {
    let mut cmd = Command::new(tools::find(BUILD_TOOLS[0])?);
    cmd.env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in [
        "MAKEFLAGS",
        "MFLAGS",
        "MAKELEVEL",
        "MAKEOVERRIDES",
        "KBUILD_VERBOSE",
    ] {
        cmd.env_remove(var);
    }
    Ok(cmd)
}

/// Runs a [`make_command`] (`shown` is how it reads in the log and errors) until `deadline`
/// (which `limit` set, for the message), appending its output to `log_path` and passing
/// each line to `progress`. A failure carries the last lines; a missing development header
/// named in the log is [`KbuildError::HeaderMissing`].
pub(crate) fn run_logged(
    cmd: Command,
    shown: &str,
    log_path: &Path,
    deadline: Instant,
    limit: Duration,
    progress: &dyn Fn(KbuildEvent),
) -> Result<(), KbuildError> {
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .map_err(|e| KbuildError::io(format!("cannot open {}", log_path.display()), e))?;
    let _ = writeln!(log, "$ {shown}");
    let group = Group::spawn(cmd, Signal::SIGTERM)
        .map_err(|e| KbuildError::io(format!("cannot run `{shown}`"), e))?;
    let (tx, rx) = mpsc::channel::<String>();
    let (stdout, stderr) = group.take_pipes();
    let pipes: [Option<Box<dyn Read + Send>>; 2] = [
        stdout.map(|p| Box::new(p) as _),
        stderr.map(|p| Box::new(p) as _),
    ];
    for pipe in pipes.into_iter().flatten() {
        let tx = tx.clone();
        std::thread::spawn(move || forward_lines(pipe, &tx));
    }
    drop(tx);
    let timeout = |log: &File| {
        stop(&group, log);
        KbuildError::Timeout {
            command: shown.to_string(),
            secs: limit.as_secs(),
            log: log_path.to_path_buf(),
        }
    };
    let interrupted = |log: &File, source| {
        group.stop(TERM_GRACE, REAP_TIMEOUT);
        let _ = writeln!(&*log, "# stopped: {source}");
        KbuildError::Interrupted {
            command: shown.to_string(),
            log: log_path.to_path_buf(),
            source,
        }
    };
    let mut tail = Tail::new(TAIL_LINES);
    loop {
        if let Some(i) = crate::interrupt::requested() {
            return Err(interrupted(&log, i));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left.min(INTERRUPT_POLL)) {
            Ok(line) => {
                let _ = writeln!(log, "{line}");
                tail.push(line.clone());
                progress(KbuildEvent::Output { line });
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) if left.is_zero() => return Err(timeout(&log)),
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
    let status = match group.wait_interruptible(deadline) {
        Ok(Waited::Exited(status)) => status,
        Ok(Waited::TimedOut) => return Err(timeout(&log)),
        Ok(Waited::Interrupted(i)) => return Err(interrupted(&log, i)),
        Err(e) => return Err(KbuildError::io(format!("waiting for `{shown}`"), e)),
    };
    let _ = writeln!(log, "# exit: {status}");
    if status.success() {
        return Ok(());
    }
    let full_log = std::fs::read_to_string(log_path).unwrap_or_default();
    if let Some((header, package)) = tools::missing_header(&full_log) {
        return Err(KbuildError::HeaderMissing {
            header,
            package,
            log: log_path.to_path_buf(),
        });
    }
    Err(KbuildError::MakeFailed {
        command: shown.to_string(),
        status: status.to_string(),
        log: log_path.to_path_buf(),
        tail: tail.text(),
    })
}

/// Stops a make that ran past the deadline (its whole process group), noting it in the log.
fn stop(group: &Group, mut log: &File) {
    group.stop(TERM_GRACE, REAP_TIMEOUT);
    let _ = writeln!(log, "# stopped: past the build's deadline");
}

/// Sends each line of `pipe` (lossily decoded) until EOF or until nobody listens.
fn forward_lines(pipe: Box<dyn Read + Send>, tx: &mpsc::Sender<String>) {
    let mut r = BufReader::new(pipe);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf).trim_end().to_string();
                if tx.send(line).is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_pins_all_four_variables() {
        let stamp = BuildStamp::default();
        let env = stamp.env();
        let names: Vec<&str> = env.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            names,
            [
                "KBUILD_BUILD_VERSION",
                "KBUILD_BUILD_TIMESTAMP",
                "KBUILD_BUILD_USER",
                "KBUILD_BUILD_HOST"
            ]
        );
        assert!(env.iter().all(|(_, v)| !v.is_empty()));
    }

    /// A fake "kernel tree" whose Makefile is enough to exercise streaming, failures and the
    /// deadline without a compiler.
    fn fake_tree(makefile: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::write(d.path().join("Makefile"), makefile).expect("write");
        std::fs::create_dir(d.path().join("out")).expect("mkdir");
        d
    }

    fn make<'a>(d: &'a Path, stamp: &'a BuildStamp, limit: Duration) -> Make<'a> {
        Make {
            src: d,
            build_dir: Box::leak(d.join("out").into_boxed_path()),
            stamp,
            deadline: Instant::now() + limit,
            limit,
            cc: None,
        }
    }

    #[test]
    fn streams_output_and_reports_failures_with_the_tail() {
        tools::require(BUILD_TOOLS[0]);
        let d = fake_tree(
            "ok:\n\t@echo \"stamp=$$KBUILD_BUILD_USER arch=$(ARCH) o=$(notdir $(O))\"\n\
             bad:\n\t@echo compiling; echo 'mm/shmem.c:1: error: oops' >&2; exit 2\n",
        );
        let stamp = BuildStamp::default();
        let m = make(d.path(), &stamp, Duration::from_secs(60));
        let lines = std::cell::RefCell::new(Vec::new());
        let record = |e: KbuildEvent| {
            if let KbuildEvent::Output { line } = e {
                lines.borrow_mut().push(line);
            }
        };
        m.run(&["ok".into()], &record).expect("ok target");
        assert_eq!(
            lines.borrow().as_slice(),
            ["stamp=shmemfuzz arch=x86_64 o=out"]
        );
        let err = m.run(&["bad".into()], &record).expect_err("bad target");
        let KbuildError::MakeFailed { tail, log, .. } = &err else {
            panic!("{err}");
        };
        assert!(tail.contains("error: oops"), "{tail}");
        let text = std::fs::read_to_string(log).expect("log");
        assert!(
            text.contains("$ make --no-print-directory -C") && text.contains("compiling"),
            "{text}"
        );
    }

    #[test]
    fn a_make_past_the_deadline_is_stopped() {
        tools::require(BUILD_TOOLS[0]);
        let d = fake_tree("slow:\n\t@echo start; sleep 30\n");
        let stamp = BuildStamp::default();
        let m = make(d.path(), &stamp, Duration::from_millis(700));
        let started = Instant::now();
        let err = m.run(&["slow".into()], &|_| {}).expect_err("times out");
        assert!(matches!(err, KbuildError::Timeout { .. }), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "stopped promptly"
        );
    }
}
