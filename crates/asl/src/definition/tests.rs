//! Loader tests: every kind of problem is reported with its state and field.

use super::*;
use crate::error::Diagnostic;
use serde_json::json;

fn diags(v: Value) -> Vec<Diagnostic> {
    match Definition::from_value(v) {
        Ok(_) => vec![],
        Err(e) => e.diagnostics().to_vec(),
    }
}

fn has(d: &[Diagnostic], state: Option<&str>, field: &str, msg: &str) -> bool {
    d.iter().any(|x| x.state.as_deref() == state && x.field == field && x.message.contains(msg))
}

#[test]
fn minimal_definition_loads() {
    let d = Definition::from_value(json!({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}})).unwrap();
    assert_eq!(d.root.start_at, "A");
    assert_eq!(d.root.get("A").unwrap().type_name(), "Succeed");
}

#[test]
fn graph_problems_are_reported() {
    let d = diags(json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Next": "Nowhere"},
        "B": {"Type": "Pass", "End": true},
        "C": {"Type": "Pass"}
    }}));
    assert!(has(&d, Some("A"), "Next", "'Nowhere' is not a state"), "{d:?}");
    assert!(has(&d, Some("B"), "StartAt", "unreachable"), "{d:?}");
    assert!(has(&d, Some("C"), "Next", "missing"), "{d:?}");
    let d = diags(
        json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"}}}),
    );
    assert!(has(&d, None, "States", "no terminal state"), "{d:?}");
    let d = diags(json!({"StartAt": "X", "States": {"A": {"Type": "Succeed"}}}));
    assert!(has(&d, None, "StartAt", "'X' is not a state"), "{d:?}");
}

#[test]
fn field_problems_are_reported() {
    let d = diags(json!({"StartAt": "A", "States": {"A": {
        "Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:f", "End": true,
        "InputPath": "$.a[", "ResultPath": "$.a[*]", "Bogus": 1,
        "Retry": [{"ErrorEquals": ["States.ALL"], "BackoffRate": 0.5, "IntervalSeconds": 0, "JitterStrategy": "SOME"},
                  {"ErrorEquals": []}],
        "Parameters": {"x.$": "not a path"}
    }}}));
    assert!(has(&d, Some("A"), "InputPath", "invalid path"), "{d:?}");
    assert!(has(&d, Some("A"), "ResultPath", "not a reference path"), "{d:?}");
    assert!(has(&d, Some("A"), "Bogus", "not allowed in a Task"), "{d:?}");
    assert!(has(&d, Some("A"), "Retry[0].BackoffRate", ">= 1.0"), "{d:?}");
    assert!(has(&d, Some("A"), "Retry[0].IntervalSeconds", ">= 1"), "{d:?}");
    assert!(has(&d, Some("A"), "Retry[0].JitterStrategy", "FULL"), "{d:?}");
    assert!(has(&d, Some("A"), "Retry[0].ErrorEquals", "must be the last"), "{d:?}");
    assert!(has(&d, Some("A"), "Retry[1].ErrorEquals", "must not be empty"), "{d:?}");
    assert!(has(&d, Some("A"), "Parameters.x.$", "a path must start"), "{d:?}");
}

#[test]
fn unsupported_features_name_feature_and_state() {
    let d = diags(json!({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Succeed"}}}));
    assert!(has(&d, None, "QueryLanguage", "JSONata"), "{d:?}");
    let d = diags(json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, "StartAt": "I", "States": {"I": {"Type": "Succeed"}}},
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject"},
        "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject"}, "ItemBatcher": {"MaxItemsPerBatch": 2}}}}));
    assert!(has(&d, Some("M"), "ItemReader", "unsupported feature: reading items from Amazon S3"), "{d:?}");
    assert!(has(&d, Some("M"), "ResultWriter", "unsupported feature: writing results to Amazon S3"), "{d:?}");
    assert!(has(&d, Some("M"), "ItemBatcher", "unsupported feature"), "{d:?}");
    assert_eq!(d.len(), 3, "{d:?}");
    let d = diags(json!({"StartAt": "T", "States": {"T": {"Type": "Task", "End": true,
        "Resource": "arn:aws:states:::lambda:invoke.sync"}}}));
    assert!(has(&d, Some("T"), "Resource", ".sync"), "{d:?}");
    let d = diags(json!({"StartAt": "T", "States": {"T": {"Type": "Task", "End": true,
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken", "Parameters": {"FunctionName": "f"}}}}));
    assert!(has(&d, Some("T"), "Parameters", "$$.Task.Token"), "{d:?}");
    let d = diags(json!({"StartAt": "T", "States": {"T": {"Type": "Task", "End": true,
        "Resource": "arn:aws:lambda:us-east-1:1:function:f.waitForTaskToken"}}}));
    assert!(has(&d, Some("T"), "Resource", "service integration"), "{d:?}");
    assert!(
        diags(json!({"StartAt": "T", "States": {"T": {"Type": "Task", "End": true,
        "Resource": "arn:aws:states:::sns:publish.waitForTaskToken", "HeartbeatSeconds": 60,
        "Parameters": {"TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": {"token.$": "$$.Task.Token"}}}}}))
        .is_empty()
    );
    let d =
        diags(json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true, "Assign": {"x": 1}}}}));
    assert!(has(&d, Some("P"), "Assign", "variables"), "{d:?}");
}

/// A Distributed Map as "Using Map state in Distributed mode" describes it.
fn distributed(extra: Value, config: Value) -> Value {
    let mut m = json!({"Type": "Map", "End": true, "ItemsPath": "$.items",
        "ItemProcessor": {"ProcessorConfig": config, "StartAt": "I", "States": {"I": {"Type": "Succeed"}}}});
    if let (Value::Object(m), Value::Object(e)) = (&mut m, extra) {
        m.extend(e);
    }
    json!({"StartAt": "M", "States": {"M": m}})
}

