//! `bundle.json`'s on-disk types (`ManifestV1`), kept apart from the in-memory ones so that
//! the format changes only on purpose: any change here bumps [`BUNDLE_VERSION`] and teaches
//! `parse_manifest` to migrate (or clearly refuse) the older version. The version covers
//! every file of the bundle: `records.json` and `outcome.json` are the twins in
//! [`crate::ondisk::records`] and [`crate::ondisk::outcome`], `trace.json` the one in
//! [`crate::ondisk::trace`] (which also uses [`DiskZone`] and [`DiskSettings`]).
//!
//! Checked on read, besides the shape (`deny_unknown_fields` everywhere): the format name,
//! the version (a newer one is refused: "bundle format N is newer than this shmemfuzz
//! understands (≤ M); upgrade shmemfuzz"; `version` is required, as every bundle ever
//! written has one), and by `BundleContents::check`: at least one run and `hits ≤ runs`,
//! the memory layout, `1 ≤ smp ≤ 64`, one reported swap device per attached disk, each zone's
//! `free ≤ managed ≤ present ≤ spanned` and `start_pfn + spanned` within 2^40, the kernel
//! hashes (64 lowercase hex digits), and the findings against outcome.json's.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use shmemfuzz_core::protocol::GuestSettings;
use shmemfuzz_core::zoneinfo::Zone;

use super::BundleError;

/// `bundle.json`'s `format`.
pub const BUNDLE_FORMAT: &str = "shmemfuzz-bundle";
/// The format version this harness writes.
pub const BUNDLE_VERSION: u32 = 1;
/// The oldest format version this harness reads (migrating it to [`BUNDLE_VERSION`]).
pub const OLDEST_VERSION: u32 = 1;

