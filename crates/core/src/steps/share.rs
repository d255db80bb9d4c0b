//! share (not yet written).
