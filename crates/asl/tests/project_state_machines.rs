//! The project's two state machines (`statemachines/*.asl.json`, exactly as
//! written) run with Step Functions Local mock configs
//! (`tests/project/*.mock.json`): happy path, a snapshot stuck then
//! available, a quota error waited out, and a fatal error routed to the
//! failure branch. Paused tokio time makes every Retry interval instant and
//! exact.
//!
//! Failure-branch states (NotifyFailure, RollBackSwap, CleanUpTempCluster)
//! are not mocked: a mocked `Return` replaces the payload, while those
//! Lambdas return their input unchanged (core `notify`, `swap`, `terminate`
//! failure modes), and the final Fail state reads `$.failure`. They run on
//! recording handlers that honour that contract.

use aurora_dr_asl::{
    Clock, Definition, Engine, EventType, Execution, HistoryEvent, MockConfig, Outcome, StartOptions,
    StateMachineSpec, Status, Substitutions, TaskRegistry,
};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

const FUNCTIONS: &[(&str, &str)] = &[
    ("CreateSnapshotFunctionArn", "create-snapshot"),
    ("FetchStatusFunctionArn", "fetch-status"),
    ("EncryptCopyFunctionArn", "encrypt-copy"),
    ("ShareFunctionArn", "share"),
    ("NotifyFunctionArn", "notify"),
    ("RestoreFunctionArn", "restore"),
    ("RestoreInstanceFunctionArn", "restore-instance"),
    ("SwapFunctionArn", "swap"),
    ("TerminateFunctionArn", "terminate"),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load(side: &str) -> (Definition, MockConfig) {
    let subs: Substitutions = FUNCTIONS
        .iter()
        .map(|(k, f)| (*k, format!("arn:aws:lambda:us-east-1:111111111111:function:aurora-dr-{f}")))
        .collect();
    let text = std::fs::read_to_string(root().join(format!("../../statemachines/{side}.asl.json"))).unwrap();
    let def = Definition::parse_with(&text, &subs).unwrap_or_else(|e| panic!("{side}.asl.json: {e}"));
    let mocks = std::fs::read_to_string(root().join(format!("tests/project/{side}.mock.json"))).unwrap();
    (def, MockConfig::parse(&mocks).unwrap())
}

/// (function, input) of every unmocked call.
type Calls = Arc<Mutex<Vec<(String, Value)>>>;

async fn run(side: &str, test_case: &str, input: Value) -> (Execution, Outcome, Calls) {
    let (def, mocks) = load(side);
    let calls: Calls = Arc::default();
    let mut tasks = TaskRegistry::new();
    for f in ["aurora-dr-notify", "aurora-dr-swap", "aurora-dr-terminate"] {
        let c = calls.clone();
        tasks.register(f, move |input: Value| {
            c.lock().unwrap().push((f.to_string(), input.clone()));
            async move { Ok(input) }
        });
    }
    let engine = Engine::new(Clock::real());
    let name = format!("aurora-dr-{side}");
    engine.register(StateMachineSpec::new(&name, def).tasks(tasks).mocks(Arc::new(mocks))).unwrap();
    let exec = engine.start(&name, input, StartOptions::named("run-1").test_case(test_case)).unwrap();
    let out = exec.wait().await;
    (exec, out, calls)
}

/// State names in the order they were entered.
fn path(h: &[HistoryEvent]) -> Vec<String> {
    h.iter()
        .filter(|e| e.event_type.as_str().ends_with("StateEntered"))
        .filter_map(|e| e.details.name.clone())
        .collect()
}

/// Task attempts per entry of `state`.
fn attempts(h: &[HistoryEvent], state: &str) -> usize {
    let mut inside = false;
    let mut n = 0;
    for e in h {
        match e.event_type {
            EventType::TaskStateEntered => inside = e.details.name.as_deref() == Some(state),
            EventType::TaskStateExited => inside = false,
            EventType::LambdaFunctionScheduled if inside => n += 1,
            _ => {}
        }
    }
    n
}

fn elapsed(h: &[HistoryEvent]) -> f64 {
    (h[h.len() - 1].timestamp - h[0].timestamp).as_seconds_f64()
}

const SOURCE_HAPPY: &[&str] = &[
    "Start",
    "CreateSnapshot",
    "WaitForSourceSnapshot",
    "EncryptCopy",
    "WaitForTargetSnapshot",
    "Share",
    "Notify",
];

#[tokio::test(start_paused = true)]
async fn source_happy_path() {
    let (exec, out, calls) = run("source", "HappyPath", json!({})).await;
    assert_eq!(out.status, Status::Succeeded, "{out:?}");
    assert_eq!(out.output, Some(json!({"runId": "run-1", "messageId": "m-1"})));
    assert_eq!(path(&exec.history()), SOURCE_HAPPY);
    assert!(calls.lock().unwrap().is_empty(), "no failure notification on the happy path");
    assert_eq!(elapsed(&exec.history()), 0.0);
}

#[tokio::test(start_paused = true)]
async fn source_snapshot_stuck_then_available() {
    let (exec, out, _) = run("source", "SnapshotStuckThenAvailable", json!({})).await;
    assert_eq!(out.status, Status::Succeeded, "{out:?}");
    let h = exec.history();
    assert_eq!(path(&h), SOURCE_HAPPY);
    assert_eq!(attempts(&h, "WaitForSourceSnapshot"), 5);
    // ResourceNotReady retrier: 30 s, then x1.5 each time, no jitter.
    assert_eq!(elapsed(&h), 30.0 + 45.0 + 67.5 + 101.25);
}

#[tokio::test(start_paused = true)]
async fn source_copy_quota_exceeded_then_ok() {
    let (exec, out, _) = run("source", "CopyQuotaExceededThenOk", json!({})).await;
    assert_eq!(out.status, Status::Succeeded, "{out:?}");
    let h = exec.history();
    assert_eq!(attempts(&h, "EncryptCopy"), 3);
    // FULL jitter: somewhere between 0 and 60 + 90 seconds.
    assert!(elapsed(&h) <= 150.0, "{}", elapsed(&h));
    let failed: Vec<_> = h
        .iter()
        .filter(|e| e.event_type == EventType::LambdaFunctionFailed)
        .map(|e| e.details.error.clone().unwrap_or_default())
        .collect();
    assert_eq!(failed, vec!["QuotaExceeded", "QuotaExceeded"]);
}

#[tokio::test(start_paused = true)]
async fn source_fatal_error_goes_to_the_failure_branch() {
    let (exec, out, calls) = run("source", "ShareAccessDenied", json!({})).await;
    assert_eq!(out.status, Status::Failed);
    assert_eq!(out.error.as_deref(), Some("AccessDenied"));
    assert_eq!(out.cause.as_deref(), Some("not authorized to modify snapshot attributes"));
    let h = exec.history();
    assert_eq!(attempts(&h, "Share"), 1, "AccessDenied is fatal: no retry");
    assert_eq!(
        path(&h),
        [
            "Start",
            "CreateSnapshot",
            "WaitForSourceSnapshot",
            "EncryptCopy",
            "WaitForTargetSnapshot",
            "Share",
            "OnShareError",
            "NotifyFailure",
            "Failed"
        ]
    );
    let calls = calls.lock().unwrap();
    assert_eq!(calls.len(), 1, "one failure notification: {calls:?}");
    let (f, input) = &calls[0];
    assert_eq!(f, "aurora-dr-notify");
    assert_eq!(input["failedState"], "Share");
    assert_eq!(input["failure"]["Error"], "AccessDenied");
    assert_eq!(input["runId"], "run-1");
}

const TARGET_HAPPY: &[&str] = &[
    "WaitForSharedSnapshot",
    "Restore",
    "WaitForTempCluster",
    "RestoreInstance",
    "WaitForTempInstances",
    "Swap",
    "WaitForSwappedCluster",
    "Terminate",
];

fn target_input() -> Value {
    json!({"runId": "run-1", "targetSnapshotArn": "arn:aws:rds:us-west-1:111111111111:cluster-snapshot:dr-copy"})
}

#[tokio::test(start_paused = true)]
async fn target_happy_path() {
    let (exec, out, calls) = run("target", "HappyPath", target_input()).await;
    assert_eq!(out.status, Status::Succeeded, "{out:?}");
    assert_eq!(out.output, Some(json!({"runId": "run-1", "terminated": true})));
    assert_eq!(path(&exec.history()), TARGET_HAPPY);
    assert!(calls.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn target_shared_snapshot_stuck_then_available() {
    let (exec, out, _) = run("target", "SharedSnapshotStuckThenAvailable", target_input()).await;
    assert_eq!(out.status, Status::Succeeded, "{out:?}");
    let h = exec.history();
    assert_eq!(path(&h), TARGET_HAPPY);
    assert_eq!(attempts(&h, "WaitForSharedSnapshot"), 4);
    assert_eq!(elapsed(&h), 30.0 + 45.0 + 67.5);
}

#[tokio::test(start_paused = true)]
async fn target_throttled_restore_then_ok() {
    let (exec, out, _) = run("target", "RestoreQuotaThrottledThenOk", target_input()).await;
    assert_eq!(out.status, Status::Succeeded, "{out:?}");
    assert_eq!(attempts(&exec.history(), "Restore"), 3);
}

#[tokio::test(start_paused = true)]
async fn target_swap_failure_rolls_back_cleans_up_and_fails() {
    let (exec, out, calls) = run("target", "SwapFails", target_input()).await;
    assert_eq!(out.status, Status::Failed);
    assert_eq!(out.error.as_deref(), Some("ResourceFailed"));
    assert_eq!(
        path(&exec.history()),
        [
            "WaitForSharedSnapshot",
            "Restore",
            "WaitForTempCluster",
            "RestoreInstance",
            "WaitForTempInstances",
            "Swap",
            "OnSwapError",
            "RollBackSwap",
            "CleanUpTempCluster",
            "NotifyFailure",
            "Failed"
        ]
    );
    let calls = calls.lock().unwrap();
    let functions: Vec<&str> = calls.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(functions, ["aurora-dr-swap", "aurora-dr-terminate", "aurora-dr-notify"]);
    for (_, input) in calls.iter() {
        assert_eq!(input["failedState"], "Swap");
        assert_eq!(input["failure"]["Error"], "ResourceFailed");
    }
}

#[test]
fn both_definitions_validate_without_substitutions() {
    for side in ["source", "target"] {
        let text =
            std::fs::read_to_string(root().join(format!("../../statemachines/{side}.asl.json"))).unwrap();
        assert_eq!(aurora_dr_asl::validate(&text), vec![], "{side}.asl.json");
    }
}
