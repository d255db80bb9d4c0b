//! `aurora-dr rehearse`: the templates deployed into the local emulator and
//! the drill run on that wiring, every AWS call judged under IAM.
//!
//! 1. renders and deploys the kms, source and target stacks as `sam deploy
//!    --config-env kms|source|target` would (`tools/rehearse/deploy.py`
//!    through the infrastructure venv; its read-back is [`Deployment`]);
//! 2. seeds what the accounts already hold: the production cluster, the DR
//!    cluster a previous run left, older snapshots for retention to prune
//!    (with the set-up's own, unjudged credentials);
//! 3. switches IAM mode on for every deployed function role and runs the
//!    drill ([`crate::drill`]) wired from the deployment
//!    ([`wiring::deployed_wiring`]): a run that replaces the DR cluster, a
//!    run whose Share fails (CleanUpCopy, the source's NotifyFailure), and a
//!    run whose new cluster fails after the swap (RollBackSwap,
//!    CleanUpTempCluster, the target's NotifyFailure);
//! 4. hands the decisions to the judge (`tools/rehearse/rehearse.py judge`):
//!    `DENIED <function> <action> <resource>: <reason>` lines, the refusals
//!    the policies must make, the least-privilege report, and with
//!    `--self-test` each used Allow statement removed in turn.
//!
//! Exit status: 0 when no call was denied, the runs ended as planned (each
//! side's status, and run 1's copy still serving under the existing names
//! after every run) and
//! (with `--self-test`) every removal was caught; 1 otherwise; 2 for a bad
//! configuration.

pub mod deployment;
pub mod wiring;

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Instant;

use aurora_dr_asl::{Clock, Engine, Status};
use aurora_dr_core::DrError;
use aurora_dr_core::rds::{MANAGED_BY, TAG_MANAGED_BY, TAG_RUN_ID, TAG_SOURCE_CLUSTER};
use aurora_dr_emulator::{Control, Delay, Emulator, EmulatorConfig, FaultRule, Latency};
use aws_sdk_rds::types::Tag;
use serde_json::{Value, json};

use crate::config::Config;
use crate::drill::{self, Recorder, Wiring, setup};
pub use deployment::Deployment;

