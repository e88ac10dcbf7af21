//! Lockdep and RCU-debugging reports, parsed by their structure.
//!
//! A lockdep report is a headline (`WARNING: possible circular locking dependency detected`,
//! since 4.15; `[ INFO: possible circular locking dependency detected ]` or `[ BUG: bad
//! unlock balance detected! ]` before; `INFO: trying to register non-static key.`), then the
//! locks involved, each on a lock line (`ffff888106a71958 (&q->elevator_lock){+.+.}-{4:4},
//! at: fake+0x49a/0x1a10`; before 4.15 ` (&pipe->mutex/1){+.+.}, at: [<ffffffff81a1c4a5>]
//! pipe_lock+0x56/0x70`), the dependency chain with one stack per link (`-> #1 (...):`), the
//! locks held, and finally the stack of the task that triggered it after `stack backtrace:`
//! (or, for the non-static key, after `Call Trace:`). Lock lines are never stack frames, and
//! only the final stack names the report.
//!
//! The signature is `WARNING:<headline>:<place>`, with the headline the same across kernel
//! versions (brackets, `INFO:`/`BUG:`/`WARNING:` and final `!`/`.` dropped, `comm/pid still
//! has locks held` without the task). For a circular or recursive dependency the place is
//! the two locks (`&q->elevator_lock:&q->q_usage_counter(io)`, lock class numbers `#55`
//! dropped): the lock being acquired and the lock held; otherwise it is the function the
//! title names: where the lock was being acquired or released (the `at:` of the first lock
//! line), else the first meaningful frame of the final stack.

use super::frames::{is_generic, parse_frame, symbol_func};

/// Headlines of lockdep/RCU reports as they appear in any kernel version, in canonical form.
const HEADLINES: &[&str] = &[
    "possible circular locking dependency detected",
    "possible recursive locking detected",
    "inconsistent lock state",
    "possible irq lock inversion dependency detected",
    "HARDIRQ-safe -> HARDIRQ-unsafe lock order detected",
    "SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected",
    "HARDIRQ-READ-safe -> HARDIRQ-unsafe lock order detected",
    "SOFTIRQ-READ-safe -> SOFTIRQ-unsafe lock order detected",
    "suspicious RCU usage",
    "bad unlock balance detected",
    "bad contention detected",
    "held lock freed",
    "Nested lock was not taken",
    "lock held when returning to user space",
    "trying to register non-static key",
    "Invalid wait context",
    "lock held at task exit time",
];

/// The canonical headline of a lockdep report's first line (`WARNING: ...`, `[ INFO: ... ]`,
/// `[ BUG: ... ]`, `INFO: ...`), or `None` if the line is not one.
pub(crate) fn headline(first: &str) -> Option<String> {
    let t = first.trim();
    let t = t
        .strip_prefix("[ ")
        .and_then(|r| r.strip_suffix(" ]"))
        .unwrap_or(t);
    let t = ["WARNING: ", "INFO: ", "BUG: "]
        .iter()
        .find_map(|p| t.strip_prefix(p))?;
    let t = t.trim_end_matches(['!', '.', ' ']);
    if let Some(h) = HEADLINES.iter().find(|h| t.starts_with(**h)) {
        return Some((*h).to_string());
    }
    if t.ends_with("still has locks held") {
        return Some("still has locks held".to_string());
    }
    None
}

/// Does a `[ ... ]` or `INFO:` line start a lockdep report? (`WARNING:` headlines are
/// recognised by the classifier itself.)
pub(crate) fn is_old_headline(t: &str) -> bool {
    (t.starts_with("[ INFO: ") || t.starts_with("[ BUG: ") || t.starts_with("INFO: "))
        && headline(t).is_some()
}