/// `bundle.json`, version 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ManifestV1 {
    pub format: String,
    pub version: u32,
    /// The shmemfuzz version that wrote the bundle.
    pub harness: String,
    /// Unix seconds.
    pub created: u64,
    pub kernel: DiskKernel,
    /// The QEMU command line of the recorded run.
    pub qemu: String,
    /// Checked on read as a VM's layout is (`MemoryLayout::validate`).
    pub memory: DiskMemory,
    /// Checked on read: 1 to 64 (`VmConfig::MAX_SMP`).
    pub smp: u32,
    /// Extra kernel arguments (after the harness's defaults, which `qemu` shows in full).
    pub append: Vec<String>,
    pub swap: DiskSwap,
    pub op_timeout_ms: u64,
    pub settings: DiskSettings,
    pub guest: DiskGuest,
    /// The finding this bundle is about, `null` for a clean recording.
    pub signature: Option<String>,
    /// Every finding of the recorded run (the full ones are in outcome.json).
    pub findings: Vec<DiskFinding>,
    /// Runs of this program counted so far, and how many showed `signature` (or were clean,
    /// for a clean recording). Checked on read: `runs ≥ 1` and `hits ≤ runs`.
    pub runs: u32,
    pub hits: u32,
    /// sha256 (hex) of every other file, by name.
    pub files: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DiskKernel {
    pub id: String,
    /// `uname -r` in the guest.
    pub release: String,
    /// `uname -v` in the guest.
    pub version: String,
    /// Of the kernel's `.config`; `null` if the kernel came without one.
    pub config_sha256: Option<String>,
    pub bzimage_sha256: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DiskMemory {
    pub total_mib: u32,
    pub below_4g_mib: u32,
    /// NUMA nodes (absent in bundles written before topologies: one).
    #[serde(default = "one_node", skip_serializing_if = "is_one_node")]
    pub nodes: u8,
}

fn one_node() -> u8 {
    1
}

fn is_one_node(n: &u8) -> bool {
    *n == 1
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DiskSwap {
    /// Swap disks attached (`swap0`, `swap1`, ...).
    pub devices: u8,
    /// Bytes per swap disk.
    pub size: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskSettings {
    pub page_cluster: String,
    pub swappiness: String,
    pub shmem_enabled: String,
    pub thp_enabled: String,
    pub lru_gen: String,
    pub zswap: String,
    pub swap_rotational: Vec<String>,
}

impl From<&GuestSettings> for DiskSettings {
    fn from(s: &GuestSettings) -> Self {
        DiskSettings {
            page_cluster: s.page_cluster.clone(),
            swappiness: s.swappiness.clone(),
            shmem_enabled: s.shmem_enabled.clone(),
            thp_enabled: s.thp_enabled.clone(),
            lru_gen: s.lru_gen.clone(),
            zswap: s.zswap.clone(),
            swap_rotational: s.swap_rotational.clone(),
        }
    }
}

// Field by field from the default, so that settings the agent learns to report later read
// back as "not recorded" from older bundles instead of breaking this conversion.
#[allow(clippy::field_reassign_with_default)]
impl From<DiskSettings> for GuestSettings {
    fn from(d: DiskSettings) -> Self {
        let mut s = GuestSettings::default();
        s.page_cluster = d.page_cluster;
        s.swappiness = d.swappiness;
        s.shmem_enabled = d.shmem_enabled;
        s.thp_enabled = d.thp_enabled;
        s.lru_gen = d.lru_gen;
        s.zswap = d.zswap;
        s.swap_rotational = d.swap_rotational;
        s
    }
}

/// What the agent reported at ready, besides the kernel's identity and the settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DiskGuest {
    pub zones: Vec<DiskZone>,
    /// Checked on read: one per attached swap disk (`swap.devices`).
    pub swap_devices: Vec<String>,
    /// Taint flags the session knew when the bundle was made.
    pub taint: u64,
    pub modules: Vec<String>,
    pub boot_ms: u64,
    pub ready_after_ms: u64,
}

/// A zone as /proc/zoneinfo gave it, in pages. Checked on read (in bundle.json):
/// `free ≤ managed ≤ present ≤ spanned` and `start_pfn + spanned ≤ 2^40`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskZone {
    pub node: u32,
    pub name: String,
    pub start_pfn: u64,
    pub spanned: u64,
    pub present: u64,
    pub managed: u64,
    pub free: u64,
}

impl From<&Zone> for DiskZone {
    fn from(z: &Zone) -> Self {
        DiskZone {
            node: z.node,
            name: z.name.clone(),
            start_pfn: z.start_pfn,
            spanned: z.spanned,
            present: z.present,
            managed: z.managed,
            free: z.free,
        }
    }
}

impl From<DiskZone> for Zone {
    fn from(d: DiskZone) -> Self {
        Zone {
            node: d.node,
            name: d.name,
            start_pfn: d.start_pfn,
            spanned: d.spanned,
            present: d.present,
            managed: d.managed,
            free: d.free,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DiskFinding {
    /// `FindingKind::tag()`: `data`, `zone`, ...
    pub kind: String,
    pub title: String,
    pub signature: String,
}

/// Just enough of any version's `bundle.json` to tell which version it is.
#[derive(Deserialize)]
struct Header {
    format: Option<serde_json::Value>,
    version: Option<serde_json::Value>,
}

/// The format version of `bundle.json`'s `bytes`, after checking it is a bundle at all.
pub(super) fn read_version(path: &Path, bytes: &[u8]) -> Result<u64, BundleError> {
    let header: Header = serde_json::from_slice(bytes).map_err(|source| BundleError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    // Named as the directory: "<dir> is not a shmemfuzz bundle: bundle.json's ...".
    let not_a_bundle = |why: String| BundleError::NotABundle {
        path: path.parent().unwrap_or(path).to_path_buf(),
        why: format!(
            "{}'s {why}",
            path.file_name().unwrap_or_default().to_string_lossy()
        ),
    };
    match header.format {
        Some(serde_json::Value::String(f)) if f == BUNDLE_FORMAT => {}
        Some(other) => {
            return Err(not_a_bundle(format!(
                "\"format\" is {other}, not \"{BUNDLE_FORMAT}\""
            )))
        }
        None => return Err(not_a_bundle("\"format\" field is missing".into())),
    }
    match header.version {
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| not_a_bundle(format!("\"version\" is {n}, not a non-negative integer"))),
        Some(other) => Err(not_a_bundle(format!(
            "\"version\" is {other}, not a number"
        ))),
        None => Err(not_a_bundle("\"version\" field is missing".into())),
    }
}

/// Parses `bundle.json` of any version this harness reads into the current shape.
pub(super) fn parse_manifest(path: &Path, bytes: &[u8]) -> Result<ManifestV1, BundleError> {
    let version = read_version(path, bytes)?;
    if version > u64::from(BUNDLE_VERSION) {
        return Err(BundleError::TooNew {
            path: path.to_path_buf(),
            found: version,
            supported: BUNDLE_VERSION,
            harness: env!("CARGO_PKG_VERSION"),
        });
    }
    if version < u64::from(OLDEST_VERSION) {
        return Err(BundleError::TooOld {
            path: path.to_path_buf(),
            found: version,
            oldest: OLDEST_VERSION,
        });
    }
    // One arm per version read; an older version parses into its own struct and is
    // converted here into the current one.
    let json = |source| BundleError::Json {
        path: path.to_path_buf(),
        source,
    };
    match version {
        1 => serde_json::from_slice::<ManifestV1>(bytes).map_err(json),
        // Unreachable while OLDEST_VERSION == BUNDLE_VERSION; kept so the bounds above are
        // the only place a version is accepted.
        _ => Err(BundleError::TooOld {
            path: path.to_path_buf(),
            found: version,
            oldest: BUNDLE_VERSION,
        }),
    }
}
