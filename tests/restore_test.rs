//! The restore test end to end (`aurora-dr drill --restore-test`): the
//! target machine started with `{"mode": "restore-test"}` restores the
//! newest shared snapshot into its test cluster, checks it and deletes it,
//! and never touches the serving cluster. What is checked here comes from
//! the emulator itself (the cluster's `DbClusterResourceId`, the call log),
//! not from the drill's own verdict.

use aurora_dr_cli::drill;
use aurora_dr_tests::{CONFIG, DrillEnv, NotificationSink, cluster_ids, instance_ids};
use serde_json::Value;

const SERVING: &str = "orders-dr";
const SERVING_INSTANCE: &str = "orders-dr-1";
const TEST_CLUSTER: &str = "orders-dr-next-test";

/// The serving cluster's identity and state: (resource id, status, members).
async fn serving(env: &DrillEnv) -> (String, String, Vec<String>) {
    let rds = env.target().await.rds();
    let out =
        rds.describe_db_clusters().db_cluster_identifier(SERVING).send().await.expect("serving cluster");
    let c = &out.db_clusters()[0];
    let members = c.db_cluster_members().iter().filter_map(|m| m.db_instance_identifier().map(str::to_owned));
    (
        c.db_cluster_resource_id().expect("resource id").to_owned(),
        c.status().unwrap_or_default().to_owned(),
        members.collect(),
    )
}

/// RDS calls of the log that change a cluster or an instance and name the
/// serving cluster or its instance.
async fn calls_changing_the_serving_cluster(env: &DrillEnv) -> Vec<String> {
    let calls = env.emulator.control().calls().await.expect("call log");
    calls
        .iter()
        .filter(|c| {
            c.service == "rds" && !c.operation.starts_with("Describe") && !c.operation.starts_with("List")
        })
        .filter(|c| {
            c.params.values().any(|v| v == SERVING || v == SERVING_INSTANCE || v.ends_with(":orders-dr"))
        })
        .map(|c| format!("{} {:?}", c.operation, c.params))
        .collect()
}

/// The drill configuration with the SanityCheck's probe sent to a port
/// nothing listens on: it fails (SanityCheckUnreachable, tried twice) once
/// the test cluster is restored. `target_extra`: more `[target]` lines.
fn unreachable_probe_config(target_extra: &str) -> String {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let target = format!(
        "[target]\n{target_extra}sanity_endpoint_override = \"127.0.0.1:{closed}\"\nsanity_tls = \"disable\"\n"
    );
    format!(
        "{}\n[drill]\nsanity_username = \"dr_probe\"\nsanity_password = \"unused\"\n",
        CONFIG.replacen("[target]\n", &target, 1)
    )
}

