//! The host decodes whatever the guest sends without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shmemfuzz_core::protocol::{decode, read_frame, AgentMsg, HostMsg};

fuzz_target!(|data: &[u8]| {
    let _ = decode::<AgentMsg>(data);
    let _ = decode::<HostMsg>(data);
    let mut r = data;
    while read_frame::<AgentMsg>(&mut r).is_ok() {}
});
