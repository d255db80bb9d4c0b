//! `aurora-dr chaos`: a few runs under a fixed seed's faults on one emulator,
//! every invariant checked after each run; and a rule broken on purpose
//! between runs, which the checks must report (the command then exits 1).
//!
//! `cargo test -p aurora-dr-tests --test chaos -- --nocapture` shows the tables.

use std::sync::Arc;

use aurora_dr_cli::chaos::{self, BeforeRun, ChaosArgs, ChaosReport, schedule};
use aurora_dr_cli::config::Config;
use aurora_dr_cli::drill::setup::account_context;
use aurora_dr_tests::CONFIG;

/// A seed whose first runs draw faults of several kinds (checked below).
const SEED: u64 = 17;

fn args(dir: &tempfile::TempDir, runs: usize, max_faults: usize) -> (ChaosArgs, Config) {
    let path = dir.path().join("drill.toml");
    std::fs::write(&path, CONFIG).expect("config written");
    let args = ChaosArgs {
        config: path,
        runs,
        seed: Some(SEED),
        from_run: 1,
        max_faults,
        json: false,
        time_scale: 0.0001,
        durations: None,
        run_timeout: 120,
    };
    (args, Config::parse(CONFIG).expect("valid config"))
}

async fn chaos_run(runs: usize, max_faults: usize, before_run: Option<BeforeRun>) -> ChaosReport {
    let dir = tempfile::tempdir().expect("temp dir");
    let (args, config) = args(&dir, runs, max_faults);
    chaos::execute(&args, &config, before_run).await.expect("chaos ran")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_seed_keeps_every_invariant() {
    let report = chaos_run(5, 3, None).await;
    assert_eq!(report.runs.len(), 5);
    assert!(!report.hung);
    let violations: Vec<_> = report.runs.iter().flat_map(|r| &r.violations).collect();
    assert!(violations.is_empty(), "violations: {violations:#?}");
    assert!(report.passed());

    // Each run was armed with the schedule the seed gives for its number:
    // the same again for the same seed, another for another seed.
    let config = Config::parse(CONFIG).expect("valid config");
    for r in &report.runs {
        assert_eq!(r.faults, schedule::schedule(SEED, r.run, 3, &config), "run {}", r.run);
    }
    let other: Vec<_> = (1..=5).map(|n| schedule::schedule(SEED + 1, n, 3, &config)).collect();
    let drawn: Vec<_> = report.runs.iter().map(|r| r.faults.clone()).collect();
    assert_ne!(drawn, other);

    // The seed exercises faults of several kinds, and runs that failed under
    // them as well as runs that succeeded.
    let kinds: std::collections::BTreeSet<_> = drawn.iter().flatten().map(|f| f.kind).collect();
    assert!(kinds.len() >= 3, "kinds drawn: {kinds:?}");
    assert_eq!(report.faults_by_kind.values().sum::<usize>(), drawn.iter().map(Vec::len).sum::<usize>());
    assert!(report.runs.iter().any(|r| r.ok), "no run succeeded: {:?}", report.outcomes);
}

/// Before run 2 (no faults), the serving DR cluster's instance and then the
/// cluster are deleted and the source cluster's backup retention changed:
/// run 2 reports `serving-kept` and `source-unchanged`, with the command that
/// replays it, and the report fails (exit 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_broken_between_runs_is_reported() {
    let config = Config::parse(CONFIG).expect("valid config");
    let (src, tgt) = (config.source.clone(), config.target.clone());
    let hook: BeforeRun = Arc::new(move |n, endpoint| {
        let (src, tgt) = (src.clone(), tgt.clone());
        Box::pin(async move {
            if n != 2 {
                return;
            }
            let target = account_context(&endpoint, &tgt.account_id, &tgt.region, None).await.rds();
            target
                .delete_db_instance()
                .db_instance_identifier(tgt.existing_instance_id.as_str())
                .skip_final_snapshot(true)
                .send()
                .await
                .expect("DeleteDBInstance of the serving instance");
            let source = account_context(&endpoint, &src.account_id, &src.region, None).await.rds();
            source
                .modify_db_cluster()
                .db_cluster_identifier(src.cluster_id.as_str())
                .backup_retention_period(9)
                .apply_immediately(true)
                .send()
                .await
                .expect("ModifyDBCluster of the source");
        })
    });
    let report = chaos_run(2, 0, Some(hook)).await;
    assert_eq!(report.runs.len(), 2);
    assert!(report.runs[0].violations.is_empty(), "run 1: {:#?}", report.runs[0].violations);
    let run2 = &report.runs[1];
    let broken: Vec<&str> = run2.violations.iter().map(|v| v.invariant).collect();
    assert!(broken.contains(&"serving-kept"), "run 2: {:#?}", run2.violations);
    assert!(broken.contains(&"source-unchanged"), "run 2: {:#?}", run2.violations);
    let detail = run2.violations.iter().map(|v| v.detail.as_str()).collect::<Vec<_>>().join("\n");
    assert!(detail.contains("DeleteDBInstance orders-dr-1"), "{detail}");
    assert!(detail.contains("backup-retention"), "{detail}");
    let reproduce = run2.reproduce.as_deref().unwrap_or_default();
    assert!(reproduce.contains(&format!("--seed {SEED} --from-run 2 --runs 1")), "{reproduce}");
    assert!(!report.passed());
    assert_eq!(report.violations_by_invariant["serving-kept"], 1);
}

/// A rename whose answer is lost (it took effect; the SDK's retry of the
/// same call then finds no resource under the old name) is a rename done,
/// not a failed swap: on a first run (the restored cluster and instance take
/// the existing names) and on a second (the previous copy is renamed away
/// first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rename_whose_answer_was_lost_completes_the_swap() {
    use aurora_dr_emulator::{EmulatorConfig, FaultRule};
    let target = Config::parse(CONFIG).expect("valid config").target.account_id.to_string();
    let lost = |op: &str| FaultRule::lost_response("rds", op).in_account(&target).times(1);
    let emulator =
        EmulatorConfig::default().with_fault(lost("ModifyDBCluster")).with_fault(lost("ModifyDBInstance"));
    let env = aurora_dr_tests::DrillEnv::start_with(CONFIG, emulator).await;
    let first = env.drill(1).await;
    assert!(first.ok, "first run: {:#}", first.report["runs"]);
    let control = env.emulator.control();
    control.arm(lost("ModifyDBCluster")).await.expect("arm");
    control.arm(lost("ModifyDBInstance")).await.expect("arm");
    let second = env.drill(1).await;
    assert!(second.ok, "second run: {:#}", second.report["runs"]);
    let applied = control.calls().await.expect("calls").iter().filter(|c| c.applied).count();
    assert_eq!(applied, 4, "every armed answer was lost after its rename took effect");
}
