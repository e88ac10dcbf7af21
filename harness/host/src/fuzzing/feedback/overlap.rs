//! How the operations of a section's threads overlapped in time: feedback on timing, not
//! only on code reached.
//!
//! A race needs one thread's operation to end while the other's is at a particular point of
//! its work — the planted swapoff race: the object's last reference dropped while swapoff is
//! still inside the file. KCOV and the kprobe counts are the same whether the close came
//! before, during or after the swapoff, so without this region libFuzzer keeps no input for
//! getting the timing closer, and a campaign's race sections drift towards whatever code they
//! reach. For each pair of operations in different threads of one section: the longer one (A)
//! and where the other (B) ended in A's span — before A started, in which quarter of A, or
//! after A ended. Key `A|B|position` (action words), presence only: at most six features per
//! pairing, so the corpus keeps one input per timing a pairing has shown, and the drawn
//! delays of later executions explore around it.

use std::collections::BTreeMap;

use shmemfuzz_core::program::threads::{Lane, Layout};
use shmemfuzz_core::program::{Op, Program};
use shmemfuzz_core::protocol::OpRecord;

/// One timed operation of a section's thread.
struct Timed<'a> {
    thread: usize,
    word: &'a str,
    start: u64,
    end: u64,
}

/// The `A|B|position` keys of one run: see the module documentation.
pub(super) fn overlap_keys(program: &Program, records: &[OpRecord]) -> Vec<String> {
    let layout = Layout::of(program);
    let mut sections: BTreeMap<usize, Vec<Timed>> = BTreeMap::new();
    for rec in records {
        let i = rec.index as usize;
        let (Some(op), Some(Lane::Thread { section, thread })) =
            (program.ops.get(i), layout.lanes.get(i))
        else {
            continue;
        };
        // Markers and waits are how the timing is made, not what races.
        if matches!(op, Op::Thread { .. } | Op::Delay { .. } | Op::Spin { .. }) {
            continue;
        }
        sections.entry(*section).or_default().push(Timed {
            thread: *thread,
            word: op.action_word(),
            start: rec.start_micros,
            end: rec.start_micros + rec.micros,
        });
    }
    let mut keys = Vec::new();
    for ops in sections.values() {
        for (n, x) in ops.iter().enumerate() {
            for y in ops[n + 1..].iter().filter(|y| y.thread != x.thread) {
                let (a, b) = if y.end - y.start > x.end - x.start {
                    (y, x)
                } else {
                    (x, y)
                };
                keys.push(format!("{}|{}|{}", a.word, b.word, position(a, b.end)));
            }
        }
    }
    keys
}

/// Where instant `t` falls in `a`'s span.
fn position(a: &Timed, t: u64) -> &'static str {
    if t < a.start {
        return "before";
    }
    if t > a.end {
        return "after";
    }
    let span = a.end - a.start + 1;
    ["q1", "q2", "q3", "q4"][((t - a.start) * 4 / span).min(3) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;
    use shmemfuzz_core::program::parse;
    use shmemfuzz_core::protocol::OpResult;

    const RACE: &str = "\
memfd m0 size=1M
write m0 off=0 len=1M seed=1
threads
thread a
  swapoff swap0
thread b
  delay 1ms..4ms
  close m0
join
";

    fn rec(index: u32, start_micros: u64, micros: u64) -> OpRecord {
        OpRecord {
            micros,
            start_micros,
            ..OpRecord::bare(index, OpResult::Ok)
        }
    }

    /// The records of RACE with swapoff over [1000, 5000] and the close ending at `close_end`.
    fn keys(close_end: u64) -> Vec<String> {
        let p = parse(RACE).expect("parses");
        let mut records: Vec<OpRecord> = (0..3).map(|i| rec(i, 10 * u64::from(i), 5)).collect();
        records.push(rec(3, 900, 0)); // thread a
        records.push(rec(4, 1000, 4000)); // swapoff
        records.push(rec(5, 900, 0)); // thread b
        records.push(rec(6, 900, close_end.saturating_sub(950))); // delay
        records.push(rec(7, close_end - 50, 50)); // close
        records.push(rec(8, 6000, 1)); // join
        overlap_keys(&p, &records)
    }

    #[test]
    fn where_the_close_ends_in_the_swapoff_is_the_key() {
        assert_eq!(keys(990), ["swapoff|close|before"]);
        assert_eq!(keys(1500), ["swapoff|close|q1"]);
        assert_eq!(keys(3200), ["swapoff|close|q3"]);
        assert_eq!(keys(4999), ["swapoff|close|q4"]);
        assert_eq!(keys(5200), ["swapoff|close|after"]);
    }

    #[test]
    fn operations_of_one_thread_and_of_the_main_lane_are_not_paired() {
        let p = parse(
            "memfd m0 size=4K\nthreads\nthread a\n  reclaim 4K\n  reclaim 4K\njoin\nreclaim 4K\n",
        )
        .expect("parses");
        let records: Vec<OpRecord> = (0..6).map(|i| rec(i, 100 * u64::from(i), 50)).collect();
        assert!(overlap_keys(&p, &records).is_empty());
    }
}
