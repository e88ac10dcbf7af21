//! The reference model: object contents as extents of seeded patterns, private mappings'
//! copied-on-write pages, and which swap devices are on. [`Model::apply`] advances it by one
//! operation and returns what the kernel is allowed to answer.
//!
//! Touches: a page of a mapping whose file offset starts at or past end-of-file would raise
//! SIGBUS, so the executor does not touch it and the model expects [`Expect::Skip`]; a write
//! touch writes only the bytes below end-of-file (the tail of the last page stays zero, so
//! every byte of a valid page is checkable).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::pattern;
use super::shared::{Allowed, SectionWrite};
use crate::program::{Advice, MapKind, Op, TouchMode, PAGE_SIZE};
use crate::protocol::{errno, OpResult};

/// What an operation may return.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expect {
    Ok,
    /// Success, or one of these errnos (each a normal outcome, e.g. EAGAIN from reclaim).
    OkOr(Vec<i32>),
    Errno(i32),
    /// The executor must not perform it (a touch past end-of-file).
    Skip,
}

impl Expect {
    pub fn allows(&self, result: &OpResult) -> bool {
        match (self, result) {
            (Expect::Ok, OpResult::Ok) | (Expect::Skip, OpResult::Skipped) => true,
            (Expect::OkOr(_), OpResult::Ok) => true,
            (Expect::OkOr(allowed), OpResult::Errno(e)) => allowed.contains(e),
            (Expect::Errno(want), OpResult::Errno(e)) => want == e,
            _ => false,
        }
    }
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Ok => write!(f, "ok"),
            Expect::OkOr(v) => {
                let names: Vec<&str> = v.iter().map(|e| errno::name(*e)).collect();
                write!(f, "ok or {}", names.join("/"))
            }
            Expect::Errno(e) => write!(f, "{}", errno::name(*e)),
            Expect::Skip => write!(f, "skipped (past end-of-file)"),
        }
    }
}

/// One object's contents: non-overlapping extents `start -> (end, seed)`; zero elsewhere.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectModel {
    pub size: u64,
    extents: BTreeMap<u64, (u64, u32)>,
    /// GEM pin count (always 0 for memfds and tmpfs files).
    pub pins: u32,
}

impl ObjectModel {
    pub fn new(size: u64) -> Self {
        ObjectModel {
            size,
            extents: BTreeMap::new(),
            pins: 0,
        }
    }

    /// Removes `[start, end)` from the extents, splitting those that straddle it.
    fn cut(&mut self, start: u64, end: u64) {
        let overlapping: Vec<(u64, (u64, u32))> = self
            .extents
            .range(..end)
            .filter(|(_, (e, _))| *e > start)
            .map(|(s, v)| (*s, *v))
            .collect();
        for (s, (e, seed)) in overlapping {
            self.extents.remove(&s);
            if s < start {
                self.extents.insert(s, (start, seed));
            }
            if e > end {
                self.extents.insert(end, (e, seed));
            }
        }
    }

    pub fn write(&mut self, off: u64, len: u64, seed: u32) {
        let end = off + len;
        self.cut(off, end);
        self.extents.insert(off, (end, seed));
        self.size = self.size.max(end);
    }

    pub fn punch(&mut self, off: u64, len: u64) {
        self.cut(off, off.saturating_add(len));
    }

    pub fn truncate(&mut self, size: u64) {
        self.cut(size, u64::MAX);
        self.size = size;
    }

    /// The extents `(start, end, seed)` in offset order.
    pub fn extents(&self) -> impl Iterator<Item = (u64, u64, u32)> + '_ {
        self.extents.iter().map(|(s, (e, seed))| (*s, *e, *seed))
    }

    /// Fills `buf` with the expected bytes at `off..` (zeros past the extents).
    pub fn fill(&self, off: u64, buf: &mut [u8]) {
        buf.fill(0);
        let end = off + buf.len() as u64;
        let first = self
            .extents
            .range(..=off)
            .next_back()
            .map_or(off, |(s, _)| *s);
        for (&s, &(e, seed)) in self.extents.range(first..end) {
            let (lo, hi) = (s.max(off), e.min(end));
            if lo < hi {
                pattern::fill(seed, lo, &mut buf[(lo - off) as usize..(hi - off) as usize]);
            }
        }
    }
}

/// A mapping: the file range it shows and the pages written privately (for MAP_PRIVATE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappingModel {
    pub obj: String,
    pub off: u64,
    pub len: u64,
    pub kind: MapKind,
    /// File page index -> the page's private copy.
    private_pages: BTreeMap<u64, Vec<u8>>,
}

