//! A drill of many DR targets (`[[targets]]`): one source run, then each
//! target's own target workflow.
//!
//! Set-up makes what the stacks of a deployment with many targets would:
//! the source account's key in each target region, its policy granting
//! every target account of that region; one snapshot topic whose policy lets
//! every target account subscribe; and per target its failure topic, its own
//! key, its SanityCheck secret, its target machine on an engine of its
//! account and region, and a receiver subscribed with a `FilterPolicy` on its
//! `targetAccountId` and `targetRegion` (Notify publishes one message per
//! target with those attributes; InvokeStepFunction refuses a message
//! addressed to another target).
//!
//! Each run starts the source machine once; then every target's executions
//! are followed at once, each target's states in a record of its own, its
//! progress lines tagged with its account and region. A target is judged by
//! its own clusters: the source side's work for its region and its target
//! executions, so a target whose region's copy or whose restore failed does
//! not fail the others. The report has one section (timeline, HTML page,
//! phase table, result) per target, and a verdict naming every target that
//! failed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aurora_dr_asl::{Clock, Engine};
use aurora_dr_core::context::{Side, SideSettings, StepContext};
use aurora_dr_core::ids::AccountId;
use aurora_dr_core::settings::TargetSettings;
use aurora_dr_core::{DrError, DrResult};
use serde_json::{Value, json};

use super::{
    DrillArgs, DrillReport, EmulatedDns, LocalDatabase, Recorder, RunOutcome, Wiring, fleet, machine_from,
    receiver, setup,
};
use crate::config::Config;

