//! Benchmark 1: Lambda cold start and memory, Rust against a Python baseline.
//!
//! Each real `bootstrap` binary (release profile) and its Python 3 + boto3
//! counterpart (`bench/python/`) is started as a fresh process under the
//! local Runtime API, receives one invocation whose AWS calls go to the
//! emulator, and is measured (see `aurora_dr_bench::coldstart`). Rust and
//! Python starts alternate, so drift on a shared machine hits both alike.
//! Then the size of every function's bootstrap, raw and zipped.
//!
//! Run: `make bench` (builds, installs the Python baseline, runs all three
//! benchmark programs) or `target/release/bench-cold-start --help`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use aurora_dr_bench::coldstart::{ColdStart, Launch, cold_start};
use aurora_dr_bench::runtime_api::RuntimeApi;
use aurora_dr_bench::stats::Summary;
use aurora_dr_bench::table::Table;
use aurora_dr_bench::{machine_summary, repo_root};
use aurora_dr_cli::config::Config;
use aurora_dr_cli::drill::setup;
use aurora_dr_core::DrResult;
use aurora_dr_core::clients::AwsContext;
use aurora_dr_core::context::{SideSettings, StepContext};
use aurora_dr_core::settings::keys;
use aurora_dr_core::steps::{self, FUNCTIONS};
use aurora_dr_emulator::{Delay, Emulator, EmulatorConfig, Latency};
use aws_credential_types::provider::ProvideCredentials;
use clap::Parser;
use serde_json::{Value, json};

/// The functions that are cold-started, each with its Python module.
const MEASURED: [(&str, &str); 3] =
    [("fetch-status", "fetch_status"), ("create-snapshot", "create_snapshot"), ("notify", "notify")];

#[derive(Debug, Parser)]
#[command(about = "Lambda cold start and peak memory: Rust bootstraps against a Python 3 + boto3 baseline")]
struct Args {
    /// Cold starts per function and language.
    #[arg(long, default_value_t = 20)]
    cold_starts: usize,
    /// Directory of the Lambda binaries.
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Python interpreter of the baseline (with boto3 installed).
    #[arg(long, value_name = "FILE")]
    python: Option<PathBuf>,
    /// Directory of `make package`'s deploy zips, shown when present.
    #[arg(long, value_name = "DIR")]
    package_dir: Option<PathBuf>,
}

/// One figure of a cold start.
type Metric = fn(&ColdStart) -> f64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Lang {
    Rust,
    Python,
}

/// Everything a function process needs to run against the emulator.
struct Fixture {
    env: Vec<(String, String)>,
    /// A payload after CreateSnapshot (input of FetchStatus).
    created: Value,
    /// A payload after Share (input of Notify).
    shared: Value,
    source_account: String,
    source_region: String,
}

fn main() -> ExitCode {
    aurora_dr_bench::run_main("bench-cold-start", run(Args::parse()))
}

