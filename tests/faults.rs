//! The fault suite: every fault case end to end, each its own test on its
//! own emulator (faults armed through the emulator's rules), both state
//! machines on the local engine. Each case asserts the final state of both
//! accounts, not just the exit code, and no case may leave a resource behind
//! that it does not expect. A failed case names itself and every problem it
//! found; each case prints its row (outcome, resources left behind).
//!
//! `cargo test -p aurora-dr-tests --test faults -- --nocapture` shows the rows.

use std::sync::Arc;
use std::time::Duration;

use aurora_dr_asl::{Clock, Engine, EventType, StartOptions, Status};
use aurora_dr_cli::chaos::schedule::{SOURCE_CALLS, TARGET_CALLS};
use aurora_dr_cli::drill::{self, DrillReport, setup};
use aurora_dr_core::context::{SideSettings, StepContext};
use aurora_dr_core::steps::invoke_step_function;
use aurora_dr_emulator::{CallRecord, Delay, EmulatorConfig, FaultRule, Latency};
use aurora_dr_tests::{CONFIG, DrillEnv, Inventory, NotificationSink, Resource};
use serde_json::{Value, json};

const SRC: &str = "111111111111";
const TGT: &str = "222222222222";
const SRC_REGION: &str = "us-west-2";
const TGT_REGION: &str = "us-west-1";
/// Every snapshot (and copy) of the example configuration's cluster.
const SNAPSHOTS: &str = "aurora-dr-orders-*";
const EXISTING: &str = "orders-dr";
const EXISTING_INSTANCE: &str = "orders-dr-1";
const TEMP: &str = "orders-dr-next";
/// How long a failure notification may take to arrive after the drill ended.
const DELIVERY: Duration = Duration::from_secs(20);

/// One case's outcome.
struct Row {
    case: &'static str,
    outcome: String,
    left: Vec<String>,
    problems: Vec<String>,
}

/// Problems found by a case (a failed check does not stop the others).
#[derive(Default)]
struct Checks(Vec<String>);

impl Checks {
    fn that(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.0.push(what.into());
        }
    }
}

/// One test per case: each names itself when it fails, and cargo runs them
/// side by side (each on its own emulator).
mod case {
    use super::*;

    macro_rules! cases {
        ($($name:ident => $case:expr;)*) => {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let started = std::time::Instant::now();
                verdict($case.await, started.elapsed());
            }
        )*};
    }

    cases! {
        rds_throttling_every_call => super::rds_throttling_every_call();
        rds_http_500_503 => super::rds_http_5xx();
        sns_sts_http_500_503 => super::sns_and_sts_5xx();
        copy_quota_exceeded => super::copy_quota_exceeded();
        source_snapshot_failed => super::source_snapshot_failed();
        copy_failed => super::copy_failed();
        snapshot_never_available => super::snapshot_never_available();
        kms_key_not_usable_by_target => super::kms_key_not_usable();
        share_not_visible_to_target => super::share_not_visible();
        crash_after_each_mutation => super::crash_after_each_mutation();
        sns_delivered_twice => super::sns_delivered_twice();
        sns_out_of_order => super::sns_out_of_order();
        swap_second_rename_fails => super::swap_second_rename_fails(false);
        swap_second_rename_fails_keep_temp => super::swap_second_rename_fails(true);
        new_cluster_fails_before_terminate => super::new_cluster_fails_before_terminate();
        overlapping_source_runs => super::overlapping_source_runs(false);
        schedule_fires_twice => super::overlapping_source_runs(true);
    }
}

/// Prints the case's row and fails with every problem it found.
fn verdict(row: Row, took: Duration) {
    let left = if row.left.is_empty() { "none".to_owned() } else { row.left.join("; ") };
    println!(
        "fault case {}: {} [{:.1}s]; resources left behind: {left}",
        row.case,
        row.outcome,
        took.as_secs_f64()
    );
    assert!(row.problems.is_empty(), "fault case {} failed:\n{}", row.case, row.problems.join("\n"));
}

// ----------------------------------------------------------------- helpers

/// A case's environment: its emulator (with `faults` armed before the first
/// request) and a sink subscribed to both failure topics.
async fn start(config: &str, faults: Vec<FaultRule>) -> (DrillEnv, NotificationSink) {
    let mut emulator = EmulatorConfig::default();
    for f in faults {
        emulator = emulator.with_fault(f);
    }
    let env = DrillEnv::start_with(config, emulator).await;
    let sink = NotificationSink::start().await;
    sink.subscribe(&env.source().await, setup::FAILURE_TOPIC).await;
    sink.subscribe(&env.target().await, setup::FAILURE_TOPIC).await;
    env.emulator.control().clear_calls().await.expect("clear calls");
    (env, sink)
}

/// A case that must succeed: its environment with `faults` armed, `n` drill
/// runs, and the checks so far (that the drill succeeded).
async fn drill_ok(faults: Vec<FaultRule>, n: usize) -> (DrillEnv, NotificationSink, DrillReport, Checks) {
    let (env, sink) = start(CONFIG, faults).await;
    let report = env.drill(n).await;
    let mut c = Checks::default();
    c.that(report.ok, format!("drill failed: {}", outcome(&report)));
    (env, sink, report, c)
}

/// How many target executions the drill saw started.
fn target_executions(report: &DrillReport) -> usize {
    report.report["targetExecutions"].as_array().map_or(0, Vec::len)
}

/// One run of a drill report.
struct RunView {
    /// The source execution's name (resources carry it, or `{name}-{index}`).
    name: String,
    source: String,
    target: Option<String>,
    target_error: Option<String>,
}

fn runs(report: &DrillReport) -> Vec<RunView> {
    report.report["runs"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|r| RunView {
            name: r["source"]["executionArn"]
                .as_str()
                .unwrap_or_default()
                .rsplit(':')
                .next()
                .unwrap_or_default()
                .to_owned(),
            source: r["source"]["status"].as_str().unwrap_or_default().to_owned(),
            target: r["target"]["status"].as_str().map(str::to_owned),
            target_error: r["target"]["error"].as_str().map(str::to_owned),
        })
        .collect()
}

