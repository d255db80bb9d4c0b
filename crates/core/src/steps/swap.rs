//! Swap (target account, target region): the restored cluster takes over the
//! existing names, so the reader/writer endpoints stay the same.
//!
//! Names (all from the settings and the run, never from the payload alone;
//! with many clusters, from the pair of the payload's `sourceClusterId`,
//! [`TargetSettings::for_source`]): `E` = `EXISTING_CLUSTER_ID`, `T` = `TEMP_CLUSTER_ID`, `EI[k]`/`TI[k]` the
//! existing/temporary instance ids (writer first), and the renamed-away names
//! `O` = `{E}-old-{stamp}` and `{instance}-old-{stamp}` for each member of the
//! previous cluster ([`old_name`]: the base is cut so the id stays a valid
//! identifier of at most 63 characters; `stamp` = [`RunState::stamp`]).
//! A finished normal run emits `StepDurationSeconds` ([`crate::metrics`]).
//!
//! # Normal mode
//! Input: the [`RunState`] after WaitForTempInstances (`restoredClusterId` =
//! `T`, `restoredInstanceIds` = `TI`). Output: the same payload with `swap`
//! ([`SwapRecord`]) set.
//! - Phase 1 (skipped on a first run, when nothing is under `E`): the previous
//!   cluster `E` -> `O`, then each of its member instances `m` -> `{m}-old-{stamp}`.
//! - Phase 2: `T` -> `E`, then `TI[k]` -> `EI[k]`.
//!
//! Renames are `ModifyDBCluster`/`ModifyDBInstance` with the new identifier
//! and `ApplyImmediately`; RDS applies them asynchronously (status
//! `renaming`). The step never sleeps: before phase 2 it checks that the names
//! phase 1 vacated are free; while they are not, it ends with the retryable
//! `ResourceNotReady` and the state machine's Retry calls it again. The next
//! call works out from RDS state and tags what is already done (a cluster
//! under `E` with this run's tags: phase 2 done; a cluster under `O`: phase 1
//! done) and continues. WaitForSwappedCluster then waits for `E` to be available.
//!
//! Before any change every resource involved is checked: the temporary
//! cluster and instances exist, carry this run's tags and are `available`;
//! the previous cluster and its instances are `available`; no old name is
//! taken; each `EI[k]` is free or a member of the previous cluster. A busy
//! resource ends the call with `ResourceNotReady` before anything changes, so
//! a retry is safe. A cluster under `E` that carries this run's tags is never
//! renamed away.
//!
//! If a rename fails after a change was made (in this call or an earlier
//! one), everything done is renamed back in reverse order (phase 2 first,
//! then phase 1) and the step fails with `SwapFailed { rolled_back: true }`
//! — except for a transient API error (`Throttled`, `ServiceUnavailable`),
//! which is returned as is: the retry continues from RDS state, and the
//! failure path (RollBackSwap) undoes the renames if the retries run out;
//! if an undo fails too, `rolled_back: false` and the detail says which name
//! is where. A retryable refusal of the first change of a call changes
//! nothing and is returned as is.
//!
//! # Failure mode (the RollBackSwap state)
//! Input: any payload with `failure` (it need not parse as [`RunState`]; only
//! `runId` and `createdAt` are read). Goal: the existing name serves a
//! complete cluster again, derived from RDS state + tags + settings:
//! - the cluster under `E` carries this run's tags and `O` exists: the restored
//!   cluster and its instances go back to `T`/`TI[k]`, then `O` and its
//!   instances back to their previous names;
//! - nothing is under `E` but `O` exists (phase 1 done, phase 2 not): `O` and
//!   its instances go back (this goes beyond leaving things as they are: the
//!   production name must not stay empty);
//! - the cluster under `E` carries this run's tags and there is no `O` (first
//!   run): the restored cluster stays, as it is the only copy; logged;
//! - otherwise nothing changes (instances of the cluster under `E` still
//!   carrying this run's `-old-{stamp}` name get their names back).
//!
//! Output: the payload unchanged. A busy resource gives `ResourceNotReady`
//! (the handler is state-driven, so a retry continues); an undo that cannot
//! be done gives `SwapFailed { rolled_back: false }` with where things are.

use std::sync::Arc;

use aws_sdk_rds::Client;
use aws_sdk_rds::types::{DbCluster, DbInstance};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::context::StepContext;
use crate::error::{DrError, DrResult};
use crate::ids::{ClusterId, InstanceId, RunId};
use crate::metrics;
use crate::payload::{RunState, SwapRecord, need};
use crate::rds;
use crate::settings::TargetSettings;

/// `{base}-old-{stamp}`, with `base` cut (and a trailing hyphen dropped) so
/// the result is at most 63 characters and a valid RDS identifier.
pub fn old_name(base: &str, stamp: &str) -> String {
    let suffix = format!("-old-{stamp}");
    let keep = 63usize.saturating_sub(suffix.len());
    let stem: String = base.chars().take(keep).collect();
    format!("{}{suffix}", stem.trim_end_matches('-'))
}

/// Where the previous cluster goes: `{existing}-old-{stamp}`.
pub fn old_cluster_id(existing: &ClusterId, stamp: &str) -> DrResult<ClusterId> {
    old_name(existing.as_str(), stamp)
        .parse()
        .map_err(|e| DrError::invalid_input(format!("old name of cluster {existing}: {e}")))
}

/// Where a previous instance goes: `{instance}-old-{stamp}`.
pub fn old_instance_id(instance: &str, stamp: &str) -> DrResult<InstanceId> {
    old_name(instance, stamp)
        .parse()
        .map_err(|e| DrError::invalid_input(format!("old name of instance {instance}: {e}")))
}