async fn run(args: Args) -> Result<(), String> {
    let root = repo_root();
    let bin_dir = args.bin_dir.clone().unwrap_or_else(|| root.join("target/release"));
    let python = args.python.clone().unwrap_or_else(|| root.join("bench/.venv/bin/python"));
    let python_dir = root.join("bench/python");
    for (crate_name, _) in MEASURED {
        let bin = bin_dir.join(crate_name);
        if !bin.exists() {
            return Err(format!("{} is missing: build it with `make bench`", bin.display()));
        }
    }
    if !python.exists() {
        return Err(format!("{} is missing: `make bench` creates it", python.display()));
    }
    let python_version = command_output(&python, &["--version"]).await;
    let boto3_version =
        command_output(&python, &["-c", "import boto3, botocore; print(boto3.__version__)"]).await;

    println!("== 1. Lambda cold start and memory ==");
    println!("machine: {}", machine_summary());
    println!(
        "Rust: {}/<crate> (cargo profile `release`: {}; {})",
        bin_dir.display(),
        aurora_dr_bench::release_profile(),
        std::env::consts::ARCH
    );
    println!(
        "Python: {python_version}, boto3 {boto3_version}, bench/python/runtime.py (minimal runtime loop)"
    );
    println!(
        "each figure: {} cold starts (fresh process, one invocation, AWS calls to the local emulator), \
         after one discarded start per side to warm the page cache",
        args.cold_starts
    );

    println!("starting the emulator, latency off (its first start creates .venv with moto)");
    let emulator =
        Emulator::start(EmulatorConfig::default().with_latency(Latency::uniform(Delay::default())))
            .await
            .map_err(|e| format!("emulator: {e}"))?;
    let api = RuntimeApi::start().await.map_err(|e| format!("runtime API: {e}"))?;
    let logs = tempfile::tempdir().map_err(|e| e.to_string())?;
    let fixture = fixture(&emulator, &api).await?;
    let control = emulator.control();

    let mut results: BTreeMap<(&str, Lang), Vec<ColdStart>> = BTreeMap::new();
    let mut calls: BTreeMap<(&str, Lang), Vec<String>> = BTreeMap::new();
    let mut stamp = 0u32;
    for (crate_name, module) in MEASURED {
        let launch = |lang: Lang| {
            let mut env = fixture.env.clone();
            env.push(("AWS_LAMBDA_FUNCTION_NAME".into(), format!("aurora-dr-source-{crate_name}")));
            env.push(("AWS_LAMBDA_LOG_STREAM_NAME".into(), format!("bench/{crate_name}")));
            env.push((
                "AWS_LAMBDA_LOG_GROUP_NAME".into(),
                format!("/aws/lambda/aurora-dr-source-{crate_name}"),
            ));
            match lang {
                Lang::Rust => Launch {
                    program: bin_dir.join(crate_name),
                    args: Vec::new(),
                    env,
                    log: logs.path().join(format!("{crate_name}-rust.log")),
                },
                Lang::Python => {
                    env.push(("_HANDLER".into(), format!("{module}.handler")));
                    env.push(("LAMBDA_TASK_ROOT".into(), python_dir.display().to_string()));
                    Launch {
                        program: python.clone(),
                        args: vec![python_dir.join("runtime.py").display().to_string()],
                        env,
                        log: logs.path().join(format!("{crate_name}-python.log")),
                    }
                }
            }
        };
        let arn = format!(
            "arn:aws:lambda:{}:{}:function:aurora-dr-source-{crate_name}",
            fixture.source_region, fixture.source_account
        );
        // One discarded start per side; its emulator call log shows the AWS
        // calls each side makes per invocation.
        for lang in [Lang::Rust, Lang::Python] {
            control.clear_calls().await.map_err(|e| e.to_string())?;
            stamp += 1;
            let event = event_for(crate_name, &fixture, lang, stamp);
            cold_start(&api, &launch(lang), "warm-up", &arn, event)
                .await
                .map_err(|e| format!("{crate_name} ({lang:?}): {e}"))?;
            let log = control.calls().await.map_err(|e| e.to_string())?;
            calls.insert(
                (crate_name, lang),
                log.iter().map(|c| format!("{} {} ({})", c.service, c.operation, c.region)).collect(),
            );
        }
        for i in 0..args.cold_starts {
            let order = if i % 2 == 0 { [Lang::Rust, Lang::Python] } else { [Lang::Python, Lang::Rust] };
            for lang in order {
                stamp += 1;
                let event = event_for(crate_name, &fixture, lang, stamp);
                let request_id = format!("bench-{stamp}");
                let measured = cold_start(&api, &launch(lang), &request_id, &arn, event)
                    .await
                    .map_err(|e| format!("{crate_name} ({lang:?}), start {}: {e}", i + 1))?;
                results.entry((crate_name, lang)).or_default().push(measured);
            }
        }
    }
    drop(api);
    let _ = emulator.stop().await;

    let mut verdicts = Vec::new();
    for (crate_name, _) in MEASURED {
        let rust = results.get(&(crate_name, Lang::Rust)).map(Vec::as_slice).unwrap_or_default();
        let python = results.get(&(crate_name, Lang::Python)).map(Vec::as_slice).unwrap_or_default();
        let rust_calls = calls.get(&(crate_name, Lang::Rust)).cloned().unwrap_or_default();
        let python_calls = calls.get(&(crate_name, Lang::Python)).cloned().unwrap_or_default();
        println!();
        println!("{crate_name}: AWS calls per invocation: {}", rust_calls.join(", "));
        if python_calls != rust_calls {
            println!("  (the Python baseline made different calls: {})", python_calls.join(", "));
        }
        let mut table =
            Table::new(&["", "Rust min / median / max", "Python min / median / max", "median Python/Rust"]);
        let metrics: [(&str, Metric); 3] = [
            ("init ms", |c| c.init_ms),
            ("first response ms", |c| c.first_response_ms),
            ("peak RSS MiB", |c| c.peak_rss_kib as f64 / 1024.0),
        ];
        for (name, metric) in metrics {
            let r = Summary::of(&rust.iter().map(metric).collect::<Vec<_>>());
            let p = Summary::of(&python.iter().map(metric).collect::<Vec<_>>());
            let ratio = match (r, p) {
                (Some(r), Some(p)) if r.median > 0.0 => p.median / r.median,
                _ => f64::NAN,
            };
            table.row(vec![
                name.to_owned(),
                r.map_or("-".into(), |s| s.show(1)),
                p.map_or("-".into(), |s| s.show(1)),
                format!("{ratio:.1}x"),
            ]);
            if name != "first response ms" {
                verdicts.push((crate_name, name, ratio));
            }
        }
        print!("{}", table.render());
        let split = |runs: &[ColdStart]| {
            let anon = Summary::of(&runs.iter().map(|c| c.rss_anon_kib as f64 / 1024.0).collect::<Vec<_>>());
            let file = Summary::of(&runs.iter().map(|c| c.rss_file_kib as f64 / 1024.0).collect::<Vec<_>>());
            match (anon, file) {
                (Some(a), Some(f)) => format!("{:.1} anon + {:.1} file-backed", a.median, f.median),
                _ => "-".to_owned(),
            }
        };
        println!("  resident MiB after the answer (median): Rust {}; Python {}", split(rust), split(python));
    }

    println!();
    println!("bootstrap sizes (zipped: one `bootstrap` entry, deflate level 9, as a Lambda deployment zip)");
    let package_dir = args.package_dir.clone().unwrap_or_else(|| root.join("target/lambda"));
    let mut sizes = Table::new(&["function", "bootstrap MiB", "zipped MiB", "`make package` zip MiB"]);
    let mut largest_zip: f64 = 0.0;
    let mut largest_package: Option<f64> = None;
    for crate_name in FUNCTIONS.iter().map(|f| f.name) {
        let bin = bin_dir.join(crate_name);
        let Ok(meta) = std::fs::metadata(&bin) else {
            sizes.row(vec![crate_name.to_owned(), "not built".into(), "-".into(), "-".into()]);
            continue;
        };
        let zipped = zipped_size(&python, &bin, logs.path()).await?;
        largest_zip = largest_zip.max(mib(zipped));
        let package = match std::fs::metadata(package_dir.join(crate_name).join("bootstrap.zip")) {
            Ok(m) => {
                largest_package = Some(largest_package.unwrap_or(0.0_f64).max(mib(m.len())));
                format!("{:.2}", mib(m.len()))
            }
            Err(_) => "-".into(),
        };
        sizes.row(vec![
            crate_name.to_owned(),
            format!("{:.2}", mib(meta.len())),
            format!("{:.2}", mib(zipped)),
            package,
        ]);
    }
    print!("{}", sizes.render());
    println!(
        "  (`make package` zips: cargo lambda, profile `lambda` (opt-level s, fat LTO), arm64, from {}; '-' = not built)",
        package_dir.display()
    );

    println!();
    println!("targets:");
    for (crate_name, metric, ratio) in verdicts {
        let (goal, what) = if metric == "init ms" { (10.0, "init") } else { (5.0, "peak RSS") };
        let met = if ratio >= goal { "met" } else { "MISSED" };
        println!(
            "  {crate_name:<16} Rust {what} {goal:.0}x lower than Python: {met} ({ratio:.1}x at the median)"
        );
    }
    let verdict = |largest: f64| if largest < 5.0 { "met" } else { "MISSED" };
    println!(
        "  every bootstrap under 5 MiB zipped, release profile x86_64: {} (largest {largest_zip:.2} MiB)",
        verdict(largest_zip)
    );
    match largest_package {
        Some(largest) => println!(
            "  every bootstrap under 5 MiB zipped, `make package` deploy zips: {} (largest {largest:.2} MiB)",
            verdict(largest)
        ),
        None => println!("  `make package` deploy zips: not built, not judged"),
    }
    Ok(())
}

