//! `aurora-dr emulator [--port N]`: the local AWS emulator in the foreground.
//!
//! Creates the project-local virtual environment on first use (progress on
//! stderr), starts moto with the aurora-dr compatibility layer, prints one
//! line `ready http://HOST:PORT` on stdout once it serves, and stops cleanly
//! on Ctrl-C. Point the SDK at it with `AWS_ENDPOINT_URL=<that url>`; the
//! control endpoint is `<url>/_aurora_dr/` (see emulator/README.md).

use std::io::Write;
use std::process::ExitCode;

use aurora_dr_emulator::{Delay, Emulator, EmulatorConfig, Latency, ensure_venv, interrupted};

/// Options of `aurora-dr emulator`.
#[derive(Debug, clap::Args)]
pub struct EmulatorArgs {
    /// Port to listen on; 0 takes a free one (printed on the ready line).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Interface to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Seconds snapshots, clusters and instances stay in progress.
    #[arg(long, value_name = "SECONDS", default_value_t = 3.0, conflicts_with = "latency_polls")]
    pub latency_seconds: f64,
    /// Instead: describe calls for which each resource stays in progress.
    #[arg(long, value_name = "N")]
    pub latency_polls: Option<u32>,
    /// Log every request on stderr.
    #[arg(long)]
    pub log_requests: bool,
    /// Only create (or check) the virtual environment, then exit.
    #[arg(long)]
    pub setup_only: bool,
}

impl EmulatorArgs {
    fn config(&self) -> EmulatorConfig {
        let delay = match self.latency_polls {
            Some(polls) => Delay::polls(polls),
            None => Delay::seconds(self.latency_seconds.max(0.0)),
        };
        EmulatorConfig {
            host: self.host.clone(),
            port: self.port,
            latency: Latency::uniform(delay),
            log_requests: self.log_requests,
            echo_stderr: self.log_requests,
            ..EmulatorConfig::default()
        }
    }
}

/// Runs the emulator until Ctrl-C (or SIGTERM).
pub async fn run(args: EmulatorArgs) -> std::process::ExitCode {
    if let Err(error) = ensure_venv(|line| eprintln!("aurora-dr emulator: {line}")).await {
        eprintln!("aurora-dr emulator: {error}");
        return ExitCode::FAILURE;
    }
    if args.setup_only {
        return ExitCode::SUCCESS;
    }
    let emulator = match Emulator::start(args.config()).await {
        Ok(emulator) => emulator,
        Err(error) => {
            eprintln!("aurora-dr emulator: {error}");
            return ExitCode::FAILURE;
        }
    };
    // Handlers first: a Ctrl-C right after the ready line must stop cleanly.
    let shutdown = match interrupted() {
        Ok(shutdown) => shutdown,
        Err(error) => {
            eprintln!("aurora-dr emulator: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "ready {}", emulator.url()).and_then(|()| stdout.flush()).is_err() {
        return ExitCode::FAILURE;
    }
    drop(stdout);
    match emulator.run_until(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("aurora-dr emulator: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: EmulatorArgs,
    }

    #[test]
    fn defaults_to_a_free_port_and_demo_latency() {
        let cli = Cli::parse_from(["emulator"]);
        let config = cli.args.config();
        assert_eq!(config.port, 0);
        assert_eq!(config.latency, Latency::for_demo());
    }

    #[test]
    fn port_and_polls_are_taken() {
        let cli = Cli::parse_from(["emulator", "--port", "4599", "--latency-polls", "2"]);
        let config = cli.args.config();
        assert_eq!(config.port, 4599);
        assert_eq!(config.latency, Latency::for_tests());
    }
}
