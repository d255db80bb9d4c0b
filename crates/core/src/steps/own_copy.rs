//! EncryptCopy's target-side mode, the `CopyToOwnAccount` state: target-owned
//! encryption.
//!
//! Input: the [`RunState`] after WaitForSharedSnapshot (needs
//! `targetSnapshotId`, `targetSnapshotArn`). Output: the same with
//! `ownSnapshotId` and `ownSnapshotArn` when `TARGET_KMS_KEY_ARN` is set;
//! unchanged when it is not (target-owned encryption off: the machine's
//! `UsesOwnCopy` Choice then goes straight to Restore, which restores from
//! the shared snapshot as before).
//!
//! With the key set, the target account copies the shared snapshot into its
//! own account, in its own region, re-encrypted with its own key:
//! `CopyDBClusterSnapshot(SourceDBClusterSnapshotIdentifier = shared ARN,
//! TargetDBClusterSnapshotIdentifier = the shared snapshot's name,
//! KmsKeyId = TARGET_KMS_KEY_ARN, Tags = run tags)`. WaitForOwnCopy waits for
//! it and Restore restores from it with the same key, so the DR cluster (and
//! the copy) no longer depend on the source account's key or share: the
//! source may revoke either afterwards. Older own copies are removed by the
//! target side's retention (`target.retain_*`, see [`super::retention`]).
//!
//! Errors: `InvalidInput` (payload lacks a field, carries `failure`, or its
//! shared snapshot ARN is not the source account's in this region),
//! `Conflict` (a snapshot with the copy's name exists but is not this run's
//! own copy), `UnsafeOperation` (the copy is not encrypted with the target's
//! key), `NotFound` (the snapshot is no longer shared), `AccessDenied` (a key
//! is not usable), `QuotaExceeded` (retryable) and the other AWS
//! classifications.
//!
//! Idempotency: this run's own copy (its tags, encrypted with the key) is
//! reused, also when a racing copy answers `DBClusterSnapshotAlreadyExistsFault`.

use std::sync::Arc;

use aws_sdk_rds::Client;
use aws_sdk_rds::types::DbClusterSnapshot;
use serde_json::Value;

use crate::context::StepContext;
use crate::error::{DrError, DrResult};
use crate::ids::{Arn, SnapshotId};
use crate::payload::{RunState, need};
use crate::rds;
use crate::settings::TargetSettings;
use crate::steps::encrypt_copy::{copy_exists, is_encrypted_with, tells_encryption};

const STEP: &str = "encrypt_copy";

/// Copies (or finds) this run's own copy; see the module doc.
/// `rds` is the target account's client in the target region.
pub async fn run(rds: &Client, settings: &TargetSettings, run: RunState) -> DrResult<RunState> {
    if run.failure.is_some() {
        return Err(DrError::invalid_input(
            "CopyToOwnAccount has no failure-path behaviour; payload carries `failure`",
        ));
    }
    let Some(key) = &settings.kms_key_arn else {
        tracing::info!(step = STEP, mode = "own_copy", run_id = %run.run_id,
            "target-owned encryption is off (no TARGET_KMS_KEY_ARN): restoring from the shared snapshot");
        return Ok(run);
    };
    let shared = check_shared(settings, &run)?;
    let id = need(&run.target_snapshot_id, "targetSnapshotId")?.clone();

    let copy = match rds::find_cluster_snapshot(rds, id.as_str(), false).await? {
        Some(existing) => {
            check_reusable(&existing, &id, &shared, key, &run)?;
            tracing::info!(step = STEP, mode = "own_copy", run_id = %run.run_id, snapshot = %id,
                status = existing.status().unwrap_or_default(), "reusing this run's own copy");
            existing
        }
        None => copy(rds, &id, &shared, key, &run).await?,
    };
    if !is_encrypted_with(&copy, key) {
        return Err(DrError::Unsafe(format!(
            "own copy {id} is not encrypted with the target key {key} (storage encrypted: {:?}, key: {}); \
             it must not be restored",
            copy.storage_encrypted(),
            copy.kms_key_id().unwrap_or("none")
        )));
    }
    let arn = copy
        .db_cluster_snapshot_arn()
        .and_then(|a| a.parse::<Arn>().ok())
        .unwrap_or_else(|| Arn::cluster_snapshot(&settings.region, &settings.account_id, &id));
    let mut out = run;
    out.own_snapshot_id = Some(id);
    out.own_snapshot_arn = Some(arn);
    Ok(out)
}

