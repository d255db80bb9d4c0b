//! Swap's normal-mode tests; the fixtures are shared with RollBackSwap's.

use aws_sdk_rds::types::PendingModifiedValues;
use aws_smithy_mocks::Rule;
use serde_json::Value;

use super::*;
use crate::ids::InstanceId;
use crate::steps::target_support::*;

/// The payload Swap receives: restore and instances done.
pub(crate) fn swap_run() -> RunState {
    let mut run = target_run();
    run.restored_cluster_id = Some(T.parse().expect("id"));
    run.restored_instance_ids = vec![TI.parse().expect("id")];
    run
}

pub(crate) fn failed_run() -> Value {
    let mut v = swap_run().to_value();
    v["failure"] = serde_json::json!({"Error": "SwapFailed", "Cause": "x"});
    v["failedState"] = "Swap".into();
    v
}

/// The temporary cluster and instance, restored by `run` and available.
fn temp_ready(run: &RunState) -> Vec<Rule> {
    vec![
        describe_cluster(T, Some(cluster(T, "available", ours(run), &[TI]))),
        describe_instance(TI, Some(instance(TI, T, "available", ours(run)))),
    ]
}

/// The previous copy under the existing name.
pub(crate) fn previous() -> aws_sdk_rds::types::DbCluster {
    cluster(E, "available", earlier_run(), &[EI])
}

fn previous_instance() -> aws_sdk_rds::types::DbInstance {
    instance(EI, E, "available", earlier_run())
}

/// The previous copy after phase 1, under the old name.
pub(crate) fn moved_away() -> aws_sdk_rds::types::DbCluster {
    cluster(O, "available", earlier_run(), &[OI])
}

pub(crate) fn line(kind: &str, from: &str, to: &str) -> String {
    format!("rename {kind} {from} -> {to}")
}

/// Every rename a full swap and its rollback can make; `fail` names the
/// one that answers with `fault`.
pub(crate) fn renames(j: &Journal, fail: Option<(&str, Fault)>) -> Vec<Rule> {
    let f = |from: &str| fail.filter(|(name, _)| *name == from).map(|(_, fault)| fault);
    vec![
        rename_cluster(j, E, O, f(E)),
        rename_instance(j, EI, OI, f(EI)),
        rename_cluster(j, T, E, f(T)),
        rename_instance(j, TI, EI, f(TI)),
        rename_cluster(j, O, E, f(O)),
        rename_instance(j, OI, EI, f(OI)),
        rename_cluster(j, E, T, None),
        rename_instance(j, EI, TI, None),
    ]
}

/// Swap in normal mode on [`swap_run`] against `world` and every rename
/// ([`renames`] with `fail`): the result and the renames made, in order.
async fn run_swap(world: &[Rule], fail: Option<(&str, Fault)>) -> (DrResult<RunState>, Vec<String>) {
    let j = Journal::default();
    let renames = renames(&j, fail);
    let out = super::run(&rds(&all(&[world, &renames])), &settings(), swap_run()).await;
    (out, j.entries())
}

/// Swap against `world` fails with the ASL error `want` and renames
/// nothing; the error, for more checks.
async fn refused(world: &[Rule], want: &str) -> DrError {
    let (out, renamed) = run_swap(world, None).await;
    let err = out.expect_err(want);
    assert_eq!(err.asl_name(), want, "{err}");
    assert!(renamed.is_empty(), "{want}: nothing is renamed, got {renamed:?}");
    err
}

/// RDS as a full swap finds it: the previous copy under E; after phase 1,
/// E and EI are free.
fn full_swap_world(run: &RunState) -> Vec<Rule> {
    let mut rules = temp_ready(run);
    rules.extend([
        describe_cluster_seq(E, vec![Some(previous()), None]),
        describe_cluster(O, None),
        describe_instance_seq(EI, vec![Some(previous_instance()), None]),
        describe_instance(OI, None),
    ]);
    rules
}

/// `world` and the temporary copy, ready (see [`temp_ready`]).
fn with_temp_ready(run: &RunState, world: impl IntoIterator<Item = Rule>) -> Vec<Rule> {
    let mut rules = temp_ready(run);
    rules.extend(world);
    rules
}

