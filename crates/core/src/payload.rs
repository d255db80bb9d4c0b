//! The state payload every Lambda takes and returns, and the SNS message.
//!
//! [`RunState`] is the one JSON object (camelCase keys) the state machines
//! pass from step to step. It starts with `runId` and `createdAt` (set by the
//! first Pass state from the execution's name and start time) and each step
//! fills in what it produced. Unknown keys are rejected, so a typo in an ASL
//! `Parameters` block fails loudly as `InvalidInput` instead of being ignored.
//!
//! [`DrMessage`] is the versioned document the source side publishes to SNS
//! for the target side (`"version": 1`); other versions are rejected.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{DrError, DrResult};
use crate::ids::{AccountId, Arn, ClusterId, InstanceId, Region, RunId, SnapshotId};

/// The payload of both state machines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunState {
    /// The source execution's name; names snapshots' tags and old-cluster ids.
    pub run_id: RunId,
    /// The source execution's start time: the snapshot name's timestamp.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// `restore-test`: the run restores a test cluster of its own from the
    /// latest snapshot, checks it and deletes it, and never swaps
    /// ([`RunMode`]). Absent on a normal run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<RunMode>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_account_id: Option<AccountId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_region: Option<Region>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_cluster_id: Option<ClusterId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_snapshot_id: Option<SnapshotId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_snapshot_arn: Option<Arn>,
    /// When RDS took the source snapshot (the recovery point).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub snapshot_created_at: Option<OffsetDateTime>,
    /// Engine of the source cluster, e.g. `aurora-postgresql`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,

    /// Every target region of the source deployment, set by CreateSnapshot:
    /// the source machine's Regions Map runs one branch per item, each
    /// merged into the payload (its `targetRegion`, `targetAccountId`,
    /// `kmsKeyArn`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_regions: Vec<TargetRegionItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_region: Option<Region>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_account_id: Option<AccountId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<Arn>,
    /// The encrypted copy in the target region (source account), then shared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_snapshot_id: Option<SnapshotId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_snapshot_arn: Option<Arn>,
    /// Target-owned encryption: the target account's own copy of the shared
    /// snapshot, encrypted with the target's key (absent when that is off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_snapshot_id: Option<SnapshotId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_snapshot_arn: Option<Arn>,

    /// The temporary cluster this run restored (target account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_cluster_id: Option<ClusterId>,
    /// The instances this run created in the temporary cluster.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restored_instance_ids: Vec<InstanceId>,
    /// What Swap did, so Terminate and a rollback know the old names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<SwapRecord>,
    /// Clusters this run left running on purpose (a replaced cluster without
    /// aurora-dr's tags, which aurora-dr never deletes), each with the
    /// commands that remove it. They reach the execution's output and the
    /// failure notification.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept_clusters: Vec<KeptCluster>,

    /// A restore test's figures, set when its test cluster is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_test: Option<RestoreTestReport>,

    /// Set by the failure path: the state that failed and its error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// Errors of the failure path's own steps, kept for the notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_failure: Option<Failure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup_failure: Option<Failure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_failure: Option<Failure>,

    /// The last poll of a predicted wait (FetchStatus's output at `$.poll`,
    /// see [`crate::poll`]): the next poll of the same wait reads it back.
    /// Other steps carry it along unread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll: Option<crate::poll::Poll>,
}

/// One target region of a run: the fields of the payload a branch of the
/// source machine's Regions Map sets (the region's first target account;
/// Share and Notify serve all of the region's targets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetRegionItem {
    pub target_region: Region,
    pub target_account_id: AccountId,
    pub kms_key_arn: Arn,
}

/// What a target run is for. Only the restore test is named: a payload
/// without `mode` is a normal run (restore, swap, delete the previous copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunMode {
    /// Restore the latest snapshot into a test cluster of its own, run the
    /// SanityCheck on it, report RPO and time to restore, delete it; the
    /// serving cluster is never renamed, modified or deleted.
    #[serde(rename = "restore-test")]
    RestoreTest,
}

impl RunMode {
    /// The value the execution input and the payload carry.
    pub const RESTORE_TEST: &'static str = "restore-test";
}

