//! Error types.
//!
//! Three families, kept apart on purpose:
//! - [`AslError`]: a definition (or mock config) cannot be loaded; carries every
//!   [`Diagnostic`] found, each naming the state and the field.
//! - [`StateError`]: a runtime error inside an execution, named exactly as Step
//!   Functions names it (`States.Timeout`, `States.Runtime`, or the handler's own
//!   error name). Retry/Catch match on [`StateError::error`].
//! - [`TaskError`]: what a task handler returns on failure; it becomes a
//!   `StateError` with the same `error`/`cause`.

use std::fmt;

/// One problem found while loading a definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Slash-separated location of the state, e.g. `Parallel/Branches[0]/Inner`;
    /// `None` for machine-level fields.
    pub state: Option<String>,
    /// The field at fault, e.g. `Next`, `Retry[0].BackoffRate`, `StartAt`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            Some(state) => write!(f, "state '{}', field '{}': {}", state, self.field, self.message),
            None => write!(f, "field '{}': {}", self.field, self.message),
        }
    }
}

/// A definition, mock config or substitution could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AslError {
    #[error("definition is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{} problem(s) in definition:\n{}", .0.len(), list(.0))]
    Invalid(Vec<Diagnostic>),
    #[error("unresolved substitution '${{{0}}}'")]
    UnresolvedSubstitution(String),
    #[error("mock config: {0}")]
    MockConfig(String),
}

impl AslError {
    /// The diagnostics, if this is a validation failure.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            AslError::Invalid(d) => d,
            _ => &[],
        }
    }
}

fn list(d: &[Diagnostic]) -> String {
    d.iter().map(|d| format!("  - {d}")).collect::<Vec<_>>().join("\n")
}

/// A failure reported by a task handler: surfaces in ASL as `error` (matched by
/// `ErrorEquals`) with `cause`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {cause}")]
pub struct TaskError {
    pub error: String,
    pub cause: String,
}

impl TaskError {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        TaskError { error: error.into(), cause: cause.into() }
    }
}

/// A runtime error inside an execution, with the Step Functions error name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {cause}")]
pub struct StateError {
    pub error: String,
    pub cause: String,
}

/// Well-known error names.
pub mod names {
    pub const ALL: &str = "States.ALL";
    pub const TASK_FAILED: &str = "States.TaskFailed";
    pub const TIMEOUT: &str = "States.Timeout";
    pub const HEARTBEAT_TIMEOUT: &str = "States.HeartbeatTimeout";
    pub const RUNTIME: &str = "States.Runtime";
    pub const DATA_LIMIT_EXCEEDED: &str = "States.DataLimitExceeded";
    pub const NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";
    pub const RESULT_PATH_MATCH_FAILURE: &str = "States.ResultPathMatchFailure";
    pub const INTRINSIC_FAILURE: &str = "States.IntrinsicFailure";
    pub const BRANCH_FAILED: &str = "States.BranchFailed";
}

impl StateError {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        StateError { error: error.into(), cause: cause.into() }
    }

    pub fn runtime(cause: impl Into<String>) -> Self {
        StateError::new(names::RUNTIME, cause)
    }

    pub fn intrinsic(cause: impl Into<String>) -> Self {
        StateError::new(names::INTRINSIC_FAILURE, cause)
    }

    /// `States.Runtime` and `States.DataLimitExceeded` end the execution: no
    /// Retry or Catch applies, not even `States.ALL` (as documented by AWS).
    pub fn is_terminal(&self) -> bool {
        self.error == names::RUNTIME || self.error == names::DATA_LIMIT_EXCEEDED
    }

    /// Whether one `ErrorEquals` list matches this error.
    pub fn matches(&self, error_equals: &[String]) -> bool {
        if self.is_terminal() {
            return false;
        }
        // "Error handling in Step Functions": States.Timeout covers a task that
        // ran past TimeoutSeconds or missed its heartbeat, and
        // States.TaskFailed everything but States.Timeout (heartbeat
        // timeouts included, as the stricter reading).
        let timeout = self.error == names::TIMEOUT || self.error == names::HEARTBEAT_TIMEOUT;
        error_equals.iter().any(|e| {
            e == &self.error
                || e == names::ALL
                || (e == names::TIMEOUT && timeout)
                || (e == names::TASK_FAILED && !timeout)
        })
    }

    /// The `{"Error": ..., "Cause": ...}` object that Catch hands to `ResultPath`.
    pub fn to_output(&self) -> serde_json::Value {
        serde_json::json!({ "Error": self.error, "Cause": self.cause })
    }
}

impl From<TaskError> for StateError {
    fn from(e: TaskError) -> Self {
        StateError { error: e.error, cause: e.cause }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn states_all_matches_everything_but_terminal_errors() {
        assert!(StateError::new("Custom", "").matches(&eq(&["States.ALL"])));
        assert!(StateError::new("States.Timeout", "").matches(&eq(&["States.ALL"])));
        assert!(!StateError::runtime("x").matches(&eq(&["States.ALL"])));
        assert!(!StateError::runtime("x").matches(&eq(&["States.Runtime"])));
    }

    #[test]
    fn states_timeout_also_matches_a_heartbeat_timeout() {
        let hb = StateError::new("States.HeartbeatTimeout", "");
        assert!(hb.matches(&eq(&["States.Timeout"])));
        assert!(hb.matches(&eq(&["States.HeartbeatTimeout"])));
        assert!(!hb.matches(&eq(&["States.TaskFailed"])));
        assert!(hb.matches(&eq(&["States.ALL"])));
        assert!(!StateError::new("States.Timeout", "").matches(&eq(&["States.HeartbeatTimeout"])));
    }

    #[test]
    fn task_failed_matches_all_but_timeout() {
        assert!(StateError::new("Custom", "").matches(&eq(&["States.TaskFailed"])));
        assert!(!StateError::new("States.Timeout", "").matches(&eq(&["States.TaskFailed"])));
        assert!(!StateError::new("A", "").matches(&eq(&["B", "C"])));
        assert!(StateError::new("C", "").matches(&eq(&["B", "C"])));
    }
}