#[tokio::test]
async fn full_swap_renames_the_previous_copy_away_then_the_restored_one_in() {
    let (out, renamed) = run_swap(&full_swap_world(&swap_run()), None).await;
    let out = out.expect("swapped");
    assert_eq!(
        renamed,
        [line("cluster", E, O), line("instance", EI, OI), line("cluster", T, E), line("instance", TI, EI)]
    );
    let record = out.swap.expect("record");
    assert_eq!(record.old_cluster_id.as_ref().map(ClusterId::as_str), Some(O));
    assert_eq!(record.old_instance_ids.iter().map(InstanceId::as_str).collect::<Vec<_>>(), [OI]);
    assert_eq!(record.existing_cluster_id.as_str(), E);
    assert_eq!(record.existing_instance_ids.iter().map(InstanceId::as_str).collect::<Vec<_>>(), [EI]);
}

#[tokio::test]
async fn a_hand_made_previous_cluster_is_renamed_away_only_when_adopting() {
    let hand_made_world = || {
        let mut rules = temp_ready(&swap_run());
        rules.extend([
            describe_cluster_seq(E, vec![Some(cluster(E, "available", Vec::new(), &[EI])), None]),
            describe_cluster(O, None),
            describe_instance_seq(EI, vec![Some(instance(EI, E, "available", Vec::new())), None]),
            describe_instance(OI, None),
        ]);
        rules
    };
    let err = refused(&hand_made_world(), "Conflict").await;
    assert!(err.to_string().contains("ADOPT_EXISTING"), "{err}");

    let mut adopting = settings();
    adopting.adopt_existing = true;
    let j = Journal::default();
    let renames = renames(&j, None);
    let out = super::run(&rds(&all(&[&hand_made_world(), &renames])), &adopting, swap_run()).await;
    let record = out.expect("swapped").swap.expect("record");
    assert_eq!(record.old_cluster_id.as_ref().map(ClusterId::as_str), Some(O));
    assert_eq!(
        j.entries(),
        [line("cluster", E, O), line("instance", EI, OI), line("cluster", T, E), line("instance", TI, EI)]
    );
}

#[tokio::test]
async fn first_run_renames_only_the_restored_cluster() {
    let world = with_temp_ready(
        &swap_run(),
        [describe_cluster(E, None), describe_cluster(O, None), describe_instance(EI, None)],
    );
    let (out, renamed) = run_swap(&world, None).await;
    let out = out.expect("swapped");
    assert_eq!(renamed, [line("cluster", T, E), line("instance", TI, EI)]);
    let record = out.swap.expect("record");
    assert_eq!(record.old_cluster_id, None);
    assert!(record.old_instance_ids.is_empty());
}

#[tokio::test]
async fn first_run_with_the_instance_name_taken_is_a_conflict_and_renames_nothing() {
    let world = with_temp_ready(
        &swap_run(),
        [
            describe_cluster(E, None),
            describe_cluster(O, None),
            describe_instance(EI, Some(instance(EI, "someone-elses", "available", Vec::new()))),
        ],
    );
    let err = refused(&world, "Conflict").await;
    assert!(err.to_string().contains(EI), "{err}");
}

