//! The Step Functions quotas the engine enforces (see `src/limits.rs` for the
//! pages they follow), each checked at its boundary: the last value AWS
//! accepts passes, the first one past it fails the way AWS fails it.

mod common;

use aurora_dr_asl::limits::{HISTORY_EVENTS, INLINE_MAP_CONCURRENCY, PAYLOAD_BYTES};
use aurora_dr_asl::{
    Clock, Definition, Engine, EventType, StartOptions, StateMachineSpec, Status, TaskError, TaskRegistry,
};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn engine_with(def: Value, tasks: TaskRegistry) -> Engine {
    let engine = Engine::new(Clock::real());
    let d = Definition::from_value(def).expect("valid definition");
    engine.register(StateMachineSpec::new("m", d).tasks(tasks)).unwrap();
    engine
}

/// A loop of `rounds` Pass+Choice rounds ending in a Succeed state: 4 events
/// a round, plus ExecutionStarted, the Succeed state's two events and
/// ExecutionSucceeded, so the history has `4 * rounds + 4` events.
fn counting_loop(rounds: u64) -> Value {
    json!({"StartAt": "Count", "States": {
        "Count": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}, "Next": "Check"},
        "Check": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericEquals": rounds, "Next": "Done"}],
                  "Default": "Count"},
        "Done": {"Type": "Succeed"}}})
}

// "Avoid reaching the history quota" (Step Functions developer guide): when
// an execution reaches 24,999 events, event 25,000 must be ExecutionSucceeded
// for it to succeed.
#[tokio::test]
async fn an_execution_whose_last_event_is_number_25000_succeeds() {
    let rounds = (HISTORY_EVENTS as u64 - 4) / 4;
    assert_eq!(4 * rounds + 4, HISTORY_EVENTS as u64);
    let engine = engine_with(counting_loop(rounds), TaskRegistry::new());
    let exec = engine.start("m", json!({"n": 0}), StartOptions::default()).unwrap();
    let out = exec.wait().await;
    assert_eq!(out.status, Status::Succeeded, "{out:?}");
    let history = exec.history();
    assert_eq!(history.len(), HISTORY_EVENTS);
    assert_eq!(history.last().unwrap().event_type, EventType::ExecutionSucceeded);
}

// Same page: otherwise ExecutionFailed is event 25,000 and the execution
// fails. The guide names no error; AWS reports States.Runtime with this cause.
#[tokio::test]
async fn one_more_event_fails_the_execution_at_event_25000() {
    let rounds = (HISTORY_EVENTS as u64 - 4) / 4 + 1;
    let engine = engine_with(counting_loop(rounds), TaskRegistry::new());
    let exec = engine.start("m", json!({"n": 0}), StartOptions::default()).unwrap();
    let out = exec.wait().await;
    common::assert_stopped_by_the_history_quota(&exec, &out);
}

// A loop that keeps retrying a task is stopped by the quota too, and no task
// is called once the history is full.
#[tokio::test(start_paused = true)]
async fn a_retry_loop_stops_at_the_history_quota() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let tasks = TaskRegistry::new().with("poll", move |_| {
        c.fetch_add(1, Ordering::SeqCst);
        async { Err(TaskError::new("NotReady", "still creating")) }
    });
    let def = json!({"StartAt": "Poll", "States": {"Poll": {"Type": "Task",
        "Resource": "arn:aws:lambda:us-east-1:123456789012:function:poll",
        "Retry": [{"ErrorEquals": ["NotReady"], "IntervalSeconds": 1, "MaxAttempts": 99999999, "BackoffRate": 1.0}],
        "End": true}}});
    let engine = engine_with(def, tasks);
    let exec = engine.start("m", json!({}), StartOptions::default()).unwrap();
    let out = exec.wait().await;
    assert_eq!(out.error.as_deref(), Some("States.Runtime"));
    assert_eq!(exec.history().len(), HISTORY_EVENTS);
    // ExecutionStarted + TaskStateEntered, then 3 events an attempt: the
    // attempt whose events no longer fit is the last one called.
    let attempts = (HISTORY_EVENTS - 1 - 2).div_ceil(3);
    assert_eq!(calls.load(Ordering::SeqCst), attempts);
}

