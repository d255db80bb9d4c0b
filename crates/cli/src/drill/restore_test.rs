//! `aurora-dr drill --restore-test`: the target machine started with
//! `{"mode": "restore-test"}`, as the RestoreTestSchedule starts it, and
//! proof that the serving cluster was not touched.
//!
//! The serving cluster (`target.existing_cluster_id`) is read before and
//! after the test: its `DbClusterResourceId` (stable across renames, new for
//! a new cluster), name, instances and deletion protection must be the same, and the
//! emulator's call log of the test must hold no mutating RDS call (modify,
//! delete, reboot, rename, failover) naming it or its instances. The test
//! cluster (`{temp}-test`) must be gone or being deleted at the end.

use aurora_dr_asl::{StartOptions, Status};
use aurora_dr_core::payload::RunMode;
use serde_json::{Value, json};

use aurora_dr_emulator::Control;

use super::{Recorder, Wiring, report};
use crate::config::Config;

/// RDS operations that change a cluster or an instance.
const MUTATING: &[&str] = &[
    "ModifyDBCluster",
    "DeleteDBCluster",
    "ModifyDBInstance",
    "DeleteDBInstance",
    "RebootDBInstance",
    "FailoverDBCluster",
    "StopDBCluster",
    "RemoveTagsFromResource",
    "AddTagsToResource",
];

/// How a restore test ended, and what it proved.
#[derive(Debug, Clone)]
pub struct RestoreTestOutcome {
    pub n: usize,
    pub execution_arn: String,
    pub status: Status,
    pub error: Option<String>,
    pub cause: Option<String>,
    /// `restoreTest` of the execution's output (RPO, time to restore, ...).
    pub figures: Option<Value>,
    /// The source cluster whose snapshot was restored.
    pub source_cluster_id: Option<String>,
    pub serving_before: Value,
    pub serving_after: Value,
    /// Mutating calls naming the serving cluster or its instances.
    pub calls_on_serving: Vec<String>,
    pub test_cluster_id: String,
    /// The test cluster at the end: `absent`, or its status.
    pub test_cluster_after: String,
}

impl RestoreTestOutcome {
    /// The serving cluster is the same cluster in the same state, and no
    /// call changed it.
    pub fn serving_untouched(&self) -> bool {
        self.serving_before == self.serving_after && self.calls_on_serving.is_empty()
    }

    pub fn test_cluster_removed(&self) -> bool {
        matches!(self.test_cluster_after.as_str(), "absent" | "deleting")
    }

    /// Passed: restored, checked, removed, serving cluster untouched.
    pub fn ok(&self) -> bool {
        self.status == Status::Succeeded && self.serving_untouched() && self.test_cluster_removed()
    }

    fn figure(&self, key: &str) -> Option<f64> {
        self.figures.as_ref().and_then(|f| f.get(key)).and_then(Value::as_f64)
    }

    pub fn summary(&self) -> String {
        let mut s = format!("restore test {}", self.status.as_str());
        if let Some(rpo) = self.figure("rpoSeconds") {
            s.push_str(&format!(", RPO {rpo:.3}s (age of the snapshot restored)"));
        }
        if let Some(t) = self.figure("timeToRestoreSeconds") {
            s.push_str(&format!(", time to restore {t:.3}s"));
        }
        if self.figures.as_ref().and_then(|f| f.get("sanityChecked")).and_then(Value::as_bool) == Some(false)
        {
            s.push_str(", sanity check skipped (no secret: the data was not probed)");
        }
        s.push_str(&format!(
            "; test cluster {} {}",
            self.test_cluster_id,
            if self.test_cluster_removed() { "removed" } else { "NOT removed" }
        ));
        s.push_str(&format!(
            "; serving cluster {}",
            if self.serving_untouched() {
                "untouched (same resource id, name and instances; no call changed it)".to_owned()
            } else {
                format!(
                    "CHANGED: before {}, after {}, calls {:?}",
                    self.serving_before, self.serving_after, self.calls_on_serving
                )
            }
        ));
        if let Some(e) = &self.error {
            s.push_str(&format!("; error {e}: {}", self.cause.as_deref().unwrap_or("")));
        }
        s
    }

    /// Its row of the HTML cluster table ([`super::fleet::TABLE_HEADER`]).
    pub fn table_row(&self) -> Vec<String> {
        let secs = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |s| format!("{s:.3} s"));
        vec![
            self.n.to_string(),
            self.source_cluster_id.clone().unwrap_or_else(|| "-".into()),
            "restore test (no source run)".to_owned(),
            self.status.as_str().to_owned(),
            format!(
                "{} ({}); serving cluster {}",
                self.test_cluster_id,
                if self.test_cluster_removed() { "removed" } else { "NOT removed" },
                if self.serving_untouched() { "untouched" } else { "CHANGED" }
            ),
            secs(self.figure("rpoSeconds")),
            secs(self.figure("timeToRestoreSeconds")),
            "-".to_owned(),
        ]
    }

    pub fn to_json(&self) -> Value {
        json!({
            "run": self.n,
            "mode": RunMode::RESTORE_TEST,
            "executionArn": self.execution_arn,
            "status": self.status.as_str(),
            "error": self.error,
            "cause": self.cause,
            "rpoSeconds": self.figure("rpoSeconds"),
            "timeToRestoreSeconds": self.figure("timeToRestoreSeconds"),
            "restoreTest": self.figures,
            "testClusterId": self.test_cluster_id,
            "testClusterAfter": self.test_cluster_after,
            "testClusterRemoved": self.test_cluster_removed(),
            "servingCluster": {
                "before": self.serving_before,
                "after": self.serving_after,
                "callsChangingIt": self.calls_on_serving,
                "untouched": self.serving_untouched(),
            },
        })
    }
}

