//! `aurora-dr chaos`: many drills in a row on one emulator, each run under a
//! random schedule of the emulator's faults, with the pipeline's safety
//! rules checked after every run.
//!
//! The command starts its own emulator and sets it up as `drill --seed`
//! does (key, topics, subscription, the source cluster). That emulator
//! and one drill wiring (both engines, the receiver) serve
//! every run, so what a run leaves (the existing name, old snapshots and
//! copies, whatever a failure left) is what the next one starts from. Run
//! `n`'s faults come from a PRNG seeded with `(seed, n)` only
//! ([`schedule::schedule`]): they are armed before the run and disarmed
//! when it ends, before the checks ([`invariants`]). A run that fails under
//! its faults is expected; a broken rule is not: exit 1 on any violation
//! (or a run that did not end within `--run-timeout`), 0 otherwise, 2 when
//! the configuration does not load or the emulator does not start.

pub mod invariants;
pub mod schedule;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aurora_dr_emulator::{CallRecord, Control, Emulator, EmulatorConfig, FaultRule};
use clap::Parser;
use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;

use crate::config::Config;
use crate::drill::{self, OpenDrill};
use invariants::{Leftovers, Place, Places, Violation};
use schedule::{Fault, FaultKind};

#[derive(Debug, Clone, clap::Args)]
pub struct ChaosArgs {
    /// The TOML configuration (see examples/drill.toml).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// How many runs.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub runs: usize,
    /// The PRNG seed of the fault schedules (default: from the clock; printed, so the
    /// run can be repeated).
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Number of the first run: its faults are those of run K under the seed (the
    /// runs before it are not played; the emulator starts empty).
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub from_run: u64,
    /// At most this many faults per run (each run draws 0 to M).
    #[arg(long, value_name = "M", default_value_t = 3)]
    pub max_faults: usize,
    /// Print one machine-readable JSON report at the end (the table then goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Multiply every Wait and Retry interval (and --durations) by this factor.
    #[arg(long, value_name = "F", default_value_t = 0.0001)]
    pub time_scale: f64,
    /// How long AWS work takes in the emulator, as for `drill --durations`
    /// (`realistic`, `zero` or a TOML file); default: a few polls per change.
    #[arg(long, value_name = "realistic|zero|FILE")]
    pub durations: Option<String>,
    /// Give up on a run (and stop, exit 1) when it has not ended after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub run_timeout: u64,
}

/// Called with the run's number and the emulator's URL right before each run
/// (after its faults are armed and the call log emptied). Tests use it to
/// break a rule on purpose and see the checks catch it.
pub type BeforeRun = Arc<dyn Fn(usize, String) -> BoxFuture<'static, ()> + Send + Sync>;

/// How one run went.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub run: usize,
    pub faults: Vec<Fault>,
    /// `SUCCEEDED`, `FAILED (source ...)`, `FAILED (target ...: Error)` or `HUNG`.
    pub outcome: String,
    pub ok: bool,
    /// The failed side's error cause, when the run failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    pub violations: Vec<Violation>,
    /// Rules that let this run pass on purpose, each with why (e.g. a
    /// serving copy broken by the schedule's own armed instance failure).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub seconds: f64,
    /// Snapshots a fault held in `creating` or `copying` past the run, let
    /// finish (`available`) before the checks.
    pub released: Vec<String>,
    /// The command that plays this run's faults again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reproduce: Option<String>,
}

/// The whole chaos run.
#[derive(Debug, Clone, Serialize)]
pub struct ChaosReport {
    pub seed: u64,
    pub runs: Vec<RunRecord>,
    #[serde(rename = "faultsByKind")]
    pub faults_by_kind: BTreeMap<String, usize>,
    pub outcomes: BTreeMap<String, usize>,
    #[serde(rename = "violationsByInvariant")]
    pub violations_by_invariant: BTreeMap<String, usize>,
    /// A run did not end in time: the runs stopped there.
    pub hung: bool,
    #[serde(rename = "totalSeconds")]
    pub total_seconds: f64,
}

