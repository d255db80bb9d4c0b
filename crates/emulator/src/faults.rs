//! Fault rules armed at the emulator (`POST /_aurora_dr/faults`): AWS errors
//! instead of answers, lost responses, snapshots and instances that end
//! badly, quota pressure, and duplicate or reordered SNS deliveries. The
//! JSON format is in `emulator/README.md`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::strict::QuotaName;

/// A rule armed at the emulator (`POST /_aurora_dr/faults`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultRule {
    /// Answer matching calls with an AWS error instead of running them.
    Error(ErrorRule),
    /// Snapshot `id` ends in `status` (e.g. `failed`) instead of `available`.
    SnapshotStatus {
        id: String,
        status: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        region: Option<String>,
    },
    /// The next instances that get identifier `id` (a glob; created or
    /// renamed) end in `status` instead of `available`: the first `skip`
    /// matching instances are left alone, then `count` (`None`: all) are hit.
    InstanceStatus {
        id: String,
        status: String,
        skip: u32,
        count: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        region: Option<String>,
    },
    /// At most `limit` cross-region copies `copying` at once per destination
    /// account and region; further CopyDBClusterSnapshot calls fail with
    /// `SnapshotQuotaExceeded`.
    CopyQuota {
        limit: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        region: Option<String>,
    },
    /// Quota pressure: the named quota is at most `limit` while armed (the
    /// lower of this and the configured quota applies, even when quotas are
    /// otherwise not enforced).
    Quota {
        name: QuotaName,
        limit: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        region: Option<String>,
    },
    /// Duplicate or out-of-order http(s) deliveries of SNS notifications.
    SnsDelivery(DeliveryRule),
    /// RDS events (to EventBridge) dropped or delayed.
    RdsEvent(RdsEventRule),
}

impl FaultRule {
    /// `operation` of `service` (signing name: `rds`, `sns`, `kms`, `sts`)
    /// answers `error_code` with HTTP 400, every time until reset.
    pub fn error(service: &str, operation: &str, error_code: &str) -> ErrorRule {
        ErrorRule {
            service: service.to_owned(),
            operation: operation.to_owned(),
            error_code: error_code.to_owned(),
            http_status: 400,
            ..ErrorRule::default()
        }
    }

    /// Throttling as AWS sends it (`Throttling` for query-protocol services,
    /// `ThrottlingException` for JSON ones), so SDK retries classify it.
    pub fn throttle(service: &str, operation: &str) -> ErrorRule {
        let code = match service {
            "rds" | "sns" | "sts" | "iam" => "Throttling",
            _ => "ThrottlingException",
        };
        Self::error(service, operation, code).message("Rate exceeded")
    }

    /// HTTP 503 `ServiceUnavailable` (a transient server error).
    pub fn unavailable(service: &str, operation: &str) -> ErrorRule {
        Self::error(service, operation, "ServiceUnavailable").status(503)
    }

    /// The next `CopyDBClusterSnapshot` calls answer `SnapshotQuotaExceeded`.
    pub fn copy_quota_exceeded() -> ErrorRule {
        Self::error("rds", "CopyDBClusterSnapshot", "SnapshotQuotaExceeded").message(
            "The request cannot be processed because it would exceed the maximum number of snapshots.",
        )
    }

    /// A cluster rename (`ModifyDBCluster` with `NewDBClusterIdentifier`) fails
    /// once with `InvalidDBClusterStateFault`; `cluster` narrows it to the
    /// cluster being renamed.
    pub fn rename_fails(cluster: Option<&str>) -> ErrorRule {
        let rule = Self::error("rds", "ModifyDBCluster", "InvalidDBClusterStateFault")
            .message("Injected fault: the cluster rename failed")
            .matching("NewDBClusterIdentifier", "*")
            .times(1);
        match cluster {
            Some(id) => rule.matching("DBClusterIdentifier", id),
            None => rule,
        }
    }

    /// Snapshot `id` (in any account and region) ends in `failed`.
    pub fn failed_snapshot(id: &str) -> Self {
        Self::snapshot_status(id, "failed")
    }

    /// Snapshot `id` ends in `status`.
    pub fn snapshot_status(id: &str, status: &str) -> Self {
        Self::SnapshotStatus { id: id.to_owned(), status: status.to_owned(), account: None, region: None }
    }