/// RDS compares identifiers case-insensitively (and stores them lowercase).
pub(crate) fn same_id(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Whether the payload asks for the failure-path behaviour.
pub(crate) fn is_failure(input: &Value) -> bool {
    input.get("failure").is_some_and(|f| !f.is_null())
}

/// The `runId` of a payload that may not parse as [`RunState`].
pub(crate) fn loose_run_id(input: &Value) -> Option<RunId> {
    input.get("runId")?.as_str()?.parse().ok()
}

/// The run of a failure-path payload: the full [`RunState`] if it parses,
/// else just its `runId` and `createdAt` (all the tags and names need).
pub(crate) fn loose_run(input: &Value) -> Option<RunState> {
    if let Ok(run) = RunState::from_value(input.clone()) {
        return Some(run);
    }
    let created_at = OffsetDateTime::parse(input.get("createdAt")?.as_str()?, &Rfc3339).ok()?;
    Some(RunState::new(loose_run_id(input)?, created_at))
}

/// Every name the swap touches.
#[derive(Debug, Clone)]
struct Names {
    existing: ClusterId,
    temp: ClusterId,
    old: ClusterId,
    existing_instances: Vec<InstanceId>,
    temp_instances: Vec<InstanceId>,
    stamp: String,
}

impl Names {
    fn new(settings: &TargetSettings, run: &RunState) -> DrResult<Self> {
        let stamp = run.stamp();
        Ok(Self {
            old: old_cluster_id(&settings.existing_cluster_id, &stamp)?,
            existing: settings.existing_cluster_id.clone(),
            temp: settings.temp_cluster_id.clone(),
            existing_instances: settings.existing_instance_ids(),
            temp_instances: settings.temp_instance_ids(),
            stamp,
        })
    }

    fn suffix(&self) -> String {
        format!("-old-{}", self.stamp)
    }

    /// Whether `id` is a name this run's phase 1 gave an instance.
    fn is_old_instance_name(&self, id: &str) -> bool {
        id.to_ascii_lowercase().ends_with(&self.suffix())
    }

    /// The name an instance had before phase 1 renamed it to `old`: the
    /// configured existing instance id whose old name this is, else `old`
    /// without the suffix (exact unless the original was cut to fit 63).
    fn original_instance_name(&self, old: &str) -> String {
        if let Some(ei) =
            self.existing_instances.iter().find(|ei| same_id(&old_name(ei.as_str(), &self.stamp), old))
        {
            return ei.to_string();
        }
        old[..old.len().saturating_sub(self.suffix().len())].to_owned()
    }

    fn index_of_existing_instance(&self, id: &str) -> Option<usize> {
        self.existing_instances.iter().position(|ei| same_id(ei.as_str(), id))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Cluster,
    Instance,
}

/// One identifier change.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rename {
    kind: Kind,
    /// "previous cluster", "restored instance", ...: what the resource is.
    label: &'static str,
    from: String,
    to: String,
}

impl Rename {
    fn cluster(label: &'static str, from: &str, to: &str) -> Self {
        Self { kind: Kind::Cluster, label, from: from.to_owned(), to: to.to_owned() }
    }

    fn instance(label: &'static str, from: &str, to: &str) -> Self {
        Self { kind: Kind::Instance, label, from: from.to_owned(), to: to.to_owned() }
    }

    fn undo(&self) -> Self {
        Self { kind: self.kind, label: self.label, from: self.to.clone(), to: self.from.clone() }
    }
}

impl std::fmt::Display for Rename {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} -> {}", self.label, self.from, self.to)
    }
}

async fn rename(rds: &Client, r: &Rename, run_id: &RunId) -> DrResult<()> {
    tracing::info!(step = "swap", run_id = %run_id, from = %r.from, to = %r.to, "renaming {}", r.label);
    match r.kind {
        Kind::Cluster => rds
            .modify_db_cluster()
            .db_cluster_identifier(&r.from)
            .new_db_cluster_identifier(&r.to)
            .apply_immediately(true)
            .send()
            .await
            .map(drop)
            .map_err(|e| DrError::from_sdk(&format!("ModifyDBCluster {} -> {}", r.from, r.to), e)),
        Kind::Instance => rds
            .modify_db_instance()
            .db_instance_identifier(&r.from)
            .new_db_instance_identifier(&r.to)
            .apply_immediately(true)
            .send()
            .await
            .map(drop)
            .map_err(|e| DrError::from_sdk(&format!("ModifyDBInstance {} -> {}", r.from, r.to), e)),
    }
}

/// What is left to do, and what earlier calls already did (for a rollback).
#[derive(Debug, Default)]
struct Plan {
    done: Vec<Rename>,
    phase1: Vec<Rename>,
    /// Names phase 2 renames into, checked free (or still being vacated) before phase 2.
    gate_cluster: Option<String>,
    gate_instances: Vec<String>,
    phase2: Vec<Rename>,
    /// Where the previous instances end up.
    old_instances: Vec<String>,
    has_old: bool,
}

fn member_ids(cluster: &DbCluster) -> Vec<String> {
    let mut members: Vec<(bool, String)> = cluster
        .db_cluster_members()
        .iter()
        .filter_map(|m| {
            Some((!m.is_cluster_writer().unwrap_or(false), m.db_instance_identifier()?.to_owned()))
        })
        .collect();
    // Writer first, so logs and records read in a stable order.
    members.sort_by_key(|(reader, _)| *reader);
    members.into_iter().map(|(_, id)| id).collect()
}

fn in_cluster(instance: &DbInstance, cluster: &str) -> bool {
    instance.db_cluster_identifier().is_some_and(|c| same_id(c, cluster))
}

fn pending_rename(instance: &DbInstance) -> Option<&str> {
    instance.pending_modified_values().and_then(|p| p.db_instance_identifier())
}

fn owner(tags: &[aws_sdk_rds::types::Tag]) -> &str {
    rds::tag_value(tags, rds::TAG_RUN_ID).unwrap_or("none")
}

/// Performs the swap (or its remaining part) and records it in the payload.
pub async fn run(rds: &Client, settings: &TargetSettings, mut run: RunState) -> DrResult<RunState> {
    let names = Names::new(settings, &run)?;
    check_payload(&run, &names)?;
    let existing = rds::find_cluster(rds, names.existing.as_str()).await?;
    let old = rds::find_cluster(rds, names.old.as_str()).await?;
    let plan = match (existing, old) {
        (Some(e), old) if rds::is_from_run(e.tag_list(), &run) => {
            plan_after_cluster_swap(rds, &names, &run, old.as_ref()).await?
        }
        (Some(e), Some(_)) => {
            if e.status() == Some("renaming") {
                return Err(DrError::not_ready(
                    format!("cluster {} (being renamed to {})", names.existing, names.old),
                    "renaming",
                ));
            }
            return Err(DrError::Conflict(format!(
                "both {} (not from run {}) and {} exist; the swap cannot tell which is the previous copy; \
                 nothing was changed",
                names.existing, run.run_id, names.old
            )));
        }
        (Some(e), None) => plan_full_swap(rds, &names, &run, &e).await?,
        (None, Some(o)) => plan_resume_after_phase1(rds, &names, &run, &o).await?,
        (None, None) => plan_first_run(rds, &names, &run).await?,
    };
    execute(rds, &names, &plan, &run.run_id).await?;
    let record = SwapRecord {
        old_cluster_id: plan.has_old.then(|| names.old.clone()),
        old_instance_ids: plan
            .old_instances
            .iter()
            .map(|i| i.parse().map_err(|e| DrError::invalid_input(format!("old instance id {i}: {e}"))))
            .collect::<DrResult<_>>()?,
        existing_cluster_id: names.existing.clone(),
        existing_instance_ids: names.existing_instances.clone(),
    };
    tracing::info!(
        step = "swap",
        run_id = %run.run_id,
        cluster = %names.existing,
        old_cluster = ?record.old_cluster_id.as_ref().map(ClusterId::as_str),
        "swap issued; the existing name now points at the restored cluster"
    );
    run.swap = Some(record);
    Ok(run)
}

