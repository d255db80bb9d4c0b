//! A drill on the realistic duration profile: a 500 GiB source cluster,
//! every emulated duration and every Wait/Retry interval scaled by one
//! factor, two runs (the second replaces the DR cluster the first restored,
//! under the same temporary name). Both must succeed, and no phase's workflow
//! can end before the AWS work it waits for (each wait only ends once RDS
//! reports the resource ready). The table of phases is printed; its figures
//! are not judged.
//!
//! `cargo test -p aurora-dr-tests --test realistic -- --nocapture` prints it.

use aurora_dr_cli::drill::phases::{self, Durations, PhaseTiming};
use aurora_dr_tests::{CONFIG, DrillEnv};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_realistic_500_gib_drill_succeeds_and_no_phase_ends_before_its_aws_work() {
    let env = DrillEnv::start(CONFIG).await;
    let mut args = env.args(2);
    args.durations = Some(Durations::Realistic);
    args.size_gib = Some(500.0);
    // A real-world hour in 1.8 s: about 6 s of emulated work for 500 GiB.
    args.time_scale = 0.0005;
    let report = aurora_dr_cli::drill::execute(&args, &env.config).await.expect("drill ran").report;
    let timings: Vec<PhaseTiming> =
        serde_json::from_value(report["phases"].clone()).expect("the report lists the phases");
    println!("{}", phases::text_table(&timings));
    assert_eq!(report["result"], "SUCCEEDED", "{:#}", report["runs"]);
    assert_eq!(report["durations"]["sizeGib"], 500.0);

    let html =
        std::fs::read_to_string(report["timeline"].as_str().expect("timeline path")).expect("timeline");
    assert!(html.contains("<h2>Phases</h2>") && html.contains("6300.0"), "the timeline shows the phases");
    // A first run deletes nothing: no delete phase; the second deletes the
    // copy the first restored.
    let names = |run: usize| -> Vec<&str> {
        timings.iter().filter(|t| t.run == run).map(|t| t.phase.as_str()).collect()
    };
    assert_eq!(names(1), ["snapshot", "copy", "restore", "instances", "rename/swap", "dns"]);
    assert_eq!(names(2), ["snapshot", "copy", "restore", "instances", "rename/swap", "dns", "delete"]);
    // The copy phase (about 6300 s at 500 GiB, against 300 s unsized) also
    // checks that the emulator sized the work by the source's storage. The
    // wall clock itself says it: from its first state entered to its last
    // left, a phase lasts at least its scaled AWS work (the work starts in
    // the first state and each wait ends only once RDS reports it done).
    let states = report["states"].as_array().expect("the report lists the states");
    for t in timings.iter().filter(|t| t.awaited) {
        assert!(t.workflow_seconds.is_some() && t.detection_seconds.is_some(), "{t:?} ended");
        let mine: Vec<&serde_json::Value> = states
            .iter()
            .filter(|s| {
                s["run"] == t.run
                    && s["lane"].as_str().unwrap_or_default() == t.lane
                    && s["machine"]
                        == if t.phase == "snapshot" || t.phase == "copy" { "source" } else { "target" }
                    && t.states.iter().any(|n| s["state"] == n.as_str())
                    && s["failurePath"] != true
            })
            .collect();
        let start = mine.iter().filter_map(|s| s["start"].as_f64()).fold(f64::MAX, f64::min);
        let end = mine.iter().filter_map(|s| s["end"].as_f64()).fold(f64::MIN, f64::max);
        let wall = (end - start) / args.time_scale;
        assert!(
            wall >= t.aws_seconds,
            "run {}: {} ended after {wall:.1}s, before its {:.1}s of AWS work",
            t.run,
            t.phase,
            t.aws_seconds
        );
    }
}
