//! `aurora-dr watch`: follows one run across both accounts through the Step
//! Functions API, as deployed or as a drill serves it (`drill --serve-api`).
//!
//! The source execution (the latest of the source state machine, or the one
//! given) is read with DescribeExecution and GetExecutionHistory (newest
//! first, page by page through `nextToken`, down to the last event already
//! seen), and its Distributed Maps' children through ListExecutions by
//! `mapRunArn`. Each cluster's target execution is the one of the target
//! state machine, started after the source execution, whose input carries
//! that cluster's run id (the message Notify published names it). Every
//! history event goes through the drill's recorder: the same progress lines,
//! text timeline, figures (achieved RPO, time to restore), JSON report and
//! HTML page as the drill, since both build them from history events.
//!
//! Many DR targets (`[[targets]]`): the same for every target at once, each
//! target's executions in its own account and region (its machine found
//! there), its progress lines tagged `[{account} {region}]`. As the drill
//! does, each target is judged by its own clusters (the source side's work
//! for its region and its target executions) and has a section of its own
//! (timeline, figures, failed states, HTML page `FILE-<account>-<region>`);
//! the verdict names every target that failed.
//!
//! Polling: every `--interval` seconds while events arrive, doubling up to
//! [`MAX_INTERVAL`] while nothing changes. Step Functions throttles its API
//! per account and region with token buckets ("Step Functions service
//! quotas", API action throttling,
//! <https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html>);
//! the SDK retries a `ThrottlingException` a few times, and watch then waits
//! longer and asks again instead of giving up.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use aurora_dr_asl::{EventDetails, EventType, HistoryEvent, Outcome, Status};
use aurora_dr_core::DrError;
use aurora_dr_core::clients::{AwsContext, ClientOptions};
use aurora_dr_core::ids::{AccountId, Region};
use aws_sdk_sfn::Client;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Semaphore;

use crate::accounts::{Account, ProfileArgs};
use crate::config::Config;
use crate::drill::fleet::{self, ClusterOutcome};
use crate::drill::report::{self, Lanes, Recorder};
use crate::drill::{RunOutcome, kept_lines, targets, write_timeline};

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// The TOML configuration (see examples/drill.toml): both accounts and
    /// regions, and `target.state_machine_arn` when set. With `[[targets]]`
    /// every target at once, each in its account and region (one
    /// --target-profile reaches every target account: use --assume-role).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    #[command(flatten)]
    pub profiles: ProfileArgs,
    /// The Step Functions API of both accounts at one URL instead of AWS (a
    /// drill's `--serve-api`); no credentials are needed.
    #[arg(long, value_name = "URL", conflicts_with_all = ["source_endpoint", "target_endpoint"])]
    pub endpoint: Option<String>,
    /// The source account's Step Functions API at this URL instead of AWS.
    #[arg(long, value_name = "URL", requires = "target_endpoint")]
    pub source_endpoint: Option<String>,
    /// The target account's Step Functions API at this URL instead of AWS
    /// (with `[[targets]]`: every target's).
    #[arg(long, value_name = "URL", requires = "source_endpoint")]
    pub target_endpoint: Option<String>,
    /// Follow this source execution instead of the latest one.
    #[arg(long, value_name = "ARN")]
    pub execution: Option<String>,
    /// Print one machine-readable JSON report at the end instead of progress lines.
    #[arg(long)]
    pub json: bool,
    /// Where to write the HTML timeline (default: target/aurora-dr/watch-<time>.html);
    /// with `[[targets]]` one per target, FILE-<account>-<region>.html.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Seconds between two looks at a running execution; doubles, up to 60,
    /// while nothing changes.
    #[arg(long, value_name = "S", default_value_t = 5.0, value_parser = parse_seconds)]
    pub interval: f64,
    /// Seconds to wait for a cluster's target execution to start once the
    /// source run has ended (the SNS message and InvokeStepFunction take
    /// seconds on AWS).
    #[arg(long, value_name = "S", default_value_t = 300.0, value_parser = parse_seconds)]
    pub target_wait: f64,
}

/// The longest wait between two looks at a running execution.
pub const MAX_INTERVAL: Duration = Duration::from_secs(60);

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 => Ok(s),
        _ => Err(format!("{text:?}: expected a number of seconds above 0")),
    }
}

/// Runs `watch`: exit 0 when the run succeeded on both sides (for every
/// target), 1 when an execution failed, timed out or was aborted (with many
/// targets: naming each target that failed), 2 when it could not be
/// followed (configuration, missing state machine or execution, API errors).
pub async fn run(args: WatchArgs) -> ExitCode {
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(errors) => {
            eprint!("{errors}");
            return ExitCode::from(2);
        }
    };
    match execute(&args, &config).await {
        Ok(report) if report.ok => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("watch: {e}");
            ExitCode::from(2)
        }
    }
}

/// What `watch` saw: whether the run succeeded and the JSON report.
#[derive(Debug, Clone)]
pub struct WatchReport {
    pub ok: bool,
    pub report: Value,
}

/// Calls in flight at once per account: a fleet's many Map children are
/// looked at in turn rather than all at once, which keeps watch well inside
/// the API's throttling buckets.
const CALLS_AT_ONCE: usize = 4;

