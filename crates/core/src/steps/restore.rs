//! Restore (target account, target region): the temporary cluster from the
//! shared snapshot.
//!
//! Input: the [`RunState`] InvokeStepFunction started the target machine with
//! (after WaitForSharedSnapshot). Needs `targetSnapshotArn`.
//! Output: the same payload with `restoredClusterId` = `TEMP_CLUSTER_ID`.
//!
//! The cluster is restored under `TEMP_CLUSTER_ID` from the shared snapshot's
//! ARN with engine `ENGINE`, `KmsKeyId` = `TARGET_KMS_KEY_ARN` (the target
//! account's own key: RDS decrypts the shared snapshot with the source key,
//! which the source key policy lets this account use, and re-encrypts the
//! new cluster under the target key, so after the restore the DR cluster
//! never depends on the source account's key; a cluster that loses access
//! to its key becomes inaccessible: Aurora User Guide, "AWS KMS key
//! management",
//! <https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Overview.Encryption.Keys.html>;
//! RDS API Reference, RestoreDBClusterFromSnapshot, `KmsKeyId`), the
//! optional subnet group, security
//! groups and cluster parameter group, deletion protection as configured,
//! this run's tags ([`rds::run_tags`]) and `CopyTagsToSnapshot`, so the
//! final snapshot Terminate may keep of it carries the tags too and
//! retention prunes it (RDS API Reference, RestoreDBClusterFromSnapshot,
//! `CopyTagsToSnapshot`:
//! <https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RestoreDBClusterFromSnapshot.html>).
//! It restores with the snapshot's engine version and, for Serverless v2
//! (`instance_class = "db.serverless"`), the configured capacity range
//! (ServerlessV2ScalingConfiguration). The restore is asynchronous: the
//! machine's WaitForTempCluster polls until the cluster is `available`.
//!
//! The own copy (`TARGET_OWN_COPY`): when the payload holds
//! `ownSnapshotArn` (set by CopyToOwnAccount), the cluster is restored from
//! that copy in the target account, under the same key, so the snapshot too
//! depends on neither the share nor the source account's key
//! (`InvalidInput` if the copy is not this account's). Without
//! `TARGET_KMS_KEY_ARN` (possible only outside a function's environment,
//! which requires it) nothing is called: `InvalidConfig`.
//!
//! Adopting: before restoring, the cluster under `EXISTING_CLUSTER_ID` (if
//! any) must be one aurora-dr made, unless `ADOPT_EXISTING` is on
//! ([`super::adoption`]); otherwise `Conflict` and nothing is created, so a
//! hand-made DR cluster is never renamed away by a run nobody meant to
//! replace it. A restore test (its test cluster's own name) replaces nothing
//! and is not asked.
//!
//! Idempotency: a cluster already under the temporary id that carries this
//! run's tags is this step's own earlier work and is reused (also when the
//! restore call itself answers "already exists" after a lost response). A
//! cluster there that is not from this run is never touched: `Conflict`,
//! naming it.
//!
//! Errors: `InvalidInput` (payload lacks a field, snapshot ARN in another
//! region or not a cluster snapshot), `InvalidConfig` (`ENGINE` differs from
//! the snapshot's engine), `Conflict`, and the classified SDK errors
//! (`NotFound` for an unshared/deleted snapshot, `AccessDenied` for a KMS key
//! the account may not use, `Throttled`, ...). Every check that can fail
//! without AWS runs before the first call.

use std::sync::Arc;

use aws_sdk_rds::Client;
use aws_sdk_rds::types::{DbCluster, ServerlessV2ScalingConfiguration};
use serde_json::Value;

use crate::context::StepContext;
use crate::error::{DrError, DrResult};
use crate::ids::{Arn, ClusterId};
use crate::payload::{RunState, need};
use crate::rds;
use crate::settings::{TargetSettings, keys};
use crate::steps::adoption;
use crate::steps::input::{self, InputKind};

/// The state this module serves.
pub const STATE: &str = "Restore";