    /// Snapshots matching the glob `pattern` created later by `account` in
    /// `region` end in `status` (a glob never changes snapshots already there).
    pub fn snapshot_status_in(pattern: &str, status: &str, account: &str, region: &str) -> Self {
        Self::SnapshotStatus {
            id: pattern.to_owned(),
            status: status.to_owned(),
            account: Some(account.to_owned()),
            region: Some(region.to_owned()),
        }
    }

    /// After `skip` instances got identifier `id` (created or renamed), the
    /// next `count` that get it end in `status`.
    pub fn instance_status(id: &str, status: &str, skip: u32, count: Option<u32>) -> Self {
        Self::InstanceStatus {
            id: id.to_owned(),
            status: status.to_owned(),
            skip,
            count,
            account: None,
            region: None,
        }
    }

    /// At most `limit` cross-region copies in `copying` per destination.
    pub fn copy_quota(limit: u32) -> Self {
        Self::CopyQuota { limit, account: None, region: None }
    }

    /// Quota pressure: `name` allows at most `limit` (in every account and
    /// region) while armed, e.g. `quota_pressure(ManualClusterSnapshots, 3)`.
    pub fn quota_pressure(name: QuotaName, limit: u32) -> Self {
        Self::Quota { name, limit, account: None, region: None }
    }

    /// Quota pressure in one account and region.
    pub fn quota_pressure_in(name: QuotaName, limit: u32, account: &str, region: &str) -> Self {
        Self::Quota { name, limit, account: Some(account.to_owned()), region: Some(region.to_owned()) }
    }

    /// A snapshot that never finishes: `id` (a glob) stays `creating`.
    pub fn stuck_snapshot(id: &str) -> Self {
        Self::snapshot_status(id, "creating")
    }

    /// An instance rename (`ModifyDBInstance` with `NewDBInstanceIdentifier`)
    /// fails once with `InvalidDBInstanceState`; `instance` narrows it.
    pub fn instance_rename_fails(instance: Option<&str>) -> ErrorRule {
        let rule = Self::error("rds", "ModifyDBInstance", "InvalidDBInstanceState")
            .message("Injected fault: the instance rename failed")
            .matching("NewDBInstanceIdentifier", "*")
            .times(1);
        match instance {
            Some(id) => rule.matching("DBInstanceIdentifier", id),
            None => rule,
        }
    }

    /// A crash between mutations: `operation` takes effect, and its caller
    /// sees an HTTP 500 `InternalFailure` instead of the answer (the SDKs
    /// retry it, as after a lost response).
    pub fn lost_response(service: &str, operation: &str) -> ErrorRule {
        Self::error(service, operation, "InternalFailure")
            .status(500)
            .message("Injected fault: the change was made but its response was lost")
            .response_lost()
    }

    /// Matching RDS events are never sent to EventBridge (RDS emits events
    /// "on a best effort basis"): every one until reset, unless narrowed.
    pub fn rds_event_lost() -> RdsEventRule {
        RdsEventRule { mode: RdsEventMode::Lost, ..RdsEventRule::default() }
    }

    /// Matching RDS events reach EventBridge `seconds` late.
    pub fn rds_event_delayed(seconds: f64) -> RdsEventRule {
        RdsEventRule { mode: RdsEventMode::Delay, delay_seconds: Some(seconds), ..RdsEventRule::default() }
    }

    /// Every http(s) delivery of a notification is sent twice.
    pub fn duplicate_delivery() -> DeliveryRule {
        DeliveryRule { mode: DeliveryMode::Duplicate, copies: 2, ..DeliveryRule::default() }
    }

    /// A notification is held back and delivered after the next one to the
    /// same subscription (or after `hold_seconds`, 2 by default).
    pub fn reordered_delivery() -> DeliveryRule {
        DeliveryRule { mode: DeliveryMode::Reorder, copies: 1, ..DeliveryRule::default() }
    }
}

/// An error answer for matching calls; build it with [`FaultRule::error`].
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ErrorRule {
    pub service: String,
    pub operation: String,
    pub error_code: String,
    pub http_status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// How many calls fail; `None` is every call until reset.
    pub count: Option<u32>,
    /// Matching calls that pass before the rule starts failing them.
    pub skip: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Request parameter -> value, a case-insensitive glob (`*`: present).
    #[serde(rename = "match")]
    pub matches: BTreeMap<String, String>,
    /// The call takes effect and only its answer is the error (a response
    /// lost after the change, as when the caller crashes or times out).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub after: bool,
}

