//! The three views of a known drill ([`fixture`]): the recorded spans,
//! the text timeline, the JSON `states` and the HTML page must each show
//! the states at their times, the failed state as failed with its error and
//! cause, and the failure path after it.

use serde_json::{Value, json};

use super::fixture::{self, Known, SANITY_CAUSE};
use super::html::*;
use super::record::*;
use super::text::text_timeline;

fn span<'a>(record: &'a Record, run: usize, state: &str) -> &'a Span {
    record
        .spans
        .iter()
        .find(|s| s.run == run && s.state == state)
        .unwrap_or_else(|| panic!("no {state} in run {run}"))
}

#[test]
fn a_caught_failure_is_failed_and_what_follows_is_its_failure_path() {
    let record = fixture::record();
    // The Task whose error a Catch took: failed, not succeeded (its state did exit).
    let sanity = span(&record, 2, "SanityCheck");
    assert_eq!((sanity.status.as_str(), sanity.outcome), ("failed", Outcome::Failed));
    assert_eq!(sanity.error.as_deref(), Some("SanityCheckFailed"));
    assert_eq!(sanity.cause.as_deref(), Some(SANITY_CAUSE), "the Lambda cause's message");
    assert_eq!((sanity.attempts, sanity.start, sanity.end), (1, 13.7, Some(13.72)));
    // What ran after it in that execution is its failure path; the Fail state failed.
    for state in ["OnSanityCheckError", "RollBackSwap", "CleanUpTempCluster", "NotifyFailure"] {
        let s = span(&record, 2, state);
        assert_eq!(
            (s.outcome, s.failure_path, s.status.as_str()),
            (Outcome::FailurePath, true, "succeeded"),
            "{state}"
        );
    }
    let fail = span(&record, 2, "Failed");
    assert_eq!((fail.outcome, fail.end), (Outcome::Failed, Some(14.19)));
    // The same states of the successful run, and every other state, are not.
    assert_eq!(span(&record, 1, "SanityCheck").outcome, Outcome::Succeeded);
    assert_eq!(span(&record, 2, "Swap").outcome, Outcome::Succeeded);
    let failed: Vec<(usize, &str)> =
        record.spans.iter().filter(|s| s.status == "failed").map(|s| (s.run, s.state.as_str())).collect();
    assert_eq!(failed, [(2, "SanityCheck"), (2, "Failed")]);
}

#[test]
fn retries_and_polls_are_told_apart_and_counted() {
    let record = fixture::record();
    let encrypt = span(&record, 1, "EncryptCopy");
    assert_eq!((encrypt.outcome, encrypt.attempts), (Outcome::Retried, 3));
    assert_eq!(encrypt.errors.get("Throttled"), Some(&2));
    assert_eq!(encrypt.status, "succeeded");
    let poll = span(&record, 1, "WaitForSourceSnapshot");
    assert_eq!((poll.outcome, poll.attempts), (Outcome::Waiting, 8));
    assert_eq!(poll.errors.get("ResourceNotReady"), Some(&7));
    assert_eq!((poll.start, poll.end), (2.07, Some(3.1)));
    assert_eq!(span(&record, 1, "Share").outcome, Outcome::Succeeded);
    // Lanes: the Map's states carry their cluster, the machine's own states none.
    assert_eq!(poll.lane, "orders");
    assert_eq!(span(&record, 1, "Copies").lane, "");
}

#[test]
fn each_attempt_is_recorded_from_its_scheduling_to_its_end() {
    let record = fixture::record();
    // Eight polls at even steps from 2.07 to 3.1 s: the failed ones end
    // half a step after they were scheduled, the last succeeds at the end.
    let poll = span(&record, 1, "WaitForSourceSnapshot");
    let step = (3.1 - 2.07) / 8.0;
    assert_eq!(poll.busy.len(), 8);
    for (i, [from, to]) in poll.busy.iter().enumerate() {
        let at = 2.07 + step * i as f64;
        let length = if i == 7 { step } else { step / 2.0 };
        assert!((from - at).abs() < 1e-9 && (to - (at + length)).abs() < 1e-9, "attempt {i}: {from}..{to}");
    }
    // States that call nothing have none.
    assert!(span(&record, 1, "Report").busy.is_empty());
}

/// The text timeline's line of `label` (`lane state` or `state`).
fn line<'a>(text: &'a str, machine: &str, label: &str) -> &'a str {
    text.lines()
        .find(|l| {
            let mut words = l.split_whitespace();
            words.next() == Some(machine) && l.contains(&format!(" {label} "))
        })
        .unwrap_or_else(|| panic!("no line for {machine} {label} in\n{text}"))
}

