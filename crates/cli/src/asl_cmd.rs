//! `aurora-dr asl ...`: validate and run ASL definitions on the local engine.
//!
//! - `asl validate FILE...` prints `FILE: ok` or one line per problem (state,
//!   field, message); exit 0 only if every file is valid.
//! - `asl run FILE --input JSON [--mock-config FILE --test-case NAME]
//!   [--time-scale F] [--history] [--sub NAME=VALUE]... [--sub-placeholders]`
//!   runs one execution.
//!   On success prints the output JSON and exits 0; otherwise prints
//!   `{"error": ..., "cause": ...}` (plus `"status"` when not FAILED) and
//!   exits 1. `--history` prints the event history (GetExecutionHistory
//!   shape) instead. Exit 2 for usage errors (unreadable file, bad JSON,
//!   invalid definition, unknown test case, a mock naming a state the
//!   definition does not have or that is not a Task state).
//!
//! The mock config's state machine name defaults to the file name without
//! `.asl.json`/`.json` (override with `--state-machine`); when the config
//! describes exactly one state machine, that one is used.

use aurora_dr_asl::{
    Clock, Definition, Engine, MockConfig, StartOptions, StateMachineSpec, Status, Substitutions,
    TaskRegistry,
};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct AslArgs {
    #[command(subcommand)]
    pub command: AslCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum AslCommand {
    /// Check ASL definitions and report every problem with its state and field.
    Validate {
        /// Definition files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// `${NAME}` substitution applied before validation (repeatable).
        #[arg(long = "sub", value_name = "NAME=VALUE", value_parser = parse_sub)]
        subs: Vec<(String, String)>,
    },
    /// Run one execution of a definition on the local engine.
    Run(RunArgs),
}

/// `aurora-dr asl run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Definition file.
    pub file: PathBuf,
    /// Execution input (JSON).
    #[arg(long, default_value = "{}")]
    pub input: String,
    /// Step Functions Local mock config (MockConfigFile.json).
    #[arg(long, requires = "test_case")]
    pub mock_config: Option<PathBuf>,
    /// Test case of the mock config.
    #[arg(long, requires = "mock_config")]
    pub test_case: Option<String>,
    /// State machine name used to look up the test case (default: file name).
    #[arg(long)]
    pub state_machine: Option<String>,
    /// Multiply every Wait, Retry interval and timeout by this factor (e.g. 0.001).
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Print the execution history instead of the output.
    #[arg(long)]
    pub history: bool,
    /// Execution name.
    #[arg(long)]
    pub name: Option<String>,
    /// `${NAME}` substitution applied before parsing (repeatable).
    #[arg(long = "sub", value_name = "NAME=VALUE", value_parser = parse_sub)]
    pub subs: Vec<(String, String)>,
    /// Fill every `${NAME}` that no --sub gives with the placeholder ARN
    /// `arn:aws:lambda:us-east-1:123456789012:function:NAME` (for runs whose
    /// Task states are mocked: a mocked state never calls its resource).
    #[arg(long)]
    pub sub_placeholders: bool,
}

/// Print to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn write_stdout(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

fn parse_sub(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected NAME=VALUE, got '{s}'"))
}

pub async fn run(args: AslArgs) -> ExitCode {
    match args.command {
        AslCommand::Validate { files, subs } => {
            let (report, ok) = validate_files(&files, &subs.into_iter().collect());
            write_stdout(&report);
            if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        AslCommand::Run(args) => match run_one(args).await {
            Ok((text, success)) => {
                write_stdout(&format!("{text}\n"));
                if success { ExitCode::SUCCESS } else { ExitCode::FAILURE }
            }
            Err(msg) => {
                eprintln!("aurora-dr asl run: {msg}");
                ExitCode::from(2)
            }
        },
    }
}

/// The report text and whether every file is valid.
fn validate_files(files: &[PathBuf], subs: &Substitutions) -> (String, bool) {
    let mut out = String::new();
    let mut ok = true;
    for f in files {
        let problems = match std::fs::read_to_string(f) {
            Err(e) => vec![format!("cannot read: {e}")],
            Ok(text) => match parse(&text, subs) {
                Ok(_) => Vec::new(),
                Err(aurora_dr_asl::AslError::Invalid(d)) => d.iter().map(ToString::to_string).collect(),
                Err(e) => vec![e.to_string()],
            },
        };
        if problems.is_empty() {
            out.push_str(&format!("{}: ok\n", f.display()));
        } else {
            ok = false;
            for p in problems {
                out.push_str(&format!("{}: {p}\n", f.display()));
            }
        }
    }
    (out, ok)
}

fn parse(text: &str, subs: &Substitutions) -> Result<Definition, aurora_dr_asl::AslError> {
    if subs.is_empty() { Definition::parse(text) } else { Definition::parse_with(text, subs) }
}

/// The `${NAME}` placeholders of a definition text.
fn placeholders(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else { break };
        names.push(after[..end].to_string());
        rest = &after[end + 1..];
    }
    names.sort();
    names.dedup();
    names
}

