//! RDS helpers every step shares: look-ups that treat "not found" as `None`,
//! the tags that mark what aurora-dr created, the one classification of
//! RDS statuses into ready / in progress / failed, the one snapshot copy
//! (with its one reuse rule) and deletes that count "already gone" as done.

use aws_sdk_rds::Client;
use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_rds::operation::copy_db_cluster_snapshot::CopyDBClusterSnapshotError;
use aws_sdk_rds::types::{DbCluster, DbClusterSnapshot, DbClusterSnapshotAttributesResult, DbInstance, Tag};

use crate::error::{DrError, DrResult};
use crate::ids::{Arn, SnapshotId};
use crate::payload::RunState;

/// Tag keys on every resource aurora-dr creates.
pub const TAG_MANAGED_BY: &str = "aurora-dr:managed-by";
pub const TAG_RUN_ID: &str = "aurora-dr:run-id";
pub const TAG_SOURCE_CLUSTER: &str = "aurora-dr:source-cluster";
/// Value of [`TAG_MANAGED_BY`].
pub const MANAGED_BY: &str = "aurora-dr";

/// The tags of a resource created by `run`.
pub fn run_tags(run: &RunState) -> Vec<Tag> {
    let mut tags = vec![tag(TAG_MANAGED_BY, MANAGED_BY), tag(TAG_RUN_ID, run.run_id.as_str())];
    if let Some(cluster) = &run.source_cluster_id {
        tags.push(tag(TAG_SOURCE_CLUSTER, cluster.as_str()));
    }
    tags
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// The value of a tag, if present.
pub fn tag_value<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter().find(|t| t.key() == Some(key)).and_then(Tag::value)
}

/// Whether a resource carries aurora-dr's tags for this run.
pub fn is_from_run(tags: &[Tag], run: &RunState) -> bool {
    tag_value(tags, TAG_MANAGED_BY) == Some(MANAGED_BY)
        && tag_value(tags, TAG_RUN_ID) == Some(run.run_id.as_str())
}

/// Whether a resource carries aurora-dr's managed-by tag.
pub fn is_managed(tags: &[Tag]) -> bool {
    tag_value(tags, TAG_MANAGED_BY) == Some(MANAGED_BY)
}

fn none_if_not_found<T>(result: DrResult<T>) -> DrResult<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(DrError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The cluster with this identifier, or `None`.
pub async fn find_cluster(rds: &Client, id: &str) -> DrResult<Option<DbCluster>> {
    let out = rds
        .describe_db_clusters()
        .db_cluster_identifier(id)
        .send()
        .await
        .map_err(|e| DrError::from_sdk(&format!("DescribeDBClusters {id}"), e));
    Ok(none_if_not_found(out)?.and_then(|o| o.db_clusters().first().cloned()))
}

/// The instance with this identifier, or `None`.
pub async fn find_instance(rds: &Client, id: &str) -> DrResult<Option<DbInstance>> {
    let out = rds
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .map_err(|e| DrError::from_sdk(&format!("DescribeDBInstances {id}"), e));
    Ok(none_if_not_found(out)?.and_then(|o| o.db_instances().first().cloned()))
}

/// The cluster snapshot with this identifier or ARN, or `None`. `shared`
/// looks among snapshots other accounts shared with the caller.
pub async fn find_cluster_snapshot(
    rds: &Client,
    id_or_arn: &str,
    shared: bool,
) -> DrResult<Option<DbClusterSnapshot>> {
    let mut req = rds.describe_db_cluster_snapshots().db_cluster_snapshot_identifier(id_or_arn);
    if shared {
        req = req.snapshot_type("shared").include_shared(true);
    }
    let out = req
        .send()
        .await
        .map_err(|e| DrError::from_sdk(&format!("DescribeDBClusterSnapshots {id_or_arn}"), e));
    Ok(none_if_not_found(out)?.and_then(|o| o.db_cluster_snapshots().first().cloned()))
}

/// Every manual cluster snapshot the caller owns in the client's region (of
/// one cluster when `cluster` is given), following pagination.
pub async fn list_manual_cluster_snapshots(
    rds: &Client,
    cluster: Option<&str>,
) -> DrResult<Vec<DbClusterSnapshot>> {
    list_cluster_snapshots(rds, cluster, "manual").await
}

/// Every cluster snapshot other accounts share with the caller in the
/// client's region (`SnapshotType=shared` with `IncludeShared`), following
/// pagination.
pub async fn list_shared_cluster_snapshots(rds: &Client) -> DrResult<Vec<DbClusterSnapshot>> {
    list_cluster_snapshots(rds, None, "shared").await
}

async fn list_cluster_snapshots(
    rds: &Client,
    cluster: Option<&str>,
    snapshot_type: &str,
) -> DrResult<Vec<DbClusterSnapshot>> {
    let context = format!("DescribeDBClusterSnapshots {}", cluster.unwrap_or(&format!("({snapshot_type})")));
    let mut all = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = rds
            .describe_db_cluster_snapshots()
            .set_db_cluster_identifier(cluster.map(str::to_owned))
            .snapshot_type(snapshot_type)
            .set_include_shared((snapshot_type == "shared").then_some(true))
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| DrError::from_sdk(&context, e))?;
        all.extend(page.db_cluster_snapshots().iter().cloned());
        match page.marker() {
            Some(m) if !m.is_empty() => marker = Some(m.to_owned()),
            _ => return Ok(all),
        }
    }
}

