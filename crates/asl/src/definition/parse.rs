//! The loader: JSON shape, fields allowed per state type, transitions and
//! reachability, paths and templates. Every problem becomes one
//! [`Diagnostic`] naming the state and the field.

use super::{FailField, IoPath, ResultPath, Scope, Seconds, State, StateKind, WaitFor};
use crate::choice::{self, Rule};
use crate::error::Diagnostic;
use crate::path::JsonPath;
use crate::payload::{self, Template};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

/// The largest number AWS accepts for seconds fields.
pub(super) const MAX_SECONDS: u64 = 99_999_999;

#[derive(Default)]
pub(super) struct Cx {
    pub(super) diags: Vec<Diagnostic>,
}

/// Field access on one JSON object that remembers which keys were read.
pub(super) struct Obj<'a> {
    m: &'a Map<String, Value>,
    seen: HashSet<&'static str>,
}

impl<'a> Obj<'a> {
    pub(super) fn new(m: &'a Map<String, Value>) -> Self {
        Obj { m, seen: HashSet::new() }
    }
    pub(super) fn get(&mut self, k: &'static str) -> Option<&'a Value> {
        self.seen.insert(k);
        self.m.get(k)
    }
    pub(super) fn has(&self, k: &str) -> bool {
        self.m.contains_key(k)
    }
    pub(super) fn unknown(&self) -> Vec<&'a String> {
        self.m.keys().filter(|k| !self.seen.contains(k.as_str())).collect()
    }
}

pub(super) fn as_secs(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64))
}

