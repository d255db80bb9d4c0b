//! CompleteWait: an RDS event ends the callback waits of its resource.
//!
//! Input: the EventBridge event of an RDS event ("Amazon RDS events in
//! EventBridge", <https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-rds.html>;
//! the `detail` is the RDS [Event](https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_Event.html)):
//! `{"source": "aws.rds", "detail-type": "RDS DB Cluster Event" | "RDS DB
//! Instance Event", "detail": {"SourceIdentifier", "SourceType": "CLUSTER" |
//! "DB_INSTANCE", "EventID"?, "Message"?}}`. Other source types are ignored.
//!
//! For every task token stored under the event's resource
//! ([`crate::wait_tokens`], by FetchStatus arming WaitForTempCluster,
//! WaitForTempInstances or WaitForSwappedCluster), it runs FetchStatus's
//! check of that wait with the stored run payload. An event is only a hint
//! (EventBridge delivers RDS events on a best-effort basis, and the event
//! that ends a wait is not documented for every wait; see README
//! "Detection latency and cost per run"): the check, not the event, decides
//! ([`settle`]):
//! - ready: SendTaskSuccess with the check's output, and the items of that
//!   token (every resource it was stored under) are deleted;
//! - beyond repair (`ResourceFailed`, `NotFound`, `Conflict`, ...):
//!   SendTaskFailure with the error name and message FetchStatus fails with,
//!   so the state's Catch sees what a poll would have made it see; items deleted;
//! - not ready: nothing (a later event, or the state's timeout, re-checks).
//!
//! A token that answers `TaskTimedOut`, `TaskDoesNotExist` or `InvalidToken`
//! (SendTaskSuccess API reference: the task ended or was re-armed with a
//! new token) is stale: its item is deleted, and that is not an error.
//!
//! Output: `{"resource", "succeeded", "failed", "waiting", "stale"}` (counts).
//! Errors: `InvalidInput` for an event that is not an RDS event;
//! `Throttled` / `ServiceUnavailable` when a check or a call could not be
//! made (the asynchronous invocation is retried: "Event retry policy",
//! EventBridge user guide; re-running is harmless, settled items are gone).
//!
//! Idempotency: a repeated event finds settled tokens deleted, or stale.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::context::StepContext;
use crate::error::{DrError, DrResult};
use crate::payload::RunState;
use crate::resolve::EndpointResolver;
use crate::settings::TargetSettings;
use crate::steps::fetch_status::{self, FetchStatusInput, ResourceStatus, SideSettingsRef, WaitFor};
use crate::wait_tokens::{self, DynamoWaitTokens, WaitTokens};

const STEP: &str = "complete_wait";

/// `error` of SendTaskFailure: at most 256 characters (API reference).
const MAX_ERROR_CHARS: usize = 256;
/// `cause` of SendTaskFailure: at most 32,768 characters (API reference).
const MAX_CAUSE_CHARS: usize = 32_768;

/// How a token's check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Settled {
    /// Ready: SendTaskSuccess was sent.
    Succeeded,
    /// Beyond repair: SendTaskFailure was sent.
    Failed,
    /// Not ready yet: the token stays.
    Waiting,
    /// The task had already ended (or was re-armed): the items were deleted.
    Stale,
}

/// The part of an RDS event CompleteWait reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RdsEvent {
    pub source: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub detail: RdsEventDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RdsEventDetail {
    #[serde(rename = "SourceIdentifier")]
    pub source_identifier: String,
    #[serde(rename = "SourceType")]
    pub source_type: String,
    #[serde(rename = "SourceArn", default)]
    pub source_arn: Option<String>,
    #[serde(rename = "EventID", default)]
    pub event_id: Option<String>,
    #[serde(rename = "Message", default)]
    pub message: Option<String>,
}

impl RdsEvent {
    /// The partition key of the event's resource; `None` for a source type
    /// no wait watches.
    pub fn resource_key(&self) -> Option<String> {
        match self.detail.source_type.as_str() {
            "CLUSTER" => Some(wait_tokens::cluster_key(&self.identifier(":cluster:"))),
            "DB_INSTANCE" => Some(wait_tokens::instance_key(&self.identifier(":db:"))),
            _ => None,
        }
    }

