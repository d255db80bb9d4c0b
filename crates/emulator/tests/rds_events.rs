//! RDS events on EventBridge (emulator/compat/rds_events.py) and rules with
//! Lambda targets (emulator/compat/lambda_targets.py): the event RDS
//! documents for a state change reaches the URL registered for the target
//! function, with nobody polling.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aurora_dr_emulator::{Delay, Emulator, EmulatorConfig, FaultRule, Latency};
use axum::http::StatusCode;
use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Work that ends by the clock, so that events fire without a describe call.
const SECONDS: f64 = 0.4;
/// Longest wait for an event that should come.
const PATIENCE: Duration = Duration::from_secs(10);
const FUNCTION: &str = "arn:aws:lambda:us-west-1:222222222222:function:task-token-completer";

/// A stand-in for a Lambda function: forwards every POSTed event; answers
/// 500 to the first `failures` of them.
async fn function(failures: usize) -> (String, mpsc::UnboundedReceiver<Value>, Arc<AtomicUsize>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = axum::Router::new().route(
        "/invoke",
        axum::routing::post(move |body: String| {
            let tx = tx.clone();
            let counter = counter.clone();
            async move {
                if counter.fetch_add(1, Ordering::SeqCst) < failures {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                let _ = tx.send(serde_json::from_str(&body).unwrap_or(Value::String(body)));
                StatusCode::ACCEPTED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/invoke", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx, calls)
}

/// One EventBridge API call (JSON protocol) in `account`, as the SDK sends
/// it; moto does not check signatures.
async fn events(emulator: &Emulator, account: &str, operation: &str, body: Value) -> (u16, Value) {
    let authority = emulator.url().trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&authority).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(connection);
    let request = Request::post("/")
        .header("host", &authority)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("AWSEvents.{operation}"))
        .header("x-moto-account-id", account)
        .header(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=test/20261203/{TARGET_REGION}/events/aws4_request, \
                 SignedHeaders=host, Signature=0"
            ),
        )
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request");
    let response = sender.send_request(request).await.expect("send");
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// A rule on the default bus of the target account with `pattern`, whose
/// one target is the function.
async fn rule(emulator: &Emulator, name: &str, pattern: Value) {
    let (status, answer) = events(
        emulator,
        TARGET,
        "PutRule",
        json!({"Name": name, "EventPattern": pattern.to_string(), "State": "ENABLED"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = events(
        emulator,
        TARGET,
        "PutTargets",
        json!({"Rule": name, "Targets": [{"Id": "completer", "Arn": FUNCTION}]}),
    )
    .await;
    assert_eq!((status, answer["FailedEntryCount"].as_u64()), (200, Some(0)), "{answer}");
}

/// An emulator whose function endpoint is registered; its RDS client in
/// the target account and region.
async fn setup(
    failures: usize,
) -> (Emulator, aws_sdk_rds::Client, mpsc::UnboundedReceiver<Value>, Arc<AtomicUsize>) {
    let emulator = emulator().await;
    let (url, inbox, calls) = function(failures).await;
    let endpoints = BTreeMap::from([(FUNCTION.to_owned(), url)]);
    emulator.control().set_lambda_endpoints(&endpoints).await.expect("register the function's URL");
    let rds = rds(&emulator, TARGET, TARGET_REGION).await;
    (emulator, rds, inbox, calls)
}

/// From now on work ends by the clock (set-up before used describe polls).
async fn by_the_clock(emulator: &Emulator) {
    emulator.control().set_latency(&Latency::uniform(Delay::seconds(SECONDS))).await.expect("latency");
}

async fn next_event(inbox: &mut mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(PATIENCE, inbox.recv())
        .await
        .expect("no event reached the function in time")
        .expect("receiver open")
}

async fn nothing_within(inbox: &mut mpsc::UnboundedReceiver<Value>, wait: Duration) {
    if let Ok(Some(event)) = tokio::time::timeout(wait, inbox.recv()).await {
        panic!("unexpected event: {event}");
    }
}

/// Waits until the event `event_id` about `source` has been sent (set-up
/// done before a rule exists must not reach it).
async fn sent(emulator: &Emulator, event_id: &str, source: &str) {
    for _ in 0..100 {
        let log = emulator.control().rds_events().await.expect("rds events");
        let detail = |e: &Value| e["event"]["detail"].clone();
        if log.iter().any(|e| detail(e)["EventID"] == event_id && detail(e)["SourceIdentifier"] == source) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{event_id} about {source} was never sent");
}

fn rds_pattern(detail_type: &str) -> Value {
    json!({"source": ["aws.rds"], "detail-type": [detail_type]})
}

/// Aurora guide, "Amazon RDS event categories and event messages for
/// Aurora" (RDS-EVENT-0170 "DB cluster created.") and "Overview of events
/// for Aurora" (the event's shape): the restored cluster's event reaches the
/// rule's Lambda target, and nobody described the cluster after the restore.
#[tokio::test]
async fn a_restored_cluster_becoming_available_reaches_the_lambda_target() {
    let (emulator, rds, mut inbox, _) = setup(0).await;
    cluster(&rds, "prod").await;
    snapshot(&rds, "prod", "dr-snap").await;
    sent(&emulator, "RDS-EVENT-0075", "dr-snap").await;
    rule(&emulator, "cluster-events", rds_pattern("RDS DB Cluster Event")).await;
    by_the_clock(&emulator).await;
    emulator.control().clear_calls().await.expect("clear calls");

    let restored = rds
        .restore_db_cluster_from_snapshot()
        .db_cluster_identifier("dr-restore")
        .snapshot_identifier("dr-snap")
        .engine(ENGINE)
        .send()
        .await
        .expect("restore");
    assert_eq!(restored.db_cluster().and_then(|c| c.status()), Some("creating"));
    let arn = restored.db_cluster().and_then(|c| c.db_cluster_arn()).expect("arn").to_owned();

    let event = next_event(&mut inbox).await;
    assert_eq!(event["source"], "aws.rds");
    assert_eq!(event["detail-type"], "RDS DB Cluster Event");
    assert_eq!(event["version"], "0");
    assert_eq!((event["account"].as_str(), event["region"].as_str()), (Some(TARGET), Some(TARGET_REGION)));
    assert!(event["time"].as_str().is_some_and(|t| t.ends_with('Z') && t.len() == 20), "{event}");
    assert_eq!(event["resources"], json!([arn]));
    let detail = &event["detail"];
    assert_eq!(detail["EventID"], "RDS-EVENT-0170");
    assert_eq!(detail["EventCategories"], json!(["creation"]));
    assert_eq!(detail["SourceType"], "CLUSTER");
    assert_eq!(detail["SourceArn"], arn.as_str());
    assert_eq!(detail["SourceIdentifier"], "dr-restore");
    assert_eq!(detail["Message"], "DB cluster created.");
    assert!(detail["Date"].as_str().is_some_and(|d| d.ends_with('Z')), "{detail}");

    // The delivery is logged once the function has answered.
    let mut calls = emulator.control().calls().await.expect("calls");
    for _ in 0..50 {
        if calls.iter().any(|c| c.operation == "Deliver") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        calls = emulator.control().calls().await.expect("calls");
    }
    let described: Vec<_> = calls.iter().filter(|c| c.operation.starts_with("Describe")).collect();
    assert!(described.is_empty(), "no poll was needed: {described:?}");
    let delivered: Vec<_> =
        calls.iter().filter(|c| c.service == "events" && c.operation == "Deliver").collect();
    assert_eq!(delivered.len(), 1, "{calls:?}");
    assert_eq!(delivered[0].params.get("EventID").map(String::as_str), Some("RDS-EVENT-0170"));
    assert_eq!(delivered[0].status, Some(202));
    // The event is sent once: the cluster stays available.
    nothing_within(&mut inbox, Duration::from_millis(500)).await;
    let cluster = cluster_in(&rds, "dr-restore", "available").await.expect("available when described");
    assert_eq!(cluster.db_cluster_arn(), Some(arn.as_str()));
    nothing_within(&mut inbox, Duration::from_millis(300)).await;
}

/// RDS-EVENT-0005 "DB instance created." when the instance is available.
#[tokio::test]
async fn an_instance_created_sends_its_event() {
    let (emulator, rds, mut inbox, _) = setup(0).await;
    cluster(&rds, "dr-restore").await;
    sent(&emulator, "RDS-EVENT-0170", "dr-restore").await;
    rule(&emulator, "instance-events", rds_pattern("RDS DB Instance Event")).await;
    by_the_clock(&emulator).await;
    rds.create_db_instance()
        .db_instance_identifier("dr-restore-1")
        .db_cluster_identifier("dr-restore")
        .engine(ENGINE)
        .db_instance_class("db.r6g.large")
        .send()
        .await
        .expect("create instance");
    let event = next_event(&mut inbox).await;
    assert_eq!(event["detail-type"], "RDS DB Instance Event");
    let detail = &event["detail"];
    assert_eq!(
        (detail["EventID"].as_str(), detail["SourceType"].as_str(), detail["SourceIdentifier"].as_str()),
        (Some("RDS-EVENT-0005"), Some("DB_INSTANCE"), Some("dr-restore-1"))
    );
    assert_eq!(detail["Message"], "DB instance created.");
    assert_eq!(detail["EventCategories"], json!(["creation"]));
    assert!(detail["SourceArn"].as_str().is_some_and(|a| a.ends_with(":db:dr-restore-1")), "{detail}");
    nothing_within(&mut inbox, Duration::from_millis(500)).await;
}

/// RDS-EVENT-0172 "Renamed cluster from <old> to <new>." under the new ARN,
/// once the renamed cluster is available again.
#[tokio::test]
async fn a_renamed_cluster_sends_its_event_when_available_again() {
    let (emulator, rds, mut inbox, _) = setup(0).await;
    cluster(&rds, "dr-restore").await;
    sent(&emulator, "RDS-EVENT-0170", "dr-restore").await;
    rule(&emulator, "renames", json!({"source": ["aws.rds"], "detail": {"EventID": ["RDS-EVENT-0172"]}}))
        .await;
    by_the_clock(&emulator).await;
    let renamed = rds
        .modify_db_cluster()
        .db_cluster_identifier("dr-restore")
        .new_db_cluster_identifier("prod")
        .apply_immediately(true)
        .send()
        .await
        .expect("rename");
    assert_eq!(renamed.db_cluster().and_then(|c| c.status()), Some("renaming"));
    let event = next_event(&mut inbox).await;
    let detail = &event["detail"];
    assert_eq!(detail["EventID"], "RDS-EVENT-0172");
    assert_eq!(detail["EventCategories"], json!(["notification"]));
    assert_eq!(detail["Message"], "Renamed cluster from dr-restore to prod.");
    assert_eq!(detail["SourceIdentifier"], "prod");
    let arn = format!("arn:aws:rds:{TARGET_REGION}:{TARGET}:cluster:prod");
    assert_eq!((detail["SourceArn"].as_str(), &event["resources"]), (Some(arn.as_str()), &json!([arn])));
    // Available without a describe: the next step can act on it at once.
    rds.modify_db_cluster()
        .db_cluster_identifier("prod")
        .deletion_protection(true)
        .apply_immediately(true)
        .send()
        .await
        .expect("the renamed cluster is available when its event arrives");
}

/// EventBridge guide, "Event patterns": a rule gets only the events its
/// pattern matches; a disabled rule none ("Disabling or deleting a rule",
/// https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-delete-rule.html).
#[tokio::test]
async fn a_rule_on_another_detail_type_gets_nothing() {
    let (emulator, rds, mut inbox, _) = setup(0).await;
    rule(&emulator, "snapshots-only", rds_pattern("RDS DB Cluster Snapshot Event")).await;
    // A disabled rule sends nothing, whatever it matches.
    rule(&emulator, "disabled", rds_pattern("RDS DB Cluster Event")).await;
    let (status, answer) = events(&emulator, TARGET, "DisableRule", json!({"Name": "disabled"})).await;
    assert_eq!(status, 200, "{answer}");
    by_the_clock(&emulator).await;
    rds.create_db_cluster()
        .db_cluster_identifier("dr-restore")
        .engine(ENGINE)
        .master_username("dbadmin")
        .master_user_password("correct-horse-battery")
        .send()
        .await
        .expect("create");
    nothing_within(&mut inbox, Duration::from_secs_f64(SECONDS * 4.0)).await;
    let sent = emulator.control().rds_events().await.expect("rds events");
    assert!(
        sent.iter().any(|e| e["event"]["detail"]["EventID"] == "RDS-EVENT-0170" && e["fate"] == "sent"),
        "the cluster's event was sent, only not matched: {sent:?}"
    );
    assert!(emulator.control().lambda_deliveries().await.expect("deliveries").is_empty());
}

/// RDS-EVENT-0031 for an instance that ends in `failed`; RDS-EVENT-0003 and
/// RDS-EVENT-0171 when the instance and the cluster are gone.
#[tokio::test]
async fn failures_and_deletions_send_their_events() {
    let (emulator, rds, mut inbox, _) = setup(0).await;
    cluster(&rds, "dr-restore").await;
    sent(&emulator, "RDS-EVENT-0170", "dr-restore").await;
    rule(&emulator, "all-rds", json!({"source": ["aws.rds"]})).await;
    emulator
        .control()
        .arm(FaultRule::instance_status("dr-restore-1", "failed", 0, Some(1)))
        .await
        .expect("arm");
    by_the_clock(&emulator).await;
    rds.create_db_instance()
        .db_instance_identifier("dr-restore-1")
        .db_cluster_identifier("dr-restore")
        .engine(ENGINE)
        .db_instance_class("db.r6g.large")
        .send()
        .await
        .expect("create instance");
    let failed = next_event(&mut inbox).await;
    assert_eq!(failed["detail"]["EventID"], "RDS-EVENT-0031");
    assert_eq!(failed["detail"]["EventCategories"], json!(["failure"]));
    assert_eq!(
        failed["detail"]["Message"],
        "DB instance put into failed state. RDS recommends that you initiate a point-in-time-restore."
    );

    rds.delete_db_instance().db_instance_identifier("dr-restore-1").send().await.expect("delete instance");
    let deleted = next_event(&mut inbox).await;
    assert_eq!(
        (deleted["detail"]["EventID"].as_str(), deleted["detail"]["Message"].as_str()),
        (Some("RDS-EVENT-0003"), Some("DB instance deleted."))
    );
    rds.delete_db_cluster()
        .db_cluster_identifier("dr-restore")
        .skip_final_snapshot(true)
        .send()
        .await
        .expect("delete cluster");
    let deleted = next_event(&mut inbox).await;
    assert_eq!(
        (deleted["detail"]["EventID"].as_str(), deleted["detail"]["SourceIdentifier"].as_str()),
        (Some("RDS-EVENT-0171"), Some("dr-restore"))
    );
    assert_eq!(deleted["detail"]["Message"], "DB cluster deleted.");
    nothing_within(&mut inbox, Duration::from_millis(500)).await;
}

/// A restore that ends in `failed` (a `cluster_status` fault rule) sends
/// RDS-EVENT-0354, the guide's failure event for a cluster being created.
#[tokio::test]
async fn a_restore_that_fails_sends_its_event() {
    let (emulator, rds, mut inbox, _) = setup(0).await;
    cluster(&rds, "prod").await;
    snapshot(&rds, "prod", "dr-snap").await;
    sent(&emulator, "RDS-EVENT-0075", "dr-snap").await;
    rule(&emulator, "cluster-events", rds_pattern("RDS DB Cluster Event")).await;
    emulator.control().arm(FaultRule::cluster_status("dr-*", "failed", 0, Some(1))).await.expect("arm");
    by_the_clock(&emulator).await;
    rds.restore_db_cluster_from_snapshot()
        .db_cluster_identifier("dr-restore")
        .snapshot_identifier("dr-snap")
        .engine(ENGINE)
        .send()
        .await
        .expect("restore");
    let event = next_event(&mut inbox).await;
    let detail = &event["detail"];
    assert_eq!(
        (detail["EventID"].as_str(), detail["SourceIdentifier"].as_str()),
        (Some("RDS-EVENT-0354"), Some("dr-restore"))
    );
    assert_eq!(detail["EventCategories"], json!(["failure"]));
    assert!(
        detail["Message"].as_str().is_some_and(
            |m| m.starts_with("You can't create the DB cluster because of incompatible resources.")
        ),
        "{detail}"
    );
    cluster_in(&rds, "dr-restore", "failed").await.expect("described as failed");
    nothing_within(&mut inbox, Duration::from_millis(500)).await;
}

/// The `rds_event` fault rule: a lost event never reaches the target (RDS
/// "emits events on a best effort basis"); the next one does.
#[tokio::test]
async fn a_lost_event_never_reaches_the_target() {
    let (emulator, rds, mut inbox, _) = setup(0).await;
    rule(&emulator, "cluster-events", rds_pattern("RDS DB Cluster Event")).await;
    let id = emulator
        .control()
        .arm(FaultRule::rds_event_lost().event_id("RDS-EVENT-0170").source("dr-*").times(1))
        .await
        .expect("arm");
    by_the_clock(&emulator).await;
    for name in ["dr-lost", "dr-sent"] {
        rds.create_db_cluster()
            .db_cluster_identifier(name)
            .engine(ENGINE)
            .master_username("dbadmin")
            .master_user_password("correct-horse-battery")
            .send()
            .await
            .expect("create");
    }
    let event = next_event(&mut inbox).await;
    assert_eq!(event["detail"]["SourceIdentifier"], "dr-sent");
    nothing_within(&mut inbox, Duration::from_secs_f64(SECONDS * 3.0)).await;
    let log = emulator.control().rds_events().await.expect("rds events");
    let lost: Vec<_> = log.iter().filter(|e| e["fate"] == "lost").collect();
    assert_eq!(lost.len(), 1, "{log:?}");
    assert_eq!(lost[0]["event"]["detail"]["SourceIdentifier"], "dr-lost");
    assert_eq!(lost[0]["fault"], id);
}

/// A delayed event arrives, late.
#[tokio::test]
async fn a_delayed_event_arrives_late() {
    let (emulator, rds, mut inbox, _) = setup(0).await;
    rule(&emulator, "cluster-events", rds_pattern("RDS DB Cluster Event")).await;
    emulator.control().arm(FaultRule::rds_event_delayed(1.5)).await.expect("arm");
    by_the_clock(&emulator).await;
    let started = std::time::Instant::now();
    rds.create_db_cluster()
        .db_cluster_identifier("dr-late")
        .engine(ENGINE)
        .master_username("dbadmin")
        .master_user_password("correct-horse-battery")
        .send()
        .await
        .expect("create");
    let event = next_event(&mut inbox).await;
    assert_eq!(event["detail"]["SourceIdentifier"], "dr-late");
    assert!(started.elapsed() >= Duration::from_secs_f64(SECONDS + 1.5), "{:?}", started.elapsed());
}

/// EventBridge guide, "Event retry policy and using dead-letter queues": a
/// target that fails is retried.
#[tokio::test]
async fn a_failing_function_is_retried() {
    let (emulator, rds, mut inbox, calls) = setup(2).await;
    rule(&emulator, "cluster-events", rds_pattern("RDS DB Cluster Event")).await;
    by_the_clock(&emulator).await;
    rds.create_db_cluster()
        .db_cluster_identifier("dr-retried")
        .engine(ENGINE)
        .master_username("dbadmin")
        .master_user_password("correct-horse-battery")
        .send()
        .await
        .expect("create");
    let event = next_event(&mut inbox).await;
    assert_eq!(event["detail"]["EventID"], "RDS-EVENT-0170");
    assert_eq!(calls.load(Ordering::SeqCst), 3, "two answers of 500, then accepted");
    let deliveries = emulator.control().lambda_deliveries().await.expect("deliveries");
    assert_eq!((deliveries[0]["attempts"].as_u64(), deliveries[0]["status"].as_u64()), (Some(3), Some(202)));
}

/// EventBridge guide, "Using resource-based policies for Amazon
/// EventBridge": with IAM mode on, each delivery is judged as
/// events.amazonaws.com invoking the function for the rule; denied, it is
/// not sent and is recorded.
#[tokio::test]
async fn iam_mode_judges_each_delivery() {
    let (emulator, rds, mut inbox, _) = setup(0).await;
    let control = emulator.control();
    rule(&emulator, "cluster-events", rds_pattern("RDS DB Cluster Event")).await;
    control
        .set_iam(&json!({"mode": "enforce", "evaluator": ["python3", "-c", FAKE_EVALUATOR, "lambda:InvokeFunction"],
                         "principals": {}}))
        .await
        .expect("IAM mode");
    by_the_clock(&emulator).await;
    rds.create_db_cluster()
        .db_cluster_identifier("dr-denied")
        .engine(ENGINE)
        .master_username("dbadmin")
        .master_user_password("correct-horse-battery")
        .send()
        .await
        .expect("create");
    nothing_within(&mut inbox, Duration::from_secs_f64(SECONDS * 4.0)).await;
    let deliveries = control.lambda_deliveries().await.expect("deliveries");
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(
        (deliveries[0]["decision"].as_str(), deliveries[0]["attempts"].as_u64()),
        (Some("ImplicitlyDenied"), Some(0))
    );
    let decisions = control.iam().await.expect("iam")["decisions"].clone();
    let rule_arn = format!("arn:aws:events:{TARGET_REGION}:{TARGET}:rule/cluster-events");
    let judged = decisions.as_array().and_then(|d| d.last()).cloned().expect("a decision");
    assert_eq!(judged["function"], "EventBridge");
    assert_eq!(judged["role"], "events.amazonaws.com");
    assert_eq!(judged["action"], "lambda:InvokeFunction");
    assert_eq!(judged["resource"], FUNCTION);
    assert_eq!(judged["context"]["aws:SourceArn"], rule_arn.as_str());
    assert_eq!(judged["context"]["aws:SourceAccount"], TARGET);
    let calls = control.calls().await.expect("calls");
    let denied = calls
        .iter()
        .find(|c| c.service == "events" && c.operation == "Deliver")
        .expect("the delivery is logged");
    assert_eq!(denied.error_code.as_deref(), Some("AccessDeniedException"));

    // Allowed, it goes through.
    control
        .set_iam(&json!({"mode": "enforce", "evaluator": ["python3", "-c", FAKE_EVALUATOR, "nothing:Denied"],
                         "principals": {}}))
        .await
        .expect("IAM mode");
    rds.create_db_cluster()
        .db_cluster_identifier("dr-allowed")
        .engine(ENGINE)
        .master_username("dbadmin")
        .master_user_password("correct-horse-battery")
        .send()
        .await
        .expect("create");
    let event = next_event(&mut inbox).await;
    assert_eq!(event["detail"]["SourceIdentifier"], "dr-allowed");
    control.iam_off().await.expect("off");
}

/// Stock moto 5.2.5 sends no RDS events, and a rule with a Lambda target
/// makes PutEvents fail.
#[tokio::test]
async fn stock_moto_sends_no_rds_events() {
    let emulator = emulator_with(EmulatorConfig::stock()).await;
    let (_url, mut inbox, _) = function(0).await;
    rule(&emulator, "cluster-events", json!({"source": ["aws.rds", "test"]})).await;
    let rds = rds(&emulator, TARGET, TARGET_REGION).await;
    rds.create_db_cluster()
        .db_cluster_identifier("dr-restore")
        .engine(ENGINE)
        .master_username("dbadmin")
        .master_user_password("correct-horse-battery")
        .send()
        .await
        .expect("create");
    let entry = json!({"Source": "test", "DetailType": "t", "Detail": "{}"});
    let (status, _) = events(&emulator, TARGET, "PutEvents", json!({"Entries": [entry]})).await;
    assert_eq!(status, 500, "moto cannot deliver to a Lambda target");
    nothing_within(&mut inbox, Duration::from_secs(1)).await;
}
