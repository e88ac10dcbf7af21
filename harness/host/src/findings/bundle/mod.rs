//! Record/replay bundles: one recorded run in a directory that replays with one command, on
//! the same kernel or another one, and is diffed against the recording
//! ([`shmemfuzz_core::replay::diff`]).
//!
//! ```text
//! <bundle>/
//! +--------------+--------------------------------------------------------+-----------------+
//! | file         | contents                                               | read checks     |
//! +--------------+--------------------------------------------------------+-----------------+
//! | bundle.json  | the manifest (format::ManifestV1):                     | format name,    |
//! |              |   format "shmemfuzz-bundle", version 1, harness,       | version (newer: |
//! |              |   created (unix seconds),                              | refused; older: |
//! |              |   kernel {id, release, version (uname -v),             | migrated or     |
//! |              |     config_sha256 (or null), bzimage_sha256},          | refused), no    |
//! |              |   qemu (command line), memory {total_mib,              | unknown fields, |
//! |              |   below_4g_mib}, smp, append [kernel args],            | consistency     |
//! |              |   swap {devices, size}, op_timeout_ms,                 | with the other  |
//! |              |   settings {page_cluster, swappiness, shmem_enabled,   | files           |
//! |              |     thp_enabled, lru_gen, zswap, swap_rotational},     |                 |
//! |              |   guest {zones, swap_devices, taint, modules,          |                 |
//! |              |     boot_ms, ready_after_ms},                          |                 |
//! |              |   signature (or null for a clean recording),           |                 |
//! |              |   findings [{kind, title, signature}], runs, hits,     |                 |
//! |              |   files {name: sha256} of the five files below         |                 |
//! | program.prog | the program, canonical text form                       | sha256, parser  |
//! |              |                                                        | (line, column)  |
//! | records.json | [OpRecordV1], one a line: every record, losslessly     | sha256, shape,  |
//! |              |   (what a replay is diffed against)                    | indices, bounds |
//! | outcome.json | OutcomeV1 {exit, teardown, verdict, reports, vm_alive, | sha256, shape,  |
//! |              |   wall_ms, draws}                                      | bounds, ops     |
//! | trace.json   | the trace `shmemfuzz run --trace` writes (for people;  | sha256          |
//! |              |   derived from the files above, never read back)       |                 |
//! | console.log  | the recorded run's serial console, byte for byte       | sha256          |
//! | report.txt   | a bundle about a finding: the bug report to send       | never read      |
//! | repro.c      |   and its C reproducer ([`sendable`]; derived, not in  |                 |
//! |              |   `files`)                                             |                 |
//! +--------------+--------------------------------------------------------+-----------------+
//! ```
//!
//! The on-disk types live in [`format`](mod@format) (the manifest) and [`crate::files::ondisk`]
//! (records, outcome, trace; their module docs list what is checked on read) and are
//! converted to and from the in-memory ones here ([`BundleContents`], [`KernelIdentity`], the
//! session's types), so the format changes only on purpose. bundle.json's version is the
//! version of every file in the bundle.
//!
//! Writing is atomic: the bundle is written into `.partial-bundle-*` next to its destination,
//! read back in full, and only then renamed into place, so an interrupted write (Ctrl-C, a
//! full disk, contents that do not read back) never leaves a half bundle under the
//! destination's name. An existing destination is replaced only when asked
//! ([`Bundle::write_replacing`]) and only if it is a bundle or an empty directory.

mod error;
pub mod format;
pub mod sendable;

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use shmemfuzz_core::oracle::Finding;
use shmemfuzz_core::program::{self, Program};
use shmemfuzz_core::protocol::OpRecord;
use shmemfuzz_core::replay::{self, Divergence};
use shmemfuzz_core::zoneinfo::Zone;

pub use error::BundleError;
use format::{
    DiskFinding, DiskGuest, DiskKernel, DiskMemory, DiskSettings, DiskSwap, DiskZone, ManifestV1,
};
pub use format::{BUNDLE_FORMAT, BUNDLE_VERSION, OLDEST_VERSION};

