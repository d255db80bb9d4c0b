//! Terminate (target account, target region): deletes the previous copy
//! after the swap, or the temporary cluster of a failed run. With many
//! clusters, the names are those of the pair of the payload's
//! `sourceClusterId` ([`TargetSettings::for_source`]). A finished normal run
//! emits the `AchievedRPOSeconds`, `PipelineDurationSeconds` and
//! `StepDurationSeconds` metrics ([`crate::metrics`]).
//!
//! # Normal mode
//! Input: the [`RunState`] after WaitForSwappedCluster, with `swap` set.
//! Output: the same payload.
//!
//! Deletes the renamed-away previous instances, then the previous cluster
//! (`swap.oldInstanceIds`, `swap.oldClusterId`), and only when the cluster under
//! the existing name carries this run's tags and is `available`, with each
//! existing instance this run's and `available` (else the retryable
//! `ResourceNotReady` while it is settling, `Conflict` if it is not this
//! run's, `NotFound` if nothing is there). Safety rules:
//! - nothing not named in the swap record is deleted, and the record must
//!   name what this run's Swap produces (`{existing}-old-{stamp}`, instance
//!   names ending in `-old-{stamp}`), else `UnsafeOperation`;
//! - the cluster under the existing id is never deleted, nor one carrying
//!   this run's tags;
//! - a previous cluster without aurora-dr's tags (say, the hand-made cluster
//!   the first swap moved away) is kept and logged, not deleted;
//! - a previous cluster with instances the record does not name: `Conflict`,
//!   before anything is deleted.
//!
//! A first run (`oldClusterId` absent) deletes nothing. Deletion protection on
//! the previous cluster (ours) is turned off first. `FINAL_SNAPSHOT` keeps a
//! final snapshot `{old}-final`; otherwise none is taken. Idempotent: gone or
//! `deleting` resources count as done.
//!
//! # Failure mode (the CleanUpTempCluster state)
//! Input: any payload with `failure` (only `runId` is read). Unless
//! `KEEP_FAILED_TEMP_CLUSTER`, deletes the temporary instances (`TI[k]`) and
//! the temporary cluster (`T`) when they exist under those ids and carry this
//! run's tags; anything else is kept and logged (a cluster still holding
//! instances that are not deleted here is kept too). Output: the payload unchanged.

use std::sync::Arc;

use aws_sdk_rds::Client;
use aws_sdk_rds::types::{DbCluster, Tag};
use serde_json::Value;

use crate::context::StepContext;
use crate::error::{DrError, DrResult};
use crate::metrics;
use crate::payload::{RunState, SwapRecord, need};
use crate::rds;
use crate::settings::TargetSettings;
use crate::steps::swap::{is_failure, loose_run_id, old_cluster_id, same_id};

