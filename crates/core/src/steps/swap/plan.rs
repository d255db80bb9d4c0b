//! Swap's plan: from RDS state and tags, what earlier calls already did and
//! what is left, after checking every resource involved (nothing changes
//! while any of them is busy or not this run's).

use aws_sdk_rds::Client;
use aws_sdk_rds::types::{DbCluster, DbInstance};

use super::apply::Rename;
use crate::error::{DrError, DrResult};
use crate::payload::{RunState, need};
use crate::rds;
use crate::steps::names::{SwapNames, member_ids, old_instance_id, same_id};

/// What is left to do, and what earlier calls already did (for a rollback).
#[derive(Debug, Default)]
pub(super) struct Plan {
    pub(super) done: Vec<Rename>,
    pub(super) phase1: Vec<Rename>,
    /// Names phase 2 renames into, checked free (or still being vacated) before phase 2.
    pub(super) gate_cluster: Option<String>,
    pub(super) gate_instances: Vec<String>,
    pub(super) phase2: Vec<Rename>,
    /// Where the previous instances end up.
    pub(super) old_instances: Vec<String>,
    pub(super) has_old: bool,
    /// Previous instances beyond repair, with their status: deleted right
    /// after phase 1 instead of renamed away ([`rds::beyond_repair`]).
    pub(super) deletions: Vec<(String, String)>,
    /// Previous instances an earlier call already deleted (`deleting` or gone).
    pub(super) deleted: Vec<String>,
}

fn in_cluster(instance: &DbInstance, cluster: &str) -> bool {
    instance.db_cluster_identifier().is_some_and(|c| same_id(c, cluster))
}

fn pending_rename(instance: &DbInstance) -> Option<&str> {
    instance.pending_modified_values().and_then(|p| p.db_instance_identifier())
}

pub(crate) fn owner(tags: &[aws_sdk_rds::types::Tag]) -> &str {
    rds::tag_value(tags, rds::TAG_RUN_ID).unwrap_or("none")
}
pub(super) fn check_payload(run: &RunState, names: &SwapNames) -> DrResult<()> {
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
async fn check_temp_ready(rds: &Client, names: &SwapNames, run: &RunState) -> DrResult<()> {
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

fn phase2(names: &SwapNames) -> Vec<Rename> {
    let mut renames = vec![Rename::cluster("restored cluster", names.temp.as_str(), names.existing.as_str())];
    for (ti, ei) in names.temp_instances.iter().zip(&names.existing_instances) {
        renames.push(Rename::instance("restored instance", ti.as_str(), ei.as_str()));
    }
    renames
}

/// First run: nothing under the existing name; only phase 2.
pub(super) async fn first_run(rds: &Client, names: &SwapNames, run: &RunState) -> DrResult<Plan> {
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
pub(super) async fn full_swap(
    rds: &Client,
    names: &SwapNames,
    run: &RunState,
    existing: &DbCluster,
) -> DrResult<Plan> {
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
        let status = i.db_instance_status().unwrap_or("unknown");
        if rds::beyond_repair(status) && rds::is_managed(i.tag_list()) {
            // The restored copy is verified and available (check_temp_ready):
            // the broken instance is replaced, not kept. Only aurora-dr's
            // own: an adopted cluster's instance is never deleted (the
            // refusal below names it).
            tracing::warn!(step = "swap", run_id = %run.run_id, instance = %m, status,
                "previous instance is beyond repair: it will be deleted, not kept");
            plan.deletions.push((m.clone(), status.to_owned()));
            continue;
        }
        rds::require_ready(&format!("instance {m}"), status)?;
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
async fn old_members(rds: &Client, names: &SwapNames, old: &DbCluster, plan: &mut Plan) -> DrResult<()> {
    for m in member_ids(old) {
        if names.is_old_instance_name(&m) {
            let original = names.original_instance_name(&m);
            plan.done.push(Rename::instance("previous instance", &original, &m));
            plan.old_instances.push(m);
            continue;
        }
        let target = old_instance_id(&m, &names.stamp)?.to_string();
        let found = rds::find_instance(rds, &m).await?;
        let status = found.as_ref().and_then(|i| i.db_instance_status()).unwrap_or("gone");
        if status == "deleting" || (found.is_none() && rds::find_instance(rds, &target).await?.is_none()) {
            // Deleted by an earlier call (it was beyond repair).
            plan.deleted.push(m);
            continue;
        }
        if rds::beyond_repair(status) && found.as_ref().is_some_and(|i| rds::is_managed(i.tag_list())) {
            plan.deletions.push((m, status.to_owned()));
            continue;
        }
        let under_way = found.is_some_and(|i| pending_rename(&i).is_some_and(|p| same_id(p, &target)));
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
pub(super) async fn resume_after_phase1(
    rds: &Client,
    names: &SwapNames,
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
pub(super) async fn after_cluster_swap(
    rds: &Client,
    names: &SwapNames,
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
pub(super) async fn gate(rds: &Client, names: &SwapNames, plan: &Plan) -> DrResult<()> {
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
            if in_cluster(&i, names.old.as_str()) || pending_rename(&i).is_some() || status == "deleting" {
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