/// One DR target of the drill: its configuration (the file's, with this
/// target as its `target`), its wiring (the shared source engine, its own
/// target engine, receiver and keys), its record and its Step Functions API.
struct Target {
    config: Config,
    wiring: Wiring,
    rec: Recorder,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Target {
    /// `{account} {region}`: how lines, the verdict and the report name it.
    fn label(&self) -> String {
        label(&self.config.target)
    }
}

impl Target {
    /// This target's record: the source machine's states (its region's) and its own.
    fn record_in(&self, source: &Recorder) -> Recorder {
        source.merged(&self.rec, self.config.target.region.as_str())
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Runs a drill of every target of `config` (at least two).
pub(super) async fn execute(args: &DrillArgs, config: &Config) -> Result<DrillReport, String> {
    if args.restore_test {
        return Err("--restore-test serves one target: run it with a file of one [target]".into());
    }
    // The source machine's Regions Map: each region's states in a lane of its own.
    let regions: Vec<String> = config.source.target_regions.iter().map(|r| r.region.to_string()).collect();
    let rec = Recorder::new(args.json).with_sub_lanes(regions);
    let profile = super::duration_profile(args)?;
    let definitions = super::state_machine_texts(args)?;
    let clock =
        Clock::scaled(args.time_scale).map_err(|e| format!("--time-scale: {e}"))?.with_real_timeouts();
    let src = &config.source;
    rec.line(&format!(
        "aurora-dr drill: {} ({} {}) -> {} DR targets",
        src.cluster_id,
        src.account_id,
        src.region,
        config.targets.len()
    ));
    for t in &config.targets {
        rec.line(&format!("  target    {} ({})", t.existing_cluster_id, label(t)));
    }
    if src.cluster_ids.len() > 1 {
        let ids: Vec<&str> = src.cluster_ids.iter().map(|c| c.as_str()).collect();
        rec.line(&format!("  clusters  {} (at most 5 copies at a time): {}", ids.len(), ids.join(", ")));
    }
    let (emulator, endpoint) = super::start_emulator(args, profile.as_ref(), &rec).await?;
    let result = async {
        let (source, mut targets) = wire(args, config, &rec, &endpoint, clock, definitions.as_ref()).await?;
        let _api = match &args.serve_api {
            Some(addr) => {
                let mut engines = vec![source.0.clone()];
                engines.extend(targets.iter().map(|t| t.wiring.target_engine.clone()));
                Some(super::serve_engines(addr, engines).await?)
            }
            None => None,
        };
        if let Some(p) = &profile {
            super::set_source_storage(config, &endpoint, p.size_gib).await?;
            rec.line(&format!("  setup     source storage {} GiB", p.size_gib));
            for t in &mut targets {
                t.wiring.durations = Some(p.clone());
            }
        }
        let (runs, stopped_early) = run_all(args, config, &rec, &source, &targets).await?;
        let report = report(args, &rec, &targets, &runs, stopped_early).await?;
        if _api.is_some() {
            eprintln!(
                "  api       still serving for `aurora-dr watch`; Ctrl-C (SIGINT or SIGTERM) ends the drill"
            );
            if let Ok(stop) = aurora_dr_emulator::interrupted() {
                stop.await;
            }
        }
        Ok(report)
    }
    .await;
    if let Some(emulator) = emulator {
        let _ = emulator.stop().await;
    }
    result
}

/// The runs: each starts the source machine once and follows every target's
/// executions at once. Returns each target's runs (in the order of
/// `targets`), and why the runs stopped early, if they did.
async fn run_all(
    args: &DrillArgs,
    config: &Config,
    rec: &Recorder,
    (engine, machine_arn): &(Engine, String),
    targets: &[Target],
) -> Result<(Vec<Vec<RunOutcome>>, Option<Value>), String> {
    let total = args.runs.max(1);
    let mut runs: Vec<Vec<RunOutcome>> = targets.iter().map(|_| Vec::new()).collect();
    for n in 1..=total {
        let (exec, status) = super::run_source(engine, machine_arn, &config.source, rec, n, total).await?;
        let follow = targets.iter().map(|t| {
            let exec = exec.clone();
            async move {
                let mut outcome = RunOutcome::new(n, &exec, status).for_one_of_many();
                let items = fleet::source_items_in(&exec, t.config.target.region.as_str());
                super::follow_run_targets(
                    &t.wiring,
                    &config.source,
                    &t.config.target,
                    items,
                    &t.rec,
                    n,
                    &mut outcome,
                )
                .await
                .map(|()| outcome)
            }
        });
        let outcomes = futures::future::join_all(follow).await;
        let mut failed = Vec::new();
        for ((t, outcome), runs) in targets.iter().zip(outcomes).zip(&mut runs) {
            let outcome = outcome?;
            rec.line(&format!("target {}:", t.label()));
            super::print_run(rec, &t.record_in(rec).spans(), n, &outcome);
            if !outcome.ok() {
                failed.push(t.label());
            }
            runs.push(outcome);
        }
        if !failed.is_empty() {
            if n < total {
                let why = format!(
                    "stopped after run {n} of {total}: run {n} failed for {} (the next run would start from what \
                     that failure left; look at it first, then run again)",
                    failed.join(", ")
                );
                rec.line(&why);
                return Ok((runs, Some(json!({"afterRun": n, "of": total, "reason": why}))));
            }
            break;
        }
    }
    Ok((runs, None))
}

/// Each target's section (phases, result, HTML timeline of the source
/// states and its own) and the verdict naming each target's outcome; the
/// JSON report (`--json`) holds every target's report.
async fn report(
    args: &DrillArgs,
    rec: &Recorder,
    targets: &[Target],
    runs: &[Vec<RunOutcome>],
    stopped_early: Option<Value>,
) -> Result<DrillReport, String> {
    let mut sections = Vec::new();
    let mut verdicts = Vec::new();
    for (i, (t, runs)) in targets.iter().zip(runs).enumerate() {
        rec.line(&format!("target {} of {}: {}", i + 1, targets.len(), t.label()));
        let html = timeline_path("drill", args.html.as_deref(), &t.config.target)?;
        let merged = t.record_in(rec);
        let section = super::summarize(
            Some(&html),
            !args.json,
            &t.config,
            &merged,
            &t.wiring,
            runs,
            &[],
            stopped_early.clone(),
        )
        .await?;
        let last = runs.last().map(RunOutcome::summary).unwrap_or_else(|| "no run".into());
        verdicts.push(Verdict { label: t.label(), ok: section.ok, last });
        sections.push(section_json(&t.config.target, section.ok, section.report));
    }
    let total = rec.elapsed();
    let failed = print_verdicts(rec, &verdicts, total);
    let ok = failed.is_empty();
    let report = json!({
        "result": if ok { "SUCCEEDED" } else { "FAILED" },
        "totalSeconds": total,
        "failedTargets": failed,
        "stoppedEarly": stopped_early,
        "targets": sections,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else if !ok {
        eprintln!("drill: target(s) failed: {}", failed.join(", "));
    }
    Ok(DrillReport { ok, report })
}

/// How one target of many ended: its label, whether it succeeded and its last run's summary.
pub(crate) struct Verdict {
    pub label: String,
    pub ok: bool,
    pub last: String,
}

/// The verdict lines after every target's section: each target's outcome,
/// then the result naming every target that failed. Returns those targets.
pub(crate) fn print_verdicts(rec: &Recorder, verdicts: &[Verdict], total: f64) -> Vec<String> {
    rec.line("targets:");
    for v in verdicts {
        let result = if v.ok { "SUCCEEDED" } else { "FAILED" };
        rec.line(&format!("  {:<28} {result} ({})", v.label, v.last));
    }
    let failed: Vec<String> = verdicts.iter().filter(|v| !v.ok).map(|v| v.label.clone()).collect();
    if failed.is_empty() {
        rec.line(&format!("result: SUCCEEDED in {total:.2}s: all {} targets restored", verdicts.len()));
    } else {
        rec.line(&format!(
            "result: FAILED in {total:.2}s: {} of {} targets failed: {}",
            failed.len(),
            verdicts.len(),
            failed.join(", ")
        ));
    }
    failed
}

/// One target's section of a report of many targets.
pub(crate) fn section_json(t: &TargetSettings, ok: bool, report: Value) -> Value {
    json!({
        "accountId": t.account_id.as_str(),
        "region": t.region.as_str(),
        "result": if ok { "SUCCEEDED" } else { "FAILED" },
        "report": report,
    })
}

/// Where a target's HTML timeline goes: `--html FILE` with the target's
/// account and region before the extension, else
/// `target/aurora-dr/{command}-<time>-<account>-<region>.html`.
pub(crate) fn timeline_path(
    command: &str,
    html: Option<&Path>,
    t: &TargetSettings,
) -> Result<PathBuf, String> {
    let suffix = format!("{}-{}", t.account_id, t.region);
    Ok(match html {
        Some(p) => {
            let stem =
                p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| command.into());
            let ext = p.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
            p.with_file_name(format!("{stem}-{suffix}{ext}"))
        }
        None => {
            let dir = PathBuf::from("target/aurora-dr");
            std::fs::create_dir_all(&dir).map_err(|e| format!("timeline: {e}"))?;
            dir.join(format!("{command}-{}-{suffix}.html", time::OffsetDateTime::now_utc().unix_timestamp()))
        }
    })
}

/// `{account} {region}`: how lines, verdicts and reports name a target of many.
pub(crate) fn label(t: &TargetSettings) -> String {
    format!("{} {}", t.account_id, t.region)
}

/// What the stacks would create for every target, and both machines of each:
/// the source engine with the source machine (its ARN), and each target.
async fn wire(
    args: &DrillArgs,
    config: &Config,
    rec: &Recorder,
    endpoint: &str,
    clock: Clock,
    definitions: Option<&(String, String)>,
) -> Result<((Engine, String), Vec<Target>), String> {
    let err = |e: DrError| e.to_string();
    let src = &config.source;
    let source_aws = setup::account_context(endpoint, &src.account_id, &src.region, None).await;
    let mut source_settings = src.clone();
    let mut region_keys = std::collections::HashMap::new();
    for r in &src.target_regions {
        let configured = (!config.kms_keys_to_create.contains(&r.region)).then_some(&r.kms_key_arn);
        let (key, step) = setup::ensure_region_kms_key(
            &source_aws.in_region(&r.region),
            &src.account_id,
            &r.account_ids,
            configured,
            "KMS key",
        )
        .await
        .map_err(err)?;
        rec.line(&format!("  setup     {} ({})", step.what, if step.created { "created" } else { "exists" }));
        source_settings.set_kms_key(&r.region, key.clone());
        region_keys.insert(r.region.clone(), key);
    }
    let mut subscribers: Vec<AccountId> = Vec::new();
    for t in &config.targets {
        if !subscribers.contains(&t.account_id) {
            subscribers.push(t.account_id.clone());
        }
    }
    let (topic, _) =
        setup::ensure_topic_for(&source_aws, setup::SNAPSHOT_TOPIC, &subscribers).await.map_err(err)?;
    let (source_failures, _) =
        setup::ensure_topic(&source_aws, setup::FAILURE_TOPIC, None).await.map_err(err)?;
    rec.line(&format!("  setup     topics {topic}, {source_failures}"));
    if args.seed {
        for step in setup::seed_source_clusters(&source_aws, config).await.map_err(err)? {
            rec.line(&format!(
                "  setup     {} ({})",
                step.what,
                if step.created { "created" } else { "exists" }
            ));
        }
    }
    source_settings.notification_topic_arn = Some(topic.clone());
    source_settings.failure_topic_arn = Some(source_failures);
    let source_ctx = Arc::new(StepContext::new(source_aws, SideSettings::Source(source_settings)));
    let source_engine = Engine::with_account(clock, src.region.to_string(), src.account_id.to_string());
    let source_spec = match definitions {
        None => super::source_machine(&source_ctx, &src.region, &src.account_id),
        Some((source, _)) => machine_from(Side::Source, source, &source_ctx, &src.region, &src.account_id),
    }
    .map_err(err)?;
    let source_arn = source_engine.register(source_spec).map_err(|e| e.to_string())?.arn.clone();

    let mut targets = Vec::new();
    for t in &config.targets {
        let kms_key = region_keys.get(&t.region).map(|k| k.as_str().to_owned()).unwrap_or_default();
        let wiring = TargetWiring { args, config, rec, endpoint, clock, definitions, topic: &topic };
        let target = wiring
            .target(t, &source_engine, &source_arn, kms_key)
            .await
            .map_err(|e| format!("target {}: {e}", label(t)))?;
        targets.push(target);
    }
    // Each target's subscription to the one topic, filtered on its own
    // message attributes; earlier drills' receivers go, this drill's stay.
    let urls: Vec<String> = targets.iter().map(|t| t.wiring.receiver.url.clone()).collect();
    let keep: Vec<&str> = urls.iter().map(String::as_str).collect();
    for t in &targets {
        let tgt = &t.config.target;
        let aws = setup::account_context(endpoint, &tgt.account_id, &src.region, None).await;
        let filter =
            json!({"targetAccountId": [tgt.account_id.as_str()], "targetRegion": [tgt.region.as_str()]});
        let step =
            setup::ensure_filtered_subscription(&aws, &topic, &t.wiring.receiver.url, Some(&filter), &keep)
                .await
                .map_err(err)?;
        rec.line(&format!("  setup     [{}] {}", t.label(), step.what));
    }
    Ok(((source_engine, source_arn), targets))
}

/// What one target's set-up needs from the drill.
struct TargetWiring<'a> {
    args: &'a DrillArgs,
    config: &'a Config,
    rec: &'a Recorder,
    endpoint: &'a str,
    clock: Clock,
    definitions: Option<&'a (String, String)>,
    topic: &'a aurora_dr_core::ids::Arn,
}

impl TargetWiring<'_> {
    /// Target `t`: its failure topic, SanityCheck secret and own key, its
    /// target machine on an engine of its account and region (its Step
    /// Functions API served for its InvokeStepFunction), and its receiver.
    async fn target(
        &self,
        t: &TargetSettings,
        source_engine: &Engine,
        source_arn: &str,
        kms_key: String,
    ) -> DrResult<Target> {
        let config = self.config.for_target(t);
        let tag = format!("[{}]", label(t));
        let io = |e: std::io::Error| DrError::invalid_input(format!("local Step Functions API: {e}"));
        let engine = Engine::with_account(self.clock, t.region.to_string(), t.account_id.to_string());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(io)?;
        let sfn_url = format!("http://{}", listener.local_addr().map_err(io)?);
        let aws = setup::account_context(self.endpoint, &t.account_id, &t.region, Some(sfn_url)).await;
        let (failures, _) = setup::ensure_topic(&aws, setup::FAILURE_TOPIC, None).await?;
        let mut settings = t.clone();
        settings.source_topic_arn = Some(self.topic.clone());
        settings.failure_topic_arn = Some(failures);
        if let Some(login) = &self.config.drill_sanity_login {
            let (arn, step) = setup::ensure_sanity_secret(&aws, &t.engine, login).await?;
            let what = if step.created { "created" } else { "updated" };
            self.rec.line(&format!("  setup     {tag} {} ({what})", step.what));
            settings.sanity.secret_arn = Some(arn);
        }
        let machine_arn =
            format!("arn:aws:states:{}:{}:stateMachine:aurora-dr-target", t.region, t.account_id);
        settings.state_machine_arn =
            Some(machine_arn.parse().map_err(|e| DrError::invalid_input(format!("{e}")))?);
        let (key, step) = setup::ensure_own_kms_key(&aws, t).await?;
        let what = if step.created { "created" } else { "exists" };
        self.rec.line(&format!("  setup     {tag} {} ({what})", step.what));
        settings.kms_key_arn = Some(key);
        settings.own_copy |= self.args.own_copy;
        let step = setup::ensure_wait_tokens_table(&aws).await?;
        let what = if step.created { "created" } else { "exists" };
        self.rec.line(&format!("  setup     {tag} {} ({what})", step.what));
        settings.wait_tokens_table = Some(setup::WAIT_TOKENS_TABLE.to_owned());
        let target_kms_key = settings.kms_key_arn.as_ref().map(|k| k.as_str().to_owned());
        let mut ctx = StepContext::new(aws, SideSettings::Target(settings))
            .with_resolver(Arc::new(EmulatedDns::at(self.endpoint)));
        if let Some(endpoint) = &self.config.drill_sanity_endpoint {
            ctx = ctx.with_probe_target(Arc::new(LocalDatabase(endpoint.clone())));
        }
        let aws_of_ctx = ctx.aws.clone();
        let ctx = Arc::new(ctx);
        let receiver = receiver::Receiver::start(Arc::clone(&ctx))
            .await
            .map_err(|e| DrError::invalid_input(format!("SNS receiver: {e}")))?;
        let events = super::route_rds_events(self.endpoint, &ctx, &aws_of_ctx, &t.region, &t.account_id)
            .await
            .map_err(|e| DrError::invalid_input(format!("RDS events: {e}")))?;
        let spec = match self.definitions {
            None => super::target_machine(&ctx, &t.region, &t.account_id)?,
            Some((_, target)) => machine_from(Side::Target, target, &ctx, &t.region, &t.account_id)?,
        };
        engine.register(spec).map_err(|e| DrError::invalid_input(e.to_string()))?;
        let server = tokio::spawn(aurora_dr_asl::serve(listener, engine.clone()));
        let wiring = Wiring {
            source_engine: source_engine.clone(),
            source_machine_arn: source_arn.to_owned(),
            target_engine: engine,
            receiver,
            events,
            target_ctx: ctx,
            kms_key,
            target_kms_key,
            durations: None,
        };
        Ok(Target { config, wiring, rec: self.rec.sibling(), server })
    }
}
