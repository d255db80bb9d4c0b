//! SNS patches: cross-account subscription, AddPermission without Sid, and
//! http delivery of the notification (what the drill's receiver gets).

mod common;

use std::time::Duration;

use aws_sdk_sns::types::MessageAttributeValue;
use axum::http::HeaderMap;
use common::*;
use tokio::sync::mpsc;

/// An http endpoint on 127.0.0.1 that forwards every POST (headers, body).
async fn receiver() -> (String, mpsc::UnboundedReceiver<(HeaderMap, String)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/sns",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((headers, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/sns", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

async fn topic(emulator: &aurora_dr_emulator::Emulator) -> (aws_sdk_sns::Client, String) {
    let sns = context(emulator, SOURCE, SOURCE_REGION).await.sns();
    let arn = sns
        .create_topic()
        .name("aurora-dr")
        .send()
        .await
        .expect("topic")
        .topic_arn()
        .expect("arn")
        .to_owned();
    (sns, arn)
}

#[tokio::test]
async fn cross_account_subscription_receives_the_notification() {
    let emulator = emulator().await;
    let (source, topic_arn) = topic(&emulator).await;
    let target = context(&emulator, TARGET, SOURCE_REGION).await.sns();
    let (url, mut inbox) = receiver().await;

    let denied = target.subscribe().topic_arn(&topic_arn).protocol("http").endpoint(&url).send().await;
    assert_eq!(code(denied), "AuthorizationError");

    source
        .add_permission()
        .topic_arn(&topic_arn)
        .label("dr-target")
        .aws_account_id(TARGET)
        .action_name("Subscribe")
        .action_name("ListSubscriptionsByTopic")
        .send()
        .await
        .expect("add permission");
    let subscription = target
        .subscribe()
        .topic_arn(&topic_arn)
        .protocol("http")
        .endpoint(&url)
        .send()
        .await
        .expect("subscribe with the target's own credentials");
    let subscription_arn = subscription.subscription_arn().expect("arn").to_owned();
    let by_topic = source.list_subscriptions_by_topic().topic_arn(&topic_arn).send().await.expect("list");
    assert_eq!(by_topic.subscriptions()[0].owner(), Some(TARGET));

    let message = r#"{"version":1,"snapshotArn":"arn:aws:rds:us-west-1:111111111111:cluster-snapshot:s"}"#;
    let attribute =
        MessageAttributeValue::builder().data_type("String").string_value("1").build().expect("attribute");
    source
        .publish()
        .topic_arn(&topic_arn)
        .message(message)
        .message_attributes("version", attribute)
        .send()
        .await
        .expect("publish");
    let (headers, body) =
        tokio::time::timeout(Duration::from_secs(10), inbox.recv()).await.expect("delivered").expect("open");
    let notification: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(notification["Type"], "Notification");
    assert_eq!(notification["TopicArn"], topic_arn.as_str());
    assert_eq!(notification["Message"], message);
    assert_eq!(
        notification["MessageAttributes"]["version"],
        serde_json::json!({"Type": "String", "Value": "1"})
    );
    assert_eq!(headers["x-amz-sns-message-type"], "Notification");
    assert_eq!(headers["x-amz-sns-topic-arn"], topic_arn.as_str());
    assert_eq!(headers["x-amz-sns-subscription-arn"], subscription_arn.as_str());
    assert!(inbox.try_recv().is_err(), "delivered exactly once");
}

#[tokio::test]
async fn add_permission_works_on_a_policy_without_sids() {
    let emulator = emulator().await;
    let (source, topic_arn) = topic(&emulator).await;
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{SOURCE}:root")},
                       "Action": "SNS:Publish", "Resource": topic_arn}]
    });
    source
        .set_topic_attributes()
        .topic_arn(&topic_arn)
        .attribute_name("Policy")
        .attribute_value(policy.to_string())
        .send()
        .await
        .expect("set policy");
    source
        .add_permission()
        .topic_arn(&topic_arn)
        .label("dr-target")
        .aws_account_id(TARGET)
        .action_name("Subscribe")
        .send()
        .await
        .expect("add permission");
    let attributes = source.get_topic_attributes().topic_arn(&topic_arn).send().await.expect("attributes");
    let policy = attributes.attributes().and_then(|a| a.get("Policy")).expect("policy");
    assert!(policy.contains("dr-target") && policy.contains(TARGET), "{policy}");
    source
        .remove_permission()
        .topic_arn(&topic_arn)
        .label("dr-target")
        .send()
        .await
        .expect("remove permission");
}

