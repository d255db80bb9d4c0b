//! Durations per phase of a run: how long the emulated AWS work of each
//! phase takes (the duration profile at the source cluster's allocated
//! storage), how long the workflow took over it, and the difference, the
//! detection latency: what the state machines' polling adds on top of the
//! work itself. All in real-world seconds: the drill runs with every
//! duration and every Wait/Retry interval multiplied by one time scale, so a
//! span of the timeline divided by that scale is what the run would take in
//! AWS.
//!
//! A phase is the states that start a piece of AWS work and wait for it
//! (e.g. `Restore` and `WaitForTempCluster`). The work starts when the
//! state that starts it ends (the emulator starts it on that state's call),
//! so the resource is ready the work's scaled duration after that; the
//! detection latency runs from then to the end of the wait.
//!
//! Scaling counts only what the scale applies to: the emulator's durations
//! and the Wait/Retry intervals. The drill's own processing (each Task
//! attempt: a handler and its calls to the emulator, from
//! `LambdaFunctionScheduled`/`TaskScheduled` to its end) takes the same
//! milliseconds at any scale, and in AWS a Lambda invocation takes tens to
//! hundreds of them, not those milliseconds divided by the scale. So every
//! span here is counted as its time inside Task attempts at face value plus
//! the rest divided by the scale ([`real_world_seconds`]). A phase's
//! workflow time is its starting states counted that way, its AWS work and
//! its detection latency.
//!
//! [`phase_timings`] is the one computation: the drill's report and the
//! benchmarks use it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use aurora_dr_emulator::{Delay, Latency};
use serde::{Deserialize, Serialize};

use super::report::Span;

/// Where a drill's emulated durations come from (`--durations`).
#[derive(Debug, Clone, PartialEq)]
pub enum Durations {
    /// [`Latency::realistic`]: real-world figures, sources in `crates/emulator`.
    Realistic,
    /// Every kind of work done at once.
    Zero,
    /// A TOML profile ([`Latency::from_toml_file`]).
    File(PathBuf),
}

impl Durations {
    /// `realistic`, `zero`, or the path of a TOML profile.
    pub fn parse(text: &str) -> Self {
        match text {
            "realistic" => Self::Realistic,
            "zero" => Self::Zero,
            path => Self::File(PathBuf::from(path)),
        }
    }

    /// The profile's durations, unscaled (real-world seconds).
    pub fn latency(&self) -> Result<Latency, String> {
        match self {
            Self::Realistic => Ok(Latency::realistic()),
            Self::Zero => Ok(Latency::default()),
            Self::File(path) => Latency::from_toml_file(path).map_err(|e| e.to_string()),
        }
    }

    /// How the drill names it.
    pub fn name(&self) -> String {
        match self {
            Self::Realistic => "realistic".into(),
            Self::Zero => "zero".into(),
            Self::File(path) => path.display().to_string(),
        }
    }
}

/// A drill's duration profile as the phases are computed from it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// `realistic`, `zero` or the TOML file's path.
    pub name: String,
    /// Unscaled durations (real-world seconds).
    pub latency: Latency,
    /// The source cluster's allocated storage.
    pub size_gib: f64,
    /// The factor every duration and every Wait/Retry interval was multiplied by.
    pub time_scale: f64,
}

impl Profile {
    /// What the emulator is given: every duration multiplied by the time scale.
    pub fn emulated(&self) -> Latency {
        self.latency.scaled(self.time_scale)
    }

    /// One line for the drill's progress output.
    pub fn describe(&self) -> String {
        format!(
            "{} profile, source storage {} GiB, time scale {} (1 real-world hour runs in {:.1}s)",
            self.name,
            self.size_gib,
            self.time_scale,
            3600.0 * self.time_scale
        )
    }
}

