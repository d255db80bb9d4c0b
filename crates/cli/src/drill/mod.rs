//! `aurora-dr drill`: the whole pipeline, both accounts and both regions,
//! offline.
//!
//! The drill starts (or uses) the local AWS emulator, creates what the two
//! stacks would (KMS key, topics, subscription; with `--seed` a demo source
//! cluster), and runs `statemachines/source.asl.json` and
//! `statemachines/target.asl.json` on the local Step Functions engine with
//! the same step functions the Lambdas run. The source side acts with the
//! source account's credentials in the source region, the target side with
//! the target account's in the target region. Notify publishes to SNS; the
//! emulator delivers to the receiver the target account subscribed, whose
//! InvokeStepFunction step starts the target machine through the Step
//! Functions API of the local engine.
//!
//! Many DR targets (`[[targets]]`): one source run, then each target's own
//! workflow on its own engine, receiver and subscription ([`targets`]).
//!
//! One drill, two wirings: [`execute`] wires both sides as the drill creates
//! them (one context per side, the machines from `statemachines/`), and
//! `aurora-dr rehearse` wires them from a deployment of the templates (each
//! Task with its deployed function's environment and role, the deployed
//! definitions). Both hand a [`Wiring`] to the same runs ([`run_once`]) and
//! the same report ([`finish`]).

pub mod events;
pub(crate) mod fleet;
pub mod phases;
pub(crate) mod receiver;
pub(crate) mod report;
pub mod restore_test;
pub mod setup;
pub(crate) mod targets;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use aurora_dr_asl::{
    Clock, Definition, Engine, Execution, StartOptions, StateMachineSpec, Status, Substitutions, TaskError,
    TaskRegistry,
};
use aurora_dr_core::context::{Side, SideSettings, StepContext};
use aurora_dr_core::ids::{AccountId, Region};
use aurora_dr_core::probe::{DbEngine, HostPort, ProbeTarget};
use aurora_dr_core::resolve::{EndpointResolver, Reach};
use aurora_dr_core::steps;
use aurora_dr_core::{DrError, DrResult};
use aurora_dr_emulator::{Control, Emulator, EmulatorConfig, Latency};
use aws_sdk_rds::types::DbCluster;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use crate::config::Config;
pub(crate) use report::Recorder;
pub use report::Span;

/// The state machine files, as deployed.
const SOURCE_ASL: &str = include_str!("../../../../statemachines/source.asl.json");
const TARGET_ASL: &str = include_str!("../../../../statemachines/target.asl.json");

#[derive(Debug, clap::Args)]
pub struct DrillArgs {
    /// The TOML configuration (see examples/drill.toml; with `[[targets]]`,
    /// examples/multi-target.toml, every DR target is drilled: one source
    /// run, then each target's own workflow, reported per target).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Use a running emulator instead of starting one.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Create a demo source cluster when it is missing.
    #[arg(long)]
    pub seed: bool,
    /// Print one machine-readable JSON report at the end instead of progress lines.
    #[arg(long)]
    pub json: bool,
    /// Multiply every Wait and Retry interval, and every duration of
    /// --durations, by this factor (1 = real time; 0.001 runs a real-world
    /// hour in 3.6 seconds).
    #[arg(long, value_name = "F", default_value_t = 0.001)]
    pub time_scale: f64,
    /// Run the pipeline this many times in a row (the second run replaces the
    /// first run's DR cluster: swap and terminate). With --restore-test, 0
    /// runs only the test, against what the emulator of --endpoint holds.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub runs: usize,
    /// After the runs, a restore test: the target machine started with
    /// {"mode": "restore-test"}, as the RestoreTestSchedule starts it. It
    /// restores the newest snapshot the target may restore into a test
    /// cluster of its own ({temp_cluster_id}-test), runs the SanityCheck on
    /// it, reports RPO (the snapshot's age) and time to restore, deletes it,
    /// and never renames, modifies or deletes the serving cluster; the drill
    /// checks that (same resource id, name and instances, no call changing
    /// it). The runs before it (default 1; --runs 0 for none, with
    /// --endpoint) make the serving cluster and the snapshot. One target
    /// only: a file with `[[targets]]` is refused (exit 2).
    #[arg(long)]
    pub restore_test: bool,
    /// Where to write the HTML timeline (default: target/aurora-dr/drill-<time>.html);
    /// with many targets one per target, named FILE-<account>-<region>.html
    /// (default: target/aurora-dr/drill-<time>-<account>-<region>.html).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Seconds each snapshot, cluster and instance stays in progress in an
    /// emulator the drill starts.
    #[arg(long, value_name = "S", default_value_t = 1.0)]
    pub latency: f64,
    /// How long AWS work takes in the emulator: `realistic` (real-world
    /// figures per kind of work, their sources in crates/emulator), `zero`,
    /// or a TOML FILE (`base = "realistic"|"zero"` and a table per kind:
    /// snapshot, copy, cluster, instance, restore, rename, modify, delete,
    /// dns, dns_cache, each with `seconds` and `per_gib`). Scaled by
    /// --time-scale; the report then shows each phase's AWS time, the
    /// workflow's time and the detection latency in real-world seconds
    /// (time inside Task attempts at face value, the rest divided by the
    /// time scale).
    /// Replaces --latency; applied to the emulator of --endpoint too.
    #[arg(long, value_name = "realistic|zero|FILE", conflicts_with = "latency", value_parser = parse_durations)]
    pub durations: Option<phases::Durations>,
    /// Allocated storage of each source cluster in GiB, which sizes its
    /// snapshot, copy and restore durations (default with --durations: 500).
    #[arg(long, value_name = "N", requires = "durations", value_parser = parse_gib)]
    pub size_gib: Option<f64>,
    /// Keep an own copy: the target side first copies the shared snapshot
    /// into the target account under its key and restores from that copy
    /// (as `target.own_copy = true`; `--target-key` is its former name).
    /// Either way the DR cluster is under the target account's key:
    /// `target.kms_key_arn`, or one the drill creates (`alias/aurora-dr-target`).
    #[arg(long, alias = "target-key")]
    pub own_copy: bool,
    /// Serve the Step Functions API of every account's engine (the source's,
    /// each target's) on this address (e.g. 127.0.0.1:8083, port 0 for any), so `aurora-dr watch
    /// --endpoint http://ADDR` can follow the drill; each call reaches the
    /// account and region its ARN names. After the report the drill keeps
    /// serving until interrupted (Ctrl-C, SIGTERM).
    #[arg(long, value_name = "ADDR")]
    pub serve_api: Option<String>,
    /// Run the state machines in DIR (`source.asl.json`, `target.asl.json`)
    /// instead of the project's `statemachines/`, e.g. to measure another
    /// polling schedule with --durations.
    #[arg(long, value_name = "DIR")]
    pub state_machines: Option<PathBuf>,
}

/// The storage of `--durations` when `--size-gib` is not given.
pub const DEFAULT_SIZE_GIB: f64 = 500.0;

