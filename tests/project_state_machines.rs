//! The project's two state machines (`statemachines/*.asl.json`, exactly as
//! written) run with Step Functions Local mock configs
//! (`tests/project/*.mock.json`): happy path, a snapshot stuck then
//! available, a quota error waited out, and a fatal error routed to the
//! failure branch. Paused tokio time makes every Retry interval instant and
//! exact. The source machine's three Maps are Distributed: each cluster's
//! states run in child executions, whose histories the tests read next to
//! the parent's ([`flat_history`]). Its fan-out over many clusters runs on
//! recording handlers: every snapshot at once, then at most five copies at a
//! time, one item's failure recorded while the others finish; a fleet of 100
//! clusters with realistic polling keeps every history under the quota.
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
use aurora_dr_core::poll::{self, Poll, Schedule};
use aurora_dr_core::steps::{FUNCTIONS, InputKind, Side};
use aurora_dr_tests::flat_history;
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A definition with every function placeholder bound through the table.
fn parse(text: &str, side: &str) -> Definition {
    let subs: Substitutions = FUNCTIONS
        .iter()
        .filter_map(|f| {
            let arn = format!("arn:aws:lambda:us-east-1:111111111111:function:{}", task(f.name));
            Some((f.substitution?, arn))
        })
        .collect();
    Definition::parse_with(text, &subs).unwrap_or_else(|e| panic!("{side}.asl.json: {e}"))
}

/// The local engine's name for a function of the table.
fn task(name: &str) -> String {
    format!("aurora-dr-{name}")
}

fn load(side: &str) -> (Definition, MockConfig) {
    let text = std::fs::read_to_string(root().join(format!("../statemachines/{side}.asl.json"))).unwrap();
    let def = parse(&text, side);
    let mocks = std::fs::read_to_string(root().join(format!("project/{side}.mock.json"))).unwrap();
    (def, MockConfig::parse(&mocks).unwrap())
}

/// (function, input) of every unmocked call.
type Calls = Arc<Mutex<Vec<(String, Value)>>>;

/// An execution of one of the project's machines, ended, with its engine
/// (which holds its child executions).
struct Ran {
    engine: Engine,
    exec: Execution,
    out: Outcome,
    calls: Calls,
}

impl Ran {
    /// The parent's history with each Distributed Map's child executions
    /// spliced in after its `MapRunStarted` ([`flat_history`]).
    fn history(&self) -> Vec<HistoryEvent> {
        flat_history(&self.engine, &self.exec)
    }
}

async fn run(side: &str, test_case: &str, input: Value) -> Ran {
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
    Ran { engine, exec, out, calls }
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

/// One cluster's states in the source machine's three Maps on the happy path.
const SNAPSHOTS: &[&str] = &["Start", "MakeRoom", "CreateSnapshot"];
const COPIES: &[&str] = &[
    "HasSnapshot",
    "Regions",
    "Region",
    "WaitForSourceSnapshot",
    "SourceSnapshotReady",
    "EncryptCopy",
    "WaitForTargetSnapshot",
    "TargetSnapshotReady",
    "Share",
    "Notify",
    "AnyRegionFailed",
    "Copied",
];
const RETENTION: &[&str] = &["RetentionNeeded", "ApplyRetention"];

/// The source machine's path around one cluster's states: no `clusters` in
/// the input, so one item for the configured cluster, whose states in each
/// Map (its child execution) come right after the Map state.
fn source_path<'a>(
    snapshots: &[&'a str],
    copies: &[&'a str],
    retention: &[&'a str],
    failed: bool,
) -> Vec<&'a str> {
    let mut path = vec!["HasClusterList", "ConfiguredCluster", "Snapshots"];
    path.extend(snapshots);
    path.push("Copies");
    path.extend(copies);
    path.push("Retention");
    path.extend(retention);
    path.extend(["Report", "AnyClusterFailed", if failed { "Failed" } else { "Done" }]);
    path
}

/// The path of a cluster whose snapshot failed (`snapshots`, its states in
/// the Snapshots Map): it passes the later Maps untouched.
fn snapshot_failed_path<'a>(snapshots: &[&'a str]) -> Vec<&'a str> {
    source_path(
        snapshots,
        &["HasSnapshot", "SnapshotFailedEarlier"],
        &["RetentionNeeded", "NoSnapshotToRetain"],
        true,
    )
}

fn happy() -> Vec<&'static str> {
    source_path(SNAPSHOTS, COPIES, RETENTION, false)
}

/// The payload the mocks leave after Notify.
fn notified() -> Value {
    json!({
        "runId": "run-1-0", "createdAt": "2026-01-01T00:00:00Z", "sourceClusterId": "aurora-prod",
        "sourceSnapshotId": "dr-aurora-prod-20260101000000", "messageId": "m-1", "targetRegion": "us-west-1",
        "targetSnapshotArn": "arn:aws:rds:us-west-1:111111111111:cluster-snapshot:dr-aurora-prod-20260101000000",
    })
}

#[tokio::test(start_paused = true)]
async fn source_happy_path() {
    let r = run("source", "HappyPath", json!({})).await;
    assert_eq!(r.out.status, Status::Succeeded, "{:?}", r.out);
    // The cluster's payload, with each target region's final payload.
    let cluster = json!({
        "runId": "run-1-0", "createdAt": "2026-01-01T00:00:00Z", "sourceClusterId": "aurora-prod",
        "sourceSnapshotId": "dr-aurora-prod-20260101000000",
        "targetRegions": [{"targetRegion": "us-west-1", "targetAccountId": "222222222222",
                           "kmsKeyArn": "arn:aws:kms:us-west-1:111111111111:key/k"}],
        "copies": {"regions": [notified()], "failed": []},
    });
    assert_eq!(r.out.output, Some(json!({"runId": "run-1", "clusters": [cluster], "failed": []})));
    assert_eq!(path(&r.history()), happy());
    assert!(r.calls.lock().unwrap().is_empty(), "no failure notification on the happy path");
    assert_eq!(elapsed(&r.history()), 0.0);
    // The parent holds its own states and one Map Run per phase; each
    // cluster's states are in the children's histories.
    let parent: Vec<EventType> = r.exec.history().iter().map(|e| e.event_type).collect();
    assert_eq!(parent.iter().filter(|t| **t == EventType::MapRunStarted).count(), 3);
    assert!(
        !parent.contains(&EventType::TaskScheduled) && !parent.contains(&EventType::LambdaFunctionScheduled)
    );
    assert_eq!(r.engine.map_runs(Some(r.exec.arn())).len(), 3);
}

