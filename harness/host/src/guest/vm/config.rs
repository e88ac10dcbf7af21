//! What a VM is made of: [`VmConfig`] and its parts, with validation.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::VmError;

/// The QEMU binary looked up in `PATH` when [`VmConfig::qemu`] is not a path.
pub const DEFAULT_QEMU: &str = "qemu-system-x86_64";

/// Guest RAM and how much of it sits below 4 GiB.
///
/// The default (2048 MiB total, 1024 MiB below 4 GiB) becomes
/// `-machine pc,max-ram-below-4g=1024M -m 2048M`: 1 GiB of DMA32 and 1 GiB of Normal zone
/// above 4 GiB. A guest without RAM above 4 GiB has no Normal zone on x86-64, and the zone
/// bug this tool hunts (a DMA32-constrained shmem page left in Normal after swapin) cannot
/// happen there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLayout {
    /// All guest RAM, in MiB.
    pub total_mib: u32,
    /// RAM mapped below 4 GiB (`max-ram-below-4g`), in MiB; the rest goes above 4 GiB.
    pub below_4g_mib: u32,
    /// NUMA nodes: 1, or 2 with node 0 = the RAM below 4 GiB and node 1 = the RAM above it.
    pub nodes: u8,
}

impl Default for MemoryLayout {
    fn default() -> Self {
        Topology::Flat.layout()
    }
}

/// The guest topologies a program or campaign can ask for (`--topology`), each a
/// [`MemoryLayout`]. All keep DMA32 below and Normal above 4 GiB (asserted at boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Topology {
    /// 1 GiB below 4 GiB (DMA32), 1 GiB above (Normal), one node. RAM ends at 5 GiB, so the
    /// kernel picks 1 GiB memory blocks and the first spans DMA and DMA32: not offlinable.
    Flat,
    /// As `flat` with 1152 MiB above 4 GiB: RAM ends at a 128 MiB boundary only, so memory
    /// blocks are 128 MiB and each DMA32 block from 128 MiB up can be offlined.
    Blocks,
    /// As `flat`, on two NUMA nodes: node 0 is all the RAM below 4 GiB, node 1 all above.
    Numa,
    /// 2304 MiB below 4 GiB and 768 MiB above: the only 1 GiB-aligned gigantic page that fits
    /// lies in DMA32 (1–2 GiB), so growing the 1 GiB hugetlb pool migrates what is there.
    Hugetlb,
}

impl Topology {
    pub fn layout(self) -> MemoryLayout {
        let (total_mib, below_4g_mib, nodes) = match self {
            Topology::Flat => (2048, 1024, 1),
            Topology::Blocks => (2176, 1024, 1),
            Topology::Numa => (2048, 1024, 2),
            Topology::Hugetlb => (3072, 2304, 1),
        };
        MemoryLayout {
            total_mib,
            below_4g_mib,
            nodes,
        }
    }

    /// The topology whose layout this is, if any.
    pub fn of(layout: &MemoryLayout) -> Option<Topology> {
        [
            Topology::Flat,
            Topology::Blocks,
            Topology::Numa,
            Topology::Hugetlb,
        ]
        .into_iter()
        .find(|t| t.layout() == *layout)
    }
}

impl MemoryLayout {
    /// Smallest below-4G size accepted: the kernel, the initramfs and the DMA zone live there.
    pub const MIN_BELOW_4G_MIB: u32 = 256;
    /// `pc` keeps at most 3.5 GiB of RAM below 4 GiB (the rest of that range is the PCI hole).
    pub const MAX_BELOW_4G_MIB: u32 = 3584;
    /// Upper bound on total RAM (1 TiB); anything above is a typo.
    pub const MAX_TOTAL_MIB: u32 = 1 << 20;

    /// MiB of RAM above 4 GiB, i.e. the guest's Normal zone.
    pub fn above_4g_mib(&self) -> u32 {
        self.total_mib.saturating_sub(self.below_4g_mib)
    }

    /// Checks that the layout gives the guest both DMA32 and Normal memory.
    pub fn validate(&self) -> Result<(), VmError> {
        let bad = |m: String| Err(VmError::InvalidConfig(m));
        if self.below_4g_mib < Self::MIN_BELOW_4G_MIB || self.below_4g_mib > Self::MAX_BELOW_4G_MIB
        {
            return bad(format!(
                "memory below 4 GiB is {} MiB; it must be between {} and {} MiB",
                self.below_4g_mib,
                Self::MIN_BELOW_4G_MIB,
                Self::MAX_BELOW_4G_MIB
            ));
        }
        if self.total_mib > Self::MAX_TOTAL_MIB {
            return bad(format!("total memory {} MiB is absurd", self.total_mib));
        }
        if !(1..=2).contains(&self.nodes) {
            return bad(format!(
                "{} NUMA nodes: 1, or 2 (node 0 below 4 GiB, node 1 above)",
                self.nodes
            ));
        }
        if self.below_4g_mib >= self.total_mib {
            return bad(format!(
                "memory below 4 GiB ({} MiB) must be less than the total ({} MiB): without RAM \
                 above 4 GiB the guest has no Normal zone and the zone oracle is blind",
                self.below_4g_mib, self.total_mib
            ));
        }
        Ok(())
    }
}

/// The accelerator QEMU runs the guest with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Accel {
    /// Software emulation, `-accel tcg -cpu max,erms=off,fsrm=off` ([`super::cmdline::TCG_CPU`]).
    /// Works everywhere; slow.
    Tcg,
    /// Hardware virtualization, `-accel kvm -cpu host`. Only after [`super::accel::probe`]
    /// said it works: on hosts without nested virtualization a KVM boot hangs forever.
    Kvm,
}

