//! CopyToOwnAccount (target account, target region): the own copy, which
//! keeps the snapshot itself in the target account.
//!
//! Input: the [`RunState`] after WaitForSharedSnapshot (needs
//! `targetSnapshotId`, `targetSnapshotArn`). Output: the same with
//! `ownSnapshotId` and `ownSnapshotArn` when `TARGET_OWN_COPY` is on;
//! unchanged when it is off (the default: the machine's `UsesOwnCopy`
//! Choice then goes straight to Restore, which restores from the shared
//! snapshot, under the target key all the same).
//!
//! With the own copy on, the target account copies the shared snapshot into
//! its own account, in its own region, re-encrypted with its own key:
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
//! Idempotency: this run's own copy (its tags, from the shared snapshot,
//! encrypted with the key) is reused, also when a racing copy answers
//! `DBClusterSnapshotAlreadyExistsFault` ([`rds::copy_snapshot`]'s one reuse
//! rule).

use std::sync::Arc;

use aws_sdk_rds::Client;
use serde_json::Value;

use crate::context::StepContext;
use crate::error::{DrError, DrResult};
use crate::ids::Arn;
use crate::payload::{RunState, need};
use crate::rds;
use crate::settings::{TargetSettings, keys};
use crate::steps::input::{self, InputKind};

/// The state this module serves.
pub const STATE: &str = "CopyToOwnAccount";

const STEP: &str = "copy_to_own_account";

/// Copies (or finds) this run's own copy; see the module doc.
/// `rds` is the target account's client in the target region.
pub async fn run(rds: &Client, settings: &TargetSettings, run: RunState) -> DrResult<RunState> {
    input::no_failure(&run, STATE)?;
    if !settings.own_copy {
        tracing::info!(step = STEP, run_id = %run.run_id,
            "the own copy is off (TARGET_OWN_COPY): restoring from the shared snapshot");
        return Ok(run);
    }
    let key = settings.kms_key_arn.as_ref().ok_or_else(|| DrError::InvalidConfig {
        name: keys::TARGET_KMS_KEY_ARN.env.into(),
        problem: "is not set, but TARGET_OWN_COPY copies the shared snapshot under it".into(),
    })?;
    let shared = check_shared(settings, &run)?;
    let id = need(&run.target_snapshot_id, "targetSnapshotId")?.clone();

    let copy = rds::copy_snapshot(
        rds,
        rds::SnapshotCopy {
            what: "own copy",
            place: "the target account",
            from: &shared,
            id: &id,
            key,
            copy_tags: false,
            run: &run,
        },
    )
    .await?;
    let arn = copy
        .db_cluster_snapshot_arn()
        .and_then(|a| a.parse::<Arn>().ok())
        .unwrap_or_else(|| Arn::cluster_snapshot(&settings.region, &settings.account_id, &id));
    let mut out = run;
    out.own_snapshot_id = Some(id);
    out.own_snapshot_arn = Some(arn);
    Ok(out)
}

/// Lambda / local-engine entry of the CopyToOwnAccount state.
pub async fn handle(ctx: Arc<StepContext>, input: Value) -> DrResult<Value> {
    input::expect(&input, InputKind::Run, STATE)?;
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use aws_sdk_rds::operation::copy_db_cluster_snapshot::{
        CopyDBClusterSnapshotError, CopyDbClusterSnapshotInput, CopyDbClusterSnapshotOutput,
    };
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::ids::SnapshotId;
    use crate::steps::test_support as ts;
    use aws_sdk_rds::types::DbClusterSnapshot;

    const OWN_KEY: &str = crate::settings::tests::TARGET_KEY;
    const SHARED_ARN: &str =
        "arn:aws:rds:us-west-1:111111111111:cluster-snapshot:aurora-dr-orders-20261125160005";
    const OWN_ARN: &str =
        "arn:aws:rds:us-west-1:222222222222:cluster-snapshot:aurora-dr-orders-20261125160005";
    const NAME: &str = "aurora-dr-orders-20261125160005";

    fn settings_with_key() -> TargetSettings {
        let mut s = crate::steps::target_support::settings();
        s.own_copy = true;
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
    async fn with_the_own_copy_off_nothing_is_called_and_the_payload_is_unchanged() {
        let (find, copy) = (ts::snapshot_missing(), copy_returns(own_copy("copying"), Arc::default()));
        let settings = crate::steps::target_support::settings();
        assert!(settings.kms_key_arn.is_some() && !settings.own_copy);
        let out = run(&ts::rds(&[&find, &copy]), &settings, shared_run()).await.expect("off");
        assert_eq!(out, shared_run());
        assert_eq!(find.num_calls() + copy.num_calls(), 0);

        // On without a key (a TOML file the drill did not complete): named, nothing called.
        let mut no_key = settings_with_key();
        no_key.kms_key_arn = None;
        let err = run(&ts::rds(&[&find, &copy]), &no_key, shared_run()).await.expect_err("no key");
        assert_eq!(err.asl_name(), "InvalidConfig");
        assert!(err.to_string().contains("TARGET_KMS_KEY_ARN"), "{err}");
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
    async fn handle_copies_with_the_target_accounts_client_in_the_target_region() {
        // Without the own copy: nothing is sent and the payload comes back as it was.
        let recorder = ts::Recorder::default();
        let out = handle(ts::target_context(&recorder), shared_run().to_value()).await.expect("off");
        assert_eq!(out, shared_run().to_value());
        assert!(recorder.sent().is_empty());

        // With one: looks for the copy, then copies the shared snapshot under the target key.
        let copy = ts::snapshot_xml(NAME, OWN_ARN, "copying", Some(OWN_KEY), Some(SHARED_ARN));
        let recorder = ts::Recorder::replying([
            ts::rds_error_reply(404, "DBClusterSnapshotNotFoundFault"),
            ts::rds_reply("CopyDBClusterSnapshot", &copy),
        ]);
        let ctx = recorder.context(crate::context::SideSettings::Target(settings_with_key()));
        let out = handle(ctx, shared_run().to_value()).await.expect("copied");
        let out = RunState::from_value(out).expect("payload");
        assert_eq!(out.own_snapshot_arn.as_ref().map(Arn::as_str), Some(OWN_ARN));
        ts::assert_copied_in_the_target_region(&recorder.sent(), "222222222222");

        // The source side has no such state.
        let recorder = ts::Recorder::default();
        let err = handle(ts::source_context(&recorder), shared_run().to_value()).await.expect_err("side");
        assert_eq!(err.asl_name(), "InvalidConfig", "{err}");
        assert!(recorder.sent().is_empty());
    }
}
