//! ApplyRetention (both sides): deletes aurora-dr's own old snapshots,
//! keeping the newest `RETAIN_SNAPSHOTS` and, with `RETAIN_DAYS`, every one
//! younger than that.
//!
//! # Where it runs
//! As the last state of each machine, once the run has done its job, in a
//! function of its own (input `{"mode": "retention", "run": <RunState>}`):
//!
//! | machine | after     | places pruned (settings)                                          |
//! |---------|-----------|-------------------------------------------------------------------|
//! | source  | Notify    | source region snapshots, target region copies (`source.retain_*`) |
//! | target  | Terminate | the target account's own copies (`target.retain_*`)               |
//!
//! A state of its own (rather than a tail of Notify or Terminate) shows in the
//! execution history, has its own retries and its own role (the only one of
//! a side that may delete old snapshots), and a failure is notified under
//! its own name: it never republishes the message or rolls back a swap. Only
//! a run that got this far prunes, so a failing schedule never eats its
//! recovery points.
//!
//! # Which snapshots are the tool's
//! In each place, a manual cluster snapshot is considered only when all hold:
//! the account owns it (its ARN names this account), it carries
//! `aurora-dr:managed-by=aurora-dr` and `aurora-dr:source-cluster=<this
//! cluster>`, and its name is `{prefix}-{cluster}-{yyyymmddHHMMss}`. Anything
//! else (untagged, hand-made, another tool's or another cluster's) is
//! *foreign* and never touched. On the target side the cluster and prefix
//! come from the payload (the shared snapshot's name), on the source side
//! from the settings.
//!
//! # What is kept
//! Of the tool's snapshots in a place:
//! - this run's (its `aurora-dr:run-id` tag, or a name the payload holds): always;
//! - any that is not `available` (being created or copied): always, and not counted;
//! - the newest `RETAIN_SNAPSHOTS` of the available ones and this run's,
//!   ranked by the run start time in the name (the recovery point);
//! - with `RETAIN_DAYS`: those whose time is less than that many days before
//!   this run started.
//!
//! The rest are deleted (`DeleteDBClusterSnapshot`), each logged with its
//! reason. Output: a [`RetentionReport`] (the machines discard it with
//! `ResultPath: null`; it stays in the execution history).
//!
//! Errors: `InvalidInput` (not a retention input, a payload with `failure`,
//! a missing field, a payload of another cluster), `InvalidConfig` (unknown
//! side) and the AWS classifications: a snapshot that became busy is
//! `ResourceNotReady` (retryable); one already gone counts as deleted.
//!
//! Idempotency: a repeat finds the same ranking among what is left and
//! deletes nothing more.

use std::sync::Arc;

use aws_sdk_rds::Client;
use aws_sdk_rds::types::DbClusterSnapshot;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::context::{SideSettings, StepContext};
use crate::error::{DrError, DrResult};
use crate::ids::{AccountId, Arn, ClusterId, Region, SnapshotId};
use crate::payload::{RunState, need};
use crate::rds;
use crate::settings::{Retention, SourceSettings, TargetSettings};

const STEP: &str = "apply_retention";

/// The state this module serves.
pub const STATE: &str = "ApplyRetention";

/// The `mode` of the input (see [`super::input`]).
pub const MODE: &str = super::input::RETENTION_MODE;

/// The retention input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetentionInput {
    pub mode: String,
    pub run: RunState,
}

/// Parses the input, naming what is wrong.
pub fn parse_input(input: Value) -> DrResult<RunState> {
    let parsed: RetentionInput = serde_json::from_value(input).map_err(|e| {
        DrError::invalid_input(format!(
            "retention input must be {{\"mode\": \"retention\", \"run\": <state payload>}}: {e}"
        ))
    })?;
    if parsed.mode != MODE {
        return Err(DrError::invalid_input(format!("mode {:?} is not {MODE:?}", parsed.mode)));
    }
    super::input::no_failure(&parsed.run, STATE)?;
    Ok(parsed.run)
}

/// A place where aurora-dr keeps snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Place {
    /// The source account's snapshots in the source region.
    SourceRegion,
    /// The source account's encrypted copies in the target region (shared).
    TargetRegion,
    /// The target account's own copies (target-owned encryption).
    TargetAccount,
}

