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

rds_behaviour!(
    /// RestoreDBClusterFromSnapshot with a KmsKeyId: RDS must be able to use
    /// that key for the caller. A key that does not exist, is disabled, is in
    /// another Region, or is another account's whose key policy does not let
    /// the caller use it is refused with KMSKeyNotAccessibleFault and nothing
    /// is created. A usable key (the caller's own, also by alias name, or
    /// another account's that its policy shares) re-encrypts the restore,
    /// which then reports that key's ARN.
    restore_keys_must_be_usable_by_the_caller => restore_keys_check
);

async fn restore_keys_check(emulator: &Emulator) -> Check {
    let rds = rds(emulator, TARGET, TARGET_REGION).await;
    let kms = context(emulator, TARGET, TARGET_REGION).await.kms();
    new_cluster(&rds, "source", true).await?;
    new_snapshot(&rds, "source", "snap").await?;
    let restore = |id: &'static str, key: String| {
        rds.restore_db_cluster_from_snapshot()
            .db_cluster_identifier(id)
            .snapshot_identifier("snap")
            .engine(ENGINE)
            .kms_key_id(key)
            .send()
    };

    let disabled = customer_key(emulator, TARGET, TARGET_REGION, &[]).await?;
    // By key id: moto's DisableKey fails on a key ARN (the KMS API takes both).
    let disabled_id = disabled.rsplit('/').next().unwrap_or_default();
    ok("DisableKey", kms.disable_key().key_id(disabled_id).send().await)?;
    let refused = [
        (
            "another account's key it does not share",
            customer_key(emulator, SOURCE, TARGET_REGION, &[]).await?,
        ),
        (
            "a key that does not exist",
            format!("arn:aws:kms:{TARGET_REGION}:{TARGET}:key/0f0e0d0c-0000-4000-8000-00000000dead"),
        ),
        ("a disabled key", disabled),
        ("a key in another Region", customer_key(emulator, TARGET, SOURCE_REGION, &[]).await?),
    ];
    for (what, key) in refused {
        let result = restore("refused", key).await;
        ensure!(
            fault(&result) == Some(("KMSKeyNotAccessibleFault".into(), 400)),
            "{what}: {:?}",
            fault(&result)
        );
        let described = rds.describe_db_clusters().db_cluster_identifier("refused").send().await;
        ensure!(described.is_err(), "{what}: a cluster was created anyway");
    }

    let own = customer_key(emulator, TARGET, TARGET_REGION, &[]).await?;
    ok("CreateAlias", kms.create_alias().alias_name("alias/dr-target").target_key_id(&own).send().await)?;
    ok(
        "RestoreDBClusterFromSnapshot under the own key's alias",
        restore("own", "alias/dr-target".into()).await,
    )?;
    let restored = cluster_in(&rds, "own", "available").await?;
    ensure!(restored.kms_key_id() == Some(own.as_str()), "key {:?}, want {own}", restored.kms_key_id());

    let shared = customer_key(emulator, SOURCE, TARGET_REGION, &[TARGET]).await?;
    ok("RestoreDBClusterFromSnapshot under a shared key", restore("shared", shared.clone()).await)?;
    let restored = cluster_in(&rds, "shared", "available").await?;
    ensure!(restored.kms_key_id() == Some(shared.as_str()), "key {:?}, want {shared}", restored.kms_key_id());
    Ok(())
}
