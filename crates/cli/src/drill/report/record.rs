//! The record itself: one [`Span`] per state of each execution and one
//! [`ExecutionRecord`] per execution, collected from history events by the
//! [`Recorder`], which also prints the live progress lines.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aurora_dr_asl::{Engine, EventType, Execution, HistoryEvent, MapRunStatus};
use aurora_dr_core::error::names;
use serde::Serialize;
use time::OffsetDateTime;

/// How a state went, as the timeline draws and labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// Entered and not left when the record was taken.
    Running,
    /// Done at the first attempt.
    Succeeded,
    /// Done after a transient error (throttling, a quota, an unavailable
    /// service) made the state machine retry it.
    Retried,
    /// A poll: retried while the resource was not ready yet, or a Wait state.
    Waiting,
    /// Its last attempt failed: the error that sent the run down its
    /// failure path (or a Fail state, where a run ends failed).
    Failed,
    /// Ran after a failure in the same execution and cluster: clean-up,
    /// roll-back and the failure notification.
    FailurePath,
}

impl Outcome {
    /// Every outcome, in the order of the legend.
    pub const ALL: [Outcome; 6] = [
        Outcome::Succeeded,
        Outcome::Retried,
        Outcome::Waiting,
        Outcome::Failed,
        Outcome::FailurePath,
        Outcome::Running,
    ];

    /// The word printed next to the state.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Succeeded => "ok",
            Outcome::Retried => "retried",
            Outcome::Waiting => "waited",
            Outcome::Failed => "FAILED",
            Outcome::FailurePath => "failure path",
        }
    }

    /// A class name (HTML) and key.
    pub fn key(self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Succeeded => "succeeded",
            Outcome::Retried => "retried",
            Outcome::Waiting => "waiting",
            Outcome::Failed => "failed",
            Outcome::FailurePath => "failure-path",
        }
    }

    /// What the outcome means, for the legend.
    pub fn meaning(self) -> &'static str {
        match self {
            Outcome::Running => "not finished when the drill ended",
            Outcome::Succeeded => "done at the first attempt",
            Outcome::Retried => "done after transient errors (throttling, a quota)",
            Outcome::Waiting => "polled until the resource was ready, or a Wait state",
            Outcome::Failed => "its last attempt failed: the run took its failure path",
            Outcome::FailurePath => "clean-up, roll-back and notification after a failure",
        }
    }
}

/// One state of one execution.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    pub machine: String,
    pub run: usize,
    /// The source cluster the state works for (many clusters run side by
    /// side: a Map item on the source side, one execution each on the
    /// target side); empty for the source machine's own states.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub lane: String,
    pub state: String,
    /// The ASL state type (`Task`, `Pass`, `Choice`, `Map`, `Wait`, `Fail`, ...).
    #[serde(rename = "type")]
    pub kind: String,

    /// Seconds since the drill started.
    pub start: f64,
    pub end: Option<f64>,
    /// Task invocations (1 + retries); 0 for states that call nothing.
    pub attempts: u32,
    /// Each attempt's `[scheduled, ended]` (seconds since the drill
    /// started): the drill's own processing (handler and emulator), which
    /// the phases count at face value rather than divided by the time scale.
    /// A callback task's attempt is busy until `TaskSubmitted` (its
    /// invocation returned): the wait for its callback is emulated time.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub busy: Vec<[f64; 2]>,
    /// The open attempt is a callback task's, submitted: its end does not
    /// extend its busy interval.
    #[serde(skip)]
    pub submitted: bool,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    pub outcome: Outcome,
    /// The error of the last failed attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its cause (a Lambda error's message).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// Failed attempts by error name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub errors: BTreeMap<String, u32>,
    /// Entered after an earlier state of its execution and cluster failed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub failure_path: bool,
}

impl Span {
    /// A state entered at `start` (seconds since the drill started).
    pub fn entered(machine: &str, run: usize, lane: &str, state: &str, kind: &str, start: f64) -> Self {
        Self {
            machine: machine.into(),
            run,
            lane: lane.into(),
            state: state.into(),
            kind: kind.into(),
            start,
            end: None,
            attempts: 0,
            busy: Vec::new(),
            submitted: false,
            status: "running".into(),
            outcome: Outcome::Running,
            error: None,
            cause: None,
            errors: BTreeMap::new(),
            failure_path: false,
        }
    }