fn parse_durations(text: &str) -> Result<phases::Durations, String> {
    if text.is_empty() {
        return Err("expected realistic, zero or the path of a TOML file".into());
    }
    Ok(phases::Durations::parse(text))
}

fn parse_gib(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(gib) if gib.is_finite() && gib >= 0.0 => Ok(gib),
        _ => Err(format!("{text:?}: expected a number of GiB, 0 or more")),
    }
}

/// The duration profile of `--durations`, or None (the uniform `--latency`).
pub fn duration_profile(args: &DrillArgs) -> Result<Option<phases::Profile>, String> {
    let Some(durations) = &args.durations else { return Ok(None) };
    if !(args.time_scale > 0.0 && args.time_scale.is_finite()) {
        return Err(format!(
            "--durations needs a --time-scale above 0 (got {}): real-world seconds are the drill's divided by it",
            args.time_scale
        ));
    }
    let latency = durations.latency().map_err(|e| format!("--durations: {e}"))?;
    Ok(Some(phases::Profile {
        name: durations.name(),
        latency,
        size_gib: args.size_gib.unwrap_or(DEFAULT_SIZE_GIB),
        time_scale: args.time_scale,
    }))
}

/// The definitions of `--state-machines` (source, target), read before
/// anything starts; None without the option.
pub fn state_machine_texts(args: &DrillArgs) -> Result<Option<(String, String)>, String> {
    let Some(dir) = &args.state_machines else { return Ok(None) };
    let read = |file: &str| {
        let path = dir.join(file);
        std::fs::read_to_string(&path).map_err(|e| format!("--state-machines: {}: {e}", path.display()))
    };
    Ok(Some((read("source.asl.json")?, read("target.asl.json")?)))
}

