//! Program model (to be written).
