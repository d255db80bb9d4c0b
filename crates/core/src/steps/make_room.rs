//! MakeRoom and MakeRoomAfterQuotaError (source side, before CreateSnapshot):
//! applies this cluster's retention early when the manual cluster snapshot
//! quota leaves too little room for the run.
//!
//! Aurora allows 100 manual cluster snapshots per account and Region by
//! default (Aurora User Guide, "Quotas and constraints for Amazon Aurora",
//! <https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/CHAP_Limits.html>);
//! past it, CreateDBClusterSnapshot and CopyDBClusterSnapshot fail with
//! `SnapshotQuotaExceeded`. Retention runs at the end of a run, so without
//! this step an account that reached the quota could never create the
//! snapshot whose run would have pruned.
//!
//! Served by the apply-retention function (its role is the only one of the
//! side allowed to delete the tool's snapshots), input
//! `{"mode": "makeRoom", "quotaReached": bool, "run": <RunState>}`.
//!
//! # What it does
//! In each place the run will write to (the source region's snapshots and
//! the target region's copies, both of the source account) it reads the
//! quota: `DescribeAccountAttributes`, quota `ManualClusterSnapshots`, `Used`
//! and `Max` (RDS API Reference, "AccountQuota",
//! <https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_AccountQuota.html>).
//! That call is advisory and made once (no SDK retries); when it fails or
//! does not report the quota, the step counts the account's manual cluster
//! snapshots in that region against the default of 100. A run of this
//! deployment takes one snapshot per configured cluster in each place
//! ([`room_needed`]); where fewer are free, or in the source region when
//! `quotaReached` is set (RDS has just refused the snapshot), it applies this
//! cluster's retention there ([`super::apply_retention::prune`]: the same
//! rules, so it never deletes this run's, foreign or in-progress snapshots,
//! nor the newest `RETAIN_SNAPSHOTS`). Elsewhere it deletes nothing.
//!
//! Output: a [`RoomReport`] (the machine discards it with `ResultPath: null`;
//! it stays in the history). Errors: `InvalidInput` (bad input, a target-side
//! deployment) and the AWS classifications of the listing and the deletes.
//! The machine never lets them decide the run: CreateSnapshot goes on, and
//! its own result is the cluster's.
//!
//! Idempotency: pruning twice deletes nothing more.

use aws_sdk_rds::Client;
use aws_smithy_types::retry::RetryConfig;
use serde::Serialize;

use crate::error::{DrError, DrResult};
use crate::ids::Region;
use crate::payload::RunState;
use crate::rds;
use crate::settings::SourceSettings;
use crate::steps::apply_retention::{Place, PlaceReport, Scope, prune};

const STEP: &str = "make_room";

/// The states this module serves (through the apply-retention function).
pub const STATES: [&str; 2] = ["MakeRoom", "MakeRoomAfterQuotaError"];

/// The `mode` of its input.
pub const MODE: &str = super::input::MAKE_ROOM_MODE;

/// The quota's name in `DescribeAccountAttributes`.
pub const QUOTA_NAME: &str = "ManualClusterSnapshots";

/// Aurora's default quota of manual cluster snapshots per account and Region,
/// assumed when `DescribeAccountAttributes` does not answer.
pub const DEFAULT_QUOTA: i64 = 100;

/// Where a quota reading came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum QuotaSource {
    /// `DescribeAccountAttributes` reported `ManualClusterSnapshots`.
    AccountAttributes,
    /// The account's manual cluster snapshots counted, against [`DEFAULT_QUOTA`].
    Count,
}

/// The manual cluster snapshot quota of one account and region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Quota {
    pub used: i64,
    pub max: i64,
    pub source: QuotaSource,
}

impl Quota {
    /// Snapshots that may still be created.
    pub fn free(&self) -> i64 {
        (self.max - self.used).max(0)
    }
}

/// What MakeRoom found and did in one place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomPlace {
    pub place: Place,
    pub region: String,
    pub quota: Quota,
    /// Free snapshots this run needs there.
    pub needed: i64,
    /// Retention applied here (absent when there was room enough).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<PlaceReport>,
}

/// The step's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoomReport {
    pub places: Vec<RoomPlace>,
}

/// The room one run of this deployment takes in each place: one snapshot
/// (source region) and one copy (target region) per configured cluster,
/// as the clusters of a run are snapshotted side by side.
pub fn room_needed(settings: &SourceSettings) -> i64 {
    i64::try_from(settings.cluster_ids.len().max(1)).unwrap_or(i64::MAX)
}

