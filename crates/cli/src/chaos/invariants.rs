//! The safety rules a chaos run checks after every run, against the
//! emulator's state (the RDS API of each account) and its call log:
//!
//! - `existing-serves`: once a cluster has been restored under the existing
//!   name, that name reaches an available cluster with its instances, all
//!   available, at the end of every run; an instance failure the schedule
//!   armed that broke the serving copy itself is excused until the next
//!   successful run, which must have replaced it;
//! - `serving-kept`: the cluster that served at the start of a run (and its
//!   instances, but for any beyond repair, which serve nothing) is deleted
//!   only while another cluster holds the existing name (read from the run's calls, in order: renames and deletes that
//!   took effect, answered or not);
//! - `source-unchanged`: every source cluster and its instances describe
//!   as before the first run;
//! - `shares`: no manual snapshot of either account is shared beyond the
//!   configured target account (`DescribeDBClusterSnapshotAttributes`,
//!   attribute `restore`), nor publicly;
//! - `no-leftovers` (after a successful run): no temporary or `-old-`
//!   cluster or instance unless the run reports it kept, no copy that is
//!   not available, and no more available snapshots or copies of the tool
//!   than retention keeps.

use std::collections::{BTreeMap, BTreeSet};

use aurora_dr_core::clients::AwsContext;
use aurora_dr_core::rds::beyond_repair;
use aurora_dr_emulator::CallRecord;
use serde::Serialize;

use crate::config::Config;

/// One broken rule, with what shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub invariant: &'static str,
    pub detail: String,
}

/// The names of the rules, in the order they are checked.
pub const INVARIANTS: [&str; 5] =
    ["existing-serves", "serving-kept", "source-unchanged", "shares", "no-leftovers"];

/// Statuses of a change in progress; the emulator finishes one after a few
/// describe calls (test latency), so the checks describe until none is left.
const TRANSITIONAL: [&str; 6] = ["creating", "renaming", "modifying", "copying", "deleting", "backing-up"];

/// The three places the pipeline writes to.
pub struct Places {
    pub source: AwsContext,
    /// The source account in the target region: the copies.
    pub copies: AwsContext,
    pub target: AwsContext,
}

/// A cluster as the checks see it.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub id: String,
    pub status: String,
    pub members: Vec<String>,
}

/// One account's clusters, instances (id -> status) and manual snapshots
/// (id -> status) in one region, once nothing is mid-change (at most 10
/// describes).
#[derive(Debug, Clone, Default)]
pub struct Place {
    pub clusters: Vec<Cluster>,
    pub instances: BTreeMap<String, String>,
    pub snapshots: BTreeMap<String, String>,
}

impl Place {
    pub async fn read(ctx: &AwsContext) -> Result<Self, String> {
        let mut place = Self::read_once(ctx).await?;
        for _ in 0..10 {
            let busy = place.clusters.iter().map(|c| &c.status).chain(place.instances.values());
            if !busy.into_iter().any(|s| TRANSITIONAL.contains(&s.as_str())) {
                break;
            }
            place = Self::read_once(ctx).await?;
        }
        Ok(place)
    }