fn machine_name(file: &Path) -> String {
    let n = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    n.strip_suffix(".asl.json").or_else(|| n.strip_suffix(".json")).unwrap_or(&n).to_string()
}

/// Run one execution: `(text to print, succeeded)`, or a usage error.
async fn run_one(req: RunArgs) -> Result<(String, bool), String> {
    let text =
        std::fs::read_to_string(&req.file).map_err(|e| format!("cannot read {}: {e}", req.file.display()))?;
    let mut subs: Substitutions = req.subs.iter().cloned().collect();
    if req.sub_placeholders {
        for name in placeholders(&text) {
            if !req.subs.iter().any(|(k, _)| *k == name) {
                let arn = format!("arn:aws:lambda:us-east-1:123456789012:function:{name}");
                subs.insert(name, arn);
            }
        }
    }
    // A run cannot leave `${...}` in place: every placeholder needs a value.
    let def = Definition::parse_with(&text, &subs).map_err(|e| match e {
        aurora_dr_asl::AslError::UnresolvedSubstitution(_) => {
            format!("{}: {e} (give it with --sub NAME=VALUE, or use --sub-placeholders)", req.file.display())
        }
        e => format!("{}: {e}", req.file.display()),
    })?;
    let input: Value =
        serde_json::from_str(&req.input).map_err(|e| format!("--input is not valid JSON: {e}"))?;
    let clock = if req.time_scale == 1.0 {
        Clock::real()
    } else {
        Clock::scaled(req.time_scale).map_err(|e| e.to_string())?
    };
    let engine = Engine::new(clock);
    let mut sm_name = req.state_machine.clone().unwrap_or_else(|| machine_name(&req.file));
    let mut spec_mocks = None;
    if let Some(path) = &req.mock_config {
        let cfg_text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let raw: Value = serde_json::from_str(&cfg_text)
            .map_err(|e| format!("{}: not valid JSON: {e}", path.display()))?;
        let cfg = MockConfig::from_value(&raw).map_err(|e| format!("{}: {e}", path.display()))?;
        // Fall back to the config's only state machine when the file name is not in it.
        if req.state_machine.is_none()
            && let Some(Value::Object(machines)) = raw.get("StateMachines")
            && !machines.contains_key(&sm_name)
            && machines.len() == 1
            && let Some(only) = machines.keys().next()
        {
            sm_name = only.clone();
        }
        spec_mocks = Some(Arc::new(cfg));
    }
    // The mock config is keyed by this name, so keep it whenever it is a valid one.
    let registered = if aurora_dr_asl::engine::valid_name(&sm_name) { sm_name } else { "local".to_string() };
    let mut spec = StateMachineSpec::new(registered, def).tasks(TaskRegistry::new());
    if let Some(m) = spec_mocks {
        spec = spec.mocks(m);
    }
    let sm = engine.register(spec).map_err(|e| e.to_string())?;
    let opts = StartOptions { name: req.name.clone(), test_case: req.test_case.clone() };
    let exec = engine.start(&sm.arn, input, opts).map_err(|e| e.to_string())?;
    let outcome = exec.wait().await;
    let success = outcome.status == Status::Succeeded;
    let text = if req.history {
        let events: Vec<Value> = exec.history().iter().map(|e| e.to_api_json(true)).collect();
        serde_json::to_string_pretty(&json!({ "events": events })).map_err(|e| e.to_string())?
    } else if success {
        serde_json::to_string(&outcome.output.unwrap_or(Value::Null)).map_err(|e| e.to_string())?
    } else {
        let mut v = json!({"error": outcome.error, "cause": outcome.cause});
        if outcome.status != Status::Failed {
            v["status"] = json!(outcome.status.as_str());
        }
        v.to_string()
    };
    Ok((text, success))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory removed on drop (the CLI crate has no tempfile dependency).
    struct TempDir(PathBuf);

    impl TempDir {
        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn tempdir() -> TempDir {
        let p =
            std::env::temp_dir().join(format!("aurora-dr-asl-cmd-{}", aurora_dr_asl::intrinsic::uuid_v4()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn file(dir: &TempDir, name: &str, text: &str) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn req(file: PathBuf, input: &str) -> RunArgs {
        RunArgs {
            file,
            input: input.into(),
            mock_config: None,
            test_case: None,
            state_machine: None,
            time_scale: 0.001,
            history: false,
            name: None,
            subs: Vec::new(),
            sub_placeholders: false,
        }
    }

    fn workspace() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// The `aurora-dr asl run statemachines/...` commands of a README, as
    /// argument lists (continuation lines joined, single quotes honoured).
    fn readme_commands(readme: &str) -> Vec<Vec<String>> {
        let text = std::fs::read_to_string(workspace().join(readme)).unwrap();
        let joined = text.replace("\\\n", " ");
        joined
            .lines()
            .filter(|l| l.trim_start().starts_with("aurora-dr asl run statemachines/"))
            .map(|l| {
                let mut words = Vec::new();
                let (mut word, mut quoted, mut any) = (String::new(), false, false);
                for c in l.trim().chars() {
                    match c {
                        '\'' => {
                            quoted = !quoted;
                            any = true;
                        }
                        c if c.is_whitespace() && !quoted => {
                            if any {
                                words.push(std::mem::take(&mut word));
                                any = false;
                            }
                        }
                        c => {
                            word.push(c);
                            any = true;
                        }
                    }
                }
                if any {
                    words.push(word);
                }
                words
            })
            .collect()
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        command: AslCommand,
    }

    // The mock-config examples of both READMEs run as written (from the
    // workspace root) against the project's own state machines.
    #[tokio::test]
    async fn the_readme_mock_examples_run() {
        use clap::Parser;
        for readme in ["README.md", "crates/asl/README.md"] {
            let commands = readme_commands(readme);
            assert!(!commands.is_empty(), "{readme} has no `aurora-dr asl run statemachines/...` example");
            for words in commands {
                let argv = std::iter::once("asl".to_string()).chain(words.into_iter().skip(2));
                let Cli { command: AslCommand::Run(mut args) } = Cli::try_parse_from(argv).unwrap() else {
                    panic!("{readme}: not an `asl run` command")
                };
                args.file = workspace().join(&args.file);
                args.mock_config = args.mock_config.map(|m| workspace().join(m));
                let (text, ok) = run_one(args).await.unwrap_or_else(|e| panic!("{readme}: {e}"));
                assert!(ok, "{readme}: {text}");
                let out: Value = serde_json::from_str(&text).unwrap();
                assert!(out.get("runId").is_some(), "{readme}: {out}");
            }
        }
    }

    #[tokio::test]
    async fn a_mock_for_an_unknown_or_non_task_state_is_an_error_naming_it() {
        let mut r = req(workspace().join("statemachines/source.asl.json"), "{}");
        r.sub_placeholders = true;
        let dir = tempdir();
        let m = file(
            &dir,
            "mocks.json",
            r#"{"StateMachines": {"source": {"TestCases": {"T": {"CreateSnapshots": "Ok", "Report": "Ok"}}}},
            "MockedResponses": {"Ok": {"0": {"Return": {}}}}}"#,
        );
        r.mock_config = Some(m);
        r.test_case = Some("T".into());
        let err = run_one(r).await.unwrap_err();
        assert!(err.contains("'CreateSnapshots' is not a state of state machine 'source'"), "{err}");
        assert!(err.contains("'Report' is a Pass state; only Task states can be mocked"), "{err}");
    }

    #[tokio::test]
    async fn placeholders_fill_only_the_substitutions_not_given() {
        let dir = tempdir();
        let f = file(
            &dir,
            "m.asl.json",
            r#"{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true,
                "Parameters": {"a": "${First}", "b": "${Second}"}}}}"#,
        );
        let mut r = req(f.clone(), "{}");
        let err = run_one(r).await.unwrap_err();
        assert!(
            err.contains("unresolved substitution '${First}'") && err.contains("--sub-placeholders"),
            "{err}"
        );
        r = req(f, "{}");
        r.sub_placeholders = true;
        r.subs = vec![("First".into(), "given".into())];
        let (text, ok) = run_one(r).await.unwrap();
        assert!(ok);
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({"a": "given", "b": "arn:aws:lambda:us-east-1:123456789012:function:Second"})
        );
    }

    #[test]
    fn validate_reports_each_problem_with_the_file() {
        let dir = tempdir();
        let good = file(&dir, "good.asl.json", r#"{"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}"#);
        let bad =
            file(&dir, "bad.asl.json", r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}"#);
        let (report, ok) = validate_files(std::slice::from_ref(&good), &Substitutions::new());
        assert!(ok);
        assert_eq!(report, format!("{}: ok\n", good.display()));
        let (report, ok) = validate_files(&[good, bad], &Substitutions::new());
        assert!(!ok);
        assert!(report.contains("state 'A', field 'Next': 'B' is not a state"), "{report}");
    }

    #[tokio::test]
    async fn run_prints_output_or_error_and_cause() {
        let dir = tempdir();
        let f = file(
            &dir,
            "m.asl.json",
            r#"{"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 5, "Next": "C"},
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.ok", "BooleanEquals": true, "Next": "S"}], "Default": "F"},
            "S": {"Type": "Succeed"}, "F": {"Type": "Fail", "Error": "NotOk", "Cause": "ok was false"}}}"#,
        );
        let (text, ok) = run_one(req(f.clone(), r#"{"ok": true}"#)).await.unwrap();
        assert!(ok);
        assert_eq!(text, r#"{"ok":true}"#);
        let (text, ok) = run_one(req(f.clone(), r#"{"ok": false}"#)).await.unwrap();
        assert!(!ok);
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({"error": "NotOk", "cause": "ok was false"})
        );
        let mut r = req(f, r#"{"ok": true}"#);
        r.history = true;
        let (text, _) = run_one(r).await.unwrap();
        let h: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(h["events"][0]["type"], "ExecutionStarted");
    }

    #[tokio::test]
    async fn run_with_mock_config_and_test_case() {
        let dir = tempdir();
        let f = file(
            &dir,
            "source.asl.json",
            r#"{"StartAt": "T", "States": {"T": {"Type": "Task",
            "Resource": "arn:aws:lambda:us-east-1:123456789012:function:create-snapshot", "End": true}}}"#,
        );
        let m = file(
            &dir,
            "mocks.json",
            r#"{"StateMachines": {"source": {"TestCases": {"Happy": {"T": "Ok"}}}},
            "MockedResponses": {"Ok": {"0": {"Return": {"snapshot": "s1"}}}}}"#,
        );
        let mut r = req(f.clone(), "{}");
        r.mock_config = Some(m.clone());
        r.test_case = Some("Happy".into());
        let (text, ok) = run_one(r).await.unwrap();
        assert!(ok, "{text}");
        assert_eq!(text, r#"{"snapshot":"s1"}"#);
        let mut r = req(f, "{}");
        r.mock_config = Some(m);
        r.test_case = Some("Nope".into());
        let err = run_one(r).await.unwrap_err();
        assert!(err.contains("no test case 'Nope'"), "{err}");
    }

    #[tokio::test]
    async fn validate_and_run_accept_a_distributed_map() {
        let dir = tempdir();
        let f = file(
            &dir,
            "fleet.asl.json",
            r#"{"StartAt": "Each", "States": {"Each": {"Type": "Map", "ItemsPath": "$.clusters", "MaxConcurrency": 5,
                "ItemSelector": {"cluster.$": "$$.Map.Item.Value"}, "End": true,
                "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Name", "States": {"Name": {"Type": "Pass", "End": true,
                        "Parameters": {"id.$": "States.Format('{}-copy', $.cluster)"}}}}}}}"#,
        );
        let (report, ok) = validate_files(std::slice::from_ref(&f), &Substitutions::new());
        assert!(ok, "{report}");
        let (text, ok) = run_one(req(f, r#"{"clusters": ["a", "b"]}"#)).await.unwrap();
        assert!(ok, "{text}");
        assert_eq!(text, r#"[{"id":"a-copy"},{"id":"b-copy"}]"#);
    }

    #[tokio::test]
    async fn usage_errors_are_reported() {
        let dir = tempdir();
        let f = file(&dir, "m.asl.json", r#"{"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}"#);
        assert!(run_one(req(f.clone(), "{not json")).await.unwrap_err().contains("--input"));
        assert!(
            run_one(req(dir.path().join("missing.json"), "{}")).await.unwrap_err().contains("cannot read")
        );
        let mut r = req(f, "{}");
        r.time_scale = 0.0;
        assert!(run_one(r).await.unwrap_err().contains("time scale"));
    }
}
