//! Strictness switches, quotas and durations: configurable, and each rule
//! switchable on its own (these run on our emulator only: stock moto has no
//! settings).

use aurora_dr_emulator::{Delay, EmulatorConfig, Latency, QuotaName, Quotas, Strictness};

use crate::*;

#[tokio::test]
async fn every_rule_can_be_switched_off_on_its_own() {
    let emulator = emulator_with(
        EmulatorConfig::default().with_strictness(Strictness { identifiers: false, ..Strictness::strict() }),
    )
    .await;
    let control = emulator.control();
    assert_eq!(
        control.strictness().await.expect("strict"),
        Strictness { identifiers: false, ..Strictness::strict() }
    );
    let rds = rds(&emulator, SOURCE, SOURCE_REGION).await;
    let long = format!("a{}", "b".repeat(63));
    new_cluster(&rds, &long, false).await.expect("identifiers off: a 64-character identifier is accepted");
    // Transitions still on: a deleted cluster is deleting.
    let deleted = rds.delete_db_cluster().db_cluster_identifier(&long).skip_final_snapshot(true).send().await;
    assert_eq!(deleted.expect("delete").db_cluster().and_then(|c| c.status()), Some("deleting"));

    control.set_strictness(&Strictness { transitions: false, ..Strictness::strict() }).await.expect("set");
    let refused = rds
        .create_db_cluster()
        .db_cluster_identifier(&long)
        .engine(ENGINE)
        .master_username("dbadmin")
        .master_user_password("correct-horse-battery")
        .send()
        .await;
    assert_eq!(fault(&refused).map(|f| f.0).as_deref(), Some("InvalidParameterValue"), "identifiers back on");
    new_cluster(&rds, "short", false).await.expect("cluster");
    rds.delete_db_cluster()
        .db_cluster_identifier("short")
        .skip_final_snapshot(true)
        .send()
        .await
        .expect("delete");
    let gone = rds.describe_db_clusters().db_cluster_identifier("short").send().await;
    assert_eq!(
        fault(&gone).map(|f| f.0).as_deref(),
        Some("DBClusterNotFoundFault"),
        "transitions off: gone at once"
    );

    control.reset().await.expect("reset");
    assert_eq!(
        control.strictness().await.expect("strict"),
        Strictness { identifiers: false, ..Strictness::strict() },
        "reset restores the launch settings"
    );
}

#[tokio::test]
async fn quotas_are_configurable_and_pressure_lowers_them() {
    let quotas = Quotas { clusters: 2, ..Quotas::default() };
    let emulator = emulator_with(EmulatorConfig::default().with_quotas(quotas)).await;
    let control = emulator.control();
    assert_eq!(control.quotas().await.expect("quotas"), quotas);
    let rds = rds(&emulator, TARGET, TARGET_REGION).await;
    new_cluster(&rds, "a", false).await.expect("first");
    new_cluster(&rds, "b", false).await.expect("second");
    let third = rds
        .create_db_cluster()
        .db_cluster_identifier("c")
        .engine(ENGINE)
        .master_username("dbadmin")
        .master_user_password("correct-horse-battery")
        .send()
        .await;
    assert_eq!(fault(&third), Some(("DBClusterQuotaExceededFault".to_owned(), 403)));
    control.set_quotas(&Quotas { clusters: 3, ..quotas }).await.expect("set quotas");
    new_cluster(&rds, "c", false).await.expect("room after raising the quota");

    // Quota pressure: a fault rule lowers the manual snapshot quota to 1.
    let rule = aurora_dr_emulator::FaultRule::quota_pressure(QuotaName::ManualClusterSnapshots, 1);
    control.arm(rule).await.expect("arm");
    new_snapshot(&rds, "a", "s1").await.expect("first snapshot");
    let second = rds
        .create_db_cluster_snapshot()
        .db_cluster_identifier("a")
        .db_cluster_snapshot_identifier("s2")
        .send()
        .await;
    assert_eq!(fault(&second), Some(("SnapshotQuotaExceeded".to_owned(), 400)));
    let out = rds.describe_account_attributes().send().await.expect("attributes");
    let manual = out
        .account_quotas()
        .iter()
        .find(|q| q.account_quota_name() == Some("ManualClusterSnapshots"))
        .expect("quota");
    assert_eq!((manual.used(), manual.max()), (Some(1), Some(1)), "the pressure shows in AccountQuotas");
    control.reset_faults().await.expect("reset");
    new_snapshot(&rds, "a", "s2").await.expect("room once the pressure is off");
}

#[tokio::test]
async fn durations_grow_with_allocated_storage() {
    // Copies take 1000 s per GiB and nothing else: a copy of an empty
    // cluster's snapshot is done at once, one of a 100 GiB cluster's is not.
    let latency = Latency { copy: Delay::sized(0.0, 1000.0), ..Latency::default() };
    let emulator = emulator_with(EmulatorConfig::default().with_latency(latency)).await;
    let source = rds(&emulator, SOURCE, SOURCE_REGION).await;
    new_cluster(&source, "small", false).await.expect("small");
    new_cluster(&source, "large", false).await.expect("large");
    emulator.control().set_cluster_storage(SOURCE, SOURCE_REGION, "large", 100.0).await.expect("storage");
    let dest = rds(&emulator, SOURCE, TARGET_REGION).await;
    for cluster in ["small", "large"] {
        let snap = new_snapshot(&source, cluster, &format!("{cluster}-snap")).await.expect("snapshot");
        dest.copy_db_cluster_snapshot()
            .source_db_cluster_snapshot_identifier(snap.db_cluster_snapshot_arn().expect("arn"))
            .target_db_cluster_snapshot_identifier(format!("{cluster}-copy"))
            .send()
            .await
            .expect("copy");
    }
    snapshot_in(&dest, "small-copy", "available").await.expect("the empty copy is done");
    snapshot_in(&dest, "large-copy", "copying").await.expect("the 100 GiB copy is still copying");
    let missing = emulator.control().set_cluster_storage(SOURCE, SOURCE_REGION, "nope", 1.0).await;
    assert!(missing.is_err(), "an unknown cluster is refused");
}

#[tokio::test]
async fn stock_moto_serves_without_the_layer() {
    let stock = emulator_with(EmulatorConfig::stock()).await;
    let rds = rds(&stock, SOURCE, SOURCE_REGION).await;
    rds.describe_db_clusters().send().await.expect("stock moto serves RDS across accounts");
    assert!(stock.control().health().await.is_err(), "stock moto has no control endpoint");
    let with_faults = aurora_dr_emulator::Emulator::start(
        EmulatorConfig::stock().with_fault(aurora_dr_emulator::FaultRule::copy_quota(1)),
    )
    .await;
    assert!(with_faults.is_err(), "fault rules need the layer");
}

#[test]
fn python_and_rust_name_the_same_switches() {
    let settings = include_str!("../../../../emulator/settings.py");
    let switches = serde_json::to_value(Strictness::default()).expect("json");
    for name in switches.as_object().expect("object").keys() {
        assert!(settings.contains(&format!("    \"{name}\",")), "settings.py lacks switch {name}");
    }
    let quotas = serde_json::to_value(Quotas::default()).expect("json");
    for (name, value) in quotas.as_object().expect("object") {
        assert!(
            settings.contains(&format!("\"{name}\": {value},")),
            "settings.py lacks quota {name} = {value}"
        );
    }
}