    async fn read_once(ctx: &AwsContext) -> Result<Self, String> {
        let rds = ctx.rds();
        let clusters =
            rds.describe_db_clusters().send().await.map_err(|e| format!("DescribeDBClusters: {e}"))?;
        let instances =
            rds.describe_db_instances().send().await.map_err(|e| format!("DescribeDBInstances: {e}"))?;
        let snapshots = rds
            .describe_db_cluster_snapshots()
            .snapshot_type("manual")
            .send()
            .await
            .map_err(|e| format!("DescribeDBClusterSnapshots: {e}"))?;
        Ok(Self {
            clusters: clusters
                .db_clusters()
                .iter()
                .map(|c| Cluster {
                    id: c.db_cluster_identifier().unwrap_or_default().to_owned(),
                    status: c.status().unwrap_or_default().to_owned(),
                    members: c
                        .db_cluster_members()
                        .iter()
                        .filter_map(|m| m.db_instance_identifier().map(str::to_owned))
                        .collect(),
                })
                .collect(),
            instances: instances
                .db_instances()
                .iter()
                .map(|i| {
                    (
                        i.db_instance_identifier().unwrap_or_default().to_owned(),
                        i.db_instance_status().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
            snapshots: snapshots
                .db_cluster_snapshots()
                .iter()
                .map(|s| {
                    (
                        s.db_cluster_snapshot_identifier().unwrap_or_default().to_owned(),
                        s.status().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
        })
    }

    pub fn cluster(&self, id: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.id == id)
    }
}

/// What every source cluster and its instances describe as: field -> value.
pub async fn source_fingerprint(
    ctx: &AwsContext,
    config: &Config,
) -> Result<BTreeMap<String, String>, String> {
    let rds = ctx.rds();
    let mut out = BTreeMap::new();
    for id in &config.source.cluster_ids {
        let found = rds
            .describe_db_clusters()
            .db_cluster_identifier(id.as_str())
            .send()
            .await
            .map_err(|e| format!("DescribeDBClusters {id}: {e}"))?;
        let Some(c) = found.db_clusters().first() else {
            out.insert(format!("{id}"), "absent".into());
            continue;
        };
        let mut tags: Vec<String> = c
            .tag_list()
            .iter()
            .map(|t| format!("{}={}", t.key().unwrap_or(""), t.value().unwrap_or("")))
            .collect();
        tags.sort();
        let mut members: Vec<String> = c
            .db_cluster_members()
            .iter()
            .map(|m| {
                format!(
                    "{}:{}",
                    m.db_instance_identifier().unwrap_or(""),
                    m.is_cluster_writer().unwrap_or(false)
                )
            })
            .collect();
        members.sort();
        let fields = [
            ("arn", c.db_cluster_arn().map(str::to_owned)),
            ("resource-id", c.db_cluster_resource_id().map(str::to_owned)),
            ("status", c.status().map(str::to_owned)),
            ("engine", c.engine().map(str::to_owned)),
            ("engine-version", c.engine_version().map(str::to_owned)),
            ("encrypted", c.storage_encrypted().map(|b| b.to_string())),
            ("kms-key", c.kms_key_id().map(str::to_owned)),
            ("deletion-protection", c.deletion_protection().map(|b| b.to_string())),
            ("backup-retention", c.backup_retention_period().map(|d| d.to_string())),
            ("endpoint", c.endpoint().map(str::to_owned)),
            ("port", c.port().map(|p| p.to_string())),
            ("master-username", c.master_username().map(str::to_owned)),
            ("parameter-group", c.db_cluster_parameter_group().map(str::to_owned)),
            ("subnet-group", c.db_subnet_group().map(str::to_owned)),
            ("members", Some(members.join(","))),
            ("tags", Some(tags.join(","))),
        ];
        for (name, value) in fields {
            out.insert(format!("{id}.{name}"), value.unwrap_or_default());
        }
        for m in c.db_cluster_members() {
            let Some(instance) = m.db_instance_identifier() else { continue };
            let found = rds
                .describe_db_instances()
                .db_instance_identifier(instance)
                .send()
                .await
                .map_err(|e| format!("DescribeDBInstances {instance}: {e}"))?;
            let i = found.db_instances().first();
            let key = |f: &str| format!("{id}/{instance}.{f}");
            out.insert(key("status"), i.and_then(|i| i.db_instance_status()).unwrap_or("absent").to_owned());
            out.insert(key("class"), i.and_then(|i| i.db_instance_class()).unwrap_or_default().to_owned());
        }
    }
    Ok(out)
}

/// `source-unchanged`: the fields that differ from the baseline.
pub fn source_unchanged(before: &BTreeMap<String, String>, now: &BTreeMap<String, String>) -> Vec<Violation> {
    let keys: BTreeSet<&String> = before.keys().chain(now.keys()).collect();
    keys.into_iter()
        .filter(|k| before.get(*k) != now.get(*k))
        .map(|k| Violation {
            invariant: "source-unchanged",
            detail: format!(
                "{k}: {:?} before the first run, {:?} now",
                before.get(k).map_or("-", String::as_str),
                now.get(k).map_or("-", String::as_str)
            ),
        })
        .collect()
}

/// `existing-serves` for one existing name: an available cluster whose
/// instances are all there and available.
pub fn existing_serves(target: &Place, existing: &str) -> Vec<Violation> {
    let v = |detail: String| vec![Violation { invariant: "existing-serves", detail }];
    let Some(c) = target.cluster(existing) else {
        return v(format!("no cluster is named {existing}"));
    };
    if c.status != "available" {
        return v(format!("{existing} is {}", c.status));
    }
    if c.members.is_empty() {
        return v(format!("{existing} has no instance"));
    }
    let bad: Vec<String> = c
        .members
        .iter()
        .filter_map(|m| match target.instances.get(m).map(String::as_str) {
            Some("available") => None,
            status => Some(format!("{m} {}", status.unwrap_or("absent"))),
        })
        .collect();
    if bad.is_empty() {
        Vec::new()
    } else {
        v(format!("{existing}'s instances not available: {}", bad.join(", ")))
    }
}

/// What the rules remember of one existing name from run to run.
#[derive(Debug, Default)]
pub struct NameState {
    /// The name has served a complete cluster at the end of a run.
    restored: bool,
    /// The serving copy's instances were broken by an instance failure the
    /// schedule armed (see [`Self::existing_serves`]).
    broken_by_fault: bool,
}

impl NameState {
    /// `existing-serves` at the end of a run (`ok`: it restored every
    /// cluster), once the name has served a complete cluster. One case is
    /// not the pipeline's: an instance failure the run armed
    /// (`instance_failure_armed`) that hit the serving copy itself, leaving
    /// an available cluster whose only trouble is instances beyond repair.
    /// No run prevents that; it is excused until the next successful run,
    /// which must replace the broken instance (Swap deletes it), so a
    /// success never excuses anything.
    pub fn existing_serves(
        &mut self,
        target: &Place,
        existing: &str,
        ok: bool,
        instance_failure_armed: bool,
    ) -> Vec<Violation> {
        let found = existing_serves(target, existing);
        let complete = found.is_empty();
        let mut out = Vec::new();
        if self.restored || ok {
            let excused = !ok
                && (instance_failure_armed || self.broken_by_fault)
                && only_instances_beyond_repair(target, existing);
            self.broken_by_fault = excused;
            if !excused {
                out = found;
            }
        }
        self.restored |= complete;
        out
    }

    /// Why the last [`Self::existing_serves`] let a broken serving copy
    /// pass, for the run's row: `None` when it excused nothing.
    pub fn excuse(&self, existing: &str) -> Option<String> {
        self.broken_by_fault.then(|| {
            format!(
                "existing-serves excused: {existing} serves instances beyond repair after an instance failure \
                 the schedule armed; the next successful run must replace them"
            )
        })
    }
}

/// Whether `existing` is an available cluster whose only trouble is member
/// instances beyond repair ([`aurora_dr_core::rds::beyond_repair`]).
fn only_instances_beyond_repair(target: &Place, existing: &str) -> bool {
    let Some(c) = target.cluster(existing) else { return false };
    let statuses: Vec<&str> =
        c.members.iter().map(|m| target.instances.get(m).map_or("absent", String::as_str)).collect();
    c.status == "available"
        && statuses.iter().any(|s| beyond_repair(s))
        && statuses.iter().all(|s| *s == "available" || beyond_repair(s))
}

/// The cluster that served under `existing` when the run started, with the
/// instances that served: one beyond repair (e.g. `failed`) serves nothing,
/// and deleting it to free its name takes nothing out of service.
pub fn serving_at_start(before: &Place, existing: &str) -> Option<Cluster> {
    let c = before.cluster(existing).filter(|c| c.status == "available")?;
    let members = c
        .members
        .iter()
        .filter(|m| !before.instances.get(*m).is_some_and(|s| beyond_repair(s)))
        .cloned()
        .collect();
    Some(Cluster { members, ..c.clone() })
}

/// `serving-kept` for one existing name: follows the run's effective
/// renames and deletes in the target account. `serving` is the cluster
/// that held the name when the run started, with its instances.
pub fn serving_kept(
    calls: &[CallRecord],
    account: &str,
    region: &str,
    existing: &str,
    serving: Option<&Cluster>,
) -> Vec<Violation> {
    let Some(serving) = serving else { return Vec::new() };
    let mut cluster = Some(serving.id.clone());
    let mut instances: BTreeSet<String> = serving.members.iter().cloned().collect();
    // Whether another cluster holds the existing name now.
    let mut replaced = false;
    let mut out = Vec::new();
    let took_effect = |c: &&CallRecord| {
        c.service == "rds" && c.account == account && c.region == region && (!c.failed() || c.applied)
    };
    for c in calls.iter().filter(took_effect) {
        let param = |k: &str| c.params.get(k).map(String::as_str);
        match (c.operation.as_str(), param("DBClusterIdentifier"), param("DBInstanceIdentifier")) {
            ("ModifyDBCluster", Some(from), _) => {
                let Some(to) = param("NewDBClusterIdentifier") else { continue };
                if cluster.as_deref() == Some(from) {
                    cluster = Some(to.to_owned());
                } else if to == existing {
                    replaced = true;
                } else if from == existing {
                    replaced = false;
                }
            }
            ("ModifyDBInstance", _, Some(from)) => {
                if let Some(to) = param("NewDBInstanceIdentifier")
                    && instances.remove(from)
                {
                    instances.insert(to.to_owned());
                }
            }
            ("DeleteDBCluster", Some(id), _) if cluster.as_deref() == Some(id) => {
                if !replaced {
                    out.push(Violation {
                        invariant: "serving-kept",
                        detail: format!(
                            "call {}: DeleteDBCluster {id} (the cluster serving as {existing} when the run \
                             started) while no replacement held {existing}",
                            c.seq
                        ),
                    });
                }
                cluster = None;
            }
            ("DeleteDBInstance", _, Some(id)) if instances.contains(id) => {
                if !replaced {
                    out.push(Violation {
                        invariant: "serving-kept",
                        detail: format!(
                            "call {}: DeleteDBInstance {id} (an instance of the cluster serving as {existing}) \
                             while no replacement held {existing}",
                            c.seq
                        ),
                    });
                }
                instances.remove(id);
            }
            _ => {}
        }
    }
    out
}

/// `shares`: every manual snapshot of `ctx` shared only with `allowed`.
pub async fn shares(
    ctx: &AwsContext,
    place: &Place,
    where_: &str,
    allowed: &[&str],
) -> Result<Vec<Violation>, String> {
    let rds = ctx.rds();
    let mut out = Vec::new();
    for id in place.snapshots.keys() {
        let attrs = match rds
            .describe_db_cluster_snapshot_attributes()
            .db_cluster_snapshot_identifier(id)
            .send()
            .await
        {
            Ok(a) => a,
            // Deleted since it was listed.
            Err(e) if format!("{e:?}").contains("DBClusterSnapshotNotFound") => continue,
            Err(e) => return Err(format!("DescribeDBClusterSnapshotAttributes {id}: {e}")),
        };
        let shared: Vec<String> = attrs
            .db_cluster_snapshot_attributes_result()
            .map(|r| r.db_cluster_snapshot_attributes())
            .unwrap_or_default()
            .iter()
            .filter(|a| a.attribute_name() == Some("restore"))
            .flat_map(|a| a.attribute_values().iter().cloned())
            .filter(|account| !allowed.contains(&account.as_str()))
            .collect();
        if !shared.is_empty() {
            out.push(Violation {
                invariant: "shares",
                detail: format!("{where_} snapshot {id} shared with {}", shared.join(", ")),
            });
        }
    }
    Ok(out)
}

/// `no-leftovers` after a successful run.
pub struct Leftovers<'a> {
    pub config: &'a Config,
    /// Clusters the run reports it kept on purpose.
    pub kept: &'a [String],
}

impl Leftovers<'_> {
    pub fn check(&self, source: &Place, copies: &Place, target: &Place) -> Vec<Violation> {
        let (src, tgt) = (&self.config.source, &self.config.target);
        let mut out = Vec::new();
        let mut left = |detail: String| out.push(Violation { invariant: "no-leftovers", detail });
        for pair in &tgt.pairs {
            let temp = pair.temp_cluster_id.as_str();
            let old = format!("{}-old-", pair.existing_cluster_id);
            for c in &target.clusters {
                let stray = c.id == temp || c.id.starts_with(&old);
                if stray && !self.kept.contains(&c.id) {
                    left(format!("target cluster {} ({})", c.id, c.status));
                }
            }
            let temp_instance = pair.temp_instance_id.as_str();
            let old_instance = format!("{}-old-", pair.existing_instance_id);
            for (id, status) in &target.instances {
                let kept =
                    target.clusters.iter().any(|c| self.kept.contains(&c.id) && c.members.contains(id));
                if (id.starts_with(temp_instance) || id.starts_with(&old_instance)) && !kept {
                    left(format!("target instance {id} ({status})"));
                }
            }
        }
        let prefix = format!("{}-{}-", src.snapshot_prefix, src.cluster_id);
        let tool = |p: &Place| -> Vec<(String, String)> {
            p.snapshots
                .iter()
                .filter(|(id, _)| id.starts_with(&prefix))
                .map(|(a, b)| (a.clone(), b.clone()))
                .collect()
        };
        for (id, status) in tool(copies).iter().filter(|(_, s)| s != "available") {
            left(format!("copy {id} ({status})"));
        }
        // Retention with days keeps every young snapshot: counts are only bounded without it.
        if src.retention.days.is_none() {
            let keep = src.retention.snapshots as usize;
            for (place, name) in [(source, "source snapshots"), (copies, "copies")] {
                let available = tool(place).iter().filter(|(_, s)| s == "available").count();
                if available > keep {
                    left(format!("{available} available {name} of the tool, retention keeps {keep}"));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TGT: &str = "222222222222";
    const REGION: &str = "us-west-1";

    /// A call to RDS in the target account that took effect (or, with
    /// `status`, was answered so).
    fn call(seq: u64, operation: &str, params: &[(&str, &str)], status: u16) -> CallRecord {
        CallRecord {
            seq,
            service: "rds".into(),
            operation: operation.into(),
            account: TGT.into(),
            region: REGION.into(),
            params: params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            status: Some(status),
            error_code: None,
            fault: None,
            applied: false,
        }
    }

    fn rename(seq: u64, from: &str, to: &str) -> CallRecord {
        call(seq, "ModifyDBCluster", &[("DBClusterIdentifier", from), ("NewDBClusterIdentifier", to)], 200)
    }

    fn delete(seq: u64, id: &str) -> CallRecord {
        call(seq, "DeleteDBCluster", &[("DBClusterIdentifier", id)], 200)
    }

    fn serving() -> Cluster {
        Cluster { id: "dr".into(), status: "available".into(), members: vec!["dr-1".into()] }
    }

    fn check(calls: &[CallRecord]) -> Vec<Violation> {
        serving_kept(calls, TGT, REGION, "dr", Some(&serving()))
    }

    #[test]
    fn a_swap_then_terminate_keeps_the_serving_cluster_until_replaced() {
        let swap = [rename(1, "dr", "dr-old-1"), rename(2, "dr-next", "dr"), delete(3, "dr-old-1")];
        assert_eq!(check(&swap), []);
    }

    #[test]
    fn deleting_the_serving_cluster_before_a_replacement_holds_the_name_is_reported() {
        let early = [rename(1, "dr", "dr-old-1"), delete(2, "dr-old-1"), rename(3, "dr-next", "dr")];
        let found = check(&early);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].detail.contains("call 2: DeleteDBCluster dr-old-1"), "{found:?}");
        let instance = [call(1, "DeleteDBInstance", &[("DBInstanceIdentifier", "dr-1")], 200)];
        assert_eq!(check(&instance).len(), 1);
    }

    #[test]
    fn a_rolled_back_swap_no_longer_counts_as_replaced() {
        // The replacement took the name, was moved away again, then the old one was deleted.
        let calls = [
            rename(1, "dr", "dr-old-1"),
            rename(2, "dr-next", "dr"),
            rename(3, "dr", "dr-failed"),
            delete(4, "dr-old-1"),
        ];
        assert_eq!(check(&calls).len(), 1);
    }

    #[test]
    fn calls_without_effect_and_other_accounts_do_not_count() {
        let mut refused = delete(1, "dr");
        refused.status = Some(400);
        let mut other = delete(2, "dr");
        other.account = "333333333333".into();
        assert_eq!(check(&[refused, other]), []);
        let mut lost = delete(3, "dr");
        lost.status = Some(500);
        lost.applied = true;
        assert_eq!(check(&[lost]).len(), 1);
        assert_eq!(serving_kept(&[delete(1, "dr")], TGT, REGION, "dr", None), []);
    }

    fn place(clusters: &[(&str, &[&str])], snapshots: &[(&str, &str)]) -> Place {
        Place {
            clusters: clusters
                .iter()
                .map(|(id, members)| Cluster {
                    id: (*id).into(),
                    status: "available".into(),
                    members: members.iter().map(|m| (*m).to_owned()).collect(),
                })
                .collect(),
            instances: clusters
                .iter()
                .flat_map(|(_, m)| m.iter().map(|i| ((*i).to_owned(), "available".to_owned())))
                .collect(),
            snapshots: snapshots.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect(),
        }
    }

    /// `dr` with its one instance `dr-1` in `status`.
    fn dr_with_instance(status: &str) -> Place {
        let mut p = place(&[("dr", &["dr-1"])], &[]);
        p.instances.insert("dr-1".into(), status.into());
        p
    }

    #[test]
    fn a_serving_instance_broken_by_an_armed_failure_is_excused_until_the_next_success() {
        let (good, failed) = (dr_with_instance("available"), dr_with_instance("failed"));
        let mut name = NameState::default();
        assert_eq!(name.existing_serves(&good, "dr", true, false), [], "run 1 restores");
        // Run 2 armed an instance failure that hit the serving copy.
        assert_eq!(name.existing_serves(&failed, "dr", false, true), [], "excused");
        assert!(name.excuse("dr").is_some_and(|e| e.contains("dr serves instances beyond repair")));
        // Run 3 fails for another reason: still the same broken copy, still excused.
        assert_eq!(name.existing_serves(&failed, "dr", false, false), []);
        assert!(name.excuse("dr").is_some());
        // A successful run must have replaced it.
        let found = name.existing_serves(&failed, "dr", true, false);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(name.excuse("dr"), None, "a reported violation is no excuse");
        assert!(found[0].detail.contains("dr-1 failed"), "{found:?}");
        // Back to normal, a failed instance without an armed failure is reported.
        let mut name = NameState::default();
        name.existing_serves(&good, "dr", true, false);
        assert_eq!(name.excuse("dr"), None);
        assert_eq!(name.existing_serves(&failed, "dr", false, false).len(), 1);
        // An armed failure excuses only broken instances, not a missing cluster.
        let mut name = NameState::default();
        name.existing_serves(&good, "dr", true, false);
        assert_eq!(name.existing_serves(&place(&[], &[]), "dr", false, true).len(), 1);
    }

    #[test]
    fn deleting_a_serving_instance_beyond_repair_is_not_taking_it_out_of_service() {
        let before = dr_with_instance("failed");
        let serving = serving_at_start(&before, "dr").expect("serving");
        assert!(serving.members.is_empty(), "{serving:?}");
        let calls = [
            rename(1, "dr", "dr-old-1"),
            call(2, "DeleteDBInstance", &[("DBInstanceIdentifier", "dr-1")], 200),
            rename(3, "dr-next", "dr"),
        ];
        assert_eq!(serving_kept(&calls, TGT, REGION, "dr", Some(&serving)), []);
        let working = serving_at_start(&dr_with_instance("available"), "dr").expect("serving");
        assert_eq!(serving_kept(&calls, TGT, REGION, "dr", Some(&working)).len(), 1);
    }

    #[test]
    fn leftovers_are_temporary_and_old_names_and_snapshots_beyond_retention() {
        let config = Config::parse(include_str!("../../../../examples/drill.toml")).expect("example config");
        let snap = |n: u32| format!("aurora-dr-orders-2026010100000{n}");
        let three: Vec<(String, &str)> = (1..=3).map(|n| (snap(n), "available")).collect();
        let three: Vec<(&str, &str)> = three.iter().map(|(a, b)| (a.as_str(), *b)).collect();
        let clean = place(&[("orders-dr", &["orders-dr-1"])], &[]);
        let none: [String; 0] = [];
        let check = |target: &Place, copies: &Place, kept: &[String]| {
            Leftovers { config: &config, kept }.check(&place(&[], &three), copies, target)
        };
        assert_eq!(check(&clean, &place(&[], &three), &none), []);

        let stray = place(
            &[("orders-dr", &["orders-dr-1"]), ("orders-dr-old-20260101", &["orders-dr-1-old-20260101"])],
            &[],
        );
        let found = check(&stray, &place(&[], &three), &none);
        assert_eq!(found.len(), 2, "{found:?}");
        let kept = ["orders-dr-old-20260101".to_owned()];
        assert_eq!(check(&stray, &place(&[], &three), &kept), []);

        let mut four = three.clone();
        let extra = snap(4);
        four.push((&extra, "available"));
        let found = check(&clean, &place(&[], &four), &none);
        assert!(found.len() == 1 && found[0].detail.contains("4 available copies"), "{found:?}");
        let copying = [(three[0].0, "copying")];
        assert_eq!(check(&clean, &place(&[], &copying), &none).len(), 1);
    }

    #[test]
    fn a_changed_source_field_is_named() {
        let before: BTreeMap<String, String> =
            [("orders.backup-retention".to_owned(), "1".to_owned())].into();
        let now: BTreeMap<String, String> = [("orders.backup-retention".to_owned(), "9".to_owned())].into();
        assert_eq!(source_unchanged(&before, &before), []);
        let found = source_unchanged(&before, &now);
        assert!(found.len() == 1 && found[0].detail.contains("orders.backup-retention"), "{found:?}");
    }
}
