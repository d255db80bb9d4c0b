//! End-to-end drills: both state machines on the local engine, both accounts
//! and regions on a private emulator, then the final state of both accounts.

use aurora_dr_core::rds::{TAG_RUN_ID, tag_value};
use aurora_dr_tests::{CONFIG, DrillEnv, cluster_ids, instance_ids};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn first_run_then_second_run_replace_the_dr_cluster() {
    let env = DrillEnv::start(CONFIG).await;
    let report = env.drill(2).await;
    assert!(report.ok, "drill failed: {:#}", report.report);
    let runs = report.report["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2);
    let second_run_id = runs[1]["runId"].as_str().expect("run id").to_owned();
    let second_snapshot = runs[1]["targetSnapshotArn"].as_str().expect("snapshot arn").to_owned();
    assert_ne!(runs[0]["sourceSnapshotId"], runs[1]["sourceSnapshotId"], "each run takes a fresh snapshot");

    // Target account: the existing name serves the second run's cluster; temp and old names are gone.
    let target = env.target().await;
    let clusters = cluster_ids(&target).await;
    assert_eq!(clusters, ["orders-dr"], "target clusters: {clusters:?}");
    let instances = instance_ids(&target).await;
    assert_eq!(instances, ["orders-dr-1"], "target instances: {instances:?}");
    let cluster = aurora_dr_core::rds::find_cluster(&target.rds(), "orders-dr")
        .await
        .expect("describe")
        .expect("cluster");
    assert_eq!(cluster.status(), Some("available"));
    assert_eq!(tag_value(cluster.tag_list(), TAG_RUN_ID), Some(second_run_id.as_str()));
    assert_eq!(report.report["target"]["runId"], second_run_id);

    // Source account, target region: the copy is encrypted with the configured key and shared with exactly the target.
    let copies = env.source_in_target_region().await;
    let snap = aurora_dr_core::rds::find_cluster_snapshot(&copies.rds(), &second_snapshot, false)
        .await
        .expect("describe")
        .expect("copy exists");
    assert_eq!(snap.storage_encrypted(), Some(true));
    let key = report.report["kmsKeyArn"].as_str().expect("key");
    assert!(snap.kms_key_id().is_some_and(|k| key.ends_with(k.rsplit('/').next().unwrap_or(k))), "{snap:?}");
    let restore =
        aurora_dr_core::rds::shared_with(&copies.rds(), snap.db_cluster_snapshot_identifier().expect("id"))
            .await
            .expect("attributes");
    assert_eq!(restore, ["222222222222"]);

    // Source account, source region: the source cluster is untouched.
    let source = env.source().await;
    assert_eq!(cluster_ids(&source).await, ["orders"]);

    // `aurora-dr status` sees the same: both runs' snapshots, the shares, the DR cluster.
    let args = aurora_dr_cli::status::StatusArgs {
        config: env.config_path.clone(),
        endpoint: Some(env.emulator.url().to_owned()),
        role_name: "aurora-dr-status".into(),
        json: true,
        limit: 5,
    };
    let status = aurora_dr_cli::status::collect(&args, &env.config).await.expect("status");
    assert_eq!(status["source"]["snapshots"].as_array().map(Vec::len), Some(2), "{status:#}");
    assert_eq!(status["copies"]["snapshots"][0]["sharedWith"], serde_json::json!(["222222222222"]));
    assert_eq!(status["target"]["existing"]["runId"], second_run_id);
    assert!(status["target"]["temporary"].is_null());
    assert_eq!(status["target"]["old"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn first_run_with_no_existing_cluster() {
    let env = DrillEnv::start(CONFIG).await;
    let report = env.drill(1).await;
    assert!(report.ok, "drill failed: {:#}", report.report);
    let target = env.target().await;
    assert_eq!(cluster_ids(&target).await, ["orders-dr"]);
    assert_eq!(report.report["target"]["status"], "available");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_config_creates_nothing_in_either_account() {
    let bad = CONFIG.replace("temp_cluster_id = \"orders-dr-next\"", "temp_cluster_id = \"orders--next\"");
    let errors = aurora_dr_cli::config::Config::parse(&bad).expect_err("invalid");
    assert!(errors.iter().any(|e| e.name == "target.temp_cluster_id"), "{errors:?}");
    // The command exits 2 before any AWS call.
    let env = DrillEnv::start(CONFIG).await;
    std::fs::write(&env.config_path, &bad).expect("write");
    let code = aurora_dr_cli::drill::run(env.args(1)).await;
    assert_eq!(format!("{code:?}"), format!("{:?}", std::process::ExitCode::from(2)));
    let calls = env.emulator.control().calls().await.expect("calls");
    assert!(calls.is_empty(), "no AWS call may happen: {calls:?}");
    assert!(cluster_ids(&env.source().await).await.is_empty());
    assert!(cluster_ids(&env.target().await).await.is_empty());
}

/// Serverless v2: RDS refuses a db.serverless instance in a cluster without a
/// capacity range, and a restore without EngineVersion gets the Region's
/// default version, not the snapshot's. The restored cluster has both.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_serverless_target_restores_with_its_capacity_and_the_sources_engine_version() {
    let config = CONFIG.replace(
        "instance_class = \"db.r6g.large\"",
        "instance_class = \"db.serverless\"\nserverless_min_capacity = 0.5\nserverless_max_capacity = 8",
    );
    assert_ne!(config, CONFIG, "the example names its instance class");
    let env = DrillEnv::start(&config).await;
    // A source on a version that is not the engine's default (kept by --seed).
    env.source()
        .await
        .rds()
        .create_db_cluster()
        .db_cluster_identifier("orders")
        .engine("aurora-postgresql")
        .engine_version("13.9")
        .master_username("dr_admin")
        .master_user_password("Serverless-Src-1")
        .storage_encrypted(true)
        .send()
        .await
        .expect("CreateDBCluster");
    let report = env.drill(1).await;
    assert!(report.ok, "drill failed: {:#}", report.report);

    let target = env.target().await;
    let cluster = aurora_dr_core::rds::find_cluster(&target.rds(), "orders-dr")
        .await
        .expect("describe")
        .expect("cluster");
    assert_eq!(cluster.engine_version(), Some("13.9"));
    let scaling = cluster.serverless_v2_scaling_configuration().expect("scaling configuration");
    assert_eq!((scaling.min_capacity(), scaling.max_capacity()), (Some(0.5), Some(8.0)));
    let instance = aurora_dr_core::rds::find_instance(&target.rds(), "orders-dr-1")
        .await
        .expect("describe")
        .expect("instance");
    assert_eq!(instance.db_instance_class(), Some("db.serverless"));
}
