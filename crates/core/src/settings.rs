//! Static settings of both sides, read once at start and validated.
//!
//! The same settings come from two places: Lambda environment variables
//! (set by `template.yaml` from stack parameters) and the CLI's TOML file.
//! Each setting is declared once in [`SOURCE_KEYS`]/[`TARGET_KEYS`] with its
//! variable name and its TOML key, so both readers apply the same rules and
//! every error names the variable (or key) and the rule it broke. Readers
//! collect every problem before failing.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::ids::{AccountId, Arn, ClusterId, InstanceId, InvalidValue, Region};

/// One setting's two names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub env: &'static str,
    pub toml: &'static str,
}

const fn key(env: &'static str, toml: &'static str) -> Key {
    Key { env, toml }
}

pub mod keys {
    use super::{Key, key};
    pub const SOURCE_ACCOUNT_ID: Key = key("SOURCE_ACCOUNT_ID", "source.account_id");
    pub const SOURCE_REGION: Key = key("SOURCE_REGION", "source.region");
    pub const SOURCE_CLUSTER_ID: Key = key("SOURCE_CLUSTER_ID", "source.cluster_id");
    pub const SNAPSHOT_PREFIX: Key = key("SNAPSHOT_PREFIX", "source.snapshot_prefix");
    pub const KMS_KEY_ARN: Key = key("KMS_KEY_ARN", "source.kms_key_arn");
    pub const ALLOW_UNENCRYPTED_SOURCE: Key =
        key("ALLOW_UNENCRYPTED_SOURCE", "source.allow_unencrypted_source");
    pub const NOTIFICATION_TOPIC_ARN: Key = key("NOTIFICATION_TOPIC_ARN", "source.notification_topic_arn");
    pub const SOURCE_FAILURE_TOPIC_ARN: Key = key("FAILURE_TOPIC_ARN", "source.failure_topic_arn");

    pub const TARGET_ACCOUNT_ID: Key = key("TARGET_ACCOUNT_ID", "target.account_id");
    pub const TARGET_REGION: Key = key("TARGET_REGION", "target.region");
    pub const ENGINE: Key = key("ENGINE", "target.engine");
    pub const INSTANCE_CLASS: Key = key("DB_INSTANCE_CLASS", "target.instance_class");
    pub const INSTANCE_COUNT: Key = key("DB_INSTANCE_COUNT", "target.instance_count");
    pub const EXISTING_CLUSTER_ID: Key = key("EXISTING_CLUSTER_ID", "target.existing_cluster_id");
    pub const TEMP_CLUSTER_ID: Key = key("TEMP_CLUSTER_ID", "target.temp_cluster_id");
    pub const EXISTING_INSTANCE_ID: Key = key("EXISTING_INSTANCE_ID", "target.existing_instance_id");
    pub const TEMP_INSTANCE_ID: Key = key("TEMP_INSTANCE_ID", "target.temp_instance_id");
    pub const SOURCE_TOPIC_ARN: Key = key("SOURCE_TOPIC_ARN", "target.source_topic_arn");
    pub const STATE_MACHINE_ARN: Key = key("STATE_MACHINE_ARN", "target.state_machine_arn");
    pub const TARGET_FAILURE_TOPIC_ARN: Key = key("FAILURE_TOPIC_ARN", "target.failure_topic_arn");
    pub const DB_SUBNET_GROUP: Key = key("DB_SUBNET_GROUP", "target.db_subnet_group");
    pub const VPC_SECURITY_GROUP_IDS: Key = key("VPC_SECURITY_GROUP_IDS", "target.vpc_security_group_ids");
    pub const DB_CLUSTER_PARAMETER_GROUP: Key =
        key("DB_CLUSTER_PARAMETER_GROUP", "target.db_cluster_parameter_group");
    pub const DELETION_PROTECTION: Key = key("DELETION_PROTECTION", "target.deletion_protection");
    pub const FINAL_SNAPSHOT: Key = key("FINAL_SNAPSHOT", "target.final_snapshot");
    pub const KEEP_FAILED_TEMP_CLUSTER: Key =
        key("KEEP_FAILED_TEMP_CLUSTER", "target.keep_failed_temp_cluster");
}