impl ErrorRule {
    /// Fails only the next `n` matching calls.
    pub fn times(mut self, n: u32) -> Self {
        self.count = Some(n);
        self
    }

    /// Lets the first `n` matching calls through.
    pub fn skip(mut self, n: u32) -> Self {
        self.skip = n;
        self
    }

    pub fn status(mut self, http_status: u16) -> Self {
        self.http_status = http_status;
        self
    }

    pub fn message(mut self, message: &str) -> Self {
        self.message = Some(message.to_owned());
        self
    }

    /// Only calls made by this account.
    pub fn in_account(mut self, account: &str) -> Self {
        self.account = Some(account.to_owned());
        self
    }

    /// Only calls to this region.
    pub fn in_region(mut self, region: &str) -> Self {
        self.region = Some(region.to_owned());
        self
    }

    /// The call is carried out, then answered with the error: the caller
    /// does not learn that its change was made.
    pub fn response_lost(mut self) -> Self {
        self.after = true;
        self
    }

    /// Only calls whose parameter `name` matches the glob `value` (`*`: present at all).
    pub fn matching(mut self, name: &str, value: &str) -> Self {
        self.matches.insert(name.to_owned(), value.to_owned());
        self
    }
}

impl From<ErrorRule> for FaultRule {
    fn from(rule: ErrorRule) -> Self {
        Self::Error(rule)
    }
}

/// How an `sns_delivery` rule changes a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryMode {
    /// The notification is delivered `copies` times.
    #[default]
    Duplicate,
    /// The notification arrives after the next one to the same subscription.
    Reorder,
}

/// Duplicate or out-of-order SNS deliveries; build it with
/// [`FaultRule::duplicate_delivery`] or [`FaultRule::reordered_delivery`].
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct DeliveryRule {
    pub mode: DeliveryMode,
    /// Topics whose notifications are hit (a glob on the topic ARN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Deliveries of each hit notification (duplicate mode).
    pub copies: u32,
    /// Longest wait for a next notification before a held one is delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_seconds: Option<f64>,
    /// How many notifications are hit; `None` is every one until reset.
    pub count: Option<u32>,
    /// Notifications let through before the rule starts.
    pub skip: u32,
    /// The topic owner's account and region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

impl DeliveryRule {
    /// Hits only the next `n` notifications.
    pub fn times(mut self, n: u32) -> Self {
        self.count = Some(n);
        self
    }

    /// Lets the first `n` notifications through.
    pub fn skip(mut self, n: u32) -> Self {
        self.skip = n;
        self
    }

    /// Only notifications of topics whose ARN matches the glob.
    pub fn on_topic(mut self, glob: &str) -> Self {
        self.topic = Some(glob.to_owned());
        self
    }

    /// Each hit notification is delivered `n` times (duplicate mode).
    pub fn copies(mut self, n: u32) -> Self {
        self.copies = n.max(1);
        self
    }

    /// A held notification waits at most `seconds` for the next one.
    pub fn hold_seconds(mut self, seconds: f64) -> Self {
        self.hold_seconds = Some(seconds);
        self
    }
}

impl From<DeliveryRule> for FaultRule {
    fn from(rule: DeliveryRule) -> Self {
        Self::SnsDelivery(rule)
    }
}

/// What an `rds_event` rule does to a matching event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RdsEventMode {
    /// The event is never sent.
    #[default]
    Lost,
    /// The event is sent `delay_seconds` late.
    Delay,
}

