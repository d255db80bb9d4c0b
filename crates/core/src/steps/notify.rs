//! Notify: tell the target side a snapshot is ready, or tell people a run failed.
//!
//! **Success mode** (source side; the payload has no `failure`): publishes
//! [`DrMessage`] (`"version": 1`) as JSON to `notification_topic_arn` (required:
//! `InvalidConfig` when unset) with the String message attributes
//! `sourceClusterId`, `snapshotId` (the shared copy) and `version`, so
//! subscribers can filter. Input and output: the finished [`RunState`],
//! unchanged. On the target side there is no success mode: `InvalidConfig`.
//!
//! **Failure mode** (either side; the payload has `failure`): publishes
//! `{"version":1,"kind":"failure","runId","failedState","error","cause",
//! "side":"source"|"target","resources":{..}}` to the side's
//! `failure_topic_arn` with the attribute `kind=failure`. `resources` holds
//! whichever resource ids the payload has. The payload is read loosely, so a
//! payload that does not parse as a RunState (the failure may be that it is
//! malformed) is still reported. Without a failure topic the notification is
//! logged at error level and the step succeeds. Output: the input, unchanged.
//!
//! Errors: `InvalidConfig`, `InvalidInput` (success mode: the payload lacks a
//! field the message needs or disagrees with the settings), and the SNS
//! classifications (`Throttled`, `ServiceUnavailable` are retryable).
//!
//! Metrics ([`crate::metrics`]): success mode emits `PipelineDurationSeconds`
//! and `StepDurationSeconds`; failure mode emits `Failures`.
//!
//! Idempotency: SNS delivers at least once and a retried step publishes
//! again; the target side starts its execution under a name derived from the
//! snapshot, so a duplicate message starts nothing new.

use std::sync::Arc;

use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::context::{SideSettings, StepContext};
use crate::error::{DrError, DrResult};
use crate::ids::Arn;
use crate::metrics;
use crate::payload::{DrMessage, MAX_MESSAGE_BYTES, MESSAGE_VERSION, RunState, agrees, need};
use crate::settings::{SourceSettings, keys};

const STEP: &str = "notify";

/// Payload keys whose values identify resources, reported in a failure notification.
const RESOURCE_KEYS: &[&str] = &[
    "sourceAccountId",
    "sourceRegion",
    "sourceClusterId",
    "sourceSnapshotId",
    "sourceSnapshotArn",
    "targetAccountId",
    "targetRegion",
    "targetSnapshotId",
    "targetSnapshotArn",
    "ownSnapshotArn",
    "restoredClusterId",
    "restoredInstanceIds",
    "swap",
];
/// Longest `cause` carried (Step Functions causes can hold whole payloads).
const MAX_CAUSE_CHARS: usize = 4096;
/// Longest single resource value carried.
const MAX_VALUE_CHARS: usize = 256;
/// Most list entries carried per resource.
const MAX_LIST_ITEMS: usize = 32;

/// Which deployment sends a failure notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Source,
    Target,
}

/// Success mode: publishes the DR message; returns the payload unchanged.
pub async fn run(sns: &Client, settings: &SourceSettings, run: RunState) -> DrResult<RunState> {
    if run.failure.is_some() {
        return Err(DrError::invalid_input("payload carries `failure`: use the failure mode"));
    }
    let topic = settings.notification_topic_arn.as_ref().ok_or_else(|| DrError::InvalidConfig {
        name: keys::NOTIFICATION_TOPIC_ARN.env.into(),
        problem: "is required to notify the target side".into(),
    })?;
    check_input(settings, &run)?;
    let msg = DrMessage::from_run(&run)?;
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
        .message_attributes("sourceClusterId", attribute(msg.source_cluster_id.as_str())?)
        .message_attributes("snapshotId", attribute(msg.target_snapshot_id.as_str())?)
        .message_attributes("version", attribute(&msg.version.to_string())?)
        .send()
        .await
        .map_err(|e| DrError::from_sdk(&format!("Publish {topic}"), e))?;
    tracing::info!(step = STEP, run_id = %run.run_id, topic = %topic, snapshot = %msg.target_snapshot_id,
        message_id = out.message_id().unwrap_or_default(), "target side notified");
    Ok(run)
}

