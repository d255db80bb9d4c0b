//! Benchmark 3: scale.
//!
//! - The local engine: 1,000 concurrent executions of
//!   `statemachines/source.asl.json` as written, every Task answered by a
//!   mock config (Step Functions Local format), in two test cases: each task
//!   once, and each wait not ready twice (FetchStatus's answer to wait 20 s,
//!   through the definition's own Choice and Wait, scaled by 1e-6, which
//!   tokio's timer rounds up to 1 ms). Transitions per second, where a transition is
//!   a state entered or a retried attempt (as Step Functions counts them).
//!   History events count the runs' and their Distributed Maps' child
//!   executions'; the largest history is the longest of any one of them.
//!   The per-transition micro-benchmark of a synthetic machine is
//!   `cargo bench -p aurora-dr-asl --bench engine`.
//! - The fleet drill at 12, 50 and 100 clusters (`[[pairs]]`) with the
//!   emulator's copy quota of 5, with source snapshots as long as a copy and
//!   a fifth of it: the source execution's wall time against
//!   the quota-bound ideal ceil(n/5) x copy time, and against the bound of
//!   any schedule, which also waits for a snapshot (a copy needs its
//!   snapshot): snapshot + ceil(n/5) x copy.
//!
//! Run: `make bench` or `target/release/bench-scale --help`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use aurora_dr_asl::{
    Clock, Definition, Engine, EventType, MockConfig, StartOptions, StateMachineSpec, Status, Substitutions,
};
use aurora_dr_bench::machine_summary;
use aurora_dr_bench::table::Table;
use aurora_dr_core::steps::{FUNCTIONS, Side};
use aurora_dr_emulator::{Delay, Emulator, EmulatorConfig, FaultRule, Latency};
use clap::Parser;
use serde_json::{Value, json};

const SOURCE_ASL: &str = include_str!("../../../statemachines/source.asl.json");
const MACHINE: &str = "aurora-dr-source";
const REGION: &str = "us-west-2";
const ACCOUNT: &str = "111111111111";

#[derive(Debug, Parser)]
#[command(about = "Engine scale (concurrent executions of the source machine) and fleet scale")]
struct Args {
    /// Concurrent executions per round.
    #[arg(long, default_value_t = 1000)]
    executions: usize,
    /// Rounds per test case.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Fleet sizes to drill, comma-separated (`--fleet ""`: skip the fleet
    /// drill).
    #[arg(long, default_value = "12,50,100", value_parser = fleet_sizes)]
    fleet: FleetSizes,
    /// Seconds every snapshot copy takes in the fleet drill's emulator.
    #[arg(long, default_value_t = 1.0)]
    copy_seconds: f64,
    /// Source snapshot durations to drill, as fractions of the copy's: 1
    /// (as long as a copy, the worst case) and 0.2 (a copy five times longer:
    /// Aurora snapshot copies are full copies of the volume moved across
    /// regions).
    #[arg(long, value_delimiter = ',', default_value = "1,0.2")]
    snapshot_fractions: Vec<f64>,
    /// The fleet drill's `--time-scale` (polling intervals).
    #[arg(long, default_value_t = 0.0002)]
    fleet_time_scale: f64,
    /// The `aurora-dr` binary.
    #[arg(long, value_name = "FILE")]
    cli: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    aurora_dr_bench::run_main("bench-scale", run(Args::parse()))
}

