//! The drill's record: every state of both machines with start, end and
//! attempts, printed live, as one JSON report, and as an HTML timeline.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aurora_dr_asl::{EventType, Execution, HistoryEvent};
use serde::Serialize;
use time::OffsetDateTime;

/// One state of one execution.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    pub machine: String,
    pub run: usize,
    /// The source cluster the state works for (many clusters run side by
    /// side: a Map item on the source side, one execution each on the
    /// target side); empty for the source machine's own states.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub lane: String,
    pub state: String,
    /// Seconds since the drill started.
    pub start: f64,
    pub end: Option<f64>,
    pub attempts: u32,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Collects spans from history events and prints progress lines.
#[derive(Clone)]
pub struct Recorder {
    started: Instant,
    started_at: OffsetDateTime,
    spans: Arc<Mutex<Vec<Span>>>,
    quiet: bool,
}

impl Recorder {
    pub fn new(quiet: bool) -> Self {
        Self {
            started: Instant::now(),
            started_at: OffsetDateTime::now_utc(),
            spans: Arc::new(Mutex::new(Vec::new())),
            quiet,
        }
    }

    /// Seconds since the drill started.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub fn started_at(&self) -> OffsetDateTime {
        self.started_at
    }

    pub fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A progress line (suppressed with `--json`).
    pub fn line(&self, text: &str) {
        if !self.quiet {
            println!("{text}");
        }
    }

    /// Follows one execution to its end, recording and printing its states:
    /// the execution's own states are in `lane`,
    /// those of Map iteration `i` in `items[i]` (else `#i`). Events find their
    /// lane through `previous_event_id`, which chains each iteration's events
    /// from its `MapIterationStarted`.
    pub async fn follow_lanes(
        &self,
        execution: Execution,
        machine: &str,
        who: &str,
        run: usize,
        lane: &str,
        items: &[String],
    ) {
        let mut lanes: HashMap<u64, String> = HashMap::new();
        let mut events = execution.subscribe();
        while let Some(event) = events.next().await {
            let here = if event.event_type == EventType::MapIterationStarted {
                let i = event.details.index.unwrap_or_default() as usize;
                items.get(i).cloned().unwrap_or_else(|| format!("#{i}"))
            } else {
                lanes.get(&event.previous_event_id).cloned().unwrap_or_else(|| lane.to_owned())
            };
            self.on_event(&event, machine, who, run, &here);
            lanes.insert(event.id, here);
        }
    }

    fn on_event(&self, event: &HistoryEvent, machine: &str, who: &str, run: usize, lane: &str) {
        // Event time, not print time: a subscription replays earlier events.
        let at = (event.timestamp - self.started_at).as_seconds_f64().max(0.0);
        let name = event.details.name.clone().unwrap_or_default();
        let t = event.event_type.as_str();
        let mut spans = self.spans.lock().unwrap_or_else(|p| p.into_inner());
        // The state still open in this machine, run and lane.
        fn open<'a>(spans: &'a mut [Span], machine: &str, run: usize, lane: &str) -> Option<&'a mut Span> {
            spans
                .iter_mut()
                .rev()
                .find(|s| s.machine == machine && s.run == run && s.lane == lane && s.end.is_none())
        }
        let lane_tag = if lane.is_empty() { String::new() } else { format!("[{lane}] ") };
        let prefix = format!("  [{at:>8.3}s] {machine:<6} {who:<24} {lane_tag}");
        if t.ends_with("StateEntered") {
            spans.push(Span {
                machine: machine.into(),
                run,
                lane: lane.into(),
                state: name.clone(),
                start: at,
                end: None,
                attempts: 0,
                status: "running".into(),
                error: None,
            });
            if event.event_type == EventType::FailStateEntered
                && let Some(s) = open(&mut spans, machine, run, lane)
            {
                s.end = Some(at);
                s.status = "failed".into();
            }
            drop(spans);
            self.line(&format!("{prefix} > {name}"));
        } else if matches!(event.event_type, EventType::LambdaFunctionScheduled | EventType::TaskScheduled) {
            if let Some(s) = open(&mut spans, machine, run, lane) {
                s.attempts += 1;
            }
        } else if matches!(
            event.event_type,
            EventType::LambdaFunctionFailed
                | EventType::LambdaFunctionTimedOut
                | EventType::TaskFailed
                | EventType::TaskTimedOut
        ) {
            let error = event.details.error.clone().unwrap_or_default();
            let cause = short_cause(event.details.cause.as_deref().unwrap_or_default());
            let (state, attempt, repeated) = match open(&mut spans, machine, run, lane) {
                Some(s) => {
                    // Polling repeats one error many times: show it once per state.
                    let repeated = s.error.as_deref().is_some_and(|e| e.starts_with(&format!("{error}:")));
                    s.error = Some(format!("{error}: {cause}"));
                    (s.state.clone(), s.attempts, repeated)
                }
                None => (String::new(), 0, false),
            };
            drop(spans);
            if !repeated {
                self.line(&format!("{prefix}   {state}: attempt {attempt} {error} ({cause})"));
            }
        } else if t.ends_with("StateExited") {
            let (took, attempts) = match open(&mut spans, machine, run, lane) {
                Some(s) => {
                    s.end = Some(at);
                    s.status = "succeeded".into();
                    (at - s.start, s.attempts)
                }
                None => (0.0, 0),
            };
            drop(spans);
            let tries = if attempts > 1 { format!(", {attempts} attempts") } else { String::new() };
            self.line(&format!("{prefix} < {name} ({took:.3}s{tries})"));
        } else if event.event_type.is_terminal() {
            drop(spans);
            let detail = match (&event.details.error, &event.details.cause) {
                (Some(e), Some(c)) => format!(": {e} ({})", short_cause(c)),
                (Some(e), None) => format!(": {e}"),
                _ => String::new(),
            };
            self.line(&format!("{prefix} = {t}{detail}"));
        }
    }
}

