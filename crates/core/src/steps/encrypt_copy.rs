//! EncryptCopy: copy the source snapshot into the target region, encrypted
//! with the KMS key the target account may use.
//!
//! Input: [`RunState`] after CreateSnapshot (needs `sourceSnapshotId`,
//! `sourceSnapshotArn`). Output: the same with `targetSnapshotId` (= the
//! source snapshot id), `targetSnapshotArn`, `targetRegion`, `targetAccountId`
//! and `kmsKeyArn`.
//!
//! The copy is made with the source account's client in the target region:
//! `CopyDBClusterSnapshot(SourceDBClusterSnapshotIdentifier = source ARN,
//! TargetDBClusterSnapshotIdentifier = source id, KmsKeyId = settings key,
//! CopyTags = true, Tags = run tags)`. `PreSignedUrl` is only needed for
//! cross-region copies between AWS GovCloud (US) regions; in commercial
//! regions the SDK call needs none, so none is sent.
//!
//! Never an unencrypted copy: the copy (from the response, or described when
//! the response does not say) must be `StorageEncrypted` with the configured
//! key, else `UnsafeOperation`.
//!
//! Errors: `InvalidInput` (payload missing fields, carrying `failure`, or
//! disagreeing with the settings), `InvalidConfig` (no real key configured),
//! `Conflict` (a snapshot with the copy's name exists in the target region but
//! is not this run's copy), `UnsafeOperation` (copy not encrypted with the
//! key), `QuotaExceeded` (concurrent-copy or snapshot quota; retryable),
//! `AccessDenied` (the key is not usable), and the other AWS classifications.
//!
//! Idempotency: a copy of that name from the same source snapshot, encrypted
//! with the key, is reused (also when a racing copy answers
//! `DBClusterSnapshotAlreadyExistsFault`).
//!
//! Failure mode (the CleanUpCopy state, payload with `failure`): see
//! [`clean_up`]; it deletes only this run's unshared copy and its `failed`
//! source snapshot.
//!
//! On the target side the same function serves the `CopyToOwnAccount` state
//! (target-owned encryption): see [`super::own_copy`].

use std::sync::Arc;

use aws_sdk_rds::Client;
use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_rds::operation::copy_db_cluster_snapshot::CopyDBClusterSnapshotError;
use aws_sdk_rds::types::DbClusterSnapshot;
use serde_json::Value;

use crate::context::StepContext;
use crate::error::{DrError, DrResult};
use crate::ids::{Arn, SnapshotId};
use crate::payload::{RunState, agrees, need};
use crate::rds;
use crate::settings::{SourceSettings, keys};

const STEP: &str = "encrypt_copy";

/// Copies (or finds) this run's encrypted copy; see the module doc.
/// `target_rds` is the source account's client in the target region.
pub async fn run(target_rds: &Client, settings: &SourceSettings, run: RunState) -> DrResult<RunState> {
    let source_arn = check_input(settings, &run)?;
    let id = need(&run.source_snapshot_id, "sourceSnapshotId")?.clone();

    let copy = match rds::find_cluster_snapshot(target_rds, id.as_str(), false).await? {
        Some(existing) => {
            check_reusable(&existing, &id, &source_arn, settings, &run)?;
            tracing::info!(step = STEP, run_id = %run.run_id, snapshot = %id, region = %settings.target_region,
                status = existing.status().unwrap_or_default(), "reusing this run's encrypted copy");
            existing
        }
        None => copy(target_rds, &id, &source_arn, settings, &run).await?,
    };
    verify_encrypted(&copy, &id, settings)?;

    let arn = copy
        .db_cluster_snapshot_arn()
        .and_then(|a| a.parse::<Arn>().ok())
        .unwrap_or_else(|| Arn::cluster_snapshot(&settings.target_region, &settings.account_id, &id));
    let mut out = run;
    out.target_snapshot_id = Some(id);
    out.target_snapshot_arn = Some(arn);
    out.target_region = Some(settings.target_region.clone());
    out.target_account_id = Some(settings.target_account_id.clone());
    out.kms_key_arn = Some(settings.kms_key_arn.clone());
    Ok(out)
}