/// What makes a snapshot in a place the tool's own, and which are this run's.
#[derive(Debug, Clone)]
pub struct Scope {
    pub place: Place,
    pub account: AccountId,
    pub region: Region,
    pub cluster: ClusterId,
    /// The snapshot name prefix (`SNAPSHOT_PREFIX`).
    pub prefix: String,
    /// The current run: its snapshots are never deleted.
    pub run_id: String,
    /// Names of this run's snapshots (from the payload).
    pub current: Vec<SnapshotId>,
    /// This run's start time: "now" for `RETAIN_DAYS`.
    pub now: OffsetDateTime,
}

/// One snapshot and why it was kept or deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub snapshot: String,
    pub reason: String,
}

/// What retention decided in one place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub delete: Vec<Decision>,
    pub keep: Vec<Decision>,
    /// Snapshots that are not the tool's (never touched), by name.
    pub foreign: Vec<String>,
}

/// What retention did in one place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlaceReport {
    pub place: Place,
    pub account: String,
    pub region: String,
    pub deleted: Vec<Decision>,
    pub kept: Vec<Decision>,
    pub foreign: Vec<String>,
}

/// The step's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    pub places: Vec<PlaceReport>,
}

/// The run start time a tool snapshot's name encodes, if `name` is
/// `{prefix}-{cluster}-{yyyymmddHHMMss}`.
#[cfg(test)]
fn stamp_of(name: &str, scope: &Scope) -> Option<OffsetDateTime> {
    name_stamp(name, &scope.prefix, &scope.cluster)
}

