//! The `aurora-dr` command line as a library, so workspace tests can run a
//! drill in-process against an emulator they inspect.

pub mod accounts;
pub mod asl_cmd;
pub mod chaos;
pub mod cleanup;
pub mod config;
pub mod deploy_params;
pub mod drill;
pub mod emulator_cmd;
pub mod functions_cmd;
pub mod preflight;
pub mod rehearse;
pub mod status;
pub mod watch;
