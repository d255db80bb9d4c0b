//! RestoreInstance (target account, target region): the instances of the
//! temporary cluster.
//!
//! Input: the [`RunState`] after WaitForTempCluster (`restoredClusterId` =
//! `TEMP_CLUSTER_ID`). Output: the same payload with `restoredInstanceIds` =
//! [`TargetSettings::temp_instance_ids`] (writer first).
//!
//! Creates `DB_INSTANCE_COUNT` instances in the temporary cluster, in order
//! (the first one created becomes the writer), with class
//! `DB_INSTANCE_CLASS`, engine `ENGINE`, this run's tags and
//! `PubliclyAccessible=false`: without it, an instance of a cluster in the
//! default VPC (no subnet group configured) gets a public address (RDS API
//! Reference, CreateDBInstance, `PubliclyAccessible`:
//! <https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html>;
//! Security Hub control RDS.2). The subnet group and security groups of an
//! Aurora instance are its cluster's (set by Restore). Creation is
//! asynchronous: WaitForTempInstances polls until they are `available`.
//!
//! Before creating anything: the temporary cluster must exist, carry this
//! run's tags (`Conflict` otherwise: instances are never added to a cluster
//! that is not this run's) and be `available` (`ResourceNotReady` while not);
//! and every instance id is looked up. An instance already there that is in
//! the temporary cluster and carries this run's tags is reused (a retry); one
//! that does not is a `Conflict` naming it, and nothing is created.
//!
//! Errors: `InvalidInput` (payload lacks `restoredClusterId` or names another
//! cluster), `NotFound`, `Conflict`, `ResourceNotReady`, and the classified
//! SDK errors (`Throttled`, `AccessDenied`, ...).

use std::sync::Arc;

use aws_sdk_rds::Client;
use aws_sdk_rds::types::DbInstance;
use serde_json::Value;

use crate::context::StepContext;
use crate::error::{DrError, DrResult};
use crate::ids::{ClusterId, InstanceId};
use crate::payload::{RunState, need};
use crate::rds;
use crate::settings::TargetSettings;
use crate::steps::input::{self, InputKind};
use crate::steps::names::same_id;

/// The state this module serves.
pub const STATE: &str = "RestoreInstance";

/// Creates the temporary cluster's instances (or adopts this run's).
pub async fn run(rds: &Client, settings: &TargetSettings, mut run: RunState) -> DrResult<RunState> {
    let temp = &settings.temp_cluster_id;
    let restored = need(&run.restored_cluster_id, "restoredClusterId")?;
    if !same_id(restored.as_str(), temp.as_str()) {
        return Err(DrError::invalid_input(format!(
            "restoredClusterId {restored} is not the temporary cluster {temp} of the settings"
        )));
    }
    let cluster = rds::find_cluster(rds, temp.as_str())
        .await?
        .ok_or_else(|| DrError::NotFound(format!("temporary cluster {temp}")))?;
    if !rds::is_from_run(cluster.tag_list(), &run) {
        return Err(DrError::Conflict(format!(
            "cluster {temp} is not from run {} (run-id tag: {}); no instance is added to it",
            run.run_id,
            rds::tag_value(cluster.tag_list(), rds::TAG_RUN_ID).unwrap_or("none")
        )));
    }
    rds::require_ready(&format!("temporary cluster {temp}"), cluster.status().unwrap_or("unknown"))?;

    let ids = settings.temp_instance_ids();
    let mut missing = Vec::new();
    for id in &ids {
        match rds::find_instance(rds, id.as_str()).await? {
            None => missing.push(id),
            Some(i) => adopt(&i, id, temp, &run)?,
        }
    }
    for id in missing {
        tracing::info!(
            step = "restore_instance",
            run_id = %run.run_id,
            cluster = %temp,
            instance = %id,
            class = %settings.instance_class,
            "creating instance"
        );
        let created = rds
            .create_db_instance()
            .db_instance_identifier(id.as_str())
            .db_cluster_identifier(temp.as_str())
            .db_instance_class(&settings.instance_class)
            .engine(&settings.engine)
            .publicly_accessible(false)
            .set_tags(Some(rds::run_tags(&run)))
            .send()
            .await;
        if let Err(e) = created {
            match DrError::from_sdk(&format!("CreateDBInstance {id}"), e) {
                // A retried call whose first attempt did create it: adopt it if it is ours.
                conflict @ DrError::Conflict(_) => match rds::find_instance(rds, id.as_str()).await? {
                    Some(i) => adopt(&i, id, temp, &run)?,
                    None => return Err(conflict),
                },
                other => return Err(other),
            }
        }
    }
    run.restored_instance_ids = ids;
    Ok(run)
}