/// The figures of a restore test that restored, passed its SanityCheck and
/// removed its test cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreTestReport {
    /// The test cluster, now deleted.
    pub test_cluster_id: ClusterId,
    /// The snapshot restored.
    pub snapshot_id: SnapshotId,
    /// The recovery point: how old the snapshot was when the test started
    /// (the test's start minus the snapshot's creation time).
    pub rpo_seconds: f64,
    /// From the test's start to a restored cluster whose instances are
    /// available and whose SanityCheck passed.
    pub time_to_restore_seconds: f64,
    /// Whether the SanityCheck made probes (`false`: no secret configured,
    /// the check was skipped and the data was not looked at).
    pub sanity_checked: bool,
    /// The serving cluster's name, which the test never touched.
    pub serving_cluster_id: ClusterId,
}

/// The renames Swap performed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SwapRecord {
    /// Where the previous cluster now lives (`None` on a first run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_cluster_id: Option<ClusterId>,
    /// Where the previous instances now live.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub old_instance_ids: Vec<InstanceId>,
    /// Previous instances that were beyond repair (e.g. `failed`): deleted,
    /// not kept; a rollback cannot bring them back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted_instance_ids: Vec<InstanceId>,
    /// The existing name now serving the restored cluster.
    pub existing_cluster_id: ClusterId,
    /// The existing instance names now serving the restored instances.
    pub existing_instance_ids: Vec<InstanceId>,
}

/// A cluster a run leaves running that aurora-dr will not delete: it keeps
/// costing money until someone removes it, so every report names it with
/// the commands that do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeptCluster {
    pub cluster_id: ClusterId,
    /// Its instances when it was kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instance_ids: Vec<InstanceId>,
    pub region: Region,
    /// Why it is kept, in a sentence.
    pub reason: String,
    /// AWS CLI commands that delete it: its instances, then the cluster
    /// with a final snapshot `{cluster}-final` (an Aurora cluster is deleted
    /// only once it has no instances).
    pub remove_commands: Vec<String>,
}

impl KeptCluster {
    /// A kept cluster and the commands that remove it. `deletion_protection`:
    /// the cluster has it on, so it is lifted first.
    pub fn new(
        cluster_id: ClusterId,
        instance_ids: Vec<InstanceId>,
        region: Region,
        deletion_protection: bool,
        reason: impl Into<String>,
    ) -> Self {
        let remove_commands = removal_commands(&cluster_id, &instance_ids, &region, deletion_protection);
        Self { cluster_id, instance_ids, region, reason: reason.into(), remove_commands }
    }
}

/// The AWS CLI commands that delete a cluster and its instances, keeping a
/// final snapshot `{cluster}-final` ("Deleting Aurora DB clusters and DB
/// instances", Amazon Aurora User Guide,
/// https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/USER_DeleteCluster.html:
/// the instances go first, deletion protection must be off).
pub fn removal_commands(
    cluster: &ClusterId,
    instances: &[InstanceId],
    region: &Region,
    deletion_protection: bool,
) -> Vec<String> {
    let mut commands = Vec::new();
    if deletion_protection {
        commands.push(format!(
            "aws rds modify-db-cluster --region {region} --db-cluster-identifier {cluster} \
             --no-deletion-protection --apply-immediately"
        ));
    }
    for i in instances {
        commands.push(format!("aws rds delete-db-instance --region {region} --db-instance-identifier {i}"));
    }
    commands.push(format!(
        "aws rds delete-db-cluster --region {region} --db-cluster-identifier {cluster} \
         --final-db-snapshot-identifier {cluster}-final"
    ));
    commands
}

/// The error object Step Functions puts in a Catch's ResultPath.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: String,
}

impl RunState {
    /// A fresh payload for a run.
    pub fn new(run_id: RunId, created_at: OffsetDateTime) -> Self {
        Self {
            run_id,
            created_at,
            mode: None,
            source_account_id: None,
            source_region: None,
            source_cluster_id: None,
            source_snapshot_id: None,
            source_snapshot_arn: None,
            snapshot_created_at: None,
            engine: None,
            target_regions: Vec::new(),
            target_region: None,
            target_account_id: None,
            kms_key_arn: None,
            target_snapshot_id: None,
            target_snapshot_arn: None,
            own_snapshot_id: None,
            own_snapshot_arn: None,
            restored_cluster_id: None,
            restored_instance_ids: Vec::new(),
            swap: None,
            kept_clusters: Vec::new(),
            restore_test: None,
            failed_state: None,
            failure: None,
            rollback_failure: None,
            cleanup_failure: None,
            notify_failure: None,
            poll: None,
        }
    }