/// Runs the drill; exit 0 when every run restored the DR cluster.
pub async fn run(args: DrillArgs) -> ExitCode {
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(errors) => {
            eprint!("{errors}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = duration_profile(&args).and_then(|_| state_machine_texts(&args)) {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    if config.is_multi_target() && args.restore_test {
        eprintln!(
            "--restore-test serves one target: run it with a file of one [target] ({} targets in {})",
            config.targets.len(),
            args.config.display()
        );
        return ExitCode::from(2);
    }
    match execute(&args, &config).await {
        Ok(report) if report.ok => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("drill failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Names of the functions of one side, as the local engine resolves them.
fn function_arn(region: &Region, account: &AccountId, side: Side, function: &str) -> String {
    format!("arn:aws:lambda:{region}:{account}:function:aurora-dr-{side}-{function}")
}

/// The source state machine (`statemachines/source.asl.json`) with its steps
/// bound to `ctx`, as the drill runs it; tests start executions of it
/// directly (e.g. two overlapping runs).
pub fn source_machine(
    ctx: &Arc<StepContext>,
    region: &Region,
    account: &AccountId,
) -> DrResult<StateMachineSpec> {
    machine(Side::Source, ctx, region, account)
}

/// The target state machine (`statemachines/target.asl.json`), bound likewise.
pub fn target_machine(
    ctx: &Arc<StepContext>,
    region: &Region,
    account: &AccountId,
) -> DrResult<StateMachineSpec> {
    machine(Side::Target, ctx, region, account)
}

/// A side's state machine with each Task bound, through its
/// `${...FunctionArn}`, to the handler [`steps::FUNCTIONS`] names for it,
/// run with that side's context.
fn machine(
    side: Side,
    ctx: &Arc<StepContext>,
    region: &Region,
    account: &AccountId,
) -> DrResult<StateMachineSpec> {
    let asl = match side {
        Side::Source => SOURCE_ASL,
        Side::Target => TARGET_ASL,
    };
    machine_from(side, asl, ctx, region, account)
}

/// [`machine`] with the definition's text given (`--state-machines`).
fn machine_from(
    side: Side,
    asl: &str,
    ctx: &Arc<StepContext>,
    region: &Region,
    account: &AccountId,
) -> DrResult<StateMachineSpec> {
    let name = match side {
        Side::Source => "aurora-dr-source",
        Side::Target => "aurora-dr-target",
    };
    let mut subs = Substitutions::new();
    let mut bindings = Vec::new();
    for function in steps::FUNCTIONS.iter().filter(|f| f.on(side)) {
        let Some(placeholder) = function.substitution else { continue };
        subs.insert(placeholder, function_arn(region, account, side, function.name));
        bindings.push(TaskBinding {
            function_name: format!("aurora-dr-{side}-{}", function.name),
            handler: function.handler,
            ctx: Arc::clone(ctx),
            before: None,
        });
    }
    let definition = Definition::parse_with(asl, &subs)
        .map_err(|e| DrError::invalid_input(format!("{name} state machine: {e}")))?;
    let arn = format!("arn:aws:states:{region}:{account}:stateMachine:{name}");
    Ok(bind_machine(name, arn, definition, bindings))
}

/// A check made before each invocation of a Task's function (a deployment:
/// Step Functions invoking it with the machine's role); an error fails the
/// task as the service would.
pub type InvokeGuard = Arc<dyn Fn() -> BoxFuture<'static, Result<(), TaskError>> + Send + Sync>;

/// One Lambda function as a state machine's Tasks reach it: the function
/// name their Lambda ARN carries, the handler [`steps::FUNCTIONS`] names
/// for it, the context it runs with and an optional [`InvokeGuard`].
pub struct TaskBinding {
    pub function_name: String,
    pub handler: steps::Handler,
    pub ctx: Arc<StepContext>,
    pub before: Option<InvokeGuard>,
}

/// A state machine whose Tasks run the bound functions.
pub fn bind_machine(
    name: &str,
    arn: String,
    definition: Definition,
    bindings: Vec<TaskBinding>,
) -> StateMachineSpec {
    let mut tasks = TaskRegistry::new();
    for binding in bindings {
        let TaskBinding { function_name, handler, ctx, before } = binding;
        tasks.register(function_name, move |input: Value| {
            let ctx = Arc::clone(&ctx);
            let before = before.clone();
            async move {
                if let Some(check) = before {
                    check().await?;
                }
                handler(ctx, input).await.map_err(task_error)
            }
        });
    }
    StateMachineSpec::new(name, definition).arn(arn).tasks(tasks)
}

/// Where the drill's SanityCheck probes connect: `target.sanity_endpoint_override`
/// (a local test server), whatever endpoint the emulator reports.
#[derive(Debug, Clone)]
pub struct LocalDatabase(pub HostPort);

impl ProbeTarget for LocalDatabase {
    fn endpoint(&self, _cluster: &DbCluster, _engine: DbEngine) -> Option<HostPort> {
        Some(self.0.clone())
    }
}

/// Endpoint names as the emulator routes them (`Control::resolve`): the
/// cluster a name reaches, with the DNS delays of a rename the emulator
/// models. An unanswered question is "nothing yet": the wait polls again.
#[derive(Debug, Clone)]
pub struct EmulatedDns(pub Control);

impl EmulatedDns {
    /// The resolver of the emulator at `endpoint` (`http://host:port`).
    pub fn at(endpoint: &str) -> Self {
        Self(Control::new(endpoint.trim_start_matches("http://").to_owned()))
    }
}

impl EndpointResolver for EmulatedDns {
    fn reach<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Reach> {
        Box::pin(async move {
            match self.0.resolve(host).await {
                Ok(Some(found)) if found.kind == "cluster" => Reach::Resource(found.resource_id),
                Ok(_) => Reach::Nothing,
                Err(e) => {
                    tracing::warn!(host, error = %e, "emulator resolve failed");
                    Reach::Nothing
                }
            }
        })
    }
}

/// A step's error as Lambda reports it to Step Functions.
fn task_error(e: DrError) -> TaskError {
    let cause = json!({"errorType": e.asl_name(), "errorMessage": e.to_string()}).to_string();
    TaskError::new(e.asl_name(), cause)
}

/// The outcome of a drill: whether every run restored the DR cluster, and
/// the report `--json` prints.
#[derive(Debug, Clone)]
pub struct DrillReport {
    pub ok: bool,
    pub report: Value,
}

/// Runs a drill with a validated configuration: one target, or each of many
/// (`[[targets]]`, [`targets`]).
pub async fn execute(args: &DrillArgs, config: &Config) -> Result<DrillReport, String> {
    if config.is_multi_target() {
        return targets::execute(args, config).await;
    }
    let rec = Recorder::new(args.json);
    let profile = duration_profile(args)?;
    let definitions = state_machine_texts(args)?;
    let clock =
        Clock::scaled(args.time_scale).map_err(|e| format!("--time-scale: {e}"))?.with_real_timeouts();
    let (src, tgt) = (&config.source, &config.target);
    rec.line(&format!(
        "aurora-dr drill: {} ({} {}) -> {} ({} {})",
        src.cluster_id, src.account_id, src.region, tgt.existing_cluster_id, tgt.account_id, tgt.region
    ));
    if src.cluster_ids.len() > 1 {
        let pairs: Vec<String> = tgt
            .pairs
            .iter()
            .map(|p| {
                let source = p.source_cluster_id.as_ref().map_or("*", |c| c.as_str());
                format!("{source} -> {}", p.existing_cluster_id)
            })
            .collect();
        rec.line(&format!(
            "  clusters  {} (at most 5 copies at a time): {}",
            src.cluster_ids.len(),
            pairs.join(", ")
        ));
    }

    let (emulator, endpoint) = start_emulator(args, profile.as_ref(), &rec).await?;
    let (mut wiring, server) =
        match start_local(args, config, &rec, &endpoint, clock, definitions.as_ref()).await {
            Ok(started) => started,
            Err(e) => {
                if let Some(emulator) = emulator {
                    let _ = emulator.stop().await;
                }
                return Err(e);
            }
        };
    let result = async {
        let _api = match &args.serve_api {
            Some(addr) => Some(serve_api(addr, &wiring).await?),
            None => None,
        };
        if let Some(p) = &profile {
            set_source_storage(config, &endpoint, p.size_gib).await?;
            rec.line(&format!("  setup     source storage {} GiB", p.size_gib));
            wiring.durations = Some(p.clone());
        }
        let mut runs = Vec::new();
        let mut stopped_early = None;
        let total = if args.restore_test { args.runs } else { args.runs.max(1) };
        for n in 1..=total {
            let outcome = run_once(&wiring, config, &rec, n, total).await?;
            let ok = outcome.ok();
            runs.push(outcome);
            if !ok {
                if n < total {
                    let why = format!(
                        "stopped after run {n} of {total}: run {n} failed, and the next run would start from what \
                         that failure left (its failure path has rolled back or cleaned up; look at it first, then \
                         run again)"
                    );
                    rec.line(&why);
                    stopped_early = Some(json!({"afterRun": n, "of": total, "reason": why}));
                }
                break;
            }
        }
        let mut tests = Vec::new();
        if args.restore_test && stopped_early.is_none() && runs.iter().all(RunOutcome::ok) {
            tests.push(restore_test::run(&wiring, config, &rec, &control_of(&endpoint), total + 1).await?);
        } else if args.restore_test {
            rec.line("restore test not started: a run before it failed");
        }
        let report =
            finish(args.html.as_deref(), args.json, config, &rec, &wiring, &runs, &tests, stopped_early).await?;
        if _api.is_some() {
            // `watch` may still be reading the last events: serve until told to stop.
            eprintln!("  api       still serving for `aurora-dr watch`; Ctrl-C (SIGINT or SIGTERM) ends the drill");
            if let Ok(stop) = aurora_dr_emulator::interrupted() {
                stop.await;
            }
        }
        Ok(report)
    }
    .await;
    server.abort();
    if let Some(emulator) = emulator {
        let _ = emulator.stop().await;
    }
    result
}

/// The emulator of a drill: the one of `--endpoint`, or one started here
/// (returned, for the drill to stop), with `--durations` or `--latency` applied.
async fn start_emulator(
    args: &DrillArgs,
    profile: Option<&phases::Profile>,
    rec: &Recorder,
) -> Result<(Option<Emulator>, String), String> {
    let mut emulator = None;
    let endpoint = match &args.endpoint {
        Some(url) => url.clone(),
        None => {
            if aurora_dr_emulator::venv_is_current(&aurora_dr_emulator::default_venv_dir()).await {
                rec.line("  emulator  starting");
            } else {
                rec.line(&format!(
                    "  emulator  starting: creating its Python environment first in {} (pinned moto from \
                     PyPI; a few minutes, once)",
                    aurora_dr_emulator::default_venv_dir().display()
                ));
            }
            let latency = match profile {
                Some(p) => p.emulated(),
                None => Latency::uniform(aurora_dr_emulator::Delay::seconds(args.latency)),
            };
            let started = Emulator::start(EmulatorConfig::default().with_latency(latency))
                .await
                .map_err(|e| format!("emulator: {e}"))?;
            let url = started.url().to_owned();
            emulator = Some(started);
            url
        }
    };
    rec.line(&format!("  emulator  {endpoint} ({:.1}s)", rec.elapsed()));
    if let Some(p) = profile {
        if emulator.is_none() {
            control_of(&endpoint)
                .set_latency(&p.emulated())
                .await
                .map_err(|e| format!("emulator durations: {e}"))?;
        }
        rec.line(&format!("  durations {}", p.describe()));
    }
    Ok((emulator, endpoint))
}

/// The drill's own wiring on the emulator at `endpoint`, with the target
/// account's Step Functions API (the local engine's server, which the
/// target side's InvokeStepFunction calls) served until the returned task
/// is aborted.
async fn start_local(
    args: &DrillArgs,
    config: &Config,
    rec: &Recorder,
    endpoint: &str,
    clock: Clock,
    definitions: Option<&(String, String)>,
) -> Result<(Wiring, tokio::task::JoinHandle<std::io::Result<()>>), String> {
    let tgt = &config.target;
    let target_engine = Engine::with_account(clock, tgt.region.to_string(), tgt.account_id.to_string());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let sfn_url = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
    let server = tokio::spawn(aurora_dr_asl::serve(listener, target_engine.clone()));
    match local_wiring(args, config, rec, endpoint, clock, target_engine, sfn_url, definitions).await {
        Ok(wiring) => Ok((wiring, server)),
        Err(e) => {
            server.abort();
            Err(e)
        }
    }
}

/// A drill held open between runs, for commands that run one run after
/// another on one emulator and look at it in between (`aurora-dr chaos`):
/// the wiring of [`execute`] (both engines, the receiver), quiet, without
/// the final report. Runs do not stop after a failed one.
pub struct OpenDrill {
    wiring: Wiring,
    rec: Recorder,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// How one run of an [`OpenDrill`] ended.
#[derive(Debug, Clone)]
pub struct RunEnd {
    /// Every cluster restored.
    pub ok: bool,
    /// Status of the source execution and of the (first cluster's) target execution.
    pub source: Status,
    pub target: Option<Status>,
    /// The source execution's error and cause when it failed.
    pub source_error: Option<(String, String)>,
    /// The run as the drill's `--json` report lists it.
    pub report: Value,
}

impl OpenDrill {
    /// Wires a drill on the emulator at `args.endpoint` (required).
    pub async fn open(args: &DrillArgs, config: &Config) -> Result<Self, String> {
        let endpoint = args.endpoint.clone().ok_or("an open drill needs an emulator endpoint")?;
        let clock =
            Clock::scaled(args.time_scale).map_err(|e| format!("--time-scale: {e}"))?.with_real_timeouts();
        let rec = Recorder::new(true);
        if let Some(p) = duration_profile(args)? {
            control_of(&endpoint)
                .set_latency(&p.emulated())
                .await
                .map_err(|e| format!("emulator durations: {e}"))?;
        }
        let (mut wiring, server) =
            start_local(args, config, &rec, &endpoint, clock, state_machine_texts(args)?.as_ref()).await?;
        if let Some(p) = duration_profile(args)? {
            set_source_storage(config, &endpoint, p.size_gib).await?;
            wiring.durations = Some(p);
        }
        Ok(Self { wiring, rec, server })
    }

    /// Run `n` (its execution names carry `n`, so give each run its own).
    pub async fn run(&mut self, config: &Config, n: usize, total: usize) -> Result<RunEnd, String> {
        let outcome = run_once(&self.wiring, config, &self.rec, n, total).await?;
        let (source, target) = outcome.statuses();
        let source_error = self
            .wiring
            .source_engine
            .executions(None)
            .iter()
            .find(|x| x.arn() == outcome.source_arn)
            .and_then(|x| x.outcome())
            .and_then(|o| o.error.map(|e| (e, o.cause.unwrap_or_default())));
        Ok(RunEnd { ok: outcome.ok(), source, target, source_error, report: outcome.to_json() })
    }
}

impl Drop for OpenDrill {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The Step Functions API of both engines on `addr`, for `aurora-dr watch`,
/// until the returned guard is dropped.
async fn serve_api(addr: &str, wiring: &Wiring) -> Result<ApiServer, String> {
    serve_engines(addr, vec![wiring.source_engine.clone(), wiring.target_engine.clone()]).await
}

/// The Step Functions API of `engines` (each account and region's) on
/// `addr`, until the returned guard is dropped.
async fn serve_engines(addr: &str, engines: Vec<Engine>) -> Result<ApiServer, String> {
    let listener =
        tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("--serve-api {addr}: {e}"))?;
    let url = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(aurora_dr_asl::serve_accounts_with_shutdown(listener, engines, async {
        let _ = stopped.await;
    }));
    // On stderr, also with --json (whose stdout is the report alone).
    eprintln!("  api       {url} (Step Functions of every account; aurora-dr watch --endpoint {url})");
    Ok(ApiServer(Some(stop)))
}

/// Stops the server of `--serve-api` when dropped.
struct ApiServer(Option<tokio::sync::oneshot::Sender<()>>);

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(stop) = self.0.take() {
            let _ = stop.send(());
        }
    }
}

/// What the runs of a drill run on: both machines registered on their
/// engines, the receiver of the target side's subscription, and the
/// target context the final facts are read with.
pub struct Wiring {
    pub source_engine: Engine,
    pub source_machine_arn: String,
    pub target_engine: Engine,
    pub receiver: receiver::Receiver,
    /// The target side's CompleteWait endpoint, where the emulator delivers
    /// the RDS events its rule matched.
    pub events: events::EventReceiver,
    /// The target side's context (its settings name the pairs; its
    /// clients read the final facts).
    pub target_ctx: Arc<StepContext>,
    pub kms_key: String,
    pub target_kms_key: Option<String>,
    /// The emulator's duration profile, when the drill set one: the report
    /// then shows each phase's AWS and workflow time.
    pub durations: Option<phases::Profile>,
}

/// What the target stack's RdsEventsRule and CompleteWaitPermission do, made
/// locally: CompleteWait served at a loopback URL with the target context,
/// the rule on the target account's default bus with CompleteWait's function
/// ARN as its target, and that ARN registered with the emulator, which POSTs
/// each matched event there.
pub(crate) async fn route_rds_events(
    endpoint: &str,
    ctx: &Arc<StepContext>,
    target_aws: &aurora_dr_core::clients::AwsContext,
    region: &Region,
    account: &AccountId,
) -> Result<events::EventReceiver, String> {
    let receiver = events::EventReceiver::start(Arc::clone(ctx)).await.map_err(|e| e.to_string())?;
    let function = function_arn(region, account, Side::Target, "complete-wait");
    setup::ensure_rds_events_rule(target_aws, &function).await.map_err(|e| e.to_string())?;
    let endpoints = std::collections::BTreeMap::from([(function, receiver.url.clone())]);
    control_of(endpoint).set_lambda_endpoints(&endpoints).await.map_err(|e| e.to_string())?;
    Ok(receiver)
}

/// The control endpoint of the emulator at `endpoint` (`http://host:port`).
fn control_of(endpoint: &str) -> aurora_dr_emulator::Control {
    aurora_dr_emulator::Control::new(endpoint.trim_start_matches("http://").to_owned())
}

/// Sets the allocated storage of every source cluster, which sizes its
/// snapshots, their copies and the restores from them.
async fn set_source_storage(config: &Config, endpoint: &str, gib: f64) -> Result<(), String> {
    let src = &config.source;
    let control = control_of(endpoint);
    for id in &src.cluster_ids {
        control
            .set_cluster_storage(src.account_id.as_ref(), src.region.as_ref(), id.as_str(), gib)
            .await
            .map_err(|e| format!("source cluster {id} storage (does it exist? --seed creates it): {e}"))?;
    }
    Ok(())
}

/// The drill's own wiring: what the stacks would create, made by the drill
/// (key, topics, subscription, secret), one context per side.
#[allow(clippy::too_many_arguments)]
async fn local_wiring(
    args: &DrillArgs,
    config: &Config,
    rec: &Recorder,
    endpoint: &str,
    clock: Clock,
    target_engine: Engine,
    sfn_url: String,
    definitions: Option<&(String, String)>,
) -> Result<Wiring, String> {
    let (src, tgt) = (&config.source, &config.target);
    let source_aws = setup::account_context(endpoint, &src.account_id, &src.region, None).await;
    let target_aws = setup::account_context(endpoint, &tgt.account_id, &tgt.region, Some(sfn_url)).await;
    let err = |e: DrError| e.to_string();

    // What the stacks create.
    let (kms_key, step) =
        setup::ensure_kms_key(&source_aws.in_region(&tgt.region), config).await.map_err(err)?;
    rec.line(&format!("  setup     {} ({})", step.what, if step.created { "created" } else { "exists" }));
    let (topic, _) =
        setup::ensure_topic(&source_aws, setup::SNAPSHOT_TOPIC, Some(&tgt.account_id)).await.map_err(err)?;
    let (source_failures, _) =
        setup::ensure_topic(&source_aws, setup::FAILURE_TOPIC, None).await.map_err(err)?;
    let (target_failures, _) =
        setup::ensure_topic(&target_aws, setup::FAILURE_TOPIC, None).await.map_err(err)?;
    rec.line(&format!("  setup     topics {topic}, {source_failures}, {target_failures}"));
    if args.seed {
        for step in setup::seed_source_clusters(&source_aws, config).await.map_err(err)? {
            rec.line(&format!(
                "  setup     {} ({})",
                step.what,
                if step.created { "created" } else { "exists" }
            ));
        }
    }

    let mut source_settings = src.clone();
    source_settings.set_kms_key(&tgt.region, kms_key.clone());
    source_settings.notification_topic_arn = Some(topic.clone());
    source_settings.failure_topic_arn = Some(source_failures);
    let target_machine_arn =
        format!("arn:aws:states:{}:{}:stateMachine:aurora-dr-target", tgt.region, tgt.account_id);
    let mut target_settings = tgt.clone();
    target_settings.source_topic_arn = Some(topic.clone());
    target_settings.failure_topic_arn = Some(target_failures);
    if let Some(login) = &config.drill_sanity_login {
        // The SanityCheck step's login, where a deployment keeps it: a secret of the target account.
        let (arn, step) = setup::ensure_sanity_secret(&target_aws, &tgt.engine, login).await.map_err(err)?;
        rec.line(&format!(
            "  setup     {} ({})",
            step.what,
            if step.created { "created" } else { "updated" }
        ));
        target_settings.sanity.secret_arn = Some(arn);
    }
    target_settings.state_machine_arn = Some(target_machine_arn.parse().map_err(|e| format!("{e}"))?);
    // The DR cluster's key: the target account's own, like a deployment's stack makes it.
    let (key, step) = setup::ensure_target_kms_key(&target_aws, config).await.map_err(err)?;
    rec.line(&format!("  setup     {} ({})", step.what, if step.created { "created" } else { "exists" }));
    target_settings.kms_key_arn = Some(key);
    target_settings.own_copy |= args.own_copy;
    let step = setup::ensure_wait_tokens_table(&target_aws).await.map_err(err)?;
    rec.line(&format!("  setup     {} ({})", step.what, if step.created { "created" } else { "exists" }));
    target_settings.wait_tokens_table = Some(setup::WAIT_TOKENS_TABLE.to_owned());
    let target_kms_key = target_settings.kms_key_arn.as_ref().map(|k| k.as_str().to_owned());

    let source_ctx = Arc::new(StepContext::new(source_aws, SideSettings::Source(source_settings)));
    let mut target_ctx = StepContext::new(target_aws.clone(), SideSettings::Target(target_settings))
        .with_resolver(Arc::new(EmulatedDns::at(endpoint)));
    if let Some(endpoint) = &config.drill_sanity_endpoint {
        target_ctx = target_ctx.with_probe_target(Arc::new(LocalDatabase(endpoint.clone())));
    }
    let target_ctx = Arc::new(target_ctx);

    // The target side's subscription to the source topic.
    let receiver = receiver::Receiver::start(Arc::clone(&target_ctx)).await.map_err(|e| e.to_string())?;
    let step = setup::ensure_subscription(&target_aws.in_region(&src.region), &topic, &receiver.url)
        .await
        .map_err(err)?;
    rec.line(&format!("  setup     {}", step.what));
    let events = route_rds_events(endpoint, &target_ctx, &target_aws, &tgt.region, &tgt.account_id).await?;
    rec.line(&format!("  setup     rule {} -> CompleteWait at {}", setup::RDS_EVENTS_RULE, events.url));

    // Both machines on the local engine.
    let source_engine = Engine::with_account(clock, src.region.to_string(), src.account_id.to_string());
    let (source_spec, target_spec) = match definitions {
        None => (
            source_machine(&source_ctx, &src.region, &src.account_id).map_err(err)?,
            target_machine(&target_ctx, &tgt.region, &tgt.account_id).map_err(err)?,
        ),
        Some((source, target)) => {
            if let Some(dir) = &args.state_machines {
                rec.line(&format!("  setup     state machines from {}", dir.display()));
            }
            (
                machine_from(Side::Source, source, &source_ctx, &src.region, &src.account_id).map_err(err)?,
                machine_from(Side::Target, target, &target_ctx, &tgt.region, &tgt.account_id).map_err(err)?,
            )
        }
    };
    let source_machine = source_engine.register(source_spec).map_err(|e| e.to_string())?;
    target_engine.register(target_spec).map_err(|e| e.to_string())?;
    Ok(Wiring {
        source_engine,
        source_machine_arn: source_machine.arn.clone(),
        target_engine,
        receiver,
        events,
        target_ctx,
        kms_key: kms_key.as_str().to_owned(),
        target_kms_key,
        durations: None,
    })
}

/// The second the process last started a run in.
static LAST_RUN_SECOND: std::sync::Mutex<i64> = std::sync::Mutex::new(0);

/// Waits, if needed, so that no two runs of this process (of one drill, of
/// consecutive drills on one emulator, of a rehearsal) start in the same
/// second: snapshot names carry the execution's start time to the second,
/// and CreateSnapshot refuses a second run of the same second as a
/// duplicate (`Conflict`), as it must for a duplicated scheduled start.
/// The run then records the second its execution started in
/// ([`started_in`]): the start may fall in the next second.
async fn a_second_of_its_own() {
    let last = LAST_RUN_SECOND.lock().map(|l| *l).unwrap_or_default();
    if let Some(wait) = wait_for_a_new_second(last, time::OffsetDateTime::now_utc()) {
        tokio::time::sleep(wait).await;
    }
    started_in(time::OffsetDateTime::now_utc());
}

/// How long to wait at `now` so that the next run starts after the second
/// `last`: until the next second while `now` is in `last` or before it.
fn wait_for_a_new_second(last: i64, now: time::OffsetDateTime) -> Option<Duration> {
    (now.unix_timestamp() <= last).then(|| {
        let whole = u64::try_from(last - now.unix_timestamp()).unwrap_or_default();
        Duration::from_secs(whole) + Duration::from_nanos(1_000_000_000 - u64::from(now.nanosecond()))
    })
}

/// Records that a run started at `at` (its execution's start date).
fn started_in(at: time::OffsetDateTime) {
    if let Ok(mut last) = LAST_RUN_SECOND.lock() {
        *last = (*last).max(at.unix_timestamp());
    }
}

/// Run `n` of `total`: the source machine, then every cluster's target
/// execution its messages started, each run in a second of its own.
pub(crate) async fn run_once(
    wiring: &Wiring,
    config: &Config,
    rec: &Recorder,
    n: usize,
    total: usize,
) -> Result<RunOutcome, String> {
    let (source_exec, status) =
        run_source(&wiring.source_engine, &wiring.source_machine_arn, &config.source, rec, n, total).await?;
    let mut outcome = RunOutcome::new(n, &source_exec, status);
    let items = fleet::source_items(&source_exec);
    follow_run_targets(wiring, &config.source, &config.target, items, rec, n, &mut outcome).await?;
    print_run(rec, &rec.spans(), n, &outcome);
    Ok(outcome)
}

/// Starts run `n`'s source execution, in a second of its own, and follows
/// it to its end (its progress lines and states in `rec`).
pub(crate) async fn run_source(
    engine: &Engine,
    machine_arn: &str,
    src: &aurora_dr_core::settings::SourceSettings,
    rec: &Recorder,
    n: usize,
    total: usize,
) -> Result<(Execution, Status), String> {
    let source_who = format!("{} {}", src.account_id, src.region);
    a_second_of_its_own().await;
    // Execution names like EventBridge's: unique per run.
    let name = format!("run-{}-{n}", rec.started_at().unix_timestamp());
    rec.line(&format!("run {n} of {total}: {name}"));
    // Many clusters: the list, one Map item each; one cluster: `{}`, as deployed.
    let source_exec = engine
        .start(machine_arn, fleet::source_input(src), StartOptions::named(name.clone()))
        .map_err(|e| e.to_string())?;
    started_in(source_exec.start_date());
    let lanes = fleet::lanes(src);
    rec.follow_with_map_runs(engine, source_exec.clone(), "source", &source_who, n, "", &lanes).await;
    let status = source_exec.wait().await.status;
    Ok((source_exec, status))
}

/// Follows the target executions that the messages of the clusters in
/// `items` (their payloads as the target's region left them) started on
/// `wiring`'s target side, into `outcome`; progress lines and states go to
/// `rec`, tagged with the target's account and region.
pub(crate) async fn follow_run_targets(
    wiring: &Wiring,
    src: &aurora_dr_core::settings::SourceSettings,
    tgt: &aurora_dr_core::settings::TargetSettings,
    items: Vec<Value>,
    rec: &Recorder,
    n: usize,
    outcome: &mut RunOutcome,
) -> Result<(), String> {
    let target_who = format!("{} {}", tgt.account_id, tgt.region);
    // Each cluster's own message starts its own target execution; all are followed at once.
    let target_settings = wiring.target_ctx.target().map_err(|e| e.to_string())?;
    let clusters = fleet::follow_targets(
        items,
        &fleet::lanes(src),
        &wiring.receiver,
        &wiring.target_engine,
        target_settings,
        rec,
        &target_who,
        n,
    )
    .await;
    outcome.set_clusters(clusters);
    Ok(())
}

/// The lines after run `n`: each cluster's outcome (many clusters), the
/// text timeline of `spans`, the run's summary and what it kept running.
pub(crate) fn print_run(rec: &Recorder, spans: &[Span], n: usize, outcome: &RunOutcome) {
    if outcome.clusters.len() > 1 {
        for c in &outcome.clusters {
            rec.line(&format!("  cluster {}", c.summary()));
        }
    }
    rec.line(&format!("timeline of run {n}:\n{}", report::text_timeline(spans, n).trim_end()));
    rec.line(&format!("run {n}: {}", outcome.summary()));
    for kept in outcome.kept_clusters() {
        rec.line(&kept_lines(&kept));
    }
}

/// The end of a drill: final facts, the HTML timeline, the JSON report
/// (printed with `json`) and the result line.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn finish(
    html: Option<&std::path::Path>,
    json: bool,
    config: &Config,
    rec: &Recorder,
    wiring: &Wiring,
    runs: &[RunOutcome],
    tests: &[restore_test::RestoreTestOutcome],
    stopped_early: Option<Value>,
) -> Result<DrillReport, String> {
    let report = summarize(html, !json, config, rec, wiring, runs, tests, stopped_early).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report.report).unwrap_or_default());
    }
    Ok(report)
}

