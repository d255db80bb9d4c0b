//! compat/transitions.py: renaming, modifying and deleting states and the
//! state faults RDS answers for resources in them.

use aurora_dr_emulator::Emulator;

use crate::*;

rds_behaviour!(
    /// A renamed cluster or instance is `renaming`; meanwhile RDS refuses
    /// ModifyDBCluster, DeleteDBCluster and CreateDBClusterSnapshot
    /// (InvalidDBClusterStateFault, HTTP 400) and ModifyDBInstance and
    /// DeleteDBInstance (InvalidDBInstanceState, HTTP 400).
    renaming_resources_refuse_operations => renaming_check
);

async fn renaming_check(emulator: &Emulator) -> Check {
    let rds = rds(emulator, TARGET, TARGET_REGION).await;
    new_cluster(&rds, "existing", false).await?;
    new_instance(&rds, "existing", "existing-1").await?;
    ok(
        "rename the cluster",
        rds.modify_db_cluster()
            .db_cluster_identifier("existing")
            .new_db_cluster_identifier("existing-old")
            .apply_immediately(true)
            .send()
            .await,
    )?;
    let status =
        cluster_in(&rds, "existing-old", "renaming").await.map_err(|e| format!("not renaming: {e}"))?;
    drop(status);
    let modify =
        rds.modify_db_cluster().db_cluster_identifier("existing-old").backup_retention_period(3).send().await;
    refused("ModifyDBCluster while renaming", modify, "InvalidDBClusterStateFault", 400)?;
    let delete =
        rds.delete_db_cluster().db_cluster_identifier("existing-old").skip_final_snapshot(true).send().await;
    refused("DeleteDBCluster while renaming", delete, "InvalidDBClusterStateFault", 400)?;
    let snapshot = rds
        .create_db_cluster_snapshot()
        .db_cluster_identifier("existing-old")
        .db_cluster_snapshot_identifier("s")
        .send()
        .await;
    refused("CreateDBClusterSnapshot while renaming", snapshot, "InvalidDBClusterStateFault", 400)?;
    ok(
        "rename the instance",
        rds.modify_db_instance()
            .db_instance_identifier("existing-1")
            .new_db_instance_identifier("existing-old-1")
            .apply_immediately(true)
            .send()
            .await,
    )?;
    let modify = rds
        .modify_db_instance()
        .db_instance_identifier("existing-old-1")
        .new_db_instance_identifier("other")
        .apply_immediately(true)
        .send()
        .await;
    refused("ModifyDBInstance while renaming", modify, "InvalidDBInstanceState", 400)?;
    let delete = rds.delete_db_instance().db_instance_identifier("existing-old-1").send().await;
    refused("DeleteDBInstance while renaming", delete, "InvalidDBInstanceState", 400)?;
    instance_in(&rds, "existing-old-1", "available").await?;
    cluster_in(&rds, "existing-old", "available").await.map(drop)
}

rds_behaviour!(
    /// A deleted instance or cluster is `deleting` for a while, then gone
    /// (DBInstanceNotFound / DBClusterNotFoundFault, HTTP 404); meanwhile its
    /// identifier stays taken (DBClusterAlreadyExistsFault) and a second
    /// delete is refused.
    deleted_resources_are_deleting_before_they_disappear => deleting_check
);

