//! Many clusters in one drill run: the source machine's input and its
//! per-cluster results, each cluster's target execution, and the figures
//! the report shows for each cluster: achieved RPO and time to restore.
//!
//! The source machine fans out over the clusters (a Map, at most five at a
//! time) and ends with every cluster's final payload, also when one failed.
//! Each cluster that succeeded published its own SNS message, so its target
//! execution is found through the delivery of *its* message (matched by the
//! item's `runId`, `{execution}-{index}`), and all target executions are
//! followed at once, as they run on AWS.

use std::time::Duration;

use aurora_dr_asl::{Engine, EventType, Execution, HistoryEvent, Outcome, Status};
use aurora_dr_core::settings::{SourceSettings, TargetSettings};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::receiver::{Delivery, Receiver};
use super::report::Recorder;

/// How long a cluster's SNS message may take to reach the target side.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// The source machine's input: the configured clusters as a list when there
/// are several; `{}` for one, the deployed single-cluster form (the machine
/// then takes the configured cluster).
pub fn source_input(source: &SourceSettings) -> Value {
    if source.cluster_ids.len() <= 1 {
        return json!({});
    }
    let clusters: Vec<Value> =
        source.cluster_ids.iter().map(|c| json!({"sourceClusterId": c.as_str()})).collect();
    json!({ "clusters": clusters })
}

/// The clusters in the order of the Map's items (the timeline's lanes).
pub fn lanes(source: &SourceSettings) -> Vec<String> {
    source.cluster_ids.iter().map(|c| c.as_str().to_owned()).collect()
}

/// Every cluster's final payload on the source side, in input order: the
/// output's `clusters` when the run succeeded, else the report the `Failed`
/// state received. Empty when the run ended before its Map (bad input).
pub fn source_items(exec: &Execution) -> Vec<Value> {
    source_items_of(exec.outcome().as_ref(), &exec.history())
}

/// [`source_items`] from how the execution ended and its history events,
/// wherever they were read (the engine, or GetExecutionHistory).
pub fn source_items_of(outcome: Option<&Outcome>, history: &[HistoryEvent]) -> Vec<Value> {
    final_items(outcome, history).into_iter().map(first_region).collect()
}

/// [`source_items`] as target region `region` left them: each cluster's
/// payload of that region (`copies.regions[]` whose `targetRegion` is
/// `region`); a cluster that failed before its copies is its own payload.
pub fn source_items_in(exec: &Execution, region: &str) -> Vec<Value> {
    source_items_in_of(exec.outcome().as_ref(), &exec.history(), region)
}

/// [`source_items_in`] from how the execution ended and its history
/// events, wherever they were read (the engine, or GetExecutionHistory).
pub fn source_items_in_of(outcome: Option<&Outcome>, history: &[HistoryEvent], region: &str) -> Vec<Value> {
    final_items(outcome, history).into_iter().map(|item| region_payload(item, region)).collect()
}

/// The source run's `clusters` list: the output's when the run succeeded,
/// else the report the `Failed` state received.
fn final_items(outcome: Option<&Outcome>, history: &[HistoryEvent]) -> Vec<Value> {
    let report = match outcome {
        Some(o) if o.status == Status::Succeeded => o.output.clone(),
        _ => history
            .iter()
            .rev()
            .find(|e| e.event_type == EventType::FailStateEntered)
            .and_then(|e| e.details.input.clone()),
    };
    report.and_then(|r| r.get("clusters").and_then(Value::as_array).cloned()).unwrap_or_default()
}

fn region_payload(item: Value, region: &str) -> Value {
    let regions = item.pointer("/copies/regions").and_then(Value::as_array);
    match regions.and_then(|rs| rs.iter().find(|r| r["targetRegion"] == region)) {
        Some(payload) => payload.clone(),
        None => item,
    }
}

/// A cluster's payload as one target region left it: the source machine's
/// Regions Map keeps each region's final payload in `copies.regions`; the
/// commands that read this serve one target, the first region's. A cluster
/// that failed before its copies (no `copies`) is its own payload.
fn first_region(item: Value) -> Value {
    match item.pointer("/copies/regions/0") {
        Some(region) => region.clone(),
        None => item,
    }
}

/// How one cluster of one run ended, on both sides.
#[derive(Debug, Clone, Default)]
pub struct ClusterOutcome {
    pub source_cluster_id: String,
    /// The cluster's final payload on the source side.
    pub payload: Value,
    pub source_ok: bool,
    pub message_id: Option<String>,
    pub target_arn: Option<String>,
    pub target: Option<Status>,
    pub target_error: Option<String>,
    pub target_cause: Option<String>,
    pub target_started: Option<OffsetDateTime>,
    pub target_ended: Option<OffsetDateTime>,
    /// The existing name the restored cluster now serves under.
    pub restored_cluster_id: Option<String>,
    /// What the target execution's SanityCheck reported
    /// (`{"status": "passed"|"skipped", ...}`), when it ran.
    pub sanity: Option<Value>,
    /// Clusters the target execution left running that aurora-dr will not
    /// delete ([`aurora_dr_core::payload::KeptCluster`], as JSON): its
    /// output's `keptClusters`, or on a failed run what its failure
    /// notification names.
    pub kept_clusters: Vec<Value>,
    pub note: String,
}

