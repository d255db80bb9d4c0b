//! `Retry` and `Catch`: retriers, catchers and their `ErrorEquals` lists.

use super::parse::{Cx, MAX_SECONDS, Obj, as_secs};
use super::{Catcher, Jitter, Retrier};
use serde_json::Value;

const KNOWN_STATES_ERRORS: &[&str] = &[
    "States.ALL",
    "States.DataLimitExceeded",
    "States.ExceedToleratedFailureThreshold",
    "States.HeartbeatTimeout",
    "States.Http.Socket",
    "States.IntrinsicFailure",
    "States.ItemReaderFailed",
    "States.NoChoiceMatched",
    "States.ParameterPathFailure",
    "States.Permissions",
    "States.ResultPathMatchFailure",
    "States.ResultWriterFailed",
    "States.Runtime",
    "States.TaskFailed",
    "States.Timeout",
    "States.BranchFailed",
    "States.QueryEvaluationError",
];

impl Cx {
    fn error_equals(&mut self, v: Option<&Value>, loc: &str, field: &str) -> Vec<String> {
        let Some(Value::Array(a)) = v else {
            self.err(Some(loc), format!("{field}.ErrorEquals"), "required: a non-empty array of error names");
            return Vec::new();
        };
        if a.is_empty() {
            self.err(Some(loc), format!("{field}.ErrorEquals"), "must not be empty");
        }
        let mut out = Vec::new();
        for e in a {
            match e.as_str() {
                Some(s) => {
                    if s.starts_with("States.") && !KNOWN_STATES_ERRORS.contains(&s) {
                        self.err(
                            Some(loc),
                            format!("{field}.ErrorEquals"),
                            format!("unknown error name '{s}' (names starting with 'States.' are reserved)"),
                        );
                    }
                    out.push(s.to_string());
                }
                None => self.err(
                    Some(loc),
                    format!("{field}.ErrorEquals"),
                    format!("error names must be strings, got {e}"),
                ),
            }
        }
        if out.iter().any(|e| e == "States.ALL") && out.len() > 1 {
            self.err(Some(loc), format!("{field}.ErrorEquals"), "States.ALL must appear alone");
        }
        out
    }

    pub(super) fn retriers(&mut self, o: &mut Obj<'_>, loc: &str) -> Vec<Retrier> {
        let Some(v) = o.get("Retry") else { return Vec::new() };
        let Value::Array(a) = v else {
            self.err(Some(loc), "Retry", "must be an array of retriers");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, r) in a.iter().enumerate() {
            let f = format!("Retry[{i}]");
            let Value::Object(m) = r else {
                self.err(Some(loc), f, "a retrier must be an object");
                continue;
            };
            let mut ro = Obj::new(m);
            let error_equals = self.error_equals(ro.get("ErrorEquals"), loc, &f);
            if error_equals.iter().any(|e| e == "States.ALL") && i + 1 != a.len() {
                self.err(
                    Some(loc),
                    format!("{f}.ErrorEquals"),
                    "a retrier with States.ALL must be the last one",
                );
            }
            let mut int_field = |cx: &mut Cx, name: &'static str, default: u64, min: u64| -> u64 {
                match ro.get(name) {
                    None => default,
                    Some(v) => match as_secs(v) {
                        Some(n) if n >= min && n <= MAX_SECONDS => n,
                        _ => {
                            cx.err(
                                Some(loc),
                                format!("{f}.{name}"),
                                format!("must be an integer >= {min}, got {v}"),
                            );
                            default
                        }
                    },
                }
            };
            let interval_seconds = int_field(self, "IntervalSeconds", 1, 1);
            let max_attempts = int_field(self, "MaxAttempts", 3, 0);
            let max_delay_seconds = Some(int_field(self, "MaxDelaySeconds", 0, 1)).filter(|&n| n > 0);
            let backoff_rate = match ro.get("BackoffRate") {
                None => 2.0,
                Some(v) => match v.as_f64() {
                    Some(b) if b >= 1.0 => b,
                    _ => {
                        self.err(
                            Some(loc),
                            format!("{f}.BackoffRate"),
                            format!("must be a number >= 1.0, got {v}"),
                        );
                        2.0
                    }
                },
            };
            let jitter = match ro.get("JitterStrategy") {
                None => Jitter::None,
                Some(Value::String(s)) if s == "NONE" => Jitter::None,
                Some(Value::String(s)) if s == "FULL" => Jitter::Full,
                Some(v) => {
                    self.err(
                        Some(loc),
                        format!("{f}.JitterStrategy"),
                        format!("must be \"FULL\" or \"NONE\", got {v}"),
                    );
                    Jitter::None
                }
            };
            ro.get("Comment");
            for k in ro.unknown() {
                self.err(Some(loc), format!("{f}.{k}"), "field not allowed in a retrier");
            }
            out.push(Retrier {
                error_equals,
                interval_seconds,
                max_attempts,
                backoff_rate,
                max_delay_seconds,
                jitter,
            });
        }
        out
    }

    pub(super) fn catchers(&mut self, o: &mut Obj<'_>, loc: &str) -> Vec<Catcher> {
        let Some(v) = o.get("Catch") else { return Vec::new() };
        let Value::Array(a) = v else {
            self.err(Some(loc), "Catch", "must be an array of catchers");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, c) in a.iter().enumerate() {
            let f = format!("Catch[{i}]");
            let Value::Object(m) = c else {
                self.err(Some(loc), f, "a catcher must be an object");
                continue;
            };
            let mut co = Obj::new(m);
            let error_equals = self.error_equals(co.get("ErrorEquals"), loc, &f);
            if error_equals.iter().any(|e| e == "States.ALL") && i + 1 != a.len() {
                self.err(
                    Some(loc),
                    format!("{f}.ErrorEquals"),
                    "a catcher with States.ALL must be the last one",
                );
            }
            let next = match co.get("Next") {
                Some(Value::String(n)) => n.clone(),
                _ => {
                    self.err(Some(loc), format!("{f}.Next"), "required: the state to go to");
                    continue;
                }
            };
            let result_path = self.result_path(co.get("ResultPath"), loc, &format!("{f}.ResultPath"));
            co.get("Comment");
            if co.get("Output").is_some() || co.get("Assign").is_some() {
                self.err(
                    Some(loc),
                    f.clone(),
                    "unsupported feature: Output/Assign in a catcher (JSONata/variables)",
                );
            }
            for k in co.unknown() {
                self.err(Some(loc), format!("{f}.{k}"), "field not allowed in a catcher");
            }
            out.push(Catcher { error_equals, next, result_path });
        }
        out
    }
}
