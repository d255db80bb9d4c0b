//! What the two stacks create, made locally and idempotently: the KMS key the
//! target account may use, the topics and their policies, the demo source
//! cluster (`--seed`), and the target side's subscription.

use std::time::{Duration, Instant};

use aurora_dr_core::clients::{AwsContext, ClientOptions};
use aurora_dr_core::ids::{AccountId, Arn, Region};
use aurora_dr_core::{DrError, DrResult};
use serde_json::json;

use crate::config::Config;

/// The role both sides assume in their account (any name works locally).
pub const DRILL_ROLE: &str = "aurora-dr-drill";
/// Names of what the drill creates.
/// The key's alias: the kms stack's default (`infra/kms-key.yaml`,
/// `KeyAlias`), so a drill and a deployment name the key alike.
pub const KEY_ALIAS: &str = "alias/aurora-dr-snapshots";
pub const SNAPSHOT_TOPIC: &str = "aurora-dr-snapshots";
pub const FAILURE_TOPIC: &str = "aurora-dr-failures";
/// The path the drill's SNS receiver serves.
pub const SNS_PATH: &str = "/aurora-dr/sns";

/// Clients of one account in one region.
pub async fn account_context(
    endpoint: &str,
    account: &AccountId,
    region: &Region,
    sfn: Option<String>,
) -> AwsContext {
    let options = ClientOptions::in_region(region.clone())
        .with_endpoint(Some(endpoint.to_owned()))
        .with_static_credentials("aurora-dr-local", "aurora-dr-local")
        .with_sfn_endpoint(sfn)
        .as_account(account, DRILL_ROLE);
    AwsContext::load(&options).await
}

fn sdk<E>(
    what: &str,
) -> impl FnOnce(
    aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> DrError
+ '_
where
    E: aws_sdk_rds::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    move |e| DrError::from_sdk(what, e)
}

/// One line of set-up progress.
pub struct Step {
    pub what: String,
    pub created: bool,
}

/// A KMS key: the configured one (it must exist), else the key under `alias`,
/// created with `policy` and key rotation when missing. `label` names it in
/// progress lines.
async fn ensure_key(
    ctx: &AwsContext,
    configured: Option<&Arn>,
    alias: &str,
    description: &str,
    policy: serde_json::Value,
    label: &str,
) -> DrResult<(Arn, Step)> {
    let kms = ctx.kms();
    if let Some(arn) = configured {
        kms.describe_key().key_id(arn.as_str()).send().await.map_err(sdk("DescribeKey"))?;
        return Ok((arn.clone(), Step { what: format!("{label} {arn}"), created: false }));
    }
    let parse = |arn: &str| -> DrResult<Arn> {
        arn.parse().map_err(|e| DrError::invalid_input(format!("KMS key ARN: {e}")))
    };
    if let Ok(out) = kms.describe_key().key_id(alias).send().await
        && let Some(arn) = out.key_metadata().and_then(|m| m.arn())
    {
        let arn = parse(arn)?;
        return Ok((arn.clone(), Step { what: format!("{label} {arn} ({alias})"), created: false }));
    }
    let out = kms
        .create_key()
        .description(description)
        .policy(policy.to_string())
        .send()
        .await
        .map_err(sdk("CreateKey"))?;
    let meta = out.key_metadata().ok_or_else(|| DrError::invalid_input("CreateKey returned no key"))?;
    let key_id = meta.key_id().to_owned();
    let arn = parse(meta.arn().unwrap_or_default())?;
    kms.create_alias().alias_name(alias).target_key_id(&key_id).send().await.map_err(sdk("CreateAlias"))?;
    kms.enable_key_rotation().key_id(&key_id).send().await.map_err(sdk("EnableKeyRotation"))?;
    Ok((arn.clone(), Step { what: format!("{label} {arn} ({alias})"), created: true }))
}

