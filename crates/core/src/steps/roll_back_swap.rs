//! RollBackSwap (target account, target region): the failure path's undo of
//! a swap, so the existing name serves a complete cluster again.
//!
//! Input: any payload with `failure` (it need not parse as [`RunState`]; only
//! `runId` and `createdAt` are read). Goal: the existing name serves a
//! complete cluster again, derived from RDS state + tags + settings:
//! - the cluster under `E` carries this run's tags and `O` exists: the restored
//!   cluster and its instances go back to `T`/`TI[k]`, then `O` and its
//!   instances back to their previous names; a restored instance beyond
//!   repair (e.g. `failed`: RDS will not rename it) is deleted instead, and
//!   the rollback waits until its name is free;
//! - a previous instance Swap deleted because it was beyond repair cannot
//!   come back: `O` returns to `E` without it;
//! - nothing is under `E` but `O` exists (phase 1 done, phase 2 not): `O` and
//!   its instances go back (this goes beyond leaving things as they are: the
//!   production name must not stay empty);
//! - the cluster under `E` carries this run's tags and there is no `O` (first
//!   run): the restored cluster stays, as it is the only copy; logged;
//! - otherwise nothing changes (instances of the cluster under `E` still
//!   carrying this run's `-old-{stamp}` name get their names back).
//!
//! Output: the payload unchanged. A busy resource gives `ResourceNotReady`
//! (the handler is state-driven, so a retry continues); an undo that cannot
//! be done gives `SwapFailed { rolled_back: false }` with where things are.

use std::sync::Arc;

use aws_sdk_rds::Client;
use aws_sdk_rds::types::DbCluster;
use serde_json::Value;

use crate::context::StepContext;
use crate::error::{DrError, DrResult};
use crate::payload::RunState;
use crate::rds;
use crate::settings::TargetSettings;
use crate::steps::input;
use crate::steps::names::{SwapNames, member_ids, same_id};
use crate::steps::swap::{Kind, Rename, rename, require_settled};

/// The state this module serves.
pub const STATE: &str = "RollBackSwap";

/// Puts the previous cluster back under the existing name
/// when this run moved it away. Returns `payload` unchanged.
pub async fn run(rds: &Client, settings: &TargetSettings, payload: Value) -> DrResult<Value> {
    let Some(run) = input::loose_run(&payload) else {
        tracing::error!(
            step = "roll_back_swap",
            "payload has no usable runId/createdAt; cannot tell this run's resources, changing nothing"
        );
        return Ok(payload);
    };
    let names = SwapNames::new(settings, &run)?;
    let existing = rds::find_cluster(rds, names.existing.as_str()).await?;
    let old = rds::find_cluster(rds, names.old.as_str()).await?;
    let mut renames = Vec::new();
    match (&existing, &old) {
        (Some(e), Some(o)) if rds::is_from_run(e.tag_list(), &run) => {
            if let Some(t) = rds::find_cluster(rds, names.temp.as_str()).await? {
                return Err(DrError::SwapFailed {
                    detail: format!(
                        "cannot move the restored cluster away from {}: {} is taken (run-id tag: {}); \
                         the previous copy stays at {}",
                        names.existing,
                        names.temp,
                        crate::steps::swap::owner(t.tag_list()),
                        names.old
                    ),
                    rolled_back: false,
                });
            }
            renames.extend(move_restored_away(rds, &names, &run, e).await?);
            renames.extend(put_previous_back(&names, o));
        }
        (Some(e), None) if rds::is_from_run(e.tag_list(), &run) => {
            tracing::warn!(
                step = "roll_back_swap",
                run_id = %run.run_id,
                cluster = %names.existing,
                "first run: no previous cluster; keeping the restored cluster under the existing name (the only copy)"
            );
        }
        (None, Some(o)) => renames.extend(put_previous_back(&names, o)),
        (Some(e), old) => {
            for m in member_ids(e) {
                if names.is_old_instance_name(&m) {
                    renames.push(Rename::instance(
                        "previous instance",
                        &m,
                        &names.original_instance_name(&m),
                    ));
                }
            }
            if old.is_some() {
                tracing::warn!(
                    step = "roll_back_swap",
                    run_id = %run.run_id,
                    "both {} and {} exist and the former is not this run's; leaving both",
                    names.existing,
                    names.old
                );
            }
        }
        (None, None) => {
            tracing::warn!(step = "roll_back_swap", run_id = %run.run_id, "no cluster under {} or {}; nothing to roll back", names.existing, names.old);
        }
    }
    if renames.is_empty() {
        tracing::info!(step = "roll_back_swap", run_id = %run.run_id, "nothing to rename");
        return Ok(payload);
    }
    let mut vacated: Vec<String> = Vec::new();
    let mut done: Vec<String> = Vec::new();
    for r in &renames {
        // A resource Swap renamed a moment ago may still be `renaming`: RDS
        // refuses another rename until it is done, so wait (Retry) for it.
        require_settled(rds, r).await?;
        if let Err(e) = rename(rds, r, &run.run_id).await {
            if e.is_retryable() {
                return Err(e);
            }
            if matches!(e, DrError::Conflict(_)) && vacated.iter().any(|v| same_id(v, &r.to)) {
                // The name was vacated a moment ago; RDS has not finished that rename.
                return Err(DrError::not_ready(format!("{} (vacated, still renaming)", r.to), "renaming"));
            }
            if matches!(e, DrError::Conflict(_)) && held_by_a_deleted_instance(rds, r).await? {
                // An instance deleted because it was beyond repair keeps its
                // name while `deleting`; the name frees once it is gone.
                return Err(DrError::not_ready(
                    format!("{} (deleted, still holding the name)", r.to),
                    "deleting",
                ));
            }
            return Err(DrError::SwapFailed {
                detail: format!(
                    "rollback: {r} failed: {e}; done so far: [{}]; cluster {} carries run {}'s tags: {}",
                    done.join(", "),
                    names.existing,
                    run.run_id,
                    existing.as_ref().is_some_and(|c| rds::is_from_run(c.tag_list(), &run))
                ),
                rolled_back: false,
            });
        }
        vacated.push(r.from.clone());
        done.push(r.to_string());
    }
    tracing::warn!(step = "roll_back_swap", run_id = %run.run_id, renames = ?done, "previous names restored");
    Ok(payload)
}

