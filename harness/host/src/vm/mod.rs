//! QEMU launcher (to be written).
