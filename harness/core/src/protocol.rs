//! The host/agent wire protocol over the virtio-serial port.
//!
//! ```text
//! frame := len:u32 (little endian, 1..=MAX_FRAME) || payload:[u8; len]
//! payload := postcard(HostMsg) on host->agent, postcard(AgentMsg) on agent->host
//! ```
//! The first agent frame is `AgentMsg::Ready` carrying [`PROTOCOL_VERSION`]. The host never
//! trusts what the guest sends: frame sizes are bounded before allocation, payloads that do
//! not decode are a harness error (not a finding), and every expectation is recomputed on
//! the host from the program.

use std::io::{self, Read, Write};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::program::Program;
use crate::zoneinfo::Zone;

/// Bumped whenever a message changes shape.
pub const PROTOCOL_VERSION: u32 = 7;
/// Largest frame either side accepts (16 MiB). An operation's record carries the page states
/// of every watched object (about 12 bytes a page): 16 MiB holds well over a million pages,
/// more than a 2–3 GiB guest has (1 MiB failed a program with 1.25 GiB of DMA32 objects).
pub const MAX_FRAME: u32 = 16 << 20;

/// Linux x86_64 errno values the model names (the ABI is stable).
pub mod errno {
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const EINTR: i32 = 4;
    pub const EIO: i32 = 5;
    pub const ENXIO: i32 = 6;
    pub const EAGAIN: i32 = 11;
    pub const ENOMEM: i32 = 12;
    pub const EACCES: i32 = 13;
    pub const EFAULT: i32 = 14;
    pub const EBUSY: i32 = 16;
    pub const ENODEV: i32 = 19;
    pub const EINVAL: i32 = 22;
    pub const ENOSPC: i32 = 28;
    pub const ENODATA: i32 = 61;
    pub const EOPNOTSUPP: i32 = 95;
    pub const ETIMEDOUT: i32 = 110;
    pub const EHWPOISON: i32 = 133;

    /// The symbolic name of `e`, or `E?` for ones the model never names.
    pub fn name(e: i32) -> &'static str {
        match e {
            EPERM => "EPERM",
            ENOENT => "ENOENT",
            EINTR => "EINTR",
            EIO => "EIO",
            ENXIO => "ENXIO",
            EAGAIN => "EAGAIN",
            ENOMEM => "ENOMEM",
            EACCES => "EACCES",
            EFAULT => "EFAULT",
            EBUSY => "EBUSY",
            ENODEV => "ENODEV",
            EINVAL => "EINVAL",
            ENOSPC => "ENOSPC",
            ENODATA => "ENODATA",
            EOPNOTSUPP => "EOPNOTSUPP",
            ETIMEDOUT => "ETIMEDOUT",
            EHWPOISON => "EHWPOISON",
            _ => "E?",
        }
    }
}

/// What an operation returned in the guest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum OpResult {
    Ok,
    Errno(i32),
    /// Not performed: the model said it would fault (a touch past end-of-file).
    Skipped,
}

impl std::fmt::Display for OpResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpResult::Ok => write!(f, "ok"),
            OpResult::Errno(e) => write!(f, "{} ({e})", errno::name(*e)),
            OpResult::Skipped => write!(f, "skipped"),
        }
    }
}

/// The outcome of comparing bytes read back with the model.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataCheck {
    /// Bytes the model expected.
    pub expected_len: u64,
    /// Bytes actually read (differs from `expected_len` on a short read).
    pub read_len: u64,
    pub mismatched_bytes: u64,
    pub mismatched_pages: u64,
    /// The first differing byte: (offset in the object or mapping, expected, actual).
    pub first_mismatch: Option<(u64, u8, u8)>,
}

impl DataCheck {
    pub fn is_clean(&self) -> bool {
        self.mismatched_bytes == 0 && self.read_len == self.expected_len
    }

    /// Compares `actual` with `expected`; `base` is the offset of their first byte.
    pub fn compare(base: u64, expected: &[u8], actual: &[u8]) -> Self {
        let mut d = DataCheck {
            expected_len: expected.len() as u64,
            read_len: actual.len() as u64,
            ..Default::default()
        };
        let mut last_page = None;
        for (i, (e, a)) in expected.iter().zip(actual).enumerate() {
            if e != a {
                let off = base + i as u64;
                d.mismatched_bytes += 1;
                d.first_mismatch.get_or_insert((off, *e, *a));
                let page = off / crate::program::PAGE_SIZE;
                if last_page != Some(page) {
                    d.mismatched_pages += 1;
                    last_page = Some(page);
                }
            }
        }
        d
    }
}

