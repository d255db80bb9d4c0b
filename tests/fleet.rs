//! Many clusters in one drill: twelve cluster pairs, both state machines on
//! the local engine, both accounts and regions on a private emulator whose
//! copy quota is armed like Aurora's (5 in-flight cross-region copies per
//! destination account and region).

use std::time::Instant;

use aurora_dr_core::rds::{TAG_RUN_ID, TAG_SOURCE_CLUSTER, find_cluster, tag_value};
use aurora_dr_emulator::{CallRecord, FaultRule};
use aurora_dr_tests::{DrillEnv, cluster_ids};
use serde_json::Value;

const SOURCE_ACCOUNT: &str = "111111111111";
const TARGET_REGION: &str = "us-west-1";

/// A configuration with `n` cluster pairs `fleet-NN` -> `fleet-NN-dr` and
/// no single-cluster keys.
fn fleet_config(n: usize) -> String {
    let mut text = String::from(
        r#"
[source]
account_id = "111111111111"
region = "us-west-2"
[target]
account_id = "222222222222"
region = "us-west-1"
engine = "aurora-postgresql"
instance_class = "db.r6g.large"
"#,
    );
    for i in 0..n {
        text.push_str(&format!(
            "[[pairs]]\nsource_cluster_id = \"fleet-{i:02}\"\nexisting_cluster_id = \"fleet-{i:02}-dr\"\n\
             temp_cluster_id = \"fleet-{i:02}-dr-next\"\nexisting_instance_id = \"fleet-{i:02}-dr-1\"\n\
             temp_instance_id = \"fleet-{i:02}-dr-next-1\"\n"
        ));
    }
    text
}

/// The drill's per-cluster report of its only run.
fn clusters(report: &Value) -> Vec<Value> {
    report["runs"][0]["clusters"].as_array().cloned().expect("runs[0].clusters")
}

/// Outcomes of the cross-region copies (source account, target region).
async fn copy_outcomes(env: &DrillEnv) -> Vec<CallRecord> {
    let calls = env.emulator.control().calls().await.expect("call log");
    calls
        .into_iter()
        .filter(|c| {
            c.operation == "CopyDBClusterSnapshot" && c.account == SOURCE_ACCOUNT && c.region == TARGET_REGION
        })
        .collect()
}

