//! The threaded-section rules: how sections are built (`threads`, `thread`, `join`) and who
//! may use what inside one. A mount or a swap device belongs to the first thread that uses
//! it; an object may be shared by several threads for the operations the shared-object model
//! (`oracle::shared`) can judge whatever the interleaving, and belongs to one thread once it
//! is used with any other operation.

use std::collections::{BTreeMap, BTreeSet};

use super::{err, Scope, ScopeError};
use crate::program::{Advice, MapKind, Op, MAX_THREADS};

/// The threaded section being read: its threads so far and which thread uses what.
#[derive(Clone, Debug, Default)]
pub struct SectionScope {
    pub threads: Vec<String>,
    /// Object, mount or swap device name -> the thread (index) that used it first. Mounts
    /// and swap devices belong to that thread; an object may be shared (see `exclusive`).
    pub(super) claims: BTreeMap<String, usize>,
    /// Objects used by more than one thread of the section (-> a thread other than the
    /// first user that used it): only `Scope::shared_use` operations may use them.
    shared: BTreeMap<String, usize>,
    /// Objects a thread used with an operation that may not be shared (close, ftruncate, …):
    /// they stay that thread's for the rest of the section.
    exclusive: BTreeSet<String>,
    /// Mappings made inside the section -> the thread that made them: their address exists
    /// only in that thread until the join.
    new_maps: BTreeMap<String, usize>,
}

impl Scope {
    /// Structure of sections, and the one-thread-per-resource rule: returns the resources
    /// `op` uses (with the argument naming each) for the current thread to claim.
    pub(super) fn section_rules(
        &mut self,
        op: &Op,
    ) -> Result<Vec<(String, &'static str)>, ScopeError> {
        let whole = |message: &str| ScopeError {
            arg: None,
            message: message.to_string(),
        };
        match (op, &mut self.section) {
            (Op::Threads, Some(_)) => return Err(whole("threaded sections do not nest")),
            (Op::Threads, None) => {
                self.section = Some(SectionScope::default());
                return Ok(Vec::new());
            }
            (Op::Thread { .. } | Op::Join, None) => {
                return Err(whole(&format!(
                    "`{}` outside a threaded section: open one with `threads`",
                    op.keyword()
                )))
            }
            (Op::Thread { name }, Some(sec)) => {
                if sec.threads.iter().any(|t| t == name) {
                    return Err(err(
                        "name",
                        format!("thread `{name}` is already in this section"),
                    ));
                }
                if sec.threads.len() == MAX_THREADS {
                    return Err(whole(&format!(
                        "more than {MAX_THREADS} threads in one section"
                    )));
                }
                sec.threads.push(name.clone());
                return Ok(Vec::new());
            }
            (Op::Join, Some(sec)) => {
                if sec.threads.is_empty() {
                    return Err(whole("`join` of a section with no `thread`"));
                }
                self.section = None;
                return Ok(Vec::new());
            }
            (_, None) => return Ok(Vec::new()),
            (_, Some(sec)) if sec.threads.is_empty() => {
                return Err(whole("after `threads` comes `thread NAME`"))
            }
            (_, Some(_)) if op.is_guest_wide() => {
                return Err(whole(&format!(
                    "`{}` changes the whole guest: it runs outside threaded sections",
                    op.keyword()
                )))
            }
            (_, Some(_)) => {}
        }
        let resources = self.resources(op);
        let sharing = self.shared_use(op);
        let Some(sec) = self.section.as_mut() else {
            return Ok(resources);
        };
        let me = sec.threads.len() - 1;
        if let Some(map) = op.used_name().filter(|m| self.maps.contains_key(*m)) {
            if let Some(&maker) = sec.new_maps.get(map).filter(|t| **t != me) {
                return Err(err(
                    "map",
                    format!(
                        "`{map}` was mapped by thread `{}` in this section: its address exists only in that thread until the join",
                        sec.threads[maker]
                    ),
                ));
            }
        }
        for (res, arg) in &resources {
            let Some(&owner) = sec.claims.get(res) else {
                continue;
            };
            let other = match sec.shared.get(res) {
                _ if owner != me => Some(owner),
                Some(&t) => Some(t),
                None => None,
            };
            if !self.objects.contains_key(res) {
                if owner != me {
                    return Err(err(
                        arg,
                        format!(
                            "`{res}` is used by thread `{}` of this section: threads may not share a mount or swap device",
                            sec.threads[owner]
                        ),
                    ));
                }
                continue;
            }
            let Some(other) = other else {
                continue;
            };
            if sec.exclusive.contains(res) {
                return Err(err(
                    arg,
                    format!(
                        "`{res}` is used by thread `{}` of this section with an operation that may not share it (close, unlink, munmap, ftruncate, punch, …): it stays that thread's until the join",
                        sec.threads[owner]
                    ),
                ));
            }
            if let Err(why) = &sharing {
                return Err(err(
                    arg,
                    format!(
                        "`{res}` is shared with thread `{}` of this section: {why}",
                        sec.threads[other]
                    ),
                ));
            }
        }
        for (res, _) in &resources {
            if !self.objects.contains_key(res) {
                continue;
            }
            if sec.claims.get(res).is_some_and(|t| *t != me) {
                sec.shared.entry(res.clone()).or_insert(me);
            }
            if sharing.is_err() {
                sec.exclusive.insert(res.clone());
            }
        }
        if let Op::Mmap { map, .. } = op {
            sec.new_maps.insert(map.clone(), me);
        }
        Ok(resources)
    }

    /// Whether `op` may use an object another thread of the section also uses, and if not,
    /// why: the operations whose every outcome the shared-object model (`oracle::shared`)
    /// can state whatever the interleaving. They leave the object's size and life alone.
    fn shared_use(&self, op: &Op) -> Result<(), &'static str> {
        let map_kind = |m: &str| self.maps.get(m).map(|s| s.kind);
        match op {
            Op::Check { .. } | Op::Mmap { .. } => Ok(()),
            Op::Write { obj, off, len, .. } => match self.objects.get(obj) {
                Some(o) if off + len <= o.size => Ok(()),
                _ => Err("a write past end-of-file grows the file, and a thread sharing it would see end-of-file move under its reads and touches (a touch past it faults)"),
            },
            Op::Touch { map, .. } if map_kind(map) == Some(MapKind::Private) => {
                Err("a private mapping copies a page at its first write, at a moment another thread's writes race with")
            }
            Op::Touch { .. } => Ok(()),
            Op::Madvise { map, advice, .. } => match (map_kind(map), advice) {
                (Some(MapKind::Private), _) => Err("a private mapping's copied pages are not modelled when shared"),
                (_, Advice::Pageout | Advice::Cold | Advice::Willneed) => Ok(()),
                _ => Err("only madvise pageout, cold and willneed (which move pages without changing a byte) may share an object"),
            },
            Op::Close { .. } | Op::Unlink { .. } | Op::Munmap { .. } | Op::Umount { .. } => {
                Err("closing, unlinking, unmapping or unmounting it ends a descriptor or range another thread may be using (a closed descriptor's number can be handed to another object before the racing write uses it)")
            }
            Op::Ftruncate { .. } | Op::Punch { .. } => {
                Err("resizing or punching it moves end-of-file or drops pages under another thread's reads and touches (a touch past end-of-file faults)")
            }
            _ => Err("only write (below end-of-file), check, mmap, touch of a shared or gem mapping and madvise pageout/cold/willneed may share an object"),
        }
    }
}