/// The serving cluster as the test must leave it: the same cluster (its
/// resource id is new for any new cluster and survives renames) under the
/// same name with the same instances and deletion protection. Its status is
/// not compared: a change an earlier run started (a rename back) may finish
/// during the test without the test touching anything.
async fn serving_facts(wiring: &Wiring, config: &Config) -> Value {
    let rds = wiring.target_ctx.aws.rds();
    let id = config.target.existing_cluster_id.as_str();
    match aurora_dr_core::rds::find_cluster(&rds, id).await {
        Ok(Some(c)) => {
            let mut members: Vec<&str> =
                c.db_cluster_members().iter().filter_map(|m| m.db_instance_identifier()).collect();
            members.sort_unstable();
            json!({
                "clusterId": c.db_cluster_identifier(),
                "resourceId": c.db_cluster_resource_id(),
                "deletionProtection": c.deletion_protection(),
                "members": members,
            })
        }
        Ok(None) => json!({"clusterId": id, "status": "absent"}),
        Err(e) => json!({"clusterId": id, "error": e.to_string()}),
    }
}

/// Runs one restore test (`n` numbers it among the drill's runs).
pub async fn run(
    wiring: &Wiring,
    config: &Config,
    rec: &Recorder,
    control: &Control,
    n: usize,
) -> Result<RestoreTestOutcome, String> {
    let tgt = &config.target;
    let settings = wiring.target_ctx.target().map_err(|e| e.to_string())?;
    let test_settings = settings.for_run(None, true).map_err(|e| e.to_string())?;
    let machine = settings
        .state_machine_arn
        .as_ref()
        .ok_or("the target state machine's ARN is not set")?
        .as_str()
        .to_owned();
    let calls_before = control.calls().await.map(|c| c.len()).unwrap_or(0);
    let serving_before = serving_facts(wiring, config).await;
    let name = format!("restore-test-{}-{n}", rec.started_at().unix_timestamp());
    rec.line(&format!(
        "restore test {n}: {name} (the newest snapshot into {}; serving cluster {} is not touched)",
        test_settings.temp_cluster_id, tgt.existing_cluster_id
    ));
    let exec = wiring
        .target_engine
        .start(&machine, json!({"mode": RunMode::RESTORE_TEST}), StartOptions::named(name))
        .map_err(|e| e.to_string())?;
    let who = format!("{} {}", tgt.account_id, tgt.region);
    rec.follow_lanes(exec.clone(), "target", &who, n, "", &[]).await;
    let outcome = exec.wait().await;
    let output = outcome.output.clone().unwrap_or(Value::Null);
    let serving_after = serving_facts(wiring, config).await;
    let serving_names: Vec<String> = std::iter::once(tgt.existing_cluster_id.to_string())
        .chain(settings.existing_instance_ids().iter().map(ToString::to_string))
        .collect();
    let calls_on_serving = match control.calls().await {
        Ok(calls) => calls
            .iter()
            .skip(calls_before)
            .filter(|c| c.service == "rds" && MUTATING.contains(&c.operation.as_str()))
            .filter(|c| {
                c.params.values().any(|v| {
                    serving_names.iter().any(|s| v.eq_ignore_ascii_case(s) || v.ends_with(&format!(":{s}")))
                })
            })
            .map(|c| format!("{} {:?}", c.operation, c.params))
            .collect(),
        Err(e) => vec![format!("the emulator's call log could not be read: {e}")],
    };
    let rds = wiring.target_ctx.aws.rds();
    let test_cluster_after =
        match aurora_dr_core::rds::find_cluster(&rds, test_settings.temp_cluster_id.as_str()).await {
            Ok(None) => "absent".to_owned(),
            Ok(Some(c)) => c.status().unwrap_or("unknown").to_owned(),
            Err(e) => format!("unknown ({e})"),
        };
    let result = RestoreTestOutcome {
        n,
        execution_arn: exec.arn().to_owned(),
        status: outcome.status,
        error: outcome.error.clone(),
        cause: outcome.cause.clone(),
        figures: output.get("restoreTest").cloned(),
        source_cluster_id: output.get("sourceClusterId").and_then(Value::as_str).map(str::to_owned),
        serving_before,
        serving_after,
        calls_on_serving,
        test_cluster_id: test_settings.temp_cluster_id.to_string(),
        test_cluster_after,
    };
    rec.line(&format!(
        "timeline of restore test {n}:\n{}",
        report::text_timeline(&rec.spans(), n).trim_end()
    ));
    rec.line(&format!("restore test {n}: {}", result.summary()));
    Ok(result)
}
