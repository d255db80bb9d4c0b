//! Loading and validating an ASL definition (JSONPath query language).
//!
//! [`Definition::parse`] either returns a fully checked definition or every
//! problem found ([`AslError::Invalid`]), each naming the state (slash path for
//! nested states: `Map/ItemProcessor/Inner`) and the field. Checks: JSON shape
//! and field types, fields allowed per state type, `Next`/`Default`/Catch
//! targets, reachability from `StartAt`, a terminal state in every scope,
//! `Next` xor `End`, path syntax (reference paths where ASL requires them),
//! payload templates and intrinsic calls, Retry/Catch fields, timeouts.
//! Features this engine does not run are rejected here, naming the feature and
//! the state: JSONata, variables (`Assign`), a Distributed Map's S3 fields
//! (`ItemReader`, `ResultWriter`) and `ItemBatcher`, EXPRESS child
//! executions, `.sync` integrations, activities.
//!
//! Layout: this module holds the model (what a loaded definition is);
//! `parse` the loader and its checks; `map` the Map state (Inline and
//! Distributed); `retry_catch` the Retry and Catch fields and the reserved
//! `States.*` error names.

mod map;
mod parse;
mod retry_catch;
#[cfg(test)]
mod tests;

use crate::choice::Rule;
use crate::error::{AslError, Diagnostic};
use crate::path::JsonPath;
use crate::payload::Template;
use serde_json::Value;
use std::collections::HashMap;
use time::OffsetDateTime;

/// A loaded, validated state machine definition.
#[derive(Debug, Clone)]
pub struct Definition {
    pub comment: Option<String>,
    /// Machine-level `TimeoutSeconds`.
    pub timeout_seconds: Option<u64>,
    pub root: Scope,
    source: Value,
}

/// A set of states with a start state: the machine, a Parallel branch or a Map processor.
#[derive(Debug, Clone)]
pub struct Scope {
    pub start_at: String,
    pub states: Vec<State>,
    index: HashMap<String, usize>,
}

impl Scope {
    pub fn get(&self, name: &str) -> Option<&State> {
        self.index.get(name).map(|&i| &self.states[i])
    }
}

/// `InputPath` / `OutputPath`: absent means `$`, JSON null means `{}`.
#[derive(Debug, Clone, PartialEq)]
pub enum IoPath {
    Default,
    Null,
    Path(JsonPath),
}

/// `ResultPath`: absent means `$` (replace), JSON null discards the result.
#[derive(Debug, Clone, PartialEq)]
pub enum ResultPath {
    Default,
    Null,
    Path(JsonPath),
}

/// A number of seconds given literally or by a reference path.
#[derive(Debug, Clone, PartialEq)]
pub enum Seconds {
    Fixed(u64),
    Path(JsonPath),
}

#[derive(Debug, Clone, PartialEq)]
pub enum WaitFor {
    Seconds(u64),
    SecondsPath(JsonPath),
    Timestamp(OffsetDateTime),
    TimestampPath(JsonPath),
}

