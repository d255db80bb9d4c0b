//! CreateSnapshot: a manual cluster snapshot of the source cluster (automated
//! snapshots cannot be shared with another account).
//!
//! Input: [`RunState`] with `runId` and `createdAt` (set by the Start state),
//! and `sourceClusterId` when the run covers many clusters: it must be one of
//! the configured clusters ([`SourceSettings::for_cluster`]); without it, the
//! only configured cluster.
//! Output: the same, with `sourceAccountId`, `sourceRegion`, `sourceClusterId`,
//! `sourceSnapshotId`, `sourceSnapshotArn`, `snapshotCreatedAt` (when RDS reports
//! it), `engine`, `targetRegion`, `targetAccountId` and `kmsKeyArn` filled from
//! the source settings and RDS.
//!
//! The snapshot is named `{prefix}-{cluster}-{yyyymmddHHMMss}` from the run's
//! start time, lowercased (RDS stores identifiers lowercase), and tagged with
//! [`rds::run_tags`].
//!
//! Errors:
//! - `NotFound`: the source cluster does not exist (names cluster, account, region).
//! - `UnsafeOperation`: the source cluster is not storage-encrypted (RDS
//!   cannot encrypt a snapshot while copying it; the message says what to do).
//! - `Conflict`: a snapshot with this run's name belongs to another cluster, or
//!   another aurora-dr run of the same cluster is still in progress (its
//!   snapshot `creating`/`copying` in the source region, or its copy `copying`
//!   in the target region): overlapping scheduled runs never interleave.
//! - `InvalidInput`: the payload is malformed, carries a failure, or names
//!   another cluster or snapshot than this run's.
//! - AWS errors as classified by [`DrError::from_sdk`] (`QuotaExceeded`,
//!   `Throttled`, `ServiceUnavailable` are retryable).
//!
//! Idempotency: the name depends only on the run, so a retried step finds its
//! own snapshot and reuses it (also when a create races and RDS answers
//! `DBClusterSnapshotAlreadyExistsFault`); it never creates a second one.
//! A snapshot under this run's name is reused only when it carries this
//! run's tags: two runs started in the same second (a schedule delivered
//! twice) name the same snapshot, and the second is refused (`Conflict`).
//! The overlap check is skipped when reusing: this run has already started.

use std::sync::Arc;

use aws_sdk_rds::Client;
use aws_sdk_rds::error::ProvideErrorMetadata;
use aws_sdk_rds::types::{DbCluster, DbClusterSnapshot};
use serde_json::Value;
use time::OffsetDateTime;

use crate::context::StepContext;
use crate::error::{DrError, DrResult};
use crate::ids::{Arn, Region, SnapshotId};
use crate::payload::{RunState, TargetRegionItem};
use crate::rds::{self, TAG_RUN_ID, TAG_SOURCE_CLUSTER};
use crate::settings::{SourceSettings, keys};
use crate::steps::input::{self, InputKind};

/// The state this module serves.
pub const STATE: &str = "CreateSnapshot";

const STEP: &str = "create_snapshot";

/// Statuses of another run's snapshot (source region) that mean it is still running.
const SOURCE_BUSY: &[&str] = &["creating", "copying"];
/// Statuses of another run's copy (target region) that mean it is still running.
const TARGET_BUSY: &[&str] = &["copying"];

/// The snapshot name of `run`: `{prefix}-{cluster}-{yyyymmddHHMMss}`, lowercase.
pub fn snapshot_id(settings: &SourceSettings, run: &RunState) -> DrResult<SnapshotId> {
    let name =
        format!("{}-{}-{}", settings.snapshot_prefix, settings.cluster_id, run.stamp()).to_ascii_lowercase();
    name.parse().map_err(|e| DrError::InvalidConfig {
        name: keys::SNAPSHOT_PREFIX.env.into(),
        problem: format!("the snapshot name built from it is not a valid identifier: {e}"),
    })
}

/// Creates (or finds) this run's snapshot; see the module doc.
/// `rds` calls the source region, `target_rds` the target region (same account).
pub async fn run(
    rds: &Client,
    target_rds: &Client,
    settings: &SourceSettings,
    run: RunState,
) -> DrResult<RunState> {
    run_regions(rds, target_rds, &[], settings, run).await
}

/// [`run`] with many target regions: another run's copy still copying in
/// any of them (`others`: each other target region and a client there)
/// blocks this run too.
pub async fn run_regions(
    rds: &Client,
    target_rds: &Client,
    others: &[(Region, Client)],
    settings: &SourceSettings,
    run: RunState,
) -> DrResult<RunState> {
    check_input(settings, &run)?;
    let id = snapshot_id(settings, &run)?;
    let cluster_id = settings.cluster_id.as_str();

    let cluster = rds::find_cluster(rds, cluster_id).await?.ok_or_else(|| {
        DrError::NotFound(format!(
            "source cluster {cluster_id} does not exist in account {} region {}",
            settings.account_id, settings.region
        ))
    })?;
    if !cluster.storage_encrypted().unwrap_or(false) {
        return Err(unencrypted_source(cluster_id));
    }

    let mut out = run;
    out.source_cluster_id = Some(settings.cluster_id.clone());

    let snapshot = match own_snapshot(rds, &id, cluster_id, &out).await? {
        Some(existing) => {
            tracing::info!(step = STEP, run_id = %out.run_id, snapshot = %id, cluster = cluster_id,
                status = existing.status().unwrap_or_default(), "reusing this run's snapshot");
            existing
        }
        None => {
            refuse_overlap(rds, target_rds, others, settings, &out).await?;
            create(rds, &id, cluster_id, &out).await?
        }
    };
    Ok(fill(out, settings, &cluster, &snapshot, id))
}