/// The untyped entry: source settings, a client in the target region; on the
/// target side, the own-copy mode.
pub async fn handle(ctx: Arc<StepContext>, input: Value) -> DrResult<Value> {
    if matches!(ctx.settings, crate::context::SideSettings::Target(_)) {
        return super::own_copy::handle(ctx, input).await;
    }
    let settings = ctx.source()?;
    let target_rds = ctx.aws.in_region(&settings.target_region).rds();
    if is_failure(&input) {
        return clean_up(&ctx.aws.rds(), &target_rds, settings, input).await;
    }
    let run_state = RunState::from_value(input)?;
    Ok(run(&target_rds, settings, run_state).await?.to_value())
}

/// Failure mode (the CleanUpCopy state): deletes this run's unshared copy
/// and its failed source snapshot, nothing else. `rds` calls the source
/// region, `target_rds` the target region. Returns `payload` unchanged.
///
/// The payload is read loosely (`runId`, `createdAt`: they name the run's
/// snapshot, `{prefix}-{cluster}-{stamp}`). Only resources with this run's
/// tags are deleted: the copy in the target region unless it is already
/// shared with the target account (the target side may be restoring from
/// it: kept and logged); the source snapshot only when it ended `failed`
/// (an available one is a recovery point; one still `creating` cannot be
/// deleted and is reported by the failure notification).
pub async fn clean_up(
    rds: &Client,
    target_rds: &Client,
    settings: &SourceSettings,
    payload: Value,
) -> DrResult<Value> {
    let Some(run) = loose_run(&payload) else {
        tracing::error!(
            step = STEP,
            mode = "cleanup",
            "payload has no usable runId/createdAt; deleting nothing"
        );
        return Ok(payload);
    };
    let id = crate::steps::create_snapshot::snapshot_id(settings, &run)?;
    let mut deleted = Vec::new();
    let mut kept = Vec::new();

    if let Some(copy) = rds::find_cluster_snapshot(target_rds, id.as_str(), false).await? {
        let status = copy.status().unwrap_or("unknown").to_owned();
        let target = settings.target_account_id.as_str();
        if !rds::is_from_run(copy.tag_list(), &run) {
            kept.push(format!("snapshot {id} in {} (not this run's)", settings.target_region));
        } else if status == "available"
            && rds::shared_with(target_rds, id.as_str()).await?.iter().any(|a| a == target)
        {
            kept.push(format!("copy {id} (shared with {target}: it may be in use)"));
        } else {
            delete_snapshot(target_rds, &id).await?;
            deleted.push(format!("copy {id} in {} ({status})", settings.target_region));
        }
    }
    if let Some(source) = rds::find_cluster_snapshot(rds, id.as_str(), false).await? {
        let status = source.status().unwrap_or("unknown").to_owned();
        if rds::is_from_run(source.tag_list(), &run) && rds::classify_status(&status) == rds::Progress::Failed
        {
            delete_snapshot(rds, &id).await?;
            deleted.push(format!("source snapshot {id} ({status})"));
        } else {
            kept.push(format!("source snapshot {id} ({status})"));
        }
    }
    tracing::warn!(step = STEP, mode = "cleanup", run_id = %run.run_id, deleted = ?deleted, kept = ?kept,
        "failed run cleaned up");
    Ok(payload)
}

fn is_failure(input: &Value) -> bool {
    input.get("failure").is_some_and(|f| !f.is_null())
}

/// The run of a failure-path payload, from `runId` and `createdAt` alone.
fn loose_run(input: &Value) -> Option<RunState> {
    let run_id = input.get("runId")?.as_str()?.parse().ok()?;
    let created_at = time::OffsetDateTime::parse(
        input.get("createdAt")?.as_str()?,
        &time::format_description::well_known::Rfc3339,
    )
    .ok()?;
    Some(RunState::new(run_id, created_at))
}

