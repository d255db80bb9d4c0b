//! `aurora-dr watch` against a live drill: the drill serves both accounts'
//! Step Functions API (`--serve-api`) on a private emulator with real-world
//! durations, scaled so the run lasts several seconds; `watch` starts while
//! the run is in progress and must follow it to its end through the API,
//! reporting the same states and figures as the drill.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use aurora_dr_core::clients::{AwsContext, ClientOptions};
use aurora_dr_emulator::{Emulator, EmulatorConfig, FaultRule};
use serde_json::Value;

const CONFIG: &str = include_str!("../../../examples/drill.toml");
const BIN: &str = env!("CARGO_BIN_EXE_aurora-dr");
/// Real-world hours in seconds: the realistic profile's copy (the longest
/// phase, about 1.75 hours) takes about 6 s, so the run is still in
/// progress when watch starts.
const TIME_SCALE: &str = "0.001";
/// Bound of every wait on a process (the whole drill takes about 15 s).
const BOUND: Duration = Duration::from_secs(180);

/// A drill process serving its API; stopped (SIGTERM, then killed) on drop.
struct Drill {
    child: Child,
    stderr: mpsc::Receiver<String>,
    stdout: Option<std::thread::JoinHandle<String>>,
    api: String,
}

impl Drill {
    fn start(config: &Path, endpoint: &str, html: &Path) -> Self {
        let mut child = Command::new(BIN)
            .args(["drill", "--config"])
            .arg(config)
            .args(["--endpoint", endpoint, "--seed", "--durations", "realistic", "--time-scale", TIME_SCALE])
            .args(["--serve-api", "127.0.0.1:0", "--json", "--html"])
            .arg(html)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("drill starts");
        let mut out = child.stdout.take().expect("stdout");
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = out.read_to_string(&mut text);
            text
        });
        let (tx, stderr) = mpsc::channel();
        let err = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut drill = Self { child, stderr, stdout: Some(stdout), api: String::new() };
        let line = drill.wait_for_line("  api ");
        drill.api = line.split_whitespace().nth(1).expect("api url").to_owned();
        drill
    }

    /// The next stderr line containing `text`, within [`BOUND`].
    fn wait_for_line(&self, text: &str) -> String {
        let deadline = std::time::Instant::now() + BOUND;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(line) => seen.push(line),
                Err(e) => panic!("no drill line with {text:?} ({e}); its stderr:\n{}", seen.join("\n")),
            }
        }
    }

    /// Once the drill reports and serves on: stops it, returns its JSON report.
    fn report(mut self) -> Value {
        self.wait_for_line("still serving");
        self.stop();
        let text = self.stdout.take().expect("stdout").join().expect("stdout reader");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("drill report ({e}):\n{text}"))
    }

    fn stop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = std::time::Instant::now() + BOUND;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::park_timeout(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Drill {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// A private emulator, a config file and a directory for the pages.
struct Env {
    emulator: Option<Emulator>,
    dir: tempfile::TempDir,
    config: PathBuf,
    runtime: tokio::runtime::Runtime,
}

impl Env {
    fn start(faults: Vec<FaultRule>) -> Self {
        Self::with_config(CONFIG, faults)
    }

    fn with_config(text: &str, faults: Vec<FaultRule>) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let emulator = runtime.block_on(async {
            let emulator = Emulator::start(EmulatorConfig::default()).await.expect("emulator starts");
            for rule in faults {
                emulator.control().arm(rule).await.expect("fault armed");
            }
            emulator
        });
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("drill.toml");
        std::fs::write(&config, text).expect("config written");
        Self { emulator: Some(emulator), dir, config, runtime }
    }

    /// Waits (bounded) until the drill's source execution has started: the
    /// drill serves its API a moment before it starts the run.
    fn wait_for_source_execution(&self, drill: &Drill) {
        let options = ClientOptions::in_region("us-west-2".parse().expect("region"))
            .with_static_credentials("test", "test")
            .with_sfn_endpoint(Some(drill.api.clone()));
        let machine = "arn:aws:states:us-west-2:111111111111:stateMachine:aurora-dr-source";
        self.runtime.block_on(async {
            let sfn = AwsContext::load(&options).await.sfn();
            let deadline = tokio::time::Instant::now() + BOUND;
            loop {
                let listed = sfn.list_executions().state_machine_arn(machine).send().await;
                if listed.is_ok_and(|l| !l.executions().is_empty()) {
                    return;
                }
                assert!(tokio::time::Instant::now() < deadline, "the drill started no source execution");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }

    /// `aurora-dr watch --json` against `drill` once its run has started:
    /// exit code, report, stderr.
    fn watch(&self, drill: &Drill) -> (Option<i32>, Value, String) {
        self.wait_for_source_execution(drill);
        let out = Command::new(BIN)
            .args(["watch", "--config"])
            .arg(&self.config)
            .args(["--endpoint", &drill.api, "--interval", "0.05", "--json", "--html"])
            .arg(self.dir.path().join("watch.html"))
            .output()
            .expect("watch runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let report = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("watch report ({e}):\n{stdout}\nstderr:\n{stderr}"));
        (out.status.code(), report, stderr)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(emulator) = self.emulator.take() {
            let _ = self.runtime.block_on(emulator.stop());
        }
    }
}

impl Env {
    fn url(&self) -> &str {
        self.emulator.as_ref().expect("emulator").url()
    }
}

/// Every state of the report: machine, lane, state, attempts and status, sorted.
fn states(report: &Value) -> Vec<(String, String, String, u64, String)> {
    let mut all: Vec<_> = report["states"]
        .as_array()
        .expect("states")
        .iter()
        .map(|s| {
            let text = |k: &str| s[k].as_str().unwrap_or_default().to_owned();
            (
                text("machine"),
                text("lane"),
                text("state"),
                s["attempts"].as_u64().unwrap_or(0),
                text("status"),
            )
        })
        .collect();
    all.sort();
    all
}

#[test]
fn watch_follows_a_live_drill_to_its_end_with_the_drills_states_and_figures() {
    let env = Env::start(Vec::new());
    let drill = Drill::start(&env.config, env.url(), &env.dir.path().join("drill.html"));
    let (code, watched, stderr) = env.watch(&drill);
    // An execution that does not exist: named, exit 2.
    let missing = "arn:aws:states:us-west-2:111111111111:execution:aurora-dr-source:no-such-run";
    let out = Command::new(BIN)
        .args(["watch", "--config"])
        .arg(&env.config)
        .args(["--endpoint", &drill.api, "--execution", missing])
        .output()
        .expect("watch runs");
    let missing_err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{missing_err}");
    assert!(missing_err.contains("does not exist") && missing_err.contains(missing), "{missing_err}");
    let drilled = drill.report();

    assert_eq!(code, Some(0), "watch exit; stderr:\n{stderr}");
    assert_eq!(drilled["result"], "SUCCEEDED", "{drilled:#}");
    assert_eq!(watched["result"], "SUCCEEDED", "{watched:#}");
    // Found while the source execution still ran: followed live.
    assert_eq!(watched["sourceStatusWhenFound"], "RUNNING", "{watched:#}");
    // Both executions, the same ones as the drill's, ended the same way.
    let executions = |r: &Value| -> Vec<(String, String)> {
        let mut x: Vec<_> = r["executions"]
            .as_array()
            .expect("executions")
            .iter()
            .map(|x| {
                (
                    x["arn"].as_str().unwrap_or_default().to_owned(),
                    x["status"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        x.sort();
        x
    };
    let watched_executions = executions(&watched);
    assert_eq!(watched_executions.len(), 2, "{watched_executions:?}");
    assert_eq!(watched_executions, executions(&drilled));
    let (w, d) = (&watched["runs"][0], &drilled["runs"][0]);
    for side in ["source", "target"] {
        assert_eq!(w[side]["executionArn"], d[side]["executionArn"], "{side}");
        assert_eq!(w[side]["status"], "SUCCEEDED", "{side}");
    }
    // The same states, attempts and outcomes, from the same history events.
    let (ws, ds) = (states(&watched), states(&drilled));
    assert!(ws.len() > 20, "{ws:?}");
    assert_eq!(ws, ds);
    // The same figures: the snapshot's time and the target execution's last
    // event, whose time the API gives to the millisecond (the engine's to the
    // nanosecond).
    for figure in ["achievedRpoSeconds", "timeToRestoreSeconds", "sourceToRestoredSeconds"] {
        let (a, b) = (w[figure].as_f64(), d[figure].as_f64());
        assert!(a.zip(b).is_some_and(|(a, b)| (a - b).abs() < 0.002), "{figure}: watch {a:?}, drill {b:?}");
    }
    let page = std::fs::read_to_string(env.dir.path().join("watch.html")).expect("watch page");
    assert!(page.contains("aurora-dr watch") && page.contains("WaitForSwappedCluster"), "{page}");
}

/// A drill that fails under `fault`, and watch following it: watch's report
/// and stderr, and the drill's report; both said FAILED, watch with exit 1.
fn failed_run(fault: FaultRule) -> (Value, String, Value) {
    let env = Env::start(vec![fault]);
    let drill = Drill::start(&env.config, env.url(), &env.dir.path().join("drill.html"));
    let (code, watched, stderr) = env.watch(&drill);
    let drilled = drill.report();
    assert_eq!(drilled["result"], "FAILED", "{drilled:#}");
    assert_eq!(code, Some(1), "watch exit; stderr:\n{stderr}");
    assert_eq!(watched["result"], "FAILED", "{watched:#}");
    (watched, stderr, drilled)
}

#[test]
fn watch_exits_1_with_the_failed_state_error_and_cause_when_the_target_fails() {
    // The key cannot be used by RDS in the target account: Restore fails AccessDenied.
    let fault = FaultRule::error("rds", "RestoreDBClusterFromSnapshot", "KMSKeyNotAccessibleFault")
        .in_account("222222222222");
    let (watched, stderr, drilled) = failed_run(fault.into());
    let run = &watched["runs"][0];
    assert_eq!(run["source"]["status"], "SUCCEEDED");
    assert_eq!(run["target"]["status"], "FAILED");
    let failed = watched["failed"].as_array().expect("failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["machine"], "target");
    assert_eq!(failed[0]["failedState"], "Restore");
    assert_eq!(failed[0]["stateError"], "AccessDenied");
    assert!(
        failed[0]["stateCause"].as_str().is_some_and(|c| c.contains("KMSKeyNotAccessibleFault")),
        "{failed:?}"
    );
    // Printed for the operator too, on stderr with --json.
    assert!(
        stderr.contains("target FAILED") && stderr.contains("in state Restore: AccessDenied"),
        "{stderr}"
    );
    assert_eq!(states(&watched), states(&drilled));
}

/// Three clusters: the source machine's Distributed Maps and three target
/// executions, each found by its cluster's run id and followed at once.
#[test]
fn watch_follows_every_cluster_of_a_fleet_run() {
    let mut text = String::from(
        "[source]\naccount_id = \"111111111111\"\nregion = \"us-west-2\"\n[target]\naccount_id = \"222222222222\"\n\
         region = \"us-west-1\"\nengine = \"aurora-postgresql\"\ninstance_class = \"db.r6g.large\"\n",
    );
    for c in ["orders", "billing", "users"] {
        text.push_str(&format!(
            "[[pairs]]\nsource_cluster_id = \"{c}\"\nexisting_cluster_id = \"{c}-dr\"\ntemp_cluster_id = \"{c}-dr-next\"\n\
             existing_instance_id = \"{c}-dr-1\"\ntemp_instance_id = \"{c}-dr-next-1\"\n"
        ));
    }
    let env = Env::with_config(&text, Vec::new());
    let drill = Drill::start(&env.config, env.url(), &env.dir.path().join("drill.html"));
    let (code, watched, stderr) = env.watch(&drill);
    let drilled = drill.report();

    assert_eq!(drilled["result"], "SUCCEEDED", "{drilled:#}");
    assert_eq!(code, Some(0), "watch exit; stderr:\n{stderr}");
    let targets = |r: &Value| -> Vec<(String, String, String)> {
        let mut t: Vec<_> = r["runs"][0]["clusters"]
            .as_array()
            .expect("clusters")
            .iter()
            .map(|c| {
                let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
                (
                    text(&c["sourceClusterId"]),
                    text(&c["target"]["executionArn"]),
                    text(&c["target"]["status"]),
                )
            })
            .collect();
        t.sort();
        t
    };
    let watched_targets = targets(&watched);
    assert_eq!(watched_targets.len(), 3, "{watched_targets:?}");
    assert!(watched_targets.iter().all(|t| t.2 == "SUCCEEDED"), "{watched_targets:?}");
    assert_eq!(watched_targets, targets(&drilled));
    assert_eq!(watched["executions"].as_array().map(Vec::len), Some(4));
    // Every Map child's states in its cluster's lane, as the drill has them.
    let (ws, ds) = (states(&watched), states(&drilled));
    for c in ["orders", "billing", "users"] {
        assert!(ws.iter().any(|s| s.0 == "source" && s.1 == c && s.2 == "Notify"), "{c}: {ws:?}");
    }
    assert_eq!(ws, ds);
}

/// A source run whose snapshot cannot be taken: its Map child fails in
/// CreateSnapshot, the source execution fails, no target execution starts.
#[test]
fn watch_names_the_source_state_that_failed_inside_the_map() {
    let fault = FaultRule::error("rds", "CreateDBClusterSnapshot", "InvalidDBClusterStateFault")
        .in_account("111111111111");
    let (watched, stderr, drilled) = failed_run(fault.into());
    assert_eq!(watched["runs"][0]["source"]["status"], "FAILED");
    assert!(watched["runs"][0]["target"]["executionArn"].is_null(), "{watched:#}");
    let failed = watched["failed"].as_array().expect("failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["machine"], "source");
    assert_eq!(failed[0]["failedState"], "CreateSnapshot", "{failed:?}");
    assert!(stderr.contains("source FAILED") && stderr.contains("in state CreateSnapshot"), "{stderr}");
    assert_eq!(states(&watched), states(&drilled));
}

const MULTI_TARGET: &str = include_str!("../../../examples/multi-target.toml");
const A: &str = "222222222222 us-west-1";
const B: &str = "333333333333 eu-west-1";

/// The report section of target `label` (`{account} {region}`).
fn section<'a>(report: &'a Value, label: &str) -> &'a Value {
    report["targets"]
        .as_array()
        .and_then(|ts| {
            ts.iter().find(|t| {
                format!("{} {}", t["accountId"].as_str().unwrap_or(""), t["region"].as_str().unwrap_or(""))
                    == label
            })
        })
        .unwrap_or_else(|| panic!("no section for {label}: {report:#}"))
}

/// A two-target drill (examples/multi-target.toml) under `faults`, and
/// watch following it: watch's exit code, report and stderr, the drill's
/// report, and the directory of the pages.
fn two_target_run(faults: Vec<FaultRule>) -> (Option<i32>, Value, String, Value, Env) {
    let env = Env::with_config(MULTI_TARGET, faults);
    let drill = Drill::start(&env.config, env.url(), &env.dir.path().join("drill.html"));
    let (code, watched, stderr) = env.watch(&drill);
    let drilled = drill.report();
    (code, watched, stderr, drilled, env)
}

/// Target `label`'s section in watch's report is the drill's: the same
/// target executions, ended the same way, with the same states (the source
/// machine's for its region and its own), and its own HTML page.
fn same_as_the_drill(watched: &Value, drilled: &Value, label: &str, env: &Env) {
    let (w, d) = (&section(watched, label)["report"], &section(drilled, label)["report"]);
    assert_eq!(section(watched, label)["result"], section(drilled, label)["result"], "{label}");
    assert_eq!(w["runs"][0]["target"]["executionArn"], d["runs"][0]["target"]["executionArn"], "{label}");
    assert_eq!(w["runs"][0]["target"]["status"], d["runs"][0]["target"]["status"], "{label}");
    let (ws, ds) = (states(w), states(d));
    // A target execution (none when the source side failed for this target):
    // in the target's own account and region, its states followed.
    if let Some(arn) = w["runs"][0]["target"]["executionArn"].as_str() {
        assert!(arn.contains(&label.split(' ').rev().collect::<Vec<_>>().join(":")), "{label}: {arn}");
        assert!(ws.iter().any(|s| s.0 == "target" && s.2 == "Restore"), "{label}: {ws:?}");
    }
    assert_eq!(ws, ds, "{label}");
    let page = env.dir.path().join(format!("watch-{}.html", label.replace(' ', "-")));
    let page = std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
    assert!(
        page.contains("aurora-dr watch") && page.contains(label.split(' ').next().unwrap_or("")),
        "{label}"
    );
}

/// Both targets of a live two-target drill: each target's executions
/// followed in its own account and region to their end, each with its
/// section, as the drill reports them.
#[test]
fn watch_follows_every_target_of_a_live_two_target_drill() {
    let (code, watched, stderr, drilled, env) = two_target_run(Vec::new());
    assert_eq!(drilled["result"], "SUCCEEDED", "{drilled:#}");
    assert_eq!(code, Some(0), "watch exit; stderr:\n{stderr}");
    assert_eq!(watched["result"], "SUCCEEDED", "{watched:#}");
    assert_eq!(watched["failedTargets"], serde_json::json!([]));
    assert_eq!(watched["sourceStatusWhenFound"], "RUNNING", "{watched:#}");
    assert_eq!(watched["targets"].as_array().map(Vec::len), Some(2));
    for label in [A, B] {
        assert_eq!(section(&watched, label)["result"], "SUCCEEDED", "{label}");
        assert_eq!(section(&watched, label)["report"]["runs"][0]["target"]["status"], "SUCCEEDED", "{label}");
        same_as_the_drill(&watched, &drilled, label, &env);
    }
}

/// Target B's restore refused: A restored, B failed in Restore; exit 1
/// naming B alone.
#[test]
fn watch_exits_1_naming_the_target_that_failed() {
    let fault = FaultRule::error("rds", "RestoreDBClusterFromSnapshot", "AccessDenied")
        .status(403)
        .in_account("333333333333")
        .in_region("eu-west-1");
    let (code, watched, stderr, drilled, env) = two_target_run(vec![fault.into()]);
    assert_eq!(drilled["failedTargets"], serde_json::json!([B]), "{drilled:#}");
    assert_eq!(code, Some(1), "watch exit; stderr:\n{stderr}");
    assert_eq!(watched["result"], "FAILED", "{watched:#}");
    assert_eq!(watched["failedTargets"], serde_json::json!([B]), "{watched:#}");
    assert!(stderr.contains(&format!("watch: target(s) failed: {B}")), "{stderr}");
    assert!(
        stderr.contains(&format!("[{B}] target FAILED")) && stderr.contains("in state Restore"),
        "{stderr}"
    );
    assert_eq!(section(&watched, A)["result"], "SUCCEEDED");
    let b = &section(&watched, B)["report"];
    assert_eq!(b["runs"][0]["source"]["status"], "SUCCEEDED", "{b:#}");
    assert_eq!(b["runs"][0]["target"]["status"], "FAILED", "{b:#}");
    assert_eq!(b["failed"][0]["failedState"], "Restore", "{b:#}");
    for label in [A, B] {
        same_as_the_drill(&watched, &drilled, label, &env);
    }
}

/// The copy's share refused in B's region: the source execution fails, yet
/// A is restored and its section lists no failure; B's section names the
/// source state that failed in its region. Exit 1 naming B alone.
#[test]
fn watch_names_a_failed_share_under_its_target_only() {
    let fault = FaultRule::error("rds", "ModifyDBClusterSnapshotAttribute", "AccessDenied")
        .status(403)
        .in_account("111111111111")
        .in_region("eu-west-1");
    let (code, watched, stderr, drilled, env) = two_target_run(vec![fault.into()]);
    assert_eq!(drilled["failedTargets"], serde_json::json!([B]), "{drilled:#}");
    assert_eq!(code, Some(1), "watch exit; stderr:\n{stderr}");
    assert_eq!(watched["failedTargets"], serde_json::json!([B]), "{watched:#}");
    let a = &section(&watched, A)["report"];
    assert_eq!(a["runs"][0]["source"]["status"], "FAILED", "{a:#}");
    assert_eq!(a["result"], "SUCCEEDED", "{a:#}");
    assert_eq!(a["failed"], serde_json::json!([]), "{a:#}");
    let b = &section(&watched, B)["report"];
    assert!(b["runs"][0]["target"]["executionArn"].is_null(), "{b:#}");
    assert_eq!(b["failed"][0]["machine"], "source", "{b:#}");
    assert_eq!(b["failed"][0]["failedState"], "Share", "{b:#}");
    assert!(
        stderr.contains(&format!("[{B}] source FAILED")) && stderr.contains("in state Share"),
        "{stderr}"
    );
    for label in [A, B] {
        same_as_the_drill(&watched, &drilled, label, &env);
    }
}
