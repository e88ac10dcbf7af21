//! Which names are live at each point of a program, and the rules an operation must meet to
//! be valid there. The parser reports a violation at the offending argument; the `Arbitrary`
//! decoder only picks operations that pass. The threaded-section rules (who may use what
//! inside a section) are in [`section`].

mod section;

use std::collections::BTreeMap;

pub use section::SectionScope;

use super::{
    MapKind, Op, HUGETLB_SIZES_KB, MAX_DELAY_US, MAX_GEM_SIZE, MAX_HUGETLB_PAGES, MAX_NODE,
    MAX_OBJECT_SIZE, MAX_RECLAIM, MAX_SPIN, PAGE_SIZE,
};

/// What kind of file an object name refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjKind {
    Memfd,
    Tmpfs,
    Gem,
}

impl ObjKind {
    pub fn name(self) -> &'static str {
        match self {
            ObjKind::Memfd => "memfd",
            ObjKind::Tmpfs => "tmpfs",
            ObjKind::Gem => "gem",
        }
    }
}

#[derive(Clone, Debug)]
pub struct ObjState {
    pub kind: ObjKind,
    pub open: bool,
    pub unlinked: bool,
    /// A GEM object's fixed size (whole pages); `None` for files, which can grow.
    pub fixed_size: Option<u64>,
    /// The program's tmpfs mount the file lives on (`tmpfs … on=NAME`).
    pub mount: Option<String>,
    /// Its size in bytes as the program sets it (creation, `ftruncate`, a `write` past the
    /// end), for the shared-object rule: a shared object's writes stay below it.
    pub size: u64,
}

#[derive(Clone, Debug)]
pub struct MapState {
    pub len: u64,
    pub kind: MapKind,
    /// The object it maps.
    pub obj: String,
}

/// A rule an operation broke: the argument at fault (for the column in parse errors) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeError {
    /// Argument name (`obj`, `off`, `len`, …) or `None` for the operation as a whole.
    pub arg: Option<&'static str>,
    pub message: String,
}

fn err(arg: &'static str, message: impl Into<String>) -> ScopeError {
    ScopeError {
        arg: Some(arg),
        message: message.into(),
    }
}

/// Sysrq keys a program may send: `c` crashes the guest, the others only print state.
pub const SYSRQ_KEYS: &str = "ctwm";

/// Names in use, in program order.
#[derive(Clone, Debug)]
pub struct Scope {
    pub objects: BTreeMap<String, ObjState>,
    pub maps: BTreeMap<String, MapState>,
    /// Every name ever declared: names are never reused within a program.
    declared: Vec<String>,
    pub swap_devices: u8,
    /// The program's tmpfs mounts: name -> still mounted.
    pub mounts: BTreeMap<String, bool>,
    /// Inside `threads` … `join`.
    pub section: Option<SectionScope>,
}

impl Scope {
    pub fn new(swap_devices: u8) -> Self {
        Scope {
            objects: BTreeMap::new(),
            maps: BTreeMap::new(),
            declared: Vec::new(),
            swap_devices,
            mounts: BTreeMap::new(),
            section: None,
        }
    }

    /// Checks the end of the program: every threaded section is joined.
    pub fn finish(&self) -> Result<(), ScopeError> {
        match self.section {
            Some(_) => Err(ScopeError {
                arg: None,
                message: "`threads` without `join`: the program ends inside a threaded section"
                    .into(),
            }),
            None => Ok(()),
        }
    }

    /// Whether `name` (object, mapping or mount) is used by another thread of the current
    /// section than the one being read.
    pub fn claimed_elsewhere(&self, name: &str) -> bool {
        let Some(sec) = &self.section else {
            return false;
        };
        let key = self.maps.get(name).map_or(name, |m| m.obj.as_str());
        let mine = sec.threads.len().checked_sub(1);
        sec.claims.get(key).is_some_and(|t| Some(*t) != mine)
    }

