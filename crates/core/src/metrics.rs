//! RPO/RTO metrics as CloudWatch Embedded Metric Format (EMF) records.
//!
//! An EMF record is one JSON object on its own log line: the metric values
//! and dimension values as top-level keys, and an `_aws` key that tells
//! CloudWatch Logs which keys are metrics (namespace [`NAMESPACE`]). CloudWatch
//! turns such lines into metrics without any API call, so a step never fails
//! or slows down because of its metrics.
//!
//! Which steps emit what (dimensions `SourceCluster` and `Side`, each record
//! also aggregated over `Side` alone so one alarm covers every cluster):
//!
//! | step | metric | value |
//! |---|---|---|
//! | Notify (source) | `PipelineDurationSeconds` | now − `createdAt`: snapshot, copy and share |
//! | Notify, Swap, Terminate | `StepDurationSeconds` (+ dimension `Step`) | the handler's own run time |
//! | Terminate | `AchievedRPOSeconds` | now − `snapshotCreatedAt`: the age of the data the DR cluster serves once restored |
//! | Terminate | `PipelineDurationSeconds` (`Side=target`) | now − `createdAt`: source start to DR cluster in place |
//! | Notify, failure mode (either side) | `Failures` | 1, with `FailedState`, `Error` and `RunId` as properties |
//!
//! Time to restore (the target execution alone) is Step Functions' own
//! `ExecutionTime` metric of the target machine.
//!
//! # EMF and the JSON logs on one stdout
//! A record is emitted as a `tracing` event with target [`EMF_TARGET`] whose
//! `emf` field holds the record's JSON. The Lambda subscriber
//! ([`crate::lambda::init_tracing`]) sends those events to [`EmfLayer`], which
//! writes the JSON raw, one object per line, and keeps them out of the JSON
//! log formatter (which would nest them under `fields`, where CloudWatch does
//! not look). Both write whole lines through `std::io::Stdout`, whose lock
//! keeps lines from interleaving. Log levels (`RUST_LOG`) do not filter
//! metrics. Where no subscriber is installed (the CLI's drill runs the same
//! steps in-process), records go nowhere and stdout stays clean.

use std::io::Write;
use std::time::Duration;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use tracing::field::{Field, Visit};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};

use crate::payload::RunState;

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "AuroraDR";
/// The `tracing` target of EMF events.
pub const EMF_TARGET: &str = "aurora_dr::emf";

/// Metric names, as the alarms in `template.yaml` use them.
pub mod names {
    pub const ACHIEVED_RPO: &str = "AchievedRPOSeconds";
    pub const PIPELINE_DURATION: &str = "PipelineDurationSeconds";
    pub const STEP_DURATION: &str = "StepDurationSeconds";
    pub const FAILURES: &str = "Failures";
}

/// Dimension names.
pub mod dimensions {
    pub const SOURCE_CLUSTER: &str = "SourceCluster";
    pub const SIDE: &str = "Side";
    pub const STEP: &str = "Step";
}

/// Values of the `Side` dimension.
pub const SOURCE: &str = "source";
pub const TARGET: &str = "target";

/// A CloudWatch unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Seconds,
    Count,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Seconds => "Seconds",
            Self::Count => "Count",
        }
    }
}

