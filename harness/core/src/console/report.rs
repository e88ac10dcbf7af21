//! Turning the lines of a finished report into its title and signature.

use super::analysis::{analyze, Analysis};
use super::classify::{warn_format, SWAP_ENTRY_ERRORS};
use super::frames::{is_generic, symbol_func, Frame};
use super::lockdep;
use super::{normalize_text, ReportKind};

/// The first reliable, non-generic frame.
fn first_meaningful<'a>(frames: &[Frame<'a>], skip_irq: bool) -> Option<&'a str> {
    frames
        .iter()
        .filter(|f| f.reliable && !(skip_irq && f.irq))
        .map(|f| f.func)
        .find(|f| !is_generic(f))
}

/// The function a report is named after: `primary` (named by the report's first line)
/// unless it is generic, else the first meaningful frame of the report's own stack, else
/// whatever is known.
fn pick<'a>(primary: Option<&'a str>, frames: &[Frame<'a>], skip_irq: bool) -> Option<&'a str> {
    if let Some(p) = primary.filter(|p| !is_generic(p)) {
        return Some(p);
    }
    first_meaningful(frames, skip_irq)
        .or(primary)
        .or_else(|| frames.iter().find(|f| f.reliable).map(|f| f.func))
}

const UNKNOWN: &str = "unknown";

/// Title suffix ` in func` (empty when the function is unknown).
fn in_func(func: Option<&str>) -> String {
    func.map(|f| format!(" in {f}")).unwrap_or_default()
}

/// The file (`path:line`) and the function of a `__warn()` line, in any of its formats.
fn warning_site(first: &str) -> (Option<&str>, Option<&str>) {
    let rest = first.trim_start_matches("WARNING:").trim_start();
    let Some(w) = warn_format(rest) else {
        return (None, None);
    };
    // `shmem_foo+0x1/0x2`, or `shmem_foo()` in the oldest format.
    let func = symbol_func(w.site).or_else(|| {
        let name = w.site.strip_suffix("()")?;
        (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
            .then_some(name)
    });
    (Some(w.file), func)
}

/// Cut a message at the first separator, for titles built from free text.
fn cut_at<'s>(s: &'s str, seps: &[&str]) -> &'s str {
    let end = seps
        .iter()
        .filter_map(|sep| s.find(sep))
        .min()
        .unwrap_or(s.len());
    s[..end].trim_end()
}

/// Normalize a KASAN/KFENCE bug type for signatures: 6.5+ says `slab-use-after-free` where
/// 6.1 says `use-after-free`, so both map to `use-after-free`.
fn normalize_bug_type(t: &str) -> &str {
    match t {
        "slab-use-after-free" => "use-after-free",
        other => other,
    }
}

/// `kmalloc-rnd-05-192` (CONFIG_RANDOM_KMALLOC_CACHES) names a random copy of `kmalloc-192`.
fn normalize_cache(c: &str) -> String {
    if let Some(rest) = c.strip_prefix("kmalloc-rnd-") {
        if let Some((idx, size)) = rest.split_once('-') {
            if idx.bytes().all(|b| b.is_ascii_digit()) {
                return format!("kmalloc-{size}");
            }
        }
    }
    c.to_string()
}

/// Is this bug type about an object that was already freed (so the free stack matters)?
fn is_free_bug(bug: &str) -> bool {
    bug.contains("use-after-free") || bug.contains("double-free") || bug.contains("invalid-free")
}

/// The signature part that says where a freed object was freed: `free:<func>` from the free
/// stack, else `free:<func>` from the `call_rcu` caller, else `access:<func>`.
fn free_site(a: &Analysis<'_>, access: Option<&str>) -> String {
    if let Some(f) = first_meaningful(&a.free, false).or_else(|| first_meaningful(&a.aux, false)) {
        return format!("free:{f}");
    }
    format!("access:{}", access.unwrap_or(UNKNOWN))
}