use crate::files::bounded;
use crate::files::ondisk::outcome::{Outcome, OutcomeV1};
use crate::files::ondisk::records::OpRecordV1;
use crate::files::ondisk::OnDiskError;
use crate::guest::vm::MemoryLayout;
use crate::kernels::kernel::FetchedKernel;
use crate::session::trace::Trace;
use crate::session::{GuestInfo, RunOutcome, SessionOptions};

/// The files of a bundle.
pub mod files {
    pub const MANIFEST: &str = "bundle.json";
    pub const PROGRAM: &str = "program.prog";
    pub const RECORDS: &str = "records.json";
    pub const OUTCOME: &str = "outcome.json";
    pub const TRACE: &str = "trace.json";
    pub const CONSOLE: &str = "console.log";
    /// Every file but the manifest, i.e. those `bundle.json` holds a sha256 for.
    pub const CHECKED: [&str; 5] = [PROGRAM, RECORDS, OUTCOME, TRACE, CONSOLE];
}

/// Prefix of the work-in-progress directories next to a bundle being written.
const PARTIAL_PREFIX: &str = ".partial-bundle-";

/// Which kernel a run booted, precisely enough to tell whether a replay used the same one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelIdentity {
    /// Catalog id (or `src-6.1`, ...).
    pub id: String,
    /// `uname -r` in the guest.
    pub release: String,
    /// `uname -v` in the guest.
    pub version: String,
    /// sha256 of the kernel's `.config`; `None` if the kernel came without one.
    pub config_sha256: Option<String>,
    pub bzimage_sha256: String,
}

impl KernelIdentity {
    /// Hashes `kernel`'s image and config; release and version are what the guest reported.
    pub fn of(kernel: &FetchedKernel, guest: &GuestInfo) -> Result<Self, BundleError> {
        let config_sha256 = match fs::File::open(&kernel.config) {
            Ok(f) => Some(sha256_reader(f, &kernel.config)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(BundleError::io("reading", &kernel.config, e)),
        };
        let image = fs::File::open(&kernel.bzimage)
            .map_err(|e| BundleError::io("reading", &kernel.bzimage, e))?;
        Ok(KernelIdentity {
            id: kernel.id.clone(),
            release: guest.release.clone(),
            version: guest.version.clone(),
            config_sha256,
            bzimage_sha256: sha256_reader(image, &kernel.bzimage)?,
        })
    }
}

/// How often the bundle's signature showed, over the runs counted so far (for hit rates).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HitCount {
    pub runs: u32,
    /// Runs that showed the signature (for a clean recording: runs that came out clean).
    pub hits: u32,
}

impl HitCount {
    /// `hits / runs` (0 for no runs).
    pub fn rate(&self) -> f64 {
        if self.runs == 0 {
            return 0.0;
        }
        f64::from(self.hits) / f64::from(self.runs)
    }
}

/// Everything a bundle holds, in memory.
#[derive(Clone, Debug)]
pub struct BundleContents {
    pub program: Program,
    /// The recorded run: `records` losslessly, plus exit, teardown, verdict and reports.
    pub outcome: RunOutcome,
    /// What the agent reported at ready (zones, settings, swap devices, ...). Its `release`
    /// and `version` equal `kernel`'s.
    pub guest: GuestInfo,
    pub kernel: KernelIdentity,
    /// The QEMU command line of the recorded run.
    pub qemu: String,
    pub memory: MemoryLayout,
    pub smp: u32,
    /// Extra kernel arguments (`SessionOptions::append`).
    pub append: Vec<String>,
    /// Swap disks attached and the size of each, in bytes.
    pub swap_devices: u8,
    pub swap_size: u64,
    /// The agent's deadline for one operation, in milliseconds.
    pub op_timeout_ms: u64,
    /// The recorded run's serial console, byte for byte.
    pub console: Vec<u8>,
    /// The finding this bundle is about (one of `outcome.verdict`'s), `None` for a clean
    /// recording.
    pub signature: Option<String>,
    pub hits: HitCount,
}

