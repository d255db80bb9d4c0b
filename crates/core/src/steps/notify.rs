//! Notify (source side): tell the target side a snapshot is ready.
//!
//! Publishes one [`DrMessage`] (`"version": 1`) as JSON to
//! `notification_topic_arn` (required: `InvalidConfig` when unset) per target
//! account of the payload's `targetRegion` (the copy there is shared with all
//! of them), each naming its own account. Every message carries the String
//! message attributes `targetAccountId` and `targetRegion`, on which each
//! target stack's subscription filters (an SNS subscription filter policy),
//! so N target stacks subscribe to one topic and each receives only its own
//! messages; and `sourceClusterId`, `snapshotId` (the shared copy) and
//! `version`. Input and output: the finished [`RunState`], unchanged. This is
//! the only function that publishes to the snapshot topic; failures are
//! [`super::notify_failure`]'s.
//!
//! Errors: `InvalidConfig`, `InvalidInput` (the payload lacks a field the
//! message needs, carries `failure`, or disagrees with the settings: a
//! region the deployment does not copy to, a target account not of that
//! region), and the SNS classifications (`Throttled`, `ServiceUnavailable`
//! are retryable).
//!
//! Metrics ([`crate::metrics`]): `PipelineDurationSeconds` and
//! `StepDurationSeconds`.
//!
//! Idempotency: SNS delivers at least once and a retried step publishes
//! again, also to the targets an earlier attempt reached; each target side
//! starts its execution under a name derived from the snapshot, so a
//! duplicate message starts nothing new.

use std::sync::Arc;

use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;
use serde_json::Value;

use crate::context::StepContext;
use crate::error::{DrError, DrResult};
use crate::ids::Arn;
use crate::metrics;
use crate::payload::{DrMessage, MAX_MESSAGE_BYTES, RunState, need};
use crate::settings::{SourceSettings, keys};
use crate::steps::input::{self, InputKind};

/// The state this module serves.
pub const STATE: &str = "Notify";

const STEP: &str = "notify";

/// The message attributes a target stack's subscription filters on.
pub const TARGET_ACCOUNT_ATTRIBUTE: &str = "targetAccountId";
pub const TARGET_REGION_ATTRIBUTE: &str = "targetRegion";

/// Publishes the DR message to every target of the payload's region;
/// returns the payload unchanged.
pub async fn run(sns: &Client, settings: &SourceSettings, run: RunState) -> DrResult<RunState> {
    input::no_failure(&run, STATE)?;
    let topic = settings.notification_topic_arn.as_ref().ok_or_else(|| DrError::InvalidConfig {
        name: keys::NOTIFICATION_TOPIC_ARN.env.into(),
        problem: "is required to notify the target side".into(),
    })?;
    let settings = settings.for_region(need(&run.target_region, "targetRegion")?)?;
    check_input(&settings, &run)?;
    for account in settings.accounts_in(&settings.target_region) {
        let mut one = run.clone();
        one.target_account_id = Some(account.clone());
        let msg = DrMessage::from_run(&one)?;
        let text = serde_json::to_string(&msg)?;
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(DrError::invalid_input(format!(
                "the message is {} bytes, more than the {MAX_MESSAGE_BYTES} the target side accepts",
                text.len()
            )));
        }
        let out = sns
            .publish()
            .topic_arn(topic.as_str())
            .message(text)
            .message_attributes(TARGET_ACCOUNT_ATTRIBUTE, attribute(msg.target_account_id.as_str())?)
            .message_attributes(TARGET_REGION_ATTRIBUTE, attribute(msg.target_region.as_str())?)
            .message_attributes("sourceClusterId", attribute(msg.source_cluster_id.as_str())?)
            .message_attributes("snapshotId", attribute(msg.target_snapshot_id.as_str())?)
            .message_attributes("version", attribute(&msg.version.to_string())?)
            .send()
            .await
            .map_err(|e| DrError::from_sdk(&format!("Publish {topic} for target account {account}"), e))?;
        tracing::info!(step = STEP, run_id = %run.run_id, topic = %topic, snapshot = %msg.target_snapshot_id,
            target_account = %account, target_region = %msg.target_region,
            message_id = out.message_id().unwrap_or_default(), "target side notified");
    }
    Ok(run)
}

/// Lambda / local-engine entry of the Notify state.
pub async fn handle(ctx: Arc<StepContext>, input: Value) -> DrResult<Value> {
    input::expect(&input, InputKind::Run, STATE)?;
    let settings = ctx.source()?;
    let started = std::time::Instant::now();
    let run_state = RunState::from_value(input)?;
    let sns = sns_for(&ctx, settings.notification_topic_arn.as_ref());
    let out = run(&sns, settings, run_state).await?;
    metrics::source_done(&out, time::OffsetDateTime::now_utc()).emit();
    metrics::step_duration(metrics::SOURCE, STATE, &out, started.elapsed()).emit();
    Ok(out.to_value())
}

