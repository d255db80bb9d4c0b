//! The fault schedule of a chaos run: which of the emulator's fault rules
//! are armed during run `n`, drawn from a PRNG seeded with `(seed, n)` only,
//! so `--seed S` gives the same schedule for run `n` whatever runs came
//! before it (and `--from-run n` replays one run's faults alone).

use std::fmt;

use aurora_dr_emulator::{FaultRule, QuotaName};
use serde::Serialize;

use crate::config::Config;

/// The kinds of fault a run may get, as the table and the summary count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// `Throttling` answers, a few in a row (the SDK retries, then the state's Retry).
    Throttle,
    /// HTTP 500 `InternalFailure` or 503 `ServiceUnavailable`, no effect.
    ServerError,
    /// A crash between mutations: the call takes effect, its answer is lost.
    LostResponse,
    /// An SNS notification delivered twice.
    SnsDuplicate,
    /// An SNS notification delivered after the next one (or late).
    SnsOutOfOrder,
    /// The source snapshot ends `failed`.
    SnapshotFailed,
    /// The source snapshot never leaves `creating`.
    SnapshotStuck,
    /// The cross-region copy ends `failed`.
    CopyFailed,
    /// A cluster or instance rename fails once.
    RenameFails,
    /// A restored instance ends `failed` (before or after the swap).
    InstanceFails,
    /// An RDS quota (clusters, instances, manual snapshots, copies) nearly used up.
    QuotaPressure,
    /// RDS events of the target account lost or late: a callback wait ends
    /// by its own re-check instead (EventBridge delivers AWS service events
    /// on a best-effort basis).
    RdsEventLost,
}

