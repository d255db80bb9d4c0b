//! The executor: state machines, executions, and the interpreter.
//!
//! Contract:
//! - [`Engine::register`] adds a state machine (name, ARN, definition, task
//!   registry, optional mock config); names are unique per engine.
//! - [`Engine::start`] starts one execution as a tokio task and returns its
//!   [`Execution`] handle at once. Start is idempotent by name as on AWS:
//!   the same name and input while the execution is open returns the same
//!   execution; a different input, or any input once it has closed, is
//!   [`EngineError::ExecutionAlreadyExists`].
//! - An [`Execution`] keeps its full history; [`Execution::subscribe`] replays
//!   the events so far and then streams new ones until the execution ends;
//!   [`Execution::wait`] resolves to the final [`Outcome`];
//!   [`Execution::stop`] aborts it (`ABORTED`), cancelling in-flight tasks.
//! - Input/output processing follows the AWS order: InputPath → Parameters →
//!   task → ResultSelector → ResultPath (against the raw state input) →
//!   OutputPath; a Catch applies its ResultPath to the raw state input and
//!   skips OutputPath. Path failures are `States.Runtime` (never retried or
//!   caught), a ResultPath that cannot be written is
//!   `States.ResultPathMatchFailure`.

use crate::clock::Clock;
use crate::definition::{
    Catcher, Concurrency, Definition, FailField, IoPath, Jitter, ResultPath, Retrier, Scope, Seconds, State,
    StateKind, WaitFor,
};
use crate::error::{AslError, StateError, names};
use crate::history::{EventDetails, EventType, HistoryEvent};
use crate::mock::{MockAnswer, MockConfig, MockSession};
use crate::payload::{Env, Template};
use crate::registry::{self, Target, TaskRegistry};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use serde_json::{Value, json};
use std::borrow::Cow;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::{Notify, mpsc, watch};

/// Default region and account of ARNs the engine makes up.
pub const DEFAULT_REGION: &str = "us-east-1";
pub const DEFAULT_ACCOUNT: &str = "123456789012";

/// Engine-level failures (the server maps [`EngineError::code`] to `__type`).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("State Machine Does Not Exist: '{0}'")]
    StateMachineDoesNotExist(String),
    #[error("State Machine Already Exists: '{0}'")]
    StateMachineAlreadyExists(String),
    #[error("Execution Already Exists: '{0}'")]
    ExecutionAlreadyExists(String),
    #[error("Execution Does Not Exist: '{0}'")]
    ExecutionDoesNotExist(String),
    #[error("Invalid Name: '{0}'")]
    InvalidName(String),
    #[error("Invalid Arn: '{0}'")]
    InvalidArn(String),
    #[error("Invalid State Machine Definition: {0}")]
    InvalidDefinition(AslError),
    #[error("{0}")]
    MockConfig(AslError),
}

impl EngineError {
    /// The Step Functions API error code.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::StateMachineDoesNotExist(_) => "StateMachineDoesNotExist",
            EngineError::StateMachineAlreadyExists(_) => "StateMachineAlreadyExists",
            EngineError::ExecutionAlreadyExists(_) => "ExecutionAlreadyExists",
            EngineError::ExecutionDoesNotExist(_) => "ExecutionDoesNotExist",
            EngineError::InvalidName(_) => "InvalidName",
            EngineError::InvalidArn(_) => "InvalidArn",
            EngineError::InvalidDefinition(_) => "InvalidDefinition",
            EngineError::MockConfig(_) => "ValidationException",
        }
    }
}

/// A registered state machine.
#[derive(Debug)]
pub struct StateMachine {
    pub name: String,
    pub arn: String,
    pub definition: Arc<Definition>,
    pub tasks: TaskRegistry,
    pub mocks: Option<Arc<MockConfig>>,
    pub role_arn: String,
    pub creation_date: OffsetDateTime,
    region: String,
}

/// What to register; see [`Engine::register`].
#[derive(Debug, Clone)]
pub struct StateMachineSpec {
    pub name: String,
    pub arn: Option<String>,
    pub definition: Arc<Definition>,
    pub tasks: TaskRegistry,
    pub mocks: Option<Arc<MockConfig>>,
    pub role_arn: Option<String>,
}

impl StateMachineSpec {
    pub fn new(name: impl Into<String>, definition: Definition) -> Self {
        StateMachineSpec {
            name: name.into(),
            arn: None,
            definition: Arc::new(definition),
            tasks: TaskRegistry::new(),
            mocks: None,
            role_arn: None,
        }
    }
    /// Use this ARN instead of `arn:aws:states:REGION:ACCOUNT:stateMachine:NAME`.
    pub fn arn(mut self, arn: impl Into<String>) -> Self {
        self.arn = Some(arn.into());
        self
    }
    pub fn tasks(mut self, tasks: TaskRegistry) -> Self {
        self.tasks = tasks;
        self
    }
    pub fn mocks(mut self, mocks: Arc<MockConfig>) -> Self {
        self.mocks = Some(mocks);
        self
    }
    pub fn role_arn(mut self, role: impl Into<String>) -> Self {
        self.role_arn = Some(role.into());
        self
    }
}

/// Options of [`Engine::start`].
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Execution name; a random UUID when absent.
    pub name: Option<String>,
    /// Mock test case (needs the state machine's mock config).
    pub test_case: Option<String>,
}