/// Why an unencrypted source cannot be copied, and what to do.
///
/// RDS cannot encrypt an unencrypted cluster snapshot while copying it: a
/// KmsKeyId for one is an error (RDS API Reference, CopyDBClusterSnapshot,
/// `KmsKeyId`: <https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBClusterSnapshot.html>).
/// An unencrypted cluster cannot be converted either; what RDS offers is a
/// restore of an unencrypted snapshot into an encrypted cluster, given a
/// KmsKeyId (Aurora User Guide, "Limitations of Amazon Aurora encrypted DB
/// clusters": <https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Overview.Encryption.html#Overview.Encryption.Limitations>;
/// RDS API Reference, RestoreDBClusterFromSnapshot, `KmsKeyId`).
fn unencrypted_source(cluster_id: &str) -> DrError {
    DrError::Unsafe(format!(
        "source cluster {cluster_id} is not storage-encrypted, and aurora-dr only copies encrypted \
         snapshots across accounts: RDS cannot encrypt an unencrypted cluster snapshot while copying it \
         (CopyDBClusterSnapshot refuses a KmsKeyId for one) and cannot encrypt an existing cluster. To \
         protect this cluster, encrypt it first: take a snapshot of it, restore that snapshot into a new \
         cluster with a KMS key (RestoreDBClusterFromSnapshot with KmsKeyId encrypts the restored \
         cluster), move the applications to the new cluster and point {} at it. Nothing was \
         snapshotted or copied",
        keys::SOURCE_CLUSTER_ID.env
    ))
}

/// The untyped entry: source settings, source-region and target-region clients.
pub async fn handle(ctx: Arc<StepContext>, input: Value) -> DrResult<Value> {
    input::expect(&input, InputKind::Run, STATE)?;
    let run_state = RunState::from_value(input)?;
    // Many clusters: the payload's `sourceClusterId`, if it is a configured one.
    let settings = &ctx.source()?.for_cluster(run_state.source_cluster_id.as_ref())?;
    let rds = ctx.aws.rds();
    let target_rds = ctx.aws.in_region(&settings.target_region).rds();
    let others: Vec<(Region, Client)> = settings
        .target_regions
        .iter()
        .filter(|r| r.region != settings.target_region)
        .map(|r| (r.region.clone(), ctx.aws.in_region(&r.region).rds()))
        .collect();
    Ok(run_regions(&rds, &target_rds, &others, settings, run_state).await?.to_value())
}

fn check_input(settings: &SourceSettings, run: &RunState) -> DrResult<()> {
    input::no_failure(run, STATE)?;
    if let Some(c) = &run.source_cluster_id
        && !c.as_str().eq_ignore_ascii_case(settings.cluster_id.as_str())
    {
        return Err(DrError::invalid_input(format!(
            "payload names source cluster {c}, but this deployment snapshots {}",
            settings.cluster_id
        )));
    }
    if let Some(s) = &run.source_snapshot_id {
        let want = snapshot_id(settings, run)?;
        if s != &want {
            return Err(DrError::invalid_input(format!(
                "payload names snapshot {s}, but run {} started at {} names {want}",
                run.run_id,
                run.stamp()
            )));
        }
    }
    Ok(())
}

/// This run's snapshot if it exists; `Conflict` when the name is taken by
/// another cluster's snapshot or by another run's (one without this run's tags).
async fn own_snapshot(
    rds: &Client,
    id: &SnapshotId,
    cluster_id: &str,
    run: &RunState,
) -> DrResult<Option<DbClusterSnapshot>> {
    let Some(existing) = rds::find_cluster_snapshot(rds, id.as_str(), false).await? else {
        return Ok(None);
    };
    let owner = existing.db_cluster_identifier().unwrap_or_default();
    if !owner.eq_ignore_ascii_case(cluster_id) {
        return Err(DrError::Conflict(format!(
            "snapshot {id} already exists but belongs to cluster {owner:?}, not {cluster_id}"
        )));
    }
    // Two runs started in the same second (a schedule delivered twice) name
    // the same snapshot: only this run's own snapshot is reused, never another's.
    if rds::is_from_run(existing.tag_list(), run) {
        Ok(Some(existing))
    } else {
        let other = rds::tag_value(existing.tag_list(), TAG_RUN_ID).unwrap_or("none");
        tracing::warn!(step = STEP, run_id = %run.run_id, snapshot = %id, other_run = other,
            "snapshot name taken by another run; refusing to share it");
        Err(DrError::Conflict(format!(
            "another run ({other}) already took snapshot {id} of cluster {cluster_id} (runs started in the same \
             second); this run is refused so the two never interleave"
        )))
    }
}

