//! Client of the emulator's control endpoint (`/_aurora_dr/...`): fault
//! rules, latency, strictness and quotas, endpoint name resolution, the URLs
//! standing in for Lambda functions as EventBridge targets, the RDS events
//! sent, and the call log. The JSON format is in `emulator/README.md`.

use std::collections::BTreeMap;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, header};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tokio::net::TcpStream;

use crate::EmulatorError;
use crate::faults::FaultRule;
use crate::latency::Latency;
use crate::strict::{Quotas, Strictness};

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

/// What an endpoint hostname reaches now (`GET /_aurora_dr/resolve`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Resolved {
    /// `cluster` (writer endpoint), `cluster-reader` or `instance`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The resource's identifier now (it may have been renamed since).
    pub identifier: String,
    /// `DbClusterResourceId` or `DbiResourceId`: stays the same across renames.
    pub resource_id: String,
    pub arn: String,
    pub account: String,
    pub region: String,
    pub status: String,
}

#[derive(Deserialize)]
struct Resolution {
    resource: Option<Resolved>,
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

    /// Which RDS rules are enforced now.
    pub async fn strictness(&self) -> Result<Strictness, EmulatorError> {
        self.call(Method::GET, "strict", None).await
    }

    /// Turns RDS rules on or off from now on.
    pub async fn set_strictness(&self, strictness: &Strictness) -> Result<(), EmulatorError> {
        let body = to_json(strictness)?;
        self.call::<serde_json::Value>(Method::POST, "strict", Some(body)).await.map(drop)
    }

    /// The quotas in force.
    pub async fn quotas(&self) -> Result<Quotas, EmulatorError> {
        self.call(Method::GET, "quotas", None).await
    }

    /// Changes the quotas.
    pub async fn set_quotas(&self, quotas: &Quotas) -> Result<(), EmulatorError> {
        let body = to_json(quotas)?;
        self.call::<serde_json::Value>(Method::POST, "quotas", Some(body)).await.map(drop)
    }

    /// The resource an endpoint hostname reaches now, or `None` when the name
    /// resolves to nothing. After a rename the new name reaches the renamed
    /// resource only after the `dns` delay and the old one keeps reaching it
    /// for the `dns_cache` delay, as RDS DNS does; each call counts as one
    /// poll of that name for poll-based delays.
    pub async fn resolve(&self, host: &str) -> Result<Option<Resolved>, EmulatorError> {
        let path = format!("resolve?host={}", encode_query(host));
        let answer: Resolution = self.call(Method::GET, &path, None).await?;
        Ok(answer.resource)
    }

    /// Sets the allocated storage (GiB) that sizes the durations of a
    /// cluster's snapshots, their copies and restores (Aurora reports none).
    pub async fn set_cluster_storage(
        &self,
        account: &str,
        region: &str,
        cluster: &str,
        gib: f64,
    ) -> Result<(), EmulatorError> {
        let body = to_json(&serde_json::json!({
            "account": account, "region": region, "cluster": cluster, "gib": gib
        }))?;
        self.call::<serde_json::Value>(Method::POST, "storage", Some(body)).await.map(drop)
    }

    /// Disarms every rule, empties the call log, restores the start latency,
    /// strictness and quotas.
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

    /// Registers http URLs that stand in for Lambda functions (`POST
    /// /_aurora_dr/lambda-endpoints`): an EventBridge rule's target with one
    /// of these function ARNs gets the event POSTed there, asynchronously,
    /// retried on a non-2xx answer. Merged into those registered before; IAM
    /// mode on or off.
    pub async fn set_lambda_endpoints(
        &self,
        endpoints: &BTreeMap<String, String>,
    ) -> Result<(), EmulatorError> {
        let body = to_json(endpoints)?;
        self.call::<serde_json::Value>(Method::POST, "lambda-endpoints", Some(body)).await.map(drop)
    }

    /// Deliveries to Lambda targets so far, oldest first: `rule`, `target`,
    /// `event` (the document sent), `url` (`null`: none registered),
    /// `decision` (IAM mode's, else `null`), `attempts`, `status`.
    pub async fn lambda_deliveries(&self) -> Result<Vec<serde_json::Value>, EmulatorError> {
        let state: serde_json::Value = self.call(Method::GET, "lambda-endpoints", None).await?;
        Ok(state["deliveries"].as_array().cloned().unwrap_or_default())
    }

    /// RDS events emitted so far, oldest first: `event` (as EventBridge
    /// delivers it), `fate` (`sent`, `lost` or `delayed`) and the `fault`
    /// rule's id when one took it.
    pub async fn rds_events(&self) -> Result<Vec<serde_json::Value>, EmulatorError> {
        let log: serde_json::Value = self.call(Method::GET, "rds-events", None).await?;
        Ok(log["events"].as_array().cloned().unwrap_or_default())
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

/// Percent-encodes a query value (hostnames need little, but be safe).
fn encode_query(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn control_error(path: &str, message: &str) -> EmulatorError {
    EmulatorError::Control { path: path.to_owned(), message: message.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolutions_parse_with_and_without_a_resource() {
        let found: Resolution = serde_json::from_str(
            r#"{"host": "prod.cluster-x.us-west-1.rds.amazonaws.com", "resource": {"type": "cluster",
                "identifier": "prod-old", "resource_id": "cluster-ABC", "arn": "arn:aws:rds:us-west-1:1:cluster:prod-old",
                "account": "1", "region": "us-west-1", "status": "renaming"}}"#,
        )
        .unwrap();
        let resource = found.resource.unwrap();
        assert_eq!((resource.kind.as_str(), resource.identifier.as_str()), ("cluster", "prod-old"));
        let none: Resolution = serde_json::from_str(r#"{"host": "x", "resource": null}"#).unwrap();
        assert!(none.resource.is_none());
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode_query("a.b-c_d"), "a.b-c_d");
        assert_eq!(encode_query("a b&c"), "a%20b%26c");
    }
}
