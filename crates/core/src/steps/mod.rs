//! One module per handler, and [`FUNCTIONS`]: the one table from the state
//! machines' Task states to the code that runs for them.
//!
//! Each module exposes:
//! - `run(...)`: the step's logic, taking its clients, settings and typed input;
//! - `handle(ctx, input)`: the untyped entry the Lambda binary and the local
//!   engine call (checks the kind of input, [`input::InputKind`], parses it
//!   into a named `InvalidInput` error, runs, serialises the output).
//!
//! A function serves several Task states only when they run the same
//! handler: FetchStatus serves every wait (and arms the callback waits
//! whose RDS events CompleteWait, no state's function, delivers), NotifyFailure every failure
//! notification, ApplyRetention both sides' retention and the source's
//! MakeRoom states (retention before CreateSnapshot, the input's `mode`
//! says which: [`apply_retention::Request`]), CreateSnapshot the source's
//! two tries, CleanUpSnapshot the source's two clean-ups. Each function has its own Lambda crate and its
//! own IAM role holding only what its states call ([`Function::actions`]).
//!
//! Who reads the table: the Lambda crates (one per entry, `main` calls the
//! entry's handler), the drill and the engine tests (which bind each Task to
//! its handler), the benchmarks, the fault suite, `aurora-dr functions`
//! (the JSON `tools/infra_consistency.py` checks template.yaml against) and
//! README's map. A test fails when a Task state of `statemachines/*.asl.json`
//! has no entry or an entry names a state the machines do not have.

pub mod adoption;
pub mod apply_retention;
pub mod clean_up_snapshot;
pub mod clean_up_temp_cluster;
pub mod complete_wait;
pub mod copy_to_own_account;
pub mod create_snapshot;
pub mod encrypt_copy;
pub mod fetch_status;
pub mod find_snapshot;
pub mod input;
pub mod invoke_step_function;
pub mod make_room;
pub mod names;
pub mod notify;
pub mod notify_failure;
pub mod restore;
pub mod restore_instance;
pub mod roll_back_swap;
pub mod sanity_check;
pub mod share;
pub mod swap;
pub mod terminate;

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::Value;

pub use crate::context::Side;
use crate::context::StepContext;
use crate::error::DrResult;
use crate::payload::{RunMode, RunState};
use crate::settings::TargetSettings;
pub use input::InputKind;

/// A function's entry point, as the Lambda runtime and the local engine call it.
pub type Handler = fn(Arc<StepContext>, Value) -> BoxFuture<'static, DrResult<Value>>;

/// One Lambda function: its crate, the Task states it serves and its role.
#[derive(Debug, Clone, Copy)]
pub struct Function {
    /// The crate and binary (`crates/<name>`), and the function's name in logs.
    pub name: &'static str,
    /// The core module whose `handle` runs (`steps::<module>`).
    pub module: &'static str,
    /// What it does, in one line.
    pub summary: &'static str,
    /// The Task states it serves, with their machine's side.
    pub states: &'static [(Side, &'static str)],
    /// Where it is deployed (the sides of its states; InvokeStepFunction,
    /// which no state invokes, is the target's).
    pub sides: &'static [Side],
    /// The kind of input its states hand it (any other is `InvalidInput`).
    pub input: InputKind,
    /// Its `AWS::Serverless::Function` in template.yaml.
    pub logical_id: &'static str,
    /// The `${...}` of the state machines it fills (none for a function no
    /// Task invokes).
    pub substitution: Option<&'static str>,
    /// Every IAM action its role holds, on either side (template.yaml scopes
    /// each to its resources; `tools/infra_consistency.py` checks they agree).
    pub actions: &'static [&'static str],
    pub handler: Handler,
}

impl Function {
    /// Whether this function is deployed on `side`.
    pub fn on(&self, side: Side) -> bool {
        self.sides.contains(&side)
    }

    /// The states it serves on `side`.
    pub fn states_on(&self, side: Side) -> impl Iterator<Item = &'static str> + '_ {
        self.states.iter().filter(move |(s, _)| *s == side).map(|(_, name)| *name)
    }
}