/// Deletes the previous copy recorded by Swap.
pub async fn run(rds: &Client, settings: &TargetSettings, run: RunState) -> DrResult<RunState> {
    let record = need(&run.swap, "swap")?;
    let existing = &settings.existing_cluster_id;
    if !same_id(record.existing_cluster_id.as_str(), existing.as_str()) {
        return Err(DrError::invalid_input(format!(
            "swap.existingClusterId {} is not the existing cluster {existing} of the settings",
            record.existing_cluster_id
        )));
    }
    let Some(old) = &record.old_cluster_id else {
        tracing::info!(step = "terminate", run_id = %run.run_id, "first run: no previous copy to delete");
        return Ok(run);
    };
    check_record(record, &run, settings)?;
    check_new_copy_serves(rds, record, &run).await?;

    let Some(cluster) = rds::find_cluster(rds, old.as_str()).await? else {
        tracing::info!(step = "terminate", run_id = %run.run_id, cluster = %old, "previous cluster already deleted");
        return Ok(run);
    };
    if cluster.status() == Some("deleting") {
        tracing::info!(step = "terminate", run_id = %run.run_id, cluster = %old, "previous cluster already deleting");
        return Ok(run);
    }
    if rds::is_from_run(cluster.tag_list(), &run) {
        return Err(DrError::Unsafe(format!("refusing to delete {old}: it carries this run's tags")));
    }
    if !rds::is_managed(cluster.tag_list()) {
        tracing::warn!(
            step = "terminate",
            run_id = %run.run_id,
            cluster = %old,
            "previous cluster has no aurora-dr tags (not created by aurora-dr); keeping it, delete it by hand"
        );
        return Ok(run);
    }
    let strays: Vec<&str> = cluster
        .db_cluster_members()
        .iter()
        .filter_map(|m| m.db_instance_identifier())
        .filter(|m| !record.old_instance_ids.iter().any(|o| same_id(o.as_str(), m)))
        .collect();
    if !strays.is_empty() {
        return Err(DrError::Conflict(format!(
            "previous cluster {old} has instances the swap record does not name ({}); nothing was deleted",
            strays.join(", ")
        )));
    }

    for id in &record.old_instance_ids {
        match rds::find_instance(rds, id.as_str()).await? {
            None => continue,
            Some(i) if i.db_instance_status() == Some("deleting") => continue,
            Some(i) if !i.db_cluster_identifier().is_some_and(|c| same_id(c, old.as_str())) => {
                return Err(DrError::Unsafe(format!(
                    "refusing to delete instance {id}: it belongs to cluster {}, not to the previous cluster {old}",
                    i.db_cluster_identifier().unwrap_or("none")
                )));
            }
            Some(_) => delete_db_instance(rds, id.as_str(), &run.run_id).await?,
        }
    }
    delete_db_cluster(rds, &cluster, old.as_str(), settings.final_snapshot, &run.run_id).await?;
    Ok(run)
}

/// The record must name exactly what this run's Swap produces.
fn check_record(record: &SwapRecord, run: &RunState, settings: &TargetSettings) -> DrResult<()> {
    let stamp = run.stamp();
    let expected = old_cluster_id(&settings.existing_cluster_id, &stamp)?;
    if let Some(old) = &record.old_cluster_id
        && (!same_id(old.as_str(), expected.as_str())
            || same_id(old.as_str(), settings.existing_cluster_id.as_str()))
    {
        return Err(DrError::Unsafe(format!(
            "refusing to delete {old}: this run moves the previous cluster to {expected}"
        )));
    }
    let suffix = format!("-old-{stamp}");
    if let Some(bad) =
        record.old_instance_ids.iter().find(|i| !i.as_str().to_ascii_lowercase().ends_with(&suffix))
    {
        return Err(DrError::Unsafe(format!(
            "refusing to delete instance {bad}: this run's renamed-away instances end in {suffix}"
        )));
    }
    Ok(())
}

/// The restored copy is under the existing names, this run's and available.
async fn check_new_copy_serves(rds: &Client, record: &SwapRecord, run: &RunState) -> DrResult<()> {
    let e = &record.existing_cluster_id;
    let cluster = rds::find_cluster(rds, e.as_str())
        .await?
        .ok_or_else(|| DrError::NotFound(format!("cluster {e}: nothing serves the existing name")))?;
    if !rds::is_from_run(cluster.tag_list(), run) {
        return Err(DrError::Conflict(format!(
            "cluster {e} is not this run's restored cluster (run-id tag: {}); the previous copy is kept",
            run_tag(cluster.tag_list())
        )));
    }
    rds::require_ready(&format!("cluster {e}"), cluster.status().unwrap_or("unknown"))?;
    for ei in &record.existing_instance_ids {
        let i = rds::find_instance(rds, ei.as_str())
            .await?
            .ok_or_else(|| DrError::not_ready(format!("instance {ei}"), "not yet under its name"))?;
        if !rds::is_from_run(i.tag_list(), run) {
            return Err(DrError::Conflict(format!(
                "instance {ei} is not this run's (run-id tag: {}); the previous copy is kept",
                run_tag(i.tag_list())
            )));
        }
        rds::require_ready(&format!("instance {ei}"), i.db_instance_status().unwrap_or("unknown"))?;
    }
    Ok(())
}

