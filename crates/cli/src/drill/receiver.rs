//! The target side's subscription endpoint: receives the SNS HTTP
//! notification the emulator delivers, turns it into the event Lambda would
//! receive from SNS, and calls the InvokeStepFunction step with it. In a
//! deployment's wiring the emulator, standing in for Lambda, posts the SNS
//! event itself (`{"Records": [...]}`), which is handed on as it is.

use std::sync::{Arc, Mutex};

use aurora_dr_core::context::StepContext;
use aurora_dr_core::steps::invoke_step_function;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use super::setup::SNS_PATH;

/// What the receiver saw, in order.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// SNS's id of the message, for logs.
    pub message_id: String,
    /// The `runId` the message names (the source run it announces), if any.
    pub run_id: Option<String>,
    /// InvokeStepFunction's output, or its error.
    pub result: Result<Value, String>,
}

#[derive(Clone)]
struct Shared {
    ctx: Arc<StepContext>,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
    notify: Arc<Notify>,
}

/// A running receiver.
pub struct Receiver {
    pub url: String,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
    notify: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Serves on a free loopback port.
    pub async fn start(ctx: Arc<StepContext>) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}{SNS_PATH}", listener.local_addr()?);
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let notify = Arc::new(Notify::new());
        let shared = Shared { ctx, deliveries: Arc::clone(&deliveries), notify: Arc::clone(&notify) };
        let app = Router::new().route(SNS_PATH, axum::routing::post(receive)).with_state(shared);
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "SNS receiver stopped");
            }
        });
        Ok(Self { url, deliveries, notify, task })
    }

    /// Deliveries so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.deliveries.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits until a delivery of the message of run `run_id` arrived; returns
    /// every delivery of it so far. SNS delivers at least once and a retried
    /// Notify publishes again, so deliveries are matched to runs by the
    /// message's `runId` (`{execution}-{index}`: one cluster of a source run),
    /// exactly, never counted.
    pub async fn wait_for_message_of(&self, run_id: &str) -> Vec<Delivery> {
        loop {
            let notified = self.notify.notified();
            let seen: Vec<Delivery> =
                self.deliveries().into_iter().filter(|d| d.run_id.as_deref() == Some(run_id)).collect();
            if !seen.is_empty() {
                return seen;
            }
            notified.await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(State(shared): State<Shared>, body: Bytes) -> (StatusCode, String) {
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    let (message_id, run_id, result) = match parsed {
        Ok(notification) => {
            let event = if notification.get("Records").is_some() {
                notification
            } else {
                lambda_event(&notification)
            };
            let sns = &event["Records"][0]["Sns"];
            let id = sns["MessageId"].as_str().unwrap_or_default().to_owned();
            let run_id = sns["Message"]
                .as_str()
                .and_then(|m| serde_json::from_str::<Value>(m).ok())
                .and_then(|m| m["runId"].as_str().map(str::to_owned));
            let out = invoke_step_function::handle(Arc::clone(&shared.ctx), event).await;
            (id, run_id, out.map_err(|e| format!("{}: {e}", e.asl_name())))
        }
        Err(e) => (String::new(), None, Err(format!("InvalidInput: SNS delivery is not JSON: {e}"))),
    };
    let status = if result.is_ok() { StatusCode::OK } else { StatusCode::INTERNAL_SERVER_ERROR };
    let text = match &result {
        Ok(v) => v.to_string(),
        Err(e) => e.clone(),
    };
    tracing::info!(message_id = %message_id, ok = result.is_ok(), "SNS notification delivered to InvokeStepFunction");
    shared.deliveries.lock().unwrap_or_else(|p| p.into_inner()).push(Delivery { message_id, run_id, result });
    shared.notify.notify_waiters();
    (status, text)
}

/// The SNS event Lambda receives for an HTTP-shaped SNS notification.
fn lambda_event(n: &Value) -> Value {
    let text = |k: &str| n.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "Records": [{
            "EventSource": "aws:sns",
            "EventVersion": "1.0",
            "EventSubscriptionArn": format!("{}:local", n["TopicArn"].as_str().unwrap_or_default()),
            "Sns": {
                "Type": text("Type"),
                "MessageId": text("MessageId"),
                "TopicArn": text("TopicArn"),
                "Subject": text("Subject"),
                "Message": text("Message"),
                "Timestamp": text("Timestamp"),
                "SignatureVersion": n.get("SignatureVersion").cloned().unwrap_or_else(|| json!("1")),
                "Signature": n.get("Signature").cloned().unwrap_or_else(|| json!("")),
                "SigningCertUrl": n.get("SigningCertURL").cloned().unwrap_or_else(|| json!("")),
                "UnsubscribeUrl": n.get("UnsubscribeURL").cloned().unwrap_or_else(|| json!("")),
                "MessageAttributes": n.get("MessageAttributes").cloned().unwrap_or_else(|| json!({})),
            }
        }]
    })
}