fn outcome(report: &DrillReport) -> String {
    runs(report)
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut s =
                format!("run {}: source {}, target {}", i + 1, r.source, r.target.as_deref().unwrap_or("-"));
            if let Some(e) = &r.target_error {
                s.push_str(&format!(" ({e})"));
            }
            s
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a run-id tag belongs to source execution `name`.
fn of_run(tag: Option<&str>, name: &str) -> bool {
    tag.is_some_and(|t| t == name || t.strip_prefix(name).is_some_and(|r| r.starts_with('-')))
}

/// Resources beyond the pipeline's normal state: the source cluster and its
/// instances, the cluster under the existing name with its instances, and the
/// available snapshots/copies of runs whose source side succeeded. Each is
/// "expected: reason" when `allowed` names it (substring), else unexpected.
fn leftovers(inv: &Inventory, ok_sources: &[String], allowed: &[(&str, &str)]) -> (Vec<String>, Vec<String>) {
    let normal = |place: &str, r: &Resource| match (place, r.kind) {
        ("source", "cluster") => r.id == "orders",
        ("source", "instance") => r.detail.first().is_some_and(|c| c == "orders"),
        ("target", "cluster") => r.id == EXISTING && r.status == "available",
        ("target", "instance") => r.detail.first().is_some_and(|c| c == EXISTING) && r.status == "available",
        (_, "snapshot") => {
            r.status == "available" && ok_sources.iter().any(|n| of_run(r.run_id.as_deref(), n))
        }
        _ => false,
    };
    let (mut listed, mut unexpected) = (Vec::new(), Vec::new());
    for (place, r) in inv.all() {
        if normal(place, r) {
            continue;
        }
        let text = format!("{place}: {r}");
        match allowed.iter().find(|(needle, _)| text.contains(needle)) {
            Some((_, why)) => listed.push(format!("{text} [expected: {why}]")),
            None => {
                listed.push(format!("{text} [UNEXPECTED]"));
                unexpected.push(text);
            }
        }
    }
    (listed, unexpected)
}

fn ok_sources(report: &DrillReport) -> Vec<String> {
    runs(report).into_iter().filter(|r| r.source == "SUCCEEDED").map(|r| r.name).collect()
}

/// The checks every drill case makes: leftovers, one target execution per
/// snapshot, and no delete of anything under the existing names.
async fn common(
    c: &mut Checks,
    env: &DrillEnv,
    report: &DrillReport,
    allowed: &[(&str, &str)],
) -> (Inventory, Vec<String>, Vec<CallRecord>) {
    let inv = env.settled_inventory().await;
    let (left, unexpected) = leftovers(&inv, &ok_sources(report), allowed);
    c.that(unexpected.is_empty(), format!("unexpected resources left: {unexpected:?}"));
    let mut per_snapshot = std::collections::BTreeMap::<String, usize>::new();
    for x in report.report["targetExecutions"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let name = x["name"].as_str().unwrap_or_default();
        let snapshot = name.split_once('_').map_or(name, |(_, s)| s);
        *per_snapshot.entry(snapshot.to_owned()).or_default() += 1;
    }
    c.that(
        per_snapshot.values().all(|n| *n == 1),
        format!("more than one target execution per snapshot: {per_snapshot:?}"),
    );
    let calls = env.emulator.control().calls().await.expect("calls");
    // The one delete an existing name may see: an instance the case made
    // end `failed` (RDS will not rename it), which Swap or RollBackSwap
    // deletes instead of renaming.
    let faults = env.emulator.control().faults().await.expect("faults");
    let made_to_fail = faults.iter().any(|f| {
        f["kind"] == "instance_status"
            && f["status"] == "failed"
            && f["id_lower"].as_str().is_some_and(|id| id.eq_ignore_ascii_case(EXISTING_INSTANCE))
    });
    let deleted_existing: Vec<&CallRecord> = calls
        .iter()
        .filter(|x| {
            let names = |id: &str| x.params.values().any(|v| v.eq_ignore_ascii_case(id));
            (x.operation == "DeleteDBCluster" && names(EXISTING))
                || (x.operation == "DeleteDBInstance" && names(EXISTING_INSTANCE) && !made_to_fail)
        })
        .collect();
    c.that(
        deleted_existing.is_empty(),
        format!("a delete named the existing cluster/instance: {deleted_existing:?}"),
    );
    (inv, left, calls)
}

/// The failure notifications a side published, parsed.
fn failures(sink: &NotificationSink, account: &str) -> Vec<Value> {
    sink.received()
        .into_iter()
        .filter(|n| n.topic_arn.contains(&format!(":{account}:")))
        .map(|n| n.message)
        .collect()
}

fn count(calls: &[CallRecord], operation: &str, pred: impl Fn(&CallRecord) -> bool) -> usize {
    calls.iter().filter(|x| x.operation == operation && pred(x)).count()
}

fn target_resources(inv: &Inventory) -> Vec<Resource> {
    inv.target.clone()
}

fn row(case: &'static str, outcome: String, left: Vec<String>, c: Checks) -> Row {
    Row { case, outcome, left, problems: c.0 }
}

// ------------------------------------------------------------------- cases

/// RDS throttles every kind of call the pipeline makes, each four times in a
/// row (more than the SDK's own three attempts, so the step fails `Throttled`
/// and the state machine's Retry runs it again), including the rename into the
/// existing name after the previous copy was renamed away. Both runs complete.
async fn rds_throttling_every_call() -> Row {
    let mut faults = vec![
        // The second rename of run 2's swap (run 1's first-run rename passes).
        FaultRule::throttle("rds", "ModifyDBCluster")
            .in_account(TGT)
            .matching("DBClusterIdentifier", TEMP)
            .matching("NewDBClusterIdentifier", EXISTING)
            .skip(1)
            .times(3)
            .into(),
        // The drill's set-up reads the source cluster by identifier once before
        // the run (its wait for the cluster reads it by filter).
        FaultRule::throttle("rds", "DescribeDBClusters")
            .in_account(SRC)
            .matching("DBClusterIdentifier", "orders")
            .skip(1)
            .times(4)
            .into(),
    ];
    // DescribeDBClusters is throttled above, after the set-up's read.
    for op in &SOURCE_CALLS[1..] {
        faults.push(FaultRule::throttle("rds", op).in_account(SRC).times(4).into());
    }
    for op in TARGET_CALLS {
        faults.push(FaultRule::throttle("rds", op).in_account(TGT).times(4).into());
    }
    completes_despite("rds-throttling-every-call", faults, "Throttling", 2).await
}

/// HTTP 500 and 503 from RDS on every kind of call (the emulator answers, so
/// the call has no effect): both runs complete.
async fn rds_http_5xx() -> Row {
    let mut faults: Vec<FaultRule> = vec![
        FaultRule::unavailable("rds", "DescribeDBClusters")
            .in_account(SRC)
            .matching("DBClusterIdentifier", "orders")
            .skip(1)
            .times(4)
            .into(),
    ];
    // Every call but the DescribeDBClusters above, in the chaos schedule's lists.
    for (i, (account, op)) in
        SOURCE_CALLS[1..].iter().map(|o| (SRC, *o)).chain(TARGET_CALLS.iter().map(|o| (TGT, *o))).enumerate()
    {
        let rule = if i % 2 == 0 {
            FaultRule::unavailable("rds", op)
        } else {
            FaultRule::error("rds", op, "InternalFailure").status(500)
        };
        faults.push(rule.in_account(account).times(4).into());
    }
    completes_despite("rds-http-500-503", faults, "", 2).await
}

/// SNS answers 503 and 500 to the Notify publish (more than the SDK retries),
/// STS answers 503 and 500 to AssumeRole (absorbed by the SDK's retries inside
/// the credentials provider): the run completes.
async fn sns_and_sts_5xx() -> Row {
    let faults = vec![
        FaultRule::unavailable("sns", "Publish").in_account(SRC).times(3).into(),
        FaultRule::error("sns", "Publish", "InternalError").status(500).in_account(SRC).times(1).into(),
        FaultRule::unavailable("sts", "AssumeRole").times(1).into(),
        FaultRule::error("sts", "AssumeRole", "InternalFailure").status(500).times(1).into(),
    ];
    completes_despite("sns-sts-http-500-503", faults, "", 1).await
}

/// A run (or `runs` runs) that must complete although `faults` hit it; the
/// faults must actually have been hit.
async fn completes_despite(case: &'static str, faults: Vec<FaultRule>, code: &str, n: usize) -> Row {
    let (env, _sink, report, mut c) = drill_ok(faults, n).await;
    c.that(runs(&report).len() == n, format!("expected {n} runs"));
    let (inv, left, calls) = common(&mut c, &env, &report, &[]).await;
    let injected = calls
        .iter()
        .filter(|x| x.fault.is_some() && (code.is_empty() || x.error_code.as_deref() == Some(code)))
        .count();
    c.that(injected > 0, "no fault was injected");
    let rules = env.emulator.control().faults().await.expect("faults");
    let unspent: Vec<&Value> = rules.iter().filter(|r| r["count"].as_u64().is_some_and(|n| n > 0)).collect();
    c.that(
        unspent.is_empty(),
        format!("rules never fully hit (the case did not exercise them): {unspent:?}"),
    );
    no_duplicates(&mut c, &inv, &report);
    row(case, format!("{} ({injected} injected errors)", outcome(&report)), left, c)
}

/// Exactly one snapshot and one copy per run, one cluster and its instance.
fn no_duplicates(c: &mut Checks, inv: &Inventory, report: &DrillReport) {
    for r in runs(report) {
        let snaps = inv
            .source
            .iter()
            .filter(|x| x.kind == "snapshot" && of_run(x.run_id.as_deref(), &r.name))
            .count();
        let copies = inv
            .copies
            .iter()
            .filter(|x| x.kind == "snapshot" && of_run(x.run_id.as_deref(), &r.name))
            .count();
        c.that(snaps <= 1 && copies <= 1, format!("run {}: {snaps} snapshots, {copies} copies", r.name));
    }
    let clusters: Vec<&str> =
        inv.target.iter().filter(|x| x.kind == "cluster").map(|x| x.id.as_str()).collect();
    let instances: Vec<&str> =
        inv.target.iter().filter(|x| x.kind == "instance").map(|x| x.id.as_str()).collect();
    c.that(clusters == [EXISTING], format!("target clusters {clusters:?}"));
    c.that(instances == [EXISTING_INSTANCE], format!("target instances {instances:?}"));
}

/// `SnapshotQuotaExceeded` on the copy five times: EncryptCopy waits (Retry)
/// and the run completes with one copy.
async fn copy_quota_exceeded() -> Row {
    let (env, _sink, report, mut c) =
        drill_ok(vec![FaultRule::copy_quota_exceeded().times(5).into()], 1).await;
    let (inv, left, calls) = common(&mut c, &env, &report, &[]).await;
    let refused =
        count(&calls, "CopyDBClusterSnapshot", |x| x.error_code.as_deref() == Some("SnapshotQuotaExceeded"));
    let copied = count(&calls, "CopyDBClusterSnapshot", |x| x.status == Some(200));
    c.that(refused == 5 && copied == 1, format!("copy calls: {refused} refused, {copied} succeeded"));
    no_duplicates(&mut c, &inv, &report);
    row("copy-quota-exceeded", format!("{} (copy refused {refused}x, then made)", outcome(&report)), left, c)
}

/// A source-side failure: the run fails with `error` in `state`, one failure
/// notification names them, and the target account is untouched (empty).
async fn source_side_fails(
    case: &'static str,
    rule: FaultRule,
    state: &str,
    error: &str,
    allowed: &[(&str, &str)],
) -> (Row, Inventory, Vec<CallRecord>) {
    let (row, inv, calls, _) = source_side_fails_with(case, rule, state, error, allowed).await;
    (row, inv, calls)
}

async fn source_side_fails_with(
    case: &'static str,
    rule: FaultRule,
    state: &str,
    error: &str,
    allowed: &[(&str, &str)],
) -> (Row, Inventory, Vec<CallRecord>, DrillReport) {
    let (env, sink) = start(CONFIG, vec![rule]).await;
    let report = env.drill(1).await;
    let mut c = Checks::default();
    let r = runs(&report);
    c.that(
        r.len() == 1 && r[0].source == "FAILED" && r[0].target.is_none(),
        format!("want source FAILED: {}", outcome(&report)),
    );
    let notes = sink.wait_for(1, DELIVERY).await;
    let source_notes = failures(&sink, SRC);
    c.that(source_notes.len() == 1, format!("want 1 source failure notification, got {notes:?}"));
    if let Some(n) = source_notes.first() {
        c.that(
            n["kind"] == "failure" && n["failedState"] == state && n["error"] == error,
            format!("notification: {n}"),
        );
    }
    let (inv, left, calls) = common(&mut c, &env, &report, allowed).await;
    c.that(inv.target.is_empty(), format!("target account changed: {:?}", inv.target));
    let sources: Vec<&Resource> = inv.source.iter().filter(|x| x.kind != "snapshot").collect();
    c.that(sources.len() == 2, format!("source cluster and instance: {sources:?}"));
    let text = format!(
        "source FAILED in {} with {}",
        source_notes.first().map_or("?".into(), |n| n["failedState"].to_string()),
        source_notes.first().map_or("?".into(), |n| n["error"].to_string())
    );
    (row(case, text, left, c), inv, calls, report)
}

/// The source snapshot ends `failed`: the run fails cleanly, CleanUpCopy
/// deletes the failed snapshot, nothing else changes.
async fn source_snapshot_failed() -> Row {
    let rule = FaultRule::snapshot_status_in(SNAPSHOTS, "failed", SRC, SRC_REGION);
    let (mut row, inv, calls) =
        source_side_fails("source-snapshot-failed", rule, "WaitForSourceSnapshot", "ResourceFailed", &[])
            .await;
    let snaps = inv.source.iter().filter(|x| x.kind == "snapshot").count() + inv.copies.len();
    if snaps != 0 {
        row.problems.push(format!("failed snapshot not removed: {:?} {:?}", inv.source, inv.copies));
    }
    if count(&calls, "CopyDBClusterSnapshot", |_| true) != 0 {
        row.problems.push("a copy was attempted from a failed snapshot".into());
    }
    row
}

/// The copy ends `failed`: the run fails cleanly, the partial copy is
/// removed, the (available) source snapshot is kept as a recovery point.
async fn copy_failed() -> Row {
    let rule = FaultRule::snapshot_status_in(SNAPSHOTS, "failed", SRC, TGT_REGION);
    let allowed =
        [("source: snapshot aurora-dr-orders-", "this run's available source snapshot, a recovery point")];
    let (mut row, inv, calls) =
        source_side_fails("copy-failed", rule, "WaitForTargetSnapshot", "ResourceFailed", &allowed).await;
    if !inv.copies.is_empty() {
        row.problems.push(format!("partial copy not removed: {:?}", inv.copies));
    }
    if count(&calls, "DeleteDBClusterSnapshot", |x| x.region == TGT_REGION && x.status == Some(200)) != 1 {
        row.problems.push("CleanUpCopy did not delete the copy".into());
    }
    if count(&calls, "ModifyDBClusterSnapshotAttribute", |_| true) != 0 {
        row.problems.push("a failed copy was shared".into());
    }
    row
}

/// The source snapshot never becomes available: the wait gives up after its
/// documented bound (8 hours of waiting at full time scale, 483 polls on
/// the backoff of a progress figure that never moves) with the named error
/// `Timeout`.
async fn snapshot_never_available() -> Row {
    let rule = FaultRule::snapshot_status_in(SNAPSHOTS, "creating", SRC, SRC_REGION);
    let allowed = [(
        "source: snapshot aurora-dr-orders-",
        "stuck `creating`: RDS cannot delete it yet; named in the notification",
    )];
    let (mut row, _inv, _calls, report) = source_side_fails_with(
        "snapshot-never-available",
        rule,
        "WaitForSourceSnapshot",
        "Timeout",
        &allowed,
    )
    .await;
    // The documented bound, 28,800 s of waiting: polls at 0, 20, 50 and 95 s
    // (the backoff: 20 s x1.5, at most 60 s apart), then every 60 s, the
    // last one at the bound itself: 4 + 478 + 1 polls, each one attempt.
    let attempts: Vec<u64> = report.report["states"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|s| s["machine"] == "source" && s["state"] == "WaitForSourceSnapshot")
        .filter_map(|s| s["attempts"].as_u64())
        .collect();
    let polls: u64 = attempts.iter().sum();
    if polls != 483 || attempts.iter().any(|a| *a != 1) {
        row.problems
            .push(format!("want 483 WaitForSourceSnapshot polls of one attempt each, got {attempts:?}"));
    }
    row.outcome.push_str(&format!(" after {polls} polls"));
    row
}

/// A KMS key whose policy does not let the target account use it: the source
/// side completes (the copy is shared), the target side fails `AccessDenied`
/// at Restore and the existing DR cluster is untouched.
async fn kms_key_not_usable() -> Row {
    let (mut env, sink) = start(CONFIG, vec![]).await;
    env.seed_existing_dr_cluster().await;
    // A key in the source account and target region, usable by the source account only.
    let kms = env.source_in_target_region().await.kms();
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Sid": "SourceOnly", "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{SRC}:root")}, "Action": "kms:*", "Resource": "*"}]});
    let key = kms.create_key().policy(policy.to_string()).send().await.expect("CreateKey");
    let arn = key.key_metadata().and_then(|m| m.arn()).expect("key arn").to_owned();
    let text = CONFIG.replace(
        "# kms_key_arn = \"arn:aws:kms:us-west-1:111111111111:key/...\"  # created by the drill when absent",
        &format!("kms_key_arn = \"{arn}\""),
    );
    assert!(text.contains(&arn), "the example config changed; adapt this case");
    env.set_config(&text);
    target_untouched(
        "kms-key-not-usable-by-target",
        env,
        sink,
        "Restore",
        "AccessDenied",
        &[("copies: snapshot aurora-dr-orders-", "the shared copy of a source run that succeeded")],
    )
    .await
}

/// The shared snapshot is not visible to the target account: the target
/// side fails `NotFound` and the existing DR cluster is untouched.
async fn share_not_visible() -> Row {
    let hide = FaultRule::error("rds", "DescribeDBClusterSnapshots", "DBClusterSnapshotNotFoundFault")
        .in_account(TGT)
        .matching("SnapshotType", "shared");
    let (env, sink) = start(CONFIG, vec![hide.into()]).await;
    env.seed_existing_dr_cluster().await;
    target_untouched("share-not-visible-to-target", env, sink, "WaitForSharedSnapshot", "NotFound", &[]).await
}

/// The source side succeeds, the target side fails with `error` in `state`,
/// and the target account is exactly as before (the seeded DR copy).
async fn target_untouched(
    case: &'static str,
    env: DrillEnv,
    sink: NotificationSink,
    state: &str,
    error: &str,
    allowed: &[(&str, &str)],
) -> Row {
    let before = env.inventory().await.target;
    let report = env.drill(1).await;
    let mut c = Checks::default();
    let r = runs(&report);
    c.that(
        r.len() == 1 && r[0].source == "SUCCEEDED" && r[0].target.as_deref() == Some("FAILED"),
        format!("want source SUCCEEDED, target FAILED: {}", outcome(&report)),
    );
    c.that(
        r.first().and_then(|r| r.target_error.as_deref()) == Some(error),
        format!("want error {error}: {}", outcome(&report)),
    );
    sink.wait_for(1, DELIVERY).await;
    let notes = failures(&sink, TGT);
    c.that(
        notes.len() == 1 && notes[0]["failedState"] == state && notes[0]["error"] == error,
        format!("target failure notification: {notes:?}"),
    );
    let (inv, left, _) = common(&mut c, &env, &report, allowed).await;
    c.that(
        target_resources(&inv) == before,
        format!("target changed:\nbefore {before:?}\nafter  {:?}", inv.target),
    );
    row(case, format!("{}; target untouched", outcome(&report)), left, c)
}

/// Every mutating call's response is lost after the call took effect (as when
/// a handler crashes or times out mid-step): the step fails, the state is
/// retried and must find its own resource. No duplicate snapshot, copy,
/// cluster or instance; the lost Publish response makes Notify publish twice
/// and the target side starts one execution for the snapshot.
async fn crash_after_each_mutation() -> Row {
    // (account, service, operation, answers lost after the call took effect)
    let armed: [(&str, &str, &str, u32); 10] = [
        (SRC, "rds", "CreateDBClusterSnapshot", 3),
        (SRC, "rds", "CopyDBClusterSnapshot", 3),
        (SRC, "rds", "ModifyDBClusterSnapshotAttribute", 3),
        (SRC, "sns", "Publish", 1),
        (TGT, "rds", "RestoreDBClusterFromSnapshot", 3),
        (TGT, "rds", "CreateDBInstance", 3),
        (TGT, "rds", "ModifyDBCluster", 3),
        (TGT, "rds", "ModifyDBInstance", 3),
        (TGT, "rds", "DeleteDBInstance", 3),
        (TGT, "rds", "DeleteDBCluster", 3),
    ];
    let faults = armed
        .iter()
        .map(|(account, service, op, n)| {
            FaultRule::unavailable(service, op).in_account(account).response_lost().times(*n).into()
        })
        .collect();
    let (env, _sink, report, mut c) = drill_ok(faults, 2).await;
    let (inv, left, calls) = common(&mut c, &env, &report, &[]).await;
    no_duplicates(&mut c, &inv, &report);
    // Which calls took effect while their answer was lost, per account and operation.
    let mut lost_answers = std::collections::BTreeMap::<String, usize>::new();
    for x in calls.iter().filter(|x| x.applied) {
        *lost_answers.entry(format!("{} {} {}", x.account, x.service, x.operation)).or_default() += 1;
    }
    let applied: usize = lost_answers.values().sum();
    // Every armed lost answer happened: each mutating step was retried after
    // its call had already taken effect, and found its own resource.
    let want: std::collections::BTreeMap<String, usize> =
        armed.iter().map(|(a, s, op, n)| (format!("{a} {s} {op}"), *n as usize)).collect();
    c.that(lost_answers == want, format!("lost answers per call {lost_answers:?}, armed {want:?}"));
    // Each run's message, in run order: (started, duplicates) per delivery.
    // The first run's Publish answer was lost, so it published twice: the
    // first delivery started the target execution, the second was a duplicate.
    let mut deliveries = std::collections::BTreeMap::<String, Vec<(usize, usize)>>::new();
    for d in report.report["deliveries"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let n = |k: &str| d["outcome"][k].as_array().map_or(0, Vec::len);
        deliveries
            .entry(d["runId"].as_str().unwrap_or("?").to_owned())
            .or_default()
            .push((n("started"), n("duplicates")));
    }
    let per_run: Vec<&Vec<(usize, usize)>> = deliveries.values().collect();
    c.that(
        per_run == [&vec![(1, 0), (0, 1)], &vec![(1, 0)]],
        format!("want run 1's message delivered twice (started, then a duplicate) and run 2's once: {deliveries:?}"),
    );
    let execs = target_executions(&report);
    c.that(execs == 2, format!("want 2 target executions (one per snapshot), got {execs}"));
    row(
        "crash-after-each-mutation",
        format!("{} ({applied} calls applied, answer lost)", outcome(&report)),
        left,
        c,
    )
}

/// SNS delivers the snapshot message twice (the first Publish's answer is
/// lost, so Notify publishes again): one target execution, the second
/// delivery is reported as a duplicate.
async fn sns_delivered_twice() -> Row {
    let rule = FaultRule::unavailable("sns", "Publish").in_account(SRC).response_lost().times(1);
    let (env, _sink, report, mut c) = drill_ok(vec![rule.into()], 1).await;
    let (inv, left, _) = common(&mut c, &env, &report, &[]).await;
    no_duplicates(&mut c, &inv, &report);
    let deliveries = report.report["deliveries"].as_array().cloned().unwrap_or_default();
    let started: usize =
        deliveries.iter().map(|d| d["outcome"]["started"].as_array().map_or(0, Vec::len)).sum();
    let duplicates: usize =
        deliveries.iter().map(|d| d["outcome"]["duplicates"].as_array().map_or(0, Vec::len)).sum();
    c.that(deliveries.len() == 2 && started == 1 && duplicates == 1, format!("deliveries: {deliveries:?}"));
    let execs = target_executions(&report);
    c.that(execs == 1, format!("want 1 target execution, got {execs}"));
    row(
        "sns-delivered-twice",
        format!("{}; 2 deliveries, {started} started, {duplicates} duplicate", outcome(&report)),
        left,
        c,
    )
}

/// Messages out of order, through InvokeStepFunction and the local engine's
/// Step Functions API: the newer snapshot's message first, then an older
/// run's message (never seen before), then both again. Exactly one execution
/// (the newer snapshot's); the older one is skipped every time.
async fn sns_out_of_order() -> Row {
    let mut c = Checks::default();
    let config = aurora_dr_cli::config::Config::parse(CONFIG).expect("config");
    let engine = Engine::with_account(Clock::real(), TGT_REGION, TGT);
    let machine_arn = format!("arn:aws:states:{TGT_REGION}:{TGT}:stateMachine:aurora-dr-target");
    let definition = aurora_dr_asl::Definition::parse(
        r#"{"StartAt": "Restored", "States": {"Restored": {"Type": "Succeed"}}}"#,
    )
    .expect("definition");
    engine
        .register(
            aurora_dr_asl::StateMachineSpec::new("aurora-dr-target", definition).arn(machine_arn.clone()),
        )
        .expect("register");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(aurora_dr_asl::serve(listener, engine.clone()));
    let topic = format!("arn:aws:sns:{SRC_REGION}:{SRC}:{}", setup::SNAPSHOT_TOPIC);
    let mut settings = config.target.clone();
    settings.source_topic_arn = Some(topic.parse().expect("arn"));
    settings.state_machine_arn = Some(machine_arn.parse().expect("arn"));
    let options = aurora_dr_core::clients::ClientOptions::in_region(settings.region.clone())
        .with_static_credentials("aurora-dr-local", "aurora-dr-local")
        .with_sfn_endpoint(Some(url));
    let aws = aurora_dr_core::clients::AwsContext::load(&options).await;
    let ctx = Arc::new(StepContext::new(aws, SideSettings::Target(settings)));

    let message = |stamp: &str, created: &str| {
        let id = format!("aurora-dr-orders-{stamp}");
        json!({
            "version": 1, "runId": format!("run-{stamp}"), "createdAt": created,
            "sourceAccountId": SRC, "sourceRegion": SRC_REGION, "sourceClusterId": "orders",
            "sourceSnapshotId": id, "engine": "aurora-postgresql", "targetAccountId": TGT,
            "targetRegion": TGT_REGION, "targetSnapshotId": id,
            "targetSnapshotArn": format!("arn:aws:rds:{TGT_REGION}:{SRC}:cluster-snapshot:{id}"),
            "kmsKeyArn": format!("arn:aws:kms:{TGT_REGION}:{SRC}:key/0f0e0d0c-0000-4000-8000-000000000001"),
        })
        .to_string()
    };
    let newer = message("20260102000000", "2026-01-02T00:00:00Z");
    let older = message("20260101000000", "2026-01-01T00:00:00Z");
    let event = |messages: &[&str]| {
        let records: Vec<Value> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                json!({"EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": format!("{topic}:s"),
                    "Sns": {"Type": "Notification", "MessageId": format!("m-{i}"), "TopicArn": topic, "Subject": null,
                        "Message": m, "Timestamp": "2026-01-02T00:00:01Z", "SignatureVersion": "1", "Signature": "",
                        "SigningCertUrl": "", "UnsubscribeUrl": "", "MessageAttributes": {}}})
            })
            .collect();
        json!({"Records": records})
    };
    let mut log = Vec::new();
    for (what, ev) in [
        ("newer", event(&[&newer])),
        ("older, first seen", event(&[&older])),
        ("newer again", event(&[&newer])),
        ("older and newer in one event", event(&[&older, &newer])),
    ] {
        match invoke_step_function::handle(Arc::clone(&ctx), ev).await {
            Ok(v) => log.push((what, v)),
            Err(e) => c.that(false, format!("{what}: {e}")),
        }
    }
    let n = |v: &Value, k: &str| v[k].as_array().map_or(0, Vec::len);
    let summary: Vec<String> = log
        .iter()
        .map(|(w, v)| {
            format!(
                "{w}: {} started/{} duplicate/{} skipped",
                n(v, "started"),
                n(v, "duplicates"),
                n(v, "skipped")
            )
        })
        .collect();
    let shape: Vec<(usize, usize, usize)> =
        log.iter().map(|(_, v)| (n(v, "started"), n(v, "duplicates"), n(v, "skipped"))).collect();
    c.that(shape == [(1, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1)], format!("outcomes: {summary:?}"));
    let execs: Vec<String> = engine.executions(None).iter().map(|x| x.name().to_owned()).collect();
    c.that(execs == ["20260102000000_aurora-dr-orders-20260102000000"], format!("executions: {execs:?}"));
    server.abort();
    row("sns-out-of-order", format!("1 execution (newer snapshot); {}", summary.join(", ")), vec![], c)
}