/// The KMS key in the source account and target region with a policy for the
/// target account (the blog's Part 1). Reused by alias when present.
pub async fn ensure_kms_key(source_in_target_region: &AwsContext, config: &Config) -> DrResult<(Arn, Step)> {
    let configured = config.kms_key_given.then_some(&config.source.kms_key_arn);
    ensure_region_kms_key(
        source_in_target_region,
        &config.source.account_id,
        std::slice::from_ref(&config.source.target_account_id),
        configured,
        "KMS key",
    )
    .await
}

/// The key of one target region (many DR targets): the source account's key
/// in that region, its policy granting every target account of the region
/// (`accounts`) what a restore of the shared copy needs. `configured` is the
/// region's key from `source.kms_key_arn` (it must exist); else the key under
/// [`KEY_ALIAS`] in that region, created when missing. A key found by alias
/// keeps the policy it has.
pub async fn ensure_region_kms_key(
    source_in_target_region: &AwsContext,
    source: &AccountId,
    accounts: &[AccountId],
    configured: Option<&Arn>,
    label: &str,
) -> DrResult<(Arn, Step)> {
    let targets: Vec<String> = accounts.iter().map(|a| format!("arn:aws:iam::{a}:root")).collect();
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "SourceAccountAdministers", "Effect": "Allow",
             "Principal": {"AWS": format!("arn:aws:iam::{source}:root")}, "Action": "kms:*", "Resource": "*"},
            {"Sid": "TargetAccountRestores", "Effect": "Allow",
             "Principal": {"AWS": if targets.len() == 1 { json!(targets[0]) } else { json!(targets) }},
             "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
             "Resource": "*"}
        ]
    });
    let description = "aurora-dr: encrypts snapshot copies shared with the DR account";
    ensure_key(source_in_target_region, configured, KEY_ALIAS, description, policy, label).await
}

/// Alias of the key [`ensure_target_kms_key`] creates.
pub const TARGET_KEY_ALIAS: &str = "alias/aurora-dr-target";

/// The target account's own key, in the target region, that the DR cluster
/// (and the own copy) is encrypted with: `target.kms_key_arn` when the
/// configuration gives one (it must exist), else the key under
/// [`TARGET_KEY_ALIAS`], created when missing, with the key policy of the
/// template's `TargetKey` (the account administers it; its principals use it
/// through RDS only). The source account never needs it.
pub async fn ensure_target_kms_key(target: &AwsContext, config: &Config) -> DrResult<(Arn, Step)> {
    ensure_own_kms_key(target, &config.target).await
}

/// [`ensure_target_kms_key`] of one target of many (`[[targets]]`).
pub async fn ensure_own_kms_key(
    target: &AwsContext,
    settings: &aurora_dr_core::settings::TargetSettings,
) -> DrResult<(Arn, Step)> {
    let account = &settings.account_id;
    let region = &settings.region;
    let root = format!("arn:aws:iam::{account}:root");
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AccountAdministersTheKey", "Effect": "Allow", "Principal": {"AWS": root},
             "Action": ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:GetKeyRotationStatus",
                        "kms:EnableKeyRotation", "kms:DisableKeyRotation", "kms:ListKeyRotations",
                        "kms:RotateKeyOnDemand", "kms:EnableKey", "kms:DisableKey", "kms:UpdateKeyDescription",
                        "kms:ListResourceTags", "kms:TagResource", "kms:UntagResource", "kms:CreateAlias",
                        "kms:UpdateAlias", "kms:DeleteAlias", "kms:ListGrants", "kms:RevokeGrant",
                        "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"],
             "Resource": "*"},
            {"Sid": "AccountUsesTheKeyThroughRds", "Effect": "Allow", "Principal": {"AWS": root},
             "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                        "kms:CreateGrant", "kms:ListGrants"],
             "Resource": "*",
             "Condition": {"StringEquals": {
                 "kms:CallerAccount": account.to_string(),
                 "kms:ViaService": format!("rds.{region}.amazonaws.com")}}}
        ]
    });
    let description = "aurora-dr: encrypts the DR cluster and the DR account's own snapshot copies";
    let configured = settings.kms_key_arn.as_ref();
    ensure_key(target, configured, TARGET_KEY_ALIAS, description, policy, "target KMS key").await
}

