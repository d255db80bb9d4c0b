//! Local AWS emulator for aurora-dr: moto in server mode plus a small
//! compatibility layer (`emulator/compat.py`) that makes it behave like RDS
//! and SNS for the disaster-recovery flow, with simulated latency and fault
//! injection.
//!
//! - [`Emulator::start`] creates the project-local virtual environment on
//!   first use ([`ensure_venv`]), starts one emulator on a free port and
//!   returns once it serves; dropping the [`Emulator`] kills it. Every test
//!   starts its own, so tests run in parallel without sharing state.
//! - [`Emulator::url`] is the one endpoint for every service and region.
//!   The account of a request is chosen by its credentials: those returned by
//!   `sts:AssumeRole` for `arn:aws:iam::<account>:role/<any>` act in that
//!   account, exactly as in production.
//! - [`Control`] arms [`FaultRule`]s, changes [`Latency`] and reads the
//!   [`CallRecord`] log.
//!
//! `emulator/README.md` documents the launcher, the control endpoint's JSON
//! and every compatibility patch with the test that proves it.

mod control;
mod error;
mod process;
mod venv;

pub use control::{CallRecord, Control, Delay, ErrorRule, FaultRule, Latency};
pub use error::EmulatorError;
pub use process::{Emulator, EmulatorConfig, interrupted};
pub use venv::{
    REQUIREMENTS, Venv, default_venv_dir, ensure_venv, ensure_venv_at, repo_root, venv_is_current,
};