macro_rules! handler {
    ($module:ident) => {
        |ctx, input| Box::pin($module::handle(ctx, input))
    };
}

const SOURCE: &[Side] = &[Side::Source];
const TARGET: &[Side] = &[Side::Target];
const BOTH: &[Side] = &[Side::Source, Side::Target];

/// Swap and RollBackSwap: renames, and the deletion of an instance beyond
/// repair that RDS will not rename.
const RENAME: &[&str] = &[
    "rds:DeleteDBInstance",
    "rds:DescribeDBClusters",
    "rds:DescribeDBInstances",
    "rds:ModifyDBCluster",
    "rds:ModifyDBInstance",
];

/// Every Lambda function of both sides, source first, in pipeline order.
pub static FUNCTIONS: &[Function] = &[
    Function {
        name: "create-snapshot",
        module: "create_snapshot",
        summary: "manual snapshot of the source cluster, named after the run; refuses to overlap another run",
        states: &[(Side::Source, "CreateSnapshot"), (Side::Source, "CreateSnapshotAgain")],
        sides: SOURCE,
        input: InputKind::Run,
        logical_id: "CreateSnapshotFunction",
        substitution: Some("CreateSnapshotFunctionArn"),
        actions: &[
            "rds:AddTagsToResource",
            "rds:CreateDBClusterSnapshot",
            "rds:DescribeDBClusterSnapshots",
            "rds:DescribeDBClusters",
        ],
        handler: handler!(create_snapshot),
    },
    Function {
        name: "clean-up-snapshot",
        module: "clean_up_snapshot",
        summary: "failure path: deletes this run's unshared copy and its failed source snapshot",
        states: &[(Side::Source, "CleanUpSnapshot"), (Side::Source, "CleanUpCopy")],
        sides: SOURCE,
        input: InputKind::FailurePath,
        logical_id: "CleanUpSnapshotFunction",
        substitution: Some("CleanUpSnapshotFunctionArn"),
        actions: &[
            "rds:DeleteDBClusterSnapshot",
            "rds:DescribeDBClusterSnapshotAttributes",
            "rds:DescribeDBClusterSnapshots",
        ],
        handler: handler!(clean_up_snapshot),
    },
    Function {
        name: "fetch-status",
        module: "fetch_status",
        summary: "one poll of what a wait waits for; ResourceNotReady until it is available",
        states: &[
            (Side::Source, "WaitForSourceSnapshot"),
            (Side::Source, "WaitForTargetSnapshot"),
            (Side::Target, "WaitForSharedSnapshot"),
            (Side::Target, "WaitForOwnCopy"),
            (Side::Target, "WaitForTempCluster"),
            (Side::Target, "WaitForTempInstances"),
            (Side::Target, "WaitForSwappedCluster"),
            (Side::Target, "WaitForNewEndpoint"),
        ],
        sides: BOTH,
        input: InputKind::Run,
        logical_id: "FetchStatusFunction",
        substitution: Some("FetchStatusFunctionArn"),
        actions: &[
            "dynamodb:DeleteItem",
            "dynamodb:PutItem",
            "rds:DescribeDBClusterSnapshots",
            "rds:DescribeDBClusters",
            "rds:DescribeDBInstances",
            "states:SendTaskFailure",
            "states:SendTaskSuccess",
        ],
        handler: handler!(fetch_status),
    },
    Function {
        name: "encrypt-copy",
        module: "encrypt_copy",
        summary: "copies the snapshot into the target region, encrypted with the key the target may use",
        states: &[(Side::Source, "EncryptCopy")],
        sides: SOURCE,
        input: InputKind::Run,
        logical_id: "EncryptCopyFunction",
        substitution: Some("EncryptCopyFunctionArn"),
        actions: &[
            "kms:CreateGrant",
            "kms:DescribeKey",
            "rds:AddTagsToResource",
            "rds:CopyDBClusterSnapshot",
            "rds:DescribeDBClusterSnapshots",
        ],
        handler: handler!(encrypt_copy),
    },
    Function {
        name: "share",
        module: "share",
        summary: "shares the copy with the target account only (never `all`)",
        states: &[(Side::Source, "Share")],
        sides: SOURCE,
        input: InputKind::Run,
        logical_id: "ShareFunction",
        substitution: Some("ShareFunctionArn"),
        actions: &[
            "rds:DescribeDBClusterSnapshotAttributes",
            "rds:DescribeDBClusterSnapshots",
            "rds:ModifyDBClusterSnapshotAttribute",
        ],
        handler: handler!(share),
    },
    Function {
        name: "notify",
        module: "notify",
        summary: "publishes the snapshot message to the topic the target account subscribes to",
        states: &[(Side::Source, "Notify")],
        sides: SOURCE,
        input: InputKind::Run,
        logical_id: "NotifyFunction",
        substitution: Some("NotifyFunctionArn"),
        actions: &["kms:Decrypt", "kms:GenerateDataKey*", "sns:Publish"],
        handler: handler!(notify),
    },
    Function {
        name: "notify-failure",
        module: "notify_failure",
        summary: "publishes the failed state, error and cause to the side's failure topic",
        states: &[
            (Side::Source, "NotifySnapshotFailure"),
            (Side::Source, "NotifyFailure"),
            (Side::Source, "NotifyRetentionFailure"),
            (Side::Target, "NotifyFailure"),
        ],
        sides: BOTH,
        input: InputKind::FailurePath,
        logical_id: "NotifyFailureFunction",
        substitution: Some("NotifyFailureFunctionArn"),
        actions: &["kms:Decrypt", "kms:GenerateDataKey*", "sns:Publish"],
        handler: handler!(notify_failure),
    },
    Function {
        name: "apply-retention",
        module: "apply_retention",
        summary: "deletes the tool's own old snapshots beyond the retention settings; before CreateSnapshot \
                  only where the snapshot quota leaves too little room (mode makeRoom)",
        states: &[
            (Side::Source, "MakeRoom"),
            (Side::Source, "MakeRoomAfterQuotaError"),
            (Side::Source, "ApplyRetention"),
            (Side::Target, "ApplyRetention"),
        ],
        sides: BOTH,
        input: InputKind::Retention,
        logical_id: "ApplyRetentionFunction",
        substitution: Some("ApplyRetentionFunctionArn"),
        actions: &[
            "rds:DeleteDBClusterSnapshot",
            "rds:DescribeAccountAttributes",
            "rds:DescribeDBClusterSnapshots",
        ],
        handler: handler!(apply_retention),
    },
    Function {
        name: "invoke-step-function",
        module: "invoke_step_function",
        summary: "SNS-triggered: checks the snapshot message and starts the target machine (no Task state)",
        states: &[],
        sides: TARGET,
        input: InputKind::Run,
        logical_id: "InvokeStepFunctionFunction",
        substitution: None,
        actions: &["kms:Decrypt", "kms:GenerateDataKey*", "states:ListExecutions", "states:StartExecution"],
        handler: handler!(invoke_step_function),
    },
    Function {
        name: "find-snapshot",
        module: "find_snapshot",
        summary: "restore test: picks the newest snapshot this account may restore and starts the test's payload",
        states: &[(Side::Target, "FindSnapshot")],
        sides: TARGET,
        input: InputKind::Run,
        logical_id: "FindSnapshotFunction",
        substitution: Some("FindSnapshotFunctionArn"),
        actions: &["rds:DescribeDBClusterSnapshots"],
        handler: handler!(find_snapshot),
    },
    Function {
        name: "copy-to-own-account",
        module: "copy_to_own_account",
        summary: "target-owned encryption: copies the shared snapshot into this account under its own key",
        states: &[(Side::Target, "CopyToOwnAccount")],
        sides: TARGET,
        input: InputKind::Run,
        logical_id: "CopyToOwnAccountFunction",
        substitution: Some("CopyToOwnAccountFunctionArn"),
        actions: &[
            "kms:CreateGrant",
            "kms:Decrypt",
            "kms:DescribeKey",
            "rds:AddTagsToResource",
            "rds:CopyDBClusterSnapshot",
            "rds:DescribeDBClusterSnapshots",
        ],
        handler: handler!(copy_to_own_account),
    },
    Function {
        name: "restore",
        module: "restore",
        summary: "restores the temporary cluster from the shared snapshot (or the own copy)",
        states: &[(Side::Target, "Restore")],
        sides: TARGET,
        input: InputKind::Run,
        logical_id: "RestoreFunction",
        substitution: Some("RestoreFunctionArn"),
        actions: &[
            "kms:CreateGrant",
            "kms:Decrypt",
            "kms:DescribeKey",
            "rds:AddTagsToResource",
            "rds:DescribeDBClusterSnapshots",
            "rds:DescribeDBClusters",
            "rds:RestoreDBClusterFromSnapshot",
        ],
        handler: handler!(restore),
    },
    Function {
        name: "restore-instance",
        module: "restore_instance",
        summary: "creates the temporary cluster's instances",
        states: &[(Side::Target, "RestoreInstance")],
        sides: TARGET,
        input: InputKind::Run,
        logical_id: "RestoreInstanceFunction",
        substitution: Some("RestoreInstanceFunctionArn"),
        actions: &[
            "rds:AddTagsToResource",
            "rds:CreateDBInstance",
            "rds:DescribeDBClusters",
            "rds:DescribeDBInstances",
        ],
        handler: handler!(restore_instance),
    },
    Function {
        name: "swap",
        module: "swap",
        summary: "renames the previous cluster away and the restored one in under the existing names",
        states: &[(Side::Target, "Swap")],
        sides: TARGET,
        input: InputKind::Run,
        logical_id: "SwapFunction",
        substitution: Some("SwapFunctionArn"),
        actions: RENAME,
        handler: handler!(swap),
    },
    Function {
        name: "sanity-check",
        module: "sanity_check",
        summary: "probes the swapped-in cluster (connectivity, query, row counts, freshness)",
        states: &[(Side::Target, "SanityCheck")],
        sides: TARGET,
        input: InputKind::Run,
        logical_id: "SanityCheckFunction",
        substitution: Some("SanityCheckFunctionArn"),
        actions: &[
            "ec2:AssignPrivateIpAddresses",
            "ec2:CreateNetworkInterface",
            "ec2:DeleteNetworkInterface",
            "ec2:DescribeNetworkInterfaces",
            "ec2:UnassignPrivateIpAddresses",
            "rds:DescribeDBClusters",
            "secretsmanager:GetSecretValue",
        ],
        handler: handler!(sanity_check),
    },
    Function {
        name: "terminate",
        module: "terminate",
        summary: "deletes the renamed-away previous cluster once the new one serves",
        states: &[(Side::Target, "Terminate")],
        sides: TARGET,
        input: InputKind::Run,
        logical_id: "TerminateFunction",
        substitution: Some("TerminateFunctionArn"),
        actions: &[
            "rds:AddTagsToResource",
            "rds:CreateDBClusterSnapshot",
            "rds:DeleteDBCluster",
            "rds:DeleteDBInstance",
            "rds:DescribeDBClusterSnapshots",
            "rds:DescribeDBClusters",
            "rds:DescribeDBInstances",
            "rds:ModifyDBCluster",
        ],
        handler: handler!(terminate),
    },
    Function {
        name: "roll-back-swap",
        module: "roll_back_swap",
        summary: "failure path: puts the previous cluster back under the existing names",
        states: &[(Side::Target, "RollBackSwap")],
        sides: TARGET,
        input: InputKind::FailurePath,
        logical_id: "RollBackSwapFunction",
        substitution: Some("RollBackSwapFunctionArn"),
        actions: RENAME,
        handler: handler!(roll_back_swap),
    },
    Function {
        name: "clean-up-temp-cluster",
        module: "clean_up_temp_cluster",
        summary: "failure path: deletes this run's temporary cluster (unless configured to keep it); \
                  a passed restore test's test cluster, with the test's RPO and time to restore",
        states: &[(Side::Target, "CleanUpTempCluster"), (Side::Target, "RemoveTestCluster")],
        sides: TARGET,
        input: InputKind::FailurePath,
        logical_id: "CleanUpTempClusterFunction",
        substitution: Some("CleanUpTempClusterFunctionArn"),
        actions: &[
            "rds:DeleteDBCluster",
            "rds:DeleteDBInstance",
            "rds:DescribeDBClusters",
            "rds:DescribeDBInstances",
            "rds:ModifyDBCluster",
        ],
        handler: handler!(clean_up_temp_cluster),
    },
    Function {
        name: "complete-wait",
        module: "complete_wait",
        summary: "EventBridge-triggered: an RDS event ends the callback waits of its cluster or instance \
                  once a Describe confirms it (no Task state)",
        states: &[],
        sides: TARGET,
        input: InputKind::RdsEvent,
        logical_id: "CompleteWaitFunction",
        substitution: None,
        actions: &[
            "dynamodb:DeleteItem",
            "dynamodb:Query",
            "rds:DescribeDBClusters",
            "rds:DescribeDBInstances",
            "states:SendTaskFailure",
            "states:SendTaskSuccess",
        ],
        handler: handler!(complete_wait),
    },
];