impl StartOptions {
    pub fn named(name: impl Into<String>) -> Self {
        StartOptions { name: Some(name.into()), test_case: None }
    }
    pub fn test_case(mut self, tc: impl Into<String>) -> Self {
        self.test_case = Some(tc.into());
        self
    }
}

/// Execution status, as `DescribeExecution` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "RUNNING",
            Status::Succeeded => "SUCCEEDED",
            Status::Failed => "FAILED",
            Status::TimedOut => "TIMED_OUT",
            Status::Aborted => "ABORTED",
        }
    }
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: Status,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub stop_date: OffsetDateTime,
}

/// The engine: state machines and their executions.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

struct EngineInner {
    clock: Clock,
    region: String,
    account: String,
    machines: RwLock<Vec<Arc<StateMachine>>>,
    executions: Mutex<Executions>,
    api_defaults: RwLock<(TaskRegistry, Option<Arc<MockConfig>>)>,
}

#[derive(Default)]
struct Executions {
    by_arn: HashMap<String, Execution>,
    order: Vec<Execution>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("region", &self.inner.region)
            .field("account", &self.inner.account)
            .finish()
    }
}

/// Execution names: 1–80 characters, none of whitespace, `<>{}[]?*"#%\^|~`$&,;:/` or control characters.
pub fn valid_name(name: &str) -> bool {
    let n = name.chars().count();
    (1..=80).contains(&n)
        && !name.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || ('\u{7f}'..='\u{9f}').contains(&c)
                || "<>{}[]?*\"#%\\^|~`$&,;:/".contains(c)
        })
}

impl Engine {
    /// An engine with ARNs in `us-east-1` / `123456789012`.
    pub fn new(clock: Clock) -> Engine {
        Engine::with_account(clock, DEFAULT_REGION, DEFAULT_ACCOUNT)
    }

    /// An engine whose made-up ARNs use `region` and `account`.
    pub fn with_account(clock: Clock, region: impl Into<String>, account: impl Into<String>) -> Engine {
        Engine {
            inner: Arc::new(EngineInner {
                clock,
                region: region.into(),
                account: account.into(),
                machines: RwLock::new(Vec::new()),
                executions: Mutex::new(Executions::default()),
                api_defaults: RwLock::new((TaskRegistry::new(), None)),
            }),
        }
    }

    pub fn clock(&self) -> Clock {
        self.inner.clock
    }

    pub fn region(&self) -> &str {
        &self.inner.region
    }

    pub fn account(&self) -> &str {
        &self.inner.account
    }

    /// Task handlers and mock config for state machines created through the
    /// API server (`CreateStateMachine`).
    pub fn set_api_defaults(&self, tasks: TaskRegistry, mocks: Option<Arc<MockConfig>>) {
        *self.inner.api_defaults.write().unwrap_or_else(|p| p.into_inner()) = (tasks, mocks);
    }

