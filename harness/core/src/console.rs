//! Kernel console parser (to be written).
