//! A fleet shaped like the project's source machine, on a paused clock: per
//! cluster a snapshot, a wait polled by Retry (30 s x1.5, at most 300 s,
//! MaxAttempts 100 = about 8 hours), a copy, a second wait (MaxAttempts 150 =
//! about 12 hours), share and notify, with every wait answered near its bound.
//!
//! In a Distributed Map each cluster is a child execution with its own
//! history, so no execution comes near the 25,000-event quota ("Step
//! Functions service quotas"); MaxConcurrency 5 keeps at most 5 copies in
//! flight across children (the copy quota per destination region). The same
//! work in an Inline Map writes every iteration into one history and fails
//! at event 25,000, as "Avoid reaching the history quota" describes.

mod common;

use aurora_dr_asl::limits::HISTORY_EVENTS;
use aurora_dr_asl::{
    Clock, Definition, Engine, StartOptions, StateMachineSpec, Status, TaskError, TaskRegistry,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Polls of the source snapshot before it is available (MaxAttempts 100).
const SNAPSHOT_POLLS: u64 = 95;
/// Polls of the copy before it is available (MaxAttempts 150).
const COPY_POLLS: u64 = 145;
/// Copies the destination region allows at once.
const COPY_QUOTA: usize = 5;

fn lambda(name: &str) -> String {
    format!("arn:aws:lambda:us-east-1:123456789012:function:{name}")
}

fn wait_task(max_attempts: u64, next: Option<&str>) -> Value {
    let mut t = json!({"Type": "Task", "Resource": lambda("fetch-status"),
        "Retry": [{"ErrorEquals": ["ResourceNotReady"], "IntervalSeconds": 30, "BackoffRate": 1.5,
                   "MaxDelaySeconds": 300, "MaxAttempts": max_attempts}]});
    match next {
        Some(n) => t["Next"] = json!(n),
        None => t["End"] = json!(true),
    }
    t
}

/// The per-cluster steps, as an ItemProcessor in `mode`.
fn fleet(mode: &str) -> Definition {
    let step = |name: &str, next: &str| json!({"Type": "Task", "Resource": lambda(name), "Next": next});
    let mut processor = json!({"StartAt": "CreateSnapshot", "States": {
        "CreateSnapshot": step("create-snapshot", "WaitForSourceSnapshot"),
        "WaitForSourceSnapshot": wait_task(100, Some("EncryptCopy")),
        "EncryptCopy": step("encrypt-copy", "WaitForTargetSnapshot"),
        "WaitForTargetSnapshot": wait_task(150, Some("Share")),
        "Share": step("share", "Notify"),
        "Notify": {"Type": "Task", "Resource": lambda("notify"), "End": true}}});
    processor["ProcessorConfig"] = match mode {
        "DISTRIBUTED" => json!({"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}),
        _ => json!({"Mode": "INLINE"}),
    };
    Definition::from_value(json!({"StartAt": "Clusters", "States": {
        "Clusters": {"Type": "Map", "ItemsPath": "$.clusters", "MaxConcurrency": COPY_QUOTA,
                     "ItemSelector": {"cluster.$": "$$.Map.Item.Value"},
                     "ItemProcessor": processor, "Next": "Done"},
        "Done": {"Type": "Succeed"}}}))
    .expect("valid fleet definition")
}

/// Per cluster: polls answered so far; copies in flight now and at most.
#[derive(Default)]
struct Rds {
    polls: HashMap<String, u64>,
    copying: usize,
    peak_copying: usize,
}

fn handlers(rds: Arc<Mutex<Rds>>) -> TaskRegistry {
    let pass = |input: Value| async move { Ok(input) };
    let copy = {
        let rds = rds.clone();
        move |input: Value| {
            let mut r = rds.lock().unwrap();
            r.copying += 1;
            r.peak_copying = r.peak_copying.max(r.copying);
            async move { Ok(input) }
        }
    };
    let status = move |input: Value| {
        let cluster = input["cluster"].as_str().unwrap_or("").to_string();
        let mut r = rds.lock().unwrap();
        let n = r.polls.entry(cluster).or_insert(0);
        *n += 1;
        let answer = if *n == SNAPSHOT_POLLS + 1 || *n == SNAPSHOT_POLLS + 1 + COPY_POLLS + 1 {
            if *n > SNAPSHOT_POLLS + 1 {
                r.copying -= 1;
            }
            Ok(input)
        } else {
            Err(TaskError::new("ResourceNotReady", "snapshot is creating"))
        };
        async move { answer }
    };
    TaskRegistry::new()
        .with("create-snapshot", pass)
        .with("encrypt-copy", copy)
        .with("fetch-status", status)
        .with("share", pass)
        .with("notify", pass)
}

fn clusters(n: usize) -> Value {
    let ids: Vec<String> = (0..n).map(|i| format!("c{i:03}")).collect();
    json!({ "clusters": ids })
}

/// Events of one cluster's steps: 5 per single-call task, 3 per poll plus
/// entered/exited per wait.
const EVENTS_PER_CLUSTER: usize =
    4 * 5 + (SNAPSHOT_POLLS as usize + 1) * 3 + 2 + (COPY_POLLS as usize + 1) * 3 + 2;

#[tokio::test(start_paused = true)]
async fn a_distributed_fleet_of_100_keeps_every_history_under_the_quota() {
    let rds = Arc::new(Mutex::new(Rds::default()));
    let engine = Engine::new(Clock::real());
    engine
        .register(StateMachineSpec::new("source", fleet("DISTRIBUTED")).tasks(handlers(rds.clone())))
        .unwrap();
    let parent = engine.start("source", clusters(100), StartOptions::named("nightly")).unwrap();
    let out = parent.wait().await;
    assert_eq!(out.status, Status::Succeeded, "{out:?}");

    let run = &engine.map_runs(Some(parent.arn()))[0];
    let children = engine.map_run_executions(&run.arn);
    assert_eq!(children.len(), 100);
    let mut largest = parent.history().len();
    for child in &children {
        assert_eq!(child.status(), Status::Succeeded);
        // ExecutionStarted and ExecutionSucceeded around the cluster's events.
        assert_eq!(child.history().len(), EVENTS_PER_CLUSTER + 2, "{}", child.arn());
        largest = largest.max(child.history().len());
    }
    assert!(largest < HISTORY_EVENTS, "largest history {largest}");
    assert_eq!(parent.history().len(), 8, "the parent holds only the Map Run's events");
    let r = rds.lock().unwrap();
    assert!(r.polls.values().all(|&n| n == SNAPSHOT_POLLS + COPY_POLLS + 2));
    assert_eq!(r.peak_copying, COPY_QUOTA, "MaxConcurrency holds the copy quota across children");
}

#[tokio::test(start_paused = true)]
async fn the_same_fleet_in_an_inline_map_fails_at_event_25000() {
    let rds = Arc::new(Mutex::new(Rds::default()));
    let engine = Engine::new(Clock::real());
    engine.register(StateMachineSpec::new("source", fleet("INLINE")).tasks(handlers(rds))).unwrap();
    let exec = engine.start("source", clusters(100), StartOptions::named("nightly")).unwrap();
    let out = exec.wait().await;
    common::assert_stopped_by_the_history_quota(&exec, &out);
    // 100 clusters would need about 100 x 752 events in one history.
    const { assert!(100 * (EVENTS_PER_CLUSTER + 2) > HISTORY_EVENTS) };
}

#[tokio::test(start_paused = true)]
async fn an_inline_fleet_of_12_fits_in_one_history() {
    let rds = Arc::new(Mutex::new(Rds::default()));
    let engine = Engine::new(Clock::real());
    engine.register(StateMachineSpec::new("source", fleet("INLINE")).tasks(handlers(rds))).unwrap();
    let t0 = tokio::time::Instant::now();
    let exec = engine.start("source", clusters(12), StartOptions::named("nightly")).unwrap();
    assert_eq!(exec.wait().await.status, Status::Succeeded);
    // ExecutionStarted, Map entered/started/succeeded/exited, Succeed x2,
    // ExecutionSucceeded, and per cluster its steps plus 2 iteration events.
    assert_eq!(exec.history().len(), 8 + 12 * (EVENTS_PER_CLUSTER + 2));
    // Three waves of five clusters or fewer, each about 20 hours of polling.
    assert!(t0.elapsed() > Duration::from_secs(3 * 19 * 3600), "{:?}", t0.elapsed());
}
