//! Fixtures of the settings tests (shared with the step tests) and the
//! reader's own tests.

use super::*;
use crate::ids::Arn;

pub(crate) fn env(pairs: &[(&str, &str)]) -> Origin {
    Origin::Env(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
}

pub(crate) const SOURCE_ENV: &[(&str, &str)] = &[
    ("SOURCE_ACCOUNT_ID", "111111111111"),
    ("SOURCE_REGION", "us-west-2"),
    ("SOURCE_CLUSTER_ID", "orders"),
    ("TARGET_ACCOUNT_ID", "222222222222"),
    ("TARGET_REGION", "us-west-1"),
    ("KMS_KEY_ARN", "arn:aws:kms:us-west-1:111111111111:key/0f0e0d0c-0000-4000-8000-000000000001"),
    ("NOTIFICATION_TOPIC_ARN", "arn:aws:sns:us-west-2:111111111111:aurora-dr-snapshots"),
];

pub(crate) const TARGET_ENV: &[(&str, &str)] = &[
    ("TARGET_ACCOUNT_ID", "222222222222"),
    ("TARGET_REGION", "us-west-1"),
    ("SOURCE_ACCOUNT_ID", "111111111111"),
    ("ENGINE", "aurora-postgresql"),
    ("DB_INSTANCE_CLASS", "db.r6g.large"),
    ("EXISTING_CLUSTER_ID", "orders-dr"),
    ("TEMP_CLUSTER_ID", "orders-dr-next"),
    ("EXISTING_INSTANCE_ID", "orders-dr-1"),
    ("TEMP_INSTANCE_ID", "orders-dr-next-1"),
    ("SOURCE_TOPIC_ARN", "arn:aws:sns:us-west-2:111111111111:aurora-dr-snapshots"),
    ("STATE_MACHINE_ARN", "arn:aws:states:us-west-1:222222222222:stateMachine:aurora-dr-target"),
    ("TARGET_KMS_KEY_ARN", TARGET_KEY),
    ("WAIT_TOKENS_TABLE", "aurora-dr-wait-tokens"),
];

/// The target account's key in [`TARGET_ENV`].
pub(crate) const TARGET_KEY: &str =
    "arn:aws:kms:us-west-1:222222222222:key/1111aaaa-0000-4000-8000-000000000002";

pub(crate) fn toml(pairs: &[(&str, &str)]) -> Origin {
    Origin::Toml(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
}

/// What a TOML file needs for the target side (its key may be left out).
pub(crate) const TARGET_TOML: &[(&str, &str)] = &[
    ("source.account_id", "111111111111"),
    ("target.account_id", "222222222222"),
    ("target.region", "us-west-1"),
    ("target.engine", "aurora-postgresql"),
    ("target.instance_class", "db.r6g.large"),
    ("target.existing_cluster_id", "orders-dr"),
    ("target.temp_cluster_id", "orders-dr-next"),
    ("target.existing_instance_id", "orders-dr-1"),
    ("target.temp_instance_id", "orders-dr-next-1"),
];

pub(crate) fn source_settings() -> SourceSettings {
    let origin = env(SOURCE_ENV);
    let mut r = Reader::new(&origin);
    let s = SourceSettings::read(&mut r).expect("settings");
    r.finish().expect("valid");
    s
}

/// Three targets: 222222222222 and 444444444444 in us-west-1, 333333333333
/// in eu-west-1, each region with its key.
pub(crate) fn many_targets_settings() -> SourceSettings {
    let mut pairs: Vec<(&str, &str)> = SOURCE_ENV
        .iter()
        .filter(|(k, _)| !k.starts_with("TARGET_") && *k != "KMS_KEY_ARN")
        .copied()
        .collect();
    pairs.extend([
        ("TARGET_ACCOUNT_ID", "222222222222,333333333333,444444444444"),
        ("TARGET_REGION", "us-west-1,eu-west-1,us-west-1"),
        (
            "KMS_KEY_ARN",
            "arn:aws:kms:us-west-1:111111111111:key/0f0e0d0c-0000-4000-8000-000000000001,\
             arn:aws:kms:eu-west-1:111111111111:key/0f0e0d0c-0000-4000-8000-000000000003",
        ),
    ]);
    let origin = env(&pairs);
    let mut r = Reader::new(&origin);
    let s = SourceSettings::read(&mut r).expect("settings");
    r.finish().expect("valid");
    s
}

pub(crate) fn target_settings() -> TargetSettings {
    let origin = env(TARGET_ENV);
    let mut r = Reader::new(&origin);
    let s = TargetSettings::read(&mut r).expect("settings");
    r.finish().expect("valid");
    s
}

pub(crate) fn with(
    base: &[(&'static str, &'static str)],
    key: &'static str,
    value: Option<&'static str>,
) -> Origin {
    let mut pairs: Vec<(&str, &str)> = base.iter().filter(|(k, _)| *k != key).copied().collect();
    if let Some(v) = value {
        pairs.push((key, v));
    }
    env(&pairs)
}

#[test]
fn valid_settings_parse() {
    let s = source_settings();
    assert_eq!(s.snapshot_prefix, "aurora-dr");
    let t = target_settings();
    assert_eq!(t.instance_count, 1);
    assert_eq!(t.temp_instance_ids().len(), 1);
}

#[test]
fn all_problems_are_reported_at_once_and_toml_names_keys() {
    let origin = Origin::Toml(
        [("source.account_id", "1"), ("source.cluster_id", "x_y")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    );
    let mut r = Reader::new(&origin);
    assert!(SourceSettings::read(&mut r).is_none());
    let names: Vec<String> = r.into_errors().into_iter().map(|e| e.name).collect();
    for want in
        ["source.account_id", "source.region", "source.cluster_id", "target.account_id", "target.region"]
    {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
}

#[test]
fn retention_and_own_copy_default_off_and_the_target_key_parses() {
    assert_eq!(source_settings().retention, Retention { snapshots: 3, days: None });
    let t = target_settings();
    assert_eq!(t.retention, Retention { snapshots: 3, days: None });
    assert_eq!(t.kms_key_arn.as_ref().map(Arn::as_str), Some(TARGET_KEY));
    assert!(!t.own_copy, "the own copy is off by default");

    let mut pairs = TARGET_ENV.to_vec();
    pairs.extend([("RETAIN_SNAPSHOTS", "7"), ("RETAIN_DAYS", "30"), ("TARGET_OWN_COPY", "true")]);
    let origin = env(&pairs);
    let mut r = Reader::new(&origin);
    let t = TargetSettings::read(&mut r).expect("settings");
    r.finish().expect("valid");
    assert_eq!(t.retention, Retention { snapshots: 7, days: Some(30) });
    assert!(t.own_copy);

    let origin = Origin::Toml(
        [
            ("source.account_id", "111111111111"),
            ("source.region", "us-west-2"),
            ("source.cluster_id", "orders"),
            ("target.account_id", "222222222222"),
            ("target.region", "us-west-1"),
            ("source.kms_key_arn", "arn:aws:kms:us-west-1:111111111111:key/k"),
            ("source.retain_snapshots", "2"),
            ("source.retain_days", "14"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect(),
    );
    let mut r = Reader::new(&origin);
    let s = SourceSettings::read(&mut r).expect("settings");
    r.finish().expect("valid");
    assert_eq!(s.retention, Retention { snapshots: 2, days: Some(14) });
}

#[test]
fn bad_retention_and_target_key_settings_are_named_with_their_rule() {
    type Case = (&'static [(&'static str, &'static str)], &'static str, Option<&'static str>, &'static str);
    let cases: &[Case] = &[
        (SOURCE_ENV, "RETAIN_SNAPSHOTS", Some("0"), "from 1 to 1000"),
        (SOURCE_ENV, "RETAIN_SNAPSHOTS", Some("three"), "whole number"),
        (SOURCE_ENV, "RETAIN_DAYS", Some("0"), "from 1 to 3650"),
        (SOURCE_ENV, "RETAIN_DAYS", Some("-1"), "whole number"),
        (TARGET_ENV, "RETAIN_SNAPSHOTS", Some("1001"), "from 1 to 1000"),
        (TARGET_ENV, "RETAIN_DAYS", Some("3651"), "from 1 to 3650"),
        (TARGET_ENV, "TARGET_KMS_KEY_ARN", None, "TargetKMSKeyArn"),
        (TARGET_ENV, "TARGET_OWN_COPY", Some("on"), "true or false"),
        (TARGET_ENV, "TARGET_KMS_KEY_ARN", Some("alias/dr"), "ARN"),
        (
            TARGET_ENV,
            "TARGET_KMS_KEY_ARN",
            Some("arn:aws:kms:us-west-1:222222222222:alias/dr"),
            "aliases are not accepted",
        ),
        (TARGET_ENV, "TARGET_KMS_KEY_ARN", Some("arn:aws:kms:us-west-2:222222222222:key/k"), "target region"),
        (
            TARGET_ENV,
            "TARGET_KMS_KEY_ARN",
            Some("arn:aws:kms:us-west-1:111111111111:key/k"),
            "target account",
        ),
    ];
    for (base, key, value, rule) in cases {
        let origin = with(base, key, *value);
        let mut r = Reader::new(&origin);
        if base[0].0 == "SOURCE_ACCOUNT_ID" {
            let _ = SourceSettings::read(&mut r);
        } else {
            let _ = TargetSettings::read(&mut r);
        }
        let errors = r.finish().expect_err(key).0;
        assert!(
            errors.iter().any(|e| e.name == *key && e.problem.contains(rule)),
            "{key}={value:?}: want {rule:?} in {errors:?}"
        );
    }
}

/// A function's environment must name the target key (the template always
/// sets it); a TOML file may leave it to the drill or the stack.
#[test]
fn the_target_key_is_required_in_the_environment_only() {
    let origin = with(TARGET_ENV, "TARGET_KMS_KEY_ARN", None);
    let mut r = Reader::new(&origin);
    let _ = TargetSettings::read(&mut r);
    let errors = r.finish().expect_err("required").0;
    assert!(
        errors.iter().any(|e| e.name == "TARGET_KMS_KEY_ARN" && e.problem.contains("is required")),
        "{errors:?}"
    );

    let origin = toml(TARGET_TOML);
    let mut r = Reader::new(&origin);
    let t = TargetSettings::read(&mut r).expect("settings");
    r.finish().expect("valid without a key");
    assert_eq!(t.kms_key_arn, None);
}

#[test]
fn every_key_is_listed_once_with_distinct_names() {
    let mut toml: Vec<&str> = keys::ALL.iter().map(|k| k.toml).collect();
    toml.sort_unstable();
    let before = toml.len();
    toml.dedup();
    assert_eq!(toml.len(), before, "a TOML key is listed twice");
    // Both sides read RETAIN_* and FAILURE_TOPIC_ARN under one variable name.
    for k in [
        keys::KMS_KEY_ARN,
        keys::TARGET_KMS_KEY_ARN,
        keys::TARGET_OWN_COPY,
        keys::SANITY_SECRET_ARN,
        keys::CLUSTER_PAIRS,
    ] {
        assert!(keys::ALL.contains(&k), "{k:?}");
    }
}

/// The Lambda environment also carries the execution role's keys: the
/// settings keep only their own variables, so no `Debug` or error prints them.
#[test]
fn the_environment_reader_keeps_only_the_settings_variables() {
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let mut vars: Vec<(String, String)> =
        SOURCE_ENV.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    vars.push(("SIDE".into(), "source".into()));
    for name in ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID", "HOME"] {
        vars.push((name.into(), secret.into()));
    }
    let origin = Origin::env_from(vars);
    let Origin::Env(kept) = &origin else { panic!("an environment origin") };
    assert_eq!(kept.len(), SOURCE_ENV.len() + 1, "{kept:?}");
    assert!(!format!("{origin:?}").contains(secret));
    let settings = crate::context::SideSettings::from_origin(&origin).expect("source settings");
    assert!(!format!("{settings:?}").contains(secret));
}

/// One environment variable and its value.
type EnvPair = (&'static str, &'static str);

/// Static, so the fixtures' `&'static str` pairs can hold them.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// The problems `pairs` gives on the target side (none: `Ok`).
fn target_problems(pairs: &[(&str, &str)]) -> Vec<SettingError> {
    let origin = env(pairs);
    let mut r = Reader::new(&origin);
    let _ = TargetSettings::read(&mut r);
    r.finish().err().map(|e| e.0).unwrap_or_default()
}

/// `base` with `changes` set (replacing any value of the same key).
fn changed(
    base: &[(&'static str, &'static str)],
    changes: &[(&'static str, &'static str)],
) -> Vec<(&'static str, &'static str)> {
    let mut pairs: Vec<_> =
        base.iter().filter(|(k, _)| !changes.iter().any(|(c, _)| c == k)).copied().collect();
    pairs.extend_from_slice(changes);
    pairs
}

#[test]
fn generated_identifiers_over_63_characters_are_refused_naming_the_key_and_length() {
    // Source: {prefix}-orders-{14 digits} is 22 characters plus the prefix.
    let fits = leak("p".repeat(41));
    let origin = env(&changed(SOURCE_ENV, &[("SNAPSHOT_PREFIX", fits)]));
    let mut r = Reader::new(&origin);
    SourceSettings::read(&mut r).expect("read");
    r.finish().expect("a 63-character snapshot name is valid");
    let long = leak("p".repeat(42));
    let origin = env(&changed(SOURCE_ENV, &[("SNAPSHOT_PREFIX", long)]));
    let mut r = Reader::new(&origin);
    let _ = SourceSettings::read(&mut r);
    let errors = r.finish().expect_err("64 characters").0;
    assert!(
        errors.iter().any(|e| e.name == "SNAPSHOT_PREFIX" && e.problem.contains("64 characters")),
        "{errors:?}"
    );

    // Target: each generated name at its full length, with the key to shorten.
    let cases: Vec<(Vec<EnvPair>, &str, &str)> = vec![
        // {existing}-old-{stamp}: 19 characters added.
        (vec![("EXISTING_CLUSTER_ID", leak("e".repeat(45)))], "EXISTING_CLUSTER_ID", "64 characters"),
        // ... and -final when final snapshots are kept.
        (
            vec![("EXISTING_CLUSTER_ID", leak("e".repeat(40))), ("FINAL_SNAPSHOT", "true")],
            "EXISTING_CLUSTER_ID",
            "65 characters",
        ),
        // {existing_instance}-old-{stamp}.
        (vec![("EXISTING_INSTANCE_ID", leak("i".repeat(45)))], "EXISTING_INSTANCE_ID", "64 characters"),
        // {temp_instance}-12 with 12 instances.
        (
            vec![("TEMP_INSTANCE_ID", leak("t".repeat(61))), ("DB_INSTANCE_COUNT", "12")],
            "TEMP_INSTANCE_ID",
            "64 characters",
        ),
        // A restore test's {temp}-test and {temp_instance}-test[-n].
        (vec![("TEMP_CLUSTER_ID", leak("t".repeat(59)))], "TEMP_CLUSTER_ID", "64 characters"),
        (
            vec![("TEMP_INSTANCE_ID", leak("t".repeat(56))), ("DB_INSTANCE_COUNT", "12")],
            "TEMP_INSTANCE_ID",
            "64 characters",
        ),
    ];
    for (change, key, length) in cases {
        let errors = target_problems(&changed(TARGET_ENV, &change));
        assert!(
            errors
                .iter()
                .any(|e| e.name == key && e.problem.contains(length) && e.problem.contains("at most 63")),
            "{change:?}: {errors:?}"
        );
    }
    // At the limit, all is well.
    let at_limit = changed(
        TARGET_ENV,
        &[
            ("EXISTING_CLUSTER_ID", leak("e".repeat(38))),
            ("FINAL_SNAPSHOT", "true"),
            ("EXISTING_INSTANCE_ID", leak("i".repeat(41))),
            ("TEMP_CLUSTER_ID", leak("c".repeat(58))),
            ("TEMP_INSTANCE_ID", leak("t".repeat(55))),
            ("DB_INSTANCE_COUNT", "12"),
        ],
    );
    assert_eq!(target_problems(&at_limit), []);
}

/// A restore test's names ({temp}-test, {temp_instance}-test) must not be a
/// name a real run uses, in its own pair or another.
#[test]
fn restore_test_names_never_equal_a_name_in_use() {
    let own_pair = changed(TARGET_ENV, &[("EXISTING_CLUSTER_ID", "orders-dr-next-test")]);
    let errors = target_problems(&own_pair);
    assert!(
        errors.iter().any(|e| e.name == "TEMP_CLUSTER_ID" && e.problem.contains("restore test's cluster id")),
        "{errors:?}"
    );
    let instance = changed(TARGET_ENV, &[("EXISTING_INSTANCE_ID", "orders-dr-next-1-test")]);
    let errors = target_problems(&instance);
    assert!(
        errors
            .iter()
            .any(|e| e.name == "TEMP_INSTANCE_ID" && e.problem.contains("restore test's instance id")),
        "{errors:?}"
    );
    let settings = target_settings();
    let test = settings.for_run(None, true).expect("test names");
    assert_eq!(test.temp_cluster_id.as_str(), "orders-dr-next-test");
    assert_eq!(test.temp_instance_ids()[0].as_str(), "orders-dr-next-1-test");
    assert_eq!(test.existing_cluster_id, settings.existing_cluster_id, "the serving names stay");
    assert_eq!(settings.for_run(None, false).expect("normal"), settings);
}

#[test]
fn serverless_targets_need_a_capacity_range_in_half_acus() {
    let serverless = [("DB_INSTANCE_CLASS", "db.serverless")];
    let errors = target_problems(&changed(TARGET_ENV, &serverless));
    for key in ["SERVERLESS_MIN_CAPACITY", "SERVERLESS_MAX_CAPACITY"] {
        assert!(
            errors.iter().any(|e| e.name == key && e.problem.contains("db.serverless")),
            "{key}: {errors:?}"
        );
    }
    let ok = changed(
        TARGET_ENV,
        &[serverless[0], ("SERVERLESS_MIN_CAPACITY", "0.5"), ("SERVERLESS_MAX_CAPACITY", "16")],
    );
    let origin = env(&ok);
    let mut r = Reader::new(&origin);
    let s = TargetSettings::read(&mut r).expect("settings");
    r.finish().expect("valid");
    let c = s.serverless.expect("capacity");
    assert_eq!((c.min_acus(), c.max_acus()), (0.5, 16.0));
    for (min, max, key) in [
        ("0.3", "16", "SERVERLESS_MIN_CAPACITY"),
        ("1", "300", "SERVERLESS_MAX_CAPACITY"),
        ("8", "4", "SERVERLESS_MIN_CAPACITY"),
    ] {
        let bad = changed(
            TARGET_ENV,
            &[serverless[0], ("SERVERLESS_MIN_CAPACITY", min), ("SERVERLESS_MAX_CAPACITY", max)],
        );
        let errors = target_problems(&bad);
        assert!(errors.iter().any(|e| e.name == key), "{min}..{max}: {errors:?}");
    }
    // A provisioned class needs none.
    assert!(target_settings().serverless.is_none());
}

#[test]
fn the_wait_tokens_table_is_a_dynamodb_table_name() {
    assert_eq!(target_settings().wait_tokens_table.as_deref(), Some("aurora-dr-wait-tokens"));
    let origin = with(TARGET_ENV, "WAIT_TOKENS_TABLE", Some("no spaces allowed"));
    let mut r = Reader::new(&origin);
    let _ = TargetSettings::read(&mut r);
    let err = r.finish().expect_err("invalid name");
    assert!(err.to_string().contains("WAIT_TOKENS_TABLE"), "{err}");
    let origin = with(TARGET_ENV, "WAIT_TOKENS_TABLE", None);
    let mut r = Reader::new(&origin);
    let t = TargetSettings::read(&mut r).expect("optional");
    assert!(t.wait_tokens_table.is_none());
}
