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
//! - a previous cluster without aurora-dr's tags (the hand-made cluster a
//!   first run with `ADOPT_EXISTING` moved away) is kept, not deleted: it is
//!   added to the payload's `keptClusters` with the commands that remove it,
//!   so the execution's output, the drill's report and `aurora-dr status`
//!   name it, and logged at warning level;
//! - a previous cluster with instances the record does not name: `Conflict`,
//!   before anything is deleted.
//!
//! A first run (`oldClusterId` absent) deletes nothing. Deletion protection on
//! the previous cluster (ours) is turned off first. `FINAL_SNAPSHOT` keeps a
//! final snapshot `{old}-final`; otherwise none is taken. Idempotent: gone or
//! `deleting` resources count as done.
//!
//!
//! The failure path's CleanUpTempCluster state is [`super::clean_up_temp_cluster`].

use std::sync::Arc;

use aws_sdk_rds::Client;
use aws_sdk_rds::types::{DbCluster, Tag};
use serde_json::Value;

use crate::context::StepContext;
use crate::error::{DrError, DrResult};
use crate::ids::{ClusterId, InstanceId};
use crate::metrics;
use crate::payload::{KeptCluster, RunState, SwapRecord, need};
use crate::rds;
use crate::settings::TargetSettings;
use crate::steps::input::{self, InputKind};
use crate::steps::names::{old_cluster_id, same_id};

/// The state this module serves.
pub const STATE: &str = "Terminate";

/// Deletes the previous copy recorded by Swap.
pub async fn run(rds: &Client, settings: &TargetSettings, mut run: RunState) -> DrResult<RunState> {
    input::no_failure(&run, STATE)?;
    let record = need(&run.swap, "swap")?.clone();
    let record = &record;
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
        let kept = kept_cluster(&cluster, old, record, settings);
        tracing::warn!(
            step = "terminate",
            run_id = %run.run_id,
            cluster = %old,
            remove = %kept.remove_commands.join(" && "),
            "previous cluster has no aurora-dr tags (not created by aurora-dr): kept running; remove it with the commands given"
        );
        if !run.kept_clusters.iter().any(|k| same_id(k.cluster_id.as_str(), old.as_str())) {
            run.kept_clusters.push(kept);
        }
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
            Some(_) => {
                tracing::info!(step = "terminate", run_id = %run.run_id, instance = %id, "deleting instance");
                rds::delete_instance(rds, id.as_str()).await?
            }
        }
    }
    tracing::info!(step = "terminate", run_id = %run.run_id, cluster = %old,
        final_snapshot = settings.final_snapshot, "deleting cluster");
    rds::delete_cluster(rds, &cluster, old.as_str(), settings.final_snapshot).await?;
    Ok(run)
}

/// The previous cluster, kept because aurora-dr did not make it.
fn kept_cluster(
    cluster: &DbCluster,
    old: &ClusterId,
    record: &SwapRecord,
    settings: &TargetSettings,
) -> KeptCluster {
    let mut instances: Vec<InstanceId> = cluster
        .db_cluster_members()
        .iter()
        .filter_map(|m| m.db_instance_identifier()?.parse().ok())
        .collect();
    if instances.is_empty() {
        instances = record.old_instance_ids.clone();
    }
    KeptCluster::new(
        old.clone(),
        instances,
        settings.region.clone(),
        cluster.deletion_protection().unwrap_or(false),
        format!(
            "it served under {} without aurora-dr's tags (adopted with ADOPT_EXISTING) and aurora-dr deletes only \
             what it created",
            record.existing_cluster_id
        ),
    )
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

/// Lambda / local-engine entry of the Terminate state.
pub async fn handle(ctx: Arc<StepContext>, input: Value) -> DrResult<Value> {
    let started = std::time::Instant::now();
    input::expect(&input, InputKind::Run, STATE)?;
    let run = RunState::from_value(input)?;
    // Many clusters: the names of the payload's source cluster's pair.
    let (settings, rds) = super::serving_target_rds(&ctx, &run, STATE)?;
    let out = self::run(&rds, &settings, run).await?;
    // The DR cluster now serves the snapshot's data: the achieved RPO.
    metrics::restored(&out, time::OffsetDateTime::now_utc()).emit();
    metrics::step_duration(metrics::TARGET, STATE, &out, started.elapsed()).emit();
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
            deleted_instance_ids: Vec::new(),
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
        vec![delete_instance(j, OI, None), delete_cluster(j, O, None), unprotect_cluster(j, O)]
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

    /// The restored copy serving, and the previous copy under the old name
    /// with its instance `old_instance`.
    fn previous_copy_world(
        run: &RunState,
        previous: aws_sdk_rds::types::DbCluster,
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
        world.push(describe_cluster(O, Some(previous(Vec::new(), &[OI], true))));
        let (out, deleted) = run_terminate(&settings(), &world, run.clone()).await;
        let out = out.expect("kept");
        assert!(deleted.is_empty());
        // Named in the output, with the commands that remove it.
        let [kept] = out.kept_clusters.as_slice() else {
            panic!("one kept cluster: {:?}", out.kept_clusters)
        };
        assert_eq!(kept.cluster_id.as_str(), O);
        assert_eq!(kept.instance_ids.iter().map(InstanceId::as_str).collect::<Vec<_>>(), [OI]);
        assert_eq!(
            kept.remove_commands,
            [
                format!(
                    "aws rds modify-db-cluster --region us-west-1 --db-cluster-identifier {O} \
                     --no-deletion-protection --apply-immediately"
                ),
                format!("aws rds delete-db-instance --region us-west-1 --db-instance-identifier {OI}"),
                format!(
                    "aws rds delete-db-cluster --region us-west-1 --db-cluster-identifier {O} \
                     --final-db-snapshot-identifier {O}-final"
                ),
            ]
        );
        assert!(kept.reason.contains("without aurora-dr's tags"), "{}", kept.reason);
        let mut want = run;
        want.kept_clusters = out.kept_clusters.clone();
        assert_eq!(out, want, "only keptClusters is added");
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

    #[tokio::test]
    async fn handle_refuses_a_failure_payload_before_any_call() {
        // CleanUpTempCluster, not Terminate, serves the failure path.
        let mut failed = target_run().to_value();
        failed["failure"] = serde_json::json!({"Error": "X", "Cause": ""});
        let recorder = Recorder::default();
        let err = handle(recorder.target_elsewhere(settings()), failed).await.expect_err("failure path");
        assert_eq!(err.asl_name(), "InvalidInput", "{err}");
        assert!(err.to_string().contains("Terminate takes the run payload"), "{err}");
        assert!(recorder.sent().is_empty());
    }
}