/// Restores the temporary cluster (or adopts this run's earlier restore).
pub async fn run(rds: &Client, settings: &TargetSettings, mut run: RunState) -> DrResult<RunState> {
    let (snapshot_arn, kms_key_arn) = restore_source(settings, &run)?;
    check(settings, &run, &snapshot_arn, &kms_key_arn)?;
    let temp = &settings.temp_cluster_id;

    match rds::find_cluster(rds, temp.as_str()).await? {
        Some(existing) => adopt(&existing, temp, &run)?,
        None => {
            // A restore test replaces nothing, so it may test next to a hand-made cluster.
            if !run.is_restore_test() {
                adoption::check_existing(rds, settings).await?;
            }
            tracing::info!(
                step = "restore",
                run_id = %run.run_id,
                cluster = %temp,
                snapshot = %snapshot_arn,
                kms_key = %kms_key_arn,
                "restoring the temporary cluster under the target account's key"
            );
            let engine_version =
                snapshot_engine_version(rds, &snapshot_arn, run.own_snapshot_arn.is_none()).await?;
            let mut req = rds
                .restore_db_cluster_from_snapshot()
                .db_cluster_identifier(temp.as_str())
                .snapshot_identifier(snapshot_arn.as_str())
                .engine(&settings.engine)
                .kms_key_id(kms_key_arn.as_str())
                .deletion_protection(settings.deletion_protection)
                .copy_tags_to_snapshot(true)
                .set_db_subnet_group_name(settings.db_subnet_group.clone())
                .set_db_cluster_parameter_group_name(settings.db_cluster_parameter_group.clone())
                .set_engine_version(engine_version)
                .set_serverless_v2_scaling_configuration(settings.serverless.map(|c| {
                    ServerlessV2ScalingConfiguration::builder()
                        .min_capacity(c.min_acus())
                        .max_capacity(c.max_acus())
                        .build()
                }))
                .set_tags(Some(rds::run_tags(&run)));
            if !settings.vpc_security_group_ids.is_empty() {
                req = req.set_vpc_security_group_ids(Some(settings.vpc_security_group_ids.clone()));
            }
            match req.send().await {
                Ok(_) => {}
                Err(e) => match DrError::from_sdk(&format!("RestoreDBClusterFromSnapshot {temp}"), e) {
                    // A retried call whose first attempt did restore: adopt it if it is ours.
                    conflict @ DrError::Conflict(_) => match rds::find_cluster(rds, temp.as_str()).await? {
                        Some(existing) => adopt(&existing, temp, &run)?,
                        None => return Err(conflict),
                    },
                    other => return Err(other),
                },
            }
        }
    }
    run.restored_cluster_id = Some(temp.clone());
    Ok(run)
}

/// The engine version of the snapshot restored: without EngineVersion, RDS
/// restores with the Region's default version of the engine, not the
/// snapshot's (RDS API Reference, RestoreDBClusterFromSnapshot,
/// `EngineVersion`:
/// <https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RestoreDBClusterFromSnapshot.html>).
/// A snapshot not found here is left to the restore call to report.
async fn snapshot_engine_version(rds: &Client, snapshot: &Arn, shared: bool) -> DrResult<Option<String>> {
    let found = rds::find_cluster_snapshot(rds, snapshot.as_str(), shared).await?;
    Ok(found.and_then(|s| s.engine_version().map(str::to_owned)))
}

/// The snapshot and key to restore with: this run's own copy when
/// CopyToOwnAccount made one, else the shared snapshot; always the target
/// account's key.
fn restore_source(settings: &TargetSettings, run: &RunState) -> DrResult<(Arn, Arn)> {
    let snapshot = match &run.own_snapshot_arn {
        Some(own) if own.account().as_ref() != Some(&settings.account_id) => {
            return Err(DrError::invalid_input(format!(
                "ownSnapshotArn {own} is not owned by this account {}",
                settings.account_id
            )));
        }
        Some(own) => own.clone(),
        None => need(&run.target_snapshot_arn, "targetSnapshotArn")?.clone(),
    };
    let key = settings.kms_key_arn.clone().ok_or_else(|| DrError::InvalidConfig {
        name: keys::TARGET_KMS_KEY_ARN.env.into(),
        problem: format!(
            "is not set: the DR cluster is restored from {snapshot} under a key of this account {}, \
             never under the source account's key",
            settings.account_id
        ),
    })?;
    Ok((snapshot, key))
}

