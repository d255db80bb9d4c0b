//! Client of the emulator's control endpoint (`/_aurora_dr/...`): fault
//! rules, latency and the call log. The JSON format is in `emulator/README.md`.

use std::collections::BTreeMap;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, header};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tokio::net::TcpStream;

use crate::EmulatorError;

/// How long one kind of resource stays in progress: for `polls` describe
/// calls of that resource, or `seconds` (both may be set; the longer wins).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Delay {
    #[serde(default)]
    pub polls: u32,
    #[serde(default)]
    pub seconds: f64,
}

impl Delay {
    /// In progress on the creating response and the next `n` describe calls.
    pub fn polls(n: u32) -> Self {
        Self { polls: n, seconds: 0.0 }
    }

    /// In progress for `s` seconds.
    pub fn seconds(s: f64) -> Self {
        Self { polls: 0, seconds: s }
    }
}

/// Latency per kind of resource.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Latency {
    /// A cluster snapshot being created (`creating`).
    pub snapshot: Delay,
    /// A cluster snapshot being copied (`copying`), in or across regions.
    pub copy: Delay,
    pub cluster: Delay,
    pub instance: Delay,
}

impl Latency {
    /// The same delay for snapshots, copies, clusters and instances.
    pub fn uniform(delay: Delay) -> Self {
        Self { snapshot: delay, copy: delay, cluster: delay, instance: delay }
    }

    /// Tests: every resource is in progress for two describe calls.
    pub fn for_tests() -> Self {
        Self::uniform(Delay::polls(2))
    }

    /// Demos: short but visible, three seconds.
    pub fn for_demo() -> Self {
        Self::uniform(Delay::seconds(3.0))
    }
}

/// A rule armed at the emulator (`POST /_aurora_dr/faults`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultRule {
    /// Answer matching calls with an AWS error instead of running them.
    Error(ErrorRule),
    /// Snapshot `id` ends in `status` (e.g. `failed`) instead of `available`.
    SnapshotStatus {
        id: String,
        status: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        region: Option<String>,
    },
    /// The next instances that get identifier `id` (a glob; created or
    /// renamed) end in `status` instead of `available`: the first `skip`
    /// matching instances are left alone, then `count` (`None`: all) are hit.
    InstanceStatus {
        id: String,
        status: String,
        skip: u32,
        count: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        region: Option<String>,
    },
    /// At most `limit` cross-region copies `copying` at once per destination
    /// account and region; further CopyDBClusterSnapshot calls fail with
    /// `SnapshotQuotaExceeded`.
    CopyQuota {
        limit: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        region: Option<String>,
    },
}

impl FaultRule {
    /// `operation` of `service` (signing name: `rds`, `sns`, `kms`, `sts`)
    /// answers `error_code` with HTTP 400, every time until reset.
    pub fn error(service: &str, operation: &str, error_code: &str) -> ErrorRule {
        ErrorRule {
            service: service.to_owned(),
            operation: operation.to_owned(),
            error_code: error_code.to_owned(),
            http_status: 400,
            ..ErrorRule::default()
        }
    }

    /// Throttling as AWS sends it (`Throttling` for query-protocol services,
    /// `ThrottlingException` for JSON ones), so SDK retries classify it.
    pub fn throttle(service: &str, operation: &str) -> ErrorRule {
        let code = match service {
            "rds" | "sns" | "sts" | "iam" => "Throttling",
            _ => "ThrottlingException",
        };
        Self::error(service, operation, code).message("Rate exceeded")
    }

    /// HTTP 503 `ServiceUnavailable` (a transient server error).
    pub fn unavailable(service: &str, operation: &str) -> ErrorRule {
        Self::error(service, operation, "ServiceUnavailable").status(503)
    }

    /// The next `CopyDBClusterSnapshot` calls answer `SnapshotQuotaExceeded`.
    pub fn copy_quota_exceeded() -> ErrorRule {
        Self::error("rds", "CopyDBClusterSnapshot", "SnapshotQuotaExceeded").message(
            "The request cannot be processed because it would exceed the maximum number of snapshots.",
        )
    }

