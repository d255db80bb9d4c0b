//! Each RDS compatibility patch of `emulator/compat.py`, proved through the
//! SDK clients the handlers use (see emulator/README.md for the list).

mod common;

use common::*;

/// restore_from_shared_snapshot: the target account restores from the ARN of
/// a snapshot that another account copied across regions, encrypted and shared.
#[tokio::test]
async fn restore_from_a_shared_encrypted_snapshot_arn() {
    let emulator = emulator().await;
    let key = shared_key(&emulator, &[TARGET]).await;
    let arn = encrypted_copy(&emulator, &key, "dr-snap").await;
    share(&emulator, "dr-snap", TARGET).await;

    let target = rds(&emulator, TARGET, TARGET_REGION).await;
    let restored = target
        .restore_db_cluster_from_snapshot()
        .db_cluster_identifier("temp")
        .snapshot_identifier(&arn)
        .engine(ENGINE)
        .tags(aws_sdk_rds::types::Tag::builder().key("aurora-dr").value("run-1").build())
        .send()
        .await
        .expect("restore from shared snapshot");
    let cluster = restored.db_cluster().expect("cluster");
    assert_eq!(cluster.status(), Some("creating"));
    assert!(cluster.db_cluster_arn().is_some_and(|a| a.contains(&format!(":{TARGET_REGION}:{TARGET}:"))));
    assert_eq!(cluster.storage_encrypted(), Some(true));
    assert_eq!(cluster.kms_key_id(), Some(key.as_str()));
    let cluster = wait_cluster(&target, "temp", "available").await;
    let tags: Vec<_> = cluster.tag_list().iter().map(|t| (t.key(), t.value())).collect();
    assert_eq!(tags, [(Some("aurora-dr"), Some("run-1"))]);
    instance(&target, "temp", "temp-1").await;
}

/// restore_from_shared_snapshot: RDS restores only from a snapshot in its own
/// region; the ARN of the (shared) source-region snapshot is not found.
#[tokio::test]
async fn restore_from_another_region_is_not_found() {
    let emulator = emulator().await;
    let source = rds(&emulator, SOURCE, SOURCE_REGION).await;
    cluster(&source, "prod").await;
    let snap = snapshot(&source, "prod", "src-snap").await;
    source
        .modify_db_cluster_snapshot_attribute()
        .db_cluster_snapshot_identifier("src-snap")
        .attribute_name("restore")
        .values_to_add(TARGET)
        .send()
        .await
        .expect("share");
    let target = rds(&emulator, TARGET, TARGET_REGION).await;
    let result = target
        .restore_db_cluster_from_snapshot()
        .db_cluster_identifier("temp")
        .snapshot_identifier(snap.db_cluster_snapshot_arn().expect("arn"))
        .engine(ENGINE)
        .send()
        .await;
    assert_eq!(code(result), "DBClusterSnapshotNotFoundFault");
}

/// restore_from_shared_snapshot: the snapshot's key must let the target use it.
#[tokio::test]
async fn restore_with_a_key_the_target_may_not_use_fails() {
    let emulator = emulator().await;
    let key = shared_key(&emulator, &["333333333333"]).await;
    let arn = encrypted_copy(&emulator, &key, "dr-snap").await;
    share(&emulator, "dr-snap", TARGET).await;
    let target = rds(&emulator, TARGET, TARGET_REGION).await;
    let result = target
        .restore_db_cluster_from_snapshot()
        .db_cluster_identifier("temp")
        .snapshot_identifier(&arn)
        .engine(ENGINE)
        .send()
        .await;
    assert_eq!(code(result), "KMSKeyNotAccessibleFault");
}