/// One phase of the pipeline: the states that start its AWS work and wait
/// for it, and which duration of the profile that work takes.
struct PhaseSpec {
    name: &'static str,
    /// The machine its states belong to.
    machine: &'static str,
    /// Its states, in order; the phase counts when the last one ran.
    states: &'static [&'static str],
    /// The work's duration at `gib` GiB.
    aws: fn(&Latency, f64) -> f64,
    /// Whether the workflow waits for the work to end.
    awaited: bool,
}

fn sized(delay: Delay, gib: f64) -> f64 {
    delay.seconds_for(gib)
}

/// The phases in pipeline order.
const PHASES: &[PhaseSpec] = &[
    PhaseSpec {
        name: "snapshot",
        machine: "source",
        states: &["CreateSnapshot", "CreateSnapshotAgain", "WaitForSourceSnapshot"],
        aws: |l, gib| sized(l.snapshot, gib),
        awaited: true,
    },
    PhaseSpec {
        name: "copy",
        machine: "source",
        states: &["EncryptCopy", "WaitForTargetSnapshot"],
        aws: |l, gib| sized(l.copy, gib),
        awaited: true,
    },
    PhaseSpec {
        name: "own copy",
        machine: "target",
        states: &["CopyToOwnAccount", "WaitForOwnCopy"],
        aws: |l, gib| sized(l.copy, gib),
        awaited: true,
    },
    PhaseSpec {
        name: "restore",
        machine: "target",
        states: &["Restore", "WaitForTempCluster"],
        aws: |l, gib| sized(l.restore, gib),
        awaited: true,
    },
    PhaseSpec {
        name: "instances",
        machine: "target",
        states: &["RestoreInstance", "WaitForTempInstances"],
        aws: |l, gib| sized(l.instance, gib),
        awaited: true,
    },
    // The renames of both phases of a swap run side by side in the emulator
    // as in RDS; the workflow waits for the last one, under the existing name.
    PhaseSpec {
        name: "rename/swap",
        machine: "target",
        states: &["Swap", "WaitForSwappedCluster"],
        aws: |l, _| sized(l.rename, 0.0),
        awaited: true,
    },
    // Terminate deletes the previous copy and ends: RDS finishes the deletion
    // after the run (and a first run has nothing to delete).
    PhaseSpec {
        name: DELETE,
        machine: "target",
        states: &["Terminate"],
        aws: |l, _| sized(l.delete, 0.0),
        awaited: false,
    },
];

/// The deletion of the previous copy (none on a first run: the caller,
/// which knows what each run's swap moved away, drops it there).
pub const DELETE: &str = "delete";

/// The phase of the existing name reaching the new cluster: from the rename
/// (Swap) to the end of the wait for it (WaitForNewEndpoint), since the DNS
/// delay runs from the rename.
const DNS_PHASE: &str = "dns";
const DNS_STATES: [&str; 3] = ["Swap", "WaitForSwappedCluster", "WaitForNewEndpoint"];

/// One phase of one run (and, with many clusters, one cluster).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseTiming {
    pub run: usize,
    /// The source cluster; empty when the states carry none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub lane: String,
    pub phase: String,
    /// The states the phase spans, as they ran.
    pub states: Vec<String>,
    /// The emulated AWS work, real-world seconds.
    pub aws_seconds: f64,
    /// The workflow's time over the phase, real-world seconds: its starting
    /// states, the AWS work and the detection latency; for a phase not
    /// awaited, its states (None while a state of it has not ended).
    pub workflow_seconds: Option<f64>,
    /// From the resource ready to the end of the wait (None when the
    /// workflow does not wait for the work).
    pub detection_seconds: Option<f64>,
    /// What the phase adds to the run: its detection latency; for the DNS
    /// phase, only what it waited beyond the rename phase's end as well.
    #[serde(default)]
    pub added_seconds: Option<f64>,
    /// Whether the workflow waits for the work to end.
    pub awaited: bool,
}

