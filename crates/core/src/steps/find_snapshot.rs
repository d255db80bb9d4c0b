//! FindSnapshot (target account, target region): the first state of a
//! restore test. It picks the snapshot to restore and builds the run payload
//! the restore states take.
//!
//! Input (the state's Parameters): `{"request": <execution input>, "runId":
//! $$.Execution.Name, "startedAt": $$.Execution.StartTime}`, where the
//! execution input is `{"mode": "restore-test"}` with optionally
//! `snapshotId` (a snapshot name or ARN) and `sourceClusterId` (with many
//! clusters: whose snapshot to test; without it, the newest of any pair).
//!
//! Which snapshot: the newest recovery point the pipeline made that this
//! account may restore (the same one a normal run would restore):
//! - without an own copy (target.own_copy), the snapshots other accounts share
//!   with this one (DescribeDBClusterSnapshots with `SnapshotType=shared` and
//!   `IncludeShared`, API reference:
//!   <https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBClusterSnapshots.html>)
//!   owned by `SOURCE_ACCOUNT_ID`;
//! - with it (`TARGET_OWN_COPY`), this account's own copies, which carry
//!   aurora-dr's `managed-by` tag.
//!
//! In both, only `available`, encrypted snapshots named
//! `{prefix}-{cluster}-{yyyymmddHHMMss}` where `cluster` is the snapshot's
//! `DBClusterIdentifier` and a pair here restores it. A shared snapshot's
//! tags are not relied on: the API reference does not say whether
//! `TagList` carries another account's tags, so owner and name decide. The
//! newest is the one whose name's stamp (the source run's start, which the
//! recovery point follows) is latest.
//!
//! Output: a [`RunState`] with `mode` `restore-test`, `runId` the execution
//! name, `createdAt` its start time, the snapshot's ids, engine, key and
//! `snapshotCreatedAt` = the name's stamp (the recovery point, at most a
//! snapshot's creation time before it: the RPO is never understated).
//! Every later step then works on the test cluster's own names
//! ([`crate::settings::TargetSettings::for_run`]).
//!
//! Errors: `InvalidInput` (a request that is not a restore test, an unknown
//! key, a `snapshotId` or `sourceClusterId` this side does not restore),
//! `NotFound` (no such snapshot is available: run the source side first),
//! and the classified SDK errors. Reads only; safe to retry.

use std::sync::Arc;

use aws_sdk_rds::Client;
use aws_sdk_rds::types::DbClusterSnapshot;
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::context::StepContext;
use crate::error::{DrError, DrResult};
use crate::ids::{Arn, ClusterId, RunId, SnapshotId};
use crate::payload::{RunMode, RunState};
use crate::rds;
use crate::settings::TargetSettings;
use crate::steps::apply_retention::parse_stamp;
use crate::steps::input::{self, InputKind};

/// The state this module serves.
pub const STATE: &str = "FindSnapshot";

const STEP: &str = "find_snapshot";

/// The state's input.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Input {
    pub request: Request,
    pub run_id: RunId,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
}

/// The restore test's execution input.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Request {
    pub mode: RunMode,
    #[serde(default)]
    pub snapshot_id: Option<String>,
    #[serde(default)]
    pub source_cluster_id: Option<ClusterId>,
}

/// A snapshot this side may test, with what its name says.
#[derive(Debug, Clone)]
struct Candidate {
    snapshot: DbClusterSnapshot,
    id: SnapshotId,
    arn: Arn,
    cluster: ClusterId,
    stamp: OffsetDateTime,
}