#[test]
fn a_distributed_map_loads_with_its_fields() {
    let def = Definition::from_value(distributed(
        json!({"MaxConcurrency": 5, "ToleratedFailurePercentage": 12.5, "ToleratedFailureCount": 3, "Label": "copies",
               "ItemSelector": {"cluster.$": "$$.Map.Item.Value"}}),
        json!({"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}),
    ))
    .unwrap();
    let StateKind::Map { distributed: Some(d), .. } = &def.root.get("M").unwrap().kind else {
        panic!("not distributed")
    };
    assert_eq!(d.label.as_deref(), Some("copies"));
    assert_eq!(d.tolerated_failure_percentage, Some(NumberOr::Fixed(12.5)));
    assert_eq!(d.tolerated_failure_count, Some(NumberOr::Fixed(3)));
    assert_eq!(d.definition.root.start_at, "I");
    assert!(d.definition.source().get("ProcessorConfig").is_none());
}

#[test]
fn distributed_map_fields_are_checked() {
    let mode = json!({"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"});
    let d = diags(distributed(json!({"ToleratedFailurePercentage": 101}), mode.clone()));
    assert!(has(&d, Some("M"), "ToleratedFailurePercentage", "from 0 to 100"), "{d:?}");
    let d = diags(distributed(json!({"ToleratedFailureCount": -1}), mode.clone()));
    assert!(has(&d, Some("M"), "ToleratedFailureCount", "non-negative integer"), "{d:?}");
    let d = diags(distributed(
        json!({"ToleratedFailureCount": 1, "ToleratedFailureCountPath": "$.n"}),
        mode.clone(),
    ));
    assert!(has(&d, Some("M"), "ToleratedFailureCountPath", "mutually exclusive"), "{d:?}");
    let d = diags(distributed(json!({"Label": "x".repeat(41)}), mode.clone()));
    assert!(has(&d, Some("M"), "Label", "1 to 40 characters"), "{d:?}");
    let d = diags(distributed(json!({"Label": "a b"}), mode));
    assert!(has(&d, Some("M"), "Label", "without whitespace"), "{d:?}");
    let d = diags(distributed(json!({}), json!({"Mode": "DISTRIBUTED"})));
    assert!(has(&d, Some("M"), "ItemProcessor.ProcessorConfig.ExecutionType", "required"), "{d:?}");
    let d = diags(distributed(json!({}), json!({"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"})));
    assert!(has(&d, Some("M"), "ItemProcessor.ProcessorConfig.ExecutionType", "EXPRESS"), "{d:?}");
    let d =
        diags(distributed(json!({}), json!({"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD", "X": 1})));
    assert!(has(&d, Some("M"), "ItemProcessor.ProcessorConfig.X", "not allowed"), "{d:?}");
}

#[test]
fn distributed_only_fields_are_refused_inline() {
    let d = diags(distributed(json!({"ToleratedFailureCount": 1, "Label": "x"}), json!({"Mode": "INLINE"})));
    assert!(has(&d, Some("M"), "ToleratedFailureCount", "only a Distributed Map"), "{d:?}");
    assert!(has(&d, Some("M"), "Label", "only a Distributed Map"), "{d:?}");
    let d = diags(json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true, "Label": "x"}}}));
    assert!(has(&d, Some("P"), "Label", "not allowed in a Pass state"), "{d:?}");
}

#[test]
fn nested_scopes_are_checked_with_their_location() {
    let d = diags(json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true, "Branches": [
        {"StartAt": "X", "States": {"X": {"Type": "Pass", "Next": "Outer"}}}
    ]}}}));
    assert!(has(&d, Some("P/Branches[0]/X"), "Next", "'Outer' is not a state"), "{d:?}");
    let d = diags(json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.a", "NumericEquals": "1", "Next": "D"}], "Default": "Missing"},
        "D": {"Type": "Succeed"}}}));
    assert!(has(&d, Some("C"), "Choices[0].NumericEquals", "must be a number"), "{d:?}");
    assert!(has(&d, Some("C"), "Default", "'Missing'"), "{d:?}");
}

#[test]
fn wait_and_fail_fields() {
    let d = diags(json!({"StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 1, "Timestamp": "2020-01-01T00:00:00Z", "Next": "F"},
        "F": {"Type": "Fail", "Error": "E", "ErrorPath": "$.e"}}}));
    assert!(has(&d, Some("W"), "Seconds", "exactly one"), "{d:?}");
    assert!(has(&d, Some("F"), "ErrorPath", "mutually exclusive"), "{d:?}");
    let d = diags(
        json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Timestamp": "2020-01-01 00:00", "End": true}}}),
    );
    assert!(has(&d, Some("W"), "Timestamp", "RFC 3339"), "{d:?}");
}

#[test]
fn validate_reports_bad_json() {
    let d = validate("{not json");
    assert_eq!(d.len(), 1);
    assert!(d[0].message.contains("not valid JSON"));
}

// CreateStateMachine API reference: a definition of at most 1,048,576 characters.
#[test]
fn definitions_over_one_mebibyte_are_refused() {
    let padded =
        |n: usize| json!({"Comment": "c".repeat(n), "StartAt": "A", "States": {"A": {"Type": "Succeed"}}});
    let base = crate::limits::json_bytes(&padded(0));
    assert!(Definition::from_value(padded(crate::limits::DEFINITION_BYTES - base)).is_ok());
    let d = diags(padded(crate::limits::DEFINITION_BYTES - base + 1));
    assert!(d[0].message.contains("at most 1048576"), "{d:?}");
}