/// An SNS client in the topic's region (the deployment's own when unknown).
pub(crate) fn sns_for(ctx: &StepContext, topic: Option<&Arn>) -> Client {
    match topic.and_then(Arn::region) {
        Some(region) => ctx.aws.in_region(&region).sns(),
        None => ctx.aws.sns(),
    }
}

fn check_input(settings: &SourceSettings, run: &RunState) -> DrResult<()> {
    let cluster = need(&run.source_cluster_id, "sourceClusterId")?;
    if !settings.serves(cluster.as_str()) {
        return Err(DrError::invalid_input(format!(
            "payload names source cluster {cluster}, but this deployment serves {}",
            settings.cluster_ids.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
        )));
    }
    let target = need(&run.target_account_id, "targetAccountId")?;
    settings.require_target(target)?;
    Ok(())
}

pub(crate) fn attribute(value: &str) -> DrResult<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| DrError::Aws { code: "BuildError".into(), message: e.to_string() })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Mutex;

    use aws_sdk_sns::Client;
    use aws_sdk_sns::operation::publish::{PublishError, PublishInput, PublishOutput};
    use aws_smithy_mocks::{Rule, mock};

    use serde_json::json;

    use super::*;
    use crate::payload::tests::finished_source_run;
    use crate::settings::tests::source_settings;
    use crate::steps::test_support::{self as ts, SNAPSHOT_ID};

    pub(crate) type Seen = Arc<Mutex<Vec<PublishInput>>>;

    pub(crate) fn publish(seen: &Seen) -> Rule {
        let seen = seen.clone();
        mock!(Client::publish)
            .match_requests(move |r| {
                seen.lock().expect("lock").push(r.clone());
                true
            })
            .then_output(|| PublishOutput::builder().message_id("m-1").build())
    }

    pub(crate) fn attr<'a>(req: &'a PublishInput, name: &str) -> (&'a str, Option<&'a str>) {
        let a = req
            .message_attributes()
            .and_then(|m| m.get(name))
            .unwrap_or_else(|| panic!("no attribute {name}"));
        (a.data_type(), a.string_value())
    }
    #[tokio::test]
    async fn publishes_the_versioned_message_with_filterable_attributes() {
        let seen = Seen::default();
        let rule = publish(&seen);
        let sns = ts::sns(&[&rule]);

        let out = run(&sns, &source_settings(), finished_source_run()).await.expect("published");

        assert_eq!(out, finished_source_run());
        let seen = seen.lock().expect("lock");
        assert_eq!(seen.len(), 1);
        let req = &seen[0];
        assert_eq!(req.topic_arn(), Some("arn:aws:sns:us-west-2:111111111111:aurora-dr-snapshots"));
        let body = req.message().expect("message");
        let parsed = DrMessage::parse(body).expect("the target side accepts it");
        assert_eq!(parsed, DrMessage::from_run(&finished_source_run()).expect("msg"));
        let value: Value = serde_json::from_str(body).expect("json");
        assert_eq!(value["version"], 1);
        assert_eq!(value["targetSnapshotArn"], ts::TARGET_SNAPSHOT_ARN);
        assert_eq!(attr(req, "sourceClusterId"), ("String", Some("orders")));
        assert_eq!(attr(req, "snapshotId"), ("String", Some(SNAPSHOT_ID)));
        assert_eq!(attr(req, "version"), ("String", Some("1")));
        assert_eq!(attr(req, "targetAccountId"), ("String", Some("222222222222")));
        assert_eq!(attr(req, "targetRegion"), ("String", Some("us-west-1")));
        assert_eq!(req.message_attributes().map(|m| m.len()), Some(5));
    }

    /// Two targets in the payload's region, one elsewhere: one message per
    /// target of the region, each naming its own account in the body and in
    /// the attribute its subscription filters on; none for the other region.
    #[tokio::test]
    async fn each_target_of_the_region_gets_its_own_message() {
        let settings = crate::settings::tests::many_targets_settings();
        let seen = Seen::default();
        let rule = publish(&seen);
        let out = run(&ts::sns(&[&rule]), &settings, finished_source_run()).await.expect("published");
        assert_eq!(out, finished_source_run(), "the payload passes unchanged");
        let seen: Vec<PublishInput> = seen.lock().expect("lock").clone();
        let sent: Vec<(String, String, Option<&str>)> = seen
            .iter()
            .map(|req| {
                let msg = DrMessage::parse(req.message().expect("message")).expect("accepted");
                (
                    msg.target_account_id.to_string(),
                    msg.target_region.to_string(),
                    attr(req, "targetAccountId").1,
                )
            })
            .collect();
        assert_eq!(
            sent,
            [
                ("222222222222".into(), "us-west-1".into(), Some("222222222222")),
                ("444444444444".into(), "us-west-1".into(), Some("444444444444")),
            ]
        );
        assert!(seen.iter().all(|r| attr(r, "targetRegion") == ("String", Some("us-west-1"))));

        // The other region's run notifies its one target.
        let mut eu = finished_source_run();
        eu.target_region = Some("eu-west-1".parse().expect("region"));
        eu.target_account_id = Some("333333333333".parse().expect("account"));
        let seen = Seen::default();
        let rule = publish(&seen);
        run(&ts::sns(&[&rule]), &settings, eu.clone()).await.expect("published");
        let accounts: Vec<_> = seen
            .lock()
            .expect("lock")
            .iter()
            .map(|r| attr(r, "targetAccountId").1.map(str::to_owned))
            .collect();
        assert_eq!(accounts, [Some("333333333333".to_owned())]);

        // A target account not of the payload's region, or a region not copied to, is refused.
        let mut wrong = eu.clone();
        wrong.target_account_id = Some("222222222222".parse().expect("account"));
        let mut nowhere = eu;
        nowhere.target_region = Some("ap-south-1".parse().expect("region"));
        for (input, names) in [(wrong, "222222222222"), (nowhere, "ap-south-1")] {
            let rule = publish(&Seen::default());
            let err = run(&ts::sns(&[&rule]), &settings, input).await.expect_err("refused");
            assert_eq!(err.asl_name(), "InvalidInput");
            assert!(err.to_string().contains(names), "{err}");
            assert_eq!(rule.num_calls(), 0);
        }
    }

    #[tokio::test]
    async fn success_mode_needs_the_topic_and_a_complete_consistent_payload() {
        let mut no_topic = source_settings();
        no_topic.notification_topic_arn = None;
        let mut incomplete = finished_source_run();
        incomplete.target_snapshot_arn = None;
        let mut other_cluster = finished_source_run();
        other_cluster.source_cluster_id = Some("billing".parse().expect("id"));
        let mut other_account = finished_source_run();
        other_account.target_account_id = Some("333333333333".parse().expect("acct"));
        let cases = [
            (no_topic, finished_source_run(), "InvalidConfig", "NOTIFICATION_TOPIC_ARN"),
            (source_settings(), incomplete, "InvalidInput", "targetSnapshotArn"),
            (source_settings(), other_cluster, "InvalidInput", "billing"),
            (source_settings(), other_account, "InvalidInput", "333333333333"),
        ];
        for (settings, input, want, names) in cases {
            let seen = Seen::default();
            let rule = publish(&seen);
            let err = run(&ts::sns(&[&rule]), &settings, input).await.expect_err(want);
            assert_eq!(err.asl_name(), want, "{err}");
            assert!(err.to_string().contains(names), "{names}: {err}");
            assert_eq!(rule.num_calls(), 0);
        }
    }

    #[tokio::test]
    async fn publish_errors_are_classified() {
        let throttled = mock!(Client::publish).then_error(|| PublishError::generic(ts::meta("Throttling")));
        let unavailable = mock!(Client::publish).then_http_response(|| ts::http_status(503));
        let denied =
            mock!(Client::publish).then_error(|| PublishError::generic(ts::meta("AuthorizationError")));
        for (rule, want) in
            [(throttled, "Throttled"), (unavailable, "ServiceUnavailable"), (denied, "AccessDenied")]
        {
            let err =
                run(&ts::sns(&[&rule]), &source_settings(), finished_source_run()).await.expect_err(want);
            assert_eq!(err.asl_name(), want, "{err}");
        }
    }

    #[tokio::test]
    async fn handle_publishes_on_the_source_side_only_and_never_a_failure() {
        // Source side: published to the notification topic's region.
        let recorder = ts::Recorder::replying(vec![(200, publish_xml())]);
        let out =
            handle(ts::source_context(&recorder), finished_source_run().to_value()).await.expect("published");
        assert_eq!(out, finished_source_run().to_value());
        let sent = recorder.sent();
        assert_eq!(sent.len(), 1);
        assert!(sent[0].uri.contains("sns.us-west-2."), "{}", sent[0].uri);
        assert!(sent[0].body.contains("aurora-dr-snapshots"), "{}", sent[0].body);

        // Target side: refused before any call.
        let recorder = ts::Recorder::default();
        let err =
            handle(ts::target_context(&recorder), finished_source_run().to_value()).await.expect_err("side");
        assert_eq!(err.asl_name(), "InvalidConfig");

        // A failure-path payload is NotifyFailure's, never published to the snapshot topic.
        let failed =
            json!({"runId": "run-1", "failedState": "Share", "failure": {"Error": "X", "Cause": ""}});
        let err = handle(ts::source_context(&recorder), failed).await.expect_err("failure payload");
        assert_eq!(err.asl_name(), "InvalidInput");
        assert!(err.to_string().contains("Notify takes the run payload"), "{err}");

        // Anything that is not a RunState is InvalidInput.
        let err = handle(ts::source_context(&recorder), json!({"hello": 1})).await.expect_err("bad");
        assert_eq!(err.asl_name(), "InvalidInput");
        assert!(recorder.sent().is_empty());
    }

    pub(crate) fn publish_xml() -> String {
        "<PublishResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishResult>\
         <MessageId>m-1</MessageId></PublishResult></PublishResponse>"
            .into()
    }
}
