//! Engine overhead benchmark (a program that prints figures; not a test).
//!
//! 1. Per-transition overhead: one execution at a time of a 20-state machine
//!    (10 Task states answered by a mock config, 10 Pass states with
//!    Parameters/ResultPath), repeated; time / (executions x 20 states).
//! 2. The same machine with task handlers from a `TaskRegistry` instead of mocks.
//! 3. One execution looping 10,000 times through a Pass + Choice pair: the
//!    per-transition cost without per-execution start-up.
//! 4. 1,000 concurrent executions of the mocked machine: wall time from the
//!    first start to the last outcome.
//!
//! Run: `cargo bench -p aurora-dr-asl --bench engine`

use aurora_dr_asl::{
    Clock, Definition, Engine, MockConfig, StartOptions, StateMachineSpec, Status, TaskRegistry,
};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

const STATES: usize = 20;

fn machine() -> (Definition, MockConfig) {
    let mut states = serde_json::Map::new();
    let mut case = serde_json::Map::new();
    for i in 0..STATES {
        let name = format!("S{i:02}");
        let next =
            if i + 1 < STATES { json!({"Next": format!("S{:02}", i + 1)}) } else { json!({"End": true}) };
        let mut st = if i % 2 == 0 {
            case.insert(name.clone(), json!("Ok"));
            json!({"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:step",
                   "Parameters": {"id.$": "$.id", "step": i}, "ResultSelector": {"status.$": "$.status"},
                   "ResultPath": "$.last",
                   "Retry": [{"ErrorEquals": ["Throttled"], "MaxAttempts": 3}]})
        } else {
            json!({"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}, "ResultPath": "$.counter",
                   "OutputPath": "$"})
        };
        if let (Value::Object(m), Value::Object(n)) = (&mut st, next) {
            m.extend(n);
        }
        states.insert(name, st);
    }
    let def =
        Definition::from_value(json!({"StartAt": "S00", "States": states})).expect("valid benchmark machine");
    let mocks = MockConfig::from_value(&json!({
        "StateMachines": {"bench": {"TestCases": {"Fast": case}}},
        "MockedResponses": {"Ok": {"0-1000000": {"Return": {"status": "available", "junk": [1, 2, 3]}}}}
    }))
    .expect("valid mock config");
    (def, mocks)
}

fn input(i: usize) -> Value {
    json!({"id": format!("snap-{i}"), "n": 1, "payload": {"cluster": "aurora-prod", "region": "us-west-1", "tags": ["a", "b"]}})
}

async fn sequential(engine: &Engine, tag: &str, sm: &str, test_case: Option<&str>, runs: usize) -> f64 {
    let t0 = Instant::now();
    for i in 0..runs {
        let mut opts = StartOptions::named(format!("{tag}-{i}"));
        opts.test_case = test_case.map(str::to_string);
        let out = engine.start(sm, input(i), opts).expect("start").wait().await;
        assert_eq!(out.status, Status::Succeeded, "{out:?}");
    }
    t0.elapsed().as_secs_f64() * 1e6 / (runs * STATES) as f64
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(async {
        let (def, mocks) = machine();
        let engine = Engine::new(Clock::real());
        let mocked = engine
            .register(StateMachineSpec::new("bench", def.clone()).mocks(Arc::new(mocks)))
            .expect("register");
        let tasks = TaskRegistry::new().with("step", |_| async { Ok(json!({"status": "available", "junk": [1, 2, 3]})) });
        let registered = engine.register(StateMachineSpec::new("bench-registry", def).tasks(tasks)).expect("register");

        // Warm-up.
        sequential(&engine, "warm-up", &mocked.arn, Some("Fast"), 200).await;

        let runs = 2_000;
        let per_mock = sequential(&engine, "mocked", &mocked.arn, Some("Fast"), runs).await;
        let per_reg = sequential(&engine, "registry", &registered.arn, None, runs).await;
        println!("per-transition overhead, mocked tasks:     {per_mock:.2} µs ({runs} executions x {STATES} states, sequential)");
        println!("per-transition overhead, registry handlers: {per_reg:.2} µs ({runs} executions x {STATES} states, sequential)");

        let looping = Definition::from_value(json!({"StartAt": "Count", "States": {
            "Count": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)", "id.$": "$.id"}, "Next": "More"},
            "More": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericLessThan": 5000, "Next": "Count"}], "Default": "Done"},
            "Done": {"Type": "Succeed"}}}))
        .expect("valid loop machine");
        let looper = engine.register(StateMachineSpec::new("loop", looping)).expect("register");
        let t0 = Instant::now();
        let out = engine
            .start(&looper.arn, json!({"n": 0, "id": "x"}), StartOptions::named("loop"))
            .expect("start")
            .wait()
            .await;
        assert_eq!(out.status, Status::Succeeded);
        println!(
            "per-transition overhead, one execution looping: {:.2} µs (10,000 Pass/Choice transitions)",
            t0.elapsed().as_secs_f64() * 1e6 / 10_001.0
        );

        for round in 0..3 {
            let n = 1_000;
            let t0 = Instant::now();
            let execs: Vec<_> = (0..n)
                .map(|i| {
                    engine
                        .start(&mocked.arn, input(i), StartOptions::named(format!("conc-{round}-{i}")).test_case("Fast"))
                        .expect("start")
                })
                .collect();
            let started = t0.elapsed();
            for e in &execs {
                let out = e.wait().await;
                assert_eq!(out.status, Status::Succeeded);
            }
            let total = t0.elapsed();
            let events: usize = execs.iter().map(|e| e.history().len()).sum();
            println!(
                "1,000 concurrent executions x {STATES} states (round {}): {:.1} ms total ({:.1} ms to start all), {:.0} transitions/s, {events} history events",
                round + 1,
                total.as_secs_f64() * 1e3,
                started.as_secs_f64() * 1e3,
                (n * STATES) as f64 / total.as_secs_f64()
            );
        }
    });
}
