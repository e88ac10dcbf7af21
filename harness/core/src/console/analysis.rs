//! Reading a report body: which frames belong to the report's own stack, to the free stack
//! and to the `call_rcu` caller, and which slab cache the object belongs to.

use super::frames::{parse_frame, parse_rip, symbol_func, Frame};

/// Which part of a report a line belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    /// The report's own stack (call trace, RIP lines, KFENCE access stack).
    Main,
    /// "Allocated by task" / "Allocated in" / KFENCE "allocated by task" (not used).
    Alloc,
    /// "Freed by task" / "Freed in" / KFENCE "freed by task".
    Free,
    /// The first "Last potentially related work creation" stack (the `call_rcu` caller).
    Aux,
    /// Page owner stacks, memory dumps and the like.
    Ignore,
}

/// Frames and facts collected from a report body.
#[derive(Debug, Default)]
pub(crate) struct Analysis<'a> {
    pub main: Vec<Frame<'a>>,
    pub free: Vec<Frame<'a>>,
    pub aux: Vec<Frame<'a>>,
    /// Slab cache of the object (KASAN "which belongs to the cache", KFENCE "cache=").
    pub cache: Option<&'a str>,
}

pub(crate) fn analyze<'a>(lines: &'a [String]) -> Analysis<'a> {
    let mut a = Analysis::default();
    let mut section = Section::Main;
    let mut irq = false;
    let mut aux_seen = false;
    for line in lines.iter().skip(1) {
        let t = line.trim();
        if let Some((_, rest)) = t.split_once("which belongs to the cache ") {
            a.cache = rest.split_whitespace().next();
            continue;
        }
        if t.starts_with("kfence-#") {
            if let Some((_, rest)) = t.split_once("cache=") {
                a.cache = rest.split([' ', ',']).next();
            }
            continue;
        }
        if t.starts_with("Call Trace")
            || t.starts_with("Call trace")
            || t == "stack backtrace:"
            || is_kfence_access_header(t)
        {
            section = Section::Main;
            continue;
        }
        if t.starts_with("Allocated by task") || t.starts_with("allocated by task") {
            section = Section::Alloc;
            continue;
        }
        if t.starts_with("Allocated in ") {
            section = Section::Alloc;
            continue;
        }
        if t.starts_with("Freed by task") || t.starts_with("freed by task") {
            section = Section::Free;
            continue;
        }
        if let Some(rest) = t.strip_prefix("Freed in ") {
            // SLUB: "Freed in provoke_slub_uaf+0x47/0x82 [provoke] age=0 cpu=0 pid=1"
            section = Section::Free;
            if let Some(func) = symbol_func(rest) {
                a.free.push(Frame {
                    func,
                    reliable: true,
                    irq: false,
                });
            }
            continue;
        }
        if t.starts_with("Last potentially related work creation") {
            section = if aux_seen {
                Section::Ignore
            } else {
                Section::Aux
            };
            aux_seen = true;
            continue;
        }
        if t.starts_with("Second to last potentially related")
            || t.starts_with("The buggy address")
            || t.starts_with("Memory state around")
            || t.starts_with("page last")
            || t.starts_with("page_owner")
        {
            section = Section::Ignore;
            continue;
        }
        // Stack context markers, alone on their line or (old kernels) before a frame:
        // "<IRQ>  [<ffffffff81b2e7d9>] dump_stack+0x45/0x6c".
        let mut t = t;
        for (marker, in_irq) in [
            ("<IRQ>", true),
            ("<NMI>", true),
            ("<SOFTIRQ>", true),
            ("</IRQ>", false),
            ("</NMI>", false),
            ("</SOFTIRQ>", false),
            ("<EOI>", false),
        ] {
            if let Some(rest) = t.strip_prefix(marker) {
                irq = in_irq;
                t = rest.trim_start();
                break;
            }
        }
        if t.is_empty() {
            continue;
        }
        let (func, reliable) = match parse_rip(t) {
            Some(f) => (f, true),
            None => match parse_frame(t) {
                Some(fr) => fr,
                None => continue,
            },
        };
        let frame = Frame {
            func,
            reliable,
            irq,
        };
        match section {
            Section::Main => a.main.push(frame),
            Section::Free => a.free.push(frame),
            Section::Aux => a.aux.push(frame),
            Section::Alloc | Section::Ignore => {}
        }
    }
    a
}

/// KFENCE's access-stack header: `Use-after-free read at 0x... (in kfence-#12):`.
fn is_kfence_access_header(t: &str) -> bool {
    t.contains("(in kfence-#") && t.ends_with("):")
}