fn check_payload(run: &RunState, names: &Names) -> DrResult<()> {
    let restored = need(&run.restored_cluster_id, "restoredClusterId")?;
    if !same_id(restored.as_str(), names.temp.as_str()) {
        return Err(DrError::invalid_input(format!(
            "restoredClusterId {restored} is not the temporary cluster {} of the settings",
            names.temp
        )));
    }
    let want: Vec<String> = names.temp_instances.iter().map(|i| i.as_str().to_ascii_lowercase()).collect();
    let got: Vec<String> =
        run.restored_instance_ids.iter().map(|i| i.as_str().to_ascii_lowercase()).collect();
    if got != want {
        return Err(DrError::invalid_input(format!(
            "restoredInstanceIds {got:?} are not the temporary instances {want:?} of the settings \
             (set by RestoreInstance)"
        )));
    }
    Ok(())
}

/// The temporary cluster and its instances are this run's and available.
async fn check_temp_ready(rds: &Client, names: &Names, run: &RunState) -> DrResult<()> {
    let temp = rds::find_cluster(rds, names.temp.as_str())
        .await?
        .ok_or_else(|| DrError::NotFound(format!("temporary cluster {}", names.temp)))?;
    if !rds::is_from_run(temp.tag_list(), run) {
        return Err(DrError::Conflict(format!(
            "cluster {} is not from run {} (run-id tag: {}); it will not be swapped in",
            names.temp,
            run.run_id,
            owner(temp.tag_list())
        )));
    }
    rds::require_ready(&format!("temporary cluster {}", names.temp), temp.status().unwrap_or("unknown"))?;
    for ti in &names.temp_instances {
        let i = rds::find_instance(rds, ti.as_str())
            .await?
            .ok_or_else(|| DrError::NotFound(format!("temporary instance {ti}")))?;
        if !rds::is_from_run(i.tag_list(), run) || !in_cluster(&i, names.temp.as_str()) {
            return Err(DrError::Conflict(format!(
                "instance {ti} is not this run's instance of {} (cluster {}, run-id tag: {})",
                names.temp,
                i.db_cluster_identifier().unwrap_or("none"),
                owner(i.tag_list())
            )));
        }
        rds::require_ready(&format!("temporary instance {ti}"), i.db_instance_status().unwrap_or("unknown"))?;
    }
    Ok(())
}

fn phase2(names: &Names) -> Vec<Rename> {
    let mut renames = vec![Rename::cluster("restored cluster", names.temp.as_str(), names.existing.as_str())];
    for (ti, ei) in names.temp_instances.iter().zip(&names.existing_instances) {
        renames.push(Rename::instance("restored instance", ti.as_str(), ei.as_str()));
    }
    renames
}

/// First run: nothing under the existing name; only phase 2.
async fn plan_first_run(rds: &Client, names: &Names, run: &RunState) -> DrResult<Plan> {
    check_temp_ready(rds, names, run).await?;
    for ei in &names.existing_instances {
        if let Some(i) = rds::find_instance(rds, ei.as_str()).await? {
            return Err(DrError::Conflict(format!(
                "instance id {ei} is taken by an instance of cluster {} although no cluster {} exists; \
                 nothing was changed",
                i.db_cluster_identifier().unwrap_or("none"),
                names.existing
            )));
        }
    }
    tracing::info!(step = "swap", run_id = %run.run_id, cluster = %names.existing, "first run: nothing to rename away");
    Ok(Plan { phase2: phase2(names), ..Plan::default() })
}

/// The previous cluster is under the existing name: both phases.
async fn plan_full_swap(rds: &Client, names: &Names, run: &RunState, existing: &DbCluster) -> DrResult<Plan> {
    check_temp_ready(rds, names, run).await?;
    rds::require_ready(&format!("cluster {}", names.existing), existing.status().unwrap_or("unknown"))?;
    let members = member_ids(existing);
    let mut plan = Plan {
        has_old: true,
        phase1: vec![Rename::cluster("previous cluster", names.existing.as_str(), names.old.as_str())],
        ..Plan::default()
    };
    for m in &members {
        let i = rds::find_instance(rds, m).await?.ok_or_else(|| {
            DrError::not_ready(format!("instance {m} of {}", names.existing), "not yet visible")
        })?;
        rds::require_ready(&format!("instance {m}"), i.db_instance_status().unwrap_or("unknown"))?;
        let target = old_instance_id(m, &names.stamp)?;
        if rds::find_instance(rds, target.as_str()).await?.is_some() {
            return Err(DrError::Conflict(format!(
                "instance id {target} (where {m} would go) is taken; nothing was changed"
            )));
        }
        plan.phase1.push(Rename::instance("previous instance", m, target.as_str()));
        plan.old_instances.push(target.to_string());
    }
    for ei in &names.existing_instances {
        if members.iter().any(|m| same_id(m, ei.as_str())) {
            continue;
        }
        if let Some(i) = rds::find_instance(rds, ei.as_str()).await? {
            return Err(DrError::Conflict(format!(
                "instance id {ei} is taken by an instance of cluster {}, not of {}; nothing was changed",
                i.db_cluster_identifier().unwrap_or("none"),
                names.existing
            )));
        }
    }
    plan.gate_cluster = Some(names.existing.to_string());
    plan.gate_instances = names.existing_instances.iter().map(ToString::to_string).collect();
    plan.phase2 = phase2(names);
    Ok(plan)
}

/// Phase-1 work on the members of the cluster under the old name: which
/// renames are done (or under way) and which are still to do.
async fn old_members(rds: &Client, names: &Names, old: &DbCluster, plan: &mut Plan) -> DrResult<()> {
    for m in member_ids(old) {
        if names.is_old_instance_name(&m) {
            let original = names.original_instance_name(&m);
            plan.done.push(Rename::instance("previous instance", &original, &m));
            plan.old_instances.push(m);
            continue;
        }
        let target = old_instance_id(&m, &names.stamp)?.to_string();
        let under_way = rds::find_instance(rds, &m)
            .await?
            .is_some_and(|i| pending_rename(&i).is_some_and(|p| same_id(p, &target)));
        let r = Rename::instance("previous instance", &m, &target);
        if under_way {
            plan.done.push(r)
        } else {
            plan.phase1.push(r)
        }
        plan.old_instances.push(target);
    }
    Ok(())
}

/// Phase 1 moved the previous cluster to the old name; the existing name is empty.
async fn plan_resume_after_phase1(
    rds: &Client,
    names: &Names,
    run: &RunState,
    old: &DbCluster,
) -> DrResult<Plan> {
    check_temp_ready(rds, names, run).await?;
    let mut plan = Plan {
        has_old: true,
        done: vec![Rename::cluster("previous cluster", names.existing.as_str(), names.old.as_str())],
        ..Plan::default()
    };
    old_members(rds, names, old, &mut plan).await?;
    tracing::info!(step = "swap", run_id = %run.run_id, cluster = %names.old, "phase 1 found done; continuing");
    plan.gate_cluster = Some(names.existing.to_string());
    plan.gate_instances = names.existing_instances.iter().map(ToString::to_string).collect();
    plan.phase2 = phase2(names);
    Ok(plan)
}

