//! One execution: its handle, its history log and the task that drives it
//! from `ExecutionStarted` to its terminal event.

use super::interp::Interp;
use super::{EngineInner, StateMachine};
use crate::clock::Clock;
use crate::error::{StateError, names};
use crate::history::{EventDetails, EventType, HistoryEvent};
use crate::limits;
use crate::mock::MockSession;
use futures::FutureExt;
use serde_json::Value;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::{Notify, mpsc, watch};

/// Execution status, as `DescribeExecution` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "RUNNING",
            Status::Succeeded => "SUCCEEDED",
            Status::Failed => "FAILED",
            Status::TimedOut => "TIMED_OUT",
            Status::Aborted => "ABORTED",
        }
    }
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: Status,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub stop_date: OffsetDateTime,
}

#[derive(Default)]
pub(super) struct HistoryLog {
    events: Vec<HistoryEvent>,
    subscribers: Vec<mpsc::UnboundedSender<HistoryEvent>>,
    closed: bool,
    /// The history quota was reached: only the terminal event may follow.
    full: bool,
}

pub(super) struct ExecInner {
    pub(super) arn: String,
    pub(super) name: String,
    pub(super) state_machine: Arc<StateMachine>,
    pub(super) input: Value,
    pub(super) start_date: OffsetDateTime,
    pub(super) clock: Clock,
    pub(super) history: Mutex<HistoryLog>,
    pub(super) outcome: watch::Sender<Option<Outcome>>,
    pub(super) stop_requested: Mutex<Option<(Option<String>, Option<String>)>>,
    pub(super) stop: Notify,
    /// Signalled once when the history quota is reached.
    pub(super) history_full: Notify,
    pub(super) mocks: Option<MockSession>,
    /// The engine, to start a Distributed Map's child executions.
    pub(super) engine: Weak<EngineInner>,
    /// The Map Run this execution is a child of.
    pub(super) map_run_arn: Option<String>,
}

impl ExecInner {
    pub(super) fn new(
        arn: String,
        name: String,
        state_machine: Arc<StateMachine>,
        input: Value,
        mocks: Option<MockSession>,
        engine: &Arc<EngineInner>,
        map_run_arn: Option<String>,
    ) -> ExecInner {
        let clock = engine.clock;
        let (outcome, _) = watch::channel(None);
        ExecInner {
            arn,
            name,
            state_machine,
            input,
            start_date: clock.now(),
            clock,
            history: Mutex::new(HistoryLog::default()),
            outcome,
            stop_requested: Mutex::new(None),
            stop: Notify::new(),
            history_full: Notify::new(),
            mocks,
            engine: Arc::downgrade(engine),
            map_run_arn,
        }
    }
}

/// A handle on one execution (cheap to clone).
#[derive(Clone)]
pub struct Execution {
    pub(super) inner: Arc<ExecInner>,
}

impl std::fmt::Debug for Execution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Execution").field("arn", &self.inner.arn).finish()
    }
}

/// Live history events of one execution; see [`Execution::subscribe`].
pub struct HistorySubscription {
    rx: mpsc::UnboundedReceiver<HistoryEvent>,
}

impl HistorySubscription {
    /// The next event; `None` after the terminal event has been delivered.
    pub async fn next(&mut self) -> Option<HistoryEvent> {
        self.rx.recv().await
    }
}

impl Execution {
    pub(super) fn new(inner: ExecInner) -> Execution {
        Execution { inner: Arc::new(inner) }
    }
    pub fn arn(&self) -> &str {
        &self.inner.arn
    }
    pub fn name(&self) -> &str {
        &self.inner.name
    }
    pub fn state_machine(&self) -> &Arc<StateMachine> {
        &self.inner.state_machine
    }
    pub fn input(&self) -> &Value {
        &self.inner.input
    }
    pub fn start_date(&self) -> OffsetDateTime {
        self.inner.start_date
    }
    /// The Map Run this execution is a child of (Distributed Map).
    pub fn map_run_arn(&self) -> Option<&str> {
        self.inner.map_run_arn.as_deref()
    }
    /// The engine that runs this execution, while it exists.
    pub(super) fn engine(&self) -> Option<super::Engine> {
        self.inner.engine.upgrade().map(|inner| super::Engine { inner })
    }
    /// The mock test case this execution runs with, if any.
    pub fn test_case(&self) -> Option<&str> {
        self.inner.mocks.as_ref().map(MockSession::test_case)
    }
    pub fn outcome(&self) -> Option<Outcome> {
        self.inner.outcome.borrow().clone()
    }
    pub fn status(&self) -> Status {
        self.inner.outcome.borrow().as_ref().map_or(Status::Running, |o| o.status)
    }
    /// All events so far.
    pub fn history(&self) -> Vec<HistoryEvent> {
        self.inner.history.lock().unwrap_or_else(|p| p.into_inner()).events.clone()
    }
    /// Every event from the first one on, then live events, ending after the terminal event.
    pub fn subscribe(&self) -> HistorySubscription {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut h = self.inner.history.lock().unwrap_or_else(|p| p.into_inner());
        for e in &h.events {
            let _ = tx.send(e.clone());
        }
        if !h.closed {
            h.subscribers.push(tx);
        }
        HistorySubscription { rx }
    }
    /// Wait for the end of the execution.
    pub async fn wait(&self) -> Outcome {
        let mut rx = self.inner.outcome.subscribe();
        loop {
            if let Some(o) = rx.borrow_and_update().clone() {
                return o;
            }
            if rx.changed().await.is_err() {
                // The sender lives in `inner`, which `self` keeps alive.
                continue;
            }
        }
    }
    /// Abort a running execution (StopExecution). Returns false if it had already ended.
    pub fn stop(&self, error: Option<String>, cause: Option<String>) -> bool {
        if self.status() != Status::Running {
            return false;
        }
        *self.inner.stop_requested.lock().unwrap_or_else(|p| p.into_inner()) = Some((error, cause));
        self.inner.stop.notify_one();
        true
    }