/// One side's Step Functions client and how often to look.
#[derive(Clone)]
struct Api {
    ctx: AwsContext,
    client: Client,
    calls: Arc<Semaphore>,
    side: Account,
    account: AccountId,
    region: Region,
    interval: Duration,
}

impl Api {
    async fn new(args: &WatchArgs, side: Account, account: &AccountId, region: &Region) -> Self {
        let endpoint = match side {
            Account::Source => args.endpoint.as_ref().or(args.source_endpoint.as_ref()),
            Account::Target => args.endpoint.as_ref().or(args.target_endpoint.as_ref()),
        };
        let ctx = match endpoint {
            Some(url) => {
                let options = ClientOptions::in_region(region.clone())
                    .with_static_credentials("aurora-dr-local", "aurora-dr-local")
                    .with_sfn_endpoint(Some(url.clone()));
                AwsContext::load(&options).await
            }
            None => args.profiles.context(side, account, region).await,
        };
        Self {
            client: ctx.sfn(),
            ctx,
            calls: Arc::new(Semaphore::new(CALLS_AT_ONCE)),
            side,
            account: account.clone(),
            region: region.clone(),
            interval: Duration::from_secs_f64(args.interval),
        }
    }

    fn name(&self) -> &'static str {
        match self.side {
            Account::Source => "source",
            Account::Target => "target",
        }
    }

    fn who(&self) -> String {
        format!("{} {}", self.account, self.region)
    }

    /// Waits before the next look: `idle` looks in a row found nothing new.
    async fn pause(&self, idle: u32) {
        let wait = self.interval.saturating_mul(1 << idle.min(6)).min(MAX_INTERVAL.max(self.interval));
        tokio::time::sleep(wait).await;
    }

    /// A call, asked again after a pause while Step Functions throttles it.
    async fn call<T, E, F, Fut>(&self, what: &str, f: F) -> Result<T, DrError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<
                Output = Result<T, aws_sdk_sfn::error::SdkError<E, aws_smithy_runtime_api::http::Response>>,
            >,
        E: aws_sdk_sfn::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut throttled = 0;
        loop {
            let answer = {
                let _turn = self.calls.acquire().await;
                f().await
            };
            match answer {
                Ok(out) => return Ok(out),
                Err(e) => {
                    // ThrottlingException and its kin (and HTTP 429) are `Throttled`.
                    let e = DrError::from_sdk(what, e);
                    if matches!(e, DrError::Throttled(_)) && throttled < 10 {
                        throttled += 1;
                        self.pause(throttled).await;
                        continue;
                    }
                    return Err(e);
                }
            }
        }
    }

    /// The state machine of this side: the configured ARN, else its stack's
    /// output (as `preflight` finds it), else on a local endpoint the
    /// machine the drill names `aurora-dr-<side>`.
    async fn machine_arn(&self, configured: Option<&str>, local: bool) -> Result<String, String> {
        if let Some(arn) = configured {
            return Ok(arn.to_owned());
        }
        let side = self.name();
        if local {
            let wanted = format!("aurora-dr-{side}");
            // One endpoint serves every account, and a request without an
            // ARN reaches the first engine of its signing region: ask for
            // this account's machine by its ARN first (targets in one region).
            let arn = format!("arn:aws:states:{}:{}:stateMachine:{wanted}", self.region, self.account);
            let described = self
                .call("DescribeStateMachine", || {
                    self.client.describe_state_machine().state_machine_arn(&arn).send()
                })
                .await;
            if described.is_ok() {
                return Ok(arn);
            }
            let out = self
                .call("ListStateMachines", || self.client.list_state_machines().send())
                .await
                .map_err(|e| e.to_string())?;
            return out
                .state_machines()
                .iter()
                .find(|m| m.name() == wanted)
                .map(|m| m.state_machine_arn().to_owned())
                .ok_or_else(|| {
                    format!("no {side} state machine ({wanted}) at the {side} endpoint in {}", self.who())
                });
        }
        let (stack, output) = crate::preflight::machine_output(self.side);
        let outputs = crate::deploy_params::stack_outputs(&self.ctx, stack).await.map_err(|e| {
            format!("the {side} state machine: {e} (deploy the {stack} stack, or check --{side}-profile)")
        })?;
        outputs.get(output).cloned().ok_or_else(|| format!("stack {stack} has no {output} output"))
    }

    async fn describe(&self, arn: &str) -> Result<Described, String> {
        let out = self
            .call("DescribeExecution", || self.client.describe_execution().execution_arn(arn).send())
            .await
            .map_err(|e| match e.aws_code() {
                Some("ExecutionDoesNotExist") => {
                    format!("execution {arn} does not exist in {} {}", self.name(), self.who())
                }
                _ => e.to_string(),
            })?;
        let text = |t: Option<&str>| t.and_then(|t| serde_json::from_str::<Value>(t).ok());
        Ok(Described {
            name: out.name().unwrap_or_default().to_owned(),
            start: offset(out.start_date()),
            stop: out.stop_date().map(offset),
            status: status(out.status().as_str()),
            input: text(out.input()).unwrap_or(Value::Null),
            output: text(out.output()),
            error: out.error().map(str::to_owned),
            cause: out.cause().map(str::to_owned),
        })
    }

    /// The events after `after` (an event id), oldest first: the history
    /// newest first, page by page, down to the first event already seen.
    async fn events_after(&self, arn: &str, after: u64) -> Result<Vec<HistoryEvent>, String> {
        let mut newest_first = Vec::new();
        let mut below = u64::MAX;
        let mut token: Option<String> = None;
        'pages: loop {
            let out = self
                .call("GetExecutionHistory", || {
                    self.client
                        .get_execution_history()
                        .execution_arn(arn)
                        .reverse_order(true)
                        .max_results(1000)
                        .include_execution_data(true)
                        .set_next_token(token.clone())
                        .send()
                })
                .await
                .map_err(|e| e.to_string())?;
            for e in out.events() {
                let id = e.id() as u64;
                if id <= after {
                    break 'pages;
                }
                // Events appended while paging newest first may shift the
                // next page onto events already read: ids only go down.
                if id >= below {
                    continue;
                }
                below = id;
                if let Some(event) = history_event(e) {
                    newest_first.push(event);
                }
            }
            match out.next_token() {
                Some(t) => token = Some(t.to_owned()),
                None => break,
            }
        }
        newest_first.reverse();
        Ok(newest_first)
    }

    /// The execution of `machine` started last: ListExecutions lists the
    /// most recent first, so its first page has it.
    async fn latest(&self, machine: &str) -> Result<Option<String>, String> {
        let out = self
            .call("ListExecutions", || {
                self.client.list_executions().state_machine_arn(machine).max_results(20).send()
            })
            .await
            .map_err(|e| self.machine_error(machine, e))?;
        let latest = out.executions().iter().max_by_key(|x| offset(x.start_date()));
        Ok(latest.map(|x| x.execution_arn().to_owned()))
    }

    fn machine_error(&self, machine: &str, e: DrError) -> String {
        match e.aws_code() {
            Some("StateMachineDoesNotExist") => {
                format!("the {} state machine {machine} does not exist in {}", self.name(), self.who())
            }
            _ => e.to_string(),
        }
    }

    /// Every execution of `machine` started at or after `since`, newest first.
    async fn executions_since(
        &self,
        machine: &str,
        since: OffsetDateTime,
    ) -> Result<Vec<(String, OffsetDateTime)>, String> {
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .call("ListExecutions", || {
                    self.client
                        .list_executions()
                        .state_machine_arn(machine)
                        .set_next_token(token.clone())
                        .send()
                })
                .await
                .map_err(|e| self.machine_error(machine, e))?;
            let mut older = false;
            for x in out.executions() {
                let start = offset(x.start_date());
                if start >= since {
                    found.push((x.execution_arn().to_owned(), start));
                } else {
                    older = true;
                }
            }
            match out.next_token() {
                Some(t) if !older => token = Some(t.to_owned()),
                _ => break,
            }
        }
        found.sort_by_key(|x| std::cmp::Reverse(x.1));
        Ok(found)
    }

    /// The child executions a Map Run has started so far.
    async fn map_run_children(&self, map_run: &str) -> Result<Vec<String>, String> {
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .call("ListExecutions", || {
                    self.client.list_executions().map_run_arn(map_run).set_next_token(token.clone()).send()
                })
                .await
                .map_err(|e| e.to_string())?;
            found.extend(out.executions().iter().map(|x| x.execution_arn().to_owned()));
            match out.next_token() {
                Some(t) => token = Some(t.to_owned()),
                None => return Ok(found),
            }
        }
    }

    async fn map_run_running(&self, map_run: &str) -> Result<bool, String> {
        let out = self
            .call("DescribeMapRun", || self.client.describe_map_run().map_run_arn(map_run).send())
            .await
            .map_err(|e| e.to_string())?;
        Ok(out.status().as_str() == "RUNNING")
    }
}

