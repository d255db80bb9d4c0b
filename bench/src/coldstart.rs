//! One cold start: a fresh function process, one invocation through the
//! local Runtime API, its timings and its peak resident memory.
//!
//! Measured from the instant just before the process is spawned:
//! - **init**: until its first `next` request (what Lambda reports as Init
//!   Duration: runtime start, handler module/binary loaded, clients built);
//! - **first response**: until its `/response` (or error) arrived in full;
//! - **peak RSS**: `VmHWM` of `/proc/<pid>/status`, read once the process
//!   has answered and is blocked in its second `next`, then it is killed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::runtime_api::{Answer, Observed, RuntimeApi};

/// How to start a function process.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// The whole environment of the process (nothing is inherited).
    pub env: Vec<(String, String)>,
    /// Where its stdout and stderr go (overwritten by every start).
    pub log: PathBuf,
}

/// The figures of one cold start.
#[derive(Debug, Clone)]
pub struct ColdStart {
    pub init_ms: f64,
    pub first_response_ms: f64,
    pub peak_rss_kib: u64,
    /// Resident memory when blocked after the answer: anonymous (heap,
    /// stacks) and file-backed (the executable, libraries, Python modules).
    pub rss_anon_kib: u64,
    pub rss_file_kib: u64,
    pub output: Value,
}

/// Longest wait for each phase before the start counts as failed.
const INIT_TIMEOUT: Duration = Duration::from_secs(60);
const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);
const BLOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts `launch`, hands it `event` and measures; the process is killed
/// before this returns. An error answer or a process that dies is an `Err`
/// carrying the tail of its log.
pub async fn cold_start(
    api: &RuntimeApi,
    launch: &Launch,
    request_id: &str,
    function_arn: &str,
    event: Value,
) -> Result<ColdStart, String> {
    api.arm(request_id, function_arn, event);
    let log = std::fs::File::create(&launch.log).map_err(|e| format!("{}: {e}", launch.log.display()))?;
    let log_err = log.try_clone().map_err(|e| e.to_string())?;
    let mut command = tokio::process::Command::new(&launch.program);
    command
        .args(&launch.args)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err))
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = command.spawn().map_err(|e| format!("{}: {e}", launch.program.display()))?;
    let pid = child.id().ok_or("the process exited at once")?;

    let answered = |o: &Observed| o.answer.clone();
    let outcome = tokio::select! {
        answer = api.wait_until(INIT_TIMEOUT + INVOKE_TIMEOUT, answered) => answer,
        // It may have answered just before exiting.
        _ = child.wait() => api.observed().answer,
    };
    let result = match outcome {
        Some((answered_at, Answer::Response(output))) => {
            let observed = api.observed();
            let first_next = observed.nexts.first().copied().unwrap_or(answered_at);
            // Blocked in the second `next`: nothing more will run, read the high-water mark.
            let blocked = api.wait_until(BLOCK_TIMEOUT, |o| (o.nexts.len() >= 2).then_some(())).await;
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            match (blocked, status_kib(&status, "VmHWM:")) {
                (Some(()), Some(peak_rss_kib)) => Ok(ColdStart {
                    init_ms: ms(first_next - started),
                    first_response_ms: ms(answered_at - started),
                    peak_rss_kib,
                    rss_anon_kib: status_kib(&status, "RssAnon:").unwrap_or(0),
                    rss_file_kib: status_kib(&status, "RssFile:").unwrap_or(0),
                    output,
                }),
                (None, _) => Err("answered but never asked for the next invocation".to_owned()),
                (_, None) => Err(format!("no VmHWM in /proc/{pid}/status")),
            }
        }
        Some((_, Answer::Error { error_type, body })) => {
            Err(format!("invocation error {error_type}: {body}"))
        }
        Some((_, Answer::InitError { error_type, body })) => Err(format!("init error {error_type}: {body}")),
        None => Err("no answer (the process exited or timed out)".to_owned()),
    };
    let _ = child.start_kill();
    let _ = child.wait().await;
    result.map_err(|e| format!("{e}\n--- {} ---\n{}", launch.log.display(), tail(&launch.log, 20)))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A `kB` field of `/proc/<pid>/status` (`VmHWM:` is the peak resident set size).
pub fn status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