impl ChaosReport {
    pub fn violations(&self) -> usize {
        self.runs.iter().map(|r| r.violations.len()).sum()
    }

    /// Exit 1 when a rule broke or a run hung.
    pub fn passed(&self) -> bool {
        self.violations() == 0 && !self.hung
    }
}

pub async fn run(args: ChaosArgs) -> ExitCode {
    if args.runs == 0 {
        eprintln!("--runs: at least 1");
        return ExitCode::from(2);
    }
    let config = match Config::load_one_target(&args.config, "chaos") {
        Ok(c) => c,
        Err(errors) => {
            eprint!("{errors}");
            return ExitCode::from(2);
        }
    };
    match execute(&args, &config, None).await {
        Ok(report) if report.passed() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("chaos: {e}");
            ExitCode::from(2)
        }
    }
}

/// The drill's own arguments for runs on the emulator at `endpoint`: parsed
/// as its command line is, so each option keeps the drill's default.
fn drill_args(args: &ChaosArgs, endpoint: &str) -> Result<drill::DrillArgs, String> {
    #[derive(Parser)]
    struct Drill {
        #[command(flatten)]
        args: drill::DrillArgs,
    }
    let config = args.config.display().to_string();
    let scale = args.time_scale.to_string();
    let mut argv = vec!["drill", "--config", &config, "--endpoint", endpoint, "--seed", "--json"];
    argv.extend(["--time-scale", &scale]);
    if let Some(d) = &args.durations {
        argv.extend(["--durations", d]);
    }
    Drill::try_parse_from(argv).map(|d| d.args).map_err(|e| e.to_string())
}

/// Runs the chaos runs and prints the table (or the JSON report).
pub async fn execute(
    args: &ChaosArgs,
    config: &Config,
    before_run: Option<BeforeRun>,
) -> Result<ChaosReport, String> {
    let started = Instant::now();
    let seed = args.seed.unwrap_or_else(|| time::OffsetDateTime::now_utc().unix_timestamp_nanos() as u64);
    let first = usize::try_from(args.from_run).map_err(|e| e.to_string())?;
    // With --json, stdout is the report alone: the table goes to stderr as it grows.
    let say = |line: String| {
        if args.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    say(format!(
        "aurora-dr chaos: seed {seed}, runs {first}..={}, at most {} fault(s) per run",
        first + args.runs.saturating_sub(1),
        args.max_faults
    ));
    let emulator = Emulator::start(EmulatorConfig::default()).await.map_err(|e| format!("emulator: {e}"))?;
    let endpoint = emulator.url().to_owned();
    let result = async {
        let control = Control::new(endpoint.trim_start_matches("http://").to_owned());
        let mut open = OpenDrill::open(&drill_args(args, &endpoint)?, config).await?;
        let (src, tgt) = (&config.source, &config.target);
        let places = Places {
            source: drill::setup::account_context(&endpoint, &src.account_id, &src.region, None).await,
            copies: drill::setup::account_context(&endpoint, &src.account_id, &tgt.region, None).await,
            target: drill::setup::account_context(&endpoint, &tgt.account_id, &tgt.region, None).await,
        };
        let baseline = invariants::source_fingerprint(&places.source, config).await?;
        say(format!("  emulator  {endpoint}; source clusters described ({} fields)", baseline.len()));
        say(format!("{:>5}  {:<44}  {:<40}  {}", "run", "faults", "outcome", "invariants"));
        let mut records = Vec::new();
        let mut names = BTreeMap::<String, invariants::NameState>::new();
        let mut hung = false;
        for n in first..first + args.runs {
            let faults = schedule::schedule(seed, n, args.max_faults, config);
            let before = Place::read(&places.target).await?;
            control.reset_faults().await.map_err(|e| e.to_string())?;
            control.clear_calls().await.map_err(|e| e.to_string())?;
            for f in &faults {
                control.arm(f.rule.clone()).await.map_err(|e| format!("arming {}: {e}", f.what))?;
            }
            if let Some(hook) = &before_run {
                hook(n, endpoint.clone()).await;
            }
            let run_started = Instant::now();
            let end = tokio::time::timeout(
                Duration::from_secs(args.run_timeout),
                open.run(config, n, first + args.runs - 1),
            )
            .await;
            control.reset_faults().await.map_err(|e| e.to_string())?;
            let calls = control.calls().await.map_err(|e| e.to_string())?;
            let released = release_stuck_snapshots(&control, config, &places).await?;
            let (outcome, ok, kept) = match &end {
                Ok(Ok(end)) => (outcome_of(end), end.ok, kept_of(&end.report)),
                Ok(Err(e)) => (format!("ERROR ({e})"), false, Vec::new()),
                Err(_) => ("HUNG".to_owned(), false, Vec::new()),
            };
            let cause = match &end {
                Ok(Ok(end)) if !end.ok => cause_of(end),
                _ => None,
            };
            let run = RunFacts { calls: &calls, before: &before, faults: &faults, ok, kept: &kept };
            let (violations, notes) = check(config, &places, &baseline, &run, &mut names).await?;
            let reproduce = (!violations.is_empty() || end.is_err()).then(|| {
                format!(
                    "aurora-dr chaos --config {} --seed {seed} --from-run {n} --runs 1 (with the runs before it: \
                     --runs {n})",
                    args.config.display()
                )
            });
            let record = RunRecord {
                run: n,
                faults,
                outcome,
                ok,
                cause,
                violations,
                notes,
                seconds: run_started.elapsed().as_secs_f64(),
                released,
                reproduce,
            };
            say(row(&record));
            records.push(record);
            if end.is_err() {
                hung = true;
                say(format!("run {n} did not end within {}s: stopping (its executions may still run)", args.run_timeout));
                break;
            }
        }
        Ok::<_, String>(summarise(seed, records, hung, started.elapsed().as_secs_f64()))
    }
    .await;
    let _ = emulator.stop().await;
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        for line in summary_lines(&report) {
            println!("{line}");
        }
    }
    Ok(report)
}

