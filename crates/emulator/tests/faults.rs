//! Fault rules armed through the control endpoint, seen through the SDK.

mod common;

use aurora_dr_emulator::{EmulatorConfig, FaultRule};
use common::*;

async fn copy(dest: &aws_sdk_rds::Client, source_arn: &str, id: &str) -> Result<(), String> {
    dest.copy_db_cluster_snapshot()
        .source_db_cluster_snapshot_identifier(source_arn)
        .target_db_cluster_snapshot_identifier(id)
        .send()
        .await
        .map(drop)
        .map_err(|e| code::<(), _>(Err(e)))
}

async fn source_snapshot(emulator: &aurora_dr_emulator::Emulator) -> String {
    let source = rds(emulator, SOURCE, SOURCE_REGION).await;
    cluster(&source, "prod").await;
    snapshot(&source, "prod", "snap").await.db_cluster_snapshot_arn().expect("arn").to_owned()
}

#[tokio::test]
async fn next_copies_answer_snapshot_quota_exceeded() {
    let emulator = emulator().await;
    let arn = source_snapshot(&emulator).await;
    let id = emulator.control().arm(FaultRule::copy_quota_exceeded().times(2)).await.expect("arm");
    let dest = rds(&emulator, SOURCE, TARGET_REGION).await;
    assert_eq!(copy(&dest, &arn, "c1").await, Err("SnapshotQuotaExceeded".to_owned()));
    assert_eq!(copy(&dest, &arn, "c2").await, Err("SnapshotQuotaExceeded".to_owned()));
    assert_eq!(copy(&dest, &arn, "c3").await, Ok(()));
    let calls = emulator.control().calls().await.expect("calls");
    let copies: Vec<_> = calls.iter().filter(|c| c.operation == "CopyDBClusterSnapshot").collect();
    assert_eq!(copies.len(), 3, "not retried: the quota is not transient");
    assert_eq!(copies[0].fault, Some(id));
    assert_eq!(copies[0].params.get("TargetDBClusterSnapshotIdentifier").map(String::as_str), Some("c1"));
    assert_eq!((copies[2].status, copies[2].fault), (Some(200), None));
}

#[tokio::test]
async fn rules_match_request_parameters_by_glob() {
    let emulator = emulator().await;
    let arn = source_snapshot(&emulator).await;
    let rule = FaultRule::copy_quota_exceeded().matching("TargetDBClusterSnapshotIdentifier", "DR-*");
    emulator.control().arm(rule).await.expect("arm");
    let dest = rds(&emulator, SOURCE, TARGET_REGION).await;
    assert_eq!(copy(&dest, &arn, "other").await, Ok(()));
    assert_eq!(copy(&dest, &arn, "dr-1").await, Err("SnapshotQuotaExceeded".to_owned()));
    assert_eq!(copy(&dest, &arn, "dr-2").await, Err("SnapshotQuotaExceeded".to_owned()));
}

#[tokio::test]
async fn copy_quota_limits_concurrent_cross_region_copies() {
    let emulator = emulator().await;
    let arn = source_snapshot(&emulator).await;
    emulator.control().arm(FaultRule::copy_quota(2)).await.expect("arm");
    let dest = rds(&emulator, SOURCE, TARGET_REGION).await;
    assert_eq!(copy(&dest, &arn, "c1").await, Ok(()));
    assert_eq!(copy(&dest, &arn, "c2").await, Ok(()));
    assert_eq!(copy(&dest, &arn, "c3").await, Err("SnapshotQuotaExceeded".to_owned()));
    // Another destination account has its own quota.
    let other = rds(&emulator, TARGET, TARGET_REGION).await;
    let own = other
        .copy_db_cluster_snapshot()
        .source_db_cluster_snapshot_identifier(&arn)
        .target_db_cluster_snapshot_identifier("x")
        .send()
        .await;
    assert_eq!(code(own), "DBClusterSnapshotNotFoundFault", "not shared, so not the quota");
    wait_snapshot(&dest, "c1", "available").await;
    assert_eq!(copy(&dest, &arn, "c3").await, Ok(()), "a finished copy frees its slot");
}