/// A text Gantt chart of one run: a bar per state on a shared time axis.
pub fn text_timeline(spans: &[Span], run: usize) -> String {
    let spans: Vec<&Span> = spans.iter().filter(|s| s.run == run).collect();
    let (Some(first), Some(last)) = (
        spans.iter().map(|s| s.start).reduce(f64::min),
        spans.iter().map(|s| s.end.unwrap_or(s.start)).reduce(f64::max),
    ) else {
        return String::new();
    };
    let width = 40.0;
    let span = (last - first).max(1e-9);
    let label =
        |s: &Span| if s.lane.is_empty() { s.state.clone() } else { format!("{} {}", s.lane, s.state) };
    let label_width = spans.iter().map(|s| label(s).len()).max().unwrap_or(0).clamp(26, 48);
    let mut out = String::new();
    for s in spans {
        let end = s.end.unwrap_or(last);
        // A state entered at the very end (the Fail state) still gets the last column.
        let a = ((((s.start - first) / span) * width).floor() as usize).min(width as usize - 1);
        let b = ((((end - first) / span) * width).ceil() as usize).clamp(a + 1, width as usize);
        let bar: String = (0..width as usize).map(|i| if i >= a && i < b { '#' } else { '.' }).collect();
        let tries = if s.attempts > 1 { format!(" x{}", s.attempts) } else { String::new() };
        let mark = if s.status == "failed" { " FAILED" } else { "" };
        let _ = writeln!(
            out,
            "  {:<6} {:<label_width$} |{bar}| {:>7.3}s{tries}{mark}",
            s.machine,
            label(s),
            end - s.start
        );
    }
    out
}

/// A Lambda error's cause is `{"errorType","errorMessage"}` JSON; show the message.
pub fn short_cause(cause: &str) -> String {
    serde_json::from_str::<serde_json::Value>(cause)
        .ok()
        .and_then(|v| v.get("errorMessage").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| cause.to_owned())
}