/// Checks that need no AWS call.
fn check(settings: &TargetSettings, run: &RunState, snapshot: &Arn, kms_key: &Arn) -> DrResult<()> {
    snapshot
        .expect_kind("rds", "cluster-snapshot:")
        .map_err(|e| DrError::invalid_input(format!("targetSnapshotArn {e}")))?;
    if snapshot.region().as_ref() != Some(&settings.region) {
        return Err(DrError::invalid_input(format!(
            "targetSnapshotArn {snapshot} is not in this side's region {}",
            settings.region
        )));
    }
    kms_key.expect_kind("kms", "key/").map_err(|e| DrError::InvalidConfig {
        name: keys::TARGET_KMS_KEY_ARN.env.into(),
        problem: e.to_string(),
    })?;
    if let Some(engine) = &run.engine
        && engine != &settings.engine
    {
        return Err(DrError::InvalidConfig {
            name: keys::ENGINE.env.into(),
            problem: format!(
                "is {} but the snapshot of run {} is {engine}; a snapshot restores only with its own engine",
                settings.engine, run.run_id
            ),
        });
    }
    Ok(())
}

/// Accepts a cluster under the temporary id only when this run restored it.
fn adopt(cluster: &DbCluster, temp: &ClusterId, run: &RunState) -> DrResult<()> {
    if rds::is_from_run(cluster.tag_list(), run) {
        tracing::info!(
            step = "restore",
            run_id = %run.run_id,
            cluster = %temp,
            status = cluster.status().unwrap_or("unknown"),
            "temporary cluster already restored by this run; reusing it"
        );
        return Ok(());
    }
    let owner = rds::tag_value(cluster.tag_list(), rds::TAG_RUN_ID).unwrap_or("none");
    Err(DrError::Conflict(format!(
        "temporary cluster id {temp} is taken by a cluster that is not from run {} (its aurora-dr:run-id tag: \
         {owner}); nothing was changed: delete or rename that cluster, or set another TEMP_CLUSTER_ID",
        run.run_id
    )))
}

/// Lambda / local-engine entry: RunState in, RunState out.
pub async fn handle(ctx: Arc<StepContext>, input: Value) -> DrResult<Value> {
    input::expect(&input, InputKind::Run, STATE)?;
    let run = RunState::from_value(input)?;
    // Many clusters: the names of the payload's source cluster's pair.
    let (settings, rds) = super::target_rds(&ctx, &run)?;
    Ok(self::run(&rds, &settings, run).await?.to_value())
}

#[cfg(test)]
mod tests {
    use aws_sdk_rds::Client as Rds;
    use aws_sdk_rds::operation::describe_db_cluster_snapshots::DescribeDbClusterSnapshotsOutput;
    use aws_sdk_rds::operation::restore_db_cluster_from_snapshot::RestoreDbClusterFromSnapshotOutput;
    use aws_sdk_rds::types::DbClusterSnapshot;
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::steps::target_support::*;

    const SNAPSHOT_ARN: &str =
        "arn:aws:rds:us-west-1:111111111111:cluster-snapshot:aurora-dr-orders-20261125160005";
    /// The target account's key, which the DR cluster is restored under.
    const KMS_KEY: &str = crate::settings::tests::TARGET_KEY;

