//! restore_instance (not yet written).