/// [`finish`] without printing the JSON report: the final facts, the HTML
/// timeline, the report, and with `lines` the phase table and result lines.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn summarize(
    html: Option<&std::path::Path>,
    lines: bool,
    config: &Config,
    rec: &Recorder,
    wiring: &Wiring,
    runs: &[RunOutcome],
    tests: &[restore_test::RestoreTestOutcome],
    stopped_early: Option<Value>,
) -> Result<DrillReport, String> {
    let tgt = &config.target;
    let all_ok = (!runs.is_empty() || !tests.is_empty())
        && runs.iter().all(RunOutcome::ok)
        && tests.iter().all(restore_test::RestoreTestOutcome::ok);
    let total = rec.elapsed();
    let facts = final_facts(&wiring.target_ctx, config).await;
    let record = rec.record();
    let spans = &record.spans;
    let timings = wiring.durations.as_ref().map(|p| {
        let mut timings = phases::phase_timings(spans, p);
        // Terminate deletes only when the swap moved a previous copy away.
        let replaced = replaced_copies(&wiring.target_engine, runs);
        timings.retain(|t| t.phase != phases::DELETE || replaced.contains(&(t.run, t.lane.clone())));
        timings
    });
    let phase_table = timings.as_deref().map(phases::html_table);
    let profile_text = wiring.durations.as_ref().map(phases::Profile::describe).unwrap_or_default();
    let phase_page = phase_table.as_ref().map(|t| (profile_text.as_str(), t));
    let html_path =
        write_timeline("drill", html, config, &record, total, all_ok, runs, tests, &facts, phase_page)
            .map_err(|e| format!("timeline: {e}"))?;
    let report = json!({
        "result": if all_ok { "SUCCEEDED" } else { "FAILED" },
        "totalSeconds": total,
        "runs": runs.iter().map(RunOutcome::to_json).collect::<Vec<_>>(),
        "restoreTests": tests.iter().map(restore_test::RestoreTestOutcome::to_json).collect::<Vec<_>>(),
        "stoppedEarly": stopped_early,
        "keptClusters": runs.iter().flat_map(RunOutcome::kept_clusters).collect::<Vec<_>>(),
        "states": spans,
        "executions": record.executions,
        "target": facts,
        "kmsKeyArn": wiring.kms_key,
        "deliveries": wiring.receiver.deliveries().iter().map(delivery_json).collect::<Vec<_>>(),
        "rdsEvents": wiring.events.deliveries().iter().map(event_json).collect::<Vec<_>>(),
        "waitTokenUnits": {
            "read": aurora_dr_core::wait_tokens::units_consumed().0,
            "write": aurora_dr_core::wait_tokens::units_consumed().1,
        },
        "targetExecutions": wiring.target_engine
            .executions(None)
            .iter()
            .map(|x| json!({"name": x.name(), "status": x.status().as_str()}))
            .collect::<Vec<_>>(),
        "targetKmsKeyArn": wiring.target_kms_key,
        "timeline": html_path.display().to_string(),
        "durations": wiring.durations,
        "phases": timings,
    });
    if lines {
        if let (Some(p), Some(t)) = (&wiring.durations, &timings) {
            rec.line(&format!("phases ({}):\n{}", p.describe(), phases::text_table(t).trim_end()));
        }
        let text = |k: &str| facts.get(k).and_then(Value::as_str).unwrap_or("-").to_owned();
        rec.line(&format!(
            "result: {} in {total:.2}s; target cluster {} is {} at {} (restored by {})",
            if all_ok { "SUCCEEDED" } else { "FAILED" },
            tgt.existing_cluster_id,
            text("status"),
            text("endpoint"),
            text("runId"),
        ));
        rec.line(&format!("timeline: {}", html_path.display()));
    }
    Ok(DrillReport { ok: all_ok, report })
}