#[tokio::test]
async fn throttling_twice_is_retried_by_the_sdk() {
    let emulator = emulator().await;
    let source = rds(&emulator, SOURCE, SOURCE_REGION).await;
    emulator
        .control()
        .arm(FaultRule::throttle("rds", "DescribeDBClusterSnapshots").times(2))
        .await
        .expect("arm");
    let out = source.describe_db_cluster_snapshots().send().await.expect("third attempt succeeds");
    assert!(out.db_cluster_snapshots().is_empty());
    let calls = emulator.control().calls().await.expect("calls");
    let outcomes: Vec<_> = calls
        .iter()
        .filter(|c| c.operation == "DescribeDBClusterSnapshots")
        .map(|c| (c.status, c.error_code.as_deref()))
        .collect();
    assert_eq!(
        outcomes,
        [(Some(400), Some("Throttling")), (Some(400), Some("Throttling")), (Some(200), None)]
    );
}

#[tokio::test]
async fn endless_throttling_surfaces_as_throttling() {
    let emulator = emulator().await;
    let source = rds(&emulator, SOURCE, SOURCE_REGION).await;
    emulator.control().arm(FaultRule::throttle("rds", "DescribeDBClusters")).await.expect("arm");
    assert_eq!(code(source.describe_db_clusters().send().await), "Throttling");
    emulator.control().reset_faults().await.expect("reset");
    source.describe_db_clusters().send().await.expect("works after reset");
}

#[tokio::test]
async fn server_errors_are_transient() {
    let emulator = emulator().await;
    let kms = context(&emulator, SOURCE, TARGET_REGION).await.kms();
    emulator.control().arm(FaultRule::unavailable("kms", "CreateKey").times(1)).await.expect("arm");
    kms.create_key().send().await.expect("retried after a 503");
    emulator
        .control()
        .arm(FaultRule::error("kms", "ListKeys", "KMSInternalException").status(500))
        .await
        .expect("arm");
    let failed = kms.list_keys().send().await;
    assert_eq!(code(failed), "KMSInternalException");
    let calls = emulator.control().calls().await.expect("calls");
    assert_eq!(calls.iter().filter(|c| c.operation == "ListKeys").count(), 3, "500 is retried");
}

#[tokio::test]
async fn a_snapshot_can_end_in_failed() {
    let emulator =
        emulator_with(EmulatorConfig::default().with_fault(FaultRule::failed_snapshot("doomed"))).await;
    let source = rds(&emulator, SOURCE, SOURCE_REGION).await;
    cluster(&source, "prod").await;
    let created = source
        .create_db_cluster_snapshot()
        .db_cluster_identifier("prod")
        .db_cluster_snapshot_identifier("doomed")
        .send()
        .await
        .expect("create");
    assert_eq!(created.db_cluster_snapshot().and_then(|s| s.status()), Some("creating"));
    let failed = wait_snapshot(&source, "doomed", "failed").await;
    let dest = rds(&emulator, SOURCE, TARGET_REGION).await;
    let result = copy(&dest, failed.db_cluster_snapshot_arn().expect("arn"), "copy").await;
    assert_eq!(result, Err("InvalidDBClusterSnapshotStateFault".to_owned()));
    // Other snapshots are unaffected.
    snapshot(&source, "prod", "fine").await;
}

#[tokio::test]
async fn an_existing_snapshot_can_be_failed() {
    let emulator = emulator().await;
    let source = rds(&emulator, SOURCE, SOURCE_REGION).await;
    cluster(&source, "prod").await;
    snapshot(&source, "prod", "snap").await;
    emulator.control().arm(FaultRule::failed_snapshot("snap")).await.expect("arm");
    wait_snapshot(&source, "snap", "failed").await;
}

#[tokio::test]
async fn a_rename_fails_once() {
    let emulator = emulator().await;
    let target = rds(&emulator, TARGET, TARGET_REGION).await;
    cluster(&target, "existing").await;
    emulator.control().arm(FaultRule::rename_fails(Some("existing"))).await.expect("arm");
    // Not a rename: passes.
    target
        .modify_db_cluster()
        .db_cluster_identifier("existing")
        .backup_retention_period(3)
        .send()
        .await
        .expect("plain modify");
    wait_cluster(&target, "existing", "available").await;
    let rename = || {
        target
            .modify_db_cluster()
            .db_cluster_identifier("existing")
            .new_db_cluster_identifier("existing-old")
            .apply_immediately(true)
            .send()
    };
    assert_eq!(code(rename().await), "InvalidDBClusterStateFault");
    wait_cluster(&target, "existing", "available").await;
    rename().await.expect("the second rename works");
    wait_cluster(&target, "existing-old", "available").await;
}