impl FaultKind {
    pub const ALL: [FaultKind; 12] = [
        Self::Throttle,
        Self::ServerError,
        Self::LostResponse,
        Self::SnsDuplicate,
        Self::SnsOutOfOrder,
        Self::SnapshotFailed,
        Self::SnapshotStuck,
        Self::CopyFailed,
        Self::RenameFails,
        Self::InstanceFails,
        Self::QuotaPressure,
        Self::RdsEventLost,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Throttle => "throttle",
            Self::ServerError => "5xx",
            Self::LostResponse => "lost-response",
            Self::SnsDuplicate => "sns-duplicate",
            Self::SnsOutOfOrder => "sns-out-of-order",
            Self::SnapshotFailed => "snapshot-failed",
            Self::SnapshotStuck => "snapshot-stuck",
            Self::CopyFailed => "copy-failed",
            Self::RenameFails => "rename-fails",
            Self::InstanceFails => "instance-fails",
            Self::QuotaPressure => "quota-pressure",
            Self::RdsEventLost => "rds-event-lost",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One fault of a run's schedule: its kind, what it does, and the rule armed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fault {
    pub kind: FaultKind,
    pub what: String,
    pub rule: FaultRule,
}

/// RDS calls the source side makes (source account), DescribeDBClusters first.
pub const SOURCE_CALLS: [&str; 6] = [
    "DescribeDBClusters",
    "DescribeDBClusterSnapshots",
    "CreateDBClusterSnapshot",
    "CopyDBClusterSnapshot",
    "DescribeDBClusterSnapshotAttributes",
    "ModifyDBClusterSnapshotAttribute",
];

/// RDS calls the target side makes (target account).
pub const TARGET_CALLS: [&str; 9] = [
    "DescribeDBClusterSnapshots",
    "DescribeDBClusters",
    "DescribeDBInstances",
    "RestoreDBClusterFromSnapshot",
    "CreateDBInstance",
    "ModifyDBCluster",
    "ModifyDBInstance",
    "DeleteDBInstance",
    "DeleteDBCluster",
];

/// Calls that change something, whose answer a crash may lose: (side, service, operation).
const MUTATIONS: [(Side, &str, &str); 10] = [
    (Side::Source, "rds", "CreateDBClusterSnapshot"),
    (Side::Source, "rds", "CopyDBClusterSnapshot"),
    (Side::Source, "rds", "ModifyDBClusterSnapshotAttribute"),
    (Side::Source, "sns", "Publish"),
    (Side::Target, "rds", "RestoreDBClusterFromSnapshot"),
    (Side::Target, "rds", "CreateDBInstance"),
    (Side::Target, "rds", "ModifyDBCluster"),
    (Side::Target, "rds", "ModifyDBInstance"),
    (Side::Target, "rds", "DeleteDBInstance"),
    (Side::Target, "rds", "DeleteDBCluster"),
];

#[derive(Debug, Clone, Copy)]
enum Side {
    Source,
    Target,
}

/// The PRNG of run `n` under `seed`: a SplitMix64 step over both, so
/// neighbouring seeds and runs start far apart.
fn rng_of(seed: u64, n: usize) -> fastrand::Rng {
    let mut z = seed ^ (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    fastrand::Rng::with_seed(z ^ (z >> 31))
}

/// Run `n`'s faults under `seed`: 0 to `max_faults` of them, each of a kind
/// drawn uniformly, aimed at this configuration's accounts, regions and names.
pub fn schedule(seed: u64, n: usize, max_faults: usize, config: &Config) -> Vec<Fault> {
    let mut rng = rng_of(seed, n);
    let count = rng.usize(0..=max_faults);
    (0..count)
        .map(|_| {
            let kind = FaultKind::ALL[rng.usize(..FaultKind::ALL.len())];
            draw(kind, &mut rng, config)
        })
        .collect()
}

fn draw(kind: FaultKind, rng: &mut fastrand::Rng, config: &Config) -> Fault {
    let (src, tgt) = (&config.source, &config.target);
    let (src_account, tgt_account) = (src.account_id.as_str(), tgt.account_id.as_str());
    let snapshots = format!("{}-{}-*", src.snapshot_prefix, src.cluster_id);
    let pair = &tgt.pairs[rng.usize(..tgt.pairs.len())];
    let pick = |rng: &mut fastrand::Rng, list: &[&'static str]| list[rng.usize(..list.len())];
    let side_call = |rng: &mut fastrand::Rng| {
        if rng.bool() {
            (src_account, pick(rng, &SOURCE_CALLS))
        } else {
            (tgt_account, pick(rng, &TARGET_CALLS))
        }
    };
    let (what, rule): (String, FaultRule) = match kind {
        FaultKind::Throttle => {
            let (account, op) = side_call(rng);
            let times = rng.u32(1..=5);
            (
                format!("rds {op} throttled {times}x in {account}"),
                FaultRule::throttle("rds", op).in_account(account).times(times).into(),
            )
        }
        FaultKind::ServerError => {
            let (account, op) = side_call(rng);
            let times = rng.u32(1..=4);
            let rule = if rng.bool() {
                FaultRule::unavailable("rds", op)
            } else {
                FaultRule::error("rds", op, "InternalFailure").status(500)
            };
            (
                format!("rds {op} HTTP {} {times}x in {account}", rule.http_status),
                rule.in_account(account).times(times).into(),
            )
        }
        FaultKind::LostResponse => {
            let (side, service, op) = MUTATIONS[rng.usize(..MUTATIONS.len())];
            let account = match side {
                Side::Source => src_account,
                Side::Target => tgt_account,
            };
            let times = rng.u32(1..=3);
            (
                format!("{service} {op} answer lost {times}x in {account}"),
                FaultRule::lost_response(service, op).in_account(account).times(times).into(),
            )
        }
        FaultKind::SnsDuplicate => {
            let copies = rng.u32(2..=3);
            (
                format!("next notification delivered {copies}x"),
                FaultRule::duplicate_delivery().copies(copies).times(1).into(),
            )
        }
        FaultKind::SnsOutOfOrder => (
            "next notification held back".to_owned(),
            FaultRule::reordered_delivery().hold_seconds(0.5).times(1).into(),
        ),
        FaultKind::SnapshotFailed => (
            format!("snapshot {snapshots} ends failed"),
            FaultRule::snapshot_status_in(&snapshots, "failed", src_account, src.region.as_str()),
        ),
        FaultKind::SnapshotStuck => (
            format!("snapshot {snapshots} stays creating"),
            FaultRule::snapshot_status_in(&snapshots, "creating", src_account, src.region.as_str()),
        ),
        FaultKind::CopyFailed => (
            format!("copy {snapshots} ends failed"),
            FaultRule::snapshot_status_in(&snapshots, "failed", src_account, tgt.region.as_str()),
        ),
        FaultKind::RenameFails => {
            let skip = rng.u32(0..=1);
            let rule = match rng.usize(0..3) {
                0 => FaultRule::rename_fails(Some(pair.temp_cluster_id.as_str())),
                1 => FaultRule::rename_fails(Some(pair.existing_cluster_id.as_str())),
                _ => FaultRule::instance_rename_fails(None),
            };
            let whose =
                rule.matches.get("DBClusterIdentifier").cloned().unwrap_or_else(|| "an instance".into());
            (
                format!("rename of {whose} fails once (after {skip})"),
                rule.in_account(tgt_account).skip(skip).into(),
            )
        }
        FaultKind::InstanceFails => {
            let id =
                if rng.bool() { pair.existing_instance_id.as_str() } else { pair.temp_instance_id.as_str() };
            (
                format!("next instance named {id} ends failed"),
                FaultRule::instance_status(id, "failed", 0, Some(1)),
            )
        }
        FaultKind::RdsEventLost => {
            let (mode, rule) = if rng.bool() {
                ("lost", FaultRule::rds_event_lost())
            } else {
                ("0.5 s late", FaultRule::rds_event_delayed(0.5))
            };
            let rule = rule.in_account_region(tgt_account, tgt.region.as_str());
            match rng.usize(0..4) {
                0 => (format!("every RDS event in {tgt_account} {} {mode}", tgt.region), rule.into()),
                n => {
                    let times = n as u32;
                    (
                        format!("next {times} RDS event(s) in {tgt_account} {} {mode}", tgt.region),
                        rule.times(times).into(),
                    )
                }
            }
        }
        FaultKind::QuotaPressure => match rng.usize(0..4) {
            0 => {
                let limit = rng.u32(1..=4);
                (
                    format!("manual cluster snapshots at most {limit} in {src_account} {}", src.region),
                    FaultRule::quota_pressure_in(
                        QuotaName::ManualClusterSnapshots,
                        limit,
                        src_account,
                        src.region.as_str(),
                    ),
                )
            }
            1 => (
                format!("clusters at most 1 in {tgt_account} {}", tgt.region),
                FaultRule::quota_pressure_in(QuotaName::Clusters, 1, tgt_account, tgt.region.as_str()),
            ),
            2 => (
                format!("instances at most 1 in {tgt_account} {}", tgt.region),
                FaultRule::quota_pressure_in(QuotaName::Instances, 1, tgt_account, tgt.region.as_str()),
            ),
            _ => {
                let times = rng.u32(1..=5);
                (
                    format!("CopyDBClusterSnapshot SnapshotQuotaExceeded {times}x"),
                    FaultRule::copy_quota_exceeded().in_account(src_account).times(times).into(),
                )
            }
        },
    };
    Fault { kind, what, rule }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::parse(include_str!("../../../../examples/drill.toml")).expect("example config")
    }

    #[test]
    fn a_seed_gives_the_same_schedule_and_another_seed_another() {
        let c = config();
        let of = |seed| (1..=20).map(|n| schedule(seed, n, 3, &c)).collect::<Vec<_>>();
        assert_eq!(of(7), of(7));
        assert_ne!(of(7), of(8));
        // Run n's faults do not depend on the runs before it.
        assert_eq!(schedule(7, 12, 3, &c), of(7)[11]);
    }

    #[test]
    fn every_kind_is_drawn_and_counts_stay_in_bounds() {
        let c = config();
        let mut seen = std::collections::BTreeSet::new();
        for n in 1..=400 {
            let faults = schedule(42, n, 3, &c);
            assert!(faults.len() <= 3);
            seen.extend(faults.iter().map(|f| f.kind));
        }
        assert_eq!(seen.len(), FaultKind::ALL.len(), "kinds drawn: {seen:?}");
        assert!(schedule(42, 1, 0, &c).is_empty());
    }

    #[test]
    fn lost_or_late_rds_events_hit_the_target_account_and_region_only() {
        let c = config();
        let drawn: Vec<Fault> = (1..=400)
            .flat_map(|n| schedule(42, n, 3, &c))
            .filter(|f| f.kind == FaultKind::RdsEventLost)
            .collect();
        assert!(!drawn.is_empty());
        for f in &drawn {
            let FaultRule::RdsEvent(rule) = &f.rule else { panic!("{f:?}") };
            assert_eq!(
                (rule.account.as_deref(), rule.region.as_deref()),
                (Some(c.target.account_id.as_str()), Some(c.target.region.as_str())),
                "{f:?}"
            );
        }
        assert!(
            drawn.iter().any(|f| f.what.contains("lost")) && drawn.iter().any(|f| f.what.contains("late"))
        );
    }
}
