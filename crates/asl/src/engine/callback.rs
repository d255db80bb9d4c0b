//! Callbacks: Task states with `.waitForTaskToken` ("Wait for a Callback with
//! Task Token", AWS Step Functions Developer Guide,
//! <https://docs.aws.amazon.com/step-functions/latest/dg/connect-to-resource.html#connect-wait-token>).
//!
//! The task gets a token (`$$.Task.Token`), calls its integration (e.g.
//! `lambda:invoke`, `sns:publish`) with it, records `TaskSubmitted`, then
//! waits until someone calls SendTaskSuccess (the output becomes the task
//! result), SendTaskFailure (its error and cause), or stays silent past
//! `HeartbeatSeconds` since the last SendTaskHeartbeat (`States.HeartbeatTimeout`)
//! or past `TimeoutSeconds` (`States.Timeout`). A token whose task has ended
//! answers `TaskTimedOut`; an unknown one `TaskDoesNotExist` (SendTaskSuccess
//! API reference).

use super::{Engine, EngineError};
use crate::limits;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use tokio::sync::mpsc;

/// What a caller sent for a token.
#[derive(Debug)]
pub(super) enum Callback {
    Success(Value),
    Failure(Option<String>, Option<String>),
    Heartbeat,
}

/// The engine's open and closed task tokens.
#[derive(Default)]
pub(super) struct Tokens {
    open: HashMap<String, mpsc::UnboundedSender<Callback>>,
    closed: HashSet<String>,
}

/// Longest task token the API accepts (SendTaskSuccess: `taskToken`, 1-2048).
const MAX_TOKEN_CHARS: usize = 2048;

/// One task's wait for its callback; dropping it closes the token.
pub(super) struct Waiter {
    engine: Engine,
    pub(super) token: String,
    pub(super) rx: mpsc::UnboundedReceiver<Callback>,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut t = self.engine.inner.tokens.lock().unwrap_or_else(|p| p.into_inner());
        t.open.remove(&self.token);
        t.closed.insert(std::mem::take(&mut self.token));
    }
}

impl Engine {
    /// A new task token and the wait for its callback.
    pub(super) fn open_token(&self) -> Waiter {
        let token = format!("AAAA{}", crate::intrinsic::uuid_v4().replace('-', ""));
        let (tx, rx) = mpsc::unbounded_channel();
        self.inner.tokens.lock().unwrap_or_else(|p| p.into_inner()).open.insert(token.clone(), tx);
        Waiter { engine: self.clone(), token, rx }
    }

    /// SendTaskSuccess: `output` becomes the waiting task's result.
    pub fn send_task_success(&self, token: &str, output: Value) -> Result<(), EngineError> {
        let n = limits::json_bytes(&output);
        if n > limits::PAYLOAD_BYTES {
            return Err(EngineError::Validation(format!(
                "1 validation error detected: Value at 'output' failed to satisfy constraint: Member must have length less than or equal to {} (the output is {n} bytes)",
                limits::PAYLOAD_BYTES
            )));
        }
        self.callback(token, Callback::Success(output))
    }

    /// SendTaskFailure: the waiting task fails with `error` and `cause`.
    pub fn send_task_failure(
        &self,
        token: &str,
        error: Option<String>,
        cause: Option<String>,
    ) -> Result<(), EngineError> {
        self.callback(token, Callback::Failure(error, cause))
    }

    /// SendTaskHeartbeat: restarts the task's `HeartbeatSeconds`.
    pub fn send_task_heartbeat(&self, token: &str) -> Result<(), EngineError> {
        self.callback(token, Callback::Heartbeat)
    }

    fn callback(&self, token: &str, cb: Callback) -> Result<(), EngineError> {
        if token.is_empty() || token.chars().count() > MAX_TOKEN_CHARS {
            return Err(EngineError::InvalidToken(token.to_string()));
        }
        let mut t = self.inner.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let ends = !matches!(cb, Callback::Heartbeat);
        match t.open.get(token) {
            Some(tx) if tx.send(cb).is_ok() => {
                if ends {
                    t.open.remove(token);
                    t.closed.insert(token.to_string());
                }
                Ok(())
            }
            Some(_) => Err(EngineError::TaskTimedOut(token.to_string())),
            None if t.closed.contains(token) => Err(EngineError::TaskTimedOut(token.to_string())),
            None => Err(EngineError::TaskDoesNotExist(token.to_string())),
        }
    }
}