    pub fn api_defaults(&self) -> (TaskRegistry, Option<Arc<MockConfig>>) {
        self.inner.api_defaults.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Register a state machine. Its name must be new.
    pub fn register(&self, spec: StateMachineSpec) -> Result<Arc<StateMachine>, EngineError> {
        if !valid_name(&spec.name) {
            return Err(EngineError::InvalidName(spec.name));
        }
        let arn = spec.arn.unwrap_or_else(|| {
            format!("arn:aws:states:{}:{}:stateMachine:{}", self.inner.region, self.inner.account, spec.name)
        });
        let parts: Vec<&str> = arn.split(':').collect();
        if parts.len() < 7 || parts[0] != "arn" || parts[2] != "states" || parts[5] != "stateMachine" {
            return Err(EngineError::InvalidArn(arn));
        }
        let region = parts[3].to_string();
        let mut machines = self.inner.machines.write().unwrap_or_else(|p| p.into_inner());
        if machines.iter().any(|m| m.name == spec.name || m.arn == arn) {
            return Err(EngineError::StateMachineAlreadyExists(arn));
        }
        let role_arn =
            spec.role_arn.unwrap_or_else(|| format!("arn:aws:iam::{}:role/{}-role", parts[4], spec.name));
        let sm = Arc::new(StateMachine {
            name: spec.name,
            arn,
            definition: spec.definition,
            tasks: spec.tasks,
            mocks: spec.mocks,
            role_arn,
            creation_date: self.inner.clock.now(),
            region,
        });
        machines.push(sm.clone());
        Ok(sm)
    }

    /// Remove a state machine (its executions stay visible).
    pub fn unregister(&self, arn: &str) -> bool {
        let mut machines = self.inner.machines.write().unwrap_or_else(|p| p.into_inner());
        let before = machines.len();
        machines.retain(|m| m.arn != arn);
        machines.len() != before
    }

    /// A state machine by ARN or by name.
    pub fn state_machine(&self, arn_or_name: &str) -> Option<Arc<StateMachine>> {
        let machines = self.inner.machines.read().unwrap_or_else(|p| p.into_inner());
        machines.iter().find(|m| m.arn == arn_or_name || m.name == arn_or_name).cloned()
    }

    pub fn state_machines(&self) -> Vec<Arc<StateMachine>> {
        self.inner.machines.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Start an execution of the state machine `arn_or_name`. Must be called
    /// inside a tokio runtime.
    pub fn start(
        &self,
        arn_or_name: &str,
        input: Value,
        opts: StartOptions,
    ) -> Result<Execution, EngineError> {
        let sm = self
            .state_machine(arn_or_name)
            .ok_or_else(|| EngineError::StateMachineDoesNotExist(arn_or_name.to_string()))?;
        let name = match opts.name {
            Some(n) if valid_name(&n) => n,
            Some(n) => return Err(EngineError::InvalidName(n)),
            None => crate::intrinsic::uuid_v4(),
        };
        let mocks = match &opts.test_case {
            None => None,
            Some(tc) => {
                let cfg = sm.mocks.as_ref().ok_or_else(|| {
                    EngineError::MockConfig(AslError::MockConfig(format!(
                        "test case '{tc}' requested but state machine '{}' has no mock config",
                        sm.name
                    )))
                })?;
                Some(MockSession::new(cfg.test_case(&sm.name, tc).map_err(EngineError::MockConfig)?))
            }
        };
        let arn = match sm.arn.split_once(":stateMachine:") {
            Some((prefix, sm_name)) => format!("{prefix}:execution:{sm_name}:{name}"),
            None => format!("{}:{}", sm.arn, name),
        };
        let mut execs = self.inner.executions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = execs.by_arn.get(&arn) {
            if existing.status() == Status::Running && existing.input() == &input {
                return Ok(existing.clone());
            }
            return Err(EngineError::ExecutionAlreadyExists(arn));
        }
        let (outcome_tx, _) = watch::channel(None);
        let exec = Execution {
            inner: Arc::new(ExecInner {
                arn: arn.clone(),
                name,
                state_machine: sm,
                input,
                start_date: self.inner.clock.now(),
                clock: self.inner.clock,
                history: Mutex::new(HistoryLog::default()),
                outcome: outcome_tx,
                stop_requested: Mutex::new(None),
                stop: Notify::new(),
                mocks,
            }),
        };
        execs.by_arn.insert(arn, exec.clone());
        execs.order.push(exec.clone());
        drop(execs);
        tokio::spawn(drive(exec.clone()));
        Ok(exec)
    }

    pub fn execution(&self, arn: &str) -> Option<Execution> {
        let execs = self.inner.executions.lock().unwrap_or_else(|p| p.into_inner());
        execs.by_arn.get(arn).cloned()
    }

    /// Executions (newest first), optionally of one state machine.
    pub fn executions(&self, state_machine_arn: Option<&str>) -> Vec<Execution> {
        let execs = self.inner.executions.lock().unwrap_or_else(|p| p.into_inner());
        execs
            .order
            .iter()
            .rev()
            .filter(|e| state_machine_arn.is_none_or(|a| e.state_machine().arn == a))
            .cloned()
            .collect()
    }
}

#[derive(Default)]
struct HistoryLog {
    events: Vec<HistoryEvent>,
    subscribers: Vec<mpsc::UnboundedSender<HistoryEvent>>,
    closed: bool,
}

struct ExecInner {
    arn: String,
    name: String,
    state_machine: Arc<StateMachine>,
    input: Value,
    start_date: OffsetDateTime,
    clock: Clock,
    history: Mutex<HistoryLog>,
    outcome: watch::Sender<Option<Outcome>>,
    stop_requested: Mutex<Option<(Option<String>, Option<String>)>>,
    stop: Notify,
    mocks: Option<MockSession>,
}

/// A handle on one execution (cheap to clone).
#[derive(Clone)]
pub struct Execution {
    inner: Arc<ExecInner>,
}

impl std::fmt::Debug for Execution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Execution").field("arn", &self.inner.arn).finish()
    }
}

/// Live history events of one execution; see [`Execution::subscribe`].
pub struct HistorySubscription {
    rx: mpsc::UnboundedReceiver<HistoryEvent>,
}

impl HistorySubscription {
    /// The next event; `None` after the terminal event has been delivered.
    pub async fn next(&mut self) -> Option<HistoryEvent> {
        self.rx.recv().await
    }
}

impl Execution {
    pub fn arn(&self) -> &str {
        &self.inner.arn
    }
    pub fn name(&self) -> &str {
        &self.inner.name
    }
    pub fn state_machine(&self) -> &Arc<StateMachine> {
        &self.inner.state_machine
    }
    pub fn input(&self) -> &Value {
        &self.inner.input
    }
    pub fn start_date(&self) -> OffsetDateTime {
        self.inner.start_date
    }
    /// The mock test case this execution runs with, if any.
    pub fn test_case(&self) -> Option<&str> {
        self.inner.mocks.as_ref().map(MockSession::test_case)
    }
    pub fn outcome(&self) -> Option<Outcome> {
        self.inner.outcome.borrow().clone()
    }
    pub fn status(&self) -> Status {
        self.inner.outcome.borrow().as_ref().map_or(Status::Running, |o| o.status)
    }
    /// All events so far.
    pub fn history(&self) -> Vec<HistoryEvent> {
        self.inner.history.lock().unwrap_or_else(|p| p.into_inner()).events.clone()
    }
    /// Every event from the first one on, then live events, ending after the terminal event.
    pub fn subscribe(&self) -> HistorySubscription {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut h = self.inner.history.lock().unwrap_or_else(|p| p.into_inner());
        for e in &h.events {
            let _ = tx.send(e.clone());
        }
        if !h.closed {
            h.subscribers.push(tx);
        }
        HistorySubscription { rx }
    }
    /// Wait for the end of the execution.
    pub async fn wait(&self) -> Outcome {
        let mut rx = self.inner.outcome.subscribe();
        loop {
            if let Some(o) = rx.borrow_and_update().clone() {
                return o;
            }
            if rx.changed().await.is_err() {
                // The sender lives in `inner`, which `self` keeps alive.
                continue;
            }
        }
    }
    /// Abort a running execution (StopExecution). Returns false if it had already ended.
    pub fn stop(&self, error: Option<String>, cause: Option<String>) -> bool {
        if self.status() != Status::Running {
            return false;
        }
        *self.inner.stop_requested.lock().unwrap_or_else(|p| p.into_inner()) = Some((error, cause));
        self.inner.stop.notify_one();
        true
    }

