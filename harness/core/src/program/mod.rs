//! The program model: a short sequence of operations on named objects.
//!
//! - [`Op`] and its argument types live here.
//! - [`text`]: the readable text form (one operation a line) and its parser.
//! - [`scope`]: which names are live at each point; shared by the parser and the
//!   `Arbitrary` decoder so both only ever yield valid programs.
//! - [`gen`]: decoding fuzzer bytes into a valid program with `arbitrary` (fixed-size records
//!   per operation), and encoding programs back into such bytes.
//! - [`mutate`]: the structure-aware mutator over those records.
//!
//! Names: objects (memfd, tmpfs file, GEM object) and mappings are named by the program; swap devices are
//! named `swap0`, `swap1`, … after the virtio-blk disks the host attaches.

pub mod gen;
pub mod mutate;
pub mod scope;
pub mod text;
pub mod threads;

use serde::{Deserialize, Serialize};

pub use text::{parse, ParseError};

/// Whether swap device `swap<dev>` is on when a program starts: swap0 is, the others are
/// not (the agent restores this before every program; the oracle, the trace and exported C
/// start from it).
pub fn swap_on_at_start(dev: usize) -> bool {
    dev == 0
}

/// The on/off state of `n` swap devices when a program starts ([`swap_on_at_start`]).
pub fn initial_swap_state(n: usize) -> Vec<bool> {
    (0..n).map(swap_on_at_start).collect()
}

/// Page size of every kernel we boot (x86_64).
pub const PAGE_SIZE: u64 = 4096;
/// Largest object (file size) a program may ask for. Bounded so that one program cannot
/// exhaust a 2 GiB guest, and so that DMA32 objects fit in the 1 GiB DMA32 zone.
pub const MAX_OBJECT_SIZE: u64 = 256 << 20;
/// Largest GEM object: DMA32 is about 1 GiB, and a pinned object must fit in it twice over.
pub const MAX_GEM_SIZE: u64 = 128 << 20;
/// Largest byte count for `reclaim`.
pub const MAX_RECLAIM: u64 = 1 << 30;
/// Number of swap devices the default VM attaches (`swap0`, `swap1`).
pub const DEFAULT_SWAP_DEVICES: u8 = 2;
/// Upper bound on operations in one program, so decoding and execution stay bounded.
pub const MAX_OPS: usize = 512;
/// Most threads one threaded section may start.
pub const MAX_THREADS: usize = 8;
/// Longest `delay` (1 s): well inside any per-operation deadline.
pub const MAX_DELAY_US: u32 = 1_000_000;
/// Most iterations of a `spin` busy loop.
pub const MAX_SPIN: u32 = 100_000_000;

/// A program: operations plus the comment and blank lines that precede each of them, so that
/// the text form round-trips exactly.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Program {
    pub ops: Vec<Op>,
    /// `notes[i]` are the comment/blank lines printed before `ops[i]`;
    /// `notes[ops.len()]` (if present) are the trailing ones.
    pub notes: Vec<Vec<String>>,
}

/// An object name (memfd or tmpfs file): `[a-z][a-z0-9_]*`, at most 16 bytes.
pub type ObjName = String;
/// A mapping name, same syntax as object names and in the same namespace.
pub type MapName = String;
/// A private tmpfs mount's name, same syntax and namespace as object names.
pub type MntName = String;

/// The `madvise(2)` advice values programs use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Advice {
    Pageout,
    Cold,
    Willneed,
    Dontneed,
    Remove,
    /// `MADV_COLLAPSE`: collapse the range into huge pages now (khugepaged's work, synchronous).
    Collapse,
    /// `MADV_HUGEPAGE`: the range wants huge pages (khugepaged scans it under `advise`).
    Hugepage,
    /// `MADV_NOHUGEPAGE`.
    Nohugepage,
    /// `MADV_SOFT_OFFLINE`: migrate each page away and retire its frame (hwpoison).
    SoftOffline,
}

