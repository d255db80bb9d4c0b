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
    // The DR cluster is under the target account's own key, not the source
    // account's: it never depends on a key another account controls.
    let key = cluster.kms_key_id().expect("an encrypted DR cluster");
    assert_eq!(key.split(':').nth(4), Some("222222222222"), "DR cluster key {key}");
    assert_eq!(Some(key), report.report["targetKmsKeyArn"].as_str());

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
    let status = env.status().await;
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

/// A DR cluster made by hand under the existing name, before aurora-dr: a
/// run refuses to replace it (nothing created, nothing renamed) unless
/// `target.adopt_existing` is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hand_made_dr_cluster_is_refused_without_adopt_existing() {
    let env = DrillEnv::start(CONFIG).await;
    env.seed_hand_made_dr_cluster().await;
    let report = env.drill(2).await;
    assert!(!report.ok, "the run must fail: {:#}", report.report);
    // `--runs 2` stops after the failed first run and says why.
    assert_eq!(report.report["runs"].as_array().map(Vec::len), Some(1));
    assert_eq!(report.report["stoppedEarly"]["afterRun"], 1, "{:#}", report.report["stoppedEarly"]);
    assert_eq!(report.report["stoppedEarly"]["of"], 2);
    assert!(report.report["stoppedEarly"]["reason"].as_str().is_some_and(|r| r.contains("run 1 failed")));
    let run = &report.report["runs"][0]["clusters"][0];
    assert_eq!(run["target"]["status"], "FAILED", "{run:#}");
    let said = run["target"].to_string();
    assert!(said.contains("Conflict") && said.contains("ADOPT_EXISTING"), "{said}");

    // The hand-made cluster still serves under its name, untouched; no temporary cluster was made.
    let target = env.target().await;
    assert_eq!(cluster_ids(&target).await, ["orders-dr"]);
    assert_eq!(instance_ids(&target).await, ["orders-dr-1"]);
    let cluster = aurora_dr_core::rds::find_cluster(&target.rds(), "orders-dr").await.expect("describe");
    assert!(!aurora_dr_core::rds::is_managed(cluster.expect("cluster").tag_list()));
    let created = env.emulator.control().calls().await.expect("calls");
    assert!(!created.iter().any(|c| c.operation == "RestoreDBClusterFromSnapshot"), "nothing restored");
}