    /// The state left at `end`: it failed when its last attempt did (a Catch
    /// then took the run elsewhere) or when it is a Fail state.
    pub fn exit(&mut self, end: f64) {
        self.end = Some(end);
        let failed_attempts: u32 = self.errors.values().sum();
        let failed = self.kind == "Fail" || (self.attempts > 0 && failed_attempts >= self.attempts);
        self.status = if failed { "failed" } else { "succeeded" }.into();
        self.outcome = if failed {
            Outcome::Failed
        } else if self.failure_path {
            Outcome::FailurePath
        } else if self.kind == "Wait"
            || (failed_attempts > 0 && self.errors.keys().all(|e| e == names::NOT_READY))
        {
            Outcome::Waiting
        } else if failed_attempts > 0 {
            Outcome::Retried
        } else {
            Outcome::Succeeded
        };
    }

    /// A failed attempt.
    pub fn attempt_failed(&mut self, error: &str, cause: &str) {
        *self.errors.entry(error.to_owned()).or_default() += 1;
        self.error = Some(error.to_owned());
        self.cause = Some(cause.to_owned());
    }

    /// An attempt scheduled at `at`.
    pub fn attempt_scheduled(&mut self, at: f64) {
        self.attempts += 1;
        self.submitted = false;
        self.busy.push([at, at]);
    }

    /// The open attempt, a callback task's, was submitted at `at` (its
    /// invocation returned; the task now waits for its token).
    pub fn attempt_submitted(&mut self, at: f64) {
        self.attempt_ended(at);
        self.submitted = true;
    }

    /// The open attempt ended (succeeded, failed or timed out) at `at`.
    pub fn attempt_ended(&mut self, at: f64) {
        if self.submitted {
            return;
        }
        if let Some(last) = self.busy.last_mut() {
            last[1] = last[1].max(at);
        }
    }

    /// Seconds in the state (up to `now` while it runs).
    pub fn took(&self, now: f64) -> f64 {
        self.end.unwrap_or(now) - self.start
    }

    /// `lane state`, or the state alone.
    pub fn label(&self) -> String {
        if self.lane.is_empty() { self.state.clone() } else { format!("{} {}", self.lane, self.state) }
    }
}

/// The spans of `run` as the timelines show them: the visits of a polling
/// loop (a predicted wait's Task, Choice and Wait, entered again on every
/// poll) folded into one row per state, from its first entry to its last
/// exit, counting every visit as an attempt (`x5`) and marked as waiting.
/// Only visits that went well fold (`ok`, `retried`, `waited`, outside a
/// failure path); a visit that failed, ran on a failure path or still runs
/// keeps its own row. The recorded spans (the JSON report, the phases)
/// keep every visit.
pub fn folded(spans: &[Span], run: usize) -> Vec<Span> {
    let foldable = |s: &Span| {
        matches!(s.outcome, Outcome::Succeeded | Outcome::Retried | Outcome::Waiting) && !s.failure_path
    };
    let mut out: Vec<Span> = Vec::new();
    let mut visits: Vec<u32> = Vec::new();
    for s in spans.iter().filter(|s| s.run == run) {
        let same = out.iter().position(|o| {
            foldable(o) && foldable(s) && o.machine == s.machine && o.lane == s.lane && o.state == s.state
        });
        let Some(i) = same else {
            out.push(s.clone());
            visits.push(1);
            continue;
        };
        let o = &mut out[i];
        if visits[i] == 1 {
            o.attempts = o.attempts.max(1);
        }
        visits[i] += 1;
        o.attempts += s.attempts.max(1);
        o.end = match (o.end, s.end) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
        o.busy.extend_from_slice(&s.busy);
        for (e, n) in &s.errors {
            *o.errors.entry(e.clone()).or_default() += n;
        }
        if s.error.is_some() {
            o.error.clone_from(&s.error);
            o.cause.clone_from(&s.cause);
        }
        if o.outcome != Outcome::Retried {
            o.outcome = if s.outcome == Outcome::Retried { Outcome::Retried } else { Outcome::Waiting };
        }
    }
    out
}

