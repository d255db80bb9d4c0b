//! The one error type of the pipeline and its one mapping to ASL error names.
//!
//! A handler's error reaches Step Functions as `errorType` = [`DrError::asl_name`];
//! that is what `Retry`/`Catch` `ErrorEquals` match in `statemachines/*.asl.json`.
//! [`DrError::is_retryable`] is the single classification the state machines
//! mirror: the retryable names appear in a `Retry`, every other name is caught
//! and routed to the failure path.

use aws_sdk_rds::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response;

/// Every error a step can end with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DrError {
    /// The step's input or an event is malformed or inconsistent.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A setting (environment variable or config key) breaks a rule.
    #[error("invalid configuration: {name}: {problem}")]
    InvalidConfig { name: String, problem: String },
    /// Work on a resource is still in progress; poll again.
    #[error("{resource} is {status}, not yet available")]
    NotReady { resource: String, status: String },
    /// A resource ended in a state it cannot leave (`failed`, `incompatible-*`).
    #[error("{resource} ended in status {status}")]
    ResourceFailed { resource: String, status: String },
    /// A resource the step needs does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A resource exists but belongs to something else (another run, a person).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The step refused to do something unsafe (public share, unencrypted copy).
    #[error("refused: {0}")]
    Unsafe(String),
    /// The swap could not complete; `rolled_back` says whether names are as before.
    #[error("swap failed ({}): {detail}", if *rolled_back { "rolled back" } else { "NOT rolled back" })]
    SwapFailed { detail: String, rolled_back: bool },
    /// A SanityCheck probe of the swapped-in cluster failed: the server
    /// answered, and the answer was wrong (too few rows, stale data, a
    /// refused login or query). Fatal: asking again gets the same answer.
    /// `results` lists every probe's outcome (they reach the failure
    /// notification's cause).
    #[error("sanity check of cluster {cluster} failed: {results}")]
    SanityCheckFailed { cluster: String, results: String },
    /// The SanityCheck could not open a connection to the swapped-in cluster
    /// (network, TLS, no answer in time): a just-renamed endpoint may not
    /// answer yet, so the state machine tries again once. `results` as for
    /// [`Self::SanityCheckFailed`].
    #[error("sanity check of cluster {cluster} could not connect: {results}")]
    SanityCheckUnreachable { cluster: String, results: String },
    /// An account quota is reached: concurrent snapshot copies, manual
    /// snapshots, DB clusters, DB instances or storage. Another run or a
    /// person may free room, so the name is retryable; each state decides
    /// whether waiting makes sense (the snapshot copy waits, Restore and
    /// RestoreInstance take the failure path at once).
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    /// A fixed AWS limit that waiting does not lift (e.g. the number of
    /// accounts a manual snapshot may be shared with).
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// AWS answered with a reply the SDK could not read (after the SDK's own
    /// retries): nothing says that asking again would help.
    #[error("unreadable AWS reply: {0}")]
    UnexpectedResponse(String),
    /// AWS throttled the request; retry with backoff.
    #[error("throttled: {0}")]
    Throttled(String),
    /// The service could not be reached or answered 5xx; retry.
    #[error("service unavailable: {0}")]
    ServiceUnavailable(String),
    /// Credentials, a policy or a KMS key grant do not allow the call.
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// A bounded wait ran out.
    #[error("timed out: {0}")]
    Timeout(String),
    /// Any other AWS error, with its code.
    #[error("AWS error {code}: {message}")]
    Aws { code: String, message: String },
}

