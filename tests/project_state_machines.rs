//! The project's two state machines (`statemachines/*.asl.json`, exactly as
//! written) run with Step Functions Local mock configs
//! (`tests/project/*.mock.json`): happy path, a snapshot stuck then
//! available, a quota error waited out, and a fatal error routed to the
//! failure branch. Paused tokio time makes every Retry interval instant and
//! exact. The source machine's fan-out over many clusters (its `Snapshots`
//! then `Copies` Maps) runs on recording handlers: every snapshot at once,
//! then at most five copies at a time, one item's failure recorded while the
//! others finish.
//!
//! Every Task is bound to its function through the one table,
//! `aurora_dr_core::steps::FUNCTIONS` (each `${...FunctionArn}` to the
//! function of that name). The failure path's functions (the table's
//! `InputKind::FailurePath` entries: CleanUpSnapshot, NotifyFailure,
//! RollBackSwap, CleanUpTempCluster) are not mocked: a mocked `Return`
//! replaces the payload, while those functions return their input unchanged,
//! and the final Fail state reads `$.failure`. They run on recording
//! handlers that honour that contract.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use aurora_dr_asl::{
    Clock, Definition, Engine, EventType, Execution, HistoryEvent, MockConfig, Outcome, StartOptions,
    StateMachineSpec, Status, Substitutions, TaskRegistry,
};
use aurora_dr_core::steps::{FUNCTIONS, InputKind};
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The local engine's name for a function of the table.
fn task(name: &str) -> String {
    format!("aurora-dr-{name}")
}

fn load(side: &str) -> (Definition, MockConfig) {
    let subs: Substitutions = FUNCTIONS
        .iter()
        .filter_map(|f| {
            let arn = format!("arn:aws:lambda:us-east-1:111111111111:function:{}", task(f.name));
            Some((f.substitution?, arn))
        })
        .collect();
    let text = std::fs::read_to_string(root().join(format!("../statemachines/{side}.asl.json"))).unwrap();
    let def = Definition::parse_with(&text, &subs).unwrap_or_else(|e| panic!("{side}.asl.json: {e}"));
    let mocks = std::fs::read_to_string(root().join(format!("project/{side}.mock.json"))).unwrap();
    (def, MockConfig::parse(&mocks).unwrap())
}

/// (function, input) of every unmocked call.
type Calls = Arc<Mutex<Vec<(String, Value)>>>;

async fn run(side: &str, test_case: &str, input: Value) -> (Execution, Outcome, Calls) {
    let (def, mocks) = load(side);
    let calls: Calls = Arc::default();
    let mut tasks = TaskRegistry::new();
    for f in FUNCTIONS.iter().filter(|f| f.input == InputKind::FailurePath) {
        let c = calls.clone();
        let name = task(f.name);
        tasks.register(name.clone(), move |input: Value| {
            c.lock().unwrap().push((name.clone(), input.clone()));
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
    "ApplyRetention",
];

/// The source machine's path around one cluster's states: no `clusters` in
/// the input, so one item for the configured cluster. `item` is the
/// cluster's own states in the three Maps; the Maps and their entry Choices
/// are added where the item moves on: `Copies` after CreateSnapshot (or the
/// snapshot's failure path), `Retention` after Notify (or a failure path),
/// which passes a failed cluster through.
fn source_path<'a>(item: &[&'a str], failed: bool) -> Vec<&'a str> {
    let mut path = vec!["HasClusterList", "ConfiguredCluster", "Snapshots"];
    let snapshot_failed = item.contains(&"SnapshotFailed");
    for state in item {
        path.push(state);
        match *state {
            "CreateSnapshot" if !snapshot_failed => path.extend(["Copies", "HasSnapshot"]),
            "SnapshotFailed" => path.extend(["Copies", "HasSnapshot", "SnapshotFailedEarlier"]),
            _ => {}
        }
        match *state {
            "Notify" => path.extend(["Retention", "CopiedAndNotified"]),
            "SnapshotFailed" | "ClusterFailed" => {
                path.extend(["Retention", "CopiedAndNotified", "FailedBeforeRetention"])
            }
            _ => {}
        }
    }
    path.extend(["Report", "AnyClusterFailed", if failed { "Failed" } else { "Done" }]);
    path
}

