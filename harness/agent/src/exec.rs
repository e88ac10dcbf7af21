//! The program executor, run in the forked child (inside the program's memory cgroup, pinned
//! to CPU 0). Each operation is performed with real syscalls; the reference model says what
//! must come back and whether a touch would fault (then it is skipped, never performed). After
//! each operation one `AgentMsg::Op` frame goes to the supervisor through the pipe.
//!
//! A threaded section (`threads` … `join`) runs in [`section`]: one OS thread per `thread`
//! block, started together at a barrier, each with the descriptors and mappings its block
//! uses moved into its own [`State`] (an object several blocks share: a duplicate descriptor
//! and a copy of the mapping for each further block).

mod section;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::c_void;
use std::fs::File;
use std::io::Write;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fallocate, open, FallocateFlags, OFlag};
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};
use nix::sys::stat::Mode;
use shmemfuzz_core::oracle::shared::Allowed;
use shmemfuzz_core::oracle::{pattern, Model, TouchPlan};
use shmemfuzz_core::program::threads::Progress;
use shmemfuzz_core::program::PAGE_SIZE;
use shmemfuzz_core::program::{Advice, MapKind, Op, Program, TouchMode};
use shmemfuzz_core::protocol::{
    write_frame, AgentMsg, DataCheck, ObjObs, OpRecord, OpResult, PageOwner, PageState,
    PagemapCheck,
};
use shmemfuzz_core::zoneinfo::PFN_4G;

use crate::gem::Dri;
use crate::moving;
use crate::records::Sink;

/// `include/linux/swap.h` (the libc crate does not carry them).
const SWAP_FLAG_PREFER: i32 = 0x8000;
const SWAP_FLAG_PRIO_MASK: i32 = 0x7fff;

/// `MADV_COLLAPSE` (Linux 6.1; the libc crate does not carry it yet).
const MADV_COLLAPSE: i32 = 25;

/// Chunk size for reads and writes, so a large object never needs a buffer of its size.
const CHUNK: usize = 1 << 20;

#[derive(Clone)]
struct Mapping {
    addr: NonNull<c_void>,
    len: usize,
    /// File offset of the mapping's first byte (pattern bytes are keyed by file offset).
    file_off: u64,
    obj: String,
    kind: MapKind,
}

impl Mapping {
    /// The address of byte `off` of the mapping (inside it: the parser checks ranges).
    fn at(&self, off: u64) -> *mut u8 {
        self.addr.as_ptr().cast::<u8>().wrapping_add(off as usize)
    }
}

// SAFETY: a mapping is an address range of this process; the `State` owning it moves to the
// thread that uses it during a section (and back after the join). An object the threads of a
// section share has a copy of its mapping in each of their states: the range stays mapped
// until the join (the scope rules refuse munmap of a shared object), and the threads only
// copy bytes in and out of it, as with any MAP_SHARED memory another process writes.
unsafe impl Send for Mapping {}

/// Everything the child needs to run a program.
pub struct Executor<'a> {
    pub program: &'a Program,
    /// Directory on the agent's tmpfs for this program's files.
    pub dir: String,
    /// The program's cgroup directory (for `memory.reclaim`).
    pub cgroup: String,
    pub swap_paths: &'a [String],
    pub swap_on: Vec<bool>,
    pub out: File,
    /// Trace the program's syscalls with KCOV, in the agent's buffer (the kernel has it).
    pub kcov: Option<&'a crate::kcov::Buffer>,
    /// The execution's draw seed for ranged `delay` and `spin`.
    pub draws: u64,
    /// When the program's execution started: records carry their start relative to it.
    pub epoch: Instant,
    /// When the supervisor forked this child: the start of the "program/start" part.
    pub forked_at: Instant,
    /// The host's port: records go there directly ([`crate::records`]).
    pub port: &'a File,
    /// The supervisor's acknowledgements of records too large for the port in one write.
    pub ack: File,
    /// What the supervisor reads of the records: the last one's time, the op in flight.
    pub shared: &'a crate::records::Shared,
    /// Where the child's time goes, summed over its operations (all threads).
    pub costs: Costs,
}

