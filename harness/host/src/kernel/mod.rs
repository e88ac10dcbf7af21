//! Kernel catalog and acquisition (to be written).
