//! The HTML timeline: one self-contained page (no script, no network asset)
//! that says first what failed, then shows every state of every run on a
//! time axis. It prints: a print stylesheet keeps the colours that carry
//! meaning, drops nothing that is needed to read it, repeats each run's axis
//! on every page and keeps a state's row and its error together.

use std::fmt::Write as _;

use serde_json::Value;
use time::OffsetDateTime;
use time::macros::format_description;

use super::record::{ExecutionRecord, Outcome, Record, Span, folded};

/// A table of the page: a header row and rows of cells.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// One side of the drill: the account and region a machine runs in.
#[derive(Debug, Clone)]
pub struct Side {
    /// `source` or `target`, as the spans name the machine.
    pub machine: String,
    pub account: String,
    pub region: String,
    /// Its cluster(s): the source clusters, or the existing DR cluster names.
    pub clusters: Vec<String>,
}

/// What the page shows beyond the record.
#[derive(Debug, Clone)]
pub struct Page<'a> {
    pub title: &'a str,
    pub record: &'a Record,
    /// Seconds from the drill's start to its end.
    pub total: f64,
    /// Whether every run restored the DR cluster.
    pub ok: bool,
    pub sides: &'a [Side],
    /// One line per run (outcome, achieved RPO, time to restore), by run number.
    pub runs: &'a [(usize, String)],
    /// One row per cluster and run.
    pub clusters: &'a Table,
    /// With a duration profile: one row per phase of each run (AWS work,
    /// workflow, detection latency), and the profile in words.
    pub phases: Option<(&'a str, &'a Table)>,
    /// The target account's cluster under the existing name at the end:
    /// `clusterId`, `status`, `endpoint`, `readerEndpoint`, `members`,
    /// `runId` (or `error`).
    pub target: &'a Value,
}

/// The tool's version, as the page's header states it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The page as one HTML document.
pub fn html_page(page: &Page) -> String {
    let mut body = String::new();
    header(&mut body, page);
    failures(&mut body, page);
    runs_and_clusters(&mut body, page);
    target_cluster(&mut body, page.target);
    legend(&mut body);
    for run in run_numbers(page) {
        run_timeline(&mut body, page, run);
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head>\n<body>\n{body}</body></html>\n",
        title = escape(&format!("{}: {}", page.title, if page.ok { "SUCCEEDED" } else { "FAILED" })),
    )
}

fn header(out: &mut String, page: &Page) {
    let result = if page.ok { Outcome::Succeeded } else { Outcome::Failed };
    let word = if page.ok { "SUCCEEDED" } else { "FAILED" };
    let _ = write!(
        out,
        "<header><h1>{} <span class=\"result tag {}\">{word}</span></h1><dl class=\"facts\">",
        escape(page.title),
        result.key()
    );
    let mut fact = |k: &str, v: &str| {
        let _ = write!(out, "<div><dt>{}</dt><dd>{}</dd></div>", escape(k), escape(v));
    };
    fact("started", &utc(page.record.started_at, DATE_TIME));
    fact("duration", &seconds(page.total));
    for side in page.sides {
        let mut v = format!("account {} · region {}", side.account, side.region);
        if !side.clusters.is_empty() {
            v.push_str(&format!(" · cluster {}", side.clusters.join(", ")));
        }
        fact(&side.machine, &v);
    }
    let runs: Vec<String> =
        page.record.executions.iter().filter(|x| x.machine == "source").map(|x| x.name.clone()).collect();
    if !runs.is_empty() {
        fact("run ids", &runs.join(", "));
    }
    fact("tool", &format!("aurora-dr {VERSION}"));
    out.push_str("</dl><nav class=\"jump\">Timelines:");
    for run in run_numbers(page) {
        let word = if run_failed(page, run) { "FAILED" } else { "SUCCEEDED" };
        let _ = write!(out, " <a href=\"#run-{run}\">run {run} {word}</a>");
    }
    out.push_str("</nav></header>\n");
}

/// The numbers of the runs that recorded a state, in order.
fn run_numbers(page: &Page) -> Vec<usize> {
    let mut runs: Vec<usize> = page.record.spans.iter().map(|s| s.run).collect();
    runs.sort_unstable();
    runs.dedup();
    runs
}

