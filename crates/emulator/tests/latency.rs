//! Simulated progress: in-progress statuses for a number of describe calls or
//! seconds, then `available`.

mod common;

use std::time::{Duration, Instant};

use aurora_dr_emulator::{Delay, EmulatorConfig, Latency};
use common::*;

async fn snapshot_statuses(rds: &aws_sdk_rds::Client, id: &str, polls: usize) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..polls {
        let out = rds
            .describe_db_cluster_snapshots()
            .db_cluster_snapshot_identifier(id)
            .send()
            .await
            .expect("describe");
        seen.push(out.db_cluster_snapshots()[0].status().unwrap_or_default().to_owned());
    }
    seen
}

#[tokio::test]
async fn resources_are_in_progress_for_the_configured_polls() {
    let latency = Latency {
        snapshot: Delay::polls(3),
        copy: Delay::polls(1),
        cluster: Delay::polls(1),
        instance: Delay::polls(2),
        ..Latency::default()
    };
    let emulator = emulator_with(EmulatorConfig::default().with_latency(latency)).await;
    let source = rds(&emulator, SOURCE, SOURCE_REGION).await;

    let created = source
        .create_db_cluster()
        .db_cluster_identifier("prod")
        .engine(ENGINE)
        .master_username("dbadmin")
        .master_user_password("correct-horse-battery")
        .send()
        .await
        .expect("create cluster");
    assert_eq!(created.db_cluster().and_then(|c| c.status()), Some("creating"));
    let mut seen = Vec::new();
    for _ in 0..3 {
        let out = source.describe_db_clusters().db_cluster_identifier("prod").send().await.expect("describe");
        seen.push(out.db_clusters()[0].status().unwrap_or_default().to_owned());
    }
    assert_eq!(seen, ["creating", "available", "available"]);

    source
        .create_db_instance()
        .db_instance_identifier("prod-1")
        .db_cluster_identifier("prod")
        .engine(ENGINE)
        .db_instance_class("db.r6g.large")
        .send()
        .await
        .expect("create instance");
    let mut seen = Vec::new();
    for _ in 0..3 {
        let out =
            source.describe_db_instances().db_instance_identifier("prod-1").send().await.expect("describe");
        seen.push(out.db_instances()[0].db_instance_status().unwrap_or_default().to_owned());
    }
    assert_eq!(seen, ["creating", "creating", "available"]);

    source
        .create_db_cluster_snapshot()
        .db_cluster_identifier("prod")
        .db_cluster_snapshot_identifier("snap")
        .send()
        .await
        .expect("snapshot");
    assert_eq!(
        snapshot_statuses(&source, "snap", 4).await,
        ["creating", "creating", "creating", "available"]
    );

    let dest = rds(&emulator, SOURCE, TARGET_REGION).await;
    let arn = format!("arn:aws:rds:{SOURCE_REGION}:{SOURCE}:cluster-snapshot:snap");
    dest.copy_db_cluster_snapshot()
        .source_db_cluster_snapshot_identifier(arn)
        .target_db_cluster_snapshot_identifier("copy")
        .send()
        .await
        .expect("copy");
    // A copy has its own delay: one poll, not the snapshot's three.
    assert_eq!(snapshot_statuses(&dest, "copy", 2).await, ["copying", "available"]);
}

#[tokio::test]
async fn polls_count_per_resource() {
    let emulator = emulator().await;
    let source = rds(&emulator, SOURCE, SOURCE_REGION).await;
    cluster(&source, "prod").await;
    snapshot(&source, "prod", "first").await;
    source
        .create_db_cluster_snapshot()
        .db_cluster_identifier("prod")
        .db_cluster_snapshot_identifier("second")
        .send()
        .await
        .expect("snapshot");
    // Describing "first" again does not advance "second".
    snapshot_statuses(&source, "first", 3).await;
    assert_eq!(snapshot_statuses(&source, "second", 3).await, ["creating", "creating", "available"]);
}

