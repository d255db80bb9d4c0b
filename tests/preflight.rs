//! `aurora-dr preflight` against a drill's emulator: a set-up a drill ran
//! on passes; an unencrypted source, a full snapshot quota and a key policy
//! without the target account are each named as a blocker (exit 1), and
//! each blocker goes once its cause is fixed.

use std::process::ExitCode;

use aurora_dr_cli::drill::setup;
use aurora_dr_cli::preflight::{self, Level, PreflightArgs, Report};
use aurora_dr_emulator::{FaultRule, QuotaName};
use aurora_dr_tests::{CONFIG, DrillEnv};

fn args(env: &DrillEnv) -> PreflightArgs {
    PreflightArgs { config: env.config_path.clone(), accounts: env.accounts(), json: true }
}

async fn preflight(env: &DrillEnv) -> Report {
    preflight::collect(&args(env), &env.config).await
}

fn levels(report: &Report, check: &str) -> Vec<Level> {
    report.of(check).iter().map(|f| f.level).collect()
}

/// The blockers, as `check: detail` lines.
fn blockers(report: &Report) -> Vec<String> {
    report
        .checks
        .iter()
        .filter(|f| f.level == Level::Blocker)
        .map(|f| format!("{}: {}", f.check, f.detail))
        .collect()
}

/// What the stacks (here: the drill's set-up) create, without a run: the
/// snapshot key with its policy for the target account, the topic with its
/// subscribe grant, the target's subscription, and the source cluster
/// unless the test made its own.
async fn wire(env: &DrillEnv) {
    let c = &env.config;
    let source = env.source().await;
    setup::ensure_kms_key(&env.source_in_target_region().await, c).await.expect("key");
    let (topic, _) =
        setup::ensure_topic(&source, setup::SNAPSHOT_TOPIC, Some(&c.target.account_id)).await.expect("topic");
    setup::seed_source_cluster(&source, c).await.expect("source cluster");
    let target_in_source_region =
        setup::account_context(env.emulator.url(), &c.target.account_id, &c.source.region, None).await;
    let receiver = format!("http://127.0.0.1:9{}", setup::SNS_PATH);
    setup::ensure_subscription(&target_in_source_region, &topic, &receiver).await.expect("subscription");
}

/// A manual snapshot of the source cluster, `orders-by-hand`, as an
/// operator makes one.
async fn snapshot_by_hand(env: &DrillEnv) {
    env.source()
        .await
        .rds()
        .create_db_cluster_snapshot()
        .db_cluster_identifier("orders")
        .db_cluster_snapshot_identifier("orders-by-hand")
        .send()
        .await
        .expect("CreateDBClusterSnapshot");
}