/// Emulator state and process environment shared by every start: the
/// source account's cluster, KMS key and topics (made as the drill makes
/// them), a snapshot to poll and a finished run to notify about.
async fn fixture(emulator: &Emulator, api: &RuntimeApi) -> Result<Fixture, String> {
    let config = Config::parse(include_str!("../../../examples/drill.toml"))
        .map_err(|e| format!("examples/drill.toml: {e:?}"))?;
    let (src, tgt) = (&config.source, &config.target);
    let url = emulator.url();
    let err = |e: aurora_dr_core::DrError| e.to_string();
    let source = setup::account_context(url, &src.account_id, &src.region, None).await;
    let (kms_key, _) = setup::ensure_kms_key(&source.in_region(&tgt.region), &config).await.map_err(err)?;
    let (topic, _) =
        setup::ensure_topic(&source, setup::SNAPSHOT_TOPIC, Some(&tgt.account_id)).await.map_err(err)?;
    let (failures, _) = setup::ensure_topic(&source, setup::FAILURE_TOPIC, None).await.map_err(err)?;
    setup::seed_source_cluster(&source, &config).await.map_err(err)?;

    let mut settings = src.clone();
    settings.kms_key_arn = kms_key.clone();
    settings.notification_topic_arn = Some(topic.clone());
    settings.failure_topic_arn = Some(failures.clone());
    let ctx = Arc::new(StepContext::new(source.clone(), SideSettings::Source(settings)));
    let (created, shared) = finished_run(&ctx).await.map_err(err)?;

    // The Lambda processes act with the assumed role's credentials, passed
    // the way Lambda passes them: AWS_ACCESS_KEY_ID/SECRET/SESSION_TOKEN.
    let credentials = credentials(&source).await?;
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
        ("LANG".into(), "C.UTF-8".into()),
        ("TZ".into(), ":UTC".into()),
        ("HOME".into(), std::env::temp_dir().display().to_string()),
        ("AWS_REGION".into(), src.region.to_string()),
        ("AWS_DEFAULT_REGION".into(), src.region.to_string()),
        ("AWS_ENDPOINT_URL".into(), url.to_owned()),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ("AWS_LAMBDA_RUNTIME_API".into(), api.authority()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), "128".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()),
        ("SIDE".into(), "source".into()),
    ];
    env.extend(credentials);
    for (key, value) in [
        (keys::SOURCE_ACCOUNT_ID, src.account_id.to_string()),
        (keys::SOURCE_REGION, src.region.to_string()),
        (keys::SOURCE_CLUSTER_ID, src.cluster_id.to_string()),
        (keys::SNAPSHOT_PREFIX, src.snapshot_prefix.clone()),
        (keys::TARGET_ACCOUNT_ID, src.target_account_id.to_string()),
        (keys::TARGET_REGION, src.target_region.to_string()),
        (keys::KMS_KEY_ARN, kms_key.to_string()),
        (keys::NOTIFICATION_TOPIC_ARN, topic.to_string()),
        (keys::SOURCE_FAILURE_TOPIC_ARN, failures.to_string()),
    ] {
        env.push((key.env.to_owned(), value));
    }
    Ok(Fixture {
        env,
        created,
        shared,
        source_account: src.account_id.to_string(),
        source_region: src.region.to_string(),
    })
}