/// One execution of one machine.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionRecord {
    pub machine: String,
    pub run: usize,
    /// The source cluster of a target execution; empty for the source machine.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub lane: String,
    pub name: String,
    pub arn: String,
    /// The account and region, from the execution's ARN.
    pub account: String,
    pub region: String,

    /// Seconds since the drill started.
    pub start: f64,
    pub end: Option<f64>,
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, `ABORTED` or `TIMED_OUT`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

impl ExecutionRecord {
    /// An execution started at `start`; account and region come from its ARN
    /// (`arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME`).
    pub fn started(machine: &str, run: usize, lane: &str, name: &str, arn: &str, start: f64) -> Self {
        let part = |i: usize| arn.split(':').nth(i).unwrap_or_default().to_owned();
        Self {
            machine: machine.into(),
            run,
            lane: lane.into(),
            name: name.into(),
            arn: arn.into(),
            account: part(4),
            region: part(3),
            start,
            end: None,
            status: "RUNNING".into(),
            error: None,
            cause: None,
        }
    }
}

/// Everything recorded so far: what the reports are made of.
#[derive(Debug, Clone)]
pub struct Record {
    /// When the drill started (the zero of every `start` and `end`).
    pub started_at: OffsetDateTime,
    pub spans: Vec<Span>,
    pub executions: Vec<ExecutionRecord>,
}

#[derive(Default)]
struct State {
    spans: Vec<Span>,
    executions: Vec<ExecutionRecord>,
    /// (machine, run, lane) where a state failed: what runs there next is
    /// the failure path.
    failed_lanes: HashSet<(String, usize, String)>,
}

/// Collects spans from history events and prints progress lines.
#[derive(Clone)]
pub struct Recorder {
    started: Instant,
    started_at: OffsetDateTime,
    state: Arc<Mutex<State>>,
    quiet: bool,
    /// Names of the iterations of a Map nested in a Map Run's child (the
    /// source machine's Regions Map: one per target region), each placed in
    /// a lane of its own, `{lane} {name}`; empty: they share the child's lane.
    sub_lanes: Arc<Vec<String>>,
}

impl Recorder {
    pub fn new(quiet: bool) -> Self {
        Self::starting_at(quiet, OffsetDateTime::now_utc())
    }

    /// A recorder whose zero is `started_at` (tests replay events at known times).
    pub(crate) fn starting_at(quiet: bool, started_at: OffsetDateTime) -> Self {
        Self {
            started: Instant::now(),
            started_at,
            state: Arc::new(Mutex::new(State::default())),
            quiet,
            sub_lanes: Arc::new(Vec::new()),
        }
    }

    /// Places each iteration `i` of a Map nested in a Map Run's child in a
    /// lane of its own, `{lane} {names[i]}` (many target regions: the
    /// Regions Map's iterations side by side, each in its region's lane).
    pub(crate) fn with_sub_lanes(mut self, names: Vec<String>) -> Self {
        self.sub_lanes = Arc::new(names);
        self
    }

    /// A recorder on the same clock with a record of its own (one DR target
    /// of many: its executions' states, kept apart from the others').
    pub(crate) fn sibling(&self) -> Self {
        Self {
            started: self.started,
            started_at: self.started_at,
            state: Arc::new(Mutex::new(State::default())),
            quiet: self.quiet,
            sub_lanes: Arc::clone(&self.sub_lanes),
        }
    }

    /// A recorder on the same clock whose record is this one's followed by
    /// `other`'s (the source machine's states, then one target's), as seen
    /// from sub-lane `sub_lane` (one target region): the states of the other
    /// sub-lanes left out, those of `sub_lane` back in their parent's lane.
    pub(crate) fn merged(&self, other: &Recorder, sub_lane: &str) -> Self {
        let merged = self.sibling();
        {
            let (mine, theirs) = (self.lock(), other.lock());
            let mut state = merged.lock();
            let names = &self.sub_lanes;
            for span in mine.spans.iter().chain(&theirs.spans) {
                let nested = names
                    .iter()
                    .find_map(|n| span.lane.strip_suffix(n.as_str())?.strip_suffix(' ').map(|l| (l, n)));
                match nested {
                    Some((parent, name)) if name == sub_lane => {
                        state.spans.push(Span { lane: parent.to_owned(), ..span.clone() });
                    }
                    Some(_) => {}
                    None => state.spans.push(span.clone()),
                }
            }
            state.executions.extend(mine.executions.iter().chain(&theirs.executions).cloned());
        }
        merged
    }

