//! A Step Functions API server (AWS JSON 1.0 protocol, `X-Amz-Target:
//! AWSStepFunctions.<Operation>`) over an [`Engine`], enough for the official
//! `aws-sdk-sfn` client and for code such as the InvokeStepFunction Lambda.
//!
//! Operations: CreateStateMachine, DescribeStateMachine, ListStateMachines,
//! DeleteStateMachine, StartExecution, DescribeExecution,
//! GetExecutionHistory, ListExecutions (by `stateMachineArn` or by
//! `mapRunArn`), StopExecution, ListMapRuns, DescribeMapRun, SendTaskSuccess,
//! SendTaskFailure, SendTaskHeartbeat. A Distributed
//! Map's child executions answer DescribeExecution (with `mapRunArn`) and
//! GetExecutionHistory like any other. Timestamps are epoch
//! seconds (floats), errors are HTTP 400 with `{"__type": code, "message"}`
//! (`StateMachineDoesNotExist`, `ExecutionAlreadyExists`, `InvalidName`,
//! `ExecutionDoesNotExist`, `InvalidDefinition`, `InvalidArn`,
//! `InvalidExecutionInput`, `InvalidOutput`, `InvalidToken`, `TaskDoesNotExist`,
//! `TaskTimedOut`, `ResourceNotFound`, `ValidationException`,
//! `UnknownOperationException`).
//!
//! As in Step Functions Local, `StartExecution` accepts
//! `stateMachineArn#TestCaseName` to run with that mock test case. State
//! machines created through the API use the engine's API defaults
//! ([`Engine::set_api_defaults`]) for task handlers and mocks. Requests are
//! not authenticated: this is a local test server, bind it to loopback.

use crate::definition::Definition;
use crate::engine::{Engine, EngineError, Execution, MapRun, StartOptions, StateMachineSpec, Status};
use crate::history::epoch_seconds;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The content type of the JSON 1.0 protocol.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.0";

/// Serve until the listener fails.
pub async fn serve(listener: TcpListener, engine: Engine) -> std::io::Result<()> {
    axum::serve(listener, router(engine)).await
}

/// Serve until `shutdown` completes, then finish in-flight requests.
pub async fn serve_with_shutdown<F>(listener: TcpListener, engine: Engine, shutdown: F) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    axum::serve(listener, router(engine)).with_graceful_shutdown(shutdown).await
}

/// The router, for embedding in another axum app.
pub fn router(engine: Engine) -> Router {
    Router::new().route("/", axum::routing::post(handle)).with_state(engine)
}

/// Serve several engines, one per account and region, on one listener until
/// `shutdown` completes ([`router_for_accounts`]).
pub async fn serve_accounts_with_shutdown<F>(
    listener: TcpListener,
    engines: Vec<Engine>,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    axum::serve(listener, router_for_accounts(engines)).with_graceful_shutdown(shutdown).await
}

/// One endpoint for several engines, as one client with one set of
/// credentials per account sees Step Functions in each account and region:
/// a request goes to the engine whose region and account the ARN it names
/// carries (`stateMachineArn`, `executionArn` or `mapRunArn`), else to the
/// engine of the region it was signed for (the SigV4 credential scope), else
/// to the first. An ARN of an account and region no engine serves reaches
/// the first engine, which answers that it does not exist.
pub fn router_for_accounts(engines: Vec<Engine>) -> Router {
    Router::new().route("/", axum::routing::post(handle_accounts)).with_state(Arc::new(engines))
}

async fn handle_accounts(
    State(engines): State<Arc<Vec<Engine>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(first) = engines.first() else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"__type": "UnknownOperationException", "message": "no Step Functions engine is served here"}),
        );
    };
    let engine = engine_for(&engines, &headers, &body).unwrap_or(first).clone();
    handle(State(engine), headers, body).await
}

/// The engine a request is meant for, by the ARN it names or its signing region.
fn engine_for<'a>(engines: &'a [Engine], headers: &HeaderMap, body: &[u8]) -> Option<&'a Engine> {
    let req: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let arn = ["stateMachineArn", "executionArn", "mapRunArn"].iter().find_map(|k| req.get(*k)?.as_str());
    if let Some(arn) = arn {
        let part = |i: usize| arn.split(':').nth(i).unwrap_or_default();
        if let Some(e) = engines.iter().find(|e| e.region() == part(3) && e.account() == part(4)) {
            return Some(e);
        }
    }
    // `Credential=KEY/DATE/REGION/SERVICE/aws4_request` (SigV4).
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())?;
    let scope = auth.split("Credential=").nth(1)?;
    let region = scope.split('/').nth(2)?;
    engines.iter().find(|e| e.region() == region)
}

