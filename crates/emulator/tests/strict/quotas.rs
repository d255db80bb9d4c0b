//! compat/quotas.py: RDS quotas per account and Region (Aurora user guide,
//! "Quotas and constraints for Amazon Aurora"; "Copying a DB cluster
//! snapshot"; "Sharing a DB cluster snapshot") and DescribeAccountAttributes.

use aurora_dr_emulator::{Emulator, EmulatorConfig, Quotas};

use crate::*;

async fn account_quota(rds: &aws_sdk_rds::Client, name: &str) -> Result<(i64, i64), String> {
    let out = ok("DescribeAccountAttributes", rds.describe_account_attributes().send().await)?;
    let quota = out
        .account_quotas()
        .iter()
        .find(|q| q.account_quota_name() == Some(name))
        .ok_or_else(|| format!("no AccountQuota {name}"))?;
    Ok((quota.used().unwrap_or(-1), quota.max().unwrap_or(-1)))
}

rds_behaviour!(
    /// 100 manual cluster snapshots per account and Region; the next is
    /// SnapshotQuotaExceeded (HTTP 400), automated snapshots do not count,
    /// and DescribeAccountAttributes reports ManualClusterSnapshots.
    manual_cluster_snapshots_are_limited_to_100 => manual_snapshots_check
);

async fn manual_snapshots_check(emulator: &Emulator) -> Check {
    let rds = rds(emulator, SOURCE, SOURCE_REGION).await;
    new_cluster(&rds, "prod", false).await?;
    for n in 0..100 {
        ok(
            &format!("snapshot {n}"),
            rds.create_db_cluster_snapshot()
                .db_cluster_identifier("prod")
                .db_cluster_snapshot_identifier(format!("snap-{n}"))
                .send()
                .await,
        )?;
    }
    let over = rds
        .create_db_cluster_snapshot()
        .db_cluster_identifier("prod")
        .db_cluster_snapshot_identifier("snap-100")
        .send()
        .await;
    refused("the 101st manual snapshot", over, "SnapshotQuotaExceeded", 400)?;
    let (used, max) = account_quota(&rds, "ManualClusterSnapshots").await?;
    ensure!((used, max) == (100, 100), "ManualClusterSnapshots used {used} max {max}");
    ok("delete one", rds.delete_db_cluster_snapshot().db_cluster_snapshot_identifier("snap-0").send().await)?;
    ok(
        "a snapshot once there is room",
        rds.create_db_cluster_snapshot()
            .db_cluster_identifier("prod")
            .db_cluster_snapshot_identifier("snap-100")
            .send()
            .await,
    )
    .map(drop)
}

rds_behaviour!(
    /// 40 DB clusters and 40 DB instances per account and Region: the next
    /// cluster or restore is DBClusterQuotaExceededFault (HTTP 403), the next
    /// instance InstanceQuotaExceeded (HTTP 400); DescribeAccountAttributes
    /// reports DBClusters and DBInstances.
    clusters_and_instances_are_limited_to_40 => clusters_and_instances_check
);