    /// The lanes of the events of a Map Run's child whose states are in
    /// `lane`: a nested Map's iterations in this recorder's sub-lanes
    /// ([`Self::with_sub_lanes`]), as the drill places them.
    pub(crate) fn child_lanes(&self, lane: &str) -> SubLanes<'_> {
        SubLanes::new(lane, &self.sub_lanes)
    }

    /// Seconds since the drill started.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub fn started_at(&self) -> OffsetDateTime {
        self.started_at
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn spans(&self) -> Vec<Span> {
        self.lock().spans.clone()
    }

    /// Spans and executions so far.
    pub fn record(&self) -> Record {
        let state = self.lock();
        Record {
            started_at: self.started_at,
            spans: state.spans.clone(),
            executions: state.executions.clone(),
        }
    }

    /// A progress line (suppressed with `--json`).
    pub fn line(&self, text: &str) {
        if !self.quiet {
            println!("{text}");
        }
    }

    /// Follows one execution to its end, recording and printing its states:
    /// the execution's own states are in `lane`,
    /// those of Map iteration `i` in `items[i]` (else `#i`). Events find their
    /// lane through `previous_event_id`, which chains each iteration's events
    /// from its `MapIterationStarted`.
    pub async fn follow_lanes(
        &self,
        execution: Execution,
        machine: &str,
        who: &str,
        run: usize,
        lane: &str,
        items: &[String],
    ) {
        self.follow(None, execution, machine, who, run, lane, items).await;
    }

    /// As [`Self::follow_lanes`], and also the child executions of the
    /// execution's Distributed Maps (found in `engine`): each child's states
    /// are in the lane of its item, `items[i]` for the item whose run id is
    /// `{execution}-{i}` ([`child_lane`]). Returns once the execution and
    /// every child have ended.
    #[allow(clippy::too_many_arguments)]
    pub async fn follow_with_map_runs(
        &self,
        engine: &Engine,
        execution: Execution,
        machine: &str,
        who: &str,
        run: usize,
        lane: &str,
        items: &[String],
    ) {
        self.follow(Some(engine), execution, machine, who, run, lane, items).await;
    }

    #[allow(clippy::too_many_arguments)]
    async fn follow(
        &self,
        engine: Option<&Engine>,
        execution: Execution,
        machine: &str,
        who: &str,
        run: usize,
        lane: &str,
        items: &[String],
    ) {
        let mut map_runs = tokio::task::JoinSet::new();
        self.execution_started(machine, run, lane, execution.name(), execution.arn(), execution.start_date());
        let mut lanes = Lanes::new(lane, items);
        let mut events = execution.subscribe();
        while let Some(event) = events.next().await {
            let here = lanes.place(&event);
            if event.event_type.is_terminal() {
                self.execution_ended(&event, execution.arn());
            }
            if let (Some(engine), Some(map_run)) = (engine, &event.details.map_run_arn) {
                let follower = MapRunFollower {
                    rec: self.clone(),
                    engine: engine.clone(),
                    map_run: map_run.clone(),
                    machine: machine.to_owned(),
                    who: who.to_owned(),
                    run,
                    items: items.to_vec(),
                };
                map_runs.spawn(follower.follow());
            }
            if matches!(
                event.event_type,
                EventType::MapRunSucceeded | EventType::MapRunFailed | EventType::MapRunAborted
            ) {
                // The Map Run's children have ended: record all their states
                // before the parent moves on (a lane's next Map would
                // otherwise close a state of the one before).
                while map_runs.join_next().await.is_some() {}
            }
            self.on_event(&event, machine, who, run, &here);
        }
        while map_runs.join_next().await.is_some() {}
    }

    /// Seconds from the drill's start to `at` (0 for earlier events).
    fn seconds(&self, at: OffsetDateTime) -> f64 {
        (at - self.started_at).as_seconds_f64().max(0.0)
    }

    /// An execution to follow, started at `start_date`; its states come
    /// through [`Self::on_event`], its end through [`Self::execution_ended`].
    pub(crate) fn execution_started(
        &self,
        machine: &str,
        run: usize,
        lane: &str,
        name: &str,
        arn: &str,
        start_date: OffsetDateTime,
    ) {
        let start = self.seconds(start_date);
        self.lock().executions.push(ExecutionRecord::started(machine, run, lane, name, arn, start));
    }

    /// The terminal `event` of execution `arn`.
    pub(crate) fn execution_ended(&self, event: &HistoryEvent, arn: &str) {
        let at = self.seconds(event.timestamp);
        let mut state = self.lock();
        if let Some(x) = state.executions.iter_mut().rev().find(|x| x.arn == arn) {
            x.end = Some(at);
            x.status = match event.event_type {
                EventType::ExecutionSucceeded => "SUCCEEDED",
                EventType::ExecutionAborted => "ABORTED",
                EventType::ExecutionTimedOut => "TIMED_OUT",
                _ => "FAILED",
            }
            .into();
            x.error = event.details.error.clone();
            x.cause = event.details.cause.as_deref().map(short_cause);
        }
    }

    /// One history event of an execution (or a Map Run's child) in
    /// `machine`, `run` and `lane`: the spans it opens, counts or closes,
    /// and its progress line.
    pub(crate) fn on_event(&self, event: &HistoryEvent, machine: &str, who: &str, run: usize, lane: &str) {
        // Event time, not print time: a subscription replays earlier events.
        let at = self.seconds(event.timestamp);
        let name = event.details.name.clone().unwrap_or_default();
        let t = event.event_type.as_str();
        let mut state = self.lock();
        let State { spans, failed_lanes, .. } = &mut *state;
        // The state still open in this machine, run and lane.
        fn open<'a>(spans: &'a mut [Span], machine: &str, run: usize, lane: &str) -> Option<&'a mut Span> {
            spans
                .iter_mut()
                .rev()
                .find(|s| s.machine == machine && s.run == run && s.lane == lane && s.end.is_none())
        }
        let lane_key = (machine.to_owned(), run, lane.to_owned());
        let lane_tag = if lane.is_empty() { String::new() } else { format!("[{lane}] ") };
        let prefix = format!("  [{at:>8.3}s] {machine:<6} {who:<24} {lane_tag}");
        if let Some(kind) = t.strip_suffix("StateEntered") {
            let mut span = Span::entered(machine, run, lane, &name, kind, at);
            span.failure_path = failed_lanes.contains(&lane_key);
            if event.event_type == EventType::FailStateEntered {
                // A Fail state never exits: the run ends here, failed.
                span.exit(at);
                failed_lanes.insert(lane_key);
            }
            spans.push(span);
            drop(state);
            self.line(&format!("{prefix} > {name}"));
        } else if matches!(event.event_type, EventType::LambdaFunctionScheduled | EventType::TaskScheduled) {
            if let Some(s) = open(spans, machine, run, lane) {
                s.attempt_scheduled(at);
            }
        } else if event.event_type == EventType::TaskSubmitted {
            if let Some(s) = open(spans, machine, run, lane) {
                s.attempt_submitted(at);
            }
        } else if matches!(event.event_type, EventType::LambdaFunctionSucceeded | EventType::TaskSucceeded) {
            if let Some(s) = open(spans, machine, run, lane) {
                s.attempt_ended(at);
            }
        } else if matches!(
            event.event_type,
            EventType::LambdaFunctionFailed
                | EventType::LambdaFunctionTimedOut
                | EventType::TaskFailed
                | EventType::TaskTimedOut
        ) {
            let error = event.details.error.clone().unwrap_or_default();
            let cause = short_cause(event.details.cause.as_deref().unwrap_or_default());
            let (state_name, attempt, repeated) = match open(spans, machine, run, lane) {
                Some(s) => {
                    // Polling repeats one error many times: show it once per state.
                    let repeated = s.errors.contains_key(&error);
                    s.attempt_ended(at);
                    s.attempt_failed(&error, &cause);
                    (s.state.clone(), s.attempts, repeated)
                }
                None => (String::new(), 0, false),
            };
            drop(state);
            if !repeated {
                self.line(&format!("{prefix}   {state_name}: attempt {attempt} {error} ({cause})"));
            }
        } else if t.ends_with("StateExited") {
            let (took, attempts, failed) = match open(spans, machine, run, lane) {
                Some(s) => {
                    s.exit(at);
                    (s.took(at), s.attempts, s.outcome == Outcome::Failed)
                }
                None => (0.0, 0, false),
            };
            if failed {
                failed_lanes.insert(lane_key);
            }
            drop(state);
            let tries = if attempts > 1 { format!(", {attempts} attempts") } else { String::new() };
            let mark = if failed { ", FAILED" } else { "" };
            self.line(&format!("{prefix} < {name} ({took:.3}s{tries}{mark})"));
        } else if event.event_type.is_terminal() {
            drop(state);
            let detail = match (&event.details.error, &event.details.cause) {
                (Some(e), Some(c)) => format!(": {e} ({})", short_cause(c)),
                (Some(e), None) => format!(": {e}"),
                _ => String::new(),
            };
            self.line(&format!("{prefix} = {t}{detail}"));
        }
    }
}

