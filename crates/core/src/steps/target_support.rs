//! Test fixtures shared by the target-side step tests: mocked RDS and Step
//! Functions clients, RDS resources in the shapes the SDK returns, AWS error
//! responses as the services send them, a [`Journal`] that records mutating
//! calls in order, and an offline [`StepContext`] for `handle` tests.

use std::sync::{Arc, Mutex};

use aws_sdk_rds::Client as Rds;
use aws_sdk_rds::operation::create_db_instance::CreateDbInstanceOutput;
use aws_sdk_rds::operation::delete_db_cluster::DeleteDbClusterOutput;
use aws_sdk_rds::operation::delete_db_instance::DeleteDbInstanceOutput;
use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_sdk_rds::operation::modify_db_cluster::ModifyDbClusterOutput;
use aws_sdk_rds::operation::modify_db_instance::ModifyDbInstanceOutput;
use aws_sdk_rds::types::{DbCluster, DbClusterMember, DbInstance, Tag};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::RetryConfig;

use crate::clients::AwsContext;
use crate::context::{SideSettings, StepContext};
use crate::payload::{DrMessage, RunState};
use crate::rds::{MANAGED_BY, TAG_MANAGED_BY, TAG_RUN_ID};
use crate::settings::TargetSettings;

/// An RDS client answering from `rules` (first matching rule wins), with SDK
/// retries off so each mocked error reaches the step exactly once. A call no
/// rule matches panics, which fails the test: an unexpected mutating call
/// cannot go unnoticed.
pub(crate) fn rds(rules: &[&Rule]) -> Rds {
    mock_client!(aws_sdk_rds, RuleMode::MatchAny, rules, |c| c.retry_config(RetryConfig::disabled()))
}

/// A Step Functions client answering from `rules`, SDK retries off.
pub(crate) fn sfn(rules: &[&Rule]) -> aws_sdk_sfn::Client {
    mock_client!(aws_sdk_sfn, RuleMode::MatchAny, rules, |c| c.retry_config(RetryConfig::disabled()))
}

/// The default target settings (`orders-dr`, temp `orders-dr-next`, one instance).
pub(crate) fn settings() -> TargetSettings {
    crate::settings::tests::target_settings()
}

/// The target machine's first payload, as InvokeStepFunction builds it.
pub(crate) fn target_run() -> RunState {
    DrMessage::from_run(&crate::payload::tests::finished_source_run()).expect("message").into_run()
}

pub(crate) fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// The tags of a resource created by `run`.
pub(crate) fn ours(run: &RunState) -> Vec<Tag> {
    crate::rds::run_tags(run)
}

/// aurora-dr's tags of another (earlier) run.
pub(crate) fn earlier_run() -> Vec<Tag> {
    vec![tag(TAG_MANAGED_BY, MANAGED_BY), tag(TAG_RUN_ID, "run-0")]
}

/// A cluster; the first member is the writer.
pub(crate) fn cluster(id: &str, status: &str, tags: Vec<Tag>, members: &[&str]) -> DbCluster {
    let members = members
        .iter()
        .enumerate()
        .map(|(i, m)| DbClusterMember::builder().db_instance_identifier(*m).is_cluster_writer(i == 0).build())
        .collect();
    DbCluster::builder()
        .db_cluster_identifier(id)
        .status(status)
        .engine("aurora-postgresql")
        .set_tag_list(Some(tags))
        .set_db_cluster_members(Some(members))
        .build()
}

/// `c` with deletion protection on or off.
pub(crate) fn with_deletion_protection(c: DbCluster, on: bool) -> DbCluster {
    DbCluster::builder()
        .set_db_cluster_identifier(c.db_cluster_identifier().map(str::to_owned))
        .set_status(c.status().map(str::to_owned))
        .set_engine(c.engine().map(str::to_owned))
        .set_tag_list(Some(c.tag_list().to_vec()))
        .set_db_cluster_members(Some(c.db_cluster_members().to_vec()))
        .deletion_protection(on)
        .build()
}