/// This run's cluster is under the existing name: only instance renames may remain.
async fn plan_after_cluster_swap(
    rds: &Client,
    names: &Names,
    run: &RunState,
    old: Option<&DbCluster>,
) -> DrResult<Plan> {
    let mut plan = Plan::default();
    if let Some(o) = old {
        plan.has_old = true;
        plan.done.push(Rename::cluster("previous cluster", names.existing.as_str(), names.old.as_str()));
        old_members(rds, names, o, &mut plan).await?;
    }
    plan.done.push(Rename::cluster("restored cluster", names.temp.as_str(), names.existing.as_str()));
    let e = names.existing.as_str();
    for (ti, ei) in names.temp_instances.iter().zip(&names.existing_instances) {
        let r = Rename::instance("restored instance", ti.as_str(), ei.as_str());
        match rds::find_instance(rds, ei.as_str()).await? {
            Some(i) if rds::is_from_run(i.tag_list(), run) && in_cluster(&i, e) => {
                plan.done.push(r);
                continue;
            }
            _ => {}
        }
        match rds::find_instance(rds, ti.as_str()).await? {
            Some(i) if rds::is_from_run(i.tag_list(), run) && in_cluster(&i, e) => {
                if pending_rename(&i).is_some_and(|p| same_id(p, ei.as_str())) {
                    plan.done.push(r);
                } else {
                    plan.gate_instances.push(ei.to_string());
                    plan.phase2.push(r);
                }
            }
            Some(i) => {
                return Err(DrError::Conflict(format!(
                    "instance {ti} is not this run's instance of {e} (cluster {}, run-id tag: {})",
                    i.db_cluster_identifier().unwrap_or("none"),
                    owner(i.tag_list())
                )));
            }
            None => {
                return Err(DrError::not_ready(
                    format!("restored instance {ti} (being renamed to {ei})"),
                    "renaming",
                ));
            }
        }
    }
    if plan.phase1.is_empty() && plan.phase2.is_empty() {
        tracing::info!(step = "swap", run_id = %run.run_id, cluster = %e, "swap already complete");
    }
    Ok(plan)
}

/// Before phase 2: the names phase 1 vacated must be free. A name still held
/// by the previous resource means its rename has not landed: retry later
/// (the state is consistent; the next call continues, the failure path can
/// roll back).
async fn gate(rds: &Client, names: &Names, plan: &Plan) -> DrResult<()> {
    if let Some(e) = &plan.gate_cluster
        && let Some(c) = rds::find_cluster(rds, e).await?
    {
        return Err(DrError::not_ready(
            format!("cluster {e} (previous copy being renamed away)"),
            c.status().unwrap_or("renaming"),
        ));
    }
    for ei in &plan.gate_instances {
        if let Some(i) = rds::find_instance(rds, ei).await? {
            let status = i.db_instance_status().unwrap_or("renaming");
            if in_cluster(&i, names.old.as_str()) || pending_rename(&i).is_some() {
                return Err(DrError::not_ready(
                    format!("instance {ei} (previous copy being renamed away)"),
                    status,
                ));
            }
            return Err(DrError::Conflict(format!(
                "instance id {ei} is held by an instance of cluster {}; the restored instance cannot take it",
                i.db_cluster_identifier().unwrap_or("none")
            )));
        }
    }
    Ok(())
}

async fn execute(rds: &Client, names: &Names, plan: &Plan, run_id: &RunId) -> DrResult<()> {
    let mut done = plan.done.clone();
    apply(rds, &plan.phase1, &mut done, plan.done.len(), run_id).await?;
    if !plan.phase2.is_empty() {
        gate(rds, names, plan).await?;
    }
    apply(rds, &plan.phase2, &mut done, plan.done.len(), run_id).await
}

/// Makes `renames` in order, adding each to `done`, whose first
/// `done_before` entries earlier calls made; a failed rename undoes `done`
/// ([`fail`]).
async fn apply(
    rds: &Client,
    renames: &[Rename],
    done: &mut Vec<Rename>,
    done_before: usize,
    run_id: &RunId,
) -> DrResult<()> {
    for r in renames {
        if let Err(e) = rename(rds, r, run_id).await {
            let changed = done.len() > done_before;
            return Err(fail(rds, r, e, done, changed, run_id).await);
        }
        done.push(r.clone());
    }
    Ok(())
}

/// A rename failed: undo everything done, newest first.
async fn fail(
    rds: &Client,
    failed: &Rename,
    err: DrError,
    done: &[Rename],
    changed: bool,
    run_id: &RunId,
) -> DrError {
    if done.is_empty() || (!changed && err.is_retryable()) {
        // Nothing changed by this call: the names are as the call found them.
        return err;
    }
    if matches!(err, DrError::Throttled(_) | DrError::ServiceUnavailable(_)) {
        // A transient API error is not a failed rename: the names are
        // consistent, the state machine retries and the next call continues
        // from what RDS shows (and the failure path rolls back if retries run out).
        tracing::warn!(step = "swap", run_id = %run_id, failed = %failed, error = %err,
            "transient error mid-swap; leaving the renames done so far for the retry to continue");
        return err;
    }
    tracing::error!(step = "swap", run_id = %run_id, failed = %failed, error = %err, "rename failed; rolling back");
    let mut undone = Vec::new();
    let mut stuck = Vec::new();
    for r in done.iter().rev() {
        match rename(rds, &r.undo(), run_id).await {
            Ok(()) => undone.push(format!("{} back at {}", r.label, r.from)),
            Err(e) => stuck.push(format!("{} {} is still at {} (undo failed: {e})", r.label, r.from, r.to)),
        }
    }
    let cause = format!("{failed} failed: {err}");
    if stuck.is_empty() {
        tracing::warn!(step = "swap", run_id = %run_id, "rollback complete");
        DrError::SwapFailed {
            detail: format!("{cause}; rolled back: {}", undone.join(", ")),
            rolled_back: true,
        }
    } else {
        tracing::error!(step = "swap", run_id = %run_id, stuck = ?stuck, "rollback incomplete");
        DrError::SwapFailed {
            detail: format!(
                "{cause}; rollback incomplete: {}; undone: {}",
                stuck.join("; "),
                undone.join(", ")
            ),
            rolled_back: false,
        }
    }
}

