//! IAM mode's control routes (emulator/iam.py). Judging calls needs the
//! evaluator (node_modules); `make rehearse` covers that end to end.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn iam_mode_is_off_until_configured_and_refuses_a_bad_configuration() {
    let emulator = emulator().await;
    let control = emulator.control();
    let state = control.iam().await.expect("iam state");
    assert_eq!(state["mode"], "off", "{state}");
    assert_eq!(state["decisions"], json!([]));

    let no_evaluator = control.set_iam(&json!({"mode": "enforce", "principals": {}})).await;
    let message = no_evaluator.expect_err("an evaluator is required").to_string();
    assert!(message.contains("evaluator"), "{message}");

    let bad_mode = control.set_iam(&json!({"mode": "sometimes", "evaluator": ["true"]})).await;
    assert!(bad_mode.expect_err("unknown mode").to_string().contains("mode"));

    let missing = control.set_iam(&json!({"mode": "audit", "evaluator": ["/no/such/evaluator"]})).await;
    assert!(missing.expect_err("evaluator that cannot start").to_string().contains("cannot start"));

    let check =
        control.iam_check(&json!({"principal": "x", "action": "s3:GetObject", "resource": "*"})).await;
    assert!(check.expect_err("IAM mode is off").to_string().contains("off"));

    control.iam_off().await.expect("off");
    assert_eq!(control.iam().await.expect("state")["mode"], "off");
}

/// A call the local Step Functions engine received is judged as if it had
/// come to the emulator: the caller's role from its access key, the
/// operation table's action, the denial in the service's error shape
/// ("Common Errors", https://docs.aws.amazon.com/step-functions/latest/apireference/CommonErrors.html).
#[tokio::test]
async fn a_call_another_local_server_received_is_judged_with_the_callers_role() {
    let emulator = emulator().await;
    let control = emulator.control();
    let role = format!("arn:aws:iam::{TARGET}:role/starter");
    let bad = control
        .set_iam(&json!({"mode": "enforce", "evaluator": ["python3", "-c", FAKE_EVALUATOR, "states:StartExecution"],
                         "principals": {}, "invokers": {"arn:aws:lambda:x": "ftp://nowhere"}}))
        .await;
    assert!(bad.expect_err("invokers must be http URLs").to_string().contains("invokers"));
    control
        .set_iam(&json!({"mode": "enforce", "evaluator": ["python3", "-c", FAKE_EVALUATOR, "states:StartExecution"],
                         "principals": {role.clone(): "Starter"}}))
        .await
        .expect("IAM mode");
    let sts = context(&emulator, TARGET, TARGET_REGION).await.sts();
    let key_of = |role: String| {
        let sts = sts.clone();
        async move {
            let out = sts.assume_role().role_arn(role).role_session_name("s").send().await.expect("assume");
            out.credentials().expect("credentials").access_key_id().to_owned()
        }
    };
    let authorization = |key: &str| {
        format!(
            "AWS4-HMAC-SHA256 Credential={key}/20261203/{TARGET_REGION}/states/aws4_request, SignedHeaders=host"
        )
    };
    let machine = format!("arn:aws:states:{TARGET_REGION}:{TARGET}:stateMachine:target");
    let call = |key: &str, operation: &str| {
        json!({"authorization": authorization(key), "service": "states", "operation": operation,
               "params": {"stateMachineArn": machine}, "region": TARGET_REGION})
    };
    let starter = key_of(role.clone()).await;
    let denied = control.iam_judge(&call(&starter, "StartExecution")).await.expect("judged");
    assert_eq!(denied["allowed"], false, "{denied}");
    assert_eq!(denied["code"], "AccessDeniedException");
    assert_eq!(denied["status"], 400);
    assert!(denied["message"].as_str().is_some_and(|m| m.contains("states:StartExecution")), "{denied}");
    let listed = control.iam_judge(&call(&starter, "ListExecutions")).await.expect("judged");
    assert_eq!(listed["allowed"], true, "{listed}");
    // A role IAM mode was not told to judge passes unjudged.
    let other = key_of(format!("arn:aws:iam::{TARGET}:role/someone-else")).await;
    assert_eq!(control.iam_judge(&call(&other, "StartExecution")).await.expect("judged")["allowed"], true);
    let decisions = control.iam().await.expect("state")["decisions"].clone();
    let seen: Vec<(&str, &str)> = decisions
        .as_array()
        .expect("decisions")
        .iter()
        .map(|d| (d["function"].as_str().unwrap_or(""), d["action"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(seen, [("Starter", "states:StartExecution"), ("Starter", "states:ListExecutions")]);
    control.iam_off().await.expect("off");
}

/// Publishing to a topic encrypted with a KMS key needs kms:GenerateDataKey*
/// and kms:Decrypt on the key, asked for by SNS with the publisher's
/// credentials ("Key management", Amazon SNS Developer Guide,
/// https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html); a
/// publisher without them gets KMSAccessDenied (Publish, "Errors",
/// https://docs.aws.amazon.com/sns/latest/api/API_Publish.html). Stock moto
/// publishes either way.
#[tokio::test]
async fn publishing_to_an_encrypted_topic_needs_its_key() {
    let emulator = emulator().await;
    let control = emulator.control();
    let setup = context(&emulator, TARGET, TARGET_REGION).await;
    let key = setup.kms().create_key().send().await.expect("key");
    let key_id = key.key_metadata().expect("metadata").key_id().to_owned();
    let sns = setup.sns();
    let encrypted = sns
        .create_topic()
        .name("encrypted")
        .attributes("KmsMasterKeyId", key_id.clone())
        .send()
        .await
        .expect("topic")
        .topic_arn()
        .expect("arn")
        .to_owned();
    let plain =
        sns.create_topic().name("plain").send().await.expect("topic").topic_arn().expect("arn").to_owned();

    let role = format!("arn:aws:iam::{TARGET}:role/publisher");
    control
        .set_iam(
            &json!({"mode": "enforce", "evaluator": ["python3", "-c", FAKE_EVALUATOR, "kms:GenerateDataKey"],
                         "principals": {role.clone(): "Publisher"}}),
        )
        .await
        .expect("IAM mode");
    let options = aurora_dr_core::clients::ClientOptions::in_region(TARGET_REGION.parse().expect("region"))
        .with_endpoint(Some(emulator.url().to_owned()))
        .with_static_credentials("test", "test")
        .as_role(&role);
    let publisher = aurora_dr_core::clients::AwsContext::load(&options).await.sns();

    publisher.publish().topic_arn(&plain).message("m").send().await.expect("a plain topic needs no key");
    let refused = publisher.publish().topic_arn(&encrypted).message("m").send().await;
    assert_eq!(code(refused), "KMSAccessDenied");

    let decisions = control.iam().await.expect("state")["decisions"].clone();
    let key_arn = format!("arn:aws:kms:{TARGET_REGION}:{TARGET}:key/{key_id}");
    let kms: Vec<_> = decisions
        .as_array()
        .expect("decisions")
        .iter()
        .filter(|d| d["action"].as_str().is_some_and(|a| a.starts_with("kms:")))
        .collect();
    assert!(!kms.is_empty(), "{decisions}");
    for d in &kms {
        assert_eq!(d["resource"], key_arn.as_str(), "{d}");
        assert_eq!(d["function"], "Publisher", "{d}");
        assert_eq!(d["context"]["kms:ViaService"], format!("sns.{TARGET_REGION}.amazonaws.com"), "{d}");
    }
    control.iam_off().await.expect("off");
}
