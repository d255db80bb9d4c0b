//! InvokeStepFunction (target account, target region): the SNS-triggered
//! Lambda that starts the target state machine for a shared snapshot.
//!
//! Input: an SNS event (`aws_lambda_events` [`SnsEvent`]). Output:
//! [`InvokeOutcome`], `{"started": [execution ARNs], "duplicates": [execution
//! ARNs], "skipped": [execution names]}`.
//!
//! Every record is checked before anything starts; if any is invalid the whole
//! event is rejected (`AccessDenied` if any record failed an origin check, else
//! `InvalidInput`), naming each bad record, and nothing is started. A record
//! is accepted only if
//! - its `TopicArn` belongs to `SOURCE_ACCOUNT_ID` and equals `SOURCE_TOPIC_ARN`
//!   (`AccessDenied`, naming the topic);
//! - its message passes [`DrMessage::parse`] (size, JSON, version, fields, ARN
//!   consistency; `InvalidInput`);
//! - the message's `sourceAccountId` is `SOURCE_ACCOUNT_ID` and its
//!   `targetAccountId` is this account (`AccessDenied`), and its
//!   `targetRegion` is this region (`InvalidInput`);
//! - neither its `createdAt` nor its `snapshotCreatedAt` lies more than
//!   [`CLOCK_SKEW`] in the future (`InvalidInput`): the recovery point names
//!   the execution and orders the restores, so a future-dated message would
//!   make every later snapshot look older and be skipped. The first target
//!   step checks the snapshot's real `SnapshotCreateTime` from RDS
//!   (`fetch_status`, `sharedSnapshot`).
//!
//! `SOURCE_TOPIC_ARN` and `STATE_MACHINE_ARN` are required here (`InvalidConfig`).
//!
//! # Execution names and ordering
//! The execution name is `{stamp}_{targetSnapshotId}` ([`execution_name`]),
//! where `stamp` is the recovery point as `yyyymmddHHMMss` (UTC):
//! `snapshotCreatedAt`, or `createdAt` when the message has none. Snapshot ids
//! never contain `_`, so the stamp is always the 14 digits before the first
//! `_`. Names longer than 80 characters keep a prefix of the snapshot id and
//! end in a 16-hex-digit FNV-1a hash of the whole id. The same snapshot thus
//! always yields the same name: a redelivered message finds its execution (in
//! the listing, or as `ExecutionAlreadyExists`) and is reported as a duplicate.
//!
//! Out-of-order protection: the first page of `ListExecutions` (newest
//! first, up to 100) is read; executions whose names carry a stamp (any
//! status: a newer run may already have swapped) set the newest recovery
//! point known *of their series* ([`series_of_execution`]: the snapshot id
//! without its stamp, `{prefix}-{cluster}`, so each source cluster is ordered
//! on its own and many clusters' snapshots of one run never skip each
//! other). A message whose stamp is older than its series' newest is skipped
//! (logged, nothing started): an older snapshot never replaces a newer
//! restore. Stamps are compared as strings, which orders fixed-width digit
//! stamps by time. Within one event, records are handled newest first, so
//! older ones are skipped too.
//!
//! Many clusters: a message whose `sourceClusterId` has no cluster pair here
//! ([`TargetSettings::pair_for`]) is rejected (`InvalidInput`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use aws_lambda_events::event::sns::{SnsEvent, SnsRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::context::StepContext;
use crate::error::{DrError, DrResult};
use crate::ids::{Arn, RunId, SnapshotId};
use crate::payload::DrMessage;
use crate::settings::{TargetSettings, keys};

/// What one invocation did with the event's records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvokeOutcome {
    /// ARNs of the executions this call started.
    pub started: Vec<String>,
    /// ARNs of executions that already existed for a record's snapshot.
    pub duplicates: Vec<String>,
    /// Names of executions not started because a newer snapshot is already restoring or restored.
    pub skipped: Vec<String>,
}

/// How far in the future a message's times may lie: clocks of two accounts'
/// Lambda hosts differ by seconds, never by minutes.
pub const CLOCK_SKEW: time::Duration = time::Duration::minutes(5);

/// Length of a stamp: `yyyymmddHHMMss`.
const STAMP_LEN: usize = 14;
/// Longest Step Functions execution name.
const MAX_NAME: usize = 80;

/// 64-bit FNV-1a: a small, stable hash for shortening names (not for security).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

pub use crate::payload::stamp;

/// The recovery point of a message: when RDS took the snapshot, else when the run started.
pub fn message_stamp(msg: &DrMessage) -> String {
    stamp(msg.snapshot_created_at.unwrap_or(msg.created_at))
}

