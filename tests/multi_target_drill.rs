//! The drill of two DR targets, end to end on the emulator: target A
//! (222222222222) in us-west-1 and target B (333333333333) in eu-west-1 of
//! `examples/multi-target.toml`. One source run copies the snapshot into each
//! region and notifies each target; each target's own workflow restores its
//! DR cluster in its own account and region, under its own key, from the copy
//! shared with it only. A target whose restore is refused fails alone: the
//! other is restored and the drill fails naming the failed target.

use std::process::ExitCode;

use aurora_dr_cli::drill;
use aurora_dr_core::clients::AwsContext;
use aurora_dr_core::ids::{AccountId, Region};
use aurora_dr_emulator::FaultRule;
use aurora_dr_tests::{DrillEnv, MULTI_TARGET_CONFIG, cluster_ids};
use serde_json::Value;

const SRC: &str = "111111111111";
const A: (&str, &str) = ("222222222222", "us-west-1");
const B: (&str, &str) = ("333333333333", "eu-west-1");

async fn context(env: &DrillEnv, account: &str, region: &str) -> AwsContext {
    let account: AccountId = account.parse().expect("account");
    let region: Region = region.parse().expect("region");
    drill::setup::account_context(env.emulator.url(), &account, &region, None).await
}

/// The report section of the target in `account` and `region`.
fn section<'a>(report: &'a Value, (account, region): (&str, &str)) -> &'a Value {
    report["targets"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["accountId"] == account && t["region"] == region))
        .unwrap_or_else(|| panic!("no report section for {account} {region}: {report:#}"))
}