/// The real-world length of the drill's span `from`..`to` (seconds since the
/// drill started): the time inside `busy` intervals (Task attempts) at face
/// value, the rest divided by `scale`. A negative span (the wait ended
/// before the work should have) is divided by the scale.
pub fn real_world_seconds(from: f64, to: f64, busy: &[[f64; 2]], scale: f64) -> f64 {
    if to <= from {
        return (to - from) / scale;
    }
    // The attempts clipped to the span, overlaps counted once.
    let mut clipped: Vec<[f64; 2]> =
        busy.iter().map(|[a, b]| [a.max(from), b.min(to)]).filter(|[a, b]| b > a).collect();
    clipped.sort_by(|x, y| x[0].total_cmp(&y[0]));
    let (mut inside, mut reached) = (0.0, from);
    for [a, b] in clipped {
        inside += (b - a.max(reached)).max(0.0);
        reached = reached.max(b);
    }
    (to - from - inside) / scale + inside
}

/// One phase's states as they ran in one run and cluster.
struct Ran<'a> {
    name: &'static str,
    spans: Vec<&'a Span>,
    /// Its AWS work, real-world seconds.
    aws: f64,
    awaited: bool,
    /// The states that start the work.
    starters: &'static [&'static str],
}

/// Every phase that ran, per run and cluster, in pipeline order: its
/// emulated AWS time from `profile`, its detection latency from the
/// resource ready to the end of its wait, and its workflow time (the
/// starting states, the AWS work and the detection latency), in real-world
/// seconds ([`real_world_seconds`]).
pub fn phase_timings(spans: &[Span], profile: &Profile) -> Vec<PhaseTiming> {
    let scale = if profile.time_scale > 0.0 { profile.time_scale } else { 1.0 };
    let mut groups: BTreeMap<(usize, String), Vec<&Span>> = BTreeMap::new();
    for s in spans.iter().filter(|s| !s.failure_path) {
        groups.entry((s.run, s.lane.clone())).or_default().push(s);
    }
    let mut out = Vec::new();
    for ((run, lane), spans) in groups {
        let waited_for_dns = spans.iter().any(|s| s.machine == "target" && s.state == DNS_STATES[2]);
        let dns: Vec<&Span> = spans
            .iter()
            .copied()
            .filter(|s| waited_for_dns && s.machine == "target" && DNS_STATES.contains(&s.state.as_str()))
            .collect();
        let mut phases: Vec<Ran> = PHASES
            .iter()
            .map(|p| {
                let ran: Vec<&Span> = spans
                    .iter()
                    .copied()
                    .filter(|s| s.machine == p.machine && p.states.contains(&s.state.as_str()))
                    .collect();
                // The phase's work happened when its last state ran.
                let last = p.states.last().copied().unwrap_or_default();
                let ran = if ran.iter().any(|s| s.state == last) { ran } else { Vec::new() };
                let starters = &p.states[..p.states.len().saturating_sub(1)];
                Ran {
                    name: p.name,
                    spans: ran,
                    aws: (p.aws)(&profile.latency, profile.size_gib),
                    awaited: p.awaited,
                    starters,
                }
            })
            .collect();
        if !dns.is_empty() {
            let at = phases.iter().position(|p| p.name == DELETE).unwrap_or(phases.len());
            let aws = sized(profile.latency.dns, 0.0);
            phases.insert(
                at,
                Ran { name: DNS_PHASE, spans: dns, aws, awaited: true, starters: &DNS_STATES[..1] },
            );
        }
        // Where the rename phase's wait ended: the DNS phase adds only what
        // it waits beyond that.
        let rename_end = phases
            .iter()
            .find(|p| p.name == "rename/swap")
            .and_then(|p| p.spans.iter().map(|s| s.end).try_fold(f64::MIN, |m, e| e.map(|e| m.max(e))));
        for Ran { name, spans: ran, aws, awaited, starters } in phases {
            let Some(start) = ran.iter().map(|s| s.start).reduce(f64::min) else { continue };
            let end = ran.iter().map(|s| s.end).try_fold(f64::MIN, |m, e| e.map(|e| m.max(e)));
            let busy: Vec<[f64; 2]> = ran.iter().flat_map(|s| s.busy.iter().copied()).collect();
            let fair = |from: f64, to: f64| real_world_seconds(from, to, &busy, scale);
            // The work starts with the last call of the states that start
            // it; the resource is ready its scaled duration later.
            let started = ran
                .iter()
                .filter(|s| starters.contains(&s.state.as_str()))
                .map(|s| s.end)
                .try_fold(start, |m, e| e.map(|e| m.max(e)));
            let (workflow, detection, added) = match (awaited, started, end) {
                (true, Some(started), Some(end)) => {
                    let ready = started + aws * scale;
                    let detection = fair(ready, end);
                    let added = if name == DNS_PHASE {
                        fair(ready.max(rename_end.unwrap_or(f64::MIN)), end).max(0.0)
                    } else {
                        detection
                    };
                    (Some(fair(start, started) + aws + detection), Some(detection), Some(added))
                }
                (false, _, Some(end)) => (Some(fair(start, end)), None, None),
                _ => (None, None, None),
            };
            out.push(PhaseTiming {
                run,
                lane: lane.clone(),
                phase: name.to_owned(),
                states: ran.iter().map(|s| s.state.clone()).collect(),
                aws_seconds: aws,
                workflow_seconds: workflow,
                detection_seconds: detection,
                added_seconds: added,
                awaited,
            });
        }
    }
    out
}

