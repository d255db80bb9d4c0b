//! Engine behaviour beyond single-definition conformance: live history
//! subscription, stop, idempotent start, scaled clock, substitutions,
//! handler panics, start-time errors.

use aurora_dr_asl::{
    AslError, Clock, Definition, Engine, EngineError, EventType, MockConfig, StartOptions, StateMachineSpec,
    Status, Substitutions, TaskError, TaskRegistry,
};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

fn def(v: Value) -> Definition {
    Definition::from_value(v).expect("valid definition")
}

fn wait_machine(seconds: u64) -> Definition {
    def(json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": seconds, "End": true}}}))
}

#[tokio::test]
async fn subscribers_see_every_event_live_and_the_stream_ends() {
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let release_rx = Arc::new(Mutex::new(Some(release_rx)));
    let tasks = TaskRegistry::new().with("gate", move |input: Value| {
        let rx = release_rx.lock().unwrap().take();
        async move {
            if let Some(rx) = rx {
                let _ = rx.await;
            }
            Ok(input)
        }
    });
    let d = def(json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:gate", "Next": "P"},
        "P": {"Type": "Pass", "End": true}}}));
    let engine = Engine::new(Clock::real());
    engine.register(StateMachineSpec::new("m", d).tasks(tasks)).unwrap();
    let exec = engine.start("m", json!({"a": 1}), StartOptions::default()).unwrap();
    let mut sub = exec.subscribe();
    let mut seen = Vec::new();
    // Until the task is running, the execution cannot progress: read up to LambdaFunctionStarted.
    while let Some(ev) = sub.next().await {
        seen.push(ev.event_type);
        if ev.event_type == EventType::LambdaFunctionStarted {
            break;
        }
    }
    assert_eq!(exec.status(), Status::Running);
    release_tx.send(()).unwrap();
    while let Some(ev) = sub.next().await {
        seen.push(ev.event_type);
    }
    use EventType::*;
    assert_eq!(
        seen,
        vec![
            ExecutionStarted,
            TaskStateEntered,
            LambdaFunctionScheduled,
            LambdaFunctionStarted,
            LambdaFunctionSucceeded,
            TaskStateExited,
            PassStateEntered,
            PassStateExited,
            ExecutionSucceeded
        ]
    );
    // A late subscriber gets the replay and then the end of the stream.
    let mut late = exec.subscribe();
    let mut n = 0;
    while late.next().await.is_some() {
        n += 1;
    }
    assert_eq!(n, seen.len());
    assert_eq!(exec.wait().await.output, Some(json!({"a": 1})));
}

#[tokio::test(start_paused = true)]
async fn stop_aborts_a_running_execution() {
    let engine = Engine::new(Clock::real());
    engine.register(StateMachineSpec::new("m", wait_machine(3600))).unwrap();
    let exec = engine.start("m", json!({}), StartOptions::named("to-stop")).unwrap();
    let mut sub = exec.subscribe();
    while let Some(ev) = sub.next().await {
        if ev.event_type == EventType::WaitStateEntered {
            break;
        }
    }
    assert!(exec.stop(Some("Manual".into()), Some("operator stopped it".into())));
    let out = exec.wait().await;
    assert_eq!(out.status, Status::Aborted);
    assert_eq!(out.error.as_deref(), Some("Manual"));
    assert_eq!(out.cause.as_deref(), Some("operator stopped it"));
    let last = exec.history().pop().unwrap();
    assert_eq!(last.event_type, EventType::ExecutionAborted);
    assert!(!exec.stop(None, None), "a closed execution cannot be stopped again");
}

#[tokio::test(start_paused = true)]
async fn start_is_idempotent_by_name_and_input_while_open() {
    let engine = Engine::new(Clock::real());
    engine.register(StateMachineSpec::new("m", wait_machine(10))).unwrap();
    let a = engine.start("m", json!({"k": 1}), StartOptions::named("run-1")).unwrap();
    let b = engine.start("m", json!({"k": 1}), StartOptions::named("run-1")).unwrap();
    assert_eq!(a.arn(), b.arn());
    assert_eq!(engine.executions(None).len(), 1);
    let err = engine.start("m", json!({"k": 2}), StartOptions::named("run-1")).unwrap_err();
    assert!(matches!(err, EngineError::ExecutionAlreadyExists(_)), "{err}");
    assert_eq!(err.code(), "ExecutionAlreadyExists");
    a.wait().await;
    let err = engine.start("m", json!({"k": 1}), StartOptions::named("run-1")).unwrap_err();
    assert!(matches!(err, EngineError::ExecutionAlreadyExists(_)), "closed executions are not reused: {err}");
    assert_eq!(a.arn(), "arn:aws:states:us-east-1:123456789012:execution:m:run-1");
}

