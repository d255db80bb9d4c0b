//! Task states with `.waitForTaskToken` ("Wait for a Callback with Task
//! Token", AWS Step Functions Developer Guide) and SendTaskSuccess /
//! SendTaskFailure / SendTaskHeartbeat (Step Functions API Reference).

use aurora_dr_asl::{
    Clock, Definition, Engine, EventType, MockConfig, StartOptions, StateMachineSpec, Status, TaskRegistry,
};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const SNS: &str = "arn:aws:states:::sns:publish";

/// A machine whose task `Approve` waits for a callback; `extra` adds fields.
fn machine(resource: &str, parameters: Value, extra: Value) -> Definition {
    let mut task = json!({"Type": "Task", "Resource": resource, "Parameters": parameters, "End": true});
    if let (Value::Object(t), Value::Object(e)) = (&mut task, extra) {
        t.extend(e);
    }
    Definition::from_value(json!({"StartAt": "Approve", "States": {"Approve": task}})).unwrap()
}

/// Handlers that hand every token they receive to the test.
fn token_handlers() -> (TaskRegistry, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let tx2 = tx.clone();
    let tasks = TaskRegistry::new()
        .with("approver", move |payload: Value| {
            let _ = tx.send(payload["token"].as_str().unwrap_or("").to_string());
            async { Ok(json!({"queued": true})) }
        })
        .with_resource(SNS, move |params: Value| {
            let _ = tx2.send(params["Message"]["token"].as_str().unwrap_or("").to_string());
            async { Ok(json!({"MessageId": "m-1"})) }
        });
    (tasks, rx)
}

fn engine(def: Definition, tasks: TaskRegistry) -> Engine {
    let engine = Engine::new(Clock::real());
    engine.register(StateMachineSpec::new("m", def).tasks(tasks)).unwrap();
    engine
}

#[tokio::test(start_paused = true)]
async fn lambda_invoke_wait_for_task_token_resumes_with_send_task_success() {
    let (tasks, mut tokens) = token_handlers();
    let def = machine(
        "arn:aws:states:::lambda:invoke.waitForTaskToken",
        json!({"FunctionName": "approver", "Payload": {"token.$": "$$.Task.Token", "run.$": "$.run"}}),
        json!({}),
    );
    let engine = engine(def, tasks);
    let exec = engine.start("m", json!({"run": 7}), StartOptions::default()).unwrap();
    let token = tokens.recv().await.unwrap();
    assert!(!token.is_empty());
    engine.send_task_success(&token, json!({"approved": true})).unwrap();
    let out = exec.wait().await;
    assert_eq!(out.output, Some(json!({"approved": true})), "the callback's output is the task result");
    let types: Vec<_> = exec.history().iter().map(|e| e.event_type).collect();
    use EventType::*;
    assert_eq!(
        types,
        vec![
            ExecutionStarted,
            TaskStateEntered,
            TaskScheduled,
            TaskStarted,
            TaskSubmitted,
            TaskSucceeded,
            TaskStateExited,
            ExecutionSucceeded
        ]
    );
    let submitted = exec.history().into_iter().find(|e| e.event_type == TaskSubmitted).unwrap();
    assert_eq!(submitted.details.output.unwrap()["Payload"], json!({"queued": true}));
    // The token is spent: AWS answers TaskTimedOut for a task that has ended.
    assert_eq!(engine.send_task_success(&token, json!(1)).unwrap_err().code(), "TaskTimedOut");
    assert_eq!(engine.send_task_heartbeat("AAAAnope").unwrap_err().code(), "TaskDoesNotExist");
    assert_eq!(engine.send_task_failure("", None, None).unwrap_err().code(), "InvalidToken");
}

#[tokio::test(start_paused = true)]
async fn sns_publish_wait_for_task_token_fails_with_send_task_failure() {
    let (tasks, mut tokens) = token_handlers();
    let def = Definition::from_value(json!({"StartAt": "Ask", "States": {
        "Ask": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish.waitForTaskToken",
                "Parameters": {"TopicArn": "arn:aws:sns:us-east-1:123456789012:approvals",
                               "Message": {"token.$": "$$.Task.Token"}},
                "Catch": [{"ErrorEquals": ["Rejected"], "ResultPath": "$.rejection", "Next": "Rejected"}], "End": true},
        "Rejected": {"Type": "Pass", "End": true}}}))
    .unwrap();
    let engine = engine(def, tasks);
    let exec = engine.start("m", json!({}), StartOptions::default()).unwrap();
    let token = tokens.recv().await.unwrap();
    engine.send_task_failure(&token, Some("Rejected".into()), Some("not today".into())).unwrap();
    let out = exec.wait().await;
    assert_eq!(out.output, Some(json!({"rejection": {"Error": "Rejected", "Cause": "not today"}})));
}

