//! NotifySnapshotFailure, NotifyFailure and NotifyRetentionFailure (either
//! side): tell people a run failed. The only function that publishes to a
//! side's failure topic, and it publishes nowhere else.
//!
//! Input: any payload with `failure`. Publishes
//! `{"version":1,"kind":"failure","runId","failedState","error","cause",
//! "side":"source"|"target","resources":{..}}` to the side's
//! `failure_topic_arn` with the attribute `kind=failure`. `resources` holds
//! whichever resource ids the payload has. `keptClusters` lists every
//! cluster the run leaves running that aurora-dr will not delete, each with
//! the AWS CLI commands that remove it ([`KeptCluster`]): those the payload
//! names (a replaced cluster without aurora-dr's tags) and, when Terminate
//! failed, the renamed-away previous copy it did not delete (later runs
//! delete only their own previous copy). The payload is read loosely, so a
//! payload that does not parse as a RunState (the failure may be that it is
//! malformed) is still reported. A restore test's failure says so
//! (`"mode": "restore-test"`, a `restoreTest` sentence and a subject naming
//! the restore test): it never touched the serving cluster. Without a failure topic the notification is
//! logged at error level and the step succeeds. Output: the input, unchanged.
//!
//! Errors: `InvalidInput` (the input carries no `failure`) and the SNS
//! classifications (`Throttled`, `ServiceUnavailable` are retryable).
//!
//! Metrics ([`crate::metrics`]): `Failures`.

use std::sync::Arc;

use aws_sdk_sns::Client;
use serde_json::{Map, Value, json};

use crate::context::{Side, StepContext};
use crate::error::{DrError, DrResult};
use crate::ids::Arn;
use crate::metrics;
use crate::payload::{KeptCluster, MESSAGE_VERSION, RunMode, RunState};
use crate::steps::input::{self, InputKind};
use crate::steps::notify::{attribute, sns_for};

/// The states this module serves.
pub const STATES: [&str; 3] = ["NotifySnapshotFailure", "NotifyFailure", "NotifyRetentionFailure"];

const STEP: &str = "notify_failure";

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

/// What a target-side notification says when SanityCheck makes no probe.
pub const SANITY_SKIPPED: &str = "skipped: SANITY_SECRET_ARN is not set, so no run of this stack probes the \
     cluster it swaps in (README, Sanity check)";

/// Whether this side's SanityCheck makes no probe (target side without a
/// secret); the source side has no SanityCheck.
pub fn sanity_skipped(settings: &crate::context::SideSettings) -> bool {
    matches!(settings, crate::context::SideSettings::Target(t) if t.sanity.secret_arn.is_none())
}

/// Publishes (or, without a topic, logs) the failure notification;
/// returns `input` unchanged. `sanity_skipped`: the message says that the
/// side's SanityCheck makes no probe ([`SANITY_SKIPPED`]).
pub async fn run(
    sns: &Client,
    topic: Option<&Arn>,
    side: Side,
    input: Value,
    sanity_skipped: bool,
) -> DrResult<Value> {
    let mut message = failure_message(side, &input);
    if sanity_skipped {
        message["sanityCheck"] = SANITY_SKIPPED.into();
    }
    let text = serde_json::to_string(&message)?;
    let run_id = message["runId"].as_str().unwrap_or("unknown");
    let failed_state = message["failedState"].as_str().unwrap_or("unknown");
    let what = if message.get("mode").is_some() { "restore test" } else { "run" };
    let Some(topic) = topic else {
        tracing::error!(step = STEP, run_id, failed_state, side = ?side, notification = %text,
            "run failed; no failure topic is configured, so this log is the only notification");
        return Ok(input);
    };
    let out = sns
        .publish()
        .topic_arn(topic.as_str())
        .subject(subject(side, what, run_id, failed_state))
        .message(text)
        .message_attributes("kind", attribute("failure")?)
        .send()
        .await
        .map_err(|e| DrError::from_sdk(&format!("Publish {topic}"), e))?;
    tracing::warn!(step = STEP, run_id, failed_state, side = ?side, topic = %topic,
        message_id = out.message_id().unwrap_or_default(), "failure notification published");
    Ok(input)
}