impl Accel {
    /// `"tcg"` or `"kvm"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
        }
    }
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Accel {
    type Err = VmError;
    fn from_str(s: &str) -> Result<Self, VmError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "tcg" => Ok(Accel::Tcg),
            "kvm" => Ok(Accel::Kvm),
            _ => Err(VmError::InvalidConfig(format!(
                "unknown accelerator {s:?}; expected `tcg` or `kvm`"
            ))),
        }
    }
}

/// A raw disk image given to the guest as a virtio-blk device.
///
/// Disks appear in the guest in the order given (`vda`, `vdb`, ...), and disk `i` carries
/// the serial `sfz<i>` (readable at `/sys/block/vdX/serial`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSpec {
    /// Host path of the raw image.
    pub path: PathBuf,
    /// Attach read-only.
    pub read_only: bool,
}

impl DiskSpec {
    /// A writable disk.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            read_only: false,
        }
    }
}

/// Everything needed to start one VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmConfig {
    /// The kernel image (`vmlinuz`/bzImage).
    pub kernel: PathBuf,
    /// The initramfs (uncompressed newc cpio, see [`crate::guest::initramfs`]).
    pub initramfs: PathBuf,
    /// Kernel arguments appended after [`super::DEFAULT_KERNEL_ARGS`] (later ones win).
    pub append: Vec<String>,
    /// Guest memory layout.
    pub memory: MemoryLayout,
    /// Number of vCPUs.
    pub smp: u32,
    /// Accelerator.
    pub accel: Accel,
    /// virtio-blk disks, in guest order.
    pub disks: Vec<DiskSpec>,
    /// Directory for the console log, QEMU's stderr and the sockets. Created if missing;
    /// one running machine per directory (a launch truncates the log and replaces the
    /// sockets). Keep its path short: unix socket paths are limited to 107 bytes.
    pub workdir: PathBuf,
    /// Hard bound on the VM's life: QEMU's process group is SIGKILLed when it expires.
    pub lifetime: Duration,
    /// QEMU binary: a path, or a name looked up in `PATH` (default: [`crate::kernels::runtime::default_qemu`]).
    pub qemu: PathBuf,
    /// Start from this saved migration stream (`-incoming`) instead of booting: the guest
    /// resumes where [`super::Machine::save_state`] stopped it. The rest of the config must
    /// be the one the state was saved with (see `crate::session::snapshot`).
    pub incoming: Option<PathBuf>,
}

impl VmConfig {
    /// A config with the defaults: 2 GiB (1 GiB below 4 GiB), one vCPU, TCG, no disks,
    /// ten minutes of life.
    pub fn new(
        kernel: impl Into<PathBuf>,
        initramfs: impl Into<PathBuf>,
        workdir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            kernel: kernel.into(),
            initramfs: initramfs.into(),
            append: Vec::new(),
            memory: MemoryLayout::default(),
            smp: 1,
            accel: Accel::Tcg,
            disks: Vec::new(),
            workdir: workdir.into(),
            lifetime: Duration::from_secs(600),
            qemu: crate::kernels::runtime::default_qemu(),
            incoming: None,
        }
    }

    /// Largest vCPU count accepted.
    pub const MAX_SMP: u32 = 64;

    /// Checks everything that can be checked without touching the file system.
    pub fn validate(&self) -> Result<(), VmError> {
        self.memory.validate()?;
        if self.smp == 0 || self.smp > Self::MAX_SMP {
            return Err(VmError::InvalidConfig(format!(
                "smp {} out of range 1..={}",
                self.smp,
                Self::MAX_SMP
            )));
        }
        if self.lifetime.is_zero() {
            return Err(VmError::InvalidConfig("lifetime must not be zero".into()));
        }
        for (what, p) in [
            ("kernel", &self.kernel),
            ("initramfs", &self.initramfs),
            ("workdir", &self.workdir),
        ] {
            if p.as_os_str().is_empty() {
                return Err(VmError::InvalidConfig(format!("{what} path is empty")));
            }
        }
        if let Some(p) = &self.incoming {
            let text = p.to_str().unwrap_or("'");
            if text.is_empty() || text.contains(['\'', '\n']) {
                return Err(VmError::InvalidConfig(format!(
                    "saved state path {} is empty, not UTF-8 or contains a quote or newline",
                    p.display()
                )));
            }
        }
        for d in &self.disks {
            if d.path.as_os_str().is_empty() {
                return Err(VmError::InvalidConfig("disk path is empty".into()));
            }
        }
        for a in &self.append {
            if a.is_empty() || a.chars().any(|c| c.is_whitespace() || c == '"') {
                return Err(VmError::InvalidConfig(format!(
                    "kernel argument {a:?} is empty or contains whitespace or quotes; \
                     give one argument per entry"
                )));
            }
        }
        let cmdline = super::cmdline::kernel_cmdline(self);
        if cmdline.len() > super::cmdline::KERNEL_CMDLINE_MAX {
            return Err(VmError::InvalidConfig(format!(
                "kernel command line is {} bytes; x86 allows {}",
                cmdline.len(),
                super::cmdline::KERNEL_CMDLINE_MAX
            )));
        }
        for sock in [
            super::cmdline::agent_socket_path(self),
            super::cmdline::qmp_socket_path(self),
        ] {
            if sock.as_os_str().len() > super::cmdline::SOCKET_PATH_MAX {
                return Err(VmError::InvalidConfig(format!(
                    "socket path {} is longer than {} bytes; use a shorter workdir",
                    sock.display(),
                    super::cmdline::SOCKET_PATH_MAX
                )));
            }
        }
        Ok(())
    }
}
