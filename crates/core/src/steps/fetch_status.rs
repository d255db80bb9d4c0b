//! FetchStatus: one poll of the resource a state machine waits for.
//!
//! Input: `{"waitFor": <kind>, "run": <RunState>, "predict"?: <schedule>}`.
//! Output: `{"resource": <id or ARN>, "status": "available", "percentProgress"?: n}`
//! (the machines discard it with `ResultPath: null`). With `predict` (the
//! snapshot kinds: WaitForSourceSnapshot, WaitForTargetSnapshot,
//! WaitForOwnCopy), the output is a [`Poll`], ready or not: when not, the
//! seconds to wait before the next poll, predicted from `PercentProgress`
//! ([`crate::poll`]); the machine keeps it at `$.poll` and loops through a
//! Choice and a Wait (`SecondsPath`) back to the Task.
//!
//! | kind              | side   | client region | looks at                                             |
//! |-------------------|--------|---------------|------------------------------------------------------|
//! | `sourceSnapshot`  | source | source        | `sourceSnapshotId`                                   |
//! | `targetSnapshot`  | source | target        | `targetSnapshotId` (the copy, source account)        |
//! | `sharedSnapshot`  | target | target        | `targetSnapshotArn` among snapshots shared with us   |
//! | `ownCopy`         | target | target        | `ownSnapshotId` (target-owned encryption's copy)     |
//! | `tempCluster`     | target | target        | `restoredClusterId`                                  |
//! | `tempInstances`   | target | target        | every `restoredInstanceIds` entry                    |
//! | `existingCluster` | target | target        | the cluster under `existing_cluster_id`, its instances |
//! | `existingEndpoint`| target | target        | what the existing name's writer endpoint reaches (DNS) |
//!
//! Errors:
//! - `ResourceNotReady` (retryable) while a resource is in progress; the
//!   machine polls by `Retry` with backoff and a bounded number of attempts.
//!   With `predict`, only once the schedule's `boundSeconds` were waited
//!   (the state's Catch names it `Timeout`).
//! - `ResourceFailed` for `failed`, `incompatible-*` and the other terminal
//!   statuses of [`rds::classify_status`].
//! - `NotFound` when the resource does not exist; for `sharedSnapshot`:
//!   "snapshot <arn> is not shared with account <acct>".
//! - `InvalidInput` for a shared snapshot whose real `SnapshotCreateTime`
//!   (from RDS) lies in the future, or is earlier than the
//!   `snapshotCreatedAt` the message claimed: the message is never trusted
//!   for the recovery point (both beyond the clock skew InvokeStepFunction
//!   allows).
//! - `Conflict` when the cluster under the existing name is not the one this
//!   run restored (it lacks this run's tags), or one of the existing instance
//!   names belongs to another cluster.
//! - `InvalidInput` for an unknown kind, a malformed payload, a payload with
//!   `failure` (FetchStatus has no failure-path behaviour) or one that
//!   disagrees with the settings; `InvalidConfig` when the kind belongs to the
//!   other side.
//!
//! `existingCluster` treats a missing cluster or instance under the existing
//! names as not ready: right after Swap the renames may not have taken effect.
//!
//! `existingEndpoint` (WaitForNewEndpoint, after WaitForSwappedCluster and
//! before Terminate) asks the context's [`EndpointResolver`] what the existing
//! cluster's writer endpoint reaches: it is ready once that is the restored
//! cluster (its `DbClusterResourceId`), or, with addresses only (real DNS),
//! once none of them is an address of the previous cluster, whose renamed
//! `-old-` endpoint no cache can hold. A renamed endpoint resolves to the
//! renamed resource only minutes later and the old answer may stay cached
//! (RDS user guide, "Renaming a DB instance",
//! <https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_RenameInstance.html>);
//! until then it is `ResourceNotReady`, so Terminate never deletes a cluster
//! the existing name still reaches.
//!
//! With `taskToken` (the callback waits WaitForTempCluster,
//! WaitForTempInstances and WaitForSwappedCluster, `lambda:invoke.waitForTaskToken`)
//! FetchStatus arms the wait ([`arm`]): it stores the token for every
//! resource the wait watches ([`crate::wait_tokens`], `WAIT_TOKENS_TABLE`),
//! then checks once. Ready: it sends SendTaskSuccess itself; beyond repair:
//! SendTaskFailure with the error and cause the plain poll fails with; not
//! ready: it returns, and an RDS event (CompleteWait) or the state's
//! `TimeoutSeconds` (a `States.Timeout` retry re-arms) ends the wait.
//! Storing before checking closes the race with an event that came before
//! the token was stored. Throttling and an unreachable service stay errors
//! of the invocation, which the state's Lambda-error `Retry` retries.
//!
//! Idempotency: read-only, except that arming overwrites the wait's items.

use std::sync::Arc;

use aws_sdk_rds::Client;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::context::StepContext;
use crate::error::{DrError, DrResult};
use crate::ids::InstanceId;
use crate::payload::{RunState, agrees, need};
use crate::poll::{self, Poll, Schedule};
use crate::rds::{self, Progress};
use crate::resolve::{self, EndpointResolver, Reach};
use crate::settings::{SourceSettings, TargetSettings, keys};
use crate::steps::complete_wait::{self, Settled};
use crate::steps::input::{self, InputKind};
use crate::wait_tokens::{self, WaitToken, WaitTokens};

/// The states this module serves: every wait of both machines.
pub const STATES: [&str; 8] = [
    "WaitForSourceSnapshot",
    "WaitForTargetSnapshot",
    "WaitForSharedSnapshot",
    "WaitForOwnCopy",
    "WaitForTempCluster",
    "WaitForTempInstances",
    "WaitForSwappedCluster",
    "WaitForNewEndpoint",
];

const STEP: &str = "fetch_status";

/// What to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WaitFor {
    SourceSnapshot,
    TargetSnapshot,
    SharedSnapshot,
    OwnCopy,
    TempCluster,
    TempInstances,
    ExistingCluster,
    ExistingEndpoint,
}

impl WaitFor {
    /// Whether the source side polls this kind (else the target side).
    pub fn on_source_side(self) -> bool {
        matches!(self, Self::SourceSnapshot | Self::TargetSnapshot)
    }

    /// Whether RDS reports a progress figure for this kind (a cluster
    /// snapshot's `PercentProgress`), so its wait may be predicted.
    pub fn has_progress(self) -> bool {
        matches!(self, Self::SourceSnapshot | Self::TargetSnapshot | Self::SharedSnapshot | Self::OwnCopy)
    }

    /// The kind as the input names it.
    pub fn name(self) -> &'static str {
        match self {
            Self::SourceSnapshot => "sourceSnapshot",
            Self::TargetSnapshot => "targetSnapshot",
            Self::SharedSnapshot => "sharedSnapshot",
            Self::OwnCopy => "ownCopy",
            Self::TempCluster => "tempCluster",
            Self::TempInstances => "tempInstances",
            Self::ExistingCluster => "existingCluster",
            Self::ExistingEndpoint => "existingEndpoint",
        }
    }
}

/// The step's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FetchStatusInput {
    pub wait_for: WaitFor,
    pub run: RunState,
    /// A predicted wait (snapshot kinds only; see [`crate::poll`]): the
    /// output is a [`Poll`], ready or not, and only the bound fails
    /// `ResourceNotReady`. Without it, not ready fails `ResourceNotReady`
    /// and the state's Retry polls again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predict: Option<Schedule>,
    /// A callback wait's `$$.Task.Token` ([`arm`]): the kinds without a
    /// progress figure on the target side (WaitForTempCluster,
    /// WaitForTempInstances, WaitForSwappedCluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_token: Option<String>,
}

/// The step's output when the resource is ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceStatus {
    pub resource: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent_progress: Option<i32>,
}