/// A drill that runs only the restore test (`--runs 0`) against what the
/// environment holds.
async fn restore_test_only(env: &DrillEnv) -> drill::DrillReport {
    let mut args = env.args(0);
    args.restore_test = true;
    drill::execute(&args, &env.config).await.expect("drill ran")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restore_test_reports_rpo_and_time_to_restore_and_leaves_the_serving_cluster_untouched() {
    let env = DrillEnv::start(CONFIG).await;
    let first = env.drill(1).await;
    assert!(first.ok, "the run before the test failed: {:#}", first.report);
    let before = serving(&env).await;
    env.emulator.control().clear_calls().await.expect("clear call log");

    let report = restore_test_only(&env).await;
    assert!(report.ok, "restore test failed: {:#}", report.report);
    let test = &report.report["restoreTests"][0];
    assert_eq!(test["status"], "SUCCEEDED", "{test:#}");
    assert_eq!(test["mode"], "restore-test");
    assert_eq!(test["testClusterId"], TEST_CLUSTER);
    let rpo = test["rpoSeconds"].as_f64().expect("RPO");
    let ttr = test["timeToRestoreSeconds"].as_f64().expect("time to restore");
    assert!(rpo > 0.0 && ttr > 0.0, "{test:#}");
    assert_eq!(test["restoreTest"]["snapshotId"], first.report["runs"][0]["sourceSnapshotId"], "the newest");
    assert_eq!(test["servingCluster"]["untouched"], true, "{test:#}");

    // From the emulator: the same cluster, in the same state, and no call changed it.
    assert_eq!(serving(&env).await, before, "the serving cluster changed");
    assert_eq!(calls_changing_the_serving_cluster(&env).await, Vec::<String>::new());
    // The test restored and deleted its own cluster and instance, nothing else.
    let calls = env.emulator.control().calls().await.expect("call log");
    let restored: Vec<&str> = calls
        .iter()
        .filter(|c| c.operation == "RestoreDBClusterFromSnapshot")
        .filter_map(|c| c.params.get("DBClusterIdentifier").map(String::as_str))
        .collect();
    assert_eq!(restored, [TEST_CLUSTER]);
    let deleted: Vec<&str> = calls
        .iter()
        .filter(|c| c.operation == "DeleteDBCluster" && c.status == Some(200))
        .filter_map(|c| c.params.get("DBClusterIdentifier").map(String::as_str))
        .collect();
    assert_eq!(deleted, [TEST_CLUSTER]);
    let target = env.target().await;
    assert_eq!(cluster_ids(&target).await, [SERVING], "the test cluster is gone");
    assert_eq!(instance_ids(&target).await, [SERVING_INSTANCE]);

    // The report says it was a restore test, with its figures, in every form.
    let states: Vec<&str> = report.report["states"]
        .as_array()
        .expect("states")
        .iter()
        .filter_map(|s| s["state"].as_str())
        .collect();
    assert!(states.contains(&"FindSnapshot") && states.contains(&"RemoveTestCluster"), "{states:?}");
    assert!(!states.contains(&"Swap") && !states.contains(&"Terminate"), "{states:?}");
    let html = std::fs::read_to_string(report.report["timeline"].as_str().expect("timeline")).expect("html");
    assert!(html.contains("restore test SUCCEEDED") && html.contains("serving cluster untouched"), "html");
    assert!(html.contains(TEST_CLUSTER), "html names the test cluster");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_sanity_check_in_a_restore_test_removes_the_test_cluster_and_notifies() {
    let config = unreachable_probe_config("");
    let sane = DrillEnv::start(CONFIG).await;
    // The run before the test passes its (skipped) check in a stack without the probe;
    // the same emulator then gets the probing configuration.
    let first = sane.drill(1).await;
    assert!(first.ok, "{:#}", first.report);
    let mut env = sane;
    env.set_config(&config);
    let before = serving(&env).await;
    let sink = NotificationSink::start().await;
    sink.subscribe(&env.target().await, drill::setup::FAILURE_TOPIC).await;
    env.emulator.control().clear_calls().await.expect("clear call log");

    let report = restore_test_only(&env).await;
    assert!(!report.ok, "the restore test must fail: {:#}", report.report);
    let test = &report.report["restoreTests"][0];
    assert_eq!(test["status"], "FAILED", "{test:#}");
    assert_eq!(test["error"], "SanityCheckUnreachable", "{test:#}");
    assert_eq!(test["testClusterRemoved"], true, "{test:#}");
    assert_eq!(test["servingCluster"]["untouched"], true, "{test:#}");

    assert_eq!(serving(&env).await, before, "the serving cluster changed");
    assert_eq!(calls_changing_the_serving_cluster(&env).await, Vec::<String>::new());
    let target = env.target().await;
    assert_eq!(cluster_ids(&target).await, [SERVING], "the test cluster is gone");

    let notes = sink.wait_for(1, std::time::Duration::from_secs(30)).await;
    let note: &Value = &notes.last().expect("a failure notification").message;
    assert_eq!(note["failedState"], "SanityCheck", "{note:#}");
    assert_eq!(note["mode"], "restore-test", "{note:#}");
    assert!(note["restoreTest"].as_str().is_some_and(|s| s.contains("never")), "{note:#}");
    assert_eq!(note["resources"]["restoredClusterId"], TEST_CLUSTER, "{note:#}");
}

/// With `keep_failed_temp_cluster`, a failed restore test keeps its test
/// cluster for inspection; `aurora-dr cleanup` lists it and removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kept_failed_test_cluster_is_listed_and_removed_by_cleanup() {
    let mut env = DrillEnv::start(CONFIG).await;
    let first = env.drill(1).await;
    assert!(first.ok, "{:#}", first.report);
    let config = unreachable_probe_config("keep_failed_temp_cluster = true\n");
    env.set_config(&config);
    let report = restore_test_only(&env).await;
    assert!(!report.ok, "{:#}", report.report);
    let test = &report.report["restoreTests"][0];
    assert_eq!(test["testClusterRemoved"], false, "kept as configured: {test:#}");
    assert_eq!(test["servingCluster"]["untouched"], true, "{test:#}");
    let mut clusters = cluster_ids(&env.target().await).await;
    clusters.sort();
    assert_eq!(clusters, [SERVING, TEST_CLUSTER]);
    // `aurora-dr status` shows it.
    let status = env.status().await;
    assert_eq!(status["target"]["restoreTest"]["id"], TEST_CLUSTER, "{status:#}");
    let text = aurora_dr_cli::status::render(&status);
    assert!(text.contains(&format!("restore test: {TEST_CLUSTER}")), "{text}");

    let args = aurora_dr_cli::cleanup::CleanupArgs {
        config: env.config_path.clone(),
        accounts: env.accounts(),
        yes: true,
        dry_run: false,
        include_dr_cluster: false,
        final_snapshot: false,
    };
    let plan = aurora_dr_cli::cleanup::plan(&args, &env.config).await.expect("plan");
    let clusters_listed: Vec<&str> =
        plan.delete.iter().filter(|i| i.kind == "cluster").map(|i| i.id.as_str()).collect();
    assert_eq!(clusters_listed, [TEST_CLUSTER], "{plan:#?}");
    aurora_dr_cli::cleanup::execute(&args, &env.config, &plan).await.expect("cleanup");
    assert_eq!(cluster_ids(&env.target().await).await, [SERVING]);
}

/// A restore test is the safe first run next to a hand-made DR cluster
/// too: a normal run refuses to replace it (no adopt_existing), the test
/// restores and checks the newest snapshot beside it and leaves it as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restore_test_runs_beside_a_hand_made_dr_cluster_without_adopting_it() {
    let env = DrillEnv::start(CONFIG).await;
    env.seed_hand_made_dr_cluster().await;
    let refused = env.drill(1).await;
    assert!(!refused.ok, "a normal run must refuse the hand-made cluster: {:#}", refused.report);
    assert_eq!(refused.report["runs"][0]["target"]["error"], "Conflict", "{:#}", refused.report);
    let before = serving(&env).await;
    env.emulator.control().clear_calls().await.expect("clear call log");

    let report = restore_test_only(&env).await;
    assert!(report.ok, "{:#}", report.report);
    assert_eq!(serving(&env).await, before, "the hand-made cluster changed");
    assert_eq!(calls_changing_the_serving_cluster(&env).await, Vec::<String>::new());
    assert_eq!(cluster_ids(&env.target().await).await, [SERVING]);
}