/// RDS events dropped or delayed; build it with [`FaultRule::rds_event_lost`]
/// or [`FaultRule::rds_event_delayed`].
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct RdsEventRule {
    pub mode: RdsEventMode,
    /// Event IDs hit (a glob, e.g. `RDS-EVENT-0170`); all when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Source identifiers hit (a glob on the cluster, instance or snapshot
    /// identifier); all when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_seconds: Option<f64>,
    /// How many events are hit; `None` is every one until reset.
    pub count: Option<u32>,
    /// Matching events let through before the rule starts.
    pub skip: u32,
    /// The resource's account and region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

impl RdsEventRule {
    /// Only events with this ID (a glob).
    pub fn event_id(mut self, glob: &str) -> Self {
        self.event_id = Some(glob.to_owned());
        self
    }

    /// Only events about resources whose identifier matches the glob.
    pub fn source(mut self, glob: &str) -> Self {
        self.source = Some(glob.to_owned());
        self
    }

    /// Hits only the next `n` matching events.
    pub fn times(mut self, n: u32) -> Self {
        self.count = Some(n);
        self
    }

    /// Lets the first `n` matching events through.
    pub fn skip(mut self, n: u32) -> Self {
        self.skip = n;
        self
    }

    /// Only events of resources in this account and region.
    pub fn in_account_region(mut self, account: &str, region: &str) -> Self {
        self.account = Some(account.to_owned());
        self.region = Some(region.to_owned());
        self
    }
}

impl From<RdsEventRule> for FaultRule {
    fn from(rule: RdsEventRule) -> Self {
        Self::RdsEvent(rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_rule_serialises_to_the_documented_format() {
        let rule: FaultRule =
            FaultRule::throttle("rds", "DescribeDBClusterSnapshots").times(2).in_region("us-west-1").into();
        assert_eq!(
            serde_json::to_value(&rule).unwrap(),
            json!({
                "kind": "error", "service": "rds", "operation": "DescribeDBClusterSnapshots",
                "error_code": "Throttling", "http_status": 400, "message": "Rate exceeded",
                "count": 2, "skip": 0, "region": "us-west-1", "match": {}
            })
        );
    }

    #[test]
    fn special_rules_serialise_with_their_kind() {
        assert_eq!(
            serde_json::to_value(FaultRule::failed_snapshot("snap-x")).unwrap(),
            json!({"kind": "snapshot_status", "id": "snap-x", "status": "failed"})
        );
        assert_eq!(
            serde_json::to_value(FaultRule::copy_quota(5)).unwrap(),
            json!({"kind": "copy_quota", "limit": 5})
        );
        assert_eq!(
            serde_json::to_value(FaultRule::quota_pressure(QuotaName::Clusters, 1)).unwrap(),
            json!({"kind": "quota", "name": "clusters", "limit": 1})
        );
        assert_eq!(
            serde_json::to_value(FaultRule::stuck_snapshot("dr-*")).unwrap(),
            json!({"kind": "snapshot_status", "id": "dr-*", "status": "creating"})
        );
    }

    #[test]
    fn delivery_rules_serialise_with_their_mode() {
        let rule: FaultRule = FaultRule::duplicate_delivery().copies(3).times(1).on_topic("*:dr").into();
        assert_eq!(
            serde_json::to_value(&rule).unwrap(),
            json!({"kind": "sns_delivery", "mode": "duplicate", "topic": "*:dr", "copies": 3,
                   "count": 1, "skip": 0})
        );
        let rule: FaultRule = FaultRule::reordered_delivery().hold_seconds(0.5).into();
        assert_eq!(
            serde_json::to_value(&rule).unwrap(),
            json!({"kind": "sns_delivery", "mode": "reorder", "copies": 1, "hold_seconds": 0.5,
                   "count": null, "skip": 0})
        );
    }

    #[test]
    fn rds_event_rules_serialise_with_their_mode() {
        let rule: FaultRule = FaultRule::rds_event_lost().event_id("RDS-EVENT-0170").times(1).into();
        assert_eq!(
            serde_json::to_value(&rule).unwrap(),
            json!({"kind": "rds_event", "mode": "lost", "event_id": "RDS-EVENT-0170", "count": 1, "skip": 0})
        );
        let rule: FaultRule = FaultRule::rds_event_delayed(2.5).source("dr-*").into();
        assert_eq!(
            serde_json::to_value(&rule).unwrap(),
            json!({"kind": "rds_event", "mode": "delay", "source": "dr-*", "delay_seconds": 2.5,
                   "count": null, "skip": 0})
        );
    }

    #[test]
    fn rename_failures_match_renames_only() {
        let rule = FaultRule::rename_fails(Some("prod"));
        assert_eq!(rule.count, Some(1));
        assert_eq!(rule.matches.get("NewDBClusterIdentifier").map(String::as_str), Some("*"));
        assert_eq!(rule.matches.get("DBClusterIdentifier").map(String::as_str), Some("prod"));
        let rule = FaultRule::instance_rename_fails(None);
        assert_eq!(rule.operation, "ModifyDBInstance");
        assert_eq!(rule.matches.get("NewDBInstanceIdentifier").map(String::as_str), Some("*"));
    }

    #[test]
    fn a_lost_response_is_applied_then_a_server_error() {
        let rule = FaultRule::lost_response("rds", "CreateDBClusterSnapshot");
        assert!(rule.after);
        assert_eq!((rule.http_status, rule.error_code.as_str()), (500, "InternalFailure"));
    }
}