/// The settings of the side a kind belongs to.
#[derive(Debug, Clone, Copy)]
pub enum SideSettingsRef<'a> {
    Source(&'a SourceSettings),
    Target(&'a TargetSettings),
}

/// Parses the input, naming what is wrong.
pub fn parse_input(input: Value) -> DrResult<FetchStatusInput> {
    serde_json::from_value(input).map_err(|e| {
        DrError::invalid_input(format!(
            "FetchStatus input must be {{\"waitFor\": sourceSnapshot|targetSnapshot|sharedSnapshot|\
             ownCopy|tempCluster|tempInstances|existingCluster|existingEndpoint, \"run\": <state payload>, \"predict\"?: {{\"boundSeconds\", \"intervalSeconds\", \"backoffRate\", \"maxDelaySeconds\"}}, \"taskToken\"?: <$$.Task.Token>}}: {e}"
        ))
    })
}

/// One poll. `rds` must call the region the kind lives in (see the module
/// doc); `resolver` answers `existingEndpoint`.
pub async fn run(
    rds: &Client,
    resolver: &dyn EndpointResolver,
    side: SideSettingsRef<'_>,
    input: FetchStatusInput,
) -> DrResult<ResourceStatus> {
    let result = observe(rds, resolver, side, &input).await.and_then(|seen| match &seen.what {
        Some(what) => rds::require_ready(what, &seen.status.status).map(|()| seen.status),
        None => Ok(seen.status),
    });
    match &result {
        Ok(s) => tracing::info!(step = STEP, run_id = %input.run.run_id, wait_for = ?input.wait_for,
            resource = %s.resource, status = %s.status, "ready"),
        Err(e) => tracing::info!(step = STEP, run_id = %input.run.run_id, wait_for = ?input.wait_for,
            error_type = e.asl_name(), error = %e, "not ready"),
    }
    result
}

/// One poll of a predicted wait (see [`crate::poll`]): ready, or not ready
/// with the seconds to wait before the next poll; `ResourceNotReady` once
/// the schedule's bound is reached.
pub async fn poll(
    rds: &Client,
    resolver: &dyn EndpointResolver,
    side: SideSettingsRef<'_>,
    input: FetchStatusInput,
    schedule: &Schedule,
) -> DrResult<Poll> {
    schedule.check().map_err(DrError::invalid_input)?;
    let kind = input.wait_for;
    if !kind.has_progress() {
        return Err(DrError::invalid_input(format!(
            "FetchStatus: waitFor {} has no progress figure to predict from; poll it without `predict`",
            kind.name()
        )));
    }
    let prev = input.run.poll.as_ref().filter(|p| p.continues(kind.name()));
    let waited = prev.map(Poll::waited_at_next).unwrap_or(0);
    let polls = prev.map(|p| p.polls).unwrap_or(0) + 1;
    let seen = observe(rds, resolver, side, &input).await?;
    let status = seen.status;
    let what = seen.what.unwrap_or_else(|| status.resource.clone());
    let done = Poll {
        wait_for: Some(kind.name().to_owned()),
        resource: status.resource.clone(),
        status: status.status.clone(),
        percent_progress: status.percent_progress,
        waited,
        polls,
        ..Poll::default()
    };
    let run_id = &input.run.run_id;
    match rds::require_ready(&what, &status.status) {
        Ok(()) => {
            tracing::info!(step = STEP, run_id = %run_id, wait_for = ?kind, resource = %status.resource,
                status = %status.status, waited, polls, "ready");
            Ok(Poll { ready: true, ..done })
        }
        Err(DrError::NotReady { .. }) => match poll::next(schedule, prev, waited, status.percent_progress) {
            poll::Next::GiveUp => {
                let percent = status.percent_progress.map(|p| format!(" at {p} %")).unwrap_or_default();
                let err = DrError::not_ready(
                    format!(
                        "{}{percent} after {waited} s of polling ({polls} polls, the bound is {} s)",
                        what, schedule.bound_seconds
                    ),
                    status.status,
                );
                tracing::info!(step = STEP, run_id = %run_id, wait_for = ?kind, error = %err, "gave up");
                Err(err)
            }
            poll::Next::Wait { seconds, anchor, expect_ready, overdue } => {
                tracing::info!(step = STEP, run_id = %run_id, wait_for = ?kind, resource = %status.resource,
                    status = %status.status, percent = ?status.percent_progress, waited, next_seconds = seconds,
                    expect_ready, overdue, "not ready");
                Ok(Poll { seconds, anchor, expect_ready, overdue, ..done })
            }
        },
        Err(e) => {
            tracing::info!(step = STEP, run_id = %run_id, wait_for = ?kind, error_type = e.asl_name(),
                error = %e, "failed");
            Err(e)
        }
    }
}

/// What one poll saw: for the snapshot kinds the status as RDS reports it
/// (the caller judges it, naming the resource `what`); for the other kinds
/// (`what` None) the resource is ready, or the error says why not.
struct Observed {
    what: Option<String>,
    status: ResourceStatus,
}

async fn observe(
    rds: &Client,
    resolver: &dyn EndpointResolver,
    side: SideSettingsRef<'_>,
    input: &FetchStatusInput,
) -> DrResult<Observed> {
    let run = &input.run;
    input::no_failure(run, "FetchStatus")?;
    let checked = |s: DrResult<ResourceStatus>| s.map(|status| Observed { what: None, status });
    match (input.wait_for, side) {
        (WaitFor::SourceSnapshot, SideSettingsRef::Source(s)) => source_snapshot(rds, s, run).await,
        (WaitFor::TargetSnapshot, SideSettingsRef::Source(s)) => target_snapshot(rds, s, run).await,
        (WaitFor::SharedSnapshot, SideSettingsRef::Target(t)) => shared_snapshot(rds, t, run).await,
        (WaitFor::OwnCopy, SideSettingsRef::Target(t)) => own_copy(rds, t, run).await,
        (WaitFor::TempCluster, SideSettingsRef::Target(_)) => checked(temp_cluster(rds, run).await),
        (WaitFor::TempInstances, SideSettingsRef::Target(_)) => checked(temp_instances(rds, run).await),
        (WaitFor::ExistingCluster, SideSettingsRef::Target(t)) => {
            checked(existing_cluster(rds, t, run).await)
        }
        (WaitFor::ExistingEndpoint, SideSettingsRef::Target(t)) => {
            checked(existing_endpoint(rds, resolver, t, run).await)
        }
        (kind, _) => Err(DrError::InvalidConfig {
            name: "SIDE".into(),
            problem: format!(
                "waitFor {kind:?} runs on the {} side",
                if kind.on_source_side() { "source" } else { "target" }
            ),
        }),
    }
}

/// The untyped entry: picks the side's settings and the region's client.
pub async fn handle(ctx: Arc<StepContext>, input: Value) -> DrResult<Value> {
    input::expect(&input, InputKind::Run, "a Wait* state")?;
    let input = parse_input(input)?;
    let predict = input.predict;
    if input.task_token.is_some() {
        let source = input.run.source_cluster_id.as_ref().map(|c| c.as_str());
        let settings = &ctx.target()?.for_run(source, input.run.is_restore_test())?;
        let store = wait_tokens::DynamoWaitTokens::new(ctx.aws.dynamodb(), table_of(settings)?);
        let armed =
            arm(&ctx.aws.rds(), &ctx.aws.sfn(), &store, ctx.resolver.as_ref(), settings, input, now_epoch())
                .await?;
        return Ok(serde_json::to_value(armed)?);
    }
    let status = if input.wait_for.on_source_side() {
        // Many target regions: the copy in the payload's region.
        let settings = &ctx.source()?.for_run_region(input.run.target_region.as_ref())?;
        let rds = if input.wait_for == WaitFor::TargetSnapshot {
            ctx.aws.in_region(&settings.target_region).rds()
        } else {
            ctx.aws.rds()
        };
        answer(&rds, ctx.resolver.as_ref(), SideSettingsRef::Source(settings), input, predict).await?
    } else {
        // Many clusters: the names of the payload's source cluster's pair.
        let source = input.run.source_cluster_id.as_ref().map(|c| c.as_str());
        let settings = &ctx.target()?.for_run(source, input.run.is_restore_test())?;
        answer(&ctx.aws.rds(), ctx.resolver.as_ref(), SideSettingsRef::Target(settings), input, predict)
            .await?
    };
    Ok(status)
}

/// A predicted wait's [`Poll`], or a plain poll's [`ResourceStatus`].
async fn answer(
    rds: &Client,
    resolver: &dyn EndpointResolver,
    side: SideSettingsRef<'_>,
    input: FetchStatusInput,
    predict: Option<Schedule>,
) -> DrResult<Value> {
    Ok(match predict {
        Some(schedule) => serde_json::to_value(poll(rds, resolver, side, input, &schedule).await?)?,
        None => serde_json::to_value(run(rds, resolver, side, input).await?)?,
    })
}

/// What arming a callback wait did: the partition keys it stored the token
/// under and how the first check ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Armed {
    pub watching: Vec<String>,
    pub outcome: Settled,
}