/// Checks that cluster `i` was restored under its pair's existing name, by
/// its own run, and reported with its figures.
async fn assert_restored(env: &DrillEnv, i: usize, reported: &Value) {
    let source = format!("fleet-{i:02}");
    let existing = format!("{source}-dr");
    assert_eq!(reported["sourceClusterId"], source.as_str());
    assert_eq!(reported["source"]["status"], "SUCCEEDED", "{reported:#}");
    assert_eq!(reported["target"]["status"], "SUCCEEDED", "{reported:#}");
    assert_eq!(reported["restoredClusterId"], existing.as_str());
    for figure in ["achievedRpoSeconds", "timeToRestoreSeconds", "sourceToRestoredSeconds"] {
        assert!(reported[figure].as_f64().is_some_and(|s| s > 0.0), "{figure} of {source}: {reported:#}");
    }
    assert!(
        reported["achievedRpoSeconds"].as_f64() >= reported["timeToRestoreSeconds"].as_f64(),
        "the snapshot is older than the restore that used it: {reported:#}"
    );
    let target = env.target().await;
    let cluster = find_cluster(&target.rds(), &existing).await.expect("describe").expect("restored cluster");
    assert_eq!(cluster.status(), Some("available"));
    assert_eq!(
        tag_value(cluster.tag_list(), TAG_SOURCE_CLUSTER),
        Some(source.as_str()),
        "restored from its own source"
    );
    assert_eq!(tag_value(cluster.tag_list(), TAG_RUN_ID), reported["runId"].as_str(), "by its own run");
    let members: Vec<&str> =
        cluster.db_cluster_members().iter().filter_map(|m| m.db_instance_identifier()).collect();
    assert_eq!(members, [format!("{existing}-1")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twelve_clusters_restore_under_a_copy_quota_of_five() {
    let env = DrillEnv::start(&fleet_config(12)).await;
    env.emulator.control().arm(FaultRule::copy_quota(5)).await.expect("quota armed");

    let started = Instant::now();
    let report = env.drill(1).await;
    eprintln!("fleet drill: 12 clusters restored in {:.1} s", started.elapsed().as_secs_f64());

    assert!(report.ok, "drill failed: {:#}", report.report);
    let reported = clusters(&report.report);
    assert_eq!(reported.len(), 12, "the report lists each cluster");
    for (i, c) in reported.iter().enumerate() {
        assert_restored(&env, i, c).await;
    }
    let run_ids: std::collections::BTreeSet<&str> =
        reported.iter().filter_map(|c| c["runId"].as_str()).collect();
    assert_eq!(run_ids.len(), 12, "each cluster has its own run id");

    // Target account: exactly the twelve existing names; no temporary or old cluster is left.
    let mut ids = cluster_ids(&env.target().await).await;
    ids.sort();
    let want: Vec<String> = (0..12).map(|i| format!("fleet-{i:02}-dr")).collect();
    assert_eq!(ids, want);

    // The Map keeps at most five copies in flight: the quota never refused one.
    let copies = copy_outcomes(&env).await;
    let refused = copies.iter().filter(|c| c.error_code.as_deref() == Some("SnapshotQuotaExceeded")).count();
    assert_eq!(refused, 0, "MaxConcurrency 5 stays within the quota of 5: {copies:#?}");
    assert_eq!(copies.iter().filter(|c| c.status == Some(200)).count(), 12, "one copy per cluster");

    // The HTML timeline shows every cluster's achieved RPO and time to restore.
    let html = std::fs::read_to_string(env.dir.path().join("timeline.html")).expect("timeline");
    for text in ["achieved RPO", "time to restore", "fleet-00-dr", "fleet-11-dr"] {
        assert!(html.contains(text), "{text} not in the timeline");
    }
    assert!(report.report["runs"][0]["achievedRpoSeconds"].as_f64().is_some_and(|s| s > 0.0));

    // Each cluster's states, run in the child executions of the source
    // machine's Maps, are in its lane, in order, each closed after it opened.
    let states = report.report["states"].as_array().expect("states");
    for i in 0..12 {
        let lane = format!("fleet-{i:02}");
        let mine: Vec<&serde_json::Value> =
            states.iter().filter(|s| s["machine"] == "source" && s["lane"] == lane.as_str()).collect();
        let mut names: Vec<&str> = mine.iter().filter_map(|s| s["state"].as_str()).collect();
        // The predicted waits poll as often as their progress asks: each
        // wait once here, its Choice and Wait left out.
        names.retain(|n| !n.ends_with("SnapshotReady") && !n.ends_with("SnapshotPoll"));
        names.dedup();
        assert_eq!(
            names,
            [
                "Start",
                "MakeRoom",
                "CreateSnapshot",
                "HasSnapshot",
                "Regions",
                "Region",
                "WaitForSourceSnapshot",
                "EncryptCopy",
                "WaitForTargetSnapshot",
                "Share",
                "Notify",
                "AnyRegionFailed",
                "Copied",
                "RetentionNeeded",
                "ApplyRetention"
            ],
            "{lane}"
        );
        for s in mine {
            let (start, end) = (s["start"].as_f64().expect("start"), s["end"].as_f64());
            assert!(end.is_some_and(|e| e >= start), "{lane}: {s}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_failed_cluster_does_not_stop_the_other_eleven() {
    let env = DrillEnv::start(&fleet_config(12)).await;
    // fleet-03's copy may not use the key: a fatal AccessDenied at EncryptCopy.
    let fault = FaultRule::error("rds", "CopyDBClusterSnapshot", "KMSKeyNotAccessibleFault")
        .message("Injected fault: the key is not accessible")
        .matching("TargetDBClusterSnapshotIdentifier", "aurora-dr-fleet-03-*");
    env.emulator.control().arm(fault).await.expect("fault armed");

    let report = env.drill(1).await;

    assert!(!report.ok, "one cluster failed, so the drill fails: {:#}", report.report);
    let run = &report.report["runs"][0];
    assert_eq!(run["source"]["status"], "FAILED", "the source run fails once all clusters are done");
    let reported = clusters(&report.report);
    assert_eq!(reported.len(), 12, "the report lists each cluster, the failed one too");
    let failed = &reported[3];
    assert_eq!(failed["sourceClusterId"], "fleet-03");
    assert_eq!(failed["source"]["status"], "FAILED");
    assert_eq!(failed["source"]["failedState"], "EncryptCopy");
    assert_eq!(failed["source"]["error"], "AccessDenied");
    assert_eq!(failed["target"]["status"], Value::Null, "its target side never started");
    assert_eq!(failed["achievedRpoSeconds"], Value::Null);
    for (i, c) in reported.iter().enumerate().filter(|(i, _)| *i != 3) {
        assert_restored(&env, i, c).await;
    }
    let mut ids = cluster_ids(&env.target().await).await;
    ids.sort();
    let want: Vec<String> = (0..12).filter(|i| *i != 3).map(|i| format!("fleet-{i:02}-dr")).collect();
    assert_eq!(ids, want, "eleven restored, nothing for fleet-03");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_copy_quota_error_is_waited_out_and_never_surfaced() {
    // Five clusters copy at once but the quota allows two: the other copies
    // are refused until a slot frees, and EncryptCopy's Retry waits them out.
    let env = DrillEnv::start(&fleet_config(5)).await;
    env.emulator.control().arm(FaultRule::copy_quota(2)).await.expect("quota armed");

    let report = env.drill(1).await;

    assert!(report.ok, "drill failed: {:#}", report.report);
    let copies = copy_outcomes(&env).await;
    let refused = copies.iter().filter(|c| c.error_code.as_deref() == Some("SnapshotQuotaExceeded")).count();
    assert!(refused > 0, "the quota did refuse copies: {copies:#?}");
    assert_eq!(copies.iter().filter(|c| c.status == Some(200)).count(), 5);
    let reported = clusters(&report.report);
    assert_eq!(reported.len(), 5);
    for (i, c) in reported.iter().enumerate() {
        assert_restored(&env, i, c).await;
    }
    // Retried, never an error of the run: no failure reached any report.
    let states = report.report["states"].as_array().expect("states");
    assert!(
        states.iter().any(|s| s["state"] == "EncryptCopy" && s["attempts"].as_u64() > Some(1)),
        "EncryptCopy was retried"
    );
    assert!(states.iter().all(|s| s["status"] != "failed"), "no state failed");
}