fn returning(value: Value) -> TaskRegistry {
    TaskRegistry::new().with("f", move |_| {
        let v = value.clone();
        async move { Ok(v) }
    })
}

fn task_machine(extra: Value) -> Value {
    let mut task =
        json!({"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:f", "End": true});
    if let (Value::Object(t), Value::Object(e)) = (&mut task, extra) {
        t.extend(e);
    }
    json!({"StartAt": "T", "States": {"T": task}})
}

/// A JSON string whose text is exactly `bytes` long.
fn text_of(bytes: usize) -> Value {
    json!("x".repeat(bytes - 2))
}

// "Step Functions service quotas": 262,144 bytes of UTF-8 for a task result;
// "Error handling in Step Functions": a larger result is
// States.DataLimitExceeded, which States.ALL neither retries nor catches.
#[tokio::test]
async fn a_task_result_over_256_kib_fails_the_execution_uncaught() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let big = text_of(PAYLOAD_BYTES + 1);
    let tasks = TaskRegistry::new().with("f", move |_| {
        c.fetch_add(1, Ordering::SeqCst);
        let v = big.clone();
        async move { Ok(v) }
    });
    let def = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:f",
              "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 3}],
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}], "End": true},
        "Caught": {"Type": "Succeed"}}});
    let engine = engine_with(def, tasks);
    let exec = engine.start("m", json!({}), StartOptions::default()).unwrap();
    let out = exec.wait().await;
    assert_eq!(out.status, Status::Failed);
    assert_eq!(out.error.as_deref(), Some("States.DataLimitExceeded"));
    assert_eq!(
        out.cause.as_deref(),
        Some(
            "The state/task 'arn:aws:lambda:us-east-1:123456789012:function:f' returned a result with a size exceeding the maximum number of bytes service limit."
        )
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1, "never retried");
    let failed =
        exec.history().into_iter().find(|e| e.event_type == EventType::LambdaFunctionFailed).unwrap();
    assert_eq!(failed.details.error.as_deref(), Some("States.DataLimitExceeded"));
}

#[tokio::test]
async fn a_task_result_of_exactly_256_kib_is_accepted() {
    let engine = engine_with(task_machine(json!({})), returning(text_of(PAYLOAD_BYTES)));
    let out = engine.start("m", json!({}), StartOptions::default()).unwrap().wait().await;
    assert_eq!(out.status, Status::Succeeded, "{:?}", out.error);
}

// The same quota on a state's output ("the output of a state is larger than
// the payload size quota").
#[tokio::test]
async fn a_state_output_over_256_kib_is_data_limit_exceeded() {
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": text_of(PAYLOAD_BYTES + 1), "End": true}}});
    let engine = engine_with(def, TaskRegistry::new());
    let out = engine.start("m", json!({}), StartOptions::default()).unwrap().wait().await;
    assert_eq!(out.error.as_deref(), Some("States.DataLimitExceeded"));
    assert!(out.cause.unwrap().contains("The output of state 'P' is 262145 bytes"));
}

// And on a state's input after Parameters ("when, after Parameters
// processing, the input of a state is larger than the payload size quota").
#[tokio::test]
async fn a_task_input_over_256_kib_after_parameters_is_data_limit_exceeded() {
    let half = "y".repeat(PAYLOAD_BYTES / 2);
    let engine =
        engine_with(task_machine(json!({"Parameters": {"a.$": "$.s", "b.$": "$.s"}})), returning(json!(1)));
    let out = engine.start("m", json!({ "s": half }), StartOptions::default()).unwrap().wait().await;
    assert_eq!(out.error.as_deref(), Some("States.DataLimitExceeded"));
    assert!(out.cause.unwrap().contains("The input of state 'T' after Parameters"));
}