    fn emit(&self, th: &mut Thread, event_type: EventType, details: EventDetails) -> u64 {
        let mut h = self.inner.history.lock().unwrap_or_else(|p| p.into_inner());
        let id = h.events.len() as u64 + 1;
        let ev = HistoryEvent {
            id,
            previous_event_id: th.prev,
            timestamp: self.inner.clock.now(),
            event_type,
            details,
        };
        h.subscribers.retain(|s| s.send(ev.clone()).is_ok());
        if event_type.is_terminal() {
            h.closed = true;
            h.subscribers.clear();
        }
        h.events.push(ev);
        th.prev = id;
        id
    }
}

/// The previous event of one thread of control (machine, branch, iteration).
struct Thread {
    prev: u64,
}

fn none_if_empty(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}

enum End {
    Done(Result<Value, StateError>),
    TimedOut,
    Aborted(Option<String>, Option<String>),
}

async fn drive(exec: Execution) {
    let sm = exec.inner.state_machine.clone();
    let clock = exec.inner.clock;
    let mut th = Thread { prev: 0 };
    exec.emit(
        &mut th,
        EventType::ExecutionStarted,
        EventDetails {
            input: Some(exec.inner.input.clone()),
            role_arn: Some(sm.role_arn.clone()),
            ..Default::default()
        },
    );
    tracing::debug!(execution = %exec.arn(), "execution started");
    let end = {
        let interp = Interp { exec: &exec, clock };
        let body = AssertUnwindSafe(interp.run_scope(&sm.definition.root, exec.inner.input.clone(), &mut th))
            .catch_unwind()
            .map(|r| r.unwrap_or_else(|_| Err(StateError::runtime("internal error: the engine panicked"))));
        let limit = sm.definition.timeout_seconds.map(|s| clock.timeout(Duration::from_secs(s)));
        let timed = async {
            match limit {
                Some(d) => tokio::time::timeout(d, body).await.map_or(End::TimedOut, End::Done),
                None => End::Done(body.await),
            }
        };
        tokio::select! {
            end = timed => end,
            _ = exec.inner.stop.notified() => {
                let (e, c) = exec.inner.stop_requested.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or((None, None));
                End::Aborted(e, c)
            }
        }
    };
    let (event_type, details, outcome) = match end {
        End::Done(Ok(output)) => (
            EventType::ExecutionSucceeded,
            EventDetails { output: Some(output.clone()), ..Default::default() },
            (Status::Succeeded, Some(output), None, None),
        ),
        End::Done(Err(e)) => {
            let (error, cause) = (none_if_empty(e.error), none_if_empty(e.cause));
            (
                EventType::ExecutionFailed,
                EventDetails { error: error.clone(), cause: cause.clone(), ..Default::default() },
                (Status::Failed, None, error, cause),
            )
        }
        End::TimedOut => {
            let error = Some(names::TIMEOUT.to_string());
            let cause = Some(format!(
                "The execution timed out after {} seconds (TimeoutSeconds of the state machine)",
                sm.definition.timeout_seconds.unwrap_or(0)
            ));
            (
                EventType::ExecutionTimedOut,
                EventDetails { error: error.clone(), cause: cause.clone(), ..Default::default() },
                (Status::TimedOut, None, error, cause),
            )
        }
        End::Aborted(error, cause) => (
            EventType::ExecutionAborted,
            EventDetails { error: error.clone(), cause: cause.clone(), ..Default::default() },
            (Status::Aborted, None, error, cause),
        ),
    };
    exec.emit(&mut th, event_type, details);
    tracing::debug!(execution = %exec.arn(), status = outcome.0.as_str(), "execution ended");
    let (status, output, error, cause) = outcome;
    exec.inner.outcome.send_replace(Some(Outcome { status, output, error, cause, stop_date: clock.now() }));
}

enum Flow {
    Next(String, Value),
    End(Value),
}

struct Interp<'a> {
    exec: &'a Execution,
    clock: Clock,
}

/// Millisecond ISO-8601 in UTC, as the context object shows times.
pub fn iso_ms(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

struct StateCtx<'a> {
    name: &'a str,
    entered: OffsetDateTime,
    retry_count: u64,
}