#[test]
fn text_timeline_places_each_state_and_says_what_failed() {
    let record = fixture::record();
    let text = text_timeline(&record.spans, 2);
    // Run 2 spans 8.000 s to 14.190 s on 40 columns: 0.15475 s a column.
    let bar = |l: &str| l.split('|').nth(1).unwrap_or_default().to_owned();
    let first = line(&text, "source", "HasClusterList");
    assert!(bar(first).starts_with("#."), "{first}");
    let sanity = line(&text, "target", "orders SanityCheck");
    assert_eq!(bar(sanity).find('#'), Some(36), "13.700 s is column 36: {sanity}");
    assert!(sanity.ends_with("  0.020s FAILED"), "{sanity}");
    let next = text.lines().skip_while(|l| *l != sanity).nth(1).unwrap_or_default();
    assert_eq!(next.trim(), format!("SanityCheckFailed: {SANITY_CAUSE}"));
    assert!(line(&text, "target", "orders RollBackSwap").ends_with("  0.279s x2 (failure path)"), "{text}");
    assert!(line(&text, "target", "orders Failed").ends_with("FAILED"), "{text}");
    assert!(bar(line(&text, "target", "orders Failed")).ends_with('#'), "the Fail state ends the run");
    // Run 1: no failure, retries counted.
    let one = text_timeline(&record.spans, 1);
    assert!(!one.contains("FAILED") && !one.contains("failure path"), "{one}");
    assert!(line(&one, "source", "orders WaitForSourceSnapshot").ends_with("  1.030s x8"), "{one}");
    assert!(line(&one, "source", "orders EncryptCopy").ends_with("  0.500s x3"), "{one}");
    assert_eq!(text_timeline(&record.spans, 3), "");
}

#[test]
fn json_states_carry_times_outcomes_errors_and_causes() {
    let record = fixture::record();
    let states = serde_json::to_value(&record.spans).expect("json");
    let find = |run: u64, state: &str| -> Value {
        states
            .as_array()
            .and_then(|a| a.iter().find(|s| s["run"] == run && s["state"] == state).cloned())
            .unwrap_or_else(|| panic!("{state} of run {run} not in {states:#}"))
    };
    assert_eq!(
        find(2, "SanityCheck"),
        json!({
            "machine": "target", "run": 2, "lane": "orders", "state": "SanityCheck", "type": "Task",
            "start": 13.7, "end": 13.72, "attempts": 1, "busy": [[13.7, 13.71]], "status": "failed", "outcome": "failed",
            "error": "SanityCheckFailed", "cause": SANITY_CAUSE, "errors": {"SanityCheckFailed": 1},
        })
    );
    assert_eq!(find(2, "RollBackSwap")["failurePath"], true);
    assert_eq!(find(2, "RollBackSwap")["outcome"], "failurePath");
    assert_eq!(find(1, "EncryptCopy")["outcome"], "retried");
    assert_eq!(find(1, "EncryptCopy")["errors"], json!({"Throttled": 2}));
    let poll = find(1, "WaitForSourceSnapshot");
    assert_eq!((poll["outcome"].as_str(), poll["attempts"].as_u64()), (Some("waiting"), Some(8)));
    assert_eq!((poll["start"].as_f64(), poll["end"].as_f64()), (Some(2.07), Some(3.1)));
    let copies = find(1, "Copies");
    assert!(
        copies.get("lane").is_none() && copies.get("failurePath").is_none() && copies.get("error").is_none()
    );
    assert_eq!(copies["type"], "Map");
}

/// Every one of `wants` is in `text`.
fn contains_all(text: &str, wants: &[&str]) {
    for want in wants {
        assert!(text.contains(want), "{want}\nnot in\n{text}");
    }
}

/// The HTML between `from` and the next `to` after it.
fn between<'a>(html: &'a str, from: &str, to: &str) -> &'a str {
    let start = html.find(from).unwrap_or_else(|| panic!("{from} not in the page"));
    let rest = &html[start..];
    &rest[..rest.find(to).map_or(rest.len(), |i| i + to.len())]
}

/// The `<tr>` of `state` in run `run` of the page.
fn row<'a>(html: &'a str, run: usize, state: &str) -> &'a str {
    let section = between(html, &format!("<section class=\"run\" id=\"run-{run}\""), "</section>");
    between(section, &format!("data-state=\"{state}\""), "</tr>")
}

