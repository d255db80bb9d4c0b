//! CleanUpTempCluster (target account, target region): the failure path's
//! removal of this run's temporary cluster.
//!
//! Input: any payload with `failure` (only `runId` is read). Unless
//! `KEEP_FAILED_TEMP_CLUSTER`, deletes the temporary instances (`TI[k]`) and
//! the temporary cluster (`T`) when they exist under those ids and carry this
//! run's tags; anything else is kept and logged (a cluster still holding
//! instances that are not deleted here is kept too). Output: the payload unchanged.
//! In a restore test these are the test cluster's names
//! ([`TargetSettings::for_run`]).
//!
//! RemoveTestCluster (the same handler, a restore test that passed): input
//! the restore test's run payload without `failure`. Deletes the test
//! cluster and instances whatever `KEEP_FAILED_TEMP_CLUSTER` says (it keeps
//! failed clusters only) and adds the test's figures (`restoreTest`:
//! [`RestoreTestReport`]) to the payload, which is the execution's output.

use std::sync::Arc;

use aws_sdk_rds::Client;
use aws_sdk_rds::types::Tag;
use serde_json::Value;

use crate::context::StepContext;
use crate::error::{DrError, DrResult};
use crate::payload::{RestoreTestReport, RunState, need};
use crate::rds;
use crate::settings::TargetSettings;
use crate::steps::input::{self, InputKind};
use crate::steps::names::same_id;

/// The state this module serves on the failure path.
pub const STATE: &str = "CleanUpTempCluster";
/// The state this module serves when a restore test passed.
pub const REMOVE_TEST_STATE: &str = "RemoveTestCluster";

const STEP: &str = "clean_up_temp_cluster";

fn carries_run(tags: &[Tag], run_id: &str) -> bool {
    rds::is_managed(tags) && rds::tag_value(tags, rds::TAG_RUN_ID) == Some(run_id)
}

/// Failure mode: deletes this run's temporary cluster and instances. Returns
/// `payload` unchanged.
pub async fn run(rds: &Client, settings: &TargetSettings, payload: Value) -> DrResult<Value> {
    let temp = &settings.temp_cluster_id;
    if settings.keep_failed_temp_cluster {
        tracing::info!(step = STEP, cluster = %temp, "KEEP_FAILED_TEMP_CLUSTER: keeping it");
        return Ok(payload);
    }
    let Some(run_id) = input::loose_run_id(&payload) else {
        tracing::error!(step = STEP, "payload has no usable runId; deleting nothing");
        return Ok(payload);
    };
    delete_run_cluster(rds, settings, &run_id).await?;
    Ok(payload)
}

/// A restore test that passed: deletes its test cluster and instances and
/// reports its figures. `now` is when the test's SanityCheck ended.
pub async fn remove_test_cluster(
    rds: &Client,
    settings: &TargetSettings,
    mut run: RunState,
    now: time::OffsetDateTime,
) -> DrResult<RunState> {
    if !run.is_restore_test() {
        return Err(DrError::invalid_input(format!(
            "{REMOVE_TEST_STATE} removes a restore test's cluster, but the payload is not a restore test"
        )));
    }
    input::no_failure(&run, REMOVE_TEST_STATE)?;
    let recovery_point = *need(&run.snapshot_created_at, "snapshotCreatedAt")?;
    let snapshot_id = need(&run.own_snapshot_id, "ownSnapshotId")
        .or_else(|_| need(&run.target_snapshot_id, "targetSnapshotId"))?
        .clone();
    delete_run_cluster(rds, settings, &run.run_id).await?;
    let report = RestoreTestReport {
        test_cluster_id: settings.temp_cluster_id.clone(),
        snapshot_id,
        rpo_seconds: (run.created_at - recovery_point).as_seconds_f64().max(0.0),
        time_to_restore_seconds: (now - run.created_at).as_seconds_f64().max(0.0),
        sanity_checked: settings.sanity.secret_arn.is_some(),
        serving_cluster_id: settings.existing_cluster_id.clone(),
    };
    tracing::info!(step = STEP, run_id = %run.run_id, rpo_seconds = report.rpo_seconds,
        time_to_restore_seconds = report.time_to_restore_seconds, sanity_checked = report.sanity_checked,
        "restore test passed; test cluster removed");
    run.restore_test = Some(report);
    Ok(run)
}