/// The ASL error names, as written in the state machines.
pub mod names {
    pub const INVALID_INPUT: &str = "InvalidInput";
    pub const INVALID_CONFIG: &str = "InvalidConfig";
    pub const NOT_READY: &str = "ResourceNotReady";
    pub const RESOURCE_FAILED: &str = "ResourceFailed";
    pub const NOT_FOUND: &str = "NotFound";
    pub const CONFLICT: &str = "Conflict";
    pub const UNSAFE: &str = "UnsafeOperation";
    pub const SWAP_FAILED: &str = "SwapFailed";
    pub const SANITY_CHECK_FAILED: &str = "SanityCheckFailed";
    pub const SANITY_CHECK_UNREACHABLE: &str = "SanityCheckUnreachable";
    pub const QUOTA_EXCEEDED: &str = "QuotaExceeded";
    pub const LIMIT_EXCEEDED: &str = "LimitExceeded";
    pub const UNEXPECTED_RESPONSE: &str = "UnexpectedResponse";
    pub const THROTTLED: &str = "Throttled";
    pub const SERVICE_UNAVAILABLE: &str = "ServiceUnavailable";
    pub const ACCESS_DENIED: &str = "AccessDenied";
    pub const TIMEOUT: &str = "Timeout";
    pub const AWS_ERROR: &str = "AwsError";

    /// Names a state machine retries (everything else is caught); each is in
    /// a `Retry` of `statemachines/*.asl.json`, and no other name is.
    pub const RETRYABLE: &[&str] =
        &[NOT_READY, QUOTA_EXCEEDED, THROTTLED, SERVICE_UNAVAILABLE, SANITY_CHECK_UNREACHABLE];
}