/// What DescribeExecution tells.
struct Described {
    name: String,
    start: OffsetDateTime,
    stop: Option<OffsetDateTime>,
    status: Status,
    input: Value,
    output: Option<Value>,
    error: Option<String>,
    cause: Option<String>,
}

impl Described {
    fn outcome(&self) -> Outcome {
        Outcome {
            status: self.status,
            output: self.output.clone(),
            error: self.error.clone(),
            cause: self.cause.clone(),
            stop_date: self.stop.unwrap_or(self.start),
        }
    }
}

/// A time of the API, which Step Functions gives to the millisecond (the
/// JSON protocol's float seconds leave a few nanoseconds of noise: rounded off).
fn offset(t: &aws_sdk_sfn::primitives::DateTime) -> OffsetDateTime {
    let millis = (i128::from(t.subsec_nanos()) + 500_000) / 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.secs()) * 1_000_000_000 + millis * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn status(s: &str) -> Status {
    match s {
        "SUCCEEDED" => Status::Succeeded,
        "FAILED" => Status::Failed,
        "TIMED_OUT" => Status::TimedOut,
        "ABORTED" => Status::Aborted,
        _ => Status::Running,
    }
}

/// A GetExecutionHistory event as the recorder reads events (None for a
/// type the recorder has no use for, e.g. activities).
fn history_event(e: &aws_sdk_sfn::types::HistoryEvent) -> Option<HistoryEvent> {
    let event_type = EventType::parse(e.r#type().as_str())?;
    let json = |t: Option<&str>| t.and_then(|t| serde_json::from_str::<Value>(t).ok());
    let text = |t: Option<&str>| t.map(str::to_owned);
    let mut d = EventDetails::default();
    let mut failure = |error: Option<&str>, cause: Option<&str>| {
        d.error = text(error);
        d.cause = text(cause);
    };
    if let Some(x) = e.execution_failed_event_details() {
        failure(x.error(), x.cause());
    } else if let Some(x) = e.execution_aborted_event_details() {
        failure(x.error(), x.cause());
    } else if let Some(x) = e.execution_timed_out_event_details() {
        failure(x.error(), x.cause());
    } else if let Some(x) = e.lambda_function_failed_event_details() {
        failure(x.error(), x.cause());
    } else if let Some(x) = e.lambda_function_timed_out_event_details() {
        failure(x.error(), x.cause());
    } else if let Some(x) = e.task_failed_event_details() {
        failure(x.error(), x.cause());
    } else if let Some(x) = e.task_timed_out_event_details() {
        failure(x.error(), x.cause());
    } else if let Some(x) = e.map_run_failed_event_details() {
        failure(x.error(), x.cause());
    }
    if let Some(x) = e.execution_started_event_details() {
        d.input = json(x.input());
    }
    if let Some(x) = e.execution_succeeded_event_details() {
        d.output = json(x.output());
    }
    if let Some(x) = e.state_entered_event_details() {
        d.name = Some(x.name().to_owned());
        d.input = json(x.input());
    }
    if let Some(x) = e.state_exited_event_details() {
        d.name = Some(x.name().to_owned());
        d.output = json(x.output());
    }
    if let Some(x) = e.lambda_function_succeeded_event_details() {
        d.output = json(x.output());
    }
    if let Some(x) = e.task_succeeded_event_details() {
        d.output = json(x.output());
    }
    if let Some(x) = e.map_iteration_started_event_details() {
        d.name = text(x.name());
        d.index = u64::try_from(x.index()).ok();
    }
    if let Some(x) = e.map_run_started_event_details() {
        d.map_run_arn = text(x.map_run_arn());
    }
    Some(HistoryEvent {
        id: e.id() as u64,
        previous_event_id: e.previous_event_id() as u64,
        timestamp: offset(e.timestamp()),
        event_type,
        details: d,
    })
}

/// Where an execution's events go: its machine, run and lane, and the
/// items that name its Map iterations' and Map Runs' lanes.
#[derive(Clone)]
struct Place {
    rec: Recorder,
    run: usize,
    lane: String,
    items: Vec<String>,
}

/// Follows execution `arn` to its end, each new event into the recorder (a
/// Map Run's children in their lanes); returns how it ended and its history.
async fn follow(api: &Api, place: &Place, arn: &str) -> Result<(Described, Vec<HistoryEvent>), String> {
    let started = api.describe(arn).await?;
    let (machine, who) = (api.name(), api.who());
    place.rec.execution_started(machine, place.run, &place.lane, &started.name, arn, started.start);
    let mut lanes = Lanes::new(&place.lane, &place.items);
    let mut history: Vec<HistoryEvent> = Vec::new();
    let mut map_runs = tokio::task::JoinSet::new();
    let mut idle = 0;
    loop {
        let after = history.last().map_or(0, |e| e.id);
        let new = api.events_after(arn, after).await?;
        idle = if new.is_empty() { idle + 1 } else { 0 };
        for event in new {
            let here = lanes.place(&event);
            if event.event_type.is_terminal() {
                place.rec.execution_ended(&event, arn);
            }
            if let Some(map_run) = &event.details.map_run_arn {
                map_runs.spawn(follow_map_run(api.clone(), place.clone(), map_run.clone()));
            }
            if matches!(
                event.event_type,
                EventType::MapRunSucceeded | EventType::MapRunFailed | EventType::MapRunAborted
            ) {
                // As the drill: the Map Run's children are recorded before the parent moves on.
                while let Some(done) = map_runs.join_next().await {
                    done.map_err(|e| e.to_string())??;
                }
            }
            place.rec.on_event(&event, machine, &who, place.run, &here);
            history.push(event);
        }
        if history.last().is_some_and(|e| e.event_type.is_terminal()) {
            break;
        }
        api.pause(idle).await;
    }
    while let Some(done) = map_runs.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    Ok((api.describe(arn).await?, history))
}

/// Follows every child of a Map Run, as they start, until the run and its
/// children have ended; each child's states in the lane of its item.
async fn follow_map_run(api: Api, place: Place, map_run: String) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    let mut children = tokio::task::JoinSet::new();
    let mut idle = 0;
    loop {
        // Read before listing: once the run has ended, every child it started is listed.
        let running = api.map_run_running(&map_run).await?;
        let mut new = 0;
        for child in api.map_run_children(&map_run).await? {
            if !seen.insert(child.clone()) {
                continue;
            }
            new += 1;
            children.spawn(follow_child(api.clone(), place.clone(), child));
        }
        if !running {
            break;
        }
        idle = if new == 0 { idle + 1 } else { 0 };
        api.pause(idle).await;
    }
    while let Some(done) = children.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// One child of a Map Run: its states (not its own start and end, which are
/// the Map Run's) in the lane of its item.
async fn follow_child(api: Api, place: Place, arn: String) -> Result<(), String> {
    let described = api.describe(&arn).await?;
    let lane = report::child_lane(&described.input, &place.items);
    // Many target regions: the Regions Map's iterations each in its region's lane, as the drill has them.
    let mut nested = place.rec.child_lanes(&lane);
    let who = api.who();
    let mut after = 0;
    let mut idle = 0;
    loop {
        let new = api.events_after(&arn, after).await?;
        idle = if new.is_empty() { idle + 1 } else { 0 };
        let mut ended = false;
        for event in new {
            after = event.id;
            ended |= event.event_type.is_terminal();
            let here = nested.place(&event);
            if event.event_type != EventType::ExecutionStarted && !event.event_type.is_terminal() {
                place.rec.on_event(&event, api.name(), &who, place.run, &here);
            }
        }
        if ended {
            return Ok(());
        }
        api.pause(idle).await;
    }
}

/// One DR target as watch follows it: its configuration (the file's, with
/// this target as its `target`), its Step Functions API, its state machine
/// and its record (many targets: a record of its own, beside the source's).
struct Watched {
    config: Config,
    api: Api,
    machine: String,
    rec: Recorder,
    /// `[{account} {region}] ` before its lines with many targets; empty with one.
    tag: String,
}

/// Waits for the target execution of `cluster` (started at or after
/// `since`, its input carrying the cluster's run id) and follows it.
async fn follow_target(
    t: &Watched,
    since: OffsetDateTime,
    mut cluster: ClusterOutcome,
    wait: Duration,
) -> Result<ClusterOutcome, String> {
    let api = &t.api;
    if !cluster.source_ok {
        return Ok(cluster);
    }
    let Some(run_id) = cluster.run_id().map(str::to_owned) else {
        cluster.note = "the source payload has no runId".into();
        return Ok(cluster);
    };
    t.rec.line(&format!(
        "  target    {}waiting for the execution of {} (run {run_id})",
        t.tag, cluster.source_cluster_id
    ));
    let deadline = tokio::time::Instant::now() + wait;
    let mut looked = std::collections::HashSet::new();
    let mut idle = 0;
    let arn = 'find: loop {
        for (arn, _) in api.executions_since(&t.machine, since).await? {
            if !looked.insert(arn.clone()) {
                continue;
            }
            let described = api.describe(&arn).await?;
            if described.input.get("runId").and_then(Value::as_str) == Some(run_id.as_str()) {
                break 'find arn;
            }
        }
        if tokio::time::Instant::now() >= deadline {
            cluster.note = format!(
                "no target execution for run {run_id} started within {}s of the source run's end: did the \
                 snapshot notification reach the target account (aurora-dr preflight checks the subscription)?",
                wait.as_secs_f64()
            );
            return Ok(cluster);
        }
        idle += 1;
        api.pause(idle).await;
    };
    let place =
        Place { rec: t.rec.clone(), run: 1, lane: cluster.source_cluster_id.clone(), items: Vec::new() };
    let (described, history) = follow(api, &place, &arn).await?;
    cluster.record_target(&arn, described.outcome(), described.start, &history, &t.config.target);
    Ok(cluster)
}