/// `{stamp}_{snapshot}`, shortened with a hash of the snapshot id to fit 80.
pub fn execution_name(stamp: &str, snapshot: &SnapshotId) -> DrResult<RunId> {
    let full = format!("{stamp}_{snapshot}");
    let name = if full.len() <= MAX_NAME {
        full
    } else {
        let hash = format!("{:016x}", fnv1a64(snapshot.as_str().as_bytes()));
        let keep = MAX_NAME - stamp.len() - 2 - hash.len();
        let stem: String = snapshot.as_str().chars().take(keep).collect();
        format!("{stamp}_{}-{hash}", stem.trim_end_matches('-'))
    };
    name.parse().map_err(|e| DrError::invalid_input(format!("execution name for snapshot {snapshot}: {e}")))
}

/// The stamp an execution name carries, if it was made by [`execution_name`].
pub fn stamp_of_execution(name: &str) -> Option<&str> {
    let stamp = name.get(..STAMP_LEN)?;
    let ok = stamp.bytes().all(|b| b.is_ascii_digit()) && name.as_bytes().get(STAMP_LEN) == Some(&b'_');
    ok.then_some(stamp)
}

/// The series of an execution name made by [`execution_name`]: its snapshot
/// id without the trailing `-yyyymmddHHMMss` (aurora-dr's snapshot names are
/// `{prefix}-{cluster}-{stamp}`, so a series is one source cluster). For a
/// hashed (shortened) name, the kept stem of the snapshot id: a name is only
/// hashed when `{prefix}-{cluster}` is longer than the stem, so the stem lies
/// within it (two clusters sharing those first characters are ordered
/// together: conservative, never a wrong restore).
pub fn series_of_execution(name: &str) -> Option<&str> {
    stamp_of_execution(name)?;
    let snapshot = name.get(STAMP_LEN + 1..)?;
    let (head, tail) = snapshot.rsplit_once('-').unwrap_or((snapshot, ""));
    let hashed = name.len() == MAX_NAME && tail.len() == 16 && tail.bytes().all(|b| b.is_ascii_hexdigit());
    let stamped = tail.len() == STAMP_LEN && tail.bytes().all(|b| b.is_ascii_digit());
    Some(if hashed || stamped { head } else { snapshot })
}

/// The ARN of execution `name` of `machine`.
fn execution_arn(machine: &Arn, name: &str) -> String {
    format!("{}:{name}", machine.as_str().replacen(":stateMachine:", ":execution:", 1))
}

/// A record that passed every check.
struct Accepted {
    msg: DrMessage,
    name: RunId,
    stamp: String,
}

