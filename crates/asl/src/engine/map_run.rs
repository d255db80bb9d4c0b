//! Map Runs: the record of the child executions one Distributed Map state
//! started, as `ListMapRuns` and `DescribeMapRun` show them (Step Functions
//! API Reference, DescribeMapRun and MapRunItemCounts).

use super::Status;
use std::sync::Mutex;
use time::OffsetDateTime;

/// The status of a Map Run, as `DescribeMapRun` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapRunStatus {
    Running,
    Succeeded,
    Failed,
    Aborted,
}

impl MapRunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MapRunStatus::Running => "RUNNING",
            MapRunStatus::Succeeded => "SUCCEEDED",
            MapRunStatus::Failed => "FAILED",
            MapRunStatus::Aborted => "ABORTED",
        }
    }
}

/// Item (and, without batching, child execution) counts of a Map Run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MapRunCounts {
    pub pending: u64,
    pub running: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub timed_out: u64,
    pub aborted: u64,
    pub total: u64,
    /// Results written by a ResultWriter: always 0 here (none is supported).
    pub results_written: u64,
}

/// One Map Run.
#[derive(Debug)]
pub struct MapRun {
    pub arn: String,
    /// The execution whose Distributed Map state started this run.
    pub execution_arn: String,
    /// The state machine its child executions run (`<machine ARN>/<label>`).
    pub state_machine_arn: String,
    pub start_date: OffsetDateTime,
    /// Child executions at a time (the Map state's effective MaxConcurrency).
    pub max_concurrency: u64,
    pub tolerated_failure_percentage: f64,
    pub tolerated_failure_count: u64,
    progress: Mutex<Progress>,
}

#[derive(Debug)]
struct Progress {
    status: MapRunStatus,
    stop_date: Option<OffsetDateTime>,
    counts: MapRunCounts,
}

impl MapRun {
    pub(super) fn new(
        arn: String,
        execution_arn: String,
        state_machine_arn: String,
        start_date: OffsetDateTime,
        max_concurrency: u64,
        tolerated: (f64, u64),
        total: u64,
    ) -> MapRun {
        MapRun {
            arn,
            execution_arn,
            state_machine_arn,
            start_date,
            max_concurrency,
            tolerated_failure_percentage: tolerated.0,
            tolerated_failure_count: tolerated.1,
            progress: Mutex::new(Progress {
                status: MapRunStatus::Running,
                stop_date: None,
                counts: MapRunCounts { pending: total, total, ..Default::default() },
            }),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Progress) -> R) -> R {
        f(&mut self.progress.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn status(&self) -> MapRunStatus {
        self.with(|p| p.status)
    }

    pub fn stop_date(&self) -> Option<OffsetDateTime> {
        self.with(|p| p.stop_date)
    }

    pub fn counts(&self) -> MapRunCounts {
        self.with(|p| p.counts)
    }

    /// A child execution started.
    pub(super) fn started(&self) {
        self.with(|p| {
            p.counts.pending = p.counts.pending.saturating_sub(1);
            p.counts.running += 1;
        });
    }

    /// A child execution ended with `status`.
    pub(super) fn finished(&self, status: Status) {
        self.with(|p| {
            p.counts.running = p.counts.running.saturating_sub(1);
            match status {
                Status::Succeeded => p.counts.succeeded += 1,
                Status::Failed => p.counts.failed += 1,
                Status::TimedOut => p.counts.timed_out += 1,
                Status::Aborted => p.counts.aborted += 1,
                Status::Running => {}
            }
        });
    }

    /// The children still running were stopped (the run failed or its
    /// execution ended): they count as aborted.
    pub(super) fn abort_running(&self) {
        self.with(|p| {
            p.counts.aborted += p.counts.running;
            p.counts.running = 0;
        });
    }

    /// The run ends; a run already ended keeps its status.
    pub(super) fn close(&self, status: MapRunStatus, now: OffsetDateTime) {
        self.with(|p| {
            if p.status == MapRunStatus::Running {
                p.status = status;
                p.stop_date = Some(now);
            }
        });
    }
}
