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
use tracing_subscriber::filter::Targets;

use crate::context::StepContext;
use crate::error::DrResult;

/// Structured JSON logs on stdout (CloudWatch); levels from `RUST_LOG`
/// (`warn`, `info,aws_smithy_runtime=debug`: a default level and per-target
/// levels), `info` when unset or unreadable. EMF metric records
/// ([`crate::metrics`]) go to stdout raw, one JSON object per line, whatever
/// the level.
pub fn init_tracing() {
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    let _ = tracing::subscriber::set_global_default(subscriber(std::io::stdout, std::io::stdout, filter));
}

/// The levels of a `RUST_LOG` value; `info` when unset or unreadable.
pub fn log_filter(value: Option<&str>) -> Targets {
    value
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO))
}

/// The Lambda subscriber: JSON log lines (filtered by `filter`, never EMF
/// events) to `logs`, EMF records raw to `metrics`.
pub fn subscriber<L, M>(logs: L, metrics: M, filter: Targets) -> impl tracing::Subscriber + Send + Sync
where
    L: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
    M: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    let not_emf = tracing_subscriber::filter::filter_fn(|meta| meta.target() != crate::metrics::EMF_TARGET);
    let json = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .with_writer(logs)
        .with_filter(not_emf)
        .with_filter(filter);
    let only_emf = tracing_subscriber::filter::filter_fn(|meta| meta.target() == crate::metrics::EMF_TARGET);
    tracing_subscriber::registry()
        .with(json)
        .with(crate::metrics::EmfLayer::new(metrics).with_filter(only_emf))
}

/// Runs a step as a Lambda function until the runtime stops it.
pub async fn serve<F, Fut>(step: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(Arc<StepContext>, Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = DrResult<Value>> + Send,
{
    init_tracing();
    let ctx = match StepContext::from_env() {
        Ok(ctx) => Arc::new(ctx),
        Err(e) => {
            tracing::error!(error = %e, "invalid settings");
            return Err(e.into());
        }
    };
    let step = Arc::new(step);
    let function: Arc<str> = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default().into();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let ctx = Arc::clone(&ctx);
        let step = Arc::clone(&step);
        let function = Arc::clone(&function);
        async move {
            let started = std::time::Instant::now();
            let request_id = event.context.request_id.clone();
            let (run_id, source_cluster) =
                (loose_text(&event.payload, "runId"), loose_text(&event.payload, "sourceClusterId"));
            // Boxed: the step's future type stays out of this one's layout
            // (deeply nested step futures overflow rustc's query depth).
            let step_future: std::pin::Pin<Box<dyn Future<Output = DrResult<Value>> + Send>> =
                Box::pin(step(ctx, event.payload));
            let result = step_future.await;
            let duration_ms = started.elapsed().as_millis() as u64;
            match &result {
                Ok(_) => {
                    tracing::info!(function = %function, request_id, run_id, source_cluster, duration_ms,
                    "invocation succeeded")
                }
                Err(e) => {
                    tracing::warn!(function = %function, request_id, run_id, source_cluster, duration_ms,
                    error_type = e.asl_name(), error = %e, "invocation failed")
                }
            }
            result.map_err(Diagnostic::from)
        }
    }))
    .await
}

/// A string field of a payload, also inside FetchStatus's `run`, for log fields.
fn loose_text(payload: &Value, key: &str) -> Option<String> {
    let nested = payload.get("run");
    payload.get(key).or_else(|| nested.and_then(|r| r.get(key))).and_then(Value::as_str).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::{Captured, check_emf};

    #[test]
    fn rust_log_sets_a_default_level_and_per_target_levels() {
        use tracing::Level;
        let info = log_filter(None);
        assert!(
            info.would_enable("aurora_dr_core", &Level::INFO)
                && !info.would_enable("aurora_dr_core", &Level::DEBUG)
        );
        let warn = log_filter(Some("warn"));
        assert!(warn.would_enable("x", &Level::WARN) && !warn.would_enable("x", &Level::INFO));
        let mixed = log_filter(Some("info,aws_smithy_runtime=debug"));
        assert!(mixed.would_enable("aws_smithy_runtime::client", &Level::DEBUG));
        assert!(!mixed.would_enable("hyper", &Level::DEBUG) && mixed.would_enable("hyper", &Level::INFO));
        for unreadable in ["aws=loud", "a=b=c"] {
            let f = log_filter(Some(unreadable));
            assert!(f.would_enable("x", &Level::INFO) && !f.would_enable("x", &Level::DEBUG), "{unreadable}");
        }
    }

    #[test]
    fn json_logs_and_emf_records_share_stdout_without_mixing() {
        let (logs, metrics) = (Captured::default(), Captured::default());
        let filter = log_filter(Some("warn"));
        tracing::subscriber::with_default(subscriber(logs.clone(), metrics.clone(), filter), || {
            tracing::info!("below the level: dropped");
            tracing::warn!(step = "swap", run_id = "run-1", "a log line");
            let run = crate::payload::tests::finished_source_run();
            crate::metrics::source_done(&run, time::OffsetDateTime::now_utc()).emit();
        });
        let logs = logs.json_lines();
        assert_eq!(logs.len(), 1, "one JSON log line, no EMF in it: {logs:?}");
        assert_eq!(logs[0]["fields"]["message"], "a log line");
        assert_eq!(logs[0]["fields"]["run_id"], "run-1");
        let metrics = metrics.json_lines();
        assert_eq!(metrics.len(), 1, "the level does not filter metrics: {metrics:?}");
        assert_eq!(check_emf(&metrics[0]), ["PipelineDurationSeconds"]);
        assert!(metrics[0].get("fields").is_none(), "top-level keys, as EMF requires");
    }
}