/// What the executor does for a touch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TouchPlan {
    /// A page of the range is past end-of-file: do nothing.
    Skip,
    /// Read `len` bytes at mapping offset `off` and compare with `expected`.
    Read { expected: Vec<u8> },
    /// Write the pattern to mapping bytes `off..off + len` (already clipped to end-of-file).
    Write { len: u64, seed: u32 },
}

/// The whole reference model of a running program.
#[derive(Clone, Debug, Default)]
pub struct Model {
    pub objects: BTreeMap<String, ObjectModel>,
    pub maps: BTreeMap<String, MappingModel>,
    pub swap_on: Vec<bool>,
    /// Objects whose descriptor is open.
    pub open: BTreeSet<String>,
    /// Files on the program's own tmpfs mounts: object -> mount.
    pub on_mount: BTreeMap<String, String>,
    /// Inside a threaded section, the writes of the other threads: a read of an object they
    /// share may return their bytes too (see [`super::shared`]). Empty elsewhere.
    pub racing: Vec<SectionWrite>,
}

fn page_floor(x: u64) -> u64 {
    x / PAGE_SIZE * PAGE_SIZE
}

impl Model {
    /// A model at program start: `swap_on[i]` says whether swap device `i` is on.
    pub fn new(swap_on: Vec<bool>) -> Self {
        Model {
            swap_on,
            ..Model::default()
        }
    }

    /// Expected bytes of `obj` at `off..off + len`, clipped at end-of-file (what `pread` returns).
    pub fn expected_read(&self, obj: &str, off: u64, len: u64) -> Vec<u8> {
        let Some(o) = self.objects.get(obj) else {
            return Vec::new();
        };
        let n = o.size.saturating_sub(off).min(len);
        let mut buf = vec![0u8; n as usize];
        o.fill(off, &mut buf);
        buf
    }

    /// What a `check` of `obj` at `off..off + len` may read: [`Model::expected_read`], or
    /// bytes of the other threads' racing writes.
    pub fn allowed_read(&self, obj: &str, off: u64, len: u64) -> Allowed {
        Allowed::new(obj, off, self.expected_read(obj, off, len), &self.racing)
    }

    /// What a read touch of mapping `map` at `off` whose plan expects `expected` may read.
    /// A private mapping is exact: the scope rules keep it out of shared use.
    pub fn allowed_touch(&self, map: &str, off: u64, expected: Vec<u8>) -> Allowed {
        match self.maps.get(map).filter(|m| m.kind.is_shared()) {
            Some(m) => Allowed::new(&m.obj, m.off + off, expected, &self.racing),
            None => Allowed::exact(off, expected),
        }
    }

    /// What to do for a touch of `len` bytes at `off` in mapping `map`.
    pub fn touch_plan(&self, map: &str, off: u64, len: u64, mode: TouchMode) -> TouchPlan {
        let (Some(m), true) = (self.maps.get(map), len > 0) else {
            return TouchPlan::Skip;
        };
        let Some(o) = self.objects.get(&m.obj) else {
            return TouchPlan::Skip;
        };
        let (file_lo, file_hi) = (m.off + off, m.off + off + len);
        // Every page the range covers must start below end-of-file.
        if page_floor(file_hi - 1) >= o.size {
            return TouchPlan::Skip;
        }
        match mode {
            TouchMode::Write { seed } => TouchPlan::Write {
                len: o.size.min(file_hi).saturating_sub(file_lo),
                seed,
            },
            TouchMode::Read => {
                let mut expected = vec![0u8; len as usize];
                o.fill(file_lo, &mut expected);
                for (&page, copy) in m
                    .private_pages
                    .range(file_lo / PAGE_SIZE..=(file_hi - 1) / PAGE_SIZE)
                {
                    let (lo, hi) = (
                        (page * PAGE_SIZE).max(file_lo),
                        ((page + 1) * PAGE_SIZE).min(file_hi),
                    );
                    let src =
                        &copy[(lo - page * PAGE_SIZE) as usize..(hi - page * PAGE_SIZE) as usize];
                    expected[(lo - file_lo) as usize..(hi - file_lo) as usize].copy_from_slice(src);
                }
                TouchPlan::Read { expected }
            }
        }
    }