    /// Checks the threaded-section rules for `op` and, if it is valid, applies it.
    pub fn apply(&mut self, op: &Op) -> Result<(), ScopeError> {
        let claims = self.section_rules(op)?;
        self.apply_op(op)?;
        if let Some(sec) = self.section.as_mut() {
            let me = sec.threads.len().saturating_sub(1);
            for (res, _) in claims {
                sec.claims.entry(res).or_insert(me);
            }
        }
        Ok(())
    }

    /// What `op` touches, for the one-thread-per-resource rule: objects (a mapping counts
    /// as its object), mounts (an unmount also every file on it), swap devices.
    fn resources(&self, op: &Op) -> Vec<(String, &'static str)> {
        let map_obj = |m: &str| {
            self.maps
                .get(m)
                .map_or_else(|| m.to_string(), |s| s.obj.clone())
        };
        match op {
            Op::Tmpfs { obj, on, .. } => {
                let mut v = vec![(obj.clone(), "obj")];
                v.extend(on.iter().map(|m| (m.clone(), "on")));
                v
            }
            Op::Memfd { obj, .. }
            | Op::Gem { obj, .. }
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
            | Op::Corrupt { obj, .. } => vec![(obj.clone(), "obj")],
            Op::Mmap { obj, .. } => vec![(obj.clone(), "obj")],
            Op::Munmap { map }
            | Op::Touch { map, .. }
            | Op::Madvise { map, .. }
            | Op::Mbind { map, .. }
            | Op::MovePages { map, .. } => {
                vec![(map_obj(map), "map")]
            }
            Op::Swapon { dev, .. } | Op::Swapoff { dev } => {
                vec![(super::swap_name(*dev), "dev")]
            }
            Op::Mount { mnt, .. } => vec![(mnt.clone(), "mnt")],
            Op::Umount { mnt, .. } => {
                let mut v = vec![(mnt.clone(), "mnt")];
                v.extend(
                    self.objects
                        .iter()
                        .filter(|(_, o)| o.mount.as_deref() == Some(mnt.as_str()))
                        .map(|(n, _)| (n.clone(), "mnt")),
                );
                v
            }
            Op::Reclaim { .. }
            | Op::Delay { .. }
            | Op::Spin { .. }
            | Op::Sysrq { .. }
            | Op::Threads
            | Op::Thread { .. }
            | Op::Join
            | Op::Thp { .. }
            | Op::Khugepaged
            | Op::Compact
            | Op::MigratePages { .. }
            | Op::Online
            | Op::Hugetlb { .. } => Vec::new(),
        }
    }

    /// Whether a file on `mnt` is open or mapped: then `umount` fails with EBUSY.
    pub fn mount_busy(&self, mnt: &str) -> bool {
        let on = |o: &ObjState| o.mount.as_deref() == Some(mnt);
        self.objects.values().any(|o| on(o) && o.open)
            || self
                .maps
                .values()
                .any(|m| self.objects.get(&m.obj).is_some_and(on))
    }

    /// Objects whose descriptor is still open.
    pub fn open_objects(&self) -> impl Iterator<Item = (&String, &ObjState)> {
        self.objects.iter().filter(|(_, o)| o.open)
    }

    pub fn is_declared(&self, name: &str) -> bool {
        self.declared.iter().any(|n| n == name)
    }