impl BundleContents {
    /// The contents for one run, from what [`crate::session::Session::run`] returned and the
    /// session it ran in: `guest` is `session.info`, `qemu` is `session.command_line()`,
    /// `console` is `session.console_path()` (read now: call this after
    /// `Session::shutdown` to capture the console to its end, while the work directory
    /// still exists). The bundle is about the run's first finding (see [`Self::about`]),
    /// and counts the recorded run as its one hit.
    pub fn from_run(
        program: &Program,
        outcome: &RunOutcome,
        kernel: &FetchedKernel,
        guest: &GuestInfo,
        qemu: String,
        console: &Path,
        opts: &SessionOptions,
    ) -> Result<Self, BundleError> {
        // A long console keeps its end, where the report is.
        let console_bytes = bounded::read_tail(console, bounded::CONSOLE_MAX)?;
        Ok(BundleContents {
            program: program.clone(),
            outcome: outcome.clone(),
            guest: guest.clone(),
            kernel: KernelIdentity::of(kernel, guest)?,
            qemu,
            memory: opts.memory,
            smp: opts.smp,
            append: opts.append.clone(),
            swap_devices: opts.swap_devices,
            swap_size: opts.swap_size,
            op_timeout_ms: u64::try_from(opts.op_timeout.as_millis()).unwrap_or(u64::MAX),
            console: console_bytes,
            signature: outcome
                .verdict
                .findings
                .first()
                .map(|f| f.signature.clone()),
            hits: HitCount { runs: 1, hits: 1 },
        })
    }

    /// Makes the bundle about `signature` (one of the run's findings), or a clean recording.
    pub fn about(mut self, signature: Option<String>) -> Self {
        self.signature = signature;
        self
    }

    /// Sets the session options a replay needs to run like the recording: memory layout,
    /// vCPUs, kernel arguments, swap disks and the operation deadline. (The kernel, the
    /// accelerator, the work directory and the mock module are the replayer's choice.)
    pub fn apply_to(&self, opts: &mut SessionOptions) {
        opts.memory = self.memory;
        opts.smp = self.smp;
        opts.append = self.append.clone();
        opts.swap_devices = self.swap_devices;
        opts.swap_size = self.swap_size;
        opts.op_timeout = std::time::Duration::from_millis(self.op_timeout_ms);
        // Ranged delays and spins draw exactly what they drew in the recording.
        opts.draws = Some(self.outcome.draws);
    }

    /// How `replayed` (a run of the same program, in a guest with zones `zones`) differs from
    /// the recording; empty if it matched.
    pub fn diff(&self, replayed: &[OpRecord], zones: &[Zone]) -> Vec<Divergence> {
        replay::diff(
            &self.program,
            &self.outcome.records,
            replayed,
            &self.guest.zones,
            zones,
        )
    }

    /// The first way these contents contradict themselves: the bundle file that would hold
    /// the contradiction, and a message for [`BundleError::Invalid`].
    fn check(&self) -> Result<(), (&'static str, String)> {
        self.check_records().map_err(|m| (files::RECORDS, m))?;
        self.check_manifest().map_err(|m| (files::MANIFEST, m))
    }

    /// Records are for operations of the program, in program order, at most one each. Some
    /// may be missing: a run ended by a kernel report or a hang stops where it is, and in a
    /// threaded section a later operation of one thread can have finished while an earlier one
    /// of another never did.
    fn check_records(&self) -> Result<(), String> {
        let n_ops = self.program.ops.len();
        let mut next = 0usize;
        for (i, r) in self.outcome.records.iter().enumerate() {
            let index = r.index as usize;
            if index < next || index >= n_ops {
                return Err(format!(
                    "record {i} is for operation {index}: records must be for the program's \
                     {n_ops} operations, in order, at most one each"
                ));
            }
            next = index + 1;
        }
        Ok(())
    }

