//! The project-local Python virtual environment that runs the emulator.
//!
//! Location: `AURORA_DR_VENV`, else `<repo>/.venv` (the repository root is
//! known at compile time). It is created on first use with the interpreter
//! `AURORA_DR_PYTHON` (default `python3`) and filled with
//! `pip install --require-hashes --no-deps -r emulator/requirements.txt`.
//! A copy of that file inside the venv marks it complete; when the file in
//! the binary differs (requirements changed), the venv is created anew.
//! Creation holds an exclusive file lock, so test processes that race
//! create it once. The launcher's Python sources are embedded in this crate
//! and written to a directory named after their content hash.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::EmulatorError;

/// `emulator/requirements.txt`: moto and its dependencies, pinned with hashes.
pub const REQUIREMENTS: &str = include_str!("../../../emulator/requirements.txt");

/// The launcher and its modules, as shipped in `emulator/` (paths relative to it).
const SOURCES: [(&str, &str); 21] = [
    ("launcher.py", include_str!("../../../emulator/launcher.py")),
    ("control.py", include_str!("../../../emulator/control.py")),
    ("progress.py", include_str!("../../../emulator/progress.py")),
    ("iam.py", include_str!("../../../emulator/iam.py")),
    ("iam_actions.py", include_str!("../../../emulator/iam_actions.py")),
    ("settings.py", include_str!("../../../emulator/settings.py")),
    ("compat/__init__.py", include_str!("../../../emulator/compat/__init__.py")),
    ("compat/common.py", include_str!("../../../emulator/compat/common.py")),
    ("compat/deletion.py", include_str!("../../../emulator/compat/deletion.py")),
    ("compat/dns.py", include_str!("../../../emulator/compat/dns.py")),
    ("compat/encryption.py", include_str!("../../../emulator/compat/encryption.py")),
    ("compat/identifiers.py", include_str!("../../../emulator/compat/identifiers.py")),
    ("compat/lambda_targets.py", include_str!("../../../emulator/compat/lambda_targets.py")),
    ("compat/networking.py", include_str!("../../../emulator/compat/networking.py")),
    ("compat/quotas.py", include_str!("../../../emulator/compat/quotas.py")),
    ("compat/rds_events.py", include_str!("../../../emulator/compat/rds_events.py")),
    ("compat/restore.py", include_str!("../../../emulator/compat/restore.py")),
    ("compat/serverless.py", include_str!("../../../emulator/compat/serverless.py")),
    ("compat/snapshots.py", include_str!("../../../emulator/compat/snapshots.py")),
    ("compat/sns.py", include_str!("../../../emulator/compat/sns.py")),
    ("compat/transitions.py", include_str!("../../../emulator/compat/transitions.py")),
];

const MARKER: &str = "aurora-dr-requirements.txt";
const LOCK: &str = ".aurora-dr-setup.lock";
const SOURCES_DIR: &str = "aurora-dr-emulator";

/// A ready virtual environment.
#[derive(Debug, Clone)]
pub struct Venv {
    /// The environment's directory.
    pub dir: PathBuf,
    /// Its Python interpreter.
    pub python: PathBuf,
    /// `launcher.py` (next to its modules).
    pub launcher: PathBuf,
}

/// The repository this crate was built from.
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().and_then(Path::parent).unwrap_or(manifest).to_path_buf()
}

/// `AURORA_DR_VENV`, else `<repo>/.venv`.
pub fn default_venv_dir() -> PathBuf {
    match std::env::var_os("AURORA_DR_VENV") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => repo_root().join(".venv"),
    }
}

/// Makes sure the default virtual environment exists and is current;
/// `progress` receives one line per step of a (slow) creation.
pub async fn ensure_venv(progress: impl FnMut(&str)) -> Result<Venv, EmulatorError> {
    ensure_venv_at(&default_venv_dir(), progress).await
}

