//! EncryptCopy: copy the source snapshot into the target region, encrypted
//! with the KMS key the target account may use.
//!
//! Input: [`RunState`] after CreateSnapshot (needs `sourceSnapshotId`,
//! `sourceSnapshotArn`; `targetRegion` picks the target region, its key and
//! targets: [`SourceSettings::for_run_region`]). Output: the same with `targetSnapshotId` (= the
//! source snapshot id), `targetSnapshotArn`, `targetRegion`, `targetAccountId`
//! and `kmsKeyArn`.
//!
//! The copy is made with the source account's client in the target region:
//! `CopyDBClusterSnapshot(SourceDBClusterSnapshotIdentifier = source ARN,
//! TargetDBClusterSnapshotIdentifier = source id, KmsKeyId = settings key,
//! CopyTags = true, Tags = run tags)` ([`rds::copy_snapshot`]).
//!
//! Never an unencrypted copy: the copy (from the response, or described when
//! the response does not say) must be `StorageEncrypted` with the configured
//! key, else `UnsafeOperation`.
//!
//! Errors: `InvalidInput` (payload missing fields, carrying `failure`, or
//! disagreeing with the settings), `Conflict` (a snapshot with the copy's name exists in the target region but
//! is not this run's copy), `UnsafeOperation` (copy not encrypted with the
//! key), `QuotaExceeded` (concurrent-copy or snapshot quota; retryable),
//! `AccessDenied` (the key is not usable), and the other AWS classifications.
//!
//! Idempotency: this run's copy (its tags, from the same source snapshot,
//! encrypted with the key) is reused, also when a racing copy answers
//! `DBClusterSnapshotAlreadyExistsFault` ([`rds::copy_snapshot`]'s one reuse
//! rule).
//!
//! The failure path's CleanUpCopy state is [`super::clean_up_snapshot`]; the
//! target side's copy into its own account is [`super::copy_to_own_account`].

use std::sync::Arc;

use aws_sdk_rds::Client;
use serde_json::Value;

use crate::context::StepContext;
use crate::error::{DrError, DrResult};
use crate::ids::Arn;
use crate::payload::{RunState, agrees, need};
use crate::rds;
use crate::settings::SourceSettings;
use crate::steps::input::{self, InputKind};

/// The state this module serves.
pub const STATE: &str = "EncryptCopy";

/// Copies (or finds) this run's encrypted copy; see the module doc.
/// `target_rds` is the source account's client in the target region.
pub async fn run(target_rds: &Client, settings: &SourceSettings, run: RunState) -> DrResult<RunState> {
    let settings = &settings.for_run_region(run.target_region.as_ref())?;
    let source_arn = check_input(settings, &run)?;
    let id = need(&run.source_snapshot_id, "sourceSnapshotId")?.clone();

    let place = settings.target_region.to_string();
    let copy = rds::copy_snapshot(
        target_rds,
        rds::SnapshotCopy {
            what: "copy",
            place: &place,
            from: &source_arn,
            id: &id,
            key: &settings.kms_key_arn,
            copy_tags: true,
            run: &run,
        },
    )
    .await?;

    let arn = copy
        .db_cluster_snapshot_arn()
        .and_then(|a| a.parse::<Arn>().ok())
        .unwrap_or_else(|| Arn::cluster_snapshot(&settings.target_region, &settings.account_id, &id));
    let mut out = run;
    out.target_snapshot_id = Some(id);
    out.target_snapshot_arn = Some(arn);
    out.target_region = Some(settings.target_region.clone());
    if !out.target_account_id.as_ref().is_some_and(|a| settings.has_target(a, &settings.target_region)) {
        out.target_account_id = Some(settings.target_account_id.clone());
    }
    out.kms_key_arn = Some(settings.kms_key_arn.clone());
    Ok(out)
}

/// The untyped entry: source settings, a client in the payload's target region.
pub async fn handle(ctx: Arc<StepContext>, input: Value) -> DrResult<Value> {
    input::expect(&input, InputKind::Run, STATE)?;
    let run_state = RunState::from_value(input)?;
    let settings = ctx.source()?.for_run_region(run_state.target_region.as_ref())?;
    let target_rds = ctx.aws.in_region(&settings.target_region).rds();
    Ok(run(&target_rds, &settings, run_state).await?.to_value())
}