/// One rejected setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    /// The variable or key, as the reader names it.
    pub name: String,
    pub problem: String,
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.problem)
    }
}

/// Every problem found while reading settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SettingsError(pub Vec<SettingError>);

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        write!(f, "{}", lines.join("; "))
    }
}

impl From<SettingsError> for crate::error::DrError {
    fn from(err: SettingsError) -> Self {
        let name = err.0.first().map(|e| e.name.clone()).unwrap_or_default();
        crate::error::DrError::InvalidConfig { name, problem: err.to_string() }
    }
}

/// Where values come from: environment variables or a flattened TOML table.
#[derive(Debug, Clone)]
pub enum Origin {
    Env(BTreeMap<String, String>),
    Toml(BTreeMap<String, String>),
}

impl Origin {
    /// A snapshot of the process environment.
    pub fn process_env() -> Self {
        Self::Env(std::env::vars().collect())
    }

    fn name(&self, key: Key) -> &'static str {
        match self {
            Self::Env(_) => key.env,
            Self::Toml(_) => key.toml,
        }
    }

    fn raw(&self, key: Key) -> Option<&str> {
        let (map, name) = match self {
            Self::Env(m) => (m, key.env),
            Self::Toml(m) => (m, key.toml),
        };
        map.get(name).map(String::as_str).filter(|v| !v.trim().is_empty())
    }
}

/// Reads typed values, collecting every problem.
pub struct Reader<'a> {
    origin: &'a Origin,
    errors: Vec<SettingError>,
}

impl<'a> Reader<'a> {
    pub fn new(origin: &'a Origin) -> Self {
        Self { origin, errors: Vec::new() }
    }

    /// Records a problem against a key.
    pub fn problem(&mut self, key: Key, problem: impl Into<String>) {
        self.errors.push(SettingError { name: self.origin.name(key).to_owned(), problem: problem.into() });
    }

    fn parse<T: FromStr<Err = InvalidValue>>(&mut self, key: Key, raw: &str) -> Option<T> {
        match raw.parse::<T>() {
            Ok(v) => Some(v),
            Err(e) => {
                self.problem(key, e.to_string());
                None
            }
        }
    }

    /// A required value.
    pub fn required<T: FromStr<Err = InvalidValue>>(&mut self, key: Key) -> Option<T> {
        match self.origin.raw(key).map(str::to_owned) {
            Some(raw) => self.parse(key, &raw),
            None => {
                self.problem(key, "is required but not set");
                None
            }
        }
    }

    /// An optional value.
    pub fn optional<T: FromStr<Err = InvalidValue>>(&mut self, key: Key) -> Option<T> {
        let raw = self.origin.raw(key)?.to_owned();
        self.parse(key, &raw)
    }

    /// Free text (engine names, instance classes), required and non-empty.
    pub fn text(&mut self, key: Key) -> Option<String> {
        let value = self.origin.raw(key).map(str::to_owned);
        if value.is_none() {
            self.problem(key, "is required but not set");
        }
        value
    }

