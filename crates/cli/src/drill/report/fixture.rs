//! A known drill for the report tests: two runs of one cluster, replayed as
//! history events through the [`Recorder`] at known times.
//!
//! Run 1 succeeds: the source side polls its snapshot (8 attempts, 7 of them
//! `ResourceNotReady`) and retries a throttled EncryptCopy (3 attempts); the
//! target side restores and swaps. Run 2's SanityCheck fails
//! (`SanityCheckFailed`, caught) and the target execution takes its failure
//! path: OnSanityCheckError, RollBackSwap (throttled once), CleanUpTempCluster,
//! NotifyFailure, then the Fail state `Failed`.

use aurora_dr_asl::{EventDetails, EventType, HistoryEvent};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use super::super::fleet::TABLE_HEADER;
use super::record::{ExecutionRecord, Record, Recorder};
use super::{Page, Side, Table};

pub const STARTED_AT: OffsetDateTime = datetime!(2026-11-25 20:24:26 UTC);
pub const SOURCE: (&str, &str) = ("111111111111", "us-west-2");
pub const TARGET: (&str, &str) = ("222222222222", "us-west-1");
pub const TOTAL: f64 = 14.3;
pub const SANITY_CAUSE: &str = "minRows(orders) FAILED: 3 rows, below the minimum 10; connectivity ok";
pub const NOT_READY: &str = "snapshot aurora-dr-orders-20261125202428 is creating, not yet available";

/// Machine, run and lane of a state.
type Where<'a> = (&'a str, usize, &'a str);

/// One attempt of a Task: `None` succeeded, `Some((error, cause))` failed.
type Attempt = Option<(&'static str, &'static str)>;

/// Replays states into a recorder.
pub struct Script {
    rec: Recorder,
    id: u64,
}

impl Script {
    fn new() -> Self {
        Self { rec: Recorder::starting_at(true, STARTED_AT), id: 0 }
    }

    fn emit(&mut self, at: f64, event_type: EventType, details: EventDetails, ctx: Where) {
        self.id += 1;
        let event = HistoryEvent {
            id: self.id,
            previous_event_id: self.id - 1,
            timestamp: STARTED_AT + time::Duration::seconds_f64(at),
            event_type,
            details,
        };
        let (machine, run, lane) = ctx;
        let who = if machine == "source" { SOURCE.0 } else { TARGET.0 };
        self.rec.on_event(&event, machine, who, run, lane);
    }

    /// A state of `kind` from `start` to `end`; Task states make their
    /// `attempts` at even intervals. A Fail state has no end.
    pub fn state(
        &mut self,
        ctx: Where,
        kind: &str,
        name: &str,
        start: f64,
        end: f64,
        attempts: &[Attempt],
    ) -> &mut Self {
        let named = || EventDetails { name: Some(name.to_owned()), ..EventDetails::default() };
        self.emit(start, EventType::entered(kind), named(), ctx);
        if kind == "Fail" {
            return self;
        }
        let step = (end - start) / attempts.len().max(1) as f64;
        for (i, attempt) in attempts.iter().enumerate() {
            let at = start + step * i as f64;
            self.emit(at, EventType::LambdaFunctionScheduled, EventDetails::default(), ctx);
            match attempt {
                None => {
                    self.emit(at + step, EventType::LambdaFunctionSucceeded, EventDetails::default(), ctx)
                }
                Some((error, cause)) => {
                    let cause = json!({"errorType": error, "errorMessage": cause}).to_string();
                    let details = EventDetails {
                        error: Some((*error).to_owned()),
                        cause: Some(cause),
                        ..EventDetails::default()
                    };
                    self.emit(at + step / 2.0, EventType::LambdaFunctionFailed, details, ctx);
                }
            }
        }
        self.emit(end, EventType::exited(kind), named(), ctx);
        self
    }