/// With `target.adopt_existing`, the first run replaces the hand-made
/// cluster and keeps it running under `orders-dr-old-<stamp>`; the drill's
/// report and `aurora-dr status` name it with the commands that remove it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_adopted_dr_cluster_is_kept_and_named_everywhere() {
    let config = CONFIG.replace(
        "existing_cluster_id = \"orders-dr\"",
        "existing_cluster_id = \"orders-dr\"\nadopt_existing = true",
    );
    let env = DrillEnv::start(&config).await;
    env.seed_hand_made_dr_cluster().await;
    let report = env.drill(1).await;
    assert!(report.ok, "drill failed: {:#}", report.report);
    // No sanity secret in the example configuration: the report says the check made no probe.
    assert_eq!(report.report["runs"][0]["clusters"][0]["sanityCheckSkipped"], true, "{:#}", report.report);
    assert_eq!(report.report["runs"][0]["sanityCheck"]["status"], "skipped");
    assert!(report.report["stoppedEarly"].is_null());

    let kept = report.report["keptClusters"].as_array().expect("keptClusters");
    assert_eq!(kept.len(), 1, "{:#}", report.report);
    let old = kept[0]["clusterId"].as_str().expect("id").to_owned();
    assert!(old.starts_with("orders-dr-old-"), "{old}");
    let commands: Vec<&str> =
        kept[0]["removeCommands"].as_array().expect("commands").iter().filter_map(|c| c.as_str()).collect();
    let stamp = old.strip_prefix("orders-dr-old-").expect("stamp");
    assert_eq!(
        commands,
        [
            format!(
                "aws rds delete-db-instance --region us-west-1 --db-instance-identifier orders-dr-1-old-{stamp}"
            ),
            format!(
                "aws rds delete-db-cluster --region us-west-1 --db-cluster-identifier {old} \
                 --final-db-snapshot-identifier {old}-final"
            ),
        ]
    );

    // Both run in the target account: the restored copy under the name, the hand-made one beside it.
    let target = env.target().await;
    let mut clusters = cluster_ids(&target).await;
    clusters.sort();
    assert_eq!(clusters, ["orders-dr".to_owned(), old.clone()]);

    let status = env.status().await;
    assert_eq!(status["target"]["kept"][0]["clusterId"], old.as_str(), "{status:#}");
    assert_eq!(status["target"]["kept"][0]["removeCommands"], kept[0]["removeCommands"], "{status:#}");
    let text = aurora_dr_cli::status::render(&status);
    assert!(text.contains(&old) && text.contains("remove with:"), "{text}");

    // `aurora-dr cleanup`: aurora-dr's snapshot and its copy go; the DR
    // cluster stays unless asked; the adopted cluster is listed, never touched.
    let mut cleanup = aurora_dr_cli::cleanup::CleanupArgs {
        config: env.config_path.clone(),
        accounts: env.accounts(),
        yes: false,
        dry_run: true,
        include_dr_cluster: false,
        final_snapshot: false,
    };
    // A dry run (the command's default without a terminal) deletes nothing.
    let code = aurora_dr_cli::cleanup::run(cleanup.clone()).await;
    assert_eq!(format!("{code:?}"), format!("{:?}", std::process::ExitCode::SUCCESS));
    (cleanup.yes, cleanup.dry_run) = (true, false);
    let plan = aurora_dr_cli::cleanup::plan(&cleanup, &env.config).await.expect("plan");
    let listed: Vec<(&str, &str)> = plan.delete.iter().map(|i| (i.place.side, i.kind)).collect();
    assert_eq!(listed, [("source", "snapshot"), ("copies", "snapshot")], "{plan:#?}");
    assert_eq!(plan.serving, ["orders-dr"]);
    assert_eq!(plan.kept.iter().map(|k| k.cluster_id.as_str()).collect::<Vec<_>>(), [old.as_str()]);
    aurora_dr_cli::cleanup::execute(&cleanup, &env.config, &plan).await.expect("cleanup");
    let after = aurora_dr_cli::cleanup::plan(&cleanup, &env.config).await.expect("plan");
    assert!(after.delete.is_empty(), "{after:#?}");
    let mut clusters = cluster_ids(&target).await;
    clusters.sort();
    assert_eq!(clusters, ["orders-dr".to_owned(), old.clone()], "nothing else deleted");
    assert_eq!(cluster_ids(&env.source().await).await, ["orders"], "the source cluster stays");

    // With --include-dr-cluster the DR cluster goes too; the adopted one still stays.
    cleanup.include_dr_cluster = true;
    let plan = aurora_dr_cli::cleanup::plan(&cleanup, &env.config).await.expect("plan");
    assert_eq!(plan.delete.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["orders-dr"]);
    aurora_dr_cli::cleanup::execute(&cleanup, &env.config, &plan).await.expect("cleanup");
    assert_eq!(cluster_ids(&target).await, [old]);
}

/// `aurora-dr deploy-params --stack-outputs-from-aws` reads the kms and
/// source stacks' outputs with DescribeStacks (source account, the key's
/// stack in the target region) instead of a hand-copied file.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deploy_params_reads_the_earlier_stacks_outputs() {
    use aurora_dr_cli::deploy_params::{DeployParamsArgs, Mapping, fetch_outputs, overrides};
    let env = DrillEnv::start(CONFIG).await;
    let key = "arn:aws:kms:us-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let stack = |output: &str, value: serde_json::Value| {
        serde_json::json!({
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {output: {"Value": value}},
        })
        .to_string()
    };
    let cfn =
        |ctx: &aurora_dr_core::clients::AwsContext| aws_sdk_cloudformation::Client::new(ctx.sdk_config());
    cfn(&env.source_in_target_region().await)
        .create_stack()
        .stack_name("aurora-dr-kms")
        .template_body(stack("KeyArn", key.into()))
        .send()
        .await
        .expect("kms stack");
    cfn(&env.source().await)
        .create_stack()
        .stack_name("aurora-dr-source")
        .template_body(stack("NotificationTopicArn", serde_json::json!({"Ref": "Topic"})))
        .send()
        .await
        .expect("source stack");

    let args = DeployParamsArgs {
        config: Some(env.config_path.clone()),
        env: Some("target".into()),
        samconfig: false,
        stack_outputs_from_aws: true,
        accounts: env.accounts(),
    };
    let mapping = Mapping::embedded();
    let outputs = fetch_outputs(&args, mapping, &env.config).await.expect("outputs");
    let (region, params) = overrides(mapping, "target", &env.config, &outputs).expect("target parameters");
    assert_eq!(region, "us-west-1");
    let value = |name: &str| params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    assert_eq!(value("SourceKMSKeyArn"), Some(key));
    let topic = value("SourceTopicArn").expect("topic");
    assert!(topic.starts_with("arn:aws:sns:us-west-2:111111111111:"), "{topic}");

    // A stack that is not deployed is named.
    cfn(&env.source().await).delete_stack().stack_name("aurora-dr-source").send().await.expect("delete");
    let err = fetch_outputs(&args, mapping, &env.config).await.expect_err("no source stack");
    assert!(err.contains("aurora-dr-source"), "{err}");
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