/// Follows the run with a validated configuration: the source execution,
/// then in each target account and region the target executions its
/// messages started. With many targets (`[[targets]]`) each target is
/// judged by its own clusters (the source side's work for its region and
/// its target executions), with a report section of its own, as the drill's.
pub async fn execute(args: &WatchArgs, config: &Config) -> Result<WatchReport, String> {
    let src = &config.source;
    let many = config.is_multi_target();
    let source = Api::new(args, Account::Source, &src.account_id, &src.region).await;
    let local = args.endpoint.is_some() || args.source_endpoint.is_some();

    // The source execution: the one given, or the latest of the source machine.
    let source_arn = match &args.execution {
        Some(arn) => arn.clone(),
        None => {
            let machine = source.machine_arn(None, local).await?;
            source.latest(&machine).await?.ok_or_else(|| {
                format!("no execution of {machine} yet in {}: the schedule starts one, or `aws stepfunctions start-execution`", source.who())
            })?
        }
    };
    let first = source.describe(&source_arn).await?;
    let mut rec = Recorder::starting_at(args.json, first.start);
    if many {
        // The source machine's Regions Map: each region's states in a lane of its own.
        rec = rec.with_sub_lanes(src.target_regions.iter().map(|r| r.region.to_string()).collect());
    }
    let mut targets = Vec::new();
    for t in &config.targets {
        let api = Api::new(args, Account::Target, &t.account_id, &t.region).await;
        let configured = t.state_machine_arn.as_ref().map(|a| a.as_str());
        let label = targets::label(t);
        let machine = api
            .machine_arn(configured, local)
            .await
            .map_err(|e| if many { format!("target {label}: {e}") } else { e })?;
        let (tag, own) =
            if many { (format!("[{label}] "), rec.sibling()) } else { (String::new(), rec.clone()) };
        targets.push(Watched { config: config.for_target(t), api, machine, rec: own, tag });
    }
    match &config.targets[..] {
        [t] => rec.line(&format!(
            "aurora-dr watch: {} ({} {}) -> {} ({})",
            src.cluster_id,
            src.account_id,
            src.region,
            t.existing_cluster_id,
            targets::label(t)
        )),
        ts => rec.line(&format!(
            "aurora-dr watch: {} ({} {}) -> {} DR targets",
            src.cluster_id,
            src.account_id,
            src.region,
            ts.len()
        )),
    }
    let started = first.start.format(&Rfc3339).unwrap_or_default();
    rec.line(&format!("  source    {source_arn} ({}, started {started})", first.status.as_str()));
    for t in &targets {
        rec.line(&format!("  target    {}{}", t.tag, t.machine));
    }

    let lanes = fleet::lanes(src);
    let place = Place { rec: rec.clone(), run: 1, lane: String::new(), items: lanes.clone() };
    let (ended, history) = follow(&source, &place, &source_arn).await?;
    let wait = Duration::from_secs_f64(args.target_wait);
    let (source_arn, ended) = (&source_arn, &ended);
    // Every target at once, each cluster's target execution at once.
    let follows = targets.iter().map(|t| {
        // Each cluster's payload as this target's region left it (also a
        // file of one target of a deployment with many).
        let region = t.config.target.region.as_str();
        let items = fleet::source_items_in_of(Some(&ended.outcome()), &history, region);
        let clusters = ClusterOutcome::from_items(items, &lanes)
            .into_iter()
            .map(|c| follow_target(t, first.start, c, wait))
            .collect::<Vec<_>>();
        async move {
            let clusters = futures::future::try_join_all(clusters).await?;
            let mut run = RunOutcome::of(1, source_arn, ended.status, ended.output.clone());
            if many {
                run = run.for_one_of_many();
            }
            run.set_clusters(clusters);
            Ok::<_, String>(run)
        }
    });
    let runs = futures::future::try_join_all(follows).await?;

    let Some(run) = (!many).then(|| runs.first()).flatten() else {
        return execute_many(args, &rec, &targets, &runs, &first);
    };
    let section = section(args, config, &rec, run, args.html.as_deref(), &first, "")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&section.report).unwrap_or_default());
    } else {
        rec.line(&format!(
            "result: {} in {:.2}s",
            if section.ok { "SUCCEEDED" } else { "FAILED" },
            section.total
        ));
        rec.line(&format!("timeline: {}", section.html.display()));
    }
    Ok(WatchReport { ok: section.ok, report: section.report })
}

