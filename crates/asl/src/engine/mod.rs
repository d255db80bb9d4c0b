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

//!
//! Layout: this module holds the engine (state machines and the table of
//! executions); [`execution`] the execution handle, its history and the task
//! that drives it; `interp` the interpreter of states; `io` the path
//! processing of state input and output.

mod callback;
mod execution;
mod interp;
mod io;
mod map;
mod map_run;

pub use execution::{Execution, HistorySubscription, Outcome, Status};
pub use interp::retry_delay;
pub use io::iso_ms;
pub use map_run::{MapRun, MapRunCounts, MapRunStatus};

use crate::clock::Clock;
use crate::definition::Definition;
use crate::error::AslError;
use crate::limits;
use crate::mock::{MockConfig, MockSession};
use crate::registry::TaskRegistry;
use execution::{ExecInner, drive};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use time::OffsetDateTime;

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
    /// A request outside the API's constraints (lengths, sizes).
    #[error("{0}")]
    Validation(String),
    #[error("Invalid Token: '{0}'")]
    InvalidToken(String),
    #[error("Task Does Not Exist: '{0}'")]
    TaskDoesNotExist(String),
    #[error("Task Timed Out: '{0}' (its task has already ended)")]
    TaskTimedOut(String),
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
            EngineError::MockConfig(_) | EngineError::Validation(_) => "ValidationException",
            EngineError::InvalidToken(_) => "InvalidToken",
            EngineError::TaskDoesNotExist(_) => "TaskDoesNotExist",
            EngineError::TaskTimedOut(_) => "TaskTimedOut",
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
    map_runs: Mutex<Vec<Arc<MapRun>>>,
    tokens: Mutex<callback::Tokens>,
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

pub use crate::limits::valid_name;

/// The StartExecution/CreateStateMachine check of a name: a length outside
/// 1-80 characters is a `ValidationException` (a length constraint of the
/// API), a forbidden character `InvalidName` ("Step Functions service quotas",
/// General quotas; StartExecution API reference).
fn check_name(name: &str) -> Result<(), EngineError> {
    let n = name.chars().count();
    if !(1..=limits::NAME_CHARS).contains(&n) {
        let bound = if n == 0 {
            "Member must have length greater than or equal to 1".to_string()
        } else {
            format!("Member must have length less than or equal to {}", limits::NAME_CHARS)
        };
        return Err(EngineError::Validation(format!(
            "1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: {bound}"
        )));
    }
    if !valid_name(name) {
        return Err(EngineError::InvalidName(name.to_string()));
    }
    Ok(())
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
                map_runs: Mutex::new(Vec::new()),
                tokens: Mutex::new(callback::Tokens::default()),
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
        check_name(&spec.name)?;
        if let Some(mocks) = &spec.mocks {
            mocks.check(&spec.name, &spec.definition).map_err(EngineError::MockConfig)?;
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
            Some(n) => {
                check_name(&n)?;
                n
            }
            None => crate::intrinsic::uuid_v4(),
        };
        // StartExecution API reference: `input` has a maximum length of 262,144
        // (the payload quota of "Step Functions service quotas").
        let size = limits::json_bytes(&input);
        if size > limits::PAYLOAD_BYTES {
            return Err(EngineError::Validation(format!(
                "1 validation error detected: Value at 'input' failed to satisfy constraint: Member must have length less than or equal to {} (the input is {size} bytes)",
                limits::PAYLOAD_BYTES
            )));
        }
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
        self.launch(sm, name, input, mocks, None)
    }

    /// Start an execution of `sm` (registered or not: a Distributed Map's
    /// children run a state machine of their own). Idempotent by name as
    /// [`Engine::start`].
    fn launch(
        &self,
        sm: Arc<StateMachine>,
        name: String,
        input: Value,
        mocks: Option<MockSession>,
        map_run_arn: Option<String>,
    ) -> Result<Execution, EngineError> {
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
        let exec =
            Execution::new(ExecInner::new(arn.clone(), name, sm, input, mocks, &self.inner, map_run_arn));
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

    /// The child executions of one Map Run (newest first).
    pub fn map_run_executions(&self, map_run_arn: &str) -> Vec<Execution> {
        let execs = self.inner.executions.lock().unwrap_or_else(|p| p.into_inner());
        execs.order.iter().rev().filter(|e| e.map_run_arn() == Some(map_run_arn)).cloned().collect()
    }

    /// Map Runs, optionally of one execution (oldest first).
    pub fn map_runs(&self, execution_arn: Option<&str>) -> Vec<Arc<MapRun>> {
        let runs = self.inner.map_runs.lock().unwrap_or_else(|p| p.into_inner());
        runs.iter().filter(|r| execution_arn.is_none_or(|a| r.execution_arn == a)).cloned().collect()
    }

    pub fn map_run(&self, arn: &str) -> Option<Arc<MapRun>> {
        let runs = self.inner.map_runs.lock().unwrap_or_else(|p| p.into_inner());
        runs.iter().find(|r| r.arn == arn).cloned()
    }

    fn add_map_run(&self, run: Arc<MapRun>) {
        self.inner.map_runs.lock().unwrap_or_else(|p| p.into_inner()).push(run);
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