/// `Error`/`Cause` of a Fail state: literal, or `ErrorPath`/`CausePath`.
#[derive(Debug, Clone, PartialEq)]
pub enum FailField {
    Literal(String),
    Dynamic(Template),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    None,
    Full,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Retrier {
    pub error_equals: Vec<String>,
    pub interval_seconds: u64,
    pub max_attempts: u64,
    pub backoff_rate: f64,
    pub max_delay_seconds: Option<u64>,
    pub jitter: Jitter,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Catcher {
    pub error_equals: Vec<String>,
    pub next: String,
    pub result_path: ResultPath,
}

/// `MaxConcurrency` of a Map state (0 = unlimited).
#[derive(Debug, Clone, PartialEq)]
pub enum Concurrency {
    Fixed(u64),
    Path(JsonPath),
}

#[derive(Debug, Clone)]
pub enum StateKind {
    Pass {
        result: Option<Value>,
    },
    Task {
        resource: String,
        timeout: Option<Seconds>,
        /// `HeartbeatSeconds(Path)`: enforced for `.waitForTaskToken` tasks.
        heartbeat: Option<Seconds>,
    },
    Choice {
        choices: Vec<(Rule, String)>,
        default: Option<String>,
    },
    Wait(WaitFor),
    Succeed,
    Fail {
        error: Option<FailField>,
        cause: Option<FailField>,
    },
    Parallel {
        branches: Vec<Scope>,
    },
    Map {
        items_path: Option<JsonPath>,
        item_selector: Option<Template>,
        processor: Box<Scope>,
        max_concurrency: Concurrency,
        /// `Some` for `ProcessorConfig.Mode: DISTRIBUTED`.
        distributed: Option<Box<Distributed>>,
    },
}

/// A number given literally or by a reference path.
#[derive(Debug, Clone, PartialEq)]
pub enum NumberOr<T> {
    Fixed(T),
    Path(JsonPath),
}

/// What a Distributed Map adds to a Map state: each item runs as a child
/// execution of the processor, as a state machine of its own.
#[derive(Debug, Clone)]
pub struct Distributed {
    /// `Label`: names the Map Run in its ARN.
    pub label: Option<String>,
    /// `ToleratedFailurePercentage(Path)`: 0-100.
    pub tolerated_failure_percentage: Option<NumberOr<f64>>,
    /// `ToleratedFailureCount(Path)`.
    pub tolerated_failure_count: Option<NumberOr<u64>>,
    /// The processor as a definition of its own (what child executions run).
    pub definition: std::sync::Arc<Definition>,
}

/// One state, with the fields common to several types flattened in (absent
/// where the type does not allow them).
#[derive(Debug, Clone)]
pub struct State {
    pub name: String,
    pub kind: StateKind,
    pub input_path: IoPath,
    pub output_path: IoPath,
    pub parameters: Option<Template>,
    pub result_selector: Option<Template>,
    pub result_path: ResultPath,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
    /// `None` for `End: true` and for Choice/Succeed/Fail.
    pub next: Option<String>,
}

impl State {
    /// The ASL `Type` name.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            StateKind::Pass { .. } => "Pass",
            StateKind::Task { .. } => "Task",
            StateKind::Choice { .. } => "Choice",
            StateKind::Wait(_) => "Wait",
            StateKind::Succeed => "Succeed",
            StateKind::Fail { .. } => "Fail",
            StateKind::Parallel { .. } => "Parallel",
            StateKind::Map { .. } => "Map",
        }
    }
}

impl Definition {
    /// Parse and validate definition text.
    pub fn parse(text: &str) -> Result<Definition, AslError> {
        let v: Value = serde_json::from_str(text)?;
        Definition::from_value(v)
    }

    /// Validate and load an already-parsed JSON definition.
    pub fn from_value(v: Value) -> Result<Definition, AslError> {
        // CreateStateMachine API reference: `definition` is at most 1,048,576 characters.
        let size = crate::limits::json_bytes(&v);
        if size > crate::limits::DEFINITION_BYTES {
            return Err(AslError::Invalid(vec![Diagnostic {
                state: None,
                field: String::new(),
                message: format!(
                    "the definition is {size} bytes; a state machine definition may have at most {}",
                    crate::limits::DEFINITION_BYTES
                ),
            }]));
        }
        let mut cx = parse::Cx::default();
        let def = cx.machine(&v);
        match def {
            Some((comment, timeout_seconds, root)) if cx.diags.is_empty() => {
                Ok(Definition { comment, timeout_seconds, root, source: v })
            }
            _ => Err(AslError::Invalid(cx.diags)),
        }
    }

    /// Every state of the definition, nested ones included (Parallel
    /// branches, Map processors), with its slash-separated location.
    pub fn all_states(&self) -> Vec<(String, &State)> {
        fn walk<'a>(scope: &'a Scope, prefix: &str, out: &mut Vec<(String, &'a State)>) {
            for s in &scope.states {
                let loc = if prefix.is_empty() { s.name.clone() } else { format!("{prefix}/{}", s.name) };
                match &s.kind {
                    StateKind::Parallel { branches } => {
                        for (i, b) in branches.iter().enumerate() {
                            walk(b, &format!("{loc}/Branches[{i}]"), out);
                        }
                    }
                    StateKind::Map { processor, .. } => walk(processor, &format!("{loc}/ItemProcessor"), out),
                    _ => {}
                }
                out.push((loc, s));
            }
        }
        let mut out = Vec::new();
        walk(&self.root, "", &mut out);
        out
    }

    /// The definition of a Distributed Map's processor: what its child
    /// executions run, with the processor's JSON as source.
    pub(crate) fn processor(root: Scope, source: Value) -> Definition {
        Definition { comment: None, timeout_seconds: None, root, source }
    }

    /// The definition as JSON (after substitutions, if any were applied).
    pub fn source(&self) -> &Value {
        &self.source
    }
}

/// Every problem in `text`; empty when the definition is valid.
pub fn validate(text: &str) -> Vec<Diagnostic> {
    match Definition::parse(text) {
        Ok(_) => Vec::new(),
        Err(AslError::Invalid(d)) => d,
        Err(e) => vec![Diagnostic { state: None, field: String::new(), message: e.to_string() }],
    }
}