pub(crate) fn instance(id: &str, cluster: &str, status: &str, tags: Vec<Tag>) -> DbInstance {
    DbInstance::builder()
        .db_instance_identifier(id)
        .db_cluster_identifier(cluster)
        .db_instance_status(status)
        .set_tag_list(Some(tags))
        .build()
}

/// An RDS error response as RDS sends it (awsQuery XML), so the SDK's own
/// parser produces the error code the step classifies.
pub(crate) fn rds_fault(status: u16, code: &str) -> HttpResponse {
    let body = format!(
        "<ErrorResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\"><Error><Type>Sender</Type>\
         <Code>{code}</Code><Message>mocked {code}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
    );
    HttpResponse::new(StatusCode::try_from(status).expect("status"), SdkBody::from(body))
}

/// A canned error response for a mock rule.
pub(crate) type Fault = fn() -> HttpResponse;

/// RDS throttling, as RDS answers a burst of calls.
pub(crate) fn throttled() -> HttpResponse {
    rds_fault(400, "Throttling")
}

/// A Step Functions error response (awsJson 1.0).
pub(crate) fn sfn_fault(status: u16, code: &str) -> HttpResponse {
    let body = format!("{{\"__type\":\"com.amazonaws.states#{code}\",\"message\":\"mocked {code}\"}}");
    HttpResponse::new(StatusCode::try_from(status).expect("status"), SdkBody::from(body))
}

/// The mutating calls a test's mocks saw, in order ("rename cluster a -> b").
#[derive(Debug, Clone, Default)]
pub(crate) struct Journal(Arc<Mutex<Vec<String>>>);

impl Journal {
    pub(crate) fn push(&self, entry: String) {
        self.0.lock().expect("journal").push(entry);
    }

    pub(crate) fn entries(&self) -> Vec<String> {
        self.0.lock().expect("journal").clone()
    }
}

fn same(a: Option<&str>, b: &str) -> bool {
    a.is_some_and(|a| a.eq_ignore_ascii_case(b))
}

/// DescribeDBClusters for `id`: the cluster, or DBClusterNotFoundFault.
pub(crate) fn describe_cluster(id: &str, found: Option<DbCluster>) -> Rule {
    let id = id.to_owned();
    let rule = mock!(Rds::describe_db_clusters).match_requests(move |r| same(r.db_cluster_identifier(), &id));
    match found {
        Some(c) => {
            rule.then_output(move || DescribeDbClustersOutput::builder().db_clusters(c.clone()).build())
        }
        None => rule.then_http_response(|| rds_fault(404, "DBClusterNotFoundFault")),
    }
}

/// DescribeDBClusters for `id` answering `answers` in turn (the last repeats).
pub(crate) fn describe_cluster_seq(id: &str, answers: Vec<Option<DbCluster>>) -> Rule {
    let id = id.to_owned();
    let mut seq = mock!(Rds::describe_db_clusters)
        .match_requests(move |r| same(r.db_cluster_identifier(), &id))
        .sequence();
    for answer in answers {
        seq = match answer {
            Some(c) => seq.output(move || DescribeDbClustersOutput::builder().db_clusters(c.clone()).build()),
            None => seq.http_response(|| rds_fault(404, "DBClusterNotFoundFault")),
        };
    }
    seq.times(100).build()
}

/// DescribeDBInstances for `id`: the instance, or DBInstanceNotFound.
pub(crate) fn describe_instance(id: &str, found: Option<DbInstance>) -> Rule {
    let id = id.to_owned();
    let rule =
        mock!(Rds::describe_db_instances).match_requests(move |r| same(r.db_instance_identifier(), &id));
    match found {
        Some(i) => {
            rule.then_output(move || DescribeDbInstancesOutput::builder().db_instances(i.clone()).build())
        }
        None => rule.then_http_response(|| rds_fault(404, "DBInstanceNotFound")),
    }
}

