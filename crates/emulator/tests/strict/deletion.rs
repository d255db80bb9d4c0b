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
