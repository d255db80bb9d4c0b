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

use crate::context::StepContext;
use crate::error::DrResult;
use crate::settings::TargetSettings;

/// The target settings for a payload's source cluster (with many clusters,
/// the names of its pair: [`TargetSettings::for_source`]) and an RDS client
/// in the target region.
pub(crate) fn target_rds(
    ctx: &StepContext,
    source: Option<&str>,
) -> DrResult<(TargetSettings, aws_sdk_rds::Client)> {
    let settings = ctx.target()?.for_source(source)?;
    let rds = ctx.aws.in_region(&settings.region).rds();
    Ok((settings, rds))
}

/// Fixtures shared by the step tests of both sides.
#[cfg(test)]
pub(crate) mod test_support;

/// Fixtures shared by the target-side step tests (on top of [`test_support`]).
#[cfg(test)]
pub(crate) mod target_support;
