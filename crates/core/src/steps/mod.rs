//! One module per pipeline step. Each exposes:
//! - `run(...)`: the step's logic, taking its clients, settings and typed input;
//! - `handle(ctx, input)`: the untyped entry the Lambda binary and the local
//!   engine call (parses the input into a named `InvalidInput` error, runs,
//!   serialises the output).
//!
//! Two modules are modes of an existing step's function rather than steps of
//! their own: [`own_copy`] is EncryptCopy on the target side (target-owned
//! encryption) and [`retention`] is the `ApplyRetention` state, served by
//! CreateSnapshot (source) and Terminate (target).

pub mod create_snapshot;
pub mod encrypt_copy;
pub mod fetch_status;
pub mod invoke_step_function;
pub mod notify;
pub mod own_copy;
pub mod restore;
pub mod restore_instance;
pub mod retention;
pub mod sanity_check;
pub mod share;
pub mod swap;
pub mod terminate;

/// Fixtures shared by the source-side step tests.
#[cfg(test)]
pub(crate) mod test_support;

/// Fixtures shared by the target-side step tests.
#[cfg(test)]
pub(crate) mod target_support;
