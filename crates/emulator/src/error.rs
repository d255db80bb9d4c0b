//! The one error type of the emulator crate.

use std::path::PathBuf;
use std::time::Duration;

/// Why the emulator could not be set up, started or controlled.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The Python interpreter that creates the virtual environment is missing.
    #[error(
        "cannot run `{python}` to create the emulator's virtual environment: {source} \
         (install Python 3.9+ with its venv module, or set AURORA_DR_PYTHON)"
    )]
    PythonMissing { python: String, source: std::io::Error },

    /// Creating the virtual environment or installing the pinned packages failed.
    #[error("setting up the emulator's virtual environment in {dir} failed: {message}")]
    Venv { dir: PathBuf, message: String },

    /// A file of the virtual environment could not be read or written.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    /// The emulator process could not be spawned.
    #[error("cannot start the emulator process: {0}")]
    Spawn(std::io::Error),

    /// The emulator exited before it printed its ready line.
    #[error("the emulator exited before it was ready ({status}); its last output:\n{output}")]
    EarlyExit { status: String, output: String },

    /// The emulator printed no ready line in time.
    #[error("the emulator was not ready after {timeout:?}; its last output:\n{output}")]
    StartTimeout { timeout: Duration, output: String },

    /// The emulator stopped while it was expected to serve.
    #[error("the emulator exited unexpectedly ({0})")]
    Exited(String),

    /// A duration profile (TOML) is malformed.
    #[error("duration profile {path}: {message}")]
    Durations { path: PathBuf, message: String },

    /// A call to the control endpoint failed or was refused.
    #[error("emulator control {path}: {message}")]
    Control { path: String, message: String },
}

impl EmulatorError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}