/// The restored cluster's instances (this run's, under `EI[k]`) back to
/// `TI[k]`, then the cluster back to the temporary id.
async fn move_restored_away(
    rds: &Client,
    names: &SwapNames,
    run: &RunState,
    existing: &DbCluster,
) -> DrResult<Vec<Rename>> {
    let mut renames = Vec::new();
    for m in member_ids(existing) {
        let Some(k) = names.index_of_existing_instance(&m) else { continue };
        let Some(i) = rds::find_instance(rds, &m).await? else { continue };
        if !rds::is_from_run(i.tag_list(), run) {
            continue;
        }
        let status = i.db_instance_status().unwrap_or("unknown");
        if rds::beyond_repair(status) {
            // RDS refuses to rename it, and it holds the name the previous
            // instance goes back to: it is deleted (it is this run's and
            // serves nothing), and the rollback waits until it is gone.
            tracing::warn!(step = "roll_back_swap", run_id = %run.run_id, instance = %m, status,
                "restored instance {m} is {status}: deleting it instead of renaming it back");
            rds::delete_instance(rds, &m).await?;
            return Err(DrError::not_ready(
                format!("restored instance {m} ({status}, being deleted)"),
                "deleting",
            ));
        }
        renames.push(Rename::instance("restored instance", &m, names.temp_instances[k].as_str()));
    }
    renames.push(Rename::cluster("restored cluster", names.existing.as_str(), names.temp.as_str()));
    Ok(renames)
}

/// Whether the name an instance rename was refused for is being freed: held
/// by a `deleting` instance, or already free (the deletion ended between the
/// refusal and this look).
async fn held_by_a_deleted_instance(rds: &Client, r: &Rename) -> DrResult<bool> {
    if r.kind != Kind::Instance {
        return Ok(false);
    }
    let holder = rds::find_instance(rds, &r.to).await?;
    Ok(holder.is_none_or(|i| i.db_instance_status() == Some("deleting")))
}

/// The previous cluster back to the existing id, then its instances.
fn put_previous_back(names: &SwapNames, old: &DbCluster) -> Vec<Rename> {
    let mut renames = vec![Rename::cluster("previous cluster", names.old.as_str(), names.existing.as_str())];
    for m in member_ids(old) {
        if names.is_old_instance_name(&m) {
            renames.push(Rename::instance("previous instance", &m, &names.original_instance_name(&m)));
        }
    }
    renames
}

/// Lambda / local-engine entry of the RollBackSwap state.
pub async fn handle(ctx: Arc<StepContext>, input: Value) -> DrResult<Value> {
    // Many clusters: the names of the payload's source cluster's pair.
    let (settings, rds) = super::failure_path_target(&ctx, &input, STATE)?;
    if super::is_restore_test_payload(&input) {
        // A restore test never swaps: nothing to put back, and the serving
        // cluster is not even looked at.
        tracing::info!(step = "roll_back_swap", "restore test: nothing was swapped; nothing to roll back");
        return Ok(input);
    }
    run(&rds, &settings, input).await
}

