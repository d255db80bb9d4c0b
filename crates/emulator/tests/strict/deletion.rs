//! compat/deletion.py: deletion protection (Aurora user guide, "Deleting
//! Aurora DB clusters and DB instances", "Deletion protection for Aurora
//! clusters").

use aurora_dr_emulator::Emulator;

use crate::*;

rds_behaviour!(
    /// DeleteDBCluster of a protected cluster is refused
    /// (InvalidParameterCombination, HTTP 400); its instances can still be
    /// deleted through the API, even one created with DeletionProtection
    /// (the setting does not apply to Aurora instances).
    protected_clusters_cannot_be_deleted_but_their_instances_can => protected_clusters_check
);

async fn protected_clusters_check(emulator: &Emulator) -> Check {
    let rds = rds(emulator, TARGET, TARGET_REGION).await;
    ok(
        "CreateDBCluster with DeletionProtection",
        rds.create_db_cluster()
            .db_cluster_identifier("dr")
            .engine(ENGINE)
            .master_username("dbadmin")
            .master_user_password("correct-horse-battery")
            .deletion_protection(true)
            .send()
            .await,
    )?;
    cluster_in(&rds, "dr", "available").await?;
    ok(
        "CreateDBInstance with DeletionProtection",
        rds.create_db_instance()
            .db_instance_identifier("dr-1")
            .db_cluster_identifier("dr")
            .engine(ENGINE)
            .db_instance_class("db.r6g.large")
            .deletion_protection(true)
            .send()
            .await,
    )?;
    instance_in(&rds, "dr-1", "available").await?;
    ok(
        "DeleteDBInstance of the last instance",
        rds.delete_db_instance().db_instance_identifier("dr-1").send().await,
    )?;
    let delete = rds.delete_db_cluster().db_cluster_identifier("dr").skip_final_snapshot(true).send().await;
    refused("DeleteDBCluster of a protected cluster", delete, "InvalidParameterCombination", 400)?;
    ok(
        "turn deletion protection off",
        rds.modify_db_cluster()
            .db_cluster_identifier("dr")
            .deletion_protection(false)
            .apply_immediately(true)
            .send()
            .await,
    )?;
    cluster_in(&rds, "dr", "available").await?;
    ok(
        "DeleteDBCluster",
        rds.delete_db_cluster().db_cluster_identifier("dr").skip_final_snapshot(true).send().await,
    )
    .map(drop)
}

rds_behaviour!(
    /// A name is free again once its cluster or instance is deleted or
    /// renamed away: a new one under it is created, whatever system
    /// snapshots the earlier cluster had (those are its own; Aurora user
    /// guide, "Retaining automated backups"; an Aurora instance has none of
    /// its own, "Overview of backing up and restoring an Aurora DB
    /// cluster"). Three rounds, so at least two fall in the same
    /// minute (stock moto names both clusters' automated snapshots
    /// rds:{id}-{minute} and refuses the second: DBClusterSnapshotAlreadyExistsFault).
    a_name_is_free_again_after_a_rename_or_a_delete => reused_names_check
);

async fn reused_names_check(emulator: &Emulator) -> Check {
    let rds = rds(emulator, TARGET, TARGET_REGION).await;
    for round in 1..=3 {
        // The drill's pattern: the temporary name restored, then renamed to the serving one.
        new_cluster(&rds, "dr-next", true).await?;
        new_instance(&rds, "dr-next", "dr-next-1").await?;
        ok(
            &format!("rename dr-next-1 to dr-{round}-1"),
            rds.modify_db_instance()
                .db_instance_identifier("dr-next-1")
                .new_db_instance_identifier(format!("dr-{round}-1"))
                .apply_immediately(true)
                .send()
                .await,
        )?;
        instance_in(&rds, &format!("dr-{round}-1"), "available").await?;
        ok(
            &format!("rename dr-next to dr-{round}"),
            rds.modify_db_cluster()
                .db_cluster_identifier("dr-next")
                .new_db_cluster_identifier(format!("dr-{round}"))
                .apply_immediately(true)
                .send()
                .await,
        )?;
        cluster_in(&rds, &format!("dr-{round}"), "available").await?;
    }
    // And a deleted name.
    new_cluster(&rds, "gone", true).await?;
    ok(
        "DeleteDBCluster gone",
        rds.delete_db_cluster().db_cluster_identifier("gone").skip_final_snapshot(true).send().await,
    )?;
    let mut polls = 0;
    while rds.describe_db_clusters().db_cluster_identifier("gone").send().await.is_ok() {
        polls += 1;
        if polls > MAX_POLLS {
            return Err("cluster gone was never deleted".into());
        }
    }
    new_cluster(&rds, "gone", true).await.map(drop)
}
