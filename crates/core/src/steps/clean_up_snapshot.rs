//! CleanUpSnapshot and CleanUpCopy (source account, both regions): the
//! source machine's failure path removes what a failed run made, and
//! nothing else. One handler serves both states: before the copy exists
//! (CleanUpSnapshot, after CreateSnapshot failed) the copy look-up simply
//! finds nothing.
//!
//! Input: any payload with `failure` (read loosely: `runId` and `createdAt`
//! name the run's snapshot, `{prefix}-{cluster}-{stamp}`, and only resources
//! with this run's tags are touched). Output: the payload unchanged.
//! - The copy in the target region is deleted unless it is already shared
//!   with the target account (the target side may be restoring from it:
//!   kept and logged).
//! - The source snapshot is deleted only when it ended `failed` (an
//!   available one is a recovery point; one still `creating` cannot be
//!   deleted and is named by the failure notification).
//!
//! Errors: the AWS classifications (`Throttled`, `ServiceUnavailable` are
//! retried by the state machine); a snapshot already gone counts as deleted.

use std::sync::Arc;

use aws_sdk_rds::Client;
use serde_json::Value;

use crate::context::StepContext;
use crate::error::DrResult;
use crate::rds;
use crate::settings::SourceSettings;
use crate::steps::input::{self, InputKind};

/// The states this module serves.
pub const STATES: [&str; 2] = ["CleanUpSnapshot", "CleanUpCopy"];

const STEP: &str = "clean_up_snapshot";

/// Deletes this run's unshared copy
/// and its failed source snapshot, nothing else. `rds` calls the source
/// region, `target_rds` the target region. Returns `payload` unchanged.
///
/// The payload is read loosely (`runId`, `createdAt`: they name the run's
/// snapshot, `{prefix}-{cluster}-{stamp}`). Only resources with this run's
/// tags are deleted: the copy in the target region unless it is already
/// shared with the target account (the target side may be restoring from
/// it: kept and logged); the source snapshot only when it ended `failed`
/// (an available one is a recovery point; one still `creating` cannot be
/// deleted and is reported by the failure notification).
pub async fn run(
    rds: &Client,
    target_rds: &Client,
    settings: &SourceSettings,
    payload: Value,
) -> DrResult<Value> {
    let Some(run) = input::loose_run(&payload) else {
        tracing::error!(step = STEP, "payload has no usable runId/createdAt; deleting nothing");
        return Ok(payload);
    };
    let id = crate::steps::create_snapshot::snapshot_id(settings, &run)?;
    let mut deleted = Vec::new();
    let mut kept = Vec::new();

    if let Some(copy) = rds::find_cluster_snapshot(target_rds, id.as_str(), false).await? {
        let status = copy.status().unwrap_or("unknown").to_owned();
        let targets = settings.accounts_in(&settings.target_region);
        let shared_with_target = |shared: &[String]| {
            shared.iter().find(|a| targets.iter().any(|t| t.as_str() == a.as_str())).cloned()
        };
        if !rds::is_from_run(copy.tag_list(), &run) {
            kept.push(format!("snapshot {id} in {} (not this run's)", settings.target_region));
        } else if status == "available"
            && let Some(target) = shared_with_target(&rds::shared_with(target_rds, id.as_str()).await?)
        {
            kept.push(format!("copy {id} (shared with {target}: it may be in use)"));
        } else {
            tracing::info!(step = STEP, run_id = %run.run_id, snapshot = %id, region = %settings.target_region,
                "deleting this run's unshared copy");
            rds::delete_cluster_snapshot(target_rds, id.as_str()).await?;
            deleted.push(format!("copy {id} in {} ({status})", settings.target_region));
        }
    }
    if let Some(source) = rds::find_cluster_snapshot(rds, id.as_str(), false).await? {
        let status = source.status().unwrap_or("unknown").to_owned();
        if rds::is_from_run(source.tag_list(), &run) && rds::classify_status(&status) == rds::Progress::Failed
        {
            tracing::info!(step = STEP, run_id = %run.run_id, snapshot = %id, region = %settings.region,
                "deleting this run's failed source snapshot");
            rds::delete_cluster_snapshot(rds, id.as_str()).await?;
            deleted.push(format!("source snapshot {id} ({status})"));
        } else {
            kept.push(format!("source snapshot {id} ({status})"));
        }
    }
    tracing::warn!(step = STEP, run_id = %run.run_id, deleted = ?deleted, kept = ?kept,
        "failed run cleaned up");
    Ok(payload)
}