    /// Advances the model by `op` and returns what the kernel may answer.
    pub fn apply(&mut self, op: &Op) -> Expect {
        match op {
            Op::Memfd { obj, size, .. } | Op::Tmpfs { obj, size, .. } => {
                self.objects.insert(obj.clone(), ObjectModel::new(*size));
                self.open.insert(obj.clone());
                if let Op::Tmpfs { on: Some(m), .. } = op {
                    self.on_mount.insert(obj.clone(), m.clone());
                }
                Expect::Ok
            }
            Op::Close { obj } => {
                self.open.remove(obj);
                Expect::Ok
            }
            Op::Threads
            | Op::Thread { .. }
            | Op::Join
            | Op::Delay { .. }
            | Op::Spin { .. }
            | Op::Mount { .. } => Expect::Ok,
            Op::Umount { mnt, detach } => self.umount(mnt, *detach),
            Op::Gem { obj, size, pinned } => {
                // The driver rounds GEM objects up to whole pages.
                let mut o = ObjectModel::new(size.next_multiple_of(PAGE_SIZE));
                o.pins = u32::from(*pinned);
                self.objects.insert(obj.clone(), o);
                self.open.insert(obj.clone());
                // Pinning at creation allocates every page from DMA32, which may run out.
                if *pinned {
                    Expect::OkOr(vec![errno::ENOMEM])
                } else {
                    Expect::Ok
                }
            }
            Op::Pin { obj } => {
                if let Some(o) = self.objects.get_mut(obj) {
                    o.pins += 1;
                }
                Expect::OkOr(vec![errno::ENOMEM])
            }
            Op::Unpin { obj } => match self.objects.get_mut(obj) {
                Some(o) if o.pins > 0 => {
                    o.pins -= 1;
                    Expect::Ok
                }
                _ => Expect::Errno(errno::EINVAL),
            },
            Op::Dma32 { .. } | Op::Zonecheck { .. } => Expect::Ok,
            Op::Ftruncate { obj, size } => {
                self.truncate(obj, *size);
                Expect::Ok
            }
            Op::Write {
                obj,
                off,
                len,
                seed,
            } => {
                if let Some(o) = self.objects.get_mut(obj) {
                    o.write(*off, *len, *seed);
                }
                Expect::Ok
            }
            Op::Punch { obj, off, len } => {
                if let Some(o) = self.objects.get_mut(obj) {
                    let end = (off + len).min(o.size);
                    o.punch(*off, end.saturating_sub(*off));
                }
                Expect::Ok
            }
            Op::Check { .. }
            | Op::Unlink { .. }
            | Op::Sysrq { .. }
            | Op::Corrupt { .. }
            | Op::Hold { .. } => Expect::Ok,
            Op::Mmap {
                map,
                obj,
                off,
                len,
                kind,
            } => {
                let m = MappingModel {
                    obj: obj.clone(),
                    off: *off,
                    len: *len,
                    kind: *kind,
                    private_pages: BTreeMap::new(),
                };
                self.maps.insert(map.clone(), m);
                Expect::Ok
            }
            Op::Munmap { map } => {
                self.maps.remove(map);
                Expect::Ok
            }
            Op::Touch {
                map,
                off,
                len,
                mode,
            } => self.touch(map, *off, *len, *mode),
            Op::Madvise {
                map,
                off,
                len,
                advice,
            } => self.madvise(map, *off, *len, *advice),
            Op::Reclaim { .. } => Expect::OkOr(vec![errno::EAGAIN]),
            Op::Thp { .. }
            | Op::Khugepaged
            | Op::Compact
            | Op::Mbind { .. }
            | Op::MovePages { .. }
            | Op::MigratePages { .. }
            | Op::Offline { .. }
            | Op::Online
            | Op::Hugetlb { .. } => moving_results(op),
            Op::Swapon { dev, .. } => self.set_swap(*dev, true),
            Op::Swapoff { dev } => self.set_swap(*dev, false),
        }
    }

    /// An unmount fails with EBUSY while a file on it is open or mapped (the descriptor's or
    /// the mapping's file pins the mount); otherwise the files on it are gone. A detached
    /// unmount succeeds at once; the files still open or mapped keep their contents.
    fn umount(&mut self, mnt: &str, detach: bool) -> Expect {
        let on: Vec<String> = self
            .on_mount
            .iter()
            .filter(|(_, m)| *m == mnt)
            .map(|(o, _)| o.clone())
            .collect();
        let in_use = |o: &String| self.open.contains(o) || self.maps.values().any(|m| m.obj == *o);
        if !detach && on.iter().any(in_use) {
            return Expect::Errno(errno::EBUSY);
        }
        let gone: Vec<String> = on.into_iter().filter(|o| !in_use(o)).collect();
        for o in gone {
            self.objects.remove(&o);
            self.on_mount.remove(&o);
        }
        Expect::Ok
    }

