//! compat/restore.py and compat/serverless.py: what a restore takes from the
//! snapshot, and Serverless v2 capacity.

use aurora_dr_emulator::Emulator;
use aws_sdk_rds::types::{ServerlessV2ScalingConfiguration, Tag};

use crate::*;

fn capacity() -> ServerlessV2ScalingConfiguration {
    ServerlessV2ScalingConfiguration::builder().min_capacity(0.5).max_capacity(4.0).build()
}

rds_behaviour!(
    /// A db.serverless instance needs the cluster's
    /// ServerlessV2ScalingConfiguration (InvalidDBClusterStateFault, HTTP 400).
    serverless_instances_need_a_capacity_range => serverless_instances_check
);

async fn serverless_instances_check(emulator: &Emulator) -> Check {
    let rds = rds(emulator, TARGET, TARGET_REGION).await;
    new_cluster(&rds, "bare", false).await?;
    let serverless = |cluster: &'static str, id: &'static str| {
        rds.create_db_instance()
            .db_instance_identifier(id)
            .db_cluster_identifier(cluster)
            .engine(ENGINE)
            .db_instance_class("db.serverless")
            .send()
    };
    refused(
        "db.serverless without a capacity range",
        serverless("bare", "bare-1").await,
        "InvalidDBClusterStateFault",
        400,
    )?;
    ok(
        "CreateDBCluster with a capacity range",
        rds.create_db_cluster()
            .db_cluster_identifier("scaled")
            .engine(ENGINE)
            .master_username("dbadmin")
            .master_user_password("correct-horse-battery")
            .serverless_v2_scaling_configuration(capacity())
            .send()
            .await,
    )?;
    cluster_in(&rds, "scaled", "available").await?;
    ok("db.serverless with a capacity range", serverless("scaled", "scaled-1").await).map(drop)
}

rds_behaviour!(
    /// RestoreDBClusterFromSnapshot takes what the snapshot holds (engine,
    /// encryption and key, port, master user) and the request, not the
    /// source cluster's settings: no deletion protection, scaling
    /// configuration, tags or copy-tags setting unless asked, the Region's
    /// default engine version unless given, its own resource id and
    /// endpoint; a KmsKeyId re-encrypts it.
    restores_take_only_what_the_snapshot_holds => restores_check
);

async fn restores_check(emulator: &Emulator) -> Check {
    let rds = rds(emulator, TARGET, TARGET_REGION).await;
    ok(
        "CreateDBCluster with settings",
        rds.create_db_cluster()
            .db_cluster_identifier("source")
            .engine(ENGINE)
            .engine_version("15.4")
            .port(5433)
            .master_username("dbadmin")
            .master_user_password("correct-horse-battery")
            .storage_encrypted(true)
            .deletion_protection(true)
            .copy_tags_to_snapshot(true)
            .serverless_v2_scaling_configuration(capacity())
            .tags(Tag::builder().key("team").value("payments").build())
            .send()
            .await,
    )?;
    let source = cluster_in(&rds, "source", "available").await?;
    new_snapshot(&rds, "source", "snap").await?;
    ok(
        "RestoreDBClusterFromSnapshot",
        rds.restore_db_cluster_from_snapshot()
            .db_cluster_identifier("restored")
            .snapshot_identifier("snap")
            .engine(ENGINE)
            .send()
            .await,
    )?;
    let restored = cluster_in(&rds, "restored", "available").await?;
    ensure!(restored.deletion_protection() == Some(false), "deletion protection came from the source");
    ensure!(
        restored.serverless_v2_scaling_configuration().is_none(),
        "scaling configuration came from the source"
    );
    ensure!(restored.tag_list().is_empty(), "tags came from the source: {:?}", restored.tag_list());
    ensure!(restored.copy_tags_to_snapshot() == Some(false), "CopyTagsToSnapshot came from the source");
    ensure!(restored.engine_version() != Some("15.4"), "the engine version came from the source cluster");
    ensure!(restored.port() == Some(5433), "the port is the source's: {:?}", restored.port());
    ensure!(restored.storage_encrypted() == Some(true), "not encrypted like the snapshot");
    ensure!(
        restored.kms_key_id() == source.kms_key_id(),
        "key {:?}, snapshot's {:?}",
        restored.kms_key_id(),
        source.kms_key_id()
    );
    ensure!(restored.master_username() == Some("dbadmin"), "master user {:?}", restored.master_username());
    ensure!(
        restored.db_cluster_resource_id() != source.db_cluster_resource_id(),
        "the restored cluster has the source's resource id"
    );
    ensure!(restored.endpoint() != source.endpoint(), "the restored cluster has the source's endpoint");

    let key = customer_key(emulator, TARGET, TARGET_REGION, &[]).await?;
    ok(
        "RestoreDBClusterFromSnapshot with a KmsKeyId and EngineVersion",
        rds.restore_db_cluster_from_snapshot()
            .db_cluster_identifier("rekeyed")
            .snapshot_identifier("snap")
            .engine(ENGINE)
            .engine_version("15.4")
            .kms_key_id(&key)
            .send()
            .await,
    )?;
    let rekeyed = cluster_in(&rds, "rekeyed", "available").await?;
    ensure!(rekeyed.kms_key_id() == Some(key.as_str()), "key {:?}, asked {key}", rekeyed.kms_key_id());
    ensure!(rekeyed.engine_version() == Some("15.4"), "engine version {:?}", rekeyed.engine_version());
    Ok(())
}