/// A snapshot's attributes (`DescribeDBClusterSnapshotAttributes`).
pub async fn snapshot_attributes(rds: &Client, id: &str) -> DrResult<DbClusterSnapshotAttributesResult> {
    let out = rds
        .describe_db_cluster_snapshot_attributes()
        .db_cluster_snapshot_identifier(id)
        .send()
        .await
        .map_err(|e| DrError::from_sdk(&format!("DescribeDBClusterSnapshotAttributes {id}"), e))?;
    Ok(out
        .db_cluster_snapshot_attributes_result
        .unwrap_or_else(|| DbClusterSnapshotAttributesResult::builder().build()))
}

/// The values of the `restore` attribute: the accounts a snapshot is shared
/// with (`all` when it is public).
pub fn restore_accounts(result: &DbClusterSnapshotAttributesResult) -> Vec<String> {
    result
        .db_cluster_snapshot_attributes()
        .iter()
        .filter(|a| a.attribute_name() == Some("restore"))
        .flat_map(|a| a.attribute_values().iter().cloned())
        .collect()
}

/// The accounts a snapshot is shared with.
pub async fn shared_with(rds: &Client, id: &str) -> DrResult<Vec<String>> {
    Ok(restore_accounts(&snapshot_attributes(rds, id).await?))
}

/// Where a resource stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Ready,
    InProgress,
    Failed,
}

/// Classifies an RDS status string of a snapshot, cluster or instance.
/// Unknown statuses count as in progress: the bounded retry ends the wait.
pub fn classify_status(status: &str) -> Progress {
    match status {
        "available" => Progress::Ready,
        "failed"
        | "inaccessible-encryption-credentials"
        | "inaccessible-encryption-credentials-recoverable"
        | "stopped"
        | "deleting"
        | "deleted" => Progress::Failed,
        s if s.starts_with("incompatible-") => Progress::Failed,
        _ => Progress::InProgress,
    }
}