/// Where one page of a shmem file is, as the mock driver's PAGE_INFO saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PageState {
    Absent,
    Resident,
    /// A swap entry in the file's mapping (a swap-cache copy is not visible).
    Swapped,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageObs {
    pub state: PageState,
    /// Valid when resident.
    pub pfn: u64,
    /// Pinned by the mock driver (a pinned GEM object) or DMA-pinned.
    pub pinned: bool,
    /// Order of the folio holding the page (0 for a base page, 9 for a PMD-sized THP).
    #[serde(default)]
    pub order: u8,
    /// The first page of its folio (the mock driver's `GMA500_MOCK_PAGE_HEAD`); true for
    /// every resident page of an order-0 folio.
    #[serde(default)]
    pub head: bool,
}

impl PageObs {
    /// Whether a resident page at `pfn` in a folio of `order` is the folio's first page:
    /// folios are naturally aligned, so only the head's PFN is a multiple of the folio's
    /// size. What PAGE_INFO's head flag must agree with; records from before the flag take
    /// their `head` from it.
    pub fn head_by_alignment(pfn: u64, order: u8) -> bool {
        order >= 64 || pfn & ((1u64 << order) - 1) == 0
    }
}

/// Every page of one object, observed after an operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjObs {
    pub obj: String,
    pub pages: Vec<PageObs>,
}

/// The mock driver's PAGE_INFO against `/proc/self/pagemap` for the present pages of shared
/// file mappings: they must name the same PFNs (a self-check of the introspection).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagemapCheck {
    pub compared: u32,
    pub mismatched: u32,
}

/// One operation's record, as the agent observed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpRecord {
    pub index: u32,
    pub result: OpResult,
    pub data: Option<DataCheck>,
    pub micros: u64,
    /// Swap in use on all devices after the operation (KiB, from /proc/swaps): an
    /// observation for traces, not judged (slot caches make it inexact).
    pub swap_used_kib: u64,
    /// After the operation: the pages of every DMA32-constrained or pinned object still open,
    /// and of the object a `zonecheck` names.
    pub pages: Vec<ObjObs>,
    /// `None` when nothing was observed or the agent lacks CAP_SYS_ADMIN.
    pub pagemap: Option<PagemapCheck>,
    /// The allocation record of the first page of a watched object seen at or above 4 GiB in
    /// the run (kernels with CONFIG_PAGE_OWNER booted with `page_owner=on`): it names the
    /// function that allocated the misplaced page. At most one per run.
    #[serde(default)]
    pub page_owner: Option<PageOwner>,
    /// The value a ranged `delay` (µs) or `spin` (iterations) drew in this execution.
    #[serde(default)]
    pub drawn: Option<u32>,
    /// A collapse allocated its huge page (`thp_collapse_alloc` grew) between the start of the
    /// previous operation and this one's observation, and this operation was not a collapse
    /// itself: a page that arrived in a large folio then arrived by khugepaged, not by the
    /// operation.
    #[serde(default)]
    pub background_collapse: bool,
    /// When the operation started, in µs from the start of the program's execution: with
    /// `micros`, how the operations of a section's threads overlapped (fuzzer feedback).
    #[serde(default)]
    pub start_micros: u64,
}

impl OpRecord {
    /// A record of operation `index` with `result` and nothing observed (tests, synthetic
    /// records).
    pub fn bare(index: u32, result: OpResult) -> OpRecord {
        OpRecord {
            index,
            result,
            data: None,
            micros: 0,
            swap_used_kib: 0,
            pages: Vec::new(),
            pagemap: None,
            page_owner: None,
            drawn: None,
            background_collapse: false,
            start_micros: 0,
        }
    }
}

/// What `/sys/kernel/debug/page_owner` says about one page frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageOwner {
    pub obj: String,
    pub page: u64,
    pub pfn: u64,
    /// The record as the kernel prints it (allocation order, gfp mask, stack).
    pub report: String,
}

/// How the program's child process ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum ChildExit {
    /// Ran every operation.
    Completed,
    /// Killed by a signal while running operation `op` (e.g. SIGBUS on a touch).
    Signaled { signal: i32, op: u32 },
    /// Operation `op` did not finish within the per-operation deadline.
    Hung { op: u32 },
    /// The executor itself failed (not a kernel finding).
    ExecutorError { message: String },
}

