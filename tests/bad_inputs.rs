//! The bad-input suite, table-driven: configuration and environment values,
//! SNS messages to InvokeStepFunction and state payloads reaching every
//! handler. Each bad input must be rejected with a named error that names the
//! field, before any AWS call (configuration), with nothing started (SNS), or
//! with no AWS mutation (payloads).
//!
//! `cargo test -p aurora-dr-tests --test bad_inputs -- --nocapture` prints
//! every case with what it produced.

use std::collections::BTreeMap;
use std::sync::Arc;

use aurora_dr_asl::{Clock, Definition, Engine, StateMachineSpec};
use aurora_dr_cli::config::Config;
use aurora_dr_cli::drill::setup;
use aurora_dr_core::DrError;
use aurora_dr_core::clients::{AwsContext, ClientOptions};
use aurora_dr_core::context::{SideSettings, StepContext};
use aurora_dr_core::settings::Origin;
use aurora_dr_core::steps::{self, Handler, InputKind, Side};
use aurora_dr_tests::{CONFIG, DrillEnv, task_states};
use serde_json::{Value, json};

const SRC: &str = "111111111111";
const TGT: &str = "222222222222";

/// The example configuration with `key` of `[section]` set to `value` (a
/// TOML literal; `None` removes the line), or added when absent.
fn config_with(section: &str, key: &str, value: Option<&str>) -> String {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut done = false;
    for line in CONFIG.lines() {
        if line.starts_with('[') {
            if current == section && !done {
                if let Some(v) = value {
                    out.push(format!("{key} = {v}"));
                }
                done = true;
            }
            current = line.trim_matches(|c| c == '[' || c == ']').to_owned();
        }
        if current == section && line.split('=').next().map(str::trim) == Some(key) {
            if let Some(v) = value {
                out.push(format!("{key} = {v}"));
            }
            done = true;
            continue;
        }
        out.push(line.to_owned());
    }
    if !done && let Some(v) = value {
        out.push(format!("{key} = {v}"));
    }
    out.join("\n") + "\n"
}

fn q(s: &str) -> String {
    format!("{s:?}")
}