impl Cx {
    pub(super) fn err(&mut self, state: Option<&str>, field: impl Into<String>, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            state: state.map(str::to_string),
            field: field.into(),
            message: message.into(),
        });
    }

    pub(super) fn machine(&mut self, v: &Value) -> Option<(Option<String>, Option<u64>, Scope)> {
        let Value::Object(m) = v else {
            self.err(None, "", "the definition must be a JSON object");
            return None;
        };
        let mut o = Obj::new(m);
        let comment = o.get("Comment").and_then(Value::as_str).map(str::to_string);
        if let Some(ver) = o.get("Version")
            && ver.as_str() != Some("1.0")
        {
            self.err(None, "Version", format!("only \"1.0\" is defined, got {ver}"));
        }
        self.query_language(o.get("QueryLanguage"), None);
        let timeout = match o.get("TimeoutSeconds") {
            None => None,
            Some(t) => match as_secs(t) {
                Some(s) if (1..=MAX_SECONDS).contains(&s) => Some(s),
                _ => {
                    self.err(None, "TimeoutSeconds", format!("must be a positive integer, got {t}"));
                    None
                }
            },
        };
        let root = self.scope(&mut o, None);
        for k in o.unknown() {
            self.err(None, k.as_str(), "unknown top-level field");
        }
        root.map(|r| (comment, timeout, r))
    }

    pub(super) fn query_language(&mut self, v: Option<&Value>, state: Option<&str>) {
        match v {
            None => {}
            Some(Value::String(s)) if s == "JSONPath" => {}
            Some(Value::String(s)) if s == "JSONata" => self.err(
                state,
                "QueryLanguage",
                "unsupported feature: QueryLanguage JSONata (this engine runs the JSONPath query language only)",
            ),
            Some(other) => self.err(state, "QueryLanguage", format!("must be \"JSONPath\" or \"JSONata\", got {other}")),
        }
    }

    /// `StartAt` + `States` of the machine, a branch or a processor.
    pub(super) fn scope(&mut self, o: &mut Obj<'_>, prefix: Option<&str>) -> Option<Scope> {
        let start_at = match o.get("StartAt") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.err(prefix, "StartAt", format!("must be a string, got {other}"));
                None
            }
            None => {
                self.err(prefix, "StartAt", "missing");
                None
            }
        };
        let states_obj = match o.get("States") {
            Some(Value::Object(m)) if !m.is_empty() => Some(m),
            Some(Value::Object(_)) => {
                self.err(prefix, "States", "must contain at least one state");
                None
            }
            Some(other) => {
                self.err(
                    prefix,
                    "States",
                    format!("must be an object, got {}", crate::path::type_name(other)),
                );
                None
            }
            None => {
                self.err(prefix, "States", "missing");
                None
            }
        };
        let states_obj = states_obj?;
        let mut states = Vec::new();
        for (name, sv) in states_obj {
            let loc = match prefix {
                Some(p) => format!("{p}/{name}"),
                None => name.clone(),
            };
            if name.is_empty() || name.chars().count() > 80 {
                self.err(Some(&loc), "Name", "state names must be 1 to 80 characters long");
            }
            if let Some(s) = self.state(name, &loc, sv) {
                states.push(s);
            }
        }
        let start_at = start_at?;
        let index: HashMap<String, usize> =
            states.iter().enumerate().map(|(i, s)| (s.name.clone(), i)).collect();
        if !states_obj.contains_key(&start_at) {
            self.err(prefix, "StartAt", format!("'{start_at}' is not a state in this scope"));
        }
        self.check_graph(&states, states_obj, &start_at, prefix);
        Some(Scope { start_at, states, index })
    }

    fn check_graph(
        &mut self,
        states: &[State],
        all: &Map<String, Value>,
        start_at: &str,
        prefix: Option<&str>,
    ) {
        let loc = |n: &str| match prefix {
            Some(p) => format!("{p}/{n}"),
            None => n.to_string(),
        };
        let by_name: HashMap<&str, &State> = states.iter().map(|s| (s.name.as_str(), s)).collect();
        let mut edges: Vec<(String, &'static str, String)> = Vec::new();
        for s in states {
            if let Some(n) = &s.next {
                edges.push((s.name.clone(), "Next", n.clone()));
            }
            if let StateKind::Choice { choices, default } = &s.kind {
                for (i, (_, n)) in choices.iter().enumerate() {
                    let _ = i;
                    edges.push((s.name.clone(), "Choices[].Next", n.clone()));
                }
                if let Some(d) = default {
                    edges.push((s.name.clone(), "Default", d.clone()));
                }
            }
            for c in &s.catch {
                edges.push((s.name.clone(), "Catch[].Next", c.next.clone()));
            }
        }
        for (from, field, to) in &edges {
            if !all.contains_key(to) {
                self.err(Some(&loc(from)), *field, format!("'{to}' is not a state in this scope"));
            }
        }
        // Reachability.
        let mut seen: HashSet<&str> = HashSet::new();
        let mut stack = vec![start_at];
        while let Some(n) = stack.pop() {
            if !seen.insert(n) {
                continue;
            }
            for (from, _, to) in &edges {
                if from == n {
                    stack.push(to);
                }
            }
        }
        for name in all.keys() {
            if all.contains_key(start_at) && !seen.contains(name.as_str()) {
                self.err(
                    Some(&loc(name)),
                    "StartAt",
                    format!("state is unreachable from StartAt '{start_at}'"),
                );
            }
        }
        let terminal = states.iter().any(|s| s.next.is_none() && !matches!(s.kind, StateKind::Choice { .. }));
        // Only report a missing terminal state when every state parsed.
        if !terminal && by_name.len() == all.len() {
            self.err(prefix, "States", "no terminal state: at least one state needs \"End\": true or must be a Succeed or Fail state");
        }
    }

    fn state(&mut self, name: &str, loc: &str, v: &Value) -> Option<State> {
        let Value::Object(m) = v else {
            self.err(Some(loc), "", "a state must be an object");
            return None;
        };
        let mut o = Obj::new(m);
        let ty = match o.get("Type") {
            Some(Value::String(t)) => t.as_str(),
            Some(other) => {
                self.err(Some(loc), "Type", format!("must be a string, got {other}"));
                return None;
            }
            None => {
                self.err(Some(loc), "Type", "missing");
                return None;
            }
        };
        o.get("Comment");
        self.query_language(o.get("QueryLanguage"), Some(loc));
        for (f, what) in [
            ("Assign", "variables (Assign)"),
            ("Arguments", "Arguments (JSONata)"),
            ("Output", "Output (JSONata)"),
        ] {
            if o.get(f).is_some() {
                self.err(Some(loc), f, format!("unsupported feature: {what}"));
            }
        }
        let (io, transition, params, selector, result_path, errors) = match ty {
            "Pass" => (true, true, true, false, true, false),
            "Task" | "Parallel" | "Map" => (true, true, true, true, true, true),
            "Choice" | "Succeed" => (true, false, false, false, false, false),
            "Wait" => (true, true, false, false, false, false),
            "Fail" => (false, false, false, false, false, false),
            other => {
                self.err(Some(loc), "Type", format!("unknown state type '{other}'"));
                return None;
            }
        };
        let input_path = if io { self.io_path(&mut o, "InputPath", loc) } else { IoPath::Default };
        let output_path = if io { self.io_path(&mut o, "OutputPath", loc) } else { IoPath::Default };
        let parameters = if params && ty != "Map" { self.template(&mut o, "Parameters", loc) } else { None };
        let result_selector = if selector { self.template(&mut o, "ResultSelector", loc) } else { None };
        let result_path = if result_path {
            self.result_path(o.get("ResultPath"), loc, "ResultPath")
        } else {
            ResultPath::Default
        };
        let (retry, catch) = if errors {
            (self.retriers(&mut o, loc), self.catchers(&mut o, loc))
        } else {
            (Vec::new(), Vec::new())
        };
        let next = if transition { self.transition(&mut o, loc) } else { None };
        let kind = match ty {
            "Pass" => StateKind::Pass { result: o.get("Result").cloned() },
            "Task" => self.task(&mut o, loc)?,
            "Choice" => self.choice(&mut o, loc)?,
            "Wait" => StateKind::Wait(self.wait(&mut o, loc)?),
            "Succeed" => StateKind::Succeed,
            "Fail" => self.fail(&mut o, loc),
            "Parallel" => self.parallel(&mut o, loc)?,
            "Map" => self.map(&mut o, loc)?,
            _ => return None,
        };
        for k in o.unknown() {
            self.err(Some(loc), k.as_str(), format!("field not allowed in a {ty} state"));
        }
        Some(State {
            name: name.to_string(),
            kind,
            input_path,
            output_path,
            parameters,
            result_selector,
            result_path,
            retry,
            catch,
            next,
        })
    }

    fn transition(&mut self, o: &mut Obj<'_>, loc: &str) -> Option<String> {
        let next = o.get("Next");
        let end = o.get("End");
        match (next, end) {
            (Some(Value::String(n)), None | Some(Value::Bool(false))) => Some(n.clone()),
            (Some(Value::String(_)), Some(_)) => {
                self.err(Some(loc), "End", "a state cannot have both Next and End");
                None
            }
            (Some(other), _) => {
                self.err(Some(loc), "Next", format!("must be a state name, got {other}"));
                None
            }
            (None, Some(Value::Bool(true))) => None,
            (None, Some(Value::Bool(false)) | None) => {
                self.err(Some(loc), "Next", "missing: a non-terminal state needs Next (or \"End\": true)");
                None
            }
            (None, Some(other)) => {
                self.err(Some(loc), "End", format!("must be a boolean, got {other}"));
                None
            }
        }
    }

    fn io_path(&mut self, o: &mut Obj<'_>, field: &'static str, loc: &str) -> IoPath {
        match o.get(field) {
            None => IoPath::Default,
            Some(Value::Null) => IoPath::Null,
            Some(Value::String(s)) => match JsonPath::parse(s) {
                Ok(p) if p.root() == crate::path::Root::Context => {
                    self.err(
                        Some(loc),
                        field,
                        format!("'{s}': the context object ($$) cannot be used in {field}"),
                    );
                    IoPath::Default
                }
                Ok(p) => IoPath::Path(p),
                Err(e) => {
                    self.err(Some(loc), field, e.to_string());
                    IoPath::Default
                }
            },
            Some(other) => {
                self.err(Some(loc), field, format!("must be a path string or null, got {other}"));
                IoPath::Default
            }
        }
    }

    pub(super) fn result_path(&mut self, v: Option<&Value>, loc: &str, field: &str) -> ResultPath {
        match v {
            None => ResultPath::Default,
            Some(Value::Null) => ResultPath::Null,
            Some(Value::String(s)) => match JsonPath::parse(s) {
                Ok(p) if p.root() == crate::path::Root::Input && p.is_reference() => ResultPath::Path(p),
                Ok(_) => {
                    self.err(
                        Some(loc),
                        field,
                        format!("'{s}' is not a reference path (names and indices from '$' only)"),
                    );
                    ResultPath::Default
                }
                Err(e) => {
                    self.err(Some(loc), field, e.to_string());
                    ResultPath::Default
                }
            },
            Some(other) => {
                self.err(Some(loc), field, format!("must be a path string or null, got {other}"));
                ResultPath::Default
            }
        }
    }

    pub(super) fn reference(&mut self, v: &Value, loc: &str, field: &str) -> Option<JsonPath> {
        let Value::String(s) = v else {
            self.err(Some(loc), field, format!("must be a path string, got {v}"));
            return None;
        };
        match JsonPath::parse(s) {
            Ok(p) if p.is_reference() => Some(p),
            Ok(_) => {
                self.err(Some(loc), field, format!("'{s}' is not a reference path"));
                None
            }
            Err(e) => {
                self.err(Some(loc), field, e.to_string());
                None
            }
        }
    }

    pub(super) fn template(&mut self, o: &mut Obj<'_>, field: &'static str, loc: &str) -> Option<Template> {
        let v = o.get(field)?;
        match Template::compile(v) {
            Ok(t) => Some(t),
            Err((key, msg)) => {
                self.err(Some(loc), format!("{field}.{key}"), msg);
                None
            }
        }
    }

    fn seconds(
        &mut self,
        o: &mut Obj<'_>,
        loc: &str,
        field: &'static str,
        path_field: &'static str,
    ) -> Option<Seconds> {
        match (o.get(field), o.get(path_field)) {
            (Some(_), Some(_)) => {
                self.err(Some(loc), path_field, format!("{field} and {path_field} are mutually exclusive"));
                None
            }
            (Some(v), None) => match as_secs(v) {
                Some(s) if (1..=MAX_SECONDS).contains(&s) => Some(Seconds::Fixed(s)),
                _ => {
                    self.err(Some(loc), field, format!("must be a positive integer, got {v}"));
                    None
                }
            },
            (None, Some(v)) => self.reference(v, loc, path_field).map(Seconds::Path),
            (None, None) => None,
        }
    }

    fn task(&mut self, o: &mut Obj<'_>, loc: &str) -> Option<StateKind> {
        let resource = match o.get("Resource") {
            Some(Value::String(r)) => r.clone(),
            Some(other) => {
                self.err(Some(loc), "Resource", format!("must be a string, got {other}"));
                return None;
            }
            None => {
                self.err(Some(loc), "Resource", "missing");
                return None;
            }
        };
        if !resource.starts_with("arn:") && !resource.contains("${") {
            self.err(Some(loc), "Resource", format!("'{resource}' is not an ARN"));
        }
        for suffix in [".sync:2", ".sync"] {
            if resource.ends_with(suffix) {
                self.err(
                    Some(loc),
                    "Resource",
                    format!("unsupported feature: the {suffix} integration pattern ('{resource}')"),
                );
                break;
            }
        }
        // "Wait for a Callback with Task Token": service integrations only,
        // and the task must hand its token ($$.Task.Token) to someone.
        if let Some(base) = resource.strip_suffix(".waitForTaskToken") {
            if !base.starts_with("arn:aws:states:::") {
                self.err(
                    Some(loc),
                    "Resource",
                    format!("'{resource}': .waitForTaskToken needs a service integration (arn:aws:states:::SERVICE:ACTION.waitForTaskToken), not a function ARN"),
                );
            } else if !o.get("Parameters").is_some_and(mentions_task_token) {
                self.err(
                    Some(loc),
                    "Parameters",
                    "a .waitForTaskToken task must pass the task token: a Parameters field \"....$\": \"$$.Task.Token\"",
                );
            }
        }
        if resource.starts_with("arn:aws:states:") && resource.contains(":activity:") {
            self.err(Some(loc), "Resource", "unsupported feature: activities");
        }
        let timeout = self.seconds(o, loc, "TimeoutSeconds", "TimeoutSecondsPath");
        let heartbeat = self.seconds(o, loc, "HeartbeatSeconds", "HeartbeatSecondsPath");
        if let (Some(Seconds::Fixed(t)), Some(Seconds::Fixed(h))) = (&timeout, &heartbeat)
            && h >= t
        {
            self.err(
                Some(loc),
                "HeartbeatSeconds",
                format!("must be smaller than TimeoutSeconds ({h} >= {t})"),
            );
        }
        o.get("Credentials");
        Some(StateKind::Task { resource, timeout, heartbeat })
    }

    fn choice(&mut self, o: &mut Obj<'_>, loc: &str) -> Option<StateKind> {
        if o.has("Next") || o.has("End") {
            self.err(
                Some(loc),
                if o.has("Next") { "Next" } else { "End" },
                "a Choice state transitions through Choices/Default only",
            );
            o.get("Next");
            o.get("End");
        }
        let default = match o.get("Default") {
            None => None,
            Some(Value::String(d)) => Some(d.clone()),
            Some(other) => {
                self.err(Some(loc), "Default", format!("must be a state name, got {other}"));
                None
            }
        };
        let Some(Value::Array(rules)) = o.get("Choices") else {
            self.err(Some(loc), "Choices", "required: a non-empty array of choice rules");
            return None;
        };
        if rules.is_empty() {
            self.err(Some(loc), "Choices", "must not be empty");
        }
        let mut choices = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            let next = match r.get("Next") {
                Some(Value::String(n)) => n.clone(),
                _ => {
                    self.err(
                        Some(loc),
                        format!("Choices[{i}].Next"),
                        "required: a top-level choice rule needs Next",
                    );
                    continue;
                }
            };
            if r.get("Condition").is_some() || r.get("Assign").is_some() {
                self.err(
                    Some(loc),
                    format!("Choices[{i}]"),
                    "unsupported feature: Condition/Assign in a choice rule (JSONata/variables)",
                );
                continue;
            }
            match Rule::parse(r, &["Next"]) {
                Ok(rule) => choices.push((rule, next)),
                Err((field, msg)) => {
                    let f = if field.is_empty() {
                        format!("Choices[{i}]")
                    } else {
                        format!("Choices[{i}].{field}")
                    };
                    self.err(Some(loc), f, msg);
                }
            }
        }
        let _ = choice::is_operator_key;
        Some(StateKind::Choice { choices, default })
    }

    fn wait(&mut self, o: &mut Obj<'_>, loc: &str) -> Option<WaitFor> {
        let fields = [
            ("Seconds", o.get("Seconds")),
            ("SecondsPath", o.get("SecondsPath")),
            ("Timestamp", o.get("Timestamp")),
            ("TimestampPath", o.get("TimestampPath")),
        ];
        let given: Vec<_> = fields.iter().filter(|(_, v)| v.is_some()).collect();
        if given.len() != 1 {
            self.err(
                Some(loc),
                "Seconds",
                format!("a Wait state needs exactly one of Seconds, SecondsPath, Timestamp, TimestampPath (found {})", given.len()),
            );
            return None;
        }
        let (field, v) = (given[0].0, given[0].1?);
        match field {
            "Seconds" => match as_secs(v) {
                Some(s) if s <= MAX_SECONDS => Some(WaitFor::Seconds(s)),
                _ => {
                    self.err(Some(loc), "Seconds", format!("must be a non-negative integer, got {v}"));
                    None
                }
            },
            "Timestamp" => match v.as_str().and_then(choice::parse_ts) {
                Some(t) => Some(WaitFor::Timestamp(t)),
                None => {
                    self.err(
                        Some(loc),
                        "Timestamp",
                        format!("must be an RFC 3339 timestamp such as \"2016-03-14T01:59:00Z\", got {v}"),
                    );
                    None
                }
            },
            "SecondsPath" => self.reference(v, loc, field).map(WaitFor::SecondsPath),
            _ => self.reference(v, loc, field).map(WaitFor::TimestampPath),
        }
    }

    fn fail(&mut self, o: &mut Obj<'_>, loc: &str) -> StateKind {
        let mut field = |cx: &mut Cx, lit: &'static str, path: &'static str| match (o.get(lit), o.get(path)) {
            (Some(_), Some(_)) => {
                cx.err(Some(loc), path, format!("{lit} and {path} are mutually exclusive"));
                None
            }
            (Some(Value::String(s)), None) => Some(FailField::Literal(s.clone())),
            (Some(v), None) => {
                cx.err(Some(loc), lit, format!("must be a string, got {v}"));
                None
            }
            (None, Some(Value::String(s))) => match payload::compile_dynamic(s) {
                Ok(t) => Some(FailField::Dynamic(t)),
                Err(e) => {
                    cx.err(Some(loc), path, e);
                    None
                }
            },
            (None, Some(v)) => {
                cx.err(Some(loc), path, format!("must be a path or intrinsic function string, got {v}"));
                None
            }
            (None, None) => None,
        };
        let error = field(self, "Error", "ErrorPath");
        let cause = field(self, "Cause", "CausePath");
        StateKind::Fail { error, cause }
    }

    fn parallel(&mut self, o: &mut Obj<'_>, loc: &str) -> Option<StateKind> {
        let Some(Value::Array(bs)) = o.get("Branches") else {
            self.err(Some(loc), "Branches", "required: a non-empty array of branches");
            return None;
        };
        if bs.is_empty() {
            self.err(Some(loc), "Branches", "must not be empty");
        }
        let mut branches = Vec::new();
        for (i, b) in bs.iter().enumerate() {
            let prefix = format!("{loc}/Branches[{i}]");
            let Value::Object(m) = b else {
                self.err(Some(loc), format!("Branches[{i}]"), "a branch must be an object");
                continue;
            };
            let mut bo = Obj::new(m);
            bo.get("Comment");
            self.query_language(bo.get("QueryLanguage"), Some(&prefix));
            if let Some(s) = self.scope(&mut bo, Some(&prefix)) {
                branches.push(s);
            }
            for k in bo.unknown() {
                self.err(Some(loc), format!("Branches[{i}].{k}"), "field not allowed in a branch");
            }
        }
        Some(StateKind::Parallel { branches })
    }
}

/// Whether a Parameters template passes `$$.Task.Token` somewhere.
fn mentions_task_token(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.iter().any(|(k, v)| {
            (k.ends_with(".$") && v.as_str().is_some_and(|s| s.contains("$$.Task.Token")))
                || mentions_task_token(v)
        }),
        Value::Array(a) => a.iter().any(mentions_task_token),
        _ => false,
    }
}
