//! fetch_status (not yet written).
