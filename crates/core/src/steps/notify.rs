//! notify (not yet written).