    /// A Task state that succeeds at the first attempt.
    pub fn task(&mut self, at: Where, name: &str, start: f64, end: f64) -> &mut Self {
        self.state(at, "Task", name, start, end, &[None])
    }

    /// A Pass state (no task).
    pub fn pass(&mut self, at: Where, name: &str, start: f64, end: f64) -> &mut Self {
        self.state(at, "Pass", name, start, end, &[])
    }

    pub fn record(&self) -> Record {
        self.rec.record()
    }
}

/// `n` attempts of a poll: `n - 1` times not ready, then ready.
fn polled(n: usize) -> Vec<Attempt> {
    let mut a = vec![Some(("ResourceNotReady", NOT_READY)); n - 1];
    a.push(None);
    a
}

/// The source side of one run, starting at `t`.
fn source_run(s: &mut Script, run: usize, t: f64) {
    let o = "orders";
    s.state(("source", run, ""), "Choice", "HasClusterList", t, t + 0.001, &[])
        .pass(("source", run, ""), "ConfiguredCluster", t + 0.001, t + 0.002)
        .state(("source", run, ""), "Map", "Snapshots", t + 0.002, t + 0.060, &[])
        .pass(("source", run, o), "Start", t + 0.003, t + 0.004)
        .task(("source", run, o), "CreateSnapshot", t + 0.004, t + 0.058)
        .state(("source", run, ""), "Map", "Copies", t + 0.060, t + 2.420, &[])
        .state(("source", run, o), "Task", "WaitForSourceSnapshot", t + 0.070, t + 1.100, &polled(8))
        .state(
            ("source", run, o),
            "Task",
            "EncryptCopy",
            t + 1.100,
            t + 1.600,
            &[Some(("Throttled", "Rate exceeded")), Some(("Throttled", "Rate exceeded")), None],
        )
        .state(("source", run, o), "Task", "WaitForTargetSnapshot", t + 1.600, t + 2.300, &polled(4))
        .task(("source", run, o), "Share", t + 2.300, t + 2.340)
        .task(("source", run, o), "Notify", t + 2.340, t + 2.400)
        .pass(("source", run, ""), "Report", t + 2.420, t + 2.421)
        .state(("source", run, ""), "Choice", "AnyClusterFailed", t + 2.421, t + 2.422, &[])
        .state(("source", run, ""), "Succeed", "Done", t + 2.422, t + 2.423, &[]);
}

/// The target side up to the swapped cluster, starting at `t`; returns the end.
fn target_restore(s: &mut Script, run: usize, t: f64) -> f64 {
    let o = "orders";
    s.task(("target", run, o), "WaitForSharedSnapshot", t, t + 0.030)
        .task(("target", run, o), "Restore", t + 0.030, t + 0.070)
        .state(("target", run, o), "Task", "WaitForTempCluster", t + 0.070, t + 1.100, &polled(6))
        .task(("target", run, o), "RestoreInstance", t + 1.100, t + 1.150)
        .state(("target", run, o), "Task", "WaitForTempInstances", t + 1.150, t + 2.170, &polled(5))
        .task(("target", run, o), "Swap", t + 2.170, t + 2.330)
        .state(("target", run, o), "Task", "WaitForSwappedCluster", t + 2.330, t + 3.200, &polled(5));
    t + 3.200
}

fn execution(
    machine: &str,
    run: usize,
    name: &str,
    start: f64,
    end: f64,
    failed: Option<(&str, &str)>,
) -> ExecutionRecord {
    let (account, region) = if machine == "source" { SOURCE } else { TARGET };
    let lane = if machine == "source" { "" } else { "orders" };
    let arn = format!("arn:aws:states:{region}:{account}:execution:aurora-dr-{machine}:{name}");
    let mut x = ExecutionRecord::started(machine, run, lane, name, &arn, start);
    x.end = Some(end);
    x.status = if failed.is_some() { "FAILED" } else { "SUCCEEDED" }.into();
    x.error = failed.map(|f| f.0.to_owned());
    x.cause = failed.map(|f| f.1.to_owned());
    x
}