// HeartbeatSeconds: each SendTaskHeartbeat restarts the countdown; silence
// past it is States.HeartbeatTimeout, which a Retry on States.Timeout covers
// ("Error handling in Step Functions"), and each retry gets a new token.
#[tokio::test(start_paused = true)]
async fn heartbeats_keep_a_task_alive_and_silence_times_it_out() {
    let (tasks, mut tokens) = token_handlers();
    let def = machine(
        "arn:aws:states:::lambda:invoke.waitForTaskToken",
        json!({"FunctionName": "approver", "Payload": {"token.$": "$$.Task.Token"}}),
        json!({"HeartbeatSeconds": 60, "Retry": [{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 1, "MaxAttempts": 1}]}),
    );
    let engine = engine(def, tasks);
    let t0 = tokio::time::Instant::now();
    let exec = engine.start("m", json!({}), StartOptions::default()).unwrap();
    let first = tokens.recv().await.unwrap();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(50)).await;
        engine.send_task_heartbeat(&first).unwrap();
    }
    // Silence: the first attempt times out 60 s after the last heartbeat.
    let second = tokens.recv().await.unwrap();
    assert_ne!(first, second, "a retry is a new attempt with a new token");
    assert_eq!(t0.elapsed(), Duration::from_secs(150 + 60 + 1));
    assert_eq!(engine.send_task_success(&first, json!(1)).unwrap_err().code(), "TaskTimedOut");
    let out = exec.wait().await;
    assert_eq!(out.status, Status::Failed);
    assert_eq!(out.error.as_deref(), Some("States.HeartbeatTimeout"));
    let timed_out = exec.history().iter().filter(|e| e.event_type == EventType::TaskTimedOut).count();
    assert_eq!(timed_out, 2);
}

#[tokio::test(start_paused = true)]
async fn timeout_seconds_bounds_the_whole_wait() {
    let (tasks, mut tokens) = token_handlers();
    let def = machine(
        "arn:aws:states:::lambda:invoke.waitForTaskToken",
        json!({"FunctionName": "approver", "Payload": {"token.$": "$$.Task.Token"}}),
        json!({"HeartbeatSeconds": 60, "TimeoutSeconds": 100}),
    );
    let engine = engine(def, tasks);
    let t0 = tokio::time::Instant::now();
    let exec = engine.start("m", json!({}), StartOptions::default()).unwrap();
    let token = tokens.recv().await.unwrap();
    tokio::time::sleep(Duration::from_secs(50)).await;
    engine.send_task_heartbeat(&token).unwrap();
    let out = exec.wait().await;
    assert_eq!(out.error.as_deref(), Some("States.Timeout"));
    assert_eq!(t0.elapsed(), Duration::from_secs(100));
}

#[tokio::test(start_paused = true)]
async fn a_mocked_callback_task_answers_at_once() {
    let def = machine(
        "arn:aws:states:::lambda:invoke.waitForTaskToken",
        json!({"FunctionName": "approver", "Payload": {"token.$": "$$.Task.Token"}}),
        json!({}),
    );
    let mocks = MockConfig::parse(
        r#"{"StateMachines": {"m": {"TestCases": {"Approved": {"Approve": "Yes"}}}},
            "MockedResponses": {"Yes": {"0": {"Return": {"approved": true}}}}}"#,
    )
    .unwrap();
    let engine = Engine::new(Clock::real());
    engine.register(StateMachineSpec::new("m", def).mocks(Arc::new(mocks))).unwrap();
    let out =
        engine.start("m", json!({}), StartOptions::named("a").test_case("Approved")).unwrap().wait().await;
    assert_eq!(out.output, Some(json!({"approved": true})));
}

// Under a scaled clock whose task timeouts stay real (the drill's: handlers
// do real work), the wait for the callback is emulated time and scales;
// the invocation before it is not cut short by the scaled figure.
#[tokio::test(start_paused = true)]
async fn a_scaled_clock_scales_the_wait_for_the_callback_even_with_real_task_timeouts() {
    let (tx, mut tokens) = mpsc::unbounded_channel();
    let tasks = TaskRegistry::new().with("approver", move |payload: Value| {
        let _ = tx.send(payload["token"].as_str().unwrap_or("").to_string());
        async {
            tokio::time::sleep(Duration::from_secs(2)).await; // a real call, longer than 300 s x 0.001
            Ok(json!({"queued": true}))
        }
    });
    let def = machine(
        "arn:aws:states:::lambda:invoke.waitForTaskToken",
        json!({"FunctionName": "approver", "Payload": {"token.$": "$$.Task.Token"}}),
        json!({"TimeoutSeconds": 300}),
    );
    let engine = Engine::new(Clock::scaled(0.001).unwrap().with_real_timeouts());
    engine.register(StateMachineSpec::new("m", def).tasks(tasks)).unwrap();
    let t0 = tokio::time::Instant::now();
    let exec = engine.start("m", json!({}), StartOptions::default()).unwrap();
    let _ = tokens.recv().await.unwrap();
    let out = exec.wait().await;
    assert_eq!(out.error.as_deref(), Some("States.Timeout"));
    assert_eq!(t0.elapsed(), Duration::from_secs(2) + Duration::from_millis(300));
}