impl Advice {
    pub const ALL: [Advice; 9] = [
        Advice::Pageout,
        Advice::Cold,
        Advice::Willneed,
        Advice::Dontneed,
        Advice::Remove,
        Advice::Collapse,
        Advice::Hugepage,
        Advice::Nohugepage,
        Advice::SoftOffline,
    ];

    /// The advices that existed before the page-moving ones (the decoder's first table).
    pub const SWAP: [Advice; 5] = [
        Advice::Pageout,
        Advice::Cold,
        Advice::Willneed,
        Advice::Dontneed,
        Advice::Remove,
    ];

    /// The advices that move or regroup pages outside swap.
    pub const MOVING: [Advice; 4] = [
        Advice::Collapse,
        Advice::Hugepage,
        Advice::Nohugepage,
        Advice::SoftOffline,
    ];

    pub fn keyword(self) -> &'static str {
        match self {
            Advice::Pageout => "pageout",
            Advice::Cold => "cold",
            Advice::Willneed => "willneed",
            Advice::Dontneed => "dontneed",
            Advice::Remove => "remove",
            Advice::Collapse => "collapse",
            Advice::Hugepage => "hugepage",
            Advice::Nohugepage => "nohugepage",
            Advice::SoftOffline => "soft-offline",
        }
    }
}

/// The guest's shmem THP policy (`/sys/kernel/mm/transparent_hugepage/shmem_enabled`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ThpMode {
    Never,
    Always,
    WithinSize,
    Advise,
    /// The agent's default: no huge pages for shmem at all, `MADV_COLLAPSE` included.
    Deny,
    Force,
}

impl ThpMode {
    pub const ALL: [ThpMode; 6] = [
        ThpMode::Never,
        ThpMode::Always,
        ThpMode::WithinSize,
        ThpMode::Advise,
        ThpMode::Deny,
        ThpMode::Force,
    ];

    /// The modes a tmpfs mount's `huge=` option takes (`deny` and `force` are sysfs-only).
    pub const MOUNT: [ThpMode; 4] = [
        ThpMode::Never,
        ThpMode::Always,
        ThpMode::WithinSize,
        ThpMode::Advise,
    ];

    /// The word `shmem_enabled` takes (and programs use).
    pub fn keyword(self) -> &'static str {
        match self {
            ThpMode::Never => "never",
            ThpMode::Always => "always",
            ThpMode::WithinSize => "within_size",
            ThpMode::Advise => "advise",
            ThpMode::Deny => "deny",
            ThpMode::Force => "force",
        }
    }
}

/// `mbind(2)` flags a program may pass (`MPOL_MF_*`), as a bit set in this order:
/// bit 0 `move` (MPOL_MF_MOVE), bit 1 `move-all` (MPOL_MF_MOVE_ALL), bit 2 `strict`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MbindFlags(pub u8);

impl MbindFlags {
    /// Each flag's word and bit.
    pub const WORDS: [(&'static str, u8); 3] = [("move", 1), ("move-all", 2), ("strict", 4)];

    pub fn has(self, word: &str) -> bool {
        Self::WORDS
            .iter()
            .any(|(w, bit)| *w == word && self.0 & bit != 0)
    }

    /// The words of the flags that are set, in canonical order.
    pub fn words(self) -> impl Iterator<Item = &'static str> {
        Self::WORDS
            .into_iter()
            .filter(move |(_, bit)| self.0 & bit != 0)
            .map(|(w, _)| w)
    }
}

/// Page sizes of the hugetlb pools a program may grow (`hugetlb 2M 16`, `hugetlb 1G 1`).
pub const HUGETLB_SIZES_KB: [u32; 2] = [2048, 1 << 20];
/// Most pages a `hugetlb` pool may be asked to hold (a bound, not what the guest can give).
pub const MAX_HUGETLB_PAGES: u32 = 512;
/// Highest NUMA node number a program may name (the guest has one or two).
pub const MAX_NODE: u8 = 7;

/// What a mapping maps and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MapKind {
    /// `MAP_SHARED` of the object's file (for a GEM object: its shmem file).
    Shared,
    /// `MAP_PRIVATE` of the object's file.
    Private,
    /// A GEM object mapped through the DRM device (dumb map offset): `VM_PFNMAP`, shared,
    /// pages inserted by the mock driver's fault handler.
    Gem,
}