#[tokio::test]
async fn a_failed_cluster_rename_in_phase_two_rolls_phase_one_back_in_reverse() {
    let world = full_swap_world(&swap_run());
    let (out, renamed) = run_swap(&world, Some((T, || rds_fault(400, "DBClusterAlreadyExistsFault")))).await;
    let err = out.expect_err("failed");
    assert_eq!(
        renamed,
        [
            line("cluster", E, O),
            line("instance", EI, OI),
            line("cluster", T, E),
            line("instance", OI, EI),
            line("cluster", O, E),
        ]
    );
    match err {
        DrError::SwapFailed { rolled_back, detail } => {
            assert!(rolled_back, "{detail}");
            assert!(detail.contains("restored cluster orders-dr-next -> orders-dr failed"), "{detail}");
        }
        other => panic!("want SwapFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn a_throttled_rename_in_phase_two_is_retryable_and_rolls_nothing_back() {
    let world = full_swap_world(&swap_run());
    let (out, renamed) = run_swap(&world, Some((T, || rds_fault(400, "Throttling")))).await;
    let err = out.expect_err("throttled");
    assert_eq!(err.asl_name(), "Throttled", "{err}");
    // Phase 1 stays done for the retry to continue; nothing is renamed back.
    assert_eq!(renamed, [line("cluster", E, O), line("instance", EI, OI), line("cluster", T, E)]);
}

#[tokio::test]
async fn a_failed_instance_rename_in_phase_two_undoes_phase_two_then_phase_one() {
    let world = full_swap_world(&swap_run());
    let (out, renamed) = run_swap(&world, Some((TI, || rds_fault(400, "InvalidDBInstanceState")))).await;
    let err = out.expect_err("failed");
    assert_eq!(
        renamed,
        [
            line("cluster", E, O),
            line("instance", EI, OI),
            line("cluster", T, E),
            line("instance", TI, EI),
            line("cluster", E, T),
            line("instance", OI, EI),
            line("cluster", O, E),
        ]
    );
    assert_eq!(
        err,
        match &err {
            DrError::SwapFailed { detail, .. } =>
                DrError::SwapFailed { detail: detail.clone(), rolled_back: true },
            other => panic!("want SwapFailed, got {other:?}"),
        }
    );
    assert_eq!(err.asl_name(), "SwapFailed");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_failed_undo_says_where_each_name_is() {
    let run = swap_run();
    let j = Journal::default();
    let world = full_swap_world(&run);
    // Phase 2 fails, and putting the previous cluster back fails too.
    let (fail_ti, fail_o) = (
        rename_instance(&j, TI, EI, Some(|| rds_fault(400, "InvalidDBInstanceState"))),
        rename_cluster(&j, O, E, Some(|| rds_fault(400, "DBClusterAlreadyExistsFault"))),
    );
    let rest = [
        rename_cluster(&j, E, O, None),
        rename_instance(&j, EI, OI, None),
        rename_cluster(&j, T, E, None),
        rename_cluster(&j, E, T, None),
        rename_instance(&j, OI, EI, None),
    ];
    let failing = [fail_ti, fail_o];
    let err = super::run(&rds(&all(&[&world, &failing, &rest])), &settings(), run).await.expect_err("failed");
    match err {
        DrError::SwapFailed { rolled_back, detail } => {
            assert!(!rolled_back);
            assert!(
                detail.contains("previous cluster orders-dr is still at orders-dr-old-20261125160005"),
                "{detail}"
            );
            assert!(detail.contains("restored cluster back at orders-dr-next"), "{detail}");
        }
        other => panic!("want SwapFailed, got {other:?}"),
    }
    assert_eq!(j.entries().last(), Some(&line("cluster", O, E)));
}

#[tokio::test]
async fn a_busy_cluster_is_reported_before_any_change() {
    let world = with_temp_ready(
        &swap_run(),
        [describe_cluster(E, Some(cluster(E, "modifying", earlier_run(), &[EI]))), describe_cluster(O, None)],
    );
    refused(&world, "ResourceNotReady").await;
}

#[tokio::test]
async fn a_refused_first_rename_is_retryable_and_rolls_nothing_back() {
    let world = full_swap_world(&swap_run());
    let (out, renamed) = run_swap(&world, Some((E, || rds_fault(400, "InvalidDBClusterStateFault")))).await;
    let err = out.expect_err("busy");
    assert_eq!(err.asl_name(), "ResourceNotReady");
    assert!(err.is_retryable());
    assert_eq!(renamed, [line("cluster", E, O)]);
}

#[tokio::test]
async fn a_phase_one_rename_still_in_flight_ends_in_not_ready_without_rollback() {
    let world = with_temp_ready(
        &swap_run(),
        [
            // RDS still shows the previous cluster under E after the rename call.
            describe_cluster_seq(
                E,
                vec![Some(previous()), Some(cluster(E, "renaming", earlier_run(), &[EI]))],
            ),
            describe_cluster(O, None),
            describe_instance(EI, Some(previous_instance())),
            describe_instance(OI, None),
        ],
    );
    let (out, renamed) = run_swap(&world, None).await;
    let err = out.expect_err("in flight");
    assert_eq!(err.asl_name(), "ResourceNotReady", "{err}");
    assert_eq!(renamed, [line("cluster", E, O), line("instance", EI, OI)]);
}

#[tokio::test]
async fn a_retry_after_phase_one_continues_with_phase_two() {
    let world = with_temp_ready(
        &swap_run(),
        [describe_cluster(E, None), describe_cluster(O, Some(moved_away())), describe_instance(EI, None)],
    );
    let (out, renamed) = run_swap(&world, None).await;
    let out = out.expect("continued");
    assert_eq!(renamed, [line("cluster", T, E), line("instance", TI, EI)]);
    let record = out.swap.expect("record");
    assert_eq!(record.old_cluster_id.as_ref().map(ClusterId::as_str), Some(O));
    assert_eq!(record.old_instance_ids.iter().map(InstanceId::as_str).collect::<Vec<_>>(), [OI]);
}

#[tokio::test]
async fn before_phase_two_the_existing_instance_name_must_be_free() {
    let pending = PendingModifiedValues::builder().db_instance_identifier(OI).build();
    let in_flight = aws_sdk_rds::types::DbInstance::builder()
        .db_instance_identifier(EI)
        .db_cluster_identifier(E)
        .db_instance_status("renaming")
        .pending_modified_values(pending)
        .build();
    let foreign = instance(EI, "someone-elses", "available", Vec::new());
    for (holder, want) in [(in_flight, "ResourceNotReady"), (foreign, "Conflict")] {
        let world = with_temp_ready(
            &swap_run(),
            [
                describe_cluster(E, None),
                describe_cluster(O, Some(moved_away())),
                describe_instance(EI, Some(holder)),
            ],
        );
        // Phase 2 does not start.
        refused(&world, want).await;
    }
}

#[tokio::test]
async fn a_retry_finishes_an_instance_rename_left_over() {
    let run = swap_run();
    let world = [
        describe_cluster(E, Some(cluster(E, "available", ours(&run), &[TI]))),
        describe_cluster(O, Some(moved_away())),
        describe_instance(EI, None),
        describe_instance(TI, Some(instance(TI, E, "available", ours(&run)))),
    ];
    let (out, renamed) = run_swap(&world, None).await;
    out.expect("finished");
    assert_eq!(renamed, [line("instance", TI, EI)]);
}

#[tokio::test]
async fn a_retry_after_a_complete_swap_changes_nothing() {
    let run = swap_run();
    let world = [
        describe_cluster(E, Some(cluster(E, "renaming", ours(&run), &[EI]))),
        describe_cluster(O, Some(moved_away())),
        describe_instance(EI, Some(instance(EI, E, "available", ours(&run)))),
    ];
    let (out, renamed) = run_swap(&world, None).await;
    let out = out.expect("complete");
    assert!(renamed.is_empty(), "this run's cluster under E is never renamed away");
    let record = out.swap.expect("record");
    assert_eq!(record.old_cluster_id.as_ref().map(ClusterId::as_str), Some(O));
    assert_eq!(record.old_instance_ids.iter().map(InstanceId::as_str).collect::<Vec<_>>(), [OI]);
}

#[tokio::test]
async fn an_instance_rename_under_way_counts_as_done() {
    let run = swap_run();
    let pending = PendingModifiedValues::builder().db_instance_identifier(EI).build();
    let renaming = aws_sdk_rds::types::DbInstance::builder()
        .db_instance_identifier(TI)
        .db_cluster_identifier(E)
        .db_instance_status("renaming")
        .set_tag_list(Some(ours(&run)))
        .pending_modified_values(pending)
        .build();
    let world = [
        describe_cluster(E, Some(cluster(E, "available", ours(&run), &[TI]))),
        describe_cluster(O, None),
        describe_instance(EI, None),
        describe_instance(TI, Some(renaming)),
    ];
    let (out, renamed) = run_swap(&world, None).await;
    out.expect("done");
    assert!(renamed.is_empty());
}

#[tokio::test]
async fn both_names_taken_by_other_clusters_is_a_conflict() {
    let world = [
        describe_cluster(E, Some(previous())),
        describe_cluster(O, Some(cluster(O, "available", Vec::new(), &[]))),
    ];
    let err = refused(&world, "Conflict").await;
    assert!(err.to_string().contains(O), "{err}");
}

#[tokio::test]
async fn the_temp_cluster_must_be_this_runs_and_available() {
    let run = swap_run();
    let cases: [(Option<aws_sdk_rds::types::DbCluster>, &str); 4] = [
        (None, "NotFound"),
        (Some(cluster(T, "available", earlier_run(), &[TI])), "Conflict"),
        (Some(cluster(T, "backing-up", ours(&run), &[TI])), "ResourceNotReady"),
        (Some(cluster(T, "failed", ours(&run), &[TI])), "ResourceFailed"),
    ];
    for (temp, want) in cases {
        let world = [
            describe_cluster(E, Some(previous())),
            describe_cluster(O, None),
            describe_cluster(T, temp),
            describe_instance(TI, Some(instance(TI, T, "available", ours(&run)))),
        ];
        refused(&world, want).await;
    }
}

#[tokio::test]
async fn throttling_is_throttled_and_renames_nothing() {
    let describe =
        aws_smithy_mocks::mock!(aws_sdk_rds::Client::describe_db_clusters).then_http_response(throttled);
    refused(&[describe], "Throttled").await;
}

#[tokio::test]
async fn a_payload_without_the_restore_results_is_refused_before_any_call() {
    let mut no_cluster = swap_run();
    no_cluster.restored_cluster_id = None;
    let err = super::run(&rds(&[]), &settings(), no_cluster).await.expect_err("missing");
    assert_eq!(err.asl_name(), "InvalidInput");
    assert!(err.to_string().contains("restoredClusterId"), "{err}");
    let mut other_instances = swap_run();
    other_instances.restored_instance_ids = vec!["someone-else-1".parse().expect("id")];
    let err = super::run(&rds(&[]), &settings(), other_instances).await.expect_err("mismatch");
    assert_eq!(err.asl_name(), "InvalidInput");
    assert!(err.to_string().contains("restoredInstanceIds"), "{err}");
}

#[tokio::test]
async fn handle_refuses_a_failure_payload_before_any_call() {
    // RollBackSwap, not Swap, serves the failure path.
    let recorder = Recorder::default();
    let err = handle(recorder.target_elsewhere(settings()), failed_run()).await.expect_err("failure path");
    assert_eq!(err.asl_name(), "InvalidInput", "{err}");
    assert!(err.to_string().contains("Swap takes the run payload"), "{err}");
    assert!(recorder.sent().is_empty());
}

/// RDS as a full swap finds it when the previous instance is `status`: the
/// instance is gone from EI once deleted.
fn broken_previous_world(run: &RunState, status: &str) -> Vec<Rule> {
    with_temp_ready(
        run,
        [
            describe_cluster_seq(E, vec![Some(previous()), None]),
            describe_cluster(O, None),
            describe_instance_seq(EI, vec![Some(instance(EI, E, status, earlier_run())), None]),
            describe_instance(OI, None),
        ],
    )
}

/// Swap against `world` with every rename and the deletion of EI
/// (failing with `delete_fault`): the result and the changes, in order.
async fn run_swap_deleting(world: &[Rule], delete_fault: Option<Fault>) -> (DrResult<RunState>, Vec<String>) {
    let j = Journal::default();
    let mut changes = renames(&j, None);
    changes.push(delete_instance(&j, EI, delete_fault));
    let out = super::run(&rds(&all(&[world, &changes])), &settings(), swap_run()).await;
    (out, j.entries())
}

#[tokio::test]
async fn a_previous_instance_beyond_repair_is_deleted_not_kept() {
    for status in ["failed", "inaccessible-encryption-credentials", "incompatible-network"] {
        let (out, changes) = run_swap_deleting(&broken_previous_world(&swap_run(), status), None).await;
        let record = out.unwrap_or_else(|e| panic!("{status}: swapped, got {e}")).swap.expect("record");
        assert_eq!(
            changes,
            [
                line("cluster", E, O),
                format!("delete instance {EI}"),
                line("cluster", T, E),
                line("instance", TI, EI)
            ],
            "{status}"
        );
        assert_eq!(record.old_cluster_id.as_ref().map(ClusterId::as_str), Some(O));
        assert!(record.old_instance_ids.is_empty(), "{status}: {record:?}");
        assert_eq!(record.deleted_instance_ids.iter().map(InstanceId::as_str).collect::<Vec<_>>(), [EI]);
        let json = serde_json::to_value(&record).expect("json");
        assert_eq!(json["deletedInstanceIds"], serde_json::json!([EI]), "{status}");
    }
}

#[tokio::test]
async fn a_previous_instance_that_can_recover_still_stops_the_swap() {
    let world = broken_previous_world(&swap_run(), "inaccessible-encryption-credentials-recoverable");
    let (out, changes) = run_swap_deleting(&world, None).await;
    assert_eq!(out.expect_err("refused").asl_name(), "ResourceFailed");
    assert!(changes.is_empty(), "{changes:?}");
}

/// An adopted (hand-made, untagged) cluster's failed instance is not
/// aurora-dr's to delete: the swap refuses before any change, naming it.
#[tokio::test]
async fn an_adopted_clusters_failed_instance_is_never_deleted() {
    let world = with_temp_ready(
        &swap_run(),
        [
            describe_cluster(E, Some(cluster(E, "available", Vec::new(), &[EI]))),
            describe_cluster(O, None),
            describe_instance(EI, Some(instance(EI, E, "failed", Vec::new()))),
            describe_instance(OI, None),
        ],
    );
    let mut adopting = settings();
    adopting.adopt_existing = true;
    let j = Journal::default();
    let mut changes = renames(&j, None);
    changes.push(delete_instance(&j, EI, None));
    let err = super::run(&rds(&all(&[&world, &changes])), &adopting, swap_run()).await.expect_err("refused");
    assert_eq!(err.asl_name(), "ResourceFailed", "{err}");
    assert!(err.to_string().contains(EI), "{err}");
    assert!(j.entries().is_empty(), "{:?}", j.entries());
}

#[tokio::test]
async fn a_refused_deletion_puts_the_previous_cluster_back() {
    let world = broken_previous_world(&swap_run(), "failed");
    let (out, changes) = run_swap_deleting(&world, Some(|| rds_fault(400, "InvalidDBInstanceState"))).await;
    match out.expect_err("failed") {
        DrError::SwapFailed { rolled_back, detail } => {
            assert!(rolled_back, "{detail}");
            assert!(detail.contains(&format!("deletion of previous instance {EI} (failed)")), "{detail}");
        }
        other => panic!("want SwapFailed, got {other:?}"),
    }
    assert_eq!(changes, [line("cluster", E, O), format!("delete instance {EI}"), line("cluster", O, E)]);
}

/// A retry after the deletion: the previous cluster is under O with the
/// deleted instance still `deleting` under EI; phase 2 waits for the name.
#[tokio::test]
async fn a_retry_while_the_broken_instance_is_deleting_waits_then_continues() {
    let run = swap_run();
    let world = with_temp_ready(
        &run,
        [
            describe_cluster(E, None),
            describe_cluster(O, Some(cluster(O, "available", earlier_run(), &[EI]))),
            describe_instance(EI, Some(instance(EI, O, "deleting", earlier_run()))),
            describe_instance(OI, None),
        ],
    );
    let (out, changes) = run_swap_deleting(&world, None).await;
    assert_eq!(out.expect_err("waits").asl_name(), "ResourceNotReady");
    assert!(changes.is_empty(), "nothing is renamed or deleted again: {changes:?}");

    let world = with_temp_ready(
        &run,
        [
            describe_cluster(E, None),
            describe_cluster(O, Some(cluster(O, "available", earlier_run(), &[EI]))),
            describe_instance(EI, None),
            describe_instance(OI, None),
        ],
    );
    let (out, changes) = run_swap_deleting(&world, None).await;
    let record = out.expect("swapped").swap.expect("record");
    assert_eq!(changes, [line("cluster", T, E), line("instance", TI, EI)]);
    assert_eq!(record.deleted_instance_ids.iter().map(InstanceId::as_str).collect::<Vec<_>>(), [EI]);
}
