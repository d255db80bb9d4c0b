//! Test fixtures shared by the step tests: mocked clients, SDK-shaped
//! errors, the source side's RDS resources, and a recording HTTP client for
//! `handle` tests of either side. The target side's resources and mocked
//! calls are in [`super::target_support`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use aws_sdk_rds::operation::copy_db_cluster_snapshot::CopyDBClusterSnapshotError;
use aws_sdk_rds::operation::describe_db_cluster_snapshots::{
    DescribeDBClusterSnapshotsError, DescribeDbClusterSnapshotsOutput,
};
use aws_sdk_rds::types::error::DbClusterSnapshotAlreadyExistsFault;
use aws_sdk_rds::types::{DbCluster, DbClusterSnapshot, DbInstance, Tag};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::error::ErrorMetadata;
use aws_smithy_types::retry::RetryConfig;
use time::macros::datetime;

use crate::clients::AwsContext;
use crate::context::{SideSettings, StepContext};
use crate::error::DrError;
use crate::ids::Arn;
use crate::payload::RunState;
use crate::rds::{MANAGED_BY, TAG_MANAGED_BY, TAG_RUN_ID, TAG_SOURCE_CLUSTER};
use crate::settings::TargetSettings;

/// The id of the run the fixtures belong to.
pub(crate) const RUN_ID: &str = "run-1";
/// The snapshot name `run-1` gets with the default settings.
pub(crate) const SNAPSHOT_ID: &str = "aurora-dr-orders-20261125160005";
pub(crate) const SOURCE_SNAPSHOT_ARN: &str =
    "arn:aws:rds:us-west-2:111111111111:cluster-snapshot:aurora-dr-orders-20261125160005";
pub(crate) const TARGET_SNAPSHOT_ARN: &str =
    "arn:aws:rds:us-west-1:111111111111:cluster-snapshot:aurora-dr-orders-20261125160005";
pub(crate) const KMS_KEY_ARN: &str =
    "arn:aws:kms:us-west-1:111111111111:key/0f0e0d0c-0000-4000-8000-000000000001";

/// This run's snapshot ([`SNAPSHOT_ID`]) in `region` of `account`.
pub(crate) fn snapshot_arn(region: &str, account: &str) -> Arn {
    format!("arn:aws:rds:{region}:{account}:cluster-snapshot:{SNAPSHOT_ID}").parse().expect("arn")
}

/// `err` is the `InvalidInput` that names `case`.
#[track_caller]
pub(crate) fn assert_invalid_input(err: &DrError, case: &str) {
    assert_eq!(err.asl_name(), "InvalidInput", "{case}: {err}");
    assert!(err.to_string().contains(case), "{case}: {err}");
}

/// The payload the Start state hands CreateSnapshot.
pub(crate) fn started_run() -> RunState {
    RunState::new(RUN_ID.parse().expect("run id"), datetime!(2026-11-25 16:00:05 UTC))
}

/// An RDS client answering from `rules` (first matching rule wins), with SDK
/// retries off so each mocked error reaches the step exactly once. A call no
/// rule matches panics, which fails the test: an unexpected mutating call
/// cannot go unnoticed.
/// DeleteDBClusterSnapshot answered, each snapshot's identifier pushed to `seen`.
pub(crate) fn recording_deletes(seen: Arc<Mutex<Vec<String>>>) -> Rule {
    mock!(aws_sdk_rds::Client::delete_db_cluster_snapshot)
        .match_requests(move |r| {
            seen.lock()
                .expect("lock")
                .push(r.db_cluster_snapshot_identifier().unwrap_or_default().to_owned());
            true
        })
        .then_output(|| {
            aws_sdk_rds::operation::delete_db_cluster_snapshot::DeleteDbClusterSnapshotOutput::builder()
                .build()
        })
}

pub(crate) fn rds(rules: &[&Rule]) -> aws_sdk_rds::Client {
    mock_client!(aws_sdk_rds, RuleMode::MatchAny, rules, |c| c.retry_config(RetryConfig::disabled()))
}

