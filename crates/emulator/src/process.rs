//! One running emulator process.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

use crate::EmulatorError;
use crate::control::Control;
use crate::faults::FaultRule;
use crate::latency::Latency;
use crate::strict::{Quotas, Strictness};
use crate::venv::{default_venv_dir, ensure_venv_at};

/// Lines of the emulator's stderr kept for error messages.
const TAIL_LINES: usize = 60;

/// How to start an emulator.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Interface to listen on.
    pub host: String,
    /// Port; `0` takes a free one.
    pub port: u16,
    /// Simulated progress of snapshots, clusters and instances, and DNS delays.
    pub latency: Latency,
    /// Which RDS rules are enforced (all by default).
    pub strict: Strictness,
    /// RDS quotas per account and region (RDS's defaults).
    pub quotas: Quotas,
    /// Rules armed before the first request.
    pub faults: Vec<FaultRule>,
    /// Plain moto, without the compatibility layer, latency, fault rules or
    /// control endpoint: shows which behaviours the layer adds.
    pub stock: bool,
    /// Virtual environment; `None` is [`default_venv_dir`].
    pub venv_dir: Option<PathBuf>,
    /// Log every request on the emulator's stderr.
    pub log_requests: bool,
    /// Copy the emulator's stderr to this process's stderr (else `tracing`).
    pub echo_stderr: bool,
    /// Longest wait for the ready line (not counting venv creation).
    pub startup_timeout: Duration,
    /// Extra environment variables of the emulator process (moto's own
    /// settings, e.g. `MOTO_IAM_LOAD_MANAGED_POLICIES`).
    pub env: Vec<(String, String)>,
}

impl Default for EmulatorConfig {
    /// A private emulator for one test: free port, test latency, no faults.
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 0,
            latency: Latency::for_tests(),
            strict: Strictness::strict(),
            quotas: Quotas::default(),
            faults: Vec::new(),
            stock: false,
            venv_dir: None,
            log_requests: false,
            echo_stderr: false,
            startup_timeout: Duration::from_secs(60),
            env: Vec::new(),
        }
    }
}

impl EmulatorConfig {
    /// Plain moto 5.2.5 on a free port: only what serves requests.
    pub fn stock() -> Self {
        Self { stock: true, ..Self::default() }
    }

    pub fn with_strictness(mut self, strict: Strictness) -> Self {
        self.strict = strict;
        self
    }

    pub fn with_quotas(mut self, quotas: Quotas) -> Self {
        self.quotas = quotas;
        self
    }

    pub fn with_latency(mut self, latency: Latency) -> Self {
        self.latency = latency;
        self
    }

    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Sets an environment variable of the emulator process.
    pub fn with_env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn with_fault(mut self, rule: impl Into<FaultRule>) -> Self {
        self.faults.push(rule.into());
        self
    }
}