async fn delete_snapshot(rds: &Client, id: &SnapshotId) -> DrResult<()> {
    tracing::info!(step = STEP, mode = "cleanup", snapshot = %id, "deleting snapshot");
    match rds.delete_db_cluster_snapshot().db_cluster_snapshot_identifier(id.as_str()).send().await {
        Ok(_) => Ok(()),
        Err(e) => match DrError::from_sdk(&format!("DeleteDBClusterSnapshot {id}"), e) {
            DrError::NotFound(_) => Ok(()),
            other => Err(other),
        },
    }
}

/// Checks the payload against the settings; returns the source snapshot ARN.
fn check_input(settings: &SourceSettings, run: &RunState) -> DrResult<Arn> {
    if run.failure.is_some() {
        return Err(DrError::invalid_input(
            "EncryptCopy has no failure-path behaviour; payload carries `failure`",
        ));
    }
    if settings.kms_key_is_placeholder() {
        return Err(DrError::InvalidConfig {
            name: keys::KMS_KEY_ARN.env.into(),
            problem: "no KMS key is configured; the copy must be encrypted with the key shared with the target account"
                .into(),
        });
    }
    let id = need(&run.source_snapshot_id, "sourceSnapshotId")?;
    let arn = need(&run.source_snapshot_arn, "sourceSnapshotArn")?;
    let bad = |why: String| Err(DrError::invalid_input(format!("sourceSnapshotArn {arn} {why}")));
    if arn.service() != "rds" || arn.resource() != format!("cluster-snapshot:{id}") {
        return bad(format!("does not name cluster snapshot {id}"));
    }
    if arn.region().as_ref() != Some(&settings.region) {
        return bad(format!("is not in the source region {}", settings.region));
    }
    if arn.account().as_ref() != Some(&settings.account_id) {
        return bad(format!("is not owned by the source account {}", settings.account_id));
    }
    agrees(run.target_region.as_ref(), &settings.target_region, "target region", "copies to")?;
    agrees(run.kms_key_arn.as_ref(), &settings.kms_key_arn, "KMS key", "encrypts with")?;
    Ok(arn.clone())
}

async fn copy(
    target_rds: &Client,
    id: &SnapshotId,
    source_arn: &Arn,
    settings: &SourceSettings,
    run: &RunState,
) -> DrResult<DbClusterSnapshot> {
    let context = format!("CopyDBClusterSnapshot {source_arn} -> {}/{id}", settings.target_region);
    let result = target_rds
        .copy_db_cluster_snapshot()
        .source_db_cluster_snapshot_identifier(source_arn.as_str())
        .target_db_cluster_snapshot_identifier(id.as_str())
        .kms_key_id(settings.kms_key_arn.as_str())
        .copy_tags(true)
        .set_tags(Some(rds::run_tags(run)))
        .send()
        .await;
    match result {
        Ok(out) => {
            tracing::info!(step = STEP, run_id = %run.run_id, snapshot = %id, region = %settings.target_region,
                kms_key = %settings.kms_key_arn, "encrypted copy started");
            match out.db_cluster_snapshot {
                // The response says how the copy is encrypted: verify that.
                Some(c) if tells_encryption(&c) => Ok(c),
                // Otherwise verify what RDS lists.
                _ => rds::find_cluster_snapshot(target_rds, id.as_str(), false).await?.ok_or_else(|| {
                    DrError::NotFound(format!(
                        "copy {id} is not listed in {} after its creation",
                        settings.target_region
                    ))
                }),
            }
        }
        Err(e) if copy_exists(&e) => {
            tracing::info!(step = STEP, run_id = %run.run_id, snapshot = %id, "copy appeared concurrently; checking it");
            let conflict = DrError::from_sdk(&context, e);
            let existing =
                rds::find_cluster_snapshot(target_rds, id.as_str(), false).await?.ok_or(conflict)?;
            check_reusable(&existing, id, source_arn, settings, run)?;
            Ok(existing)
        }
        Err(e) => Err(DrError::from_sdk(&context, e)),
    }
}