/// The child's share of a run, by part, in microseconds ([`AgentMsg::Phases`]): what the
/// benchmarks print under "program". Atomics because the threads of a section add to them.
#[derive(Default)]
pub struct Costs {
    observe: AtomicU64,
    records: AtomicU64,
    kcov: AtomicU64,
}

impl Costs {
    fn add(counter: &AtomicU64, since: Instant) {
        counter.fetch_add(since.elapsed().as_micros() as u64, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct State {
    fds: BTreeMap<String, OwnedFd>,
    maps: BTreeMap<String, Mapping>,
    /// The mock driver's device, opened at the first operation that needs it (shared with
    /// the threads of a section: GEM handles belong to the open file).
    dri: Option<Arc<Dri>>,
    /// GEM handles by object name.
    handles: BTreeMap<String, u32>,
    /// Objects whose pages are observed after every operation (DMA32-constrained or pinned).
    watched: BTreeSet<String>,
    /// The run's one page_owner record was taken (or tried).
    page_owner_taken: bool,
    /// Each watched object's PFNs at the last observation (0: not resident), to tell a page
    /// that just arrived above 4 GiB from one that was there already.
    last_pfns: BTreeMap<String, Vec<u64>>,
    /// `/proc/self/pagemap`, opened at the first observation; `None` without CAP_SYS_ADMIN
    /// (pagemap then reads every PFN as zero) or when it does not open.
    pagemap: std::cell::OnceCell<Option<File>>,
    /// Huge-page allocations for collapses ([`moving::collapse_allocs`]) counted when the
    /// previous operation of this state started: the start of the window in which a
    /// background collapse may have become visible.
    collapse_mark: Option<u64>,
}

fn open_pagemap() -> Option<File> {
    use caps::{CapSet, Capability};
    caps::has_cap(None, CapSet::Effective, Capability::CAP_SYS_ADMIN)
        .unwrap_or(false)
        .then(|| File::open("/proc/self/pagemap").ok())
        .flatten()
}

impl State {
    fn dri(&mut self) -> Result<&Dri, Errno> {
        if self.dri.is_none() {
            self.dri = Some(Arc::new(Dri::open()?));
        }
        self.dri.as_deref().ok_or(Errno::ENODEV)
    }

    fn handle(&self, obj: &str) -> Result<u32, Errno> {
        self.handles.get(obj).copied().ok_or(Errno::ENOENT)
    }

    /// Pages of every watched object still open, plus `extra` (a `zonecheck`'s object).
    fn observe(&self, extra: Option<&str>) -> (Vec<ObjObs>, Option<PagemapCheck>) {
        let Some(dri) = self.dri.as_ref() else {
            return (Vec::new(), None);
        };
        let observed: Vec<ObjObs> = self
            .watched
            .iter()
            .map(String::as_str)
            .chain(extra.filter(|e| !self.watched.contains(*e)))
            .filter_map(|obj| {
                let fd = self.fds.get(obj)?;
                let hint = self.last_pfns.get(obj).map_or(0, Vec::len);
                let (pages, _) = dri.pages_hinted(fd.as_raw_fd(), hint).ok()?;
                Some(ObjObs {
                    obj: obj.to_string(),
                    pages,
                })
            })
            .collect();
        let check = self.cross_check(&observed);
        (observed, check)
    }

    /// Compares PAGE_INFO with `/proc/self/pagemap` for every present page of a shared
    /// file mapping of an observed object: the PFNs must agree. Needs CAP_SYS_ADMIN
    /// (without it pagemap reads PFNs as zero), so `None` without it.
    fn cross_check(&self, observed: &[ObjObs]) -> Option<PagemapCheck> {
        let pagemap = self.pagemap.get_or_init(open_pagemap).as_ref()?;
        let mut check = PagemapCheck::default();
        for m in self.maps.values().filter(|m| m.kind == MapKind::Shared) {
            let Some(obs) = observed.iter().find(|o| o.obj == m.obj) else {
                continue;
            };
            let first_vpn = m.addr.as_ptr() as u64 / PAGE_SIZE;
            let pages = (m.len as u64).div_ceil(PAGE_SIZE) as usize;
            // One read for the whole mapping: 8 bytes per page.
            let mut entries = vec![0u8; pages * 8];
            let Ok(got) = nix::sys::uio::pread(pagemap, &mut entries, (first_vpn * 8) as i64)
            else {
                continue;
            };
            for (i, raw) in entries[..got - got % 8].chunks_exact(8).enumerate() {
                let entry = u64::from_le_bytes(raw.try_into().unwrap_or_default());
                if entry >> 63 == 0 {
                    continue; // not present in this process's page tables
                }
                let pfn = entry & ((1 << 55) - 1);
                check.compared += 1;
                let page = obs.pages.get((m.file_off / PAGE_SIZE) as usize + i);
                if !page.is_some_and(|p| p.state == PageState::Resident && p.pfn == pfn) {
                    check.mismatched += 1;
                }
            }
        }
        Some(check)
    }
}

impl Executor<'_> {
    /// Runs every operation; returns only when all are done (a signal may end it earlier).
    pub fn run(self) -> Result<(), String> {
        let mut model = Model::new(self.swap_on.clone());
        let mut st = State {
            // Without page_owner (most kernels) nothing is looked for, and no PFNs are kept.
            page_owner_taken: !crate::sys::page_owner_enabled(),
            ..State::default()
        };
        // A failure to start KCOV loses coverage, not the run. KCOV follows one task: a
        // section's threads trace themselves and their hits are folded in at the join.
        let mut kcov = self
            .kcov
            .map(crate::kcov::Kcov::start_on)
            .and_then(Result::ok);
        // The threads of a section write records too: one frame at a time.
        let out = Mutex::new(crate::records::Sink {
            port: self.port,
            pipe: &self.out,
            ack: &self.ack,
            shared: self.shared,
            progress: Progress::new(self.program),
            forked_at: self.forked_at,
        });
        let first_op = Instant::now();
        let (mut operations_us, mut sections_us) = (0, 0);
        let mut i = 0;
        while i < self.program.ops.len() {
            if self.program.ops[i] == Op::Threads {
                let t = Instant::now();
                i = self.run_section(&mut st, &mut model, i, &out, kcov.as_mut())?;
                sections_us += t.elapsed().as_micros() as u64;
                continue;
            }
            let t = Instant::now();
            if let Some(k) = kcov.as_mut() {
                k.reset();
            }
            Costs::add(&self.costs.kcov, t);
            let rec = self.step(&mut st, &mut model, i);
            operations_us += rec.micros;
            let t = Instant::now();
            if let Some(k) = kcov.as_mut() {
                k.collect();
            }
            Costs::add(&self.costs.kcov, t);
            send(&out, rec, &self.costs)?;
            i += 1;
        }
        let mut out = &self.out;
        let t = Instant::now();
        if let Some(k) = kcov {
            write_frame(&mut out, &AgentMsg::Kcov(k.finish()))
                .map_err(|e| format!("reporting KCOV coverage: {e}"))?;
        }
        Costs::add(&self.costs.kcov, t);
        let us = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let parts = vec![
            (
                "start".to_string(),
                micros_between(self.forked_at, first_op),
            ),
            ("operations".to_string(), operations_us),
            ("observe".to_string(), us(&self.costs.observe)),
            ("records".to_string(), us(&self.costs.records)),
            ("kcov".to_string(), us(&self.costs.kcov)),
            ("sections".to_string(), sections_us),
        ];
        write_frame(&mut out, &AgentMsg::Phases(parts))
            .map_err(|e| format!("reporting the program's phases: {e}"))?;
        let _ = out.flush();
        Ok(())
    }

    /// Performs operation `i`, advances `model` past it and returns its record.
    fn step(&self, st: &mut State, model: &mut Model, i: usize) -> OpRecord {
        let op = &self.program.ops[i];
        // A ranged delay or spin runs as the plain one its drawn value makes.
        let drawn = match op {
            Op::Delay {
                micros,
                upto: Some(hi),
            }
            | Op::Spin {
                iters: micros,
                upto: Some(hi),
            } => Some(shmemfuzz_core::program::draw(
                self.draws, i as u32, *micros, *hi,
            )),
            _ => None,
        };
        let concrete = match (op, drawn) {
            (Op::Delay { .. }, Some(v)) => Some(Op::Delay {
                micros: v,
                upto: None,
            }),
            (Op::Spin { .. }, Some(v)) => Some(Op::Spin {
                iters: v,
                upto: None,
            }),
            _ => None,
        };
        // khugepaged runs only after a `thp` turned shmem THP on: otherwise no vmstat reads.
        // A collapse allocates its huge page (thp_collapse_alloc) before the page becomes
        // visible, so one whose result this operation's observation sees allocated after the
        // previous operation started: that is the window compared, read after the observation.
        let thp = self.program.ops.iter().any(|o| matches!(o, Op::Thp { .. }));
        let allocs_now = thp.then(moving::collapse_allocs).flatten();
        let window_start = st.collapse_mark.or(allocs_now);
        st.collapse_mark = allocs_now;
        let start = Instant::now();
        let (result, data) = self.perform(st, model, concrete.as_ref().unwrap_or(op));
        model.apply(op);
        model.observe(op, &result);
        let micros = start.elapsed().as_micros() as u64;
        let extra = match op {
            Op::Zonecheck { obj } => Some(obj.as_str()),
            _ => None,
        };
        let observing = Instant::now();
        let (pages, pagemap) = st.observe(extra);
        let background_collapse = !matches!(op.action_word(), "collapse" | "khugepaged")
            && window_start.is_some_and(|b| moving::collapse_allocs().is_some_and(|a| a > b));
        let page_owner = if st.page_owner_taken {
            None
        } else {
            // The first page of a constrained (watched) object that has just arrived above
            // 4 GiB: it was elsewhere, or nowhere, at the last observation.
            let first = pages
                .iter()
                .filter(|o| st.watched.contains(&o.obj))
                .find_map(|o| {
                    let last = st.last_pfns.get(&o.obj);
                    let i = o.pages.iter().enumerate().position(|(i, p)| {
                        p.state == PageState::Resident
                            && p.pfn >= PFN_4G
                            && last.and_then(|l| l.get(i)) != Some(&p.pfn)
                    })?;
                    let p = &o.pages[i];
                    // page_owner keeps its record on a folio's head page.
                    let head = p.pfn & !((1u64 << p.order.min(20)) - 1);
                    Some((o.obj.clone(), i as u64, head))
                });
            first.and_then(|(obj, page, pfn)| {
                st.page_owner_taken = true;
                crate::sys::page_owner(pfn).map(|report| PageOwner {
                    obj,
                    page,
                    pfn,
                    report,
                })
            })
        };
        let keep_pfns = !st.page_owner_taken;
        for o in pages
            .iter()
            .filter(|o| keep_pfns && st.watched.contains(&o.obj))
        {
            let pfns = o
                .pages
                .iter()
                .map(|p| {
                    if p.state == PageState::Resident {
                        p.pfn
                    } else {
                        0
                    }
                })
                .collect();
            st.last_pfns.insert(o.obj.clone(), pfns);
        }
        let swap_used_kib = crate::sys::swap_used_kib();
        Costs::add(&self.costs.observe, observing);
        OpRecord {
            index: i as u32,
            result,
            data,
            micros,
            swap_used_kib,
            pages,
            pagemap,
            page_owner,
            drawn,
            background_collapse,
            start_micros: start.duration_since(self.epoch).as_micros() as u64,
        }
    }

    /// Where a tmpfs file lives: the agent's directory for the program, or the program's
    /// own mount it was created `on`.
    fn tmpfs_path(&self, obj: &str) -> String {
        let on = self.program.ops.iter().find_map(|op| match op {
            Op::Tmpfs { obj: o, on, .. } if o == obj => Some(on.as_deref()),
            _ => None,
        });
        match on.flatten() {
            Some(mnt) => format!("{}/{mnt}/{obj}", self.dir),
            None => format!("{}/{obj}", self.dir),
        }
    }

    fn fd<'s>(&self, st: &'s State, obj: &str) -> Result<&'s OwnedFd, Errno> {
        st.fds.get(obj).ok_or(Errno::EBADF)
    }