fn code(c: ExitCode) -> String {
    format!("{c:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_setup_a_drill_ran_on_passes_with_warnings_only() {
    let env = DrillEnv::start(CONFIG).await;
    let drill = env.drill(1).await;
    assert!(drill.ok, "drill failed: {:#}", drill.report);
    let report = preflight(&env).await;
    assert!(report.ok, "{}", report.render());
    for check in [
        "source-cluster",
        "snapshot-quota-source",
        "snapshot-quota-copies",
        "snapshot-key",
        "key-policy",
        "target-key",
        "topic-policy",
        "subscription",
        "names",
    ] {
        assert_eq!(levels(&report, check), [Level::Pass], "{check}: {}", report.render());
    }
    assert_eq!(levels(&report, "swap-room"), [Level::Pass, Level::Pass], "{}", report.render());
    // The drill's snapshot and copy count against the quotas RDS reports.
    let detail = |check: &str| report.of(check)[0].detail.clone();
    assert!(detail("snapshot-quota-source").contains("ManualClusterSnapshots in us-west-2: 1 of 100 used"));
    assert!(detail("snapshot-quota-copies").contains("ManualClusterSnapshots in us-west-1: 1 of 100 used"));
    assert!(detail("swap-room").contains("DBClusters in us-west-1: 1 of 40 used"), "{}", detail("swap-room"));
    assert!(detail("source-cluster").contains("orders exists, encrypted under the customer managed key"));
    // The local engine's machines are no stack of the emulator: not deployed yet, a warning.
    for check in ["source-state-machine", "target-state-machine"] {
        let f = report.of(check);
        assert_eq!(f[0].level, Level::Warning, "{check}: {f:?}");
        assert!(f[0].detail.contains("not deployed yet"), "{f:?}");
    }
    assert_eq!((report.blockers, report.warnings), (0, 2));
    assert_eq!(code(preflight::run(args(&env)).await), code(ExitCode::SUCCESS));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unencrypted_source_cluster_is_a_blocker() {
    let env = DrillEnv::start(CONFIG).await;
    // The source cluster before the set-up finds it: not encrypted.
    env.source()
        .await
        .rds()
        .create_db_cluster()
        .db_cluster_identifier("orders")
        .engine("aurora-postgresql")
        .master_username("dr_admin")
        .master_user_password("Unencrypted-Src-1")
        .storage_encrypted(false)
        .send()
        .await
        .expect("CreateDBCluster");
    wire(&env).await;
    let report = preflight(&env).await;
    assert_eq!(
        blockers(&report),
        [
            "source-cluster: cluster orders is not encrypted: its snapshots cannot be copied encrypted and shared"
        ]
    );
    assert!(
        report.of("source-cluster")[0]
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("restore an encrypted cluster"))
    );
    assert_eq!(code(preflight::run(args(&env)).await), code(ExitCode::FAILURE));

    // A missing source cluster is one too.
    let mut env = env;
    env.set_config(&CONFIG.replace("cluster_id = \"orders\"", "cluster_id = \"ledger\""));
    let report = preflight(&env).await;
    assert_eq!(
        blockers(&report),
        ["source-cluster: cluster ledger does not exist in account 111111111111 us-west-2"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_snapshot_quota_is_a_blocker() {
    let env = DrillEnv::start(CONFIG).await;
    wire(&env).await;
    assert!(preflight(&env).await.ok);
    // The source region's manual cluster snapshots at their quota: one made, one allowed.
    let c = &env.config;
    snapshot_by_hand(&env).await;
    let rule = FaultRule::quota_pressure_in(
        QuotaName::ManualClusterSnapshots,
        1,
        c.source.account_id.as_str(),
        c.source.region.as_str(),
    );
    env.emulator.control().arm(rule).await.expect("arm");
    let report = preflight(&env).await;
    assert_eq!(
        blockers(&report),
        [
            "snapshot-quota-source: ManualClusterSnapshots in us-west-2: 1 of 1 used, 1 snapshot(s) per run: no room"
        ]
    );
    assert!(
        report.of("snapshot-quota-source")[0].fix.as_deref().is_some_and(|f| f.contains("retain_snapshots"))
    );
    assert_eq!(levels(&report, "snapshot-quota-copies"), [Level::Pass], "the copies' region has room");
    assert_eq!(code(preflight::run(args(&env)).await), code(ExitCode::FAILURE));

    // Deleting the snapshot makes room again.
    env.source()
        .await
        .rds()
        .delete_db_cluster_snapshot()
        .db_cluster_snapshot_identifier("orders-by-hand")
        .send()
        .await
        .expect("DeleteDBClusterSnapshot");
    let report = preflight(&env).await;
    assert!(report.ok, "{}", report.render());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_policy_without_the_target_account_is_a_blocker() {
    let env = DrillEnv::start(CONFIG).await;
    wire(&env).await;
    let kms = env.source_in_target_region().await.kms();
    let key = kms.describe_key().key_id(setup::KEY_ALIAS).send().await.expect("key");
    let key_id = key.key_metadata().expect("metadata").key_id().to_owned();
    let original = kms.get_key_policy().key_id(&key_id).policy_name("default").send().await.expect("policy");
    let original = original.policy().expect("policy").to_owned();
    let source_only = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "SourceAccountAdministers", "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": "kms:*", "Resource": "*"}]
    });
    let put = |policy: String| {
        let kms = kms.clone();
        let key_id = key_id.clone();
        async move {
            kms.put_key_policy()
                .key_id(key_id)
                .policy_name("default")
                .policy(policy)
                .send()
                .await
                .expect("put")
        }
    };
    put(source_only.to_string()).await;
    let report = preflight(&env).await;
    let found = blockers(&report);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("key-policy: the policy of arn:aws:kms:us-west-1:111111111111:key/")
            && found[0]
                .contains("does not let account 222222222222 use the key through RDS: kms:CreateGrant")
            && found[0].contains("kms:DescribeKey"),
        "{found:?}"
    );
    assert!(report.of("key-policy")[0].fix.as_deref().is_some_and(|f| f.contains("infra/kms-key.yaml")));
    assert_eq!(code(preflight::run(args(&env)).await), code(ExitCode::FAILURE));

    // CreateGrant only through another service's use is still no use through RDS.
    let via_ec2 = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
             "Action": ["kms:CreateGrant", "kms:DescribeKey"], "Resource": "*",
             "Condition": {"StringEquals": {"kms:ViaService": "ec2.us-west-1.amazonaws.com"}}}
        ]
    });
    put(via_ec2.to_string()).await;
    let report = preflight(&env).await;
    assert!(blockers(&report).iter().any(|b| b.contains("kms:ViaService")), "{}", report.render());

    // The original policy (the kms stack's statements) passes again.
    put(original).await;
    let report = preflight(&env).await;
    assert!(report.ok, "{}", report.render());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_disabled_dr_cluster_key_is_a_blocker() {
    let env = DrillEnv::start(CONFIG).await;
    // Before any run there is no key yet: the target stack (or the drill) creates it.
    wire(&env).await;
    let report = preflight(&env).await;
    assert_eq!(levels(&report, "target-key"), [Level::Warning], "{}", report.render());

    let drill = env.drill(1).await;
    assert!(drill.ok, "drill failed: {:#}", drill.report);
    let kms = env.target().await.kms();
    let key = kms.describe_key().key_id(setup::TARGET_KEY_ALIAS).send().await.expect("target key");
    let key_id = key.key_metadata().expect("metadata").key_id().to_owned();
    kms.disable_key().key_id(&key_id).send().await.expect("DisableKey");
    let report = preflight(&env).await;
    let found = blockers(&report);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("target-key: arn:aws:kms:us-west-1:222222222222:key/")
            && found[0].contains("is Disabled: the restore would fail with KMSKeyNotAccessibleFault"),
        "{found:?}"
    );
    assert_eq!(code(preflight::run(args(&env)).await), code(ExitCode::FAILURE));

    kms.enable_key().key_id(&key_id).send().await.expect("EnableKey");
    let report = preflight(&env).await;
    assert_eq!(levels(&report, "target-key"), [Level::Pass], "{}", report.render());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bad_configuration_exits_2_before_any_call() {
    let env = DrillEnv::start(CONFIG).await;
    std::fs::write(&env.config_path, CONFIG.replace("\"orders-dr-next\"", "\"orders--next\""))
        .expect("write");
    assert_eq!(code(preflight::run(args(&env)).await), code(ExitCode::from(2)));
    let calls = env.emulator.control().calls().await.expect("calls");
    assert!(calls.is_empty(), "{calls:?}");
}

