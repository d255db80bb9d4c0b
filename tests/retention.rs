//! End-to-end: retention of the tool's own snapshots in all three places, and
//! target-owned encryption (the DR side restores from its own copy under its
//! own key), each on a private emulator with both state machines.

use std::collections::BTreeSet;

use aurora_dr_cli::drill;
use aurora_dr_core::clients::AwsContext;
use aurora_dr_core::rds::{MANAGED_BY, TAG_MANAGED_BY, TAG_RUN_ID, TAG_SOURCE_CLUSTER, tag_value};
use aurora_dr_emulator::{Delay, FaultRule, Latency};
use aurora_dr_tests::{CONFIG, DrillEnv};
use aws_sdk_rds::types::{DbClusterSnapshot, Tag};

/// The example configuration with extra lines under `[source]` and `[target]`.
fn config_with(source: &str, target: &str) -> String {
    assert!(CONFIG.contains("[source]\n") && CONFIG.contains("[target]\n"), "{CONFIG}");
    CONFIG
        .replace("[source]\n", &format!("[source]\n{source}\n"))
        .replace("[target]\n", &format!("[target]\n{target}\n"))
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// The tool's tags, but of another source cluster.
fn foreign_tags() -> Vec<Tag> {
    vec![
        tag(TAG_MANAGED_BY, MANAGED_BY),
        tag(TAG_RUN_ID, "run-of-payments"),
        tag(TAG_SOURCE_CLUSTER, "payments"),
    ]
}

/// Names a hand-made snapshot could share with the tool's (`{prefix}-{cluster}-{stamp}`),
/// older than every run: retention would delete them first if it took them for its own.
const UNTAGGED: &str = "aurora-dr-orders-20200101000000";
const FOREIGN: &str = "aurora-dr-orders-20200101000001";

async fn snapshots(ctx: &AwsContext) -> Vec<DbClusterSnapshot> {
    aurora_dr_core::rds::list_manual_cluster_snapshots(&ctx.rds(), None).await.expect("list snapshots")
}

/// The snapshots of `orders` the tool owns in that place (its tags).
async fn tool_snapshots(ctx: &AwsContext) -> BTreeSet<String> {
    snapshots(ctx)
        .await
        .iter()
        .filter(|s| tag_value(s.tag_list(), TAG_MANAGED_BY) == Some(MANAGED_BY))
        .filter(|s| tag_value(s.tag_list(), TAG_SOURCE_CLUSTER) == Some("orders"))
        .filter_map(|s| s.db_cluster_snapshot_identifier().map(str::to_owned))
        .collect()
}

async fn names(ctx: &AwsContext) -> BTreeSet<String> {
    snapshots(ctx)
        .await
        .iter()
        .filter_map(|s| s.db_cluster_snapshot_identifier().map(str::to_owned))
        .collect()
}

/// Describes the snapshot until it is `available` (the emulator's latency
/// counts describe calls, so this is bounded and needs no sleep).
async fn until_available(ctx: &AwsContext, id: &str) -> DbClusterSnapshot {
    for _ in 0..20 {
        let snap = aurora_dr_core::rds::find_cluster_snapshot(&ctx.rds(), id, false)
            .await
            .expect("describe")
            .expect("snapshot exists");
        if snap.status() == Some("available") {
            return snap;
        }
    }
    panic!("snapshot {id} never became available");
}

/// A hand-made snapshot of `cluster` in the context's account and region.
async fn hand_made(ctx: &AwsContext, cluster: &str, id: &str, tags: Vec<Tag>) -> DbClusterSnapshot {
    ctx.rds()
        .create_db_cluster_snapshot()
        .db_cluster_identifier(cluster)
        .db_cluster_snapshot_identifier(id)
        .set_tags(Some(tags))
        .send()
        .await
        .expect("create snapshot");
    until_available(ctx, id).await
}

/// A hand-made copy of `from` into the context's region. An encrypted
/// snapshot copied into another Region needs a key of that Region
/// (CopyDBClusterSnapshot, KmsKeyId), so the copy gets a key of its own.
async fn hand_made_copy(ctx: &AwsContext, from: &DbClusterSnapshot, id: &str, tags: Vec<Tag>) {
    let key = ctx.kms().create_key().send().await.expect("CreateKey");
    let key_arn = key.key_metadata().and_then(|m| m.arn()).expect("key arn").to_owned();
    ctx.rds()
        .copy_db_cluster_snapshot()
        .source_db_cluster_snapshot_identifier(from.db_cluster_snapshot_arn().expect("arn"))
        .target_db_cluster_snapshot_identifier(id)
        .kms_key_id(key_arn)
        .set_tags(Some(tags))
        .send()
        .await
        .expect("copy snapshot");
    until_available(ctx, id).await;
}

/// The snapshots the runs took, oldest first, as the emulator saw them
/// created (the call log is emptied before the drill, so hand-made ones are not among them).
async fn run_snapshot_ids(env: &DrillEnv) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for call in env.emulator.control().calls().await.expect("calls") {
        if call.operation == "CreateDBClusterSnapshot" && call.account == "111111111111" && !call.failed() {
            let id = call.params.get("DBClusterSnapshotIdentifier").expect("snapshot id").to_lowercase();
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_runs_keep_two_tool_snapshots_per_place_and_never_touch_hand_made_ones() {
    let env = DrillEnv::start(&config_with("retain_snapshots = 2", "retain_snapshots = 2")).await;
    let (source, copies, target) =
        (env.source().await, env.source_in_target_region().await, env.target().await);

    // Hand-made snapshots in all three places: one untagged, one with the tool's tags of another cluster.
    drill::setup::seed_source_cluster(&source, &env.config).await.expect("source cluster");
    let untagged = hand_made(&source, "orders", UNTAGGED, Vec::new()).await;
    let foreign = hand_made(&source, "orders", FOREIGN, foreign_tags()).await;
    hand_made_copy(&copies, &untagged, UNTAGGED, Vec::new()).await;
    hand_made_copy(&copies, &foreign, FOREIGN, foreign_tags()).await;
    target
        .rds()
        .create_db_cluster()
        .db_cluster_identifier("hand-made")
        .engine("aurora-postgresql")
        .master_username("dba")
        .master_user_password("HandMade-123456")
        .send()
        .await
        .expect("target cluster");
    // RDS snapshots only an `available` cluster.
    drill::setup::wait_until_available(&target.rds(), "hand-made").await.expect("target cluster available");
    hand_made(&target, "hand-made", UNTAGGED, Vec::new()).await;
    hand_made(&target, "hand-made", FOREIGN, foreign_tags()).await;

    env.emulator.control().clear_calls().await.expect("call log emptied");
    let mut args = env.args(4);
    args.own_copy = true; // so the target account has copies of its own to prune
    let report = drill::execute(&args, &env.config).await.expect("drill ran");
    assert!(report.ok, "drill failed: {:#}", report.report);
    let ids = run_snapshot_ids(&env).await;
    assert_eq!(ids.len(), 4);
    let newest_two: BTreeSet<String> = ids[2..].iter().cloned().collect();

    for (place, ctx) in [("source region", &source), ("target region", &copies), ("target account", &target)]
    {
        assert_eq!(tool_snapshots(ctx).await, newest_two, "{place}: the tool keeps exactly the newest 2");
        let all = names(ctx).await;
        for kept in [UNTAGGED, FOREIGN] {
            assert!(all.contains(kept), "{place}: {kept} was deleted: {all:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_own_copy_is_restored_from_and_outlives_the_share() {
    let env = DrillEnv::start(&config_with("", "retain_snapshots = 1")).await;
    let control = env.emulator.control();
    // The share is revoked as the target restores: any restore from the source account's snapshot fails.
    control
        .arm(
            FaultRule::error("rds", "RestoreDBClusterFromSnapshot", "DBClusterSnapshotNotFoundFault")
                .status(404)
                .in_account("222222222222")
                .matching("SnapshotIdentifier", "arn:aws:rds:*:111111111111:cluster-snapshot:*")
                .message("the source account revoked the share"),
        )
        .await
        .expect("fault armed");

    let mut args = env.args(2);
    args.own_copy = true;
    let report = drill::execute(&args, &env.config).await.expect("drill ran");
    assert!(report.ok, "drill failed: {:#}", report.report);
    let target_key = report.report["targetKmsKeyArn"].as_str().expect("target key").to_owned();
    assert!(target_key.contains(":222222222222:key/"), "{target_key}");
    let ids = run_snapshot_ids(&env).await;
    assert_eq!(ids.len(), 2, "{ids:?}");

    // Both restores used the target account's own copy and key.
    let restores: Vec<_> = control
        .calls()
        .await
        .expect("calls")
        .into_iter()
        .filter(|c| c.operation == "RestoreDBClusterFromSnapshot" && c.account == "222222222222")
        .collect();
    assert_eq!(restores.len(), 2, "{restores:?}");
    for (call, id) in restores.iter().zip(&ids) {
        assert_eq!(
            call.params.get("SnapshotIdentifier").map(String::as_str),
            Some(format!("arn:aws:rds:us-west-1:222222222222:cluster-snapshot:{id}").as_str())
        );
        assert_eq!(call.params.get("KmsKeyId"), Some(&target_key));
        // Not answered by the revoked-share rule. (The emulator may still answer a second
        // restore under the same temporary name within a minute with moto's clash of automated
        // backup names, after creating the cluster; Restore then adopts it as its own.)
        assert_eq!(call.fault, None, "{call:?}");
    }

    // The DR cluster is under the target key; the first run's intermediate own copy is gone.
    let target = env.target().await;
    let cluster =
        aurora_dr_core::rds::find_cluster(&target.rds(), "orders-dr").await.expect("describe").expect("dr");
    assert_eq!(cluster.kms_key_id(), Some(target_key.as_str()));
    assert_eq!(tool_snapshots(&target).await, BTreeSet::from([ids[1].clone()]));

    // The fault rule is what a revoked share looks like: a restore from the shared snapshot now fails.
    let shared_arn = format!("arn:aws:rds:us-west-1:111111111111:cluster-snapshot:{}", ids[1]);
    let restore = |id: &'static str, from: String| {
        let rds = target.rds();
        let key = target_key.clone();
        async move {
            rds.restore_db_cluster_from_snapshot()
                .db_cluster_identifier(id)
                .snapshot_identifier(from)
                .engine("aurora-postgresql")
                .kms_key_id(key)
                .send()
                .await
        }
    };
    assert!(restore("check-shared", shared_arn.clone()).await.is_err(), "the armed rule answers");

    // Now for real: the source revokes the share and disables its key.
    control.reset_faults().await.expect("faults reset");
    let copies = env.source_in_target_region().await;
    copies
        .rds()
        .modify_db_cluster_snapshot_attribute()
        .db_cluster_snapshot_identifier(&ids[1])
        .attribute_name("restore")
        .values_to_remove("222222222222")
        .send()
        .await
        .expect("share revoked");
    let source_key = report.report["kmsKeyArn"].as_str().expect("source key");
    // By key id: the emulator's DisableKey does not take the ARN.
    let source_key_id = source_key.rsplit('/').next().expect("key id");
    copies.kms().disable_key().key_id(source_key_id).send().await.expect("source key disabled");

    let err = restore("check-shared", shared_arn).await.expect_err("the share is gone");
    assert!(format!("{err:?}").contains("DBClusterSnapshotNotFound"), "{err:?}");
    // The DR side still has all it needs: its cluster, and its own copy under its own key.
    let cluster =
        aurora_dr_core::rds::find_cluster(&target.rds(), "orders-dr").await.expect("describe").expect("dr");
    assert_eq!(cluster.status(), Some("available"));
    let own = format!("arn:aws:rds:us-west-1:222222222222:cluster-snapshot:{}", ids[1]);
    let again = restore("check-own", own).await.expect("restored from the own copy");
    assert_eq!(again.db_cluster().and_then(|c| c.kms_key_id()), Some(target_key.as_str()));
}

/// With `final_snapshot`, each run's Terminate leaves a final snapshot of
/// the DR cluster it replaced. The restore copies the run's tags to the
/// cluster's snapshots, so those finals are the tool's: the target side's
/// retention keeps the newest `retain_snapshots` of them and deletes the
/// rest, and never a final it did not tag.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn final_snapshots_of_replaced_dr_clusters_are_pruned_like_the_copies() {
    let env = DrillEnv::start(&config_with("", "retain_snapshots = 1\nfinal_snapshot = true")).await;
    // Snapshots are available at once, so every final is ranked by the next run's retention.
    let control = env.emulator.control();
    control
        .set_latency(&Latency { snapshot: Delay::polls(0), ..Latency::for_tests() })
        .await
        .expect("latency");
    // A DR copy made before this drill, its snapshots untagged: its final is never the tool's.
    env.seed_existing_dr_cluster().await;
    let target = env.target().await;

    let report = drill::execute(&env.args(4), &env.config).await.expect("drill ran");
    assert!(report.ok, "drill failed: {:#}", report.report);
    let finals: BTreeSet<String> =
        names(&target).await.into_iter().filter(|n| n.ends_with("-final")).collect();
    let tagged: BTreeSet<String> =
        tool_snapshots(&target).await.into_iter().filter(|n| n.ends_with("-final")).collect();
    // Four runs replaced four DR clusters: the hand-made one (run 1), then
    // the ones runs 1-3 restored. Of the latter three the newest is kept.
    assert_eq!(tagged.len(), 1, "finals kept: {finals:?}");
    assert_eq!(finals.len(), 2, "the untagged final and the newest tagged one: {finals:?}");
    let newest_stamp = |set: &BTreeSet<String>| set.iter().max().cloned();
    assert_eq!(newest_stamp(&finals), newest_stamp(&tagged), "the kept final is the newest: {finals:?}");
    let deleted = control
        .calls()
        .await
        .expect("calls")
        .into_iter()
        .filter(|c| c.operation == "DeleteDBClusterSnapshot" && c.account == "222222222222" && !c.failed())
        .filter_map(|c| c.params.get("DBClusterSnapshotIdentifier").cloned())
        .filter(|id| id.ends_with("-final"))
        .count();
    assert_eq!(deleted, 2, "the two older tagged finals were pruned");
}