fn name_stamp(name: &str, prefix: &str, cluster: &ClusterId) -> Option<OffsetDateTime> {
    let head = format!("{prefix}-{cluster}-").to_ascii_lowercase();
    let digits = name.to_ascii_lowercase().strip_prefix(&head)?.to_owned();
    if digits.len() != 14 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |from: usize, to: usize| digits[from..to].parse::<u16>().ok();
    let month = Month::try_from(u8::try_from(n(4, 6)?).ok()?).ok()?;
    let date = Date::from_calendar_date(i32::from(n(0, 4)?), month, u8::try_from(n(6, 8)?).ok()?).ok()?;
    let time = Time::from_hms(
        u8::try_from(n(8, 10)?).ok()?,
        u8::try_from(n(10, 12)?).ok()?,
        u8::try_from(n(12, 14)?).ok()?,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// The tool's snapshot of this cluster in this place, with its time; `None`
/// for anything foreign.
fn ours(snap: &DbClusterSnapshot, scope: &Scope) -> Option<OffsetDateTime> {
    tool_snapshot_time(snap, &scope.account, &scope.cluster, &scope.prefix)
}

/// When `snap` is one of the tool's snapshots of `cluster` in `account`
/// (a manual snapshot the account owns, with `managed-by=aurora-dr`,
/// `source-cluster=<cluster>` and the name `{prefix}-{cluster}-{stamp}`),
/// the run time its name encodes; `None` for anything else. The one rule
/// retention, `aurora-dr status` and `aurora-dr cleanup` share.
pub fn tool_snapshot_time(
    snap: &DbClusterSnapshot,
    account: &AccountId,
    cluster: &ClusterId,
    prefix: &str,
) -> Option<OffsetDateTime> {
    if snap.snapshot_type() != Some("manual") {
        return None;
    }
    let owned = snap
        .db_cluster_snapshot_arn()
        .map(|a| a.parse::<Arn>().ok().and_then(|a| a.account()).as_ref() == Some(account))
        .unwrap_or(true);
    let tags = snap.tag_list();
    let cluster_tag = rds::tag_value(tags, rds::TAG_SOURCE_CLUSTER);
    if !owned
        || !rds::is_managed(tags)
        || !cluster_tag.is_some_and(|c| c.eq_ignore_ascii_case(cluster.as_str()))
    {
        return None;
    }
    name_stamp(snap.db_cluster_snapshot_identifier()?, prefix, cluster)
}

/// Decides, without calling AWS, which of `snapshots` to delete.
pub fn plan(snapshots: &[DbClusterSnapshot], scope: &Scope, retention: Retention) -> Plan {
    let mut plan = Plan { delete: Vec::new(), keep: Vec::new(), foreign: Vec::new() };
    // (time, name, this run's): the available snapshots and this run's, ranked below.
    let mut ranked: Vec<(OffsetDateTime, String, bool)> = Vec::new();
    for snap in snapshots {
        let name = snap.db_cluster_snapshot_identifier().unwrap_or_default().to_owned();
        let Some(at) = ours(snap, scope) else {
            plan.foreign.push(name);
            continue;
        };
        let current = rds::tag_value(snap.tag_list(), rds::TAG_RUN_ID) == Some(scope.run_id.as_str())
            || scope.current.iter().any(|c| c.as_str().eq_ignore_ascii_case(&name));
        let status = snap.status().unwrap_or("unknown");
        if current || status == "available" {
            ranked.push((at, name, current));
        } else {
            plan.keep
                .push(Decision { snapshot: name, reason: format!("{status}, not available: never deleted") });
        }
    }
    // Newest first; names break ties so the order never depends on listing order.
    ranked.sort_by(|a, b| b.cmp(a));
    let keep_count = usize::try_from(retention.snapshots).unwrap_or(usize::MAX);
    for (rank, (at, name, current)) in ranked.into_iter().enumerate() {
        let age = scope.now - at;
        let young = retention.days.is_some_and(|d| age < time::Duration::days(i64::from(d)));
        let reason = if current {
            Some("this run's snapshot".to_owned())
        } else if rank < keep_count {
            Some(format!("among the newest {} (rank {})", retention.snapshots, rank + 1))
        } else if young {
            Some(format!("{} days old, younger than {} days", age.whole_days(), retention.days.unwrap_or(0)))
        } else {
            None
        };
        match reason {
            Some(reason) => plan.keep.push(Decision { snapshot: name, reason }),
            None => {
                let mut why = format!("not among the newest {} (rank {})", retention.snapshots, rank + 1);
                if let Some(days) = retention.days {
                    why.push_str(&format!(" and {} days old, older than {days} days", age.whole_days()));
                }
                plan.delete.push(Decision { snapshot: name, reason: why });
            }
        }
    }
    plan
}

/// Applies retention in one place: lists, plans, deletes.
pub async fn prune(rds: &Client, scope: &Scope, retention: Retention) -> DrResult<PlaceReport> {
    // Only this cluster's snapshots (copies keep their source cluster's
    // identifier): a fleet's retention lists each cluster's own, not every
    // snapshot of the account once per cluster. The plan still checks tags.
    let snapshots = rds::list_manual_cluster_snapshots(rds, Some(scope.cluster.as_str())).await?;
    let plan = plan(&snapshots, scope, retention);
    for d in &plan.delete {
        tracing::info!(step = STEP, run_id = %scope.run_id, place = ?scope.place, account = %scope.account,
            region = %scope.region, snapshot = %d.snapshot, reason = %d.reason, "deleting snapshot");
        rds::delete_cluster_snapshot(rds, &d.snapshot).await?;
    }
    tracing::info!(step = STEP, run_id = %scope.run_id, place = ?scope.place, account = %scope.account,
        region = %scope.region, deleted = plan.delete.len(), kept = plan.keep.len(),
        foreign = plan.foreign.len(), "retention applied");
    Ok(PlaceReport {
        place: scope.place,
        account: scope.account.to_string(),
        region: scope.region.to_string(),
        deleted: plan.delete,
        kept: plan.keep,
        foreign: plan.foreign,
    })
}

/// Source side: the source region's snapshots (`rds`) and the target region's
/// copies (`target_rds`), both of the source account.
pub async fn run_source(
    rds: &Client,
    target_rds: &Client,
    settings: &SourceSettings,
    run: &RunState,
) -> DrResult<RetentionReport> {
    let cluster = need(&run.source_cluster_id, "sourceClusterId")?;
    if !cluster.as_str().eq_ignore_ascii_case(settings.cluster_id.as_str()) {
        return Err(DrError::invalid_input(format!(
            "payload names source cluster {cluster}, but this deployment serves {}",
            settings.cluster_id
        )));
    }
    let scope = |place, region: &Region| Scope {
        place,
        account: settings.account_id.clone(),
        region: region.clone(),
        cluster: settings.cluster_id.clone(),
        prefix: settings.snapshot_prefix.clone(),
        run_id: run.run_id.to_string(),
        current: [&run.source_snapshot_id, &run.target_snapshot_id].into_iter().flatten().cloned().collect(),
        now: run.created_at,
    };
    let source = prune(rds, &scope(Place::SourceRegion, &settings.region), settings.retention).await?;
    let target =
        prune(target_rds, &scope(Place::TargetRegion, &settings.target_region), settings.retention).await?;
    Ok(RetentionReport { places: vec![source, target] })
}

/// Target side: the target account's own copies. The cluster and the name
/// prefix come from the payload: the shared snapshot is named
/// `{prefix}-{cluster}-{stamp}` by the source side.
pub async fn run_target(
    rds: &Client,
    settings: &TargetSettings,
    run: &RunState,
) -> DrResult<RetentionReport> {
    let cluster = need(&run.source_cluster_id, "sourceClusterId")?;
    let shared = need(&run.target_snapshot_id, "targetSnapshotId")?;
    let tail = format!("-{}-{}", cluster, run.stamp()).to_ascii_lowercase();
    let prefix = shared.as_str().to_ascii_lowercase().strip_suffix(&tail).map(str::to_owned).ok_or_else(|| {
        DrError::invalid_input(format!(
            "targetSnapshotId {shared} is not named {{prefix}}{tail}: cannot tell which snapshots are the tool's"
        ))
    })?;
    let scope = Scope {
        place: Place::TargetAccount,
        account: settings.account_id.clone(),
        region: settings.region.clone(),
        cluster: cluster.clone(),
        prefix,
        run_id: run.run_id.to_string(),
        current: [&run.own_snapshot_id, &run.target_snapshot_id].into_iter().flatten().cloned().collect(),
        now: run.created_at,
    };
    Ok(RetentionReport { places: vec![prune(rds, &scope, settings.retention).await?] })
}

/// Lambda / local-engine entry of the ApplyRetention state of either side.
pub async fn handle(ctx: Arc<StepContext>, input: Value) -> DrResult<Value> {
    super::input::expect(&input, super::input::InputKind::Retention, STATE)?;
    let run = parse_input(input)?;
    let report = match &ctx.settings {
        SideSettings::Source(s) => {
            // Many clusters: the payload's cluster, if it is a configured one.
            let s = &s.for_cluster(run.source_cluster_id.as_ref())?;
            let rds = ctx.aws.in_region(&s.region).rds();
            let target_rds = ctx.aws.in_region(&s.target_region).rds();
            run_source(&rds, &target_rds, s, &run).await?
        }
        SideSettings::Target(t) => run_target(&ctx.aws.in_region(&t.region).rds(), t, &run).await?,
    };
    Ok(serde_json::to_value(report)?)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use aws_sdk_rds::operation::delete_db_cluster_snapshot::{
        DeleteDBClusterSnapshotError, DeleteDbClusterSnapshotOutput,
    };
    use aws_sdk_rds::operation::describe_db_cluster_snapshots::{
        DescribeDBClusterSnapshotsError, DescribeDbClusterSnapshotsOutput,
    };
    use aws_sdk_rds::types::Tag;
    use aws_smithy_mocks::{Rule, mock};
    use time::macros::datetime;

    use super::*;
    use crate::steps::test_support::{self as ts, tag};

    const SOURCE: &str = "111111111111";
    const TARGET: &str = "222222222222";

    /// This run (`run-1`) started 2026-11-25 16:00:05; its snapshots carry that stamp.
    const NOW: OffsetDateTime = datetime!(2026-11-25 16:00:05 UTC);
    const CURRENT: &str = "aurora-dr-orders-20261125160005";

    fn scope(place: Place) -> Scope {
        let (account, region) = match place {
            Place::SourceRegion => (SOURCE, "us-west-2"),
            Place::TargetRegion => (SOURCE, "us-west-1"),
            Place::TargetAccount => (TARGET, "us-west-1"),
        };
        Scope {
            place,
            account: account.parse().expect("account"),
            region: region.parse().expect("region"),
            cluster: "orders".parse().expect("cluster"),
            prefix: "aurora-dr".into(),
            run_id: "run-1".into(),
            current: vec![CURRENT.parse().expect("id")],
            now: NOW,
        }
    }

    const PLACES: [Place; 3] = [Place::SourceRegion, Place::TargetRegion, Place::TargetAccount];

    /// The tool's name for a run that started `days_ago` days (and `minutes` minutes) before this one.
    fn name_at(days_ago: i64, minutes: i64) -> String {
        let t = NOW - time::Duration::days(days_ago) - time::Duration::minutes(minutes);
        format!("aurora-dr-orders-{}", crate::payload::stamp(t))
    }

    fn tool_tags(run_id: &str) -> Vec<Tag> {
        ts::managed_tags(run_id)
    }

    /// A manual snapshot owned by the place's account.
    fn snap(place: Place, name: &str, status: &str, tags: Vec<Tag>) -> DbClusterSnapshot {
        let s = scope(place);
        DbClusterSnapshot::builder()
            .db_cluster_snapshot_identifier(name)
            .db_cluster_identifier("orders")
            .db_cluster_snapshot_arn(format!(
                "arn:aws:rds:{}:{}:cluster-snapshot:{name}",
                s.region, s.account
            ))
            .snapshot_type("manual")
            .status(status)
            .set_tag_list(Some(tags))
            .build()
    }

    fn names(decisions: &[Decision]) -> Vec<&str> {
        let mut v: Vec<&str> = decisions.iter().map(|d| d.snapshot.as_str()).collect();
        v.sort_unstable();
        v
    }

    fn keep(n: u32, days: Option<u32>) -> Retention {
        Retention { snapshots: n, days }
    }

    #[test]
    fn the_newest_n_are_kept_in_each_place() {
        for place in PLACES {
            let mut all = vec![snap(place, CURRENT, "available", tool_tags("run-1"))];
            for d in 1..=4 {
                all.push(snap(place, &name_at(d, 0), "available", tool_tags(&format!("run-old-{d}"))));
            }
            let p = plan(&all, &scope(place), keep(2, None));
            assert_eq!(names(&p.keep), [name_at(1, 0).as_str(), CURRENT], "{place:?}");
            let mut gone = vec![name_at(4, 0), name_at(3, 0), name_at(2, 0)];
            gone.sort();
            assert_eq!(names(&p.delete), gone, "{place:?}");
            assert!(p.delete.iter().all(|d| d.reason.contains("not among the newest 2")), "{p:?}");
        }
    }

    #[test]
    fn snapshots_older_than_the_days_are_deleted_beyond_the_newest_n() {
        for place in PLACES {
            let all: Vec<DbClusterSnapshot> = [(0, 1), (3, 0), (6, 0), (8, 0), (20, 0)]
                .iter()
                .map(|(d, m)| snap(place, &name_at(*d, *m), "available", tool_tags("run-old")))
                .chain([snap(place, CURRENT, "available", tool_tags("run-1"))])
                .collect();
            let p = plan(&all, &scope(place), keep(1, Some(7)));
            let mut young = vec![CURRENT.to_owned(), name_at(0, 1), name_at(3, 0), name_at(6, 0)];
            young.sort();
            assert_eq!(names(&p.keep), young, "{place:?}");
            let mut old = vec![name_at(8, 0), name_at(20, 0)];
            old.sort();
            assert_eq!(names(&p.delete), old, "{place:?}");
            assert!(p.delete.iter().all(|d| d.reason.contains("older than 7 days")), "{p:?}");

            // Days never delete within the newest N.
            let p = plan(&all, &scope(place), keep(6, Some(1)));
            assert!(p.delete.is_empty(), "{place:?}: {p:?}");
        }
    }

    #[test]
    fn untagged_and_foreign_snapshots_are_never_deleted() {
        let mut other_cluster = tool_tags("run-old");
        other_cluster.retain(|t| t.key() != Some(rds::TAG_SOURCE_CLUSTER));
        other_cluster.push(tag(rds::TAG_SOURCE_CLUSTER, "payments"));
        let mut other_tool = tool_tags("run-old");
        other_tool.retain(|t| t.key() != Some(rds::TAG_MANAGED_BY));
        other_tool.push(tag(rds::TAG_MANAGED_BY, "someone-else"));
        let mut no_cluster_tag = tool_tags("run-old");
        no_cluster_tag.retain(|t| t.key() != Some(rds::TAG_SOURCE_CLUSTER));
        for place in PLACES {
            let old = name_at(30, 0);
            let mut other_account = snap(place, &name_at(31, 0), "available", tool_tags("run-old"));
            other_account.db_cluster_snapshot_arn =
                Some(format!("arn:aws:rds:us-west-1:333333333333:cluster-snapshot:{}", name_at(31, 0)));
            let mut automated = snap(place, &name_at(32, 0), "available", tool_tags("run-old"));
            automated.snapshot_type = Some("automated".into());
            let foreign = vec![
                snap(place, &old, "available", Vec::new()),
                snap(place, &name_at(33, 0), "available", vec![tag("team", "dba")]),
                snap(place, &name_at(34, 0), "available", other_cluster.clone()),
                snap(place, &name_at(35, 0), "available", other_tool.clone()),
                snap(place, &name_at(36, 0), "available", no_cluster_tag.clone()),
                snap(place, "manual-before-upgrade", "available", tool_tags("run-old")),
                snap(place, "other-prefix-orders-20200101000000", "available", tool_tags("run-old")),
                other_account,
                automated,
            ];
            let mut all = foreign.clone();
            all.push(snap(place, CURRENT, "available", tool_tags("run-1")));
            let p = plan(&all, &scope(place), keep(1, None));
            assert!(p.delete.is_empty(), "{place:?}: {p:?}");
            assert_eq!(p.foreign.len(), foreign.len(), "{place:?}: {p:?}");
        }
    }

    #[test]
    fn the_current_runs_snapshot_is_kept_whatever_its_rank() {
        for place in PLACES {
            // A later run's snapshot is newer; this run's is still never deleted.
            let later = snap(place, &name_at(-1, 0), "available", tool_tags("run-2"));
            let by_tag = snap(place, &name_at(2, 0), "available", tool_tags("run-1"));
            let by_name = snap(place, CURRENT, "available", tool_tags("run-x"));
            let p = plan(&[later, by_tag, by_name], &scope(place), keep(1, None));
            assert!(p.delete.is_empty(), "{place:?}: {p:?}");
            assert_eq!(p.keep.iter().filter(|d| d.reason == "this run's snapshot").count(), 2);
        }
    }

    #[test]
    fn snapshots_in_progress_are_kept_and_not_counted() {
        for place in PLACES {
            let all = vec![
                snap(place, CURRENT, "available", tool_tags("run-1")),
                snap(place, &name_at(0, 30), "copying", tool_tags("run-other")),
                snap(place, &name_at(1, 0), "creating", tool_tags("run-other")),
                snap(place, &name_at(2, 0), "available", tool_tags("run-old")),
                snap(place, &name_at(3, 0), "available", tool_tags("run-older")),
            ];
            let p = plan(&all, &scope(place), keep(2, None));
            assert_eq!(names(&p.delete), [name_at(3, 0).as_str()], "{place:?}: {p:?}");
            assert!(p.keep.iter().any(|d| d.snapshot == name_at(1, 0) && d.reason.contains("creating")));
            assert!(p.keep.iter().any(|d| d.snapshot == name_at(2, 0)));
        }
    }

    #[test]
    fn names_encode_the_run_time() {
        let s = scope(Place::SourceRegion);
        assert_eq!(stamp_of(CURRENT, &s), Some(NOW));
        assert_eq!(stamp_of("AURORA-DR-ORDERS-20261125160005", &s), Some(NOW));
        for bad in [
            "aurora-dr-orders-2026112516000",
            "aurora-dr-orders-20261325160005",
            "aurora-dr-orders-2026112516000x",
            "aurora-dr-orders-eu-20261125160005",
            "aurora-dr-payments-20261125160005",
        ] {
            assert_eq!(stamp_of(bad, &s), None, "{bad}");
        }
    }

    // ---- against mocked RDS

    fn listing(snaps: Vec<DbClusterSnapshot>) -> Rule {
        mock!(Client::describe_db_cluster_snapshots)
            // Only the scope's cluster is listed (a request without it matches
            // no rule and fails the test).
            .match_requests(|r| {
                r.snapshot_type() == Some("manual") && r.db_cluster_identifier() == Some("orders")
            })
            .then_output(move || {
                DescribeDbClusterSnapshotsOutput::builder()
                    .set_db_cluster_snapshots(Some(snaps.clone()))
                    .build()
            })
    }

    fn deletes(seen: Arc<Mutex<Vec<String>>>) -> Rule {
        mock!(Client::delete_db_cluster_snapshot)
            .match_requests(move |r| {
                seen.lock()
                    .expect("lock")
                    .push(r.db_cluster_snapshot_identifier().unwrap_or_default().to_owned());
                true
            })
            .then_output(|| DeleteDbClusterSnapshotOutput::builder().build())
    }

    /// Every kind of snapshot a place can hold: this run's, two older runs',
    /// one in progress, untagged and foreign ones older than all.
    fn mixed(place: Place) -> Vec<DbClusterSnapshot> {
        let mut foreign = tool_tags("run-f");
        foreign.retain(|t| t.key() != Some(rds::TAG_SOURCE_CLUSTER));
        foreign.push(tag(rds::TAG_SOURCE_CLUSTER, "payments"));
        vec![
            snap(place, CURRENT, "available", tool_tags("run-1")),
            snap(place, &name_at(1, 0), "available", tool_tags("run-0")),
            snap(place, &name_at(2, 0), "available", tool_tags("run-00")),
            snap(place, &name_at(3, 0), "creating", tool_tags("run-000")),
            snap(place, &name_at(10, 0), "available", Vec::new()),
            snap(place, &name_at(11, 0), "available", foreign),
        ]
    }

    fn source_run() -> RunState {
        crate::payload::tests::finished_source_run()
    }

    fn target_run(own: bool) -> RunState {
        let mut run = crate::steps::target_support::target_run();
        if own {
            run.own_snapshot_id = Some(CURRENT.parse().expect("id"));
            run.own_snapshot_arn = Some(
                format!("arn:aws:rds:us-west-1:{TARGET}:cluster-snapshot:{CURRENT}").parse().expect("arn"),
            );
        }
        run
    }

    #[tokio::test]
    async fn the_source_side_prunes_the_source_region_and_the_target_region() {
        let mut settings = crate::settings::tests::source_settings();
        settings.retention = keep(1, None);
        let (in_source, in_target) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Vec::new())));
        let (list_s, del_s) = (listing(mixed(Place::SourceRegion)), deletes(in_source.clone()));
        let (list_t, del_t) = (listing(mixed(Place::TargetRegion)), deletes(in_target.clone()));
        let report =
            run_source(&ts::rds(&[&list_s, &del_s]), &ts::rds(&[&list_t, &del_t]), &settings, &source_run())
                .await
                .expect("pruned");
        let mut want = vec![name_at(1, 0), name_at(2, 0)];
        want.sort();
        for (seen, place) in [(in_source, 0), (in_target, 1)] {
            let mut seen = seen.lock().expect("lock").clone();
            seen.sort();
            assert_eq!(seen, want);
            let r = &report.places[place];
            assert_eq!(names(&r.deleted), want.iter().map(String::as_str).collect::<Vec<_>>());
            assert_eq!(r.foreign.len(), 2, "{r:?}");
        }
        assert_eq!(report.places[0].place, Place::SourceRegion);
        assert_eq!(
            (report.places[0].region.as_str(), report.places[1].region.as_str()),
            ("us-west-2", "us-west-1")
        );
    }

    #[tokio::test]
    async fn the_target_side_prunes_its_own_copies() {
        let mut settings = crate::settings::tests::target_settings();
        settings.retention = keep(2, None);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (list, del) = (listing(mixed(Place::TargetAccount)), deletes(seen.clone()));
        let report =
            run_target(&ts::rds(&[&list, &del]), &settings, &target_run(true)).await.expect("pruned");
        assert_eq!(*seen.lock().expect("lock"), [name_at(2, 0)]);
        let r = &report.places[0];
        assert_eq!((r.place, r.account.as_str()), (Place::TargetAccount, TARGET));
        assert!(r.kept.iter().any(|d| d.snapshot == CURRENT && d.reason == "this run's snapshot"));
    }

    #[tokio::test]
    async fn a_target_run_without_an_own_copy_still_keeps_the_newest() {
        // Target-owned encryption off (or turned off): leftovers are pruned, the newest kept.
        let mut settings = crate::settings::tests::target_settings();
        settings.retention = keep(1, None);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let leftovers = vec![
            snap(Place::TargetAccount, &name_at(1, 0), "available", tool_tags("run-0")),
            snap(Place::TargetAccount, &name_at(2, 0), "available", tool_tags("run-00")),
        ];
        let (list, del) = (listing(leftovers), deletes(seen.clone()));
        run_target(&ts::rds(&[&list, &del]), &settings, &target_run(false)).await.expect("pruned");
        assert_eq!(*seen.lock().expect("lock"), [name_at(2, 0)]);
    }

    #[tokio::test]
    async fn a_snapshot_already_gone_counts_as_deleted_and_a_busy_one_is_retried() {
        let mut settings = crate::settings::tests::target_settings();
        settings.retention = keep(1, None);
        let run = target_run(true);
        let gone = mock!(Client::delete_db_cluster_snapshot)
            .then_error(|| DeleteDBClusterSnapshotError::generic(ts::meta("DBClusterSnapshotNotFoundFault")));
        let list = listing(mixed(Place::TargetAccount));
        run_target(&ts::rds(&[&list, &gone]), &settings, &run).await.expect("gone is done");
        assert_eq!(gone.num_calls(), 2);

        let busy = mock!(Client::delete_db_cluster_snapshot).then_error(|| {
            DeleteDBClusterSnapshotError::generic(ts::meta("InvalidDBClusterSnapshotStateFault"))
        });
        let err = run_target(&ts::rds(&[&list, &busy]), &settings, &run).await.expect_err("busy");
        assert_eq!(err.asl_name(), "ResourceNotReady");
        assert!(err.is_retryable());
    }

    #[tokio::test]
    async fn a_failed_listing_deletes_nothing() {
        let settings = crate::settings::tests::target_settings();
        let throttled = mock!(Client::describe_db_cluster_snapshots)
            .then_error(|| DescribeDBClusterSnapshotsError::generic(ts::meta("ThrottlingException")));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let del = deletes(seen.clone());
        let err =
            run_target(&ts::rds(&[&throttled, &del]), &settings, &target_run(true)).await.expect_err("x");
        assert_eq!(err.asl_name(), "Throttled");
        assert_eq!(del.num_calls(), 0);
    }

    #[tokio::test]
    async fn bad_input_deletes_nothing() {
        let source = crate::settings::tests::source_settings();
        let target = crate::settings::tests::target_settings();
        let mut other_cluster = source_run();
        other_cluster.source_cluster_id = Some("payments".parse().expect("id"));
        let mut no_cluster = target_run(true);
        no_cluster.source_cluster_id = None;
        let mut renamed = target_run(true);
        renamed.target_snapshot_id = Some("hand-made-copy".parse().expect("id"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (list, del) = (listing(mixed(Place::SourceRegion)), deletes(seen.clone()));
        let rds = ts::rds(&[&list, &del]);
        let err = run_source(&rds, &rds, &source, &other_cluster).await.expect_err("cluster");
        assert!(err.to_string().contains("payments"), "{err}");
        for (case, run) in [("sourceClusterId", no_cluster), ("hand-made-copy", renamed)] {
            let err = run_target(&rds, &target, &run).await.expect_err(case);
            assert_eq!(err.asl_name(), "InvalidInput");
            assert!(err.to_string().contains(case), "{case}: {err}");
        }
        assert_eq!(list.num_calls() + del.num_calls(), 0);

        let mut failed = source_run();
        failed.failure = Some(crate::payload::Failure { error: "X".into(), cause: String::new() });
        for input in [
            serde_json::json!({"mode": "retention", "run": failed.to_value()}),
            serde_json::json!({"mode": "prune", "run": source_run().to_value()}),
            serde_json::json!({"mode": "retention"}),
            serde_json::json!({"mode": "retention", "run": source_run().to_value(), "keep": 1}),
        ] {
            let err = parse_input(input.clone()).expect_err("bad");
            assert_eq!(err.asl_name(), "InvalidInput", "{input}: {err}");
        }
    }

    /// Each side's ApplyRetention lists each place in its own region; any
    /// other kind of input is refused before a call.
    #[tokio::test]
    async fn handle_lists_each_place_in_its_region_and_refuses_other_input() {
        let input = serde_json::json!({"mode": "retention", "run": source_run().to_value()});
        let empty = "<DescribeDBClusterSnapshotsResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\">\
            <DescribeDBClusterSnapshotsResult><DBClusterSnapshots/></DescribeDBClusterSnapshotsResult>\
            </DescribeDBClusterSnapshotsResponse>";
        let recorder = ts::Recorder::replying([(200, empty), (200, empty)]);
        let out = handle(ts::source_context(&recorder), input).await.expect("ran");
        let sent = recorder.sent();
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert!(sent[0].uri.contains("rds.us-west-2."), "{sent:?}");
        assert!(sent[1].uri.contains("rds.us-west-1."), "{sent:?}");
        assert!(sent.iter().all(|s| s.body.contains("Action=DescribeDBClusterSnapshots")));
        assert_eq!(out["places"][0]["place"], "sourceRegion");

        let input = serde_json::json!({"mode": "retention", "run": target_run(true).to_value()});
        let recorder = ts::Recorder::replying([(200, empty)]);
        let out = handle(ts::target_context(&recorder), input).await.expect("ran");
        let sent = recorder.sent();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert!(sent[0].uri.contains("rds.us-west-1."), "{sent:?}");
        assert_eq!(out["places"][0]["place"], "targetAccount");

        let recorder = ts::Recorder::default();
        for input in
            [source_run().to_value(), serde_json::json!({"runId": "run-1", "failure": {"Error": "X"}})]
        {
            let err = handle(ts::source_context(&recorder), input).await.expect_err("not retention");
            assert_eq!(err.asl_name(), "InvalidInput", "{err}");
            assert!(err.to_string().contains("ApplyRetention takes a retention input"), "{err}");
        }
        assert!(recorder.sent().is_empty());
    }
}