/// The (run, source cluster) pairs whose target execution swapped a
/// previous copy away (its output's `swap.oldClusterId`), which Terminate
/// then deleted.
fn replaced_copies(target: &Engine, runs: &[RunOutcome]) -> std::collections::HashSet<(usize, String)> {
    let executions = target.executions(None);
    let mut replaced = std::collections::HashSet::new();
    for run in runs {
        for c in &run.clusters {
            let Some(arn) = &c.target_arn else { continue };
            let output =
                executions.iter().find(|x| x.arn() == arn).and_then(|x| x.outcome()).and_then(|o| o.output);
            if output.is_some_and(|o| !o["swap"]["oldClusterId"].is_null()) {
                replaced.insert((run.n, c.source_cluster_id.clone()));
            }
        }
    }
    replaced
}

/// One RDS event CompleteWait was given, as the report lists it.
fn event_json(d: &events::EventDelivery) -> Value {
    match &d.result {
        Ok(v) => json!({"source": d.source, "eventId": d.event_id, "outcome": v}),
        Err(e) => json!({"source": d.source, "eventId": d.event_id, "error": e}),
    }
}

/// One SNS delivery to the target side, as the report lists it.
fn delivery_json(d: &receiver::Delivery) -> Value {
    match &d.result {
        Ok(v) => json!({"messageId": d.message_id, "runId": d.run_id, "outcome": v}),
        Err(e) => json!({"messageId": d.message_id, "runId": d.run_id, "error": e}),
    }
}