impl DrError {
    /// The `errorType` Step Functions sees.
    pub fn asl_name(&self) -> &'static str {
        use names::*;
        match self {
            Self::InvalidInput(_) => INVALID_INPUT,
            Self::InvalidConfig { .. } => INVALID_CONFIG,
            Self::NotReady { .. } => NOT_READY,
            Self::ResourceFailed { .. } => RESOURCE_FAILED,
            Self::NotFound(_) => NOT_FOUND,
            Self::Conflict(_) => CONFLICT,
            Self::Unsafe(_) => UNSAFE,
            Self::SwapFailed { .. } => SWAP_FAILED,
            Self::SanityCheckFailed { .. } => SANITY_CHECK_FAILED,
            Self::SanityCheckUnreachable { .. } => SANITY_CHECK_UNREACHABLE,
            Self::QuotaExceeded(_) => QUOTA_EXCEEDED,
            Self::LimitExceeded(_) => LIMIT_EXCEEDED,
            Self::UnexpectedResponse(_) => UNEXPECTED_RESPONSE,
            Self::Throttled(_) => THROTTLED,
            Self::ServiceUnavailable(_) => SERVICE_UNAVAILABLE,
            Self::AccessDenied(_) => ACCESS_DENIED,
            Self::Timeout(_) => TIMEOUT,
            Self::Aws { .. } => AWS_ERROR,
        }
    }

    /// Whether the same call may succeed later without any change.
    pub fn is_retryable(&self) -> bool {
        names::RETRYABLE.contains(&self.asl_name())
    }

    pub fn invalid_input(msg: impl Into<String>) -> Self {
        Self::InvalidInput(msg.into())
    }

    pub fn not_ready(resource: impl Into<String>, status: impl Into<String>) -> Self {
        Self::NotReady { resource: resource.into(), status: status.into() }
    }

    /// Classifies an SDK error by its AWS error code and HTTP status.
    /// `context` names the call, e.g. "CopyDBClusterSnapshot orders-1".
    pub fn from_sdk<E>(context: &str, err: SdkError<E, Response>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        match &err {
            // No answer at all (or none in time): the service may answer later.
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
                return Self::ServiceUnavailable(format!("{context}: {}", describe(&err)));
            }
            // An answer the SDK could not read. A 5xx page is the service
            // being unavailable; any other status is not.
            SdkError::ResponseError(_) if status.is_some_and(|s| s >= 500) => {
                return Self::ServiceUnavailable(format!("{context}: {}", describe(&err)));
            }
            SdkError::ResponseError(_) => {
                return Self::UnexpectedResponse(format!("{context}: {}", describe(&err)));
            }
            _ => {}
        }
        let code = err.code().unwrap_or_default().to_owned();
        let message =
            format!("{context}: {}", err.message().map(str::to_owned).unwrap_or_else(|| describe(&err)));
        Self::from_code(&code, status, message)
    }

    /// Classifies by AWS error code (and HTTP status when there is no code).
    pub fn from_code(code: &str, status: Option<u16>, message: String) -> Self {
        match code {
            "Throttling"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "TooManyRequestsException"
            | "RequestThrottled"
            | "RequestThrottledException"
            | "SlowDown"
            | "PriorRequestNotComplete" => Self::Throttled(message),
            // Account quotas, by their wire codes on the RDS API reference's
            // error lists: RestoreDBClusterFromSnapshot
            // (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RestoreDBClusterFromSnapshot.html:
            // DBClusterQuotaExceededFault, HTTP 403; StorageQuotaExceeded),
            // CreateDBInstance
            // (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html:
            // InstanceQuotaExceeded, StorageQuotaExceeded), CopyDBClusterSnapshot and
            // CreateDBClusterSnapshot
            // (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBClusterSnapshot.html,
            // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBClusterSnapshot.html:
            // SnapshotQuotaExceeded). The shape names (…Fault) are accepted too.
            "SnapshotQuotaExceeded"
            | "SnapshotQuotaExceededFault"
            | "DBClusterQuotaExceededFault"
            | "InstanceQuotaExceeded"
            | "InstanceQuotaExceededFault"
            | "StorageQuotaExceeded"
            | "StorageQuotaExceededFault" => Self::QuotaExceeded(message),
            // ModifyDBClusterSnapshotAttribute: more accounts than a manual
            // snapshot may be shared with; not a permission, and not lifted by waiting.
            "SharedSnapshotQuotaExceeded" | "SharedSnapshotQuotaExceededFault" => {
                Self::LimitExceeded(message)
            }
            "AccessDenied"
            | "AccessDeniedException"
            | "UnauthorizedOperation"
            | "AuthorizationError"
            | "KMSKeyNotAccessibleFault"
            | "InvalidClientTokenId"
            | "ExpiredToken"
            | "ExpiredTokenException" => Self::AccessDenied(message),
            "InvalidDBClusterStateFault"
            | "InvalidDBInstanceState"
            | "InvalidDBInstanceStateFault"
            | "InvalidDBClusterSnapshotStateFault" => {
                Self::NotReady { resource: message, status: "busy".into() }
            }
            "InternalFailure" | "InternalError" | "ServiceUnavailable" | "ServiceUnavailableException" => {
                Self::ServiceUnavailable(message)
            }
            c if c.ends_with("NotFound")
                || c.ends_with("NotFoundFault")
                || c.ends_with("NotFoundException") =>
            {
                Self::NotFound(message)
            }
            c if c.ends_with("AlreadyExistsFault") || c.ends_with("AlreadyExists") => Self::Conflict(message),
            c if c.starts_with("InvalidParameter") || c == "ValidationError" || c == "InvalidArn" => {
                Self::InvalidInput(message)
            }
            "" if status.is_some_and(|s| s >= 500) => Self::ServiceUnavailable(message),
            "" if status == Some(429) => Self::Throttled(message),
            "" => Self::Aws { code: format!("HTTP{}", status.unwrap_or(0)), message },
            other => Self::Aws { code: other.to_owned(), message },
        }
    }

    /// The AWS error code when this error came from AWS.
    pub fn aws_code(&self) -> Option<&str> {
        match self {
            Self::Aws { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// The whole source chain of an error, on one line.
fn describe(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl From<DrError> for lambda_runtime::Diagnostic {
    fn from(err: DrError) -> Self {
        lambda_runtime::Diagnostic { error_type: err.asl_name().to_owned(), error_message: err.to_string() }
    }
}

impl From<serde_json::Error> for DrError {
    fn from(err: serde_json::Error) -> Self {
        Self::InvalidInput(err.to_string())
    }
}

pub type DrResult<T> = Result<T, DrError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_a_distinct_name_and_class() {
        let all = [
            DrError::InvalidInput(String::new()),
            DrError::InvalidConfig { name: String::new(), problem: String::new() },
            DrError::not_ready("", ""),
            DrError::ResourceFailed { resource: String::new(), status: String::new() },
            DrError::NotFound(String::new()),
            DrError::Conflict(String::new()),
            DrError::Unsafe(String::new()),
            DrError::SwapFailed { detail: String::new(), rolled_back: true },
            DrError::SanityCheckFailed { cluster: String::new(), results: String::new() },
            DrError::SanityCheckUnreachable { cluster: String::new(), results: String::new() },
            DrError::QuotaExceeded(String::new()),
            DrError::LimitExceeded(String::new()),
            DrError::UnexpectedResponse(String::new()),
            DrError::Throttled(String::new()),
            DrError::ServiceUnavailable(String::new()),
            DrError::AccessDenied(String::new()),
            DrError::Timeout(String::new()),
            DrError::Aws { code: String::new(), message: String::new() },
        ];
        let mut names: Vec<&str> = all.iter().map(DrError::asl_name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        let retryable: Vec<&str> = all.iter().filter(|e| e.is_retryable()).map(DrError::asl_name).collect();
        assert_eq!(
            retryable,
            [
                "ResourceNotReady",
                "SanityCheckUnreachable",
                "QuotaExceeded",
                "Throttled",
                "ServiceUnavailable"
            ]
        );
    }

    #[test]
    fn aws_codes_are_classified() {
        let cases = [
            ("Throttling", None, "Throttled"),
            ("ThrottlingException", None, "Throttled"),
            ("SnapshotQuotaExceeded", None, "QuotaExceeded"),
            ("KMSKeyNotAccessibleFault", None, "AccessDenied"),
            ("SharedSnapshotQuotaExceeded", Some(400), "LimitExceeded"),
            ("AccessDenied", None, "AccessDenied"),
            ("DBClusterNotFoundFault", None, "NotFound"),
            ("DBClusterSnapshotNotFoundFault", None, "NotFound"),
            ("DBClusterAlreadyExistsFault", None, "Conflict"),
            ("InvalidDBClusterStateFault", None, "ResourceNotReady"),
            ("InvalidParameterValue", None, "InvalidInput"),
            ("", Some(503), "ServiceUnavailable"),
            ("", Some(500), "ServiceUnavailable"),
            ("InternalFailure", Some(500), "ServiceUnavailable"),
            ("", Some(429), "Throttled"),
            ("DBClusterQuotaExceededFault", Some(403), "QuotaExceeded"),
            ("InstanceQuotaExceeded", Some(400), "QuotaExceeded"),
            ("InstanceQuotaExceededFault", None, "QuotaExceeded"),
            ("StorageQuotaExceeded", Some(400), "QuotaExceeded"),
            ("StorageQuotaExceededFault", None, "QuotaExceeded"),
            ("SharedSnapshotQuotaExceededFault", None, "LimitExceeded"),
            ("InsufficientDBClusterCapacityFault", None, "AwsError"),
        ];
        for (code, status, want) in cases {
            assert_eq!(DrError::from_code(code, status, "m".into()).asl_name(), want, "{code}");
        }
    }

    #[test]
    fn an_unreadable_reply_is_not_service_unavailable_unless_it_is_a_5xx() {
        use aws_sdk_rds::operation::describe_db_clusters::DescribeDBClustersError;
        use aws_smithy_runtime_api::http::StatusCode;
        use aws_smithy_types::body::SdkBody;
        let reply = |status: u16| {
            let raw = Response::new(StatusCode::try_from(status).expect("status"), SdkBody::from("<html>"));
            SdkError::<DescribeDBClustersError, Response>::response_error("unexpected end of XML", raw)
        };
        let ok_but_garbled = DrError::from_sdk("DescribeDBClusters orders", reply(200));
        assert_eq!(ok_but_garbled.asl_name(), "UnexpectedResponse", "{ok_but_garbled}");
        assert!(!ok_but_garbled.is_retryable());
        assert!(ok_but_garbled.to_string().contains("DescribeDBClusters orders"), "{ok_but_garbled}");
        let proxy_page = DrError::from_sdk("DescribeDBClusters orders", reply(502));
        assert_eq!(proxy_page.asl_name(), "ServiceUnavailable", "{proxy_page}");
    }

    #[test]
    fn diagnostic_carries_the_asl_name() {
        let d: lambda_runtime::Diagnostic = DrError::Throttled("x".into()).into();
        assert_eq!(d.error_type, "Throttled");
        assert_eq!(d.error_message, "throttled: x");
    }
}