/// An instance in a status RDS does not bring it back from: it serves
/// nothing and RDS refuses to modify (rename) it, so Swap deletes such a
/// previous instance instead of keeping it under an old name, and
/// RollBackSwap such a restored one. Amazon Aurora User Guide, "Viewing DB
/// instance status"
/// (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/accessing-monitoring.html#Overview.DBInstance.Status):
/// `failed` (RDS cannot recover the instance; a point-in-time restore is the
/// way back), `inaccessible-encryption-credentials` (the KMS key is disabled
/// or deleted for good), `incompatible-*` (RDS cannot start the instance).
/// `inaccessible-encryption-credentials-recoverable` is left out: an operator
/// can give the key back, so it stays a refusal (`ResourceFailed`). The
/// DeleteDBInstance API reference allows deleting an instance in `failed`,
/// `incompatible-restore` or `incompatible-network` when no final snapshot is
/// asked for (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DeleteDBInstance.html);
/// for the other statuses the docs are silent, so a refusal ends the swap
/// like a failed rename (everything done is put back).
pub fn beyond_repair(status: &str) -> bool {
    matches!(status, "failed" | "inaccessible-encryption-credentials") || status.starts_with("incompatible-")
}

/// Turns a status into the step's outcome: `Ok` when ready, the retryable
/// `ResourceNotReady` while in progress, the fatal `ResourceFailed` otherwise.
pub fn require_ready(resource: &str, status: &str) -> DrResult<()> {
    match classify_status(status) {
        Progress::Ready => Ok(()),
        Progress::InProgress => Err(DrError::not_ready(resource, status)),
        Progress::Failed => Err(DrError::ResourceFailed { resource: resource.into(), status: status.into() }),
    }
}

/// An encrypted cluster snapshot copy a run makes: EncryptCopy's copy into
/// the target region, CopyToOwnAccount's copy into the target account.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotCopy<'a> {
    /// What the copy is, in messages and logs ("copy", "own copy").
    pub what: &'static str,
    /// Where the copy is made, in messages ("us-west-1", "the target account").
    pub place: &'a str,
    /// The snapshot copied (its ARN).
    pub from: &'a Arn,
    /// The copy's identifier.
    pub id: &'a SnapshotId,
    /// The KMS key the copy must be encrypted with.
    pub key: &'a Arn,
    /// Also copy the source snapshot's tags (only within one account).
    pub copy_tags: bool,
    /// The run the copy belongs to (its tags).
    pub run: &'a RunState,
}

/// Makes (or finds) a run's encrypted copy: `CopyDBClusterSnapshot(from ->
/// id, KmsKeyId = key, Tags = the run's tags)` with the client of the
/// account and region the copy lives in. No `PreSignedUrl`: it is only
/// needed between AWS GovCloud (US) regions.
///
/// One reuse rule, also when a racing copy answers
/// `DBClusterSnapshotAlreadyExistsFault`: a snapshot under the copy's name
/// is this run's copy when it carries this run's tags and, when RDS names
/// its source, was copied from `from`; anything else is a `Conflict` and is
/// left untouched. Reused or new, the copy must be encrypted with `key`:
/// `Conflict` for a reused one that is not, `UnsafeOperation` for a new one
/// (the response is verified, or the listing when the response does not say).
pub async fn copy_snapshot(rds: &Client, c: SnapshotCopy<'_>) -> DrResult<DbClusterSnapshot> {
    let id = c.id.as_str();
    if let Some(existing) = find_cluster_snapshot(rds, id, false).await? {
        check_reusable(&existing, &c)?;
        tracing::info!(run_id = %c.run.run_id, snapshot = %c.id, place = c.place,
            status = existing.status().unwrap_or_default(), "reusing this run's {}", c.what);
        return Ok(existing);
    }
    let context = format!("CopyDBClusterSnapshot {} -> {} {id} ({})", c.from, c.what, c.place);
    let result = rds
        .copy_db_cluster_snapshot()
        .source_db_cluster_snapshot_identifier(c.from.as_str())
        .target_db_cluster_snapshot_identifier(id)
        .kms_key_id(c.key.as_str())
        .set_copy_tags(c.copy_tags.then_some(true))
        .set_tags(Some(run_tags(c.run)))
        .send()
        .await;
    let copy = match result {
        Ok(out) => {
            tracing::info!(run_id = %c.run.run_id, snapshot = %c.id, place = c.place, from = %c.from,
                kms_key = %c.key, "{} started", c.what);
            match out.db_cluster_snapshot {
                // The response says how the copy is encrypted: verify that.
                Some(s) if tells_encryption(&s) => s,
                // Otherwise verify what RDS lists.
                _ => find_cluster_snapshot(rds, id, false).await?.ok_or_else(|| {
                    DrError::NotFound(format!(
                        "{} {id} is not listed in {} after its creation",
                        c.what, c.place
                    ))
                })?,
            }
        }
        Err(e) if copy_exists(&e) => {
            tracing::info!(run_id = %c.run.run_id, snapshot = %c.id, "{} appeared concurrently; checking it", c.what);
            let conflict = DrError::from_sdk(&context, e);
            let existing = find_cluster_snapshot(rds, id, false).await?.ok_or(conflict)?;
            check_reusable(&existing, &c)?;
            existing
        }
        Err(e) => return Err(DrError::from_sdk(&context, e)),
    };
    if !is_encrypted_with(&copy, c.key) {
        tracing::error!(run_id = %c.run.run_id, snapshot = %c.id, place = c.place,
            storage_encrypted = ?copy.storage_encrypted(), kms_key = copy.kms_key_id().unwrap_or_default(),
            "{} is not encrypted with the configured key; it will not be used", c.what);
        return Err(DrError::Unsafe(format!(
            "{} {id} in {} is not encrypted with {} (storage encrypted: {:?}, key: {}); it must not be used",
            c.what,
            c.place,
            c.key,
            copy.storage_encrypted(),
            copy.kms_key_id().unwrap_or("none")
        )));
    }
    Ok(copy)
}