/// The quota in the client's region: `DescribeAccountAttributes` (one
/// attempt), else a count of the account's manual cluster snapshots against
/// [`DEFAULT_QUOTA`].
pub async fn read_quota(rds: &Client, region: &Region) -> DrResult<Quota> {
    let attributes = rds
        .describe_account_attributes()
        .customize()
        .config_override(aws_sdk_rds::config::Builder::default().retry_config(RetryConfig::disabled()))
        .send()
        .await;
    match attributes {
        Ok(out) => {
            let quota = out.account_quotas().iter().find(|q| q.account_quota_name() == Some(QUOTA_NAME));
            if let Some((used, max)) = quota.and_then(|q| Some((q.used()?, q.max()?))) {
                return Ok(Quota { used, max, source: QuotaSource::AccountAttributes });
            }
            tracing::warn!(step = STEP, region = %region, "DescribeAccountAttributes reports no {QUOTA_NAME}; counting");
        }
        Err(e) => {
            let e = DrError::from_sdk("DescribeAccountAttributes", e);
            tracing::warn!(step = STEP, region = %region, error = %e, "quota not readable; counting");
        }
    }
    let used = rds::list_manual_cluster_snapshots(rds, None).await?.len();
    Ok(Quota {
        used: i64::try_from(used).unwrap_or(i64::MAX),
        max: DEFAULT_QUOTA,
        source: QuotaSource::Count,
    })
}

/// Makes room in both places of the source side; see the module doc.
/// `rds` calls the source region, `target_rds` the target region.
pub async fn run(
    rds: &Client,
    target_rds: &Client,
    settings: &SourceSettings,
    run: &RunState,
    quota_reached: bool,
) -> DrResult<RoomReport> {
    run_regions(rds, target_rds, &[], settings, run, quota_reached).await
}