/// Checks every record, then starts one execution per new, not-outdated snapshot.
pub async fn run(
    sfn: &aws_sdk_sfn::Client,
    settings: &TargetSettings,
    event: SnsEvent,
) -> DrResult<InvokeOutcome> {
    let topic = settings.source_topic_arn.as_ref().ok_or_else(|| DrError::InvalidConfig {
        name: keys::SOURCE_TOPIC_ARN.env.into(),
        problem: "is required for InvokeStepFunction (the only topic whose messages are accepted)".into(),
    })?;
    let machine = settings.state_machine_arn.as_ref().ok_or_else(|| DrError::InvalidConfig {
        name: keys::STATE_MACHINE_ARN.env.into(),
        problem: "is required for InvokeStepFunction (the machine it starts)".into(),
    })?;
    if machine.region().as_ref() != Some(&settings.region) {
        return Err(DrError::InvalidConfig {
            name: keys::STATE_MACHINE_ARN.env.into(),
            problem: format!("{machine} is not in this side's region {}", settings.region),
        });
    }
    if event.records.is_empty() {
        return Err(DrError::invalid_input("SNS event has no records"));
    }

    let total = event.records.len();
    let mut accepted = Vec::new();
    let mut problems = Vec::new();
    let now = OffsetDateTime::now_utc();
    for (i, record) in event.records.iter().enumerate() {
        match check_record(record, topic, settings, now) {
            Ok(msg) => {
                let stamp = message_stamp(&msg);
                let name = execution_name(&stamp, &msg.target_snapshot_id)?;
                accepted.push(Accepted { msg, name, stamp });
            }
            Err(e) => problems.push((i + 1, e)),
        }
    }
    if !problems.is_empty() {
        return Err(reject(&problems, total));
    }
    accepted.sort_by(|a, b| b.stamp.cmp(&a.stamp));

    let listed = sfn
        .list_executions()
        .state_machine_arn(machine.as_str())
        .max_results(100)
        .send()
        .await
        .map_err(|e| DrError::from_sdk(&format!("ListExecutions {machine}"), e))?;
    // The newest recovery point of each series (source cluster).
    let mut newest: HashMap<String, String> = HashMap::new();
    for x in listed.executions() {
        if let (Some(series), Some(stamp)) = (series_of_execution(x.name()), stamp_of_execution(x.name())) {
            let known = newest.entry(series.to_owned()).or_default();
            if stamp > known.as_str() {
                *known = stamp.to_owned();
            }
        }
    }

    let mut outcome = InvokeOutcome::default();
    let mut seen = HashSet::new();
    for Accepted { msg, name, stamp } in accepted {
        let snapshot = msg.target_snapshot_id.clone();
        if !seen.insert(name.clone()) {
            outcome.duplicates.push(execution_arn(machine, name.as_str()));
            continue;
        }
        if let Some(existing) = listed.executions().iter().find(|x| x.name() == name.as_str()) {
            tracing::info!(
                step = "invoke_step_function",
                run_id = %msg.run_id,
                snapshot = %snapshot,
                execution = %existing.execution_arn(),
                "execution for this snapshot already exists (redelivered message); nothing started"
            );
            outcome.duplicates.push(existing.execution_arn().to_owned());
            continue;
        }
        let series = series_of_execution(name.as_str()).unwrap_or(name.as_str()).to_owned();
        if let Some(n) = newest.get(&series).map(String::as_str)
            && stamp.as_str() < n
        {
            tracing::warn!(
                step = "invoke_step_function",
                run_id = %msg.run_id,
                snapshot = %snapshot,
                snapshot_stamp = %stamp,
                newest_stamp = %n,
                "snapshot is older than one already restoring or restored; skipped"
            );
            outcome.skipped.push(name.to_string());
            continue;
        }
        let run_id = msg.run_id.clone();
        let input = serde_json::to_string(&msg.into_run().to_value())?;
        let started = sfn
            .start_execution()
            .state_machine_arn(machine.as_str())
            .name(name.as_str())
            .input(input)
            .send()
            .await;
        match started {
            Ok(out) => {
                tracing::info!(
                    step = "invoke_step_function",
                    run_id = %run_id,
                    snapshot = %snapshot,
                    execution = %out.execution_arn(),
                    "target state machine started"
                );
                outcome.started.push(out.execution_arn().to_owned());
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_execution_already_exists()) => {
                let arn = execution_arn(machine, name.as_str());
                tracing::info!(
                    step = "invoke_step_function",
                    run_id = %run_id,
                    snapshot = %snapshot,
                    execution = %arn,
                    "ExecutionAlreadyExists: message was redelivered; nothing started"
                );
                outcome.duplicates.push(arn);
            }
            Err(e) => return Err(DrError::from_sdk(&format!("StartExecution {name}"), e)),
        }
        let known = newest.entry(series).or_default();
        if stamp > *known {
            *known = stamp;
        }
    }
    Ok(outcome)
}

/// One record's origin and message checks.
fn check_record(
    record: &SnsRecord,
    topic: &Arn,
    settings: &TargetSettings,
    now: OffsetDateTime,
) -> DrResult<DrMessage> {
    let got = record.sns.topic_arn.as_str();
    let got_arn: Arn = got.parse().map_err(|e| {
        DrError::AccessDenied(format!("message from topic {got:?}, which is not an ARN: {e}"))
    })?;
    if got_arn.account().as_ref() != Some(&settings.source_account_id) {
        return Err(DrError::AccessDenied(format!(
            "message from topic {got}, which is not in the source account {}",
            settings.source_account_id
        )));
    }
    if got != topic.as_str() {
        return Err(DrError::AccessDenied(format!(
            "message from topic {got}, which is not the configured source topic {topic}"
        )));
    }
    let msg = DrMessage::parse(&record.sns.message)?;
    if msg.source_account_id != settings.source_account_id {
        return Err(DrError::AccessDenied(format!(
            "message from topic {got} declares source account {}, not {}",
            msg.source_account_id, settings.source_account_id
        )));
    }
    if msg.target_account_id != settings.account_id {
        return Err(DrError::AccessDenied(format!(
            "message from topic {got} is for account {}, not this account {}",
            msg.target_account_id, settings.account_id
        )));
    }
    if msg.target_region != settings.region {
        return Err(DrError::invalid_input(format!(
            "message from topic {got} is for region {}, not this region {}",
            msg.target_region, settings.region
        )));
    }
    for (field, at) in [("createdAt", Some(msg.created_at)), ("snapshotCreatedAt", msg.snapshot_created_at)] {
        if let Some(at) = at
            && at > now + CLOCK_SKEW
        {
            return Err(DrError::invalid_input(format!(
                "message from topic {got} dates {field} {at} in the future (now {now}); a recovery point \
                 must be in the past"
            )));
        }
    }
    // Many clusters: only a source cluster with a pair here is restored.
    settings.pair_for(Some(msg.source_cluster_id.as_str()))?;
    Ok(msg)
}

