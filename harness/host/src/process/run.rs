//! Short tool calls run to completion under a time limit ([`output`]), and the end of a
//! child's output for error messages ([`Tail`], [`file_tail`]).

use std::collections::VecDeque;
use std::io::{self, Read};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{Group, Signal, Waited};
use crate::interrupt::Interrupted;

/// The limit of a tool call with no natural bound of its own (`apt-get download` of a kernel
/// source package, `tar -x` of one, `git worktree add` of a kernel tree): generous, so only a
/// hung tool meets it.
pub const TOOL_LIMIT: Duration = Duration::from_secs(30 * 60);
/// How long a tool past its limit gets between SIGTERM and SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_secs(10);
/// How long a SIGKILLed child may take to be reaped before it is left behind.
pub const REAP_TIMEOUT: Duration = Duration::from_secs(10);

/// A tool call that did not run to completion.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("`{program}` is not installed (not found in PATH)")]
    NotFound { program: String },
    #[error("cannot run `{program}`: {source}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("waiting for `{program}` failed: {source}")]
    Wait {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("`{program}` ran longer than {limit:?} and was stopped")]
    TimedOut { program: String, limit: Duration },
    #[error("`{program}` was stopped")]
    Interrupted {
        program: String,
        #[source]
        source: Interrupted,
    },
}

/// Runs `cmd` (stdin null, stdout and stderr captured) as a supervised group
/// ([`super::spawn_supervised`], SIGTERM if the harness dies) and waits for it at most
/// `limit`; past that, it is stopped ([`Group::stop`]) and the call is
/// [`RunError::TimedOut`]; when the harness is interrupted ([`crate::interrupt`]) it is
/// stopped the same way at once ([`RunError::Interrupted`]). A failed exit status is the
/// caller's to judge.
pub fn output(mut cmd: Command, limit: Duration) -> Result<Output, RunError> {
    let deadline = Instant::now() + limit;
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let group = Group::spawn(cmd, Signal::SIGTERM).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => RunError::NotFound {
            program: program.clone(),
        },
        _ => RunError::Spawn {
            program: program.clone(),
            source,
        },
    })?;
    let (stdout, stderr) = group.take_pipes();
    let stdout = stdout.map(|p| thread::spawn(move || read_all(p)));
    let stderr = stderr.map(|p| thread::spawn(move || read_all(p)));
    let waited = group
        .wait_interruptible(deadline)
        .map_err(|source| RunError::Wait {
            program: program.clone(),
            source,
        })?;
    let status = match waited {
        Waited::Exited(status) => status,
        Waited::TimedOut => {
            group.stop(TERM_GRACE, REAP_TIMEOUT);
            return Err(RunError::TimedOut { program, limit });
        }
        Waited::Interrupted(source) => {
            group.stop(TERM_GRACE, REAP_TIMEOUT);
            return Err(RunError::Interrupted { program, source });
        }
    };
    let join = |h: Option<thread::JoinHandle<Vec<u8>>>| {
        h.map(|h| h.join().unwrap_or_default()).unwrap_or_default()
    };
    Ok(Output {
        status,
        stdout: join(stdout),
        stderr: join(stderr),
    })
}

fn read_all(mut r: impl Read) -> Vec<u8> {
    let mut buf = Vec::new();
    let _ = r.read_to_end(&mut buf);
    buf
}

/// The last lines of a child's output, for an error message.
#[derive(Debug)]
pub struct Tail {
    max: usize,
    lines: VecDeque<String>,
}

impl Tail {
    /// Keeps the last `max` lines pushed.
    pub fn new(max: usize) -> Self {
        Tail {
            max,
            lines: VecDeque::with_capacity(max),
        }
    }

    /// The last `max` lines of `text`.
    pub fn of(text: &str, max: usize) -> String {
        let mut t = Tail::new(max);
        text.lines().for_each(|l| t.push(l));
        t.text()
    }

    /// The last `max` lines of the file at `path` (empty if it cannot be read).
    pub fn of_file(path: &Path, max: usize) -> String {
        Self::of(&std::fs::read_to_string(path).unwrap_or_default(), max)
    }

    pub fn push(&mut self, line: impl Into<String>) {
        if self.max == 0 {
            return;
        }
        if self.lines.len() == self.max {
            self.lines.pop_front();
        }
        self.lines.push_back(line.into());
    }

    /// The lines kept, joined by newlines.
    pub fn text(&self) -> String {
        Vec::from(self.lines.clone()).join("\n")
    }
}

/// Last `max` bytes of a text file, lossily decoded, trimmed to whole lines.
pub fn file_tail(path: &Path, max: usize) -> String {
    match std::fs::read(path) {
        Ok(b) => {
            let start = b.len().saturating_sub(max);
            let mut s = String::from_utf8_lossy(&b[start..]).into_owned();
            if start > 0 {
                if let Some(nl) = s.find('\n') {
                    s.drain(..=nl);
                }
            }
            s.trim_end().to_owned()
        }
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_captures_both_streams_and_the_status() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; echo err >&2; exit 3"]);
        let out = output(cmd, Duration::from_secs(30)).expect("runs");
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
        let e = output(
            Command::new("shmemfuzz-no-such-tool"),
            Duration::from_secs(5),
        )
        .expect_err("missing");
        assert!(matches!(e, RunError::NotFound { .. }), "{e}");
    }

    #[test]
    fn output_past_its_limit_is_stopped() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "sleep 1000 & sleep 1000"]);
        let started = Instant::now();
        let e = output(cmd, Duration::from_millis(300)).expect_err("times out");
        assert!(matches!(e, RunError::TimedOut { .. }), "{e}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "stopped by SIGTERM"
        );
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let t = Tail::of(&text, 30);
        assert!(t.starts_with("line 70\n") && t.ends_with("line 99"), "{t}");
        assert_eq!(Tail::of("a\nb", 0), "");
    }
}
