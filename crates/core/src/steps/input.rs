//! The one classifier of a step's input.
//!
//! Every Task state hands its function one of three kinds of input:
//! - [`InputKind::Run`]: the run payload ([`RunState`], or FetchStatus's
//!   `{"waitFor", "run"}`) on the way to a restored cluster;
//! - [`InputKind::FailurePath`]: a payload a `Catch` extended with
//!   `failure` (the failure path's clean-ups and notifications); it may not
//!   parse as a [`RunState`], as the failure may be that it is malformed;
//! - [`InputKind::Retention`]: `{"mode": "retention" | "makeRoom", "run": ...}`
//!   (the states of the apply-retention function: `ApplyRetention`,
//!   `MakeRoom`, `MakeRoomAfterQuotaError`).
//!
//! and CompleteWait, which no state invokes, takes [`InputKind::RdsEvent`]:
//! an RDS event as EventBridge delivers it (`"source": "aws.rds"`).
//!
//! Each function serves one kind ([`expect`]); input of another kind is
//! `InvalidInput` naming the state it was meant for, so a miswired state
//! fails loudly before any AWS call.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{DrError, DrResult};
use crate::ids::RunId;
use crate::payload::RunState;

/// The `mode` value of a retention input.
pub const RETENTION_MODE: &str = "retention";
/// The `mode` value of a MakeRoom input (retention before CreateSnapshot).
pub const MAKE_ROOM_MODE: &str = "makeRoom";

/// What a step's input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Run,
    FailurePath,
    Retention,
    RdsEvent,
}

impl InputKind {
    /// Classifies an input: `failure` (not null) makes a failure-path
    /// payload, `"mode": "retention"` a retention input, anything else is
    /// the run payload (whose own parser names what is wrong with it).
    pub fn of(input: &Value) -> Self {
        if input.get("failure").is_some_and(|f| !f.is_null()) {
            Self::FailurePath
        } else if input.get("source").and_then(Value::as_str) == Some("aws.rds")
            && input.get("detail-type").is_some()
        {
            Self::RdsEvent
        } else if matches!(input.get("mode").and_then(Value::as_str), Some(RETENTION_MODE | MAKE_ROOM_MODE)) {
            Self::Retention
        } else {
            Self::Run
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Run => "the run payload",
            Self::FailurePath => "a failure-path payload (it carries `failure`)",
            Self::Retention => "a retention input ({\"mode\": \"retention\" or \"makeRoom\", \"run\": ...})",
            Self::RdsEvent => {
                "an RDS event from EventBridge ({\"source\": \"aws.rds\", \"detail-type\", \"detail\"})"
            }
        }
    }
}

/// `Ok` when `input` is of the kind `state` serves; `InvalidInput` otherwise.
pub fn expect(input: &Value, want: InputKind, state: &str) -> DrResult<()> {
    let got = InputKind::of(input);
    if got == want {
        Ok(())
    } else {
        Err(DrError::invalid_input(format!(
            "{state} takes {}, but got {}: check which function the state machine's Task invokes",
            want.describe(),
            got.describe()
        )))
    }
}

/// `InvalidInput` when a typed run payload carries `failure`: `state` has no
/// failure-path behaviour (that is another function's state).
pub fn no_failure(run: &RunState, state: &str) -> DrResult<()> {
    match &run.failure {
        Some(_) => Err(DrError::invalid_input(format!(
            "{state} has no failure-path behaviour; payload carries `failure`"
        ))),
        None => Ok(()),
    }
}

/// The `runId` of a payload that may not parse as [`RunState`].
pub fn loose_run_id(input: &Value) -> Option<RunId> {
    input.get("runId")?.as_str()?.parse().ok()
}

/// The run of a failure-path payload: the full [`RunState`] when it parses,
/// else just its `runId` and `createdAt` (all that tags and generated names
/// need).
pub fn loose_run(input: &Value) -> Option<RunState> {
    if let Ok(run) = RunState::from_value(input.clone()) {
        return Some(run);
    }
    let created_at = OffsetDateTime::parse(input.get("createdAt")?.as_str()?, &Rfc3339).ok()?;
    Some(RunState::new(loose_run_id(input)?, created_at))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn inputs_are_classified_by_failure_then_mode() {
        let cases = [
            (json!({"runId": "run-1"}), InputKind::Run),
            (json!({"waitFor": "sourceSnapshot", "run": {}}), InputKind::Run),
            (json!({"runId": "run-1", "failure": null}), InputKind::Run),
            (json!({"runId": "run-1", "failure": {"Error": "X"}}), InputKind::FailurePath),
            (json!({"failure": "boom"}), InputKind::FailurePath),
            (json!({"mode": "retention", "run": {}}), InputKind::Retention),
            (json!({"mode": "makeRoom", "quotaReached": true, "run": {}}), InputKind::Retention),
            (json!({"mode": "other", "run": {}}), InputKind::Run),
            (json!({"mode": "retention", "failure": {"Error": "X"}}), InputKind::FailurePath),
            (json!("not an object"), InputKind::Run),
            (
                json!({"source": "aws.rds", "detail-type": "RDS DB Cluster Event", "detail": {}}),
                InputKind::RdsEvent,
            ),
            (json!({"source": "aws.sns", "detail-type": "x"}), InputKind::Run),
        ];
        for (input, want) in cases {
            assert_eq!(InputKind::of(&input), want, "{input}");
        }
    }

    #[test]
    fn the_wrong_kind_is_named_with_the_state() {
        let err = expect(&json!({"failure": {"Error": "X"}}), InputKind::Run, "Share").expect_err("kind");
        assert_eq!(err.asl_name(), "InvalidInput");
        assert!(err.to_string().contains("Share takes the run payload"), "{err}");
        assert!(err.to_string().contains("failure-path payload"), "{err}");
        expect(&json!({"mode": "retention"}), InputKind::Retention, "ApplyRetention").expect("retention");
    }

    #[test]
    fn a_failure_payload_is_read_loosely() {
        let partial = json!({"runId": "run-1", "createdAt": "2026-11-25T16:00:05Z", "other": true});
        let run = loose_run(&partial).expect("run");
        assert_eq!((run.run_id.as_str(), run.stamp().as_str()), ("run-1", "20261125160005"));
        assert!(loose_run(&json!({"runId": "run-1"})).is_none(), "without createdAt no names can be made");
        assert_eq!(loose_run_id(&json!({"runId": "run-1"})).map(|r| r.to_string()), Some("run-1".into()));
        assert!(loose_run_id(&json!({"runId": 5})).is_none());
    }
}