/// An SNS client answering from `rules`, SDK retries off.
pub(crate) fn sns(rules: &[&Rule]) -> aws_sdk_sns::Client {
    mock_client!(aws_sdk_sns, RuleMode::MatchAny, rules, |c| c.retry_config(RetryConfig::disabled()))
}

/// Error metadata as the SDK deserialises it from an AWS error response.
pub(crate) fn meta(code: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(format!("mocked {code}")).build()
}

/// A raw HTTP response with `body`.
pub(crate) fn http_response(status: u16, body: impl Into<SdkBody>) -> HttpResponse {
    HttpResponse::new(StatusCode::try_from(status).expect("status"), body.into())
}

/// A raw HTTP response (for 5xx without a modeled error).
pub(crate) fn http_status(status: u16) -> HttpResponse {
    http_response(status, "")
}

pub(crate) fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

/// aurora-dr's tags for run `run_id` of the `orders` cluster.
pub(crate) fn managed_tags(run_id: &str) -> Vec<Tag> {
    vec![tag(TAG_MANAGED_BY, MANAGED_BY), tag(TAG_RUN_ID, run_id), tag(TAG_SOURCE_CLUSTER, "orders")]
}

/// The source cluster `orders`.
pub(crate) fn cluster(encrypted: bool) -> DbCluster {
    DbCluster::builder()
        .db_cluster_identifier("orders")
        .engine("aurora-postgresql")
        .status("available")
        .storage_encrypted(encrypted)
        .build()
}

/// A cluster snapshot in the source region.
pub(crate) fn snapshot(id: &str, cluster: &str, status: &str) -> DbClusterSnapshot {
    DbClusterSnapshot::builder()
        .db_cluster_snapshot_identifier(id)
        .db_cluster_identifier(cluster)
        .db_cluster_snapshot_arn(format!("arn:aws:rds:us-west-2:111111111111:cluster-snapshot:{id}"))
        .status(status)
        .engine("aurora-postgresql")
        .snapshot_type("manual")
        .storage_encrypted(true)
        .snapshot_create_time(aws_smithy_types::DateTime::from_secs(1_795_622_406))
        .build()
}

/// The encrypted copy of this run's snapshot in the target region.
pub(crate) fn copy(status: &str) -> DbClusterSnapshot {
    DbClusterSnapshot::builder()
        .db_cluster_snapshot_identifier(SNAPSHOT_ID)
        .db_cluster_identifier("orders")
        .db_cluster_snapshot_arn(TARGET_SNAPSHOT_ARN)
        .source_db_cluster_snapshot_arn(SOURCE_SNAPSHOT_ARN)
        .status(status)
        .snapshot_type("manual")
        .storage_encrypted(true)
        .kms_key_id(KMS_KEY_ARN)
        .set_tag_list(Some(managed_tags(RUN_ID)))
        .build()
}

/// DescribeDBClusterSnapshots: no snapshot under the name asked for.
pub(crate) fn snapshot_missing() -> Rule {
    mock!(aws_sdk_rds::Client::describe_db_cluster_snapshots)
        .then_error(|| DescribeDBClusterSnapshotsError::generic(meta("DBClusterSnapshotNotFoundFault")))
}

/// DescribeDBClusterSnapshots listing `snap`.
pub(crate) fn snapshot_listed(snap: DbClusterSnapshot) -> Rule {
    mock!(aws_sdk_rds::Client::describe_db_cluster_snapshots).then_output(move || {
        DescribeDbClusterSnapshotsOutput::builder().db_cluster_snapshots(snap.clone()).build()
    })
}

/// DescribeDBClusterSnapshots: not there when first asked, then `snap`
/// (made by a racing call, or by the step's own call).
pub(crate) fn snapshot_appearing(snap: DbClusterSnapshot) -> Rule {
    mock!(aws_sdk_rds::Client::describe_db_cluster_snapshots)
        .sequence()
        .error(|| DescribeDBClusterSnapshotsError::generic(meta("DBClusterSnapshotNotFoundFault")))
        .output(move || {
            DescribeDbClusterSnapshotsOutput::builder().db_cluster_snapshots(snap.clone()).build()
        })
        .build()
}