/// DescribeDBInstances for `id` answering `answers` in turn (the last repeats).
pub(crate) fn describe_instance_seq(id: &str, answers: Vec<Option<DbInstance>>) -> Rule {
    let id = id.to_owned();
    let mut seq = mock!(Rds::describe_db_instances)
        .match_requests(move |r| same(r.db_instance_identifier(), &id))
        .sequence();
    for answer in answers {
        seq = match answer {
            Some(i) => {
                seq.output(move || DescribeDbInstancesOutput::builder().db_instances(i.clone()).build())
            }
            None => seq.http_response(|| rds_fault(404, "DBInstanceNotFound")),
        };
    }
    seq.times(100).build()
}

/// ModifyDBCluster renaming `from` to `to` (ApplyImmediately required);
/// `fault` makes it fail with that response. Every attempt is journaled.
pub(crate) fn rename_cluster(journal: &Journal, from: &str, to: &str, fault: Option<Fault>) -> Rule {
    let (j, from, to) = (journal.clone(), from.to_owned(), to.to_owned());
    let entry = format!("rename cluster {from} -> {to}");
    let renamed = to.clone();
    let rule = mock!(Rds::modify_db_cluster).match_requests(move |r| {
        let hit = same(r.db_cluster_identifier(), &from)
            && same(r.new_db_cluster_identifier(), &to)
            && r.apply_immediately() == Some(true);
        if hit {
            j.push(entry.clone());
        }
        hit
    });
    match fault {
        Some(f) => rule.then_http_response(f),
        None => rule.then_output(move || {
            ModifyDbClusterOutput::builder()
                .db_cluster(cluster(&renamed, "renaming", Vec::new(), &[]))
                .build()
        }),
    }
}

/// ModifyDBInstance renaming `from` to `to` (ApplyImmediately required).
pub(crate) fn rename_instance(journal: &Journal, from: &str, to: &str, fault: Option<Fault>) -> Rule {
    let (j, from, to) = (journal.clone(), from.to_owned(), to.to_owned());
    let entry = format!("rename instance {from} -> {to}");
    let renamed = to.clone();
    let rule = mock!(Rds::modify_db_instance).match_requests(move |r| {
        let hit = same(r.db_instance_identifier(), &from)
            && same(r.new_db_instance_identifier(), &to)
            && r.apply_immediately() == Some(true);
        if hit {
            j.push(entry.clone());
        }
        hit
    });
    match fault {
        Some(f) => rule.then_http_response(f),
        None => rule.then_output(move || {
            ModifyDbInstanceOutput::builder()
                .db_instance(instance(&renamed, "", "renaming", Vec::new()))
                .build()
        }),
    }
}

/// ModifyDBCluster turning deletion protection off on `id`.
pub(crate) fn unprotect_cluster(journal: &Journal, id: &str) -> Rule {
    let (j, id) = (journal.clone(), id.to_owned());
    let entry = format!("unprotect cluster {id}");
    mock!(Rds::modify_db_cluster)
        .match_requests(move |r| {
            let hit = same(r.db_cluster_identifier(), &id)
                && r.deletion_protection() == Some(false)
                && r.new_db_cluster_identifier().is_none();
            if hit {
                j.push(entry.clone());
            }
            hit
        })
        .then_output(|| ModifyDbClusterOutput::builder().build())
}

/// DeleteDBInstance of `id`.
pub(crate) fn delete_instance(journal: &Journal, id: &str, fault: Option<Fault>) -> Rule {
    let (j, id) = (journal.clone(), id.to_owned());
    let entry = format!("delete instance {id}");
    let rule = mock!(Rds::delete_db_instance).match_requests(move |r| {
        let hit = same(r.db_instance_identifier(), &id);
        if hit {
            j.push(entry.clone());
        }
        hit
    });
    match fault {
        Some(f) => rule.then_http_response(f),
        None => rule.then_output(|| DeleteDbInstanceOutput::builder().build()),
    }
}

