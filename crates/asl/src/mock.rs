//! Step Functions Local mock configuration (`MockConfigFile.json`).
//!
//! Shape: `StateMachines.<machine name>.TestCases.<test case>.<state name>` =
//! name of a mocked response; `MockedResponses.<name>` maps invocation indices
//! (`"0"`, or ranges `"1-2"`, zero-based, counted per state across retries
//! within one execution) to `{"Return": value}` or
//! `{"Throw": {"Error": ..., "Cause": ...}}`. A mocked state never reaches the
//! registry; a state the test case does not name calls its registered handler.
//! An invocation index that no key covers fails the execution with
//! `States.Runtime` naming the state and the index (a test bug, never
//! silently reused).

use crate::error::{AslError, TaskError};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One mocked answer.
#[derive(Debug, Clone, PartialEq)]
pub enum MockAnswer {
    Return(Value),
    Throw(TaskError),
}

#[derive(Debug, Clone, PartialEq)]
struct MockedResponse {
    ranges: Vec<(usize, usize, MockAnswer)>,
}

/// A parsed mock configuration.
#[derive(Debug, Clone, Default)]
pub struct MockConfig {
    machines: HashMap<String, HashMap<String, HashMap<String, String>>>,
    responses: HashMap<String, Arc<MockedResponse>>,
}

/// The mocks for one state machine and test case.
#[derive(Debug, Clone)]
pub struct TestCase {
    pub name: String,
    states: HashMap<String, Arc<MockedResponse>>,
}

fn bad(msg: impl Into<String>) -> AslError {
    AslError::MockConfig(msg.into())
}

impl MockConfig {
    pub fn parse(text: &str) -> Result<MockConfig, AslError> {
        let v: Value = serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        MockConfig::from_value(&v)
    }

    pub fn from_value(v: &Value) -> Result<MockConfig, AslError> {
        let mut cfg = MockConfig::default();
        let responses = v
            .get("MockedResponses")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("missing object 'MockedResponses'"))?;
        for (name, r) in responses {
            cfg.responses.insert(name.clone(), Arc::new(parse_response(name, r)?));
        }
        let machines = v
            .get("StateMachines")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("missing object 'StateMachines'"))?;
        for (sm, body) in machines {
            let cases = body
                .get("TestCases")
                .and_then(Value::as_object)
                .ok_or_else(|| bad(format!("StateMachines.{sm}: missing object 'TestCases'")))?;
            let mut out = HashMap::new();
            for (case, states) in cases {
                let states = states
                    .as_object()
                    .ok_or_else(|| bad(format!("StateMachines.{sm}.TestCases.{case}: must be an object")))?;
                let mut m = HashMap::new();
                for (state, resp) in states {
                    let resp = resp.as_str().ok_or_else(|| {
                        bad(format!(
                            "StateMachines.{sm}.TestCases.{case}.{state}: must name a mocked response"
                        ))
                    })?;
                    if !cfg.responses.contains_key(resp) {
                        return Err(bad(format!(
                            "StateMachines.{sm}.TestCases.{case}.{state}: unknown mocked response '{resp}'"
                        )));
                    }
                    m.insert(state.clone(), resp.to_string());
                }
                out.insert(case.clone(), m);
            }
            cfg.machines.insert(sm.clone(), out);
        }
        Ok(cfg)
    }

    /// Check the test cases of `machine` against its definition: every state
    /// they mock must exist (in any scope) and be a Task state, since only
    /// Task states call anything. The error names each offending state.
    pub fn check(&self, machine: &str, def: &crate::definition::Definition) -> Result<(), AslError> {
        let Some(cases) = self.machines.get(machine) else { return Ok(()) };
        let states = def.all_states();
        let mut problems = Vec::new();
        let mut names: Vec<_> = cases.iter().flat_map(|(c, s)| s.keys().map(move |st| (c, st))).collect();
        names.sort();
        for (case, state) in names {
            let found: Vec<_> = states.iter().filter(|(_, s)| &s.name == state).collect();
            if found.is_empty() {
                problems.push(format!(
                    "StateMachines.{machine}.TestCases.{case}.{state}: '{state}' is not a state of state machine '{machine}'"
                ));
            } else if let Some((loc, s)) = found.iter().find(|(_, s)| s.type_name() != "Task") {
                problems.push(format!(
                    "StateMachines.{machine}.TestCases.{case}.{state}: '{loc}' is a {} state; only Task states can be mocked",
                    s.type_name()
                ));
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(bad(problems.join("; "))) }
    }

    /// Select the mocks of `test_case` for state machine `machine`.
    pub fn test_case(&self, machine: &str, test_case: &str) -> Result<TestCase, AslError> {
        let cases = self
            .machines
            .get(machine)
            .ok_or_else(|| bad(format!("no state machine '{machine}' in StateMachines")))?;
        let states = cases
            .get(test_case)
            .ok_or_else(|| bad(format!("no test case '{test_case}' for state machine '{machine}'")))?;
        Ok(TestCase {
            name: test_case.to_string(),
            states: states
                .iter()
                .filter_map(|(s, r)| self.responses.get(r).map(|r| (s.clone(), r.clone())))
                .collect(),
        })
    }
}