    /// The cluster or instance identifier: from `SourceArn`
    /// (`arn:<partition>:rds:<region>:<account>:cluster:<id>` or `...:db:<id>`)
    /// when it has one, else `SourceIdentifier`. The sources disagree on
    /// `SourceIdentifier`: the Aurora user guide's EventBridge examples show
    /// it as `rds:<identifier>`, DescribeEvents' `Event` as the identifier
    /// itself. An RDS identifier has no colon, so a leading `rds:` is never
    /// part of one and is dropped.
    fn identifier(&self, arn_kind: &str) -> String {
        let from_arn = self.detail.source_arn.as_deref().and_then(|arn| {
            let (_, id) = arn.split_once(arn_kind)?;
            (!id.is_empty() && !id.contains(':')).then(|| id.to_owned())
        });
        from_arn.unwrap_or_else(|| {
            let id = &self.detail.source_identifier;
            id.strip_prefix("rds:").unwrap_or(id).to_owned()
        })
    }
}

/// What one event did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Completed {
    pub resource: Option<String>,
    pub succeeded: u32,
    pub failed: u32,
    pub waiting: u32,
    pub stale: u32,
}

/// Parses the event, naming what is wrong.
pub fn parse_event(input: Value) -> DrResult<RdsEvent> {
    let event: RdsEvent = serde_json::from_value(input).map_err(|e| {
        DrError::invalid_input(format!(
            "CompleteWait takes an RDS event from EventBridge ({{\"source\": \"aws.rds\", \"detail-type\", \
             \"detail\": {{\"SourceIdentifier\", \"SourceType\"}}}}): {e}"
        ))
    })?;
    if event.source != "aws.rds" {
        return Err(DrError::invalid_input(format!(
            "CompleteWait takes RDS events (source aws.rds), not {}",
            event.source
        )));
    }
    Ok(event)
}

/// Whether an error means the check could not be made now (retry the
/// invocation), rather than that the wait failed.
fn transient(e: &DrError) -> bool {
    matches!(e, DrError::Throttled(_) | DrError::ServiceUnavailable(_))
}

/// The answers of SendTaskSuccess/SendTaskFailure for a token whose task
/// no longer waits (Step Functions API reference, both operations' Errors).
fn is_stale(code: Option<&str>) -> bool {
    matches!(code, Some("TaskTimedOut" | "TaskDoesNotExist" | "InvalidToken"))
}

fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Settles one token by its check's result (see the module doc): sends
/// SendTaskSuccess or SendTaskFailure and deletes the token's items under
/// `resources`, or leaves them while not ready. A transient error of the
/// check is returned as is.
pub async fn settle(
    sfn: &aws_sdk_sfn::Client,
    store: &dyn WaitTokens,
    resources: &[String],
    wait_for: &str,
    token: &str,
    checked: DrResult<ResourceStatus>,
) -> DrResult<Settled> {
    use aws_sdk_sfn::error::ProvideErrorMetadata;
    let sent = match checked {
        Err(DrError::NotReady { .. }) => return Ok(Settled::Waiting),
        Err(e) if transient(&e) => return Err(e),
        Ok(status) => sfn
            .send_task_success()
            .task_token(token)
            .output(serde_json::to_string(&status)?)
            .send()
            .await
            .map(|_| Settled::Succeeded)
            .or_else(|e| {
                if is_stale(e.code()) {
                    Ok(Settled::Stale)
                } else {
                    Err(DrError::from_sdk("SendTaskSuccess", e))
                }
            }),
        Err(failure) => sfn
            .send_task_failure()
            .task_token(token)
            .error(clip(failure.asl_name(), MAX_ERROR_CHARS))
            .cause(clip(&failure.to_string(), MAX_CAUSE_CHARS))
            .send()
            .await
            .map(|_| Settled::Failed)
            .or_else(|e| {
                if is_stale(e.code()) {
                    Ok(Settled::Stale)
                } else {
                    Err(DrError::from_sdk("SendTaskFailure", e))
                }
            }),
    }?;
    for resource in resources {
        store.delete(resource, wait_for, token).await?;
    }
    Ok(sent)
}