impl MapKind {
    pub const ALL: [MapKind; 3] = [MapKind::Shared, MapKind::Private, MapKind::Gem];

    pub fn keyword(self) -> &'static str {
        match self {
            MapKind::Shared => "shared",
            MapKind::Private => "private",
            MapKind::Gem => "gem",
        }
    }

    /// Whether writes through the mapping reach the file.
    pub fn is_shared(self) -> bool {
        self != MapKind::Private
    }
}

/// How a `touch` accesses a mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TouchMode {
    /// Read every byte of the range (faulting pages in) and check it against the model.
    Read,
    /// Write the seeded pattern over the range.
    Write { seed: u32 },
}

/// One operation. Offsets and lengths are in bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// `memfd_create` + `ftruncate(size)`; with `anon`, an anonymous shared mapping
    /// (`MAP_SHARED|MAP_ANONYMOUS`, the shmem file the kernel makes for it) in its place: its
    /// mappings are then anonymous shmem VMAs, the only ones 6.12's per-size shmem mTHP
    /// settings apply to.
    Memfd {
        obj: ObjName,
        size: u64,
        #[serde(default)]
        anon: bool,
    },
    /// Create a file on the agent's per-program tmpfs directory (or on the program's own
    /// tmpfs mount `on`) + `ftruncate(size)`.
    Tmpfs {
        obj: ObjName,
        size: u64,
        on: Option<MntName>,
    },
    Ftruncate {
        obj: ObjName,
        size: u64,
    },
    /// `pwrite` of the seeded pattern.
    Write {
        obj: ObjName,
        off: u64,
        len: u64,
        seed: u32,
    },
    /// `pread` and compare every byte with the model.
    Check {
        obj: ObjName,
        off: u64,
        len: u64,
    },
    /// `fallocate(PUNCH_HOLE | KEEP_SIZE)`.
    Punch {
        obj: ObjName,
        off: u64,
        len: u64,
    },
    Mmap {
        map: MapName,
        obj: ObjName,
        off: u64,
        len: u64,
        kind: MapKind,
    },
    Munmap {
        map: MapName,
    },
    /// Access a mapped range through the CPU.
    Touch {
        map: MapName,
        off: u64,
        len: u64,
        mode: TouchMode,
    },
    Madvise {
        map: MapName,
        off: u64,
        len: u64,
        advice: Advice,
    },
    /// Write `bytes` to the program cgroup's `memory.reclaim`.
    Reclaim {
        bytes: u64,
    },
    Swapon {
        dev: u8,
        prio: Option<i16>,
    },
    Swapoff {
        dev: u8,
    },
    /// Unlink a tmpfs file (memfds have no name to unlink).
    Unlink {
        obj: ObjName,
    },
    /// Close the object's descriptor (mappings keep the file alive).
    Close {
        obj: ObjName,
    },
    /// A GEM object of the mock GMA500 driver (dumb-buffer create; its shmem mapping has the
    /// `GFP_KERNEL | __GFP_DMA32` mask), optionally pinned at creation.
    Gem {
        obj: ObjName,
        size: u64,
        pinned: bool,
    },
    /// Apply `GFP_KERNEL | __GFP_DMA32` to a memfd's or tmpfs file's mapping (through the
    /// mock driver, as a driver importing the file would).
    Dma32 {
        obj: ObjName,
    },
    /// Pin a GEM object's pages (as `psb_gem_pin` does to put them in the GTT).
    Pin {
        obj: ObjName,
    },
    Unpin {
        obj: ObjName,
    },
    /// Observe every page of the object now and hold it to the zone rules.
    Zonecheck {
        obj: ObjName,
    },
    /// Opens a threaded section: the `thread` blocks up to [`Op::Join`] start together (a
    /// barrier) and are joined (see [`threads`]).
    Threads,
    /// Starts the block of operations one thread of the section runs, in order.
    Thread {
        name: String,
    },
    /// Joins every thread of the section: the next quiescent point.
    Join,
    /// Sleeps `micros` microseconds (to shift one thread's operations against another's);
    /// with `upto`, a value in `micros..=upto` drawn per execution (see [`draw`]).
    Delay {
        micros: u32,
        upto: Option<u32>,
    },
    /// Busy-loops `iters` iterations (a finer, CPU-bound delay); with `upto`, drawn per
    /// execution from `iters..=upto`.
    Spin {
        iters: u32,
        upto: Option<u32>,
    },
    /// Mounts a private tmpfs for the program (under the program's directory), with the
    /// `huge=` option when given (the per-mount THP policy: never, always, within_size,
    /// advise).
    Mount {
        mnt: MntName,
        huge: Option<ThpMode>,
    },
    /// Unmounts it: EBUSY while a file on it is open or mapped; otherwise its files go.
    /// `detach` (`MNT_DETACH`) always succeeds: the mount leaves the namespace at once and
    /// goes (with its files) when the last open descriptor or mapping of them does.
    Umount {
        mnt: MntName,
        detach: bool,
    },
    /// Sets the guest's shmem THP policy for the rest of the program (restored after it).
    /// With `size`, the per-size policy of that folio size instead
    /// (`hugepages-<size>kB/shmem_enabled`, 6.12; anonymous shmem mappings only).
    Thp {
        mode: ThpMode,
        #[serde(default)]
        size: Option<u64>,
    },
    /// One khugepaged pass: scan settings made fast, wait for two full scans, restored.
    Khugepaged,
    /// `echo 1 > /proc/sys/vm/compact_memory`.
    Compact,
    /// `mbind(MPOL_BIND, {node})` on a mapping's range with `flags`.
    Mbind {
        map: MapName,
        off: u64,
        len: u64,
        node: u8,
        flags: MbindFlags,
    },
    /// `move_pages(2)` of every page of a mapping's range to `node`.
    MovePages {
        map: MapName,
        off: u64,
        len: u64,
        node: u8,
    },
    /// `migrate_pages(2)` of the program's pages from node `from` to node `to`.
    MigratePages {
        from: u8,
        to: u8,
    },
    /// Offlines the memory block that holds page `page` of the object (its PFN from
    /// PAGE_INFO); the teardown onlines it again.
    Offline {
        obj: ObjName,
        page: u64,
    },
    /// Onlines every offline memory block.
    Online,
    /// Sets the hugetlb pool of `size_kb` pages to `count` pages (a 1 GiB page comes from
    /// `alloc_contig_range`, which migrates what is in its way); the teardown empties it.
    Hugetlb {
        size_kb: u32,
        count: u32,
    },
    /// Test only: `pwrite` the pattern behind the model's back (an unmodelled write path),
    /// so a later check must flag the data.
    Corrupt {
        obj: ObjName,
        off: u64,
        len: u64,
        seed: u32,
    },
    /// Test only: write `key` to `/proc/sysrq-trigger` (`c` panics the guest).
    Sysrq {
        key: char,
    },
    /// Test only: a process outside the program keeps `obj` open after the program ends,
    /// so its pages outlive the teardown: the leak check must call them a leak.
    Hold {
        obj: ObjName,
    },
}