/// The reuse rule of [`copy_snapshot`].
fn check_reusable(existing: &DbClusterSnapshot, c: &SnapshotCopy<'_>) -> DrResult<()> {
    let from_source = existing
        .source_db_cluster_snapshot_arn()
        .is_none_or(|from| from.eq_ignore_ascii_case(c.from.as_str()));
    if !is_from_run(existing.tag_list(), c.run) || !from_source {
        return Err(DrError::Conflict(format!(
            "snapshot {} already exists in {} but is not run {}'s {} of {} (run-id tag: {}, copied from: {}); \
             nothing was changed",
            c.id,
            c.place,
            c.run.run_id,
            c.what,
            c.from,
            tag_value(existing.tag_list(), TAG_RUN_ID).unwrap_or("none"),
            existing.source_db_cluster_snapshot_arn().unwrap_or("not reported")
        )));
    }
    if !is_encrypted_with(existing, c.key) {
        return Err(DrError::Conflict(format!(
            "snapshot {} is this run's {} but is not encrypted with {} (key: {})",
            c.id,
            c.what,
            c.key,
            existing.kms_key_id().unwrap_or("none")
        )));
    }
    Ok(())
}

/// Whether a copy's description says how it is encrypted (RDS's does;
/// when it does not, the copy is described again).
fn tells_encryption(copy: &DbClusterSnapshot) -> bool {
    copy.storage_encrypted().is_some_and(|enc| !enc || copy.kms_key_id().is_some())
}

/// Whether CopyDBClusterSnapshot failed because a snapshot of that name
/// exists (say, a racing copy).
fn copy_exists(e: &SdkError<CopyDBClusterSnapshotError>) -> bool {
    e.as_service_error().is_some_and(|s| s.is_db_cluster_snapshot_already_exists_fault())
        || e.code() == Some("DBClusterSnapshotAlreadyExistsFault")
}

/// Whether a snapshot is storage-encrypted with `key`.
pub fn is_encrypted_with(snap: &DbClusterSnapshot, key: &Arn) -> bool {
    snap.storage_encrypted() == Some(true) && snap.kms_key_id().is_some_and(|k| same_key(k, key))
}

/// RDS reports the key as its ARN; accept the bare key id too.
pub fn same_key(reported: &str, key: &Arn) -> bool {
    reported == key.as_str() || key.resource().strip_prefix("key/") == Some(reported)
}