/// One EMF record: dimension values, metric values and extra properties.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Dimension name and value, in order; every record also rolls up over
    /// the dimensions without `SourceCluster`.
    dimensions: Vec<(&'static str, String)>,
    metrics: Vec<(&'static str, f64, Unit)>,
    properties: Map<String, Value>,
}

impl Record {
    /// A record about `side` of the run of `source_cluster` (`unknown` when
    /// the payload did not say).
    pub fn new(side: &str, source_cluster: Option<&str>) -> Self {
        Self {
            dimensions: vec![
                (dimensions::SOURCE_CLUSTER, source_cluster.unwrap_or("unknown").to_owned()),
                (dimensions::SIDE, side.to_owned()),
            ],
            metrics: Vec::new(),
            properties: Map::new(),
        }
    }

    /// Adds a dimension (e.g. `Step`).
    pub fn dimension(mut self, name: &'static str, value: &str) -> Self {
        self.dimensions.push((name, value.to_owned()));
        self
    }

    /// Adds a metric value; negative values (clock skew) are recorded as 0.
    pub fn metric(mut self, name: &'static str, value: f64, unit: Unit) -> Self {
        self.metrics.push((name, value.max(0.0), unit));
        self
    }

    /// Adds a property: searchable in CloudWatch Logs Insights, not a metric.
    pub fn property(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.properties.insert(name.to_owned(), value.into());
        self
    }

    /// The metric values, for callers that report them elsewhere.
    pub fn value(&self, name: &str) -> Option<f64> {
        self.metrics.iter().find(|(n, _, _)| *n == name).map(|(_, v, _)| *v)
    }

    /// The EMF document, stamped `at`.
    pub fn to_json(&self, at: OffsetDateTime) -> Value {
        let all: Vec<&str> = self.dimensions.iter().map(|(n, _)| *n).collect();
        let rollup: Vec<&str> = all.iter().copied().filter(|n| *n != dimensions::SOURCE_CLUSTER).collect();
        let metrics: Vec<Value> =
            self.metrics.iter().map(|(n, _, u)| json!({"Name": n, "Unit": u.as_str()})).collect();
        let mut doc = self.properties.clone();
        for (name, value) in &self.dimensions {
            doc.insert((*name).to_owned(), value.clone().into());
        }
        for (name, value, _) in &self.metrics {
            doc.insert((*name).to_owned(), json!(value));
        }
        doc.insert(
            "_aws".into(),
            json!({
                "Timestamp": (at.unix_timestamp_nanos() / 1_000_000) as i64,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [all, rollup],
                    "Metrics": metrics,
                }],
            }),
        );
        Value::Object(doc)
    }

    /// Emits the record (see the module doc for where it goes).
    pub fn emit(&self) {
        let line = self.to_json(OffsetDateTime::now_utc()).to_string();
        tracing::info!(target: EMF_TARGET, emf = line.as_str());
    }
}

fn seconds_between(from: OffsetDateTime, to: OffsetDateTime) -> f64 {
    (to - from).as_seconds_f64()
}

/// `StepDurationSeconds` of one step's handler.
pub fn step_duration(side: &str, step: &str, run: &RunState, took: Duration) -> Record {
    Record::new(side, run.source_cluster_id.as_ref().map(|c| c.as_str()))
        .dimension(dimensions::STEP, step)
        .metric(names::STEP_DURATION, took.as_secs_f64(), Unit::Seconds)
        .property("RunId", run.run_id.as_str())
}

/// The source side handed a snapshot over (Notify): its pipeline duration.
pub fn source_done(run: &RunState, now: OffsetDateTime) -> Record {
    Record::new(SOURCE, run.source_cluster_id.as_ref().map(|c| c.as_str()))
        .metric(names::PIPELINE_DURATION, seconds_between(run.created_at, now), Unit::Seconds)
        .property("RunId", run.run_id.as_str())
}

/// The DR cluster is in place (Terminate): achieved RPO and the whole
/// pipeline's duration. Without `snapshotCreatedAt` the run's start stands in
/// (the snapshot is taken right after it, so the RPO is not understated).
pub fn restored(run: &RunState, now: OffsetDateTime) -> Record {
    let recovery_point = run.snapshot_created_at.unwrap_or(run.created_at);
    Record::new(TARGET, run.source_cluster_id.as_ref().map(|c| c.as_str()))
        .metric(names::ACHIEVED_RPO, seconds_between(recovery_point, now), Unit::Seconds)
        .metric(names::PIPELINE_DURATION, seconds_between(run.created_at, now), Unit::Seconds)
        .property("RunId", run.run_id.as_str())
        .property("RestoredClusterId", run.swap.as_ref().map(|s| s.existing_cluster_id.as_str()))
}