/// One error for the whole event, naming every bad record.
fn reject(problems: &[(usize, DrError)], total: usize) -> DrError {
    let each: Vec<String> = problems.iter().map(|(i, e)| format!("record {i}: {e}")).collect();
    let text = format!(
        "SNS event rejected, nothing started ({} of {total} records invalid): {}",
        problems.len(),
        each.join("; ")
    );
    if problems.iter().any(|(_, e)| matches!(e, DrError::AccessDenied(_))) {
        DrError::AccessDenied(text)
    } else {
        DrError::InvalidInput(text)
    }
}

/// Lambda entry: SNS event in, [`InvokeOutcome`] out.
pub async fn handle(ctx: Arc<StepContext>, input: Value) -> DrResult<Value> {
    let settings = ctx.target()?;
    let event: SnsEvent = serde_json::from_value(input)
        .map_err(|e| DrError::invalid_input(format!("input is not an SNS event: {e}")))?;
    let sfn = ctx.aws.in_region(&settings.region).sfn();
    let outcome = run(&sfn, settings, event).await?;
    Ok(serde_json::to_value(outcome)?)
}

#[cfg(test)]
mod tests {
    use aws_sdk_sfn::Client as Sfn;
    use aws_sdk_sfn::operation::list_executions::ListExecutionsOutput;
    use aws_sdk_sfn::operation::start_execution::StartExecutionOutput;
    use aws_sdk_sfn::types::{ExecutionListItem, ExecutionStatus};
    use aws_smithy_mocks::{Rule, mock};
    use serde_json::json;

    use super::*;
    use crate::payload::RunState;
    use crate::payload::tests::finished_source_run;
    use crate::steps::target_support::{Fault, Journal, settings, sfn, sfn_fault};

    const TOPIC: &str = "arn:aws:sns:us-west-2:111111111111:aurora-dr-snapshots";
    const MACHINE: &str = "arn:aws:states:us-west-1:222222222222:stateMachine:aurora-dr-target";
    /// The execution name of `finished_source_run`'s snapshot (taken 16:00:06).
    const NAME: &str = "20261125160006_aurora-dr-orders-20261125160005";

    fn message() -> Value {
        serde_json::to_value(DrMessage::from_run(&finished_source_run()).expect("msg")).expect("json")
    }

    /// The message of a run on another day (a newer or older snapshot).
    fn message_of_day(day: u8) -> Value {
        let mut m = message();
        let id = format!("aurora-dr-orders-202611{day:02}160005");
        m["targetSnapshotId"] = id.clone().into();
        m["targetSnapshotArn"] = format!("arn:aws:rds:us-west-1:111111111111:cluster-snapshot:{id}").into();
        m["snapshotCreatedAt"] = format!("2026-11-{day:02}T16:00:06Z").into();
        m
    }

    fn record(topic: &str, message: &str) -> Value {
        json!({
            "EventSource": "aws:sns",
            "EventVersion": "1.0",
            "EventSubscriptionArn": format!("{topic}:0b1c"),
            "Sns": {
                "Type": "Notification",
                "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
                "TopicArn": topic,
                "Subject": null,
                "Message": message,
                "Timestamp": "2026-11-25T16:05:00.000Z",
                "SignatureVersion": "1",
                "Signature": "c2ln",
                "SigningCertUrl": "https://sns.us-west-2.amazonaws.com/cert.pem",
                "UnsubscribeUrl": "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe",
                "MessageAttributes": {}
            }
        })
    }

    fn event(records: &[Value]) -> SnsEvent {
        serde_json::from_value(json!({ "Records": records })).expect("sns event")
    }

    fn listing(names: &[&str]) -> Rule {
        let items: Vec<ExecutionListItem> = names
            .iter()
            .map(|n| {
                ExecutionListItem::builder()
                    .execution_arn(execution_arn(&MACHINE.parse().expect("arn"), n))
                    .state_machine_arn(MACHINE)
                    .name(*n)
                    .status(ExecutionStatus::Succeeded)
                    .start_date(aws_smithy_types::DateTime::from_secs(1_795_622_700))
                    .build()
                    .expect("item")
            })
            .collect();
        mock!(Sfn::list_executions).match_requests(|r| r.state_machine_arn() == Some(MACHINE)).then_output(
            move || ListExecutionsOutput::builder().set_executions(Some(items.clone())).build().expect("out"),
        )
    }