    fn check_manifest(&self) -> Result<(), String> {
        if let Some(sig) = &self.signature {
            let sigs = self.outcome.verdict.signatures();
            if !sigs.contains(&sig.as_str()) {
                return Err(format!(
                    "the bundle is about `{sig}`, which is not among the recorded run's findings \
                     {sigs:?}"
                ));
            }
        }
        if self.hits.runs == 0 || self.hits.hits > self.hits.runs {
            return Err(format!(
                "{} hits in {} runs: there must be at least one run and no more hits than runs",
                self.hits.hits, self.hits.runs
            ));
        }
        self.memory.validate().map_err(|e| e.to_string())?;
        let max_smp = crate::guest::vm::VmConfig::MAX_SMP;
        if self.smp == 0 || self.smp > max_smp {
            return Err(format!(
                "smp is {}: a guest has 1 to {max_smp} vCPUs",
                self.smp
            ));
        }
        for z in &self.guest.zones {
            let end = z.start_pfn.checked_add(z.spanned);
            if !(z.free <= z.managed && z.managed <= z.present && z.present <= z.spanned)
                || end.is_none_or(|e| e > crate::files::ondisk::records::PFN_LIMIT)
            {
                return Err(format!(
                    "zone {} of node {} is impossible: free {}, managed {}, present {}, \
                     spanned {} from pfn {:#x} (free ≤ managed ≤ present ≤ spanned, and it \
                     ends below pfn {:#x})",
                    z.name,
                    z.node,
                    z.free,
                    z.managed,
                    z.present,
                    z.spanned,
                    z.start_pfn,
                    crate::files::ondisk::records::PFN_LIMIT
                ));
            }
        }
        if (self.guest.release.as_str(), self.guest.version.as_str())
            != (self.kernel.release.as_str(), self.kernel.version.as_str())
        {
            return Err(format!(
                "the guest reported kernel {} ({}), the kernel identity says {} ({})",
                self.guest.release, self.guest.version, self.kernel.release, self.kernel.version
            ));
        }
        if self.guest.swap_devices.len() != usize::from(self.swap_devices) {
            return Err(format!(
                "{} swap disks were attached but the guest reported {:?}",
                self.swap_devices, self.guest.swap_devices
            ));
        }
        let hashes = std::iter::once(("bzimage_sha256", Some(&self.kernel.bzimage_sha256))).chain(
            std::iter::once(("config_sha256", self.kernel.config_sha256.as_ref())),
        );
        for (name, h) in hashes {
            if let Some(h) = h.filter(|h| !is_sha256_hex(h)) {
                return Err(format!(
                    "kernel {name} `{h}` is not a sha256 (64 lowercase hex digits)"
                ));
            }
        }
        Ok(())
    }

    fn manifest(&self, files: BTreeMap<String, String>, stamp: &Stamp) -> ManifestV1 {
        let g = &self.guest;
        let k = &self.kernel;
        ManifestV1 {
            format: BUNDLE_FORMAT.into(),
            version: BUNDLE_VERSION,
            harness: stamp.harness.into(),
            created: stamp.created,
            kernel: DiskKernel {
                id: k.id.clone(),
                release: k.release.clone(),
                version: k.version.clone(),
                config_sha256: k.config_sha256.clone(),
                bzimage_sha256: k.bzimage_sha256.clone(),
            },
            qemu: self.qemu.clone(),
            memory: DiskMemory {
                total_mib: self.memory.total_mib,
                below_4g_mib: self.memory.below_4g_mib,
                nodes: self.memory.nodes,
            },
            smp: self.smp,
            append: self.append.clone(),
            swap: DiskSwap {
                devices: self.swap_devices,
                size: self.swap_size,
            },
            op_timeout_ms: self.op_timeout_ms,
            settings: DiskSettings::from(&g.settings),
            guest: DiskGuest {
                zones: g.zones.iter().map(DiskZone::from).collect(),
                swap_devices: g.swap_devices.clone(),
                taint: g.taint,
                modules: g.modules.clone(),
                boot_ms: g.boot_ms,
                ready_after_ms: g.ready_after_ms,
            },
            signature: self.signature.clone(),
            findings: self
                .outcome
                .verdict
                .findings
                .iter()
                .map(disk_finding)
                .collect(),
            runs: self.hits.runs,
            hits: self.hits.hits,
            files,
        }
    }
}

fn disk_finding(f: &Finding) -> DiskFinding {
    DiskFinding {
        kind: f.kind.tag().into(),
        title: f.title.clone(),
        signature: f.signature.clone(),
    }
}

/// A bundle read from disk.
#[derive(Clone, Debug)]
pub struct Bundle {
    pub dir: PathBuf,
    /// The format version on disk (the contents are migrated to [`BUNDLE_VERSION`]).
    pub format_version: u32,
    /// The shmemfuzz version that wrote it.
    pub harness: String,
    /// When it was written, in unix seconds.
    pub created: u64,
    /// sha256 of each file but the manifest, as verified.
    pub files: BTreeMap<String, String>,
    pub contents: BundleContents,
}