/// What the report says when SanityCheck made no probe.
pub const SANITY_SKIPPED: &str = "sanity check skipped (no secret configured)";

/// SanityCheck's own report in an execution's history: the result of the
/// function call after the last time the state was entered.
fn sanity_report(history: &[HistoryEvent]) -> Option<Value> {
    let entered = history.iter().rposition(|e| {
        e.event_type == EventType::TaskStateEntered
            && e.details.name.as_deref() == Some(aurora_dr_core::steps::sanity_check::STATE)
    })?;
    history[entered..]
        .iter()
        .find(|e| matches!(e.event_type, EventType::LambdaFunctionSucceeded | EventType::TaskSucceeded))
        .and_then(|e| e.details.output.clone())
}

/// The kept clusters of a finished target execution: those its output
/// names, or, when it failed, those its failure notification names (the
/// same function builds both).
fn kept_clusters(history: &[HistoryEvent], output: Option<&Value>) -> Vec<Value> {
    let from_output = output.and_then(|o| o.get("keptClusters")).and_then(Value::as_array).cloned();
    from_output
        .or_else(|| {
            let failed = history.iter().rev().find(|e| e.event_type == EventType::FailStateEntered)?;
            let input = failed.details.input.as_ref()?;
            let message = aurora_dr_core::steps::notify_failure::failure_message(
                aurora_dr_core::steps::Side::Target,
                input,
            );
            message["keptClusters"].as_array().cloned()
        })
        .unwrap_or_default()
}

fn time_field(payload: &Value, key: &str) -> Option<OffsetDateTime> {
    payload.get(key).and_then(Value::as_str).and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
}

fn seconds(from: Option<OffsetDateTime>, to: Option<OffsetDateTime>) -> Option<f64> {
    Some((to? - from?).as_seconds_f64())
}

impl ClusterOutcome {
    /// The clusters of a source run from its final payloads ([`source_items`]).
    pub fn from_items(items: Vec<Value>, lanes: &[String]) -> Vec<Self> {
        items.into_iter().enumerate().map(|(i, item)| Self::from_item(i, item, lanes)).collect()
    }

    /// Records how the cluster's target execution `arn` ended: its outcome,
    /// started and last-event times, SanityCheck's report and the clusters it
    /// kept, all read from its history events; on success, the name the
    /// restored cluster serves under.
    pub fn record_target(
        &mut self,
        arn: &str,
        outcome: Outcome,
        started: OffsetDateTime,
        history: &[HistoryEvent],
        target: &TargetSettings,
    ) {
        self.sanity = sanity_report(history);
        self.kept_clusters = kept_clusters(history, outcome.output.as_ref());
        self.target_arn = Some(arn.to_owned());
        self.target = Some(outcome.status);
        self.target_error = outcome.error;
        self.target_cause = outcome.cause;
        self.target_started = Some(started);
        self.target_ended = history.last().map(|e| e.timestamp);
        if outcome.status == Status::Succeeded {
            self.restored_cluster_id = target
                .pair_for(Some(&self.source_cluster_id))
                .ok()
                .map(|p| p.existing_cluster_id.to_string());
        }
    }

