//! Security checks, end to end on private emulators: shares are private,
//! copies are encrypted with the configured key, an unencrypted source is
//! refused with what to do, a source under the AWS-managed key restores, no
//! instance is public, the restored cluster gets deletion protection when
//! configured, and no secret reaches the logs of a full run.
//!
//! The static checks of template.yaml and infra/ (no destructive RDS/KMS
//! action on `Resource: "*"`, the snapshot topic grants exactly the target
//! account, the SNS Lambda permission has SourceArn and SourceAccount, one
//! role per function) are `check_security` in tools/infra_consistency.py,
//! run by `make lint-infra` (part of `make test`) with self-test cases that
//! break each rule in tools/test_lint_infra.py.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use aurora_dr_tests::{CONFIG, DrillEnv};

/// Every log line of this test binary, at debug level (a global subscriber).
fn captured_logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = Capture(Arc::clone(&buf));
        let _ = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing_subscriber::filter::LevelFilter::DEBUG)
            .with_writer(move || writer.clone())
            .try_init();
        buf
    })
}

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn with_target_key(key: &str, line: &str) -> String {
    CONFIG.replace(
        "temp_instance_id = \"orders-dr-next-1\"",
        &format!("temp_instance_id = \"orders-dr-next-1\"\n{key} = {line}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shares_are_private_and_every_copy_is_encrypted_with_the_configured_key() {
    let env = DrillEnv::start(CONFIG).await;
    let report = env.drill(2).await;
    assert!(report.ok, "drill failed: {:#}", report.report);
    let key = report.report["kmsKeyArn"].as_str().expect("key").to_owned();
    let calls = env.emulator.control().calls().await.expect("calls");
    // Every share call adds exactly the target account, never `all`.
    let shares: Vec<_> = calls.iter().filter(|c| c.operation == "ModifyDBClusterSnapshotAttribute").collect();
    assert!(!shares.is_empty(), "no share was made");
    for s in &shares {
        let added: Vec<&String> =
            s.params.iter().filter(|(k, _)| k.starts_with("ValuesToAdd")).map(|(_, v)| v).collect();
        assert_eq!(added, ["222222222222"], "share call {s:?}");
        assert_eq!(s.params.get("AttributeName").map(String::as_str), Some("restore"));
    }
    // Every copy is requested with the configured key, and is encrypted with it.
    let copies: Vec<_> =
        calls.iter().filter(|c| c.operation == "CopyDBClusterSnapshot" && c.status == Some(200)).collect();
    assert_eq!(copies.len(), 2, "one copy per run");
    for c in &copies {
        assert_eq!(c.params.get("KmsKeyId"), Some(&key), "copy call {c:?}");
    }
    let rds = env.source_in_target_region().await.rds();
    let listed = rds.describe_db_cluster_snapshots().snapshot_type("manual").send().await.expect("describe");
    assert_eq!(listed.db_cluster_snapshots().len(), 2);
    for snap in listed.db_cluster_snapshots() {
        let id = snap.db_cluster_snapshot_identifier().expect("id");
        assert_eq!(snap.storage_encrypted(), Some(true), "{id}");
        let k = snap.kms_key_id().unwrap_or_default();
        assert!(key == k || key.ends_with(&format!("key/{k}")), "{id} encrypted with {k}, not {key}");
        let restore = aurora_dr_core::rds::shared_with(&rds, id).await.expect("attributes");
        assert_eq!(restore, ["222222222222"], "{id} is shared with exactly the target account");
    }
}

/// The most common real source: a cluster encrypted without a key named, so
/// under the account's AWS-managed key `aws/rds` (Aurora User Guide,
/// "Encrypting Amazon Aurora resources"). Such a snapshot cannot be shared,
/// but its cross-region copy under the configured key can: the run restores
/// end to end. And every instance the runs create is private: with no subnet
/// group configured, RDS would make it public in the default VPC.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_source_under_the_aws_managed_key_restores_and_no_instance_is_public() {
    let env = DrillEnv::start(CONFIG).await;
    let source = env.source().await;
    let created = source
        .rds()
        .create_db_cluster()
        .db_cluster_identifier("orders")
        .engine("aurora-postgresql")
        .master_username("dr_admin")
        .master_user_password("managed-Key-1")
        .storage_encrypted(true)
        .send()
        .await
        .expect("CreateDBCluster");
    let managed = source.kms().describe_key().key_id("alias/aws/rds").send().await.expect("aws/rds key");
    let managed_arn = managed.key_metadata().and_then(|m| m.arn()).expect("key arn").to_owned();
    let cluster_key = created.db_cluster().and_then(|c| c.kms_key_id()).expect("cluster key");
    assert_eq!(cluster_key, managed_arn, "the source cluster is under aws/rds");

    let report = env.drill(2).await;
    assert!(report.ok, "drill failed: {:#}", report.report);
    let target = env.target().await;
    assert_eq!(aurora_dr_tests::cluster_ids(&target).await, ["orders-dr"]);
    let instances = target.rds().describe_db_instances().send().await.expect("DescribeDBInstances");
    assert!(!instances.db_instances().is_empty());
    for i in instances.db_instances() {
        assert_eq!(i.publicly_accessible(), Some(false), "{:?} is public", i.db_instance_identifier());
    }
}

/// Seeds an unencrypted source cluster (before the drill, whose `--seed` then keeps it).
async fn unencrypted_source(env: &DrillEnv) {
    let rds = env.source().await.rds();
    rds.create_db_cluster()
        .db_cluster_identifier("orders")
        .engine("aurora-postgresql")
        .master_username("dr_admin")
        .master_user_password("plain-Source-1")
        .storage_encrypted(false)
        .send()
        .await
        .expect("CreateDBCluster");
}

/// RDS cannot encrypt an unencrypted cluster snapshot while copying it
/// (CopyDBClusterSnapshot refuses a KmsKeyId for one), so an unencrypted
/// source is refused before anything is snapshotted, with what to do; the
/// setting that once promised otherwise is refused too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unencrypted_source_is_refused_with_what_to_do() {
    let refused = DrillEnv::start(CONFIG).await;
    unencrypted_source(&refused).await;
    let report = refused.drill(1).await;
    assert!(!report.ok);
    let calls = refused.emulator.control().calls().await.expect("calls");
    assert!(
        !calls
            .iter()
            .any(|c| c.operation == "CreateDBClusterSnapshot" || c.operation == "CopyDBClusterSnapshot"),
        "nothing may be snapshotted or copied"
    );
    // The run's one cluster failed in CreateSnapshot with UnsafeOperation, the
    // cause naming the unencrypted cluster, why and what to do.
    let source = &report.report["runs"][0]["clusters"][0]["source"];
    assert_eq!(
        (source["status"].as_str(), source["failedState"].as_str(), source["error"].as_str()),
        (Some("FAILED"), Some("CreateSnapshot"), Some("UnsafeOperation")),
        "{source:#}"
    );
    let cause: serde_json::Value =
        serde_json::from_str(source["cause"].as_str().expect("cause")).expect("Lambda's error JSON");
    assert_eq!(cause["errorType"], "UnsafeOperation", "{cause}");
    let message = cause["errorMessage"].as_str().expect("message");
    for want in [
        "source cluster orders is not storage-encrypted",
        "CopyDBClusterSnapshot refuses a KmsKeyId",
        "RestoreDBClusterFromSnapshot with KmsKeyId",
    ] {
        assert!(message.contains(want), "{want:?} not in {message}");
    }

    // The setting that allowed it is gone, and refused by name with the reason.
    let old_config = CONFIG.replace(
        "snapshot_prefix = \"aurora-dr\"",
        "snapshot_prefix = \"aurora-dr\"\nallow_unencrypted_source = true",
    );
    let errors = aurora_dr_cli::config::Config::parse(&old_config).expect_err("removed setting");
    assert!(
        errors.iter().any(|e| e.name == "source.allow_unencrypted_source"
            && e.problem.contains("cannot encrypt an unencrypted cluster snapshot")),
        "{errors:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_restored_cluster_gets_deletion_protection_when_configured() {
    let config = with_target_key("deletion_protection", "true")
        .replace("deletion_protection = true", "deletion_protection = true\nfinal_snapshot = true");
    let env = DrillEnv::start(&config).await;
    let report = env.drill(2).await;
    assert!(
        report.ok,
        "drill failed (Terminate must lift protection from the previous copy): {:#}",
        report.report
    );
    let target = env.target().await;
    // The previous copy is gone once its deletion has finished.
    assert_eq!(aurora_dr_tests::cluster_ids(&target).await, ["orders-dr"]);
    let clusters = target.rds().describe_db_clusters().send().await.expect("describe");
    assert_eq!(clusters.db_clusters()[0].deletion_protection(), Some(true));

    // Protection came off the previous copy only after the new one took the
    // existing name, and only off the previous copy.
    let calls = env.emulator.control().calls().await.expect("calls");
    let modify = |c: &&aurora_dr_emulator::CallRecord| {
        c.operation == "ModifyDBCluster" && c.account == "222222222222" && !c.failed()
    };
    let param = |c: &aurora_dr_emulator::CallRecord, k: &str| c.params.get(k).cloned().unwrap_or_default();
    let swapped_in = calls
        .iter()
        .filter(modify)
        .filter(|c| param(c, "NewDBClusterIdentifier") == "orders-dr")
        .map(|c| c.seq)
        .max()
        .expect("the new copy took the existing name");
    let unprotected: Vec<_> =
        calls.iter().filter(modify).filter(|c| param(c, "DeletionProtection") == "false").collect();
    assert_eq!(unprotected.len(), 1, "{unprotected:#?}");
    assert!(param(unprotected[0], "DBClusterIdentifier").starts_with("orders-dr-old-"), "{unprotected:#?}");
    assert!(unprotected[0].seq > swapped_in, "protection came off before the new copy served");

    // The previous copy's final snapshot carries the tool's tags.
    let rds = target.rds();
    let snapshots =
        rds.describe_db_cluster_snapshots().snapshot_type("manual").send().await.expect("describe");
    let finals: Vec<_> = snapshots
        .db_cluster_snapshots()
        .iter()
        .filter(|s| s.db_cluster_snapshot_identifier().is_some_and(|id| id.ends_with("-final")))
        .collect();
    assert_eq!(finals.len(), 1, "{snapshots:#?}");
    let arn = finals[0].db_cluster_snapshot_arn().expect("arn");
    let tags = rds.list_tags_for_resource().resource_name(arn).send().await.expect("tags");
    let tags = tags.tag_list();
    assert_eq!(aurora_dr_core::rds::tag_value(tags, aurora_dr_core::rds::TAG_MANAGED_BY), Some("aurora-dr"));
    assert!(aurora_dr_core::rds::tag_value(tags, aurora_dr_core::rds::TAG_RUN_ID).is_some(), "{tags:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_secret_appears_in_the_logs_of_a_full_run() {
    let logs = captured_logs();
    let env = DrillEnv::start(CONFIG).await;
    // The source cluster's master password, as production has one.
    let password = "Src-Master-Pw-7f3a9c";
    let source = env.source().await;
    let key = source.kms().create_key().send().await.expect("CreateKey");
    let key_arn = key.key_metadata().and_then(|m| m.arn()).expect("key arn").to_owned();
    source
        .rds()
        .create_db_cluster()
        .db_cluster_identifier("orders")
        .engine("aurora-postgresql")
        .master_username("dr_admin")
        .master_user_password(password)
        .storage_encrypted(true)
        .kms_key_id(key_arn)
        .send()
        .await
        .expect("CreateDBCluster");
    let report = env.drill(2).await;
    assert!(report.ok, "drill failed: {:#}", report.report);
    let text = String::from_utf8_lossy(&logs.lock().expect("lock")).into_owned();
    assert!(text.contains("snapshot creation started"), "the run's logs were not captured");
    let report_text = report.report.to_string();
    for (what, secret) in [
        ("master password", password),
        // moto's temporary credentials: every session token starts so.
        ("session token", "FQoGZXIvYXdzE"),
        ("secret key field", "SecretAccessKey"),
        ("session token field", "SessionToken"),
        ("password field", "MasterUserPassword="),
    ] {
        assert!(!text.contains(secret), "{what} appears in the logs");
        assert!(!report_text.contains(secret), "{what} appears in the drill report");
    }
}