/// Target `(account, region)`'s DR cluster is in its account and region,
/// encrypted under a key of that account there, and restored by its run from
/// the copy in its region, which is shared with it alone.
async fn restored_in_its_own_place(env: &DrillEnv, report: &Value, (account, region): (&str, &str)) {
    let s = &section(report, (account, region))["report"];
    assert_eq!(s["result"], "SUCCEEDED", "{account} {region}: {s:#}");
    let run = &s["runs"][0];
    assert_eq!(run["target"]["status"], "SUCCEEDED", "{account}: {run:#}");
    let target = context(env, account, region).await;
    assert_eq!(cluster_ids(&target).await, ["orders-dr"], "{account} {region}");
    let cluster = aurora_dr_core::rds::find_cluster(&target.rds(), "orders-dr")
        .await
        .expect("describe")
        .expect("the DR cluster");
    assert_eq!(cluster.status(), Some("available"));
    let key = cluster.kms_key_id().expect("an encrypted DR cluster");
    let parts: Vec<&str> = key.split(':').collect();
    assert_eq!((parts[3], parts[4]), (region, account), "{account}'s DR cluster under key {key}");
    assert_eq!(Some(key), s["targetKmsKeyArn"].as_str());
    assert_eq!(
        aurora_dr_core::rds::tag_value(cluster.tag_list(), aurora_dr_core::rds::TAG_RUN_ID),
        run["runId"].as_str()
    );

    // The copy it restored: the source account's, in its region, under that region's key, shared with it only.
    let copy_arn = run["targetSnapshotArn"].as_str().expect("copy arn");
    let parts: Vec<&str> = copy_arn.split(':').collect();
    assert_eq!((parts[3], parts[4]), (region, SRC), "{account} restored {copy_arn}");
    let copies = context(env, SRC, region).await;
    let copy_id = copy_arn.rsplit(':').next().expect("copy id");
    let copy = aurora_dr_core::rds::find_cluster_snapshot(&copies.rds(), copy_id, false)
        .await
        .expect("describe")
        .expect("the copy");
    let region_key = s["kmsKeyArn"].as_str().expect("region key");
    assert!(region_key.contains(&format!(":kms:{region}:{SRC}:")), "{region_key}");
    assert!(copy.kms_key_id().is_some_and(|k| region_key.ends_with(k.rsplit('/').next().unwrap_or(k))));
    let shared = aurora_dr_core::rds::shared_with(&copies.rds(), copy_id).await.expect("attributes");
    assert_eq!(shared, [account], "the copy in {region} is shared with {account} only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_target_runs_its_own_workflow_in_its_own_account_and_region() {
    let env = DrillEnv::start(MULTI_TARGET_CONFIG).await;
    assert_eq!(env.config.targets.len(), 2);
    let report = env.drill(1).await;
    assert!(report.ok, "drill failed: {:#}", report.report);
    assert_eq!(report.report["result"], "SUCCEEDED");
    assert_eq!(report.report["failedTargets"], serde_json::json!([]));
    restored_in_its_own_place(&env, &report.report, A).await;
    restored_in_its_own_place(&env, &report.report, B).await;
    // Each target's workflow ran in its own account and region, once.
    for (account, region) in [A, B] {
        let executions = &section(&report.report, (account, region))["report"]["targetExecutions"];
        let arns: Vec<&str> =
            executions.as_array().into_iter().flatten().filter_map(|x| x["name"].as_str()).collect();
        assert_eq!(arns.len(), 1, "{account}: {executions:#}");
        // Its subscription's filter let through its own message only.
        let deliveries = &section(&report.report, (account, region))["report"]["deliveries"];
        let delivered = deliveries.as_array().map(Vec::len);
        assert_eq!(delivered, Some(1), "{account} receives one message: {deliveries:#}");
        assert!(deliveries[0]["error"].is_null(), "{account}: {deliveries:#}");
    }
    // Nothing of a target lands in the other's account or region.
    assert!(cluster_ids(&context(&env, A.0, B.1).await).await.is_empty());
    assert!(cluster_ids(&context(&env, B.0, A.1).await).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_target_whose_restore_is_refused_fails_alone_and_is_named() {
    let env = DrillEnv::start(MULTI_TARGET_CONFIG).await;
    // RDS refuses the restore in target B's account and region only.
    env.emulator
        .control()
        .arm(
            FaultRule::error("rds", "RestoreDBClusterFromSnapshot", "AccessDenied")
                .status(403)
                .in_account(B.0)
                .in_region(B.1),
        )
        .await
        .expect("fault");
    let report = env.drill(1).await;
    assert!(!report.ok, "{:#}", report.report);
    assert_eq!(report.report["result"], "FAILED");
    assert_eq!(report.report["failedTargets"], serde_json::json!([format!("{} {}", B.0, B.1)]));
    restored_in_its_own_place(&env, &report.report, A).await;
    let b = &section(&report.report, B)["report"];
    assert_eq!(b["result"], "FAILED");
    assert_eq!(b["runs"][0]["source"]["status"], "SUCCEEDED", "the source side served B: {b:#}");
    assert_eq!(b["runs"][0]["target"]["status"], "FAILED", "{b:#}");
    assert_eq!(b["runs"][0]["target"]["error"], "AccessDenied", "{b:#}");
    assert!(cluster_ids(&context(&env, B.0, B.1).await).await.is_empty(), "B has no DR cluster");

    // The command itself exits non-zero.
    let mut args = env.args(1);
    args.seed = false;
    assert_eq!(drill::run(args).await, ExitCode::FAILURE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_share_refused_in_one_region_fails_that_target_only() {
    let env = DrillEnv::start(MULTI_TARGET_CONFIG).await;
    // RDS refuses the share of the copy in eu-west-1 (target B's region).
    env.emulator
        .control()
        .arm(
            FaultRule::error("rds", "ModifyDBClusterSnapshotAttribute", "AccessDenied")
                .status(403)
                .in_account(SRC)
                .in_region(B.1),
        )
        .await
        .expect("fault");
    let report = env.drill(1).await;
    assert!(!report.ok, "{:#}", report.report);
    assert_eq!(report.report["failedTargets"], serde_json::json!([format!("{} {}", B.0, B.1)]));
    // The source execution failed (one region did), yet A is judged by its own region and restored.
    let a = &section(&report.report, A)["report"];
    assert_eq!(a["runs"][0]["source"]["status"], "FAILED", "{a:#}");
    restored_in_its_own_place(&env, &report.report, A).await;
    let b = &section(&report.report, B)["report"];
    assert_eq!(b["result"], "FAILED");
    assert_eq!(b["runs"][0]["clusters"][0]["source"]["failedState"], "Share", "{b:#}");
    assert!(b["runs"][0]["target"]["status"].is_null(), "B's workflow never started: {b:#}");
    assert!(cluster_ids(&context(&env, B.0, B.1).await).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_and_cleanup_serve_each_target_in_turn() {
    let env = DrillEnv::start(MULTI_TARGET_CONFIG).await;
    let report = env.drill(1).await;
    assert!(report.ok, "drill failed: {:#}", report.report);

    // status: one report per target, each of its own account, region and copies.
    let args = aurora_dr_cli::status::StatusArgs {
        config: env.config_path.clone(),
        accounts: env.accounts(),
        json: true,
        limit: 5,
    };
    let status = aurora_dr_cli::status::collect_each(&args, &env.config).await.expect("status");
    let targets = status["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 2, "{status:#}");
    for (t, (account, region)) in targets.iter().zip([A, B]) {
        let s = &t["status"];
        assert_eq!(
            (s["target"]["account"].as_str(), s["target"]["region"].as_str()),
            (Some(account), Some(region))
        );
        let run_id = section(&report.report, (account, region))["report"]["runs"][0]["runId"].clone();
        assert_eq!(s["target"]["existing"]["runId"], run_id, "{account}: {s:#}");
        assert_eq!(s["copies"]["region"], region);
        assert_eq!(s["copies"]["snapshots"][0]["sharedWith"], serde_json::json!([account]), "{s:#}");
    }
    let text = aurora_dr_cli::status::render_any(&status);
    assert!(text.contains("== target 2 of 2: 333333333333 eu-west-1"), "{text}");
    assert_eq!(text.matches("source 111111111111 us-west-2").count(), 1, "the source once: {text}");
    assert_eq!(text.matches("\ncopies 111111111111 ").count(), 2, "each target's copies: {text}");

    // cleanup: one plan over both targets' accounts and regions; it deletes both DR clusters.
    let cleanup = aurora_dr_cli::cleanup::CleanupArgs {
        config: env.config_path.clone(),
        accounts: env.accounts(),
        yes: true,
        dry_run: false,
        include_dr_cluster: true,
        final_snapshot: false,
    };
    let plan = aurora_dr_cli::cleanup::plan(&cleanup, &env.config).await.expect("plan");
    let clusters: Vec<(String, String, String)> = plan
        .delete
        .iter()
        .filter(|i| i.kind == "cluster")
        .map(|i| (i.id.clone(), i.place.account.clone(), i.place.region.clone()))
        .collect();
    let want: Vec<(String, String, String)> =
        [A, B].iter().map(|(a, r)| ("orders-dr".to_owned(), (*a).to_owned(), (*r).to_owned())).collect();
    assert_eq!(clusters, want, "{plan:#?}");
    let copies: Vec<&str> =
        plan.delete.iter().filter(|i| i.place.side == "copies").map(|i| i.place.region.as_str()).collect();
    assert_eq!(copies, [A.1, B.1], "one copy in each target region: {plan:#?}");
    aurora_dr_cli::cleanup::execute(&cleanup, &env.config, &plan).await.expect("cleanup");
    for (account, region) in [A, B] {
        let rds = context(&env, account, region).await.rds();
        let left = aurora_dr_core::rds::find_cluster(&rds, "orders-dr").await.expect("describe");
        assert!(left.as_ref().is_none_or(|c| c.status() == Some("deleting")), "{account} {region}: {left:?}");
    }
}
