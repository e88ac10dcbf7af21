//! Threaded sections: which lane (the main sequence or one thread of a section) each
//! operation runs in, and the order records of a threaded program may arrive in.
//!
//! ```text
//! memfd m0 size=32M          lane: main
//! threads                    main   (the executor starts the threads)
//! thread a                   a      (record sent once the barrier opens)
//!   swapoff swap0            a
//! thread b                   b
//!   close m0                 b
//! join                       main   (every thread joined: a quiescent point)
//! ```
//!
//! Operations are numbered globally in program order, markers included; every operation has
//! one record. Records of one lane arrive in order; the lanes of a section interleave; a
//! main-lane record comes only after every record before it. [`Progress`] checks that (the
//! host rejects anything else as a protocol error) and names the operation a stuck program
//! was in (the agent's hang report).

use super::{Op, Program};

/// Where an operation runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// The program's own sequence (including `threads` and `join`).
    Main,
    /// Thread `thread` (0-based, in program order) of section `section`.
    Thread { section: usize, thread: usize },
}

/// The lanes of a program, and for each operation the one that must finish before it.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    pub lanes: Vec<Lane>,
    /// For a thread's operation: the previous one in its lane (its `thread` marker's is the
    /// section's `threads`). `None` for main-lane operations, which wait for everything
    /// before them.
    prev: Vec<Option<usize>>,
}

impl Layout {
    /// The layout of a valid program (one [`super::scope::Scope`] accepted).
    pub fn of(program: &Program) -> Layout {
        let mut lanes = Vec::with_capacity(program.ops.len());
        let mut prev = Vec::with_capacity(program.ops.len());
        let mut section = 0usize;
        // (threads op index, current thread, previous op in that thread)
        let mut open: Option<(usize, Option<usize>, usize)> = None;
        for (i, op) in program.ops.iter().enumerate() {
            match (op, open.as_mut()) {
                (Op::Threads, None) => {
                    open = Some((i, None, i));
                    lanes.push(Lane::Main);
                    prev.push(None);
                }
                (Op::Join, Some(_)) => {
                    open = None;
                    section += 1;
                    lanes.push(Lane::Main);
                    prev.push(None);
                }
                (Op::Thread { .. }, Some((start, thread, last))) => {
                    let t = thread.map_or(0, |t| t + 1);
                    *thread = Some(t);
                    lanes.push(Lane::Thread { section, thread: t });
                    prev.push(Some(*start));
                    *last = i;
                }
                (_, Some((_, Some(t), last))) => {
                    lanes.push(Lane::Thread {
                        section,
                        thread: *t,
                    });
                    prev.push(Some(*last));
                    *last = i;
                }
                _ => {
                    lanes.push(Lane::Main);
                    prev.push(None);
                }
            }
        }
        Layout { lanes, prev }
    }
}

/// Which records have arrived; checks each new one against the layout.
#[derive(Clone, Debug)]
pub struct Progress {
    layout: Layout,
    done: Vec<bool>,
}

impl Progress {
    pub fn new(program: &Program) -> Self {
        let layout = Layout::of(program);
        let done = vec![false; layout.lanes.len()];
        Progress { layout, done }
    }

    /// Whether operation `i`'s record may come now.
    fn due(&self, i: usize) -> bool {
        if self.done.get(i) != Some(&false) {
            return false;
        }
        match self.layout.prev[i] {
            Some(p) => self.done[p],
            None => self.done[..i].iter().all(|d| *d),
        }
    }

    /// Records the arrival of operation `index`'s record; an error says why it may not
    /// come now (a duplicate, out of its lane's order, or past the program's end).
    pub fn accept(&mut self, index: u32) -> Result<(), String> {
        let i = index as usize;
        if i >= self.done.len() {
            return Err(format!(
                "record for op {index}, but the program has {} operations",
                self.done.len()
            ));
        }
        if !self.due(i) {
            let due = self.in_flight();
            return Err(format!(
                "record for op {index} where op {} was due",
                due.map_or_else(|| "none".to_string(), |d| d.to_string())
            ));
        }
        self.done[i] = true;
        Ok(())
    }

    /// The first operation whose record may come next: the one a program that stopped
    /// answering was in (the lowest-numbered, when several threads are running).
    pub fn in_flight(&self) -> Option<u32> {
        (0..self.done.len())
            .find(|&i| self.due(i))
            .map(|i| i as u32)
    }

    /// Number of records arrived.
    pub fn arrived(&self) -> usize {
        self.done.iter().filter(|d| **d).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::parse;

    const RACE: &str = "memfd m0 size=4K\nthreads\nthread a\nswapoff swap0\nthread b\nclose m0\ndelay 10us\njoin\nreclaim 4K\n";

    #[test]
    fn lanes_follow_the_blocks() {
        let p = parse(RACE).expect("parses");
        let l = Layout::of(&p);
        let t = |thread| Lane::Thread { section: 0, thread };
        assert_eq!(
            l.lanes,
            [
                Lane::Main,
                Lane::Main,
                t(0),
                t(0),
                t(1),
                t(1),
                t(1),
                Lane::Main,
                Lane::Main
            ]
        );
    }

    #[test]
    fn threads_interleave_but_keep_their_order() {
        let p = parse(RACE).expect("parses");
        let mut g = Progress::new(&p);
        for i in [0, 1, 4, 2, 5, 3, 6, 7, 8] {
            g.accept(i).unwrap_or_else(|e| panic!("op {i}: {e}"));
        }
        let mut g = Progress::new(&p);
        for i in [0, 1, 4] {
            g.accept(i).expect("in order");
        }
        assert!(g.accept(6).is_err(), "skips op 5 of thread b");
        assert!(g.accept(7).is_err(), "join before the threads");
        assert!(g.accept(4).is_err(), "duplicate");
        assert!(g.accept(9).is_err(), "past the end");
        assert_eq!(g.in_flight(), Some(2));
        g.accept(2).expect("thread a starts");
        assert_eq!(g.in_flight(), Some(3));
    }

    #[test]
    fn a_flat_program_is_strictly_ordered() {
        let p = parse("memfd m0 size=4K\nclose m0\n").expect("parses");
        let mut g = Progress::new(&p);
        assert!(g.accept(1).is_err());
        g.accept(0).expect("first");
        g.accept(1).expect("second");
        assert_eq!((g.in_flight(), g.arrived()), (None, 2));
    }
}