/// Checks the payload against the settings; returns the source snapshot ARN.
fn check_input(settings: &SourceSettings, run: &RunState) -> DrResult<Arn> {
    input::no_failure(run, STATE)?;
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use aws_sdk_rds::Client;
    use aws_sdk_rds::operation::copy_db_cluster_snapshot::{
        CopyDBClusterSnapshotError, CopyDbClusterSnapshotInput, CopyDbClusterSnapshotOutput,
    };
    use aws_sdk_rds::operation::describe_db_cluster_snapshots::DescribeDBClusterSnapshotsError;
    use aws_sdk_rds::types::DbClusterSnapshot;
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

    /// Many target regions: the payload's region picks the key; a region the
    /// deployment does not copy to copies nothing.
    #[tokio::test]
    async fn each_target_region_is_copied_under_its_own_key() {
        let settings = crate::settings::tests::many_targets_settings();
        let eu_key = "arn:aws:kms:eu-west-1:111111111111:key/0f0e0d0c-0000-4000-8000-000000000003";
        let mut input = created_run();
        input.target_region = Some("eu-west-1".parse().expect("region"));
        input.target_account_id = None;
        input.kms_key_arn = None;
        let mut copied = ts::copy("copying");
        copied.kms_key_id = Some(eu_key.into());
        copied.db_cluster_snapshot_arn =
            Some(format!("arn:aws:rds:eu-west-1:111111111111:cluster-snapshot:{SNAPSHOT_ID}"));
        let seen = Arc::new(Mutex::new(None));
        let (find, copy) = (ts::snapshot_missing(), copy_returns(Some(copied), Some(seen.clone())));
        let out = run(&ts::rds(&[&find, &copy]), &settings, input.clone()).await.expect("copied");
        let req = seen.lock().expect("lock").clone().expect("request");
        assert_eq!(req.kms_key_id(), Some(eu_key));
        assert_eq!(out.kms_key_arn.as_ref().map(|k| k.as_str()), Some(eu_key));
        assert_eq!(out.target_account_id.as_ref().map(|a| a.as_str()), Some("333333333333"));
        assert!(out.target_snapshot_arn.as_ref().is_some_and(|a| a.as_str().contains(":eu-west-1:")));

        let mut nowhere = input;
        nowhere.target_region = Some("ap-south-1".parse().expect("region"));
        let (find, copy) = (ts::snapshot_missing(), copy_returns(None, None));
        let err = run(&ts::rds(&[&find, &copy]), &settings, nowhere).await.expect_err("not a target region");
        assert_eq!(err.asl_name(), "InvalidInput");
        assert_eq!(find.num_calls() + copy.num_calls(), 0);
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
        let mut other_run = ts::copy("available");
        other_run.tag_list = Some(ts::managed_tags("run-9"));
        let mut other_key = ts::copy("available");
        other_key.kms_key_id = Some("arn:aws:kms:us-west-1:111111111111:key/other".into());
        for (existing, want) in [
            (other_source, "someone-elses"),
            (no_source, "run-id tag: run-0"),
            (other_run, "run-id tag: run-9"),
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

    #[tokio::test]
    async fn handle_copies_with_a_client_in_the_target_region() {
        let copy = ts::snapshot_xml(
            SNAPSHOT_ID,
            TARGET_SNAPSHOT_ARN,
            "copying",
            Some(KMS_KEY_ARN),
            Some(SOURCE_SNAPSHOT_ARN),
        );
        let recorder = ts::Recorder::replying([
            ts::rds_error_reply(404, "DBClusterSnapshotNotFoundFault"),
            ts::rds_reply("CopyDBClusterSnapshot", &copy),
        ]);
        let out = handle(ts::source_context(&recorder), created_run().to_value()).await.expect("copied");
        let mut want = created_run();
        want.target_snapshot_id = Some(SNAPSHOT_ID.parse().expect("id"));
        want.target_snapshot_arn = Some(TARGET_SNAPSHOT_ARN.parse().expect("arn"));
        assert_eq!(RunState::from_value(out).expect("payload"), want);
        ts::assert_copied_in_the_target_region(&recorder.sent(), "111111111111");

        // Not a state of the target side, and never a failure path's.
        let recorder = ts::Recorder::default();
        let err = handle(ts::target_context(&recorder), created_run().to_value()).await.expect_err("side");
        assert_eq!(err.asl_name(), "InvalidConfig", "{err}");
        let mut failed = created_run().to_value();
        failed["failure"] = serde_json::json!({"Error": "X", "Cause": ""});
        let err = handle(ts::source_context(&recorder), failed).await.expect_err("failure path");
        assert_eq!(err.asl_name(), "InvalidInput", "{err}");
        assert!(recorder.sent().is_empty());
    }
}