/// Lambda / local-engine entry of the failure notification states.
pub async fn handle(ctx: Arc<StepContext>, input: Value) -> DrResult<Value> {
    input::expect(&input, InputKind::FailurePath, "NotifyFailure")?;
    let side = ctx.settings.side();
    let topic = match &ctx.settings {
        crate::context::SideSettings::Source(s) => s.failure_topic_arn.as_ref(),
        crate::context::SideSettings::Target(t) => t.failure_topic_arn.as_ref(),
    };
    let out = run(&sns_for(&ctx, topic), topic, side, input, sanity_skipped(&ctx.settings)).await?;
    metrics::failure(side.as_str(), &out).emit();
    Ok(out)
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
    let mut message = json!({
        "version": MESSAGE_VERSION,
        "kind": "failure",
        "runId": text("runId"),
        "failedState": text("failedState"),
        "error": error.unwrap_or_else(|| "unknown".into()),
        "cause": cause.unwrap_or_default(),
        "side": side,
        "resources": resources,
        "keptClusters": kept_clusters(input, text("failedState").as_deref()),
    });
    if super::is_restore_test_payload(input) {
        message["mode"] = RunMode::RESTORE_TEST.into();
        message["restoreTest"] = RESTORE_TEST_FAILED.into();
    }
    message
}

/// What a failed restore test's notification says besides the failure.
pub const RESTORE_TEST_FAILED: &str = "this was a restore test: it restores a test cluster of its own and never \
     renames, modifies or deletes the serving cluster; its test cluster is removed unless \
     KEEP_FAILED_TEMP_CLUSTER keeps it. The serving DR cluster is as it was; the snapshot or its restore is \
     what failed";