impl<'a> Interp<'a> {
    fn context(&self, st: &StateCtx<'_>, item: Option<(usize, &Value)>) -> Value {
        let e = &self.exec.inner;
        let mut ctx = json!({
            "Execution": {
                "Id": e.arn,
                "Input": e.input,
                "Name": e.name,
                "RoleArn": e.state_machine.role_arn,
                "StartTime": iso_ms(e.start_date),
                "RedriveCount": 0,
            },
            "State": {"EnteredTime": iso_ms(st.entered), "Name": st.name, "RetryCount": st.retry_count},
            "StateMachine": {"Id": e.state_machine.arn, "Name": e.state_machine.name},
            "Task": {},
        });
        if let (Some((i, v)), Value::Object(m)) = (item, &mut ctx) {
            m.insert("Map".into(), json!({"Item": {"Index": i, "Value": v}}));
        }
        ctx
    }

    fn render(
        &self,
        t: &Template,
        input: &Value,
        st: &StateCtx<'_>,
        item: Option<(usize, &Value)>,
    ) -> Result<Value, StateError> {
        let build = || self.context(st, item);
        t.render(&Env::new(input, &build))
    }

    fn resolve(
        &self,
        p: &crate::path::JsonPath,
        input: &Value,
        st: &StateCtx<'_>,
    ) -> Result<Value, StateError> {
        let build = || self.context(st, None);
        Env::new(input, &build)
            .resolve(p)
            .map_err(|e| StateError::runtime(format!("Invalid path '{p}': {e}")))
    }