/// What the waits added to one run (and cluster), in real-world seconds: the
/// sum of the awaited phases' added latencies (the DNS phase, which runs
/// from the same rename as the rename/swap phase, counts only what it
/// waited beyond both that phase and its own AWS work). None while a phase
/// has not ended.
pub fn added_latency(timings: &[PhaseTiming], run: usize, lane: &str) -> Option<f64> {
    timings.iter().filter(|t| t.run == run && t.lane == lane && t.awaited).map(|t| t.added_seconds).sum()
}

/// The phases as a text table, one block per run (and cluster).
pub fn text_table(timings: &[PhaseTiming]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  {:<12} {:>12} {:>12} {:>12}  (real-world seconds)",
        "phase", "AWS work", "workflow", "detection"
    );
    let mut last: Option<(usize, &str)> = None;
    let several =
        timings.iter().any(|t| (t.run, t.lane.as_str()) != (timings[0].run, timings[0].lane.as_str()));
    for t in timings {
        if several && last != Some((t.run, t.lane.as_str())) {
            let lane = if t.lane.is_empty() { String::new() } else { format!(", {}", t.lane) };
            let _ = writeln!(out, "  run {}{lane}", t.run);
        }
        last = Some((t.run, t.lane.as_str()));
        let workflow = t.workflow_seconds.map_or("running".to_owned(), |w| format!("{w:.1}"));
        let detection = t.detection_seconds.map_or("-".to_owned(), |d| format!("{d:.1}"));
        let note = match t.detection_seconds {
            _ if !t.awaited => "  not awaited: finishes after the run",
            // Each wait ends only when RDS reports the work done: this phase
            // found its resource ready without it. A little below zero is
            // the measurement's grain (the work starts at the starting
            // state's call, taken as the state's end), not a fault.
            Some(d) if d < -0.01 * t.aws_seconds => {
                "  SHORTER than its AWS work: the resource was ready at once"
            }
            _ => "",
        };
        let _ = writeln!(
            out,
            "  {:<12} {:>12.1} {:>12} {:>12}{note}",
            t.phase, t.aws_seconds, workflow, detection
        );
    }
    out
}

