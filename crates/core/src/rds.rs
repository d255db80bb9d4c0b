//! RDS helpers every step shares: look-ups that treat "not found" as `None`,
//! the tags that mark what aurora-dr created, and the one classification of
//! RDS statuses into ready / in progress / failed.

use aws_sdk_rds::Client;
use aws_sdk_rds::types::{DbCluster, DbClusterSnapshot, DbClusterSnapshotAttributesResult, DbInstance, Tag};

use crate::error::{DrError, DrResult};
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
    let context = format!("DescribeDBClusterSnapshots {}", cluster.unwrap_or("(manual)"));
    let mut all = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = rds
            .describe_db_cluster_snapshots()
            .set_db_cluster_identifier(cluster.map(str::to_owned))
            .snapshot_type("manual")
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

/// Turns a status into the step's outcome: `Ok` when ready, the retryable
/// `ResourceNotReady` while in progress, the fatal `ResourceFailed` otherwise.
pub fn require_ready(resource: &str, status: &str) -> DrResult<()> {
    match classify_status(status) {
        Progress::Ready => Ok(()),
        Progress::InProgress => Err(DrError::not_ready(resource, status)),
        Progress::Failed => Err(DrError::ResourceFailed { resource: resource.into(), status: status.into() }),
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