/// A run failed (Notify's failure mode), from a payload read loosely.
pub fn failure(side: &str, payload: &Value) -> Record {
    let nested = payload.get("run").filter(|r| r.is_object());
    let text = |key: &str| {
        payload
            .get(key)
            .or_else(|| nested.and_then(|r| r.get(key)))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let error = payload.get("failure").and_then(|f| f.get("Error")).and_then(Value::as_str);
    Record::new(side, text("sourceClusterId").as_deref())
        .metric(names::FAILURES, 1.0, Unit::Count)
        .property("RunId", text("runId"))
        .property("FailedState", text("failedState"))
        .property("Error", error)
}

/// Writes the `emf` field of [`EMF_TARGET`] events raw, one JSON object per
/// line; other events are ignored (install it next to the JSON formatter,
/// which must skip [`EMF_TARGET`]).
pub struct EmfLayer<W> {
    writer: W,
}

impl<W> EmfLayer<W> {
    pub fn new(writer: W) -> Self {
        Self { writer }
    }
}

struct EmfField(Option<String>);

impl Visit for EmfField {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "emf" {
            self.0 = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "emf" && self.0.is_none() {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

impl<S, W> Layer<S> for EmfLayer<W>
where
    S: tracing::Subscriber,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != EMF_TARGET {
            return;
        }
        let mut field = EmfField(None);
        event.record(&mut field);
        if let Some(mut line) = field.0 {
            line.push('\n');
            // One write of the whole line: it cannot interleave with a log line.
            let _ = self.writer.make_writer().write_all(line.as_bytes());
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::{Arc, Mutex};

    use time::macros::datetime;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;
    use crate::payload::SwapRecord;
    use crate::payload::tests::finished_source_run;

    /// A `MakeWriter` into a shared buffer.
    #[derive(Clone, Default)]
    pub(crate) struct Captured(pub(crate) Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    impl Captured {
        /// Every line written, parsed as JSON.
        pub(crate) fn json_lines(&self) -> Vec<Value> {
            let text = String::from_utf8(self.0.lock().expect("lock").clone()).expect("utf-8");
            text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"))).collect()
        }
    }

    /// Checks one EMF document against the schema CloudWatch requires:
    /// every declared dimension and metric is a top-level key, metrics are
    /// numbers. Returns the metric names.
    pub(crate) fn check_emf(doc: &Value) -> Vec<String> {
        let aws = &doc["_aws"];
        assert!(aws["Timestamp"].as_i64().is_some_and(|t| t > 0), "Timestamp in ms: {doc}");
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], NAMESPACE);
        let sets = directive["Dimensions"].as_array().expect("dimension sets");
        assert!(!sets.is_empty());
        for set in sets {
            let set = set.as_array().expect("a set is a list");
            assert!(!set.is_empty() && set.len() <= 30);
            for d in set {
                let d = d.as_str().expect("dimension name");
                assert!(doc[d].is_string(), "dimension {d} has a string value: {doc}");
            }
        }
        let metrics = directive["Metrics"].as_array().expect("metrics");
        metrics
            .iter()
            .map(|m| {
                let name = m["Name"].as_str().expect("metric name");
                assert!(doc[name].is_number(), "metric {name} has a value: {doc}");
                assert!(matches!(m["Unit"].as_str(), Some("Seconds" | "Count")), "{m}");
                name.to_owned()
            })
            .collect()
    }

    fn restored_run() -> RunState {
        let mut run = finished_source_run();
        run.swap = Some(SwapRecord {
            old_cluster_id: None,
            old_instance_ids: Vec::new(),
            deleted_instance_ids: Vec::new(),
            existing_cluster_id: "orders-dr".parse().expect("id"),
            existing_instance_ids: vec!["orders-dr-1".parse().expect("id")],
        });
        run
    }

    #[test]
    fn restored_reports_rpo_from_the_snapshot_time_and_duration_from_the_start() {
        // Run started 16:00:05, snapshot taken 16:00:06, restored 16:30:06.
        let doc = restored(&restored_run(), datetime!(2026-11-25 16:30:06 UTC))
            .to_json(datetime!(2026-11-25 16:30:06 UTC));
        assert_eq!(check_emf(&doc), [names::ACHIEVED_RPO, names::PIPELINE_DURATION]);
        assert_eq!(doc[names::ACHIEVED_RPO], 1800.0);
        assert_eq!(doc[names::PIPELINE_DURATION], 1801.0);
        assert_eq!(doc["SourceCluster"], "orders");
        assert_eq!(doc["Side"], "target");
        assert_eq!(doc["RestoredClusterId"], "orders-dr");
        assert_eq!(doc["_aws"]["Timestamp"], 1_795_624_206_000_i64);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["SourceCluster", "Side"], ["Side"]]),
            "per cluster, and rolled up over all clusters for one alarm"
        );
        // Without snapshotCreatedAt the run's start stands in.
        let mut run = restored_run();
        run.snapshot_created_at = None;
        let r = restored(&run, datetime!(2026-11-25 16:30:06 UTC));
        assert_eq!(r.value(names::ACHIEVED_RPO), Some(1801.0));
    }

    #[test]
    fn step_durations_carry_the_step_dimension() {
        let doc = step_duration(TARGET, "Swap", &restored_run(), Duration::from_millis(2500))
            .to_json(datetime!(2026-11-25 16:30:06 UTC));
        assert_eq!(check_emf(&doc), [names::STEP_DURATION]);
        assert_eq!(doc[names::STEP_DURATION], 2.5);
        assert_eq!(doc["Step"], "Swap");
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["SourceCluster", "Side", "Step"], ["Side", "Step"]])
        );
        let doc = source_done(&finished_source_run(), datetime!(2026-11-25 16:10:05 UTC))
            .to_json(datetime!(2026-11-25 16:10:05 UTC));
        assert_eq!(check_emf(&doc), [names::PIPELINE_DURATION]);
        assert_eq!(doc[names::PIPELINE_DURATION], 600.0);
        assert_eq!(doc["Side"], "source");
    }

    #[test]
    fn failures_are_counted_from_any_payload() {
        let payload = json!({"runId": "run-1", "sourceClusterId": "orders", "failedState": "Share",
            "failure": {"Error": "AccessDenied", "Cause": "x"}});
        let doc = failure(SOURCE, &payload).to_json(datetime!(2026-11-25 16:30:06 UTC));
        assert_eq!(check_emf(&doc), [names::FAILURES]);
        assert_eq!(doc[names::FAILURES], 1.0);
        assert_eq!(
            (&doc["FailedState"], &doc["Error"], &doc["RunId"]),
            (&json!("Share"), &json!("AccessDenied"), &json!("run-1"))
        );
        // A malformed payload is still counted, under `unknown`.
        let doc = failure(TARGET, &json!({"failure": "x"})).to_json(datetime!(2026-11-25 16:30:06 UTC));
        check_emf(&doc);
        assert_eq!(doc["SourceCluster"], "unknown");
        // Clock skew never produces a negative duration.
        let r = source_done(&finished_source_run(), datetime!(2026-11-25 16:00:00 UTC));
        assert_eq!(r.value(names::PIPELINE_DURATION), Some(0.0));
    }

    #[test]
    fn emitted_records_are_written_raw_one_per_line() {
        let out = Captured::default();
        let subscriber = tracing_subscriber::registry().with(EmfLayer::new(out.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("an ordinary log line is not a metric");
            restored(&restored_run(), OffsetDateTime::now_utc()).emit();
            failure(TARGET, &json!({"sourceClusterId": "orders"})).emit();
        });
        let lines = out.json_lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(check_emf(&lines[0]), [names::ACHIEVED_RPO, names::PIPELINE_DURATION]);
        assert_eq!(check_emf(&lines[1]), [names::FAILURES]);
    }
}