/// Failure mode: publishes (or, without a topic, logs) the failure
/// notification; returns `input` unchanged.
pub async fn run_failure(sns: &Client, topic: Option<&Arn>, side: Side, input: Value) -> DrResult<Value> {
    let message = failure_message(side, &input);
    let text = serde_json::to_string(&message)?;
    let run_id = message["runId"].as_str().unwrap_or("unknown");
    let failed_state = message["failedState"].as_str().unwrap_or("unknown");
    let Some(topic) = topic else {
        tracing::error!(step = STEP, run_id, failed_state, side = ?side, notification = %text,
            "run failed; no failure topic is configured, so this log is the only notification");
        return Ok(input);
    };
    let out = sns
        .publish()
        .topic_arn(topic.as_str())
        .subject(subject(side, run_id, failed_state))
        .message(text)
        .message_attributes("kind", attribute("failure")?)
        .send()
        .await
        .map_err(|e| DrError::from_sdk(&format!("Publish {topic}"), e))?;
    tracing::warn!(step = STEP, run_id, failed_state, side = ?side, topic = %topic,
        message_id = out.message_id().unwrap_or_default(), "failure notification published");
    Ok(input)
}

/// Whether a payload is on the failure path (carries `failure`).
pub fn is_failure_payload(input: &Value) -> bool {
    input.get("failure").is_some_and(|f| !f.is_null())
}

/// The untyped entry: failure mode when the payload carries `failure`.
pub async fn handle(ctx: Arc<StepContext>, input: Value) -> DrResult<Value> {
    if is_failure_payload(&input) {
        let (side, topic) = match &ctx.settings {
            SideSettings::Source(s) => (Side::Source, s.failure_topic_arn.as_ref()),
            SideSettings::Target(t) => (Side::Target, t.failure_topic_arn.as_ref()),
        };
        let out = run_failure(&sns_for(&ctx, topic), topic, side, input).await?;
        let side = if side == Side::Source { metrics::SOURCE } else { metrics::TARGET };
        metrics::failure(side, &out).emit();
        return Ok(out);
    }
    let settings = match &ctx.settings {
        SideSettings::Source(s) => s,
        SideSettings::Target(_) => {
            return Err(DrError::InvalidConfig {
                name: "SIDE".into(),
                problem:
                    "Notify on the target side only reports failures, and this payload carries no `failure`"
                        .into(),
            });
        }
    };
    let started = std::time::Instant::now();
    let run_state = RunState::from_value(input)?;
    let sns = sns_for(&ctx, settings.notification_topic_arn.as_ref());
    let out = run(&sns, settings, run_state).await?;
    metrics::source_done(&out, time::OffsetDateTime::now_utc()).emit();
    metrics::step_duration(metrics::SOURCE, "Notify", &out, started.elapsed()).emit();
    Ok(out.to_value())
}

/// An SNS client in the topic's region (the deployment's own when unknown).
fn sns_for(ctx: &StepContext, topic: Option<&Arn>) -> Client {
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
    agrees(Some(target), &settings.target_account_id, "target account", "shares with")?;
    Ok(())
}

fn attribute(value: &str) -> DrResult<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| DrError::Aws { code: "BuildError".into(), message: e.to_string() })
}