#[cfg(test)]
mod tests {
    use aws_smithy_mocks::Rule;

    use super::*;
    use crate::steps::swap::tests::{failed_run, line, moved_away, previous, renames, swap_run};
    use crate::steps::target_support::*;

    #[tokio::test]
    async fn rollback_puts_the_previous_copy_back_and_the_restored_one_away() {
        let run = swap_run();
        let world = [
            describe_cluster(E, Some(cluster(E, "available", ours(&run), &[EI]))),
            describe_cluster(O, Some(moved_away())),
            describe_cluster(T, None),
            describe_instance(EI, Some(instance(EI, E, "available", ours(&run)))),
            previous_instance_moved_away("available"),
        ];
        let payload = failed_run();
        let (out, renamed) = run_roll_back(&world, payload.clone()).await;
        let out = out.expect("rolled");
        assert_eq!(
            renamed,
            [
                line("instance", EI, TI),
                line("cluster", E, T),
                line("cluster", O, E),
                line("instance", OI, EI)
            ]
        );
        assert_eq!(out, payload, "the failure-path payload passes through unchanged");
    }

    #[tokio::test]
    async fn rollback_on_a_first_run_keeps_the_only_copy() {
        let world = [
            describe_cluster(E, Some(cluster(E, "available", ours(&swap_run()), &[EI]))),
            describe_cluster(O, None),
        ];
        let payload = failed_run();
        let (out, renamed) = run_roll_back(&world, payload.clone()).await;
        let out = out.expect("kept");
        assert!(renamed.is_empty());
        assert_eq!(out, payload);
    }

    #[tokio::test]
    async fn rollback_after_phase_one_only_puts_the_previous_copy_back() {
        let world = [
            describe_cluster(E, None),
            describe_cluster(O, Some(moved_away())),
            previous_instance_moved_away("available"),
        ];
        let (out, renamed) = run_roll_back(&world, failed_run()).await;
        out.expect("rolled");
        assert_eq!(renamed, [line("cluster", O, E), line("instance", OI, EI)]);
    }

    /// The previous instance under its old name, as Swap left it.
    fn previous_instance_moved_away(status: &str) -> Rule {
        describe_instance(OI, Some(instance(OI, O, status, earlier_run())))
    }

    /// RDS refuses to rename a resource whose last rename is still in
    /// progress (InvalidDBInstanceState): the roll-back waits for it
    /// (`ResourceNotReady`, retried by the state machine) instead of trying.
    #[tokio::test]
    async fn rollback_waits_for_a_resource_still_renaming() {
        let world = [
            describe_cluster(E, None),
            describe_cluster(O, Some(moved_away())),
            previous_instance_moved_away("renaming"),
        ];
        let (out, renamed) = run_roll_back(&world, failed_run()).await;
        let err = out.expect_err("still renaming");
        assert_eq!(err.asl_name(), "ResourceNotReady", "{err}");
        assert!(err.to_string().contains(OI), "{err}");
        assert_eq!(renamed, [line("cluster", O, E)], "the instance is left for the retry");
    }

    #[tokio::test]
    async fn rollback_changes_nothing_when_the_previous_copy_is_in_place() {
        let world = [describe_cluster(E, Some(previous())), describe_cluster(O, None)];
        let (out, renamed) = run_roll_back(&world, failed_run()).await;
        out.expect("nothing");
        assert!(renamed.is_empty());
    }

    #[tokio::test]
    async fn rollback_reads_a_partial_payload_loosely() {
        let world = [
            describe_cluster(E, None),
            describe_cluster(O, Some(moved_away())),
            previous_instance_moved_away("available"),
        ];
        // Not a RunState (unknown key), but runId and createdAt are there.
        let payload = serde_json::json!({
            "runId": "run-1",
            "createdAt": "2026-11-25T16:00:05Z",
            "failedState": "Swap",
            "failure": {"Error": "States.Timeout", "Cause": ""},
            "somethingElse": true
        });
        let (out, renamed) = run_roll_back(&world, payload.clone()).await;
        assert_eq!(out.expect("rolled"), payload);
        assert_eq!(renamed, [line("cluster", O, E), line("instance", OI, EI)]);

        // Without createdAt the old name cannot be known: nothing is touched.
        let unusable = serde_json::json!({"runId": "run-1", "failure": {"Error": "x"}});
        let out = super::run(&rds(&[]), &settings(), unusable.clone()).await.expect("unchanged");
        assert_eq!(out, unusable);
    }

