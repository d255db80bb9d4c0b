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