    fn from_item(index: usize, payload: Value, lanes: &[String]) -> Self {
        let source_cluster_id = payload
            .get("sourceClusterId")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| lanes.get(index).cloned())
            .unwrap_or_else(|| format!("#{index}"));
        let source_ok = payload.get("failure").is_none();
        Self { source_cluster_id, payload, source_ok, ..Self::default() }
    }

    /// The item's run id (`{execution}-{index}`).
    pub fn run_id(&self) -> Option<&str> {
        self.payload.get("runId").and_then(Value::as_str)
    }

    pub fn ok(&self) -> bool {
        self.source_ok && self.target == Some(Status::Succeeded)
    }

    /// SanityCheck ran and made no probe.
    pub fn sanity_skipped(&self) -> bool {
        self.sanity.as_ref().and_then(|s| s.get("status")).and_then(Value::as_str) == Some("skipped")
    }

    /// Restore time minus the snapshot's creation time: how old the data the
    /// DR cluster serves was when it went live.
    pub fn achieved_rpo_seconds(&self) -> Option<f64> {
        self.ok().then_some(())?;
        let point =
            time_field(&self.payload, "snapshotCreatedAt").or_else(|| time_field(&self.payload, "createdAt"));
        seconds(point, self.target_ended)
    }

    /// The target execution's duration: shared snapshot to DR cluster in place.
    pub fn time_to_restore_seconds(&self) -> Option<f64> {
        self.ok().then_some(())?;
        seconds(self.target_started, self.target_ended)
    }

    /// Source run start to DR cluster in place.
    pub fn source_to_restored_seconds(&self) -> Option<f64> {
        self.ok().then_some(())?;
        seconds(time_field(&self.payload, "createdAt"), self.target_ended)
    }

    /// One line for the progress output.
    pub fn summary(&self) -> String {
        let source = if self.source_ok {
            "SUCCEEDED".to_owned()
        } else {
            let failed_in = self.payload.get("failedState").and_then(Value::as_str).unwrap_or("?");
            let error = self.payload.pointer("/failure/Error").and_then(Value::as_str).unwrap_or("?");
            format!("FAILED in {failed_in} ({error})")
        };
        let target = self.target.map_or("not started", Status::as_str);
        let mut s = format!("{}: source {source}, target {target}", self.source_cluster_id);
        if let Some(restored) = &self.restored_cluster_id {
            s.push_str(&format!(" as {restored}"));
        }
        if let (Some(rpo), Some(rto)) = (self.achieved_rpo_seconds(), self.time_to_restore_seconds()) {
            s.push_str(&format!(", achieved RPO {rpo:.3}s, time to restore {rto:.3}s"));
        }
        if self.sanity_skipped() {
            s.push_str(&format!(", {SANITY_SKIPPED}"));
        }
        if !self.kept_clusters.is_empty() {
            s.push_str(&format!(", {} cluster(s) kept running", self.kept_clusters.len()));
        }
        if !self.note.is_empty() {
            s.push_str(&format!(" ({})", self.note));
        }
        s
    }

    pub fn to_json(&self) -> Value {
        let p = &self.payload;
        json!({
            "sourceClusterId": self.source_cluster_id,
            "runId": self.run_id(),
            "source": {
                "status": if self.source_ok { "SUCCEEDED" } else { "FAILED" },
                "failedState": p.get("failedState"),
                "error": p.pointer("/failure/Error"),
                "cause": p.pointer("/failure/Cause"),
            },
            "sourceSnapshotId": p.get("sourceSnapshotId"),
            "snapshotCreatedAt": p.get("snapshotCreatedAt"),
            "targetSnapshotArn": p.get("targetSnapshotArn"),
            "snsMessageId": self.message_id,
            "target": {
                "executionArn": self.target_arn,
                "status": self.target.map(Status::as_str),
                "error": self.target_error,
                "cause": self.target_cause,
            },
            "restoredClusterId": self.restored_cluster_id,
            "sanityCheck": self.sanity,
            "sanityCheckSkipped": self.sanity_skipped(),
            "keptClusters": self.kept_clusters,
            "achievedRpoSeconds": self.achieved_rpo_seconds(),
            "timeToRestoreSeconds": self.time_to_restore_seconds(),
            "sourceToRestoredSeconds": self.source_to_restored_seconds(),
            "note": self.note,
        })
    }

    /// The row of the HTML cluster table (see [`TABLE_HEADER`]).
    pub fn table_row(&self, run: usize) -> Vec<String> {
        let secs = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |s| format!("{s:.3} s"));
        let source = if self.source_ok {
            "SUCCEEDED".to_owned()
        } else {
            format!("FAILED in {}", self.payload.get("failedState").and_then(Value::as_str).unwrap_or("?"))
        };
        vec![
            run.to_string(),
            self.source_cluster_id.clone(),
            source,
            self.target.map_or("not started", Status::as_str).to_owned(),
            self.restored_cluster_id.clone().unwrap_or_else(|| "-".into()),
            secs(self.achieved_rpo_seconds()),
            secs(self.time_to_restore_seconds()),
            secs(self.source_to_restored_seconds()),
        ]
    }
}

/// The header of [`ClusterOutcome::table_row`].
pub const TABLE_HEADER: [&str; 8] = [
    "run",
    "source cluster",
    "source",
    "target",
    "restored as",
    "achieved RPO",
    "time to restore",
    "source start to restored",
];

/// The largest of a figure over clusters (the run's worst case).
pub fn worst(clusters: &[ClusterOutcome], figure: fn(&ClusterOutcome) -> Option<f64>) -> Option<f64> {
    clusters.iter().filter_map(figure).reduce(f64::max)
}

