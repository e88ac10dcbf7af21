//! Programs back into fuzzer bytes: the records of [`super`] that decode to a given program.
//!
//! Used to turn readable programs (`examples/`, minimized reproducers) into seed inputs for
//! the fuzzer, and by the mutator's tests. Every record is checked by decoding it at its
//! point, so a program outside what the decoder can make (too large, test-only operations,
//! unaligned mappings, too many names) is refused with the operation and the reason.

use super::*;

/// A program the decoder cannot make.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("operation {op}: {reason}")]
pub struct EncodeError {
    /// 1-based index of the operation.
    pub op: usize,
    pub reason: String,
}

/// The bytes that decode to `program`, names made canonical.
pub fn encode(program: &Program) -> std::result::Result<Vec<u8>, EncodeError> {
    let mut scope = Scope::new(DEFAULT_SWAP_DEVICES);
    let mut names = 0usize;
    let mut rename: HashMap<String, String> = HashMap::new();
    let mut out = Vec::with_capacity(program.ops.len() * RECORD_LEN);
    let mut i = 0;
    // The decoder makes one race section a program.
    let mut raced = false;
    while i < program.ops.len() {
        let op = &program.ops[i];
        let fail = |reason: String| EncodeError { op: i + 1, reason };
        if i >= GEN_MAX_OPS {
            return Err(fail(format!(
                "the decoder makes at most {GEN_MAX_OPS} operations"
            )));
        }
        let room = GEN_MAX_OPS - i;
        let race = (!raced)
            .then(|| race_at(&program.ops[i..], &scope, names, room, &mut rename))
            .flatten();
        if let Some((record, taken)) = race {
            let e = race::expand(&race::Race::of(&record), &scope, names, room)
                .expect("found by expanding");
            scope = e.scope;
            names += e.declared;
            out.extend_from_slice(&record);
            raced = true;
            i += taken;
            continue;
        }
        let mut want = canonical(op, &rename, names).map_err(fail)?;
        if let (Op::Thread { name }, Some(sec)) = (&mut want, &scope.section) {
            *name = thread_name(sec.threads.len());
        }
        let record = record_for(&want, &scope).map_err(fail)?;
        match decode_record(&record, &scope, names) {
            Some(got) if got == want => {}
            _ if want.declared_name().is_some() && names >= GEN_MAX_NAMES => {
                return Err(fail(format!(
                    "the decoder declares at most {GEN_MAX_NAMES} names"
                )))
            }
            _ => return Err(fail("outside what the decoder makes".into())),
        }
        scope.apply(&want).map_err(|e| fail(e.message))?;
        if let (Some(from), Some(to)) = (op.declared_name(), want.declared_name()) {
            rename.insert(from.to_string(), to.to_string());
            names += 1;
        }
        out.extend_from_slice(&record);
        i += 1;
    }
    Ok(out)
}

/// The race record (see [`race`]) that makes the operations at the start of `ops`, and how
/// many it makes; `rename` then holds their declared names. Only at the top level, where a
/// race section starts.
fn race_at(
    ops: &[Op],
    scope: &Scope,
    names: usize,
    room: usize,
    rename: &mut HashMap<String, String>,
) -> Option<([u8; RECORD_LEN], usize)> {
    if scope.section.is_some() {
        return None;
    }
    // The canonical form of the operations ahead, as far as their names are known.
    let mut renamed = rename.clone();
    let mut canon = Vec::new();
    let mut declared = names;
    let mut threads = 0;
    for op in ops.iter().take(room) {
        let Ok(mut want) = canonical(op, &renamed, declared) else {
            break;
        };
        match &mut want {
            Op::Threads => threads = 0,
            Op::Thread { name } => {
                *name = thread_name(threads);
                threads += 1;
            }
            _ => {}
        }
        if let (Some(from), Some(to)) = (op.declared_name(), want.declared_name()) {
            renamed.insert(from.to_string(), to.to_string());
            declared += 1;
        }
        canon.push(want);
    }
    let (record, taken) = race::find(&canon, scope, names, room)?;
    for op in &ops[..taken] {
        if let Some(from) = op.declared_name() {
            rename.insert(from.to_string(), renamed[from].clone());
        }
    }
    Some((record, taken))
}

/// `op` with the decoder's names: a declared name becomes `<prefix><names>`, references
/// follow `rename`.
fn canonical(
    op: &Op,
    rename: &HashMap<String, String>,
    names: usize,
) -> std::result::Result<Op, String> {
    let mut op = op.clone();
    let prefix = match &op {
        Op::Memfd { .. } => "m",
        Op::Tmpfs { .. } => "t",
        Op::Gem { .. } => "g",
        Op::Mount { .. } => "f",
        _ => "v",
    };
    let (declared, used) = op.names_mut();
    if let Some(name) = declared {
        *name = format!("{prefix}{names}");
    }
    if let Some(name) = used {
        *name = rename
            .get(name.as_str())
            .ok_or_else(|| format!("`{name}` is not declared before"))?
            .clone();
    }
    Ok(op)
}