    fn perform(&self, st: &mut State, model: &Model, op: &Op) -> (OpResult, Option<DataCheck>) {
        let res = match op {
            Op::Check { obj, off, len } => {
                return match self
                    .fd(st, obj)
                    .and_then(|fd| check(fd, model, obj, *off, *len))
                {
                    Ok(d) => (OpResult::Ok, Some(d)),
                    Err(e) => (OpResult::Errno(e as i32), None),
                };
            }
            Op::Touch {
                map,
                off,
                len,
                mode,
            } => {
                let Some(m) = st.maps.get(map) else {
                    return (OpResult::Errno(libc::EBADF), None);
                };
                let plan = model.touch_plan(map, *off, *len, *mode);
                return touch(m, plan, *off, *mode, |expected| {
                    model.allowed_touch(map, *off, expected)
                });
            }
            other => self.perform_plain(st, other),
        };
        (
            res.map_or_else(|e| OpResult::Errno(e as i32), |()| OpResult::Ok),
            None,
        )
    }

    fn perform_plain(&self, st: &mut State, op: &Op) -> Result<(), Errno> {
        match op {
            Op::Memfd {
                obj,
                size,
                anon: true,
            } => {
                let (addr, len, fd) = crate::anon::create(*size)?;
                st.fds.insert(obj.clone(), fd);
                let base = Mapping {
                    addr,
                    len,
                    file_off: 0,
                    obj: obj.clone(),
                    kind: MapKind::Shared,
                };
                st.maps.insert(crate::anon::base_name(obj), base);
            }
            Op::Memfd { obj, size, .. } => {
                let name = std::ffi::CString::new(format!("shmemfuzz-{obj}"))
                    .map_err(|_| Errno::EINVAL)?;
                let fd = nix::sys::memfd::memfd_create(
                    &name,
                    nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC,
                )?;
                nix::unistd::ftruncate(&fd, *size as i64)?;
                st.fds.insert(obj.clone(), fd);
            }
            Op::Tmpfs { obj, size, .. } => {
                let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR | OFlag::O_CLOEXEC;
                let raw = open(
                    self.tmpfs_path(obj).as_str(),
                    flags,
                    Mode::from_bits_truncate(0o600),
                )?;
                // SAFETY: `open` just returned this descriptor and nothing else owns it.
                let fd = unsafe { OwnedFd::from_raw_fd(raw) };
                nix::unistd::ftruncate(&fd, *size as i64)?;
                st.fds.insert(obj.clone(), fd);
            }
            Op::Ftruncate { obj, size } => nix::unistd::ftruncate(self.fd(st, obj)?, *size as i64)?,
            Op::Write {
                obj,
                off,
                len,
                seed,
            }
            | Op::Corrupt {
                obj,
                off,
                len,
                seed,
            } => write_pattern(self.fd(st, obj)?, *off, *len, *seed)?,
            Op::Punch { obj, off, len } => {
                let flags =
                    FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
                fallocate(
                    self.fd(st, obj)?.as_raw_fd(),
                    flags,
                    *off as i64,
                    *len as i64,
                )?
            }
            Op::Mmap {
                map,
                obj,
                off,
                len,
                kind,
            } => {
                let n = NonZeroUsize::new(*len as usize).ok_or(Errno::EINVAL)?;
                let prot = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
                // A shared mapping of an anonymous object duplicates its base (only then: the
                // duplicate is itself a new mapping, which a private one must not leave behind).
                let dup = match kind {
                    MapKind::Shared => st
                        .maps
                        .get(&crate::anon::base_name(obj))
                        .and_then(|b| crate::anon::duplicate(b.addr, b.len, *off, n.get())),
                    _ => None,
                };
                // SAFETY (all arms): a fresh mapping at an address the kernel picks; nothing aliases it.
                let addr = match (kind, dup) {
                    (_, Some(dup)) => dup?,
                    (MapKind::Shared, None) => unsafe {
                        mmap(
                            None,
                            n,
                            prot,
                            MapFlags::MAP_SHARED,
                            self.fd(st, obj)?,
                            *off as i64,
                        )?
                    },
                    (MapKind::Private, None) => unsafe {
                        mmap(
                            None,
                            n,
                            prot,
                            MapFlags::MAP_PRIVATE,
                            self.fd(st, obj)?,
                            *off as i64,
                        )?
                    },
                    (MapKind::Gem, None) => {
                        let handle = st.handle(obj)?;
                        let dri = st.dri()?;
                        let fake = dri.map_offset(handle)?;
                        unsafe {
                            mmap(
                                None,
                                n,
                                prot,
                                MapFlags::MAP_SHARED,
                                dri.device(),
                                fake as i64,
                            )?
                        }
                    }
                };
                st.maps.insert(
                    map.clone(),
                    Mapping {
                        addr,
                        len: *len as usize,
                        file_off: *off,
                        obj: obj.clone(),
                        kind: *kind,
                    },
                );
            }
            Op::Munmap { map } => {
                let m = st.maps.remove(map).ok_or(Errno::EINVAL)?;
                // SAFETY: the mapping was created by `mmap` above with this length and is not used again.
                unsafe { munmap(m.addr, m.len)? }
            }
            Op::Madvise {
                map,
                off,
                len,
                advice,
            } => {
                let m = st.maps.get(map).ok_or(Errno::EINVAL)?;
                let adv = match advice {
                    Advice::Pageout => libc::MADV_PAGEOUT,
                    Advice::Cold => libc::MADV_COLD,
                    Advice::Willneed => libc::MADV_WILLNEED,
                    Advice::Dontneed => libc::MADV_DONTNEED,
                    Advice::Remove => libc::MADV_REMOVE,
                    Advice::Collapse => MADV_COLLAPSE,
                    Advice::Hugepage => libc::MADV_HUGEPAGE,
                    Advice::Nohugepage => libc::MADV_NOHUGEPAGE,
                    Advice::SoftOffline => libc::MADV_SOFT_OFFLINE,
                };
                // SAFETY: the range lies inside a mapping this process owns (checked by the parser).
                let rc = unsafe {
                    libc::madvise(
                        m.addr.as_ptr().cast::<u8>().add(*off as usize).cast(),
                        *len as usize,
                        adv,
                    )
                };
                Errno::result(rc)?;
            }
            Op::Reclaim { bytes } => crate::sys::write_file(
                &format!("{}/memory.reclaim", self.cgroup),
                &bytes.to_string(),
            )?,
            Op::Swapon { dev, prio } => {
                let path = self.swap_path(*dev)?;
                let flags = match prio {
                    Some(p) if *p >= 0 => SWAP_FLAG_PREFER | (i32::from(*p) & SWAP_FLAG_PRIO_MASK),
                    _ => 0,
                };
                // SAFETY: `path` is a valid NUL-terminated string.
                Errno::result(unsafe { libc::swapon(path.as_ptr(), flags) })?;
            }
            Op::Swapoff { dev } => {
                let path = self.swap_path(*dev)?;
                // SAFETY: `path` is a valid NUL-terminated string.
                Errno::result(unsafe { libc::swapoff(path.as_ptr()) })?;
            }
            Op::Unlink { obj } => nix::unistd::unlink(self.tmpfs_path(obj).as_str())?,
            Op::Mount { mnt, huge } => {
                let options = match huge {
                    Some(h) => format!("mode=0700,huge={}", h.keyword()),
                    None => "mode=0700".to_string(),
                };
                let path = format!("{}/{mnt}", self.dir);
                nix::unistd::mkdir(path.as_str(), Mode::from_bits_truncate(0o700))?;
                nix::mount::mount(
                    Some("tmpfs"),
                    path.as_str(),
                    Some("tmpfs"),
                    nix::mount::MsFlags::empty(),
                    Some(options.as_str()),
                )?;
            }
            Op::Umount { mnt, detach } => {
                let flags = if *detach {
                    nix::mount::MntFlags::MNT_DETACH
                } else {
                    nix::mount::MntFlags::empty()
                };
                nix::mount::umount2(format!("{}/{mnt}", self.dir).as_str(), flags)?
            }
            Op::Delay { micros, .. } => {
                std::thread::sleep(Duration::from_micros(u64::from(*micros)))
            }
            Op::Spin { iters, .. } => {
                for i in 0..*iters {
                    std::hint::black_box(i);
                    std::hint::spin_loop();
                }
            }
            // The section's structure: `section` does the work around them.
            Op::Threads | Op::Thread { .. } | Op::Join => {}
            Op::Close { obj } => {
                let fd = st.fds.remove(obj).ok_or(Errno::EBADF)?;
                if let Some(base) = st.maps.remove(&crate::anon::base_name(obj)) {
                    // SAFETY: the base mapping `anon::create` made, never handed out.
                    unsafe { munmap(base.addr, base.len)? }
                }
                nix::unistd::close(std::os::fd::IntoRawFd::into_raw_fd(fd))?;
                if let Some(handle) = st.handles.remove(obj) {
                    st.dri()?.close_handle(handle)?;
                }
            }
            Op::Gem { obj, size, pinned } => {
                let dri = st.dri()?;
                let handle = dri.create(*size, *pinned)?;
                let fd = dri.shmem_fd(handle)?;
                st.fds.insert(obj.clone(), fd);
                st.handles.insert(obj.clone(), handle);
                st.watched.insert(obj.clone());
            }
            Op::Dma32 { obj } => {
                let fd = self.fd(st, obj)?.as_raw_fd();
                st.dri()?.set_dma32(fd)?;
                st.watched.insert(obj.clone());
            }
            Op::Pin { obj } => {
                let handle = st.handle(obj)?;
                st.dri()?.pin(handle)?
            }
            Op::Unpin { obj } => {
                let handle = st.handle(obj)?;
                st.dri()?.unpin(handle)?
            }
            Op::Zonecheck { obj } => {
                self.fd(st, obj)?;
                st.dri()?;
            }
            Op::Sysrq { key } => crate::sys::write_file("/proc/sysrq-trigger", &key.to_string())?,
            Op::Hold { obj } => hold(st, self.fd(st, obj)?.as_raw_fd(), self.shared)?,
            Op::Thp { mode, size: None } => moving::set_thp(*mode)?,
            Op::Thp {
                mode,
                size: Some(s),
            } => moving::set_thp_size(*s, *mode)?,
            Op::Khugepaged => moving::khugepaged_pass()?,
            Op::Compact => moving::compact()?,
            Op::Mbind {
                map,
                off,
                len,
                node,
                flags,
            } => {
                let m = st.maps.get(map).ok_or(Errno::EINVAL)?;
                moving::mbind(m.at(*off), *len as usize, *node, *flags)?
            }
            Op::MovePages {
                map,
                off,
                len,
                node,
            } => {
                let m = st.maps.get(map).ok_or(Errno::EINVAL)?;
                moving::move_pages(m.at(*off), *len as usize, *node)?
            }
            Op::MigratePages { from, to } => moving::migrate_pages(*from, *to)?,
            Op::Offline { obj, page } => {
                let fd = self.fd(st, obj)?.as_raw_fd();
                let (pages, _) = st.dri()?.pages(fd)?;
                let p = pages.get(*page as usize).ok_or(Errno::ENODATA)?;
                if p.state != PageState::Resident {
                    return Err(Errno::ENODATA);
                }
                moving::offline_pfn(p.pfn)?
            }
            Op::Online => moving::online_all()?,
            Op::Hugetlb { size_kb, count } => moving::hugetlb(*size_kb, *count)?,
            Op::Check { .. } | Op::Touch { .. } => unreachable!("handled in perform"),
        }
        Ok(())
    }

