//! Benchmark 4: the time the waits add to AWS's own work, and what a run costs.
//!
//! Runs the whole pipeline (`aurora-dr drill --seed --durations realistic`,
//! source and target machines) for each cluster size at a scaled clock,
//! once with the polling schedule of `statemachines/` as it is and once with
//! the previous schedule (every wait polled by Retry 30 s, x1.5, at most
//! 300 s apart; the predicted waits' loops turned back into such a Task),
//! written into a scratch copy of the same definitions: both schedules side
//! by side from one run of the program.
//!
//! Per phase: the emulated AWS work, the workflow's time over it and the
//! detection latency (`aurora_dr_cli::drill::phases`: time inside Task
//! attempts at face value, the Wait/Retry sleeps divided by the scale). Per run: the added
//! latency, state transitions (every state entered and every retry: Step
//! Functions bills both), Lambda invocations (every Task attempt and the
//! SNS-triggered InvokeStepFunction and the EventBridge-triggered
//! CompleteWait), Lambda GB-seconds at the deployed memory size, SNS
//! publishes, the task-token table's DynamoDB request units, and the cost
//! at list prices. The previous schedule turns the callback waits (RDS
//! events, polling every 5 minutes as the fallback) back into Retry polls.
//!
//! Run: `make bench` or `target/release/bench-latency --help`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aurora_dr_bench::table::Table;
use aurora_dr_bench::{machine_summary, repo_root};
use aurora_dr_cli::drill::phases::{self, PhaseTiming};
use clap::Parser;
use serde_json::Value;

