//! Test fixtures shared by the target-side step tests: RDS resources in the
//! shapes the SDK returns, mocked RDS and Step Functions calls, AWS error
//! responses as the services send them, and a [`Journal`] that records
//! mutating calls in order. Mocked clients and the recording HTTP client for
//! `handle` tests are [`super::test_support`]'s, re-exported here.

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
use aws_smithy_mocks::{Rule, RuleBuilder, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::retry::RetryConfig;

use super::test_support::http_response;
pub(crate) use super::test_support::{Recorder, rds, tag};
use crate::payload::{DrMessage, RunState};
use crate::rds::{MANAGED_BY, TAG_MANAGED_BY, TAG_RUN_ID};
use crate::settings::TargetSettings;

/// The default settings' names, as the swap module docs write them: the
/// existing (`E`), temporary (`T`) and renamed-away (`O`) cluster, and their
/// instances, for run `run-1` (stamp `20261125160005`).
pub(crate) const E: &str = "orders-dr";
pub(crate) const T: &str = "orders-dr-next";
pub(crate) const O: &str = "orders-dr-old-20261125160005";
pub(crate) const EI: &str = "orders-dr-1";
pub(crate) const TI: &str = "orders-dr-next-1";
pub(crate) const OI: &str = "orders-dr-1-old-20261125160005";

/// A Step Functions client answering from `rules`, SDK retries off.
pub(crate) fn sfn(rules: &[&Rule]) -> aws_sdk_sfn::Client {
    mock_client!(aws_sdk_sfn, RuleMode::MatchAny, rules, |c| c.retry_config(RetryConfig::disabled()))
}

/// Groups of rules as one list, for [`rds`].
pub(crate) fn all<'a>(groups: &'a [&'a [Rule]]) -> Vec<&'a Rule> {
    groups.iter().flat_map(|g| g.iter()).collect()
}

/// The default target settings (`orders-dr`, temp `orders-dr-next`, one instance).
pub(crate) fn settings() -> TargetSettings {
    crate::settings::tests::target_settings()
}

/// The target machine's first payload, as InvokeStepFunction builds it.
pub(crate) fn target_run() -> RunState {
    DrMessage::from_run(&crate::payload::tests::finished_source_run()).expect("message").into_run()
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
    http_response(status, body)
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
    http_response(status, body)
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

    /// `rule` matching the requests `matches` accepts, each journaled as
    /// `entry(request)`: every attempt is journaled, failed ones too.
    fn record<I, O, E>(
        &self,
        rule: RuleBuilder<I, O, E>,
        matches: impl Fn(&I) -> bool + Send + Sync + 'static,
        entry: impl Fn(&I) -> String + Send + Sync + 'static,
    ) -> RuleBuilder<I, O, E>
    where
        I: std::fmt::Debug + Send + Sync + 'static,
        O: std::fmt::Debug + Send + Sync + 'static,
        E: std::fmt::Debug + Send + Sync + std::error::Error + 'static,
    {
        let journal = self.clone();
        rule.match_requests(move |r| {
            let hit = matches(r);
            if hit {
                journal.push(entry(r));
            }
            hit
        })
    }
}

/// `rule` failing with `fault`, or else answering `output`.
fn outcome<I, O, E>(
    rule: RuleBuilder<I, O, E>,
    fault: Option<Fault>,
    output: impl Fn() -> O + Send + Sync + 'static,
) -> Rule
where
    I: std::fmt::Debug + Send + Sync + 'static,
    O: std::fmt::Debug + Send + Sync + 'static,
    E: std::fmt::Debug + Send + Sync + std::error::Error + 'static,
{
    match fault {
        Some(f) => rule.then_http_response(f),
        None => rule.then_output(output),
    }
}

/// `rule` answering `answers` in turn, the last one `last_repeats` times: a
/// resource as `output(resource)`, a missing one as RDS's `not_found` fault.
fn answering<I, O, E, R>(
    rule: RuleBuilder<I, O, E>,
    answers: Vec<Option<R>>,
    output: fn(R) -> O,
    not_found: &'static str,
    last_repeats: usize,
) -> Rule
where
    I: std::fmt::Debug + Send + Sync + 'static,
    O: std::fmt::Debug + Send + Sync + 'static,
    E: std::fmt::Debug + Send + Sync + std::error::Error + 'static,
    R: Clone + Send + Sync + 'static,
{
    let mut seq = rule.sequence();
    for answer in answers {
        seq = match answer {
            Some(r) => seq.output(move || output(r.clone())),
            None => seq.http_response(move || rds_fault(404, not_found)),
        };
    }
    seq.times(last_repeats).build()
}

fn same(a: Option<&str>, b: &str) -> bool {
    a.is_some_and(|a| a.eq_ignore_ascii_case(b))
}

/// DescribeDBClusters for `id`: the cluster, or DBClusterNotFoundFault.
pub(crate) fn describe_cluster(id: &str, found: Option<DbCluster>) -> Rule {
    describe_clusters(id, vec![found], usize::MAX)
}

/// DescribeDBClusters for `id` answering `answers` in turn (the last repeats).
pub(crate) fn describe_cluster_seq(id: &str, answers: Vec<Option<DbCluster>>) -> Rule {
    describe_clusters(id, answers, 100)
}

fn describe_clusters(id: &str, answers: Vec<Option<DbCluster>>, last_repeats: usize) -> Rule {
    let id = id.to_owned();
    let rule = mock!(Rds::describe_db_clusters).match_requests(move |r| same(r.db_cluster_identifier(), &id));
    let output = |c| DescribeDbClustersOutput::builder().db_clusters(c).build();
    answering(rule, answers, output, "DBClusterNotFoundFault", last_repeats)
}

/// DescribeDBInstances for `id`: the instance, or DBInstanceNotFound.
pub(crate) fn describe_instance(id: &str, found: Option<DbInstance>) -> Rule {
    describe_instances(id, vec![found], usize::MAX)
}

/// DescribeDBInstances for `id` answering `answers` in turn (the last repeats).
pub(crate) fn describe_instance_seq(id: &str, answers: Vec<Option<DbInstance>>) -> Rule {
    describe_instances(id, answers, 100)
}

fn describe_instances(id: &str, answers: Vec<Option<DbInstance>>, last_repeats: usize) -> Rule {
    let id = id.to_owned();
    let rule =
        mock!(Rds::describe_db_instances).match_requests(move |r| same(r.db_instance_identifier(), &id));
    let output = |i| DescribeDbInstancesOutput::builder().db_instances(i).build();
    answering(rule, answers, output, "DBInstanceNotFound", last_repeats)
}

/// ModifyDBCluster renaming `from` to `to` (ApplyImmediately required);
/// `fault` makes it fail with that response. Every attempt is journaled.
pub(crate) fn rename_cluster(journal: &Journal, from: &str, to: &str, fault: Option<Fault>) -> Rule {
    let entry = format!("rename cluster {from} -> {to}");
    let (from, to, renamed) = (from.to_owned(), to.to_owned(), to.to_owned());
    let rule = journal.record(
        mock!(Rds::modify_db_cluster),
        move |r| {
            same(r.db_cluster_identifier(), &from)
                && same(r.new_db_cluster_identifier(), &to)
                && r.apply_immediately() == Some(true)
        },
        move |_| entry.clone(),
    );
    outcome(rule, fault, move || {
        ModifyDbClusterOutput::builder().db_cluster(cluster(&renamed, "renaming", Vec::new(), &[])).build()
    })
}

/// ModifyDBInstance renaming `from` to `to` (ApplyImmediately required).
pub(crate) fn rename_instance(journal: &Journal, from: &str, to: &str, fault: Option<Fault>) -> Rule {
    let entry = format!("rename instance {from} -> {to}");
    let (from, to, renamed) = (from.to_owned(), to.to_owned(), to.to_owned());
    let rule = journal.record(
        mock!(Rds::modify_db_instance),
        move |r| {
            same(r.db_instance_identifier(), &from)
                && same(r.new_db_instance_identifier(), &to)
                && r.apply_immediately() == Some(true)
        },
        move |_| entry.clone(),
    );
    outcome(rule, fault, move || {
        ModifyDbInstanceOutput::builder().db_instance(instance(&renamed, "", "renaming", Vec::new())).build()
    })
}

/// ModifyDBCluster turning deletion protection off on `id`.
pub(crate) fn unprotect_cluster(journal: &Journal, id: &str) -> Rule {
    let entry = format!("unprotect cluster {id}");
    let id = id.to_owned();
    journal
        .record(
            mock!(Rds::modify_db_cluster),
            move |r| {
                same(r.db_cluster_identifier(), &id)
                    && r.deletion_protection() == Some(false)
                    && r.new_db_cluster_identifier().is_none()
            },
            move |_| entry.clone(),
        )
        .then_output(|| ModifyDbClusterOutput::builder().build())
}

/// DeleteDBInstance of `id`.
pub(crate) fn delete_instance(journal: &Journal, id: &str, fault: Option<Fault>) -> Rule {
    let entry = format!("delete instance {id}");
    let id = id.to_owned();
    let rule = journal.record(
        mock!(Rds::delete_db_instance),
        move |r| same(r.db_instance_identifier(), &id),
        move |_| entry.clone(),
    );
    outcome(rule, fault, || DeleteDbInstanceOutput::builder().build())
}

/// DeleteDBCluster of `id`, journaled with how the final snapshot was chosen
/// ("delete cluster x (final x-final)" or "delete cluster x (skip final)").
pub(crate) fn delete_cluster(journal: &Journal, id: &str, fault: Option<Fault>) -> Rule {
    let (matched, named) = (id.to_owned(), id.to_owned());
    let rule = journal.record(
        mock!(Rds::delete_db_cluster),
        move |r| same(r.db_cluster_identifier(), &matched),
        move |r| {
            let how = match (r.skip_final_snapshot(), r.final_db_snapshot_identifier()) {
                (Some(true), None) => "skip final".to_owned(),
                (Some(false) | None, Some(f)) => format!("final {f}"),
                other => format!("inconsistent {other:?}"),
            };
            format!("delete cluster {named} ({how})")
        },
    );
    outcome(rule, fault, || DeleteDbClusterOutput::builder().build())
}

/// CreateDBInstance of `id`, journaled.
pub(crate) fn create_instance(journal: &Journal, id: &str, fault: Option<Fault>) -> Rule {
    let entry = format!("create instance {id}");
    let (id, created) = (id.to_owned(), id.to_owned());
    let rule = journal.record(
        mock!(Rds::create_db_instance),
        move |r| same(r.db_instance_identifier(), &id),
        move |_| entry.clone(),
    );
    outcome(rule, fault, move || {
        CreateDbInstanceOutput::builder().db_instance(instance(&created, "", "creating", Vec::new())).build()
    })
}