    /// Parses a step's input, naming what is wrong.
    pub fn from_value(input: serde_json::Value) -> DrResult<Self> {
        serde_json::from_value(input).map_err(|e| DrError::invalid_input(format!("state payload: {e}")))
    }

    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Whether this run is a restore test ([`RunMode::RestoreTest`]).
    pub fn is_restore_test(&self) -> bool {
        self.mode == Some(RunMode::RestoreTest)
    }

    /// The `yyyymmddHHMMss` stamp of the run, used in generated names.
    pub fn stamp(&self) -> String {
        stamp(self.created_at)
    }
}

/// `yyyymmddHHMMss` in UTC.
pub fn stamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Takes a field a step needs, or names it as missing.
pub fn need<'a, T>(value: &'a Option<T>, field: &str) -> DrResult<&'a T> {
    value.as_ref().ok_or_else(|| {
        DrError::invalid_input(format!("state payload lacks `{field}`, set by an earlier step"))
    })
}

/// A payload field that, when set, must be what this deployment uses:
/// "payload names {what} {value}, but this deployment {uses} {want}".
pub(crate) fn agrees<T: PartialEq + std::fmt::Display>(
    value: Option<&T>,
    want: &T,
    what: &str,
    uses: &str,
) -> DrResult<()> {
    match value {
        Some(v) if v != want => Err(DrError::invalid_input(format!(
            "payload names {what} {v}, but this deployment {uses} {want}"
        ))),
        _ => Ok(()),
    }
}

/// Version of [`DrMessage`] this build writes and accepts.
pub const MESSAGE_VERSION: u32 = 1;
/// Largest SNS message the target side accepts (SNS's own limit is 256 KiB;
/// ours are well under 2 KiB).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// The SNS message: "a snapshot for you is shared and ready to restore".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DrMessage {
    pub version: u32,
    pub run_id: RunId,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub source_account_id: AccountId,
    pub source_region: Region,
    pub source_cluster_id: ClusterId,
    pub source_snapshot_id: SnapshotId,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub snapshot_created_at: Option<OffsetDateTime>,
    pub engine: Option<String>,
    pub target_account_id: AccountId,
    pub target_region: Region,
    /// The shared, encrypted copy the target restores from.
    pub target_snapshot_id: SnapshotId,
    pub target_snapshot_arn: Arn,
    pub kms_key_arn: Arn,
}

impl DrMessage {
    /// Builds the message from a finished source run.
    pub fn from_run(run: &RunState) -> DrResult<Self> {
        Ok(Self {
            version: MESSAGE_VERSION,
            run_id: run.run_id.clone(),
            created_at: run.created_at,
            source_account_id: need(&run.source_account_id, "sourceAccountId")?.clone(),
            source_region: need(&run.source_region, "sourceRegion")?.clone(),
            source_cluster_id: need(&run.source_cluster_id, "sourceClusterId")?.clone(),
            source_snapshot_id: need(&run.source_snapshot_id, "sourceSnapshotId")?.clone(),
            snapshot_created_at: run.snapshot_created_at,
            engine: run.engine.clone(),
            target_account_id: need(&run.target_account_id, "targetAccountId")?.clone(),
            target_region: need(&run.target_region, "targetRegion")?.clone(),
            target_snapshot_id: need(&run.target_snapshot_id, "targetSnapshotId")?.clone(),
            target_snapshot_arn: need(&run.target_snapshot_arn, "targetSnapshotArn")?.clone(),
            kms_key_arn: need(&run.kms_key_arn, "kmsKeyArn")?.clone(),
        })
    }