/// Title and signature of a finished report.
pub(crate) fn describe(kind: ReportKind, lines: &[String]) -> (String, String) {
    let first = lines.first().map(|l| l.trim()).unwrap_or("");
    let a = analyze(lines);
    let tag = kind.tag();
    match kind {
        ReportKind::Warning => {
            let (file, site) = warning_site(first);
            if file.is_none() {
                if let Some(l) = lockdep::analyze(lines) {
                    return l.describe();
                }
                // The unwinder's "WARNING: kernel stack regs at ... in comm:pid has bad 'bp'
                // value ...": the object and the complaint, without the task and addresses.
                let what = first.trim_start_matches("WARNING:").trim();
                let what = match what.split_once(" at ") {
                    Some((obj, rest)) if rest.contains(" has bad ") => {
                        format!("{obj} has bad value")
                    }
                    _ => what.to_string(),
                };
                let what = what.as_str();
                let func = first_meaningful(&a.main, false);
                return (
                    format!("WARNING: {what}{}", in_func(func)),
                    format!("{tag}:{what}"),
                );
            }
            let func = pick(site, &a.main, false);
            let title = match (func, file) {
                (Some(f), _) => format!("WARNING in {f}"),
                (None, Some(file)) => format!("WARNING at {file}"),
                (None, None) => "WARNING".to_string(),
            };
            let sig_where = func
                .map(str::to_string)
                .or(file.map(|f| cut_at(f, &[":"]).to_string()));
            (
                title,
                format!("{tag}:{}", sig_where.as_deref().unwrap_or(UNKNOWN)),
            )
        }
        ReportKind::KernelBug => {
            let at = first
                .trim_start_matches("kernel BUG at ")
                .trim_end_matches('!');
            let func = pick(None, &a.main, false);
            let file = cut_at(at, &[":"]);
            let title = match func {
                Some(f) => format!("kernel BUG in {f}"),
                None => format!("kernel BUG at {file}"),
            };
            (title, format!("{tag}:{}", func.unwrap_or(file)))
        }
        ReportKind::Oops => {
            let mut head = first;
            while let Some(r) = head.strip_prefix("Oops:") {
                head = r.trim_start();
            }
            let what = if head.contains("general protection fault") {
                "general protection fault".to_string()
            } else if head.starts_with("divide_error:") {
                // 4.x spelling of the same trap.
                "divide error".to_string()
            } else if let Some(r) = head.strip_prefix("PANIC: ") {
                cut_at(r, &[",", ":"]).to_string()
            } else if head.starts_with("Unable to handle kernel ") {
                cut_at(head, &[" at virtual address", " at ", ","]).to_string()
            } else if let Some(r) = head.strip_prefix("BUG: ") {
                format!("BUG: {}", cut_at(r, &[",", ":", " at ", " for "]))
            } else if head.starts_with(|c: char| c.is_ascii_digit()) || head.is_empty() {
                "Oops".to_string()
            } else {
                cut_at(head, &[",", ":", " at "]).to_string()
            };
            let what = if what.trim().is_empty() {
                "Oops".to_string()
            } else {
                what
            };
            let func = pick(None, &a.main, false);
            (
                format!("{what}{}", in_func(func)),
                format!("{tag}:{}", func.unwrap_or(UNKNOWN)),
            )
        }
        ReportKind::Kasan | ReportKind::Kfence => {
            // BUG: KASAN: slab-use-after-free in xas_start+0x1ef/0x7b0
            // BUG: KFENCE: use-after-free read in provoke_kfence_uaf+0xd2/0x140 [provoke]
            let body = first.split_once(": ").map(|(_, r)| r).unwrap_or(first);
            let body = body.split_once(": ").map(|(_, r)| r).unwrap_or(body);
            let (what, site) = match body.split_once(" in ") {
                Some((w, s)) => (w.trim(), symbol_func(s.trim())),
                None => (body.trim(), None),
            };
            // Old kernels: "BUG: KASAN: null-ptr-deref on address (null)".
            let what = cut_at(what, &[" on address", " at addr"]);
            let access = pick(site, &a.main, false);
            let tool = if kind == ReportKind::Kasan {
                "KASAN"
            } else {
                "KFENCE"
            };
            // KASAN says "Read of size 8 at addr ..." on the next line; KFENCE has the
            // direction in `what` already ("use-after-free read").
            // (Other CPUs' lines can come in between, so look a few lines further.)
            let dir = lines
                .iter()
                .skip(1)
                .take(6)
                .map(|l| l.trim())
                .filter(|l| l.contains(" at addr") || l.contains(" of size "))
                .find_map(|l| l.split_whitespace().next())
                .filter(|w| kind == ReportKind::Kasan && (*w == "Read" || *w == "Write"));
            let title = match dir {
                Some(d) => format!("{tool}: {what} {d}{}", in_func(access)),
                None => format!("{tool}: {what}{}", in_func(access)),
            };
            let bug = what.split_whitespace().next().unwrap_or(what);
            let bug = normalize_bug_type(if what.starts_with("double-free or invalid-free") {
                "double-free or invalid-free"
            } else {
                bug
            });
            let cache = a
                .cache
                .map(normalize_cache)
                .unwrap_or_else(|| "-".to_string());
            let site = if is_free_bug(bug) {
                free_site(&a, access)
            } else {
                format!("access:{}", access.unwrap_or(UNKNOWN))
            };
            (title, format!("{tag}:{bug}:{cache}:{site}"))
        }
        ReportKind::SlabCorruption => {
            // BUG provoke_cache (Tainted: G           OE     ): Poison overwritten
            let rest = first.trim_start_matches("BUG ");
            let cache = rest.split_whitespace().next().unwrap_or(UNKNOWN);
            let reason = rest.split_once("): ").map(|(_, r)| r.trim()).unwrap_or("");
            let site = free_site(&a, pick(None, &a.main, false));
            (
                format!("SLUB: {reason} in {cache}"),
                format!("{tag}:{}:{site}", normalize_cache(cache)),
            )
        }
        ReportKind::BadPageState => {
            let func = pick(None, &a.main, false);
            (
                "BUG: Bad page state".to_string(),
                format!("{tag}:{}", func.unwrap_or(UNKNOWN)),
            )
        }
        ReportKind::ListCorruption => {
            let op = if first.contains("list_add") {
                "list_add"
            } else if first.contains("list_del") {
                "list_del"
            } else {
                "list"
            };
            let func = pick(None, &a.main, false);
            (
                format!("{op} corruption{}", in_func(func)),
                format!("{tag}:{op}:{}", func.unwrap_or(UNKNOWN)),
            )
        }
        ReportKind::Panic => {
            let reason = first
                .split_once("not syncing")
                .map(|(_, r)| normalize_text(r.trim_start_matches(':').trim()))
                .unwrap_or_default();
            (
                format!("Kernel panic - not syncing: {reason}"),
                format!("{tag}:{reason}"),
            )
        }
        ReportKind::SoftLockup | ReportKind::HardLockup | ReportKind::RcuStall => {
            let func = pick(None, &a.main, true);
            let title = match kind {
                ReportKind::SoftLockup => "BUG: soft lockup",
                ReportKind::HardLockup => "watchdog: hard LOCKUP",
                _ => "INFO: rcu detected stall",
            };
            (
                format!("{title}{}", in_func(func)),
                format!("{tag}:{}", func.unwrap_or(UNKNOWN)),
            )
        }
        ReportKind::HungTask if first.contains(" can't die ") => {
            let func = pick(None, &a.main, false);
            (
                format!("INFO: task can't die{}", in_func(func)),
                format!("{tag}:can't die:{}", func.unwrap_or(UNKNOWN)),
            )
        }
        ReportKind::HungTask => {
            let func = pick(None, &a.main, false);
            (
                format!("INFO: task hung{}", in_func(func)),
                format!("{tag}:{}", func.unwrap_or(UNKNOWN)),
            )
        }
        ReportKind::MemoryLeak => {
            // The allocation stack: skip the allocators, whatever their name (`sock_kmalloc`,
            // `sk_prot_alloc`, `kstrdup`, `alloc_inode`, ...), to reach the code that leaked.
            let func = a
                .main
                .iter()
                .filter(|f| f.reliable)
                .map(|f| f.func)
                .find(|f| !is_generic(f) && !is_allocator(f))
                .or_else(|| first_meaningful(&a.main, false));
            (
                format!("memory leak{}", in_func(func)),
                format!("{tag}:{}", func.unwrap_or(UNKNOWN)),
            )
        }
        ReportKind::VmstatRefresh => {
            let item = first
                .trim_start_matches("vmstat_refresh: ")
                .split_whitespace()
                .next()
                .unwrap_or(UNKNOWN);
            (
                format!("vmstat_refresh: negative {item}"),
                format!("{tag}:{item}"),
            )
        }
        ReportKind::OomKill => {
            let scope = if first.contains("Memory cgroup out of memory") {
                "memcg"
            } else {
                "global"
            };
            let comm = first
                .split_once('(')
                .and_then(|(_, r)| r.split_once(')'))
                .map(|(c, _)| c)
                .unwrap_or(UNKNOWN);
            let head = cut_at(first, &[" Killed process"]);
            (
                format!("{head} Killed process ({comm})"),
                format!("{tag}:{scope}:{comm}"),
            )
        }
        ReportKind::Taint => {
            // "provoke: loading out-of-tree module taints kernel." -> without the module name
            let what = match first.split_once(": ") {
                Some((module, rest)) if !module.contains(' ') => rest,
                _ => first,
            };
            (first.to_string(), format!("{tag}:{what}"))
        }
        ReportKind::Sysrq => {
            let what = first
                .split_once(':')
                .map(|(_, r)| r.trim())
                .unwrap_or(first);
            (first.to_string(), format!("{tag}:{what}"))
        }
        ReportKind::Bug => describe_bug(first, &a),
    }
}

