//! Swap (target account, target region): the restored cluster takes over the
//! existing names, so the reader/writer endpoints stay the same.
//!
//! Names: `E`, `T`, `EI[k]`, `TI[k]`, `O` and the instances' old names as
//! [`super::names`] defines them (with many clusters, those of the pair of
//! the payload's `sourceClusterId`, [`TargetSettings::for_source`]).
//! A finished normal run emits `StepDurationSeconds` ([`crate::metrics`]).
//!
//! # Normal mode
//! Input: the [`RunState`] after WaitForTempInstances (`restoredClusterId` =
//! `T`, `restoredInstanceIds` = `TI`). Output: the same payload with `swap`
//! ([`SwapRecord`]) set.
//! - Phase 1 (skipped on a first run, when nothing is under `E`): the previous
//!   cluster `E` -> `O`, then each of its member instances `m` -> `{m}-old-{stamp}`.
//! - Phase 2: `T` -> `E`, then `TI[k]` -> `EI[k]`.
//!
//! Renames are `ModifyDBCluster`/`ModifyDBInstance` with the new identifier
//! and `ApplyImmediately`; RDS applies them asynchronously (status
//! `renaming`). The step never sleeps: before phase 2 it checks that the names
//! phase 1 vacated are free; while they are not, it ends with the retryable
//! `ResourceNotReady` and the state machine's Retry calls it again. The next
//! call works out from RDS state and tags what is already done (a cluster
//! under `E` with this run's tags: phase 2 done; a cluster under `O`: phase 1
//! done) and continues. WaitForSwappedCluster then waits for `E` to be available.
//!
//! Before any change every resource involved is checked: the temporary
//! cluster and instances exist, carry this run's tags and are `available`;
//! the previous cluster and its instances are `available`; no old name is
//! taken; each `EI[k]` is free or a member of the previous cluster; a
//! previous cluster without aurora-dr's tags is renamed away only with
//! `ADOPT_EXISTING` ([`super::adoption`]; `Conflict` otherwise). A busy
//! resource ends the call with `ResourceNotReady` before anything changes, so
//! a retry is safe. A cluster under `E` that carries this run's tags is never
//! renamed away.
//!
//! A previous instance beyond repair (`failed`,
//! `inaccessible-encryption-credentials`, `incompatible-*`:
//! [`crate::rds::beyond_repair`]) serves nothing and RDS will not rename it: once
//! the restored copy is checked available and the previous cluster is under
//! `O`, it is deleted instead of renamed away, and `swap.deletedInstanceIds`
//! names it (a rollback cannot bring it back; the cluster returns without it).
//! The previous cluster itself must still be `available`.
//!
//! A rename refused while its new name exists and its old one is gone is
//! done: an earlier attempt took effect and its answer was lost, and the
//! retry of the same call found the names already moved (`apply::rename`).
//!
//! If a rename fails after a change was made (in this call or an earlier
//! one), everything done is renamed back in reverse order (phase 2 first,
//! then phase 1) and the step fails with `SwapFailed { rolled_back: true }`
//! — except for a transient API error (`Throttled`, `ServiceUnavailable`),
//! which is returned as is: the retry continues from RDS state, and the
//! failure path (RollBackSwap) undoes the renames if the retries run out;
//! if an undo fails too, `rolled_back: false` and the detail says which name
//! is where. A retryable refusal of the first change of a call changes
//! nothing and is returned as is.
//!
//!
//! The module is split along its seams: [`plan`] works out from RDS state
//! and tags what is done and what is left; [`apply`] makes the renames and
//! undoes them when one fails. The failure path's RollBackSwap state is
//! [`super::roll_back_swap`].

mod apply;
mod plan;
#[cfg(test)]
pub(crate) mod tests;

use std::sync::Arc;

use aws_sdk_rds::Client;
use serde_json::Value;