/// CopyDBClusterSnapshot refused because a copy of that name exists (a
/// racing copy won).
pub(crate) fn copy_already_exists() -> Rule {
    mock!(aws_sdk_rds::Client::copy_db_cluster_snapshot).then_error(|| {
        CopyDBClusterSnapshotError::DbClusterSnapshotAlreadyExistsFault(
            DbClusterSnapshotAlreadyExistsFault::builder()
                .meta(meta("DBClusterSnapshotAlreadyExistsFault"))
                .build(),
        )
    })
}

pub(crate) fn instance(id: &str, cluster: &str, status: &str) -> DbInstance {
    DbInstance::builder()
        .db_instance_identifier(id)
        .db_cluster_identifier(cluster)
        .db_instance_status(status)
        .build()
}

/// One HTTP request a step sent through [`Recorder`].
#[derive(Debug, Clone)]
pub(crate) struct Sent {
    pub(crate) uri: String,
    pub(crate) body: String,
}

/// An HTTP client for `handle` tests: records every request (so a test can
/// see the region and the action a handler chose) and answers each with the
/// next canned `(status, body)`, or 418 when none is left.
#[derive(Debug, Clone, Default)]
pub(crate) struct Recorder {
    sent: Arc<Mutex<Vec<Sent>>>,
    replies: Arc<Mutex<VecDeque<(u16, String)>>>,
}

impl Recorder {
    pub(crate) fn replying<S: Into<String>>(replies: impl IntoIterator<Item = (u16, S)>) -> Self {
        let replies = replies.into_iter().map(|(status, body)| (status, body.into())).collect();
        Self { sent: Arc::default(), replies: Arc::new(Mutex::new(replies)) }
    }

    pub(crate) fn sent(&self) -> Vec<Sent> {
        self.sent.lock().expect("lock").clone()
    }

    /// A step context on `settings` whose every client goes through this
    /// recorder, in the side's own region (like a Lambda's AWS_REGION).
    pub(crate) fn context(&self, settings: SideSettings) -> Arc<StepContext> {
        let region = match &settings {
            SideSettings::Source(s) => s.region.to_string(),
            SideSettings::Target(t) => t.region.to_string(),
        };
        self.context_in(&region, settings)
    }

    /// A target-side context through this recorder that starts in
    /// us-east-1, a region neither side uses, so a test sees whether
    /// `handle` picked the target region.
    pub(crate) fn target_elsewhere(&self, settings: TargetSettings) -> Arc<StepContext> {
        self.context_in("us-east-1", SideSettings::Target(settings))
    }

    fn context_in(&self, region: &str, settings: SideSettings) -> Arc<StepContext> {
        self.context_with(region, settings, RetryConfig::disabled())
    }

    /// A source-side context whose clients retry as deployed (standard
    /// mode, 3 attempts; backoff of a millisecond), so a test sees which
    /// calls opt out of the SDK's retries.
    pub(crate) fn source_context_retrying(&self) -> Arc<StepContext> {
        let settings = crate::settings::tests::source_settings();
        let retries = RetryConfig::standard().with_initial_backoff(std::time::Duration::from_millis(1));
        let region = settings.region.clone();
        self.context_with(region.as_ref(), SideSettings::Source(settings), retries)
    }

    fn context_with(&self, region: &str, settings: SideSettings, retries: RetryConfig) -> Arc<StepContext> {
        let this = self.clone();
        let http = http_client_fn(move |_, _| SharedHttpConnector::new(this.clone()));
        let config = aws_types::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_types::region::Region::new(region.to_owned()))
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new("AKIDTEST", "secret", None, None, "test"),
            ))
            .retry_config(retries)
            .sleep_impl(aws_sdk_rds::config::SharedAsyncSleep::new(TokioSleep))
            .http_client(http)
            .build();
        Arc::new(StepContext::new(AwsContext::from_config(config), settings))
    }
}

