//! `records.json`, bundle format 1: one [`OpRecordV1`] per recorded operation, the
//! on-disk twin of [`OpRecord`] and the types it holds.
//!
//! Checked on read ([`TryFrom`]), besides the shape (`deny_unknown_fields` everywhere):
//! - a page's `order` is at most [`MAX_ORDER`] (a 1 GiB folio) and its `pfn` below
//!   [`PFN_LIMIT`] (52-bit physical addresses);
//! - an object has at most [`MAX_OBJ_PAGES`] pages;
//! - a data check counts no more mismatched bytes than it expected and read, no more
//!   mismatched pages than bytes, and names a first mismatch exactly when it counts one;
//! - a pagemap check has `mismatched ≤ compared`;
//! - a page owner's page index is below [`MAX_OBJ_PAGES`] and its pfn below [`PFN_LIMIT`].
//!
//! Operation indices (in the program, in order) are checked against the program by the
//! bundle (`BundleContents::check`).

use serde::{Deserialize, Serialize};
use shmemfuzz_core::protocol::{
    DataCheck, ObjObs, OpRecord, OpResult, PageObs, PageOwner, PageState, PagemapCheck,
};

use super::OnDiskError;

/// Largest folio order on x86-64: a 1 GiB hugetlb page.
pub const MAX_ORDER: u8 = 18;
/// Page frame numbers are below 2^40 (52-bit physical addresses, 4 KiB pages).
pub const PFN_LIMIT: u64 = 1 << 40;
/// Most pages one observed object has: 4 GiB, more than any guest's memory.
pub const MAX_OBJ_PAGES: usize = 1 << 20;

/// One operation's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpRecordV1 {
    /// The operation's index in the program.
    pub index: u32,
    pub result: OpResultV1,
    pub data: Option<DataCheckV1>,
    pub micros: u64,
    pub swap_used_kib: u64,
    pub pages: Vec<ObjObsV1>,
    pub pagemap: Option<PagemapCheckV1>,
    /// Absent in bundles from before page owners: `null`.
    #[serde(default)]
    pub page_owner: Option<PageOwnerV1>,
    /// Absent in bundles from before ranged delays: `null`.
    #[serde(default)]
    pub drawn: Option<u32>,
    /// Absent in bundles from before khugepaged was watched: `false`.
    #[serde(default)]
    pub background_collapse: bool,
}

