//! ApplyRetention (both sides): deletes aurora-dr's own old snapshots,
//! keeping the newest `RETAIN_SNAPSHOTS` and, with `RETAIN_DAYS`, every one
//! younger than that.
//!
//! # Where it runs
//! In a function of its own, whose role is the only one of a side that may
//! delete old snapshots. Its input names what the state asks for:
//!
//! | state (machine)                             | input `mode` | when                                   | places pruned (settings)                                           |
//! |---------------------------------------------|--------------|----------------------------------------|--------------------------------------------------------------------|
//! | ApplyRetention (source)                     | `retention`  | after the copy, also a failed one      | source region snapshots, target region copies (`source.retain_*`)  |
//! | ApplyRetention (target)                     | `retention`  | after Terminate                        | the target account's own copies and final snapshots (`target.retain_*`) |
//! | MakeRoom, MakeRoomAfterQuotaError (source)  | `makeRoom`   | before CreateSnapshot, when the snapshot quota is nearly used | as ApplyRetention (source), where room is short ([`super::make_room`]) |
//!
//! A state of its own (rather than a tail of Notify or Terminate) shows in the
//! execution history, has its own retries, and a failure is notified under
//! its own name: it never republishes the message or rolls back a swap. On
//! the source side it also runs after a failed copy: a snapshot was created
//! either way, and a schedule that keeps failing must not pile snapshots up
//! until the quota stops every run. A failed run leaves no copy in the target
//! region (CleanUpCopy deletes an unshared one), so the copies it ranks are
//! complete recovery points.
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
//! Final snapshots (target side): Terminate with `FINAL_SNAPSHOT` leaves
//! `{existing}-old-{stamp}-final` of each replaced DR cluster. One is the
//! tool's under the same rules (owned, manual, `managed-by=aurora-dr`,
//! `source-cluster=<this cluster>`) when its name is exactly that of this
//! cluster's pair, `stamp` being the run that replaced it. Finals are ranked
//! among themselves with the same `RETAIN_SNAPSHOTS` and `RETAIN_DAYS`: a
//! final holds what the DR cluster had when it was replaced, a recovery
//! point of its own kind, so finals never push copies out of the newest N,
//! nor copies finals.
//!
//! The rest are deleted (`DeleteDBClusterSnapshot`), each logged with its
//! reason. Output: a [`RetentionReport`] (the machines discard it with
//! `ResultPath: null`; it stays in the execution history).
//!
//! Errors: `InvalidInput` (not a retention input, a payload with `failure`,
//! `quotaReached` outside `makeRoom`, `makeRoom` on the target side,
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

/// The input of every state the function serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetentionInput {
    /// `retention` (ApplyRetention) or `makeRoom` (MakeRoom, MakeRoomAfterQuotaError).
    pub mode: String,
    pub run: RunState,
    /// `makeRoom` only: RDS has just refused the snapshot for the quota.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub quota_reached: bool,
}

/// What a state asks of the function.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// ApplyRetention: the run's retention.
    Retention(RunState),
    /// MakeRoom: retention first where the snapshot quota is short.
    MakeRoom { run: RunState, quota_reached: bool },
}

/// Parses the input, naming what is wrong.
pub fn parse_input(input: Value) -> DrResult<Request> {
    let parsed: RetentionInput = serde_json::from_value(input).map_err(|e| {
        DrError::invalid_input(format!(
            "retention input must be {{\"mode\": \"retention\" or \"makeRoom\", \"run\": <state payload>}}: {e}"
        ))
    })?;
    super::input::no_failure(&parsed.run, STATE)?;
    match parsed.mode.as_str() {
        MODE if parsed.quota_reached => {
            Err(DrError::invalid_input(format!("quotaReached belongs to mode {:?}", super::make_room::MODE)))
        }
        MODE => Ok(Request::Retention(parsed.run)),
        super::make_room::MODE => {
            Ok(Request::MakeRoom { run: parsed.run, quota_reached: parsed.quota_reached })
        }
        other => Err(DrError::invalid_input(format!(
            "mode {other:?} is neither {MODE:?} nor {:?}",
            super::make_room::MODE
        ))),
    }
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
    /// Target side: the existing cluster whose final snapshots
    /// (`{existing}-old-{stamp}-final`) are this cluster's too.
    pub finals_of: Option<ClusterId>,
}