    /// Parses and checks a received message: size, JSON, version, fields, and
    /// that the snapshot ARN agrees with the declared account and region.
    pub fn parse(text: &str) -> DrResult<Self> {
        if text.len() > MAX_MESSAGE_BYTES {
            return Err(DrError::invalid_input(format!(
                "message is {} bytes, more than the {MAX_MESSAGE_BYTES} accepted",
                text.len()
            )));
        }
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| DrError::invalid_input(format!("message is not JSON: {e}")))?;
        match value.get("version") {
            Some(v) if v.as_u64() == Some(u64::from(MESSAGE_VERSION)) => {}
            Some(v) => {
                return Err(DrError::invalid_input(format!(
                    "message version {v} is not supported (this build reads version {MESSAGE_VERSION})"
                )));
            }
            None => return Err(DrError::invalid_input("message has no `version`")),
        }
        let msg: Self =
            serde_json::from_value(value).map_err(|e| DrError::invalid_input(format!("message: {e}")))?;
        msg.check_consistency()?;
        Ok(msg)
    }

    fn check_consistency(&self) -> DrResult<()> {
        let arn = &self.target_snapshot_arn;
        arn.expect_kind("rds", "cluster-snapshot:")
            .map_err(|e| DrError::invalid_input(format!("targetSnapshotArn {e}")))?;
        if arn.account().as_ref() != Some(&self.source_account_id) {
            return Err(DrError::invalid_input(format!(
                "targetSnapshotArn {arn} is not owned by the declared source account {}",
                self.source_account_id
            )));
        }
        if arn.region().as_ref() != Some(&self.target_region) {
            return Err(DrError::invalid_input(format!(
                "targetSnapshotArn {arn} is not in the declared target region {}",
                self.target_region
            )));
        }
        if arn.resource() != format!("cluster-snapshot:{}", self.target_snapshot_id) {
            return Err(DrError::invalid_input(format!(
                "targetSnapshotArn {arn} does not name targetSnapshotId {}",
                self.target_snapshot_id
            )));
        }
        Ok(())
    }

    /// The target machine's first payload.
    pub fn into_run(self) -> RunState {
        let mut run = RunState::new(self.run_id, self.created_at);
        run.source_account_id = Some(self.source_account_id);
        run.source_region = Some(self.source_region);
        run.source_cluster_id = Some(self.source_cluster_id);
        run.source_snapshot_id = Some(self.source_snapshot_id);
        run.snapshot_created_at = self.snapshot_created_at;
        run.engine = self.engine;
        run.target_account_id = Some(self.target_account_id);
        run.target_region = Some(self.target_region);
        run.target_snapshot_id = Some(self.target_snapshot_id);
        run.target_snapshot_arn = Some(self.target_snapshot_arn);
        run.kms_key_arn = Some(self.kms_key_arn);
        run
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use time::macros::datetime;

    /// A complete source run, as Notify sees it.
    pub(crate) fn finished_source_run() -> RunState {
        let mut run = RunState::new("run-1".parse().expect("id"), datetime!(2026-11-25 16:00:05 UTC));
        run.source_account_id = Some("111111111111".parse().expect("acct"));
        run.source_region = Some("us-west-2".parse().expect("region"));
        run.source_cluster_id = Some("orders".parse().expect("cluster"));
        run.source_snapshot_id = Some("aurora-dr-orders-20261125160005".parse().expect("snap"));
        run.source_snapshot_arn = Some(
            "arn:aws:rds:us-west-2:111111111111:cluster-snapshot:aurora-dr-orders-20261125160005"
                .parse()
                .expect("arn"),
        );
        run.snapshot_created_at = Some(datetime!(2026-11-25 16:00:06 UTC));
        run.engine = Some("aurora-postgresql".into());
        run.target_region = Some("us-west-1".parse().expect("region"));
        run.target_account_id = Some("222222222222".parse().expect("acct"));
        run.kms_key_arn = Some(
            "arn:aws:kms:us-west-1:111111111111:key/0f0e0d0c-0000-4000-8000-000000000001"
                .parse()
                .expect("arn"),
        );
        run.target_snapshot_id = Some("aurora-dr-orders-20261125160005".parse().expect("snap"));
        run.target_snapshot_arn = Some(
            "arn:aws:rds:us-west-1:111111111111:cluster-snapshot:aurora-dr-orders-20261125160005"
                .parse()
                .expect("arn"),
        );
        run
    }

    #[test]
    fn run_state_round_trips_with_camel_case_keys() {
        let mut run = finished_source_run();
        run.swap = Some(SwapRecord {
            old_cluster_id: Some("orders-dr-old-20261125160005".parse().expect("id")),
            old_instance_ids: vec!["orders-dr-1-old-20261125160005".parse().expect("id")],
            deleted_instance_ids: Vec::new(),
            existing_cluster_id: "orders-dr".parse().expect("id"),
            existing_instance_ids: vec!["orders-dr-1".parse().expect("id")],
        });
        run.failure = Some(Failure { error: "Throttled".into(), cause: "x".into() });
        let value = run.to_value();
        for key in [
            "runId",
            "sourceClusterId",
            "sourceSnapshotId",
            "sourceSnapshotArn",
            "targetSnapshotArn",
            "targetRegion",
            "targetAccountId",
            "kmsKeyArn",
            "engine",
            "createdAt",
        ] {
            assert!(value.get(key).is_some(), "missing {key} in {value}");
        }
        assert_eq!(value["createdAt"], "2026-11-25T16:00:05Z");
        assert_eq!(value["failure"]["Error"], "Throttled");
        assert_eq!(RunState::from_value(value).expect("parse"), run);
    }

    #[test]
    fn run_state_rejects_unknown_missing_and_mistyped_fields() {
        let base = finished_source_run().to_value();
        let mut extra = base.clone();
        extra["sourceClusterID"] = "orders".into();
        let mut missing = base.clone();
        missing.as_object_mut().expect("object").remove("runId");
        let mut mistyped = base.clone();
        mistyped["targetAccountId"] = 222222222222u64.into();
        let mut invalid = base;
        invalid["sourceClusterId"] = "orders--x".into();
        for (case, value) in
            [("extra", extra), ("missing", missing), ("mistyped", mistyped), ("invalid", invalid)]
        {
            let err = RunState::from_value(value).expect_err(case);
            assert_eq!(err.asl_name(), "InvalidInput", "{case}: {err}");
        }
    }

    #[test]
    fn own_copy_fields_round_trip_and_are_absent_when_unset() {
        let mut run = finished_source_run();
        assert!(run.to_value().get("ownSnapshotArn").is_none());
        run.own_snapshot_id = Some("aurora-dr-orders-20261125160005".parse().expect("id"));
        run.own_snapshot_arn = Some(
            "arn:aws:rds:us-west-1:222222222222:cluster-snapshot:aurora-dr-orders-20261125160005"
                .parse()
                .expect("arn"),
        );
        let value = run.to_value();
        assert_eq!(value["ownSnapshotId"], "aurora-dr-orders-20261125160005");
        assert!(value["ownSnapshotArn"].as_str().is_some_and(|a| a.contains(":222222222222:")));
        assert_eq!(RunState::from_value(value).expect("parse"), run);
    }

    #[test]
    fn stamp_is_the_start_time() {
        assert_eq!(finished_source_run().stamp(), "20261125160005");
    }

    #[test]
    fn message_round_trips_and_checks() {
        let msg = DrMessage::from_run(&finished_source_run()).expect("message");
        let text = serde_json::to_string(&msg).expect("json");
        assert!(text.contains("\"version\":1"));
        assert_eq!(DrMessage::parse(&text).expect("parse"), msg);
        let run = msg.clone().into_run();
        assert_eq!(run.target_snapshot_arn, Some(msg.target_snapshot_arn.clone()));
    }

    #[test]
    fn message_rejections_are_named() {
        let good =
            serde_json::to_value(DrMessage::from_run(&finished_source_run()).expect("msg")).expect("v");
        let with = |key: &str, v: serde_json::Value| {
            let mut m = good.clone();
            m[key] = v;
            m.to_string()
        };
        let without = |key: &str| {
            let mut m = good.clone();
            m.as_object_mut().expect("object").remove(key);
            m.to_string()
        };
        let cases = [
            ("not json", "{not json".to_owned(), "not JSON"),
            ("version 2", with("version", 2.into()), "version 2"),
            ("version string", with("version", "1".into()), "not supported"),
            ("no version", without("version"), "no `version`"),
            ("missing arn", without("targetSnapshotArn"), "targetSnapshotArn"),
            ("extra", with("restoreNow", true.into()), "restoreNow"),
            (
                "other account",
                with(
                    "targetSnapshotArn",
                    "arn:aws:rds:us-west-1:333333333333:cluster-snapshot:aurora-dr-orders-20261125160005"
                        .into(),
                ),
                "not owned",
            ),
            (
                "other region",
                with(
                    "targetSnapshotArn",
                    "arn:aws:rds:eu-west-1:111111111111:cluster-snapshot:aurora-dr-orders-20261125160005"
                        .into(),
                ),
                "not in the declared target region",
            ),
            (
                "other snapshot",
                with("targetSnapshotArn", "arn:aws:rds:us-west-1:111111111111:cluster-snapshot:other".into()),
                "does not name",
            ),
            (
                "not a snapshot",
                with("targetSnapshotArn", "arn:aws:rds:us-west-1:111111111111:cluster:orders".into()),
                "cluster-snapshot",
            ),
            ("oversize", with("engine", "x".repeat(MAX_MESSAGE_BYTES).into()), "bytes"),
        ];
        for (case, text, want) in cases {
            let err = DrMessage::parse(&text).expect_err(case);
            assert_eq!(err.asl_name(), "InvalidInput", "{case}");
            assert!(err.to_string().contains(want), "{case}: {err}");
        }
    }
}