impl Op {
    /// The keyword that starts this operation's line.
    pub fn keyword(&self) -> &'static str {
        match self {
            Op::Memfd { .. } => "memfd",
            Op::Tmpfs { .. } => "tmpfs",
            Op::Ftruncate { .. } => "ftruncate",
            Op::Write { .. } => "write",
            Op::Check { .. } => "check",
            Op::Punch { .. } => "punch",
            Op::Mmap { .. } => "mmap",
            Op::Munmap { .. } => "munmap",
            Op::Touch { .. } => "touch",
            Op::Madvise { .. } => "madvise",
            Op::Reclaim { .. } => "reclaim",
            Op::Swapon { .. } => "swapon",
            Op::Swapoff { .. } => "swapoff",
            Op::Unlink { .. } => "unlink",
            Op::Close { .. } => "close",
            Op::Gem { .. } => "gem",
            Op::Dma32 { .. } => "dma32",
            Op::Pin { .. } => "pin",
            Op::Unpin { .. } => "unpin",
            Op::Zonecheck { .. } => "zonecheck",
            Op::Threads => "threads",
            Op::Thread { .. } => "thread",
            Op::Join => "join",
            Op::Delay { .. } => "delay",
            Op::Spin { .. } => "spin",
            Op::Mount { .. } => "mount",
            Op::Umount { .. } => "umount",
            Op::Corrupt { .. } => "corrupt",
            Op::Sysrq { .. } => "sysrq",
            Op::Hold { .. } => "hold",
            Op::Thp { .. } => "thp",
            Op::Khugepaged => "khugepaged",
            Op::Compact => "compact",
            Op::Mbind { .. } => "mbind",
            Op::MovePages { .. } => "move-pages",
            Op::MigratePages { .. } => "migrate-pages",
            Op::Offline { .. } => "offline",
            Op::Online => "online",
            Op::Hugetlb { .. } => "hugetlb",
        }
    }

    /// What the operation does, in one word: the advice of a `madvise` (`pageout`,
    /// `soft-offline`, …), else the keyword. Zone signatures name where a page arrived with
    /// it, and the fuzzer's outcome features are keyed on it.
    pub fn action_word(&self) -> &'static str {
        match self {
            Op::Madvise { advice, .. } => advice.keyword(),
            other => other.keyword(),
        }
    }

    /// Operations that exist only so tests can provoke findings; `run` refuses them unless
    /// asked, and the fuzzer never generates them.
    pub fn is_test_only(&self) -> bool {
        matches!(
            self,
            Op::Corrupt { .. } | Op::Sysrq { .. } | Op::Hold { .. }
        )
    }

    /// Whether this operation goes through the mock driver's DRM device.
    pub fn uses_drm(&self) -> bool {
        matches!(
            self,
            Op::Gem { .. }
                | Op::Dma32 { .. }
                | Op::Pin { .. }
                | Op::Unpin { .. }
                | Op::Zonecheck { .. }
                | Op::Offline { .. }
                | Op::Mmap {
                    kind: MapKind::Gem,
                    ..
                }
        )
    }

    /// The name this operation declares (an object, a mapping or a mount), if any.
    pub fn declared_name(&self) -> Option<&str> {
        match self {
            Op::Memfd { obj, .. } | Op::Tmpfs { obj, .. } | Op::Gem { obj, .. } => Some(obj),
            Op::Mmap { map, .. } => Some(map),
            Op::Mount { mnt, .. } => Some(mnt),
            _ => None,
        }
    }

    /// The earlier-declared name this operation uses, if any (`mmap` uses its object).
    pub fn used_name(&self) -> Option<&str> {
        match self {
            Op::Mmap { obj, .. }
            | Op::Ftruncate { obj, .. }
            | Op::Write { obj, .. }
            | Op::Check { obj, .. }
            | Op::Punch { obj, .. }
            | Op::Unlink { obj }
            | Op::Close { obj }
            | Op::Dma32 { obj }
            | Op::Pin { obj }
            | Op::Unpin { obj }
            | Op::Zonecheck { obj }
            | Op::Hold { obj }
            | Op::Offline { obj, .. }
            | Op::Corrupt { obj, .. } => Some(obj),
            Op::Munmap { map }
            | Op::Touch { map, .. }
            | Op::Madvise { map, .. }
            | Op::Mbind { map, .. }
            | Op::MovePages { map, .. } => Some(map),
            Op::Tmpfs { on: Some(mnt), .. } | Op::Umount { mnt, .. } => Some(mnt),
            _ => None,
        }
    }

    /// [`Op::declared_name`] and [`Op::used_name`], mutable (for renaming).
    pub fn names_mut(&mut self) -> (Option<&mut String>, Option<&mut String>) {
        match self {
            Op::Memfd { obj, .. } | Op::Gem { obj, .. } => (Some(obj), None),
            Op::Tmpfs { obj, on, .. } => (Some(obj), on.as_mut()),
            Op::Mount { mnt, .. } => (Some(mnt), None),
            Op::Umount { mnt, .. } => (None, Some(mnt)),
            Op::Mmap { map, obj, .. } => (Some(map), Some(obj)),
            Op::Ftruncate { obj, .. }
            | Op::Write { obj, .. }
            | Op::Check { obj, .. }
            | Op::Punch { obj, .. }
            | Op::Unlink { obj }
            | Op::Close { obj }
            | Op::Dma32 { obj }
            | Op::Pin { obj }
            | Op::Unpin { obj }
            | Op::Zonecheck { obj }
            | Op::Hold { obj }
            | Op::Offline { obj, .. }
            | Op::Corrupt { obj, .. } => (None, Some(obj)),
            Op::Munmap { map }
            | Op::Touch { map, .. }
            | Op::Madvise { map, .. }
            | Op::Mbind { map, .. }
            | Op::MovePages { map, .. } => (None, Some(map)),
            Op::Reclaim { .. }
            | Op::Swapon { .. }
            | Op::Swapoff { .. }
            | Op::Sysrq { .. }
            | Op::Threads
            | Op::Thread { .. }
            | Op::Join
            | Op::Delay { .. }
            | Op::Spin { .. }
            | Op::Thp { .. }
            | Op::Khugepaged
            | Op::Compact
            | Op::MigratePages { .. }
            | Op::Online
            | Op::Hugetlb { .. } => (None, None),
        }
    }

    /// The structure of a threaded section (`threads`, `thread`, `join`): markers that
    /// perform nothing themselves.
    pub fn is_section_marker(&self) -> bool {
        matches!(self, Op::Threads | Op::Thread { .. } | Op::Join)
    }

    /// Operations that change guest-wide state (THP policy, memory blocks, hugetlb pools,
    /// node placement) and so move pages of any object, not only their operand's. Their
    /// effects are undone by the agent's teardown. Not allowed inside threaded sections.
    pub fn is_guest_wide(&self) -> bool {
        matches!(
            self,
            Op::Thp { .. }
                | Op::Khugepaged
                | Op::Compact
                | Op::MigratePages { .. }
                | Op::Offline { .. }
                | Op::Online
                | Op::Hugetlb { .. }
        )
    }
}