#[derive(Debug, clap::Args)]
pub struct RehearseArgs {
    /// The drill configuration the stacks' parameters derive from (tools/rehearse/params.toml).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Where template.yaml, infra/ and statemachines/ are (default: the repository).
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Print one JSON document (deployment, runs, decisions, report) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also remove each used Allow statement in turn and expect a denial naming its action.
    #[arg(long)]
    pub self_test: bool,
    /// Use a running emulator (started with MOTO_IAM_LOAD_MANAGED_POLICIES=true) instead of starting one.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Directory for deployment.json, the judge's report and the timeline (default: target/aurora-dr/rehearse).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Runs the rehearsal.
pub async fn run(args: RehearseArgs) -> ExitCode {
    let config = match Config::load_one_target(&args.config, "rehearse") {
        Ok(c) => c,
        Err(errors) => {
            eprint!("{errors}");
            return ExitCode::from(2);
        }
    };
    match rehearse(&args, &config).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("rehearsal failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The repository's tools: the infrastructure venv's Python and the judge.
struct Tools {
    root: PathBuf,
    python: PathBuf,
}

impl Tools {
    fn find() -> Result<Self, String> {
        let root = aurora_dr_emulator::repo_root();
        let venv = std::env::var_os("INFRA_VENV").map_or_else(|| root.join(".venv-infra"), PathBuf::from);
        let venv = if venv.is_absolute() { venv } else { root.join(venv) };
        let python = venv.join("bin").join("python");
        if !python.exists() {
            return Err(format!(
                "no infrastructure tools at {} (the SAM translator renders the stacks): run `make infra-tools`",
                venv.display()
            ));
        }
        if !root.join("node_modules/@cloud-copilot/iam-simulate").exists() {
            return Err("no IAM evaluator in node_modules: run `make infra-tools`".into());
        }
        Ok(Self { root, python })
    }

    fn script(&self, name: &str) -> PathBuf {
        self.root.join("tools").join("rehearse").join(name)
    }

    /// Runs a tool, its output on stderr when stdout is the JSON document.
    async fn run(&self, script: &str, args: &[&std::ffi::OsStr], quiet: bool) -> Result<bool, String> {
        let mut command = tokio::process::Command::new(&self.python);
        command.arg(self.script(script)).args(args).current_dir(&self.root).kill_on_drop(true);
        if quiet {
            command.stdout(Stdio::from(std::io::stderr()));
        }
        let status = command.status().await.map_err(|e| format!("{script}: {e}"))?;
        Ok(status.success())
    }
}

async fn rehearse(args: &RehearseArgs, config: &Config) -> Result<bool, String> {
    let tools = Tools::find()?;
    let out = args.out.clone().unwrap_or_else(|| tools.root.join("target/aurora-dr/rehearse"));
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let rec = Recorder::new(args.json);
    let started = Instant::now();
    rec.line(&format!("aurora-dr rehearse: {}", args.config.display()));

    let mut emulator = None;
    let endpoint = match &args.endpoint {
        Some(url) => url.clone(),
        None => {
            // AWS's managed policies (AWSLambdaBasicExecutionRole) exist in
            // IAM, so the roles SAM writes attach them.
            // A restore, a new instance and a rename end by the clock, so
            // RDS's events of their ends (and of an instance failing after
            // its rename) reach CompleteWait through the deployed rule while
            // WaitForTempCluster, WaitForTempInstances and
            // WaitForSwappedCluster wait (the callback waits' fallback
            // re-check: 3 s at the rehearsal's time scale). Each ends a second
            // after its call, long after its wait armed: the waits end by the
            // events, never by FetchStatus's own check (the template says so
            // of FetchStatus's grants for that path).
            let latency = Latency {
                restore: Delay::seconds(1.0),
                instance: Delay::seconds(1.0),
                rename: Delay::seconds(1.0),
                ..Latency::uniform(Delay::polls(1))
            };
            let config = EmulatorConfig::default()
                .with_latency(latency)
                .with_env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true");
            let started = Emulator::start(config).await.map_err(|e| format!("emulator: {e}"))?;
            let url = started.url().to_owned();
            emulator = Some(started);
            url
        }
    };
    rec.line(&format!("  emulator  {endpoint}"));
    let result = rehearse_on(args, config, &tools, &out, &rec, &endpoint).await;
    if let Some(emulator) = emulator {
        let _ = emulator.stop().await;
    }
    let ok = result?;
    rec.line(&format!(
        "rehearsal: {} in {:.1} s",
        if ok { "passed" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    ));
    Ok(ok)
}

async fn rehearse_on(
    args: &RehearseArgs,
    config: &Config,
    tools: &Tools,
    out: &Path,
    rec: &Recorder,
    endpoint: &str,
) -> Result<bool, String> {
    let control = Control::new(endpoint.trim_start_matches("http://").to_owned());
    let templates = args.templates.clone().unwrap_or_else(|| tools.root.clone());
    let dep_path = out.join("deployment.json");
    let deployed = tools
        .run(
            "deploy.py",
            &[
                "--endpoint".as_ref(),
                endpoint.as_ref(),
                "--config".as_ref(),
                args.config.as_os_str(),
                "--templates".as_ref(),
                templates.as_os_str(),
                "--out".as_ref(),
                dep_path.as_os_str(),
            ],
            args.json,
        )
        .await?;
    if !deployed {
        return Err("the stacks did not deploy (see above)".into());
    }
    let text = std::fs::read_to_string(&dep_path).map_err(|e| format!("{}: {e}", dep_path.display()))?;
    let dep: Deployment = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", dep_path.display()))?;

    seed(config, &dep, endpoint, rec).await?;

    // The engines: waits scaled down as the drill does; the target machine's
    // API judged under IAM.
    let clock = Clock::scaled(0.01).map_err(|e| e.to_string())?.with_real_timeouts();
    let target = dep.stack("target")?;
    let target_engine = Engine::with_account(clock, target.region.clone(), target.account.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let sfn_url = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
    let router = wiring::judged_router(target_engine.clone(), control.clone());
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let result = async {
        let facts = wiring::setup_context(endpoint, &target.account, &target.region).await?;
        let wiring =
            wiring::deployed_wiring(&dep, endpoint, &control, clock, target_engine, &sfn_url, facts).await?;
        let principals: serde_json::Map<String, Value> =
            dep.functions.values().map(|f| (f.role.clone(), json!(f.logical_id))).collect();
        let invoke = dep.function("target", "InvokeStepFunctionFunction")?;
        let evaluator = tools.script("evaluator.mjs");
        control
            .set_iam(&json!({
                "mode": "enforce",
                "evaluator": ["node", evaluator],
                "principals": principals,
                "invokers": {invoke.arn.clone(): wiring.receiver.url.clone()},
            }))
            .await
            .map_err(|e| format!("IAM mode: {e}"))?;
        let checks = service_checks(&dep);
        for check in &checks {
            control.iam_check(check).await.map_err(|e| format!("IAM check: {e}"))?;
        }
        rec.line(&format!("  iam       on for {} roles; {} service checks", principals.len(), checks.len()));
        let (_, source_machine) = dep.machine("source")?;
        runs(config, &wiring, &control, rec, &source_machine.role).await
    }
    .await;
    server.abort();
    let planned = result?;

    let mut judge_args: Vec<&std::ffi::OsStr> = vec![
        "judge".as_ref(),
        "--endpoint".as_ref(),
        endpoint.as_ref(),
        "--deployment".as_ref(),
        dep_path.as_os_str(),
        "--templates".as_ref(),
        templates.as_os_str(),
    ];
    if args.self_test {
        judge_args.push("--self-test".as_ref());
    }
    let report_path = out.join("report.json");
    judge_args.extend(["--json".as_ref(), report_path.as_os_str()]);
    let judged = tools.run("rehearse.py", &judge_args, args.json).await?;
    let _ = control.iam_off().await;
    if args.json {
        let report: Value = std::fs::read_to_string(&report_path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        let doc = json!({"runs": planned.runs, "runsAsPlanned": planned.ok, "judge": report});
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    }
    Ok(planned.ok && judged)
}

/// What the runs did, against the plan.
struct Planned {
    ok: bool,
    runs: Vec<Value>,
}

/// The four runs: one that replaces the DR cluster, one whose Share fails,
/// one whose source snapshot fails, one whose new cluster fails after the
/// swap; then a restore test. Each must end as planned.
async fn runs(
    config: &Config,
    wiring: &Wiring,
    control: &Control,
    rec: &Recorder,
    source_role: &str,
) -> Result<Planned, String> {
    let existing_instance = config.target.existing_instance_id.to_string();
    let (src, prefix) = (&config.source, &config.source.snapshot_prefix);
    let this_runs_snapshots = format!("{prefix}-{}-*", src.cluster_id);
    let plan: [(&str, Option<FaultRule>, Status, Option<Status>); 4] = [
        ("replaces the DR cluster", None, Status::Succeeded, Some(Status::Succeeded)),
        (
            "Share fails: CleanUpCopy, NotifyFailure",
            Some(
                FaultRule::error("rds", "ModifyDBClusterSnapshotAttribute", "SharedSnapshotQuotaExceeded")
                    .times(1)
                    .into(),
            ),
            Status::Failed,
            None,
        ),
        (
            "the source snapshot fails: CleanUpCopy deletes it, NotifyFailure",
            Some(FaultRule::snapshot_status_in(
                &this_runs_snapshots,
                "failed",
                src.account_id.as_str(),
                src.region.as_str(),
            )),
            Status::Failed,
            None,
        ),
        (
            "the new cluster fails after the swap: RollBackSwap, CleanUpTempCluster, NotifyFailure",
            Some(FaultRule::instance_status(&existing_instance, "failed", 0, Some(1))),
            Status::Succeeded,
            Some(Status::Failed),
        ),
    ];
    let mut outcomes = Vec::new();
    let mut all = true;
    let mut judged_children = std::collections::HashSet::new();
    let mut first_copy = None;
    let total = plan.len();
    for (i, (what, fault, want_source, want_target)) in plan.into_iter().enumerate() {
        let n = i + 1;
        rec.line(&format!("run {n}: {what}"));
        if let Some(rule) = fault {
            control.arm(rule).await.map_err(|e| format!("fault: {e}"))?;
        }
        let outcome = drill::run_once(wiring, config, rec, n, total).await?;
        control.reset_faults().await.map_err(|e| format!("faults: {e}"))?;
        judge_child_executions(wiring, control, source_role, &mut judged_children).await?;
        let (source, target) = outcome.statuses();
        let mut ok = source == want_source && target == want_target;
        if n == 1 {
            ok &= under_the_target_key(wiring, config, rec).await;
        }
        // Run 1 restored the DR cluster; the failed runs after it (a
        // rolled-back swap included) must leave run 1's copy serving.
        let serves = serving_run(wiring, config).await;
        if n == 1 {
            first_copy = serves.clone();
        }
        let same = serves.is_some() && serves == first_copy;
        rec.line(&format!(
            "  serving   {} serves {}: {}",
            config.target.existing_cluster_id,
            serves.as_deref().unwrap_or("nothing complete"),
            if same { "run 1's copy" } else { "NOT run 1's copy" }
        ));
        ok &= same;
        all &= ok;
        rec.line(&format!(
            "run {n}: {} (planned: source {}, target {})",
            if ok { "as planned" } else { "NOT as planned" },
            want_source.as_str(),
            want_target.map_or("not started", Status::as_str),
        ));
        outcomes.push(json!({"run": n, "plan": what, "asPlanned": ok, "outcome": outcome.to_json()}));
    }
    // Then a restore test (the target machine with {"mode": "restore-test"}):
    // FindSnapshot's role and the test cluster's grants, judged like the rest.
    let n = total + 1;
    rec.line(&format!("run {n}: a restore test: FindSnapshot, the test cluster restored and removed"));
    let test = drill::restore_test::run(wiring, config, rec, control, n).await?;
    let ok = test.ok();
    all &= ok;
    rec.line(&format!(
        "run {n}: {} (planned: restore test SUCCEEDED, test cluster removed, serving cluster untouched)",
        if ok { "as planned" } else { "NOT as planned" }
    ));
    outcomes.push(json!({"run": n, "plan": "restore test", "asPlanned": ok, "outcome": test.to_json()}));
    Ok(Planned { ok: all, runs: outcomes })
}

/// The run whose copy serves under the existing names (the cluster's
/// run-id tag), when the cluster is there with the existing writer instance
/// in it and that instance is not `failed`.
async fn serving_run(wiring: &Wiring, config: &Config) -> Option<String> {
    use aurora_dr_core::rds;
    let client = wiring.target_ctx.aws.rds();
    let id = config.target.existing_cluster_id.as_str();
    let cluster = rds::find_cluster(&client, id).await.ok()??;
    let instance = rds::find_instance(&client, config.target.existing_instance_id.as_str()).await.ok()??;
    let complete = instance.db_cluster_identifier().is_some_and(|c| c.eq_ignore_ascii_case(id))
        && instance.db_instance_status() != Some("failed");
    complete.then(|| rds::tag_value(cluster.tag_list(), rds::TAG_RUN_ID).map(str::to_owned))?
}

/// The DR cluster a run restored is under the target stack's key (its
/// `TargetKMSKeyArn` output), never the source account's.
async fn under_the_target_key(wiring: &Wiring, config: &Config, rec: &Recorder) -> bool {
    let id = config.target.existing_cluster_id.as_str();
    let key = match aurora_dr_core::rds::find_cluster(&wiring.target_ctx.aws.rds(), id).await {
        Ok(Some(cluster)) => cluster.kms_key_id().map(str::to_owned),
        _ => None,
    };
    let ok = key.is_some() && key == wiring.target_kms_key;
    rec.line(&format!(
        "  key       DR cluster {id} under {}: {}",
        key.as_deref().unwrap_or("no key"),
        if ok { "the target stack's key" } else { "NOT the target stack's key" }
    ));
    ok
}

/// The source machine's Distributed Maps start, watch and stop their child
/// executions with the machine's role ("IAM policies for using Distributed
/// Map states",
/// https://docs.aws.amazon.com/step-functions/latest/dg/iam-policies-eg-dist-map.html):
/// states:StartExecution on the machine itself and states:DescribeExecution
/// (states:StopExecution for a child a Map Run stopped) on each child. The
/// local engine starts children itself, so each child is judged once the
/// run is over; a denial is a DENIED line of the judge like any other.
async fn judge_child_executions(
    wiring: &Wiring,
    control: &Control,
    role: &str,
    judged: &mut std::collections::HashSet<String>,
) -> Result<(), String> {
    for child in wiring.source_engine.executions(None) {
        if child.map_run_arn().is_none() || !judged.insert(child.arn().to_owned()) {
            continue;
        }
        let mut actions = vec![
            ("states:StartExecution", wiring.source_machine_arn.as_str()),
            ("states:DescribeExecution", child.arn()),
        ];
        if child.status() == Status::Aborted {
            actions.push(("states:StopExecution", child.arn()));
        }
        for (action, resource) in actions {
            control
                .iam_check(&json!({
                    "function": "SourceStateMachine", "principal": role, "action": action,
                    "resource": resource, "operation": format!("(service) {action} (Distributed Map child)"),
                }))
                .await
                .map_err(|e| format!("IAM check: {e}"))?;
        }
    }
    Ok(())
}

/// What the accounts hold before the first run (with the set-up's own,
/// unjudged credentials): the production cluster, the DR cluster a previous
/// run left under the existing names, and older snapshots of earlier runs
/// in both regions for retention to prune.
async fn seed(config: &Config, dep: &Deployment, endpoint: &str, rec: &Recorder) -> Result<(), String> {
    let err = |e: DrError| e.to_string();
    let (src, tgt) = (&config.source, &config.target);
    let source = setup::account_context(endpoint, &src.account_id, &src.region, None).await;
    for step in setup::seed_source_clusters(&source, config).await.map_err(err)? {
        rec.line(&format!("  seed      {}", step.what));
    }
    let tags = |run: &str| {
        [(TAG_MANAGED_BY, MANAGED_BY), (TAG_SOURCE_CLUSTER, src.cluster_id.as_str()), (TAG_RUN_ID, run)]
            .into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect::<Vec<_>>()
    };
    // Earlier runs' snapshots and copies: one more than retention keeps.
    let rds = source.rds();
    let target_rds = source.in_region(&tgt.region).rds();
    let key = dep.stack("source")?.parameter("KMSKey").unwrap_or_default();
    let prefix = &src.snapshot_prefix;
    for day in 1..=src.retention.snapshots {
        let id = format!("{prefix}-{}-202001{day:02}000000", src.cluster_id);
        let run = format!("earlier-run-{day}");
        rds.create_db_cluster_snapshot()
            .db_cluster_identifier(src.cluster_id.as_str())
            .db_cluster_snapshot_identifier(&id)
            .set_tags(Some(tags(&run)))
            .send()
            .await
            .map_err(|e| DrError::from_sdk(&format!("seed snapshot {id}"), e).to_string())?;
        available(&rds, &id).await?;
        let arn = format!("arn:aws:rds:{}:{}:cluster-snapshot:{id}", src.region, src.account_id);
        target_rds
            .copy_db_cluster_snapshot()
            .source_db_cluster_snapshot_identifier(arn)
            .target_db_cluster_snapshot_identifier(&id)
            .kms_key_id(&key)
            .copy_tags(true)
            .send()
            .await
            .map_err(|e| DrError::from_sdk(&format!("seed copy {id}"), e).to_string())?;
        available(&target_rds, &id).await?;
    }
    rec.line(&format!("  seed      {} earlier snapshots and copies", src.retention.snapshots));
    // The DR cluster of a previous run under the existing names.
    let target = setup::account_context(endpoint, &tgt.account_id, &tgt.region, None).await;
    let trds = target.rds();
    let previous = "earlier-run-dr";
    trds.create_db_cluster()
        .db_cluster_identifier(tgt.existing_cluster_id.as_str())
        .engine(&tgt.engine)
        .master_username("dr_admin")
        .master_user_password("Rehearsal-Only-1")
        .set_tags(Some(tags(previous)))
        .send()
        .await
        .map_err(|e| DrError::from_sdk("seed DR cluster", e).to_string())?;
    trds.create_db_instance()
        .db_instance_identifier(tgt.existing_instance_id.as_str())
        .db_cluster_identifier(tgt.existing_cluster_id.as_str())
        .engine(&tgt.engine)
        .db_instance_class(&tgt.instance_class)
        .set_tags(Some(tags(previous)))
        .send()
        .await
        .map_err(|e| DrError::from_sdk("seed DR instance", e).to_string())?;
    rec.line(&format!("  seed      DR cluster {} of an earlier run", tgt.existing_cluster_id));
    Ok(())
}

/// Polls a seeded snapshot until it is available (the emulator keeps one in
/// progress for a number of polls).
async fn available(rds: &aws_sdk_rds::Client, id: &str) -> Result<(), String> {
    for _ in 0..20 {
        let snap =
            aurora_dr_core::rds::find_cluster_snapshot(rds, id, false).await.map_err(|e| e.to_string())?;
        if snap.as_ref().and_then(|s| s.status()) == Some("available") {
            return Ok(());
        }
    }
    Err(format!("seeded snapshot {id} never became available"))
}

/// What services do with the deployed resources' own policies, judged once
/// (the Task invocations and SNS's delivery are judged as they happen):
/// Lambda, Step Functions and EventBridge assuming their roles, the
/// functions' log writes, the schedule starting the source machine, the
/// cross-account subscription CloudFormation makes with the target
/// deployer's credentials, InvokeStepFunction's on-failure destination.
fn service_checks(dep: &Deployment) -> Vec<Value> {
    let mut checks = Vec::new();
    let check = |function: &str, principal: &str, action: &str, resource: &str| {
        json!({"function": function, "principal": principal, "action": action, "resource": resource,
               "operation": format!("(service) {action}")})
    };
    for f in dep.functions.values() {
        let mut trust = check(&f.logical_id, "lambda.amazonaws.com", "sts:AssumeRole", &f.role);
        trust["policy"] = "role-trust".into();
        checks.push(trust);
        // The Lambda runtime writes the function's logs with its role ("Lambda
        // execution role": https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html).
        let name = f.log_group.clone().unwrap_or_else(|| format!("/aws/lambda/{}", f.name()));
        let group = format!("arn:aws:logs:{}:{}:log-group:{name}", f.region(), f.account());
        for action in ["logs:CreateLogStream", "logs:PutLogEvents"] {
            checks.push(check(
                &f.logical_id,
                &f.role,
                action,
                &format!("{group}:log-stream:2026/01/01/[$LATEST]0"),
            ));
        }
    }
    for m in dep.state_machines.values() {
        let mut trust = check(&m.logical_id, "states.amazonaws.com", "sts:AssumeRole", &m.role);
        trust["policy"] = "role-trust".into();
        checks.push(trust);
    }
    if let (Ok(source), Some(role)) =
        (dep.stack("source"), dep.role("source", "SourceStateMachineScheduleRole"))
    {
        let mut trust =
            check("SourceStateMachineScheduleRole", "events.amazonaws.com", "sts:AssumeRole", role);
        trust["policy"] = "role-trust".into();
        checks.push(trust);
        if let Some(machine) = source.outputs.get("SourceStateMachineArn") {
            checks.push(check("SourceStateMachineScheduleRole", role, "states:StartExecution", machine));
        }
    }
    if let (Ok(target), Ok(invoke)) =
        (dep.stack("target"), dep.function("target", "InvokeStepFunctionFunction"))
    {
        if let Some(topic) = target.parameter("SourceTopicArn").as_ref() {
            // CloudFormation subscribes with the target deployer's credentials
            // (an administrator here): the topic policy must admit it.
            let deployer = format!("arn:aws:iam::{}:role/aurora-dr-deployer", target.account);
            let mut sub = check("SourceTopicSubscription", &deployer, "sns:Subscribe", topic);
            sub["policy"] = "sns-topic".into();
            // aws:PrincipalAccount is in every request's context (the topic
            // policy's endpoint pattern names it as a policy variable).
            sub["context"] = json!({"sns:Protocol": "lambda", "sns:Endpoint": invoke.arn,
                                    "aws:SecureTransport": "true", "aws:PrincipalAccount": target.account});
            sub["identityPolicies"] = json!([{"name": "administrator", "policy": {"Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}}]);
            checks.push(sub);
        }
        // InvokeStepFunction's on-failure destination: Lambda publishes with
        // the function's execution role ("Retaining records of asynchronous
        // invocations": https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html).
        if let Some(topic) = target.outputs.get("FailureTopicArn") {
            let mut publish = check(&invoke.logical_id, &invoke.role, "sns:Publish", topic);
            publish["policy"] = "sns-topic".into();
            publish["context"] = json!({"aws:SecureTransport": "true"});
            checks.push(publish);
            // The topic is encrypted: SNS uses its key with the same role
            // ("Key management": https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html),
            // as IAM mode judges a Publish call (emulator/iam_actions.py).
            if let Some(key) = dep.key("target", "StackKey") {
                for action in ["kms:GenerateDataKey", "kms:Decrypt"] {
                    let mut use_key = check(&invoke.logical_id, &invoke.role, action, key);
                    use_key["policy"] = "kms-key".into();
                    use_key["context"] = json!({"kms:ViaService": format!("sns.{}.amazonaws.com", target.region),
                                                "kms:CallerAccount": target.account});
                    checks.push(use_key);
                }
            }
        }
    }
    checks
}