    fn swap_path(&self, dev: u8) -> Result<std::ffi::CString, Errno> {
        let p = self.swap_paths.get(usize::from(dev)).ok_or(Errno::ENOENT)?;
        std::ffi::CString::new(p.as_str()).map_err(|_| Errno::EINVAL)
    }
}

/// Sends one record to the host (one frame at a time, whichever thread).
fn send(out: &Mutex<Sink<'_>>, rec: OpRecord, costs: &Costs) -> Result<(), String> {
    let t = Instant::now();
    out.lock()
        .map_err(|_| "a thread died holding the record channel")?
        .record(rec)?;
    Costs::add(&costs.records, t);
    Ok(())
}

/// `hold` (test only): a copy of this process keeps descriptor `keep` open and sleeps
/// forever. It closes every other descriptor (the record pipe among them: the supervisor
/// waits for its end) and unmaps the program's mappings and the record channel's shared
/// page (shmem too), so only `keep`'s object outlives the program.
fn hold(st: &State, keep: i32, shared: &crate::records::Shared) -> Result<(), Errno> {
    let shared_page = (shared as *const crate::records::Shared)
        .cast_mut()
        .cast::<c_void>();
    // SAFETY: the copy only makes raw syscalls before it sleeps: no allocation, no locks.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Parent { .. } => Ok(()),
        nix::unistd::ForkResult::Child => {
            // SAFETY: close_range and munmap of ranges this process owns; then pause.
            unsafe {
                libc::syscall(libc::SYS_close_range, 3u32, (keep - 1) as u32, 0u32);
                libc::syscall(libc::SYS_close_range, (keep + 1) as u32, u32::MAX, 0u32);
                for m in st.maps.values() {
                    libc::munmap(m.addr.as_ptr(), m.len);
                }
                libc::munmap(shared_page, 4096);
                loop {
                    libc::pause();
                }
            }
        }
    }
}