/// Lambda / local-engine entry of the CleanUpSnapshot and CleanUpCopy states:
/// source settings, clients in the source and the target region.
pub async fn handle(ctx: Arc<StepContext>, input: Value) -> DrResult<Value> {
    input::expect(&input, InputKind::FailurePath, "CleanUpSnapshot/CleanUpCopy")?;
    // Many clusters: the payload's cluster, if it is a configured one.
    let cluster = input.get("sourceClusterId").and_then(Value::as_str).and_then(|c| c.parse().ok());
    let settings = ctx.source()?.for_cluster(cluster.as_ref())?;
    // Many target regions: the failed region branch's copy; a failure before
    // any copy (no targetRegion) looks in the first region, where there is
    // none to delete either.
    let region = input.get("targetRegion").and_then(Value::as_str).and_then(|r| r.parse().ok());
    let settings = &match region {
        Some(region) => settings.for_region(&region)?,
        None => settings,
    };
    let target_rds = ctx.aws.in_region(&settings.target_region).rds();
    run(&ctx.aws.rds(), &target_rds, settings, input).await
}

#[cfg(test)]
mod tests {
    use aws_sdk_rds::Client;
    use aws_sdk_rds::operation::delete_db_cluster_snapshot::DeleteDbClusterSnapshotOutput;
    use aws_sdk_rds::operation::describe_db_cluster_snapshot_attributes::DescribeDbClusterSnapshotAttributesOutput;
    use aws_sdk_rds::types::{DbClusterSnapshotAttribute, DbClusterSnapshotAttributesResult};
    use aws_smithy_mocks::{Rule, mock};
    use serde_json::json;

    use super::*;
    use crate::context::SideSettings;
    use crate::settings::tests::source_settings;
    use crate::steps::test_support::{self as ts, SNAPSHOT_ID};

    /// A failure-path payload of run `run-1` (the fixtures' run).
    fn failed() -> Value {
        let mut v = ts::started_run().to_value();
        v["failedState"] = "WaitForTargetSnapshot".into();
        v["failure"] = json!({"Error": "ResourceFailed", "Cause": "copy failed"});
        v
    }

    fn deletes() -> Rule {
        mock!(Client::delete_db_cluster_snapshot)
            .match_requests(|r| r.db_cluster_snapshot_identifier() == Some(SNAPSHOT_ID))
            .then_output(|| DeleteDbClusterSnapshotOutput::builder().build())
    }

    fn shared_with(account: &'static str) -> Rule {
        mock!(Client::describe_db_cluster_snapshot_attributes).then_output(move || {
            let restore =
                DbClusterSnapshotAttribute::builder().attribute_name("restore").attribute_values(account);
            DescribeDbClusterSnapshotAttributesOutput::builder()
                .db_cluster_snapshot_attributes_result(
                    DbClusterSnapshotAttributesResult::builder()
                        .db_cluster_snapshot_attributes(restore.build())
                        .build(),
                )
                .build()
        })
    }

    fn ours(mut snap: aws_sdk_rds::types::DbClusterSnapshot) -> aws_sdk_rds::types::DbClusterSnapshot {
        snap.tag_list = Some(ts::managed_tags("run-1"));
        snap
    }