/// A topic (CreateTopic is idempotent) with an optional subscribe grant for
/// another account.
pub async fn ensure_topic(
    ctx: &AwsContext,
    name: &str,
    subscriber: Option<&AccountId>,
) -> DrResult<(Arn, Step)> {
    ensure_topic_for(ctx, name, subscriber.map(std::slice::from_ref).unwrap_or_default()).await
}

/// A topic (CreateTopic is idempotent) whose policy lets each of
/// `subscribers` (many DR targets: every target account) subscribe; no
/// policy is set without subscribers.
pub async fn ensure_topic_for(
    ctx: &AwsContext,
    name: &str,
    subscribers: &[AccountId],
) -> DrResult<(Arn, Step)> {
    let sns = ctx.sns();
    let out = sns.create_topic().name(name).send().await.map_err(sdk("CreateTopic"))?;
    let arn: Arn = out
        .topic_arn()
        .unwrap_or_default()
        .parse()
        .map_err(|e| DrError::invalid_input(format!("topic ARN: {e}")))?;
    if !subscribers.is_empty() {
        let accounts: Vec<String> = subscribers.iter().map(|a| format!("arn:aws:iam::{a}:root")).collect();
        let principal = if accounts.len() == 1 { json!(accounts[0]) } else { json!(accounts) };
        let owner = arn.account().map(|a| a.to_string()).unwrap_or_default();
        let policy = json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "OwnerPublishes", "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{owner}:root")},
                 "Action": ["sns:Publish", "sns:GetTopicAttributes"], "Resource": arn.as_str()},
                {"Sid": "TargetAccountSubscribes", "Effect": "Allow",
                 "Principal": {"AWS": principal},
                 "Action": ["sns:Subscribe", "sns:ListSubscriptionsByTopic"], "Resource": arn.as_str()}
            ]
        });
        sns.set_topic_attributes()
            .topic_arn(arn.as_str())
            .attribute_name("Policy")
            .attribute_value(policy.to_string())
            .send()
            .await
            .map_err(sdk("SetTopicAttributes"))?;
    }
    Ok((arn.clone(), Step { what: format!("topic {arn}"), created: false }))
}

/// Subscribes the target side's receiver to the source topic, with the target
/// account's credentials (cross-account, cross-region). Subscriptions of
/// earlier drills to loopback receivers are removed first.
pub async fn ensure_subscription(
    target_in_source_region: &AwsContext,
    topic: &Arn,
    endpoint: &str,
) -> DrResult<Step> {
    ensure_filtered_subscription(target_in_source_region, topic, endpoint, None, &[endpoint]).await
}

/// [`ensure_subscription`] of one target of many: its `FilterPolicy` (a
/// message-attribute policy, e.g. on `targetAccountId`) lets through only
/// the messages addressed to it. Loopback receivers of earlier drills are
/// removed first, all but those of `keep` (the receivers of this drill).
pub async fn ensure_filtered_subscription(
    target_in_source_region: &AwsContext,
    topic: &Arn,
    endpoint: &str,
    filter: Option<&serde_json::Value>,
    keep: &[&str],
) -> DrResult<Step> {
    let sns = target_in_source_region.sns();
    let subs = sns
        .list_subscriptions_by_topic()
        .topic_arn(topic.as_str())
        .send()
        .await
        .map_err(sdk("ListSubscriptionsByTopic"))?;
    for sub in subs.subscriptions() {
        let stale = sub.endpoint().is_some_and(|e| {
            e.starts_with("http://127.0.0.1:") && e.ends_with(SNS_PATH) && !keep.contains(&e)
        });
        if stale && let Some(sub_arn) = sub.subscription_arn() {
            sns.unsubscribe().subscription_arn(sub_arn).send().await.map_err(sdk("Unsubscribe"))?;
        }
    }
    let mut subscribe = sns.subscribe().topic_arn(topic.as_str()).protocol("http").endpoint(endpoint);
    if let Some(policy) = filter {
        subscribe = subscribe.attributes("FilterPolicy", policy.to_string());
    }
    subscribe.send().await.map_err(sdk("Subscribe"))?;
    let filtered = filter.map(|f| format!(" (filter {f})")).unwrap_or_default();
    Ok(Step { what: format!("subscription {endpoint} -> {topic}{filtered}"), created: true })
}

