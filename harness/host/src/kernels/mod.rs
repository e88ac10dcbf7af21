//! Where kernels come from: the catalog, Debian's prebuilt kernels, kernels built from source,
//! the mock driver built per kernel, and the cache they all live in.
//!
//! - [`context`]: where the source tree, catalog and cache are; kernel and accelerator choice.
//! - [`kernel`]: the kernel catalog and fetching Debian's prebuilt kernels.
//! - [`kbuild`]: self-built kernels (Debian's linux-source or any tree, patched, configured
//!   from kernels/configs/), and the mock driver built per kernel ([`kbuild::modbuild`]).
//! - [`data`]: the data files (catalog, config fragments, patches, known findings, the mock
//!   driver's sources, examples): a checkout's, or the copy built into the binary.
//! - [`runtime`]: a self-contained runtime directory beside the executable (ClusterFuzzLite's
//!   `$OUT`): its QEMU with loader, libraries and firmware, its kernel cache, its data.
//! - [`cachedir`]: the conventions every cache follows (root, work in progress, sweeping).

pub mod cachedir;
pub mod context;
pub mod data;
pub mod kbuild;
pub mod kernel;
pub mod runtime;