fn run_tag(tags: &[Tag]) -> &str {
    rds::tag_value(tags, rds::TAG_RUN_ID).unwrap_or("none")
}

async fn delete_db_instance(rds: &Client, id: &str, run_id: &crate::ids::RunId) -> DrResult<()> {
    tracing::info!(step = "terminate", run_id = %run_id, instance = %id, "deleting instance");
    match rds.delete_db_instance().db_instance_identifier(id).skip_final_snapshot(true).send().await {
        Ok(_) => Ok(()),
        Err(e) => match DrError::from_sdk(&format!("DeleteDBInstance {id}"), e) {
            DrError::NotFound(_) => Ok(()),
            other => Err(other),
        },
    }
}

async fn delete_db_cluster(
    rds: &Client,
    cluster: &DbCluster,
    id: &str,
    final_snapshot: bool,
    run_id: &crate::ids::RunId,
) -> DrResult<()> {
    if cluster.deletion_protection() == Some(true) {
        tracing::info!(step = "terminate", run_id = %run_id, cluster = %id, "turning deletion protection off");
        rds.modify_db_cluster()
            .db_cluster_identifier(id)
            .deletion_protection(false)
            .apply_immediately(true)
            .send()
            .await
            .map_err(|e| DrError::from_sdk(&format!("ModifyDBCluster {id} (deletion protection off)"), e))?;
    }
    let mut req = rds.delete_db_cluster().db_cluster_identifier(id);
    req = if final_snapshot {
        req.skip_final_snapshot(false).final_db_snapshot_identifier(format!("{id}-final"))
    } else {
        req.skip_final_snapshot(true)
    };
    tracing::info!(step = "terminate", run_id = %run_id, cluster = %id, final_snapshot, "deleting cluster");
    match req.send().await {
        Ok(_) => Ok(()),
        Err(e) => match DrError::from_sdk(&format!("DeleteDBCluster {id}"), e) {
            DrError::NotFound(_) => Ok(()),
            other => Err(other),
        },
    }
}

fn carries_run(tags: &[Tag], run_id: &str) -> bool {
    rds::is_managed(tags) && rds::tag_value(tags, rds::TAG_RUN_ID) == Some(run_id)
}

/// Failure mode: deletes this run's temporary cluster and instances. Returns
/// `payload` unchanged.
pub async fn clean_up(rds: &Client, settings: &TargetSettings, payload: Value) -> DrResult<Value> {
    let temp = &settings.temp_cluster_id;
    if settings.keep_failed_temp_cluster {
        tracing::info!(step = "terminate", mode = "cleanup", cluster = %temp, "KEEP_FAILED_TEMP_CLUSTER: keeping it");
        return Ok(payload);
    }
    let Some(run_id) = loose_run_id(&payload) else {
        tracing::error!(
            step = "terminate",
            mode = "cleanup",
            "payload has no usable runId; deleting nothing"
        );
        return Ok(payload);
    };
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
                if i.db_instance_status() != Some("deleting") {
                    delete_db_instance(rds, ti.as_str(), &run_id).await?;
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
                if c.status() != Some("deleting") {
                    delete_db_cluster(rds, &c, temp.as_str(), false, &run_id).await?;
                }
                deleted.push(format!("cluster {temp}"));
            }
        }
    }
    tracing::info!(step = "terminate", mode = "cleanup", run_id = %run_id, deleted = ?deleted, kept = ?kept, "temporary cluster cleaned up");
    Ok(payload)
}