/// The demo source cluster: encrypted, one writer, created when missing.
pub async fn seed_source_cluster(source: &AwsContext, config: &Config) -> DrResult<Step> {
    seed_cluster(source, config, config.source.cluster_id.as_str()).await
}

/// Every configured source cluster (many clusters: `source.cluster_ids`,
/// `[[pairs]]`), each as [`seed_source_cluster`] makes it.
pub async fn seed_source_clusters(source: &AwsContext, config: &Config) -> DrResult<Vec<Step>> {
    let mut steps = Vec::new();
    for id in &config.source.cluster_ids {
        steps.push(seed_cluster(source, config, id.as_str()).await?);
    }
    Ok(steps)
}

async fn seed_cluster(source: &AwsContext, config: &Config, id: &str) -> DrResult<Step> {
    let rds = source.rds();
    if aurora_dr_core::rds::find_cluster(&rds, id).await?.is_some() {
        let waited = wait_until_available(&rds, id).await?;
        return Ok(Step { what: format!("source cluster {id}{}", waited_for(waited)), created: false });
    }
    let engine = &config.target.engine;
    // The source cluster's own key, in the source region, as production has.
    let kms = source.kms();
    let key = kms
        .create_key()
        .description("aurora-dr demo: storage key of the demo source cluster")
        .send()
        .await
        .map_err(sdk("CreateKey"))?;
    let key_arn = key.key_metadata().and_then(|m| m.arn()).unwrap_or_default().to_owned();
    rds.create_db_cluster()
        .db_cluster_identifier(id)
        .engine(engine)
        .master_username("dr_admin")
        .master_user_password(throwaway_password())
        .storage_encrypted(true)
        .kms_key_id(&key_arn)
        .database_name("orders")
        .tags(aws_sdk_rds::types::Tag::builder().key("purpose").value("aurora-dr demo").build())
        .send()
        .await
        .map_err(sdk("CreateDBCluster"))?;
    rds.create_db_instance()
        .db_instance_identifier(format!("{id}-1"))
        .db_cluster_identifier(id)
        .engine(engine)
        .db_instance_class(&config.target.instance_class)
        .send()
        .await
        .map_err(sdk("CreateDBInstance"))?;
    // As in production, the pipeline starts from a cluster that serves: RDS
    // refuses CreateDBClusterSnapshot while the cluster is still `creating`.
    let waited = wait_until_available(&rds, id).await?;
    Ok(Step {
        what: format!("source cluster {id} ({engine}, encrypted, 1 instance){}", waited_for(waited)),
        created: true,
    })
}

/// The status of the cluster and of each of its instances. Looked up by
/// filter, not by identifier, so the fault suite's rules on the pipeline's
/// own look-ups (by identifier) never hit the set-up.
async fn statuses(rds: &aws_sdk_rds::Client, id: &str) -> DrResult<Vec<(String, String)>> {
    let filter =
        |name: &str, value: &str| aws_sdk_rds::types::Filter::builder().name(name).values(value).build();
    let clusters = rds
        .describe_db_clusters()
        .filters(filter("db-cluster-id", id))
        .send()
        .await
        .map_err(sdk("DescribeDBClusters"))?;
    let cluster = clusters
        .db_clusters()
        .first()
        .ok_or_else(|| DrError::NotFound(format!("source cluster {id} vanished while starting")))?;
    let mut pending = vec![(format!("cluster {id}"), cluster.status().unwrap_or("unknown").to_owned())];
    let instances = rds
        .describe_db_instances()
        .filters(filter("db-cluster-id", id))
        .send()
        .await
        .map_err(sdk("DescribeDBInstances"))?;
    for i in instances.db_instances() {
        let name = i.db_instance_identifier().unwrap_or_default();
        pending.push((format!("instance {name}"), i.db_instance_status().unwrap_or("unknown").to_owned()));
    }
    Ok(pending)
}

