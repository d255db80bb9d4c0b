//! A local Lambda Runtime API, version 2018-06-01: the interface a Lambda
//! runtime (the Rust `lambda_runtime` crate, the managed Python runtime,
//! `bench/python/runtime.py`) speaks to the sandbox.
//!
//! - `GET  /2018-06-01/runtime/invocation/next`: the first call after
//!   [`RuntimeApi::arm`] receives the armed event with the
//!   `Lambda-Runtime-*` headers; later calls are held open (a runtime that
//!   has answered blocks here, as in a real sandbox between invocations)
//!   until the next `arm`, then answered `410 Gone`.
//! - `POST /2018-06-01/runtime/invocation/{id}/response` and `.../error`:
//!   the invocation's result.
//! - `POST /2018-06-01/runtime/init/error`: a failed initialisation.
//!
//! Every request is timestamped on arrival ([`Instant`]), so a caller that
//! notes the instant it started the process reads init time (start to first
//! `next`) and time to first response. One function process at a time.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::Notify;

const PREFIX: &str = "/2018-06-01/runtime";

/// How the armed invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// `/response` with this body.
    Response(Value),
    /// `/error` with the `Lambda-Runtime-Function-Error-Type` header and body.
    Error { error_type: String, body: String },
    /// `/init/error`.
    InitError { error_type: String, body: String },
}

/// What the server saw since the last [`RuntimeApi::arm`].
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Arrival of each `next` request.
    pub nexts: Vec<Instant>,
    /// Arrival and content of the answer.
    pub answer: Option<(Instant, Answer)>,
}

#[derive(Debug, Default)]
struct Slot {
    generation: u64,
    pending: Option<Pending>,
    observed: Observed,
}

#[derive(Debug)]
struct Pending {
    request_id: String,
    function_arn: String,
    event: Value,
}

#[derive(Debug, Default)]
struct Shared {
    slot: Mutex<Slot>,
    changed: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A running Runtime API server on a loopback port; stopped on drop.
#[derive(Debug)]
pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl RuntimeApi {
    /// Serves on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route(&format!("{PREFIX}/invocation/next"), get(next))
            .route(&format!("{PREFIX}/invocation/{{id}}/response"), post(response))
            .route(&format!("{PREFIX}/invocation/{{id}}/error"), post(error))
            .route(&format!("{PREFIX}/init/error"), post(init_error))
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared, task })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    /// Makes `event` the next invocation and forgets what was observed;
    /// releases `next` requests still held from the previous process.
    pub fn arm(&self, request_id: &str, function_arn: &str, event: Value) {
        let mut slot = self.shared.lock();
        slot.generation += 1;
        slot.pending =
            Some(Pending { request_id: request_id.to_owned(), function_arn: function_arn.to_owned(), event });
        slot.observed = Observed::default();
        drop(slot);
        self.shared.changed.notify_waiters();
    }

    /// What was observed so far.
    pub fn observed(&self) -> Observed {
        self.shared.lock().observed.clone()
    }

    /// Waits until `ready` holds for the observations (`None` on timeout).
    pub async fn wait_until<T>(
        &self,
        timeout: Duration,
        ready: impl Fn(&Observed) -> Option<T>,
    ) -> Option<T> {
        tokio::time::timeout(timeout, async {
            loop {
                let notified = self.shared.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if let Some(value) = ready(&self.shared.lock().observed) {
                    return value;
                }
                notified.await;
            }
        })
        .await
        .ok()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    let arrived = Instant::now();
    let (generation, pending) = {
        let mut slot = shared.lock();
        slot.observed.nexts.push(arrived);
        (slot.generation, slot.pending.take())
    };
    shared.changed.notify_waiters();
    if let Some(p) = pending {
        let deadline = std::time::SystemTime::now()
            .checked_add(Duration::from_secs(900))
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis());
        let mut headers = HeaderMap::new();
        let mut set = |name: &'static str, value: String| {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(name, v);
            }
        };
        set("lambda-runtime-aws-request-id", p.request_id);
        set("lambda-runtime-deadline-ms", deadline.to_string());
        set("lambda-runtime-invoked-function-arn", p.function_arn);
        set("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Sampled=0".to_owned());
        set("content-type", "application/json".to_owned());
        return (StatusCode::OK, headers, p.event.to_string()).into_response();
    }
    // Between invocations a sandbox's `next` blocks; release it when the
    // next process is armed (this one has been stopped by then).
    loop {
        let notified = shared.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if shared.lock().generation != generation {
            return StatusCode::GONE.into_response();
        }
        notified.await;
    }
}

fn record(shared: &Shared, answer: Answer) -> StatusCode {
    let arrived = Instant::now();
    let mut slot = shared.lock();
    if slot.observed.answer.is_none() {
        slot.observed.answer = Some((arrived, answer));
    }
    drop(slot);
    shared.changed.notify_waiters();
    StatusCode::ACCEPTED
}

fn error_type(headers: &HeaderMap) -> String {
    headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("Unhandled")
        .to_owned()
}

async fn response(State(shared): State<Arc<Shared>>, Path(_id): Path<String>, body: Bytes) -> StatusCode {
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    record(&shared, Answer::Response(value))
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let body = String::from_utf8_lossy(&body).into_owned();
    record(&shared, Answer::Error { error_type: error_type(&headers), body })
}

async fn init_error(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let body = String::from_utf8_lossy(&body).into_owned();
    record(&shared, Answer::InitError { error_type: error_type(&headers), body })
}