/// The failure notification, read loosely from any payload.
pub fn failure_message(side: Side, input: &Value) -> Value {
    // A FetchStatus-shaped payload nests the run under `run`.
    let nested = input.get("run").filter(|r| r.is_object());
    let field =
        |key: &str| input.get(key).or_else(|| nested.and_then(|r| r.get(key))).filter(|v| !v.is_null());
    let text = |key: &str| field(key).and_then(Value::as_str).map(|s| truncate(s, MAX_VALUE_CHARS));
    let (error, cause) = match input.get("failure") {
        Some(Value::Object(f)) => (
            f.get("Error").and_then(Value::as_str).map(str::to_owned),
            f.get("Cause").and_then(Value::as_str).map(|c| truncate(c, MAX_CAUSE_CHARS)),
        ),
        Some(Value::String(s)) => (Some(truncate(s, MAX_VALUE_CHARS)), None),
        _ => (None, None),
    };
    let resources: Map<String, Value> =
        RESOURCE_KEYS.iter().filter_map(|k| Some(((*k).to_owned(), bounded(field(k)?, 1)?))).collect();
    json!({
        "version": MESSAGE_VERSION,
        "kind": "failure",
        "runId": text("runId"),
        "failedState": text("failedState"),
        "error": error.unwrap_or_else(|| "unknown".into()),
        "cause": cause.unwrap_or_default(),
        "side": side,
        "resources": resources,
    })
}

/// A size-bounded copy of an id-like value: strings, lists of them and (one
/// level down) objects of them; anything else is left out.
fn bounded(value: &Value, depth: u8) -> Option<Value> {
    match value {
        Value::String(s) => Some(Value::String(truncate(s, MAX_VALUE_CHARS))),
        Value::Array(items) => Some(Value::Array(
            items
                .iter()
                .filter_map(Value::as_str)
                .take(MAX_LIST_ITEMS)
                .map(|s| truncate(s, MAX_VALUE_CHARS).into())
                .collect(),
        )),
        Value::Object(map) if depth > 0 => Some(Value::Object(
            map.iter()
                .take(MAX_LIST_ITEMS)
                .filter_map(|(k, v)| Some((truncate(k, 64), bounded(v, depth - 1)?)))
                .collect(),
        )),
        _ => None,
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max_chars).collect();
        t.push('…');
        t
    }
}