impl Program {
    pub fn new(ops: Vec<Op>) -> Self {
        Program {
            ops,
            notes: Vec::new(),
        }
    }

    pub fn has_test_only_ops(&self) -> bool {
        self.ops.iter().any(Op::is_test_only)
    }

    /// Whether the program has a threaded section.
    pub fn is_threaded(&self) -> bool {
        self.ops.iter().any(|op| matches!(op, Op::Threads))
    }

    /// The comment/blank lines before operation `i` (or trailing, for `i == ops.len()`).
    pub fn notes_before(&self, i: usize) -> &[String] {
        self.notes.get(i).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// The value a ranged `delay`/`spin` (`lo..=hi`) takes in the execution whose draw seed is
/// `seed`, at operation `index`: a splitmix64 of both, so every operation of a run draws its
/// own value, a run with another seed explores another interleaving, and a replay with the
/// recorded seed gets exactly the recorded values.
pub fn draw(seed: u64, index: u32, lo: u32, hi: u32) -> u32 {
    if hi <= lo {
        return lo;
    }
    let mut z = seed ^ (u64::from(index) << 32 | 0x9e37_79b9);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    lo + (z % (u64::from(hi - lo) + 1)) as u32
}

/// Name of swap device `n` as programs write it.
pub fn swap_name(dev: u8) -> String {
    format!("swap{dev}")
}