impl Scope {
    /// A place of the source side (source account): this cluster's
    /// snapshots in `region`, `current` being this run's.
    pub fn source(
        settings: &SourceSettings,
        run: &RunState,
        place: Place,
        region: &Region,
        current: Vec<SnapshotId>,
    ) -> Self {
        Scope {
            place,
            account: settings.account_id.clone(),
            region: region.clone(),
            cluster: settings.cluster_id.clone(),
            prefix: settings.snapshot_prefix.clone(),
            run_id: run.run_id.to_string(),
            current,
            now: run.created_at,
            finals_of: None,
        }
    }
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
fn stamp_of(name: &str, scope: &Scope) -> Option<OffsetDateTime> {
    name_stamp(name, &scope.prefix, &scope.cluster)
}

fn name_stamp(name: &str, prefix: &str, cluster: &ClusterId) -> Option<OffsetDateTime> {
    let head = format!("{prefix}-{cluster}-").to_ascii_lowercase();
    parse_stamp(name.to_ascii_lowercase().strip_prefix(&head)?)
}

/// `yyyymmddHHMMss` as a UTC time.
pub(crate) fn parse_stamp(digits: &str) -> Option<OffsetDateTime> {
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

/// The run start time a final snapshot's name encodes, if `name` is
/// `{existing}-old-{yyyymmddHHMMss}-final` for the scope's existing cluster
/// (the old name cut to 63 characters as Swap cuts it).
fn final_stamp_of(name: &str, scope: &Scope) -> Option<OffsetDateTime> {
    let existing = scope.finals_of.as_ref()?;
    let lower = name.to_ascii_lowercase();
    let old = lower.strip_suffix("-final")?;
    let (_, digits) = old.rsplit_once("-old-")?;
    let at = parse_stamp(digits)?;
    let want = super::names::old_name(existing.as_str(), digits).to_ascii_lowercase();
    (old == want).then_some(at)
}

/// The kinds of snapshots the tool keeps apart: copies (and snapshots) of
/// the source cluster, and final snapshots of replaced DR clusters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Snapshot,
    Final,
}

/// The tool's snapshot of this cluster in this place, with its kind and
/// time; `None` for anything foreign.
fn ours(snap: &DbClusterSnapshot, scope: &Scope) -> Option<(Kind, OffsetDateTime)> {
    if !is_tool_snapshot(snap, &scope.account, &scope.cluster) {
        return None;
    }
    let name = snap.db_cluster_snapshot_identifier()?;
    match stamp_of(name, scope) {
        Some(at) => Some((Kind::Snapshot, at)),
        None => final_stamp_of(name, scope).map(|at| (Kind::Final, at)),
    }
}

/// When `snap` is one of the tool's snapshots of `cluster` in `account`
/// (see [`is_tool_snapshot`]) named `{prefix}-{cluster}-{stamp}`, the run
/// time its name encodes; `None` for anything else. The one rule retention,
/// `aurora-dr status` and `aurora-dr cleanup` share.
pub fn tool_snapshot_time(
    snap: &DbClusterSnapshot,
    account: &AccountId,
    cluster: &ClusterId,
    prefix: &str,
) -> Option<OffsetDateTime> {
    if !is_tool_snapshot(snap, account, cluster) {
        return None;
    }
    name_stamp(snap.db_cluster_snapshot_identifier()?, prefix, cluster)
}

/// A manual snapshot `account` owns, tagged `managed-by=aurora-dr` and
/// `source-cluster=<cluster>`.
fn is_tool_snapshot(snap: &DbClusterSnapshot, account: &AccountId, cluster: &ClusterId) -> bool {
    if snap.snapshot_type() != Some("manual") {
        return false;
    }
    let owned = snap
        .db_cluster_snapshot_arn()
        .map(|a| a.parse::<Arn>().ok().and_then(|a| a.account()).as_ref() == Some(account))
        .unwrap_or(true);
    let tags = snap.tag_list();
    let cluster_tag = rds::tag_value(tags, rds::TAG_SOURCE_CLUSTER);
    owned && rds::is_managed(tags) && cluster_tag.is_some_and(|c| c.eq_ignore_ascii_case(cluster.as_str()))
}

/// Decides, without calling AWS, which of `snapshots` to delete.
pub fn plan(snapshots: &[DbClusterSnapshot], scope: &Scope, retention: Retention) -> Plan {
    let mut plan = Plan { delete: Vec::new(), keep: Vec::new(), foreign: Vec::new() };
    // (kind, time, name, this run's): the available snapshots and this run's,
    // ranked below within their kind.
    let mut ranked: Vec<(Kind, OffsetDateTime, String, bool)> = Vec::new();
    for snap in snapshots {
        let name = snap.db_cluster_snapshot_identifier().unwrap_or_default().to_owned();
        let Some((kind, at)) = ours(snap, scope) else {
            plan.foreign.push(name);
            continue;
        };
        let current = rds::tag_value(snap.tag_list(), rds::TAG_RUN_ID) == Some(scope.run_id.as_str())
            || scope.current.iter().any(|c| c.as_str().eq_ignore_ascii_case(&name));
        let status = snap.status().unwrap_or("unknown");
        if current || status == "available" {
            ranked.push((kind, at, name, current));
        } else {
            plan.keep
                .push(Decision { snapshot: name, reason: format!("{status}, not available: never deleted") });
        }
    }
    // Per kind, newest first; names break ties so the order never depends on listing order.
    ranked.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| (&b.1, &b.2).cmp(&(&a.1, &a.2))));
    let keep_count = usize::try_from(retention.snapshots).unwrap_or(usize::MAX);
    let mut rank = 0;
    let mut kind_seen = None;
    for (kind, at, name, current) in ranked {
        if kind_seen != Some(kind) {
            (kind_seen, rank) = (Some(kind), 0);
        }
        rank += 1;
        let what = match kind {
            Kind::Snapshot => "",
            Kind::Final => " finals",
        };
        let age = scope.now - at;
        let young = retention.days.is_some_and(|d| age < time::Duration::days(i64::from(d)));
        let reason = if current {
            Some("this run's snapshot".to_owned())
        } else if rank <= keep_count {
            Some(format!("among the newest {}{what} (rank {rank})", retention.snapshots))
        } else if young {
            Some(format!("{} days old, younger than {} days", age.whole_days(), retention.days.unwrap_or(0)))
        } else {
            None
        };
        match reason {
            Some(reason) => plan.keep.push(Decision { snapshot: name, reason }),
            None => {
                let mut why = format!("not among the newest {}{what} (rank {rank})", retention.snapshots);
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
    // snapshot of the account once per cluster. Final snapshots carry their
    // old cluster's identifier, one per run, so a place that holds them is
    // listed whole. The plan still checks names and tags.
    let cluster = scope.finals_of.is_none().then_some(scope.cluster.as_str());
    let snapshots = rds::list_manual_cluster_snapshots(rds, cluster).await?;
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
    let current: Vec<SnapshotId> =
        [&run.source_snapshot_id, &run.target_snapshot_id].into_iter().flatten().cloned().collect();
    let scope = |place, region: &Region| Scope::source(settings, run, place, region, current.clone());
    let source = prune(rds, &scope(Place::SourceRegion, &settings.region), settings.retention).await?;
    let target =
        prune(target_rds, &scope(Place::TargetRegion, &settings.target_region), settings.retention).await?;
    Ok(RetentionReport { places: vec![source, target] })
}

/// Source side, many target regions: [`run_source`] in the first, then the
/// copies of each other region (`(region, client)` in `others`), so no
/// region's copies pile up.
pub async fn run_source_regions(
    rds: &Client,
    target_rds: &Client,
    others: &[(Region, Client)],
    settings: &SourceSettings,
    run: &RunState,
) -> DrResult<RetentionReport> {
    let mut report = run_source(rds, target_rds, settings, run).await?;
    for (region, client) in others {
        let settings = settings.for_region(region)?;
        let current: Vec<SnapshotId> = run.source_snapshot_id.iter().cloned().collect();
        let scope = Scope::source(&settings, run, Place::TargetRegion, region, current);
        report.places.push(prune(client, &scope, settings.retention).await?);
    }
    Ok(report)
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
        finals_of: Some(settings.existing_cluster_id.clone()),
    };
    Ok(RetentionReport { places: vec![prune(rds, &scope, settings.retention).await?] })
}

/// Lambda / local-engine entry of ApplyRetention (either side) and of
/// MakeRoom and MakeRoomAfterQuotaError (source side): the input's `mode`
/// says which ([`Request`]).
pub async fn handle(ctx: Arc<StepContext>, input: Value) -> DrResult<Value> {
    super::input::expect(&input, super::input::InputKind::Retention, STATE)?;
    let request = parse_input(input)?;
    let run = match &request {
        Request::Retention(run) | Request::MakeRoom { run, .. } => run,
    };
    match &ctx.settings {
        SideSettings::Source(s) => {
            // Many clusters: the payload's cluster, if it is a configured one.
            let s = &s.for_cluster(run.source_cluster_id.as_ref())?;
            let rds = ctx.aws.in_region(&s.region).rds();
            let target_rds = ctx.aws.in_region(&s.target_region).rds();
            // Many target regions: the copies in each of the others too.
            let others: Vec<(Region, Client)> = s
                .target_regions
                .iter()
                .filter(|r| r.region != s.target_region)
                .map(|r| (r.region.clone(), ctx.aws.in_region(&r.region).rds()))
                .collect();
            Ok(match &request {
                Request::Retention(run) => {
                    serde_json::to_value(run_source_regions(&rds, &target_rds, &others, s, run).await?)?
                }
                Request::MakeRoom { run, quota_reached } => serde_json::to_value(
                    super::make_room::run_regions(&rds, &target_rds, &others, s, run, *quota_reached).await?,
                )?,
            })
        }
        SideSettings::Target(t) => match &request {
            Request::Retention(run) => {
                // Many clusters: the names of the payload's pair (its final snapshots).
                let t = &t.for_source(run.source_cluster_id.as_ref().map(|c| c.as_str()))?;
                Ok(serde_json::to_value(run_target(&ctx.aws.in_region(&t.region).rds(), t, run).await?)?)
            }
            Request::MakeRoom { .. } => Err(DrError::invalid_input(
                "makeRoom is the source side's (before CreateSnapshot); the target side only applies retention",
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use aws_sdk_rds::operation::delete_db_cluster_snapshot::DeleteDBClusterSnapshotError;
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
            finals_of: None,
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

    /// The place a fixture snapshot was made for (by its ARN's account and region).
    fn place_of(snap: &DbClusterSnapshot) -> Place {
        let arn = snap.db_cluster_snapshot_arn().unwrap_or_default();
        PLACES
            .into_iter()
            .find(|p| arn.contains(&format!("{}:{}:", scope(*p).region, scope(*p).account)))
            .unwrap_or(Place::SourceRegion)
    }

    /// A final snapshot of the DR cluster a run `days_ago` days before this one replaced.
    fn final_at(days_ago: i64) -> String {
        let stamp = crate::payload::stamp(NOW - time::Duration::days(days_ago));
        format!("{}-final", crate::steps::names::old_name("orders-dr", &stamp))
    }

    fn target_scope() -> Scope {
        Scope { finals_of: Some("orders-dr".parse().expect("id")), ..scope(Place::TargetAccount) }
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

    #[test]
    fn final_snapshots_are_ranked_among_themselves() {
        let place = Place::TargetAccount;
        let mut all = vec![snap(place, CURRENT, "available", tool_tags("run-1"))];
        for d in 1..=3 {
            all.push(snap(place, &name_at(d, 0), "available", tool_tags(&format!("run-old-{d}"))));
            all.push(snap(place, &final_at(d), "available", tool_tags(&format!("run-old-{}", d + 1))));
        }
        let p = plan(&all, &target_scope(), keep(2, None));
        let mut kept = vec![CURRENT.to_owned(), name_at(1, 0), final_at(1), final_at(2)];
        kept.sort();
        assert_eq!(names(&p.keep), kept, "{p:?}");
        let mut gone = vec![name_at(2, 0), name_at(3, 0), final_at(3)];
        gone.sort();
        assert_eq!(names(&p.delete), gone, "{p:?}");
        assert!(
            p.keep
                .iter()
                .any(|d| d.snapshot == final_at(2) && d.reason == "among the newest 2 finals (rank 2)")
        );
        // Without the pair's existing name (the source side), a final is foreign.
        let p = plan(&all, &scope(place), keep(2, None));
        assert_eq!(p.foreign.len(), 3, "{p:?}");
    }

    #[test]
    fn only_this_pairs_tagged_finals_are_the_tools() {
        let place = Place::TargetAccount;
        let stamp = crate::payload::stamp(NOW - time::Duration::days(9));
        let foreign = [
            // Untagged (e.g. a final of a cluster deleted by hand).
            snap(place, &final_at(9), "available", Vec::new()),
            // Another pair's existing name.
            snap(place, &format!("billing-dr-old-{stamp}-final"), "available", tool_tags("run-x")),
            // Not a final of a replaced cluster.
            snap(place, &format!("orders-dr-{stamp}-final"), "available", tool_tags("run-x")),
            snap(place, &format!("orders-dr-old-{stamp}"), "available", tool_tags("run-x")),
            snap(place, &format!("orders-dr-old-{stamp}-final-2"), "available", tool_tags("run-x")),
        ];
        let mut all = foreign.to_vec();
        all.push(snap(place, &final_at(10), "available", tool_tags("run-y")));
        all.push(snap(place, &final_at(11), "available", tool_tags("run-z")));
        let p = plan(&all, &target_scope(), keep(1, None));
        assert_eq!(names(&p.delete), [final_at(11).as_str()], "{p:?}");
        assert_eq!(p.foreign.len(), foreign.len(), "{p:?}");
        // A final cut to fit 63 characters is still recognised.
        let long = "a-very-long-existing-dr-cluster-name-that-fills-the-limit";
        let scope = Scope { finals_of: Some(long.parse().expect("id")), ..target_scope() };
        let old = crate::steps::names::old_name(long, &stamp);
        assert!(old.len() <= 63 && !old.starts_with(long), "{old}");
        assert_eq!(final_stamp_of(&format!("{old}-final"), &scope), Some(NOW - time::Duration::days(9)));
    }

    // ---- against mocked RDS

    /// The listing of a place: the source side lists only the scope's cluster
    /// (a request without it matches no rule and fails the test); the target
    /// account, which also holds final snapshots named after old clusters,
    /// is listed whole.
    fn listing(snaps: Vec<DbClusterSnapshot>) -> Rule {
        let place = snaps.first().map(place_of).unwrap_or(Place::SourceRegion);
        let cluster = (place != Place::TargetAccount).then_some("orders");
        mock!(Client::describe_db_cluster_snapshots)
            .match_requests(move |r| {
                r.snapshot_type() == Some("manual") && r.db_cluster_identifier() == cluster
            })
            .then_output(move || {
                DescribeDbClusterSnapshotsOutput::builder()
                    .set_db_cluster_snapshots(Some(snaps.clone()))
                    .build()
            })
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
        let (list_s, del_s) = (listing(mixed(Place::SourceRegion)), ts::recording_deletes(in_source.clone()));
        let (list_t, del_t) = (listing(mixed(Place::TargetRegion)), ts::recording_deletes(in_target.clone()));
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

    /// Many target regions: every region's copies are pruned, each listed
    /// and deleted with that region's client and reported under its region.
    #[tokio::test]
    async fn the_source_side_prunes_the_copies_of_every_target_region() {
        let mut settings = crate::settings::tests::many_targets_settings();
        settings.retention = keep(1, None);
        let seen: Vec<Arc<Mutex<Vec<String>>>> = (0..3).map(|_| Arc::new(Mutex::new(Vec::new()))).collect();
        let (list_s, del_s) = (listing(mixed(Place::SourceRegion)), ts::recording_deletes(seen[0].clone()));
        let (list_t, del_t) = (listing(mixed(Place::TargetRegion)), ts::recording_deletes(seen[1].clone()));
        let (list_eu, del_eu) = (listing(mixed(Place::TargetRegion)), ts::recording_deletes(seen[2].clone()));
        let eu: Region = "eu-west-1".parse().expect("region");
        let report = run_source_regions(
            &ts::rds(&[&list_s, &del_s]),
            &ts::rds(&[&list_t, &del_t]),
            &[(eu, ts::rds(&[&list_eu, &del_eu]))],
            &settings,
            &source_run(),
        )
        .await
        .expect("pruned");
        let mut want = vec![name_at(1, 0), name_at(2, 0)];
        want.sort();
        for seen in &seen {
            let mut seen = seen.lock().expect("lock").clone();
            seen.sort();
            assert_eq!(seen, want);
        }
        let places: Vec<(Place, &str)> = report.places.iter().map(|p| (p.place, p.region.as_str())).collect();
        assert_eq!(
            places,
            [
                (Place::SourceRegion, "us-west-2"),
                (Place::TargetRegion, "us-west-1"),
                (Place::TargetRegion, "eu-west-1")
            ]
        );
    }

    #[tokio::test]
    async fn the_target_side_prunes_its_own_copies_and_final_snapshots() {
        let mut settings = crate::settings::tests::target_settings();
        settings.retention = keep(2, None);
        assert_eq!(settings.existing_cluster_id.as_str(), "orders-dr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut all = mixed(Place::TargetAccount);
        for d in 1..=3 {
            all.push(snap(Place::TargetAccount, &final_at(d), "available", tool_tags("run-f")));
        }
        let (list, del) = (listing(all), ts::recording_deletes(seen.clone()));
        let report =
            run_target(&ts::rds(&[&list, &del]), &settings, &target_run(true)).await.expect("pruned");
        let mut seen = seen.lock().expect("lock").clone();
        seen.sort();
        assert_eq!(seen, [name_at(2, 0), final_at(3)]);
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
        let (list, del) = (listing(leftovers), ts::recording_deletes(seen.clone()));
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
        let del = ts::recording_deletes(seen.clone());
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
        let (list, del) = (listing(mixed(Place::SourceRegion)), ts::recording_deletes(seen.clone()));
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