/// The untyped entry (called by EncryptCopy's `handle` on the target side).
pub async fn handle(ctx: Arc<StepContext>, input: Value) -> DrResult<Value> {
    let settings = ctx.target()?;
    let run_state = RunState::from_value(input)?;
    let rds = ctx.aws.in_region(&settings.region).rds();
    Ok(run(&rds, settings, run_state).await?.to_value())
}

/// The shared snapshot must be the source account's, in this region, named
/// as the payload says.
fn check_shared(settings: &TargetSettings, run: &RunState) -> DrResult<Arn> {
    let arn = need(&run.target_snapshot_arn, "targetSnapshotArn")?;
    let id = need(&run.target_snapshot_id, "targetSnapshotId")?;
    let bad = |why: String| Err(DrError::invalid_input(format!("targetSnapshotArn {arn} {why}")));
    if arn.service() != "rds" || !arn.resource().eq_ignore_ascii_case(&format!("cluster-snapshot:{id}")) {
        return bad(format!("does not name cluster snapshot {id}"));
    }
    if arn.account().as_ref() != Some(&settings.source_account_id) {
        return bad(format!("is not owned by the source account {}", settings.source_account_id));
    }
    if arn.region().as_ref() != Some(&settings.region) {
        return bad(format!("is not in this region {}", settings.region));
    }
    Ok(arn.clone())
}

async fn copy(
    rds: &Client,
    id: &SnapshotId,
    shared: &Arn,
    key: &Arn,
    run: &RunState,
) -> DrResult<DbClusterSnapshot> {
    let context = format!("CopyDBClusterSnapshot {shared} -> own copy {id}");
    let result = rds
        .copy_db_cluster_snapshot()
        .source_db_cluster_snapshot_identifier(shared.as_str())
        .target_db_cluster_snapshot_identifier(id.as_str())
        .kms_key_id(key.as_str())
        .set_tags(Some(rds::run_tags(run)))
        .send()
        .await;
    match result {
        Ok(out) => {
            tracing::info!(step = STEP, mode = "own_copy", run_id = %run.run_id, snapshot = %id,
                shared = %shared, kms_key = %key, "own copy started");
            match out.db_cluster_snapshot {
                Some(c) if tells_encryption(&c) => Ok(c),
                _ => rds::find_cluster_snapshot(rds, id.as_str(), false).await?.ok_or_else(|| {
                    DrError::NotFound(format!("own copy {id} is not listed after its creation"))
                }),
            }
        }
        Err(e) if copy_exists(&e) => {
            let conflict = DrError::from_sdk(&context, e);
            let existing = rds::find_cluster_snapshot(rds, id.as_str(), false).await?.ok_or(conflict)?;
            check_reusable(&existing, id, shared, key, run)?;
            Ok(existing)
        }
        Err(e) => Err(DrError::from_sdk(&context, e)),
    }
}