/// Run 2's swap: the previous copy is renamed away, then the rename of the
/// restored cluster into the existing name fails. Swap rolls back, the failure
/// path cleans up (or, with `keep_failed_temp_cluster`, keeps the temporary
/// cluster and names it in the notification). The existing name serves run
/// 1's complete cluster.
async fn swap_second_rename_fails(keep: bool) -> Row {
    let case = if keep { "swap-second-rename-fails-keep-temp" } else { "swap-second-rename-fails" };
    let config = if keep {
        CONFIG.replace(
            "temp_instance_id = \"orders-dr-next-1\"",
            "temp_instance_id = \"orders-dr-next-1\"\nkeep_failed_temp_cluster = true",
        )
    } else {
        CONFIG.to_owned()
    };
    let rule = FaultRule::rename_fails(Some(TEMP)).in_account(TGT).skip(1);
    let (env, sink) = start(&config, vec![rule.into()]).await;
    let report = env.drill(2).await;
    let mut c = Checks::default();
    let r = runs(&report);
    c.that(
        r.len() == 2
            && r[0].target.as_deref() == Some("SUCCEEDED")
            && r[1].target.as_deref() == Some("FAILED"),
        format!("want run 1 ok, run 2 target FAILED: {}", outcome(&report)),
    );
    c.that(
        r.get(1).and_then(|r| r.target_error.as_deref()) == Some("SwapFailed"),
        format!("want SwapFailed: {}", outcome(&report)),
    );
    sink.wait_for(1, DELIVERY).await;
    let notes = failures(&sink, TGT);
    c.that(notes.len() == 1 && notes[0]["failedState"] == "Swap", format!("notification: {notes:?}"));
    let allowed: &[(&str, &str)] = if keep {
        &[(TEMP, "keep_failed_temp_cluster = true; named in the failure notification")]
    } else {
        &[]
    };
    let (inv, left, _) = common(&mut c, &env, &report, allowed).await;
    existing_serves_run(&mut c, &inv, r.first().map(|r| r.name.as_str()).unwrap_or_default());
    let temp_left = inv.target.iter().any(|x| x.id.starts_with(TEMP));
    c.that(temp_left == keep, format!("temporary cluster left: {temp_left}, configured keep: {keep}"));
    if keep {
        let named = notes.first().is_some_and(|n| n["resources"]["restoredClusterId"] == TEMP);
        c.that(named, format!("the notification does not name the kept temporary cluster: {notes:?}"));
    }
    row(case, format!("{}; {EXISTING} serves run 1", outcome(&report)), left, c)
}