/// The phases as the HTML timeline's table.
pub fn html_table(timings: &[PhaseTiming]) -> super::report::Table {
    let cell = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
    super::report::Table {
        header: ["run", "cluster", "phase", "AWS work", "workflow", "detection"].map(String::from).to_vec(),
        rows: timings
            .iter()
            .map(|t| {
                vec![
                    t.run.to_string(),
                    t.lane.clone(),
                    if t.awaited { t.phase.clone() } else { format!("{} (not awaited)", t.phase) },
                    format!("{:.1}", t.aws_seconds),
                    cell(t.workflow_seconds),
                    cell(t.detection_seconds),
                ]
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(machine: &str, state: &str, start: f64, end: f64) -> Span {
        let mut s = Span::entered(machine, 1, "orders", state, "Task", start);
        s.exit(end);
        s
    }

    fn profile() -> Profile {
        Profile {
            name: "realistic".into(),
            latency: Latency::realistic(),
            size_gib: 500.0,
            time_scale: 0.001,
        }
    }

    /// A Task state whose attempts ran over `busy`.
    fn task(state: &str, start: f64, end: f64, busy: &[[f64; 2]]) -> Span {
        let mut s = span("target", state, start, end);
        s.attempts = busy.len() as u32;
        s.busy = busy.to_vec();
        s
    }

    #[test]
    fn phases_span_their_states_in_real_world_seconds() {
        let spans = vec![
            span("source", "CreateSnapshot", 0.0, 0.01),
            span("source", "WaitForSourceSnapshot", 0.02, 0.3),
            span("target", "Restore", 7.0, 7.01),
            span("target", "WaitForTempCluster", 7.01, 8.2),
            span("target", "Terminate", 10.0, 10.05),
        ];
        let t = phase_timings(&spans, &profile());
        let names: Vec<&str> = t.iter().map(|t| t.phase.as_str()).collect();
        assert_eq!(names, ["snapshot", "restore", "delete"]);
        // Snapshot: 120 + 0.2 x 500 = 220 s of work, started when
        // CreateSnapshot ended (0.01 s), so ready at 0.01 + 0.22 s; the wait
        // ended at 0.3 s: 70 s later at 0.001.
        assert!((t[0].aws_seconds - 220.0).abs() < 1e-9);
        assert!((t[0].detection_seconds.unwrap() - 70.0).abs() < 1e-6);
        assert_eq!(t[0].added_seconds, t[0].detection_seconds);
        // Workflow: the 10 s of CreateSnapshot, the work, the detection.
        assert!((t[0].workflow_seconds.unwrap() - 300.0).abs() < 1e-6);
        // Restore: 600 + 1 x 500.
        assert!((t[1].aws_seconds - 1100.0).abs() < 1e-9);
        // Deletion is not awaited: no detection latency.
        assert!(!t[2].awaited && t[2].detection_seconds.is_none());
        assert!((t[2].workflow_seconds.unwrap() - 50.0).abs() < 1e-6);
    }

    #[test]
    fn time_inside_task_attempts_counts_at_face_value_the_rest_scaled() {
        let busy = [[0.5, 1.2], [1.5, 1.6], [1.9, 2.5]];
        // 0.2 + 0.1 + 0.1 s inside attempts, 0.6 s outside at 0.01.
        assert!((real_world_seconds(1.0, 2.0, &busy, 0.01) - 60.4).abs() < 1e-9);
        assert!((real_world_seconds(1.0, 2.0, &[], 0.01) - 100.0).abs() < 1e-9);
        // All of it inside an attempt.
        assert!((real_world_seconds(1.0, 2.0, &[[0.0, 3.0]], 0.01) - 1.0).abs() < 1e-9);
        // Overlapping attempts count once.
        assert!((real_world_seconds(1.0, 2.0, &[[0.0, 3.0], [1.0, 2.0]], 0.01) - 1.0).abs() < 1e-9);
        assert!((real_world_seconds(1.0, 2.0, &[[1.0, 1.3], [1.2, 1.4]], 0.01) - 60.4).abs() < 1e-9);
        // A wait that ended before the work should have: negative, scaled.
        assert!((real_world_seconds(1.0, 0.9, &busy, 0.01) - -10.0).abs() < 1e-9);
    }

    #[test]
    fn the_detection_latency_counts_only_the_polls_after_ready_at_face_value() {
        // Restore of 1100 s of work at 0.001, started when Restore ended at
        // 0.01 s: ready at 1.11 s. Polls at 0.5 (before ready), 1.2 and
        // 1.45 s, the last one finding the cluster available.
        let spans = vec![
            task("Restore", 0.0, 0.01, &[[0.0, 0.01]]),
            task("WaitForTempCluster", 0.01, 1.5, &[[0.5, 0.55], [1.2, 1.3], [1.45, 1.5]]),
        ];
        let t = phase_timings(&spans, &profile());
        // 1.11 .. 1.5: 0.15 s inside polls at face value, 0.24 s of Retry
        // waits at 0.001 = 240 s (scaling all of it would say 390 s).
        assert!((t[0].detection_seconds.unwrap() - 240.15).abs() < 1e-6, "{:?}", t[0]);
        // Restore's 0.01 s, the work, the detection.
        assert!((t[0].workflow_seconds.unwrap() - (0.01 + 1100.0 + 240.15)).abs() < 1e-6);
        assert!((added_latency(&t, 1, "orders").unwrap() - 240.15).abs() < 1e-6);
    }

    #[test]
    fn the_table_marks_a_phase_shorter_than_its_work_and_an_unawaited_one() {
        let spans = vec![
            span("target", "Restore", 0.0, 0.01),
            span("target", "WaitForTempCluster", 0.01, 0.02),
            span("target", "Terminate", 1.0, 1.1),
        ];
        let table = text_table(&phase_timings(&spans, &profile()));
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[1].starts_with("  restore") && lines[1].contains("SHORTER"), "{table}");
        assert!(lines[2].starts_with("  delete") && lines[2].contains("not awaited"), "{table}");
        // Half a millisecond short at 0.001 (0.5 s of 1100): the grain, not marked.
        let spans =
            vec![span("target", "Restore", 0.0, 0.01), span("target", "WaitForTempCluster", 0.01, 1.1095)];
        let t = phase_timings(&spans, &profile());
        assert!((t[0].detection_seconds.unwrap() - -0.5).abs() < 1e-6);
        assert!(!text_table(&t).contains("SHORTER"), "{}", text_table(&t));
    }

    #[test]
    fn a_phase_whose_wait_never_ran_is_left_out() {
        // CopyToOwnAccount runs on every target run; without an own copy no wait follows.
        let spans = vec![span("target", "CopyToOwnAccount", 0.0, 0.01)];
        assert!(phase_timings(&spans, &profile()).is_empty());
    }

    #[test]
    fn a_dns_wait_is_its_own_phase_before_delete() {
        let spans = vec![
            span("target", "Swap", 0.0, 0.1),
            span("target", "WaitForSwappedCluster", 0.1, 0.7),
            span("target", "WaitForNewEndpoint", 0.7, 1.4),
            span("target", "Terminate", 1.4, 1.5),
        ];
        let t = phase_timings(&spans, &profile());
        let names: Vec<&str> = t.iter().map(|t| t.phase.as_str()).collect();
        assert_eq!(names, ["rename/swap", "dns", "delete"]);
        assert!((t[1].aws_seconds - 600.0).abs() < 1e-9);
        // From the rename to the end of the wait.
        assert_eq!(t[1].states, ["Swap", "WaitForSwappedCluster", "WaitForNewEndpoint"]);
    }

    #[test]
    fn the_added_latency_counts_the_dns_wait_only_beyond_the_rename() {
        let spans = vec![
            span("target", "Restore", 0.0, 0.01),
            span("target", "WaitForTempCluster", 0.01, 0.75),
            span("target", "Swap", 1.0, 1.1),
            span("target", "WaitForSwappedCluster", 1.1, 1.75),
            task("WaitForNewEndpoint", 1.75, 1.8, &[[1.75, 1.76], [1.79, 1.8]]),
        ];
        let t = phase_timings(&spans, &profile());
        // Restore: ready at 0.01 + 1.1 s, the wait ended at 0.75 (ready at
        // once): -360 s. Rename: 600 s of work from 1.1 s, ready at 1.7,
        // wait ended at 1.75: +50 s. DNS: 600 s from the same rename, ready
        // at 1.7 s, the wait ended at 1.8: 0.02 s inside polls at face
        // value and 0.08 s scaled; beyond the rename phase's end (1.75 s)
        // the same polls and 0.03 s scaled.
        assert!((t[0].detection_seconds.unwrap() - -360.0).abs() < 1e-6);
        assert!((t[1].detection_seconds.unwrap() - 50.0).abs() < 1e-6);
        let dns = &t[2];
        assert_eq!(dns.phase, "dns");
        assert!((dns.detection_seconds.unwrap() - (0.02 + 80.0)).abs() < 1e-6, "{dns:?}");
        assert!((dns.added_seconds.unwrap() - (0.02 + 30.0)).abs() < 1e-6, "{dns:?}");
        let added = added_latency(&t, 1, "orders").unwrap();
        assert!((added - (-360.0 + 50.0 + 30.02)).abs() < 1e-6, "{added}");
        assert_eq!(added_latency(&t, 2, "orders"), Some(0.0));
    }

    fn args(durations: &str) -> crate::drill::DrillArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            drill: crate::drill::DrillArgs,
        }
        Cli::try_parse_from(["drill", "--config", "drill.toml", "--durations", durations]).unwrap().drill
    }

    #[test]
    fn a_bad_profile_file_is_a_clear_error_and_exit_2() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("durations.toml");
        std::fs::write(&bad, "[copy]\nseconds = -1\n").unwrap();
        let missing = dir.path().join("missing.toml");
        for (file, expected) in [(&bad, "not negative"), (&missing, "missing.toml")] {
            let e = crate::drill::duration_profile(&args(&file.display().to_string())).unwrap_err();
            assert!(e.starts_with("--durations") && e.contains(expected), "{e}");
        }
        let config = dir.path().join("drill.toml");
        std::fs::write(&config, include_str!("../../../../examples/drill.toml")).unwrap();
        let mut a = args(&bad.display().to_string());
        a.config = config;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        assert_eq!(runtime.block_on(crate::drill::run(a)), std::process::ExitCode::from(2));
    }

    #[test]
    fn a_missing_state_machines_dir_is_a_clear_error_and_exit_2() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("drill.toml");
        std::fs::write(&config, include_str!("../../../../examples/drill.toml")).unwrap();
        let mut a = args("realistic");
        a.config = config;
        a.state_machines = Some(dir.path().to_path_buf());
        let e = crate::drill::state_machine_texts(&a).unwrap_err();
        assert!(e.starts_with("--state-machines") && e.contains("source.asl.json"), "{e}");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        assert_eq!(runtime.block_on(crate::drill::run(a)), std::process::ExitCode::from(2));
    }

    #[test]
    fn profiles_by_name_and_default_size() {
        let p = crate::drill::duration_profile(&args("realistic")).unwrap().unwrap();
        assert_eq!((p.latency, p.size_gib, p.time_scale), (Latency::realistic(), 500.0, 0.001));
        let p = crate::drill::duration_profile(&args("zero")).unwrap().unwrap();
        assert_eq!(p.latency, Latency::default());
        let mut a = args("realistic");
        a.time_scale = 0.0;
        assert!(crate::drill::duration_profile(&a).unwrap_err().contains("--time-scale"));
    }
}