impl Bundle {
    /// Writes `contents` as a new bundle at `dir`; refuses if `dir` exists (unless it is an
    /// empty directory).
    pub fn write(dir: &Path, contents: &BundleContents) -> Result<(), BundleError> {
        write_bundle(dir, contents, false)
    }

    /// Like [`Bundle::write`], but replaces a bundle already at `dir`. Anything there that is
    /// not a bundle (nor an empty directory) is never replaced.
    pub fn write_replacing(dir: &Path, contents: &BundleContents) -> Result<(), BundleError> {
        write_bundle(dir, contents, true)
    }

    /// Reads and verifies the bundle at `dir`: its format and version, every file's sha256,
    /// the program (with the normal parser) and the consistency of the parts.
    pub fn read(dir: &Path) -> Result<Bundle, BundleError> {
        match fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(BundleError::NotABundle {
                    path: dir.to_path_buf(),
                    why: "it is a file; a bundle is a directory".into(),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(BundleError::NotFound(dir.to_path_buf()))
            }
            Err(e) => return Err(BundleError::io("reading", dir, e)),
        }
        let manifest_path = dir.join(files::MANIFEST);
        let bytes = match bounded::read(&manifest_path, bounded::INPUT_MAX) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => {
                return Err(BundleError::NotABundle {
                    path: dir.to_path_buf(),
                    why: format!("it has no {}", files::MANIFEST),
                })
            }
            Err(e) => return Err(e.into()),
        };
        let disk_version = format::read_version(&manifest_path, &bytes)?;
        let m = format::parse_manifest(&manifest_path, &bytes)?;
        let invalid = |message: String| BundleError::invalid(&manifest_path, message);
        if m.version != BUNDLE_VERSION {
            return Err(invalid(format!(
                "version {} after migration, expected {BUNDLE_VERSION}",
                m.version
            )));
        }
        let mut data = read_files(dir, &m)?;
        let mut take = |name| data.remove(name).unwrap_or_default();
        let prog_path = dir.join(files::PROGRAM);
        let text = String::from_utf8(take(files::PROGRAM)).map_err(|e| {
            BundleError::invalid(
                &prog_path,
                format!(
                    "not UTF-8 text (invalid byte at offset {})",
                    e.utf8_error().valid_up_to()
                ),
            )
        })?;
        let program = program::text::parse_with(&text, m.swap.devices).map_err(|error| {
            BundleError::Program {
                path: prog_path.clone(),
                error,
            }
        })?;
        let records_path = dir.join(files::RECORDS);
        let records: Vec<OpRecordV1> = parse_json(&records_path, &take(files::RECORDS))?;
        let records = records
            .into_iter()
            .map(OpRecord::try_from)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| out_of_range(&records_path, e))?;
        let outcome_path = dir.join(files::OUTCOME);
        let outcome: OutcomeV1 = parse_json(&outcome_path, &take(files::OUTCOME))?;
        let outcome = Outcome::try_from(outcome).map_err(|e| out_of_range(&outcome_path, e))?;
        let summary: Vec<DiskFinding> = outcome.verdict.findings.iter().map(disk_finding).collect();
        if summary != m.findings {
            return Err(invalid(format!(
                "\"findings\" disagree with {}'s verdict: the files are not from the same \
                 recording; re-record",
                files::OUTCOME
            )));
        }
        let contents = BundleContents {
            program,
            outcome: RunOutcome {
                records,
                exit: outcome.exit,
                teardown: outcome.teardown,
                reports: outcome.reports,
                verdict: outcome.verdict,
                vm_alive: outcome.vm_alive,
                wall_ms: outcome.wall_ms,
                // Coverage is an observation of the recorded run, not kept in bundles.
                coverage: Vec::new(),
                kcov: None,
                draws: outcome.draws,
            },
            guest: GuestInfo {
                release: m.kernel.release.clone(),
                version: m.kernel.version.clone(),
                zones: m.guest.zones.into_iter().map(Zone::from).collect(),
                swap_devices: m.guest.swap_devices,
                taint: m.guest.taint,
                settings: m.settings.into(),
                modules: m.guest.modules,
                boot_ms: m.guest.boot_ms,
                ready_after_ms: m.guest.ready_after_ms,
            },
            kernel: KernelIdentity {
                id: m.kernel.id,
                release: m.kernel.release,
                version: m.kernel.version,
                config_sha256: m.kernel.config_sha256,
                bzimage_sha256: m.kernel.bzimage_sha256,
            },
            qemu: m.qemu,
            memory: MemoryLayout {
                total_mib: m.memory.total_mib,
                below_4g_mib: m.memory.below_4g_mib,
                nodes: m.memory.nodes,
            },
            smp: m.smp,
            append: m.append,
            swap_devices: m.swap.devices,
            swap_size: m.swap.size,
            op_timeout_ms: m.op_timeout_ms,
            console: take(files::CONSOLE),
            signature: m.signature,
            hits: HitCount {
                runs: m.runs,
                hits: m.hits,
            },
        };
        contents
            .check()
            .map_err(|(file, message)| BundleError::invalid(dir.join(file), message))?;
        Ok(Bundle {
            dir: dir.to_path_buf(),
            format_version: u32::try_from(disk_version).unwrap_or(u32::MAX),
            harness: m.harness,
            created: m.created,
            files: m.files,
            contents,
        })
    }
}