/// The cluster under the existing name is `run`'s, available, with its
/// instance available; nothing is left under an `-old-` name.
fn existing_serves_run(c: &mut Checks, inv: &Inventory, run: &str) {
    let cluster = inv.target.iter().find(|x| x.kind == "cluster" && x.id == EXISTING);
    c.that(
        cluster.is_some_and(|x| {
            x.status == "available"
                && of_run(x.run_id.as_deref(), run)
                && x.detail.first().map(String::as_str) == Some(EXISTING_INSTANCE)
        }),
        format!("{EXISTING} should be run {run}'s complete cluster: {cluster:?}"),
    );
    let instance = inv.target.iter().find(|x| x.kind == "instance" && x.id == EXISTING_INSTANCE);
    c.that(instance.is_some_and(|x| x.status == "available"), format!("{EXISTING_INSTANCE}: {instance:?}"));
    let old: Vec<&Resource> = inv.target.iter().filter(|x| x.id.contains("-old-")).collect();
    c.that(old.is_empty(), format!("renamed-away resources left: {old:?}"));
}

/// Run 2's restored instance fails right after the swap (before Terminate):
/// WaitForSwappedCluster fails, RollBackSwap puts run 1's cluster back under
/// the existing name, the failed one is deleted, nothing was terminated.
async fn new_cluster_fails_before_terminate() -> Row {
    // Run 1's restored instance takes the existing instance name first (skipped);
    // run 2's is the next one to take it.
    let rule = FaultRule::instance_status(EXISTING_INSTANCE, "failed", 1, Some(1));
    let (env, sink) = start(CONFIG, vec![rule]).await;
    let report = env.drill(2).await;
    let mut c = Checks::default();
    let r = runs(&report);
    c.that(
        r.len() == 2
            && r[0].target.as_deref() == Some("SUCCEEDED")
            && r[1].target.as_deref() == Some("FAILED"),
        format!("want run 1 ok, run 2 target FAILED: {}", outcome(&report)),
    );
    sink.wait_for(1, DELIVERY).await;
    let notes = failures(&sink, TGT);
    c.that(
        notes.len() == 1 && notes[0]["failedState"] == "WaitForSwappedCluster",
        format!("notification: {notes:?}"),
    );
    let (inv, left, calls) = common(&mut c, &env, &report, &[]).await;
    existing_serves_run(&mut c, &inv, r.first().map(|r| r.name.as_str()).unwrap_or_default());
    let terminated = count(&calls, "DeleteDBCluster", |x| x.params.values().any(|v| v.contains("-old-")));
    c.that(terminated == 0, "the previous copy was deleted although its replacement failed");
    // RDS refuses to rename a failed instance: the rollback deletes run 2's
    // (it serves nothing) so run 1's instance can take its name back.
    let broken_deleted = count(&calls, "DeleteDBInstance", |x| {
        x.params.get("DBInstanceIdentifier").is_some_and(|v| v.eq_ignore_ascii_case(EXISTING_INSTANCE))
    });
    c.that(broken_deleted == 1, format!("run 2's failed instance deleted {broken_deleted} time(s), want 1"));
    row(
        "new-cluster-fails-before-terminate",
        format!("{}; rolled back, {EXISTING} serves run 1", outcome(&report)),
        left,
        c,
    )
}

