//! The text timeline printed after each run.

use std::fmt::Write as _;

use super::record::{Outcome, Span, folded};

/// A text Gantt chart of one run: a bar per state on a shared time axis,
/// its duration, its attempts (`x8`; a polling loop's visits fold into one
/// row per state, see [`folded`]) and, for a state that failed, `FAILED`
/// with its error and cause on the next line; states of a failure path say so.
pub fn text_timeline(spans: &[Span], run: usize) -> String {
    let spans = folded(spans, run);
    let (Some(first), Some(last)) = (
        spans.iter().map(|s| s.start).reduce(f64::min),
        spans.iter().map(|s| s.end.unwrap_or(s.start)).reduce(f64::max),
    ) else {
        return String::new();
    };
    let width = 40.0;
    let span = (last - first).max(1e-9);
    let label_width = spans.iter().map(|s| s.label().len()).max().unwrap_or(0).clamp(26, 48);
    let mut out = String::new();
    for s in &spans {
        let end = s.end.unwrap_or(last);
        // A state entered at the very end (the Fail state) still gets the last column.
        let a = ((((s.start - first) / span) * width).floor() as usize).min(width as usize - 1);
        let b = ((((end - first) / span) * width).ceil() as usize).clamp(a + 1, width as usize);
        let bar: String = (0..width as usize).map(|i| if i >= a && i < b { '#' } else { '.' }).collect();
        let tries = if s.attempts > 1 { format!(" x{}", s.attempts) } else { String::new() };
        let mark = match s.outcome {
            Outcome::Failed => " FAILED",
            Outcome::FailurePath => " (failure path)",
            Outcome::Running => " (running)",
            _ => "",
        };
        let _ = writeln!(
            out,
            "  {:<6} {:<label_width$} |{bar}| {:>7.3}s{tries}{mark}",
            s.machine,
            s.label(),
            end - s.start
        );
        if s.outcome == Outcome::Failed
            && let Some(error) = &s.error
        {
            let cause = s.cause.as_deref().unwrap_or_default();
            let _ = writeln!(out, "  {:<6} {:<label_width$}  {error}: {cause}", "", "");
        }
    }
    out
}