/// Failure mode: puts the previous cluster back under the existing name
/// when this run moved it away. Returns `payload` unchanged.
pub async fn roll_back(rds: &Client, settings: &TargetSettings, payload: Value) -> DrResult<Value> {
    let Some(run) = loose_run(&payload) else {
        tracing::error!(
            step = "swap",
            mode = "rollback",
            "payload has no usable runId/createdAt; cannot tell this run's resources, changing nothing"
        );
        return Ok(payload);
    };
    let names = Names::new(settings, &run)?;
    let existing = rds::find_cluster(rds, names.existing.as_str()).await?;
    let old = rds::find_cluster(rds, names.old.as_str()).await?;
    let mut renames = Vec::new();
    match (&existing, &old) {
        (Some(e), Some(o)) if rds::is_from_run(e.tag_list(), &run) => {
            if let Some(t) = rds::find_cluster(rds, names.temp.as_str()).await? {
                return Err(DrError::SwapFailed {
                    detail: format!(
                        "cannot move the restored cluster away from {}: {} is taken (run-id tag: {}); \
                         the previous copy stays at {}",
                        names.existing,
                        names.temp,
                        owner(t.tag_list()),
                        names.old
                    ),
                    rolled_back: false,
                });
            }
            renames.extend(move_restored_away(rds, &names, &run, e).await?);
            renames.extend(put_previous_back(&names, o));
        }
        (Some(e), None) if rds::is_from_run(e.tag_list(), &run) => {
            tracing::warn!(
                step = "swap",
                mode = "rollback",
                run_id = %run.run_id,
                cluster = %names.existing,
                "first run: no previous cluster; keeping the restored cluster under the existing name (the only copy)"
            );
        }
        (None, Some(o)) => renames.extend(put_previous_back(&names, o)),
        (Some(e), old) => {
            for m in member_ids(e) {
                if names.is_old_instance_name(&m) {
                    renames.push(Rename::instance(
                        "previous instance",
                        &m,
                        &names.original_instance_name(&m),
                    ));
                }
            }
            if old.is_some() {
                tracing::warn!(
                    step = "swap",
                    mode = "rollback",
                    run_id = %run.run_id,
                    "both {} and {} exist and the former is not this run's; leaving both",
                    names.existing,
                    names.old
                );
            }
        }
        (None, None) => {
            tracing::warn!(step = "swap", mode = "rollback", run_id = %run.run_id, "no cluster under {} or {}; nothing to roll back", names.existing, names.old);
        }
    }
    if renames.is_empty() {
        tracing::info!(step = "swap", mode = "rollback", run_id = %run.run_id, "nothing to rename");
        return Ok(payload);
    }
    let mut vacated: Vec<String> = Vec::new();
    let mut done: Vec<String> = Vec::new();
    for r in &renames {
        if let Err(e) = rename(rds, r, &run.run_id).await {
            if e.is_retryable() {
                return Err(e);
            }
            if matches!(e, DrError::Conflict(_)) && vacated.iter().any(|v| same_id(v, &r.to)) {
                // The name was vacated a moment ago; RDS has not finished that rename.
                return Err(DrError::not_ready(format!("{} (vacated, still renaming)", r.to), "renaming"));
            }
            return Err(DrError::SwapFailed {
                detail: format!(
                    "rollback: {r} failed: {e}; done so far: [{}]; cluster {} carries run {}'s tags: {}",
                    done.join(", "),
                    names.existing,
                    run.run_id,
                    existing.as_ref().is_some_and(|c| rds::is_from_run(c.tag_list(), &run))
                ),
                rolled_back: false,
            });
        }
        vacated.push(r.from.clone());
        done.push(r.to_string());
    }
    tracing::warn!(step = "swap", mode = "rollback", run_id = %run.run_id, renames = ?done, "previous names restored");
    Ok(payload)
}

/// The restored cluster's instances (this run's, under `EI[k]`) back to
/// `TI[k]`, then the cluster back to the temporary id.
async fn move_restored_away(
    rds: &Client,
    names: &Names,
    run: &RunState,
    existing: &DbCluster,
) -> DrResult<Vec<Rename>> {
    let mut renames = Vec::new();
    for m in member_ids(existing) {
        let Some(k) = names.index_of_existing_instance(&m) else { continue };
        let ours = rds::find_instance(rds, &m).await?.is_some_and(|i| rds::is_from_run(i.tag_list(), run));
        if ours {
            renames.push(Rename::instance("restored instance", &m, names.temp_instances[k].as_str()));
        }
    }
    renames.push(Rename::cluster("restored cluster", names.existing.as_str(), names.temp.as_str()));
    Ok(renames)
}

/// The previous cluster back to the existing id, then its instances.
fn put_previous_back(names: &Names, old: &DbCluster) -> Vec<Rename> {
    let mut renames = vec![Rename::cluster("previous cluster", names.old.as_str(), names.existing.as_str())];
    for m in member_ids(old) {
        if names.is_old_instance_name(&m) {
            renames.push(Rename::instance("previous instance", &m, &names.original_instance_name(&m)));
        }
    }
    renames
}

/// Lambda / local-engine entry: normal mode, or failure mode when the
/// payload carries `failure`.
pub async fn handle(ctx: Arc<StepContext>, input: Value) -> DrResult<Value> {
    let started = std::time::Instant::now();
    // Many clusters: the names of the payload's source cluster's pair.
    let (settings, rds) = super::target_rds(&ctx, input.get("sourceClusterId").and_then(Value::as_str))?;
    if is_failure(&input) {
        return roll_back(&rds, &settings, input).await;
    }
    let run = RunState::from_value(input)?;
    let out = self::run(&rds, &settings, run).await?;
    metrics::step_duration(metrics::TARGET, "Swap", &out, started.elapsed()).emit();
    Ok(out.to_value())
}

#[cfg(test)]
mod tests {
    use aws_sdk_rds::types::PendingModifiedValues;
    use aws_smithy_mocks::Rule;

    use super::*;
    use crate::steps::target_support::*;

    /// The payload Swap receives: restore and instances done.
    fn swap_run() -> RunState {
        let mut run = target_run();
        run.restored_cluster_id = Some(T.parse().expect("id"));
        run.restored_instance_ids = vec![TI.parse().expect("id")];
        run
    }

    fn failed_run() -> Value {
        let mut v = swap_run().to_value();
        v["failure"] = serde_json::json!({"Error": "SwapFailed", "Cause": "x"});
        v["failedState"] = "Swap".into();
        v
    }

    /// The temporary cluster and instance, restored by `run` and available.
    fn temp_ready(run: &RunState) -> Vec<Rule> {
        vec![
            describe_cluster(T, Some(cluster(T, "available", ours(run), &[TI]))),
            describe_instance(TI, Some(instance(TI, T, "available", ours(run)))),
        ]
    }

    /// The previous copy under the existing name.
    fn previous() -> aws_sdk_rds::types::DbCluster {
        cluster(E, "available", earlier_run(), &[EI])
    }

    fn previous_instance() -> aws_sdk_rds::types::DbInstance {
        instance(EI, E, "available", earlier_run())
    }

    /// The previous copy after phase 1, under the old name.
    fn moved_away() -> aws_sdk_rds::types::DbCluster {
        cluster(O, "available", earlier_run(), &[OI])
    }

    fn line(kind: &str, from: &str, to: &str) -> String {
        format!("rename {kind} {from} -> {to}")
    }

    /// Every rename a full swap and its rollback can make; `fail` names the
    /// one that answers with `fault`.
    fn renames(j: &Journal, fail: Option<(&str, Fault)>) -> Vec<Rule> {
        let f = |from: &str| fail.filter(|(name, _)| *name == from).map(|(_, fault)| fault);
        vec![
            rename_cluster(j, E, O, f(E)),
            rename_instance(j, EI, OI, f(EI)),
            rename_cluster(j, T, E, f(T)),
            rename_instance(j, TI, EI, f(TI)),
            rename_cluster(j, O, E, f(O)),
            rename_instance(j, OI, EI, f(OI)),
            rename_cluster(j, E, T, None),
            rename_instance(j, EI, TI, None),
        ]
    }

