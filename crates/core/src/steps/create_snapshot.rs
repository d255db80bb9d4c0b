//! create_snapshot (not yet written).