    /// A restore call carrying exactly what `settings` and `run` ask for.
    fn restore_ok(settings: &TargetSettings, run: &RunState) -> Rule {
        let (s, r) = (settings.clone(), run.clone());
        mock!(Rds::restore_db_cluster_from_snapshot)
            .match_requests(move |req| {
                let tags_ok = rds::is_from_run(req.tags(), &r) && req.tags().len() == rds::run_tags(&r).len();
                let sgs: Vec<String> = req.vpc_security_group_ids().to_vec();
                req.db_cluster_identifier() == Some(s.temp_cluster_id.as_str())
                    && req.snapshot_identifier() == Some(SNAPSHOT_ARN)
                    && req.engine() == Some(s.engine.as_str())
                    && req.kms_key_id() == Some(KMS_KEY)
                    && req.deletion_protection() == Some(s.deletion_protection)
                    && req.copy_tags_to_snapshot() == Some(true)
                    && req.engine_version() == Some(VERSION)
                    && req.serverless_v2_scaling_configuration().map(|c| (c.min_capacity(), c.max_capacity()))
                        == s.serverless.map(|c| (Some(c.min_acus()), Some(c.max_acus())))
                    && req.db_subnet_group_name() == s.db_subnet_group.as_deref()
                    && req.db_cluster_parameter_group_name() == s.db_cluster_parameter_group.as_deref()
                    && sgs == s.vpc_security_group_ids
                    && req.copy_tags_to_snapshot() == Some(true)
                    && tags_ok
            })
            .then_output(|| {
                RestoreDbClusterFromSnapshotOutput::builder()
                    .db_cluster(cluster("orders-dr-next", "creating", Vec::new(), &[]))
                    .build()
            })
    }

    /// The engine version of the snapshot restored.
    const VERSION: &str = "16.4";

    /// DescribeDBClusterSnapshots of the snapshot restored: engine version [`VERSION`].
    fn snapshot_version() -> Rule {
        mock!(Rds::describe_db_cluster_snapshots).then_output(|| {
            DescribeDbClusterSnapshotsOutput::builder()
                .db_cluster_snapshots(
                    DbClusterSnapshot::builder()
                        .db_cluster_snapshot_identifier("aurora-dr-orders-20261125160005")
                        .engine("aurora-postgresql")
                        .engine_version(VERSION)
                        .build(),
                )
                .build()
        })
    }

    fn restore_fails(fault: Fault) -> Rule {
        mock!(Rds::restore_db_cluster_from_snapshot).then_http_response(fault)
    }

    #[tokio::test]
    async fn restores_the_temp_cluster_with_the_configured_options() {
        let mut settings = settings();
        settings.db_subnet_group = Some("dr-subnets".into());
        settings.vpc_security_group_ids = vec!["sg-0a1b".into(), "sg-2c3d".into()];
        settings.db_cluster_parameter_group = Some("dr-params".into());
        settings.deletion_protection = true;
        let run = target_run();
        let describe = describe_cluster("orders-dr-next", None);
        let restore = restore_ok(&settings, &run);
        let existing = describe_cluster(E, None);
        let out =
            super::run(&rds(&[&describe, &existing, &snapshot_version(), &restore]), &settings, run.clone())
                .await
                .expect("restored");
        assert_eq!(restore.num_calls(), 1);
        assert_eq!(out.restored_cluster_id.as_ref().map(ClusterId::as_str), Some("orders-dr-next"));
        let mut want = run;
        want.restored_cluster_id = out.restored_cluster_id.clone();
        assert_eq!(out, want, "only restoredClusterId is added");
    }

    /// Serverless v2: the capacity range goes with the restore (RDS refuses a
    /// db.serverless instance in a cluster without it), and so does the
    /// snapshot's engine version.
    #[tokio::test]
    async fn a_serverless_target_restores_with_its_capacity_and_the_snapshots_version() {
        let mut settings = settings();
        settings.instance_class = "db.serverless".into();
        settings.serverless =
            Some(crate::settings::ServerlessCapacity { min_half_acus: 1, max_half_acus: 32 });
        restores_once_as_configured(&settings).await;
    }

    #[tokio::test]
    async fn defaults_leave_optional_placement_to_rds() {
        restores_once_as_configured(&settings()).await;
    }