/// The SDK's backoff on tokio's timer.
#[derive(Debug)]
struct TokioSleep;

impl aws_sdk_rds::config::AsyncSleep for TokioSleep {
    fn sleep(&self, duration: std::time::Duration) -> aws_sdk_rds::config::Sleep {
        aws_sdk_rds::config::Sleep::new(tokio::time::sleep(duration))
    }
}

impl HttpConnector for Recorder {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let body =
            request.body().bytes().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
        self.sent.lock().expect("lock").push(Sent { uri: request.uri().to_owned(), body });
        let (status, body) =
            self.replies.lock().expect("lock").pop_front().unwrap_or((418, "no reply left".to_owned()));
        HttpConnectorFuture::ready(Ok(http_response(status, body)))
    }
}

/// RDS's awsQuery reply to `action` whose result holds `inner` (XML), as a
/// [`Recorder`] answers.
pub(crate) fn rds_reply(action: &str, inner: &str) -> (u16, String) {
    let body = format!(
        "<{action}Response xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\"><{action}Result>{inner}\
         </{action}Result><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></{action}Response>"
    );
    (200, body)
}

/// RDS's awsQuery error reply.
pub(crate) fn rds_error_reply(status: u16, code: &str) -> (u16, String) {
    let body = format!(
        "<ErrorResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\"><Error><Type>Sender</Type>\
         <Code>{code}</Code><Message>mocked {code}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
    );
    (status, body)
}

/// A `DBClusterSnapshot` element: encrypted with `key` (unencrypted without one).
pub(crate) fn snapshot_xml(
    id: &str,
    arn: &str,
    status: &str,
    key: Option<&str>,
    from: Option<&str>,
) -> String {
    let encryption = match key {
        Some(k) => format!("<StorageEncrypted>true</StorageEncrypted><KmsKeyId>{k}</KmsKeyId>"),
        None => "<StorageEncrypted>false</StorageEncrypted>".to_owned(),
    };
    let from = from
        .map(|f| format!("<SourceDBClusterSnapshotArn>{f}</SourceDBClusterSnapshotArn>"))
        .unwrap_or_default();
    format!(
        "<DBClusterSnapshot><DBClusterSnapshotIdentifier>{id}</DBClusterSnapshotIdentifier>\
         <DBClusterIdentifier>orders</DBClusterIdentifier><DBClusterSnapshotArn>{arn}</DBClusterSnapshotArn>\
         <SnapshotType>manual</SnapshotType><Status>{status}</Status>{encryption}{from}</DBClusterSnapshot>"
    )
}

/// The two calls of a new copy, both in the target region (us-west-1):
/// look for it, then `CopyDBClusterSnapshot` under a key of `key_account`.
#[track_caller]
pub(crate) fn assert_copied_in_the_target_region(sent: &[Sent], key_account: &str) {
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent.iter().all(|s| s.uri.contains("rds.us-west-1.")), "{sent:?}");
    assert!(sent[0].body.contains("Action=DescribeDBClusterSnapshots"), "{}", sent[0].body);
    assert!(sent[1].body.contains("Action=CopyDBClusterSnapshot"), "{}", sent[1].body);
    let key = format!("KmsKeyId=arn%3Aaws%3Akms%3Aus-west-1%3A{key_account}");
    assert!(sent[1].body.contains(&key), "{}", sent[1].body);
}

/// Source-side context through `recorder`.
pub(crate) fn source_context(recorder: &Recorder) -> Arc<StepContext> {
    recorder.context(SideSettings::Source(crate::settings::tests::source_settings()))
}

/// Target-side context through `recorder`.
pub(crate) fn target_context(recorder: &Recorder) -> Arc<StepContext> {
    recorder.context(SideSettings::Target(crate::settings::tests::target_settings()))
}