#[test]
fn html_rows_place_each_state_on_the_axis_and_mark_the_failed_one() {
    let known = Known::new();
    let html = html_page(&known.page());
    // Run 2: 8.000 s to 14.190 s, ticks every second, axis 0..7 s.
    let sanity = row(&html, 2, "SanityCheck");
    assert!(sanity.contains("data-outcome=\"failed\" data-start=\"5.700\" data-end=\"5.720\""), "{sanity}");
    assert!(sanity.contains("style=\"left:81.4286%;width:0.2857%\""), "{sanity}");
    assert!(sanity.contains("<td class=\"start\">+5.700 s</td>"), "{sanity}");
    assert!(sanity.contains("<td class=\"took\">0.020 s</td>"), "{sanity}");
    assert!(sanity.contains("<span class=\"tag failed\">FAILED</span>"), "{sanity}");
    // Its error and cause on the row below, in the page, not in a tooltip.
    let after = &html[html.find(sanity).unwrap_or_default() + sanity.len()..];
    let detail = between(after, "<tr", "</tr>");
    assert!(detail.starts_with("<tr class=\"detail failed\">"), "{detail}");
    assert!(
        detail.contains(&format!("<strong>SanityCheckFailed</strong>: {}", escape(SANITY_CAUSE))),
        "{detail}"
    );
    let path = row(&html, 2, "RollBackSwap");
    assert!(path.contains("data-outcome=\"failure-path\""), "{path}");
    assert!(path.contains("<span class=\"attempts\" title=\"2 attempts\">×2</span>"), "{path}");
    assert!(row(&html, 2, "Failed").contains("data-outcome=\"failed\""));
    // Run 1 has its own axis (2.000 s to 7.850 s: 0..6 s) and no failure.
    let poll = row(&html, 1, "WaitForSourceSnapshot");
    assert!(poll.contains("data-outcome=\"waiting\" data-start=\"0.070\" data-end=\"1.100\""), "{poll}");
    assert!(poll.contains("style=\"left:1.1667%;width:17.1667%\""), "{poll}");
    assert!(poll.contains("×8"), "{poll}");
    let retried = row(&html, 1, "EncryptCopy");
    assert!(retried.contains("<span class=\"tag retried\">retried</span>"), "{retried}");
    assert!(retried.contains("Throttled ×2"), "{retried}");
    let one = between(&html, "<section class=\"run\" id=\"run-1\"", "</section>");
    assert!(!one.contains("data-outcome=\"failed\""), "run 1 has no failed state");
}

#[test]
fn html_axis_has_round_ticks_for_each_run() {
    let html = html_page(&Known::new().page());
    let ticks = |run: usize| -> Vec<String> {
        let thead = between(&html, &format!("id=\"run-{run}\""), "</thead>");
        thead
            .split("<span class=\"tick\" ")
            .skip(1)
            .map(|t| t[..t.find("</span>").unwrap_or(0)].to_owned())
            .collect()
    };
    let two = ticks(2);
    assert_eq!(two.len(), 8, "{two:?}");
    assert_eq!(two[0], "style=\"left:0.0000%\">0 s");
    assert_eq!(two[1], "style=\"left:14.2857%\">1 s");
    assert_eq!(two[7], "style=\"left:100.0000%\">7 s");
    assert_eq!(ticks(1).len(), 7, "run 1: 0..6 s");
    assert!(html.contains("--tick:14.2857%"), "gridlines every tick");
    assert_eq!(tick_step(6.19), 1.0);
    assert_eq!(tick_step(0.35), 0.05);
    assert_eq!(tick_step(45.0), 10.0);
    assert_eq!(tick_step(1900.0), 300.0);
    assert_eq!(tick_step(5.0 * 3600.0), 3600.0);
}