    /// StartExecution, journaling "start {name}" and checking the input is the run.
    fn start(j: &Journal) -> Rule {
        let j = j.clone();
        mock!(Sfn::start_execution)
            .match_requests(move |r| {
                let input_ok = r
                    .input()
                    .and_then(|i| serde_json::from_str::<Value>(i).ok())
                    .is_some_and(|v| RunState::from_value(v).is_ok());
                let ok = r.state_machine_arn() == Some(MACHINE) && input_ok;
                if ok {
                    j.push(format!("start {}", r.name().unwrap_or("?")));
                }
                ok
            })
            .then_compute_output(|r| {
                StartExecutionOutput::builder()
                    .execution_arn(execution_arn(&MACHINE.parse().expect("arn"), r.name().unwrap_or("?")))
                    .start_date(aws_smithy_types::DateTime::from_secs(1_795_622_800))
                    .build()
                    .expect("out")
            })
    }

    fn start_fails(j: &Journal, fault: Fault) -> Rule {
        let j = j.clone();
        mock!(Sfn::start_execution)
            .match_requests(move |r| {
                j.push(format!("start {}", r.name().unwrap_or("?")));
                true
            })
            .then_http_response(fault)
    }

    #[tokio::test]
    async fn starts_one_execution_named_after_the_snapshot() {
        let j = Journal::default();
        let (list, start) = (listing(&[]), start(&j));
        let ev = event(&[record(TOPIC, &message().to_string())]);
        let out = super::run(&sfn(&[&list, &start]), &settings(), ev).await.expect("started");
        assert_eq!(j.entries(), [format!("start {NAME}")]);
        assert_eq!(
            out.started,
            [format!("arn:aws:states:us-west-1:222222222222:execution:aurora-dr-target:{NAME}")]
        );
        assert!(out.duplicates.is_empty() && out.skipped.is_empty());
    }

    #[tokio::test]
    async fn the_execution_input_is_the_message_as_a_run() {
        let captured = Arc::new(std::sync::Mutex::new(None::<String>));
        let c = Arc::clone(&captured);
        let start = mock!(Sfn::start_execution)
            .match_requests(move |r| {
                *c.lock().expect("lock") = r.input().map(str::to_owned);
                true
            })
            .then_output(|| {
                StartExecutionOutput::builder()
                    .execution_arn("arn:aws:states:us-west-1:222222222222:execution:aurora-dr-target:x")
                    .start_date(aws_smithy_types::DateTime::from_secs(0))
                    .build()
                    .expect("out")
            });
        let list = listing(&[]);
        let ev = event(&[record(TOPIC, &message().to_string())]);
        super::run(&sfn(&[&list, &start]), &settings(), ev).await.expect("started");
        let input = captured.lock().expect("lock").clone().expect("input");
        let run = RunState::from_value(serde_json::from_str(&input).expect("json")).expect("run");
        let want = DrMessage::from_run(&finished_source_run()).expect("msg").into_run();
        assert_eq!(run, want);
    }

    #[tokio::test]
    async fn execution_already_exists_is_a_duplicate_not_an_error() {
        let j = Journal::default();
        let list = listing(&[]);
        let start = start_fails(&j, || sfn_fault(400, "ExecutionAlreadyExists"));
        let ev = event(&[record(TOPIC, &message().to_string())]);
        let out = super::run(&sfn(&[&list, &start]), &settings(), ev).await.expect("duplicate");
        assert_eq!(j.entries(), [format!("start {NAME}")]);
        assert!(out.started.is_empty());
        assert_eq!(
            out.duplicates,
            [format!("arn:aws:states:us-west-1:222222222222:execution:aurora-dr-target:{NAME}")]
        );
    }

    #[tokio::test]
    async fn a_listed_execution_of_the_same_snapshot_is_a_duplicate_without_a_start() {
        let j = Journal::default();
        let (list, start) = (listing(&[NAME]), start(&j));
        let ev = event(&[record(TOPIC, &message().to_string()), record(TOPIC, &message().to_string())]);
        let out = super::run(&sfn(&[&list, &start]), &settings(), ev).await.expect("duplicate");
        assert!(j.entries().is_empty());
        assert_eq!(out.duplicates.len(), 2);
    }

    #[tokio::test]
    async fn a_message_older_than_the_newest_execution_is_skipped() {
        let j = Journal::default();
        let newer = "20261126160006_aurora-dr-orders-20261126160005";
        let (list, start) = (listing(&[newer, "manual-run-without-stamp"]), start(&j));
        let ev = event(&[record(TOPIC, &message().to_string())]);
        let out = super::run(&sfn(&[&list, &start]), &settings(), ev).await.expect("skipped");
        assert!(j.entries().is_empty(), "an older snapshot never replaces a newer restore");
        assert_eq!(out.skipped, [NAME]);
        assert!(out.started.is_empty());
    }

    #[tokio::test]
    async fn a_message_newer_than_every_execution_starts() {
        let j = Journal::default();
        let older = "20261124160006_aurora-dr-orders-20261124160005";
        let (list, start) = (listing(&[older]), start(&j));
        let ev = event(&[record(TOPIC, &message().to_string())]);
        let out = super::run(&sfn(&[&list, &start]), &settings(), ev).await.expect("started");
        assert_eq!(j.entries(), [format!("start {NAME}")]);
        assert_eq!(out.started.len(), 1);
    }