/// Deletes the temporary (or test) cluster and instances that carry
/// `run_id`'s tags.
async fn delete_run_cluster(
    rds: &Client,
    settings: &TargetSettings,
    run_id: &crate::ids::RunId,
) -> DrResult<()> {
    let temp = &settings.temp_cluster_id;
    let run_id_str = run_id.as_str();
    let mut deleted: Vec<String> = Vec::new();
    let mut kept: Vec<String> = Vec::new();
    let mut ours_instances: Vec<String> = Vec::new();
    for ti in settings.temp_instance_ids() {
        match rds::find_instance(rds, ti.as_str()).await? {
            None => {}
            Some(i) if !carries_run(i.tag_list(), run_id_str) => {
                kept.push(format!("instance {ti} (not this run's)"));
            }
            Some(i) => {
                wait_out_rename("instance", ti.as_str(), i.db_instance_status())?;
                if i.db_instance_status() != Some("deleting") {
                    tracing::info!(step = STEP, run_id = %run_id, instance = %ti, "deleting instance");
                    rds::delete_instance(rds, ti.as_str()).await?;
                }
                deleted.push(format!("instance {ti}"));
                ours_instances.push(ti.to_string());
            }
        }
    }
    match rds::find_cluster(rds, temp.as_str()).await? {
        None => {}
        Some(c) if !carries_run(c.tag_list(), run_id_str) => {
            kept.push(format!("cluster {temp} (not this run's)"))
        }
        Some(c) => {
            let others: Vec<&str> = c
                .db_cluster_members()
                .iter()
                .filter_map(|m| m.db_instance_identifier())
                .filter(|m| !ours_instances.iter().any(|o| same_id(o, m)))
                .collect();
            if !others.is_empty() {
                kept.push(format!(
                    "cluster {temp} (holds instances not deleted here: {})",
                    others.join(", ")
                ));
            } else {
                wait_out_rename("cluster", temp.as_str(), c.status())?;
                if c.status() != Some("deleting") {
                    tracing::info!(step = STEP, run_id = %run_id, cluster = %temp, "deleting cluster");
                    rds::delete_cluster(rds, &c, temp.as_str(), false).await?;
                }
                deleted.push(format!("cluster {temp}"));
            }
        }
    }
    tracing::info!(step = STEP, run_id = %run_id, deleted = ?deleted, kept = ?kept, "temporary cluster cleaned up");
    Ok(())
}

/// `ResourceNotReady` while a resource is still `renaming` (RollBackSwap
/// has just moved it back to its temporary name): RDS refuses to delete a
/// cluster or instance mid-rename (InvalidDBClusterStateFault /
/// InvalidDBInstanceState), so the state's Retry waits instead of calling.
fn wait_out_rename(kind: &str, id: &str, status: Option<&str>) -> DrResult<()> {
    match status {
        Some(s @ "renaming") => Err(DrError::not_ready(format!("temporary {kind} {id}"), s)),
        _ => Ok(()),
    }
}

/// Lambda / local-engine entry of the CleanUpTempCluster state (a
/// failure-path payload) and of RemoveTestCluster (a restore test's run
/// payload).
pub async fn handle(ctx: Arc<StepContext>, input: Value) -> DrResult<Value> {
    if super::is_restore_test_payload(&input) && InputKind::of(&input) == InputKind::Run {
        let run = RunState::from_value(input)?;
        let (settings, rds) = super::target_rds(&ctx, &run)?;
        let now = time::OffsetDateTime::now_utc();
        return Ok(remove_test_cluster(&rds, &settings, run, now).await?.to_value());
    }
    // Many clusters: the names of the payload's source cluster's pair.
    let (settings, rds) = super::failure_path_target(&ctx, &input, STATE)?;
    run(&rds, &settings, input).await
}