/// The current epoch seconds (the items' time to live counts from it).
pub fn now_epoch() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The table of the task tokens, or the named configuration error.
pub fn table_of(settings: &TargetSettings) -> DrResult<&str> {
    settings.wait_tokens_table.as_deref().ok_or_else(|| DrError::InvalidConfig {
        name: keys::WAIT_TOKENS_TABLE.env.into(),
        problem: "is required by the callback waits (WaitForTempCluster, WaitForTempInstances, \
                  WaitForSwappedCluster): the DynamoDB table that keeps their task tokens"
            .into(),
    })
}

/// The partition keys a callback wait of `kind` watches: the resources
/// whose RDS events may end it. For the swapped cluster both names of the
/// cluster and of each instance: the RDS user guide does not say whether
/// the events of a rename carry the old or the new identifier
/// ("Renaming a DB instance", USER_RenameInstance.html; "Amazon RDS event
/// categories and event messages", USER_Events.Messages.html).
pub fn watched(kind: WaitFor, settings: &TargetSettings, run: &RunState) -> DrResult<Vec<String>> {
    let mut keys = match kind {
        WaitFor::TempCluster => {
            vec![wait_tokens::cluster_key(need(&run.restored_cluster_id, "restoredClusterId")?.as_str())]
        }
        WaitFor::TempInstances => {
            if run.restored_instance_ids.is_empty() {
                return Err(DrError::invalid_input(
                    "state payload lacks `restoredInstanceIds`, set by an earlier step",
                ));
            }
            run.restored_instance_ids.iter().map(|i| wait_tokens::instance_key(i.as_str())).collect()
        }
        WaitFor::ExistingCluster => {
            let mut keys = vec![wait_tokens::cluster_key(settings.existing_cluster_id.as_str())];
            if let Some(t) = &run.restored_cluster_id {
                keys.push(wait_tokens::cluster_key(t.as_str()));
            }
            let existing = match &run.swap {
                Some(swap) if !swap.existing_instance_ids.is_empty() => swap.existing_instance_ids.clone(),
                _ => settings.existing_instance_ids(),
            };
            keys.extend(existing.iter().map(|i| wait_tokens::instance_key(i.as_str())));
            keys.extend(run.restored_instance_ids.iter().map(|i| wait_tokens::instance_key(i.as_str())));
            keys
        }
        other => {
            return Err(DrError::invalid_input(format!(
                "FetchStatus: waitFor {} is not a callback wait (taskToken is for tempCluster, tempInstances \
                 and existingCluster)",
                other.name()
            )));
        }
    };
    keys.dedup();
    Ok(keys)
}

/// Arms a callback wait (see the module doc): stores `input.task_token`
/// under every resource of [`watched`], then checks once and settles the
/// token when the check is conclusive.
pub async fn arm(
    rds: &Client,
    sfn: &aws_sdk_sfn::Client,
    store: &dyn WaitTokens,
    resolver: &dyn EndpointResolver,
    settings: &TargetSettings,
    mut input: FetchStatusInput,
    now: i64,
) -> DrResult<Armed> {
    let token = input.task_token.take().ok_or_else(|| DrError::invalid_input("arming needs `taskToken`"))?;
    if input.predict.is_some() {
        return Err(DrError::invalid_input("FetchStatus: a callback wait (taskToken) takes no `predict`"));
    }
    input::no_failure(&input.run, "FetchStatus")?;
    let kind = input.wait_for;
    let resources = watched(kind, settings, &input.run)?;
    let run_text = serde_json::to_string(&input.run.to_value())?;
    for resource in &resources {
        let item = WaitToken {
            resource: resource.clone(),
            wait_for: kind.name().to_owned(),
            token: token.clone(),
            run: run_text.clone(),
            resources: resources.clone(),
            expires_at: now + wait_tokens::KEEP_SECONDS,
        };
        store.put(&item).await?;
    }
    let checked = run(rds, resolver, SideSettingsRef::Target(settings), input.clone()).await;
    let outcome = complete_wait::settle(sfn, store, &resources, kind.name(), &token, checked).await?;
    tracing::info!(step = STEP, run_id = %input.run.run_id, wait_for = ?kind, watching = ?resources,
        outcome = ?outcome, "armed");
    Ok(Armed { watching: resources, outcome })
}

fn ready(resource: impl Into<String>, status: &str, percent: Option<i32>) -> ResourceStatus {
    ResourceStatus { resource: resource.into(), status: status.to_owned(), percent_progress: percent }
}

async fn source_snapshot(rds: &Client, settings: &SourceSettings, run: &RunState) -> DrResult<Observed> {
    if let Some(c) = &run.source_cluster_id
        && !settings.serves(c.as_str())
    {
        return Err(DrError::invalid_input(format!(
            "payload names source cluster {c}, but this deployment serves {}",
            settings.cluster_ids.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
        )));
    }
    let id = need(&run.source_snapshot_id, "sourceSnapshotId")?;
    let snap = rds::find_cluster_snapshot(rds, id.as_str(), false).await?.ok_or_else(|| {
        DrError::NotFound(format!(
            "snapshot {id} does not exist in account {} region {}",
            settings.account_id, settings.region
        ))
    })?;
    snapshot_status(&format!("snapshot {id}"), id.as_str(), &snap)
}

async fn target_snapshot(rds: &Client, settings: &SourceSettings, run: &RunState) -> DrResult<Observed> {
    agrees(run.target_region.as_ref(), &settings.target_region, "target region", "copies to")?;
    let id = need(&run.target_snapshot_id, "targetSnapshotId")?;
    let snap = rds::find_cluster_snapshot(rds, id.as_str(), false).await?.ok_or_else(|| {
        DrError::NotFound(format!(
            "snapshot copy {id} does not exist in account {} region {}",
            settings.account_id, settings.target_region
        ))
    })?;
    snapshot_status(&format!("snapshot copy {id}"), id.as_str(), &snap)
}

async fn shared_snapshot(rds: &Client, settings: &TargetSettings, run: &RunState) -> DrResult<Observed> {
    let arn = need(&run.target_snapshot_arn, "targetSnapshotArn")?;
    arn.expect_kind("rds", "cluster-snapshot:")
        .map_err(|e| DrError::invalid_input(format!("targetSnapshotArn {e}")))?;
    if arn.account().as_ref() != Some(&settings.source_account_id) {
        return Err(DrError::invalid_input(format!(
            "targetSnapshotArn {arn} is not owned by the configured source account {} ({})",
            settings.source_account_id,
            keys::SOURCE_ACCOUNT_ID.env
        )));
    }
    if arn.region().as_ref() != Some(&settings.region) {
        return Err(DrError::invalid_input(format!(
            "targetSnapshotArn {arn} is not in this region {}",
            settings.region
        )));
    }
    let snap = rds::find_cluster_snapshot(rds, arn.as_str(), true).await?.ok_or_else(|| {
        DrError::NotFound(format!("snapshot {arn} is not shared with account {}", settings.account_id))
    })?;
    check_creation_time(arn.as_str(), &snap, run, time::OffsetDateTime::now_utc())?;
    snapshot_status(&format!("shared snapshot {arn}"), arn.as_str(), &snap)
}