struct ApiError {
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into() }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        ApiError::new(e.code(), e.to_string())
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, CONTENT_TYPE)], body.to_string()).into_response()
}

async fn handle(State(engine): State<Engine>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let op = target.strip_prefix("AWSStepFunctions.").unwrap_or("");
    let req: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"__type": "SerializationException", "message": e.to_string()}),
                );
            }
        }
    };
    tracing::debug!(operation = op, "step functions API call");
    let result = match op {
        "CreateStateMachine" => create_state_machine(&engine, &req),
        "DescribeStateMachine" => describe_state_machine(&engine, &req),
        "ListStateMachines" => Ok(list_state_machines(&engine)),
        "DeleteStateMachine" => delete_state_machine(&engine, &req),
        "StartExecution" => start_execution(&engine, &req),
        "DescribeExecution" => execution(&engine, &req).map(|e| describe_execution(&e)),
        "GetExecutionHistory" => get_execution_history(&engine, &req),
        "ListExecutions" => list_executions(&engine, &req),
        "StopExecution" => stop_execution(&engine, &req).await,
        "ListMapRuns" => list_map_runs(&engine, &req),
        "SendTaskSuccess" => send_task_success(&engine, &req),
        "SendTaskFailure" => send_task_failure(&engine, &req),
        "SendTaskHeartbeat" => send_task_heartbeat(&engine, &req),
        "DescribeMapRun" => describe_map_run(&engine, &req),
        _ => Err(ApiError::new("UnknownOperationException", format!("unsupported operation '{target}'"))),
    };
    match result {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => json_response(StatusCode::BAD_REQUEST, &json!({"__type": e.code, "message": e.message})),
    }
}

fn str_field<'a>(req: &'a Value, name: &str) -> Result<&'a str, ApiError> {
    req.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::new("ValidationException", format!("'{name}' is required")))
}

fn create_state_machine(engine: &Engine, req: &Value) -> Result<Value, ApiError> {
    let name = str_field(req, "name")?;
    let text = str_field(req, "definition")?;
    if req.get("type").and_then(Value::as_str).is_some_and(|t| t != "STANDARD") {
        return Err(ApiError::new("ValidationException", "only STANDARD state machines are supported"));
    }
    let def = Definition::parse(text).map_err(|e| ApiError::new("InvalidDefinition", e.to_string()))?;
    if let Some(existing) = engine.state_machine(name) {
        if existing.definition.source() == def.source() {
            return Ok(
                json!({"stateMachineArn": existing.arn, "creationDate": epoch_seconds(existing.creation_date)}),
            );
        }
        return Err(ApiError::new(
            "StateMachineAlreadyExists",
            format!("State Machine Already Exists: '{}'", existing.arn),
        ));
    }
    let (tasks, mocks) = engine.api_defaults();
    let mut spec = StateMachineSpec::new(name, def).tasks(tasks);
    if let Some(m) = mocks {
        spec = spec.mocks(m);
    }
    if let Some(role) = req.get("roleArn").and_then(Value::as_str) {
        spec = spec.role_arn(role);
    }
    let sm = engine.register(spec)?;
    Ok(json!({"stateMachineArn": sm.arn, "creationDate": epoch_seconds(sm.creation_date)}))
}

fn machine(engine: &Engine, arn: &str) -> Result<std::sync::Arc<crate::engine::StateMachine>, ApiError> {
    if !arn.starts_with("arn:") {
        return Err(ApiError::new("InvalidArn", format!("Invalid Arn: '{arn}'")));
    }
    engine.state_machine(arn).filter(|m| m.arn == arn).ok_or_else(|| {
        ApiError::new("StateMachineDoesNotExist", format!("State Machine Does Not Exist: '{arn}'"))
    })
}

fn describe_state_machine(engine: &Engine, req: &Value) -> Result<Value, ApiError> {
    let sm = machine(engine, str_field(req, "stateMachineArn")?)?;
    Ok(json!({
        "stateMachineArn": sm.arn,
        "name": sm.name,
        "status": "ACTIVE",
        "definition": sm.definition.source().to_string(),
        "roleArn": sm.role_arn,
        "type": "STANDARD",
        "creationDate": epoch_seconds(sm.creation_date),
    }))
}

fn list_state_machines(engine: &Engine) -> Value {
    let list: Vec<Value> = engine
        .state_machines()
        .iter()
        .map(|sm| {
            json!({"stateMachineArn": sm.arn, "name": sm.name, "type": "STANDARD",
                   "creationDate": epoch_seconds(sm.creation_date)})
        })
        .collect();
    json!({ "stateMachines": list })
}