#[test]
fn html_says_first_what_failed_with_error_cause_and_failure_path() {
    let html = html_page(&Known::new().page());
    let failures = between(&html, "<section class=\"failures\"", "</section>");
    assert!(
        html.find("class=\"failures\"") < html.find("class=\"run\""),
        "what failed comes before the timeline"
    );
    let article = between(failures, "<article class=\"failure\" data-state=\"SanityCheck\"", "</article>");
    contains_all(
        article,
        &[
            "run 2 · target · cluster orders",
            "<strong>SanityCheckFailed</strong> after 1 attempt; entered at 20:24:39.700 UTC, +5.700 s into run 2; 0.020 s in the state",
            &format!("<pre class=\"cause\">{}</pre>", escape(SANITY_CAUSE)),
            "Failure path: OnSanityCheckError → RollBackSwap → CleanUpTempCluster → NotifyFailure → Failed (FAILED)",
            "target execution run-1795638266-2-0 (222222222222 us-west-1) ended FAILED: SanityCheckFailed",
        ],
    );
    assert_eq!(failures.matches("<article").count(), 1, "one failure: {failures}");
    // Its name links to its row in the timeline.
    assert!(article.contains("<a href=\"#run-2-orders-SanityCheck\">SanityCheck</a>"), "{article}");
    assert!(row(&html, 2, "SanityCheck").contains("id=\"run-2-orders-SanityCheck\""));
    assert!(html.contains("<title>aurora-dr drill: FAILED</title>"));
}

#[test]
fn html_header_states_accounts_regions_date_run_ids_and_version() {
    let html = html_page(&Known::new().page());
    let header = between(&html, "<header>", "</header>");
    contains_all(
        header,
        &[
            "<dt>started</dt><dd>2026-11-25 20:24:26 UTC</dd>",
            "<dt>duration</dt><dd>14.30 s</dd>",
            "<dt>source</dt><dd>account 111111111111 · region us-west-2 · cluster orders</dd>",
            "<dt>target</dt><dd>account 222222222222 · region us-west-1 · cluster orders-dr</dd>",
            "<dt>run ids</dt><dd>run-1795638266-1, run-1795638266-2</dd>",
            &format!("<dt>tool</dt><dd>aurora-dr {}</dd>", env!("CARGO_PKG_VERSION")),
            "<span class=\"result tag failed\">FAILED</span>",
            "<a href=\"#run-1\">run 1 SUCCEEDED</a> <a href=\"#run-2\">run 2 FAILED</a>",
        ],
    );
    let run2 = between(&html, "id=\"run-2\"", "</thead>");
    assert!(run2.contains("started 2026-11-25 20:24:34.000 UTC · 6.190 s"), "{run2}");
    let group = between(&html, "id=\"run-2\"", "</section>");
    assert!(
        group.contains(
            "target · account 222222222222 · us-west-1 · cluster orders · execution run-1795638266-2-0 FAILED (SanityCheckFailed)"
        ),
        "{group}"
    );
}

#[test]
fn html_shows_the_target_cluster_as_fields_and_a_legend() {
    let html = html_page(&Known::new().page());
    let target = between(&html, "<section class=\"target\"", "</section>");
    contains_all(
        target,
        &[
            "<dt>identifier</dt><dd>orders-dr</dd>",
            "<dt>status</dt><dd>available</dd>",
            "<dt>writer endpoint</dt><dd>orders-dr.cluster-axol02xwuarv.us-west-1.rds.amazonaws.com</dd>",
            "<dt>instances</dt><dd>orders-dr-1</dd>",
            "<dt>restored by run</dt><dd>run-1795638266-1-0</dd>",
        ],
    );
    assert!(!html.contains("{&quot;clusterId") && !html.contains("\"clusterId\""), "no raw JSON");
    let legend = between(&html, "<section class=\"legend\"", "</section>");
    for o in Outcome::ALL {
        assert!(legend.contains(&format!("<span class=\"tag {}\">{}</span>", o.key(), o.label())), "{o:?}");
    }
}

#[test]
fn html_is_self_contained_escaped_and_printable() {
    let mut known = Known::new();
    known.record.spans[0].state = "Create<Snapshot>".into();
    known.clusters.rows[0][1] = "orders<1>".into();
    let html = html_page(&known.page());
    assert!(html.contains("Create&lt;Snapshot&gt;") && !html.contains("Create<Snapshot>"));
    assert!(html.contains("<td>orders&lt;1&gt;</td>"), "{html}");
    for external in ["<script", "http://", "https://", "src=", "url(", "@import", "<link"] {
        assert!(!html.contains(external), "{external} in a self-contained page");
    }
    let print = between(&html, "@media print{", "\n}");
    for rule in [
        "print-color-adjust:exact",
        ".tag.failed{color:var(--fail);background:none",
        ".run{break-before:page}",
        "tr,",
    ] {
        assert!(print.contains(rule), "{rule} not in the print rules: {print}");
    }
}