    /// A cluster rename (`ModifyDBCluster` with `NewDBClusterIdentifier`) fails
    /// once with `InvalidDBClusterStateFault`; `cluster` narrows it to the
    /// cluster being renamed.
    pub fn rename_fails(cluster: Option<&str>) -> ErrorRule {
        let rule = Self::error("rds", "ModifyDBCluster", "InvalidDBClusterStateFault")
            .message("Injected fault: the cluster rename failed")
            .matching("NewDBClusterIdentifier", "*")
            .times(1);
        match cluster {
            Some(id) => rule.matching("DBClusterIdentifier", id),
            None => rule,
        }
    }

    /// Snapshot `id` (in any account and region) ends in `failed`.
    pub fn failed_snapshot(id: &str) -> Self {
        Self::snapshot_status(id, "failed")
    }

    /// Snapshot `id` ends in `status`.
    pub fn snapshot_status(id: &str, status: &str) -> Self {
        Self::SnapshotStatus { id: id.to_owned(), status: status.to_owned(), account: None, region: None }
    }

    /// Snapshots matching the glob `pattern` created later by `account` in
    /// `region` end in `status` (a glob never changes snapshots already there).
    pub fn snapshot_status_in(pattern: &str, status: &str, account: &str, region: &str) -> Self {
        Self::SnapshotStatus {
            id: pattern.to_owned(),
            status: status.to_owned(),
            account: Some(account.to_owned()),
            region: Some(region.to_owned()),
        }
    }

    /// After `skip` instances got identifier `id` (created or renamed), the
    /// next `count` that get it end in `status`.
    pub fn instance_status(id: &str, status: &str, skip: u32, count: Option<u32>) -> Self {
        Self::InstanceStatus {
            id: id.to_owned(),
            status: status.to_owned(),
            skip,
            count,
            account: None,
            region: None,
        }
    }

    /// At most `limit` cross-region copies in `copying` per destination.
    pub fn copy_quota(limit: u32) -> Self {
        Self::CopyQuota { limit, account: None, region: None }
    }
}

/// An error answer for matching calls; build it with [`FaultRule::error`].
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ErrorRule {
    pub service: String,
    pub operation: String,
    pub error_code: String,
    pub http_status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// How many calls fail; `None` is every call until reset.
    pub count: Option<u32>,
    /// Matching calls that pass before the rule starts failing them.
    pub skip: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Request parameter -> value, a case-insensitive glob (`*`: present).
    #[serde(rename = "match")]
    pub matches: BTreeMap<String, String>,
    /// The call takes effect and only its answer is the error (a response
    /// lost after the change, as when the caller crashes or times out).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub after: bool,
}

impl ErrorRule {
    /// Fails only the next `n` matching calls.
    pub fn times(mut self, n: u32) -> Self {
        self.count = Some(n);
        self
    }

    /// Lets the first `n` matching calls through.
    pub fn skip(mut self, n: u32) -> Self {
        self.skip = n;
        self
    }

    pub fn status(mut self, http_status: u16) -> Self {
        self.http_status = http_status;
        self
    }

    pub fn message(mut self, message: &str) -> Self {
        self.message = Some(message.to_owned());
        self
    }

    /// Only calls made by this account.
    pub fn in_account(mut self, account: &str) -> Self {
        self.account = Some(account.to_owned());
        self
    }

    /// Only calls to this region.
    pub fn in_region(mut self, region: &str) -> Self {
        self.region = Some(region.to_owned());
        self
    }

    /// The call is carried out, then answered with the error: the caller
    /// does not learn that its change was made.
    pub fn response_lost(mut self) -> Self {
        self.after = true;
        self
    }

    /// Only calls whose parameter `name` matches the glob `value` (`*`: present at all).
    pub fn matching(mut self, name: &str, value: &str) -> Self {
        self.matches.insert(name.to_owned(), value.to_owned());
        self
    }
}

impl From<ErrorRule> for FaultRule {
    fn from(rule: ErrorRule) -> Self {
        Self::Error(rule)
    }
}

