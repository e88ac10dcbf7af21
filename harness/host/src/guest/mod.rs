//! What goes into the guest: the initramfs (the agent as `/init`, its config, the kernel
//! modules it loads in dependency order) and the swap disk images.
//!
//! Its parts: [`initramfs`], the newc cpio writer; [`swapimg`], swap device images;
//! [`vm`], the QEMU command line, the accelerator probe and the VM's bounded lifecycle.

pub mod initramfs;
pub mod swapimg;
pub mod vm;

use std::path::{Path, PathBuf};

use crate::guest::initramfs::{InitramfsBuilder, InitramfsError};
use crate::guest::swapimg::SwapImageError;
use crate::kernels::kernel::{module_load_order, FetchedKernel, KernelError};
use shmemfuzz_core::swap::SwapMedia;

/// The guest agent, built static by `build.rs`.
pub static AGENT: &[u8] = include_bytes!(env!("SHMEMFUZZ_AGENT_PATH"));

/// Modules the agent needs, by name (built-in ones are skipped): the PCI transport, the swap
/// disks and the host channel.
pub const BASE_MODULES: &[&str] = &["virtio_pci", "virtio_blk", "virtio_console"];

/// Name of the virtio-serial port the agent talks on.
pub const AGENT_PORT: &str = crate::guest::vm::AGENT_PORT_NAME;

#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    #[error("choosing kernel modules for the guest")]
    Modules(#[from] KernelError),
    #[error("building the initramfs")]
    Initramfs(#[from] InitramfsError),
    #[error("kernel arguments: {0}")]
    SwapMedia(String),
    #[error("creating a swap image")]
    Swap(#[from] SwapImageError),
}

/// Modules zram swap needs (`shmemfuzz.swap_media=zram`) where the kernel builds zram as a
/// module (Debian); built-in on the self-built kernels, where the list resolves to nothing.
pub const ZRAM_MODULES: &[&str] = &["zram"];

/// Modules the mock GMA500 driver needs before it loads.
pub const MOCK_DEPENDENCIES: &[&str] = &["drm"];

/// Writes the initramfs for `kernel` to `dest`; returns the module paths in load order
/// (inside the guest). `extra` are out-of-tree modules (the mock driver) loaded last, after
/// their dependencies from the kernel's tree. `executables` go to `/opt/<file name>`. zram
/// media bring the zram module.
pub fn build_initramfs(
    kernel: &FetchedKernel,
    swap_devices: u8,
    swap_media: SwapMedia,
    extra: &[PathBuf],
    executables: &[PathBuf],
    dest: &Path,
) -> Result<Vec<String>, GuestError> {
    let mut b = InitramfsBuilder::new();
    b.file("init", AGENT.to_vec(), 0o755)?;
    for dir in ["proc", "sys", "dev", "run", "tmp", "opt"] {
        b.dir(dir, 0o755)?;
    }
    // PID 1 starts with the console as stdin/out/err only if the node exists before devtmpfs.
    b.char_device("dev/console", 5, 1, 0o600)?;
    let mut guest_paths = Vec::new();
    let mut wanted = BASE_MODULES.to_vec();
    if !extra.is_empty() {
        wanted.extend_from_slice(MOCK_DEPENDENCIES);
    }
    if swap_media == SwapMedia::Zram {
        wanted.extend_from_slice(ZRAM_MODULES);
    }
    for host_path in module_load_order(&kernel.modules_dir, &wanted)? {
        let rel = host_path
            .strip_prefix(&kernel.modules_dir)
            .unwrap_or(&host_path);
        let guest = PathBuf::from("lib/modules").join(&kernel.release).join(rel);
        b.file_from_path(&guest, &host_path, 0o644)?;
        guest_paths.push(format!("/{}", guest.display()));
    }
    for host_path in extra {
        let name = host_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let guest = format!("lib/modules/{}/extra/{name}", kernel.release);
        b.file_from_path(&guest, host_path, 0o644)?;
        guest_paths.push(format!("/{guest}"));
    }
    for host_path in executables {
        let name = host_path.file_name().unwrap_or_default().to_string_lossy();
        b.file_from_path(format!("opt/{name}"), host_path, 0o755)?;
    }
    let conf = format!(
        "modules={}\nswap_devices={swap_devices}\nport={AGENT_PORT}\n",
        guest_paths.join(",")
    );
    b.file("etc/shmemfuzz/agent.conf", conf.into_bytes(), 0o644)?;
    b.write_to(dest)?;
    Ok(guest_paths)
}

/// Creates `count` sparse swap images of `size` bytes in `dir`; returns their paths.
pub fn create_swap_images(dir: &Path, count: u8, size: u64) -> Result<Vec<PathBuf>, GuestError> {
    (0..count)
        .map(|i| {
            let path = dir.join(format!("swap{i}.img"));
            swapimg::create(&path, size, i)?;
            Ok(path)
        })
        .collect()
}