#[tokio::test(start_paused = true)]
async fn source_happy_path() {
    let (exec, out, calls) = run("source", "HappyPath", json!({})).await;
    assert_eq!(out.status, Status::Succeeded, "{out:?}");
    assert_eq!(
        out.output,
        Some(json!({"runId": "run-1", "clusters": [{"runId": "run-1", "messageId": "m-1"}], "failed": []}))
    );
    assert_eq!(path(&exec.history()), source_path(SOURCE_HAPPY, false));
    assert!(calls.lock().unwrap().is_empty(), "no failure notification on the happy path");
    assert_eq!(elapsed(&exec.history()), 0.0);
}

#[tokio::test(start_paused = true)]
async fn source_snapshot_stuck_then_available() {
    let (exec, out, _) = run("source", "SnapshotStuckThenAvailable", json!({})).await;
    assert_eq!(out.status, Status::Succeeded, "{out:?}");
    let h = exec.history();
    assert_eq!(path(&h), source_path(SOURCE_HAPPY, false));
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

/// A fatal error in `failed_state`: no retry, the clean-up then one failure
/// notification, and the run fails with the error once the Maps are done.
/// `run_id` is the failed item's at the time (a mocked step's `Return`
/// replaces the payload).
async fn source_fails_in(test_case: &str, failed_state: &str, run_id: &str, cause: &str, item: &[&str]) {
    let (exec, out, calls) = run("source", test_case, json!({})).await;
    assert_eq!(out.status, Status::Failed);
    assert_eq!(out.error.as_deref(), Some("AccessDenied"));
    let want = format!("1 of 1 cluster run(s) failed; the first, {run_id}, in {failed_state}: {cause}");
    assert_eq!(out.cause.as_deref(), Some(want.as_str()));
    let h = exec.history();
    assert_eq!(attempts(&h, failed_state), 1, "AccessDenied is fatal: no retry");
    assert_eq!(path(&h), source_path(item, true));
    let calls = calls.lock().unwrap();
    let functions: Vec<&str> = calls.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        functions,
        ["aurora-dr-clean-up-snapshot", "aurora-dr-notify-failure"],
        "the clean-up, then one notification"
    );
    assert_eq!(calls[0].1["failure"]["Error"], "AccessDenied");
    let input = &calls[1].1;
    assert_eq!(input["failedState"], failed_state);
    assert_eq!(input["failure"]["Error"], "AccessDenied");
    assert_eq!(input["runId"], run_id);
}