/// The function with this crate name.
pub fn function(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

/// The function that serves `state` of `side`'s machine.
pub fn function_for(side: Side, state: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.states.contains(&(side, state)))
}

/// The target settings for a run (with many clusters, the names of its
/// source cluster's pair; in a restore test, the test cluster's names:
/// [`TargetSettings::for_run`]) and an RDS client in the target region.
pub(crate) fn target_rds(
    ctx: &StepContext,
    run: &RunState,
) -> DrResult<(TargetSettings, aws_sdk_rds::Client)> {
    let source = run.source_cluster_id.as_ref().map(|c| c.as_str());
    let settings = ctx.target()?.for_run(source, run.is_restore_test())?;
    let rds = ctx.aws.in_region(&settings.region).rds();
    Ok((settings, rds))
}

/// [`target_rds`] for a state that renames or deletes the serving cluster
/// (Swap, Terminate): a restore test never reaches one, and if a miswired
/// machine sent it there it is refused (`InvalidInput`) before any call.
pub(crate) fn serving_target_rds(
    ctx: &StepContext,
    run: &RunState,
    state: &str,
) -> DrResult<(TargetSettings, aws_sdk_rds::Client)> {
    if run.is_restore_test() {
        return Err(crate::DrError::invalid_input(format!(
            "{state} changes the serving cluster, which a restore test never touches; the payload is a \
             restore test (mode {}): check the state machine's restore-test Choice",
            RunMode::RESTORE_TEST
        )));
    }
    target_rds(ctx, run)
}