/// Settles every token stored under the event's resource.
pub async fn run(
    rds: &aws_sdk_rds::Client,
    sfn: &aws_sdk_sfn::Client,
    store: &dyn WaitTokens,
    resolver: &dyn EndpointResolver,
    settings: &TargetSettings,
    event: &RdsEvent,
) -> DrResult<Completed> {
    let Some(resource) = event.resource_key() else {
        tracing::info!(step = STEP, source_type = %event.detail.source_type, "not a watched source type");
        return Ok(Completed::default());
    };
    let mut done = Completed { resource: Some(resource.clone()), ..Completed::default() };
    let mut retry = None;
    for item in store.query(&resource).await? {
        let resources =
            if item.resources.is_empty() { vec![item.resource.clone()] } else { item.resources.clone() };
        let parsed = serde_json::from_str::<Value>(&item.run)
            .map_err(DrError::from)
            .and_then(RunState::from_value)
            .and_then(|run| {
                let wait_for: WaitFor = serde_json::from_value(Value::String(item.wait_for.clone()))?;
                Ok((run, wait_for))
            });
        let checked = match parsed {
            Ok((run, wait_for)) => {
                let source = run.source_cluster_id.as_ref().map(|c| c.as_str());
                match settings.for_run(source, run.is_restore_test()) {
                    Ok(pair) => {
                        let input = FetchStatusInput { wait_for, run, predict: None, task_token: None };
                        fetch_status::run(rds, resolver, SideSettingsRef::Target(&pair), input).await
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(DrError::invalid_input(format!("stored run of {}: {e}", item.resource))),
        };
        match settle(sfn, store, &resources, &item.wait_for, &item.token, checked).await {
            Ok(outcome) => {
                tracing::info!(step = STEP, resource = %resource, wait_for = %item.wait_for,
                    event_id = ?event.detail.event_id, outcome = ?outcome, "settled");
                match outcome {
                    Settled::Succeeded => done.succeeded += 1,
                    Settled::Failed => done.failed += 1,
                    Settled::Waiting => done.waiting += 1,
                    Settled::Stale => done.stale += 1,
                }
            }
            Err(e) => {
                tracing::warn!(step = STEP, resource = %resource, wait_for = %item.wait_for,
                    error_type = e.asl_name(), error = %e, "not settled");
                retry.get_or_insert(e);
            }
        }
    }
    match retry {
        Some(e) => Err(e),
        None => Ok(done),
    }
}

/// The untyped entry (the event rule's target).
pub async fn handle(ctx: Arc<StepContext>, input: Value) -> DrResult<Value> {
    crate::steps::input::expect(&input, crate::steps::InputKind::RdsEvent, "CompleteWait")?;
    let event = parse_event(input)?;
    let settings = ctx.target()?;
    let store = DynamoWaitTokens::new(ctx.aws.dynamodb(), fetch_status::table_of(settings)?);
    let done = run(&ctx.aws.rds(), &ctx.aws.sfn(), &store, ctx.resolver.as_ref(), settings, &event).await?;
    Ok(serde_json::to_value(done)?)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use aws_sdk_rds::Client as Rds;
    use aws_sdk_rds::operation::describe_db_clusters::{DescribeDBClustersError, DescribeDbClustersOutput};
    use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
    use aws_sdk_rds::types::DbCluster;
    use aws_sdk_sfn::Client as Sfn;
    use aws_sdk_sfn::operation::send_task_failure::SendTaskFailureOutput;
    use aws_sdk_sfn::operation::send_task_success::{SendTaskSuccessError, SendTaskSuccessOutput};
    use aws_smithy_mocks::{Rule, mock};
    use futures::future::BoxFuture;
    use serde_json::json;

    use super::*;
    use crate::resolve::SystemDns;
    use crate::steps::fetch_status::{Armed, arm};
    use crate::steps::target_support as ts;
    use crate::steps::test_support as base;
    use crate::wait_tokens::{MemoryWaitTokens, WaitToken};

    const TOKEN: &str = "AAAAtoken1";
    const NOW: i64 = 1_800_000_000;

    /// The memory store, journaling each put into a shared log.
    #[derive(Default)]
    struct Journaled {
        store: MemoryWaitTokens,
        log: Arc<Mutex<Vec<String>>>,
    }

    impl WaitTokens for Journaled {
        fn put<'a>(&'a self, item: &'a WaitToken) -> BoxFuture<'a, DrResult<()>> {
            self.log.lock().expect("log").push(format!("put {}", item.resource));
            self.store.put(item)
        }
        fn query<'a>(&'a self, resource: &'a str) -> BoxFuture<'a, DrResult<Vec<WaitToken>>> {
            self.store.query(resource)
        }
        fn delete<'a>(&'a self, r: &'a str, w: &'a str, t: &'a str) -> BoxFuture<'a, DrResult<()>> {
            self.store.delete(r, w, t)
        }
    }

    fn run_state() -> RunState {
        let mut run = ts::target_run();
        run.restored_cluster_id = Some(ts::T.parse().expect("id"));
        run.restored_instance_ids =
            vec!["orders-dr-next-1".parse().expect("id"), "orders-dr-next-1-2".parse().expect("id")];
        run
    }

    fn input(kind: WaitFor) -> FetchStatusInput {
        FetchStatusInput { wait_for: kind, run: run_state(), predict: None, task_token: Some(TOKEN.into()) }
    }

    fn temp_cluster(status: &'static str, log: Arc<Mutex<Vec<String>>>) -> Rule {
        mock!(Rds::describe_db_clusters).then_output(move || {
            log.lock().expect("log").push("describe".into());
            DescribeDbClustersOutput::builder()
                .db_clusters(DbCluster::builder().db_cluster_identifier(ts::T).status(status).build())
                .build()
        })
    }

    fn succeeded(token: &'static str) -> Rule {
        mock!(Sfn::send_task_success)
            .match_requests(move |r| r.task_token() == Some(token))
            .then_output(|| SendTaskSuccessOutput::builder().build())
    }

    fn failed() -> Rule {
        mock!(Sfn::send_task_failure).then_output(|| SendTaskFailureOutput::builder().build())
    }

    fn event(kind: &str, id: &str) -> RdsEvent {
        parse_event(json!({
            "version": "0", "source": "aws.rds", "account": "222222222222", "region": "us-west-1",
            "detail-type": if kind == "CLUSTER" { "RDS DB Cluster Event" } else { "RDS DB Instance Event" },
            "detail": {"SourceIdentifier": id, "SourceType": kind, "EventID": "RDS-EVENT-0170",
                "Message": "DB cluster created"}
        }))
        .expect("event")
    }

    #[tokio::test]
    async fn arming_stores_the_token_then_completes_a_wait_that_is_already_over() {
        let store = Journaled::default();
        let cluster = temp_cluster("available", store.log.clone());
        let success = succeeded(TOKEN);
        let armed = arm(
            &base::rds(&[&cluster]),
            &ts::sfn(&[&success]),
            &store,
            &SystemDns,
            &ts::settings(),
            input(WaitFor::TempCluster),
            NOW,
        )
        .await
        .expect("armed");
        assert_eq!(
            armed,
            Armed { watching: vec!["cluster:orders-dr-next".into()], outcome: Settled::Succeeded }
        );
        assert_eq!(
            *store.log.lock().expect("log"),
            ["put cluster:orders-dr-next", "describe"],
            "stored, then checked"
        );
        assert_eq!(success.num_calls(), 1);
        assert!(store.store.items().is_empty(), "a completed wait leaves no item");
    }

    #[tokio::test]
    async fn a_wait_not_over_keeps_its_items_until_an_event_completes_it() {
        let store = MemoryWaitTokens::default();
        let log = Arc::new(Mutex::new(Vec::new()));
        let creating = temp_cluster("creating", log.clone());
        let success = succeeded(TOKEN);
        let armed = arm(
            &base::rds(&[&creating]),
            &ts::sfn(&[&success]),
            &store,
            &SystemDns,
            &ts::settings(),
            input(WaitFor::TempCluster),
            NOW,
        )
        .await
        .expect("armed");
        assert_eq!(armed.outcome, Settled::Waiting);
        assert_eq!(success.num_calls(), 0);
        let items = store.items();
        assert_eq!(items.len(), 1);
        assert_eq!((items[0].wait_for.as_str(), items[0].token.as_str()), ("tempCluster", TOKEN));
        assert_eq!(items[0].expires_at, NOW + crate::wait_tokens::KEEP_SECONDS);

        // An event of another resource finds nothing; the cluster's own,
        // while RDS still reports it creating, settles nothing.
        let rds = base::rds(&[&creating]);
        let sfn = ts::sfn(&[&success]);
        let settings = ts::settings();
        let other =
            run(&rds, &sfn, &store, &SystemDns, &settings, &event("CLUSTER", "orders")).await.expect("run");
        assert_eq!((other.succeeded, other.waiting), (0, 0));
        let early = run(&rds, &sfn, &store, &SystemDns, &settings, &event("CLUSTER", "Orders-DR-Next"))
            .await
            .expect("run");
        assert_eq!(early.waiting, 1);
        assert_eq!(store.items().len(), 1);

        let available = temp_cluster("available", log);
        let rds = base::rds(&[&available]);
        let done =
            run(&rds, &sfn, &store, &SystemDns, &settings, &event("CLUSTER", ts::T)).await.expect("run");
        assert_eq!((done.succeeded, done.resource.as_deref()), (1, Some("cluster:orders-dr-next")));
        assert_eq!(success.num_calls(), 1);
        assert!(store.items().is_empty());
    }

    #[tokio::test]
    async fn one_instance_event_completes_the_instances_wait_and_deletes_every_item_of_its_token() {
        let store = MemoryWaitTokens::default();
        let both = |a: &'static str, b: &'static str| {
            mock!(Rds::describe_db_instances).then_compute_output(move |req| {
                let id = req.db_instance_identifier().unwrap_or_default().to_owned();
                let status = if id.ends_with("-2") { b } else { a };
                DescribeDbInstancesOutput::builder().db_instances(base::instance(&id, ts::T, status)).build()
            })
        };
        let creating = both("available", "creating");
        let success = succeeded(TOKEN);
        let settings = ts::settings();
        arm(
            &base::rds(&[&creating]),
            &ts::sfn(&[&success]),
            &store,
            &SystemDns,
            &settings,
            input(WaitFor::TempInstances),
            NOW,
        )
        .await
        .expect("armed");
        assert_eq!(store.items().len(), 2, "one item per instance");
        let ready = both("available", "available");
        let done = run(
            &base::rds(&[&ready]),
            &ts::sfn(&[&success]),
            &store,
            &SystemDns,
            &settings,
            &event("DB_INSTANCE", "orders-dr-next-1-2"),
        )
        .await
        .expect("run");
        assert_eq!(done.succeeded, 1);
        assert!(store.items().is_empty(), "the other instance's item went with it: {:?}", store.items());
    }

    #[tokio::test]
    async fn a_failed_cluster_is_sent_as_the_error_a_poll_fails_with() {
        let store = MemoryWaitTokens::default();
        let log = Arc::new(Mutex::new(Vec::new()));
        let broken = temp_cluster("incompatible-restore", log);
        let failure = failed();
        let success = succeeded(TOKEN);
        let armed = arm(
            &base::rds(&[&broken]),
            &ts::sfn(&[&success, &failure]),
            &store,
            &SystemDns,
            &ts::settings(),
            input(WaitFor::TempCluster),
            NOW,
        )
        .await
        .expect("armed");
        assert_eq!(armed.outcome, Settled::Failed);
        assert_eq!((failure.num_calls(), success.num_calls()), (1, 0));
        assert!(store.items().is_empty());
    }

    #[tokio::test]
    async fn the_failure_carries_the_error_name_and_message() {
        let sent = Arc::new(Mutex::new(None));
        let seen = sent.clone();
        let failure = mock!(Sfn::send_task_failure)
            .match_requests(move |r| {
                *seen.lock().expect("seen") =
                    Some((r.error().map(str::to_owned), r.cause().map(str::to_owned)));
                true
            })
            .then_output(|| SendTaskFailureOutput::builder().build());
        let store = MemoryWaitTokens::default();
        let got = settle(
            &ts::sfn(&[&failure]),
            &store,
            &["cluster:x".into()],
            "tempCluster",
            TOKEN,
            Err(DrError::ResourceFailed { resource: "temporary cluster x".into(), status: "failed".into() }),
        )
        .await
        .expect("settled");
        assert_eq!(got, Settled::Failed);
        let (error, cause) = sent.lock().expect("sent").clone().expect("sent once");
        assert_eq!(error.as_deref(), Some("ResourceFailed"));
        assert_eq!(cause.as_deref(), Some("temporary cluster x ended in status failed"));
    }

    #[tokio::test]
    async fn a_stale_token_is_deleted_and_is_not_an_error() {
        for code in ["TaskTimedOut", "TaskDoesNotExist", "InvalidToken"] {
            let store = MemoryWaitTokens::default();
            let item = WaitToken {
                resource: "cluster:orders-dr-next".into(),
                wait_for: "tempCluster".into(),
                token: "AAAAold".into(),
                run: serde_json::to_string(&run_state().to_value()).expect("json"),
                resources: vec!["cluster:orders-dr-next".into()],
                expires_at: NOW,
            };
            store.put(&item).await.expect("put");
            let timed_out = mock!(Sfn::send_task_success)
                .then_error(move || SendTaskSuccessError::generic(base::meta(code)));
            let available = temp_cluster("available", Arc::default());
            let done = run(
                &base::rds(&[&available]),
                &ts::sfn(&[&timed_out]),
                &store,
                &SystemDns,
                &ts::settings(),
                &event("CLUSTER", ts::T),
            )
            .await
            .expect(code);
            assert_eq!(done.stale, 1, "{code}");
            assert!(store.items().is_empty(), "{code}");
        }
    }

    #[tokio::test]
    async fn a_throttled_check_is_an_error_to_retry_and_keeps_the_item() {
        let store = MemoryWaitTokens::default();
        let creating = temp_cluster("creating", Arc::default());
        let success = succeeded(TOKEN);
        arm(
            &base::rds(&[&creating]),
            &ts::sfn(&[&success]),
            &store,
            &SystemDns,
            &ts::settings(),
            input(WaitFor::TempCluster),
            NOW,
        )
        .await
        .expect("armed");
        let throttled = mock!(Rds::describe_db_clusters)
            .then_error(|| DescribeDBClustersError::generic(base::meta("Throttling")));
        let err = run(
            &base::rds(&[&throttled]),
            &ts::sfn(&[&success]),
            &store,
            &SystemDns,
            &ts::settings(),
            &event("CLUSTER", ts::T),
        )
        .await
        .expect_err("throttled");
        assert_eq!(err.asl_name(), "Throttled");
        assert_eq!(store.items().len(), 1);
        assert_eq!(success.num_calls(), 0);
    }

    #[tokio::test]
    async fn the_swapped_cluster_is_watched_under_both_names() {
        let keys =
            fetch_status::watched(WaitFor::ExistingCluster, &ts::settings(), &run_state()).expect("keys");
        assert_eq!(
            keys,
            [
                "cluster:orders-dr",
                "cluster:orders-dr-next",
                "instance:orders-dr-1",
                "instance:orders-dr-next-1",
                "instance:orders-dr-next-1-2"
            ]
        );
        let err =
            fetch_status::watched(WaitFor::SharedSnapshot, &ts::settings(), &run_state()).expect_err("kind");
        assert_eq!(err.asl_name(), "InvalidInput");
    }

    #[test]
    fn events_of_other_sources_are_refused_and_other_source_types_ignored() {
        let err = parse_event(json!({"source": "aws.ec2", "detail-type": "x", "detail":
            {"SourceIdentifier": "i", "SourceType": "CLUSTER"}}))
        .expect_err("not rds");
        assert_eq!(err.asl_name(), "InvalidInput");
        assert_eq!(event("DB_INSTANCE", "A-1").resource_key().as_deref(), Some("instance:a-1"));
        let mut snapshot = event("CLUSTER", "x");
        snapshot.detail.source_type = "CLUSTER_SNAPSHOT".into();
        assert_eq!(snapshot.resource_key(), None);
    }

    #[test]
    fn the_resource_comes_from_the_source_arn_or_the_identifier_without_its_rds_prefix() {
        let of = |detail: serde_json::Value| {
            parse_event(json!({"source": "aws.rds", "detail-type": "RDS DB Cluster Event", "detail": detail}))
                .expect("event")
                .resource_key()
        };
        // The shape of the user guide's examples: `rds:` prefix and the ARN.
        assert_eq!(
            of(json!({"SourceIdentifier": "rds:orders-dr-next", "SourceType": "CLUSTER",
                "SourceArn": "arn:aws:rds:us-west-1:222222222222:cluster:orders-dr-next"})),
            Some("cluster:orders-dr-next".into())
        );
        assert_eq!(
            of(json!({"SourceIdentifier": "rds:orders-dr-next-1", "SourceType": "DB_INSTANCE"})),
            Some("instance:orders-dr-next-1".into())
        );
        assert_eq!(
            of(json!({"SourceIdentifier": "ignored", "SourceType": "DB_INSTANCE",
                "SourceArn": "arn:aws-us-gov:rds:us-gov-west-1:222222222222:db:orders-dr-next-1"})),
            Some("instance:orders-dr-next-1".into())
        );
        // DescribeEvents' shape: the identifier itself.
        assert_eq!(
            of(json!({"SourceIdentifier": "orders-dr", "SourceType": "CLUSTER"})),
            Some("cluster:orders-dr".into())
        );
    }
}