/// Record fields under construction.
struct Builder([u8; RECORD_LEN]);

impl Builder {
    fn a(&mut self, lo: u64, hi: u64, v: u64) -> std::result::Result<(), String> {
        put_checked(&mut self.0[4..8], lo, hi, v)
    }
    fn b(&mut self, lo: u64, hi: u64, v: u64) -> std::result::Result<(), String> {
        put_checked(&mut self.0[8..12], lo, hi, v)
    }
    fn seed(&mut self, seed: u32) {
        self.0[12..16].copy_from_slice(&seed.to_le_bytes());
    }
    fn pick(&mut self, at: usize, items: &[String], name: &str) -> std::result::Result<(), String> {
        let i = items
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| format!("`{name}` cannot be named here"))?;
        self.0[at] = u8::try_from(i).map_err(|_| "too many live names".to_string())?;
        Ok(())
    }
    fn range(&mut self, limit: u64, off: u64, len: u64) -> std::result::Result<(), String> {
        if off % PAGE_SIZE == 0 && len % PAGE_SIZE == 0 {
            let total = (limit / PAGE_SIZE).max(1);
            let first = off / PAGE_SIZE;
            self.a(0, total - 1, first)?;
            self.b(1, total.saturating_sub(first).max(1), len / PAGE_SIZE)
        } else {
            self.0[3] |= UNALIGNED;
            self.a(0, limit.saturating_sub(1), off)?;
            self.b(1, limit.saturating_sub(off).max(1), len)
        }
    }
}

fn put_checked(bytes: &mut [u8], lo: u64, hi: u64, v: u64) -> std::result::Result<(), String> {
    if !(lo..=hi).contains(&v) {
        return Err(format!("{v} is outside the decoder's range {lo}..={hi}"));
    }
    put_int(bytes, lo, hi, v);
    Ok(())
}