#[tokio::test]
async fn rules_are_scoped_to_account_and_region() {
    let emulator = emulator().await;
    let control = emulator.control();
    control
        .arm(
            FaultRule::error("rds", "DescribeDBClusters", "AccessDenied")
                .in_account(TARGET)
                .in_region(TARGET_REGION),
        )
        .await
        .expect("arm");
    let target_here = rds(&emulator, TARGET, TARGET_REGION).await;
    let target_elsewhere = rds(&emulator, TARGET, SOURCE_REGION).await;
    let source_here = rds(&emulator, SOURCE, TARGET_REGION).await;
    assert_eq!(code(target_here.describe_db_clusters().send().await), "AccessDenied");
    target_elsewhere.describe_db_clusters().send().await.expect("other region");
    source_here.describe_db_clusters().send().await.expect("other account");
    let rules = control.faults().await.expect("faults");
    assert_eq!(rules[0]["hits"], 1);
    control.reset_faults().await.expect("reset");
    assert!(control.faults().await.expect("faults").is_empty());
    control.clear_calls().await.expect("clear");
    assert!(control.calls().await.expect("calls").is_empty());
}

/// A crash between mutations: the snapshot is created, its caller sees a
/// 500; the SDK's retry then finds the snapshot already there.
#[tokio::test]
async fn a_lost_response_applies_the_change() {
    let emulator = emulator().await;
    let source = rds(&emulator, SOURCE, SOURCE_REGION).await;
    cluster(&source, "prod").await;
    let id = emulator
        .control()
        .arm(FaultRule::lost_response("rds", "CreateDBClusterSnapshot").times(1))
        .await
        .expect("arm");
    let created = source
        .create_db_cluster_snapshot()
        .db_cluster_identifier("prod")
        .db_cluster_snapshot_identifier("snap")
        .send()
        .await;
    assert_eq!(code(created), "DBClusterSnapshotAlreadyExistsFault", "the retry meets the applied change");
    let calls = emulator.control().calls().await.expect("calls");
    let creates: Vec<_> = calls.iter().filter(|c| c.operation == "CreateDBClusterSnapshot").collect();
    assert_eq!((creates[0].status, creates[0].fault, creates[0].applied), (Some(500), Some(id), true));
    wait_snapshot(&source, "snap", "available").await;
}

/// A stuck snapshot stays `creating`.
#[tokio::test]
async fn a_snapshot_can_be_stuck() {
    let emulator =
        emulator_with(EmulatorConfig::default().with_fault(FaultRule::stuck_snapshot("stuck-*"))).await;
    let source = rds(&emulator, SOURCE, SOURCE_REGION).await;
    cluster(&source, "prod").await;
    source
        .create_db_cluster_snapshot()
        .db_cluster_identifier("prod")
        .db_cluster_snapshot_identifier("stuck-1")
        .send()
        .await
        .expect("create");
    for _ in 0..10 {
        let out = source
            .describe_db_cluster_snapshots()
            .db_cluster_snapshot_identifier("stuck-1")
            .send()
            .await
            .expect("describe");
        assert_eq!(out.db_cluster_snapshots()[0].status(), Some("creating"));
    }
    snapshot(&source, "prod", "fine").await;
}

/// An instance rename fails once; the next succeeds.
#[tokio::test]
async fn an_instance_rename_fails_once() {
    let emulator = emulator().await;
    let target = rds(&emulator, TARGET, TARGET_REGION).await;
    cluster(&target, "existing").await;
    instance(&target, "existing", "existing-1").await;
    emulator.control().arm(FaultRule::instance_rename_fails(Some("existing-1"))).await.expect("arm");
    let rename = || {
        target
            .modify_db_instance()
            .db_instance_identifier("existing-1")
            .new_db_instance_identifier("existing-old-1")
            .apply_immediately(true)
            .send()
    };
    assert_eq!(code(rename().await), "InvalidDBInstanceState");
    wait_instance(&target, "existing-1", "available").await;
    rename().await.expect("the second rename works");
    wait_instance(&target, "existing-old-1", "available").await;
}