use crate::context::StepContext;
use crate::error::{DrError, DrResult};
use crate::ids::ClusterId;
use crate::metrics;
use crate::payload::{RunState, SwapRecord};
use crate::rds;
use crate::settings::TargetSettings;
use crate::steps::adoption;
use crate::steps::input::{self, InputKind};
use crate::steps::names::SwapNames;

pub(crate) use apply::{Kind, Rename, rename, require_settled};
pub(crate) use plan::owner;

/// The state this module serves.
pub const STATE: &str = "Swap";

/// Performs the swap (or its remaining part) and records it in the payload.
pub async fn run(rds: &Client, settings: &TargetSettings, mut run: RunState) -> DrResult<RunState> {
    let names = SwapNames::new(settings, &run)?;
    input::no_failure(&run, STATE)?;
    plan::check_payload(&run, &names)?;
    let existing = rds::find_cluster(rds, names.existing.as_str()).await?;
    let old = rds::find_cluster(rds, names.old.as_str()).await?;
    let plan = match (existing, old) {
        (Some(e), old) if rds::is_from_run(e.tag_list(), &run) => {
            plan::after_cluster_swap(rds, &names, &run, old.as_ref()).await?
        }
        (Some(e), Some(_)) => {
            if e.status() == Some("renaming") {
                return Err(DrError::not_ready(
                    format!("cluster {} (being renamed to {})", names.existing, names.old),
                    "renaming",
                ));
            }
            return Err(DrError::Conflict(format!(
                "both {} (not from run {}) and {} exist; the swap cannot tell which is the previous copy; \
                 nothing was changed",
                names.existing, run.run_id, names.old
            )));
        }
        (Some(e), None) => {
            // Restore asked already; the name may have changed hands since.
            adoption::check(&e, settings)?;
            plan::full_swap(rds, &names, &run, &e).await?
        }
        (None, Some(o)) => plan::resume_after_phase1(rds, &names, &run, &o).await?,
        (None, None) => plan::first_run(rds, &names, &run).await?,
    };
    apply::execute(rds, &names, &plan, &run.run_id).await?;
    let record = SwapRecord {
        old_cluster_id: plan.has_old.then(|| names.old.clone()),
        old_instance_ids: plan
            .old_instances
            .iter()
            .map(|i| i.parse().map_err(|e| DrError::invalid_input(format!("old instance id {i}: {e}"))))
            .collect::<DrResult<_>>()?,
        deleted_instance_ids: plan
            .deletions
            .iter()
            .map(|(id, _)| id)
            .chain(&plan.deleted)
            .map(|i| i.parse().map_err(|e| DrError::invalid_input(format!("deleted instance id {i}: {e}"))))
            .collect::<DrResult<_>>()?,
        existing_cluster_id: names.existing.clone(),
        existing_instance_ids: names.existing_instances.clone(),
    };
    tracing::info!(
        step = "swap",
        run_id = %run.run_id,
        cluster = %names.existing,
        old_cluster = ?record.old_cluster_id.as_ref().map(ClusterId::as_str),
        deleted_instances = ?record.deleted_instance_ids.iter().map(|i| i.as_str()).collect::<Vec<_>>(),
        "swap issued; the existing name now points at the restored cluster"
    );
    run.swap = Some(record);
    Ok(run)
}

/// Lambda / local-engine entry of the Swap state.
pub async fn handle(ctx: Arc<StepContext>, input: Value) -> DrResult<Value> {
    let started = std::time::Instant::now();
    input::expect(&input, InputKind::Run, STATE)?;
    let run = RunState::from_value(input)?;
    // Many clusters: the names of the payload's source cluster's pair.
    let (settings, rds) = super::serving_target_rds(&ctx, &run, STATE)?;
    let out = self::run(&rds, &settings, run).await?;
    metrics::step_duration(metrics::TARGET, STATE, &out, started.elapsed()).emit();
    Ok(out.to_value())
}