/// Whether a (possibly malformed) failure-path payload is a restore test's.
pub(crate) fn is_restore_test_payload(input: &Value) -> bool {
    input.get("mode").and_then(Value::as_str) == Some(RunMode::RESTORE_TEST)
}

/// A target-side failure-path function's start: checks the input is a
/// failure-path payload for `state`, then the target settings for its
/// (loosely read) source cluster and mode, as [`target_rds`].
pub(crate) fn failure_path_target(
    ctx: &StepContext,
    input: &Value,
    state: &str,
) -> DrResult<(TargetSettings, aws_sdk_rds::Client)> {
    input::expect(input, InputKind::FailurePath, state)?;
    let source = input.get("sourceClusterId").and_then(Value::as_str);
    let settings = ctx.target()?.for_run(source, is_restore_test_payload(input))?;
    let rds = ctx.aws.in_region(&settings.region).rds();
    Ok((settings, rds))
}

/// Fixtures shared by the step tests of both sides.
#[cfg(test)]
pub(crate) mod test_support;

/// Fixtures shared by the target-side step tests (on top of [`test_support`]).
#[cfg(test)]
pub(crate) mod target_support;

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn names_follow_one_another() {
        let mut crates = BTreeSet::new();
        for f in FUNCTIONS {
            assert!(crates.insert(f.name), "{} is listed twice", f.name);
            let pascal: String = f.name.split('-').map(|w| w[..1].to_ascii_uppercase() + &w[1..]).collect();
            assert_eq!(f.logical_id, format!("{pascal}Function"), "{}", f.name);
            if let Some(sub) = f.substitution {
                assert_eq!(sub, format!("{}Arn", f.logical_id), "{}", f.name);
            }
            assert_eq!(f.module, f.name.replace('-', "_"), "{}", f.name);
            assert_eq!(
                f.substitution.is_some(),
                !f.states.is_empty(),
                "{}: a substitution iff states",
                f.name
            );
            let state_sides: BTreeSet<Side> = f.states.iter().map(|(s, _)| *s).collect();
            if !f.states.is_empty() {
                assert_eq!(state_sides, f.sides.iter().copied().collect(), "{}: sides", f.name);
            }
            let mut actions = f.actions.to_vec();
            actions.sort_unstable();
            actions.dedup();
            assert_eq!(actions, f.actions, "{}: actions sorted, each once", f.name);
        }
    }

    /// Every handler checks its kind of input first: the other kinds are
    /// `InvalidInput` and nothing is called.
    #[tokio::test]
    async fn every_handler_refuses_input_of_another_kind_before_any_call() {
        use serde_json::json;

        use crate::steps::test_support as ts;
        let run = ts::started_run().to_value();
        let mut failed = run.clone();
        failed["failure"] = json!({"Error": "X", "Cause": ""});
        let retention = json!({"mode": "retention", "run": run});
        let event = json!({"source": "aws.rds", "detail-type": "RDS DB Cluster Event",
            "detail": {"SourceIdentifier": "orders-dr-next", "SourceType": "CLUSTER"}});
        for f in FUNCTIONS {
            for (kind, input) in [
                (InputKind::Run, &run),
                (InputKind::FailurePath, &failed),
                (InputKind::Retention, &retention),
                (InputKind::RdsEvent, &event),
            ] {
                if kind == f.input {
                    continue;
                }
                for side in f.sides {
                    let recorder = ts::Recorder::default();
                    let ctx = match side {
                        Side::Source => ts::source_context(&recorder),
                        Side::Target => ts::target_context(&recorder),
                    };
                    let err = (f.handler)(ctx, input.clone()).await.expect_err(f.name);
                    assert_eq!(err.asl_name(), "InvalidInput", "{} on {side} given {kind:?}: {err}", f.name);
                    assert!(recorder.sent().is_empty(), "{}: {:?}", f.name, recorder.sent());
                }
            }
        }
    }

    /// A restore test never reaches the serving cluster: Swap and Terminate
    /// refuse its payload and RollBackSwap passes it through, all without
    /// a call.
    #[tokio::test]
    async fn a_restore_test_payload_makes_no_call_that_could_touch_the_serving_cluster() {
        use serde_json::json;

        use crate::steps::test_support as ts;
        let mut run = crate::steps::target_support::target_run();
        run.mode = Some(RunMode::RestoreTest);
        for state in ["Swap", "Terminate"] {
            let f = function_for(Side::Target, state).expect("served").handler;
            let recorder = ts::Recorder::default();
            let err = f(ts::target_context(&recorder), run.to_value()).await.expect_err(state);
            assert_eq!(err.asl_name(), "InvalidInput", "{state}: {err}");
            assert!(err.to_string().contains("restore test"), "{state}: {err}");
            assert!(recorder.sent().is_empty(), "{state}: {:?}", recorder.sent());
        }
        let mut failed = run.to_value();
        failed["failure"] = json!({"Error": "SanityCheckFailed", "Cause": "x"});
        failed["failedState"] = "SanityCheck".into();
        let recorder = ts::Recorder::default();
        let roll_back = function_for(Side::Target, "RollBackSwap").expect("served").handler;
        let out = roll_back(ts::target_context(&recorder), failed.clone()).await.expect("no-op");
        assert_eq!(out, failed);
        assert!(recorder.sent().is_empty(), "{:?}", recorder.sent());
    }

    #[test]
    fn each_state_of_a_side_is_served_by_one_function() {
        let mut seen = BTreeSet::new();
        for f in FUNCTIONS {
            for state in f.states {
                assert!(seen.insert(*state), "{state:?} is served twice");
                assert_eq!(function_for(state.0, state.1).map(|g| g.name), Some(f.name));
            }
        }
        assert_eq!(function("swap").map(|f| f.module), Some("swap"));
        assert!(function_for(Side::Source, "Swap").is_none());
    }
}