/// `Conflict` when another aurora-dr run of this cluster is still creating
/// or copying its snapshot.
async fn refuse_overlap(
    rds: &Client,
    target_rds: &Client,
    others: &[(Region, Client)],
    settings: &SourceSettings,
    run: &RunState,
) -> DrResult<()> {
    let cluster_id = settings.cluster_id.as_str();
    let mut checks = vec![
        (rds, Some(cluster_id), SOURCE_BUSY, &settings.region),
        // The copies live under the source cluster's id, but that cluster does
        // not exist in the target region, so list all manual snapshots there.
        (target_rds, None, TARGET_BUSY, &settings.target_region),
    ];
    checks.extend(others.iter().map(|(region, client)| (client, None, TARGET_BUSY, region)));
    for (client, cluster_filter, busy, region) in checks {
        for snap in rds::list_manual_cluster_snapshots(client, cluster_filter).await? {
            if let Some(other) = other_run_in_progress(&snap, run, cluster_id, busy) {
                let name = snap.db_cluster_snapshot_identifier().unwrap_or_default();
                let status = snap.status().unwrap_or_default();
                tracing::warn!(step = STEP, run_id = %run.run_id, other_run = other, snapshot = name,
                    status, region = %region, "refusing to overlap another run");
                return Err(DrError::Conflict(format!(
                    "another run ({other}) is still in progress: snapshot {name} of cluster {cluster_id} \
                     is {status} in {region}"
                )));
            }
        }
    }
    Ok(())
}

/// The other run's id when `snap` is another aurora-dr run's snapshot of
/// `cluster_id` in one of the `busy` statuses.
fn other_run_in_progress<'a>(
    snap: &'a DbClusterSnapshot,
    run: &RunState,
    cluster_id: &str,
    busy: &[&str],
) -> Option<&'a str> {
    let tags = snap.tag_list();
    if !rds::is_managed(tags) {
        return None;
    }
    let other = rds::tag_value(tags, TAG_RUN_ID)?;
    let same_cluster = rds::tag_value(tags, TAG_SOURCE_CLUSTER)
        .or(snap.db_cluster_identifier())
        .is_some_and(|c| c.eq_ignore_ascii_case(cluster_id));
    let running = snap.status().is_some_and(|s| busy.contains(&s));
    (other != run.run_id.as_str() && same_cluster && running).then_some(other)
}

/// Creates the snapshot; a create that lost a race re-reads and reuses.
async fn create(
    rds: &Client,
    id: &SnapshotId,
    cluster_id: &str,
    run: &RunState,
) -> DrResult<DbClusterSnapshot> {
    let result = rds
        .create_db_cluster_snapshot()
        .db_cluster_identifier(cluster_id)
        .db_cluster_snapshot_identifier(id.as_str())
        .set_tags(Some(rds::run_tags(run)))
        .send()
        .await;
    match result {
        Ok(out) => {
            tracing::info!(step = STEP, run_id = %run.run_id, snapshot = %id, cluster = cluster_id,
                "snapshot creation started");
            match out.db_cluster_snapshot {
                Some(s) => Ok(s),
                None => own_snapshot(rds, id, cluster_id, run).await?.ok_or_else(|| {
                    DrError::NotFound(format!("snapshot {id} is not listed right after its creation"))
                }),
            }
        }
        Err(e)
            if e.as_service_error().is_some_and(|s| s.is_db_cluster_snapshot_already_exists_fault())
                || e.code() == Some("DBClusterSnapshotAlreadyExistsFault") =>
        {
            tracing::info!(step = STEP, run_id = %run.run_id, snapshot = %id,
                "snapshot appeared concurrently; reusing it");
            let conflict = DrError::from_sdk(&format!("CreateDBClusterSnapshot {id}"), e);
            own_snapshot(rds, id, cluster_id, run).await?.ok_or(conflict)
        }
        Err(e) => Err(DrError::from_sdk(&format!("CreateDBClusterSnapshot {id}"), e)),
    }
}

fn fill(
    mut run: RunState,
    settings: &SourceSettings,
    cluster: &DbCluster,
    snapshot: &DbClusterSnapshot,
    id: SnapshotId,
) -> RunState {
    let arn = snapshot
        .db_cluster_snapshot_arn()
        .and_then(|a| a.parse::<Arn>().ok())
        .unwrap_or_else(|| Arn::cluster_snapshot(&settings.region, &settings.account_id, &id));
    run.source_account_id = Some(settings.account_id.clone());
    run.source_region = Some(settings.region.clone());
    run.source_cluster_id = Some(settings.cluster_id.clone());
    run.source_snapshot_id = Some(id);
    run.source_snapshot_arn = Some(arn);
    run.snapshot_created_at = snapshot.snapshot_create_time().and_then(to_time).or(run.snapshot_created_at);
    run.engine = cluster.engine().or(snapshot.engine()).map(str::to_owned).or(run.engine);
    run.target_region = Some(settings.target_region.clone());
    run.target_account_id = Some(settings.target_account_id.clone());
    run.kms_key_arn = Some(settings.kms_key_arn.clone());
    run.target_regions = settings
        .target_regions
        .iter()
        .filter_map(|r| {
            Some(TargetRegionItem {
                target_region: r.region.clone(),
                target_account_id: r.account_ids.first()?.clone(),
                kms_key_arn: r.kms_key_arn.clone(),
            })
        })
        .collect();
    run
}

