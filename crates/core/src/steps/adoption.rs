//! Whether a run may replace what serves under the existing name.
//!
//! A cluster under `EXISTING_CLUSTER_ID` that carries aurora-dr's
//! `managed-by` tag is an earlier run's copy: a run replaces it. A cluster
//! there without that tag was made some other way (by hand, by another
//! tool): a run replaces it only with `ADOPT_EXISTING` on
//! ([`TargetSettings::adopt_existing`]). Off, the run refuses with
//! `Conflict` before it creates anything (Restore asks first, Swap again
//! before its first rename), so a refused run leaves both accounts as they
//! were and its failure notification says how to go on.
//!
//! Refusing is the safer of the two answers: a warning would come after the
//! rename, when the hand-made cluster has already stopped serving under its
//! name (its endpoints now lead to the restored copy) and keeps running,
//! and costing, under `{existing}-old-{stamp}`.

use aws_sdk_rds::Client;
use aws_sdk_rds::types::DbCluster;

use crate::error::{DrError, DrResult};
use crate::rds;
use crate::settings::{TargetSettings, keys};

/// `Ok` when `existing` (the cluster under the existing name) may be
/// replaced: aurora-dr made it, or adopting is on.
pub fn check(existing: &DbCluster, settings: &TargetSettings) -> DrResult<()> {
    if rds::is_managed(existing.tag_list()) || settings.adopt_existing {
        return Ok(());
    }
    let id = existing.db_cluster_identifier().unwrap_or(settings.existing_cluster_id.as_str());
    Err(DrError::Conflict(format!(
        "cluster {id} already serves under the existing name and has no aurora-dr tags (aurora-dr did not \
         make it); nothing was changed. To let aurora-dr replace it, set {} (TOML {}, template parameter \
         AdoptExisting): the next run renames it to {id}-old-<stamp> and keeps it running, named with the \
         commands that remove it. Or set another {}",
        keys::ADOPT_EXISTING.env,
        keys::ADOPT_EXISTING.toml,
        keys::EXISTING_CLUSTER_ID.env,
    )))
}

/// [`check`] for whatever is under the existing name now (nothing is fine).
pub async fn check_existing(rds_client: &Client, settings: &TargetSettings) -> DrResult<()> {
    match rds::find_cluster(rds_client, settings.existing_cluster_id.as_str()).await? {
        Some(existing) => check(&existing, settings),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::target_support::*;

    #[test]
    fn an_untagged_cluster_is_refused_unless_adopting() {
        let run = target_run();
        let hand_made = cluster(E, "available", Vec::new(), &[EI]);
        let mut s = settings();
        let err = check(&hand_made, &s).expect_err("refused");
        assert_eq!(err.asl_name(), "Conflict");
        for want in ["no aurora-dr tags", "nothing was changed", "ADOPT_EXISTING", "orders-dr-old-<stamp>"] {
            assert!(err.to_string().contains(want), "{want}: {err}");
        }
        // Another tool's tags are not aurora-dr's.
        let foreign = cluster(E, "available", vec![tag("owner", "team-a")], &[EI]);
        assert!(check(&foreign, &s).is_err());
        // aurora-dr's own earlier copy, or this run's, is replaced as always.
        assert!(check(&cluster(E, "available", earlier_run(), &[EI]), &s).is_ok());
        assert!(check(&cluster(E, "available", ours(&run), &[EI]), &s).is_ok());
        s.adopt_existing = true;
        check(&hand_made, &s).expect("adopting");
    }
}