/// Deletes a cluster snapshot; one already gone counts as deleted.
pub async fn delete_cluster_snapshot(rds: &Client, id: &str) -> DrResult<()> {
    match rds.delete_db_cluster_snapshot().db_cluster_snapshot_identifier(id).send().await {
        Ok(_) => Ok(()),
        Err(e) => gone_is_done(DrError::from_sdk(&format!("DeleteDBClusterSnapshot {id}"), e)),
    }
}

/// Deletes an instance (no final snapshot: Aurora instances hold no data of
/// their own); one already gone counts as deleted.
pub async fn delete_instance(rds: &Client, id: &str) -> DrResult<()> {
    match rds.delete_db_instance().db_instance_identifier(id).skip_final_snapshot(true).send().await {
        Ok(_) => Ok(()),
        Err(e) => gone_is_done(DrError::from_sdk(&format!("DeleteDBInstance {id}"), e)),
    }
}

/// Deletes a cluster, turning its deletion protection off first; with
/// `final_snapshot`, RDS keeps a final snapshot `{id}-final`. One already
/// gone counts as deleted.
pub async fn delete_cluster(
    rds: &Client,
    cluster: &DbCluster,
    id: &str,
    final_snapshot: bool,
) -> DrResult<()> {
    if cluster.deletion_protection() == Some(true) {
        tracing::info!(cluster = %id, "turning deletion protection off");
        rds.modify_db_cluster()
            .db_cluster_identifier(id)
            .deletion_protection(false)
            .apply_immediately(true)
            .send()
            .await
            .map_err(|e| DrError::from_sdk(&format!("ModifyDBCluster {id} (deletion protection off)"), e))?;
    }
    let mut req = rds.delete_db_cluster().db_cluster_identifier(id);
    req = if final_snapshot {
        req.skip_final_snapshot(false).final_db_snapshot_identifier(format!("{id}-final"))
    } else {
        req.skip_final_snapshot(true)
    };
    match req.send().await {
        Ok(_) => Ok(()),
        Err(e) => gone_is_done(DrError::from_sdk(&format!("DeleteDBCluster {id}"), e)),
    }
}

fn gone_is_done(err: DrError) -> DrResult<()> {
    match err {
        DrError::NotFound(_) => Ok(()),
        other => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        assert_eq!(classify_status("available"), Progress::Ready);
        for s in
            ["creating", "copying", "backing-up", "modifying", "renaming", "rebooting", "configuring-iam"]
        {
            assert_eq!(classify_status(s), Progress::InProgress, "{s}");
        }
        for s in [
            "failed",
            "incompatible-restore",
            "incompatible-parameters",
            "inaccessible-encryption-credentials",
        ] {
            assert_eq!(classify_status(s), Progress::Failed, "{s}");
        }
        assert_eq!(require_ready("x", "creating").map_err(|e| e.asl_name()), Err("ResourceNotReady"));
        assert_eq!(require_ready("x", "failed").map_err(|e| e.asl_name()), Err("ResourceFailed"));
    }

    #[test]
    fn keys_match_by_arn_or_bare_id() {
        let arn = "arn:aws:kms:us-west-1:111111111111:key/0f0e0d0c-0000-4000-8000-000000000001";
        let key: Arn = arn.parse().expect("arn");
        assert!(same_key(arn, &key));
        assert!(same_key("0f0e0d0c-0000-4000-8000-000000000001", &key));
        assert!(!same_key("0f0e0d0c", &key));
        assert!(!same_key("arn:aws:kms:us-west-1:111111111111:key/other", &key));
    }

    #[test]
    fn tags_mark_the_run() {
        let run = crate::payload::tests::finished_source_run();
        let tags = run_tags(&run);
        assert!(is_from_run(&tags, &run));
        assert!(is_managed(&tags));
        assert_eq!(tag_value(&tags, TAG_SOURCE_CLUSTER), Some("orders"));
        let mut other = run.clone();
        other.run_id = "run-2".parse().expect("id");
        assert!(!is_from_run(&tags, &other));
    }
}
