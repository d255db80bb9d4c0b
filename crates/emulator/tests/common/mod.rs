//! Shared fixtures of the emulator's integration tests: a private emulator per
//! test, clients acting in an account exactly as in production (through
//! `sts:AssumeRole`), and small builders for the resources of the DR flow.
#![allow(dead_code)]

use aurora_dr_core::clients::{AwsContext, ClientOptions};
use aurora_dr_core::ids::{AccountId, Region};
use aurora_dr_emulator::{Emulator, EmulatorConfig};
use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_rds::types::{DbCluster, DbClusterSnapshot};

pub const SOURCE: &str = "111111111111";
pub const TARGET: &str = "222222222222";
pub const SOURCE_REGION: &str = "us-west-2";
pub const TARGET_REGION: &str = "us-west-1";
pub const ENGINE: &str = "aurora-postgresql";

/// A private emulator with the test latency (two polls).
pub async fn emulator() -> Emulator {
    emulator_with(EmulatorConfig::default()).await
}

pub async fn emulator_with(config: EmulatorConfig) -> Emulator {
    match Emulator::start(config).await {
        Ok(emulator) => emulator,
        Err(error) => panic!("the emulator could not start (this test needs Python 3.9+ and PyPI): {error}"),
    }
}

/// Clients acting in `account` in `region`, built by the project's one
/// client factory: static base credentials (the emulator accepts any), the
/// account from `sts:AssumeRole`, exactly as in production.
pub async fn context(emulator: &Emulator, account: &str, region: &str) -> AwsContext {
    let account: AccountId = account.parse().expect("valid account id");
    let region: Region = region.parse().expect("valid region");
    let options = ClientOptions::in_region(region)
        .with_endpoint(Some(emulator.url().to_owned()))
        .with_static_credentials("test", "test")
        .as_account(&account, "aurora-dr");
    AwsContext::load(&options).await
}

pub async fn rds(emulator: &Emulator, account: &str, region: &str) -> aws_sdk_rds::Client {
    context(emulator, account, region).await.rds()
}

/// The AWS error code of a failed call, or a panic naming the success.
pub fn code<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(result: Result<T, E>) -> String {
    match result {
        Ok(value) => panic!("expected an AWS error, got {value:?}"),
        Err(error) => error.code().unwrap_or("<no code>").to_owned(),
    }
}

/// Creates a cluster and describes it until `available`.
pub async fn cluster(rds: &aws_sdk_rds::Client, id: &str) -> aws_sdk_rds::types::DbCluster {
    new_cluster(rds, id, false).await.unwrap_or_else(|e| panic!("{e}"))
}

/// Creates a cluster encrypted under the account's AWS managed key (no
/// KmsKeyId) and describes it until `available`.
pub async fn encrypted_cluster(rds: &aws_sdk_rds::Client, id: &str) -> aws_sdk_rds::types::DbCluster {
    new_cluster(rds, id, true).await.unwrap_or_else(|e| panic!("{e}"))
}

/// Creates an instance in a cluster and describes it until `available`.
pub async fn instance(rds: &aws_sdk_rds::Client, cluster: &str, id: &str) {
    new_instance(rds, cluster, id).await.unwrap_or_else(|e| panic!("{e}"))
}

/// Manual snapshot of a cluster, described until `available`.
pub async fn snapshot(
    rds: &aws_sdk_rds::Client,
    cluster: &str,
    id: &str,
) -> aws_sdk_rds::types::DbClusterSnapshot {
    new_snapshot(rds, cluster, id).await.unwrap_or_else(|e| panic!("{e}"))
}

pub async fn wait_snapshot(
    rds: &aws_sdk_rds::Client,
    id: &str,
    status: &str,
) -> aws_sdk_rds::types::DbClusterSnapshot {
    snapshot_in(rds, id, status).await.unwrap_or_else(|e| panic!("{e}"))
}

pub async fn wait_cluster(
    rds: &aws_sdk_rds::Client,
    id: &str,
    status: &str,
) -> aws_sdk_rds::types::DbCluster {
    cluster_in(rds, id, status).await.unwrap_or_else(|e| panic!("{e}"))
}

pub async fn wait_instance(rds: &aws_sdk_rds::Client, id: &str, status: &str) {
    instance_in(rds, id, status).await.unwrap_or_else(|e| panic!("{e}"))
}

// Fallible forms: `Err` says what went wrong (the RDS behaviour checks must
// not panic on stock moto).

/// The value of a call that must succeed.
pub fn ok<T, E: ProvideErrorMetadata>(what: &str, result: Result<T, SdkError<E>>) -> Result<T, String> {
    result.map_err(|e| format!("{what}: {} {}", e.code().unwrap_or("<no code>"), e.message().unwrap_or("")))
}

pub const MAX_POLLS: usize = 20;

pub async fn new_cluster(rds: &aws_sdk_rds::Client, id: &str, encrypted: bool) -> Result<DbCluster, String> {
    ok(
        &format!("CreateDBCluster {id}"),
        rds.create_db_cluster()
            .db_cluster_identifier(id)
            .engine(ENGINE)
            .master_username("dbadmin")
            .master_user_password("correct-horse-battery")
            .storage_encrypted(encrypted)
            .send()
            .await,
    )?;
    cluster_in(rds, id, "available").await
}

pub async fn cluster_in(rds: &aws_sdk_rds::Client, id: &str, status: &str) -> Result<DbCluster, String> {
    let mut seen = Vec::new();
    for _ in 0..MAX_POLLS {
        let out =
            ok("DescribeDBClusters", rds.describe_db_clusters().db_cluster_identifier(id).send().await)?;
        let cluster = out.db_clusters().first().cloned().ok_or("no cluster described")?;
        if cluster.status() == Some(status) {
            return Ok(cluster);
        }
        seen.push(cluster.status().unwrap_or_default().to_owned());
    }
    Err(format!("cluster {id} never became {status}: {seen:?}"))
}