/// The target machine's entries for `state` in a drill's report.
fn target_entries<'a>(report: &'a serde_json::Value, state: &str) -> Vec<&'a serde_json::Value> {
    report["states"]
        .as_array()
        .expect("states")
        .iter()
        .filter(|s| s["machine"] == "target" && s["state"] == state)
        .collect()
}

/// The target account's only cluster, under the existing name.
async fn only_cluster_serving(env: &DrillEnv) -> aws_sdk_rds::types::DbCluster {
    let target = env.target().await;
    assert_eq!(cluster_ids(&target).await, ["orders-dr"]);
    aurora_dr_core::rds::find_cluster(&target.rds(), "orders-dr").await.expect("describe").expect("cluster")
}

/// A second run with the existing name's DNS answer moving only after `polls`
/// resolutions (a rename's new name resolves late, the old one lingers: RDS
/// user guide, "Renaming a DB instance").
async fn second_run_with_dns_delay(env: &DrillEnv, polls: u32) -> aurora_dr_cli::drill::DrillReport {
    let first = env.drill(1).await;
    assert!(first.ok, "first drill failed: {:#}", first.report);
    let control = env.emulator.control();
    let mut latency = control.latency().await.expect("latency");
    latency.dns = aurora_dr_emulator::Delay::polls(polls);
    latency.dns_cache = aurora_dr_emulator::Delay::polls(polls);
    control.set_latency(&latency).await.expect("set latency");
    control.clear_calls().await.expect("clear call log");
    env.drill(1).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn terminate_waits_until_the_existing_name_reaches_the_new_cluster() {
    let env = DrillEnv::start(CONFIG).await;
    let report = second_run_with_dns_delay(&env, 4).await;
    assert!(report.ok, "second drill failed: {:#}", report.report);

    // The wait polled while the name still reached the previous cluster, and
    // Terminate started only after its last poll found the restored one.
    let wait = target_entries(&report.report, "WaitForNewEndpoint");
    let wait = wait.last().expect("WaitForNewEndpoint ran");
    assert!(wait["attempts"].as_u64().is_some_and(|a| a >= 3), "{wait:#}");
    assert!(wait["errors"]["ResourceNotReady"].as_u64().is_some_and(|n| n >= 2), "{wait:#}");
    let terminate = target_entries(&report.report, "Terminate");
    let terminate = terminate.last().expect("Terminate ran");
    assert!(terminate["start"].as_f64() >= wait["end"].as_f64(), "{terminate:#} before {wait:#}");

    // The existing name now reaches the serving cluster, and the previous one is gone.
    let serving = only_cluster_serving(&env).await;
    let host = serving.endpoint().expect("endpoint");
    let reached = env.emulator.control().resolve(host).await.expect("resolve").expect("resolves");
    assert_eq!(Some(reached.resource_id.as_str()), serving.db_cluster_resource_id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_existing_name_that_never_moves_times_out_and_keeps_the_previous_cluster() {
    let env = DrillEnv::start(CONFIG).await;
    let failed_run = {
        let report = second_run_with_dns_delay(&env, 100_000).await;
        assert!(!report.ok, "the second drill must fail: {:#}", report.report);
        let run = &report.report["runs"][0];
        assert_eq!(run["target"]["error"], "Timeout", "{run:#}");
        let cause = run["target"]["cause"].as_str().expect("cause");
        assert!(cause.contains("WaitForNewEndpoint gave up"), "{cause}");
        let names: Vec<&str> = report.report["states"]
            .as_array()
            .expect("states")
            .iter()
            .filter(|s| s["machine"] == "target")
            .filter_map(|s| s["state"].as_str())
            .collect();
        for want in
            ["Swap", "WaitForNewEndpointTimedOut", "RollBackSwap", "CleanUpTempCluster", "NotifyFailure"]
        {
            assert!(names.contains(&want), "{want} not in {names:?}");
        }
        assert!(!names.contains(&"Terminate"), "Terminate must not run: {names:?}");
        report.report["runs"][0]["runId"].as_str().expect("run id").to_owned()
    };

    // Nothing but the restored cluster was deleted; the previous cluster
    // serves again under the existing name.
    let calls = env.emulator.control().calls().await.expect("calls");
    let deleted: Vec<&String> = calls
        .iter()
        .filter(|c| c.operation == "DeleteDBCluster")
        .filter_map(|c| c.params.get("DBClusterIdentifier"))
        .collect();
    assert!(deleted.iter().all(|id| *id == "orders-dr-next"), "{deleted:?}");
    let serving = only_cluster_serving(&env).await;
    let tag = tag_value(serving.tag_list(), TAG_RUN_ID).expect("run tag");
    assert!(!tag.starts_with(&failed_run), "the failed run's cluster must not serve: {tag}");
}

/// A first run whose restore takes `restore_seconds` by the clock (so RDS's
/// "DB cluster created" event, RDS-EVENT-0170, fires when it ends), at a
/// time scale that makes the callback waits' 5-minute fallback last 6 s.
async fn run_with_timed_restore(env: &DrillEnv, restore_seconds: f64) -> aurora_dr_cli::drill::DrillReport {
    let control = env.emulator.control();
    let mut latency = control.latency().await.expect("latency");
    latency.restore = aurora_dr_emulator::Delay::seconds(restore_seconds);
    control.set_latency(&latency).await.expect("set latency");
    let mut args = env.args(1);
    args.time_scale = 0.02;
    aurora_dr_cli::drill::execute(&args, &env.config).await.expect("drill ran")
}

/// How CompleteWait settled the events of `source` in a drill's report.
fn settled_events<'a>(report: &'a serde_json::Value, source: &str) -> Vec<&'a serde_json::Value> {
    report["rdsEvents"].as_array().expect("rdsEvents").iter().filter(|e| e["source"] == source).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_restore_wait_ends_by_the_clusters_rds_event() {
    let env = DrillEnv::start(CONFIG).await;
    let report = run_with_timed_restore(&env, 1.5).await;
    assert!(report.ok, "drill failed: {:#}", report.report);
    // One FetchStatus call armed the wait (the cluster still creating); the
    // event completed it: no fallback re-check, and well inside the 6 s one.
    let wait = target_entries(&report.report, "WaitForTempCluster");
    let wait = wait.last().expect("WaitForTempCluster ran");
    assert_eq!(wait["attempts"], 1, "{wait:#}");
    let took = wait["end"].as_f64().expect("end") - wait["start"].as_f64().expect("start");
    assert!(took < 5.0, "the wait took {took} s: {wait:#}");
    let events = settled_events(&report.report, "orders-dr-next");
    assert!(
        events.iter().any(|e| e["eventId"] == "RDS-EVENT-0170" && e["outcome"]["succeeded"] == 1),
        "{:#}",
        report.report["rdsEvents"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_rds_event_leaves_the_wait_to_its_fallback_check() {
    let env = DrillEnv::start(CONFIG).await;
    let control = env.emulator.control();
    control
        .arm(
            aurora_dr_emulator::FaultRule::rds_event_lost()
                .event_id("RDS-EVENT-0170")
                .source("orders-dr-next"),
        )
        .await
        .expect("fault armed");
    let report = run_with_timed_restore(&env, 1.5).await;
    assert!(report.ok, "drill failed: {:#}", report.report);
    // No event: the task timed out after 300 s (6 s here) and its
    // States.Timeout retry checked again and found the cluster available.
    let wait = target_entries(&report.report, "WaitForTempCluster");
    let wait = wait.last().expect("WaitForTempCluster ran");
    assert_eq!(wait["attempts"], 2, "{wait:#}");
    assert!(
        settled_events(&report.report, "orders-dr-next").iter().all(|e| e["eventId"] != "RDS-EVENT-0170")
    );
    let lost = control.rds_events().await.expect("events");
    assert!(lost.iter().any(|e| e["fate"] == "lost"), "{lost:#?}");
}
