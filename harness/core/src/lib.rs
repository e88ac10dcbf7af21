//! shmemfuzz core: the pure parts, shared by the host, the guest agent and the fuzz targets.
//! Nothing here makes an OS call, so all of it is unit-testable and fuzzable.
//!
//! - [`program`]: the program model, its text format and its `Arbitrary` decoder.
//! - [`export_c`]: a standalone C reproducer of a program that reports violations itself.
//! - [`minimize`]: shrinking a reproducing program to a small one that reproduces the same signature.
//! - [`oracle`]: the reference model of object contents and expected results, and findings.
//! - [`replay`]: diffing a replay against a recording (results, data, page states and zones).
//! - [`protocol`]: the framed host/agent wire protocol.
//! - [`console`]: parsing kernel console output into reports with titles and signatures.
//! - [`swap`]: the swap devices' media (a kernel argument) and the swap header.
//! - [`zoneinfo`]: parsing `/proc/zoneinfo` into the guest's zone layout.
//! - [`uapi`]: the mock driver's ioctl layout, mirrored from its uapi header.

pub mod console;
pub mod export_c;
pub mod minimize;
pub mod oracle;
pub mod program;
pub mod protocol;
pub mod replay;
pub mod swap;
pub mod uapi;
pub mod zoneinfo;
