//! The Step Functions quotas the engine enforces, each with the page of the
//! AWS Step Functions Developer Guide (or API Reference) it follows, so a
//! definition that would hit a limit in AWS fails here the same way.
//!
//! | quota | value | page |
//! |---|---|---|
//! | execution history | 25,000 events | "Step Functions service quotas" (Maximum execution history size) and "Avoid reaching the history quota" |
//! | state/task/execution input or output | 262,144 bytes (UTF-8 JSON) | "Step Functions service quotas" (Maximum input or output size for a task, state, or execution); "Error handling in Step Functions" (`States.DataLimitExceeded`) |
//! | names of state machines and executions | 1-80 characters, no whitespace, `< > { } [ ] ? * " # % \ ^ \| ~ `` ` `` $ & , ; : /`, no control characters | "Step Functions service quotas" (General quotas); StartExecution API reference (`name`) |
//! | Map Run label | 1-40 characters, same characters as names | "Map state in Distributed mode" (`Label`) |
//! | Inline Map concurrency | 40 iterations at a time | "Using Map state in Inline mode" |
//! | Distributed Map concurrency | 10,000 child executions at a time | "Using Map state in Distributed mode" |
//! | definition size | 1,048,576 bytes | CreateStateMachine API reference (`definition`) |
//!
//! Pages: <https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html>,
//! <https://docs.aws.amazon.com/step-functions/latest/dg/bp-history-limit.html>,
//! <https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html>,
//! <https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html>,
//! <https://docs.aws.amazon.com/step-functions/latest/dg/state-map-inline.html>,
//! <https://docs.aws.amazon.com/step-functions/latest/dg/state-map-distributed.html>,
//! <https://docs.aws.amazon.com/step-functions/latest/apireference/API_CreateStateMachine.html>.
//!
//! Nesting of Map and Parallel states: the guide documents no depth limit for
//! JSONPath definitions, so none is enforced.

use crate::error::{StateError, names};
use serde_json::Value;

/// Events in one execution's history; event number 25,000 can only be the
/// terminal event ("Avoid reaching the history quota").
pub const HISTORY_EVENTS: usize = 25_000;

/// The error and cause of an execution stopped by the history quota. The
/// guide says the execution fails with an `ExecutionFailed` event as event
/// 25,000 but names neither error nor cause; these are what AWS reports in
/// that event (States.Runtime is also the conservative choice: nothing can
/// catch it).
pub const HISTORY_LIMIT_ERROR: &str = names::RUNTIME;
pub const HISTORY_LIMIT_CAUSE: &str = "The execution reached the maximum number of history events (25000).";

/// Bytes of a state's input or output, a task's result or an execution's
/// input, as UTF-8 JSON text.
pub const PAYLOAD_BYTES: usize = 262_144;

/// Characters in a state machine or execution name.
pub const NAME_CHARS: usize = 80;

/// Characters in a Distributed Map's `Label`.
pub const LABEL_CHARS: usize = 40;

/// Iterations an Inline Map runs at a time, whatever its `MaxConcurrency`.
pub const INLINE_MAP_CONCURRENCY: usize = 40;

/// Child executions a Distributed Map runs at a time when `MaxConcurrency`
/// is absent or 0.
pub const DISTRIBUTED_MAP_CONCURRENCY: usize = 10_000;

/// Bytes of a state machine definition.
pub const DEFINITION_BYTES: usize = 1_048_576;

/// Characters no name may contain besides whitespace and control characters.
const NAME_FORBIDDEN: &str = "<>{}[]?*\"#%\\^|~`$&,;:/";

/// A state machine or execution name as StartExecution/CreateStateMachine accept it.
pub fn valid_name(name: &str) -> bool {
    valid_identifier(name, NAME_CHARS)
}

/// A Distributed Map `Label`.
pub fn valid_label(label: &str) -> bool {
    valid_identifier(label, LABEL_CHARS)
}

fn valid_identifier(s: &str, max_chars: usize) -> bool {
    let n = s.chars().count();
    (1..=max_chars).contains(&n)
        && !s.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || ('\u{7f}'..='\u{9f}').contains(&c)
                || NAME_FORBIDDEN.contains(c)
        })
}

/// Counts the bytes serde_json writes, without keeping them.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The size of `v` as compact UTF-8 JSON text.
pub fn json_bytes(v: &Value) -> usize {
    let mut n = ByteCount(0);
    // Writing a Value to a counter cannot fail.
    let _ = serde_json::to_writer(&mut n, v);
    n.0
}

/// `States.DataLimitExceeded` when `v` is larger than [`PAYLOAD_BYTES`];
/// `what` names the payload in the cause ("the output of state 'X'").
pub fn check_payload(v: &Value, what: impl FnOnce() -> String) -> Result<(), StateError> {
    let n = json_bytes(v);
    if n > PAYLOAD_BYTES {
        return Err(StateError::new(
            names::DATA_LIMIT_EXCEEDED,
            format!("{} is {n} bytes, more than the {PAYLOAD_BYTES} bytes a payload may have", what()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_are_utf8_json_bytes() {
        assert_eq!(json_bytes(&json!({"a": "é"})), r#"{"a":"é"}"#.len());
        assert_eq!(json_bytes(&json!("x".repeat(10))), 12);
    }

    #[test]
    fn payload_limit_is_inclusive() {
        // A JSON string of n characters is n + 2 bytes.
        let at = json!("x".repeat(PAYLOAD_BYTES - 2));
        assert!(check_payload(&at, || "it".into()).is_ok());
        let over = json!("x".repeat(PAYLOAD_BYTES - 1));
        let e = check_payload(&over, || "the output of state 'S'".into()).unwrap_err();
        assert_eq!(e.error, "States.DataLimitExceeded");
        assert!(e.cause.contains("the output of state 'S' is 262145 bytes"), "{}", e.cause);
    }

    #[test]
    fn labels_allow_forty_characters() {
        assert!(valid_label(&"L".repeat(40)));
        assert!(!valid_label(&"L".repeat(41)));
        assert!(!valid_label("a b"));
    }
}
