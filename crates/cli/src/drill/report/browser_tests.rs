//! The HTML timeline in a real browser: headless Chromium (Debian's package,
//! installed by `scripts/browser.sh install`) lays out the known drill's page
//! ([`fixture`]); the test compares what it shows to the report: every state
//! drawn where its start and end put it on the run's axis, the failed states
//! marked and their error and cause on screen, the axis ticks where their
//! times are, the header's facts, readable contrast, and the same again with
//! the print stylesheet applied. It also prints the page to PDF (one page
//! break per run) and takes a screenshot (kept when `AURORA_DR_SCREENSHOT`
//! names a file).
//!
//! Without Chromium the test fails, naming the command that installs it.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use super::fixture::{Known, SANITY_CAUSE};
use super::html::{VERSION, html_page};
use super::record::{Outcome, Record, Span};

/// Generous: a cold Chromium start on a busy two-core machine takes seconds.
const TIMEOUT: Duration = Duration::from_secs(120);

/// Injected into a copy of the page (the page itself has no script): lays
/// out what a reader sees and writes it as JSON into `<pre id="measured">`.
const MEASURE: &str = r#"
(() => {
  const rect = e => { const r = e.getBoundingClientRect(); return {x: r.left, y: r.top, w: r.width, h: r.height}; };
  const shown = e => {
    const r = e.getBoundingClientRect(), s = getComputedStyle(e);
    return r.width > 0 && r.height > 0 && s.visibility === 'visible' && s.display !== 'none' && +s.opacity > 0;
  };
  const rgb = c => {
    const m = /rgba?\(([^)]+)\)/.exec(c);
    if (!m) return null;
    const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const lum = ({r, g, b}) => {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  // The colour behind a text: the nearest painted background (none: white);
  // null when that background is an image or pattern.
  const behind = e => {
    for (; e; e = e.parentElement) {
      const s = getComputedStyle(e);
      if (s.backgroundImage !== 'none') return null;
      const c = rgb(s.backgroundColor);
      if (c && c.a > 0) return c;
    }
    return {r: 255, g: 255, b: 255, a: 1};
  };
  const texts = [], boxes = [];
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n; (n = walk.nextNode());) {
    const text = n.textContent.trim(), e = n.parentElement;
    if (!text || !shown(e) || e.closest('.sr')) continue;
    const range = document.createRange();
    range.selectNodeContents(n);
    for (const r of range.getClientRects()) if (r.width > 0 && r.height > 0) boxes.push({text, r});
    const fg = rgb(getComputedStyle(e).color), bg = behind(e);
    if (!fg || !bg) { texts.push({text, ratio: 0}); continue; }
    const [hi, lo] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    texts.push({text: text.slice(0, 80), ratio: (hi + 0.05) / (lo + 0.05)});
  }
  // Text drawn over other text (a column too narrow, labels too dense).
  const overlaps = [];
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const a = boxes[i].r, b = boxes[j].r;
    const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
    const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
    if (w > 1 && h > 1) overlaps.push([boxes[i].text.slice(0, 40), boxes[j].text.slice(0, 40)]);
  }
  const out = {
    width: innerWidth,
    scrollWidth: document.documentElement.scrollWidth,
    header: document.querySelector('header').innerText,
    failures: [...document.querySelectorAll('.failure')].map(a => ({shown: shown(a), text: a.innerText})),
    runs: [...document.querySelectorAll('section.run')].map(sec => ({
      id: sec.id,
      plot: rect(sec.querySelector('.plot')),
      ticks: [...sec.querySelectorAll('.tick')].map(t => ({label: t.textContent, rect: rect(t)})),
      rows: [...sec.querySelectorAll('tr.span')].map(tr => {
        const bar = tr.querySelector('.bar'), next = tr.nextElementSibling;
        return {
          state: tr.dataset.state, outcome: tr.dataset.outcome, start: +tr.dataset.start,
          bar: rect(bar), barShown: shown(bar), plot: rect(tr.querySelector('.plot')),
          background: getComputedStyle(tr).backgroundColor, text: tr.innerText,
          detail: next && next.classList.contains('detail') ? {shown: shown(next), text: next.innerText} : null,
        };
      }),
    })),
    legend: document.querySelector('.legend').innerText,
    target: document.querySelector('.target').innerText,
    texts: texts.length,
    lowContrast: texts.filter(t => t.ratio < 4.5),
    overlaps,
  };
  const pre = document.createElement('pre');
  pre.id = 'measured';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
"#;

/// The Chromium binary, from `scripts/browser.sh path`; fails the test when
/// there is none.
fn chromium() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/browser.sh");
    let out = Command::new("bash").arg(&script).arg("path").output().expect("run scripts/browser.sh");
    assert!(
        out.status.success(),
        "the HTML timeline's browser test needs Chromium: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Runs headless Chromium with a fresh profile on `page`; kills it after [`TIMEOUT`].
fn run_chromium(bin: &Path, args: &[String], page: &Path) -> Output {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let pid = child.id();
    let (mut stdout, mut stderr) = (child.stdout.take(), child.stderr.take());
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let errs = std::thread::spawn(move || {
            if let Some(e) = stderr.as_mut() {
                let _ = e.read_to_end(&mut err);
            }
            err
        });
        if let Some(o) = stdout.as_mut() {
            let _ = o.read_to_end(&mut out);
        }
        let _ = tx.send((out, errs.join().unwrap_or_default()));
    });
    let Ok((stdout, stderr)) = rx.recv_timeout(TIMEOUT) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("chromium (pid {pid}) did not finish within {TIMEOUT:?}");
    };
    let status = child.wait().expect("wait for chromium");
    let _ = reader.join();
    Output { status, stdout, stderr }
}

