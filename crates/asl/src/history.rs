//! Execution history events, shaped like `GetExecutionHistory`.
//!
//! Events are numbered from 1 in the order they happen; `previous_event_id`
//! is the event before it in the same thread of control (a Parallel branch or
//! Map iteration continues from the event that started it), 0 for the first.
//! Direct Lambda ARNs produce `LambdaFunction*` events and every other task
//! resource `Task*` events, as on AWS; each attempt of a retried task has its
//! own `...Scheduled` event, so attempts can be counted from history.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

macro_rules! event_types {
    ($($v:ident),* $(,)?) => {
        /// The `type` of a history event.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventType { $($v),* }
        impl EventType {
            pub fn as_str(self) -> &'static str {
                match self { $(EventType::$v => stringify!($v)),* }
            }

            /// The event type named `name` (a `GetExecutionHistory` event's
            /// `type`), if the engine knows it.
            pub fn parse(name: &str) -> Option<EventType> {
                match name { $(stringify!($v) => Some(EventType::$v),)* _ => None }
            }
        }
    };
}

event_types!(
    ExecutionStarted,
    ExecutionSucceeded,
    ExecutionFailed,
    ExecutionAborted,
    ExecutionTimedOut,
    PassStateEntered,
    PassStateExited,
    TaskStateEntered,
    TaskStateExited,
    ChoiceStateEntered,
    ChoiceStateExited,
    WaitStateEntered,
    WaitStateExited,
    SucceedStateEntered,
    SucceedStateExited,
    FailStateEntered,
    ParallelStateEntered,
    ParallelStateExited,
    ParallelStateStarted,
    ParallelStateSucceeded,
    ParallelStateFailed,
    MapStateEntered,
    MapStateExited,
    MapStateStarted,
    MapStateSucceeded,
    MapStateFailed,
    MapIterationStarted,
    MapIterationSucceeded,
    MapIterationFailed,
    MapRunStarted,
    MapRunSucceeded,
    MapRunFailed,
    MapRunAborted,
    TaskScheduled,
    TaskStarted,
    TaskSubmitted,
    TaskSucceeded,
    TaskFailed,
    TaskTimedOut,
    LambdaFunctionScheduled,
    LambdaFunctionStarted,
    LambdaFunctionSucceeded,
    LambdaFunctionFailed,
    LambdaFunctionTimedOut,
);

impl EventType {
    /// `<Type>StateEntered` for a state type name.
    pub fn entered(state_type: &str) -> EventType {
        match state_type {
            "Pass" => EventType::PassStateEntered,
            "Task" => EventType::TaskStateEntered,
            "Choice" => EventType::ChoiceStateEntered,
            "Wait" => EventType::WaitStateEntered,
            "Succeed" => EventType::SucceedStateEntered,
            "Fail" => EventType::FailStateEntered,
            "Parallel" => EventType::ParallelStateEntered,
            _ => EventType::MapStateEntered,
        }
    }

    /// `<Type>StateExited` (Fail states never exit).
    pub fn exited(state_type: &str) -> EventType {
        match state_type {
            "Pass" => EventType::PassStateExited,
            "Task" => EventType::TaskStateExited,
            "Choice" => EventType::ChoiceStateExited,
            "Wait" => EventType::WaitStateExited,
            "Succeed" => EventType::SucceedStateExited,
            "Parallel" => EventType::ParallelStateExited,
            _ => EventType::MapStateExited,
        }
    }

    /// Whether this event ends the execution.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            EventType::ExecutionSucceeded
                | EventType::ExecutionFailed
                | EventType::ExecutionAborted
                | EventType::ExecutionTimedOut
        )
    }
}