/// copy_from_shared_snapshot: the source must be available; the copy reports
/// `copying`; the owner's own plain id and ARN both work.
#[tokio::test]
async fn copy_needs_an_available_source_and_reports_copying() {
    let emulator = emulator().await;
    let source = rds(&emulator, SOURCE, SOURCE_REGION).await;
    cluster(&source, "prod").await;
    let created = source
        .create_db_cluster_snapshot()
        .db_cluster_identifier("prod")
        .db_cluster_snapshot_identifier("snap")
        .send()
        .await
        .expect("create snapshot");
    let snap = created.db_cluster_snapshot().expect("snapshot");
    assert_eq!(snap.status(), Some("creating"));
    let arn = snap.db_cluster_snapshot_arn().expect("arn").to_owned();
    let dest = rds(&emulator, SOURCE, TARGET_REGION).await;
    let early = dest
        .copy_db_cluster_snapshot()
        .source_db_cluster_snapshot_identifier(&arn)
        .target_db_cluster_snapshot_identifier("copy")
        .send()
        .await;
    assert_eq!(code(early), "InvalidDBClusterSnapshotStateFault");
    wait_snapshot(&source, "snap", "available").await;
    let copy = dest
        .copy_db_cluster_snapshot()
        .source_db_cluster_snapshot_identifier(&arn)
        .target_db_cluster_snapshot_identifier("copy")
        .send()
        .await
        .expect("copy");
    assert_eq!(copy.db_cluster_snapshot().and_then(|s| s.status()), Some("copying"));
    let share_early = dest
        .modify_db_cluster_snapshot_attribute()
        .db_cluster_snapshot_identifier("copy")
        .attribute_name("restore")
        .values_to_add(TARGET)
        .send()
        .await;
    assert_eq!(code(share_early), "InvalidDBClusterSnapshotStateFault", "share_requires_available_snapshot");
    // The owner may describe its own snapshot by ARN as well as by name.
    let copy_arn = copy.db_cluster_snapshot().and_then(|s| s.db_cluster_snapshot_arn()).expect("arn");
    wait_snapshot(&dest, copy_arn, "available").await;
}

/// snapshots (copy): the target account copies a snapshot shared with it
/// into its own account, under a key of its own (API reference,
/// CopyDBClusterSnapshot: a shared encrypted snapshot needs a KmsKeyId).
#[tokio::test]
async fn target_copies_a_shared_snapshot() {
    let emulator = emulator().await;
    let key = shared_key(&emulator, &[TARGET]).await;
    let arn = encrypted_copy(&emulator, &key, "dr-snap").await;
    share(&emulator, "dr-snap", TARGET).await;
    let target = rds(&emulator, TARGET, TARGET_REGION).await;
    let copy = |key: Option<String>| {
        target
            .copy_db_cluster_snapshot()
            .source_db_cluster_snapshot_identifier(&arn)
            .target_db_cluster_snapshot_identifier("mine")
            .set_kms_key_id(key)
            .send()
    };
    assert_eq!(code(copy(None).await), "KMSKeyNotAccessibleFault");
    let kms = context(&emulator, TARGET, TARGET_REGION).await.kms();
    let own = kms.create_key().send().await.expect("key");
    let own_key = own.key_metadata().and_then(|m| m.arn()).expect("arn").to_owned();
    copy(Some(own_key.clone())).await.expect("copy shared snapshot");
    let mine = wait_snapshot(&target, "mine", "available").await;
    assert!(mine.db_cluster_snapshot_arn().is_some_and(|a| a.contains(&format!(":{TARGET}:"))));
    assert_eq!(mine.kms_key_id(), Some(own_key.as_str()));
    assert_eq!(mine.source_db_cluster_snapshot_arn(), Some(arn.as_str()));
}

/// rename_moves_instances: the swap renames clusters; instances follow their
/// cluster, and a cluster with instances cannot be deleted.
#[tokio::test]
async fn rename_moves_instances_and_blocks_delete() {
    let emulator = emulator().await;
    let target = rds(&emulator, TARGET, TARGET_REGION).await;
    cluster(&target, "existing").await;
    instance(&target, "existing", "existing-1").await;
    cluster(&target, "temp").await;
    instance(&target, "temp", "temp-1").await;

    let renamed = target
        .modify_db_cluster()
        .db_cluster_identifier("existing")
        .new_db_cluster_identifier("existing-old")
        .apply_immediately(true)
        .send()
        .await
        .expect("rename existing away");
    assert_eq!(renamed.db_cluster().and_then(|c| c.status()), Some("renaming"));
    let old = wait_cluster(&target, "existing-old", "available").await;
    let members: Vec<_> =
        old.db_cluster_members().iter().filter_map(|m| m.db_instance_identifier()).collect();
    assert_eq!(members, ["existing-1"]);

    target
        .modify_db_cluster()
        .db_cluster_identifier("temp")
        .new_db_cluster_identifier("existing")
        .apply_immediately(true)
        .send()
        .await
        .expect("rename temp to existing");
    let new = wait_cluster(&target, "existing", "available").await;
    let members: Vec<_> =
        new.db_cluster_members().iter().filter_map(|m| m.db_instance_identifier()).collect();
    assert_eq!(members, ["temp-1"], "the old cluster's instances must not attach to the new name");
    let instance =
        target.describe_db_instances().db_instance_identifier("temp-1").send().await.expect("describe");
    assert_eq!(instance.db_instances()[0].db_cluster_identifier(), Some("existing"));

    let delete = target
        .delete_db_cluster()
        .db_cluster_identifier("existing-old")
        .skip_final_snapshot(true)
        .send()
        .await;
    assert_eq!(code(delete), "InvalidDBClusterStateFault");
    target
        .delete_db_instance()
        .db_instance_identifier("existing-1")
        .skip_final_snapshot(true)
        .send()
        .await
        .expect("delete old instance");
    target
        .delete_db_cluster()
        .db_cluster_identifier("existing-old")
        .skip_final_snapshot(true)
        .send()
        .await
        .expect("delete emptied old cluster");
}