// StartExecution API reference: `input` has a maximum length of 262,144; a
// longer one is refused before any execution exists.
#[tokio::test]
async fn start_execution_refuses_input_over_256_kib() {
    let engine = engine_with(task_machine(json!({})), returning(json!(1)));
    let err = engine.start("m", text_of(PAYLOAD_BYTES + 1), StartOptions::named("big")).unwrap_err();
    assert_eq!(err.code(), "ValidationException");
    assert!(err.to_string().contains("Member must have length less than or equal to 262144"), "{err}");
    assert!(engine.executions(None).is_empty());
    assert!(engine.start("m", text_of(PAYLOAD_BYTES), StartOptions::named("at-limit")).is_ok());
}

// "Step Functions service quotas" (General quotas) and the StartExecution
// API reference: names are 1-80 characters (a length outside is a
// ValidationException of the API) without whitespace, brackets, wildcards,
// the listed special characters or control characters (InvalidName).
#[tokio::test]
async fn execution_names_follow_start_execution() {
    let engine = engine_with(task_machine(json!({})), returning(json!(1)));
    let code = |name: &str| match engine.start("m", json!({}), StartOptions::named(name)) {
        Ok(e) => {
            e.stop(None, None);
            "ok".to_string()
        }
        Err(e) => e.code().to_string(),
    };
    assert_eq!(code(&"n".repeat(80)), "ok");
    assert_eq!(code("région-été_1.v2"), "ok", "non-ASCII letters are allowed");
    assert_eq!(code(&"n".repeat(81)), "ValidationException");
    assert_eq!(code(""), "ValidationException");
    for c in [' ', '\t', '\u{a0}'] {
        assert_eq!(code(&format!("a{c}b")), "InvalidName", "whitespace {c:?}");
    }
    for c in "<>{}[]?*\"#%\\^|~`$&,;:/".chars() {
        assert_eq!(code(&format!("a{c}b")), "InvalidName", "{c:?}");
    }
    for c in ['\u{0}', '\u{1f}', '\u{7f}', '\u{9f}'] {
        assert_eq!(code(&format!("a{c}b")), "InvalidName", "control {c:?}");
    }
}

/// The largest number of handler calls in flight at once while a Map of
/// `items` items with this `MaxConcurrency` runs.
async fn peak_concurrency(items: usize, max_concurrency: u64) -> usize {
    let gauge = Arc::new(Mutex::new((0usize, 0usize)));
    let g = gauge.clone();
    let tasks = TaskRegistry::new().with("work", move |v| {
        let g = g.clone();
        async move {
            {
                let mut s = g.lock().unwrap();
                s.0 += 1;
                s.1 = s.1.max(s.0);
            }
            tokio::time::sleep(Duration::from_secs(10)).await;
            g.lock().unwrap().0 -= 1;
            Ok(v)
        }
    });
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "MaxConcurrency": max_concurrency, "End": true,
        "ItemProcessor": {"StartAt": "W", "States": {"W": {"Type": "Task",
            "Resource": "arn:aws:lambda:us-east-1:123456789012:function:work", "End": true}}}}}});
    let engine = engine_with(def, tasks);
    let input: Vec<usize> = (0..items).collect();
    let out = engine.start("m", json!(input), StartOptions::default()).unwrap().wait().await;
    assert_eq!(out.status, Status::Succeeded);
    gauge.lock().unwrap().1
}

// "Using Map state in Inline mode": the Inline Map runs up to 40 iterations
// at a time; MaxConcurrency lowers that, never raises it.
#[tokio::test(start_paused = true)]
async fn an_inline_map_runs_at_most_40_iterations_at_once() {
    assert_eq!(peak_concurrency(100, 0).await, INLINE_MAP_CONCURRENCY);
    assert_eq!(peak_concurrency(100, 1000).await, INLINE_MAP_CONCURRENCY);
    assert_eq!(peak_concurrency(100, 7).await, 7);
    assert_eq!(peak_concurrency(3, 0).await, 3);
}