#[tokio::test(start_paused = true)]
async fn source_snapshot_stuck_then_available() {
    let r = run("source", "SnapshotStuckThenAvailable", json!({})).await;
    assert_eq!(r.out.status, Status::Succeeded, "{:?}", r.out);
    let h = r.history();
    // Four polls not ready, each followed by the Wait FetchStatus asked for.
    let again = ["WaitForSourceSnapshot", "SourceSnapshotReady", "NextSourceSnapshotPoll"];
    let at = happy().iter().position(|s| *s == "WaitForSourceSnapshot").expect("in the path");
    let mut want = happy();
    want.splice(at..at, again.iter().copied().cycle().take(4 * again.len()));
    assert_eq!(path(&h), want);
    assert_eq!(attempts(&h, "WaitForSourceSnapshot"), 5);
    // The seconds of each not-ready poll's output (the mock's backoff).
    assert_eq!(elapsed(&h), 20.0 + 30.0 + 45.0 + 60.0);
    // The last poll's output stays in the payload at `poll`, ready.
    let encrypt = h
        .iter()
        .find(|e| {
            e.event_type == EventType::TaskStateEntered && e.details.name.as_deref() == Some("EncryptCopy")
        })
        .and_then(|e| e.details.input.clone())
        .unwrap_or_default();
    assert_eq!(encrypt["poll"]["ready"], true, "{encrypt}");
    assert_eq!(encrypt["poll"]["polls"], 5, "{encrypt}");
}

#[tokio::test(start_paused = true)]
async fn source_copy_quota_exceeded_then_ok() {
    let r = run("source", "CopyQuotaExceededThenOk", json!({})).await;
    assert_eq!(r.out.status, Status::Succeeded, "{:?}", r.out);
    let h = r.history();
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
/// `path` is the whole path; the failed item's run id is `run-1-0`.
async fn source_fails_in(test_case: &str, failed_state: &str, cause: &str, want: Vec<&str>) -> Ran {
    let r = run("source", test_case, json!({})).await;
    assert_eq!(r.out.status, Status::Failed);
    assert_eq!(r.out.error.as_deref(), Some("AccessDenied"));
    let want_cause = format!("1 of 1 cluster run(s) failed; the first, run-1-0, in {failed_state}: {cause}");
    assert_eq!(r.out.cause.as_deref(), Some(want_cause.as_str()));
    let h = r.history();
    assert_eq!(attempts(&h, failed_state), 1, "AccessDenied is fatal: no retry");
    assert_eq!(path(&h), want);
    {
        let calls = r.calls.lock().unwrap();
        let functions: Vec<&str> = calls.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            functions[..2],
            ["aurora-dr-clean-up-snapshot", "aurora-dr-notify-failure"],
            "the clean-up, then one notification"
        );
        assert_eq!(calls[0].1["failure"]["Error"], "AccessDenied");
        let input = &calls[1].1;
        assert_eq!(input["failedState"], failed_state);
        assert_eq!(input["failure"]["Error"], "AccessDenied");
        assert_eq!(input["runId"], "run-1-0");
    }
    r
}

const SHARE_FAILED: &[&str] = &[
    "HasSnapshot",
    "Regions",
    "Region",
    "WaitForSourceSnapshot",
    "SourceSnapshotReady",
    "EncryptCopy",
    "WaitForTargetSnapshot",
    "TargetSnapshotReady",
    "Share",
    "OnShareError",
    "CleanUpCopy",
    "NotifyFailure",
    "ClusterFailed",
    "AnyRegionFailed",
    "RegionFailed",
];

#[tokio::test(start_paused = true)]
async fn source_fatal_error_goes_to_the_failure_branch_and_retention_still_runs() {
    let want = source_path(SNAPSHOTS, SHARE_FAILED, RETENTION, true);
    let r =
        source_fails_in("ShareAccessDenied", "Share", "not authorized to modify snapshot attributes", want)
            .await;
    // A failed copy no longer keeps retention from running: the snapshot was
    // created, and a schedule that keeps failing must not pile them up.
    let retention_input = r
        .history()
        .iter()
        .find(|e| {
            e.event_type == EventType::TaskStateEntered && e.details.name.as_deref() == Some("ApplyRetention")
        })
        .and_then(|e| e.details.input.clone())
        .expect("ApplyRetention ran");
    assert!(retention_input.get("clusterFailure").is_some(), "{retention_input}");
    assert_eq!(r.calls.lock().unwrap().len(), 2, "retention succeeded: nothing more is notified");
}

#[tokio::test(start_paused = true)]
async fn a_retention_failure_after_a_failed_copy_is_notified_and_the_first_failure_reported() {
    let retention = [
        "RetentionNeeded",
        "ApplyRetention",
        "NotifyRetentionFailure",
        "FailedEarlier",
        "KeepEarlierFailure",
    ];
    let want = source_path(SNAPSHOTS, SHARE_FAILED, &retention, true);
    let r = source_fails_in(
        "ShareAccessDeniedThenRetentionFails",
        "Share",
        "not authorized to modify snapshot attributes",
        want,
    )
    .await;
    let calls = r.calls.lock().unwrap();
    assert_eq!(calls.len(), 3, "{calls:?}");
    let notice = &calls[2].1;
    assert_eq!(
        (notice["failedState"].as_str(), notice["runId"].as_str()),
        (Some("ApplyRetention"), Some("run-1-0"))
    );
    assert_eq!(notice["failure"]["Cause"], "not authorized to perform rds:DeleteDBClusterSnapshot");
    let cluster = &r.out.cause;
    assert!(cluster.as_deref().is_some_and(|c| c.contains("in Share")), "the first failure: {cluster:?}");
}