/// Accepts an instance under a temporary id only when this run created it
/// in the temporary cluster.
fn adopt(instance: &DbInstance, id: &InstanceId, temp: &ClusterId, run: &RunState) -> DrResult<()> {
    let in_temp = instance.db_cluster_identifier().is_some_and(|c| same_id(c, temp.as_str()));
    if in_temp && rds::is_from_run(instance.tag_list(), run) {
        tracing::info!(
            step = "restore_instance",
            run_id = %run.run_id,
            instance = %id,
            status = instance.db_instance_status().unwrap_or("unknown"),
            "instance already created by this run; reusing it"
        );
        return Ok(());
    }
    Err(DrError::Conflict(format!(
        "instance id {id} is taken by an instance of cluster {} that is not this run's (run-id tag: {}); \
         nothing was created",
        instance.db_cluster_identifier().unwrap_or("none"),
        rds::tag_value(instance.tag_list(), rds::TAG_RUN_ID).unwrap_or("none")
    )))
}

/// Lambda / local-engine entry: RunState in, RunState out.
pub async fn handle(ctx: Arc<StepContext>, input: Value) -> DrResult<Value> {
    input::expect(&input, InputKind::Run, STATE)?;
    let run = RunState::from_value(input)?;
    // Many clusters: the names of the payload's source cluster's pair.
    let (settings, rds) = super::target_rds(&ctx, &run)?;
    Ok(self::run(&rds, &settings, run).await?.to_value())
}

#[cfg(test)]
mod tests {
    use aws_sdk_rds::Client as Rds;
    use aws_sdk_rds::operation::create_db_instance::CreateDbInstanceOutput;
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::steps::target_support::*;

    const TI1: &str = "orders-dr-next-1";
    const TI2: &str = "orders-dr-next-1-2";

    fn restored_run() -> RunState {
        let mut run = target_run();
        run.restored_cluster_id = Some(T.parse().expect("id"));
        run
    }

    fn two_instances() -> TargetSettings {
        let mut s = settings();
        s.instance_count = 2;
        s
    }

    fn temp_cluster(run: &RunState) -> Rule {
        describe_cluster(T, Some(cluster(T, "available", ours(run), &[])))
    }

    /// CreateDBInstance carrying exactly the class, engine, cluster and tags
    /// the settings and run ask for, and never public; journaled.
    fn create_checked(j: &Journal, settings: &TargetSettings, run: &RunState) -> Rule {
        let (j, s, r) = (j.clone(), settings.clone(), run.clone());
        mock!(Rds::create_db_instance)
            .match_requests(move |req| {
                let ok = req.db_cluster_identifier() == Some(T)
                    && req.db_instance_class() == Some(s.instance_class.as_str())
                    && req.engine() == Some(s.engine.as_str())
                    && req.publicly_accessible() == Some(false)
                    && rds::is_from_run(req.tags(), &r);
                if ok {
                    j.push(format!("create instance {}", req.db_instance_identifier().unwrap_or("?")));
                }
                ok
            })
            .then_output(|| CreateDbInstanceOutput::builder().build())
    }

    #[tokio::test]
    async fn creates_every_instance_writer_first() {
        let run = restored_run();
        let settings = two_instances();
        let j = Journal::default();
        let rules = [
            temp_cluster(&run),
            describe_instance(TI1, None),
            describe_instance(TI2, None),
            create_checked(&j, &settings, &run),
        ];
        let out = super::run(&rds(&rules.iter().collect::<Vec<_>>()), &settings, run).await.expect("created");
        assert_eq!(j.entries(), [format!("create instance {TI1}"), format!("create instance {TI2}")]);
        let ids: Vec<&str> = out.restored_instance_ids.iter().map(InstanceId::as_str).collect();
        assert_eq!(ids, [TI1, TI2]);
    }

    #[tokio::test]
    async fn a_retry_creates_only_what_is_missing() {
        let run = restored_run();
        let settings = two_instances();
        let j = Journal::default();
        let rules = [
            temp_cluster(&run),
            describe_instance(TI1, Some(instance(TI1, T, "creating", ours(&run)))),
            describe_instance(TI2, None),
            create_checked(&j, &settings, &run),
        ];
        let out = super::run(&rds(&rules.iter().collect::<Vec<_>>()), &settings, run).await.expect("created");
        assert_eq!(j.entries(), [format!("create instance {TI2}")]);
        assert_eq!(out.restored_instance_ids.len(), 2);
    }

