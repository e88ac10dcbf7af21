//! A threaded section: `threads`, one block per `thread`, `join`.
//!
//! The main thread sends the `threads` record, moves into each thread's own [`State`] the
//! descriptors, mappings and GEM handles its block names (an object several blocks share
//! goes to the first, the others get a duplicate descriptor and a copy of the mapping: the
//! scope rules keep close, munmap and the like away from a shared object), and starts the
//! threads. They wait at a barrier, send their `thread` record and run their block with a
//! copy of the model that also knows the other threads' writes (`oracle::shared`: a read of a
//! shared object may return their bytes), sending each record as it completes. After every
//! thread has returned, their states come back, the main model is advanced in program order
//! with the observed results, every object more than one thread wrote is read back whole and
//! checked against what some interleaving leaves (the `join` record's data check), and the
//! model takes what was read; the `join` record is sent from the quiescent point: its page
//! observations see every object. On a KCOV kernel each thread traces its own operations and
//! its PCs are folded into the executor's coverage at the join.
//!
//! A thread stuck in the kernel never returns: no more records come, and the supervisor's
//! per-operation deadline ends the program as a hang at the lowest operation in flight.

use std::sync::Barrier;

use shmemfuzz_core::oracle::shared::SectionWrites;
use shmemfuzz_core::protocol::PcHits;

use crate::kcov::Kcov;

use super::*;

/// What a thread hands back: its state, each operation's result and the PCs it traced (when
/// the executor traces), or why it stopped.
type Ended = Result<(State, Vec<(usize, OpResult)>, Vec<PcHits>), String>;