/// (case, section, key, TOML value, the key the error must name).
fn config_cases() -> Vec<(String, &'static str, &'static str, String, &'static str)> {
    let mut cases = Vec::new();
    let mut id = |label: &str, section: &'static str, key: &'static str, value: &str| {
        let name: &'static str = Box::leak(format!("{section}.{key}").into_boxed_str());
        cases.push((format!("{name} {label}"), section, key, q(value), name));
    };
    let long = "a".repeat(64);
    for (label, value) in [
        ("empty", ""),
        ("64 characters", long.as_str()),
        ("leading digit", "1orders"),
        ("trailing hyphen", "orders-"),
        ("double hyphen", "ord--ers"),
        ("underscore", "ord_ers"),
        ("unicode", "ordérs"),
    ] {
        id(label, "source", "cluster_id", value);
    }
    id("64 characters", "target", "existing_cluster_id", &long);
    id("leading digit", "target", "existing_cluster_id", "9-dr");
    id("underscore", "target", "temp_cluster_id", "orders_dr_next");
    id("double hyphen", "target", "existing_instance_id", "orders--dr-1");
    id("trailing hyphen", "target", "temp_instance_id", "orders-dr-next-");
    id("unicode", "target", "temp_instance_id", "orders-dr-nëxt-1");
    id("underscore", "source", "snapshot_prefix", "aurora_dr");
    for section in ["source", "target"] {
        for (label, value) in
            [("11 digits", "11111111111"), ("13 digits", "1111111111111"), ("letters", "11111111111a")]
        {
            id(label, section, "account_id", value);
        }
    }
    id("no number", "source", "region", "us-west");
    id("upper case", "source", "region", "US-WEST-2");
    id("no hyphens", "target", "region", "uswest1");
    id("empty", "target", "region", "");
    for (label, value) in [
        ("not an ARN", "not-an-arn"),
        ("alias instead of key", "arn:aws:kms:us-west-1:111111111111:alias/aurora-dr"),
        ("wrong service", "arn:aws:sns:us-west-1:111111111111:key/abc"),
        ("short account in ARN", "arn:aws:kms:us-west-1:1111:key/abc"),
        ("unknown partition", "arn:aws-mars:kms:us-west-1:111111111111:key/abc"),
        ("key in the source region, not the target region", "arn:aws:kms:us-west-2:111111111111:key/abc"),
        ("key of another account", "arn:aws:kms:us-west-1:333333333333:key/abc"),
    ] {
        id(label, "source", "kms_key_arn", value);
    }
    id("not an SNS topic", "source", "notification_topic_arn", "arn:aws:sqs:us-west-2:111111111111:q");
    id("ARN with whitespace", "source", "failure_topic_arn", "arn:aws:sns:us-west-2:111111111111:a b");
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_is_rejected_before_any_aws_call_naming_the_field() {
    let env = DrillEnv::start(CONFIG).await;
    let mut cases = config_cases();
    // Source and target in the same account and region.
    let same = config_with("target", "account_id", Some(&q(SRC)));
    let same = same.replace("region = \"us-west-1\"", "region = \"us-west-2\"");
    let mut texts: Vec<(String, String, &'static str)> = cases
        .drain(..)
        .map(|(label, section, key, value, name)| (label, config_with(section, key, Some(&value)), name))
        .collect();
    texts.push(("source = target account and region".into(), same, "target.region"));
    texts.push(("required key missing".into(), config_with("target", "engine", None), "target.engine"));
    texts.push(("unknown key".into(), config_with("target", "colour", Some("\"blue\"")), "target.colour"));
    let mut problems = Vec::new();
    println!("\nconfiguration ({} cases):", texts.len());
    for (label, text, name) in &texts {
        match Config::parse(text) {
            Ok(_) => problems.push(format!("{label}: accepted")),
            Err(errors) => {
                let named = errors.iter().find(|e| e.name == *name);
                println!(
                    "  {label:<55} -> {}",
                    named.map_or_else(|| format!("{errors:?}"), |e| format!("{}: {}", e.name, e.problem))
                );
                if named.is_none() {
                    problems.push(format!("{label}: no error names {name}: {errors:?}"));
                }
            }
        }
        // The command refuses it (exit 2) before touching the emulator.
        std::fs::write(&env.config_path, text).expect("write");
        let code = aurora_dr_cli::drill::run(env.args(1)).await;
        if format!("{code:?}") != format!("{:?}", std::process::ExitCode::from(2)) {
            problems.push(format!("{label}: drill exit {code:?}, want 2"));
        }
    }
    let calls = env.emulator.control().calls().await.expect("calls");
    assert!(calls.is_empty(), "no AWS call may happen: {calls:?}");
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(texts.len() >= 35, "{} configuration cases", texts.len());
}

fn env_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[test]
fn bad_environment_is_rejected_at_start_up_naming_the_variable() {
    let source = [
        ("SIDE", "source"),
        ("SOURCE_ACCOUNT_ID", SRC),
        ("SOURCE_REGION", "us-west-2"),
        ("SOURCE_CLUSTER_ID", "orders"),
        ("TARGET_ACCOUNT_ID", TGT),
        ("TARGET_REGION", "us-west-1"),
        ("KMS_KEY_ARN", "arn:aws:kms:us-west-1:111111111111:key/0f0e0d0c-0000-4000-8000-000000000001"),
    ];
    let target = [
        ("SIDE", "target"),
        ("TARGET_ACCOUNT_ID", TGT),
        ("TARGET_REGION", "us-west-1"),
        ("SOURCE_ACCOUNT_ID", SRC),
        ("ENGINE", "aurora-postgresql"),
        ("DB_INSTANCE_CLASS", "db.r6g.large"),
        ("EXISTING_CLUSTER_ID", "orders-dr"),
        ("TEMP_CLUSTER_ID", "orders-dr-next"),
        ("EXISTING_INSTANCE_ID", "orders-dr-1"),
        ("TEMP_INSTANCE_ID", "orders-dr-next-1"),
        ("TARGET_KMS_KEY_ARN", "arn:aws:kms:us-west-1:222222222222:key/1111aaaa-0000-4000-8000-000000000002"),
    ];
    for base in [&source[..], &target[..]] {
        SideSettings::from_origin(&Origin::Env(env_map(base))).expect("the base environment is valid");
    }
    type Env<'a> = &'a [(&'a str, &'a str)];
    let cases: Vec<(&str, Env, &str, &str)> = vec![
        ("SIDE unknown", &source, "SIDE", "sideways"),
        ("source cluster id leading digit", &source, "SOURCE_CLUSTER_ID", "1orders"),
        ("target account 11 digits", &source, "TARGET_ACCOUNT_ID", "22222222222"),
        ("KMS key in the wrong region", &source, "KMS_KEY_ARN", "arn:aws:kms:eu-west-1:111111111111:key/abc"),
        ("KMS key missing", &source, "KMS_KEY_ARN", ""),
        ("existing cluster id with --", &target, "EXISTING_CLUSTER_ID", "orders--dr"),
        ("target region malformed", &target, "TARGET_REGION", "us_west_1"),
        (
            "temp instance 64 characters",
            &target,
            "TEMP_INSTANCE_ID",
            &*Box::leak("b".repeat(64).into_boxed_str()),
        ),
        ("deletion protection not a flag", &target, "DELETION_PROTECTION", "maybe"),
        ("instance count zero", &target, "DB_INSTANCE_COUNT", "0"),
        ("target key missing", &target, "TARGET_KMS_KEY_ARN", ""),
        (
            "target key of the source account",
            &target,
            "TARGET_KMS_KEY_ARN",
            "arn:aws:kms:us-west-1:111111111111:key/k",
        ),
        ("own copy not a flag", &target, "TARGET_OWN_COPY", "sometimes"),
    ];
    let mut problems = Vec::new();
    println!("\nenvironment ({} cases):", cases.len());
    for (label, base, var, value) in &cases {
        let mut map = env_map(base);
        map.insert((*var).to_owned(), (*value).to_owned());
        match SideSettings::from_origin(&Origin::Env(map)) {
            Ok(_) => problems.push(format!("{label}: accepted")),
            Err(e) => {
                println!("  {label:<40} -> {e}");
                if !e.0.iter().any(|p| p.name == *var) {
                    problems.push(format!("{label}: does not name {var}: {e}"));
                }
                let as_dr: DrError = e.into();
                if as_dr.asl_name() != "InvalidConfig" {
                    problems.push(format!("{label}: {}", as_dr.asl_name()));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// A target-side context whose Step Functions API is a local engine with
/// the target machine registered (no AWS needed: InvokeStepFunction calls
/// only Step Functions).
async fn target_with_engine() -> (Arc<StepContext>, Engine, tokio::task::JoinHandle<()>) {
    let config = Config::parse(CONFIG).expect("config");
    let engine = Engine::with_account(Clock::real(), "us-west-1", TGT);
    let arn = format!("arn:aws:states:us-west-1:{TGT}:stateMachine:aurora-dr-target");
    let def = Definition::parse(r#"{"StartAt": "S", "States": {"S": {"Type": "Succeed"}}}"#).expect("def");
    engine.register(StateMachineSpec::new("aurora-dr-target", def).arn(arn.clone())).expect("register");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let server_engine = engine.clone();
    let server = tokio::spawn(async move {
        let _ = aurora_dr_asl::serve(listener, server_engine).await;
    });
    let mut settings = config.target.clone();
    settings.source_topic_arn = Some(topic().parse().expect("arn"));
    settings.state_machine_arn = Some(arn.parse().expect("arn"));
    let options = ClientOptions::in_region(settings.region.clone())
        .with_static_credentials("aurora-dr-local", "aurora-dr-local")
        .with_sfn_endpoint(Some(url));
    let aws = AwsContext::load(&options).await;
    (Arc::new(StepContext::new(aws, SideSettings::Target(settings))), engine, server)
}

fn topic() -> String {
    format!("arn:aws:sns:us-west-2:{SRC}:{}", setup::SNAPSHOT_TOPIC)
}

fn good_message() -> Value {
    let id = "aurora-dr-orders-20260102000000";
    json!({
        "version": 1, "runId": "run-1", "createdAt": "2026-01-02T00:00:00Z",
        "sourceAccountId": SRC, "sourceRegion": "us-west-2", "sourceClusterId": "orders",
        "sourceSnapshotId": id, "engine": "aurora-postgresql", "targetAccountId": TGT,
        "targetRegion": "us-west-1", "targetSnapshotId": id,
        "targetSnapshotArn": format!("arn:aws:rds:us-west-1:{SRC}:cluster-snapshot:{id}"),
        "kmsKeyArn": format!("arn:aws:kms:us-west-1:{SRC}:key/0f0e0d0c-0000-4000-8000-000000000001"),
    })
}

fn sns_event(records: &[(&str, String)]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .enumerate()
        .map(|(i, (topic, message))| {
            json!({"EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": format!("{topic}:s"),
                "Sns": {"Type": "Notification", "MessageId": format!("m-{i}"), "TopicArn": topic, "Subject": null,
                    "Message": message, "Timestamp": "2026-01-02T00:00:01Z", "SignatureVersion": "1",
                    "Signature": "", "SigningCertUrl": "", "UnsubscribeUrl": "", "MessageAttributes": {}}})
        })
        .collect();
    json!({"Records": records})
}

fn with(key: &str, v: Value) -> String {
    let mut m = good_message();
    m[key] = v;
    m.to_string()
}

fn without(key: &str) -> String {
    let mut m = good_message();
    m.as_object_mut().expect("object").remove(key);
    m.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sns_messages_are_rejected_with_a_named_error_and_start_nothing() {
    let (ctx, engine, server) = target_with_engine().await;
    let t = topic();
    let good = good_message().to_string();
    let id = "aurora-dr-orders-20260102000000";
    let other_topic = format!("arn:aws:sns:us-west-2:{SRC}:someone-elses-topic");
    let foreign_topic = format!("arn:aws:sns:us-west-2:333333333333:{}", setup::SNAPSHOT_TOPIC);
    let cases: Vec<(&str, Value, &str)> = vec![
        ("message not JSON", sns_event(&[(&t, "{not json".into())]), "InvalidInput"),
        ("message a JSON string", sns_event(&[(&t, "\"hello\"".into())]), "InvalidInput"),
        ("version 2", sns_event(&[(&t, with("version", json!(2)))]), "InvalidInput"),
        ("version as a string", sns_event(&[(&t, with("version", json!("1")))]), "InvalidInput"),
        ("no version", sns_event(&[(&t, without("version"))]), "InvalidInput"),
        ("missing targetSnapshotArn", sns_event(&[(&t, without("targetSnapshotArn"))]), "InvalidInput"),
        ("missing runId", sns_event(&[(&t, without("runId"))]), "InvalidInput"),
        ("mistyped createdAt", sns_event(&[(&t, with("createdAt", json!(20260102)))]), "InvalidInput"),
        ("extra field", sns_event(&[(&t, with("restoreNow", json!(true)))]), "InvalidInput"),
        ("invalid cluster id", sns_event(&[(&t, with("sourceClusterId", json!("1--x")))]), "InvalidInput"),
        ("another topic of the source account", sns_event(&[(&other_topic, good.clone())]), "AccessDenied"),
        ("the topic name in another account", sns_event(&[(&foreign_topic, good.clone())]), "AccessDenied"),
        ("topic not an ARN", sns_event(&[("aurora-dr-snapshots", good.clone())]), "AccessDenied"),
        (
            "declared source account not the configured one",
            sns_event(&[(&t, {
                let mut m = good_message();
                m["sourceAccountId"] = json!("333333333333");
                m["targetSnapshotArn"] =
                    json!(format!("arn:aws:rds:us-west-1:333333333333:cluster-snapshot:{id}"));
                m["kmsKeyArn"] = json!("arn:aws:kms:us-west-1:333333333333:key/abc");
                m.to_string()
            })]),
            "AccessDenied",
        ),
        (
            "for another target account",
            sns_event(&[(&t, with("targetAccountId", json!("333333333333")))]),
            "AccessDenied",
        ),
        (
            "snapshot ARN of another account than declared",
            sns_event(&[(
                &t,
                with(
                    "targetSnapshotArn",
                    json!(format!("arn:aws:rds:us-west-1:333333333333:cluster-snapshot:{id}")),
                ),
            )]),
            "InvalidInput",
        ),
        (
            "snapshot ARN in another region than declared",
            sns_event(&[(
                &t,
                with(
                    "targetSnapshotArn",
                    json!(format!("arn:aws:rds:eu-west-1:{SRC}:cluster-snapshot:{id}")),
                ),
            )]),
            "InvalidInput",
        ),
        (
            "for another region (consistent ARN)",
            sns_event(&[(&t, {
                let mut m = good_message();
                m["targetRegion"] = json!("eu-west-1");
                m["targetSnapshotArn"] = json!(format!("arn:aws:rds:eu-west-1:{SRC}:cluster-snapshot:{id}"));
                m.to_string()
            })]),
            "InvalidInput",
        ),
        ("oversize message", sns_event(&[(&t, with("engine", json!("x".repeat(20_000))))]), "InvalidInput"),
        ("not an SNS event", json!({"detail-type": "Scheduled Event"}), "InvalidInput"),
        ("no records", json!({"Records": []}), "InvalidInput"),
        (
            "one good and one bad record",
            sns_event(&[(&t, good.clone()), (&other_topic, good.clone())]),
            "AccessDenied",
        ),
    ];
    let mut problems = Vec::new();
    println!("\nSNS messages ({} cases):", cases.len());
    for (label, event, want) in &cases {
        match steps::invoke_step_function::handle(Arc::clone(&ctx), event.clone()).await {
            Ok(v) => problems.push(format!("{label}: accepted: {v}")),
            Err(e) => {
                let text = e.to_string();
                println!("  {label:<50} -> {}: {}", e.asl_name(), text.chars().take(140).collect::<String>());
                if e.asl_name() != *want {
                    problems.push(format!("{label}: {} ({e}), want {want}", e.asl_name()));
                }
            }
        }
    }
    let started = engine.executions(None);
    server.abort();
    assert!(
        started.is_empty(),
        "nothing may start: {:?}",
        started.iter().map(|x| x.name().to_owned()).collect::<Vec<_>>()
    );
    assert!(problems.is_empty(), "{problems:#?}");
    // The good message is accepted by the same context: the rejections are about the inputs.
    let (ctx, engine, server) = target_with_engine().await;
    steps::invoke_step_function::handle(ctx, sns_event(&[(&t, good)])).await.expect("a good message starts");
    assert_eq!(engine.executions(None).len(), 1);
    server.abort();
}

/// The handler of a function of the table, by its crate name.
fn handler(name: &str) -> Handler {
    steps::function(name).unwrap_or_else(|| panic!("{name} is not in FUNCTIONS")).handler
}

fn valid_run() -> Value {
    json!({"runId": "run-1", "createdAt": "2026-01-02T00:00:00Z", "sourceClusterId": "orders"})
}

/// The payload variants: missing, extra and mistyped fields.
fn bad_payloads() -> Vec<(&'static str, Value)> {
    let mut missing = valid_run();
    missing.as_object_mut().expect("object").remove("createdAt");
    let mut extra = valid_run();
    extra["restoreNow"] = json!(true);
    let mut mistyped = valid_run();
    mistyped["runId"] = json!(42);
    let mut invalid = valid_run();
    invalid["sourceClusterId"] = json!("orders--x");
    vec![
        ("missing createdAt", missing),
        ("extra field", extra),
        ("mistyped runId", mistyped),
        ("invalid cluster id", invalid),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_state_payloads_reach_every_handler_as_invalid_input_with_no_mutation() {
    let env = DrillEnv::start(CONFIG).await;
    let c = &env.config;
    let url = env.emulator.url();
    let source_aws = setup::account_context(url, &c.source.account_id, &c.source.region, None).await;
    let target_aws = setup::account_context(url, &c.target.account_id, &c.target.region, None).await;
    let mut source_settings = c.source.clone();
    source_settings.notification_topic_arn = Some(topic().parse().expect("arn"));
    let source = Arc::new(StepContext::new(source_aws, SideSettings::Source(source_settings)));
    let target = Arc::new(StepContext::new(target_aws, SideSettings::Target(c.target.clone())));

    // Every Task state of both machines that takes the run payload, bound
    // through the one table, its input shaped by the state's own Parameters.
    // (The failure path's functions read any failure payload loosely, by design.)
    let mut cases: Vec<(String, &Arc<StepContext>, Handler, Value)> = Vec::new();
    for side in [Side::Source, Side::Target] {
        let ctx = if side == Side::Source { &source } else { &target };
        for task in task_states(side) {
            let function = steps::function_for(side, &task.name).expect("every Task state has a function");
            if function.input == InputKind::FailurePath {
                continue;
            }
            for (label, payload) in bad_payloads() {
                cases.push((
                    format!("{side} {}: {label}", task.name),
                    ctx,
                    function.handler,
                    task.input_for(&payload),
                ));
            }
        }
    }
    cases.push((
        "FetchStatus: unknown waitFor".into(),
        &source,
        handler("fetch-status"),
        json!({"waitFor": "everything", "run": valid_run()}),
    ));
    cases.push((
        "FetchStatus: no run".into(),
        &target,
        handler("fetch-status"),
        json!({"waitFor": "tempCluster"}),
    ));
    cases.push((
        "FetchStatus: extra key".into(),
        &target,
        handler("fetch-status"),
        json!({"waitFor": "tempCluster", "run": valid_run(), "x": 1}),
    ));
    cases.push(("Restore: payload not an object".into(), &target, handler("restore"), json!(["run-1"])));
    cases.push(("CreateSnapshot: null payload".into(), &source, handler("create-snapshot"), Value::Null));

    let mut problems = Vec::new();
    println!("\nstate payloads ({} cases):", cases.len());
    for (label, ctx, h, input) in &cases {
        match h(Arc::clone(ctx), input.clone()).await {
            Ok(v) => problems.push(format!("{label}: accepted: {v}")),
            Err(e) => {
                println!(
                    "  {label:<45} -> {}: {}",
                    e.asl_name(),
                    e.to_string().chars().take(110).collect::<String>()
                );
                if e.asl_name() != "InvalidInput" {
                    problems.push(format!("{label}: {} ({e})", e.asl_name()));
                }
            }
        }
    }
    let calls = env.emulator.control().calls().await.expect("calls");
    let mutations: Vec<String> = calls
        .iter()
        .filter(|x| {
            !(x.operation.starts_with("Describe")
                || x.operation.starts_with("List")
                || x.operation.starts_with("Get")
                || x.operation == "AssumeRole")
        })
        .map(|x| format!("{} {}", x.service, x.operation))
        .collect();
    assert!(mutations.is_empty(), "bad payloads caused AWS mutations: {mutations:?}");
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(cases.len() >= 50, "{} payload cases", cases.len());
}