/// The shared snapshot's real creation time against the clock and against
/// what the message claimed (see the module doc).
fn check_creation_time(
    arn: &str,
    snap: &aws_sdk_rds::types::DbClusterSnapshot,
    run: &RunState,
    now: time::OffsetDateTime,
) -> DrResult<()> {
    use crate::steps::invoke_step_function::CLOCK_SKEW;
    let Some(created) = snap.snapshot_create_time() else {
        return Ok(()); // still being created: RDS sets it once the snapshot starts
    };
    let created = time::OffsetDateTime::from_unix_timestamp(created.secs())
        .map_err(|e| DrError::invalid_input(format!("shared snapshot {arn}: SnapshotCreateTime {e}")))?;
    if created > now + CLOCK_SKEW {
        return Err(DrError::invalid_input(format!(
            "shared snapshot {arn} has SnapshotCreateTime {created}, in the future (now {now})"
        )));
    }
    if let Some(claimed) = run.snapshot_created_at
        && claimed > created + CLOCK_SKEW
    {
        return Err(DrError::invalid_input(format!(
            "the message claims snapshotCreatedAt {claimed} for {arn}, later than its SnapshotCreateTime \
             {created} in RDS"
        )));
    }
    Ok(())
}

async fn own_copy(rds: &Client, settings: &TargetSettings, run: &RunState) -> DrResult<Observed> {
    let id = need(&run.own_snapshot_id, "ownSnapshotId")?;
    let snap = rds::find_cluster_snapshot(rds, id.as_str(), false).await?.ok_or_else(|| {
        DrError::NotFound(format!(
            "own copy {id} does not exist in account {} region {}",
            settings.account_id, settings.region
        ))
    })?;
    snapshot_status(&format!("own copy {id}"), id.as_str(), &snap)
}

fn snapshot_status(
    what: &str,
    resource: &str,
    snap: &aws_sdk_rds::types::DbClusterSnapshot,
) -> DrResult<Observed> {
    let status = snap.status().unwrap_or("unknown");
    Ok(Observed { what: Some(what.to_owned()), status: ready(resource, status, snap.percent_progress()) })
}

async fn temp_cluster(rds: &Client, run: &RunState) -> DrResult<ResourceStatus> {
    let id = need(&run.restored_cluster_id, "restoredClusterId")?;
    let cluster = rds::find_cluster(rds, id.as_str())
        .await?
        .ok_or_else(|| DrError::NotFound(format!("temporary cluster {id} does not exist")))?;
    let status = cluster.status().unwrap_or("unknown");
    rds::require_ready(&format!("temporary cluster {id}"), status)?;
    Ok(ready(id.as_str(), status, None))
}

async fn temp_instances(rds: &Client, run: &RunState) -> DrResult<ResourceStatus> {
    if run.restored_instance_ids.is_empty() {
        return Err(DrError::invalid_input(
            "state payload lacks `restoredInstanceIds`, set by an earlier step",
        ));
    }
    let mut statuses = Vec::new();
    for id in &run.restored_instance_ids {
        let instance = rds::find_instance(rds, id.as_str())
            .await?
            .ok_or_else(|| DrError::NotFound(format!("temporary instance {id} does not exist")))?;
        statuses.push((
            format!("temporary instance {id}"),
            instance.db_instance_status().unwrap_or("unknown").to_owned(),
        ));
    }
    all_ready(&statuses)?;
    Ok(ready(join(&run.restored_instance_ids), "available", None))
}

/// A failed member ends the wait even while another is still in progress.
fn all_ready(statuses: &[(String, String)]) -> DrResult<()> {
    let failed = statuses.iter().find(|(_, s)| rds::classify_status(s) == Progress::Failed);
    if let Some((what, status)) =
        failed.or_else(|| statuses.iter().find(|(_, s)| rds::classify_status(s) != Progress::Ready))
    {
        rds::require_ready(what, status)?;
    }
    Ok(())
}

fn join(ids: &[InstanceId]) -> String {
    ids.iter().map(InstanceId::as_str).collect::<Vec<_>>().join(",")
}

/// The cluster under the existing name, which must be the one this run
/// restored (not ready while the rename has not taken effect).
async fn swapped_cluster<'a>(
    rds: &Client,
    settings: &'a TargetSettings,
    run: &'a RunState,
) -> DrResult<(&'a crate::ids::ClusterId, aws_sdk_rds::types::DbCluster)> {
    let id = run.swap.as_ref().map(|s| &s.existing_cluster_id).unwrap_or(&settings.existing_cluster_id);
    if !id.as_str().eq_ignore_ascii_case(settings.existing_cluster_id.as_str()) {
        return Err(DrError::invalid_input(format!(
            "swap record names existing cluster {id}, but {} is {}",
            keys::EXISTING_CLUSTER_ID.env,
            settings.existing_cluster_id
        )));
    }
    let Some(cluster) = rds::find_cluster(rds, id.as_str()).await? else {
        return Err(DrError::not_ready(
            format!("cluster {id} (the restored cluster being renamed)"),
            "renaming",
        ));
    };
    if !rds::is_from_run(cluster.tag_list(), run) {
        return Err(DrError::Conflict(format!(
            "cluster {id} does not carry run {}'s tags: it is not the cluster this run restored",
            run.run_id
        )));
    }
    Ok((id, cluster))
}

async fn existing_endpoint(
    rds: &Client,
    resolver: &dyn EndpointResolver,
    settings: &TargetSettings,
    run: &RunState,
) -> DrResult<ResourceStatus> {
    let (id, cluster) = swapped_cluster(rds, settings, run).await?;
    let new_resource = cluster.db_cluster_resource_id().unwrap_or_default();
    let Some(host) = cluster.endpoint().filter(|h| !h.is_empty()) else {
        return Err(DrError::not_ready(format!("writer endpoint of cluster {id}"), "not yet published"));
    };
    let existing = resolver.reach(host).await;
    // The previous cluster, under the name Swap gave it (none on a first run,
    // or once it is gone).
    let mut previous = None;
    if let Some(old_id) = run.swap.as_ref().and_then(|s| s.old_cluster_id.as_ref()) {
        let old = rds::find_cluster(rds, old_id.as_str()).await?;
        if let Some(old_host) = old.as_ref().and_then(|c| c.endpoint()).filter(|h| !h.is_empty()) {
            previous = Some(resolver.reach(old_host).await);
        } else if old.is_some() {
            previous = Some(Reach::Nothing);
        }
    }
    match resolve::moved(&existing, new_resource, previous.as_ref()) {
        Ok(()) => Ok(ready(host, "resolves to the restored cluster", None)),
        Err(why) => Err(DrError::not_ready(format!("endpoint {host} of cluster {id}"), why)),
    }
}

async fn existing_cluster(
    rds: &Client,
    settings: &TargetSettings,
    run: &RunState,
) -> DrResult<ResourceStatus> {
    let (id, cluster) = swapped_cluster(rds, settings, run).await?;
    let mut statuses = vec![(format!("cluster {id}"), cluster.status().unwrap_or("unknown").to_owned())];
    let instance_ids = match &run.swap {
        Some(swap) if !swap.existing_instance_ids.is_empty() => swap.existing_instance_ids.clone(),
        _ => settings.existing_instance_ids(),
    };
    for iid in &instance_ids {
        let Some(instance) = rds::find_instance(rds, iid.as_str()).await? else {
            statuses.push((format!("instance {iid} (being renamed)"), "renaming".into()));
            continue;
        };
        let owner = instance.db_cluster_identifier().unwrap_or_default();
        if !owner.eq_ignore_ascii_case(id.as_str()) {
            return Err(DrError::Conflict(format!(
                "instance {iid} belongs to cluster {owner:?}, not to {id}"
            )));
        }
        statuses
            .push((format!("instance {iid}"), instance.db_instance_status().unwrap_or("unknown").to_owned()));
    }
    all_ready(&statuses)?;
    Ok(ready(id.as_str(), "available", None))
}