async fn run(args: Args) -> Result<(), String> {
    println!("== 3. Scale ==");
    println!("machine: {}", machine_summary());
    println!(
        "local engine: {} concurrent executions of statemachines/source.asl.json, tasks mocked, {} rounds per case",
        args.executions, args.rounds
    );
    let clock = Clock::scaled(1e-6).map_err(|e| e.to_string())?.with_real_timeouts();
    let engine = Engine::with_account(clock, REGION, ACCOUNT);
    let machine = engine.register(source_machine()?).map_err(|e| e.to_string())?;

    let mut table = Table::new(&[
        "test case",
        "round",
        "wall ms",
        "start all ms",
        "transitions",
        "transitions/s",
        "history events",
        "largest history",
    ]);
    for (case, what) in [("EachTaskOnce", "each task once"), ("PollTwice", "each wait polled twice")] {
        for round in 1..=args.rounds {
            let started = Instant::now();
            let executions = (0..args.executions)
                .map(|i| {
                    engine
                        .start(
                            &machine.arn,
                            json!({}),
                            StartOptions::named(format!("{case}-{round}-{i}")).test_case(case),
                        )
                        .map_err(|e| e.to_string())
                })
                .collect::<Result<Vec<_>, _>>()?;
            let all_started = started.elapsed();
            for execution in &executions {
                let outcome = execution.wait().await;
                if outcome.status != Status::Succeeded {
                    return Err(format!(
                        "{case}: {} ended {:?}: {} {}",
                        execution.arn(),
                        outcome.status,
                        outcome.error.unwrap_or_default(),
                        outcome.cause.unwrap_or_default()
                    ));
                }
            }
            let wall = started.elapsed();
            let (mut transitions, mut events, mut largest) = (0usize, 0usize, 0usize);
            for execution in &executions {
                // The run's own history and each of its Distributed Maps' child executions'.
                for history in histories(&engine, execution) {
                    events += history.len();
                    largest = largest.max(history.len());
                    transitions += transitions_of(&history.iter().map(|e| e.event_type).collect::<Vec<_>>());
                }
            }
            table.row(vec![
                format!("{case} ({what})"),
                round.to_string(),
                format!("{:.1}", wall.as_secs_f64() * 1e3),
                format!("{:.1}", all_started.as_secs_f64() * 1e3),
                transitions.to_string(),
                format!("{:.0}", transitions as f64 / wall.as_secs_f64()),
                events.to_string(),
                largest.to_string(),
            ]);
        }
    }
    print!("{}", table.render());

    if args.fleet.0.is_empty() {
        return Ok(());
    }
    println!();
    fleet(&args).await
}

/// `--fleet`'s sizes; empty when the fleet drill is skipped.
#[derive(Debug, Clone, PartialEq)]
struct FleetSizes(Vec<usize>);

/// Parses `--fleet`: comma-separated sizes of at least one cluster, or
/// nothing at all.
fn fleet_sizes(text: &str) -> Result<FleetSizes, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(FleetSizes(Vec::new()));
    }
    text.split(',')
        .map(|item| match item.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => {
                Err(format!("'{}' is not a fleet size (a whole number of clusters, at least 1)", item.trim()))
            }
        })
        .collect::<Result<_, _>>()
        .map(FleetSizes)
}

/// The fleet drill: `aurora-dr drill` with n cluster pairs against an
/// emulator whose copies take `copy_seconds`, whose source snapshots take
/// each of `snapshot_fractions` of that, and that refuses a sixth concurrent
/// copy (the Aurora quota of 5).
async fn fleet(args: &Args) -> Result<(), String> {
    let cli = aurora_dr_bench::cli_binary(args.cli.as_deref())?;
    let copy = args.copy_seconds;
    println!(
        "fleet drill: `aurora-dr drill --seed --time-scale {}` with n cluster pairs; emulator: copy quota 5, \
         every copy takes {copy} s, a source snapshot the given share of that, clusters and instances none",
        args.fleet_time_scale
    );
    println!(
        "  source wall: the source execution (all clusters' snapshot, copy, share, notify), first state to last"
    );
    let mut table = Table::new(&[
        "clusters",
        "snapshot s",
        "result",
        "source wall s",
        "ideal ceil(n/5) x copy s",
        "ratio",
        "snapshot + ceil(n/5) x copy s",
        "ratio",
        "drill total s",
    ]);
    let mut verdicts = Vec::new();
    for &fraction in &args.snapshot_fractions {
        let snapshot = copy * fraction;
        for &n in &args.fleet.0 {
            let latency = Latency {
                snapshot: Delay::seconds(snapshot),
                copy: Delay::seconds(copy),
                cluster: Delay::default(),
                instance: Delay::default(),
                ..Latency::default()
            };
            let (report, total) = fleet_drill(args, &cli, n, latency).await?;
            let wall = source_wall(&report);
            let ideal = n.div_ceil(5) as f64 * copy;
            let ratio = wall / ideal;
            // No copy can start before its snapshot exists: at least one
            // snapshot comes before the quota-bound copies in any schedule.
            let bound = snapshot + ideal;
            verdicts.push((n, snapshot, ratio, wall / bound));
            table.row(vec![
                n.to_string(),
                format!("{snapshot:.2}"),
                report["result"].as_str().unwrap_or("?").to_owned(),
                format!("{wall:.2}"),
                format!("{ideal:.2}"),
                format!("{ratio:.2}x"),
                format!("{bound:.2}"),
                format!("{:.2}x", wall / bound),
                format!("{total:.2}"),
            ]);
        }
    }
    print!("{}", table.render());
    println!(
        "  the second ideal adds one snapshot (the first copies wait for theirs): the bound of any schedule"
    );
    for (n, snapshot, ratio, to_bound) in verdicts {
        let met = if ratio <= 1.3 { "met" } else { "MISSED" };
        println!(
            "target: {n} clusters, {snapshot:.2} s snapshots, within 1.3x of the quota-bound ideal: {met} \
             ({ratio:.2}x; {to_bound:.2}x the bound of any schedule)"
        );
    }
    Ok(())
}

