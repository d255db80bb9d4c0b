//! Distributed Map ("Using Map state in Distributed mode", "Tolerated failure
//! threshold for Distributed Map state", AWS Step Functions Developer Guide):
//! child executions with their own history and context object, Map Runs,
//! MaxConcurrency across children, tolerated failures, the output.

use aurora_dr_asl::{
    Clock, Definition, Engine, EventType, Execution, MapRunStatus, MockConfig, StartOptions,
    StateMachineSpec, Status, TaskError, TaskRegistry,
};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WORK: &str = "arn:aws:lambda:us-east-1:123456789012:function:work";

/// A Distributed Map over `$.items` whose children run the `work` task;
/// `extra` adds state fields (MaxConcurrency, Tolerated..., Catch...); a
/// null value removes one.
fn machine(extra: Value) -> Definition {
    let mut map = json!({"Type": "Map", "ItemsPath": "$.items", "End": true,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": WORK, "End": true}}}});
    if let (Value::Object(m), Value::Object(e)) = (&mut map, extra) {
        m.extend(e);
        m.retain(|_, v| !v.is_null());
    }
    // With a Catch to "Caught", that state is reachable; otherwise leave it out.
    Definition::from_value(
        json!({"StartAt": "Fleet", "States": {"Fleet": map, "Caught": {"Type": "Pass", "End": true}}}),
    )
    .or_else(|_| Definition::from_value(json!({"StartAt": "Fleet", "States": {"Fleet": map}})))
    .expect("valid definition")
}

/// Calls in flight now and at most, plus every input seen.
#[derive(Default)]
struct Gauge {
    now: usize,
    peak: usize,
    inputs: Vec<Value>,
}

/// `work`: takes `seconds` of (paused) time; fails `Bad` for `{"bad": true}`,
/// returns `{"done": <id>}` otherwise.
fn work(gauge: Arc<Mutex<Gauge>>, seconds: u64) -> TaskRegistry {
    TaskRegistry::new().with("work", move |input: Value| {
        let g = gauge.clone();
        async move {
            {
                let mut s = g.lock().unwrap();
                s.now += 1;
                s.peak = s.peak.max(s.now);
                s.inputs.push(input.clone());
            }
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            g.lock().unwrap().now -= 1;
            if input["bad"] == json!(true) {
                return Err(TaskError::new("Bad", format!("item {} is bad", input["id"])));
            }
            Ok(json!({"done": input["id"]}))
        }
    })
}

fn items(n: usize, bad: &[usize]) -> Value {
    let items: Vec<Value> = (0..n).map(|i| json!({"id": i, "bad": bad.contains(&i)})).collect();
    json!({ "items": items })
}

fn engine(def: Definition, tasks: TaskRegistry) -> Engine {
    let engine = Engine::new(Clock::real());
    engine.register(StateMachineSpec::new("fleet", def).tasks(tasks)).unwrap();
    engine
}

fn types(e: &Execution) -> Vec<EventType> {
    e.history().iter().map(|ev| ev.event_type).collect()
}

#[tokio::test(start_paused = true)]
async fn each_item_runs_as_a_child_execution_with_its_own_history() {
    let gauge = Arc::new(Mutex::new(Gauge::default()));
    let def = machine(json!({"Label": "clusters"}));
    let engine = engine(def, work(gauge.clone(), 1));
    let parent = engine.start("fleet", items(3, &[]), StartOptions::named("run-1")).unwrap();
    let out = parent.wait().await;
    assert_eq!(out.status, Status::Succeeded, "{out:?}");
    assert_eq!(out.output, Some(json!([{"done": 0}, {"done": 1}, {"done": 2}])), "item order");
    use EventType::*;
    assert_eq!(
        types(&parent),
        vec![
            ExecutionStarted,
            MapStateEntered,
            MapRunStarted,
            MapRunSucceeded,
            MapStateExited,
            ExecutionSucceeded
        ]
    );
    let runs = engine.map_runs(Some(parent.arn()));
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert!(
        run.arn.starts_with("arn:aws:states:us-east-1:123456789012:mapRun:fleet/clusters:"),
        "{}",
        run.arn
    );
    let started = parent.history().into_iter().find(|e| e.event_type == MapRunStarted).unwrap();
    assert_eq!(started.details.map_run_arn.as_deref(), Some(run.arn.as_str()));
    assert_eq!(run.status(), MapRunStatus::Succeeded);
    assert_eq!((run.counts().total, run.counts().succeeded, run.counts().pending), (3, 3, 0));
    let children = engine.map_run_executions(&run.arn);
    assert_eq!(children.len(), 3);
    for child in &children {
        assert!(child.arn().starts_with("arn:aws:states:us-east-1:123456789012:execution:fleet/clusters:"));
        assert_eq!(child.map_run_arn(), Some(run.arn.as_str()));
        assert_eq!(child.state_machine().arn, run.state_machine_arn);
        assert_eq!(
            types(child),
            vec![
                ExecutionStarted,
                TaskStateEntered,
                LambdaFunctionScheduled,
                LambdaFunctionStarted,
                LambdaFunctionSucceeded,
                TaskStateExited,
                ExecutionSucceeded
            ]
        );
    }
    // Children are not executions of the parent's state machine.
    assert_eq!(engine.executions(Some(&parent.state_machine().arn)).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn children_have_their_own_context_object_and_item_selector_sees_the_item() {
    let def = Definition::from_value(json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true,
        "ItemsPath": "$.xs",
        "ItemSelector": {"value.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index", "batch.$": "$.batch"},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, "StartAt": "Ctx",
            "States": {"Ctx": {"Type": "Pass", "End": true, "Parameters": {
                "item.$": "$", "id.$": "$$.Execution.Id", "name.$": "$$.Execution.Name",
                "input.$": "$$.Execution.Input", "machine.$": "$$.StateMachine.Id"}}}}}}}))
    .unwrap();
    let engine = engine(def, TaskRegistry::new());
    let parent =
        engine.start("fleet", json!({"xs": ["a", "b"], "batch": 7}), StartOptions::named("p")).unwrap();
    let out = parent.wait().await.output.unwrap();
    let children = engine.map_run_executions(&engine.map_runs(Some(parent.arn()))[0].arn);
    for (i, v) in out.as_array().unwrap().iter().enumerate() {
        let letter = ["a", "b"][i];
        let want_item = json!({"value": letter, "index": i, "batch": 7});
        assert_eq!(v["item"], want_item);
        assert_eq!(v["input"], want_item, "the child's execution input is its item");
        let child = children.iter().find(|c| c.arn() == v["id"]).expect("the context names the child itself");
        assert_eq!(v["name"], json!(child.name()));
        assert_eq!(v["machine"], json!(child.state_machine().arn));
    }
}