/// rename_moves_instances: RDS faults instead of moto's HTTP 500 / silent overwrite.
#[tokio::test]
async fn modify_cluster_faults_are_rds_faults() {
    let emulator = emulator().await;
    let target = rds(&emulator, TARGET, TARGET_REGION).await;
    let missing = target
        .modify_db_cluster()
        .db_cluster_identifier("nope")
        .new_db_cluster_identifier("other")
        .apply_immediately(true)
        .send()
        .await;
    assert_eq!(code(missing), "DBClusterNotFoundFault");

    cluster(&target, "a").await;
    target
        .create_db_cluster()
        .db_cluster_identifier("b")
        .engine(ENGINE)
        .master_username("dbadmin")
        .master_user_password("correct-horse-battery")
        .send()
        .await
        .expect("create b");
    let busy =
        target.modify_db_cluster().db_cluster_identifier("b").new_db_cluster_identifier("c").send().await;
    assert_eq!(code(busy), "InvalidDBClusterStateFault", "b is still creating");
    let taken =
        target.modify_db_cluster().db_cluster_identifier("a").new_db_cluster_identifier("b").send().await;
    assert_eq!(code(taken), "DBClusterAlreadyExistsFault");
    wait_cluster(&target, "b", "available").await;
}

/// rename_instance_conflict: an instance cannot be renamed onto another.
#[tokio::test]
async fn instance_rename_onto_an_existing_instance_fails() {
    let emulator = emulator().await;
    let target = rds(&emulator, TARGET, TARGET_REGION).await;
    cluster(&target, "c").await;
    instance(&target, "c", "one").await;
    instance(&target, "c", "two").await;
    let taken = target
        .modify_db_instance()
        .db_instance_identifier("one")
        .new_db_instance_identifier("two")
        .apply_immediately(true)
        .send()
        .await;
    assert_eq!(code(taken), "DBInstanceAlreadyExists");
    let renamed = target
        .modify_db_instance()
        .db_instance_identifier("one")
        .new_db_instance_identifier("three")
        .apply_immediately(true)
        .send()
        .await
        .expect("rename");
    assert_eq!(renamed.db_instance().and_then(|i| i.db_instance_status()), Some("renaming"));
    wait_instance(&target, "three", "available").await;
    wait_instance(&target, "two", "available").await;
}

/// Tags given at creation stay on snapshots and copies (the tool tags its resources).
#[tokio::test]
async fn tags_stay_on_snapshots_and_copies() {
    let emulator = emulator().await;
    let source = rds(&emulator, SOURCE, SOURCE_REGION).await;
    cluster(&source, "prod").await;
    let tag = aws_sdk_rds::types::Tag::builder().key("aurora-dr:run").value("42").build();
    source
        .create_db_cluster_snapshot()
        .db_cluster_identifier("prod")
        .db_cluster_snapshot_identifier("tagged")
        .tags(tag.clone())
        .send()
        .await
        .expect("create");
    let snap = wait_snapshot(&source, "tagged", "available").await;
    let arn = snap.db_cluster_snapshot_arn().expect("arn");
    let listed = source.list_tags_for_resource().resource_name(arn).send().await.expect("tags");
    assert_eq!(listed.tag_list(), std::slice::from_ref(&tag));
    let dest = rds(&emulator, SOURCE, TARGET_REGION).await;
    dest.copy_db_cluster_snapshot()
        .source_db_cluster_snapshot_identifier(arn)
        .target_db_cluster_snapshot_identifier("tagged-copy")
        .copy_tags(true)
        .send()
        .await
        .expect("copy");
    let copy = wait_snapshot(&dest, "tagged-copy", "available").await;
    assert_eq!(copy.tag_list(), [tag]);
}