/// An existing snapshot under the copy's name is reused only when it is this
/// run's copy: from the same source snapshot, encrypted with the key. RDS
/// names the source of every copy; when a listing does not (emulators), the
/// copy counts as this run's only if it carries this run's tags.
fn check_reusable(
    existing: &DbClusterSnapshot,
    id: &SnapshotId,
    source_arn: &Arn,
    settings: &SourceSettings,
    run: &RunState,
) -> DrResult<()> {
    let same_source = match existing.source_db_cluster_snapshot_arn() {
        Some(from) => from.eq_ignore_ascii_case(source_arn.as_str()),
        None => rds::is_from_run(existing.tag_list(), run),
    };
    if !same_source {
        return Err(DrError::Conflict(format!(
            "snapshot {id} already exists in {} but is not this run's copy of {source_arn} (copied from {})",
            settings.target_region,
            existing.source_db_cluster_snapshot_arn().unwrap_or("an unnamed source, without this run's tags")
        )));
    }
    if !is_encrypted_with(existing, &settings.kms_key_arn) {
        return Err(DrError::Conflict(format!(
            "snapshot {id} already exists in {} but is not encrypted with {} (key: {})",
            settings.target_region,
            settings.kms_key_arn,
            existing.kms_key_id().unwrap_or("none")
        )));
    }
    Ok(())
}

fn verify_encrypted(copy: &DbClusterSnapshot, id: &SnapshotId, settings: &SourceSettings) -> DrResult<()> {
    if is_encrypted_with(copy, &settings.kms_key_arn) {
        return Ok(());
    }
    tracing::error!(step = STEP, snapshot = %id, region = %settings.target_region,
        storage_encrypted = ?copy.storage_encrypted(), kms_key = copy.kms_key_id().unwrap_or_default(),
        "copy is not encrypted with the configured key; it will not be shared");
    Err(DrError::Unsafe(format!(
        "copy {id} in {} is not encrypted with {} (storage encrypted: {:?}, key: {}); it must not be shared",
        settings.target_region,
        settings.kms_key_arn,
        copy.storage_encrypted(),
        copy.kms_key_id().unwrap_or("none")
    )))
}

/// Whether a copy's description says how it is encrypted (RDS's does;
/// when it does not, the copy is described again).
pub(crate) fn tells_encryption(copy: &DbClusterSnapshot) -> bool {
    copy.storage_encrypted().is_some_and(|enc| !enc || copy.kms_key_id().is_some())
}

/// Whether CopyDBClusterSnapshot failed because a snapshot of that name
/// exists (say, a racing copy).
pub(crate) fn copy_exists(e: &SdkError<CopyDBClusterSnapshotError>) -> bool {
    e.as_service_error().is_some_and(|s| s.is_db_cluster_snapshot_already_exists_fault())
        || e.code() == Some("DBClusterSnapshotAlreadyExistsFault")
}

pub(crate) fn is_encrypted_with(snap: &DbClusterSnapshot, key: &Arn) -> bool {
    snap.storage_encrypted() == Some(true) && snap.kms_key_id().is_some_and(|k| same_key(k, key))
}