    fn set_swap(&mut self, dev: u8, on: bool) -> Expect {
        let Some(state) = self.swap_on.get_mut(usize::from(dev)) else {
            return Expect::Errno(errno::ENOENT);
        };
        match (*state, on) {
            (true, true) => Expect::Errno(errno::EBUSY),
            (false, false) => Expect::Errno(errno::EINVAL),
            (false, true) => {
                *state = true;
                Expect::Ok
            }
            (true, false) => {
                // swapoff can fail for want of memory; then the device stays on. The host
                // corrects this with the observed result (see `Model::observe`).
                *state = false;
                Expect::OkOr(vec![errno::ENOMEM])
            }
        }
    }

    /// Feeds back an observed result where the model allowed several outcomes with
    /// different effects (a failed swapoff leaves the device on).
    pub fn observe(&mut self, op: &Op, result: &OpResult) {
        match (op, result) {
            // swapoff failing for want of memory leaves the device on; EINVAL means it was off.
            (Op::Swapoff { dev }, OpResult::Errno(errno::ENOMEM)) => {
                if let Some(s) = self.swap_on.get_mut(usize::from(*dev)) {
                    *s = true;
                }
            }
            // A pin that failed (ENOMEM) took no pin.
            (
                Op::Pin { obj }
                | Op::Gem {
                    obj, pinned: true, ..
                },
                OpResult::Errno(_),
            ) => {
                if let Some(o) = self.objects.get_mut(obj) {
                    o.pins = o.pins.saturating_sub(1);
                }
            }
            _ => {}
        }
    }

    fn truncate(&mut self, obj: &str, size: u64) {
        if let Some(o) = self.objects.get_mut(obj) {
            o.truncate(size);
        }
        // Truncation unmaps private copies of pages wholly past the new end (even_cows).
        let first_gone = size.div_ceil(PAGE_SIZE);
        for m in self.maps.values_mut().filter(|m| m.obj == obj) {
            m.private_pages.retain(|&page, _| page < first_gone);
        }
    }

    fn touch(&mut self, map: &str, off: u64, len: u64, mode: TouchMode) -> Expect {
        let plan = self.touch_plan(map, off, len, mode);
        let TouchPlan::Write { len: n, seed } = plan else {
            return if plan == TouchPlan::Skip {
                Expect::Skip
            } else {
                Expect::Ok
            };
        };
        let Some(m) = self.maps.get(map).cloned() else {
            return Expect::Skip;
        };
        let file_lo = m.off + off;
        if m.kind.is_shared() {
            if let Some(o) = self.objects.get_mut(&m.obj) {
                o.write(file_lo, n, seed);
            }
            return Expect::Ok;
        }
        let Some(o) = self.objects.get(&m.obj) else {
            return Expect::Skip;
        };
        let mut copies = BTreeMap::new();
        for page in file_lo / PAGE_SIZE..(file_lo + n).div_ceil(PAGE_SIZE) {
            let mut copy = match m.private_pages.get(&page) {
                Some(c) => c.clone(),
                None => {
                    let mut c = vec![0u8; PAGE_SIZE as usize];
                    o.fill(page * PAGE_SIZE, &mut c);
                    c
                }
            };
            let (lo, hi) = (
                (page * PAGE_SIZE).max(file_lo),
                ((page + 1) * PAGE_SIZE).min(file_lo + n),
            );
            pattern::fill(
                seed,
                lo,
                &mut copy[(lo - page * PAGE_SIZE) as usize..(hi - page * PAGE_SIZE) as usize],
            );
            copies.insert(page, copy);
        }
        if let Some(m) = self.maps.get_mut(map) {
            m.private_pages.extend(copies);
        }
        Expect::Ok
    }