/// [`ensure_venv`] for a given directory.
pub async fn ensure_venv_at(dir: &Path, mut progress: impl FnMut(&str)) -> Result<Venv, EmulatorError> {
    if !is_current(dir).await {
        tokio::fs::create_dir_all(dir).await.map_err(|e| EmulatorError::io(dir, e))?;
        let lock = lock(dir).await?;
        // Another process may have finished it while we waited for the lock.
        if !is_current(dir).await {
            create(dir, &mut progress).await?;
        }
        drop(lock);
    }
    let launcher = write_sources(dir).await?;
    Ok(Venv { dir: dir.to_path_buf(), python: venv_python(dir), launcher })
}

/// Whether the environment in `dir` exists and matches the requirements, so
/// starting the emulator creates nothing (callers say when it will).
pub async fn venv_is_current(dir: &Path) -> bool {
    is_current(dir).await
}

fn venv_python(dir: &Path) -> PathBuf {
    dir.join("bin").join("python")
}

async fn is_current(dir: &Path) -> bool {
    match tokio::fs::read_to_string(dir.join(MARKER)).await {
        Ok(marker) => marker == REQUIREMENTS && venv_python(dir).exists(),
        Err(_) => false,
    }
}

/// Exclusive lock on `<dir>/.aurora-dr-setup.lock`, released on drop.
async fn lock(dir: &Path) -> Result<std::fs::File, EmulatorError> {
    let path = dir.join(LOCK);
    tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| EmulatorError::io(&path, e))?;
        file.lock().map_err(|e| EmulatorError::io(&path, e))?;
        Ok(file)
    })
    .await
    .map_err(|e| EmulatorError::Venv { dir: dir.to_path_buf(), message: e.to_string() })?
}

async fn create(dir: &Path, progress: &mut impl FnMut(&str)) -> Result<(), EmulatorError> {
    let python = std::env::var("AURORA_DR_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    progress(&format!("creating the emulator's Python environment in {} (first run only)", dir.display()));
    clear(dir).await?;
    let check = "import sys, venv; sys.exit(0 if sys.version_info >= (3, 9) else 3)";
    let status = Command::new(&python)
        .args(["-c", check])
        .status()
        .await
        .map_err(|source| EmulatorError::PythonMissing { python: python.clone(), source })?;
    if !status.success() {
        return Err(venv_error(dir, format!("`{python}` is not Python 3.9+ with the venv module")));
    }
    run(dir, Command::new(&python).arg("-m").arg("venv").arg(dir), progress).await?;
    let pending = dir.join("aurora-dr-requirements.pending");
    tokio::fs::write(&pending, REQUIREMENTS).await.map_err(|e| EmulatorError::io(&pending, e))?;
    progress("installing moto and its pinned dependencies (pip --require-hashes)");
    let mut pip = Command::new(venv_python(dir));
    pip.args(["-m", "pip", "install", "--require-hashes", "--no-deps", "--disable-pip-version-check"])
        .args(["--no-input", "--progress-bar", "off", "-r"])
        .arg(&pending);
    run(dir, &mut pip, progress).await?;
    let mut check = Command::new(venv_python(dir));
    check.args(["-c", "import moto.server, flask, flask_cors"]);
    run(dir, &mut check, progress).await?;
    // The marker is written last and atomically: its presence means complete.
    let marker = dir.join(MARKER);
    tokio::fs::rename(&pending, &marker).await.map_err(|e| EmulatorError::io(&marker, e))?;
    progress("emulator environment ready");
    Ok(())
}

/// Empties `dir` except for the lock file.
async fn clear(dir: &Path) -> Result<(), EmulatorError> {
    let mut entries = tokio::fs::read_dir(dir).await.map_err(|e| EmulatorError::io(dir, e))?;
    while let Some(entry) = entries.next_entry().await.map_err(|e| EmulatorError::io(dir, e))? {
        let path = entry.path();
        if entry.file_name() == LOCK {
            continue;
        }
        let is_dir = entry.file_type().await.map(|t| t.is_dir()).unwrap_or(false);
        let removed =
            if is_dir { tokio::fs::remove_dir_all(&path).await } else { tokio::fs::remove_file(&path).await };
        removed.map_err(|e| EmulatorError::io(&path, e))?;
    }
    Ok(())
}

/// Runs a set-up command, passing its output lines to `progress`.
async fn run(
    dir: &Path,
    command: &mut Command,
    progress: &mut impl FnMut(&str),
) -> Result<(), EmulatorError> {
    let shown = format!("{:?}", command.as_std());
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| venv_error(dir, format!("{shown}: {e}")))?;
    let stderr = child.stderr.take().map(|err| {
        tokio::spawn(async move {
            let mut text = String::new();
            let mut lines = BufReader::new(err).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                text.push_str(&line);
                text.push('\n');
            }
            text
        })
    });
    if let Some(out) = child.stdout.take() {
        let mut lines = BufReader::new(out).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if !line.trim().is_empty() {
                progress(line.trim_end());
            }
        }
    }
    let status = child.wait().await.map_err(|e| venv_error(dir, format!("{shown}: {e}")))?;
    let errors = match stderr {
        Some(task) => task.await.unwrap_or_default(),
        None => String::new(),
    };
    if status.success() {
        Ok(())
    } else {
        Err(venv_error(dir, format!("{shown} failed ({status}):\n{errors}")))
    }
}