#[tokio::test]
async fn start_errors_are_named() {
    let engine = Engine::new(Clock::real());
    engine.register(StateMachineSpec::new("m", wait_machine(0))).unwrap();
    assert_eq!(
        engine.start("nope", json!({}), StartOptions::default()).unwrap_err().code(),
        "StateMachineDoesNotExist"
    );
    for bad in ["has space", "a/b", "x:y"] {
        assert_eq!(
            engine.start("m", json!({}), StartOptions::named(bad)).unwrap_err().code(),
            "InvalidName",
            "{bad:?}"
        );
    }
    let err = engine.start("m", json!({}), StartOptions::named("ok").test_case("T")).unwrap_err();
    assert!(err.to_string().contains("no mock config"), "{err}");
    assert!(matches!(
        engine.register(StateMachineSpec::new("m", wait_machine(0))),
        Err(EngineError::StateMachineAlreadyExists(_))
    ));
    assert!(matches!(
        engine.register(StateMachineSpec::new("n", wait_machine(0)).arn("not-an-arn")),
        Err(EngineError::InvalidArn(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn scaled_clock_shortens_waits_retries_and_timeouts() {
    let engine = Engine::new(Clock::scaled(0.001).unwrap());
    let d = def(json!({"TimeoutSeconds": 100000, "StartAt": "W", "States": {
        "W": {"Type": "Wait", "Seconds": 60, "Next": "T"},
        "T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:f",
              "Retry": [{"ErrorEquals": ["X"], "IntervalSeconds": 10, "MaxAttempts": 1}], "End": true}}}));
    let calls = Arc::new(Mutex::new(0));
    let c = calls.clone();
    let tasks = TaskRegistry::new().with("f", move |_| {
        let n = {
            let mut g = c.lock().unwrap();
            *g += 1;
            *g
        };
        async move { if n == 1 { Err(TaskError::new("X", "first")) } else { Ok(json!("ok")) } }
    });
    engine.register(StateMachineSpec::new("m", d).tasks(tasks)).unwrap();
    let t0 = tokio::time::Instant::now();
    let out = engine.start("m", json!({}), StartOptions::default()).unwrap().wait().await;
    assert_eq!(out.status, Status::Succeeded);
    // 60 s wait + 10 s retry interval at 0.001 = 70 ms.
    assert_eq!(t0.elapsed(), Duration::from_millis(70));
    assert_eq!(*calls.lock().unwrap(), 2);

    let timeout_engine = Engine::new(Clock::scaled(0.01).unwrap());
    let d = def(
        json!({"TimeoutSeconds": 100, "StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1000, "End": true}}}),
    );
    timeout_engine.register(StateMachineSpec::new("m", d)).unwrap();
    let t0 = tokio::time::Instant::now();
    let out = timeout_engine.start("m", json!({}), StartOptions::default()).unwrap().wait().await;
    assert_eq!(out.status, Status::TimedOut);
    assert_eq!(t0.elapsed(), Duration::from_secs(1));
}

#[tokio::test]
async fn substitutions_resolve_resources_before_parsing() {
    let text = r#"{"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "${FetchStatusArn}", "End": true}}}"#;
    let subs: Substitutions =
        [("FetchStatusArn", "arn:aws:lambda:us-west-1:222222222222:function:aurora-dr-fetch-status")]
            .into_iter()
            .collect();
    let d = Definition::parse_with(text, &subs).unwrap();
    let engine = Engine::new(Clock::real());
    let tasks =
        TaskRegistry::new().with("aurora-dr-fetch-status", |_| async { Ok(json!({"status": "available"})) });
    engine.register(StateMachineSpec::new("m", d).tasks(tasks)).unwrap();
    let out = engine.start("m", json!({}), StartOptions::default()).unwrap().wait().await;
    assert_eq!(out.output, Some(json!({"status": "available"})));
    let err = Definition::parse_with(text, &Substitutions::new()).unwrap_err();
    assert!(matches!(err, AslError::UnresolvedSubstitution(ref n) if n == "FetchStatusArn"), "{err}");
}

#[tokio::test]
async fn a_panicking_handler_fails_the_execution_instead_of_hanging() {
    let d = def(
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:p", "End": true}}}),
    );
    let tasks = TaskRegistry::new().with("p", |_| async {
        if true {
            panic!("handler bug");
        }
        Ok(json!(null))
    });
    let engine = Engine::new(Clock::real());
    engine.register(StateMachineSpec::new("m", d).tasks(tasks)).unwrap();
    let out = engine.start("m", json!({}), StartOptions::default()).unwrap().wait().await;
    assert_eq!(out.status, Status::Failed);
    assert_eq!(out.error.as_deref(), Some("States.Runtime"));
}

#[tokio::test]
async fn mock_test_cases_are_selected_per_execution() {
    let d = def(
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:f", "End": true}}}),
    );
    let mocks = MockConfig::parse(
        r#"{"StateMachines": {"m": {"TestCases": {"A": {"T": "RA"}, "B": {"T": "RB"}}}},
            "MockedResponses": {"RA": {"0": {"Return": "a"}}, "RB": {"0": {"Throw": {"Error": "E", "Cause": "b"}}}}}"#,
    )
    .unwrap();
    let engine = Engine::new(Clock::real());
    engine.register(StateMachineSpec::new("m", d).mocks(Arc::new(mocks))).unwrap();
    let a = engine.start("m", json!({}), StartOptions::named("a").test_case("A")).unwrap();
    let b = engine.start("m", json!({}), StartOptions::named("b").test_case("B")).unwrap();
    assert_eq!(a.test_case(), Some("A"));
    assert_eq!(a.wait().await.output, Some(json!("a")));
    let ob = b.wait().await;
    assert_eq!((ob.error.as_deref(), ob.cause.as_deref()), (Some("E"), Some("b")));
    let err = engine.start("m", json!({}), StartOptions::named("c").test_case("Nope")).unwrap_err();
    assert!(err.to_string().contains("no test case 'Nope'"), "{err}");
}

#[tokio::test]
async fn retry_attempts_are_visible_in_history_and_context() {
    let d = def(
        json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:f",
        "Parameters": {"n.$": "$$.State.RetryCount"},
        "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 2}], "End": true}}}),
    );
    let tasks = TaskRegistry::new().with("f", |input: Value| async move {
        if input["n"] == json!(2) { Ok(input) } else { Err(TaskError::new("Again", "not yet")) }
    });
    let engine = Engine::new(Clock::scaled(0.001).unwrap());
    engine.register(StateMachineSpec::new("m", d).tasks(tasks)).unwrap();
    let exec = engine.start("m", json!({}), StartOptions::default()).unwrap();
    assert_eq!(exec.wait().await.output, Some(json!({"n": 2})));
    let attempts =
        exec.history().iter().filter(|e| e.event_type == EventType::LambdaFunctionScheduled).count();
    assert_eq!(attempts, 3);
    let failures: Vec<_> = exec
        .history()
        .into_iter()
        .filter(|e| e.event_type == EventType::LambdaFunctionFailed)
        .map(|e| (e.details.error.unwrap_or_default(), e.details.cause.unwrap_or_default()))
        .collect();
    assert_eq!(failures, vec![("Again".to_string(), "not yet".to_string()); 2]);
}

#[tokio::test(start_paused = true)]
async fn wait_until_a_future_timestamp_takes_exactly_that_long() {
    let engine = Engine::new(Clock::real());
    let d = def(
        json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "TimestampPath": "$.until", "End": true}}}),
    );
    engine.register(StateMachineSpec::new("m", d)).unwrap();
    let until = engine.clock().now() + time::Duration::seconds(100);
    let until = until.format(&time::format_description::well_known::Rfc3339).unwrap();
    let t0 = tokio::time::Instant::now();
    let out = engine.start("m", json!({ "until": until }), StartOptions::default()).unwrap().wait().await;
    assert_eq!(out.status, Status::Succeeded);
    let waited = t0.elapsed();
    assert!(waited >= Duration::from_secs(99) && waited <= Duration::from_secs(100), "{waited:?}");
}
