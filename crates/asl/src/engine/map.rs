//! The Map state, in both modes.
//!
//! - Inline ("Using Map state in Inline mode", AWS Step Functions Developer
//!   Guide): iterations run inside this execution and write its history
//!   (`MapStateStarted`, `MapIteration*`, the iterations' own events); at
//!   most 40 at a time; the first failing iteration fails the state.
//! - Distributed ("Using Map state in Distributed mode"): each item runs as a
//!   child execution of the processor, with its own history and context
//!   object, registered with the engine (DescribeExecution,
//!   GetExecutionHistory, ListExecutions by `mapRunArn`) under a Map Run
//!   (ListMapRuns, DescribeMapRun). This execution's history only gets
//!   `MapRunStarted` and `MapRunSucceeded`/`MapRunFailed`. `MaxConcurrency`
//!   bounds the children running at a time (10,000 when 0). The run fails
//!   with `States.ExceedToleratedFailureThreshold` once more children failed
//!   or timed out than `ToleratedFailureCount`, or a larger share than
//!   `ToleratedFailurePercentage` ("Tolerated failure threshold for
//!   Distributed Map state"; without either, any failure), and the children
//!   still running are stopped. The output is the array of the children's
//!   outputs in item order; a tolerated failure's entry is its execution
//!   result (ExecutionArn, Input, Name, Status, Error, Cause, dates) as the
//!   ResultWriter page's Transformation NONE describes it for failed children.
//!
//! Where the guides are silent: without `Label` the Map Run's label is a
//! generated 8-character id; the children's `$$.StateMachine` is the Map
//! Run's state machine (`<machine ARN>/<label>`); aborted children (stopped
//! by hand) do not count towards the tolerated failures.

use super::execution::{Execution, Thread};
use super::interp::{Interp, StateCtx};
use super::io::iso_ms;
use super::{MapRun, MapRunStatus, Outcome, StateMachine, Status};
use crate::definition::{Concurrency, Distributed, NumberOr, Scope, State, StateKind};
use crate::error::StateError;
use crate::history::{EventDetails, EventType};
use crate::intrinsic::uuid_v4;
use crate::limits;
use crate::mock::MockSession;
use futures::StreamExt;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// The error of a Map Run past its tolerated failures.
pub const EXCEED_TOLERATED_FAILURE_THRESHOLD: &str = "States.ExceedToleratedFailureThreshold";