/// One AWS call the emulator received (`GET /_aurora_dr/calls`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CallRecord {
    /// Arrival order, from 1.
    pub seq: u64,
    pub service: String,
    pub operation: String,
    pub account: String,
    pub region: String,
    /// Request parameters (secrets left out, values cut at 256 characters).
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// HTTP status of the answer (`None` for a failed SNS delivery).
    pub status: Option<u16>,
    pub error_code: Option<String>,
    /// Id of the fault rule that answered, if one did.
    #[serde(default)]
    pub fault: Option<u64>,
    /// True when the call took effect although a fault rule answered it
    /// (a `response_lost` rule).
    #[serde(default)]
    pub applied: bool,
}

impl CallRecord {
    /// True when the call got an error answer.
    pub fn failed(&self) -> bool {
        self.status.is_none_or(|s| s >= 400)
    }
}

#[derive(Deserialize)]
struct Rules {
    rules: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Calls {
    calls: Vec<CallRecord>,
}

/// Client of one emulator's control endpoint. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Control {
    authority: String,
}

impl Control {
    /// Control client for the emulator listening on `host:port`.
    pub fn new(authority: impl Into<String>) -> Self {
        Self { authority: authority.into() }
    }

    /// `GET /_aurora_dr/health`: `{"status": "ok", "moto": "5.2.5"}`.
    pub async fn health(&self) -> Result<serde_json::Value, EmulatorError> {
        self.call(Method::GET, "health", None).await
    }

    /// Arms a rule; returns its id (shown in [`CallRecord::fault`]).
    pub async fn arm(&self, rule: impl Into<FaultRule>) -> Result<u64, EmulatorError> {
        let body = to_json(&rule.into())?;
        let armed: Rules = self.call(Method::POST, "faults", Some(body)).await?;
        armed
            .rules
            .first()
            .and_then(|r| r["id"].as_u64())
            .ok_or_else(|| control_error("faults", "no rule id"))
    }

    /// The armed rules with their remaining counts, as JSON.
    pub async fn faults(&self) -> Result<Vec<serde_json::Value>, EmulatorError> {
        let rules: Rules = self.call(Method::GET, "faults", None).await?;
        Ok(rules.rules)
    }

    /// Disarms every rule.
    pub async fn reset_faults(&self) -> Result<(), EmulatorError> {
        self.call::<serde_json::Value>(Method::DELETE, "faults", None).await.map(drop)
    }

    /// Every AWS call received so far, oldest first.
    pub async fn calls(&self) -> Result<Vec<CallRecord>, EmulatorError> {
        let calls: Calls = self.call(Method::GET, "calls", None).await?;
        Ok(calls.calls)
    }

    /// Empties the call log.
    pub async fn clear_calls(&self) -> Result<(), EmulatorError> {
        self.call::<serde_json::Value>(Method::DELETE, "calls", None).await.map(drop)
    }

    /// Current latency.
    pub async fn latency(&self) -> Result<Latency, EmulatorError> {
        self.call(Method::GET, "latency", None).await
    }

    /// Changes the latency of resources created from now on.
    pub async fn set_latency(&self, latency: &Latency) -> Result<(), EmulatorError> {
        let body = to_json(latency)?;
        self.call::<serde_json::Value>(Method::POST, "latency", Some(body)).await.map(drop)
    }

    /// Disarms every rule, empties the call log, restores the start latency.
    pub async fn reset(&self) -> Result<(), EmulatorError> {
        self.call::<serde_json::Value>(Method::POST, "reset", None).await.map(drop)
    }

    /// IAM mode (emulator/iam.py): `{"mode": "enforce"|"audit", "evaluator":
    /// [argv...], "principals": {"<role ARN>": "<function>"}}` switches it
    /// on; the answer is the state `GET /_aurora_dr/iam` gives.
    pub async fn set_iam(&self, config: &serde_json::Value) -> Result<serde_json::Value, EmulatorError> {
        self.call(Method::POST, "iam", Some(to_json(config)?)).await
    }

    /// IAM mode's state: `mode`, `principals`, `decisions`, `unjudged`, `deliveries`.
    pub async fn iam(&self) -> Result<serde_json::Value, EmulatorError> {
        self.call(Method::GET, "iam", None).await
    }

    /// Judges one request that is not an API call (`POST /_aurora_dr/iam/check`).
    pub async fn iam_check(&self, request: &serde_json::Value) -> Result<serde_json::Value, EmulatorError> {
        self.call(Method::POST, "iam/check", Some(to_json(request)?)).await
    }