/// Event details; which fields are set depends on the event type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventDetails {
    /// State name (state events, map iterations).
    pub name: Option<String>,
    pub input: Option<Value>,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub resource: Option<String>,
    pub resource_type: Option<String>,
    pub region: Option<String>,
    pub parameters: Option<Value>,
    pub timeout_in_seconds: Option<u64>,
    /// Map iteration index.
    pub index: Option<u64>,
    /// Map item count.
    pub length: Option<u64>,
    pub role_arn: Option<String>,
    /// The Map Run a Distributed Map started.
    pub map_run_arn: Option<String>,
}

/// One history event.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEvent {
    pub id: u64,
    pub previous_event_id: u64,
    pub timestamp: OffsetDateTime,
    pub event_type: EventType,
    pub details: EventDetails,
}

/// Seconds since the epoch as the JSON 1.0 protocol sends timestamps.
pub fn epoch_seconds(t: OffsetDateTime) -> f64 {
    (t.unix_timestamp_nanos() / 1_000_000) as f64 / 1000.0
}

fn s(v: &Value) -> Value {
    Value::String(v.to_string())
}

impl HistoryEvent {
    /// The event as `GetExecutionHistory` returns it. `include_data = false`
    /// drops inputs and outputs, like `includeExecutionData: false`.
    pub fn to_api_json(&self, include_data: bool) -> Value {
        use EventType::*;
        let d = &self.details;
        let mut det = Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                det.insert(k.to_string(), v);
            }
        };
        let data = |v: &Option<Value>| if include_data { v.as_ref().map(s) } else { None };
        let trunc = || Some(json!({"truncated": false}));
        let key = match self.event_type {
            ExecutionStarted => {
                put("input", data(&d.input));
                put("inputDetails", trunc());
                put("roleArn", d.role_arn.clone().map(Value::String));
                Some("executionStartedEventDetails")
            }
            ExecutionSucceeded => {
                put("output", data(&d.output));
                put("outputDetails", trunc());
                Some("executionSucceededEventDetails")
            }
            ExecutionFailed
            | ExecutionAborted
            | ExecutionTimedOut
            | LambdaFunctionFailed
            | LambdaFunctionTimedOut => {
                put("error", d.error.clone().map(Value::String));
                put("cause", d.cause.clone().map(Value::String));
                Some(match self.event_type {
                    ExecutionFailed => "executionFailedEventDetails",
                    ExecutionAborted => "executionAbortedEventDetails",
                    ExecutionTimedOut => "executionTimedOutEventDetails",
                    LambdaFunctionFailed => "lambdaFunctionFailedEventDetails",
                    _ => "lambdaFunctionTimedOutEventDetails",
                })
            }
            PassStateEntered | TaskStateEntered | ChoiceStateEntered | WaitStateEntered
            | SucceedStateEntered | FailStateEntered | ParallelStateEntered | MapStateEntered => {
                put("name", d.name.clone().map(Value::String));
                put("input", data(&d.input));
                put("inputDetails", trunc());
                Some("stateEnteredEventDetails")
            }
            PassStateExited | TaskStateExited | ChoiceStateExited | WaitStateExited | SucceedStateExited
            | ParallelStateExited | MapStateExited => {
                put("name", d.name.clone().map(Value::String));
                put("output", data(&d.output));
                put("outputDetails", trunc());
                Some("stateExitedEventDetails")
            }
            MapStateStarted => {
                put("length", d.length.map(Value::from));
                Some("mapStateStartedEventDetails")
            }
            MapIterationStarted | MapIterationSucceeded | MapIterationFailed => {
                put("name", d.name.clone().map(Value::String));
                put("index", d.index.map(Value::from));
                Some(match self.event_type {
                    MapIterationStarted => "mapIterationStartedEventDetails",
                    MapIterationSucceeded => "mapIterationSucceededEventDetails",
                    _ => "mapIterationFailedEventDetails",
                })
            }
            MapRunStarted => {
                put("mapRunArn", d.map_run_arn.clone().map(Value::String));
                Some("mapRunStartedEventDetails")
            }
            MapRunFailed => {
                put("error", d.error.clone().map(Value::String));
                put("cause", d.cause.clone().map(Value::String));
                Some("mapRunFailedEventDetails")
            }
            TaskScheduled => {
                put("resourceType", d.resource_type.clone().map(Value::String));
                put("resource", d.resource.clone().map(Value::String));
                put("region", d.region.clone().map(Value::String));
                put("parameters", d.parameters.as_ref().map(s));
                put("timeoutInSeconds", d.timeout_in_seconds.map(Value::from));
                Some("taskScheduledEventDetails")
            }
            TaskStarted => {
                put("resourceType", d.resource_type.clone().map(Value::String));
                put("resource", d.resource.clone().map(Value::String));
                Some("taskStartedEventDetails")
            }
            TaskSubmitted => {
                put("resourceType", d.resource_type.clone().map(Value::String));
                put("resource", d.resource.clone().map(Value::String));
                put("output", data(&d.output));
                put("outputDetails", trunc());
                Some("taskSubmittedEventDetails")
            }
            TaskSucceeded => {
                put("resourceType", d.resource_type.clone().map(Value::String));
                put("resource", d.resource.clone().map(Value::String));
                put("output", data(&d.output));
                put("outputDetails", trunc());
                Some("taskSucceededEventDetails")
            }
            TaskFailed | TaskTimedOut => {
                put("resourceType", d.resource_type.clone().map(Value::String));
                put("resource", d.resource.clone().map(Value::String));
                put("error", d.error.clone().map(Value::String));
                put("cause", d.cause.clone().map(Value::String));
                Some(if self.event_type == TaskFailed {
                    "taskFailedEventDetails"
                } else {
                    "taskTimedOutEventDetails"
                })
            }
            LambdaFunctionScheduled => {
                put("resource", d.resource.clone().map(Value::String));
                put("input", data(&d.input));
                put("inputDetails", trunc());
                put("timeoutInSeconds", d.timeout_in_seconds.map(Value::from));
                Some("lambdaFunctionScheduledEventDetails")
            }
            LambdaFunctionSucceeded => {
                put("output", data(&d.output));
                put("outputDetails", trunc());
                Some("lambdaFunctionSucceededEventDetails")
            }
            LambdaFunctionStarted
            | ParallelStateStarted
            | ParallelStateSucceeded
            | ParallelStateFailed
            | MapStateSucceeded
            | MapStateFailed
            | MapRunSucceeded
            | MapRunAborted => None,
        };
        let mut ev = json!({
            "timestamp": epoch_seconds(self.timestamp),
            "type": self.event_type.as_str(),
            "id": self.id,
            "previousEventId": self.previous_event_id,
        });
        if let (Some(k), Value::Object(m)) = (key, &mut ev) {
            m.insert(k.to_string(), Value::Object(det));
        }
        ev
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_shape_of_state_events() {
        let ev = HistoryEvent {
            id: 2,
            previous_event_id: 1,
            timestamp: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            event_type: EventType::PassStateEntered,
            details: EventDetails {
                name: Some("P".into()),
                input: Some(json!({"a": 1})),
                ..Default::default()
            },
        };
        assert_eq!(
            ev.to_api_json(true),
            json!({"timestamp": 1_700_000_000.0, "type": "PassStateEntered", "id": 2, "previousEventId": 1,
                   "stateEnteredEventDetails": {"name": "P", "input": "{\"a\":1}", "inputDetails": {"truncated": false}}})
        );
        assert!(ev.to_api_json(false)["stateEnteredEventDetails"].get("input").is_none());
        assert_eq!(EventType::entered("Map"), EventType::MapStateEntered);
        assert!(EventType::ExecutionTimedOut.is_terminal());
        assert_eq!(EventType::parse("MapRunStarted"), Some(EventType::MapRunStarted));
        assert_eq!(EventType::parse("ActivityScheduled"), None);
    }
}