    #[tokio::test]
    async fn an_instance_id_taken_by_another_is_a_conflict_and_creates_nothing() {
        let run = restored_run();
        let settings = two_instances();
        for taken in [
            instance(TI2, T, "available", earlier_run()),
            instance(TI2, "other-cluster", "available", ours(&run)),
        ] {
            let j = Journal::default();
            let rules = [
                temp_cluster(&run),
                describe_instance(TI1, None),
                describe_instance(TI2, Some(taken)),
                create_checked(&j, &settings, &run),
            ];
            let err = super::run(&rds(&rules.iter().collect::<Vec<_>>()), &settings, run.clone())
                .await
                .expect_err("conflict");
            assert_eq!(err.asl_name(), "Conflict");
            assert!(err.to_string().contains(TI2), "{err}");
            assert!(j.entries().is_empty(), "nothing is created, not even {TI1}");
        }
    }

    #[tokio::test]
    async fn the_temp_cluster_must_exist_be_this_runs_and_available() {
        let run = restored_run();
        let cases = [
            (None, "NotFound"),
            (Some(cluster(T, "available", earlier_run(), &[])), "Conflict"),
            (Some(cluster(T, "creating", ours(&run), &[])), "ResourceNotReady"),
            (Some(cluster(T, "incompatible-restore", ours(&run), &[])), "ResourceFailed"),
        ];
        for (temp, want) in cases {
            let j = Journal::default();
            let rules = [describe_cluster(T, temp), create_checked(&j, &settings(), &run)];
            let err = super::run(&rds(&rules.iter().collect::<Vec<_>>()), &settings(), run.clone())
                .await
                .expect_err(want);
            assert_eq!(err.asl_name(), want, "{err}");
            assert!(j.entries().is_empty());
        }
    }

    #[tokio::test]
    async fn a_lost_response_then_already_exists_adopts_this_runs_instance() {
        let run = restored_run();
        let j = Journal::default();
        let rules = [
            temp_cluster(&run),
            describe_instance_seq(TI1, vec![None, Some(instance(TI1, T, "creating", ours(&run)))]),
            create_instance(&j, TI1, Some(|| rds_fault(400, "DBInstanceAlreadyExists"))),
        ];
        let out =
            super::run(&rds(&rules.iter().collect::<Vec<_>>()), &settings(), run).await.expect("adopted");
        assert_eq!(out.restored_instance_ids.iter().map(InstanceId::as_str).collect::<Vec<_>>(), [TI1]);
    }

    #[tokio::test]
    async fn aws_errors_keep_their_names() {
        let cases: [(fn() -> _, &str); 3] = [
            (throttled, "Throttled"),
            (|| rds_fault(400, "InvalidDBClusterStateFault"), "ResourceNotReady"),
            (|| rds_fault(400, "InstanceQuotaExceeded"), "QuotaExceeded"),
        ];
        for (fault, want) in cases {
            let run = restored_run();
            let j = Journal::default();
            let rules =
                [temp_cluster(&run), describe_instance(TI1, None), create_instance(&j, TI1, Some(fault))];
            let err =
                super::run(&rds(&rules.iter().collect::<Vec<_>>()), &settings(), run).await.expect_err(want);
            assert_eq!(err.asl_name(), want, "{err}");
        }
    }

    #[tokio::test]
    async fn a_payload_naming_no_or_another_cluster_is_refused_before_any_call() {
        let err = super::run(&rds(&[]), &settings(), target_run()).await.expect_err("missing");
        assert_eq!(err.asl_name(), "InvalidInput");
        assert!(err.to_string().contains("restoredClusterId"), "{err}");
        let mut other = restored_run();
        other.restored_cluster_id = Some("orders-prod".parse().expect("id"));
        let err = super::run(&rds(&[]), &settings(), other).await.expect_err("other");
        assert_eq!(err.asl_name(), "InvalidInput");
    }

    #[tokio::test]
    async fn handle_rejects_a_bad_payload_without_calling_aws() {
        let recorder = Recorder::default();
        let err = handle(recorder.target_elsewhere(settings()), serde_json::json!({"runId": "run-1"}))
            .await
            .expect_err("bad");
        assert_eq!(err.asl_name(), "InvalidInput");
        assert!(recorder.sent().is_empty());
    }
}