/// A run failed when one of its executions or states did.
fn run_failed(page: &Page, run: usize) -> bool {
    page.record.executions.iter().any(|x| x.run == run && x.status != "SUCCEEDED")
        || page.record.spans.iter().any(|s| s.run == run && s.outcome == Outcome::Failed)
}

/// The anchor of a failed state's row: `run-2-orders-SanityCheck`.
fn row_id(s: &Span) -> String {
    let lane = if s.lane.is_empty() { &s.machine } else { &s.lane };
    format!("run-{}-{lane}-{}", s.run, s.state)
}

/// Where a span ran: `run 2 · target · cluster orders`.
fn place(s: &Span) -> String {
    let mut p = format!("run {} · {}", s.run, s.machine);
    if !s.lane.is_empty() {
        p.push_str(&format!(" · cluster {}", s.lane));
    }
    p
}

/// The spans that ran after `failed` in its execution and cluster.
fn failure_path<'a>(spans: &'a [Span], failed: &Span) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|s| {
            s.machine == failed.machine
                && s.run == failed.run
                && s.lane == failed.lane
                && s.start >= failed.start
                && !std::ptr::eq(*s, failed)
                && (s.failure_path || s.kind == "Fail")
        })
        .collect()
}

/// The executions of a run and machine (and cluster, for the target side).
fn executions_of<'a>(
    page: &'a Page,
    run: usize,
    machine: &str,
    lane: Option<&str>,
) -> Vec<&'a ExecutionRecord> {
    page.record
        .executions
        .iter()
        .filter(|x| x.run == run && x.machine == machine && lane.is_none_or(|l| x.lane == l))
        .collect()
}

fn failures(out: &mut String, page: &Page) {
    let spans = &page.record.spans;
    let failed: Vec<&Span> =
        spans.iter().filter(|s| s.outcome == Outcome::Failed && s.kind != "Fail").collect();
    // Executions that failed without a failed Task of their own (e.g. a Fail state on bad input).
    let covered = |x: &ExecutionRecord| {
        failed
            .iter()
            .any(|s| s.run == x.run && s.machine == x.machine && (x.machine == "source" || s.lane == x.lane))
    };
    let bare: Vec<&ExecutionRecord> = page
        .record
        .executions
        .iter()
        .filter(|x| x.status != "SUCCEEDED" && x.status != "RUNNING" && !covered(x))
        .collect();
    if failed.is_empty() && bare.is_empty() {
        return;
    }
    out.push_str("<section class=\"failures\" id=\"what-failed\"><h2>What failed</h2>\n");
    for s in failed {
        let _ = write!(
            out,
            "<article class=\"failure\" data-state=\"{state}\"><h3><span class=\"tag failed\">FAILED</span> \
             <a href=\"#{id}\">{state}</a> <span class=\"where\">{place}</span></h3>",
            state = escape(&s.state),
            id = escape(&row_id(s)),
            place = escape(&place(s)),
        );
        let attempts =
            if s.attempts == 1 { "1 attempt".to_owned() } else { format!("{} attempts", s.attempts) };
        let (begin, _) = run_bounds(page, s.run);
        let _ = write!(
            out,
            "<p class=\"error\"><strong>{}</strong> after {attempts}; entered at {}, {} into run {}; {} in the state</p>",
            escape(s.error.as_deref().unwrap_or("(no error)")),
            utc(at(page.record.started_at, s.start), TIME_MS),
            offset(s.start - begin),
            s.run,
            seconds(s.took(page.total)),
        );
        if let Some(cause) = &s.cause {
            let _ = write!(out, "<pre class=\"cause\">{}</pre>", escape(cause));
        }
        let earlier: Vec<String> = s
            .errors
            .iter()
            .map(|(e, n)| (e, if Some(e) == s.error.as_ref() { n - 1 } else { *n }))
            .filter(|(_, n)| *n > 0)
            .map(|(e, n)| format!("{e} ×{n}"))
            .collect();
        if !earlier.is_empty() {
            let _ = write!(out, "<p>Earlier attempts failed with {}.</p>", escape(&earlier.join(", ")));
        }
        let path: Vec<String> =
            failure_path(spans, s)
                .iter()
                .map(|p| {
                    if p.outcome == Outcome::Failed {
                        format!("{} (FAILED)", p.state)
                    } else {
                        p.state.clone()
                    }
                })
                .collect();
        if !path.is_empty() {
            let _ = write!(out, "<p class=\"path\">Failure path: {}</p>", escape(&path.join(" → ")));
        }
        let lane = (s.machine != "source").then_some(s.lane.as_str());
        for x in executions_of(page, s.run, &s.machine, lane) {
            let _ = write!(out, "<p class=\"execution\">{}</p>", escape(&execution_line(x)));
        }
        out.push_str("</article>\n");
    }
    for x in bare {
        let _ = write!(
            out,
            "<article class=\"failure\"><h3><span class=\"tag failed\">FAILED</span> {} execution \
             <span class=\"where\">run {}</span></h3><p class=\"execution\">{}</p>",
            escape(&x.machine),
            x.run,
            escape(&execution_line(x)),
        );
        if let Some(cause) = &x.cause {
            let _ = write!(out, "<pre class=\"cause\">{}</pre>", escape(cause));
        }
        out.push_str("</article>\n");
    }
    out.push_str("</section>\n");
}