fn delete_state_machine(engine: &Engine, req: &Value) -> Result<Value, ApiError> {
    let arn = str_field(req, "stateMachineArn")?;
    engine.unregister(arn);
    Ok(json!({}))
}

fn start_execution(engine: &Engine, req: &Value) -> Result<Value, ApiError> {
    let arn_field = str_field(req, "stateMachineArn")?;
    let (arn, test_case) = match arn_field.split_once('#') {
        Some((a, tc)) => (a, Some(tc.to_string())),
        None => (arn_field, None),
    };
    let sm = machine(engine, arn)?;
    let input_text = req.get("input").and_then(Value::as_str).unwrap_or("{}");
    let input: Value = serde_json::from_str(input_text)
        .map_err(|e| ApiError::new("InvalidExecutionInput", format!("Invalid execution input: {e}")))?;
    let opts = StartOptions { name: req.get("name").and_then(Value::as_str).map(str::to_string), test_case };
    let exec = engine.start(&sm.arn, input, opts)?;
    Ok(json!({"executionArn": exec.arn(), "startDate": epoch_seconds(exec.start_date())}))
}

fn execution(engine: &Engine, req: &Value) -> Result<Execution, ApiError> {
    let arn = str_field(req, "executionArn")?;
    if !arn.starts_with("arn:") {
        return Err(ApiError::new("InvalidArn", format!("Invalid Arn: '{arn}'")));
    }
    engine
        .execution(arn)
        .ok_or_else(|| ApiError::new("ExecutionDoesNotExist", format!("Execution Does Not Exist: '{arn}'")))
}

fn summary(e: &Execution) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("executionArn".into(), json!(e.arn()));
    m.insert("stateMachineArn".into(), json!(e.state_machine().arn));
    m.insert("name".into(), json!(e.name()));
    m.insert("startDate".into(), json!(epoch_seconds(e.start_date())));
    if let Some(run) = e.map_run_arn() {
        m.insert("mapRunArn".into(), json!(run));
    }
    match e.outcome() {
        Some(o) => {
            m.insert("status".into(), json!(o.status.as_str()));
            m.insert("stopDate".into(), json!(epoch_seconds(o.stop_date)));
        }
        None => {
            m.insert("status".into(), json!(Status::Running.as_str()));
        }
    }
    m
}

fn describe_execution(e: &Execution) -> Value {
    let mut m = summary(e);
    m.insert("input".into(), json!(e.input().to_string()));
    m.insert("inputDetails".into(), json!({"included": true}));
    if let Some(o) = e.outcome() {
        if let Some(out) = o.output {
            m.insert("output".into(), json!(out.to_string()));
            m.insert("outputDetails".into(), json!({"included": true}));
        }
        if let Some(err) = o.error {
            m.insert("error".into(), json!(err));
        }
        if let Some(c) = o.cause {
            m.insert("cause".into(), json!(c));
        }
    }
    Value::Object(m)
}

fn page(req: &Value, len: usize) -> Result<(usize, usize), ApiError> {
    let start = match req.get("nextToken").and_then(Value::as_str) {
        None => 0,
        Some(t) => {
            t.parse::<usize>().map_err(|_| ApiError::new("InvalidToken", format!("Invalid Token: '{t}'")))?
        }
    };
    let max = match req.get("maxResults").and_then(Value::as_u64) {
        None | Some(0) => 1000,
        Some(n) => n.min(1000) as usize,
    };
    Ok((start.min(len), (start + max).min(len)))
}

fn get_execution_history(engine: &Engine, req: &Value) -> Result<Value, ApiError> {
    let e = execution(engine, req)?;
    let mut events = e.history();
    if req.get("reverseOrder").and_then(Value::as_bool) == Some(true) {
        events.reverse();
    }
    let include = req.get("includeExecutionData").and_then(Value::as_bool).unwrap_or(true);
    let (from, to) = page(req, events.len())?;
    let list: Vec<Value> = events[from..to].iter().map(|ev| ev.to_api_json(include)).collect();
    let mut out = json!({ "events": list });
    if to < events.len() {
        out["nextToken"] = json!(to.to_string());
    }
    Ok(out)
}

fn list_executions(engine: &Engine, req: &Value) -> Result<Value, ApiError> {
    let execs = match (req.get("stateMachineArn"), req.get("mapRunArn").and_then(Value::as_str)) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                "ValidationException",
                "give either 'stateMachineArn' or 'mapRunArn', not both",
            ));
        }
        (None, Some(run)) => {
            let run = map_run(engine, run)?;
            engine.map_run_executions(&run.arn)
        }
        _ => {
            let sm = machine(engine, str_field(req, "stateMachineArn")?)?;
            engine.executions(Some(&sm.arn))
        }
    };
    let filter = req.get("statusFilter").and_then(Value::as_str);
    let execs: Vec<Execution> =
        execs.into_iter().filter(|e| filter.is_none_or(|f| e.status().as_str() == f)).collect();
    let (from, to) = page(req, execs.len())?;
    let list: Vec<Value> = execs[from..to].iter().map(|e| Value::Object(summary(e))).collect();
    let mut out = json!({ "executions": list });
    if to < execs.len() {
        out["nextToken"] = json!(to.to_string());
    }
    Ok(out)
}