/// DeleteDBCluster of `id`, journaled with how the final snapshot was chosen
/// ("delete cluster x (final x-final)" or "delete cluster x (skip final)").
pub(crate) fn delete_cluster(journal: &Journal, id: &str, fault: Option<Fault>) -> Rule {
    let (j, id) = (journal.clone(), id.to_owned());
    let rule = mock!(Rds::delete_db_cluster).match_requests(move |r| {
        let hit = same(r.db_cluster_identifier(), &id);
        if hit {
            let how = match (r.skip_final_snapshot(), r.final_db_snapshot_identifier()) {
                (Some(true), None) => "skip final".to_owned(),
                (Some(false) | None, Some(f)) => format!("final {f}"),
                other => format!("inconsistent {other:?}"),
            };
            j.push(format!("delete cluster {id} ({how})"));
        }
        hit
    });
    match fault {
        Some(f) => rule.then_http_response(f),
        None => rule.then_output(|| DeleteDbClusterOutput::builder().build()),
    }
}

/// CreateDBInstance of `id`, journaled.
pub(crate) fn create_instance(journal: &Journal, id: &str, fault: Option<Fault>) -> Rule {
    let (j, id) = (journal.clone(), id.to_owned());
    let entry = format!("create instance {id}");
    let created = id.clone();
    let rule = mock!(Rds::create_db_instance).match_requests(move |r| {
        let hit = same(r.db_instance_identifier(), &id);
        if hit {
            j.push(entry.clone());
        }
        hit
    });
    match fault {
        Some(f) => rule.then_http_response(f),
        None => rule.then_output(move || {
            CreateDbInstanceOutput::builder()
                .db_instance(instance(&created, "", "creating", Vec::new()))
                .build()
        }),
    }
}

/// One request a `handle` test's context sent.
#[derive(Debug, Clone)]
pub(crate) struct Sent {
    pub(crate) uri: String,
    pub(crate) body: String,
}

/// An HTTP connector for `handle` tests: records every request and answers
/// with the next canned `(status, body)`, or 418 when none is left.
#[derive(Debug, Clone, Default)]
pub(crate) struct Wire {
    sent: Arc<Mutex<Vec<Sent>>>,
    replies: Arc<Mutex<std::collections::VecDeque<(u16, String)>>>,
}

impl Wire {
    pub(crate) fn answering(replies: &[(u16, &str)]) -> Self {
        let replies = replies.iter().map(|(s, b)| (*s, (*b).to_owned())).collect();
        Self { sent: Arc::default(), replies: Arc::new(Mutex::new(replies)) }
    }

    pub(crate) fn sent(&self) -> Vec<Sent> {
        self.sent.lock().expect("wire").clone()
    }

    /// A target-side context (region us-east-1 by default, so a test sees
    /// whether `handle` picked the target region) whose clients all use this wire.
    pub(crate) fn context(&self, settings: TargetSettings) -> Arc<StepContext> {
        let wire = self.clone();
        let config = aws_types::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_types::region::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new("AKIDTEST", "secret", None, None, "test"),
            ))
            .retry_config(RetryConfig::disabled())
            .http_client(http_client_fn(move |_, _| SharedHttpConnector::new(wire.clone())))
            .build();
        Arc::new(StepContext {
            aws: AwsContext::from_config(config),
            settings: SideSettings::Target(settings),
        })
    }
}

impl HttpConnector for Wire {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let body =
            request.body().bytes().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
        self.sent.lock().expect("wire").push(Sent { uri: request.uri().to_owned(), body });
        let (status, body) =
            self.replies.lock().expect("wire").pop_front().unwrap_or((418, "no reply left".to_owned()));
        let response = HttpResponse::new(StatusCode::try_from(status).expect("status"), SdkBody::from(body));
        HttpConnectorFuture::ready(Ok(response))
    }
}