/// `Execution NAME (account, region) ended FAILED: Error`.
fn execution_line(x: &ExecutionRecord) -> String {
    let mut line = format!("{} execution {} ({} {}) ", x.machine, x.name, x.account, x.region);
    if x.status == "RUNNING" {
        line.push_str("was still running");
    } else {
        line.push_str(&format!("ended {}", x.status));
    }
    if let Some(e) = &x.error {
        line.push_str(&format!(": {e}"));
    }
    line
}

fn runs_and_clusters(out: &mut String, page: &Page) {
    if page.runs.is_empty() && page.clusters.rows.is_empty() {
        return;
    }
    out.push_str("<section class=\"summary\"><h2>Runs</h2>");
    if !page.runs.is_empty() {
        out.push_str("<table class=\"runs\"><tbody>");
        for (n, line) in page.runs {
            let _ = write!(out, "<tr><th scope=\"row\">run {n}</th><td>{}</td></tr>", escape(line));
        }
        out.push_str("</tbody></table>");
    }
    table(out, page.clusters);
    out.push_str("</section>\n");
    if let Some((profile, phases)) = page.phases {
        let _ = write!(
            out,
            "<section class=\"summary\"><h2>Phases</h2><p>{}; real-world seconds.</p>",
            escape(profile)
        );
        table(out, phases);
        out.push_str("</section>\n");
    }
}

/// A table with a header row (nothing when it has no rows).
fn table(out: &mut String, t: &Table) {
    if t.rows.is_empty() {
        return;
    }
    let cells = |tag: &str, row: &[String]| -> String {
        row.iter().map(|c| format!("<{tag}>{}</{tag}>", escape(c))).collect()
    };
    let _ =
        write!(out, "<table class=\"clusters\"><thead><tr>{}</tr></thead><tbody>", cells("th", &t.header));
    for row in &t.rows {
        let _ = write!(out, "<tr>{}</tr>", cells("td", row));
    }
    out.push_str("</tbody></table>");
}

/// The target cluster as fields.
pub fn target_fields(target: &Value) -> Vec<(&'static str, String)> {
    const FIELDS: [(&str, &str); 7] = [
        ("identifier", "clusterId"),
        ("status", "status"),
        ("writer endpoint", "endpoint"),
        ("reader endpoint", "readerEndpoint"),
        ("instances", "members"),
        ("restored by run", "runId"),
        ("error", "error"),
    ];
    FIELDS
        .iter()
        .filter_map(|(label, key)| {
            let text = match target.get(key)? {
                Value::String(s) => s.clone(),
                Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(", "),
                Value::Null => return None,
                other => other.to_string(),
            };
            Some((*label, text))
        })
        .collect()
}

fn target_cluster(out: &mut String, target: &Value) {
    let fields = target_fields(target);
    if fields.is_empty() {
        return;
    }
    out.push_str("<section class=\"target\"><h2>Target cluster at the end</h2><dl class=\"fields\">");
    for (k, v) in fields {
        let _ = write!(out, "<div><dt>{k}</dt><dd>{}</dd></div>", escape(&v));
    }
    out.push_str("</dl></section>\n");
}