#[tokio::test(start_paused = true)]
async fn source_fatal_error_goes_to_the_failure_branch() {
    let item =
        [&SOURCE_HAPPY[..5], &["Share", "OnShareError", "CleanUpCopy", "NotifyFailure", "ClusterFailed"]]
            .concat();
    source_fails_in(
        "ShareAccessDenied",
        "Share",
        "run-1",
        "not authorized to modify snapshot attributes",
        &item,
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn source_snapshot_failure_is_cleaned_up_notified_and_skips_the_copy() {
    let item = [
        "Start",
        "CreateSnapshot",
        "OnCreateSnapshotError",
        "CleanUpSnapshot",
        "NotifySnapshotFailure",
        "SnapshotFailed",
    ];
    source_fails_in(
        "SnapshotAccessDenied",
        "CreateSnapshot",
        "run-1-0",
        "not authorized to create a snapshot",
        &item,
    )
    .await;
}

const TARGET_HAPPY: &[&str] = &[
    "WaitForSharedSnapshot",
    "CopyToOwnAccount",
    "UsesOwnCopy",
    "Restore",
    "WaitForTempCluster",
    "RestoreInstance",
    "WaitForTempInstances",
    "Swap",
    "WaitForSwappedCluster",
    "SanityCheck",
    "Terminate",
    "ApplyRetention",
];

/// The target machine's path when `failed` (a state of [`TARGET_HAPPY`])
/// fails fatally and `on_error` routes it to the roll-back.
fn target_failed_after(failed: &str, on_error: &'static str) -> Vec<&'static str> {
    let upto = TARGET_HAPPY.iter().position(|s| *s == failed).expect("a happy-path state") + 1;
    [&TARGET_HAPPY[..upto], &[on_error, "RollBackSwap", "CleanUpTempCluster", "NotifyFailure", "Failed"]]
        .concat()
}

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
    assert_eq!(path(&exec.history()), target_failed_after("Swap", "OnSwapError"));
    let calls = calls.lock().unwrap();
    let functions: Vec<&str> = calls.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        functions,
        ["aurora-dr-roll-back-swap", "aurora-dr-clean-up-temp-cluster", "aurora-dr-notify-failure"]
    );
    for (_, input) in calls.iter() {
        assert_eq!(input["failedState"], "Swap");
        assert_eq!(input["failure"]["Error"], "ResourceFailed");
    }
}

#[tokio::test(start_paused = true)]
async fn target_sanity_check_failure_rolls_the_swap_back_and_never_terminates() {
    let (exec, out, calls) = run("target", "SanityCheckFails", target_input()).await;
    assert_eq!(out.status, Status::Failed);
    assert_eq!(out.error.as_deref(), Some("SanityCheckFailed"));
    assert!(out.cause.as_deref().is_some_and(|c| c.contains("minRows(orders) FAILED")), "{out:?}");
    let h = exec.history();
    assert_eq!(path(&h), target_failed_after("SanityCheck", "OnSanityCheckError"));
    // Wrong data is fatal: no retry, caught at once.
    assert_eq!(attempts(&h, "SanityCheck"), 1);
    assert_eq!(elapsed(&h), 0.0);
    let calls = calls.lock().unwrap();
    let functions: Vec<&str> = calls.iter().map(|(f, _)| f.as_str()).collect();
    // RollBackSwap, CleanUpTempCluster, NotifyFailure; no Terminate state.
    assert_eq!(
        functions,
        ["aurora-dr-roll-back-swap", "aurora-dr-clean-up-temp-cluster", "aurora-dr-notify-failure"]
    );
    for (_, input) in calls.iter() {
        assert_eq!(input["failedState"], "SanityCheck");
        assert_eq!(input["failure"]["Error"], "SanityCheckFailed");
        assert!(
            input["failure"]["Cause"].as_str().is_some_and(|c| c.contains("3 rows, below the minimum 10"))
        );
    }
}

#[tokio::test(start_paused = true)]
async fn target_sanity_check_unreachable_once_then_passing_terminates() {
    let (exec, out, calls) = run("target", "SanityCheckUnreachableOnceThenPasses", target_input()).await;
    assert_eq!(out.status, Status::Succeeded, "{out:?}");
    let h = exec.history();
    assert_eq!(path(&h), TARGET_HAPPY);
    // Tried once more after 30 s (a just-renamed endpoint may not answer yet).
    assert_eq!(attempts(&h, "SanityCheck"), 2);
    assert_eq!(elapsed(&h), 30.0);
    // ResultPath null: the report does not replace the payload Terminate gets
    // (the Swap mock's output, passed through WaitForSwappedCluster).
    let terminate_input = h
        .iter()
        .find(|e| {
            e.event_type == EventType::TaskStateEntered && e.details.name.as_deref() == Some("Terminate")
        })
        .and_then(|e| e.details.input.clone());
    assert_eq!(terminate_input, Some(json!({"runId": "run-1", "swapped": true})));
    assert!(calls.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn source_retention_failure_is_notified_after_the_target_was() {
    let (exec, out, calls) = run("source", "RetentionFails", json!({})).await;
    assert_eq!(out.status, Status::Failed);
    assert_eq!(out.error.as_deref(), Some("AccessDenied"));
    let h = exec.history();
    let mut want = SOURCE_HAPPY.to_vec();
    want.extend(["OnApplyRetentionError", "NotifyRetentionFailure", "RetentionFailed"]);
    assert_eq!(path(&h), source_path(&want, true));
    assert_eq!(attempts(&h, "ApplyRetention"), 1, "AccessDenied is fatal: no retry");
    let calls = calls.lock().unwrap();
    assert_eq!(calls.len(), 1, "one failure notification: {calls:?}");
    assert_eq!(calls[0].1["failedState"], "ApplyRetention");
}

#[tokio::test(start_paused = true)]
async fn target_with_an_own_copy_waits_for_it_then_restores() {
    let (exec, out, calls) = run("target", "OwnCopy", target_input()).await;
    assert_eq!(out.status, Status::Succeeded, "{out:?}");
    let h = exec.history();
    let mut want = TARGET_HAPPY.to_vec();
    want.insert(3, "WaitForOwnCopy");
    assert_eq!(path(&h), want);
    assert_eq!(attempts(&h, "WaitForOwnCopy"), 3);
    assert_eq!(elapsed(&h), 30.0 + 45.0);
    // WaitForOwnCopy keeps the payload (ResultPath null): Restore gets the own copy.
    let restore_input = h
        .iter()
        .find(|e| e.event_type == EventType::TaskStateEntered && e.details.name.as_deref() == Some("Restore"))
        .and_then(|e| e.details.input.clone())
        .unwrap_or_default();
    assert_eq!(
        restore_input["ownSnapshotArn"],
        "arn:aws:rds:us-west-1:222222222222:cluster-snapshot:dr-copy"
    );
    assert!(calls.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn target_retention_failure_is_notified_and_never_rolls_back() {
    let (exec, out, calls) = run("target", "RetentionFails", target_input()).await;
    assert_eq!(out.status, Status::Failed);
    assert_eq!(out.error.as_deref(), Some("AccessDenied"));
    let mut want = TARGET_HAPPY.to_vec();
    want.extend(["OnApplyRetentionError", "NotifyFailure", "Failed"]);
    assert_eq!(path(&exec.history()), want);
    let calls = calls.lock().unwrap();
    let functions: Vec<&str> = calls.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(functions, ["aurora-dr-notify-failure"], "the new cluster serves: no rollback, no clean-up");
    assert_eq!(calls[0].1["failedState"], "ApplyRetention");
}

#[test]
fn both_definitions_validate_without_substitutions() {
    for side in ["source", "target"] {
        let text = std::fs::read_to_string(root().join(format!("../statemachines/{side}.asl.json"))).unwrap();
        assert_eq!(aurora_dr_asl::validate(&text), vec![], "{side}.asl.json");
    }
}

/// Twelve clusters through the source machine with recording handlers (no
/// mocks): every snapshot is started at once, then the copy Map runs at
/// most five at a time between EncryptCopy and the end of
/// WaitForTargetSnapshot (a copy in flight). A snapshot is ready a minute
/// after it was started and a copy takes a minute, so the run takes
/// 1 + ceil(12/5) = 4 minutes: only the first five wait for their snapshot. Each item's run is named
/// `{execution}-{index}`, and one cluster's fatal error is notified and
/// recorded while the other eleven finish; the run then fails with it.
#[tokio::test(start_paused = true)]
async fn source_fans_out_five_at_a_time_and_one_failure_does_not_stop_the_others() {
    let (def, _) = load("source");
    let in_flight = Arc::new(Mutex::new((0usize, 0usize))); // (now, max)
    let notified: Calls = Arc::default();
    let mut tasks = TaskRegistry::new();
    // When each snapshot is available (virtual time), by snapshot id.
    let ready: Arc<Mutex<HashMap<String, tokio::time::Instant>>> = Arc::default();
    let minute = std::time::Duration::from_secs(60);
    let started = ready.clone();
    tasks.register(task("create-snapshot"), move |mut input: Value| {
        let started = started.clone();
        async move {
            let snapshot =
                format!("aurora-dr-{}-20260101000000", input["sourceClusterId"].as_str().unwrap_or_default());
            started.lock().unwrap().insert(snapshot.clone(), tokio::time::Instant::now() + minute);
            input["sourceSnapshotId"] = snapshot.into();
            Ok(input)
        }
    });
    tasks.register(task("apply-retention"), |_input: Value| async { Ok(json!({})) });
    let flight = in_flight.clone();
    tasks.register(task("encrypt-copy"), move |mut input: Value| {
        let flight = flight.clone();
        async move {
            let mut f = flight.lock().unwrap();
            f.0 += 1;
            f.1 = f.1.max(f.0);
            input["targetSnapshotId"] = input["sourceSnapshotId"].clone();
            Ok(input)
        }
    });
    tasks.register(task("clean-up-snapshot"), |input: Value| async move { Ok(input) });
    let flight = in_flight.clone();
    tasks.register(task("fetch-status"), move |input: Value| {
        let flight = flight.clone();
        let ready = ready.clone();
        async move {
            if input["waitFor"] == "targetSnapshot" {
                tokio::time::sleep(minute).await;
                flight.lock().unwrap().0 -= 1;
            } else {
                let id = input["run"]["sourceSnapshotId"].as_str().unwrap_or_default();
                let at = ready.lock().unwrap().get(id).copied().expect("a started snapshot");
                tokio::time::sleep_until(at).await;
            }
            Ok(json!({"status": "available"}))
        }
    });
    tasks.register(task("share"), |input: Value| async move {
        if input["sourceClusterId"] == "c03" {
            return Err(aurora_dr_asl::TaskError::new("AccessDenied", "not authorized to share c03"));
        }
        Ok(input)
    });
    for f in ["notify", "notify-failure"] {
        let seen = notified.clone();
        tasks.register(task(f), move |input: Value| {
            seen.lock().unwrap().push((f.into(), input.clone()));
            async move { Ok(input) }
        });
    }
    let engine = Engine::new(Clock::real());
    engine.register(StateMachineSpec::new("aurora-dr-source", def).tasks(tasks)).unwrap();
    let clusters: Vec<Value> = (0..12).map(|i| json!({"sourceClusterId": format!("c{i:02}")})).collect();
    let exec = engine
        .start("aurora-dr-source", json!({"clusters": clusters}), StartOptions::named("run-1"))
        .unwrap();
    let out = exec.wait().await;

    assert_eq!(out.status, Status::Failed);
    assert_eq!(out.error.as_deref(), Some("AccessDenied"));
    assert_eq!(
        out.cause.as_deref(),
        Some("1 of 12 cluster run(s) failed; the first, run-1-3, in Share: not authorized to share c03")
    );
    assert_eq!(in_flight.lock().unwrap().1, 5, "MaxConcurrency 5 bounds the copies in flight");
    let h = exec.history();
    assert_eq!(elapsed(&h), 60.0 * (1.0 + 3.0), "all snapshots at once, then three rounds of five copies");
    let report = h
        .iter()
        .find(|e| e.event_type == EventType::FailStateEntered)
        .and_then(|e| e.details.input.clone())
        .expect("the Fail state sees the report");
    let reported = report["clusters"].as_array().expect("clusters");
    assert_eq!(reported.len(), 12, "every cluster is reported, in input order");
    for (i, c) in reported.iter().enumerate() {
        assert_eq!(c["sourceClusterId"], format!("c{i:02}"));
        assert_eq!(c["runId"], format!("run-1-{i}"), "each item's own run id");
        assert_eq!(c["createdAt"], reported[0]["createdAt"], "one start time names every snapshot");
        assert_eq!(c.get("failure").is_some(), i == 3, "{c}");
    }
    assert_eq!(reported[3]["failedState"], "Share");
    assert_eq!(report["failed"].as_array().map(Vec::len), Some(1));
    assert_eq!(report["failed"][0]["runId"], "run-1-3");
    assert_eq!(report["failed"][0]["failedState"], "Share");
    assert_eq!(report["failed"][0]["failure"]["Error"], "AccessDenied");
    let notified = notified.lock().unwrap();
    let by = |function: &str| -> Vec<&Value> {
        notified.iter().filter(|(f, _)| f == function).map(|(_, v)| v).collect()
    };
    assert_eq!(by("notify").len(), 11, "eleven target notifications");
    let failures = by("notify-failure");
    assert_eq!(failures.len(), 1, "one failure notification");
    assert_eq!(failures[0]["sourceClusterId"], "c03");
    assert!(by("notify").iter().all(|v| v.get("failure").is_none()), "Notify never gets a failure");
}

#[tokio::test(start_paused = true)]
async fn source_rejects_an_empty_cluster_list_before_any_step() {
    let (def, _) = load("source");
    let calls: Calls = Arc::default();
    let seen = calls.clone();
    let mut tasks = TaskRegistry::new();
    for f in FUNCTIONS.iter().map(|f| task(f.name)) {
        let seen = seen.clone();
        tasks.register(f.clone(), move |input: Value| {
            seen.lock().unwrap().push((f.clone(), input.clone()));
            async move { Ok(input) }
        });
    }
    let engine = Engine::new(Clock::real());
    engine.register(StateMachineSpec::new("aurora-dr-source", def).tasks(tasks)).unwrap();
    for input in [json!({"clusters": []}), json!({"clusters": "orders"})] {
        let exec = engine.start("aurora-dr-source", input.clone(), StartOptions::default()).unwrap();
        let out = exec.wait().await;
        assert_eq!((out.status, out.error.as_deref()), (Status::Failed, Some("InvalidInput")), "{input}");
    }
    assert!(calls.lock().unwrap().is_empty(), "nothing ran");
}
