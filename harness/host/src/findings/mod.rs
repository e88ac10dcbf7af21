//! A finding's life after the fuzzer: recorded, replayed, counted, bisected.
//!
//! - [`bundle`]: the record/replay bundle: program, records, trace, console, metadata.
//! - [`reproduce`]: replaying a program n times and counting hits of a signature.
//! - [`bisect`]: finding the first bad commit or Debian version for a reproducer.

pub mod bisect;
pub mod bundle;
pub mod reproduce;