/// Lets every snapshot that a fault kept in progress finish. The emulator
/// holds a `snapshot-stuck` snapshot in `creating` for good, where RDS
/// would end it some time after the pipeline's wait gave up; left so, it
/// would be an in-progress snapshot of the cluster in every later run (which
/// the source side refuses as an overlapping run: `Conflict`). An exact-id
/// `snapshot_status` rule moves an existing snapshot's end; it is disarmed
/// again right away.
async fn release_stuck_snapshots(
    control: &Control,
    config: &Config,
    places: &Places,
) -> Result<Vec<String>, String> {
    let (src, tgt) = (&config.source, &config.target);
    let mut released = Vec::new();
    for (ctx, account, region) in [
        (&places.source, &src.account_id, &src.region),
        (&places.copies, &src.account_id, &tgt.region),
        (&places.target, &tgt.account_id, &tgt.region),
    ] {
        let place = Place::read(ctx).await?;
        for (id, status) in &place.snapshots {
            if status == "creating" || status == "copying" {
                let rule = aurora_dr_emulator::FaultRule::snapshot_status_in(
                    id,
                    "available",
                    account.as_str(),
                    region.as_str(),
                );
                control.arm(rule).await.map_err(|e| format!("releasing snapshot {id}: {e}"))?;
                released.push(format!("{id} ({status})"));
            }
        }
    }
    control.reset_faults().await.map_err(|e| e.to_string())?;
    Ok(released)
}

/// What one run did and left, as the rules read it.
struct RunFacts<'a> {
    /// The run's calls, from the emulator's log.
    calls: &'a [CallRecord],
    /// The target account as the run found it.
    before: &'a Place,
    /// The faults armed for the run.
    faults: &'a [Fault],
    /// Whether the run restored every cluster.
    ok: bool,
    /// Clusters the run reports it kept.
    kept: &'a [String],
}