/// The lane of each event of one execution: its own states are in `lane`,
/// those of Map iteration `i` in `items[i]` (else `#i`). Events find their
/// lane through `previous_event_id`, which chains each iteration's events
/// from its `MapIterationStarted`.
pub struct Lanes<'a> {
    lane: String,
    items: &'a [String],
    by_event: HashMap<u64, String>,
}

impl<'a> Lanes<'a> {
    pub fn new(lane: &str, items: &'a [String]) -> Self {
        Self { lane: lane.to_owned(), items, by_event: HashMap::new() }
    }

    /// The lane of `event` (events come in history order).
    pub fn place(&mut self, event: &HistoryEvent) -> String {
        let here = if event.event_type == EventType::MapIterationStarted {
            let i = event.details.index.unwrap_or_default() as usize;
            self.items.get(i).cloned().unwrap_or_else(|| format!("#{i}"))
        } else {
            self.by_event.get(&event.previous_event_id).cloned().unwrap_or_else(|| self.lane.clone())
        };
        self.by_event.insert(event.id, here.clone());
        here
    }
}

/// The lane of each event of a Map Run's child: its own states in `lane`,
/// those of iteration `i` of a Map inside it in `{lane} {names[i]}` (found,
/// as [`Lanes`] finds them, through `previous_event_id`); the nested Map's
/// own events stay in `lane`. Without names, every event is in `lane`.
pub(crate) struct SubLanes<'a> {
    lane: String,
    names: &'a [String],
    by_event: HashMap<u64, String>,
}

