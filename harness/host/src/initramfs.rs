//! Initramfs assembly (to be written).