    #[tokio::test]
    async fn rollback_into_a_name_still_being_vacated_is_retryable() {
        let run = swap_run();
        let j = Journal::default();
        let world = [
            describe_cluster(E, Some(cluster(E, "available", ours(&run), &[TI]))),
            describe_cluster(O, Some(moved_away())),
            describe_cluster(T, None),
        ];
        let renames = [
            rename_cluster(&j, E, T, None),
            rename_cluster(&j, O, E, Some(|| rds_fault(400, "DBClusterAlreadyExistsFault"))),
        ];
        let err =
            super::run(&rds(&all(&[&world, &renames])), &settings(), failed_run()).await.expect_err("busy");
        assert_eq!(err.asl_name(), "ResourceNotReady", "{err}");
        assert_eq!(j.entries(), [line("cluster", E, T), line("cluster", O, E)]);
    }

    /// A restored instance that ended `failed` under EI cannot be renamed
    /// back (RDS refuses it) and holds the name the previous instance goes
    /// back to: the rollback deletes it and waits, renaming nothing yet.
    #[tokio::test]
    async fn rollback_deletes_a_restored_instance_beyond_repair_and_waits() {
        let run = swap_run();
        let j = Journal::default();
        let world = [
            describe_cluster(E, Some(cluster(E, "available", ours(&run), &[EI]))),
            describe_cluster(O, Some(moved_away())),
            describe_cluster(T, None),
            describe_instance(EI, Some(instance(EI, E, "failed", ours(&run)))),
        ];
        let changes = [delete_instance(&j, EI, None)];
        let err = super::run(&rds(&all(&[&world, &changes, &renames(&j, None)])), &settings(), failed_run())
            .await
            .expect_err("waits for the deletion");
        assert_eq!(err.asl_name(), "ResourceNotReady", "{err}");
        assert!(err.to_string().contains("being deleted"), "{err}");
        assert_eq!(j.entries(), [format!("delete instance {EI}")]);
    }

    /// The retry: the deleted instance still holds EI (`deleting`), so the
    /// previous instance's rename back is refused; that is a wait, not a
    /// failed rollback. The same when the deletion ended between the refusal
    /// and the look (EI gone).
    #[tokio::test]
    async fn rollback_into_a_name_held_by_a_deleted_instance_is_retryable() {
        for holder in [Some(instance(EI, E, "deleting", ours(&swap_run()))), None] {
            let j = Journal::default();
            let world = [
                describe_cluster(E, None),
                describe_cluster(O, Some(moved_away())),
                previous_instance_moved_away("available"),
                describe_instance(EI, holder.clone()),
            ];
            let renames = [
                rename_cluster(&j, O, E, None),
                rename_instance(&j, OI, EI, Some(|| rds_fault(400, "DBInstanceAlreadyExists"))),
            ];
            let err = super::run(&rds(&all(&[&world, &renames])), &settings(), failed_run())
                .await
                .expect_err("busy");
            assert_eq!(err.asl_name(), "ResourceNotReady", "{holder:?}: {err}");
            assert!(err.to_string().contains("deleted, still holding the name"), "{err}");
            assert_eq!(j.entries(), [line("cluster", O, E), line("instance", OI, EI)]);
        }
    }

    #[tokio::test]
    async fn handle_rolls_back_in_the_target_region_and_refuses_a_run_payload() {
        let not_found = "<ErrorResponse><Error><Code>DBClusterNotFoundFault</Code><Message>x</Message></Error>\
            </ErrorResponse>";
        let recorder = Recorder::replying([(404, not_found), (404, not_found)]);
        let payload = failed_run();
        let out = handle(recorder.target_elsewhere(settings()), payload.clone()).await.expect("rolled back");
        assert_eq!(out, payload);
        let sent = recorder.sent();
        assert_eq!(sent.len(), 2, "two look-ups, no rename");
        assert!(
            sent.iter().all(|s| s.body.contains("Action=DescribeDBClusters") && s.uri.contains("us-west-1"))
        );

        // Swap's input (no `failure`) is not this state's.
        let recorder = Recorder::default();
        let err =
            handle(recorder.target_elsewhere(settings()), swap_run().to_value()).await.expect_err("run");
        assert_eq!(err.asl_name(), "InvalidInput", "{err}");
        assert!(err.to_string().contains("RollBackSwap takes a failure-path payload"), "{err}");
        assert!(recorder.sent().is_empty());
    }

    /// The failure mode on `payload` against `world` and every rename: the
    /// result and the renames made, in order.
    async fn run_roll_back(world: &[Rule], payload: Value) -> (DrResult<Value>, Vec<String>) {
        let j = Journal::default();
        let renames = renames(&j, None);
        let out = super::run(&rds(&all(&[world, &renames])), &settings(), payload).await;
        (out, j.entries())
    }
}
