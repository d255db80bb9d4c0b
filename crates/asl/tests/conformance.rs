//! Conformance suite: every `tests/conformance/*.json` file holds an array of
//! cases; each runs one execution on a paused tokio clock (Waits, retries and
//! timeouts take no real time and are exact) and checks the outcome.
//!
//! Case fields:
//! - `name`, `definition`, `input`
//! - `tasks`: `{"fn-name": [answer, ...]}`, answers used in call order (the
//!   last one repeats): `{"Return": v}`, `{"Throw": {"Error", "Cause"}}`,
//!   `{"Echo": true}` (return the input), optional `"SleepSeconds": n` first.
//!   Resources that are not Lambda ARNs are registered by full ARN the same way.
//! - `expect`: `status` (default SUCCEEDED), `output`, `error`, `cause`,
//!   `cause_contains`, `events` (exact list of event types), `calls`
//!   (`{"fn": [inputs...]}`), `elapsed_seconds` (virtual time from start to end).
//! - `mock_config` + `test_case`: run with Step Functions Local mocks.

use aurora_dr_asl::{
    Clock, Definition, Engine, MockConfig, StartOptions, StateMachineSpec, Status, TaskError, TaskRegistry,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Calls = Arc<Mutex<HashMap<String, Vec<Value>>>>;

fn registry(tasks: Option<&Value>, calls: &Calls) -> TaskRegistry {
    let mut reg = TaskRegistry::new();
    let Some(Value::Object(tasks)) = tasks else { return reg };
    for (name, answers) in tasks {
        let answers: Vec<Value> = answers.as_array().cloned().unwrap_or_default();
        let counter = Arc::new(Mutex::new(0usize));
        let calls = calls.clone();
        let key = name.clone();
        let handler = move |input: Value| {
            let answers = answers.clone();
            let counter = counter.clone();
            let calls = calls.clone();
            let key = key.clone();
            async move {
                calls.lock().unwrap().entry(key).or_default().push(input.clone());
                let idx = {
                    let mut c = counter.lock().unwrap();
                    *c += 1;
                    (*c - 1).min(answers.len().saturating_sub(1))
                };
                let a = answers.get(idx).cloned().unwrap_or(json!({"Echo": true}));
                if let Some(s) = a.get("SleepSeconds").and_then(Value::as_f64) {
                    tokio::time::sleep(Duration::from_secs_f64(s)).await;
                }
                if let Some(t) = a.get("Throw") {
                    return Err(TaskError::new(
                        t["Error"].as_str().unwrap_or(""),
                        t.get("Cause").and_then(Value::as_str).unwrap_or(""),
                    ));
                }
                if a.get("Echo").is_some() {
                    return Ok(input);
                }
                Ok(a.get("Return").cloned().unwrap_or(Value::Null))
            }
        };
        if name.starts_with("arn:") {
            reg.register_resource(name.clone(), handler);
        } else {
            reg.register(name.clone(), handler);
        }
    }
    reg
}

async fn run_case(case: &Value) -> Result<(), String> {
    let name = case["name"].as_str().unwrap_or("?");
    let def = Definition::from_value(case["definition"].clone()).map_err(|e| format!("definition: {e}"))?;
    let calls: Calls = Arc::default();
    let engine = Engine::new(Clock::real());
    let mut spec = StateMachineSpec::new("conformance", def).tasks(registry(case.get("tasks"), &calls));
    if let Some(m) = case.get("mock_config") {
        spec = spec.mocks(Arc::new(MockConfig::from_value(m).map_err(|e| e.to_string())?));
    }
    let sm = engine.register(spec).map_err(|e| e.to_string())?;
    let mut opts = StartOptions::named("case");
    if let Some(tc) = case.get("test_case").and_then(Value::as_str) {
        opts = opts.test_case(tc);
    }
    let input = case.get("input").cloned().unwrap_or(json!({}));
    let exec = engine.start(&sm.arn, input, opts).map_err(|e| e.to_string())?;
    let out = exec.wait().await;
    let exp = &case["expect"];
    let want_status = exp.get("status").and_then(Value::as_str).unwrap_or("SUCCEEDED");
    let mut problems = Vec::new();
    if out.status.as_str() != want_status {
        problems.push(format!(
            "status {} (error {:?}, cause {:?}), want {want_status}",
            out.status.as_str(),
            out.error,
            out.cause
        ));
    }
    if let Some(o) = exp.get("output")
        && out.output.as_ref() != Some(o)
    {
        problems.push(format!("output {}, want {o}", out.output.clone().unwrap_or(Value::Null)));
    }
    if let Some(e) = exp.get("error")
        && out.error.as_deref() != e.as_str()
    {
        problems.push(format!("error {:?}, want {e}", out.error));
    }
    if let Some(c) = exp.get("cause")
        && out.cause.as_deref() != c.as_str()
    {
        problems.push(format!("cause {:?}, want {c}", out.cause));
    }
    if let Some(c) = exp.get("cause_contains").and_then(Value::as_str)
        && !out.cause.as_deref().unwrap_or("").contains(c)
    {
        problems.push(format!("cause {:?} should contain {c:?}", out.cause));
    }
    let history = exec.history();
    if let Some(Value::Array(want)) = exp.get("events") {
        let got: Vec<&str> = history.iter().map(|e| e.event_type.as_str()).collect();
        let want: Vec<&str> = want.iter().filter_map(Value::as_str).collect();
        if got != want {
            problems.push(format!("events\n  got  {got:?}\n  want {want:?}"));
        }
    }
    if let Some(Value::Object(want)) = exp.get("calls") {
        let got = calls.lock().unwrap().clone();
        for (f, inputs) in want {
            let g = got.get(f).cloned().unwrap_or_default();
            if &Value::Array(g.clone()) != inputs {
                problems.push(format!("calls of {f}: {g:?}, want {inputs}"));
            }
        }
    }
    if let Some(secs) = exp.get("elapsed_seconds").and_then(Value::as_f64) {
        let (Some(first), Some(last)) = (history.first(), history.last()) else {
            return Err("no history".into());
        };
        let got = (last.timestamp - first.timestamp).as_seconds_f64();
        if (got - secs).abs() > 0.01 {
            problems.push(format!("elapsed {got}s, want {secs}s"));
        }
    }
    // History invariants: ids are 1..n, previous ids point backwards, one terminal event at the end.
    for (i, e) in history.iter().enumerate() {
        if e.id != i as u64 + 1 || e.previous_event_id >= e.id {
            problems.push(format!("bad event numbering at {i}: {e:?}"));
        }
    }
    if history.last().map(|e| e.event_type.is_terminal()) != Some(true) || exec.status() == Status::Running {
        problems.push("history does not end with a terminal event".into());
    }
    if problems.is_empty() { Ok(()) } else { Err(format!("case '{name}':\n  {}", problems.join("\n  "))) }
}

#[tokio::test(start_paused = true)]
async fn conformance_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let mut failures = Vec::new();
    let mut count = 0;
    for f in files.iter().filter(|f| f.extension().is_some_and(|e| e == "json")) {
        let text = std::fs::read_to_string(f).unwrap();
        let cases: Vec<Value> =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for case in &cases {
            count += 1;
            if let Err(e) = run_case(case).await {
                failures.push(format!("{}: {e}", f.file_name().unwrap().to_string_lossy()));
            }
        }
    }
    println!("{count} conformance cases run");
    assert!(count >= 40, "expected the full suite, found {count} cases");
    assert!(failures.is_empty(), "{} of {count} cases failed:\n{}", failures.len(), failures.join("\n"));
}
