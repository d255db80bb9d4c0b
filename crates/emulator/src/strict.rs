//! Which RDS rules the emulator enforces ([`Strictness`]) and its quotas
//! ([`Quotas`]). Defaults are strict, as RDS; every rule can be turned off
//! on its own. `emulator/README.md` lists each rule with the AWS page it follows.

use serde::{Deserialize, Serialize};

/// One switch per RDS rule the compatibility layer enforces; `true` (the
/// default) enforces it, `false` leaves moto's lenient behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Strictness {
    /// Cluster, instance and cluster snapshot identifiers: 1-63 letters,
    /// digits or hyphens, first a letter, no `--`, no trailing hyphen.
    pub identifiers: bool,
    /// A cluster created with StorageEncrypted and no KmsKeyId is under the
    /// account's `alias/aws/rds` key of the Region.
    pub aws_managed_key: bool,
    /// A snapshot under the AWS managed key cannot be shared.
    pub managed_key_share: bool,
    /// No KmsKeyId for a copy of an unencrypted snapshot; a KmsKeyId for an
    /// encrypted copy into another Region or from another account.
    pub copy_encryption: bool,
    /// Protected clusters cannot be deleted; Aurora instances always can.
    pub deletion_protection: bool,
    /// A `db.serverless` instance needs the cluster's ServerlessV2ScalingConfiguration.
    pub serverless: bool,
    /// A restore takes only what the snapshot holds, not the source cluster's settings.
    pub restore_from_snapshot: bool,
    /// PubliclyAccessible defaults as RDS documents (public in the default VPC).
    pub public_access: bool,
    /// Cluster, instance, manual snapshot, concurrent copy and share quotas.
    pub quotas: bool,
    /// `deleting` before a deleted resource disappears; operations on a
    /// renaming or deleting resource refused with the RDS state fault.
    pub transitions: bool,
    /// A renamed endpoint reaches the resource only after the `dns` delay;
    /// the old name keeps reaching it for the `dns_cache` delay.
    pub dns: bool,
}

impl Strictness {
    /// Every rule enforced (the default).
    pub const fn strict() -> Self {
        Self::all(true)
    }

    /// No rule enforced: the behaviour of the layer before these rules.
    pub const fn lenient() -> Self {
        Self::all(false)
    }

    const fn all(on: bool) -> Self {
        Self {
            identifiers: on,
            aws_managed_key: on,
            managed_key_share: on,
            copy_encryption: on,
            deletion_protection: on,
            serverless: on,
            restore_from_snapshot: on,
            public_access: on,
            quotas: on,
            transitions: on,
            dns: on,
        }
    }
}

impl Default for Strictness {
    fn default() -> Self {
        Self::strict()
    }
}

/// RDS quotas per account and Region (defaults: Aurora user guide, "Quotas
/// and constraints for Amazon Aurora"; "Copying a DB cluster snapshot";
/// "Sharing a DB cluster snapshot").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quotas {
    /// DB clusters (DBClusterQuotaExceededFault).
    pub clusters: u32,
    /// DB instances (InstanceQuotaExceeded).
    pub instances: u32,
    /// Manual DB cluster snapshots (SnapshotQuotaExceeded).
    pub manual_cluster_snapshots: u32,
    /// Cross-Region copies in progress per destination Region (SnapshotQuotaExceeded).
    pub concurrent_copies: u32,
    /// Accounts a manual snapshot is shared with (SharedSnapshotQuotaExceeded).
    pub accounts_per_share: u32,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            clusters: 40,
            instances: 40,
            manual_cluster_snapshots: 100,
            concurrent_copies: 5,
            accounts_per_share: 20,
        }
    }
}

/// One quota, as named by [`Quotas`] and by quota-pressure fault rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaName {
    Clusters,
    Instances,
    ManualClusterSnapshots,
    ConcurrentCopies,
    AccountsPerShare,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strictness_serialises_every_switch() {
        let value = serde_json::to_value(Strictness::default()).unwrap();
        let switches = value.as_object().unwrap();
        assert_eq!(switches.len(), 11);
        assert!(switches.values().all(|v| v == &json!(true)));
        let lenient = Strictness { dns: true, ..Strictness::lenient() };
        let value = serde_json::to_value(lenient).unwrap();
        assert_eq!(value["dns"], json!(true));
        assert_eq!(value["quotas"], json!(false));
    }

    #[test]
    fn quotas_default_to_the_documented_figures() {
        assert_eq!(
            serde_json::to_value(Quotas::default()).unwrap(),
            json!({"clusters": 40, "instances": 40, "manual_cluster_snapshots": 100,
                   "concurrent_copies": 5, "accounts_per_share": 20})
        );
        assert_eq!(
            serde_json::to_value(QuotaName::ManualClusterSnapshots).unwrap(),
            json!("manual_cluster_snapshots")
        );
    }
}
