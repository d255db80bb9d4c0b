//! Swap's renames: each one issued, and everything done undone in reverse
//! order when one fails (except a transient API error: the retry continues).

use aws_sdk_rds::Client;

use super::plan::{Plan, gate};
use crate::error::{DrError, DrResult};
use crate::ids::RunId;
use crate::steps::names::SwapNames;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Cluster,
    Instance,
}

/// One identifier change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rename {
    pub(crate) kind: Kind,
    /// "previous cluster", "restored instance", ...: what the resource is.
    pub(crate) label: &'static str,
    pub(crate) from: String,
    pub(crate) to: String,
}

impl Rename {
    pub(crate) fn cluster(label: &'static str, from: &str, to: &str) -> Self {
        Self { kind: Kind::Cluster, label, from: from.to_owned(), to: to.to_owned() }
    }

    pub(crate) fn instance(label: &'static str, from: &str, to: &str) -> Self {
        Self { kind: Kind::Instance, label, from: from.to_owned(), to: to.to_owned() }
    }

    pub(crate) fn undo(&self) -> Self {
        Self { kind: self.kind, label: self.label, from: self.to.clone(), to: self.from.clone() }
    }
}

impl std::fmt::Display for Rename {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} -> {}", self.label, self.from, self.to)
    }
}

/// Renames `r.from` to `r.to`. A refusal while the new name exists and the
/// old one does not is this rename done: an earlier attempt took effect and
/// its answer was lost (a timeout, a crash, an HTTP 500 after the change),
/// and the retry of the same call found nothing under the old name, or the
/// new name taken. The API reference lists both faults for the call
/// (ModifyDBCluster: DBClusterNotFoundFault, DBClusterAlreadyExistsFault,
/// https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBCluster.html;
/// ModifyDBInstance: DBInstanceNotFound, DBInstanceAlreadyExists,
/// https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBInstance.html)
/// but not which one RDS checks first, so either is looked into. The new
/// name was free before the swap's first change (the plan checks it), so a
/// resource there while the old name is gone is the renamed one.
pub(crate) async fn rename(rds: &Client, r: &Rename, run_id: &RunId) -> DrResult<()> {
    match request_rename(rds, r, run_id).await {
        Err(e @ (DrError::NotFound(_) | DrError::Conflict(_))) => {
            let (from, to) = match r.kind {
                Kind::Cluster => (
                    crate::rds::find_cluster(rds, &r.from).await?.is_some(),
                    crate::rds::find_cluster(rds, &r.to).await?.is_some(),
                ),
                Kind::Instance => (
                    crate::rds::find_instance(rds, &r.from).await?.is_some(),
                    crate::rds::find_instance(rds, &r.to).await?.is_some(),
                ),
            };
            if !from && to {
                tracing::warn!(step = "swap", run_id = %run_id, rename = %r,
                    "the rename's answer was lost after it took effect; it is done");
                Ok(())
            } else {
                Err(e)
            }
        }
        other => other,
    }
}

async fn request_rename(rds: &Client, r: &Rename, run_id: &RunId) -> DrResult<()> {
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

/// `ResourceNotReady` while the resource `r` renames is mid-change (e.g.
/// still `renaming` from a rename a moment ago: RDS refuses to rename it
/// again until that one is done). A resource that is not there, or in a
/// terminal status such as `failed`, is left to the rename itself.
pub(crate) async fn require_settled(rds: &Client, r: &Rename) -> DrResult<()> {
    let status = match r.kind {
        Kind::Cluster => crate::rds::find_cluster(rds, &r.from).await?.map(|c| c.status().map(str::to_owned)),
        Kind::Instance => {
            crate::rds::find_instance(rds, &r.from).await?.map(|i| i.db_instance_status().map(str::to_owned))
        }
    };
    match status {
        Some(Some(s)) if crate::rds::classify_status(&s) == crate::rds::Progress::InProgress => {
            Err(DrError::not_ready(format!("{} {}", r.label, r.from), s))
        }
        _ => Ok(()),
    }
}

pub(super) async fn execute(rds: &Client, names: &SwapNames, plan: &Plan, run_id: &RunId) -> DrResult<()> {
    let mut done = plan.done.clone();
    apply(rds, &plan.phase1, &mut done, plan.done.len(), run_id).await?;
    delete_beyond_repair(rds, plan, &done, run_id).await?;
    if !plan.phase2.is_empty() {
        gate(rds, names, plan).await?;
    }
    apply(rds, &plan.phase2, &mut done, plan.done.len(), run_id).await
}

/// Deletes the previous instances beyond repair ([`crate::rds::beyond_repair`]),
/// once the previous cluster is under its old name: they serve nothing, RDS
/// refuses to rename them, and a deleted instance cannot come back, so a
/// rollback afterwards puts the cluster back without it. A refusal undoes
/// the renames done, like a failed rename.
async fn delete_beyond_repair(rds: &Client, plan: &Plan, done: &[Rename], run_id: &RunId) -> DrResult<()> {
    for (id, status) in &plan.deletions {
        tracing::warn!(step = "swap", run_id = %run_id, instance = %id, status = %status,
            "previous instance {id} was {status}: deleting it, not keeping it");
        if let Err(e) = crate::rds::delete_instance(rds, id).await {
            let what = format!("deletion of previous instance {id} ({status})");
            let changed = done.len() > plan.done.len();
            return Err(fail(rds, &what, e, done, changed, run_id).await);
        }
    }
    Ok(())
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
    failed: &(dyn std::fmt::Display + Sync),
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
    tracing::error!(step = "swap", run_id = %run_id, failed = %failed, error = %err, "swap change failed; rolling back");
    let mut undone = Vec::new();
    let mut stuck = Vec::new();
    for r in done.iter().rev() {
        match rename(rds, &r.undo(), run_id).await {
            Ok(()) => undone.push(format!("{} back at {}", r.label, r.from)),
            // RDS refuses to rename a resource again while its last rename is
            // in progress (minutes): the failure path's RollBackSwap waits for
            // it and puts it back.
            Err(e @ DrError::NotReady { .. }) => stuck.push(format!(
                "{} {} is still at {} (still renaming: RollBackSwap puts it back once RDS has finished; {e})",
                r.label, r.from, r.to
            )),
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