    /// Record one event. Once the history holds 24,999 events only the
    /// terminal event is recorded: any other event marks the history full
    /// (the execution then fails, see [`drive`]) and is dropped, as AWS does
    /// ("Avoid reaching the history quota").
    pub(super) fn emit(&self, th: &mut Thread, event_type: EventType, details: EventDetails) -> u64 {
        let mut h = self.inner.history.lock().unwrap_or_else(|p| p.into_inner());
        if h.closed {
            return th.prev;
        }
        let id = h.events.len() as u64 + 1;
        if !event_type.is_terminal() && (h.full || id as usize >= limits::HISTORY_EVENTS) {
            if !h.full {
                h.full = true;
                self.inner.history_full.notify_one();
            }
            return th.prev;
        }
        let ev = HistoryEvent {
            id,
            previous_event_id: th.prev,
            timestamp: self.inner.clock.now(),
            event_type,
            details,
        };
        h.subscribers.retain(|s| s.send(ev.clone()).is_ok());
        if event_type.is_terminal() {
            h.closed = true;
            h.subscribers.clear();
        }
        h.events.push(ev);
        th.prev = id;
        id
    }

    /// Whether the history quota has been reached.
    pub(super) fn history_full(&self) -> bool {
        self.inner.history.lock().unwrap_or_else(|p| p.into_inner()).full
    }

    /// The error that ends an execution whose history is full.
    pub(super) fn history_limit_error() -> StateError {
        StateError::new(limits::HISTORY_LIMIT_ERROR, limits::HISTORY_LIMIT_CAUSE)
    }
}

/// The previous event of one thread of control (machine, branch, iteration).
pub(super) struct Thread {
    pub(super) prev: u64,
}

pub(super) fn none_if_empty(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}

enum End {
    Done(Result<Value, StateError>),
    TimedOut,
    Aborted(Option<String>, Option<String>),
}

pub(super) async fn drive(exec: Execution) {
    let sm = exec.inner.state_machine.clone();
    let clock = exec.inner.clock;
    let mut th = Thread { prev: 0 };
    exec.emit(
        &mut th,
        EventType::ExecutionStarted,
        EventDetails {
            input: Some(exec.inner.input.clone()),
            role_arn: Some(sm.role_arn.clone()),
            ..Default::default()
        },
    );
    tracing::debug!(execution = %exec.arn(), "execution started");
    let end = {
        let interp = Interp { exec: &exec, clock };
        let body = AssertUnwindSafe(interp.run_scope(&sm.definition.root, exec.inner.input.clone(), &mut th))
            .catch_unwind()
            .map(|r| r.unwrap_or_else(|_| Err(StateError::runtime("internal error: the engine panicked"))));
        let limit = sm.definition.timeout_seconds.map(|s| clock.timeout(Duration::from_secs(s)));
        let timed = async {
            match limit {
                Some(d) => tokio::time::timeout(d, body).await.map_or(End::TimedOut, End::Done),
                None => End::Done(body.await),
            }
        };
        tokio::select! {
            end = timed => end,
            _ = exec.inner.history_full.notified() => End::Done(Err(Execution::history_limit_error())),
            _ = exec.inner.stop.notified() => {
                let (e, c) = exec.inner.stop_requested.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or((None, None));
                End::Aborted(e, c)
            }
        }
    };
    // Whatever the body did after the quota was reached, the execution fails for it.
    let end = if exec.history_full() { End::Done(Err(Execution::history_limit_error())) } else { end };
    let (event_type, details, outcome) = match end {
        End::Done(Ok(output)) => (
            EventType::ExecutionSucceeded,
            EventDetails { output: Some(output.clone()), ..Default::default() },
            (Status::Succeeded, Some(output), None, None),
        ),
        End::Done(Err(e)) => {
            let (error, cause) = (none_if_empty(e.error), none_if_empty(e.cause));
            (
                EventType::ExecutionFailed,
                EventDetails { error: error.clone(), cause: cause.clone(), ..Default::default() },
                (Status::Failed, None, error, cause),
            )
        }
        End::TimedOut => {
            let error = Some(names::TIMEOUT.to_string());
            let cause = Some(format!(
                "The execution timed out after {} seconds (TimeoutSeconds of the state machine)",
                sm.definition.timeout_seconds.unwrap_or(0)
            ));
            (
                EventType::ExecutionTimedOut,
                EventDetails { error: error.clone(), cause: cause.clone(), ..Default::default() },
                (Status::TimedOut, None, error, cause),
            )
        }
        End::Aborted(error, cause) => (
            EventType::ExecutionAborted,
            EventDetails { error: error.clone(), cause: cause.clone(), ..Default::default() },
            (Status::Aborted, None, error, cause),
        ),
    };
    exec.emit(&mut th, event_type, details);
    tracing::debug!(execution = %exec.arn(), status = outcome.0.as_str(), "execution ended");
    let (status, output, error, cause) = outcome;
    exec.inner.outcome.send_replace(Some(Outcome { status, output, error, cause, stop_date: clock.now() }));
}
