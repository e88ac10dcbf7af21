//! The host's view of a guest's serial console while a session runs: the kernel reports found
//! so far (the core parser), a bounded copy of the recent text (for the agent's markers and a
//! tail to show), and where the newest chunk starts.
//!
//! A kernel in trouble can print a lot: a use-after-free inside a loop makes KASAN report on
//! every iteration (`kasan_multi_shot`), tens of MB a minute in chunks of a few bytes. Every
//! operation here is therefore proportional to the chunk, not to the text kept: a marker is
//! looked for in the new text plus the [`MARKER_OVERLAP`] bytes before it (so one split across
//! chunks is found), never in all of it. The full console is in the VM's `console.log`.

use shmemfuzz_core::console::{ConsoleScanner, KernelReport};

/// Longest marker [`GuestConsole::recent_has`] is asked for (the agent's markers are
/// `shmemfuzz-agent: end of run <id>` and `shmemfuzz-agent: fatal:`).
pub const MARKER_OVERLAP: usize = 128;
/// The text kept is cut back to [`KEEP_BYTES`] when it reaches this size.
const MAX_TEXT_BYTES: usize = 4 << 20;
const KEEP_BYTES: usize = 2 << 20;

#[derive(Debug, Default)]
pub struct GuestConsole {
    scanner: ConsoleScanner,
    text: String,
    /// Start of the newest chunk in `text`, less the overlap (a char boundary).
    recent: usize,
}

impl GuestConsole {
    pub fn new() -> Self {
        GuestConsole::default()
    }

    /// Takes a chunk of console bytes; returns the reports it completed.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<KernelReport> {
        let chunk = String::from_utf8_lossy(bytes);
        self.text.push_str(&chunk);
        if self.text.len() > MAX_TEXT_BYTES {
            let cut = floor_boundary(&self.text, self.text.len() - KEEP_BYTES);
            self.text.drain(..cut);
        }
        let start = self.text.len().saturating_sub(chunk.len() + MARKER_OVERLAP);
        self.recent = floor_boundary(&self.text, start);
        self.scanner.feed(bytes)
    }

    /// Does the newest chunk (with the overlap before it) contain `needle`?
    pub fn recent_has(&self, needle: &str) -> bool {
        debug_assert!(needle.len() <= MARKER_OVERLAP);
        self.text[self.recent..].contains(needle)
    }

    /// Does the text kept contain `needle` anywhere (a one-off check, not per chunk)?
    pub fn has(&self, needle: &str) -> bool {
        self.text.contains(needle)
    }

    /// The first line of the text kept that contains `needle`.
    pub fn line_with(&self, needle: &str) -> Option<&str> {
        self.text.lines().find(|l| l.contains(needle))
    }

    /// The last `n` lines.
    pub fn tail(&self, n: usize) -> String {
        let lines: Vec<&str> = self.text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The report still open when the console ends, if any.
    pub fn finish(&mut self) -> Vec<KernelReport> {
        self.scanner.finish()
    }
}

/// The largest char boundary of `s` at or below `i`.
fn floor_boundary(s: &str, i: usize) -> usize {
    (0..=i.min(s.len()))
        .rev()
        .find(|&j| s.is_char_boundary(j))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_split_across_chunks_is_found_in_the_newest_text() {
        let mut c = GuestConsole::new();
        c.feed(b"boot line\nshmemfuzz-agent: end ");
        assert!(!c.recent_has("shmemfuzz-agent: end of run 3"));
        c.feed(b"of run 3\n");
        assert!(c.recent_has("shmemfuzz-agent: end of run 3"));
        // Once far enough behind, an old marker is no longer "recent", but still kept.
        c.feed(&[b'x'; 2 * MARKER_OVERLAP]);
        assert!(c.recent_has("end of run 3"), "still within the overlap");
        c.feed(b"y");
        assert!(!c.recent_has("end of run 3"));
        assert!(c.has("end of run 3"));
        assert_eq!(
            c.line_with("end of run"),
            Some("shmemfuzz-agent: end of run 3")
        );
    }

    #[test]
    fn the_text_kept_is_bounded_and_cut_on_char_boundaries() {
        let mut c = GuestConsole::new();
        let line = "é KASAN report line ü\n".repeat(1000);
        for _ in 0..300 {
            c.feed(line.as_bytes());
            assert!(c.text.len() <= MAX_TEXT_BYTES, "{}", c.text.len());
        }
        assert!(c.text.len() >= KEEP_BYTES - line.len());
        assert!(c.recent_has("ü\n"));
        assert_eq!(c.tail(1), "é KASAN report line ü");
    }

    #[test]
    fn reports_come_through() {
        let mut c = GuestConsole::new();
        let mut reports = c.feed(
            b"------------[ cut here ]------------\nWARNING: CPU: 0 PID: 1 at mm/shmem.c:1 shmem_x+0x1/0x2\n",
        );
        reports.extend(c.feed(b"---[ end trace 0000000000000000 ]---\n"));
        reports.extend(c.finish());
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert_eq!(reports[0].signature, "WARNING:shmem_x");
    }
}
