//! shmemfuzz host library: everything that runs on the host side of the VM boundary.
//!
//! - [`kernel`]: the kernel catalog and fetching Debian's prebuilt kernels.
//! - [`vm`]: the QEMU command line, accelerator probe and the VM's bounded lifecycle.
//! - [`initramfs`]: assembling the guest's initramfs (newc cpio) in Rust.

pub mod initramfs;
pub mod kernel;
pub mod vm;