/// A file's value that is out of range, as a bundle error naming the file.
fn out_of_range(path: &Path, e: OnDiskError) -> BundleError {
    BundleError::invalid(
        path,
        format!("{e}; the file is damaged: restore it from the original bundle or re-record"),
    )
}

/// Reads every file `m` lists, checking each one's sha256.
fn read_files(dir: &Path, m: &ManifestV1) -> Result<BTreeMap<&'static str, Vec<u8>>, BundleError> {
    let manifest_path = dir.join(files::MANIFEST);
    for name in m.files.keys() {
        if !files::CHECKED.contains(&name.as_str()) {
            return Err(BundleError::invalid(
                &manifest_path,
                format!(
                    "\"files\" lists `{name}`, which is not a file of a version \
                     {BUNDLE_VERSION} bundle (expected {:?})",
                    files::CHECKED
                ),
            ));
        }
    }
    let mut data = BTreeMap::new();
    for name in files::CHECKED {
        let expected = m.files.get(name).ok_or_else(|| {
            BundleError::invalid(
                &manifest_path,
                format!("\"files\" has no sha256 for `{name}`"),
            )
        })?;
        let path = dir.join(name);
        let limit = match name {
            files::CONSOLE => bounded::CONSOLE_MAX,
            files::PROGRAM => bounded::PROGRAM_MAX,
            _ => bounded::JSON_MAX,
        };
        let bytes = match bounded::read(&path, limit) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => {
                return Err(BundleError::Missing {
                    dir: dir.to_path_buf(),
                    file: name.into(),
                })
            }
            Err(e) => return Err(e.into()),
        };
        let actual = sha256_hex(&bytes);
        if &actual != expected {
            return Err(BundleError::Checksum {
                path,
                expected: expected.clone(),
                actual,
            });
        }
        data.insert(name, bytes);
    }
    Ok(data)
}

