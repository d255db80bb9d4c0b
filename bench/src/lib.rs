//! Shared pieces of the benchmark programs (`bench-cold-start`,
//! `bench-drill`, `bench-scale`). They print figures; nothing here asserts
//! a timing.
//!
//! - [`runtime_api`]: a local Lambda Runtime API (2018-06-01) that hands one
//!   invocation to a freshly started function process and timestamps its
//!   `next`, response and error requests.
//! - [`coldstart`]: starts a function process, drives one invocation through
//!   the Runtime API and reads its peak RSS.
//! - [`proxy`]: a timing HTTP proxy in front of the emulator, recording how
//!   long each AWS call took as seen from the clients' side.
//! - [`stats`], [`table`]: min/median/max and fixed-width tables.

pub mod coldstart;
pub mod proxy;
pub mod runtime_api;
pub mod stats;
pub mod table;

use std::path::{Path, PathBuf};

/// The workspace root (the bench crate lives in `<root>/bench`).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Runs a benchmark program's `run` on a multi-threaded tokio runtime; an
/// error is printed as `{program}: {error}` and fails the process.
pub fn run_main<F>(program: &str, run: F) -> std::process::ExitCode
where
    F: std::future::Future<Output = Result<(), String>>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{program}: tokio runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The `aurora-dr` binary to drive: `explicit` (`--cli`) or the release
/// build; an error naming it when it is not there.
pub fn cli_binary(explicit: Option<&Path>) -> Result<PathBuf, String> {
    let cli = explicit.map_or_else(|| repo_root().join("target/release/aurora-dr"), Path::to_path_buf);
    if cli.exists() {
        Ok(cli)
    } else {
        Err(format!("{} is missing: build it with `make bench`", cli.display()))
    }
}

/// The workspace's `[profile.release]` settings as written in Cargo.toml
/// (`opt-level = "s", lto = "thin", strip = true`), so the tables name the
/// build they measured.
pub fn release_profile() -> String {
    let text = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap_or_default();
    let settings: Vec<&str> = text
        .lines()
        .skip_while(|l| l.trim() != "[profile.release]")
        .skip(1)
        .map(str::trim)
        .take_while(|l| !l.starts_with('['))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    if settings.is_empty() { "defaults".to_owned() } else { settings.join(", ") }
}

/// One line about the machine the figures come from: CPU model, logical
/// CPUs, memory, kernel.
pub fn machine_summary() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim()))
        .unwrap_or("unknown CPU")
        .to_owned();
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{model}, {cpus} logical CPUs, {mem_gib:.0} GiB RAM, Linux {}", kernel.trim())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_release_profile_is_read_from_the_workspace() {
        let profile = super::release_profile();
        assert!(profile.contains("opt-level") && profile.contains("lto"), "{profile}");
        assert!(!profile.contains('#') && !profile.contains('['), "{profile}");
    }
}