/// How one run ended.
pub(crate) struct RunOutcome {
    n: usize,
    source_arn: String,
    source: Status,
    target_arn: Option<String>,
    target: Option<Status>,
    /// The target execution's error and cause when it failed (e.g. a
    /// SanityCheckFailed with every probe's result).
    target_error: Option<(Option<String>, Option<String>)>,
    input: Value,
    /// The SNS message that started the target side.
    message_id: Option<String>,
    note: String,
    /// Every cluster of the run, in the source machine's input order; the
    /// fields above are the first cluster's (the only one without a list).
    clusters: Vec<fleet::ClusterOutcome>,
    /// One DR target of many: the run is judged by this target's clusters
    /// (the source side's work for its region and its own target
    /// executions), not by the source execution, which fails when any
    /// region's does.
    per_target: bool,
}

impl RunOutcome {
    fn new(n: usize, exec: &Execution, status: Status) -> Self {
        Self::of(n, exec.arn(), status, exec.outcome().and_then(|o| o.output))
    }

    /// Run `n`, whose source execution `source_arn` ended `status` with `output`.
    pub(crate) fn of(n: usize, source_arn: &str, status: Status, output: Option<Value>) -> Self {
        Self {
            n,
            source_arn: source_arn.to_owned(),
            source: status,
            target_arn: None,
            target: None,
            target_error: None,
            input: output.unwrap_or(Value::Null),
            message_id: None,
            note: String::new(),
            clusters: Vec::new(),
            per_target: false,
        }
    }

