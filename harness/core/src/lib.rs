//! shmemfuzz core: the pure parts, shared by the host, the guest agent and the fuzz targets.
//! Nothing here makes an OS call, so all of it is unit-testable and fuzzable.
//!
//! - [`console`]: parsing kernel console output into reports with titles and signatures.
//! - [`program`]: the program model (operations on named objects).

pub mod console;
pub mod program;
