//! restore (not yet written).