// The copy quota lesson: MaxConcurrency bounds the children running at once,
// so a shared limit (5 copies per destination region) holds across them.
#[tokio::test(start_paused = true)]
async fn max_concurrency_bounds_the_children_running_at_once() {
    for (limit, want) in [(5, 5), (0, 50)] {
        let gauge = Arc::new(Mutex::new(Gauge::default()));
        let engine = engine(machine(json!({"MaxConcurrency": limit})), work(gauge.clone(), 60));
        let t0 = tokio::time::Instant::now();
        let out = engine.start("fleet", items(50, &[]), StartOptions::default()).unwrap().wait().await;
        assert_eq!(out.status, Status::Succeeded);
        assert_eq!(gauge.lock().unwrap().peak, want, "MaxConcurrency {limit}");
        assert_eq!(t0.elapsed(), Duration::from_secs(60 * (50 / want as u64)));
    }
}

// "Tolerated failure threshold": the default is 0%, so one failed child fails
// the Map Run with States.ExceedToleratedFailureThreshold, which Catch can catch.
#[tokio::test(start_paused = true)]
async fn without_a_threshold_one_failed_child_fails_the_map_run() {
    let gauge = Arc::new(Mutex::new(Gauge::default()));
    let def = machine(json!({"MaxConcurrency": 1, "End": null, "Next": "Caught",
        "Catch": [{"ErrorEquals": ["States.ExceedToleratedFailureThreshold"], "ResultPath": "$.error", "Next": "Caught"}]}));
    let engine = engine(def, work(gauge.clone(), 1));
    let parent = engine.start("fleet", items(5, &[1]), StartOptions::default()).unwrap();
    let out = parent.wait().await;
    assert_eq!(out.status, Status::Succeeded, "{out:?}");
    let caught = out.output.unwrap();
    assert_eq!(caught["error"]["Error"], "States.ExceedToleratedFailureThreshold");
    let failed = parent.history().into_iter().find(|e| e.event_type == EventType::MapRunFailed).unwrap();
    assert_eq!(failed.details.error.as_deref(), Some("States.ExceedToleratedFailureThreshold"));
    let run = &engine.map_runs(Some(parent.arn()))[0];
    assert_eq!(run.status(), MapRunStatus::Failed);
    let c = run.counts();
    assert_eq!((c.succeeded, c.failed, c.pending), (1, 1, 3), "one at a time: the rest never started");
    assert_eq!(gauge.lock().unwrap().inputs.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn tolerated_failure_count_allows_that_many_failures() {
    let gauge = Arc::new(Mutex::new(Gauge::default()));
    let engine = engine(machine(json!({"ToleratedFailureCount": 2})), work(gauge, 1));
    let parent = engine.start("fleet", items(10, &[3, 7]), StartOptions::default()).unwrap();
    let out = parent.wait().await;
    assert_eq!(out.status, Status::Succeeded, "{out:?}");
    let results = out.output.unwrap();
    assert_eq!(results[0], json!({"done": 0}));
    let failed = &results[3];
    assert_eq!(failed["Status"], "FAILED");
    assert_eq!(failed["Error"], "Bad");
    assert_eq!(failed["Cause"], "item 3 is bad");
    assert_eq!(failed["Input"], json!(json!({"id": 3, "bad": true}).to_string()));
    let child = engine.execution(failed["ExecutionArn"].as_str().unwrap()).unwrap();
    assert_eq!(child.status(), Status::Failed);
    assert_eq!(failed["Name"], json!(child.name()));

    let gauge = Arc::new(Mutex::new(Gauge::default()));
    let engine = engine_with_count_path(gauge);
    let out = engine
        .start(
            "fleet",
            json!({"items": items(10, &[1, 2, 3])["items"], "tolerate": 2}),
            StartOptions::default(),
        )
        .unwrap()
        .wait()
        .await;
    assert_eq!(out.error.as_deref(), Some("States.ExceedToleratedFailureThreshold"), "3 failures > 2");
}

fn engine_with_count_path(gauge: Arc<Mutex<Gauge>>) -> Engine {
    engine(machine(json!({"ToleratedFailureCountPath": "$.tolerate"})), work(gauge, 1))
}

#[tokio::test(start_paused = true)]
async fn tolerated_failure_percentage_is_failed_over_total_items() {
    for (bad, want) in [(vec![0, 1], Status::Succeeded), (vec![0, 1, 2], Status::Failed)] {
        let gauge = Arc::new(Mutex::new(Gauge::default()));
        let engine = engine(machine(json!({"ToleratedFailurePercentage": 20})), work(gauge, 1));
        let out = engine.start("fleet", items(10, &bad), StartOptions::default()).unwrap().wait().await;
        assert_eq!(out.status, want, "{} of 10 failed: {out:?}", bad.len());
    }
}

// When the Map Run fails, or the parent is stopped, the children still
// running are stopped too.
#[tokio::test(start_paused = true)]
async fn stopping_the_parent_aborts_its_running_children() {
    let (started_tx, mut started) = tokio::sync::watch::channel(0usize);
    let tasks = TaskRegistry::new().with("work", move |_| {
        started_tx.send_modify(|n| *n += 1);
        async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(json!("late"))
        }
    });
    let engine = engine(machine(json!({"MaxConcurrency": 3})), tasks);
    let parent = engine.start("fleet", items(10, &[]), StartOptions::default()).unwrap();
    started.wait_for(|n| *n >= 3).await.unwrap();
    assert_eq!(*started.borrow(), 3, "MaxConcurrency 3");
    assert!(parent.stop(None, None));
    assert_eq!(parent.wait().await.status, Status::Aborted);
    let run = &engine.map_runs(Some(parent.arn()))[0];
    let children = engine.map_run_executions(&run.arn);
    assert_eq!(children.len(), 3);
    for c in &children {
        assert_eq!(c.wait().await.status, Status::Aborted);
    }
    assert_eq!(run.status(), MapRunStatus::Aborted);
    assert_eq!((run.counts().aborted, run.counts().pending), (3, 7));
    assert_eq!(*started.borrow(), 3, "no child started after the stop");
}

// Mock test cases apply to children, each with its own invocation counters
// (each child is an execution of its own).
#[tokio::test(start_paused = true)]
async fn mocked_tasks_count_invocations_per_child() {
    let def = machine(json!({}));
    let mut def_json = def.source().clone();
    def_json["States"]["Fleet"]["ItemProcessor"]["States"]["Work"]["Retry"] =
        json!([{"ErrorEquals": ["NotReady"], "IntervalSeconds": 30, "MaxAttempts": 3}]);
    let def = Definition::from_value(def_json).unwrap();
    let mocks = MockConfig::parse(
        r#"{"StateMachines": {"fleet": {"TestCases": {"Slow": {"Work": "NotReadyOnce"}}}},
            "MockedResponses": {"NotReadyOnce": {"0": {"Throw": {"Error": "NotReady", "Cause": "creating"}},
                                                 "1": {"Return": "ok"}}}}"#,
    )
    .unwrap();
    let engine = Engine::new(Clock::real());
    engine.register(StateMachineSpec::new("fleet", def).mocks(Arc::new(mocks))).unwrap();
    let out = engine
        .start("fleet", items(4, &[]), StartOptions::named("m").test_case("Slow"))
        .unwrap()
        .wait()
        .await;
    assert_eq!(out.output, Some(json!(["ok", "ok", "ok", "ok"])), "{out:?}");
}

#[tokio::test(start_paused = true)]
async fn the_map_output_is_held_to_the_payload_quota() {
    let big = "x".repeat(100_000);
    let tasks = TaskRegistry::new().with("work", move |_| {
        let v = json!(big.clone());
        async move { Ok(v) }
    });
    let engine = engine(machine(json!({})), tasks);
    let out = engine.start("fleet", items(3, &[]), StartOptions::default()).unwrap().wait().await;
    assert_eq!(out.error.as_deref(), Some("States.DataLimitExceeded"), "3 x 100 KB children outputs");
}