impl Interp<'_> {
    /// A Map state's items, processed inline or as child executions, then
    /// its ResultSelector.
    pub(super) async fn map(
        &self,
        state: &State,
        eff: &Value,
        st: &StateCtx<'_>,
        th: &mut Thread,
    ) -> Result<Value, StateError> {
        let StateKind::Map { items_path, item_selector, processor, max_concurrency, distributed } =
            &state.kind
        else {
            return Err(StateError::runtime("not a Map state"));
        };
        let items = match items_path {
            Some(p) => self.resolve(p, eff, st)?,
            None => eff.clone(),
        };
        let Value::Array(items) = items else {
            return Err(StateError::runtime(format!(
                "Map state '{}': the items (ItemsPath {}) must be a JSON array, got {}",
                state.name,
                items_path.as_ref().map_or("$", |p| p.as_str()),
                crate::path::type_name(&items)
            )));
        };
        let limit = match max_concurrency {
            Concurrency::Fixed(n) => *n,
            Concurrency::Path(p) => self.resolve(p, eff, st)?.as_u64().ok_or_else(|| {
                StateError::runtime(format!(
                    "MaxConcurrencyPath '{p}' must resolve to a non-negative integer"
                ))
            })?,
        };
        let mut inputs = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            inputs.push(match item_selector {
                Some(t) => self.render(t, eff, st, Some((i, item)))?,
                None => item.clone(),
            });
        }
        let v = match distributed {
            None => self.inline_map(state, processor, inputs, limit, th).await?,
            Some(d) => self.distributed_map(d, inputs, limit, eff, st, th).await?,
        };
        match &state.result_selector {
            Some(t) => self.render(t, &v, st, None),
            None => Ok(v),
        }
    }

    async fn inline_map(
        &self,
        state: &State,
        processor: &Scope,
        inputs: Vec<Value>,
        limit: u64,
        th: &mut Thread,
    ) -> Result<Value, StateError> {
        // "Using Map state in Inline mode": up to 40 concurrent iterations,
        // whatever MaxConcurrency says (0 means "as many as possible").
        let limit = if limit == 0 { inputs.len() } else { limit as usize };
        let limit = limit.clamp(1, limits::INLINE_MAP_CONCURRENCY);
        let n = inputs.len();
        let started = self.exec.emit(
            th,
            EventType::MapStateStarted,
            EventDetails { length: Some(n as u64), ..Default::default() },
        );
        let name = &state.name;
        let runs = inputs.into_iter().enumerate().map(|(i, input)| async move {
            let mut it = Thread { prev: started };
            let details =
                || EventDetails { name: Some(name.clone()), index: Some(i as u64), ..Default::default() };
            self.exec.emit(&mut it, EventType::MapIterationStarted, details());
            let r = self.run_scope(processor, input, &mut it).await;
            let ty = if r.is_ok() { EventType::MapIterationSucceeded } else { EventType::MapIterationFailed };
            self.exec.emit(&mut it, ty, details());
            (i, r)
        });
        let mut stream = futures::stream::iter(runs).buffer_unordered(limit);
        let mut outs: Vec<Value> = vec![Value::Null; n];
        while let Some((i, r)) = stream.next().await {
            match r {
                Ok(v) => outs[i] = v,
                Err(e) => {
                    drop(stream);
                    self.exec.emit(th, EventType::MapStateFailed, EventDetails::default());
                    return Err(e);
                }
            }
        }
        self.exec.emit(th, EventType::MapStateSucceeded, EventDetails::default());
        Ok(Value::Array(outs))
    }

    async fn distributed_map(
        &self,
        d: &Distributed,
        inputs: Vec<Value>,
        limit: u64,
        eff: &Value,
        st: &StateCtx<'_>,
        th: &mut Thread,
    ) -> Result<Value, StateError> {
        let tolerance = Tolerance {
            percentage: match &d.tolerated_failure_percentage {
                None => None,
                Some(NumberOr::Fixed(p)) => Some(*p),
                Some(NumberOr::Path(p)) => Some(
                    self.resolve(p, eff, st)?.as_f64().filter(|x| (0.0..=100.0).contains(x)).ok_or_else(
                        || {
                            StateError::runtime(format!(
                                "ToleratedFailurePercentagePath '{p}' must resolve to a number from 0 to 100"
                            ))
                        },
                    )?,
                ),
            },
            count: match &d.tolerated_failure_count {
                None => None,
                Some(NumberOr::Fixed(c)) => Some(*c),
                Some(NumberOr::Path(p)) => Some(self.resolve(p, eff, st)?.as_u64().ok_or_else(|| {
                    StateError::runtime(format!(
                        "ToleratedFailureCountPath '{p}' must resolve to a non-negative integer"
                    ))
                })?),
            },
        };
        let engine = self
            .exec
            .engine()
            .ok_or_else(|| StateError::runtime("the engine of this execution no longer exists"))?;
        let parent = &self.exec.inner.state_machine;
        let label = d.label.clone().unwrap_or_else(|| uuid_v4()[..8].to_string());
        let child_machine = Arc::new(StateMachine {
            name: format!("{}/{label}", parent.name),
            arn: format!("{}/{label}", parent.arn),
            definition: d.definition.clone(),
            tasks: parent.tasks.clone(),
            mocks: parent.mocks.clone(),
            role_arn: parent.role_arn.clone(),
            creation_date: self.clock.now(),
            region: parent.region.clone(),
        });
        let limit = match limit as usize {
            0 => limits::DISTRIBUTED_MAP_CONCURRENCY,
            n => n.min(limits::DISTRIBUTED_MAP_CONCURRENCY),
        };
        let total = inputs.len();
        let run = Arc::new(MapRun::new(
            format!("{}/{label}:{}", parent.arn.replacen(":stateMachine:", ":mapRun:", 1), uuid_v4()),
            self.exec.arn().to_string(),
            child_machine.arn.clone(),
            self.clock.now(),
            limit as u64,
            (tolerance.percentage.unwrap_or(0.0), tolerance.count.unwrap_or(0)),
            total as u64,
        ));
        engine.add_map_run(run.clone());
        self.exec.emit(
            th,
            EventType::MapRunStarted,
            EventDetails { map_run_arn: Some(run.arn.clone()), ..Default::default() },
        );
        let children = Children { run: run.clone(), started: Mutex::new(Vec::new()), clock: self.clock };
        let launches = inputs.into_iter().enumerate().map(|(i, input)| {
            let (engine, machine, children) = (&engine, &child_machine, &children);
            async move {
                let mocks = self.exec.inner.mocks.as_ref().map(MockSession::fresh);
                let child = engine
                    .launch(machine.clone(), uuid_v4(), input, mocks, Some(children.run.arn.clone()))
                    .map_err(|e| StateError::runtime(format!("cannot start a child execution: {e}")))?;
                children.add(&child);
                let outcome = child.wait().await;
                children.run.finished(outcome.status);
                Ok::<_, StateError>((i, child, outcome))
            }
        });
        let mut stream = futures::stream::iter(launches).buffer_unordered(limit.max(1));
        let mut results: Vec<Value> = vec![Value::Null; total];
        let mut failed = 0usize;
        while let Some(done) = stream.next().await {
            let (i, child, outcome) = done?;
            if outcome.status == Status::Succeeded {
                results[i] = outcome.output.clone().unwrap_or(Value::Null);
                continue;
            }
            results[i] = execution_result(&child, &outcome);
            if matches!(outcome.status, Status::Failed | Status::TimedOut) {
                failed += 1;
                if tolerance.exceeded(failed, total) {
                    drop(stream);
                    children.stop_running();
                    run.close(MapRunStatus::Failed, self.clock.now());
                    let cause = format!(
                        "Map Run {}: {failed} of {total} child executions failed or timed out, more than tolerated ({})",
                        run.arn,
                        tolerance.describe()
                    );
                    self.exec.emit(
                        th,
                        EventType::MapRunFailed,
                        EventDetails {
                            error: Some(EXCEED_TOLERATED_FAILURE_THRESHOLD.into()),
                            cause: Some(cause.clone()),
                            ..Default::default()
                        },
                    );
                    return Err(StateError::new(EXCEED_TOLERATED_FAILURE_THRESHOLD, cause));
                }
            }
        }
        run.close(MapRunStatus::Succeeded, self.clock.now());
        self.exec.emit(th, EventType::MapRunSucceeded, EventDetails::default());
        Ok(Value::Array(results))
    }
}