    fn run_scope<'s>(
        &'s self,
        scope: &'s Scope,
        input: Value,
        th: &'s mut Thread,
    ) -> BoxFuture<'s, Result<Value, StateError>> {
        Box::pin(async move {
            let mut state = scope
                .get(&scope.start_at)
                .ok_or_else(|| StateError::runtime(format!("no state '{}'", scope.start_at)))?;
            let mut input = input;
            loop {
                match self.run_state(state, input, th).await? {
                    Flow::End(out) => return Ok(out),
                    Flow::Next(next, out) => {
                        state = scope
                            .get(&next)
                            .ok_or_else(|| StateError::runtime(format!("no state '{next}'")))?;
                        input = out;
                    }
                }
            }
        })
    }

    fn flow(state: &State, out: Value) -> Flow {
        match &state.next {
            Some(n) => Flow::Next(n.clone(), out),
            None => Flow::End(out),
        }
    }

    fn exited(&self, th: &mut Thread, state: &State, out: &Value) {
        self.exec.emit(
            th,
            EventType::exited(state.type_name()),
            EventDetails { name: Some(state.name.clone()), output: Some(out.clone()), ..Default::default() },
        );
    }

    async fn run_state(&self, state: &State, raw: Value, th: &mut Thread) -> Result<Flow, StateError> {
        let st = StateCtx { name: &state.name, entered: self.clock.now(), retry_count: 0 };
        self.exec.emit(
            th,
            EventType::entered(state.type_name()),
            EventDetails { name: Some(state.name.clone()), input: Some(raw.clone()), ..Default::default() },
        );
        match &state.kind {
            StateKind::Pass { result } => {
                let eff = input_path(state, &raw)?;
                let res = match (result, &state.parameters) {
                    (Some(r), _) => r.clone(),
                    (None, Some(p)) => self.render(p, &eff, &st, None)?,
                    (None, None) => eff.into_owned(),
                };
                let out = output_path(state, result_path(&state.result_path, &raw, res)?)?;
                self.exited(th, state, &out);
                Ok(Self::flow(state, out))
            }
            StateKind::Succeed => {
                let out = output_path(state, input_path(state, &raw)?.into_owned())?;
                self.exited(th, state, &out);
                Ok(Flow::End(out))
            }
            StateKind::Fail { error, cause } => {
                let field = |f: &Option<FailField>, which: &str| -> Result<String, StateError> {
                    match f {
                        None => Ok(String::new()),
                        Some(FailField::Literal(s)) => Ok(s.clone()),
                        Some(FailField::Dynamic(t)) => match self.render(t, &raw, &st, None)? {
                            Value::String(s) => Ok(s),
                            other => Err(StateError::runtime(format!(
                                "{which}Path of Fail state '{}' must resolve to a string, got {other}",
                                state.name
                            ))),
                        },
                    }
                };
                Err(StateError::new(field(error, "Error")?, field(cause, "Cause")?))
            }
            StateKind::Choice { choices, default } => {
                let eff = input_path(state, &raw)?;
                let build = || self.context(&st, None);
                let env = Env::new(&eff, &build);
                let mut next = None;
                for (rule, target) in choices {
                    if rule.eval(&env)? {
                        next = Some(target.clone());
                        break;
                    }
                }
                drop(env);
                let next = next
                    .or_else(|| default.clone())
                    .ok_or_else(|| StateError::new(names::NO_CHOICE_MATCHED, "No Matches!"))?;
                let out = output_path(state, eff.into_owned())?;
                self.exited(th, state, &out);
                Ok(Flow::Next(next, out))
            }
            StateKind::Wait(w) => {
                let eff = input_path(state, &raw)?;
                let d = match w {
                    WaitFor::Seconds(s) => Duration::from_secs(*s),
                    WaitFor::SecondsPath(p) => match self.resolve(p, &eff, &st)? {
                        Value::Number(n) if n.as_u64().is_some() => {
                            Duration::from_secs(n.as_u64().unwrap_or(0))
                        }
                        other => {
                            return Err(StateError::runtime(format!(
                                "SecondsPath '{p}' of Wait state '{}' must resolve to a non-negative integer, got {other}",
                                state.name
                            )));
                        }
                    },
                    WaitFor::Timestamp(t) => until(self.clock.now(), *t),
                    WaitFor::TimestampPath(p) => match self.resolve(p, &eff, &st)? {
                        Value::String(s) if crate::choice::parse_ts(&s).is_some() => {
                            until(self.clock.now(), crate::choice::parse_ts(&s).unwrap_or(st.entered))
                        }
                        other => {
                            return Err(StateError::runtime(format!(
                                "TimestampPath '{p}' of Wait state '{}' must resolve to an RFC 3339 timestamp, got {other}",
                                state.name
                            )));
                        }
                    },
                };
                self.clock.sleep(d).await;
                let out = output_path(state, eff.into_owned())?;
                self.exited(th, state, &out);
                Ok(Self::flow(state, out))
            }
            StateKind::Task { .. } | StateKind::Parallel { .. } | StateKind::Map { .. } => {
                self.run_with_errors(state, raw, st, th).await
            }
        }
    }

    async fn run_with_errors(
        &self,
        state: &State,
        raw: Value,
        mut st: StateCtx<'_>,
        th: &mut Thread,
    ) -> Result<Flow, StateError> {
        let eff = input_path(state, &raw)?;
        let mut counts = vec![0u64; state.retry.len()];
        let result = loop {
            let attempt = match &state.kind {
                StateKind::Task { resource, timeout } => {
                    self.task(state, resource, timeout.as_ref(), &eff, &st, th).await
                }
                StateKind::Parallel { branches } => self.parallel(state, branches, &eff, &st, th).await,
                StateKind::Map { items_path, item_selector, processor, max_concurrency } => {
                    self.map(
                        state,
                        items_path.as_ref(),
                        item_selector.as_ref(),
                        processor,
                        max_concurrency,
                        &eff,
                        &st,
                        th,
                    )
                    .await
                }
                _ => Err(StateError::runtime("not a task-like state")),
            };
            match attempt {
                Ok(v) => break Ok(v),
                Err(e) if e.is_terminal() => return Err(e),
                Err(e) => {
                    if let Some(i) = state.retry.iter().position(|r| e.matches(&r.error_equals))
                        && counts[i] < state.retry[i].max_attempts
                    {
                        let delay = retry_delay(&state.retry[i], counts[i]);
                        counts[i] += 1;
                        st.retry_count += 1;
                        tracing::debug!(state = %state.name, error = %e.error, attempt = st.retry_count, ?delay, "retrying");
                        self.clock.sleep(delay).await;
                        continue;
                    }
                    break Err(e);
                }
            }
        };
        let caught = match result {
            Ok(res) => match result_path(&state.result_path, &raw, res) {
                Ok(out) => {
                    let out = output_path(state, out)?;
                    self.exited(th, state, &out);
                    return Ok(Self::flow(state, out));
                }
                Err(e) => e,
            },
            Err(e) => e,
        };
        if caught.is_terminal() {
            return Err(caught);
        }
        match state.catch.iter().find(|c: &&Catcher| caught.matches(&c.error_equals)) {
            Some(c) => {
                let out = result_path(&c.result_path, &raw, caught.to_output())?;
                self.exited(th, state, &out);
                Ok(Flow::Next(c.next.clone(), out))
            }
            None => Err(caught),
        }
    }

    async fn task(
        &self,
        state: &State,
        resource: &str,
        timeout: Option<&Seconds>,
        eff: &Value,
        st: &StateCtx<'_>,
        th: &mut Thread,
    ) -> Result<Value, StateError> {
        let params = match &state.parameters {
            Some(t) => self.render(t, eff, st, None)?,
            None => eff.clone(),
        };
        let timeout_secs = match timeout {
            None => None,
            Some(Seconds::Fixed(s)) => Some(*s),
            Some(Seconds::Path(p)) => match self.resolve(p, eff, st)?.as_u64() {
                Some(s) if s > 0 => Some(s),
                _ => {
                    return Err(StateError::runtime(format!(
                        "TimeoutSecondsPath '{p}' of state '{}' must resolve to a positive integer",
                        state.name
                    )));
                }
            },
        };
        let target = Target::of(resource);
        let direct = matches!(target, Target::LambdaFunction(_));
        let (rtype, raction) = registry::resource_type(resource);
        let region = self.exec.inner.state_machine.region.clone();
        if direct {
            self.exec.emit(
                th,
                EventType::LambdaFunctionScheduled,
                EventDetails {
                    resource: Some(resource.to_string()),
                    input: Some(params.clone()),
                    timeout_in_seconds: timeout_secs,
                    ..Default::default()
                },
            );
            self.exec.emit(th, EventType::LambdaFunctionStarted, EventDetails::default());
        } else {
            self.exec.emit(
                th,
                EventType::TaskScheduled,
                EventDetails {
                    resource_type: Some(rtype.clone()),
                    resource: Some(raction.clone()),
                    region: Some(region),
                    parameters: Some(params.clone()),
                    timeout_in_seconds: timeout_secs,
                    ..Default::default()
                },
            );
            self.exec.emit(
                th,
                EventType::TaskStarted,
                EventDetails {
                    resource_type: Some(rtype.clone()),
                    resource: Some(raction.clone()),
                    ..Default::default()
                },
            );
        }
        let call = self.invoke(&state.name, resource, &target, params);
        let result = match timeout_secs {
            Some(s) => match tokio::time::timeout(self.clock.timeout(Duration::from_secs(s)), call).await {
                Ok(r) => r,
                Err(_) => Err(StateError::new(names::TIMEOUT, "")),
            },
            None => call.await,
        };
        let (ok_type, fail_type, timeout_type) = if direct {
            (
                EventType::LambdaFunctionSucceeded,
                EventType::LambdaFunctionFailed,
                EventType::LambdaFunctionTimedOut,
            )
        } else {
            (EventType::TaskSucceeded, EventType::TaskFailed, EventType::TaskTimedOut)
        };
        let with_resource = |mut d: EventDetails| {
            if !direct {
                d.resource_type = Some(rtype.clone());
                d.resource = Some(raction.clone());
            }
            d
        };
        match result {
            Ok(v) => {
                self.exec.emit(
                    th,
                    ok_type,
                    with_resource(EventDetails { output: Some(v.clone()), ..Default::default() }),
                );
                match &state.result_selector {
                    Some(t) => self.render(t, &v, st, None),
                    None => Ok(v),
                }
            }
            Err(e) => {
                let ty = if e.error == names::TIMEOUT { timeout_type } else { fail_type };
                self.exec.emit(
                    th,
                    ty,
                    with_resource(EventDetails {
                        error: Some(e.error.clone()),
                        cause: none_if_empty(e.cause.clone()),
                        ..Default::default()
                    }),
                );
                Err(e)
            }
        }
    }

    fn invoke(
        &self,
        state: &str,
        resource: &str,
        target: &Target,
        params: Value,
    ) -> BoxFuture<'static, Result<Value, StateError>> {
        if let Some(session) = &self.exec.inner.mocks
            && let Some(answer) = session.next_answer(state)
        {
            let r = match answer {
                Ok(MockAnswer::Return(v)) => Ok(v),
                Ok(MockAnswer::Throw(e)) => Err(StateError::from(e)),
                Err(msg) => Err(StateError::runtime(msg)),
            };
            return Box::pin(async move { r });
        }
        let sm = &self.exec.inner.state_machine;
        let not_found = |name: &str| {
            StateError::new(
                "Lambda.ResourceNotFoundException",
                format!(
                    "Function not found: arn:aws:lambda:{}:{}:function:{name} (no handler registered as '{name}')",
                    sm.region,
                    sm.arn.split(':').nth(4).unwrap_or("")
                ),
            )
        };
        match target {
            Target::LambdaFunction(name) => match sm.tasks.function(name) {
                Some(h) => {
                    let fut = h(params);
                    Box::pin(async move { fut.await.map_err(StateError::from) })
                }
                None => {
                    let e = not_found(name);
                    Box::pin(async move { Err(e) })
                }
            },
            Target::LambdaInvoke => {
                let Some(fname) = params.get("FunctionName").and_then(Value::as_str) else {
                    let e = StateError::runtime(format!(
                        "The field 'FunctionName' is required by {resource} in state '{state}'"
                    ));
                    return Box::pin(async move { Err(e) });
                };
                let name = registry::function_name(fname).to_string();
                let payload = params.get("Payload").cloned().unwrap_or_else(|| json!({}));
                match sm.tasks.function(&name) {
                    Some(h) => {
                        let fut = h(payload);
                        Box::pin(async move {
                            let v = fut.await.map_err(StateError::from)?;
                            Ok(json!({
                                "ExecutedVersion": "$LATEST",
                                "Payload": v,
                                "SdkHttpMetadata": {"HttpStatusCode": 200},
                                "SdkResponseMetadata": {"RequestId": crate::intrinsic::uuid_v4()},
                                "StatusCode": 200
                            }))
                        })
                    }
                    None => {
                        let e = not_found(&name);
                        Box::pin(async move { Err(e) })
                    }
                }
            }
            Target::Other => match sm.tasks.resource(resource) {
                Some(h) => {
                    let fut = h(params);
                    Box::pin(async move { fut.await.map_err(StateError::from) })
                }
                None => {
                    let e = StateError::new(
                        names::TASK_FAILED,
                        format!("no handler registered for resource '{resource}' (state '{state}')"),
                    );
                    Box::pin(async move { Err(e) })
                }
            },
        }
    }

    async fn parallel(
        &self,
        state: &State,
        branches: &[Scope],
        eff: &Value,
        st: &StateCtx<'_>,
        th: &mut Thread,
    ) -> Result<Value, StateError> {
        let input = match &state.parameters {
            Some(t) => self.render(t, eff, st, None)?,
            None => eff.clone(),
        };
        let started = self.exec.emit(th, EventType::ParallelStateStarted, EventDetails::default());
        let runs = branches.iter().map(|b| {
            let input = input.clone();
            async move {
                let mut bt = Thread { prev: started };
                self.run_scope(b, input, &mut bt).await
            }
        });
        match futures::future::try_join_all(runs).await {
            Ok(outs) => {
                self.exec.emit(th, EventType::ParallelStateSucceeded, EventDetails::default());
                let v = Value::Array(outs);
                match &state.result_selector {
                    Some(t) => self.render(t, &v, st, None),
                    None => Ok(v),
                }
            }
            Err(e) => {
                self.exec.emit(th, EventType::ParallelStateFailed, EventDetails::default());
                Err(e)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn map(
        &self,
        state: &State,
        items_path: Option<&crate::path::JsonPath>,
        item_selector: Option<&Template>,
        processor: &Scope,
        max_concurrency: &Concurrency,
        eff: &Value,
        st: &StateCtx<'_>,
        th: &mut Thread,
    ) -> Result<Value, StateError> {
        let items = match items_path {
            Some(p) => self.resolve(p, eff, st)?,
            None => eff.clone(),
        };
        let Value::Array(items) = items else {
            return Err(StateError::runtime(format!(
                "Map state '{}': the items (ItemsPath {}) must be a JSON array, got {}",
                state.name,
                items_path.map_or("$", |p| p.as_str()),
                crate::path::type_name(&items)
            )));
        };
        let limit = match max_concurrency {
            Concurrency::Fixed(n) => *n,
            Concurrency::Path(p) => self.resolve(p, eff, st)?.as_u64().ok_or_else(|| {
                StateError::runtime(format!(
                    "MaxConcurrencyPath '{p}' must resolve to a non-negative integer"
                ))
            })?,
        };
        let limit = if limit == 0 { items.len().max(1) } else { limit as usize };
        let mut inputs = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            inputs.push(match item_selector {
                Some(t) => self.render(t, eff, st, Some((i, item)))?,
                None => item.clone(),
            });
        }
        let started = self.exec.emit(
            th,
            EventType::MapStateStarted,
            EventDetails { length: Some(items.len() as u64), ..Default::default() },
        );
        let name = &state.name;
        let runs = inputs.into_iter().enumerate().map(|(i, input)| async move {
            let mut it = Thread { prev: started };
            let details =
                || EventDetails { name: Some(name.clone()), index: Some(i as u64), ..Default::default() };
            self.exec.emit(&mut it, EventType::MapIterationStarted, details());
            let r = self.run_scope(processor, input, &mut it).await;
            let ty = if r.is_ok() { EventType::MapIterationSucceeded } else { EventType::MapIterationFailed };
            self.exec.emit(&mut it, ty, details());
            (i, r)
        });
        let mut stream = futures::stream::iter(runs).buffer_unordered(limit);
        let mut outs: Vec<Value> = vec![Value::Null; items.len()];
        while let Some((i, r)) = stream.next().await {
            match r {
                Ok(v) => outs[i] = v,
                Err(e) => {
                    drop(stream);
                    self.exec.emit(th, EventType::MapStateFailed, EventDetails::default());
                    return Err(e);
                }
            }
        }
        self.exec.emit(th, EventType::MapStateSucceeded, EventDetails::default());
        let v = Value::Array(outs);
        match &state.result_selector {
            Some(t) => self.render(t, &v, st, None),
            None => Ok(v),
        }
    }
}

fn until(now: OffsetDateTime, t: OffsetDateTime) -> Duration {
    let d = t - now;
    if d.is_positive() { Duration::try_from(d).unwrap_or(Duration::ZERO) } else { Duration::ZERO }
}

/// Delay before retry number `attempt` (0-based) of a retrier.
pub fn retry_delay(r: &Retrier, attempt: u64) -> Duration {
    let mut secs = r.interval_seconds as f64 * r.backoff_rate.powi(attempt.min(i32::MAX as u64) as i32);
    if let Some(max) = r.max_delay_seconds {
        secs = secs.min(max as f64);
    }
    secs = secs.min(99_999_999.0);
    if r.jitter == Jitter::Full {
        secs *= fastrand::f64();
    }
    Duration::from_secs_f64(secs.max(0.0))
}

/// The effective input; borrowed when InputPath is absent (the common case).
fn input_path<'v>(state: &State, raw: &'v Value) -> Result<Cow<'v, Value>, StateError> {
    match &state.input_path {
        IoPath::Default => Ok(Cow::Borrowed(raw)),
        IoPath::Null => Ok(Cow::Owned(json!({}))),
        IoPath::Path(p) => p.select(raw).map(Cow::Owned).map_err(|_| {
            StateError::runtime(format!(
                "Invalid path '{p}' : The JSONPath '{p}' specified for the field 'InputPath' could not be found in the input '{raw}' (state '{}')",
                state.name
            ))
        }),
    }
}

fn output_path(state: &State, out: Value) -> Result<Value, StateError> {
    match &state.output_path {
        IoPath::Default => Ok(out),
        IoPath::Null => Ok(json!({})),
        IoPath::Path(p) => p.select(&out).map_err(|_| {
            StateError::runtime(format!(
                "Invalid path '{p}' : The JSONPath '{p}' specified for the field 'OutputPath' could not be found in the input '{out}' (state '{}')",
                state.name
            ))
        }),
    }
}

fn result_path(rp: &ResultPath, raw: &Value, result: Value) -> Result<Value, StateError> {
    match rp {
        ResultPath::Default => Ok(result),
        ResultPath::Null => Ok(raw.clone()),
        ResultPath::Path(p) => {
            let mut out = raw.clone();
            p.set(&mut out, result).map_err(|e| {
                StateError::new(
                    names::RESULT_PATH_MATCH_FAILURE,
                    format!("Unable to apply ReferencePath {p} to input: {e}"),
                )
            })?;
            Ok(out)
        }
    }
}