/// A snapshot under the copy's name is reused only when it is this run's own
/// copy of the shared snapshot, encrypted with the target key.
fn check_reusable(
    existing: &DbClusterSnapshot,
    id: &SnapshotId,
    shared: &Arn,
    key: &Arn,
    run: &RunState,
) -> DrResult<()> {
    let from_shared = existing
        .source_db_cluster_snapshot_arn()
        .is_none_or(|from| from.eq_ignore_ascii_case(shared.as_str()));
    if !rds::is_from_run(existing.tag_list(), run) || !from_shared {
        return Err(DrError::Conflict(format!(
            "snapshot {id} already exists in the target account but is not run {}'s own copy of {shared} \
             (run-id tag: {}, copied from: {}); nothing was changed",
            run.run_id,
            rds::tag_value(existing.tag_list(), rds::TAG_RUN_ID).unwrap_or("none"),
            existing.source_db_cluster_snapshot_arn().unwrap_or("not reported")
        )));
    }
    if !is_encrypted_with(existing, key) {
        return Err(DrError::Conflict(format!(
            "snapshot {id} is this run's own copy but is not encrypted with the target key {key} (key: {})",
            existing.kms_key_id().unwrap_or("none")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use aws_sdk_rds::operation::copy_db_cluster_snapshot::{
        CopyDBClusterSnapshotError, CopyDbClusterSnapshotInput, CopyDbClusterSnapshotOutput,
    };
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::steps::test_support as ts;

    const OWN_KEY: &str = "arn:aws:kms:us-west-1:222222222222:key/1111aaaa-0000-4000-8000-000000000002";
    const SHARED_ARN: &str =
        "arn:aws:rds:us-west-1:111111111111:cluster-snapshot:aurora-dr-orders-20261125160005";
    const OWN_ARN: &str =
        "arn:aws:rds:us-west-1:222222222222:cluster-snapshot:aurora-dr-orders-20261125160005";
    const NAME: &str = "aurora-dr-orders-20261125160005";

    fn settings_with_key() -> TargetSettings {
        let mut s = crate::steps::target_support::settings();
        s.kms_key_arn = Some(OWN_KEY.parse().expect("arn"));
        s
    }

    fn shared_run() -> RunState {
        crate::steps::target_support::target_run()
    }

    fn own_copy(status: &str) -> DbClusterSnapshot {
        DbClusterSnapshot::builder()
            .db_cluster_snapshot_identifier(NAME)
            .db_cluster_snapshot_arn(OWN_ARN)
            .source_db_cluster_snapshot_arn(SHARED_ARN)
            .snapshot_type("manual")
            .status(status)
            .storage_encrypted(true)
            .kms_key_id(OWN_KEY)
            .set_tag_list(Some(rds::run_tags(&shared_run())))
            .build()
    }

    fn copy_returns(snap: DbClusterSnapshot, seen: Arc<Mutex<Option<CopyDbClusterSnapshotInput>>>) -> Rule {
        mock!(Client::copy_db_cluster_snapshot)
            .match_requests(move |r| {
                *seen.lock().expect("lock") = Some(r.clone());
                true
            })
            .then_output(move || {
                CopyDbClusterSnapshotOutput::builder().db_cluster_snapshot(snap.clone()).build()
            })
    }

    #[tokio::test]
    async fn copies_the_shared_snapshot_into_the_target_account_with_the_target_key() {
        let seen = Arc::new(Mutex::new(None));
        let (find, copy) = (ts::snapshot_missing(), copy_returns(own_copy("copying"), seen.clone()));
        let out = run(&ts::rds(&[&find, &copy]), &settings_with_key(), shared_run()).await.expect("copied");
        let req = seen.lock().expect("lock").clone().expect("request");
        assert_eq!(req.source_db_cluster_snapshot_identifier(), Some(SHARED_ARN));
        assert_eq!(req.target_db_cluster_snapshot_identifier(), Some(NAME));
        assert_eq!(req.kms_key_id(), Some(OWN_KEY));
        assert!(rds::is_from_run(req.tags(), &shared_run()));
        assert_eq!(rds::tag_value(req.tags(), rds::TAG_SOURCE_CLUSTER), Some("orders"));
        assert_eq!(out.own_snapshot_id.as_ref().map(SnapshotId::as_str), Some(NAME));
        assert_eq!(out.own_snapshot_arn.as_ref().map(Arn::as_str), Some(OWN_ARN));
        let mut want = shared_run();
        want.own_snapshot_id = out.own_snapshot_id.clone();
        want.own_snapshot_arn = out.own_snapshot_arn.clone();
        assert_eq!(out, want, "only the own copy's fields are added");
    }

    #[tokio::test]
    async fn without_a_target_key_nothing_is_called_and_the_payload_is_unchanged() {
        let (find, copy) = (ts::snapshot_missing(), copy_returns(own_copy("copying"), Arc::default()));
        let settings = crate::steps::target_support::settings();
        let out = run(&ts::rds(&[&find, &copy]), &settings, shared_run()).await.expect("off");
        assert_eq!(out, shared_run());
        assert_eq!(find.num_calls() + copy.num_calls(), 0);
    }

    #[tokio::test]
    async fn a_retry_reuses_this_runs_own_copy() {
        let (find, copy) =
            (ts::snapshot_listed(own_copy("copying")), copy_returns(own_copy("copying"), Arc::default()));
        let out = run(&ts::rds(&[&find, &copy]), &settings_with_key(), shared_run()).await.expect("reused");
        assert_eq!(copy.num_calls(), 0);
        assert_eq!(out.own_snapshot_arn.as_ref().map(Arn::as_str), Some(OWN_ARN));
    }

    #[tokio::test]
    async fn a_racing_copy_is_reused_when_it_is_this_runs() {
        let (find, copy) = (ts::snapshot_appearing(own_copy("copying")), ts::copy_already_exists());
        run(&ts::rds(&[&find, &copy]), &settings_with_key(), shared_run()).await.expect("reused");
        assert_eq!((find.num_calls(), copy.num_calls()), (2, 1));
    }

    #[tokio::test]
    async fn a_snapshot_under_the_name_that_is_not_this_runs_own_copy_is_a_conflict() {
        let mut hand_made = own_copy("available");
        hand_made.tag_list = Some(Vec::new());
        let mut other_source = own_copy("available");
        other_source.source_db_cluster_snapshot_arn =
            Some("arn:aws:rds:us-west-1:111111111111:cluster-snapshot:other".into());
        let mut other_key = own_copy("available");
        other_key.kms_key_id = Some("arn:aws:kms:us-west-1:222222222222:key/other".into());
        for (existing, want) in
            [(hand_made, "run-id tag: none"), (other_source, "other"), (other_key, "key/other")]
        {
            let (find, copy) =
                (ts::snapshot_listed(existing), copy_returns(own_copy("copying"), Arc::default()));
            let err =
                run(&ts::rds(&[&find, &copy]), &settings_with_key(), shared_run()).await.expect_err(want);
            assert_eq!(err.asl_name(), "Conflict", "{err}");
            assert!(err.to_string().contains(want), "{want}: {err}");
            assert_eq!(copy.num_calls(), 0);
        }
    }

    #[tokio::test]
    async fn a_copy_not_encrypted_with_the_target_key_is_unsafe() {
        let mut source_key = own_copy("copying");
        source_key.kms_key_id =
            Some("arn:aws:kms:us-west-1:111111111111:key/0f0e0d0c-0000-4000-8000-000000000001".into());
        let (find, copy) = (ts::snapshot_missing(), copy_returns(source_key, Arc::default()));
        let err =
            run(&ts::rds(&[&find, &copy]), &settings_with_key(), shared_run()).await.expect_err("unsafe");
        assert_eq!(err.asl_name(), "UnsafeOperation", "{err}");
    }

    #[tokio::test]
    async fn aws_errors_are_classified() {
        for (code, want) in [
            ("DBClusterSnapshotNotFoundFault", "NotFound"),
            ("KMSKeyNotAccessibleFault", "AccessDenied"),
            ("SnapshotQuotaExceeded", "QuotaExceeded"),
            ("Throttling", "Throttled"),
        ] {
            let find = ts::snapshot_missing();
            let copy = mock!(Client::copy_db_cluster_snapshot)
                .then_error(move || CopyDBClusterSnapshotError::generic(ts::meta(code)));
            let err =
                run(&ts::rds(&[&find, &copy]), &settings_with_key(), shared_run()).await.expect_err(code);
            assert_eq!(err.asl_name(), want, "{code}: {err}");
        }
    }

    #[tokio::test]
    async fn a_payload_that_disagrees_copies_nothing() {
        let mut no_arn = shared_run();
        no_arn.target_snapshot_arn = None;
        let mut other_account = shared_run();
        other_account.target_snapshot_arn = Some(ts::snapshot_arn("us-west-1", "333333333333"));
        let mut other_region = shared_run();
        other_region.target_snapshot_arn = Some(ts::snapshot_arn("eu-west-1", "111111111111"));
        let mut other_name = shared_run();
        other_name.target_snapshot_id = Some("other".parse().expect("id"));
        let mut failed = shared_run();
        failed.failure = Some(crate::payload::Failure { error: "X".into(), cause: String::new() });
        for (case, input) in [
            ("targetSnapshotArn", no_arn),
            ("source account", other_account),
            ("this region", other_region),
            ("does not name", other_name),
            ("failure", failed),
        ] {
            let (find, copy) = (ts::snapshot_missing(), copy_returns(own_copy("copying"), Arc::default()));
            let err = run(&ts::rds(&[&find, &copy]), &settings_with_key(), input).await.expect_err(case);
            ts::assert_invalid_input(&err, case);
            assert_eq!(find.num_calls() + copy.num_calls(), 0, "{case}");
        }
    }

    #[tokio::test]
    async fn encrypt_copy_on_the_target_side_is_the_own_copy_mode() {
        // Without a target key: nothing is sent and the payload comes back as it was.
        let recorder = ts::Recorder::default();
        let out = crate::steps::encrypt_copy::handle(ts::target_context(&recorder), shared_run().to_value())
            .await
            .expect("off");
        assert_eq!(out, shared_run().to_value());
        assert!(recorder.sent().is_empty());

        // With one: the target account's client in the target region looks for the copy first.
        let recorder = ts::Recorder::default();
        let ctx = recorder.context(crate::context::SideSettings::Target(settings_with_key()));
        let _ = crate::steps::encrypt_copy::handle(ctx, shared_run().to_value()).await;
        let sent = recorder.sent();
        assert!(!sent.is_empty());
        assert!(sent.iter().all(|s| s.uri.contains("rds.us-west-1.")), "{sent:?}");
        assert!(sent[0].body.contains("Action=DescribeDBClusterSnapshots"), "{}", sent[0].body);
    }
}