/// What Chromium writes with `flag=out` (`--print-to-pdf`, `--screenshot`) for `page`.
fn chromium_output(bin: &Path, page: &Path, flag: &str, out: &Path, more: &[&str]) -> Vec<u8> {
    let mut args = vec![format!("{flag}={}", out.display())];
    args.extend(more.iter().map(|a| (*a).to_owned()));
    let run = run_chromium(bin, &args, page);
    std::fs::read(out)
        .unwrap_or_else(|e| panic!("no {flag} output ({e}): {}", String::from_utf8_lossy(&run.stderr)))
}

/// The page with [`MEASURE`] appended, laid out at `width` px; with
/// `print`, the print stylesheet applies on screen too.
fn measure(bin: &Path, dir: &Path, html: &str, width: u32, print: bool) -> Value {
    let mut html = html.replace("</body>", &format!("<script>{MEASURE}</script></body>"));
    if print {
        html = html.replace("@media print{", "@media all{");
    }
    let page = dir.join(if print { "measure-print.html" } else { "measure.html" });
    std::fs::write(&page, html).expect("write page");
    let out = run_chromium(bin, &[format!("--window-size={width},1200"), "--dump-dom".into()], &page);
    let dom = String::from_utf8_lossy(&out.stdout);
    let Some(start) = dom.find("<pre id=\"measured\">") else {
        panic!(
            "no measurement in the DOM (status {}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let json = &dom[start + "<pre id=\"measured\">".len()..];
    let json = &json[..json.find("</pre>").expect("end of measurement")];
    let json =
        json.replace("&lt;", "<").replace("&gt;", ">").replace("&nbsp;", "\u{a0}").replace("&amp;", "&");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("measurement: {e}: {json}"))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// The first and last instant of a run, from the record.
fn run_bounds(record: &Record, run: usize) -> (f64, f64) {
    let spans = record.spans.iter().filter(|s| s.run == run);
    let execs = record.executions.iter().filter(|x| x.run == run);
    let begin = spans.clone().map(|s| s.start).chain(execs.clone().map(|x| x.start)).fold(f64::MAX, f64::min);
    let end = spans.filter_map(|s| s.end).chain(execs.filter_map(|x| x.end)).fold(f64::MIN, f64::max);
    (begin, end)
}

/// What the browser laid out agrees with the record.
fn check(m: &Value, record: &Record, mode: &str) {
    assert!(f(&m["scrollWidth"]) <= f(&m["width"]), "{mode}: the page is wider than the window: {m}");
    // The header's facts.
    let header = text(&m["header"]);
    for want in
        ["FAILED", "2026-11-25 20:24:26 UTC", "111111111111", "us-west-2", "222222222222", "us-west-1"]
    {
        assert!(header.contains(want), "{mode}: {want} not in the header:\n{header}");
    }
    for x in &record.executions {
        if x.machine == "source" {
            assert!(header.contains(&x.name), "{mode}: run id {} not in the header", x.name);
        }
    }
    assert!(header.contains(&format!("aurora-dr {VERSION}")), "{mode}: version not in the header:\n{header}");
    // What failed, on screen.
    let failures = m["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 1, "{mode}: {failures:?}");
    assert_eq!(failures[0]["shown"], true, "{mode}");
    let story = text(&failures[0]["text"]);
    for want in [
        "FAILED",
        "SanityCheck",
        "SanityCheckFailed",
        SANITY_CAUSE,
        "Failure path: OnSanityCheckError → RollBackSwap → CleanUpTempCluster → NotifyFailure → Failed",
    ] {
        assert!(story.contains(want), "{mode}: {want} not in what failed:\n{story}");
    }
    assert!(
        text(&m["target"]).contains("orders-dr.cluster-axol02xwuarv.us-west-1.rds.amazonaws.com"),
        "{mode}"
    );
    for label in ["ok", "retried", "waited", "FAILED", "failure path"] {
        assert!(text(&m["legend"]).contains(label), "{mode}: {label} not in the legend");
    }
    let low = m["lowContrast"].as_array().expect("contrast");
    assert!(f(&m["texts"]) > 100.0, "{mode}: too little text measured");
    assert!(low.is_empty(), "{mode}: text below 4.5:1 contrast: {low:#?}");

    let overlaps = m["overlaps"].as_array().expect("overlaps");
    assert!(overlaps.is_empty(), "{mode}: text drawn over text: {overlaps:?}");

    let runs = m["runs"].as_array().expect("runs");
    let numbers: Vec<usize> = {
        let mut n: Vec<usize> = record.spans.iter().map(|s| s.run).collect();
        n.dedup();
        n
    };
    assert_eq!(runs.len(), numbers.len(), "{mode}: one timeline per run");
    for (run, shown) in numbers.into_iter().zip(runs) {
        assert_eq!(text(&shown["id"]), format!("run-{run}"));
        check_run(shown, record, run, mode);
    }
}

fn check_run(shown: &Value, record: &Record, run: usize, mode: &str) {
    let (begin, end) = run_bounds(record, run);
    let plot = &shown["plot"];
    let (x0, width) = (f(&plot["x"]), f(&plot["w"]));
    assert!(width > 300.0, "{mode}: run {run}: the plot is {width} px wide");
    // Ticks: 0, 1, 2, ... s, evenly spaced over the plot, the last at or after the run's end.
    let ticks = shown["ticks"].as_array().expect("ticks");
    let values: Vec<f64> =
        ticks.iter().map(|t| text(&t["label"]).trim_end_matches(" s").parse().unwrap_or(f64::NAN)).collect();
    let axis = *values.last().expect("ticks");
    assert!(
        values.len() >= 3 && axis >= end - begin,
        "{mode}: run {run}: ticks {values:?} for {}",
        end - begin
    );
    for (i, (t, v)) in ticks.iter().zip(&values).enumerate() {
        let r = &t["rect"];
        // The first label starts at its tick, the last ends at it, the others centre on it.
        let anchor = match i {
            0 => f(&r["x"]),
            _ if i == ticks.len() - 1 => f(&r["x"]) + f(&r["w"]),
            _ => f(&r["x"]) + f(&r["w"]) / 2.0,
        };
        let want = x0 + v / axis * width;
        assert!((anchor - want).abs() <= 1.5, "{mode}: run {run}: tick {v} s at {anchor} px, not {want}");
    }
    // Every state of the run, where its times put it.
    let rows = shown["rows"].as_array().expect("rows");
    let spans: Vec<&Span> = record.spans.iter().filter(|s| s.run == run).collect();
    assert_eq!(rows.len(), spans.len(), "{mode}: run {run}: one row per state");
    for s in spans {
        let row = rows
            .iter()
            .find(|r| r["state"] == s.state.as_str() && (f(&r["start"]) - (s.start - begin)).abs() < 5e-4)
            .unwrap_or_else(|| panic!("{mode}: run {run}: no row for {} at {}", s.state, s.start));
        let bar = &row["bar"];
        let left = x0 + (s.start - begin) / axis * width;
        let right = x0 + (s.end.unwrap_or(end) - begin) / axis * width;
        let what = format!("{mode}: run {run} {}", s.state);
        assert!((f(&bar["x"]) - left).abs() <= 1.5, "{what}: bar at {} px, not {left}", f(&bar["x"]));
        let min = if s.status == "failed" { 6.0 } else { 2.0 };
        let want = (right - left).max(min);
        assert!((f(&bar["w"]) - want).abs() <= 1.5, "{what}: bar {} px wide, not {want}", f(&bar["w"]));
        assert_eq!(row["barShown"], true, "{what}");
        let row_text = text(&row["text"]);
        let took = s.end.unwrap_or(end) - s.start;
        assert!(row_text.contains(&format!("{took:.3} s")), "{what}: duration not in {row_text:?}");
        if s.attempts > 1 {
            assert!(row_text.contains(&format!("×{}", s.attempts)), "{what}: attempts not in {row_text:?}");
        }
        // Failed: labelled, tinted, and its error and cause on the next row.
        let background = text(&row["background"]);
        if s.status == "failed" {
            assert_eq!(row["outcome"], "failed", "{what}");
            assert!(row_text.contains("FAILED"), "{what}: {row_text:?}");
            assert!(background.starts_with("rgb(253, 236, 234"), "{what}: row background {background}");
            if let Some(error) = &s.error {
                let detail = &row["detail"];
                assert_eq!(detail["shown"], true, "{what}: error not shown");
                let detail = text(&detail["text"]);
                assert!(detail.contains(error.as_str()), "{what}: {detail:?}");
                assert!(detail.contains(s.cause.as_deref().unwrap_or_default()), "{what}: {detail:?}");
            }
        } else {
            assert!(!row_text.contains("FAILED"), "{what}: {row_text:?}");
            assert!(!background.starts_with("rgb(253"), "{what}: tinted {background}");
            assert!(row["detail"].is_null(), "{what}");
        }
        if s.outcome == Outcome::FailurePath {
            assert!(row_text.contains("failure path"), "{what}: {row_text:?}");
        }
    }
}

/// A PDF's pages (object numbers, in order) and the named destinations
/// Chromium writes for the page's link targets: name -> (page index, y).
fn pdf_layout(pdf: &[u8]) -> (Vec<u32>, Vec<(String, usize, f64)>) {
    let pdf = String::from_utf8_lossy(pdf);
    let tree = &pdf[pdf.find("/Type /Pages").expect("page tree")..];
    let kids = &tree[tree.find("/Kids [").expect("kids") + "/Kids [".len()..];
    let kids = &kids[..kids.find(']').expect("end of kids")];
    let words: Vec<&str> = kids.split_whitespace().collect();
    let pages: Vec<u32> = words.chunks(3).filter_map(|c| c[0].parse().ok()).collect();
    // `/run-1 [28 0 R /XYZ 0 580.70996 0]`
    let mut dests = Vec::new();
    for part in pdf.split("\n/run-").skip(1).chain(pdf.split("<</run-").skip(1)) {
        let Some((name, rest)) = part.split_once(" [") else { continue };
        let rest = &rest[..rest.find(']').unwrap_or(rest.len())];
        let w: Vec<&str> = rest.split_whitespace().collect();
        let (Some(obj), Some(y)) = (w.first().and_then(|o| o.parse::<u32>().ok()), w.get(5)) else {
            continue;
        };
        let (Some(index), Ok(y)) = (pages.iter().position(|p| *p == obj), y.parse::<f64>()) else { continue };
        dests.push((format!("run-{name}"), index, y));
    }
    dests.sort_by(|a, b| a.0.cmp(&b.0));
    (pages, dests)
}

#[test]
fn chromium_shows_what_the_report_says() {
    let bin = chromium();
    let known = Known::new();
    let html = html_page(&known.page());
    let dir = tempfile::tempdir().expect("temp dir");

    // On screen, then with the print stylesheet (A4 landscape is about 1050 px wide).
    check(&measure(&bin, dir.path(), &html, 1280, false), &known.record, "screen");
    check(&measure(&bin, dir.path(), &html, 1050, true), &known.record, "print");

    // The page itself (no script), printed: the summary, then a page per run.
    let page = dir.path().join("timeline.html");
    std::fs::write(&page, &html).expect("write page");
    let pdf = chromium_output(
        &bin,
        &page,
        "--print-to-pdf",
        &dir.path().join("timeline.pdf"),
        &["--no-pdf-header-footer"],
    );
    // Each run starts at the top of a page of its own, after the summary.
    let (pages, dests) = pdf_layout(&pdf);
    let starts: Vec<&(String, usize, f64)> = dests.iter().filter(|d| !d.0[4..].contains('-')).collect();
    assert_eq!(starts.len(), 2, "a destination per run (linked from the header): {dests:?}");
    for (n, (name, page, y)) in starts.iter().enumerate() {
        assert_eq!(name, &format!("run-{}", n + 1), "{dests:?}");
        assert!(*page > 0 && (y - starts[0].2).abs() < 0.5, "{name} does not start a page: {dests:?}");
        assert!(n == 0 || *page > starts[n - 1].1, "{name} shares a page: {dests:?}");
    }
    assert!(pages.len() > starts[1].1, "{} pages", pages.len());

    // A screenshot of the page as a reader sees it.
    let png = chromium_output(
        &bin,
        &page,
        "--screenshot",
        &dir.path().join("timeline.png"),
        &["--window-size=1280,2000"],
    );
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000, "{} bytes", png.len());
    if let Some(keep) = std::env::var_os("AURORA_DR_SCREENSHOT") {
        std::fs::write(&keep, &png).expect("keep the screenshot");
        std::fs::write(Path::new(&keep).with_extension("html"), &html).expect("keep the page");
        std::fs::write(Path::new(&keep).with_extension("pdf"), &pdf).expect("keep the pdf");
    }
}