/// Picks the snapshot and builds the restore test's payload.
pub async fn run(rds: &Client, settings: &TargetSettings, input: Input) -> DrResult<RunState> {
    let Input { request, run_id, started_at } = input;
    if let Some(source) = &request.source_cluster_id {
        settings.pair_for(Some(source.as_str()))?;
    }
    let own_copies = settings.own_copy;
    let listed = list(rds, own_copies).await?;
    let mut candidates: Vec<Candidate> =
        listed.into_iter().filter_map(|s| candidate(settings, own_copies, s)).collect();
    if let Some(source) = &request.source_cluster_id {
        candidates.retain(|c| c.cluster.as_str().eq_ignore_ascii_case(source.as_str()));
    }
    let where_from = if own_copies {
        format!("among account {}'s own copies (target.own_copy)", settings.account_id)
    } else {
        format!(
            "among the snapshots account {} shares with account {}",
            settings.source_account_id, settings.account_id
        )
    };
    let chosen = match &request.snapshot_id {
        Some(wanted) => {
            let wanted = wanted.to_ascii_lowercase();
            candidates
                .into_iter()
                .find(|c| c.id.as_str() == wanted || c.arn.as_str().eq_ignore_ascii_case(&wanted))
                .ok_or_else(|| {
                    DrError::NotFound(format!(
                        "snapshot {wanted} is not an available aurora-dr snapshot {where_from} in {}",
                        settings.region
                    ))
                })?
        }
        None => candidates.into_iter().max_by_key(|c| c.stamp).ok_or_else(|| {
            DrError::NotFound(format!(
                "no available aurora-dr snapshot {where_from} in {}{}: run the source side first",
                settings.region,
                request.source_cluster_id.as_ref().map(|c| format!(" for cluster {c}")).unwrap_or_default()
            ))
        })?,
    };
    tracing::info!(step = STEP, run_id = %run_id, snapshot = %chosen.arn, cluster = %chosen.cluster,
        "restore test: restoring the newest snapshot into a test cluster");
    let mut run = RunState::new(run_id, started_at);
    run.mode = Some(RunMode::RestoreTest);
    run.source_account_id = Some(settings.source_account_id.clone());
    run.source_cluster_id = Some(chosen.cluster);
    run.snapshot_created_at = Some(chosen.stamp);
    run.engine = chosen.snapshot.engine().map(str::to_owned);
    run.target_account_id = Some(settings.account_id.clone());
    run.target_region = Some(settings.region.clone());
    run.kms_key_arn = chosen.snapshot.kms_key_id().and_then(|k| k.parse().ok());
    if own_copies {
        run.own_snapshot_id = Some(chosen.id);
        run.own_snapshot_arn = Some(chosen.arn);
    } else {
        run.target_snapshot_id = Some(chosen.id);
        run.target_snapshot_arn = Some(chosen.arn);
    }
    Ok(run)
}

/// The snapshots to choose from: this account's manual ones, or those
/// shared with it (every page).
async fn list(rds: &Client, own_copies: bool) -> DrResult<Vec<DbClusterSnapshot>> {
    if own_copies {
        rds::list_manual_cluster_snapshots(rds, None).await
    } else {
        rds::list_shared_cluster_snapshots(rds).await
    }
}

/// `snap` when it is one of the pipeline's snapshots this side restores.
fn candidate(settings: &TargetSettings, own_copies: bool, snap: DbClusterSnapshot) -> Option<Candidate> {
    let arn: Arn = snap.db_cluster_snapshot_arn()?.parse().ok()?;
    let owner = if own_copies { &settings.account_id } else { &settings.source_account_id };
    if arn.account().as_ref() != Some(owner)
        || snap.status() != Some("available")
        || snap.storage_encrypted() != Some(true)
        || (own_copies && !rds::is_managed(snap.tag_list()))
    {
        return None;
    }
    let cluster: ClusterId = snap.db_cluster_identifier()?.to_ascii_lowercase().parse().ok()?;
    let name = snap.db_cluster_snapshot_identifier()?.to_ascii_lowercase();
    let (head, digits) = name.rsplit_once('-')?;
    let prefix = head.strip_suffix(cluster.as_str())?.strip_suffix('-')?;
    if prefix.is_empty() || settings.pair_for(Some(cluster.as_str())).is_err() {
        return None;
    }
    let stamp = parse_stamp(digits)?;
    let id = name.parse().ok()?;
    Some(Candidate { snapshot: snap, id, arn, cluster, stamp })
}

/// Lambda / local-engine entry: `{request, runId, startedAt}` in, RunState out.
pub async fn handle(ctx: Arc<StepContext>, input: Value) -> DrResult<Value> {
    input::expect(&input, InputKind::Run, STATE)?;
    let input: Input = serde_json::from_value(input)
        .map_err(|e| DrError::invalid_input(format!("{STATE} input (a restore test's request): {e}")))?;
    let settings = ctx.target()?;
    let rds = ctx.aws.in_region(&settings.region).rds();
    Ok(self::run(&rds, settings, input).await?.to_value())
}