#[tokio::test(start_paused = true)]
async fn source_snapshot_failure_is_cleaned_up_notified_and_skips_the_copy() {
    let snapshots = [
        "Start",
        "MakeRoom",
        "CreateSnapshot",
        "OnCreateSnapshotError",
        "CleanUpSnapshot",
        "NotifySnapshotFailure",
        "SnapshotFailed",
    ];
    let want = snapshot_failed_path(&snapshots);
    source_fails_in("SnapshotAccessDenied", "CreateSnapshot", "not authorized to create a snapshot", want)
        .await;
}

/// RDS refuses the snapshot for the quota: the machine makes room once
/// (MakeRoomAfterQuotaError) and tries again, which succeeds.
#[tokio::test(start_paused = true)]
async fn a_snapshot_refused_for_the_quota_makes_room_and_is_tried_again() {
    let r = run("source", "SnapshotQuotaReachedThenRoomMade", json!({})).await;
    assert_eq!(r.out.status, Status::Succeeded, "{:?}", r.out);
    let snapshots = ["Start", "MakeRoom", "CreateSnapshot", "MakeRoomAfterQuotaError", "CreateSnapshotAgain"];
    assert_eq!(path(&r.history()), source_path(&snapshots, COPIES, RETENTION, false));
    let room = r
        .history()
        .iter()
        .find(|e| {
            e.event_type == EventType::TaskStateEntered
                && e.details.name.as_deref() == Some("MakeRoomAfterQuotaError")
        })
        .and_then(|e| e.details.input.clone())
        .expect("MakeRoomAfterQuotaError ran");
    // The refused payload, untouched (the Catch keeps no error in it): what
    // the Start state made, which CreateSnapshotAgain then takes.
    let mut keys: Vec<&String> = room.as_object().map(|o| o.keys().collect()).unwrap_or_default();
    keys.sort();
    assert_eq!(keys, ["createdAt", "runId"], "{room}");
    assert_eq!(room["runId"], "run-1-0");
    assert!(r.calls.lock().unwrap().is_empty());
}

/// Refused again after making room: the cluster fails once, named by the
/// second try, and nothing loops.
#[tokio::test(start_paused = true)]
async fn a_snapshot_refused_twice_fails_the_cluster_without_looping() {
    let r = run("source", "SnapshotQuotaReachedAndNoRoom", json!({})).await;
    assert_eq!((r.out.status, r.out.error.as_deref()), (Status::Failed, Some("QuotaExceeded")));
    let snapshots = [
        "Start",
        "MakeRoom",
        "CreateSnapshot",
        "MakeRoomAfterQuotaError",
        "CreateSnapshotAgain",
        "OnCreateSnapshotAgainError",
        "CleanUpSnapshot",
        "NotifySnapshotFailure",
        "SnapshotFailed",
    ];
    let want = snapshot_failed_path(&snapshots);
    assert_eq!(path(&r.history()), want);
    let calls = r.calls.lock().unwrap();
    assert_eq!(calls[1].1["failedState"], "CreateSnapshotAgain");
}

/// MakeRoom never decides the run: its error stays in the history and the
/// snapshot is taken as if it had not run.
#[tokio::test(start_paused = true)]
async fn a_failing_make_room_never_stops_the_snapshot() {
    let r = run("source", "MakeRoomFails", json!({})).await;
    assert_eq!(r.out.status, Status::Succeeded, "{:?}", r.out);
    let h = r.history();
    assert_eq!(path(&h), happy());
    assert_eq!(attempts(&h, "MakeRoom"), 1, "AccessDenied is not retried");
    assert!(r.calls.lock().unwrap().is_empty(), "nothing to notify");
}

const TARGET_HAPPY: &[&str] = &[
    "IsRestoreTest",
    "WaitForSharedSnapshot",
    "CopyToOwnAccount",
    "UsesOwnCopy",
    "Restore",
    "WaitForTempCluster",
    "RestoreInstance",
    "WaitForTempInstances",
    "SanityCheck",
    "SwapOrRemoveTestCluster",
    "Swap",
    "WaitForSwappedCluster",
    "WaitForNewEndpoint",
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
    let Ran { exec, out, calls, .. } = run("target", "HappyPath", target_input()).await;
    assert_eq!(out.status, Status::Succeeded, "{out:?}");
    assert_eq!(out.output, Some(json!({"runId": "run-1", "terminated": true})));
    assert_eq!(path(&exec.history()), TARGET_HAPPY);
    assert!(calls.lock().unwrap().is_empty());
}

/// A restore test's path: FindSnapshot, the test cluster restored, waited
/// for and checked, then removed; never a Swap, WaitForNewEndpoint or
/// Terminate.
const RESTORE_TEST: &[&str] = &[
    "IsRestoreTest",
    "FindSnapshot",
    "Restore",
    "WaitForTempCluster",
    "RestoreInstance",
    "WaitForTempInstances",
    "SanityCheck",
    "SwapOrRemoveTestCluster",
    "RemoveTestCluster",
];

