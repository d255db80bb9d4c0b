//! The interpreter: runs the states of one scope (the machine, a Parallel
//! branch, a Map iteration) with Retry, Catch, timeouts and the context object.

use super::execution::{Execution, Thread, none_if_empty};
use super::io::{input_path, iso_ms, output_path, result_path};
use crate::clock::Clock;
use crate::definition::{Catcher, FailField, Jitter, Retrier, Scope, Seconds, State, StateKind, WaitFor};
use crate::env::Env;
use crate::error::{StateError, names};
use crate::history::{EventDetails, EventType};
use crate::limits;
use crate::mock::MockAnswer;
use crate::payload::Template;
use crate::registry::{self, Target};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::time::Duration;
use time::OffsetDateTime;

pub(super) enum Flow {
    Next(String, Value),
    End(Value),
}

pub(super) struct Interp<'a> {
    pub(super) exec: &'a Execution,
    pub(super) clock: Clock,
}

pub(super) struct StateCtx<'a> {
    name: &'a str,
    entered: OffsetDateTime,
    retry_count: u64,
    /// `$$.Task.Token` of a `.waitForTaskToken` attempt.
    task_token: Option<String>,
}

impl<'a> Interp<'a> {
    pub(super) fn context(&self, st: &StateCtx<'_>, item: Option<(usize, &Value)>) -> Value {
        let e = &self.exec.inner;
        let mut ctx = json!({
            "Execution": {
                "Id": e.arn,
                "Input": e.input,
                "Name": e.name,
                "RoleArn": e.state_machine.role_arn,
                "StartTime": iso_ms(e.start_date),
                "RedriveCount": 0,
            },
            "State": {"EnteredTime": iso_ms(st.entered), "Name": st.name, "RetryCount": st.retry_count},
            "StateMachine": {"Id": e.state_machine.arn, "Name": e.state_machine.name},
            "Task": {},
        });
        if let (Some(token), Value::Object(m)) = (&st.task_token, &mut ctx) {
            m.insert("Task".into(), json!({ "Token": token }));
        }
        if let (Some((i, v)), Value::Object(m)) = (item, &mut ctx) {
            m.insert("Map".into(), json!({"Item": {"Index": i, "Value": v}}));
        }
        ctx
    }

    pub(super) fn render(
        &self,
        t: &Template,
        input: &Value,
        st: &StateCtx<'_>,
        item: Option<(usize, &Value)>,
    ) -> Result<Value, StateError> {
        let build = || self.context(st, item);
        t.render(&Env::new(input, &build))
    }

    pub(super) fn resolve(
        &self,
        p: &crate::path::JsonPath,
        input: &Value,
        st: &StateCtx<'_>,
    ) -> Result<Value, StateError> {
        let build = || self.context(st, None);
        Env::new(input, &build)
            .resolve(p)
            .map_err(|e| StateError::runtime(format!("Invalid path '{p}': {e}")))
    }