/// One fleet drill of `n` clusters on its own emulator: the JSON report and
/// the drill's wall time in seconds.
async fn fleet_drill(
    args: &Args,
    cli: &std::path::Path,
    n: usize,
    latency: Latency,
) -> Result<(Value, f64), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config = dir.path().join("fleet.toml");
    std::fs::write(&config, fleet_config(n)).map_err(|e| e.to_string())?;
    let emulator =
        Emulator::start(EmulatorConfig::default().with_latency(latency).with_fault(FaultRule::copy_quota(5)))
            .await
            .map_err(|e| format!("emulator: {e}"))?;
    let started = Instant::now();
    let output = tokio::process::Command::new(cli)
        .arg("drill")
        .arg("--config")
        .arg(&config)
        .args(["--endpoint", emulator.url(), "--seed", "--json", "--runs", "1"])
        .args(["--time-scale", &args.fleet_time_scale.to_string()])
        .arg("--html")
        .arg(dir.path().join("timeline.html"))
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("{}: {e}", cli.display()))?;
    let total = started.elapsed().as_secs_f64();
    let _ = emulator.stop().await;
    let report = serde_json::from_slice(&output.stdout).map_err(|e| {
        format!(
            "{n} clusters: no JSON report ({e}); exit {}; stderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    Ok((report, total))
}

/// The source execution's first state start to its last state end, seconds.
fn source_wall(report: &Value) -> f64 {
    let spans = report["states"].as_array().cloned().unwrap_or_default();
    let source = |key: &str| -> Vec<f64> {
        spans.iter().filter(|s| s["machine"] == "source").filter_map(|s| s[key].as_f64()).collect()
    };
    match (source("start").into_iter().reduce(f64::min), source("end").into_iter().reduce(f64::max)) {
        (Some(a), Some(b)) => b - a,
        _ => f64::NAN,
    }
}

/// A configuration of `n` cluster pairs `dbNNN` -> `dr-dbNNN`.
fn fleet_config(n: usize) -> String {
    let mut text = String::from(
        "[source]\naccount_id = \"111111111111\"\nregion = \"us-west-2\"\nsnapshot_prefix = \"aurora-dr\"\n\n\
         [target]\naccount_id = \"222222222222\"\nregion = \"us-west-1\"\nengine = \"aurora-postgresql\"\n\
         instance_class = \"db.r6g.large\"\n",
    );
    for i in 1..=n {
        text.push_str(&format!(
            "\n[[pairs]]\nsource_cluster_id = \"db{i:03}\"\nexisting_cluster_id = \"dr-db{i:03}\"\n\
             temp_cluster_id = \"dr-db{i:03}-next\"\nexisting_instance_id = \"dr-db{i:03}-1\"\n\
             temp_instance_id = \"dr-db{i:03}-next-1\"\n"
        ));
    }
    text
}

/// The histories of an execution and of every child execution its
/// Distributed Maps started (each has its own, and its own quota).
fn histories(engine: &Engine, execution: &aurora_dr_asl::Execution) -> Vec<Vec<aurora_dr_asl::HistoryEvent>> {
    let history = execution.history();
    let runs: Vec<String> = history.iter().filter_map(|e| e.details.map_run_arn.clone()).collect();
    let mut all = vec![history];
    for run in runs {
        for child in engine.map_run_executions(&run) {
            all.extend(histories(engine, &child));
        }
    }
    all
}

/// States entered plus retried task attempts.
fn transitions_of(events: &[EventType]) -> usize {
    let entered = events.iter().filter(|t| t.as_str().ends_with("StateEntered")).count();
    let tasks_entered = events.iter().filter(|t| **t == EventType::TaskStateEntered).count();
    let attempts = events
        .iter()
        .filter(|t| matches!(t, EventType::LambdaFunctionScheduled | EventType::TaskScheduled))
        .count();
    entered + attempts.saturating_sub(tasks_entered)
}

/// The source machine as deployed, its function placeholders bound to
/// Lambda ARNs, every task answered by the mock config.
fn source_machine() -> Result<StateMachineSpec, String> {
    let mut subs = Substitutions::new();
    for function in FUNCTIONS.iter().filter(|f| f.on(Side::Source)) {
        let Some(placeholder) = function.substitution else { continue };
        subs.insert(
            placeholder,
            format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:aurora-dr-source-{}", function.name),
        );
    }
    let definition =
        Definition::parse_with(SOURCE_ASL, &subs).map_err(|e| format!("source.asl.json: {e}"))?;
    let mocks = MockConfig::from_value(&mock_config()).map_err(|e| format!("mock config: {e}"))?;
    Ok(StateMachineSpec::new(MACHINE, definition)
        .arn(format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{MACHINE}"))
        .mocks(Arc::new(mocks)))
}

fn mock_config() -> Value {
    let run = json!({
        "runId": "bench", "createdAt": "2026-01-01T00:00:00Z", "sourceClusterId": "orders",
        "sourceSnapshotId": "aurora-dr-orders-20260101000000", "targetSnapshotId": "aurora-dr-orders-20260101000000",
        "targetRegion": "us-west-1", "targetAccountId": "222222222222",
        "targetRegions": [{"targetRegion": "us-west-1", "targetAccountId": "222222222222",
                           "kmsKeyArn": "arn:aws:kms:us-west-1:111111111111:key/k"}]
    });
    let once = json!({
        "MakeRoom": "Payload", "CreateSnapshot": "Payload", "WaitForSourceSnapshot": "Available", "EncryptCopy": "Payload",
        "WaitForTargetSnapshot": "Available", "Share": "Payload", "Notify": "Payload",
        "ApplyRetention": "Payload"
    });
    let mut twice = once.clone();
    twice["WaitForSourceSnapshot"] = json!("NotReadyTwice");
    twice["WaitForTargetSnapshot"] = json!("NotReadyTwice");
    json!({
        "StateMachines": {MACHINE: {"TestCases": {"EachTaskOnce": once, "PollTwice": twice}}},
        "MockedResponses": {
            "Payload": {"0": {"Return": run}},
            "Available": {"0": {"Return": {"resource": "aurora-dr-orders-20260101000000", "status": "available"}}},
            // A predicted wait's not-ready polls: FetchStatus's Poll, 20 s apart.
            "NotReadyTwice": {
                "0": {"Return": {"waitFor": "snapshot", "ready": false, "status": "creating", "seconds": 20, "polls": 1}},
                "1": {"Return": {"waitFor": "snapshot", "ready": false, "status": "creating", "seconds": 20, "waited": 20, "polls": 2}},
                "2": {"Return": {"resource": "aurora-dr-orders-20260101000000", "status": "available", "ready": true}}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_fleet_list_skips_the_fleet_drill() {
        assert_eq!(Args::try_parse_from(["bench-scale", "--fleet", ""]).unwrap().fleet, FleetSizes(vec![]));
        assert_eq!(Args::try_parse_from(["bench-scale"]).unwrap().fleet, FleetSizes(vec![12, 50, 100]));
        assert_eq!(
            Args::try_parse_from(["bench-scale", "--fleet", "3, 7"]).unwrap().fleet,
            FleetSizes(vec![3, 7])
        );
    }

    #[test]
    fn a_bad_fleet_size_is_named() {
        for bad in ["12,x", "0", "12,,50"] {
            let err = Args::try_parse_from(["bench-scale", "--fleet", bad]).unwrap_err().to_string();
            assert!(err.contains("is not a fleet size"), "{bad}: {err}");
        }
    }
}