    /// Optional free text.
    pub fn optional_text(&mut self, key: Key) -> Option<String> {
        self.origin.raw(key).map(str::to_owned)
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`), with a default.
    pub fn flag(&mut self, key: Key, default: bool) -> bool {
        match self.origin.raw(key).map(str::to_ascii_lowercase).as_deref() {
            None => default,
            Some("true" | "1" | "yes") => true,
            Some("false" | "0" | "no") => false,
            Some(other) => {
                self.problem(key, format!("must be true or false (got {other:?})"));
                default
            }
        }
    }

    /// A whole number in `range`, with a default.
    pub fn number(&mut self, key: Key, default: u32, range: std::ops::RangeInclusive<u32>) -> u32 {
        let Some(raw) = self.origin.raw(key).map(str::to_owned) else {
            return default;
        };
        match raw.parse::<u32>() {
            Ok(n) if range.contains(&n) => n,
            _ => {
                self.problem(
                    key,
                    format!("must be a whole number from {} to {} (got {raw:?})", range.start(), range.end()),
                );
                default
            }
        }
    }

    /// A comma-separated list of free-text items.
    pub fn list(&mut self, key: Key) -> Vec<String> {
        self.origin
            .raw(key)
            .map(|raw| raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// Ends reading: every problem at once, or nothing.
    pub fn finish(self) -> Result<(), SettingsError> {
        if self.errors.is_empty() { Ok(()) } else { Err(SettingsError(self.errors)) }
    }

    /// Ends reading, returning the problems found so far (for callers that
    /// combine several readers).
    pub fn into_errors(self) -> Vec<SettingError> {
        self.errors
    }
}

/// Default snapshot name prefix.
pub const DEFAULT_SNAPSHOT_PREFIX: &str = "aurora-dr";

/// Settings of the source side (account that owns the production cluster).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSettings {
    pub account_id: AccountId,
    pub region: Region,
    pub cluster_id: ClusterId,
    /// Snapshot names are `{prefix}-{cluster}-{yyyymmddHHMMss}`.
    pub snapshot_prefix: String,
    pub target_account_id: AccountId,
    pub target_region: Region,
    /// The key in the target region the copy is encrypted with.
    pub kms_key_arn: Arn,
    /// Copy an unencrypted source (the copy is still encrypted).
    pub allow_unencrypted_source: bool,
    pub notification_topic_arn: Option<Arn>,
    pub failure_topic_arn: Option<Arn>,
}

/// Settings of the target side (account and region of the DR copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSettings {
    pub account_id: AccountId,
    pub region: Region,
    pub source_account_id: AccountId,
    pub engine: String,
    pub instance_class: String,
    /// How many instances the restored cluster gets (writer first).
    pub instance_count: u32,
    pub existing_cluster_id: ClusterId,
    pub temp_cluster_id: ClusterId,
    pub existing_instance_id: InstanceId,
    pub temp_instance_id: InstanceId,
    pub source_topic_arn: Option<Arn>,
    pub state_machine_arn: Option<Arn>,
    pub failure_topic_arn: Option<Arn>,
    pub db_subnet_group: Option<String>,
    pub vpc_security_group_ids: Vec<String>,
    pub db_cluster_parameter_group: Option<String>,
    pub deletion_protection: bool,
    pub final_snapshot: bool,
    pub keep_failed_temp_cluster: bool,
}

impl SourceSettings {
    /// Reads the source settings (collecting problems into `r`).
    /// `kms_optional` lets drills create the key when absent.
    pub fn read(r: &mut Reader<'_>, kms_optional: bool) -> Option<Self> {
        use keys::*;
        let account_id = r.required::<AccountId>(SOURCE_ACCOUNT_ID);
        let region = r.required::<Region>(SOURCE_REGION);
        let cluster_id = r.required::<ClusterId>(SOURCE_CLUSTER_ID);
        let snapshot_prefix =
            r.optional_text(SNAPSHOT_PREFIX).unwrap_or_else(|| DEFAULT_SNAPSHOT_PREFIX.into());
        // The prefix starts the snapshot name, so it obeys the identifier rules.
        if let Err(e) = crate::ids::check_rds_identifier(&snapshot_prefix, 100) {
            r.problem(SNAPSHOT_PREFIX, e.to_string());
        }
        let target_account_id = r.required::<AccountId>(TARGET_ACCOUNT_ID);
        let target_region = r.required::<Region>(TARGET_REGION);
        let kms_key_arn =
            if kms_optional { r.optional::<Arn>(KMS_KEY_ARN) } else { r.required::<Arn>(KMS_KEY_ARN) };
        if let (Some(arn), Some(target_region)) = (&kms_key_arn, &target_region) {
            check_kms_key(r, arn, target_region, account_id.as_ref());
        }
        let allow_unencrypted_source = r.flag(ALLOW_UNENCRYPTED_SOURCE, false);
        let notification_topic_arn = r.optional::<Arn>(NOTIFICATION_TOPIC_ARN);
        let failure_topic_arn = r.optional::<Arn>(SOURCE_FAILURE_TOPIC_ARN);
        for (k, arn) in [
            (NOTIFICATION_TOPIC_ARN, &notification_topic_arn),
            (SOURCE_FAILURE_TOPIC_ARN, &failure_topic_arn),
        ] {
            if let Some(arn) = arn
                && let Err(e) = arn.expect_kind("sns", "")
            {
                r.problem(k, e.to_string());
            }
        }
        if let (Some(a), Some(b), Some(ra), Some(rb)) =
            (&account_id, &target_account_id, &region, &target_region)
            && a == b
            && ra == rb
        {
            r.problem(TARGET_REGION, "target account and region equal the source's: nothing would be cross-account or cross-region");
        }
        Some(Self {
            account_id: account_id?,
            region: region?,
            cluster_id: cluster_id?,
            snapshot_prefix,
            target_account_id: target_account_id?,
            target_region: target_region?,
            kms_key_arn: kms_key_arn.or_else(|| if kms_optional { Some(placeholder_key()) } else { None })?,
            allow_unencrypted_source,
            notification_topic_arn,
            failure_topic_arn,
        })
    }

    /// Reads the source settings from the process environment (Lambda start-up).
    pub fn from_env() -> Result<Self, SettingsError> {
        let origin = Origin::process_env();
        let mut r = Reader::new(&origin);
        let s = Self::read(&mut r, false);
        r.finish()?;
        s.ok_or_else(|| SettingsError(Vec::new()))
    }

    /// Whether the KMS key is a placeholder to be created by a drill.
    pub fn kms_key_is_placeholder(&self) -> bool {
        self.kms_key_arn == placeholder_key()
    }
}

/// Stands for "no key configured" when a drill will create one.
fn placeholder_key() -> Arn {
    "arn:aws:kms:us-east-1:000000000000:key/to-be-created".parse().unwrap_or_else(|_| unreachable!())
}

fn check_kms_key(r: &mut Reader<'_>, arn: &Arn, target_region: &Region, source_account: Option<&AccountId>) {
    if let Err(e) = arn.expect_kind("kms", "key/") {
        r.problem(
            keys::KMS_KEY_ARN,
            format!("{e}; aliases are not accepted because a share needs the key's ARN"),
        );
    } else if arn.region().as_ref() != Some(target_region) {
        r.problem(
            keys::KMS_KEY_ARN,
            format!(
                "key is in region {} but the copy is made in the target region {target_region}: a KMS key only encrypts in its own region",
                arn.region().map(|r| r.to_string()).unwrap_or_else(|| "(none)".into())
            ),
        );
    } else if let Some(acct) = source_account
        && arn.account().as_ref() != Some(acct)
    {
        r.problem(keys::KMS_KEY_ARN, format!("key must belong to the source account {acct}"));
    }
}

impl TargetSettings {
    /// Reads the target settings (collecting problems into `r`).
    pub fn read(r: &mut Reader<'_>) -> Option<Self> {
        use keys::*;
        let account_id = r.required::<AccountId>(TARGET_ACCOUNT_ID);
        let region = r.required::<Region>(TARGET_REGION);
        let source_account_id = r.required::<AccountId>(SOURCE_ACCOUNT_ID);
        let engine = r.text(ENGINE);
        if let Some(e) = &engine
            && !matches!(e.as_str(), "aurora-postgresql" | "aurora-mysql")
        {
            r.problem(ENGINE, format!("must be aurora-postgresql or aurora-mysql (got {e:?})"));
        }
        let instance_class = r.text(INSTANCE_CLASS);
        if let Some(c) = &instance_class
            && !(c.starts_with("db.") && c.split('.').count() == 3 || c == "db.serverless")
        {
            r.problem(INSTANCE_CLASS, format!("must be an instance class such as db.r6g.large (got {c:?})"));
        }
        let instance_count = r.number(INSTANCE_COUNT, 1, 1..=16);
        let existing_cluster_id = r.required::<ClusterId>(EXISTING_CLUSTER_ID);
        let temp_cluster_id = r.required::<ClusterId>(TEMP_CLUSTER_ID);
        let existing_instance_id = r.required::<InstanceId>(EXISTING_INSTANCE_ID);
        let temp_instance_id = r.required::<InstanceId>(TEMP_INSTANCE_ID);
        if let (Some(a), Some(b)) = (&existing_cluster_id, &temp_cluster_id)
            && a.as_str().eq_ignore_ascii_case(b.as_str())
        {
            r.problem(TEMP_CLUSTER_ID, "must differ from the existing cluster id");
        }
        if let (Some(a), Some(b)) = (&existing_instance_id, &temp_instance_id)
            && a.as_str().eq_ignore_ascii_case(b.as_str())
        {
            r.problem(TEMP_INSTANCE_ID, "must differ from the existing instance id");
        }
        let source_topic_arn = r.optional::<Arn>(SOURCE_TOPIC_ARN);
        if let Some(arn) = &source_topic_arn {
            if let Err(e) = arn.expect_kind("sns", "") {
                r.problem(SOURCE_TOPIC_ARN, e.to_string());
            } else if let Some(src) = &source_account_id
                && arn.account().as_ref() != Some(src)
            {
                r.problem(SOURCE_TOPIC_ARN, format!("topic must belong to the source account {src}"));
            }
        }
        let state_machine_arn = r.optional::<Arn>(STATE_MACHINE_ARN);
        if let Some(arn) = &state_machine_arn
            && let Err(e) = arn.expect_kind("states", "stateMachine:")
        {
            r.problem(STATE_MACHINE_ARN, e.to_string());
        }
        let failure_topic_arn = r.optional::<Arn>(TARGET_FAILURE_TOPIC_ARN);
        let db_subnet_group = r.optional_text(DB_SUBNET_GROUP);
        let vpc_security_group_ids = r.list(VPC_SECURITY_GROUP_IDS);
        for sg in &vpc_security_group_ids {
            if !(sg.starts_with("sg-") && sg.len() > 3 && sg[3..].bytes().all(|b| b.is_ascii_hexdigit())) {
                r.problem(VPC_SECURITY_GROUP_IDS, format!("{sg:?} is not a security group id (sg-…)"));
            }
        }
        let db_cluster_parameter_group = r.optional_text(DB_CLUSTER_PARAMETER_GROUP);
        let deletion_protection = r.flag(DELETION_PROTECTION, false);
        let final_snapshot = r.flag(FINAL_SNAPSHOT, false);
        let keep_failed_temp_cluster = r.flag(KEEP_FAILED_TEMP_CLUSTER, false);
        Some(Self {
            account_id: account_id?,
            region: region?,
            source_account_id: source_account_id?,
            engine: engine?,
            instance_class: instance_class?,
            instance_count,
            existing_cluster_id: existing_cluster_id?,
            temp_cluster_id: temp_cluster_id?,
            existing_instance_id: existing_instance_id?,
            temp_instance_id: temp_instance_id?,
            source_topic_arn,
            state_machine_arn,
            failure_topic_arn,
            db_subnet_group,
            vpc_security_group_ids,
            db_cluster_parameter_group,
            deletion_protection,
            final_snapshot,
            keep_failed_temp_cluster,
        })
    }

    /// Reads the target settings from the process environment (Lambda start-up).
    pub fn from_env() -> Result<Self, SettingsError> {
        let origin = Origin::process_env();
        let mut r = Reader::new(&origin);
        let s = Self::read(&mut r);
        r.finish()?;
        s.ok_or_else(|| SettingsError(Vec::new()))
    }

    /// The id of the `n`-th instance (1-based) under a base id: the base
    /// itself for the first (the writer), `{base}-{n}` for the others.
    pub fn nth_instance(base: &InstanceId, n: u32) -> InstanceId {
        if n <= 1 {
            return base.clone();
        }
        let suffix = format!("-{n}");
        let keep = 63usize.saturating_sub(suffix.len());
        let stem: String = base.as_str().chars().take(keep).collect();
        format!("{}{suffix}", stem.trim_end_matches('-')).parse().unwrap_or_else(|_| base.clone())
    }

    /// Temporary instance ids, in order (writer first).
    pub fn temp_instance_ids(&self) -> Vec<InstanceId> {
        (1..=self.instance_count).map(|n| Self::nth_instance(&self.temp_instance_id, n)).collect()
    }

    /// Existing instance ids, in order (writer first).
    pub fn existing_instance_ids(&self) -> Vec<InstanceId> {
        (1..=self.instance_count).map(|n| Self::nth_instance(&self.existing_instance_id, n)).collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

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
    ];

    pub(crate) fn source_settings() -> SourceSettings {
        let origin = env(SOURCE_ENV);
        let mut r = Reader::new(&origin);
        let s = SourceSettings::read(&mut r, false).expect("settings");
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

    fn with(base: &[(&'static str, &'static str)], key: &'static str, value: Option<&'static str>) -> Origin {
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
        assert!(!s.allow_unencrypted_source);
        let t = target_settings();
        assert_eq!(t.instance_count, 1);
        assert_eq!(t.temp_instance_ids().len(), 1);
    }

    #[test]
    fn each_bad_source_setting_is_named_with_its_rule() {
        let same_account = ("TARGET_ACCOUNT_ID", Some("111111111111"));
        type Override<'a> = (&'a str, Option<&'a str>);
        let cases: &[(&str, Option<&str>, &str, Option<Override>)] = &[
            ("SOURCE_ACCOUNT_ID", None, "required", None),
            ("SOURCE_ACCOUNT_ID", Some("11111111111"), "12 digits", None),
            ("SOURCE_ACCOUNT_ID", Some("1111111111111"), "12 digits", None),
            ("SOURCE_ACCOUNT_ID", Some("11111111111x"), "12 digits", None),
            ("SOURCE_REGION", Some("us-west"), "region name", None),
            ("SOURCE_CLUSTER_ID", Some("1orders"), "start with a letter", None),
            ("SOURCE_CLUSTER_ID", Some("orders-"), "end with a hyphen", None),
            ("SOURCE_CLUSTER_ID", Some("or--ders"), "consecutive", None),
            ("SOURCE_CLUSTER_ID", Some("or_ders"), "only ASCII", None),
            ("SNAPSHOT_PREFIX", Some("dr_"), "only ASCII", None),
            ("TARGET_REGION", Some("mars-1"), "region name", None),
            ("TARGET_REGION", Some("us-west-2"), "equal the source", Some(same_account)),
            ("KMS_KEY_ARN", None, "required", None),
            ("KMS_KEY_ARN", Some("alias/aurora-dr"), "ARN", None),
            ("KMS_KEY_ARN", Some("arn:aws:kms:us-west-2:111111111111:key/abc"), "target region", None),
            ("KMS_KEY_ARN", Some("arn:aws:kms:us-west-1:333333333333:key/abc"), "source account", None),
            ("KMS_KEY_ARN", Some("arn:aws:kms:us-west-1:111111111111:alias/x"), "key/", None),
            ("NOTIFICATION_TOPIC_ARN", Some("arn:aws:sqs:us-west-2:111111111111:q"), "sns", None),
            ("ALLOW_UNENCRYPTED_SOURCE", Some("maybe"), "true or false", None),
        ];
        for (key, value, rule, also) in cases {
            let mut pairs: Vec<(&str, &str)> = SOURCE_ENV.to_vec();
            for (k, v) in std::iter::once((*key, *value)).chain(*also) {
                pairs.retain(|(pk, _)| *pk != k);
                if let Some(v) = v {
                    pairs.push((k, v));
                }
            }
            let origin = env(&pairs);
            let mut r = Reader::new(&origin);
            let _ = SourceSettings::read(&mut r, false);
            let errors = r.finish().expect_err(key).0;
            assert!(
                errors.iter().any(|e| e.name == *key && e.problem.contains(rule)),
                "{key}={value:?}: want {rule:?} in {errors:?}"
            );
        }
    }

    #[test]
    fn each_bad_target_setting_is_named_with_its_rule() {
        let long64: &'static str = Box::leak(format!("a{}", "b".repeat(63)).into_boxed_str());
        let cases: &[(&str, Option<&str>, &str)] = &[
            ("TARGET_ACCOUNT_ID", Some("abc"), "12 digits"),
            ("ENGINE", Some("mysql"), "aurora-postgresql or aurora-mysql"),
            ("ENGINE", None, "required"),
            ("DB_INSTANCE_CLASS", Some("r6g.large"), "instance class"),
            ("DB_INSTANCE_COUNT", Some("0"), "whole number"),
            ("DB_INSTANCE_COUNT", Some("x"), "whole number"),
            ("EXISTING_CLUSTER_ID", Some(""), "required"),
            ("EXISTING_CLUSTER_ID", Some(long64), "at most 63"),
            ("TEMP_CLUSTER_ID", Some("orders-dr"), "must differ"),
            ("TEMP_CLUSTER_ID", Some("ORDERS-DR"), "must differ"),
            ("EXISTING_INSTANCE_ID", Some("9x"), "start with a letter"),
            ("TEMP_INSTANCE_ID", Some("orders-dr-1"), "must differ"),
            ("SOURCE_TOPIC_ARN", Some("arn:aws:sns:us-west-2:333333333333:t"), "source account"),
            ("SOURCE_TOPIC_ARN", Some("not-an-arn"), "ARN"),
            ("STATE_MACHINE_ARN", Some("arn:aws:lambda:us-west-1:222222222222:function:x"), "states"),
            ("VPC_SECURITY_GROUP_IDS", Some("sg-123,web"), "security group"),
            ("DELETION_PROTECTION", Some("on"), "true or false"),
        ];
        for (key, value, rule) in cases {
            let origin = with(TARGET_ENV, key, *value);
            let mut r = Reader::new(&origin);
            let _ = TargetSettings::read(&mut r);
            let errors = r.finish().expect_err(key).0;
            assert!(
                errors.iter().any(|e| e.name == *key && e.problem.contains(rule)),
                "{key}={value:?}: want {rule:?} in {errors:?}"
            );
        }
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
        assert!(SourceSettings::read(&mut r, true).is_none());
        let names: Vec<String> = r.into_errors().into_iter().map(|e| e.name).collect();
        for want in
            ["source.account_id", "source.region", "source.cluster_id", "target.account_id", "target.region"]
        {
            assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
        }
    }

    #[test]
    fn instance_ids_number_from_the_base() {
        let mut t = target_settings();
        t.instance_count = 3;
        let ids: Vec<String> = t.existing_instance_ids().iter().map(ToString::to_string).collect();
        assert_eq!(ids, ["orders-dr-1", "orders-dr-1-2", "orders-dr-1-3"]);
        let long: InstanceId = format!("a{}", "b".repeat(62)).parse().expect("63");
        let second = TargetSettings::nth_instance(&long, 2);
        assert_eq!(second.as_str().len(), 63);
        assert!(second.as_str().ends_with("-2"));
    }
}