/// The end of a watch of many targets: each target's section (timeline,
/// figures, failed states, HTML page `FILE-<account>-<region>.html`), the
/// verdict naming each target's outcome, and one report holding them all.
fn execute_many(
    args: &WatchArgs,
    rec: &Recorder,
    targets: &[Watched],
    runs: &[RunOutcome],
    first: &Described,
) -> Result<WatchReport, String> {
    let mut sections = Vec::new();
    let mut verdicts = Vec::new();
    let mut total: f64 = 0.0;
    for (i, (t, run)) in targets.iter().zip(runs).enumerate() {
        let label = targets::label(&t.config.target);
        rec.line(&format!("target {} of {}: {label}", i + 1, targets.len()));
        let html = targets::timeline_path("watch", args.html.as_deref(), &t.config.target)?;
        // This target's record: the source machine's states (its region's) and its own.
        let merged = rec.merged(&t.rec, t.config.target.region.as_str());
        let section = section(args, &t.config, &merged, run, Some(&html), first, &t.tag)?;
        rec.line(&format!("timeline: {}", section.html.display()));
        total = total.max(section.total);
        verdicts.push(targets::Verdict { label, ok: section.ok, last: run.summary() });
        sections.push(targets::section_json(&t.config.target, section.ok, section.report));
    }
    let failed = targets::print_verdicts(rec, &verdicts, total);
    let ok = failed.is_empty();
    let report = json!({
        "result": if ok { "SUCCEEDED" } else { "FAILED" },
        "totalSeconds": total,
        "failedTargets": failed,
        "sourceStatusWhenFound": first.status.as_str(),
        "targets": sections,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    }
    if !ok {
        // Also with --json, whose stdout is the report alone.
        eprintln!("watch: target(s) failed: {}", failed.join(", "));
    }
    Ok(WatchReport { ok, report })
}

/// One target's part of what watch saw.
struct Section {
    ok: bool,
    report: Value,
    total: f64,
    html: PathBuf,
}

/// One target's section: its text timeline, the run's summary, what it
/// kept running, where each failed execution failed, its HTML page and its
/// report, from `rec` (the source's states and this target's) and `run`.
fn section(
    args: &WatchArgs,
    config: &Config,
    rec: &Recorder,
    run: &RunOutcome,
    html: Option<&std::path::Path>,
    first: &Described,
    tag: &str,
) -> Result<Section, String> {
    let tgt = &config.target;
    let ok = run.ok();
    let record = rec.record();
    rec.line(&format!("timeline:\n{}", report::text_timeline(&record.spans, 1).trim_end()));
    rec.line(&format!("run: {}", run.summary()));
    for kept in run.kept_clusters() {
        rec.line(&kept_lines(&kept));
    }
    // Where each failed execution failed: the state whose last attempt failed.
    // One target of many that succeeded: the source execution failed for another's region.
    let failed: Vec<Value> = record
        .executions
        .iter()
        .filter(|x| x.status != "SUCCEEDED" && !(ok && x.machine == "source"))
        .map(|x| {
            let state = record
                .spans
                .iter()
                // The source execution's own lane is empty: its Map children's failures count.
                .find(|s| {
                    s.machine == x.machine
                        && (x.lane.is_empty() || s.lane == x.lane)
                        && s.outcome == report::Outcome::Failed
                })
                .map(|s| (s.state.clone(), s.error.clone(), s.cause.clone()));
            let (state, error, cause) = state.unwrap_or_default();
            json!({"machine": x.machine, "execution": x.arn, "status": x.status, "failedState": state,
                   "stateError": error, "stateCause": cause, "error": x.error, "cause": x.cause})
        })
        .collect();
    for f in &failed {
        let text = |k: &str| f[k].as_str().unwrap_or("-").to_owned();
        let line = format!(
            "{tag}{} {}: {} in state {}: {} ({})",
            text("machine"),
            text("status"),
            text("execution"),
            text("failedState"),
            f["stateError"].as_str().or(f["error"].as_str()).unwrap_or("-"),
            f["stateCause"].as_str().or(f["cause"].as_str()).unwrap_or("-"),
        );
        if args.json {
            eprintln!("{line}");
        } else {
            rec.line(&line);
        }
    }
    let total = record.executions.iter().filter_map(|x| x.end).fold(0.0, f64::max);
    let facts = json!({
        "clusterId": run.to_json()["clusters"][0]["restoredClusterId"].as_str().unwrap_or(tgt.existing_cluster_id.as_str()),
        "status": "not read: watch reads Step Functions only (aurora-dr status shows the cluster)",
    });
    let html = write_timeline(
        "watch",
        html,
        config,
        &record,
        total,
        ok,
        std::slice::from_ref(run),
        &[],
        &facts,
        None,
    )
    .map_err(|e| format!("timeline: {e}"))?;
    let report = json!({
        "result": if ok { "SUCCEEDED" } else { "FAILED" },
        "totalSeconds": total,
        "runs": [run.to_json()],
        // RUNNING: followed live; else read after the fact.
        "sourceStatusWhenFound": first.status.as_str(),
        "failed": failed,
        "keptClusters": run.kept_clusters(),
        "states": record.spans,
        "executions": record.executions,
        "timeline": html.display().to_string(),
    });
    Ok(Section { ok, report, total, html })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use aurora_dr_asl::{Clock, Definition, Engine, StartOptions, StateMachineSpec};

    use super::*;

    const SOURCE: (&str, &str) = ("us-west-2", "111111111111");
    const TARGET: (&str, &str) = ("us-west-1", "222222222222");

    fn config() -> Config {
        Config::parse(include_str!("../../../examples/drill.toml")).expect("example config")
    }

    fn args(endpoint: &str) -> WatchArgs {
        WatchArgs {
            config: PathBuf::from("drill.toml"),
            profiles: ProfileArgs::default(),
            endpoint: Some(endpoint.to_owned()),
            source_endpoint: None,
            target_endpoint: None,
            execution: None,
            json: true,
            html: None,
            interval: 0.01,
            target_wait: 1.0,
        }
    }

    /// Both engines behind one endpoint; the first `throttled` GetExecutionHistory
    /// calls answer ThrottlingException, counted in the returned counter.
    async fn serve(
        engines: Vec<Engine>,
        throttled: u32,
    ) -> (String, Arc<AtomicU32>, tokio::task::JoinHandle<()>) {
        let hits = Arc::new(AtomicU32::new(0));
        let counter = Arc::clone(&hits);
        let app = aurora_dr_asl::router_for_accounts(engines).layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let counter = Arc::clone(&counter);
                async move {
                    let target =
                        req.headers().get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
                    if target.ends_with(".GetExecutionHistory")
                        && counter.fetch_add(1, Ordering::SeqCst) < throttled
                    {
                        let body = r#"{"__type": "ThrottlingException", "message": "Rate exceeded"}"#;
                        return axum::response::IntoResponse::into_response((
                            axum::http::StatusCode::BAD_REQUEST,
                            [(axum::http::header::CONTENT_TYPE, "application/x-amz-json-1.0")],
                            body,
                        ));
                    }
                    next.run(req).await
                }
            },
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (url, hits, task)
    }

    fn engine((region, account): (&str, &str)) -> Engine {
        Engine::with_account(Clock::real(), region, account)
    }

    fn machine(engine: &Engine, name: &str, definition: &str) -> String {
        let d = Definition::parse(definition).expect("definition");
        engine.register(StateMachineSpec::new(name, d)).expect("register").arn.clone()
    }

    /// Two events appended between two pages of a newest-first history
    /// shift the second page onto events already read: each is kept once.
    #[tokio::test]
    async fn events_appended_while_paging_are_read_once() {
        let event = |id: u64| {
            json!({"id": id, "previousEventId": id - 1, "timestamp": 1_700_000_000.0 + id as f64,
                   "type": "PassStateEntered", "stateEnteredEventDetails": {"name": format!("S{id}")}})
        };
        let pages = move |token: Option<&str>| match token {
            None => json!({"events": [event(6), event(5), event(4)], "nextToken": "3"}),
            // Read after events 7 and 8 were appended: three places later.
            _ => json!({"events": [event(5), event(4), event(3), event(2), event(1)]}),
        };
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move |body: axum::body::Bytes| async move {
                let req: Value = serde_json::from_slice(&body).unwrap_or_default();
                let page = pages(req.get("nextToken").and_then(Value::as_str));
                ([(axum::http::header::CONTENT_TYPE, "application/x-amz-json-1.0")], page.to_string())
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let api =
            Api::new(&args(&url), Account::Source, &SOURCE.1.parse().unwrap(), &SOURCE.0.parse().unwrap())
                .await;
        let arn = "arn:aws:states:us-west-2:111111111111:execution:aurora-dr-source:run-1";
        let events = api.events_after(arn, 0).await.expect("events");
        let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
        assert_eq!(ids, [1, 2, 3, 4, 5, 6]);
        assert_eq!(events[2].details.name.as_deref(), Some("S3"));
        server.abort();
    }

    #[tokio::test]
    async fn a_missing_machine_and_a_machine_without_executions_are_named() {
        let (source, target) = (engine(SOURCE), engine(TARGET));
        let (url, _, server) = serve(vec![source.clone(), target.clone()], 0).await;
        let e = execute(&args(&url), &config()).await.expect_err("no machine");
        assert!(
            e.contains("no source state machine (aurora-dr-source)") && e.contains("111111111111"),
            "{e}"
        );

        let pass = r#"{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}"#;
        let arn = machine(&source, "aurora-dr-source", pass);
        machine(&target, "aurora-dr-target", pass);
        let e = execute(&args(&url), &config()).await.expect_err("no execution");
        assert!(e.contains(&format!("no execution of {arn} yet")), "{e}");
        server.abort();
    }

    /// Two targets in one region, one endpoint: each target's machine is
    /// its own account's, though a request without an ARN reaches the
    /// first engine of the region.
    #[tokio::test]
    async fn each_target_of_a_region_finds_its_own_accounts_machine() {
        let pass = r#"{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}"#;
        let (a, b) = (engine(TARGET), engine(("us-west-1", "444444444444")));
        machine(&a, "aurora-dr-target", pass);
        let b_arn = machine(&b, "aurora-dr-target", pass);
        let (url, _, server) = serve(vec![engine(SOURCE), a, b], 0).await;
        let api = Api::new(
            &args(&url),
            Account::Target,
            &"444444444444".parse().unwrap(),
            &TARGET.0.parse().unwrap(),
        )
        .await;
        assert_eq!(api.machine_arn(None, true).await.expect("found"), b_arn);
        server.abort();
    }

    /// Throttled GetExecutionHistory calls (more than the SDK's own retries)
    /// slow the watch down; it still reads every event, in order.
    #[tokio::test]
    async fn throttling_is_waited_out_and_no_event_is_lost() {
        let source = engine(SOURCE);
        let def = r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"},
            "B": {"Type": "Wait", "Seconds": 0, "Next": "C"}, "C": {"Type": "Pass", "End": true}}}"#;
        let arn = machine(&source, "aurora-dr-source", def);
        let exec = source.start(&arn, json!({}), StartOptions::named("run-1")).expect("start");
        exec.wait().await;
        let (url, hits, server) = serve(vec![source.clone(), engine(TARGET)], 6).await;
        let api =
            Api::new(&args(&url), Account::Source, &SOURCE.1.parse().unwrap(), &SOURCE.0.parse().unwrap())
                .await;
        let rec = Recorder::starting_at(true, exec.start_date());
        let place = Place { rec: rec.clone(), run: 1, lane: String::new(), items: Vec::new() };
        let (described, history) = follow(&api, &place, exec.arn()).await.expect("followed");
        assert!(hits.load(Ordering::SeqCst) > 6, "the throttled calls were made");
        assert_eq!(described.status, Status::Succeeded);
        let ids: Vec<u64> = history.iter().map(|e| e.id).collect();
        let engine_ids: Vec<u64> = exec.history().iter().map(|e| e.id).collect();
        assert_eq!(ids, engine_ids);
        let states: Vec<String> = rec.spans().iter().map(|s| s.state.clone()).collect();
        assert_eq!(states, ["A", "B", "C"]);
        server.abort();
    }
}
