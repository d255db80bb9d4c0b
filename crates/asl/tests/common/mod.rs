//! Helpers shared by the engine's integration tests.

use aurora_dr_asl::limits::HISTORY_EVENTS;
use aurora_dr_asl::{EventType, Execution, Outcome, Status};

/// The execution failed as AWS fails one that reaches the history quota
/// ("Avoid reaching the history quota"): `ExecutionFailed` is event 25,000,
/// with States.Runtime and AWS's cause.
pub fn assert_stopped_by_the_history_quota(exec: &Execution, out: &Outcome) {
    assert_eq!(out.status, Status::Failed);
    assert_eq!(out.error.as_deref(), Some("States.Runtime"));
    assert_eq!(
        out.cause.as_deref(),
        Some("The execution reached the maximum number of history events (25000).")
    );
    let history = exec.history();
    assert_eq!(history.len(), HISTORY_EVENTS);
    let last = history.last().map(|e| (e.id, e.event_type));
    assert_eq!(last, Some((HISTORY_EVENTS as u64, EventType::ExecutionFailed)));
    assert_eq!(history[HISTORY_EVENTS - 2].id, HISTORY_EVENTS as u64 - 1, "24,999 events before it");
}