/// [`run`] with many target regions: room for the copies in every one
/// (`others`: each other target region and a client there).
pub async fn run_regions(
    rds: &Client,
    target_rds: &Client,
    others: &[(Region, Client)],
    settings: &SourceSettings,
    run: &RunState,
    quota_reached: bool,
) -> DrResult<RoomReport> {
    super::input::no_failure(run, STATES[0])?;
    if let Some(c) = &run.source_cluster_id
        && !c.as_str().eq_ignore_ascii_case(settings.cluster_id.as_str())
    {
        return Err(DrError::invalid_input(format!(
            "payload names source cluster {c}, but this deployment serves {}",
            settings.cluster_id
        )));
    }
    let needed = room_needed(settings);
    let mut places = Vec::new();
    let mut places_to_check = vec![
        (Place::SourceRegion, rds, &settings.region),
        (Place::TargetRegion, target_rds, &settings.target_region),
    ];
    places_to_check.extend(others.iter().map(|(region, client)| (Place::TargetRegion, client, region)));
    for (place, client, region) in places_to_check {
        let quota = read_quota(client, region).await?;
        let refused = quota_reached && place == Place::SourceRegion;
        let short = quota.free() < needed;
        tracing::info!(step = STEP, run_id = %run.run_id, place = ?place, region = %region, used = quota.used,
            max = quota.max, source = ?quota.source, needed, quota_reached = refused, "snapshot quota");
        let retention = if refused || short {
            let scope = Scope::source(settings, run, place, region, Vec::new());
            Some(prune(client, &scope, settings.retention).await?)
        } else {
            None
        };
        places.push(RoomPlace { place, region: region.to_string(), quota, needed, retention });
    }
    Ok(RoomReport { places })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use aws_sdk_rds::operation::describe_account_attributes::{
        DescribeAccountAttributesError, DescribeAccountAttributesOutput,
    };
    use aws_sdk_rds::operation::describe_db_cluster_snapshots::DescribeDbClusterSnapshotsOutput;
    use aws_sdk_rds::types::{AccountQuota, DbClusterSnapshot};
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::settings::Retention;
    use crate::steps::test_support::{self as ts};

    /// Tool snapshots of `orders` from runs `days` days before this one (1 = the newest).
    fn tool_snapshots(region: &str, days: &[i64]) -> Vec<DbClusterSnapshot> {
        let now = ts::started_run().created_at;
        days.iter()
            .map(|d| {
                let name =
                    format!("aurora-dr-orders-{}", crate::payload::stamp(now - time::Duration::days(*d)));
                DbClusterSnapshot::builder()
                    .db_cluster_snapshot_identifier(&name)
                    .db_cluster_identifier("orders")
                    .db_cluster_snapshot_arn(format!(
                        "arn:aws:rds:{region}:111111111111:cluster-snapshot:{name}"
                    ))
                    .snapshot_type("manual")
                    .status("available")
                    .set_tag_list(Some(ts::managed_tags(&format!("run-old-{d}"))))
                    .build()
            })
            .collect()
    }

    fn quota(used: i64, max: i64) -> Rule {
        mock!(Client::describe_account_attributes).then_output(move || {
            DescribeAccountAttributesOutput::builder()
                .account_quotas(
                    AccountQuota::builder().account_quota_name("DBClusters").used(3).max(40).build(),
                )
                .account_quotas(
                    AccountQuota::builder().account_quota_name(QUOTA_NAME).used(used).max(max).build(),
                )
                .build()
        })
    }

    fn listing(snaps: Vec<DbClusterSnapshot>) -> Rule {
        mock!(Client::describe_db_cluster_snapshots).then_output(move || {
            DescribeDbClusterSnapshotsOutput::builder().set_db_cluster_snapshots(Some(snaps.clone())).build()
        })
    }

    fn settings(retain: u32) -> SourceSettings {
        let mut s = crate::settings::tests::source_settings();
        s.retention = Retention { snapshots: retain, days: None };
        s
    }

    /// One place's mocked RDS: its quota answer, its listing and the deletes seen.
    struct MockPlace {
        rules: Vec<Rule>,
        deleted: Arc<Mutex<Vec<String>>>,
    }

    fn place(quota_rule: Rule, snaps: Vec<DbClusterSnapshot>) -> MockPlace {
        let deleted = Arc::new(Mutex::new(Vec::new()));
        MockPlace { rules: vec![quota_rule, listing(snaps), ts::recording_deletes(deleted.clone())], deleted }
    }

    impl MockPlace {
        fn client(&self) -> Client {
            ts::rds(&self.rules.iter().collect::<Vec<_>>())
        }
        fn deleted(&self) -> Vec<String> {
            let mut v = self.deleted.lock().expect("lock").clone();
            v.sort();
            v
        }
    }

    #[tokio::test]
    async fn a_region_near_its_quota_is_pruned_and_one_with_room_is_not() {
        // Source region: 99 of 100 used, one free, this deployment needs 1: room enough.
        // Target region: 100 of 100: this cluster's copies beyond the newest 2 go.
        let source = place(quota(99, 100), tool_snapshots("us-west-2", &[1, 2, 3, 4]));
        let target = place(quota(100, 100), tool_snapshots("us-west-1", &[1, 2, 3, 4]));
        let report = run(&source.client(), &target.client(), &settings(2), &ts::started_run(), false)
            .await
            .expect("ran");
        assert!(source.deleted().is_empty(), "room enough in the source region");
        assert_eq!(target.deleted().len(), 2, "{:?}", target.deleted());
        assert_eq!(report.places[0].retention, None);
        let t = &report.places[1];
        assert_eq!((t.quota.used, t.quota.max, t.quota.source), (100, 100, QuotaSource::AccountAttributes));
        assert_eq!(t.retention.as_ref().map(|r| r.deleted.len()), Some(2));
    }

    /// Many target regions: each one's quota is read and a full one pruned,
    /// the second region as the first.
    #[tokio::test]
    async fn every_target_region_gets_room_for_its_copies() {
        let source = place(quota(10, 100), tool_snapshots("us-west-2", &[1, 2, 3, 4]));
        let target = place(quota(10, 100), tool_snapshots("us-west-1", &[1, 2, 3, 4]));
        let eu = place(quota(100, 100), tool_snapshots("eu-west-1", &[1, 2, 3, 4]));
        let others = [("eu-west-1".parse::<Region>().expect("region"), eu.client())];
        let report =
            run_regions(&source.client(), &target.client(), &others, &settings(2), &ts::started_run(), false)
                .await
                .expect("ran");
        assert!(source.deleted().is_empty() && target.deleted().is_empty());
        assert_eq!(eu.deleted().len(), 2, "{:?}", eu.deleted());
        let regions: Vec<&str> = report.places.iter().map(|p| p.region.as_str()).collect();
        assert_eq!(regions, ["us-west-2", "us-west-1", "eu-west-1"]);
        assert_eq!(report.places[2].retention.as_ref().map(|r| r.deleted.len()), Some(2));
    }

    #[tokio::test]
    async fn a_fleet_needs_room_for_every_cluster() {
        // Three clusters configured: 98 of 100 used leaves 2, fewer than the 3 a run takes.
        let mut s = settings(1);
        s.cluster_ids.push("billing".parse().expect("id"));
        s.cluster_ids.push("payments".parse().expect("id"));
        assert_eq!(room_needed(&s), 3);
        let source = place(quota(98, 100), tool_snapshots("us-west-2", &[1, 2]));
        let target = place(quota(10, 100), tool_snapshots("us-west-1", &[1, 2]));
        run(&source.client(), &target.client(), &s, &ts::started_run(), false).await.expect("ran");
        assert_eq!(source.deleted().len(), 1);
        assert!(target.deleted().is_empty());
    }

    #[tokio::test]
    async fn a_refused_snapshot_prunes_the_source_region_whatever_the_quota_reads() {
        let source = place(quota(50, 100), tool_snapshots("us-west-2", &[1, 2, 3]));
        let target = place(quota(50, 100), tool_snapshots("us-west-1", &[1, 2, 3]));
        run(&source.client(), &target.client(), &settings(1), &ts::started_run(), true).await.expect("ran");
        assert_eq!(source.deleted().len(), 2);
        assert!(target.deleted().is_empty(), "the copy's region did not refuse anything");
    }

    #[tokio::test]
    async fn without_account_attributes_the_snapshots_are_counted_against_100() {
        let unavailable = mock!(Client::describe_account_attributes)
            .then_error(|| DescribeAccountAttributesError::generic(ts::meta("InternalFailure")));
        // 100 manual snapshots in the region: 97 of other clusters, 3 of this one.
        let mut all = tool_snapshots("us-west-2", &[1, 2, 3]);
        for i in 0..97 {
            all.push(ts::snapshot(&format!("hand-made-{i}"), "payments", "available"));
        }
        let source = place(unavailable, all);
        let target = place(quota(0, 100), Vec::new());
        let report = run(&source.client(), &target.client(), &settings(1), &ts::started_run(), false)
            .await
            .expect("ran");
        let s = &report.places[0];
        assert_eq!((s.quota.used, s.quota.max, s.quota.source), (100, 100, QuotaSource::Count));
        assert_eq!(source.deleted().len(), 2, "this cluster's two beyond the newest; hand-made ones kept");
        assert_eq!(source.rules[0].num_calls(), 1, "the advisory read is made once, never retried");
    }

    const QUOTA_XML: &str = "<AccountQuotas><AccountQuota><AccountQuotaName>ManualClusterSnapshots</AccountQuotaName>\
        <Used>10</Used><Max>100</Max></AccountQuota></AccountQuotas>";

    /// Through the apply-retention function's entry: the quota of each
    /// place in its own region; room enough, so nothing is listed.
    #[tokio::test]
    async fn handle_reads_the_quota_in_both_regions() {
        let input = serde_json::json!({"mode": "makeRoom", "run": ts::started_run().to_value()});
        let attributes = ts::rds_reply("DescribeAccountAttributes", QUOTA_XML);
        let recorder = ts::Recorder::replying([attributes.clone(), attributes]);
        let out = crate::steps::apply_retention::handle(ts::source_context(&recorder), input.clone())
            .await
            .expect("ran");
        let sent = recorder.sent();
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert!(sent[0].uri.contains("rds.us-west-2.") && sent[1].uri.contains("rds.us-west-1."), "{sent:?}");
        assert!(sent.iter().all(|s| s.body.contains("Action=DescribeAccountAttributes")), "{sent:?}");
        assert_eq!(
            out["places"][1]["quota"],
            serde_json::json!({"used": 10, "max": 100, "source": "accountAttributes"})
        );

        // The target side has no MakeRoom state.
        let err = crate::steps::apply_retention::handle(ts::target_context(&recorder), input)
            .await
            .expect_err("target");
        assert_eq!(err.asl_name(), "InvalidInput", "{err}");
        assert_eq!(recorder.sent().len(), 2);
    }

    /// The advisory read is made once even by clients that retry: an
    /// unanswered DescribeAccountAttributes (the lenient emulator answers
    /// HTTP 500) goes straight to counting.
    #[tokio::test]
    async fn an_unanswered_quota_read_is_not_retried() {
        let input = serde_json::json!({"mode": "makeRoom", "run": ts::started_run().to_value()});
        let empty = ts::rds_reply("DescribeDBClusterSnapshots", "<DBClusterSnapshots/>");
        let recorder = ts::Recorder::replying([
            ts::rds_error_reply(500, "InternalFailure"),
            empty,
            ts::rds_reply("DescribeAccountAttributes", QUOTA_XML),
        ]);
        let out = crate::steps::apply_retention::handle(recorder.source_context_retrying(), input)
            .await
            .expect("ran");
        let actions: Vec<&str> = recorder
            .sent()
            .iter()
            .map(|s| if s.body.contains("DescribeAccountAttributes") { "quota" } else { "list" })
            .collect();
        assert_eq!(actions, ["quota", "list", "quota"]);
        assert_eq!(out["places"][0]["quota"]["source"], "count");
    }

    #[tokio::test]
    async fn bad_input_reads_nothing() {
        let source = place(quota(100, 100), tool_snapshots("us-west-2", &[1, 2]));
        let mut other = ts::started_run();
        other.source_cluster_id = Some("payments".parse().expect("id"));
        let mut failed = ts::started_run();
        failed.failure = Some(crate::payload::Failure { error: "X".into(), cause: String::new() });
        for run_state in [other, failed] {
            let err = run(&source.client(), &source.client(), &settings(1), &run_state, false)
                .await
                .expect_err("refused");
            assert_eq!(err.asl_name(), "InvalidInput", "{err}");
        }
        assert_eq!(source.rules.iter().map(Rule::num_calls).sum::<usize>(), 0);
    }
}
