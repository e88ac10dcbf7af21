//! The oracle: what every object must hold and what every operation must return.
//!
//! - [`pattern`]: the seeded byte pattern writes use.
//! - [`model`]: the reference model of objects, mappings and swap devices; for each operation
//!   it says which results are allowed and, for reads, which bytes must come back.
//! - [`shared`]: objects the threads of a section share: the bytes a racing read may return
//!   and what the object may hold at the join.
//! - [`finding`]: findings, their kinds and signatures, and the verdict over a whole run.
//! - [`zones`]: the zone oracle: which pages of DMA32-constrained objects must be below 4 GiB.
//!
//! The same model runs in the guest agent (which needs the expected bytes to compare reads
//! against) and on the host (which recomputes every expectation rather than trusting the
//! guest's).

pub mod finding;
pub mod model;
pub mod pattern;
pub mod shared;
pub mod zones;

pub use finding::{Finding, FindingKind, Verdict};
pub use model::{Expect, Model, TouchPlan};
