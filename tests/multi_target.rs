//! The source side of a run with two DR targets, end to end on the
//! emulator: target A (222222222222) in us-west-1 and target B
//! (333333333333) in eu-west-1. The source machine (as written) copies the
//! snapshot into each region under that region's key, shares each copy with
//! exactly that region's account, and publishes one message per target; each
//! target's subscription to the one topic filters on the `targetAccountId`
//! attribute, so each receives its own message only. A Share refused in one
//! region leaves the other region's copy, share and message as they are.
//!
//! The target side (one workflow per target) runs in the drill of many
//! targets: tests/multi_target_drill.rs.

use std::sync::Arc;
use std::time::Duration;

use aurora_dr_asl::{Clock, Engine, Outcome, StartOptions, Status};
use aurora_dr_cli::config::Config;
use aurora_dr_cli::drill::{self, setup};
use aurora_dr_core::clients::AwsContext;
use aurora_dr_core::context::{SideSettings, StepContext};
use aurora_dr_core::ids::{AccountId, Arn, Region};
use aurora_dr_emulator::FaultRule;
use aurora_dr_tests::{CONFIG, DrillEnv, NotificationSink};
use serde_json::{Value, json};

const SRC: &str = "111111111111";
const SRC_REGION: &str = "us-west-2";
const A: (&str, &str) = ("222222222222", "us-west-1");
const B: (&str, &str) = ("333333333333", "eu-west-1");
const DELIVERY: Duration = Duration::from_secs(20);

/// The example configuration with its one `[target]` as target A and a
/// copy of it as target B.
fn two_targets() -> String {
    let (source, target) = CONFIG.split_once("[target]").expect("a [target] table");
    let second = target.replace(A.0, B.0).replace(A.1, B.1);
    format!("{source}[[targets]]{target}[[targets]]{second}")
}

/// What the stacks create for both targets: a key per target region that
/// its target account may use, one topic that both target accounts may
/// subscribe to, each target's subscription filtered on its account (a
/// sink per target), and the source cluster.
struct Wired {
    settings: aurora_dr_core::settings::SourceSettings,
    sinks: Vec<NotificationSink>,
}

async fn wire(env: &DrillEnv) -> Wired {
    let c: &Config = &env.config;
    let url = env.emulator.url();
    let source = env.source().await;
    setup::seed_source_cluster(&source, c).await.expect("source cluster");
    let mut settings = c.source.clone();
    for (account, region) in [A, B] {
        let region: Region = region.parse().expect("region");
        let kms = source.in_region(&region).kms();
        let policy = json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "SourceAccountAdministers", "Effect": "Allow",
             "Principal": {"AWS": format!("arn:aws:iam::{SRC}:root")}, "Action": "kms:*", "Resource": "*"},
            {"Sid": "TargetAccountRestores", "Effect": "Allow",
             "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
             "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant"], "Resource": "*"}]});
        let key = kms.create_key().policy(policy.to_string()).send().await.expect("CreateKey");
        let arn: Arn = key.key_metadata().and_then(|m| m.arn()).expect("key arn").parse().expect("arn");
        settings.set_kms_key(&region, arn);
    }
    let sns = source.sns();
    let topic = sns.create_topic().name(setup::SNAPSHOT_TOPIC).send().await.expect("CreateTopic");
    let topic = topic.topic_arn().expect("topic arn").to_owned();
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "OwnerPublishes", "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{SRC}:root")},
         "Action": ["sns:Publish", "sns:GetTopicAttributes"], "Resource": topic},
        {"Sid": "TargetAccountsSubscribe", "Effect": "Allow",
         "Principal": {"AWS": [format!("arn:aws:iam::{}:root", A.0), format!("arn:aws:iam::{}:root", B.0)]},
         "Action": ["sns:Subscribe"], "Resource": topic}]});
    sns.set_topic_attributes()
        .topic_arn(&topic)
        .attribute_name("Policy")
        .attribute_value(policy.to_string())
        .send()
        .await
        .expect("SetTopicAttributes");
    let (failures, _) =
        setup::ensure_topic(&source, setup::FAILURE_TOPIC, None).await.expect("failure topic");
    let mut sinks = Vec::new();
    for (account, region) in [A, B] {
        let sink = NotificationSink::start().await;
        let account: AccountId = account.parse().expect("account");
        let target_in_source_region = setup::account_context(url, &account, &c.source.region, None).await;
        let filter = json!({"targetAccountId": [account.as_str()], "targetRegion": [region]});
        target_in_source_region
            .sns()
            .subscribe()
            .topic_arn(&topic)
            .protocol("http")
            .endpoint(&sink.url)
            .attributes("FilterPolicy", filter.to_string())
            .send()
            .await
            .expect("Subscribe");
        sinks.push(sink);
    }
    settings.notification_topic_arn = Some(topic.parse().expect("topic arn"));
    settings.failure_topic_arn = Some(failures);
    Wired { settings, sinks }
}