/// Two source runs overlap: B starts (as a schedule would) while A's copy is
/// still copying. B is refused with `Conflict` before creating anything; A
/// completes. Run on the drill's own source machine and steps.
///
/// With `together`, A and B start at the same moment (EventBridge delivers a
/// scheduled event at least once, so a target can be invoked twice): they
/// share a start second, so they would name the same snapshot. B must still
/// be refused and never reuse A's snapshot or copy.
async fn overlapping_source_runs(together: bool) -> Row {
    let case = if together { "schedule-fires-twice" } else { "overlapping-source-runs" };
    let (env, _sink) = start(CONFIG, vec![]).await;
    // A first drill sets up what the stacks would (key, topics, source cluster).
    let first = env.drill(1).await;
    let mut c = Checks::default();
    c.that(first.ok, format!("set-up drill failed: {}", outcome(&first)));
    let control = env.emulator.control();
    // A's copy stays `copying` for 30 polls: B starts long before it is done.
    control
        .set_latency(&Latency { snapshot: Delay::polls(30), copy: Delay::polls(30), ..Latency::for_tests() })
        .await
        .expect("latency");
    let src = &env.config.source;
    let mut settings = src.clone();
    // Snapshot names carry the run's start second, and A may start in the
    // set-up drill's second: under a prefix of their own, A's and B's names
    // never meet the set-up run's (only each other's, when they start together).
    settings.snapshot_prefix = "aurora-dr-overlap".into();
    let key = first.report["kmsKeyArn"].as_str().unwrap_or_default().parse().expect("key arn");
    settings.set_kms_key(&src.target_region, key);
    settings.notification_topic_arn =
        Some(format!("arn:aws:sns:{SRC_REGION}:{SRC}:{}", setup::SNAPSHOT_TOPIC).parse().expect("arn"));
    settings.failure_topic_arn =
        Some(format!("arn:aws:sns:{SRC_REGION}:{SRC}:{}", setup::FAILURE_TOPIC).parse().expect("arn"));
    let aws = setup::account_context(env.emulator.url(), &src.account_id, &src.region, None).await;
    let ctx = Arc::new(StepContext::new(aws, SideSettings::Source(settings)));
    let clock = Clock::scaled(0.0001).expect("clock").with_real_timeouts();
    let engine = Engine::with_account(clock, SRC_REGION, SRC);
    let spec = drill::source_machine(&ctx, &src.region, &src.account_id).expect("source machine");
    let machine = engine.register(spec).expect("register");
    control.clear_calls().await.expect("clear");

    let a = engine.start(&machine.arn, json!({}), StartOptions::named("overlap-a")).expect("start A");
    if !together {
        // A's copy is under way once its Copies child (the second Map Run)
        // enters WaitForTargetSnapshot.
        let mut events = a.subscribe();
        let mut map_runs = Vec::new();
        while let Some(e) = events.next().await {
            map_runs.extend(e.details.map_run_arn);
            if map_runs.len() == 2 {
                break;
            }
        }
        if let Some(copies) = map_runs.get(1) {
            // Started right after its MapRunStarted event.
            let child = loop {
                if let Some(child) = engine.map_run_executions(copies).pop() {
                    break child;
                }
                tokio::task::yield_now().await;
            };
            let mut events = child.subscribe();
            while let Some(e) = events.next().await {
                if e.event_type == EventType::TaskStateEntered
                    && e.details.name.as_deref() == Some("WaitForTargetSnapshot")
                {
                    break;
                }
            }
        }
    }
    let b = engine.start(&machine.arn, json!({}), StartOptions::named("overlap-b")).expect("start B");
    let (a_out, b_out) = (a.wait().await, b.wait().await);
    // Started together, either may take the snapshot name first; otherwise A
    // (already copying) must win. Exactly one completes, the other is refused.
    let a_won = a_out.status == Status::Succeeded;
    let (winner, loser, loser_exec) =
        if a_won { ("overlap-a", "overlap-b", &b) } else { ("overlap-b", "overlap-a", &a) };
    c.that(together || a_won, format!("run A (copying) must complete: {a_out:?}"));
    c.that(
        (a_out.status == Status::Succeeded) != (b_out.status == Status::Succeeded),
        format!("exactly one run may complete: A {a_out:?}, B {b_out:?}"),
    );
    let refusals: Vec<String> = aurora_dr_tests::flat_history(&engine, loser_exec)
        .iter()
        .filter(|e| e.event_type == EventType::LambdaFunctionFailed)
        .map(|e| {
            format!(
                "{}: {}",
                e.details.error.clone().unwrap_or_default(),
                e.details.cause.clone().unwrap_or_default()
            )
        })
        .collect();
    c.that(
        refusals.len() == 1 && refusals[0].starts_with("Conflict") && refusals[0].contains(winner),
        format!("{loser}'s failures: {refusals:?}"),
    );
    let calls = control.calls().await.expect("calls");
    let created = count(&calls, "CreateDBClusterSnapshot", |x| x.status == Some(200));
    let copied = count(&calls, "CopyDBClusterSnapshot", |x| x.status == Some(200));
    c.that(
        created == 1 && copied == 1,
        format!("snapshots created {created}, copies {copied}: {loser} must create nothing"),
    );
    let inv = env.settled_inventory().await;
    let names = ok_sources(&first).into_iter().chain([winner.to_owned()]).collect::<Vec<_>>();
    let (left, unexpected) = leftovers(&inv, &names, &[]);
    c.that(unexpected.is_empty(), format!("unexpected resources left: {unexpected:?}"));
    let b_resources: Vec<String> = inv
        .all()
        .iter()
        .filter(|(_, r)| of_run(r.run_id.as_deref(), loser))
        .map(|(p, r)| format!("{p}: {r}"))
        .collect();
    c.that(b_resources.is_empty(), format!("{loser} left {b_resources:?}"));
    row(
        case,
        format!(
            "A {}, B {}; {loser} refused ({})",
            a_out.status.as_str(),
            b_out.status.as_str(),
            refusals.first().map_or("", |r| r.split(':').next().unwrap_or(""))
        ),
        left,
        c,
    )
}
