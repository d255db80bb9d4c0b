//! moto's Step Functions stays importable and can execute state machines
//! (the ASL engine's differential tests use it).

mod common;

use std::time::Duration;

use common::*;

#[tokio::test]
async fn moto_executes_a_state_machine_when_asked() {
    let emulator = emulator().await;
    let config = serde_json::json!({"stepfunctions": {"execute_state_machine": true}});
    emulator.control().moto_config(&config).await.expect("moto config");
    let sfn = context(&emulator, TARGET, TARGET_REGION).await.sfn();
    let definition = serde_json::json!({
        "StartAt": "Shape",
        "States": {"Shape": {"Type": "Pass", "Parameters": {"snapshot.$": "$.snapshotArn"}, "End": true}}
    });
    let machine = sfn
        .create_state_machine()
        .name("target")
        .definition(definition.to_string())
        .role_arn(format!("arn:aws:iam::{TARGET}:role/aurora-dr"))
        .send()
        .await
        .expect("create state machine");
    let execution = sfn
        .start_execution()
        .state_machine_arn(machine.state_machine_arn())
        .input(r#"{"snapshotArn": "arn:aws:rds:us-west-1:111111111111:cluster-snapshot:s"}"#)
        .send()
        .await
        .expect("start");
    let mut status = String::new();
    for _ in 0..100 {
        let described =
            sfn.describe_execution().execution_arn(execution.execution_arn()).send().await.expect("describe");
        status = described.status().as_str().to_owned();
        if status != "RUNNING" {
            let output: serde_json::Value =
                serde_json::from_str(described.output().unwrap_or("null")).expect("JSON output");
            assert_eq!(
                output,
                serde_json::json!({"snapshot": "arn:aws:rds:us-west-1:111111111111:cluster-snapshot:s"})
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "SUCCEEDED");
}