fn legend(out: &mut String) {
    out.push_str("<section class=\"legend\"><h2>Legend</h2><ul>");
    for o in Outcome::ALL {
        let _ = write!(
            out,
            "<li><span class=\"swatch bar {k}\"></span> <span class=\"tag {k}\">{label}</span> {meaning}</li>",
            k = o.key(),
            label = o.label(),
            meaning = escape(o.meaning()),
        );
    }
    out.push_str(
        "<li><span class=\"attempts\">×8</span> its task ran 8 times, or a polling loop came back to it 8 times</li>\
         <li>start and axis: time since the run's start</li></ul></section>\n",
    );
}

/// Tick step for an axis of `length` seconds: at most 8 intervals, on
/// round numbers (1, 2, 5 × 10ⁿ s; whole minutes and hours beyond a minute).
pub fn tick_step(length: f64) -> f64 {
    const LONG: [f64; 12] =
        [60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 10800.0, 21600.0, 43200.0, 86400.0];
    let length = length.max(1e-3);
    let mut exp = -3;
    loop {
        let base = 10f64.powi(exp);
        for m in [1.0, 2.0, 5.0] {
            let step = m * base;
            if step >= 60.0 {
                return LONG
                    .iter()
                    .copied()
                    .find(|s| length / s <= 8.0)
                    .unwrap_or(86400.0 * (length / 691_200.0).ceil());
            }
            if length / step <= 8.0 {
                return step;
            }
        }
        exp += 1;
    }
}

/// The first and last instant of a run (seconds since the drill started):
/// its states and its executions.
fn run_bounds(page: &Page, run: usize) -> (f64, f64) {
    let spans = page.record.spans.iter().filter(|s| s.run == run);
    let execs = page.record.executions.iter().filter(|x| x.run == run);
    let begin =
        spans.clone().map(|s| s.start).chain(execs.clone().map(|x| x.start)).reduce(f64::min).unwrap_or(0.0);
    let finish = spans
        .map(|s| s.end.unwrap_or(page.total))
        .chain(execs.filter_map(|x| x.end))
        .reduce(f64::max)
        .unwrap_or(begin);
    (begin, finish)
}

fn run_timeline(out: &mut String, page: &Page, run: usize) {
    let spans = folded(&page.record.spans, run);
    let (begin, finish) = run_bounds(page, run);
    let length = (finish - begin).max(1e-3);
    let step = tick_step(length);
    let ticks = (length / step).ceil().max(1.0);
    let axis = ticks * step;
    let pct = |s: f64| (s / axis * 100.0).clamp(0.0, 100.0);
    let (word, key) = if run_failed(page, run) { ("FAILED", "failed") } else { ("SUCCEEDED", "succeeded") };
    let _ = write!(
        out,
        "<section class=\"run\" id=\"run-{run}\"><h2>Run {run} <span class=\"tag {key}\">{word}</span></h2>\
         <p class=\"run-facts\">started {} · {} from the first state to the last</p>",
        utc(at(page.record.started_at, begin), DATE_TIME_MS),
        seconds(finish - begin),
    );
    // The axis: one label per tick, repeated on each printed page (thead).
    let mut labels = String::new();
    for i in 0..=ticks as usize {
        let t = i as f64 * step;
        let _ = write!(
            labels,
            "<span class=\"tick\" style=\"left:{:.4}%\">{}</span>",
            pct(t),
            tick_label(t, step)
        );
    }
    let _ = write!(
        out,
        "<table class=\"timeline\" style=\"--tick:{:.4}%\"><caption class=\"sr\">Run {run}: every state of both machines, on one time axis</caption>\
         <colgroup><col class=\"c-name\"><col class=\"c-start\"><col class=\"c-bar\"><col class=\"c-took\"><col class=\"c-outcome\"></colgroup>\
         <thead><tr><th scope=\"col\">state</th><th scope=\"col\">start</th>\
         <th scope=\"col\" class=\"axis\"><span class=\"sr\">time axis, seconds from the run's start</span><div class=\"ticks\">{labels}</div></th>\
         <th scope=\"col\">took</th><th scope=\"col\">outcome</th></tr></thead>",
        step / axis * 100.0,
    );
    // Groups: the source machine, then each target execution (one per cluster).
    let mut groups: Vec<(String, String)> = Vec::new();
    for s in &spans {
        let key = (s.machine.clone(), if s.machine == "source" { String::new() } else { s.lane.clone() });
        if !groups.contains(&key) {
            groups.push(key);
        }
    }
    for (machine, lane) in groups {
        let side = page.sides.iter().find(|x| x.machine == machine);
        let mut title = machine.clone();
        if let Some(side) = side {
            title.push_str(&format!(" · account {} · {}", side.account, side.region));
        }
        if !lane.is_empty() {
            title.push_str(&format!(" · cluster {lane}"));
        }
        let lane_filter = (machine != "source").then_some(lane.as_str());
        for x in executions_of(page, run, &machine, lane_filter) {
            title.push_str(&format!(" · execution {} {}", x.name, x.status));
            if let Some(e) = &x.error {
                title.push_str(&format!(" ({e})"));
            }
        }
        let _ = write!(
            out,
            "<tbody><tr class=\"group\"><th colspan=\"5\" scope=\"rowgroup\">{}</th></tr>",
            escape(&title)
        );
        for s in spans.iter().filter(|s| s.machine == machine && (machine == "source" || s.lane == lane)) {
            span_row(out, page, s, begin, &pct);
        }
        out.push_str("</tbody>");
    }
    out.push_str("</table></section>\n");
}