/// RDS reports the key as its ARN; accept the bare key id too.
pub(crate) fn same_key(reported: &str, key: &Arn) -> bool {
    reported == key.as_str() || key.resource().strip_prefix("key/") == Some(reported)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use aws_sdk_rds::Client;
    use aws_sdk_rds::operation::copy_db_cluster_snapshot::{
        CopyDBClusterSnapshotError, CopyDbClusterSnapshotInput, CopyDbClusterSnapshotOutput,
    };
    use aws_sdk_rds::operation::describe_db_cluster_snapshots::DescribeDBClusterSnapshotsError;
    use aws_sdk_rds::types::error::SnapshotQuotaExceededFault;
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::settings::tests::source_settings;
    use crate::steps::test_support::{
        self as ts, KMS_KEY_ARN, SNAPSHOT_ID, SOURCE_SNAPSHOT_ARN, TARGET_SNAPSHOT_ARN,
    };

    /// What CreateSnapshot hands EncryptCopy.
    fn created_run() -> RunState {
        let mut run = crate::payload::tests::finished_source_run();
        run.target_snapshot_id = None;
        run.target_snapshot_arn = None;
        run
    }

    fn copy_returns(
        snap: Option<DbClusterSnapshot>,
        seen: Option<Arc<Mutex<Option<CopyDbClusterSnapshotInput>>>>,
    ) -> Rule {
        mock!(Client::copy_db_cluster_snapshot)
            .match_requests(move |r| {
                if let Some(seen) = &seen {
                    *seen.lock().expect("lock") = Some(r.clone());
                }
                true
            })
            .then_output(move || {
                CopyDbClusterSnapshotOutput::builder().set_db_cluster_snapshot(snap.clone()).build()
            })
    }

    fn copy_fails(code: &'static str) -> Rule {
        mock!(Client::copy_db_cluster_snapshot)
            .then_error(move || CopyDBClusterSnapshotError::generic(ts::meta(code)))
    }

    fn unencrypted() -> DbClusterSnapshot {
        let mut c = ts::copy("copying");
        c.storage_encrypted = Some(false);
        c.kms_key_id = None;
        c
    }

    #[tokio::test]
    async fn copies_encrypted_with_the_key_and_tags() {
        let seen = Arc::new(Mutex::new(None));
        let (find, copy) =
            (ts::snapshot_missing(), copy_returns(Some(ts::copy("copying")), Some(seen.clone())));
        let rds = ts::rds(&[&find, &copy]);

        let out = run(&rds, &source_settings(), created_run()).await.expect("copied");

        assert_eq!(copy.num_calls(), 1);
        let req = seen.lock().expect("lock").clone().expect("request");
        assert_eq!(req.source_db_cluster_snapshot_identifier(), Some(SOURCE_SNAPSHOT_ARN));
        assert_eq!(req.target_db_cluster_snapshot_identifier(), Some(SNAPSHOT_ID));
        assert_eq!(req.kms_key_id(), Some(KMS_KEY_ARN));
        assert_eq!(req.copy_tags(), Some(true));
        assert_eq!(req.pre_signed_url(), None);
        assert_eq!(rds::tag_value(req.tags(), rds::TAG_RUN_ID), Some("run-1"));
        assert_eq!(rds::tag_value(req.tags(), rds::TAG_MANAGED_BY), Some("aurora-dr"));

        assert_eq!(out.target_snapshot_id.as_ref().map(|s| s.as_str()), Some(SNAPSHOT_ID));
        assert_eq!(out.target_snapshot_arn.as_ref().map(|s| s.as_str()), Some(TARGET_SNAPSHOT_ARN));
        assert_eq!(out.kms_key_arn.as_ref().map(|s| s.as_str()), Some(KMS_KEY_ARN));
        assert_eq!(out.target_region.as_ref().map(|s| s.as_str()), Some("us-west-1"));
        assert_eq!(out.target_account_id.as_ref().map(|s| s.as_str()), Some("222222222222"));
    }

    #[tokio::test]
    async fn a_retry_reuses_this_runs_copy() {
        let (find, copy) = (ts::snapshot_listed(ts::copy("copying")), copy_returns(None, None));
        let rds = ts::rds(&[&find, &copy]);
        let out = run(&rds, &source_settings(), created_run()).await.expect("reused");
        assert_eq!(copy.num_calls(), 0);
        assert_eq!(out.target_snapshot_arn.as_ref().map(|s| s.as_str()), Some(TARGET_SNAPSHOT_ARN));
    }

    #[tokio::test]
    async fn a_copy_that_is_not_this_runs_is_a_conflict_and_untouched() {
        let mut other_source = ts::copy("available");
        other_source.source_db_cluster_snapshot_arn =
            Some("arn:aws:rds:us-west-2:111111111111:cluster-snapshot:someone-elses".into());
        let mut no_source = ts::copy("available");
        no_source.source_db_cluster_snapshot_arn = None;
        no_source.tag_list = Some(ts::managed_tags("run-0"));
        let mut other_key = ts::copy("available");
        other_key.kms_key_id = Some("arn:aws:kms:us-west-1:111111111111:key/other".into());
        for (existing, want) in [
            (other_source, "someone-elses"),
            (no_source, "without this run's tags"),
            (other_key, "key/other"),
            (unencrypted(), "not encrypted"),
        ] {
            let (find, copy) = (ts::snapshot_listed(existing), copy_returns(None, None));
            let rds = ts::rds(&[&find, &copy]);
            let err = run(&rds, &source_settings(), created_run()).await.expect_err(want);
            assert_eq!(err.asl_name(), "Conflict", "{err}");
            assert!(err.to_string().contains(want), "{want}: {err}");
            assert_eq!(copy.num_calls(), 0);
        }
    }

    #[tokio::test]
    async fn a_copy_without_a_named_source_is_reused_only_with_this_runs_tags() {
        let mut tagged = ts::copy("copying");
        tagged.source_db_cluster_snapshot_arn = None;
        let (find, copy) = (ts::snapshot_listed(tagged), copy_returns(None, None));
        let rds = ts::rds(&[&find, &copy]);
        run(&rds, &source_settings(), created_run()).await.expect("reused");
        assert_eq!(copy.num_calls(), 0);
    }

    #[tokio::test]
    async fn a_racing_copy_is_reused_when_it_is_this_runs() {
        let (find, copy) = (ts::snapshot_appearing(ts::copy("copying")), ts::copy_already_exists());
        let rds = ts::rds(&[&find, &copy]);
        let out = run(&rds, &source_settings(), created_run()).await.expect("reused");
        assert_eq!((find.num_calls(), copy.num_calls()), (2, 1));
        assert_eq!(out.target_snapshot_id.as_ref().map(|s| s.as_str()), Some(SNAPSHOT_ID));
    }

    #[tokio::test]
    async fn a_copy_that_is_not_encrypted_with_the_key_is_unsafe() {
        let mut other_key = ts::copy("copying");
        other_key.kms_key_id = Some("arn:aws:kms:us-west-1:111111111111:key/aws-rds-default".into());
        for made in [unencrypted(), other_key] {
            let (find, copy) = (ts::snapshot_missing(), copy_returns(Some(made), None));
            let rds = ts::rds(&[&find, &copy]);
            let err = run(&rds, &source_settings(), created_run()).await.expect_err("unsafe");
            assert_eq!(err.asl_name(), "UnsafeOperation", "{err}");
            assert!(!err.is_retryable());
        }
    }

    #[tokio::test]
    async fn a_response_without_encryption_details_is_verified_by_describing() {
        let bare = DbClusterSnapshot::builder()
            .db_cluster_snapshot_identifier(SNAPSHOT_ID)
            .status("copying")
            .build();
        for (listed_copy, want) in [(ts::copy("copying"), "ok"), (unencrypted(), "UnsafeOperation")] {
            let find = ts::snapshot_appearing(listed_copy);
            let copy = copy_returns(Some(bare.clone()), None);
            let rds = ts::rds(&[&find, &copy]);
            let got = run(&rds, &source_settings(), created_run()).await;
            assert_eq!(got.map(|_| "ok").unwrap_or_else(|e| e.asl_name()), want);
            assert_eq!(find.num_calls(), 2);
        }
    }

    #[tokio::test]
    async fn aws_errors_are_classified() {
        let quota = mock!(Client::copy_db_cluster_snapshot).then_error(|| {
            CopyDBClusterSnapshotError::SnapshotQuotaExceededFault(
                SnapshotQuotaExceededFault::builder().meta(ts::meta("SnapshotQuotaExceeded")).build(),
            )
        });
        let cases = [
            (quota, "QuotaExceeded"),
            (copy_fails("Throttling"), "Throttled"),
            (copy_fails("KMSKeyNotAccessibleFault"), "AccessDenied"),
            (
                mock!(Client::copy_db_cluster_snapshot).then_http_response(|| ts::http_status(503)),
                "ServiceUnavailable",
            ),
        ];
        for (copy, want) in cases {
            let find = ts::snapshot_missing();
            let rds = ts::rds(&[&find, &copy]);
            let err = run(&rds, &source_settings(), created_run()).await.expect_err(want);
            assert_eq!(err.asl_name(), want, "{err}");
        }
        let throttled_describe = mock!(Client::describe_db_cluster_snapshots)
            .then_error(|| DescribeDBClusterSnapshotsError::generic(ts::meta("ThrottlingException")));
        let copy = copy_returns(None, None);
        let rds = ts::rds(&[&throttled_describe, &copy]);
        let err = run(&rds, &source_settings(), created_run()).await.expect_err("throttled");
        assert_eq!(err.asl_name(), "Throttled");
        assert_eq!(copy.num_calls(), 0);
    }

    #[tokio::test]
    async fn a_payload_that_disagrees_with_the_settings_copies_nothing() {
        let mut no_arn = created_run();
        no_arn.source_snapshot_arn = None;
        let mut other_region = created_run();
        other_region.source_snapshot_arn = Some(ts::snapshot_arn("eu-west-1", "111111111111"));
        let mut other_account = created_run();
        other_account.source_snapshot_arn = Some(ts::snapshot_arn("us-west-2", "333333333333"));
        let mut other_snapshot = created_run();
        other_snapshot.source_snapshot_arn =
            Some("arn:aws:rds:us-west-2:111111111111:cluster-snapshot:other".parse().expect("arn"));
        let mut other_key = created_run();
        other_key.kms_key_arn = Some("arn:aws:kms:us-west-1:111111111111:key/other".parse().expect("arn"));
        let mut other_target = created_run();
        other_target.target_region = Some("eu-west-1".parse().expect("region"));
        let mut failed = created_run();
        failed.failure = Some(crate::payload::Failure { error: "X".into(), cause: String::new() });
        for (case, input) in [
            ("sourceSnapshotArn", no_arn),
            ("source region", other_region),
            ("source account", other_account),
            ("does not name", other_snapshot),
            ("KMS key", other_key),
            ("target region", other_target),
            ("failure", failed),
        ] {
            let (find, copy) = (ts::snapshot_missing(), copy_returns(None, None));
            let rds = ts::rds(&[&find, &copy]);
            let err = run(&rds, &source_settings(), input).await.expect_err(case);
            ts::assert_invalid_input(&err, case);
            assert_eq!(find.num_calls() + copy.num_calls(), 0, "{case}");
        }
    }

    #[test]
    fn keys_match_by_arn_or_bare_id() {
        let key: Arn = KMS_KEY_ARN.parse().expect("arn");
        assert!(same_key(KMS_KEY_ARN, &key));
        assert!(same_key("0f0e0d0c-0000-4000-8000-000000000001", &key));
        assert!(!same_key("0f0e0d0c", &key));
        assert!(!same_key("arn:aws:kms:us-west-1:111111111111:key/other", &key));
    }

    #[tokio::test]
    async fn handle_copies_with_a_client_in_the_target_region() {
        let recorder = ts::Recorder::default();
        let _ = handle(ts::source_context(&recorder), created_run().to_value()).await;
        let sent = recorder.sent();
        assert!(!sent.is_empty());
        assert!(sent.iter().all(|s| s.uri.contains("rds.us-west-1.")), "{sent:?}");
        assert!(sent[0].body.contains("Action=DescribeDBClusterSnapshots"), "{}", sent[0].body);

        // The target side is the own-copy mode (`own_copy`); without a target key it sends nothing.
        let recorder = ts::Recorder::default();
        let out =
            handle(ts::target_context(&recorder), created_run().to_value()).await.expect("own copy off");
        assert_eq!(out, created_run().to_value());
        assert!(recorder.sent().is_empty());
    }
}