#[cfg(test)]
mod tests {
    use aws_sdk_rds::Client as Rds;
    use aws_sdk_rds::operation::describe_db_cluster_snapshots::DescribeDbClusterSnapshotsOutput;
    use aws_smithy_mocks::{Rule, mock};
    use serde_json::json;
    use time::macros::datetime;

    use super::*;
    use crate::steps::target_support::*;
    use crate::steps::test_support::{KMS_KEY_ARN, managed_tags};

    const OWN_KEY: &str = "arn:aws:kms:us-west-1:222222222222:key/0f0e0d0c-0000-4000-8000-000000000002";

    fn shared(name: &str, account: &str, status: &str) -> DbClusterSnapshot {
        DbClusterSnapshot::builder()
            .db_cluster_snapshot_identifier(name)
            .db_cluster_identifier("orders")
            .db_cluster_snapshot_arn(format!("arn:aws:rds:us-west-1:{account}:cluster-snapshot:{name}"))
            .status(status)
            .engine("aurora-postgresql")
            .snapshot_type("shared")
            .storage_encrypted(true)
            .kms_key_id(KMS_KEY_ARN)
            .build()
    }

    /// DescribeDBClusterSnapshots answering `snaps` to a shared listing only.
    fn shared_listing(snaps: Vec<DbClusterSnapshot>) -> Rule {
        mock!(Rds::describe_db_cluster_snapshots)
            .match_requests(|r| {
                r.snapshot_type() == Some("shared")
                    && r.include_shared() == Some(true)
                    && r.db_cluster_snapshot_identifier().is_none()
            })
            .then_output(move || {
                DescribeDbClusterSnapshotsOutput::builder()
                    .set_db_cluster_snapshots(Some(snaps.clone()))
                    .build()
            })
    }

    fn input(request: Value) -> Input {
        serde_json::from_value(json!({
            "request": request,
            "runId": "rt-1",
            "startedAt": "2026-11-26T10:00:00Z"
        }))
        .expect("input")
    }

    #[tokio::test]
    async fn the_newest_available_shared_snapshot_of_the_source_account_is_chosen() {
        let listing = shared_listing(vec![
            shared("aurora-dr-orders-20261125160005", "111111111111", "available"),
            shared("aurora-dr-orders-20261126090000", "111111111111", "available"),
            // Newer, but still copying; of another account; unencrypted; foreign name.
            shared("aurora-dr-orders-20261126093000", "111111111111", "copying"),
            shared("aurora-dr-orders-20261126094000", "333333333333", "available"),
            unencrypted(shared("aurora-dr-orders-20261126095000", "111111111111", "available")),
            shared("orders-manual", "111111111111", "available"),
            shared("nightly-backup", "111111111111", "available"),
        ]);
        let out = super::run(&rds(&[&listing]), &settings(), input(json!({"mode": "restore-test"})))
            .await
            .expect("found");
        assert!(out.is_restore_test());
        assert_eq!(out.run_id.as_str(), "rt-1");
        assert_eq!(out.created_at, datetime!(2026-11-26 10:00:00 UTC));
        assert_eq!(
            out.target_snapshot_id.as_ref().map(SnapshotId::as_str),
            Some("aurora-dr-orders-20261126090000")
        );
        assert_eq!(out.snapshot_created_at, Some(datetime!(2026-11-26 09:00:00 UTC)));
        assert_eq!(out.source_cluster_id.as_ref().map(ClusterId::as_str), Some("orders"));
        assert_eq!(out.kms_key_arn.as_ref().map(Arn::as_str), Some(KMS_KEY_ARN));
        assert!(out.own_snapshot_arn.is_none() && out.swap.is_none());
    }

