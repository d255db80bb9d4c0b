//! Two accounts and two regions are real: credentials from `sts:AssumeRole`
//! choose the account, and the target account sees only what was shared.

mod common;

use common::*;

#[tokio::test]
async fn assumed_role_credentials_choose_the_account() {
    let emulator = emulator().await;
    for account in [SOURCE, TARGET] {
        let sts = context(&emulator, account, SOURCE_REGION).await.sts();
        let me = sts.get_caller_identity().send().await.expect("caller identity");
        assert_eq!(me.account(), Some(account));
    }
    // Resources land in the caller's account and region only.
    let a = rds(&emulator, SOURCE, SOURCE_REGION).await;
    cluster(&a, "prod").await;
    let b = rds(&emulator, TARGET, SOURCE_REGION).await;
    assert!(b.describe_db_clusters().send().await.expect("describe").db_clusters().is_empty());
    let a_other_region = rds(&emulator, SOURCE, TARGET_REGION).await;
    assert!(a_other_region.describe_db_clusters().send().await.expect("describe").db_clusters().is_empty());
    let calls = emulator.control().calls().await.expect("calls");
    let create = calls.iter().find(|c| c.operation == "CreateDBCluster").expect("logged");
    assert_eq!((create.account.as_str(), create.region.as_str()), (SOURCE, SOURCE_REGION));
}

#[tokio::test]
async fn target_account_cannot_see_or_use_an_unshared_snapshot() {
    let emulator = emulator().await;
    let key = shared_key(&emulator, &[TARGET]).await;
    let arn = encrypted_copy(&emulator, &key, "dr-snap").await;
    let target = rds(&emulator, TARGET, TARGET_REGION).await;

    let shared =
        target.describe_db_cluster_snapshots().snapshot_type("shared").send().await.expect("describe");
    assert!(shared.db_cluster_snapshots().is_empty(), "nothing is shared yet");
    let by_arn = target
        .describe_db_cluster_snapshots()
        .db_cluster_snapshot_identifier(&arn)
        .include_shared(true)
        .send()
        .await;
    assert_eq!(code(by_arn), "DBClusterSnapshotNotFoundFault");
    let restore = target
        .restore_db_cluster_from_snapshot()
        .db_cluster_identifier("stolen")
        .snapshot_identifier(&arn)
        .engine(ENGINE)
        .send()
        .await;
    assert_eq!(code(restore), "DBClusterSnapshotNotFoundFault");
    let copy = target
        .copy_db_cluster_snapshot()
        .source_db_cluster_snapshot_identifier(&arn)
        .target_db_cluster_snapshot_identifier("stolen-copy")
        .send()
        .await;
    assert_eq!(code(copy), "DBClusterSnapshotNotFoundFault");
    // Nor may it change the owner's sharing.
    let reshare = target
        .modify_db_cluster_snapshot_attribute()
        .db_cluster_snapshot_identifier(&arn)
        .attribute_name("restore")
        .values_to_add(TARGET)
        .send()
        .await;
    assert_eq!(code(reshare), "DBClusterSnapshotNotFoundFault");
    assert!(target.describe_db_clusters().send().await.expect("describe").db_clusters().is_empty());
}

#[tokio::test]
async fn a_shared_snapshot_is_visible_only_to_the_account_it_is_shared_with() {
    let emulator = emulator().await;
    let key = shared_key(&emulator, &[TARGET]).await;
    let arn = encrypted_copy(&emulator, &key, "dr-snap").await;
    share(&emulator, "dr-snap", TARGET).await;

    let target = rds(&emulator, TARGET, TARGET_REGION).await;
    let shared =
        target.describe_db_cluster_snapshots().snapshot_type("shared").send().await.expect("describe");
    let arns: Vec<_> =
        shared.db_cluster_snapshots().iter().filter_map(|s| s.db_cluster_snapshot_arn()).collect();
    assert_eq!(arns, [arn.as_str()]);
    // By ARN with IncludeShared, but not without: shared snapshots are opt-in.
    let found = target
        .describe_db_cluster_snapshots()
        .db_cluster_snapshot_identifier(&arn)
        .include_shared(true)
        .send()
        .await
        .expect("describe shared by arn");
    assert_eq!(found.db_cluster_snapshots()[0].status(), Some("available"));
    let hidden = target.describe_db_cluster_snapshots().db_cluster_snapshot_identifier(&arn).send().await;
    assert_eq!(code(hidden), "DBClusterSnapshotNotFoundFault");
    let own = target.describe_db_cluster_snapshots().send().await.expect("describe own");
    assert!(own.db_cluster_snapshots().is_empty(), "a shared snapshot is not the target's own");

    // A third account sees nothing.
    let third = rds(&emulator, "333333333333", TARGET_REGION).await;
    let shared =
        third.describe_db_cluster_snapshots().snapshot_type("shared").send().await.expect("describe");
    assert!(shared.db_cluster_snapshots().is_empty());
}

#[tokio::test]
async fn emulators_do_not_share_state() {
    let (one, two) = tokio::join!(emulator(), emulator());
    assert_ne!(one.port(), two.port());
    cluster(&rds(&one, SOURCE, SOURCE_REGION).await, "only-in-one").await;
    let other = rds(&two, SOURCE, SOURCE_REGION).await;
    assert!(other.describe_db_clusters().send().await.expect("describe").db_clusters().is_empty());
}
