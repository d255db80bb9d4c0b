//! compat/encryption.py and compat/snapshots.py: the AWS managed key,
//! sharing and copying encrypted snapshots.

use aurora_dr_emulator::Emulator;

use crate::*;

rds_behaviour!(
    /// CreateDBCluster with StorageEncrypted and no KmsKeyId: the cluster is
    /// under the account's `alias/aws/rds` key of the Region, a real key
    /// managed by AWS; unencrypted clusters have no key.
    encrypted_clusters_default_to_the_aws_managed_key => encrypted_clusters_default_to_the_aws_managed_key_check
);

async fn encrypted_clusters_default_to_the_aws_managed_key_check(emulator: &Emulator) -> Check {
    let rds = rds(emulator, SOURCE, SOURCE_REGION).await;
    let cluster = new_cluster(&rds, "prod", true).await?;
    let kms = context(emulator, SOURCE, SOURCE_REGION).await.kms();
    let managed =
        kms.describe_key().key_id("alias/aws/rds").send().await.map_err(|e| format!("DescribeKey: {e}"))?;
    let managed = managed.key_metadata().ok_or("no key metadata")?;
    ensure!(
        cluster.kms_key_id() == managed.arn(),
        "cluster key {:?} is not the alias/aws/rds key {:?}",
        cluster.kms_key_id(),
        managed.arn()
    );
    ensure!(
        managed.key_manager().map(|m| m.as_str()) == Some("AWS"),
        "alias/aws/rds is not AWS managed: {:?}",
        managed.key_manager()
    );
    let plain = new_cluster(&rds, "plain", false).await?;
    ensure!(plain.kms_key_id().is_none(), "an unencrypted cluster reports key {:?}", plain.kms_key_id());
    Ok(())
}

rds_behaviour!(
    /// A snapshot under the AWS managed key cannot be shared
    /// (InvalidDBClusterSnapshotStateFault, HTTP 400); copied into another
    /// Region under a customer key, the copy can be shared and restored by
    /// the target account.
    aws_managed_key_snapshots_are_copied_under_a_customer_key_to_be_shared =>
        aws_managed_key_snapshots_check
);

async fn aws_managed_key_snapshots_check(emulator: &Emulator) -> Check {
    let source = rds(emulator, SOURCE, SOURCE_REGION).await;
    new_cluster(&source, "prod", true).await?;
    let snap = new_snapshot(&source, "prod", "snap").await?;
    let share = source
        .modify_db_cluster_snapshot_attribute()
        .db_cluster_snapshot_identifier("snap")
        .attribute_name("restore")
        .values_to_add(TARGET)
        .send()
        .await;
    refused("share a snapshot under aws/rds", share, "InvalidDBClusterSnapshotStateFault", 400)?;

    let key = customer_key(emulator, SOURCE, TARGET_REGION, &[TARGET]).await?;
    let dest = rds(emulator, SOURCE, TARGET_REGION).await;
    let source_arn = snap.db_cluster_snapshot_arn().ok_or("no ARN")?;
    ok(
        "CopyDBClusterSnapshot under a customer key",
        dest.copy_db_cluster_snapshot()
            .source_db_cluster_snapshot_identifier(source_arn)
            .target_db_cluster_snapshot_identifier("dr-copy")
            .kms_key_id(&key)
            .send()
            .await,
    )?;
    let copy = snapshot_in(&dest, "dr-copy", "available").await?;
    ensure!(copy.kms_key_id() == Some(key.as_str()), "copy key {:?}", copy.kms_key_id());
    ok(
        "share the copy",
        dest.modify_db_cluster_snapshot_attribute()
            .db_cluster_snapshot_identifier("dr-copy")
            .attribute_name("restore")
            .values_to_add(TARGET)
            .send()
            .await,
    )?;
    let target = rds(emulator, TARGET, TARGET_REGION).await;
    ok(
        "restore the shared copy",
        target
            .restore_db_cluster_from_snapshot()
            .db_cluster_identifier("dr")
            .snapshot_identifier(copy.db_cluster_snapshot_arn().ok_or("no ARN")?)
            .engine(ENGINE)
            .send()
            .await,
    )?;
    cluster_in(&target, "dr", "available").await.map(drop)
}