/// Lambda / local-engine entry: normal mode, or failure mode when the
/// payload carries `failure`; the target machine's `ApplyRetention` state
/// (input `{"mode": "retention", ...}`) is [`super::retention`].
pub async fn handle(ctx: Arc<StepContext>, input: Value) -> DrResult<Value> {
    if super::retention::is_retention_input(&input) {
        return super::retention::handle(ctx, input).await;
    }
    let started = std::time::Instant::now();
    // Many clusters: the names of the payload's source cluster's pair.
    let (settings, rds) = super::target_rds(&ctx, input.get("sourceClusterId").and_then(Value::as_str))?;
    if is_failure(&input) {
        return clean_up(&rds, &settings, input).await;
    }
    let run = RunState::from_value(input)?;
    let out = self::run(&rds, &settings, run).await?;
    // The DR cluster now serves the snapshot's data: the achieved RPO.
    metrics::restored(&out, time::OffsetDateTime::now_utc()).emit();
    metrics::step_duration(metrics::TARGET, "Terminate", &out, started.elapsed()).emit();
    Ok(out.to_value())
}

#[cfg(test)]
mod tests {
    use aws_sdk_rds::types::DbInstance;
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::steps::target_support::*;

    fn record(old: Option<&str>, old_instances: &[&str]) -> SwapRecord {
        SwapRecord {
            old_cluster_id: old.map(|o| o.parse().expect("id")),
            old_instance_ids: old_instances.iter().map(|i| i.parse().expect("id")).collect(),
            existing_cluster_id: E.parse().expect("id"),
            existing_instance_ids: vec![EI.parse().expect("id")],
        }
    }

    /// The payload after WaitForSwappedCluster.
    fn swapped_run(record: SwapRecord) -> RunState {
        let mut run = target_run();
        run.restored_cluster_id = Some(T.parse().expect("id"));
        run.restored_instance_ids = vec![TI.parse().expect("id")];
        run.swap = Some(record);
        run
    }

    /// The restored copy serving under the existing names.
    fn serving(run: &RunState, status: &str) -> Vec<Rule> {
        vec![
            describe_cluster(E, Some(cluster(E, status, ours(run), &[EI]))),
            describe_instance(EI, Some(instance(EI, E, "available", ours(run)))),
        ]
    }

    fn previous(
        tags: Vec<aws_sdk_rds::types::Tag>,
        members: &[&str],
        protected: bool,
    ) -> aws_sdk_rds::types::DbCluster {
        with_deletion_protection(cluster(O, "available", tags, members), protected)
    }

    fn delete_rules(j: &Journal) -> Vec<Rule> {
        vec![
            delete_instance(j, OI, None),
            delete_cluster(j, O, None),
            unprotect_cluster(j, O),
            delete_instance(j, TI, None),
            delete_cluster(j, T, None),
            unprotect_cluster(j, T),
        ]
    }

    /// Terminate in normal mode on `run` against `world` and every delete:
    /// the result and the deleting calls made, in order.
    async fn run_terminate(
        settings: &TargetSettings,
        world: &[Rule],
        run: RunState,
    ) -> (DrResult<RunState>, Vec<String>) {
        let j = Journal::default();
        let deletes = delete_rules(&j);
        let out = super::run(&rds(&all(&[world, &deletes])), settings, run).await;
        (out, j.entries())
    }

    /// Terminate on `run` against `world` fails with the ASL error `want` and
    /// deletes nothing; the error, for more checks.
    async fn refused(world: &[Rule], run: RunState, want: &str) -> DrError {
        let (out, deleted) = run_terminate(&settings(), world, run).await;
        let err = out.expect_err(want);
        assert_eq!(err.asl_name(), want, "{err}");
        assert!(deleted.is_empty(), "{want}: nothing is deleted, got {deleted:?}");
        err
    }

    /// The failure mode on `payload` against `world` and every delete.
    async fn run_clean_up(world: &[Rule], payload: Value) -> (DrResult<Value>, Vec<String>) {
        let j = Journal::default();
        let deletes = delete_rules(&j);
        let out = clean_up(&rds(&all(&[world, &deletes])), &settings(), payload).await;
        (out, j.entries())
    }

    /// The restored copy serving, and the previous copy under the old name
    /// with its instance `old_instance`.
    fn previous_copy_world(
        run: &RunState,
        previous: DbCluster,
        old_instance: Option<DbInstance>,
    ) -> Vec<Rule> {
        let mut world = serving(run, "available");
        world.extend([describe_cluster(O, Some(previous)), describe_instance(OI, old_instance)]);
        world
    }

