//! The SanityCheck step against real databases: PostgreSQL and MariaDB from
//! Debian's packages on loopback (`test_db`: one server of each per test
//! binary, stopped and removed when the binary exits).
//!
//! - Probe tests: `aurora_dr_core::probe::run` on data that passes and data
//!   that fails each probe (connectivity, query, minimum rows, freshness),
//!   on both engines, and the read-only session.
//! - Drill tests: both state machines on the local engine and the emulator,
//!   with `target.sanity_endpoint_override` pointing the probe at a test
//!   server and the login in a Secrets Manager secret of the target account.

mod test_db;

use std::time::Duration;

use aurora_dr_core::probe::{self, DbEngine, Login, Plan, ProbeResult, TlsMode};
use aurora_dr_core::rds::{TAG_RUN_ID, tag_value};
use aurora_dr_tests::{CONFIG, DrillEnv, cluster_ids, instance_ids};
use test_db::DbServer;
use time::OffsetDateTime;
use time::macros::datetime;

/// The recovery point of the probe tests (the "snapshot time").
const POINT: OffsetDateTime = datetime!(2026-11-25 16:00:00 UTC);

fn engines() -> [(&'static DbServer, DbEngine); 2] {
    [(test_db::postgres(), DbEngine::Postgres), (test_db::mariadb(), DbEngine::Mysql)]
}

fn login(server: &DbServer, engine: DbEngine) -> Login {
    Login {
        engine,
        host: server.host.clone(),
        port: server.port,
        user: server.user.clone(),
        password: server.password.clone(),
        database: Some(server.database.clone()),
        tls: TlsMode::Disable,
        timeout: Duration::from_secs(10),
    }
}

fn base_plan() -> Plan {
    Plan {
        query: None,
        min_rows: Vec::new(),
        freshness: None,
        rpo: Duration::from_secs(3600),
        recovery_point: POINT,
    }
}

/// `table` with `rows` rows whose newest `updated_at` is `newest_secs_before`
/// seconds before [`POINT`] (UTC; `timestamptz` on PostgreSQL, `DATETIME` on MariaDB).
fn table(server: &DbServer, table: &str, rows: u32, newest_secs_before: i64) {
    let column = if server.kind == "postgres" { "timestamptz" } else { "DATETIME" };
    server.exec(&format!("DROP TABLE IF EXISTS {table}"));
    server.exec(&format!("CREATE TABLE {table} (id INT PRIMARY KEY, updated_at {column} NOT NULL)"));
    let values: Vec<String> = (1..=rows)
        .map(|i| {
            // Row i is (rows - i) minutes older than the newest.
            let t = POINT
                - time::Duration::seconds(newest_secs_before)
                - time::Duration::minutes(i64::from(rows - i));
            let text = format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}{}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                if server.kind == "postgres" { "+00" } else { "" }
            );
            format!("({i}, '{text}')")
        })
        .collect();
    if !values.is_empty() {
        server.exec(&format!("INSERT INTO {table} (id, updated_at) VALUES {}", values.join(", ")));
    }
}