fn span_row(out: &mut String, page: &Page, s: &Span, begin: f64, pct: &dyn Fn(f64) -> f64) {
    let key = s.outcome.key();
    let end = s.end.unwrap_or(page.total);
    let (left, width) = (pct(s.start - begin), pct(end - begin) - pct(s.start - begin));
    let lane = if s.machine == "source" && !s.lane.is_empty() {
        format!("<span class=\"lane\">{}</span> ", escape(&s.lane))
    } else {
        String::new()
    };
    let attempts = if s.attempts > 1 {
        format!(" <span class=\"attempts\" title=\"{n} attempts\">×{n}</span>", n = s.attempts)
    } else {
        String::new()
    };
    let retried: Vec<String> = s.errors.iter().map(|(e, n)| format!("{e} ×{n}")).collect();
    let why = if s.outcome == Outcome::Retried {
        format!("<span class=\"why\">{}</span>", escape(&retried.join(", ")))
    } else {
        String::new()
    };
    let _ = write!(
        out,
        "<tr class=\"span {key}\" data-state=\"{state}\" data-outcome=\"{key}\" data-start=\"{start:.3}\" data-end=\"{end:.3}\"{id}>\
         <th scope=\"row\" class=\"name\">{lane}{state}</th><td class=\"start\">{start_text}</td>\
         <td class=\"track\"><div class=\"plot\"><span class=\"bar {key}\" style=\"left:{left:.4}%;width:{width:.4}%\" \
         role=\"img\" aria-label=\"{aria}\"></span></div></td><td class=\"took\">{took}</td>\
         <td class=\"outcome\"><span class=\"tag {key}\">{label}</span>{attempts}{why}</td></tr>",
        state = escape(&s.state),
        id = if s.outcome == Outcome::Failed {
            format!(" id=\"{}\"", escape(&row_id(s)))
        } else {
            String::new()
        },
        start = s.start - begin,
        end = end - begin,
        start_text = offset(s.start - begin),
        aria = escape(&format!(
            "{} from {} to {}",
            s.outcome.label(),
            offset(s.start - begin),
            offset(end - begin)
        )),
        took = seconds(end - s.start),
        label = s.outcome.label(),
    );
    if s.outcome == Outcome::Failed
        && let Some(error) = &s.error
    {
        let _ = write!(
            out,
            "<tr class=\"detail failed\"><td></td><td colspan=\"4\"><strong>{}</strong>: {}</td></tr>",
            escape(error),
            escape(s.cause.as_deref().unwrap_or_default())
        );
    }
}

fn at(started: OffsetDateTime, secs: f64) -> OffsetDateTime {
    started + time::Duration::seconds_f64(secs)
}

type Format = [time::format_description::BorrowedFormatItem<'static>];
const DATE_TIME: &Format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
const DATE_TIME_MS: &Format =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3] UTC");
const TIME_MS: &Format = format_description!("[hour]:[minute]:[second].[subsecond digits:3] UTC");