    /// A first restore under `settings`: one call carrying what they ask for.
    async fn restores_once_as_configured(settings: &TargetSettings) {
        let run = target_run();
        let describe = describe_cluster("orders-dr-next", None);
        let restore = restore_ok(settings, &run);
        let existing = describe_cluster(E, Some(cluster(E, "available", earlier_run(), &[EI])));
        super::run(&rds(&[&describe, &existing, &snapshot_version(), &restore]), settings, run)
            .await
            .expect("restored");
        assert_eq!(restore.num_calls(), 1, "an earlier run's copy under the existing name is replaced");
    }

    #[tokio::test]
    async fn a_hand_made_cluster_under_the_existing_name_is_refused_unless_adopting() {
        let run = target_run();
        let hand_made = || describe_cluster(E, Some(cluster(E, "available", Vec::new(), &[EI])));
        let describe = describe_cluster("orders-dr-next", None);
        let existing = hand_made();
        let restore = restore_ok(&settings(), &run);
        let err = super::run(
            &rds(&[&describe, &existing, &snapshot_version(), &restore]),
            &settings(),
            run.clone(),
        )
        .await
        .expect_err("refused");
        assert_eq!(err.asl_name(), "Conflict", "{err}");
        assert!(err.to_string().contains("ADOPT_EXISTING"), "{err}");
        assert_eq!(restore.num_calls(), 0, "nothing restored");

        let mut adopting = settings();
        adopting.adopt_existing = true;
        let (describe, existing) = (describe_cluster("orders-dr-next", None), hand_made());
        let restore = restore_ok(&adopting, &run);
        super::run(&rds(&[&describe, &existing, &snapshot_version(), &restore]), &adopting, run)
            .await
            .expect("adopting");
        assert_eq!(restore.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_retry_reuses_this_runs_temp_cluster() {
        let run = target_run();
        let describe =
            describe_cluster("orders-dr-next", Some(cluster("orders-dr-next", "creating", ours(&run), &[])));
        let restore = restore_ok(&settings(), &run);
        let out = super::run(&rds(&[&describe, &snapshot_version(), &restore]), &settings(), run)
            .await
            .expect("reused");
        assert_eq!(restore.num_calls(), 0);
        assert_eq!(out.restored_cluster_id.as_ref().map(ClusterId::as_str), Some("orders-dr-next"));
    }

    #[tokio::test]
    async fn a_lost_response_then_already_exists_adopts_this_runs_cluster() {
        let run = target_run();
        let describe = describe_cluster_seq(
            "orders-dr-next",
            vec![None, Some(cluster("orders-dr-next", "creating", ours(&run), &[]))],
        );
        let restore = restore_fails(|| rds_fault(400, "DBClusterAlreadyExistsFault"));
        let existing = describe_cluster(E, None);
        let out = super::run(&rds(&[&describe, &existing, &snapshot_version(), &restore]), &settings(), run)
            .await
            .expect("adopted");
        assert_eq!(out.restored_cluster_id.as_ref().map(ClusterId::as_str), Some("orders-dr-next"));
        assert_eq!(describe.num_calls(), 2);
    }

    #[tokio::test]
    async fn already_exists_for_someone_elses_cluster_is_a_conflict() {
        let run = target_run();
        let describe = describe_cluster_seq(
            "orders-dr-next",
            vec![None, Some(cluster("orders-dr-next", "creating", earlier_run(), &[]))],
        );
        let restore = restore_fails(|| rds_fault(400, "DBClusterAlreadyExistsFault"));
        let existing = describe_cluster(E, None);
        let err = super::run(&rds(&[&describe, &existing, &snapshot_version(), &restore]), &settings(), run)
            .await
            .expect_err("conflict");
        assert_eq!(err.asl_name(), "Conflict", "{err}");
    }

    #[tokio::test]
    async fn a_temp_id_taken_by_another_cluster_is_a_conflict_and_changes_nothing() {
        let run = target_run();
        for tags in [earlier_run(), Vec::new()] {
            let describe =
                describe_cluster("orders-dr-next", Some(cluster("orders-dr-next", "available", tags, &[])));
            let restore = restore_ok(&settings(), &run);
            let err = super::run(&rds(&[&describe, &snapshot_version(), &restore]), &settings(), run.clone())
                .await
                .expect_err("conflict");
            assert_eq!(err.asl_name(), "Conflict");
            assert!(err.to_string().contains("orders-dr-next"), "{err}");
            assert_eq!(restore.num_calls(), 0);
        }
    }

    /// The DR cluster is under the target account's own key, never under the
    /// key the source account encrypted the shared snapshot with (the
    /// payload's `kmsKeyArn`): a cluster that loses access to its key
    /// becomes inaccessible, and the source account controls its key.
    #[tokio::test]
    async fn the_dr_cluster_is_restored_under_the_target_accounts_key() {
        let settings = settings();
        let run = target_run();
        let source_key = run.kms_key_arn.clone().expect("the source side's key");
        assert_eq!(source_key.account().as_ref(), Some(&settings.source_account_id));
        let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
        let record = std::sync::Arc::clone(&seen);
        let restore = mock!(Rds::restore_db_cluster_from_snapshot)
            .match_requests(move |req| {
                *record.lock().expect("lock") = req.kms_key_id().map(str::to_owned);
                true
            })
            .then_output(|| {
                RestoreDbClusterFromSnapshotOutput::builder()
                    .db_cluster(cluster("orders-dr-next", "creating", Vec::new(), &[]))
                    .build()
            });
        let (describe, existing) = (describe_cluster("orders-dr-next", None), describe_cluster(E, None));
        super::run(&rds(&[&describe, &existing, &snapshot_version(), &restore]), &settings, run)
            .await
            .expect("restored");
        let key: Arn = seen.lock().expect("lock").clone().expect("a KmsKeyId").parse().expect("a key ARN");
        assert_eq!(key.account().as_ref(), Some(&settings.account_id), "{key} is not the target account's");
        assert_eq!(key.region().as_ref(), Some(&settings.region), "{key}");
        assert_ne!(key, source_key);

        // Without the key nothing is called, whatever key the payload names.
        let mut without_key = settings.clone();
        without_key.kms_key_arn = None;
        let describe = describe_cluster("orders-dr-next", None);
        let err = super::run(&rds(&[&describe]), &without_key, target_run()).await.expect_err("no key");
        assert_eq!(err.asl_name(), "InvalidConfig");
        assert!(err.to_string().contains("TARGET_KMS_KEY_ARN"), "{err}");
        assert_eq!(describe.num_calls(), 0);
    }

    #[tokio::test]
    async fn with_an_own_copy_the_cluster_is_restored_from_it_with_the_target_key() {
        const OWN_KEY: &str = KMS_KEY;
        const OWN_ARN: &str =
            "arn:aws:rds:us-west-1:222222222222:cluster-snapshot:aurora-dr-orders-20261125160005";
        let mut settings = settings();
        settings.own_copy = true;
        let mut run = target_run();
        run.own_snapshot_id = Some("aurora-dr-orders-20261125160005".parse().expect("id"));
        run.own_snapshot_arn = Some(OWN_ARN.parse().expect("arn"));
        let describe = describe_cluster("orders-dr-next", None);
        let existing = describe_cluster(E, None);
        let restore = mock!(Rds::restore_db_cluster_from_snapshot)
            .match_requests(|req| {
                req.snapshot_identifier() == Some(OWN_ARN) && req.kms_key_id() == Some(OWN_KEY)
            })
            .then_output(|| {
                RestoreDbClusterFromSnapshotOutput::builder()
                    .db_cluster(cluster("orders-dr-next", "creating", Vec::new(), &[]))
                    .build()
            });
        let out =
            super::run(&rds(&[&describe, &existing, &snapshot_version(), &restore]), &settings, run.clone())
                .await
                .expect("restored");
        assert_eq!(restore.num_calls(), 1, "restored from the own copy with the target key");
        assert_eq!(out.restored_cluster_id.as_ref().map(ClusterId::as_str), Some("orders-dr-next"));

        // An own copy of another account is refused.
        run.own_snapshot_arn = Some(SNAPSHOT_ARN.parse().expect("arn"));
        let err = super::run(&rds(&[]), &settings, run).await.expect_err("account");
        assert_eq!(err.asl_name(), "InvalidInput");
        assert!(err.to_string().contains("ownSnapshotArn"), "{err}");
    }

    #[tokio::test]
    async fn a_missing_snapshot_arn_is_named_before_any_call() {
        let mut run = target_run();
        run.target_snapshot_arn = None;
        let err = super::run(&rds(&[]), &settings(), run).await.expect_err("targetSnapshotArn");
        assert_eq!(err.asl_name(), "InvalidInput");
        assert!(err.to_string().contains("targetSnapshotArn"), "{err}");
    }

    #[tokio::test]
    async fn inconsistent_input_is_refused_before_any_call() {
        let mut other_region = target_run();
        other_region.target_snapshot_arn =
            Some(crate::steps::test_support::snapshot_arn("eu-west-1", "111111111111"));
        let err = super::run(&rds(&[]), &settings(), other_region).await.expect_err("region");
        assert_eq!(err.asl_name(), "InvalidInput");
        assert!(err.to_string().contains("us-west-1"), "{err}");

        let mut not_a_snapshot = target_run();
        not_a_snapshot.target_snapshot_arn =
            Some("arn:aws:rds:us-west-1:111111111111:cluster:orders".parse().expect("arn"));
        let err = super::run(&rds(&[]), &settings(), not_a_snapshot).await.expect_err("kind");
        assert_eq!(err.asl_name(), "InvalidInput");

        let mut other_engine = target_run();
        other_engine.engine = Some("aurora-mysql".into());
        let err = super::run(&rds(&[]), &settings(), other_engine).await.expect_err("engine");
        assert_eq!(err.asl_name(), "InvalidConfig");
        assert!(err.to_string().contains("ENGINE"), "{err}");
    }

    #[tokio::test]
    async fn aws_errors_keep_their_names() {
        let cases: [(fn() -> _, &str); 4] = [
            (throttled, "Throttled"),
            (|| rds_fault(404, "DBClusterSnapshotNotFoundFault"), "NotFound"),
            (|| rds_fault(400, "KMSKeyNotAccessibleFault"), "AccessDenied"),
            (|| rds_fault(503, "ServiceUnavailable"), "ServiceUnavailable"),
        ];
        for (fault, want) in cases {
            let describe = describe_cluster("orders-dr-next", None);
            let existing = describe_cluster(E, None);
            let restore = restore_fails(fault);
            let err = super::run(
                &rds(&[&describe, &existing, &snapshot_version(), &restore]),
                &settings(),
                target_run(),
            )
            .await
            .expect_err(want);
            assert_eq!(err.asl_name(), want, "{err}");
        }
    }

    #[tokio::test]
    async fn throttled_lookup_is_throttled_and_restores_nothing() {
        let describe = mock!(Rds::describe_db_clusters).then_http_response(throttled);
        let restore = restore_ok(&settings(), &target_run());
        let err = super::run(&rds(&[&describe, &snapshot_version(), &restore]), &settings(), target_run())
            .await
            .expect_err("throttled");
        assert_eq!(err.asl_name(), "Throttled");
        assert!(err.is_retryable());
        assert_eq!(restore.num_calls(), 0);
    }

    /// A DescribeDBClusterSnapshots answer listing nothing.
    const NO_SNAPSHOT: &str = "<DescribeDBClusterSnapshotsResponse><DescribeDBClusterSnapshotsResult>\
        <DBClusterSnapshots></DBClusterSnapshots></DescribeDBClusterSnapshotsResult>\
        </DescribeDBClusterSnapshotsResponse>";

    #[tokio::test]
    async fn handle_calls_rds_in_the_target_region() {
        let restored = "<RestoreDBClusterFromSnapshotResponse><RestoreDBClusterFromSnapshotResult><DBCluster>\
            <DBClusterIdentifier>orders-dr-next</DBClusterIdentifier><Status>creating</Status></DBCluster>\
            </RestoreDBClusterFromSnapshotResult></RestoreDBClusterFromSnapshotResponse>";
        let not_found = "<ErrorResponse><Error><Code>DBClusterNotFoundFault</Code><Message>none</Message></Error>\
            </ErrorResponse>";
        // The temporary id is free, nothing serves under the existing name,
        // the snapshot's engine version, then the restore.
        let recorder =
            Recorder::replying([(404, not_found), (404, not_found), (200, NO_SNAPSHOT), (200, restored)]);
        let out =
            handle(recorder.target_elsewhere(settings()), target_run().to_value()).await.expect("handled");
        assert_eq!(out["restoredClusterId"], "orders-dr-next");
        let sent = recorder.sent();
        assert_eq!(sent.len(), 4);
        assert!(sent.iter().all(|s| s.uri.contains("us-west-1")), "{sent:?}");
        assert!(sent[1].body.split('&').any(|p| p == "DBClusterIdentifier=orders-dr"), "{}", sent[1].body);
        assert!(sent[2].body.contains("Action=DescribeDBClusterSnapshots"), "{}", sent[2].body);
        assert!(sent[3].body.contains("Action=RestoreDBClusterFromSnapshot"), "{}", sent[3].body);
    }

    #[tokio::test]
    async fn handle_restores_under_the_pair_of_the_payloads_source_cluster() {
        let mut fleet = settings();
        fleet.pairs[0].source_cluster_id = Some("orders".parse().expect("id"));
        fleet.pairs.push(crate::settings::ClusterPair {
            source_cluster_id: Some("billing".parse().expect("id")),
            existing_cluster_id: "billing-dr".parse().expect("id"),
            temp_cluster_id: "billing-dr-next".parse().expect("id"),
            existing_instance_id: "billing-dr-1".parse().expect("id"),
            temp_instance_id: "billing-dr-next-1".parse().expect("id"),
        });
        let mut run = target_run();
        run.source_cluster_id = Some("billing".parse().expect("id"));
        let not_found = "<ErrorResponse><Error><Code>DBClusterNotFoundFault</Code><Message>none</Message></Error>\
            </ErrorResponse>";
        let restored = "<RestoreDBClusterFromSnapshotResponse><RestoreDBClusterFromSnapshotResult><DBCluster>\
            <DBClusterIdentifier>billing-dr-next</DBClusterIdentifier><Status>creating</Status></DBCluster>\
            </RestoreDBClusterFromSnapshotResult></RestoreDBClusterFromSnapshotResponse>";
        let recorder =
            Recorder::replying([(404, not_found), (404, not_found), (200, NO_SNAPSHOT), (200, restored)]);
        let out = handle(recorder.target_elsewhere(fleet.clone()), run.to_value()).await.expect("handled");
        assert_eq!(out["restoredClusterId"], "billing-dr-next");
        let sent = recorder.sent();
        assert!(sent[1].body.split('&').any(|p| p == "DBClusterIdentifier=billing-dr"), "{}", sent[1].body);
        assert!(sent[3].body.contains("DBClusterIdentifier=billing-dr-next"), "{}", sent[3].body);

        // A source cluster without a pair changes nothing.
        run.source_cluster_id = Some("payroll".parse().expect("id"));
        let recorder = Recorder::default();
        let err = handle(recorder.target_elsewhere(fleet), run.to_value()).await.expect_err("no pair");
        assert_eq!(err.asl_name(), "InvalidInput");
        assert!(recorder.sent().is_empty());
    }

    #[tokio::test]
    async fn handle_rejects_a_bad_payload_without_calling_aws() {
        let recorder = Recorder::default();
        let mut input = target_run().to_value();
        input["restoredClusterID"] = "x".into();
        let err = handle(recorder.target_elsewhere(settings()), input).await.expect_err("invalid");
        assert_eq!(err.asl_name(), "InvalidInput");
        assert!(recorder.sent().is_empty());
    }
}
