//! swap (not yet written).