/// A table of the HTML page: a header row and rows of cells.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// A self-contained HTML page: the summary, a table (one row per cluster and
/// run: outcome, achieved RPO, time to restore), and one bar per state, both
/// machines, every run.
pub fn html_report(
    title: &str,
    spans: &[Span],
    total: f64,
    summary: &[(String, String)],
    table: &Table,
) -> String {
    let width = 1000.0;
    let label = 260.0;
    let row = 22.0;
    let scale = if total > 0.0 { (width - label - 20.0) / total } else { 1.0 };
    let height = row * spans.len() as f64 + 40.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    for (i, s) in spans.iter().enumerate() {
        let y = 20.0 + row * i as f64;
        let x = label + s.start * scale;
        let w = ((s.end.unwrap_or(total) - s.start) * scale).max(2.0);
        let color = match (s.machine.as_str(), s.status.as_str()) {
            (_, "failed") => "#d9534f",
            ("source", _) => "#4a7bd0",
            _ => "#3c9a5f",
        };
        let state = if s.lane.is_empty() { s.state.clone() } else { format!("{} · {}", s.lane, s.state) };
        let tip = format!(
            "{} run {}: {} {:.3}s-{:.3}s, {} attempt(s){}",
            s.machine,
            s.run,
            state,
            s.start,
            s.end.unwrap_or(total),
            s.attempts,
            s.error.as_deref().map(|e| format!(", last error {e}")).unwrap_or_default()
        );
        let _ = write!(
            svg,
            r#"<text x="4" y="{ty}">{m} {r} · {name}</text><rect x="{x:.1}" y="{y}" width="{w:.1}" height="{h}" fill="{color}"><title>{tip}</title></rect>"#,
            ty = y + 14.0,
            m = escape(&s.machine),
            r = s.run,
            name = escape(&state),
            h = row - 6.0,
            tip = escape(&tip),
        );
    }
    let _ = write!(svg, "</svg>");
    let rows: String = summary
        .iter()
        .map(|(k, v)| format!("<tr><th>{}</th><td>{}</td></tr>", escape(k), escape(v)))
        .collect();
    let cells = |tag: &str, row: &[String]| -> String {
        row.iter().map(|c| format!("<{tag}>{}</{tag}>", escape(c))).collect()
    };
    let clusters = if table.rows.is_empty() {
        String::new()
    } else {
        let body: String = table.rows.iter().map(|r| format!("<tr>{}</tr>", cells("td", r))).collect();
        format!("<table class=\"clusters\"><tr>{}</tr>{body}</table>", cells("th", &table.header))
    };
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title><style>body{{font-family:sans-serif;margin:2em}}\
         th{{text-align:left;padding-right:1em}}td{{font-family:monospace;padding-right:1em}}\
         table.clusters{{margin-top:1em}}</style></head><body><h1>{t}</h1>\
         <table>{rows}</table>{clusters}<p>Blue: source account · green: target account · red: failed. Hover a bar for details.</p>\
         {svg}</body></html>\n",
        t = escape(title)
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_is_self_contained_and_escaped() {
        let spans = vec![Span {
            machine: "source".into(),
            run: 1,
            lane: String::new(),
            state: "Create<Snapshot>".into(),
            start: 0.0,
            end: Some(1.0),
            attempts: 2,
            status: "succeeded".into(),
            error: None,
        }];
        let table = Table {
            header: vec!["source cluster".into(), "achieved RPO".into()],
            rows: vec![vec!["orders<1>".into(), "2.500 s".into()]],
        };
        let html = html_report("drill", &spans, 2.0, &[("run".into(), "r1".into())], &table);
        assert!(html.contains("<th>achieved RPO</th>"), "{html}");
        assert!(html.contains("<td>orders&lt;1&gt;</td><td>2.500 s</td>"), "{html}");
        assert!(html.contains("Create&lt;Snapshot&gt;"));
        assert!(!html.contains("http://") || html.contains("http://www.w3.org/2000/svg"));
        assert!(!html.contains("<script"));
        assert!(html.contains("2 attempt(s)"));
    }

    #[test]
    fn lambda_causes_are_shortened() {
        assert_eq!(short_cause(r#"{"errorType":"X","errorMessage":"m"}"#), "m");
        assert_eq!(short_cause("plain"), "plain");
    }
}