/// How long the seed waited for its cluster, as a progress-line suffix.
fn waited_for(waited: Duration) -> String {
    if waited.is_zero() { String::new() } else { format!(", available after {:.1}s", waited.as_secs_f64()) }
}

/// The longest the drill waits for a seeded cluster to become available.
const SEED_WAIT_BOUND: Duration = Duration::from_secs(3600);

/// Polls (every 50 ms at first, at most every 2 s) until the cluster and
/// each of its instances are `available`; a terminal status, or more than
/// [`SEED_WAIT_BOUND`], is an error naming the resource. Returns the time
/// spent waiting.
pub async fn wait_until_available(rds: &aws_sdk_rds::Client, id: &str) -> DrResult<Duration> {
    use aurora_dr_core::rds::{Progress, classify_status};
    let started = Instant::now();
    let mut interval = Duration::from_millis(50);
    loop {
        let pending = match statuses(rds, id).await {
            Ok(pending) => pending,
            // A throttled or unanswered poll is polled again.
            Err(e) if e.is_retryable() => vec![(format!("cluster {id}"), e.asl_name().to_owned())],
            Err(e) => return Err(e),
        };
        let mut busy = None;
        for (what, status) in &pending {
            match classify_status(status) {
                Progress::Ready => {}
                Progress::Failed => {
                    return Err(DrError::ResourceFailed { resource: what.clone(), status: status.clone() });
                }
                Progress::InProgress => busy = busy.or(Some((what, status))),
            }
        }
        let Some((what, status)) = busy else { return Ok(started.elapsed()) };
        if started.elapsed() > SEED_WAIT_BOUND {
            return Err(DrError::not_ready(
                format!("{what} (waited {}s)", SEED_WAIT_BOUND.as_secs()),
                status,
            ));
        }
        tokio::time::sleep(interval).await;
        interval = (interval * 2).min(Duration::from_secs(2));
    }
}

/// A password nobody needs to know: the demo never connects to the source.
fn throwaway_password() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()),
    );
    format!("Dr{:016x}x", h.finish())
}

/// Name of the secret the drill creates for the SanityCheck step.
pub const SANITY_SECRET: &str = "aurora-dr-sanity";

/// The SanityCheck secret in the target account and region, in the shape
/// RDS writes (`engine`, `username`, `password`): created, or its value
/// replaced when it exists. Returns its ARN.
pub async fn ensure_sanity_secret(
    target: &AwsContext,
    engine: &str,
    login: &crate::config::SanityLogin,
) -> DrResult<(Arn, Step)> {
    let sm = target.secretsmanager();
    let value = json!({"engine": engine, "username": login.username, "password": login.password}).to_string();
    let created = sm
        .create_secret()
        .name(SANITY_SECRET)
        .description("aurora-dr drill: the SanityCheck step's database login")
        .secret_string(&value)
        .send()
        .await;
    let (arn, created) = match created {
        Ok(out) => (out.arn().unwrap_or_default().to_owned(), true),
        Err(e) => {
            let e = DrError::from_sdk("CreateSecret", e);
            if e.aws_code() != Some("ResourceExistsException") {
                return Err(e);
            }
            let out = sm
                .put_secret_value()
                .secret_id(SANITY_SECRET)
                .secret_string(&value)
                .send()
                .await
                .map_err(sdk("PutSecretValue"))?;
            (out.arn().unwrap_or_default().to_owned(), false)
        }
    };
    let arn: Arn = arn.parse().map_err(|e| DrError::invalid_input(format!("secret ARN: {e}")))?;
    Ok((arn.clone(), Step { what: format!("sanity secret {arn}"), created }))
}