    /// Judged by its own clusters only (one target of many).
    pub(crate) fn for_one_of_many(mut self) -> Self {
        self.per_target = true;
        self
    }

    /// Every cluster of the run, followed to its end on both sides.
    pub(crate) fn set_clusters(&mut self, clusters: Vec<fleet::ClusterOutcome>) {
        self.clusters = clusters;
        self.adopt_first_cluster();
    }

    /// The single-cluster fields from the first cluster.
    fn adopt_first_cluster(&mut self) {
        let Some(first) = self.clusters.first() else {
            self.note = "the source run reported no cluster".into();
            return;
        };
        self.input = first.payload.clone();
        self.message_id = first.message_id.clone();
        self.target_arn = first.target_arn.clone();
        self.target = first.target;
        self.target_error =
            first.target_error.is_some().then(|| (first.target_error.clone(), first.target_cause.clone()));
        if self.note.is_empty() {
            self.note = first.note.clone();
        }
    }

    /// How the source execution and the (first cluster's) target execution ended.
    pub(crate) fn statuses(&self) -> (Status, Option<Status>) {
        (self.source, self.target)
    }

    /// Every cluster restored.
    pub(crate) fn ok(&self) -> bool {
        (self.source == Status::Succeeded || self.per_target)
            && self.target == Some(Status::Succeeded)
            && self.clusters.iter().all(fleet::ClusterOutcome::ok)
    }

    pub(crate) fn summary(&self) -> String {
        let target = self.target.map_or("not started", Status::as_str);
        let mut s = if self.clusters.len() > 1 {
            let restored = self.clusters.iter().filter(|c| c.ok()).count();
            format!(
                "source {}, {restored} of {} clusters restored",
                self.source.as_str(),
                self.clusters.len()
            )
        } else {
            format!("source {}, target {target}", self.source.as_str())
        };
        if let Some(rpo) = fleet::worst(&self.clusters, fleet::ClusterOutcome::achieved_rpo_seconds) {
            s.push_str(&format!(", achieved RPO {rpo:.3}s"));
        }
        if let Some(rto) = fleet::worst(&self.clusters, fleet::ClusterOutcome::time_to_restore_seconds) {
            s.push_str(&format!(", time to restore {rto:.3}s"));
        }
        if self.clusters.iter().any(fleet::ClusterOutcome::sanity_skipped) {
            s.push_str(&format!(", {}", fleet::SANITY_SKIPPED));
        }
        let kept = self.kept_clusters().len();
        if kept > 0 {
            s.push_str(&format!(", {kept} cluster(s) kept running (listed below)"));
        }
        if !self.note.is_empty() {
            s.push_str(&format!(" ({})", self.note));
        }
        s
    }