/// Runs the source steps in-process up to Share, polling where the machine
/// would: returns the payloads after CreateSnapshot and after Share.
async fn finished_run(ctx: &Arc<StepContext>) -> DrResult<(Value, Value)> {
    let start = json!({"runId": "bench-fixture", "createdAt": created_at(0)});
    let created = steps::create_snapshot::handle(Arc::clone(ctx), start).await?;
    poll(ctx, "sourceSnapshot", &created).await?;
    let copied = steps::encrypt_copy::handle(Arc::clone(ctx), created.clone()).await?;
    poll(ctx, "targetSnapshot", &copied).await?;
    let shared = steps::share::handle(Arc::clone(ctx), copied).await?;
    Ok((created, shared))
}

async fn poll(ctx: &Arc<StepContext>, wait_for: &str, run: &Value) -> DrResult<()> {
    let mut attempt = 0;
    loop {
        let input = json!({"waitFor": wait_for, "run": run});
        match steps::fetch_status::handle(Arc::clone(ctx), input).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_retryable() && attempt < 100 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// A run start time `offset` seconds after a fixed instant: every
/// CreateSnapshot invocation gets its own snapshot name.
fn created_at(offset: u32) -> String {
    let t = time::macros::datetime!(2026-01-01 00:00:00 UTC) + time::Duration::seconds(i64::from(offset));
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn event_for(crate_name: &str, fixture: &Fixture, lang: Lang, stamp: u32) -> Value {
    match crate_name {
        "fetch-status" => json!({"waitFor": "sourceSnapshot", "run": fixture.created}),
        "create-snapshot" => {
            let side = if lang == Lang::Rust { "rust" } else { "python" };
            json!({"runId": format!("bench-{side}-{stamp}"), "createdAt": created_at(stamp)})
        }
        _ => fixture.shared.clone(),
    }
}

async fn credentials(ctx: &AwsContext) -> Result<Vec<(String, String)>, String> {
    let provider =
        ctx.sdk_config().credentials_provider().ok_or("the source context has no credentials provider")?;
    let creds = provider.provide_credentials().await.map_err(|e| format!("AssumeRole: {e}"))?;
    let mut env = vec![
        ("AWS_ACCESS_KEY_ID".to_owned(), creds.access_key_id().to_owned()),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), creds.secret_access_key().to_owned()),
    ];
    if let Some(token) = creds.session_token() {
        env.push(("AWS_SESSION_TOKEN".to_owned(), token.to_owned()));
    }
    Ok(env)
}

/// Size of a deployment zip holding `bin` as `bootstrap` (Python's zipfile,
/// deflate level 9, the format `cargo lambda` and the Lambda console use).
async fn zipped_size(python: &Path, bin: &Path, scratch: &Path) -> Result<u64, String> {
    let zip = scratch.join("bootstrap.zip");
    let script = "import sys, zipfile\n\
                  with zipfile.ZipFile(sys.argv[2], 'w', zipfile.ZIP_DEFLATED, compresslevel=9) as z:\n    \
                  z.write(sys.argv[1], 'bootstrap')\n";
    let status = tokio::process::Command::new(python)
        .args(["-c", script])
        .arg(bin)
        .arg(&zip)
        .status()
        .await
        .map_err(|e| format!("zip {}: {e}", bin.display()))?;
    if !status.success() {
        return Err(format!("zip {}: {status}", bin.display()));
    }
    std::fs::metadata(&zip).map(|m| m.len()).map_err(|e| e.to_string())
}

async fn command_output(program: &Path, args: &[&str]) -> String {
    match tokio::process::Command::new(program).args(args).output().await {
        Ok(out) => {
            let text = if out.stdout.is_empty() { out.stderr } else { out.stdout };
            String::from_utf8_lossy(&text).trim().to_owned()
        }
        Err(e) => format!("unknown ({e})"),
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1024.0 / 1024.0
}