/// `"Ok"`, `{"Errno": N}` or `"Skipped"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum OpResultV1 {
    Ok,
    Errno(i32),
    Skipped,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataCheckV1 {
    pub expected_len: u64,
    pub read_len: u64,
    pub mismatched_bytes: u64,
    pub mismatched_pages: u64,
    /// `[offset, expected byte, actual byte]`.
    pub first_mismatch: Option<(u64, u8, u8)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PageStateV1 {
    Absent,
    Resident,
    Swapped,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageObsV1 {
    pub state: PageStateV1,
    pub pfn: u64,
    pub pinned: bool,
    /// Absent in bundles from before folio orders: 0.
    #[serde(default)]
    pub order: u8,
    /// Absent in bundles from before PAGE_INFO's head flag: taken from the PFN's alignment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjObsV1 {
    pub obj: String,
    pub pages: Vec<PageObsV1>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagemapCheckV1 {
    pub compared: u32,
    pub mismatched: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageOwnerV1 {
    pub obj: String,
    pub page: u64,
    pub pfn: u64,
    pub report: String,
}

impl From<&OpRecord> for OpRecordV1 {
    fn from(r: &OpRecord) -> Self {
        OpRecordV1 {
            index: r.index,
            result: match r.result {
                OpResult::Ok => OpResultV1::Ok,
                OpResult::Errno(e) => OpResultV1::Errno(e),
                OpResult::Skipped => OpResultV1::Skipped,
            },
            data: r.data.as_ref().map(|d| DataCheckV1 {
                expected_len: d.expected_len,
                read_len: d.read_len,
                mismatched_bytes: d.mismatched_bytes,
                mismatched_pages: d.mismatched_pages,
                first_mismatch: d.first_mismatch,
            }),
            micros: r.micros,
            swap_used_kib: r.swap_used_kib,
            pages: r.pages.iter().map(ObjObsV1::from).collect(),
            pagemap: r.pagemap.map(|p| PagemapCheckV1 {
                compared: p.compared,
                mismatched: p.mismatched,
            }),
            page_owner: r.page_owner.as_ref().map(|o| PageOwnerV1 {
                obj: o.obj.clone(),
                page: o.page,
                pfn: o.pfn,
                report: o.report.clone(),
            }),
            drawn: r.drawn,
            background_collapse: r.background_collapse,
        }
    }
}

impl From<&ObjObs> for ObjObsV1 {
    fn from(o: &ObjObs) -> Self {
        ObjObsV1 {
            obj: o.obj.clone(),
            pages: o
                .pages
                .iter()
                .map(|p| PageObsV1 {
                    state: match p.state {
                        PageState::Absent => PageStateV1::Absent,
                        PageState::Resident => PageStateV1::Resident,
                        PageState::Swapped => PageStateV1::Swapped,
                    },
                    pfn: p.pfn,
                    pinned: p.pinned,
                    order: p.order,
                    head: Some(p.head),
                })
                .collect(),
        }
    }
}

impl TryFrom<OpRecordV1> for OpRecord {
    type Error = OnDiskError;

    fn try_from(r: OpRecordV1) -> Result<Self, OnDiskError> {
        let at = |field: &str| format!("the record of operation {}: {field}", r.index);
        let data = r.data.map(|d| d.check(&at("data"))).transpose()?;
        let pages = r
            .pages
            .into_iter()
            .map(|o| o.check(&at("pages")))
            .collect::<Result<_, _>>()?;
        if let Some(p) = r.pagemap.filter(|p| p.mismatched > p.compared) {
            return Err(OnDiskError::out_of_range(
                at("pagemap"),
                format!("{} mismatched of {} compared", p.mismatched, p.compared),
            ));
        }
        if let Some(o) = &r.page_owner {
            if o.page >= MAX_OBJ_PAGES as u64 || o.pfn >= PFN_LIMIT {
                return Err(OnDiskError::out_of_range(
                    at("page_owner"),
                    format!(
                        "page {} at pfn {:#x}: pages are below {MAX_OBJ_PAGES}, pfns below \
                         {PFN_LIMIT:#x}",
                        o.page, o.pfn
                    ),
                ));
            }
        }
        Ok(OpRecord {
            index: r.index,
            result: match r.result {
                OpResultV1::Ok => OpResult::Ok,
                OpResultV1::Errno(e) => OpResult::Errno(e),
                OpResultV1::Skipped => OpResult::Skipped,
            },
            data,
            micros: r.micros,
            swap_used_kib: r.swap_used_kib,
            pages,
            pagemap: r.pagemap.map(|p| PagemapCheck {
                compared: p.compared,
                mismatched: p.mismatched,
            }),
            page_owner: r.page_owner.map(|o| PageOwner {
                obj: o.obj,
                page: o.page,
                pfn: o.pfn,
                report: o.report,
            }),
            drawn: r.drawn,
            background_collapse: r.background_collapse,
            // Live feedback only: a bundle's records do not keep it.
            start_micros: 0,
        })
    }
}

impl DataCheckV1 {
    fn check(self, at: &str) -> Result<DataCheck, OnDiskError> {
        let bad = |why: String| Err(OnDiskError::out_of_range(at, why));
        let most = self.expected_len.min(self.read_len);
        if self.mismatched_bytes > most {
            return bad(format!(
                "{} mismatched bytes, but only {most} were both expected and read",
                self.mismatched_bytes
            ));
        }
        if self.mismatched_pages > self.mismatched_bytes {
            return bad(format!(
                "{} mismatched pages but {} mismatched bytes",
                self.mismatched_pages, self.mismatched_bytes
            ));
        }
        if self.first_mismatch.is_some() != (self.mismatched_bytes > 0) {
            return bad(format!(
                "{} mismatched bytes, and a first mismatch {}",
                self.mismatched_bytes,
                if self.first_mismatch.is_some() {
                    "given"
                } else {
                    "missing"
                }
            ));
        }
        Ok(DataCheck {
            expected_len: self.expected_len,
            read_len: self.read_len,
            mismatched_bytes: self.mismatched_bytes,
            mismatched_pages: self.mismatched_pages,
            first_mismatch: self.first_mismatch,
        })
    }
}

impl ObjObsV1 {
    fn check(self, at: &str) -> Result<ObjObs, OnDiskError> {
        let at = format!("{at}: object {}", self.obj);
        if self.pages.len() > MAX_OBJ_PAGES {
            return Err(OnDiskError::out_of_range(
                at,
                format!("{} pages, more than {MAX_OBJ_PAGES}", self.pages.len()),
            ));
        }
        let mut pages = Vec::with_capacity(self.pages.len());
        for (i, p) in self.pages.into_iter().enumerate() {
            if p.order > MAX_ORDER || p.pfn >= PFN_LIMIT {
                return Err(OnDiskError::out_of_range(
                    format!("{at}: page {i}"),
                    format!(
                        "order {} at pfn {:#x}: orders are at most {MAX_ORDER}, pfns below \
                         {PFN_LIMIT:#x}",
                        p.order, p.pfn
                    ),
                ));
            }
            pages.push(PageObs {
                state: match p.state {
                    PageStateV1::Absent => PageState::Absent,
                    PageStateV1::Resident => PageState::Resident,
                    PageStateV1::Swapped => PageState::Swapped,
                },
                pfn: p.pfn,
                pinned: p.pinned,
                order: p.order,
                head: p
                    .head
                    .unwrap_or_else(|| PageObs::head_by_alignment(p.pfn, p.order)),
            });
        }
        Ok(ObjObs {
            obj: self.obj,
            pages,
        })
    }
}