fn venv_error(dir: &Path, message: String) -> EmulatorError {
    EmulatorError::Venv { dir: dir.to_path_buf(), message }
}

/// Writes the embedded launcher sources to `<dir>/aurora-dr-emulator/<hash>/`
/// once (atomically: a temporary directory renamed into place).
async fn write_sources(dir: &Path) -> Result<PathBuf, EmulatorError> {
    let base = dir.join(SOURCES_DIR);
    let target = base.join(format!("{:016x}", sources_hash()));
    let launcher = target.join("launcher.py");
    if launcher.exists() {
        return Ok(launcher);
    }
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let staging = base.join(format!(".tmp-{}-{nanos}", std::process::id()));
    tokio::fs::create_dir_all(&staging).await.map_err(|e| EmulatorError::io(&staging, e))?;
    for (name, text) in SOURCES {
        let path = staging.join(name);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|e| EmulatorError::io(parent, e))?;
        }
        tokio::fs::write(&path, text).await.map_err(|e| EmulatorError::io(&path, e))?;
    }
    if let Err(error) = tokio::fs::rename(&staging, &target).await {
        // Lost a race against another process: its copy is identical.
        let _ = tokio::fs::remove_dir_all(&staging).await;
        if !launcher.exists() {
            return Err(EmulatorError::io(&target, error));
        }
    }
    Ok(launcher)
}

/// FNV-1a over the embedded sources: names the directory they are written to.
fn sources_hash() -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, text) in SOURCES {
        for byte in name.bytes().chain([0]).chain(text.bytes()).chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_pin_moto_with_hashes() {
        assert!(REQUIREMENTS.contains("moto==5.2."), "moto 5.2.x must be pinned");
        assert!(REQUIREMENTS.contains("--hash=sha256:"), "requirements must carry hashes");
    }

    #[test]
    fn sources_hash_is_stable_and_names_a_directory() {
        assert_eq!(sources_hash(), sources_hash());
        assert_eq!(format!("{:016x}", sources_hash()).len(), 16);
    }

    #[test]
    fn every_python_source_is_embedded() {
        let dir = repo_root().join("emulator");
        let mut on_disk = Vec::new();
        for sub in ["", "compat"] {
            for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
                let name = entry.unwrap().file_name().into_string().unwrap();
                if name.ends_with(".py") {
                    on_disk.push(if sub.is_empty() { name } else { format!("{sub}/{name}") });
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = SOURCES.iter().map(|(name, _)| (*name).to_owned()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk, "SOURCES must list every module of emulator/");
    }

    #[test]
    fn default_venv_is_in_the_repository() {
        if std::env::var_os("AURORA_DR_VENV").is_none() {
            assert_eq!(default_venv_dir(), repo_root().join(".venv"));
        }
        assert!(repo_root().join("emulator").join("launcher.py").exists());
    }
}