/// An SDK timestamp as a `time` value.
pub(crate) fn to_time(t: &aws_smithy_types::DateTime) -> Option<OffsetDateTime> {
    let secs = OffsetDateTime::from_unix_timestamp(t.secs()).ok()?;
    Some(secs + time::Duration::nanoseconds(i64::from(t.subsec_nanos())))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use aws_sdk_rds::Client;
    use aws_sdk_rds::operation::create_db_cluster_snapshot::{
        CreateDBClusterSnapshotError, CreateDbClusterSnapshotInput, CreateDbClusterSnapshotOutput,
    };
    use aws_sdk_rds::operation::describe_db_cluster_snapshots::{
        DescribeDBClusterSnapshotsError, DescribeDbClusterSnapshotsOutput,
    };
    use aws_sdk_rds::operation::describe_db_clusters::{DescribeDBClustersError, DescribeDbClustersOutput};
    use aws_sdk_rds::types::error::{
        DbClusterNotFoundFault, DbClusterSnapshotAlreadyExistsFault, DbClusterSnapshotNotFoundFault,
        SnapshotQuotaExceededFault,
    };
    use aws_smithy_mocks::{Rule, mock};
    use time::macros::datetime;

    use super::*;
    use crate::settings::tests::source_settings;
    use crate::steps::test_support::{self as ts, SNAPSHOT_ID};

    fn clusters_ok(encrypted: bool) -> Rule {
        mock!(Client::describe_db_clusters).then_output(move || {
            DescribeDbClustersOutput::builder().db_clusters(ts::cluster(encrypted)).build()
        })
    }

    fn clusters_err(code: &'static str) -> Rule {
        mock!(Client::describe_db_clusters)
            .then_error(move || DescribeDBClustersError::generic(ts::meta(code)))
    }

    /// Describe by this run's snapshot id: not there.
    fn own_missing() -> Rule {
        mock!(Client::describe_db_cluster_snapshots)
            .match_requests(|r| r.db_cluster_snapshot_identifier().is_some())
            .then_error(|| {
                DescribeDBClusterSnapshotsError::DbClusterSnapshotNotFoundFault(
                    DbClusterSnapshotNotFoundFault::builder()
                        .meta(ts::meta("DBClusterSnapshotNotFoundFault"))
                        .build(),
                )
            })
    }

    /// Describe by this run's snapshot id: `snap`.
    fn own_found(snap: DbClusterSnapshot) -> Rule {
        mock!(Client::describe_db_cluster_snapshots)
            .match_requests(|r| r.db_cluster_snapshot_identifier() == Some(SNAPSHOT_ID))
            .then_output(move || {
                DescribeDbClusterSnapshotsOutput::builder().db_cluster_snapshots(snap.clone()).build()
            })
    }

    /// Listing of manual snapshots (the overlap check).
    fn listing(snaps: Vec<DbClusterSnapshot>) -> Rule {
        mock!(Client::describe_db_cluster_snapshots)
            .match_requests(|r| {
                r.db_cluster_snapshot_identifier().is_none() && r.snapshot_type() == Some("manual")
            })
            .then_output(move || {
                DescribeDbClusterSnapshotsOutput::builder()
                    .set_db_cluster_snapshots(Some(snaps.clone()))
                    .build()
            })
    }

    fn create_ok(seen: Option<Arc<Mutex<Option<CreateDbClusterSnapshotInput>>>>) -> Rule {
        mock!(Client::create_db_cluster_snapshot)
            .match_requests(move |r| {
                if let Some(seen) = &seen {
                    *seen.lock().expect("lock") = Some(r.clone());
                }
                true
            })
            .then_output(|| {
                CreateDbClusterSnapshotOutput::builder()
                    .db_cluster_snapshot(ts::snapshot(SNAPSHOT_ID, "orders", "creating"))
                    .build()
            })
    }

    fn create_never() -> Rule {
        mock!(Client::create_db_cluster_snapshot)
            .then_output(|| CreateDbClusterSnapshotOutput::builder().build())
    }

    fn other_run_snapshot(status: &str) -> DbClusterSnapshot {
        let mut s = ts::snapshot("aurora-dr-orders-20261125150005", "orders", status);
        s.tag_list = Some(ts::managed_tags("run-0"));
        s
    }

    #[tokio::test]
    async fn creates_a_tagged_snapshot_named_after_the_run() {
        let seen = Arc::new(Mutex::new(None));
        let (clusters, own, list, target_list, create) = (
            clusters_ok(true),
            own_missing(),
            listing(vec![]),
            listing(vec![]),
            create_ok(Some(seen.clone())),
        );
        let rds = ts::rds(&[&clusters, &own, &list, &create]);
        let target = ts::rds(&[&target_list]);

        let out = run(&rds, &target, &source_settings(), ts::started_run()).await.expect("created");

        assert_eq!(create.num_calls(), 1);
        assert_eq!(list.num_calls(), 1, "source region checked for overlapping runs");
        assert_eq!(target_list.num_calls(), 1, "target region checked for overlapping runs");
        let req = seen.lock().expect("lock").clone().expect("create request");
        assert_eq!(req.db_cluster_identifier(), Some("orders"));
        assert_eq!(req.db_cluster_snapshot_identifier(), Some(SNAPSHOT_ID));
        let tags = req.tags();
        assert_eq!(rds::tag_value(tags, rds::TAG_MANAGED_BY), Some("aurora-dr"));
        assert_eq!(rds::tag_value(tags, rds::TAG_RUN_ID), Some("run-1"));
        assert_eq!(rds::tag_value(tags, rds::TAG_SOURCE_CLUSTER), Some("orders"));

        assert_eq!(out.source_snapshot_id.as_ref().map(|s| s.as_str()), Some(SNAPSHOT_ID));
        assert_eq!(out.source_snapshot_arn.as_ref().map(|s| s.as_str()), Some(ts::SOURCE_SNAPSHOT_ARN));
        assert_eq!(out.source_cluster_id.as_ref().map(|s| s.as_str()), Some("orders"));
        assert_eq!(out.source_account_id.as_ref().map(|s| s.as_str()), Some("111111111111"));
        assert_eq!(out.source_region.as_ref().map(|s| s.as_str()), Some("us-west-2"));
        assert_eq!(out.target_region.as_ref().map(|s| s.as_str()), Some("us-west-1"));
        assert_eq!(out.target_account_id.as_ref().map(|s| s.as_str()), Some("222222222222"));
        // The source machine's Regions Map runs one branch per listed region.
        let regions: Vec<(&str, &str, &str)> = out
            .target_regions
            .iter()
            .map(|r| (r.target_region.as_str(), r.target_account_id.as_str(), r.kms_key_arn.as_str()))
            .collect();
        assert_eq!(regions, [("us-west-1", "222222222222", ts::KMS_KEY_ARN)]);
        assert_eq!(out.kms_key_arn.as_ref().map(|s| s.as_str()), Some(ts::KMS_KEY_ARN));
        assert_eq!(out.engine.as_deref(), Some("aurora-postgresql"));
        assert_eq!(out.snapshot_created_at, Some(datetime!(2026-11-25 16:00:06 UTC)));
        assert_eq!(out.run_id.as_str(), "run-1");
    }

    #[test]
    fn snapshot_name_is_lowercase_and_valid() {
        let mut settings = source_settings();
        settings.snapshot_prefix = "DR-Nightly".into();
        settings.cluster_id = "orders-eu".parse().expect("id");
        let id = snapshot_id(&settings, &ts::started_run()).expect("valid");
        assert_eq!(id.as_str(), "dr-nightly-orders-eu-20261125160005");
    }

    /// This run's snapshot as CreateSnapshot made it: with the run's tags.
    fn ours(status: &str) -> DbClusterSnapshot {
        let mut snap = ts::snapshot(SNAPSHOT_ID, "orders", status);
        snap.tag_list = Some(rds::run_tags(&ts::started_run()));
        snap
    }

    #[tokio::test]
    async fn another_runs_snapshot_under_this_name_is_a_conflict_and_nothing_is_created() {
        let mut theirs = ts::snapshot(SNAPSHOT_ID, "orders", "creating");
        let mut other = ts::started_run();
        other.run_id = "run-started-the-same-second".parse().expect("id");
        theirs.tag_list = Some(rds::run_tags(&other));
        let (clusters, own, list, create) =
            (clusters_ok(true), own_found(theirs), listing(vec![]), create_never());
        let rds = ts::rds(&[&clusters, &own, &list, &create]);
        let target = ts::rds(&[&list]);

        let err = run(&rds, &target, &source_settings(), ts::started_run()).await.expect_err("refused");

        assert_eq!(err.asl_name(), "Conflict", "{err}");
        assert!(err.to_string().contains("run-started-the-same-second"), "{err}");
        assert_eq!(create.num_calls(), 0);
    }

    #[tokio::test]
    async fn a_retry_reuses_the_existing_snapshot_without_creating() {
        let (clusters, own, list, create) =
            (clusters_ok(true), own_found(ours("creating")), listing(vec![]), create_never());
        let rds = ts::rds(&[&clusters, &own, &list, &create]);
        let target = ts::rds(&[&list]);

        let out = run(&rds, &target, &source_settings(), ts::started_run()).await.expect("reused");

        assert_eq!(create.num_calls(), 0);
        assert_eq!(list.num_calls(), 0, "a run that already has its snapshot does not check for overlaps");
        assert_eq!(out.source_snapshot_id.as_ref().map(|s| s.as_str()), Some(SNAPSHOT_ID));
        assert_eq!(out.source_snapshot_arn.as_ref().map(|s| s.as_str()), Some(ts::SOURCE_SNAPSHOT_ARN));
    }

    #[tokio::test]
    async fn reuses_the_snapshot_when_the_created_races() {
        let clusters = clusters_ok(true);
        // Not there when first asked, there after the create lost the race.
        let own = mock!(Client::describe_db_cluster_snapshots)
            .match_requests(|r| r.db_cluster_snapshot_identifier().is_some())
            .sequence()
            .error(|| DescribeDBClusterSnapshotsError::generic(ts::meta("DBClusterSnapshotNotFoundFault")))
            .output(|| {
                DescribeDbClusterSnapshotsOutput::builder().db_cluster_snapshots(ours("creating")).build()
            })
            .build();
        let list = listing(vec![]);
        let create = mock!(Client::create_db_cluster_snapshot).then_error(|| {
            CreateDBClusterSnapshotError::DbClusterSnapshotAlreadyExistsFault(
                DbClusterSnapshotAlreadyExistsFault::builder()
                    .meta(ts::meta("DBClusterSnapshotAlreadyExistsFault"))
                    .build(),
            )
        });
        let rds = ts::rds(&[&clusters, &own, &list, &create]);
        let target = ts::rds(&[&list]);

        let out = run(&rds, &target, &source_settings(), ts::started_run()).await.expect("reused after race");

        assert_eq!(create.num_calls(), 1);
        assert_eq!(own.num_calls(), 2);
        assert_eq!(out.source_snapshot_id.as_ref().map(|s| s.as_str()), Some(SNAPSHOT_ID));
    }

    #[tokio::test]
    async fn a_missing_source_cluster_is_named() {
        for missing in [
            mock!(Client::describe_db_clusters).then_error(|| {
                DescribeDBClustersError::DbClusterNotFoundFault(
                    DbClusterNotFoundFault::builder().meta(ts::meta("DBClusterNotFoundFault")).build(),
                )
            }),
            mock!(Client::describe_db_clusters).then_output(|| DescribeDbClustersOutput::builder().build()),
        ] {
            let create = create_never();
            let rds = ts::rds(&[&missing, &create]);
            let target = ts::rds(&[]);
            let err = run(&rds, &target, &source_settings(), ts::started_run()).await.expect_err("missing");
            assert_eq!(err.asl_name(), "NotFound", "{err}");
            let msg = err.to_string();
            for want in ["orders", "111111111111", "us-west-2"] {
                assert!(msg.contains(want), "{want} not in {msg}");
            }
            assert_eq!(create.num_calls(), 0);
        }
    }

    #[tokio::test]
    async fn an_unencrypted_source_is_refused_with_what_to_do() {
        let (clusters, own, list, create) =
            (clusters_ok(false), own_missing(), listing(vec![]), create_ok(None));
        let rds = ts::rds(&[&clusters, &own, &list, &create]);
        let target = ts::rds(&[&list]);

        let err = run(&rds, &target, &source_settings(), ts::started_run()).await.expect_err("refused");
        assert_eq!(err.asl_name(), "UnsafeOperation", "{err}");
        let text = err.to_string();
        for want in
            ["orders is not storage-encrypted", "CopyDBClusterSnapshot", "RestoreDBClusterFromSnapshot"]
        {
            assert!(text.contains(want), "{want:?} not in {text}");
        }
        assert_eq!(create.num_calls(), 0);
        assert_eq!(own.num_calls(), 0);
    }

    #[tokio::test]
    async fn a_snapshot_of_another_cluster_under_this_name_is_a_conflict() {
        let (clusters, own, create) =
            (clusters_ok(true), own_found(ts::snapshot(SNAPSHOT_ID, "billing", "available")), create_never());
        let rds = ts::rds(&[&clusters, &own, &create]);
        let target = ts::rds(&[]);

        let err = run(&rds, &target, &source_settings(), ts::started_run()).await.expect_err("conflict");
        assert_eq!(err.asl_name(), "Conflict", "{err}");
        assert!(err.to_string().contains("billing"), "{err}");
        assert_eq!(create.num_calls(), 0);
    }

    #[tokio::test]
    async fn another_run_still_creating_its_snapshot_blocks_this_one() {
        let (clusters, own, list, create) =
            (clusters_ok(true), own_missing(), listing(vec![other_run_snapshot("creating")]), create_never());
        let empty = listing(vec![]);
        let rds = ts::rds(&[&clusters, &own, &list, &create]);
        let target = ts::rds(&[&empty]);

        let err = run(&rds, &target, &source_settings(), ts::started_run()).await.expect_err("overlap");
        assert_eq!(err.asl_name(), "Conflict", "{err}");
        assert!(err.to_string().contains("another run (run-0) is still in progress"), "{err}");
        assert_eq!(create.num_calls(), 0);
    }

    #[tokio::test]
    async fn another_runs_copy_still_copying_in_the_target_region_blocks_this_one() {
        let mut copying = ts::copy("copying");
        copying.db_cluster_snapshot_identifier = Some("aurora-dr-orders-20261125150005".into());
        copying.tag_list = Some(ts::managed_tags("run-0"));
        let (clusters, own, list, target_list, create) =
            (clusters_ok(true), own_missing(), listing(vec![]), listing(vec![copying]), create_never());
        let rds = ts::rds(&[&clusters, &own, &list, &create]);
        let target = ts::rds(&[&target_list]);

        let err = run(&rds, &target, &source_settings(), ts::started_run()).await.expect_err("overlap");
        assert_eq!(err.asl_name(), "Conflict", "{err}");
        assert!(err.to_string().contains("another run (run-0) is still in progress"), "{err}");
        assert!(err.to_string().contains("us-west-1"), "{err}");
        assert_eq!(create.num_calls(), 0);
    }

    /// Many target regions: another run's copy still copying in the second
    /// region blocks this run as one in the first would.
    #[tokio::test]
    async fn another_runs_copy_still_copying_in_any_target_region_blocks_this_one() {
        let mut copying = ts::copy("copying");
        copying.db_cluster_snapshot_identifier = Some("aurora-dr-orders-20261125150005".into());
        copying.tag_list = Some(ts::managed_tags("run-0"));
        let (clusters, own, list, target_list, eu_list, create) = (
            clusters_ok(true),
            own_missing(),
            listing(vec![]),
            listing(vec![]),
            listing(vec![copying]),
            create_never(),
        );
        let rds = ts::rds(&[&clusters, &own, &list, &create]);
        let target = ts::rds(&[&target_list]);
        let eu = [("eu-west-1".parse::<Region>().expect("region"), ts::rds(&[&eu_list]))];
        let settings = crate::settings::tests::many_targets_settings();
        let err = run_regions(&rds, &target, &eu, &settings, ts::started_run()).await.expect_err("overlap");
        assert_eq!(err.asl_name(), "Conflict", "{err}");
        assert!(err.to_string().contains("is copying in eu-west-1"), "{err}");
        assert_eq!((eu_list.num_calls(), create.num_calls()), (1, 0));
    }

    #[tokio::test]
    async fn finished_runs_unmanaged_snapshots_and_other_clusters_do_not_block() {
        let mut unmanaged = ts::snapshot("manual-backup", "orders", "creating");
        unmanaged.tag_list = Some(vec![ts::tag("owner", "dba")]);
        let mut other_cluster = other_run_snapshot("copying");
        other_cluster.tag_list = Some(vec![
            ts::tag(rds::TAG_MANAGED_BY, rds::MANAGED_BY),
            ts::tag(rds::TAG_RUN_ID, "run-9"),
            ts::tag(rds::TAG_SOURCE_CLUSTER, "billing"),
        ]);
        let mut own_run = other_run_snapshot("creating");
        own_run.tag_list = Some(ts::managed_tags("run-1"));
        let (clusters, own, list, target_list, create) = (
            clusters_ok(true),
            own_missing(),
            listing(vec![other_run_snapshot("available"), unmanaged, own_run]),
            listing(vec![other_cluster, ts::copy("available")]),
            create_ok(None),
        );
        let rds = ts::rds(&[&clusters, &own, &list, &create]);
        let target = ts::rds(&[&target_list]);

        run(&rds, &target, &source_settings(), ts::started_run()).await.expect("not blocked");
        assert_eq!(create.num_calls(), 1);
    }

    #[tokio::test]
    async fn the_overlap_check_follows_pagination() {
        let (clusters, own, create) = (clusters_ok(true), own_missing(), create_never());
        let pages = mock!(Client::describe_db_cluster_snapshots)
            .match_requests(|r| r.db_cluster_snapshot_identifier().is_none())
            .sequence()
            .output(|| {
                DescribeDbClusterSnapshotsOutput::builder()
                    .db_cluster_snapshots(other_run_snapshot("available"))
                    .marker("page-2")
                    .build()
            })
            .output(|| {
                DescribeDbClusterSnapshotsOutput::builder()
                    .db_cluster_snapshots(other_run_snapshot("creating"))
                    .build()
            })
            .build();
        let rds = ts::rds(&[&clusters, &own, &pages, &create]);
        let target = ts::rds(&[]);

        let err = run(&rds, &target, &source_settings(), ts::started_run()).await.expect_err("overlap");
        assert_eq!(err.asl_name(), "Conflict", "{err}");
        assert_eq!(pages.num_calls(), 2);
        assert_eq!(create.num_calls(), 0);
    }

    #[tokio::test]
    async fn snapshot_quota_is_retryable_quota_exceeded() {
        let (clusters, own, list) = (clusters_ok(true), own_missing(), listing(vec![]));
        let create = mock!(Client::create_db_cluster_snapshot).then_error(|| {
            CreateDBClusterSnapshotError::SnapshotQuotaExceededFault(
                SnapshotQuotaExceededFault::builder().meta(ts::meta("SnapshotQuotaExceeded")).build(),
            )
        });
        let rds = ts::rds(&[&clusters, &own, &list, &create]);
        let target = ts::rds(&[&list]);

        let err = run(&rds, &target, &source_settings(), ts::started_run()).await.expect_err("quota");
        assert_eq!(err.asl_name(), "QuotaExceeded", "{err}");
        assert!(err.is_retryable());
    }

    #[tokio::test]
    async fn throttling_and_5xx_are_retryable_and_create_nothing() {
        let cases = [
            (clusters_err("Throttling"), "Throttled"),
            (
                mock!(Client::describe_db_clusters).then_http_response(|| ts::http_status(503)),
                "ServiceUnavailable",
            ),
        ];
        for (clusters, want) in cases {
            let create = create_never();
            let rds = ts::rds(&[&clusters, &create]);
            let err = run(&rds, &ts::rds(&[]), &source_settings(), ts::started_run()).await.expect_err(want);
            assert_eq!(err.asl_name(), want, "{err}");
            assert!(err.is_retryable());
            assert_eq!(create.num_calls(), 0);
        }
    }

    #[tokio::test]
    async fn a_payload_for_another_cluster_or_with_a_failure_changes_nothing() {
        let mut other_cluster = ts::started_run();
        other_cluster.source_cluster_id = Some("billing".parse().expect("id"));
        let mut failed = ts::started_run();
        failed.failure = Some(crate::payload::Failure { error: "X".into(), cause: String::new() });
        let mut other_snapshot = ts::started_run();
        other_snapshot.source_snapshot_id = Some("aurora-dr-orders-20200101000000".parse().expect("id"));
        for input in [other_cluster, failed, other_snapshot] {
            let (clusters, create) = (clusters_ok(true), create_never());
            let rds = ts::rds(&[&clusters, &create]);
            let err = run(&rds, &ts::rds(&[]), &source_settings(), input).await.expect_err("bad input");
            assert_eq!(err.asl_name(), "InvalidInput", "{err}");
            assert_eq!(clusters.num_calls() + create.num_calls(), 0);
        }
    }

    #[tokio::test]
    async fn handle_rejects_bad_payloads_and_the_wrong_side_before_any_call() {
        let recorder = ts::Recorder::default();
        let err =
            handle(ts::source_context(&recorder), serde_json::json!({"createdAt": "2026-11-25T16:00:05Z"}))
                .await
                .expect_err("no runId");
        assert_eq!(err.asl_name(), "InvalidInput", "{err}");
        assert!(err.to_string().contains("runId"), "{err}");

        let err =
            handle(ts::target_context(&recorder), ts::started_run().to_value()).await.expect_err("side");
        assert_eq!(err.asl_name(), "InvalidConfig", "{err}");
        assert!(recorder.sent().is_empty(), "{:?}", recorder.sent());
    }

    #[tokio::test]
    async fn handle_snapshots_in_the_source_region_and_checks_copies_in_the_target_region() {
        let cluster = "<DBClusters><DBCluster><DBClusterIdentifier>orders</DBClusterIdentifier>\
            <Engine>aurora-postgresql</Engine><Status>available</Status><StorageEncrypted>true</StorageEncrypted>\
            </DBCluster></DBClusters>";
        let created =
            ts::snapshot_xml(SNAPSHOT_ID, ts::SOURCE_SNAPSHOT_ARN, "creating", Some(ts::KMS_KEY_ARN), None);
        let recorder = ts::Recorder::replying([
            ts::rds_reply("DescribeDBClusters", cluster),
            ts::rds_error_reply(404, "DBClusterSnapshotNotFoundFault"),
            ts::rds_reply("DescribeDBClusterSnapshots", "<DBClusterSnapshots/>"),
            ts::rds_reply("DescribeDBClusterSnapshots", "<DBClusterSnapshots/>"),
            ts::rds_reply("CreateDBClusterSnapshot", &created),
        ]);
        let out = handle(ts::source_context(&recorder), ts::started_run().to_value()).await.expect("created");
        let out = RunState::from_value(out).expect("payload");
        assert_eq!(out.source_snapshot_id.as_ref().map(|s| s.as_str()), Some(SNAPSHOT_ID));
        assert_eq!(out.source_snapshot_arn.as_ref().map(|s| s.as_str()), Some(ts::SOURCE_SNAPSHOT_ARN));
        assert_eq!(out.engine.as_deref(), Some("aurora-postgresql"));
        let sent: Vec<(bool, &str)> = recorder
            .sent()
            .iter()
            .map(|s| {
                let action =
                    ["DescribeDBClusters&", "DescribeDBClusterSnapshots&", "CreateDBClusterSnapshot&"]
                        .into_iter()
                        .find(|a| s.body.contains(&format!("Action={a}")))
                        .unwrap_or("?");
                (s.uri.contains("rds.us-west-2."), action)
            })
            .collect();
        assert_eq!(
            sent,
            [
                (true, "DescribeDBClusters&"),
                (true, "DescribeDBClusterSnapshots&"),
                (true, "DescribeDBClusterSnapshots&"),
                (false, "DescribeDBClusterSnapshots&"),
                (true, "CreateDBClusterSnapshot&"),
            ],
            "(in the source region, action) of each call"
        );
    }
}