/// Where RDS does not answer DescribeAccountAttributes (refused to the
/// caller, say), usage is counted and the documented default quota is
/// assumed, each quota check saying so as a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unread_quotas_fall_back_to_the_documented_defaults_and_say_so() {
    let env = DrillEnv::start(CONFIG).await;
    wire(&env).await;
    // Counted by DescribeDBClusterSnapshots instead.
    snapshot_by_hand(&env).await;
    let refused = FaultRule::error("rds", "DescribeAccountAttributes", "AccessDenied")
        .status(403)
        .message("not authorized to perform rds:DescribeAccountAttributes");
    env.emulator.control().arm(refused).await.expect("arm");
    let report = preflight(&env).await;
    assert!(report.ok, "warnings only: {}", report.render());
    for check in ["snapshot-quota-source", "snapshot-quota-copies", "swap-room"] {
        for f in report.of(check) {
            assert_eq!(f.level, Level::Warning, "{f:?}");
            assert!(
                f.detail.contains("the documented default quota") && f.detail.contains("access denied"),
                "{f:?}"
            );
        }
    }
    let source = &report.of("snapshot-quota-source")[0].detail;
    assert!(source.starts_with("ManualClusterSnapshots in us-west-2: 1 of 100 used"), "{source}");
    let swap: Vec<&str> = report.of("swap-room").iter().map(|f| f.detail.as_str()).collect();
    assert!(swap[0].starts_with("DBClusters in us-west-1: 0 of 40 used"), "{swap:?}");
    assert!(swap[1].starts_with("DBInstances in us-west-1: 0 of 40 used"), "{swap:?}");
    assert_eq!(code(preflight::run(args(&env)).await), code(ExitCode::SUCCESS));
}

/// The target account's subscription and the topic policy's grant, and a
/// configured target state machine that does not exist (yet), are blockers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_subscription_grant_or_state_machine_is_a_blocker() {
    let machine = "arn:aws:states:us-west-1:222222222222:stateMachine:aurora-dr-target";
    let config = CONFIG.replace(
        "temp_instance_id = \"orders-dr-next-1\"",
        &format!("temp_instance_id = \"orders-dr-next-1\"\nstate_machine_arn = \"{machine}\""),
    );
    let env = DrillEnv::start(&config).await;
    let c = &env.config;
    let source = env.source().await;
    setup::ensure_kms_key(&env.source_in_target_region().await, c).await.expect("key");
    setup::seed_source_cluster(&source, c).await.expect("source cluster");
    // A topic without the subscribe grant, and no subscription.
    let (topic, _) = setup::ensure_topic(&source, setup::SNAPSHOT_TOPIC, None).await.expect("topic");
    let report = preflight(&env).await;
    let found = blockers(&report);
    assert_eq!(found.len(), 3, "{}", report.render());
    assert!(found[0].starts_with(&format!(
        "topic-policy: the policy of {topic} does not let account 222222222222 subscribe"
    )));
    assert_eq!(
        found[1],
        format!(
            "subscription: account 222222222222 has no subscription to {topic}: no run would start a restore"
        )
    );
    assert_eq!(found[2], format!("target-state-machine: {machine} does not exist"));

    // The grant, the subscription and the machine: no blocker left.
    setup::ensure_topic(&source, setup::SNAPSHOT_TOPIC, Some(&c.target.account_id)).await.expect("grant");
    let target_in_source_region =
        setup::account_context(env.emulator.url(), &c.target.account_id, &c.source.region, None).await;
    let receiver = format!("http://127.0.0.1:9{}", setup::SNS_PATH);
    let topic_arn = topic.as_str().parse().expect("topic arn");
    setup::ensure_subscription(&target_in_source_region, &topic_arn, &receiver).await.expect("subscription");
    env.target()
        .await
        .sfn()
        .create_state_machine()
        .name("aurora-dr-target")
        .definition(r#"{"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}"#)
        .role_arn("arn:aws:iam::222222222222:role/aurora-dr-target")
        .send()
        .await
        .expect("CreateStateMachine");
    let report = preflight(&env).await;
    assert!(report.ok, "{}", report.render());
    assert_eq!(levels(&report, "target-state-machine"), [Level::Pass], "{}", report.render());
}