impl<'a> SubLanes<'a> {
    fn new(lane: &str, names: &'a [String]) -> Self {
        Self { lane: lane.to_owned(), names, by_event: HashMap::new() }
    }

    pub(crate) fn place(&mut self, event: &HistoryEvent) -> String {
        if self.names.is_empty() {
            return self.lane.clone();
        }
        let here = match event.event_type {
            EventType::MapIterationStarted => {
                let i = event.details.index.unwrap_or_default() as usize;
                let name = self.names.get(i).cloned().unwrap_or_else(|| format!("#{i}"));
                format!("{} {name}", self.lane)
            }
            EventType::MapStateEntered
            | EventType::MapStateStarted
            | EventType::MapStateSucceeded
            | EventType::MapStateFailed
            | EventType::MapStateExited => self.lane.clone(),
            _ => self.by_event.get(&event.previous_event_id).cloned().unwrap_or_else(|| self.lane.clone()),
        };
        self.by_event.insert(event.id, here.clone());
        here
    }
}

/// How often a Map Run is looked at for child executions it started since.
const MAP_RUN_LOOK: std::time::Duration = std::time::Duration::from_millis(20);

/// The child executions of one Map Run, followed as they start.
struct MapRunFollower {
    rec: Recorder,
    engine: Engine,
    map_run: String,
    machine: String,
    who: String,
    run: usize,
    items: Vec<String>,
}

