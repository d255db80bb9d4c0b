//! Every RDS behaviour of the compatibility layer, checked against our
//! emulator (where it must hold) and against stock moto 5.2.5 (where it must
//! not: otherwise the behaviour is moto's own and the check proves nothing
//! about the layer). One module per RDS concern, as in `emulator/compat/`;
//! `emulator/README.md` lists each check with the AWS page it follows.
//!
//! A check is an async fn from an emulator to `Result<(), String>`: `Err`
//! says what deviated from RDS. Checks never panic, so the stock run reports
//! its deviation instead of aborting.

#[path = "../common/mod.rs"]
mod common;

mod deletion;
mod dns;
mod encryption;
mod identifiers;
mod networking;
mod quotas;
mod restore;
mod settings;
mod transitions;

use aurora_dr_emulator::{Emulator, EmulatorConfig};
use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};

pub use common::{
    ENGINE, MAX_POLLS, SOURCE, SOURCE_REGION, TARGET, TARGET_REGION, cluster_in, context, customer_key,
    emulator_with, instance_in, new_cluster, new_instance, new_snapshot, ok, rds, snapshot_in,
};

pub type Check = Result<(), String>;

/// Defines a test that runs `$check` on our emulator (must hold) and on
/// stock moto (must not hold), both started afresh.
macro_rules! rds_behaviour {
    ($(#[$doc:meta])* $name:ident => $check:path) => {
        $(#[$doc])*
        #[tokio::test]
        async fn $name() {
            $crate::holds_only_with_the_layer(stringify!($name), |e| Box::pin($check(e))).await;
        }
    };
}
pub(crate) use rds_behaviour;

type BoxedCheck<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Check> + 'a>>;

pub async fn holds_only_with_the_layer(name: &str, check: impl for<'a> Fn(&'a Emulator) -> BoxedCheck<'a>) {
    let (ours, stock) =
        tokio::join!(emulator_with(EmulatorConfig::default()), emulator_with(EmulatorConfig::stock()));
    if let Err(deviation) = check(&ours).await {
        panic!(
            "{name}: does not hold on the emulator: {deviation}\nemulator output:\n{}",
            ours.output_tail()
        );
    }
    match check(&stock).await {
        Ok(()) => panic!("{name}: holds on stock moto too, so the check proves nothing about the layer"),
        Err(deviation) => eprintln!("{name}: stock moto deviates as expected: {deviation}"),
    }
}

/// `Err(message)` unless `condition`.
macro_rules! ensure {
    ($condition:expr, $($message:tt)+) => {
        if !$condition {
            return Err(format!($($message)+));
        }
    };
}
pub(crate) use ensure;

/// The error code and HTTP status of a failed call, or `None` if it succeeded.
pub fn fault<T, E: ProvideErrorMetadata>(result: &Result<T, SdkError<E>>) -> Option<(String, u16)> {
    match result {
        Ok(_) => None,
        Err(error) => {
            let status = error.raw_response().map_or(0, |r| r.status().as_u16());
            Some((error.code().unwrap_or("<no code>").to_owned(), status))
        }
    }
}

/// `Ok` if the call failed with exactly this code and status.
pub fn refused<T, E: ProvideErrorMetadata>(
    what: &str,
    result: Result<T, SdkError<E>>,
    code: &str,
    status: u16,
) -> Check {
    match fault(&result) {
        Some((c, s)) if c == code && s == status => Ok(()),
        Some((c, s)) => Err(format!("{what}: expected {code} (HTTP {status}), got {c} (HTTP {s})")),
        None => Err(format!("{what}: expected {code} (HTTP {status}), but it succeeded")),
    }
}