async fn clusters_and_instances_check(emulator: &Emulator) -> Check {
    let rds = rds(emulator, TARGET, TARGET_REGION).await;
    let create = |id: String| {
        rds.create_db_cluster()
            .db_cluster_identifier(id)
            .engine(ENGINE)
            .master_username("dbadmin")
            .master_user_password("correct-horse-battery")
            .send()
    };
    for n in 0..40 {
        ok(&format!("cluster {n}"), create(format!("c{n}")).await)?;
    }
    cluster_in(&rds, "c0", "available").await?;
    new_snapshot(&rds, "c0", "snap").await?;
    refused("the 41st cluster", create("c40".to_owned()).await, "DBClusterQuotaExceededFault", 403)?;
    let restore = rds
        .restore_db_cluster_from_snapshot()
        .db_cluster_identifier("c40")
        .snapshot_identifier("snap")
        .engine(ENGINE)
        .send()
        .await;
    refused("a restore past the quota", restore, "DBClusterQuotaExceededFault", 403)?;
    let (used, max) = account_quota(&rds, "DBClusters").await?;
    ensure!((used, max) == (40, 40), "DBClusters used {used} max {max}");
    for n in 0..40 {
        ok(
            &format!("instance {n}"),
            rds.create_db_instance()
                .db_instance_identifier(format!("i{n}"))
                .db_cluster_identifier("c0")
                .engine(ENGINE)
                .db_instance_class("db.r6g.large")
                .send()
                .await,
        )?;
    }
    let over = rds
        .create_db_instance()
        .db_instance_identifier("i40")
        .db_cluster_identifier("c1")
        .engine(ENGINE)
        .db_instance_class("db.r6g.large")
        .send()
        .await;
    refused("the 41st instance", over, "InstanceQuotaExceeded", 400)?;
    let (used, max) = account_quota(&rds, "DBInstances").await?;
    ensure!((used, max) == (40, 40), "DBInstances used {used} max {max}");
    Ok(())
}

rds_behaviour!(
    /// At most five cross-Region copies in progress per destination Region
    /// and account; the sixth is SnapshotQuotaExceeded (HTTP 400) until one
    /// finishes.
    five_cross_region_copies_at_a_time => five_copies_check
);

async fn five_copies_check(emulator: &Emulator) -> Check {
    let source = rds(emulator, SOURCE, SOURCE_REGION).await;
    new_cluster(&source, "prod", false).await?;
    let snap = new_snapshot(&source, "prod", "snap").await?;
    let arn = snap.db_cluster_snapshot_arn().ok_or("no ARN")?;
    let dest = rds(emulator, SOURCE, TARGET_REGION).await;
    let copy = |id: String| {
        dest.copy_db_cluster_snapshot()
            .source_db_cluster_snapshot_identifier(arn)
            .target_db_cluster_snapshot_identifier(id)
            .send()
    };
    for n in 0..5 {
        ok(&format!("copy {n}"), copy(format!("copy-{n}")).await)?;
    }
    refused("the sixth copy in progress", copy("copy-5".to_owned()).await, "SnapshotQuotaExceeded", 400)?;
    snapshot_in(&dest, "copy-0", "available").await?;
    ok("a copy once one has finished", copy("copy-5".to_owned()).await).map(drop)
}

/// A manual snapshot is shared with at most 20 accounts; the 21st is
/// SharedSnapshotQuotaExceeded (HTTP 400). moto enforces this limit itself
/// (so this runs on our emulator only); the layer makes it configurable.
#[tokio::test]
async fn a_snapshot_is_shared_with_at_most_20_accounts() {
    for (quotas, room) in
        [(Quotas::default(), 20), (Quotas { accounts_per_share: 2, ..Quotas::default() }, 2)]
    {
        let emulator = emulator_with(EmulatorConfig::default().with_quotas(quotas)).await;
        let rds = rds(&emulator, SOURCE, SOURCE_REGION).await;
        new_cluster(&rds, "prod", false).await.expect("cluster");
        new_snapshot(&rds, "prod", "snap").await.expect("snapshot");
        let accounts: Vec<String> = (0..=room).map(|n| format!("{:012}", 300_000_000_000_u64 + n)).collect();
        let share = |values: &[String]| {
            rds.modify_db_cluster_snapshot_attribute()
                .db_cluster_snapshot_identifier("snap")
                .attribute_name("restore")
                .set_values_to_add(Some(values.to_vec()))
                .send()
        };
        share(&accounts[..room as usize]).await.expect("share with the quota's accounts");
        let over = share(&accounts[room as usize..]).await;
        assert_eq!(fault(&over), Some(("SharedSnapshotQuotaExceeded".to_owned(), 400)), "quota {room}");
    }
}
