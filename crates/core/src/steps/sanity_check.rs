//! SanityCheck (target account, target region): after the temporary
//! cluster and its instances are available, before Swap, probe the
//! temporary cluster through its own endpoint. A failed probe fails the run
//! before anything touches the serving cluster: its failure path
//! (CleanUpTempCluster) removes the temporary cluster or keeps it as
//! configured, and NotifyFailure reports it. Probing before the swap also
//! avoids the renamed endpoint's DNS delay (RDS user guide, "Renaming a DB
//! instance",
//! <https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_RenameInstance.html>:
//! a new name can take about ten minutes to resolve and the old one may stay
//! cached), which would fail a probe of the existing name, or let it reach
//! the old cluster and pass falsely.
//!
//! Input: the [`RunState`] after WaitForSwappedCluster. Output: a
//! [`SanityReport`] (the state machine discards it with `ResultPath: null`;
//! it stays in the execution history and the log).
//!
//! Without `SANITY_SECRET_ARN` the step makes no call and reports
//! `"status": "skipped"` (logged, with a warning when probes are configured
//! without a secret). Otherwise:
//! 1. `DescribeDBClusters` of the payload's `restoredClusterId`: the cluster
//!    must carry this run's tags (anything else is a `Conflict`, nothing
//!    probed) and be `available`
//!    (`ResourceNotReady` otherwise). Where the probes connect comes from the
//!    context's [`ProbeTarget`]: deployed, the writer endpoint and port
//!    RDS reports ([`probe::WriterEndpoint`]).
//! 2. `GetSecretValue` of the secret: JSON with `username` and `password`
//!    (and `dbname`, used when `SANITY_DATABASE` is unset), as RDS writes
//!    its secrets. A secret of another shape is `InvalidConfig`; its content
//!    never reaches a log or an error.
//! 3. The probes of [`crate::probe`]: connectivity, `SANITY_QUERY`,
//!    `SANITY_MIN_ROWS`, and `SANITY_FRESHNESS` against `snapshotCreatedAt`
//!    (the recovery point; `createdAt` when the payload lacks it) and
//!    `SANITY_RPO_SECONDS`.
//!
//! Errors, each message listing every probe's result:
//! - `SanityCheckUnreachable` (retryable; the state machine tries once more
//!   after 30 s) when no connection could be opened;
//! - `SanityCheckFailed` (fatal) when the server answered and a probe
//!   failed: wrong data, or a refused login, database or query;
//! - `Conflict`, `NotFound`, `ResourceNotReady`, `InvalidConfig`,
//!   `InvalidInput`, and the classified SDK errors.
//!
//! Idempotency: the step only reads (the probe session is read-only), so a
//! retry repeats the same checks.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::context::StepContext;
use crate::error::{DrError, DrResult};
use crate::payload::{RunState, need};
use crate::probe::{self, DbEngine, Login, Plan, ProbeResult, ProbeTarget};
use crate::rds;
use crate::settings::{TargetSettings, keys};
use crate::steps::input::{self, InputKind};

/// The state this module serves.
pub const STATE: &str = "SanityCheck";

const STEP: &str = "sanity_check";

/// What the step found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SanityReport {
    /// `passed` or `skipped` (a failure is an error, not a report).
    pub status: String,
    pub cluster_id: String,
    /// `host:port` probed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<ProbeResult>,
    /// Why the step did not probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The login fields of an RDS-style secret.
#[derive(Deserialize)]
struct SecretLogin {
    username: String,
    password: String,
    #[serde(default)]
    dbname: Option<String>,
}