pub async fn new_instance(rds: &aws_sdk_rds::Client, cluster: &str, id: &str) -> Result<(), String> {
    ok(
        &format!("CreateDBInstance {id}"),
        rds.create_db_instance()
            .db_instance_identifier(id)
            .db_cluster_identifier(cluster)
            .engine(ENGINE)
            .db_instance_class("db.r6g.large")
            .send()
            .await,
    )?;
    instance_in(rds, id, "available").await
}

pub async fn instance_in(rds: &aws_sdk_rds::Client, id: &str, status: &str) -> Result<(), String> {
    let mut seen = Vec::new();
    for _ in 0..MAX_POLLS {
        let out =
            ok("DescribeDBInstances", rds.describe_db_instances().db_instance_identifier(id).send().await)?;
        let current = out.db_instances().first().and_then(|i| i.db_instance_status()).unwrap_or_default();
        if current == status {
            return Ok(());
        }
        seen.push(current.to_owned());
    }
    Err(format!("instance {id} never became {status}: {seen:?}"))
}

pub async fn new_snapshot(
    rds: &aws_sdk_rds::Client,
    cluster: &str,
    id: &str,
) -> Result<DbClusterSnapshot, String> {
    ok(
        &format!("CreateDBClusterSnapshot {id}"),
        rds.create_db_cluster_snapshot()
            .db_cluster_identifier(cluster)
            .db_cluster_snapshot_identifier(id)
            .send()
            .await,
    )?;
    snapshot_in(rds, id, "available").await
}

pub async fn snapshot_in(
    rds: &aws_sdk_rds::Client,
    id: &str,
    status: &str,
) -> Result<DbClusterSnapshot, String> {
    let mut seen = Vec::new();
    for _ in 0..MAX_POLLS {
        let out = ok(
            "DescribeDBClusterSnapshots",
            rds.describe_db_cluster_snapshots().db_cluster_snapshot_identifier(id).send().await,
        )?;
        let snapshot = out.db_cluster_snapshots().first().cloned().ok_or("no snapshot described")?;
        if snapshot.status() == Some(status) {
            return Ok(snapshot);
        }
        seen.push(snapshot.status().unwrap_or_default().to_owned());
    }
    Err(format!("snapshot {id} never became {status}: {seen:?}"))
}

/// KMS key in the source account and target region whose policy lets
/// `allowed` accounts use it (the blog's one-time key set-up).
pub async fn shared_key(emulator: &Emulator, allowed: &[&str]) -> String {
    customer_key(emulator, SOURCE, TARGET_REGION, allowed).await.expect("create key")
}

/// A customer managed key of `owner` in `region` whose policy lets the
/// `allowed` accounts use it through RDS.
pub async fn customer_key(
    emulator: &Emulator,
    owner: &str,
    region: &str,
    allowed: &[&str],
) -> Result<String, String> {
    let kms = context(emulator, owner, region).await.kms();
    let principals: Vec<String> = allowed.iter().map(|a| format!("arn:aws:iam::{a}:root")).collect();
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "owner", "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{owner}:root")},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "dr", "Effect": "Allow", "Principal": {"AWS": principals},
             "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant"], "Resource": "*"}
        ]
    });
    let key =
        kms.create_key().policy(policy.to_string()).send().await.map_err(|e| format!("CreateKey: {e}"))?;
    key.key_metadata().and_then(|m| m.arn()).map(str::to_owned).ok_or_else(|| "no key ARN".to_owned())
}

/// The source side of the flow: an encrypted cluster and its snapshot in the
/// source region, a copy in the target region under `key_arn`. Returns the
/// copy's ARN.
pub async fn encrypted_copy(emulator: &Emulator, key_arn: &str, name: &str) -> String {
    let source = rds(emulator, SOURCE, SOURCE_REGION).await;
    encrypted_cluster(&source, "prod").await;
    let snap = snapshot(&source, "prod", name).await;
    let copy_rds = rds(emulator, SOURCE, TARGET_REGION).await;
    copy_rds
        .copy_db_cluster_snapshot()
        .source_db_cluster_snapshot_identifier(snap.db_cluster_snapshot_arn().expect("arn"))
        .target_db_cluster_snapshot_identifier(name)
        .kms_key_id(key_arn)
        .send()
        .await
        .expect("copy");
    wait_snapshot(&copy_rds, name, "available").await.db_cluster_snapshot_arn().expect("arn").to_owned()
}

/// Shares a snapshot of the source account (target region) with `account`.
pub async fn share(emulator: &Emulator, id: &str, account: &str) {
    rds(emulator, SOURCE, TARGET_REGION)
        .await
        .modify_db_cluster_snapshot_attribute()
        .db_cluster_snapshot_identifier(id)
        .attribute_name("restore")
        .values_to_add(account)
        .send()
        .await
        .expect("share");
}

/// A stand-in evaluator (the protocol of tools/rehearse/evaluator.mjs):
/// denies the action given as its argument, allows everything else.
pub const FAKE_EVALUATOR: &str = r#"
import json, sys
denied = sys.argv[1]
for line in sys.stdin:
    req = json.loads(line)
    if req.get("ping"):
        out = {"id": req["id"], "pong": True}
    elif req["action"] == denied:
        out = {"id": req["id"], "decision": "ImplicitlyDenied", "reason": "no identity policy statement allows it"}
    else:
        out = {"id": req["id"], "decision": "Allowed", "grants": []}
    print(json.dumps(out), flush=True)
"#;