/// For every cluster whose source side succeeded: waits for the delivery of
/// its message, then follows the target execution it started. All clusters
/// at once; each cluster's outcome is recorded, none stops the others.
#[allow(clippy::too_many_arguments)]
pub async fn follow_targets(
    items: Vec<Value>,
    lanes: &[String],
    receiver: &Receiver,
    target_engine: &Engine,
    target: &TargetSettings,
    rec: &Recorder,
    who: &str,
    run: usize,
) -> Vec<ClusterOutcome> {
    let clusters = ClusterOutcome::from_items(items, lanes);
    let follow = clusters.into_iter().map(|mut c| async move {
        if !c.source_ok {
            return c;
        }
        let Some(run_id) = c.run_id().map(str::to_owned) else {
            c.note = "the source payload has no runId".into();
            return c;
        };
        let Ok(deliveries) =
            tokio::time::timeout(DELIVERY_TIMEOUT, receiver.wait_for_message_of(&run_id)).await
        else {
            c.note = "the snapshot notification never reached the target side".into();
            return c;
        };
        // A redelivered message finds its execution as a duplicate: follow the one that started it.
        let started = |d: &&Delivery| {
            d.result.as_ref().is_ok_and(|v| v["started"].as_array().is_some_and(|a| !a.is_empty()))
        };
        let delivery = deliveries.iter().find(started).or_else(|| deliveries.last());
        c.message_id = delivery.map(|d| d.message_id.clone());
        let exec = match delivery.map(|d| d.result.clone()) {
            Some(Ok(v)) => {
                let exec = v["started"]
                    .get(0)
                    .or_else(|| v["duplicates"].get(0))
                    .and_then(Value::as_str)
                    .and_then(|arn| target_engine.execution(arn));
                if exec.is_none() {
                    c.note = format!("InvokeStepFunction started nothing: {v}");
                }
                exec
            }
            Some(Err(e)) => {
                c.note = format!("InvokeStepFunction failed: {e}");
                None
            }
            None => None,
        };
        if let Some(exec) = exec {
            rec.follow_lanes(exec.clone(), "target", who, run, &c.source_cluster_id, &[]).await;
            let outcome = exec.wait().await;
            c.record_target(exec.arn(), outcome, exec.start_date(), &exec.history(), target);
        }
        c
    });
    futures::future::join_all(follow).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(cluster: &str, failed: bool) -> Value {
        let mut v = json!({
            "runId": "run-1-0", "sourceClusterId": cluster, "createdAt": "2026-11-25T16:00:05Z",
            "snapshotCreatedAt": "2026-11-25T16:00:06Z",
        });
        if failed {
            v["failure"] = json!({"Error": "AccessDenied", "Cause": "no"});
            v["failedState"] = "Share".into();
        }
        v
    }

    #[test]
    fn figures_come_from_the_snapshot_time_and_the_target_execution() {
        let mut c = ClusterOutcome::from_item(0, item("orders", false), &[]);
        c.target = Some(Status::Succeeded);
        c.target_started = Some(time::macros::datetime!(2026-11-25 16:10:00 UTC));
        c.target_ended = Some(time::macros::datetime!(2026-11-25 16:40:06 UTC));
        c.restored_cluster_id = Some("orders-dr".into());
        assert_eq!(c.achieved_rpo_seconds(), Some(2400.0));
        assert_eq!(c.time_to_restore_seconds(), Some(1806.0));
        assert_eq!(c.source_to_restored_seconds(), Some(2401.0));
        let j = c.to_json();
        assert_eq!(j["achievedRpoSeconds"], 2400.0);
        assert_eq!(j["restoredClusterId"], "orders-dr");
        assert!(c.summary().contains("achieved RPO 2400.000s"), "{}", c.summary());
        assert_eq!(c.table_row(1)[5], "2400.000 s");

        // A failed cluster has no figures and says where it failed.
        let f = ClusterOutcome::from_item(1, item("billing", true), &[]);
        assert!(!f.ok());
        assert_eq!(f.achieved_rpo_seconds(), None);
        assert_eq!(f.to_json()["source"]["failedState"], "Share");
        assert!(f.summary().contains("FAILED in Share (AccessDenied)"), "{}", f.summary());
        assert_eq!(worst(&[c, f], ClusterOutcome::achieved_rpo_seconds), Some(2400.0));
    }

    #[test]
    fn one_cluster_starts_the_single_cluster_form() {
        let example = include_str!("../../../../examples/drill.toml");
        let mut s = crate::config::Config::parse(example).expect("example").source;
        assert_eq!(source_input(&s), json!({}));
        s.cluster_ids.push("billing".parse().expect("id"));
        assert_eq!(
            source_input(&s),
            json!({"clusters": [{"sourceClusterId": "orders"}, {"sourceClusterId": "billing"}]})
        );
        // A payload without sourceClusterId (the single-cluster form) takes the lane's name.
        let c = ClusterOutcome::from_item(0, json!({"runId": "r-0"}), &lanes(&s));
        assert_eq!(c.source_cluster_id, "orders");
    }
}