/// A running emulator. Dropping it kills the process; [`Emulator::stop`]
/// stops it gracefully.
#[derive(Debug)]
pub struct Emulator {
    child: Child,
    stdin: Option<ChildStdin>,
    url: String,
    port: u16,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl Emulator {
    /// Creates the virtual environment if needed, starts the emulator and
    /// returns once it has printed `ready http://HOST:PORT`.
    pub async fn start(config: EmulatorConfig) -> Result<Self, EmulatorError> {
        if config.stock && !config.faults.is_empty() {
            return Err(EmulatorError::Control {
                path: "faults".into(),
                message: "stock moto has no fault rules; start the emulator without `stock`".into(),
            });
        }
        let dir = config.venv_dir.clone().unwrap_or_else(default_venv_dir);
        let venv =
            ensure_venv_at(&dir, |line| tracing::info!(target: "aurora_dr_emulator", "{line}")).await?;
        let json = |name: &str, value: serde_json::Result<String>| {
            value.map_err(|e| EmulatorError::Control { path: name.into(), message: e.to_string() })
        };
        let latency = json("latency", serde_json::to_string(&config.latency))?;
        let strict = json("strict", serde_json::to_string(&config.strict))?;
        let quotas = json("quotas", serde_json::to_string(&config.quotas))?;
        let mut command = Command::new(&venv.python);
        command
            .arg(&venv.launcher)
            .args(["--host", &config.host, "--port", &config.port.to_string(), "--latency", &latency])
            .args(["--strict", &strict, "--quotas", &quotas])
            .arg("--exit-on-stdin-eof")
            .env_remove("MOTO_ACCOUNT_ID")
            // Let Python cache compiled modules in the venv: later starts are faster.
            .env_remove("PYTHONDONTWRITEBYTECODE")
            .env("PYTHONUNBUFFERED", "1")
            .envs(config.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if !config.log_requests {
            command.arg("--quiet");
        }
        if config.stock {
            command.arg("--stock");
        }
        let mut child = command.spawn().map_err(EmulatorError::Spawn)?;
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let drain = child
            .stderr
            .take()
            .map(|err| tokio::spawn(drain_stderr(err, Arc::clone(&tail), config.echo_stderr)));
        let stdout =
            child.stdout.take().ok_or_else(|| EmulatorError::Spawn(std::io::Error::other("no stdout")))?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(config.startup_timeout, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("ready ") {
                    return Some(url.trim().to_owned());
                }
                tracing::debug!(target: "aurora_dr_emulator", "{line}");
            }
            None
        })
        .await;
        let url = match ready {
            Ok(Some(url)) => url,
            Ok(None) => {
                let status = child.wait().await.map_or_else(|e| e.to_string(), |s| s.to_string());
                if let Some(drain) = drain {
                    let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
                }
                return Err(EmulatorError::EarlyExit { status, output: tail_text(&tail) });
            }
            Err(_) => {
                return Err(EmulatorError::StartTimeout {
                    timeout: config.startup_timeout,
                    output: tail_text(&tail),
                });
            }
        };
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::debug!(target: "aurora_dr_emulator", "{line}");
            }
        });
        let port = url.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(config.port);
        let emulator = Self { stdin: child.stdin.take(), child, url, port, tail };
        for rule in config.faults {
            emulator.control().arm(rule).await?;
        }
        Ok(emulator)
    }

    /// Base URL, e.g. `http://127.0.0.1:4599`: the endpoint for every service
    /// and region.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Client of the control endpoint (faults, latency, call log).
    pub fn control(&self) -> Control {
        Control::new(self.url.trim_start_matches("http://").to_owned())
    }

    /// The last lines the emulator wrote to stderr.
    pub fn output_tail(&self) -> String {
        tail_text(&self.tail)
    }

    /// Stops the emulator: closes its stdin (it shuts down cleanly), and
    /// kills it if it has not exited within five seconds.
    pub async fn stop(mut self) -> Result<ExitStatus, EmulatorError> {
        drop(self.stdin.take());
        match tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await {
            Ok(status) => status.map_err(EmulatorError::Spawn),
            Err(_) => {
                self.child.kill().await.map_err(EmulatorError::Spawn)?;
                self.child.wait().await.map_err(EmulatorError::Spawn)
            }
        }
    }

    /// Serves until `shutdown` resolves (then stops cleanly), or until the
    /// emulator exits by itself (an error). See [`interrupted`].
    pub async fn run_until(mut self, shutdown: impl Future<Output = ()>) -> Result<(), EmulatorError> {
        tokio::select! {
            () = shutdown => self.stop().await.map(drop),
            status = self.child.wait() => {
                let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                Err(EmulatorError::Exited(format!("{status}; last output:\n{}", self.output_tail())))
            }
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when
/// this is called, so call it before announcing readiness: a signal that
/// arrives later is never lost.
pub fn interrupted() -> Result<impl Future<Output = ()>, EmulatorError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).map_err(EmulatorError::Spawn)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(EmulatorError::Spawn)?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

async fn drain_stderr(stderr: tokio::process::ChildStderr, tail: Arc<Mutex<VecDeque<String>>>, echo: bool) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if echo {
            eprintln!("{line}");
        } else {
            tracing::debug!(target: "aurora_dr_emulator", "{line}");
        }
        if let Ok(mut tail) = tail.lock() {
            tail.push_back(line);
            while tail.len() > TAIL_LINES {
                tail.pop_front();
            }
        }
    }
}

fn tail_text(tail: &Mutex<VecDeque<String>>) -> String {
    tail.lock().map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n")).unwrap_or_default()
}