/// Probes the run's temporary cluster, where `target` says it listens.
pub async fn run(
    rds_client: &aws_sdk_rds::Client,
    secrets: &aws_sdk_secretsmanager::Client,
    target: &dyn ProbeTarget,
    settings: &TargetSettings,
    run: &RunState,
) -> DrResult<SanityReport> {
    input::no_failure(run, STATE)?;
    let sanity = &settings.sanity;
    let temp = need(&run.restored_cluster_id, "restoredClusterId")?;
    let Some(secret_arn) = &sanity.secret_arn else {
        let configured = sanity.query.is_some() || !sanity.min_rows.is_empty() || sanity.freshness.is_some();
        let reason = if configured {
            tracing::warn!(step = STEP, run_id = %run.run_id, cluster = %temp,
                "probes are configured but SANITY_SECRET_ARN is not set: sanity check skipped");
            "probes are configured but SANITY_SECRET_ARN is not set"
        } else {
            tracing::info!(step = STEP, run_id = %run.run_id, cluster = %temp,
                "SANITY_SECRET_ARN is not set: sanity check skipped");
            "SANITY_SECRET_ARN is not set"
        };
        return Ok(SanityReport {
            status: "skipped".into(),
            cluster_id: temp.to_string(),
            endpoint: None,
            probes: Vec::new(),
            reason: Some(reason.into()),
        });
    };
    let engine = DbEngine::from_rds(&settings.engine).ok_or_else(|| DrError::InvalidConfig {
        name: keys::ENGINE.env.into(),
        problem: format!("the sanity check has no driver for engine {}", settings.engine),
    })?;

    // The run's temporary cluster, and where it listens under its own name.
    let cluster = rds::find_cluster(rds_client, temp.as_str())
        .await?
        .ok_or_else(|| DrError::NotFound(format!("no temporary cluster {temp} to probe")))?;
    if !rds::is_from_run(cluster.tag_list(), run) {
        let owner = rds::tag_value(cluster.tag_list(), rds::TAG_RUN_ID).unwrap_or("none");
        return Err(DrError::Conflict(format!(
            "cluster {temp} is not the one run {} restored (its aurora-dr:run-id tag: {owner}); \
             nothing was probed",
            run.run_id
        )));
    }
    rds::require_ready(&format!("cluster {temp}"), cluster.status().unwrap_or("unknown"))?;
    let probe::HostPort { host, port } = target.endpoint(&cluster, engine).ok_or_else(|| {
        DrError::not_ready(format!("writer endpoint of cluster {temp}"), "not yet published")
    })?;

    let login = read_secret(secrets, secret_arn.as_str()).await?;
    let login = Login {
        engine,
        host,
        port,
        user: login.username,
        password: login.password,
        database: sanity.database.clone().or(login.dbname),
        tls: sanity.tls.clone(),
        timeout: Duration::from_secs(u64::from(sanity.timeout_seconds)),
    };
    let plan = Plan {
        query: sanity.query.clone(),
        min_rows: sanity.min_rows.clone(),
        freshness: sanity.freshness.clone(),
        rpo: Duration::from_secs(u64::from(sanity.rpo_seconds.unwrap_or(0))),
        recovery_point: run.snapshot_created_at.unwrap_or(run.created_at),
    };
    let endpoint = format!("{}:{}", login.host, login.port);
    tracing::info!(step = STEP, run_id = %run.run_id, cluster = %temp, endpoint = %endpoint,
        tls = login.tls.name(), "probing the temporary cluster before the swap");
    let results = probe::run(&login, &plan).await;
    for r in &results {
        if r.ok {
            tracing::info!(step = STEP, run_id = %run.run_id, cluster = %temp, probe = %r.probe, detail = %r.detail, "probe passed");
        } else {
            tracing::error!(step = STEP, run_id = %run.run_id, cluster = %temp, probe = %r.probe, detail = %r.detail, "probe failed");
        }
    }
    if results.iter().all(|r| r.ok) {
        Ok(SanityReport {
            status: "passed".into(),
            cluster_id: temp.to_string(),
            endpoint: Some(endpoint),
            probes: results,
            reason: None,
        })
    } else {
        let cluster = format!("{temp} ({endpoint})");
        let listed = results.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
        if probe::unreachable(&results) {
            Err(DrError::SanityCheckUnreachable { cluster, results: listed })
        } else {
            Err(DrError::SanityCheckFailed { cluster, results: listed })
        }
    }
}

