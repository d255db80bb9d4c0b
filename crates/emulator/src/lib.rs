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
//! - The emulator refuses what RDS refuses ([`Strictness`], every rule on by
//!   default, each one switchable), within RDS's [`Quotas`], and takes time
//!   where RDS does ([`Latency`]: short for tests, [`Latency::realistic`]
//!   scaled for drills).
//! - [`Control`] arms [`FaultRule`]s, changes latency, strictness and quotas,
//!   tells what an endpoint hostname reaches ([`Control::resolve`], for an
//!   injectable resolver), registers the URLs that stand in for Lambda
//!   functions as EventBridge targets ([`Control::set_lambda_endpoints`]:
//!   RDS's events reach them when resources change state) and reads the
//!   [`CallRecord`] log.
//! - [`EmulatorConfig::stock`] starts plain moto, without the compatibility
//!   layer: the tests run each RDS behaviour against both.
//!
//! `emulator/README.md` documents the launcher, the control endpoint's JSON
//! and every RDS behaviour with the AWS page it follows and its test.

mod control;
mod error;
mod faults;
mod latency;
mod process;
mod strict;
mod venv;

pub use control::{CallRecord, Control, Resolved};
pub use error::EmulatorError;
pub use faults::{DeliveryMode, DeliveryRule, ErrorRule, FaultRule, RdsEventMode, RdsEventRule};
pub use latency::{Delay, Latency};
pub use process::{Emulator, EmulatorConfig, interrupted};
pub use strict::{QuotaName, Quotas, Strictness};
pub use venv::{
    REQUIREMENTS, Venv, default_venv_dir, ensure_venv, ensure_venv_at, repo_root, venv_is_current,
};