impl Executor<'_> {
    /// Runs the section that starts at operation `start` (`threads`); returns the index
    /// after its `join`.
    pub(super) fn run_section(
        &self,
        st: &mut State,
        model: &mut Model,
        start: usize,
        out: &Mutex<Sink<'_>>,
        mut kcov: Option<&mut Kcov>,
    ) -> Result<usize, String> {
        let ops = &self.program.ops;
        let rec = self.step(st, model, start);
        send(out, rec, &self.costs)?;
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
        let block_ops: Vec<Vec<&Op>> = blocks
            .iter()
            .map(|b| b.iter().map(|&i| &ops[i]).collect())
            .collect();
        let writes = SectionWrites::of(model, &block_ops);
        let parts = st.split(&block_ops);
        let barrier = Barrier::new(blocks.len());
        let ended: Vec<Ended> = std::thread::scope(|s| {
            let handles: Vec<_> = parts
                .into_iter()
                .zip(&blocks)
                .enumerate()
                .map(|(k, (mut part, block))| {
                    let mut m = model.clone();
                    m.racing = writes.others(k);
                    let barrier = &barrier;
                    let traced = kcov.is_some();
                    s.spawn(move || {
                        spread(k);
                        // Started before the barrier, so both threads leave it together.
                        let mut own = traced.then(Kcov::start).and_then(Result::ok);
                        barrier.wait();
                        let mut results = Vec::with_capacity(block.len());
                        for &i in block {
                            if let Some(t) = own.as_mut() {
                                t.reset();
                            }
                            let rec = self.step(&mut part, &mut m, i);
                            if let Some(t) = own.as_mut() {
                                t.collect();
                            }
                            results.push((i, rec.result.clone()));
                            send(out, rec, &self.costs)?;
                        }
                        Ok((part, results, own.map(Kcov::finish).unwrap_or_default()))
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
            let (part, res, pcs) = r?;
            st.merge(part);
            results.extend(res);
            if let Some(k) = kcov.as_deref_mut() {
                k.absorb(&pcs);
            }
        }
        results.sort_by_key(|(i, _)| *i);
        for (i, result) in results {
            model.apply(&ops[i]);
            model.observe(&ops[i], &result);
        }
        let contended = settle(st, model, &writes);
        let mut rec = self.step(st, model, join);
        rec.data = contended;
        send(out, rec, &self.costs)?;
        Ok(join + 1)
    }
}

/// Reads back every object more than one thread wrote, checks each byte against what some
/// interleaving leaves and makes the model hold what was read. `None` if no object was
/// contended (the `join` of a section without shared writes checks nothing, as before).
fn settle(st: &State, model: &mut Model, writes: &SectionWrites) -> Option<DataCheck> {
    let mut total: Option<DataCheck> = None;
    for obj in writes.contended() {
        let allowed = writes.at_join(model, &obj);
        let len = allowed.own.len() as u64;
        let d = match st
            .fds
            .get(&obj)
            .map(|fd| read_back(fd, 0, len, len as usize))
        {
            Some(Ok(actual)) => {
                allowed.settle(model, &obj, &actual);
                allowed.compare(0, &actual)
            }
            // The descriptor is gone or unreadable: nothing of it could be read.
            _ => DataCheck {
                expected_len: len,
                ..DataCheck::default()
            },
        };
        let t = total.get_or_insert_with(DataCheck::default);
        t.expected_len += d.expected_len;
        t.read_len += d.read_len;
        t.mismatched_bytes += d.mismatched_bytes;
        t.mismatched_pages += d.mismatched_pages;
        t.first_mismatch = t.first_mismatch.or(d.first_mismatch);
    }
    total
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
    /// Moves out what each block names (with a mapping, its object) into a state of its own
    /// that shares the DRM device. A name several blocks use goes to the first of them; the
    /// others get a duplicate descriptor, a copy of the mapping and the GEM handle.
    fn split(&mut self, blocks: &[Vec<&Op>]) -> Vec<State> {
        let mut parts: Vec<State> = Vec::with_capacity(blocks.len());
        for block in blocks {
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
                let map = self
                    .maps
                    .get(name)
                    .or_else(|| parts.iter().find_map(|p| p.maps.get(name)));
                if let Some(m) = map {
                    wanted.insert(m.obj.clone());
                }
                wanted.insert(name.to_string());
            }
            for name in wanted {
                part.take(self, &parts, name);
            }
            parts.push(part);
        }
        parts
    }

    /// Moves `name`'s descriptor, mapping, handle and watch from `from` into `self`, or, if
    /// an earlier part took them, copies them from there.
    fn take(&mut self, from: &mut State, earlier: &[State], name: String) {
        let holder = earlier.iter().find(|p| {
            p.fds.contains_key(&name) || p.maps.contains_key(&name) || p.handles.contains_key(&name)
        });
        if let Some(p) = holder {
            // A duplicate that fails (EMFILE) leaves the thread without it: EBADF, a finding.
            if let Some(fd) = p.fds.get(&name).and_then(|fd| fd.try_clone().ok()) {
                self.fds.insert(name.clone(), fd);
            }
            if let Some(m) = p.maps.get(&name) {
                self.maps.insert(name.clone(), m.clone());
            }
            if let Some(h) = p.handles.get(&name) {
                self.handles.insert(name.clone(), *h);
            }
            if p.watched.contains(&name) {
                self.watched.insert(name);
            }
            return;
        }
        if let Some(fd) = from.fds.remove(&name) {
            self.fds.insert(name.clone(), fd);
        }
        if let Some(m) = from.maps.remove(&name) {
            self.maps.insert(name.clone(), m);
        }
        if let Some(h) = from.handles.remove(&name) {
            self.handles.insert(name.clone(), h);
        }
        if from.watched.remove(&name) {
            self.watched.insert(name);
        }
    }

    /// Takes back what a thread's state holds after the join (a shared object's duplicate
    /// descriptors close here; the copies of a mapping are one mapping).
    fn merge(&mut self, part: State) {
        self.fds.extend(part.fds);
        self.maps.extend(part.maps);
        self.handles.extend(part.handles);
        self.watched.extend(part.watched);
    }
}