    #[tokio::test]
    async fn within_one_event_the_newest_snapshot_wins() {
        let j = Journal::default();
        let (list, start) = (listing(&[]), start(&j));
        let ev = event(&[
            record(TOPIC, &message_of_day(24).to_string()),
            record(TOPIC, &message_of_day(26).to_string()),
        ]);
        let out = super::run(&sfn(&[&list, &start]), &settings(), ev).await.expect("started");
        assert_eq!(j.entries(), ["start 20261126160006_aurora-dr-orders-20261126160005"]);
        assert_eq!(out.skipped, ["20261124160006_aurora-dr-orders-20261124160005"]);
    }

    /// `message()` for another source cluster (same run, snapshot a second later).
    fn message_of_cluster(cluster: &str) -> Value {
        let mut m = message();
        let id = format!("aurora-dr-{cluster}-20261125160005");
        m["sourceClusterId"] = cluster.into();
        m["sourceSnapshotId"] = id.clone().into();
        m["targetSnapshotId"] = id.clone().into();
        m["targetSnapshotArn"] = format!("arn:aws:rds:us-west-1:111111111111:cluster-snapshot:{id}").into();
        m["snapshotCreatedAt"] = "2026-11-25T16:00:07Z".into();
        m
    }

    #[tokio::test]
    async fn each_source_cluster_is_ordered_on_its_own() {
        // Many clusters in one run: billing's snapshot (a second newer) is
        // already restoring; orders' older one must still start.
        let j = Journal::default();
        let billing = "20261125160007_aurora-dr-billing-20261125160005";
        let (list, start) = (listing(&[billing]), start(&j));
        let ev = event(&[record(TOPIC, &message().to_string())]);
        let out = super::run(&sfn(&[&list, &start]), &settings(), ev).await.expect("started");
        assert_eq!(j.entries(), [format!("start {NAME}")]);
        assert!(out.skipped.is_empty());
        // Within one event too: both clusters start, newest first.
        let j = Journal::default();
        let (list, start) = (listing(&[]), self::start(&j));
        let ev = event(&[
            record(TOPIC, &message().to_string()),
            record(TOPIC, &message_of_cluster("billing").to_string()),
        ]);
        let out = super::run(&sfn(&[&list, &start]), &settings(), ev).await.expect("started");
        assert_eq!(j.entries(), [format!("start {billing}"), format!("start {NAME}")]);
        assert!(out.skipped.is_empty());
    }

    #[test]
    fn series_are_the_snapshot_id_without_its_stamp() {
        assert_eq!(series_of_execution(NAME), Some("aurora-dr-orders"));
        assert_eq!(
            series_of_execution("20261125160007_aurora-dr-orders-eu-20261125160005"),
            Some("aurora-dr-orders-eu")
        );
        assert_eq!(series_of_execution("manual-run"), None);
        assert_eq!(series_of_execution("20261125160007_hand-made"), Some("hand-made"));
        // Hashed names keep a stem of the cluster's series, the same for every run.
        let cluster = format!("c{}", "x".repeat(60));
        let name = |day: u8| {
            let id: SnapshotId = format!("aurora-dr-{cluster}-202611{day:02}160005").parse().expect("id");
            execution_name(&format!("202611{day:02}160006"), &id).expect("name").to_string()
        };
        let (a, b) = (name(24), name(25));
        assert_eq!(a.len(), 80);
        assert_ne!(a, b);
        assert_eq!(series_of_execution(&a), series_of_execution(&b));
        assert!(format!("aurora-dr-{cluster}").starts_with(series_of_execution(&a).expect("series")));
    }

    #[tokio::test]
    async fn a_source_cluster_without_a_pair_is_rejected() {
        let j = Journal::default();
        let (list, start) = (listing(&[]), start(&j));
        let mut fleet = settings();
        fleet.pairs[0].source_cluster_id = Some("billing".parse().expect("id"));
        let ev = event(&[record(TOPIC, &message().to_string())]);
        let err = super::run(&sfn(&[&list, &start]), &fleet, ev).await.expect_err("no pair");
        assert_eq!(err.asl_name(), "InvalidInput");
        assert!(err.to_string().contains("no cluster pair restores source cluster orders"), "{err}");
        assert_eq!(start.num_calls(), 0);
        assert!(j.entries().is_empty());
    }