/// The record for `op` (already canonical) at a point where `scope` holds.
fn record_for(op: &Op, scope: &Scope) -> std::result::Result<[u8; RECORD_LEN], String> {
    let kind = OpKind::of(op).ok_or("test-only operations are never decoded")?;
    let mut r = Builder([0; RECORD_LEN]);
    r.0[0] = kind.selector();
    let live = Live::of(scope);
    let maps: Vec<String> = live.maps.iter().map(|(n, _)| n.clone()).collect();
    let map_len = |name: &str| live.maps.iter().find(|(n, _)| n == name).map(|(_, l)| *l);
    let max_bytes = GEN_MAX_PAGES * PAGE_SIZE;
    let pages = |bytes: u64| -> std::result::Result<u64, String> {
        (bytes % PAGE_SIZE == 0)
            .then_some(bytes / PAGE_SIZE)
            .ok_or_else(|| format!("{bytes} is not a whole number of pages"))
    };
    match op {
        Op::Memfd { size, anon, .. } => {
            r.a(1, GEN_MAX_PAGES, pages(*size)?)?;
            if *anon {
                r.0[3] = ANON;
            }
        }
        Op::Tmpfs { size, on, .. } => {
            r.a(1, GEN_MAX_PAGES, pages(*size)?)?;
            if let Some(m) = on {
                r.0[3] = ON_MOUNT;
                r.pick(2, &live.mounts, m)?;
            }
        }
        Op::Threads | Op::Thread { .. } | Op::Join | Op::Mount { huge: None, .. } => {}
        Op::Mount { huge: Some(h), .. } => {
            r.0[3] = 4;
            let i = ThpMode::MOUNT
                .iter()
                .position(|m| m == h)
                .ok_or("huge=deny/force")?;
            r.a(0, ThpMode::MOUNT.len() as u64 - 1, i as u64)?;
        }
        Op::Delay { micros, upto } => {
            r.a(0, GEN_MAX_DELAY_US, u64::from(*micros))?;
            if let Some(hi) = upto {
                r.0[3] = 1;
                r.b(u64::from(*micros), GEN_MAX_DELAY_US, u64::from(*hi))?;
            }
        }
        Op::Spin { iters, upto } => {
            r.a(0, GEN_MAX_SPIN, u64::from(*iters))?;
            if let Some(hi) = upto {
                r.0[3] = 1;
                r.b(u64::from(*iters), GEN_MAX_SPIN, u64::from(*hi))?;
            }
        }
        Op::Umount { mnt, detach } => {
            r.pick(1, &live.mounts, mnt)?;
            r.0[3] = u8::from(*detach);
        }
        Op::Ftruncate { obj, size } => {
            r.pick(1, &live.open, obj)?;
            r.a(1, GEN_MAX_PAGES, pages(*size)?)?;
        }
        Op::Write {
            obj,
            off,
            len,
            seed,
        } => {
            r.pick(1, &live.open, obj)?;
            r.range(max_bytes, *off, *len)?;
            r.seed(*seed);
        }
        Op::Check { obj, off, len } | Op::Punch { obj, off, len } => {
            r.pick(1, &live.open, obj)?;
            r.range(max_bytes, *off, *len)?;
        }
        Op::Mmap {
            obj,
            off,
            len,
            kind,
            ..
        } => {
            r.pick(1, &live.open, obj)?;
            r.0[3] = match kind {
                MapKind::Shared => 0,
                MapKind::Gem => 1,
                MapKind::Private => 3,
            };
            r.range(max_bytes, *off, *len)?;
        }
        Op::Munmap { map } => r.pick(2, &maps, map)?,
        Op::Touch {
            map,
            off,
            len,
            mode,
        } => {
            r.pick(2, &maps, map)?;
            if let TouchMode::Write { seed } = mode {
                r.0[3] = 1;
                r.seed(*seed);
            }
            r.range(map_len(map).unwrap_or(0), *off, *len)?;
        }
        Op::Madvise {
            map,
            off,
            len,
            advice,
        } => {
            r.pick(2, &maps, map)?;
            r.0[3] = match Advice::MOVING.iter().position(|a| a == advice) {
                Some(i) => MOVING_ADVICE | i as u8,
                None => Advice::SWAP.iter().position(|a| a == advice).unwrap_or(0) as u8,
            };
            let limit = map_len(map).unwrap_or(0);
            let limit = if *advice == Advice::SoftOffline {
                limit.min(GEN_MAX_SOFT_OFFLINE_PAGES * PAGE_SIZE)
            } else {
                limit
            };
            r.range(limit, *off, *len)?;
        }
        Op::Thp { mode, size } => {
            let i = ThpMode::ALL.iter().position(|m| m == mode).unwrap_or(0);
            r.a(0, ThpMode::ALL.len() as u64 - 1, i as u64)?;
            if let Some(s) = size {
                r.0[3] = PER_SIZE;
                let j = THP_SIZES.iter().position(|t| t == s).ok_or("thp size")?;
                r.b(0, THP_SIZES.len() as u64 - 1, j as u64)?;
            }
        }
        Op::Khugepaged | Op::Compact | Op::Online => {}
        Op::Mbind {
            map,
            off,
            len,
            node,
            flags,
        } => {
            r.pick(2, &maps, map)?;
            r.range(map_len(map).unwrap_or(0), *off, *len)?;
            node_seed(&mut r, *node)?;
            r.0[3] = flags.0;
        }
        Op::MovePages {
            map,
            off,
            len,
            node,
        } => {
            r.pick(2, &maps, map)?;
            r.range(map_len(map).unwrap_or(0), *off, *len)?;
            node_seed(&mut r, *node)?;
        }
        Op::MigratePages { from, to } => {
            r.a(0, 1, u64::from(*from))?;
            r.b(0, 1, u64::from(*to))?;
        }
        Op::Offline { obj, page } => {
            r.pick(1, &live.open, obj)?;
            r.a(0, GEN_MAX_PAGES - 1, *page)?;
        }
        Op::Hugetlb { size_kb, count } => {
            let gigantic = *size_kb == HUGETLB_SIZES_KB[1];
            r.0[3] = u8::from(gigantic);
            let max = if gigantic { 1 } else { GEN_MAX_HUGETLB_2M };
            r.a(0, max, u64::from(*count))?;
        }
        Op::Reclaim { bytes } => r.a(1, GEN_MAX_RECLAIM_PAGES, pages(*bytes)?)?,
        Op::Swapon { dev, prio } => {
            r.a(0, u64::from(DEFAULT_SWAP_DEVICES) - 1, u64::from(*dev))?;
            if let Some(p) = prio {
                r.0[3] = 1;
                let p = u64::try_from(i64::from(*p) + 1).map_err(|_| "priority below -1")?;
                r.b(0, 11, p)?;
            }
        }
        Op::Swapoff { dev } => r.a(0, u64::from(DEFAULT_SWAP_DEVICES) - 1, u64::from(*dev))?,
        Op::Unlink { obj } => r.pick(1, &live.tmpfs, obj)?,
        Op::Close { obj } | Op::Dma32 { obj } | Op::Zonecheck { obj } => {
            r.pick(1, &live.open, obj)?
        }
        Op::Gem { size, pinned, .. } => {
            r.a(1, GEN_MAX_PAGES, pages(*size)?)?;
            r.0[3] = if *pinned { 3 } else { 0 };
        }
        Op::Pin { obj } | Op::Unpin { obj } => r.pick(1, &live.gem, obj)?,
        Op::Corrupt { .. } | Op::Sysrq { .. } | Op::Hold { .. } => unreachable!("refused above"),
    }
    Ok(r.0)
}

/// Nodes 0 and 1 are decoded from the seed field's low bit.
fn node_seed(r: &mut Builder, node: u8) -> std::result::Result<(), String> {
    if node > 1 {
        return Err(format!("node {node}: the decoder makes nodes 0 and 1 only"));
    }
    r.seed(u32::from(node));
    Ok(())
}

#[cfg(test)]
mod tests;