/// Does `func` only allocate (for kmemleak's allocation stacks)?
fn is_allocator(func: &str) -> bool {
    func.contains("alloc")
        || [
            "kstrdup",
            "kstrndup",
            "kmemdup",
            "__list_lru_init",
            "idr_get",
        ]
        .iter()
        .any(|p| func.starts_with(p))
}

/// Generic `BUG: ...` lines, UBSAN reports, swap-entry errors and rss-counter errors.
fn describe_bug(first: &str, a: &Analysis<'_>) -> (String, String) {
    let tag = ReportKind::Bug.tag();
    if let Some(rest) = first.strip_prefix("BUG: Bad rss-counter state") {
        let ty = rest
            .split_whitespace()
            .find_map(|w| w.strip_prefix("type:"))
            .unwrap_or(UNKNOWN);
        return (
            "BUG: Bad rss-counter state".to_string(),
            format!("{tag}:Bad rss-counter state:{ty}"),
        );
    }
    if let Some(err) = SWAP_ENTRY_ERRORS.iter().find(|e| first.contains(*e)) {
        let err = err.trim_end();
        let func = first.split_once(": ").map(|(f, _)| f).unwrap_or(UNKNOWN);
        return (format!("{func}: {err}"), format!("{tag}:{func}:{err}"));
    }
    for vfs in [
        "VFS: Busy inodes after unmount",
        "VFS: Close: file count is 0",
    ] {
        if first.starts_with(vfs) {
            return (vfs.to_string(), format!("{tag}:{vfs}"));
        }
    }
    if first.starts_with("unregister_netdevice: waiting for ") {
        // The device's name changes from run to run (`lo`, `syz_tun`, `bond0`, ...).
        let what = "unregister_netdevice: waiting for DEV to become free";
        return (what.to_string(), format!("{tag}:{what}"));
    }
    if let Some(rest) = first.strip_prefix("UBSAN: ") {
        let what = cut_at(rest, &[" in ", ":"]);
        let func = first_meaningful(&a.main, false);
        return (
            format!("UBSAN: {what}{}", in_func(func)),
            format!("{tag}:UBSAN {what}:{}", func.unwrap_or(UNKNOWN)),
        );
    }
    let rest = first.strip_prefix("BUG: ").unwrap_or(first);
    let rest = normalize_text(rest);
    let what = cut_at(
        &rest,
        &[
            " - ",
            ": ",
            ",",
            " at ",
            "!",
            " (",
            " [",
            "{",
            " in process",
            " for ",
        ],
    );
    let func = first_meaningful(&a.main, false);
    (
        format!("BUG: {what}{}", in_func(func)),
        format!("{tag}:{what}:{}", func.unwrap_or(UNKNOWN)),
    )
}