/// Two targets: target A (222222222222, us-west-1) as the drill's set-up
/// wires it, target B (333333333333, eu-west-1) not at all. Each target and
/// each target region is checked on its own and named: A's checks pass, B's
/// missing key, topic grant and subscription are blockers of B.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_target_is_checked_and_named_on_its_own() {
    let second = CONFIG
        .split("[target]")
        .nth(1)
        .expect("target table")
        .replace("222222222222", "333333333333")
        .replace("us-west-1", "eu-west-1");
    let two = format!(
        "{}[[targets]]{}[[targets]]{second}",
        CONFIG.split("[target]").next().expect("source"),
        CONFIG.split("[target]").nth(1).expect("target")
    );
    let env = DrillEnv::start(&two).await;
    assert_eq!(env.config.targets.len(), 2);
    wire(&env).await;
    let report = preflight(&env).await;
    let about = |check: &str, what: &str| -> Vec<Level> {
        report.of(check).iter().filter(|f| f.detail.starts_with(what)).map(|f| f.level).collect()
    };
    let (a, b) = ("target 222222222222 us-west-1: ", "target 333333333333 eu-west-1: ");
    for check in ["topic-policy", "subscription"] {
        assert_eq!(about(check, b), [Level::Blocker], "{check}: {}", report.render());
    }
    assert_eq!(about("topic-policy", a), [Level::Pass], "{}", report.render());
    // A's subscription exists but would receive B's messages too.
    assert_eq!(about("subscription", a), [Level::Warning], "{}", report.render());
    assert!(
        report
            .of("subscription")
            .iter()
            .any(|f| f.detail.contains("without a filter policy on targetAccountId"))
    );
    assert_eq!(about("snapshot-key", "copies in us-west-1: "), [Level::Pass], "{}", report.render());
    assert_eq!(about("key-policy", "copies in us-west-1: "), [Level::Pass], "{}", report.render());
    assert_eq!(about("snapshot-key", "copies in eu-west-1: "), [Level::Blocker], "{}", report.render());
    assert_eq!(about("snapshot-quota-copies", "copies in eu-west-1: "), [Level::Pass], "{}", report.render());
    assert_eq!(about("swap-room", b).len(), 2, "{}", report.render());
    assert!(!report.ok);
    assert!(
        blockers(&report).iter().all(|b| b.contains("333333333333") || b.contains("eu-west-1")),
        "{:#?}",
        blockers(&report)
    );
    assert_eq!(code(preflight::run(args(&env)).await), code(ExitCode::FAILURE));

    // Filtered on A's account, A's subscription passes.
    let target_in_source_region = setup::account_context(
        env.emulator.url(),
        &env.config.target.account_id,
        &env.config.source.region,
        None,
    )
    .await;
    let sns = target_in_source_region.sns();
    let topic = format!("arn:aws:sns:us-west-2:111111111111:{}", setup::SNAPSHOT_TOPIC);
    let subs = sns.list_subscriptions_by_topic().topic_arn(&topic).send().await.expect("subscriptions");
    for sub in subs.subscriptions() {
        sns.set_subscription_attributes()
            .subscription_arn(sub.subscription_arn().expect("arn"))
            .attribute_name("FilterPolicy")
            .attribute_value(r#"{"targetAccountId": ["222222222222"], "targetRegion": ["us-west-1"]}"#)
            .send()
            .await
            .expect("SetSubscriptionAttributes");
    }
    let report = preflight(&env).await;
    let about = |check: &str, what: &str| -> Vec<Level> {
        report.of(check).iter().filter(|f| f.detail.starts_with(what)).map(|f| f.level).collect()
    };
    assert_eq!(about("subscription", a), [Level::Pass], "{}", report.render());
}