/// Accounting after the program's teardown, compared with the baseline taken before it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accounting {
    pub shmem_kib: u64,
    pub swap_used_kib: u64,
    pub taint: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Teardown {
    pub baseline: Accounting,
    pub after: Accounting,
    /// Swap devices whose swapoff at teardown did not finish within its deadline.
    pub swapoff_stuck: Vec<u8>,
    /// Milliseconds the teardown polled before accounting settled (or gave up).
    pub settle_ms: u64,
    /// Where the agent's time went in this run: (phase, microseconds), in order (setup,
    /// program, each teardown step, coverage). A name with a `/` is a part of the phase
    /// named before the slash ("program/observe"), already counted in it: see [`is_part`].
    #[serde(default)]
    pub phases_us: Vec<(String, u64)>,
}

/// Whether a [`Teardown::phases_us`] name is a part of another phase (its time is already in
/// that phase's), not a phase of its own.
pub fn is_part(phase: &str) -> bool {
    phase.contains('/')
}

/// How often one kernel function ran during a program (kprobe hit counts; only functions the
/// kernel did not inline can be probed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FuncHits {
    pub func: String,
    pub hits: u64,
}

/// How often one kernel basic block ran during a program (KCOV, `KCOV_TRACE_PC`): the PC
/// as KCOV reports it (KASLR offset removed, so it matches `System.map`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PcHits {
    pub pc: u64,
    pub hits: u32,
}

/// Most distinct PCs one program reports (12 bytes each on the wire, well inside a frame).
pub const MAX_KCOV_PCS: usize = 60_000;

/// Host -> agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostMsg {
    Run {
        id: u64,
        program: Program,
        op_timeout_ms: u64,
        /// The draw seed of this execution: ranged `delay`/`spin` values come from it
        /// ([`crate::program::draw`]); a replay sends the recorded one.
        draws: u64,
    },
    /// Run the executable `path` (from the initramfs) `runs` times, one after the other, each
    /// in a fresh child; reply with [`AgentMsg::Executed`]. For the benchmark's C floor.
    Exec { id: u64, path: String, runs: u32 },
    /// Power the guest off.
    Shutdown,
}

/// The VM settings that steer reclaim and readahead, as the agent set and read them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestSettings {
    pub page_cluster: String,
    pub swappiness: String,
    pub shmem_enabled: String,
    pub thp_enabled: String,
    pub lru_gen: String,
    pub zswap: String,
    pub swap_rotational: Vec<String>,
}

/// Agent -> host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgentMsg {
    Ready {
        protocol: u32,
        release: String,
        version: String,
        zones: Vec<Zone>,
        swap_devices: Vec<String>,
        taint: u64,
        settings: GuestSettings,
        modules: Vec<String>,
        boot_ms: u64,
    },
    Op(OpRecord),
    Done {
        id: u64,
        exit: ChildExit,
        teardown: Teardown,
        /// Kernel functions the program ran (program start to end of teardown), by kprobes.
        coverage: Vec<FuncHits>,
        /// Basic blocks the program's own syscalls ran, by KCOV; `None` when the kernel has
        /// no KCOV. Not kswapd or writeback: KCOV follows one task.
        kcov: Option<Vec<PcHits>>,
    },
    /// Sent by the program's executor to the agent (never to the host) before it exits.
    Kcov(Vec<PcHits>),
    /// Sent by the program's executor to the agent (never to the host) before it exits: where
    /// its time went, (part, microseconds); the agent files them under "program/…" in
    /// [`Teardown::phases_us`].
    Phases(Vec<(String, u64)>),
    /// The answer to [`HostMsg::Exec`]: runs that exited 0, the total wall time of all runs,
    /// and how the others ended.
    Executed {
        id: u64,
        ok: u32,
        micros: u64,
        failures: Vec<String>,
    },
    /// The agent could not do what it was asked (a harness failure, not a finding).
    Error {
        message: String,
    },
    Log {
        message: String,
    },
}

/// A frame that could not be read or decoded.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("channel I/O failed")]
    Io(#[from] io::Error),
    #[error("peer closed the channel")]
    Closed,
    #[error("frame of {0} bytes is outside 1..={MAX_FRAME}: the peer is confused or hostile")]
    BadLength(u32),
    /// postcard's reason is this error's own text, not a cause (the agent's messages and the
    /// session's events carry it as a string).
    #[error("frame does not decode: {0}")]
    Decode(postcard::Error),
}