    #[tokio::test]
    async fn deletes_this_runs_unshared_copy_and_failed_source_snapshot() {
        let (copy, source_delete, copy_delete) =
            (ts::snapshot_listed(ts::copy("copying")), deletes(), deletes());
        let source = ts::snapshot_listed(ours(ts::snapshot(SNAPSHOT_ID, "orders", "failed")));
        let out = run(
            &ts::rds(&[&source, &source_delete]),
            &ts::rds(&[&copy, &copy_delete]),
            &source_settings(),
            failed(),
        )
        .await
        .expect("cleaned up");
        assert_eq!(out, failed(), "the payload passes through");
        assert_eq!((copy_delete.num_calls(), source_delete.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn keeps_a_shared_copy_an_available_source_snapshot_and_what_is_not_this_runs() {
        let cases = [
            // Shared with the target account: the target side may be restoring from it.
            (
                ours(ts::copy("available")),
                shared_with("222222222222"),
                ours(ts::snapshot(SNAPSHOT_ID, "orders", "available")),
            ),
            // Another run's copy and snapshot under this run's name.
            (
                {
                    let mut c = ts::copy("copying");
                    c.tag_list = Some(ts::managed_tags("run-0"));
                    c
                },
                shared_with("222222222222"),
                {
                    let mut s = ts::snapshot(SNAPSHOT_ID, "orders", "failed");
                    s.tag_list = Some(ts::managed_tags("run-0"));
                    s
                },
            ),
        ];
        for (copy, attributes, snapshot) in cases {
            let (copy, source, deleted_copy, deleted_source) =
                (ts::snapshot_listed(copy), ts::snapshot_listed(snapshot), deletes(), deletes());
            let target_rds = ts::rds(&[&copy, &attributes, &deleted_copy]);
            run(&ts::rds(&[&source, &deleted_source]), &target_rds, &source_settings(), failed())
                .await
                .expect("kept");
            assert_eq!(deleted_copy.num_calls() + deleted_source.num_calls(), 0);
        }
    }

    #[tokio::test]
    async fn a_payload_without_run_id_or_start_time_deletes_nothing() {
        let unusable = json!({"failure": {"Error": "X", "Cause": ""}});
        let out =
            run(&ts::rds(&[]), &ts::rds(&[]), &source_settings(), unusable.clone()).await.expect("nothing");
        assert_eq!(out, unusable);
    }

    #[tokio::test]
    async fn handle_looks_in_both_regions_under_the_payloads_cluster() {
        let mut fleet = source_settings();
        fleet.cluster_ids = vec!["orders".parse().expect("id"), "billing".parse().expect("id")];
        let recorder = ts::Recorder::replying([
            ts::rds_error_reply(404, "DBClusterSnapshotNotFoundFault"),
            ts::rds_error_reply(404, "DBClusterSnapshotNotFoundFault"),
        ]);
        let mut payload = failed();
        payload["sourceClusterId"] = "billing".into();
        let out = handle(recorder.context(SideSettings::Source(fleet)), payload.clone())
            .await
            .expect("nothing there");
        assert_eq!(out, payload);
        let sent = recorder.sent();
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert!(sent[0].uri.contains("rds.us-west-1.") && sent[1].uri.contains("rds.us-west-2."), "{sent:?}");
        for s in &sent {
            assert!(
                s.body.contains("DBClusterSnapshotIdentifier=aurora-dr-billing-20261125160005"),
                "the billing cluster's snapshot, not the first configured cluster's: {}",
                s.body
            );
        }

        // Many target regions: the failed branch's region is where its copy is looked for.
        let recorder = ts::Recorder::replying([
            ts::rds_error_reply(404, "DBClusterSnapshotNotFoundFault"),
            ts::rds_error_reply(404, "DBClusterSnapshotNotFoundFault"),
        ]);
        let mut payload = failed();
        payload["targetRegion"] = "eu-west-1".into();
        let settings = crate::settings::tests::many_targets_settings();
        handle(recorder.context(SideSettings::Source(settings)), payload).await.expect("nothing there");
        let sent = recorder.sent();
        assert!(sent[0].uri.contains("rds.eu-west-1.") && sent[1].uri.contains("rds.us-west-2."), "{sent:?}");

        // A run payload (no `failure`) is not this function's.
        let recorder = ts::Recorder::default();
        let err = handle(ts::source_context(&recorder), ts::started_run().to_value())
            .await
            .expect_err("not a failure");
        assert_eq!(err.asl_name(), "InvalidInput", "{err}");
        assert!(recorder.sent().is_empty());
    }
}