async fn run_source(
    env: &DrillEnv,
    settings: aurora_dr_core::settings::SourceSettings,
    name: &str,
) -> Outcome {
    let source = env.source().await;
    let ctx = Arc::new(StepContext::new(source, SideSettings::Source(settings)));
    let clock = Clock::scaled(0.0001).expect("clock").with_real_timeouts();
    let engine = Engine::with_account(clock, SRC_REGION, SRC);
    let region: Region = SRC_REGION.parse().expect("region");
    let account: AccountId = SRC.parse().expect("account");
    let spec = drill::source_machine(&ctx, &region, &account).expect("source machine");
    let machine = engine.register(spec).expect("register");
    let exec = engine.start(&machine.arn, json!({}), StartOptions::named(name)).expect("start");
    exec.wait().await
}

/// The copy of `snapshot` in `region` (source account): its key, and the
/// accounts its `restore` attribute names.
async fn copy_in(source: &AwsContext, region: &str, snapshot: &str) -> Option<(String, Vec<String>)> {
    let rds = source.in_region(&region.parse().expect("region")).rds();
    let snap = aurora_dr_core::rds::find_cluster_snapshot(&rds, snapshot, false).await.expect("describe")?;
    let shared = aurora_dr_core::rds::shared_with(&rds, snapshot).await.expect("attributes");
    assert_eq!(snap.storage_encrypted(), Some(true), "{region}: {snap:?}");
    Some((snap.kms_key_id().unwrap_or_default().to_owned(), shared))
}

/// The regions' final payloads of the run's one cluster.
fn regions(out: &Outcome) -> Vec<Value> {
    out.output
        .as_ref()
        .and_then(|o| o["clusters"][0]["copies"]["regions"].as_array().cloned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_target_gets_its_copy_its_share_and_its_message() {
    let env = DrillEnv::start(&two_targets()).await;
    assert_eq!(env.config.targets.len(), 2);
    let Wired { settings, sinks } = wire(&env).await;
    let keys: Vec<(String, String)> =
        settings.target_regions.iter().map(|r| (r.region.to_string(), r.kms_key_arn.to_string())).collect();

    let out = run_source(&env, settings, "two-targets").await;
    assert_eq!(out.status, Status::Succeeded, "{out:?}");
    let regions = regions(&out);
    let order: Vec<&str> = regions.iter().filter_map(|r| r["targetRegion"].as_str()).collect();
    assert_eq!(order, [A.1, B.1]);
    let snapshot = regions[0]["targetSnapshotId"].as_str().expect("copy id").to_owned();

    let source = env.source().await;
    for ((account, region), (key_region, key)) in [A, B].into_iter().zip(&keys) {
        assert_eq!(region, key_region);
        let (copy_key, shared) = copy_in(&source, region, &snapshot).await.expect("a copy in each region");
        assert!(copy_key == *key || key.ends_with(&copy_key), "{region}: copy under {copy_key}, want {key}");
        assert_eq!(shared, [account], "{region}: shared with exactly its target");
    }
    for (sink, (account, region)) in sinks.iter().zip([A, B]) {
        let got = sink.wait_for(1, DELIVERY).await;
        let messages: Vec<(&str, &str)> = got
            .iter()
            .map(|n| {
                (
                    n.message["targetAccountId"].as_str().unwrap_or(""),
                    n.message["targetRegion"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(messages, [(account, region)], "target {account} receives its own message only");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_share_refused_in_one_region_leaves_the_other_target_served() {
    let env = DrillEnv::start(&two_targets()).await;
    let Wired { settings, sinks } = wire(&env).await;
    // RDS refuses the share in eu-west-1 only (target B).
    env.emulator
        .control()
        .arm(
            FaultRule::error("rds", "ModifyDBClusterSnapshotAttribute", "AccessDenied")
                .status(403)
                .in_region(B.1),
        )
        .await
        .expect("fault");
    let out = run_source(&env, settings, "one-region-fails").await;
    assert_eq!((out.status, out.error.as_deref()), (Status::Failed, Some("AccessDenied")), "{out:?}");
    assert!(out.cause.as_deref().is_some_and(|c| c.contains("in Share")), "{out:?}");

    // Target A: copied, shared, notified.
    let got = sinks[0].wait_for(1, DELIVERY).await;
    assert_eq!(got.len(), 1, "target A is notified");
    assert_eq!(got[0].message["targetAccountId"], A.0);
    let snapshot = got[0].message["targetSnapshotId"].as_str().expect("copy id").to_owned();
    let source = env.source().await;
    let (_, shared) = copy_in(&source, A.1, &snapshot).await.expect("target A's copy");
    assert_eq!(shared, [A.0]);
    // Target B: its unshared copy cleaned up, no message.
    assert!(copy_in(&source, B.1, &snapshot).await.is_none(), "CleanUpCopy deletes B's unshared copy");
    assert!(sinks[1].received().is_empty(), "target B gets no message");
}