impl From<postcard::Error> for ProtocolError {
    fn from(e: postcard::Error) -> Self {
        ProtocolError::Decode(e)
    }
}

/// Writes one frame.
pub fn write_frame<T: Serialize>(w: &mut impl Write, msg: &T) -> Result<(), ProtocolError> {
    w.write_all(&encode_frame(msg)?)?;
    w.flush()?;
    Ok(())
}

/// One frame, length prefix and payload in one buffer: written with one `write(2)` where it
/// fits (each write to the guest's virtio port is a device notification, slow under TCG, and
/// a frame that leaves in one write cannot be cut in two by a signal).
pub fn encode_frame<T: Serialize>(msg: &T) -> Result<Vec<u8>, ProtocolError> {
    let mut frame = postcard::to_extend(msg, vec![0u8; 4])?;
    let len = u32::try_from(frame.len() - 4)
        .ok()
        .filter(|&n| n <= MAX_FRAME)
        .ok_or(ProtocolError::BadLength(u32::MAX))?;
    frame[..4].copy_from_slice(&len.to_le_bytes());
    Ok(frame)
}

/// Reads one frame; `Closed` on a clean end of stream before a frame starts.
pub fn read_frame<T: DeserializeOwned>(r: &mut impl Read) -> Result<T, ProtocolError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(ProtocolError::Closed),
        other => other?,
    }
    let len = u32::from_le_bytes(len);
    if len == 0 || len > MAX_FRAME {
        return Err(ProtocolError::BadLength(len));
    }
    let mut buf = vec![0u8; len as usize];
    r.read_exact(&mut buf)?;
    decode(&buf)
}

/// Decodes one payload (no length prefix); the fuzz target for the decoder calls this.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, ProtocolError> {
    Ok(postcard::from_bytes(payload)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decode_error_says_why_once() {
        let e = decode::<AgentMsg>(&[0xff, 0xff]).expect_err("garbage");
        let shown = e.to_string();
        assert!(shown.starts_with("frame does not decode: "), "{shown}");
        assert!(shown.len() > "frame does not decode: ".len(), "{shown}");
        // The reason is in the message, so it is not a cause printed again after it.
        assert!(std::error::Error::source(&e).is_none(), "{shown}");
    }

    #[test]
    fn frames_round_trip() {
        let msg = AgentMsg::Op(OpRecord {
            index: 3,
            result: OpResult::Errno(errno::EBUSY),
            data: None,
            micros: 9,
            swap_used_kib: 0,
            pages: Vec::new(),
            pagemap: None,
            page_owner: None,
            drawn: None,
            background_collapse: false,
            start_micros: 0,
        });
        let mut buf = Vec::new();
        write_frame(&mut buf, &msg).expect("write");
        let back: AgentMsg = read_frame(&mut buf.as_slice()).expect("read");
        assert_eq!(back, msg);
    }

    #[test]
    fn oversized_and_truncated_frames_are_rejected() {
        let huge = (MAX_FRAME + 1).to_le_bytes();
        assert!(matches!(
            read_frame::<AgentMsg>(&mut huge.as_slice()),
            Err(ProtocolError::BadLength(_))
        ));
        let mut buf = Vec::new();
        write_frame(&mut buf, &HostMsg::Shutdown).expect("write");
        buf.truncate(buf.len() - 1);
        assert!(read_frame::<HostMsg>(&mut buf.as_slice()).is_err());
        assert!(matches!(
            read_frame::<HostMsg>(&mut [].as_slice()),
            Err(ProtocolError::Closed)
        ));
    }

    #[test]
    fn garbage_payloads_do_not_panic() {
        for seed in 0u8..=255 {
            let bytes: Vec<u8> = (0..64u8)
                .map(|i| i.wrapping_mul(seed).wrapping_add(seed))
                .collect();
            let _ = decode::<AgentMsg>(&bytes);
        }
    }

    #[test]
    fn compare_counts_pages_and_short_reads() {
        let e = vec![1u8; 8192];
        let mut a = e.clone();
        a[10] = 0;
        a[20] = 0;
        a[5000] = 0;
        let d = DataCheck::compare(0, &e, &a);
        assert_eq!(
            (d.mismatched_bytes, d.mismatched_pages, d.first_mismatch),
            (3, 2, Some((10, 1, 0)))
        );
        assert!(!DataCheck::compare(0, &e, &e[..100]).is_clean());
        assert!(DataCheck::compare(0, &e, &e).is_clean());
    }
}
