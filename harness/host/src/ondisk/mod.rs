//! The files shmemfuzz writes and reads back later: their golden tests.

#[cfg(test)]
mod golden;
#[cfg(test)]
mod golden_tests;
