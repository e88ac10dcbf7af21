//! Kernel coverage by kprobes: at boot, a kprobe on each mm function of [`MM_FUNCTIONS`] that
//! `/proc/kallsyms` lists (inlined functions cannot be probed, and gcc inlines
//! `shmem_should_replace_folio`/`shmem_replace_folio`); per program, the hit counts from
//! tracefs `kprobe_profile` before and after. Kernels without KPROBE_EVENTS give none.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;

use nix::mount::{mount, MsFlags};
use shmemfuzz_core::protocol::FuncHits;

const TRACEFS: &str = "/sys/kernel/tracing";
/// The kprobe event group the agent owns.
const GROUP: &str = "sfz";

/// The shmem, swap and reclaim paths this tool is about.
pub const MM_FUNCTIONS: &[&str] = &[
    "shmem_swapin_folio",
    "shmem_swapin_cluster",
    "shmem_swap_alloc_folio",
    "shmem_replace_folio",
    "shmem_should_replace_folio",
    "shmem_get_folio_gfp",
    "shmem_fault",
    "shmem_writepage",
    "shmem_unuse",
    "shmem_unuse_inode",
    "shmem_evict_inode",
    "shmem_undo_range",
    "shmem_fallocate",
    "shmem_add_to_page_cache",
    "force_shm_swapin_readahead",
    "madvise_cold_or_pageout_pte_range",
    "reclaim_pages",
    "shrink_folio_list",
    "swap_cluster_readahead",
    "swap_vma_readahead",
    "swapin_readahead",
    "__read_swap_cache_async",
    "read_swap_cache_async",
    "swap_readpage",
    "swap_read_folio",
    "swap_writepage",
    "add_to_swap",
    "delete_from_swap_cache",
    "free_swap_and_cache",
    "try_to_unuse",
    "drm_gem_get_pages",
];

/// The installed probes: event name -> function.
#[derive(Debug, Default)]
pub struct Probes {
    events: BTreeMap<String, String>,
}

impl Probes {
    /// Installs what it can; `None` when the kernel has no kprobe events.
    pub fn install() -> Option<Probes> {
        let _ = fs::create_dir_all(TRACEFS);
        let _ = mount(
            Some("tracefs"),
            TRACEFS,
            Some("tracefs"),
            MsFlags::empty(),
            None::<&str>,
        );
        let mut defs = OpenOptions::new()
            .append(true)
            .open(format!("{TRACEFS}/kprobe_events"))
            .ok()?;
        let kallsyms = fs::read_to_string("/proc/kallsyms").ok()?;
        let text: std::collections::BTreeSet<&str> = kallsyms
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let (_, kind, name) = (w.next()?, w.next()?, w.next()?);
                matches!(kind, "t" | "T").then_some(name)
            })
            .collect();
        let mut events = BTreeMap::new();
        for (i, func) in MM_FUNCTIONS.iter().enumerate() {
            if !text.contains(func) {
                continue;
            }
            let event = format!("f{i}");
            // One write per probe: a function the kernel refuses to probe fails alone.
            if defs
                .write_all(format!("p:{GROUP}/{event} {func}\n").as_bytes())
                .is_ok()
            {
                events.insert(event, func.to_string());
            }
        }
        crate::sys::write_file(&format!("{TRACEFS}/events/{GROUP}/enable"), "1").ok()?;
        Some(Probes { events })
    }

    /// Hit counts now, by function.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        let profile = fs::read_to_string(format!("{TRACEFS}/kprobe_profile")).unwrap_or_default();
        profile
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let (name, hits) = (w.next()?, w.next()?.parse::<u64>().ok()?);
                let func = self.events.get(name.rsplit('/').next()?)?;
                Some((func.clone(), hits))
            })
            .collect()
    }

    /// The functions that ran between two snapshots, with how often.
    pub fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> Vec<FuncHits> {
        after
            .iter()
            .filter_map(|(func, n)| {
                let hits = n.saturating_sub(before.get(func).copied().unwrap_or(0));
                (hits > 0).then(|| FuncHits {
                    func: func.clone(),
                    hits,
                })
            })
            .collect()
    }
}