/// SendTaskSuccess: `output` is a JSON text (Step Functions API Reference).
fn send_task_success(engine: &Engine, req: &Value) -> Result<Value, ApiError> {
    let token = str_field(req, "taskToken")?;
    let output: Value = serde_json::from_str(str_field(req, "output")?)
        .map_err(|e| ApiError::new("InvalidOutput", format!("Invalid output: {e}")))?;
    engine.send_task_success(token, output)?;
    Ok(json!({}))
}

fn send_task_failure(engine: &Engine, req: &Value) -> Result<Value, ApiError> {
    let text = |k: &str| req.get(k).and_then(Value::as_str).map(str::to_string);
    engine.send_task_failure(str_field(req, "taskToken")?, text("error"), text("cause"))?;
    Ok(json!({}))
}

fn send_task_heartbeat(engine: &Engine, req: &Value) -> Result<Value, ApiError> {
    engine.send_task_heartbeat(str_field(req, "taskToken")?)?;
    Ok(json!({}))
}

fn map_run(engine: &Engine, arn: &str) -> Result<Arc<MapRun>, ApiError> {
    if !arn.starts_with("arn:") || !arn.contains(":mapRun:") {
        return Err(ApiError::new("InvalidArn", format!("Invalid Arn: '{arn}'")));
    }
    engine
        .map_run(arn)
        .ok_or_else(|| ApiError::new("ResourceNotFound", format!("Resource not found: '{arn}'")))
}

/// ListMapRuns: the Map Runs an execution started (Step Functions API Reference).
fn list_map_runs(engine: &Engine, req: &Value) -> Result<Value, ApiError> {
    let exec = execution(engine, req)?;
    let runs = engine.map_runs(Some(exec.arn()));
    let (from, to) = page(req, runs.len())?;
    let list: Vec<Value> = runs[from..to]
        .iter()
        .map(|r| {
            let mut v = json!({"executionArn": r.execution_arn, "mapRunArn": r.arn,
                               "stateMachineArn": r.state_machine_arn, "startDate": epoch_seconds(r.start_date)});
            if let Some(stop) = r.stop_date() {
                v["stopDate"] = json!(epoch_seconds(stop));
            }
            v
        })
        .collect();
    let mut out = json!({ "mapRuns": list });
    if to < runs.len() {
        out["nextToken"] = json!(to.to_string());
    }
    Ok(out)
}

/// DescribeMapRun (Step Functions API Reference); without batching, item and
/// execution counts are the same numbers.
fn describe_map_run(engine: &Engine, req: &Value) -> Result<Value, ApiError> {
    let run = map_run(engine, str_field(req, "mapRunArn")?)?;
    let c = run.counts();
    let counts = json!({"pending": c.pending, "running": c.running, "succeeded": c.succeeded,
        "failed": c.failed, "timedOut": c.timed_out, "aborted": c.aborted, "total": c.total,
        "resultsWritten": c.results_written});
    let mut out = json!({
        "mapRunArn": run.arn,
        "executionArn": run.execution_arn,
        "status": run.status().as_str(),
        "startDate": epoch_seconds(run.start_date),
        "maxConcurrency": run.max_concurrency,
        "toleratedFailurePercentage": run.tolerated_failure_percentage,
        "toleratedFailureCount": run.tolerated_failure_count,
        "itemCounts": counts,
        "executionCounts": counts,
        "redriveCount": 0,
    });
    if let Some(stop) = run.stop_date() {
        out["stopDate"] = json!(epoch_seconds(stop));
    }
    Ok(out)
}

async fn stop_execution(engine: &Engine, req: &Value) -> Result<Value, ApiError> {
    let e = execution(engine, req)?;
    let error = req.get("error").and_then(Value::as_str).map(str::to_string);
    let cause = req.get("cause").and_then(Value::as_str).map(str::to_string);
    e.stop(error, cause);
    // The abort is processed by the execution's task; answer once it is
    // recorded so a DescribeExecution right after sees ABORTED, as on AWS.
    let outcome = e.wait().await;
    Ok(json!({"stopDate": epoch_seconds(outcome.stop_date)}))
}