#[cfg(test)]
mod tests {
    use aws_sdk_rds::Client;
    use aws_sdk_rds::operation::describe_db_cluster_snapshots::{
        DescribeDBClusterSnapshotsError, DescribeDbClusterSnapshotsInput, DescribeDbClusterSnapshotsOutput,
    };
    use aws_sdk_rds::operation::describe_db_clusters::{DescribeDBClustersError, DescribeDbClustersOutput};
    use aws_sdk_rds::operation::describe_db_instances::{
        DescribeDBInstancesError, DescribeDbInstancesOutput,
    };
    use aws_sdk_rds::types::{DbCluster, DbClusterSnapshot, DbInstance};
    use aws_smithy_mocks::{Rule, mock};
    use serde_json::json;
    use std::sync::Mutex;

    use super::*;
    use crate::payload::SwapRecord;
    use crate::payload::tests::finished_source_run;
    use crate::resolve::SystemDns;
    use crate::settings::tests::{source_settings, target_settings};
    use crate::steps::target_support as ts_target;
    use crate::steps::test_support::{self as ts, SNAPSHOT_ID, TARGET_SNAPSHOT_ARN};

    fn snapshots(snap: Option<DbClusterSnapshot>) -> Rule {
        mock!(Client::describe_db_cluster_snapshots).then_output(move || {
            DescribeDbClusterSnapshotsOutput::builder()
                .set_db_cluster_snapshots(snap.clone().map(|s| vec![s]))
                .build()
        })
    }

    fn clusters(c: DbCluster) -> Rule {
        mock!(Client::describe_db_clusters)
            .then_output(move || DescribeDbClustersOutput::builder().db_clusters(c.clone()).build())
    }

    fn cluster_missing() -> Rule {
        mock!(Client::describe_db_clusters)
            .then_error(|| DescribeDBClustersError::generic(ts::meta("DBClusterNotFoundFault")))
    }

    /// Instances by id; ids not in `known` are not found.
    fn instances(known: Vec<DbInstance>) -> Rule {
        mock!(Client::describe_db_instances).then_compute_response(move |req| {
            let want = req.db_instance_identifier().unwrap_or_default();
            match known.iter().find(|i| i.db_instance_identifier() == Some(want)) {
                Some(i) => aws_smithy_mocks::MockResponse::Output(
                    DescribeDbInstancesOutput::builder().db_instances(i.clone()).build(),
                ),
                None => aws_smithy_mocks::MockResponse::Error(DescribeDBInstancesError::generic(ts::meta(
                    "DBInstanceNotFound",
                ))),
            }
        })
    }

    fn with_progress(mut s: DbClusterSnapshot, pct: i32) -> DbClusterSnapshot {
        s.percent_progress = Some(pct);
        s
    }

    fn input(kind: WaitFor, run: RunState) -> FetchStatusInput {
        FetchStatusInput { wait_for: kind, run, predict: None, task_token: None }
    }

    fn target_run() -> RunState {
        let mut run = finished_source_run();
        run.restored_cluster_id = Some("orders-dr-next".parse().expect("id"));
        run.restored_instance_ids =
            vec!["orders-dr-next-1".parse().expect("id"), "orders-dr-next-1-2".parse().expect("id")];
        run
    }

    async fn poll_source(rule: &Rule, kind: WaitFor) -> DrResult<ResourceStatus> {
        let rds = ts::rds(&[rule]);
        run(&rds, &SystemDns, SideSettingsRef::Source(&source_settings()), input(kind, finished_source_run()))
            .await
    }

    async fn poll_target(rules: &[&Rule], kind: WaitFor, run_state: RunState) -> DrResult<ResourceStatus> {
        let rds = ts::rds(rules);
        run(&rds, &SystemDns, SideSettingsRef::Target(&target_settings()), input(kind, run_state)).await
    }