/// The parts of a lock line: the lock's name and the function of its `at:`.
fn lock_line(t: &str) -> Option<(String, Option<&str>)> {
    let t = t.trim();
    // "#0: ffff... (name){...}" (locks held) also counts.
    let t = match t.strip_prefix('#') {
        Some(r) => r.split_once(':').map(|(_, r)| r.trim_start())?,
        None => t,
    };
    // The lock's address (none before 4.15).
    let t = match t.split_once(' ') {
        Some((addr, r)) if addr.len() >= 8 && addr.bytes().all(|b| b.is_ascii_hexdigit()) => {
            r.trim_start()
        }
        _ => t,
    };
    let inner = t.strip_prefix('(')?;
    let mut depth = 1;
    let mut end = None;
    for (i, c) in inner.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    end = Some(i);
                    break;
                }
            }
            _ => {}
        }
    }
    let end = end?;
    let after = &inner[end + 1..];
    if !after.starts_with('{') && !after.starts_with(',') {
        return None;
    }
    let name = lock_name(&inner[..end]);
    let func = after.split_once("at: ").and_then(|(_, r)| at_func(r));
    Some((name, func))
}

/// A lock's name without the class numbers lockdep adds per instance (`#55`).
fn lock_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '#' && chars.peek().is_some_and(char::is_ascii_digit) {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// The function after `at: ` (`func+0x1/0x2`, `[<ffffffff81a1c4a5>] func+0x56/0x70`, or
/// `lock_sock include/net/sock.h:1462 [inline]`).
fn at_func(r: &str) -> Option<&str> {
    if let Some((f, _)) = parse_frame(r) {
        return Some(f);
    }
    let mut r = r.trim_start();
    while let Some(rest) = r.strip_prefix("[<") {
        r = rest.split_once(">]")?.1.trim_start();
    }
    let word = r.split_whitespace().next()?;
    symbol_func(word).or_else(|| {
        (word.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') && !word.is_empty())
            .then_some(word)
    })
}

/// What a lockdep report says, read from its lines (the headline first).
#[derive(Debug, Default)]
pub(crate) struct Lockdep<'a> {
    /// The canonical headline.
    pub headline: String,
    /// The lock being acquired and the lock held (circular and recursive reports).
    pub acquiring: Option<String>,
    pub held: Option<String>,
    /// The function where the first lock of the report was acquired or released.
    pub site: Option<&'a str>,
    /// The final stack (after `stack backtrace:` / `Call Trace:`), reliable frames only.
    pub stack: Vec<&'a str>,
}

/// Read a lockdep report's structure.
pub(crate) fn analyze(lines: &[String]) -> Option<Lockdep<'_>> {
    let mut l = Lockdep {
        headline: headline(lines.first()?)?,
        ..Lockdep::default()
    };
    #[derive(PartialEq)]
    enum Want {
        Nothing,
        Acquiring,
        Held,
        ReleaseSite,
    }
    let mut want = Want::Nothing;
    let mut in_stack = false;
    let mut chain = false;
    for line in lines.iter().skip(1) {
        let t = line.trim();
        if t == "stack backtrace:" || t.starts_with("Call Trace") {
            in_stack = true;
            continue;
        }
        if in_stack {
            if let Some((f, true)) = parse_frame(t) {
                l.stack.push(f);
            }
            continue;
        }
        if t.starts_with("the existing dependency chain") || t.starts_with("-> #") {
            chain = true;
        }
        if t.ends_with("is trying to acquire lock:") {
            want = Want::Acquiring;
            continue;
        }
        if t.starts_with("but task is already holding lock") {
            want = Want::Held;
            continue;
        }
        if t.contains("is trying to release lock") {
            // "syz/123 is trying to release lock (&lock) at:" then the site on its own line.
            want = Want::ReleaseSite;
            continue;
        }
        if chain {
            continue;
        }
        match want {
            Want::ReleaseSite => {
                if let Some(f) = at_func(t) {
                    l.site.get_or_insert(f);
                    want = Want::Nothing;
                }
            }
            Want::Acquiring | Want::Held => {
                if let Some((name, func)) = lock_line(t) {
                    if want == Want::Acquiring {
                        l.acquiring = Some(name);
                        if let Some(f) = func {
                            l.site.get_or_insert(f);
                        }
                    } else {
                        l.held = Some(name);
                    }
                    want = Want::Nothing;
                }
            }
            Want::Nothing => {}
        }
    }
    Some(l)
}

