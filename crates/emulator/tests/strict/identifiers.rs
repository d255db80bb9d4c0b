//! compat/identifiers.py: RDS identifier rules (API reference, the
//! DBClusterIdentifier, DBInstanceIdentifier and DBClusterSnapshotIdentifier
//! constraints of each operation).

use aurora_dr_emulator::Emulator;

use crate::*;

rds_behaviour!(
    /// 1-63 letters, digits or hyphens, first a letter, no `--`, no trailing
    /// hyphen, on every operation that names a cluster, instance or cluster
    /// snapshot: InvalidParameterValue (HTTP 400), nothing created.
    identifiers_follow_rds_rules => identifiers_follow_rds_rules_check
);

async fn identifiers_follow_rds_rules_check(emulator: &Emulator) -> Check {
    let rds = rds(emulator, SOURCE, SOURCE_REGION).await;
    let long = format!("a{}", "b".repeat(63));
    let longest = format!("a{}", "b".repeat(62));
    for bad in [long.as_str(), "a--b", "1abc", "abc-", "ab_c"] {
        let created = rds
            .create_db_cluster()
            .db_cluster_identifier(bad)
            .engine(ENGINE)
            .master_username("dbadmin")
            .master_user_password("correct-horse-battery")
            .send()
            .await;
        refused(&format!("CreateDBCluster {bad:?}"), created, "InvalidParameterValue", 400)?;
    }
    new_cluster(&rds, &longest, false).await?;
    new_instance(&rds, &longest, "inst").await?;
    let snap = new_snapshot(&rds, &longest, "snap").await?;

    let instance = rds
        .create_db_instance()
        .db_instance_identifier(&long)
        .db_cluster_identifier(&longest)
        .engine(ENGINE)
        .db_instance_class("db.r6g.large")
        .send()
        .await;
    refused("CreateDBInstance, 64 characters", instance, "InvalidParameterValue", 400)?;
    let renamed = rds
        .modify_db_cluster()
        .db_cluster_identifier(&longest)
        .new_db_cluster_identifier(&long)
        .apply_immediately(true)
        .send()
        .await;
    refused("ModifyDBCluster NewDBClusterIdentifier", renamed, "InvalidParameterValue", 400)?;
    let renamed = rds
        .modify_db_instance()
        .db_instance_identifier("inst")
        .new_db_instance_identifier("inst--2")
        .apply_immediately(true)
        .send()
        .await;
    refused("ModifyDBInstance NewDBInstanceIdentifier", renamed, "InvalidParameterValue", 400)?;
    let snapshot = rds
        .create_db_cluster_snapshot()
        .db_cluster_identifier(&longest)
        .db_cluster_snapshot_identifier(&long)
        .send()
        .await;
    refused("CreateDBClusterSnapshot, 64 characters", snapshot, "InvalidParameterValue", 400)?;
    let copy = rds
        .copy_db_cluster_snapshot()
        .source_db_cluster_snapshot_identifier(snap.db_cluster_snapshot_identifier().unwrap_or("snap"))
        .target_db_cluster_snapshot_identifier(&long)
        .send()
        .await;
    refused("CopyDBClusterSnapshot, 64 characters", copy, "InvalidParameterValue", 400)?;
    let restore = rds
        .restore_db_cluster_from_snapshot()
        .db_cluster_identifier(&long)
        .snapshot_identifier("snap")
        .engine(ENGINE)
        .send()
        .await;
    refused("RestoreDBClusterFromSnapshot, 64 characters", restore, "InvalidParameterValue", 400)?;
    // The final snapshot is a cluster snapshot: 63 characters at most.
    ok("DeleteDBInstance", rds.delete_db_instance().db_instance_identifier("inst").send().await)?;
    let delete = rds
        .delete_db_cluster()
        .db_cluster_identifier(&longest)
        .final_db_snapshot_identifier(format!("{longest}-final"))
        .send()
        .await;
    refused("DeleteDBCluster FinalDBSnapshotIdentifier", delete, "InvalidParameterValue", 400)?;
    let clusters = ok("DescribeDBClusters", rds.describe_db_clusters().send().await)?;
    ensure!(
        clusters.db_clusters().len() == 1,
        "refused calls created clusters: {:?}",
        clusters.db_clusters()
    );
    Ok(())
}

rds_behaviour!(
    /// Creating a cluster under an identifier in use is
    /// DBClusterAlreadyExistsFault (HTTP 400); the existing cluster stays.
    a_cluster_identifier_in_use_is_refused => a_cluster_identifier_in_use_is_refused_check
);

async fn a_cluster_identifier_in_use_is_refused_check(emulator: &Emulator) -> Check {
    let rds = rds(emulator, SOURCE, SOURCE_REGION).await;
    let first = new_cluster(&rds, "prod", true).await?;
    let again = rds
        .create_db_cluster()
        .db_cluster_identifier("prod")
        .engine(ENGINE)
        .master_username("other")
        .master_user_password("correct-horse-battery")
        .send()
        .await;
    refused("CreateDBCluster prod again", again, "DBClusterAlreadyExistsFault", 400)?;
    let now = cluster_in(&rds, "prod", "available").await?;
    ensure!(
        now.db_cluster_resource_id() == first.db_cluster_resource_id(),
        "the existing cluster was replaced"
    );
    Ok(())
}
