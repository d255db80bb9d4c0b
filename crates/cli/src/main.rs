//! `aurora-dr`: run drills, validate configuration, inspect both sides, and
//! run the local emulator and Step Functions engine.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use aurora_dr_cli::{
    asl_cmd, chaos, cleanup, config, deploy_params, drill, emulator_cmd, functions_cmd, preflight, rehearse,
    status, watch,
};

/// Cross-account, cross-region disaster recovery for Amazon Aurora.
#[derive(Debug, Parser)]
#[command(name = "aurora-dr", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a configuration file; prints every problem, each with its key (exit 2 if any).
    Validate {
        /// The TOML configuration (see examples/drill.toml).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Run the whole pipeline between two accounts and two regions on the local emulator.
    Drill(drill::DrillArgs),
    /// Show what exists on both sides: snapshots, copies and shares, the DR cluster, kept clusters, executions.
    Status(status::StatusArgs),
    /// Check both accounts before enabling the schedule: each blocker with its fix (exit 1 on any, 2 on a bad config).
    ///
    /// Checks, read-only: the source cluster exists and is encrypted (and
    /// under which key); room for the run's manual cluster snapshots in the
    /// source region and for the copies in the target region; room in the
    /// target account for the swap (clusters and instances); the snapshot
    /// key's policy lets the target account call kms:CreateGrant,
    /// kms:Decrypt and kms:DescribeKey through RDS; the topic policy lets
    /// the target account subscribe and its subscription is confirmed; both
    /// state machines exist (a warning before the first deploy); the
    /// generated names fit RDS's 63 characters. Quotas come from RDS
    /// DescribeAccountAttributes, else the documented defaults (said so, as
    /// a warning). Exit 1 on any blocker, 0 with warnings only, 2 when the
    /// configuration does not load.
    Preflight(preflight::PreflightArgs),
    /// Print a stack's `sam deploy --parameter-overrides` (or a whole samconfig.toml) from the configuration.
    DeployParams(deploy_params::DeployParamsArgs),
    /// List what the pipeline created on both sides (by its tags and names) and delete it after confirmation.
    Cleanup(cleanup::CleanupArgs),
    /// Run the local AWS emulator in the foreground.
    Emulator(emulator_cmd::EmulatorArgs),
    /// Validate or run Amazon States Language definitions on the local engine.
    Asl(asl_cmd::AslArgs),
    /// Print which function (crate, handler, IAM role) serves each Task state of both state machines.
    Functions(functions_cmd::FunctionsArgs),
    /// Follow a run across both accounts through the Step Functions API: progress, timeline, RPO/RTO, HTML.
    ///
    /// Follows the latest execution of the source state machine (or
    /// --execution ARN), its Distributed Maps' children, and each cluster's
    /// target execution (the one whose input carries the cluster's run id),
    /// until all have ended; prints the drill's progress lines, timeline,
    /// achieved RPO and time to restore, and writes the same HTML page. The
    /// state machines come from target.state_machine_arn or the stacks'
    /// outputs (aurora-dr-source, aurora-dr-target); with --endpoint, from
    /// the drill's engines (`aurora-dr drill --serve-api ADDR`). Credentials:
    /// one profile per account (--source-profile, --target-profile), an
    /// optional --assume-role. With [[targets]] it follows every target at
    /// once, in each target's account and region, and reports per target (an
    /// HTML page each). Exit 0 when the run succeeded, 1 when an execution
    /// failed, timed out or was aborted (the failed state, error and cause
    /// printed; with several targets, naming each target that failed), 2 when
    /// it could not be followed.
    Watch(watch::WatchArgs),
    /// Many drills in a row on one emulator, each under random faults; checks the safety rules after every run.
    ///
    /// Each run's faults (throttling, HTTP 5xx, lost answers after a change,
    /// duplicate or late SNS deliveries, failed or stuck snapshots and
    /// copies, failed renames and instances, quota pressure) come from a
    /// PRNG seeded with (--seed, run number), armed at the emulator for
    /// that run only. After every run: the existing name serves an
    /// available cluster with its instances (once one was restored; a
    /// fault that broke the serving instance itself is excused until the
    /// next successful run); the serving cluster is deleted only while a
    /// replacement holds the name (from the emulator's call log; an
    /// instance already failed serves nothing); the source cluster describes as
    /// before; no snapshot is shared beyond the target account; after a
    /// successful run nothing is left but what retention keeps. Prints a
    /// row per run, a summary and, for a run that broke a rule, the command
    /// that replays it. Exit 1 on any violation or a run that hung, 0
    /// otherwise (runs that fail under faults are expected), 2 when the
    /// configuration does not load or the emulator cannot be set up.
    Chaos(chaos::ChaosArgs),
    /// Deploy the templates into the local emulator and run the drill on that wiring, every AWS call judged under IAM.
    Rehearse(rehearse::RehearseArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    end_quietly_on_a_closed_pipe();
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { config } => validate(&config),
        Command::Drill(args) => drill::run(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Preflight(args) => preflight::run(args).await,
        Command::DeployParams(args) => deploy_params::run(args).await,
        Command::Cleanup(args) => cleanup::run(args).await,
        Command::Emulator(args) => emulator_cmd::run(args).await,
        Command::Asl(args) => asl_cmd::run(args).await,
        Command::Functions(args) => functions_cmd::run(args),
        Command::Rehearse(args) => rehearse::run(args).await,
        Command::Watch(args) => watch::run(args).await,
        Command::Chaos(args) => chaos::run(args).await,
    }
}

/// Output into a closed pipe (`aurora-dr status ... | head -1`) makes
/// `println!` panic, since Rust programs ignore SIGPIPE. End instead as a
/// command killed by SIGPIPE is reported, 141 (128 + 13), without a panic
/// message; every other panic goes to the default hook. Restoring SIGPIPE's
/// default action would do the same for stdout but also kill the drill on a
/// write to a closed socket.
fn end_quietly_on_a_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to std") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn validate(path: &std::path::Path) -> ExitCode {
    match config::Config::load(path) {
        Ok(c) => {
            println!("{}: valid", path.display());
            for note in c.notes() {
                println!("  note: {note}");
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprint!("{errors}");
            ExitCode::from(2)
        }
    }
}