fn micros_between(from: Instant, to: Instant) -> u64 {
    to.saturating_duration_since(from).as_micros() as u64
}

fn write_pattern(fd: &OwnedFd, off: u64, len: u64, seed: u32) -> Result<(), Errno> {
    let mut buf = vec![0u8; CHUNK.min(len as usize)];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(buf.len() as u64) as usize;
        pattern::fill(seed, off + done, &mut buf[..n]);
        let mut written = 0;
        while written < n {
            written += nix::sys::uio::pwrite(
                fd.as_fd(),
                &buf[written..n],
                (off + done) as i64 + written as i64,
            )?;
        }
        done += n as u64;
    }
    Ok(())
}

/// `pread` the range and compare with the model (short reads at end-of-file are expected;
/// inside a section, bytes of another thread's racing write are too).
fn check(fd: &OwnedFd, model: &Model, obj: &str, off: u64, len: u64) -> Result<DataCheck, Errno> {
    let allowed = model.allowed_read(obj, off, len);
    let actual = read_back(fd, off, len, allowed.own.len())?;
    Ok(allowed.compare(off, &actual))
}

/// Reads `len` bytes at `off`, expecting `expected_len` of them (less at end-of-file), and one
/// byte more when fewer are expected (it must not be readable).
fn read_back(fd: &OwnedFd, off: u64, len: u64, expected_len: usize) -> Result<Vec<u8>, Errno> {
    let mut actual = vec![0u8; expected_len];
    let mut got = 0usize;
    while got < actual.len() {
        let n = nix::sys::uio::pread(fd.as_fd(), &mut actual[got..], (off + got as u64) as i64)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    // One byte more than the model expects must not be readable (end-of-file is where the model says).
    let mut extra = [0u8; 1];
    if (expected_len as u64) < len {
        got += nix::sys::uio::pread(fd.as_fd(), &mut extra, (off + expected_len as u64) as i64)?;
    }
    actual.resize(got.max(actual.len()), extra[0]);
    actual.truncate(got);
    Ok(actual)
}

/// Accesses the mapping through the CPU, as the model's plan says; `allowed` says what a read
/// may find besides the plan's bytes (another thread's racing writes).
fn touch(
    m: &Mapping,
    plan: TouchPlan,
    off: u64,
    mode: TouchMode,
    allowed: impl FnOnce(Vec<u8>) -> Allowed,
) -> (OpResult, Option<DataCheck>) {
    // SAFETY (both arms): the range was checked against the mapping's length by the parser and
    // against end-of-file by the model, so every page is mapped and backed: no SIGBUS.
    let base = unsafe { m.addr.as_ptr().cast::<u8>().add(off as usize) };
    match (plan, mode) {
        (TouchPlan::Skip, _) => (OpResult::Skipped, None),
        (TouchPlan::Read { expected }, _) => {
            let mut actual = vec![0u8; expected.len()];
            // SAFETY: see above; the bytes are plain data (any value is a valid u8). Another
            // thread sharing the object may write them meanwhile: the model allows that.
            unsafe { std::ptr::copy_nonoverlapping(base, actual.as_mut_ptr(), actual.len()) };
            (OpResult::Ok, Some(allowed(expected).compare(off, &actual)))
        }
        (TouchPlan::Write { len, seed }, TouchMode::Write { .. }) => {
            let mut buf = vec![0u8; CHUNK.min(len as usize)];
            let mut done = 0u64;
            while done < len {
                let n = (len - done).min(buf.len() as u64) as usize;
                pattern::fill(seed, m.file_off + off + done, &mut buf[..n]);
                // SAFETY: see above.
                unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), base.add(done as usize), n) };
                done += n as u64;
            }
            (OpResult::Ok, None)
        }
        (TouchPlan::Write { .. }, TouchMode::Read) => (OpResult::Errno(libc::EINVAL), None),
    }
}