#[tokio::test(start_paused = true)]
async fn target_restore_test_removes_its_cluster_and_never_swaps() {
    let Ran { exec, out, calls, .. } =
        run("target", "RestoreTestPasses", json!({"mode": "restore-test"})).await;
    assert_eq!(out.status, Status::Succeeded, "{out:?}");
    assert_eq!(path(&exec.history()), RESTORE_TEST);
    let output = out.output.expect("output");
    assert_eq!(output["restoreTest"]["rpoSeconds"], 3600.0, "{output}");
    assert!(calls.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn target_restore_test_with_a_failing_sanity_check_cleans_up_and_notifies() {
    let r = run("target", "RestoreTestSanityCheckFails", json!({"mode": "restore-test"})).await;
    assert_eq!(r.out.status, Status::Failed, "{:?}", r.out);
    assert_eq!(r.out.error.as_deref(), Some("SanityCheckFailed"));
    let upto = RESTORE_TEST.iter().position(|s| *s == "SanityCheck").expect("SanityCheck") + 1;
    let want = [
        &RESTORE_TEST[..upto],
        &["OnSanityCheckError", "RollBackSwap", "CleanUpTempCluster", "NotifyFailure", "Failed"],
    ]
    .concat();
    assert_eq!(path(&r.history()), want);
    let calls = r.calls.lock().unwrap();
    let names: Vec<&str> = calls.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(calls.iter().all(|(_, input)| input["mode"] == "restore-test"), "{calls:?}");
}

#[tokio::test(start_paused = true)]
async fn target_shared_snapshot_stuck_then_available() {
    let Ran { exec, out, .. } = run("target", "SharedSnapshotStuckThenAvailable", target_input()).await;
    assert_eq!(out.status, Status::Succeeded, "{out:?}");
    let h = exec.history();
    assert_eq!(path(&h), TARGET_HAPPY);
    assert_eq!(attempts(&h, "WaitForSharedSnapshot"), 4);
    assert_eq!(elapsed(&h), 20.0 + 30.0 + 45.0);
}

#[tokio::test(start_paused = true)]
async fn target_throttled_restore_then_ok() {
    let Ran { exec, out, .. } = run("target", "RestoreQuotaThrottledThenOk", target_input()).await;
    assert_eq!(out.status, Status::Succeeded, "{out:?}");
    assert_eq!(attempts(&exec.history(), "Restore"), 3);
}

#[tokio::test(start_paused = true)]
async fn target_swap_failure_rolls_back_cleans_up_and_fails() {
    let Ran { exec, out, calls, .. } = run("target", "SwapFails", target_input()).await;
    assert_eq!(out.status, Status::Failed);
    assert_eq!(out.error.as_deref(), Some("ResourceFailed"));
    assert_eq!(path(&exec.history()), target_failed_after("Swap", "OnSwapError"));
    failure_path_called(&calls.lock().unwrap(), "Swap", "ResourceFailed");
}

/// The failure path's functions were called in order (RollBackSwap,
/// CleanUpTempCluster, NotifyFailure; nothing else), each told which state
/// failed with which error.
fn failure_path_called(calls: &[(String, Value)], state: &str, error: &str) {
    let functions: Vec<&str> = calls.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        functions,
        ["aurora-dr-roll-back-swap", "aurora-dr-clean-up-temp-cluster", "aurora-dr-notify-failure"]
    );
    for (_, input) in calls {
        assert_eq!(input["failedState"], state);
        assert_eq!(input["failure"]["Error"], error);
    }
}

#[tokio::test(start_paused = true)]
async fn target_endpoint_never_reaching_the_new_cluster_times_out_and_never_terminates() {
    let Ran { exec, out, calls, .. } = run("target", "NewEndpointNeverMoves", target_input()).await;
    assert_eq!(out.status, Status::Failed);
    assert_eq!(out.error.as_deref(), Some("Timeout"));
    assert!(
        out.cause.as_deref().is_some_and(|c| c.contains("WaitForNewEndpoint gave up")
            && c.contains("still reaching cluster resource cluster-OLD")),
        "{out:?}"
    );
    let h = exec.history();
    let upto = TARGET_HAPPY.iter().position(|s| *s == "WaitForNewEndpoint").expect("state") + 1;
    let want = [
        &TARGET_HAPPY[..upto],
        &[
            "WaitForNewEndpointTimedOut",
            "OnWaitForNewEndpointError",
            "RollBackSwap",
            "CleanUpTempCluster",
            "NotifyFailure",
            "Failed",
        ],
    ]
    .concat();
    assert_eq!(path(&h), want);
    // The bound: the first try and 39 retries, 20 s growing by 1.5 up to 45 s.
    assert_eq!(attempts(&h, "WaitForNewEndpoint"), 40);
    assert_eq!(elapsed(&h), 20.0 + 30.0 + 37.0 * 45.0);
    // The swap is rolled back; Terminate never deletes the previous cluster.
    failure_path_called(&calls.lock().unwrap(), "WaitForNewEndpoint", "Timeout");
}

#[tokio::test(start_paused = true)]
async fn target_sanity_check_failure_never_swaps_and_never_terminates() {
    let Ran { exec, out, calls, .. } = run("target", "SanityCheckFails", target_input()).await;
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
    // RollBackSwap (nothing swapped: a no-op), CleanUpTempCluster,
    // NotifyFailure; no Swap, no Terminate.
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
    let Ran { exec, out, calls, .. } =
        run("target", "SanityCheckUnreachableOnceThenPasses", target_input()).await;
    assert_eq!(out.status, Status::Succeeded, "{out:?}");
    let h = exec.history();
    assert_eq!(path(&h), TARGET_HAPPY);
    // Tried once more after 30 s (a new cluster's endpoint may not answer yet).
    assert_eq!(attempts(&h, "SanityCheck"), 2);
    assert_eq!(elapsed(&h), 30.0);
    // ResultPath null: the report does not replace the payload Terminate gets
    // (the Swap mock's output, passed through WaitForSwappedCluster).
    // SanityCheck runs before Swap.
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
    let r = run("source", "RetentionFails", json!({})).await;
    assert_eq!(r.out.status, Status::Failed);
    assert_eq!(r.out.error.as_deref(), Some("AccessDenied"));
    let h = r.history();
    let retention =
        ["RetentionNeeded", "ApplyRetention", "NotifyRetentionFailure", "FailedEarlier", "RetentionFailed"];
    assert_eq!(path(&h), source_path(SNAPSHOTS, COPIES, &retention, true));
    assert_eq!(attempts(&h, "ApplyRetention"), 1, "AccessDenied is fatal: no retry");
    let calls = r.calls.lock().unwrap();
    assert_eq!(calls.len(), 1, "one failure notification: {calls:?}");
    assert_eq!(calls[0].1["failedState"], "ApplyRetention");
    assert_eq!(calls[0].1["sourceSnapshotId"], "dr-aurora-prod-20260101000000");
    let want = "1 of 1 cluster run(s) failed; the first, run-1-0, in ApplyRetention: not authorized to perform rds:DeleteDBClusterSnapshot";
    assert_eq!(r.out.cause.as_deref(), Some(want));
}

#[tokio::test(start_paused = true)]
async fn target_with_an_own_copy_waits_for_it_then_restores() {
    let Ran { exec, out, calls, .. } = run("target", "OwnCopy", target_input()).await;
    assert_eq!(out.status, Status::Succeeded, "{out:?}");
    let h = exec.history();
    let mut want = TARGET_HAPPY.to_vec();
    let again = ["WaitForOwnCopy", "OwnCopyReady", "NextOwnCopyPoll"];
    let polls: Vec<&str> = again.iter().copied().cycle().take(2 * again.len()).collect();
    want.splice(4..4, polls.into_iter().chain(["WaitForOwnCopy", "OwnCopyReady"]));
    assert_eq!(path(&h), want);
    assert_eq!(attempts(&h, "WaitForOwnCopy"), 3);
    assert_eq!(elapsed(&h), 30.0 + 45.0);
    // WaitForOwnCopy writes only `poll` (ResultPath $.poll): Restore gets the own copy.
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
    let Ran { exec, out, calls, .. } = run("target", "RetentionFails", target_input()).await;
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
/// What the source machine did with 12 clusters (`c00`..`c11`), each
/// snapshot ready a minute after it starts and each copy a minute long,
/// copying to `regions` (region, account), with Share refused for `c03` in
/// `failing_region` (`AccessDenied`, "not authorized to share c03{suffix}").
struct FanOut {
    exec: aurora_dr_asl::Execution,
    out: aurora_dr_asl::Outcome,
    /// The most copies in flight at once, per destination region.
    peaks: HashMap<String, usize>,
    /// (function, input) of every notify and notify-failure call.
    notified: Vec<(String, Value)>,
    /// The run's report, as the Fail state sees it.
    report: Value,
}

async fn fan_out(regions: &[(&str, &str)], failing_region: &str, suffix: &str) -> FanOut {
    let (def, _) = load("source");
    // Copies in flight per destination region: (now, max).
    let in_flight: Arc<Mutex<HashMap<String, (usize, usize)>>> = Arc::default();
    let notified: Calls = Arc::default();
    let mut tasks = TaskRegistry::new();
    // When each snapshot is available (virtual time), by snapshot id.
    let ready: Arc<Mutex<HashMap<String, tokio::time::Instant>>> = Arc::default();
    let minute = std::time::Duration::from_secs(60);
    let started = ready.clone();
    let target_regions: Vec<Value> = regions
        .iter()
        .map(|(region, account)| {
            json!({"targetRegion": region, "targetAccountId": account,
                   "kmsKeyArn": format!("arn:aws:kms:{region}:111111111111:key/{region}")})
        })
        .collect();
    tasks.register(task("create-snapshot"), move |mut input: Value| {
        let started = started.clone();
        let target_regions = target_regions.clone();
        async move {
            let snapshot =
                format!("aurora-dr-{}-20260101000000", input["sourceClusterId"].as_str().unwrap_or_default());
            started.lock().unwrap().insert(snapshot.clone(), tokio::time::Instant::now() + minute);
            input["sourceSnapshotId"] = snapshot.into();
            input["targetRegions"] = target_regions.into();
            Ok(input)
        }
    });
    tasks.register(task("apply-retention"), |_input: Value| async { Ok(json!({})) });
    let flight = in_flight.clone();
    tasks.register(task("encrypt-copy"), move |mut input: Value| {
        let flight = flight.clone();
        async move {
            let mut all = flight.lock().unwrap();
            let f = all.entry(input["targetRegion"].as_str().unwrap_or_default().to_owned()).or_default();
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
                let region = input["run"]["targetRegion"].as_str().unwrap_or_default();
                flight.lock().unwrap().get_mut(region).expect("a copy in flight").0 -= 1;
            } else {
                let id = input["run"]["sourceSnapshotId"].as_str().unwrap_or_default();
                let at = ready.lock().unwrap().get(id).copied().expect("a started snapshot");
                tokio::time::sleep_until(at).await;
            }
            Ok(json!({"status": "available"}))
        }
    });
    let (failing_region, suffix) = (failing_region.to_owned(), suffix.to_owned());
    tasks.register(task("share"), move |input: Value| {
        let refused = input["sourceClusterId"] == "c03" && input["targetRegion"] == failing_region.as_str();
        let message = format!("not authorized to share c03{suffix}");
        async move {
            if refused {
                return Err(aurora_dr_asl::TaskError::new("AccessDenied", &message));
            }
            Ok(input)
        }
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
    let peaks = in_flight.lock().unwrap().iter().map(|(region, (_, max))| (region.clone(), *max)).collect();
    let notified = notified.lock().unwrap().clone();
    let report = exec
        .history()
        .iter()
        .find(|e| e.event_type == EventType::FailStateEntered)
        .and_then(|e| e.details.input.clone())
        .expect("the Fail state sees the report");
    FanOut { exec, out, peaks, notified, report }
}

#[tokio::test(start_paused = true)]
async fn source_fans_out_five_at_a_time_and_one_failure_does_not_stop_the_others() {
    let FanOut { exec, out, peaks, notified, report } =
        fan_out(&[("us-west-1", "222222222222")], "us-west-1", "").await;
    assert_eq!(out.status, Status::Failed);
    assert_eq!(out.error.as_deref(), Some("AccessDenied"));
    assert_eq!(
        out.cause.as_deref(),
        Some("1 of 12 cluster run(s) failed; the first, run-1-3, in Share: not authorized to share c03")
    );
    assert_eq!(peaks["us-west-1"], 5, "MaxConcurrency 5 bounds the copies in flight");
    let h = exec.history();
    assert_eq!(elapsed(&h), 60.0 * (1.0 + 3.0), "all snapshots at once, then three rounds of five copies");
    let reported = report["clusters"].as_array().expect("clusters");
    assert_eq!(reported.len(), 12, "every cluster is reported, in input order");
    for (i, c) in reported.iter().enumerate() {
        assert_eq!(c["sourceClusterId"], format!("c{i:02}"));
        assert_eq!(c["runId"], format!("run-1-{i}"), "each item's own run id");
        assert_eq!(c["createdAt"], reported[0]["createdAt"], "one start time names every snapshot");
        assert_eq!(c.get("clusterFailure").is_some(), i == 3, "{c}");
    }
    assert_eq!(reported[3]["clusterFailure"]["failedState"], "Share");
    assert_eq!(reported[3]["copies"]["regions"][0]["failure"]["Error"], "AccessDenied");
    assert_eq!(report["failed"].as_array().map(Vec::len), Some(1));
    assert_eq!(report["failed"][0]["runId"], "run-1-3");
    assert_eq!(report["failed"][0]["failedState"], "Share");
    assert_eq!(report["failed"][0]["failure"]["Error"], "AccessDenied");
    let by = |function: &str| -> Vec<&Value> {
        notified.iter().filter(|(f, _)| f == function).map(|(_, v)| v).collect()
    };
    assert_eq!(by("notify").len(), 11, "eleven target notifications");
    let failures = by("notify-failure");
    assert_eq!(failures.len(), 1, "one failure notification");
    assert_eq!(failures[0]["sourceClusterId"], "c03");
    assert!(by("notify").iter().all(|v| v.get("failure").is_none()), "Notify never gets a failure");
}

/// Two target regions: each cluster's Regions Map copies into both side by
/// side, at most 5 copies in flight per destination region (the Copies
/// Map's bound, one copy per cluster and region), and a Share that fails in
/// one region of one cluster is notified there while that cluster's other
/// region and every other cluster finish.
#[tokio::test(start_paused = true)]
async fn each_target_region_copies_five_at_a_time_and_a_failing_region_does_not_stop_the_others() {
    let regions = [("us-west-1", "222222222222"), ("eu-west-1", "333333333333")];
    let FanOut { exec, out, peaks, notified, report } = fan_out(&regions, "eu-west-1", " in eu-west-1").await;
    assert_eq!(out.status, Status::Failed);
    assert_eq!(out.error.as_deref(), Some("AccessDenied"));
    assert_eq!(
        out.cause.as_deref(),
        Some(
            "1 of 12 cluster run(s) failed; the first, run-1-3, in Share: not authorized to share c03 in eu-west-1"
        )
    );
    assert_eq!(
        peaks,
        HashMap::from([("us-west-1".to_owned(), 5), ("eu-west-1".to_owned(), 5)]),
        "at most 5 copies in flight to each destination region"
    );
    let h = exec.history();
    assert_eq!(elapsed(&h), 60.0 * (1.0 + 3.0), "the regions copy side by side: no longer than one region");
    let reported = report["clusters"].as_array().expect("clusters");
    assert_eq!(reported.len(), 12);
    for (i, c) in reported.iter().enumerate() {
        let regions = c["copies"]["regions"].as_array().expect("regions");
        let by_region: Vec<(&str, bool)> = regions
            .iter()
            .map(|r| (r["targetRegion"].as_str().unwrap_or_default(), r.get("failure").is_some()))
            .collect();
        assert_eq!(by_region, [("us-west-1", false), ("eu-west-1", i == 3)], "{c}");
        assert_eq!(c.get("clusterFailure").is_some(), i == 3, "{c}");
    }
    assert_eq!(reported[3]["clusterFailure"]["targetRegion"], "eu-west-1");
    assert_eq!(report["failed"].as_array().map(Vec::len), Some(1));
    let by = |function: &str| -> Vec<&Value> {
        notified.iter().filter(|(f, _)| f == function).map(|(_, v)| v).collect()
    };
    let notes = by("notify");
    assert_eq!(notes.len(), 23, "every region of every cluster but c03's eu-west-1 is notified");
    assert!(
        notes.iter().any(|v| v["sourceClusterId"] == "c03" && v["targetRegion"] == "us-west-1"),
        "c03's other region went on"
    );
    let failures = by("notify-failure");
    assert_eq!(failures.len(), 1, "one failure notification");
    assert_eq!(
        (failures[0]["sourceClusterId"].as_str(), failures[0]["targetRegion"].as_str()),
        (Some("c03"), Some("eu-west-1"))
    );
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

/// Polls of the source snapshot before it is available: about an hour of
/// WaitForSourceSnapshot's backoff without a progress figure (20 s, x1.5,
/// at most 60 s apart; its bound is 8 hours).
const SNAPSHOT_POLLS: usize = 60;
/// Polls of the copy before it is available: about 7 hours of
/// WaitForTargetSnapshot's backoff without a progress figure (30 s, x1.5,
/// at most 180 s apart; its bound is 12 hours). With PercentProgress
/// moving, the same waits take about ten polls each.
const COPY_POLLS: usize = 140;

/// What a fleet run on recording handlers left: every execution's history
/// length, and the most copies in flight at once.
struct FleetRun {
    status: Status,
    parent: usize,
    /// (Map state of the child's Map Run, history length) per child execution.
    children: Vec<(String, usize)>,
    peak_copies: usize,
    polls: usize,
}

impl FleetRun {
    fn largest(&self) -> usize {
        self.children.iter().map(|(_, n)| *n).chain([self.parent]).max().unwrap_or(0)
    }
}

/// `n` clusters through `definition` (the source machine) with every Task
/// bound by the table to a recording handler: each source snapshot answers
/// ResourceNotReady `SNAPSHOT_POLLS` times and each copy `COPY_POLLS` times
/// before it is available: hours-long waits. Retry intervals
/// are scaled by 0.01 on paused time (so 100 clusters' five-at-a-time copies
/// fit in the machine's 24-hour bound, which stays real); the poll counts,
/// and so the histories, are those of hours-long waits.
async fn fleet_run(definition: Definition, n: usize) -> FleetRun {
    let copies = Arc::new(Mutex::new((0usize, 0usize))); // (in flight, most)
    let polls: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let mut tasks = TaskRegistry::new();
    for f in FUNCTIONS.iter().filter(|f| f.on(Side::Source)) {
        let name = task(f.name);
        let (copies, polls) = (copies.clone(), polls.clone());
        let function = f.name;
        tasks.register(name, move |mut input: Value| {
            let (copies, polls) = (copies.clone(), polls.clone());
            async move {
                match function {
                    "create-snapshot" => {
                        let cluster = input["sourceClusterId"].as_str().unwrap_or_default().to_owned();
                        input["sourceSnapshotId"] = format!("aurora-dr-{cluster}-20260101000000").into();
                        input["targetRegions"] = json!([{"targetRegion": "us-west-1",
                            "targetAccountId": "222222222222", "kmsKeyArn": "arn:aws:kms:us-west-1:111111111111:key/k"}]);
                    }
                    "encrypt-copy" => {
                        let mut c = copies.lock().unwrap();
                        c.0 += 1;
                        c.1 = c.1.max(c.0);
                    }
                    "fetch-status" => {
                        let what = input["waitFor"].as_str().unwrap_or_default().to_owned();
                        let cluster = input["run"]["sourceClusterId"].as_str().unwrap_or_default();
                        let key = format!("{cluster}/{what}");
                        let mut p = polls.lock().unwrap();
                        let seen = p.entry(key).or_insert(0);
                        *seen += 1;
                        let ready = if what == "targetSnapshot" { COPY_POLLS } else { SNAPSHOT_POLLS };
                        if *seen <= ready {
                            // No progress figure, the most polls a wait makes:
                            // FetchStatus's backoff from the state's `predict`.
                            let schedule: Schedule =
                                serde_json::from_value(input["predict"].clone()).expect("a predicted wait");
                            let prev = serde_json::from_value::<Poll>(input["run"]["poll"].clone())
                                .ok()
                                .filter(|p| p.continues(&what));
                            let waited = prev.as_ref().map(Poll::waited_at_next).unwrap_or(0);
                            let poll::Next::Wait { seconds, .. } =
                                poll::next(&schedule, prev.as_ref(), waited, None)
                            else {
                                return Err(aurora_dr_asl::TaskError::new("ResourceNotReady", "bound"));
                            };
                            let polls = *seen;
                            return Ok(json!({"waitFor": what, "ready": false, "seconds": seconds,
                                "waited": waited, "polls": polls}));
                        }
                        if what == "targetSnapshot" {
                            copies.lock().unwrap().0 -= 1;
                        }
                        return Ok(json!({"waitFor": what, "ready": true, "status": "available"}));
                    }
                    _ => {}
                }
                Ok(input)
            }
        });
    }
    let clock = Clock::scaled(0.01).expect("scale").with_real_timeouts();
    let engine = Engine::new(clock);
    engine.register(StateMachineSpec::new("aurora-dr-source", definition).tasks(tasks)).unwrap();
    let clusters: Vec<Value> = (0..n).map(|i| json!({"sourceClusterId": format!("c{i:03}")})).collect();
    let exec = engine
        .start("aurora-dr-source", json!({"clusters": clusters}), StartOptions::named("nightly"))
        .unwrap();
    let status = exec.wait().await.status;
    let mut children = Vec::new();
    let mut map_state = String::new();
    for event in exec.history() {
        if event.event_type == EventType::MapStateEntered {
            map_state = event.details.name.clone().unwrap_or_default();
        }
        if let Some(run) = &event.details.map_run_arn {
            for child in engine.map_run_executions(run) {
                children.push((map_state.clone(), child.history().len()));
            }
        }
    }
    let polls = polls.lock().unwrap().values().sum();
    let peak_copies = copies.lock().unwrap().1;
    FleetRun { status, parent: exec.history().len(), children, peak_copies, polls }
}

/// A fleet of 100 clusters with hours-long waits through the source machine
/// as written: its Distributed Maps keep each cluster's polling in child
/// executions, so no history comes near the 25,000-event quota ("Step
/// Functions service quotas"), and the Copies Map Run never has more than
/// the 5 copies the destination region allows in flight.
#[tokio::test(start_paused = true)]
async fn a_fleet_of_100_with_realistic_polling_keeps_every_history_under_the_quota() {
    let (definition, _) = load("source");
    let run = fleet_run(definition, 100).await;
    assert_eq!(run.status, Status::Succeeded);
    assert_eq!(run.children.len(), 300, "one child execution per cluster and Map");
    assert_eq!(run.polls, 100 * (SNAPSHOT_POLLS + 1 + COPY_POLLS + 1), "every wait polled to its answer");
    // Each copy child holds its cluster's 200 polls (9 events each: the
    // Task's 5, the Choice's 2, the Wait's 2)...
    let copies: Vec<usize> = run.children.iter().filter(|(m, _)| m == "Copies").map(|(_, n)| *n).collect();
    assert_eq!(copies.len(), 100);
    assert!(copies.iter().all(|n| *n > 9 * (SNAPSHOT_POLLS + COPY_POLLS)), "{copies:?}");
    // ...the parent none of them.
    assert!(run.parent < 100, "parent history {}", run.parent);
    assert!(run.largest() < aurora_dr_asl::limits::HISTORY_EVENTS / 10, "largest history {}", run.largest());
    assert_eq!(run.peak_copies, 5, "at most five copies in flight, and the Map Run used all five");
    println!(
        "100 clusters, Distributed Maps: largest history {} events (parent {}, {} child executions)",
        run.largest(),
        run.parent,
        run.children.len()
    );
}

/// The largest history of fleets of 12, 50 and 100 clusters with realistic
/// polling, before (Inline Maps: one history) and after (Distributed Maps:
/// a child execution per cluster and phase). Inline, 50 clusters already
/// reach the quota; Distributed, the largest history does not grow with the
/// fleet.
#[tokio::test(start_paused = true)]
async fn history_sizes_of_12_50_and_100_clusters_before_and_after() {
    let (definition, _) = load("source");
    let mut rows = Vec::new();
    for n in [12, 50, 100] {
        let inline = fleet_run(inline_source(), n).await;
        let distributed = fleet_run(definition.clone(), n).await;
        assert_eq!(distributed.status, Status::Succeeded, "{n} clusters");
        assert!(distributed.largest() < 2_500, "{n} clusters: largest history {}", distributed.largest());
        assert_eq!(inline.status == Status::Succeeded, n == 12, "{n} clusters inline: {:?}", inline.status);
        rows.push(format!(
            "| {n} | {} ({}) | {} (parent {}, {} children) |",
            inline.parent,
            if inline.status == Status::Succeeded { "succeeded" } else { "failed at the quota" },
            distributed.largest(),
            distributed.parent,
            distributed.children.len()
        ));
    }
    println!(
        "| clusters | Inline Maps: history | Distributed Maps: largest history |\n|---|---|---|\n{}",
        rows.join("\n")
    );
}

/// The source machine with its Maps switched to Inline mode: every
/// cluster's states in the one execution's history, as before the Maps
/// became Distributed.
fn inline_source() -> Definition {
    let text = std::fs::read_to_string(root().join("../statemachines/source.asl.json")).unwrap();
    let mut value: Value = serde_json::from_str(&text).unwrap();
    let states = value["States"].as_object_mut().unwrap();
    for state in states.values_mut().filter(|s| s["Type"] == "Map") {
        state["ItemProcessor"]["ProcessorConfig"] = json!({"Mode": "INLINE"});
    }
    parse(&value.to_string(), "source (inline)")
}

/// The same fleet through Inline Maps: a dozen clusters fit in the one
/// history, but 100 with hours-long waits reach the 25,000-event quota and
/// the run fails there, as "Avoid reaching the history quota" warns. The
/// reason the Maps are Distributed.
#[tokio::test(start_paused = true)]
async fn the_same_fleet_in_inline_maps_would_reach_the_history_quota() {
    let dozen = fleet_run(inline_source(), 12).await;
    assert_eq!(dozen.status, Status::Succeeded);
    assert!(dozen.children.is_empty());
    let hundred = fleet_run(inline_source(), 100).await;
    assert_eq!(hundred.status, Status::Failed);
    assert_eq!(hundred.parent, aurora_dr_asl::limits::HISTORY_EVENTS);
    println!(
        "Inline Maps: 12 clusters {} events in one history; 100 clusters failed at {} events",
        dozen.parent, hundred.parent
    );
}

/// A callback wait that no RDS event and no check ever completes:
/// FetchStatus arms it (answers without sending the token) every time, each
/// attempt times out after its 300 s, and the States.Timeout retries (12,
/// 1 s apart) bound it near an hour; then the named Timeout takes the
/// failure path with the swap rolled back.
#[tokio::test(start_paused = true)]
async fn target_swapped_cluster_wait_never_completed_times_out_after_its_bound() {
    let (def, mocks) = load("target");
    let calls: Calls = Arc::default();
    let mut tasks = TaskRegistry::new();
    for f in FUNCTIONS.iter().filter(|f| f.input == InputKind::FailurePath || f.name == "fetch-status") {
        let c = calls.clone();
        let name = task(f.name);
        let arms = f.name == "fetch-status";
        tasks.register(name.clone(), move |input: Value| {
            c.lock().unwrap().push((name.clone(), input.clone()));
            async move {
                if arms {
                    assert!(input["taskToken"].as_str().is_some_and(|t| !t.is_empty()), "{input}");
                    Ok(json!({"watching": ["cluster:orders-dr"], "outcome": "waiting"}))
                } else {
                    Ok(input)
                }
            }
        });
    }
    let engine = Engine::new(Clock::real());
    engine
        .register(StateMachineSpec::new("aurora-dr-target", def).tasks(tasks).mocks(Arc::new(mocks)))
        .unwrap();
    let exec = engine
        .start(
            "aurora-dr-target",
            target_input(),
            StartOptions::named("run-1").test_case("SwappedClusterNeverAnswers"),
        )
        .unwrap();
    let out = exec.wait().await;
    assert_eq!(out.status, Status::Failed, "{out:?}");
    assert_eq!(out.error.as_deref(), Some("Timeout"));
    assert!(out.cause.as_deref().is_some_and(|c| c.contains("WaitForSwappedCluster gave up")), "{out:?}");
    let h = exec.history();
    let upto = TARGET_HAPPY.iter().position(|s| *s == "WaitForSwappedCluster").expect("state") + 1;
    let want = [
        &TARGET_HAPPY[..upto],
        &[
            "WaitForSwappedClusterTimedOut",
            "OnWaitForSwappedClusterError",
            "RollBackSwap",
            "CleanUpTempCluster",
            "NotifyFailure",
            "Failed",
        ],
    ]
    .concat();
    assert_eq!(path(&h), want);
    let arms = calls.lock().unwrap().iter().filter(|(f, _)| f == "aurora-dr-fetch-status").count();
    assert_eq!(arms, 13, "the first try and 12 States.Timeout retries");
    assert_eq!(elapsed(&h), 13.0 * 300.0 + 12.0 * 1.0);
    failure_path_called(
        &calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(f, _)| f != "aurora-dr-fetch-status")
            .cloned()
            .collect::<Vec<_>>(),
        "WaitForSwappedCluster",
        "Timeout",
    );
}