    /// The event is rejected with `want`, mentioning `text`, and nothing is listed or started.
    async fn assert_rejected(records: &[Value], want: &str, text: &str) {
        let j = Journal::default();
        let (list, start) = (listing(&[]), start(&j));
        let err = super::run(&sfn(&[&list, &start]), &settings(), event(records)).await.expect_err(want);
        assert_eq!(err.asl_name(), want, "{err}");
        assert!(err.to_string().contains(text), "want {text:?} in {err}");
        assert_eq!(list.num_calls(), 0);
        assert_eq!(start.num_calls(), 0);
        assert!(j.entries().is_empty());
    }

    #[tokio::test]
    async fn a_message_from_another_topic_is_access_denied() {
        let other = "arn:aws:sns:us-west-2:111111111111:someone-elses-topic";
        assert_rejected(&[record(other, &message().to_string())], "AccessDenied", other).await;
    }

    #[tokio::test]
    async fn a_topic_in_another_account_is_access_denied() {
        let other = "arn:aws:sns:us-west-2:333333333333:aurora-dr-snapshots";
        assert_rejected(&[record(other, &message().to_string())], "AccessDenied", other).await;
        assert_rejected(&[record("not-an-arn", &message().to_string())], "AccessDenied", "not-an-arn").await;
    }

    #[tokio::test]
    async fn a_bad_message_starts_nothing() {
        let mut v2 = message();
        v2["version"] = 2.into();
        let mut unknown = message();
        unknown["restoreNow"] = true.into();
        for (text, want) in [
            ("{not json".to_owned(), "not JSON"),
            (v2.to_string(), "version 2"),
            (unknown.to_string(), "restoreNow"),
            ("x".repeat(crate::payload::MAX_MESSAGE_BYTES + 1), "bytes"),
        ] {
            assert_rejected(&[record(TOPIC, &text)], "InvalidInput", want).await;
        }
    }

    #[tokio::test]
    async fn a_message_for_other_accounts_or_regions_is_refused() {
        let mut other_source = message();
        other_source["sourceAccountId"] = "333333333333".into();
        other_source["targetSnapshotArn"] =
            "arn:aws:rds:us-west-1:333333333333:cluster-snapshot:aurora-dr-orders-20261125160005".into();
        assert_rejected(
            &[record(TOPIC, &other_source.to_string())],
            "AccessDenied",
            "source account 333333333333",
        )
        .await;

        let mut other_target = message();
        other_target["targetAccountId"] = "444444444444".into();
        assert_rejected(&[record(TOPIC, &other_target.to_string())], "AccessDenied", "account 444444444444")
            .await;

        let mut other_region = message();
        other_region["targetRegion"] = "eu-west-1".into();
        other_region["targetSnapshotArn"] =
            "arn:aws:rds:eu-west-1:111111111111:cluster-snapshot:aurora-dr-orders-20261125160005".into();
        assert_rejected(&[record(TOPIC, &other_region.to_string())], "InvalidInput", "region eu-west-1")
            .await;
    }