fn utc(t: OffsetDateTime, format: &Format) -> String {
    t.to_offset(time::UtcOffset::UTC).format(format).unwrap_or_else(|_| t.to_string())
}

/// A duration as text: `0.007 s`, `12.35 s`, `4 min 05 s`, `1 h 02 min`.
pub fn seconds(s: f64) -> String {
    let s = s.max(0.0);
    if s < 10.0 {
        format!("{s:.3} s")
    } else if s < 60.0 {
        format!("{s:.2} s")
    } else if s < 3600.0 {
        let whole = s.round() as u64;
        format!("{} min {:02} s", whole / 60, whole % 60)
    } else {
        let minutes = (s / 60.0).round() as u64;
        format!("{} h {:02} min", minutes / 60, minutes % 60)
    }
}

/// A time since the run's start: `+2.197 s`.
fn offset(s: f64) -> String {
    format!("+{}", seconds(s))
}

/// An axis label: as few decimals as the step needs.
fn tick_label(t: f64, step: f64) -> String {
    if step >= 3600.0 {
        let minutes = (t / 60.0).round() as u64;
        if minutes.is_multiple_of(60) {
            format!("{} h", minutes / 60)
        } else {
            format!("{} h {:02}", minutes / 60, minutes % 60)
        }
    } else if step >= 60.0 {
        format!("{} min", (t / 60.0).round() as u64)
    } else {
        let decimals = if step >= 1.0 { 0 } else { (-step.log10().floor()) as usize };
        format!("{t:.decimals$} s")
    }
}