#[cfg(test)]
mod tests {
    use aws_smithy_mocks::Rule;

    use super::*;
    use crate::error::DrResult;
    use crate::payload::RunState;
    use crate::steps::target_support::*;

    /// Every delete the clean-up may make, journaled.
    fn delete_rules(j: &Journal) -> Vec<Rule> {
        vec![delete_instance(j, TI, None), delete_cluster(j, T, None), unprotect_cluster(j, T)]
    }

    /// The failure mode on `payload` against `world` and every delete.
    async fn run_clean_up(world: &[Rule], payload: Value) -> (DrResult<Value>, Vec<String>) {
        let j = Journal::default();
        let deletes = delete_rules(&j);
        let out = super::run(&rds(&all(&[world, &deletes])), &settings(), payload).await;
        (out, j.entries())
    }

    fn failed(run: &RunState) -> Value {
        let mut v = run.to_value();
        v["failure"] = serde_json::json!({"Error": "ResourceFailed", "Cause": "x"});
        v["failedState"] = "WaitForTempCluster".into();
        v
    }

    #[tokio::test]
    async fn clean_up_deletes_this_runs_temp_instances_and_cluster() {
        let run = target_run();
        let world = [
            describe_instance(TI, Some(instance(TI, T, "available", ours(&run)))),
            describe_cluster(
                T,
                Some(with_deletion_protection(cluster(T, "available", ours(&run), &[TI]), true)),
            ),
        ];
        let payload = failed(&run);
        let (out, deleted) = run_clean_up(&world, payload.clone()).await;
        assert_eq!(out.expect("cleaned"), payload);
        assert_eq!(
            deleted,
            [
                format!("delete instance {TI}"),
                format!("unprotect cluster {T}"),
                format!("delete cluster {T} (skip final)")
            ]
        );
    }

    /// RDS refuses to delete a cluster mid-rename: the clean-up waits
    /// (`ResourceNotReady`, retried) and calls nothing meanwhile.
    #[tokio::test]
    async fn clean_up_waits_for_a_cluster_still_renaming() {
        let run = target_run();
        let world = [
            describe_instance(TI, Some(instance(TI, T, "deleting", ours(&run)))),
            describe_cluster(T, Some(cluster(T, "renaming", ours(&run), &[TI]))),
        ];
        let (out, deleted) = run_clean_up(&world, failed(&run)).await;
        let err = out.expect_err("still renaming");
        assert_eq!(err.asl_name(), "ResourceNotReady", "{err}");
        assert!(err.to_string().contains(T), "{err}");
        assert!(deleted.is_empty(), "{deleted:?}");
    }

    #[tokio::test]
    async fn clean_up_keeps_what_is_not_this_runs() {
        let run = target_run();
        let world = [
            describe_instance(TI, Some(instance(TI, T, "available", earlier_run()))),
            describe_cluster(T, Some(cluster(T, "available", earlier_run(), &[TI]))),
        ];
        let (out, deleted) = run_clean_up(&world, failed(&run)).await;
        out.expect("kept");
        assert!(deleted.is_empty());
    }

    #[tokio::test]
    async fn clean_up_keeps_a_cluster_holding_instances_it_does_not_delete() {
        let run = target_run();
        let world = [
            describe_instance(TI, Some(instance(TI, T, "available", ours(&run)))),
            describe_cluster(T, Some(cluster(T, "available", ours(&run), &[TI, "hand-made-reader"]))),
        ];
        let (out, deleted) = run_clean_up(&world, failed(&run)).await;
        out.expect("partly");
        assert_eq!(deleted, [format!("delete instance {TI}")]);
    }