#[tokio::test]
async fn publish_succeeds_when_the_endpoint_is_down() {
    let emulator = emulator().await;
    let (source, topic_arn) = topic(&emulator).await;
    // A port that was just free: nothing listens there.
    let port =
        tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind").local_addr().expect("addr").port();
    source
        .subscribe()
        .topic_arn(&topic_arn)
        .protocol("http")
        .endpoint(format!("http://127.0.0.1:{port}/gone"))
        .send()
        .await
        .expect("subscribe");
    source.publish().topic_arn(&topic_arn).message("{}").send().await.expect("publish does not fail");
    source.publish().topic_arn(&topic_arn).message("{}").send().await.expect("nor does the next one");
    // The failed delivery attempts are in the call log.
    let mut failed = Vec::new();
    for _ in 0..100 {
        let calls = emulator.control().calls().await.expect("calls");
        failed = calls.into_iter().filter(|c| c.operation == "Deliver").collect();
        if !failed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let attempt = failed.first().expect("a delivery attempt is logged");
    assert!(attempt.failed() && attempt.status.is_none(), "{attempt:?}");
    assert_eq!(attempt.params.get("TopicArn"), Some(&topic_arn));
}

/// A same-account http subscription of the topic, delivering to `url`.
async fn subscribed(emulator: &aurora_dr_emulator::Emulator, url: &str) -> (aws_sdk_sns::Client, String) {
    let (sns, topic_arn) = topic(emulator).await;
    sns.subscribe().topic_arn(&topic_arn).protocol("http").endpoint(url).send().await.expect("subscribe");
    (sns, topic_arn)
}

async fn next_message(inbox: &mut mpsc::UnboundedReceiver<(HeaderMap, String)>) -> (String, String) {
    let (_, body) =
        tokio::time::timeout(Duration::from_secs(10), inbox.recv()).await.expect("delivered").expect("open");
    let notification: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
    (
        notification["MessageId"].as_str().expect("id").to_owned(),
        notification["Message"].as_str().expect("message").to_owned(),
    )
}

/// Fault rule `sns_delivery` duplicate: one Publish, two deliveries of the
/// same message (standard topics deliver at least once).
#[tokio::test]
async fn a_notification_can_be_delivered_twice() {
    let emulator = emulator().await;
    let (url, mut inbox) = receiver().await;
    let (sns, topic_arn) = subscribed(&emulator, &url).await;
    let id = emulator
        .control()
        .arm(aurora_dr_emulator::FaultRule::duplicate_delivery().times(1))
        .await
        .expect("arm");
    sns.publish().topic_arn(&topic_arn).message("once").send().await.expect("publish");
    let first = next_message(&mut inbox).await;
    let second = next_message(&mut inbox).await;
    assert_eq!(first, second, "the same message twice");
    sns.publish().topic_arn(&topic_arn).message("next").send().await.expect("publish");
    assert_eq!(next_message(&mut inbox).await.1, "next", "only one notification was hit");
    let calls = emulator.control().calls().await.expect("calls");
    let faulted = calls.iter().filter(|c| c.operation == "Deliver" && c.fault == Some(id)).count();
    assert_eq!(faulted, 2, "both deliveries are marked with the rule");
}

/// Fault rule `sns_delivery` reorder: the first notification arrives after
/// the second (standard topics do not keep order).
#[tokio::test]
async fn notifications_can_arrive_out_of_order() {
    let emulator = emulator().await;
    let (url, mut inbox) = receiver().await;
    let (sns, topic_arn) = subscribed(&emulator, &url).await;
    let rule = aurora_dr_emulator::FaultRule::reordered_delivery().times(1).hold_seconds(30.0);
    emulator.control().arm(rule).await.expect("arm");
    sns.publish().topic_arn(&topic_arn).message("first").send().await.expect("publish");
    sns.publish().topic_arn(&topic_arn).message("second").send().await.expect("publish");
    assert_eq!(next_message(&mut inbox).await.1, "second");
    assert_eq!(next_message(&mut inbox).await.1, "first");
}
