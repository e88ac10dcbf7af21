//! Telling a console flood from a report: the same kernel report (by signature) printed
//! again and again, as a use-after-free hit in a loop or a WARN in a per-page path does.

use std::collections::HashMap;

use shmemfuzz_core::console::KernelReport;

/// Counts finding reports per signature over one run.
#[derive(Debug)]
pub(super) struct FloodWatch {
    repeats: u32,
    seen: HashMap<String, u32>,
    flooding: bool,
}

impl FloodWatch {
    /// Flooding once a signature was seen `repeats` times (0 never floods).
    pub(super) fn new(repeats: u32) -> FloodWatch {
        FloodWatch {
            repeats,
            seen: HashMap::new(),
            flooding: false,
        }
    }

    pub(super) fn saw(&mut self, reports: &[KernelReport]) {
        for r in reports.iter().filter(|r| r.is_finding) {
            let n = self.seen.entry(r.signature.clone()).or_default();
            *n += 1;
            self.flooding |= self.repeats > 0 && *n >= self.repeats;
        }
    }

    pub(super) fn flooding(&self) -> bool {
        self.flooding
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shmemfuzz_core::console::ConsoleScanner;

    fn reports(text: &str) -> Vec<KernelReport> {
        let mut s = ConsoleScanner::new();
        let mut out = s.feed(text.as_bytes());
        out.extend(s.finish());
        out
    }

    const WARNING: &str = "[    1.0] ------------[ cut here ]------------\n\
        [    1.0] WARNING: CPU: 0 PID: 1 at mm/shmem.c:10 shmem_replace_folio+0x1/0x2\n\
        [    1.0] ---[ end trace 0000000000000000 ]---\n";

    #[test]
    fn the_same_report_three_times_is_a_flood() {
        let one = reports(WARNING);
        assert_eq!(one.len(), 1, "{one:#?}");
        let mut w = FloodWatch::new(3);
        w.saw(&one);
        w.saw(&one);
        assert!(!w.flooding(), "twice is not yet a flood");
        w.saw(&one);
        assert!(w.flooding());
    }

    #[test]
    fn different_reports_are_not_a_flood() {
        let one = reports(WARNING);
        let other = reports(&WARNING.replace("shmem_replace_folio", "shmem_unuse"));
        assert_ne!(one[0].signature, other[0].signature);
        let mut w = FloodWatch::new(3);
        for r in [&one, &other, &one, &other] {
            w.saw(r);
        }
        assert!(!w.flooding());
        let mut never = FloodWatch::new(0);
        for _ in 0..10 {
            never.saw(&one);
        }
        assert!(!never.flooding(), "0 turns the rule off");
    }
}