/// The login of the secret, naming the problem without its content.
async fn read_secret(secrets: &aws_sdk_secretsmanager::Client, arn: &str) -> DrResult<SecretLogin> {
    let out = secrets
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| DrError::from_sdk(&format!("GetSecretValue {arn}"), e))?;
    let bad = |problem: &str| DrError::InvalidConfig {
        name: keys::SANITY_SECRET_ARN.env.into(),
        problem: format!("secret {arn} {problem}"),
    };
    let text = out.secret_string().ok_or_else(|| bad("has no SecretString"))?;
    let login: SecretLogin = serde_json::from_str(text)
        .map_err(|_| bad("is not a JSON object with string fields username and password"))?;
    if login.username.is_empty() {
        return Err(bad("has an empty username"));
    }
    Ok(login)
}

/// Lambda / local-engine entry: RunState in, [`SanityReport`] out.
pub async fn handle(ctx: Arc<StepContext>, input: Value) -> DrResult<Value> {
    input::expect(&input, InputKind::Run, STATE)?;
    let run = RunState::from_value(input)?;
    // Many clusters: the names of the payload's source cluster's pair.
    let source = run.source_cluster_id.as_ref().map(|c| c.as_str());
    let settings = &ctx.target()?.for_run(source, run.is_restore_test())?;
    let aws = ctx.aws.in_region(&settings.region);
    let report =
        self::run(&aws.rds(), &aws.secretsmanager(), ctx.probe_target.as_ref(), settings, &run).await?;
    Ok(serde_json::to_value(report)?)
}

#[cfg(test)]
mod tests {
    use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput;
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use aws_smithy_types::retry::RetryConfig;

    use super::*;
    use crate::probe::WriterEndpoint;
    use crate::settings::Reader;
    use crate::steps::target_support::*;

    const SECRET: &str = "arn:aws:secretsmanager:us-west-1:222222222222:secret:aurora-dr-sanity-AbCdEf";

    fn secrets(rules: &[&Rule]) -> aws_sdk_secretsmanager::Client {
        mock_client!(aws_sdk_secretsmanager, RuleMode::MatchAny, rules, |c| c
            .retry_config(RetryConfig::disabled()))
    }

    fn secret_value(text: &'static str) -> Rule {
        mock!(aws_sdk_secretsmanager::Client::get_secret_value)
            .match_requests(|r| r.secret_id() == Some(SECRET))
            .then_output(move || GetSecretValueOutput::builder().secret_string(text).build())
    }

    fn read(extra: &[(&str, &str)]) -> (Option<TargetSettings>, Vec<crate::settings::SettingError>) {
        let mut pairs: Vec<(&str, &str)> = crate::settings::tests::TARGET_ENV.to_vec();
        pairs.extend_from_slice(extra);
        let origin = crate::settings::tests::env(&pairs);
        let mut r = Reader::new(&origin);
        let s = TargetSettings::read(&mut r);
        (s, r.into_errors())
    }

    /// Probes connect to `endpoint` whatever RDS reports (as a local drill's do).
    #[derive(Debug)]
    struct Fixed(probe::HostPort);

    impl ProbeTarget for Fixed {
        fn endpoint(&self, _: &aws_sdk_rds::types::DbCluster, _: DbEngine) -> Option<probe::HostPort> {
            Some(self.0.clone())
        }
    }

    fn fixed(endpoint: &str) -> Fixed {
        Fixed(endpoint.parse().expect("host:port"))
    }

    fn with_sanity(extra: &[(&str, &str)]) -> TargetSettings {
        let (s, errors) = read(extra);
        assert!(errors.is_empty(), "{errors:?}");
        s.expect("settings")
    }