pub(super) fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Light page, dark text; colours are never the only sign (labels, ×N,
/// patterns); the print rules keep them and turn filled labels into outlined ones.
const STYLE: &str = r#"
:root{color-scheme:light;--ok:#2e7d32;--retried:#8a5200;--retried-bar:#d98a00;--wait:#3b6fa8;--fail:#b71c1c;--path:#8e1b13;--ink:#1a1a1a;--muted:#505050;--rule:#d0d0d0}
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,"Liberation Sans","DejaVu Sans",Arial,sans-serif;color:var(--ink);background:#fff;margin:1.5em 2em}
h1{font-size:1.6em;margin:0 0 .4em}h2{font-size:1.2em;margin:1.2em 0 .4em}h3{font-size:1em;margin:0 0 .3em}
.facts,.fields{display:grid;grid-template-columns:repeat(auto-fill,minmax(32em,1fr));gap:.2em 2em;margin:0}
.facts div,.fields div{display:flex;gap:.5em;min-width:0}
dt{color:var(--muted);flex:none;width:5.5em}.fields dt{width:8.5em}dd{margin:0;font-weight:600;overflow-wrap:anywhere}
.tag{display:inline-block;padding:0 .35em;border-radius:3px;font-size:.85em;font-weight:700;border:1px solid transparent;white-space:nowrap}
.tag.succeeded{color:var(--ok);border-color:var(--ok)}
.tag.retried{color:var(--retried);border-color:var(--retried)}
.tag.waiting{color:var(--wait);border-color:var(--wait)}
.tag.failed{color:#fff;background:var(--fail);border-color:var(--fail)}
.tag.failure-path{color:var(--path);border:1px dashed var(--path)}
.tag.running{color:var(--muted);border:1px dotted var(--muted)}
.result{font-size:.8em;vertical-align:middle}
a{color:#0b4f9e}.failure h3 a{color:inherit}
.jump{margin-top:.4em}.jump a{margin-left:.6em}
.failures{border:2px solid var(--fail);border-left-width:8px;padding:.6em 1em;margin:1em 0;background:#fff}
.failures h2{margin-top:0;color:var(--fail)}
.failure{padding:.5em 0;border-top:1px solid var(--rule)}.failure:first-of-type{border-top:0}
.where{font-weight:400;color:var(--muted)}
.cause{white-space:pre-wrap;overflow-wrap:anywhere;font:12px/1.35 ui-monospace,"Liberation Mono","DejaVu Sans Mono",monospace;background:#fdf3f2;border:1px solid #e9c0bc;padding:.5em;margin:.3em 0}
.failure p{margin:.25em 0}.path{font-weight:600}
table{border-collapse:collapse}
.runs th,.clusters th{text-align:left;padding:.15em 1em .15em 0;color:var(--muted);font-weight:600;white-space:nowrap;vertical-align:top}
.runs td,.clusters td{padding:.15em 1em .15em 0;font-variant-numeric:tabular-nums}
.clusters{margin-top:.6em}.clusters thead th{border-bottom:1px solid var(--rule)}
.legend ul{list-style:none;padding:0;margin:0;display:flex;flex-wrap:wrap;gap:.3em 1.8em;font-size:.92em}
.legend li{display:flex;align-items:center;gap:.4em}
.swatch{position:static;display:inline-block;width:2.2em;height:.9em;flex:none}
.attempts{font-weight:700;font-variant-numeric:tabular-nums}
.run-facts{color:var(--muted);margin:.2em 0 .5em}
.timeline{width:100%;table-layout:fixed;font-size:12px}
.c-name{width:17em}.c-start{width:5.6em}.c-took{width:5.6em}.c-outcome{width:13em}
.timeline th,.timeline td{padding:1px .4em;vertical-align:middle}
.timeline thead th{text-align:left;color:var(--muted);font-weight:600;border-bottom:1px solid #999;vertical-align:bottom}
.timeline .name{text-align:left;font-weight:400;overflow-wrap:anywhere}
.lane{color:var(--muted)}
.start,.took{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.axis{position:relative;height:2.2em}
.ticks{position:absolute;left:.5em;right:.5em;bottom:.15em;height:1.2em}
.tick{position:absolute;bottom:0;transform:translateX(-50%);white-space:nowrap;font-variant-numeric:tabular-nums;color:var(--ink);font-weight:400}
.tick::after{content:"";position:absolute;left:50%;bottom:-.35em;height:.3em;border-left:1px solid #666}
.tick:first-child{transform:none}.tick:first-child::after{left:0}
.tick:last-child{transform:translateX(-100%)}.tick:last-child::after{left:auto;right:0}
.group th{text-align:left;font-weight:700;padding-top:.7em;border-bottom:1px solid var(--rule)}
.timeline td.track{position:relative;height:1.35em;padding:0 .5em;background-image:repeating-linear-gradient(to right,var(--rule) 0 1px,transparent 1px var(--tick));background-origin:content-box;background-clip:content-box}
.bar{position:absolute;top:3px;bottom:3px;min-width:2px;border-radius:2px}
.plot{position:absolute;left:.5em;right:.5em;top:0;bottom:0}
.bar.succeeded{background:var(--ok)}
.bar.retried{background:repeating-linear-gradient(90deg,var(--retried-bar) 0 5px,#f3c56b 5px 7px);box-shadow:inset 0 0 0 1px var(--retried)}
.bar.waiting{background:repeating-linear-gradient(45deg,var(--wait) 0 3px,#a9c3e3 3px 6px)}
.bar.failed{background:repeating-linear-gradient(135deg,var(--fail) 0 3px,#e0605a 3px 5px);min-width:6px;outline:2px solid var(--fail)}
.bar.failure-path{background:repeating-linear-gradient(45deg,#f1b0ab 0 3px,#fff 3px 6px);box-shadow:inset 0 0 0 1px var(--path)}
.bar.running{background:repeating-linear-gradient(90deg,#9e9e9e 0 2px,#fff 2px 4px)}
.swatch.bar{position:static}
tr.span.failed{background:#fdecea}
tr.span.failed .name{box-shadow:inset 5px 0 0 var(--fail);padding-left:.8em;font-weight:700}
tr.detail.failed td{background:#fdecea;padding:.1em .4em .4em;overflow-wrap:anywhere;white-space:pre-wrap}
tr.span.failure-path .name{box-shadow:inset 5px 0 0 #e8a19b;padding-left:.8em}
.why{display:block;font-size:.9em;color:var(--muted)}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
@media print{
  @page{size:A4 landscape;margin:10mm}
  body{margin:0;font-size:10pt}
  .bar,.swatch,.track,tr.span.failed,tr.detail.failed td,.cause{print-color-adjust:exact;-webkit-print-color-adjust:exact}
  .tag.failed{color:var(--fail);background:none;border-width:2px}
  .failures,.failure,.legend,header,tr,.target{break-inside:avoid}
  h2,h3,.group{break-after:avoid}
  .run{break-before:page}
  .timeline{font-size:8.5pt}
}
"#;