    /// The previous instance, available in the previous cluster.
    fn previous_instance() -> Option<DbInstance> {
        Some(instance(OI, O, "available", earlier_run()))
    }

    #[tokio::test]
    async fn deletes_the_previous_instances_then_the_previous_cluster() {
        let run = swapped_run(record(Some(O), &[OI]));
        let world = previous_copy_world(&run, previous(earlier_run(), &[OI], false), previous_instance());
        let (out, deleted) = run_terminate(&settings(), &world, run.clone()).await;
        let out = out.expect("deleted");
        assert_eq!(deleted, [format!("delete instance {OI}"), format!("delete cluster {O} (skip final)")]);
        assert_eq!(out, run);
    }

    #[tokio::test]
    async fn a_protected_previous_cluster_is_unprotected_and_gets_a_final_snapshot() {
        let run = swapped_run(record(Some(O), &[OI]));
        let mut settings = settings();
        settings.final_snapshot = true;
        let world = previous_copy_world(&run, previous(earlier_run(), &[OI], true), previous_instance());
        let (out, deleted) = run_terminate(&settings, &world, run).await;
        out.expect("deleted");
        assert_eq!(
            deleted,
            [
                format!("delete instance {OI}"),
                format!("unprotect cluster {O}"),
                format!("delete cluster {O} (final {O}-final)"),
            ]
        );
    }

    #[tokio::test]
    async fn a_first_run_deletes_nothing() {
        let run = swapped_run(record(None, &[]));
        let out = super::run(&rds(&[]), &settings(), run.clone()).await.expect("nothing");
        assert_eq!(out, run);
    }

    #[tokio::test]
    async fn nothing_is_deleted_until_the_new_copy_serves() {
        let run = swapped_run(record(Some(O), &[OI]));
        let other = cluster(E, "available", earlier_run(), &[EI]);
        let cases: [(Vec<Rule>, &str); 5] = [
            (serving(&run, "renaming"), "ResourceNotReady"),
            (serving(&run, "failed"), "ResourceFailed"),
            (vec![describe_cluster(E, Some(other))], "Conflict"),
            (vec![describe_cluster(E, None)], "NotFound"),
            (
                vec![
                    describe_cluster(E, Some(cluster(E, "available", ours(&run), &[EI]))),
                    describe_instance(EI, Some(instance(EI, E, "rebooting", ours(&run)))),
                ],
                "ResourceNotReady",
            ),
        ];
        for (world, want) in cases {
            refused(&world, run.clone(), want).await;
        }
    }

    #[tokio::test]
    async fn a_retry_after_deletion_is_done() {
        let run = swapped_run(record(Some(O), &[OI]));
        for old in [None, Some(cluster(O, "deleting", earlier_run(), &[]))] {
            let mut world = serving(&run, "available");
            world.push(describe_cluster(O, old));
            let (out, deleted) = run_terminate(&settings(), &world, run.clone()).await;
            out.expect("done");
            assert!(deleted.is_empty());
        }
    }

    #[tokio::test]
    async fn instances_already_deleting_or_gone_are_skipped() {
        let run = swapped_run(record(Some(O), &[OI]));
        for old_instance in [None, Some(instance(OI, O, "deleting", earlier_run()))] {
            let world = previous_copy_world(&run, previous(earlier_run(), &[OI], false), old_instance);
            let (out, deleted) = run_terminate(&settings(), &world, run.clone()).await;
            out.expect("deleted");
            assert_eq!(deleted, [format!("delete cluster {O} (skip final)")]);
        }
    }

