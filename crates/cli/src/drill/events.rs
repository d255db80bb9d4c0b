//! The target side's CompleteWait endpoint: the emulator POSTs each RDS
//! event its EventBridge rule matched (the event document Lambda receives
//! from EventBridge) for the rule's Lambda target, and this hands it to the
//! CompleteWait step. A non-2xx answer (the step failed) makes the emulator
//! retry, as Lambda's asynchronous invocation does.

use std::sync::{Arc, Mutex};

use aurora_dr_core::context::StepContext;
use aurora_dr_core::steps::complete_wait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;
use tokio::net::TcpListener;

use super::setup::RDS_EVENTS_PATH;

/// One event CompleteWait was given, and what it answered.
#[derive(Debug, Clone)]
pub struct EventDelivery {
    /// `detail.SourceIdentifier` of the event.
    pub source: String,
    /// `detail.EventID`, when the event has one.
    pub event_id: Option<String>,
    /// CompleteWait's output, or its error.
    pub result: Result<Value, String>,
}

#[derive(Clone)]
struct Shared {
    ctx: Arc<StepContext>,
    deliveries: Arc<Mutex<Vec<EventDelivery>>>,
}

/// A running CompleteWait endpoint.
pub struct EventReceiver {
    pub url: String,
    deliveries: Arc<Mutex<Vec<EventDelivery>>>,
    task: tokio::task::JoinHandle<()>,
}

impl EventReceiver {
    /// Serves on a free loopback port.
    pub async fn start(ctx: Arc<StepContext>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}{RDS_EVENTS_PATH}", listener.local_addr()?);
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared { ctx, deliveries: Arc::clone(&deliveries) };
        let app = Router::new().route(RDS_EVENTS_PATH, axum::routing::post(receive)).with_state(shared);
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "CompleteWait endpoint stopped");
            }
        });
        Ok(Self { url, deliveries, task })
    }

    /// The events delivered so far, in order.
    pub fn deliveries(&self) -> Vec<EventDelivery> {
        self.deliveries.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for EventReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(State(shared): State<Shared>, body: Bytes) -> (StatusCode, String) {
    let (source, event_id, result) = match serde_json::from_slice::<Value>(&body) {
        Ok(event) => {
            let detail = &event["detail"];
            let source = detail["SourceIdentifier"].as_str().unwrap_or_default().to_owned();
            let event_id = detail["EventID"].as_str().map(str::to_owned);
            let out = complete_wait::handle(Arc::clone(&shared.ctx), event).await;
            (source, event_id, out.map_err(|e| format!("{}: {e}", e.asl_name())))
        }
        Err(e) => (String::new(), None, Err(format!("InvalidInput: the event is not JSON: {e}"))),
    };
    let status = if result.is_ok() { StatusCode::OK } else { StatusCode::INTERNAL_SERVER_ERROR };
    let text = match &result {
        Ok(v) => v.to_string(),
        Err(e) => e.clone(),
    };
    tracing::info!(source = %source, event_id = ?event_id, ok = result.is_ok(), "RDS event delivered to CompleteWait");
    shared.deliveries.lock().unwrap_or_else(|p| p.into_inner()).push(EventDelivery {
        source,
        event_id,
        result,
    });
    (status, text)
}
