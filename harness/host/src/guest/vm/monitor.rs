//! A small QMP client: connect, negotiate, run one QMP command (or one HMP command through
//! `human-monitor-command`), disconnect. Every step is bounded by one deadline.

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::error::VmError;

/// Runs HMP command `cmd` over the QMP socket at `path` and returns its text output.
///
/// `alive` is asked between connection attempts; it returns an error once QEMU is gone, so a
/// dead VM fails at once instead of at the deadline.
pub(crate) fn hmp_command(
    path: &Path,
    cmd: &str,
    timeout: Duration,
    alive: &dyn Fn() -> Result<(), VmError>,
) -> Result<String, VmError> {
    let arguments = json!({"command-line": cmd});
    match qmp_execute(path, "human-monitor-command", arguments, timeout, alive)? {
        Value::String(s) => Ok(s),
        other => Err(VmError::Monitor(format!(
            "human-monitor-command returned {other}"
        ))),
    }
}

/// Runs QMP command `execute` with `arguments` over the QMP socket at `path` and returns its
/// `return` value; one connection per command, every step bounded by `timeout`.
pub(crate) fn qmp_execute(
    path: &Path,
    execute: &str,
    arguments: Value,
    timeout: Duration,
    alive: &dyn Fn() -> Result<(), VmError>,
) -> Result<Value, VmError> {
    let deadline = Instant::now() + timeout;
    let timed_out = |what: &str| VmError::Timeout {
        what: format!("{what} (QMP command `{execute}`)"),
        after: timeout,
    };
    let stream = loop {
        match UnixStream::connect(path) {
            Ok(s) => break s,
            // Not listening yet (QEMU still starting) or busy with another client.
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
                alive()?;
                if Instant::now() >= deadline {
                    return Err(timed_out("QMP socket"));
                }
                thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                return Err(VmError::Io {
                    context: format!("connecting to QMP socket {}", path.display()),
                    source: e,
                })
            }
        }
    };
    let mut conn = Conn {
        reader: BufReader::new(stream),
        deadline,
    };
    let greeting = conn.read_message().map_err(|e| e.or_timeout(&timed_out))?;
    if greeting.get("QMP").is_none() {
        return Err(VmError::Monitor(format!(
            "unexpected QMP greeting {greeting}"
        )));
    }
    conn.execute(&json!({"execute": "qmp_capabilities"}))
        .map_err(|e| e.or_timeout(&timed_out))?;
    conn.execute(&json!({"execute": execute, "arguments": arguments}))
        .map_err(|e| e.or_timeout(&timed_out))
}

enum ConnError {
    Timeout,
    Other(VmError),
}

impl ConnError {
    fn or_timeout(self, f: &dyn Fn(&str) -> VmError) -> VmError {
        match self {
            ConnError::Timeout => f("QMP reply"),
            ConnError::Other(e) => e,
        }
    }
}

struct Conn {
    reader: BufReader<UnixStream>,
    deadline: Instant,
}

impl Conn {
    fn remaining(&self) -> Result<Duration, ConnError> {
        let r = self.deadline.saturating_duration_since(Instant::now());
        if r.is_zero() {
            Err(ConnError::Timeout)
        } else {
            Ok(r)
        }
    }

    /// Reads one JSON message (QMP frames each with a newline).
    fn read_message(&mut self) -> Result<Value, ConnError> {
        let mut line = String::new();
        loop {
            let r = self.remaining()?;
            self.reader
                .get_ref()
                .set_read_timeout(Some(r))
                .map_err(|e| ConnError::Other(VmError::io("QMP socket")(e)))?;
            match self.reader.read_line(&mut line) {
                Ok(0) => {
                    return Err(ConnError::Other(VmError::Monitor(
                        "QEMU closed the QMP connection".into(),
                    )))
                }
                Ok(_) if line.ends_with('\n') => break,
                Ok(_) => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(ConnError::Timeout)
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(ConnError::Other(VmError::io("reading QMP")(e))),
            }
        }
        serde_json::from_str(line.trim()).map_err(|e| {
            ConnError::Other(VmError::Monitor(format!(
                "unparsable QMP message {:?}: {e}",
                line.trim()
            )))
        })
    }

    /// Sends a command and returns its `return` value, skipping asynchronous events.
    fn execute(&mut self, cmd: &Value) -> Result<Value, ConnError> {
        let r = self.remaining()?;
        let s = self.reader.get_mut();
        s.set_write_timeout(Some(r))
            .map_err(|e| ConnError::Other(VmError::io("QMP socket")(e)))?;
        let mut bytes = cmd.to_string().into_bytes();
        bytes.push(b'\n');
        s.write_all(&bytes).map_err(|e| match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => ConnError::Timeout,
            _ => ConnError::Other(VmError::io("writing QMP")(e)),
        })?;
        loop {
            let mut msg = self.read_message()?;
            if let Some(v) = msg.get_mut("return") {
                return Ok(v.take());
            }
            if let Some(e) = msg.get("error") {
                return Err(ConnError::Other(VmError::Monitor(format!(
                    "{} failed: {e}",
                    cmd.get("execute").unwrap_or(&Value::Null)
                ))));
            }
            // {"event": ...}: not ours, keep reading.
        }
    }
}