fn parse_json<T: serde::de::DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T, BundleError> {
    serde_json::from_slice(bytes).map_err(|source| BundleError::Json {
        path: path.to_path_buf(),
        source,
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// [`crate::files::reader_sha256`] as a [`BundleError`].
fn sha256_reader(r: impl Read, path: &Path) -> Result<String, BundleError> {
    crate::files::reader_sha256(r).map_err(|e| BundleError::io("reading", path, e))
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// What is at a bundle's destination now.
enum Destination {
    /// Nothing, or an empty directory (`rename` replaces it atomically).
    Free,
    /// A bundle, replaced only when asked.
    Bundle,
}

fn destination(dir: &Path, overwrite: bool) -> Result<Destination, BundleError> {
    let meta = match fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Destination::Free),
        Err(e) => return Err(BundleError::io("inspecting", dir, e)),
    };
    if !meta.is_dir() {
        return Err(BundleError::Exists(dir.to_path_buf()));
    }
    let mut entries = fs::read_dir(dir).map_err(|e| BundleError::io("listing", dir, e))?;
    if entries.next().is_none() {
        return Ok(Destination::Free);
    }
    if !overwrite {
        return Err(BundleError::Exists(dir.to_path_buf()));
    }
    let manifest = dir.join(files::MANIFEST);
    let is_bundle = bounded::read(&manifest, bounded::INPUT_MAX)
        .ok()
        .is_some_and(|b| format::read_version(&manifest, &b).is_ok());
    if !is_bundle {
        return Err(BundleError::NotABundle {
            path: dir.to_path_buf(),
            why: format!(
                "it has no {} naming format \"{BUNDLE_FORMAT}\", so it is not replaced; choose \
                 another directory",
                files::MANIFEST
            ),
        });
    }
    Ok(Destination::Bundle)
}

/// Removes what writers killed mid-write left in `parent` (their `.partial-bundle-*` work
/// directories); returns how many. Only for a directory no writer is using any more (a
/// campaign's `bundles/` once its workers are gone): a live writer's work would go too.
pub fn remove_partials(parent: &Path) -> usize {
    let Ok(entries) = fs::read_dir(parent) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let partial = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(PARTIAL_PREFIX));
        if partial && fs::remove_dir_all(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

fn write_bundle(dir: &Path, contents: &BundleContents, overwrite: bool) -> Result<(), BundleError> {
    contents
        .check()
        .map_err(|(_, message)| BundleError::invalid(dir, format!("not written: {message}")))?;
    let dest = destination(dir, overwrite)?;
    let name = dir
        .file_name()
        .ok_or_else(|| BundleError::invalid(dir, "a bundle path must end in a directory name"))?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(|e| BundleError::io("creating", &parent, e))?;
    // Removed on drop unless renamed into place. Readable like any directory `mkdir` makes
    // (the umask still applies), not 0700 as temporary directories are.
    let tmp = tempfile::Builder::new()
        .prefix(&format!("{PARTIAL_PREFIX}{}-", name.to_string_lossy()))
        .permissions(fs::Permissions::from_mode(0o777))
        .tempdir_in(&parent)
        .map_err(|e| BundleError::io("creating a work directory in", &parent, e))?;
    write_files(tmp.path(), contents, &Stamp::now())?;
    write_sendable(tmp.path(), dir, contents)?;
    Bundle::read(tmp.path()).map_err(|e| BundleError::Verify {
        dir: dir.to_path_buf(),
        source: Box::new(e),
    })?;
    match dest {
        Destination::Free => fs::rename(tmp.path(), dir).map_err(|e| match e.kind() {
            io::ErrorKind::DirectoryNotEmpty | io::ErrorKind::AlreadyExists => {
                BundleError::Exists(dir.to_path_buf())
            }
            _ => BundleError::io("renaming the finished bundle to", dir, e),
        })?,
        Destination::Bundle => {
            // Two renames: the old bundle aside, the new one in. Between them the
            // destination is briefly absent, never half written.
            let old = tempfile::Builder::new()
                .prefix(&format!("{PARTIAL_PREFIX}{}-old-", name.to_string_lossy()))
                .tempdir_in(&parent)
                .map_err(|e| BundleError::io("creating a work directory in", &parent, e))?;
            let aside = old.path().join("bundle");
            fs::rename(dir, &aside)
                .map_err(|e| BundleError::io("moving the old bundle aside from", dir, e))?;
            if let Err(e) = fs::rename(tmp.path(), dir) {
                let _ = fs::rename(&aside, dir);
                return Err(BundleError::io("renaming the finished bundle to", dir, e));
            }
            // `old` removes the old bundle on drop.
        }
    }
    // The work directory is gone (renamed); dropping `tmp` must not touch `dir`.
    let _ = tmp.keep();
    sync_dir(&parent);
    Ok(())
}

/// `report.txt` and `repro.c` of a bundle about a finding ([`sendable`]), into the work
/// directory `tmp` of the bundle that will be at `dir`. Nothing for a clean recording.
fn write_sendable(tmp: &Path, dir: &Path, c: &BundleContents) -> Result<(), BundleError> {
    if c.signature.is_none() {
        return Ok(());
    }
    let write = |name: &str, text: &str| {
        let path = tmp.join(name);
        fs::write(&path, text).map_err(|e| BundleError::io("writing", &path, e))
    };
    let source = dir.join(files::PROGRAM).display().to_string();
    let repro = match sendable::repro_c(c, &source) {
        Ok(code) => {
            write(sendable::REPRO, &code)?;
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    };
    let catalog = crate::kernels::kernel::Catalog::builtin().ok();
    if let Some(report) = sendable::report_txt(c, dir, &repro, catalog.as_ref()) {
        write(sendable::REPORT, &report)?;
    }
    Ok(())
}

/// Who wrote a bundle and when: `bundle.json`'s `harness` and `created`, and the trace's
/// `harness`. Fixed in the golden tests (`crate::files::ondisk`), so that the bytes are reproducible.
pub(crate) struct Stamp {
    pub harness: &'static str,
    /// Unix seconds.
    pub created: u64,
}

impl Stamp {
    fn now() -> Self {
        Stamp {
            harness: env!("CARGO_PKG_VERSION"),
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}

/// Writes every file into `dir` (a fresh work directory), the manifest last.
pub(crate) fn write_files(
    dir: &Path,
    c: &BundleContents,
    stamp: &Stamp,
) -> Result<(), BundleError> {
    let json = |name: &str, v: &dyn pretty::Pretty| {
        v.pretty().map_err(|source| BundleError::Json {
            path: dir.join(name),
            source,
        })
    };
    let outcome = OutcomeV1::from(&Outcome {
        exit: c.outcome.exit.clone(),
        teardown: c.outcome.teardown.clone(),
        verdict: c.outcome.verdict.clone(),
        reports: c.outcome.reports.clone(),
        vm_alive: c.outcome.vm_alive,
        wall_ms: c.outcome.wall_ms,
        draws: c.outcome.draws,
    });
    let mut trace = Trace::new(
        &c.kernel.id,
        &c.guest,
        c.qemu.clone(),
        &c.program,
        &c.outcome,
    );
    trace.harness = stamp.harness.into();
    let program = c.program.to_string();
    let records = records_json(dir, &c.outcome.records)?;
    let outcome = json(files::OUTCOME, &outcome)?;
    let trace = json(files::TRACE, &trace)?;
    let payload: [(&str, &[u8]); 5] = [
        (files::PROGRAM, program.as_bytes()),
        (files::RECORDS, &records),
        (files::OUTCOME, &outcome),
        (files::TRACE, &trace),
        (files::CONSOLE, &c.console),
    ];
    let mut sums = BTreeMap::new();
    for (name, bytes) in payload {
        write_file(&dir.join(name), bytes)?;
        sums.insert(name.to_string(), sha256_hex(bytes));
    }
    let manifest = json(files::MANIFEST, &c.manifest(sums, stamp))?;
    write_file(&dir.join(files::MANIFEST), &manifest)?;
    sync_dir(dir);
    Ok(())
}

/// `records.json`: a JSON array with one compact record a line. Records of large objects
/// carry a page observation per page, so pretty-printing would double the file for no reader.
fn records_json(dir: &Path, records: &[OpRecord]) -> Result<Vec<u8>, BundleError> {
    let mut out = b"[".to_vec();
    for (i, r) in records.iter().enumerate() {
        out.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
        serde_json::to_writer(&mut out, &OpRecordV1::from(r)).map_err(|source| {
            BundleError::Json {
                path: dir.join(files::RECORDS),
                source,
            }
        })?;
    }
    out.extend_from_slice(b"\n]\n");
    Ok(out)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), BundleError> {
    let mut f = fs::File::create(path).map_err(|e| BundleError::io("creating", path, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| BundleError::io("writing", path, e))
}

/// Best effort: makes the directory's entries durable.
fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Pretty JSON with a final newline for any serializable value, behind a `dyn` (so one
/// closure serves values of several types).
mod pretty {
    pub(super) trait Pretty {
        fn pretty(&self) -> Result<Vec<u8>, serde_json::Error>;
    }

    impl<T: serde::Serialize + ?Sized> Pretty for T {
        fn pretty(&self) -> Result<Vec<u8>, serde_json::Error> {
            let mut v = serde_json::to_vec_pretty(self)?;
            v.push(b'\n');
            Ok(v)
        }
    }
}

/// A directory name for a signature: its characters outside `[A-Za-z0-9._-]` become `_`.
pub fn dir_name(sig: &str) -> String {
    sig.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}