    /// A future-dated recovery point would name an execution that sorts
    /// after every real snapshot, so each later message would be skipped.
    #[tokio::test]
    async fn a_message_dated_in_the_future_is_refused() {
        let fmt = |t: OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).expect("time");
        let tomorrow = OffsetDateTime::now_utc() + time::Duration::days(1);
        let mut future_snapshot = message();
        future_snapshot["snapshotCreatedAt"] = fmt(tomorrow).into();
        assert_rejected(&[record(TOPIC, &future_snapshot.to_string())], "InvalidInput", "snapshotCreatedAt")
            .await;
        let mut future_run = message();
        future_run["createdAt"] = fmt(tomorrow).into();
        future_run["snapshotCreatedAt"] = fmt(tomorrow).into();
        assert_rejected(&[record(TOPIC, &future_run.to_string())], "InvalidInput", "in the future").await;
        // Within the clock skew is accepted.
        let mut skewed = message();
        skewed["snapshotCreatedAt"] = fmt(OffsetDateTime::now_utc() + time::Duration::minutes(1)).into();
        let j = Journal::default();
        let out = super::run(
            &sfn(&[&listing(&[]), &start(&j)]),
            &settings(),
            event(&[record(TOPIC, &skewed.to_string())]),
        )
        .await
        .expect("skew");
        assert_eq!(out.started.len(), 1);
    }

    #[tokio::test]
    async fn one_bad_record_rejects_the_whole_event_after_checking_all() {
        let other = "arn:aws:sns:us-west-2:111111111111:someone-elses-topic";
        let records = [
            record(TOPIC, &message().to_string()),
            record(TOPIC, "{not json"),
            record(other, &message().to_string()),
        ];
        assert_rejected(&records, "AccessDenied", "(2 of 3 records invalid): record 2: invalid input").await;
        assert_rejected(&records, "AccessDenied", "record 3: access denied").await;
        assert_rejected(&[], "InvalidInput", "no records").await;
    }

    #[tokio::test]
    async fn required_settings_are_named() {
        let ev = || event(&[record(TOPIC, &message().to_string())]);
        let mut no_topic = settings();
        no_topic.source_topic_arn = None;
        let err = super::run(&sfn(&[]), &no_topic, ev()).await.expect_err("topic");
        assert_eq!(err.asl_name(), "InvalidConfig");
        assert!(err.to_string().contains("SOURCE_TOPIC_ARN"), "{err}");
        let mut no_machine = settings();
        no_machine.state_machine_arn = None;
        let err = super::run(&sfn(&[]), &no_machine, ev()).await.expect_err("machine");
        assert!(err.to_string().contains("STATE_MACHINE_ARN"), "{err}");
        let mut other_region = settings();
        other_region.state_machine_arn =
            Some("arn:aws:states:eu-west-1:222222222222:stateMachine:aurora-dr-target".parse().expect("arn"));
        let err = super::run(&sfn(&[]), &other_region, ev()).await.expect_err("region");
        assert_eq!(err.asl_name(), "InvalidConfig");
    }

    #[tokio::test]
    async fn throttling_is_throttled() {
        let ev = || event(&[record(TOPIC, &message().to_string())]);
        let j = Journal::default();
        let list = mock!(Sfn::list_executions).then_http_response(|| sfn_fault(400, "ThrottlingException"));
        let start = start(&j);
        let err = super::run(&sfn(&[&list, &start]), &settings(), ev()).await.expect_err("throttled");
        assert_eq!(err.asl_name(), "Throttled");
        assert!(j.entries().is_empty());

        let list = listing(&[]);
        let start = start_fails(&j, || sfn_fault(400, "ThrottlingException"));
        let err = super::run(&sfn(&[&list, &start]), &settings(), ev()).await.expect_err("throttled");
        assert_eq!(err.asl_name(), "Throttled");
    }

    #[test]
    fn execution_names_are_stable_valid_and_short() {
        let id: SnapshotId = "aurora-dr-orders-20261125160005".parse().expect("id");
        assert_eq!(execution_name("20261125160006", &id).expect("name").as_str(), NAME);
        assert_eq!(stamp_of_execution(NAME), Some("20261125160006"));
        assert_eq!(stamp_of_execution("manual-run"), None);
        assert_eq!(stamp_of_execution("2026112516000_x"), None);

        let long: SnapshotId = format!("a{}", "bc".repeat(120)).parse().expect("long id");
        let name = execution_name("20261125160006", &long).expect("name");
        assert_eq!(name.as_str().len(), 80);
        // A cut that ends in a hyphen drops it: still valid, at most 80.
        let hyphens: SnapshotId = format!("a{}", "b-c".repeat(80)).parse().expect("long id");
        let cut = execution_name("20261125160006", &hyphens).expect("name");
        assert!(cut.as_str().len() <= 80 && !cut.as_str().contains("--"), "{cut}");
        assert_eq!(execution_name("20261125160006", &long).expect("again"), name, "deterministic");
        assert_eq!(stamp_of_execution(name.as_str()), Some("20261125160006"));
        let sibling: SnapshotId = format!("a{}x", "bc".repeat(120)).parse().expect("sibling");
        assert_ne!(
            execution_name("20261125160006", &sibling).expect("name"),
            name,
            "the hash tells them apart"
        );
        // The published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[tokio::test]
    async fn handle_starts_the_machine_in_the_target_region() {
        let recorder = crate::steps::target_support::Recorder::replying([
            (200, r#"{"executions":[]}"#),
            (
                200,
                r#"{"executionArn":"arn:aws:states:us-west-1:222222222222:execution:aurora-dr-target:x","startDate":1795622800}"#,
            ),
        ]);
        let input = json!({ "Records": [record(TOPIC, &message().to_string())] });
        let out = handle(recorder.target_elsewhere(settings()), input).await.expect("handled");
        assert_eq!(
            out,
            json!({"started": ["arn:aws:states:us-west-1:222222222222:execution:aurora-dr-target:x"], "duplicates": [], "skipped": []})
        );
        let sent = recorder.sent();
        assert_eq!(sent.len(), 2);
        assert!(sent.iter().all(|s| s.uri.contains("states.us-west-1")), "{sent:?}");
        assert!(sent[1].body.contains(NAME), "{}", sent[1].body);
    }

    #[tokio::test]
    async fn handle_rejects_a_non_sns_input_without_calling_aws() {
        let recorder = crate::steps::target_support::Recorder::default();
        let err = handle(recorder.target_elsewhere(settings()), json!({"runId": "run-1"}))
            .await
            .expect_err("not sns");
        assert_eq!(err.asl_name(), "InvalidInput");
        assert!(err.to_string().contains("SNS event"), "{err}");
        assert!(recorder.sent().is_empty());
    }
}