#[test]
fn durations_read_as_text() {
    assert_eq!(seconds(0.007), "0.007 s");
    assert_eq!(seconds(12.345), "12.35 s");
    assert_eq!(seconds(245.0), "4 min 05 s");
    assert_eq!(seconds(3720.0), "1 h 02 min");
}

#[test]
fn target_fields_skip_what_is_missing() {
    assert_eq!(
        target_fields(&json!({"clusterId": "orders-dr", "status": "absent", "endpoint": null})),
        [("identifier", "orders-dr".to_owned()), ("status", "absent".to_owned())]
    );
}

#[test]
fn lambda_causes_are_shortened() {
    assert_eq!(short_cause(r#"{"errorType":"X","errorMessage":"m"}"#), "m");
    assert_eq!(short_cause("plain"), "plain");
}

/// A predicted wait's loop: `WaitForTargetSnapshot` (Task), `Ready` (Choice)
/// and `NextPoll` (Wait), entered again on each of three polls.
fn polling_loop() -> Vec<Span> {
    let mut spans = Vec::new();
    for (i, at) in [10.0, 12.0, 20.0].into_iter().enumerate() {
        let mut task = Span::entered("source", 1, "orders", "WaitForTargetSnapshot", "Task", at);
        task.attempt_scheduled(at);
        task.attempt_ended(at + 0.1);
        task.exit(at + 0.1);
        let mut choice = Span::entered("source", 1, "orders", "Ready", "Choice", at + 0.1);
        choice.exit(at + 0.1);
        spans.extend([task, choice]);
        if i < 2 {
            let mut wait = Span::entered("source", 1, "orders", "NextPoll", "Wait", at + 0.1);
            wait.exit(if i == 0 { 12.0 } else { 20.0 });
            spans.push(wait);
        }
    }
    let mut share = Span::entered("source", 1, "orders", "Share", "Task", 20.1);
    share.attempt_scheduled(20.1);
    share.attempt_ended(20.2);
    share.exit(20.2);
    spans.push(share);
    spans
}

#[test]
fn a_polling_loop_shows_as_one_row_per_state_counting_its_visits() {
    let spans = polling_loop();
    let rows = folded(&spans, 1);
    let names: Vec<&str> = rows.iter().map(|s| s.state.as_str()).collect();
    assert_eq!(names, ["WaitForTargetSnapshot", "Ready", "NextPoll", "Share"]);
    let task = &rows[0];
    assert_eq!((task.start, task.end, task.attempts, task.outcome), (10.0, Some(20.1), 3, Outcome::Waiting));
    assert_eq!((rows[2].attempts, rows[2].end), (2, Some(20.0)), "two Waits");
    assert_eq!((rows[3].attempts, rows[3].outcome), (1, Outcome::Succeeded), "a single visit is as it was");
    assert_eq!(folded(&spans, 2).len(), 0, "another run");
    let text = text_timeline(&spans, 1);
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(line(&text, "source", "orders WaitForTargetSnapshot").ends_with("10.100s x3"), "{text}");
    assert!(line(&text, "source", "orders NextPoll").ends_with("x2"), "{text}");
}

#[test]
fn a_failed_visit_of_a_loop_keeps_its_own_row() {
    let mut spans = polling_loop();
    let mut failed = Span::entered("source", 1, "orders", "WaitForTargetSnapshot", "Task", 21.0);
    failed.attempt_scheduled(21.0);
    failed.attempt_failed("ResourceNotReady", "gave up");
    failed.attempt_ended(21.1);
    failed.exit(21.1);
    spans.push(failed);
    let rows = folded(&spans, 1);
    let waits: Vec<Outcome> =
        rows.iter().filter(|s| s.state == "WaitForTargetSnapshot").map(|s| s.outcome).collect();
    assert_eq!(waits, [Outcome::Waiting, Outcome::Failed]);
}

/// A callback task's attempt is the drill's own processing until its
/// invocation returns (`TaskSubmitted`); the wait for its token is not.
#[test]
fn a_callback_attempt_is_busy_until_submitted() {
    let mut s = Span::entered("target", 1, "", "WaitForTempCluster", "Task", 1.0);
    s.attempt_scheduled(1.0);
    s.attempt_submitted(1.1);
    s.attempt_ended(5.0);
    assert_eq!(s.busy, [[1.0, 1.1]]);
    s.attempt_scheduled(6.0);
    s.attempt_ended(6.2);
    assert_eq!(s.busy, [[1.0, 1.1], [6.0, 6.2]]);
}