fn find<'a>(results: &'a [ProbeResult], probe: &str) -> &'a ProbeResult {
    results.iter().find(|r| r.probe == probe).unwrap_or_else(|| panic!("no {probe} in {results:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_probe_passes_on_good_data() {
    for (server, engine) in engines() {
        table(server, "good_orders", 20, 600);
        let plan = Plan {
            query: Some("SELECT id FROM good_orders WHERE id = 7".into()),
            min_rows: vec!["good_orders=20".parse().expect("min rows")],
            freshness: Some("good_orders.updated_at".parse().expect("column")),
            ..base_plan()
        };
        let results = probe::run(&login(server, engine), &plan).await;
        let names: Vec<&str> = results.iter().map(|r| r.probe.as_str()).collect();
        assert_eq!(
            names,
            ["connectivity", "query", "minRows(good_orders)", "freshness(good_orders.updated_at)"],
            "{}",
            server.kind
        );
        assert!(results.iter().all(|r| r.ok), "{}: {results:#?}", server.kind);
        assert_eq!(find(&results, "minRows(good_orders)").detail, "20 rows, at least 20");
        let fresh = &find(&results, "freshness(good_orders.updated_at)").detail;
        assert!(fresh.contains("is 600 s before the snapshot time 2026-11-25T16:00:00Z"), "{fresh}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connectivity_fails_on_a_wrong_port_and_a_wrong_password() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    for (server, engine) in engines() {
        let plan = Plan { min_rows: vec!["good_orders=1".parse().expect("min")], ..base_plan() };
        let mut wrong_port = login(server, engine);
        wrong_port.port = closed;
        let results = probe::run(&wrong_port, &plan).await;
        assert!(!results[0].ok && results[0].probe == "connectivity", "{results:?}");
        assert!(results[0].detail.contains(&format!("127.0.0.1:{closed}")), "{results:?}");
        assert_eq!(results[1].detail, "not run: no connection");

        let mut wrong_password = login(server, engine);
        wrong_password.password.push('x');
        let results = probe::run(&wrong_password, &plan).await;
        assert!(!results[0].ok, "{}: {results:?}", server.kind);
        let detail = results[0].detail.to_lowercase();
        assert!(detail.contains("password") || detail.contains("access denied"), "{}: {detail}", server.kind);
        assert!(!results[0].detail.contains(&wrong_password.password), "the password is never reported");

        // The right login works: the failures above are the port and the password.
        let results = probe::run(&login(server, engine), &base_plan()).await;
        assert!(results[0].ok, "{}: {results:?}", server.kind);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_with_zero_rows_fails_the_query_probe() {
    for (server, engine) in engines() {
        table(server, "query_orders", 5, 0);
        let none = Plan { query: Some("SELECT id FROM query_orders WHERE id > 100".into()), ..base_plan() };
        let results = probe::run(&login(server, engine), &none).await;
        let q = find(&results, "query");
        assert!(!q.ok, "{}: {results:?}", server.kind);
        assert!(q.detail.starts_with("returned no rows"), "{q:?}");
        assert!(find(&results, "connectivity").ok);

        let bad = Plan { query: Some("SELECT nope FROM query_orders".into()), ..base_plan() };
        let results = probe::run(&login(server, engine), &bad).await;
        assert!(!find(&results, "query").ok, "{}: a failing query fails the probe", server.kind);

        let one = Plan { query: Some("SELECT id FROM query_orders WHERE id = 5".into()), ..base_plan() };
        let results = probe::run(&login(server, engine), &one).await;
        assert!(find(&results, "query").ok, "{}: {results:?}", server.kind);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_below_its_minimum_or_missing_fails_the_row_count_probe() {
    for (server, engine) in engines() {
        table(server, "count_orders", 3, 0);
        let plan = Plan {
            min_rows: vec![
                "count_orders=10".parse().expect("min"),
                "count_orders=3".parse().expect("min"),
                "no_such_table=1".parse().expect("min"),
            ],
            ..base_plan()
        };
        let results = probe::run(&login(server, engine), &plan).await;
        let counts: Vec<&ProbeResult> =
            results.iter().filter(|r| r.probe == "minRows(count_orders)").collect();
        assert_eq!(counts.len(), 2);
        assert!(!counts[0].ok);
        assert_eq!(counts[0].detail, "3 rows, below the minimum 10");
        assert!(counts[1].ok, "{:?}", counts[1]);
        let missing = find(&results, "minRows(no_such_table)");
        assert!(!missing.ok);
        assert!(missing.detail.to_lowercase().contains("no_such_table"), "{}: {missing:?}", server.kind);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_or_empty_table_fails_the_freshness_probe() {
    for (server, engine) in engines() {
        let fresh = Plan { freshness: Some("fresh_orders.updated_at".parse().expect("col")), ..base_plan() };
        // Newest row 2 hours before the snapshot, RPO 1 hour.
        table(server, "fresh_orders", 4, 7200);
        let results = probe::run(&login(server, engine), &fresh).await;
        let f = find(&results, "freshness(fresh_orders.updated_at)");
        assert!(!f.ok, "{}: {results:?}", server.kind);
        assert!(f.detail.contains("7200 s before the snapshot time"), "{f:?}");
        assert!(f.detail.contains("more than the RPO of 3600 s"), "{f:?}");

        // Just inside the RPO passes.
        table(server, "fresh_orders", 4, 3590);
        let results = probe::run(&login(server, engine), &fresh).await;
        assert!(find(&results, "freshness(fresh_orders.updated_at)").ok, "{}: {results:?}", server.kind);

        // Rows newer than the snapshot time (clock skew) are not stale.
        table(server, "fresh_orders", 4, -120);
        let results = probe::run(&login(server, engine), &fresh).await;
        let f = find(&results, "freshness(fresh_orders.updated_at)");
        assert!(f.ok && f.detail.contains("120 s after the snapshot time"), "{}: {f:?}", server.kind);

        // No rows: no newest value.
        table(server, "fresh_orders", 0, 0);
        let results = probe::run(&login(server, engine), &fresh).await;
        let f = find(&results, "freshness(fresh_orders.updated_at)");
        assert!(!f.ok && f.detail.contains("no rows"), "{}: {f:?}", server.kind);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_session_cannot_change_data() {
    for (server, engine) in engines() {
        table(server, "ro_orders", 2, 0);
        let delete = Plan { query: Some("DELETE FROM ro_orders".into()), ..base_plan() };
        let results = probe::run(&login(server, engine), &delete).await;
        assert!(!find(&results, "query").ok, "{}: {results:?}", server.kind);
        let count = Plan { min_rows: vec!["ro_orders=2".parse().expect("min")], ..base_plan() };
        let results = probe::run(&login(server, engine), &count).await;
        assert!(find(&results, "minRows(ro_orders)").ok, "{}: rows survived: {results:?}", server.kind);
    }
}

/// A query that returns a row only on a TLS session.
fn tls_only_query(engine: DbEngine) -> String {
    match engine {
        DbEngine::Postgres => "SELECT 1 FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl".into(),
        DbEngine::Mysql => "SELECT 1 FROM information_schema.SESSION_STATUS \
             WHERE VARIABLE_NAME = 'SSL_CIPHER' AND VARIABLE_VALUE <> ''"
            .into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_require_and_verify_full_encrypt_and_verify_refuses_a_foreign_ca() {
    for (server, engine) in engines() {
        let plan = Plan { query: Some(tls_only_query(engine)), ..base_plan() };
        // Plain: the TLS-only query finds no row, so it does tell the two apart.
        let results = probe::run(&login(server, engine), &plan).await;
        assert!(results[0].ok && !find(&results, "query").ok, "{}: {results:?}", server.kind);

        for tls in [TlsMode::Require, TlsMode::VerifyFull { ca_file: server.ca_file.clone() }] {
            let name = tls.name();
            let results = probe::run(&Login { tls, ..login(server, engine) }, &plan).await;
            assert!(results.iter().all(|r| r.ok), "{} {name}: {results:?}", server.kind);
            assert!(results[0].detail.contains(&format!("TLS {name}")), "{results:?}");
        }

        // A certificate from another CA is refused before any login.
        let foreign = TlsMode::VerifyFull { ca_file: server.other_ca_file.clone() };
        let results = probe::run(&Login { tls: foreign, ..login(server, engine) }, &plan).await;
        assert!(!results[0].ok, "{}: {results:?}", server.kind);
        assert!(results[0].detail.to_lowercase().contains("certificate"), "{}: {results:?}", server.kind);
    }
}

// ---- whole drills ----

/// The example configuration with `engine`, sanity settings and the drill's login.
fn drill_config(server: &DbServer, engine: &str, target_extra: &str) -> String {
    let target = format!(
        "[target]\nsanity_endpoint_override = \"{}\"\nsanity_tls = \"disable\"\nsanity_database = \"{}\"\n{target_extra}\n",
        server.endpoint(),
        server.database
    );
    let text = CONFIG.replace("engine = \"aurora-postgresql\"", &format!("engine = \"{engine}\"")).replacen(
        "[target]\n",
        &target,
        1,
    );
    format!(
        "{text}\n[drill]\nsanity_username = \"{}\"\nsanity_password = \"{}\"\n",
        server.user, server.password
    )
}

fn target_states(report: &serde_json::Value) -> Vec<(String, String)> {
    report["states"]
        .as_array()
        .expect("states")
        .iter()
        .filter(|s| s["machine"] == "target")
        .map(|s| {
            (
                s["state"].as_str().unwrap_or_default().to_owned(),
                s["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drill_with_passing_probes_swaps_and_terminates_the_old_cluster() {
    let server = test_db::mariadb();
    server.exec("DROP TABLE IF EXISTS drill_pass_orders");
    server.exec("CREATE TABLE drill_pass_orders (id INT PRIMARY KEY, updated_at DATETIME NOT NULL)");
    server.exec("INSERT INTO drill_pass_orders VALUES (1, UTC_TIMESTAMP()), (2, UTC_TIMESTAMP())");
    let config = drill_config(
        server,
        "aurora-mysql",
        "sanity_query = \"SELECT id FROM drill_pass_orders\"\nsanity_min_rows = [\"drill_pass_orders=2\"]\n\
         sanity_freshness = \"drill_pass_orders.updated_at\"\nsanity_rpo_seconds = 3600",
    );
    let env = DrillEnv::start(&config).await;
    let report = env.drill(2).await;
    assert!(report.ok, "drill failed: {:#}", report.report);
    let states = target_states(&report.report);
    let sanity: Vec<&(String, String)> = states.iter().filter(|(s, _)| s == "SanityCheck").collect();
    assert_eq!(sanity.len(), 2, "one SanityCheck per run: {states:?}");
    assert!(sanity.iter().all(|(_, status)| status == "succeeded"), "{states:?}");
    assert_eq!(states.iter().filter(|(s, _)| s == "Terminate").count(), 2, "{states:?}");

    // The second run's cluster serves; the first run's (renamed away) was deleted.
    let target = env.target().await;
    assert_eq!(cluster_ids(&target).await, ["orders-dr"]);
    assert_eq!(instance_ids(&target).await, ["orders-dr-1"]);
    // (A target run id is the source run id, plus a suffix per cluster pair.)
    let second_run = report.report["runs"][1]["runId"].as_str().expect("run id").to_owned();
    let serving = report.report["target"]["runId"].as_str().expect("serving run").to_owned();
    assert!(serving.starts_with(&second_run), "{serving} is not from {second_run}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drill_with_a_failing_probe_never_touches_the_serving_cluster() {
    failing_probe(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drill_with_a_failing_probe_keeps_the_temporary_cluster_when_configured() {
    failing_probe(true).await;
}

/// Run 1 passes its probes; run 2's data is bad, so its probe of the
/// temporary cluster fails: the serving cluster is never touched and the
/// temporary one is removed, or kept with `keep_failed_temp_cluster`.
async fn failing_probe(keep: bool) {
    let table = if keep { "drill_keep_orders" } else { "drill_fail_orders" };
    let server = test_db::postgres();
    server.exec(&format!("DROP TABLE IF EXISTS {table}"));
    server.exec(&format!("CREATE TABLE {table} (id INT PRIMARY KEY, updated_at timestamptz NOT NULL)"));
    server.exec(&format!("INSERT INTO {table} SELECT g, now() FROM generate_series(1, 12) g"));
    let keep_line = if keep { "\nkeep_failed_temp_cluster = true" } else { "" };
    let config =
        drill_config(server, "aurora-postgresql", &format!("sanity_min_rows = \"{table}=10\"{keep_line}"));
    let env = DrillEnv::start(&config).await;

    // Run 1: 12 rows, the probes pass, its cluster serves under the existing name.
    let first = env.drill(1).await;
    assert!(first.ok, "first drill failed: {:#}", first.report);
    let first_run = first.report["runs"][0]["runId"].as_str().expect("run id").to_owned();
    let target = env.target().await;
    assert_eq!(cluster_ids(&target).await, ["orders-dr"]);

    // The data goes bad; run 2 restores, and its sanity check of the
    // temporary cluster fails before any swap.
    server.exec(&format!("DELETE FROM {table} WHERE id > 3"));
    env.emulator.control().clear_calls().await.expect("clear call log");
    let second = env.drill(1).await;
    assert!(!second.ok, "the second drill must fail: {:#}", second.report);
    let run = &second.report["runs"][0];
    assert_eq!(run["target"]["status"], "FAILED", "{run:#}");
    assert_eq!(run["target"]["error"], "SanityCheckFailed", "{run:#}");
    let cause = run["target"]["cause"].as_str().expect("cause");
    assert!(cause.contains(&format!("minRows({table}) FAILED: 3 rows, below the minimum 10")), "{cause}");
    assert!(cause.contains("connectivity ok"), "{cause}");

    let states = target_states(&second.report);
    let names: Vec<&str> = states.iter().map(|(s, _)| s.as_str()).collect();
    for want in ["SanityCheck", "OnSanityCheckError", "CleanUpTempCluster", "NotifyFailure"] {
        assert!(names.contains(&want), "{want} not in {names:?}");
    }
    for never in ["Swap", "Terminate"] {
        assert!(!names.contains(&never), "{never} must not run: {names:?}");
    }

    // The first run's cluster still serves under the existing name, with its
    // instance; the restored cluster was removed, or kept as configured.
    let want: &[&str] = if keep { &["orders-dr", "orders-dr-next"] } else { &["orders-dr"] };
    assert_eq!(cluster_ids(&target).await, want);
    let want: &[&str] = if keep { &["orders-dr-1", "orders-dr-next-1"] } else { &["orders-dr-1"] };
    assert_eq!(instance_ids(&target).await, want);
    let cluster = aurora_dr_core::rds::find_cluster(&target.rds(), "orders-dr")
        .await
        .expect("describe")
        .expect("cluster");
    let serving = tag_value(cluster.tag_list(), TAG_RUN_ID).expect("run tag");
    assert!(serving.starts_with(&first_run), "{serving} is not from the first run {first_run}");
    let second_run = run["runId"].as_str().expect("run id");
    assert!(!serving.starts_with(second_run), "the failed run's cluster must not serve");
    assert_eq!(cluster.status(), Some("available"));

    // The failure notification went to the target side's failure topic with the error.
    let calls = env.emulator.control().calls().await.expect("calls");
    let published: Vec<&String> = calls
        .iter()
        .filter(|c| c.service == "sns" && c.operation == "Publish" && c.account == "222222222222")
        .filter(|c| c.params.get("TopicArn").is_some_and(|t| t.ends_with(":aurora-dr-failures")))
        .filter_map(|c| c.params.get("Message"))
        .collect();
    assert_eq!(published.len(), 1, "{calls:#?}");
    // The call log keeps the first 256 characters of the message, which
    // reach the start of the probe results whatever the key order (the
    // results are asserted in full on the run's cause above).
    assert!(published[0].contains("sanity check of cluster orders-dr-next ("), "{}", published[0]);
    // No call but a read named the serving cluster or its instance.
    let touching: Vec<String> = calls
        .iter()
        .filter(|c| c.service == "rds" && !c.operation.starts_with("Describe"))
        .filter(|c| {
            c.params.get("DBClusterIdentifier").is_some_and(|id| id == "orders-dr")
                || c.params.get("DBInstanceIdentifier").is_some_and(|id| id == "orders-dr-1")
        })
        .map(|c| format!("{} {:?}", c.operation, c.params))
        .collect();
    assert!(touching.is_empty(), "the serving cluster was touched: {touching:#?}");
    let deleted: Vec<&String> = calls
        .iter()
        .filter(|c| c.operation == "DeleteDBCluster")
        .filter_map(|c| c.params.get("DBClusterIdentifier"))
        .collect();
    let want: &[&str] = if keep { &[] } else { &["orders-dr-next"] };
    assert_eq!(deleted, want, "only the temporary cluster is deleted, unless kept");
}
