//! The shared Lambda entry point: every binary is `serve(step::handle)`.
//!
//! Start-up reads and validates the settings (an invalid setting stops the
//! function before its first invocation, with every problem logged), builds
//! the clients once, then serves invocations. A handler's [`DrError`]
//! becomes the invocation's `errorType`, which the state machines match.

use std::future::Future;
use std::sync::Arc;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

use crate::context::StepContext;
use crate::error::DrResult;

/// Structured JSON logs on stdout (CloudWatch); level from `RUST_LOG`, default `info`.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .try_init();
}

/// Runs a step as a Lambda function until the runtime stops it.
pub async fn serve<F, Fut>(step: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(Arc<StepContext>, Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = DrResult<Value>> + Send,
{
    init_tracing();
    let ctx = match StepContext::from_env().await {
        Ok(ctx) => Arc::new(ctx),
        Err(e) => {
            tracing::error!(error = %e, "invalid settings");
            return Err(e.into());
        }
    };
    let step = Arc::new(step);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let ctx = Arc::clone(&ctx);
        let step = Arc::clone(&step);
        async move { step(ctx, event.payload).await.map_err(Diagnostic::from) }
    }))
    .await
}
