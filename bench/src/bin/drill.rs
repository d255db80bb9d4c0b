//! Benchmark 2: drill overhead.
//!
//! Runs `aurora-dr drill` (the release CLI: both state machines on the local
//! engine, the step handlers in-process) N times against one emulator with
//! its latency off, through a timing proxy. For each run:
//! - **total**: wall time of the `aurora-dr drill` process, spawn to exit;
//! - **in emulator calls**: the union of the intervals the proxy measured
//!   for the AWS calls of that run (request headers in to whole response
//!   out; overlapping calls are counted once);
//! - **overhead** = total - in emulator calls: engine, handlers (request
//!   building, signing, parsing), the CLI, process start, the loopback hops
//!   to the proxy and the emulator's asynchronous SNS delivery to the drill's
//!   receiver (work the emulator does outside any client call).
//!
//! Run: `make bench` or `target/release/bench-drill --help`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use aurora_dr_bench::proxy::TimingProxy;
use aurora_dr_bench::stats::{Summary, union_length};
use aurora_dr_bench::table::Table;
use aurora_dr_bench::{machine_summary, repo_root};
use aurora_dr_emulator::{Delay, Emulator, EmulatorConfig, Latency};
use clap::Parser;
use serde_json::Value;

#[derive(Debug, Parser)]
#[command(about = "Drill overhead: time inside emulator calls against the drill's total")]
struct Args {
    /// Drills to run (one after another, against one emulator).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// The `aurora-dr` binary.
    #[arg(long, value_name = "FILE")]
    cli: Option<PathBuf>,
    /// The drill configuration.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// One drill's figures.
struct Run {
    total_s: f64,
    emulator_s: f64,
    calls: usize,
    transitions: usize,
    states: usize,
    result: String,
}

fn main() -> ExitCode {
    aurora_dr_bench::run_main("bench-drill", run(Args::parse()))
}

async fn run(args: Args) -> Result<(), String> {
    let root = repo_root();
    let cli = aurora_dr_bench::cli_binary(args.cli.as_deref())?;
    let config = args.config.clone().unwrap_or_else(|| root.join("examples/drill.toml"));
    println!("== 2. Drill overhead ==");
    println!("machine: {}", machine_summary());
    println!(
        "{} runs of `{} drill --config {} --seed --time-scale 0.0001`, \
         one emulator with latency off, AWS calls timed by a proxy",
        args.runs,
        cli.strip_prefix(&root).unwrap_or(&cli).display(),
        config.strip_prefix(&root).unwrap_or(&config).display()
    );

    println!("starting the emulator, latency off (its first start creates .venv with moto)");
    let emulator =
        Emulator::start(EmulatorConfig::default().with_latency(Latency::uniform(Delay::default())))
            .await
            .map_err(|e| format!("emulator: {e}"))?;
    let proxy = TimingProxy::start(emulator.url()).await.map_err(|e| format!("proxy: {e}"))?;
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;

    let mut runs = Vec::new();
    for n in 1..=args.runs {
        // Execution and snapshot names carry the start second: one drill per second.
        let into_second = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| f64::from(d.subsec_nanos()) / 1e9);
        tokio::time::sleep(std::time::Duration::from_secs_f64(1.05 - into_second)).await;
        proxy.take();
        let html = scratch.path().join(format!("drill-{n}.html"));
        let started = Instant::now();
        let output = tokio::process::Command::new(&cli)
            .arg("drill")
            .arg("--config")
            .arg(&config)
            .args(["--endpoint", proxy.url(), "--seed", "--json", "--time-scale", "0.0001", "--runs", "1"])
            .arg("--html")
            .arg(&html)
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| format!("{}: {e}", cli.display()))?;
        let ended = Instant::now();
        let intervals: Vec<(f64, f64)> = proxy
            .take()
            .iter()
            .filter(|c| c.start >= started && c.end <= ended)
            .map(|c| ((c.start - started).as_secs_f64(), (c.end - started).as_secs_f64()))
            .collect();
        let report: Value = serde_json::from_slice(&output.stdout).map_err(|e| {
            format!(
                "run {n}: no JSON report ({e}); exit {}; stderr:\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
        let states = report["states"].as_array().map_or(0, Vec::len);
        // Step Functions counts a retried attempt as a transition too.
        let retries: usize = report["states"]
            .as_array()
            .map(|spans| {
                spans.iter().map(|s| s["attempts"].as_u64().unwrap_or(0).saturating_sub(1) as usize).sum()
            })
            .unwrap_or(0);
        if report["result"] != "SUCCEEDED" {
            let errors: Vec<String> = report["states"]
                .as_array()
                .map(|spans| {
                    spans
                        .iter()
                        .filter_map(|s| s["error"].as_str().map(|e| format!("{}: {e}", s["state"])))
                        .collect()
                })
                .unwrap_or_default();
            println!("  run {n} failed: {} {}", report["runs"][0]["note"], errors.join("; "));
        }
        runs.push(Run {
            total_s: (ended - started).as_secs_f64(),
            emulator_s: union_length(&intervals),
            calls: intervals.len(),
            transitions: states + retries,
            states,
            result: report["result"].as_str().unwrap_or("?").to_owned(),
        });
    }
    drop(proxy);
    let _ = emulator.stop().await;

    let mut table = Table::new(&[
        "run",
        "result",
        "total s",
        "in emulator calls s",
        "overhead s",
        "overhead %",
        "AWS calls",
        "transitions",
    ]);
    for (i, r) in runs.iter().enumerate() {
        let overhead = r.total_s - r.emulator_s;
        table.row(vec![
            format!("{}", i + 1),
            r.result.clone(),
            format!("{:.3}", r.total_s),
            format!("{:.3}", r.emulator_s),
            format!("{overhead:.3}"),
            format!("{:.1}", 100.0 * overhead / r.total_s),
            r.calls.to_string(),
            if r.transitions == r.states {
                r.transitions.to_string()
            } else {
                format!("{} ({} states + {} retries)", r.transitions, r.states, r.transitions - r.states)
            },
        ]);
    }
    print!("{}", table.render());
    let pct: Vec<f64> = runs.iter().map(|r| 100.0 * (r.total_s - r.emulator_s) / r.total_s).collect();
    let totals: Vec<f64> = runs.iter().map(|r| r.total_s).collect();
    if let (Some(p), Some(t)) = (Summary::of(&pct), Summary::of(&totals)) {
        println!("  total s min / median / max: {}; overhead % min / median / max: {}", t.show(3), p.show(1));
        let met = if p.median <= 20.0 { "met" } else { "MISSED" };
        println!("  transitions: states entered by both machines (+ retried attempts)");
        println!(
            "target: orchestration overhead at most 20 % of the total: {met} ({:.1} % at the median)",
            p.median
        );
    }
    if runs.iter().any(|r| r.result != "SUCCEEDED") {
        return Err("a drill did not succeed".to_owned());
    }
    Ok(())
}