    /// Swap in normal mode on [`swap_run`] against `world` and every rename
    /// ([`renames`] with `fail`): the result and the renames made, in order.
    async fn run_swap(world: &[Rule], fail: Option<(&str, Fault)>) -> (DrResult<RunState>, Vec<String>) {
        let j = Journal::default();
        let renames = renames(&j, fail);
        let out = super::run(&rds(&all(&[world, &renames])), &settings(), swap_run()).await;
        (out, j.entries())
    }

    /// Swap against `world` fails with the ASL error `want` and renames
    /// nothing; the error, for more checks.
    async fn refused(world: &[Rule], want: &str) -> DrError {
        let (out, renamed) = run_swap(world, None).await;
        let err = out.expect_err(want);
        assert_eq!(err.asl_name(), want, "{err}");
        assert!(renamed.is_empty(), "{want}: nothing is renamed, got {renamed:?}");
        err
    }

    /// The failure mode on `payload` against `world` and every rename: the
    /// result and the renames made, in order.
    async fn run_roll_back(world: &[Rule], payload: Value) -> (DrResult<Value>, Vec<String>) {
        let j = Journal::default();
        let renames = renames(&j, None);
        let out = roll_back(&rds(&all(&[world, &renames])), &settings(), payload).await;
        (out, j.entries())
    }

    /// RDS as a full swap finds it: the previous copy under E; after phase 1,
    /// E and EI are free.
    fn full_swap_world(run: &RunState) -> Vec<Rule> {
        let mut rules = temp_ready(run);
        rules.extend([
            describe_cluster_seq(E, vec![Some(previous()), None]),
            describe_cluster(O, None),
            describe_instance_seq(EI, vec![Some(previous_instance()), None]),
            describe_instance(OI, None),
        ]);
        rules
    }

    /// `world` and the temporary copy, ready (see [`temp_ready`]).
    fn with_temp_ready(run: &RunState, world: impl IntoIterator<Item = Rule>) -> Vec<Rule> {
        let mut rules = temp_ready(run);
        rules.extend(world);
        rules
    }

    #[test]
    fn old_names_fit_in_63_characters() {
        assert_eq!(old_name("orders-dr", "20261125160005"), O);
        let long = format!("a{}", "b".repeat(62));
        let cut = old_name(&long, "20261125160005");
        assert_eq!(cut.len(), 63);
        assert!(cut.ends_with("-old-20261125160005"));
        assert!(cut.parse::<ClusterId>().is_ok());
        // A cut ending in a hyphen must not produce `--`.
        let hyphen_at_cut = format!("{}-{}", "a".repeat(43), "b".repeat(10));
        let cut = old_name(&hyphen_at_cut, "20261125160005");
        assert!(!cut.contains("--"), "{cut}");
        assert!(cut.parse::<InstanceId>().is_ok());
    }

    #[tokio::test]
    async fn full_swap_renames_the_previous_copy_away_then_the_restored_one_in() {
        let (out, renamed) = run_swap(&full_swap_world(&swap_run()), None).await;
        let out = out.expect("swapped");
        assert_eq!(
            renamed,
            [
                line("cluster", E, O),
                line("instance", EI, OI),
                line("cluster", T, E),
                line("instance", TI, EI)
            ]
        );
        let record = out.swap.expect("record");
        assert_eq!(record.old_cluster_id.as_ref().map(ClusterId::as_str), Some(O));
        assert_eq!(record.old_instance_ids.iter().map(InstanceId::as_str).collect::<Vec<_>>(), [OI]);
        assert_eq!(record.existing_cluster_id.as_str(), E);
        assert_eq!(record.existing_instance_ids.iter().map(InstanceId::as_str).collect::<Vec<_>>(), [EI]);
    }

    #[tokio::test]
    async fn first_run_renames_only_the_restored_cluster() {
        let world = with_temp_ready(
            &swap_run(),
            [describe_cluster(E, None), describe_cluster(O, None), describe_instance(EI, None)],
        );
        let (out, renamed) = run_swap(&world, None).await;
        let out = out.expect("swapped");
        assert_eq!(renamed, [line("cluster", T, E), line("instance", TI, EI)]);
        let record = out.swap.expect("record");
        assert_eq!(record.old_cluster_id, None);
        assert!(record.old_instance_ids.is_empty());
    }

    #[tokio::test]
    async fn first_run_with_the_instance_name_taken_is_a_conflict_and_renames_nothing() {
        let world = with_temp_ready(
            &swap_run(),
            [
                describe_cluster(E, None),
                describe_cluster(O, None),
                describe_instance(EI, Some(instance(EI, "someone-elses", "available", Vec::new()))),
            ],
        );
        let err = refused(&world, "Conflict").await;
        assert!(err.to_string().contains(EI), "{err}");
    }