    /// Every cluster this run left running that aurora-dr will not delete.
    pub(crate) fn kept_clusters(&self) -> Vec<Value> {
        self.clusters.iter().flat_map(|c| c.kept_clusters.iter().cloned()).collect()
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "run": self.n,
            "runId": self.input.get("runId"),
            "sourceSnapshotId": self.input.get("sourceSnapshotId"),
            "sourceSnapshotArn": self.input.get("sourceSnapshotArn"),
            "targetSnapshotArn": self.input.get("targetSnapshotArn"),
            "source": {"executionArn": self.source_arn, "status": self.source.as_str()},
            "target": {
                "executionArn": self.target_arn,
                "status": self.target.map(Status::as_str),
                "error": self.target_error.as_ref().and_then(|e| e.0.clone()),
                "cause": self.target_error.as_ref().and_then(|e| e.1.clone()),
            },
            "snsMessageId": self.message_id,
            "note": self.note,
            // The run's worst cluster; each cluster's own figures are in `clusters`.
            "achievedRpoSeconds": fleet::worst(&self.clusters, fleet::ClusterOutcome::achieved_rpo_seconds),
            "timeToRestoreSeconds": fleet::worst(&self.clusters, fleet::ClusterOutcome::time_to_restore_seconds),
            "sourceToRestoredSeconds":
                fleet::worst(&self.clusters, fleet::ClusterOutcome::source_to_restored_seconds),
            "sanityCheck": self.clusters.first().and_then(|c| c.sanity.clone()),
            "keptClusters": self.kept_clusters(),
            "clusters": self.clusters.iter().map(fleet::ClusterOutcome::to_json).collect::<Vec<_>>(),
        })
    }
}

/// A kept cluster for the progress output: what, why, and how to remove it.
pub(crate) fn kept_lines(kept: &Value) -> String {
    let text = |k: &str| kept[k].as_str().unwrap_or("-").to_owned();
    let mut s = format!("  kept running: {} ({}); remove it with:", text("clusterId"), text("reason"));
    for c in kept["removeCommands"].as_array().into_iter().flatten() {
        s.push_str(&format!("\n    {}", c.as_str().unwrap_or_default()));
    }
    s
}

/// What the target account has under the existing name at the end.
async fn final_facts(target: &StepContext, config: &Config) -> Value {
    let rds = target.aws.rds();
    let id = config.target.existing_cluster_id.as_str();
    match aurora_dr_core::rds::find_cluster(&rds, id).await {
        Ok(Some(c)) => json!({
            "clusterId": c.db_cluster_identifier(),
            "status": c.status(),
            "endpoint": c.endpoint(),
            "readerEndpoint": c.reader_endpoint(),
            "runId": aurora_dr_core::rds::tag_value(c.tag_list(), aurora_dr_core::rds::TAG_RUN_ID),
            "members": c.db_cluster_members().iter().filter_map(|m| m.db_instance_identifier()).collect::<Vec<_>>(),
        }),
        Ok(None) => json!({"clusterId": id, "status": "absent"}),
        Err(e) => json!({"clusterId": id, "error": e.to_string()}),
    }
}

/// Writes the HTML timeline of `aurora-dr {command}` (`drill` or `watch`)
/// to `html`, by default `target/aurora-dr/{command}-<time>.html`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_timeline(
    command: &str,
    html: Option<&std::path::Path>,
    config: &Config,
    record: &report::Record,
    total: f64,
    ok: bool,
    runs: &[RunOutcome],
    tests: &[restore_test::RestoreTestOutcome],
    facts: &Value,
    phases: Option<(&str, &report::Table)>,
) -> std::io::Result<PathBuf> {
    let path = match html {
        Some(p) => p.to_path_buf(),
        None => {
            let dir = PathBuf::from("target/aurora-dr");
            std::fs::create_dir_all(&dir)?;
            dir.join(format!("{command}-{}.html", time::OffsetDateTime::now_utc().unix_timestamp()))
        }
    };
    let (src, tgt) = (&config.source, &config.target);
    let side = |machine: &str, account: &AccountId, region: &Region, clusters: Vec<String>| report::Side {
        machine: machine.into(),
        account: account.to_string(),
        region: region.to_string(),
        clusters,
    };
    let sides = [
        side("source", &src.account_id, &src.region, fleet::lanes(src)),
        side(
            "target",
            &tgt.account_id,
            &tgt.region,
            tgt.pairs.iter().map(|p| p.existing_cluster_id.to_string()).collect(),
        ),
    ];
    let mut summaries: Vec<(usize, String)> = runs.iter().map(|r| (r.n, r.summary())).collect();
    summaries.extend(tests.iter().map(|t| (t.n, t.summary())));
    // One row per cluster and run: outcome, achieved RPO, time to restore;
    // a restore test's row names its test cluster and the serving one.
    let mut rows: Vec<Vec<String>> =
        runs.iter().flat_map(|r| r.clusters.iter().map(|c| c.table_row(r.n))).collect();
    rows.extend(tests.iter().map(restore_test::RestoreTestOutcome::table_row));
    let table = report::Table { header: fleet::TABLE_HEADER.iter().map(|h| (*h).to_owned()).collect(), rows };
    let title = format!("aurora-dr {command}");
    let page = report::Page {
        title: &title,
        record,
        total,
        ok,
        sides: &sides,
        runs: &summaries,
        clusters: &table,
        phases,
        target: facts,
    };
    std::fs::write(&path, report::html_page(&page))?;
    Ok(std::fs::canonicalize(&path).unwrap_or(path))
}

#[cfg(test)]
mod tests {
    use super::wait_for_a_new_second;
    use std::time::Duration;
    use time::macros::datetime;

    #[test]
    fn a_run_waits_past_the_second_an_earlier_execution_started_in() {
        // The earlier run's guard passed at :57.999 and its execution
        // started at :58.001: the next run, at :58.5, waits for :59.
        let last = datetime!(2026-12-03 16:35:58.001 UTC).unix_timestamp();
        let now = datetime!(2026-12-03 16:35:58.5 UTC);
        assert_eq!(wait_for_a_new_second(last, now), Some(Duration::from_millis(500)));
        // A start recorded ahead of the clock is waited out whole.
        let now = datetime!(2026-12-03 16:35:57.75 UTC);
        assert_eq!(wait_for_a_new_second(last, now), Some(Duration::from_millis(1250)));
        assert_eq!(wait_for_a_new_second(last, datetime!(2026-12-03 16:35:59.0 UTC)), None);
    }
}