fn parse_response(name: &str, v: &Value) -> Result<MockedResponse, AslError> {
    let m = v.as_object().ok_or_else(|| bad(format!("MockedResponses.{name}: must be an object")))?;
    let mut ranges = Vec::new();
    for (key, answer) in m {
        let where_ = format!("MockedResponses.{name}.{key}");
        let parse = |s: &str| {
            s.trim().parse::<usize>().map_err(|_| {
                bad(format!("{where_}: key must be an index like \"0\" or a range like \"1-2\""))
            })
        };
        let (from, to) = match key.split_once('-') {
            Some((a, b)) => (parse(a)?, parse(b)?),
            None => {
                let i = parse(key)?;
                (i, i)
            }
        };
        if from > to {
            return Err(bad(format!("{where_}: range start is after its end")));
        }
        let a = answer.as_object().ok_or_else(|| bad(format!("{where_}: must be an object")))?;
        let ans = match (a.get("Return"), a.get("Throw")) {
            (Some(r), None) => MockAnswer::Return(r.clone()),
            (None, Some(t)) => {
                let error = t
                    .get("Error")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad(format!("{where_}.Throw: 'Error' must be a string")))?;
                let cause = t.get("Cause").and_then(Value::as_str).unwrap_or("");
                MockAnswer::Throw(TaskError::new(error, cause))
            }
            _ => return Err(bad(format!("{where_}: needs exactly one of 'Return' or 'Throw'"))),
        };
        ranges.push((from, to, ans));
    }
    ranges.sort_by_key(|r| r.0);
    for w in ranges.windows(2) {
        if w[1].0 <= w[0].1 {
            return Err(bad(format!("MockedResponses.{name}: invocation ranges overlap at {}", w[1].0)));
        }
    }
    Ok(MockedResponse { ranges })
}

/// Per-execution mock state: invocation counters per state name.
#[derive(Debug)]
pub struct MockSession {
    case: TestCase,
    counters: Mutex<HashMap<String, usize>>,
}

impl MockSession {
    pub fn new(case: TestCase) -> Self {
        MockSession { case, counters: Mutex::new(HashMap::new()) }
    }

    pub fn test_case(&self) -> &str {
        &self.case.name
    }

    /// A session of the same test case with its own counters (for a
    /// Distributed Map's child executions: each is an execution of its own).
    pub fn fresh(&self) -> MockSession {
        MockSession::new(self.case.clone())
    }

    /// The answer for the next invocation of `state`, `None` if not mocked,
    /// `Some(Err(msg))` if mocked but no answer covers this invocation.
    pub fn next_answer(&self, state: &str) -> Option<Result<MockAnswer, String>> {
        let resp = self.case.states.get(state)?;
        let idx = {
            let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
            let n = c.entry(state.to_string()).or_insert(0);
            let idx = *n;
            *n += 1;
            idx
        };
        Some(
            resp.ranges
                .iter()
                .find(|(a, b, _)| (*a..=*b).contains(&idx))
                .map(|(_, _, ans)| ans.clone())
                .ok_or_else(|| {
                    format!(
                        "mock test case '{}' has no response for invocation {idx} of state '{state}'",
                        self.case.name
                    )
                }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg() -> MockConfig {
        MockConfig::from_value(&json!({
            "StateMachines": {"M": {"TestCases": {"Retry": {"Fetch": "StuckThenOk"}}}},
            "MockedResponses": {"StuckThenOk": {
                "0": {"Throw": {"Error": "SnapshotNotReady", "Cause": "creating"}},
                "1-2": {"Throw": {"Error": "SnapshotNotReady", "Cause": "still creating"}},
                "3": {"Return": {"status": "available"}}
            }}
        }))
        .unwrap()
    }

    #[test]
    fn answers_follow_invocation_indices() {
        let s = MockSession::new(cfg().test_case("M", "Retry").unwrap());
        for cause in ["creating", "still creating", "still creating"] {
            assert_eq!(
                s.next_answer("Fetch"),
                Some(Ok(MockAnswer::Throw(TaskError::new("SnapshotNotReady", cause))))
            );
        }
        assert_eq!(s.next_answer("Fetch"), Some(Ok(MockAnswer::Return(json!({"status": "available"})))));
        assert!(s.next_answer("Fetch").unwrap().unwrap_err().contains("invocation 4"));
        assert_eq!(s.next_answer("Other"), None);
    }

    #[test]
    fn mocks_must_name_task_states_of_the_machine() {
        let def = crate::definition::Definition::from_value(json!({"StartAt": "P", "States": {
            "P": {"Type": "Parallel", "End": true, "Branches": [{"StartAt": "Fetch", "States": {
                "Fetch": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:f", "Next": "Done"},
                "Done": {"Type": "Pass", "End": true}}}]}}}))
        .unwrap();
        assert!(cfg().check("M", &def).is_ok(), "a Task state nested in a branch");
        assert!(cfg().check("Other", &def).is_ok(), "test cases of other machines are not checked");
        let typo = MockConfig::from_value(&json!({
            "StateMachines": {"M": {"TestCases": {"T": {"Fecth": "R", "Done": "R"}}}},
            "MockedResponses": {"R": {"0": {"Return": 1}}}}))
        .unwrap();
        let e = typo.check("M", &def).unwrap_err().to_string();
        assert!(e.contains("TestCases.T.Fecth: 'Fecth' is not a state of state machine 'M'"), "{e}");
        assert!(e.contains("'P/Branches[0]/Done' is a Pass state; only Task states can be mocked"), "{e}");
    }

    #[test]
    fn bad_configs_are_named() {
        let e = MockConfig::from_value(
            &json!({"StateMachines": {"M": {"TestCases": {"T": {"S": "Nope"}}}}, "MockedResponses": {}}),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown mocked response 'Nope'"), "{e}");
        let e = MockConfig::from_value(&json!({"StateMachines": {}, "MockedResponses": {"R": {"0-1": {"Return": 1}, "1": {"Return": 2}}}}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("overlap"), "{e}");
        let e = MockConfig::from_value(
            &json!({"StateMachines": {}, "MockedResponses": {"R": {"x": {"Return": 1}}}}),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("MockedResponses.R.x"), "{e}");
        assert!(cfg().test_case("M", "Nope").is_err());
        assert!(cfg().test_case("Nope", "Retry").is_err());
    }
}