    #[tokio::test]
    async fn a_failed_cluster_rename_in_phase_two_rolls_phase_one_back_in_reverse() {
        let world = full_swap_world(&swap_run());
        let (out, renamed) =
            run_swap(&world, Some((T, || rds_fault(400, "DBClusterAlreadyExistsFault")))).await;
        let err = out.expect_err("failed");
        assert_eq!(
            renamed,
            [
                line("cluster", E, O),
                line("instance", EI, OI),
                line("cluster", T, E),
                line("instance", OI, EI),
                line("cluster", O, E),
            ]
        );
        match err {
            DrError::SwapFailed { rolled_back, detail } => {
                assert!(rolled_back, "{detail}");
                assert!(detail.contains("restored cluster orders-dr-next -> orders-dr failed"), "{detail}");
            }
            other => panic!("want SwapFailed, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_throttled_rename_in_phase_two_is_retryable_and_rolls_nothing_back() {
        let world = full_swap_world(&swap_run());
        let (out, renamed) = run_swap(&world, Some((T, || rds_fault(400, "Throttling")))).await;
        let err = out.expect_err("throttled");
        assert_eq!(err.asl_name(), "Throttled", "{err}");
        // Phase 1 stays done for the retry to continue; nothing is renamed back.
        assert_eq!(renamed, [line("cluster", E, O), line("instance", EI, OI), line("cluster", T, E)]);
    }

    #[tokio::test]
    async fn a_failed_instance_rename_in_phase_two_undoes_phase_two_then_phase_one() {
        let world = full_swap_world(&swap_run());
        let (out, renamed) = run_swap(&world, Some((TI, || rds_fault(400, "InvalidDBInstanceState")))).await;
        let err = out.expect_err("failed");
        assert_eq!(
            renamed,
            [
                line("cluster", E, O),
                line("instance", EI, OI),
                line("cluster", T, E),
                line("instance", TI, EI),
                line("cluster", E, T),
                line("instance", OI, EI),
                line("cluster", O, E),
            ]
        );
        assert_eq!(
            err,
            match &err {
                DrError::SwapFailed { detail, .. } =>
                    DrError::SwapFailed { detail: detail.clone(), rolled_back: true },
                other => panic!("want SwapFailed, got {other:?}"),
            }
        );
        assert_eq!(err.asl_name(), "SwapFailed");
        assert!(!err.is_retryable());
    }

    #[tokio::test]
    async fn a_failed_undo_says_where_each_name_is() {
        let run = swap_run();
        let j = Journal::default();
        let world = full_swap_world(&run);
        // Phase 2 fails, and putting the previous cluster back fails too.
        let (fail_ti, fail_o) = (
            rename_instance(&j, TI, EI, Some(|| rds_fault(400, "InvalidDBInstanceState"))),
            rename_cluster(&j, O, E, Some(|| rds_fault(400, "DBClusterAlreadyExistsFault"))),
        );
        let rest = [
            rename_cluster(&j, E, O, None),
            rename_instance(&j, EI, OI, None),
            rename_cluster(&j, T, E, None),
            rename_cluster(&j, E, T, None),
            rename_instance(&j, OI, EI, None),
        ];
        let failing = [fail_ti, fail_o];
        let err =
            super::run(&rds(&all(&[&world, &failing, &rest])), &settings(), run).await.expect_err("failed");
        match err {
            DrError::SwapFailed { rolled_back, detail } => {
                assert!(!rolled_back);
                assert!(
                    detail.contains("previous cluster orders-dr is still at orders-dr-old-20261125160005"),
                    "{detail}"
                );
                assert!(detail.contains("restored cluster back at orders-dr-next"), "{detail}");
            }
            other => panic!("want SwapFailed, got {other:?}"),
        }
        assert_eq!(j.entries().last(), Some(&line("cluster", O, E)));
    }

    #[tokio::test]
    async fn a_busy_cluster_is_reported_before_any_change() {
        let world = with_temp_ready(
            &swap_run(),
            [
                describe_cluster(E, Some(cluster(E, "modifying", earlier_run(), &[EI]))),
                describe_cluster(O, None),
            ],
        );
        refused(&world, "ResourceNotReady").await;
    }

    #[tokio::test]
    async fn a_refused_first_rename_is_retryable_and_rolls_nothing_back() {
        let world = full_swap_world(&swap_run());
        let (out, renamed) =
            run_swap(&world, Some((E, || rds_fault(400, "InvalidDBClusterStateFault")))).await;
        let err = out.expect_err("busy");
        assert_eq!(err.asl_name(), "ResourceNotReady");
        assert!(err.is_retryable());
        assert_eq!(renamed, [line("cluster", E, O)]);
    }

    #[tokio::test]
    async fn a_phase_one_rename_still_in_flight_ends_in_not_ready_without_rollback() {
        let world = with_temp_ready(
            &swap_run(),
            [
                // RDS still shows the previous cluster under E after the rename call.
                describe_cluster_seq(
                    E,
                    vec![Some(previous()), Some(cluster(E, "renaming", earlier_run(), &[EI]))],
                ),
                describe_cluster(O, None),
                describe_instance(EI, Some(previous_instance())),
                describe_instance(OI, None),
            ],
        );
        let (out, renamed) = run_swap(&world, None).await;
        let err = out.expect_err("in flight");
        assert_eq!(err.asl_name(), "ResourceNotReady", "{err}");
        assert_eq!(renamed, [line("cluster", E, O), line("instance", EI, OI)]);
    }

    #[tokio::test]
    async fn a_retry_after_phase_one_continues_with_phase_two() {
        let world = with_temp_ready(
            &swap_run(),
            [describe_cluster(E, None), describe_cluster(O, Some(moved_away())), describe_instance(EI, None)],
        );
        let (out, renamed) = run_swap(&world, None).await;
        let out = out.expect("continued");
        assert_eq!(renamed, [line("cluster", T, E), line("instance", TI, EI)]);
        let record = out.swap.expect("record");
        assert_eq!(record.old_cluster_id.as_ref().map(ClusterId::as_str), Some(O));
        assert_eq!(record.old_instance_ids.iter().map(InstanceId::as_str).collect::<Vec<_>>(), [OI]);
    }

    #[tokio::test]
    async fn before_phase_two_the_existing_instance_name_must_be_free() {
        let pending = PendingModifiedValues::builder().db_instance_identifier(OI).build();
        let in_flight = aws_sdk_rds::types::DbInstance::builder()
            .db_instance_identifier(EI)
            .db_cluster_identifier(E)
            .db_instance_status("renaming")
            .pending_modified_values(pending)
            .build();
        let foreign = instance(EI, "someone-elses", "available", Vec::new());
        for (holder, want) in [(in_flight, "ResourceNotReady"), (foreign, "Conflict")] {
            let world = with_temp_ready(
                &swap_run(),
                [
                    describe_cluster(E, None),
                    describe_cluster(O, Some(moved_away())),
                    describe_instance(EI, Some(holder)),
                ],
            );
            // Phase 2 does not start.
            refused(&world, want).await;
        }
    }

    #[tokio::test]
    async fn a_retry_finishes_an_instance_rename_left_over() {
        let run = swap_run();
        let world = [
            describe_cluster(E, Some(cluster(E, "available", ours(&run), &[TI]))),
            describe_cluster(O, Some(moved_away())),
            describe_instance(EI, None),
            describe_instance(TI, Some(instance(TI, E, "available", ours(&run)))),
        ];
        let (out, renamed) = run_swap(&world, None).await;
        out.expect("finished");
        assert_eq!(renamed, [line("instance", TI, EI)]);
    }

    #[tokio::test]
    async fn a_retry_after_a_complete_swap_changes_nothing() {
        let run = swap_run();
        let world = [
            describe_cluster(E, Some(cluster(E, "renaming", ours(&run), &[EI]))),
            describe_cluster(O, Some(moved_away())),
            describe_instance(EI, Some(instance(EI, E, "available", ours(&run)))),
        ];
        let (out, renamed) = run_swap(&world, None).await;
        let out = out.expect("complete");
        assert!(renamed.is_empty(), "this run's cluster under E is never renamed away");
        let record = out.swap.expect("record");
        assert_eq!(record.old_cluster_id.as_ref().map(ClusterId::as_str), Some(O));
        assert_eq!(record.old_instance_ids.iter().map(InstanceId::as_str).collect::<Vec<_>>(), [OI]);
    }

    #[tokio::test]
    async fn an_instance_rename_under_way_counts_as_done() {
        let run = swap_run();
        let pending = PendingModifiedValues::builder().db_instance_identifier(EI).build();
        let renaming = aws_sdk_rds::types::DbInstance::builder()
            .db_instance_identifier(TI)
            .db_cluster_identifier(E)
            .db_instance_status("renaming")
            .set_tag_list(Some(ours(&run)))
            .pending_modified_values(pending)
            .build();
        let world = [
            describe_cluster(E, Some(cluster(E, "available", ours(&run), &[TI]))),
            describe_cluster(O, None),
            describe_instance(EI, None),
            describe_instance(TI, Some(renaming)),
        ];
        let (out, renamed) = run_swap(&world, None).await;
        out.expect("done");
        assert!(renamed.is_empty());
    }

    #[tokio::test]
    async fn both_names_taken_by_other_clusters_is_a_conflict() {
        let world = [
            describe_cluster(E, Some(previous())),
            describe_cluster(O, Some(cluster(O, "available", Vec::new(), &[]))),
        ];
        let err = refused(&world, "Conflict").await;
        assert!(err.to_string().contains(O), "{err}");
    }

    #[tokio::test]
    async fn the_temp_cluster_must_be_this_runs_and_available() {
        let run = swap_run();
        let cases: [(Option<aws_sdk_rds::types::DbCluster>, &str); 4] = [
            (None, "NotFound"),
            (Some(cluster(T, "available", earlier_run(), &[TI])), "Conflict"),
            (Some(cluster(T, "backing-up", ours(&run), &[TI])), "ResourceNotReady"),
            (Some(cluster(T, "failed", ours(&run), &[TI])), "ResourceFailed"),
        ];
        for (temp, want) in cases {
            let world = [
                describe_cluster(E, Some(previous())),
                describe_cluster(O, None),
                describe_cluster(T, temp),
                describe_instance(TI, Some(instance(TI, T, "available", ours(&run)))),
            ];
            refused(&world, want).await;
        }
    }

    #[tokio::test]
    async fn throttling_is_throttled_and_renames_nothing() {
        let describe =
            aws_smithy_mocks::mock!(aws_sdk_rds::Client::describe_db_clusters).then_http_response(throttled);
        refused(&[describe], "Throttled").await;
    }

    #[tokio::test]
    async fn a_payload_without_the_restore_results_is_refused_before_any_call() {
        let mut no_cluster = swap_run();
        no_cluster.restored_cluster_id = None;
        let err = super::run(&rds(&[]), &settings(), no_cluster).await.expect_err("missing");
        assert_eq!(err.asl_name(), "InvalidInput");
        assert!(err.to_string().contains("restoredClusterId"), "{err}");
        let mut other_instances = swap_run();
        other_instances.restored_instance_ids = vec!["someone-else-1".parse().expect("id")];
        let err = super::run(&rds(&[]), &settings(), other_instances).await.expect_err("mismatch");
        assert_eq!(err.asl_name(), "InvalidInput");
        assert!(err.to_string().contains("restoredInstanceIds"), "{err}");
    }

    #[tokio::test]
    async fn rollback_puts_the_previous_copy_back_and_the_restored_one_away() {
        let run = swap_run();
        let world = [
            describe_cluster(E, Some(cluster(E, "available", ours(&run), &[EI]))),
            describe_cluster(O, Some(moved_away())),
            describe_cluster(T, None),
            describe_instance(EI, Some(instance(EI, E, "available", ours(&run)))),
        ];
        let payload = failed_run();
        let (out, renamed) = run_roll_back(&world, payload.clone()).await;
        let out = out.expect("rolled");
        assert_eq!(
            renamed,
            [
                line("instance", EI, TI),
                line("cluster", E, T),
                line("cluster", O, E),
                line("instance", OI, EI)
            ]
        );
        assert_eq!(out, payload, "the failure-path payload passes through unchanged");
    }

    #[tokio::test]
    async fn rollback_on_a_first_run_keeps_the_only_copy() {
        let world = [
            describe_cluster(E, Some(cluster(E, "available", ours(&swap_run()), &[EI]))),
            describe_cluster(O, None),
        ];
        let payload = failed_run();
        let (out, renamed) = run_roll_back(&world, payload.clone()).await;
        let out = out.expect("kept");
        assert!(renamed.is_empty());
        assert_eq!(out, payload);
    }

    #[tokio::test]
    async fn rollback_after_phase_one_only_puts_the_previous_copy_back() {
        let world = [describe_cluster(E, None), describe_cluster(O, Some(moved_away()))];
        let (out, renamed) = run_roll_back(&world, failed_run()).await;
        out.expect("rolled");
        assert_eq!(renamed, [line("cluster", O, E), line("instance", OI, EI)]);
    }

    #[tokio::test]
    async fn rollback_changes_nothing_when_the_previous_copy_is_in_place() {
        let world = [describe_cluster(E, Some(previous())), describe_cluster(O, None)];
        let (out, renamed) = run_roll_back(&world, failed_run()).await;
        out.expect("nothing");
        assert!(renamed.is_empty());
    }

    #[tokio::test]
    async fn rollback_reads_a_partial_payload_loosely() {
        let world = [describe_cluster(E, None), describe_cluster(O, Some(moved_away()))];
        // Not a RunState (unknown key), but runId and createdAt are there.
        let payload = serde_json::json!({
            "runId": "run-1",
            "createdAt": "2026-11-25T16:00:05Z",
            "failedState": "Swap",
            "failure": {"Error": "States.Timeout", "Cause": ""},
            "somethingElse": true
        });
        let (out, renamed) = run_roll_back(&world, payload.clone()).await;
        assert_eq!(out.expect("rolled"), payload);
        assert_eq!(renamed, [line("cluster", O, E), line("instance", OI, EI)]);

        // Without createdAt the old name cannot be known: nothing is touched.
        let unusable = serde_json::json!({"runId": "run-1", "failure": {"Error": "x"}});
        let out = roll_back(&rds(&[]), &settings(), unusable.clone()).await.expect("unchanged");
        assert_eq!(out, unusable);
    }

    #[tokio::test]
    async fn rollback_into_a_name_still_being_vacated_is_retryable() {
        let run = swap_run();
        let j = Journal::default();
        let world = [
            describe_cluster(E, Some(cluster(E, "available", ours(&run), &[TI]))),
            describe_cluster(O, Some(moved_away())),
            describe_cluster(T, None),
        ];
        let renames = [
            rename_cluster(&j, E, T, None),
            rename_cluster(&j, O, E, Some(|| rds_fault(400, "DBClusterAlreadyExistsFault"))),
        ];
        let err =
            roll_back(&rds(&all(&[&world, &renames])), &settings(), failed_run()).await.expect_err("busy");
        assert_eq!(err.asl_name(), "ResourceNotReady", "{err}");
        assert_eq!(j.entries(), [line("cluster", E, T), line("cluster", O, E)]);
    }

    #[tokio::test]
    async fn handle_dispatches_a_failure_payload_to_the_rollback() {
        let not_found = "<ErrorResponse><Error><Code>DBClusterNotFoundFault</Code><Message>x</Message></Error>\
            </ErrorResponse>";
        let recorder = Recorder::replying([(404, not_found), (404, not_found)]);
        let payload = failed_run();
        let out = handle(recorder.target_elsewhere(settings()), payload.clone()).await.expect("rolled back");
        assert_eq!(out, payload);
        let sent = recorder.sent();
        assert_eq!(sent.len(), 2, "two look-ups, no rename");
        assert!(
            sent.iter().all(|s| s.body.contains("Action=DescribeDBClusters") && s.uri.contains("us-west-1"))
        );
    }
}
