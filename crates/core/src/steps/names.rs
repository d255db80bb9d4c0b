//! The target side's cluster and instance names, shared by the steps that
//! restore, swap, roll back and delete.
//!
//! `E` = `EXISTING_CLUSTER_ID`, `T` = `TEMP_CLUSTER_ID`, `EI[k]`/`TI[k]` the
//! existing/temporary instance ids (writer first), and the renamed-away
//! names `O` = `{E}-old-{stamp}` and `{instance}-old-{stamp}` for each member
//! of the previous cluster (cut to fit 63 characters by
//! [`crate::ids::fit_rds_id`]; `stamp` = [`RunState::stamp`]). All come from
//! the settings and the run, never from the payload alone.

use aws_sdk_rds::types::DbCluster;

use crate::error::{DrError, DrResult};
use crate::ids::{ClusterId, InstanceId, fit_rds_id};
use crate::payload::RunState;
use crate::settings::TargetSettings;

/// RDS compares identifiers case-insensitively (and stores them lowercase).
pub(crate) fn same_id(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// `{base}-old-{stamp}`, a valid identifier of at most 63 characters.
pub fn old_name(base: &str, stamp: &str) -> String {
    fit_rds_id(base, &format!("-old-{stamp}"))
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

/// Every name a swap (and its roll-back) touches, for one run.
#[derive(Debug, Clone)]
pub(crate) struct SwapNames {
    pub(crate) existing: ClusterId,
    pub(crate) temp: ClusterId,
    pub(crate) old: ClusterId,
    pub(crate) existing_instances: Vec<InstanceId>,
    pub(crate) temp_instances: Vec<InstanceId>,
    pub(crate) stamp: String,
}

impl SwapNames {
    pub(crate) fn new(settings: &TargetSettings, run: &RunState) -> DrResult<Self> {
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

    /// Whether `id` is a name this run's swap gave a previous instance.
    pub(crate) fn is_old_instance_name(&self, id: &str) -> bool {
        id.to_ascii_lowercase().ends_with(&self.suffix())
    }

    /// The name an instance had before the swap renamed it to `old`: the
    /// configured existing instance id whose old name this is, else `old`
    /// without the suffix (exact unless the original was cut to fit 63).
    pub(crate) fn original_instance_name(&self, old: &str) -> String {
        if let Some(ei) =
            self.existing_instances.iter().find(|ei| same_id(&old_name(ei.as_str(), &self.stamp), old))
        {
            return ei.to_string();
        }
        old[..old.len().saturating_sub(self.suffix().len())].to_owned()
    }

    pub(crate) fn index_of_existing_instance(&self, id: &str) -> Option<usize> {
        self.existing_instances.iter().position(|ei| same_id(ei.as_str(), id))
    }
}

/// A cluster's member instances, writer first (so logs and records read in
/// a stable order).
pub(crate) fn member_ids(cluster: &DbCluster) -> Vec<String> {
    let mut members: Vec<(bool, String)> = cluster
        .db_cluster_members()
        .iter()
        .filter_map(|m| {
            Some((!m.is_cluster_writer().unwrap_or(false), m.db_instance_identifier()?.to_owned()))
        })
        .collect();
    members.sort_by_key(|(reader, _)| *reader);
    members.into_iter().map(|(_, id)| id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::target_support::{EI, O, OI, settings, target_run};

    #[test]
    fn old_names_carry_the_run_stamp() {
        assert_eq!(old_name("orders-dr", "20261125160005"), O);
        let names = SwapNames::new(&settings(), &target_run()).expect("names");
        assert_eq!(names.old.as_str(), O);
        assert!(names.is_old_instance_name(OI) && !names.is_old_instance_name(EI));
        assert_eq!(names.original_instance_name(OI), EI);
        assert_eq!(names.original_instance_name("reader-7-old-20261125160005"), "reader-7");
        assert_eq!(names.index_of_existing_instance("ORDERS-DR-1"), Some(0));
    }
}