/// The clusters the failed run leaves behind for good (see the module docs).
fn kept_clusters(input: &Value, failed_state: Option<&str>) -> Vec<KeptCluster> {
    let mut kept: Vec<KeptCluster> =
        input.get("keptClusters").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default();
    if failed_state == Some(crate::steps::terminate::STATE)
        && let Ok(run) = RunState::from_value(input.clone())
        && let (Some(swap), Some(region)) = (&run.swap, &run.target_region)
        && let Some(old) = &swap.old_cluster_id
        && !kept.iter().any(|k| k.cluster_id == *old)
    {
        kept.push(KeptCluster::new(
            old.clone(),
            swap.old_instance_ids.clone(),
            region.clone(),
            false,
            "the run failed in Terminate before deleting this previous copy, and later runs delete only their \
             own (if it was not made by aurora-dr it is never deleted); if it still exists, remove it",
        ));
    }
    kept.truncate(MAX_LIST_ITEMS);
    kept
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
fn subject(side: Side, what: &str, run_id: &str, failed_state: &str) -> String {
    format!("aurora-dr {} {what} {run_id} failed in {failed_state}", side.as_str())
        .chars()
        .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' })
        .take(100)
        .collect()
}

#[cfg(test)]
mod tests {
    use aws_sdk_sns::Client;
    use aws_sdk_sns::operation::publish::PublishError;
    use aws_smithy_mocks::mock;

    use super::*;
    use crate::context::SideSettings;
    use crate::payload::tests::finished_source_run;
    use crate::settings::tests::target_settings;
    use crate::steps::notify::tests::{Seen, attr, publish, publish_xml};
    use crate::steps::test_support::{self as ts, SNAPSHOT_ID};

    fn failure_topic() -> Arn {
        "arn:aws:sns:us-west-2:111111111111:aurora-dr-failures".parse().expect("arn")
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

        let out = run(&ts::sns(&[&rule]), Some(&failure_topic()), Side::Source, input.clone(), false)
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
        assert!(body.get("sanityCheck").is_none(), "{body}");
    }

    #[test]
    fn only_a_target_without_a_sanity_secret_skips_the_check() {
        use crate::context::SideSettings;
        let mut target = target_settings();
        target.sanity.secret_arn = None;
        assert!(sanity_skipped(&SideSettings::Target(target.clone())));
        target.sanity.secret_arn = Some(
            "arn:aws:secretsmanager:us-west-1:222222222222:secret:dr-probe-AbCdEf".parse().expect("arn"),
        );
        assert!(!sanity_skipped(&SideSettings::Target(target)));
        assert!(!sanity_skipped(&SideSettings::Source(crate::settings::tests::source_settings())));
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

        run(&ts::sns(&[&rule]), Some(&target_topic), Side::Target, input, true).await.expect("published");

        let seen = seen.lock().expect("lock");
        let body: Value = serde_json::from_str(seen[0].message().expect("message")).expect("json");
        assert_eq!(body["runId"], "run-7");
        assert_eq!(body["failedState"], "Swap");
        assert_eq!(body["error"], "SwapFailed");
        assert_eq!(body["side"], "target");
        assert_eq!(body["sanityCheck"], SANITY_SKIPPED, "a stack without probes says so");
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
    fn kept_clusters_are_named_with_the_commands_that_remove_them() {
        use crate::steps::target_support::{E, EI, O, OI, target_run};
        let mut run = target_run();
        run.swap = Some(crate::payload::SwapRecord {
            old_cluster_id: Some(O.parse().expect("id")),
            old_instance_ids: vec![OI.parse().expect("id")],
            deleted_instance_ids: Vec::new(),
            existing_cluster_id: E.parse().expect("id"),
            existing_instance_ids: vec![EI.parse().expect("id")],
        });
        run.failure = Some(crate::payload::Failure { error: "Throttled".into(), cause: "x".into() });
        let hand_made = KeptCluster::new(
            "orders-dr-old-20261124160005".parse().expect("id"),
            Vec::new(),
            "us-west-1".parse().expect("region"),
            false,
            "adopted",
        );

        // Terminate failed: the previous copy it did not delete is named.
        run.failed_state = Some("Terminate".into());
        let m = failure_message(Side::Target, &run.to_value());
        let kept = m["keptClusters"].as_array().expect("list");
        assert_eq!(kept.len(), 1, "{m:#}");
        assert_eq!(kept[0]["clusterId"], O);
        let commands: Vec<&str> = kept[0]["removeCommands"]
            .as_array()
            .expect("commands")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(
            commands,
            [
                format!("aws rds delete-db-instance --region us-west-1 --db-instance-identifier {OI}"),
                format!(
                    "aws rds delete-db-cluster --region us-west-1 --db-cluster-identifier {O} \
                     --final-db-snapshot-identifier {O}-final"
                ),
            ]
        );

        // A later failure (ApplyRetention) reports what Terminate kept, once.
        run.failed_state = Some("ApplyRetention".into());
        run.kept_clusters = vec![hand_made.clone()];
        let m = failure_message(Side::Target, &run.to_value());
        assert_eq!(m["keptClusters"], json!([hand_made]));
        // Before the swap nothing is kept.
        let mut early = target_run();
        early.failed_state = Some("Restore".into());
        early.failure = run.failure.clone();
        assert_eq!(failure_message(Side::Target, &early.to_value())["keptClusters"], json!([]));
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
        let out = run(&ts::sns(&[&rule]), None, Side::Source, input.clone(), false).await.expect("logged");
        assert_eq!(out, input);
        assert_eq!(rule.num_calls(), 0);
    }

    #[tokio::test]
    async fn failure_mode_publish_errors_are_classified() {
        let rule = mock!(Client::publish).then_error(|| PublishError::generic(ts::meta("Throttling")));
        let input = json!({"failure": {"Error": "X"}});
        let err =
            run(&ts::sns(&[&rule]), Some(&failure_topic()), Side::Source, input, false).await.expect_err("t");
        assert_eq!(err.asl_name(), "Throttled");
    }

    #[test]
    fn subjects_are_short_printable_ascii() {
        let s = subject(Side::Target, "run", &"r".repeat(80), "Wait\nFor");
        assert_eq!(s.len(), 100);
        assert!(s.chars().all(|c| c.is_ascii_graphic() || c == ' '), "{s}");
    }

    #[tokio::test]
    async fn handle_publishes_to_the_sides_failure_topic_only() {
        let failed =
            json!({"runId": "run-1", "failedState": "Restore", "failure": {"Error": "X", "Cause": ""}});
        // Target side, no topic configured: logged, nothing sent.
        let recorder = ts::Recorder::default();
        let out = handle(ts::target_context(&recorder), failed.clone()).await.expect("logged");
        assert_eq!(out, failed);
        assert!(recorder.sent().is_empty());

        // Target side with a topic: published in the topic's region, to that topic.
        let mut target = target_settings();
        target.failure_topic_arn =
            Some("arn:aws:sns:us-west-1:222222222222:aurora-dr-failures".parse().expect("arn"));
        let recorder = ts::Recorder::replying(vec![(200, publish_xml())]);
        handle(recorder.context(SideSettings::Target(target)), failed).await.expect("published");
        let sent = recorder.sent();
        assert_eq!(sent.len(), 1);
        assert!(sent[0].uri.contains("sns.us-west-1."), "{}", sent[0].uri);
        assert!(sent[0].body.contains("Action=Publish"), "{}", sent[0].body);
        assert!(sent[0].body.contains("aurora-dr-failures"), "{}", sent[0].body);
        assert!(sent[0].body.contains("MessageAttributes.entry.1.Name=kind"), "{}", sent[0].body);

        // A run payload without `failure` is Notify's, never published here.
        let recorder = ts::Recorder::default();
        let err = handle(ts::source_context(&recorder), finished_source_run().to_value())
            .await
            .expect_err("not a failure");
        assert_eq!(err.asl_name(), "InvalidInput");
        assert!(recorder.sent().is_empty());
    }
}