    #[tokio::test]
    async fn a_named_snapshot_must_be_one_of_the_candidates() {
        let snaps = vec![
            shared("aurora-dr-orders-20261125160005", "111111111111", "available"),
            shared("aurora-dr-orders-20261126090000", "111111111111", "available"),
        ];
        let listing = shared_listing(snaps);
        let request = json!({"mode": "restore-test", "snapshotId": "aurora-dr-orders-20261125160005"});
        let out = super::run(&rds(&[&listing]), &settings(), input(request)).await.expect("found");
        assert_eq!(
            out.target_snapshot_id.as_ref().map(SnapshotId::as_str),
            Some("aurora-dr-orders-20261125160005")
        );
        let missing = json!({"mode": "restore-test", "snapshotId": "aurora-dr-orders-20200101000000"});
        let err = super::run(&rds(&[&listing]), &settings(), input(missing)).await.expect_err("absent");
        assert_eq!(err.asl_name(), "NotFound", "{err}");
        assert!(err.to_string().contains("aurora-dr-orders-20200101000000"), "{err}");
    }

    #[tokio::test]
    async fn nothing_shared_yet_is_not_found_with_what_to_do() {
        let listing = shared_listing(Vec::new());
        let err = super::run(&rds(&[&listing]), &settings(), input(json!({"mode": "restore-test"})))
            .await
            .expect_err("none");
        assert_eq!(err.asl_name(), "NotFound", "{err}");
        assert!(err.to_string().contains("run the source side first"), "{err}");
    }

    #[tokio::test]
    async fn with_an_own_copy_the_newest_own_copy_is_chosen() {
        let mut settings = settings();
        settings.kms_key_arn = Some(OWN_KEY.parse().expect("key"));
        settings.own_copy = true;
        let own = |name: &str, tags| {
            DbClusterSnapshot::builder()
                .db_cluster_snapshot_identifier(name)
                .db_cluster_identifier("orders")
                .db_cluster_snapshot_arn(format!(
                    "arn:aws:rds:us-west-1:222222222222:cluster-snapshot:{name}"
                ))
                .status("available")
                .snapshot_type("manual")
                .storage_encrypted(true)
                .kms_key_id(OWN_KEY)
                .set_tag_list(Some(tags))
                .build()
        };
        let listing = mock!(Rds::describe_db_cluster_snapshots)
            .match_requests(|r| r.snapshot_type() == Some("manual"))
            .then_output(move || {
                DescribeDbClusterSnapshotsOutput::builder()
                    .db_cluster_snapshots(own("aurora-dr-orders-20261125160005", managed_tags("run-1")))
                    .db_cluster_snapshots(own("aurora-dr-orders-20261126090000", Vec::new()))
                    .build()
            });
        let out = super::run(&rds(&[&listing]), &settings, input(json!({"mode": "restore-test"})))
            .await
            .expect("found");
        assert_eq!(
            out.own_snapshot_id.as_ref().map(SnapshotId::as_str),
            Some("aurora-dr-orders-20261125160005")
        );
        assert!(out.target_snapshot_arn.is_none(), "the untagged newer copy is not the pipeline's");
    }

    #[tokio::test]
    async fn requests_that_are_not_a_restore_test_are_refused_before_any_call() {
        let recorder = Recorder::default();
        let ctx = crate::steps::test_support::target_context(&recorder);
        for request in
            [json!({"mode": "swap"}), json!({"mode": "restore-test", "snapshotID": "x"}), json!({})]
        {
            let input = json!({"request": request, "runId": "rt-1", "startedAt": "2026-11-26T10:00:00Z"});
            let err = handle(ctx.clone(), input).await.expect_err("refused");
            assert_eq!(err.asl_name(), "InvalidInput", "{request}: {err}");
        }
        let unknown = json!({"mode": "restore-test", "sourceClusterId": "billing"});
        let listing = shared_listing(Vec::new());
        let mut settings = settings();
        settings.pairs[0].source_cluster_id = Some("orders".parse().expect("id"));
        let err = super::run(&rds(&[&listing]), &settings, input(unknown)).await.expect_err("no pair");
        assert_eq!(listing.num_calls(), 0, "refused before any call");
        assert_eq!(err.asl_name(), "InvalidInput", "{err}");
        assert!(recorder.sent().is_empty());
    }

    fn unencrypted(mut s: DbClusterSnapshot) -> DbClusterSnapshot {
        s.storage_encrypted = Some(false);
        s
    }
}