    pub(super) fn run_scope<'s>(
        &'s self,
        scope: &'s Scope,
        input: Value,
        th: &'s mut Thread,
    ) -> BoxFuture<'s, Result<Value, StateError>> {
        Box::pin(async move {
            let mut state = scope
                .get(&scope.start_at)
                .ok_or_else(|| StateError::runtime(format!("no state '{}'", scope.start_at)))?;
            let mut input = input;
            loop {
                let flow = self.run_state(state, input, th).await;
                // A history at its quota ends the execution, even in a loop
                // of states that never wait.
                if self.exec.history_full() {
                    return Err(Execution::history_limit_error());
                }
                match flow? {
                    Flow::End(out) => return Ok(out),
                    Flow::Next(next, out) => {
                        state = scope
                            .get(&next)
                            .ok_or_else(|| StateError::runtime(format!("no state '{next}'")))?;
                        input = out;
                    }
                }
            }
        })
    }

    fn flow(state: &State, out: Value) -> Flow {
        match &state.next {
            Some(n) => Flow::Next(n.clone(), out),
            None => Flow::End(out),
        }
    }

    /// `<Type>StateExited`, once the output is within the payload quota.
    fn exited(&self, th: &mut Thread, state: &State, out: &Value) -> Result<(), StateError> {
        limits::check_payload(out, || format!("The output of state '{}'", state.name))?;
        self.exec.emit(
            th,
            EventType::exited(state.type_name()),
            EventDetails { name: Some(state.name.clone()), output: Some(out.clone()), ..Default::default() },
        );
        Ok(())
    }

    async fn run_state(&self, state: &State, raw: Value, th: &mut Thread) -> Result<Flow, StateError> {
        let st = StateCtx { name: &state.name, entered: self.clock.now(), retry_count: 0, task_token: None };
        limits::check_payload(&raw, || format!("The input of state '{}'", state.name))?;
        self.exec.emit(
            th,
            EventType::entered(state.type_name()),
            EventDetails { name: Some(state.name.clone()), input: Some(raw.clone()), ..Default::default() },
        );
        match &state.kind {
            StateKind::Pass { result } => {
                let eff = input_path(state, &raw)?;
                let res = match (result, &state.parameters) {
                    (Some(r), _) => r.clone(),
                    (None, Some(p)) => self.render(p, &eff, &st, None)?,
                    (None, None) => eff.into_owned(),
                };
                let out = output_path(state, result_path(&state.result_path, &raw, res)?)?;
                self.exited(th, state, &out)?;
                Ok(Self::flow(state, out))
            }
            StateKind::Succeed => {
                let out = output_path(state, input_path(state, &raw)?.into_owned())?;
                self.exited(th, state, &out)?;
                Ok(Flow::End(out))
            }
            StateKind::Fail { error, cause } => {
                let field = |f: &Option<FailField>, which: &str| -> Result<String, StateError> {
                    match f {
                        None => Ok(String::new()),
                        Some(FailField::Literal(s)) => Ok(s.clone()),
                        Some(FailField::Dynamic(t)) => match self.render(t, &raw, &st, None)? {
                            Value::String(s) => Ok(s),
                            other => Err(StateError::runtime(format!(
                                "{which}Path of Fail state '{}' must resolve to a string, got {other}",
                                state.name
                            ))),
                        },
                    }
                };
                Err(StateError::new(field(error, "Error")?, field(cause, "Cause")?))
            }
            StateKind::Choice { choices, default } => {
                let eff = input_path(state, &raw)?;
                let build = || self.context(&st, None);
                let env = Env::new(&eff, &build);
                let mut next = None;
                for (rule, target) in choices {
                    if rule.eval(&env)? {
                        next = Some(target.clone());
                        break;
                    }
                }
                drop(env);
                let next = next
                    .or_else(|| default.clone())
                    .ok_or_else(|| StateError::new(names::NO_CHOICE_MATCHED, "No Matches!"))?;
                let out = output_path(state, eff.into_owned())?;
                self.exited(th, state, &out)?;
                Ok(Flow::Next(next, out))
            }
            StateKind::Wait(w) => {
                let eff = input_path(state, &raw)?;
                let d = match w {
                    WaitFor::Seconds(s) => Duration::from_secs(*s),
                    WaitFor::SecondsPath(p) => match self.resolve(p, &eff, &st)? {
                        Value::Number(n) if n.as_u64().is_some() => {
                            Duration::from_secs(n.as_u64().unwrap_or(0))
                        }
                        other => {
                            return Err(StateError::runtime(format!(
                                "SecondsPath '{p}' of Wait state '{}' must resolve to a non-negative integer, got {other}",
                                state.name
                            )));
                        }
                    },
                    WaitFor::Timestamp(t) => until(self.clock.now(), *t),
                    WaitFor::TimestampPath(p) => match self.resolve(p, &eff, &st)? {
                        Value::String(s) if crate::choice::parse_ts(&s).is_some() => {
                            until(self.clock.now(), crate::choice::parse_ts(&s).unwrap_or(st.entered))
                        }
                        other => {
                            return Err(StateError::runtime(format!(
                                "TimestampPath '{p}' of Wait state '{}' must resolve to an RFC 3339 timestamp, got {other}",
                                state.name
                            )));
                        }
                    },
                };
                self.clock.sleep(d).await;
                let out = output_path(state, eff.into_owned())?;
                self.exited(th, state, &out)?;
                Ok(Self::flow(state, out))
            }
            StateKind::Task { .. } | StateKind::Parallel { .. } | StateKind::Map { .. } => {
                self.run_with_errors(state, raw, st, th).await
            }
        }
    }

    async fn run_with_errors(
        &self,
        state: &State,
        raw: Value,
        mut st: StateCtx<'_>,
        th: &mut Thread,
    ) -> Result<Flow, StateError> {
        let eff = input_path(state, &raw)?;
        let mut counts = vec![0u64; state.retry.len()];
        let result = loop {
            if self.exec.history_full() {
                return Err(Execution::history_limit_error());
            }
            let attempt = match &state.kind {
                StateKind::Task { resource, timeout, heartbeat } => {
                    self.task(state, resource, (timeout.as_ref(), heartbeat.as_ref()), &eff, &st, th).await
                }
                StateKind::Parallel { branches } => self.parallel(state, branches, &eff, &st, th).await,
                StateKind::Map { .. } => self.map(state, &eff, &st, th).await,
                _ => Err(StateError::runtime("not a task-like state")),
            };
            match attempt {
                Ok(v) => break Ok(v),
                Err(e) if e.is_terminal() => return Err(e),
                Err(e) => {
                    if let Some(i) = state.retry.iter().position(|r| e.matches(&r.error_equals))
                        && counts[i] < state.retry[i].max_attempts
                    {
                        let delay = retry_delay(&state.retry[i], counts[i]);
                        counts[i] += 1;
                        st.retry_count += 1;
                        tracing::debug!(state = %state.name, error = %e.error, attempt = st.retry_count, ?delay, "retrying");
                        self.clock.sleep(delay).await;
                        continue;
                    }
                    break Err(e);
                }
            }
        };
        let caught = match result {
            Ok(res) => match result_path(&state.result_path, &raw, res) {
                Ok(out) => {
                    let out = output_path(state, out)?;
                    self.exited(th, state, &out)?;
                    return Ok(Self::flow(state, out));
                }
                Err(e) => e,
            },
            Err(e) => e,
        };
        if caught.is_terminal() {
            return Err(caught);
        }
        match state.catch.iter().find(|c: &&Catcher| caught.matches(&c.error_equals)) {
            Some(c) => {
                let out = result_path(&c.result_path, &raw, caught.to_output())?;
                self.exited(th, state, &out)?;
                Ok(Flow::Next(c.next.clone(), out))
            }
            None => Err(caught),
        }
    }

    async fn task(
        &self,
        state: &State,
        resource: &str,
        (timeout, heartbeat): (Option<&Seconds>, Option<&Seconds>),
        eff: &Value,
        st: &StateCtx<'_>,
        th: &mut Thread,
    ) -> Result<Value, StateError> {
        // `.waitForTaskToken`: this attempt gets a token of its own.
        let callback_of = resource.strip_suffix(".waitForTaskToken");
        let waiter = match (callback_of, self.exec.engine()) {
            (None, _) => None,
            (Some(_), Some(engine)) => Some(engine.open_token()),
            (Some(_), None) => {
                return Err(StateError::runtime("the engine of this execution no longer exists"));
            }
        };
        let attempt = StateCtx {
            name: st.name,
            entered: st.entered,
            retry_count: st.retry_count,
            task_token: waiter.as_ref().map(|w| w.token.clone()),
        };
        let st = &attempt;
        let params = match &state.parameters {
            Some(t) => self.render(t, eff, st, None)?,
            None => eff.clone(),
        };
        limits::check_payload(&params, || format!("The input of state '{}' after Parameters", state.name))?;
        let timeout_secs = self.seconds(timeout, "TimeoutSecondsPath", eff, st)?;
        let heartbeat_secs = self.seconds(heartbeat, "HeartbeatSecondsPath", eff, st)?;
        let target = Target::of(callback_of.unwrap_or(resource));
        let direct = matches!(target, Target::LambdaFunction(_));
        let (rtype, raction) = registry::resource_type(resource);
        let region = self.exec.inner.state_machine.region.clone();
        // Task* events name their service integration; LambdaFunction* events do not.
        let with_resource = |mut d: EventDetails| {
            if !direct {
                d.resource_type = Some(rtype.clone());
                d.resource = Some(raction.clone());
            }
            d
        };
        if direct {
            self.exec.emit(
                th,
                EventType::LambdaFunctionScheduled,
                EventDetails {
                    resource: Some(resource.to_string()),
                    input: Some(params.clone()),
                    timeout_in_seconds: timeout_secs,
                    ..Default::default()
                },
            );
            self.exec.emit(th, EventType::LambdaFunctionStarted, EventDetails::default());
        } else {
            self.exec.emit(
                th,
                EventType::TaskScheduled,
                with_resource(EventDetails {
                    region: Some(region),
                    parameters: Some(params.clone()),
                    timeout_in_seconds: timeout_secs,
                    ..Default::default()
                }),
            );
            self.exec.emit(th, EventType::TaskStarted, with_resource(EventDetails::default()));
        }
        let call = async {
            let Some(mut waiter) = waiter else {
                return self.invoke(&state.name, resource, &target, params).await;
            };
            // A mocked callback task answers with its final result at once.
            if let Some(answer) = self.mocked(&state.name) {
                return answer;
            }
            let submitted =
                self.invoke(&state.name, callback_of.unwrap_or(resource), &target, params).await?;
            self.exec.emit(
                th,
                EventType::TaskSubmitted,
                with_resource(EventDetails { output: Some(submitted), ..Default::default() }),
            );
            let waited = self.wait_for_callback(&mut waiter, heartbeat_secs);
            match timeout_secs {
                // Waiting for the callback is waiting for the emulated world
                // (an event, a person), like a Wait state: under a scaled
                // clock it scales even when task timeouts are kept real for
                // the invocation above ([`Clock::with_real_timeouts`]). So the
                // countdown restarts at TaskSubmitted; on AWS `TimeoutSeconds`
                // covers the whole task, which the outer timeout below keeps.
                Some(s) if self.clock.keeps_real_timeouts() => {
                    tokio::time::timeout(self.clock.scale(Duration::from_secs(s)), waited)
                        .await
                        .unwrap_or_else(|_| Err(StateError::new(names::TIMEOUT, "")))
                }
                _ => waited.await,
            }
        };
        let result = match timeout_secs {
            Some(s) => match tokio::time::timeout(self.clock.timeout(Duration::from_secs(s)), call).await {
                Ok(r) => r,
                Err(_) => Err(StateError::new(names::TIMEOUT, "")),
            },
            None => call.await,
        };
        // A result over the payload quota fails the task (and, being
        // States.DataLimitExceeded, the execution) with the cause AWS reports.
        let result = result.and_then(|v| {
            if limits::json_bytes(&v) > limits::PAYLOAD_BYTES {
                return Err(StateError::new(
                    names::DATA_LIMIT_EXCEEDED,
                    format!(
                        "The state/task '{resource}' returned a result with a size exceeding the maximum number of bytes service limit."
                    ),
                ));
            }
            Ok(v)
        });
        let (ok_type, fail_type, timeout_type) = if direct {
            (
                EventType::LambdaFunctionSucceeded,
                EventType::LambdaFunctionFailed,
                EventType::LambdaFunctionTimedOut,
            )
        } else {
            (EventType::TaskSucceeded, EventType::TaskFailed, EventType::TaskTimedOut)
        };
        match result {
            Ok(v) => {
                self.exec.emit(
                    th,
                    ok_type,
                    with_resource(EventDetails { output: Some(v.clone()), ..Default::default() }),
                );
                match &state.result_selector {
                    Some(t) => self.render(t, &v, st, None),
                    None => Ok(v),
                }
            }
            Err(e) => {
                let timed_out = e.error == names::TIMEOUT || e.error == names::HEARTBEAT_TIMEOUT;
                let ty = if timed_out { timeout_type } else { fail_type };
                self.exec.emit(
                    th,
                    ty,
                    with_resource(EventDetails {
                        error: Some(e.error.clone()),
                        cause: none_if_empty(e.cause.clone()),
                        ..Default::default()
                    }),
                );
                Err(e)
            }
        }
    }

    /// The mocked answer of this invocation of `state`, if its test case mocks it.
    fn mocked(&self, state: &str) -> Option<Result<Value, StateError>> {
        let answer = self.exec.inner.mocks.as_ref()?.next_answer(state)?;
        Some(match answer {
            Ok(MockAnswer::Return(v)) => Ok(v),
            Ok(MockAnswer::Throw(e)) => Err(StateError::from(e)),
            Err(msg) => Err(StateError::runtime(msg)),
        })
    }

    /// A `...Seconds`/`...SecondsPath` value of a task, resolved.
    fn seconds(
        &self,
        s: Option<&Seconds>,
        field: &str,
        eff: &Value,
        st: &StateCtx<'_>,
    ) -> Result<Option<u64>, StateError> {
        match s {
            None => Ok(None),
            Some(Seconds::Fixed(s)) => Ok(Some(*s)),
            Some(Seconds::Path(p)) => match self.resolve(p, eff, st)?.as_u64() {
                Some(s) if s > 0 => Ok(Some(s)),
                _ => Err(StateError::runtime(format!(
                    "{field} '{p}' of state '{}' must resolve to a positive integer",
                    st.name
                ))),
            },
        }
    }

    /// Wait for SendTaskSuccess/Failure; SendTaskHeartbeat restarts the
    /// `HeartbeatSeconds` countdown.
    async fn wait_for_callback(
        &self,
        waiter: &mut super::callback::Waiter,
        heartbeat: Option<u64>,
    ) -> Result<Value, StateError> {
        use super::callback::Callback;
        loop {
            let next = match heartbeat {
                None => waiter.rx.recv().await,
                Some(h) => tokio::time::timeout(self.clock.timeout(Duration::from_secs(h)), waiter.rx.recv())
                    .await
                    .map_err(|_| {
                        StateError::new(
                            names::HEARTBEAT_TIMEOUT,
                            format!("no heartbeat for the task token in {h} seconds (HeartbeatSeconds)"),
                        )
                    })?,
            };
            match next {
                Some(Callback::Heartbeat) => continue,
                Some(Callback::Success(v)) => return Ok(v),
                Some(Callback::Failure(error, cause)) => {
                    return Err(StateError::new(error.unwrap_or_default(), cause.unwrap_or_default()));
                }
                None => return Err(StateError::runtime("the task token was closed")),
            }
        }
    }

    fn invoke(
        &self,
        state: &str,
        resource: &str,
        target: &Target,
        params: Value,
    ) -> BoxFuture<'static, Result<Value, StateError>> {
        if let Some(r) = self.mocked(state) {
            return Box::pin(async move { r });
        }
        let sm = &self.exec.inner.state_machine;
        let not_found = |name: &str| {
            StateError::new(
                "Lambda.ResourceNotFoundException",
                format!(
                    "Function not found: arn:aws:lambda:{}:{}:function:{name} (no handler registered as '{name}')",
                    sm.region,
                    sm.arn.split(':').nth(4).unwrap_or("")
                ),
            )
        };
        match target {
            Target::LambdaFunction(name) => match sm.tasks.function(name) {
                Some(h) => {
                    let fut = h(params);
                    Box::pin(async move { fut.await.map_err(StateError::from) })
                }
                None => {
                    let e = not_found(name);
                    Box::pin(async move { Err(e) })
                }
            },
            Target::LambdaInvoke => {
                let Some(fname) = params.get("FunctionName").and_then(Value::as_str) else {
                    let e = StateError::runtime(format!(
                        "The field 'FunctionName' is required by {resource} in state '{state}'"
                    ));
                    return Box::pin(async move { Err(e) });
                };
                let name = registry::function_name(fname).to_string();
                let payload = params.get("Payload").cloned().unwrap_or_else(|| json!({}));
                match sm.tasks.function(&name) {
                    Some(h) => {
                        let fut = h(payload);
                        Box::pin(async move {
                            let v = fut.await.map_err(StateError::from)?;
                            Ok(json!({
                                "ExecutedVersion": "$LATEST",
                                "Payload": v,
                                "SdkHttpMetadata": {"HttpStatusCode": 200},
                                "SdkResponseMetadata": {"RequestId": crate::intrinsic::uuid_v4()},
                                "StatusCode": 200
                            }))
                        })
                    }
                    None => {
                        let e = not_found(&name);
                        Box::pin(async move { Err(e) })
                    }
                }
            }
            Target::Other => match sm.tasks.resource(resource) {
                Some(h) => {
                    let fut = h(params);
                    Box::pin(async move { fut.await.map_err(StateError::from) })
                }
                None => {
                    let e = StateError::new(
                        names::TASK_FAILED,
                        format!("no handler registered for resource '{resource}' (state '{state}')"),
                    );
                    Box::pin(async move { Err(e) })
                }
            },
        }
    }

    async fn parallel(
        &self,
        state: &State,
        branches: &[Scope],
        eff: &Value,
        st: &StateCtx<'_>,
        th: &mut Thread,
    ) -> Result<Value, StateError> {
        let input = match &state.parameters {
            Some(t) => self.render(t, eff, st, None)?,
            None => eff.clone(),
        };
        let started = self.exec.emit(th, EventType::ParallelStateStarted, EventDetails::default());
        let runs = branches.iter().map(|b| {
            let input = input.clone();
            async move {
                let mut bt = Thread { prev: started };
                self.run_scope(b, input, &mut bt).await
            }
        });
        match futures::future::try_join_all(runs).await {
            Ok(outs) => {
                self.exec.emit(th, EventType::ParallelStateSucceeded, EventDetails::default());
                let v = Value::Array(outs);
                match &state.result_selector {
                    Some(t) => self.render(t, &v, st, None),
                    None => Ok(v),
                }
            }
            Err(e) => {
                self.exec.emit(th, EventType::ParallelStateFailed, EventDetails::default());
                Err(e)
            }
        }
    }
}

fn until(now: OffsetDateTime, t: OffsetDateTime) -> Duration {
    let d = t - now;
    if d.is_positive() { Duration::try_from(d).unwrap_or(Duration::ZERO) } else { Duration::ZERO }
}

/// Delay before retry number `attempt` (0-based) of a retrier.
pub fn retry_delay(r: &Retrier, attempt: u64) -> Duration {
    let mut secs = r.interval_seconds as f64 * r.backoff_rate.powi(attempt.min(i32::MAX as u64) as i32);
    if let Some(max) = r.max_delay_seconds {
        secs = secs.min(max as f64);
    }
    secs = secs.min(99_999_999.0);
    if r.jitter == Jitter::Full {
        secs *= fastrand::f64();
    }
    Duration::from_secs_f64(secs.max(0.0))
}