#[tokio::test]
async fn seconds_latency_set_at_runtime() {
    let emulator = emulator().await;
    let control = emulator.control();
    let latency = Latency::uniform(Delay::seconds(0.8));
    control.set_latency(&latency).await.expect("set latency");
    assert_eq!(control.latency().await.expect("latency"), latency);
    let source = rds(&emulator, SOURCE, SOURCE_REGION).await;
    source
        .create_db_cluster()
        .db_cluster_identifier("prod")
        .engine(ENGINE)
        .master_username("dbadmin")
        .master_user_password("correct-horse-battery")
        .send()
        .await
        .expect("create cluster");
    let started = Instant::now();
    let mut statuses = Vec::new();
    // Poll as a waiter would, bounded, until the cluster is available.
    while started.elapsed() < Duration::from_secs(10) {
        let out = source.describe_db_clusters().db_cluster_identifier("prod").send().await.expect("describe");
        let status = out.db_clusters()[0].status().unwrap_or_default().to_owned();
        let done = status == "available";
        statuses.push((status, started.elapsed()));
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (first, _) = &statuses[0];
    let (last, when) = statuses.last().expect("polled");
    assert_eq!(first, "creating");
    assert_eq!(last, "available");
    // The cluster was created just before `started`: allow a little slack.
    assert!(*when >= Duration::from_millis(700), "available too early: {statuses:?}");

    // Back to the start latency (two polls) after a reset.
    control.reset().await.expect("reset");
    assert_eq!(control.latency().await.expect("latency"), Latency::for_tests());
}

/// Polls `id` (in `rds`) until it is available, at most 10 s: each poll's
/// status and PercentProgress.
async fn progress_until_available(rds: &aws_sdk_rds::Client, id: &str) -> Vec<(String, i32)> {
    let started = Instant::now();
    let mut seen = Vec::new();
    while started.elapsed() < Duration::from_secs(10) {
        let out = rds
            .describe_db_cluster_snapshots()
            .db_cluster_snapshot_identifier(id)
            .send()
            .await
            .expect("describe");
        let snap = &out.db_cluster_snapshots()[0];
        let status = snap.status().unwrap_or_default().to_owned();
        let done = status == "available";
        seen.push((status, snap.percent_progress().unwrap_or(-1)));
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen
}

/// A snapshot being created or copied reports a PercentProgress that grows
/// with its elapsed share of the work, below 100 until it is available
/// (moto: 100 from the start). API reference, DBClusterSnapshot.
#[tokio::test]
async fn percent_progress_grows_while_a_snapshot_is_created_or_copied() {
    let latency = Latency { snapshot: Delay::seconds(1.0), copy: Delay::seconds(1.5), ..Latency::default() };
    let emulator = emulator_with(EmulatorConfig::default().with_latency(latency)).await;
    let source = rds(&emulator, SOURCE, SOURCE_REGION).await;
    cluster(&source, "prod").await;
    source
        .create_db_cluster_snapshot()
        .db_cluster_identifier("prod")
        .db_cluster_snapshot_identifier("snap")
        .send()
        .await
        .expect("snapshot");
    let dest = rds(&emulator, SOURCE, TARGET_REGION).await;
    for (client, id, status) in [(&source, "snap", "creating"), (&dest, "copy", "copying")] {
        if id == "copy" {
            let arn = format!("arn:aws:rds:{SOURCE_REGION}:{SOURCE}:cluster-snapshot:snap");
            dest.copy_db_cluster_snapshot()
                .source_db_cluster_snapshot_identifier(arn)
                .target_db_cluster_snapshot_identifier("copy")
                .send()
                .await
                .expect("copy");
        }
        let seen = progress_until_available(client, id).await;
        let (last_status, last) = seen.last().cloned().expect("polled");
        assert_eq!((last_status.as_str(), last), ("available", 100), "{id}: {seen:?}");
        let working: Vec<i32> = seen.iter().filter(|(s, _)| s == status).map(|(_, p)| *p).collect();
        assert!(working.len() >= 5, "{id}: {seen:?}");
        assert!(working[0] < 30, "{id} starts near 0: {seen:?}");
        assert!(working.iter().all(|p| (0..100).contains(p)), "{id}: {seen:?}");
        assert!(working.windows(2).all(|w| w[0] <= w[1]), "{id} never goes back: {seen:?}");
        assert!(working.iter().any(|p| (30..100).contains(p)), "{id} grows: {seen:?}");
    }
}