/// Every rule after one run, and the notes of what a rule excused; `names`
/// carries each existing name's state from run to run.
async fn check(
    config: &Config,
    places: &Places,
    baseline: &BTreeMap<String, String>,
    run: &RunFacts<'_>,
    names: &mut BTreeMap<String, invariants::NameState>,
) -> Result<(Vec<Violation>, Vec<String>), String> {
    let tgt = &config.target;
    let source = Place::read(&places.source).await?;
    let copies = Place::read(&places.copies).await?;
    let target = Place::read(&places.target).await?;
    let mut out = Vec::new();
    let mut notes = Vec::new();
    for pair in &tgt.pairs {
        let existing = pair.existing_cluster_id.as_str();
        // A failure armed on an instance under the pair's names may hit the
        // serving copy itself (e.g. the previous instance as a rollback
        // renames it back).
        let instance_failure_armed = run.faults.iter().any(|f| {
            matches!(&f.rule, FaultRule::InstanceStatus { id, .. }
                if id.eq_ignore_ascii_case(pair.existing_instance_id.as_str())
                    || id.eq_ignore_ascii_case(pair.temp_instance_id.as_str()))
        });
        let state = names.entry(existing.to_owned()).or_default();
        out.extend(state.existing_serves(&target, existing, run.ok, instance_failure_armed));
        notes.extend(state.excuse(existing));
        let serving = invariants::serving_at_start(run.before, existing);
        out.extend(invariants::serving_kept(
            run.calls,
            tgt.account_id.as_str(),
            tgt.region.as_str(),
            existing,
            serving.as_ref(),
        ));
    }
    let now = invariants::source_fingerprint(&places.source, config).await?;
    out.extend(invariants::source_unchanged(baseline, &now));
    let target_account = [tgt.account_id.as_str()];
    out.extend(invariants::shares(&places.source, &source, "source", &target_account).await?);
    out.extend(invariants::shares(&places.copies, &copies, "copies", &target_account).await?);
    out.extend(invariants::shares(&places.target, &target, "target", &[]).await?);
    if run.ok {
        out.extend(Leftovers { config, kept: run.kept }.check(&source, &copies, &target));
    }
    Ok((out, notes))
}

/// The outcome column: SUCCEEDED, or which side failed and with what.
fn outcome_of(end: &drill::RunEnd) -> String {
    if end.ok {
        return "SUCCEEDED".to_owned();
    }
    let target = &end.report["target"];
    match (end.source.as_str(), end.target) {
        ("SUCCEEDED", Some(status)) => {
            format!("FAILED (target {}: {})", status.as_str(), target["error"].as_str().unwrap_or("-"))
        }
        ("SUCCEEDED", None) => "FAILED (target not started)".to_owned(),
        (source, _) => match &end.source_error {
            Some((error, _)) => format!("FAILED (source {source}: {error})"),
            None => format!("FAILED (source {source})"),
        },
    }
}

/// The cause of the side that failed (the target's when the source succeeded).
fn cause_of(end: &drill::RunEnd) -> Option<String> {
    match &end.source_error {
        Some((_, cause)) => Some(cause.clone()),
        None => end.report["target"]["cause"].as_str().map(str::to_owned),
    }
}