impl MapRunFollower {
    /// Follows every child of the Map Run until the run and its children
    /// have ended. The engine tells of no child's start, so the run is
    /// looked at every [`MAP_RUN_LOOK`]; a child's subscription replays its
    /// earlier events, so none is lost, and the spans take event times.
    async fn follow(self) {
        let mut seen = HashSet::new();
        let mut children = tokio::task::JoinSet::new();
        loop {
            // Read before listing: once the run has ended, every child it
            // started is in the list.
            let ended =
                self.engine.map_run(&self.map_run).is_none_or(|r| r.status() != MapRunStatus::Running);
            for child in self.engine.map_run_executions(&self.map_run) {
                if !seen.insert(child.arn().to_owned()) {
                    continue;
                }
                let lane = child_lane(child.input(), &self.items);
                let (rec, machine, who, run) =
                    (self.rec.clone(), self.machine.clone(), self.who.clone(), self.run);
                children.spawn(async move {
                    let mut events = child.subscribe();
                    let mut nested = SubLanes::new(&lane, &rec.sub_lanes);
                    while let Some(event) = events.next().await {
                        let here = nested.place(&event);
                        // The child's start and end are the Map Run's, not the run's.
                        if event.event_type != EventType::ExecutionStarted && !event.event_type.is_terminal()
                        {
                            rec.on_event(&event, &machine, &who, run, &here);
                        }
                    }
                });
            }
            if ended {
                break;
            }
            tokio::time::sleep(MAP_RUN_LOOK).await;
        }
        while children.join_next().await.is_some() {}
    }
}

/// The lane of a Distributed Map's child execution: `items[i]` when its
/// input carries the run id `{execution}-{i}` (as `runId`, or `start.runId`
/// before the run payload is made), else its `sourceClusterId` (also under
/// `item`), else `#?`.
pub fn child_lane(input: &serde_json::Value, items: &[String]) -> String {
    let run_id = input.get("runId").or_else(|| input.pointer("/start/runId")).and_then(|v| v.as_str());
    let index = run_id.and_then(|r| r.rsplit_once('-')).and_then(|(_, i)| i.parse::<usize>().ok());
    if let Some(lane) = index.and_then(|i| items.get(i)) {
        return lane.clone();
    }
    input
        .get("sourceClusterId")
        .or_else(|| input.pointer("/item/sourceClusterId"))
        .and_then(|v| v.as_str())
        .map_or_else(|| "#?".to_owned(), str::to_owned)
}

/// A Lambda error's cause is `{"errorType","errorMessage"}` JSON; show the message.
pub fn short_cause(cause: &str) -> String {
    serde_json::from_str::<serde_json::Value>(cause)
        .ok()
        .and_then(|v| v.get("errorMessage").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| cause.to_owned())
}

#[cfg(test)]
mod map_run_tests {
    use aurora_dr_asl::{Clock, Definition, StartOptions, StateMachineSpec, TaskRegistry};
    use serde_json::{Value, json};

    use super::*;

    /// A Distributed Map over `$.clusters` whose children run one Task,
    /// `state`, of the function `function`.
    fn phase(state: &str, function: &str) -> Value {
        json!({"Type": "Map", "ItemsPath": "$.clusters", "ResultPath": "$.clusters",
            "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": state,
                "States": {state: {"Type": "Task",
                    "Resource": format!("arn:aws:lambda:us-west-2:111111111111:function:{function}"),
                    "End": true}}}})
    }

    /// Two Maps one after the other, each cluster a child in both: every
    /// child state is in its cluster's lane, and the first Map's are
    /// recorded (closed) before the second Map's open, whatever order the
    /// followers run in.
    #[tokio::test]
    async fn children_of_each_map_run_are_recorded_in_their_lanes_and_in_order() {
        let (mut first, mut second) = (phase("First", "quick"), phase("Second", "slow"));
        // One child at a time: the first look at its Map Run finds only the first child.
        first["MaxConcurrency"] = json!(1);
        first["Next"] = json!("Second");
        second["End"] = json!(true);
        let definition =
            Definition::from_value(json!({"StartAt": "First", "States": {"First": first, "Second": second}}))
                .expect("definition");
        let mut tasks = TaskRegistry::new();
        // The first Map's other children start and end between two looks of
        // its follower; the second's start at once and outlast a look.
        tasks.register("quick", |input: Value| async move { Ok(input) });
        tasks.register("slow", |input: Value| async move {
            tokio::time::sleep(MAP_RUN_LOOK * 2).await;
            Ok(input)
        });
        let engine = Engine::new(Clock::real());
        let machine =
            engine.register(StateMachineSpec::new("fleet", definition).tasks(tasks)).expect("register");
        let clusters: Vec<Value> = (0..3)
            .map(|i| json!({"runId": format!("run-{i}"), "sourceClusterId": format!("c{i}")}))
            .collect();
        let rec = Recorder::new(true);
        let exec = engine
            .start(&machine.arn, json!({"clusters": clusters}), StartOptions::named("run"))
            .expect("start");
        let lanes = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        rec.follow_with_map_runs(&engine, exec, "source", "who", 1, "", &lanes).await;

        let spans = rec.spans();
        for lane in &lanes {
            let mine: Vec<&Span> = spans.iter().filter(|s| &s.lane == lane).collect();
            let names: Vec<&str> = mine.iter().map(|s| s.state.as_str()).collect();
            assert_eq!(names, ["First", "Second"], "{lane}: {spans:#?}");
            for s in &mine {
                assert!(s.end.is_some_and(|e| e >= s.start), "{lane}: {s:?}");
                assert_eq!((s.attempts, s.outcome), (1, Outcome::Succeeded), "{lane}: {s:?}");
            }
            assert!(mine[0].end <= Some(mine[1].start), "{lane}: First closes before Second opens");
        }
        // The parent's own states stay in its lane.
        let parent: Vec<&str> =
            spans.iter().filter(|s| s.lane.is_empty()).map(|s| s.state.as_str()).collect();
        assert_eq!(parent, ["First", "Second"]);
    }
}