    /// Judges an API call another local server received (`POST
    /// /_aurora_dr/iam/judge`: `authorization`, `service`, `operation`,
    /// `params`, `region`): `{"allowed": true}`, or `{"allowed": false,
    /// "code", "status", "message"}`, the denial to answer.
    pub async fn iam_judge(&self, request: &serde_json::Value) -> Result<serde_json::Value, EmulatorError> {
        self.call(Method::POST, "iam/judge", Some(to_json(request)?)).await
    }

    /// Switches IAM mode off and forgets its decisions.
    pub async fn iam_off(&self) -> Result<(), EmulatorError> {
        self.call::<serde_json::Value>(Method::DELETE, "iam", None).await.map(drop)
    }

    /// Changes moto's own settings (`POST /moto-api/config`), e.g.
    /// `{"stepfunctions": {"execute_state_machine": true}}` to make moto's
    /// Step Functions run state machines.
    pub async fn moto_config(&self, config: &serde_json::Value) -> Result<(), EmulatorError> {
        let body = to_json(config)?;
        self.request::<serde_json::Value>(Method::POST, "/moto-api/config", Some(body)).await.map(drop)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        route: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, EmulatorError> {
        self.request(method, &format!("/_aurora_dr/{route}"), body).await
    }

    async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, EmulatorError> {
        let fail = |message: String| control_error(path, &message);
        let stream = TcpStream::connect(&self.authority).await.map_err(|e| fail(e.to_string()))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| fail(e.to_string()))?;
        tokio::spawn(connection);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.authority)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| fail(e.to_string()))?;
        let response = sender.send_request(request).await.map_err(|e| fail(e.to_string()))?;
        let status = response.status();
        let bytes = response.into_body().collect().await.map_err(|e| fail(e.to_string()))?.to_bytes();
        if !status.is_success() {
            return Err(fail(format!("HTTP {status}: {}", String::from_utf8_lossy(&bytes))));
        }
        serde_json::from_slice(&bytes).map_err(|e| fail(format!("bad JSON answer: {e}")))
    }
}

fn to_json(value: &impl Serialize) -> Result<Vec<u8>, EmulatorError> {
    serde_json::to_vec(value).map_err(|e| control_error("request", &e.to_string()))
}

fn control_error(path: &str, message: &str) -> EmulatorError {
    EmulatorError::Control { path: path.to_owned(), message: message.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_rule_serialises_to_the_documented_format() {
        let rule: FaultRule =
            FaultRule::throttle("rds", "DescribeDBClusterSnapshots").times(2).in_region("us-west-1").into();
        assert_eq!(
            serde_json::to_value(&rule).unwrap(),
            json!({
                "kind": "error", "service": "rds", "operation": "DescribeDBClusterSnapshots",
                "error_code": "Throttling", "http_status": 400, "message": "Rate exceeded",
                "count": 2, "skip": 0, "region": "us-west-1", "match": {}
            })
        );
    }

    #[test]
    fn special_rules_serialise_with_their_kind() {
        assert_eq!(
            serde_json::to_value(FaultRule::failed_snapshot("snap-x")).unwrap(),
            json!({"kind": "snapshot_status", "id": "snap-x", "status": "failed"})
        );
        assert_eq!(
            serde_json::to_value(FaultRule::copy_quota(5)).unwrap(),
            json!({"kind": "copy_quota", "limit": 5})
        );
    }

    #[test]
    fn rename_failure_matches_renames_only() {
        let rule = FaultRule::rename_fails(Some("prod"));
        assert_eq!(rule.count, Some(1));
        assert_eq!(rule.matches.get("NewDBClusterIdentifier").map(String::as_str), Some("*"));
        assert_eq!(rule.matches.get("DBClusterIdentifier").map(String::as_str), Some("prod"));
    }

    #[test]
    fn latency_round_trips() {
        let latency = Latency {
            copy: Delay::seconds(2.0),
            cluster: Delay::seconds(0.5),
            ..Latency::uniform(Delay::polls(3))
        };
        let text = serde_json::to_string(&latency).unwrap();
        assert_eq!(serde_json::from_str::<Latency>(&text).unwrap(), latency);
    }
}