    #[tokio::test]
    async fn a_delete_answering_not_found_counts_as_done() {
        let run = swapped_run(record(Some(O), &[OI]));
        let j = Journal::default();
        let world = previous_copy_world(&run, previous(earlier_run(), &[OI], false), previous_instance());
        let deletes = [
            delete_instance(&j, OI, Some(|| rds_fault(404, "DBInstanceNotFound"))),
            delete_cluster(&j, O, Some(|| rds_fault(404, "DBClusterNotFoundFault"))),
        ];
        super::run(&rds(&all(&[&world, &deletes])), &settings(), run).await.expect("done");
        assert_eq!(j.entries().len(), 2);
    }

    #[tokio::test]
    async fn only_what_the_record_names_is_deleted() {
        let run = swapped_run(record(Some(O), &[OI]));
        // The previous cluster holds an instance the record does not name.
        let mut world = serving(&run, "available");
        world.push(describe_cluster(O, Some(previous(earlier_run(), &[OI, "orders-dr-9"], false))));
        let err = refused(&world, run, "Conflict").await;
        assert!(err.to_string().contains("orders-dr-9"), "{err}");

        // A named instance that is not in the previous cluster is not deleted.
        let run = swapped_run(record(Some(O), &[OI]));
        let elsewhere = Some(instance(OI, "another-cluster", "available", earlier_run()));
        let world = previous_copy_world(&run, previous(earlier_run(), &[OI], false), elsewhere);
        refused(&world, run, "UnsafeOperation").await;
    }

    #[tokio::test]
    async fn a_record_naming_other_resources_is_refused_before_any_call() {
        for (old, instances) in [
            (E, vec![OI]),
            ("orders-prod", vec![OI]),
            ("orders-dr-old-20250101000000", vec![OI]),
            (O, vec![EI]),
        ] {
            let run = swapped_run(record(Some(old), &instances));
            let err = super::run(&rds(&[]), &settings(), run).await.expect_err(old);
            assert_eq!(err.asl_name(), "UnsafeOperation", "{old}: {err}");
        }
        let mut run = swapped_run(record(Some(O), &[OI]));
        if let Some(r) = run.swap.as_mut() {
            r.existing_cluster_id = "orders-prod".parse().expect("id");
        }
        let err = super::run(&rds(&[]), &settings(), run).await.expect_err("existing");
        assert_eq!(err.asl_name(), "InvalidInput");
        let mut no_record = swapped_run(record(None, &[]));
        no_record.swap = None;
        let err = super::run(&rds(&[]), &settings(), no_record).await.expect_err("record");
        assert!(err.to_string().contains("`swap`"), "{err}");
    }

    #[tokio::test]
    async fn a_previous_cluster_without_aurora_dr_tags_is_kept() {
        let run = swapped_run(record(Some(O), &[OI]));
        let mut world = serving(&run, "available");
        world.push(describe_cluster(O, Some(previous(Vec::new(), &[OI], false))));
        let (out, deleted) = run_terminate(&settings(), &world, run).await;
        out.expect("kept");
        assert!(deleted.is_empty());
    }

    #[tokio::test]
    async fn a_previous_cluster_with_this_runs_tags_is_never_deleted() {
        let run = swapped_run(record(Some(O), &[OI]));
        let mut world = serving(&run, "available");
        world.push(describe_cluster(O, Some(previous(ours(&run), &[OI], false))));
        refused(&world, run, "UnsafeOperation").await;
    }

    #[tokio::test]
    async fn throttling_is_throttled_and_deletes_nothing() {
        let run = swapped_run(record(Some(O), &[OI]));
        let describe = mock!(aws_sdk_rds::Client::describe_db_clusters).then_http_response(throttled);
        refused(&[describe], run, "Throttled").await;
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
        assert_eq!(clean_up(&rds(&[]), &keep, payload.clone()).await.expect("kept"), payload);
        // Without a runId nothing can be recognised as this run's.
        let anonymous = serde_json::json!({"failure": {"Error": "x", "Cause": ""}});
        assert_eq!(clean_up(&rds(&[]), &settings(), anonymous.clone()).await.expect("kept"), anonymous);
    }

    #[tokio::test]
    async fn handle_dispatches_a_failure_payload_to_the_clean_up() {
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
    }
}