/// The target stack's `WaitTokensTable`, as the drill names it.
pub const WAIT_TOKENS_TABLE: &str = "aurora-dr-wait-tokens";
/// The target stack's `RdsEventsRule`, as the drill names it.
pub const RDS_EVENTS_RULE: &str = "aurora-dr-rds-events";
/// The function name CompleteWait has in the drill (the rule's target).
pub const COMPLETE_WAIT_FUNCTION: &str = "aurora-dr-complete-wait";
/// The path the drill's CompleteWait receiver serves.
pub const RDS_EVENTS_PATH: &str = "/aurora-dr/rds-events";

/// The callback waits' task-token table, as the target stack makes it
/// (`WaitTokensTable`: partition key `resource`, sort key `waitFor`,
/// on-demand, time to live on `expiresAt`).
pub async fn ensure_wait_tokens_table(target: &AwsContext) -> DrResult<Step> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, SseSpecification,
        TimeToLiveSpecification,
    };
    let ddb = target.dynamodb();
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| DrError::invalid_input(e.to_string()))
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(|e| DrError::invalid_input(e.to_string()))
    };
    let created = match ddb
        .create_table()
        .table_name(WAIT_TOKENS_TABLE)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("resource")?)
        .attribute_definitions(attribute("waitFor")?)
        .key_schema(key("resource", KeyType::Hash)?)
        .key_schema(key("waitFor", KeyType::Range)?)
        .sse_specification(SseSpecification::builder().enabled(true).build())
        .send()
        .await
    {
        Ok(_) => true,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => false,
        Err(e) => return Err(DrError::from_sdk(&format!("CreateTable {WAIT_TOKENS_TABLE}"), e)),
    };
    if created {
        let ttl = TimeToLiveSpecification::builder()
            .attribute_name("expiresAt")
            .enabled(true)
            .build()
            .map_err(|e| DrError::invalid_input(e.to_string()))?;
        ddb.update_time_to_live()
            .table_name(WAIT_TOKENS_TABLE)
            .time_to_live_specification(ttl)
            .send()
            .await
            .map_err(sdk("UpdateTimeToLive"))?;
    }
    Ok(Step { what: format!("wait-token table {WAIT_TOKENS_TABLE}"), created })
}

/// The rule that routes the account's RDS cluster and instance events to
/// CompleteWait (`function_arn`), as the target stack's `RdsEventsRule`.
/// Returns the rule's ARN.
pub async fn ensure_rds_events_rule(target: &AwsContext, function_arn: &str) -> DrResult<(String, Step)> {
    use aws_sdk_eventbridge::types::{RuleState, Target};
    let events = aws_sdk_eventbridge::Client::new(target.sdk_config());
    let pattern =
        json!({"source": ["aws.rds"], "detail-type": ["RDS DB Cluster Event", "RDS DB Instance Event"]});
    let rule = events
        .put_rule()
        .name(RDS_EVENTS_RULE)
        .event_pattern(pattern.to_string())
        .state(RuleState::Enabled)
        .description("RDS cluster and instance events end aurora-dr's callback waits.")
        .send()
        .await
        .map_err(sdk("PutRule"))?;
    let arn = rule.rule_arn().unwrap_or_default().to_owned();
    let target_of = Target::builder()
        .id("CompleteWait")
        .arn(function_arn)
        .build()
        .map_err(|e| DrError::invalid_input(e.to_string()))?;
    events.put_targets().rule(RDS_EVENTS_RULE).targets(target_of).send().await.map_err(sdk("PutTargets"))?;
    Ok((arn, Step { what: format!("rule {RDS_EVENTS_RULE} -> {function_arn}"), created: true }))
}