    fn name(r: DrResult<ResourceStatus>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err(e) => e.asl_name(),
        }
    }

    const COPY_SCHEDULE: Schedule =
        Schedule { bound_seconds: 43_200, interval_seconds: 30, backoff_rate: 1.5, max_delay_seconds: 180 };

    /// One predicted poll of the copy, which reads `status` at `pct`, after `prev`.
    async fn poll_copy(status: &str, pct: Option<i32>, prev: Option<Poll>) -> DrResult<Poll> {
        let mut snap = ts::copy(status);
        snap.percent_progress = pct;
        let rule = snapshots(Some(snap));
        let rds = ts::rds(&[&rule]);
        let mut run_state = finished_source_run();
        run_state.poll = prev;
        let mut input = input(WaitFor::TargetSnapshot, run_state);
        input.predict = Some(COPY_SCHEDULE);
        poll(&rds, &SystemDns, SideSettingsRef::Source(&source_settings()), input, &COPY_SCHEDULE).await
    }

    #[tokio::test]
    async fn a_predicted_copy_wait_backs_off_while_progress_is_flat() {
        let first = poll_copy("copying", Some(0), None).await.expect("first");
        assert!(!first.ready);
        assert_eq!((first.waited, first.polls, first.seconds), (0, 1, 30));
        assert_eq!(first.wait_for.as_deref(), Some("targetSnapshot"));
        let second = poll_copy("copying", Some(0), Some(first)).await.expect("flat");
        assert_eq!((second.waited, second.polls, second.seconds), (30, 2, 45), "the backoff: x1.5");
        // No figure at all: the same backoff.
        let third = poll_copy("copying", None, Some(second)).await.expect("unknown");
        assert_eq!((third.waited, third.seconds), (75, 68));
    }

    #[tokio::test]
    async fn a_predicted_copy_wait_waits_about_the_remaining_time() {
        // 10 % after 150 s: 1,350 s remain; the first predicted wait goes halfway.
        let first = poll_copy("copying", Some(0), None).await.expect("first");
        let prev = Poll { seconds: 150, ..first };
        let next = poll_copy("copying", Some(10), Some(prev)).await.expect("moving");
        assert_eq!((next.waited, next.seconds), (150, 675));
        assert!(!next.expect_ready);
        // 90 % after 1,350 s: 150 s remain, so one poll just after the end.
        let prev = Poll { seconds: 1_200, ..next };
        let last = poll_copy("copying", Some(90), Some(prev)).await.expect("near the end");
        assert!(last.expect_ready);
        assert!((150..=160).contains(&last.seconds), "{last:?}");
        let done = poll_copy("available", Some(100), Some(last)).await.expect("ready");
        assert!(done.ready);
        assert_eq!((done.seconds, done.polls), (0, 4));
        let out = serde_json::to_value(&done).expect("json");
        assert_eq!(out["ready"], true);
        assert_eq!(out["percentProgress"], 100);
    }

    #[tokio::test]
    async fn a_predicted_wait_past_its_bound_fails_resource_not_ready() {
        let prev = Poll {
            wait_for: Some("targetSnapshot".into()),
            seconds: 180,
            waited: COPY_SCHEDULE.bound_seconds - 180,
            polls: 250,
            ..Poll::default()
        };
        let err = poll_copy("copying", Some(3), Some(prev.clone())).await.expect_err("bound");
        assert_eq!(err.asl_name(), "ResourceNotReady");
        assert!(err.to_string().contains("after 43200 s of polling"), "{err}");
        // Ready at the bound is ready; failed is ResourceFailed.
        assert!(poll_copy("available", Some(100), Some(prev.clone())).await.expect("ready").ready);
        let err = poll_copy("failed", Some(3), Some(prev)).await.expect_err("failed");
        assert_eq!(err.asl_name(), "ResourceFailed");
    }

    #[tokio::test]
    async fn another_waits_poll_in_the_payload_starts_a_new_wait() {
        let other = Poll {
            wait_for: Some("sourceSnapshot".into()),
            polls: 7,
            waited: 900,
            seconds: 60,
            ..Poll::default()
        };
        let first = poll_copy("copying", Some(40), Some(other)).await.expect("first");
        assert_eq!((first.waited, first.polls), (0, 1));
    }

    #[tokio::test]
    async fn a_kind_without_progress_cannot_be_predicted() {
        let rule =
            clusters(DbCluster::builder().db_cluster_identifier("orders-dr-next").status("creating").build());
        let rds = ts::rds(&[&rule]);
        let mut input = input(WaitFor::TempCluster, target_run());
        input.predict = Some(COPY_SCHEDULE);
        let err = poll(&rds, &SystemDns, SideSettingsRef::Target(&target_settings()), input, &COPY_SCHEDULE)
            .await
            .expect_err("no progress");
        assert_eq!(err.asl_name(), "InvalidInput");
        assert_eq!(rule.num_calls(), 0);
    }

    #[test]
    fn input_parses_every_kind_and_rejects_unknown_ones() {
        for (kind, want) in [
            ("sourceSnapshot", WaitFor::SourceSnapshot),
            ("targetSnapshot", WaitFor::TargetSnapshot),
            ("sharedSnapshot", WaitFor::SharedSnapshot),
            ("ownCopy", WaitFor::OwnCopy),
            ("tempCluster", WaitFor::TempCluster),
            ("tempInstances", WaitFor::TempInstances),
            ("existingCluster", WaitFor::ExistingCluster),
            ("existingEndpoint", WaitFor::ExistingEndpoint),
        ] {
            let parsed =
                parse_input(json!({"waitFor": kind, "run": finished_source_run().to_value()})).expect(kind);
            assert_eq!(parsed.wait_for, want);
        }
        for bad in [
            json!({"waitFor": "snapshot", "run": finished_source_run().to_value()}),
            json!({"waitFor": "sourceSnapshot"}),
            json!({"waitFor": "sourceSnapshot", "run": finished_source_run().to_value(), "extra": 1}),
            json!({"waitFor": "sourceSnapshot", "run": {"runId": "x"}}),
            json!(finished_source_run().to_value()),
        ] {
            let err = parse_input(bad.clone()).expect_err("bad");
            assert_eq!(err.asl_name(), "InvalidInput", "{bad}");
            assert!(err.to_string().contains("waitFor"), "{err}");
        }
    }

    #[tokio::test]
    async fn snapshot_statuses_are_classified_for_source_and_copy() {
        for kind in [WaitFor::SourceSnapshot, WaitFor::TargetSnapshot] {
            let ok = poll_source(&snapshots(Some(with_progress(ts::copy("available"), 100))), kind).await;
            let ok = ok.expect("available");
            assert_eq!(
                ok,
                ResourceStatus {
                    resource: SNAPSHOT_ID.into(),
                    status: "available".into(),
                    percent_progress: Some(100)
                }
            );
            for (status, want) in [
                ("creating", "ResourceNotReady"),
                ("copying", "ResourceNotReady"),
                ("failed", "ResourceFailed"),
                ("incompatible-restore", "ResourceFailed"),
            ] {
                let got = poll_source(&snapshots(Some(ts::copy(status))), kind).await;
                assert_eq!(name(got), want, "{kind:?} {status}");
            }
            assert_eq!(name(poll_source(&ts::snapshot_missing(), kind).await), "NotFound");
            assert_eq!(name(poll_source(&snapshots(None), kind).await), "NotFound");
        }
    }

    #[tokio::test]
    async fn the_output_serialises_with_camel_case_and_no_empty_progress() {
        let v = serde_json::to_value(ready("c", "available", None)).expect("json");
        assert_eq!(v, json!({"resource": "c", "status": "available"}));
        let v = serde_json::to_value(ready("s", "available", Some(100))).expect("json");
        assert_eq!(v, json!({"resource": "s", "status": "available", "percentProgress": 100}));
    }

    #[tokio::test]
    async fn the_copy_is_looked_up_by_its_id_and_the_source_by_its_own() {
        let seen: Arc<Mutex<Vec<DescribeDbClusterSnapshotsInput>>> = Arc::default();
        let record = seen.clone();
        let rule = mock!(Client::describe_db_cluster_snapshots)
            .match_requests(move |r| {
                record.lock().expect("lock").push(r.clone());
                true
            })
            .then_output(|| {
                DescribeDbClusterSnapshotsOutput::builder()
                    .db_cluster_snapshots(ts::copy("available"))
                    .build()
            });
        let mut run_state = finished_source_run();
        run_state.target_snapshot_id = Some("copy-id".parse().expect("id"));
        let rds = ts::rds(&[&rule]);
        let settings = source_settings();
        run(
            &rds,
            &SystemDns,
            SideSettingsRef::Source(&settings),
            input(WaitFor::TargetSnapshot, run_state.clone()),
        )
        .await
        .expect("ok");
        run(&rds, &SystemDns, SideSettingsRef::Source(&settings), input(WaitFor::SourceSnapshot, run_state))
            .await
            .expect("ok");
        let seen = seen.lock().expect("lock");
        assert_eq!(seen[0].db_cluster_snapshot_identifier(), Some("copy-id"));
        assert_eq!(seen[1].db_cluster_snapshot_identifier(), Some(SNAPSHOT_ID));
        assert!(seen.iter().all(|r| r.include_shared().is_none() && r.snapshot_type().is_none()));
    }

    #[tokio::test]
    async fn the_own_copy_is_looked_up_by_its_id_in_the_target_account() {
        let seen: Arc<Mutex<Vec<DescribeDbClusterSnapshotsInput>>> = Arc::default();
        let record = seen.clone();
        let rule = |status: &'static str| {
            let record = record.clone();
            mock!(Client::describe_db_cluster_snapshots)
                .match_requests(move |r| {
                    record.lock().expect("lock").push(r.clone());
                    true
                })
                .then_output(move || {
                    DescribeDbClusterSnapshotsOutput::builder().db_cluster_snapshots(ts::copy(status)).build()
                })
        };
        let mut run_state = finished_source_run();
        run_state.own_snapshot_id = Some("own-copy".parse().expect("id"));
        for (status, want) in
            [("available", "ok"), ("copying", "ResourceNotReady"), ("failed", "ResourceFailed")]
        {
            assert_eq!(name(poll_target(&[&rule(status)], WaitFor::OwnCopy, run_state.clone()).await), want);
        }
        assert_eq!(
            name(poll_target(&[&ts::snapshot_missing()], WaitFor::OwnCopy, run_state).await),
            "NotFound"
        );
        let requests = seen.lock().expect("lock").clone();
        assert!(requests.iter().all(|r| r.db_cluster_snapshot_identifier() == Some("own-copy")));
        assert!(requests.iter().all(|r| r.include_shared().is_none() && r.snapshot_type().is_none()));
        // Without an own copy there is nothing to wait for: the machine's Choice skips this state.
        let err =
            poll_target(&[&rule("available")], WaitFor::OwnCopy, finished_source_run()).await.expect_err("x");
        assert!(err.to_string().contains("ownSnapshotId"), "{err}");
    }

    #[tokio::test]
    async fn the_shared_snapshot_is_looked_up_by_arn_among_shared_ones() {
        let seen: Arc<Mutex<Option<DescribeDbClusterSnapshotsInput>>> = Arc::default();
        let record = seen.clone();
        let rule = mock!(Client::describe_db_cluster_snapshots)
            .match_requests(move |r| {
                *record.lock().expect("lock") = Some(r.clone());
                true
            })
            .then_output(|| {
                DescribeDbClusterSnapshotsOutput::builder()
                    .db_cluster_snapshots(ts::copy("available"))
                    .build()
            });
        let ok = poll_target(&[&rule], WaitFor::SharedSnapshot, finished_source_run()).await.expect("shared");
        assert_eq!(ok.resource, TARGET_SNAPSHOT_ARN);
        let req = seen.lock().expect("lock").clone().expect("request");
        assert_eq!(req.db_cluster_snapshot_identifier(), Some(TARGET_SNAPSHOT_ARN));
        assert_eq!(req.snapshot_type(), Some("shared"));
        assert_eq!(req.include_shared(), Some(true));
    }

    #[tokio::test]
    async fn a_snapshot_that_is_not_shared_is_named_as_such() {
        for rule in [snapshots(None), ts::snapshot_missing()] {
            let err = poll_target(&[&rule], WaitFor::SharedSnapshot, finished_source_run())
                .await
                .expect_err("hidden");
            assert_eq!(err.asl_name(), "NotFound");
            assert!(!err.is_retryable());
            assert_eq!(
                err.to_string(),
                format!("not found: snapshot {TARGET_SNAPSHOT_ARN} is not shared with account 222222222222")
            );
        }
        for (status, want) in
            [("available", "ok"), ("copying", "ResourceNotReady"), ("failed", "ResourceFailed")]
        {
            let rule = snapshots(Some(ts::copy(status)));
            assert_eq!(
                name(poll_target(&[&rule], WaitFor::SharedSnapshot, finished_source_run()).await),
                want
            );
        }
    }

    /// The recovery point comes from RDS, not from the message.
    #[tokio::test]
    async fn a_shared_snapshot_created_in_the_future_or_before_the_claimed_time_is_refused() {
        let at = |secs: i64| {
            let mut snap = ts::copy("available");
            snap.snapshot_create_time = Some(aws_smithy_types::DateTime::from_secs(secs));
            snap
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let run = finished_source_run();
        let claimed = run.snapshot_created_at.expect("claimed").unix_timestamp();
        for (created, want, text) in [
            (now + 86_400, "InvalidInput", "in the future"),
            (claimed - 3_600, "InvalidInput", "later than its SnapshotCreateTime"),
            (claimed, "ok", ""),
        ] {
            let rule = snapshots(Some(at(created)));
            let got = poll_target(&[&rule], WaitFor::SharedSnapshot, run.clone()).await;
            assert_eq!(name(got.clone()), want, "{created}: {got:?}");
            if let Err(e) = got {
                assert!(e.to_string().contains(text), "{e}");
                assert!(!e.is_retryable());
            }
        }
    }

    #[tokio::test]
    async fn a_shared_snapshot_from_another_account_or_region_is_refused_unread() {
        for arn in [
            "arn:aws:rds:us-west-1:333333333333:cluster-snapshot:aurora-dr-orders-20261125160005",
            "arn:aws:rds:eu-west-1:111111111111:cluster-snapshot:aurora-dr-orders-20261125160005",
            "arn:aws:rds:us-west-1:111111111111:cluster:orders",
        ] {
            let mut run_state = finished_source_run();
            run_state.target_snapshot_arn = Some(arn.parse().expect("arn"));
            let rule = snapshots(Some(ts::copy("available")));
            let err = poll_target(&[&rule], WaitFor::SharedSnapshot, run_state).await.expect_err(arn);
            assert_eq!(err.asl_name(), "InvalidInput", "{arn}: {err}");
            assert_eq!(rule.num_calls(), 0);
        }
    }

    #[tokio::test]
    async fn temp_cluster_statuses_are_classified() {
        let c = |status: &str| {
            DbCluster::builder().db_cluster_identifier("orders-dr-next").status(status).build()
        };
        for (status, want) in [
            ("available", "ok"),
            ("creating", "ResourceNotReady"),
            ("backing-up", "ResourceNotReady"),
            ("failed", "ResourceFailed"),
            ("incompatible-restore", "ResourceFailed"),
        ] {
            let rule = clusters(c(status));
            assert_eq!(
                name(poll_target(&[&rule], WaitFor::TempCluster, target_run()).await),
                want,
                "{status}"
            );
        }
        let rule = cluster_missing();
        assert_eq!(name(poll_target(&[&rule], WaitFor::TempCluster, target_run()).await), "NotFound");
        let rule = clusters(c("available"));
        assert_eq!(
            name(poll_target(&[&rule], WaitFor::TempCluster, finished_source_run()).await),
            "InvalidInput"
        );
        assert_eq!(rule.num_calls(), 0);
    }

    #[tokio::test]
    async fn temp_instances_wait_for_every_instance() {
        let both = |a: &str, b: &str| {
            instances(vec![
                ts::instance("orders-dr-next-1", "orders-dr-next", a),
                ts::instance("orders-dr-next-1-2", "orders-dr-next", b),
            ])
        };
        for (a, b, want) in [
            ("available", "available", "ok"),
            ("available", "creating", "ResourceNotReady"),
            ("creating", "available", "ResourceNotReady"),
            ("creating", "failed", "ResourceFailed"),
            ("incompatible-parameters", "available", "ResourceFailed"),
        ] {
            let rule = both(a, b);
            let got = poll_target(&[&rule], WaitFor::TempInstances, target_run()).await;
            if want == "ok" {
                assert_eq!(got.clone().expect("ready").resource, "orders-dr-next-1,orders-dr-next-1-2");
            }
            assert_eq!(name(got), want, "{a} {b}");
            assert_eq!(rule.num_calls(), 2);
        }
        let one = instances(vec![ts::instance("orders-dr-next-1", "orders-dr-next", "available")]);
        assert_eq!(name(poll_target(&[&one], WaitFor::TempInstances, target_run()).await), "NotFound");
        let rule = both("available", "available");
        assert_eq!(
            name(poll_target(&[&rule], WaitFor::TempInstances, finished_source_run()).await),
            "InvalidInput"
        );
    }

    fn restored(status: &str, run_id: &str) -> DbCluster {
        DbCluster::builder()
            .db_cluster_identifier("orders-dr")
            .status(status)
            .set_tag_list(Some(ts::managed_tags(run_id)))
            .build()
    }

    fn swapped_run() -> RunState {
        let mut run_state = target_run();
        run_state.swap = Some(SwapRecord {
            old_cluster_id: Some("orders-dr-old-20261125160005".parse().expect("id")),
            old_instance_ids: vec![],
            deleted_instance_ids: Vec::new(),
            existing_cluster_id: "orders-dr".parse().expect("id"),
            existing_instance_ids: vec!["orders-dr-1".parse().expect("id")],
        });
        run_state
    }

    #[tokio::test]
    async fn the_existing_cluster_must_be_this_runs_restored_cluster_and_ready() {
        let inst = |status: &str| instances(vec![ts::instance("orders-dr-1", "orders-dr", status)]);
        let cases: Vec<(DbCluster, Rule, &str)> = vec![
            (restored("available", "run-1"), inst("available"), "ok"),
            (restored("renaming", "run-1"), inst("available"), "ResourceNotReady"),
            (restored("available", "run-1"), inst("renaming"), "ResourceNotReady"),
            (restored("available", "run-1"), inst("failed"), "ResourceFailed"),
            (restored("available", "run-1"), instances(vec![]), "ResourceNotReady"),
            (restored("available", "run-0"), inst("available"), "Conflict"),
            (
                restored("available", "run-1"),
                instances(vec![ts::instance("orders-dr-1", "orders-dr-old-20261125160005", "available")]),
                "Conflict",
            ),
        ];
        for (cluster, inst_rule, want) in cases {
            let c = clusters(cluster);
            let got = poll_target(&[&c, &inst_rule], WaitFor::ExistingCluster, swapped_run()).await;
            assert_eq!(name(got), want);
        }
        let (missing, inst_rule) = (cluster_missing(), inst("available"));
        let got = poll_target(&[&missing, &inst_rule], WaitFor::ExistingCluster, swapped_run()).await;
        assert_eq!(name(got), "ResourceNotReady", "a rename not yet applied is waited for");
    }

    /// Answers each hostname from a table; other names resolve to nothing.
    #[derive(Debug)]
    struct Table(Vec<(&'static str, Reach)>);

    impl EndpointResolver for Table {
        fn reach<'a>(&'a self, host: &'a str) -> futures::future::BoxFuture<'a, Reach> {
            let found = self.0.iter().find(|(h, _)| *h == host).map(|(_, r)| r.clone());
            Box::pin(async move { found.unwrap_or(Reach::Nothing) })
        }
    }

    const EXISTING_HOST: &str = "orders-dr.cluster-abc.us-west-1.rds.amazonaws.com";
    const OLD_HOST: &str = "orders-dr-old-20261125160005.cluster-abc.us-west-1.rds.amazonaws.com";

    fn with_endpoint(c: DbCluster, host: &str, resource: &str) -> DbCluster {
        let mut c = c;
        c.endpoint = Some(host.to_owned());
        c.db_cluster_resource_id = Some(resource.to_owned());
        c
    }

    async fn poll_endpoint(answers: Vec<(&'static str, Reach)>) -> DrResult<ResourceStatus> {
        let existing = ts_target::describe_cluster(
            "orders-dr",
            Some(with_endpoint(restored("available", "run-1"), EXISTING_HOST, "cluster-NEW")),
        );
        let old = ts_target::describe_cluster(
            "orders-dr-old-20261125160005",
            Some(with_endpoint(
                DbCluster::builder().db_cluster_identifier("orders-dr-old-20261125160005").build(),
                OLD_HOST,
                "cluster-OLD",
            )),
        );
        let rds = ts::rds(&[&existing, &old]);
        let settings = target_settings();
        run(
            &rds,
            &Table(answers),
            SideSettingsRef::Target(&settings),
            input(WaitFor::ExistingEndpoint, swapped_run()),
        )
        .await
    }

    #[tokio::test]
    async fn the_existing_endpoint_must_reach_the_restored_cluster() {
        let resource = |id: &str| Reach::Resource(id.to_owned());
        // Still the previous cluster (a cached or not yet updated name): wait.
        let err = poll_endpoint(vec![(EXISTING_HOST, resource("cluster-OLD"))]).await.expect_err("old");
        assert_eq!(err.asl_name(), "ResourceNotReady", "{err}");
        assert!(err.to_string().contains("still reaching cluster resource cluster-OLD"), "{err}");
        // Not resolving at all yet: wait.
        let err = poll_endpoint(vec![]).await.expect_err("nothing");
        assert_eq!(err.asl_name(), "ResourceNotReady", "{err}");
        // The restored cluster: ready.
        let ok = poll_endpoint(vec![(EXISTING_HOST, resource("cluster-NEW"))]).await.expect("moved");
        assert_eq!(ok.resource, EXISTING_HOST);

        // Real DNS: addresses, told apart from the previous cluster's.
        let ip = |a: &str| Reach::Addresses([a.parse().expect("ip")].into_iter().collect());
        let err = poll_endpoint(vec![(EXISTING_HOST, ip("10.0.1.5")), (OLD_HOST, ip("10.0.1.5"))])
            .await
            .expect_err("cached");
        assert_eq!(err.asl_name(), "ResourceNotReady", "{err}");
        let err = poll_endpoint(vec![(EXISTING_HOST, ip("10.0.2.9"))]).await.expect_err("old unknown");
        assert_eq!(err.asl_name(), "ResourceNotReady", "{err}");
        poll_endpoint(vec![(EXISTING_HOST, ip("10.0.2.9")), (OLD_HOST, ip("10.0.1.5"))])
            .await
            .expect("moved");
    }

    #[tokio::test]
    async fn without_a_swap_record_the_configured_instances_are_checked() {
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let record = seen.clone();
        let inst = mock!(Client::describe_db_instances)
            .match_requests(move |r| {
                record.lock().expect("lock").push(r.db_instance_identifier().unwrap_or_default().to_owned());
                true
            })
            .then_output(|| {
                DescribeDbInstancesOutput::builder()
                    .db_instances(ts::instance("orders-dr-1", "orders-dr", "available"))
                    .build()
            });
        let c = clusters(restored("available", "run-1"));
        poll_target(&[&c, &inst], WaitFor::ExistingCluster, target_run()).await.expect("ready");
        assert_eq!(*seen.lock().expect("lock"), ["orders-dr-1"]);
    }

    #[tokio::test]
    async fn a_kind_of_the_other_side_or_a_failure_payload_is_refused_unread() {
        let rule = snapshots(Some(ts::copy("available")));
        let rds = ts::rds(&[&rule]);
        let err = run(
            &rds,
            &SystemDns,
            SideSettingsRef::Target(&target_settings()),
            input(WaitFor::SourceSnapshot, finished_source_run()),
        )
        .await
        .expect_err("side");
        assert_eq!(err.asl_name(), "InvalidConfig");
        let err = run(
            &rds,
            &SystemDns,
            SideSettingsRef::Source(&source_settings()),
            input(WaitFor::TempCluster, target_run()),
        )
        .await
        .expect_err("side");
        assert_eq!(err.asl_name(), "InvalidConfig");
        let mut failed = finished_source_run();
        failed.failure = Some(crate::payload::Failure { error: "X".into(), cause: String::new() });
        let err = run(
            &rds,
            &SystemDns,
            SideSettingsRef::Source(&source_settings()),
            input(WaitFor::SourceSnapshot, failed),
        )
        .await
        .expect_err("failure");
        assert_eq!(err.asl_name(), "InvalidInput");
        assert_eq!(rule.num_calls(), 0);
    }

    #[tokio::test]
    async fn throttling_and_5xx_are_retryable() {
        let throttled = mock!(Client::describe_db_cluster_snapshots)
            .then_error(|| DescribeDBClusterSnapshotsError::generic(ts::meta("Throttling")));
        assert_eq!(name(poll_source(&throttled, WaitFor::SourceSnapshot).await), "Throttled");
        let unavailable = mock!(Client::describe_db_clusters).then_http_response(|| ts::http_status(503));
        assert_eq!(
            name(poll_target(&[&unavailable], WaitFor::TempCluster, target_run()).await),
            "ServiceUnavailable"
        );
    }

    fn snapshot_xml(status: &str) -> String {
        format!(
            "<DescribeDBClusterSnapshotsResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\">\
             <DescribeDBClusterSnapshotsResult><DBClusterSnapshots><DBClusterSnapshot>\
             <DBClusterSnapshotIdentifier>{SNAPSHOT_ID}</DBClusterSnapshotIdentifier>\
             <Status>{status}</Status><PercentProgress>42</PercentProgress>\
             </DBClusterSnapshot></DBClusterSnapshots></DescribeDBClusterSnapshotsResult>\
             </DescribeDBClusterSnapshotsResponse>"
        )
    }

    #[tokio::test]
    async fn handle_polls_each_kind_in_its_sides_region() {
        for (kind, host) in
            [(WaitFor::SourceSnapshot, "rds.us-west-2."), (WaitFor::TargetSnapshot, "rds.us-west-1.")]
        {
            let recorder = ts::Recorder::replying(vec![(200, snapshot_xml("creating"))]);
            let ctx = ts::source_context(&recorder);
            let value = json!({"waitFor": kind, "run": finished_source_run().to_value()});
            let err = handle(ctx, value).await.expect_err("creating");
            assert_eq!(err.asl_name(), "ResourceNotReady", "{err}");
            let sent = recorder.sent();
            assert_eq!(sent.len(), 1);
            assert!(sent[0].uri.contains(host), "{kind:?}: {}", sent[0].uri);
            assert!(sent[0].body.contains("Action=DescribeDBClusterSnapshots"), "{}", sent[0].body);
        }
        let recorder = ts::Recorder::replying(vec![(200, snapshot_xml("available"))]);
        let value = json!({"waitFor": "sharedSnapshot", "run": finished_source_run().to_value()});
        let out = handle(ts::target_context(&recorder), value).await.expect("available");
        assert_eq!(
            out,
            json!({"resource": TARGET_SNAPSHOT_ARN, "status": "available", "percentProgress": 42})
        );
        let sent = recorder.sent();
        assert!(sent[0].uri.contains("rds.us-west-1."), "the target side's own region: {}", sent[0].uri);
        assert!(sent[0].body.contains("IncludeShared=true"), "{}", sent[0].body);
    }

    #[tokio::test]
    async fn handle_refuses_a_kind_of_the_other_side_before_any_call() {
        let recorder = ts::Recorder::default();
        let value = json!({"waitFor": "tempCluster", "run": target_run().to_value()});
        let err = handle(ts::source_context(&recorder), value).await.expect_err("side");
        assert_eq!(err.asl_name(), "InvalidConfig");
        let value = json!({"waitFor": "targetSnapshot", "run": target_run().to_value()});
        let err = handle(ts::target_context(&recorder), value).await.expect_err("side");
        assert_eq!(err.asl_name(), "InvalidConfig");
        assert!(recorder.sent().is_empty());
    }
}