#[cfg(test)]
mod sub_lane_tests {
    use aurora_dr_asl::EventDetails;

    use super::*;

    fn event(id: u64, previous: u64, event_type: EventType, index: Option<u64>) -> HistoryEvent {
        HistoryEvent {
            id,
            previous_event_id: previous,
            timestamp: OffsetDateTime::UNIX_EPOCH,
            event_type,
            details: EventDetails { index, ..EventDetails::default() },
        }
    }

    #[test]
    fn each_iteration_of_a_nested_map_has_its_own_lane() {
        let regions = ["us-west-1".to_owned(), "eu-west-1".to_owned()];
        let mut lanes = SubLanes::new("orders", &regions);
        let placed: Vec<String> = [
            event(1, 0, EventType::MapStateEntered, None),
            event(2, 1, EventType::MapIterationStarted, Some(0)),
            event(3, 1, EventType::MapIterationStarted, Some(1)),
            event(4, 2, EventType::TaskStateEntered, None),
            event(5, 3, EventType::TaskStateEntered, None),
            event(6, 5, EventType::MapStateExited, None),
            event(7, 6, EventType::ChoiceStateEntered, None),
        ]
        .iter()
        .map(|e| lanes.place(e))
        .collect();
        assert_eq!(
            placed,
            [
                "orders",
                "orders us-west-1",
                "orders eu-west-1",
                "orders us-west-1",
                "orders eu-west-1",
                "orders",
                "orders"
            ]
        );
        // Without names (one target region) every event stays in the child's lane.
        let mut one = SubLanes::new("orders", &[]);
        assert_eq!(one.place(&event(2, 1, EventType::MapIterationStarted, Some(0))), "orders");
    }

    #[test]
    fn a_targets_view_has_its_regions_states_in_the_clusters_lane_and_no_other_regions() {
        let rec = Recorder::new(true).with_sub_lanes(vec!["us-west-1".into(), "eu-west-1".into()]);
        {
            let mut state = rec.lock();
            state.spans.push(Span::entered("source", 1, "orders", "Regions", "Map", 0.0));
            state.spans.push(Span::entered("source", 1, "orders us-west-1", "EncryptCopy", "Task", 1.0));
            state.spans.push(Span::entered("source", 1, "orders eu-west-1", "EncryptCopy", "Task", 1.5));
        }
        let target = rec.sibling();
        target.lock().spans.push(Span::entered("target", 1, "orders", "Restore", "Task", 2.0));
        let view: Vec<(String, String, f64)> = rec
            .merged(&target, "eu-west-1")
            .spans()
            .iter()
            .map(|s| (s.machine.clone(), s.label(), s.start))
            .collect();
        let want = [
            ("source", "orders Regions", 0.0),
            ("source", "orders EncryptCopy", 1.5),
            ("target", "orders Restore", 2.0),
        ];
        assert_eq!(view, want.map(|(m, l, t)| (m.to_owned(), l.to_owned(), t)));
        // The source record itself keeps both regions.
        assert_eq!(rec.spans().len(), 3);
    }
}