    /// Checks `op` against the names live here and, if it is valid, applies its effect.
    fn apply_op(&mut self, op: &Op) -> Result<(), ScopeError> {
        match op {
            Op::Memfd { obj, size, .. }
            | Op::Tmpfs { obj, size, .. }
            | Op::Gem { obj, size, .. } => {
                self.fresh(obj, "obj")?;
                let mount = match op {
                    Op::Tmpfs { on: Some(m), .. } => {
                        if self.mounts.get(m) != Some(&true) {
                            return Err(err("on", format!("no tmpfs mounted as `{m}`")));
                        }
                        Some(m.clone())
                    }
                    _ => None,
                };
                check_size(*size)?;
                let kind = match op {
                    Op::Memfd { .. } => ObjKind::Memfd,
                    Op::Tmpfs { .. } => ObjKind::Tmpfs,
                    _ => ObjKind::Gem,
                };
                if kind == ObjKind::Gem && (*size == 0 || *size > MAX_GEM_SIZE) {
                    return Err(err("size", format!("a GEM object needs 1 to {MAX_GEM_SIZE} bytes (DMA32 is 1 GiB), not {size}")));
                }
                self.declared.push(obj.clone());
                let fixed_size = (kind == ObjKind::Gem).then(|| size.next_multiple_of(PAGE_SIZE));
                let state = ObjState {
                    kind,
                    open: true,
                    unlinked: false,
                    fixed_size,
                    mount,
                    size: fixed_size.unwrap_or(*size),
                };
                self.objects.insert(obj.clone(), state);
            }
            Op::Ftruncate { obj, size } => {
                self.not_gem(obj, "resized")?;
                check_size(*size)?;
                if let Some(o) = self.objects.get_mut(obj) {
                    o.size = *size;
                }
            }
            Op::Punch { obj, off, len } => {
                self.not_gem(obj, "hole-punched")?;
                check_range(*off, *len, MAX_OBJECT_SIZE, "the largest object size")?;
            }
            Op::Dma32 { obj } => {
                if self.open_obj(obj)?.kind == ObjKind::Gem {
                    return Err(err(
                        "obj",
                        format!("`{obj}` is a GEM object: its mapping is DMA32 already"),
                    ));
                }
            }
            Op::Pin { obj } | Op::Unpin { obj } => {
                if self.open_obj(obj)?.kind != ObjKind::Gem {
                    return Err(err(
                        "obj",
                        format!("`{obj}` is not a GEM object: only GEM objects are pinned"),
                    ));
                }
            }
            Op::Zonecheck { obj } | Op::Hold { obj } => {
                self.open_obj(obj)?;
            }
            Op::Write { obj, off, len, .. }
            | Op::Check { obj, off, len }
            | Op::Corrupt { obj, off, len, .. } => {
                match self.open_obj(obj)?.fixed_size {
                    Some(size) => check_range(*off, *len, size, "the GEM object's size")?,
                    None => check_range(*off, *len, MAX_OBJECT_SIZE, "the largest object size")?,
                }
                if let (Op::Write { .. } | Op::Corrupt { .. }, Some(o)) =
                    (op, self.objects.get_mut(obj))
                {
                    o.size = o.size.max(off + len);
                }
            }
            Op::Mmap {
                map,
                obj,
                off,
                len,
                kind,
            } => {
                self.fresh(map, "map")?;
                let fixed_size = self.open_obj(obj)?.fixed_size;
                match (*kind, fixed_size) {
                    (MapKind::Gem, None) => {
                        return Err(err(
                            "obj",
                            format!("`{obj}` is not a GEM object: `gem` maps GEM objects through the DRM device"),
                        ))
                    }
                    (MapKind::Gem, Some(size)) if *off != 0 || *len > size => {
                        return Err(err(
                            "len",
                            format!("a `gem` mapping starts at 0 and covers at most the object ({size} bytes)"),
                        ))
                    }
                    _ => {}
                }
                if off % PAGE_SIZE != 0 {
                    return Err(err(
                        "off",
                        format!("mmap offset {off} is not a multiple of the page size"),
                    ));
                }
                check_range(*off, *len, MAX_OBJECT_SIZE, "the largest object size")?;
                self.declared.push(map.clone());
                self.maps.insert(
                    map.clone(),
                    MapState {
                        len: *len,
                        kind: *kind,
                        obj: obj.clone(),
                    },
                );
            }
            Op::Munmap { map } => {
                self.live_map(map)?;
                self.maps.remove(map);
            }
            Op::Touch { map, off, len, .. } => {
                let m = self.live_map(map)?;
                check_range(*off, *len, m.len, "the mapping's length")?;
            }
            Op::Madvise { map, off, len, .. } => {
                let m = self.live_map(map)?;
                if off % PAGE_SIZE != 0 {
                    return Err(err(
                        "off",
                        format!("madvise offset {off} is not a multiple of the page size"),
                    ));
                }
                check_range(*off, *len, m.len, "the mapping's length")?;
            }
            Op::Reclaim { bytes } => {
                if *bytes == 0 || *bytes > MAX_RECLAIM {
                    return Err(err(
                        "bytes",
                        format!("reclaim wants 1 to {MAX_RECLAIM} bytes, not {bytes}"),
                    ));
                }
            }
            Op::Swapon { dev, .. } | Op::Swapoff { dev } => {
                if *dev >= self.swap_devices {
                    return Err(err(
                        "dev",
                        format!(
                            "no swap device swap{dev}: this VM has swap0..swap{}",
                            self.swap_devices.saturating_sub(1)
                        ),
                    ));
                }
            }
            Op::Unlink { obj } => {
                let o = self.known_obj(obj)?;
                if o.kind != ObjKind::Tmpfs {
                    return Err(err(
                        "obj",
                        format!(
                            "`{obj}` is a {}: only tmpfs files can be unlinked",
                            o.kind.name()
                        ),
                    ));
                }
                if o.unlinked {
                    return Err(err("obj", format!("`{obj}` is already unlinked")));
                }
                if let Some(o) = self.objects.get_mut(obj) {
                    o.unlinked = true;
                }
            }
            Op::Close { obj } => {
                self.open_obj(obj)?;
                if let Some(o) = self.objects.get_mut(obj) {
                    o.open = false;
                }
            }
            Op::Mount { mnt, huge } => {
                if huge.is_some_and(|h| !super::ThpMode::MOUNT.contains(&h)) {
                    return Err(err(
                        "huge",
                        "a mount's huge= is never, always, within_size or advise",
                    ));
                }
                self.fresh(mnt, "mnt")?;
                self.declared.push(mnt.clone());
                self.mounts.insert(mnt.clone(), true);
            }
            Op::Umount { mnt, detach } => {
                if self.mounts.get(mnt) != Some(&true) {
                    return Err(err("mnt", format!("no tmpfs mounted as `{mnt}`")));
                }
                // Busy: EBUSY and nothing changes. Otherwise its files go with it (detached:
                // their names go at once; open ones stay usable through their descriptors).
                if *detach || !self.mount_busy(mnt) {
                    self.mounts.insert(mnt.clone(), false);
                    for o in self.objects.values_mut() {
                        if o.mount.as_deref() == Some(mnt.as_str()) {
                            o.unlinked = true;
                        }
                    }
                }
            }
            Op::Delay { micros, upto } => {
                let hi = upto.unwrap_or(*micros);
                if hi > MAX_DELAY_US || *micros > MAX_DELAY_US {
                    return Err(err(
                        "micros",
                        format!("a delay is at most {MAX_DELAY_US} us, not {hi}"),
                    ));
                }
                if hi < *micros {
                    return Err(err(
                        "micros",
                        format!("the range {micros}..{hi} us is empty"),
                    ));
                }
            }
            Op::Spin { iters, upto } => {
                let hi = upto.unwrap_or(*iters);
                if hi > MAX_SPIN || *iters > MAX_SPIN {
                    return Err(err(
                        "iters",
                        format!("a spin is at most {MAX_SPIN} iterations, not {hi}"),
                    ));
                }
                if hi < *iters {
                    return Err(err("iters", format!("the range {iters}..{hi} is empty")));
                }
            }
            Op::Threads | Op::Thread { .. } | Op::Join => {}
            Op::Thp { .. } | Op::Khugepaged | Op::Compact | Op::Online => {}
            Op::Mbind {
                map,
                off,
                len,
                node,
                ..
            }
            | Op::MovePages {
                map,
                off,
                len,
                node,
            } => {
                let m = self.live_map(map)?;
                if off % PAGE_SIZE != 0 {
                    return Err(err(
                        "off",
                        format!("offset {off} is not a multiple of the page size"),
                    ));
                }
                check_range(*off, *len, m.len, "the mapping's length")?;
                check_node(*node, "node")?;
            }
            Op::MigratePages { from, to } => {
                check_node(*from, "from")?;
                check_node(*to, "to")?;
            }
            Op::Offline { obj, page } => {
                self.open_obj(obj)?;
                if *page >= MAX_OBJECT_SIZE / PAGE_SIZE {
                    return Err(err(
                        "page",
                        format!("page {page} is past the largest object"),
                    ));
                }
            }
            Op::Hugetlb { size_kb, count } => {
                if !HUGETLB_SIZES_KB.contains(size_kb) {
                    return Err(err(
                        "size",
                        format!("no {size_kb} kB huge pages (2M or 1G)"),
                    ));
                }
                if *count > MAX_HUGETLB_PAGES {
                    return Err(err(
                        "count",
                        format!("a hugetlb pool holds at most {MAX_HUGETLB_PAGES} pages here, not {count}"),
                    ));
                }
            }
            Op::Sysrq { key } => {
                if !SYSRQ_KEYS.contains(*key) {
                    return Err(err(
                        "key",
                        format!("sysrq key `{key}` is not one of `{SYSRQ_KEYS}`"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn fresh(&self, name: &str, arg: &'static str) -> Result<(), ScopeError> {
        if self.is_declared(name) {
            return Err(err(
                arg,
                format!("`{name}` is already declared: names are not reused"),
            ));
        }
        Ok(())
    }

    fn not_gem(&self, name: &str, what: &str) -> Result<(), ScopeError> {
        if self.open_obj(name)?.kind == ObjKind::Gem {
            return Err(err(
                "obj",
                format!("`{name}` is a GEM object: it cannot be {what}"),
            ));
        }
        Ok(())
    }

    fn known_obj(&self, name: &str) -> Result<&ObjState, ScopeError> {
        self.objects.get(name).ok_or_else(|| {
            if self.maps.contains_key(name) {
                err("obj", format!("`{name}` is a mapping, not an object"))
            } else {
                err("obj", format!("no object named `{name}`"))
            }
        })
    }

    fn open_obj(&self, name: &str) -> Result<&ObjState, ScopeError> {
        let o = self.known_obj(name)?;
        if !o.open {
            return Err(err("obj", format!("`{name}` is closed")));
        }
        Ok(o)
    }

    fn live_map(&self, name: &str) -> Result<&MapState, ScopeError> {
        self.maps.get(name).ok_or_else(|| {
            if self.is_declared(name) && !self.objects.contains_key(name) {
                err("map", format!("`{name}` is unmapped"))
            } else {
                err("map", format!("no mapping named `{name}`"))
            }
        })
    }
}

fn check_size(size: u64) -> Result<(), ScopeError> {
    if size > MAX_OBJECT_SIZE {
        return Err(err(
            "size",
            format!("size {size} is above the largest object size {MAX_OBJECT_SIZE}"),
        ));
    }
    Ok(())
}

fn check_range(off: u64, len: u64, limit: u64, what: &str) -> Result<(), ScopeError> {
    if len == 0 {
        return Err(err("len", "len must be at least 1"));
    }
    match off.checked_add(len) {
        Some(end) if end <= limit => Ok(()),
        _ => Err(err(
            "len",
            format!("range {off}+{len} goes past {what} ({limit})"),
        )),
    }
}

fn check_node(node: u8, arg: &'static str) -> Result<(), ScopeError> {
    if node > MAX_NODE {
        return Err(err(arg, format!("node {node} is past node {MAX_NODE}")));
    }
    Ok(())
}