impl Lockdep<'_> {
    /// The function the report is named after.
    pub(crate) fn func(&self) -> Option<&str> {
        self.site
            .filter(|f| !is_generic(f))
            .or_else(|| self.stack.iter().copied().find(|f| !is_generic(f)))
            .or(self.site)
    }

    /// Title and signature.
    pub(crate) fn describe(&self) -> (String, String) {
        let func = self.func();
        let title = match func {
            Some(f) => format!("WARNING: {} in {f}", self.headline),
            None => format!("WARNING: {}", self.headline),
        };
        let place = match (&self.acquiring, &self.held) {
            (Some(a), Some(h)) => format!("{a}:{h}"),
            (Some(a), None) => a.clone(),
            _ => func.unwrap_or("unknown").to_string(),
        };
        (title, format!("WARNING:{}:{place}", self.headline))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headlines_of_every_version() {
        for (line, want) in [
            (
                "WARNING: possible circular locking dependency detected",
                "possible circular locking dependency detected",
            ),
            (
                "[ INFO: possible circular locking dependency detected ]",
                "possible circular locking dependency detected",
            ),
            (
                "[ BUG: bad unlock balance detected! ]",
                "bad unlock balance detected",
            ),
            (
                "WARNING: bad unlock balance detected!",
                "bad unlock balance detected",
            ),
            (
                "INFO: trying to register non-static key.",
                "trying to register non-static key",
            ),
            ("[ INFO: suspicious RCU usage. ]", "suspicious RCU usage"),
            ("INFO: suspicious RCU usage.", "suspicious RCU usage"),
            (
                "WARNING: syz-executor/123 still has locks held!",
                "still has locks held",
            ),
        ] {
            assert_eq!(headline(line).as_deref(), Some(want), "{line}");
        }
        assert_eq!(
            headline("INFO: task x:1 blocked for more than 5 seconds."),
            None
        );
        assert!(is_old_headline("[ BUG: bad unlock balance detected! ]"));
        assert!(!is_old_headline("[ BUG: something else ]"));
    }

    #[test]
    fn lock_lines_are_not_frames() {
        let new = "ffff888106a71958 (&q->elevator_lock){+.+.}-{4:4}, at: blk_foo+0x49a/0x1a10";
        assert_eq!(parse_frame(new), None);
        assert_eq!(
            lock_line(new),
            Some(("&q->elevator_lock".to_string(), Some("blk_foo")))
        );
        assert_eq!(
            lock_line(" (&pipe->mutex/1){+.+.}, at: [<ffffffff81a1c4a5>] pipe_lock+0x56/0x70"),
            Some(("&pipe->mutex/1".to_string(), Some("pipe_lock")))
        );
        assert_eq!(
            lock_line("ffff8880 (&q->q_usage_counter(io)#55){++++}-{0:0}, at: nbd_start+0x1/0x2"),
            Some(("&q->q_usage_counter(io)".to_string(), Some("nbd_start")))
        );
        assert_eq!(
            lock_line(" (sk_lock-AF_INET){+.+.}, at: [<ffffffff8>] lock_sock include/net/sock.h:1462 [inline]"),
            Some(("sk_lock-AF_INET".to_string(), Some("lock_sock")))
        );
        assert_eq!(
            lock_line(" #0: ffffffff8f76e570 (cb_lock){++++}-{4:4}, at: genl_rcv+0x19/0x40"),
            Some(("cb_lock".to_string(), Some("genl_rcv")))
        );
    }
}
