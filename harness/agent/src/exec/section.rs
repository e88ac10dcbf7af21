//! A threaded section: `threads`, one block per `thread`, `join`.
//!
//! The main thread sends the `threads` record, moves into each thread's own [`State`] the
//! descriptors, mappings and GEM handles its block names (the scope rules give every object
//! to at most one thread of a section), and starts the threads. They wait at a barrier, send
//! their `thread` record and run their block with a copy of the model (exact for what they
//! own), sending each record as it completes. After every thread has returned, their states
//! come back, the main model is advanced in program order with the observed results, and the
//! `join` record is sent from the quiescent point: its page observations see every object.
//!
//! A thread stuck in the kernel never returns: no more records come, and the supervisor's
//! per-operation deadline ends the program as a hang at the lowest operation in flight.

use std::sync::Barrier;

use super::*;

/// What a thread hands back: its state and each operation's result, or why it stopped.
type Ended = Result<(State, Vec<(usize, OpResult)>), String>;

impl Executor<'_> {
    /// Runs the section that starts at operation `start` (`threads`); returns the index
    /// after its `join`.
    pub(super) fn run_section(
        &self,
        st: &mut State,
        model: &mut Model,
        start: usize,
        out: &Mutex<&File>,
    ) -> Result<usize, String> {
        let ops = &self.program.ops;
        let rec = self.step(st, model, start);
        send(out, rec)?;
        // The blocks: each `thread` marker's index followed by its operations.
        let mut blocks: Vec<Vec<usize>> = Vec::new();
        let mut join = start + 1;
        while join < ops.len() && ops[join] != Op::Join {
            match &ops[join] {
                Op::Thread { .. } => blocks.push(vec![join]),
                _ => match blocks.last_mut() {
                    Some(b) => b.push(join),
                    None => return Err(format!("op {join}: not inside a `thread` block")),
                },
            }
            join += 1;
        }
        if join == ops.len() {
            return Err(format!("the section opened at op {start} has no `join`"));
        }
        // GEM handles belong to the DRM file: open it once, before the threads share it.
        if blocks.iter().flatten().any(|&i| ops[i].uses_drm()) {
            st.dri()
                .map_err(|e| format!("opening the mock DRM device: {e}"))?;
        }
        let parts: Vec<State> = blocks
            .iter()
            .map(|b| st.split_off(&b.iter().map(|&i| &ops[i]).collect::<Vec<_>>()))
            .collect();
        let barrier = Barrier::new(blocks.len());
        let ended: Vec<Ended> = std::thread::scope(|s| {
            let handles: Vec<_> = parts
                .into_iter()
                .zip(&blocks)
                .enumerate()
                .map(|(k, (mut part, block))| {
                    let mut m = model.clone();
                    let barrier = &barrier;
                    s.spawn(move || {
                        spread(k);
                        barrier.wait();
                        let mut results = Vec::with_capacity(block.len());
                        for &i in block {
                            let rec = self.step(&mut part, &mut m, i);
                            results.push((i, rec.result.clone()));
                            send(out, rec)?;
                        }
                        Ok((part, results))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("a thread panicked".into())))
                .collect()
        });
        let mut results = Vec::new();
        for r in ended {
            let (part, res) = r?;
            st.merge(part);
            results.extend(res);
        }
        results.sort_by_key(|(i, _)| *i);
        for (i, result) in results {
            model.apply(&ops[i]);
            model.observe(&ops[i], &result);
        }
        let rec = self.step(st, model, join);
        send(out, rec)?;
        Ok(join + 1)
    }
}

/// Moves thread `k` of a section to CPU `k` modulo the online CPUs (the program's child is
/// pinned to CPU 0): with one CPU the threads interleave by preemption and blocking only.
fn spread(k: usize) {
    // SAFETY: sysconf has no preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
    let mut set = nix::sched::CpuSet::new();
    if set.set(k % online).is_ok() {
        let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set);
    }
}

impl State {
    /// Moves out what `block` names (with a mapping, its object) into a state of its own
    /// that shares the DRM device.
    fn split_off(&mut self, block: &[&Op]) -> State {
        let mut part = State {
            dri: self.dri.clone(),
            ..State::default()
        };
        let mut wanted: BTreeSet<String> = BTreeSet::new();
        // Names are one namespace (scope.rs), so a mount's name never picks up an object.
        let named = block
            .iter()
            .flat_map(|op| op.declared_name().into_iter().chain(op.used_name()));
        for name in named {
            if let Some(m) = self.maps.get(name) {
                wanted.insert(m.obj.clone());
            }
            wanted.insert(name.to_string());
        }
        for name in wanted {
            if let Some(fd) = self.fds.remove(&name) {
                part.fds.insert(name.clone(), fd);
            }
            if let Some(m) = self.maps.remove(&name) {
                part.maps.insert(name.clone(), m);
            }
            if let Some(h) = self.handles.remove(&name) {
                part.handles.insert(name.clone(), h);
            }
            if self.watched.remove(&name) {
                part.watched.insert(name);
            }
        }
        part
    }

    /// Takes back what a thread's state holds after the join.
    fn merge(&mut self, part: State) {
        self.fds.extend(part.fds);
        self.maps.extend(part.maps);
        self.handles.extend(part.handles);
        self.watched.extend(part.watched);
    }
}
