//! Kernels: the catalog of known Debian kernels and fetching them.
//!
//! What lives where:
//! - `catalog.rs`: `kernels/catalog.toml` parsed and validated
//!   ([`Catalog`], [`CatalogEntry`], [`Package`]); the file is also built into the binary.
//! - `cache.rs`: [`KernelCache`] downloads an entry's packages (`apt-get download`), checks
//!   their sha256, unpacks them (`dpkg-deb -x`), runs `depmod`, and publishes the tree
//!   atomically; [`FetchedKernel`] says where the bzImage, modules and config are;
//!   [`FetchEvent`] reports progress to the caller (this module never prints).
//! - `store.rs`: the cache's on-disk layout: directory names, the completion marker, atomic
//!   rename, the headers Makefile fix-up.
//! - `fallback.rs`: what replaces a pinned version that left the archive (newest of the same
//!   line, with a warning); `debver.rs`: Debian version ordering it relies on.
//! - `archive.rs`: whether the pinned versions are still in apt's lists (`kernel list`'s
//!   `archive` column; best effort, "unknown" without apt).
//! - `apt.rs`: the host tool wrappers (`apt-get`, `apt-cache`, `dpkg-deb`, `depmod`).
//! - `modules.rs`: [`module_load_order`], the `.ko` files to put in the initramfs, in load order.
//! - `error.rs`: [`KernelError`]; `fetch_tests.rs`: the cache's tests, including the
//!   ignored ones that download from the archive.
//!
//! No root is needed for any of it: `apt-get download` and `dpkg-deb -x` work as a normal user.

pub(crate) mod apt;
pub mod archive;
mod cache;
mod catalog;
pub(crate) mod debver;
mod error;
mod fallback;
mod modules;
mod store;

#[cfg(test)]
mod fetch_tests;

pub use cache::{FetchEvent, FetchedKernel, KernelCache};
pub use catalog::{Catalog, CatalogEntry, Package, SourceEntry, BUILTIN_CATALOG};
pub use error::KernelError;
pub use modules::module_load_order;