/// `ToleratedFailurePercentage` / `ToleratedFailureCount` as resolved.
struct Tolerance {
    percentage: Option<f64>,
    count: Option<u64>,
}

impl Tolerance {
    /// Whether `failed` of `total` items is past the threshold: more than the
    /// count, or a larger share than the percentage; with neither, any failure.
    fn exceeded(&self, failed: usize, total: usize) -> bool {
        let by_count = self.count.is_some_and(|c| failed as u64 > c);
        let by_share = self.percentage.is_some_and(|p| failed as f64 * 100.0 / total.max(1) as f64 > p);
        let none_set = self.count.is_none() && self.percentage.is_none();
        by_count || by_share || (none_set && failed > 0)
    }

    fn describe(&self) -> String {
        match (self.percentage, self.count) {
            (None, None) => "no failure is tolerated".to_string(),
            (Some(p), None) => format!("ToleratedFailurePercentage {p}"),
            (None, Some(c)) => format!("ToleratedFailureCount {c}"),
            (Some(p), Some(c)) => format!("ToleratedFailurePercentage {p}, ToleratedFailureCount {c}"),
        }
    }
}

/// The children a Map Run started; dropping it (the run failed, or the
/// parent execution ended or was stopped) stops the ones still running.
struct Children {
    run: Arc<MapRun>,
    started: Mutex<Vec<Execution>>,
    clock: crate::clock::Clock,
}

impl Children {
    fn add(&self, child: &Execution) {
        self.run.started();
        self.started.lock().unwrap_or_else(|p| p.into_inner()).push(child.clone());
    }

    fn stop_running(&self) {
        let started = std::mem::take(&mut *self.started.lock().unwrap_or_else(|p| p.into_inner()));
        let mut stopped = false;
        for child in started.iter().filter(|c| c.status() == Status::Running) {
            stopped |= child.stop(None, Some(format!("Map Run {} ended", self.run.arn)));
        }
        if stopped {
            self.run.abort_running();
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.stop_running();
        self.run.close(MapRunStatus::Aborted, self.clock.now());
    }
}

/// A child execution as a Distributed Map reports one that did not succeed.
fn execution_result(child: &Execution, outcome: &Outcome) -> Value {
    let mut v = json!({
        "ExecutionArn": child.arn(),
        "Input": child.input().to_string(),
        "InputDetails": {"Included": true},
        "Name": child.name(),
        "StartDate": iso_ms(child.start_date()),
        "StateMachineArn": child.state_machine().arn,
        "Status": outcome.status.as_str(),
        "StopDate": iso_ms(outcome.stop_date),
    });
    if let Value::Object(m) = &mut v {
        if let Some(e) = &outcome.error {
            m.insert("Error".into(), json!(e));
        }
        if let Some(c) = &outcome.cause {
            m.insert("Cause".into(), json!(c));
        }
    }
    v
}
