//! Share: share the encrypted copy privately with the target accounts of
//! its region.
//!
//! Input: [`RunState`] after the copy is `available` (needs `targetSnapshotId`;
//! `targetRegion` picks the region's settings, see
//! [`SourceSettings::for_run_region`]). Output: the same payload (with
//! `targetAccountId`, the region's first target, and `targetSnapshotArn`
//! filled when they were missing).
//!
//! With the source account's client in the target region:
//! `ModifyDBClusterSnapshotAttribute(restore, ValuesToAdd = [each target
//! account of the region not yet there])`, one call: the copy of a region is
//! shared with every target there (at most 20, the settings' limit).
//!
//! Before sharing, the copy's `restore` attribute is read; when it contains
//! `all` (the snapshot is public) or the copy is not storage-encrypted, the
//! step refuses with `UnsafeOperation` and changes nothing: aurora-dr never
//! makes a snapshot public and never shares an unencrypted one. After
//! sharing, the attribute must contain every target account of the region;
//! any other account already there is reported in a warning log (not
//! removed: someone else put it there).
//!
//! Errors: `InvalidInput` (payload missing fields, carrying `failure`, or
//! disagreeing with the settings), `NotFound` (no copy), `UnsafeOperation`,
//! `ResourceNotReady` (the copy is still busy, or the share is not yet
//! visible: retrying is safe), and the AWS classifications.
//!
//! Idempotency: when every target account is already in `restore`, nothing
//! is modified; a retry after a partial share adds only the missing ones.

use std::sync::Arc;

use aws_sdk_rds::Client;
use serde_json::Value;

use crate::context::StepContext;
use crate::error::{DrError, DrResult};
use crate::ids::{Arn, SnapshotId};
use crate::payload::{RunState, need};
use crate::rds;
use crate::settings::SourceSettings;
use crate::steps::input::{self, InputKind};

/// The state this module serves.
pub const STATE: &str = "Share";

const STEP: &str = "share";
/// The snapshot attribute that lists who may restore it.
const RESTORE: &str = "restore";
/// The `restore` value that makes a snapshot public.
const PUBLIC: &str = "all";

