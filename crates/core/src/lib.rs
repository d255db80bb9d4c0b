//! aurora-dr core library: everything the Lambda functions, the CLI and the
//! tests share.
//!
//! - [`ids`]: validated identifiers (cluster, instance, snapshot, account, region, ARN).
//! - [`payload`]: the state payload ([`payload::RunState`]) and the SNS message.
//! - [`settings`]: both sides' settings, from the environment or the CLI's TOML.
//! - [`error`]: the one error enum and its mapping to ASL error names.
//! - [`clients`]: the one AWS client factory.
//! - [`rds`]: shared RDS look-ups, tags and status classification.
//! - [`probe`]: the SanityCheck step's database probes (PostgreSQL and MySQL).
//! - [`context`]: what a step runs with (clients + settings).
//! - [`steps`]: one module per handler, each a plain async function, and
//!   [`steps::FUNCTIONS`], the one table from Task states to functions.
//! - [`lambda`]: the shared Lambda entry point the thin binaries call.
//! - [`wait_tokens`]: the task tokens of the callback waits, kept until an
//!   RDS event or the wait's own check completes them.
//! - [`metrics`]: RPO/RTO metrics as CloudWatch Embedded Metric Format records.

pub mod clients;
pub mod context;
pub mod error;
pub mod ids;
pub mod lambda;
pub mod metrics;
pub mod payload;
pub mod poll;
pub mod probe;
pub mod rds;
pub mod resolve;
pub mod settings;
pub mod steps;
pub mod wait_tokens;

pub use error::{DrError, DrResult};