rds_behaviour!(
    /// CopyDBClusterSnapshot of an unencrypted snapshot with a KmsKeyId is
    /// refused (InvalidParameterCombination, HTTP 400); an encrypted snapshot
    /// copied to another Region needs a KmsKeyId (KMSKeyNotAccessibleFault,
    /// HTTP 400).
    copies_cannot_change_encryption => copies_cannot_change_encryption_check
);

async fn copies_cannot_change_encryption_check(emulator: &Emulator) -> Check {
    let source = rds(emulator, SOURCE, SOURCE_REGION).await;
    new_cluster(&source, "plain", false).await?;
    new_cluster(&source, "secret", true).await?;
    let plain = new_snapshot(&source, "plain", "plain-snap").await?;
    let secret = new_snapshot(&source, "secret", "secret-snap").await?;
    let key = customer_key(emulator, SOURCE, TARGET_REGION, &[]).await?;
    let dest = rds(emulator, SOURCE, TARGET_REGION).await;
    let copy = |source_arn: String, target: &'static str, key: Option<String>| {
        dest.copy_db_cluster_snapshot()
            .source_db_cluster_snapshot_identifier(source_arn)
            .target_db_cluster_snapshot_identifier(target)
            .set_kms_key_id(key)
            .send()
    };
    let plain_arn = plain.db_cluster_snapshot_arn().ok_or("no ARN")?.to_owned();
    let secret_arn = secret.db_cluster_snapshot_arn().ok_or("no ARN")?.to_owned();
    let encrypting = copy(plain_arn.clone(), "c1", Some(key.clone())).await;
    refused("copy an unencrypted snapshot with a key", encrypting, "InvalidParameterCombination", 400)?;
    let keyless = copy(secret_arn.clone(), "c2", None).await;
    refused(
        "copy an encrypted snapshot across Regions without a key",
        keyless,
        "KMSKeyNotAccessibleFault",
        400,
    )?;
    ok("copy an unencrypted snapshot without a key", copy(plain_arn, "c3", None).await)?;
    ok("copy an encrypted snapshot with a key", copy(secret_arn, "c4", Some(key)).await)?;
    Ok(())
}

rds_behaviour!(
    /// A copy names the snapshot it was copied from in
    /// SourceDBClusterSnapshotArn (API reference, DBClusterSnapshot).
    copies_name_their_source_snapshot => copies_name_their_source_snapshot_check
);

async fn copies_name_their_source_snapshot_check(emulator: &Emulator) -> Check {
    let source = rds(emulator, SOURCE, SOURCE_REGION).await;
    new_cluster(&source, "prod", false).await?;
    let snap = new_snapshot(&source, "prod", "snap").await?;
    let arn = snap.db_cluster_snapshot_arn().ok_or("no ARN")?;
    ensure!(snap.source_db_cluster_snapshot_arn().is_none(), "a snapshot that is no copy names a source");
    let dest = rds(emulator, SOURCE, TARGET_REGION).await;
    ok(
        "CopyDBClusterSnapshot",
        dest.copy_db_cluster_snapshot()
            .source_db_cluster_snapshot_identifier(arn)
            .target_db_cluster_snapshot_identifier("copy")
            .send()
            .await,
    )?;
    let copy = snapshot_in(&dest, "copy", "available").await?;
    ensure!(
        copy.source_db_cluster_snapshot_arn() == Some(arn),
        "SourceDBClusterSnapshotArn {:?}, expected {arn}",
        copy.source_db_cluster_snapshot_arn()
    );
    Ok(())
}