/// Shares the copy with the target accounts of its region; see the module doc.
pub async fn run(target_rds: &Client, settings: &SourceSettings, run: RunState) -> DrResult<RunState> {
    let settings = &settings.for_run_region(run.target_region.as_ref())?;
    check_input(settings, &run)?;
    let id = need(&run.target_snapshot_id, "targetSnapshotId")?.clone();
    let targets: Vec<&str> =
        settings.accounts_in(&settings.target_region).iter().map(|a| a.as_str()).collect();

    let copy = rds::find_cluster_snapshot(target_rds, id.as_str(), false).await?.ok_or_else(|| {
        DrError::NotFound(format!(
            "snapshot copy {id} does not exist in account {} region {}",
            settings.account_id, settings.target_region
        ))
    })?;
    if copy.storage_encrypted() != Some(true) {
        return Err(DrError::Unsafe(format!(
            "snapshot copy {id} is not encrypted; refusing to share it with account(s) {}",
            targets.join(", ")
        )));
    }

    let before = rds::shared_with(target_rds, id.as_str()).await?;
    refuse_public(&id, &before)?;
    let missing: Vec<&str> = targets.iter().copied().filter(|t| !before.iter().any(|a| a == t)).collect();
    let after = if missing.is_empty() {
        tracing::info!(step = STEP, run_id = %run.run_id, snapshot = %id, accounts = ?targets, "already shared");
        before
    } else {
        let out = target_rds
            .modify_db_cluster_snapshot_attribute()
            .db_cluster_snapshot_identifier(id.as_str())
            .attribute_name(RESTORE)
            .set_values_to_add(Some(missing.iter().map(|a| (*a).to_owned()).collect()))
            .send()
            .await
            .map_err(|e| {
                DrError::from_sdk(
                    &format!("ModifyDBClusterSnapshotAttribute {id} restore +{}", missing.join(" +")),
                    e,
                )
            })?;
        tracing::info!(step = STEP, run_id = %run.run_id, snapshot = %id, accounts = ?missing, "shared");
        match out.db_cluster_snapshot_attributes_result {
            Some(result) => rds::restore_accounts(&result),
            None => rds::shared_with(target_rds, id.as_str()).await?,
        }
    };
    refuse_public(&id, &after)?;
    let not_yet: Vec<&str> = targets.iter().copied().filter(|t| !after.iter().any(|a| a == t)).collect();
    if !not_yet.is_empty() {
        return Err(DrError::not_ready(
            format!("share of snapshot copy {id} with account(s) {}", not_yet.join(", ")),
            "not yet visible",
        ));
    }
    let others: Vec<&str> = after.iter().map(String::as_str).filter(|a| !targets.contains(a)).collect();
    if !others.is_empty() {
        tracing::warn!(step = STEP, run_id = %run.run_id, snapshot = %id, other_accounts = ?others,
            "snapshot copy is also shared with accounts other than the targets; left as they are");
    }

    let mut out = run;
    if out.target_account_id.is_none() {
        out.target_account_id = Some(settings.target_account_id.clone());
    }
    if out.target_snapshot_arn.is_none() {
        out.target_snapshot_arn =
            Some(copy.db_cluster_snapshot_arn().and_then(|a| a.parse::<Arn>().ok()).unwrap_or_else(|| {
                Arn::cluster_snapshot(&settings.target_region, &settings.account_id, &id)
            }));
    }
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

fn check_input(settings: &SourceSettings, run: &RunState) -> DrResult<()> {
    input::no_failure(run, STATE)?;
    let id = need(&run.target_snapshot_id, "targetSnapshotId")?;
    if let Some(account) = &run.target_account_id {
        settings.require_target(account)?;
    }
    if let Some(arn) = &run.target_snapshot_arn
        && (arn.resource() != format!("cluster-snapshot:{id}")
            || arn.region().as_ref() != Some(&settings.target_region)
            || arn.account().as_ref() != Some(&settings.account_id))
    {
        return Err(DrError::invalid_input(format!(
            "targetSnapshotArn {arn} does not name copy {id} of account {} in {}",
            settings.account_id, settings.target_region
        )));
    }
    Ok(())
}

fn refuse_public(id: &SnapshotId, accounts: &[String]) -> DrResult<()> {
    if accounts.iter().any(|a| a.eq_ignore_ascii_case(PUBLIC)) {
        tracing::error!(step = STEP, snapshot = %id, "snapshot copy is PUBLIC (restore=all); not sharing");
        return Err(DrError::Unsafe(format!(
            "snapshot copy {id} is public (restore attribute contains `all`); aurora-dr shares privately only \
             and changed nothing — remove `all` from its restore attribute"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use aws_sdk_rds::Client;
    use aws_sdk_rds::operation::describe_db_cluster_snapshot_attributes::{
        DescribeDBClusterSnapshotAttributesError, DescribeDbClusterSnapshotAttributesOutput,
    };
    use aws_sdk_rds::operation::modify_db_cluster_snapshot_attribute::{
        ModifyDBClusterSnapshotAttributeError, ModifyDbClusterSnapshotAttributeInput,
        ModifyDbClusterSnapshotAttributeOutput,
    };
    use aws_sdk_rds::types::{DbClusterSnapshotAttribute, DbClusterSnapshotAttributesResult};
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::payload::tests::finished_source_run;
    use crate::settings::tests::source_settings;
    use crate::steps::test_support::{self as ts, SNAPSHOT_ID, TARGET_SNAPSHOT_ARN};

    fn attrs(values: &[&str]) -> DbClusterSnapshotAttributesResult {
        DbClusterSnapshotAttributesResult::builder()
            .db_cluster_snapshot_identifier(SNAPSHOT_ID)
            .db_cluster_snapshot_attributes(
                DbClusterSnapshotAttribute::builder()
                    .attribute_name(RESTORE)
                    .set_attribute_values(Some(values.iter().map(|v| (*v).to_owned()).collect()))
                    .build(),
            )
            .build()
    }

    fn described(values: &'static [&'static str]) -> Rule {
        mock!(Client::describe_db_cluster_snapshot_attributes).then_output(move || {
            DescribeDbClusterSnapshotAttributesOutput::builder()
                .db_cluster_snapshot_attributes_result(attrs(values))
                .build()
        })
    }

    fn modified(
        values: Option<&'static [&'static str]>,
        seen: Option<Arc<Mutex<Option<ModifyDbClusterSnapshotAttributeInput>>>>,
    ) -> Rule {
        mock!(Client::modify_db_cluster_snapshot_attribute)
            .match_requests(move |r| {
                if let Some(seen) = &seen {
                    *seen.lock().expect("lock") = Some(r.clone());
                }
                true
            })
            .then_output(move || {
                ModifyDbClusterSnapshotAttributeOutput::builder()
                    .set_db_cluster_snapshot_attributes_result(values.map(attrs))
                    .build()
            })
    }

    #[tokio::test]
    async fn shares_the_copy_with_the_target_account_only() {
        let seen = Arc::new(Mutex::new(None));
        let (find, before, modify) = (
            ts::snapshot_listed(ts::copy("available")),
            described(&[]),
            modified(Some(&["222222222222"]), Some(seen.clone())),
        );
        let rds = ts::rds(&[&find, &before, &modify]);

        let out = run(&rds, &source_settings(), finished_source_run()).await.expect("shared");

        assert_eq!(out, finished_source_run(), "the payload passes through");
        assert_eq!(modify.num_calls(), 1);
        let req = seen.lock().expect("lock").clone().expect("request");
        assert_eq!(req.db_cluster_snapshot_identifier(), Some(SNAPSHOT_ID));
        assert_eq!(req.attribute_name(), Some("restore"));
        assert_eq!(req.values_to_add(), ["222222222222"]);
        assert!(req.values_to_remove().is_empty());
    }

    /// Two targets in the payload's region (a third elsewhere): one call adds
    /// both; a retry after one of them was added adds only the other.
    #[tokio::test]
    async fn the_copy_is_shared_with_every_target_of_its_region_in_one_call() {
        let settings = crate::settings::tests::many_targets_settings();
        let seen = Arc::new(Mutex::new(None));
        let (find, before, modify) = (
            ts::snapshot_listed(ts::copy("available")),
            described(&[]),
            modified(Some(&["222222222222", "444444444444"]), Some(seen.clone())),
        );
        let rds = ts::rds(&[&find, &before, &modify]);
        run(&rds, &settings, finished_source_run()).await.expect("shared");
        let req = seen.lock().expect("lock").clone().expect("request");
        assert_eq!(req.values_to_add(), ["222222222222", "444444444444"], "not 333333333333 of eu-west-1");

        let seen = Arc::new(Mutex::new(None));
        let (find, before, modify) = (
            ts::snapshot_listed(ts::copy("available")),
            described(&["444444444444"]),
            modified(Some(&["444444444444", "222222222222"]), Some(seen.clone())),
        );
        let rds = ts::rds(&[&find, &before, &modify]);
        run(&rds, &settings, finished_source_run()).await.expect("shared");
        let req = seen.lock().expect("lock").clone().expect("request");
        assert_eq!(req.values_to_add(), ["222222222222"]);

        // A share that shows one target but not the other is not done yet.
        let (find, before, modify) = (
            ts::snapshot_listed(ts::copy("available")),
            described(&[]),
            modified(Some(&["222222222222"]), None),
        );
        let rds = ts::rds(&[&find, &before, &modify]);
        let err = run(&rds, &settings, finished_source_run()).await.expect_err("half");
        assert_eq!(err.asl_name(), "ResourceNotReady");
        assert!(err.to_string().contains("444444444444"), "{err}");
    }

    #[tokio::test]
    async fn an_existing_share_is_left_as_it_is() {
        let (find, before, modify) =
            (ts::snapshot_listed(ts::copy("available")), described(&["222222222222"]), modified(None, None));
        let rds = ts::rds(&[&find, &before, &modify]);
        run(&rds, &source_settings(), finished_source_run()).await.expect("already shared");
        assert_eq!(modify.num_calls(), 0);
    }

    #[tokio::test]
    async fn other_accounts_are_kept_and_the_result_is_re_read_when_not_returned() {
        let (find, modify) = (ts::snapshot_listed(ts::copy("available")), modified(None, None));
        let attributes = mock!(Client::describe_db_cluster_snapshot_attributes)
            .sequence()
            .output(|| {
                DescribeDbClusterSnapshotAttributesOutput::builder()
                    .db_cluster_snapshot_attributes_result(attrs(&["333333333333"]))
                    .build()
            })
            .output(|| {
                DescribeDbClusterSnapshotAttributesOutput::builder()
                    .db_cluster_snapshot_attributes_result(attrs(&["333333333333", "222222222222"]))
                    .build()
            })
            .build();
        let rds = ts::rds(&[&find, &attributes, &modify]);
        run(&rds, &source_settings(), finished_source_run()).await.expect("shared");
        assert_eq!((attributes.num_calls(), modify.num_calls()), (2, 1));
    }

    #[tokio::test]
    async fn a_public_copy_is_refused_without_any_change() {
        for values in [&["all"][..], &["222222222222", "all"][..]] {
            let values: &'static [&'static str] = values;
            let (find, before, modify) =
                (ts::snapshot_listed(ts::copy("available")), described(values), modified(None, None));
            let rds = ts::rds(&[&find, &before, &modify]);
            let err = run(&rds, &source_settings(), finished_source_run()).await.expect_err("public");
            assert_eq!(err.asl_name(), "UnsafeOperation", "{err}");
            assert!(err.to_string().contains("`all`"), "{err}");
            assert_eq!(modify.num_calls(), 0);
        }
    }

    #[tokio::test]
    async fn an_unencrypted_copy_is_never_shared() {
        let mut plain = ts::copy("available");
        plain.storage_encrypted = Some(false);
        let (find, before, modify) = (ts::snapshot_listed(plain), described(&[]), modified(None, None));
        let rds = ts::rds(&[&find, &before, &modify]);
        let err = run(&rds, &source_settings(), finished_source_run()).await.expect_err("plain");
        assert_eq!(err.asl_name(), "UnsafeOperation", "{err}");
        assert_eq!(modify.num_calls(), 0);
    }

    #[tokio::test]
    async fn a_share_that_does_not_show_up_is_retried_and_a_public_result_refused() {
        for (after, want) in
            [(&[][..], "ResourceNotReady"), (&["222222222222", "all"][..], "UnsafeOperation")]
        {
            let after: &'static [&'static str] = after;
            let (find, before, modify) =
                (ts::snapshot_listed(ts::copy("available")), described(&[]), modified(Some(after), None));
            let rds = ts::rds(&[&find, &before, &modify]);
            let err = run(&rds, &source_settings(), finished_source_run()).await.expect_err(want);
            assert_eq!(err.asl_name(), want, "{err}");
        }
    }

    #[tokio::test]
    async fn a_missing_copy_is_not_found() {
        let find = ts::snapshot_missing();
        let modify = modified(None, None);
        let rds = ts::rds(&[&find, &modify]);
        let err = run(&rds, &source_settings(), finished_source_run()).await.expect_err("missing");
        assert_eq!(err.asl_name(), "NotFound");
        assert!(err.to_string().contains("us-west-1"), "{err}");
        assert_eq!(modify.num_calls(), 0);
    }

    #[tokio::test]
    async fn aws_errors_are_classified() {
        let throttled = mock!(Client::describe_db_cluster_snapshot_attributes)
            .then_error(|| DescribeDBClusterSnapshotAttributesError::generic(ts::meta("Throttling")));
        let unavailable = mock!(Client::describe_db_cluster_snapshot_attributes)
            .then_http_response(|| ts::http_status(503));
        for (rule, want) in [(throttled, "Throttled"), (unavailable, "ServiceUnavailable")] {
            let (find, modify) = (ts::snapshot_listed(ts::copy("available")), modified(None, None));
            let rds = ts::rds(&[&find, &rule, &modify]);
            let err = run(&rds, &source_settings(), finished_source_run()).await.expect_err(want);
            assert_eq!(err.asl_name(), want);
            assert_eq!(modify.num_calls(), 0);
        }
        let busy = mock!(Client::modify_db_cluster_snapshot_attribute).then_error(|| {
            ModifyDBClusterSnapshotAttributeError::generic(ts::meta("InvalidDBClusterSnapshotStateFault"))
        });
        let quota = mock!(Client::modify_db_cluster_snapshot_attribute).then_error(|| {
            ModifyDBClusterSnapshotAttributeError::generic(ts::meta("SharedSnapshotQuotaExceeded"))
        });
        // Sharing with more accounts than a manual snapshot allows is a limit,
        // not a missing permission, and waiting does not lift it.
        for (modify, want) in [(busy, "ResourceNotReady"), (quota, "LimitExceeded")] {
            let (find, before) = (ts::snapshot_listed(ts::copy("available")), described(&[]));
            let rds = ts::rds(&[&find, &before, &modify]);
            let err = run(&rds, &source_settings(), finished_source_run()).await.expect_err(want);
            assert_eq!(err.asl_name(), want);
            assert_eq!(err.is_retryable(), want == "ResourceNotReady", "{err}");
        }
    }

    #[tokio::test]
    async fn a_payload_that_disagrees_with_the_settings_shares_nothing() {
        let mut no_copy = finished_source_run();
        no_copy.target_snapshot_id = None;
        let mut other_account = finished_source_run();
        other_account.target_account_id = Some("333333333333".parse().expect("acct"));
        let mut other_region = finished_source_run();
        other_region.target_region = Some("eu-west-1".parse().expect("region"));
        let mut other_arn = finished_source_run();
        other_arn.target_snapshot_arn =
            Some("arn:aws:rds:us-west-1:111111111111:cluster-snapshot:other".parse().expect("arn"));
        let mut failed = finished_source_run();
        failed.failure = Some(crate::payload::Failure { error: "X".into(), cause: String::new() });
        for (case, input) in [
            ("targetSnapshotId", no_copy),
            ("target account", other_account),
            ("target region", other_region),
            ("targetSnapshotArn", other_arn),
            ("failure", failed),
        ] {
            let (find, before, modify) =
                (ts::snapshot_listed(ts::copy("available")), described(&[]), modified(None, None));
            let rds = ts::rds(&[&find, &before, &modify]);
            let err = run(&rds, &source_settings(), input).await.expect_err(case);
            ts::assert_invalid_input(&err, case);
            assert_eq!(find.num_calls() + before.num_calls() + modify.num_calls(), 0, "{case}");
        }
    }

    #[tokio::test]
    async fn a_missing_arn_is_filled_from_the_copy() {
        let mut input = finished_source_run();
        input.target_snapshot_arn = None;
        let (find, before, modify) =
            (ts::snapshot_listed(ts::copy("available")), described(&["222222222222"]), modified(None, None));
        let rds = ts::rds(&[&find, &before, &modify]);
        let out = run(&rds, &source_settings(), input).await.expect("shared");
        assert_eq!(out.target_snapshot_arn.as_ref().map(|a| a.as_str()), Some(TARGET_SNAPSHOT_ARN));
    }

    #[tokio::test]
    async fn handle_shares_with_a_client_in_the_target_region() {
        let copy = ts::snapshot_xml(
            ts::SNAPSHOT_ID,
            ts::TARGET_SNAPSHOT_ARN,
            "available",
            Some(ts::KMS_KEY_ARN),
            Some(ts::SOURCE_SNAPSHOT_ARN),
        );
        let attributes = |accounts: &str| {
            format!(
                "<DBClusterSnapshotAttributesResult><DBClusterSnapshotIdentifier>{}</DBClusterSnapshotIdentifier>\
                 <DBClusterSnapshotAttributes><DBClusterSnapshotAttribute><AttributeName>restore</AttributeName>\
                 <AttributeValues>{accounts}</AttributeValues></DBClusterSnapshotAttribute>\
                 </DBClusterSnapshotAttributes></DBClusterSnapshotAttributesResult>",
                ts::SNAPSHOT_ID
            )
        };
        let recorder = ts::Recorder::replying([
            ts::rds_reply(
                "DescribeDBClusterSnapshots",
                &format!("<DBClusterSnapshots>{copy}</DBClusterSnapshots>"),
            ),
            ts::rds_reply("DescribeDBClusterSnapshotAttributes", &attributes("")),
            ts::rds_reply(
                "ModifyDBClusterSnapshotAttribute",
                &attributes("<AttributeValue>222222222222</AttributeValue>"),
            ),
        ]);
        let out =
            handle(ts::source_context(&recorder), finished_source_run().to_value()).await.expect("shared");
        assert_eq!(out, finished_source_run().to_value(), "the payload passes through");
        let sent = recorder.sent();
        assert_eq!(sent.len(), 3, "{sent:?}");
        assert!(sent.iter().all(|s| s.uri.contains("rds.us-west-1.")), "{sent:?}");
        assert!(sent[2].body.contains("Action=ModifyDBClusterSnapshotAttribute"), "{}", sent[2].body);
        assert!(sent[2].body.contains("AttributeName=restore"), "{}", sent[2].body);
        assert!(sent[2].body.contains("ValuesToAdd.AttributeValue.1=222222222222"), "{}", sent[2].body);

        let recorder = ts::Recorder::default();
        let err = handle(ts::source_context(&recorder), serde_json::json!({"runId": "run-1"}))
            .await
            .expect_err("bad");
        assert_eq!(err.asl_name(), "InvalidInput");
        assert!(recorder.sent().is_empty());
    }
}
