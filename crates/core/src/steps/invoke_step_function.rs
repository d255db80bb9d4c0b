//! invoke_step_function (not yet written).