/// The clusters a run reports it kept on purpose.
fn kept_of(report: &Value) -> Vec<String> {
    report["keptClusters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k["clusterId"].as_str().map(str::to_owned))
        .collect()
}

/// One table row, then one line per violation and the reproducing command.
fn row(r: &RunRecord) -> String {
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &r.faults {
        *kinds.entry(f.kind.name()).or_default() += 1;
    }
    let faults = if kinds.is_empty() {
        "none".to_owned()
    } else {
        kinds
            .iter()
            .map(|(k, n)| if *n > 1 { format!("{k} x{n}") } else { (*k).to_owned() })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let verdict = if r.violations.is_empty() && !r.notes.is_empty() {
        "ok (excused, see below)".to_owned()
    } else if r.violations.is_empty() {
        "ok".to_owned()
    } else {
        let mut names: Vec<&str> = r.violations.iter().map(|v| v.invariant).collect();
        names.dedup();
        format!("VIOLATED: {}", names.join(", "))
    };
    let mut s = format!("{:>5}  {:<44}  {:<40}  {verdict} [{:.1}s]", r.run, faults, r.outcome, r.seconds);
    for f in r.faults.iter().filter(|_| !r.violations.is_empty()) {
        s.push_str(&format!("\n       fault: {}", f.what));
    }
    for v in &r.violations {
        s.push_str(&format!("\n       {}: {}", v.invariant, v.detail));
    }
    for note in &r.notes {
        s.push_str(&format!("\n       {note}"));
    }
    if let Some(cmd) = &r.reproduce {
        s.push_str(&format!("\n       reproduce: {cmd}"));
    }
    s
}

fn summarise(seed: u64, runs: Vec<RunRecord>, hung: bool, total_seconds: f64) -> ChaosReport {
    let mut faults_by_kind: BTreeMap<String, usize> =
        FaultKind::ALL.iter().map(|k| (k.name().to_owned(), 0)).collect();
    let mut outcomes = BTreeMap::new();
    let mut violations_by_invariant: BTreeMap<String, usize> =
        invariants::INVARIANTS.iter().map(|i| ((*i).to_owned(), 0)).collect();
    for r in &runs {
        for f in &r.faults {
            *faults_by_kind.entry(f.kind.name().to_owned()).or_default() += 1;
        }
        *outcomes.entry(r.outcome.clone()).or_default() += 1;
        for v in &r.violations {
            *violations_by_invariant.entry(v.invariant.to_owned()).or_default() += 1;
        }
    }
    ChaosReport { seed, runs, faults_by_kind, outcomes, violations_by_invariant, hung, total_seconds }
}

fn summary_lines(report: &ChaosReport) -> Vec<String> {
    let join = |m: &BTreeMap<String, usize>| {
        m.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
    };
    let faults: usize = report.faults_by_kind.values().sum();
    let failing: Vec<String> =
        report.runs.iter().filter(|r| !r.violations.is_empty()).map(|r| r.run.to_string()).collect();
    vec![
        format!(
            "summary: {} run(s) in {:.1}s, seed {}; {faults} fault(s) injected",
            report.runs.len(),
            report.total_seconds,
            report.seed
        ),
        format!("  faults      {}", join(&report.faults_by_kind)),
        format!("  outcomes    {}", join(&report.outcomes)),
        format!("  violations  {} ({})", report.violations(), join(&report.violations_by_invariant)),
        if report.passed() {
            "result: every invariant held".to_owned()
        } else if report.hung {
            format!(
                "result: a run did not end in time; runs with violations: {}",
                if failing.is_empty() { "none".into() } else { failing.join(", ") }
            )
        } else {
            format!("result: INVARIANTS VIOLATED in run(s) {}", failing.join(", "))
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(violations: Vec<Violation>, notes: Vec<String>) -> RunRecord {
        RunRecord {
            run: 3,
            faults: Vec::new(),
            outcome: "FAILED (target FAILED: ResourceFailed)".into(),
            ok: false,
            cause: None,
            violations,
            notes,
            seconds: 1.0,
            released: Vec::new(),
            reproduce: None,
        }
    }

    #[test]
    fn a_row_says_when_a_rule_excused_the_run() {
        let plain = row(&record(Vec::new(), Vec::new()));
        assert!(plain.contains("  ok [1.0s]") && !plain.contains('\n'), "{plain}");
        let note = "existing-serves excused: dr serves instances beyond repair".to_owned();
        let excused = row(&record(Vec::new(), vec![note.clone()]));
        assert!(excused.contains("ok (excused, see below)"), "{excused}");
        assert!(excused.lines().nth(1).is_some_and(|l| l.trim() == note), "{excused}");
        let violation = Violation { invariant: "existing-serves", detail: "dr: absent".into() };
        let violated = row(&record(vec![violation], vec![note]));
        assert!(violated.contains("VIOLATED: existing-serves"), "{violated}");
    }
}
