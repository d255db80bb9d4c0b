//! terminate (not yet written).