#[derive(Debug, Parser)]
#[command(
    about = "Detection latency and cost per run: the current polling schedule against the previous one"
)]
struct Args {
    /// Source cluster sizes in GiB, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100,2048")]
    sizes: Vec<f64>,
    /// The drill's time scale (0.005 runs a real-world hour in 18 s). Time
    /// inside Task attempts (handlers and their emulator calls) counts at
    /// face value, the rest of the drill's time divided by the scale.
    #[arg(long, value_name = "F", default_value_t = 0.005)]
    time_scale: f64,
    /// The `aurora-dr` binary.
    #[arg(long, value_name = "FILE")]
    cli: Option<PathBuf>,
    /// The drill configuration.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

// List prices, US East (N. Virginia), read 2026-12-03:
// - Step Functions Standard: $0.025 per 1,000 state transitions, retries
//   included ("AWS Step Functions Pricing", https://aws.amazon.com/step-functions/pricing/).
// - Lambda, Arm: $0.20 per 1M requests, $0.0000133334 per GB-second, first
//   tier ("AWS Lambda Pricing", https://aws.amazon.com/lambda/pricing/).
// - SNS standard topics: $0.50 per 1M publishes, first 1M a month free
//   ("Amazon SNS pricing", https://aws.amazon.com/sns/pricing/; that page
//   could not be read where these figures were taken: the figure is the one
//   quoted from it. At one publish a run it moves no figure below).
// Free tiers are left out: the figures are the price of one more run.
const PER_TRANSITION: f64 = 0.025 / 1_000.0;
const PER_LAMBDA_REQUEST: f64 = 0.20 / 1_000_000.0;
const PER_GB_SECOND_ARM: f64 = 0.000_013_333_4;
const PER_SNS_PUBLISH: f64 = 0.50 / 1_000_000.0;
// - DynamoDB on-demand (the callback waits' task tokens): $0.625 per 1M write
//   request units, $0.125 per 1M read request units ("Amazon DynamoDB
//   pricing for on-demand capacity", https://aws.amazon.com/dynamodb/pricing/on-demand/).
//   The units are the drill's count (`aurora_dr_core::wait_tokens::units_consumed`).
// EventBridge delivers AWS service events from the default bus to rules at
// no charge ("Amazon EventBridge pricing", https://aws.amazon.com/eventbridge/pricing/:
// state change events are free); CompleteWait's invocations are Lambda requests.
const PER_WRITE_UNIT: f64 = 0.625 / 1_000_000.0;
const PER_READ_UNIT: f64 = 0.125 / 1_000_000.0;

/// A `ResourceNotReady` retrier: (IntervalSeconds, BackoffRate,
/// MaxDelaySeconds, MaxAttempts).
type Schedule = (u64, f64, u64, u64);

/// The previous schedule of each wait.
const PREVIOUS: [(&str, Schedule); 8] = [
    ("WaitForSourceSnapshot", (30, 1.5, 300, 100)),
    ("WaitForTargetSnapshot", (30, 1.5, 300, 150)),
    ("WaitForSharedSnapshot", (30, 1.5, 300, 20)),
    ("WaitForOwnCopy", (30, 1.5, 300, 150)),
    ("WaitForTempCluster", (30, 1.5, 300, 40)),
    ("WaitForTempInstances", (30, 1.5, 300, 40)),
    ("WaitForSwappedCluster", (30, 1.5, 300, 20)),
    ("WaitForNewEndpoint", (30, 1.5, 120, 16)),
];

/// The Lambda functions that publish to SNS (one message per invocation).
const PUBLISHERS: [&str; 2] = ["notify", "notify-failure"];

fn main() -> ExitCode {
    aurora_dr_bench::run_main("bench-latency", run(Args::parse()))
}

/// One drill's figures.
struct Figures {
    result: String,
    phases: Vec<PhaseTiming>,
    added: f64,
    aws: f64,
    transitions: u64,
    invocations: u64,
    gb_seconds: f64,
    publishes: u64,
    /// CompleteWait's invocations (one per RDS event the rule matched).
    events: u64,
    read_units: u64,
    write_units: u64,
}

impl Figures {
    fn cost(&self) -> f64 {
        self.transitions as f64 * PER_TRANSITION
            + self.invocations as f64 * PER_LAMBDA_REQUEST
            + self.gb_seconds * PER_GB_SECOND_ARM
            + self.publishes as f64 * PER_SNS_PUBLISH
            + self.read_units as f64 * PER_READ_UNIT
            + self.write_units as f64 * PER_WRITE_UNIT
    }
}

async fn run(args: Args) -> Result<(), String> {
    let root = repo_root();
    let cli = aurora_dr_bench::cli_binary(args.cli.as_deref())?;
    let config = args.config.clone().unwrap_or_else(|| root.join("examples/drill.toml"));
    let memory_mb = deployed_memory_mb(&root.join("template.yaml"))?;
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let current = root.join("statemachines");
    let previous = scratch.path().join("previous");
    write_previous_schedule(&current, &previous)?;

    println!("== 4. Detection latency and cost per run ==");
    println!("machine: {}", machine_summary());
    println!(
        "`{} drill --seed --durations realistic --size-gib N --time-scale {}`, one run per size and schedule; \
         figures in real-world seconds (Task attempts at face value, the rest of the drill's time / scale)",
        cli.strip_prefix(&root).unwrap_or(&cli).display(),
        args.time_scale
    );
    println!(
        "schedules: previous = every wait Retry 30 s x1.5 up to 300 s; current = statemachines/ as written ({})",
        schedule_summary(&current)?
    );
    println!(
        "prices: US East (N. Virginia), read 2026-12-03: Step Functions Standard $0.025/1k transitions, \
         Lambda Arm $0.20/1M requests + $0.0000133334/GB-s at {memory_mb} MB (template.yaml), SNS $0.50/1M publishes, \
         DynamoDB on-demand $0.625/1M write and $0.125/1M read units"
    );
    for &gib in &args.sizes {
        let mut figures = Vec::new();
        for (name, dir) in [("previous", &previous), ("current", &current)] {
            let html = scratch.path().join(format!("drill-{gib}-{name}.html"));
            println!("running {gib} GiB, {name} schedule ...");
            let callback_waits = callback_waits(dir)?;
            figures.push(
                drill(&callback_waits, &cli, &config, dir, gib, args.time_scale, &html, memory_mb).await?,
            );
        }
        print_size(gib, &figures[0], &figures[1]);
    }
    Ok(())
}

/// `MemorySize` of the template's function globals.
fn deployed_memory_mb(template: &Path) -> Result<u64, String> {
    let text = std::fs::read_to_string(template).map_err(|e| format!("{}: {e}", template.display()))?;
    text.lines()
        .find_map(|l| l.trim().strip_prefix("MemorySize:").and_then(|v| v.trim().parse().ok()))
        .ok_or_else(|| format!("{}: no MemorySize", template.display()))
}

/// Calls `f` with the name and the `ResourceNotReady` retrier of every wait
/// (FetchStatus Task) of a definition, Map iterators included.
fn each_retrier(states: &mut Value, f: &mut dyn FnMut(&str, &mut Value)) {
    let Some(states) = states.as_object_mut() else { return };
    for (name, state) in states.iter_mut() {
        if state["Resource"] == "${FetchStatusFunctionArn}"
            && let Some(retry) = state.get_mut("Retry").and_then(Value::as_array_mut)
            && let Some(r) = retry.iter_mut().find(|r| {
                r["ErrorEquals"].as_array().is_some_and(|e| e.contains(&Value::from("ResourceNotReady")))
            })
        {
            f(name, r);
        }
        for key in ["ItemProcessor", "Iterator"] {
            if let Some(inner) = state.get_mut(key).and_then(|p| p.get_mut("States")) {
                each_retrier(inner, f);
            }
        }
    }
}

/// Turns every predicted wait (a FetchStatus Task with `Parameters.predict`,
/// looping through a Choice and a Wait) back into one Task polled by a
/// `ResourceNotReady` Retry, as all waits were before: the Task goes on to
/// where the Choice went when ready, and the Choice and the Wait go.
fn unpredict(states: &mut Value) -> Result<(), String> {
    let Some(map) = states.as_object_mut() else { return Ok(()) };
    let predicted: Vec<String> = map
        .iter()
        .filter(|(_, s)| {
            s["Resource"] == "${FetchStatusFunctionArn}" && s["Parameters"].get("predict").is_some()
        })
        .map(|(n, _)| n.clone())
        .collect();
    for name in predicted {
        let choice = map[&name]["Next"].as_str().unwrap_or_default().to_owned();
        let ready = map.get(&choice).and_then(|c| c["Default"].as_str()).map(str::to_owned);
        let wait = map.get(&choice).and_then(|c| c["Choices"][0]["Next"].as_str()).map(str::to_owned);
        let (Some(ready), Some(wait)) = (ready, wait) else {
            return Err(format!("{name}: its Next {choice} is not the loop's Choice"));
        };
        map.remove(&choice);
        map.remove(&wait);
        let task = map.get_mut(&name).and_then(Value::as_object_mut).ok_or("not an object")?;
        let predict =
            task["Parameters"].as_object_mut().and_then(|p| p.remove("predict")).unwrap_or_default();
        task.insert("ResultPath".into(), Value::Null);
        task.insert("Next".into(), ready.into());
        let retrier = serde_json::json!({"ErrorEquals": ["ResourceNotReady"],
            "IntervalSeconds": predict["intervalSeconds"], "MaxAttempts": 100,
            "BackoffRate": predict["backoffRate"], "MaxDelaySeconds": predict["maxDelaySeconds"]});
        if let Some(retry) = task.get_mut("Retry").and_then(Value::as_array_mut) {
            retry.insert(0, retrier);
        }
    }
    for state in map.values_mut() {
        for key in ["ItemProcessor", "Iterator"] {
            if let Some(inner) = state.get_mut(key).and_then(|p| p.get_mut("States")) {
                unpredict(inner)?;
            }
        }
    }
    Ok(())
}

/// Turns every callback wait (`lambda:invoke.waitForTaskToken` of
/// FetchStatus) back into a FetchStatus Task polled by a `ResourceNotReady`
/// Retry, as before: its `States.Timeout` retrier and Catch become
/// `ResourceNotReady` ones (the schedule itself is set by
/// [`write_previous_schedule`]).
fn uncallback(states: &mut Value) {
    let Some(map) = states.as_object_mut() else { return };
    for state in map.values_mut() {
        if state["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
            && state["Parameters"]["FunctionName"] == "${FetchStatusFunctionArn}"
        {
            let wait_for = state["Parameters"]["Payload"]["waitFor"].clone();
            state["Resource"] = "${FetchStatusFunctionArn}".into();
            state["Parameters"] = serde_json::json!({"waitFor": wait_for, "run.$": "$"});
            state["TimeoutSeconds"] = 120.into();
            for list in ["Retry", "Catch"] {
                if let Some(items) = state.get_mut(list).and_then(Value::as_array_mut) {
                    for item in items {
                        if item["ErrorEquals"] == serde_json::json!(["States.Timeout"]) {
                            item["ErrorEquals"] = serde_json::json!(["ResourceNotReady"]);
                        }
                    }
                }
            }
        }
        for key in ["ItemProcessor", "Iterator"] {
            if let Some(inner) = state.get_mut(key).and_then(|p| p.get_mut("States")) {
                uncallback(inner);
            }
        }
    }
}

/// Calls `f` with the name and `Parameters.predict` of every predicted wait.
fn each_prediction(states: &Value, f: &mut dyn FnMut(&str, &Value)) {
    let Some(states) = states.as_object() else { return };
    for (name, state) in states {
        if let Some(predict) = state["Parameters"].get("predict") {
            f(name, predict);
        }
        for key in ["ItemProcessor", "Iterator"] {
            if let Some(inner) = state.get(key).and_then(|p| p.get("States")) {
                each_prediction(inner, f);
            }
        }
    }
}

/// Calls `f` with the name and `TimeoutSeconds` of every callback wait.
fn each_callback(states: &Value, f: &mut dyn FnMut(&str, &Value)) {
    let Some(states) = states.as_object() else { return };
    for (name, state) in states {
        if state["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken" {
            f(name, &state["TimeoutSeconds"]);
        }
        for key in ["ItemProcessor", "Iterator"] {
            if let Some(inner) = state.get(key).and_then(|p| p.get("States")) {
                each_callback(inner, f);
            }
        }
    }
}

/// The callback waits of the definitions in `dir`.
fn callback_waits(dir: &Path) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for file in ["source.asl.json", "target.asl.json"] {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let definition: Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        each_callback(&definition["States"], &mut |name, _| names.push(name.to_owned()));
    }
    Ok(names)
}

/// A copy of `current`'s definitions with the previous polling schedule.
fn write_previous_schedule(current: &Path, out: &Path) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    let previous: BTreeMap<&str, Schedule> = PREVIOUS.into_iter().collect();
    for file in ["source.asl.json", "target.asl.json"] {
        let path = current.join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut definition: Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        unpredict(&mut definition["States"]).map_err(|e| format!("{file}: {e}"))?;
        uncallback(&mut definition["States"]);
        let mut missing = Vec::new();
        each_retrier(&mut definition["States"], &mut |name, retrier| match previous.get(name) {
            Some(&(interval, rate, max_delay, attempts)) => {
                retrier["IntervalSeconds"] = interval.into();
                retrier["BackoffRate"] = rate.into();
                retrier["MaxDelaySeconds"] = max_delay.into();
                retrier["MaxAttempts"] = attempts.into();
            }
            None => missing.push(name.to_owned()),
        });
        if !missing.is_empty() {
            return Err(format!("{file}: no previous schedule for {}", missing.join(", ")));
        }
        let text = serde_json::to_string_pretty(&definition).map_err(|e| e.to_string())?;
        std::fs::write(out.join(file), text).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Each wait's schedule in `dir`, e.g. `WaitForTempCluster 20 s x1.5 <= 45 s`.
fn schedule_summary(dir: &Path) -> Result<String, String> {
    let mut parts = Vec::new();
    for file in ["source.asl.json", "target.asl.json"] {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut definition: Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        each_prediction(&definition["States"], &mut |name, p| {
            parts.push(format!(
                "{name} predicted from PercentProgress (else {} s x{} <= {} s)",
                p["intervalSeconds"], p["backoffRate"], p["maxDelaySeconds"]
            ));
        });
        each_retrier(&mut definition["States"], &mut |name, r| {
            parts.push(format!(
                "{name} {} s x{} <= {} s",
                r["IntervalSeconds"], r["BackoffRate"], r["MaxDelaySeconds"]
            ));
        });
        each_callback(&definition["States"], &mut |name, timeout| {
            parts.push(format!("{name} by RDS event, else re-checked every {timeout} s"));
        });
    }
    Ok(parts.join(", "))
}

/// One drill: its report's phases and the billed units of its executions.
#[allow(clippy::too_many_arguments)]
async fn drill(
    callback_waits: &[String],
    cli: &Path,
    config: &Path,
    definitions: &Path,
    gib: f64,
    time_scale: f64,
    html: &Path,
    memory_mb: u64,
) -> Result<Figures, String> {
    let output = tokio::process::Command::new(cli)
        .arg("drill")
        .arg("--config")
        .arg(config)
        .args(["--seed", "--json", "--runs", "1", "--durations", "realistic"])
        .args(["--size-gib", &gib.to_string(), "--time-scale", &time_scale.to_string()])
        .arg("--state-machines")
        .arg(definitions)
        .arg("--html")
        .arg(html)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("{}: {e}", cli.display()))?;
    let report: Value = serde_json::from_slice(&output.stdout).map_err(|e| {
        format!(
            "no JSON report ({e}); exit {}; stderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    let phases: Vec<PhaseTiming> =
        serde_json::from_value(report["phases"].clone()).map_err(|e| format!("report phases: {e}"))?;
    let spans = report["states"].as_array().cloned().unwrap_or_default();
    let attempts = |s: &Value| s["attempts"].as_u64().unwrap_or(0);
    // Step Functions bills every state entered, and every retry as one more.
    let transitions = spans.iter().map(|s| 1 + attempts(s).saturating_sub(1)).sum();
    let tasks: Vec<&Value> = spans.iter().filter(|s| s["type"] == "Task").collect();
    // The SNS-triggered InvokeStepFunction: one invocation per delivery.
    let deliveries = report["deliveries"].as_array().map_or(0, Vec::len) as u64;
    // CompleteWait: one invocation per RDS event delivered to it. The drill
    // routes the events whatever the definitions; a schedule without
    // callback waits has no rule and no table to pay for.
    let callbacks = !callback_waits.is_empty();
    let events = if callbacks { report["rdsEvents"].as_array().map_or(0, Vec::len) as u64 } else { 0 };
    let invocations = tasks.iter().map(|s| attempts(s)).sum::<u64>() + deliveries + events;
    let unit = |k: &str| if callbacks { report["waitTokenUnits"][k].as_u64().unwrap_or(0) } else { 0 };
    // Billed duration per invocation: the mean of the Tasks' attempts (a
    // handler and its AWS calls against the local emulator; a callback
    // task's attempt ends when its invocation returns, not with its wait).
    let once: Vec<f64> = tasks
        .iter()
        .filter_map(|s| s["busy"].as_array())
        .flatten()
        .filter_map(|b| Some(b[1].as_f64()? - b[0].as_f64()?))
        .collect();
    let mean_s = if once.is_empty() { 0.0 } else { once.iter().sum::<f64>() / once.len() as f64 };
    let gb_seconds = invocations as f64 * mean_s * memory_mb as f64 / 1024.0;
    let publishers: Vec<&str> = aurora_dr_core::steps::FUNCTIONS
        .iter()
        .filter(|f| PUBLISHERS.contains(&f.name))
        .flat_map(|f| f.states.iter().map(|(_, state)| *state))
        .collect();
    let publishes = tasks
        .iter()
        .filter(|s| s["state"].as_str().is_some_and(|n| publishers.contains(&n)))
        .map(|s| attempts(s))
        .sum();
    let added = phases::added_latency(&phases, 1, phases.first().map_or("", |p| p.lane.as_str()))
        .ok_or("a phase did not end")?;
    // The DNS delay runs from the same rename as the rename phase: only what
    // it lasts beyond the rename is more work to wait for.
    let rename = phases.iter().find(|p| p.phase == "rename/swap").map_or(0.0, |p| p.aws_seconds);
    let aws = phases
        .iter()
        .filter(|p| p.awaited)
        .map(|p| if p.phase == "dns" { (p.aws_seconds - rename).max(0.0) } else { p.aws_seconds })
        .sum();
    Ok(Figures {
        result: report["result"].as_str().unwrap_or("?").to_owned(),
        phases,
        added,
        aws,
        transitions,
        invocations,
        gb_seconds,
        publishes,
        events,
        read_units: unit("read"),
        write_units: unit("write"),
    })
}

fn print_size(gib: f64, previous: &Figures, current: &Figures) {
    println!("\n{gib} GiB cluster (real-world seconds):");
    let mut table = Table::new(&[
        "phase",
        "AWS work",
        "workflow (previous)",
        "detection (previous)",
        "workflow (current)",
        "detection (current)",
    ]);
    let cell = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}"));
    for p in &previous.phases {
        let now = current.phases.iter().find(|c| c.phase == p.phase);
        // The DNS phase adds only what it waits beyond the rename phase.
        let name = if p.phase == "dns" { "dns (beyond the rename)".to_owned() } else { p.phase.clone() };
        table.row(vec![
            name,
            format!("{:.0}", p.aws_seconds),
            cell(p.workflow_seconds),
            cell(p.added_seconds),
            cell(now.and_then(|c| c.workflow_seconds)),
            cell(now.and_then(|c| c.added_seconds)),
        ]);
    }
    print!("{}", table.render());
    let target = 60f64.max(0.01 * current.aws);
    let mut table = Table::new(&["per run", "previous", "current", "current / previous"]);
    let ratio = |a: f64, b: f64| if a > 0.0 { format!("{:.2}x", b / a) } else { "-".into() };
    let mut row = |name: &str, a: f64, b: f64, digits: usize| {
        table.row(vec![name.to_owned(), format!("{a:.digits$}"), format!("{b:.digits$}"), ratio(a, b)]);
    };
    row("added latency (s)", previous.added, current.added, 0);
    row("state transitions", previous.transitions as f64, current.transitions as f64, 0);
    row("Lambda invocations", previous.invocations as f64, current.invocations as f64, 0);
    row("Lambda GB-seconds", previous.gb_seconds, current.gb_seconds, 2);
    row("SNS publishes", previous.publishes as f64, current.publishes as f64, 0);
    row("RDS events to CompleteWait", previous.events as f64, current.events as f64, 0);
    row("DynamoDB read units", previous.read_units as f64, current.read_units as f64, 0);
    row("DynamoDB write units", previous.write_units as f64, current.write_units as f64, 0);
    row("cost per run (USD)", previous.cost(), current.cost(), 5);
    print!("{}", table.render());
    println!(
        "  result: previous {}, current {}; AWS work {:.0} s, so the target is at most {target:.0} s added \
         (60 s or 1 % of the work) at most 2x the cost: latency {}, cost {}",
        previous.result,
        current.result,
        current.aws,
        if current.added <= target { "met" } else { "MISSED" },
        if current.cost() <= 2.0 * previous.cost() { "met" } else { "MISSED" },
    );
}
