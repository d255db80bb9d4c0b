//! encrypt_copy (not yet written).