    fn madvise(&mut self, map: &str, off: u64, len: u64, advice: Advice) -> Expect {
        let Some(m) = self.maps.get(map).cloned() else {
            return Expect::Errno(errno::ENOMEM);
        };
        let (file_lo, file_hi) = (m.off + off, m.off + (off + len).next_multiple_of(PAGE_SIZE));
        if m.kind == MapKind::Gem {
            // GEM mappings are VM_PFNMAP: the LRU advices refuse them (can_madv_lru_vma),
            // WILLNEED is an fadvise of the DRM file (a no-op), and REMOVE's vfs_fallocate
            // refuses the DRM character device (measured on 6.1 and 6.12).
            return match advice {
                Advice::Pageout | Advice::Cold | Advice::Dontneed | Advice::Collapse => {
                    Expect::Errno(errno::EINVAL)
                }
                Advice::Willneed => Expect::Ok,
                Advice::Remove => Expect::Errno(errno::ENODEV),
                // VM_NO_KHUGEPAGED: the flag change is a no-op, not an error.
                Advice::Hugepage | Advice::Nohugepage => Expect::OkOr(vec![errno::EINVAL]),
                // get_user_pages of a VM_PFNMAP range fails.
                Advice::SoftOffline => Expect::OkOr(vec![errno::EFAULT, errno::EINVAL]),
            };
        }
        match advice {
            // These move or regroup pages without changing a byte: the oracle judges them by
            // where the pages went, and a result code says little (measured on 6.1: a
            // collapse that returns EINVAL has still moved pages).
            Advice::Collapse | Advice::Hugepage | Advice::Nohugepage | Advice::SoftOffline => {
                moving_advice_results(advice)
            }
            Advice::Pageout | Advice::Cold | Advice::Willneed => Expect::Ok,
            Advice::Dontneed => {
                if let Some(m) = self.maps.get_mut(map) {
                    m.private_pages
                        .retain(|&p, _| p < file_lo / PAGE_SIZE || p >= file_hi / PAGE_SIZE);
                }
                Expect::Ok
            }
            Advice::Remove if m.kind == MapKind::Private => Expect::Errno(errno::EACCES),
            Advice::Remove => {
                if let Some(o) = self.objects.get_mut(&m.obj) {
                    let end = file_hi.min(o.size);
                    o.punch(file_lo, end.saturating_sub(file_lo));
                }
                Expect::Ok
            }
        }
    }
}

/// What the page-moving operations may return. None changes a byte of any object; each may
/// fail for reasons the model cannot see (a node or page size the guest lacks, a busy memory
/// block, pages that would not migrate), so the oracle judges them by what the pages did (the
/// zone rule after every operation, the data rule at every later read) and not by the code.
/// docs/program-format.md lists why each code is allowed.
fn moving_results(op: &Op) -> Expect {
    use errno::*;
    Expect::OkOr(match op {
        // A kernel without CONFIG_TRANSPARENT_HUGEPAGE has no sysfs file.
        Op::Thp { .. } => vec![ENOENT, EINVAL],
        // ETIMEDOUT: khugepaged did not finish two full scans within the agent's bound.
        Op::Khugepaged => vec![ENOENT, ETIMEDOUT],
        Op::Compact => vec![ENOENT],
        // EINVAL: no such node; EIO: MPOL_MF_STRICT and some page could not be moved;
        // EFAULT: a hole in the range; EPERM: MOVE_ALL without CAP_SYS_NICE.
        Op::Mbind { .. } => vec![EINVAL, EIO, EFAULT, EPERM],
        // ENODEV/EINVAL: no such node; per-page failures land in the status array.
        Op::MovePages { .. } => vec![EINVAL, ENODEV, ENOENT, EFAULT, EACCES],
        Op::MigratePages { .. } => vec![EINVAL, EPERM],
        // ENODATA: the page is not resident (nothing to locate); ENOENT: no memory hotplug;
        // EBUSY/EINVAL: the block holds unmovable pages or spans zones; EINTR: the agent's
        // deadline interrupted a migration that kept retrying; EAGAIN/ENOMEM/EIO.
        Op::Offline { .. } => vec![ENODATA, ENOENT, EBUSY, EINVAL, EINTR, EAGAIN, ENOMEM, EIO],
        // EHWPOISON: the block holds pages a soft offline retired, and an earlier offline of
        // it succeeded around them; 6.12's memory_block_online() refuses such a block
        // (memblk_nr_poison(); 6.1.192 has no such check). Found by a Debian 6.12 campaign.
        Op::Online => vec![ENOENT, EINVAL, ENOMEM, EBUSY, EHWPOISON],
        // ENOENT: the guest has no pool of that size; a pool that cannot grow is not an error.
        Op::Hugetlb { .. } => vec![ENOENT, EINVAL, ENOMEM],
        _ => Vec::new(),
    })
}

fn moving_advice_results(advice: Advice) -> Expect {
    use errno::*;
    Expect::OkOr(match advice {
        // EINVAL: THP denied or not built, or (measured on 6.1) a range it partly collapsed;
        // EAGAIN: pages busy; ENOMEM: no huge page to be had.
        Advice::Collapse => vec![EINVAL, EAGAIN, ENOMEM],
        Advice::Hugepage | Advice::Nohugepage => vec![EINVAL],
        // EBUSY/EIO: a page that would not migrate; EINVAL/EPERM: kernels without
        // CONFIG_MEMORY_FAILURE or the privilege.
        Advice::SoftOffline => vec![EBUSY, EIO, EINVAL, EPERM, EFAULT],
        _ => Vec::new(),
    })
}

#[cfg(test)]
mod tests;
