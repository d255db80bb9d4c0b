//! Local AWS Step Functions engine: parses, validates and runs Amazon States
//! Language definitions (JSONPath query language) offline, and serves enough of
//! the Step Functions API for the official SDK.
//!
//! Typical use:
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use aurora_dr_asl::{Clock, Definition, Engine, StartOptions, StateMachineSpec, TaskRegistry};
//! let def = Definition::parse(r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}"#)?;
//! let tasks = TaskRegistry::new().with("my-fn", |input| async move { Ok(input) });
//! let engine = Engine::new(Clock::scaled(0.001)?);
//! let sm = engine.register(StateMachineSpec::new("demo", def).tasks(tasks))?;
//! let exec = engine.start(&sm.arn, serde_json::json!({"x": 1}), StartOptions::named("run-1"))?;
//! let outcome = exec.wait().await;
//! # let _ = outcome; Ok(()) }
//! ```
//!
//! Modules: [`definition`] (load + validate), [`path`] (JSONPath / reference
//! paths), [`env`] (what `$` and `$$` mean), [`payload`] (Parameters-style
//! templates), [`intrinsic`]
//! (`States.*` functions), [`choice`] (Choice rules), [`engine`] (executions,
//! Distributed Map runs, task-token callbacks), [`history`] (events),
//! [`limits`] (the service quotas enforced), [`registry`] (task handlers,
//! substitutions), [`mock`] (Step Functions Local mock configs), [`clock`],
//! [`server`] (Step Functions JSON 1.0 API).

pub mod choice;
pub mod clock;
pub mod definition;
pub mod engine;
pub mod env;
pub mod error;
pub mod history;
pub mod intrinsic;
pub mod limits;
pub mod mock;
pub mod path;
pub mod payload;
pub mod registry;
pub mod server;

pub use clock::Clock;
pub use definition::{Definition, validate};
pub use engine::{
    Engine, EngineError, Execution, HistorySubscription, MapRun, MapRunCounts, MapRunStatus, Outcome,
    StartOptions, StateMachine, StateMachineSpec, Status,
};
pub use error::{AslError, Diagnostic, StateError, TaskError};
pub use history::{EventDetails, EventType, HistoryEvent};
pub use mock::{MockConfig, TestCase};
pub use registry::{Handler, Substitutions, TaskFuture, TaskRegistry};
pub use server::{router_for_accounts, serve, serve_accounts_with_shutdown, serve_with_shutdown};

impl Definition {
    /// Apply `${Name}` substitutions to every string value, then parse and validate.
    pub fn parse_with(text: &str, subs: &Substitutions) -> Result<Definition, AslError> {
        let mut v: serde_json::Value = serde_json::from_str(text)?;
        subs.apply(&mut v)?;
        Definition::from_value(v)
    }
}