/// An SNS subject: printable ASCII, at most 100 characters.
fn subject(side: Side, run_id: &str, failed_state: &str) -> String {
    let side = match side {
        Side::Source => "source",
        Side::Target => "target",
    };
    format!("aurora-dr {side} run {run_id} failed in {failed_state}")
        .chars()
        .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' })
        .take(100)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use aws_sdk_sns::Client;
    use aws_sdk_sns::operation::publish::{PublishError, PublishInput, PublishOutput};
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::payload::tests::finished_source_run;
    use crate::settings::tests::{source_settings, target_settings};
    use crate::steps::test_support::{self as ts, SNAPSHOT_ID};

    type Seen = Arc<Mutex<Vec<PublishInput>>>;

    fn publish(seen: &Seen) -> Rule {
        let seen = seen.clone();
        mock!(Client::publish)
            .match_requests(move |r| {
                seen.lock().expect("lock").push(r.clone());
                true
            })
            .then_output(|| PublishOutput::builder().message_id("m-1").build())
    }

    fn attr<'a>(req: &'a PublishInput, name: &str) -> (&'a str, Option<&'a str>) {
        let a = req
            .message_attributes()
            .and_then(|m| m.get(name))
            .unwrap_or_else(|| panic!("no attribute {name}"));
        (a.data_type(), a.string_value())
    }

    fn failure_topic() -> Arn {
        "arn:aws:sns:us-west-2:111111111111:aurora-dr-failures".parse().expect("arn")
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
        assert_eq!(req.message_attributes().map(|m| m.len()), Some(3));
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
    async fn failure_mode_reports_a_run_state_payload() {
        let mut input = finished_source_run();
        input.failed_state = Some("EncryptCopy".into());
        input.failure = Some(crate::payload::Failure {
            error: "AccessDenied".into(),
            cause: "access denied: KMS key not usable".into(),
        });
        let input = input.to_value();
        let seen = Seen::default();
        let rule = publish(&seen);

        let out = run_failure(&ts::sns(&[&rule]), Some(&failure_topic()), Side::Source, input.clone())
            .await
            .expect("published");

        assert_eq!(out, input);
        let seen = seen.lock().expect("lock");
        let req = &seen[0];
        assert_eq!(req.topic_arn(), Some(failure_topic().as_str()));
        assert_eq!(attr(req, "kind"), ("String", Some("failure")));
        assert_eq!(req.subject(), Some("aurora-dr source run run-1 failed in EncryptCopy"));
        let body: Value = serde_json::from_str(req.message().expect("message")).expect("json");
        assert_eq!(body["version"], 1);
        assert_eq!(body["kind"], "failure");
        assert_eq!(body["runId"], "run-1");
        assert_eq!(body["failedState"], "EncryptCopy");
        assert_eq!(body["error"], "AccessDenied");
        assert_eq!(body["cause"], "access denied: KMS key not usable");
        assert_eq!(body["side"], "source");
        assert_eq!(body["resources"]["sourceClusterId"], "orders");
        assert_eq!(body["resources"]["sourceSnapshotId"], SNAPSHOT_ID);
        assert_eq!(body["resources"]["targetSnapshotArn"], ts::TARGET_SNAPSHOT_ARN);
        assert!(body["resources"].get("kmsKeyArn").is_none(), "only resource ids: {body}");
    }

    #[tokio::test]
    async fn failure_mode_reports_a_payload_that_is_not_a_run_state() {
        let cause = "x".repeat(10_000);
        let input = json!({
            "runId": "run-7",
            "unexpected": {"deep": [1, 2, 3]},
            "failedState": "Swap",
            "restoredClusterId": "orders-dr-next",
            "restoredInstanceIds": ["orders-dr-next-1", 42],
            "swap": {"existingClusterId": "orders-dr", "oldClusterId": "orders-dr-old-1", "nested": {"x": "y"}},
            "failure": {"Error": "SwapFailed", "Cause": cause}
        });
        assert!(RunState::from_value(input.clone()).is_err(), "the point: not a RunState");
        let seen = Seen::default();
        let rule = publish(&seen);
        let target_topic: Arn = "arn:aws:sns:us-west-1:222222222222:aurora-dr-failures".parse().expect("arn");

        run_failure(&ts::sns(&[&rule]), Some(&target_topic), Side::Target, input).await.expect("published");

        let seen = seen.lock().expect("lock");
        let body: Value = serde_json::from_str(seen[0].message().expect("message")).expect("json");
        assert_eq!(body["runId"], "run-7");
        assert_eq!(body["failedState"], "Swap");
        assert_eq!(body["error"], "SwapFailed");
        assert_eq!(body["side"], "target");
        assert_eq!(body["cause"].as_str().map(|c| c.chars().count()), Some(MAX_CAUSE_CHARS + 1));
        assert_eq!(
            body["resources"],
            json!({
                "restoredClusterId": "orders-dr-next",
                "restoredInstanceIds": ["orders-dr-next-1"],
                "swap": {"existingClusterId": "orders-dr", "oldClusterId": "orders-dr-old-1"}
            })
        );
        assert_eq!(attr(&seen[0], "kind"), ("String", Some("failure")));
    }

    #[test]
    fn failure_message_survives_any_shape() {
        let m = failure_message(Side::Source, &json!({"failure": "boom"}));
        assert_eq!(m["error"], "boom");
        assert_eq!(m["runId"], Value::Null);
        assert_eq!(m["resources"], json!({}));
        let m = failure_message(
            Side::Source,
            &json!({"failure": {"Error": "ResourceFailed"}, "waitFor": "sourceSnapshot",
            "run": {"runId": "run-3", "sourceSnapshotId": "s-1"}}),
        );
        assert_eq!(m["runId"], "run-3", "{m}");
        assert_eq!(m["resources"]["sourceSnapshotId"], "s-1");
        assert_eq!(m["cause"], "");
        let m = failure_message(Side::Target, &json!({"failure": {"Error": 5}, "runId": 9}));
        assert_eq!((m["error"].clone(), m["runId"].clone()), (json!("unknown"), Value::Null));
    }

    #[tokio::test]
    async fn without_a_failure_topic_the_failure_is_logged_and_nothing_published() {
        let seen = Seen::default();
        let rule = publish(&seen);
        let input = json!({"runId": "run-1", "failure": {"Error": "X", "Cause": "y"}});
        let out = run_failure(&ts::sns(&[&rule]), None, Side::Source, input.clone()).await.expect("logged");
        assert_eq!(out, input);
        assert_eq!(rule.num_calls(), 0);
    }

    #[tokio::test]
    async fn failure_mode_publish_errors_are_classified() {
        let rule = mock!(Client::publish).then_error(|| PublishError::generic(ts::meta("Throttling")));
        let input = json!({"failure": {"Error": "X"}});
        let err = run_failure(&ts::sns(&[&rule]), Some(&failure_topic()), Side::Source, input)
            .await
            .expect_err("t");
        assert_eq!(err.asl_name(), "Throttled");
    }

    #[test]
    fn subjects_are_short_printable_ascii() {
        let s = subject(Side::Target, &"r".repeat(80), "Wait\nFor");
        assert_eq!(s.len(), 100);
        assert!(s.chars().all(|c| c.is_ascii_graphic() || c == ' '), "{s}");
    }

    #[tokio::test]
    async fn handle_routes_by_side_and_mode() {
        // Target side, success mode: refused before any call.
        let recorder = ts::Recorder::default();
        let err =
            handle(ts::target_context(&recorder), finished_source_run().to_value()).await.expect_err("side");
        assert_eq!(err.asl_name(), "InvalidConfig");
        assert!(recorder.sent().is_empty());

        // Target side, failure mode, no topic configured: logged, nothing sent.
        let failed =
            json!({"runId": "run-1", "failedState": "Restore", "failure": {"Error": "X", "Cause": ""}});
        let out = handle(ts::target_context(&recorder), failed.clone()).await.expect("logged");
        assert_eq!(out, failed);
        assert!(recorder.sent().is_empty());

        // Target side, failure mode with a topic: published in the topic's region.
        let mut target = target_settings();
        target.failure_topic_arn =
            Some("arn:aws:sns:us-west-1:222222222222:aurora-dr-failures".parse().expect("arn"));
        let recorder = ts::Recorder::replying(vec![(200, publish_xml())]);
        handle(recorder.context(SideSettings::Target(target)), failed).await.expect("published");
        let sent = recorder.sent();
        assert_eq!(sent.len(), 1);
        assert!(sent[0].uri.contains("sns.us-west-1."), "{}", sent[0].uri);
        assert!(sent[0].body.contains("Action=Publish"), "{}", sent[0].body);
        assert!(sent[0].body.contains("MessageAttributes.entry.1.Name=kind"), "{}", sent[0].body);

        // Source side, success mode: published to the notification topic's region.
        let recorder = ts::Recorder::replying(vec![(200, publish_xml())]);
        let out =
            handle(ts::source_context(&recorder), finished_source_run().to_value()).await.expect("published");
        assert_eq!(out, finished_source_run().to_value());
        let sent = recorder.sent();
        assert!(sent[0].uri.contains("sns.us-west-2."), "{}", sent[0].uri);
        assert!(sent[0].body.contains("aurora-dr-snapshots"), "{}", sent[0].body);

        // Anything that is not a RunState and not a failure payload is InvalidInput.
        let recorder = ts::Recorder::default();
        let err = handle(ts::source_context(&recorder), json!({"hello": 1})).await.expect_err("bad");
        assert_eq!(err.asl_name(), "InvalidInput");
        assert!(recorder.sent().is_empty());
    }

    fn publish_xml() -> String {
        "<PublishResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishResult>\
         <MessageId>m-1</MessageId></PublishResult></PublishResponse>"
            .into()
    }
}