    /// The payload after RestoreInstance: the temporary cluster is named.
    fn restored_run() -> RunState {
        let mut run = target_run();
        run.restored_cluster_id = Some(T.parse().expect("cluster id"));
        run
    }

    /// A port on loopback that nothing listens on.
    fn closed_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
    }

    #[tokio::test]
    async fn without_a_secret_the_step_is_a_no_op_that_reports_skipped() {
        // Clients without rules: any call would fail the test.
        let report = run(&rds(&[]), &secrets(&[]), &WriterEndpoint, &settings(), &restored_run())
            .await
            .expect("skipped");
        assert_eq!(report.status, "skipped");
        assert_eq!(report.reason.as_deref(), Some("SANITY_SECRET_ARN is not set"));
        assert!(report.probes.is_empty());

        let configured = with_sanity(&[("SANITY_QUERY", "SELECT 1")]);
        let report = run(&rds(&[]), &secrets(&[]), &WriterEndpoint, &configured, &restored_run())
            .await
            .expect("skipped");
        assert_eq!(report.status, "skipped");
        assert!(report.reason.as_deref().is_some_and(|r| r.contains("probes are configured")), "{report:?}");
    }

    #[tokio::test]
    async fn a_payload_without_the_temporary_cluster_is_invalid_input() {
        let settings = with_sanity(&[("SANITY_SECRET_ARN", SECRET)]);
        let err = run(&rds(&[]), &secrets(&[]), &WriterEndpoint, &settings, &target_run())
            .await
            .expect_err("no temporary cluster");
        assert_eq!(err.asl_name(), "InvalidInput", "{err}");
        assert!(err.to_string().contains("restoredClusterId"), "{err}");
    }

    #[tokio::test]
    async fn a_cluster_not_from_this_run_is_not_probed() {
        let run_state = restored_run();
        let settings = with_sanity(&[("SANITY_SECRET_ARN", SECRET)]);
        let describe = describe_cluster(T, Some(cluster(T, "available", earlier_run(), &[TI])));
        let secret = secret_value(r#"{"username":"u","password":"p"}"#);
        let err = run(&rds(&[&describe]), &secrets(&[&secret]), &WriterEndpoint, &settings, &run_state)
            .await
            .expect_err("conflict");
        assert_eq!(err.asl_name(), "Conflict", "{err}");
        assert_eq!(secret.num_calls(), 0, "the secret is not read");

        let describe = describe_cluster(T, None);
        let err = run(&rds(&[&describe]), &secrets(&[&secret]), &WriterEndpoint, &settings, &run_state)
            .await
            .expect_err("not found");
        assert_eq!(err.asl_name(), "NotFound", "{err}");

        let describe = describe_cluster(T, Some(cluster(T, "renaming", ours(&run_state), &[TI])));
        let err = run(&rds(&[&describe]), &secrets(&[&secret]), &WriterEndpoint, &settings, &run_state)
            .await
            .expect_err("not ready");
        assert_eq!(err.asl_name(), "ResourceNotReady", "{err}");
    }

    /// A Secrets Manager error response (awsJson 1.1).
    fn secrets_fault(code: &'static str) -> Rule {
        mock!(aws_sdk_secretsmanager::Client::get_secret_value).then_http_response(move || {
            let body = format!("{{\"__type\":\"{code}\",\"message\":\"mocked {code}\"}}");
            crate::steps::test_support::http_response(400, body)
        })
    }

    #[tokio::test]
    async fn aws_errors_are_classified() {
        let run_state = restored_run();
        let settings = with_sanity(&[("SANITY_SECRET_ARN", SECRET)]);
        let throttled_describe =
            mock!(aws_sdk_rds::Client::describe_db_clusters).then_http_response(throttled);
        let err = run(&rds(&[&throttled_describe]), &secrets(&[]), &WriterEndpoint, &settings, &run_state)
            .await
            .expect_err("throttled");
        assert_eq!(err.asl_name(), "Throttled", "{err}");
        assert!(err.is_retryable());

        let describe = describe_cluster(T, Some(cluster(T, "available", ours(&run_state), &[TI])));
        for (code, want) in
            [("ResourceNotFoundException", "NotFound"), ("AccessDeniedException", "AccessDenied")]
        {
            let secret = secrets_fault(code);
            let target = fixed("127.0.0.1:1");
            let err = run(&rds(&[&describe]), &secrets(&[&secret]), &target, &settings, &run_state)
                .await
                .expect_err(code);
            assert_eq!(err.asl_name(), want, "{code}: {err}");
        }
    }

    #[tokio::test]
    async fn a_malformed_secret_is_invalid_config_without_its_content() {
        let run_state = restored_run();
        let settings = with_sanity(&[("SANITY_SECRET_ARN", SECRET)]);
        let describe = describe_cluster(T, Some(cluster(T, "available", ours(&run_state), &[TI])));
        let secret = secret_value(r#"{"user":"u","pass":"s3cr3t-value"}"#);
        let err = run(&rds(&[&describe]), &secrets(&[&secret]), &fixed("127.0.0.1:1"), &settings, &run_state)
            .await
            .expect_err("invalid secret");
        assert_eq!(err.asl_name(), "InvalidConfig", "{err}");
        assert!(err.to_string().contains("username and password"), "{err}");
        assert!(!err.to_string().contains("s3cr3t-value"), "{err}");
    }

    #[tokio::test]
    async fn no_connection_is_sanity_check_unreachable_with_every_result() {
        let run_state = restored_run();
        let port = closed_port();
        let endpoint = format!("127.0.0.1:{port}");
        let settings = with_sanity(&[
            ("SANITY_SECRET_ARN", SECRET),
            ("SANITY_TLS", "disable"),
            ("SANITY_MIN_ROWS", "orders=1"),
        ]);
        let describe = describe_cluster(T, Some(cluster(T, "available", ours(&run_state), &[TI])));
        let secret = secret_value(r#"{"username":"dr_probe","password":"pw"}"#);
        let err = run(&rds(&[&describe]), &secrets(&[&secret]), &fixed(&endpoint), &settings, &run_state)
            .await
            .expect_err("probe fails");
        assert_eq!(err.asl_name(), "SanityCheckUnreachable", "{err}");
        assert!(err.is_retryable(), "a just-renamed endpoint may answer a moment later");
        let text = err.to_string();
        assert!(text.contains(&format!("orders-dr-next ({endpoint})")), "{text}");
        assert!(text.contains("connectivity FAILED"), "{text}");
        assert!(text.contains("minRows(orders) FAILED: not run: no connection"), "{text}");
        assert!(!text.contains("\"pw\""), "{text}");
    }

    #[tokio::test]
    async fn the_writer_endpoint_and_port_come_from_rds() {
        // No override: the step connects to the endpoint RDS reports, on its port.
        let run_state = restored_run();
        let port = closed_port();
        let settings = with_sanity(&[("SANITY_SECRET_ARN", SECRET), ("SANITY_TLS", "disable")]);
        let described = aws_sdk_rds::types::DbCluster::builder()
            .db_cluster_identifier(T)
            .status("available")
            .endpoint("127.0.0.1")
            .port(i32::from(port))
            .set_tag_list(Some(ours(&run_state)))
            .build();
        let describe = describe_cluster(T, Some(described));
        let secret = secret_value(r#"{"username":"dr_probe","password":"pw"}"#);
        let err = run(&rds(&[&describe]), &secrets(&[&secret]), &WriterEndpoint, &settings, &run_state)
            .await
            .expect_err("nothing listens there");
        assert_eq!(err.asl_name(), "SanityCheckUnreachable", "{err}");
        assert!(err.to_string().contains(&format!("127.0.0.1:{port}")), "{err}");
    }
}