/// The known drill's record.
pub fn record() -> Record {
    let o = "orders";
    let mut s = Script::new();
    source_run(&mut s, 1, 2.0);
    let t = target_restore(&mut s, 1, 4.5);
    s.task(("target", 1, o), "SanityCheck", t, t + 0.010)
        .task(("target", 1, o), "Terminate", t + 0.010, t + 0.100)
        .task(("target", 1, o), "ApplyRetention", t + 0.100, t + 0.150);
    source_run(&mut s, 2, 8.0);
    let t = target_restore(&mut s, 2, 10.5);
    s.state(
        ("target", 2, o),
        "Task",
        "SanityCheck",
        t,
        t + 0.020,
        &[Some(("SanityCheckFailed", SANITY_CAUSE))],
    )
    .pass(("target", 2, o), "OnSanityCheckError", t + 0.020, t + 0.021)
    .state(
        ("target", 2, o),
        "Task",
        "RollBackSwap",
        t + 0.021,
        t + 0.300,
        &[Some(("Throttled", "Rate exceeded")), None],
    )
    .task(("target", 2, o), "CleanUpTempCluster", t + 0.300, t + 0.450)
    .task(("target", 2, o), "NotifyFailure", t + 0.450, t + 0.490)
    .state(("target", 2, o), "Fail", "Failed", t + 0.490, t + 0.490, &[]);
    let mut record = s.record();
    record.executions = vec![
        execution("source", 1, "run-1795638266-1", 2.0, 4.423, None),
        execution("target", 1, "run-1795638266-1-0", 4.5, 7.85, None),
        execution("source", 2, "run-1795638266-2", 8.0, 10.423, None),
        execution("target", 2, "run-1795638266-2-0", 10.5, 14.19, Some(("SanityCheckFailed", SANITY_CAUSE))),
    ];
    record
}

/// Everything the page shows besides the record.
pub struct Known {
    pub record: Record,
    pub sides: Vec<Side>,
    pub runs: Vec<(usize, String)>,
    pub clusters: Table,
    pub target: Value,
}

impl Known {
    pub fn new() -> Self {
        let side = |machine: &str, (account, region): (&str, &str), cluster: &str| Side {
            machine: machine.into(),
            account: account.into(),
            region: region.into(),
            clusters: vec![cluster.into()],
        };
        Self {
            record: record(),
            sides: vec![side("source", SOURCE, "orders"), side("target", TARGET, "orders-dr")],
            runs: vec![
                (1, "source SUCCEEDED, target SUCCEEDED, achieved RPO 5.850s, time to restore 3.350s".into()),
                (2, "source SUCCEEDED, target FAILED".into()),
            ],
            clusters: Table {
                header: TABLE_HEADER.map(String::from).to_vec(),
                rows: vec![
                    ["1", "orders", "SUCCEEDED", "SUCCEEDED", "orders-dr", "5.850 s", "3.350 s", "5.850 s"]
                        .map(String::from)
                        .to_vec(),
                    ["2", "orders", "SUCCEEDED", "FAILED", "-", "-", "-", "-"].map(String::from).to_vec(),
                ],
            },
            target: json!({
                "clusterId": "orders-dr",
                "status": "available",
                "endpoint": "orders-dr.cluster-axol02xwuarv.us-west-1.rds.amazonaws.com",
                "readerEndpoint": "orders-dr.cluster-ro-axol02xwuarv.us-west-1.rds.amazonaws.com",
                "runId": "run-1795638266-1-0",
                "members": ["orders-dr-1"],
            }),
        }
    }

    pub fn page(&self) -> Page<'_> {
        Page {
            title: "aurora-dr drill",
            record: &self.record,
            total: TOTAL,
            ok: false,
            sides: &self.sides,
            runs: &self.runs,
            clusters: &self.clusters,
            phases: None,
            target: &self.target,
        }
    }
}