async fn deleting_check(emulator: &Emulator) -> Check {
    let rds = rds(emulator, TARGET, TARGET_REGION).await;
    new_cluster(&rds, "old", false).await?;
    new_instance(&rds, "old", "old-1").await?;
    let deleted =
        ok("DeleteDBInstance", rds.delete_db_instance().db_instance_identifier("old-1").send().await)?;
    let status = deleted.db_instance().and_then(|i| i.db_instance_status()).unwrap_or_default().to_owned();
    ensure!(status == "deleting", "DeleteDBInstance answered status {status:?}");
    instance_in(&rds, "old-1", "deleting").await?;
    let again = rds.delete_db_instance().db_instance_identifier("old-1").send().await;
    refused("DeleteDBInstance of a deleting instance", again, "InvalidDBInstanceState", 400)?;
    // A deleting instance no longer holds its cluster.
    let deleted = ok(
        "DeleteDBCluster",
        rds.delete_db_cluster().db_cluster_identifier("old").skip_final_snapshot(true).send().await,
    )?;
    ensure!(
        deleted.db_cluster().and_then(|c| c.status()) == Some("deleting"),
        "DeleteDBCluster answered {:?}",
        deleted.db_cluster().and_then(|c| c.status())
    );
    let reuse = rds
        .create_db_cluster()
        .db_cluster_identifier("old")
        .engine(ENGINE)
        .master_username("dbadmin")
        .master_user_password("correct-horse-battery")
        .send()
        .await;
    refused(
        "CreateDBCluster under a deleting cluster's identifier",
        reuse,
        "DBClusterAlreadyExistsFault",
        400,
    )?;
    let mut cluster_gone = None;
    let mut instance_gone = None;
    for _ in 0..MAX_POLLS {
        if cluster_gone.is_none() {
            cluster_gone = fault(&rds.describe_db_clusters().db_cluster_identifier("old").send().await);
        }
        if instance_gone.is_none() {
            instance_gone = fault(&rds.describe_db_instances().db_instance_identifier("old-1").send().await);
        }
    }
    let expected = |code: &str| Some((code.to_owned(), 404));
    ensure!(
        cluster_gone == expected("DBClusterNotFoundFault"),
        "the deleted cluster never went: {cluster_gone:?}"
    );
    ensure!(
        instance_gone == expected("DBInstanceNotFound"),
        "the deleted instance never went: {instance_gone:?}"
    );
    Ok(())
}

rds_behaviour!(
    /// A modified cluster is `modifying` for a while; another ModifyDBCluster
    /// meanwhile is InvalidDBClusterStateFault (HTTP 400).
    modified_clusters_are_modifying => modifying_check
);

async fn modifying_check(emulator: &Emulator) -> Check {
    let rds = rds(emulator, TARGET, TARGET_REGION).await;
    new_cluster(&rds, "dr", false).await?;
    let modified = ok(
        "ModifyDBCluster",
        rds.modify_db_cluster()
            .db_cluster_identifier("dr")
            .backup_retention_period(7)
            .apply_immediately(true)
            .send()
            .await,
    )?;
    let status = modified.db_cluster().and_then(|c| c.status()).unwrap_or_default().to_owned();
    ensure!(status == "modifying", "ModifyDBCluster answered status {status:?}");
    let again = rds.modify_db_cluster().db_cluster_identifier("dr").backup_retention_period(8).send().await;
    refused("ModifyDBCluster while modifying", again, "InvalidDBClusterStateFault", 400)?;
    cluster_in(&rds, "dr", "available").await.map(drop)
}

rds_behaviour!(
    /// An instance in `failed` (a status RDS does not bring it back from) is
    /// refused a rename (ModifyDBInstance: InvalidDBInstanceState, HTTP 400);
    /// deleting it without a final snapshot is allowed.
    failed_instances_refuse_renames_and_can_be_deleted => failed_instance_check
);

async fn failed_instance_check(emulator: &Emulator) -> Check {
    let control = emulator.control();
    let rule = aurora_dr_emulator::FaultRule::instance_status("broken-1", "failed", 0, Some(1));
    control.arm(rule).await.map_err(|e| format!("arm: {e}"))?;
    let rds = rds(emulator, TARGET, TARGET_REGION).await;
    new_cluster(&rds, "serving", false).await?;
    ok(
        "CreateDBInstance broken-1",
        rds.create_db_instance()
            .db_instance_identifier("broken-1")
            .db_cluster_identifier("serving")
            .engine(ENGINE)
            .db_instance_class("db.r6g.large")
            .send()
            .await,
    )?;
    instance_in(&rds, "broken-1", "failed").await?;
    let rename = rds
        .modify_db_instance()
        .db_instance_identifier("broken-1")
        .new_db_instance_identifier("broken-1-old")
        .apply_immediately(true)
        .send()
        .await;
    refused("ModifyDBInstance rename of a failed instance", rename, "InvalidDBInstanceState", 400)?;
    instance_in(&rds, "broken-1", "failed").await?;
    let deleted = ok(
        "DeleteDBInstance of a failed instance",
        rds.delete_db_instance().db_instance_identifier("broken-1").skip_final_snapshot(true).send().await,
    )?;
    let status = deleted.db_instance().and_then(|i| i.db_instance_status()).unwrap_or_default().to_owned();
    ensure!(status == "deleting", "DeleteDBInstance answered status {status:?}");
    Ok(())
}