    #[tokio::test]
    async fn clean_up_with_nothing_there_or_keep_configured_deletes_nothing() {
        let run = target_run();
        let world = [describe_instance(TI, None), describe_cluster(T, None)];
        let (out, deleted) = run_clean_up(&world, failed(&run)).await;
        out.expect("nothing");
        assert!(deleted.is_empty());

        let mut keep = settings();
        keep.keep_failed_temp_cluster = true;
        let payload = failed(&run);
        assert_eq!(super::run(&rds(&[]), &keep, payload.clone()).await.expect("kept"), payload);
        // Without a runId nothing can be recognised as this run's.
        let anonymous = serde_json::json!({"failure": {"Error": "x", "Cause": ""}});
        assert_eq!(super::run(&rds(&[]), &settings(), anonymous.clone()).await.expect("kept"), anonymous);
    }

    #[tokio::test]
    async fn handle_cleans_up_in_the_target_region_and_refuses_a_run_payload() {
        let instance_gone = "<ErrorResponse><Error><Code>DBInstanceNotFound</Code><Message>x</Message></Error>\
            </ErrorResponse>";
        let cluster_gone = "<ErrorResponse><Error><Code>DBClusterNotFoundFault</Code><Message>x</Message></Error>\
            </ErrorResponse>";
        let recorder = Recorder::replying([(404, instance_gone), (404, cluster_gone)]);
        let payload = failed(&target_run());
        let out = handle(recorder.target_elsewhere(settings()), payload.clone()).await.expect("cleaned");
        assert_eq!(out, payload);
        let sent = recorder.sent();
        assert_eq!(sent.len(), 2);
        assert!(sent[0].body.contains("Action=DescribeDBInstances"), "{}", sent[0].body);
        assert!(sent[1].body.contains("Action=DescribeDBClusters"), "{}", sent[1].body);
        assert!(sent.iter().all(|s| s.uri.contains("rds.us-west-1.")), "{sent:?}");

        // Terminate's input (no `failure`) is not this state's.
        let recorder = Recorder::default();
        let err =
            handle(recorder.target_elsewhere(settings()), target_run().to_value()).await.expect_err("run");
        assert_eq!(err.asl_name(), "InvalidInput", "{err}");
        assert!(recorder.sent().is_empty());
    }

    /// A passed restore test removes its test cluster even with
    /// KEEP_FAILED_TEMP_CLUSTER (it keeps failed clusters only), touches no
    /// other name, and reports RPO and time to restore.
    #[tokio::test]
    async fn a_passed_restore_test_removes_its_test_cluster_and_reports_its_figures() {
        use time::macros::datetime;
        let mut run = target_run();
        run.mode = Some(crate::payload::RunMode::RestoreTest);
        run.created_at = datetime!(2026-11-26 10:00:00 UTC);
        run.snapshot_created_at = Some(datetime!(2026-11-26 09:00:00 UTC));
        let mut settings = settings().for_run(None, true).expect("test names");
        settings.keep_failed_temp_cluster = true;
        let (test, test_instance) = ("orders-dr-next-test", "orders-dr-next-1-test");
        let j = Journal::default();
        let world = [
            describe_instance(test_instance, Some(instance(test_instance, test, "available", ours(&run)))),
            describe_cluster(test, Some(cluster(test, "available", ours(&run), &[test_instance]))),
            delete_instance(&j, test_instance, None),
            delete_cluster(&j, test, None),
        ];
        let now = datetime!(2026-11-26 10:20:00 UTC);
        let out =
            remove_test_cluster(&rds(&all(&[&world])), &settings, run.clone(), now).await.expect("removed");
        assert_eq!(
            j.entries(),
            [format!("delete instance {test_instance}"), format!("delete cluster {test} (skip final)")]
        );
        let report = out.restore_test.expect("report");
        assert_eq!(report.rpo_seconds, 3600.0);
        assert_eq!(report.time_to_restore_seconds, 1200.0);
        assert_eq!(report.test_cluster_id.as_str(), test);
        assert_eq!(report.serving_cluster_id.as_str(), E);
        assert!(!report.sanity_checked);
        // Not a restore test: refused before any call.
        let err = remove_test_cluster(&rds(&[]), &settings, target_run(), now).await.expect_err("refused");
        assert_eq!(err.asl_name(), "InvalidInput", "{err}");
    }
}
